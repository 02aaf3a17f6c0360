"""Reading a file the user gave: its bytes and name, and a CSV file's rows as cells.

One CSV file at a time: its shape (encoding, header, field counts, unreadable cells) and
each row through its row model. What the files mean together (keys, references) is
`load`'s; the policy file is `policy_file`'s.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gcm_fund.errors import Problem
from gcm_fund.inputs.schema import SHOWN_LENGTH, Column, did_you_mean, shown
from gcm_fund.writing import file_kind


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def readable(text: str) -> str:
    """A file name as text that any UTF-8 writer accepts: a byte of the name that is not
    UTF-8 (kept by Python as a lone surrogate) becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def file_label(path: Path) -> str:
    """A file as messages name it."""
    return str(path)


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_OTHER_DELIMITERS = (";", "\t", "|")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _column_label(name: str) -> str:
    """A header cell as it may appear in a message: one printable line, not too long
    (quoted and escaped when it holds anything unprintable)."""
    if not name.isprintable():
        return shown(name)
    if len(name) > SHOWN_LENGTH:
        return name[: SHOWN_LENGTH - 3] + "..."
    return name


def _cell_problem(cell: str, what: str = "the cell") -> str | None:
    """What makes a cell unreadable whatever its column: bytes that are not UTF-8, a line
    break (an unclosed quote swallows the rows after it) or another control character."""
    bad = _NOT_UTF8.search(cell)
    if bad:
        byte = ord(bad.group()) - 0xDC00
        return (f"byte 0x{byte:02x} is not UTF-8 (is the file Latin-1 or Windows-1252?): "
                "save the file as UTF-8 text")
    if _is_multiline(cell):
        return f"{what} runs over several lines: is a '\"' not closed?"
    if _CONTROL.search(cell):
        shown_value = "" if what == "the column name" else f"got {shown(cell)}: "
        return f"{shown_value}{what} holds a control character"
    return None


def _is_multiline(cell: str) -> bool:
    return "\n" in cell or "\r" in cell


def _oversized(label: str, text: str, labels: list[str]) -> Problem:
    """The problem of a cell longer than the csv module's field limit, the one thing its
    reader refuses on text: found by reading again with the limit lifted for a moment."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        start = 1
        for cells in reader:
            for index, cell in enumerate(cells):
                if len(cell) > limit:
                    name = labels[index] if index < len(labels) else f"field {index + 1}"
                    return Problem(label, start, name, f"the cell holds more than {limit} "
                                   "characters: is a '\"' not closed?")
            start = reader.line_num + 1
    finally:
        csv.field_size_limit(limit)
    return Problem(label, None, None, "cannot read the file as CSV")


def read_csv_rows(
    path: Path, columns: tuple[Column, ...], problems: list[Problem], warnings: list[Problem]
) -> tuple[list[tuple[int, dict[str, str]]], bytes | None, bool]:
    """The rows of one CSV file as (line, {column: stripped cell}), checking its shape;
    the raw bytes; and whether every row could be read (no row was dropped).

    Problems with the file's shape (encoding, header, field counts) go to `problems`;
    unknown columns go to `warnings`. Blank optional cells are left out of the dicts so
    that the row models apply their defaults. Every problem names the line and the
    column (the header cell) it was found in; `line` is where the row starts.
    """
    label = file_label(path)
    if not path.is_file():
        kind = file_kind(path)
        why = "file not found" if kind is None else f"expected a file, found {kind}"
        problems.append(Problem(label, None, None, why))
        return [], None, False
    raw = path.read_bytes()
    if raw.startswith(_UTF16_BOMS):
        problems.append(Problem(label, None, None, "the file is UTF-16 text: save it as UTF-8"))
        return [], raw, False
    # Undecodable bytes are kept (as lone surrogates) so that each is reported in its
    # own line and column, not as one problem about the whole file.
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    if not text.strip():
        problems.append(Problem(label, None, None, "the file is empty: expected a header row"))
        return [], raw, False
    before = len(problems)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error:
        problems.append(_oversized(label, text, []))
        return [], raw, False
    labels = [_column_label(name) for name in header]
    known = {c.name for c in columns}
    if len(header) == 1 and header[0] not in known:
        used = [d for d in _OTHER_DELIMITERS if d in header[0]]
        if used:
            problems.append(
                Problem(label, 1, labels[0],
                        f"the columns are separated by {used[0]!r}, expected ',': save the "
                        "file as comma-separated values")
            )
            return [], raw, False
    for name, shown_name in zip(header, labels, strict=True):
        unreadable = _cell_problem(name, "the column name")
        if unreadable:
            problems.append(Problem(label, 1, shown_name, unreadable))
    if len(problems) > before:
        return [], raw, False
    seen: set[str] = set()
    for name, shown_name in zip(header, labels, strict=True):
        if name and name in seen:
            problems.append(Problem(label, 1, shown_name, "column appears more than once"))
        seen.add(name)
    for column in columns:
        if column.required and column.name not in seen:
            hint = did_you_mean(column.name, [h for h in header if h not in known])
            problems.append(Problem(label, 1, column.name, f"required column is missing{hint}"))
    unknown = [shown_name for name, shown_name in zip(header, labels, strict=True)
               if name not in known and name]
    if unknown:
        warnings.append(
            Problem(label, 1, ", ".join(unknown),
                    f"unknown column{'s' if len(unknown) > 1 else ''}, ignored")
        )
    if len(problems) > before:
        return [], raw, False

    rows: list[tuple[int, dict[str, str]]] = []
    complete = True
    unpaired_quote = text.count('"') % 2 == 1
    required = {c.name for c in columns if c.required and not c.blank_allowed}
    line = reader.line_num + 1
    try:
        for cells in reader:
            line, start = reader.line_num + 1, line
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                extra = (f"field {len(header) + 1}" if len(cells) == len(header) + 1
                         else f"fields {len(header) + 1}-{len(cells)}")
                problems.append(
                    Problem(label, start, extra,
                            f"the row has {len(cells)} fields, the header {len(header)} "
                            "(quote a cell that holds a comma)")
                )
                complete = False
                continue
            if len(cells) == 1 < len(header):
                used = [d for d in _OTHER_DELIMITERS if d in cells[0]]
                if used:
                    problems.append(
                        Problem(label, start, labels[0],
                                f"the row is separated by {used[0]!r}, expected ','")
                    )
                    complete = False
                    continue
            row: dict[str, str] = {}
            # An unclosed quote reads the lines after it into one cell: the row's other
            # cells mean nothing, so this is the row's one problem. No column of ours
            # holds a line break; an unknown column may (a note), unless a '"' is unpaired.
            swallowed = [(shown_name, cell) for name, shown_name, cell
                         in zip(header, labels, cells, strict=False)
                         if _is_multiline(cell) and (name in known or unpaired_quote)]
            if swallowed:
                name, cell = swallowed[0]
                problems.append(Problem(label, start, name, _cell_problem(cell) or ""))
                complete = False
                continue
            for name, shown_name, cell in zip(header, labels, cells, strict=False):
                if name not in known:
                    continue  # ignored, as the warning says, whatever it holds
                cell = cell.strip()
                unreadable = _cell_problem(cell)
                if unreadable:
                    problems.append(Problem(label, start, shown_name, unreadable))
                elif cell:
                    row[name] = cell
                elif name in required:
                    problems.append(Problem(label, start, name, "required, got a blank cell"))
            rows.append((start, row))
    except csv.Error:
        problems.append(_oversized(label, text, labels))
        complete = False
    if not rows and len(problems) == before:
        problems.append(Problem(label, None, None, "the file has a header and no rows"))
    return rows, raw, complete


def validate_rows(
    label: str,
    model: type[BaseModel],
    rows: list[tuple[int, dict[str, str]]],
    problems: list[Problem],
) -> list[tuple[int, Any]]:
    """Each row through its pydantic model; every failing cell becomes one problem."""
    checked: list[tuple[int, Any]] = []
    reported: dict[int, set[str | None]] = {}
    for problem in problems:
        if problem.file == label and problem.line is not None:
            reported.setdefault(problem.line, set()).add(problem.column)
    for line, row in rows:
        blank_required = reported.get(line, set())
        try:
            checked.append((line, model.model_validate(row)))
        except ValidationError as exc:
            for error in exc.errors():
                column = str(error["loc"][0]) if error["loc"] else None
                if error["type"] == "missing" and column in blank_required:
                    continue  # already reported as a blank required cell
                problems.append(Problem(label, line, column, _pydantic_message(error)))
    return checked


def _pydantic_message(error: Any) -> str:
    if error["type"] == "gcm_fund":
        return str(error["ctx"]["message"])
    if error["type"] == "missing":
        return "required, got a blank cell"
    return str(error["msg"])
