"""Reading `history.csv` (docs/cycles.md): what the fund committed, disbursed and achieved
in past cycles, one row per cycle, State and target, checked with every problem at once.

`read_history` is the reader every command shares (`allocate` through `load_history`,
`record` and `review` directly); its frame's columns are `HISTORY_FRAME_COLUMNS`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, field_validator

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.csv_input import file_label, read_csv_rows, sha256_bytes, validate_rows
from gcm_fund.inputs.policy_file import PolicyFile, find_toml_line
from gcm_fund.inputs.schema import (
    NON_NEGATIVE,
    UNIT_INTERVAL,
    Column,
    Target,
    Text,
    UnitShare,
    Usd,
    _Row,
    did_you_mean,
    fail,
    normalise_target,
    shown,
)

if TYPE_CHECKING:
    import pandas as pd

    from gcm_fund.inputs.load import ProblemData

HISTORY_FILE = "history.csv"
CARRYOVER_SOURCE = "carryover"  # docs/cycles.md: the grant source `pool` adds
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NO_ROWS = "the file has a header and no rows"

HISTORY_COLUMNS = (
    Column("cycle", "integer >= 1", "", True, "the round the row belongs to"),
    Column("iso3", "iso3 in states.csv", "", True, "the State"),
    Column("target", "SDG target code", "", True, "the target of the gap"),
    Column("committed_usd", "number", "USD", True,
           "what the fund allocated to the gap in that cycle", range=NON_NEGATIVE),
    Column("disbursed_usd", "number", "USD", True,
           "paid out by the review, in [0, committed_usd]", range=NON_NEGATIVE),
    Column("result", "number", "share", False,
           "share of planned outputs delivered; blank = not reported", range=UNIT_INTERVAL),
)
# The frame `read_history` returns: one row per file row, sorted by (cycle, iso3, target);
# `cycle` an int64, amounts in USD as floats, `result` a float that is NaN when blank.
HISTORY_FRAME_COLUMNS = ("cycle", "iso3", "target", "committed_usd", "disbursed_usd",
                         "result")


def parse_cycle(text: Any) -> int:
    """A cycle number: an integer >= 1 written in digits."""
    value = str(text).strip()
    if not _INTEGER.fullmatch(value) or int(value) < 1:
        raise fail(f"got {shown(value)}, expected an integer >= 1")
    return int(value)


CycleNumber = Annotated[int, BeforeValidator(parse_cycle)]


class HistoryRow(_Row):
    """One row of history.csv; iso3, the target's gap and the cycle's place before this
    round are checked by `read_history`, against states.csv, gaps.csv and the policy."""

    cycle: CycleNumber
    iso3: Text
    target: Target
    committed_usd: Usd
    disbursed_usd: Usd
    result: UnitShare | None = None

    @field_validator("disbursed_usd", mode="after")
    @classmethod
    def _within_committed(cls, value: float, info: ValidationInfo) -> float:
        committed = info.data.get("committed_usd")
        if committed is not None and value > committed:
            raise fail(f"got {value:g}, above committed_usd {committed:g}: expected a "
                       "number in [0, committed_usd] (USD)")
        return value


def read_history(path: Path | str, states: Collection[str],
                 targets: Collection[str] | None = None, *,
                 before: int | None = None) -> pd.DataFrame:
    """The rows of the history file at `path` as a DataFrame of `HISTORY_FRAME_COLUMNS`
    (sorted by cycle, iso3, target; `result` NaN when blank), checked: `cycle` an integer
    >= 1 and below `before` (this round's `[cycle] number`) when given; `iso3` one of
    `states`; `target` an SDG target code, one of `targets` when given; amounts in USD
    with `disbursed_usd` in [0, committed_usd]; `result` in [0, 1] or blank;
    `(cycle, iso3, target)` unique. A file with a header and no rows is an empty frame.

    Raises `InputError` with one problem per bad cell, as `file:line: column: why`.
    """
    return _read(Path(path), states, targets, before)[0]


def _read(path: Path, states: Collection[str], targets: Collection[str] | None,
          before: int | None) -> tuple[pd.DataFrame, bytes]:
    """`read_history`'s frame and the bytes it was read from."""
    import pandas as pd

    label = file_label(path)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    cells, raw, _ = read_csv_rows(path, HISTORY_COLUMNS, problems, warnings)
    problems = [p for p in problems if not (p.line is None and p.why == _NO_ROWS)]
    checked = validate_rows(label, HistoryRow, cells, problems)
    known_states = sorted(states)
    known_targets = None if targets is None else sorted(targets)
    first: dict[tuple[int, str, str], int] = {}
    for line, row in cells:
        iso3 = row.get("iso3")
        if iso3 is not None and iso3 not in states:
            problems.append(Problem(label, line, "iso3", f"got {shown(iso3)}, not in "
                                    f"states.csv{did_you_mean(iso3, known_states)}"))
        key = _key(row)
        if key is None:
            continue
        if key in first:
            problems.append(Problem(label, line, "target", "duplicate key "
                                    f"{shown(','.join(map(str, key)))}, first on line "
                                    f"{first[key]}"))
        else:
            first[key] = line
    for line, entry in checked:
        if known_targets is not None and entry.target not in known_targets:
            problems.append(Problem(label, line, "target", f"got {shown(entry.target)}, no "
                                    "gap in gaps.csv has it"
                                    f"{did_you_mean(entry.target, known_targets)}"))
        if before is not None and entry.cycle >= before:
            problems.append(Problem(label, line, "cycle", f"got {entry.cycle}, expected a "
                                    f"past cycle, below [cycle] number = {before}"))
    if problems:
        raise InputError(problems)
    rows = sorted((entry for _, entry in checked),
                  key=lambda e: (e.cycle, e.iso3, e.target))
    frame = pd.DataFrame({
        "cycle": pd.Series([e.cycle for e in rows], dtype="int64"),
        "iso3": pd.Series([e.iso3 for e in rows], dtype=object),
        "target": pd.Series([e.target for e in rows], dtype=object),
        "committed_usd": pd.Series([e.committed_usd for e in rows], dtype=float),
        "disbursed_usd": pd.Series([e.disbursed_usd for e in rows], dtype=float),
        "result": pd.Series([float("nan") if e.result is None else e.result for e in rows],
                            dtype=float),
    })
    assert raw is not None
    return frame[list(HISTORY_FRAME_COLUMNS)], raw


def _key(row: dict[str, str]) -> tuple[int, str, str] | None:
    """The parsed (cycle, iso3, target) of a row's cells, None when one does not parse."""
    try:
        return (parse_cycle(row["cycle"]), row["iso3"].strip(),
                normalise_target(row["target"]))
    except Exception:  # a cell that does not parse is a problem of its own
        return None


def load_history(folder: Path | str, data: ProblemData, policy_file: PolicyFile
                 ) -> ProblemData:
    """The inputs with `history.csv` of `folder` read when present (docs/cycles.md): its
    frame joins `data.history`, its bytes and hash the other files'. Unchanged when the
    folder has no history.csv. `[cycle] number` is required beside it."""
    path = Path(folder) / HISTORY_FILE
    if not (path.exists() or path.is_symlink()):
        return data
    number = policy_file.policy.cycle.number
    problems: list[Problem] = []
    if number is None:
        problems.append(Problem(
            file_label(policy_file.path), find_toml_line(policy_file.text, ("cycle",)),
            "cycle.number", f"required when the inputs have {HISTORY_FILE}: this round's "
            "number, above every cycle in it (an integer >= 1)"))
    try:
        history, raw = _read(path, set(data.state_table["iso3"].tolist()),
                             set(data.gap_table["target"].tolist()), number)
    except InputError as exc:
        problems.extend(exc.problems)
    if policy_file.policy.carryover.undisbursed == "pool":
        problems.extend(_carryover_named(data))
    if problems:
        raise InputError(problems)
    return replace(data, history=history,
                   file_bytes={**data.file_bytes, HISTORY_FILE: raw},
                   file_sha256={**data.file_sha256, HISTORY_FILE: sha256_bytes(raw)})


def _carryover_named(data: ProblemData) -> list[Problem]:
    """A source `carryover` in sources.csv beside `[carryover] undisbursed = "pool"`, which
    adds a source of that name (docs/cycles.md)."""
    import csv
    import io

    text = data.file_bytes.get("sources.csv", b"").decode("utf-8", "replace").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if "source_id" not in header:
        return []
    column = header.index("source_id")
    for cells in reader:
        if len(cells) > column and cells[column].strip() == CARRYOVER_SOURCE:
            return [Problem(file_label(data.folder / "sources.csv"), reader.line_num,
                            "source_id", f"{CARRYOVER_SOURCE!r} is the source [carryover] "
                            f"undisbursed = \"pool\" adds: name this one otherwise")]
    return []
