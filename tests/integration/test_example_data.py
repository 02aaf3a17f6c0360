"""The bundled example data: rebuilt byte for byte from the shared public data, and the
points a fund secretariat would check first (no IDA-like loan where IDA does not lend, no
stale LDC flag, an absorption limit for every State, the illustrative label, no State
with an outsized share of a target's need, the two scales)."""

from __future__ import annotations

import csv
import importlib.util
import os
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from gcm_fund import api, audit
from gcm_fund.load import load_inputs
from gcm_fund.model import eligible_triples
from gcm_fund.policy_file import load_policy

ROOT = Path(__file__).resolve().parents[2]
SCALE_UP = ROOT / "inputs"
MPTF_SCALE = ROOT / "scenarios" / "mptf_scale"
BUILT = ("states.csv", "gaps.csv", "sources.csv", "meta.toml")
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
    for built, bundled in ((tmp_path / "inputs", SCALE_UP), (tmp_path / "mptf_scale",
                                                             MPTF_SCALE)):
        assert sorted(p.name for p in built.iterdir()) == sorted(BUILT)
        for name in BUILT:
            assert (built / name).read_bytes() == (bundled / name).read_bytes(), name
    assert sorted(p.name for p in MPTF_SCALE.iterdir()) == sorted(BUILT)


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
    assert all(r["absorption_usd"] for r in states.values())
    assert {s for s, r in states.items() if not r["gni_usd"]} == NO_GNI
    assert {s for s, r in states.items() if r["eligible"] == "false"} == {"AFG", "MMR", "PRK"}
    assert all(r["migrants_hosted"].isdigit() for r in states.values())


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
    assert sum(float(r["pledge_usd"]) for r in mptf) == 70_000_000
    assert {r["instrument"] for r in mptf} == {"grant"}


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
    assert run.summary["allocated_usd"] == pytest.approx(70_000_000, abs=1.0)
