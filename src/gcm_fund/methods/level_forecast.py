"""Where the rising gaps stop by rules of their own, in closed form, and the duals that
prove it (docs/model.md).

Progressive filling finds one distinct level per LP when each step only finds the next
stop, and most such steps are a State reaching its absorption cap (docs/performance.md
counts them). Most stops are local: a gap fills (`gap[s,t]`), or a State's cap
(`absorb[s]`, `state_share[s]`) fills as its gaps rise together. Those levels follow
from the caps' right-hand sides and the gaps' needs alone: with its rising gaps at
`clip(pi U L, floor, U)` and its stopped ones at their holds, a State's total reaches its
cap C at the level where that piecewise linear sum equals C. That is an upper bound on L
whatever the other rules do, proved by a dual built by hand (`Forecast.proof`): the cap
row, and the level, held or floor row of each of the State's gaps, all with the same
weight. Whether the level is also reached (no rule shared between States stops the water
earlier) is what one LP checks for many forecast stops at once (see `levels.fill`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcm_fund.model.lp import LinearProgram

# Families whose rows are sum over every allocation of a set of gaps <= a cap.
CAP_FAMILIES = ("absorb", "state_share")
# A hand-built dual must bound L by its forecast level within this (relative); beyond it,
# the forecast is dropped and the LP finds that stop instead.
PROOF_TOLERANCE = 1e-9


@dataclass
class Caps:
    """The cap rows of the extended LP and the gaps of E each one sums over."""

    rows: np.ndarray
    indptr: np.ndarray  # members of cap k: members[indptr[k]:indptr[k + 1]]
    members: np.ndarray  # positions in E

    def of(self, k: int) -> np.ndarray:
        """The positions in E of cap k's gaps."""
        return self.members[self.indptr[k]:self.indptr[k + 1]]


def cap_rows(ext: LinearProgram, position: np.ndarray, n_e: int) -> Caps:
    """The rows of `CAP_FAMILIES` that hold every allocation column of each of their gaps
    with coefficient 1 (only such a row has the simple proof of `Forecast.proof`).
    `position`: each gap's position in E (-1 outside), `n_e` the size of E."""
    blocks = [b for b in ext.blocks if b.family in CAP_FAMILIES]
    rows = np.concatenate([np.arange(b.start, b.stop) for b in blocks]) if blocks else \
        np.zeros(0, dtype=np.int64)
    block = ext.rows()[rows][:, : ext.n_x].tocoo()
    gap_of_entry = position[ext.var_gap[block.col]]
    columns_of_gap = np.bincount(position[ext.var_gap], minlength=n_e)
    pair = block.row.astype(np.int64) * n_e + gap_of_entry
    pairs, count = np.unique(pair, return_counts=True)
    row_of_pair, gap_of_pair = pairs // n_e, pairs % n_e
    whole = count == columns_of_gap[gap_of_pair]
    ones = np.ones(len(rows), dtype=bool)
    np.logical_and.at(ones, block.row, block.data == 1.0)
    np.logical_and.at(ones, row_of_pair, whole)
    keep = np.nonzero(ones & (np.bincount(row_of_pair, minlength=len(rows)) > 0))[0]
    mask = np.isin(row_of_pair, keep)
    new_index = np.full(len(rows), -1)
    new_index[keep] = np.arange(len(keep))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(new_index[row_of_pair[mask]],
                                                        minlength=len(keep)))])
    return Caps(rows=rows[keep], indptr=indptr, members=gap_of_pair[mask])


@dataclass
class Forecast:
    """The level at which each rising gap of E stops by its own rules, where known.

    Levels are in the LP's units (`Layout.unit`); amounts in scaled USD. `level` is inf
    where no local rule stops the gap; `cap` the cap (index into `Caps`) that stops it, -1
    where the gap fills first (or nothing local stops it).
    """

    level: np.ndarray
    cap: np.ndarray


class Forecaster:
    """Forecasts local stops and proves them, for one extended LP."""

    def __init__(self, ext: LinearProgram, caps: Caps, scale: np.ndarray, fundable: np.ndarray,
                 floor: np.ndarray, rows: dict[str, np.ndarray], level_col: int,
                 z_col: int | None) -> None:
        self.ext = ext
        self.caps = caps
        self.scale = scale  # pi U / unit by gap of E: amount per unit of L
        self.fundable = fundable  # U by gap of E
        self.floor = floor  # the floor's amount z_lo U by gap of E (0 outside G)
        self.rows = rows  # "level", "held", "gap", "floor" (-1 where none): row by gap of E
        self.level_col = level_col
        self.z_col = z_col
        self.full = fundable / scale
        self._csr = ext.rows()
        self._gap_of_held = np.full(ext.n_rows, -1)  # the gap of E a held row holds
        self._gap_of_held[rows["held"]] = np.arange(len(scale))

    def transpose(self, row_dual: np.ndarray) -> np.ndarray:
        """A^T y over every column of the extended LP."""
        return np.asarray(self._csr.T @ row_dual)

    def forecast(self, rising: np.ndarray, held_amount: np.ndarray, rhs: np.ndarray,
                 above: float) -> Forecast:
        """Each rising gap's local stop above the level `above`, given the amounts the
        stopped gaps are held at (`held_amount`, NaN where not stopped)."""
        level = np.where(rising, self.full, np.inf)
        cap_of = np.full(len(level), -1)
        held = np.isfinite(held_amount)
        for k, row in enumerate(self.caps.rows):
            members = self.caps.of(k)
            up = members[rising[members]]
            limit = float(rhs[row])
            if len(up) == 0 or not np.isfinite(limit):
                continue
            kept = members[held[members]]
            base = float(np.maximum(held_amount[kept], self.floor[kept]).sum())
            stop = self._cap_level(up, limit - base)
            if stop is None or stop <= above:
                continue
            at = np.maximum(stop, self.floor[up] / self.scale[up])
            sooner = at < level[up]
            level[up[sooner]] = at[sooner]
            cap_of[up[sooner]] = k
        return Forecast(level=level, cap=cap_of)

    def _cap_level(self, up: np.ndarray, room: float) -> float | None:
        """The level at which the rising gaps `up`, each at clip(scale L, floor, U), sum to
        `room`; None when they fit whole."""
        scale, low, high = self.scale[up], self.floor[up], self.fundable[up]
        points = np.unique(np.concatenate([low / scale, self.full[up]]))
        total = np.clip(scale[None, :] * points[:, None], low, high).sum(axis=1)
        over = np.nonzero(total > room)[0]
        if len(over) == 0 or over[0] == 0:
            return None  # fits whole, or the floors alone exceed the room (not forecast)
        i = int(over[0])
        span = total[i] - total[i - 1]
        return float(points[i - 1] + (room - total[i - 1]) / span * (points[i] - points[i - 1]))

    def proof(self, level: float, stopping: np.ndarray, forecast: Forecast, rising: np.ndarray,
              held_amount: np.ndarray, rhs: np.ndarray, z_bounds: tuple[float, float] | None
              ) -> tuple[np.ndarray, np.ndarray] | None:
        """Duals (rows, d L / d rhs) that bound the step's L by `level` with a positive dual
        on the level row of every gap of `stopping`; None when the hand-built duals do not
        prove it (the LP then finds these stops).

        `rising`, `held_amount`: the gaps rising and the holds in the step (stopped earlier
        in the same forecast included). Each stop is proved on its own (a full gap by its
        `gap` row; a cap by its row with the same weight on each of its gaps' rows) and the
        step's dual is their average: a convex combination of duals that each bound L by
        `level` bounds it by `level` too.
        """
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        filled = stopping[forecast.cap[stopping] < 0]
        for g in filled:
            weight = 1.0 / self.scale[g]
            parts.append((np.array([self.rows["level"][g], self.rows["gap"][g]]),
                          np.array([-weight, weight])))
        for k in np.unique(forecast.cap[stopping]):
            if k < 0:
                continue
            part = self._cap_proof(int(k), level, stopping, rising, held_amount)
            if part is None:
                return None
            parts.append(part)
        if not parts:
            return None
        rows = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts]) / len(parts)
        order = np.argsort(rows, kind="stable")
        rows, first = np.unique(rows[order], return_index=True)
        values = np.add.reduceat(values[order], first)
        bound = self._bound(rows, values, held_amount, rhs, z_bounds)
        if bound is None or abs(bound - level) > PROOF_TOLERANCE * max(abs(level), 1e-12):
            return None
        return rows, values

    def _cap_proof(self, k: int, level: float, stopping: np.ndarray, rising: np.ndarray,
                   held_amount: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        members = self.caps.of(k)
        at_level = members[rising[members] & (self.floor[members] <= self.scale[members] * level)]
        stuck = members[rising[members] & (self.floor[members] > self.scale[members] * level)]
        kept = members[np.isfinite(held_amount[members])]
        if len(at_level) == 0 or (self.rows["floor"][stuck] < 0).any():
            return None
        if not np.isin(at_level, stopping).all():
            return None  # a gap the cap would hold is forecast to rise on
        weight = 1.0 / float(self.scale[at_level].sum())
        by_floor = self.floor[kept] > held_amount[kept]
        if (self.rows["floor"][kept[by_floor]] < 0).any():
            return None
        rows = np.concatenate([[self.caps.rows[k]], self.rows["level"][at_level],
                               self.rows["floor"][stuck],
                               np.where(by_floor, self.rows["floor"][kept],
                                        self.rows["held"][kept])])
        values = np.full(len(rows), -weight)
        values[0] = weight
        return rows, values

    def _bound(self, rows: np.ndarray, values: np.ndarray, held_amount: np.ndarray,
               rhs: np.ndarray, z_bounds: tuple[float, float] | None) -> float | None:
        """Weak duality for max L: the bound these duals give, or None when they are not
        dual feasible (a column whose reduced cost no bound prices)."""
        # Reduced costs c - A^T y over the columns these rows touch only (the others
        # have none): c is 1 on L, 0 elsewhere.
        block = self._csr[rows]
        columns, entry_column = np.unique(block.indices, return_inverse=True)
        reduced = -np.bincount(entry_column, weights=block.data
                               * np.repeat(values, np.diff(block.indptr)),
                               minlength=len(columns))
        on_level = columns == self.level_col
        reduced[on_level] += 1.0
        if not on_level.any() or reduced[on_level][0] > 1e-9:
            return None  # L's own reduced cost: the duals must weigh it to 0
        if (reduced[columns < self.ext.n_x] > 1e-12 * np.abs(values).max()).any():
            return None
        side = rhs[rows].copy()
        gap = self._gap_of_held[rows]
        side[gap >= 0] = held_amount[gap[gap >= 0]]  # the exact hold, as `certify` has it
        bound = float(values @ side)
        on_z = columns == self.z_col
        if on_z.any():
            d_z = float(reduced[on_z][0])
            if d_z != 0.0:
                if z_bounds is None:
                    return None
                bound += d_z * (z_bounds[0] if d_z < 0 else z_bounds[1])
        return bound
