"""SPEC 9: contributions in currencies, valued at a date and counted by status.

Every figure here is worked by hand: NOK at USD 0.094 per unit on the last rate day before
the valuation date, a pledged row at 0.8 of its face, a row dated after the valuation date
at 0. The instance gives every source's money somewhere to go, so `B_f` shows in
sources_summary.csv as it is counted.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import cases
import pytest
from cases import gap, read_csv, source, state, write_case, write_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from gcm_fund import api
from gcm_fund.audit.certificate import certify
from gcm_fund.model.scenario import load

VALUATION = '[pledges]\nvaluation_date = "2024-02-05"\n'
FX = [
    {"currency": "NOK", "date": "2024-01-31", "usd_per_unit": 0.095, "source": "Bank A"},
    {"currency": "NOK", "date": "2024-02-02", "usd_per_unit": 0.094, "source": "Bank A"},
    # After the valuation date: never the rate used.
    {"currency": "NOK", "date": "2024-02-09", "usd_per_unit": 0.5, "source": "Bank A"},
]


def contribution(source_id: str, amount: float, currency: str = "NOK",
                 status: str = "paid", date: str = "2024-01-15") -> dict[str, object]:
    return {"source_id": source_id, "currency": currency, "amount": amount,
            "status": status, "date": date}


def make(tmp_path: Path, rows: list[dict[str, object]], *, fx: list[dict[str, object]]
         | None = None, policy: str = VALUATION, nor_pledge: float | None = None
         ) -> tuple[Path, Path]:
    """KEN and MLI with USD 10 M of need each; `deu` pledges USD 1 M, `nor` by its rows."""
    inputs, model = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("MLI", "LIC")],
        gaps=[gap("KEN", "10.7", 10e6), gap("MLI", "10.7", 10e6)],
        sources=[source("deu", 1e6), source("nor", nor_pledge)],
        policy=policy)
    write_rows(inputs / "contributions.csv", rows)
    write_rows(inputs / "fx.csv", FX if fx is None else fx)
    return inputs, model


def pledges(inputs: Path, model: Path) -> dict[str, float]:
    scenario = load(inputs, model)
    table = scenario.data.source_table
    return dict(zip(table["source_id"].tolist(), table["pledge_usd"].tolist(), strict=True))


# ---------------------------------------------------------------------------------------
# Hand computations


def test_a_nok_pledge_at_a_dated_rate(tmp_path):
    # NOK 10,000,000 paid, at USD 0.094 per NOK (2024-02-02): USD 940,000.
    inputs, model = make(tmp_path, [contribution("nor", 10e6)])
    assert pledges(inputs, model) == {"deu": 1e6, "nor": pytest.approx(940_000, abs=1e-6)}


def test_the_latest_rate_on_or_before_the_valuation_date_not_after(tmp_path):
    # 2024-01-31 (0.095) is older, 2024-02-09 (0.5) is after 2024-02-05: 0.094 is used.
    inputs, model = make(tmp_path, [contribution("nor", 1e6)])
    assert pledges(inputs, model)["nor"] == pytest.approx(94_000, abs=1e-6)
    # Valued on 2024-02-01 instead, the 2024-01-31 rate is the latest on or before it.
    inputs, model = make(tmp_path / "b", [contribution("nor", 1e6)],
                         policy='[pledges]\nvaluation_date = 2024-02-01\n')
    assert pledges(inputs, model)["nor"] == pytest.approx(95_000, abs=1e-6)


def test_a_pledged_row_counts_at_0_8_and_signed_at_1(tmp_path):
    # 1e6 NOK pledged: 0.8 x 94,000 = 75,200; 1e6 NOK signed: 94,000.
    inputs, model = make(tmp_path, [contribution("nor", 1e6, status="pledged"),
                                    contribution("nor", 1e6, status="signed")])
    assert pledges(inputs, model)["nor"] == pytest.approx(75_200 + 94_000, abs=1e-6)


def test_the_policy_sets_the_count_of_each_status(tmp_path):
    policy = VALUATION + "count = { paid = 1.0, signed = 0.5, pledged = 0.25 }\n"
    inputs, model = make(tmp_path, [contribution("nor", 1e6, status="pledged"),
                                    contribution("nor", 1e6, status="signed"),
                                    contribution("nor", 100, currency="USD")], policy=policy)
    assert pledges(inputs, model)["nor"] == pytest.approx(23_500 + 47_000 + 100, abs=1e-6)


def test_a_row_dated_after_the_valuation_date_counts_0_and_says_so(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6),
                                    contribution("nor", 5e6, date="2024-03-01")])
    assert pledges(inputs, model)["nor"] == pytest.approx(94_000, abs=1e-6)
    run = api.allocate(inputs, model)
    api.write(run, tmp_path / "run")
    rows = read_csv(tmp_path / "run" / "resources.csv")
    assert rows == [
        {"source_id": "nor", "currency": "NOK", "amount": "1000000.00", "status": "paid",
         "date": "2024-01-15", "usd_per_unit": "0.094", "rate_date": "2024-02-02",
         "face_usd": "94000.00", "counted_usd": "94000.00", "note": ""},
        {"source_id": "nor", "currency": "NOK", "amount": "5000000.00", "status": "paid",
         "date": "2024-03-01", "usd_per_unit": "0.094", "rate_date": "2024-02-02",
         "face_usd": "470000.00", "counted_usd": "0.00",
         "note": "dated after the valuation date 2024-02-05: counts 0"},
    ]
    # The totals count the rows dated on or before the valuation date only.
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["pledges"] == {
        "valuation_date": "2024-02-05",
        "count": {"paid": 1.0, "signed": 1.0, "pledged": 0.8},
        "rates": [{"currency": "NOK", "usd_per_unit": 0.094, "date": "2024-02-02",
                   "source": "Bank A"}],
        "face_usd": 94000.0, "counted_usd": 94000.0}


def test_a_source_whose_rows_all_count_0_keeps_its_row_with_pledge_0(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6, date="2025-01-01")])
    run = api.allocate(inputs, model)
    api.write(run, tmp_path / "run")
    summary = {r["source_id"]: r for r in read_csv(tmp_path / "run" / "sources_summary.csv")}
    assert summary["nor"]["pledge_usd"] == "0.00"


def test_a_missing_rate_for_a_row_after_the_valuation_date_is_no_error(tmp_path):
    rows = [contribution("nor", 1e6), contribution("nor", 1e6, currency="SEK",
                                                  date="2024-06-01")]
    inputs, model = make(tmp_path, rows)
    assert pledges(inputs, model)["nor"] == pytest.approx(94_000, abs=1e-6)


# ---------------------------------------------------------------------------------------
# A run folder: its copies, resources.csv, the manifest, certify


@pytest.fixture(scope="module")
def nok_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NOK 10 M paid, NOK 5 M pledged, NOK 1 M signed after the valuation date."""
    root = tmp_path_factory.mktemp("nok")
    inputs, model = make(root, [
        contribution("nor", 10e6), contribution("nor", 5e6, status="pledged",
                                                date="2024-02-01"),
        contribution("nor", 1e6, status="signed", date="2024-03-01")])
    run = api.allocate(inputs, model)
    return api.write(run, root / "run")


def test_the_run_counts_the_pledge_and_certifies(nok_run):
    # 940,000 + 0.8 x 470,000 = 1,316,000.
    summary = {r["source_id"]: r for r in read_csv(nok_run / "sources_summary.csv")}
    assert summary["nor"]["pledge_usd"] == "1316000.00"
    assert summary["nor"]["allocated_usd"] == "1316000.00"
    manifest = json.loads((nok_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["pledges"]["face_usd"] == 940_000 + 470_000
    assert manifest["pledges"]["counted_usd"] == 1_316_000
    assert manifest["totals"]["pledged_usd"] == 2_316_000
    assert (nok_run / "inputs" / "contributions.csv").is_file()
    assert (nok_run / "inputs" / "fx.csv").is_file()
    assert set(manifest["inputs"]) >= {"contributions.csv", "fx.csv"}
    cert = certify(nok_run)
    assert cert.ok, "\n".join(cert.lines())
    assert any(c.name == "resources.csv" and c.ok for c in cert.checks)


def _forged(nok_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "forged"
    shutil.copytree(nok_run, copy)
    return copy


def test_certify_fails_on_an_edited_rate_in_the_copied_fx_csv(nok_run, tmp_path):
    run = _forged(nok_run, tmp_path)
    path = run / "inputs" / "fx.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("0.094", "0.095"),
                    encoding="utf-8")
    cert = certify(run)
    assert not cert.ok
    failed = "\n".join(line for check in cert.failed() for line in check.lines())
    assert "inputs/fx.csv" in failed


def test_certify_fails_on_an_edited_rate_in_the_manifest(nok_run, tmp_path):
    run = _forged(nok_run, tmp_path)
    path = run / "manifest.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["pledges"]["rates"][0]["usd_per_unit"] = 0.1
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    cert = certify(run)
    failed = {c.name: c for c in cert.failed()}
    assert list(failed) == ["resources.csv"]
    assert any(p.startswith("manifest.json: pledges.rates") for p in failed["resources.csv"]
               .problems)


def test_certify_fails_on_an_edited_rate_in_resources_csv(nok_run, tmp_path):
    run = _forged(nok_run, tmp_path)
    path = run / "resources.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",0.094,", ",0.1,", 1),
                    encoding="utf-8")
    cert = certify(run)
    failed = {c.name: c for c in cert.failed()}
    assert "resources.csv" in failed
    assert "resources.csv:2: usd_per_unit: '0.1', recomputed 0.094" in \
        failed["resources.csv"].problems
    assert any("resources.csv" in p for p in failed["files"].problems)


def test_the_contributions_are_part_of_the_scenario_identity(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6)])
    before = load(inputs, model)
    write_rows(inputs / "fx.csv", [dict(FX[1], usd_per_unit=0.0941)])
    after = load(inputs, model)
    assert before.identity != after.identity
    assert after.input_bytes()["fx.csv"] == (inputs / "fx.csv").read_bytes()


def test_with_pledges_on_a_contributing_source_takes_the_usd_pledge(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6), contribution("deu", 5,
                                                                        currency="USD")],
                         )
    shutil.copy(inputs / "sources.csv", tmp_path / "sources.csv")
    write_rows(inputs / "sources.csv", [source("deu", None), source("nor", None)])
    scenario = load(inputs, model).with_pledges({"nor": 2e6})
    data = scenario.data
    assert data.source_table["pledge_usd"].tolist() == [5.0, 2e6]
    assert [row.source_id for row in data.contribution_table.rows] == ["deu"]
    # The files written are a valid folder again: nor's pledge in USD, deu's by its row.
    folder = tmp_path / "rewritten"
    folder.mkdir()
    for name, raw in scenario.input_bytes().items():
        (folder / name).write_bytes(raw)
    assert pledges(folder, model) == {"deu": 5.0, "nor": 2e6}


def test_canonical_keeps_contributing_sources_blank(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6)])
    scenario = load(inputs, model).canonical()
    folder = tmp_path / "canonical"
    folder.mkdir()
    for name, raw in scenario.input_bytes().items():
        (folder / name).write_bytes(raw)
    assert pledges(folder, model) == pledges(inputs, model)


# ---------------------------------------------------------------------------------------
# Properties: contributions in USD, paid, change nothing


def _as_contributions(sources: list[dict[str, str]], splits: dict[str, list[int]]
                      ) -> tuple[list[dict[str, str]], list[dict[str, object]]]:
    rows: list[dict[str, object]] = []
    blanked = []
    for row in sources:
        parts = splits.get(row["source_id"])
        if parts is None:
            blanked.append(row)
            continue
        blanked.append({**row, "pledge_usd": ""})
        rows.extend(contribution(row["source_id"], part, currency="USD",
                                 date=f"2024-01-{day + 1:02d}")
                    for day, part in enumerate(parts))
    return blanked, rows


def test_usd_paid_contributions_give_the_bundled_allocation_byte_for_byte(tmp_path):
    example = Path(api.project_path("inputs"))
    model = Path(api.project_path("models/baseline.toml"))
    today = api.allocate(example, model)
    api.write(today, tmp_path / "today")
    inputs = tmp_path / "inputs"
    shutil.copytree(example, inputs)
    sources = read_csv(inputs / "sources.csv")
    # Every source's pledge as one paid USD row, deu's as three that sum to it exactly.
    splits = {row["source_id"]: [int(row["pledge_usd"])] for row in sources}
    splits["deu"] = [100_000_000, 100_000_000, 50_000_000]
    blanked, rows = _as_contributions(sources, splits)
    write_rows(inputs / "sources.csv", blanked)
    write_rows(inputs / "contributions.csv", rows)
    assert "valuation_date" in model.read_text(encoding="utf-8")
    again = api.allocate(inputs, model)
    api.write(again, tmp_path / "again")
    assert (tmp_path / "again" / "allocations.csv").read_bytes() == \
        (tmp_path / "today" / "allocations.csv").read_bytes()
    cert = certify(tmp_path / "again")
    assert cert.ok, "\n".join(cert.lines())


@settings(max_examples=8)
@given(pledge=st.lists(st.integers(1, 5_000_000), min_size=1, max_size=4),
       other=st.integers(0, 30_000_000))
def test_usd_paid_contributions_change_no_allocation(tmp_path_factory, pledge, other):
    root = tmp_path_factory.mktemp("usd")
    sources = [source("deu", other), source("nor", sum(pledge), targets="10.7")]
    inputs, model = write_case(
        root / "a", states=[state("KEN", "LIC"), state("MLI", "LMIC")],
        gaps=[gap("KEN", "10.7", 10e6), gap("MLI", "10.7", 12e6), gap("MLI", "8.8", 3e6)],
        sources=sources, policy=VALUATION)
    today = api.allocate(inputs, model)
    api.write(today, root / "today")
    blanked, rows = _as_contributions([{k: cases.cell(v) for k, v in s.items()}
                                       for s in sources], {"nor": pledge})
    again_inputs, _ = write_case(
        root / "b", states=[state("KEN", "LIC"), state("MLI", "LMIC")],
        gaps=[gap("KEN", "10.7", 10e6), gap("MLI", "10.7", 12e6), gap("MLI", "8.8", 3e6)],
        sources=blanked, policy=VALUATION)
    write_rows(again_inputs / "contributions.csv", rows)
    again = api.allocate(again_inputs, model)
    api.write(again, root / "again")
    assert (root / "again" / "allocations.csv").read_bytes() == \
        (root / "today" / "allocations.csv").read_bytes()


# ---------------------------------------------------------------------------------------
# Bad input: exit 2, one message per problem, nothing written


def _refused(tmp_path: Path, inputs: Path, model: Path) -> str:
    out = tmp_path / "out"
    done = cases.run_cli("allocate", inputs, "--model", model, "--out", out)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not out.exists()
    return done.stderr


BAD = [
    pytest.param([contribution("nor", 1e6, currency="SEK")], None, VALUATION,
                 ["contributions.csv:2: currency: no rate for SEK on or before the valuation "
                  "date 2024-02-05 (fx.csv has no SEK row dated on or before it)"],
                 id="no_rate_for_the_currency"),
    pytest.param([contribution("nor", 1e6)], [dict(FX[2])], VALUATION,
                 ["contributions.csv:2: currency: no rate for NOK on or before the valuation "
                  "date 2024-02-05 (fx.csv has no NOK row dated on or before it)"],
                 id="only_a_rate_after_the_valuation_date"),
    pytest.param([contribution("nor", 1e6, status="promised")], None, VALUATION,
                 ["contributions.csv:2: status: got 'promised', expected one of paid, "
                  "signed, pledged"], id="unknown_status"),
    pytest.param([contribution("nor", 1e6, currency="NKO")], None, VALUATION,
                 ["contributions.csv:2: currency: got 'NKO', expected an ISO 4217 currency "
                  "code such as USD, EUR or NOK (did you mean NOK?)"],
                 id="unknown_currency"),
    pytest.param([contribution("nor", 1e6, currency="nok")], None, VALUATION,
                 ["contributions.csv:2: currency: got 'nok', expected an ISO 4217 currency "
                  "code such as USD, EUR or NOK (did you mean NOK?)"],
                 id="currency_in_lower_case"),
    pytest.param([contribution("nor", 1e6, date="15/01/2024")], None, VALUATION,
                 ["contributions.csv:2: date: got '15/01/2024', expected a date YYYY-MM-DD"],
                 id="date_not_iso"),
    pytest.param([contribution("nor", 1e6, date="2024-02-30")], None, VALUATION,
                 ["contributions.csv:2: date: got '2024-02-30', not a day of the calendar "
                  "(YYYY-MM-DD)"], id="date_not_a_day"),
    pytest.param([contribution("nor", 0)], None, VALUATION,
                 ["contributions.csv:2: amount: got '0', expected a number > 0 (units of its "
                  "currency)"], id="amount_zero"),
    pytest.param([contribution("nro", 1e6)], None, VALUATION,
                 ["contributions.csv:2: source_id: got 'nro', not in sources.csv (did you "
                  "mean nor?)",
                  "sources.csv:3: pledge_usd: required, got a blank cell (or give source nor "
                  "rows in contributions.csv)"], id="unknown_source"),
    pytest.param([contribution("nor", 1e6)], None, "",
                 ["policy.toml: pledges.valuation_date: required when the inputs have "
                  "contributions.csv: the day at which its rows are counted and its "
                  "currencies valued (YYYY-MM-DD)"], id="no_valuation_date"),
    pytest.param([contribution("nor", 1e6)], None, '[pledges]\nvaluation_date = "5 Feb"\n',
                 ["policy.toml:2: pledges.valuation_date: got '5 Feb', expected a date "
                  "YYYY-MM-DD"], id="valuation_date_not_iso"),
    pytest.param([contribution("nor", 1e6)], None,
                 "[pledges]\nvaluation_date = 2024-02-05T10:00:00\n",
                 ["policy.toml:2: pledges.valuation_date: got 2024-02-05T10:00:00, expected a "
                  "date YYYY-MM-DD without a time"], id="valuation_date_with_a_time"),
    pytest.param([contribution("nor", 1e6)], None,
                 VALUATION + "count = { pledged = 1.5 }\n",
                 ["policy.toml:3: pledges.count.pledged: got 1.5, expected a number in [0, 1]"],
                 id="count_above_1"),
    pytest.param([contribution("nor", 1e6)], [*FX, dict(FX[1], usd_per_unit=0.2)], VALUATION,
                 ["fx.csv:5: date: duplicate key 'NOK,2024-02-02', first on line 3"],
                 id="fx_duplicate_currency_and_date"),
    pytest.param([contribution("nor", 1e6)], [dict(FX[1], source="")], VALUATION,
                 ["fx.csv:2: source: required, got a blank cell"], id="fx_blank_source"),
    pytest.param([contribution("nor", 1e6)], [*FX, {"currency": "USD", "date": "2024-01-01",
                                                   "usd_per_unit": 1.1, "source": "x"}],
                 VALUATION, ["fx.csv:5: usd_per_unit: got 1.1, a USD rate is 1"],
                 id="fx_usd_not_1"),
]


@pytest.mark.parametrize(("rows", "fx", "policy", "expected"), BAD)
def test_bad_contributions_exit_2_naming_the_problem(tmp_path, rows, fx, policy, expected):
    inputs, model = make(tmp_path, rows, fx=fx, policy=policy)
    stderr = _refused(tmp_path, inputs, model)
    found = [line.strip() for line in stderr.splitlines()[1:] if line.strip()]
    assert found == [f"{model.parent if m.startswith('policy') else inputs}/{m}"
                     for m in expected], stderr


def test_pledge_usd_beside_contribution_rows_is_an_error_naming_the_source(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6)], nor_pledge=5e6)
    stderr = _refused(tmp_path, inputs, model)
    assert ("sources.csv:3: pledge_usd: source nor has rows in contributions.csv, which "
            "make its pledge: leave pledge_usd blank") in stderr


# ---------------------------------------------------------------------------------------
# verify and fair-share


def test_verify_reproduces_a_run_with_contributions(nok_run):
    from gcm_fund.verification import verify

    result = verify(nok_run)
    assert result.ok, "\n".join(result.lines)


def test_fair_share_compares_a_donors_paid_money_with_its_fair_share(tmp_path):
    # Need 10e6 + 10e6 fundable (LIC), split by GNI 3:1 between NOR and DEU: 15e6 and 5e6.
    # NOR paid NOK 10e6 (USD 940,000) and pledged NOK 5e6 (counted 376,000, paid nothing);
    # DEU pledges USD 1e6 in sources.csv, which says nothing of payment: blank.
    inputs, model = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("MLI", "LIC"),
                state("NOR", "HIC", "Europe", gni_usd=3e9),
                state("DEU", "HIC", "Europe", gni_usd=1e9)],
        gaps=[gap("KEN", "10.7", 10e6), gap("MLI", "10.7", 10e6)],
        sources=[source("deu", 1e6, donor_iso3="DEU"), source("nor", None, donor_iso3="NOR")],
        policy=VALUATION)
    write_rows(inputs / "contributions.csv", [
        contribution("nor", 10e6), contribution("nor", 5e6, status="pledged")])
    write_rows(inputs / "fx.csv", FX)
    out = tmp_path / "fair.csv"
    done = cases.run_cli("fair-share", inputs, "--model", model, "--out", out)
    assert done.returncode == 0, done.stderr
    assert read_csv(out) == [
        {"donor_iso3": "DEU", "gni_usd": "1000000000.00", "fair_share_usd": "5000000.00",
         "pledged_usd": "1000000.00", "ratio": "0.2", "paid_usd": "", "paid_ratio": ""},
        {"donor_iso3": "NOR", "gni_usd": "3000000000.00", "fair_share_usd": "15000000.00",
         "pledged_usd": "1316000.00", "ratio": "0.0877333333333", "paid_usd": "940000.00",
         "paid_ratio": "0.0626666666667"},
    ]


def test_a_currency_other_than_usd_without_fx_csv_names_the_currency_and_date(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6)])
    (inputs / "fx.csv").unlink()
    stderr = _refused(tmp_path, inputs, model)
    assert (f"{inputs}/contributions.csv:2: currency: no rate for NOK on or before the "
            "valuation date 2024-02-05 (fx.csv is missing)") in stderr


def test_usd_only_contributions_need_no_fx_csv(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 250, currency="USD",
                                                 status="pledged")])
    (inputs / "fx.csv").unlink()
    assert pledges(inputs, model)["nor"] == pytest.approx(200)


def test_with_policy_values_the_contributions_at_its_own_date_and_count(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 1e6, status="pledged")])
    scenario = load(inputs, model)
    assert scenario.data.source_table["pledge_usd"].tolist()[1] == pytest.approx(75_200)
    policy = scenario.policy.model_copy(update={"pledges": scenario.policy.pledges.model_copy(
        update={"count": scenario.policy.pledges.count.model_copy(update={"pledged": 0.5})})})
    halved = scenario.with_policy(policy)
    assert halved.data.source_table["pledge_usd"].tolist()[1] == pytest.approx(47_000)
    earlier = policy.model_copy(update={"pledges": policy.pledges.model_copy(
        update={"valuation_date": datetime.date(2024, 2, 1)})})
    # On 2024-02-01 the latest rate is 2024-01-31's, 0.095.
    assert scenario.with_policy(earlier).data.source_table["pledge_usd"].tolist()[1] == \
        pytest.approx(47_500)


def test_validate_says_how_the_contributions_were_valued(tmp_path):
    inputs, model = make(tmp_path, [contribution("nor", 10e6),
                                    contribution("nor", 5e6, status="pledged")])
    done = cases.run_cli("validate", inputs, "--model", model, columns=200)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "contributions: 2 rows valued at 2024-02-05, counted USD 1,316,000.00 of USD "
        "1,410,000.00 face; NOK at USD 0.094 (2024-02-02, Bank A)")


def test_certify_names_a_missing_resources_csv_and_a_missing_pledges_entry(nok_run, tmp_path):
    run = _forged(nok_run, tmp_path)
    (run / "resources.csv").unlink()
    failed = {c.name: c for c in certify(run).failed()}
    assert failed["resources.csv"].figure == "resources.csv: missing from the run folder"
    assert "resources.csv" in "\n".join(failed["files"].problems)
    run = _forged(nok_run, tmp_path / "b")
    path = run / "manifest.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["pledges"]
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    failed = {c.name: c for c in certify(run).failed()}
    assert list(failed) == ["resources.csv"]
    assert failed["resources.csv"].problems == [
        "manifest.json: pledges: missing, and the inputs have contributions.csv"]


def test_a_missing_rate_is_one_problem_per_currency(tmp_path):
    rows = [contribution("nor", 1e6, currency="SEK"), contribution("nor", 2e6, currency="SEK",
                                                                  date="2024-01-20"),
            contribution("nor", 1e6, currency="EUR", date="2024-01-25")]
    inputs, model = make(tmp_path, rows)
    stderr = _refused(tmp_path, inputs, model)
    # Rows in key order (source, date, currency, status): SEK on lines 2 and 3, EUR on 4.
    assert [line.strip() for line in stderr.splitlines()[1:]] == [
        f"{inputs}/contributions.csv:2: currency: no rate for SEK on or before the valuation "
        "date 2024-02-05 (fx.csv has no SEK row dated on or before it)",
        f"{inputs}/contributions.csv:4: currency: no rate for EUR on or before the valuation "
        "date 2024-02-05 (fx.csv has no EUR row dated on or before it)"]
