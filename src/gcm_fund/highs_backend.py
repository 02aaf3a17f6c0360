"""HiGHS through highspy: the default backend, its model kept alive between solves.

A changed objective, bound or pledge re-solves warm from the last basis; with a
`ColumnPool` the model holds a pool of columns and prices in the rest (see `pricing`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .backend import EMPTY, INFEASIBLE, OPTIMAL, SolverInfo, StageSolution, quiet_stdout, row_bounds
from .model import LinearProgram
from .pricing import ColumnPool

log = logging.getLogger(__name__)

# Tight tolerances in USD millions: 1e-9 is a thousandth of a cent, far inside the
# cent-level tolerance that the written allocation is held to.
HIGHS_OPTIONS: dict[str, Any] = {
    "primal_feasibility_tolerance": 1e-9,
    "dual_feasibility_tolerance": 1e-9,
    "threads": 1,
    "random_seed": 0,
    "simplex_strategy": "primal after an objective change, dual after a bound change",
}


def _simplex_strategy(warm: bool, cost_changed: bool, bounds_changed: bool) -> int:
    """HiGHS's simplex variant for the next solve from the current basis.

    After an objective change alone the old basis stays primal feasible, so primal simplex
    (4) goes on from it; after bound changes alone it stays dual feasible, so dual simplex
    (1) does. On the two-stage solve at 193 x 12 x 100 this takes stage 2 from about 15 s
    (dual) to about 3 s. Otherwise let HiGHS choose (0).
    """
    if not warm:
        return 0
    if cost_changed and not bounds_changed:
        return 4
    if bounds_changed and not cost_changed:
        return 1
    return 0


def pass_lp(highs: Any, csc: Any, cost: np.ndarray, col_lower: np.ndarray,
            col_upper: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray) -> None:
    """Hand a maximisation LP to a highspy instance as arrays (no per-element copies)."""
    n_rows, n_cols = csc.shape
    status = highs.passModel(
        n_cols, n_rows, csc.nnz, 1, -1, 0.0,  # 1: column-wise matrix; -1: maximise
        cost.astype(np.float64), col_lower.astype(np.float64), col_upper.astype(np.float64),
        row_lower.astype(np.float64), row_upper.astype(np.float64),
        csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
        csc.data.astype(np.float64), np.zeros(n_cols, dtype=np.int32),  # all continuous
    )
    if str(status) != "HighsStatus.kOk":
        raise RuntimeError(f"HiGHS refused the model: {status}")


def run_highs(highs: Any) -> None:
    """`highs.run()` that Ctrl-C stops within moments, not when HiGHS is done.

    HiGHS runs in highspy's worker thread with its simplex interrupt callback armed (see
    `new_highs`); this thread waits. On KeyboardInterrupt it asks HiGHS to stop, waits
    for it (further Ctrl-Cs included) and re-raises, so that the command writes nothing.
    A plain `run()` held Ctrl-C until the HiGHS run ended: 15.8 s into stage 2 at
    10,008 gaps x 1,000 sources.
    """
    highs.startSolve()
    try:
        while not highs.wait(0.1)[0]:
            pass
    except KeyboardInterrupt:
        highs.cancelSolve()
        while True:
            try:
                if highs.wait(0.1)[0]:
                    break
            except KeyboardInterrupt:
                continue
        raise


def new_highs() -> Any:
    """A silent highspy instance with the project's options (tolerances, one thread, seed).

    Typed Any: highspy's stubs lack methods it has (changeRowsBounds, getBasisSolve).
    """
    import highspy

    with quiet_stdout():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.HandleUserInterrupt = True  # arms the callback that `run_highs` stops it with
    for key, value in HIGHS_OPTIONS.items():
        if not isinstance(value, str):  # the simplex strategy is chosen per solve
            highs.setOptionValue(key, value)
    return highs


class HighsBackend:
    """HiGHS through highspy, the model kept alive between solves.

    With a `ColumnPool` the model holds all rows but only the pool's allocation columns
    (and z); each solve prices the columns left out and adds the attractive ones until
    none is left (see `pricing`). Without one it holds every column. With
    `leave_out_implied` it also leaves out the rows that others imply whatever the
    allocation (`LinearProgram.implied_rows`); their duals are 0, which is valid.
    """

    def __init__(self, lp: LinearProgram, pool: ColumnPool | None = None,
                 leave_out_implied: bool = False):
        import highspy

        self._highspy = highspy
        self.highs = new_highs()
        options = dict(HIGHS_OPTIONS)
        if pool is not None:
            options["columns"] = pool.settings
        if leave_out_implied:
            options["implied_rows"] = "left out"
        self.info = SolverInfo("highs", self.highs.version(), options)
        self.lp = lp
        self.pool = pool
        # Models that share the pool (the sweep's two stages): a column that joins this
        # model joins them too, so that all hold the same columns and a basis passes.
        self.partners: list[HighsBackend] = []
        x_cols = np.arange(lp.n_x) if pool is None else pool.first()
        # Model column k is LP column model_cols[k]; z (LP column n_x) stays in place.
        self.model_cols = np.concatenate([x_cols, np.arange(lp.n_x, lp.n_cols)])
        self.z_position = len(x_cols) if lp.has_floor else None
        # Model row k is LP row model_rows[k].
        self.model_rows = (np.nonzero(~lp.implied_rows())[0] if leave_out_implied
                           else np.arange(lp.n_rows))
        self.model_row_of = np.full(lp.n_rows, -1)
        self.model_row_of[self.model_rows] = np.arange(len(self.model_rows))
        self._pass_model(self._submatrix(self.model_cols), np.zeros(len(self.model_cols)),
                         lp.rhs)
        log.info("HiGHS model: %s of %s allocation columns, %s of %s rows", f"{len(x_cols):,}",
                 f"{lp.n_x:,}", f"{len(self.model_rows):,}", f"{lp.n_rows:,}")

    def _submatrix(self, columns: np.ndarray) -> Any:
        """The model's rows of these LP columns, column-wise."""
        csc = self.lp.matrix.tocsc(copy=False)
        if len(columns) < self.lp.n_cols or not np.array_equal(columns, np.arange(len(columns))):
            csc = csc[:, columns]
        if len(self.model_rows) < self.lp.n_rows:
            csc = csc[self.model_rows, :]
        return csc

    def _pass_model(self, csc: Any, cost: np.ndarray, rhs: np.ndarray) -> None:
        inf = self._highspy.kHighsInf
        n_cols = csc.shape[1]
        rows = self.model_rows
        lower, upper = row_bounds(self.lp.sense[rows], rhs[rows], inf)
        pass_lp(self.highs, csc, cost, np.zeros(n_cols), np.full(n_cols, inf), lower, upper)
        self._rhs = rhs.copy()
        self._cost: np.ndarray | None = None
        self.z_bounds: tuple[float, float] | None = None  # as last set
        self._solved = False

    def set_cost(self, cost: np.ndarray) -> bool:
        """Give the model columns their part of `cost` (LP order); True when it changed."""
        changed = self._cost is None or not np.array_equal(cost, self._cost)
        if changed:
            n = len(self.model_cols)
            self.highs.changeColsCost(n, np.arange(n, dtype=np.int32), cost[self.model_cols])
            self._cost = cost.copy()
        return changed

    def set_z_bounds(self, z_bounds: tuple[float, float] | None) -> bool:
        """Bound z (when it exists); True when the bounds changed."""
        if z_bounds is None or self.z_position is None or z_bounds == self.z_bounds:
            return False
        self.highs.changeColBounds(self.z_position, z_bounds[0], z_bounds[1])
        self.z_bounds = z_bounds
        return True

    def _z_still_feasible(self, z_bounds: tuple[float, float] | None) -> bool:
        """Whether the last solution's z lies within these bounds, so that its basis stays
        primal feasible (stage 2 after stage 1: z* is within [z* - tolerance, 1])."""
        if not self._solved or z_bounds is None or self.z_position is None:
            return False
        z = float(self.highs.getSolution().col_value[self.z_position])
        return z_bounds[0] <= z <= z_bounds[1]

    def set_rhs(self, rhs: np.ndarray) -> bool:
        """Right-hand sides in LP row order (rows left out are skipped); True when a row
        of the model changed."""
        changed = np.nonzero(rhs != self._rhs)[0]
        changed = changed[self.model_row_of[changed] >= 0]
        if len(changed):
            lower, upper = row_bounds(self.lp.sense[changed], rhs[changed],
                                      self._highspy.kHighsInf)
            self.highs.changeRowsBounds(len(changed), self.model_row_of[changed].astype(np.int32),
                                        lower, upper)
        self._rhs = rhs.copy()
        return len(changed) > 0

    def _run(self, strategy: int) -> str:
        """One HiGHS solve of the model as it stands: OPTIMAL, INFEASIBLE or EMPTY."""
        highs = self.highs
        highs.setOptionValue("simplex_strategy", strategy)
        run_highs(highs)
        self._solved = True
        status = highs.getModelStatus()
        model_status = self._highspy.HighsModelStatus
        if status == model_status.kInfeasible:
            return INFEASIBLE
        if status == model_status.kModelEmpty:
            return EMPTY
        if status != model_status.kOptimal:
            raise RuntimeError(f"HiGHS stopped with status {highs.modelStatusToString(status)}")
        return OPTIMAL

    def add_columns(self, columns: np.ndarray, cost: np.ndarray) -> None:
        """Add these LP columns (with their part of `cost`) after the model's last one."""
        csc = self._submatrix(columns)
        inf = self._highspy.kHighsInf
        self.highs.addCols(len(columns), cost[columns].astype(np.float64),
                           np.zeros(len(columns)), np.full(len(columns), inf), csc.nnz,
                           csc.indptr[:-1].astype(np.int32), csc.indices.astype(np.int32),
                           csc.data.astype(np.float64))
        self.model_cols = np.concatenate([self.model_cols, columns])

    def _priced_run(self, strategy: int) -> str:
        """Solve, then price the columns left out and add them until none would help."""
        return self.price_in(self._run(strategy))

    def price_in(self, outcome: str) -> str:
        """After a solve with this outcome, add the columns left out whose reduced cost under
        the current objective would raise it (to this model and its partners), re-solving
        until none is left; the final outcome. Without a pool, nothing to do."""
        while outcome in (OPTIMAL, EMPTY) and self.pool is not None:
            assert self._cost is not None
            # A model with no column yet has no duals: every row's is 0.
            row_dual = (np.zeros(self.lp.n_rows) if outcome == EMPTY
                        else self.row_dual_of(self.highs.getSolution()))
            reduced = self.pool.reduced_costs(self._cost[: self.lp.n_x], row_dual)
            entering = self.pool.entering(reduced)
            if len(entering) == 0:
                break
            for model in (self, *self.partners):
                assert model._cost is not None
                model.add_columns(entering, model._cost)
            log.info("pricing: %s columns join (largest reduced cost %.3g); the model holds %s",
                     f"{len(entering):,}", float(reduced[entering].max()),
                     f"{len(self.model_cols):,}")
            # New columns enter at zero: the basis stays primal feasible.
            outcome = self._run(4)
        return outcome

    def _reach_floor(self, z_bounds: tuple[float, float]) -> bool:
        """Grow the pool by maximising z from 0; True when the floor's lower bound is met.

        z = 0 with nothing allocated meets every rule, so this model is always feasible,
        and its priced optimum is the highest floor over all columns: below the bound,
        the policy itself is infeasible.
        """
        cost = self.lp.stage1_objective()
        self.set_cost(cost)
        self.set_z_bounds((0.0, z_bounds[1]))
        if self._priced_run(0) != OPTIMAL:
            return False
        assert self.z_position is not None
        reach = float(self.highs.getSolution().col_value[self.z_position])
        return reach >= z_bounds[0] - HIGHS_OPTIONS["primal_feasibility_tolerance"]

    def solve(self, cost: np.ndarray, z_bounds: tuple[float, float] | None,
              rhs: np.ndarray) -> StageSolution:
        """Maximise cost.x, warm from the previous basis."""
        cost_changed = self.set_cost(cost)
        bounds_changed = self.set_z_bounds(z_bounds) and not self._z_still_feasible(z_bounds)
        bounds_changed = self.set_rhs(rhs) or bounds_changed
        outcome = self._priced_run(_simplex_strategy(self._solved, cost_changed,
                                                     bounds_changed))
        if (outcome == INFEASIBLE and self.pool is not None and z_bounds is not None
                and self.z_position is not None and z_bounds[0] > 0):
            # Nothing allocated and z = 0 meet every rule, so only a floor above 0 can make
            # the pool infeasible: it may lack the columns that reach it.
            if not self._reach_floor(z_bounds):
                return StageSolution(INFEASIBLE, z_bounds=z_bounds)
            self.set_cost(cost)
            self.set_z_bounds(z_bounds)
            outcome = self._priced_run(0)
        if outcome == INFEASIBLE:
            return StageSolution(INFEASIBLE, z_bounds=z_bounds)
        n_cols = self.lp.n_cols
        if outcome == EMPTY:
            # No eligible triple, so no column: allocating nothing is the optimum.
            return StageSolution(OPTIMAL, objective=0.0, col_value=np.zeros(n_cols),
                                 row_dual=np.zeros(self.lp.n_rows),
                                 col_dual=np.zeros(n_cols), z_bounds=z_bounds)
        return self._stage_solution(cost, z_bounds)

    def col_value_of(self, solution: Any) -> np.ndarray:
        """Column values in LP column order; a column outside the pool is 0."""
        col_value = np.zeros(self.lp.n_cols)
        col_value[self.model_cols] = solution.col_value
        return col_value

    def row_dual_of(self, solution: Any) -> np.ndarray:
        """Row duals in LP row order; a row left out has dual 0."""
        row_dual = np.zeros(self.lp.n_rows)
        row_dual[self.model_rows] = solution.row_dual
        return row_dual

    def _stage_solution(self, cost: np.ndarray, z_bounds: tuple[float, float] | None
                        ) -> StageSolution:
        """The model's solution in LP column order; columns outside the pool are 0, with
        their reduced costs priced from the row duals."""
        solution = self.highs.getSolution()
        row_dual = self.row_dual_of(solution)
        n_cols = self.lp.n_cols
        col_value = self.col_value_of(solution)
        col_dual = np.zeros(n_cols)
        if self.pool is not None:
            col_dual[: self.lp.n_x] = self.pool.reduced_costs(cost[: self.lp.n_x], row_dual)
        col_dual[self.model_cols] = solution.col_dual
        # For a maximisation HiGHS already reports d objective / d rhs (pinned by a test).
        return StageSolution(
            OPTIMAL,
            objective=float(self.highs.getInfo().objective_function_value),
            col_value=col_value,
            row_dual=row_dual,
            col_dual=col_dual,
            z_bounds=z_bounds,
        )
