"""What report.html says, read from a run folder: its tables, names in plain words, the
headline figures, and numbers formatted for people (USD 1.23 bn, 42.5 %).

The page is rebuilt from the folder alone, so everything here reads the written files,
never the solver's values.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gcm_fund.errors import UsageError
from gcm_fund.model.spec import POSITIVE_DUAL
from gcm_fund.outputs.schema import (
    ALWAYS_TABLES,
    COUNT,
    EXACT,
    MANIFEST,
    PAGE_CONSTRAINT_COLUMNS,
    REAL,
    SHARE,
    USD,
    columns_of_kind,
)

INCOME_ORDER = ["LIC", "LMIC", "UMIC", "HIC"]
INCOME_NAMES = {"LIC": "low income", "LMIC": "lower-middle income",
                "UMIC": "upper-middle income", "HIC": "high income"}
KIND_NAMES = {"donor": "Donor", "ifi": "IFI / development bank", "private": "Private"}
TARGET_NAMES = {
    "10.7": "safe, orderly migration policies", "10.c": "remittance costs",
    "8.8": "labour rights of migrant workers", "8.7": "forced labour and child labour",
    "5.2": "violence against women and girls", "16.2": "abuse and trafficking of children",
}
# The UN's colours of the Sustainable Development Goals, by goal number.
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")



# ---------------------------------------------------------------- numbers for people

def usd(value: float) -> str:
    """An amount as a person reads it: USD 1.23 bn, USD 45.6 m, USD 12,300."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    size = abs(value)
    if size >= 1e9:
        return f"USD {value / 1e9:,.2f} bn"
    if size >= 1e6:
        return f"USD {value / 1e6:,.1f} m"
    if size >= 1:
        return f"USD {value:,.0f}"
    return "USD 0" if size < 0.005 else f"USD {value:.2f}"


def usd_full(value: float) -> str:
    """An amount to the dollar, with thousands separators (tables); never '-0'."""
    if value is None or math.isnan(value):
        return "–"
    return "0" if abs(value) < 0.5 else f"{value:,.0f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage: 42.5 %."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.{digits}f} %"


def figure(value: float) -> str:
    """A dual or other real to 4 significant digits, without exponent for common sizes."""
    if value is None or math.isnan(value):
        return "–"
    if value == 0:
        return "0"
    if 1e-4 <= abs(value) < 1e6:
        text = f"{value:.4g}"
        return text if "e" not in text else f"{value:.6f}".rstrip("0")
    mantissa, _, exponent = f"{value:.3e}".partition("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(SUPERSCRIPTS)}"


def income_key(value: str) -> tuple[int, str]:
    return (INCOME_ORDER.index(value) if value in INCOME_ORDER else len(INCOME_ORDER), value)


def target_key(target: str) -> tuple[int, int, str]:
    goal, _, number = target.partition(".")
    return (int(goal) if goal.isdigit() else 99, int(number) if number.isdigit() else 100,
            number)


# ---------------------------------------------------------------- reading the folder

@dataclass
class Folder:
    """What the page shows, as read from a run folder."""

    path: Path
    manifest: dict[str, Any]
    allocations: pd.DataFrame
    coverage: pd.DataFrame
    sources_summary: pd.DataFrame
    constraints: pd.DataFrame
    stage1_constraints: pd.DataFrame | None
    levels: pd.DataFrame | None
    states: pd.DataFrame
    sources: pd.DataFrame
    policy_text: str
    policy: dict[str, Any]
    states_summary: pd.DataFrame | None = None  # docs/terms.md; absent from earlier runs
    selection: pd.DataFrame | None = None  # selection.csv, under programmes (docs/programmes.md)
    # With history.csv (docs/cycles.md): performance.csv, and constraints.csv's pacing rows.
    performance: pd.DataFrame | None = None
    pacing: pd.DataFrame | None = None


# The ASCII characters str.strip() removes.
_ASCII_SPACES = (" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")
# What the page reads of a constraints table (hundreds of thousands of rows on large
# inputs): these
# columns, of the rows that bind (a dual not 0) and of the caps a gap may be held by.
CONSTRAINT_COLUMNS = PAGE_CONSTRAINT_COLUMNS
CAP_FAMILIES = ("absorb", "state_share")
PAGE_ROW_COLUMNS = ("family", "dual")  # what `_page_rows` reads
PACING_FAMILIES = ("pace_down", "pace_up")  # docs/cycles.md's rows, bound or not
# Tables as just written, by file name: the cells of the columns the page reads, column by
# column in the file's order, as the file holds them (`report.write_run` hands them over so
# that the page does not parse the files it has just written: on large inputs, two
# constraints tables of hundreds of thousands of rows).
Written = dict[str, dict[str, list[str]]]


def _has_edge_space(cells: list[str]) -> bool:
    """Whether a cell starts or ends with white space; a text search over the column's
    ASCII text first, a look at each cell only when that finds a space or non-ASCII."""
    text = "".join(cells)
    if text.isascii() and not any(space in text for space in _ASCII_SPACES):
        return False
    return any(cell != cell.strip() for cell in cells)


def _page_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a constraints table the page can show: a dual written as neither 0 nor
    blank (a blank reads as NaN, which binds nowhere), or a cap's row."""
    if not table.columns.is_unique or not set(PAGE_ROW_COLUMNS) <= set(table.columns):
        return table  # not as written: the page reads it whole and says what it finds
    idle = table["dual"].isin(("0", "")) & ~table["family"].isin(CAP_FAMILIES)
    return table[~idle]


def _pacing_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The pacing rows of a constraints table, whatever their duals."""
    if "family" not in table.columns:
        return table.iloc[0:0]
    return table[table["family"].isin(PACING_FAMILIES)]


def _written_table(written: dict[str, list[str]], wanted: set[str] | None,
                   rows: Callable[[pd.DataFrame], pd.DataFrame] | None) -> pd.DataFrame | None:
    """The table `_read_table` makes of a file, made from the cells just written to it;
    None when only parsing the file gives it (no rows, a padded column name, a cell with a
    space at an end)."""
    keep = [name for name in written if wanted is None or name in wanted]
    if (not keep or not written[keep[0]] or any(name != name.strip() for name in keep)
            or any(_has_edge_space(written[name]) for name in keep)):
        return None
    if rows is None or not set(PAGE_ROW_COLUMNS) <= set(keep):
        table = pd.DataFrame({name: written[name] for name in keep})
        return table if rows is None else rows(table)
    # The rows are chosen on their own columns first, then only those rows are built.
    chosen = rows(pd.DataFrame({name: written[name] for name in keep
                                if name in PAGE_ROW_COLUMNS})).index
    at = chosen.tolist()
    return pd.DataFrame({name: [written[name][i] for i in at] for name in keep}, index=chosen)


def _read_table(path: Path, numbers: Iterable[str] = (), columns: Iterable[str] | None = None,
                rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                written: dict[str, list[str]] | None = None) -> pd.DataFrame:
    wanted = None if columns is None else set(columns)
    table = None if written is None else _written_table(written, wanted, rows)
    if table is None:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            usecols=None if wanted is None else lambda c: c.strip() in wanted)
        table.columns = [c.strip() for c in table.columns]
        # Cells are stripped only in a column that has a cell to strip (none, in the files
        # this tool writes): stripping millions of cells one by one costs more than the page.
        for i in range(table.shape[1]):
            column = table.iloc[:, i]
            if _has_edge_space(column.tolist()):
                table.iloc[:, i] = column.str.strip()
        if rows is not None:
            table = rows(table)
    for name in numbers:
        if name in table.columns:
            table[name] = pd.to_numeric(table[name].replace("", "nan"), errors="coerce")
    return table


def read_folder(folder: Path | str, written: Written | None = None) -> Folder:
    """The files of a run folder that the page is built from; `written` may hold cells of
    some of them as just written there (the same table, read without parsing)."""
    path = Path(folder)
    written = written or {}
    if not (path / MANIFEST).is_file():
        raise UsageError(f"{path}: not a run folder (no manifest.json)")
    missing = [name for name in ALWAYS_TABLES if not (path / name).is_file()]
    if missing:
        raise UsageError(f"{path}: not a complete run folder (missing {', '.join(missing)})")
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    amounts = columns_of_kind(USD, SHARE, REAL, EXACT, COUNT)
    inputs = path / "inputs"
    states = (_read_table(inputs / "states.csv") if (inputs / "states.csv").is_file()
              else pd.DataFrame(columns=["iso3", "name", "region", "income_group"]))
    sources = (_read_table(inputs / "sources.csv") if (inputs / "sources.csv").is_file()
               else pd.DataFrame(columns=["source_id", "name", "kind", "instrument"]))
    policy_path = path / "policy.toml"
    policy_text = policy_path.read_text(encoding="utf-8") if policy_path.is_file() else ""
    try:
        policy = tomllib.loads(policy_text)
    except tomllib.TOMLDecodeError:
        policy = {}
    stage1 = path / "stage1_constraints.csv"
    levels = path / "levels.csv"
    summary = path / "states_summary.csv"
    return Folder(
        path=path, manifest=manifest,
        allocations=_read_table(path / "allocations.csv", amounts,
                                written=written.get("allocations.csv")),
        coverage=_read_table(path / "coverage.csv", amounts, written=written.get("coverage.csv")),
        sources_summary=_read_table(path / "sources_summary.csv", amounts,
                                    written=written.get("sources_summary.csv")),
        constraints=_read_table(path / "constraints.csv", amounts, CONSTRAINT_COLUMNS,
                                _page_rows, written.get("constraints.csv")),
        stage1_constraints=(_read_table(stage1, amounts, CONSTRAINT_COLUMNS, _page_rows,
                                        written.get(stage1.name))
                            if stage1.is_file() else None),
        levels=(_read_table(levels, amounts, written=written.get(levels.name))
                if levels.is_file() else None),
        states=states, sources=sources, policy_text=policy_text, policy=policy,
        states_summary=(_read_table(summary, amounts, written=written.get(summary.name))
                        if summary.is_file() else None),
        selection=(_read_table(path / "selection.csv", amounts,
                               written=written.get("selection.csv"))
                   if (path / "selection.csv").is_file() else None),
        performance=(_read_table(path / "performance.csv", amounts,
                                 written=written.get("performance.csv"))
                     if (path / "performance.csv").is_file() else None),
        pacing=(_read_table(path / "constraints.csv", amounts, CONSTRAINT_COLUMNS, _pacing_rows,
                            written.get("constraints.csv"))
                if isinstance(manifest.get("cycle"), dict) else None),
    )


# ---------------------------------------------------------------- what the page says

# Families whose rules `Names.short` words alike whatever their keys: a levels page names
# thousands of gaps held at the floor.
_SAME_SHORT = frozenset({"gap", "floor"})


class Names:
    """Readable names of sources, States and targets, and rules in plain words."""

    def __init__(self, folder: Folder) -> None:
        self.state = dict(zip(folder.states["iso3"], folder.states["name"], strict=True))
        self.source = dict(zip(folder.sources["source_id"], folder.sources["name"],
                               strict=True))
        limits = folder.policy.get("limits", {})
        self.kappa = limits.get("max_state_share", 1.0)
        self.theta = folder.policy.get("thematic", {}).get("min_share", {})

    def of_state(self, iso3: str) -> str:
        """A State's name, or its iso3 when the copy of states.csv is missing."""
        return self.state.get(iso3, iso3)

    def of_source(self, source_id: str) -> str:
        """A source's name, or its id."""
        return self.source.get(source_id, source_id)

    @staticmethod
    def of_target(target: str) -> str:
        """'10.7 safe, orderly migration policies'."""
        named = TARGET_NAMES.get(target)
        return f"{target} {named}" if named else f"target {target}"

    def short(self, name: str) -> str:
        """A rule in a few words, for a table cell: 'budget of Germany grant'."""
        family, _, rest = name.partition("[")
        keys = rest.rstrip("]").split(",") if rest else []
        if family == "gap":
            return "gap fully funded"
        if family == "budget" and keys:
            return f"budget of {self.of_source(keys[0])}"
        if family == "absorb" and keys:
            return f"absorption of {self.of_state(keys[0])}"
        if family == "state_share" and keys:
            return f"share cap of {self.of_state(keys[0])}"
        if family == "source_state" and len(keys) == 2:
            return f"cap of {self.of_source(keys[0])} in {self.of_state(keys[1])}"
        if family == "pace_down" and keys:
            return f"pacing: the least for {self.of_state(keys[0])}"
        if family == "pace_up" and keys:
            return f"pacing: the most for {self.of_state(keys[0])}"
        if family == "thematic" and keys:
            return f"thematic share of {keys[0]}"
        if family == "floor":
            return "equity floor"
        return name

    def summary(self, names: list[str]) -> str:
        """Several rules in a few words: single rules named, many of one family counted."""
        by_family: dict[str, list[str]] = {}
        for name in names:
            by_family.setdefault(name.partition("[")[0], []).append(name)
        plural = {"budget": "budgets of {n} sources", "source_state": "{n} per-State caps",
                  "absorb": "absorption of {n} States", "state_share": "share caps of {n} States",
                  "thematic": "{n} thematic shares"}
        parts = []
        for family, members in by_family.items():
            if len(members) > 1 and family in plural:
                parts.append(plural[family].format(n=len(members)))
            elif family in _SAME_SHORT:
                parts.append(self.short(members[0]))
            else:
                parts.extend(dict.fromkeys(self.short(m) for m in members))
        return "; ".join(parts)

    def rule(self, name: str, rhs: float | None = None) -> str:
        """A constraint row such as `gap[KEN,10.7]` in plain words."""
        family, _, rest = name.partition("[")
        keys = rest.rstrip("]").split(",") if rest else []
        limit = f" ({usd(rhs)})" if rhs is not None and not math.isnan(rhs) else ""
        if family == "budget" and keys:
            return f"{self.of_source(keys[0])} has placed its whole pledge{limit}"
        if family == "gap" and len(keys) == 2:
            return (f"{self.of_state(keys[0])}'s gap for {self.of_target(keys[1])} "
                    f"is funded up to its fundable need{limit}")
        if family == "absorb" and keys:
            return f"{self.of_state(keys[0])} can absorb no more{limit}"
        if family == "state_share" and keys:
            return (f"{self.of_state(keys[0])} has reached the cap of "
                    f"{percent(self.kappa)} of all pledges{limit}")
        if family == "source_state" and len(keys) == 2:
            return (f"{self.of_source(keys[0])} has reached its cap for "
                    f"{self.of_state(keys[1])}{limit}")
        if family == "pace_down" and keys:
            return f"pacing: the least for {self.of_state(keys[0])}"
        if family == "pace_up" and keys:
            return f"pacing: the most for {self.of_state(keys[0])}"
        if family == "thematic" and keys:
            share = self.theta.get(keys[0])
            at_least = f"at least {percent(share)} of" if share is not None else "its share of"
            return f"{self.of_target(keys[0])} must receive {at_least} all money"
        if family == "floor" and len(keys) == 2:
            return (f"{self.of_state(keys[0])}'s gap for {self.of_target(keys[1])} "
                    "is held at the equity floor")
        if family == "level" and len(keys) == 2:
            return (f"{self.of_state(keys[0])}'s gap for {self.of_target(keys[1])} "
                    "rises with the level")
        return name


@dataclass
class Headline:
    """The figures at the top of the page (checked against manifest.json by the tests)."""

    floor: float | None
    allocated_usd: float
    pledged_usd: float
    fundable_usd: float
    loans_usd: float
    states_reached: int
    states_with_need: int
    unallocated_usd: float


def headline(folder: Folder) -> Headline:
    """The headline figures, from the written tables."""
    allocations, coverage = folder.allocations, folder.coverage
    sources = folder.sources.set_index("source_id") if len(folder.sources) else None
    instrument = (allocations["source_id"].map(sources["instrument"]) if sources is not None
                  else pd.Series("", index=allocations.index))
    by_state = coverage.groupby("iso3")[["fundable_usd", "allocated_usd"]].sum()
    return Headline(
        floor=folder.manifest.get("objective", {}).get("floor"),
        allocated_usd=_cents_sum(allocations["amount_usd"]),
        pledged_usd=_cents_sum(folder.sources_summary["pledge_usd"]),
        fundable_usd=_cents_sum(coverage["fundable_usd"]),
        loans_usd=_cents_sum(allocations.loc[instrument == "loan", "amount_usd"]),
        states_reached=int((by_state["allocated_usd"] > 0).sum()),
        states_with_need=int((by_state["fundable_usd"] > 0).sum()),
        unallocated_usd=_cents_sum(folder.sources_summary["unallocated_usd"]),
    )


def _cents_sum(values: pd.Series) -> float:
    # Amounts are written in cents: summing whole cents keeps the total exact.
    return float(pd.Series(values).mul(100).round().sum()) / 100


def share_of(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def binding_rows(constraints: pd.DataFrame, threshold: float = POSITIVE_DUAL) -> pd.DataFrame:
    found = constraints[constraints["dual"].abs() > threshold]
    return found.reindex(found["dual"].abs().sort_values(ascending=False, kind="stable").index)
