"""Donor figures under priority levels (docs/outputs.md, issue 22): unique, the same on every
solver.

`marginal_value` is `(m(B_f + h) - m(B_f)) / h` (by default) and `placed_per_usd` (with
`--donor-figures all`) the money placed per USD more, both by re-solve, never a degenerate
dual.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
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
        run = api.allocate(inputs, policy, solver=solver, donor_figures="all")
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
        recorded = files.manifest["levels"]["donor_figures"]
        assert recorded["h"] == "max(USD 1, 1e-6 B_f)"
        assert recorded["computed"] == ["marginal_value", "placed_per_usd", "additionality"]
        # Written to 6 significant digits and 3 decimals (the manifest says so).
        assert cells["s"][0] == "2.5e-09" and cells["t"][2] == "0.75"
    # By default the marginal value alone; with "none" nothing, and no re-solve recorded.
    api.write(api.allocate(inputs, policy), tmp_path / "default")
    cells = donor_cells(tmp_path / "default")
    assert float(cells["s"][0]) == pytest.approx(1 / 400e6, rel=1e-6)
    assert cells["s"][1:] == cells["t"][1:] == ("", "") and cells["none"] == ("", "", "")
    assert read_run(tmp_path / "default").manifest["levels"]["donor_figures"]["computed"] == [
        "marginal_value"]
    api.write(api.allocate(inputs, policy, donor_figures="none"), tmp_path / "plain")
    assert set(donor_cells(tmp_path / "plain").values()) == {("", "", "")}
    assert "donor_figures" not in read_run(tmp_path / "plain").manifest["levels"]


def test_re_solves_started_from_the_trail_agree_with_warm_re_solves_and_pivot_less():
    """The marginal values' re-solves start each LP from the basis it had at the unraised
    pledges (`BasisTrail`); started instead from wherever the last source's re-solve
    left the model, they reach the same levels (the written figures agree to their 6
    digits) with more simplex iterations."""
    from gcm_fund import api
    from gcm_fund.methods.donor_figures import (
        LowestLevel,
        donor_figures,
        level_difference,
        significant,
        step_usd,
    )
    from gcm_fund.model.lp import SCALE_USD, build

    loaded = api.load(Path("inputs"), Path("models/baseline.toml"))
    lp = build(loaded.data, loaded.policy_file.policy)
    figures = donor_figures(lp, placed=False)
    counted = {}
    for replay in (True, False):
        finder = LowestLevel(lp, replay=replay)
        pledges = lp.pledge * SCALE_USD
        h = step_usd(pledges)
        n = len(pledges)
        groups = np.zeros((n, len(lp.data.gaps)), dtype=bool)
        groups[lp.var_source, lp.var_gap] = True
        below = finder.at(pledges, groups)
        values = []
        for f in range(n):
            raised = pledges.copy()
            raised[f] += h[f]
            above = float(finder.at(raised, groups[f][None, :])[0])
            values.append(level_difference(above, float(below[f]), float(h[f])))
        counted[replay] = finder.pipeline.backend("levels").iterations
        np.testing.assert_allclose(significant(np.array(values), 6), figures.marginal_value,
                                   rtol=1e-5, atol=0)
    assert counted[True] < counted[False]


def test_explain_source_tells_a_donor_where_its_money_went_and_what_a_dollar_more_does(
        tmp_path, write_case):
    """The case above (levels 0.4; t may fund UGA only): `explain --source t` in words,
    with every figure from the run folder."""
    from cases import run_cli

    from gcm_fund import api

    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 60e6), source("t", 100e6, exclude_states="KEN")], policy={})
    folder = api.write(api.allocate(inputs, policy, donor_figures="all"), tmp_path / "run")
    lines = api.explain_source(folder, "t")
    assert lines[0].startswith("t (")
    assert "pledged USD 100,000,000.00, allocated USD 100,000,000.00 (100.0%)" in lines[0]
    assert lines[1] == "earmarks: 1 State excluded"
    # t's money: all of it to UGA (its only gap), whose level is 0.4 with KEN's.
    assert "  by target: 10.7 USD 100,000,000.00 (100%)" in lines
    assert "  1 State; the largest: State UGA USD 100,000,000.00" in lines
    assert lines[lines.index("one more dollar:") + 1] == (
        "  the lowest level among the gaps it may fund is 0.4 (coverage / priority), at 1 "
        "gap (UGA 10.7), stopped by budget[s], budget[t]")
    # 1 / 400e6 per USD: USD 1 million lifts it by 0.0025; 3/4 of each extra USD reaches
    # UGA, 1/4 displaces s's money there, which goes to KEN.
    assert lines[-2] == ("  one more dollar of its pledge lifts it by 2.5e-09 (marginal value, "
                         "by re-solve): at that rate, USD 1 million more would lift it by "
                         "0.0025, until another rule binds")
    assert lines[-1] == ("  of each extra USD, the fund places 1 and 0.75 reaches the gaps it "
                         "may fund; 0.25 goes elsewhere, the money its extra USD displaced "
                         "there")
    plain = api.write(api.allocate(inputs, policy, donor_figures="none"), tmp_path / "plain")
    assert api.explain_source(plain, "s")[-1] == (
        "  not computed: this run has no donor figures (made with --donor-figures none, or "
        "by an earlier version)")
    done = run_cli("explain", folder, "--source", "u")
    assert done.returncode == 2
    assert "u: not a source of this run" in done.stderr
    # A damaged folder is refused naming the file, never explained from what is left.
    import shutil

    damaged = Path(shutil.copytree(folder, tmp_path / "damaged"))
    path = damaged / "allocations.csv"
    path.write_text(path.read_text().replace("100000000.00", "abc"))
    done = run_cli("explain", damaged, "--source", "t")
    assert done.returncode == 2 and "allocations.csv: line 4: amount_usd" in done.stderr
    shutil.rmtree(damaged)
    damaged = Path(shutil.copytree(folder, tmp_path / "damaged"))
    (damaged / "coverage.csv").unlink()
    done = run_cli("explain", damaged, "--source", "t")
    assert done.returncode == 2 and "coverage.csv" in done.stderr, done.stdout


def test_allocate_says_whose_next_dollar_lifts_its_worst_off_gaps(tmp_path, write_case):
    """The case above on the command line: both sources' next dollar lifts the level 0.4;
    with --donor-figures none the line is not printed."""
    from cases import run_cli

    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 60e6), source("t", 100e6, exclude_states="KEN")], policy={})
    done = run_cli("allocate", inputs, "--model", policy, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert (f"one more dollar of pledge lifts the worst-off gaps a source may fund for 2 of 2 "
            f"sources (s, t); in words: gcm-fund explain {tmp_path / 'run'} --source ID"
            ) in done.stdout
    done = run_cli("allocate", inputs, "--model", policy, "--out", tmp_path / "none",
                   "--donor-figures", "none")
    assert done.returncode == 0 and "one more dollar" not in done.stdout


def test_a_failed_re_solve_leaves_that_source_blank_and_named_and_the_run_certifies(
        tmp_path, write_case, monkeypatch):
    """The solver stopping on one source's re-solve (injected: no genuine input makes
    HiGHS fail here) costs that source its figure, not the run: the cell is blank, the
    manifest names the source, certify accepts the blank there and nowhere else."""
    from cases import read_run

    from gcm_fund import api, audit
    from gcm_fund.methods import donor_figures
    from gcm_fund.solvers.backend import SolverStopped

    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 60e6), source("t", 100e6, exclude_states="KEN")], policy={})
    real_at = donor_figures.LowestLevel.at

    def at(self, pledges, groups):  # t's raised pledge is the only one above 100e6
        if pledges[1] > 100e6:
            raise SolverStopped("HiGHS stopped with status Unknown")
        return real_at(self, pledges, groups)

    monkeypatch.setattr(donor_figures.LowestLevel, "at", at)
    folder = api.write(api.allocate(inputs, policy), tmp_path / "run")
    cells = donor_cells(folder)
    assert float(cells["s"][0]) == pytest.approx(1 / 400e6, rel=1e-6)
    assert cells["t"][0] == ""
    assert read_run(folder).manifest["levels"]["donor_figures"]["unsolved"] == ["t"]
    assert audit.certify(folder).ok
    assert api.explain_source(folder, "t")[-1] == (
        "  not computed: its re-solve with the pledge raised failed (the manifest's unsolved)")


def test_donor_figures_asked_of_another_method_is_said_to_apply_to_levels_only(
        tmp_path, write_case):
    from cases import run_cli

    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC")], gaps=[gap("KEN", "10.7", 100e6)],
        sources=[source("s", 60e6)], policy={"allocation": {"method": "weighted"}})
    done = run_cli("allocate", inputs, "--model", policy, "--out", tmp_path / "run",
                   "--donor-figures", "all")
    assert done.returncode == 0, done.stderr
    assert ("warning: --donor-figures all: for priority levels only; this policy's "
            "sources_summary.csv follows its own method (docs/outputs.md)") in done.stderr
    done = run_cli("allocate", inputs, "--model", policy, "--out", tmp_path / "again")
    assert "--donor-figures" not in done.stderr
