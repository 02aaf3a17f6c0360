"""Who gets a donor's next dollar (docs/commands.md): a sweep's amounts by State or by target, and
the additionality of the swept sources' extra money.

Between two neighbouring pledge levels B1 < B2 of the swept sources (each moved by
dB = B2 - B1, so the fund gets n x dB more, n the number of swept sources):

- `reaches` = the change of the money (from every source) in the gaps the swept sources
  can fund (their earmarks and eligibility), per extra USD pledged;
- `elsewhere` = the change in every other gap, per extra USD;
- `additionality` = `reaches`; `displaced` = `placed - reaches`, where `placed` is the
  change of all money placed per extra USD: the part of the extra money that took the
  place of other sources' money in the earmarked gaps, which then went elsewhere.

A source that may fund every gap has additionality = placed (1 when its money is all
placed); an earmarked source whose gaps are already held where they stand (full, or
capped) has additionality 0 and displaces all it places.

Files beside the sweep CSV `F.csv`: `F.by_state.csv` (`pledge_usd,iso3,amount_usd,
change_usd`) or `F.by_target.csv` (`pledge_usd,target,...`), one row per key with money
at some level, and `F.additionality.csv` (`pledge_below_usd,pledge_above_usd,placed,
additionality,displaced,elsewhere`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcm_fund.errors import UsageError
from gcm_fund.solvers.backend import OPTIMAL
from gcm_fund.writing import amount, real

BY = ("state", "target")
ADDITIONALITY_COLUMNS = ("pledge_below_usd", "pledge_above_usd", "placed", "additionality",
                         "displaced", "elsewhere")


def check_by(by: str | None) -> None:
    """`--by` must be `state` or `target` (or absent)."""
    if by is not None and by not in BY:
        raise UsageError(f"--by: got {by!r}, expected one of {', '.join(BY)}")


def by_paths(out: Path | str, by: str) -> list[Path]:
    """The companion files of `--by`: amounts by key, and the additionality."""
    out = Path(out)
    return [out.with_suffix(f".by_{by}.csv"), out.with_suffix(".additionality.csv")]


def by_rows(result: Any, by: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of `F.by_<by>.csv`: every key's amount at every feasible level,
    and its change from the level before (blank at the first)."""
    key_of = result.extra["gap_iso3" if by == "state" else "gap_target"]
    keys = sorted(set(key_of.tolist()))
    index = {k: i for i, k in enumerate(keys)}
    codes = np.array([index[k] for k in key_of.tolist()], dtype=np.int64)
    levels = [lv for lv in result.levels if lv.status == OPTIMAL and lv.gap_amounts is not None]
    table = np.array([np.bincount(codes, weights=lv.gap_amounts, minlength=len(keys))
                      for lv in levels]).reshape(len(levels), len(keys))
    funded = (np.abs(table) >= 0.005).any(axis=0)
    rows = []
    for i, level in enumerate(levels):
        for k in np.nonzero(funded)[0]:
            change = "" if i == 0 else amount(table[i, k] - table[i - 1, k])
            rows.append([amount(level.pledge_usd), keys[k], amount(table[i, k]), change])
    return ["pledge_usd", "iso3" if by == "state" else "target", "amount_usd", "change_usd"], rows


def additionality(result: Any) -> list[tuple[float, float, float, float, float, float]]:
    """Per pair of neighbouring feasible levels: (B1, B2, placed, additionality,
    displaced, elsewhere), each figure per extra USD pledged."""
    inside = np.zeros(len(result.extra["gap_iso3"]), dtype=bool)
    inside[result.extra["fundable_gaps"]] = True
    n = len(result.source_ids)
    levels = [lv for lv in result.levels if lv.status == OPTIMAL and lv.gap_amounts is not None]
    found = []
    for low, high in zip(levels, levels[1:], strict=False):
        extra = n * (high.pledge_usd - low.pledge_usd)
        if extra <= 0:
            continue
        change = high.gap_amounts - low.gap_amounts
        reaches = float(change[inside].sum()) / extra
        elsewhere = float(change[~inside].sum()) / extra
        placed = reaches + elsewhere
        found.append((low.pledge_usd, high.pledge_usd, placed, reaches, placed - reaches,
                      elsewhere))
    return found


def additionality_rows(result: Any) -> list[list[str]]:
    """The rows of `F.additionality.csv`, formatted."""
    return [[amount(b1), amount(b2), *(real(round(v, 9)) for v in figures)]
            for b1, b2, *figures in additionality(result)]
