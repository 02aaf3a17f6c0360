"""Reading a run folder: its manifest and its tables as text, whatever shape they are in.

A run folder may have been damaged or forged: nothing read here is trusted. The manifest's
fields are read through typed accessors that give None for a missing or ill-typed value,
and a table that cannot be read raises `DamagedFile` (naming the file) instead of whatever
the CSV parser raised, so that the commands can say what is wrong and never crash.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gcm_fund.errors import EXIT_BAD_INPUT, GcmFundError
from gcm_fund.outputs import schema as output_schema
from gcm_fund.outputs.schema import (
    ALLOCATIONS,
    ALWAYS_TABLES,
    CONSTRAINTS,
    EXACT,
    KEY_COLUMNS,
    MANIFEST,
    REAL,
    SHARE,
    SOURCES_SUMMARY,
    USD,
    columns_of_kind,
)

# The tables and columns as the output schema declares them.
RUN_TABLES = ALWAYS_TABLES
ALLOCATION_COLUMNS = ALLOCATIONS.column_names
CONSTRAINT_COLUMNS = tuple(c for c in CONSTRAINTS.column_names if c not in KEY_COLUMNS)
ROW_KEY_COLUMNS = KEY_COLUMNS  # in constraints.csv, blank where none
COVERAGE_COLUMNS = output_schema.COVERAGE_COLUMNS
# grant_equivalent_usd (docs/terms.md) is checked where present: earlier run folders lack it.
# Columns a run of an earlier version may lack: read where present.
SOURCES_COLUMNS = tuple(c for c in SOURCES_SUMMARY.column_names
                        if c not in ("grant_equivalent_usd", "placed_per_usd", "additionality"))
# Columns holding numbers, in the tables every run writes: certify refuses a non-finite or
# absurd value in any of them.
NUMERIC_COLUMNS = set(columns_of_kind(USD, SHARE, REAL, EXACT, method_columns=False))
# docs/terms.md (absent from run folders of earlier versions, which record no grant equivalent).
STATES_SUMMARY = output_schema.STATES_SUMMARY.name
STATES_COLUMNS = output_schema.STATES_SUMMARY.column_names
SCALES = {"USD": 1.0, "USD thousands": 1e3, "USD millions": 1e6, "USD billions": 1e9}
# A run's manifest is a few levels deep; anything deeper is not one of ours (and would
# exhaust the stack of whatever walks it).
MAX_MANIFEST_DEPTH = 8
# Larger than any table or manifest a run writes for the inputs it can solve.
MAX_FILE_BYTES = 2 * 1024**3


class NotARunFolder(GcmFundError):
    """The folder is not a run folder written by `gcm-fund allocate` (exit status 2)."""

    exit_code = EXIT_BAD_INPUT


class DamagedFile(NotARunFolder):
    """A file of a run folder cannot be read as what the run writes there."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: {why}")
        self.name = name
        self.why = why


@contextlib.contextmanager
def read_as_damaged(folder: Path | str) -> Iterator[None]:
    """Turn what a damaged folder makes the readers raise into `NotARunFolder` (exit 2).

    The readers name what they can (`DamagedFile`); this is the net under them, so that a
    damaged folder is a message and never a crash of `explain`, `diff` or `verify`.
    """
    try:
        yield
    except GcmFundError:
        raise
    except RecursionError:
        raise NotARunFolder(f"{folder}: a damaged run folder (nested too deeply)") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, ArithmeticError,
            UnicodeError) as exc:
        raise NotARunFolder(f"{folder}: a damaged run folder ({type(exc).__name__}: {exc})") \
            from None


def _depth(document: Any) -> int:
    """How deeply lists and objects nest in a JSON document (without recursion)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_MANIFEST_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _constant(text: str) -> float:
    """JSON's non-standard NaN and Infinity, read as floats so certify can name them."""
    return float(text)


@dataclass
class RunFolder:
    """A run folder: its manifest and where its files are."""

    path: Path
    manifest: dict[str, Any]
    # Tables read once and shared (certify reads several more than once); whoever turns
    # this on must not change the tables it is given.
    cache: dict[str, pd.DataFrame] | None = None

    @property
    def inputs(self) -> Path:
        """The copy of the input folder."""
        return self.path / "inputs"

    @property
    def policy(self) -> Path:
        """The copy of the policy file."""
        return self.path / "policy.toml"

    def has(self, name: str) -> bool:
        """Whether the run folder holds a file."""
        return (self.path / name).is_file()

    def read_bytes(self, name: str) -> bytes:
        """A file's bytes; `DamagedFile` when it cannot be read."""
        try:
            size = (self.path / name).stat().st_size
            if size > MAX_FILE_BYTES:
                raise DamagedFile(name, f"{size:,} bytes, more than a run writes")
            return (self.path / name).read_bytes()
        except OSError as exc:
            raise DamagedFile(name, f"cannot be read ({exc.strerror or exc})") from None

    def table(self, name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
        """A CSV file of the run as text cells (nothing parsed, nothing blank turned NaN).

        Raises `DamagedFile` when the file is missing, not UTF-8, not CSV, has no header,
        repeats a column, or lacks one of `columns`.
        """
        table = self.cache.get(name) if self.cache is not None else None
        if table is None:
            table = self._read_table(name)
            if self.cache is not None:
                self.cache[name] = table
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise DamagedFile(name, f"lacks column{'s' if len(missing) > 1 else ''} "
                                    f"{', '.join(missing)}")
        return table

    def _read_table(self, name: str) -> pd.DataFrame:
        if not self.has(name):
            raise DamagedFile(name, "missing from the run folder")
        data = self.read_bytes(name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DamagedFile(name, f"not UTF-8 (byte {exc.start})") from None
        if not text.strip():
            raise DamagedFile(name, "empty (no header)")
        header = next(csv.reader(io.StringIO(text)), [])
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise DamagedFile(name, f"repeats column {repeated[0]!r}")
        try:
            with warnings.catch_warnings():
                # A row longer than the header: pandas would drop cells with a warning.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                                    na_filter=False, index_col=False)
        except (ValueError, csv.Error, pd.errors.ParserWarning) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise DamagedFile(name, f"not a CSV table ({first})") from None
        # A short row leaves NaN even with na_filter off: blank, as the file shows it.
        return table.fillna("").astype(str)

    # -- the manifest, read defensively -------------------------------------------------

    def section(self, key: str) -> dict[str, Any]:
        """A manifest object (`solver`, `model`, ...), empty when absent or not an object."""
        found = self.manifest.get(key)
        return found if isinstance(found, dict) else {}

    def text(self, *path: str) -> str | None:
        """A manifest string, None when absent or not a string."""
        found = self.raw(*path)
        return found if isinstance(found, str) else None

    def number(self, *path: str) -> float | None:
        """A manifest number as a float, None when absent, not a number, or not finite."""
        found = self.raw(*path)
        if isinstance(found, bool) or not isinstance(found, int | float):
            return None
        value = float(found)
        return value if math.isfinite(value) else None

    def pair(self, *path: str) -> tuple[float, float] | None:
        """A manifest [low, high] pair of finite numbers, None otherwise."""
        found = self.raw(*path)
        if not isinstance(found, list) or len(found) != 2:
            return None
        values = [float(v) for v in found
                  if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(values) != 2 or not all(math.isfinite(v) for v in values):
            return None
        return values[0], values[1]

    def raw(self, *path: str) -> Any:
        """A manifest value as read (any type), None when absent."""
        node: Any = self.manifest
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    @property
    def floor_variable(self) -> dict[str, Any]:
        """manifest `floor_variable`, empty when absent."""
        return self.section("floor_variable")

    @property
    def solved_scale(self) -> float:
        """USD per unit of the solver's amounts (manifest units.solved_in)."""
        return SCALES.get(self.text("units", "solved_in") or "USD millions", 1e6)


def open_run(folder: Path | str) -> RunFolder:
    """A run folder's manifest; raises `NotARunFolder` when it has none or it is not one."""
    path = Path(folder)
    if not path.is_dir():
        raise NotARunFolder(f"{path}: not a folder")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise NotARunFolder(f"{path}: not a run folder (no manifest.json)")
    try:
        if manifest_path.stat().st_size > MAX_FILE_BYTES:
            raise NotARunFolder(f"{manifest_path}: too large to be a run manifest")
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"),
                              parse_constant=_constant)
    except OSError as exc:
        raise NotARunFolder(f"{manifest_path}: cannot be read ({exc.strerror or exc})") \
            from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotARunFolder(f"{manifest_path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise NotARunFolder(f"{manifest_path}: not a run manifest (nested too deeply)") \
            from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("run_id"), str):
        raise NotARunFolder(f"{manifest_path}: not a run manifest (no run_id)")
    if _depth(manifest) > MAX_MANIFEST_DEPTH:
        raise NotARunFolder(f"{manifest_path}: not a run manifest (nested more than "
                            f"{MAX_MANIFEST_DEPTH} levels deep)")
    return RunFolder(path, manifest)
