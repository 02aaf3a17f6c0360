"""Donor figures under priority levels (docs/outputs.md, issue 22): unique, the same on every
solver.

`marginal_value` is `(m(B_f + h) - m(B_f)) / h` and `placed_per_usd` (on request) the money
placed per USD more, both by re-solve, never a degenerate dual.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cases import gap, read_csv, source, state
from hypothesis import event, given, settings
from test_properties import instances, solve_instance

from gcm_fund.errors import InputError


def donor_cells(folder: Path) -> dict[str, tuple[str, str, str]]:
    return {row["source_id"]: (row["marginal_value"], row["placed_per_usd"],
                               row["additionality"])
            for row in read_csv(folder / "sources_summary.csv")}


def level_ranks(folder: Path) -> dict[tuple[str, str], str]:
    return {(row["iso3"], row["target"]): row["level_rank"]
            for row in read_csv(folder / "coverage.csv")}


@settings(max_examples=8, deadline=None)
@given(instance=instances())
def test_highs_and_cbc_give_the_same_donor_figures(instance):
    instance["policy"] = {k: v for k, v in instance["policy"].items() if k != "allocation"}
    with tempfile.TemporaryDirectory() as folder:
        try:
            _, _, highs = solve_instance(Path(folder) / "highs", instance, "highs")
            _, _, cbc = solve_instance(Path(folder) / "cbc", instance, "cbc")
        except InputError:  # a zero weight: not a levels policy
            event("not a levels policy")
            return
        if highs is None or cbc is None:
            event("infeasible")
            return
        assert donor_cells(cbc.folder) == donor_cells(highs.folder)
        assert cbc.manifest["objective"]["levels"] == highs.manifest["objective"]["levels"]
        # Each gap's rank among the distinct levels, unlike the step that stopped it.
        assert level_ranks(cbc.folder) == level_ranks(highs.folder)


def test_the_marginal_value_is_the_slope_of_the_lowest_level(tmp_path, write_case):
    """KEN 10.7 needs 100e6 and only `s` (pledge 60e6) funds it; UGA 10.7 needs 300e6,
    funded by `t` (100e6). Equal priorities: both gaps at (60 + 100) / 400 = 0.4, so one
    more USD of `s` lifts the lowest level of its gaps by 1 / 400e6 and is all placed;
    `t` can fund only UGA, whose level is the same lowest level: also 1 / 400e6."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 60e6), source("t", 100e6, exclude_states="KEN"),
                 source("none", 0.0)],
        policy={},
    )
    from cases import read_run

    from gcm_fund import api

    for solver in ("highs", "cbc"):
        run = api.allocate(inputs, policy, solver=solver, donor_figures=True)
        api.write(run, tmp_path / solver)
        files = read_run(tmp_path / solver)
        cells = donor_cells(files.folder)
        assert float(cells["s"][0]) == pytest.approx(1 / 400e6, rel=1e-6)
        assert float(cells["t"][0]) == pytest.approx(1 / 400e6, rel=1e-6)
        assert float(cells["s"][1]) == pytest.approx(1.0, abs=1e-6)
        assert float(cells["t"][1]) == pytest.approx(1.0, abs=1e-6)
        # s may fund both gaps: every extra USD reaches them. t may fund UGA only: both
        # gaps rise alike, so of its extra USD 3/4 reaches UGA (300 of the 400 rising) and
        # 1/4 takes the place of s's money there, which moves to KEN.
        assert float(cells["s"][2]) == pytest.approx(1.0, abs=1e-6)
        assert float(cells["t"][2]) == pytest.approx(0.75, abs=1e-6)
        assert cells["none"] == ("", "", "")
        assert files.manifest["levels"]["donor_figures"]["h"] == "max(USD 1, 1e-6 B_f)"
    # Only on request: without it both are blank (a budget dual is not unique under
    # levels, so it is never written as a donor's figure).
    api.write(api.allocate(inputs, policy), tmp_path / "plain")
    assert set(donor_cells(tmp_path / "plain").values()) == {("", "", "")}
    assert "donor_figures" not in read_run(tmp_path / "plain").manifest["levels"]
