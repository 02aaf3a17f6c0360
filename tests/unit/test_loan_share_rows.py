"""The `loan_share[s]` rows of SPEC 4c and the eligibility they come with, without a solver.

Two States, each one gap; a grant `g` (to 10.7 only) and a loan `l` open to both:

    MOD  moderate, gap 10.7   m = 0.5: one row, loans (1 - m) and grants (-m), rhs 0
    HIG  high,     gap 10.7   m = 0:   no loan column
    NOG  moderate, gap 8.8    m = 0.5 but no grant reaches it: no loan column either
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cases import gap, source, state, write_case

from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.model.lp import LE, build

TRAFFIC_LIGHT = {"low": 1.0, "moderate": 0.5, "high": 0.0, "distress": 0.0}


def built(tmp_path: Path, max_share: dict[str, float] | None = None):
    inputs, policy = write_case(
        tmp_path,
        states=[state("MOD", debt_risk="moderate"), state("HIG", debt_risk="high"),
                state("NOG", debt_risk="moderate")],
        gaps=[gap("MOD", "10.7", 1e6), gap("HIG", "10.7", 1e6), gap("NOG", "8.8", 1e6)],
        sources=[source("g", 1e6, targets="10.7"),
                 source("l", 1e6, instrument="loan", grant_element=0.5)],
        policy={"loans": {"max_share": max_share or TRAFFIC_LIGHT}})
    return build(load_inputs(inputs), load_policy(policy).policy)


def columns(lp) -> set[tuple[str, str]]:
    ids = lp.data.sources["source_id"].to_numpy()
    iso3 = lp.data.gaps["iso3"].to_numpy()
    return {(str(ids[f]), str(iso3[g])) for f, g in zip(lp.var_source, lp.var_gap, strict=True)}


def test_eligibility_by_loan_share(tmp_path):
    lp = built(tmp_path)
    assert columns(lp) == {("g", "MOD"), ("g", "HIG"), ("l", "MOD")}
    # NOG's only gap has no eligible triple: it leaves E and the floor set.
    iso3 = lp.data.gaps["iso3"].to_numpy()
    assert dict(zip(iso3, lp.gap_eligible, strict=True)) == {"HIG": True, "MOD": True,
                                                             "NOG": False}
    assert sorted(iso3[lp.floor_gaps]) == ["HIG", "MOD"]


def test_one_loan_share_row_with_its_coefficients(tmp_path):
    lp = built(tmp_path)
    block = lp.block("loan_share")
    assert block is not None and list(block.keys[0]) == ["MOD"]
    row = block.start
    assert lp.sense[row] == LE and lp.rhs[row] == 0.0
    dense = lp.matrix.toarray()[row, : lp.n_x]
    ids = lp.data.sources["source_id"].to_numpy()[lp.var_source]
    states = lp.data.gaps["iso3"].to_numpy()[lp.var_gap]
    expected = np.where(states == "MOD", np.where(ids == "l", 0.5, -0.5), 0.0)
    assert dense.tolist() == expected.tolist()


def test_no_row_where_loans_are_not_capped_below_one(tmp_path):
    lp = built(tmp_path, {"low": 1.0, "moderate": 1.0, "high": 1.0, "unrated": 1.0})
    assert lp.block("loan_share") is None
    assert ("l", "NOG") in columns(lp) and ("l", "HIG") in columns(lp)
