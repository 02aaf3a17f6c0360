"""`gcm-fund sweep`: every level equals an independent `allocate`, breakpoints are found.

The hand-solved instance of the breakpoint tests (amounts in USD, all States LIC so that
U = need, no LDC so that the floor set G of `group = "ldc"` is empty and stage 2 alone
decides; one source `don`, a grant, pledge B):

    gaps     UGA 10.7: 0.5e6 (weight 4)   KEN 8.8: 1.5e6 (weight 3)
             KEN 5.2:  2e6   (weight 2)   KEN 16.2: 3e6  (weight 1)

The fund fills the gaps in order of weight. The weighted objective is

    W(B) = 4 min(B, 0.5e6) + 3 clip(B - 0.5e6, 0, 1.5e6) + 2 clip(B - 2e6, 0, 2e6)
           + 1 clip(B - 4e6, 0, 3e6)

and the dual of budget[don] (its marginal value) is 4 below 0.5e6, 3 on (0.5e6, 2e6),
2 on (2e6, 4e6), 1 on (4e6, 7e6) and 0 above 7e6 (the budget no longer binds). The
breakpoints are 0.5e6, 2e6, 4e6 and 7e6. Below 0.5e6 all of `don`'s money goes to UGA, so
`budget[don]` and `source_state[don,UGA]` (rho = 1) are the same rule and the dual may sit
on either: the sweep starts above that, at 1.25e6, where UGA's gap is full and `don` funds
two States, so the budget dual is unique. Levels 1.25e6:9.25e6:5 are 1.25e6, 3.25e6,
5.25e6, 7.25e6, 9.25e6 with marginal values 3, 2, 1, 0, 0 and W = 4.25e6, 9e6, 11.75e6,
13.5e6, 13.5e6; the breakpoints between them are 2e6, 4e6 and 7e6.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path
from typing import Any

import cases
import numpy as np
import pytest
from cases import gap, source, state, weighted_policy

from gcm_fund import api
from gcm_fund.analyses.sweep import (
    COLUMNS,
    Level,
    companion_paths,
    parse_levels,
    reference_level,
    sweep,
    write_sweep,
)
from gcm_fund.errors import UsageError
from gcm_fund.inputs import synthetic
from gcm_fund.outputs.results import TERMS_METRICS

ROOT = Path(__file__).resolve().parents[2]
# Section 4's weighted stage 2: the breakpoints of the module docstring are W(B)'s.
WEIGHTED: dict[str, Any] = {"allocation": {"method": "weighted"}}
HAND_POLICY = {
    "weights": {"target": {"10.7": 4.0, "8.8": 3.0, "5.2": 2.0, "16.2": 1.0}},
    "equity": {"group": "ldc"},
    **WEIGHTED,
}


def hand_weighted(b: float) -> float:
    """W(B) of the module docstring."""
    return (4 * min(b, 0.5e6) + 3 * np.clip(b - 0.5e6, 0, 1.5e6)
            + 2 * np.clip(b - 2e6, 0, 2e6) + 1 * np.clip(b - 4e6, 0, 3e6))


@pytest.fixture
def hand_case(tmp_path: Path, write_case) -> tuple[Path, Path]:
    return write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("UGA", "10.7", 0.5e6), gap("KEN", "8.8", 1.5e6), gap("KEN", "5.2", 2e6),
              gap("KEN", "16.2", 3e6)],
        sources=[source("don", 1e6)],
        policy=HAND_POLICY,
    )


def loaded(inputs: Path, policy: Path) -> tuple:
    run = api.load(inputs, policy)
    return run.data, run.policy_file.policy


def assert_same_level(got: Level, want: Level) -> None:
    """Floor and weighted within 1e-6 relative, the budget dual within 1e-9."""
    assert got.pledge_usd == want.pledge_usd
    assert got.status == want.status, (got, want)
    if want.status != "optimal":
        return
    if want.floor is None:
        assert got.floor is None
    else:
        assert got.floor == pytest.approx(want.floor, rel=1e-6, abs=1e-12)
    assert got.weighted_usd == pytest.approx(want.weighted_usd, rel=1e-6)
    if want.marginal_value is None:
        assert got.marginal_value is None
    else:
        assert got.marginal_value == pytest.approx(want.marginal_value, abs=1e-9)
    if want.levels is None:
        assert got.levels is None
    else:  # SPEC 4b: the levels are unique, warm or cold
        assert got.levels == pytest.approx(want.levels, rel=1e-6, abs=1e-12)


# ---------------------------------------------------------------------------------------
# The hand-solved instance


def test_levels_match_the_hand_solution(hand_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*hand_case)
    result = sweep(data, policy, ["don"], parse_levels("1.25e6:9.25e6:5"))
    assert [lv.pledge_usd for lv in result.levels] == [1.25e6, 3.25e6, 5.25e6, 7.25e6, 9.25e6]
    assert [lv.status for lv in result.levels] == ["optimal"] * 5
    assert [lv.floor for lv in result.levels] == [None] * 5  # G is empty
    for level in result.levels:
        assert level.weighted_usd == pytest.approx(hand_weighted(level.pledge_usd), rel=1e-9)
        assert level.allocated_usd == pytest.approx(min(level.pledge_usd, 7e6), abs=0.05)
    assert [lv.marginal_value for lv in result.levels] == pytest.approx([3, 2, 1, 0, 0],
                                                                        abs=1e-9)


def test_breakpoints_are_found_within_the_tolerance(hand_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*hand_case)
    result = sweep(data, policy, ["don"], parse_levels("1.25e6:9.25e6:5"),
                   breakpoint_tol_usd=1.0)
    exact = [2e6, 4e6, 7e6]
    assert len(result.breakpoints) == len(exact)
    for point, where, (below, above) in zip(result.breakpoints, exact,
                                            [(3, 2), (2, 1), (1, 0)], strict=True):
        assert point.pledge_below_usd <= where <= point.pledge_above_usd
        assert point.pledge_above_usd - point.pledge_below_usd <= 1.0
        assert point.pledge_usd == pytest.approx(where, abs=1.0)
        assert point.marginal_below == pytest.approx(below, abs=1e-9)
        assert point.marginal_above == pytest.approx(above, abs=1e-9)


def test_breakpoints_without_refinement_are_the_neighbouring_levels(
        hand_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*hand_case)
    result = sweep(data, policy, ["don"], parse_levels("1.25e6:9.25e6:5"),
                   breakpoint_tol_usd=None)
    assert [(p.pledge_below_usd, p.pledge_above_usd) for p in result.breakpoints] == [
        (1.25e6, 3.25e6), (3.25e6, 5.25e6), (5.25e6, 7.25e6)]
    assert result.solves == 5


def test_the_hand_levels_equal_independent_allocates(hand_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*hand_case)
    result = sweep(data, policy, ["don"], parse_levels("0:9e6:7"), breakpoint_tol_usd=None)
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["don"], level.pledge_usd))


# ---------------------------------------------------------------------------------------
# A level of 0: the source has no eligible triple, and G may change


@pytest.fixture
def only_source_case(tmp_path: Path, write_case) -> tuple[Path, Path]:
    """KEN's gap can be funded by `only` alone (`other` excludes KEN).

    Floor over all gaps, maximised. With `only` at 0, KEN's gap has no eligible triple and
    leaves G: z* = 1e6 / 2e6 = 0.5 (UGA's coverage by `other`). Were KEN's floor row kept,
    z* would be 0. With `only` at 3e6: 4e6 of money for 6e6 of gaps, z* = 2/3.
    """
    return write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 4e6), gap("UGA", "10.7", 2e6)],
        sources=[source("only", 5e6), source("other", 1e6, exclude_states="KEN")],
        policy=WEIGHTED,
    )


def test_a_gap_whose_only_source_is_swept_to_zero_leaves_the_floor_set(
        only_source_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*only_source_case)
    result = sweep(data, policy, ["only"], parse_levels("0:3e6:4"))
    zero, *_, top = result.levels
    assert zero.floor == pytest.approx(0.5, abs=1e-9)
    assert zero.weighted_usd == pytest.approx(1e6, rel=1e-9)
    assert zero.marginal_value is None
    assert top.floor == pytest.approx(2 / 3, abs=1e-9)
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["only"], level.pledge_usd))


def test_the_floor_set_empty_at_zero(tmp_path: Path, write_case) -> None:
    """Every gap in G is fundable by the swept source alone: at 0, G is empty and the
    floor is blank, as `allocate` with pledge 0 reports it."""
    inputs, policy_path = write_case(
        tmp_path,
        states=[state("KEN", "LIC", ldc=True), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 4e6), gap("UGA", "10.7", 2e6)],
        sources=[source("only", 5e6), source("other", 1e6, exclude_states="KEN")],
        policy={"equity": {"group": "ldc"}, **WEIGHTED},
    )
    data, policy = loaded(inputs, policy_path)
    result = sweep(data, policy, ["only"], parse_levels("0:4e6:3"))
    assert result.levels[0].floor is None
    assert result.levels[1].floor == pytest.approx(0.5, abs=1e-9)
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["only"], level.pledge_usd))


def test_a_thematic_target_only_the_swept_source_funds_is_infeasible_at_zero(
        tmp_path: Path, write_case) -> None:
    inputs, policy_path = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "8.7", 4e6), gap("UGA", "10.7", 2e6)],
        sources=[source("only", 5e6), source("other", 1e6, targets="10.7")],
        policy={"thematic": {"min_share": {"8.7": 0.2}}, **WEIGHTED},
    )
    data, policy = loaded(inputs, policy_path)
    result = sweep(data, policy, ["only"], parse_levels("0:2e6:3"))
    assert [lv.status for lv in result.levels] == ["infeasible", "optimal", "optimal"]
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["only"], level.pledge_usd))


@pytest.fixture
def min_floor_case(tmp_path: Path, write_case) -> tuple[Path, Path]:
    """min_floor 0.5 on two gaps of 4e6 that only `don` funds needs 4e6.

    At 0 `don` has no eligible triple, G is empty and the floor does not apply (optimal,
    nothing allocated); at 2e6 the floor cannot be met; at 4e6, z* = 0.5; at 6e6, 0.75.
    """
    return write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC")],
        gaps=[gap("KEN", "10.7", 4e6), gap("UGA", "10.7", 4e6)],
        sources=[source("don", 1e6)],
        policy={"equity": {"min_floor": 0.5}, **WEIGHTED},
    )


def test_low_levels_below_a_minimum_floor_are_infeasible(
        min_floor_case: tuple[Path, Path]) -> None:
    data, policy = loaded(*min_floor_case)
    result = sweep(data, policy, ["don"], parse_levels("0:6e6:4"))
    assert [lv.status for lv in result.levels] == ["optimal", "infeasible", "optimal",
                                                   "optimal"]
    assert result.levels[0] == Level(0.0, "optimal", None, 0.0, 0.0, None)
    assert [lv.floor for lv in result.levels[2:]] == pytest.approx([0.5, 0.75])
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["don"], level.pledge_usd))


# ---------------------------------------------------------------------------------------
# Generated instances and the bundled example


@pytest.mark.parametrize("policy_name", ["baseline", "ldc_priority", "flat_responsibility"])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_level_equals_an_independent_allocate(policy_name: str, seed: int,
                                                    tmp_path: Path) -> None:
    folder = synthetic.write_instance(tmp_path / "inputs", n_states=30, n_targets=5,
                                      n_sources=12, seed=seed)
    data, policy = loaded(folder, ROOT / "models" / f"{policy_name}.toml")
    for source_id in ("src000", "src005"):
        pledge = float(data.sources.set_index("source_id").loc[source_id, "pledge_usd"])
        levels = np.round(np.linspace(0, 2 * pledge, 5), 2)
        result = sweep(data, policy, [source_id], levels, breakpoint_tol_usd=None)
        for level in result.levels:
            assert_same_level(level, reference_level(data, policy, [source_id],
                                                     level.pledge_usd))


@pytest.mark.parametrize("method", ["weighted", "levels"])
@pytest.mark.parametrize("policy_name", ["baseline", "ldc_priority"])
def test_a_sweep_from_an_empty_pool_equals_independent_allocates(policy_name: str, method: str,
                                                                 tmp_path: Path) -> None:
    """Both stages share one column pool that starts empty: every column comes in by
    pricing, and joins every model, at whatever level it is first needed (under levels
    the extended model joins before it has been solved once)."""
    folder = synthetic.write_instance(tmp_path / "inputs", n_states=30, n_targets=5,
                                      n_sources=12, seed=3)
    model = (weighted_policy(tmp_path, policy_name) if method == "weighted"
             else ROOT / "models" / f"{policy_name}.toml")
    data, policy = loaded(folder, model)
    pledge = float(data.sources.set_index("source_id").loc["src002", "pledge_usd"])
    levels = np.round(np.linspace(0, 2 * pledge, 7), 2)
    result = sweep(data, policy, ["src002"], levels, breakpoint_tol_usd=None,
                   pool_options={"per_gap": 1, "full_share": 1.0, "start_empty": True})
    assert result.extra["pricing_rounds"] >= 2
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["src002"], level.pledge_usd))


def test_a_moving_floor_equals_independent_solves() -> None:
    """Under baseline, deu's pledge moves z* at every level below USD 0.3 billion (above
    about USD 0.4 billion an absorption limit holds the floor)."""
    data, policy = loaded(ROOT / "inputs", ROOT / "models" / "baseline.toml")
    result = sweep(data, policy, ["deu"], parse_levels("0:3e8:7"), breakpoint_tol_usd=None)
    floors = [lv.floor for lv in result.levels]
    assert len(set(floors)) == len(floors)  # the floor moves at every level
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["deu"], level.pledge_usd))


def test_a_floor_taken_from_the_last_basis_equals_independent_solves() -> None:
    """Under ldc_priority, Burundi's absorption limit holds the LDC floor whatever afdb
    pledges: stage 1's last basis stays feasible, and the sweep takes z* from it (one basis
    solve) instead of running HiGHS."""
    data, policy = loaded(ROOT / "inputs", ROOT / "models" / "ldc_priority.toml")
    result = sweep(data, policy, ["afdb"], parse_levels("0:3e8:7"), breakpoint_tol_usd=None)
    assert result.extra["stage1_skipped"] >= 3
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["afdb"], level.pledge_usd))


def test_a_joint_sweep_sets_every_named_source_to_the_level() -> None:
    data, policy = loaded(ROOT / "inputs", ROOT / "models" / "ldc_priority.toml")
    result = sweep(data, policy, ["deu", "afdb"], parse_levels("0:4e8:3"),
                   breakpoint_tol_usd=None)
    for level in result.levels:
        assert_same_level(level, reference_level(data, policy, ["deu", "afdb"],
                                                 level.pledge_usd))


# ---------------------------------------------------------------------------------------
# Levels and usage


@pytest.mark.parametrize(("text", "levels"), [
    pytest.param("0:1e6:5", [0, 2.5e5, 5e5, 7.5e5, 1e6], id="ends-included"),
    pytest.param("7:7:1", [7.0], id="one-level"),
    pytest.param("3:9:1", [3.0], id="one-level-is-start"),
    pytest.param(" 0 : 1 : 4 ", [0, 0.33, 0.67, 1.0], id="cents"),
])
def test_levels_are_evenly_spaced_to_the_cent(text: str, levels: list[float]) -> None:
    assert parse_levels(text).tolist() == pytest.approx(levels, abs=1e-9)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("0:5", "--pledges: got '0:5', expected START:STOP:N such as 0:5e8:51",
                 id="two-parts"),
    pytest.param("a:5:3", "--pledges: got 'a:5:3', expected START:STOP:N such as 0:5e8:51",
                 id="not-a-number"),
    pytest.param("0:inf:3", "--pledges: got '0:inf:3', expected START:STOP:N such as 0:5e8:51",
                 id="infinite"),
    pytest.param("0:5:0", "--pledges: N must be at least 1, got 0", id="n-zero"),
    pytest.param("0:5:2.5", "--pledges: got '0:5:2.5', expected START:STOP:N such as 0:5e8:51",
                 id="n-not-integer"),
    pytest.param("5:1:3", "--pledges: need 0 <= START <= STOP, got START 5 and STOP 1",
                 id="start-above-stop"),
    pytest.param("-1:1:3", "--pledges: need 0 <= START <= STOP, got START -1 and STOP 1",
                 id="negative"),
])
def test_bad_levels_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_levels(text)
    assert str(raised.value) == message


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cases.run_cli(*args, cwd=cwd, columns=120)


def test_the_command_writes_three_files_byte_identical_twice(
        hand_case: tuple[Path, Path], tmp_path: Path) -> None:
    inputs, policy = hand_case
    outputs = []
    for name in ("a", "b"):
        result = run_cli("sweep", str(inputs), "--model", str(policy), "--source", "don",
                         "--pledges", "1.25e6:9.25e6:5", "--out", f"{name}/sweep.csv",
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        csv_path = tmp_path / name / "sweep.csv"
        breakpoints, chart = companion_paths(csv_path)
        assert breakpoints.name == "sweep.breakpoints.csv" and chart.name == "sweep.png"
        outputs.append([p.read_bytes() for p in (csv_path, breakpoints, chart)])
    assert outputs[0] == outputs[1]
    text = outputs[0][0].decode()
    # SPEC 6's columns as they were; SPEC 4c's grant-equivalent columns follow them.
    assert "".join(",".join(line.split(",")[:6]) + "\n" for line in text.splitlines()) == (
        "pledge_usd,status,floor,weighted,allocated_usd,marginal_value\n"
        "1250000.00,optimal,,4250000.00,1250000.00,3\n"
        "3250000.00,optimal,,9000000.00,3250000.00,2\n"
        "5250000.00,optimal,,11750000.00,5250000.00,1\n"
        "7250000.00,optimal,,13500000.00,7000000.00,0\n"
        "9250000.00,optimal,,13500000.00,7000000.00,0\n"
    )
    assert text.splitlines()[0].split(",")[6:] == list(TERMS_METRICS)
    rows = list(csv.DictReader(outputs[0][1].decode().splitlines()))
    assert [r["marginal_below"] for r in rows] == ["3", "2", "1"]
    assert [r["marginal_above"] for r in rows] == ["2", "1", "0"]
    assert outputs[0][2].startswith(b"\x89PNG")


def test_an_infeasible_level_has_only_pledge_and_status(min_floor_case: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    inputs, policy = min_floor_case
    result = run_cli("sweep", str(inputs), "-m", str(policy), "--source", "don",
                     "--pledges", "0:4e6:3", "--out", "s.csv", "--no-chart", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "s.csv").read_text().splitlines()
    # SPEC 6's columns as they were; SPEC 4c's follow, blank on the infeasible level too.
    assert "".join(",".join(line.split(",")[:6]) + "\n" for line in lines) == (
        "pledge_usd,status,floor,weighted,allocated_usd,marginal_value\n"
        "0.00,optimal,,0.00,0.00,\n"
        "2000000.00,infeasible,,,,\n"
        "4000000.00,optimal,0.5,4000000.00,4000000.00,1\n"
    )
    assert lines[2].split(",")[6:] == [""] * len(TERMS_METRICS)
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--source", "don", "--pledges", "5:1:3"],
                 "error: --pledges: need 0 <= START <= STOP, got START 5 and STOP 1",
                 id="start-above-stop"),
    pytest.param(["--source", "don", "--pledges", "0:1:0"],
                 "error: --pledges: N must be at least 1, got 0", id="n-zero"),
    pytest.param(["--source", "dom", "--pledges", "0:1:2"],
                 "error: unknown source 'dom' (did you mean don?)", id="unknown-source"),
    pytest.param(["--pledges", "0:1:2"],
                 "error: name the swept source with --source ID, or several with --sources "
                 "a,b (not both)", id="no-source"),
    pytest.param(["--source", "don", "--sources", "don", "--pledges", "0:1:2"],
                 "error: name the swept source with --source ID, or several with --sources "
                 "a,b (not both)", id="both"),
    pytest.param(["--sources", "don,don", "--pledges", "0:1:2"],
                 "error: source 'don' named twice", id="twice"),
])
def test_usage_errors_exit_2_and_write_nothing(hand_case: tuple[Path, Path], tmp_path: Path,
                                               args: list[str], message: str) -> None:
    inputs, policy = hand_case
    result = run_cli("sweep", str(inputs), "-m", str(policy), *args, "--out", "s.csv",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert not any(tmp_path.glob("s.*"))


def test_write_sweep_lists_what_it_wrote(hand_case: tuple[Path, Path], tmp_path: Path) -> None:
    data, policy = loaded(*hand_case)
    result = sweep(data, policy, ["don"], parse_levels("1e6:2e6:2"), breakpoint_tol_usd=None)
    written = write_sweep(result, tmp_path / "deep" / "s.csv", chart=False)
    assert [p.name for p in written] == ["s.csv", "s.breakpoints.csv"]
    header = (tmp_path / "deep" / "s.csv").read_text().splitlines()[0]
    assert header == ",".join([*COLUMNS, *TERMS_METRICS])


def test_the_help_has_an_example() -> None:
    result = run_cli("sweep", "--help", cwd=ROOT)
    assert result.returncode == 0
    assert "Example: gcm-fund sweep" in result.stdout


def test_a_thematic_target_no_source_reaches_is_named_once(tmp_path, write_case):
    """docs/policy.md's thematic share for 8.8, which no source may fund: a level's
    diagnosis names the target once, not again beside the LP's own list."""
    from gcm_fund.model.lp import SCALE_USD, build
    from gcm_fund.solvers.pipeline import Pipeline

    inputs, policy = write_case(
        tmp_path, states=[state("KEN")], gaps=[gap("KEN", "10.7", 10e6), gap("KEN", "8.8", 5e6)],
        sources=[source("a", 4e6, targets="10.7")],
        policy={"thematic": {"min_share": {"8.8": 0.1}}})
    data, policy_model = loaded(inputs, policy)
    lp = build(data, policy_model)
    pipeline = Pipeline(lp, "highs")
    pipeline.set_pledges(lp.pledge * SCALE_USD)
    assert pipeline.unmet_thematic == ["8.8"]
    assert pipeline.infeasible().diagnosis.reason.startswith(
        "thematic[8.8]: the policy asks a share > 0 for target 8.8, but no source")
