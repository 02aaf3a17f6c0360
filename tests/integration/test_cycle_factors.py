"""docs/cycles.md's performance table: the engine's (inputs/cycle_effects.py) and certify's
(audit/cycles.py) restatements agree on any valid history, and every factor lies within
its bounds."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from cases import gap, source, state, write_case, write_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from gcm_fund.audit.cycles import restate
from gcm_fund.inputs.cycle_effects import performance_table
from gcm_fund.inputs.history import read_history
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy import Policy

STATES = ("KEN", "MLI", "UGA")
CASE = Path(tempfile.mkdtemp(prefix="cycle-factors-"))
INPUTS, _ = write_case(CASE, states=[state(code) for code in STATES],
                       gaps=[gap(code, t, 1e6) for code in STATES for t in ("10.7", "8.8")],
                       sources=[source("deu", 1e6)])
DATA = load_inputs(INPUTS)

amounts = st.integers(0, 10**9).map(lambda cents: cents / 100)
rows = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(STATES),
                          st.sampled_from(("10.7", "8.8")), amounts,
                          st.floats(0, 1), st.one_of(st.none(), st.floats(0, 1))),
                min_size=1, max_size=12, unique_by=lambda r: r[:3])
policies = st.builds(
    lambda alpha, beta, low, span, window, keep: Policy.model_validate({
        "cycle": {"number": 5},
        "performance": {"alpha": alpha, "beta": beta, "min_factor": low,
                        "max_factor": low + span, "window": window},
        "carryover": {"undisbursed": "keep" if keep else "pool"}}),
    st.floats(0, 2), st.floats(0, 2), st.floats(0.1, 1), st.floats(0, 1), st.integers(1, 5),
    st.booleans())


@settings(max_examples=40, deadline=None)
@given(rows, policies)
def test_engine_and_certify_agree_and_factors_stay_in_bounds(found, policy):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_rows(folder / "history.csv", [
            {"cycle": c, "iso3": s, "target": t, "committed_usd": f"{amount:.2f}",
             "disbursed_usd": f"{math.floor(amount * share * 100) / 100:.2f}",
             "result": "" if result is None else repr(result)}
            for c, s, t, amount, share, result in found])
        history = read_history(folder / "history.csv", set(STATES), before=5)
        engine, _ = performance_table(history, policy)
        audit = restate(folder, DATA, policy)
    assert audit is not None
    assert list(engine["iso3"]) == list(audit.table["iso3"])
    for column in ("committed_usd", "disbursed_usd", "execution", "result", "factor"):
        assert engine[column].to_numpy() == pytest.approx(audit.table[column].to_numpy(),
                                                          rel=1e-12, nan_ok=True)
    low, high = policy.performance.min_factor, policy.performance.max_factor
    assert all(f == 1.0 or low <= f <= high for f in engine["factor"])
