"""Who may be funded, and with what weight: docs/model.md's eligible triples, the fundable
need U, the priorities pi and the weights w, computed from the checked inputs and the
policy (the LP in `model.lp` is built on them; `model.limits` and the analyses read them).
"""

from __future__ import annotations

import numpy as np

from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import INCOME_GROUPS
from gcm_fund.model import spec


def eligible_triples(data: ProblemData, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(source index, gap index) of every eligible triple, sorted by source then gap.

    A triple is eligible iff the gap's fundable need U > 0, the pledge B_f > 0, the State
    is eligible (states.csv `eligible`, default true) and can absorb something, and the
    source's earmarks (targets, regions, income groups, excluded States) and
    instrument allow it: no loans to a State whose loan share m(s) is 0, nor, when
    0 < m(s) < 1, to a State no grant may reach (docs/terms.md: it could take none).
    """
    # Columns, not frames: `validate` counts these without importing pandas.
    states, gaps, sources = data.state_table, data.gap_table, data.source_table
    gap_state = data.gap_state
    income = states["income_group"][gap_state]
    region = states["region"][gap_state]
    absorb = states["absorption_usd"][gap_state]
    cap = state_loan_cap(data, policy)[gap_state]
    state_ok = states["eligible"][gap_state]
    fundable = fundable_usd(data, policy)

    gap_ok = (fundable > 0) & state_ok & ~(absorb <= 0)  # NaN absorption means no limit
    mask = np.outer(sources["pledge_usd"] > 0, gap_ok)
    mask &= _earmark_mask(sources["targets"], gaps["target"])
    mask &= _earmark_mask(sources["regions"], region)
    mask &= _earmark_mask(sources["income_groups"], income)
    excluded = _member_mask(sources["exclude_states"], gaps["iso3"])
    mask &= ~excluded
    is_loan = sources["instrument"] == "loan"
    mask &= ~np.outer(is_loan, cap <= 0)
    capped = (cap > 0) & (cap < 1)
    if capped.any():
        granted = np.bincount(gap_state[np.nonzero(mask[~is_loan])[1]],
                              minlength=len(states)) > 0
        mask &= ~np.outer(is_loan, capped & ~granted[gap_state])
    f, g = np.nonzero(mask)
    return f, g


def state_loan_cap(data: ProblemData, policy: Policy) -> np.ndarray:
    """m(s) by State (docs/terms.md): the most of its allocation that may be loans."""
    states = data.state_table
    return spec.loan_cap(states["debt_distress"], states["debt_risk"], policy.loans.max_share)


def _member_mask(lists: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[i, j]: values[j] is in lists[i]."""
    uniques, inverse = np.unique(values, return_inverse=True)
    table = np.array([[u in set(items) for u in uniques] for items in lists], dtype=bool)
    return table.reshape(len(lists), len(uniques))[:, inverse]


def _earmark_mask(lists: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[i, j]: earmark list i is empty (no earmark) or holds values[j]."""
    open_to_all = np.array([len(items) == 0 for items in lists], dtype=bool)
    return open_to_all[:, None] | _member_mask(lists, values)


def fundable_usd(data: ProblemData, policy: Policy) -> np.ndarray:
    """U[s,t] = c[income(s)] * need[s,t] in USD, by gap; with a history under `keep`
    (docs/cycles.md), U'[s,t] = max(0, U[s,t] - b[s,t]) (`spec.kept_fundable_usd`), the
    last cycle's undisbursed balance still the State's."""
    income = data.state_table["income_group"][data.gap_state]
    fundable = spec.fundable_usd(data.gap_table["need_usd"], income, policy.cofinancing)
    cycle = data.cycle
    if cycle is not None and cycle.keep and cycle.balance.any():
        return spec.kept_fundable_usd(fundable, cycle.balance)
    return fundable


def gap_priority(data: ProblemData, policy: Policy) -> np.ndarray:
    """pi[s,t] = Wt[t] * Wi[income(s)] * Wr(s), by gap: the grant part of the weight;
    times the State's performance factor p_s with a history (docs/cycles.md)."""
    states, gaps = data.state_table, data.gap_table
    target_weight = np.array(
        [policy.weights.target.get(t, 1.0) for t in gaps["target"]], dtype=float
    )
    income_weight = {g: policy.weights.income.get(g) for g in INCOME_GROUPS}
    state_weight = np.array(
        [income_weight[g] * policy.role_weight(tuple(r)) for g, r in
         zip(states["income_group"], states["roles"], strict=True)], dtype=float
    )
    if data.cycle is not None:
        state_weight = state_weight * data.cycle.factor
    return target_weight * state_weight[data.gap_state]


def loan_cost(data: ProblemData, policy: Policy, var_source: np.ndarray,
              var_gap: np.ndarray) -> np.ndarray:
    """lambda * (1 - g_f) * burden[income(s)] of every triple (0 for grants)."""
    states, sources = data.states, data.sources
    gap_state = data.gap_state
    burden = {g: policy.loans.burden.get(g) for g in INCOME_GROUPS}
    state_burden = np.array([burden[g] for g in states["income_group"].to_numpy()], dtype=float)
    is_loan = (sources["instrument"] == "loan").to_numpy()
    grant_element = sources["grant_element"].to_numpy(dtype=float)
    concession_gap = np.where(is_loan, 1.0 - np.nan_to_num(grant_element, nan=1.0), 0.0)
    return (policy.loans.penalty * concession_gap[var_source]
            * state_burden[gap_state[var_gap]])


def triple_weights(data: ProblemData, policy: Policy, var_source: np.ndarray,
                   var_gap: np.ndarray) -> np.ndarray:
    """w[f,s,t] = pi[s,t] - lambda (1 - g_f) burden[income(s)], by allocation column."""
    priority = gap_priority(data, policy)
    return priority[var_gap] - loan_cost(data, policy, var_source, var_gap)


def in_equity_group(data: ProblemData, policy: Policy, gap_state: np.ndarray) -> np.ndarray:
    """Whether each gap's State is in the policy's equity group (the floor's set)."""
    member = spec.equity_members(policy.equity.group, data.state_table["ldc"],
                                 data.state_table["income_group"])
    return member[gap_state]


def source_shares(data: ProblemData, policy: Policy) -> np.ndarray:
    """rho_f by source: its own max_state_share, else the policy's default."""
    given = data.sources["max_state_share"].to_numpy(dtype=float)
    return np.where(np.isnan(given), policy.limits.max_source_state_share, given)
