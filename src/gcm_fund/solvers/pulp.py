"""Any PuLP solver (its bundled CBC by default) as a backend, built from the same matrices."""

from __future__ import annotations

import functools
import logging
import re
import subprocess
import warnings
from typing import Any

import numpy as np

from gcm_fund.errors import UsageError
from gcm_fund.model.lp import LE, LinearProgram
from gcm_fund.solvers.backend import (
    INFEASIBLE,
    OPTIMAL,
    Backend,
    Bounds,
    SolverInfo,
    SolverStopped,
    StageSolution,
    Status,
    quiet_stdout,
)

log = logging.getLogger(__name__)

_PULP_DUAL_SIGN: dict[str, float] = {}
# CBC's default dual feasibility tolerance (1e-7) lets it call a badly scaled stage 1
# optimal at z = 0 (needs from USD 1e6 to 1e14, so the z column spans 1 to 1e8 in USD
# millions); at HiGHS's 1e-9 it finds z*. Pinned by test_badly_scaled_amounts_*. Its
# default primal tolerance (1e-7 of USD 1 million, USD 0.10) leaves gaps of a few cents
# at 0 under levels, below their held rows: 1e-9 as HiGHS.
CBC_OPTIONS = ("dualT 1e-9", "primalT 1e-9")


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
        with quiet_stdout():
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
            value_precision=self.value_precision,
        )
        self._pulp = pulp
        self.problem = pulp.LpProblem("gcm_fund", pulp.LpMaximize)
        width = max(7, len(str(max(lp.n_cols, lp.n_rows))))
        self.variables = [_pulp_variable(self.problem, f"c{j:0{width}d}")
                          for j in range(lp.n_cols)]
        csr = lp.rows()
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
        # The matrix by columns over the rows given to PuLP, for `_write_mps`.
        self._columns = csr[self.model_rows].tocsc()
        self._columns.sort_indices()
        self._bounds: Bounds = {}
        self._cost = np.zeros(lp.n_cols)
        self._rhs = np.zeros(len(self.model_rows))

    def solve(self, cost: np.ndarray, bounds: Bounds, rhs: np.ndarray, trial: bool = False,
              fresh: bool = False) -> StageSolution:
        """Maximise cost.x from scratch (PuLP keeps no basis)."""
        pulp = self._pulp
        bounds = dict(bounds)
        self.problem.setObjective(
            pulp.LpAffineExpression(
                [(v, float(c)) for v, c in zip(self.variables, cost, strict=True) if c != 0]
            )
        )
        for col, (low, high) in bounds.items():
            variable = self.variables[col]
            variable.lowBound = float(low)
            variable.upBound = None if np.isinf(high) else float(high)
        for constraint, value in zip(self.constraints, rhs[self.model_rows], strict=True):
            constraint.constant = -float(value)
        self._cost, self._bounds = np.asarray(cost, dtype=float), bounds
        self._rhs = np.asarray(rhs[self.model_rows], dtype=float)
        # CBC reads the problem from an MPS file that PuLP writes in pure Python, a third of
        # a CBC run's time: the same text, written from the matrices (`_write_mps`).
        self.problem.writeMPS = self._write_mps
        with quiet_stdout():
            self.problem.solve(_pulp_solver(self.solver_name))
        status = self._status()
        if status == INFEASIBLE:
            return StageSolution(INFEASIBLE, bounds=bounds)
        values = np.array([v.varValue or 0.0 for v in self.variables])
        duals = np.zeros(self.lp.n_rows)
        duals[self.model_rows] = np.array([c.pi or 0.0 for c in self.constraints]) * self._sign
        reduced = np.array([v.dj or 0.0 for v in self.variables]) * self._sign
        solution = StageSolution(OPTIMAL, objective=float(cost @ values), col_value=values,
                                 row_dual=duals, col_dual=reduced, bounds=bounds)
        # A level read back a rounding low holds a State's gaps that much below it, and the
        # money it frees goes to the State's last gap, past docs/model.md's tolerance.
        refined = refined_values(self.lp, solution, cost, rhs)
        if refined is not None:
            solution.col_value = refined
            solution.objective = float(cost @ refined)
        # The duals come back with 8 digits too: a column whose reduced cost is 0 gets
        # one of 1e-8 of its terms, which `certify` prices at the most the column can
        # carry, thousands of columns over (a level's dual bound then above it).
        exact = refined_duals(self.lp, solution, cost, rhs)
        if exact is not None:
            solution.row_dual = exact
            solution.col_dual = cost - np.asarray(self.lp.matrix.T @ exact)
        return solution

    def _write_mps(self, filename: str, mpsSense: int = 0, rename: int = 0,  # noqa: N803
                   mip: int = 1, with_objsense: bool = False) -> Any:
        """PuLP's `LpProblem.writeMPS(filename, rename=1)`, byte for byte, from the
        matrices: PuLP's solvers call it this way. Any other call, or an objective with no
        term (PuLP adds a dummy variable then), goes to PuLP's own writer."""
        from pulp import mps_lp

        if not rename or mpsSense not in (0, self.problem.sense) or with_objsense \
                or not (self._cost != 0).any():
            return mps_lp.writeMPS(self.problem, filename, mpsSense=mpsSense, rename=rename,
                                   mip=mip, with_objsense=with_objsense)
        lp, columns, n_rows = self.lp, self._columns, len(self.model_rows)
        sense = lp.sense[self.model_rows]
        lines = [f"*SENSE:{'Maximize' if self.problem.sense == -1 else 'Minimize'}\n",
                 "NAME          MODEL\n", "ROWS\n", " N  OBJ\n"]
        lines += [f" {'L' if sense[k] == LE else 'G'}  C{k:07d}\n" for k in range(n_rows)]
        lines.append("COLUMNS\n")
        # Column by column, its rows in order, then its objective term (a row after all).
        priced = np.nonzero(self._cost != 0)[0]
        col = np.concatenate([np.repeat(np.arange(lp.n_cols), np.diff(columns.indptr)),
                              priced])
        row = np.concatenate([columns.indices, np.full(len(priced), n_rows)])
        value = np.concatenate([columns.data, self._cost[priced]])
        order = np.lexsort((row, col))
        row_names = [f"C{k:07d}" for k in range(n_rows)] + ["OBJ     "]
        lines += [f"    X{c:07d}  {row_names[r]}  {v: .12e}\n" for c, r, v in
                  zip(col[order].tolist(), row[order].tolist(), value[order].tolist(),
                      strict=True)]
        lines.append("RHS\n")
        lines += [f"    RHS       C{k:07d}  {(float(v) if v != 0 else 0): .12e}\n"
                  for k, v in enumerate(self._rhs)]
        lines.append("BOUNDS\n")
        # Only the named columns are ever bounded (`Bounds`); a bound set for an earlier
        # stage stays on PuLP's variable, so the variables say what holds now.
        for j in sorted(set(range(lp.n_x, lp.n_cols)) | set(self._bounds)):
            name, variable = f"X{j:07d}", self.variables[j]
            low, upper = variable.lowBound, variable.upBound
            if low is not None and low == upper:
                lines.append(f" FX BND       {name}  {low: .12e}\n")
                continue
            if low is None:
                lines.append(f" {'MI' if upper is not None else 'FR'} BND       {name}\n")
            elif low != 0:
                lines.append(f" LO BND       {name}  {low: .12e}\n")
            if upper is not None:
                lines.append(f" UP BND       {name}  {upper: .12e}\n")
        lines.append("ENDATA\n")
        with open(filename, "w") as handle:
            handle.write("".join(lines))
        variables = self.problem._variables
        return (variables, {v.name: f"X{j:07d}" for j, v in enumerate(variables)},
                {c.name: f"C{k:07d}" for k, c in enumerate(self.constraints)}, "OBJ")

    def _status(self) -> Status:
        """The one mapping of PuLP's status to `Status`; any other is `SolverStopped`."""
        status = self._pulp.LpStatus[self.problem.status]
        if status == "Optimal":
            return OPTIMAL
        if status == "Infeasible":
            return INFEASIBLE
        raise SolverStopped(f"{self.info.name} stopped with status {status}")

    def value_from_basis(self, rhs: np.ndarray, col: int) -> float | None:
        """PuLP keeps no basis: always solve."""
        return None

    def start_from(self, other: Backend) -> None:
        """PuLP keeps no basis: nothing to start from."""


# A value read back within this (relative) of a bound sits at it: 8 significant digits
# are 5e-8 of the value at worst.
AT_BOUND = 1e-7
# The rows an optimum is moved onto hold it within this of their right-hand sides (or of
# 1): far below a cent in USD millions, far above float64's rounding.
ON_ROW = 1e-12


def refined_objective(lp: LinearProgram, solution: StageSolution, cost: np.ndarray,
                      rhs: np.ndarray) -> float | None:
    """The optimum of a stage solved on `lp` at `rhs` (`cost @ refined_values`), to
    float precision; None when it cannot be had."""
    refined = refined_values(lp, solution, cost, rhs)
    return None if refined is None else float(cost @ refined)


def refined_values(lp: LinearProgram, solution: StageSolution, cost: np.ndarray,
                   rhs: np.ndarray) -> np.ndarray | None:
    """An optimal solution of a stage solved on `lp` at `rhs`, to float precision, from
    values that came back rounded (CBC's 8 significant digits); None when it cannot be
    had.

    `cost @ values` is off by up to 5e-8 of each value: dollars on billions placed, where
    docs/model.md keeps the money placed within USD 0.01 per gap of X*. By
    complementary slackness, with an optimal dual y, `cost.x` takes the optimum at every
    x that keeps the rows of non-zero dual tight, the columns at their bounds where the
    values are, and moves only the columns between their bounds (zero reduced cost). So
    the values are moved onto those rows by the least change (least squares): `cost.x`
    is the optimum there, those rows hold to float64, and the others as CBC's tolerances
    let them. None when those rows cannot take the values within a rounding's reach: the
    duals read back do not name a consistent set of tight rows.
    """
    from scipy.sparse.linalg import lsqr

    x, free = _at_bounds(lp, solution)
    dual = np.asarray(solution.row_dual, dtype=float)
    matrix = lp.rows()
    found = _tight_rows(matrix, x, dual, cost, rhs)
    if found is None:
        log.info("refined objective: a row of non-zero dual is not tight; kept as read")
        return None
    tight, residual = found
    rows = matrix[tight]
    if len(tight) and len(free):
        block = rows[:, free]
        move = lsqr(block, residual, atol=1e-14, btol=1e-14, conlim=1e14,
                    iter_lim=20 * (len(tight) + len(free)))[0]
        off = block @ move - residual
        terms = np.maximum(np.abs(rows) @ np.abs(x), np.abs(rhs[tight]))
        if not bool(_rows_take(lp.sense[tight], off, terms,
                               _reach(rows, x, rhs[tight])).all()):
            log.info("refined objective: the tight rows do not take the values; kept as read")
            return None
        x[free] += move
    return x


def _reach(rows: Any, x: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """How far from its right-hand side each row's `a.x` may be read back: a rounding of
    its terms (8 significant digits of each)."""
    return AT_BOUND * (np.abs(rows) @ np.abs(x) + np.abs(rhs) + 1.0)


def _rows_take(sense: np.ndarray, off: np.ndarray, terms: np.ndarray, reach: np.ndarray
               ) -> np.ndarray:
    """Whether each row, `a.x - rhs = off` after a move, holds it: tight to `ON_ROW` of its
    `terms` (the larger of |a|.|x| and |rhs|, or 1), or slack by at most `reach` on its
    feasible side.

    Relative to the terms, not to the right-hand side alone: a level row's is 0, while
    beside gaps of USD 1e13 its `a.x` sums terms of 1e7 and more (USD millions), whose
    float rounding a bound of 1e-12 refused, leaving a level step's values as read. The
    rows the duals name need not be tight all at once: a budget that funds gaps held a margin below
    their levels is that margin above the sum of their holds, and CBC, within its
    tolerances, names the budget and every hold. Least squares then leaves the slack on
    the rows' feasible side, spread over them; a two-sided test refused it on the hold of
    the smallest gap (docs/model.md)."""
    wrong_side = np.where(sense == LE, off, -off)
    return (wrong_side <= ON_ROW * np.maximum(1.0, terms)) & (np.abs(off) <= reach)


def _at_bounds(lp: LinearProgram, solution: StageSolution) -> tuple[np.ndarray, np.ndarray]:
    """The values read back with those within a rounding of a bound set at it, and the
    columns strictly between their bounds."""
    x = np.asarray(solution.col_value, dtype=float).copy()
    low = np.zeros(lp.n_cols)
    high = np.full(lp.n_cols, np.inf)
    for col, (lower, upper) in solution.bounds.items():
        low[col], high[col] = lower, upper
    # Within the rounding of the bound itself: a bound of 0 is written exactly, and a
    # value of 4e-8 there is a basic column's, which the tight rows may need.
    at_low = np.abs(x - low) <= AT_BOUND * np.abs(low)
    at_high = ~at_low & np.isfinite(high) & (np.abs(x - high) <= AT_BOUND * np.abs(high))
    x = np.where(at_low, low, np.where(at_high, high, x))
    return x, np.nonzero(~(at_low | at_high))[0]


def _tight_rows(matrix: Any, x: np.ndarray, dual: np.ndarray, cost: np.ndarray,
                rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of non-zero dual that `x` holds tight within a rounding, and their
    residuals `rhs - a.x`; None when a real dual sits on a slack row (no optimum's)."""
    named = np.nonzero((dual != 0.0) & np.isfinite(rhs))[0]
    residual = rhs[named] - matrix[named] @ x
    reach = _reach(matrix[named], x, rhs[named])
    slack = np.abs(residual) > reach
    # A row with a dual of 2e-16 (CBC's noise) need not be tight: leaving it out moves
    # `cost.x` by its dual times its slack.
    if float(np.abs(dual[named[slack]] * residual[slack]).sum()) > \
            ON_ROW * max(1.0, abs(float(cost @ x))):
        return None
    return named[~slack], residual[~slack]


def refined_duals(lp: LinearProgram, solution: StageSolution, cost: np.ndarray,
                  rhs: np.ndarray) -> np.ndarray | None:
    """Optimal duals (d objective / d rhs) of a stage solved on `lp` at `rhs`, to float
    precision, from duals that came back rounded (CBC's 8 significant digits) or within a
    solver's dual tolerance (HiGHS's level steps); None when they cannot be had.

    An optimal dual y is non-zero on tight rows only and keeps the reduced cost
    `c - A^T y` at 0 on every column strictly between its bounds. Read back rounded, those
    reduced costs are 1e-8 of their terms instead, and a weak-duality bound prices each
    positive one at the most its column can carry. So y is moved on the tight rows of
    non-zero dual (the others' duals set to 0) by the least change (least squares) that
    makes the reduced cost 0 on every column where it is 0 within a rounding: those
    between their bounds and the degenerate ones at a bound. Where those equations do not
    hold together, on the columns between their bounds alone. A dual that the move takes
    across 0 (noise on a tight row) is set to 0. None when neither set of equations holds
    to float precision: the duals are kept as read.
    """
    dual = np.asarray(solution.row_dual, dtype=float)
    x, free = _at_bounds(lp, solution)
    matrix = lp.rows()
    found = _tight_rows(matrix, x, dual, cost, rhs)
    if found is None:
        log.info("refined duals: a row of non-zero dual is not tight; kept as read")
        return None
    tight = found[0]
    y = np.zeros(lp.n_rows)
    y[tight] = dual[tight]
    block_t = matrix[tight].T.tocsr()  # one row per column of the LP, on the tight rows
    reduced = cost - block_t @ y[tight]
    terms = np.abs(cost) + np.abs(block_t) @ np.abs(y[tight])
    zero = np.abs(reduced) <= AT_BOUND * terms
    between = np.zeros(lp.n_cols, dtype=bool)
    between[free] = True
    if not bool(zero[between].all()):
        # Not an optimal pair as read: such a column keeps its reduced cost as it is.
        log.info("refined duals: %d columns between their bounds have a reduced cost "
                 "beyond a rounding", int((between & ~zero).sum()))
    for on in (zero, zero & between):
        moved = _least_move(block_t[on], reduced[on], terms[on])
        if moved is not None:
            y[tight] += moved
            break
    else:
        log.info("refined duals: the reduced costs cannot be brought to 0; kept as read")
        return None
    # `>=` rows have duals <= 0, `<=` rows >= 0 (a maximisation).
    wrong = np.where(lp.sense[tight] == LE, y[tight] < 0, y[tight] > 0)
    y[tight[wrong]] = 0.0
    return y


def _least_move(block: Any, target: np.ndarray, terms: np.ndarray) -> np.ndarray | None:
    """The least `d` (least squares) with `block @ d = target` to `ON_ROW` of each row's
    `terms`, refined once on its own residual; None when it cannot be had."""
    from scipy.sparse.linalg import lsqr

    if block.shape[0] == 0:
        return np.zeros(block.shape[1])
    move = np.zeros(block.shape[1])
    limit = 20 * sum(block.shape)
    for _ in range(2):
        off = target - block @ move
        move += lsqr(block, off, atol=1e-15, btol=1e-15, conlim=1e14, iter_lim=limit)[0]
    off = block @ move - target
    if not bool((np.abs(off) <= ON_ROW * np.maximum(terms, 1e-300)).all()):
        return None
    return move
