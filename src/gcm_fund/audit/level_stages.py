"""Certifying stage 1b (the money placed) and stage 3 (the least loan burden) of docs/model.md.

Both are single LPs over section 4's rules and the rows that priority levels add, so weak
duality proves each optimum from the duals the run wrote to `stage_duals.csv`
(`stage,name,dual`: stage `1b` or `3`, d objective / d rhs, signs as in docs/outputs.md):

- stage 1b maximises `sum x` with every rule and `c >= z_lo` on G. Its duals bound the
  money any allocation can place; the bound must not exceed the recorded `X*`
  (`objective.allocated_usd`), which the allocation itself reaches within the slack of
  docs/model.md (checked with the steps): X* is the optimum.
- stage 3 maximises minus the loan burden with every gap of E held at
  `priority x U x level` (the levels proved by the steps) and the money placed held. Its
  duals bound the burden from below; the allocation's own burden, recomputed from the
  inputs, must meet that bound and be the manifest's `objective.loan_burden`.

Every dual infeasibility is priced at its worst (wrong-signed duals set to 0, a positive
reduced cost times the most the column can carry), as for the steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gcm_fund.audit.common import parse_numbers, usd
from gcm_fund.audit.rules import LE, Rules
from gcm_fund.audit.tolerances import GAP_RELATIVE, ROW_ALLOWANCE_USD
from gcm_fund.model.spec import MAX_VALUE_PRECISION, ceiling_margin, relaxed_ceiling_usd

if TYPE_CHECKING:
    from gcm_fund.audit.checks import Certifier

STAGE_DUALS = "stage_duals.csv"


@dataclass
class LevelFacts:
    """What the level checks established, which stages 1b and 3 build on."""

    scale: np.ndarray  # priority x U by gap, USD per unit of level
    in_e: np.ndarray  # by gap: in E
    held: np.ndarray  # by gap: the level of the step that stopped it (NaN outside E)
    lcap: float  # the highest level a gap of E can need
    placed: float  # allocated[total]'s right-hand side, USD
    z_bounds: tuple[float, float] | None  # z's bounds in the later stages (docs/model.md)


def loan_costs(rules: Rules) -> np.ndarray:
    """lambda (1 - g_f) burden[income(s)] of every eligible triple (0 for grants), from
    the copied inputs and policy."""
    policy, sources = rules.policy, rules.data.sources
    is_loan = (sources["instrument"] == "loan").to_numpy()
    grant_element = np.nan_to_num(sources["grant_element"].to_numpy(dtype=float), nan=1.0)
    concession_gap = np.where(is_loan, 1.0 - grant_element, 0.0)
    income = rules.gaps["income_group"].to_numpy()
    burden = np.array([policy.loans.burden.get(g) for g in income], dtype=float)
    f_of = rules.triples["source"].to_numpy(dtype=int)
    g_of = rules.triples["gap"].to_numpy(dtype=int)
    return policy.loans.penalty * concession_gap[f_of] * burden[g_of]


def stage_bound(checker: Certifier, facts: LevelFacts, stage: str, cost_x: np.ndarray,
                held_rhs: np.ndarray, ceiling_rhs: np.ndarray, placed_rhs: float,
                problems: list[str]) -> float:
    """The rigorous upper bound that stage `stage`'s written duals give on
    max cost_x . x over section 4's rules, the floor, the level rows (relaxed), the held
    rows at `held_rhs` and the ceiling rows at `ceiling_rhs` (USD by gap) and
    `sum x >= placed_rhs`."""
    rules, run = checker.rules, checker.run
    table = run.table(STAGE_DUALS, ("stage", "name", "dual"))
    here = (table["stage"] == stage).to_numpy()
    names = table["name"].to_numpy()[here]
    values = parse_numbers(table["dual"])[here]
    gaps = rules.gaps
    key = {f"{i},{t}": g for g, (i, t) in enumerate(zip(gaps["iso3"], gaps["target"],
                                                       strict=True))}
    index = {name: r for r, name in enumerate(rules.rows["name"])}
    n_gaps = len(gaps)
    y = np.zeros(len(rules.rows))
    y_level = np.zeros(n_gaps)
    y_held = np.zeros(n_gaps)
    y_ceiling = np.zeros(n_gaps)
    y_placed = 0.0
    for name, value in zip(names, values, strict=True):
        family, _, rest = str(name).partition("[")
        gap = key.get(rest[:-1]) if rest.endswith("]") else None
        if value != value:
            problems.append(f"{STAGE_DUALS}: stage {stage}: {name}: dual is not a number")
        elif name in index:
            y[index[name]] = value
        elif family in ("level", "held", "ceiling") and gap is not None and facts.in_e[gap]:
            {"level": y_level, "held": y_held, "ceiling": y_ceiling}[family][gap] = value
        elif name == "allocated[total]":
            y_placed = value
        elif name == "loan_burden[total]":
            # Stages 1b and 3 leave the burden free: a dual on it proves nothing.
            if value > 0:
                problems.append(f"{STAGE_DUALS}: stage {stage}: {name} has dual {value:.6g}, "
                                "but the stage does not hold the loan burden")
        else:
            problems.append(f"{STAGE_DUALS}: stage {stage}: {name}: not a row of the "
                            "stage's LP")
    sense = rules.rows["sense"].to_numpy(dtype=int)
    # Level, held and allocated rows are `>=` rows: wrong-signed duals priced at 0.
    y = np.where(sense == LE, np.maximum(y, 0.0), np.minimum(y, 0.0))
    y_level = np.minimum(y_level, 0.0)
    y_held = np.minimum(y_held, 0.0)
    y_ceiling = np.maximum(y_ceiling, 0.0)  # a `<=` row
    y_placed = min(y_placed, 0.0)
    gap_of = rules.triples["gap"].to_numpy(dtype=int)
    reduced = (cost_x - rules.transpose_sums(y) - y_level[gap_of] - y_held[gap_of]
               - y_ceiling[gap_of] - y_placed * grants_of(rules))
    # The level column L (cost 0) has coefficient -pi U in each level row, and L >= 0.
    reduced_l = float(y_level @ facts.scale)
    bound = float(y @ rules.rows["rhs_usd"].to_numpy(dtype=float))
    bound += float(y_level @ (-facts.scale * facts.lcap)) + float(y_held @ held_rhs)
    bound += float(y_ceiling @ ceiling_rhs)
    bound += y_placed * placed_rhs
    bound += float(np.maximum(reduced, 0.0) @ rules.triples["upper_usd"].to_numpy(dtype=float))
    bound += max(reduced_l, 0.0) * facts.lcap
    if facts.z_bounds is not None and rules.has_floor:
        reduced_z = float(rules.floor_fundable() @ y[rules.floor_rows])
        bound += reduced_z * (facts.z_bounds[1] if reduced_z > 0 else facts.z_bounds[0])
    return bound


def grants_of(rules: Rules) -> np.ndarray:
    """1 on each grant triple, 0 on a loan: the money stage 1b places and
    `allocated[total]` holds is grant money only (docs/model.md)."""
    return (~rules.triples["loan"].to_numpy(dtype=bool)).astype(float)


def relaxed_ceilings(rules: Rules) -> np.ndarray:
    """Every gap's ceiling row's right-hand side before stage 3 (`model.spec`'s constants)."""
    return relaxed_ceiling_usd(rules.gaps["fundable_usd"].to_numpy(dtype=float))


def run_precision(checker: Certifier) -> float:
    """The precision the run's solver reads values back with (0 when exact), as recorded;
    the manifest check refuses one above `MAX_VALUE_PRECISION`."""
    recorded = checker.run.number("solver", "value_precision")
    return min(max(recorded or 0.0, 0.0), MAX_VALUE_PRECISION)


def check_placed(checker: Certifier, facts: LevelFacts) -> None:
    """Stage 1b: the duals bound the money placed by the recorded X*."""
    from gcm_fund.audit.checks import Check

    rules, run = checker.rules, checker.run
    recorded = run.number("objective", "allocated_usd")
    problems: list[str] = []
    if recorded is None:
        checker.add(Check("levels: stage 1b (money placed)", False, "manifest.json records "
                          "no finite objective.allocated_usd (X*) to prove"))
        return
    bound = stage_bound(checker, facts, "1b", grants_of(rules), np.zeros(len(rules.gaps)),
                        relaxed_ceilings(rules), 0.0, problems)
    tol = GAP_RELATIVE * max(abs(recorded), 1.0) + ROW_ALLOWANCE_USD * checker.n_written
    if not bound - recorded <= tol:
        problems.append(f"stage 1b: the duals bound the money placed by {usd(bound)}, "
                        f"{usd(bound - recorded)} above the recorded X* {usd(recorded)}")
    checker.cert.figures.update(stage1b_bound=bound, stage1b_gap=bound - recorded)
    checker.add(Check("levels: stage 1b (money placed)", not problems,
                      f"X* {usd(recorded)}; the duals bound the money placed by {usd(bound)}",
                      f"1e-6 of X* + 0.01 USD per allocation row = {usd(tol)}", problems))


def check_loans(checker: Certifier, facts: LevelFacts) -> None:
    """Stage 3: the allocation's loan burden is the least with every gap's amount held."""
    from gcm_fund.audit.checks import Check

    rules, run = checker.rules, checker.run
    name = "levels: stage 3 (loan burden)"
    burden = loan_costs(rules)
    primal = float(burden @ checker.x)
    recorded = run.number("objective", "loan_burden")
    largest = float(burden.max(initial=0.0))
    tol = GAP_RELATIVE * max(primal, 1.0) + ROW_ALLOWANCE_USD * largest * checker.n_written
    problems: list[str] = []
    if recorded is None or not abs(recorded - primal) <= tol:
        problems.append(f"manifest loan_burden {run.raw('objective', 'loan_burden')!r} is not "
                        f"the allocation's sum lambda (1 - g) burden x = {primal:.2f}")
    table = run.table(STAGE_DUALS, ("stage", "name", "dual"))
    ran = bool((table["stage"] == "3").any())
    if largest == 0.0:
        if ran:
            problems.append(f"{STAGE_DUALS}: stage 3 duals, but no loan carries a burden "
                            "(stage 3 does not run)")
        checker.add(Check(name, not problems, "no eligible loan carries a burden: the loan "
                          "burden is 0", "exact", problems))
        return
    held_rhs = np.where(facts.in_e, facts.scale * np.nan_to_num(facts.held), 0.0)
    precision = run_precision(checker)
    ceiling_rhs = np.where(facts.in_e, held_rhs * (1.0 + ceiling_margin(precision)),
                           relaxed_ceilings(rules))
    least = -stage_bound(checker, facts, "3", -burden, held_rhs, ceiling_rhs, facts.placed,
                         problems)
    if not ran and not primal - least <= tol:
        # No row at all is the zero dual: it proves a burden of 0 and no more.
        problems.append(f"{STAGE_DUALS} has no stage 3 duals: nothing proves the loan burden "
                        "the least")
    elif not primal - least <= tol:
        problems.append(f"stage 3: the allocation's loan burden {usd(primal)} exceeds the "
                        f"least the duals allow with every gap's amount held, {usd(least)}, "
                        f"by {usd(primal - least)}")
    checker.cert.figures.update(loan_burden=primal, stage3_bound=least)
    checker.add(Check(name, not problems,
                      f"loan burden {usd(primal)}; with every gap's amount held the duals "
                      f"allow no less than {usd(least)}",
                      f"1e-6 of the burden + 0.01 USD x max burden per allocation row = "
                      f"{usd(tol)}", problems))
