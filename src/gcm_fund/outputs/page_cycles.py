"""report.html's section on the earlier cycles (docs/cycles.md): how the follow-up of the
last rounds shaped this one. Each State's performance factor and what it rests on, what
became of the undisbursed balances, and the pacing rules with the States they hold.

Read from the run folder alone, like the rest of the page: the manifest's `cycle`,
`performance.csv`, the `pace_down` and `pace_up` rows of constraints.csv and the copied
policy.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pydantic import BaseModel

from gcm_fund.errors import UsageError
from gcm_fund.inputs.policy import Pacing, Performance
from gcm_fund.outputs.page_folder import Folder, Names, percent, usd, usd_full
from gcm_fund.outputs.page_sections import _cell, _table, esc

# A pacing row whose slack is at most this (USD) holds its State at the bound: the rules
# hold on the written amounts to the cent per allocation row (docs/outputs.md).
PACING_HELD_USD = 0.01


def cycle_section(folder: Folder, names: Names) -> str:
    """The section, or "" for a run without history.csv."""
    cycle = folder.manifest.get("cycle")
    if not isinstance(cycle, dict):
        return ""
    policy = folder.policy
    columns = ["iso3", "committed_usd", "disbursed_usd", "execution", "result", "factor"]
    performance = (folder.performance if folder.performance is not None
                   else pd.DataFrame(columns=columns))
    missing = [c for c in columns if c not in performance.columns]
    if missing:
        raise UsageError(f"{folder.path / 'performance.csv'}: lacks column "
                         f"{', '.join(missing)}: not as allocate writes it")
    window = cycle.get("window")
    window = window if isinstance(window, list) else []
    low = _setting(policy, Performance, "performance", "min_factor")
    high = _setting(policy, Performance, "performance", "max_factor")
    lead = [f"Cycle {esc(cycle.get('number'))} of the fund"]
    if len(window) == 2:
        lead.append(f", shaped by cycles {esc(window[0])} to {esc(window[1])}"
                    if window[0] != window[1] else f", shaped by cycle {esc(window[0])}")
    lead.append(". Each State's priority is scaled by its performance factor: its execution "
                "(disbursed of committed) against the fund's "
                f"({percent(_number(cycle.get('e_bar')))}) and its reported results, "
                f"kept between {low:g} and {high:g}. ")
    lead.append(f"{_carryover_text(cycle)} {_pacing_text(policy)} <code>gcm-fund "
                "review</code> sets out the record by target and region.")
    pacing = _pacing_table(folder)
    held = sorted({row.iso3 for row in pacing.itertuples() if row.held})
    factors = performance["factor"].to_numpy(dtype=float) if len(performance) else []
    counts = (f"{len(performance)} States have a record in the window: "
              f"{sum(f > 1 for f in factors)} raised, {sum(f < 1 for f in factors)} lowered "
              f"({sum(math.isclose(f, low) for f in factors)} at the least factor, "
              f"{sum(math.isclose(f, high) for f in factors)} at the most). ")
    counts += (f"Pacing holds {len(held)} State{'s' if len(held) != 1 else ''} at a bound: "
               + ", ".join(esc(names.of_state(s)) for s in held) + "."
               if held else "No pacing rule holds a State at its bound.")
    allocated = folder.allocations.groupby("iso3")["amount_usd"].sum()
    rows = []
    bounds = {(row.iso3, row.family): row for row in pacing.itertuples()}
    for row in sorted(performance.itertuples(), key=lambda r: (names.of_state(r.iso3), r.iso3)):
        least, most = bounds.get((row.iso3, "pace_down")), bounds.get((row.iso3, "pace_up"))
        now = float(allocated.get(row.iso3, 0.0))
        held_by = [word for word, bound in (("least", least), ("most", most))
                   if bound is not None and bound.held]
        rows.append("<tr>" + "".join([
            _cell(f"{names.of_state(row.iso3)} ({row.iso3})"),
            _cell(usd_full(row.committed_usd), row.committed_usd, num=True),
            _cell(usd_full(row.disbursed_usd), row.disbursed_usd, num=True),
            _cell(percent(row.execution), row.execution, num=True),
            _cell(percent(row.result, 0), row.result, num=True),
            _cell("–" if math.isnan(row.factor) else f"{row.factor:.3f}", row.factor,
                  num=True),
            _cell(usd_full(now), now, num=True),
            _cell(_range(least, most)),
            _cell(", ".join(f"at its {w}" for w in held_by) or "–"),
        ]) + "</tr>")
    span = ("" if len(window) != 2 else f" (cycle {window[0]})" if window[0] == window[1]
            else f" (cycles {window[0]}-{window[1]})")
    return ('<section id="cycles"><h2>Follow-up from earlier cycles</h2>'
            f'<p class="lead">{"".join(lead)}</p><p>{counts}</p>'
            + _table("cycles-table", [
                ("State", False), (f"committed USD{span}", True),
                (f"disbursed USD{span}", True),
                ("execution", True), ("results", True), ("factor", True),
                ("allocated now USD", True), ("pacing bounds", False),
                ("held by pacing", False)], rows)
            + "</section>")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _carryover_text(cycle: dict[str, object]) -> str:
    amount = _number(cycle.get("carryover_usd")) or 0.0
    if cycle.get("undisbursed") == "pool":
        return (f"The last cycle's undisbursed balances, {usd(amount)}, returned to the pool "
                "as the source carryover.")
    return (f"The last cycle's undisbursed balances, {usd(amount)}, stay with the States "
            "that hold them: each gap's fundable need falls by its balance.")


def _pacing_text(policy: dict[str, Any]) -> str:
    cut = _setting(policy, Pacing, "pacing", "max_cut")
    rise = _setting(policy, Pacing, "pacing", "max_rise")
    parts = []
    if isinstance(cut, int | float) and cut < 1:
        parts.append(f"loses at most {cut * 100:g} %")
    if isinstance(rise, int | float):
        parts.append(f"gains at most {rise * 100:g} %")
    if not parts:
        return "No pacing: a State's allocation may move freely from its last commitment."
    return ("Pacing: a State " + " and ".join(parts) + " of what it was committed in the "
            "last cycle, as far as it can receive money at all.")


def _setting(policy: dict[str, Any], model: type[BaseModel], table: str, key: str) -> Any:
    """A number of the copied policy, or its default from the policy's model (docs/policy.md)
    where the key is absent or not a number (a policy.toml edited after the run)."""
    section = policy.get(table)
    value = section.get(key) if isinstance(section, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return model.model_fields[key].default


def _pacing_table(folder: Folder) -> pd.DataFrame:
    """The pacing rows: iso3, family, rhs and whether the State is held at it. A
    constraints.csv without the columns is refused, naming it (the page never guesses)."""
    table = folder.pacing if folder.pacing is not None else pd.DataFrame(
        columns=["name", "family", "rhs", "slack"])
    missing = [c for c in ("name", "family", "rhs", "slack") if c not in table.columns]
    if missing:
        raise UsageError(f"{folder.path / 'constraints.csv'}: lacks column "
                         f"{', '.join(missing)}: not as allocate writes it")
    # `pace_down[KEN]`: the State is the name's one key.
    iso3 = [name.partition("[")[2].rstrip("]") for name in table["name"].astype(str)]
    return pd.DataFrame({"iso3": iso3, "family": table["family"].to_numpy(),
                         "rhs": pd.to_numeric(table["rhs"], errors="coerce").to_numpy(),
                         "held": (pd.to_numeric(table["slack"], errors="coerce").abs()
                                  <= PACING_HELD_USD).to_numpy()})


def _range(least: Any, most: Any) -> str:
    """A State's pacing bounds from its pace_down and pace_up rows (None where absent)."""
    low = usd_full(float(least.rhs)) if least is not None else "0"
    if most is None:
        return f"at least {low}"
    return f"{low} to {usd_full(float(most.rhs))}"
