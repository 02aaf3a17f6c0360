"""The README's column tables are the schema's: a change to one without the other fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gcm_fund.schema import INPUT_FILES

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table(file_name: str) -> list[list[str]]:
    """The rows of the table that follows the line `` `file_name` `` in the README."""
    lines = README.read_text(encoding="utf-8").splitlines()
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
    _, columns = INPUT_FILES[file_name]
    expected = [[c.name, c.type, c.unit, "yes" if c.required else "no", c.meaning]
                for c in columns]
    assert readme_table(file_name) == expected


@pytest.mark.parametrize("file_name", list(INPUT_FILES))
def test_schema_columns_are_the_row_model_fields(file_name: str) -> None:
    model, columns = INPUT_FILES[file_name]
    assert [c.name for c in columns] == list(model.model_fields)
