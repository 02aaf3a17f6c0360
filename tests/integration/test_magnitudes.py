"""Issue 19, point 4, and the property over magnitudes: amounts that do not depend on the
solver beyond SPEC 4b's tolerance, at any legal magnitude.

SPEC 4b: per-gap amounts agree with the exact leximin allocation within USD 0.01 plus 1e-6
of the gap's fundable need U. Beside gaps of USD 1e12, a relative tolerance on a huge gap's
level or hold is dollars, which small gaps sharing its budget take: HiGHS and CBC gave USD
1 gaps amounts far from the leximin one, and both runs certified.

The hand-solved cases have one rule that binds, the money: with a single pool of pledges
and no caps, every gap gets `clip(pi U L, z_lo U, U)` at the level L where they add up to
the pledges (`exact_amounts`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from cases import gap, read_csv, source, state, write_case
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gcm_fund import api
from gcm_fund.errors import InfeasibleError, InputError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def tolerance(fundable: float) -> float:
    """SPEC 4b's per-gap tolerance, USD."""
    return 0.01 + 1e-6 * fundable


def exact_amounts(fundable: list[float], priority: list[float], pledged: float,
                  floor_tolerance: float | None) -> list[float]:
    """The leximin amounts when the money is the only rule that binds: each gap at
    `clip(pi U L, z_lo U, U)`, L where they add up to the pledges; with the floor
    maximised (`floor_tolerance` given) z* = pledges / sum U and z_lo = z* - tolerance."""
    total = sum(fundable)
    if pledged >= total:
        return list(fundable)
    z_lo = 0.0 if floor_tolerance is None else max(0.0, pledged / total - floor_tolerance)

    def placed(level: float) -> float:
        return sum(u * min(1.0, max(z_lo, p * level)) for u, p in zip(fundable, priority,
                                                                      strict=True))

    low, high = 0.0, 1.0 / min(priority)
    for _ in range(400):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if placed(middle) < pledged else (low, middle)
    return [u * min(1.0, max(z_lo, p * high)) for u, p in zip(fundable, priority, strict=True)]


def assert_certified(folder: Path) -> None:
    """`folder` certifies in full; else the assertion fails with certify's report."""
    certificate = api.certify(folder)
    assert all(c.ok for c in certificate.checks), "\n".join(certificate.lines())


def solve_and_compare(inputs: Path, policy: Path, out: Path, solver: str,
                      exact: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Allocate, write, certify; every gap within SPEC 4b's tolerance of `exact`. Returns
    the written amounts by gap."""
    run = api.allocate(inputs, policy, solver)
    folder = api.write(run, out)
    assert_certified(folder)
    amounts = {}
    far = []
    for row in read_csv(folder / "coverage.csv"):
        key = (row["iso3"], row["target"])
        amounts[key] = float(row["allocated_usd"])
        fundable = float(row["fundable_usd"])
        if abs(amounts[key] - exact[key]) > tolerance(fundable) + 0.005:  # + written cents
            far.append(f"{key}: {amounts[key]:.2f}, exact {exact[key]:.4f}")
    assert not far, f"{solver}: " + "; ".join(far)
    return amounts


def huge_beside_small(tmp_path: Path, huge: list[tuple[str, float]], small: int,
                      small_usd: float, pledges: list[float], maximize: bool,
                      weights: dict[str, float] | None = None, small_target: str = "10.7"
                      ) -> tuple[Path, Path, dict[tuple[str, str], float]]:
    """States with one huge gap each beside `small` States with one gap of `small_usd`,
    all low-income (co-financing 1), a pool of grants; the exact amounts by gap."""
    states, gaps = [], []
    for i, (target, need) in enumerate(huge):
        states.append(state(f"HA{LETTERS[i]}"))
        gaps.append(gap(f"HA{LETTERS[i]}", target, need))
    for i in range(small):
        states.append(state(f"SA{LETTERS[i]}"))
        target = small_target if isinstance(small_target, str) else small_target[i]
        gaps.append(gap(f"SA{LETTERS[i]}", target, small_usd))
    policy: dict[str, Any] = {"equity": {"maximize": maximize}}
    if weights:
        policy["weights"] = {"target": weights}
    inputs, policy_path = write_case(
        tmp_path, states=states, gaps=gaps,
        sources=[source(f"s{k}", p) for k, p in enumerate(pledges)], policy=policy)
    fundable = [float(g["need_usd"]) for g in gaps]
    priority = [(weights or {}).get(g["target"], 1.0) for g in gaps]
    exact = exact_amounts(fundable, priority, sum(pledges), 1e-6 if maximize else None)
    return inputs, policy_path, {(g["iso3"], g["target"]): a
                                 for g, a in zip(gaps, exact, strict=True)}


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_point4_two_gaps_of_1e12_beside_eighteen_of_usd_1_hold_within_the_tolerance(
        tmp_path: Path, solver: str) -> None:
    """The issue's shape: two States with gaps of USD 1e12, eighteen with gaps of USD 1,
    pledges just enough for a level of 0.025 (USD 5e10 + 0.45 in two pledges, the floor
    not maximised). CBC's split found its holds infeasible and eased them by 1e-7 of each
    level: a huge gap gave way by USD 2,500 (the README promises 0.001); now the easing
    is capped and every gap is within SPEC 4b's tolerance, the huge ones within cents."""
    pledged = 5e10 + 0.45
    inputs, policy, exact = huge_beside_small(tmp_path, [("10.7", 1e12), ("10.7", 1e12)], 18,
                                              1.0, [pledged / 2, pledged / 2], False)
    amounts = solve_and_compare(inputs, policy, tmp_path / solver, solver, exact)
    for key in (("HAA", "10.7"), ("HAB", "10.7")):
        assert abs(amounts[key] - exact[key]) <= 0.1, key
    assert all(abs(amounts[(f"SA{c}", "10.7")] - 0.025) <= 0.0051 for c in LETTERS[:18])


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_point4_a_gap_of_2e12_beside_eighteen_of_usd_1_under_the_floor(
        tmp_path: Path, solver: str) -> None:
    """One State's USD 2e12 gap beside eighteen USD 1 gaps, three pledges of USD (5e10 + 5)
    / 3, the floor maximised. CBC gave each USD 1 gap 1.00 where the leximin answer is
    0.025: a forecast (the huge State's share cap) within 1e-7 of the level was taken as
    reached, 2.5e-12 of a USD 2e12 gap above the true level."""
    pledged = 5e10 + 5
    inputs, policy, exact = huge_beside_small(tmp_path, [("10.7", 2e12)], 18, 1.0,
                                              [pledged / 3] * 3, True)
    solve_and_compare(inputs, policy, tmp_path / solver, solver, exact)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_point4_small_gaps_stop_with_huge_ones_of_the_same_priority(
        tmp_path: Path, solver: str) -> None:
    """Three USD 2e12 gaps and eighteen of USD 3, targets of priority 1 and 3, the floor
    maximised, USD 1.8e12 + 5 in two pledges. HiGHS gave the USD 3 gaps of priority 3 USD
    2.70 where the leximin answer is 0.90: stopped by the same budget as the huge gaps of
    their priority, their share of the dual (1e-12) was too small to stop them, and they
    rose on what HiGHS's tolerances on the huge gaps' holds gave way."""
    small_targets = ["8.8", "8.8", "10.7", "8.8", "8.8", "8.8", "8.8", "10.7", "10.7", "8.8",
                     "8.8", "10.7", "10.7", "10.7", "8.8", "10.7", "8.8", "10.7"]
    pledged = 1.8e12 + 5
    inputs, policy, exact = huge_beside_small(
        tmp_path, [("10.7", 2e12), ("8.8", 2e12), ("8.8", 2e12)], 18, 3.0,
        [pledged / 2] * 2, True, weights={"10.7": 1.0, "8.8": 3.0},
        small_target=small_targets)  # type: ignore[arg-type]
    solve_and_compare(inputs, policy, tmp_path / solver, solver, exact)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_cbc_split_values_refined_when_the_budget_is_above_the_sum_of_the_holds(
        tmp_path: Path, solver: str) -> None:
    """A USD 1e6 gap beside a USD 1e12 one, one grant of USD 177,828,119,000 (the magnitudes
    property found it). In the split the budget is USD 0.002 above the two holds (each
    USD 0.001 below its level) and CBC's duals name all three rows: least squares leaves
    USD 0.00066 of slack on each, and the refinement refused it on the small gap's hold,
    so the split's values stayed as read, to 8 digits. The huge gap was written USD 1,172
    below its level (within SPEC 4b) and certify found the small gap free to rise that
    much ("levels: stopped gaps held"). Now each gap is within a cent of its level and
    the run certifies in full."""
    inputs, policy, exact = huge_beside_small(tmp_path, [("10.7", 1e12)], 1, 1e6,
                                              [177_828_119_000.0], False)
    amounts = solve_and_compare(inputs, policy, tmp_path / solver, solver, exact)
    assert all(abs(amounts[key] - exact[key]) <= 0.01 for key in amounts), amounts


@pytest.mark.parametrize("solver", ["highs", "cbc"])
@pytest.mark.parametrize(("small_usd", "pledged"), [(1e8, 1.00001e12), (1e9, 1.0001e12)])
def test_floor_duals_move_whole_onto_level_rows_when_z_is_above_its_lower_bound(
        tmp_path: Path, solver: str, small_usd: float, pledged: float) -> None:
    """A USD 1e8 (or 1e9) gap beside a USD 1e13 one, one grant of a tenth of the needs, the
    floor maximised (the magnitudes property found both): z* = 0.1, both gaps stop at
    level 0.1 with z above its stage-2 bound z* - 1e-6. HiGHS's step dual names the small
    gap's floor row and balances it, through z, with a wrong-signed 1e-12 on the huge
    gap's; the refinement set that one to 0, and half the other was moved onto the level
    row. z and the huge gap's column were left reduced costs, which certify prices at
    their bounds: a proven rise of USD 150 for the USD 1e8 gap (1.5 times its tolerance),
    of USD 10,000 for the USD 1e9 one. With z above its bound every floor dual now moves
    whole onto its level row before the refinement, and the runs certify in full."""
    inputs, policy, exact = huge_beside_small(tmp_path, [("10.7", 1e13)], 1, small_usd,
                                              [pledged], True)
    solve_and_compare(inputs, policy, tmp_path / solver, solver, exact)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_cbc_level_step_refined_when_its_level_rows_sum_terms_of_usd_1e13(
        tmp_path: Path, solver: str) -> None:
    """Ten gaps of USD 1.3e11 to 1e14 in five States, targets weighted 1e-35 and 1e-33, two
    grants of USD 1.41e14 (a random run of the magnitudes property found it). A level
    step's rows have a right-hand side of 0 and terms of 1e7 to 1e8 (USD millions): least
    squares put CBC's values on them within float rounding of those terms (1.8e-10), and
    a tolerance of 1e-12 absolute refused it, so the step's values stayed as read. A USD
    1e14 gap was written USD 804,000 above its level (within SPEC 4b), and certify found
    a USD 1.7e11 gap stopped beside it free to rise that much (4.8 times its tolerance).
    Now the tolerance is relative to each row's terms and the run certifies in full."""
    needs = {("SAF", "10.7"): 5.46005e13, ("SAF", "8.8"): 1.33799e11,
             ("SBC", "10.7"): 1.68714e11, ("SBC", "8.8"): 1.49169e11,
             ("SCP", "10.7"): 1.08431e13, ("SCP", "8.8"): 3.05472e13,
             ("SDI", "10.7"): 3.00518e11, ("SDI", "8.8"): 8.29555e13,
             ("SEL", "10.7"): 1e14, ("SEL", "8.8"): 3.21417e12}
    weights = {"10.7": 1e-35, "8.8": 1e-33}
    pledges = [1.41453078e14] * 2
    inputs, policy = write_case(
        tmp_path, states=[state(iso3) for iso3 in sorted({k[0] for k in needs})],
        gaps=[gap(iso3, target, need) for (iso3, target), need in needs.items()],
        sources=[source(f"g{k}", p) for k, p in enumerate(pledges)],
        policy={"weights": {"target": weights}, "equity": {"maximize": False}})
    amounts = exact_amounts(list(needs.values()), [weights[t] for _, t in needs],
                            sum(pledges), None)
    solve_and_compare(inputs, policy, tmp_path / solver, solver,
                      dict(zip(needs, amounts, strict=True)))


def instance_of(needs: dict[tuple[str, str], float], pledges: list[float],
                weights: dict[str, float], maximize: bool) -> dict[str, Any]:
    """An instance in the form `magnitudes` draws: low-income States, one pool of grants."""
    return {"states": [state(iso3) for iso3 in sorted({iso3 for iso3, _ in needs})],
            "gaps": [gap(iso3, target, need) for (iso3, target), need in needs.items()],
            "sources": [source(f"g{k}", p) for k, p in enumerate(pledges)],
            "policy": {"weights": {"target": weights}, "equity": {"maximize": maximize}}}


def solve_instance(tmp_path: Path, instance: dict[str, Any], solver: str) -> None:
    """Write `instance`, allocate, certify, and compare every gap with the exact amounts
    (money the only rule that binds)."""
    inputs, policy = write_case(tmp_path, states=instance["states"], gaps=instance["gaps"],
                                sources=instance["sources"], policy=instance["policy"])
    weights = instance["policy"]["weights"]["target"]
    maximize = instance["policy"]["equity"]["maximize"]
    gaps = instance["gaps"]
    amounts = exact_amounts([g["need_usd"] for g in gaps], [weights[g["target"]] for g in gaps],
                            sum(s["pledge_usd"] for s in instance["sources"]),
                            1e-6 if maximize else None)
    solve_and_compare(inputs, policy, tmp_path / solver, solver,
                      {(g["iso3"], g["target"]): a for g, a in zip(gaps, amounts, strict=True)})


# Four instances of the magnitudes property with needs of cents to USD 1,150 (found by
# random runs of it). In USD millions, pi U L of the small gaps is 1e-12 to 1e-10, below
# the solvers' feasibility tolerance (1e-9, USD 0.001): x = 0 meets their level rows.
SUB_CENT_HELD_ROW = instance_of(
    {("SAP", "10.7"): 1.0, ("SAP", "8.8"): 1.0, ("SBG", "10.7"): 5.38,
     ("SBG", "8.8"): 1149.88, ("SCW", "10.7"): 1.03},
    [1.68, 1.68], {"10.7": 100.0, "8.8": 100000.0}, False)
_CENTS = {("SAE", "10.7"): 1.0, ("SBY", "10.7"): 440.84, ("SCG", "10.7"): 0.04,
          ("SCG", "8.8"): 1.46, ("SDX", "10.7"): 1.0, ("SER", "8.8"): 6.59}
_PRIORITIES = {"10.7": 1e-5, "8.8": 1e-7}
CENTS_UNNAMED = instance_of(_CENTS, [4.52, 4.52], _PRIORITIES, True)
CENTS_BELOW_FLOOR = instance_of(_CENTS, [5.79], _PRIORITIES, True)
CENT_GAPS_AT_FLOOR = instance_of(
    {("SAE", "10.7"): 1.0, ("SBY", "10.7"): 440.84, ("SCG", "10.7"): 0.01,
     ("SCG", "8.8"): 0.01, ("SDX", "10.7"): 0.01, ("SER", "8.8"): 440.84},
    [11.34], _PRIORITIES, True)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_sub_cent_gap_whose_held_row_takes_the_dual_stops_with_the_budget(
        tmp_path: Path, solver: str) -> None:
    """Five gaps of USD 1 to 1,150, priorities 1e2 and 1e5, USD 3.36 of grants: one step,
    every gap stopped by the budget. HiGHS's dual named a USD 1 gap's held row (x >= 0)
    instead of its level row, CBC's left two gaps out: they rose alone in a second step to
    a level 1,000 times lower, and certify found "the levels fall". Now a rising gap's
    held-row dual moves onto its level row, and unnamed gaps at their level get the dual
    their reduced costs allow."""
    solve_instance(tmp_path, SUB_CENT_HELD_ROW, solver)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_cents_gaps_left_out_of_the_step_dual_do_not_rise_alone(
        tmp_path: Path, solver: str) -> None:
    """Six gaps of USD 0.04 to 440, the floor maximised, USD 9.04 of grants: CBC's dual
    left gaps at their level out, and the levels fell from one step to the next."""
    solve_instance(tmp_path, CENTS_UNNAMED, solver)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_cent_gaps_floor_dual_not_moved_where_it_shifts_the_step_bound(
        tmp_path: Path, solver: str) -> None:
    """Three USD 0.01 gaps beside USD 440 ones, the floor maximised: a USD 0.01 gap at its
    floor is USD 1e-4 above its level, which the absolute tolerance of USD 0.001 called
    tight; its floor dual moved onto its level row and the step's bound rose 1.1e-5 above
    its level on both solvers ("each step optimal"). Now the moves may shift the bound by
    5e-7 of L in all."""
    solve_instance(tmp_path, CENT_GAPS_AT_FLOOR, solver)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_level_step_below_the_last_by_solver_tolerance_keeps_the_last_level(
        tmp_path: Path, solver: str) -> None:
    """The six gaps above with USD 5.79 of grants: CBC's last step gave a USD 1.46 gap 5e-5
    USD below its floor (within its tolerance of USD 0.001), a level 0.26 % below the step
    before, and certify found "the levels fall" (before that, "each step optimal"). Now a
    step below the last by less than USD 0.001 on every gap it stops keeps the last level."""
    solve_instance(tmp_path, CENTS_BELOW_FLOOR, solver)


# Found by a random run of the magnitudes property: CBC's split is infeasible at the holds,
# and the uncapped easing lowers the money placed by 1e-7 of it.
X_STAR_EASED = instance_of(
    {("SAP", "10.7"): 285927000000.0, ("SAP", "8.8"): 16400500000.0,
     ("SBG", "10.7"): 31165200000.0, ("SBG", "8.8"): 1114560000000.0,
     ("SCW", "10.7"): 10372100000.0},
    [2118702350.0, 2118702350.0], {"10.7": 100.0, "8.8": 100000.0}, False)


def test_cbc_placed_money_eased_by_1e7_certifies_against_x_star_written_to_the_cent(
        tmp_path: Path) -> None:
    """USD 4.2e9 of grants over five gaps of USD 1e10 to 1.1e12: CBC's split eased the money
    placed to X* - USD 0.05 - 1e-7 of X*, exactly what certify allows, but certify took X*
    as written, to the cent, and its float rounding put the bound USD 1e-6 above the money
    placed: the run failed "each step optimal". Certify now allows the half cent of X*'s
    rounding."""
    solve_instance(tmp_path, X_STAR_EASED, "cbc")


# Found by a random run of the magnitudes property: a USD 0.01 gap of priority 1e7 beside
# priorities of 1e9 has a level-row coefficient of 7e-10 (USD millions, over the unit).
HIGHS_SMALL_COEFFICIENT = instance_of(
    {("SAO", "10.7"): 0.01, ("SAO", "8.8"): 94.32, ("SBG", "8.8"): 3.98,
     ("SCX", "10.7"): 270.76, ("SDX", "8.8"): 235.02, ("SEE", "10.7"): 1.0,
     ("SEE", "8.8"): 2.44},
    [303.76, 303.76], {"10.7": 1e7, "8.8": 1e9}, True)


def test_highs_accepts_a_cent_gap_whose_level_coefficient_is_below_1e9(
        tmp_path: Path) -> None:
    """HiGHS refuses a model with a coefficient at or below its `small_matrix_value` (1e-9)
    with a warning, and the run crashed (exit 70) on legal input; now the option is set to
    1e-12 for such a model, and recorded in the manifest's solver options."""
    solve_instance(tmp_path, HIGHS_SMALL_COEFFICIENT, "highs")
    manifest = json.loads((tmp_path / "highs" / "manifest.json").read_text())
    assert manifest["solver"]["options"]["small_matrix_value"] == 1e-12


# Found by a random run of the magnitudes property: gaps of USD 3e13 to 9.2e13.
SLACK_BESIDE_1E13 = instance_of(
    {("SAS", "10.7"): 46166600000000.0, ("SBU", "10.7"): 30047900000000.0,
     ("SBU", "8.8"): 89038500000000.0, ("SCS", "8.8"): 48902100000000.0,
     ("SDP", "8.8"): 92354100000000.0},
    [12854486400000.0] * 3, {"10.7": 1e19, "8.8": 1e18}, True)


def test_cbc_constraint_slack_beside_1e13_certifies_within_float_spacing(
        tmp_path: Path) -> None:
    """A gap row of USD 8.9e13 with USD 7.8e13 of slack: written to the cent, its rhs, lhs
    and slack are each as close as float64 holds them (USD 0.016 apart there), and certify
    found the slack USD 0.02 from rhs - lhs, past its three half cents. It now allows the
    rule's own rounding (1e-12 of the row) on top."""
    solve_instance(tmp_path, SLACK_BESIDE_1E13, "cbc")


# Found by a random run of the magnitudes property: gaps of USD 1.8e12 to 7.9e13, target
# priorities 1e-12 and 1e-8.
DUAL_BELOW_TOLERANCE = instance_of(
    {("SAP", "8.8"): 2417260000000.0, ("SBU", "10.7"): 14952900000000.0,
     ("SBU", "8.8"): 9250500000000.0, ("SCQ", "8.8"): 2137880000000.0,
     ("SDP", "8.8"): 78787500000000.0, ("SEB", "10.7"): 1794920000000.0},
    [17288323800000.0] * 2, {"10.7": 1e-12, "8.8": 1e-8}, False)


def test_highs_level_step_optimal_where_its_duals_per_dollar_are_below_the_tolerance(
        tmp_path: Path) -> None:
    """The unit of L was the priorities' geometric mean alone: the level rows' coefficients
    pi U / unit reached 7e9 (USD millions), their duals per unit of money 1.3e-10, below
    HiGHS's dual tolerance (1e-9), and HiGHS called a first step optimal that gave a gap
    of priority 1e-12 its whole USD 1.5e13 need, 43 % below the level its duals bound
    (certify rejected the run). The unit now keeps pi U / unit at most 2^20."""
    solve_instance(tmp_path, DUAL_BELOW_TOLERANCE, "highs")


# Found by a random run of the magnitudes property: a USD 1e14 gap funded by two grants.
GAP_OF_1E14_IN_TWO_ROWS = instance_of(
    {("SAS", "10.7"): 561104000000.0, ("SBW", "8.8"): 7624300000.0,
     ("SCO", "10.7"): 100000000000000.0, ("SDC", "10.7"): 11881900000.0,
     ("SEI", "8.8"): 2630760000.0},
    [50291612400000.0] * 2, {"10.7": 1e-13, "8.8": 1e-18}, True)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_coverage_allocated_of_a_1e14_gap_written_as_its_rows_cents(
        tmp_path: Path, solver: str) -> None:
    """coverage.csv's allocated_usd went through np.round(x, 2), which multiplies by 100 in
    float64: at USD 1e14 that is 2 cents off the sum of the gap's rows in allocations.csv,
    which certify recomputes exactly. Now the exact cents are written as they are."""
    solve_instance(tmp_path, GAP_OF_1E14_IN_TWO_ROWS, solver)


# ---------------------------------------------------------------------------------------
# The property over magnitudes


# Needs within one instance span at most this many decades. SPEC 4b's USD 0.01 is an
# absolute tolerance, and the solvers' is relative to the money a rule holds: beside
# USD 1e14 a cent is 1e-16 of it, below float64's resolution (the issue's case, USD 1
# beside 1e12, is solved above by hand).
SPREAD_DECADES = 6.0


@st.composite
def magnitudes(draw: st.DrawFn) -> dict[str, Any]:
    """A small instance at any legal magnitude: 2-5 low-income States (co-financing 1) with
    one or two gaps each, needs from USD 0.01 to 1e14 (within `SPREAD_DECADES` of each
    other in one instance); one to three grants adding up to 0.1 % to 200 % of the
    needs; target weights from 1e-50 to 1e50, the priorities spread up to 1e5 apart; the
    floor maximised or not."""
    base = draw(st.floats(-2.0, 14.0, allow_nan=False))
    exponent = st.floats(base, min(base + SPREAD_DECADES, 14.0), allow_nan=False)
    n_states = draw(st.integers(2, 5))
    states, gaps = [], []
    for i in range(n_states):
        iso3 = f"S{LETTERS[i]}{LETTERS[draw(st.integers(0, 25))]}"
        states.append(state(iso3))
        for target in draw(st.sampled_from([["10.7"], ["8.8"], ["10.7", "8.8"]])):
            # In whole cents, as money is (sub-cent needs are their own issue: the
            # manifest's X* is written to the cent and no longer bounds the money placed).
            need = round(float(f"{10 ** draw(exponent):.6g}"), 2)
            gaps.append(gap(iso3, target, max(need, 0.01)))
    needs = sum(g["need_usd"] for g in gaps)
    share = 10 ** draw(st.floats(-3.0, 0.3, allow_nan=False))
    n_sources = draw(st.integers(1, 3))
    pledge = max(0.01, round(float(f"{share * needs / n_sources:.9g}"), 2))
    base = draw(st.integers(-50, 45))
    spread = draw(st.integers(0, 5))
    weights = {"10.7": float(f"1e{base}"), "8.8": float(f"1e{base + spread}")}
    if draw(st.booleans()):
        weights = {"10.7": weights["8.8"], "8.8": weights["10.7"]}
    return {"states": states, "gaps": gaps,
            "sources": [source(f"g{k}", pledge) for k in range(n_sources)],
            "policy": {"weights": {"target": weights},
                       "equity": {"maximize": draw(st.booleans())}}}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(instance=magnitudes())
@example(instance=SUB_CENT_HELD_ROW)
@example(instance=CENTS_UNNAMED)
@example(instance=CENT_GAPS_AT_FLOOR)
@example(instance=CENTS_BELOW_FLOOR)
@example(instance=X_STAR_EASED)
@example(instance=HIGHS_SMALL_COEFFICIENT)
@example(instance=SLACK_BESIDE_1E13)
@example(instance=DUAL_BELOW_TOLERANCE)
@example(instance=GAP_OF_1E14_IN_TWO_ROWS)
def test_property_magnitudes_no_crash_solvers_agree_within_tolerance_and_certify(
        tmp_path_factory: pytest.TempPathFactory, instance: dict[str, Any]) -> None:
    """Issue 19's property over magnitudes: no exit 70 (no error but bad input or an
    infeasible policy), HiGHS and CBC within twice SPEC 4b's tolerance of each other on
    every gap (each within it of the exact allocation), and both runs certify."""
    folder = tmp_path_factory.mktemp("magnitudes")
    inputs, policy = write_case(folder, states=instance["states"], gaps=instance["gaps"],
                                sources=instance["sources"], policy=instance["policy"])
    amounts: dict[str, dict[tuple[str, str], tuple[float, float]]] = {}
    for solver in ("highs", "cbc"):
        try:
            run = api.allocate(inputs, policy, solver)
        except (InputError, InfeasibleError) as exc:  # exit 2 or 3: not a crash
            pytest.fail(f"{solver}: legal input refused: {exc}")
        out = api.write(run, folder / solver)
        assert_certified(out)
        amounts[solver] = {(r["iso3"], r["target"]): (float(r["allocated_usd"]),
                                                       float(r["fundable_usd"]))
                           for r in read_csv(out / "coverage.csv")}
    far = [f"{key}: highs {a:.2f}, cbc {amounts['cbc'][key][0]:.2f}"
           for key, (a, u) in amounts["highs"].items()
           if not math.isclose(a, amounts["cbc"][key][0], rel_tol=0,
                               abs_tol=2 * tolerance(u) + 0.01)]
    assert not far, "; ".join(far)
