"""Forecast stops in stage 2 of priority levels (`level_forecast`, `level_filling`).

A gap that fills, or a State whose absorption or share cap fills, stops at a level that
follows from the cap alone; the filling proves such stops with hand-built duals and
confirms many at once with one LP. These tests hold it to the plain filling (one LP per
step, `forecast=False`) on hand-solved and generated instances, and to `certify`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from cases import RunFiles, allocate_and_read, gap, source, state, toml_text, write_case
from hypothesis import event, given, settings
from test_levels import SOLVERS, level_instances

from gcm_fund import api, audit
from gcm_fund.errors import InfeasibleError
from gcm_fund.methods.levels import distinct_level_values, extend, run_levels
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import build
from gcm_fund.solvers import flow
from gcm_fund.solvers.pipeline import Pipeline, Solution

NO_FLOOR: dict[str, Any] = {"equity": {"group": "ldc"}}


def three_capped_states(folder: Path) -> tuple[Path, Path]:
    """States A, B, C (LICs: co-financing 1), two gaps of U = 10e6 each, priority 1;
    absorption caps 1e6, 3e6 and 6e6; one grant of 9e6.

    Water rises on 60e6 of need: A fills its cap at 20e6 L = 1e6, L = 0.05; B at
    20e6 L = 3e6, L = 0.15; then C has 9e6 - 4e6 = 5e6, so the budget stops it at
    20e6 L = 5e6, L = 0.25, below its own cap's 0.3."""
    states = [state("AAA", absorption_usd=1e6), state("BBB", absorption_usd=3e6),
              state("CCC", absorption_usd=6e6)]
    gaps = [gap(iso3, target, 10e6) for iso3 in ("AAA", "BBB", "CCC")
            for target in ("10.7", "8.8")]
    return write_case(folder, states=states, gaps=gaps, sources=[source("g", 9e6)],
                      policy=NO_FLOOR)


def solve_library(inputs: Path, policy: Path, forecast: bool, solver: str = "highs"
                  ) -> Solution:
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    priority = gap_priority(lp.data, lp.policy)
    ext, layout = extend(lp, priority)
    return run_levels(Pipeline(ext, solver), lp, layout, priority, forecast=forecast)


@pytest.mark.parametrize("solver", SOLVERS)
def test_caps_that_fill_are_forecast_and_the_budget_is_found_by_the_lp(tmp_path, solver):
    inputs, policy = three_capped_states(tmp_path)
    solution = solve_library(inputs, policy, forecast=True, solver=solver)
    assert solution.levels is not None
    steps = solution.levels.steps
    assert [s.level for s in steps] == pytest.approx([0.05, 0.15, 0.25], rel=1e-7)
    assert [s.forecast for s in steps] == [True, True, False]
    assert [len(s.stopped) for s in steps] == [2, 2, 2]
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    amounts = {(r["iso3"], r["target"]): float(r["allocated_usd"]) for r in run.coverage}
    expected = {"AAA": 0.5e6, "BBB": 1.5e6, "CCC": 2.5e6}
    for (iso3, _), amount in amounts.items():
        assert amount == pytest.approx(expected[iso3], abs=0.02 if solver == "highs" else 0.2)
    stopped_by = {r["iso3"]: r["stopped_by"] for r in run.coverage}
    assert stopped_by == {"AAA": "absorb[AAA]", "BBB": "absorb[BBB]", "CCC": "budget[g]"}
    certificate = audit.certify(run.folder)
    assert certificate.ok, "\n".join(certificate.lines())


def test_a_forecast_step_carries_the_duals_that_prove_it(tmp_path):
    """Step 1 (A's cap at L = 0.05): dual 1/20e6 on absorb[AAA] (one more USD of cap
    raises A's level by 1 / (pi U) summed over its two gaps), and the same weight, with
    the sign of a `>=` row, on A's two level rows."""
    inputs, policy = three_capped_states(tmp_path)
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    import csv

    with open(run.folder / "level_duals.csv", encoding="utf-8", newline="") as handle:
        duals = {(r["step"], r["name"]): float(r["dual"]) for r in csv.DictReader(handle)}
    step1 = {name: value for (step, name), value in duals.items() if step == "1"}
    assert step1 == pytest.approx({"absorb[AAA]": 1 / 20e6, "level[AAA,10.7]": -1 / 20e6,
                                   "level[AAA,8.8]": -1 / 20e6}, rel=1e-9)


def test_a_gap_that_fills_inside_a_capped_state_leaves_the_cap_to_the_others(tmp_path):
    """State A (cap 5e6): gap 10.7 with U = 1e6 at priority 4, gap 8.8 with U = 9e6 at
    priority 1. State B (cap 0.5e6): gap 8.8 with U = 0.4e6. Plenty of budget.

    A's 10.7 fills at 4 L = 1, L = 0.25 (A then holds 1e6 + 2.25e6, under its cap); A's
    8.8 rises on until 1e6 + 9e6 L = 5e6, L = 4/9, by A's cap; B's gap fills at L = 1
    before B's cap. Three forecast steps, no LP of its own."""
    states = [state("AAA", absorption_usd=5e6), state("BBB", absorption_usd=0.5e6)]
    gaps = [gap("AAA", "10.7", 1e6), gap("AAA", "8.8", 9e6), gap("BBB", "8.8", 0.4e6)]
    inputs, policy = write_case(tmp_path, states=states, gaps=gaps,
                                sources=[source("g", 20e6)],
                                policy={**NO_FLOOR, "weights": {"target": {"10.7": 4.0}}})
    solution = solve_library(inputs, policy, forecast=True)
    assert solution.levels is not None
    steps = solution.levels.steps
    assert [s.level for s in steps] == pytest.approx([0.25, 4 / 9, 1.0], rel=1e-9)
    assert all(s.forecast for s in steps)
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    rows = {(r["iso3"], r["target"]): r for r in run.coverage}
    assert float(rows[("AAA", "8.8")]["allocated_usd"]) == pytest.approx(4e6, abs=0.02)
    assert rows[("AAA", "10.7")]["stopped_by"].startswith("gap[AAA,10.7]")
    assert rows[("AAA", "8.8")]["stopped_by"] == "absorb[AAA]"
    assert rows[("BBB", "8.8")]["stopped_by"].startswith("gap[BBB,8.8]")
    certificate = audit.certify(run.folder)
    assert certificate.ok, "\n".join(certificate.lines())


def by_gap(solution: Solution, var_gap: np.ndarray, n_gaps: int) -> np.ndarray:
    return np.bincount(var_gap, weights=solution.x_usd, minlength=n_gaps)


@settings(max_examples=60, deadline=None)
@given(instance=level_instances())
def test_forecasting_gives_the_levels_and_amounts_of_one_lp_per_step(instance):
    """Generated instances (caps, floors, earmarks, thematic shares, loans): the filling
    with forecast stops and the plain one give the same distinct levels and every gap the
    same amount, within SPEC 4b's tolerance."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy = write_case(Path(folder), states=instance["states"],
                                    gaps=instance["gaps"], sources=instance["sources"],
                                    policy=toml_text(instance["policy"]))
        try:
            plain = solve_library(inputs, policy, forecast=False)
        except InfeasibleError:
            with pytest.raises(InfeasibleError):
                solve_library(inputs, policy, forecast=True)
            event("infeasible")
            return
        # With the min-cost flow's guesses on however small the LP (`flow.MIN_COLUMNS`):
        # the trials restart on its columns.
        with patch.object(flow, "MIN_COLUMNS", 0):
            forecast = solve_library(inputs, policy, forecast=True)
        loaded = api.load(inputs, policy)
        lp = build(loaded.data, loaded.policy_file.policy)
        n_gaps = len(lp.data.gaps)
        a, b = by_gap(plain, lp.var_gap, n_gaps), by_gap(forecast, lp.var_gap, n_gaps)
        fundable = lp.fundable * 1e6
        assert np.all(np.abs(a - b) <= 0.01 + 1e-6 * fundable + 1e-9 * np.abs(a)), \
            np.max(np.abs(a - b))
        assert plain.levels is not None and forecast.levels is not None
        levels_plain = distinct_level_values(plain.levels.held)
        levels_forecast = distinct_level_values(forecast.levels.held)
        assert levels_forecast == pytest.approx(levels_plain, rel=1e-6)
        n_forecast = sum(s.forecast for s in forecast.levels.steps)
        event(f"{n_forecast} forecast steps of {len(forecast.levels.steps)}")


@settings(max_examples=15, deadline=None)
@given(instance=level_instances())
def test_runs_with_forecast_steps_certify(instance):
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy = write_case(Path(folder), states=instance["states"],
                                    gaps=instance["gaps"], sources=instance["sources"],
                                    policy=toml_text(instance["policy"]))
        try:
            with patch.object(flow, "MIN_COLUMNS", 0):  # trials and split on the flow's columns
                run = allocate_and_read(inputs, policy, Path(folder) / "run")
        except InfeasibleError:
            event("infeasible")
            return
        certificate = audit.certify(run.folder)
        assert certificate.ok, "\n".join(certificate.lines())


def test_the_manifest_counts_the_lps_of_stage_2_not_its_steps(tmp_path):
    """SPEC 4b: `steps` is the LPs solved in stage 2. The three capped States: three steps
    (two forecast), two LPs (the step as it stands reaches A's cap; one LP with A's and B's
    stops held finds the budget's)."""
    inputs, policy = three_capped_states(tmp_path)
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    import csv

    with open(run.folder / "levels.csv", encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    assert (run.manifest["objective"]["levels"], run.manifest["objective"]["steps"]) == (3, 2)


def tiny_beside_huge(tmp_path: Path) -> RunFiles:
    """A State capped at 5e9 with gaps of USD 1e10 and USD 1: the cap stops both at
    L = 5e9 / (1e10 + 1), 0.5 of each; a second State takes the rest of the grant."""
    states = [state("AAA", absorption_usd=5e9), state("BBB")]
    gaps = [gap("AAA", "10.7", 1e10), gap("AAA", "8.8", 1.0), gap("BBB", "10.7", 1e6)]
    inputs, policy = write_case(tmp_path, states=states, gaps=gaps,
                                sources=[source("g", 1e10)], policy=NO_FLOOR)
    return allocate_and_read(inputs, policy, tmp_path / "run")


def test_a_gap_far_smaller_than_its_states_others_stops_with_them_at_the_cap(tmp_path):
    """The forecast stops both of AAA's gaps at the cap's level. (One LP per step stops
    the large gap alone, its small share of the dual being under the LP's stop
    threshold; the small gap then takes what the large one's hold gives way below its
    level, USD 0.001 at most: it was USD 5, 1e-9 of the level, which filled it.)"""
    run = tiny_beside_huge(tmp_path)
    amounts = {(r["iso3"], r["target"]): float(r["allocated_usd"]) for r in run.coverage}
    assert amounts[("AAA", "8.8")] == pytest.approx(5e9 / (1e10 + 1), abs=0.0101)


def test_a_gap_far_smaller_than_its_states_others_certifies(tmp_path):
    """The cap's dual gives the USD 1 gap 1e-10 of d L / d rhs: small, exact, positive."""
    certificate = audit.certify(tiny_beside_huge(tmp_path).folder)
    assert certificate.ok, "\n".join(certificate.lines())


def test_forecasts_past_the_grant_money_are_confirmed_by_doubling_not_one_lp_each(tmp_path):
    """Stage 1b's X* counts grants only, so the money's bound on how many forecast stops
    can hold is too low where loans meet the holds. Sixteen LICs, one gap of U = 10e6 each,
    absorption caps 0.5e6 i (L = 0.05 i); a grant of 1e6 and a loan of 1e9 that carries
    every cap. Past that bound the search went on one forecast stop per LP (16 LPs);
    doubling confirms them in a few. The levels are the plain filling's."""
    n = 16
    states = [state("S" + chr(64 + i) * 2, absorption_usd=0.5e6 * i) for i in range(1, n + 1)]
    gaps = [gap("S" + chr(64 + i) * 2, "10.7", 10e6) for i in range(1, n + 1)]
    sources = [source("g", 1e6), source("l", 1e9, "loan", grant_element=0.3)]
    inputs, policy = write_case(tmp_path, states=states, gaps=gaps, sources=sources,
                                policy=NO_FLOOR)
    solution = solve_library(inputs, policy, forecast=True)
    plain = solve_library(inputs, policy, forecast=False)
    assert solution.levels is not None and plain.levels is not None
    assert [s.level for s in solution.levels.steps] == \
        pytest.approx([0.05 * i for i in range(1, n + 1)], rel=1e-7)
    assert solution.levels.held == pytest.approx(plain.levels.held, rel=1e-7, nan_ok=True)
    assert solution.levels.lps <= n // 2
