"""Reading an input folder and a policy file into checked, frozen tables.

Every problem in every file is collected in one pass and raised as one `InputError`, so a
user fixes a spreadsheet once, not once per run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from .errors import InputError, Problem
from .schema import (
    INCOME_GROUPS,
    INPUT_FILES,
    Column,
    Policy,
    did_you_mean,
)

ROLE_COLUMNS = ("origin", "transit", "destination")


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


@dataclass(frozen=True)
class PolicyFile:
    """A checked policy with the file it came from."""

    policy: Policy
    path: Path
    sha256: str
    text: str
    warnings: list[Problem] = field(default_factory=list)


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def _label(path: Path) -> str:
    return str(path)


def read_csv_rows(
    path: Path, columns: tuple[Column, ...], problems: list[Problem], warnings: list[Problem]
) -> tuple[list[tuple[int, dict[str, str]]], bytes | None]:
    """The rows of one CSV file as (line, {column: stripped cell}), checking its shape.

    Problems with the file's shape (encoding, header, field counts) go to `problems`;
    unknown columns go to `warnings`. Blank optional cells are left out of the dicts so
    that the row models apply their defaults.
    """
    label = _label(path)
    if not path.is_file():
        problems.append(Problem(label, None, None, "file not found"))
        return [], None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(
                label,
                line,
                None,
                f"byte 0x{raw[exc.start]:02x} is not UTF-8: save the file as UTF-8 text",
            )
        )
        return [], raw
    if not text.strip():
        problems.append(Problem(label, None, None, "the file is empty: expected a header row"))
        return [], raw
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        problems.append(Problem(label, 1, None, f"cannot read the header: {exc}"))
        return [], raw
    known = {c.name for c in columns}
    if len(header) == 1 and ";" in header[0] and header[0] not in known:
        problems.append(
            Problem(
                label,
                1,
                None,
                "the header is separated by ';', expected ',': save the file as "
                "comma-separated values",
            )
        )
        return [], raw
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(label, 1, name, "column appears more than once"))
        seen.add(name)
    for column in columns:
        if column.required and column.name not in seen:
            hint = did_you_mean(column.name, [h for h in header if h not in known])
            problems.append(Problem(label, 1, column.name, f"required column is missing{hint}"))
    unknown = [h for h in header if h not in known and h]
    if unknown:
        warnings.append(
            Problem(label, 1, None, f"unknown column{'s' if len(unknown) > 1 else ''} ignored: "
                    + ", ".join(unknown))
        )
    if any(p.file == label and p.line == 1 for p in problems):
        return [], raw

    rows: list[tuple[int, dict[str, str]]] = []
    required = {c.name for c in columns if c.required}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                problems.append(
                    Problem(label, line, None,
                            f"the row has {len(cells)} fields, the header {len(header)}")
                )
                continue
            row: dict[str, str] = {}
            for name, cell in zip(header, cells, strict=False):
                if name not in known:
                    continue
                cell = cell.strip()
                if cell:
                    row[name] = cell
                elif name in required:
                    problems.append(Problem(label, line, name, "required, got a blank cell"))
            rows.append((line, row))
    except csv.Error as exc:
        problems.append(Problem(label, reader.line_num, None, f"cannot read the row: {exc}"))
    if not rows and not any(p.file == label for p in problems):
        problems.append(Problem(label, None, None, "the file has a header and no rows"))
    return rows, raw


def validate_rows(
    label: str,
    model: type[BaseModel],
    rows: list[tuple[int, dict[str, str]]],
    problems: list[Problem],
) -> list[tuple[int, Any]]:
    """Each row through its pydantic model; every failing cell becomes one problem."""
    checked: list[tuple[int, Any]] = []
    for line, row in rows:
        blank_required = {p.column for p in problems if p.file == label and p.line == line}
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
            shown = ",".join(key)
            problems.append(
                Problem(label, line, column, f"duplicate key {shown!r}, first on line {first[key]}")
            )
        else:
            first[key] = line


def load_inputs(folder: Path | str) -> ProblemData:
    """Read and check states.csv, gaps.csv and sources.csv of `folder`.

    Raises `InputError` with every problem of every file; returns the tables otherwise.
    """
    folder = Path(folder)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked: dict[str, list[tuple[int, Any]]] = {}
    hashes: dict[str, str] = {}
    if not folder.is_dir():
        raise InputError([Problem(str(folder), None, None, "input folder not found")])
    for name, (model, columns) in INPUT_FILES.items():
        path = folder / name
        rows, raw = read_csv_rows(path, columns, problems, warnings)
        if raw is not None:
            hashes[name] = sha256_bytes(raw)
        checked[name] = validate_rows(_label(path), model, rows, problems)

    states = checked["states.csv"]
    gaps = checked["gaps.csv"]
    sources = checked["sources.csv"]
    states_label = _label(folder / "states.csv")
    gaps_label = _label(folder / "gaps.csv")
    sources_label = _label(folder / "sources.csv")

    _report_duplicates(states_label, [(ln, (r.iso3,)) for ln, r in states], "iso3", problems)
    _report_duplicates(gaps_label, [(ln, (r.iso3, r.target)) for ln, r in gaps], "target", problems)
    _report_duplicates(sources_label, [(ln, (r.source_id,)) for ln, r in sources], "source_id",
                       problems)

    iso3s = sorted({r.iso3 for _, r in states})
    names = {r.name.lower(): r.iso3 for _, r in states}
    states_read = (folder / "states.csv").is_file() and bool(states)

    def unknown_iso3(value: str) -> str:
        hint = did_you_mean(value, iso3s)
        if not hint and value.lower() in names:
            hint = f" (did you mean {names[value.lower()]}?)"
        return f"got {value!r}, not in states.csv{hint}"

    if states_read:
        for line, gap in gaps:
            if gap.iso3 not in iso3s:
                problems.append(Problem(gaps_label, line, "iso3", unknown_iso3(gap.iso3)))
    for line, source in sources:
        for group in source.income_groups:
            if group not in INCOME_GROUPS:
                problems.append(
                    Problem(sources_label, line, "income_groups",
                            f"got {group!r}, expected one of {', '.join(INCOME_GROUPS)}"
                            f"{did_you_mean(group, INCOME_GROUPS)}")
                )
        if not states_read:
            continue
        for iso3 in source.exclude_states:
            if iso3 not in iso3s:
                problems.append(Problem(sources_label, line, "exclude_states", unknown_iso3(iso3)))
        if source.donor_iso3 is not None and source.donor_iso3 not in iso3s:
            problems.append(Problem(sources_label, line, "donor_iso3", unknown_iso3(source.donor_iso3)))

    if problems:
        raise InputError(problems)

    regions = {r.region for _, r in states}
    targets = {g.target for _, g in gaps}
    for line, source in sources:
        for region in source.regions:
            if region not in regions:
                warnings.append(
                    Problem(sources_label, line, "regions",
                            f"{region!r} matches no State's region{did_you_mean(region, sorted(regions))}")
                )
        for target in source.targets:
            if target not in targets:
                warnings.append(
                    Problem(sources_label, line, "targets", f"{target!r} matches no gap")
                )

    return ProblemData(
        states=_frame([r for _, r in states], ["iso3"]),
        gaps=_frame([g for _, g in gaps], ["iso3", "target"]),
        sources=_frame([s for _, s in sources], ["source_id"]),
        folder=folder,
        file_sha256=hashes,
        warnings=warnings,
    )


def _frame(rows: list[BaseModel], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([row.model_dump() for row in rows])
    return frame.sort_values(keys, kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------
# The policy


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _toml_key_parts(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p.strip("\"'") for p in parts)


def find_toml_line(text: str, path: tuple[str, ...]) -> int | None:
    """The line of a key path in a TOML text, best effort (for messages only)."""
    table: tuple[str, ...] = ()
    best: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            table = _toml_key_parts(header.group(1))
            if table == path:
                return number
            if best is None and path[: len(table)] == table and table:
                best = number
            continue
        key = _KEY_LINE.match(line)
        if key:
            full = table + _toml_key_parts(key.group(1))
            if full == path or (len(full) <= len(path) and path[: len(full)] == full):
                return number
    return best


def load_policy(path: Path | str, targets: set[str] | None = None) -> PolicyFile:
    """Read and check a policy TOML file; unknown keys and bad values raise `InputError`.

    `targets`, when given, are the gaps' target codes: policy keys naming another target
    are warnings.
    """
    path = Path(path)
    label = _label(path)
    if not path.is_file():
        raise InputError([Problem(label, None, None, "policy file not found")])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError([Problem(label, line, None, "not UTF-8 text")]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        line = int(found.group(1)) if found else None
        why = _TOML_LINE.sub("", message).strip()
        raise InputError([Problem(label, line, None, f"not valid TOML: {why}")]) from None
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key_path = tuple(str(p) for p in error["loc"])
            problems.append(
                Problem(label, find_toml_line(text, key_path), ".".join(key_path) or None,
                        _policy_message(error, key_path))
            )
        raise InputError(problems) from None
    if "name" not in document:
        policy = policy.model_copy(update={"name": path.stem})
    warnings: list[Problem] = []
    if targets is not None:
        named = [("weights.target", policy.weights.target), ("thematic.min_share",
                                                             policy.thematic.min_share)]
        for table, values in named:
            for target in values:
                if target not in targets:
                    warnings.append(
                        Problem(label, find_toml_line(text, (*table.split("."), target)),
                                f"{table}.{target}", "names a target that no gap has")
                    )
    return PolicyFile(policy=policy, path=path, sha256=sha256_bytes(raw), text=text,
                      warnings=warnings)


def _policy_message(error: Any, key_path: tuple[str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    shown = repr(value)
    if kind == "gcm_fund":
        return str(error["ctx"]["message"])
    if kind == "extra_forbidden":
        return f"unknown key{_policy_key_hint(key_path)}"
    if kind in {"float_type", "int_type", "float_parsing"}:
        return f"got {shown}, expected a number"
    if kind == "bool_type":
        return f"got {shown}, expected true or false"
    if kind in {"string_type"}:
        return f"got {shown}, expected a quoted string"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"got {shown}, expected a table"
    if kind == "literal_error":
        expected = error["ctx"]["expected"]
        return f"got {shown}, expected one of {expected}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        return f"got {shown}, {_range_text(key_path)}"
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
