"""Who gets a donor's next dollar (issue 22): `sweep --by` and the additionality figure.

Hand-solved (USD; both States LIC so that U = need; no floor, `maximize = false`, so the
levels alone decide; target 8.7 has weight 10, so KEN's gap fills first):

    gaps     KEN 8.7: 50e6 (priority 10)     UGA 10.7: 300e6 (priority 1)
    sources  o: 100e6, may fund both         e: B in {10e6, 20e6, 30e6}, earmarked to 8.7

KEN's gap fills at level 0.1, below UGA's: it is full (50e6) at every B, o giving it
50e6 - B; UGA gets the rest, 50e6 + B. Each extra USD of e lands in KEN's full gap and
pushes one USD of o out to UGA: additionality 0, all of it displaced. With o excluding
KEN, KEN gets e's money alone (B < 50e6): every extra USD stays there, additionality 1.
An unearmarked e may fund both gaps: its additionality is what it places, 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases import gap, read_csv, source, state
from typer.testing import CliRunner

from gcm_fund import api
from gcm_fund.analyses.next_dollar import additionality
from gcm_fund.analyses.sweep import parse_levels, sweep
from gcm_fund.cli.app import app

POLICY = {"weights": {"target": {"8.7": 10.0}}, "equity": {"maximize": False}}


def case(tmp_path: Path, write_case, earmark: list[str] | None, o_excludes: str | None):
    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "8.7", 50e6), gap("UGA", "10.7", 300e6)],
        sources=[source("o", 100e6, exclude_states=o_excludes),
                 source("e", 20e6, targets=earmark)],
        policy=POLICY,
    )
    return inputs, policy


def figures(inputs: Path, policy: Path) -> list[tuple[float, ...]]:
    loaded = api.load(inputs, policy)
    result = sweep(loaded.data, loaded.policy_file.policy, ["e"], parse_levels("10e6:30e6:3"),
                   breakpoint_tol_usd=None)
    return [tuple(f[2:]) for f in additionality(result)]


def test_an_earmark_whose_gap_is_full_displaces_all_its_extra_money(tmp_path, write_case):
    got = figures(*case(tmp_path, write_case, ["8.7"], None))
    # placed, additionality, displaced, elsewhere
    assert got == [pytest.approx((1.0, 0.0, 1.0, 1.0), abs=1e-6)] * 2


def test_an_earmark_only_it_can_fund_is_fully_additional(tmp_path, write_case):
    got = figures(*case(tmp_path, write_case, ["8.7"], "KEN"))
    assert got == [pytest.approx((1.0, 1.0, 0.0, 0.0), abs=1e-6)] * 2


def test_the_additionality_of_an_unearmarked_source_is_1(tmp_path, write_case):
    got = figures(*case(tmp_path, write_case, None, None))
    assert got == [pytest.approx((1.0, 1.0, 0.0, 0.0), abs=1e-6)] * 2


def test_sweep_by_state_writes_each_states_amount_at_every_level(tmp_path, write_case):
    inputs, policy = case(tmp_path, write_case, ["8.7"], None)
    out = tmp_path / "e.csv"
    result = CliRunner().invoke(app, ["sweep", str(inputs), "--model", str(policy), "--source",
                                      "e", "--pledges", "10e6:30e6:3", "--out", str(out),
                                      "--no-chart", "--by", "state"])
    assert result.exit_code == 0, result.output
    assert ("of each extra USD from 10,000,000 to 30,000,000: 1.00 placed, 0.00 reaches the "
            "gaps e may fund, 1.00 displaces other money there") in result.output
    rows = read_csv(tmp_path / "e.by_state.csv")
    assert [(r["pledge_usd"], r["iso3"], r["amount_usd"], r["change_usd"]) for r in rows] == [
        ("10000000.00", "KEN", "50000000.00", ""), ("10000000.00", "UGA", "60000000.00", ""),
        ("20000000.00", "KEN", "50000000.00", "0.00"),
        ("20000000.00", "UGA", "70000000.00", "10000000.00"),
        ("30000000.00", "KEN", "50000000.00", "0.00"),
        ("30000000.00", "UGA", "80000000.00", "10000000.00")]
    lines = read_csv(tmp_path / "e.additionality.csv")
    assert [float(r["additionality"]) for r in lines] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert [float(r["displaced"]) for r in lines] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_an_unknown_by_is_a_usage_error_and_writes_nothing(tmp_path, write_case):
    inputs, policy = case(tmp_path, write_case, ["8.7"], None)
    out = tmp_path / "e.csv"
    result = CliRunner().invoke(app, ["sweep", str(inputs), "--model", str(policy), "--source",
                                      "e", "--pledges", "10e6:30e6:3", "--out", str(out),
                                      "--by", "region"])
    assert result.exit_code == 2
    assert "--by: got 'region', expected one of state, target" in result.output
    assert not out.exists()
