"""The Excel workbook of a run: the CSV tables, the policy and the manifest, round-tripped."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from gcm_fund import api, workbook
from gcm_fund.cli import app

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("coverage", "allocations", "sources_summary", "constraints")


@pytest.fixture(scope="module")
def run_and_book(tmp_path_factory: pytest.TempPathFactory, bundled_run) -> tuple[Path, Path]:
    out = bundled_run("ldc_priority")  # shared by the session: read, never changed
    return out, workbook.write_workbook(out, tmp_path_factory.mktemp("book") / "run.xlsx")


def test_every_table_round_trips_through_pandas(run_and_book):
    run, book = run_and_book
    sheets = pd.read_excel(book, sheet_name=None, dtype=object)
    tables = sorted(p.stem for p in run.glob("*.csv"))
    assert sorted(set(sheets) - {"policy", "manifest"}) == tables
    for name in tables:
        written = pd.read_csv(run / f"{name}.csv", dtype=str, keep_default_na=False)
        sheet = sheets[name]
        assert list(sheet.columns) == list(written.columns), name
        assert len(sheet) == len(written), name
        for column in written.columns:
            for text, value in zip(written[column], sheet[column], strict=True):
                if text == "":
                    assert value is None or (isinstance(value, float) and math.isnan(value))
                elif isinstance(value, str):
                    assert value == text, (name, column)
                else:
                    assert float(value) == float(text), (name, column, text, value)


def test_policy_and_manifest_sheets(run_and_book):
    run, book = run_and_book
    sheets = pd.read_excel(book, sheet_name=None, dtype=object, keep_default_na=False)
    policy_lines = [line for line in (run / "policy.toml").read_text().splitlines()]
    assert [("" if v is None else v) for v in sheets["policy"]["policy.toml"]] == policy_lines
    manifest = json.loads((run / "manifest.json").read_text())
    found = dict(zip(sheets["manifest"]["key"], sheets["manifest"]["value"], strict=True))
    assert found["run_id"] == manifest["run_id"]
    assert found["totals.allocated_usd"] == manifest["totals"]["allocated_usd"]
    assert found["model.sha256"] == manifest["model"]["sha256"]


def test_formats_frozen_header_and_widths(run_and_book):
    _, book = run_and_book
    sheets = load_workbook(book)
    coverage = sheets["coverage"]
    assert coverage.freeze_panes == "A2"
    header = [c.value for c in coverage[1]]
    assert coverage.cell(row=2, column=header.index("need_usd") + 1).number_format \
        == workbook.USD_FORMAT
    assert coverage.cell(row=2, column=header.index("coverage") + 1).number_format \
        == workbook.PERCENT_FORMAT
    assert coverage.column_dimensions["C"].width >= len("need_usd") + 2
    assert all(sheets[name].freeze_panes == "A2" for name in sheets.sheetnames)


def test_text_that_looks_like_a_formula_stays_text(tmp_path, write_case):
    inputs, policy = write_case(
        tmp_path, states=[{"iso3": "KEN", "name": "Kenya", "region": "Africa",
                           "income_group": "LIC"}],
        gaps=[{"iso3": "KEN", "target": "10.7", "need_usd": 1e6}],
        sources=[{"source_id": "a", "name": "=HYPERLINK(\"http://x\")", "kind": "donor",
                  "instrument": "grant", "pledge_usd": 5e5}],
        policy='name = "=1+1"\n')
    run = api.write(api.allocate(inputs, policy), tmp_path / "run")
    book = workbook.write_workbook(run, tmp_path / "run.xlsx")
    sheet = load_workbook(book)["manifest"]
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert cells["model.name"].value == "=1+1"
    assert cells["model.name"].data_type == "s"
    policy_cells = [c for row in load_workbook(book)["policy"].iter_rows() for c in row]
    assert all(c.data_type != "f" for c in policy_cells)


def test_export_and_allocate_xlsx_commands(tmp_path):
    # On the tiny case: the bundled example's workbook (run_and_book) is what the other
    # tests read sheet by sheet; here the commands are what is tested.
    def cli(app, args):
        return CliRunner().invoke(app, args)

    result = cli(app, ["allocate", str(ROOT / "tests" / "data" / "tiny"), "--model",
                       str(ROOT / "tests" / "data" / "tiny" / "policy.toml"), "--out",
                       str(tmp_path / "run"), "--xlsx", str(tmp_path / "b.xlsx")])
    assert result.exit_code == 0, result.output
    assert "coverage" in load_workbook(tmp_path / "b.xlsx").sheetnames
    result = cli(app, ["export", str(tmp_path / "run"), "--xlsx", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    assert load_workbook(tmp_path / "a.xlsx").sheetnames[:2] == ["coverage", "allocations"]
    result = cli(app, ["export", str(tmp_path), "--xlsx", str(tmp_path / "c.xlsx")])
    assert result.exit_code == 2
    assert "not a run folder" in result.output
    assert not (tmp_path / "c.xlsx").exists()


def test_a_workbook_inside_the_run_folder_is_refused(run_and_book, tmp_path):
    # Written there, it would be a file the run did not write: certify names it, and
    # --force then refuses to replace the folder.
    run, _ = run_and_book
    tiny = ROOT / "tests" / "data" / "tiny"
    result = CliRunner().invoke(app, ["allocate", str(tiny), "--model", str(tiny / "policy.toml"),
                                      "--out", str(tmp_path / "r8"), "--xlsx",
                                      str(tmp_path / "r8" / "book.xlsx")])
    assert result.exit_code == 2
    assert "is inside the run folder" in result.output
    assert not (tmp_path / "r8").exists()
    result = CliRunner().invoke(app, ["export", str(run), "--xlsx", str(run / "book.xlsx")])
    assert result.exit_code == 2
    assert "is inside the run folder" in result.output
    assert not (run / "book.xlsx").exists()
