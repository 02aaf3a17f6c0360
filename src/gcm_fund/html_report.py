"""report.html: one self-contained page for a fund's board, built from a run folder's files.

The page is rebuilt from the folder alone (`gcm-fund report RUN_DIR`), so it reads the
written tables, the manifest, the copied inputs and the policy, never the solver's values.
Charts are drawn by plotly.js, embedded whole in the page: plotly has a Sankey diagram
(Vega-Lite has none), its bundle works from a `file://` page with no network, and the Python
package ships the bundle, so nothing is fetched when the page is built or opened. Every
figure a person reads is formatted for people (USD 1.23 bn, 42.5 %); exact values stay in
the CSV files.
"""

from __future__ import annotations

import html
import json
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import writing
from .errors import UsageError

REPORT_FILE = "report.html"
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
SDG_COLOURS = {
    "1": "#E5243B", "2": "#DDA63A", "3": "#4C9F38", "4": "#C5192D", "5": "#FF3A21",
    "6": "#26BDE2", "7": "#FCC30B", "8": "#A21942", "9": "#FD6925", "10": "#DD1367",
    "11": "#FD9D24", "12": "#BF8B2E", "13": "#3F7E44", "14": "#0A97D9", "15": "#56C02B",
    "16": "#00689D", "17": "#19486A",
}
GRANT_COLOUR, LOAN_COLOUR, NEUTRAL_COLOUR = "#1f6f8b", "#d98c1f", "#6b7b8c"
NUMBER_OF_BINDING_RULES = 25
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


def _read_table(path: Path, numbers: Iterable[str] = ()) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    table.columns = [c.strip() for c in table.columns]
    table = table.apply(lambda column: column.str.strip())
    for name in numbers:
        if name in table.columns:
            table[name] = pd.to_numeric(table[name].replace("", "nan"), errors="coerce")
    return table


def read_folder(folder: Path | str) -> Folder:
    """The files of a run folder that the page is built from."""
    path = Path(folder)
    if not (path / "manifest.json").is_file():
        raise UsageError(f"{path}: not a run folder (no manifest.json)")
    missing = [name for name in ("allocations.csv", "coverage.csv", "sources_summary.csv",
                                 "constraints.csv") if not (path / name).is_file()]
    if missing:
        raise UsageError(f"{path}: not a complete run folder (missing {', '.join(missing)})")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    amounts = ("amount_usd", "need_usd", "fundable_usd", "allocated_usd", "coverage",
               "pledge_usd", "unallocated_usd", "marginal_value", "lhs", "rhs", "slack",
               "dual", "priority", "level", "step", "gaps_stopped")
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
    return Folder(
        path=path, manifest=manifest,
        allocations=_read_table(path / "allocations.csv", amounts),
        coverage=_read_table(path / "coverage.csv", amounts),
        sources_summary=_read_table(path / "sources_summary.csv", amounts),
        constraints=_read_table(path / "constraints.csv", amounts),
        stage1_constraints=_read_table(stage1, amounts) if stage1.is_file() else None,
        levels=_read_table(levels, amounts) if levels.is_file() else None,
        states=states, sources=sources, policy_text=policy_text, policy=policy,
    )


# ---------------------------------------------------------------- what the page says

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


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _binding(constraints: pd.DataFrame, threshold: float = 1e-9) -> pd.DataFrame:
    found = constraints[constraints["dual"].abs() > threshold]
    return found.reindex(found["dual"].abs().sort_values(ascending=False, kind="stable").index)


# ---------------------------------------------------------------- the page

STYLE = """
:root{--ink:#1d2733;--muted:#5b6775;--line:#dde3ea;--bg:#f5f7fa;--accent:#1f6f8b;
--warn:#8a1c1c;--warnbg:#fdecea}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#16324f;color:#fff;padding:1.4em 2em 1.2em}
header.top h1{margin:0;font-size:1.6em;font-weight:600}
header.top p{margin:.3em 0 0;color:#c9d6e3}
main{max-width:1180px;margin:0 auto;padding:1em 2em 3em}
.banner{background:var(--warnbg);color:var(--warn);border:1px solid #f2b8b5;
border-left:6px solid var(--warn);padding:.8em 1.2em;margin:1em 0;font-weight:600}
.banner span{font-weight:400;display:block;color:#5c1f1f}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(165px,1fr));gap:12px;
margin:1.2em 0}
.why{margin:-.4em 0 1em;color:var(--muted);font-size:.92em}.why p{margin:.2em 0}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.9em 1.1em}
.card .label{color:var(--muted);font-size:.8em;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:1.55em;font-weight:600;margin:.15em 0;color:#16324f}
.card .note{color:var(--muted);font-size:.85em}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1em 1.4em;
margin:1.2em 0}
section h2{margin:.2em 0 .6em;font-size:1.2em}
section p.lead{color:var(--muted);margin-top:-.3em}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:12px}
.chart{min-height:320px}
table{border-collapse:collapse;width:100%;font-size:.88em}
th,td{padding:.35em .6em;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
th{background:#eef2f6;position:sticky;top:0;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:.7em}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:.7em}
.scroll{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:6px}
input.filter{padding:.4em .7em;border:1px solid #b9c4cf;border-radius:6px;width:22em;
margin:.2em 0 .7em;font:inherit}
.track{display:inline-block;width:60px;height:.65em;background:#e3e9ef;border-radius:2px;
vertical-align:middle;margin-right:.5em;overflow:hidden}
.track span{display:block;height:100%;background:var(--accent)}
td.small{font-size:.9em;color:#3a4654}
pre{background:#f3f5f8;border:1px solid var(--line);padding:.8em;overflow:auto;
font-size:.85em}
dl{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 2em;margin:0}
dl div{margin:.4em 0}dl dt{font-weight:600}dl dd{margin:.1em 0 0;color:#333}
table.facts th{width:12em;white-space:nowrap;position:static}
table.facts td{word-break:break-all}
.muted{color:var(--muted)}
details summary{cursor:pointer;color:var(--accent)}
@media print{body{background:#fff}section,.card{break-inside:avoid;border-color:#ccc}
.scroll{max-height:none;overflow:visible}input.filter{display:none}}
"""

TABLE_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  var heads=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads,function(th,col){
    th.addEventListener('click',function(){
      var up=th.getAttribute('aria-sort')!=='ascending';
      Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',up?'ascending':'descending');
      var numeric=th.classList.contains('num');
      var rows=Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function(a,b){
        var x=a.cells[col].getAttribute('data-sort')||a.cells[col].textContent;
        var y=b.cells[col].getAttribute('data-sort')||b.cells[col].textContent;
        var d=numeric?(parseFloat(x)||0)-(parseFloat(y)||0):x.localeCompare(y);
        return up?d:-d;});
      rows.forEach(function(r){table.tBodies[0].appendChild(r);});
    });
  });
});
document.querySelectorAll('input.filter').forEach(function(input){
  var table=document.getElementById(input.getAttribute('data-table'));
  input.addEventListener('input',function(){
    var words=input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows,function(row){
      var text=row.textContent.toLowerCase();
      row.style.display=words.every(function(w){return text.indexOf(w)>=0;})?'':'none';
    });
  });
});
"""

CHART_SCRIPT = """
(function(){
  var figures=JSON.parse(document.getElementById('figures').textContent);
  var config={displaylogo:false,responsive:true,displayModeBar:false};
  var drawn=Object.keys(figures).map(function(id){
    return Plotly.newPlot(id,figures[id].data,figures[id].layout,config);});
  Promise.all(drawn).then(function(){document.body.setAttribute('data-ready','true');});
})();
"""


def _weighted(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{value:,.2f}"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(text: str, sort: float | str | None = None, num: bool = False) -> str:
    attributes = ' class="num"' if num else ""
    if sort is not None:
        sort_text = "" if isinstance(sort, float) and math.isnan(sort) else sort
        attributes += f' data-sort="{_esc(sort_text)}"'
    return f"<td{attributes}>{_esc(text)}</td>"


def _table(table_id: str, headers: list[tuple[str, bool]], rows: list[str], *,
           sortable: bool = True) -> str:
    head = "".join(f'<th{" class=num" if num else ""}>{_esc(h)}</th>' for h, num in headers)
    return (f'<div class="scroll"><table id="{table_id}"'
            f'{" class=sortable" if sortable else ""}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


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
    frame = pd.DataFrame({
        "group": [_group_label(str(sources["kind"].get(f, "")),
                               str(sources["instrument"].get(f, "")))
                  for f in allocations["source_id"]],
        "instrument": allocations["source_id"].map(sources["instrument"]).fillna(""),
        "region": allocations["iso3"].map(states["region"]).fillna("unknown"),
        "income": allocations["iso3"].map(states["income_group"]).fillna("unknown"),
        "target": allocations["target"],
        "amount": allocations["amount_usd"],
    })
    traces = []
    for middle in ("region", "income"):
        groups = sorted(frame["group"].unique())
        middles = sorted(frame[middle].unique(), key=_income_key if middle == "income" else str)
        targets = sorted(frame["target"].unique(), key=_target_key)
        labels = (groups
                  + [INCOME_NAMES.get(m, m) if middle == "income" else m for m in middles]
                  + [names.of_target(t) for t in targets])
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


def _income_key(value: str) -> tuple[int, str]:
    return (INCOME_ORDER.index(value) if value in INCOME_ORDER else len(INCOME_ORDER), value)


def _target_key(target: str) -> tuple[int, int, str]:
    goal, _, number = target.partition(".")
    return (int(goal) if goal.isdigit() else 99, int(number) if number.isdigit() else 100,
            number)


def coverage_figure(title: str, labels: list[str], allocated: list[float],
                    fundable: list[float]) -> dict[str, Any]:
    """Horizontal bars of coverage (allocated / fundable need), largest need on top."""
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
    groups = sorted(set(frame["income"]) | set(INCOME_ORDER), key=_income_key)
    totals = frame.groupby(["income", "instrument"])["amount"].sum()
    data = []
    for instrument, colour in (("grant", GRANT_COLOUR), ("loan", LOAN_COLOUR)):
        values = [float(totals.get((g, instrument), 0.0)) for g in groups]
        data.append({"type": "bar", "name": f"{instrument}s", "x": groups,
                     "y": [round(v / 1e6, 3) for v in values], "marker": {"color": colour},
                     "hovertext": [f"{INCOME_NAMES.get(g, g)}: {usd(v)} in {instrument}s"
                                   for g, v in zip(groups, values, strict=True)],
                     "hoverinfo": "text"})
    return {"data": data, "layout": _layout(
        barmode="stack", height=320,
        title={"text": "Grants and loans by income group", "x": 0, "font": {"size": 14}},
        yaxis={"title": {"text": "USD million"}, "gridcolor": "#e6ebf0"},
        legend={"orientation": "h", "y": -0.15}, margin={"l": 60, "r": 20, "t": 40, "b": 40})}


def _by(frame: pd.DataFrame, key: pd.Series, order: Any = str
        ) -> tuple[list[str], list[float], list[float]]:
    grouped = frame.groupby(key)[["allocated_usd", "fundable_usd"]].sum()
    grouped = grouped[grouped["fundable_usd"] > 0]
    keys = sorted(grouped.index, key=order)
    return ([str(k) for k in keys], [float(grouped.loc[k, "allocated_usd"]) for k in keys],
            [float(grouped.loc[k, "fundable_usd"]) for k in keys])


def _no_floor_note(folder: Folder, group: str) -> str:
    """Why a run has no floor, from its files (the terminal says the same,
    `results.no_floor_reason`): no money, no gap in the group, or none it can reach."""
    if not (folder.sources_summary["pledge_usd"] > 0).any():
        return "every pledge is 0, so no gap can receive money"
    states = folder.states
    if group == "all":
        members = set(states["iso3"])
    elif group == "ldc":
        ldc = states["ldc"] if "ldc" in states else pd.Series("", index=states.index)
        members = set(states.loc[ldc.str.lower().isin(["true", "yes", "1"]), "iso3"])
    else:
        members = set(states.loc[states["income_group"] == group, "iso3"])
    if not folder.coverage["iso3"].isin(members).any():
        return "no gap is in the policy's equity group"
    return "no gap in the policy's equity group can receive money"


def _headline_cards(folder: Folder, names: Names, figures: Headline) -> str:
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
        setters = (_binding(folder.stage1_constraints, 0.0)
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
        floor_note = (f"of fundable need reached by {group_words}"
                      + ("" if maximize else " (fixed by the policy)"))
        if set_by and maximize:
            why.append(f"What set the floor: {set_by}.")
    left = folder.sources_summary[folder.sources_summary["unallocated_usd"] > 0.005]
    reasons = _unallocated_reasons(folder, names, left)
    cards = [
        ("Equity floor", floor_value, floor_note, "floor",
         "" if figures.floor is None else repr(figures.floor)),
        ("Allocated", usd(figures.allocated_usd),
         f"of {usd(figures.pledged_usd)} pledged "
         f"({percent(_share(figures.allocated_usd, figures.pledged_usd))})",
         "allocated_usd", f"{figures.allocated_usd:.2f}"),
        ("Fundable need covered", percent(_share(figures.allocated_usd, figures.fundable_usd)),
         f"of {usd(figures.fundable_usd)} fundable need", "fundable_usd",
         f"{figures.fundable_usd:.2f}"),
        ("Loans", percent(_share(figures.loans_usd, figures.allocated_usd)),
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
    notes = "".join(f"<p>{_esc(line)}</p>" for line in why)
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{_esc(label)}</div>'
        f'<div class="value" data-figure="{key}" data-value="{_esc(raw)}">{_esc(value)}</div>'
        f'<div class="note">{_esc(note)}</div></div>'
        for label, value, note, key, raw in cards) + "</div>" + (
        f'<div class="why">{notes}</div>' if notes else "")


def _unallocated_reasons(folder: Folder, names: Names, left: pd.DataFrame) -> str:
    if not len(left):
        return ""
    parts = []
    for row in left.sort_values("unallocated_usd", ascending=False).head(3).itertuples():
        if math.isnan(row.marginal_value):
            why = "no gap it may fund"
        elif row.marginal_value > 1e-9:
            why = "held back by a rule"
        else:
            why = "the gaps its earmarks allow are full or capped"
        parts.append(f"{names.of_source(row.source_id)}: {usd(row.unallocated_usd)}, {why}")
    more = len(left) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _state_table(folder: Folder, names: Names) -> str:
    coverage, allocations = folder.coverage, folder.allocations
    states = folder.states.set_index("iso3")
    has_levels = "level" in coverage.columns
    totals = coverage.groupby("iso3", sort=True)[["need_usd", "fundable_usd",
                                                  "allocated_usd"]].sum()
    by_source = allocations.groupby(["iso3", "source_id"])["amount_usd"].sum().reset_index()
    rows = []
    order = sorted(totals.index, key=lambda iso3: names.of_state(str(iso3)).casefold())
    for iso3, row in totals.loc[order].iterrows():
        mine = by_source[by_source["iso3"] == iso3].sort_values("amount_usd", ascending=False)
        funded_by = "; ".join(names.of_source(f) for f in mine["source_id"])
        share = _share(row.allocated_usd, row.fundable_usd)
        cells = [
            _cell(f"{names.of_state(str(iso3))} ({iso3})"),
            _cell(str(states["region"].get(iso3, ""))),
            _cell(str(states["income_group"].get(iso3, ""))),
            _cell(usd_full(row.need_usd), row.need_usd, num=True),
            _cell(usd_full(row.fundable_usd), row.fundable_usd, num=True),
            _cell(usd_full(row.allocated_usd), row.allocated_usd, num=True),
            _coverage_cell(share),
        ]
        if has_levels:
            mine_gaps = coverage[coverage["iso3"] == iso3]
            level = mine_gaps["level"].min()
            stopped = _stopped_by(mine_gaps)
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


def _coverage_cell(share: float | None) -> str:
    if share is None:
        return '<td class="num" data-sort="-1">–</td>'
    width = max(0.0, min(share, 1.0)) * 100
    return (f'<td class="num" data-sort="{share!r}"><span class="track"><span '
            f'style="width:{width:.0f}%"></span></span>{_esc(percent(share))}</td>')


def _stopped_by(gaps: pd.DataFrame) -> list[str]:
    if "stopped_by" not in gaps.columns:
        return []
    seen: list[str] = []
    for text in gaps["stopped_by"]:
        for item in str(text).split(";"):
            if item and item not in seen:
                seen.append(item)
    return seen


def _sources_table(folder: Folder, names: Names) -> str:
    sources = folder.sources.set_index("source_id")
    rows = []
    biggest_first = folder.sources_summary.sort_values(["pledge_usd", "source_id"],
                                                       ascending=[False, True], kind="stable")
    for row in biggest_first.itertuples():
        kind = str(sources["kind"].get(row.source_id, ""))
        instrument = str(sources["instrument"].get(row.source_id, ""))
        rows.append("<tr>" + "".join([
            _cell(names.of_source(row.source_id)),
            _cell(KIND_NAMES.get(kind, kind)), _cell(instrument),
            _cell(usd_full(row.pledge_usd), row.pledge_usd, num=True),
            _cell(usd_full(row.allocated_usd), row.allocated_usd, num=True),
            _cell(usd_full(row.unallocated_usd), row.unallocated_usd, num=True),
            _cell(percent(_share(row.allocated_usd, row.pledge_usd)),
                  _share(row.allocated_usd, row.pledge_usd) or 0.0, num=True),
            _cell(figure(row.marginal_value), row.marginal_value, num=True),
        ]) + "</tr>")
    return _table("sources", [("source", False), ("kind", False), ("instrument", False),
                              ("pledge USD", True), ("allocated USD", True),
                              ("unallocated USD", True), ("placed", True),
                              ("marginal value", True)], rows)


def _binding_table(folder: Folder, names: Names) -> str:
    binding = _binding(folder.constraints)
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


def _unfunded(folder: Folder, names: Names) -> str:
    coverage = folder.coverage
    states = folder.states.set_index("iso3")
    constraints = folder.constraints
    tight = constraints[(constraints["slack"].abs() <= 0.01)
                        & constraints["family"].isin(["absorb", "state_share"])]
    capped = {name.partition("[")[2].rstrip("]"): family
              for name, family in zip(tight["name"], tight["family"], strict=True)}
    zero_fundable = coverage[coverage["fundable_usd"] <= 0]
    unfunded = coverage[(coverage["fundable_usd"] > 0) & (coverage["allocated_usd"] <= 0)]
    rows = []
    for row in unfunded.itertuples():
        eligible = str(getattr(row, "eligible", "true")).lower() == "true"
        stopped = _stopped_by(pd.DataFrame([row._asdict()]))
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
            _cell(names.of_target(row.target), _target_key(row.target)[0]),
            _cell(usd_full(row.fundable_usd), row.fundable_usd, num=True),
            _cell(why)]) + "</tr>")
    by_income = zero_fundable.groupby(
        zero_fundable["iso3"].map(states["income_group"]).fillna("unknown")).size()
    zero_text = ", ".join(f"{n} of {INCOME_NAMES.get(g, g)} States" for g, n in
                          sorted(by_income.items(), key=lambda kv: _income_key(kv[0])))
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


def _levels_table(folder: Folder, names: Names) -> str:
    levels = folder.levels
    if levels is None or not len(levels):
        return ""
    rows = ["<tr>" + "".join([
        _cell(str(int(r.step)) if not math.isnan(r.step) else "", r.step, num=True),
        _cell(figure(r.level), r.level, num=True),
        _cell(str(int(r.gaps_stopped)) if not math.isnan(r.gaps_stopped) else "",
              r.gaps_stopped, num=True),
        _cell(names.summary([s for s in str(r.stopped_by).split(";") if s]))]) + "</tr>"
        for r in levels.itertuples()]
    return ('<section id="levels"><h2>Priority levels</h2><p class="lead">Each step of the '
            "water filling: the level reached, how many gaps stopped rising there, and the "
            "rules that stopped them.</p>"
            + _table("levels", [("step", True), ("level", True), ("gaps stopped", True),
                                ("stopped by", False)], rows) + "</section>")


DEFINITIONS = [
    ("Fundable need", "The part of a State's capacity gap the fund may cover: the gap times "
     "the policy's co-financing share for the State's income group."),
    ("Coverage", "Money allocated to a gap divided by its fundable need."),
    ("Equity floor", "The coverage every gap of the policy's equity group reaches at least; "
     "the fund first makes it as high as the pledges and rules allow."),
    ("Priority", "The weight of a gap: target weight times income weight times the largest "
     "weight among the State's migration roles."),
    ("Level", "Under the priority-levels method, a gap's coverage divided by its priority. "
     "Levels rise together, like water, until a rule stops a gap; the lowest levels are made "
     "as high as possible."),
    ("What stopped it", "The rules that kept a gap from rising further: its fundable need, "
     "the State's absorption or share cap, the budgets or per-State caps of its sources, or "
     "a thematic share."),
    ("Marginal value", "How much the run's objective would improve per additional USD of a "
     "rule's limit (its dual value): for a source's budget, what one more dollar pledged "
     "would achieve. Zero means the rule does not bind."),
    ("Weighted objective", "The sum of every amount times its weight, less the loan penalty: "
     "what the fund maximises once the floor is set (weighted method)."),
    ("Grant element", "The concessional share of a loan: 1 for a grant, less for a loan."),
    ("Unallocated", "Pledged money no rule lets the fund place: its earmarks allow only gaps "
     "that are already full or capped."),
]


def render(folder: Folder) -> str:
    """The whole page for one run folder."""
    from plotly.offline import get_plotlyjs  # the bundle is large: read it only here

    names = Names(folder)
    manifest = folder.manifest
    figures = headline(folder)
    states = folder.states.set_index("iso3")
    coverage = folder.coverage
    charts: dict[str, dict[str, Any]] = {"sankey": sankey_figure(folder, names)}
    income = _by(coverage, coverage["iso3"].map(states["income_group"]), _income_key)
    charts["by_income"] = coverage_figure(
        "Coverage by income group", [INCOME_NAMES.get(k, k) for k in income[0]], *income[1:])
    region = _by(coverage, coverage["iso3"].map(states["region"]))
    charts["by_region"] = coverage_figure("Coverage by region", *region)
    target = _by(coverage, coverage["target"], _target_key)
    charts["by_target"] = coverage_figure(
        "Coverage by target", [names.of_target(t) for t in target[0]], *target[1:])
    charts["instruments"] = instruments_figure(folder)
    # plotly cannot draw a Sankey without links (it throws); a chart with nothing in it says so.
    empty = {"sankey": not len(folder.allocations), "by_income": not income[0],
             "by_region": not region[0], "by_target": not target[0],
             "instruments": not len(folder.allocations)}
    charts = {key: chart for key, chart in charts.items() if not empty[key]}

    def chart(key: str) -> str:
        if key in charts:
            return f'<div id="{key}" class="chart"></div>'
        return (f'<div id="{key}" class="chart-empty"><p class="muted">Nothing to show: no '
                "money was allocated or no gap has fundable need.</p></div>")

    policy_name = manifest.get("model", {}).get("name") or "unnamed policy"
    banner = ""
    if manifest.get("illustrative") is True:
        description = str(manifest.get("description") or "").strip()
        banner = ('<div class="banner" role="alert" id="illustrative">ILLUSTRATIVE DATA: these '
                  "inputs are an example, not real pledges or costings."
                  + (f"<span>{_esc(description)}</span>" if description else "") + "</div>")
    solver = manifest.get("solver", {})
    versions = manifest.get("versions", {})
    provenance_rows = [
        ("run id", manifest.get("run_id", "")), ("status", manifest.get("status", "")),
        ("method", manifest.get("objective", {}).get("method", "weighted")),
        ("weighted objective", _weighted(manifest.get("objective", {}).get("weighted"))),
        ("solver", f"{solver.get('name', '')} {solver.get('version', '')}"),
        ("solver options", json.dumps(solver.get("options", {}), sort_keys=True)),
        ("policy", f"{manifest.get('model', {}).get('path', '')} "
                   f"(sha256 {manifest.get('model', {}).get('sha256', '')})"),
        *[(f"input {name}", f"sha256 {digest}")
          for name, digest in sorted(manifest.get("inputs", {}).items())],
        ("versions", " · ".join(f"{name} {value}" for name, value in sorted(versions.items()))),
    ]
    provenance = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                         for k, v in provenance_rows)
    definitions = "".join(f"<div><dt>{_esc(term)}</dt><dd>{_esc(text)}</dd></div>"
                          for term, text in DEFINITIONS)
    figures_json = json.dumps(charts, sort_keys=True, separators=(",", ":"),
                              allow_nan=False).replace("</", "<\\/")
    run_id = manifest.get("run_id", "")
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Fund allocation: {_esc(policy_name)} ({_esc(run_id)})</title>",
        f"<style>{STYLE}</style></head><body>",
        '<header class="top"><h1>Allocation of the migration financing fund</h1>',
        f"<p>Policy <strong>{_esc(policy_name)}</strong> · run {_esc(run_id)} · "
        f"status {_esc(manifest.get('status', ''))}</p></header><main>",
        banner,
        _headline_cards(folder, names, figures),
        '<section id="flows"><h2>Where the money goes</h2><p class="lead">From the sources, '
        "grouped by kind and instrument, to regions (or income groups) and to the SDG "
        f'targets. Hover for amounts.</p>{chart("sankey")}</section>',
        '<section id="coverage"><h2>Coverage of fundable need</h2><div class="grid2">'
        + "".join(chart(k) for k in ("by_income", "instruments", "by_region", "by_target"))
        + "</div></section>",
        '<section id="states-section"><h2>States</h2><p class="lead">Click a column to sort; '
        "type to filter. Amounts in USD.</p>", _state_table(folder, names), "</section>",
        '<section id="sources-section"><h2>Sources</h2>', _sources_table(folder, names),
        "</section>",
        '<section id="binding"><h2>Rules that bound</h2><p class="lead">The rules the '
        "allocation runs up against, with their marginal value (how much the objective "
        "would gain per USD more of the limit).</p>", _binding_table(folder, names),
        "</section>",
        _levels_table(folder, names),
        '<section id="unfunded"><h2>Gaps left unfunded</h2>', _unfunded(folder, names),
        "</section>",
        '<section id="policy"><h2>The policy as written</h2>',
        f"<pre>{_esc(folder.policy_text or '(all defaults)')}</pre></section>",
        f'<section id="definitions"><h2>Definitions</h2><dl>{definitions}</dl></section>',
        '<section id="provenance"><h2>Provenance</h2><table class="facts">'
        f"{provenance}</table></section>",
        "</main>",
        f'<script type="application/json" id="figures">{figures_json}</script>',
        f"<script>{TABLE_SCRIPT}</script>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        f"<script>{CHART_SCRIPT}</script>",
        "</body></html>\n",
    ])


def write_report(folder: Path | str) -> Path:
    """Build report.html from the run folder's files and write it there, atomically."""
    path = Path(folder)
    target = path / REPORT_FILE
    writing.write_atomic(target, render(read_folder(path)))
    return target


__all__ = ["REPORT_FILE", "read_folder", "render", "write_report", "usd", "percent"]
