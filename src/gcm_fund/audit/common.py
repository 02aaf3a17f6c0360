"""Small helpers shared by the audit commands: numbers from text cells, lists, agreement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..writing import usd as usd  # re-exported: the audit commands' money format


def parse_numbers(column: pd.Series) -> np.ndarray:
    """Text cells as floats, NaN where a cell is not a finite number ('inf', '1e400')."""
    # to_numeric itself ignores surrounding spaces
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float).copy()
    values[~np.isfinite(values)] = np.nan
    return values


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
