"""The pacing rules of docs/cycles.md, rows of the LP like any other: a State committed
`C_s` in the last cycle receives at least `(1 - max_cut) C_s` (`pace_down[s]`, lowered to
what it can receive) and at most `(1 + max_rise) C_s` (`pace_up[s]`).

Rows only for a State with `C_s > 0` and an eligible triple; they are built with the LP, so
every stage of every method holds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gcm_fund.model.lp import LinearProgram, _Rows


def paced_states(lp: LinearProgram) -> np.ndarray:
    """The States (indices into states.csv) with a pacing row: committed something in the
    last cycle and an eligible triple now."""
    cycle = lp.data.cycle
    if cycle is None or lp.n_x == 0:
        return np.zeros(0, dtype=np.intp)
    reached = np.zeros(len(lp.data.state_table), dtype=bool)
    reached[lp.var_state] = True
    return np.nonzero(reached & (cycle.committed_last > 0))[0]


def pace_down_reach(lp: LinearProgram, states: np.ndarray) -> np.ndarray:
    """What each State can receive whatever the pledges, in USD millions: the sum of
    U' over its gaps with an eligible triple, and its absorption where given."""
    from gcm_fund.model.lp import SCALE_USD

    fundable = np.bincount(lp.gap_state, weights=np.where(lp.gap_eligible, lp.fundable, 0.0),
                           minlength=len(lp.data.state_table))
    absorption = lp.data.state_table["absorption_usd"] / SCALE_USD
    return np.fmin(fundable, absorption)[states]  # fmin: a blank absorption (NaN) is no limit


def pace_down_rhs(lp: LinearProgram, states: np.ndarray, pledge: np.ndarray) -> np.ndarray:
    """pace_down[s]'s bound in USD millions at pledges `pledge` (USD millions, by source):
    min((1 - max_cut) C_s, sum of U'[s,t] over its gaps in E, absorption_usd(s),
    kappa * sum of B_f)."""
    from gcm_fund.model.lp import SCALE_USD

    cycle = lp.data.cycle
    assert cycle is not None
    wanted = (1.0 - lp.policy.pacing.max_cut) * cycle.committed_last[states] / SCALE_USD
    kappa = lp.policy.limits.max_state_share * float(np.sum(pledge))
    return np.minimum(np.minimum(wanted, pace_down_reach(lp, states)), kappa)


def _state_rows(lp: LinearProgram, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The allocation columns of these States and each one's row among them."""
    row = np.full(len(lp.data.state_table), -1)
    row[states] = np.arange(len(states))
    cols = np.nonzero(row[lp.var_state] >= 0)[0]
    return cols, row[lp.var_state[cols]]


def add_pace_down(lp: LinearProgram, rows: _Rows) -> None:
    """pace_down[s]: sum over f,t of x[f,s,t] >= min((1 - max_cut) C_s, sum U'[s,t] over
    its gaps in E, absorption_usd(s), kappa * sum B_f)."""
    from gcm_fund.model.lp import GE

    states = paced_states(lp)
    if not len(states):
        return
    cols, row_of = _state_rows(lp, states)
    iso3 = lp.data.states["iso3"].to_numpy()
    rows.add("pace_down", {"iso3": iso3[states]}, row_of, cols, np.ones(len(cols)), GE,
             pace_down_rhs(lp, states, lp.pledge))


def add_pace_up(lp: LinearProgram, rows: _Rows) -> None:
    """pace_up[s]: sum over f,t of x[f,s,t] <= (1 + max_rise) C_s, when `max_rise` is set."""
    from gcm_fund.model.lp import LE, SCALE_USD

    rise = lp.policy.pacing.max_rise
    states = paced_states(lp)
    if rise is None or not len(states):
        return
    cycle = lp.data.cycle
    assert cycle is not None
    cols, row_of = _state_rows(lp, states)
    iso3 = lp.data.states["iso3"].to_numpy()
    rows.add("pace_up", {"iso3": iso3[states]}, row_of, cols, np.ones(len(cols)), LE,
             (1.0 + rise) * cycle.committed_last[states] / SCALE_USD)
