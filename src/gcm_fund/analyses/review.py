"""The follow-up and review (docs/review.md): what each cycle committed, disbursed and
achieved, by State, target and region, and what each donor paid of its pledges.

Per cycle and group (a State, a target, a region), over the history rows in it:

    committed_usd = sum of committed_usd
    disbursed_usd = sum of disbursed_usd
    execution     = disbursed / committed                      (blank when nothing committed)
    result        = sum of committed * result / sum of committed,
                    over the rows whose result is reported      (blank when none is)

Per donor (the State named as `donor_iso3`, or the source itself when it names none), from
contributions.csv valued at the policy's valuation date (docs/contributions.md), over the
rows dated on or before it:

    face_usd   = amount x rate of every row;   paid_usd = the same over its paid rows
    paid_share = paid / face                                    (blank without rows)
    paid_of_fair_share = paid / its fair share (analyses/fairshare.py, GNI basis)

Flags, `;`-joined words, blank when none: `low_execution` (execution under 0.5),
`low_results` (result under 0.5), `low_payment` (a donor that paid under 0.8 of its
pledges' face).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gcm_fund.analyses.fairshare import fair_shares
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy

LOW_EXECUTION = 0.5  # execution under this is flagged `low_execution`
LOW_RESULTS = 0.5  # a committed-weighted result under this is flagged `low_results`
LOW_PAYMENT = 0.8  # a donor that paid under this share of its pledges: `low_payment`

FIGURES = ("committed_usd", "disbursed_usd", "execution", "result", "flags")


def by_group(history: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Committed, disbursed, execution, result and flags per cycle and `keys`, from history
    rows (`cycle,iso3,target,committed_usd,disbursed_usd,result`, result NaN when blank,
    plus whatever `keys` names); sorted by cycle, then the keys in plain string order."""
    result = history["result"].astype(float)
    reported = result.notna()
    frame = pd.DataFrame({
        "cycle": history["cycle"].astype(int),
        **{key: history[key].astype(str) for key in keys},
        "committed_usd": history["committed_usd"].astype(float),
        "disbursed_usd": history["disbursed_usd"].astype(float),
        "reported_usd": history["committed_usd"].astype(float).where(reported, 0.0),
        "weighted": (history["committed_usd"].astype(float) * result).where(reported, 0.0),
    })
    sums = frame.groupby(["cycle", *keys], sort=True)[
        ["committed_usd", "disbursed_usd", "reported_usd", "weighted"]].sum().reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        committed = sums["committed_usd"].to_numpy()
        execution = np.where(committed > 0, sums["disbursed_usd"].to_numpy() / committed,
                             np.nan)
        reported_usd = sums["reported_usd"].to_numpy()
        weighted = np.where(reported_usd > 0, sums["weighted"].to_numpy() / reported_usd,
                            np.nan)
    table = sums[["cycle", *keys, "committed_usd", "disbursed_usd"]].assign(
        execution=execution, result=weighted)
    table["flags"] = [flags(e, r) for e, r in zip(execution, weighted, strict=True)]
    return table.reset_index(drop=True)


def flags(execution: float, result: float, paid_share: float = np.nan) -> str:
    """The lags of one row as `;`-joined words; blank when none (NaN is no lag: nothing
    to measure)."""
    words = [word for word, value, limit in (("low_execution", execution, LOW_EXECUTION),
                                             ("low_results", result, LOW_RESULTS),
                                             ("low_payment", paid_share, LOW_PAYMENT))
             if not np.isnan(value) and value < limit]
    return ";".join(words)


def with_states(history: pd.DataFrame, data: ProblemData) -> pd.DataFrame:
    """The history rows with each State's name, region and income group from states.csv
    (blank for an iso3 it does not have)."""
    states = data.states.set_index("iso3")
    out = history.copy()
    for column in ("name", "region", "income_group"):
        out[column] = history["iso3"].map(states[column]).fillna("").astype(str)
    return out


def states_review(history: pd.DataFrame, data: ProblemData) -> pd.DataFrame:
    """review_states.csv: per cycle and State, with its name, region and income group."""
    table = by_group(with_states(history, data), ["iso3", "name", "region", "income_group"])
    return table


def targets_review(history: pd.DataFrame) -> pd.DataFrame:
    """review_targets.csv: per cycle and target."""
    return by_group(history, ["target"])


def regions_review(history: pd.DataFrame, data: ProblemData) -> pd.DataFrame:
    """review_regions.csv: per cycle and region (states.csv's)."""
    return by_group(with_states(history, data), ["region"])


def donors_review(data: ProblemData, policy: Policy) -> pd.DataFrame:
    """review_donors.csv: per donor, its sources, the pledges the fund counts, and with
    contributions.csv the face and paid money and their shares (see the module's formulas);
    sorted by donor."""
    sources = data.sources
    donor = [d if isinstance(d, str) and d else s
             for s, d in zip(sources["source_id"], sources["donor_iso3"], strict=True)]
    of_source = dict(zip(sources["source_id"], donor, strict=True))
    face: dict[str, float] = {}
    paid: dict[str, float] = {}
    valuation = data.valuation
    for resource in (valuation.resources if valuation is not None else ()):
        if valuation is None or resource.row.date > valuation.valuation_date:
            continue
        who = of_source[resource.row.source_id]
        value = resource.face_usd or 0.0
        face[who] = face.get(who, 0.0) + value
        paid[who] = paid.get(who, 0.0) + (value if resource.row.status == "paid" else 0.0)
    fair = fair_shares(data, policy).set_index("donor_iso3")["fair_share_usd"]
    named = [d for d in sorted(set(donor)) if d in fair.index or d in face]
    rows = []
    for who in named:
        mine = [s for s, d in zip(sources["source_id"], donor, strict=True) if d == who]
        pledged = float(sources.loc[sources["source_id"].isin(mine), "pledge_usd"].sum())
        face_usd = face.get(who, np.nan)
        paid_usd = paid.get(who, np.nan)
        fair_usd = float(fair.get(who, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = paid_usd / face_usd if face_usd > 0 else np.nan
            of_fair = paid_usd / fair_usd if fair_usd > 0 else np.nan
        rows.append({"donor": who, "sources": ";".join(sorted(mine)), "pledged_usd": pledged,
                     "face_usd": face_usd, "paid_usd": paid_usd, "paid_share": share,
                     "fair_share_usd": fair_usd, "paid_of_fair_share": of_fair,
                     "flags": flags(np.nan, np.nan, share)})
    return pd.DataFrame(rows, columns=["donor", "sources", "pledged_usd", "face_usd",
                                       "paid_usd", "paid_share", "fair_share_usd",
                                       "paid_of_fair_share", "flags"])
