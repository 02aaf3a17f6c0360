"""An Excel workbook of a run folder: a sheet per table, plus the policy and the manifest.

Built from the folder's written files, so the workbook holds exactly what the CSV files
hold: numbers as numbers (USD to the cent, shares as percentages), text as text. Every
text cell is stored as a string, never as a formula, so a name such as `=HYPERLINK(...)`
in an input stays inert when the workbook is opened.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from gcm_fund import writing
from gcm_fund.errors import UsageError
from gcm_fund.outputs.schema import BOOLEAN, MANIFEST, OUTPUT_TABLES, TEXT, columns_of_kind

# Known tables first, in the order a reader wants them; any other CSV of the folder after.
TABLE_ORDER = tuple(table.stem for table in OUTPUT_TABLES.values())
USD_FORMAT = "#,##0.00"
PERCENT_FORMAT = "0.00%"
REAL_FORMAT = "0.000000000000"
TEXT_COLUMNS = columns_of_kind(TEXT, BOOLEAN) | {"status", "method"}
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

    folder, out = Path(folder), Path(out)
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"{folder}: not a run folder (no manifest.json)")
    # Write-only: each row goes to the file as it is appended, in time linear in the cells
    # (a normal sheet's `max_row` scans every cell, once per row appended).
    book = Workbook(write_only=True)
    rows_xml: dict[int, list[str]] = {}  # a table's rows as XML, by sheet number
    for path in _tables(folder):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        formats = [_format(name) for name in header]
        as_text = [name in TEXT_COLUMNS for name in header]
        widths = [len(name) for name in header]
        for record in body:
            for j in range(min(len(header), len(record))):
                widths[j] = max(widths[j], len(record[j]) + (3 if formats[j] else 0))
        sheet = _sheet(book, path.stem[:31], header, widths)
        fast = _rows_xml(sheet, body, formats, as_text)
        if fast is not None:
            rows_xml[len(book.worksheets)] = fast
            continue
        for record in body:
            sheet.append([_cell(sheet, cell if as_text[j] else _number(cell), formats[j])
                          for j, cell in enumerate(record[:len(header)])])
    text = (folder / "policy.toml").read_text(encoding="utf-8") \
        if (folder / "policy.toml").is_file() else ""
    lines = text.splitlines()
    sheet = _sheet(book, "policy", ["policy.toml"], [max([len("policy.toml"),
                                                           *map(len, lines)])])
    for line in lines:
        sheet.append([_cell(sheet, line)])
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    entries = _flatten(manifest)
    widths = [3, 5]
    for key, value in entries:
        widths = [max(widths[0], len(key)), max(widths[1], len(str(value)))]
    sheet = _sheet(book, "manifest", ["key", "value"], widths)
    for key, value in entries:
        shown = (value if isinstance(value, int | float) and not isinstance(value, bool)
                 else "" if value is None else str(value).lower() if isinstance(value, bool)
                 else str(value))
        sheet.append([_cell(sheet, key), _cell(sheet, shown)])
    buffer = _with_rows(_save(book), rows_xml)
    writing.write_atomic(out, buffer)
    return out


class _Unusual(Exception):
    """A cell the XML of `_rows_xml` would not write as openpyxl does."""


def _rows_xml(sheet: Any, body: list[list[str]], formats: list[str | None],
              as_text: list[bool]) -> list[str] | None:
    """The rows of a table (row 2 on) as the XML openpyxl writes for the cells `_cell`
    gives, or None when a cell is one it handles otherwise (text over 32,767 characters or
    with a control character, a number that is not finite): that table is then appended
    through openpyxl. openpyxl writes each cell through a general XML serialiser, about
    ten times slower than these string joins on a table of millions of cells."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    width = len(as_text)
    letters = [get_column_letter(j + 1) for j in range(width)]
    styles = []
    for number_format in formats:
        if number_format is None:
            styles.append("")
            continue
        probe = WriteOnlyCell(sheet, value=0.0)
        probe.number_format = number_format
        styles.append(f' s="{probe.style_id}"')
    lines: list[str] = []
    try:
        for r, record in enumerate(body, start=2):
            cells = []
            for j, text in enumerate(record[:width]):
                if text == "":
                    if as_text[j]:
                        cells.append(f'<c r="{letters[j]}{r}" t="inlineStr" />')
                    continue
                value = text if as_text[j] else _number(text)
                if isinstance(value, float):
                    if not math.isfinite(value):
                        raise _Unusual
                    # repr: the shortest text that reads back as the same double (duals
                    # and levels are written with all 17 digits some need).
                    cells.append(f'<c r="{letters[j]}{r}"{styles[j]} t="n"><v>'
                                 f"{value!r}</v></c>")
                else:
                    cells.append(f'<c r="{letters[j]}{r}" t="inlineStr"><is>{_text(text)}'
                                 "</is></c>")
            lines.append(f'<row r="{r}">{"".join(cells)}</row>')
    except _Unusual:
        return None
    if any(ILLEGAL_CHARACTERS_RE.search(line) for line in lines):
        return None
    return lines


def _text(text: str) -> str:
    """`<t>text</t>` as openpyxl writes it: XML-escaped, spaces at an end kept."""
    if len(text) > 32767:
        raise _Unusual  # openpyxl cuts it
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    stripped = text.strip()
    if stripped and stripped != text:
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def _with_rows(package: bytes, rows_xml: dict[int, list[str]]) -> bytes:
    """The workbook `package` with each sheet's rows of `rows_xml` added after its header."""
    import io
    import zipfile

    if not rows_xml:
        return package
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as shell, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for info in shell.infolist():
            content = shell.read(info)
            number = _sheet_number(info.filename)
            if number not in rows_xml:
                book.writestr(info, content)
                continue
            head, end, tail = content.decode("utf-8").partition("</sheetData>")
            assert end, f"{info.filename}: no sheetData"
            with book.open(info, "w") as stream:
                stream.write(head.encode("utf-8"))
                lines = rows_xml[number]
                for start in range(0, len(lines), 10_000):
                    stream.write("".join(lines[start:start + 10_000]).encode("utf-8"))
                stream.write((end + tail).encode("utf-8"))
    return out.getvalue()


def _sheet_number(name: str) -> int | None:
    prefix, suffix = "xl/worksheets/sheet", ".xml"
    if name.startswith(prefix) and name.endswith(suffix) and name[len(prefix):-4].isdigit():
        return int(name[len(prefix):-len(suffix)])
    return None


def _sheet(book: Any, title: str, header: list[str], widths: list[int]) -> Any:
    """A write-only sheet with its column widths, its header row bold and frozen."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(title)
    sheet.freeze_panes = "A2"
    for j, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(j + 1)].width = min(MAX_WIDTH, width + 2)
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    return sheet


def _cell(sheet: Any, value: Any, number_format: str | None = None) -> Any:
    """What to append for one value: the value itself where openpyxl stores it as it is,
    else a cell: text that openpyxl would take for a formula (`=...`) or an error code
    (`#N/A`) stored as a string, a number in a format column with its format."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES

    if isinstance(value, str):
        if not (value.startswith("=") or value in ERROR_CODES):
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # openpyxl took a leading '=' as a formula: undo that
        return cell
    if number_format is not None and isinstance(value, float):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = number_format
        return cell
    return value


def _save(book: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
