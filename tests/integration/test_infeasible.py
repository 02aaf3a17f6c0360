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
    assert diagnosis.reason.endswith("binding: budget[donor]")


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


def test_floor_and_thematic_share_in_conflict(tmp_path: Path, write_case) -> None:
    """A floor of 50 % on both gaps puts >= USD 5 million on 10.7; 8.7 can take at most 10,
    so 8.7 cannot reach 90 % of all that is allocated (it would need 45)."""
    inputs, policy = write_case(
        tmp_path, states=[state("AAA")],
        gaps=[gap("AAA", "10.7", 10e6), gap("AAA", "8.7", 10e6)],
        sources=[source("donor", 20e6)],
        policy={"equity": {"min_floor": 0.5}, "thematic": {"min_share": {"8.7": 0.9}}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    families = caught.value.diagnosis.families()
    assert "gap" in families
    assert {"floor", "thematic"} & set(families)
