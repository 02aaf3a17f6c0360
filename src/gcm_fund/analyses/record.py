"""`record`: a run's allocation appended to a history file as one cycle (docs/review.md).

Each gap the run gave money becomes one row of the cycle: `committed_usd` is the gap's
`allocated_usd` in the run's coverage.csv, as written (two decimals); `disbursed_usd` is 0
and `result` blank, for the fund to fill in from the implementers' reports. Gaps the run
gave nothing are left out, as allocations.csv leaves out its zero rows. The rows of the
cycle sort by plain string order of iso3, target; the rows already in the file are kept as
they are, byte for byte.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gcm_fund.errors import UsageError
from gcm_fund.inputs.history import HISTORY_COLUMNS
from gcm_fund.writing import amount, csv_text


def cycle_rows(coverage: Path, cycle: int) -> list[list[str]]:
    """The history rows of one cycle from a run's coverage.csv: one per gap with money,
    sorted by iso3, target."""
    with open(coverage, newline="", encoding="utf-8") as handle:
        rows = [(r["iso3"], r["target"], r["allocated_usd"]) for r in csv.DictReader(handle)]
    return [[str(cycle), iso3, target, amount(float(allocated)), amount(0.0), ""]
            for iso3, target, allocated in sorted(rows) if float(allocated) > 0]


def appended(existing: str | None, rows: list[list[str]]) -> str:
    """The history file's text with `rows` after what it holds (its header and rows kept
    as they are); a new file with its header when `existing` is None."""
    block = csv_text([c.name for c in HISTORY_COLUMNS], rows)
    if existing is None or not existing.strip():
        return block
    body = block.split("\n", 1)[1]
    return existing + ("" if existing.endswith("\n") else "\n") + body


def check_cycle(cycle: int, recorded: set[int], history: Path) -> None:
    """Refuse (`UsageError`) a cycle number below 1 or one the history already holds."""
    if cycle < 1:
        raise UsageError(f"--cycle {cycle}: expected an integer >= 1")
    if cycle in recorded:
        raise UsageError(f"{history}: cycle {cycle} is already recorded; record the run as "
                         "another cycle, or remove that cycle's rows first")


def check_policy_cycle(cycle: int, policy_cycle: int | None, run_dir: Path) -> None:
    """Refuse (`UsageError`) a cycle other than the one the run's policy says it is
    (`[cycle] number`), when the policy says one."""
    if policy_cycle is not None and policy_cycle != cycle:
        raise UsageError(f"{run_dir}: the run's policy is cycle {policy_cycle} ([cycle] "
                         f"number), not --cycle {cycle}")
