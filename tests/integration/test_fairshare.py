"""`gcm-fund fair-share`: the total fundable need split across donor States by GNI.

The hand-computed instance (amounts in USD; default co-financing LIC 1, LMIC 0.75,
UMIC 0.5, HIC 0):

    gaps    AAA (LIC)  10.7: 10e6 -> U = 10e6
            CCC (UMIC)  8.8:  4e6 -> U =  2e6
            DDD (LMIC)  5.2:  8e6 -> U =  6e6
            BBB (HIC)  10.7:  5e6 -> U =  0
            total fundable need = 18e6
    donors  AAA  GNI 100e9   sources s3 (1e6)                 pledged 1e6
            BBB  GNI 300e9   sources s1 (3e6), s2 (1.5e6)     pledged 4.5e6
            CCC  GNI blank   source s4 (2e6)                  pledged 2e6
            DDD  GNI 0       source s5 (0.5e6)                pledged 0.5e6
            (s6 names no donor)

Only AAA and BBB have GNI > 0: fair shares 18e6 * 100/400 = 4.5e6 and 18e6 * 300/400 =
13.5e6; ratios 1/4.5 = 0.222222222222 and 4.5/13.5 = 0.333333333333.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cases
import pytest
from cases import gap, read_csv, source, state

from gcm_fund import api
from gcm_fund.analyses.fairshare import fair_shares, total_fundable_usd

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = (
    "donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio\n"
    "AAA,100000000000.00,4500000.00,1000000.00,0.222222222222\n"
    "BBB,300000000000.00,13500000.00,4500000.00,0.333333333333\n"
    "CCC,,,2000000.00,\n"
    "DDD,0.00,,500000.00,\n"
)


@pytest.fixture
def hand_case(tmp_path: Path, write_case) -> tuple[Path, Path]:
    return write_case(
        tmp_path,
        states=[state("BBB", "HIC", gni_usd=300e9), state("AAA", "LIC", gni_usd=100e9),
                state("CCC", "UMIC"), state("DDD", "LMIC", gni_usd=0)],
        gaps=[gap("AAA", "10.7", 10e6), gap("CCC", "8.8", 4e6), gap("DDD", "5.2", 8e6),
              gap("BBB", "10.7", 5e6)],
        sources=[source("s1", 3e6, donor_iso3="BBB"), source("s2", 1.5e6, donor_iso3="BBB"),
                 source("s3", 1e6, donor_iso3="AAA"), source("s4", 2e6, donor_iso3="CCC"),
                 source("s5", 0.5e6, donor_iso3="DDD"), source("s6", 7e6, kind="private")],
        policy=None,
    )


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cases.run_cli(*args, cwd=cwd, columns=120)


def test_fair_shares_match_the_hand_computation(hand_case: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    inputs, policy = hand_case
    result = run_cli("fair-share", str(inputs), "--model", str(policy), "--out", "fair.csv",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fair.csv").read_text(encoding="utf-8") == EXPECTED
    assert "total fundable need USD 18,000,000 across 4 donor States" in result.stdout


def test_the_library_table(hand_case: tuple[Path, Path]) -> None:
    loaded = api.load(*hand_case)
    data, policy = loaded.data, loaded.policy_file.policy
    assert total_fundable_usd(data, policy) == pytest.approx(18e6)
    table = fair_shares(data, policy)
    assert list(table["donor_iso3"]) == ["AAA", "BBB", "CCC", "DDD"]
    assert table["fair_share_usd"].sum() == pytest.approx(18e6, rel=1e-12)  # NaN skipped


def test_the_fair_shares_of_the_bundled_example_sum_to_the_fundable_need(
        tmp_path: Path) -> None:
    result = run_cli("fair-share", str(ROOT / "inputs"), "--model",
                     str(ROOT / "models" / "ldc_priority.toml"), "--out", "fair.csv",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "fair.csv")
    loaded = api.load(ROOT / "inputs", ROOT / "models" / "ldc_priority.toml")
    data, policy = loaded.data, loaded.policy_file.policy
    # Computed here from the files, independently of the library.
    states = {s.iso3: s for s in data.states.itertuples()}
    share = dict(policy.cofinancing.model_dump())
    total = sum(share[states[g.iso3].income_group] * g.need_usd for g in data.gaps.itertuples())
    donors = sorted({s for s in data.sources["donor_iso3"] if isinstance(s, str)})
    assert [r["donor_iso3"] for r in rows] == donors
    with_gni = [r for r in rows if r["fair_share_usd"]]
    assert sum(float(r["fair_share_usd"]) for r in with_gni) == pytest.approx(
        total, abs=0.01 * len(with_gni))
    gni_total = sum(float(r["gni_usd"]) for r in with_gni)
    for row in with_gni:
        assert float(row["fair_share_usd"]) == pytest.approx(
            total * float(row["gni_usd"]) / gni_total, abs=0.01)
        pledged = data.sources.loc[data.sources["donor_iso3"] == row["donor_iso3"],
                                   "pledge_usd"].sum()
        assert float(row["pledged_usd"]) == pytest.approx(pledged, abs=0.005)
        assert float(row["ratio"]) == pytest.approx(pledged / float(row["fair_share_usd"]),
                                                    rel=1e-9)


def test_no_donor_gives_a_header_only(tmp_path: Path, write_case) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC", gni_usd=1e9)], gaps=[gap("KEN", "10.7", 1e6)],
        sources=[source("don", 1e6)], policy=None)
    result = run_cli("fair-share", str(inputs), "-m", str(policy), "--out", "f.csv",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "f.csv").read_text() == \
        "donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio\n"


def test_bad_inputs_exit_2_and_write_nothing(tmp_path: Path, write_case) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC")], gaps=[gap("KEN", "10.7", -1)],
        sources=[source("don", 1e6)], policy=None)
    result = run_cli("fair-share", str(inputs), "-m", str(policy), "--out", "f.csv",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "need_usd" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "f.csv").exists()


def test_the_help_has_an_example() -> None:
    result = run_cli("fair-share", "--help", cwd=ROOT)
    assert result.returncode == 0
    assert "Example: gcm-fund fair-share" in result.stdout


def test_per_capita_adjusted_basis_matches_the_hand_computation(tmp_path: Path,
                                                               write_case) -> None:
    """AAA: GNI 100e9 for 100e6 people (1,000 a person); BBB: 300e9 for 10e6 (30,000).

    T = 400e9 / 110e6; AAA's p / T = 1,000 x 110e6 / 400e9 = 0.275 < 1, so its weight is
    100e9 x (1 - 0.8 x 0.725) = 42e9; BBB's stays 300e9. The fundable need, 34.2e6 (one LIC
    gap), splits 42 : 300: AAA 4.2e6, BBB 30e6.
    """
    inputs, policy = write_case(
        tmp_path,
        states=[state("AAA", gni_usd=100e9, population=100e6),
                state("BBB", "HIC", gni_usd=300e9, population=10e6), state("CCC")],
        gaps=[gap("CCC", "10.7", 34.2e6)],
        sources=[source("a", 1e6, donor_iso3="AAA"), source("b", 6e6, donor_iso3="BBB")],
    )
    out = tmp_path / "fair.csv"
    result = subprocess.run([sys.executable, "-m", "gcm_fund", "fair-share", str(inputs),
                             "--model", str(policy), "--basis", "gni-per-capita-adjusted",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == (
        "donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio\n"
        "AAA,100000000000.00,4200000.00,1000000.00,0.238095238095\n"
        "BBB,300000000000.00,30000000.00,6000000.00,0.2\n"
    )


def test_per_capita_basis_without_population_is_refused(hand_case: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    inputs, policy = hand_case
    out = tmp_path / "fair.csv"
    result = subprocess.run([sys.executable, "-m", "gcm_fund", "fair-share", str(inputs),
                             "--model", str(policy), "--basis", "gni-per-capita-adjusted",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == ("error: basis gni-per-capita-adjusted needs a population > 0 "
                             "in states.csv for the donor States with GNI: AAA, BBB\n")
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# Basis rci: every State with GNI, capacity and responsibility above a threshold.
#
# The hand computation (the worked example of gcm_fund.analyses.fairshare):
#   AAA HIC  GNI 300e9, hosts 10 migrants; pledges s1 1e6 + s2 1.5e6 = 2.5e6
#   BBB UMIC GNI 100e9, hosts 30;          pledges nothing
#   CCC LIC  GNI  50e9, hosts 60 (below UMIC: capacity and responsibility 0)
#   DDD UMIC no GNI, EEE LMIC no GNI: no row
#   fundable need: CCC 10e6 (LIC, c 1) + BBB 4e6 * 0.5 + EEE 8e6 * 0.75 = 18e6;
#   bank 6e6 + private 2e6 pledged, so States owe 10e6.
#   capacity shares 300/400 = 0.75, 0.25; responsibility shares 10/40 = 0.25, 0.75;
#   w = 0.5: rci 0.5 and 0.5, fair shares 5e6 each; ratios 2.5/5 = 0.5 and 0.
#   w = 1: rci 0.75 and 0.25 (7.5e6, 2.5e6); threshold HIC (the default): AAA alone, rci 1.
#   received (allocate, equal priorities, 10.5e6 pledged over 18e6 fundable: every gap at
#   7/12): AAA 0, BBB 2e6 x 7/12 = 1,166,666.67, CCC 10e6 x 7/12 = 5,833,333.33;
#   net = fair share - received.

RCI_HEADER = ("iso3,name,income_group,capacity_usd,migrants_hosted,rci,fair_share_usd,"
              "pledged_usd,ratio,received_usd,net_usd\n")


@pytest.fixture
def rci_case(tmp_path: Path, write_case) -> tuple[Path, Path]:
    return write_case(
        tmp_path,
        states=[state("AAA", "HIC", gni_usd=300e9, migrants_hosted=10),
                state("BBB", "UMIC", gni_usd=100e9, migrants_hosted=30),
                state("CCC", "LIC", gni_usd=50e9, migrants_hosted=60),
                state("DDD", "UMIC", migrants_hosted=5), state("EEE", "LMIC")],
        gaps=[gap("CCC", "10.7", 10e6), gap("BBB", "8.8", 4e6), gap("EEE", "5.2", 8e6)],
        sources=[source("s1", 1e6, donor_iso3="AAA"), source("s2", 1.5e6, donor_iso3="AAA"),
                 source("bank", 6e6, instrument="loan", grant_element=0.5),
                 source("fdn", 2e6, kind="private")],
        policy=None,
    )


def fair_share_cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from gcm_fund.cli.app import app

    result = CliRunner().invoke(app, ["fair-share", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("options", "rows"), [
    pytest.param(("--threshold", "UMIC"),
                 "AAA,State AAA,HIC,300000000000.00,10,0.5,5000000.00,2500000.00,0.5,0.00,"
                 "5000000.00\n"
                 "BBB,State BBB,UMIC,100000000000.00,30,0.5,5000000.00,0.00,0,1166666.67,"
                 "3833333.33\n"
                 "CCC,State CCC,LIC,0.00,60,0,0.00,0.00,,5833333.33,-5833333.33\n", id="w-0.5"),
    pytest.param(("--capacity-weight", "1", "--threshold", "UMIC"),
                 "AAA,State AAA,HIC,300000000000.00,10,0.75,7500000.00,2500000.00,"
                 "0.333333333333,0.00,7500000.00\n"
                 "BBB,State BBB,UMIC,100000000000.00,30,0.25,2500000.00,0.00,0,1166666.67,"
                 "1333333.33\n"
                 "CCC,State CCC,LIC,0.00,60,0,0.00,0.00,,5833333.33,-5833333.33\n", id="w-1"),
    pytest.param((),
                 "AAA,State AAA,HIC,300000000000.00,10,1,10000000.00,2500000.00,0.25,0.00,"
                 "10000000.00\n"
                 "BBB,State BBB,UMIC,0.00,30,0,0.00,0.00,,1166666.67,-1166666.67\n"
                 "CCC,State CCC,LIC,0.00,60,0,0.00,0.00,,5833333.33,-5833333.33\n",
                 id="threshold-HIC-default"),
])
def test_rci_fair_shares_match_the_hand_computation(rci_case, tmp_path, options, rows):
    inputs, policy = rci_case
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--out", str(out), *options)
    assert status == 0, output
    assert out.read_text(encoding="utf-8") == RCI_HEADER + rows
    assert "fundable need less ifi and private pledges: USD 10,000,000" in output


def test_rci_needs_migrants_hosted_above_the_threshold(rci_case, tmp_path):
    inputs, policy = rci_case
    states = (inputs / "states.csv").read_text(encoding="utf-8")
    (inputs / "states.csv").write_text(states.replace(",30\n", ",\n"), encoding="utf-8")
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--threshold", "UMIC", "--out", str(out))
    assert status == 2
    assert ("basis rci needs migrants_hosted in states.csv for the States with GNI at or "
            "above UMIC: BBB") in output
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (("--capacity-weight", "1.5"), "capacity weight 1.5: expected a number in [0, 1]"),
    (("--threshold", "MIC"), "threshold 'MIC': expected one of LIC, LMIC, UMIC, HIC"),
])
def test_rci_options_out_of_range_are_usage_errors(rci_case, tmp_path, options, message):
    inputs, policy = rci_case
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--out", str(tmp_path / "rci.csv"), *options)
    assert status == 2
    assert message in output


def test_rci_over_the_bundled_example_covers_every_state_with_gni(tmp_path):
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(ROOT / "inputs"), "--basis", "rci", "--out", str(out))
    assert status == 0, output
    rows = read_csv(out)
    states = read_csv(ROOT / "inputs" / "states.csv")
    assert [r["iso3"] for r in rows] == sorted(s["iso3"] for s in states if s["gni_usd"])
    assert sum(float(r["rci"]) for r in rows) == pytest.approx(1.0)
    sources = read_csv(ROOT / "inputs" / "sources.csv")
    banks_and_private = sum(float(s["pledge_usd"]) for s in sources
                            if s["kind"] in ("ifi", "private"))
    assert banks_and_private == 1_200_000_000
    assert sum(float(r["fair_share_usd"]) for r in rows) == pytest.approx(
        4_405_041_061 * 1.0 - banks_and_private, abs=1.0)
    owing = {r["iso3"] for r in rows if float(r["fair_share_usd"]) > 0}
    assert owing == {s["iso3"] for s in states if s["gni_usd"] and s["income_group"] == "HIC"}
    # Issue 22: at the default threshold no State that owes a share is a net recipient.
    assert all(float(r["net_usd"]) >= 0 for r in rows if r["iso3"] in owing)
    assert "net recipients" not in output


def test_a_net_recipient_that_owes_a_share_is_named(rci_case, tmp_path):
    """Issue 22: BBB (UMIC) with GNI 10e9 and 1 migrant owes 0.5 x 10/310 + 0.5 x 1/11 of
    the USD 10e6 owed (615,835.80) and receives 1,166,666.67: a net recipient, said so."""
    inputs, policy = rci_case
    states = (inputs / "states.csv").read_text(encoding="utf-8")
    (inputs / "states.csv").write_text(
        states.replace("100000000000,30", "10000000000,1"), encoding="utf-8")
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--threshold", "UMIC", "--out", str(out))
    assert status == 0, output
    row = {r["iso3"]: r for r in read_csv(out)}["BBB"]
    assert float(row["fair_share_usd"]) == pytest.approx(
        1e7 * (0.5 * 10 / 310 + 0.5 * 1 / 11), abs=0.01)
    assert row["received_usd"] == "1166666.67"
    assert float(row["net_usd"]) == pytest.approx(float(row["fair_share_usd"]) - 1166666.67,
                                                  abs=0.01)
    assert ("note: 1 States owe a share but receive more than they owe (net recipients, "
            "net_usd < 0): BBB") in output


# ---------------------------------------------------------------------------------------
# Issue 19, point 8: rci shares the whole need or says why; text cells inert; options that
# the basis ignores refused.


def without_migrants(inputs: Path) -> None:
    """AAA and BBB (the States at or above UMIC) host no migrants; CCC (LIC) hosts 60."""
    states = (inputs / "states.csv").read_text(encoding="utf-8")
    (inputs / "states.csv").write_text(states.replace(",10\n", ",0\n").replace(",30\n", ",0\n"),
                                       encoding="utf-8")


def test_rci_without_migrants_above_the_threshold_assigns_the_whole_need(rci_case, tmp_path):
    """Capacity alone shares the USD 10e6 owed (0.75 and 0.25), with a note, instead of
    half of it."""
    inputs, policy = rci_case
    without_migrants(inputs)
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--threshold", "UMIC", "--out", str(out))
    assert status == 0, output
    assert out.read_text(encoding="utf-8") == RCI_HEADER + (
        "AAA,State AAA,HIC,300000000000.00,0,0.75,7500000.00,2500000.00,0.333333333333,"
        "0.00,7500000.00\n"
        "BBB,State BBB,UMIC,100000000000.00,0,0.25,2500000.00,0.00,0,1166666.67,1333333.33\n"
        "CCC,State CCC,LIC,0.00,60,0,0.00,0.00,,5833333.33,-5833333.33\n")
    assert ("note: basis rci: no State at or above UMIC has any responsibility "
            "(migrants_hosted), so its weight 0.5 goes to capacity (gni_usd), which alone "
            "shares the USD 10,000,000.00 owed") in output


def test_rci_with_no_state_above_the_threshold_says_why(rci_case, tmp_path):
    """No State is HIC but AAA, and AAA has neither GNI nor migrants here: nobody can owe
    the USD 10e6, exit 2 (it used to write a table of zeros)."""
    inputs, policy = rci_case
    without_migrants(inputs)
    lines = (inputs / "states.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    for i, line in enumerate(lines):
        if line.startswith("AAA,"):
            cells = line.split(",")
            cells[header.index("gni_usd")] = "0"
            lines[i] = ",".join(cells)
    (inputs / "states.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "rci.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--threshold", "HIC", "--out", str(out))
    assert status == 2, output
    assert output == ("error: basis rci: no State at or above HIC has a gni_usd or "
                      "migrants_hosted above 0, so none can owe a share of the USD "
                      "10,000,000.00 owed; lower --threshold\n")
    assert not out.exists()


def test_rci_whole_weight_on_a_half_nobody_bears_says_why(rci_case, tmp_path):
    inputs, policy = rci_case
    without_migrants(inputs)
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", "rci",
                                    "--capacity-weight", "0", "--threshold", "UMIC",
                                    "--out", str(tmp_path / "r.csv"))
    assert status == 2, output
    assert output == ("error: basis rci: --capacity-weight 0 puts the whole weight on "
                      "responsibility (migrants_hosted), which no State at or above UMIC has; "
                      "give capacity some weight\n")


@pytest.mark.parametrize("basis", ["rci", "gni"])
def test_fair_share_csv_writes_formula_like_names_inert(tmp_path, write_case, basis):
    inputs, policy = write_case(
        tmp_path,
        states=[state("AAA", "HIC", gni_usd=300e9, migrants_hosted=10) | {
                    "name": "=HYPERLINK(\"http://x\")"},
                state("BBB", "UMIC", gni_usd=100e9, migrants_hosted=30) | {"name": "@cmd"},
                state("CCC", "LIC", gni_usd=1e9) | {"name": "-2+3"}],
        gaps=[gap("CCC", "10.7", 10e6)],
        sources=[source("s1", 1e6, donor_iso3="AAA"), source("s2", 1e6, donor_iso3="BBB")],
        policy=None)
    out = tmp_path / "fair.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", basis,
                                    "--out", str(out))
    assert status == 0, output
    rows = read_csv(out)
    if basis == "rci":
        assert [r["name"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'@cmd", "'-2+3"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values()
               if cell and not cell.lstrip("-")[0].isdigit())  # a number, negative or not


@pytest.mark.parametrize("options", [("--capacity-weight", "0.7"), ("--threshold", "HIC"),
                                     ("--threshold", "HIC", "--capacity-weight", "1")])
@pytest.mark.parametrize("basis", ["gni", "gni-per-capita-adjusted"])
def test_rci_options_under_another_basis_are_usage_errors(hand_case, tmp_path, options, basis):
    inputs, policy = hand_case
    out = tmp_path / "fair.csv"
    status, output = fair_share_cli(str(inputs), "--model", str(policy), "--basis", basis,
                                    "--out", str(out), *options)
    named = " and ".join(o for o in ("--capacity-weight", "--threshold") if o in options)
    assert status == 2
    assert output == f"error: {named}: for --basis rci only (the basis is {basis})\n"
    assert not out.exists()
