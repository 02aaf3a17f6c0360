"""Reading `programmes.csv` (docs/programmes.md): the pipeline of the programmes method, checked
against states.csv and gaps.csv, every problem at once.

Read only when the policy's `[allocation] method` is `programmes`; the other methods
ignore the file. The row model and columns are `schema.ProgrammeRow` and
`schema.PROGRAMME_COLUMNS`; what needs the other files (iso3s, targets, the shares'
pairs, duplicate ids) is checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.csv_input import file_label, read_csv_rows, sha256_bytes, validate_rows
from gcm_fund.inputs.load import InputTable, ProblemData
from gcm_fund.inputs.schema import (
    PROGRAMME_COLUMNS,
    PROGRAMME_FILE,
    ProgrammeRow,
    did_you_mean,
    normalise_target,
    parse_number,
    shown,
    split_list,
)

SHARE_SUM_TOLERANCE = 1e-6  # docs/programmes.md: shares sum to 1 within this
_SHARE_ENTRY = re.compile(r"([^:=]+):([^:=]+)=(.+)")


@dataclass(frozen=True)
class ProgrammeShare:
    """One entry of a programme's `shares`: its money counted toward gap (iso3, target)."""

    iso3: str
    target: str
    share: float


def parse_shares(cell: str) -> list[ProgrammeShare]:
    """`ISO3:TARGET=share;...` as entries (`ValueError` with the reason on a bad one)."""
    entries: list[ProgrammeShare] = []
    for item in split_list(cell):
        found = _SHARE_ENTRY.fullmatch(item)
        if not found:
            raise ValueError(f"got {shown(item)}, expected ISO3:TARGET=share")
        iso3, target, share = (part.strip() for part in found.groups())
        try:
            target = normalise_target(target)
            value = parse_number(share, "a share > 0")
        except Exception as exc:  # pydantic's custom error carries the message
            raise ValueError(f"{shown(item)}: {exc}") from None
        if not value > 0:
            raise ValueError(f"{shown(item)}: got {share}, expected a share > 0")
        entries.append(ProgrammeShare(iso3, target, value))
    return entries


def load_programmes(folder: Path | str, data: ProblemData) -> ProblemData:
    """The inputs with `programmes.csv` of `folder` read and checked (`InputError` with
    every problem otherwise): the table joins `data.programme_table`, its bytes and hash
    join the other files'."""
    path = Path(folder) / PROGRAMME_FILE
    label = file_label(path)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    cells, raw, _ = read_csv_rows(path, PROGRAMME_COLUMNS, problems, warnings)
    if raw is None and problems:
        problems = [Problem(label, None, None, "file not found: [allocation] method = "
                            "\"programmes\" needs the programme pipeline (docs/programmes.md)")]
        raise InputError(problems)
    checked = validate_rows(label, ProgrammeRow, cells, problems)

    iso3s = data.state_table["iso3"].tolist()
    known_states = set(iso3s)
    gap_keys = set(zip(data.gap_table["iso3"].tolist(), data.gap_table["target"].tolist(),
                       strict=True))
    gap_targets = {t for _, t in gap_keys}
    first: dict[str, int] = {}
    for line, row in cells:
        key = row.get("programme_id", "").strip()
        if key in first:
            problems.append(Problem(label, line, "programme_id",
                                    f"duplicate key {shown(key)}, first on line {first[key]}"))
        elif key:
            first[key] = line
    for line, row in cells:
        for code in split_list(row.get("states", "")):
            if code not in known_states:
                problems.append(Problem(label, line, "states", f"got {shown(code)}, not in "
                                        f"states.csv{did_you_mean(code, iso3s)}"))
    for line, programme in checked:
        for target in programme.targets:
            if target not in gap_targets:
                problems.append(Problem(label, line, "targets",
                                        f"got {shown(target)}, no gap in gaps.csv has it"))
        problems.extend(_share_problems(label, line, programme, gap_keys))
        for code in programme.states:
            if code in known_states and not any((code, t) in gap_keys
                                                for t in programme.targets):
                warnings.append(Problem(label, line, "states",
                                        f"{code} has no gap of this programme's targets: "
                                        "it counts for nothing"))
    if problems:
        raise InputError(problems)
    assert raw is not None
    rows = sorted((row for _, row in checked), key=lambda row: row.programme_id)
    return replace(data, programme_table=InputTable(PROGRAMME_FILE, rows),
                   file_bytes={**data.file_bytes, PROGRAMME_FILE: raw},
                   file_sha256={**data.file_sha256, PROGRAMME_FILE: sha256_bytes(raw)},
                   warnings=[*data.warnings, *warnings])


def _share_problems(label: str, line: int, programme: ProgrammeRow,
                    gap_keys: set[tuple[str, str]]) -> list[Problem]:
    if not programme.shares:
        return []
    try:
        entries = parse_shares(";".join(programme.shares))
    except ValueError as exc:
        return [Problem(label, line, "shares", str(exc))]
    found: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        pair = (entry.iso3, entry.target)
        name = f"{entry.iso3}:{entry.target}"
        if pair in seen:
            found.append(Problem(label, line, "shares", f"{name} is named twice"))
        seen.add(pair)
        if entry.iso3 not in programme.states or entry.target not in programme.targets:
            found.append(Problem(label, line, "shares",
                                 f"{name} is outside the programme's states x targets"))
        elif pair not in gap_keys:
            found.append(Problem(label, line, "shares", f"{name} is not a row of gaps.csv"))
    total = sum(e.share for e in entries)
    if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
        found.append(Problem(label, line, "shares", f"the shares sum to {total:g}, "
                             "expected 1"))
    return found
