"""Fair shares (docs/commands.md): the total fundable need split across donor States by GNI.

The total fundable need is the sum of U[s,t] = c[income(s)] * need[s,t] over every gap,
eligible or not. The donor States are those named as `donor_iso3` by at least one source;
those with `gni_usd > 0` share the total in proportion to their GNI:

    fair_share(d) = total * gni(d) / sum of gni over donors with gni > 0
    pledged(d)    = sum of pledge_usd over the sources whose donor_iso3 is d
    ratio(d)      = pledged(d) / fair_share(d)

A donor with a blank or zero GNI gets blank `fair_share_usd` and `ratio` (its pledges are
still summed).

With contributions.csv (docs/contributions.md) every basis adds the money actually paid:

    paid(d)       = face USD of the paid rows dated on or before the valuation date, over
                    the sources whose donor_iso3 is d (at the valuation date's rates)
    paid_ratio(d) = paid(d) / fair_share(d)

blank for a donor none of whose sources has rows (its pledge says nothing of payment).

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

Basis `rci` (a responsibility-capacity index in the spirit of the Climate Equity
Reference) looks at every State with `gni_usd`, not only those that pledge, and asks what
the fund's donor States owe once development banks and private sources have pledged:

    above(s)       = income_group(s) is at or above the threshold (default UMIC)
    capacity(s)    = gni(s) if above(s) else 0
    responsible(s) = migrants_hosted(s) if above(s) else 0
    rci(s)         = w * capacity(s) / sum of capacity
                   + (1 - w) * responsible(s) / sum of responsible        (w default 0.5)
    owed           = total fundable need - sum of pledges of ifi and private sources
    fair_share(s)  = rci(s) * owed,  ratio(s) = pledged(s) / fair_share(s)
    received(s)    = what s gets in `allocate` of the same inputs and policy (all sources)
    net(s)         = fair_share(s) - received(s)     its net position: < 0, a net recipient

The threshold applies to both halves, as the Climate Equity Reference's development
threshold does: a low-income State that hosts many refugees owes nothing for hosting them.
Its default is HIC: with the bundled co-financing shares (HIC 0) a high-income State
receives nothing from the fund, so none that owes a share is a net recipient. A lower
threshold (UMIC) makes middle-income recipients owe too (on the example China would owe
USD 322 million while receiving 29 million); `net_usd` and the command's note then say
which owe less than they receive.
`owed` is not allowed below 0. A half that no State bears (no State at or above the
threshold hosts migrants, or none has GNI above 0) hands its weight to the other half, with
a note, so that the whole of `owed` is always shared; when neither half is borne (no State
at or above the threshold, say) nothing can be, and the command says so (exit 2). Worked
example (two States at or above UMIC, w = 0.5):
A (HIC) GNI 300, hosts 10 migrants; B (UMIC) GNI 100, hosts 30; C (LIC) GNI 50, hosts 60
(below the threshold). capacity shares 0.75 and 0.25, responsibility shares 0.25 and
0.75, so rci(A) = rci(B) = 0.5 and rci(C) = 0; with a fundable need of 18e6 of which banks
pledge 8e6, A and B each owe 5e6.
    >>> from gcm_fund import api, fairshare                              # doctest: +SKIP
    >>> loaded = api.load("inputs", "models/baseline.toml")              # doctest: +SKIP
    >>> fairshare.fair_shares(loaded.data, loaded.policy_file.policy)    # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.errors import UsageError
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import INCOME_GROUPS
from gcm_fund.model.spec import fundable_usd
from gcm_fund.writing import amount, check_output_files, csv_text, inert, real, write_atomic

COLUMNS = ("donor_iso3", "gni_usd", "fair_share_usd", "pledged_usd", "ratio")
PAID_COLUMNS = ("paid_usd", "paid_ratio")  # added with contributions.csv (docs/contributions.md)
RCI_COLUMNS = ("iso3", "name", "income_group", "capacity_usd", "migrants_hosted", "rci",
               "fair_share_usd", "pledged_usd", "ratio", "received_usd", "net_usd")
BASES = ("gni", "gni-per-capita-adjusted", "rci")
GRADIENT = 0.8  # the low per-capita income adjustment's gradient
CAPACITY_WEIGHT = 0.5  # rci's default w
THRESHOLD = "HIC"  # rci's default threshold (see the module's docstring)


def total_fundable_usd(data: ProblemData, policy: Policy) -> float:
    """The sum of U[s,t] = c[income(s)] * need[s,t] over every gap, in USD."""
    income = data.gaps["iso3"].map(data.states.set_index("iso3")["income_group"]).to_numpy()
    return float(np.sum(fundable_usd(data.gaps["need_usd"].to_numpy(dtype=float), income,
                                     policy.cofinancing)))


def fair_shares(data: ProblemData, policy: Policy, basis: str = "gni") -> pd.DataFrame:
    """`donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio`, one row per donor State,
    sorted by iso3 (NaN where blank), on the given basis (see the module's formulas)."""
    if basis not in BASES:
        raise UsageError(f"unknown basis {basis!r}: use {', '.join(BASES)}")
    if basis == "rci":
        return rci_shares(data, policy)
    return with_paid(_gni_shares(data, policy, basis), data, "donor_iso3")


def paid_by_donor(data: ProblemData) -> dict[str, float]:
    """docs/contributions.md: each donor State's paid money, the face USD of the paid rows
    dated on or before the valuation date over its sources; only donors with a source that
    has rows."""
    if data.valuation is None:
        return {}
    donor = dict(zip(data.sources["source_id"], data.sources["donor_iso3"], strict=True))
    paid: dict[str, float] = {}
    for resource in data.valuation.resources:
        iso3 = donor.get(resource.row.source_id)
        if not isinstance(iso3, str):
            continue
        counted = (resource.row.status == "paid"
                   and resource.row.date <= data.valuation.valuation_date)
        paid[iso3] = paid.get(iso3, 0.0) + ((resource.face_usd or 0.0) if counted else 0.0)
    return paid


def with_paid(table: pd.DataFrame, data: ProblemData, key: str) -> pd.DataFrame:
    """The table with `paid_usd` and `paid_ratio` (paid / fair share) after its columns when
    the inputs have contributions.csv; unchanged otherwise."""
    if data.valuation is None:
        return table
    paid = paid_by_donor(data)
    paid_usd = np.array([paid.get(code, np.nan) for code in table[key]], dtype=float)
    fair = table["fair_share_usd"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(fair > 0, paid_usd / fair, np.nan)
    out = table.assign(paid_usd=paid_usd, paid_ratio=ratio)
    out.attrs.update(table.attrs)
    return out


def _gni_shares(data: ProblemData, policy: Policy, basis: str) -> pd.DataFrame:
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


def owed_by_states_usd(data: ProblemData, policy: Policy) -> float:
    """The total fundable need less what ifi and private sources pledge, at least 0."""
    sources = data.sources
    others = float(sources.loc[sources["kind"].isin(["ifi", "private"]), "pledge_usd"].sum())
    return max(total_fundable_usd(data, policy) - others, 0.0)


def received_by_state(data: ProblemData, policy: Policy) -> dict[str, float] | None:
    """What each State receives in `allocate` of these inputs under this policy (all
    sources, USD to the cent); None when no allocation meets the policy."""
    from gcm_fund.errors import InfeasibleError
    from gcm_fund.methods.strategy import method_of
    from gcm_fund.model.lp import build

    lp = build(data, policy)
    try:
        solution = method_of(policy).solve(lp, "highs")
    except InfeasibleError:
        return None
    if solution.programmes is not None:
        lp = solution.programmes.model.lp
    iso3 = data.gaps["iso3"].to_numpy()[lp.var_gap]
    received = pd.Series(np.round(solution.x_usd, 2)).groupby(iso3).sum()
    return {str(k): float(v) for k, v in received.items()}


def rci_shares(data: ProblemData, policy: Policy, capacity_weight: float = CAPACITY_WEIGHT,
               threshold: str = THRESHOLD, received: dict[str, float] | None = None
               ) -> pd.DataFrame:
    """`iso3,name,income_group,capacity_usd,migrants_hosted,rci,fair_share_usd,pledged_usd,
    ratio,received_usd,net_usd`, one row per State with GNI, sorted by iso3 (the module's
    rci formula); `ratio` is NaN where the fair share is 0, `received_usd` and `net_usd`
    NaN without `received` (`received_by_state`). `attrs` holds the weight and threshold
    used and the notes (a half's weight handed to the other, the net recipients that owe
    a share)."""
    if not 0.0 <= capacity_weight <= 1.0:
        raise UsageError(f"capacity weight {capacity_weight:g}: expected a number in [0, 1]")
    if threshold not in INCOME_GROUPS:
        raise UsageError(f"threshold {threshold!r}: expected one of {', '.join(INCOME_GROUPS)}")
    states = data.states[data.states["gni_usd"].notna()].sort_values("iso3")
    rank = {group: i for i, group in enumerate(INCOME_GROUPS)}
    above = states["income_group"].map(rank).to_numpy() >= rank[threshold]
    hosted = states["migrants_hosted"].astype(float).to_numpy()
    missing = states["iso3"][above & np.isnan(hosted)].tolist()
    if missing:
        raise UsageError(
            "basis rci needs migrants_hosted in states.csv for the States with GNI at or "
            f"above {threshold}: {', '.join(missing)}")
    capacity = np.where(above, states["gni_usd"].astype(float).to_numpy(), 0.0)
    responsible = np.where(above, np.nan_to_num(hosted), 0.0)
    owed = owed_by_states_usd(data, policy)
    weights = _half_weights(capacity, responsible, capacity_weight, threshold, owed)
    rci = weights[0] * _shares(capacity) + weights[1] * _shares(responsible)
    fair = rci * owed
    named = data.sources[data.sources["donor_iso3"].notna()]
    pledged = (named.groupby("donor_iso3")["pledge_usd"].sum()
               .reindex(states["iso3"]).fillna(0.0).to_numpy(dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(fair > 0, pledged / fair, np.nan)
    codes = states["iso3"].to_numpy()
    got = (np.full(len(codes), np.nan) if received is None
           else np.array([received.get(str(c), 0.0) for c in codes], dtype=float))
    table = pd.DataFrame({
        "iso3": codes, "name": states["name"].to_numpy(),
        "income_group": states["income_group"].to_numpy(), "capacity_usd": capacity,
        "migrants_hosted": hosted, "rci": rci, "fair_share_usd": fair,
        "pledged_usd": pledged, "ratio": ratio, "received_usd": got, "net_usd": fair - got,
    })
    notes = list(weights[2])
    recipients = table[(table["fair_share_usd"] > 0) & (table["net_usd"] < 0)]
    if len(recipients):
        shown = ", ".join(recipients["iso3"].head(10)) + (
            f" and {len(recipients) - 10} more" if len(recipients) > 10 else "")
        notes.append(f"{len(recipients)} States owe a share but receive more than they owe "
                     f"(net recipients, net_usd < 0): {shown}")
    table.attrs.update(notes=notes, capacity_weight=capacity_weight, threshold=threshold)
    return with_paid(table, data, "iso3")


def _half_weights(capacity: np.ndarray, responsible: np.ndarray, capacity_weight: float,
                  threshold: str, owed: float) -> tuple[float, float, list[str]]:
    """The weights of the capacity and responsibility halves, and a note when they are not
    (w, 1 - w): a half that no State bears (its total is 0) hands its weight to the other,
    so that the whole of `owed` is shared. `UsageError` when no State bears either."""
    weights = [capacity_weight, 1.0 - capacity_weight]
    borne = [float(capacity.sum()) > 0, float(responsible.sum()) > 0]
    what = ["capacity (gni_usd)", "responsibility (migrants_hosted)"]
    if not any(b and w > 0 for b, w in zip(borne, weights, strict=True)):
        if owed <= 0:
            return weights[0], weights[1], []
        if not any(borne):
            raise UsageError(
                f"basis rci: no State at or above {threshold} has a gni_usd or "
                f"migrants_hosted above 0, so none can owe a share of the USD {owed:,.2f} "
                "owed; lower --threshold")
        alone = 0 if weights[0] > 0 else 1
        raise UsageError(
            f"basis rci: --capacity-weight {capacity_weight:g} puts the whole weight on "
            f"{what[alone]}, which no State at or above {threshold} has; give "
            f"{what[1 - alone].split(' ')[0]} some weight")
    notes = []
    for half in (0, 1):
        if not borne[half] and weights[half] > 0:
            other = 1 - half
            notes.append(
                f"basis rci: no State at or above {threshold} has any {what[half]}, so its "
                f"weight {weights[half]:g} goes to {what[other]}, which alone shares the USD "
                f"{owed:,.2f} owed")
            weights = [0.0, 0.0]
            weights[other] = 1.0
    return weights[0], weights[1], notes


def _shares(values: np.ndarray) -> np.ndarray:
    total = float(values.sum())
    return values / total if total > 0 else np.zeros_like(values)


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
    """The rows of the fair-share CSV: amounts with two decimals, ratio and rci to 12
    digits, persons whole; codes and names inert in a spreadsheet (`writing.inert`)."""
    if "rci" in table.columns:
        rows = [[inert(str(r.iso3)), inert(str(r.name)), str(r.income_group),
                 amount(r.capacity_usd),
                 "" if math.isnan(r.migrants_hosted) else f"{r.migrants_hosted:.0f}",
                 real(r.rci), amount(r.fair_share_usd), amount(r.pledged_usd), real(r.ratio),
                 amount(r.received_usd), amount(r.net_usd)]
                for r in table.itertuples(index=False)]
    else:
        rows = [[inert(str(r.donor_iso3)), amount(r.gni_usd), amount(r.fair_share_usd),
                 amount(r.pledged_usd), real(r.ratio)] for r in table.itertuples(index=False)]
    if "paid_usd" in table.columns:
        for row, r in zip(rows, table.itertuples(index=False), strict=True):
            row.extend([amount(r.paid_usd), real(r.paid_ratio)])
    return rows


def write_fair_shares(table: pd.DataFrame, out: Path | str, *, force: bool = False,
                      inputs: Sequence[Path | str] = ()) -> Path:
    """Write the fair-share table to `out` (CSV), with the columns of its basis. Refused
    (`UsageError`) over one of `inputs`, or over an existing file unless `force`."""
    out = Path(out)
    check_output_files([out], force=force, inputs=inputs)
    columns = RCI_COLUMNS if "rci" in table.columns else COLUMNS
    if "paid_usd" in table.columns:
        columns = (*columns, *PAID_COLUMNS)
    write_atomic(out, csv_text(columns, fair_share_rows(table)))
    return out
