"""review.html: the follow-up and review on one self-contained page (docs/review.md).

Built like report.html from the same blocks (its style, sortable tables, plotly.js
embedded whole, labels escaped): per cycle what was committed, disbursed and achieved,
execution and results by region and by target across cycles, the States, the donors'
payments, and the lags flagged. Figures are formatted for people; exact values stay in the
CSV tables beside it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from gcm_fund.outputs.page import STYLE, page_bytes
from gcm_fund.outputs.page_charts import _layout, label_text
from gcm_fund.outputs.page_folder import TARGET_NAMES, percent, target_key, usd, usd_full
from gcm_fund.outputs.page_sections import _cell, _table, esc
from gcm_fund.outputs.review_folder import Review

# One colour per cycle, oldest lightest: the latest cycle reads first.
CYCLE_COLOURS = ("#e3eef3", "#c2dbe6", "#9ec5d6", "#5a9bb5", "#1f6f8b")
FLAG_WORDS = {"low_execution": "execution under 50 %", "low_results": "results under 50 %",
              "low_payment": "paid under 80 % of its pledges"}

DEFINITIONS = [
    ("Committed", "What the fund allocated to a gap in a cycle (gcm-fund record writes it "
     "from the run folder)."),
    ("Disbursed", "What was paid out of the committed money by the time of the review."),
    ("Execution", "Disbursed divided by committed. Flagged when under 50 %."),
    ("Results", "The share of planned outputs delivered, as the implementers report it: "
     "the mean over the gaps with a report, weighted by what each was committed. Flagged "
     "when under 50 % (0.5); blank where nothing is reported."),
    ("Paid share", "A donor's paid contributions over all its contributions, at face value "
     "in USD at the valuation date's rates. Flagged when under 80 %."),
    ("Fair share", "The donor State's share of the total fundable need in proportion to "
     "its GNI (as gcm-fund fair-share computes it)."),
]


def _target_name(target: str) -> str:
    named = TARGET_NAMES.get(target)
    return f"{target} {named}" if named else f"target {target}"


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def cycle_figure(table: pd.DataFrame, key: str, column: str, title: str,
                 labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Grouped bars of `column` (a share, shown in %) by `key`, one bar per cycle; `labels`
    name the keys in the hover text."""
    order = sorted(set(table[key].astype(str)),
                   key=target_key if key == "target" else str)
    shown = [label_text(k) for k in order]
    named = [label_text((labels or {}).get(k, k)) for k in order]
    cycles = sorted(set(table["cycle"].astype(int)))
    data = []
    for i, cycle in enumerate(cycles):
        mine = table[table["cycle"].astype(int) == cycle].set_index(key)[column]
        values = [_number(float(mine[k]) * 100) if k in mine.index else None for k in order]
        data.append({
            "type": "bar", "name": f"cycle {cycle}", "x": shown, "y": values,
            # Beyond five cycles the oldest share the lightest colour.
            "marker": {"color": CYCLE_COLOURS[max(0, len(CYCLE_COLOURS) - len(cycles) + i)]},
            "hovertext": [f"{label}, cycle {cycle}: "
                          + ("not reported" if v is None else f"{v:.1f} %")
                          for label, v in zip(named, values, strict=True)],
            "hoverinfo": "text"})
    return {"data": data, "layout": _layout(
        barmode="group", height=360, title={"text": title, "x": 0, "font": {"size": 14}},
        yaxis={"range": [0, 105], "ticksuffix": " %", "gridcolor": "#e6ebf0"},
        # Target codes are categories, not numbers (plotly would place 8.8 at 8.8).
        xaxis={"automargin": True, "type": "category"}, legend={"orientation": "h", "y": -0.25},
        margin={"l": 50, "r": 20, "t": 40, "b": 40})}


def review_charts(review: Review) -> dict[str, dict[str, Any]]:
    """The page's figures by chart id; none without history rows."""
    if not len(review.regions):
        return {}
    targets = {t: _target_name(t) for t in review.targets["target"].astype(str)}
    return {
        "execution_by_region": cycle_figure(review.regions, "region", "execution",
                                            "Execution by region (disbursed / committed)"),
        "results_by_region": cycle_figure(review.regions, "region", "result",
                                          "Results by region (committed-weighted)"),
        "execution_by_target": cycle_figure(review.targets, "target", "execution",
                                            "Execution by target", targets),
        "results_by_target": cycle_figure(review.targets, "target", "result",
                                          "Results by target", targets),
    }


def _flags_text(flags: str) -> str:
    return "; ".join(FLAG_WORDS.get(word, word) for word in flags.split(";") if word) or "–"


def _share_cell(value: float) -> str:
    return _cell(percent(value), value, num=True)


def figures_table(table_id: str, table: pd.DataFrame, keys: list[tuple[str, str]]) -> str:
    """A table of committed, disbursed, execution, result and flags by cycle and keys."""
    rows = []
    for row in table.itertuples(index=False):
        cells = [_cell(str(row.cycle), float(row.cycle), num=True)]
        cells += [_cell(_target_name(str(getattr(row, key))) if key == "target"
                        else str(getattr(row, key))) for key, _ in keys]
        cells += [_cell(usd_full(row.committed_usd), row.committed_usd, num=True),
                  _cell(usd_full(row.disbursed_usd), row.disbursed_usd, num=True),
                  _share_cell(row.execution), _share_cell(row.result),
                  _cell(_flags_text(str(row.flags)))]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    headers = [("cycle", True), *[(title, False) for _, title in keys],
               ("committed USD", True), ("disbursed USD", True), ("execution", True),
               ("results", True), ("flags", False)]
    return _table(table_id, headers, rows)


def cycle_cards(review: Review) -> str:
    """One row of cards per cycle: committed, disbursed, execution, results, States
    flagged."""
    parts = []
    for row in review.cycles.itertuples(index=False):
        cycle = int(row.cycle)
        mine = review.states[review.states["cycle"].astype(int) == cycle]
        flagged = int((mine["flags"].astype(str) != "").sum())
        cards = [
            ("committed", usd(row.committed_usd), row.committed_usd, ""),
            ("disbursed", usd(row.disbursed_usd), row.disbursed_usd,
             f"execution {percent(row.execution)}"),
            ("results", percent(row.result), row.result,
             "committed-weighted, of the gaps reported"),
            ("States flagged", str(flagged), float(flagged), f"of {len(mine)} with money"),
        ]
        pending = (' <span class="muted">(recorded, not yet reviewed: nothing disbursed or '
                   "reported)</span>" if row.disbursed_usd == 0 and math.isnan(row.result)
                   else "")
        parts.append(f'<h3>Cycle {cycle}{pending}</h3><div class="cards">' + "".join(
            f'<div class="card"><div class="label">{esc(label)}</div>'
            f'<div class="value" data-figure="c{cycle}_{label.split()[0].lower()}" '
            f'data-value="{esc("" if math.isnan(value) else repr(float(value)))}">'
            f'{esc(text)}</div><div class="note">{esc(note)}</div></div>'
            for label, text, value, note in cards) + "</div>")
    return "".join(parts) or '<p class="muted">The history holds no cycle.</p>'


def donors_section(review: Review) -> str:
    """The donors' pledges, payments and fair shares."""
    lead = ("Paid share: paid contributions over all contributions at face value, at the "
            "valuation date's rates." if review.contributions else
            "The inputs have no contributions.csv: what each donor paid is not known, only "
            "what it pledged.")
    rows = []
    for row in review.donors.itertuples(index=False):
        rows.append("<tr>" + "".join([
            _cell(str(row.donor)), _cell(str(row.sources).replace(";", ", ")),
            _cell(usd_full(row.pledged_usd), row.pledged_usd, num=True),
            _cell(usd_full(row.face_usd), row.face_usd, num=True),
            _cell(usd_full(row.paid_usd), row.paid_usd, num=True),
            _share_cell(row.paid_share),
            _cell(usd_full(row.fair_share_usd), row.fair_share_usd, num=True),
            _share_cell(row.paid_of_fair_share), _cell(_flags_text(str(row.flags)))])
            + "</tr>")
    headers = [("donor", False), ("sources", False), ("pledged USD (counted)", True),
               ("contributions USD (face)", True), ("paid USD", True), ("paid share", True),
               ("fair share USD", True), ("paid / fair share", True), ("flags", False)]
    return (f'<section id="donors-section"><h2>Donors</h2><p class="lead">{esc(lead)}</p>'
            + _table("donors", headers, rows) + "</section>")


def render(review: Review) -> bytes:
    """The whole page, as the UTF-8 bytes of review.html."""
    charts = review_charts(review)

    def chart(key: str) -> str:
        if key in charts:
            return f'<div id="{key}" class="chart"></div>'
        return f'<div id="{key}" class="chart-empty"><p class="muted">No history.</p></div>'

    cycles = sorted(set(review.cycles["cycle"].astype(int)))
    banner = ""
    if review.illustrative:
        banner = ('<div class="banner" role="alert" id="illustrative">ILLUSTRATIVE DATA: '
                  "these inputs and this implementation record are an example, not real "
                  "pledges, disbursements or results."
                  + (f"<span>{esc(review.description)}</span>" if review.description else "")
                  + "</div>")
    definitions = "".join(f"<div><dt>{esc(term)}</dt><dd>{esc(text)}</dd></div>"
                          for term, text in DEFINITIONS)
    provenance = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                         for k, v in review.provenance)
    figures_json = json.dumps(charts, sort_keys=True, separators=(",", ":"),
                              allow_nan=False).replace("</", "<\\/")
    title = ", ".join(map(str, cycles)) or "none"
    head = "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Fund follow-up and review: cycles {esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        '<header class="top"><h1>Follow-up and review of the migration financing fund</h1>',
        f"<p>Cycles {esc(title)} · what was committed, disbursed and achieved</p></header>",
        "<main>", banner,
        f'<section id="cycles"><h2>Cycles</h2>{cycle_cards(review)}</section>',
        '<section id="by-region"><h2>By region</h2><div class="grid2">'
        + chart("execution_by_region") + chart("results_by_region") + "</div>"
        + figures_table("regions", review.regions, [("region", "region")]) + "</section>",
        '<section id="by-target"><h2>By target</h2><div class="grid2">'
        + chart("execution_by_target") + chart("results_by_target") + "</div>"
        + figures_table("targets", review.targets, [("target", "target")]) + "</section>",
        '<section id="states-section"><h2>States</h2><p class="lead">Click a column to sort; '
        "type to filter (a flag's words too). Amounts in USD.</p>"
        '<input class="filter" data-table="states" type="search" placeholder="Filter: a '
        'name, region, cycle, flag…" aria-label="Filter the States">'
        + figures_table("states", review.states.assign(
            state=[f"{n or i} ({i})" for n, i in zip(review.states["name"],
                                                     review.states["iso3"], strict=True)]),
            [("state", "State"), ("region", "region"), ("income_group", "income")])
        + "</section>",
        donors_section(review),
    ])
    return page_bytes(head, definitions, provenance, figures_json)
