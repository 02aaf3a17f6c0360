"""Hand-solved instances, one per rule family, through the real files, on both solvers.

Each case is small enough to solve on paper, and built so that its optimum is a unique,
non-degenerate vertex: the allocation and every dual are then unique, and a solver that
returns another sign or another value is wrong. Amounts are USD; a dual is d objective /
d rhs in weighted-USD per USD, as written in `constraints.csv` (`dual`) and
`sources_summary.csv` (`marginal_value`): >= 0 on a binding `<=` row, <= 0 on a binding
`>=` row. The cases pin that convention for each solver (HiGHS reports it as is for a
maximisation; PuLP's CBC is normalised in solve.py).

Unless a case is about the floor, its policy sets `equity.group = "ldc"` and no State is
an LDC: the floor set G is empty, there is no floor row, and `floor` is null.

CBC's solution file has 8 significant digits, so values are compared with rel 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cases import allocate_and_read, gap, source, state

from gcm_fund.errors import InfeasibleError

SOLVERS = ["highs", "cbc"]
NO_FLOOR: dict[str, Any] = {"equity": {"group": "ldc"}}
WEIGHTED: dict[str, Any] = {"allocation": {"method": "weighted"}}
REL = 1e-6
FLOOR_ABS = 1e-7  # in coverage: the solvers' feasibility tolerance over U ~ 1e6 USD


@dataclass
class Case:
    """A hand-solved instance and its optimum."""

    states: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    policy: dict[str, Any]
    floor: float | None
    weighted: float
    amounts: dict[tuple[str, str, str], float]
    duals: dict[str, float]  # every binding row; rows not named must have dual 0
    marginal: dict[str, float]
    slack: dict[str, float] = field(default_factory=dict)  # rows with known slack


def with_policy(policy: dict[str, Any], **tables: dict[str, Any]) -> dict[str, Any]:
    return {**policy, **tables}


def budget_case() -> Case:
    """budget[f] binds.

    One grant g of 3e6; A/10.7 (U = 2e6, w = 2), B/8.8 (U = 2e6, w = 1), both LIC.
    Fill the better gap first: x[g,A,10.7] = 2e6, x[g,B,8.8] = 1e6.
    weighted = 2 * 2e6 + 1 * 1e6 = 5e6.
    Duals: budget[g] = 1 (one more USD goes to B at w = 1); gap[A,10.7] = 2 - 1 = 1
    (one more USD of U there displaces one USD from B). gap[B,8.8] has slack 1e6.
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 2e6), gap("BBB", "8.8", 2e6)],
        sources=[source("g", 3e6)],
        policy=with_policy(NO_FLOOR, weights={"target": {"10.7": 2.0}}),
        floor=None,
        weighted=5e6,
        amounts={("g", "AAA", "10.7"): 2e6, ("g", "BBB", "8.8"): 1e6},
        duals={"budget[g]": 1.0, "gap[AAA,10.7]": 1.0},
        marginal={"g": 1.0},
        slack={"gap[BBB,8.8]": 1e6, "budget[g]": 0.0},
    )


def gap_case() -> Case:
    """gap[s,t] binds, with the co-financing shares.

    One grant g of 10e6; A LMIC needs 4e6 (U = 0.75 * 4e6 = 3e6, Wi[LMIC] = 1.5),
    B UMIC needs 2e6 (U = 0.5 * 2e6 = 1e6, w = 1). Both gaps are filled:
    weighted = 1.5 * 3e6 + 1 * 1e6 = 5.5e6.
    Duals: gap[A,10.7] = 1.5, gap[B,10.7] = 1; budget[g] = 0 (slack 6e6).
    """
    return Case(
        states=[state("AAA", "LMIC"), state("BBB", "UMIC")],
        gaps=[gap("AAA", "10.7", 4e6), gap("BBB", "10.7", 2e6)],
        sources=[source("g", 10e6)],
        policy=with_policy(NO_FLOOR, weights={"income": {"LMIC": 1.5}}),
        floor=None,
        weighted=5.5e6,
        amounts={("g", "AAA", "10.7"): 3e6, ("g", "BBB", "10.7"): 1e6},
        duals={"gap[AAA,10.7]": 1.5, "gap[BBB,10.7]": 1.0},
        marginal={"g": 0.0},
        slack={"budget[g]": 6e6},
    )


def absorb_case() -> Case:
    """absorb[s] binds.

    One grant g of 10e6; State A (LIC) absorbs at most 1.5e6; A/10.7 needs 1e6 (w = 2),
    A/8.8 needs 1e6 (w = 1). x[g,A,10.7] = 1e6, x[g,A,8.8] = 0.5e6.
    weighted = 2 * 1e6 + 0.5e6 = 2.5e6.
    Duals: absorb[A] = 1 (the next USD goes to 8.8); gap[A,10.7] = 2 - 1 = 1.
    """
    return Case(
        states=[state("AAA", absorption_usd=1.5e6)],
        gaps=[gap("AAA", "10.7", 1e6), gap("AAA", "8.8", 1e6)],
        sources=[source("g", 10e6)],
        policy=with_policy(NO_FLOOR, weights={"target": {"10.7": 2.0}}),
        floor=None,
        weighted=2.5e6,
        amounts={("g", "AAA", "10.7"): 1e6, ("g", "AAA", "8.8"): 0.5e6},
        duals={"absorb[AAA]": 1.0, "gap[AAA,10.7]": 1.0},
        marginal={"g": 0.0},
        slack={"gap[AAA,8.8]": 0.5e6},
    )


def state_share_case() -> Case:
    """state_share[s] binds.

    One grant g of 4e6, kappa = 0.6, so no State may get more than 2.4e6. A/10.7 needs
    10e6 (w = 2), B/8.8 needs 10e6 (w = 1). x[g,A,10.7] = 2.4e6, x[g,B,8.8] = 1.6e6.
    weighted = 2 * 2.4e6 + 1.6e6 = 6.4e6.
    Duals: budget[g] = 1 (the next USD goes to B); state_share[A] = 2 - 1 = 1.
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "8.8", 10e6)],
        sources=[source("g", 4e6)],
        policy=with_policy(NO_FLOOR, weights={"target": {"10.7": 2.0}},
                           limits={"max_state_share": 0.6}),
        floor=None,
        weighted=6.4e6,
        amounts={("g", "AAA", "10.7"): 2.4e6, ("g", "BBB", "8.8"): 1.6e6},
        duals={"budget[g]": 1.0, "state_share[AAA]": 1.0},
        marginal={"g": 1.0},
        slack={"state_share[BBB]": 0.8e6},
    )


def source_state_case() -> Case:
    """source_state[f,s] binds, with rho_f from the source and from the policy.

    Grant g1 of 4e6 with its own max_state_share 0.25 (at most 1e6 per State); grant g2
    of 2e6 earmarked to target 10.7, under the policy's rho = 0.5 (at most 1e6 per State).
    A/10.7 needs 5e6 (w = 3), B/8.8 needs 5e6 (w = 1).
    x[g1,A,10.7] = 1e6, x[g1,B,8.8] = 1e6, x[g2,A,10.7] = 1e6.
    weighted = 3 * 2e6 + 1e6 = 7e6. Both budgets have slack (2e6 and 1e6).
    Duals: source_state[g1,A] = 3, source_state[g1,B] = 1, source_state[g2,A] = 3.
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 5e6), gap("BBB", "8.8", 5e6)],
        sources=[source("g1", 4e6, max_state_share=0.25), source("g2", 2e6, targets="10.7")],
        policy=with_policy(NO_FLOOR, weights={"target": {"10.7": 3.0}},
                           limits={"max_source_state_share": 0.5}),
        floor=None,
        weighted=7e6,
        amounts={("g1", "AAA", "10.7"): 1e6, ("g1", "BBB", "8.8"): 1e6,
                 ("g2", "AAA", "10.7"): 1e6},
        duals={"source_state[g1,AAA]": 3.0, "source_state[g1,BBB]": 1.0,
               "source_state[g2,AAA]": 3.0},
        marginal={"g1": 0.0, "g2": 0.0},
        slack={"budget[g1]": 2e6, "budget[g2]": 1e6},
    )


def thematic_case() -> Case:
    """thematic[t] binds.

    One grant g of 4e6; A/10.7 needs 10e6 (w = 2), B/8.8 needs 10e6 (w = 1);
    theta[8.8] = 0.5. With x1 on 10.7 and x2 on 8.8: x1 + x2 <= 4e6 and
    x2 - 0.5 (x1 + x2) >= r, so x2 = (B + 2r) / 2, x1 = (B - 2r) / 2 and
    weighted = 2 x1 + x2 = 1.5 B - r: at r = 0, x1 = x2 = 2e6, weighted = 6e6.
    Duals: budget[g] = 1.5, thematic[8.8] = -1 (written as allocated to 8.8 >= 0.5 of
    all allocated: lhs 2e6, rhs 2e6).
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 10e6), gap("BBB", "8.8", 10e6)],
        sources=[source("g", 4e6)],
        policy=with_policy(NO_FLOOR, weights={"target": {"10.7": 2.0}},
                           thematic={"min_share": {"8.8": 0.5}}),
        floor=None,
        weighted=6e6,
        amounts={("g", "AAA", "10.7"): 2e6, ("g", "BBB", "8.8"): 2e6},
        duals={"budget[g]": 1.5, "thematic[8.8]": -1.0},
        marginal={"g": 1.5},
        slack={"thematic[8.8]": 0.0},
    )


def floor_case() -> Case:
    """floor[s,t] binds on the gaps of the equity group that some source may fund.

    One grant g of 3e6 earmarked to 10.7 and 8.8. LIC States A (10.7, U = 2e6) and
    B (8.8, U = 2e6), w = 1; LMIC transit State C (10.7, needs 4e6, U = 3e6,
    Wr[transit] = 3); LIC State D needs 1e6 on 5.2, which g may not fund. Group LIC:
    G = {A/10.7, B/8.8} (D/5.2 has no eligible triple, so it neither gets a row nor
    holds z at 0).
    Stage 1: x_A, x_B >= 2e6 z and x_A + x_B <= 3e6 give z* = 0.75.
    Stage 2, z >= z* - 1e-6: x_A = x_B = 2e6 (0.75 - 1e-6) = 1.5e6 - 2, and the 4 USD
    left go to C: weighted = 3e6 - 4 + 3 * 4 = 3e6 + 8.
    Duals: budget[g] = 3 (the next USD goes to C); floor[A,10.7] = floor[B,8.8] =
    1 - 3 = -2 (one more USD held in A is one USD less for C).
    """
    return Case(
        states=[state("AAA"), state("BBB"), state("CCC", "LMIC", roles="transit"),
                state("DDD")],
        gaps=[gap("AAA", "10.7", 2e6), gap("BBB", "8.8", 2e6), gap("CCC", "10.7", 4e6),
              gap("DDD", "5.2", 1e6)],
        sources=[source("g", 3e6, targets="10.7;8.8")],
        policy={"weights": {"role": {"transit": 3.0}}, "equity": {"group": "LIC"}},
        floor=0.75,
        weighted=3e6 + 8,
        amounts={("g", "AAA", "10.7"): 1.5e6 - 2, ("g", "BBB", "8.8"): 1.5e6 - 2,
                 ("g", "CCC", "10.7"): 4.0},
        duals={"budget[g]": 3.0, "floor[AAA,10.7]": -2.0, "floor[BBB,8.8]": -2.0},
        marginal={"g": 3.0},
    )


def floor_tolerance_case() -> Case:
    """The two-stage floor maximisation: stage 2 may give up `tolerance` of z*.

    One grant g of 3e6; A/10.7 (U = 2e6, w = 2), B/8.8 (U = 2e6, w = 1); group all,
    tolerance 0.01. Stage 1: z* = 3e6 / 4e6 = 0.75. Stage 2 with z >= 0.74:
    x_B = 0.74 * 2e6 = 1.48e6, x_A = 1.52e6, weighted = 2 * 1.52e6 + 1.48e6 = 4.52e6
    (4.5e6 at z = z* exactly). `floor` reports z* = 0.75; floor[B,8.8] is written with
    rhs 0.74 * 2e6.
    Duals: budget[g] = 2 (the next USD goes to A); floor[B,8.8] = 1 - 2 = -1.
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 2e6), gap("BBB", "8.8", 2e6)],
        sources=[source("g", 3e6)],
        policy={"weights": {"target": {"10.7": 2.0}}, "equity": {"tolerance": 0.01}},
        floor=0.75,
        weighted=4.52e6,
        amounts={("g", "AAA", "10.7"): 1.52e6, ("g", "BBB", "8.8"): 1.48e6},
        duals={"budget[g]": 2.0, "floor[BBB,8.8]": -1.0},
        marginal={"g": 2.0},
        slack={"floor[AAA,10.7]": 1.52e6 - 1.48e6},
    )


LOAN_STATES = [state("AAA", "LIC"), state("BBB", "LMIC")]
LOAN_GAPS = [gap("AAA", "10.7", 2e6), gap("BBB", "8.8", 2e6)]
LOAN_SOURCES = [source("g", 3e6),
                source("loan", 0.5e6, instrument="loan", grant_element=0.2)]
LOAN_POLICY: dict[str, Any] = {"weights": {"target": {"10.7": 2.0}},
                               "cofinancing": {"LMIC": 1.0}, "loans": {"penalty": 6.0}}


def loan_without_floor_case() -> Case:
    """A negative weight moves no money when no floor needs it.

    Grant g of 3e6; a loan of 0.5e6 with grant element 0.2. A (LIC) needs 2e6 on 10.7
    (Wt = 2), B (LMIC, co-financing 1.0) needs 2e6 on 8.8. Penalty 6, default burden
    (LIC 1, LMIC 0.5): w[g,A] = 2, w[g,B] = 1, w[loan,A] = 2 - 6 * 0.8 * 1 = -2.8,
    w[loan,B] = 1 - 6 * 0.8 * 0.5 = -1.4.
    No floor: the grant fills A, then B: x[g,A] = 2e6, x[g,B] = 1e6, the loan stays
    unused; weighted = 5e6.
    Duals: budget[g] = 1, gap[A,10.7] = 2 - 1 = 1; the loan's budget is slack.
    """
    return Case(
        states=LOAN_STATES, gaps=LOAN_GAPS, sources=LOAN_SOURCES,
        policy=with_policy(NO_FLOOR, **LOAN_POLICY),
        floor=None,
        weighted=5e6,
        amounts={("g", "AAA", "10.7"): 2e6, ("g", "BBB", "8.8"): 1e6},
        duals={"budget[g]": 1.0, "gap[AAA,10.7]": 1.0},
        marginal={"g": 1.0, "loan": 0.0},
        slack={"budget[loan]": 0.5e6},
    )


def loan_with_floor_case() -> Case:
    """A negative weight moves money only as far as the floor needs it.

    As loan_without_floor_case, with the floor over all gaps. Stage 1: 3.5e6 in all for
    U = 2e6 + 2e6 gives z* = 0.875. Stage 2 at z' = z* - 1e-6, F = 2e6 z' = 1.75e6 - 2:
    the grant is spent in full and the loan covers just the rest, 2F - 3e6 = 0.5e6 - 4,
    in B (where it costs less: moving it to A, with the grant moving to B, changes the
    objective by -2.8 + 1.4 - 1 + 2 = -0.4). Spending more loan to free grant money for A
    would change it by 2 - 1 - 1.4 = -0.4 per USD. So x[loan,B] = 0.5e6 - 4,
    x[g,B] = F - x[loan,B] = 1.25e6 + 2, x[g,A] = F = 1.75e6 - 2;
    weighted = 2 (1.75e6 - 2) + (1.25e6 + 2) - 1.4 (0.5e6 - 4) = 4.05e6 + 3.6.
    Duals from the basic columns: y_B = -1.4 (x[loan,B]), y_g + y_B = 1 (x[g,B]),
    y_g + y_A = 2 (x[g,A]): budget[g] = 2.4, floor[A,10.7] = -0.4, floor[B,8.8] = -1.4.
    The loan's budget has 4 USD of slack.
    """
    return Case(
        states=LOAN_STATES, gaps=LOAN_GAPS, sources=LOAN_SOURCES,
        policy=LOAN_POLICY,
        floor=0.875,
        weighted=4.05e6 + 3.6,
        amounts={("g", "AAA", "10.7"): 1.75e6 - 2, ("g", "BBB", "8.8"): 1.25e6 + 2,
                 ("loan", "BBB", "8.8"): 0.5e6 - 4},
        duals={"budget[g]": 2.4, "floor[AAA,10.7]": -0.4, "floor[BBB,8.8]": -1.4},
        marginal={"g": 2.4, "loan": 0.0},
        slack={"budget[loan]": 4.0},
    )


def min_floor_case() -> Case:
    """`maximize = false`: z is fixed at min_floor and only the weighted objective counts.

    One grant g of 3e6; A/10.7 (U = 2e6, w = 2), B/8.8 (U = 2e6, w = 1); min_floor 0.6.
    z = 0.6: x_B >= 1.2e6, so x_B = 1.2e6 and x_A = 1.8e6;
    weighted = 2 * 1.8e6 + 1.2e6 = 4.8e6; `floor` reports z_min = 0.6.
    Duals: budget[g] = 2; floor[B,8.8] = -1.
    """
    return Case(
        states=[state("AAA"), state("BBB")],
        gaps=[gap("AAA", "10.7", 2e6), gap("BBB", "8.8", 2e6)],
        sources=[source("g", 3e6)],
        policy={"weights": {"target": {"10.7": 2.0}},
                "equity": {"maximize": False, "min_floor": 0.6}},
        floor=0.6,
        weighted=4.8e6,
        amounts={("g", "AAA", "10.7"): 1.8e6, ("g", "BBB", "8.8"): 1.2e6},
        duals={"budget[g]": 2.0, "floor[BBB,8.8]": -1.0},
        marginal={"g": 2.0},
        slack={"floor[AAA,10.7]": 0.6e6, "gap[AAA,10.7]": 0.2e6},
    )


def one_state_source_case() -> Case:
    """A source that can fund one State only: its marginal value is on budget[f].

    One grant g of 1e6; A/10.7 needs 5e6 (w = 1). x[g,A,10.7] = 1e6, weighted = 1e6.
    source_state[g,AAA] (rho = 1, rhs 1e6) and state_share[AAA] (kappa = 1, rhs 1e6) are
    as tight as budget[g], but they only repeat it for every x >= 0: the solvers are not
    given them, their duals are 0, and budget[g] = 1 carries the whole d weighted / d B_g
    (raising B_g raises all three right-hand sides together).
    """
    return Case(
        states=[state("AAA")],
        gaps=[gap("AAA", "10.7", 5e6)],
        sources=[source("g", 1e6)],
        policy=NO_FLOOR,
        floor=None,
        weighted=1e6,
        amounts={("g", "AAA", "10.7"): 1e6},
        duals={"budget[g]": 1.0},
        marginal={"g": 1.0},
        slack={"source_state[g,AAA]": 0.0, "state_share[AAA]": 0.0, "gap[AAA,10.7]": 4e6},
    )


CASES = [
    pytest.param(budget_case, id="budget"),
    pytest.param(gap_case, id="gap"),
    pytest.param(absorb_case, id="absorb"),
    pytest.param(state_share_case, id="state_share"),
    pytest.param(source_state_case, id="source_state"),
    pytest.param(thematic_case, id="thematic"),
    pytest.param(floor_case, id="floor"),
    pytest.param(floor_tolerance_case, id="floor-tolerance"),
    pytest.param(loan_without_floor_case, id="loan-penalty-no-floor"),
    pytest.param(loan_with_floor_case, id="loan-penalty-with-floor"),
    pytest.param(min_floor_case, id="min-floor-not-maximized"),
    pytest.param(one_state_source_case, id="one-state-source"),
]


def solve_case(tmp_path, write_case, case: Case, solver: str):
    # These cases pin section 4's weighted stage 2 (test_levels.py has section 4b's).
    inputs, policy = write_case(tmp_path, states=case.states, gaps=case.gaps,
                                sources=case.sources, policy={**case.policy, **WEIGHTED})
    return allocate_and_read(inputs, policy, tmp_path / "run", solver)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("make_case", CASES)
def test_hand_solved(tmp_path, write_case, make_case, solver):
    case = make_case()
    run = solve_case(tmp_path, write_case, case, solver)

    assert run.manifest["status"] == "optimal"
    if case.floor is None:
        assert run.floor is None
    else:
        assert run.floor == pytest.approx(case.floor, abs=FLOOR_ABS)
    assert run.weighted == pytest.approx(case.weighted, rel=REL)

    # The optimum is unique: the allocation too (to a cent, or CBC's 8 digits).
    amounts = run.amounts()
    assert set(amounts) == set(case.amounts)
    for key, amount in case.amounts.items():
        assert amounts[key] == pytest.approx(amount, rel=REL, abs=0.01), key

    # Every binding row has the dual worked out above, with its sign; every other row 0.
    names = run.row_names()
    for name in case.duals:
        assert name in names
    for name in names:
        expected = case.duals.get(name, 0.0)
        assert run.dual(name) == pytest.approx(expected, rel=REL, abs=1e-9), name
    for row in run.constraints:
        dual = float(row["dual"])
        if row["name"].split("[")[0] in {"thematic", "floor"}:
            assert dual <= 1e-9, row
        else:
            assert dual >= -1e-9, row
    for source_id, value in case.marginal.items():
        assert run.marginal_value(source_id) == pytest.approx(value, rel=REL, abs=1e-9)
    for name, slack in case.slack.items():
        assert run.row(name)["slack"] == pytest.approx(slack, rel=REL, abs=0.01), name


@pytest.mark.parametrize("solver", SOLVERS)
def test_floor_rows_are_written_at_the_stage2_level(tmp_path, write_case, solver):
    """floor[s,t] is written as allocated >= z * U with the z of stage 2 (z* - tolerance)."""
    case = floor_tolerance_case()
    run = solve_case(tmp_path, write_case, case, solver)
    row = run.row("floor[BBB,8.8]")
    assert row["rhs"] == pytest.approx(0.74 * 2e6, rel=REL)
    assert row["lhs"] == pytest.approx(0.74 * 2e6, rel=REL)
    assert row["slack"] == pytest.approx(0.0, abs=0.01)
    assert run.manifest["floor_variable"]["stage2_bounds"] == pytest.approx([0.74, 1.0],
                                                                             abs=FLOOR_ABS)
    assert (run.folder / "stage1_constraints.csv").is_file()


@pytest.mark.parametrize("solver", SOLVERS)
def test_min_floor_not_maximized_skips_stage_1(tmp_path, write_case, solver):
    run = solve_case(tmp_path, write_case, min_floor_case(), solver)
    assert not (run.folder / "stage1_constraints.csv").exists()
    assert run.manifest["floor_variable"]["stage2_bounds"] == [0.6, 0.6]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("maximize", [True, False])
def test_min_floor_out_of_reach_is_infeasible(tmp_path, write_case, solver, maximize):
    """min_floor 0.8 needs 0.8 * 4e6 = 3.2e6 of the 3e6 pledged: no feasible point."""
    case = min_floor_case()
    case.policy["equity"] = {"maximize": maximize, "min_floor": 0.8}
    with pytest.raises(InfeasibleError) as caught:
        solve_case(tmp_path, write_case, case, solver)
    assert "floor" in caught.value.diagnosis.families()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("tolerance", [1e-6, 1e-9, 1e-12])
def test_floor_that_does_not_round_exactly(tmp_path, write_case, solver, tolerance):
    """z* = 2/3 at USD 1e9: a solver that reads z* back rounded is still feasible in stage 2.

    One grant of 2e9 for two gaps of 1.5e9 (w = 1): z* = 2e9 / 3e9 = 2/3, and every USD
    is spent: weighted = 2e9 whatever z >= z* - tolerance. CBC's solution file holds
    0.66666667, above 2/3: taken as it is, with a tolerance below 1e-8, stage 2 asked for
    more than the pledge can give.
    """
    case = floor_tolerance_case()
    case.gaps = [gap("AAA", "10.7", 1.5e9), gap("BBB", "8.8", 1.5e9)]
    case.sources = [source("g", 2e9)]
    case.policy = {"equity": {"tolerance": tolerance}}
    run = solve_case(tmp_path, write_case, case, solver)
    assert run.floor == pytest.approx(2 / 3, abs=FLOOR_ABS)
    assert run.weighted == pytest.approx(2e9, rel=REL)
