"""`gcm-fund compare`: each scenario's column equals what `allocate` writes for it.

The expected figures are recomputed here from the run folders of independent `allocate`
runs (allocations.csv, constraints.csv, manifest.json and the input files), not from the
library's tables.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import cases
import pytest
from cases import RunFiles, allocate_and_read, gap, read_csv, read_run, source, state

from gcm_fund.analyses.compare import compare, load_overlay, write_comparison
from gcm_fund.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
OVERLAY = "source_id,pledge_usd\ndeu,500000000\nafdb,0\n"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cases.run_cli(*args, cwd=cwd, columns=200)


def overlaid_inputs(folder: Path, pledges: dict[str, float]) -> Path:
    """A copy of the bundled inputs with some pledges rewritten in sources.csv."""
    shutil.copytree(ROOT / "inputs", folder)
    rows = read_csv(folder / "sources.csv")
    for row in rows:
        if row["source_id"] in pledges:
            row["pledge_usd"] = repr(pledges[row["source_id"]])
    with open(folder / "sources.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def expected_figures(run: RunFiles, inputs: Path) -> dict[str, Any]:
    """The figures of one run, from its files alone."""
    states = {r["iso3"]: r for r in read_csv(inputs / "states.csv")}
    sources = {r["source_id"]: r for r in read_csv(inputs / "sources.csv")}
    amounts = [(r, float(r["amount_usd"])) for r in run.allocations]
    total = sum(a for _, a in amounts)
    by: dict[str, float] = defaultdict(float)
    for row, amount in amounts:
        place = states[row["iso3"]]
        by[f"income_share[{place['income_group']}]"] += amount
        by[f"region_share[{place['region']}]"] += amount
        by[f"target_share[{row['target']}]"] += amount
        if place["ldc"] == "true":
            by["ldc_share"] += amount
        if sources[row["source_id"]]["instrument"] == "loan":
            by["loans_share"] += amount
    figures = {name: value / total for name, value in by.items()}
    # SPEC 4c: grant equivalents (a loan at its grant element) and loans by debt risk.
    equivalent: dict[str, float] = defaultdict(float)
    money: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row, amount in amounts:
        place, src = states[row["iso3"]], sources[row["source_id"]]
        loan = src["instrument"] == "loan"
        ge = amount * (float(src["grant_element"]) if loan else 1.0)
        equivalent["total"] += ge
        equivalent[f"ge_income_share[{place['income_group']}]"] += ge
        if place["ldc"] == "true":
            equivalent["ge_ldc_share"] += ge
        risk = ("distress" if place.get("debt_distress") == "true"
                else place.get("debt_risk") or "unrated")
        money[risk][0] += amount * loan
        money[risk][1] += amount
    figures["grant_equivalent_usd"] = equivalent.pop("total", 0.0)
    figures.update({name: value / figures["grant_equivalent_usd"]
                    for name, value in equivalent.items()})
    figures.update({f"loans_share[{risk}]": loans / all_money
                    for risk, (loans, all_money) in money.items() if all_money > 0})
    # Under levels a cap binds if it stopped gaps at any step (levels.csv), not only at
    # the last (issue 22: compare read the last step's duals alone).
    stopped = ({rule for r in read_csv(run.folder / "levels.csv")
                for rule in r["stopped_by"].split(";")}
               if (run.folder / "levels.csv").exists() else set())
    caps = [r for r in run.constraints
            if r["family"] in ("absorb", "state_share", "source_state")
            and (abs(float(r["dual"])) > 1e-9
                 or r["name"] in stopped and float(r["slack"]) < 1.0)]
    for row in caps:  # a cap with a dual is tight: slack within cents
        assert float(row["slack"]) < 1.0, row
    figures["binding_caps"] = len(caps)
    for family in ("absorb", "state_share", "source_state"):
        figures[f"binding_caps[{family}]"] = sum(r["family"] == family for r in caps)
    figures["floor"] = run.floor
    figures["weighted"] = run.weighted
    figures["allocated_usd"] = total
    figures["pledged_usd"] = sum(float(r["pledge_usd"]) for r in run.sources_summary)
    objective = run.manifest["objective"]
    figures["method"] = objective["method"]
    if objective["method"] == "levels":
        figures["loan_burden_usd"] = objective["loan_burden"]
        figures["levels"] = objective["levels"]
        # The distinct levels, lowest first: levels.csv's steps, equal levels once.
        steps = sorted(float(r["level"]) for r in read_csv(run.folder / "levels.csv"))
        distinct = [v for i, v in enumerate(steps)
                    if i == 0 or v - steps[i - 1] > 1e-6 * abs(v)]
        assert len(distinct) == objective["levels"]
        figures.update({f"level_{k}": v for k, v in enumerate(distinct, start=1)})
    return figures


@pytest.fixture(scope="module")
def bundled_comparison(tmp_path_factory: pytest.TempPathFactory,
                       bundled_run) -> dict[str, object]:
    """`compare` through the command line on the bundled example: two policies x {none,
    overlay}, and the four independent runs."""
    base = tmp_path_factory.mktemp("compare")
    (base / "ov.csv").write_text(OVERLAY, encoding="utf-8")
    result = run_cli("compare", str(ROOT / "inputs"), "--model", str(MODELS / "baseline.toml"),
                     "--model", str(MODELS / "ldc_priority.toml"), "--overlay", "ov.csv",
                     "--out", "compare.csv", cwd=base)
    assert result.returncode == 0, result.stderr
    with open(base / "compare.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    overlaid = overlaid_inputs(base / "overlaid", {"deu": 5e8, "afdb": 0.0})
    runs = {}
    for label, inputs, model in [
        ("baseline", ROOT / "inputs", "baseline"),
        ("baseline+ov", overlaid, "baseline"),
        ("ldc_priority", ROOT / "inputs", "ldc_priority"),
        ("ldc_priority+ov", overlaid, "ldc_priority"),
    ]:
        run = (read_run(bundled_run(model)) if inputs == ROOT / "inputs" else  # shared
               allocate_and_read(inputs, MODELS / f"{model}.toml", base / "runs" / label))
        runs[label] = expected_figures(run, inputs)
    return {"table": table, "runs": runs, "stdout": result.stdout}


def test_scenarios_are_every_policy_without_and_with_the_overlay(
        bundled_comparison: dict) -> None:
    table = bundled_comparison["table"]
    assert table[0] == ["metric", "baseline", "baseline+ov", "ldc_priority", "ldc_priority+ov"]
    metrics = [row[0] for row in table[1:]]
    assert metrics[:6] == ["status", "floor", "weighted", "pledged_usd", "allocated_usd",
                           "ldc_share"]
    caps = metrics.index("loans_share")
    assert metrics[caps:caps + 5] == ["loans_share", "binding_caps", "binding_caps[absorb]",
                                      "binding_caps[state_share]", "binding_caps[source_state]"]
    assert table[1] == ["status"] + ["optimal"] * 4
    assert "Scenarios" in bundled_comparison["stdout"]


def test_each_column_equals_its_independent_run(bundled_comparison: dict) -> None:
    table = bundled_comparison["table"]
    labels = table[0][1:]
    for row in table[2:]:
        metric, cells = row[0], row[1:]
        for label, cell in zip(labels, cells, strict=True):
            want = bundled_comparison["runs"][label].get(metric, 0.0)
            if metric == "method":
                assert cell == want, (metric, label)
                continue
            if cell == "":  # a level past this scenario's own count, or no State of a risk
                assert metric.startswith(("level_", "loans_share[")), (metric, label)
                assert metric not in bundled_comparison["runs"][label], (metric, label)
                continue
            got = float(cell)
            if metric == "floor":
                assert got == pytest.approx(want, rel=1e-9), (metric, label)
            elif metric.startswith("binding_caps"):
                assert got == want, (metric, label)
            elif metric.endswith("_usd") or metric == "weighted":
                assert got == pytest.approx(want, abs=0.011), (metric, label)
            else:
                assert got == pytest.approx(want, abs=1e-6), (metric, label)


def test_an_infeasible_scenario_is_reported_not_raised(tmp_path: Path, write_case) -> None:
    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC", ldc=True)],
        gaps=[gap("KEN", "10.7", 4e6), gap("UGA", "8.8", 2e6)],
        sources=[source("don", 1e6), source("ida", 2e6, instrument="loan",
                                             grant_element=0.5)],
        policy={"equity": {"min_floor": 0.9}},
    )
    open_policy = tmp_path / "open.toml"
    open_policy.write_text("", encoding="utf-8")
    result = compare(inputs, [policy, open_policy])
    assert [s.label for s in result.scenarios] == ["policy", "open"]
    assert [s.status for s in result.scenarios] == ["infeasible", "optimal"]
    written = tmp_path / "c.csv"
    write_comparison(result, written)
    rows = {r[0]: r[1:] for r in csv.reader(written.read_text().splitlines())}
    assert rows["status"] == ["infeasible", "optimal"]
    assert rows["floor"] == ["", "0.5"]  # 3e6 of money for 6e6 of gaps
    assert rows["weighted"] == ["", "3000000.00"]
    assert rows["loans_share"] == ["", "0.666667"]
    assert rows["ldc_share"][0] == "" and rows["binding_caps"][0] == ""
    assert rows["income_share[HIC]"] == ["", "0.000000"]


def test_repeated_labels_are_numbered(tmp_path: Path) -> None:
    copy = tmp_path / "other" / "baseline.toml"
    copy.parent.mkdir()
    shutil.copy(MODELS / "baseline.toml", copy)
    result = compare(ROOT / "inputs", [MODELS / "baseline.toml", copy])
    assert [s.label for s in result.scenarios] == ["baseline", "baseline#2"]
    assert result.scenarios[0].metrics == result.scenarios[1].metrics


@pytest.mark.parametrize(("text", "messages"), [
    pytest.param("source_id,pledge_usd\ndue,1\n",
                 ["2: source_id: got 'due', not in sources.csv (did you mean deu?)"],
                 id="unknown-source"),
    pytest.param("source_id,pledge_usd\ndeu,-5\nche,x\n",
                 ["2: pledge_usd: got '-5', expected a number >= 0 (USD)",
                  "3: pledge_usd: got 'x', expected a number >= 0 (USD)"],
                 id="every-problem"),
    pytest.param("source_id,pledge_usd\ndeu,1e8\ndeu,7\n",
                 ["3: source_id: duplicate key 'deu', first on line 2"], id="duplicate"),
    pytest.param("source_id,pledge_usd\ndeu,\"1,000\"\n",
                 ["2: pledge_usd: got '1,000', expected a number >= 0 (USD) written "
                  "plainly (no thousands separators or currency signs)"], id="separator"),
    pytest.param("source_id\ndeu\n", ["1: pledge_usd: missing column"], id="no-column"),
    pytest.param("source_id,pledge_usd\n", ["a header and no rows"], id="no-rows"),
])
def test_bad_overlays_are_reported_at_once(tmp_path: Path, text: str,
                                           messages: list[str]) -> None:
    from gcm_fund import api

    path = tmp_path / "ov.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_overlay(path, api.load(ROOT / "inputs").data)
    assert [str(p).removeprefix(f"{path}:").strip() for p in raised.value.problems] == messages


def test_a_bad_overlay_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "ov.csv").write_text("source_id,pledge_usd\ndue,1\n", encoding="utf-8")
    result = run_cli("compare", str(ROOT / "inputs"), "--overlay", "ov.csv", "--out", "c.csv",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("1 problem in the input:\n"
                             "ov.csv:2: source_id: got 'due', not in sources.csv "
                             "(did you mean deu?)\n")
    assert not (tmp_path / "c.csv").exists()


def test_an_overlay_with_a_bom_and_crlf_is_read(tmp_path: Path) -> None:
    from gcm_fund import api

    path = tmp_path / "ov.csv"
    path.write_bytes(b"\xef\xbb\xbfsource_id,pledge_usd\r\n deu , 2e8 \r\n")
    overlay = load_overlay(path, api.load(ROOT / "inputs").data)
    assert overlay.pledges == {"deu": 2e8}


def test_the_help_has_an_example() -> None:
    result = run_cli("compare", "--help", cwd=ROOT)
    assert result.returncode == 0
    assert "Example: gcm-fund compare" in result.stdout


def test_terminal_output_fits_80_columns_by_policy_name(tmp_path: Path, write_case) -> None:
    from typer.testing import CliRunner

    from gcm_fund.cli.app import app

    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("UGA", "LIC", ldc=True)],
        gaps=[gap("KEN", "10.7", 4e6), gap("UGA", "8.8", 2e6)],
        sources=[source("don", 1e6), source("ida", 2e6, instrument="loan",
                                             grant_element=0.5)],
        policy={"name": "strict floor", "equity": {"min_floor": 0.9}},
    )
    models = []
    for i, name in enumerate(["open door", "=1+1", "a rather long policy name indeed"]):
        path = tmp_path / f"p{i}.toml"
        path.write_text(f'name = "{name}"\n', encoding="utf-8")
        models += ["--model", str(path)]
    (tmp_path / "more.csv").write_text("source_id,pledge_usd\ndon,3000000\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(inputs), "--model", str(policy), *models,
                                      "--overlay", str(tmp_path / "more.csv"),
                                      "--out", str(tmp_path / "c.csv")],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert "strict floor" in result.output and "open door+more" in result.output
    # Every scenario's infeasibility is explained on a line of its own.
    diagnosis = [line for line in lines if ": infeasible: " in line]
    assert [line.split(":")[0] for line in diagnosis] == ["strict floor", "strict floor+more"]
    assert all(len(line.split(": infeasible: ")[1]) > 10 for line in diagnosis)
    header = next(csv.reader((tmp_path / "c.csv").read_text().splitlines()))
    assert header[:4] == ["metric", "strict floor", "strict floor+more", "open door"]
    assert "'=1+1" in header  # a policy name that looks like a formula is written inert


def test_an_overlay_that_is_a_device_or_a_fifo_is_named_for_what_it_is(tmp_path: Path) -> None:
    import os

    from gcm_fund import api

    fifo = tmp_path / "pledges.fifo"
    os.mkfifo(fifo)
    data = api.load(ROOT / "inputs").data
    for path, kind in ((Path("/dev/null"), "a device"), (fifo, "a FIFO (named pipe)")):
        with pytest.raises(InputError) as raised:
            load_overlay(path, data)
        assert [str(p) for p in raised.value.problems] == [
            f"{path}: expected a file, found {kind}"]


def test_compare_counts_a_cap_that_stopped_gaps_before_the_last_step(tmp_path: Path,
                                                                      write_case) -> None:
    """Issue 22: under levels `compare` read the last step's duals alone. AAA can absorb
    1e6 only: its absorption stops it at step 1, the budget stops the others at step 2,
    and the last step's duals name the budget alone; the cap still binds."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("AAA", absorption_usd=1e6), state("BBB"), state("CCC")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "10.7", 10e6), gap("CCC", "8.8", 10e6)],
        sources=[source("g", 8e6)],
        policy={"equity": {"group": "ldc"}},
    )
    metrics = compare(inputs, [policy]).scenarios[0].metrics
    caps = {metric: metrics[metric] for metric in ("binding_caps", "binding_caps[absorb]")}
    assert caps == {"binding_caps": 1.0, "binding_caps[absorb]": 1.0}
