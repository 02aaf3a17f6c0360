"""certify's check of docs/cycles.md's outputs: `performance.csv` and the manifest's `cycle`
against the figures `audit.cycles` recomputed from the copied history.csv."""

from __future__ import annotations

import math
from typing import Any

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.audit.cycles import Restated

CENT = 0.005 + 1e-9  # a two-decimal amount against the figure it rounds
RELATIVE = 1e-12  # a factor written with every digit against the one recomputed


def check_performance(c: Certifier) -> None:
    """performance.csv and the manifest's `cycle` say what the copied history gives."""
    run, cycle = c.run, c.rules.cycle
    problems: list[str] = []
    if cycle is None:
        if run.has("performance.csv"):
            problems.append("performance.csv: present, but the inputs have no history.csv")
        if run.raw("cycle") is not None:
            problems.append("manifest.json: cycle: present, but the inputs have no history.csv")
        c.add(Check("performance.csv", not problems, "no history: no performance.csv and no "
                    "cycle in the manifest", "exact", problems))
        return
    columns = tuple(cycle.table.columns)
    table = run.table("performance.csv", columns)
    if list(table["iso3"]) != list(cycle.table["iso3"]):
        problems.append(f"performance.csv: iso3: {list(table['iso3'])}, the copied "
                        f"history.csv gives {list(cycle.table['iso3'])}")
    else:
        for i, (written, expected) in enumerate(zip(table.to_dict("records"),
                                                    cycle.table.to_dict("records"),
                                                    strict=True)):
            for column in columns[1:]:
                problems.extend(_figure(f"performance.csv:{i + 2}", column, written[column],
                                        float(expected[column])))
    problems.extend(_manifest(run.raw("cycle"), cycle))
    c.add(Check("performance.csv", not problems,
                f"{len(cycle.table)} States' factors, U', the carry-over and the pacing "
                f"bounds recomputed from the copied history.csv (cycle {cycle.number})",
                "half a cent per amount, 1e-12 relative per factor", problems))


def _figure(where: str, column: str, text: Any, expected: float) -> list[str]:
    if math.isnan(expected):
        return [] if text == "" else [f"{where}: {column}: {text!r}, expected blank"]
    try:
        got = float(text)
    except ValueError:
        got = math.nan
    tolerance = CENT if column.endswith("_usd") else RELATIVE * max(1.0, abs(expected))
    if not abs(got - expected) <= tolerance:
        return [f"{where}: {column}: {text!r}, recomputed {expected:.15g}"]
    return []


def _manifest(entry: Any, cycle: Restated) -> list[str]:
    if not isinstance(entry, dict):
        return ["manifest.json: cycle: missing, and the inputs have history.csv"]
    expected = {"number": cycle.number, "window": list(cycle.window),
                "undisbursed": "keep" if cycle.keep else "pool"}
    problems = [f"manifest.json: cycle.{key}: {entry.get(key)!r}, expected {value!r}"
                for key, value in expected.items() if entry.get(key) != value]
    got = entry.get("carryover_usd")
    if not isinstance(got, int | float) or abs(float(got) - cycle.carryover_usd) > CENT:
        problems.append(f"manifest.json: cycle.carryover_usd: {got!r}, recomputed "
                        f"{cycle.carryover_usd:.2f}")
    return problems
