"""The Excel workbook of a run: the CSV tables, the policy and the manifest, round-tripped."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from typer.testing import CliRunner

from gcm_fund import api
from gcm_fund.cli.app import app
from gcm_fund.outputs import workbook

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


def test_text_like_a_formula_or_an_error_code_stays_text_in_every_sheet(tmp_path):
    """Cells openpyxl would store as a formula (`=...`) or an error (`#N/A`) are written as
    text, in a table, the policy and the manifest; amounts keep their format."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "#N/A", "note": "=2+2"}),
                                       encoding="utf-8")
    (run / "policy.toml").write_text('name = "x"\n=1\n#DIV/0!\n', encoding="utf-8")
    (run / "allocations.csv").write_text(
        "source_id,iso3,target,amount_usd\n=1+1,#N/A,10.7,12.50\n#REF!,KEN,=A1,\n",
        encoding="utf-8")
    book = load_workbook(workbook.write_workbook(run, tmp_path / "run.xlsx"))
    rows = [[(c.value, c.data_type) for c in row] for row in book["allocations"].iter_rows()]
    assert rows[1:] == [[("=1+1", "s"), ("#N/A", "s"), ("10.7", "s"), (12.5, "n")],
                        [("#REF!", "s"), ("KEN", "s"), ("=A1", "s"), (None, "n")]]
    assert book["allocations"]["D2"].number_format == workbook.USD_FORMAT
    assert [(c.value, c.data_type) for c in book["policy"]["A"]][2:] == [("=1", "s"),
                                                                        ("#DIV/0!", "s")]
    assert [(c.value, c.data_type) for c in book["manifest"]["B"]][1:] == [("#N/A", "s"),
                                                                          ("=2+2", "s")]
    assert all(c.font.b for sheet in book for c in sheet[1])


TEXTS = st.text(alphabet=st.sampled_from(["a", "1", " ", "&", "<", ">", "=", "#", "é", "\n",
                                          "'", '"', ".", "-", "e"]), max_size=6)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(TEXTS, TEXTS, TEXTS), min_size=1, max_size=8))
def test_every_cell_is_the_csv_cell(tmp_path_factory, rows):
    """Whatever the text (spaces at either end, XML's &, < and >, a leading = or #, a
    number or not), a text column's cell is the CSV's text, a number column's cell the
    number (formatted in an amount column) or the text when it is not one."""
    run = tmp_path_factory.mktemp("cells")
    (run / "manifest.json").write_text('{"run_id": "x"}', encoding="utf-8")
    with open(run / "allocations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["source_id", "amount_usd", "dual"])
        writer.writerows(rows)
    sheet = load_workbook(workbook.write_workbook(run, run / "book.xlsx"))["allocations"]
    found = [[(c.value, c.data_type, c.number_format) for c in row]
             for row in sheet.iter_rows(min_row=2, max_col=3)]
    assert len(found) == len(rows)

    def expected(text: str, column: int, cell: tuple) -> tuple:
        if text == "":
            return (None, cell[1], "General")  # an empty text cell reads back as "inlineStr"
        number = None
        if column > 0:
            try:
                number = float(text)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            return (text.replace("\r\n", "\n"), "s", "General") if number is None \
                else (None, "n", workbook.USD_FORMAT if column == 1 else "General")
        return (number, "n", workbook.USD_FORMAT if column == 1 else "General")

    for row, cells in zip(rows, found, strict=True):
        for column, (text, cell) in enumerate(zip(row, cells, strict=True)):
            assert cell == expected(text, column, cell), (text, column)
