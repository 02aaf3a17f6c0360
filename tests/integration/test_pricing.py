"""Column generation (`pricing`) against the whole LP and an independent reference.

The HiGHS backend solves over a pool of columns and prices the rest. These tests force
small pools (one column per gap, never falling back to all columns) so that the pricing
rounds and the floor-reaching phase really run, then check that the result is the optimum
of the whole LP: the same floor and weighted objective as scipy's linprog on a matrix
built independently from the CSV files, and duals that leave no eligible triple with a
positive reduced cost.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import gap, read_run, run_cli, source, state, toml_text, write_case
from hypothesis import event, given
from test_properties import assert_matches_optimum, instances, reference, reference_optimum

from gcm_fund import api
from gcm_fund.errors import InfeasibleError
from gcm_fund.inputs import synthetic
from gcm_fund.methods.stages import Solution, solve_stages
from gcm_fund.model.lp import LinearProgram, build
from gcm_fund.solvers.highs import HighsBackend
from gcm_fund.solvers.pricing import PRICING_TOLERANCE, ColumnPool

ROOT = Path(__file__).resolve().parents[2]


def build_lp(inputs: Path, policy: Path) -> LinearProgram:
    loaded = api.load(inputs, policy)
    return build(loaded.data, loaded.policy_file.policy)


def solve_with_small_pool(lp: LinearProgram, start_empty: bool = False
                          ) -> tuple[Solution | None, HighsBackend]:
    """Solve with one column per gap and source in each round, never all columns at once."""
    backend = HighsBackend(lp, ColumnPool(lp, per_gap=1, full_share=1.0,
                                          start_empty=start_empty))
    try:
        return solve_stages(lp, backend), backend
    except InfeasibleError:
        return None, backend


def assert_dual_feasible_everywhere(lp: LinearProgram, solution: Solution) -> None:
    """No eligible triple, in the pool or not, has a reduced cost above the tolerance."""
    stages = [(solution.stage2, lp.stage2_objective())]
    if solution.stage1 is not None:
        stages.append((solution.stage1, lp.stage1_objective()))
    for stage, cost in stages:
        reduced = cost[: lp.n_x] - lp.matrix[:, : lp.n_x].T @ stage.row_dual
        assert reduced.max(initial=0.0) <= PRICING_TOLERANCE


@given(instance=instances())
def test_a_small_pool_reaches_the_optimum_of_the_whole_lp(instance: dict[str, Any]) -> None:
    """From an empty pool, every column the optimum needs must come in by pricing (and by
    the floor-reaching phase when the policy sets a minimum floor)."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy = write_case(Path(folder), states=instance["states"],
                                    gaps=instance["gaps"], sources=instance["sources"],
                                    policy=toml_text(instance["policy"]))
        lp = build_lp(inputs, policy)
        solution, backend = solve_with_small_pool(lp, start_empty=True)
        optimum = reference_optimum(reference(inputs, policy))
    assert optimum.feasible == (solution is not None)
    assert backend.pool is not None
    rounds = f"{min(backend.pool.rounds, 4)}{'+' if backend.pool.rounds > 4 else ''}"
    if solution is None:
        event(f"infeasible, after {rounds} pricing rounds")
        return
    event(f"optimal, after {rounds} pricing rounds")
    assert_matches_optimum(optimum, solution.floor, solution.weighted_usd)
    assert_dual_feasible_everywhere(lp, solution)


@pytest.mark.parametrize("seed", [3, 4])
def test_pricing_agrees_with_the_whole_lp_on_a_generated_instance(seed: int,
                                                                  tmp_path: Path) -> None:
    """120 States x 8 targets x 80 sources: the default pool starts from a tenth of the
    columns and must end at the optimum HiGHS finds over all of them."""
    inputs = synthetic.write_instance(tmp_path / "inputs", 120, 8, 80, seed=seed)
    lp = build_lp(inputs, ROOT / "models" / "baseline.toml")
    pool = ColumnPool(lp)
    priced = solve_stages(lp, HighsBackend(lp, pool))
    whole = solve_stages(lp, HighsBackend(lp))
    assert pool.held.sum() < lp.n_x / 2
    assert priced.floor == pytest.approx(whole.floor, rel=1e-9)
    assert priced.weighted_usd == pytest.approx(whole.weighted_usd, rel=1e-9)
    assert_dual_feasible_everywhere(lp, priced)


def test_a_priced_run_is_certified_and_reproduced(tmp_path: Path) -> None:
    """What `allocate` writes from a pool passes `certify` (duals checked on every eligible
    triple, from the files alone) and `verify` (byte-identical re-solve). Without the
    donor figures: their re-solves, 80 sources' worth and again in `verify`, test no
    pricing (test_donor_figures.py tests them)."""
    inputs = synthetic.write_instance(tmp_path / "inputs", 120, 8, 80, seed=5)
    out = tmp_path / "run"
    done = run_cli("allocate", inputs, "--out", out, "--donor-figures", "none")
    assert done.returncode == 0, done.stderr
    run = read_run(out)
    assert run.manifest["solver"]["options"]["columns"]["method"] == "column generation"
    for check in ("certify", "verify"):
        done = run_cli(check, out)
        assert done.returncode == 0, done.stdout + done.stderr


# A hand-solved case where the first pool cannot meet a floor of 0.5. Weights: target 8.8
# weighs 2, 10.7 weighs 1; source b is a loan with grant element 0.5 and penalty 0.5, so
# its columns weigh 0.25 less. One column per gap and per source starts the pool with
# a-10.7, a-8.8 and b-8.8: a alone (USD 10 million) cannot bring 10.7 to half its need of
# USD 100 million. Over all columns, the optimum puts the least allowed on 10.7:
# objective 2*10 - x_a,10.7 + 1.75*100 - x_b,10.7 with x_a,10.7 + x_b,10.7 = 50, so 145.
FLOOR_CASE_POLICY = {"weights": {"target": {"8.8": 2.0, "10.7": 1.0}},
                     "loans": {"penalty": 0.5},
                     "equity": {"maximize": False, "min_floor": 0.5}}


def floor_case(tmp_path: Path, pledge_b: float) -> LinearProgram:
    inputs, policy = write_case(
        tmp_path, states=[state("KEN")],
        gaps=[gap("KEN", "10.7", 100e6), gap("KEN", "8.8", 100e6)],
        sources=[source("a", 10e6),
                 source("b", pledge_b, instrument="loan", grant_element=0.5)],
        policy=FLOOR_CASE_POLICY)
    return build_lp(inputs, policy)


def test_a_pool_that_cannot_meet_the_floor_grows_until_it_does(tmp_path: Path) -> None:
    lp = floor_case(tmp_path, 100e6)
    solution, backend = solve_with_small_pool(lp)
    assert solution is not None
    assert solution.floor == 0.5
    assert solution.weighted_usd == pytest.approx(145e6, rel=1e-9)
    x = dict(zip(zip(lp.var_source, lp.var_gap, strict=True), solution.x_usd, strict=True))
    assert x[(0, 0)] + x[(1, 0)] == pytest.approx(50e6, rel=1e-9)  # 10.7 at its floor
    assert backend.pool is not None and backend.pool.held.all()


def test_a_floor_out_of_reach_of_every_column_is_infeasible(tmp_path: Path) -> None:
    """b's USD 30 million and a's 10 cannot bring both gaps to USD 50 million: the pool, priced
    while maximising z, proves it, and the diagnosis names the floor."""
    lp = floor_case(tmp_path, 30e6)
    backend = HighsBackend(lp, ColumnPool(lp, per_gap=1, full_share=1.0))
    with pytest.raises(InfeasibleError) as raised:
        solve_stages(lp, backend)
    assert "floor" in raised.value.diagnosis.reason
    shortfall = sum(s.short_usd for s in raised.value.diagnosis.shortfalls)
    assert shortfall == pytest.approx(60e6, rel=1e-6)  # USD 100 million of floors, 40 held


def test_the_pool_starts_from_the_best_weighted_columns(tmp_path: Path) -> None:
    lp = floor_case(tmp_path, 100e6)
    pool = ColumnPool(lp, per_gap=1, full_share=1.0)
    first = pool.first()
    names = {(str(lp.data.sources["source_id"].iloc[lp.var_source[j]]),
              str(lp.data.gaps["target"].iloc[lp.var_gap[j]])) for j in first}
    assert names == {("a", "10.7"), ("a", "8.8"), ("b", "8.8")}
    assert np.array_equal(np.sort(first), first)


def test_the_priced_diagnosis_finds_the_least_total_shortfall(tmp_path: Path) -> None:
    """A floor of 90 % cannot be met on a generated instance; the elastic diagnosis, solved
    over a pool, must find the same least total shortfall as over every column."""
    inputs = synthetic.write_instance(tmp_path / "inputs", 120, 8, 80, seed=6)
    policy = tmp_path / "policy.toml"
    policy.write_text(toml_text({"equity": {"min_floor": 0.9}}), encoding="utf-8")
    lp = build_lp(inputs, policy)
    with pytest.raises(InfeasibleError) as raised:
        solve_stages(lp, HighsBackend(lp, ColumnPool(lp)))
    priced_total = sum(s.short_usd for s in raised.value.diagnosis.shortfalls)

    elastic = lp.elastic()
    slacks = elastic.n_cols - lp.n_cols
    cost = np.concatenate([np.zeros(lp.n_cols), -np.ones(slacks)])
    assert elastic.z_col is not None
    whole = HighsBackend(elastic).solve(cost, {elastic.z_col: (0.9, 0.9)}, lp.rhs)
    whole_total = -whole.objective * 1e6
    assert whole_total > 1e6  # the floor really is out of reach
    # Shortfalls below half a cent are not listed: at most one such per floor row.
    assert priced_total == pytest.approx(whole_total, rel=1e-9, abs=0.005 * slacks)
