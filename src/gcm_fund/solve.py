"""The two-stage solve of SPEC section 4, and the diagnosis when no allocation exists.

Stage 1 maximises the floor z, stage 2 the weighted objective with z held near z*. The
solver is a backend (`highs_backend`, default, or `pulp_backend`); whatever it is, duals
leave it as d objective / d rhs and reduced costs as d objective / d bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .backend import INFEASIBLE, OPTIMAL, Backend, SolverInfo, StageSolution
from .errors import Diagnosis, InfeasibleError, Shortfall
from .highs_backend import HighsBackend
from .model import GE, LE, SCALE_USD, LinearProgram, check_structurally_feasible
from .pricing import ColumnPool
from .pulp_backend import PulpBackend
from .schema import Policy
from .writing import usd_short

log = logging.getLogger(__name__)


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
                f"{usd_short(total)} in all "
                f"(largest: {largest.row}, short {usd_short(largest.short_usd)})"
            )
        else:
            lines.append(
                f"{family}: {len(items)} rule{'s' if len(items) > 1 else ''} short by "
                f"{usd_short(total)} (largest: {largest.row}, short {usd_short(largest.short_usd)})"
            )
    if not lines:
        lines.append("the rules cannot all hold")
    shown = blocking[:8]
    if shown:
        more = f" and {len(blocking) - len(shown)} more" if len(blocking) > len(shown) else ""
        lines.append(f"binding: {', '.join(shown)}{more}")
    return "; ".join(lines)
