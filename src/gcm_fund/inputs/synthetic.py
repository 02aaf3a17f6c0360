"""Generated instances for benchmarks and tests: random but valid input folders.

Nothing here is data about real States: iso3 codes are made up (`S001`-style codes would
break the iso3 rule, so codes are three letters drawn in order: AAA, AAB, ...), and every
amount is drawn from a seeded generator.
"""

from __future__ import annotations

import csv
import itertools
import string
from pathlib import Path

import numpy as np

REGIONS = ("Africa", "Americas", "Asia", "Europe", "Oceania")
INCOME = ("LIC", "LMIC", "UMIC", "HIC")
TARGETS = ("10.7", "10.c", "8.8", "8.7", "5.2", "16.2", "1.3", "3.8", "4.1", "5.1", "8.5",
           "16.9", "17.3", "10.2", "11.1", "16.3", "16.a", "17.18", "10.4", "8.10")
ROLES = ("origin", "transit", "destination")


def iso3_codes(count: int) -> list[str]:
    """`count` distinct three-letter codes, in order."""
    letters = string.ascii_uppercase
    return ["".join(c) for c in itertools.islice(itertools.product(letters, repeat=3), count)]


def write_instance(folder: Path | str, n_states: int = 193, n_targets: int = 12,
                   n_sources: int = 100, seed: int = 0, gap_density: float = 1.0,
                   scale_usd: float = 1e6) -> Path:
    """Write states.csv, gaps.csv and sources.csv of a random valid instance to `folder`.

    `gap_density` is the share of (State, target) pairs that have a gap; amounts are of
    the order of `scale_usd`. Pledges add up to about a third of the total need, so the
    budget binds and the floor is below 1.
    """
    if not 1 <= n_targets <= len(TARGETS):
        raise ValueError(f"n_targets must be in 1..{len(TARGETS)}")
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    codes = iso3_codes(n_states)
    targets = TARGETS[:n_targets]

    income = rng.choice(INCOME, size=n_states, p=[0.2, 0.3, 0.3, 0.2])
    region = rng.choice(REGIONS, size=n_states)
    with open(folder / "states.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["iso3", "name", "region", "income_group", "roles", "ldc",
                         "debt_distress", "absorption_usd", "gni_usd"])
        for i, code in enumerate(codes):
            roles = ";".join(r for r in ROLES if rng.random() < 0.4)
            absorption = "" if rng.random() < 0.5 else f"{rng.uniform(2, 40) * scale_usd:.2f}"
            writer.writerow([code, f"State {code}", region[i], income[i], roles,
                             str(bool(income[i] == "LIC" and rng.random() < 0.6)).lower(),
                             str(bool(rng.random() < 0.05)).lower(), absorption,
                             f"{rng.uniform(1, 2000) * 1e3 * scale_usd:.2f}"])

    total_need = 0.0
    with open(folder / "gaps.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["iso3", "target", "need_usd"])
        for code in codes:
            for target in targets:
                if rng.random() < gap_density:
                    need = rng.lognormal(mean=1.5, sigma=1.0) * scale_usd
                    total_need += need
                    writer.writerow([code, target, f"{need:.2f}"])

    pledge_mean = max(total_need / 3 / max(n_sources, 1), scale_usd)
    with open(folder / "sources.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["source_id", "name", "kind", "instrument", "pledge_usd",
                         "grant_element", "targets", "regions", "income_groups",
                         "exclude_states", "max_state_share", "donor_iso3"])
        for j in range(n_sources):
            kind = rng.choice(["donor", "ifi", "private"], p=[0.6, 0.25, 0.15])
            loan = kind == "ifi"
            earmark_targets = ";".join(rng.choice(targets, size=2, replace=False)) \
                if rng.random() < 0.2 else ""
            earmark_regions = rng.choice(REGIONS) if loan and rng.random() < 0.7 else ""
            earmark_income = "LIC;LMIC" if rng.random() < 0.15 else ""
            excluded = rng.choice(codes) if rng.random() < 0.1 else ""
            share = f"{rng.uniform(0.05, 0.5):.3f}" if rng.random() < 0.3 else ""
            donor = rng.choice(codes) if kind == "donor" else ""
            writer.writerow([
                f"src{j:03d}", f"Source {j}", kind, "loan" if loan else "grant",
                f"{rng.uniform(0.2, 1.8) * pledge_mean:.2f}",
                f"{rng.uniform(0.2, 0.8):.3f}" if loan else "",
                earmark_targets, earmark_regions, earmark_income, excluded, share, donor,
            ])
    return folder
