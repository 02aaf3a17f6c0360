"""The programmes method's tables and manifest figures (docs/programmes.md): `selection.csv`,
`programme_allocations.csv`, `relaxation_duals.csv` and the manifest's `objective`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.methods.programmes import Selection
from gcm_fund.model.lp import SCALE_USD

# A programme within two cents plus 1e-7 of its budget (its rows' rounding to cents, and a
# solver's values read back to 8 digits) is funded in full; certify holds it to the same.
FULL_CENTS = 0.02
FULL_RELATIVE = 1e-7
TIGHT = 1e-9  # a row within this (relative, at least 1e-9 USD millions) binds
SHOWN_RULES = 3  # the binding rules a `partial` reason names


def _usd(value_millions: float) -> str:
    return f"USD {value_millions * SCALE_USD:,.2f}"


def _binding(selection: Selection, p: int) -> list[str]:
    """The rows that hold programme p's columns and bind at the selection (size rows
    left out): what stopped it below its budget."""
    model = selection.model
    values = np.zeros(model.n_cols)
    values[: model.n_xp] = selection.x_prog
    values[model.n_xp:] = selection.funded[model.y_prog]
    lhs = model.matrix @ values
    tol = TIGHT * np.maximum(1.0, np.abs(lhs))
    tight = (lhs >= model.row_hi - tol) | (lhs <= model.row_lo + tol)
    columns = np.nonzero(model.col_prog == p)[0]
    touches = np.asarray(abs(model.matrix[:, columns]).sum(axis=1)).ravel() > 0
    rows = np.nonzero(tight & touches)[0]
    return [model.row_names[i] for i in rows if not model.row_names[i].startswith("size_")]


def reason_of(selection: Selection, p: int) -> str:
    """`selection.csv`'s reason: one word (funded, partial, not_eligible, left_out), then
    why."""
    model = selection.model
    if p in model.not_eligible:
        return f"not_eligible: {model.not_eligible[p]}"
    amount, budget = selection.amount[p], model.budget[p]
    if selection.funded[p]:
        amount_usd, budget_usd = round(amount * SCALE_USD, 2), round(budget * SCALE_USD, 2)
        if amount_usd >= budget_usd - FULL_CENTS - FULL_RELATIVE * budget_usd - 1e-6:
            return "funded"
        rules = _binding(selection, p)
        stopped = f"; stopped by {', '.join(rules[:SHOWN_RULES])}" if rules else ""
        return f"partial: {_usd(amount)} of {_usd(budget)}{stopped}"
    if p not in selection.value_loss:
        return (f"left_out: not costed (only the {len(selection.value_loss)} unfunded "
                "programmes of highest value per USD are)")
    loss = selection.value_loss[p]
    if not np.isfinite(loss):
        return "left_out: no selection that funds it at its minimum meets the rules"
    displaced = selection.displaced.get(p, [])
    return (f"left_out: funding it at its minimum {_usd(model.minimum[p])} would lower the "
            f"value by {loss * SCALE_USD:,.2f}"
            + (f", displacing {';'.join(displaced)}" if displaced else ""))


def selection_table(selection: Selection) -> pd.DataFrame:
    """`selection.csv`, one row per programme in id order."""
    model = selection.model
    loss = [selection.value_loss.get(p) for p in range(len(model.ids))]
    return pd.DataFrame({
        "programme_id": model.ids,
        "name": model.names,
        "states": [";".join(s) for s in model.states],
        "targets": [";".join(t) for t in model.targets],
        "budget_usd": model.budget * SCALE_USD,
        "min_usd": model.minimum * SCALE_USD,
        "quality": model.quality,
        "priority": model.priority,
        "value_per_usd": model.value,
        "funded": selection.funded,
        "amount_usd": np.round(selection.amount * SCALE_USD, 2),
        "value_loss": [np.nan if v is None or not np.isfinite(v) else v * SCALE_USD
                       for v in loss],
        "displaced": [";".join(selection.displaced.get(p, [])) for p in range(len(model.ids))],
        "reason": [reason_of(selection, p) for p in range(len(model.ids))],
    })


def programme_allocation_table(selection: Selection) -> pd.DataFrame:
    """`programme_allocations.csv`: x[f,p] rounded to cents, the zero rows left out."""
    model = selection.model
    amount = np.round(selection.x_prog * SCALE_USD, 2)
    keep = amount > 0
    ids = model.lp.data.source_table["source_id"]
    table = pd.DataFrame({
        "source_id": ids[model.col_source[keep]],
        "programme_id": np.array(model.ids, dtype=object)[model.col_prog[keep]],
        "amount_usd": amount[keep],
    })
    return table.sort_values(["source_id", "programme_id"], kind="stable").reset_index(drop=True)


def relaxation_table(selection: Selection) -> pd.DataFrame:
    """`relaxation_duals.csv`: the relaxation's non-zero row duals."""
    model = selection.model
    dual = selection.relaxation_duals[: len(model.row_names)]
    keep = np.abs(dual) > 0
    return pd.DataFrame({"name": np.array(model.row_names, dtype=object)[keep],
                         "dual": dual[keep]})


def add_programme_tables(tables: Any, selection: Selection) -> None:
    """Set the programme tables of a run's `RunTables`."""
    tables.selection = selection_table(selection)
    # docs/programmes.md: no marginal value under programmes (a MIP's duals price nothing).
    tables.sources_summary["marginal_value"] = np.nan
    tables.programme_allocations = programme_allocation_table(selection)
    tables.relaxation_duals = relaxation_table(selection)


def programme_objective(selection: Selection) -> dict[str, Any]:
    """The manifest's `objective` under programmes (with `floor` and `weighted`)."""
    return {
        "method": "programmes",
        "value": round(selection.value * SCALE_USD, 6),
        "value_bound": round(selection.value_bound * SCALE_USD, 6),
        "funded": int(selection.funded.sum()),
        "placed_usd": round(selection.placed * SCALE_USD, 2),
    }
