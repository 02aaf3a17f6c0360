"""`sweep` and `compare` under priority levels (SPEC 4b) show the levels.

The case (hand-solved): gaps A/10.7 and B/10.7 (priority 1) and C/8.8 (priority 2), U =
10e6 each, A's State absorbs at most 1e6, one grant g. Water rises by pledge B_g:
L = B/40e6 until A's cap stops it at 0.1 (B = 4e6); then the others rise by
L = (B - 1e6)/30e6 until C is full at L = 0.5 (B = 16e6); then B alone, L = (B - 11e6)/10e6.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from cases import gap, source, state
from typer.testing import CliRunner

from gcm_fund.analyses.sweep import COLUMNS
from gcm_fund.cli.app import app
from gcm_fund.outputs.results import TERMS_METRICS

LEVELS_POLICY: dict[str, Any] = {"equity": {"group": "ldc"},
                                 "weights": {"target": {"8.8": 2.0}}}


def capped_case(tmp_path: Path, write_case, pledge: float = 8e6,
                policy: dict[str, Any] | None = None) -> tuple[Path, Path]:
    return write_case(
        tmp_path, states=[state("AAA", absorption_usd=1e6), state("BBB"), state("CCC")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "10.7", 10e6), gap("CCC", "8.8", 10e6)],
        sources=[source("g", pledge)], policy=policy or LEVELS_POLICY)


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_sweep_under_levels_shows_how_each_level_rises(tmp_path, write_case):
    inputs, policy = capped_case(tmp_path, write_case)
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(app, ["sweep", str(inputs), "--model", str(policy),
                                      "--source", "g", "--pledges", "0:20e6:6",
                                      "--out", str(out), "--no-chart"])
    assert result.exit_code == 0, result.output
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == [*COLUMNS, "levels", "level_1", "level_2", "level_3", *TERMS_METRICS]
    rows = read(out)
    assert [r["pledge_usd"] for r in rows] == [
        "0.00", "4000000.00", "8000000.00", "12000000.00", "16000000.00", "20000000.00"]
    assert [r["levels"] for r in rows] == ["0", "1", "2", "2", "2", "3"]
    expected = [[], [0.1], [0.1, 7 / 30], [0.1, 11 / 30], [0.1, 0.5], [0.1, 0.5, 0.9]]
    for row, levels in zip(rows, expected, strict=True):
        got = [float(row[f"level_{k}"]) for k in range(1, len(levels) + 1)]
        assert got == pytest.approx(levels, rel=1e-6), row
        assert all(row[f"level_{k}"] == "" for k in range(len(levels) + 1, 4)), row


def test_a_sweep_under_weighted_keeps_specs_columns(tmp_path, write_case):
    inputs, policy = capped_case(tmp_path, write_case,
                                 policy={**LEVELS_POLICY, "allocation": {"method": "weighted"}})
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(app, ["sweep", str(inputs), "--model", str(policy),
                                      "--source", "g", "--pledges", "0:20e6:3",
                                      "--out", str(out), "--no-chart"])
    assert result.exit_code == 0, result.output
    # No level columns; SPEC 4c's grant-equivalent columns after SPEC 6's.
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join([*COLUMNS,
                                                                        *TERMS_METRICS])


def test_compare_shows_the_levels_of_each_policy_side_by_side(tmp_path, write_case):
    inputs, levels = capped_case(tmp_path, write_case)
    weighted = tmp_path / "weighted.toml"
    weighted.write_text('name = "weighted"\n[allocation]\nmethod = "weighted"\n'
                        '[equity]\ngroup = "ldc"\n', encoding="utf-8")
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(app, ["compare", str(inputs), "--model", str(levels),
                                      "--model", str(weighted), "--out", str(out)],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    table = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    rows = {row[0]: row[1:] for row in table[1:]}
    assert rows["method"] == ["levels", "weighted"]
    assert rows["levels"] == ["2", ""]
    assert float(rows["level_1"][0]) == pytest.approx(0.1, rel=1e-6)
    assert float(rows["level_2"][0]) == pytest.approx(7 / 30, rel=1e-6)
    assert rows["level_1"][1] == rows["level_2"][1] == ""
    assert "level_3" not in rows
    assert rows["loan_burden_usd"] == ["0.00", ""]
    assert rows["allocated_usd"] == ["8000000.00", "8000000.00"]
    shown = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()
             if line.strip().startswith(("method", "level_"))}
    assert shown["method"] == ["levels", "weighted"]
    assert shown["level_2"] == ["0.233333", "-"]
