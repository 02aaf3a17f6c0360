"""HiGHS through highspy: the default backend, its model kept alive between solves.

A changed objective, bound or pledge re-solves warm from the last basis; with a
`ColumnPool` the model holds a pool of columns and prices in the rest (see `pricing`).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from gcm_fund.model.lp import GE, LE, LinearProgram
from gcm_fund.solvers.backend import (
    EMPTY,
    INFEASIBLE,
    OPTIMAL,
    Backend,
    Bounds,
    SolverInfo,
    SolverStopped,
    StageSolution,
    Status,
    row_bounds,
)
from gcm_fund.solvers.basis_trail import KeptBasis, cost_key
from gcm_fund.solvers.highs_calls import (
    HIGHS_OPTIONS,
    HIGHS_SMALL_DEFAULT,
    HIGHS_SMALL_MATRIX,
    RETRIES,
    highs_option,
    highs_status,
    new_highs,
    pass_lp,
    run_highs,
    simplex_strategy,
)
from gcm_fund.solvers.pricing import ColumnPool

# Serial numbers of the HiGHS models made in this process (`HighsBackend.serial`).
_SERIALS = itertools.count()

log = logging.getLogger(__name__)

@dataclass
class _Anchor:
    """The last optimal basis, kept for `value_from_basis`: the rhs it was solved at, the
    values and bounds of the basic variables (in the order of HiGHS's basis matrix)."""

    rhs: np.ndarray
    row_basic: np.ndarray  # by LP row: is the row's activity basic
    basic_value: np.ndarray
    basic_lower: np.ndarray  # column bounds; rows' bounds follow the rhs
    basic_upper: np.ndarray
    basic_rows: np.ndarray  # the basic LP rows, and where they sit among the basic variables
    basic_row_at: np.ndarray
    aux_value: dict[int, float]  # LP column -> value, for the columns after the allocations
    aux_at: dict[int, int]  # LP column -> place among the basic variables, when basic


class HighsBackend:
    """HiGHS through highspy, the model kept alive between solves.

    With a `ColumnPool` the model holds all rows but only the pool's allocation columns
    (and the LP's named columns: z, a stage's own); each solve prices the columns left
    out and adds the attractive ones until none is left (see `pricing`). Without one it
    holds every column. With `leave_out_implied` it also leaves out the rows that others
    imply whatever the allocation (`LinearProgram.implied_rows`); their duals are 0,
    which is valid. With `keep_basis` it keeps each optimal basis for `value_from_basis`
    (the sweep's stage 1 skips most solves with it).

    Model rows and columns are LP rows `model_rows` and LP columns `model_cols`; every
    index outside this class is the LP's.
    """

    value_precision = 0.0  # values are read from memory, exactly as HiGHS holds them

    def __init__(self, lp: LinearProgram, pool: ColumnPool | None = None,
                 leave_out_implied: bool = False, keep_basis: bool = False):
        import highspy

        self._inf = highspy.kHighsInf
        self._ok = highspy.HighsStatus.kOk
        self.highs = new_highs()
        options = dict(HIGHS_OPTIONS)
        if pool is not None:
            options["columns"] = pool.settings
        if leave_out_implied:
            options["implied_rows"] = "left out"
        data = np.abs(lp.matrix.data)
        if bool((data[data > 0] <= HIGHS_SMALL_DEFAULT).any()):
            # HiGHS refuses (a warning) a model with a coefficient at or below 1e-9: a USD
            # 0.01 gap's level row is 1e-11 in USD millions. Recorded only where it applies.
            options["small_matrix_value"] = HIGHS_SMALL_MATRIX
            self.highs.setOptionValue("small_matrix_value", HIGHS_SMALL_MATRIX)
        self.info = SolverInfo("highs", self.highs.version(), options)
        self.lp = lp
        self.pool = pool
        self.keep_basis = keep_basis
        self.serial = next(_SERIALS)  # names this model in a `BasisTrail`
        self.iterations = 0  # simplex iterations of every run so far (retries left out)
        # Models that share the pool (the stages of a warm pipeline): a column that joins
        # this model joins them too, so that all hold the same columns and a basis passes.
        self.partners: list[HighsBackend] = []
        x_cols = np.arange(lp.n_x) if pool is None else pool.first()
        # Model column k is LP column model_cols[k]; the named columns after the
        # allocations sit together, from model column `_aux_at` on, and stay in place
        # when priced columns join at the end.
        self.model_cols = np.concatenate([x_cols, np.arange(lp.n_x, lp.n_cols)])
        self._aux_at = len(x_cols)
        # Model row k is LP row model_rows[k].
        self.model_rows = (np.nonzero(~lp.implied_rows())[0] if leave_out_implied
                           else np.arange(lp.n_rows))
        self.model_row_of = np.full(lp.n_rows, -1)
        self.model_row_of[self.model_rows] = np.arange(len(self.model_rows))
        self._pass_model(self._submatrix(self.model_cols), np.zeros(len(self.model_cols)),
                         lp.rhs)
        log.info("HiGHS model: %s of %s allocation columns, %s of %s rows", f"{len(x_cols):,}",
                 f"{lp.n_x:,}", f"{len(self.model_rows):,}", f"{lp.n_rows:,}")

    def position(self, col: int) -> int:
        """The model column of a named LP column (one after the allocations)."""
        return self._aux_at + (col - self.lp.n_x)

    @property
    def z_position(self) -> int | None:
        """The model column of z, None when the LP has none."""
        z = self.lp.z_col
        return None if z is None else self.position(z)

    def _submatrix(self, columns: np.ndarray) -> Any:
        """The model's rows of these LP columns, column-wise."""
        csc = self.lp.matrix.tocsc(copy=False)
        if len(columns) < self.lp.n_cols or not np.array_equal(columns, np.arange(len(columns))):
            csc = csc[:, columns]
        if len(self.model_rows) < self.lp.n_rows:
            csc = csc[self.model_rows, :]
        return csc

    def _pass_model(self, csc: Any, cost: np.ndarray, rhs: np.ndarray) -> None:
        n_cols = csc.shape[1]
        rows = self.model_rows
        lower, upper = row_bounds(self.lp.sense[rows], rhs[rows], self._inf)
        pass_lp(self.highs, csc, cost, np.zeros(n_cols), np.full(n_cols, self._inf), lower,
                upper)
        self._rhs = rhs.copy()
        self._cost: np.ndarray | None = None
        self.bounds: dict[int, tuple[float, float]] = {}  # as last set, by LP column
        self._solved = False
        self._next_strategy: int | None = None
        self._anchor: _Anchor | None = None

    def set_cost(self, cost: np.ndarray) -> bool:
        """Give the model columns their part of `cost` (LP order); True when it changed."""
        changed = self._cost is None or not np.array_equal(cost, self._cost)
        if changed:
            n = len(self.model_cols)
            self.highs.changeColsCost(n, np.arange(n, dtype=np.int32), cost[self.model_cols])
            self._cost = cost.copy()
        return changed

    def set_bounds(self, bounds: Bounds) -> bool:
        """Bound named LP columns; True when a bound changed."""
        changed = False
        for col, (low, high) in sorted(bounds.items()):
            if self.bounds.get(col) != (low, high):
                self.highs.changeColBounds(self.position(col), float(low), float(high))
                self.bounds[col] = (low, high)
                changed = True
        return changed

    def _still_feasible(self, bounds: Bounds) -> bool:
        """Whether the last solution's values of these columns lie within these bounds, so
        that its basis stays primal feasible (stage 2 after stage 1: z* is within
        [z* - tolerance, 1])."""
        if not self._solved or not bounds:
            return False
        values = self.highs.getSolution().col_value
        return all(low <= float(values[self.position(col)]) <= high
                   for col, (low, high) in bounds.items())

    def set_rhs(self, rhs: np.ndarray) -> bool:
        """Right-hand sides in LP row order (rows left out are skipped); True when a row
        of the model changed."""
        changed = np.nonzero(rhs != self._rhs)[0]
        changed = changed[self.model_row_of[changed] >= 0]
        if len(changed):
            lower, upper = row_bounds(self.lp.sense[changed], rhs[changed], self._inf)
            self.highs.changeRowsBounds(len(changed), self.model_row_of[changed].astype(np.int32),
                                        lower, upper)
        self._rhs = rhs.copy()
        return len(changed) > 0

    def _run(self, strategy: int) -> Status:
        """One HiGHS solve of the model as it stands: OPTIMAL, INFEASIBLE or EMPTY.

        A solve that ends any other way (stalled, "Unknown", or "Unbounded", which these
        LPs never are) is solved again from scratch, then with each of `RETRIES`' option
        sets in turn; if every one fails too, `SolverStopped`.
        """
        highs = self.highs
        highs.setOptionValue("simplex_strategy", strategy)
        run_highs(highs)
        self._solved = True
        self.iterations += int(highs.getInfo().simplex_iteration_count)
        status = highs_status(highs)
        for label, options in RETRIES:
            if status is not None:
                break
            log.info("HiGHS ended with status %s; solving again from scratch%s",
                     highs.modelStatusToString(highs.getModelStatus()), label)
            highs.clearSolver()
            highs.setOptionValue("simplex_strategy", 0)
            previous = {key: highs_option(highs, key) for key in options}
            for key, value in options.items():
                highs.setOptionValue(key, value)
            try:
                run_highs(highs)
            finally:
                for key, value in previous.items():
                    highs.setOptionValue(key, value)
            status = highs_status(highs)
        if status is None:
            raise SolverStopped("HiGHS stopped with status "
                                f"{highs.modelStatusToString(highs.getModelStatus())}")
        return status

    def add_columns(self, columns: np.ndarray, cost: np.ndarray) -> None:
        """Add these LP columns (with their part of `cost`) after the model's last one."""
        csc = self._submatrix(columns)
        self.highs.addCols(len(columns), cost[columns].astype(np.float64),
                           np.zeros(len(columns)), np.full(len(columns), self._inf), csc.nnz,
                           csc.indptr[:-1].astype(np.int32), csc.indices.astype(np.int32),
                           csc.data.astype(np.float64))
        self.model_cols = np.concatenate([self.model_cols, columns])

    def _add_to_every_model(self, columns: np.ndarray) -> None:
        """Add pool columns to this model and to its partners (models sharing the pool)."""
        for model in (self, *self.partners):
            # A partner not yet solved has no objective: its columns get one when it is
            # (set_cost gives every model column its cost).
            model.add_columns(columns, np.zeros(model.lp.n_cols) if model._cost is None
                              else model._cost)

    def _priced_run(self, strategy: int) -> Status:
        """Solve, then price the columns left out and add them until none would help."""
        return self.price_in(self._run(strategy))

    def price_in(self, outcome: Status) -> Status:
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
            self._add_to_every_model(entering)
            log.info("pricing: %s columns join (largest reduced cost %.3g); the model holds %s",
                     f"{len(entering):,}", float(reduced[entering].max()),
                     f"{len(self.model_cols):,}")
            # New columns enter at zero: the basis stays primal feasible.
            outcome = self._run(4)
        return outcome

    def price_infeasible(self, outcome: Status) -> Status:
        """After an infeasible solve on the pool, add the columns that HiGHS's proof of
        infeasibility (its dual ray y) does not cover, re-solving until the model is
        feasible or the proof covers every column: then the LP itself is infeasible.

        The ray proves infeasibility only if y . a_j has one sign over the columns, all
        at their lower bound 0 without an upper one; a column left out with the other
        sign could restore feasibility (Farkas pricing)."""
        while outcome == INFEASIBLE and self.pool is not None:
            _, has_ray, ray = self.highs.getDualRay()
            if not has_ray:
                break
            y = np.zeros(self.lp.n_rows)
            y[self.model_rows] = np.asarray(ray)[: len(self.model_rows)]
            y /= max(float(np.abs(y).max()), 1e-300)
            # -y . a_j of every column; the held ones all share a sign, and the columns
            # of the other sign are the ones the proof does not cover.
            along = self.pool.reduced_costs(np.zeros(self.lp.n_x), y)
            held = along[self.pool.held]
            if held.size and held.max() <= 1e-9:
                score = along
            elif held.size and held.min() >= -1e-9:
                score = -along
            else:
                break
            entering = self.pool.entering(score)
            if len(entering) == 0:
                break
            self._add_to_every_model(entering)
            log.info("pricing an infeasible model: %s columns join; the model holds %s",
                     f"{len(entering):,}", f"{len(self.model_cols):,}")
            outcome = self.price_in(self._run(1))
        return outcome

    def _reach_floor(self, bounds: Bounds) -> bool:
        """Grow the pool by maximising z from 0; True when z's lower bound is met.

        z = 0 with nothing allocated meets every rule, so this model is always feasible,
        and its priced optimum is the highest floor over all columns: below the bound,
        the policy itself is infeasible.
        """
        z = self.lp.z_col
        assert z is not None
        low, high = bounds[z]
        self.set_cost(self.lp.stage1_objective())
        self.set_bounds({**bounds, z: (0.0, high)})
        if self._priced_run(0) != OPTIMAL:
            return False
        reach = float(self.highs.getSolution().col_value[self.position(z)])
        return reach >= low - HIGHS_OPTIONS["primal_feasibility_tolerance"]

    def solve(self, cost: np.ndarray, bounds: Bounds, rhs: np.ndarray, trial: bool = False,
              fresh: bool = False) -> StageSolution:
        """Maximise cost.x, warm from the previous basis unless `fresh` (`Backend.solve`)."""
        bounds = dict(bounds)
        cost_changed = self.set_cost(cost)
        bounds_changed = self.set_bounds(bounds) and not self._still_feasible(bounds)
        bounds_changed = self.set_rhs(rhs) or bounds_changed
        strategy = simplex_strategy(self._solved, cost_changed, bounds_changed)
        if self._next_strategy is not None:
            strategy, self._next_strategy = self._next_strategy, None
        if fresh:
            # From scratch HiGHS presolves, which a warm start skips (`Pipeline.solve_stage`).
            self.highs.clearSolver()
            strategy = 0
        outcome = self._priced_run(strategy)
        if trial:
            outcome = self.price_infeasible(outcome)
        z = self.lp.z_col
        if (outcome == INFEASIBLE and not trial and self.pool is not None and z is not None
                and bounds.get(z, (0.0, 0.0))[0] > 0):
            # Nothing allocated and z = 0 meet every rule, so only a floor above 0 can make
            # the pool infeasible: it may lack the columns that reach it.
            if not self._reach_floor(bounds):
                self._anchor = None
                return StageSolution(INFEASIBLE, bounds=bounds)
            self.set_cost(cost)
            self.set_bounds(bounds)
            outcome = self._priced_run(0)
        if outcome == INFEASIBLE:
            self._anchor = None
            return StageSolution(INFEASIBLE, bounds=bounds)
        n_cols = self.lp.n_cols
        if outcome == EMPTY:
            # No eligible triple, so no column: allocating nothing is the optimum.
            self._anchor = None
            return StageSolution(OPTIMAL, objective=0.0, col_value=np.zeros(n_cols),
                                 row_dual=np.zeros(self.lp.n_rows),
                                 col_dual=np.zeros(n_cols), bounds=bounds)
        if self.keep_basis:
            self._anchor = self._keep_anchor(rhs)
        return self._stage_solution(cost, bounds)

    def start_from(self, other: Backend) -> None:
        """Start the next solve from `other`'s basis by primal simplex: `other` is a model
        sharing this one's pool (same columns, same order), whose optimum is feasible
        here (stage 2 after stage 1)."""
        if (isinstance(other, HighsBackend) and other._solved
                and np.array_equal(other.model_cols, self.model_cols)
                and np.array_equal(other.model_rows, self.model_rows)):
            self.highs.setBasis(other.highs.getBasis())
            self._next_strategy = 4

    def kept_basis(self, cost: np.ndarray) -> KeptBasis:
        """The last solve's optimal basis, for a `BasisTrail` (`cost`: its objective)."""
        basis = self.highs.getBasis()
        return KeptBasis(self.serial, list(basis.col_status), list(basis.row_status),
                         cost_key(cost))

    def start_from_kept(self, kept: KeptBasis, cost: np.ndarray) -> None:
        """Start the next solve from a basis this model kept (`kept_basis`): by dual simplex
        when it was optimal for this objective and no column has joined since (then it
        stays dual feasible), otherwise as HiGHS chooses; nothing when it is another
        model's. Columns that joined since enter non-basic at their lower bound, 0."""
        if kept.owner != self.serial or len(kept.col_status) > self.highs.getNumCol():
            return
        import highspy

        basis = highspy.HighsBasis()
        grown = self.highs.getNumCol() - len(kept.col_status)
        basis.col_status = kept.col_status + [highspy.HighsBasisStatus.kLower] * grown
        basis.row_status = kept.row_status
        basis.valid = True
        if self.highs.setBasis(basis) == self._ok:
            self._next_strategy = 1 if grown == 0 and kept.cost == cost_key(cost) else 0

    def _keep_anchor(self, rhs: np.ndarray) -> _Anchor:
        highs, lp = self.highs, self.lp
        solution = highs.getSolution()
        col_value = np.asarray(solution.col_value)
        row_value = np.asarray(solution.row_value)
        found = highs.getBasicVariables()
        # highspy returns (status, indices): >= 0 a column, < 0 the model row -1 - index.
        basic = np.asarray(found[1] if isinstance(found, tuple) else found, dtype=np.int64)
        is_row = basic < 0
        model_rows = -1 - basic[is_row]
        cols = basic[~is_row]
        value = np.empty(len(basic))
        value[~is_row] = col_value[cols]
        value[is_row] = row_value[model_rows]
        lower = np.full(len(basic), -np.inf)
        upper = np.full(len(basic), np.inf)
        lower[~is_row] = 0.0
        aux_value: dict[int, float] = {}
        aux_at: dict[int, int] = {}
        for col in range(lp.n_x, lp.n_cols):
            at = np.nonzero(basic == self.position(col))[0]
            aux_value[col] = float(col_value[self.position(col)])
            if at.size:
                aux_at[col] = int(at[0])
                lower[at], upper[at] = self.bounds.get(col, (0.0, np.inf))
        row_basic = np.zeros(lp.n_rows, dtype=bool)
        rows = self.model_rows[model_rows]
        row_basic[rows] = True
        return _Anchor(rhs=rhs.copy(), row_basic=row_basic, basic_value=value,
                       basic_lower=lower, basic_upper=upper, basic_rows=rows,
                       basic_row_at=np.nonzero(is_row)[0], aux_value=aux_value,
                       aux_at=aux_at)

    def value_from_basis(self, rhs: np.ndarray, col: int) -> float | None:
        """Column `col`'s optimal value at `rhs` from the last optimal basis (kept with
        `keep_basis`), when that basis stays primal feasible; None when it does not (or
        there is none), so that the caller solves.

        Only right-hand sides move, so the basis stays dual feasible; if it also stays
        primal feasible it is still optimal, and its basic values move by B^-1 d, where d
        holds the change of rhs of every non-basic (binding) row that moved (HiGHS's basis
        matrix is [A I] with logicals equal to minus the row activities, so a basic row's
        activity moves by minus its entry). This is the step HiGHS would take with zero
        pivots, without its fixed cost per run (checking and copying the whole matrix,
        docs/performance.md).
        """
        anchor = self._anchor
        if anchor is None or col not in anchor.aux_value:
            return None
        row_of = self.model_row_of
        changed = np.nonzero(rhs != anchor.rhs)[0]
        changed = changed[row_of[changed] >= 0]  # rows the model leaves out do not count
        if not changed.size:
            return anchor.aux_value[col]
        binding = changed[~anchor.row_basic[changed]]
        if np.isinf(rhs[binding]).any() or np.isinf(anchor.rhs[binding]).any():
            return None  # a binding row made free (or freed before): let HiGHS decide
        values = anchor.basic_value
        if binding.size:
            d = np.zeros(len(self.model_rows))
            d[row_of[binding]] = rhs[binding] - anchor.rhs[binding]
            status, step = self.highs.getBasisSolve(d)
            if status != self._ok:
                return None
            step = np.asarray(step, dtype=float).copy()
            # HiGHS's basis holds a row through its logical variable, minus the row's
            # activity: the activity moves the other way.
            step[anchor.basic_row_at] *= -1.0
            values = values + step
        lower, upper = anchor.basic_lower.copy(), anchor.basic_upper.copy()
        rows, at = anchor.basic_rows, anchor.basic_row_at
        sense = self.lp.sense[rows]
        lower[at] = np.where(sense == GE, rhs[rows], -np.inf)
        upper[at] = np.where(sense == LE, rhs[rows], np.inf)
        tolerance = HIGHS_OPTIONS["primal_feasibility_tolerance"]
        if (values < lower - tolerance).any() or (values > upper + tolerance).any():
            return None
        place = anchor.aux_at.get(col)
        return float(values[place]) if place is not None else anchor.aux_value[col]

    def iis(self) -> tuple[np.ndarray, np.ndarray] | None:
        """After an infeasible solve, an irreducible infeasible subset of the model: its LP
        rows and the LP columns whose bounds take part (HiGHS's IIS, computed from the LP
        and reduced until no member can go); None when HiGHS finds none."""
        from_lp, irreducible = 2, 4  # highspy.IisStrategy.kIisStrategyFromLp, ...Irreducible
        self.highs.setOptionValue("iis_strategy", from_lp | irreducible)
        status, found = self.highs.getIis()
        if status != self._ok or not found.valid_:
            return None
        import highspy

        rows = self.model_rows[np.asarray(found.row_index_, dtype=np.int64)]
        # A column is listed with the status of its bounds: only a bound that takes part
        # (lower, upper, both) is a member.
        bound = highspy.IisBoundStatus
        member = {int(bound.kIisBoundStatusLower), int(bound.kIisBoundStatusUpper),
                  int(bound.kIisBoundStatusBoxed)}
        cols = [int(c) for c, b in zip(found.col_index_, found.col_bound_, strict=True)
                if int(b) in member]
        return rows, self.model_cols[np.asarray(cols, dtype=np.int64)]

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

    def _stage_solution(self, cost: np.ndarray, bounds: dict[int, tuple[float, float]]
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
            bounds=bounds,
        )
