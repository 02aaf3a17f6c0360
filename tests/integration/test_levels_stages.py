"""certify proves stage 1b (the money placed) and stage 3 (the least loan burden) of SPEC
4b from the run folder alone, by the duals in `stage_duals.csv`.

The case: a LIC and a LMIC gap of U = 5e6 each, one grant and one loan (grant element 0,
penalty 3) of 5e6 each, open to both. Stage 1b places the grant money (X* = 5e6: loans
count 0 there, SPEC 4b) and the levels fill both gaps; stage 3 sends the
loan to the LMIC (burden 0.5 < 1.0): a least loan burden of 3 x 0.5 x 5e6 = 7.5e6.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import allocate_and_read, gap, read_csv, source, state, write_case, write_rows

from gcm_fund import api, audit
from gcm_fund.methods.levels import extend
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import LE, SCALE_USD, LinearProgram, build
from gcm_fund.solvers.backend import StageSolution
from gcm_fund.solvers.pipeline import Pipeline
from gcm_fund.solvers.pulp import refined_duals, refined_objective, refined_values

SOLVERS = ["highs", "cbc"]
STAGE_1B, STAGE_3 = "levels: stage 1b (money placed)", "levels: stage 3 (loan burden)"


def loan_case(folder: Path, solver: str = "highs") -> Path:
    inputs, policy = write_case(
        folder, states=[state("AAA"), state("BBB", "LMIC")],
        gaps=[gap("AAA", "10.7", 5e6), gap("BBB", "10.7", 5e6 / 0.75)],
        sources=[source("g", 5e6), source("l", 5e6, "loan", grant_element=0.0)],
        policy={"equity": {"group": "ldc"}, "loans": {"penalty": 3.0}})
    return allocate_and_read(inputs, policy, folder / f"run-{solver}", solver).folder


@pytest.fixture(scope="module")
def loan_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {solver: loan_case(tmp_path_factory.mktemp(solver), solver) for solver in SOLVERS}


@pytest.fixture
def forged(loan_runs: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(loan_runs["highs"], tmp_path / "run"))


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "manifest.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def rehash(folder: Path, name: str) -> None:
    """Record a changed file's sha256 in the manifest, as a careful forger would."""
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    edit_manifest(folder, lambda m: m["files"].__setitem__(name, digest))


def failed(folder: Path) -> dict[str, list[str]]:
    return {c.name: c.problems or [c.figure] for c in audit.certify(folder).failed()}


@pytest.mark.parametrize("solver", SOLVERS)
def test_certify_proves_the_money_placed_and_the_least_loan_burden(loan_runs, solver):
    folder = loan_runs[solver]
    cert = audit.certify(folder)
    assert cert.ok, "\n".join(cert.lines())
    checks = {c.name: c for c in cert.checks}
    assert checks[STAGE_1B].ok and checks[STAGE_3].ok
    assert cert.figures["stage1b_bound"] == pytest.approx(5e6, abs=1.0)
    # Within SPEC 4b's 1e-6 per gap: CBC's holds give way by 1e-7 of each level.
    assert cert.figures["loan_burden"] == pytest.approx(7.5e6, rel=1e-6)
    assert cert.figures["stage3_bound"] == pytest.approx(7.5e6, rel=1e-6)
    rows = read_csv(folder / "stage_duals.csv")
    assert list(rows[0]) == ["stage", "name", "dual"]
    assert {r["stage"] for r in rows} == {"1b", "3"}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["objective"]["loan_burden"] == pytest.approx(7.5e6, rel=1e-6)


def test_same_gap_amounts_with_a_worse_loan_burden_fail_certify_at_stage_3(forged):
    """The forger swaps USD 1e6 between the grant and the loan in each gap: every gap,
    source and State keeps its amount and every rule holds, but the LIC now carries loan
    money (burden 1.0 instead of 0.5). The manifest's figures, constraints.csv and the
    hashes are redone; only stage 3's duals tell."""
    rows = read_csv(forged / "allocations.csv")
    amounts = {(r["source_id"], r["iso3"]): float(r["amount_usd"]) for r in rows}
    assert amounts == pytest.approx({("g", "AAA"): 5e6, ("l", "BBB"): 5e6}, abs=0.02)
    moved = {("g", "AAA"): amounts[("g", "AAA")] - 1e6, ("g", "BBB"): 1e6,
             ("l", "AAA"): 1e6, ("l", "BBB"): amounts[("l", "BBB")] - 1e6}
    write_rows(forged / "allocations.csv", [
        {"source_id": f, "iso3": i, "target": "10.7", "amount_usd": f"{a:.2f}"}
        for (f, i), a in sorted(moved.items())])
    rehash(forged, "allocations.csv")
    # constraints.csv redone too: each source's per-State row as the new amounts give it.
    constraints = read_csv(forged / "constraints.csv")
    for row in constraints:
        if row["family"] == "source_state":
            lhs = moved[(row["source_id"], row["iso3"])]
            row["lhs"] = f"{lhs:.2f}"
            row["slack"] = f"{float(row['rhs']) - lhs:.2f}"
    write_rows(forged / "constraints.csv", constraints)
    rehash(forged, "constraints.csv")
    # states_summary.csv (SPEC 4c) redone too: each State's grants, loans and their grant
    # equivalent (the loan's grant element is 0).
    summary = read_csv(forged / "states_summary.csv")
    for row in summary:
        loans = moved[("l", row["iso3"])]
        grants = moved[("g", row["iso3"])]
        row.update(grants_usd=f"{grants:.2f}", loans_usd=f"{loans:.2f}",
                   grant_equivalent_usd=f"{grants:.2f}",
                   loan_share=f"{loans / (grants + loans):.6f}")
    write_rows(forged / "states_summary.csv", summary)
    rehash(forged, "states_summary.csv")
    more = 3.0 * 1e6 * (1.0 - 0.5)  # the LIC's 1e6 of loan at 1.0, not 0.5

    def figures(m: dict[str, Any]) -> None:
        m["objective"]["weighted"] -= more
        m["objective"]["loan_burden"] += more

    edit_manifest(forged, figures)
    found = failed(forged)
    assert list(found) == [STAGE_3], found
    (problem,) = found[STAGE_3]
    found = re.fullmatch(r"stage 3: the allocation's loan burden USD ([\d,.]+) exceeds the "
                         r"least the duals allow with every gap's amount held, USD ([\d,.]+), "
                         r"by USD ([\d,.]+)", problem)
    assert found, problem
    burden, least, excess = (float(v.replace(",", "")) for v in found.groups())
    assert (burden, least, excess) == pytest.approx((9e6, 7.5e6, 1.5e6), abs=0.1), problem


def test_a_loan_burden_the_allocation_does_not_give_fails(forged):
    edit_manifest(forged, lambda m: m["objective"].__setitem__("loan_burden", 1.0))
    found = failed(forged)
    assert list(found) == [STAGE_3], found
    assert "manifest loan_burden 1.0 is not the allocation's" in found[STAGE_3][0]


def test_a_money_placed_below_the_optimum_fails_certify_at_stage_1b(forged):
    """X* recorded USD 1e6 short: stage 1b's duals bound the grant money placed by 5e6."""
    def short(m: dict[str, Any]) -> None:
        m["objective"]["allocated_usd"] -= 1e6
        m["levels"]["allocated_at_least_usd"] -= 1e6

    edit_manifest(forged, short)
    found = failed(forged)
    assert STAGE_1B in found, found
    assert any("above the recorded X* USD 4,000,000.00" in p for p in found[STAGE_1B])


def test_stage_duals_taken_away_fail_both_stages(forged):
    rows = read_csv(forged / "stage_duals.csv")
    write_rows(forged / "stage_duals.csv", [{**r, "dual": "0"} for r in rows])
    rehash(forged, "stage_duals.csv")
    found = failed(forged)
    assert {STAGE_1B, STAGE_3} <= set(found), found


def test_a_missing_stage_duals_file_is_named(forged):
    (forged / "stage_duals.csv").unlink()
    edit_manifest(forged, lambda m: m["files"].pop("stage_duals.csv"))
    found = failed(forged)
    assert set(found) == {STAGE_1B, STAGE_3}, found
    assert all("stage_duals.csv" in found[name][0] for name in found), found


@pytest.mark.parametrize("solver", SOLVERS)
def test_gaps_that_fill_at_the_same_level_stop_in_one_step(tmp_path, solver):
    """Three gaps of priority 2 (U = 1e6) fill at L = 0.5 together; D (priority 1, U =
    10e6) rises on with the rest of the USD 10e6 to L = 0.7. The step LP is degenerate at
    L = 0.5 (any one full gap bounds L), yet all three stop there, each named by its own
    gap row with a positive dual: two steps, not four, and certify proves both."""
    inputs, policy = write_case(
        tmp_path, states=[state("AAA"), state("BBB"), state("CCC"), state("DDD")],
        gaps=[gap("AAA", "8.8", 1e6), gap("BBB", "8.8", 1e6), gap("CCC", "8.8", 1e6),
              gap("DDD", "10.7", 10e6)],
        sources=[source("g", 10e6)],
        policy={"equity": {"group": "ldc"}, "weights": {"target": {"8.8": 2.0}}})
    folder = allocate_and_read(inputs, policy, tmp_path / "run", solver).folder
    levels = read_csv(folder / "levels.csv")
    assert [(r["step"], r["gaps_stopped"]) for r in levels] == [("1", "3"), ("2", "1")]
    assert [float(r["level"]) for r in levels] == pytest.approx([0.5, 0.7], rel=1e-6)
    coverage = {r["iso3"]: r for r in read_csv(folder / "coverage.csv")}
    for iso3 in ("AAA", "BBB", "CCC"):
        assert coverage[iso3]["step"] == "1"
        assert coverage[iso3]["stopped_by"].split(";")[0] == f"gap[{iso3},8.8]"
    assert (coverage["DDD"]["step"], coverage["DDD"]["stopped_by"]) == ("2", "budget[g]")
    cert = audit.certify(folder)
    assert cert.ok, "\n".join(cert.lines())


PLEDGES = [12_345_678.91, 23_456_789.13, 34_567_891.27]


def pledges_case(folder: Path) -> tuple[Path, Path]:
    """Three pledges of USD 70,370,359.31 in all, every cent placed (the gaps are larger,
    a thematic share of 30 % met by BBB); CBC writes the values with 8 significant digits
    (70.370359 in USD millions, USD 0.31 short)."""
    return write_case(
        folder, states=[state("AAA"), state("BBB"), state("CCC", "LMIC")],
        gaps=[gap("AAA", "10.7", 40e6), gap("BBB", "8.8", 30e6), gap("CCC", "10.7", 50e6)],
        sources=[source(f"s{i}", p) for i, p in enumerate(PLEDGES)],
        policy={"equity": {"group": "ldc"}, "thematic": {"min_share": {"8.8": 0.3}}})


@pytest.mark.parametrize("solver", SOLVERS)
def test_x_star_is_exact_even_where_8_digits_cannot_write_it(tmp_path, solver):
    """SPEC 4b keeps the money placed within 0.01 USD per gap of X*, so CBC's X* is
    refined to float precision from the rows its duals name, and the slack is SPEC's on
    every solver, certified."""
    inputs, policy = pledges_case(tmp_path)
    pledges = PLEDGES
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    assert run.manifest["objective"]["allocated_usd"] == pytest.approx(sum(pledges), abs=1e-4)
    assert run.manifest["levels"]["allocated_at_least_usd"] == pytest.approx(
        sum(pledges) - 0.03, abs=1e-4)
    cert = audit.certify(run.folder)
    assert cert.ok, "\n".join(cert.lines())


def cbc_stage_1b(inputs: Path, policy: Path
                 ) -> tuple[LinearProgram, Pipeline, np.ndarray, StageSolution]:
    """Section 4's LP of the case, and CBC's stage 1b on it (the most money placed, with
    the floor's bounds): (lp, pipeline, cost, solution), values refined as a run's are."""
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    pipeline = Pipeline(lp, "cbc")
    _, _, bounds = pipeline.floor_stage(pipeline.backend("levels").info.value_precision)
    cost = np.zeros(lp.n_cols)
    cost[: lp.n_x] = 1.0
    return lp, pipeline, cost, pipeline.solve_stage("1b", cost, bounds)


def test_the_refined_optimum_leaves_out_noise_duals_and_refuses_real_ones_on_slack_rows(
        tmp_path):
    """`refined_objective` on CBC's stage 1b of `pledges_case`, its values written as
    CBC's solution file writes them (8 significant digits): the exact sum of the pledges,
    where the values as written miss it; a dual of 2e-16 on a slack row (CBC's noise)
    changes nothing; a real dual there names no optimum, and None says so."""
    inputs, policy = pledges_case(tmp_path)
    lp, pipeline, cost, solution = cbc_stage_1b(inputs, policy)
    exact = sum(PLEDGES) / SCALE_USD
    assert float(cost @ solution.col_value) == pytest.approx(exact, abs=1e-12)  # refined
    solution.col_value = np.array([float(f"{v:.8g}") for v in solution.col_value])
    assert abs(float(cost @ solution.col_value) - exact) > 1e-8  # more than a cent off
    assert refined_objective(lp, solution, cost, pipeline.rhs) == pytest.approx(exact,
                                                                                abs=1e-12)
    slack_row = lp.row_names().index("gap[AAA,10.7]")  # 40e6 of need, less allocated
    assert solution.row_dual[slack_row] == 0.0
    solution.row_dual[slack_row] = 2e-16
    assert refined_objective(lp, solution, cost, pipeline.rhs) == pytest.approx(exact,
                                                                                abs=1e-12)
    solution.row_dual[slack_row] = 0.5
    assert refined_objective(lp, solution, cost, pipeline.rhs) is None


def test_a_basic_column_of_a_few_cents_keeps_its_value_in_the_refinement(tmp_path):
    """A gap of USD 0.04, filled: its column is basic at 4e-8 (USD millions), near 0 but
    not at it, and its `gap` row (non-zero dual) needs it; the refinement keeps it there."""
    inputs, policy = write_case(
        tmp_path, states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 1e6), gap("BBB", "8.8", 0.04)], sources=[source("s", 2e6)],
        policy={"equity": {"group": "ldc"}})
    lp, pipeline, cost, solution = cbc_stage_1b(inputs, policy)
    solution.col_value = np.array([float(f"{v:.8g}") for v in solution.col_value])
    refined = refined_values(lp, solution, cost, pipeline.rhs)
    assert refined is not None
    assert refined[: lp.n_x] == pytest.approx([1.0, 4e-8], abs=1e-15)


def traffic_light_case(folder: Path) -> tuple[Path, Path]:
    """Two moderate-risk States whose loans are capped at 30 % of their money, a low- and a
    high-risk one, grants and loans of USD 80-180 million and one gap of USD 13,000.

    The loan_share rows' coefficients (0.7 on a loan, -0.3 on a grant) make the level
    steps' duals fractions of one another whose 8-digit roundings no longer cancel in the
    reduced costs: read back as CBC writes them, a column worth USD 100 million carries a
    reduced cost of 1e-8 of its terms, which a dual bound prices at its whole upper bound.
    The small gap's tolerance is USD 0.02.
    """
    scale = 30.0
    states = [state("MOA", "LIC", debt_risk="moderate"),
              state("MOB", "LMIC", debt_risk="moderate"),
              state("LOW", "UMIC", debt_risk="low"), state("HIG", "LIC", debt_risk="high")]
    needs = [("MOA", "10.7", 3.7e6), ("MOA", "8.8", 2.9e6), ("MOB", "10.7", 5.3e6),
             ("MOB", "5.2", 1.1e6), ("LOW", "10.7", 7.9e6), ("HIG", "10.7", 4.3e6),
             ("HIG", "8.7", 2.3e6)]
    gaps = [gap(iso3, target, need * scale) for iso3, target, need in needs]
    sources = [source("g1", 3.1e6 * scale), source("g2", 2.7e6 * scale),
               source("l1", 6.1e6 * scale, "loan", grant_element=0.35),
               source("l2", 4.9e6 * scale, "loan", grant_element=0.15)]
    return write_case(
        folder, states=states, gaps=[*gaps, gap("MOA", "16.2", 1.3e4)], sources=sources,
        policy={"weights": {"income": {"LIC": 1.3, "LMIC": 1.1}},
                "equity": {"floor_share": 0.5},
                "loans": {"max_share": {"low": 1.0, "moderate": 0.3, "high": 0.0,
                                        "distress": 0.0, "unrated": 1.0}}})


@pytest.mark.parametrize("solver", SOLVERS)
def test_cbc_duals_read_back_with_8_digits_hold_the_stopped_gaps_under_a_loan_share(
        tmp_path, solver):
    """Before CBC's duals were refined, certify found the stopped gaps of
    `traffic_light_case` free to rise 380 times SPEC 4b's tolerance on CBC (the bundled
    policies under the IDA traffic light failed likewise); now CBC's figures are HiGHS's."""
    inputs, policy = traffic_light_case(tmp_path)
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    row = run.row("loan_share[MOA]")  # the rows the case is about bind
    assert row["lhs"] == pytest.approx(row["rhs"], abs=0.01)
    cert = audit.certify(run.folder)
    assert cert.ok, "\n".join(cert.lines())
    assert cert.figures["levels_worst_rise"] < 0.1
    assert cert.figures["levels_worst_excess"] < 1e-9


def first_level_step(inputs: Path, policy: Path, solver: str
                     ) -> tuple[LinearProgram, np.ndarray, np.ndarray, StageSolution]:
    """The extended LP of the case and its first level step solved by `solver`:
    (ext, cost, rhs, solution), as `run_levels` solves it before any gap stops."""
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    ext, layout = extend(lp, gap_priority(lp.data, lp.policy))
    pipeline = Pipeline(ext, solver)
    _, _, bounds = pipeline.floor_stage(pipeline.backend("levels").info.value_precision)
    rhs = pipeline.rhs.copy()
    rhs[layout.level_rows] = 0.0
    cost = np.zeros(ext.n_cols)
    cost[layout.level_col] = 1.0
    return ext, cost, rhs, pipeline.solve_stage("levels", cost, bounds, rhs)


def worst_reduced_cost(lp: LinearProgram, cost: np.ndarray, dual: np.ndarray) -> float:
    """The largest positive reduced cost `c - A^T y` over the columns, relative to the
    column's terms `|c| + |A|^T |y|`: for a maximisation, a dual bound prices each at the
    most its column can carry."""
    reduced = cost - lp.matrix.T @ dual
    terms = np.abs(cost) + abs(lp.matrix).T @ np.abs(dual)
    return float(np.max(np.where(terms > 0, reduced / np.maximum(terms, 1e-300), 0.0)))


def test_refined_duals_zero_the_reduced_costs_that_8_digits_leave(tmp_path):
    """CBC's first level step of `traffic_light_case`: its duals as the backend hands them
    leave no reduced cost beyond float rounding and bound L by the level reached; written
    with 8 digits (as CBC's solution file has them) they leave reduced costs of 1e-9 of
    their terms, and `refined_duals` takes them back to float rounding. A real dual on a
    slack row names no optimum: None."""
    inputs, policy = traffic_light_case(tmp_path)
    ext, cost, rhs, solution = first_level_step(inputs, policy, "cbc")
    level = float(cost @ solution.col_value)
    assert worst_reduced_cost(ext, cost, solution.row_dual) < 1e-14
    finite = np.isfinite(rhs)
    assert float(solution.row_dual[finite] @ rhs[finite]) == pytest.approx(level, rel=1e-12)
    rounded = np.array([float(f"{v:.8g}") for v in solution.row_dual])
    solution.row_dual = rounded
    assert worst_reduced_cost(ext, cost, rounded) > 1e-9
    refined = refined_duals(ext, solution, cost, rhs)
    assert refined is not None
    assert worst_reduced_cost(ext, cost, refined) < 1e-14
    assert float(refined[finite] @ rhs[finite]) == pytest.approx(level, rel=1e-12)
    slack = int(np.nonzero(finite & (ext.matrix @ solution.col_value < rhs - 1e-3)
                           & (ext.sense == LE))[0][0])
    rounded[slack] = 0.5
    assert refined_duals(ext, solution, cost, rhs) is None
