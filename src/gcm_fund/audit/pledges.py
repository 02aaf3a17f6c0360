"""certify's restatement of docs/contributions.md: every `B_f` counted again from the copied
`contributions.csv` and `fx.csv`, and `resources.csv` and the manifest's `pledges` checked
against them.

Deliberately separate from `contributions.py` (the engine's side): the rule is restated
here from docs/contributions.md, so that a fault in one is caught by the other.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import replace
from typing import Any

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import ContributionRow, FxRow

# What a two-decimal amount may differ by from the figure it rounds (half a cent), and a
# rate written with 12 significant digits from the rate read.
CENT = 0.005 + 1e-9
RATE_RELATIVE = 1e-11


def _rate(fx: list[FxRow], currency: str, day: datetime.date) -> FxRow | None:
    best: FxRow | None = None
    for row in fx:
        if row.currency == currency and row.date <= day and (best is None
                                                             or row.date > best.date):
            best = row
    return best


def counted_pledges(data: ProblemData, policy: Policy) -> ProblemData:
    """The copied inputs with each contributing source's `B_f` = the sum over its rows
    dated on or before the valuation date of amount x rate x count[status]; the inputs as
    they are without contributions.csv. Raises `ValueError` naming what is missing."""
    if data.contribution_table is None:
        return data
    day = policy.pledges.valuation_date
    if day is None:
        raise ValueError("policy.toml: pledges.valuation_date is missing, and the inputs "
                         "have contributions.csv")
    fx = [] if data.fx_table is None else list(data.fx_table.rows)
    pledges: dict[str, float] = {}
    for row in data.contribution_table.rows:
        assert isinstance(row, ContributionRow)
        pledges.setdefault(row.source_id, 0.0)
        if row.date > day:
            continue
        if row.currency == "USD":
            usd_per_unit = 1.0
        else:
            found = _rate(fx, row.currency, day)  # type: ignore[arg-type]
            if found is None:
                raise ValueError(f"inputs/fx.csv: no rate for {row.currency} on or before "
                                 f"{day.isoformat()}")
            usd_per_unit = found.usd_per_unit
        pledges[row.source_id] += row.amount * usd_per_unit * policy.pledges.count.of(row.status)
    column = [pledges.get(s, p) for s, p in zip(data.source_table["source_id"].tolist(),
                                                data.source_table["pledge_usd"].tolist(),
                                                strict=True)]
    return replace(data, source_table=data.source_table.replaced("pledge_usd", column))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_resources(c: Certifier) -> None:
    """resources.csv and the manifest's `pledges` say what the copied contributions and
    rates give: each row's rate, its date, face and counted USD, the totals and the rates."""
    run, data, policy = c.run, c.rules.data, c.rules.policy
    problems: list[str] = []
    if data.contribution_table is None:
        if run.has("resources.csv"):
            problems.append("resources.csv: present, but the inputs have no contributions.csv")
        if run.raw("pledges") is not None:
            problems.append("manifest.json: pledges: present, but the inputs have no "
                            "contributions.csv")
        c.add(Check("resources.csv", not problems, "no contributions: no resources.csv and "
                    "no pledges in the manifest", "exact", problems))
        return
    day = policy.pledges.valuation_date
    assert day is not None  # counted_pledges refused the inputs otherwise
    count = policy.pledges.count
    fx = [] if data.fx_table is None else list(data.fx_table.rows)
    table = run.table("resources.csv", ("source_id", "currency", "amount", "status", "date",
                                        "usd_per_unit", "rate_date", "face_usd",
                                        "counted_usd", "note"))
    rows = list(data.contribution_table.rows)
    if len(table) != len(rows):
        problems.append(f"resources.csv: {len(table)} rows, contributions.csv has {len(rows)}")
    face_total = counted_total = 0.0
    used: dict[str, FxRow] = {}
    for i, (row, written) in enumerate(zip(rows, table.to_dict("records"), strict=False)):
        assert isinstance(row, ContributionRow)
        where = f"resources.csv:{i + 2}"
        rate = None if row.currency == "USD" else _rate(fx, row.currency, day)  # type: ignore[arg-type]
        if rate is not None:
            used[rate.currency] = rate
        usd_per_unit = 1.0 if row.currency == "USD" else (rate.usd_per_unit if rate else None)
        counted = row.date <= day
        face = None if usd_per_unit is None else row.amount * usd_per_unit
        expected_counted = (face or 0.0) * count.of(row.status) if counted else 0.0
        if counted:
            face_total += face or 0.0
            counted_total += expected_counted
        same = {"source_id": row.source_id, "currency": row.currency, "status": row.status,
                "date": row.date.isoformat(),
                "rate_date": "" if rate is None else rate.date.isoformat()}
        for column, value in same.items():
            if written[column] != value:
                problems.append(f"{where}: {column}: {written[column]!r}, the copied inputs "
                                f"give {value!r}")
        figures: tuple[tuple[str, float | None, float], ...] = (
            ("amount", row.amount, CENT), ("face_usd", face, CENT),
            ("counted_usd", expected_counted, CENT),
            ("usd_per_unit", usd_per_unit, RATE_RELATIVE * (usd_per_unit or 0.0)))
        for column, figure, tolerance in figures:
            got = _number(written[column])
            if figure is None:
                if written[column] != "":
                    problems.append(f"{where}: {column}: {written[column]!r}, expected blank "
                                    "(no rate)")
            elif got is None or abs(got - figure) > tolerance:
                problems.append(f"{where}: {column}: {written[column]!r}, recomputed "
                                f"{figure:.12g}")
        if not counted and not written["note"]:
            problems.append(f"{where}: note: blank, but the row is dated after the valuation "
                            f"date {day.isoformat()} and counts 0")
    problems.extend(_manifest_problems(run.raw("pledges"), day, count.model_dump(),
                                       [used[k] for k in sorted(used)], face_total,
                                       counted_total))
    c.add(Check("resources.csv", not problems,
                f"{len(rows)} contributions valued at {day.isoformat()} from the copied "
                "contributions.csv and fx.csv: every B_f, rate and total recomputed",
                "half a cent per amount, 1e-11 relative per rate", problems))


def _manifest_problems(entry: Any, day: datetime.date, count: dict[str, float],
                       rates: list[FxRow], face: float, counted: float) -> list[str]:
    if not isinstance(entry, dict):
        return ["manifest.json: pledges: missing, and the inputs have contributions.csv"]
    problems = []
    if entry.get("valuation_date") != day.isoformat():
        problems.append(f"manifest.json: pledges.valuation_date: "
                        f"{entry.get('valuation_date')!r}, the policy's is {day.isoformat()!r}")
    if entry.get("count") != count:
        problems.append(f"manifest.json: pledges.count: {entry.get('count')!r}, the policy's "
                        f"is {count!r}")
    expected = [{"currency": r.currency, "usd_per_unit": r.usd_per_unit,
                 "date": r.date.isoformat(), "source": r.source} for r in rates]
    if entry.get("rates") != expected:
        problems.append(f"manifest.json: pledges.rates: {entry.get('rates')!r}, fx.csv "
                        f"gives {expected!r}")
    for key, value in (("face_usd", face), ("counted_usd", counted)):
        got = entry.get(key)
        if isinstance(got, bool) or not isinstance(got, int | float) \
                or abs(float(got) - value) > CENT:
            problems.append(f"manifest.json: pledges.{key}: {got!r}, recomputed {value:.2f}")
    return problems
