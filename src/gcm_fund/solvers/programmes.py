"""One MIP or LP of the programmes method (docs/programmes.md), maximised on HiGHS (highspy) or on a
PuLP solver (CBC), from its matrix: MIP gaps 0 on both, duals d objective / d rhs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SUB_MIP_HEURISTICS = ("mip_heuristic_run_rins", "mip_heuristic_run_rens",
                      "mip_heuristic_run_root_reduced_cost")
# Column generation (`solve_lp_priced`): columns entering per group and round, and the
# reduced cost (relative to the largest cost) below which a column is priced out.
PRICED_PER_GROUP = 4
REDUCED_COST_TOLERANCE = 1e-9
FIXED_ROW_TOLERANCE = 1e-9  # a row's slack when every column is fixed (relative)


def solve_matrix(matrix: sp.spmatrix, cost: np.ndarray, row_lo: np.ndarray,
                 row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
                 kinds: np.ndarray, solver: str, start: np.ndarray | None = None) -> Solved:
    """Maximise cost.x with row_lo <= matrix x <= row_hi and column bounds; `kinds` 1
    marks an integer column. `start`: a feasible point HiGHS starts its search from (an
    incumbent; it changes the time, not the optimum). The solver sees only the columns
    that are not fixed (a held selection fixes most of them): the rows' bounds take the
    fixed columns' part, and the values and objective are the whole problem's."""
    free = col_lo != col_hi
    if free.all() and free.any():
        return _solve_free(sp.csc_matrix(matrix), cost, row_lo, row_hi, col_lo, col_hi,
                           kinds, solver, start)
    csc = sp.csc_matrix(matrix)
    shift = csc[:, ~free] @ col_lo[~free]
    # Nothing to choose (no column, or all fixed; a solver calls an empty model neither
    # optimal nor infeasible): the fixed point meets the rows or not.
    if not free.any():
        slack = FIXED_ROW_TOLERANCE * np.maximum(1.0, np.abs(shift))
        fits = bool(np.all(row_lo - slack <= shift) and np.all(shift <= row_hi + slack))
        return Solved(fits, col_lo.copy(), float(cost @ col_lo) if fits else float("nan"),
                      np.zeros(matrix.shape[0]))
    solved = _solve_free(csc[:, free], cost[free], row_lo - shift, row_hi - shift,
                         col_lo[free], col_hi[free], kinds[free], solver,
                         None if start is None else start[free])
    values = col_lo.astype(float)
    values[free] = solved.values
    return Solved(solved.optimal, values, float(cost @ values) if solved.optimal
                  else solved.objective, solved.row_dual)


def first_per_group(group: np.ndarray, score: np.ndarray, eligible: np.ndarray,
                    count: int) -> np.ndarray:
    """The `count` eligible entries of highest score in each group (ties by position)."""
    chosen = np.zeros(len(group), dtype=bool)
    index = np.nonzero(eligible)[0]
    if not len(index):
        return chosen
    order = index[np.lexsort((index, -score[index], group[index]))]
    starts = np.r_[True, group[order][1:] != group[order][:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    chosen[order[np.arange(len(order)) - run_start < count]] = True
    return chosen


def solve_lp_priced(matrix: sp.spmatrix, cost: np.ndarray, row_lo: np.ndarray,
                    row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray, solver: str,
                    group: np.ndarray, score: np.ndarray) -> Solved:
    """An LP by column generation over its first `len(group)` columns (each >= 0 with no
    upper bound, at 0 unless it enters): each group starts with its `PRICED_PER_GROUP` of
    highest `score`, the other columns all in; each round the restricted LP's row duals
    price the columns left out, and the `PRICED_PER_GROUP` of highest reduced cost in each
    group enter, until none has a positive one. The duals then price every column: the
    LP's optimum, with duals valid for the whole LP (docs/programmes.md)."""
    n_priced = len(group)
    priced = np.zeros(matrix.shape[1], dtype=bool)
    priced[:n_priced] = True
    group = np.r_[group, np.full(matrix.shape[1] - n_priced, -1)]
    first = first_per_group(group, np.r_[score, np.zeros(matrix.shape[1] - n_priced)], priced,
                            PRICED_PER_GROUP)
    csc = sp.csc_matrix(matrix)
    kinds = np.zeros(csc.shape[1], dtype=np.int32)
    active = ~priced | first
    tolerance = REDUCED_COST_TOLERANCE * max(1.0, float(np.abs(cost).max(initial=0.0)))
    while True:
        solved = solve_matrix(csc[:, active], cost[active], row_lo, row_hi, col_lo[active],
                              col_hi[active], kinds[active], solver)
        if not solved.optimal:  # restricted: the whole LP decides
            return solve_matrix(csc, cost, row_lo, row_hi, col_lo, col_hi, kinds, solver)
        reduced = cost - csc.T @ solved.row_dual
        entering = priced & ~active & (reduced > tolerance)
        if not entering.any():
            values = np.zeros(csc.shape[1])
            values[active] = solved.values
            return Solved(True, values, float(cost @ values), solved.row_dual)
        active |= first_per_group(group, reduced, entering, PRICED_PER_GROUP)


def _solve_free(matrix: sp.csc_matrix, cost: np.ndarray, row_lo: np.ndarray,
                row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
                kinds: np.ndarray, solver: str, start: np.ndarray | None) -> Solved:
    if solver == "highs":
        return _solve_highs(matrix, cost, row_lo, row_hi, col_lo, col_hi, kinds, start)
    return _solve_pulp(matrix, cost, row_lo, row_hi, col_lo, col_hi, kinds, solver)


@dataclass
class Solved:
    """One solve: status, values and (for an LP) row duals d objective / d rhs."""

    optimal: bool
    values: np.ndarray
    objective: float
    row_dual: np.ndarray


def _solve_highs(matrix: sp.csc_matrix, cost: np.ndarray, row_lo: np.ndarray,
                 row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
                 kinds: np.ndarray, start: np.ndarray | None = None) -> Solved:
    import highspy

    from gcm_fund.solvers.highs_calls import new_highs

    highs = new_highs()
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.setOptionValue("mip_abs_gap", 0.0)
    # The sub-MIP heuristics took most of these MIPs' time at the root; with gaps 0 the
    # search proves the optimum without them (docs/performance.md).
    for heuristic in SUB_MIP_HEURISTICS:
        highs.setOptionValue(heuristic, False)
    inf = highspy.kHighsInf
    csc = matrix
    n_rows, n_cols = csc.shape

    def bounded(a: np.ndarray) -> np.ndarray:
        return np.clip(a.astype(np.float64), -inf, inf)

    highs.passModel(n_cols, n_rows, csc.nnz, 1, -1, 0.0, cost.astype(np.float64),
                    bounded(col_lo), bounded(col_hi), bounded(row_lo), bounded(row_hi),
                    csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
                    csc.data.astype(np.float64), kinds.astype(np.int32))
    if start is not None and kinds.any():
        incumbent = highspy.HighsSolution()
        incumbent.col_value = np.asarray(start, dtype=np.float64).tolist()
        highs.setSolution(incumbent)
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        return Solved(False, np.zeros(n_cols), float("nan"), np.zeros(n_rows))
    solution = highs.getSolution()
    values = np.array(solution.col_value)
    duals = np.array(solution.row_dual) if solution.dual_valid else np.zeros(n_rows)
    # Passed as a maximisation, HiGHS's row duals are d objective / d rhs (as the backend).
    return Solved(True, values, float(cost @ values), duals)


def _solve_pulp(matrix: sp.spmatrix, cost: np.ndarray, row_lo: np.ndarray,
                row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
                kinds: np.ndarray, solver: str) -> Solved:
    import pulp

    from gcm_fund.solvers.backend import quiet_stdout
    from gcm_fund.solvers.pulp import _pulp_dual_sign, _pulp_solver, _pulp_variable

    matrix = sp.csr_matrix(matrix)  # read by rows
    problem = pulp.LpProblem("programmes", pulp.LpMaximize)
    width = len(str(matrix.shape[1]))
    variables = [_pulp_variable(problem, f"c{j:0{width}d}") for j in range(matrix.shape[1])]
    for j, variable in enumerate(variables):
        variable.lowBound = None if np.isinf(col_lo[j]) else float(col_lo[j])
        variable.upBound = None if np.isinf(col_hi[j]) else float(col_hi[j])
        if kinds[j]:
            variable.cat = pulp.LpInteger
    problem.setObjective(pulp.LpAffineExpression(
        [(v, float(c)) for v, c in zip(variables, cost, strict=True) if c != 0]))
    constraints = []
    for i in range(matrix.shape[0]):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        expr = pulp.LpAffineExpression([(variables[j], float(v)) for j, v in
                                        zip(matrix.indices[lo:hi], matrix.data[lo:hi],
                                            strict=True)])
        for bound, sense, tag in ((row_lo[i], pulp.LpConstraintGE, "g"),
                                  (row_hi[i], pulp.LpConstraintLE, "l")):
            if np.isfinite(bound):
                c = pulp.LpConstraint(expr, sense=sense, rhs=float(bound), name=f"r{tag}{i}")
                problem.addConstraint(c)
                constraints.append((i, c))
    name = {"cbc": "PULP_CBC_CMD"}.get(solver, solver)
    backend = _pulp_solver(solver)
    if name == "PULP_CBC_CMD":
        backend.optionsDict["gapRel"] = 0.0
        backend.optionsDict["gapAbs"] = 0.0
    with quiet_stdout():
        problem.solve(backend)
    if pulp.LpStatus[problem.status] != "Optimal":
        return Solved(False, np.zeros(matrix.shape[1]), float("nan"),
                      np.zeros(matrix.shape[0]))
    values = np.array([v.varValue or 0.0 for v in variables])
    duals = np.zeros(matrix.shape[0])
    if not kinds.any():
        sign = _pulp_dual_sign(solver)
        for i, c in constraints:
            duals[i] += (c.pi or 0.0) * sign
    return Solved(True, values, float(cost @ values), duals)


class HeldLP:
    """One LP kept in HiGHS between solves that differ only in their column bounds (a
    selection held, then another): each solve starts from the last one's basis, so a
    selection near the last costs a few pivots, not a solve from scratch."""

    def __init__(self, matrix: sp.spmatrix, cost: np.ndarray, row_lo: np.ndarray,
                 row_hi: np.ndarray):
        import highspy

        from gcm_fund.solvers.highs_calls import new_highs

        self.highs = new_highs()
        self.cost = cost
        inf = highspy.kHighsInf
        csc = sp.csc_matrix(matrix)
        self.n_rows, self.n_cols = csc.shape
        self.highs.passModel(self.n_cols, self.n_rows, csc.nnz, 1, -1, 0.0,
                             cost.astype(np.float64), np.zeros(self.n_cols),
                             np.full(self.n_cols, inf), np.clip(row_lo, -inf, inf),
                             np.clip(row_hi, -inf, inf), csc.indptr.astype(np.int32),
                             csc.indices.astype(np.int32), csc.data.astype(np.float64),
                             np.zeros(self.n_cols, dtype=np.int32))
        self.lo = np.zeros(self.n_cols)
        self.hi = np.full(self.n_cols, inf)

    def solve(self, col_lo: np.ndarray, col_hi: np.ndarray) -> Solved:
        """Maximise over these column bounds."""
        import highspy

        inf = highspy.kHighsInf
        lo = np.clip(col_lo, -inf, inf).astype(np.float64)
        hi = np.clip(col_hi, -inf, inf).astype(np.float64)
        changed = np.nonzero((lo != self.lo) | (hi != self.hi))[0]
        if len(changed):  # only the columns whose bounds move: the rest keep their state
            self.highs.changeColsBounds(len(changed), changed.astype(np.int32), lo[changed],
                                        hi[changed])
            self.lo, self.hi = lo, hi
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return Solved(False, np.zeros(self.n_cols), float("nan"), np.zeros(self.n_rows))
        solution = self.highs.getSolution()
        values = np.array(solution.col_value)
        return Solved(True, values, float(self.cost @ values), np.array(solution.row_dual))
