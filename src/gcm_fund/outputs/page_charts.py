"""The charts of report.html as plotly figure JSON, built as plain dicts from a run folder's
tables (plotly.js draws them in the page; the Python package's figure objects are not
needed to describe them).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from gcm_fund.outputs.page_folder import (
    INCOME_NAMES,
    INCOME_ORDER,
    KIND_NAMES,
    Folder,
    Names,
    income_key,
    target_key,
    usd,
)

SDG_COLOURS = {
    "1": "#E5243B", "2": "#DDA63A", "3": "#4C9F38", "4": "#C5192D", "5": "#FF3A21",
    "6": "#26BDE2", "7": "#FCC30B", "8": "#A21942", "9": "#FD6925", "10": "#DD1367",
    "11": "#FD9D24", "12": "#BF8B2E", "13": "#3F7E44", "14": "#0A97D9", "15": "#56C02B",
    "16": "#00689D", "17": "#19486A",
}
GRANT_COLOUR, LOAN_COLOUR, NEUTRAL_COLOUR = "#1f6f8b", "#d98c1f", "#6b7b8c"


def label_text(text: str) -> str:
    """Text for a chart's label or hover text: plotly reads `<a href>`, `<b>` and `<br>` in
    them as markup (a region named `<a href=...>` would be a live link), and `&lt;` as
    `<`; so `<`, `>` and `&` are written as entities and show as typed."""
    return html.escape(text, quote=False)


def _group_label(kind: str, instrument: str) -> str:
    return f"{KIND_NAMES.get(kind, kind.capitalize() or 'Other')} {instrument or 'funds'}s" \
        if instrument in {"grant", "loan"} else KIND_NAMES.get(kind, kind or "Other")


def _layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": {"family": '-apple-system, "Segoe UI", Roboto, Arial, sans-serif',
                 "size": 13, "color": "#1d2733"},
        "margin": {"l": 10, "r": 10, "t": 30, "b": 30},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
    }
    layout.update(extra)
    return layout


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def sankey_figure(folder: Folder, names: Names) -> dict[str, Any]:
    """Money from sources, grouped by kind and instrument, to regions or income groups
    (a menu switches between them) and on to targets."""
    allocations = folder.allocations
    sources = folder.sources.set_index("source_id")
    states = folder.states.set_index("iso3")
    group_of = {f: _group_label(str(sources["kind"].get(f, "")),
                                str(sources["instrument"].get(f, "")))
                for f in allocations["source_id"].unique()}
    frame = pd.DataFrame({
        "group": allocations["source_id"].map(group_of),
        "instrument": allocations["source_id"].map(sources["instrument"]).fillna(""),
        "region": allocations["iso3"].map(states["region"]).fillna("unknown"),
        "income": allocations["iso3"].map(states["income_group"]).fillna("unknown"),
        "target": allocations["target"],
        "amount": allocations["amount_usd"],
    })
    traces = []
    for middle in ("region", "income"):
        groups = sorted(frame["group"].unique())
        middles = sorted(frame[middle].unique(), key=income_key if middle == "income" else str)
        targets = sorted(frame["target"].unique(), key=target_key)
        labels = [label_text(str(label)) for label in
                  (groups
                   + [INCOME_NAMES.get(m, m) if middle == "income" else m for m in middles]
                   + [names.of_target(t) for t in targets])]
        index = {("g", g): i for i, g in enumerate(groups)}
        index.update({("m", m): len(groups) + i for i, m in enumerate(middles)})
        index.update({("t", t): len(groups) + len(middles) + i for i, t in enumerate(targets)})
        instrument_of = frame.groupby("group")["instrument"].first()
        group_colour = [LOAN_COLOUR if instrument_of[g] == "loan" else GRANT_COLOUR
                        for g in groups]
        colours = (group_colour + [NEUTRAL_COLOUR] * len(middles)
                   + [SDG_COLOURS.get(t.split(".")[0], NEUTRAL_COLOUR) for t in targets])
        first = frame.groupby(["group", middle], sort=True)["amount"].sum().reset_index()
        second = frame.groupby([middle, "target"], sort=True)["amount"].sum().reset_index()
        link_source = ([index[("g", g)] for g in first["group"]]
                       + [index[("m", m)] for m in second[middle]])
        link_target = ([index[("m", m)] for m in first[middle]]
                       + [index[("t", t)] for t in second["target"]])
        values = [round(float(v), 2) for v in [*first["amount"], *second["amount"]]]
        link_colour = ([_rgba(group_colour[index[("g", g)]], 0.35) for g in first["group"]]
                       + [_rgba(colours[index[("t", t)]], 0.3) for t in second["target"]])
        traces.append({
            "type": "sankey", "visible": middle == "region", "arrangement": "snap",
            "valueformat": ",.0f", "valuesuffix": " USD",
            "node": {"label": labels, "color": colours, "pad": 14, "thickness": 16,
                     "line": {"width": 0},
                     "hovertemplate": "%{label}<br>USD %{value:,.0f}<extra></extra>"},
            "link": {"source": link_source, "target": link_target, "value": values,
                     "color": link_colour,
                     "hovertemplate": "%{source.label} → %{target.label}<br>"
                                      "USD %{value:,.0f}<extra></extra>"},
        })
    menu = {"type": "buttons", "direction": "right", "x": 0, "y": 1.1, "xanchor": "left",
            "showactive": True, "buttons": [
                {"label": "by region", "method": "restyle",
                 "args": [{"visible": [True, False]}]},
                {"label": "by income group", "method": "restyle",
                 "args": [{"visible": [False, True]}]}]}
    return {"data": traces, "layout": _layout(height=520, updatemenus=[menu],
                                              margin={"l": 10, "r": 10, "t": 50, "b": 10})}


def coverage_figure(title: str, labels: list[str], allocated: list[float],
                    fundable: list[float]) -> dict[str, Any]:
    """Horizontal bars of coverage (allocated / fundable need), largest need on top."""
    labels = [label_text(label) for label in labels]
    shares = [(a / f * 100) if f > 0 else 0.0 for a, f in zip(allocated, fundable, strict=True)]
    hover = [f"{label}<br>{usd(a)} of {usd(f)} fundable"
             for label, a, f in zip(labels, allocated, fundable, strict=True)]
    return {
        "data": [{"type": "bar", "orientation": "h", "y": labels, "x": [round(s, 2)
                                                                       for s in shares],
                  "text": [f"{s:.0f} %" for s in shares], "textposition": "auto",
                  "marker": {"color": GRANT_COLOUR}, "hovertext": hover,
                  "hoverinfo": "text", "cliponaxis": False}],
        "layout": _layout(
            title={"text": title, "x": 0, "font": {"size": 14}},
            height=max(220, 40 + 30 * len(labels)),
            xaxis={"range": [0, 105], "ticksuffix": " %", "gridcolor": "#e6ebf0"},
            yaxis={"autorange": "reversed", "automargin": True},
            margin={"l": 10, "r": 20, "t": 40, "b": 30}),
    }


def instruments_figure(folder: Folder) -> dict[str, Any]:
    """Grants and loans by income group, stacked, in USD."""
    allocations = folder.allocations
    sources = folder.sources.set_index("source_id")
    states = folder.states.set_index("iso3")
    frame = pd.DataFrame({
        "income": allocations["iso3"].map(states["income_group"]).fillna("unknown"),
        "instrument": allocations["source_id"].map(sources["instrument"]).fillna("grant"),
        "amount": allocations["amount_usd"],
    })
    groups = sorted(set(frame["income"]) | set(INCOME_ORDER), key=income_key)
    totals = frame.groupby(["income", "instrument"])["amount"].sum()
    data = []
    for instrument, colour in (("grant", GRANT_COLOUR), ("loan", LOAN_COLOUR)):
        values = [float(totals.get((g, instrument), 0.0)) for g in groups]
        data.append({"type": "bar", "name": f"{instrument}s", "x": groups,
                     "y": [round(v / 1e6, 3) for v in values], "marker": {"color": colour},
                     "hovertext": [label_text(f"{INCOME_NAMES.get(g, g)}: {usd(v)} in "
                                              f"{instrument}s")
                                   for g, v in zip(groups, values, strict=True)],
                     "hoverinfo": "text"})
    return {"data": data, "layout": _layout(
        barmode="stack", height=320,
        title={"text": "Grants and loans by income group", "x": 0, "font": {"size": 14}},
        yaxis={"title": {"text": "USD million"}, "gridcolor": "#e6ebf0"},
        legend={"orientation": "h", "y": -0.15}, margin={"l": 60, "r": 20, "t": 40, "b": 40})}


def coverage_by(frame: pd.DataFrame, key: pd.Series, order: Any = str
        ) -> tuple[list[str], list[float], list[float]]:
    grouped = frame.groupby(key)[["allocated_usd", "fundable_usd"]].sum()
    grouped = grouped[grouped["fundable_usd"] > 0]
    keys = sorted(grouped.index, key=order)
    return ([str(k) for k in keys], [float(grouped.loc[k, "allocated_usd"]) for k in keys],
            [float(grouped.loc[k, "fundable_usd"]) for k in keys])


def page_charts(folder: Folder, names: Names) -> dict[str, dict[str, Any]]:
    """The page's figures by chart id; a chart with nothing to draw is left out (the page
    says so in its place)."""
    states = folder.states.set_index("iso3")
    # The denominators are the need some source may fund: a gap no source may reach
    # (an ineligible State, earmarks) would otherwise pull a group below the floor.
    coverage = folder.coverage[folder.coverage["eligible"].astype(str).str.lower()
                               .isin(["true", "yes", "1"])]
    of = " (of the fundable need some source may fund)"
    charts: dict[str, dict[str, Any]] = {"sankey": sankey_figure(folder, names)}
    income = coverage_by(coverage, coverage["iso3"].map(states["income_group"]), income_key)
    charts["by_income"] = coverage_figure(
        "Coverage by income group" + of, [INCOME_NAMES.get(k, k) for k in income[0]],
        *income[1:])
    region = coverage_by(coverage, coverage["iso3"].map(states["region"]))
    charts["by_region"] = coverage_figure("Coverage by region" + of, *region)
    target = coverage_by(coverage, coverage["target"], target_key)
    charts["by_target"] = coverage_figure(
        "Coverage by target" + of, [names.of_target(t) for t in target[0]], *target[1:])
    charts["instruments"] = instruments_figure(folder)
    # plotly cannot draw a Sankey without links (it throws); a chart with nothing in it says so.
    empty = {"sankey": not len(folder.allocations), "by_income": not income[0],
             "by_region": not region[0], "by_target": not target[0],
             "instruments": not len(folder.allocations)}
    return {key: chart for key, chart in charts.items() if not empty[key]}
