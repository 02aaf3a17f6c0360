"""An Excel workbook of a run folder: a sheet per table, plus the policy and the manifest.

Built from the folder's written files, so the workbook holds exactly what the CSV files
hold: numbers as numbers (USD to the cent, shares as percentages), text as text. Every
text cell is stored as a string, never as a formula, so a name such as `=HYPERLINK(...)`
in an input stays inert when the workbook is opened.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from . import writing
from .errors import UsageError

# Known tables first, in the order a reader wants them; any other CSV of the folder after.
TABLE_ORDER = ("coverage", "allocations", "sources_summary", "states_summary", "constraints",
               "stage1_constraints", "levels", "level_duals", "stage_duals")
USD_FORMAT = "#,##0.00"
PERCENT_FORMAT = "0.00%"
REAL_FORMAT = "0.000000000000"
TEXT_COLUMNS = {"source_id", "iso3", "target", "name", "family", "stopped_by", "status",
                "eligible", "method", "stage"}
MAX_WIDTH = 60


def _number(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _format(column: str) -> str | None:
    if column.endswith("_usd") or column in {"lhs", "rhs", "slack"}:
        return USD_FORMAT
    if column == "coverage" or column.endswith("_share"):
        return PERCENT_FORMAT
    return None


def _tables(folder: Path) -> list[Path]:
    found = {p.stem: p for p in folder.glob("*.csv")}
    ordered = [found.pop(name) for name in TABLE_ORDER if name in found]
    return ordered + [found[name] for name in sorted(found)]


def _flatten(document: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(document, dict):
        rows: list[tuple[str, Any]] = []
        for key, value in document.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(document, list):
        return [(prefix, json.dumps(document))]
    return [(prefix, document)]


def write_workbook(folder: Path | str, out: Path | str) -> Path:
    """Write the workbook of the run folder `folder` to `out` (atomically)."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    folder, out = Path(folder), Path(out)
    if not (folder / "manifest.json").is_file():
        raise UsageError(f"{folder}: not a run folder (no manifest.json)")
    book = Workbook()
    book.remove(book.active)
    for path in _tables(folder):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            continue
        sheet = book.create_sheet(path.stem[:31])
        header, body = rows[0], rows[1:]
        widths = [len(name) for name in header]
        sheet.append(header)
        formats = [_format(name) for name in header]
        for record in body:
            values = [cell if name in TEXT_COLUMNS else _number(cell)
                      for name, cell in zip(header, record, strict=False)]
            sheet.append([None] * len(values))
            row = sheet.max_row
            for j, value in enumerate(values):
                cell = sheet.cell(row=row, column=j + 1)
                _set(cell, value)
                if formats[j] and isinstance(value, float):
                    cell.number_format = formats[j]
                widths[j] = max(widths[j], len(record[j]) + (3 if formats[j] else 0))
        _finish(sheet, widths, get_column_letter)
    policy = book.create_sheet("policy")
    policy.append(["policy.toml"])
    text = (folder / "policy.toml").read_text(encoding="utf-8") \
        if (folder / "policy.toml").is_file() else ""
    width = len("policy.toml")
    for line in text.splitlines():
        policy.append([None])
        _set(policy.cell(row=policy.max_row, column=1), line)
        width = max(width, len(line))
    _finish(policy, [width], get_column_letter)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    sheet = book.create_sheet("manifest")
    sheet.append(["key", "value"])
    widths = [3, 5]
    for key, value in _flatten(manifest):
        sheet.append([None, None])
        _set(sheet.cell(row=sheet.max_row, column=1), key)
        _set(sheet.cell(row=sheet.max_row, column=2),
             value if isinstance(value, int | float) and not isinstance(value, bool)
             else ("" if value is None else str(value).lower() if isinstance(value, bool)
                   else str(value)))
        widths = [max(widths[0], len(key)), max(widths[1], len(str(value)))]
    _finish(sheet, widths, get_column_letter)
    buffer = _save(book)
    writing.write_atomic(out, buffer)
    return out


def _set(cell: Any, value: Any) -> None:
    """A cell's value; text as a string cell, so that '=...' is never a formula."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # openpyxl took a leading '=' as a formula: undo that


def _finish(sheet: Any, widths: list[int], letter: Any) -> None:
    sheet.freeze_panes = "A2"
    for j, width in enumerate(widths):
        sheet.column_dimensions[letter(j + 1)].width = min(MAX_WIDTH, width + 2)
    from openpyxl.styles import Font

    for cell in sheet[1]:
        cell.font = Font(bold=True)


def _save(book: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
