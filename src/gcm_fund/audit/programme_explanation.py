"""`explain --programme ID` and a State's programmes (docs/programmes.md), in words, from a run
folder's selection.csv and programme_allocations.csv alone."""

from __future__ import annotations

from pathlib import Path

from gcm_fund.audit.common import parse_numbers
from gcm_fund.audit.folder import RunFolder, open_run, read_as_damaged
from gcm_fund.errors import UsageError
from gcm_fund.inputs.schema import did_you_mean

SELECTION = ("programme_id", "name", "states", "targets", "budget_usd", "min_usd", "quality",
             "priority", "value_per_usd", "funded", "amount_usd", "reason")


def _usd(value: float) -> str:
    return f"USD {value:,.2f}"


def _selection(run: RunFolder) -> list[dict[str, str]]:
    if not run.has("selection.csv"):
        raise UsageError(f"{run.path}: no selection.csv: not a run of the programmes method")
    table = run.table("selection.csv", SELECTION)
    return [dict(zip(table.columns, row, strict=True)) for row in table.itertuples(index=False)]


def explain_programme(folder: Path | str, programme_id: str) -> list[str]:
    """One programme of a programmes run in words: what it asked, what it got, why."""
    with read_as_damaged(folder):
        run = open_run(folder)
        rows = {r["programme_id"]: r for r in _selection(run)}
        if programme_id not in rows:
            raise UsageError(f"programme {programme_id!r} is not in selection.csv"
                             f"{did_you_mean(programme_id, sorted(rows))}")
        row = rows[programme_id]
        given = run.table("programme_allocations.csv", ("source_id", "programme_id",
                                                         "amount_usd"))
    mine = given[given["programme_id"] == programme_id]
    amounts = parse_numbers(mine["amount_usd"])
    joint = ";" in row["states"]
    lines = [f"{programme_id} ({row['name']}): {'joint programme in' if joint else 'in'} "
             f"{row['states'].replace(';', ', ')}, target {row['targets'].replace(';', ', ')}",
             f"  asked {_usd(float(row['budget_usd']))}, at least "
             f"{_usd(float(row['min_usd']))}; quality {row['quality']}, priority "
             f"{row['priority'] or 'none'}, value per USD {row['value_per_usd']}"]
    word, _, why = row["reason"].partition(": ")
    if word == "funded":
        lines.append(f"  funded in full: {_usd(float(row['amount_usd']))}")
    elif word == "partial":
        lines.append(f"  funded in part: {why}")
    elif word == "not_eligible":
        lines.append(f"  not eligible: {why}")
    else:
        lines.append(f"  left out: {why}")
    for source, amount in zip(mine["source_id"], amounts, strict=True):
        lines.append(f"  from {source}: {_usd(float(amount))}")
    return lines


def state_programmes(folder: Path | str, iso3: str) -> list[str]:
    """The programmes that name a State, one line each (empty for another method)."""
    with read_as_damaged(folder):
        run = open_run(folder)
        if not run.has("selection.csv"):
            return []
        rows = [r for r in _selection(run) if iso3 in r["states"].split(";")]
    lines = [f"programmes naming {iso3}: {len(rows)}"]
    for r in rows:
        word = r["reason"].split(":", 1)[0]
        lines.append(f"  {r['programme_id']} ({r['targets']}, {word}): "
                     f"{_usd(float(r['amount_usd']))} of {_usd(float(r['budget_usd']))}")
    return lines
