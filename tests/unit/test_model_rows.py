"""The rows of the LP on a 2-source x 2-State x 2-target instance, without a solver.

The instance (amounts in USD):

    sources  don     grant   B = 5e6
             wb_ida  loan    B = 10e6, grant element 0.4
    states   KEN     LIC     Africa    roles origin;transit
             MEX     UMIC    Americas  roles transit;destination, absorbs at most 3e6
    gaps     KEN 10.7: 2e6   KEN 8.8: 1e6   MEX 10.7: 4e6   MEX 8.8: 2e6
    policy   defaults, theta[10.7] = 0.2

Every triple is eligible: 8 columns x[f,s,t] and the floor level z.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import gap, source, state, toml_text

from gcm_fund.errors import InfeasibleError
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.model.lp import GE, LE, SCALE_USD, LinearProgram, build, check_structurally_feasible

SOURCES = ("don", "wb_ida")
STATES = ("KEN", "MEX")
TARGETS = ("10.7", "8.8")
ALL_TRIPLES = frozenset((f, s, t) for f in SOURCES for s in STATES for t in TARGETS)
NEED = {("KEN", "10.7"): 2e6, ("KEN", "8.8"): 1e6, ("MEX", "10.7"): 4e6, ("MEX", "8.8"): 2e6}


def base_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        "states": [
            state("KEN", "LIC", "Africa", roles="origin;transit"),
            state("MEX", "UMIC", "Americas", roles="transit;destination", absorption_usd=3e6),
        ],
        "gaps": [gap(s, t, need) for (s, t), need in NEED.items()],
        "sources": [
            source("don", 5e6),
            source("wb_ida", 10e6, instrument="loan", grant_element=0.4),
        ],
    }


def build_case(tmp_path: Path, write_case: Callable[..., tuple], *,
               states: dict[str, dict[str, Any]] | None = None,
               sources: dict[str, dict[str, Any]] | None = None,
               policy: dict[str, Any] | None = None) -> LinearProgram:
    """The base instance with some cells changed, built into its LP."""
    rows = base_rows()
    for row in rows["states"]:
        row.update((states or {}).get(row["iso3"], {}))
    for row in rows["sources"]:
        row.update((sources or {}).get(row["source_id"], {}))
    document = {"thematic": {"min_share": {"10.7": 0.2}}} if policy is None else policy
    inputs, policy_path = write_case(tmp_path, policy=toml_text(document), **rows)
    return build(load_inputs(inputs), load_policy(policy_path).policy)


def triples(lp: LinearProgram) -> set[tuple[str, str, str]]:
    """The eligible triples, by key."""
    ids = lp.data.sources["source_id"].to_numpy()
    gaps = lp.data.gaps
    return {(ids[f], gaps["iso3"].iat[g], gaps["target"].iat[g])
            for f, g in zip(lp.var_source, lp.var_gap, strict=True)}


def column_labels(lp: LinearProgram) -> list[Any]:
    """(source_id, iso3, target) of each allocation column, then 'z' when there is one."""
    ids = lp.data.sources["source_id"].to_numpy()
    gaps = lp.data.gaps
    labels: list[Any] = [(ids[f], gaps["iso3"].iat[g], gaps["target"].iat[g])
                         for f, g in zip(lp.var_source, lp.var_gap, strict=True)]
    return labels + (["z"] if lp.has_floor else [])


def row_of(lp: LinearProgram, name: str) -> tuple[dict[Any, float], int, float]:
    """One row by name: {column label: coefficient}, its sense, and its rhs in USD."""
    names = lp.row_names()
    assert names.count(name) == 1, f"{name} occurs {names.count(name)} times"
    i = names.index(name)
    dense = np.asarray(lp.matrix.tocsr()[i].todense()).ravel()
    labels = column_labels(lp)
    coefficients = {labels[j]: float(dense[j]) for j in np.nonzero(dense)[0]}
    return coefficients, int(lp.sense[i]), float(lp.rhs[i]) * SCALE_USD


def family_names(lp: LinearProgram, family: str) -> set[str]:
    return {n for n, f in zip(lp.row_names(), lp.row_families(), strict=True) if f == family}


def expected_names(kept: set[tuple[str, str, str]], *, absorbing: set[str],
                   thematic: set[str], floor_states: set[str]) -> dict[str, set[str]]:
    """The row names SPEC section 4 implies for a set of eligible triples."""
    return {
        "budget": {f"budget[{f}]" for f, _, _ in kept},
        "gap": {f"gap[{s},{t}]" for _, s, t in kept},
        "absorb": {f"absorb[{s}]" for _, s, _ in kept if s in absorbing},
        "state_share": {f"state_share[{s}]" for _, s, _ in kept},
        "source_state": {f"source_state[{f},{s}]" for f, s, _ in kept},
        "thematic": {f"thematic[{t}]" for _, _, t in kept if t in thematic},
        "floor": {f"floor[{s},{t}]" for _, s, t in kept if s in floor_states},
    }


# ---------------------------------------------------------------------------------------
# Counts and names


def test_row_counts_of_each_family(tmp_path, write_case):
    lp = build_case(tmp_path, write_case)
    counts = {b.family: b.stop - b.start for b in lp.blocks}
    assert counts == {"budget": 2, "gap": 4, "absorb": 1, "state_share": 2,
                      "source_state": 4, "thematic": 1, "floor": 4}
    assert lp.n_x == 8
    assert lp.n_cols == 9  # and z
    assert lp.n_rows == 18
    assert lp.matrix.shape == (18, 9)


def test_row_names(tmp_path, write_case):
    lp = build_case(tmp_path, write_case)
    names = lp.row_names()
    assert len(set(names)) == len(names)
    assert family_names(lp, "budget") == {"budget[don]", "budget[wb_ida]"}
    assert family_names(lp, "gap") == {"gap[KEN,10.7]", "gap[KEN,8.8]", "gap[MEX,10.7]",
                                       "gap[MEX,8.8]"}
    assert family_names(lp, "absorb") == {"absorb[MEX]"}
    assert family_names(lp, "state_share") == {"state_share[KEN]", "state_share[MEX]"}
    assert family_names(lp, "source_state") == {
        "source_state[don,KEN]", "source_state[don,MEX]",
        "source_state[wb_ida,KEN]", "source_state[wb_ida,MEX]"}
    assert family_names(lp, "thematic") == {"thematic[10.7]"}
    assert family_names(lp, "floor") == {"floor[KEN,10.7]", "floor[KEN,8.8]",
                                         "floor[MEX,10.7]", "floor[MEX,8.8]"}
    assert list(lp.row_families()) == [n.split("[")[0] for n in names]


def test_the_registry_is_a_table_with_each_rows_keys(tmp_path, write_case):
    """Every row carries its family, sense, rhs and keys; no key is read from a name."""
    lp = build_case(tmp_path, write_case)
    table = lp.registry()
    assert list(table.columns) == ["name", "family", "sense", "rhs", "source_id", "iso3",
                                   "target"]
    assert list(table["name"]) == lp.row_names()
    keyed = {r.name: (r.family, r.sense, r.source_id, r.iso3, r.target)
             for r in table.itertuples()}
    assert keyed["budget[wb_ida]"] == ("budget", LE, "wb_ida", "", "")
    assert keyed["gap[MEX,8.8]"] == ("gap", LE, "", "MEX", "8.8")
    assert keyed["absorb[MEX]"] == ("absorb", LE, "", "MEX", "")
    assert keyed["state_share[KEN]"] == ("state_share", LE, "", "KEN", "")
    assert keyed["source_state[don,MEX]"] == ("source_state", LE, "don", "MEX", "")
    assert keyed["thematic[10.7]"] == ("thematic", GE, "", "", "10.7")
    assert keyed["floor[KEN,8.8]"] == ("floor", GE, "", "KEN", "8.8")
    rhs = dict(zip(table["name"], table["rhs"], strict=True))
    assert rhs["budget[wb_ida]"] * SCALE_USD == pytest.approx(10e6)
    assert rhs["absorb[MEX]"] * SCALE_USD == pytest.approx(3e6)


def test_a_stage_extends_the_lp_with_named_columns_and_keyed_rows(tmp_path, write_case):
    """What a later stage adds (a level column, one row per gap) joins the registry and
    is found by name, whatever columns come before it."""
    import scipy.sparse as sp

    lp = build_case(tmp_path, write_case)
    wider = lp.with_columns(["L"], sp.csc_matrix((lp.n_rows, 1)))
    assert wider.column("L") == lp.n_cols and wider.z_col == lp.z_col == lp.n_x
    gaps = lp.block("gap")
    assert gaps is not None
    n = gaps.stop - gaps.start
    block = sp.hstack([lp.matrix[gaps.start:gaps.stop, :], sp.csc_matrix(np.ones((n, 1)))])
    taller = wider.with_rows("level", {"iso3": gaps.keys[0], "target": gaps.keys[1]}, block,
                             GE, np.full(n, -np.inf))
    assert taller.n_rows == lp.n_rows + n and taller.n_cols == lp.n_cols + 1
    level = taller.registry().tail(n)
    assert list(level["family"]) == ["level"] * n
    assert list(level["name"]) == [f"level[{i},{t}]" for i, t in zip(*gaps.keys, strict=True)]
    assert set(level["source_id"]) == {""}
    assert taller.stage1_objective()[taller.z_col] == 1.0


def test_each_row_is_its_rule(tmp_path, write_case):
    """One row of each family, coefficient by coefficient, in USD (SPEC section 4)."""
    policy = {"limits": {"max_state_share": 0.4, "max_source_state_share": 0.7},
              "thematic": {"min_share": {"10.7": 0.2}}}
    lp = build_case(tmp_path, write_case, policy=policy,
                    sources={"don": {"max_state_share": 0.25}})
    every = {label: 1.0 for label in column_labels(lp) if label != "z"}

    assert row_of(lp, "budget[wb_ida]") == (
        {k: 1.0 for k in every if k[0] == "wb_ida"}, LE, pytest.approx(10e6))
    assert row_of(lp, "gap[MEX,10.7]") == (
        {("don", "MEX", "10.7"): 1.0, ("wb_ida", "MEX", "10.7"): 1.0}, LE,
        pytest.approx(0.5 * 4e6))
    assert row_of(lp, "absorb[MEX]") == (
        {k: 1.0 for k in every if k[1] == "MEX"}, LE, pytest.approx(3e6))
    assert row_of(lp, "state_share[KEN]") == (
        {k: 1.0 for k in every if k[1] == "KEN"}, LE, pytest.approx(0.4 * 15e6))
    # The source's own max_state_share beats the policy's default ...
    assert row_of(lp, "source_state[don,KEN]") == (
        {("don", "KEN", "10.7"): 1.0, ("don", "KEN", "8.8"): 1.0}, LE,
        pytest.approx(0.25 * 5e6))
    # ... which applies where the source has none.
    assert row_of(lp, "source_state[wb_ida,MEX]") == (
        {("wb_ida", "MEX", "10.7"): 1.0, ("wb_ida", "MEX", "8.8"): 1.0}, LE,
        pytest.approx(0.7 * 10e6))
    coefficients, sense, rhs = row_of(lp, "thematic[10.7]")
    assert coefficients == {k: pytest.approx(1.0 - 0.2 if k[2] == "10.7" else -0.2)
                            for k in every}
    assert (sense, rhs) == (GE, 0.0)
    coefficients, sense, rhs = row_of(lp, "floor[KEN,10.7]")
    assert coefficients == {("don", "KEN", "10.7"): 1.0, ("wb_ida", "KEN", "10.7"): 1.0,
                            "z": pytest.approx(-2e6 / SCALE_USD)}
    assert (sense, rhs) == (GE, 0.0)


# ---------------------------------------------------------------------------------------
# Eligibility, and rows with no variable left out

ELIGIBILITY = [
    pytest.param({"sources": {"don": {"targets": "8.8"}}},
                 {t for t in ALL_TRIPLES if t[0] == "don" and t[2] == "10.7"},
                 id="target-earmark"),
    pytest.param({"sources": {"don": {"regions": "Africa"}}},
                 {t for t in ALL_TRIPLES if t[0] == "don" and t[1] == "MEX"},
                 id="region-earmark"),
    pytest.param({"sources": {"wb_ida": {"income_groups": "UMIC"}}},
                 {t for t in ALL_TRIPLES if t[0] == "wb_ida" and t[1] == "KEN"},
                 id="income-earmark"),
    pytest.param({"sources": {"wb_ida": {"income_groups": "LIC;UMIC", "regions":
                                         "Africa;Americas", "targets": "8.8;10.7"}}},
                 set(), id="earmarks-naming-everything"),
    pytest.param({"sources": {"don": {"exclude_states": "MEX"}}},
                 {t for t in ALL_TRIPLES if t[0] == "don" and t[1] == "MEX"},
                 id="excluded-state"),
    pytest.param({"states": {"KEN": {"debt_distress": True}}},
                 {t for t in ALL_TRIPLES if t[0] == "wb_ida" and t[1] == "KEN"},
                 id="no-loan-to-debt-distressed"),  # the grant still may go there
    pytest.param({"states": {"MEX": {"absorption_usd": 0}}},
                 {t for t in ALL_TRIPLES if t[1] == "MEX"}, id="absorption-0"),
    pytest.param({"states": {"MEX": {"eligible": False}}},
                 {t for t in ALL_TRIPLES if t[1] == "MEX"}, id="state-not-eligible"),
    pytest.param({"states": {"MEX": {"eligible": "yes"}, "KEN": {"eligible": ""}}},
                 set(), id="state-eligible-yes-or-blank"),
    pytest.param({"sources": {"don": {"pledge_usd": 0}}},
                 {t for t in ALL_TRIPLES if t[0] == "don"}, id="pledge-0"),
    pytest.param({"policy": {"cofinancing": {"UMIC": 0.0}}},
                 {t for t in ALL_TRIPLES if t[1] == "MEX"}, id="cofinancing-0"),
    pytest.param({"states": {"MEX": {"income_group": "HIC"}}},
                 {t for t in ALL_TRIPLES if t[1] == "MEX"}, id="HIC-default-cofinancing-0"),
]


@pytest.mark.parametrize(("change", "dropped"), ELIGIBILITY)
def test_eligibility_and_rows_left_out(tmp_path, write_case, change, dropped):
    policy = change.get("policy", {})
    policy = {**policy, "thematic": {"min_share": {"10.7": 0.2}}}
    lp = build_case(tmp_path, write_case, states=change.get("states"),
                    sources=change.get("sources"), policy=policy)
    kept = set(ALL_TRIPLES - dropped)
    assert triples(lp) == kept
    absorbing = {"MEX"} if change.get("states", {}).get("MEX", {}).get("absorption_usd") != 0 \
        else set()
    expected = expected_names(kept, absorbing=absorbing, thematic={"10.7"},
                              floor_states=set(STATES))
    for family, names in expected.items():
        assert family_names(lp, family) == names, family
    # Every row has at least one allocation column.
    x_part = lp.matrix.tocsr()[:, : lp.n_x]
    assert (np.diff(x_part.indptr) > 0).all()


def test_all_ineligible_gives_no_rows_and_no_z(tmp_path, write_case):
    lp = build_case(tmp_path, write_case, sources={"don": {"pledge_usd": 0},
                                                   "wb_ida": {"pledge_usd": 0}},
                    policy={})
    assert lp.n_x == 0
    assert lp.n_rows == 0
    assert not lp.has_floor
    assert lp.n_cols == 0


def test_thematic_share_of_zero_has_no_row(tmp_path, write_case):
    lp = build_case(tmp_path, write_case,
                    policy={"thematic": {"min_share": {"10.7": 0.0, "8.8": 0.3}}})
    assert family_names(lp, "thematic") == {"thematic[8.8]"}


def test_thematic_target_with_no_eligible_triple_is_infeasible(tmp_path, write_case):
    lp = build_case(tmp_path, write_case, sources={"don": {"targets": "10.7"},
                                                   "wb_ida": {"targets": "10.7"}},
                    policy={"thematic": {"min_share": {"8.8": 0.3}}})
    assert lp.unmet_thematic == ["8.8"]
    with pytest.raises(InfeasibleError, match=r"thematic\[8\.8\]"):
        check_structurally_feasible(lp)


@pytest.mark.parametrize(("group", "ldc", "floor_states"), [
    pytest.param("all", {}, {"KEN", "MEX"}, id="all"),
    pytest.param("ldc", {"KEN": True}, {"KEN"}, id="ldc"),
    pytest.param("UMIC", {}, {"MEX"}, id="income-group"),
    pytest.param("HIC", {}, set(), id="empty-group"),
])
def test_floor_rows_follow_the_equity_group(tmp_path, write_case, group, ldc, floor_states):
    lp = build_case(tmp_path, write_case, states={s: {"ldc": v} for s, v in ldc.items()},
                    policy={"equity": {"group": group}})
    assert family_names(lp, "floor") == {f"floor[{s},{t}]" for s in floor_states
                                         for t in TARGETS}
    assert lp.has_floor == bool(floor_states)
    assert lp.n_cols == lp.n_x + (1 if floor_states else 0)


def test_floor_leaves_out_gaps_without_an_eligible_triple(tmp_path, write_case):
    """G is the gaps of the group that have at least one eligible triple."""
    lp = build_case(tmp_path, write_case, sources={"don": {"targets": "10.7"},
                                                   "wb_ida": {"targets": "10.7"}},
                    policy={})
    assert family_names(lp, "floor") == {"floor[KEN,10.7]", "floor[MEX,10.7]"}
    assert family_names(lp, "gap") == {"gap[KEN,10.7]", "gap[MEX,10.7]"}


# ---------------------------------------------------------------------------------------
# The objective weights

WEIGHT_POLICY = {
    "weights": {"target": {"10.7": 1.5}, "income": {"LIC": 1.2, "UMIC": 0.9},
                "role": {"transit": 1.3, "destination": 0.8}},
    "loans": {"penalty": 0.5, "burden": {"LIC": 1.0, "UMIC": 0.25}},
}


@pytest.mark.parametrize(("roles", "role_weight"), [
    pytest.param("", 1.0, id="no-role"),
    pytest.param("destination", 0.8, id="one-named-role"),
    pytest.param("origin", 1.0, id="unnamed-role"),
    pytest.param("origin;destination", 1.0, id="max-with-unnamed-role"),
    pytest.param("destination;transit", 1.3, id="max-of-named-roles"),
])
def test_weight_formula(tmp_path, write_case, roles, role_weight):
    """w = Wt[t] * Wi[income] * Wr - lambda * (1 - g_f) * burden[income]."""
    lp = build_case(tmp_path, write_case, policy=WEIGHT_POLICY,
                    states={"KEN": {"roles": roles}, "MEX": {"roles": "destination"}})
    weight = dict(zip(column_labels(lp), lp.weight, strict=False))
    wt = {"10.7": 1.5, "8.8": 1.0}
    wi = {"KEN": 1.2, "MEX": 0.9}
    wr = {"KEN": role_weight, "MEX": 0.8}
    burden = {"KEN": 1.0, "MEX": 0.25}
    for f, s, t in ALL_TRIPLES:
        expected = wt[t] * wi[s] * wr[s]
        if f == "wb_ida":
            expected -= 0.5 * (1 - 0.4) * burden[s]
        assert weight[(f, s, t)] == pytest.approx(expected, rel=1e-12), (f, s, t)


def test_negative_weight_is_kept(tmp_path, write_case):
    lp = build_case(tmp_path, write_case, policy={"loans": {"penalty": 5.0}})
    weight = dict(zip(column_labels(lp), lp.weight, strict=False))
    # Default burden: LIC 1.0, UMIC 0.25.
    assert weight[("wb_ida", "KEN", "8.8")] == pytest.approx(1 - 5 * 0.6 * 1.0)
    assert weight[("wb_ida", "MEX", "8.8")] == pytest.approx(1 - 5 * 0.6 * 0.25)
    assert weight[("don", "KEN", "8.8")] == pytest.approx(1.0)


def test_loan_with_full_grant_element_has_no_penalty(tmp_path, write_case):
    lp = build_case(tmp_path, write_case, policy={"loans": {"penalty": 5.0}},
                    sources={"wb_ida": {"grant_element": 1}, "don": {"grant_element": 1}})
    assert lp.weight == pytest.approx(np.ones(8))


@pytest.mark.parametrize(("sources", "limits", "implied"), [
    ({}, {}, {"source_state[don,KEN]", "source_state[don,MEX]", "source_state[wb_ida,KEN]",
              "source_state[wb_ida,MEX]", "state_share[KEN]", "state_share[MEX]"}),
    ({"don": {"max_state_share": 0.5}}, {"max_state_share": 0.9},
     {"source_state[wb_ida,KEN]", "source_state[wb_ida,MEX]"}),
    ({}, {"max_source_state_share": 0.7}, {"state_share[KEN]", "state_share[MEX]"}),
])
def test_implied_rows_are_the_ones_budgets_repeat(tmp_path, write_case, sources, limits,
                                                  implied):
    """source_state[f,s] is implied when rho_f = 1 and state_share[s] when kappa = 1."""
    lp = build_case(tmp_path, write_case, sources=sources, policy={"limits": limits})
    names = np.array(lp.row_names())
    assert set(names[lp.implied_rows()]) == implied


def test_every_allocation_meeting_the_other_rows_meets_the_implied_ones(tmp_path, write_case):
    """Random x >= 0 that each source's budget allows never breaks an implied row."""
    lp = build_case(tmp_path, write_case, sources={"don": {"max_state_share": 0.5}},
                    policy={"limits": {"max_state_share": 0.9}})
    implied = lp.implied_rows()
    budget = lp.block("budget")
    assert budget is not None
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.exponential(size=lp.n_x) * rng.integers(0, 2, size=lp.n_x)
        spent = np.bincount(lp.var_source, weights=x, minlength=len(lp.pledge))
        room = np.divide(lp.pledge, spent, out=np.zeros_like(spent), where=spent > 0)
        x *= room[lp.var_source] * rng.uniform(0.5, 1.0)
        lhs = lp.matrix[:, : lp.n_x] @ x
        assert np.all(lhs[budget.start:budget.stop] <= lp.rhs[budget.start:budget.stop] + 1e-9)
        assert np.all(lhs[implied] <= lp.rhs[implied] + 1e-9)
