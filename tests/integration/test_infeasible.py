"""Impossible policies: exit status 3, a diagnosis in USD naming the rules, no allocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cases
import pytest
from cases import gap, source, state

from gcm_fund import api
from gcm_fund.errors import InfeasibleError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return cases.run_cli(*args)


@pytest.fixture
def short_of_the_floor(tmp_path: Path, write_case) -> tuple[Path, Path]:
    """Two LIC gaps of USD 10 million, one pledge of USD 5 million, a floor of at least 50 %.

    The floor needs 0.5 x 10 + 0.5 x 10 = USD 10 million; the pledge holds 5: the floor
    rows fall short by USD 5 million in all, and the budget row is what blocks them.
    """
    return write_case(
        tmp_path,
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "10.7", 10e6)],
        sources=[source("donor", 5e6)],
        policy={"equity": {"min_floor": 0.5}},
    )


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_floor_beyond_the_pledges_is_diagnosed_in_usd(short_of_the_floor, solver: str) -> None:
    inputs, policy = short_of_the_floor
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy, solver)
    diagnosis = caught.value.diagnosis
    assert diagnosis.families() == ["floor", "budget"]
    assert sum(s.short_usd for s in diagnosis.shortfalls) == pytest.approx(5e6, abs=0.01)
    assert diagnosis.blocking == ["budget[donor]"]
    assert diagnosis.reason.startswith("the floor of 50% cannot be met: ")
    assert "in all" in diagnosis.reason and "USD 5.00 million" in diagnosis.reason
    assert "binding: budget[donor]; in conflict" in diagnosis.reason
    # Any one of the four giving way lets the rest hold: the pledge (5 million more),
    # either floor row (the other gap takes all 5), or the floor itself (25 % is reachable).
    assert [(c.row, c.need_usd, c.floor_reach) for c in diagnosis.conflict] == [
        ("budget[donor]", pytest.approx(5e6), None),
        ("floor[AAA,10.7]", pytest.approx(5e6), None),
        ("floor[BBB,10.7]", pytest.approx(5e6), None),
        ("equity.min_floor", None, pytest.approx(0.25)),
    ]


def test_not_maximizing_a_floor_beyond_the_pledges_is_infeasible_too(tmp_path: Path,
                                                                    write_case) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("AAA")], gaps=[gap("AAA", "10.7", 10e6)],
        sources=[source("donor", 1e6)],
        policy={"equity": {"min_floor": 0.2, "maximize": False}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    assert caught.value.diagnosis.shortfalls[0].row == "floor[AAA,10.7]"
    assert caught.value.diagnosis.shortfalls[0].short_usd == pytest.approx(1e6, abs=0.01)


def test_the_diagnosis_names_the_equity_group(tmp_path: Path, write_case) -> None:
    """One LDC gap of USD 10 million and USD 1 million pledged: the LDC floor of 20 % is
    USD 1 million short (a single gap: "falls")."""
    inputs, policy = write_case(
        tmp_path, states=[state("AAA", ldc=True), state("BBB")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "10.7", 10e6)],
        sources=[source("donor", 1e6, exclude_states=["BBB"])],
        policy={"equity": {"min_floor": 0.2, "group": "ldc"}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    assert caught.value.diagnosis.reason.startswith(
        "the LDC floor of 20% cannot be met: 1 gap falls short by USD 1.00 million in all")


def test_cli_exit_3_with_the_diagnosis_and_no_allocation(short_of_the_floor,
                                                         tmp_path: Path) -> None:
    inputs, policy = short_of_the_floor
    out = tmp_path / "run"
    result = run_cli("allocate", str(inputs), "--model", str(policy), "--out", str(out))
    assert result.returncode == 3
    assert result.stderr.startswith("infeasible: the floor of 50% cannot be met")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["diagnosis.json"]
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    assert diagnosis["status"] == "infeasible"
    assert diagnosis["families"] == ["floor", "budget"]
    assert sum(s["short_usd"] for s in diagnosis["shortfalls"]) == pytest.approx(5e6)


def test_cli_without_out_writes_nothing(short_of_the_floor, tmp_path: Path) -> None:
    inputs, policy = short_of_the_floor
    result = subprocess.run([sys.executable, "-m", "gcm_fund", "allocate", str(inputs),
                             "--model", str(policy)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 3
    assert not (tmp_path / "outputs").exists()


def test_validate_passes_an_infeasible_policy(short_of_the_floor) -> None:
    inputs, policy = short_of_the_floor
    assert run_cli("validate", str(inputs), "--model", str(policy)).returncode == 0


def test_a_thematic_share_for_a_target_no_source_may_fund(tmp_path: Path, write_case) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("AAA")],
        gaps=[gap("AAA", "10.7", 10e6), gap("AAA", "8.7", 10e6)],
        sources=[source("donor", 5e6, targets="10.7")],
        policy='[thematic.min_share]\n"8.7" = 0.1\n',
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    assert caught.value.diagnosis.families() == ["thematic"]
    assert caught.value.diagnosis.reason.startswith("thematic[8.7]: ")


def floor_against_thematic_share(tmp_path: Path, write_case) -> tuple[Path, Path]:
    """A floor of 50 % on both gaps puts >= USD 5 million on 10.7; 8.7 can take at most 10,
    so 8.7 cannot reach 90 % of all that is allocated (it would need 45)."""
    return write_case(
        tmp_path, states=[state("AAA")],
        gaps=[gap("AAA", "10.7", 10e6), gap("AAA", "8.7", 10e6)],
        sources=[source("donor", 20e6)],
        policy={"equity": {"min_floor": 0.5}, "thematic": {"min_share": {"8.7": 0.9}}},
    )


def test_floor_and_thematic_share_in_conflict(tmp_path: Path, write_case) -> None:
    inputs, policy = floor_against_thematic_share(tmp_path, write_case)
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    families = caught.value.diagnosis.families()
    assert "gap" in families
    assert {"floor", "thematic"} & set(families)


def test_item11_the_diagnosis_names_the_conflicting_rules_with_the_usd_each_needs(
        tmp_path: Path, write_case) -> None:
    """Issue 9, item 11: a 60 % thematic share on 10.7, whose only gap (AAA, LMIC) can
    absorb USD 10, against a floor of 30 % on BBB's gap of USD 100 (group LIC).

    The cheapest rule to relax is the share (USD 14 short: 10 of 10 + 30 where 0.6 x 40 =
    24 is asked), and that is all the elastic view names. The conflict is four rules, any
    one of which giving way lets the rest hold, each with what it alone would need:
    absorb[AAA] 35 more (AAA at 45 holds 60 % of 45 + 30), thematic[10.7] 14 short,
    floor[BBB,8.8] 23.33 short (BBB at 6.67 keeps 10.7 at 60 %), and the minimum floor,
    where the other rules allow 6.67 %.
    """
    inputs, policy = write_case(
        tmp_path,
        states=[state("AAA", "LMIC", absorption_usd=10), state("BBB", "LIC")],
        gaps=[gap("AAA", "10.7", 100), gap("BBB", "8.8", 100)],
        sources=[source("deu", 1000)],
        policy={"cofinancing": {"LMIC": 1.0}, "thematic": {"min_share": {"10.7": 0.6}},
                "equity": {"group": "LIC", "min_floor": 0.3}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    diagnosis = caught.value.diagnosis
    assert [s.row for s in diagnosis.shortfalls] == ["thematic[10.7]"]  # the cheapest
    assert [(c.row, c.family, c.need_usd, c.floor_reach) for c in diagnosis.conflict] == [
        ("absorb[AAA]", "absorb", pytest.approx(35.0), None),
        ("thematic[10.7]", "thematic", pytest.approx(14.0), None),
        ("floor[BBB,8.8]", "floor", pytest.approx(70 / 3), None),
        ("equity.min_floor", "floor", None, pytest.approx(1 / 15)),
    ]
    assert diagnosis.reason.endswith(
        "in conflict (these rules cannot hold together; without any one of them the rest of "
        "them can, each giving what it alone would need): absorb[AAA] "
        "(alone: USD 35.00 more), thematic[10.7] (alone: USD 14.00 short), floor[BBB,8.8] "
        "(alone: USD 23.33 short), equity.min_floor: the other rules allow at most 6.67%")
    written = diagnosis.to_dict()
    assert written["families"] == ["thematic", "absorb"]  # the fields that were, unchanged
    assert written["conflict"][0] == {"row": "absorb[AAA]", "family": "absorb",
                                      "need_usd": 35.0}
    assert written["conflict"][3] == {"row": "equity.min_floor", "family": "floor",
                                      "need_usd": None, "floor_reach": 0.066666667}


def test_item11_each_member_of_a_conflict_has_its_usd_when_another_conflict_remains(
        tmp_path: Path, write_case) -> None:
    """Two conflicts at once: item 11's share against the floor, and CCC's floor of 30 %
    against its absorption of USD 10. Whichever set HiGHS names, no one rule of it lifts
    the whole policy, yet each member's figure, measured within the set, is given."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("AAA", "LMIC", absorption_usd=10), state("BBB", "LIC"),
                state("CCC", "LIC", absorption_usd=10)],
        gaps=[gap("AAA", "10.7", 100), gap("BBB", "8.8", 100), gap("CCC", "8.8", 100)],
        sources=[source("deu", 1000)],
        policy={"cofinancing": {"LMIC": 1.0}, "thematic": {"min_share": {"10.7": 0.6}},
                "equity": {"group": "LIC", "min_floor": 0.3}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    conflict = caught.value.diagnosis.conflict
    rules = [c for c in conflict if c.row != "equity.min_floor"]
    assert rules and all(c.need_usd is not None and c.need_usd > 0 for c in rules), conflict
    if any(c.row == "absorb[CCC]" for c in rules):
        assert {c.row: c.need_usd for c in rules} == {
            "absorb[CCC]": pytest.approx(20.0), "floor[CCC,8.8]": pytest.approx(20.0)}


def test_above_the_conflict_limit_the_diagnosis_keeps_the_elastic_view(
        tmp_path: Path, write_case, monkeypatch: pytest.MonkeyPatch) -> None:
    """An LP with more eligible triples than `CONFLICT_MAX_COLUMNS` is diagnosed by the
    elastic re-solve alone: the same shortfalls, no conflict (here the limit is lowered
    below the instance's 2 triples, so that the case stays small)."""
    from gcm_fund.solvers import diagnosis as diagnosing

    inputs, policy = floor_against_thematic_share(tmp_path, write_case)
    with pytest.raises(InfeasibleError) as whole:
        api.allocate(inputs, policy)
    assert whole.value.diagnosis.conflict
    monkeypatch.setattr(diagnosing, "CONFLICT_MAX_COLUMNS", 1)
    with pytest.raises(InfeasibleError) as limited:
        api.allocate(inputs, policy)
    assert limited.value.diagnosis.conflict == []
    assert limited.value.diagnosis.shortfalls == whole.value.diagnosis.shortfalls
