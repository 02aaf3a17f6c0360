"""SPEC 4c on hand-solved instances: the floor's share, loans by debt risk, grant
equivalents and states_summary.csv, through the real files, with certify on each run.

Amounts are USD. Every case is small enough to solve on paper; the docstrings do so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import allocate_and_read, gap, read_csv, source, state, write_case, write_rows
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gcm_fund import api, audit
from gcm_fund.errors import InfeasibleError

SOLVERS = ["highs", "cbc"]
TRAFFIC_LIGHT = {"low": 1.0, "moderate": 0.5, "high": 0.0, "distress": 0.0}
NO_FLOOR: dict[str, Any] = {"equity": {"group": "ldc"}}


def certified(folder: Path) -> audit.Certificate:
    """certify's verdict on a run folder, which must be a pass."""
    cert = audit.certify(folder)
    assert cert.ok, [(c.name, c.problems) for c in cert.checks if not c.ok]
    return cert


def summary_rows(folder: Path) -> dict[str, dict[str, str]]:
    return {r["iso3"]: r for r in read_csv(folder / "states_summary.csv")}


def moderate_case(tmp_path: Path, method: str = "levels") -> tuple[Path, Path]:
    """A moderate-risk LIC with one gap (U = 10e6), a grant g of 3e6 and a loan l of 10e6
    (grant element 0.4); the IDA traffic light caps its loans at 50 %.

    loan_share[MOD]: loans <= 0.5 (grants + loans), so loans <= grants <= 3e6: the State
    takes g's 3e6 and 3e6 of l, 6e6 in all (coverage 0.6), under either method. Grant
    equivalent 3e6 + 0.4 x 3e6 = 4.2e6.
    """
    return write_case(
        tmp_path,
        states=[state("MOD", debt_risk="moderate")],
        gaps=[gap("MOD", "10.7", 10e6)],
        sources=[source("g", 3e6), source("l", 10e6, instrument="loan", grant_element=0.4)],
        policy={**NO_FLOOR, "allocation": {"method": method},
                "loans": {"max_share": TRAFFIC_LIGHT}},
    )


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_a_moderate_risk_state_takes_at_most_half_in_loans(tmp_path, solver, method):
    inputs, policy = moderate_case(tmp_path, method)
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    assert run.amounts() == pytest.approx({("g", "MOD", "10.7"): 3e6,
                                           ("l", "MOD", "10.7"): 3e6}, rel=1e-6)
    row = run.row("loan_share[MOD]")
    assert row["lhs"] == pytest.approx(3e6, rel=1e-6)  # loans
    assert row["rhs"] == pytest.approx(3e6, rel=1e-6)  # 0.5 x all money to MOD
    certified(run.folder)


def test_grant_equivalents_of_a_mixed_allocation(tmp_path):
    inputs, policy = moderate_case(tmp_path)
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    assert summary_rows(run.folder)["MOD"] == {
        "iso3": "MOD", "name": "State MOD", "income_group": "LIC", "ldc": "false",
        "debt_risk": "moderate", "need_usd": "10000000.00", "fundable_usd": "10000000.00",
        "allocated_usd": "6000000.00", "grants_usd": "3000000.00", "loans_usd": "3000000.00",
        "grant_equivalent_usd": "4200000.00", "loan_share": "0.500000",
        "coverage": "0.600000"}
    equivalents = {r["source_id"]: r["grant_equivalent_usd"] for r in run.sources_summary}
    assert equivalents == {"g": "3000000.00", "l": "1200000.00"}
    assert run.manifest["objective"]["grant_equivalent_usd"] == 4.2e6


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_high_risk_state_gets_no_loan(tmp_path, solver):
    """HIG (high risk) and LOW (low risk), each one gap of U = 2e6 and priority 1; a grant
    g of 1e6 and a loan l of 5e6 open to both. Under the traffic light HIG may take no
    loan: the levels give it all the grant money (coverage 0.5, as high as it can reach)
    and LOW 2e6 of loans (full)."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("HIG", debt_risk="high"), state("LOW", debt_risk="low")],
        gaps=[gap("HIG", "10.7", 2e6), gap("LOW", "10.7", 2e6)],
        sources=[source("g", 1e6), source("l", 5e6, instrument="loan", grant_element=0.3)],
        policy={**NO_FLOOR, "loans": {"max_share": TRAFFIC_LIGHT}},
    )
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    assert run.amounts() == pytest.approx({("g", "HIG", "10.7"): 1e6,
                                           ("l", "LOW", "10.7"): 2e6}, rel=1e-6)
    rows = summary_rows(run.folder)
    assert (rows["HIG"]["loans_usd"], rows["HIG"]["loan_share"]) == ("0.00", "0.000000")
    assert rows["LOW"]["loan_share"] == "1.000000"
    assert rows["LOW"]["grant_equivalent_usd"] == "600000.00"
    # m = 0 makes the triple ineligible: no loan_share row, no column.
    assert not [n for n in run.row_names() if n.startswith("loan_share")]
    certified(run.folder)


def test_a_capped_state_no_grant_reaches_leaves_e_and_the_floor_set(tmp_path):
    """MOD (moderate, m = 0.5) can be reached by the loan l only (the grant g funds
    target 8.8, MOD's gap is 10.7): at most half of nothing may be loans, so it takes
    nothing, and leaves E and the floor set instead of holding the floor at 0. The floor
    is then OTH's: g's 1e6 over its U = 4e6, z* = 0.25."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("MOD", debt_risk="moderate"), state("OTH", debt_risk="high")],
        gaps=[gap("MOD", "10.7", 2e6), gap("OTH", "8.8", 4e6)],
        sources=[source("g", 1e6, targets="8.8"),
                 source("l", 5e6, instrument="loan", grant_element=0.5)],
        policy={"loans": {"max_share": TRAFFIC_LIGHT}},
    )
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    eligible = {(r["iso3"], r["target"]): r["eligible"] for r in run.coverage}
    assert eligible == {("MOD", "10.7"): "false", ("OTH", "8.8"): "true"}
    assert run.floor == pytest.approx(0.25, rel=1e-9)
    assert run.amounts() == pytest.approx({("g", "OTH", "8.8"): 1e6}, rel=1e-9)
    assert summary_rows(run.folder)["MOD"]["loan_share"] == ""  # nothing allocated
    certified(run.folder)


def three_gaps(tmp_path: Path, floor_share: float, method: str = "levels"
               ) -> tuple[Path, Path]:
    """Three LIC gaps of U = 1e6, priorities 1, 1, 2 (target 8.8 weighs 2), one grant of
    1.2e6. z* = 1.2e6 / 3e6 = 0.4.

    floor_share = 1: z_lo = 0.4 - 1e-6 holds every gap at the floor, so coverage is
    equal (within the tolerance: C may rise to 0.400002 where A and B give 1e-6 each).
    floor_share = 0.5: z_lo = 0.2 - 1e-6, and the levels' c / pi equal at L: L + L + 2L
    = 1.2, L = 0.3: A, B 0.3 each, C 0.6 (25/25/50 of the money), all above the floor."""
    return write_case(
        tmp_path,
        states=[state("AAA"), state("BBB"), state("CCC")],
        gaps=[gap("AAA", "10.7", 1e6), gap("BBB", "10.7", 1e6), gap("CCC", "8.8", 1e6)],
        sources=[source("g", 1.2e6)],
        policy={"weights": {"target": {"8.8": 2.0}}, "allocation": {"method": method},
                "equity": {"floor_share": floor_share}},
    )


@pytest.mark.parametrize("solver", SOLVERS)
def test_floor_share_one_holds_every_gap_at_the_floor(tmp_path, solver):
    run = allocate_and_read(*three_gaps(tmp_path, 1.0), tmp_path / "run", solver)
    amounts = {k[1]: v for k, v in run.amounts().items()}
    assert amounts == pytest.approx({"AAA": 4e5, "BBB": 4e5, "CCC": 4e5}, abs=3.0)
    assert run.manifest["objective"]["floor"] == pytest.approx(0.4, rel=1e-7)
    assert run.manifest["objective"]["floor_max"] == pytest.approx(0.4, rel=1e-7)
    certified(run.folder)


@pytest.mark.parametrize("solver", SOLVERS)
def test_floor_share_half_lets_the_priorities_show(tmp_path, solver):
    run = allocate_and_read(*three_gaps(tmp_path, 0.5), tmp_path / "run", solver)
    amounts = {k[1]: v for k, v in run.amounts().items()}
    assert amounts == pytest.approx({"AAA": 3e5, "BBB": 3e5, "CCC": 6e5}, abs=0.02)
    assert run.manifest["objective"]["floor"] == pytest.approx(0.2, rel=1e-7)
    assert run.manifest["objective"]["floor_max"] == pytest.approx(0.4, rel=1e-7)
    bounds = run.manifest["floor_variable"]["stage2_bounds"]
    assert bounds[0] == pytest.approx(0.2 - 1e-6, rel=1e-7)
    certified(run.folder)


def test_floor_share_under_the_weighted_method(tmp_path):
    """Weighted: maximise 1 x A + 1 x B + 2 x C with every gap >= 0.2 - 1e-6: A and B at
    the floor (200,000 - 1 each), C takes the rest up to its U of 1e6 (800,002)."""
    run = allocate_and_read(*three_gaps(tmp_path, 0.5, "weighted"), tmp_path / "run")
    amounts = {k[1]: v for k, v in run.amounts().items()}
    assert amounts == pytest.approx({"AAA": 199999, "BBB": 199999, "CCC": 800002}, abs=0.02)
    assert run.floor == pytest.approx(0.2, rel=1e-9)
    certified(run.folder)


def test_stage_1b_counts_grant_money_only(tmp_path):
    """HIG (high risk: grants only) and MOD (moderate: at most half loans), each U = 2e6,
    one grant g of 1e6 and a loan l of 5e6. Counting all money placed, stage 1b would give
    g to MOD, where each grant USD unlocks one of loans (2e6 placed), and HIG next to
    nothing. Counting grants only (1e6 either way), the levels decide: equal coverage,
    HIG's grants gH = MOD's grants gM + loans lM with lM <= gM and gH + gM = 1e6, so
    gH = 2 gM: HIG 666,666.67, MOD 333,333.33
    of grants and as much of loans (coverage 1/3 each)."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("HIG", debt_risk="high"), state("MOD", debt_risk="moderate")],
        gaps=[gap("HIG", "10.7", 2e6), gap("MOD", "10.7", 2e6)],
        sources=[source("g", 1e6), source("l", 5e6, instrument="loan", grant_element=0.3)],
        policy={**NO_FLOOR, "loans": {"max_share": TRAFFIC_LIGHT}},
    )
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    rows = summary_rows(run.folder)
    assert float(rows["HIG"]["allocated_usd"]) == pytest.approx(2e6 / 3, abs=0.02)
    assert float(rows["MOD"]["grants_usd"]) == pytest.approx(1e6 / 3, abs=0.02)
    assert float(rows["MOD"]["loans_usd"]) == pytest.approx(1e6 / 3, abs=0.02)
    assert run.manifest["objective"]["allocated_usd"] == pytest.approx(1e6, abs=0.02)
    certified(run.folder)


def test_a_loan_share_that_cannot_hold_is_named_in_the_diagnosis(tmp_path):
    """MOD may take at most half in loans; a floor of 0.8 on its U = 2e6 needs 1.6e6,
    and only 0.5e6 of grants exist: 1e6 at most. The diagnosis names loan_share[MOD]."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("MOD", debt_risk="moderate")],
        gaps=[gap("MOD", "10.7", 2e6)],
        sources=[source("g", 5e5), source("l", 5e6, instrument="loan", grant_element=0.3)],
        policy={"loans": {"max_share": TRAFFIC_LIGHT},
                "equity": {"maximize": False, "min_floor": 0.8}},
    )
    with pytest.raises(InfeasibleError) as caught:
        api.allocate(inputs, policy)
    assert "loan_share[MOD]" in str(caught.value.diagnosis.reason)


# -- certify ---------------------------------------------------------------------------

@pytest.fixture
def moderate_run(tmp_path: Path) -> Path:
    inputs, policy = moderate_case(tmp_path)
    return allocate_and_read(inputs, policy, tmp_path / "run").folder


def rehash(folder: Path, name: str) -> None:
    """The edited file's sha256 written into the manifest, as a careful forger would."""
    path = folder / "manifest.json"
    document = json.loads(path.read_text())
    document["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    path.write_text(json.dumps(document, indent=2))


def failures(folder: Path) -> dict[str, list[str]]:
    cert = audit.certify(folder)
    assert not cert.ok
    return {c.name: c.problems for c in cert.checks if not c.ok}


def test_certify_finds_a_changed_states_summary_figure(moderate_run):
    path = moderate_run / "states_summary.csv"
    path.write_text(path.read_text().replace("4200000.00", "4300000.00"))
    rehash(moderate_run, "states_summary.csv")
    assert failures(moderate_run) == {"states_summary.csv": [
        "states_summary.csv:2: MOD: grant_equivalent_usd '4300000.00', recomputed 4200000"]}


def test_certify_finds_a_loan_over_a_states_share(moderate_run):
    """Half a million moved from the grant to the loan: the gap's amount stays, the loans
    pass half of MOD's money."""
    rows = read_csv(moderate_run / "allocations.csv")
    for row in rows:
        row["amount_usd"] = {"g": "2500000.00", "l": "3500000.00"}[row["source_id"]]
    write_rows(moderate_run / "allocations.csv", rows)
    rehash(moderate_run, "allocations.csv")
    [problem] = failures(moderate_run)["rule loan_share"]
    assert problem.startswith("loan_share[MOD]: lhs USD 3,500,000.00 <= rhs USD "
                              "3,000,000.00 fails by USD 500,000.00")


def test_certify_finds_a_changed_debt_risk_in_the_copied_states(moderate_run):
    path = moderate_run / "inputs" / "states.csv"
    path.write_text(path.read_text().replace("moderate", "low"))
    found = failures(moderate_run)
    assert any("inputs/states.csv" in p for problems in found.values() for p in problems)
    # Rehashed in the manifest's inputs and files too, the rules themselves differ: under
    # `low` there is no loan_share row, and states_summary.csv's debt_risk is wrong.
    document = json.loads((moderate_run / "manifest.json").read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    document["inputs"]["states.csv"] = digest
    document["files"]["inputs/states.csv"] = digest
    (moderate_run / "manifest.json").write_text(json.dumps(document, indent=2))
    found = failures(moderate_run)
    assert "states_summary.csv:2: MOD: debt_risk 'moderate', expected 'low'" in \
        found["states_summary.csv"]


def test_states_summary_is_absent_nowhere(moderate_run, tmp_path):
    """A run folder without states_summary.csv but with grant equivalents recorded is
    not certified: the file is SPEC 4c's."""
    copy = Path(shutil.copytree(moderate_run, tmp_path / "copy"))
    (copy / "states_summary.csv").unlink()
    assert not audit.certify(copy).ok


# -- properties -------------------------------------------------------------------------

RISKS = ("low", "moderate", "high", None)


@st.composite
def terms_instances(draw: st.DrawFn) -> dict[str, Any]:
    """Small instances with debt risks, grants and loans, a max_share table and a floor
    share (levels, every weight > 0)."""
    iso3s = ["AAA", "BBB", "CCC", "DDD"][: draw(st.integers(1, 4))]
    targets = ["10.7", "8.8"][: draw(st.integers(1, 2))]
    amount = st.integers(1, 300).map(lambda k: k * 1e4)
    states = [state(s, draw(st.sampled_from(["LIC", "LMIC", "UMIC"])),
                    debt_risk=draw(st.sampled_from(RISKS)),
                    debt_distress=draw(st.sampled_from([False, False, False, True])) or None)
              for s in iso3s]
    for row in states:  # debt_distress beside another risk word is an input error
        if row["debt_distress"]:
            row["debt_risk"] = None
    gaps = [gap(s, t, draw(amount)) for s in iso3s for t in targets if draw(st.booleans())] \
        or [gap(iso3s[0], targets[0], draw(amount))]
    sources = []
    for k in range(draw(st.integers(1, 4))):
        loan = draw(st.booleans())
        extra: dict[str, Any] = {"targets": draw(st.sampled_from([None, targets[0]]))}
        if loan:
            extra["grant_element"] = draw(st.sampled_from([0.0, 0.25, 0.5]))
        sources.append(source(f"s{k}", draw(amount), "loan" if loan else "grant", **extra))
    share = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    policy = {
        "weights": {"target": {"8.8": draw(st.sampled_from([1.0, 2.0]))}},
        "loans": {"max_share": {"low": draw(share), "moderate": draw(share),
                                "high": draw(share), "unrated": draw(share)}},
        "equity": {"floor_share": draw(st.sampled_from([0.25, 0.5, 1.0]))},
    }
    return {"states": states, "gaps": gaps, "sources": sources, "policy": policy}


def loan_share_violations(folder: Path) -> list[str]:
    """loan_share[s] on the written amounts, restated from the copied inputs and policy."""
    policy = tomllib.loads((folder / "policy.toml").read_text())
    shares = {"low": 1.0, "moderate": 1.0, "high": 1.0, "distress": 0.0, "unrated": 1.0,
              **policy.get("loans", {}).get("max_share", {})}
    risk = {r["iso3"]: "distress" if r.get("debt_distress") == "true"
            else (r.get("debt_risk") or "unrated")
            for r in read_csv(folder / "inputs" / "states.csv")}
    loan = {r["source_id"]: r["instrument"] == "loan"
            for r in read_csv(folder / "inputs" / "sources.csv")}
    loans: dict[str, float] = {}
    money: dict[str, float] = {}
    rows: dict[str, int] = {}
    for r in read_csv(folder / "allocations.csv"):
        amount = float(r["amount_usd"])
        money[r["iso3"]] = money.get(r["iso3"], 0.0) + amount
        loans[r["iso3"]] = loans.get(r["iso3"], 0.0) + amount * loan[r["source_id"]]
        rows[r["iso3"]] = rows.get(r["iso3"], 0) + 1
    found = []
    for s, total in money.items():
        m = shares[risk[s]]
        if loans[s] > m * total + 0.01 * rows[s] + 1e-7 * max(total, 1e6):
            found.append(f"{s}: loans {loans[s]:.2f} > {m} x {total:.2f}")
    return found


def recomputed_summary(folder: Path) -> dict[str, dict[str, str]]:
    """states_summary.csv as allocations.csv and the copied inputs give it."""
    policy = tomllib.loads((folder / "policy.toml").read_text())
    cofinancing = {"LIC": 1.0, "LMIC": 0.75, "UMIC": 0.5, "HIC": 0.0,
                   **policy.get("cofinancing", {})}
    states = {r["iso3"]: r for r in read_csv(folder / "inputs" / "states.csv")}
    sources = {r["source_id"]: r for r in read_csv(folder / "inputs" / "sources.csv")}
    need: dict[str, float] = {}
    for r in read_csv(folder / "inputs" / "gaps.csv"):
        need[r["iso3"]] = need.get(r["iso3"], 0.0) + float(r["need_usd"])
    cents = {s: [0, 0, 0.0] for s in need}  # allocated, loans (cents), grant equivalent
    for r in read_csv(folder / "allocations.csv"):
        amount = round(float(r["amount_usd"]) * 100)
        src = sources[r["source_id"]]
        is_loan = src["instrument"] == "loan"
        cents[r["iso3"]][0] += amount
        cents[r["iso3"]][1] += amount * is_loan
        cents[r["iso3"]][2] += amount * (float(src["grant_element"]) if is_loan else 1.0)
    out = {}
    for s in sorted(need):
        row = states[s]
        allocated, loans, equivalent = cents[s]
        fundable = cofinancing[row["income_group"]] * need[s]
        out[s] = {
            "iso3": s, "name": row["name"], "income_group": row["income_group"],
            "ldc": "true" if row.get("ldc") == "true" else "false",
            "debt_risk": "distress" if row.get("debt_distress") == "true"
            else (row.get("debt_risk") or "unrated"),
            "need_usd": f"{need[s]:.2f}", "fundable_usd": f"{fundable:.2f}",
            "allocated_usd": f"{allocated / 100:.2f}",
            "grants_usd": f"{(allocated - loans) / 100:.2f}",
            "loans_usd": f"{loans / 100:.2f}",
            "grant_equivalent_usd": f"{round(equivalent) / 100:.2f}",
            "loan_share": f"{loans / allocated:.6f}" if allocated else "",
            "coverage": f"{allocated / 100 / fundable:.6f}" if fundable else "",
        }
    return out


@settings(max_examples=int(os.environ.get("TERMS_EXAMPLES", "15")), deadline=None)
@given(instance=terms_instances())
def test_loan_share_and_states_summary_hold_on_the_written_files(instance):
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy = write_case(Path(folder), states=instance["states"],
                                    gaps=instance["gaps"], sources=instance["sources"],
                                    policy=instance["policy"])
        try:
            run = allocate_and_read(inputs, policy, Path(folder) / "run")
        except InfeasibleError:
            event("infeasible")
            return
        assert loan_share_violations(run.folder) == []
        assert summary_rows(run.folder) == recomputed_summary(run.folder)


@settings(max_examples=int(os.environ.get("TERMS_EXAMPLES", "15")), deadline=None)
@given(instance=terms_instances())
def test_highs_and_cbc_give_the_same_gap_amounts_under_4c(instance):
    """SPEC 4b: every gap's amount is unique, within USD 0.01 plus 1e-6 of its U."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy = write_case(Path(folder), states=instance["states"],
                                    gaps=instance["gaps"], sources=instance["sources"],
                                    policy=instance["policy"])
        runs = {}
        for solver in SOLVERS:
            try:
                runs[solver] = allocate_and_read(inputs, policy, Path(folder) / solver, solver)
            except InfeasibleError:
                runs[solver] = None
        assert (runs["highs"] is None) == (runs["cbc"] is None)
        if runs["highs"] is None or runs["cbc"] is None:
            event("infeasible")
            return
        highs = {(r["iso3"], r["target"]): r for r in runs["highs"].coverage}
        for row in runs["cbc"].coverage:
            other = highs[(row["iso3"], row["target"])]
            assert float(row["allocated_usd"]) == pytest.approx(
                float(other["allocated_usd"]), abs=0.02 + 1e-6 * float(row["fundable_usd"]))


# -- explain ----------------------------------------------------------------------------

def test_explain_says_a_states_loan_share_and_the_rule_that_capped_it(moderate_run):
    from cases import run_cli

    shown = run_cli("explain", moderate_run, "--state", "MOD").stdout
    assert ("loans: USD 3,000,000.00 of USD 6,000,000.00 (loan share 50.00%); debt risk "
            "moderate, loans.max_share.moderate = 0.5: capped by loan_share[MOD] (binding)"
            ) in shown
    assert "  loan_share[MOD] (dual " in shown


def test_explain_says_why_a_high_risk_state_takes_no_loan(tmp_path):
    from cases import run_cli

    inputs, policy = write_case(
        tmp_path, states=[state("HIG", debt_risk="high")], gaps=[gap("HIG", "10.7", 2e6)],
        sources=[source("g", 1e6), source("l", 5e6, instrument="loan", grant_element=0.3)],
        policy={**NO_FLOOR, "loans": {"max_share": TRAFFIC_LIGHT}})
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    shown = run_cli("explain", run.folder, "--state", "HIG").stdout
    assert ("loans: USD 0.00 of USD 1,000,000.00 (loan share 0.00%); debt risk high, "
            "loans.max_share.high = 0: no loan may reach it (m = 0)") in shown
    assert "  l: not eligible: l lends, and loans.max_share for HIG's debt risk (high) is 0" \
        in shown


# -- report.html and the workbook ----------------------------------------------------

def test_the_report_leads_with_the_grant_equivalent_and_tables_each_state(moderate_run):
    page = (moderate_run / "report.html").read_bytes().decode("utf-8")
    assert ('<div class="value" data-figure="grant_equivalent_usd" data-value="4200000.00">'
            "USD 4.2 m</div>") in page
    assert page.index('data-figure="grant_equivalent_usd"') < page.index('id="flows"')
    section = page[page.index('<section id="terms-section">'):]
    body = section[section.index("<tbody><tr>") + 11:]
    row = body[:body.index("</tr>")]
    cells = [c.split(">", 1)[1] for c in row.split("</td>")[:-1]]
    assert cells == ["State MOD (MOD)", "LIC", "moderate", "3,000,000", "3,000,000",
                     "4,200,000", "50.0 %"]


def test_the_workbook_has_the_states_summary_sheet(moderate_run, tmp_path):
    from openpyxl import load_workbook

    from gcm_fund.outputs.workbook import write_workbook

    book = load_workbook(write_workbook(moderate_run, tmp_path / "run.xlsx"))
    assert book.sheetnames[:4] == ["coverage", "allocations", "sources_summary",
                                   "states_summary"]
    sheet = book["states_summary"]
    header = [c.value for c in sheet[1]]
    values = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert (values["grant_equivalent_usd"], values["loan_share"]) == (4.2e6, 0.5)


# -- sweep and compare ------------------------------------------------------------------

def high_and_low(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The high-risk case with two policies: the defaults (HIG may borrow) and the
    traffic light (it may not). Default: both gaps rise together, HIG and LOW 1.5e6 each
    (g's 1e6 and 0.5e6 of l to one of them, the rest of l to the other), all LIC, no LDC."""
    inputs, traffic = write_case(
        tmp_path,
        states=[state("HIG", debt_risk="high"), state("LOW", debt_risk="low", ldc=True)],
        gaps=[gap("HIG", "10.7", 2e6), gap("LOW", "10.7", 2e6)],
        sources=[source("g", 1e6), source("l", 5e6, instrument="loan", grant_element=0.3)],
        policy={"name": "traffic", **NO_FLOOR, "loans": {"max_share": TRAFFIC_LIGHT}})
    plain = tmp_path / "plain.toml"
    plain.write_text('name = "plain"\n[equity]\ngroup = "ldc"\n')
    return inputs, traffic, plain


def test_compare_reports_grant_equivalent_shares_and_loans_by_debt_risk(tmp_path):
    from cases import run_cli

    inputs, traffic, plain = high_and_low(tmp_path)
    done = run_cli("compare", inputs, "-m", traffic, "-m", plain, "--out", tmp_path / "c.csv")
    assert done.returncode == 0, done.stderr
    rows = {r[0]: r[1:] for r in
            (line.split(",") for line in (tmp_path / "c.csv").read_text().splitlines())}
    # traffic: HIG 1e6 of grants, LOW 2e6 of loans at 0.3: 1e6 + 0.6e6 grant equivalent.
    assert rows["grant_equivalent_usd"][0] == "1600000.00"
    assert rows["ge_ldc_share"][0] == "0.375000"  # LOW's 0.6e6 of 1.6e6
    assert rows["ge_income_share[LIC]"][0] == "1.000000"
    assert [rows["loans_share[high]"][0], rows["loans_share[low]"][0]] == ["0.000000",
                                                                          "1.000000"]
    assert rows["loans_share[moderate]"] == ["", ""]  # no State of that risk
    assert float(rows["loans_share[high]"][1]) > 0  # the defaults lend to HIG


def test_sweep_reports_grant_equivalent_columns(tmp_path):
    from cases import run_cli

    inputs, traffic, _ = high_and_low(tmp_path)
    done = run_cli("sweep", inputs, "-m", traffic, "--source", "g", "--pledges", "0:1e6:2",
                   "--out", tmp_path / "s.csv", "--no-chart")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "s.csv")
    # No grant: HIG gets nothing, LOW its 2e6 of loans (0.6e6 grant equivalent).
    assert [(r["grant_equivalent_usd"], r["loans_share[high]"], r["loans_share[low]"])
            for r in rows] == [("600000.00", "", "1"), ("1600000.00", "0", "1")]


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_a_sweep_drops_a_capped_states_loans_where_its_grant_pledges_nothing(tmp_path,
                                                                           method):
    """MOD (moderate, m = 0.5) is reached by the grant g and the loan l; OTH (low risk,
    U = 4e6) by the grant h (1e6). At g = 0 MOD can take no loan either, so it leaves E and
    the floor set, as `allocate` with g = 0 would have it: the floor is OTH's, 0.25 (not
    0, MOD's held at nothing). At g = 1e6: MOD takes 1e6 of grants and 1e6 of loans."""
    from gcm_fund.analyses.sweep import reference_level, sweep

    inputs, policy = write_case(
        tmp_path,
        states=[state("MOD", debt_risk="moderate"), state("OTH", debt_risk="low")],
        gaps=[gap("MOD", "10.7", 4e6), gap("OTH", "8.8", 4e6)],
        sources=[source("g", 1e6, targets="10.7"), source("h", 1e6, targets="8.8"),
                 source("l", 5e6, instrument="loan", grant_element=0.5, targets="10.7")],
        policy={"allocation": {"method": method}, "loans": {"max_share": TRAFFIC_LIGHT}})
    loaded = api.load(inputs, policy)
    data, found = loaded.data, loaded.policy_file.policy
    result = sweep(data, found, ["g"], np.array([0.0, 1e6]))
    for level in result.levels:
        want = reference_level(data, found, ["g"], level.pledge_usd)
        assert level.floor == pytest.approx(want.floor, rel=1e-9)
        assert level.allocated_usd == pytest.approx(want.allocated_usd, abs=0.02)
    assert result.levels[0].floor == pytest.approx(0.25, rel=1e-9)
    assert result.levels[0].allocated_usd == pytest.approx(1e6, abs=0.02)
    assert result.levels[1].allocated_usd == pytest.approx(3e6, abs=0.02)
