"""`explain --source`: where a source's money went in a run and what one more dollar of its
pledge would do, in words, for the donor who pledged it.

Read from the run folder alone: the copied sources.csv and states.csv, allocations.csv,
sources_summary.csv (its donor figures, docs/outputs.md), coverage.csv (the levels) and
constraints.csv (its budget row).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.audit.common import parse_numbers, usd
from gcm_fund.audit.explanation import read_allocations, rules_of
from gcm_fund.audit.folder import RunFolder, open_run, read_as_damaged
from gcm_fund.errors import UsageError
from gcm_fund.inputs.schema import did_you_mean
from gcm_fund.model.spec import METHOD_TRAITS

# How many States and gaps the words name before counting the rest.
SHOWN = 5
# One more USD 1 million: the step a donor thinks in when reading a marginal value.
MILLION = 1e6


def explain_source(folder: Path | str, source_id: str) -> list[str]:
    """What `explain --source ID` prints. Raises `UsageError` for an unknown source and
    `NotARunFolder` (naming the file where it can) when the folder is damaged."""
    with read_as_damaged(folder):
        return _explain(open_run(folder), source_id)


def _explain(run: RunFolder, source_id: str) -> list[str]:
    sources = run.table("inputs/sources.csv", ("source_id", "name", "instrument"))
    summary = run.table("sources_summary.csv", ("source_id", "pledge_usd", "allocated_usd",
                                                "unallocated_usd", "marginal_value"))
    if source_id not in set(summary["source_id"]):
        raise UsageError(f"{source_id}: not a source of this run"
                         f"{did_you_mean(source_id, list(summary['source_id']))}")
    mine = summary[summary["source_id"] == source_id].iloc[0]
    about = sources[sources["source_id"] == source_id]
    row = about.iloc[0] if len(about) else pd.Series(dtype=str)
    pledge, allocated = _number(mine["pledge_usd"]), _number(mine["allocated_usd"])
    name = str(row.get("name", "")) or source_id
    instrument = str(row.get("instrument", "")) or "grant"
    out = [f"{source_id} ({name}, {instrument}): pledged {usd(pledge)}, allocated "
           f"{usd(allocated)}" + (f" ({allocated / pledge:.1%})" if pledge > 0 else "")
           + f", unallocated {usd(_number(mine['unallocated_usd']))}"]
    out.append(f"earmarks: {_earmarks(row)}")
    alloc = read_allocations(run)
    alloc = alloc[alloc["source_id"] == source_id].copy()
    states = run.table("inputs/states.csv", ("iso3", "name", "income_group"))
    alloc = alloc.merge(states, on="iso3", how="left")
    out += ["", "where it went:"]
    if alloc.empty:
        out.append("  nowhere: nothing of it was allocated")
    else:
        out.append("  by target: " + _shares(alloc.groupby("target")["amount_usd"].sum(),
                                             allocated))
        out.append("  by income group: " + _shares(
            alloc.groupby("income_group")["amount_usd"].sum(), allocated))
        by_state = alloc.groupby("iso3")["amount_usd"].sum().sort_values(
            ascending=False, kind="stable")
        named = dict(zip(states["iso3"], states["name"], strict=False))
        largest = ", ".join(f"{named.get(s, s)} {usd(v)}" for s, v in
                            by_state.head(SHOWN).items())
        out.append(f"  {len(by_state)} State{'s' if len(by_state) != 1 else ''}; the "
                   f"largest: {largest}")
    out += ["", "its budget: " + _budget_words(run, source_id, pledge, allocated,
                                               received=not alloc.empty)]
    out += ["", "one more dollar:"] + _next_dollar(run, mine, source_id)
    return out


def _number(text: object) -> float:
    value = parse_numbers(pd.Series([str(text)]))[0]
    return float(value) if math.isfinite(value) else math.nan


def _earmarks(row: pd.Series) -> str:
    said = []
    for column, what in (("targets", "targets"), ("regions", "regions"),
                         ("income_groups", "income groups")):
        cell = str(row.get(column, "") or "").strip()
        if cell:
            said.append(f"{what} {cell.replace(';', ', ')} only")
    excluded = str(row.get("exclude_states", "") or "").strip()
    if excluded:
        count = len([s for s in excluded.split(";") if s])
        said.append(f"{count} State{'s' if count != 1 else ''} excluded")
    cap = str(row.get("max_state_share", "") or "").strip()
    if cap:
        said.append(f"at most {float(cap):.0%} of it to one State")
    return "; ".join(said) if said else "none (any eligible State and target)"


def _shares(amounts: pd.Series, total: float) -> str:
    ordered = amounts.sort_values(ascending=False, kind="stable")
    return ", ".join(f"{key} {usd(value)}" + (f" ({value / total:.0%})" if total > 0 else "")
                     for key, value in ordered.items())


def _has_gap(run: RunFolder, source_id: str) -> bool:
    """Whether the source may fund some gap (an eligible triple: its budget row exists)."""
    constraints = run.table("constraints.csv", ("name",))
    return bool((constraints["name"] == f"budget[{source_id}]").any())


def _budget_words(run: RunFolder, source_id: str, pledge: float, allocated: float,
                  received: bool) -> str:
    """Whether its budget binds, or why money was left (`received`: some State got any)."""
    left = pledge - allocated
    if left > 0.005 and not received and not _has_gap(run, source_id):
        return (f"{usd(left)} left unallocated: its earmarks and exclusions leave it no gap "
                "it may fund")
    if left > 0.005:
        return (f"{usd(left)} of it was left unallocated: no gap it may fund could take more "
                "under the rules (its earmarks, the gaps' fundable need, the States' caps)")
    if not run.has("constraints.csv"):
        return "placed in full"
    constraints = run.table("constraints.csv", ("name", "dual"))
    row = constraints[constraints["name"] == f"budget[{source_id}]"]
    dual = parse_numbers(row["dual"])[0] if len(row) else math.nan
    bound = " (its budget row binds)" if math.isfinite(dual) and dual > 0 else ""
    return f"placed in full{bound}"


def _next_dollar(run: RunFolder, mine: pd.Series, source_id: str) -> list[str]:
    """The donor figures in words (docs/outputs.md#donor-figures-under-levels)."""
    marginal = _number(mine["marginal_value"])
    traits = METHOD_TRAITS.get(run.text("objective", "method") or "")
    if traits is None or not traits.writes_levels:
        if math.isnan(marginal):
            return ["  no marginal value: a pledge here buys whole programmes, so one more "
                    "dollar buys nothing until it completes one; gcm-fund sweep shows the "
                    "pledges at which more are funded (docs/programmes.md)"
                    if traits is not None and traits.selects_programmes else
                    "  no marginal value in this run (docs/outputs.md)"]
        return [f"  marginal value {marginal:.6g}: one more USD adds that much to the weighted "
                "objective (the dual of its budget row)"]
    if math.isnan(marginal):
        computed = run.raw("levels", "donor_figures")
        unsolved = run.raw("levels", "donor_figures", "unsolved")
        why = ("its re-solve with the pledge raised failed (the manifest's unsolved)"
               if isinstance(unsolved, list) and source_id in unsolved else
               "it has no eligible gap" if isinstance(computed, dict) else
               "this run has no donor figures (made with --donor-figures none, or by an "
               "earlier version)")
        return [f"  not computed: {why}"]
    lowest = _lowest_gaps(run, source_id)
    if lowest is None:
        return ["  none of the gaps it may fund is in the allocation's levels"]
    level, gaps, stopped = lowest
    where = ", ".join(gaps[:SHOWN]) + (f" and {len(gaps) - SHOWN} more"
                                       if len(gaps) > SHOWN else "")
    out = [f"  the lowest level among the gaps it may fund is {level:.4g} (coverage / "
           f"priority), at {len(gaps)} gap{'s' if len(gaps) != 1 else ''} ({where}), "
           f"stopped by {_rules_words(stopped)}"]
    if marginal > 0:
        out.append(f"  one more dollar of its pledge lifts it by {marginal:.6g} (marginal "
                   f"value, by re-solve): at that rate, USD 1 million more would lift it by "
                   f"{marginal * MILLION:.3g}, until another rule binds")
    elif marginal < 0:
        out.append(f"  one more dollar of its pledge lowers it by {-marginal:.6g} (marginal "
                   "value, by re-solve): a pledge that raises the equity floor can take "
                   "money from the gaps above it (docs/outputs.md)")
    else:
        out.append("  one more dollar of its pledge does not lift it: those gaps are held by "
                   "rules its pledge does not move (marginal value 0, by re-solve)")
    # Blank, or absent from a run of an earlier version: not computed.
    placed = _number(mine.get("placed_per_usd", ""))
    reaches = _number(mine.get("additionality", ""))
    if math.isnan(placed) or math.isnan(reaches):
        out.append("  allocate --donor-figures all adds how much of each extra USD the fund "
                   "places and how much reaches the gaps this source may fund")
    else:
        out.append(f"  of each extra USD, the fund places {placed:.3g} and {reaches:.3g} reaches "
                   f"the gaps it may fund; {max(0.0, placed - reaches):.3g} goes elsewhere, "
                   "the money its extra USD displaced there")
    return out


def _lowest_gaps(run: RunFolder, source_id: str
                 ) -> tuple[float, list[str], list[str]] | None:
    """The lowest level among the gaps the source received money in or may fund, and the
    gaps there with the rules that stopped them (coverage.csv)."""
    rules = rules_of(run)[3]
    triples = rules.triples[rules.triples["source_id"] == source_id]
    pairs = set(zip(triples["iso3"], triples["target"], strict=True))
    cov = run.table("coverage.csv", ("iso3", "target", "level", "stopped_by"))
    level = parse_numbers(cov["level"])
    funded = np.array([(i, t) in pairs for i, t in zip(cov["iso3"], cov["target"],
                                                        strict=True)], dtype=bool)
    ok = funded & np.isfinite(level)
    if not ok.any():
        return None
    low = float(level[ok].min())
    # One level is one rank (docs/outputs.md's level_rank: written levels within 1e-6 of
    # each other are one), not one float: cents move a gap's written level in its 9th digit.
    rank = (parse_numbers(cov["level_rank"]) if "level_rank" in cov.columns
            else np.where(np.abs(level - low) <= 1e-6 * abs(low), 1.0, np.nan))
    lowest_rank = float(np.nanmin(np.where(ok, rank, np.nan)))
    at = ok & (rank == lowest_rank)
    gaps = [f"{i} {t}" for i, t in zip(cov["iso3"][at], cov["target"][at], strict=True)]
    stopped = sorted({rule for cell in cov["stopped_by"][at] for rule in str(cell).split(";")
                      if rule})
    return low, gaps, stopped


def _rules_words(names: list[str]) -> str:
    """A few rules by name; many by family and count ("budget (12), loan_share (28)")."""
    if not names:
        return "no rule named"
    if len(names) <= 4:
        return ", ".join(names)
    families: dict[str, int] = {}
    for name in names:
        family = name.partition("[")[0]
        families[family] = families.get(family, 0) + 1
    return f"{len(names)} rules: " + ", ".join(f"{f} ({n})" for f, n in families.items())
