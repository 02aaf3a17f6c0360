"""A min-cost flow's guess at where an allocation's money goes.

With the amount of each gap given, the rules left are a network: money flows from each
source's budget, through its per-State cap where it has one, to the gaps. OR-Tools'
network simplex solves that flow in well under a second where HiGHS, pivoting from a
stage's last basis over tens of thousands of pooled columns, takes many seconds to reach
a basis near it. The columns the flow uses are a good start for a stage's column pool
(`Pipeline.restart`); the stage's LP then proves its own optimum as always, so a poor
guess costs time, never correctness.
"""

from __future__ import annotations

import logging

import numpy as np

from gcm_fund.model.lp import LinearProgram, source_state_row_of

log = logging.getLogger(__name__)

# The flow works in whole units of the money to place divided by 2^FLOW_BITS, and in
# costs (of order 1, as the split's d in [1, 2)) rounded to 2^-COST_BITS: the total cost
# stays near 2^(FLOW_BITS + COST_BITS + 1), far inside the solver's 64-bit integers.
FLOW_BITS = 34
COST_BITS = 12
# Arcs per gap, about: its cheapest allowed columns. An optimum uses a few per gap, so
# the cheapest few dozen hold nearly all of the full flow's columns at a fraction of its
# time, and pricing finds the rest (figures in docs/performance.md).
ARCS_PER_GAP = 64
# Below this many allocation columns no guess is made: warm re-solves are quick there, and
# importing OR-Tools would cost more than the guess saves (docs/performance.md).
MIN_COLUMNS = 50_000


def flow_guess(stage: str, lp: LinearProgram, gaps: np.ndarray, demand: np.ndarray,
               rhs: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> np.ndarray | None:
    """The allocation columns that carry money in a least-cost flow that brings each of
    these `gaps` (indices into the data's gaps) its `demand` (scaled) from the budgets,
    through the per-State caps (both at `rhs`), at `cost` (per allocation column, to
    minimise; spread evenly over [1, 2), as the split's d), over about the
    `ARCS_PER_GAP` cheapest `allowed` columns of each gap; None when the flow solver is
    missing, gives no optimum, or the LP has under `MIN_COLUMNS` columns. `stage` names
    the stage it is for, in the log.

    The rules on a State's or a target's total (absorption, State share, thematic, the
    money placed) and the floors are left out, and money is counted in whole units: this
    is a guess at the support of an allocation that meets the demands, for a stage to
    start its column pool from (`Pipeline.restart`), not an allocation.
    """
    if lp.n_x < MIN_COLUMNS:
        return None
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError:  # pragma: no cover - a dependency; the LP alone still finds it
        return None
    n_x = lp.n_x
    demand_scaled = np.clip(demand, 0.0, None)
    total = float(demand_scaled.sum())
    if total <= 0.0 or n_x == 0:
        return None
    unit = total / 2.0**FLOW_BITS

    def units(amounts: np.ndarray) -> np.ndarray:
        # No arc needs more than all the demand: larger budgets (a pledge of USD 1e15
        # beside gaps of USD 1e6) would not fit in 64 bits.
        return np.floor(np.clip(amounts, 0.0, total) / unit).astype(np.int64)

    at = np.full(len(lp.data.gaps), -1)
    at[gaps] = np.arange(len(gaps))
    gap_at = at[lp.var_gap]
    demand = units(demand_scaled)
    columns = np.nonzero(allowed & (gap_at >= 0))[0]
    columns = columns[demand[gap_at[columns]] > 0]
    # The cheapest arcs of each gap, without sorting millions: costs spread evenly over
    # [1, 2) (the split's d), so those below 1 + ARCS_PER_GAP / (the gap's arcs).
    arcs = np.bincount(gap_at[columns], minlength=len(gaps))
    columns = columns[cost[columns] < 1.0 + ARCS_PER_GAP / arcs[gap_at[columns]]]
    n_sources = len(lp.pledge)
    budget = lp.block("budget")
    assert budget is not None
    supply = np.zeros(n_sources, dtype=np.int64)  # a source without a budget row: none
    budget_sources = lp._budget_sources
    supply[budget_sources] = units(rhs[budget.start:budget.stop])
    # A column passes through its (source, State) cap when that row binds anything.
    pair_row = source_state_row_of(lp)
    pairs = lp.block("source_state")
    n_pairs = 0 if pairs is None else pairs.stop - pairs.start
    capped = np.zeros(n_pairs, dtype=bool)
    pair_cap = np.zeros(n_pairs, dtype=np.int64)
    if pairs is not None:
        implied = lp.implied_rows()[pairs.start:pairs.stop]
        pair_rhs = rhs[pairs.start:pairs.stop]
        capped = ~implied & np.isfinite(pair_rhs)
        pair_cap[capped] = units(pair_rhs[capped])
    # Nodes: sources, capped pairs, gaps of E, then the start and the end.
    pair_node = np.full(n_pairs, -1)
    pair_node[capped] = n_sources + np.arange(int(capped.sum()))
    gap_node0 = n_sources + int(capped.sum())
    n_e = len(gaps)
    start, end = gap_node0 + n_e, gap_node0 + n_e + 1
    column_pair = pair_row[columns]
    through = pair_node[column_pair] if n_pairs else np.full(len(columns), -1)
    tail = np.where(through >= 0, through, lp.var_source[columns])
    capped_pairs = np.nonzero(capped)[0]
    pair_source = lp._pair_sources[capped_pairs]
    cost_units = np.floor(cost[columns] * 2.0**COST_BITS).astype(np.int64)
    cost_units -= int(cost_units.min()) if len(cost_units) else 0
    flow = min_cost_flow.SimpleMinCostFlow()
    big = int(demand.sum())
    tails = np.concatenate([np.full(n_sources, start), pair_source, tail,
                            gap_node0 + np.arange(n_e)]).astype(np.int32)
    heads = np.concatenate([np.arange(n_sources), n_sources + np.arange(len(capped_pairs)),
                            gap_node0 + gap_at[columns], np.full(n_e, end)]).astype(np.int32)
    capacity = np.concatenate([supply, pair_cap[capped_pairs], np.full(len(columns), big),
                               demand]).astype(np.int64)
    unit_cost = np.concatenate([np.zeros(n_sources + len(capped_pairs), dtype=np.int64),
                                cost_units, np.zeros(n_e, dtype=np.int64)])
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacity, unit_cost)
    supplies = np.zeros(end + 1, dtype=np.int64)
    supplies[start], supplies[end] = big, -big
    flow.set_nodes_supplies(np.arange(end + 1, dtype=np.int32), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        log.info("%s: the min-cost flow ended with status %s", stage, status)
        return None
    carried = flow.flows(arcs[n_sources + len(capped_pairs):
                              n_sources + len(capped_pairs) + len(columns)])
    log.info("%s: a min-cost flow carries %.4g %% of the amounts on %s columns", stage,
             100.0 * flow.maximum_flow() / max(big, 1), f"{int((carried > 0).sum()):,}")
    return columns[carried > 0]
