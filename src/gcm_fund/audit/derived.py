"""Checks that every table and figure derived from the allocation says what it says.

coverage.csv, sources_summary.csv and the manifest's totals, run id and policy name are
recomputed from allocations.csv, constraints.csv and the copied inputs and policy, and
compared: a forged figure in any of them is named with its file, line and column.
report.html is rendered again from the certified files and compared byte for byte, when
this is the tool version (and plotly version) that made it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.audit.common import cents_of, parse_numbers, sum_cents, text_cents
from gcm_fund.audit.folder import (
    COVERAGE_COLUMNS,
    SOURCES_COLUMNS,
    STATES_COLUMNS,
    STATES_SUMMARY,
    RunFolder,
)
from gcm_fund.audit.level_stages import grants_of
from gcm_fund.audit.rules import debt_risk_of
from gcm_fund.audit.tolerances import SAME_CENT
from gcm_fund.inputs.csv_input import sha256_bytes
from gcm_fund.model.spec import POSITIVE_DUAL, run_id

# coverage is written with 6 decimals: half a unit of the last, and float noise.
SAME_SHARE = 5.1e-7
# A dual copied from constraints.csv: both are written with 12 significant digits.
SAME_DUAL = 1e-11


def _near(got: np.ndarray, expected: np.ndarray, absolute: float) -> np.ndarray:
    """Where two figures agree within `absolute` plus 1e-12 relative (NaN never does)."""
    return np.abs(got - expected) <= absolute + 1e-12 * np.abs(expected)


def _keyed(table: pd.DataFrame, name: str, keys: list[str], expected: pd.DataFrame,
           problems: list[str]) -> np.ndarray:
    """For each expected row, its line in `table` (-1 when absent); repeats and rows
    that are no key of the inputs are problems."""
    index = pd.MultiIndex.from_frame(table[keys])
    repeated = index.duplicated()
    problems.extend(f"{name}:{i + 2}: {','.join(index[i])} repeats an earlier row"
                    for i in np.nonzero(repeated)[0])
    first = pd.MultiIndex.from_frame(table[keys][~repeated])
    lines = np.nonzero(~repeated)[0]
    want = pd.MultiIndex.from_frame(expected[keys])
    at = first.get_indexer(want)
    problems.extend(f"{name}: no row for {','.join(want[g])}" for g in np.nonzero(at < 0)[0])
    extra = ~first.isin(want)
    problems.extend(f"{name}:{lines[i] + 2}: {','.join(first[i])} is no "
                    f"{'gap' if len(keys) == 2 else 'source'} of the inputs"
                    for i in np.nonzero(extra)[0])
    if not len(lines):  # a header and no rows: every expected row is absent
        return np.full(len(want), -1)
    return np.where(at >= 0, lines[np.maximum(at, 0)], -1)


def _compare(table: pd.DataFrame, name: str, column: str, at: np.ndarray,
             expected: np.ndarray, absolute: float, labels: list[str],
             problems: list[str], blank: np.ndarray | None = None) -> None:
    """Cells of `column` at lines `at` against `expected` (blank where `blank`)."""
    cells = table[column].to_numpy()
    got = np.full(len(at), np.nan)
    got[at >= 0] = parse_numbers(table[column])[at[at >= 0]]
    text = np.full(len(at), "", dtype=object)
    text[at >= 0] = cells[at[at >= 0]]
    blank = np.zeros(len(at), dtype=bool) if blank is None else blank
    off = (at >= 0) & ~blank & ~_near(got, expected, absolute)
    problems.extend(f"{name}:{at[i] + 2}: {labels[i]}: {column} {text[i]!r}, recomputed "
                    f"{expected[i]:.12g}" for i in np.nonzero(off)[0])
    off_blank = (at >= 0) & blank & (text != "")
    problems.extend(f"{name}:{at[i] + 2}: {labels[i]}: {column} {text[i]!r}, expected blank"
                    for i in np.nonzero(off_blank)[0])


def _compare_cents(table: pd.DataFrame, name: str, column: str, at: np.ndarray,
                   expected: np.ndarray, size_usd: np.ndarray, labels: list[str],
                   problems: list[str]) -> None:
    """Cells of `column` at lines `at` against sums in whole cents (`expected`), in
    integers: the same cent, or within half the spacing of doubles of `size_usd` (the size
    of the figures the written one was taken from) where a double holds no longer every
    cent (above about USD 7e13)."""
    found = at >= 0
    cents, written = text_cents(table[column])
    got = np.zeros(len(at), dtype=np.int64)
    got[found] = cents[at[found]]
    two_decimals = np.zeros(len(at), dtype=bool)
    two_decimals[found] = written[at[found]]
    allowed = np.floor(50.0 * np.spacing(np.abs(size_usd)) + 0.5).astype(np.int64)
    off = found & (~two_decimals | (np.abs(got - expected) > allowed))
    cells = table[column].to_numpy()
    problems.extend(f"{name}:{at[i] + 2}: {labels[i]}: {column} {cells[at[i]]!r}, recomputed "
                    f"{_cents_text(int(expected[i]))}" for i in np.nonzero(off)[0])


def _cents_text(cents: int) -> str:
    """Whole cents as a USD amount with two decimals."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def check_coverage(c: Certifier) -> None:
    """coverage.csv: need, fundable, allocated, coverage and eligibility, every gap."""
    rules = c.rules
    table = c.run.table("coverage.csv", COVERAGE_COLUMNS)
    gaps = rules.gaps
    problems: list[str] = []
    at = _keyed(table, "coverage.csv", ["iso3", "target"], gaps, problems)
    labels = [f"{i},{t}" for i, t in zip(gaps["iso3"], gaps["target"], strict=True)]
    gap_of = rules.triples["gap"].to_numpy(dtype=int)
    allocated_cents = sum_cents(gap_of, c.cents, len(gaps))
    allocated = allocated_cents / 100.0
    fundable = gaps["fundable_usd"].to_numpy(dtype=float)
    for column, expected in (("need_usd", gaps["need_usd"].to_numpy(dtype=float)),
                             ("fundable_usd", fundable)):
        _compare(table, "coverage.csv", column, at, expected, SAME_CENT, labels, problems)
    _compare_cents(table, "coverage.csv", "allocated_usd", at, allocated_cents, allocated,
                   labels, problems)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(fundable > 0, allocated / fundable, np.nan)
    _compare(table, "coverage.csv", "coverage", at, share, SAME_SHARE, labels, problems,
             blank=~(fundable > 0))
    eligible = np.where(gaps["eligible"].to_numpy(dtype=bool), "true", "false")
    cells = table["eligible"].to_numpy()
    problems.extend(f"coverage.csv:{at[g] + 2}: {labels[g]}: eligible {cells[at[g]]!r}, "
                    f"recomputed {eligible[g]}" for g in range(len(gaps))
                    if at[g] >= 0 and cells[at[g]] != eligible[g])
    c.add(Check("coverage.csv", not problems,
                f"{len(gaps)} gaps: need, fundable, allocated, coverage and eligible as "
                "recomputed from the inputs and allocations.csv",
                f"allocated summed in whole cents, exact; {SAME_CENT} USD; coverage "
                f"{SAME_SHARE:g}", problems))


def _relative(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Where figures written with 12 significant digits agree (NaN never does)."""
    return np.abs(got - expected) <= SAME_DUAL * np.abs(expected)


def _stopping_rules(c: Certifier, duals: pd.DataFrame, step_of: np.ndarray, n_steps: int
                    ) -> tuple[list[list[str]], dict[int, list[str]]]:
    """docs/model.md's stopping rules from level_duals.csv: per step, the rules (no level or
    held row) with a positive dual, `gap[...]` first; and for each gap, those of the rules
    of the step that stopped it (`step_of`, 0 for none) whose row holds one of the gap's
    allocation columns."""
    rules = c.rules
    index = {name: r for r, name in enumerate(rules.rows["name"])}
    threshold = POSITIVE_DUAL / c.run.solved_scale  # the duals are written per USD
    steps = parse_numbers(duals["step"])
    values = parse_numbers(duals["dual"])
    gap_of = rules.triples["gap"].to_numpy(dtype=int)
    entry_gap = gap_of[rules.entry_col]
    # The gaps allocated[total] holds: every one with a grant column (it counts grants only).
    placing = np.unique(gap_of[grants_of(rules) > 0])
    per_step: list[list[str]] = []
    per_gap: dict[int, list[str]] = {}
    for k in range(1, n_steps + 1):
        here = (steps == k) & (np.abs(values) > threshold)
        names = [str(n) for n in duals["name"].to_numpy()[here]
                 if str(n).partition("[")[0] not in ("level", "held")]
        names.sort(key=lambda n: n.partition("[")[0] != "gap")  # stable: gap rows first
        per_step.append(names)
        position = np.full(len(rules.rows), -1)
        for at, name in enumerate(names):
            if name in index:  # a name that is no row of the step: its proof names it
                position[index[name]] = at
        entry_at = position[rules.entry_row]
        chosen = (entry_at >= 0) & (step_of[entry_gap] == k)
        pairs = [entry_gap[chosen] * len(names) + entry_at[chosen]]
        if "allocated[total]" in names:
            stopped = placing[step_of[placing] == k]
            pairs.append(stopped * len(names) + names.index("allocated[total]"))
        for pair in np.unique(np.concatenate(pairs)).tolist():
            per_gap.setdefault(pair // len(names), []).append(names[pair % len(names)])
    return per_step, per_gap


def check_level_columns(c: Certifier) -> None:
    """coverage.csv's `priority`, `level` and `stopped_by`, and levels.csv's
    `gaps_stopped` and `stopped_by` (docs/model.md), recomputed from the copied inputs, the
    allocation and the duals of level_duals.csv (whose steps certify_levels proves)."""
    from gcm_fund.audit.levels import priorities

    rules, run = c.rules, c.run
    gaps = rules.gaps
    table = run.table("coverage.csv", ("iso3", "target", "priority", "level", "stopped_by",
                                       "step"))
    levels = run.table("levels.csv", ("step", "gaps_stopped", "stopped_by"))
    duals = run.table("level_duals.csv", ("step", "name", "dual"))
    problems: list[str] = []
    at = _keyed(table, "coverage.csv", ["iso3", "target"], gaps, problems)
    labels = [f"{i},{t}" for i, t in zip(gaps["iso3"], gaps["target"], strict=True)]
    pi = priorities(rules)
    gap_of = rules.triples["gap"].to_numpy(dtype=int)
    in_e = np.bincount(gap_of, minlength=len(gaps)) > 0
    fundable = gaps["fundable_usd"].to_numpy(dtype=float)
    allocated = np.bincount(gap_of, weights=c.x, minlength=len(gaps))
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(in_e, allocated / fundable / pi, np.nan)
    for column, expected, blank in (("priority", pi, None), ("level", level, ~in_e)):
        cells = table[column].to_numpy()
        got = np.full(len(at), np.nan)
        got[at >= 0] = parse_numbers(table[column])[at[at >= 0]]
        blank = np.zeros(len(at), dtype=bool) if blank is None else blank
        for g in np.nonzero((at >= 0) & ~blank & ~_relative(got, expected))[0]:
            problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: {column} "
                            f"{cells[at[g]]!r}, recomputed {expected[g]:.12g}")
        for g in np.nonzero((at >= 0) & blank)[0]:
            if cells[at[g]] != "":
                problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: {column} "
                                f"{cells[at[g]]!r}, expected blank (outside E)")
    steps = parse_numbers(levels["step"])
    n_steps = len(steps)
    step_of = np.zeros(len(gaps), dtype=int)
    written_steps = parse_numbers(table["step"])
    has = (at >= 0) & in_e
    step_of[has] = np.nan_to_num(written_steps[at[has]], nan=0.0).astype(int)
    step_of[(step_of < 1) | (step_of > n_steps)] = 0  # certify_levels names such a step
    per_step, per_gap = _stopping_rules(c, duals, step_of, n_steps)
    cells = table["stopped_by"].to_numpy()
    for g in np.nonzero(at >= 0)[0]:
        expected_by = ";".join(per_gap.get(int(g), []))
        if cells[at[g]] != expected_by:
            problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: stopped_by "
                            f"{cells[at[g]]!r}, recomputed {expected_by!r}")
    counts = np.bincount(step_of[in_e], minlength=n_steps + 1)
    for line, (k, count, by) in enumerate(zip(steps, levels["gaps_stopped"],
                                              levels["stopped_by"], strict=True), start=2):
        if not (k == k and 1 <= k <= n_steps and k == int(k)):
            continue  # certify_levels names a step that is not one
        if count != str(counts[int(k)]):
            problems.append(f"levels.csv:{line}: step {int(k)}: gaps_stopped {count!r}, "
                            f"recomputed {counts[int(k)]} (the gaps of coverage.csv at the "
                            "step)")
        expected_by = ";".join(per_step[int(k) - 1])
        if by != expected_by:
            problems.append(f"levels.csv:{line}: step {int(k)}: stopped_by {by!r}, "
                            f"recomputed {expected_by!r}")
    ranked = ""
    if "level_rank" in table.columns:  # (a run folder of an earlier version has none)
        _check_ranks(c, table, at, labels, level, fundable * pi, problems)
        ranked = " and level_rank ordered by level"
    c.add(Check("level columns", not problems,
                f"{len(gaps)} gaps and {n_steps} steps: coverage.csv's priority, level and "
                "stopped_by and levels.csv's gaps_stopped and stopped_by as recomputed from "
                f"the inputs, allocations.csv and level_duals.csv{ranked}",
                f"{SAME_DUAL:g} relative; the rest exact", problems))


def _check_ranks(c: Certifier, table: pd.DataFrame, at: np.ndarray, labels: list[str],
                 level: np.ndarray, per_level_usd: np.ndarray, problems: list[str]) -> None:
    """coverage.csv's `level_rank`: blank outside E, else a whole number from 1 to the
    manifest's `levels`, and never below the rank of a gap whose level is lower by more
    than rounding (1e-6 relative plus two cents of its amount)."""
    count = c.run.number("objective", "levels")
    cells = table["level_rank"].to_numpy()
    written = np.full(len(at), np.nan)
    written[at >= 0] = parse_numbers(table["level_rank"])[at[at >= 0]]
    in_e = np.isfinite(level) & (at >= 0)
    for g in np.nonzero((at >= 0) & ~np.isfinite(level))[0]:
        if cells[at[g]] != "":
            problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: level_rank "
                            f"{cells[at[g]]!r}, expected blank (outside E)")
    whole = np.isfinite(written) & (written == np.round(written)) & (written >= 1) & (
        written <= (count if count is not None else np.inf))
    for g in np.nonzero(in_e & ~whole)[0]:
        problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: level_rank "
                        f"{cells[at[g]]!r}, expected a whole number from 1 to the "
                        f"manifest's levels ({count})")
    ok = np.nonzero(in_e & whole)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = 1e-6 * np.abs(level[ok]) + 0.02 / per_level_usd[ok]
    # A gap is clearly below another when its level's upper reach (a cent gap's written
    # level is uncertain by a wide margin) stays under the other's lower reach.
    by_upper = np.argsort(level[ok] + slack, kind="stable")
    upper, ranks = (level[ok] + slack)[by_upper], written[ok][by_upper]
    most = np.maximum.accumulate(ranks) if len(ranks) else ranks
    below = np.searchsorted(upper, level[ok] - slack, side="left")
    for i in np.nonzero(below > 0)[0]:
        g = ok[i]
        if written[g] < most[below[i] - 1]:
            problems.append(f"coverage.csv:{at[g] + 2}: {labels[g]}: level_rank "
                            f"{cells[at[g]]}, below the rank {int(most[below[i] - 1])} of a "
                            "lower level")


def check_sources(c: Certifier) -> None:
    """sources_summary.csv: pledge, allocated, unallocated, grant equivalent and the donor
    figures, every source.

    Under weighted the marginal value is the stage-2 dual of the source's budget row in
    constraints.csv (whose duals the optimality checks prove), never below 0; blank
    without such a row. Under levels it is a re-solve (`_donor_bounds`).
    """
    rules = c.rules
    table = c.run.table("sources_summary.csv", SOURCES_COLUMNS)
    sources = rules.data.sources.reset_index(drop=True)
    problems: list[str] = []
    at = _keyed(table, "sources_summary.csv", ["source_id"], sources, problems)
    labels = sources["source_id"].tolist()
    pledge = sources["pledge_usd"].to_numpy(dtype=float)
    allocated = sum_cents(rules.triples["source"].to_numpy(dtype=int), c.cents,
                          len(sources))
    _compare(table, "sources_summary.csv", "pledge_usd", at, pledge, SAME_CENT, labels,
             problems)
    _compare_cents(table, "sources_summary.csv", "allocated_usd", at, allocated,
                   allocated / 100.0, labels, problems)
    # pledge = allocated + unallocated as written, to the cent (the pledge as written is
    # held to the input's above).
    pledge_cents = cents_of(np.nan_to_num(pledge))
    written, two_decimals = text_cents(table["pledge_usd"])
    found = (at >= 0) & two_decimals[np.maximum(at, 0)]
    pledge_cents[found] = written[at[found]]
    _compare_cents(table, "sources_summary.csv", "unallocated_usd", at,
                   pledge_cents - allocated, pledge, labels, problems)
    rule_rows = set(rules.rows["name"][rules.rows["family"] == "budget"])
    names = [f"budget[{sid}]" for sid in labels]
    has_row = np.array([n in rule_rows for n in names], dtype=bool)
    if not rules.method.has_marginal_value:  # docs/programmes.md: blank
        has_row[:] = False
    if rules.method.writes_levels:
        unsolved = set(donor_unsolved(c.run))
        what = _donor_bounds(table, at, labels,
                             has_row & ~np.isin(np.array(labels, dtype=object),
                                                list(unsolved)),
                             donor_columns(c.run), problems)
        if unsolved:
            what += f"; blank for {', '.join(sorted(unsolved))}, whose re-solve failed"
    else:
        constraints = c.run.table("constraints.csv", ("name", "family", "dual"))
        budget = (constraints["family"] == "budget").to_numpy()
        duals = dict(zip(constraints["name"][budget],
                         parse_numbers(constraints["dual"][budget]), strict=True))
        marginal = np.array([max(duals.get(n, np.nan), 0.0) if n in duals else np.nan
                             for n in names])
        _compare(table, "sources_summary.csv", "marginal_value", at, marginal, SAME_DUAL,
                 labels, problems, blank=~has_row)
        for column in ("placed_per_usd", "additionality"):
            if column in table.columns:
                _compare(table, "sources_summary.csv", column, at, marginal, 0.0,
                         labels, problems, blank=np.ones(len(labels), dtype=bool))
        what = (f"marginal value as constraints.csv's budget dual ({SAME_DUAL:g}), "
                "placed_per_usd and additionality blank")
    if "grant_equivalent_usd" in table.columns:
        equivalent = np.bincount(rules.triples["source"].to_numpy(dtype=int),
                                 weights=c.x * grant_elements(c), minlength=len(sources))
        _compare(table, "sources_summary.csv", "grant_equivalent_usd", at, equivalent,
                 SAME_CENT, labels, problems)
        what += f"; grant equivalent ({SAME_CENT} USD)"
    c.add(Check("sources_summary.csv", not problems,
                f"{len(sources)} sources: pledge, allocated and unallocated as recomputed "
                f"from the inputs and allocations.csv; {what}",
                f"allocated and unallocated in whole cents, exact; pledge {SAME_CENT} USD",
                problems))


# sources_summary.csv's donor figures under levels (docs/outputs.md).
DONOR_COLUMNS = ("marginal_value", "placed_per_usd", "additionality")


def _donor_bounds(table: pd.DataFrame, at: np.ndarray, labels: list[str],
                  has_row: np.ndarray, computed: list[str], problems: list[str]) -> str:
    """Under levels the donor figures are re-solves (docs/outputs.md), which certify cannot
    repeat without a solver (`verify` does). Nor can it bound them: money placed may grow
    faster than the pledge (grants that unlock loans under `loan_share`), and the lowest
    level of one source's gaps may fall when the leximin vector rises. It checks that each
    column the manifest records as `computed` has a number exactly for the sources with
    an eligible triple, and that every other donor column is blank."""
    for column in DONOR_COLUMNS:
        if column not in table.columns:  # (additionality: a run of an earlier version)
            continue
        got = np.full(len(at), np.nan)
        got[at >= 0] = parse_numbers(table[column])[at[at >= 0]]
        cells = table[column].to_numpy()
        for i in np.nonzero(at >= 0)[0]:
            cell = str(cells[at[i]])
            if column not in computed and cell != "":
                problems.append(f"sources_summary.csv:{at[i] + 2}: {labels[i]}: {column} "
                                f"{cell!r}, expected blank (the manifest records no "
                                f"{column} computed)")
            elif column in computed and not has_row[i] and cell != "":
                problems.append(f"sources_summary.csv:{at[i] + 2}: {labels[i]}: {column} "
                                f"{cell!r}, expected blank (no eligible triple)")
            elif column in computed and has_row[i] and not np.isfinite(got[i]):
                problems.append(f"sources_summary.csv:{at[i] + 2}: {labels[i]}: {column} "
                                f"{cell!r}, expected a number (the source has an "
                                "eligible triple)")
    blank = [c for c in DONOR_COLUMNS if c not in computed]
    said = []
    if computed:
        said.append(f"{', '.join(computed)} present exactly for the sources with an eligible "
                    "triple (re-solves: recomputed by verify, not here)")
    if blank:
        said.append(f"{', '.join(blank)} blank (not computed, as the manifest records)")
    return "; ".join(said)


def donor_unsolved(run: RunFolder) -> list[str]:
    """The sources whose donor figures' re-solve failed, as the manifest records them
    (their figures are blank)."""
    recorded = run.raw("levels", "donor_figures", "unsolved")
    return [str(s) for s in recorded] if isinstance(recorded, list) else []


def donor_columns(run: RunFolder) -> list[str]:
    """The donor figures a levels run computed, as its manifest records them (a manifest
    of an earlier version without `computed` had all three)."""
    recorded = run.raw("levels", "donor_figures")
    if recorded is None:
        return []
    computed = recorded.get("computed", list(DONOR_COLUMNS)) if isinstance(recorded, dict) \
        else list(DONOR_COLUMNS)
    return [c for c in DONOR_COLUMNS if c in computed]


def grant_elements(c: Certifier) -> np.ndarray:
    """g_f of every triple (docs/terms.md): 1 for a grant, the loan's grant element."""
    sources = c.rules.data.sources
    g = np.where((sources["instrument"] == "loan").to_numpy(),
                 sources["grant_element"].to_numpy(dtype=float), 1.0)
    return g[c.rules.triples["source"].to_numpy(dtype=int)]


def check_states(c: Certifier) -> None:
    """states_summary.csv (docs/terms.md): every figure of every State with a gap, recomputed
    from allocations.csv and the copied inputs; debt_risk from the copied states.csv."""
    rules, run = c.rules, c.run
    if not run.has(STATES_SUMMARY) and run.raw("objective", "grant_equivalent_usd") is None:
        c.add(Check(STATES_SUMMARY, True, "absent: a run folder of a version before "
                    "docs/terms.md's grant equivalents (its manifest records none)", "exact"))
        return
    table = run.table(STATES_SUMMARY, STATES_COLUMNS)
    states = rules.data.states.reset_index(drop=True)
    gap_state = rules.gaps["state"].to_numpy(dtype=int)
    n = len(states)
    has_gap = np.bincount(gap_state, minlength=n) > 0
    expected = states[has_gap].reset_index(drop=True)
    problems: list[str] = []
    at = _keyed(table, STATES_SUMMARY, ["iso3"], expected, problems)
    labels = expected["iso3"].tolist()
    state = rules.triples["state"].to_numpy(dtype=int)
    loan = rules.triples["loan"].to_numpy(dtype=bool)
    allocated = np.bincount(state, weights=c.x, minlength=n)[has_gap]
    loans = np.bincount(state, weights=c.x * loan, minlength=n)[has_gap]
    equivalent = np.bincount(state, weights=c.x * grant_elements(c), minlength=n)[has_gap]
    need = np.bincount(gap_state, weights=rules.gaps["need_usd"].to_numpy(dtype=float),
                       minlength=n)[has_gap]
    fundable = np.bincount(gap_state, weights=rules.gaps["fundable_usd"].to_numpy(dtype=float),
                           minlength=n)[has_gap]
    for column, figure in (("need_usd", need), ("fundable_usd", fundable),
                           ("allocated_usd", allocated), ("grants_usd", allocated - loans),
                           ("loans_usd", loans), ("grant_equivalent_usd", equivalent)):
        _compare(table, STATES_SUMMARY, column, at, figure, SAME_CENT, labels, problems)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(allocated > 0, loans / np.where(allocated > 0, allocated, 1.0), np.nan)
        coverage = np.where(fundable > 0, allocated / np.where(fundable > 0, fundable, 1.0),
                            np.nan)
    _compare(table, STATES_SUMMARY, "loan_share", at, share, SAME_SHARE, labels, problems,
             blank=~(allocated > 0))
    _compare(table, STATES_SUMMARY, "coverage", at, coverage, SAME_SHARE, labels, problems,
             blank=~(fundable > 0))
    risk = [debt_risk_of(d, r) for d, r in
            zip(expected["debt_distress"], expected["debt_risk"], strict=True)]
    texts = {"name": expected["name"].tolist(),
             "income_group": expected["income_group"].tolist(),
             "ldc": ["true" if v else "false" for v in expected["ldc"]], "debt_risk": risk}
    for column, want in texts.items():
        cells = table[column].to_numpy()
        problems.extend(f"{STATES_SUMMARY}:{at[i] + 2}: {labels[i]}: {column} "
                        f"{cells[at[i]]!r}, expected {want[i]!r}"
                        for i in range(len(labels)) if at[i] >= 0 and cells[at[i]] != want[i])
    c.add(Check(STATES_SUMMARY, not problems,
                f"{len(labels)} States: need, fundable, allocated, grants, loans, grant "
                "equivalent, loan share, coverage and debt risk as recomputed from the "
                "inputs and allocations.csv", f"{SAME_CENT} USD; shares {SAME_SHARE:g}",
                problems))


def check_manifest_figures(c: Certifier) -> None:
    """The manifest's run id, policy name and totals, recomputed."""
    rules, run = c.rules, c.run
    problems: list[str] = []
    solver, version = run.text("solver", "name"), run.text("solver", "version")
    policy_sha = sha256_bytes(run.read_bytes("policy.toml"))
    expected_id = run_id(rules.data.file_sha256, policy_sha, solver or "", version or "")
    if run.text("run_id") != expected_id:
        problems.append(f"manifest.json: run_id {run.text('run_id')!r} is not the id of these "
                        f"inputs, policy and solver ({expected_id})")
    try:
        document = tomllib.loads(run.read_bytes("policy.toml").decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        document = {}
    path = run.text("model", "path") or ""
    # A policy that does not name itself is named after the file it was read from.
    expected_name = rules.policy.name if "name" in document else Path(path).stem
    if run.text("model", "name") != expected_name:
        problems.append(f"manifest.json: model.name {run.raw('model', 'name')!r} is not the "
                        f"policy's name {expected_name!r}")
    totals = {
        "pledged_usd": float(rules.data.sources["pledge_usd"].sum()),
        "allocated_usd": int(c.cents.sum()) / 100.0,
        "fundable_usd": float(rules.gaps["fundable_usd"].sum()),
    }
    if run.raw("objective", "grant_equivalent_usd") is not None or run.has(STATES_SUMMARY):
        expected_ge = float(c.x @ grant_elements(c))
        got_ge = run.number("objective", "grant_equivalent_usd")
        if got_ge is None or not abs(got_ge - expected_ge) <= \
                SAME_CENT * max(1, c.n_written) + 1e-12 * abs(expected_ge):
            problems.append(f"manifest.json: objective.grant_equivalent_usd "
                            f"{run.raw('objective', 'grant_equivalent_usd')!r}, recomputed "
                            f"{expected_ge:.2f}")
    for key, expected in totals.items():
        got = run.number("totals", key)
        if got is None or not abs(got - expected) <= SAME_CENT + 1e-12 * abs(expected):
            problems.append(f"manifest.json: totals.{key} {run.raw('totals', key)!r}, "
                            f"recomputed {expected:.2f}")
    c.add(Check("manifest figures", not problems,
                "run_id, policy name and totals as recomputed from the copied files",
                f"exact; totals {SAME_CENT} USD", problems))


def _first_difference(a: bytes, b: bytes) -> int:
    """The first byte at which two byte strings differ (the shorter one's length when one
    begins the other)."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.frombuffer(a, np.uint8, n) != np.frombuffer(b, np.uint8, n))
    return int(differ[0]) if len(differ) else n


def check_report(c: Certifier) -> None:
    """report.html is the page the certified files give (rendered again, byte for byte).

    Only the tool and plotly versions that made the page can render it again; with others
    the page is held to its sha256 in the manifest alone, and the figure says so.
    """
    from importlib import metadata

    from gcm_fund import __version__
    from gcm_fund.outputs import page as html_report
    from gcm_fund.outputs.page_folder import read_folder

    run = c.run
    made = (run.text("versions", "gcm_fund"), run.text("versions", "plotly"))
    here = (__version__, metadata.version("plotly"))
    if made != here:
        c.add(Check("report.html", True, f"made by gcm_fund {made[0]} with plotly {made[1]}, "
                    f"this is gcm_fund {here[0]} with plotly {here[1]}: held to its sha256 "
                    "only", "exact"))
        return
    written = run.read_bytes(html_report.REPORT_FILE)
    try:
        page = html_report.render(read_folder(run.path))
    except Exception as exc:  # noqa: BLE001 - the renderer's failure is this check's
        c.add(Check("report.html", False, f"cannot be rendered again from the files "
                    f"({type(exc).__name__}: {exc})"))
        return
    same = page == written
    at = 0 if same else _first_difference(page, written)
    c.add(Check("report.html", same,
                "the page these files give, rendered again" if same else
                f"report.html differs from the page these files give, from byte {at:,} "
                f"(written {len(written):,} bytes, rendered {len(page):,})", "exact"))
