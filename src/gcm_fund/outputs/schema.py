"""The run folder's contract as data: its file names, its tables and their columns.

Like the inputs' `schema.INPUT_FILES`, every output column is declared once here (name,
kind, unit, meaning); the writer takes its number formats from the kinds, `certify` its
column lists, the workbook its table order and text columns, the page the columns it
reads. Nothing here knows the engine: `audit` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Names at the top of a run folder besides the tables.
MANIFEST = "manifest.json"
REPORT = "report.html"
POLICY_COPY = "policy.toml"
INPUT_COPY_DIR = "inputs"
DIAGNOSIS = "diagnosis.json"  # an infeasible run's only file

# Column kinds, each written in one format (`writing.amount`, `share`, `real`, `boolean`;
# text and whole numbers as they are).
TEXT, USD, SHARE, REAL, BOOLEAN, COUNT = "text", "USD", "share", "real", "true/false", "count"
# A real that certify reads back into a proof (duals, levels): every digit of a double, so
# that a bound summed over USD 1e12 of rows still holds a USD 1 gap to the cent.
EXACT = "exact real"
MONEY = "money"  # an amount in its own currency, two decimals like USD


@dataclass(frozen=True)
class OutputColumn:
    """One column of an output table."""

    name: str
    kind: str
    meaning: str


@dataclass(frozen=True)
class OutputTable:
    """One CSV table of a run folder, keyed by `key`. `when`: "always", "stage 1" (when
    stage 1 solved), "levels" (under a method with level results), "contributions"
    (when the inputs have contributions.csv) or "history" (history.csv); `on_page`: the
    page reads it (the writer hands the page its cells as written)."""

    name: str
    columns: tuple[OutputColumn, ...]
    key: tuple[str, ...]
    when: str = "always"
    on_page: bool = True

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns in the order written."""
        return tuple(c.name for c in self.columns)

    @property
    def stem(self) -> str:
        """The file name without `.csv` (the workbook's sheet name)."""
        return self.name.removesuffix(".csv")


_KEYS = (OutputColumn("source_id", TEXT, "the source"), OutputColumn("iso3", TEXT, "the State"),
         OutputColumn("target", TEXT, "the SDG target"))
_ROW = (OutputColumn("name", TEXT, "the rule's row, family[keys]"),
        OutputColumn("family", TEXT, "the rule family (docs/model.md)"),
        *(OutputColumn(c.name, TEXT, f"{c.meaning} of the row, blank where none")
          for c in _KEYS),
        OutputColumn("lhs", USD, "the row's left-hand side at the allocation written"),
        OutputColumn("rhs", USD, "its right-hand side"),
        OutputColumn("slack", USD, "how far the row is from binding"),
        OutputColumn("dual", EXACT, "d objective / d rhs"))
_LEVELS_OF_GAP = (OutputColumn("priority", REAL, "pi: the gap's priority"),
                  OutputColumn("level", EXACT, "the level the gap stopped at"),
                  OutputColumn("stopped_by", TEXT, "the rows whose duals stopped it"),
                  OutputColumn("step", COUNT, "the filling step that stopped it"),
                  OutputColumn("level_rank", COUNT, "the rank of its level among the run's "
                               "distinct levels, 1 the lowest: the same on every solver"))

ALLOCATIONS = OutputTable("allocations.csv", (
    *_KEYS, OutputColumn("amount_usd", USD, "x: what the source gives the gap")),
    key=("source_id", "iso3", "target"))
COVERAGE = OutputTable("coverage.csv", (
    OutputColumn("iso3", TEXT, "the State"), OutputColumn("target", TEXT, "the SDG target"),
    OutputColumn("need_usd", USD, "the gap's need"),
    OutputColumn("fundable_usd", USD, "U: the share of the need the fund may cover"),
    OutputColumn("allocated_usd", USD, "what the gap received"),
    OutputColumn("coverage", SHARE, "allocated / fundable"),
    OutputColumn("eligible", BOOLEAN, "whether any source may fund the gap"),
    *_LEVELS_OF_GAP), key=("iso3", "target"))
SOURCES_SUMMARY = OutputTable("sources_summary.csv", (
    OutputColumn("source_id", TEXT, "the source"), OutputColumn("pledge_usd", USD, "B_f"),
    OutputColumn("allocated_usd", USD, "what it gave"),
    OutputColumn("unallocated_usd", USD, "what it kept"),
    OutputColumn("marginal_value", EXACT, "its budget row's dual (weighted); under levels "
                 "the lowest level it can lift, per USD, by re-solve (docs/model.md)"),
    OutputColumn("grant_equivalent_usd", USD, "sum of g_f x over its rows (docs/terms.md)"),
    OutputColumn("placed_per_usd", REAL, "under levels: money the fund places per USD "
                 "more of its pledge, by re-solve"),
    OutputColumn("additionality", REAL, "under levels: of that, what reaches the gaps it "
                 "may fund, by re-solve")),
    key=("source_id",))
STATES_SUMMARY = OutputTable("states_summary.csv", (
    OutputColumn("iso3", TEXT, "the State"), OutputColumn("name", TEXT, "its name"),
    OutputColumn("income_group", TEXT, "its income group"),
    OutputColumn("ldc", BOOLEAN, "least developed country"),
    OutputColumn("debt_risk", TEXT, "risk of debt distress, or unrated"),
    OutputColumn("need_usd", USD, "its gaps' need"),
    OutputColumn("fundable_usd", USD, "its gaps' fundable need"),
    OutputColumn("allocated_usd", USD, "what it received"),
    OutputColumn("grants_usd", USD, "of which grants"),
    OutputColumn("loans_usd", USD, "of which loans"),
    OutputColumn("grant_equivalent_usd", USD, "sum of g_f x"),
    OutputColumn("loan_share", SHARE, "loans / allocated, blank when nothing is allocated"),
    OutputColumn("coverage", SHARE, "allocated / fundable, blank when fundable is 0")),
    key=("iso3",))
CONSTRAINTS = OutputTable("constraints.csv", _ROW, key=("name",))
STAGE1_CONSTRAINTS = OutputTable("stage1_constraints.csv", _ROW, key=("name",), when="stage 1")
LEVELS = OutputTable("levels.csv", (
    OutputColumn("step", COUNT, "the filling step"), OutputColumn("level", EXACT, "its level L"),
    OutputColumn("gaps_stopped", COUNT, "how many gaps stopped at it"),
    OutputColumn("stopped_by", TEXT, "the rows that stopped them"),
    OutputColumn("level_rank", COUNT, "the rank of its level among the distinct levels")),
    key=("step",),
    when="levels")
LEVEL_DUALS = OutputTable("level_duals.csv", (
    OutputColumn("step", COUNT, "the filling step"), OutputColumn("name", TEXT, "a row"),
    OutputColumn("dual", EXACT, "its dual, d L / d rhs")), key=("step", "name"), when="levels",
    on_page=False)
STAGE_DUALS = OutputTable("stage_duals.csv", (
    OutputColumn("stage", TEXT, "a stage after the filling"), OutputColumn("name", TEXT, "a row"),
    OutputColumn("dual", EXACT, "its dual")), key=("stage", "name"), when="levels",
    on_page=False)

RESOURCES = OutputTable("resources.csv", (
    OutputColumn("source_id", TEXT, "the source"),
    OutputColumn("currency", TEXT, "ISO 4217 code of the amount"),
    OutputColumn("amount", MONEY, "the contribution, in its currency"),
    OutputColumn("status", TEXT, "paid, signed or pledged"),
    OutputColumn("date", TEXT, "when it was paid, signed or announced"),
    OutputColumn("usd_per_unit", REAL, "the rate used, USD per unit; 1 for USD"),
    OutputColumn("rate_date", TEXT, "the date of that rate in fx.csv; blank for USD"),
    OutputColumn("face_usd", USD, "amount x rate"),
    OutputColumn("counted_usd", USD, "face x the count of its status; 0 after the "
                 "valuation date"),
    OutputColumn("note", TEXT, "why a row counts 0")),
    key=("source_id", "date", "currency", "status"), when="contributions", on_page=False)
# With history.csv (docs/cycles.md): one row per State with history in the window.
PERFORMANCE = OutputTable("performance.csv", (
    OutputColumn("iso3", TEXT, "the State"),
    OutputColumn("committed_usd", USD, "committed over the window's cycles"),
    OutputColumn("disbursed_usd", USD, "disbursed over them"),
    OutputColumn("execution", EXACT, "e_s = disbursed / committed; blank when 0 committed"),
    OutputColumn("result", EXACT, "r_s: the committed-weighted mean result, 1 when none"),
    OutputColumn("factor", EXACT, "p_s: the performance factor, clipped")),
    key=("iso3",), when="history", on_page=False)
# Under `[allocation] method = "programmes"` (docs/programmes.md).
SELECTION = OutputTable("selection.csv", (
    OutputColumn("programme_id", TEXT, "the programme"),
    OutputColumn("name", TEXT, "its name"),
    OutputColumn("states", TEXT, "where it works, ;-joined"),
    OutputColumn("targets", TEXT, "what it serves, ;-joined"),
    OutputColumn("budget_usd", USD, "R_p: requested"),
    OutputColumn("min_usd", USD, "M_p: the smallest viable amount, as used"),
    OutputColumn("quality", REAL, "q_p: the review panel's score"),
    OutputColumn("priority", REAL, "pi_p: its gaps' priorities weighted by its shares"),
    OutputColumn("value_per_usd", REAL, "v_p = q_p pi_p"),
    OutputColumn("funded", BOOLEAN, "whether it is funded"),
    OutputColumn("amount_usd", USD, "a_p: what it receives"),
    OutputColumn("value_loss", REAL, "the fall in V with it funded; blank where not solved"),
    OutputColumn("displaced", TEXT, "the funded programmes it would displace, ;-joined"),
    OutputColumn("reason", TEXT, "funded, partial, not_eligible or left_out, and why")),
    key=("programme_id",), when="programmes")
PROGRAMME_ALLOCATIONS = OutputTable("programme_allocations.csv", (
    OutputColumn("source_id", TEXT, "the source"),
    OutputColumn("programme_id", TEXT, "the programme"),
    OutputColumn("amount_usd", USD, "x[f,p]: what the source gives the programme")),
    key=("source_id", "programme_id"), when="programmes", on_page=False)
RELAXATION_DUALS = OutputTable("relaxation_duals.csv", (
    OutputColumn("name", TEXT, "a row of the programme model"),
    OutputColumn("dual", EXACT, "its dual in the LP relaxation, d value / d rhs")),
    key=("name",), when="programmes", on_page=False)

KEY_COLUMNS = tuple(c.name for c in _KEYS)  # a constraints row's keys, blank where none

# Every table, in the order a reader wants them (the workbook's sheets).
OUTPUT_TABLES: dict[str, OutputTable] = {t.name: t for t in (
    COVERAGE, ALLOCATIONS, SOURCES_SUMMARY, STATES_SUMMARY, CONSTRAINTS, STAGE1_CONSTRAINTS,
    LEVELS, LEVEL_DUALS, STAGE_DUALS, RESOURCES, PERFORMANCE, SELECTION, PROGRAMME_ALLOCATIONS,
    RELAXATION_DUALS)}
# The tables every solved run writes, whatever its method.
ALWAYS_TABLES = tuple(name for name in ("allocations.csv", "coverage.csv",
                                        "sources_summary.csv", "constraints.csv"))

# coverage.csv's columns under every method (the levels add `_LEVELS_OF_GAP`).
COVERAGE_COLUMNS = COVERAGE.column_names[: len(COVERAGE.columns) - len(_LEVELS_OF_GAP)]

# Every name a run (or an infeasible run's diagnosis) writes at the top of its folder.
RUN_FILES = frozenset({*OUTPUT_TABLES, MANIFEST, REPORT, POLICY_COPY, DIAGNOSIS,
                       INPUT_COPY_DIR})

# What the page reads of a constraints table: these columns of the rows that bind.
PAGE_CONSTRAINT_COLUMNS = ("name", "family", "rhs", "slack", "dual")


def column_kinds() -> dict[str, str]:
    """The kind of every output column by name (a name has one kind in every table)."""
    kinds: dict[str, str] = {}
    for table in OUTPUT_TABLES.values():
        for column in table.columns:
            assert kinds.setdefault(column.name, column.kind) == column.kind, column.name
    return kinds


def columns_of_kind(*kinds: str, method_columns: bool = True) -> frozenset[str]:
    """The columns of these kinds in any table; with `method_columns=False` only in the
    tables every run writes, as every method writes them."""
    tables = (OUTPUT_TABLES.values() if method_columns
              else [OUTPUT_TABLES[name] for name in ALWAYS_TABLES])
    found: set[str] = set()
    for table in tables:
        columns = table.column_names
        if table is COVERAGE and not method_columns:
            columns = COVERAGE_COLUMNS
        kind = {c.name: c.kind for c in table.columns}
        found.update(name for name in columns if kind[name] in kinds)
    return frozenset(found)


def formats() -> dict[str, str]:
    """The kind of every column written in a format of its own (numbers, true/false)."""
    return {name: kind for name, kind in column_kinds().items()
            if kind in (USD, MONEY, SHARE, REAL, EXACT, BOOLEAN)}


# ---------------------------------------------------------------------------------------
# The follow-up and review folder (`gcm-fund review`, docs/review.md): not a run folder.

REVIEW_PAGE = "review.html"
_CYCLE = OutputColumn("cycle", COUNT, "the cycle (history.csv)")
_REVIEWED = (
    OutputColumn("committed_usd", USD, "what the fund committed in the cycle"),
    OutputColumn("disbursed_usd", USD, "what was paid out of it by the review"),
    OutputColumn("execution", SHARE, "disbursed / committed; blank when nothing committed"),
    OutputColumn("result", SHARE, "the committed-weighted mean of the reported results; "
                 "blank when none is reported"),
    OutputColumn("flags", TEXT, "low_execution (under 0.5), low_results (under 0.5); "
                 ";-joined, blank when none"))
REVIEW_STATES = OutputTable("review_states.csv", (
    _CYCLE, OutputColumn("iso3", TEXT, "the State"), OutputColumn("name", TEXT, "its name"),
    OutputColumn("region", TEXT, "its region"),
    OutputColumn("income_group", TEXT, "its income group"), *_REVIEWED),
    key=("cycle", "iso3"))
REVIEW_TARGETS = OutputTable("review_targets.csv", (
    _CYCLE, OutputColumn("target", TEXT, "the SDG target"), *_REVIEWED),
    key=("cycle", "target"))
REVIEW_REGIONS = OutputTable("review_regions.csv", (
    _CYCLE, OutputColumn("region", TEXT, "the region"), *_REVIEWED), key=("cycle", "region"))
REVIEW_DONORS = OutputTable("review_donors.csv", (
    OutputColumn("donor", TEXT, "the donor State's iso3, or the source id of a source that "
                 "names none"),
    OutputColumn("sources", TEXT, "its sources, ;-joined"),
    OutputColumn("pledged_usd", USD, "its sources' B_f, as allocate counts them"),
    OutputColumn("face_usd", USD, "face USD of its contributions dated on or before the "
                 "valuation date; blank without contributions"),
    OutputColumn("paid_usd", USD, "of which paid"),
    OutputColumn("paid_share", SHARE, "paid / face"),
    OutputColumn("fair_share_usd", USD, "its fair share (fair-share, GNI basis)"),
    OutputColumn("paid_of_fair_share", SHARE, "paid / fair share"),
    OutputColumn("flags", TEXT, "low_payment (paid under 0.8 of face); blank when none")),
    key=("donor",))
REVIEW_TABLES: dict[str, OutputTable] = {t.name: t for t in (
    REVIEW_STATES, REVIEW_TARGETS, REVIEW_REGIONS, REVIEW_DONORS)}
# Every name a review folder holds.
REVIEW_FILES = frozenset({*REVIEW_TABLES, REVIEW_PAGE})
