"""The bundled example data: rebuilt byte for byte from the shared public data, and the
points a fund secretariat would check first (no IDA-like loan where IDA does not lend, no
stale LDC flag, debt risk from the LIC DSA list, each need counted once in the State that
runs the programme, 5.2 and 16.2 apart, one fallback for missing data, an absorption limit
for every State with a gap, AFG and MMR through UN organisations, the time base, the
illustrative label, no State with an outsized share of a target's need, the two scales)."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from gcm_fund import api, audit
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.model.eligibility import eligible_triples

ROOT = Path(__file__).resolve().parents[2]
SCALE_UP = ROOT / "inputs"
MPTF_SCALE = ROOT / "scenarios" / "mptf_scale"
BUILT = ("states.csv", "gaps.csv", "sources.csv", "meta.toml")
# SPEC 9 at the MPTF scale: Norway's NOK pledge and a few statuses.
BUILT_MPTF = (*BUILT, "contributions.csv", "fx.csv")
# What the MPTF scale's pledges count for at the valuation date: USD 66 million, and NOK 15
# million pledged at 1 / 10.6235 USD per NOK (H.10, 2 February 2024), counted at 0.8.
MPTF_COUNTED_USD = 66_000_000 + 15_000_000 * 0.09413093613 * 0.8
NO_GNI = {"ERI", "LIE", "MCO", "PRK", "SSD", "VEN", "YEM"}


def shared_data() -> Path | None:
    """The shared data folder: GCM_FUND_SHARED_DATA, else shared/data beside the checkout.
    None when it is absent; a folder named by the variable must exist."""
    named = os.environ.get("GCM_FUND_SHARED_DATA")
    folder = Path(named) if named else ROOT.parent / "shared" / "data"
    if (folder / "countries.csv").is_file():
        return folder
    if named:
        pytest.fail(f"GCM_FUND_SHARED_DATA={named}: no countries.csv there")
    return None


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_example",
                                                  ROOT / "scripts" / "build_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_build_example_rebuilds_both_folders_byte_for_byte(tmp_path, capsys):
    data = shared_data()
    if data is None:
        pytest.skip("the shared data (countries.csv) is not beside this checkout: set "
                    "GCM_FUND_SHARED_DATA to its folder to check the rebuild")
    status = build_script().main([str(data), "--out", str(tmp_path / "inputs"),
                                  "--scenario-out", str(tmp_path / "mptf_scale")])
    assert status == 0, capsys.readouterr().err
    for built, bundled, names in ((tmp_path / "inputs", SCALE_UP, BUILT),
                                  (tmp_path / "mptf_scale", MPTF_SCALE, BUILT_MPTF)):
        assert sorted(p.name for p in built.iterdir()) == sorted(names)
        for name in names:
            assert (built / name).read_bytes() == (bundled / name).read_bytes(), name
    # programmes.csv is built by scripts/build_programmes.py (its policy is
    # models/mptf_programmes.toml).
    assert sorted(p.name for p in MPTF_SCALE.iterdir()) == sorted([*BUILT_MPTF, "programmes.csv"])


def test_no_ida_like_loan_where_the_world_bank_lends_only_ibrd_or_has_paused():
    data = load_inputs(SCALE_UP)
    policy = load_policy(ROOT / "models" / "baseline.toml").policy
    source_of, gap_of = eligible_triples(data, policy)
    ids = data.sources["source_id"].to_numpy()
    reached: dict[str, set[str]] = {}
    for f, g in zip(source_of, gap_of, strict=True):
        reached.setdefault(str(ids[f]), set()).add(str(data.gaps["iso3"].iat[g]))
    ibrd_only = {"IND", "MAR", "LBN"}
    shared = shared_data()
    if shared is not None:
        countries = rows(shared / "countries.csv")
        ibrd_only = {c["iso3"] for c in countries
                     if c["un_member"] == "true" and c["wb_lending_category"] == "IBRD"}
        ida = {c["iso3"] for c in countries if c["wb_lending_category"] in ("IDA", "Blend")}
        assert reached["wb_ida"] <= ida
    assert {"IND", "MAR", "LBN"} <= ibrd_only
    assert not reached["wb_ida"] & (ibrd_only | {"AFG", "MMR"})
    assert {"BGD", "PAK", "SYR"} <= reached["wb_ida"]  # IDA, Blend, IDA (reinstated 2025)
    assert not reached["adb"] & {"YEM", "SYR", "AFG", "MMR"}
    assert {"BGD", "PHL", "PAK"} <= reached["adb"]
    assert "VEN" not in reached["idb"]
    assert {"IND", "MEX", "MAR"} <= reached["wb_ibrd"]


def test_stale_and_missing_values_are_corrected():
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    assert states["STP"]["ldc"] == "false"  # graduated on 13 December 2024
    assert sum(r["ldc"] == "true" for r in states.values()) == 44
    with_gaps = {r["iso3"] for r in rows(SCALE_UP / "gaps.csv")}
    assert all(states[s]["absorption_usd"] for s in with_gaps)
    assert {s for s, r in states.items() if not r["gni_usd"]} == NO_GNI
    assert {s for s, r in states.items() if r["eligible"] == "false"} == {"PRK"}
    assert all(r["migrants_hosted"].isdigit() for r in states.values())


def test_debt_risk_is_the_lic_dsa_list_and_debt_distress_follows_it():
    """Every State on the World Bank-IMF LIC DSA list is rated as listed, every other one is
    blank, and `debt_distress` is true exactly for "in debt distress" (the illustrative list
    of eight, with Ghana and Sri Lanka in it, is gone)."""
    listed = build_script().DEBT_RISK_LIC_DSA
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    assert len(listed) == 67 and set(listed) <= set(states)
    for iso3, row in states.items():
        assert row["debt_risk"] == listed.get(iso3, ("", ""))[0], iso3
        assert (row["debt_distress"] == "true") == (row["debt_risk"] == "distress"), iso3
    distressed = {s for s, r in states.items() if r["debt_distress"] == "true"}
    assert distressed == {"COG", "DJI", "ETH", "GRD", "LAO", "MWI", "STP", "SDN", "ZWE"}
    assert states["GHA"]["debt_risk"] == "high" and states["LKA"]["debt_risk"] == ""
    # Every rated State has gaps: the ratings reach the allocation.
    with_gaps = {r["iso3"] for r in rows(SCALE_UP / "gaps.csv")}
    assert set(listed) <= with_gaps


def test_5_2_and_16_2_have_needs_of_their_own():
    """5.2 serves migrant women and girls, 16.2 migrant children: different people at
    different unit costs, so no State has the same need for both (each was USD 305,209,601
    for one State under one shared formula)."""
    needs: dict[tuple[str, str], int] = {(r["iso3"], r["target"]): int(r["need_usd"])
                                         for r in rows(SCALE_UP / "gaps.csv")}
    states = {iso3 for iso3, _ in needs}
    assert all(needs[s, "5.2"] != needs[s, "16.2"] for s in states)
    assert sum(needs[s, "5.2"] for s in states) != sum(needs[s, "16.2"] for s in states)


def test_each_migrant_is_counted_once_in_the_state_that_hosts_them():
    """The per-person part of every target counts the immigrants a State hosts (the column
    `migrants_hosted`), never its emigrants abroad: Syria's and Ukraine's needs are those of
    the people they host, and the refugees from them are counted where they live."""
    script = build_script()
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    for gap in rows(SCALE_UP / "gaps.csv"):
        if gap["target"] == "10.c":
            continue
        cost = script.UNIT_COSTS[gap["target"]]
        hosted = script.Decimal(states[gap["iso3"]]["migrants_hosted"])
        expected = script.usd(cost["base"] + cost["per_person"] * cost["share"] * hosted)
        assert int(gap["need_usd"]) == expected, gap
    syria = {r["target"]: int(r["need_usd"]) for r in rows(SCALE_UP / "gaps.csv")
             if r["iso3"] == "SYR"}
    assert syria["10.7"] == 1_000_000 + 10 * int(states["SYR"]["migrants_hosted"])


def test_missing_data_takes_the_same_peer_fallback_for_every_figure():
    """A State without remittance-cost data gets the 10.c figure of its peers, as a State
    without GNI gets their absorption limit: 10.c no longer stops at the 42 surveyed markets
    above 3 %. The fallbacks come from at least three peers."""
    data = shared_data()
    if data is None:
        pytest.skip("the shared data (countries.csv) is not beside this checkout")
    script = build_script()
    countries = script.read_countries(data / "countries.csv")
    remit = script.remit_fallbacks(countries)
    absorb = script.absorption_fallbacks(countries)
    assert all(int(why.split()[2]) >= script.MIN_PEERS for _, why in [*remit.values(),
                                                                      *absorb.values()])
    tenc = {r["iso3"]: int(r["need_usd"]) for r in rows(SCALE_UP / "gaps.csv")
            if r["target"] == "10.c"}
    for iso3, (cost, _) in remit.items():
        assert tenc.get(iso3, 0) == cost, iso3
    assert sum(1 for cost, _ in remit.values() if cost) > 0
    assert len(tenc) > 42
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    for iso3, (limit, _) in absorb.items():
        assert states[iso3]["absorption_usd"] == str(limit), iso3


def test_no_absorption_limit_is_invented_for_a_state_without_gaps():
    """Liechtenstein and Monaco (high income, no gap, no GNI) held USD 4.33 billion each,
    the median of Western Europe's large economies; a limit that cannot bind is left blank."""
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    assert states["LIE"]["absorption_usd"] == "" and states["MCO"]["absorption_usd"] == ""
    with_gaps = {r["iso3"] for r in rows(SCALE_UP / "gaps.csv")}
    assert not with_gaps & {"LIE", "MCO"}


def test_readme_absorption_fallbacks_match_states_csv():
    """Every fallback limit inputs/README.md states is the one in states.csv (the README
    said Venezuela's absorption was blank when states.csv held USD 1,281,870,607)."""
    readme = (SCALE_UP / "README.md").read_text(encoding="utf-8")
    states = {r["iso3"]: r for r in rows(SCALE_UP / "states.csv")}
    stated = re.findall(r"^\| ([A-Z]{3}) [^|]+\| [A-Z]+[^|]*\| ([0-9,]+) \|", readme, re.M)
    assert {iso3 for iso3, _ in stated} == NO_GNI - {"LIE", "MCO"}
    for iso3, limit in stated:
        assert states[iso3]["absorption_usd"] == limit.replace(",", ""), iso3
    assert "absorption_usd` is blank" not in readme


def test_afghanistan_and_myanmar_are_paid_through_un_organisations_with_grants_only():
    data = load_inputs(SCALE_UP)
    policy = load_policy(ROOT / "models" / "baseline.toml").policy
    source_of, gap_of = eligible_triples(data, policy)
    instrument = dict(zip(data.sources["source_id"], data.sources["instrument"], strict=True))
    ids = data.sources["source_id"].to_numpy()
    reached: dict[str, set[str]] = {}
    for f, g in zip(source_of, gap_of, strict=True):
        reached.setdefault(str(data.gaps["iso3"].iat[g]), set()).add(str(ids[f]))
    for iso3 in ("AFG", "MMR"):
        assert reached[iso3], iso3
        assert {instrument[s] for s in reached[iso3]} == {"grant"}, iso3


def test_the_time_base_is_stated_one_year_of_money_against_yearly_needs():
    for folder in (SCALE_UP, MPTF_SCALE):
        meta = tomllib.loads((folder / "meta.toml").read_text(encoding="utf-8"))
        assert "one year" in meta["description"] and "yearly needs" in meta["description"]
    assert "## Time base" in (SCALE_UP / "README.md").read_text(encoding="utf-8")


def test_both_scales_are_labelled_illustrative_and_share_states_and_gaps():
    for folder in (SCALE_UP, MPTF_SCALE):
        meta = tomllib.loads((folder / "meta.toml").read_text(encoding="utf-8"))
        assert meta["illustrative"] is True
        assert meta["description"]
    assert "scale-up" in (SCALE_UP / "meta.toml").read_text(encoding="utf-8")
    for name in ("states.csv", "gaps.csv"):
        assert (SCALE_UP / name).read_bytes() == (MPTF_SCALE / name).read_bytes()
    scale_up = rows(SCALE_UP / "sources.csv")
    pledged = sum(float(r["pledge_usd"]) for r in scale_up)
    loans = sum(float(r["pledge_usd"]) for r in scale_up if r["instrument"] == "loan")
    assert pledged == 2_015_000_000 and round(loans / pledged, 2) == 0.57
    mptf = rows(MPTF_SCALE / "sources.csv")
    given = sum(float(r["pledge_usd"]) for r in mptf if r["pledge_usd"])
    paid = sum(float(r["amount"]) for r in rows(MPTF_SCALE / "contributions.csv")
               if r["currency"] == "USD")
    assert given + paid == 66_000_000
    assert {r["instrument"] for r in mptf} == {"grant"}


def test_norway_pledges_in_nok_at_a_published_dated_rate():
    announced = [r for r in rows(MPTF_SCALE / "contributions.csv") if r["source_id"] == "nor"]
    assert announced == [{"source_id": "nor", "currency": "NOK", "amount": "15000000",
                          "status": "pledged", "date": "2024-02-05"}]
    rates = rows(MPTF_SCALE / "fx.csv")
    assert {r["date"]: r["usd_per_unit"] for r in rates} == {
        "2023-03-03": "0.09597757964", "2024-02-02": "0.09413093613"}
    assert all(r["source"].startswith("Federal Reserve Board, H.10") for r in rates)
    for policy in sorted((ROOT / "models").glob("*.toml")):
        scenario = api.load(MPTF_SCALE, policy)
        pledges = dict(zip(scenario.data.source_table["source_id"].tolist(),
                           scenario.data.source_table["pledge_usd"].tolist(), strict=True))
        assert pledges["nor"] == pytest.approx(15_000_000 * 0.09413093613 * 0.8, abs=1e-6)
        assert pledges["deu"] == 24_000_000


def test_no_state_holds_more_than_a_quarter_of_any_targets_need():
    by_target: dict[str, dict[str, float]] = {}
    for r in rows(SCALE_UP / "gaps.csv"):
        by_target.setdefault(r["target"], {})[r["iso3"]] = float(r["need_usd"])
    assert set(by_target) == {"10.7", "10.c", "8.8", "8.7", "5.2", "16.2"}
    for target, needs in by_target.items():
        largest = max(needs, key=needs.__getitem__)
        assert needs[largest] <= 0.25 * sum(needs.values()), (target, largest)


@pytest.mark.parametrize("policy", sorted(p.stem for p in (ROOT / "models").glob("*.toml")))
def test_every_policy_solves_and_certifies_at_the_mptf_scale(policy, tmp_path):
    run = api.allocate(MPTF_SCALE, ROOT / "models" / f"{policy}.toml")
    out = api.write(run, tmp_path / "run")
    assert audit.certify(out).ok
    assert run.summary["allocated_usd"] == pytest.approx(MPTF_COUNTED_USD, abs=1.0)
    assert (out / "resources.csv").is_file()
