"""Fair shares (SPEC section 6): the total fundable need split across donor States by GNI.

The total fundable need is the sum of U[s,t] = c[income(s)] * need[s,t] over every gap,
eligible or not. The donor States are those named as `donor_iso3` by at least one source;
those with `gni_usd > 0` share the total in proportion to their GNI:

    fair_share(d) = total * gni(d) / sum of gni over donors with gni > 0
    pledged(d)    = sum of pledge_usd over the sources whose donor_iso3 is d
    ratio(d)      = pledged(d) / fair_share(d)

A donor with a blank or zero GNI gets blank `fair_share_usd` and `ratio` (its pledges are
still summed).

Basis `gni-per-capita-adjusted` (modelled on the low per-capita income adjustment of the UN
scale of assessments, not a reproduction of it) lightens the share of donors poorer per
person than the donors' average. With the optional `population` column of states.csv:

    p(d)        = gni(d) / population(d)          income per person
    T           = sum of gni / sum of population  over the donors with gni > 0
    adjusted(d) = gni(d) * (1 - 0.8 * (1 - p(d) / T))   when p(d) < T
                = gni(d)                                otherwise
    fair_share(d) = total * adjusted(d) / sum of adjusted

The 0.8 is the gradient the UN scale has used; every donor with gni > 0 then needs a
population > 0.
    >>> from gcm_fund import api, fairshare                              # doctest: +SKIP
    >>> loaded = api.load("inputs", "models/baseline.toml")              # doctest: +SKIP
    >>> fairshare.fair_shares(loaded.data, loaded.policy_file.policy)    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UsageError
from .load import ProblemData
from .schema import Policy
from .spec import fundable_usd
from .writing import amount, check_output_files, csv_text, real, write_atomic

COLUMNS = ("donor_iso3", "gni_usd", "fair_share_usd", "pledged_usd", "ratio")
BASES = ("gni", "gni-per-capita-adjusted")
GRADIENT = 0.8  # the low per-capita income adjustment's gradient


def total_fundable_usd(data: ProblemData, policy: Policy) -> float:
    """The sum of U[s,t] = c[income(s)] * need[s,t] over every gap, in USD."""
    income = data.gaps["iso3"].map(data.states.set_index("iso3")["income_group"]).to_numpy()
    return float(np.sum(fundable_usd(data.gaps["need_usd"].to_numpy(dtype=float), income,
                                     policy.cofinancing)))


def fair_shares(data: ProblemData, policy: Policy, basis: str = "gni") -> pd.DataFrame:
    """`donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio`, one row per donor State,
    sorted by iso3 (NaN where blank), on the given basis (see the module's formulas)."""
    if basis not in BASES:
        raise UsageError(f"unknown basis {basis!r}: use {' or '.join(BASES)}")
    sources = data.sources
    named = sources[sources["donor_iso3"].notna()]
    pledged = named.groupby("donor_iso3", sort=True)["pledge_usd"].sum()
    donors = sorted(pledged.index)
    gni = data.states.set_index("iso3")["gni_usd"].astype(float).reindex(donors)
    positive = gni.fillna(0.0) > 0
    weight = gni.copy()
    if basis == "gni-per-capita-adjusted":
        weight = _per_capita_adjusted(data, gni, positive)
    total_gni = float(weight[positive].sum())
    total = total_fundable_usd(data, policy)
    fair = pd.Series(np.nan, index=donors, dtype=float)
    if total_gni > 0:
        fair[positive] = total * weight[positive] / total_gni
    pledged_usd = pledged.reindex(donors).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(positive & (fair > 0), pledged_usd / fair, np.nan)
    return pd.DataFrame({
        "donor_iso3": donors,
        "gni_usd": gni.to_numpy(dtype=float),
        "fair_share_usd": fair.to_numpy(dtype=float),
        "pledged_usd": pledged_usd.to_numpy(dtype=float),
        "ratio": np.asarray(ratio, dtype=float),
    })


def _per_capita_adjusted(data: ProblemData, gni: pd.Series, positive: pd.Series
                         ) -> pd.Series:
    population = data.states.set_index("iso3")["population"].astype(float).reindex(gni.index)
    missing = [str(d) for d in gni.index[positive & ~(population.fillna(0.0) > 0)]]
    if missing:
        raise UsageError(
            "basis gni-per-capita-adjusted needs a population > 0 in states.csv for the "
            f"donor States with GNI: {', '.join(missing)}"
        )
    per_person = gni / population
    threshold = float(gni[positive].sum() / population[positive].sum())
    factor = np.where(per_person < threshold, 1 - GRADIENT * (1 - per_person / threshold), 1.0)
    return gni * factor


def fair_share_rows(table: pd.DataFrame) -> list[list[str]]:
    """The rows of the fair-share CSV: amounts with two decimals, the ratio to 12 digits."""
    return [[str(r.donor_iso3), amount(r.gni_usd), amount(r.fair_share_usd),
             amount(r.pledged_usd), real(r.ratio)] for r in table.itertuples(index=False)]


def write_fair_shares(table: pd.DataFrame, out: Path | str, *, force: bool = False,
                      inputs: Sequence[Path | str] = ()) -> Path:
    """Write the fair-share table to `out` (CSV). Refused (`UsageError`) over one of
    `inputs`, or over an existing file unless `force`."""
    out = Path(out)
    check_output_files([out], force=force, inputs=inputs)
    write_atomic(out, csv_text(COLUMNS, fair_share_rows(table)))
    return out
