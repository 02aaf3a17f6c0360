"""Build `scenarios/mptf_scale/programmes.csv`: an ILLUSTRATIVE pipeline of concept notes.

The first six rows (`mptf01`-`mptf06`) are the Migration MPTF's first six joint programmes,
their countries and themes as its announcement names them; their budgets are not given
there, only their total (USD 12 M), so each is an illustrative USD 2 M, and the SDG target
is our reading of the theme:

- Migration MPTF, "United Nations Migration Start-Up Fund Kicks Off 12 Million USD Joint
  Programmes", https://mptfportal.uat.undp.org/news/united-nations-migration-start-fund-kicks-12-million-usd-joint-programmes
- UN Network on Migration, "UN Network on Migration Launches First Joint Programme at
  Border Region Between Guinea, Liberia, And Sierra Leone",
  https://migrationnetwork.un.org/ar/node/1833

Every other programme is invented: its States and targets are drawn (with a fixed seed)
from the scenario's own gaps.csv, which was built from /work/shared/data (see
scenarios/mptf_scale/meta.toml); budgets lie in USD 0.5-5 M, a quarter of the notes are
joint programmes of two or three States of one region, as the Migration MPTF's joint
programmes are. No invented row names a real programme.

    python scripts/build_programmes.py
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "mptf_scale"
# (id, name, States, target): countries and themes from the sources above.
NAMED = (
    ("mptf01", "Women migrants' exposure to sexual violence, exploitation and forced "
     "labour, South Africa (Migration MPTF; budget illustrative)", "ZAF", "5.2"),
    ("mptf02", "Families dependent on migrant relatives, Tajikistan (Migration MPTF; "
     "budget illustrative)", "TJK", "10.7"),
    ("mptf03", "Government capacity to support overseas workers, Philippines (Migration "
     "MPTF; budget illustrative)", "PHL", "8.8"),
    ("mptf04", "Evidence-based migration policy, North Macedonia (Migration MPTF; budget "
     "illustrative)", "MKD", "10.7"),
    ("mptf05", "Socio-economic integration of migrants through decent work, Chile and "
     "Mexico (Migration MPTF; budget illustrative)", "CHL;MEX", "8.8"),
    ("mptf06", "Border management, social cohesion and cross-border security, Guinea, "
     "Liberia and Sierra Leone (Migration MPTF; budget illustrative)", "GIN;LBR;SLE",
     "10.7"),
)
NAMED_BUDGET_USD = 2e6  # the six share the USD 12 M announced
NOTES = 66
JOINT_SHARE = 0.25
SEED = 24


def main() -> None:
    """Write the pipeline next to the scenario's other inputs."""
    rng = random.Random(SEED)
    with open(SCENARIO / "states.csv", newline="", encoding="utf-8") as handle:
        states = {row["iso3"]: row for row in csv.DictReader(handle)}
    with open(SCENARIO / "gaps.csv", newline="", encoding="utf-8") as handle:
        gaps = [(row["iso3"], row["target"]) for row in csv.DictReader(handle)
                if states[row["iso3"]]["income_group"] in ("LIC", "LMIC")]
    by_region_target: dict[tuple[str, str], list[str]] = defaultdict(list)
    for iso3, target in gaps:
        by_region_target[(states[iso3]["region"], target)].append(iso3)
    rows = [{"programme_id": pid, "name": name, "states": states_of, "targets": target,
             "budget_usd": f"{NAMED_BUDGET_USD:.0f}", "min_usd": "", "quality": "",
             "shares": ""} for pid, name, states_of, target in NAMED]
    for k in range(NOTES):
        iso3, target = rng.choice(gaps)
        members = [iso3]
        if rng.random() < JOINT_SHARE:
            others = [s for s in by_region_target[(states[iso3]["region"], target)]
                      if s != iso3]
            members += rng.sample(others, min(len(others), rng.choice([1, 2])))
        budget = round(rng.uniform(0.5, 5.0), 1) * 1e6
        minimum = round(budget * rng.choice([0.6, 0.8, 1.0]), -4)
        kind = "joint" if len(members) > 1 else "national"
        rows.append({
            "programme_id": f"cn{k + 1:03d}",
            "name": f"Illustrative {kind} concept note {k + 1} ({', '.join(sorted(members))}, "
                    f"target {target})",
            "states": ";".join(sorted(members)),
            "targets": target,
            "budget_usd": f"{budget:.0f}",
            "min_usd": f"{minimum:.0f}",
            "quality": f"{rng.uniform(0.5, 1.0):.2f}",
            "shares": "",
        })
    with open(SCENARIO / "programmes.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
