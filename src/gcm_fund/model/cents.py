"""Rounding a solution to cents so that the written totals add up.

A solver's amounts hold its rules only within its tolerances: a pledge of USD 350 million
may come back as 350,000,001.12, and rounding each amount to the cent on its own can make a
source's written total exceed its pledge by a cent or more. A treasury reads totals, so the
written amounts are chosen here, in whole cents, such that

- every source's written total is at most its pledge as written,
- every gap's written total is at most its fundable need as written, and
- every further group the caller caps (a source's per-State cap `rho_f B_f`, a State's
  absorption or share cap) totals at most its cap in whole cents,

exactly, in integer arithmetic (a solver can overshoot a cap by more than docs/outputs.md's
tolerance: CBC's 8-digit values, moved onto the rows of non-zero dual, leave other rows
as they fall). Every other amount is its solver value rounded down or up
by less than a cent (largest remainders first, while its source's and its gap's totals stay
below their exact values rounded up), so docs/outputs.md's per-row tolerance holds for every
other rule. The choice is deterministic: ties go to the lower column index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from gcm_fund import writing

# Solver values within this many cents of a whole cent are taken as that cent, so that
# 99.99999999 cents is 100, not 99 plus a remainder that competes for a round-up.
SNAP_CENTS = 1e-4
# A remainder below this (in cents) is solver noise, never rounded up into a new cent.
NOISE_CENTS = 0.01


def written_cents(values_usd: Iterable[float]) -> np.ndarray:
    """Each value in whole cents exactly as it is written with two decimals."""
    return np.array([round(float(writing.amount(float(v))) * 100) for v in values_usd],
                    dtype=np.int64)


def cents_by_group(group: np.ndarray, cents: np.ndarray, size: int) -> np.ndarray:
    """Sums of whole cents by group in int64: exact to USD 9e16, where a float sum of
    cents stops being exact beyond USD 9e13."""
    totals = np.zeros(size, dtype=np.int64)
    np.add.at(totals, np.asarray(group, dtype=np.intp), np.asarray(cents, dtype=np.int64))
    return totals


def usd_of_cents(cents: np.ndarray) -> np.ndarray:
    """Whole cents as USD, each the float nearest its exact value: Python's integer
    division rounds once, where numpy's would round the cents to a float first."""
    return np.array([c / 100 for c in np.asarray(cents, dtype=np.int64).tolist()],
                    dtype=float)


# A further capped group: the group of each column (-1: none) and each group's cap, cents.
Groups = Sequence[tuple[np.ndarray, np.ndarray]]


def round_to_cents(x_usd: np.ndarray, var_source: np.ndarray, var_gap: np.ndarray,
                   source_cap_cents: np.ndarray, gap_cap_cents: np.ndarray,
                   more: Groups = ()) -> np.ndarray:
    """Amounts in whole cents whose source, gap and other group totals never exceed their
    caps.

    `x_usd[i]` is the solver's amount of column i, which belongs to source `var_source[i]`
    and gap `var_gap[i]`; the caps are in cents (see `written_cents`). `more` holds further
    capped groups, each as (group of each column, -1 for none; cap of each group in
    cents). Negative amounts count as zero (a NaN too). A group whose rounded-down amounts
    already exceed its cap (the solver overshot by more than a cent) gives up the excess
    in proportion to its amounts.
    """
    x_usd = np.asarray(x_usd, dtype=float)
    # Only positive amounts can be written as a cent or more: at 10,008 gaps x 1,000
    # sources, about 100,000 of 5.5 million columns. The others stay 0 and change no total
    # (a float sum with +0.0 added is the same sum), and the columns kept stay in column
    # order, so every tie is broken as over all columns.
    support = np.flatnonzero(x_usd > 0)
    written = np.zeros(x_usd.size, dtype=np.int64)
    groups = [(np.asarray(var_source), np.asarray(source_cap_cents, dtype=np.int64)),
              (np.asarray(var_gap), np.asarray(gap_cap_cents, dtype=np.int64))]
    groups += [(np.asarray(member), np.asarray(cap, dtype=np.int64)) for member, cap in more]
    written[support] = _rounded(x_usd[support], [(member[support], cap)
                                                 for member, cap in groups])
    return written


def _rounded(x_usd: np.ndarray, groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """`round_to_cents` of amounts that are all positive, with every capped group (the
    sources first, the gaps second) as (group of each column or -1, caps)."""
    x_cents = x_usd * 100.0
    cents = np.floor(x_cents + SNAP_CENTS).astype(np.int64)
    remainder = np.clip(x_cents - cents, 0.0, None)
    # Trimming a column lowers the totals of every group it is in, so trimming one family
    # of groups after another leaves all within their caps.
    for member, cap in groups:
        _trim(cents, member, cap)

    def quota(member: np.ndarray, cap: np.ndarray, to_exact: bool) -> np.ndarray:
        on = member >= 0
        floor = np.bincount(member[on], weights=cents[on], minlength=cap.size)
        target = cap
        if to_exact:
            # Up to the exact total rounded up: one group's rounding-up is the other's
            # largest remainder (three thirds of a dollar to three gaps need one of them
            # up). Sources and gaps only: the further groups merely cap.
            exact = np.bincount(member[on], weights=x_cents[on], minlength=cap.size)
            target = np.minimum(cap, np.ceil(exact - SNAP_CENTS).astype(np.int64))
        return np.maximum(target - np.rint(floor).astype(np.int64), 0)

    # Plain lists: this loop runs once per column with a remainder.
    quotas = [quota(member, cap, k < 2).tolist() for k, (member, cap) in enumerate(groups)]
    members = [member.tolist() for member, _ in groups]
    pairs = list(zip(members, quotas, strict=True))
    candidates = np.flatnonzero(remainder >= NOISE_CENTS)
    order = candidates[np.lexsort((candidates, -remainder[candidates]))]
    up: list[int] = []
    for i in order.tolist():
        if all(of[i] < 0 or left[of[i]] > 0 for of, left in pairs):
            up.append(i)
            for of, left in pairs:
                if of[i] >= 0:
                    left[of[i]] -= 1
    cents[np.asarray(up, dtype=np.int64)] += 1
    return cents


def _trim(cents: np.ndarray, group: np.ndarray, cap: np.ndarray) -> None:
    """Lower the amounts of every group over its cap, in proportion, largest remainder
    (columns of group -1 belong to none)."""
    on = group >= 0
    totals = np.bincount(group[on], weights=cents[on], minlength=cap.size)
    over = np.flatnonzero(np.rint(totals).astype(np.int64) > cap)
    if not over.size:
        return
    # The columns of the groups over their cap, by group (a stable sort keeps each group's
    # columns in column order): one pass over the columns, not one per group.
    found = np.flatnonzero(np.isin(group, over))
    found = found[np.argsort(group[found], kind="stable")]
    bounds = np.searchsorted(group[found], over, side="left").tolist() + [found.size]
    for k, g in enumerate(over.tolist()):
        members = found[bounds[k]:bounds[k + 1]]
        amounts = cents[members]
        total = int(amounts.sum())
        excess = total - max(int(cap[g]), 0)
        share = amounts * excess / total
        cut = np.floor(share).astype(np.int64)
        left = excess - int(cut.sum())
        # ceil(excess * a / total) <= a since excess <= total: no amount goes below zero.
        order = np.lexsort((np.arange(members.size), -(share - cut)))
        cut[order[:left]] += 1
        cents[members] -= cut
