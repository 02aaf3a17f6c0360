"""Why a policy cannot be met: the diagnosis written to `diagnosis.json` (exit status 3)."""

from __future__ import annotations

import numpy as np

from .backend import OPTIMAL
from .errors import Diagnosis, Shortfall
from .highs_backend import HighsBackend
from .model import GE, LE, SCALE_USD, LinearProgram
from .pricing import ColumnPool
from .writing import usd_short


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
    z = elastic.z_col
    solution = backend.solve(cost, {} if z is None else {z: (z_min, z_min)}, rhs)
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
