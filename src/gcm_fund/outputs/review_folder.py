"""The review folder (`gcm-fund review`, docs/review.md): four CSV tables and review.html,
written to a temporary folder beside the destination and renamed into place whole.

A review folder is not a run folder: `--force` replaces a folder that holds only a review's
own files (`schema.REVIEW_FILES`), never one holding anything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gcm_fund import writing
from gcm_fund.errors import UsageError
from gcm_fund.outputs import schema
from gcm_fund.outputs.destination import check_apart
from gcm_fund.writing import file_kind, refuse_dash

_FORMATS: dict[str, Callable[[Any], str]] = {
    schema.USD: writing.amount, schema.SHARE: writing.share,
    schema.COUNT: lambda value: str(int(value)),
    schema.TEXT: lambda value: writing.inert(str(value))}


@dataclass
class Review:
    """What a review folder holds: its tables (columns as `schema.REVIEW_TABLES` declares
    them), whether its figures are illustrative, and where they came from."""

    states: pd.DataFrame
    targets: pd.DataFrame
    regions: pd.DataFrame
    donors: pd.DataFrame
    cycles: pd.DataFrame  # the same figures per cycle, for the page (no file of its own)
    illustrative: bool = False
    description: str = ""
    contributions: bool = False  # the inputs have contributions.csv
    provenance: list[tuple[str, str]] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by file name."""
        return {schema.REVIEW_STATES.name: self.states,
                schema.REVIEW_TARGETS.name: self.targets,
                schema.REVIEW_REGIONS.name: self.regions,
                schema.REVIEW_DONORS.name: self.donors}


def table_text(table: pd.DataFrame, name: str) -> str:
    """One review table as CSV text, its columns in the schema's order and formats."""
    declared = schema.REVIEW_TABLES[name]
    cells = [[_FORMATS[column.kind](value) for value in table[column.name].tolist()]
             for column in declared.columns]
    rows = list(zip(*cells, strict=True)) if cells else []
    return writing.csv_text(declared.column_names, rows)


def check_review_destination(out: Path | str, *, force: bool = False,
                             inputs: Path | str | None = None,
                             history: Path | str | None = None) -> None:
    """Refuse (`UsageError`) a destination where a review folder would lose something:
    the input folder or the history file, a link or a file, a folder holding anything but
    a review's files, and an earlier review without `force`."""
    refuse_dash(out)
    check_apart(out, inputs=inputs, folder="review")
    if history is not None:
        held, target = Path(os.path.realpath(history)), Path(os.path.realpath(out))
        if held == target or target in held.parents:
            raise UsageError(f"{out}: holds the history file {history}; a review folder "
                             "replaces its destination, so write it elsewhere with --out")
    replaceable(force=force)(Path(out), Path(out))


def replaceable(*, force: bool = False) -> Callable[[Path, Path], None]:
    """What `writing.atomic_folder` asks of whatever stands at the destination."""
    def check(folder: Path, shown: Path) -> None:
        if not os.path.lexists(folder):
            return
        if folder.is_symlink() or not folder.is_dir():
            kind = "a symbolic link" if folder.is_symlink() else file_kind(folder)
            raise UsageError(f"{shown}: is {kind}, not a folder; --out names the folder the "
                             "review is written to")
        entries = sorted(os.listdir(folder))
        if not entries:
            return
        foreign = [e for e in entries
                   if e not in schema.REVIEW_FILES or not (folder / e).is_file()]
        if foreign:
            raise UsageError(f"{shown}: exists and is not a review folder of gcm-fund (it "
                             f"holds {', '.join(foreign[:3])}); choose another --out "
                             "(--force replaces only a review folder)")
        if not force:
            raise UsageError(f"{shown}: exists and is not empty; use --force to replace it")
    return check


def write_review(review: Review, out: Path | str, *, force: bool = False) -> Path:
    """Write the review's tables and review.html into `out`, all or nothing."""
    from gcm_fund.outputs.review_page import render

    with writing.atomic_folder(Path(out), replaceable(force=force)) as folder:
        for name, table in review.tables().items():
            (folder / name).write_text(table_text(table, name), encoding="utf-8")
        (folder / schema.REVIEW_PAGE).write_bytes(render(review))
    return Path(out)
