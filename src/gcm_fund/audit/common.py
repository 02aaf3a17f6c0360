"""Small helpers shared by the audit commands: numbers from text cells, lists, agreement."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.writing import usd as usd  # re-exported: the audit commands' money format

_TWO_DECIMALS = re.compile(r"-?\d{1,16}\.\d\d")


def parse_numbers(column: pd.Series) -> np.ndarray:
    """Text cells as floats, NaN where a cell is not a finite number ('inf', '1e400')."""
    # to_numeric itself ignores surrounding spaces
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float).copy()
    values[~np.isfinite(values)] = np.nan
    return values


def text_cents(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cells written with exactly two decimals as whole cents, read from the text with no
    float in between (a double holds every cent only up to about USD 7e13), and which
    cells are so written (at most USD 1e16, so that sums stay in int64). Other cells
    count 0."""
    texts = column.astype(str).str.strip().to_numpy()
    written = np.array([bool(_TWO_DECIMALS.fullmatch(t)) for t in texts], dtype=bool)
    cents = np.array([int(t.replace(".", "")) if ok else 0 for t, ok in
                      zip(texts, written, strict=True)], dtype=np.int64)
    return cents, written


def cents_of(values_usd: np.ndarray) -> np.ndarray:
    """Each amount (below USD 1e16) in whole cents as it is written with two decimals,
    exactly."""
    return np.array([int(f"{float(v):.2f}".replace(".", "")) for v in values_usd],
                    dtype=np.int64)


def sum_cents(group: np.ndarray, cents: np.ndarray, size: int) -> np.ndarray:
    """Whole cents summed by group in integers: exact where a float sum drifts (USD 5e13
    in doubles is spaced by 0.8 cents)."""
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, group, cents)
    return out


def name_list(items: Iterable[str], shown: int = 5) -> str:
    """The first `shown` items joined by commas, and how many more."""
    items = list(items)
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


def agree(a: float | None, b: float | None, absolute: float) -> bool:
    """Whether two objective values agree within `absolute` or 1e-6 relative."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(absolute, 1e-6 * max(abs(a), abs(b)))


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b."10.7"': value}: nested keys joined by '.', a key holding a '.' quoted."""
    if isinstance(document, dict):
        flat: dict[str, Any] = {}
        for key, value in document.items():
            part = f'"{key}"' if "." in str(key) else str(key)
            flat.update(flatten(value, f"{prefix}.{part}" if prefix else part))
        return flat
    return {prefix: document}
