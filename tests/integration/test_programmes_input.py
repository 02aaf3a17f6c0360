"""SPEC 8's bad input: programmes.csv and the policy keys, each problem as
`file:line: column: what is wrong`, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cases import gap, source, state, write_case, write_rows

from gcm_fund.errors import InputError
from gcm_fund.model.scenario import load_scenario

METHOD = '[allocation]\nmethod = "programmes"\n'
GOOD = {"programme_id": "p1", "name": "P1", "states": "AAA;BBB", "targets": "10.7",
        "budget_usd": 2e6}


def inputs(tmp_path: Path, rows: list[dict[str, Any]] | None, policy: str = METHOD
           ) -> tuple[Path, Path]:
    folder, policy_path = write_case(
        tmp_path, states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 1e6), gap("BBB", "10.7", 1e6), gap("BBB", "8.8", 1e6)],
        sources=[source("fund", 1e6)], policy=policy)
    if rows is not None:
        write_rows(folder / "programmes.csv", rows)
    return folder, policy_path


def problems(tmp_path: Path, rows: list[dict[str, Any]] | None, policy: str = METHOD
             ) -> list[str]:
    folder, policy_path = inputs(tmp_path, rows, policy)
    with pytest.raises(InputError) as caught:
        load_scenario(folder, policy_path)
    prefix = str(folder / "programmes.csv")
    return [str(p).replace(prefix, "programmes.csv") for p in caught.value.problems]


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param({"min_usd": 3e6}, "programmes.csv:2: min_usd: got 3e+06, above budget_usd "
                  "2e+06: expected a number in (0, budget_usd] (USD)", id="min-above-budget"),
    pytest.param({"shares": "AAA:10.7=0.5;BBB:10.7=0.4"},
                 "programmes.csv:2: shares: the shares sum to 0.9, expected 1",
                 id="shares-not-one"),
    pytest.param({"shares": "AAA:10.7=0.5;BBB:8.8=0.5"},
                 "programmes.csv:2: shares: BBB:8.8 is outside the programme's states x "
                 "targets", id="share-outside"),
    pytest.param({"targets": "10.7;8.8", "shares": "AAA:8.8=0.5;BBB:8.8=0.5"},
                 "programmes.csv:2: shares: AAA:8.8 is not a row of gaps.csv",
                 id="share-not-a-gap"),
    pytest.param({"states": "AAA;KEN"},
                 "programmes.csv:2: states: got 'KEN', not in states.csv", id="unknown-iso3"),
    pytest.param({"targets": "10.7;16.2"},
                 "programmes.csv:2: targets: got '16.2', no gap in gaps.csv has it",
                 id="unknown-target"),
    pytest.param({"quality": 1.5}, "programmes.csv:2: quality: got '1.5', expected a number "
                 "in [0, 1]", id="quality-outside"),
    pytest.param({"budget_usd": 0}, "programmes.csv:2: budget_usd: got '0', expected a "
                 "number > 0 (USD)", id="budget-zero"),
])
def test_each_bad_cell_is_named(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    assert problems(tmp_path, [{**GOOD, **change}]) == [expected]


def test_a_duplicate_id_is_named_with_its_first_line(tmp_path: Path) -> None:
    assert problems(tmp_path, [GOOD, GOOD]) == [
        "programmes.csv:3: programme_id: duplicate key 'p1', first on line 2"]


def test_the_method_without_programmes_csv(tmp_path: Path) -> None:
    assert problems(tmp_path, None) == [
        "programmes.csv: file not found: [allocation] method = \"programmes\" needs the "
        "programme pipeline (docs/programmes.md)"]


def test_other_methods_ignore_programmes_csv(tmp_path: Path) -> None:
    folder, policy_path = inputs(tmp_path, [{**GOOD, "quality": 7}], policy="")
    assert load_scenario(folder, policy_path).data.programme_table is None


@pytest.mark.parametrize(("policy", "expected"), [
    pytest.param("[regional.min_share]\nAfrica = 0.7\nAsia = 0.6\n",
                 "regional.min_share: the shares sum to 1.3, expected at most 1", id="sum"),
    pytest.param("[regional.min_share]\nAfrica = 1.5\n", "regional.min_share.Africa: got 1.5",
                 id="above-one"),
    pytest.param("[programmes]\nmax_per_state = 1.5\n", "programmes.max_per_state: got 1.5",
                 id="not-an-integer"),
    # docs/programmes.md: an integer >= 1; absent is no limit, so 0 cannot mean it too.
    pytest.param("[programmes]\nmax_per_state = 0\n", "programmes.max_per_state: got 0",
                 id="max-per-state-zero"),
])
def test_bad_balance_keys(tmp_path: Path, policy: str, expected: str) -> None:
    found = problems(tmp_path, [GOOD], METHOD + policy)
    assert len(found) == 1 and expected in found[0]


def test_bad_input_through_the_cli_writes_nothing(tmp_path: Path, cli: Any) -> None:
    folder, policy_path = inputs(tmp_path, [{**GOOD, "quality": 2}])
    out = tmp_path / "out"
    result = cli("allocate", folder, "--model", policy_path, "--out", out)
    assert result.returncode == 2
    assert "programmes.csv:2: quality: got '2', expected a number in [0, 1]" in result.stderr
    assert not out.exists()
