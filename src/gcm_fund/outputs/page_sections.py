"""The sections of report.html as HTML: headline cards, the States, sources, binding
rules, unfunded gaps and levels tables.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from gcm_fund.model.spec import POSITIVE_DUAL, equity_members
from gcm_fund.outputs.page_folder import (
    CAP_FAMILIES,
    INCOME_NAMES,
    KIND_NAMES,
    Folder,
    Headline,
    Names,
    binding_rows,
    figure,
    income_key,
    percent,
    share_of,
    target_key,
    usd,
    usd_full,
)

NUMBER_OF_BINDING_RULES = 25


def weighted_text(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{value:,.2f}"


def esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(text: str, sort: float | str | None = None, num: bool = False) -> str:
    attributes = ' class="num"' if num else ""
    if sort is not None:
        sort_text = "" if isinstance(sort, float) and math.isnan(sort) else sort
        attributes += f' data-sort="{esc(sort_text)}"'
    return f"<td{attributes}>{esc(text)}</td>"


def _table(table_id: str, headers: list[tuple[str, bool]], rows: list[str], *,
           sortable: bool = True) -> str:
    head = "".join(f'<th{" class=num" if num else ""}>{esc(h)}</th>' for h, num in headers)
    return (f'<div class="scroll"><table id="{table_id}"'
            f'{" class=sortable" if sortable else ""}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _no_floor_note(folder: Folder, group: str) -> str:
    """Why a run has no floor, from its files (the terminal says the same,
    `results.no_floor_reason`): no money, no gap in the group, or none it can reach."""
    if not (folder.sources_summary["pledge_usd"] > 0).any():
        return "every pledge is 0, so no gap can receive money"
    states = folder.states
    ldc = states["ldc"] if "ldc" in states else pd.Series("", index=states.index)
    member = equity_members(group, ldc.str.lower().isin(["true", "yes", "1"]).to_numpy(),
                            states["income_group"].to_numpy())
    members = set(states.loc[member, "iso3"])
    if not folder.coverage["iso3"].isin(members).any():
        return "no gap is in the policy's equity group"
    return "no gap in the policy's equity group can receive money"


def _lowest_coverage(folder: Folder, group: str) -> float | None:
    """The lowest coverage among the eligible gaps of the equity group, from coverage.csv
    (what the floor guarantees, against what the gaps actually got)."""
    coverage = folder.coverage
    states = folder.states.set_index("iso3")
    truthy = ["true", "yes", "1"]
    ldc = (coverage["iso3"].map(states["ldc"]).astype(str).str.lower().isin(truthy)
           if "ldc" in states.columns else pd.Series(False, index=coverage.index))
    income = coverage["iso3"].map(states["income_group"]).astype(str)
    member = equity_members(group, ldc.to_numpy(), income.to_numpy())
    eligible = coverage["eligible"].astype(str).str.lower().isin(truthy).to_numpy()
    values = pd.to_numeric(coverage["coverage"][member & eligible], errors="coerce").dropna()
    return float(values.min()) if len(values) else None


def _fundable_gaps(folder: Folder) -> pd.Series:
    """The gaps some source may fund (coverage.csv's `eligible`) with fundable need."""
    coverage = folder.coverage
    eligible = coverage["eligible"].astype(str).str.lower().isin(["true", "yes", "1"])
    return eligible & (coverage["fundable_usd"] > 0)


def _eligible_share(folder: Folder, allocated_usd: float) -> str:
    """'; X of the USD Y that some source may fund', when that differs from all gaps'."""
    coverage = folder.coverage
    fundable = float(coverage.loc[_fundable_gaps(folder), "fundable_usd"].sum())
    if fundable <= 0 or abs(fundable - float(coverage["fundable_usd"].sum())) < 0.005:
        return ""
    return f"; {percent(share_of(allocated_usd, fundable))} of the {usd(fundable)} that some " \
           "source may fund"


def headline_cards(folder: Folder, names: Names, figures: Headline) -> str:
    equity = folder.policy.get("equity", {})
    group = equity.get("group", "all")
    group_words = {"all": "every gap", "ldc": "every gap of a least developed country"}.get(
        group, f"every gap of a {INCOME_NAMES.get(group, group)} State")
    why: list[str] = []
    if figures.floor is None:
        floor_value, floor_note = "none", _no_floor_note(folder, group)
    else:
        floor_value = percent(max(figures.floor, 0.0), 2)  # -1e-12 is rounding, not -0.00 %
        # Stage 1's duals are per USD of a coverage objective: small, but any non-zero one
        # is a rule that holds the floor down.
        setters = (binding_rows(folder.stage1_constraints, 0.0)
                   if folder.stage1_constraints is not None else pd.DataFrame())
        rules = setters[setters["family"] != "floor"] if len(setters) else setters
        set_by = "; ".join(names.rule(r.name) for r in rules.head(2).itertuples())
        if not set_by and len(setters):
            # Only floor rows price the floor: the gaps that cannot rise any further.
            held = sorted({names.of_state(n.partition("[")[2].split(",")[0])
                           for n in setters.loc[setters["family"] == "floor", "name"]})
            set_by = ("the gaps of " + ", ".join(held[:3])
                      + (f" and {len(held) - 3} more States" if len(held) > 3 else "")
                      + ", which no more money can reach") if held else ""
        maximize = equity.get("maximize", True)
        floor_note = (f"of fundable need guaranteed to {group_words}"
                      + ("" if maximize else " (fixed by the policy)"))
        floor_max = folder.manifest.get("objective", {}).get("floor_max")
        share = float(equity.get("floor_share", 1.0))
        if maximize and isinstance(floor_max, (int, float)) and share < 1:
            floor_note += f" ({share:g} of the {percent(float(floor_max), 2)} it could be)"
        lowest = _lowest_coverage(folder, group)
        if lowest is not None:
            floor_note += f"; the lowest coverage reached is {percent(lowest, 2)}"
        if set_by and maximize:
            why.append(f"What set the floor: {set_by}.")
    left = folder.sources_summary[folder.sources_summary["unallocated_usd"] > 0.005]
    reasons = _unallocated_reasons(folder, names, left)
    cards = [
        ("Equity floor", floor_value, floor_note, "floor",
         "" if figures.floor is None else repr(figures.floor)),
        ("Allocated", usd(figures.allocated_usd),
         f"of {usd(figures.pledged_usd)} pledged "
         f"({percent(share_of(figures.allocated_usd, figures.pledged_usd))})",
         "allocated_usd", f"{figures.allocated_usd:.2f}"),
        *_grant_equivalent_card(folder, figures),
        ("Fundable need covered", percent(share_of(figures.allocated_usd, figures.fundable_usd)),
         f"of {usd(figures.fundable_usd)} fundable need of all gaps"
         + _eligible_share(folder, figures.allocated_usd), "fundable_usd",
         f"{figures.fundable_usd:.2f}"),
        ("Loans", percent(share_of(figures.loans_usd, figures.allocated_usd)),
         f"of the money allocated ({usd(figures.loans_usd)})", "loans_usd",
         f"{figures.loans_usd:.2f}"),
        ("States reached", f"{figures.states_reached}",
         f"of {figures.states_with_need} States with fundable need", "states_reached",
         str(figures.states_reached)),
        ("Left unallocated", usd(figures.unallocated_usd),
         "see why below" if reasons else "every pledge is placed",
         "unallocated_usd", f"{figures.unallocated_usd:.2f}"),
    ]
    if reasons:
        why.append(f"Left unallocated: {reasons}.")
    notes = "".join(f"<p>{esc(line)}</p>" for line in why)
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{esc(label)}</div>'
        f'<div class="value" data-figure="{key}" data-value="{esc(raw)}">{esc(value)}</div>'
        f'<div class="note">{esc(note)}</div></div>'
        for label, value, note, key, raw in cards) + "</div>" + (
        f'<div class="why">{notes}</div>' if notes else "")


def _grant_equivalent_card(folder: Folder, figures: Headline
                           ) -> list[tuple[str, str, str, str, str]]:
    """The fund's size in grant equivalents (docs/terms.md), when the run records it."""
    value = folder.manifest.get("objective", {}).get("grant_equivalent_usd")
    if not isinstance(value, int | float):
        return []
    return [("Grant equivalent", usd(value),
             f"the money allocated counted at each source's grant element "
             f"({percent(share_of(value, figures.allocated_usd))} of its face value)",
             "grant_equivalent_usd", f"{value:.2f}")]


def terms_table(folder: Folder, names: Names) -> str:
    """Per State: grants, loans, grant equivalent, loan share and debt risk (docs/terms.md);
    empty when the run has no states_summary.csv."""
    table = folder.states_summary
    if table is None:
        return ""
    rows = []
    order = sorted(range(len(table)),
                   key=lambda i: names.of_state(str(table["iso3"].iloc[i])).casefold())
    for i in order:
        r = table.iloc[i]
        share = r["loan_share"]
        rows.append("<tr>" + "".join([
            _cell(f"{names.of_state(str(r['iso3']))} ({r['iso3']})"),
            _cell(str(r["income_group"])),
            _cell(str(r["debt_risk"])),
            _cell(usd_full(r["grants_usd"]), r["grants_usd"], num=True),
            _cell(usd_full(r["loans_usd"]), r["loans_usd"], num=True),
            _cell(usd_full(r["grant_equivalent_usd"]), r["grant_equivalent_usd"], num=True),
            _cell("–" if math.isnan(share) else percent(share), share, num=True),
        ]) + "</tr>")
    headers = [("State", False), ("income", False), ("debt risk", False), ("grants USD", True),
               ("loans USD", True), ("grant equivalent USD", True), ("loan share", True)]
    return ('<section id="terms-section"><h2>Grants, loans and grant equivalents</h2>'
            '<p class="lead">Per State: the grants and loans it receives, their grant '
            "equivalent (each loan at its grant element) and the loans' share of its money, "
            "beside its risk of debt distress. Amounts in USD.</p>"
            + _table("terms", headers, rows) + "</section>")


def _unallocated_reasons(folder: Folder, names: Names, left: pd.DataFrame) -> str:
    if not len(left):
        return ""
    parts = []
    for row in left.sort_values("unallocated_usd", ascending=False).head(3).itertuples():
        if folder.levels is not None:  # no dual read: marginal_value is a re-solve, or blank
            why = ("the gaps its earmarks allow are full or capped" if row.allocated_usd > 0
                   else "no gap it may fund can take more, or it may fund none")
        elif math.isnan(row.marginal_value):
            why = "no gap it may fund"
        elif row.marginal_value > POSITIVE_DUAL:
            why = "held back by a rule"
        else:
            why = "the gaps its earmarks allow are full or capped"
        parts.append(f"{names.of_source(row.source_id)}: {usd(row.unallocated_usd)}, {why}")
    more = len(left) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def state_table(folder: Folder, names: Names) -> str:
    coverage, allocations = folder.coverage, folder.allocations
    region = dict(zip(folder.states["iso3"], folder.states["region"], strict=True))
    income = dict(zip(folder.states["iso3"], folder.states["income_group"], strict=True))
    has_levels = "level" in coverage.columns
    totals = coverage.groupby("iso3", sort=True)[["need_usd", "fundable_usd",
                                                  "allocated_usd"]].sum()
    by_source = allocations.groupby(["iso3", "source_id"])["amount_usd"].sum().reset_index()
    funders = _largest_first(by_source["iso3"], by_source["source_id"], by_source["amount_usd"])
    gaps_of = coverage.groupby("iso3", sort=False).indices if has_levels else {}
    levels = coverage["level"].to_numpy() if has_levels else None
    stopped_texts = (coverage["stopped_by"].tolist() if "stopped_by" in coverage.columns
                     else None)
    rows = []
    order = sorted(totals.index, key=lambda iso3: names.of_state(str(iso3)).casefold())
    ordered = totals.loc[order]
    for iso3, need, fundable, allocated in zip(
            ordered.index, ordered["need_usd"].to_numpy(), ordered["fundable_usd"].to_numpy(),
            ordered["allocated_usd"].to_numpy(), strict=True):
        funded_by = "; ".join(names.of_source(f) for f in funders.get(iso3, ()))
        cells = [
            _cell(f"{names.of_state(str(iso3))} ({iso3})"),
            _cell(str(region.get(iso3, ""))),
            _cell(str(income.get(iso3, ""))),
            _cell(usd_full(need), need, num=True),
            _cell(usd_full(fundable), fundable, num=True),
            _cell(usd_full(allocated), allocated, num=True),
            _coverage_cell(share_of(allocated, fundable)),
        ]
        if levels is not None:
            mine = gaps_of[iso3]
            level = levels[mine].min()
            stopped = ([] if stopped_texts is None
                       else _stopped_by(stopped_texts[i] for i in mine))
            cells += [_cell(figure(level), level, num=True),
                      _cell(names.summary(stopped)).replace("<td>", '<td class="small">', 1)]
        cells.append(_cell(funded_by or "–").replace("<td>", '<td class="small">', 1))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    headers = [("State", False), ("region", False), ("income", False), ("need USD", True),
               ("fundable USD", True), ("allocated USD", True), ("coverage", True)]
    if has_levels:
        headers += [("level", True), ("what stopped it", False)]
    headers.append(("sources", False))
    return ('<input class="filter" data-table="states" type="search" '
            'placeholder="Filter: a name, region, income group, source…" '
            'aria-label="Filter the States">'
            + _table("states", headers, rows))


def _largest_first(keys: pd.Series, items: pd.Series, amounts: pd.Series
                   ) -> dict[str, list[str]]:
    """The items of each key, largest amount first, ties in the order given: the order
    pandas' `sort_values(ascending=False)` gives each key's rows (the same steps, done on
    arrays once per key instead of on a filtered frame)."""
    values = amounts.to_numpy(dtype=float)
    names = items.to_numpy()
    found: dict[str, list[str]] = {}
    for key, where in keys.groupby(keys, sort=False).indices.items():
        backwards = where[::-1]
        order = backwards[values[backwards].argsort(kind="quicksort")][::-1]
        found[key] = [names[i] for i in order]
    return found


def _coverage_cell(share: float | None) -> str:
    if share is None:
        return '<td class="num" data-sort="-1">–</td>'
    width = max(0.0, min(share, 1.0)) * 100
    return (f'<td class="num" data-sort="{float(share)!r}"><span class="track"><span '
            f'style="width:{width:.0f}%"></span></span>{esc(percent(share))}</td>')


def _stopped_by(texts: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for text in texts:
        for item in str(text).split(";"):
            if item and item not in seen:
                seen.append(item)
    return seen


def sources_table(folder: Folder, names: Names) -> str:
    sources = folder.sources.set_index("source_id")
    rows = []
    summary = folder.sources_summary
    under_levels = folder.levels is not None
    # Under levels the donor figures are re-solves (docs/outputs.md), never a budget dual:
    # blank where `allocate --donor-figures` did not compute them.
    def found(column: str) -> bool:
        return column in summary.columns and bool(
            pd.to_numeric(summary[column], errors="coerce").notna().any())

    marginal_shown = found("marginal_value") or not under_levels
    levels = under_levels and found("additionality")
    biggest_first = summary.sort_values(["pledge_usd", "source_id"], ascending=[False, True],
                                        kind="stable")
    for row in biggest_first.itertuples():
        kind = str(sources["kind"].get(row.source_id, ""))
        instrument = str(sources["instrument"].get(row.source_id, ""))
        rows.append("<tr>" + "".join([
            _cell(names.of_source(row.source_id)),
            _cell(KIND_NAMES.get(kind, kind)), _cell(instrument),
            _cell(usd_full(row.pledge_usd), row.pledge_usd, num=True),
            _cell(usd_full(row.allocated_usd), row.allocated_usd, num=True),
            _cell(usd_full(row.unallocated_usd), row.unallocated_usd, num=True),
            _cell(percent(share_of(row.allocated_usd, row.pledge_usd)),
                  share_of(row.allocated_usd, row.pledge_usd) or 0.0, num=True),
            *([_cell(figure(row.marginal_value), row.marginal_value, num=True)]
              if marginal_shown else []),
            *([_cell(figure(row.placed_per_usd), row.placed_per_usd, num=True),
               _cell(figure(row.additionality), row.additionality, num=True)]
              if levels else []),
        ]) + "</tr>")
    marginal = ("lowest level per USD" if under_levels else "marginal value", True)
    if under_levels and not marginal_shown:
        note = ('<p class="lead">Under priority levels a source\'s marginal value is found by '
                "solving again with its pledge raised, not read from a dual (which is not "
                "unique); this run was made with <code>--donor-figures none</code>.</p>")
    elif under_levels and not levels:
        note = ('<p class="lead">Each source\'s lowest level per USD: how much the lowest '
                "level among the gaps it may fund rises per USD more of its pledge, found by "
                "solving again with the pledge raised. <code>allocate --donor-figures "
                "all</code> adds the money placed, and what reaches the source's gaps, per "
                "USD more.</p>")
    else:
        note = ""
    return note + _table("sources", [("source", False), ("kind", False), ("instrument", False),
                                     ("pledge USD", True), ("allocated USD", True),
                                     ("unallocated USD", True), ("placed", True),
                                     *([marginal] if marginal_shown else []),
                                     *([("placed per USD", True),
                                        ("reaches its gaps per USD", True)]
                                       if levels else [])], rows)


def binding_table(folder: Folder, names: Names) -> str:
    binding = binding_rows(folder.constraints)
    if not len(binding):
        return "<p>No rule binds with a non-zero marginal value.</p>"
    rows = ["<tr>" + "".join([
        _cell(names.rule(r.name, r.rhs if r.family in {"budget", "gap", "absorb",
                                                          "state_share", "source_state"}
                         else None)),
        _cell(r.name), _cell(figure(r.dual), abs(r.dual), num=True)]) + "</tr>"
        for r in binding.head(NUMBER_OF_BINDING_RULES).itertuples()]
    more = len(binding) - NUMBER_OF_BINDING_RULES
    return (_table("binding", [("rule, in plain words", False), ("row", False),
                               ("marginal value", True)], rows)
            + (f'<p class="muted">{more} more binding rows are in constraints.csv.</p>'
               if more > 0 else ""))


def unfunded_section(folder: Folder, names: Names) -> str:
    coverage = folder.coverage
    states = folder.states.set_index("iso3")
    constraints = folder.constraints
    tight = constraints[(constraints["slack"].abs() <= 0.01)
                        & constraints["family"].isin(CAP_FAMILIES)]
    capped = {name.partition("[")[2].rstrip("]"): family
              for name, family in zip(tight["name"], tight["family"], strict=True)}
    zero_fundable = coverage[coverage["fundable_usd"] <= 0]
    unfunded = coverage[(coverage["fundable_usd"] > 0) & (coverage["allocated_usd"] <= 0)]
    rows = []
    for row in unfunded.itertuples():
        eligible = str(getattr(row, "eligible", "true")).lower() == "true"
        stopped = _stopped_by([row.stopped_by] if hasattr(row, "stopped_by") else [])
        if str(states.get("eligible", pd.Series(dtype=str)).get(row.iso3, "")).lower() in {
                "false", "no", "0"}:
            why = "the State is marked not eligible (states.csv)"
        elif not eligible:
            why = "no source may fund it (earmarks, exclusions, debt distress or no absorption)"
        elif stopped:
            why = "stopped by: " + names.summary(stopped)
        elif row.iso3 in capped:
            why = ("the State's absorption limit is reached" if capped[row.iso3] == "absorb"
                   else "the State's share cap is reached")
        else:
            why = "the sources that may fund it placed their money in gaps of higher priority"
        rows.append("<tr>" + "".join([
            _cell(f"{names.of_state(row.iso3)} ({row.iso3})"),
            _cell(str(states["income_group"].get(row.iso3, ""))),
            _cell(names.of_target(row.target), target_key(row.target)[0]),
            _cell(usd_full(row.fundable_usd), row.fundable_usd, num=True),
            _cell(why)]) + "</tr>")
    by_income = zero_fundable.groupby(
        zero_fundable["iso3"].map(states["income_group"]).fillna("unknown")).size()
    zero_text = ", ".join(f"{n} of {INCOME_NAMES.get(g, g)} States" for g, n in
                          sorted(by_income.items(), key=lambda kv: income_key(kv[0])))
    intro = (f"<p>{len(unfunded)} gaps with fundable need received nothing."
             + (f" {len(zero_fundable)} more gaps have no fundable need, because the "
                f"policy's co-financing share for their income group is 0 ({zero_text})."
                if len(zero_fundable) else "") + "</p>")
    if not rows:
        return intro
    return (intro + '<input class="filter" data-table="unfunded" type="search" '
            'placeholder="Filter the unfunded gaps…" aria-label="Filter the unfunded gaps">'
            + _table("unfunded", [("State", False), ("income", False), ("target", False),
                                  ("fundable USD", True), ("why", False)], rows))


def levels_table(folder: Folder, names: Names) -> str:
    levels = folder.levels
    if levels is None or not len(levels):
        return ""
    # One row per distinct level, which is unique (docs/model.md); the solver's steps, which
    # are not (several LPs may stop gaps at one level), stay in levels.csv.
    groups: list[tuple[float, float, list[str]]] = []
    for r in levels.sort_values("level", kind="stable").itertuples():
        rules = [s for s in str(r.stopped_by).split(";") if s]
        stopped = 0.0 if math.isnan(r.gaps_stopped) else float(r.gaps_stopped)
        if groups and abs(r.level - groups[-1][0]) <= 1e-6 * max(abs(r.level), 1e-12):
            level, count, seen = groups[-1]
            groups[-1] = (level, count + stopped, seen + [x for x in rules if x not in seen])
        else:
            groups.append((float(r.level), stopped, rules))
    rows = ["<tr>" + "".join([
        _cell(str(k), k, num=True), _cell(figure(level), level, num=True),
        _cell(str(int(count)), count, num=True), _cell(names.summary(rules))]) + "</tr>"
        for k, (level, count, rules) in enumerate(groups, start=1)]
    return ('<section id="levels"><h2>Priority levels</h2><p class="lead">Each distinct '
            "level of the water filling: the level reached, how many gaps stopped rising "
            "there, and the rules that stopped them. The levels are the same on every "
            f"solver; levels.csv lists the {len(levels)} steps this solver took.</p>"
            + _table("levels", [("level no.", True), ("level", True), ("gaps stopped", True),
                                ("stopped by", False)], rows) + "</section>")


def selection_section(folder: Folder) -> str:
    """Under programmes (docs/programmes.md): the selection by region and target, then every
    programme (funded, in part, not funded and why)."""
    selection = folder.selection
    if selection is None or not len(selection):
        return ""
    region_of = dict(zip(folder.states["iso3"], folder.states["region"], strict=False))
    funded = selection[selection["funded"].astype(str).str.lower() == "true"]
    amount = pd.to_numeric(funded["amount_usd"], errors="coerce")
    partial = int(funded["reason"].astype(str).str.startswith("partial").sum())
    lead = (f"{len(funded)} of {len(selection)} programmes funded ({partial} in part), "
            f"{usd(float(amount.sum()))} placed; the smallest funded programme "
            f"{usd(float(amount.min())) if len(amount) else '–'}.")

    def summary(keys: pd.Series, title: str, table_id: str) -> str:
        grouped = amount.groupby(keys.to_numpy()).agg(["count", "sum"])
        rows = ["<tr>" + _cell(str(k)) + _cell(str(int(r["count"])), r["count"], num=True)
                + _cell(usd_full(r["sum"]), r["sum"], num=True) + "</tr>"
                for k, r in grouped.iterrows()]
        return _table(table_id, [(title, False), ("programmes", True), ("USD", True)], rows)

    first_state = funded["states"].astype(str).str.split(";").str[0]
    by_region = summary(first_state.map(region_of).fillna("–"), "region (first State)",
                        "selection-regions")
    by_target = summary(funded["targets"].astype(str), "targets", "selection-targets")
    rows = ["<tr>" + "".join([
        _cell(str(r.programme_id)), _cell(str(r.states).replace(";", ", ")),
        _cell(str(r.targets).replace(";", ", ")),
        _cell(usd_full(float(r.budget_usd)), float(r.budget_usd), num=True),
        _cell(usd_full(float(r.amount_usd)), float(r.amount_usd), num=True),
        _cell(str(r.reason))]) + "</tr>" for r in selection.itertuples()]
    return ('<section id="selection"><h2>Programmes</h2><p class="lead">' + esc(lead)
            + "</p>" + by_region + by_target
            + _table("selection", [("programme", False), ("States", False),
                                   ("targets", False), ("budget", True), ("amount", True),
                                   ("why", False)], rows) + "</section>")
