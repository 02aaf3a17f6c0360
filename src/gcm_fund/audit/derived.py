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

from ..csv_input import sha256_bytes
from ..spec import run_id
from .checks import Certifier, Check
from .common import parse_numbers
from .folder import COVERAGE_COLUMNS, SOURCES_COLUMNS
from .tolerances import SAME_CENT

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


def check_coverage(c: Certifier) -> None:
    """coverage.csv: need, fundable, allocated, coverage and eligibility, every gap."""
    rules = c.rules
    table = c.run.table("coverage.csv", COVERAGE_COLUMNS)
    gaps = rules.gaps
    problems: list[str] = []
    at = _keyed(table, "coverage.csv", ["iso3", "target"], gaps, problems)
    labels = [f"{i},{t}" for i, t in zip(gaps["iso3"], gaps["target"], strict=True)]
    allocated = np.bincount(rules.triples["gap"].to_numpy(dtype=int), weights=c.x,
                            minlength=len(gaps))
    fundable = gaps["fundable_usd"].to_numpy(dtype=float)
    for column, expected in (("need_usd", gaps["need_usd"].to_numpy(dtype=float)),
                             ("fundable_usd", fundable), ("allocated_usd", allocated)):
        _compare(table, "coverage.csv", column, at, expected, SAME_CENT, labels, problems)
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
                f"{SAME_CENT} USD; coverage {SAME_SHARE:g}", problems))


def check_sources(c: Certifier) -> None:
    """sources_summary.csv: pledge, allocated, unallocated and marginal value, every source.

    The marginal value is the stage-2 dual of the source's budget row in constraints.csv
    (whose duals the optimality checks prove), never below 0; blank without such a row.
    """
    rules = c.rules
    table = c.run.table("sources_summary.csv", SOURCES_COLUMNS)
    sources = rules.data.sources.reset_index(drop=True)
    problems: list[str] = []
    at = _keyed(table, "sources_summary.csv", ["source_id"], sources, problems)
    labels = sources["source_id"].tolist()
    pledge = sources["pledge_usd"].to_numpy(dtype=float)
    allocated = np.bincount(rules.triples["source"].to_numpy(dtype=int), weights=c.x,
                            minlength=len(sources))
    for column, expected in (("pledge_usd", pledge), ("allocated_usd", allocated),
                             ("unallocated_usd", pledge - allocated)):
        _compare(table, "sources_summary.csv", column, at, expected, SAME_CENT, labels,
                 problems)
    constraints = c.run.table("constraints.csv", ("name", "family", "dual"))
    budget = (constraints["family"] == "budget").to_numpy()
    duals = dict(zip(constraints["name"][budget], parse_numbers(constraints["dual"][budget]),
                     strict=True))
    names = [f"budget[{sid}]" for sid in labels]
    rule_rows = set(rules.rows["name"][rules.rows["family"] == "budget"])
    has_row = np.array([n in rule_rows for n in names], dtype=bool)
    marginal = np.array([max(duals.get(n, np.nan), 0.0) if n in duals else np.nan
                         for n in names])
    if rules.policy.allocation.method == "programmes":  # SPEC 8: blank under programmes
        has_row[:] = False
    _compare(table, "sources_summary.csv", "marginal_value", at, marginal, SAME_DUAL, labels,
             problems, blank=~has_row)
    c.add(Check("sources_summary.csv", not problems,
                f"{len(sources)} sources: pledge, allocated, unallocated and marginal value "
                "as recomputed from the inputs, allocations.csv and constraints.csv",
                f"{SAME_CENT} USD; marginal value {SAME_DUAL:g}", problems))


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
        "allocated_usd": float(c.x.sum()),
        "fundable_usd": float(rules.gaps["fundable_usd"].sum()),
    }
    for key, expected in totals.items():
        got = run.number("totals", key)
        if got is None or not abs(got - expected) <= SAME_CENT + 1e-12 * abs(expected):
            problems.append(f"manifest.json: totals.{key} {run.raw('totals', key)!r}, "
                            f"recomputed {expected:.2f}")
    c.add(Check("manifest figures", not problems,
                "run_id, policy name and totals as recomputed from the copied files",
                f"exact; totals {SAME_CENT} USD", problems))


def check_report(c: Certifier) -> None:
    """report.html is the page the certified files give (rendered again, byte for byte).

    Only the tool and plotly versions that made the page can render it again; with others
    the page is held to its sha256 in the manifest alone, and the figure says so.
    """
    from importlib import metadata

    from .. import __version__, html_report
    from ..report_folder import read_folder

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
    at = next((i for i, (a, b) in enumerate(zip(page, written, strict=False)) if a != b),
              min(len(page), len(written)))
    c.add(Check("report.html", same,
                "the page these files give, rendered again" if same else
                f"report.html differs from the page these files give, from byte {at:,} "
                f"(written {len(written):,} bytes, rendered {len(page):,})", "exact"))
