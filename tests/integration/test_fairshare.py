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

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cases import gap, read_csv, source, state

from gcm_fund import api
from gcm_fund.fairshare import fair_shares, total_fundable_usd

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
    env = {**os.environ, "PYTHONWARNINGS": "error", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "gcm_fund", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


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
