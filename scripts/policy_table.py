"""The bundled policies side by side: who gets the money, at face value and in grant
equivalents, on the bundled example and on scenarios/mptf_scale.

Run from the repository's root: `python scripts/policy_table.py` prints the Markdown table
that the README shows (each policy solved with HiGHS into a temporary folder).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path
from statistics import median

from gcm_fund import api

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("baseline", "ldc_priority", "flat_responsibility")
SCENARIOS = {"example": ROOT / "inputs", "mptf_scale": ROOT / "scenarios" / "mptf_scale"}
GROUPS = ("LIC", "LMIC", "UMIC")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def figures(inputs: Path, policy: str) -> dict[str, float]:
    """One run's shares and medians, read from its written folder."""
    with tempfile.TemporaryDirectory() as tmp:
        # The table shows no donor figure: their re-solves would only cost time.
        run = api.allocate(inputs, ROOT / "models" / f"{policy}.toml", donor_figures="none")
        folder = api.write(run, Path(tmp) / "run")
        states = _rows(folder / "states_summary.csv")
        coverage = _rows(folder / "coverage.csv")
    income = {s["iso3"]: s["income_group"] for s in states}
    total = sum(float(s["allocated_usd"]) for s in states)
    total_ge = sum(float(s["grant_equivalent_usd"]) for s in states)
    out: dict[str, float] = {"total_m": total / 1e6, "total_ge_m": total_ge / 1e6}
    for g in GROUPS:
        mine = [s for s in states if s["income_group"] == g]
        out[f"{g} share"] = sum(float(s["allocated_usd"]) for s in mine) / total
        out[f"{g} ge share"] = sum(float(s["grant_equivalent_usd"]) for s in mine) / total_ge
        cov = [float(c["coverage"]) for c in coverage
               if income.get(c["iso3"]) == g and c["eligible"] == "true" and c["coverage"]]
        out[f"{g} median coverage"] = median(cov) if cov else float("nan")
    ldc = [s for s in states if s["ldc"] == "true"]
    out["LDC share"] = sum(float(s["allocated_usd"]) for s in ldc) / total
    out["LDC ge share"] = sum(float(s["grant_equivalent_usd"]) for s in ldc) / total_ge
    risky = [s for s in states if s["debt_risk"] in ("high", "distress")]
    out["loans to high risk"] = sum(float(s["loans_usd"]) for s in risky)
    lic = [s for s in states if s["income_group"] == "LIC"]
    lic_money = sum(float(s["allocated_usd"]) for s in lic)
    out["LIC loan share"] = (sum(float(s["loans_usd"]) for s in lic) / lic_money
                             if lic_money else float("nan"))
    return out


def main() -> None:
    columns = [(name, policy) for name in SCENARIOS for policy in POLICIES]
    results = {c: figures(SCENARIOS[c[0]], c[1]) for c in columns}
    print("| | " + " | ".join(f"{p} ({n})" for n, p in columns) + " |")
    print("|---|" + "---:|" * len(columns))

    def row(label: str, key: str, form: str) -> None:
        print(f"| {label} | " + " | ".join(form.format(results[c][key]) for c in columns)
              + " |")

    row("allocated, USD M (face value)", "total_m", "{:,.1f}")
    row("grant equivalent, USD M", "total_ge_m", "{:,.1f}")
    for g in GROUPS:
        row(f"{g} share of money, face value", f"{g} share", "{:.1%}")
        row(f"{g} share of grant equivalents", f"{g} ge share", "{:.1%}")
    row("LDC share of money", "LDC share", "{:.1%}")
    row("LDC share of grant equivalents", "LDC ge share", "{:.1%}")
    for g in GROUPS:
        row(f"{g} gaps' median coverage", f"{g} median coverage", "{:.1%}")
    row("loans to LICs, share of their money", "LIC loan share", "{:.1%}")
    row("loans to States at high risk or in distress, USD", "loans to high risk", "{:,.0f}")


if __name__ == "__main__":
    sys.exit(main())
