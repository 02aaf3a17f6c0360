"""SPEC 8's programmes method on hand-solved instances, and against scipy's MILP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import gap, read_csv, source, state, write_case, write_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from gcm_fund import engine
from gcm_fund.errors import InfeasibleError
from gcm_fund.methods.programmes import select
from gcm_fund.model.lp import build
from gcm_fund.model.scenario import load_scenario

METHOD = '[allocation]\nmethod = "programmes"\n'
SOLVERS = ["highs", "cbc"]


def programme(pid: str, states: str, budget: float, **extra: Any) -> dict[str, Any]:
    """A programmes.csv row on target 10.7 unless told."""
    return {"programme_id": pid, "name": pid.upper(), "states": states,
            "targets": extra.pop("targets", "10.7"), "budget_usd": budget, **extra}


def case(tmp_path: Path, states: list, gaps: list, sources: list, programmes: list,
         policy: str = "") -> Any:
    inputs, policy_path = write_case(tmp_path, states=states, gaps=gaps, sources=sources,
                                     policy=METHOD + policy)
    write_rows(inputs / "programmes.csv", programmes)
    return load_scenario(inputs, policy_path)


def selected(run: Any) -> dict[str, float]:
    """programme_id -> amount of the funded programmes."""
    table = run.tables.selection
    funded = table[table["funded"]]
    return dict(zip(funded["programme_id"], funded["amount_usd"], strict=True))


def counted(run: Any) -> dict[tuple[str, str, str], float]:
    table = run.tables.allocations
    return {(r.source_id, r.iso3, r.target): r.amount_usd for r in table.itertuples()}


@pytest.mark.parametrize("solver", SOLVERS)
def test_minimum_sizes_make_the_greedy_choice_wrong(tmp_path: Path, solver: str) -> None:
    # USD 10 M; p1 (6 M whole, value 1 per USD) first by value per USD leaves 4 M that
    # funds neither p2 nor p3 (5 M whole each, 0.9): greedy V = 6 M, optimum p2 + p3 = 9 M.
    scenario = case(tmp_path, [state("AAA"), state("BBB"), state("CCC")],
                    [gap(s, "10.7", 8e6) for s in ("AAA", "BBB", "CCC")],
                    [source("fund", 10e6)],
                    [programme("p1", "AAA", 6e6), programme("p2", "BBB", 5e6, quality=0.9),
                     programme("p3", "CCC", 5e6, quality=0.9)])
    run = engine.run(scenario, solver)
    assert selected(run) == {"p2": 5e6, "p3": 5e6}
    sel = run.solution.programmes
    assert sel.value == pytest.approx(9.0)
    assert sel.value_bound == pytest.approx(6.0 + 4 * 0.9)  # p1 whole, p2 at 4/5
    row = run.tables.selection.set_index("programme_id").loc["p1"]
    assert row["value_loss"] == pytest.approx(3e6)  # 9 M - 6 M
    assert row["displaced"] == "p2;p3"
    assert row["reason"].startswith("left_out: funding it at its minimum USD 6,000,000.00")


@pytest.mark.parametrize("solver", SOLVERS)
def test_joint_programme_counted_by_its_shares(tmp_path: Path, solver: str) -> None:
    states = [state("AAA"), state("BBB")]
    gaps = [gap("AAA", "10.7", 3e6), gap("BBB", "10.7", 9e6), gap("BBB", "8.8", 5e6)]
    scenario = case(tmp_path / "given", states, gaps, [source("fund", 4e6)],
                    [programme("joint", "AAA;BBB", 4e6, shares="AAA:10.7=0.75;BBB:10.7=0.25")])
    run = engine.run(scenario, solver)
    assert counted(run) == {("fund", "AAA", "10.7"): 3e6, ("fund", "BBB", "10.7"): 1e6}
    # Without shares: in proportion to U over its gaps (3 M and 9 M: a quarter, three);
    # BBB's 8.8 is no target of the programme.
    scenario = case(tmp_path / "default", states, gaps, [source("fund", 4e6)],
                    [programme("joint", "AAA;BBB", 4e6)])
    run = engine.run(scenario, solver)
    assert counted(run) == {("fund", "AAA", "10.7"): 1e6, ("fund", "BBB", "10.7"): 3e6}


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_regional_minimum_forces_a_lower_value_programme_in(tmp_path: Path, solver: str
                                                              ) -> None:
    states = [state("AAA", region="Africa"), state("BBB", region="Asia")]
    gaps = [gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)]
    programmes = [programme("africa", "AAA", 5e6), programme("asia", "BBB", 5e6, quality=0.5)]
    free = engine.run(case(tmp_path / "free", states, gaps, [source("fund", 5e6)],
                           programmes), solver)
    assert selected(free) == {"africa": 5e6}
    held = engine.run(case(tmp_path / "held", states, gaps, [source("fund", 5e6)],
                           programmes, '[regional.min_share]\nAsia = 0.5\n'), solver)
    assert selected(held) == {"asia": 5e6}
    assert held.solution.programmes.value == pytest.approx(2.5)
    row = held.tables.constraints.set_index("name").loc["regional[Asia]"]
    assert (row["lhs"], row["rhs"]) == (pytest.approx(5e6), pytest.approx(2.5e6))


@pytest.mark.parametrize("solver", SOLVERS)
def test_max_per_state_limits_the_programmes_naming_a_state(tmp_path: Path, solver: str
                                                            ) -> None:
    scenario = case(tmp_path, [state("AAA")], [gap("AAA", "10.7", 9e6)], [source("fund", 3e6)],
                    [programme("p1", "AAA", 1e6), programme("p2", "AAA", 1e6, quality=0.9),
                     programme("p3", "AAA", 1e6, quality=0.8)],
                    "[programmes]\nmax_per_state = 2\n")
    run = engine.run(scenario, solver)
    assert selected(run) == {"p1": 1e6, "p2": 1e6}
    assert "per_state[AAA]" in run.solution.programmes.model.row_names


def test_max_per_state_absent_is_no_limit_and_the_run_folder_leaves_it_out(tmp_path: Path
                                                                           ) -> None:
    from gcm_fund import api

    scenario = case(tmp_path, [state("AAA")], [gap("AAA", "10.7", 9e6)], [source("fund", 3e6)],
                    [programme("p1", "AAA", 1e6), programme("p2", "AAA", 1e6, quality=0.9),
                     programme("p3", "AAA", 1e6, quality=0.8)])
    run = engine.run(scenario, "highs")
    assert selected(run) == {"p1": 1e6, "p2": 1e6, "p3": 1e6}
    folder = engine.write(run, tmp_path / "run")
    assert "max_per_state" not in (folder / "policy.toml").read_text()
    assert api.allocate(folder / "inputs", folder / "policy.toml").run_id == run.run_id


@pytest.mark.parametrize("solver", SOLVERS)
def test_merged_sources_whose_selection_does_not_hold_fall_back_to_the_model(
        tmp_path: Path, solver: str) -> None:
    # capped and open may fund the same programmes alike, so the selection MIP first runs
    # with them merged into one source of USD 20 M; capped's cap per State (half its
    # pledge) is not a row of every member, so the merged model drops it and funds p1
    # (USD 16 M in AAA, value 16 M). Only 5 + 10 M may reach AAA: the model's LP with
    # that selection held is infeasible, and the model's own MIP funds p2 alone (2.5 M).
    scenario = case(tmp_path, [state("AAA"), state("BBB")],
                    [gap("AAA", "10.7", 20e6), gap("BBB", "10.7", 10e6)],
                    [source("capped", 10e6, max_state_share=0.5), source("open", 10e6)],
                    [programme("p1", "AAA", 16e6), programme("p2", "BBB", 5e6, quality=0.5)])
    lp = build(scenario.data, scenario.policy)
    found = select(lp, solver, reasons=True)
    assert found.relaxed is not None and found.relaxed.n_xp == 2  # one merged column each
    assert [found.model.ids[p] for p in np.nonzero(found.funded)[0]] == ["p2"]
    assert found.value == pytest.approx(2.5)
    assert found.value_loss == {0: float("inf")}  # no selection can fund p1 at all


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_earmark_keeps_a_source_off_a_joint_programme(tmp_path: Path, solver: str) -> None:
    # africa_only may fund AAA (Africa) but not the joint programme, which also works in
    # BBB (Asia): only `open` funds it, 2 M of its 4 M (minimum 2 M).
    scenario = case(tmp_path, [state("AAA", region="Africa"), state("BBB", region="Asia")],
                    [gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)],
                    [source("africa_only", 10e6, regions="Africa"), source("open", 2e6)],
                    [programme("joint", "AAA;BBB", 4e6, min_usd=2e6)])
    run = engine.run(scenario, solver)
    folder = engine.write(run, tmp_path / "run")
    rows = read_csv(folder / "programme_allocations.csv")
    assert rows == [{"source_id": "open", "programme_id": "joint", "amount_usd": "2000000.00"}]
    reason = read_csv(folder / "selection.csv")[0]["reason"]
    assert reason.startswith("partial: USD 2,000,000.00 of USD 4,000,000.00; stopped by ")
    assert "budget[open]" in reason


def test_a_programme_without_a_fundable_gap_is_not_eligible(tmp_path: Path) -> None:
    scenario = case(tmp_path, [state("AAA"), state("HHH", "HIC")],
                    [gap("AAA", "10.7", 9e6), gap("HHH", "10.7", 9e6)], [source("fund", 3e6)],
                    [programme("rich", "HHH", 1e6), programme("poor", "AAA", 1e6)])
    run = engine.run(scenario, "highs")
    reasons = dict(zip(run.tables.selection["programme_id"], run.tables.selection["reason"],
                       strict=True))
    assert reasons == {"poor": "funded", "rich": "not_eligible: none of its States x targets "
                       "is a gap any source may fund"}


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_pipeline_no_source_may_fund_selects_nothing_rather_than_exit_3(
        tmp_path: Path, solver: str) -> None:
    # No programme is eligible, so the model has no column at all: HiGHS calls such a model
    # empty, not optimal, and the method took that for an impossible policy (exit 3).
    scenario = case(tmp_path, [state("AAA", region="Africa"), state("BBB", region="Asia")],
                    [gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)],
                    [source("africa_only", 3e6, regions="Africa")],
                    [programme("p", "BBB", 1e6)])
    run = engine.run(scenario, solver)
    assert selected(run) == {}
    folder = engine.write(run, tmp_path / "run")
    assert read_csv(folder / "selection.csv")[0]["reason"].startswith("not_eligible: ")


def test_a_regional_share_no_source_may_fund_is_infeasible(tmp_path: Path) -> None:
    scenario = case(tmp_path, [state("AAA", region="Africa"), state("BBB", region="Asia")],
                    [gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)],
                    [source("fund", 3e6, regions="Africa")], [programme("p", "AAA", 1e6)],
                    '[regional.min_share]\nAsia = 0.2\n')
    with pytest.raises(InfeasibleError, match=r"regional\[Asia\]"):
        engine.run(scenario, "highs")


def test_regional_min_share_holds_under_levels(tmp_path: Path) -> None:
    # A rule of every method: under levels the money follows it too.
    inputs, policy = write_case(
        tmp_path, states=[state("AAA", region="Africa"), state("BBB", region="Asia")],
        gaps=[gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 1e6)], sources=[source("fund", 4e6)],
        policy="[equity]\nmaximize = false\n[regional.min_share]\nAsia = 0.5\n")
    run = engine.run(load_scenario(inputs, policy), "highs")
    amounts = counted(run)
    assert amounts[("fund", "BBB", "10.7")] >= 0.5 * sum(amounts.values()) - 0.01
    assert amounts[("fund", "BBB", "10.7")] == pytest.approx(1e6)
    assert sum(amounts.values()) == pytest.approx(2e6)  # Asia's 1 M caps the total at 2 M


# ---------------------------------------------------------------------------------------
# Against an independent MIP


def milp_optimum(budgets: list[float], needs: list[float], programmes: list[tuple[int, float,
                 float, float]]) -> tuple[float, float]:
    """(V*, most money at V*) by scipy's milp: one grant source per budget, programmes
    (state, budget, minimum, quality) on gap (state, 10.7) with need `needs[state]`."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_f, n_p = len(budgets), len(programmes)
    n = n_f * n_p + n_p  # x[f,p] then y_p
    rows, lo, hi = [], [], []
    for f in range(n_f):  # budget[f]
        r = np.zeros(n)
        r[f * n_p:(f + 1) * n_p] = 1
        rows.append(r), lo.append(-np.inf), hi.append(budgets[f])
    for s in range(len(needs)):  # gap[s]
        r = np.zeros(n)
        for p, (state_of, *_rest) in enumerate(programmes):
            if state_of == s:
                r[[f * n_p + p for f in range(n_f)]] = 1
        rows.append(r), lo.append(-np.inf), hi.append(needs[s])
    for p, (_, budget, minimum, _q) in enumerate(programmes):  # size[p]
        for bound, low, high in ((minimum, 0.0, np.inf), (budget, -np.inf, 0.0)):
            r = np.zeros(n)
            r[[f * n_p + p for f in range(n_f)]] = 1
            r[n_f * n_p + p] = -bound
            rows.append(r), lo.append(low), hi.append(high)
    value = np.zeros(n)
    money = np.zeros(n)
    for p, (*_rest, quality) in enumerate(programmes):
        value[[f * n_p + p for f in range(n_f)]] = quality
        money[[f * n_p + p for f in range(n_f)]] = 1
    integrality = np.r_[np.zeros(n_f * n_p), np.ones(n_p)]
    bounds = Bounds(np.zeros(n), np.r_[np.full(n_f * n_p, np.inf), np.ones(n_p)])
    options = {"mip_rel_gap": 0.0}
    first = milp(-value, constraints=LinearConstraint(np.array(rows), lo, hi),
                 integrality=integrality, bounds=bounds, options=options)
    v_star = -first.fun
    second = milp(-money, constraints=[LinearConstraint(np.array(rows), lo, hi),
                                       LinearConstraint(value, v_star * (1 - 1e-7), np.inf)],
                  integrality=integrality, bounds=bounds, options=options)
    return v_star, -second.fun


pipelines = st.tuples(
    st.lists(st.integers(1, 8), min_size=1, max_size=2),  # budgets, USD M
    st.lists(st.integers(1, 6), min_size=2, max_size=3),  # needs, USD M
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 5), st.integers(1, 5),
                       st.sampled_from([0.5, 0.7, 0.9, 1.0])), min_size=1, max_size=5),
)


@settings(max_examples=12, deadline=None)
@given(pipelines)
def test_value_and_money_agree_with_scipy_milp(tmp_path_factory: Any, drawn: Any) -> None:
    budgets, needs, raw = drawn
    programmes = [(s % len(needs), float(b), float(min(m, b)), q) for s, b, m, q in raw]
    tmp = tmp_path_factory.mktemp("milp")
    iso3 = ["AAA", "BBB", "CCC"][: len(needs)]
    scenario = case(tmp, [state(s) for s in iso3],
                    [gap(s, "10.7", n * 1e6) for s, n in zip(iso3, needs, strict=True)],
                    [source(f"s{f}", b * 1e6) for f, b in enumerate(budgets)],
                    [programme(f"p{p}", iso3[s], b * 1e6, min_usd=m * 1e6, quality=q)
                     for p, (s, b, m, q) in enumerate(programmes)])
    lp = build(scenario.data, scenario.policy)
    v_star, money = milp_optimum([float(b) for b in budgets], [float(n) for n in needs],
                                 programmes)
    found = {solver: select(lp, solver, reasons=False) for solver in SOLVERS}
    for sel in found.values():
        assert sel.value == pytest.approx(v_star, rel=1e-6, abs=1e-6)
        assert sel.placed == pytest.approx(money, rel=1e-6, abs=1e-6)
    assert (found["highs"].funded == found["cbc"].funded).all()
    np.testing.assert_allclose(found["highs"].amount, found["cbc"].amount, atol=1e-6)
    for sel in found.values():  # the rules on the written amounts, restated here
        x = sel.model.counted @ sel.x_prog * 1e6
        spent = np.bincount(lp.var_source, x, minlength=len(budgets))
        assert (spent <= np.array(budgets) * 1e6 + 0.01).all()
        given = np.bincount(lp.var_gap, x, minlength=len(needs))
        assert (given <= np.array(needs) * 1e6 + 0.01).all()
        a = sel.amount * 1e6
        low = np.array([m for _, _, m, _ in programmes]) * 1e6
        high = np.array([b for _, b, _, _ in programmes]) * 1e6
        assert ((a <= 0.01) | ((a >= low - 0.02) & (a <= high + 0.02))).all()


alike_sources = st.tuples(
    st.lists(st.tuples(st.sampled_from(["Africa", "Asia"]), st.integers(1, 6),
                       st.integers(1, 6)), min_size=2, max_size=4),  # regions, two needs
    st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["", "Africa", "10.7"]),
                       st.sampled_from(["", "0.3", "0.6"])), min_size=2, max_size=5),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(["10.7", "8.8"]),
                       st.integers(1, 5), st.sampled_from([0.5, 1.0]),
                       st.sampled_from([0.6, 0.8, 1.0])), min_size=2, max_size=7),
)


@settings(max_examples=10, deadline=None)
@given(alike_sources)
def test_merging_alike_sources_changes_nothing(tmp_path_factory: Any, drawn: Any) -> None:
    # Sources whose earmarks match merge; their caps per State differ, so the merged rows
    # are sometimes summed, sometimes dropped, and the merged selection does not always
    # hold in the model. Whichever way, the selection, amounts and reasons are the model's.
    regions, pledges, raw = drawn
    iso3 = ["AAA", "BBB", "CCC", "DDD"][: len(regions)]
    tmp = tmp_path_factory.mktemp("merge")
    sources = [source(f"s{k}", b * 1e6, **({"regions": e} if e == "Africa" else
                                           {"targets": e} if e else {}),
                      **({"max_state_share": cap} if cap else {}))
               for k, (b, e, cap) in enumerate(pledges)]
    programmes = [programme(f"p{k}", ";".join(sorted({iso3[a % len(iso3)], iso3[b % len(iso3)]})),
                            size * 1e6, targets=target, min_usd=size * 1e6 * share,
                            quality=q) for k, (a, b, target, size, q, share) in enumerate(raw)]
    scenario = case(tmp, [state(s, region=r) for s, (r, _, _) in zip(iso3, regions, strict=False)],
                    [gap(s, t, n * 1e6) for s, (_, n1, n2) in zip(iso3, regions, strict=False)
                     for t, n in (("10.7", n1), ("8.8", n2))], sources, programmes)
    lp = build(scenario.data, scenario.policy)
    merged, model = (select(lp, "highs", merge=m) for m in (True, False))
    assert (merged.funded == model.funded).all()
    np.testing.assert_allclose(merged.amount, model.amount, atol=1e-8)
    assert merged.value_loss.keys() == model.value_loss.keys()
    for p, loss in model.value_loss.items():
        assert merged.value_loss[p] == pytest.approx(loss, rel=1e-7, abs=1e-9)
    # A reason is one MIP on the value alone: where several selections that fund p lose
    # the same value, which programmes it displaces is whichever one the MIP finds.
    assert merged.displaced.keys() == model.displaced.keys()


def test_the_relaxation_by_column_generation_is_the_whole_lps(tmp_path: Path) -> None:
    # Large models solve the relaxation behind value_bound by pricing columns in; its
    # optimum must be the whole LP's and its duals must price every column out.
    from gcm_fund.inputs.synthetic import write_instance
    from gcm_fund.methods.programmes import _bounds, _solve, build_programmes
    from gcm_fund.solvers.programmes import solve_lp_priced

    folder = write_instance(tmp_path / "inputs", 30, 4, 25, seed=3)
    gaps = read_csv(folder / "gaps.csv")
    rng = np.random.default_rng(3)
    write_rows(folder / "programmes.csv", [
        programme(f"p{k:03d}", ";".join(sorted({gaps[i]["iso3"] for i in picks})),
                  float(rng.integers(1, 20)) * 1e6, targets=gaps[picks[0]]["target"],
                  min_usd=float(rng.integers(1, 10)) * 1e5)
        for k, picks in enumerate(rng.integers(0, len(gaps), size=(120, 2)))])
    policy = tmp_path / "policy.toml"
    policy.write_text(METHOD + "[programmes]\nmax_per_state = 2\n")
    lp = build(load_scenario(folder, policy).data, load_scenario(folder, policy).policy)
    model = build_programmes(lp)
    value = model.amount_row(model.value)
    lo, hi = _bounds(model)
    whole = _solve(model, value, [], lo, hi, False, "highs")
    priced = solve_lp_priced(model.matrix, value, model.row_lo, model.row_hi, lo, hi, "highs",
                             model.col_prog, lp.pledge[model.col_source])
    assert model.n_xp > 1000  # many columns left out at first
    assert priced.objective == pytest.approx(whole.objective, rel=1e-9)
    reduced = value - model.matrix.T @ priced.row_dual
    assert (reduced[: model.n_xp] <= 1e-7).all()
    dual = priced.row_dual  # d objective / d bound: > 0 on an upper bound, < 0 on a lower
    bound = float(sum(d * (hi_ if d > 0 else lo_) for d, lo_, hi_ in
                      zip(dual, model.row_lo, model.row_hi, strict=True) if d != 0))
    bound += float(np.maximum(reduced[model.n_xp:], 0).sum())  # each y_p <= 1
    assert bound == pytest.approx(whole.objective, rel=1e-7)  # the duals prove the optimum


ROOT = Path(__file__).resolve().parents[2]


def test_cbc_split_holds_amounts_read_back_to_8_digits_like_highs() -> None:
    # Held within 1e-9, CBC's amounts (8 digits) did not fit the budgets they exhaust: the
    # split stage failed and the unsplit values were kept, USD millions apart from HiGHS's.
    scenario = load_scenario(ROOT / "scenarios" / "mptf_scale",
                             ROOT / "models" / "mptf_programmes.toml")
    lp = build(scenario.data, scenario.policy)
    found = {solver: select(lp, solver, reasons=False) for solver in SOLVERS}
    assert (found["highs"].funded == found["cbc"].funded).all()
    highs, cbc = found["highs"].x_prog * 1e6, found["cbc"].x_prog * 1e6
    # CBC holds each programme's amount within 1e-7 of it (values read back to 8 digits).
    programme = found["highs"].model.col_prog
    amount = np.maximum(found["highs"].amount, found["cbc"].amount)[programme] * 1e6
    assert (np.abs(highs - cbc) <= 0.02 + 2e-7 * amount).all()


def test_the_bundled_programmes_policy_pays_whole_programmes_at_mptf_scale(tmp_path: Path
                                                                         ) -> None:
    # README's quickstart line: models/mptf_programmes.toml on scenarios/mptf_scale. The
    # gap methods pay some 130 States there, most under USD 1 M, hundreds of rows under
    # USD 10,000 (docs/programmes.md); whole programmes pay a few dozen States, no slivers.
    from gcm_fund import api, audit

    run = api.allocate(ROOT / "scenarios" / "mptf_scale", ROOT / "models" / "mptf_programmes.toml")
    folder = api.write(run, tmp_path / "run")
    assert audit.certify(folder).ok
    selection = read_csv(folder / "selection.csv")
    funded = [r for r in selection if r["funded"] == "true"]
    assert 10 <= len(funded) < len(selection)
    assert all(float(r["amount_usd"]) >= float(r["min_usd"]) - 0.02 for r in funded)
    paid = [float(r["amount_usd"]) for r in read_csv(folder / "allocations.csv")
            if float(r["amount_usd"]) > 0]
    assert min(paid) >= 10_000
    states = {r["iso3"] for r in read_csv(folder / "allocations.csv")
              if float(r["amount_usd"]) > 0}
    assert len(states) < 40
    # A donor asking what one more dollar buys hears why there is no marginal value.
    from gcm_fund.audit.source_explanation import explain_source

    assert explain_source(folder, "nor")[-1].startswith(
        "  no marginal value: a pledge here buys whole programmes")


def test_verify_with_the_other_solver_finds_the_same_selection(tmp_path: Path) -> None:
    from gcm_fund.verification import verify

    scenario = case(tmp_path, [state("AAA"), state("BBB"), state("CCC")],
                    [gap(s, "10.7", 8e6) for s in ("AAA", "BBB", "CCC")],
                    [source("fund", 10e6)],
                    [programme("p1", "AAA", 6e6), programme("p2", "BBB", 5e6, quality=0.9),
                     programme("p3", "CCC", 5e6, quality=0.9)])
    folder = engine.write(engine.run(scenario, "highs"), tmp_path / "run")
    outcome = verify(folder, "cbc")
    assert outcome.ok, outcome.lines
    assert outcome.lines[-2:] == ["same selection",
                                  "equivalent: the same selection, value and money placed"]


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_a_binding_regional_share_certifies_under_the_gap_methods(tmp_path: Path, method: str
                                                                  ) -> None:
    from gcm_fund import audit

    inputs, policy = write_case(
        tmp_path, states=[state("AAA", region="Africa"), state("BBB", region="Asia"),
                          state("CCC", "LMIC", region="Asia")],
        gaps=[gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 1e6), gap("CCC", "8.8", 2e6)],
        sources=[source("fund", 6e6), source("ida", 3e6, instrument="loan",
                                              grant_element=0.5)],
        policy=f'[allocation]\nmethod = "{method}"\n[regional.min_share]\nAsia = 0.4\n')
    run = engine.run(load_scenario(inputs, policy), "highs")
    row = run.tables.constraints.set_index("name").loc["regional[Asia]"]
    assert row["lhs"] == pytest.approx(0.4 * run.tables.allocations["amount_usd"].sum())
    assert row["slack"] == pytest.approx(0.0, abs=0.01)
    certificate = audit.certify(engine.write(run, tmp_path / "run"))
    assert certificate.ok, [c.lines() for c in certificate.failed()]


def test_a_regional_share_no_eligible_programme_counts_toward_is_infeasible(tmp_path: Path
                                                                            ) -> None:
    # Asia has a gap a source may fund, but no programme works there: exit 3, not an
    # empty selection.
    scenario = case(tmp_path, [state("AAA", region="Africa"), state("BBB", region="Asia")],
                    [gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)], [source("fund", 3e6)],
                    [programme("p", "AAA", 1e6)], '[regional.min_share]\nAsia = 0.2\n')
    with pytest.raises(InfeasibleError, match=r"regional\[Asia\]: the policy asks a share > 0, "
                       "but no eligible programme counts toward it"):
        engine.run(scenario, "highs")


def test_an_impossible_balance_is_exit_3_naming_the_rule(tmp_path: Path, cli: Any) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("AAA", region="Africa"), state("BBB", region="Asia")],
        gaps=[gap("AAA", "10.7", 9e6), gap("BBB", "10.7", 9e6)], sources=[source("fund", 3e6)],
        policy=METHOD + '[regional.min_share]\nAsia = 0.2\n')
    write_rows(inputs / "programmes.csv", [programme("p", "AAA", 1e6)])
    out = tmp_path / "out"
    result = cli("allocate", inputs, "--model", policy, "--out", out)
    assert result.returncode == 3, result.stderr
    assert "regional[Asia]" in result.stderr + result.stdout
    assert [p.name for p in out.iterdir()] == ["diagnosis.json"]  # no allocation written
    assert "regional[Asia]" in (out / "diagnosis.json").read_text()


def test_compare_shows_the_programmes_block(tmp_path: Path) -> None:
    from gcm_fund.analyses.compare import compare

    scenario = case(tmp_path, [state("AAA"), state("BBB"), state("CCC")],
                    [gap(s, "10.7", 8e6) for s in ("AAA", "BBB", "CCC")],
                    [source("fund", 10e6)],
                    [programme("p1", "AAA", 6e6), programme("p2", "BBB", 5e6, quality=0.9),
                     programme("p3", "CCC", 5e6, quality=0.9)])
    levels = tmp_path / "levels.toml"
    levels.write_text("")
    result = compare(scenario.data.folder, [tmp_path / "policy.toml", levels])
    programmes, gaps = (r.metrics for r in result.scenarios)
    assert result.metric_names[-5:] == ["programme_value", "programme_value_bound",
                                   "programmes_funded", "programme_states",
                                   "smallest_programme_usd"]
    assert (programmes["programme_value"], programmes["programmes_funded"],
            programmes["programme_states"], programmes["smallest_programme_usd"]) == (
        pytest.approx(9e6), 2.0, 2.0, pytest.approx(5e6))
    assert "programme_value" not in gaps


def test_sweep_shows_at_which_pledge_the_next_programme_gets_in(tmp_path: Path) -> None:
    from gcm_fund.analyses.sweep import sweep, sweep_columns, sweep_rows

    scenario = case(tmp_path, [state("AAA"), state("BBB"), state("CCC")],
                    [gap(s, "10.7", 8e6) for s in ("AAA", "BBB", "CCC")],
                    [source("fund", 10e6)],
                    [programme("p1", "AAA", 6e6), programme("p2", "BBB", 5e6, quality=0.9),
                     programme("p3", "CCC", 5e6, quality=0.9)])
    result = sweep(scenario.data, scenario.policy, ["fund"], np.array([0, 4e6, 8e6, 12e6]))
    assert sweep_columns(result)[-3:] == ["programme_value", "programmes_funded",
                                          "funded_programmes"]
    rows = [dict(zip(sweep_columns(result), row, strict=True)) for row in sweep_rows(result)]
    # Every programme needs at least USD 5 M; at 8 M p1 (value 6 M) beats p2 or p3 (4.5 M);
    # at 12 M p1 and one of p2, p3 (10.5 M) beat p2 + p3 (9 M).
    assert [(r["programme_value"], r["programmes_funded"]) for r in rows] == [
        ("0.00", "0"), ("0.00", "0"), ("6000000.00", "1"), ("10500000.00", "2")]
    assert rows[2]["funded_programmes"] == "p1"
    assert all(r["marginal_value"] == "" for r in rows)
    assert result.breakpoints == []


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_loan_stage_sends_loans_where_they_burden_least(tmp_path: Path, solver: str
                                                            ) -> None:
    # Both programmes are funded whatever the sources; with penalty 1 the loan's burden is
    # 0.5 x 1.0 per USD in a LIC and 0.5 x 0.25 in an UMIC: the loan goes to q (BBB).
    scenario = case(tmp_path, [state("AAA", "LIC"), state("BBB", "UMIC")],
                    [gap("AAA", "10.7", 8e6), gap("BBB", "10.7", 8e6)],
                    [source("grant", 2e6), source("loan", 2e6, instrument="loan",
                                                  grant_element=0.5)],
                    [programme("p", "AAA", 2e6), programme("q", "BBB", 2e6)],
                    "[loans]\npenalty = 1.0\n")
    run = engine.run(scenario, solver)
    table = run.tables.programme_allocations
    assert list(zip(table["source_id"], table["programme_id"], table["amount_usd"],
                    strict=True)) == [("grant", "p", 2e6), ("loan", "q", 2e6)]
