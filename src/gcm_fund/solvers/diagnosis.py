"""Why a policy cannot be met: the diagnosis written to `diagnosis.json` (exit status 3).

Two views of one infeasibility. The elastic re-solve (`shortfalls`, `blocking`) finds the
least total USD by which the `>=` rules (floor, thematic shares) must fall short: the
cheapest rule to relax. The conflict (`conflict`) is an irreducible infeasible subset of
the rules (HiGHS's IIS): rules that cannot hold together though any smaller part of them
can, each with the USD it alone would need to give. The first says what is cheapest to
change, the second what is in conflict: a thematic share whose only gap is capped,
against a minimum floor, is the share, the cap, the floor rows and the minimum floor.
"""

from __future__ import annotations

import logging

import numpy as np

from gcm_fund.errors import ConflictRule, Diagnosis, Shortfall
from gcm_fund.model.lp import GE, LE, SCALE_USD, LinearProgram
from gcm_fund.model.spec import POSITIVE_DUAL
from gcm_fund.solvers.backend import INFEASIBLE, OPTIMAL
from gcm_fund.solvers.highs import HighsBackend
from gcm_fund.solvers.pricing import ColumnPool
from gcm_fund.writing import usd_short

log = logging.getLogger(__name__)

# The conflict costs an IIS (many LP solves over every column: no pool) and one LP per
# member, and HiGHS's IIS grows faster than the LP (docs/performance.md). Above this many
# allocation columns it is left out, and the diagnosis has the elastic view only, solved
# over a pool.
CONFLICT_MAX_COLUMNS = 15_000
# Each member's own need is one LP: beyond this many members the rest are named only.
NEED_MAX_MEMBERS = 20
# The message names this many members; diagnosis.json holds them all.
CONFLICT_SHOWN = 8


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
    le_rows = np.nonzero((lp.sense == LE) & (np.abs(duals) > POSITIVE_DUAL))[0]
    blocking = [names[r] for r in le_rows[np.argsort(-np.abs(duals[le_rows]), kind="stable")]]
    found = conflict(lp, rhs)
    reason = _diagnosis_text(lp, shortfalls, blocking)
    if found:
        reason += "; " + _conflict_text(found)
    return Diagnosis(reason=reason, shortfalls=shortfalls, blocking=blocking, conflict=found)


def conflict(lp: LinearProgram, rhs: np.ndarray) -> list[ConflictRule]:
    """An irreducible set of rules that cannot hold together at stage 1's bounds (z at
    least `min_floor`), each with the USD it alone would need to give; empty when the LP
    is too large (`CONFLICT_MAX_COLUMNS`) or HiGHS finds no set."""
    if lp.n_x > CONFLICT_MAX_COLUMNS:
        return []
    z = lp.z_col
    z_min = lp.policy.equity.min_floor
    bounds = {} if z is None else {z: (z_min, 1.0)}
    backend = HighsBackend(lp, leave_out_implied=True)
    if backend.solve(lp.stage1_objective(), bounds, rhs).status != INFEASIBLE:
        return []
    found = backend.iis()
    if found is None:
        return []
    rows, cols = found
    names = lp.row_names()
    families = lp.row_families()
    members = sorted({int(r) for r in rows})
    # Each member's need is measured within the set: the rules outside it are lifted (an
    # infinite right-hand side), so that another conflict elsewhere in a large policy does
    # not leave every member's figure blank.
    set_rhs = np.where(lp.sense == GE, -np.inf, np.inf)
    set_rhs[members] = rhs[members]
    out = [ConflictRule(names[r], str(families[r]), _need_usd(lp, set_rhs, r, bounds))
           if k < NEED_MAX_MEMBERS else ConflictRule(names[r], str(families[r]), checked=False)
           for k, r in enumerate(members)]
    if z is not None and z in set(int(c) for c in cols) and z_min > 0:
        out.append(ConflictRule("equity.min_floor", "floor",
                                floor_reach=_floor_reach(lp, rhs)))
    log.info("conflict: %s", ", ".join(c.row for c in out))
    return out


def _need_usd(lp: LinearProgram, rhs: np.ndarray, row: int,
              bounds: dict[int, tuple[float, float]]) -> float | None:
    """How far row `row` alone must give (USD) for every other rule of `rhs` to hold (a
    rule with an infinite right-hand side is lifted); None when that is not enough."""
    import scipy.sparse as sp  # here: `validate` imports this module but never a matrix

    sign = 1.0 if lp.sense[row] == GE else -1.0  # the slack adds to the lhs of a >= row
    column = sp.csc_matrix(([sign], ([row], [0])), shape=(lp.n_rows, 1))
    relaxed = lp.with_columns(["relax"], column)
    cost = np.zeros(relaxed.n_cols)
    cost[relaxed.n_cols - 1] = -1.0
    solution = HighsBackend(relaxed, leave_out_implied=True).solve(cost, bounds, rhs)
    if solution.status != OPTIMAL:
        return None
    return float(solution.col_value[relaxed.n_cols - 1]) * SCALE_USD


def _floor_reach(lp: LinearProgram, rhs: np.ndarray) -> float | None:
    """The highest floor z the other rules allow (z from 0)."""
    z = lp.z_col
    assert z is not None
    solution = HighsBackend(lp, leave_out_implied=True).solve(lp.stage1_objective(),
                                                             {z: (0.0, 1.0)}, rhs)
    return float(solution.col_value[z]) if solution.status == OPTIMAL else None


def _conflict_text(rules: list[ConflictRule]) -> str:
    """The conflict in words: each rule with what it alone would need."""
    parts = []
    for rule in rules[:CONFLICT_SHOWN]:
        if rule.row == "equity.min_floor":
            reach = ("" if rule.floor_reach is None
                     else f": the other rules allow at most {rule.floor_reach:.2%}")
            parts.append(f"equity.min_floor{reach}")
        elif not rule.checked:
            parts.append(rule.row)
        elif rule.need_usd is None:
            parts.append(f"{rule.row} (not enough alone)")
        elif rule.family in ("floor", "thematic"):
            parts.append(f"{rule.row} (alone: {usd_short(rule.need_usd)} short)")
        else:
            parts.append(f"{rule.row} (alone: {usd_short(rule.need_usd)} more)")
    if len(rules) > CONFLICT_SHOWN:
        parts.append(f"and {len(rules) - CONFLICT_SHOWN} more (all in diagnosis.json)")
    return ("in conflict (these rules cannot hold together; without any one of them the "
            "rest of them can, each giving what it alone would need): " + ", ".join(parts))


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
