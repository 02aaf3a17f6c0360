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

import importlib.util
import json
from pathlib import Path

from gcm_fund import writing
from gcm_fund.model.spec import METHOD_TRAITS
from gcm_fund.outputs.page_charts import page_charts
from gcm_fund.outputs.page_cycles import cycle_section
from gcm_fund.outputs.page_folder import Folder, Names, Written, headline, read_folder
from gcm_fund.outputs.page_sections import (
    binding_table,
    esc,
    headline_cards,
    levels_table,
    selection_section,
    sources_table,
    state_table,
    terms_table,
    unfunded_section,
    weighted_text,
)

REPORT_FILE = "report.html"


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


DEFINITIONS = [
    ("Fundable need", "The part of a State's capacity gap the fund may cover: the gap times "
     "the policy's co-financing share for the State's income group."),
    ("Coverage", "Money allocated to a gap divided by its fundable need."),
    ("Equity floor", "The coverage every gap of the policy's equity group reaches at least; "
     "the fund first makes it as high as the pledges and rules allow."),
    ("Grant equivalent", "Money counted at its concessionality: a grant in full, a loan at "
     "its grant element (the share of its face value that is a gift)."),
    ("Loan share", "The loans' share of a State's money; the policy caps it by the State's "
     "risk of debt distress (loans.max_share)."),
    ("Priority", "The weight of a gap: target weight times income weight times the largest "
     "weight among the State's migration roles."),
    ("Level", "Under the priority-levels method, a gap's coverage divided by its priority. "
     "Levels rise together, like water, until a rule stops a gap; the lowest levels are made "
     "as high as possible."),
    ("What stopped it", "The rules that kept a gap from rising further: its fundable need, "
     "the State's absorption or share cap, the budgets or per-State caps of its sources, or "
     "a thematic share."),
    ("Marginal value", "Under the weighted method, how much the run's objective would "
     "improve per additional USD of a rule's limit (its dual value). Under priority levels, "
     "for a source: how far the lowest level among the gaps it may fund rises per USD more "
     "of its pledge, found by solving again with the pledge raised by h = max(USD 1, 1e-6 "
     "of the pledge); the same on every solver. For a rule: one valid dual of the last "
     "filling step (another solver may give another where several are valid)."),
    ("Placed per USD", "Under priority levels: how much more money the fund places per USD "
     "more of a source's pledge (1: all of it), found by solving again."),
    ("Reaches its gaps per USD", "Under priority levels: of that, how much more reaches the "
     "gaps the source may fund (its earmarks); the rest took the place of other money "
     "there, which went elsewhere."),
    ("Weighted objective", "The sum of every amount times its weight, less the loan penalty: "
     "what the fund maximises once the floor is set (weighted method)."),
    ("Grant element", "The concessional share of a loan: 1 for a grant, less for a loan."),
    ("Unallocated", "Pledged money no rule lets the fund place: its earmarks allow only gaps "
     "that are already full or capped."),
]


def plotly_js() -> str:
    """plotly.js as the installed plotly package ships it (what `plotly.offline.get_plotlyjs`
    returns), read from its file without importing the package."""
    return _plotly_bytes().decode("utf-8")


def _plotly_bytes() -> bytes:
    spec = importlib.util.find_spec("plotly")
    assert spec is not None and spec.submodule_search_locations is not None
    bundle = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return bundle.read_bytes()


def page_bytes(head: str, definitions: str, provenance: str, figures_json: str) -> bytes:
    """A page's UTF-8 bytes: `head` (its text up to its last section), then what every
    page ends with: definitions, provenance, the figures as JSON, the tables' and charts'
    scripts and plotly.js."""
    end = "".join([
        f'<section id="definitions"><h2>Definitions</h2><dl>{definitions}</dl></section>',
        '<section id="provenance"><h2>Provenance</h2><table class="facts">'
        f"{provenance}</table></section>",
        "</main>",
        f'<script type="application/json" id="figures">{figures_json}</script>',
        f"<script>{TABLE_SCRIPT}</script>",
        '<script type="text/javascript">',
    ])
    tail = f"</script><script>{CHART_SCRIPT}</script></body></html>\n"
    # plotly.js (megabytes, some of it beyond Latin-1) goes in as the bytes of its file:
    # decoding it into the page's text and encoding it again would cost every run its time.
    return b"".join([(head + end).encode("utf-8"), _plotly_bytes(), tail.encode("utf-8")])


def render(folder: Folder) -> bytes:
    """The whole page for one run folder, as the UTF-8 bytes of report.html."""
    names = Names(folder)
    manifest = folder.manifest
    figures = headline(folder)
    charts = page_charts(folder, names)

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
                  + (f"<span>{esc(description)}</span>" if description else "") + "</div>")
    solver = manifest.get("solver", {})
    versions = manifest.get("versions", {})
    method = manifest.get("objective", {}).get("method", "weighted")
    traits = METHOD_TRAITS.get(method) if isinstance(method, str) else None
    provenance_rows = [
        ("run id", manifest.get("run_id", "")), ("status", manifest.get("status", "")),
        ("method", method),
        # Where the weighted sum decides nothing (levels, programmes) the manifest keeps it.
        *([("weighted objective",
            weighted_text(manifest.get("objective", {}).get("weighted")))]
          if traits is not None and traits.has_weighted_objective else []),
        ("solver", f"{solver.get('name', '')} {solver.get('version', '')}"),
        ("solver options", json.dumps(solver.get("options", {}), sort_keys=True)),
        ("policy", f"{manifest.get('model', {}).get('path', '')} "
                   f"(sha256 {manifest.get('model', {}).get('sha256', '')})"),
        *[(f"input {name}", f"sha256 {digest}")
          for name, digest in sorted(manifest.get("inputs", {}).items())],
        ("versions", " · ".join(f"{name} {value}" for name, value in sorted(versions.items()))),
    ]
    provenance = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                         for k, v in provenance_rows)
    definitions = "".join(f"<div><dt>{esc(term)}</dt><dd>{esc(text)}</dd></div>"
                          for term, text in DEFINITIONS)
    figures_json = json.dumps(charts, sort_keys=True, separators=(",", ":"),
                              allow_nan=False).replace("</", "<\\/")
    run_id = manifest.get("run_id", "")
    head = "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Fund allocation: {esc(policy_name)} ({esc(run_id)})</title>",
        f"<style>{STYLE}</style></head><body>",
        '<header class="top"><h1>Allocation of the migration financing fund</h1>',
        f"<p>Policy <strong>{esc(policy_name)}</strong> · run {esc(run_id)} · "
        f"status {esc(manifest.get('status', ''))}</p></header><main>",
        banner,
        headline_cards(folder, names, figures),
        '<section id="flows"><h2>Where the money goes</h2><p class="lead">From the sources, '
        "grouped by kind and instrument, to regions (or income groups) and to the SDG "
        f'targets. Hover for amounts.</p>{chart("sankey")}</section>',
        '<section id="coverage"><h2>Coverage of fundable need</h2><div class="grid2">'
        + "".join(chart(k) for k in ("by_income", "instruments", "by_region", "by_target"))
        + "</div></section>",
        '<section id="states-section"><h2>States</h2><p class="lead">Click a column to sort; '
        "type to filter. Amounts in USD.</p>", state_table(folder, names), "</section>",
        terms_table(folder, names),
        '<section id="sources-section"><h2>Sources</h2>', sources_table(folder, names),
        "</section>",
        cycle_section(folder, names),
        '<section id="binding"><h2>Rules that bound</h2><p class="lead">The rules the '
        "allocation runs up against, with their marginal value ("
        + ("one valid dual of the last filling step: how far the last level would rise per "
           "USD more of the limit; where several duals are valid, another solver may give "
           "another" if folder.levels is not None else
           "how much the objective would gain per USD more of the limit")
        + ").</p>", binding_table(folder, names),
        "</section>",
        levels_table(folder, names),
        selection_section(folder),
        '<section id="unfunded"><h2>Gaps left unfunded</h2>', unfunded_section(folder, names),
        "</section>",
        '<section id="policy"><h2>The policy as written</h2>',
        f"<pre>{esc(folder.policy_text or '(all defaults)')}</pre></section>",
    ])
    return page_bytes(head, definitions, provenance, figures_json)


def write_report(folder: Path | str, written: Written | None = None) -> Path:
    """Build report.html from the run folder's files and write it there, atomically.
    `written`: cells of some of the folder's tables as just written (see `read_folder`)."""
    path = Path(folder)
    target = path / REPORT_FILE
    writing.write_atomic(target, render(read_folder(path, written)))
    return target


__all__ = ["REPORT_FILE", "render", "write_report"]
