"""The documentation against the code: the input files' column tables are the schema's,
every policy key and its default are listed, every command and option is described, the
README's commands are CI's and parse, and every link resolves. A change to one side without
the other fails.
"""

from __future__ import annotations

import math
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel, ValidationError

from gcm_fund.cli.app import app
from gcm_fund.errors import InputError
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import INPUT_FILES, Column, InputFile, Reference

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def docs_table(page: str, after: str) -> list[list[str]]:
    """The rows (without the header) of the first table after the line `after` in
    docs/`page`."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = lines.index(after)
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() and rows:
            break
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows[1:]


def readme_table(file_name: str) -> list[list[str]]:
    """The column table of an input file, in docs/inputs.md after the line `` `file` ``."""
    return docs_table("inputs.md", f"`{file_name}`")


@pytest.mark.parametrize("file_name", list(INPUT_FILES))
def test_readme_columns_match_the_schema(file_name: str) -> None:
    columns = INPUT_FILES[file_name].columns
    expected = [[c.name, c.type, c.unit, "yes" if c.required else "no", c.meaning]
                for c in columns]
    assert readme_table(file_name) == expected


# The page of docs/ that holds each optional file's column table.
OPTIONAL_FILE_PAGES = {"contributions.csv": "contributions.md", "fx.csv": "contributions.md",
                       "programmes.csv": "programmes.md", "history.csv": "cycles.md"}


def test_every_optional_file_has_a_page() -> None:
    assert set(OPTIONAL_FILE_PAGES) == set(OPTIONAL_INPUT_FILES)


@pytest.mark.parametrize("file_name", list(OPTIONAL_INPUT_FILES))
def test_docs_optional_file_columns_match_the_schema(file_name: str) -> None:
    columns = OPTIONAL_INPUT_FILES[file_name].columns
    expected = [[c.name, c.type, c.unit, "yes" if c.required else "no", c.meaning]
                for c in columns]
    assert docs_table(OPTIONAL_FILE_PAGES[file_name], f"`{file_name}`") == expected


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
        # min_usd may not exceed budget_usd: each at the far end of its range, so that
        # either column's range test runs with the other's value out of its way.
        "programmes.csv": {"programme_id": "p1", "name": "P", "states": "KEN;UGA",
                           "targets": "10.7", "budget_usd": "1e300", "min_usd": "1e-300",
                           "quality": "0.5", "shares": "KEN:10.7=0.5;UGA:10.7=0.5"},
        "history.csv": {"cycle": "2", "iso3": "KEN", "target": "10.7",
                        "committed_usd": "1e300", "disbursed_usd": "0", "result": "0.5"},
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


# ---------------------------------------------------------------------------------------
# The policy's keys (docs/policy.md) against the schema's Policy model


def policy_keys(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every key a policy file may set, dotted, with its default; a table of target codes
    is one key `table."T"` (its default, the value of a target the policy leaves out, is
    documented rather than declared)."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= policy_keys(annotation, f"{prefix}{name}.")
        elif field.default_factory is dict:
            keys[f'{prefix}{name}."T"'] = None
        else:
            keys[f"{prefix}{name}"] = field.default
    return keys


def test_the_policy_page_lists_every_key_with_its_default() -> None:
    rows = docs_table("policy.md", "## Every key")
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    expected = policy_keys(Policy)
    assert len(documented) == len(rows)  # each key once
    assert set(documented) == set(expected)
    for key, default in expected.items():
        if default is not None:
            assert tomllib.loads(f"v = {documented[key]}")["v"] == default, key


# ---------------------------------------------------------------------------------------
# Commands (docs/commands.md, the README) against the command line


COMMANDS = typer.main.get_command(app)


def sections(page: Path) -> dict[str, str]:
    """The text under each `## ` heading of a page, by heading ("" for the text before
    the first)."""
    parts = re.split(r"^## (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2], strict=True))}


@pytest.mark.parametrize("name", sorted(COMMANDS.commands))  # type: ignore[attr-defined]
def test_every_command_and_option_is_described(name: str) -> None:
    page = sections(DOCS / "commands.md")
    text = next((body for heading, body in page.items()
                 if name in re.split(r"[ ,]+", heading)), None)
    assert text is not None, f"docs/commands.md: no section for {name}"
    text = page[""] + text  # what the page says of every command (`-m`) holds for this one
    command = COMMANDS.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        for flag in [*param.opts, *param.secondary_opts]:
            if flag.startswith("-") and flag not in ("-h", "--help"):
                assert re.search(rf"{re.escape(flag)}\b", text), f"{name}: {flag}"


def test_the_global_options_are_described() -> None:
    text = sections(DOCS / "commands.md")["Global options"]
    for param in COMMANDS.params:
        for flag in param.opts:
            assert flag in text, flag


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.DOTALL)


def test_the_readmes_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = next(block.strip() for block in code_blocks(README) if "pytest" in block)
    steps = [step.strip() for step in command.split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    assert steps[1] == ".venv/bin/pip install -e '.[test,dev]'"
    # What CI runs after installing, step by step, is the rest of the README's line.
    assert steps[2:] == [line for line in ci if line.startswith(".venv/bin/")
                         and "pip" not in line]


def test_the_readmes_quickstart_installs_and_runs_the_example() -> None:
    command = next(block.strip() for block in code_blocks(README) if "allocate" in block)
    assert command == ("python3 -m venv .venv && .venv/bin/pip install -e . && "
                       ".venv/bin/gcm-fund allocate")


def test_the_readmes_tour_parses() -> None:
    """Every command of the README's tour names a command and options that exist."""
    tour = next(block for block in code_blocks(README) if "gcm-fund certify" in block)
    lines = [line.split("#")[0].strip() for line in tour.splitlines() if line.strip()]
    assert len(lines) >= 4
    for line in lines:
        words = shlex.split(line)
        assert words[0] == "gcm-fund", line
        command = COMMANDS.commands[words[1]]  # type: ignore[attr-defined]
        command.make_context(words[1], words[2:])  # raises on an unknown option


# ---------------------------------------------------------------------------------------
# The README is short, and every link of it and of docs/ resolves


def test_the_readme_reads_in_three_minutes() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to
    hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_link_resolves(page: Path) -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    for link in links:
        if re.match(r"^[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link}"
        if anchor:
            assert anchor in anchors(target), f"{page.name}: {link}"


def test_the_readme_and_the_index_link_every_docs_page() -> None:
    pages = {p.name for p in DOCS.glob("*.md")}
    readme = README.read_text(encoding="utf-8")
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for name in pages - {"index.md"}:
        assert f"](docs/{name}" in readme, name
        assert f"]({name}" in index, name

