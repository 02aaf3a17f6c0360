"""Reading an input folder and a policy file into checked, frozen tables.

Every problem in every file is collected in one pass and raised as one `InputError`, so a
user fixes a spreadsheet once, not once per run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from .errors import InputError, Problem
from .schema import (
    ALLOCATION_METHODS,
    EQUITY_GROUPS,
    INCOME_GROUPS,
    INPUT_FILES,
    ISO3_PATTERN,
    META_FILE,
    SHOWN_LENGTH,
    Column,
    InputMeta,
    Policy,
    did_you_mean,
    normalise_target,
    parse_iso3,
    parse_source_id,
    shown,
    split_list,
)
from .writing import file_kind


@dataclass(frozen=True)
class ProblemData:
    """The checked inputs: one table per file, sorted by key, plus what was warned about.

    Rows are sorted by their keys (plain string order) so that the order of rows in a
    file never changes the model, and so never changes which optimum a solver returns.
    """

    states: pd.DataFrame
    gaps: pd.DataFrame
    sources: pd.DataFrame
    folder: Path
    file_sha256: dict[str, str]
    warnings: list[Problem] = field(default_factory=list)
    meta: InputMeta = field(default_factory=InputMeta)
    meta_bytes: bytes | None = None  # meta.toml as read, None when the folder has none
    # The bytes each file had when read: a run folder copies these, not the file as it
    # is when the run ends, so the copies always match the hashes and the tables.
    file_bytes: dict[str, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class PolicyFile:
    """A checked policy with the file it came from."""

    policy: Policy
    path: Path
    sha256: str
    text: str
    warnings: list[Problem] = field(default_factory=list)
    raw: bytes = field(default=b"", repr=False)  # the bytes read, as for ProblemData


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def readable(text: str) -> str:
    """A file name as text that any UTF-8 writer accepts: a byte of the name that is not
    UTF-8 (kept by Python as a lone surrogate) becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _label(path: Path) -> str:
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
    label = _label(path)
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
    required = {c.name for c in columns if c.required}
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


def _report_duplicates(
    label: str, keyed: list[tuple[int, tuple[str, ...]]], column: str, problems: list[Problem]
) -> None:
    first: dict[tuple[str, ...], int] = {}
    for line, key in keyed:
        if key in first:
            problems.append(
                Problem(label, line, column,
                        f"duplicate key {shown(','.join(key))}, first on line {first[key]}")
            )
        else:
            first[key] = line


def _valid_key(rows: list[tuple[int, dict[str, str]]], *columns: tuple[str, Any]
               ) -> list[tuple[int, tuple[str, ...]]]:
    """(line, key) of every row whose key cells parse, whatever its other cells hold:
    a duplicate is a problem of its own, reported with the row's other problems."""
    keyed = []
    for line, row in rows:
        try:
            key = tuple(parse(row[name]) for name, parse in columns)
        except (KeyError, ValueError):
            continue
        keyed.append((line, key))
    return keyed


def _parsed(parse: Any) -> Any:
    def check(text: str) -> str:
        try:
            return str(parse(text))
        except PydanticCustomError as exc:
            raise ValueError(str(exc)) from None

    return check


# How a key cell is read for the duplicate check (others: stripped): the parsed form, so
# that `10.C` and `10.c` are one key; a cell that does not parse is a problem of its own.
_KEY_CELL: dict[tuple[str, str], Any] = {
    ("states.csv", "iso3"): _parsed(parse_iso3),
    ("gaps.csv", "target"): _parsed(normalise_target),
    ("sources.csv", "source_id"): _parsed(parse_source_id),
}


def load_inputs(folder: Path | str) -> ProblemData:
    """Read and check states.csv, gaps.csv and sources.csv of `folder`.

    Raises `InputError` with every problem of every file; returns the tables otherwise.
    References between files and duplicate keys are checked on the cells as read, so a
    row with a bad amount still has its iso3 and key checked: every problem at once.
    """
    folder = Path(folder)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked: dict[str, list[tuple[int, Any]]] = {}
    cells: dict[str, list[tuple[int, dict[str, str]]]] = {}
    complete: dict[str, bool] = {}
    hashes: dict[str, str] = {}
    contents: dict[str, bytes] = {}
    if not folder.is_dir():
        kind = file_kind(folder)
        why = ("input folder not found" if kind is None else
               f"expected a folder with states.csv, gaps.csv and sources.csv, found {kind}")
        raise InputError([Problem(str(folder), None, None, why)])
    for name, (model, columns) in INPUT_FILES.items():
        path = folder / name
        rows, raw, complete[name] = read_csv_rows(path, columns, problems, warnings)
        if raw is not None:
            hashes[name] = sha256_bytes(raw)
            contents[name] = raw
        cells[name] = rows
        checked[name] = validate_rows(_label(path), model, rows, problems)

    meta, meta_bytes = load_meta(folder / META_FILE, problems)
    if meta_bytes is not None:
        hashes[META_FILE] = sha256_bytes(meta_bytes)

    states = checked["states.csv"]
    gaps = checked["gaps.csv"]
    sources = checked["sources.csv"]
    states_label = _label(folder / "states.csv")
    sources_label = _label(folder / "sources.csv")

    # Keys and references as schema.INPUT_FILES declares them.
    for spec in INPUT_FILES.values():
        parsers = tuple((name, _KEY_CELL.get((spec.name, name), str.strip)) for name in spec.key)
        _report_duplicates(_label(folder / spec.name), _valid_key(cells[spec.name], *parsers),
                           spec.key[-1], problems)

    # A State whose row has another problem still exists for the other files (its code
    # upper-cased when the case was the problem): one mistake, one message. When a row of
    # states.csv could not be read at all, references to States cannot be checked.
    known_codes = {row["iso3"].upper() for _, row in cells["states.csv"] if "iso3" in row}
    states_read = bool(known_codes) and complete["states.csv"]
    iso3s = sorted(c for c in known_codes if ISO3_PATTERN.fullmatch(c))
    names = {row["name"].lower(): row["iso3"].upper() for _, row in cells["states.csv"]
             if "iso3" in row and "name" in row}

    def unknown_iso3(value: str) -> str:
        hint = did_you_mean(value, iso3s)
        if not hint and value.lower() in names:
            hint = f" (did you mean {names[value.lower()]}?)"
        return f"got {shown(value)}, not in states.csv{hint}"

    for spec in INPUT_FILES.values():
        for reference in spec.references:
            # Every reference of SPEC section 2 names a State (the declarations say so;
            # test_readme checks each one is refused when broken).
            assert (reference.to_file, reference.to_column) == ("states.csv", "iso3")
            if not states_read:
                continue
            listed = spec.column(reference.column).kind.startswith(";-list")
            for line, row in cells[spec.name]:
                if reference.column not in row:
                    continue
                cell = row[reference.column]
                for code in (split_list(cell) if listed else (cell,)):
                    if code not in known_codes:
                        problems.append(Problem(_label(folder / spec.name), line,
                                                reference.column, unknown_iso3(code)))
    for line, row in cells["sources.csv"]:
        for group in split_list(row.get("income_groups", "")):
            if group not in INCOME_GROUPS:
                problems.append(
                    Problem(sources_label, line, "income_groups",
                            f"got {shown(group)}, expected one of {', '.join(INCOME_GROUPS)}"
                            f"{did_you_mean(group, INCOME_GROUPS)}")
                )

    if problems:
        raise InputError(problems)

    regions = {r.region for _, r in states}
    targets = {g.target for _, g in gaps}
    warnings.extend(_near_regions(states_label, states, sources_label, sources))
    for line, source in sources:
        if source.source_id.startswith("-"):
            # SPEC allows the id; a spreadsheet opening a CSV reads such a cell as a formula.
            warnings.append(
                Problem(sources_label, line, "source_id",
                        f"{shown(source.source_id)} starts with '-', which a spreadsheet "
                        "reads as a formula: an id starting with a letter or digit is safer")
            )
    for line, source in sources:
        for region in source.regions:
            if region not in regions:
                warnings.append(
                    Problem(sources_label, line, "regions",
                            f"{shown(region)} matches no State's region"
                            f"{did_you_mean(region, sorted(regions))}")
                )
        for target in source.targets:
            if target not in targets:
                warnings.append(
                    Problem(sources_label, line, "targets", f"{shown(target)} matches no gap")
                )

    return ProblemData(
        states=_frame([r for _, r in states], ["iso3"]),
        gaps=_frame([g for _, g in gaps], ["iso3", "target"]),
        sources=_frame([s for _, s in sources], ["source_id"]),
        folder=folder,
        file_sha256=hashes,
        file_bytes=contents,
        warnings=warnings,
        meta=meta,
        meta_bytes=meta_bytes,
    )


def load_meta(path: Path, problems: list[Problem]) -> tuple[InputMeta, bytes | None]:
    """The optional meta.toml of an input folder and its bytes; defaults when absent.

    Its problems (not UTF-8, not TOML, an unknown key, a value of the wrong type) join
    `problems`, each with its line and key.
    """
    if not path.is_file():
        return InputMeta(), None
    label = _label(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(label, raw[: exc.start].count(b"\n") + 1, None,
                                f"byte 0x{raw[exc.start]:02x} is not UTF-8: save the file "
                                "as UTF-8 text"))
        return InputMeta(), raw
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        why = _TOML_LINE.sub("", message).strip()
        problems.append(Problem(label, int(found.group(1)) if found else None, None,
                                f"not valid TOML: {why}"))
        return InputMeta(), raw
    try:
        return InputMeta.model_validate(document), raw
    except ValidationError as exc:
        for error in exc.errors():
            key_path = tuple(str(p) for p in error["loc"])
            known = ", ".join(InputMeta.model_fields)
            why = (f"unknown key, expected one of {known}" if error["type"] == "extra_forbidden"
                   else _policy_message(error, key_path))
            problems.append(Problem(label, find_toml_line(text, key_path),
                                    render_key(key_path) or None, why))
        return InputMeta(), raw


def region_key(text: str) -> str:
    """A region as a reader skims it: compatibility-normalised, case-folded, without
    invisible format characters (a zero-width space) or spaces of any kind (a no-break
    space typed inside a word)."""
    text = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return "".join(visible.casefold().split())


def _near_regions(states_label: str, states: list[tuple[int, Any]], sources_label: str,
                  sources: list[tuple[int, Any]]) -> list[Problem]:
    """A warning for each State whose region differs from a source's region earmark only
    in case or invisible characters: regions match exactly (SPEC 2), so that earmark
    silently leaves the State out."""
    earmarked: dict[str, tuple[str, int]] = {}
    for line, source in sources:
        for region in source.regions:
            earmarked.setdefault(region_key(region), (region, line))
    found = []
    for line, state in states:
        near = earmarked.get(region_key(state.region))
        if near is not None and near[0] != state.region:
            found.append(
                Problem(states_label, line, "region",
                        f"{shown(state.region)} is not {shown(near[0])}, the region earmarked "
                        f"by {sources_label} line {near[1]}, so that earmark leaves "
                        f"{state.iso3} out (did you mean {shown(near[0])}?)")
            )
    return found


def _frame(rows: list[BaseModel], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([row.model_dump() for row in rows])
    return frame.sort_values(keys, kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------
# The policy


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_PART = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY_LINE = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key_parts(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p.strip("\"'") for p in parts)


def _dotted(path: tuple[str, ...]) -> tuple[str, ...]:
    """A key path with every dot split, lower-cased: `10.7` unquoted and `"10.C"` quoted
    compare equal to the checked key ("10.7", "10.c") for finding a line."""
    return tuple(piece.lower() for part in path for piece in part.split("."))


class TomlLines:
    """Where each key path of a TOML text is set: read once, then looked up per key in
    time independent of the file's length (a policy can name thousands of keys, each
    with a message to place)."""

    def __init__(self, text: str):
        self.first_key: dict[tuple[str, ...], int] = {}  # exact path of a key line
        self.first_under: dict[tuple[str, ...], int] = {}  # any prefix of a key line's path
        self.first_header: dict[tuple[str, ...], int] = {}
        self.last_header: dict[tuple[str, ...], int] = {}
        self.first_header_under: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _TABLE_HEADER.match(line)
            if header:
                table = _dotted(_toml_key_parts(header.group(1)))
                self.first_header.setdefault(table, number)
                self.last_header[table] = number
                for end in range(len(table) + 1):
                    self.first_header_under.setdefault(table[:end], number)
                continue
            key = _KEY_LINE.match(line)
            if key:
                full = table + _dotted(_toml_key_parts(key.group(1)))
                self.first_key.setdefault(full, number)
                for end in range(len(full) + 1):
                    self.first_under.setdefault(full[:end], number)

    def line(self, path: tuple[str, ...]) -> int | None:
        """The line that sets the key path, else the header of its table, else the first
        line of a table inside it (best effort, for messages only)."""
        wanted = _dotted(path)
        # The first line that sets a key at or under `wanted`, sets a key above it (a
        # table given as a value), or opens exactly its table.
        found = [self.first_under.get(wanted), self.first_header.get(wanted),
                 *(self.first_key.get(wanted[:end]) for end in range(1, len(wanted)))]
        hits = [n for n in found if n is not None]
        if hits:
            return min(hits)
        above = [self.last_header[wanted[:end]] for end in range(1, len(wanted))
                 if wanted[:end] in self.last_header]
        if above:
            return max(above)
        return self.first_header_under.get(wanted)


def find_toml_line(text: str, path: tuple[str, ...]) -> int | None:
    """The line of a key path in a TOML text, best effort (for messages only): the line
    that sets the key, else the header of its table, else the first line of a table
    inside it. For many look-ups in one text, build one `TomlLines`."""
    return TomlLines(text).line(path)


def key_at_line(text: str, number: int) -> str | None:
    """The key a TOML line sets, or the table it opens, as `render_key` writes it; None
    when the line holds neither in a form this reading recognises (for messages only)."""
    table: tuple[str, ...] = ()
    for current, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        key = None if header else _KEY_LINE.match(line)
        if header:
            table = _toml_key_parts(header.group(1))
        if current == number:
            if header:
                return render_key(table)
            return render_key(table + _toml_key_parts(key.group(1))) if key else None
    return None


def render_key(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: `weights.target."10.7"` (escaped, one line)."""
    def quoted(part: str) -> str:
        if _BARE_KEY.fullmatch(part):
            return part
        text = json.dumps(part, ensure_ascii=False)
        return text if text.isprintable() else json.dumps(part)

    return ".".join(quoted(p) for p in path)


def load_policy(path: Path | str, targets: set[str] | None = None) -> PolicyFile:
    """Read and check a policy TOML file; unknown keys and bad values raise `InputError`.

    `targets`, when given, are the gaps' target codes: policy keys naming another target
    are warnings.
    """
    path = Path(path)
    label = _label(path)
    if not path.is_file():
        kind = file_kind(path)
        why = "policy file not found" if kind is None else f"expected a policy file, found {kind}"
        raise InputError([Problem(label, None, None, why)])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        decoded = raw.decode("utf-8-sig", errors="replace")
        raise InputError([Problem(label, line, key_at_line(decoded, line),
                                  f"byte 0x{raw[exc.start]:02x} is not UTF-8: save the file "
                                  "as UTF-8 text")]) from None
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise InputError([Problem(label, None, None, "not valid TOML for a policy: arrays or "
                                  "inline tables nested too deeply to read")]) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        why = _TOML_LINE.sub("", message).strip()
        where = None
        if found:
            why += f" (column {found.group(2)})"
            where = int(found.group(1))
        # A syntax error names the key of its line when the line still shows one.
        raise InputError([Problem(label, where, key_at_line(text, where) if where else None,
                                  f"not valid TOML: {why}")]) from None
    lines = TomlLines(text)
    deep = _too_deep(document)
    if deep is not None:
        raise InputError([Problem(label, lines.line(deep), render_key(deep),
                                  f"tables nested more than {MAX_POLICY_DEPTH} deep: a policy's "
                                  "keys are at most 3 deep (weights.target.\"10.7\")")])
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # pydantic marks a dict key's own error with a last element '[key]'
            key_path = tuple(str(p) for p in error["loc"] if p != "[key]")
            problems.append(
                Problem(label, lines.line(key_path), render_key(key_path) or None,
                        _policy_message(error, key_path))
            )
        raise InputError(problems) from None
    if policy.allocation.method == "levels":
        zero = [Problem(label, find_toml_line(text, key), render_key(key),
                        "got 0, expected a weight > 0 under [allocation] method = \"levels\" "
                        "(a gap's priority is the product of its weights; use method = "
                        "\"weighted\" to keep zero weights)")
                for key in policy.zero_weights()]
        if zero:
            raise InputError(zero)
    if "name" not in document:
        policy = policy.model_copy(update={"name": readable(path.stem)})
    warnings: list[Problem] = []
    if targets is not None:
        named = [(("weights", "target"), policy.weights.target),
                 (("thematic", "min_share"), policy.thematic.min_share)]
        for table, values in named:
            for target in values:
                if target not in targets:
                    warnings.append(
                        Problem(label, lines.line((*table, target)),
                                render_key((*table, target)), "names a target that no gap has")
                    )
    return PolicyFile(policy=policy, path=path, sha256=sha256_bytes(raw), text=text,
                      warnings=warnings, raw=raw)


MAX_POLICY_DEPTH = 16


def _too_deep(document: dict[str, Any]) -> tuple[str, ...] | None:
    """The first key path deeper than MAX_POLICY_DEPTH, cut there; None when there is none.
    Checked without recursion: a TOML file can nest dotted keys thousands deep."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_POLICY_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend(((*path, str(k)), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), v) for i, v in enumerate(value))
    return None


def load_inputs_and_policy(inputs: Path | str, model: Path | str
                           ) -> tuple[ProblemData, PolicyFile]:
    """`load_inputs` and `load_policy` together: the problems of both in one `InputError`,
    so that a user sees every file's problems in one run."""
    problems: list[Problem] = []
    data: ProblemData | None = None
    try:
        data = load_inputs(inputs)
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        policy_file = load_policy(model, None if data is None else set(data.gaps["target"]))
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    assert data is not None
    return data, policy_file


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return shown(value)
    return str(value)


def _policy_message(error: Any, key_path: tuple[str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    got = f"got {_toml_value(value)}"
    if kind == "gcm_fund":
        return str(error["ctx"]["message"])
    if kind == "extra_forbidden":
        return f"unknown key{_policy_key_hint(key_path)}"
    if kind == "finite_number":
        return f"{got}, expected a finite number"
    if kind in {"float_type", "int_type", "float_parsing"}:
        return f"{got}, expected a number"
    if kind == "bool_type":
        return f"{got}, expected true or false"
    if kind in {"string_type"}:
        return f"{got}, expected a quoted string"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"{got}, expected a table"
    if kind == "literal_error":
        choices = ALLOCATION_METHODS if key_path[:1] == ("allocation",) else EQUITY_GROUPS
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return f"{got}, expected one of {', '.join(choices)}{hint}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        return f"{got}, {_range_text(key_path)}"
    return str(error["msg"])


def _range_text(key_path: tuple[str, ...]) -> str:
    head = key_path[0] if key_path else ""
    if head in {"cofinancing", "thematic"} or key_path[-1:] == ("min_floor",):
        return "expected a number in [0, 1]"
    if head == "limits":
        return "expected a number in (0, 1]"
    if key_path[-1:] == ("tolerance",):
        return "expected a number in (0, 0.01]"
    return "expected a number >= 0"


def _policy_key_hint(key_path: tuple[str, ...]) -> str:
    model: Any = Policy
    for part in key_path[:-1]:
        field_info = getattr(model, "model_fields", {}).get(part)
        if field_info is None or not isinstance(field_info.annotation, type):
            return ""
        model = field_info.annotation
    known = list(getattr(model, "model_fields", {}))
    return did_you_mean(key_path[-1], known) if known else ""
