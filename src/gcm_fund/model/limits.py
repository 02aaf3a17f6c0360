"""The range of numbers the solvers work with: legal inputs outside it are refused.

The LP is solved in USD millions. HiGHS drops a matrix entry smaller than 1e-9 (and
then refuses the model), so a gap whose fundable need U = c x need is below USD 0.001
cannot stand next to the others; a thematic share below 1e-9 neither (its row holds
-theta on every allocation). Both are refused up front, naming the gap or the policy
key, with exit status 2, rather than crashing in the solver or solving a different
LP than the policy states. Limits (README, "Limits"):

- a gap's fundable need `c[income] x need_usd` is 0 or at least USD 0.01 (a cent, the
  unit every amount is written in);
- a thematic share is 0 or at least 1e-6;
- under priority levels, the largest gap priority is at most 1e6 times the smallest (a gap
  of a million times another's priority fills first anyway; beyond, the level rows'
  coefficients pi x U span more than the solvers resolve);
- the needs (`need_usd`) and the pledges (`pledge_usd`) each add up to at most USD 1e15 (a
  thousand trillion): amounts are counted in whole cents (64-bit integers), and HiGHS
  refuses matrix entries above 1e15 of a million;
- every weight, the loan penalty and each loan burden is 0 or between 1e-50 and 1e50: a
  product of weights times USD 1e15 then stays inside floating point (1e300 squared is
  infinite, and 1e-300 squared is 0).

Within that range weights need no other limit: the pipeline scales each stage's objective,
and levels their level column, by a power of two (exactly), so that weights of 1e12 solve
like weights of 1.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from gcm_fund.errors import Problem, UsageError
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import INCOME_GROUPS
from gcm_fund.model.eligibility import fundable_usd, gap_priority

MIN_FUNDABLE_USD = 0.01
MIN_THEMATIC_SHARE = 1e-6
MAX_TOTAL_USD = 1e15
MAX_PRIORITY_SPREAD = 1e6
# A weight, the loan penalty or a loan burden: 0 or within this range.
FACTOR_RANGE = (1e-50, 1e50)


def check_solvable(data: ProblemData, policy: Policy, policy_label: str) -> list[Problem]:
    """Every input the solvers cannot hold (see the module's docstring), one problem each."""
    problems: list[Problem] = []
    gaps = data.gap_table
    fundable = fundable_usd(data, policy)
    tiny = np.nonzero((fundable > 0) & (fundable < MIN_FUNDABLE_USD))[0]
    if len(tiny):
        income = data.state_table["income_group"][data.gap_state]
        path = Path(data.folder) / "gaps.csv"
        lines = _gap_lines(path)
        for g in tiny:
            iso3, target = str(gaps["iso3"][g]), str(gaps["target"][g])
            group = str(income[g])
            share = policy.cofinancing.get(group)
            need = float(gaps["need_usd"][g])
            problems.append(Problem(
                str(path), lines.get((iso3, target)), "need_usd",
                f"gap {iso3} {target}: the fundable need cofinancing.{group} {share:g} x "
                f"need_usd {need:g} = USD {fundable[g]:.3g} is below USD 0.01, the least "
                f"the solvers can allocate beside the other gaps; raise need_usd or "
                f"cofinancing.{group}, or leave the gap out"))
    for name, table, column, key in (("gaps.csv", gaps, "need_usd", ("iso3", "target")),
                                     ("sources.csv", data.source_table, "pledge_usd",
                                      ("source_id",))):
        values = table[column]
        total = float(values.sum()) if len(values) else 0.0
        if total > MAX_TOTAL_USD:
            largest = int(np.argmax(values))
            label = " ".join(str(table[k][largest]) for k in key)
            problems.append(Problem(
                str(Path(data.folder) / name), None, column,
                f"the {column} values add up to USD {total:.3g}, above USD "
                f"{MAX_TOTAL_USD:g}, the most the tool counts in whole cents (largest: "
                f"{label}, USD {values[largest]:.3g})"))
    problems.extend(_factors_out_of_range(policy, policy_label))
    if not problems:  # the spread of priorities out of range would be inf or nan
        problems.extend(_priority_spread(data, policy, policy_label, fundable))
    for target, share in sorted(policy.thematic.min_share.items()):
        if 0 < share < MIN_THEMATIC_SHARE:
            problems.append(Problem(
                policy_label, None, f"thematic.min_share.{target}",
                f"got {share:g}: a thematic share is 0 or at least {MIN_THEMATIC_SHARE:g} "
                "(the solvers drop smaller coefficients)"))
    return problems


def _gap_lines(path: Path) -> dict[tuple[str, str], int]:
    """The line of each gap's row in gaps.csv (header = line 1), by (iso3, target) as
    loaded; empty when the file cannot be read again."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    if not rows:
        return {}
    header = [cell.strip() for cell in rows[0]]
    if "iso3" not in header or "target" not in header:
        return {}
    at_iso3, at_target = header.index("iso3"), header.index("target")
    found: dict[tuple[str, str], int] = {}
    line = 1
    for row in rows[1:]:
        line += 1
        if len(row) > max(at_iso3, at_target):
            key = (row[at_iso3].strip(), row[at_target].strip().lower())
            found.setdefault(key, line)
    return found


def check_swept_total(data: ProblemData, source_ids: list[str], levels: np.ndarray) -> None:
    """Refuse (`UsageError`) a sweep whose highest level takes the pledges' total above
    `MAX_TOTAL_USD`: the limit `allocate` holds its inputs to holds at every level too."""
    if not len(levels):
        return
    pledges = data.sources.set_index("source_id")["pledge_usd"].astype(float)
    others = float(pledges.drop(index=list(source_ids)).sum())
    top = float(np.max(levels))
    total = others + top * len(source_ids)
    if total > MAX_TOTAL_USD:
        raise UsageError(
            f"--pledges: at the highest level, USD {top:.3g}, the pledges add up to USD "
            f"{total:.3g}, above USD {MAX_TOTAL_USD:g}, the most the tool counts in whole "
            "cents")


def policy_factors(policy: Policy) -> list[tuple[str, float]]:
    """Every weight, the loan penalty and each loan burden, by key path, as the policy
    states them or defaults them."""
    found = [(f"weights.target.{t}", float(w)) for t, w in sorted(policy.weights.target.items())]
    found += [(f"weights.income.{g}", float(policy.weights.income.get(g))) for g in INCOME_GROUPS]
    found += [(f"weights.role.{r}", float(getattr(policy.weights.role, r)))
              for r in ("origin", "transit", "destination")]
    found.append(("loans.penalty", float(policy.loans.penalty)))
    found += [(f"loans.burden.{g}", float(policy.loans.burden.get(g))) for g in INCOME_GROUPS]
    return found


def _factors_out_of_range(policy: Policy, policy_label: str) -> list[Problem]:
    """A problem for each weight, penalty or burden that is neither 0 nor within
    `FACTOR_RANGE`."""
    low, high = FACTOR_RANGE
    return [Problem(policy_label, None, key,
                    f"got {value:g}: a weight, the loan penalty or a loan burden is 0 or "
                    f"between {low:g} and {high:g} (beyond, its products with other weights "
                    "and amounts leave floating point)")
            for key, value in policy_factors(policy) if value != 0 and not low <= value <= high]


def _priority_spread(data: ProblemData, policy: Policy, policy_label: str,
                     fundable: np.ndarray) -> list[Problem]:
    """Under levels, a problem when the gaps' priorities (of gaps with a fundable need)
    span more than `MAX_PRIORITY_SPREAD`. Where a product of weights leaves floating point
    (1e300 x 1e300 is infinite, 1e-300 x 1e-300 is 0) the priorities are compared in
    logarithms, so that the spread is still a number."""
    if not policy.allocation.fills_by_priority or not (fundable > 0).any():
        return []
    with np.errstate(over="ignore", under="ignore"):
        priority = gap_priority(data, policy)
    if np.isfinite(priority).all() and (priority > 0).all():
        # log10 of a positive normal float is exact enough for the comparison below.
        priority = np.log10(priority)
    else:
        priority = _log10_priority(data, policy)
    on = np.nonzero(fundable > 0)[0]
    high, low = on[np.argmax(priority[on])], on[np.argmin(priority[on])]
    spread = float(priority[high] - priority[low])
    # A hair above the limit in logarithms is the limit itself, as a ratio of floats reads it.
    if spread <= math.log10(MAX_PRIORITY_SPREAD) + 1e-9:
        return []
    gaps = data.gap_table

    def named(g: int) -> str:
        return f"{gaps['iso3'][g]} {gaps['target'][g]} ({_power_of_ten(float(priority[g]))})"

    return [Problem(policy_label, None, "weights",
                    f"under method = \"levels\" the gaps' priorities Wt x Wi x Wr span "
                    f"{_power_of_ten(spread)} times, from {named(low)} to {named(high)}; at "
                    f"most {MAX_PRIORITY_SPREAD:g} (a gap of a million times another's "
                    "priority fills first anyway): narrow the weights, or use method = "
                    "\"weighted\"")]


def _log10_priority(data: ProblemData, policy: Policy) -> np.ndarray:
    """log10 of each gap's priority Wt x Wi x Wr (`model.gap_priority`) as a sum of the
    weights' logarithms (every weight is > 0 under levels), for products past a float."""
    states, gaps = data.state_table, data.gap_table
    target = np.array([math.log10(policy.weights.target.get(t, 1.0)) for t in gaps["target"]])
    state = np.array([math.log10(policy.weights.income.get(g))
                      + math.log10(policy.role_weight(tuple(r)))
                      for g, r in zip(states["income_group"], states["roles"], strict=True)])
    return target + state[data.gap_state]


def _power_of_ten(exponent: float) -> str:
    """10 ** exponent to three digits (`1.21e+12`), even beyond a float's range."""
    if abs(exponent) < 300:
        return f"{10.0 ** exponent:.3g}"
    whole = math.floor(exponent)
    mantissa = float(f"{10.0 ** (exponent - whole):.3g}")
    if mantissa >= 10:
        mantissa, whole = mantissa / 10, whole + 1
    return f"{mantissa:g}e{whole:+03d}"
