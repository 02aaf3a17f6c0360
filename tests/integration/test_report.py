"""report.html: built from the run folder's own files, and read by a real browser."""

from __future__ import annotations

import csv
import html
import json
import math
import os
import re
import shutil
from pathlib import Path

import browser
import cases
import pytest

from gcm_fund import api
from gcm_fund.outputs import page as html_report
from gcm_fund.outputs import page_folder as report_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example_run(bundled_run) -> Path:
    """The bundled example under the LDC-priority policy (a floor, loans, thematic rows),
    solved once a session: tests copy it before changing it."""
    return bundled_run("ldc_priority")


def visible_text(page: str) -> str:
    """The page without its scripts and styles: what a reader sees, roughly."""
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def chart_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="figures">(.*?)</script>', page,
                      flags=re.S)
    assert found
    return json.loads(found.group(1).replace("<\\/", "</"))


def _rebuilt_from_the_files(run: Path, tmp_path: Path) -> bytes:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "report.html").unlink()
    html_report.write_report(copy)
    return (copy / "report.html").read_bytes()


def test_report_is_rebuilt_byte_identical_from_the_folder(example_run, tmp_path):
    # allocate builds the page from the constraints tables' cells as it wrote them, not
    # from the files: the page must be the one the files give.
    assert _rebuilt_from_the_files(example_run, tmp_path) == (
        example_run / "report.html").read_bytes()


def test_a_weighted_run_is_rebuilt_byte_identical_from_the_folder(tmp_path):
    out = tmp_path / "run"
    api.write(api.allocate(ROOT / "inputs", cases.weighted_policy(tmp_path)), out)
    assert (out / "stage1_constraints.csv").is_file()
    assert _rebuilt_from_the_files(out, tmp_path) == (out / "report.html").read_bytes()


def test_the_page_embeds_plotly_js_as_the_package_ships_it(example_run):
    from plotly.offline import get_plotlyjs

    bundle = html_report.plotly_js()
    assert bundle == get_plotlyjs()
    assert f'<script type="text/javascript">{bundle}</script>' in (
        example_run / "report.html").read_text(encoding="utf-8")


def test_every_number_column_sorts_by_a_number(example_run):
    # The page's script sorts a number column by parseFloat(data-sort): a cell whose key
    # is not a number (once `np.float64(0.36)`) sorts as 0.
    page = (example_run / "report.html").read_text(encoding="utf-8")
    keys = re.findall(r'<td class="num" data-sort="([^"]*)"', page)
    assert len(keys) > 100
    for key in keys:
        assert key == "" or math.isfinite(float(key)), key


def test_report_reads_for_people(example_run):
    page = (example_run / "report.html").read_text(encoding="utf-8")
    text = visible_text(page)
    # Names, not ids: every source appears by its name from inputs/sources.csv.
    for line in (ROOT / "inputs" / "sources.csv").read_text().splitlines()[1:]:
        name = line.split(",")[1]
        assert name in text, name
    # No raw floats such as 1.11111111111 anywhere a reader looks.
    assert not re.search(r"\d\.\d{6,}", text), re.search(r".{40}\d\.\d{6,}.{20}", text)
    for section in ("flows", "coverage", "states-section", "sources-section", "binding",
                    "unfunded", "policy", "definitions", "provenance"):
        assert f'id="{section}"' in page, section
    manifest = json.loads((example_run / "manifest.json").read_text())
    assert manifest["run_id"] in text
    assert manifest["model"]["sha256"] in text
    assert 'name = "ldc_priority"' in text  # the policy as written
    # A State marked not eligible in states.csv is named as the reason its gaps got nothing.
    import csv

    with open(ROOT / "inputs" / "states.csv", newline="", encoding="utf-8") as handle:
        barred = [r["name"] for r in csv.DictReader(handle)
                  if r.get("eligible", "").lower() == "false"]
    for name in barred:
        assert re.search(re.escape(name) + r" \(\w{3}\).{0,200}marked not eligible", text,
                         flags=re.S), name


def test_report_charts_add_up_to_the_allocations(example_run):
    figures = chart_data((example_run / "report.html").read_text(encoding="utf-8"))
    manifest = json.loads((example_run / "manifest.json").read_text())
    allocated = manifest["totals"]["allocated_usd"]
    for trace in figures["sankey"]["data"]:
        link = trace["link"]
        groups = len({s for s in link["source"]} - set(link["target"]))
        first = [v for s, v in zip(link["source"], link["value"], strict=True)
                 if s < groups]
        # Money out of the source groups is every dollar allocated, and every dollar
        # reaching the middle column flows on to a target.
        assert sum(first) == pytest.approx(allocated, abs=0.01 * len(first))
        assert sum(link["value"]) == pytest.approx(2 * allocated, abs=0.01 * len(first) * 4)


def test_illustrative_banner_follows_the_manifest(example_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(example_run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.pop("illustrative", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    html_report.write_report(copy)
    assert 'id="illustrative"' not in (copy / "report.html").read_text()
    manifest.update(illustrative=True, description="Pledges are invented.")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    html_report.write_report(copy)
    page = (copy / "report.html").read_text()
    assert 'id="illustrative"' in page
    assert "Pledges are invented." in page
    # The banner comes before any figure.
    assert page.index('id="illustrative"') < page.index('data-figure="allocated_usd"')


def test_levels_columns_show_when_the_run_has_them(example_run, tmp_path):
    """The bundled policies use priority levels: the page shows each gap's level and what
    stopped it, and the levels table, the rules in words."""
    page = html.unescape((example_run / "report.html").read_text())
    assert "<th class=num>level</th>" in page and "what stopped it" in page
    assert 'id="levels"' in page
    steps = len((example_run / "levels.csv").read_text().splitlines()) - 1
    assert steps >= 1 and page.count("<tr>", page.index('id="levels"')) >= steps
    # Other rules edited into the run's files: the page says what the folder holds, in words.
    copy = tmp_path / "copy"
    shutil.copytree(example_run, copy)
    with open(copy / "coverage.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["stopped_by"]:
            row["stopped_by"] = f"gap[{row['iso3']},{row['target']}]"
    with open(copy / "coverage.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (copy / "levels.csv").write_text("step,level,gaps_stopped,stopped_by\n"
                                     "1,0.25,3,budget[deu];absorb[KEN]\n")
    html_report.write_report(copy)
    page = html.unescape((copy / "report.html").read_text())
    assert "absorption of Kenya" in page and "gap fully funded" in page


def test_a_folder_without_manifest_is_refused(tmp_path):
    from gcm_fund.errors import UsageError

    with pytest.raises(UsageError, match="not a run folder"):
        html_report.write_report(tmp_path)


# ------------------------------------------------------------------ in a real browser

def chromium_or_skip() -> str:
    found = browser.find_chromium()
    if found:
        return found
    reason = os.environ.get("GCM_FUND_NO_CHROMIUM", "")
    if os.environ.get("CI") and not reason:
        pytest.fail("CI without Chromium and without a reason: .ci/run installs it")
    pytest.skip(f"no Chromium on this machine ({reason or 'not on PATH'}); "
                "install Debian's chromium, as .ci/run does")


def test_report_in_a_browser(example_run, tmp_path):
    executable = chromium_or_skip()
    page = example_run / "report.html"
    url = page.resolve().as_uri()
    manifest = json.loads((example_run / "manifest.json").read_text())
    with browser.Browser(executable, tmp_path / "profile") as chrome:
        loaded = chrome.open(url)
        drawn = chrome.wait_until("document.body.getAttribute('data-ready') === 'true'")
        figures = chrome.evaluate(
            "Object.fromEntries([...document.querySelectorAll('[data-figure]')]"
            ".map(e => [e.dataset.figure, [e.dataset.value, e.textContent]]))")
        charts = chrome.evaluate("document.querySelectorAll('.chart .main-svg').length")
        shown = chrome.evaluate("document.getElementById('states').tBodies[0].rows.length")
        chrome.evaluate("(() => { const f = document.querySelector('input[data-table=states]');"
                        " f.value = 'kenya'; f.dispatchEvent(new Event('input')); })()")
        filtered = chrome.evaluate(
            "[...document.getElementById('states').tBodies[0].rows]"
            ".filter(r => r.style.display !== 'none').map(r => r.cells[0].textContent)")
        chrome.evaluate("(() => { const f = document.querySelector('input[data-table=states]');"
                        " f.value = ''; f.dispatchEvent(new Event('input')); })()")
        chrome.evaluate("document.querySelector('#states th:nth-child(6)').click()")
        chrome.evaluate("document.querySelector('#states th:nth-child(6)').click()")
        first = chrome.evaluate(
            "document.getElementById('states').tBodies[0].rows[0].cells[5].dataset.sort")
        banner = chrome.evaluate(
            "(() => { const b = document.getElementById('illustrative');"
            " return b ? [b.getBoundingClientRect().top, b.textContent] : null; })()")
        shot = chrome.screenshot(tmp_path / "report.png")
        log = chrome.log
    print(f"\nreport.html: {page.stat().st_size / 1e6:.2f} MB, loaded in {loaded:.2f} s, "
          f"charts drawn {drawn:.2f} s later; screenshot {shot}")
    assert log.errors() == []
    outside = [r for r in log.requests if r != url and not r.startswith(("data:", "blob:"))]
    assert outside == [], outside
    assert charts >= 6  # the Sankey (2 traces on one plot), 3 coverage charts, instruments
    assert shown == len({line.split(",")[0] for line in
                         (example_run / "coverage.csv").read_text().splitlines()[1:]})
    assert filtered == ["Kenya (KEN)"]
    allocated = [float(r.split(",")[5]) for r in
                 (example_run / "coverage.csv").read_text().splitlines()[1:]]
    assert float(first) >= max(allocated) - 0.01  # sorted by allocated, largest first
    totals = manifest["totals"]
    for key in ("allocated_usd", "fundable_usd"):
        value, text = figures[key]
        assert float(value) == totals[key], key
    assert figures["allocated_usd"][1] == report_folder.usd(totals["allocated_usd"])
    assert float(figures["floor"][0]) == manifest["objective"]["floor"]
    assert figures["floor"][1] == report_folder.percent(manifest["objective"]["floor"], 2)
    assert shot.stat().st_size > 50_000
    # The banner shows exactly when the manifest says illustrative, above the figures.
    assert (banner is not None) == (manifest.get("illustrative") is True)
    if banner is not None:
        assert banner[0] < 200 and banner[1].startswith("ILLUSTRATIVE DATA")


def test_report_command_rebuilds_the_page_and_keeps_the_manifest_true(example_run, tmp_path):
    import hashlib

    from typer.testing import CliRunner

    from gcm_fund import audit
    from gcm_fund.cli.app import app

    copy = tmp_path / "copy"
    shutil.copytree(example_run, copy)
    original = (copy / "report.html").read_bytes()
    manifest_text = (copy / "manifest.json").read_text()
    (copy / "report.html").write_text("<p>damaged</p>")
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").read_bytes() == original
    assert (copy / "manifest.json").read_text() == manifest_text  # same page, same manifest
    # A page that differs from the one hashed (another version of the tool) is re-hashed.
    manifest = json.loads(manifest_text)
    manifest["files"]["report.html"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    assert CliRunner().invoke(app, ["report", str(copy)]).exit_code == 0
    recorded = json.loads((copy / "manifest.json").read_text())["files"]["report.html"]
    assert recorded == hashlib.sha256(original).hexdigest()
    assert audit.certify(copy).ok
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "not a run folder" in result.output


def test_a_run_that_allocates_nothing_opens_cleanly(tmp_path, write_case):
    # No money placed (a zero pledge): plotly cannot draw an empty Sankey, so the page says so.
    executable = chromium_or_skip()
    inputs, policy = write_case(
        tmp_path, states=[{"iso3": "KEN", "name": "Kenya", "region": "Africa",
                           "income_group": "LIC"}],
        gaps=[{"iso3": "KEN", "target": "10.7", "need_usd": 1e6}],
        sources=[{"source_id": "a", "name": "A", "kind": "donor", "instrument": "grant",
                  "pledge_usd": 0}],
        policy="[equity]\nmaximize = false\n")
    run = api.write(api.allocate(inputs, policy), tmp_path / "run")
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Nothing to show" in page
    with browser.Browser(executable, tmp_path / "profile") as chrome:
        chrome.open((run / "report.html").resolve().as_uri())
        chrome.wait_until("document.body.getAttribute('data-ready') === 'true'", 30)
        log = chrome.log
    assert log.errors() == []


def test_rules_in_a_few_words_name_each_family_once(example_run):
    names = report_folder.Names(report_folder.read_folder(example_run))
    gaps = [f"gap[KEN,{t}]" for t in ("10.7", "8.8")]
    floors = [f"floor[{s},10.7]" for s in ("KEN", "UGA", "KEN")]
    words = names.summary([*floors, "budget[deu]", *gaps, "absorb[KEN]", "budget[jpn]",
                           "absorb[KEN]", "odd[x]"])
    assert words == ("equity floor; budgets of 2 sources; gap fully funded; absorption of 2 "
                     "States; odd[x]")
    assert names.summary(["budget[deu]", "source_state[deu,KEN]"]) == (
        f"budget of {names.of_source('deu')}; cap of {names.of_source('deu')} in "
        f"{names.of_state('KEN')}")


def test_region_names_in_chart_labels_are_text_not_markup(tmp_path, write_case):
    """A region named `<a href=...>` (issue 19, point 8) shows as typed in the charts'
    labels: in the figures' JSON as entities, and in a browser as text, no link."""
    region = '<a href="https://example.org/x">Evil</a> & <b>bold</b>'
    inputs, policy = write_case(
        tmp_path, states=[{"iso3": "KEN", "name": "Kenya", "region": region,
                           "income_group": "LIC"},
                          {"iso3": "UGA", "name": "Uganda", "region": "Africa",
                           "income_group": "LIC"}],
        gaps=[{"iso3": "KEN", "target": "10.7", "need_usd": 1e6},
              {"iso3": "UGA", "target": "10.7", "need_usd": 1e6}],
        sources=[{"source_id": "a", "name": "A", "kind": "donor", "instrument": "grant",
                  "pledge_usd": 1e6}])
    run = api.write(api.allocate(inputs, policy), tmp_path / "run")
    page = (run / "report.html").read_text(encoding="utf-8")
    figures = chart_data(page)
    escaped = "&lt;a href=\"https://example.org/x\"&gt;Evil&lt;/a&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    assert escaped in figures["by_region"]["data"][0]["y"]
    assert all(escaped in trace["node"]["label"] or not trace["visible"]
               for trace in figures["sankey"]["data"])
    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    assert not [s for s in strings(figures) if "<a" in s or "<b>" in s]
    executable = chromium_or_skip()
    with browser.Browser(executable, tmp_path / "profile") as chrome:
        chrome.open((run / "report.html").resolve().as_uri())
        chrome.wait_until("document.body.getAttribute('data-ready') === 'true'", 30)
        links = chrome.evaluate("document.querySelectorAll('.chart a').length")
        texts = chrome.evaluate("[...document.querySelectorAll('.chart text')]"
                                ".map(t => t.textContent)")
        log = chrome.log
    assert log.errors() == []
    assert links == 0
    assert region in texts


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_the_weighted_objective_is_shown_only_where_it_decides(bundled_run, method):
    """Under levels the weighted sum decides nothing, so the page does not show it (the
    manifest keeps it); under `weighted` it is the objective and the page says so."""
    run = bundled_run("baseline", method=method)
    text = visible_text((run / "report.html").read_text(encoding="utf-8"))
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["objective"]["weighted"] is not None
    shown = re.search(r"weighted objective\s+[0-9]", text) is not None
    assert shown == (method == "weighted"), text[-2000:]
