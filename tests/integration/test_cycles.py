"""docs/cycles.md: the performance factor, carry-over and pacing, each worked by hand.

Every instance has States of one income group (c = 1, so U = need) and one grant, so that
the allocation follows from the figures in a line of arithmetic.
"""

from __future__ import annotations

import math
from pathlib import Path

import cases
import pytest
from cases import gap, read_csv, source, state, write_case, write_rows

from gcm_fund import api
from gcm_fund.audit.certificate import certify
from gcm_fund.model.scenario import load


def history_row(cycle: int, iso3: str, committed: float, disbursed: float,
                result: object = "", target: str = "10.7") -> dict[str, object]:
    return {"cycle": cycle, "iso3": iso3, "target": target, "committed_usd": committed,
            "disbursed_usd": disbursed, "result": result}


def make(tmp_path: Path, history: list[dict[str, object]] | None, policy: str,
         pledge: float = 6e6, iso3s: tuple[str, ...] = ("KEN", "MLI")) -> tuple[Path, Path]:
    """Each State has one gap at 10.7 with USD 10 M of need; `deu` grants `pledge`."""
    inputs, model = write_case(
        tmp_path, states=[state(code) for code in iso3s],
        gaps=[gap(code, "10.7", 10e6) for code in iso3s],
        sources=[source("deu", pledge)], policy=policy)
    if history is not None:
        write_rows(inputs / "history.csv", history)
    return inputs, model


def allocated(run_folder: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in read_csv(run_folder / "allocations.csv"):
        out[row["iso3"]] = out.get(row["iso3"], 0.0) + float(row["amount_usd"])
    return out


def solve(tmp_path: Path, inputs: Path, model: Path, name: str = "out",
          donor_figures: str = "marginal") -> Path:
    run = api.allocate(inputs, model, donor_figures=donor_figures)
    folder = tmp_path / name
    api.write(run, folder)
    return folder


# ---------------------------------------------------------------------------------------
# The performance factor

FACTORS = [history_row(2, "KEN", 10e6, 10e6, 1), history_row(2, "MLI", 10e6, 2.5e6),
           history_row(2, "UGA", 10e6, 7.5e6, 0.64),
           history_row(1, "UGA", 5e6, 0, 0)]  # cycle 1 is outside a window of 1


def test_a_factor_clipped_at_each_bound_and_one_within(tmp_path):
    # e_bar = 20 / 30. KEN: sqrt(1 / e_bar) = 1.2247 -> 1.2; MLI: sqrt(0.25 / e_bar) =
    # 0.6124 -> 0.8, its result blank (r = 1); UGA: sqrt(0.75 / e_bar) x sqrt(0.64) = 0.8485.
    inputs, model = make(tmp_path, FACTORS, "[cycle]\nnumber = 3\n[performance]\nwindow = 1\n",
                         iso3s=("KEN", "MLI", "UGA", "SEN"))
    table = {r["iso3"]: r for r in read_csv(solve(tmp_path, inputs, model)
                                            / "performance.csv")}
    assert list(table) == ["KEN", "MLI", "UGA"]  # SEN has no history: no row, factor 1
    assert float(table["KEN"]["factor"]) == 1.2
    assert float(table["MLI"]["factor"]) == 0.8
    assert float(table["MLI"]["result"]) == 1.0
    assert float(table["UGA"]["factor"]) == pytest.approx(math.sqrt(1.125) * 0.8, rel=1e-12)
    assert float(table["UGA"]["execution"]) == 0.75
    assert float(table["UGA"]["committed_usd"]) == 10e6


def test_the_factor_multiplies_the_priority_shown_in_coverage(tmp_path):
    inputs, model = make(tmp_path, FACTORS, "[cycle]\nnumber = 3\n[performance]\nwindow = 1\n",
                         iso3s=("KEN", "MLI", "UGA", "SEN"))
    coverage = {r["iso3"]: r for r in read_csv(solve(tmp_path, inputs, model)
                                               / "coverage.csv")}
    assert float(coverage["KEN"]["priority"]) == 1.2
    assert float(coverage["MLI"]["priority"]) == 0.8
    assert float(coverage["SEN"]["priority"]) == 1.0


# ---------------------------------------------------------------------------------------
# Carry-over: keep against pool

CARRY = [history_row(1, "KEN", 6e6, 2e6, 1)]  # b = USD 4 M undisbursed


def test_keep_lowers_the_fundable_need_by_the_balance(tmp_path):
    # U' = 10 - 4 = USD 6 M; the grant of USD 4 M all goes to KEN.
    inputs, model = make(tmp_path, CARRY, "[cycle]\nnumber = 2\n", pledge=4e6,
                         iso3s=("KEN",))
    folder = solve(tmp_path, inputs, model)
    assert [float(r["fundable_usd"]) for r in read_csv(folder / "coverage.csv")] == [6e6]
    assert allocated(folder) == {"KEN": 4e6}
    assert certify(folder).ok


def test_pool_returns_the_balance_as_the_carryover_source(tmp_path):
    # U stays USD 10 M; the pool has deu's 4 M and the carry-over's 4 M: KEN receives 8 M.
    inputs, model = make(tmp_path, CARRY, '[cycle]\nnumber = 2\n[carryover]\n'
                         'undisbursed = "pool"\n', pledge=4e6, iso3s=("KEN",))
    folder = solve(tmp_path, inputs, model)
    assert [float(r["fundable_usd"]) for r in read_csv(folder / "coverage.csv")] == [10e6]
    assert allocated(folder) == {"KEN": 8e6}
    summary = {r["source_id"]: r for r in read_csv(folder / "sources_summary.csv")}
    assert float(summary["carryover"]["pledge_usd"]) == 4e6
    assert "carryover" not in (folder / "inputs" / "sources.csv").read_text()
    assert certify(folder).ok


def test_a_carryover_source_beside_pool_is_refused(tmp_path):
    inputs, model = make(tmp_path, CARRY, '[cycle]\nnumber = 2\n[carryover]\n'
                         'undisbursed = "pool"\n', iso3s=("KEN",))
    write_rows(inputs / "sources.csv", [source("carryover", 1e6)])
    done = cases.run_cli("allocate", inputs, "--model", model, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert (f"{inputs}/sources.csv:2: source_id: 'carryover' is the source [carryover] "
            'undisbursed = "pool" adds: name this one otherwise') in done.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# Pacing

PACED = [history_row(1, "KEN", 5e6, 5e6, 1)]  # e_bar = e_KEN = 1: factor 1


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_a_binding_pace_down_holds_a_state_at_its_least(tmp_path, method):
    # Without pacing the floor covers both gaps equally: USD 3 M each. KEN was committed
    # USD 5 M and may be cut by 20 %: it keeps 4 M, MLI the 2 M left (the floor 0.2).
    policy = (f'[allocation]\nmethod = "{method}"\n[cycle]\nnumber = 2\n'
              '[pacing]\nmax_cut = 0.2\n')
    inputs, model = make(tmp_path, PACED, policy)
    folder = solve(tmp_path, inputs, model)
    assert allocated(folder) == pytest.approx({"KEN": 4e6, "MLI": 2e6}, abs=0.01)
    rows = {r["name"]: r for r in read_csv(folder / "constraints.csv")}
    assert float(rows["pace_down[KEN]"]["rhs"]) == pytest.approx(4e6)
    assert certify(folder).ok


def test_pace_up_caps_a_state_at_its_most(tmp_path):
    # KEN was committed USD 1 M; max_rise 1: at most 2 M, MLI the 4 M left.
    inputs, model = make(tmp_path, [history_row(1, "KEN", 1e6, 1e6, 1)],
                         '[allocation]\nmethod = "weighted"\n[cycle]\nnumber = 2\n'
                         '[pacing]\nmax_rise = 1.0\n')
    folder = solve(tmp_path, inputs, model)
    assert allocated(folder) == pytest.approx({"KEN": 2e6, "MLI": 4e6}, abs=0.01)
    assert certify(folder).ok


def test_an_impossible_pacing_exits_3_naming_pace_down(tmp_path):
    # Each State must keep its USD 5 M (max_cut 0), lowered to kappa x B = 6 M: 10 M
    # wanted of 6 M pledged.
    history = [history_row(1, "KEN", 5e6, 5e6, 1), history_row(1, "MLI", 5e6, 5e6, 1)]
    inputs, model = make(tmp_path, history, "[cycle]\nnumber = 2\n[pacing]\nmax_cut = 0\n")
    done = cases.run_cli("allocate", inputs, "--model", model, "--out", tmp_path / "out")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "pace_down[" in done.stderr


# ---------------------------------------------------------------------------------------
# No history: the keys change nothing


def test_an_empty_history_changes_no_byte_of_the_allocation(tmp_path):
    # allocations.csv alone is compared: the donor figures' re-solves would only cost time.
    example = Path(__file__).resolve().parents[2] / "inputs"
    base = solve(tmp_path, example, Path(example).parent / "models" / "baseline.toml", "base",
                 "none")
    copy = tmp_path / "inputs"
    copy.mkdir()
    for name in ("states.csv", "gaps.csv", "sources.csv"):
        (copy / name).write_bytes((example / name).read_bytes())
    (copy / "history.csv").write_text(
        "cycle,iso3,target,committed_usd,disbursed_usd,result\n", encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text((Path(example).parent / "models" / "baseline.toml").read_text()
                      + '\n[cycle]\nnumber = 4\n[carryover]\nundisbursed = "pool"\n'
                      '[pacing]\nmax_cut = 0.1\nmax_rise = 0.5\n', encoding="utf-8")
    with_history = solve(tmp_path, copy, policy, "history", "none")
    assert (with_history / "allocations.csv").read_bytes() == \
        (base / "allocations.csv").read_bytes()
    assert load(copy, policy).data.history is not None
    (copy / "history.csv").unlink()  # absent: the keys alone change nothing either
    keys_only = solve(tmp_path, copy, policy, "keys", "none")
    assert (keys_only / "allocations.csv").read_bytes() == \
        (base / "allocations.csv").read_bytes()


def test_explain_prints_the_factor_and_why(tmp_path):
    inputs, model = make(tmp_path, FACTORS, "[cycle]\nnumber = 3\n[performance]\nwindow = 1\n",
                         iso3s=("KEN", "MLI", "UGA", "SEN"))
    folder = solve(tmp_path, inputs, model)
    said = {code: cases.run_cli("explain", folder, "--state", code, columns=200).stdout
            for code in ("KEN", "MLI", "UGA", "SEN")}
    assert ("performance: factor 1.2 from cycle 2: execution 100.00% (USD 10,000,000 "
            "disbursed of 10,000,000 committed) against 66.67% for all States, results 1; "
            "(1 / 0.6667)^0.5 x 1^0.5 = 1.22474, clipped to max_factor 1.2") in said["KEN"]
    assert "= 0.612372, clipped to min_factor 0.8" in said["MLI"]
    assert "performance: factor 0.848528 from cycle 2" in said["UGA"]
    assert "clipped" not in said["UGA"]
    assert "performance: factor 1: no history in cycle 2" in said["SEN"]


# ---------------------------------------------------------------------------------------
# certify: an edited history row or factor fails, naming the file


@pytest.fixture(scope="module")
def paced_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("paced")
    inputs, model = make(tmp_path, PACED + [history_row(1, "MLI", 2e6, 1e6, 0.5)],
                         "[cycle]\nnumber = 2\n[pacing]\nmax_cut = 0.2\n")
    return solve(tmp_path, inputs, model)


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "forged"
    shutil.copytree(run, folder)
    return folder


def test_the_paced_run_certifies(paced_run):
    assert certify(paced_run).ok


def test_an_edited_history_row_fails_certify_naming_history_csv(paced_run, tmp_path):
    folder = _copy(paced_run, tmp_path)
    path = folder / "inputs" / "history.csv"
    path.write_text(path.read_text().replace("KEN,10.7,5000000,5000000",
                                             "KEN,10.7,5000000,2000000"))
    failed = [c for c in certify(folder).checks if not c.ok]
    assert any("inputs/history.csv" in p for c in failed for p in c.problems), failed
    # Resealed, as a careful forger would: the hashes hold, the recomputed figures do not.
    failed = [c for c in certify(cases.reseal(folder)).checks if not c.ok]
    assert any(c.name == "performance.csv" for c in failed), failed


def test_an_edited_factor_fails_certify_naming_performance_csv(paced_run, tmp_path):
    folder = _copy(paced_run, tmp_path)
    path = folder / "performance.csv"
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    cells[-1] = "1.1"
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    failed = [c for c in certify(cases.reseal(folder)).checks if not c.ok]
    assert [c.name for c in failed] == ["performance.csv"]
    assert failed[0].problems[0].startswith("performance.csv:2: factor: '1.1', recomputed ")


# ---------------------------------------------------------------------------------------
# Under programmes: the factor multiplies each programme's priority


def test_under_programmes_the_better_performer_is_funded(tmp_path):
    # e_bar = 12.5 / 20: KEN sqrt(1.6) -> 1.2, MLI sqrt(0.4) -> 0.8. Two programmes of
    # USD 5 M, equal but for their State's factor, and USD 5 M to give: KEN's is chosen.
    inputs, model = make(tmp_path, [history_row(1, "KEN", 10e6, 10e6, 1),
                                    history_row(1, "MLI", 10e6, 2.5e6)],
                         '[allocation]\nmethod = "programmes"\n[cycle]\nnumber = 2\n',
                         pledge=5e6)
    write_rows(inputs / "programmes.csv", [
        {"programme_id": p, "name": p, "states": code, "targets": "10.7", "budget_usd": 5e6}
        for p, code in (("pk", "KEN"), ("pm", "MLI"))])
    folder = solve(tmp_path, inputs, model)
    selection = {r["programme_id"]: r for r in read_csv(folder / "selection.csv")}
    assert float(selection["pk"]["priority"]) == 1.2
    assert float(selection["pm"]["priority"]) == 0.8
    assert selection["pk"]["funded"] == "true" and selection["pm"]["funded"] == "false"
    assert certify(folder).ok


def test_pace_down_is_lowered_to_what_the_state_can_receive(tmp_path):
    # KEN: C = 5 M, max_cut 0, absorption 3 M -> 3 M. MLI: C = 9 M, its U' under keep is
    # 10 - 1 = 9 M, and kappa x B = 0.5 x 6 M = 3 M is lower still -> 3 M. SEN: nothing
    # committed, no row; no pace_up without max_rise.
    from gcm_fund.model.lp import SCALE_USD, build

    inputs, model = write_case(
        tmp_path, states=[state("KEN", absorption_usd=3e6), state("MLI"), state("SEN")],
        gaps=[gap(code, "10.7", 10e6) for code in ("KEN", "MLI", "SEN")],
        sources=[source("deu", 6e6)],
        policy="[cycle]\nnumber = 2\n[pacing]\nmax_cut = 0\n[limits]\nmax_state_share = 0.5\n")
    write_rows(inputs / "history.csv", [history_row(1, "KEN", 5e6, 5e6, 1),
                                        history_row(1, "MLI", 9e6, 8e6, 1),
                                        history_row(1, "SEN", 0, 0)])
    scenario = load(inputs, model)
    lp = build(scenario.data, scenario.policy)
    block = lp.block("pace_down")
    assert block is not None and lp.block("pace_up") is None
    assert list(block.keys[0]) == ["KEN", "MLI"]
    assert (lp.rhs[block.start:block.stop] * SCALE_USD).tolist() == pytest.approx([3e6, 3e6])


def test_verify_re_solves_the_paced_run_from_its_copies(paced_run):
    from gcm_fund.verification import verify

    found = verify(paced_run)
    assert found.ok, found.lines


def test_keep_leaves_no_need_where_under_a_cent_is_left(tmp_path):
    # U = 0.75 x 1,000,000.01 = 750,000.0075; the balance written to the cent, 750,000.00,
    # leaves 0.0075 USD: no need (not a gap below the least amount the solvers allocate,
    # which would be refused as bad input).
    inputs, model = write_case(
        tmp_path, states=[state("KEN", "LMIC"), state("MLI")],
        gaps=[gap("KEN", "10.7", 1000000.01), gap("MLI", "10.7", 1e6)],
        sources=[source("deu", 3e6)], policy="[cycle]\nnumber = 2\n")
    write_rows(inputs / "history.csv", [history_row(1, "KEN", 750000.00, 0)])
    folder = solve(tmp_path, inputs, model)
    coverage = {r["iso3"]: float(r["fundable_usd"]) for r in read_csv(folder / "coverage.csv")}
    assert coverage == {"KEN": 0.0, "MLI": 1e6}
    assert certify(folder).ok


def test_an_allocation_breaking_pace_down_fails_certify(paced_run, tmp_path):
    # KEN's 4 M held by pace_down: 0.5 M of it moved to MLI, resealed, breaks the rule.
    folder = _copy(paced_run, tmp_path)
    path = folder / "allocations.csv"
    text = path.read_text()
    path.write_text(text.replace("deu,KEN,10.7,4000000.00", "deu,KEN,10.7,3500000.00")
                    .replace("deu,MLI,10.7,2000000.00", "deu,MLI,10.7,2500000.00"))
    assert path.read_text() != text
    failed = {c.name: c for c in certify(cases.reseal(folder)).checks if not c.ok}
    assert "rule pace_down" in failed
    assert failed["rule pace_down"].problems[0].startswith("pace_down[KEN]: lhs ")


def test_the_carryover_pledge_cannot_be_set_by_hand(tmp_path):
    from gcm_fund.errors import UsageError

    inputs, model = make(tmp_path, CARRY, '[cycle]\nnumber = 2\n[carryover]\n'
                         'undisbursed = "pool"\n', pledge=4e6, iso3s=("KEN",))
    scenario = load(inputs, model)
    with pytest.raises(UsageError, match="^carryover: its pledge is the last cycle's"):
        scenario.with_pledges({"carryover": 1e6})
    assert scenario.with_pledges({"deu": 1e6}).data.source_table["pledge_usd"].tolist() == \
        [4e6, 1e6]


def test_validate_says_what_the_history_does(tmp_path):
    inputs, model = make(tmp_path, FACTORS, "[cycle]\nnumber = 3\n[performance]\nwindow = 1\n",
                         iso3s=("KEN", "MLI", "UGA", "SEN"))
    done = cases.run_cli("validate", inputs, "--model", model, columns=300)
    assert done.returncode == 0, done.stderr
    assert ("history: 4 rows; cycle 3 looks back at cycle 2 (execution of all States 66.67%; "
            "3 with a factor); undisbursed USD 10,000,000.00 kept by the States"
            ) in done.stdout


def test_another_policy_recomputes_the_carryover_once(tmp_path):
    inputs, model = make(tmp_path, CARRY, "[cycle]\nnumber = 2\n", pledge=4e6, iso3s=("KEN",))
    keep = load(inputs, model)
    pool = keep.with_policy(keep.policy.model_copy(
        update={"carryover": keep.policy.carryover.model_copy(update={"undisbursed": "pool"})}))
    assert pool.data.source_table["source_id"].tolist() == ["carryover", "deu"]
    assert pool.data.source_table["pledge_usd"].tolist() == [4e6, 4e6]
    assert pool.data.file_bytes["sources.csv"] == keep.data.file_bytes["sources.csv"]
    back = pool.with_policy(keep.policy)
    assert back.data.source_table["source_id"].tolist() == ["deu"]
    assert back.data.cycle is not None and back.data.cycle.keep


def test_the_page_shows_the_follow_up_of_the_earlier_cycles(paced_run, tmp_path):
    """report.html's section on the cycles (docs/cycles.md): KEN's factor and the pacing
    that holds it at its least (USD 4 M of the 5 M it was committed); MLI's factor at
    the least the policy allows; and no such section without history.csv."""
    import re

    page = (paced_run / "report.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="cycles">'):]
    section = section[:section.index("</section>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))
    assert "Cycle 2 of the fund, shaped by cycle 1." in text
    assert "Pacing holds 1 State at a bound: State KEN." in text
    assert "committed USD (cycle 1)" in text
    performance = {r["iso3"]: r for r in read_csv(paced_run / "performance.csv")}
    kenya = re.search(r"\(KEN\) (.*?) at its least", text).group(1).split()
    # committed, disbursed, execution, results, factor, allocated now, pacing bounds.
    assert kenya == ["5,000,000", "5,000,000", "100.0", "%", "100", "%",
                     f"{float(performance['KEN']['factor']):.3f}", "4,000,000", "at", "least",
                     "4,000,000"]
    mali = re.search(r"\(MLI\) (.*?) –", text).group(1).split()
    assert float(performance["MLI"]["factor"]) == 0.8
    assert mali == ["2,000,000", "1,000,000", "50.0", "%", "50", "%", "0.800", "2,000,000",
                    "at", "least", "1,600,000"]
    inputs, model = make(tmp_path, None, "")
    plain = solve(tmp_path, inputs, model)
    assert 'id="cycles"' not in (plain / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "column"), [("performance.csv", "factor"),
                                              ("constraints.csv", "slack")])
def test_the_page_refuses_a_cycle_file_without_its_columns(paced_run, tmp_path, name, column):
    folder = _copy(paced_run, tmp_path)
    path = folder / name
    lines = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(lines[0].replace(column, column + "_x") + "\n" + lines[1],
                    encoding="utf-8")
    done = cases.run_cli("report", folder)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {path}: lacks column {column}: not as allocate "
                                   "writes it")
