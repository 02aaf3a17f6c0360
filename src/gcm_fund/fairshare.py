"""Fair shares (SPEC section 6): the total fundable need split across donor States by GNI.

The total fundable need is the sum of U[s,t] = c[income(s)] * need[s,t] over every gap,
eligible or not. The donor States are those named as `donor_iso3` by at least one source;
those with `gni_usd > 0` share the total in proportion to their GNI:

    fair_share(d) = total * gni(d) / sum of gni over donors with gni > 0
    pledged(d)    = sum of pledge_usd over the sources whose donor_iso3 is d
    ratio(d)      = pledged(d) / fair_share(d)

A donor with a blank or zero GNI gets blank `fair_share_usd` and `ratio` (its pledges are
still summed). Only the GNI basis is offered: states.csv has no population column, so a
per-capita adjustment (such as the UN scale of assessments' low per-capita income
adjustment) cannot be computed honestly from the columns the contract has.

    >>> from gcm_fund import api, fairshare                              # doctest: +SKIP
    >>> loaded = api.load("inputs", "models/baseline.toml")              # doctest: +SKIP
    >>> fairshare.fair_shares(loaded.data, loaded.policy_file.policy)    # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .load import ProblemData
from .schema import Policy
from .sweep import csv_text, write_atomic

COLUMNS = ("donor_iso3", "gni_usd", "fair_share_usd", "pledged_usd", "ratio")


def total_fundable_usd(data: ProblemData, policy: Policy) -> float:
    """The sum of U[s,t] = c[income(s)] * need[s,t] over every gap, in USD."""
    income = data.gaps["iso3"].map(data.states.set_index("iso3")["income_group"])
    share = np.array([policy.cofinancing.get(g) for g in income], dtype=float)
    return float(np.sum(share * data.gaps["need_usd"].to_numpy(dtype=float)))


def fair_shares(data: ProblemData, policy: Policy) -> pd.DataFrame:
    """`donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio`, one row per donor State,
    sorted by iso3 (NaN where blank)."""
    sources = data.sources
    named = sources[sources["donor_iso3"].notna()]
    pledged = named.groupby("donor_iso3", sort=True)["pledge_usd"].sum()
    donors = sorted(pledged.index)
    gni = data.states.set_index("iso3")["gni_usd"].astype(float).reindex(donors)
    positive = gni.fillna(0.0) > 0
    total_gni = float(gni[positive].sum())
    total = total_fundable_usd(data, policy)
    fair = pd.Series(np.nan, index=donors, dtype=float)
    if total_gni > 0:
        fair[positive] = total * gni[positive] / total_gni
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


def _amount(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"


def _ratio(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.12g}"


def fair_share_rows(table: pd.DataFrame) -> list[list[str]]:
    """The rows of the fair-share CSV: amounts with two decimals, the ratio to 12 digits."""
    return [[str(r.donor_iso3), _amount(r.gni_usd), _amount(r.fair_share_usd),
             _amount(r.pledged_usd), _ratio(r.ratio)] for r in table.itertuples(index=False)]


def write_fair_shares(table: pd.DataFrame, out: Path | str) -> Path:
    """Write the fair-share table to `out` (CSV)."""
    out = Path(out)
    write_atomic(out, csv_text(COLUMNS, fair_share_rows(table)))
    return out
