"""Contributions in currencies, valued at one date and counted by status (docs/contributions.md).

A source with rows in `contributions.csv` has no `pledge_usd`: its `B_f` is the sum over its
rows dated on or before the policy's `[pledges] valuation_date` of

    amount * usd_per_unit * count[status]

where `usd_per_unit` is the `fx.csv` row of the row's currency with the latest date on or
before the valuation date (USD is 1). A row dated after the valuation date counts 0 and
says so in `resources.csv`. See docs/contributions.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.csv_input import file_label
from gcm_fund.inputs.policy import Pledges
from gcm_fund.inputs.policy_file import PolicyFile, find_toml_line
from gcm_fund.inputs.schema import CONTRIBUTION_FILE, FX_FILE, ContributionRow, FxRow

if TYPE_CHECKING:
    import pandas as pd

    from gcm_fund.inputs.load import InputTable, ProblemData

# resources.csv's columns (docs/contributions.md), in order.
RESOURCE_COLUMNS = ("source_id", "currency", "amount", "status", "date", "usd_per_unit",
                    "rate_date", "face_usd", "counted_usd", "note")


@dataclass(frozen=True)
class Resource:
    """One contribution valued: a row of resources.csv."""

    row: ContributionRow
    rate: FxRow | None  # None for USD (1 by definition) or an uncounted row with no rate
    counted_usd: float
    note: str = ""

    @property
    def usd_per_unit(self) -> float | None:
        """The rate used: 1 for USD, the fx.csv rate otherwise, None when there is none."""
        if self.row.currency == "USD":
            return 1.0
        return None if self.rate is None else self.rate.usd_per_unit

    @property
    def face_usd(self) -> float | None:
        """The amount in USD at the rate, before the count by status."""
        rate = self.usd_per_unit
        return None if rate is None else self.row.amount * rate


@dataclass(frozen=True)
class Valuation:
    """Every contribution valued at the valuation date: the pledges `B_f` they make, the
    rows of resources.csv and the rates used."""

    valuation_date: datetime.date
    count: dict[str, float]
    resources: tuple[Resource, ...]
    pledges: dict[str, float]  # B_f of each source with rows, unrounded
    rates: tuple[FxRow, ...] = field(default=())

    @property
    def face_usd(self) -> float:
        """Face value in USD of the rows dated on or before the valuation date."""
        return sum(r.face_usd or 0.0 for r in self.resources
                   if r.row.date <= self.valuation_date)

    @property
    def counted_usd(self) -> float:
        """What those rows count for: the sum of every `B_f` made from contributions."""
        return sum(r.counted_usd for r in self.resources)

    def table(self) -> pd.DataFrame:
        """resources.csv: one row per contribution, in contributions.csv's key order."""
        import pandas as pd

        return pd.DataFrame([{
            "source_id": r.row.source_id, "currency": r.row.currency,
            "amount": r.row.amount, "status": r.row.status,
            "date": r.row.date.isoformat(),
            "usd_per_unit": r.usd_per_unit,
            "rate_date": "" if r.rate is None else r.rate.date.isoformat(),
            "face_usd": r.face_usd, "counted_usd": r.counted_usd, "note": r.note,
        } for r in self.resources], columns=list(RESOURCE_COLUMNS))

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's `pledges` (docs/contributions.md)."""
        return {
            "valuation_date": self.valuation_date.isoformat(),
            "count": dict(self.count),
            "rates": [{"currency": r.currency, "usd_per_unit": r.usd_per_unit,
                       "date": r.date.isoformat(), "source": r.source} for r in self.rates],
            "face_usd": round(self.face_usd, 2),
            "counted_usd": round(self.counted_usd, 2),
        }


def rate_on(rates: Sequence[FxRow], currency: str, day: datetime.date) -> FxRow | None:
    """The rate of `currency` with the latest date on or before `day`, None when none is."""
    found = [r for r in rates if r.currency == currency and r.date <= day]
    return max(found, key=lambda r: r.date) if found else None


def value(contributions: Sequence[ContributionRow], rates: Sequence[FxRow],
          pledges: Pledges) -> tuple[Valuation, list[tuple[int, str]]]:
    """The valuation of `contributions` (in key order) under `[pledges]`, and the
    (row index, currency) of each counted row whose currency has no rate on or before the
    valuation date (those rows count 0 here; the caller reports them)."""
    day = pledges.valuation_date
    assert day is not None, "valued only with a valuation date"
    count = {status: pledges.count.of(status) for status in ("paid", "signed", "pledged")}
    resources: list[Resource] = []
    missing: list[tuple[int, str]] = []
    totals: dict[str, float] = {}
    for index, row in enumerate(contributions):
        rate = None if row.currency == "USD" else rate_on(rates, row.currency, day)
        totals.setdefault(row.source_id, 0.0)
        if row.date > day:
            resources.append(Resource(row, rate, 0.0, f"dated after the valuation date "
                                                       f"{day.isoformat()}: counts 0"))
            continue
        if row.currency != "USD" and rate is None:
            missing.append((index, row.currency))
            resources.append(Resource(row, None, 0.0))
            continue
        usd_per_unit = 1.0 if rate is None else rate.usd_per_unit
        counted = row.amount * usd_per_unit * count[row.status]
        totals[row.source_id] += counted
        resources.append(Resource(row, rate, counted))
    used = {r.rate.currency: r.rate for r in resources if r.rate is not None}
    valuation = Valuation(day, count, tuple(resources), totals,
                          tuple(used[c] for c in sorted(used)))
    return valuation, missing


def value_pledges(data: ProblemData, policy_file: PolicyFile) -> ProblemData:
    """The inputs with each source's `B_f` counted from its contributions (docs/contributions.md);
    the inputs unchanged when they have no contributions.csv.

    Raises `InputError` when the policy has no `[pledges] valuation_date`, or when a row
    counted has no rate on or before it (one problem per currency, naming it and the date).
    """
    table = data.contribution_table
    if table is None:
        return data
    policy = policy_file.policy
    policy_label = file_label(policy_file.path)
    if policy.pledges.valuation_date is None:
        raise InputError([Problem(
            policy_label, find_toml_line(policy_file.text, ("pledges",)),
            "pledges.valuation_date",
            f"required when the inputs have {CONTRIBUTION_FILE}: the day at which its "
            "rows are counted and its currencies valued (YYYY-MM-DD)")])
    rows = [row for row in table.rows if isinstance(row, ContributionRow)]
    rates = [] if data.fx_table is None else [r for r in data.fx_table.rows
                                              if isinstance(r, FxRow)]
    valuation, missing = value(rows, rates, policy.pledges)
    if missing:
        label = file_label(data.folder / CONTRIBUTION_FILE)
        day = valuation.valuation_date.isoformat()
        problems, seen = [], set()
        for index, currency in missing:
            if currency in seen:  # one problem per currency, at its first row
                continue
            seen.add(currency)
            why = (f"{FX_FILE} is missing" if data.fx_table is None
                   else f"{FX_FILE} has no {currency} row dated on or before it")
            problems.append(Problem(
                label, data.contribution_lines[index], "currency",
                f"no rate for {currency} on or before the valuation date {day} ({why})"))
        raise InputError(problems)
    ids = data.source_table["source_id"].tolist()
    pledged = [valuation.pledges.get(source_id, value_of) for source_id, value_of
               in zip(ids, data.source_table["pledge_usd"].tolist(), strict=True)]
    return replace(data, source_table=data.source_table.replaced("pledge_usd", pledged),
                   valuation=valuation)


def pledged_apart(data: ProblemData, sources: InputTable) -> frozenset[str]:
    """The sources with contributions whose `pledge_usd` in `sources` is no longer what
    the contributions count for: a transform set their pledge in USD."""
    if data.valuation is None:
        return frozenset()
    pledges = dict(zip(sources["source_id"].tolist(), sources["pledge_usd"].tolist(),
                       strict=True))
    return frozenset(s for s, counted in data.valuation.pledges.items()
                     if s in pledges and pledges[s] != counted)


def revalue(valuation: Valuation, contributions: InputTable, fx: InputTable | None
            ) -> Valuation:
    """`valuation` redone over other contribution rows, at the same date and counts."""
    pledges = Pledges.model_validate({"valuation_date": valuation.valuation_date,
                                      "count": valuation.count})
    rows = [row for row in contributions.rows if isinstance(row, ContributionRow)]
    rates = [] if fx is None else [r for r in fx.rows if isinstance(r, FxRow)]
    found, missing = value(rows, rates, pledges)
    assert not missing, "fewer rows than a valuation that found every rate"
    return found
