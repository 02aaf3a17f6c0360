"""`record` and `review` (docs/review.md): hand-worked histories, the files they write, the
page in a real browser, and bad input refused with nothing written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import browser
import pytest
from cases import gap, read_csv, source, state, write_case, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcm_fund import api
from gcm_fund.errors import UsageError

HEADER = "cycle,iso3,target,committed_usd,disbursed_usd,result\n"


# ---------------------------------------------------------------------------------------
# record


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """KEN and MLI fully funded by one pledge of USD 1,800,000.25; UGA excluded (no
    money, so no history row)."""
    tmp = tmp_path_factory.mktemp("record")
    inputs, model = write_case(
        tmp, states=[state("MLI"), state("KEN"), state("UGA")],
        gaps=[gap("MLI", "8.8", 500_000), gap("KEN", "10.7", 1_000_000.25),
              gap("KEN", "8.8", 300_000), gap("UGA", "10.7", 200_000)],
        sources=[source("deu", 1_800_000.25, exclude_states="UGA")])
    return api.write(api.allocate(inputs, model), tmp / "run")


def test_record_writes_a_new_history_sorted_with_two_decimals(small_run, tmp_path, cli):
    history = tmp_path / "books" / "history.csv"
    done = cli("record", small_run, "--cycle", "1", "--history", history)
    assert done.returncode == 0, done.stderr
    # Plain string order: KEN before MLI, 10.7 before 8.8; UGA got nothing.
    assert history.read_text() == (HEADER + "1,KEN,10.7,1000000.25,0.00,\n"
                                   "1,KEN,8.8,300000.00,0.00,\n1,MLI,8.8,500000.00,0.00,\n")
    assert "cycle 1: 3 gaps" in done.stdout


def test_record_appends_and_keeps_what_the_file_holds(small_run, tmp_path, cli):
    history = tmp_path / "history.csv"
    kept = HEADER + "1,UGA,10.7,5.5,5.5,0.25"  # the fund's own figures, no final newline
    history.write_text(kept)
    assert cli("record", small_run, "--cycle", "2", "--history", history).returncode == 0
    assert history.read_text() == (kept + "\n2,KEN,10.7,1000000.25,0.00,\n"
                                   "2,KEN,8.8,300000.00,0.00,\n2,MLI,8.8,500000.00,0.00,\n")


def test_record_refuses_a_cycle_already_recorded(small_run, tmp_path, cli):
    history = tmp_path / "history.csv"
    assert cli("record", small_run, "--cycle", "1", "--history", history).returncode == 0
    before = history.read_bytes()
    done = cli("record", small_run, "--cycle", "1", "--history", history)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {history}: cycle 1 is already recorded; record "
                                   "the run as another cycle, or remove that cycle's rows "
                                   "first")
    assert history.read_bytes() == before


def test_record_refuses_what_is_not_a_certified_run(small_run, tmp_path, cli):
    history = tmp_path / "history.csv"
    done = cli("record", tmp_path, "--cycle", "1", "--history", history)
    assert done.returncode == 2 and "not a run folder" in done.stderr
    forged = tmp_path / "forged"
    shutil.copytree(small_run, forged)
    coverage = forged / "coverage.csv"
    coverage.write_text(coverage.read_text().replace("1000000.25", "2000000.25"))
    done = cli("record", forged, "--cycle", "1", "--history", history)
    assert done.returncode == 2 and "does not certify" in done.stderr
    assert cli("record", small_run, "--cycle", "0", "--history", history).returncode == 2
    assert not history.exists()


def test_record_refuses_a_bad_history_naming_the_line(small_run, tmp_path, cli):
    history = tmp_path / "history.csv"
    history.write_text(HEADER + "1,KEN,10.7,5,6,\n")
    done = cli("record", small_run, "--cycle", "2", "--history", history)
    assert done.returncode == 2
    assert (f"{history}:2: disbursed_usd: got 6, above committed_usd 5: expected a number "
            "in [0, committed_usd] (USD)") in done.stderr
    assert history.read_text() == HEADER + "1,KEN,10.7,5,6,\n"


# ---------------------------------------------------------------------------------------
# review: worked by hand

# Cycle 1: KEN 10.7 (100, 40 paid out, result 0.2), KEN 8.8 (300, 300, not reported),
# MLI 10.7 (200, 50, 0.9), PER 10.7 (100, 100, 0.6); cycle 2: KEN 10.7 (50, 50, 1).
HISTORY = [
    {"cycle": 1, "iso3": "KEN", "target": "10.7", "committed_usd": 100,
     "disbursed_usd": 40, "result": 0.2},
    {"cycle": 1, "iso3": "KEN", "target": "8.8", "committed_usd": 300,
     "disbursed_usd": 300, "result": ""},
    {"cycle": 1, "iso3": "MLI", "target": "10.7", "committed_usd": 200,
     "disbursed_usd": 50, "result": 0.9},
    {"cycle": 1, "iso3": "PER", "target": "10.7", "committed_usd": 100,
     "disbursed_usd": 100, "result": 0.6},
    {"cycle": 2, "iso3": "KEN", "target": "10.7", "committed_usd": 50,
     "disbursed_usd": 50, "result": 1},
]
AMERICAS = "Latin America & <b>Caribbean</b>"  # shown as typed, never as markup


def review_case(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three States with gaps, two donor States (DEU, NOR) paying in USD and NOK."""
    inputs, model = write_case(
        tmp_path,
        states=[state("KEN"), state("MLI"), state("PER", region=AMERICAS),
                state("DEU", "HIC", "Europe", gni_usd=3e12, eligible="false"),
                state("NOR", "HIC", "Europe", gni_usd=1e12, eligible="false")],
        gaps=[gap("KEN", "10.7", 4e6), gap("KEN", "8.8", 2e6), gap("MLI", "10.7", 1e6),
              gap("PER", "10.7", 1e6)],
        sources=[source("deu", None, donor_iso3="DEU"), source("nor", None, donor_iso3="NOR"),
                 source("bank", 5e6, "loan", grant_element=0.5)],
        policy='[pledges]\nvaluation_date = "2024-02-05"\n')
    write_rows(inputs / "contributions.csv", [
        {"source_id": "deu", "currency": "USD", "amount": 900_000, "status": "paid",
         "date": "2023-06-30"},
        {"source_id": "deu", "currency": "USD", "amount": 100_000, "status": "signed",
         "date": "2023-12-15"},
        {"source_id": "nor", "currency": "NOK", "amount": 10e6, "status": "paid",
         "date": "2024-01-15"},
        {"source_id": "nor", "currency": "NOK", "amount": 5e6, "status": "pledged",
         "date": "2024-02-01"},
    ])
    write_rows(inputs / "fx.csv", [{"currency": "NOK", "date": "2024-02-02",
                                    "usd_per_unit": 0.094, "source": "Bank A"}])
    (inputs / "meta.toml").write_text('illustrative = true\ndescription = "A hand case."\n')
    history = tmp_path / "history.csv"
    write_rows(history, HISTORY)
    return inputs, model, history


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("review")
    inputs, model, history = review_case(tmp)
    return api.review(inputs, history, tmp / "review", model=model).written


def test_review_by_state_by_hand(reviewed):
    rows = read_csv(reviewed / "review_states.csv")
    assert [(r["cycle"], r["iso3"], r["region"], r["committed_usd"], r["disbursed_usd"],
             r["execution"], r["result"], r["flags"]) for r in rows] == [
        # KEN: 340 of 400 paid out; its result is 10.7's alone (8.8 not reported).
        ("1", "KEN", "Africa", "400.00", "340.00", "0.850000", "0.200000", "low_results"),
        ("1", "MLI", "Africa", "200.00", "50.00", "0.250000", "0.900000", "low_execution"),
        ("1", "PER", AMERICAS, "100.00", "100.00", "1.000000", "0.600000", ""),
        ("2", "KEN", "Africa", "50.00", "50.00", "1.000000", "1.000000", ""),
    ]


def test_review_by_target_and_region_weights_results_by_commitment(reviewed):
    targets = read_csv(reviewed / "review_targets.csv")
    # 10.7 in cycle 1: (100 x 0.2 + 200 x 0.9 + 100 x 0.6) / 400 = 0.65; 190 of 400 paid.
    assert [(r["cycle"], r["target"], r["committed_usd"], r["execution"], r["result"],
             r["flags"]) for r in targets] == [
        ("1", "10.7", "400.00", "0.475000", "0.650000", "low_execution"),
        ("1", "8.8", "300.00", "1.000000", "", ""),
        ("2", "10.7", "50.00", "1.000000", "1.000000", ""),
    ]
    regions = read_csv(reviewed / "review_regions.csv")
    # Africa in cycle 1: 390 of 600 paid; (100 x 0.2 + 200 x 0.9) / 300 reported.
    assert [(r["cycle"], r["region"], r["execution"], r["result"]) for r in regions] == [
        ("1", "Africa", "0.650000", "0.666667"), ("1", AMERICAS, "1.000000", "0.600000"),
        ("2", "Africa", "1.000000", "1.000000")]


def test_review_donors_paid_share_at_the_valuation_rate(reviewed):
    donors = {r["donor"]: r for r in read_csv(reviewed / "review_donors.csv")}
    assert list(donors) == ["DEU", "NOR"]  # the bank names no donor State and has no rows
    # NOR: NOK 10 M paid and NOK 5 M pledged at USD 0.094: 940,000 of 1,410,000 face.
    nor = donors["NOR"]
    assert (nor["face_usd"], nor["paid_usd"], nor["paid_share"], nor["flags"]) == (
        "1410000.00", "940000.00", "0.666667", "low_payment")
    # It counts 940,000 + 0.8 x 470,000; the fair share is NOR's quarter of the GNI.
    assert nor["pledged_usd"] == "1316000.00"
    assert float(nor["fair_share_usd"]) == pytest.approx(8e6 / 4, abs=0.01)
    assert float(nor["paid_of_fair_share"]) == pytest.approx(940_000 / 2e6, abs=1e-6)
    deu = donors["DEU"]
    assert (deu["paid_share"], deu["flags"], deu["sources"]) == ("0.900000", "", "deu")


def test_review_refuses_bad_history_and_writes_nothing(tmp_path, cli):
    inputs, model, history = review_case(tmp_path)
    history.write_text(HEADER + "1,KEN,10.7,100,40,0.2\n1,KEN,8.8,300,30,2\n")
    done = cli("review", inputs, "--history", history, "--model", model,
               "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[1:] == [
        f"{history}:3: result: got '2', expected a number in [0, 1]"]
    assert not (tmp_path / "out").exists()
    history.write_text(HEADER + "1,KEN,10.7,100,40,0.2\n")
    assert cli("review", inputs, "--history", history, "--model", model,
               "--out", tmp_path / "out").returncode == 0
    # An earlier review is replaced only with --force; a folder of other files never.
    again = cli("review", inputs, "--history", history, "--model", model,
                "--out", tmp_path / "out")
    assert again.returncode == 2 and "use --force" in again.stderr
    assert cli("review", inputs, "--history", history, "--model", model,
               "--out", tmp_path / "out", "--force").returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    done = cli("review", inputs, "--history", history, "--model", model,
               "--out", tmp_path / "mine", "--force")
    assert done.returncode == 2 and "not a review folder" in done.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "kept"


def test_review_is_byte_identical_run_again(reviewed, tmp_path):
    inputs, model, history = (reviewed.parent / "inputs", reviewed.parent / "policy.toml",
                              reviewed.parent / "history.csv")
    again = api.review(inputs, history, tmp_path / "again", model=model).written
    for name in ("review_states.csv", "review_targets.csv", "review_regions.csv",
                 "review_donors.csv", "review.html"):
        assert (again / name).read_bytes() == (reviewed / name).read_bytes(), name


# ---------------------------------------------------------------------------------------
# review.html in a real browser


def test_review_page_in_a_browser(reviewed, tmp_path):
    from test_report import chart_data, chromium_or_skip

    page = (reviewed / "review.html").read_text(encoding="utf-8")
    figures = chart_data(page)
    assert sorted(figures) == ["execution_by_region", "execution_by_target",
                               "results_by_region", "results_by_target"]
    # One trace per cycle; labels escaped for plotly, which reads markup in them.
    assert [t["name"] for t in figures["execution_by_region"]["data"]] == ["cycle 1",
                                                                           "cycle 2"]
    assert "Latin America &amp; &lt;b&gt;Caribbean&lt;/b&gt;" in (
        figures["execution_by_region"]["data"][0]["x"])
    assert not re.search(r"<b>Caribbean", json.dumps(figures))
    executable = chromium_or_skip()
    url = (reviewed / "review.html").resolve().as_uri()
    with browser.Browser(executable, tmp_path / "profile") as chrome:
        chrome.open(url)
        chrome.wait_until("document.body.getAttribute('data-ready') === 'true'", 60)
        charts = chrome.evaluate("document.querySelectorAll('.chart .main-svg').length")
        cards = chrome.evaluate(
            "Object.fromEntries([...document.querySelectorAll('[data-figure]')]"
            ".map(e => [e.dataset.figure, [e.dataset.value, e.textContent]]))")
        states = chrome.evaluate("[...document.getElementById('states').tBodies[0].rows]"
                                 ".map(r => [...r.cells].map(c => c.textContent))")
        donors = chrome.evaluate("[...document.getElementById('donors').tBodies[0].rows]"
                                 ".map(r => r.cells[0].textContent + ' ' + "
                                 "r.cells[8].textContent)")
        texts = chrome.evaluate("[...document.querySelectorAll('.chart text')]"
                                ".map(t => t.textContent)")
        links = chrome.evaluate("document.querySelectorAll('.chart a, td b').length")
        banner = chrome.evaluate("document.getElementById('illustrative').textContent")
        log = chrome.log
    assert log.errors() == []
    assert [r for r in log.requests if r != url and not r.startswith(("data:", "blob:"))] == []
    assert charts >= 4
    assert cards["c1_committed"] == [repr(700.0), "USD 700"]
    assert cards["c1_disbursed"][1] == "USD 490"
    # Cycle 1's results: (20 + 180 + 60) / 400 reported.
    assert cards["c1_results"] == [repr(0.65), "65.0 %"]
    assert cards["c1_states"][0] == repr(2.0)
    assert states[1][:2] == ["1", "State MLI (MLI)"]
    assert states[1][-1] == "execution under 50 %"
    assert donors == ["DEU –", "NOR paid under 80 % of its pledges"]
    assert AMERICAS in texts and links == 0
    assert banner.startswith("ILLUSTRATIVE DATA") and "A hand case." in banner


def test_docs_review_tables_are_the_schema():
    from gcm_fund.outputs.schema import REVIEW_TABLES

    lines = (Path(__file__).resolve().parents[2] / "docs" / "review.md").read_text(
        encoding="utf-8").splitlines()
    for table in REVIEW_TABLES.values():
        start = lines.index(f"`{table.name}`") + 4
        rows = [line.strip("|").split(" | ") for line in lines[start:start +
                                                                  len(table.columns)]]
        assert [[cell.strip() for cell in row] for row in rows] == [
            [c.name, c.kind, c.meaning] for c in table.columns], table.name


# ---------------------------------------------------------------------------------------
# record, then the next round: the property of docs/review.md


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(needs=st.lists(st.integers(1, 50).map(lambda m: m * 100_000.0), min_size=4,
                      max_size=4),
       pledge=st.integers(1, 200).map(lambda m: m * 10_000.0),
       paid=st.lists(st.sampled_from([0.0, 0.3, 0.75, 1.0]), min_size=4, max_size=4),
       results=st.lists(st.sampled_from([None, 0.0, 0.4, 1.0]), min_size=4, max_size=4),
       undisbursed=st.sampled_from(["keep", "pool"]))
def test_record_then_the_next_round_certifies(tmp_path_factory, needs, pledge, paid, results,
                                              undisbursed):
    from gcm_fund.audit import certify

    tmp = tmp_path_factory.mktemp("rounds")
    pairs = [("KEN", "10.7"), ("KEN", "8.8"), ("MLI", "10.7"), ("PER", "8.8")]
    cycle_tables = (f'\n[carryover]\nundisbursed = "{undisbursed}"\n'
                    "[pacing]\nmax_cut = 0.5\nmax_rise = 1.0\n")
    inputs, model = write_case(
        tmp, states=[state("KEN"), state("MLI", "LMIC"), state("PER", "UMIC", "Americas")],
        gaps=[gap(s, t, n) for (s, t), n in zip(pairs, needs, strict=True)],
        sources=[source("deu", pledge)], policy="[cycle]\nnumber = 1\n" + cycle_tables)
    first = api.write(api.allocate(inputs, model), tmp / "run1")
    history = inputs / "history.csv"
    api.record(first, 1, history)
    rows = read_csv(history)
    committed = {(r["iso3"], r["target"]): float(r["committed_usd"]) for r in rows}
    assert sum(committed.values()) == pytest.approx(pledge, abs=0.05)
    filled = [{"cycle": 1, "iso3": s, "target": t, "committed_usd": f"{c:.2f}",
               "disbursed_usd": f"{round(c * share, 2):.2f}",
               "result": "" if result is None else result}
              for ((s, t), c), share, result
              in zip(committed.items(), paid, results, strict=False)]
    write_rows(history, filled)
    model.write_text("[cycle]\nnumber = 2\n" + cycle_tables, encoding="utf-8")
    second = api.write(api.allocate(inputs, model), tmp / "run2")
    certificate = certify(second)
    assert certificate.ok, "\n".join(certificate.lines())
    with pytest.raises(UsageError, match=r"the run's policy is cycle 2 \(\[cycle\] number\)"):
        api.record(second, 3, history)
    api.record(second, 2, history)
    assert {r["cycle"] for r in read_csv(history)} == {"1", "2"}


def test_the_three_round_example_allocates_round_3_and_reviews(tmp_path):
    """scenarios/cycles (scripts/build_cycles.py): round 3 learns from cycles 1 and 2
    (factors below 1 where execution lags, fundable need lowered by what is still held)
    and certifies; its review is labelled illustrative."""
    from gcm_fund.audit import certify

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "cycles"
    run = api.write(api.allocate(scenario / "round3", scenario / "round3.toml"),
                    tmp_path / "round3")
    assert certify(run).ok
    factors = [float(r["factor"]) for r in read_csv(run / "performance.csv")]
    assert min(factors) == pytest.approx(0.8) and max(factors) > 1
    coverage = read_csv(run / "coverage.csv")
    assert sum(float(r["fundable_usd"]) < float(r["need_usd"]) for r in coverage
               if r["iso3"] == "AFG")  # a low-income State: U = need, less its balance
    review = api.review(scenario / "round3", scenario / "round3" / "history.csv",
                        tmp_path / "review", model=scenario / "round3.toml").written
    page = (review / "review.html").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE DATA" in page and "INVENTED implementation record" in page
    assert {r["cycle"] for r in read_csv(review / "review_states.csv")} == {"1", "2"}


def test_nothing_committed_or_reported_is_blank_not_a_lag(tmp_path):
    """A gap committed nothing has no execution and one with no report no result: blank,
    and no flag. Without contributions.csv the donors' payments are blank too."""
    root = Path(__file__).resolve().parents[2]
    history = tmp_path / "history.csv"
    history.write_text(HEADER + "1,AFG,10.7,0,0,\n1,KEN,10.7,200,0,\n")
    done = api.review(root / "inputs", history, tmp_path / "review")
    states = {r["iso3"]: r for r in read_csv(done.written / "review_states.csv")}
    assert (states["AFG"]["execution"], states["AFG"]["result"], states["AFG"]["flags"]) == (
        "", "", "")
    # KEN: recorded, nothing disbursed yet: a lag by the rule, the page says not reviewed.
    assert (states["KEN"]["execution"], states["KEN"]["flags"]) == ("0.000000",
                                                                   "low_execution")
    donors = read_csv(done.written / "review_donors.csv")
    assert donors and all(r["paid_share"] == "" and r["flags"] == "" for r in donors)
    page = (done.written / "review.html").read_text(encoding="utf-8")
    assert "recorded, not yet reviewed" in page and "no contributions.csv" in page
