"""The sweep's breakpoint search under priority levels (issue 22): bounded, exact kinks.

The hand-solved instance (USD; both States LIC so that U = need; default policy: levels,
floor over all gaps, maximised; equal priorities):

    gaps     KEN 10.7: 100e6       UGA 10.7: 300e6
    sources  s (swept, B)          t: 100e6, excludes KEN

Only `s` can fund KEN, so the floor is z*(B) = min(B / 100e6, (B + 100e6) / 400e6, 1):
B / 100e6 up to B = 100e6 / 3, then (B + 100e6) / 400e6 up to B = 300e6, then 1. The
levels (coverage / 1) equal z* on both gaps above 100e6 / 3; below it UGA holds 1/3.
The money placed is min(B + 100e6, 400e6). So the kinks are at 33,333,333.33 and
300e6, and the marginal value (SPEC 4b: the slope of the lowest level among the gaps
`s` can fund, both) is 1e-8 per USD below the first, 2.5e-9 between, 0 above 300e6.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases import gap, source, state

from gcm_fund import api
from gcm_fund.analyses.sweep import parse_levels, sweep

FIRST_KINK = 100e6 / 3


@pytest.fixture
def kink_case(tmp_path: Path, write_case) -> tuple:
    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 100e6), source("t", 100e6, exclude_states="KEN")],
        policy={},
    )
    loaded = api.load(inputs, policy)
    return loaded.data, loaded.policy_file.policy


def hand_floor(b: float) -> float:
    return min(b / 100e6, (b + 100e6) / 400e6, 1.0)


def test_the_default_sweep_finds_every_kink_within_a_budget_of_solves(kink_case) -> None:
    data, policy = kink_case
    levels = parse_levels("10e6:410e6:9")
    result = sweep(data, policy, ["s"], levels)
    # Each level and its marginal value's second solve, then a few solves per kink.
    assert result.solves <= 2 * len(levels) + 12
    assert result.extra["breakpoint_solves"] <= 12
    for level in result.levels:
        assert level.floor == pytest.approx(hand_floor(level.pledge_usd), abs=1e-9)
        assert level.allocated_usd == pytest.approx(min(level.pledge_usd + 100e6, 400e6),
                                                    abs=0.05)
    assert len(result.breakpoints) == 2
    first, second = result.breakpoints
    assert first.pledge_below_usd <= FIRST_KINK + 0.01
    assert first.pledge_above_usd >= FIRST_KINK - 0.01
    assert second.pledge_below_usd <= 300e6 + 0.01 and second.pledge_above_usd >= 300e6 - 0.01
    # Both found exactly: the pieces on either side meet there.
    assert first.pledge_above_usd - first.pledge_below_usd <= 1.0
    assert second.pledge_above_usd - second.pledge_below_usd <= 1.0
    assert (first.marginal_below, first.marginal_above) == pytest.approx((1e-8, 2.5e-9),
                                                                         rel=1e-6)
    assert (second.marginal_below, second.marginal_above) == pytest.approx((2.5e-9, 0.0),
                                                                           rel=1e-6, abs=1e-15)


def test_the_marginal_value_is_a_difference_of_re_solves(kink_case) -> None:
    data, policy = kink_case
    result = sweep(data, policy, ["s"], parse_levels("10e6:410e6:9"), breakpoint_tol_usd=None)
    want = [1e-8] + [2.5e-9] * 5 + [0.0] * 3
    assert [lv.marginal_value for lv in result.levels] == pytest.approx(want, rel=1e-5,
                                                                        abs=1e-15)


def test_a_spent_budget_of_solves_leaves_brackets_and_ends(kink_case) -> None:
    data, policy = kink_case
    levels = parse_levels("10e6:410e6:5")
    result = sweep(data, policy, ["s"], levels, max_solves=1)
    assert result.extra["breakpoint_solves"] <= 1
    assert result.solves <= 2 * len(levels) + 1
    # Every kink is still inside a reported bracket.
    for where in (FIRST_KINK, 300e6):
        assert any(p.pledge_below_usd - 0.01 <= where <= p.pledge_above_usd + 0.01
                   for p in result.breakpoints)
