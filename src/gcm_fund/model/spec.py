"""The SPEC's constants and one-line rules, each stated once.

The model, the solve, the writers and the independent check (`certify`) all read these, so
a tolerance, a bound or `U` cannot drift apart between the code that makes a run and the
code that checks it. `certify` restates the rules themselves on its own (see
`gcm_fund.audit.rules`); it shares only what is here. Nothing here knows a solver or a file.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from gcm_fund.inputs.policy import Cofinancing, Equity, MaxShare

# docs/model.md: the rule families, in the order of its table (and of constraints.csv).
FAMILIES = ("budget", "gap", "absorb", "state_share", "source_state", "thematic", "regional",
            "floor", "loan_share", "pace_down", "pace_up")
# docs/cycles.md: what `keep` leaves of a gap's fundable need below the least amount the
# solvers allocate (a cent) is no need: U minus a balance written to the cent is otherwise
# a fraction of a cent whenever U has more digits than the balance.
KEPT_REMAINDER_USD = 0.01

# docs/outputs.md: a rule holds within 0.01 USD per allocation row in it plus 1e-7 of
# max(|lhs|, |rhs|, 1e6).
ROW_ALLOWANCE_USD = 0.01
RELATIVE_ALLOWANCE = 1e-7
RELATIVE_FLOOR_USD = 1e6

# A dual counts as non-zero (its rule binds) above this, d objective / d rhs in USD
# millions: the solvers' dual feasibility tolerance.
POSITIVE_DUAL = 1e-9

# Objectives agree (and the duality gap closes) within 1e-6 relative: docs/model.md and
# docs/outputs.md.
GAP_RELATIVE = 1e-6

# docs/model.md's `stopped_by`: a dual (d L / d rhs, per unit the solver works in) counts as
# positive above this, the solvers' dual feasibility tolerance.
POSITIVE_DUAL = 1e-9

# A solver that reads values back rounded (CBC through its solution file: 8 significant
# digits) may return a z* just above the feasible one; stage 2 then gives up at most that
# rounding, `value_precision * z*`, on top of the policy's tolerance. No solver may claim
# a coarser precision than this: a run that records one is not certified.
MAX_VALUE_PRECISION = 1e-8


def equity_members(group: str, ldc: np.ndarray, income_group: np.ndarray) -> np.ndarray:
    """docs/policy.md's equity group by State: every State (`all`), the least developed (`ldc`),
    or those of one income group; `ldc` and `income_group` are the States' columns."""
    if group == "all":
        return np.ones(len(income_group), dtype=bool)
    if group == "ldc":
        return np.asarray(ldc, dtype=bool)
    return np.asarray(income_group == group, dtype=bool)


def relaxed_ceiling_usd(fundable: np.ndarray) -> np.ndarray:
    """A ceiling row's right-hand side (USD) until stage 2 ends: twice the fundable need
    plus USD 1 million, which no allocation reaches (each gap's own row holds it to its
    need)."""
    return 2.0 * fundable + 1e6


def ceiling_margin(value_precision: float) -> float:
    """How far (relative) above its level a stopped gap may be held in the stages after
    the levels (docs/model.md's stage 3 and the split): the levels come back from the solver
    rounded (CBC: 8 significant digits, up to 5e-8 off), so a ceiling at the very level
    can cut off the allocation the steps found. At most 1e-7 + 1e-9, far inside docs/model.md's
    1e-6 per gap."""
    return read_back_allowance(value_precision) + 1e-9


def read_back_allowance(value_precision: float) -> float:
    """How far (relative) a value a solver read back rounded (`value_precision`, CBC's
    8 significant digits) may lie from the solver's own: ten times its precision."""
    return 10.0 * value_precision


def fundable_usd(need_usd: np.ndarray, income_group: np.ndarray,
                 cofinancing: Cofinancing) -> np.ndarray:
    """U[s,t] = c[income(s)] * need[s,t], per gap (docs/model.md)."""
    share = {g: float(cofinancing.get(g)) for g in set(income_group.tolist())}
    return np.array([share[g] for g in income_group.tolist()], dtype=float) \
        * np.asarray(need_usd, dtype=float)


def kept_fundable_usd(fundable_usd: np.ndarray, balance_usd: np.ndarray) -> np.ndarray:
    """U'[s,t] = max(0, U[s,t] - b[s,t]) under `[carryover] undisbursed = "keep"`
    (docs/cycles.md), 0 where less than `KEPT_REMAINDER_USD` is left."""
    left = np.asarray(fundable_usd, dtype=float) - np.asarray(balance_usd, dtype=float)
    return np.where(left < KEPT_REMAINDER_USD, 0.0, left)


def rule_tolerance_usd(rows_in_rule: np.ndarray, lhs: np.ndarray, rhs: np.ndarray
                       ) -> np.ndarray:
    """docs/outputs.md's tolerance of each rule, given how many allocation rows each holds."""
    return ROW_ALLOWANCE_USD * np.asarray(rows_in_rule, dtype=float) \
        + RELATIVE_ALLOWANCE * np.maximum(np.maximum(np.abs(lhs), np.abs(rhs)),
                                          RELATIVE_FLOOR_USD)


def stage2_z_bounds(equity: Equity, floor: float, value_precision: float = 0.0
                    ) -> tuple[float, float]:
    """Stage 2's bounds on the floor variable z (docs/model.md).

    Maximizing: z >= max(z_min, floor_share * z* - tolerance), z <= 1 (docs/terms.md), the
    tolerance widened to `value_precision * z*` for a solver that reads z* back rounded
    (at most `MAX_VALUE_PRECISION`). Not maximizing: z = z_min.
    """
    if not equity.maximize:
        return (equity.min_floor, equity.min_floor)
    if not 0.0 <= value_precision <= MAX_VALUE_PRECISION:
        raise ValueError(f"value precision {value_precision!r} is outside "
                         f"[0, {MAX_VALUE_PRECISION:g}]")
    slack = max(equity.tolerance, value_precision * floor)
    return (max(equity.min_floor, equity.floor_share * floor - slack), 1.0)


def reported_floor(equity: Equity, floor_max: float) -> float:
    """The run's `floor` (docs/terms.md) when maximizing: max(z_min, floor_share * z*)."""
    return max(equity.min_floor, equity.floor_share * floor_max)


def loan_cap(debt_distress: np.ndarray, debt_risk: np.ndarray, max_share: MaxShare
             ) -> np.ndarray:
    """m(s) of docs/terms.md by State: max_share[debt_risk(s)], where debt_risk(s) is
    `distress` when debt_distress is true, else the column's word, else `unrated`."""
    return np.array([max_share.get(risk_word(bool(d), r))
                     for d, r in zip(debt_distress, debt_risk, strict=True)], dtype=float)


def risk_word(debt_distress: bool, debt_risk: str | None) -> str:
    """debt_risk(s) of docs/terms.md."""
    if debt_distress:
        return "distress"
    return debt_risk or "unrated"


def grant_equivalent(instrument: str, grant_element: float | None) -> float:
    """g_f of docs/terms.md: 1 for a grant, the grant element for a loan."""
    if instrument != "loan" or grant_element is None or grant_element != grant_element:
        return 1.0
    return float(grant_element)


def run_id(input_sha256: dict[str, str], policy_sha256: str, solver_name: str,
           solver_version: str) -> str:
    """docs/outputs.md's run id: derived from the inputs, the policy and the solver only."""
    payload = json.dumps(
        {"inputs": dict(sorted(input_sha256.items())), "policy": policy_sha256,
         "solver": [solver_name, solver_version]},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
