"""Where the levels' column and rows sit in the extended LP (docs/model.md): read by the
filling, the split and the levels' stages alike, so that none of them imports another
for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Layout:
    """Where the level column and rows sit in the extended LP."""

    level_col: int
    gaps: np.ndarray  # E: gap indices, in row order
    level_rows: np.ndarray  # per gap of E
    held_rows: np.ndarray  # per gap of E
    ceiling_rows: np.ndarray  # per gap of E: sum_f x <= its level, after stage 2
    allocated_row: int
    burden_row: int | None
    gap_rows: np.ndarray  # per gap of E: its `gap[s,t]` row
    cap: float  # Lcap: the highest level any gap of E can need (1 / min pi), in `unit`s
    scale: np.ndarray  # pi * U / unit, per gap of E (scaled units)
    relaxed: np.ndarray  # a level row's right-hand side once its gap stopped
    position: np.ndarray  # by gap of the data: its position in E, -1 outside
    # The LP's column is L x unit, a power of two amid the priorities, so that
    # priorities of 1e12 (or 1e-12) give levels near 1 to the solver; dividing by a power
    # of two is exact, so the levels and duals written are the same numbers in L.
    unit: float = 1.0
