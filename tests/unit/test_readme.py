"""The README's column tables are the schema's: a change to one without the other fails."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from gcm_fund.errors import InputError
from gcm_fund.load import load_inputs
from gcm_fund.schema import INPUT_FILES, OPTIONAL_INPUT_FILES, Column, InputFile, Reference

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table(file_name: str, document: Path = README) -> list[list[str]]:
    """The rows of the table that follows the line `` `file_name` `` in the README."""
    lines = document.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"`{file_name}`")
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() and rows:
            break
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


@pytest.mark.parametrize("file_name", list(INPUT_FILES))
def test_readme_columns_match_the_schema(file_name: str) -> None:
    columns = INPUT_FILES[file_name].columns
    expected = [[c.name, c.type, c.unit, "yes" if c.required else "no", c.meaning]
                for c in columns]
    assert readme_table(file_name) == expected


@pytest.mark.parametrize("file_name", list(OPTIONAL_INPUT_FILES))
def test_docs_contributions_columns_match_the_schema(file_name: str) -> None:
    columns = OPTIONAL_INPUT_FILES[file_name].columns
    expected = [[c.name, c.type, c.unit, "yes" if c.required else "no", c.meaning]
                for c in columns]
    assert readme_table(file_name, README.parent / "docs" / "contributions.md") == expected


@pytest.mark.parametrize("file_name", list(INPUT_FILES))
def test_schema_columns_are_the_row_model_fields(file_name: str) -> None:
    spec = INPUT_FILES[file_name]
    assert [c.name for c in spec.columns] == list(spec.model.model_fields)


# ---------------------------------------------------------------------------------------
# The schema's column table against the row models, field by field: each column is
# described once (schema.INPUT_FILES) and the models must do what it says.

COLUMNS = [pytest.param(spec, column, id=f"{spec.name}:{column.name}")
           for spec in (*INPUT_FILES.values(), *OPTIONAL_INPUT_FILES.values())
           for column in spec.columns]


def valid_row(file_name: str) -> dict[str, str]:
    """A row with every column filled with a value its model accepts."""
    return {
        "states.csv": {"iso3": "KEN", "name": "Kenya", "region": "Africa",
                       "income_group": "LMIC", "roles": "origin", "ldc": "false",
                       "debt_distress": "false", "debt_risk": "low", "absorption_usd": "5",
                       "gni_usd": "7",
                       "population": "3", "migrants_hosted": "2", "eligible": "true"},
        "gaps.csv": {"iso3": "KEN", "target": "10.7", "need_usd": "1"},
        "sources.csv": {"source_id": "a", "name": "A", "kind": "donor", "instrument": "loan",
                        "pledge_usd": "1", "grant_element": "1", "targets": "10.7",
                        "regions": "Africa", "income_groups": "LIC", "exclude_states": "KEN",
                        "max_state_share": "0.5", "donor_iso3": "KEN"},
        "contributions.csv": {"source_id": "a", "currency": "NOK", "amount": "1",
                              "status": "paid", "date": "2024-02-05"},
        "fx.csv": {"currency": "NOK", "date": "2024-02-02", "usd_per_unit": "0.1",
                   "source": "a central bank"},
    }[file_name]


def accepts(spec: InputFile, column: str, cell: str | None, **others: str) -> bool:
    row = {**valid_row(spec.name), **others}
    if cell is None:
        del row[column]
    else:
        row[column] = cell
    try:
        spec.model.model_validate(row)
    except ValidationError as exc:
        assert all(e["loc"][0] == column for e in exc.errors()), exc
        return False
    return True


def test_every_file_has_a_valid_example_row_for_every_column() -> None:
    for spec in INPUT_FILES.values():
        assert list(valid_row(spec.name)) == [c.name for c in spec.columns]
        spec.model.model_validate(valid_row(spec.name))


@pytest.mark.parametrize(("spec", "column"), COLUMNS)
def test_a_column_is_required_exactly_when_the_schema_says(spec: InputFile,
                                                          column: Column) -> None:
    if column.blank_allowed:  # required, but the loader decides where a blank is allowed
        assert column.required and accepts(spec, column.name, None)
        return
    assert spec.model.model_fields[column.name].is_required() == column.required
    if column.name == "grant_element":  # optional, but a loan needs one (its meaning says)
        assert "required for loans" in column.meaning
        assert not accepts(spec, column.name, None, instrument="loan")
        assert accepts(spec, column.name, None, instrument="grant")
    else:
        assert accepts(spec, column.name, None) == (not column.required)


@pytest.mark.parametrize(("spec", "column"),
                         [p for p in COLUMNS if p.values[1].range is not None])
def test_a_number_column_accepts_its_range_and_nothing_outside(spec: InputFile,
                                                              column: Column) -> None:
    allowed = column.range
    assert allowed is not None
    inside_low = allowed.low + (1e-9 if allowed.low_open else 0.0)
    assert accepts(spec, column.name, repr(inside_low))
    assert accepts(spec, column.name, repr(allowed.low)) == (not allowed.low_open)
    assert not accepts(spec, column.name, repr(allowed.low - 1e-9))
    if math.isfinite(allowed.high):
        assert accepts(spec, column.name, repr(allowed.high)) == (not allowed.high_open)
        assert not accepts(spec, column.name, repr(allowed.high + 1e-9))
    else:
        assert accepts(spec, column.name, "1e300")
    for junk in ("nan", "inf", "1,000", "$5", "x"):
        assert not accepts(spec, column.name, junk)


@pytest.mark.parametrize(("spec", "column"), [p for p in COLUMNS if p.values[1].choices])
def test_an_enumerated_column_accepts_its_choices_exactly(spec: InputFile,
                                                          column: Column) -> None:
    for choice in column.choices:
        assert accepts(spec, column.name, choice)
        assert not accepts(spec, column.name, choice.swapcase())
    assert not accepts(spec, column.name, "other")


@pytest.mark.parametrize(("spec", "column"), COLUMNS)
def test_units_follow_the_column_names(spec: InputFile, column: Column) -> None:
    # Amounts end in _usd (STYLE): the unit and the name never disagree.
    assert (column.unit == "USD") == column.name.endswith("_usd")
    if column.unit == "share":
        assert column.range is not None and column.range.high == 1


def _write(folder: Path, rows: dict[str, list[dict[str, str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in rows.items():
        header = list(table[0])
        lines = [",".join(header), *(",".join(r[h] for h in header) for r in table)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def good_rows() -> dict[str, list[dict[str, str]]]:
    states = [valid_row("states.csv"), {**valid_row("states.csv"), "iso3": "UGA"}]
    gaps = [valid_row("gaps.csv"), {**valid_row("gaps.csv"), "iso3": "UGA"}]
    sources = [valid_row("sources.csv"), {**valid_row("sources.csv"), "source_id": "b"}]
    return {"states.csv": states, "gaps.csv": gaps, "sources.csv": sources}


def test_the_example_rows_load(tmp_path: Path) -> None:
    _write(tmp_path, good_rows())
    load_inputs(tmp_path)


@pytest.mark.parametrize("spec", list(INPUT_FILES.values()), ids=list(INPUT_FILES))
def test_a_repeated_key_is_refused_as_declared(tmp_path: Path, spec: InputFile) -> None:
    rows = good_rows()
    rows[spec.name][1] = dict(rows[spec.name][0])  # the second row repeats the first's key
    _write(tmp_path, rows)
    with pytest.raises(InputError) as excinfo:
        load_inputs(tmp_path)
    key = ",".join(rows[spec.name][0][k] for k in spec.key)
    assert (f"{tmp_path / spec.name}:3: {spec.key[-1]}: duplicate key {key!r}, first on line 2"
            in [str(p) for p in excinfo.value.problems])


@pytest.mark.parametrize("reference", [r for spec in INPUT_FILES.values()
                                       for r in spec.references],
                         ids=lambda r: f"{r.file}:{r.column}")
def test_a_reference_to_a_missing_key_is_refused_as_declared(tmp_path: Path,
                                                             reference: Reference) -> None:
    rows = good_rows()
    rows[reference.file][0][reference.column] = "ZZZ"
    _write(tmp_path, rows)
    with pytest.raises(InputError) as excinfo:
        load_inputs(tmp_path)
    assert [str(p) for p in excinfo.value.problems] == [
        f"{tmp_path / reference.file}:2: {reference.column}: got 'ZZZ', not in "
        f"{reference.to_file}"]
