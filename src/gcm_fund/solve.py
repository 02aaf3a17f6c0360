"""Solver backends and the two-stage solve.

Two backends share one matrix model: HiGHS through highspy (default; the model stays
alive so that a changed objective, bound or pledge re-solves warm from the last basis) and
PuLP (its bundled CBC, or any solver PuLP knows). Whatever the solver, duals leave this
module in one convention: d objective / d rhs, and reduced costs d objective / d bound.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .errors import Diagnosis, InfeasibleError, Shortfall, UsageError
from .model import GE, LE, SCALE_USD, LinearProgram, check_structurally_feasible
from .pricing import ColumnPool
from .schema import Policy

log = logging.getLogger(__name__)

OPTIMAL, INFEASIBLE = "optimal", "infeasible"
EMPTY = "empty"  # HiGHS's kModelEmpty: a model without columns
# Tight tolerances in USD millions: 1e-9 is a thousandth of a cent, far inside the
# cent-level tolerance that the written allocation is held to.
HIGHS_OPTIONS: dict[str, Any] = {
    "primal_feasibility_tolerance": 1e-9,
    "dual_feasibility_tolerance": 1e-9,
    "threads": 1,
    "random_seed": 0,
    "simplex_strategy": "primal after an objective change, dual after a bound change",
}


@dataclass
class StageSolution:
    """One solved stage, in scaled units, with duals as d objective / d rhs."""

    status: str
    objective: float = float("nan")
    col_value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    row_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_bounds: tuple[float, float] | None = None


@dataclass
class SolverInfo:
    """Which solver ran, for the manifest."""

    name: str
    version: str
    options: dict[str, Any]


@dataclass
class Solution:
    """The result of both stages: the floor z*, the allocation and the final duals."""

    status: str
    floor: float | None
    weighted_usd: float
    x_usd: np.ndarray
    stage1: StageSolution | None
    stage2: StageSolution
    solver: SolverInfo
    rhs: np.ndarray  # the right-hand sides solved (scaled), after any pledge change


class Backend(Protocol):
    """What the two-stage solve needs of a solver."""

    info: SolverInfo

    def solve(self, cost: np.ndarray, z_bounds: tuple[float, float] | None,
              rhs: np.ndarray) -> StageSolution:
        """Maximise cost.x with z in z_bounds and these right-hand sides."""
        ...


@contextlib.contextmanager
def _quiet_stdout():
    """Silence what a C library prints to the process's stdout (HiGHS's banner)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _row_bounds(sense: np.ndarray, rhs: np.ndarray, inf: float) -> tuple[np.ndarray, np.ndarray]:
    lower = np.where(sense == GE, rhs, -inf)
    upper = np.where(sense == LE, rhs, inf)
    return lower, upper


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

    with _quiet_stdout():
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
        lower, upper = _row_bounds(self.lp.sense[rows], rhs[rows], inf)
        pass_lp(self.highs, csc, cost, np.zeros(n_cols), np.full(n_cols, inf), lower, upper)
        self._rhs = rhs.copy()
        self._cost: np.ndarray | None = None
        self._z_bounds: tuple[float, float] | None = None
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
        if z_bounds is None or self.z_position is None or z_bounds == self._z_bounds:
            return False
        self.highs.changeColBounds(self.z_position, z_bounds[0], z_bounds[1])
        self._z_bounds = z_bounds
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
            lower, upper = _row_bounds(self.lp.sense[changed], rhs[changed],
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

    def _priced_run(self, cost: np.ndarray, strategy: int) -> str:
        """Solve, then price the columns left out and add them until none would help."""
        outcome = self._run(strategy)
        while outcome in (OPTIMAL, EMPTY) and self.pool is not None:
            # A model with no column yet has no duals: every row's is 0.
            row_dual = (np.zeros(self.lp.n_rows) if outcome == EMPTY
                        else self.row_dual_of(self.highs.getSolution()))
            reduced = self.pool.reduced_costs(cost[: self.lp.n_x], row_dual)
            entering = self.pool.entering(reduced)
            if len(entering) == 0:
                break
            self.add_columns(entering, cost)
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
        if self._priced_run(cost, 0) != OPTIMAL:
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
        outcome = self._priced_run(cost, _simplex_strategy(self._solved, cost_changed,
                                                           bounds_changed))
        if (outcome == INFEASIBLE and self.pool is not None and z_bounds is not None
                and self.z_position is not None and z_bounds[0] > 0):
            # Nothing allocated and z = 0 meet every rule, so only a floor above 0 can make
            # the pool infeasible: it may lack the columns that reach it.
            if not self._reach_floor(z_bounds):
                return StageSolution(INFEASIBLE, z_bounds=z_bounds)
            self.set_cost(cost)
            self.set_z_bounds(z_bounds)
            outcome = self._priced_run(cost, 0)
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


_PULP_DUAL_SIGN: dict[str, float] = {}
# CBC's default dual feasibility tolerance (1e-7) lets it call a badly scaled stage 1
# optimal at z = 0 (needs from USD 1e6 to 1e14, so the z column spans 1 to 1e8 in USD
# millions); at HiGHS's 1e-9 it finds z*. Pinned by test_badly_scaled_amounts_*.
CBC_OPTIONS = ("dualT 1e-9",)


def _pulp_solver(name: str) -> Any:
    import pulp

    solver_name = {"cbc": "PULP_CBC_CMD"}.get(name, name)
    if solver_name not in pulp.listSolvers():
        raise UsageError(
            f"unknown solver {name!r}: use highs, cbc or a PuLP solver name "
            f"({', '.join(pulp.listSolvers(onlyAvailable=True))} are available here)"
        )
    with warnings.catch_warnings():
        # PuLP 3.3 announces that PuLP 4 drops its bundled CBC; pyproject pins pulp < 4,
        # where the bundled binary is what `--solver cbc` means.
        warnings.filterwarnings("ignore", message="PULP_CBC_CMD is deprecated",
                                category=DeprecationWarning)
        extra = {"options": list(CBC_OPTIONS)} if solver_name == "PULP_CBC_CMD" else {}
        solver = pulp.getSolver(solver_name, msg=False, **extra)
    if not solver.available():
        raise UsageError(f"solver {name!r} is not available on this machine")
    return solver


def _pulp_dual_sign(solver_name: str) -> float:
    """+1 when the PuLP solver reports d objective / d rhs for a maximisation, else -1.

    PuLP solvers disagree (CBC reports it as is, PuLP's HiGHS interface negates it), so
    the convention is measured once on a problem whose dual is known: max x, x <= 1.
    """
    if solver_name not in _PULP_DUAL_SIGN:
        import pulp

        probe = pulp.LpProblem("dual_sign_probe", pulp.LpMaximize)
        x = _pulp_variable(probe, "x")
        probe.setObjective(x)
        constraint = pulp.LpConstraint(x, sense=pulp.LpConstraintLE, rhs=1.0, name="c")
        probe.addConstraint(constraint)
        with _quiet_stdout():
            probe.solve(_pulp_solver(solver_name))
        _PULP_DUAL_SIGN[solver_name] = 1.0 if (constraint.pi or 0.0) > 0 else -1.0
    return _PULP_DUAL_SIGN[solver_name]


@functools.lru_cache(maxsize=8)
def _command_version(path: str) -> str:
    try:
        done = subprocess.run([path, "-quit"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"Version:\s*(\S+)", done.stdout)
    return found.group(1) if found else "unknown"


def _pulp_solver_version(solver: Any) -> str:
    """The solver's own version where it tells it (CBC's binary does), else 'unknown'.

    PuLP's version alone would not tell a reproduction which CBC ran.
    """
    path = getattr(solver, "path", None)
    return _command_version(path) if isinstance(path, str) and path else "unknown"


def _pulp_variable(problem: Any, name: str) -> Any:
    """A continuous variable >= 0, through PuLP 4's `add_variable` where PuLP has it."""
    import pulp

    if hasattr(problem, "add_variable"):
        return problem.add_variable(name, lowBound=0)
    return pulp.LpVariable(name, lowBound=0)


class PulpBackend:
    """Any PuLP solver, the problem built from the same matrices with generated names.

    Row and column names given to PuLP are `r0000012` and `c0000034`: PuLP rewrites
    characters such as '-' and '[', so our own names never reach it. With
    `leave_out_implied` the rows that others imply are not given to it (dual 0), as with
    HiGHS: a source's marginal value then sits on its budget row.
    """

    # Values come back through CBC's solution file, 8 significant digits: z* may be read
    # up to half a unit of the 8th digit above what is feasible.
    value_precision = 1e-8

    def __init__(self, lp: LinearProgram, solver_name: str = "cbc",
                 leave_out_implied: bool = False):
        import pulp

        self.lp = lp
        self.model_rows = (np.nonzero(~lp.implied_rows())[0] if leave_out_implied
                           else np.arange(lp.n_rows))
        self.solver_name = solver_name
        solver = _pulp_solver(solver_name)
        self._sign = _pulp_dual_sign(solver_name)
        self.info = SolverInfo(
            f"pulp:{solver.name}" if solver_name not in {"cbc"} else "cbc",
            _pulp_solver_version(solver),
            {"msg": False, "pulp": getattr(pulp, "__version__", "?"),
             **({"options": list(CBC_OPTIONS)} if solver_name == "cbc" else {}),
             **({"implied_rows": "left out"} if leave_out_implied else {})},
        )
        self._pulp = pulp
        self.problem = pulp.LpProblem("gcm_fund", pulp.LpMaximize)
        width = max(7, len(str(max(lp.n_cols, lp.n_rows))))
        self.variables = [_pulp_variable(self.problem, f"c{j:0{width}d}")
                          for j in range(lp.n_cols)]
        csr = lp.matrix.tocsr()
        self.constraints = []
        for i in self.model_rows:
            lo, hi = csr.indptr[i], csr.indptr[i + 1]
            expr = pulp.LpAffineExpression(
                [(self.variables[j], float(v)) for j, v in zip(csr.indices[lo:hi], csr.data[lo:hi],
                                                                strict=True)]
            )
            sense = pulp.LpConstraintLE if lp.sense[i] == LE else pulp.LpConstraintGE
            constraint = pulp.LpConstraint(expr, sense=sense, rhs=float(lp.rhs[i]),
                                           name=f"r{i:0{width}d}")
            self.problem.addConstraint(constraint)
            self.constraints.append(constraint)

    def solve(self, cost: np.ndarray, z_bounds: tuple[float, float] | None,
              rhs: np.ndarray) -> StageSolution:
        """Maximise cost.x from scratch (PuLP keeps no basis)."""
        pulp = self._pulp
        self.problem.setObjective(
            pulp.LpAffineExpression(
                [(v, float(c)) for v, c in zip(self.variables, cost, strict=True) if c != 0]
            )
        )
        if z_bounds is not None:
            z = self.variables[-1]
            z.lowBound, z.upBound = float(z_bounds[0]), float(z_bounds[1])
        for constraint, value in zip(self.constraints, rhs[self.model_rows], strict=True):
            constraint.constant = -float(value)
        with _quiet_stdout():
            self.problem.solve(_pulp_solver(self.solver_name))
        status = pulp.LpStatus[self.problem.status]
        if status == "Infeasible":
            return StageSolution(INFEASIBLE, z_bounds=z_bounds)
        if status != "Optimal":
            raise RuntimeError(f"{self.info.name} stopped with status {status}")
        values = np.array([v.varValue or 0.0 for v in self.variables])
        duals = np.zeros(self.lp.n_rows)
        duals[self.model_rows] = np.array([c.pi or 0.0 for c in self.constraints]) * self._sign
        reduced = np.array([v.dj or 0.0 for v in self.variables]) * self._sign
        return StageSolution(
            OPTIMAL,
            objective=float(cost @ values),
            col_value=values,
            row_dual=duals,
            col_dual=reduced,
            z_bounds=z_bounds,
        )


def make_backend(lp: LinearProgram, solver: str = "highs") -> Backend:
    """The backend for a solver name: `highs` (default), `cbc`, or a PuLP solver name.

    Both leave out the rows that others imply (`LinearProgram.implied_rows`); HiGHS also
    solves over a column pool (`pricing`). PuLP gets every column: it keeps no model
    between solves to add columns to.
    """
    if solver == "highs":
        return HighsBackend(lp, ColumnPool(lp), leave_out_implied=True)
    return PulpBackend(lp, solver, leave_out_implied=True)


def stage2_floor_bounds(policy: Policy, floor: float, value_precision: float = 0.0
                        ) -> tuple[float, float]:
    """Stage 2's bounds on z: z >= max(z_min, z* - tolerance), z <= 1 (SPEC section 4).

    A z* read back rounded (CBC: 8 digits, `value_precision` 1e-8) may lie above the
    feasible one, so stage 2 gives up at least that rounding, or a finer tolerance would
    make it infeasible.
    """
    equity = policy.equity
    slack = max(equity.tolerance, value_precision * floor)
    return (max(equity.min_floor, floor - slack), 1.0)


def solve_stages(lp: LinearProgram, backend: Backend,
                 rhs: np.ndarray | None = None) -> Solution:
    """Stage 1 (maximise the floor z) then stage 2 (maximise the weighted objective).

    Raises `InfeasibleError`, with a diagnosis, when no allocation meets the policy.
    """
    check_structurally_feasible(lp)
    rhs = lp.rhs if rhs is None else rhs
    equity = lp.policy.equity
    stage1: StageSolution | None = None
    floor: float | None = None
    z_bounds: tuple[float, float] | None = None
    if lp.has_floor:
        if equity.maximize:
            log.info("stage 1: maximising the floor z (%s)", backend.info.name)
            stage1 = backend.solve(lp.stage1_objective(), (equity.min_floor, 1.0), rhs)
            if stage1.status == INFEASIBLE:
                log.info("stage 1: infeasible; diagnosing")
                raise InfeasibleError(diagnose(lp, rhs))
            floor = min(1.0, float(stage1.col_value[lp.n_x]))
            log.info("stage 1: floor z* = %.9g", floor)
            z_bounds = stage2_floor_bounds(lp.policy, floor,
                                           getattr(backend, "value_precision", 0.0))
        else:
            floor = equity.min_floor
            z_bounds = (equity.min_floor, equity.min_floor)
    log.info("stage 2: maximising the weighted objective%s",
             "" if z_bounds is None else f" with z in [{z_bounds[0]:.9g}, {z_bounds[1]:.9g}]")
    stage2 = backend.solve(lp.stage2_objective(), z_bounds, rhs)
    if stage2.status == INFEASIBLE:
        log.info("stage 2: infeasible; diagnosing")
        raise InfeasibleError(diagnose(lp, rhs))
    log.info("stage 2: weighted objective %.12g (USD millions)", stage2.objective)
    x_usd = np.clip(stage2.col_value[: lp.n_x], 0.0, None) * SCALE_USD
    return Solution(
        status=OPTIMAL,
        floor=floor,
        weighted_usd=stage2.objective * SCALE_USD,
        x_usd=x_usd,
        stage1=stage1,
        stage2=stage2,
        solver=backend.info,
        rhs=rhs,
    )


def solve(lp: LinearProgram, solver: str = "highs") -> Solution:
    """Both stages of `lp` with the named solver."""
    return solve_stages(lp, make_backend(lp, solver))


def diagnose(lp: LinearProgram, rhs: np.ndarray) -> Diagnosis:
    """Why the policy cannot be met: an elastic re-solve with a priced slack on every `>=` row.

    The floor is held at its minimum level; each floor and thematic row may fall short at
    a cost of one per USD. The slacks left are what has to give; the `<=` rows with a
    non-zero dual are the rules in the way. Solved like `allocate`: over a pool of
    allocation columns, the others priced in.
    """
    elastic = lp.elastic()
    ge_rows = np.nonzero(lp.sense == GE)[0]
    cost = np.concatenate([np.zeros(lp.n_cols), -np.ones(len(ge_rows))])
    z_min = lp.policy.equity.min_floor
    backend = HighsBackend(elastic, ColumnPool(elastic), leave_out_implied=True)
    solution = backend.solve(cost, (z_min, z_min) if lp.has_floor else None, rhs)
    if solution.status != OPTIMAL:  # cannot happen: nothing allocated is always feasible
        raise RuntimeError("HiGHS found the elastic diagnosis infeasible")
    values, duals = solution.col_value, solution.row_dual
    names = lp.row_names()
    families = lp.row_families()
    short = values[lp.n_cols:] * SCALE_USD
    shortfalls = [
        Shortfall(names[r], str(families[r]), float(s))
        for r, s in zip(ge_rows, short, strict=True) if s > 0.005
    ]
    shortfalls.sort(key=lambda s: (-s.short_usd, s.row))
    le_rows = np.nonzero((lp.sense == LE) & (np.abs(duals) > 1e-9))[0]
    blocking = [names[r] for r in le_rows[np.argsort(-np.abs(duals[le_rows]), kind="stable")]]
    return Diagnosis(reason=_diagnosis_text(lp, shortfalls, blocking), shortfalls=shortfalls,
                     blocking=blocking)


def _usd(amount: float) -> str:
    if abs(amount) >= 1e9:
        return f"USD {amount / 1e9:,.2f} billion"
    if abs(amount) >= 1e6:
        return f"USD {amount / 1e6:,.2f} million"
    return f"USD {amount:,.2f}"


def _group_words(group: str) -> str:
    """How the diagnosis names the equity group before "floor": nothing for all gaps."""
    return "" if group == "all" else f"{group.upper()} "


def _diagnosis_text(lp: LinearProgram, shortfalls: list[Shortfall], blocking: list[str]) -> str:
    equity = lp.policy.equity
    lines = []
    by_family: dict[str, list[Shortfall]] = {}
    for s in shortfalls:
        by_family.setdefault(s.family, []).append(s)
    for family, items in by_family.items():
        total = sum(s.short_usd for s in items)
        largest = items[0]
        if family == "floor":
            lines.append(
                f"the {_group_words(equity.group)}floor of {equity.min_floor:.0%} cannot be met: "
                f"{len(items)} {'gaps fall' if len(items) > 1 else 'gap falls'} short by "
                f"{_usd(total)} in all "
                f"(largest: {largest.row}, short {_usd(largest.short_usd)})"
            )
        else:
            lines.append(
                f"{family}: {len(items)} rule{'s' if len(items) > 1 else ''} short by "
                f"{_usd(total)} (largest: {largest.row}, short {_usd(largest.short_usd)})"
            )
    if not lines:
        lines.append("the rules cannot all hold")
    shown = blocking[:8]
    if shown:
        more = f" and {len(blocking) - len(shown)} more" if len(blocking) > len(shown) else ""
        lines.append(f"binding: {', '.join(shown)}{more}")
    return "; ".join(lines)
