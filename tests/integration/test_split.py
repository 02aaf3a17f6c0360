"""The split rule (SPEC 4b, README "The split rule"): how a gap's amount is divided among
its sources. Restated here from the README's words (CRC-32 of the names, SplitMix64's
finaliser, the least `sum d x` among the splits that keep every gap's amount and the
least loan burden) and solved again with scipy's `linprog`, independently of the tool's
own LP, network guess and solvers."""

from __future__ import annotations

import tempfile
import tomllib
import zlib
from collections import defaultdict
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from cases import RunFiles, allocate_and_read, gap, source, state, toml_text, write_case
from hypothesis import event, given
from scipy.optimize import linprog
from test_levels import level_instances, solve_case
from test_properties import (
    BURDEN_DEFAULTS,
    SCALE,
    Reference,
    Triple,
    _flag,
    _read,
    reference,
)

from gcm_fund import api
from gcm_fund.methods.split import split_cost
from gcm_fund.model.lp import build
from gcm_fund.solvers import flow

MASK64 = 2**64 - 1


def readme_cost(source_id: str, iso3: str, target: str) -> float:
    """d[f,s,t] as the README states it, one triple at a time in Python integers."""
    mixed = (zlib.crc32(source_id.encode()) << 32) | zlib.crc32(f"{iso3},{target}".encode())
    mixed = (mixed + 0x9E3779B97F4A7C15) & MASK64
    mixed = ((mixed ^ (mixed >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & MASK64
    mixed ^= mixed >> 31
    return 1.0 + (mixed >> 11) / 2.0**53


def square_case(tmp_path: Path) -> tuple[Path, Path]:
    """Two sources, each free to fund both gaps of two States."""
    return write_case(tmp_path, states=[state("AAA"), state("BBB")],
                      gaps=[gap("AAA", "10.7", 1e6), gap("BBB", "10.7", 1e6)],
                      sources=[source("don1", 1e6), source("don2", 1e6)],
                      policy=toml_text({}))


def test_the_split_cost_is_the_readmes_for_every_triple(tmp_path):
    inputs, policy = square_case(tmp_path)
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    ids = lp.data.sources["source_id"].to_numpy()
    gaps = lp.data.gaps
    expected = [readme_cost(str(ids[f]), str(gaps["iso3"].iloc[g]), str(gaps["target"].iloc[g]))
                for f, g in zip(lp.var_source, lp.var_gap, strict=True)]
    assert split_cost(lp).tolist() == expected


def test_money_moved_around_a_cycle_of_two_sources_and_two_gaps_changes_the_cost(tmp_path):
    # A cost that adds a source's part to a gap's part gives every such cycle a cost of
    # 0: then the split is not unique, and two solvers (or two starts) split differently.
    inputs, policy = square_case(tmp_path)
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    d = split_cost(lp)
    at = {(int(f), int(g)): j for j, (f, g) in enumerate(zip(lp.var_source, lp.var_gap,
                                                              strict=True))}
    cycle = d[at[0, 0]] - d[at[1, 0]] + d[at[1, 1]] - d[at[0, 1]]
    assert abs(cycle) > 1e-6


def loan_cost(inputs: Path, policy_path: Path) -> dict[tuple[str, str], float]:
    """lambda * (1 - g_f) * burden[income(s)] by (source, State), from the files (SPEC 4b)."""
    document = tomllib.loads(policy_path.read_text(encoding="utf-8"))
    loans = document.get("loans", {})
    penalty = float(loans.get("penalty", 0.0))
    burden = {**BURDEN_DEFAULTS, **loans.get("burden", {})}
    income = {r["iso3"]: r["income_group"] for r in _read(inputs / "states.csv")}
    cost: dict[tuple[str, str], float] = {}
    for r in _read(inputs / "sources.csv"):
        loan = r["instrument"] == "loan"
        grant_element = float(r["grant_element"]) if r.get("grant_element", "") else 1.0
        for iso3, group in income.items():
            cost[(r["source_id"], iso3)] = (penalty * (1.0 - grant_element) * burden[group]
                                           if loan else 0.0)
    return cost


MAX_SHARE_DEFAULTS = {"low": 1.0, "moderate": 1.0, "high": 1.0, "distress": 0.0,
                      "unrated": 1.0}


def loan_caps(inputs: Path, policy_path: Path) -> dict[str, float]:
    """m(s), the most of a State's money that may be loans, by State (SPEC 4c):
    `[loans] max_share` of its debt risk (`distress` where debt_distress is true, blank
    `unrated`)."""
    document = tomllib.loads(policy_path.read_text(encoding="utf-8"))
    share = {**MAX_SHARE_DEFAULTS, **document.get("loans", {}).get("max_share", {})}
    return {r["iso3"]: float(share["distress" if _flag(r.get("debt_distress", ""))
                                   else r.get("debt_risk", "") or "unrated"])
            for r in _read(inputs / "states.csv")}


def reference_split(ref: Reference, amounts: dict[tuple[str, str], float],
                    triple_loan_cost: dict[tuple[str, str], float], placed_usd: float = 0.0,
                    loan_cap: dict[str, float] | None = None) -> dict[Triple, float]:
    """The split rule solved by scipy: the least loan burden with every gap at its amount,
    at least `placed_usd` of grants (SPEC 4b's stage 1b, held by every later stage) and
    each State's loans at most `loan_cap` of its money (SPEC 4c's loan_share; 0 leaves
    loans out), then the least `sum d x` at that burden; USD by triple."""
    triples = [k for k in ref.triples if amounts.get(k[1:], 0.0) > 0]
    column = {k: j for j, k in enumerate(triples)}
    n = len(triples)
    if n == 0:
        return {}
    gaps = sorted({k[1:] for k in triples})
    equal = np.zeros((len(gaps), n))
    for k, j in column.items():
        equal[gaps.index(k[1:]), j] = 1.0
    rows, bounds = [], []
    for f, b in ref.pledge.items():
        row = np.array([1.0 if k[0] == f else 0.0 for k in triples])
        if row.any():
            rows.append(row)
            bounds.append(b / SCALE)
        for s in {k[1] for k in triples if k[0] == f}:
            if ref.rho[f] < 1.0:
                rows.append(np.array([1.0 if k[:2] == (f, s) else 0.0 for k in triples]))
                bounds.append(ref.rho[f] * b / SCALE)
    grants = np.array([0.0 if k[0] in ref.lends else 1.0 for k in triples])
    for s, cap in (loan_cap or {}).items():
        to_s = np.array([1.0 if k[1] == s else 0.0 for k in triples])
        if cap < 1.0 and (to_s * (1.0 - grants)).any():
            rows.append(to_s * (1.0 - grants) - cap * to_s)
            bounds.append(0.0)
    if placed_usd > 0:
        rows.append(-grants)
        bounds.append(-placed_usd / SCALE)
    upper = np.array(rows) if rows else np.zeros((0, n))
    # The amounts come from the run's cents, which keep every budget: a tenth of a cent
    # of room for the sums' float rounding, no more (the budgets bind; more room moves
    # the split).
    limit = np.array(bounds) + 1e-9
    amount = np.array([amounts[g] / SCALE for g in gaps])
    burden = np.array([triple_loan_cost[k[:2]] for k in triples])
    if burden.any():
        least = linprog(burden, A_ub=upper, b_ub=limit, A_eq=equal, b_eq=amount,
                        method="highs")
        assert least.status == 0
        upper = np.vstack([upper, burden])
        limit = np.append(limit, least.fun * (1 + 1e-9) + 1e-9)
    d = np.array([readme_cost(*k) for k in triples])
    split = linprog(d, A_ub=upper, b_ub=limit, A_eq=equal, b_eq=amount, method="highs")
    assert split.status == 0
    return {k: float(split.x[j]) * SCALE for k, j in column.items()}


def assert_split_is_the_rule(inputs: Path, policy: Path, allocations: dict[Triple, float],
                             placed_usd: float = 0.0) -> None:
    ref = reference(inputs, policy)
    amounts: dict[tuple[str, str], float] = defaultdict(float)
    for (_, s, t), usd in allocations.items():
        amounts[(s, t)] += usd
    expected = reference_split(ref, amounts, loan_cost(inputs, policy), placed_usd,
                               loan_caps(inputs, policy))
    for triple in set(expected) | set(allocations):
        # A gap's own tolerance (SPEC 4b), and a cent of rounding per triple written.
        tolerance = 0.02 + 1e-6 * ref.fundable[triple[1:]]
        assert allocations.get(triple, 0.0) == pytest.approx(expected.get(triple, 0.0),
                                                             abs=tolerance), triple


def placed(run: RunFiles) -> float:
    """The grant money every stage after 1b keeps placed (the manifest's record)."""
    return float(run.manifest["levels"]["allocated_at_least_usd"])


@given(instance=level_instances())
def test_the_split_is_the_rules_least_cost_split_by_an_independent_solve(instance):
    # On the min-cost flow's columns however small the LP (`flow.MIN_COLUMNS`): the other
    # tests here and elsewhere solve these small instances without it.
    with tempfile.TemporaryDirectory() as folder, patch.object(flow, "MIN_COLUMNS", 0):
        inputs, policy, run = solve_case(Path(folder), instance)
        if run is None:
            event("infeasible")
            return
        assert_split_is_the_rule(inputs, policy, run.amounts(), placed(run))


@pytest.mark.parametrize(("solver", "guess"), [("highs", False), ("highs", True),
                                               ("cbc", False)])
def test_the_examples_split_is_the_rule_on_either_solver(tmp_path, solver, guess):
    root = Path(__file__).resolve().parents[2]
    inputs, policy = root / "inputs", root / "models" / "baseline.toml"
    with patch.object(flow, "MIN_COLUMNS", 0 if guess else flow.MIN_COLUMNS):
        run = allocate_and_read(inputs, policy, tmp_path / solver, solver)
    assert_split_is_the_rule(inputs, policy, run.amounts(), placed(run))


def capped_loans_case(tmp_path: Path) -> tuple[Path, Path]:
    """One State capped at 30 % of the pledges, two loans, two grants: stage 3 keeps the
    loans off, and the split's columns must meet the held amounts through the caps."""
    loan = {"kind": "ifi", "grant_element": 0.0}
    return write_case(
        tmp_path, states=[state("TUR")],
        gaps=[gap("TUR", "10.7", 990_000), gap("TUR", "8.8", 10_000)],
        sources=[source("wb_ida", 10_000, "loan", **loan), source("wb-ida", 10_000),
                 source("don1", 10_000), source("don10", 10_000, "loan", **loan)],
        policy=toml_text({"loans": {"penalty": 3.0},
                          "limits": {"max_state_share": 0.3, "max_source_state_share": 0.5}}))


@pytest.mark.parametrize(("solver", "guess"), [("highs", False), ("highs", True),
                                               ("cbc", False)])
def test_a_split_under_state_and_source_caps_with_loans_is_the_rule(tmp_path, solver, guess):
    inputs, policy = capped_loans_case(tmp_path)
    with patch.object(flow, "MIN_COLUMNS", 0 if guess else flow.MIN_COLUMNS):
        run = allocate_and_read(inputs, policy, tmp_path / solver, solver)
    assert_split_is_the_rule(inputs, policy, run.amounts(), placed(run))
    # The State's cap binds: USD 12,000, give or take the cents each triple is rounded to.
    amounts = run.amounts()
    assert sum(amounts.values()) == pytest.approx(0.3 * 40_000, abs=0.005 * len(amounts))
