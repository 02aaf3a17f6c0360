"""Column generation: which allocation columns the solver holds, and pricing the others.

On large inputs the LP has a column per eligible triple (millions of them) but an
optimal basic allocation uses at most one column per row, and in
practice far fewer. Solving over all of them makes every simplex iteration scan millions
of columns. Instead the solver holds all rows and a pool of columns; after each solve the
row duals price every column left out (reduced cost `c_j - y . a_j`, one sparse product),
the most attractive ones join, and the loop stops when none would improve the objective.
The restricted optimum is then optimal for the whole LP, and its duals are dual feasible
for every eligible triple: exactly what `certify` checks, column by column.

Selection is deterministic: candidates are ranked by reduced cost within each gap and
within each source, ties broken by a fixed hash of the column index rather than by
source order, so that the columns taken spread over sources instead of piling onto the
first ones.
"""

from __future__ import annotations

import math

import numpy as np

from gcm_fund.model.lp import LinearProgram

# Columns taken per gap in each round; each source takes as many in all, so that a round
# adds about 2 * PER_GAP columns per gap: on large instances the first pool then needs one
# further round at most (docs/performance.md).
PER_GAP = 5
# The reduced cost a column must exceed to join: HiGHS's dual feasibility tolerance, so
# that the pool's optimum is optimal for the whole LP by the solver's own standard.
PRICING_TOLERANCE = 1e-9
# Once the pool would hold more than this share of all columns, it takes them all:
# pricing in rounds no longer saves anything.
FULL_SHARE = 0.5


def _hash_order(count: int) -> np.ndarray:
    """A fixed pseudo-random key per column (Knuth's multiplicative hash), for ties."""
    return (np.arange(count, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)


def _group_score_tie_order(group: np.ndarray, score: np.ndarray, tie: np.ndarray
                           ) -> np.ndarray:
    """The order by group, then score descending, then tie key: `np.lexsort`'s answer.

    When the three fit in 63 bits they are packed into one integer and sorted once,
    about three times faster than lexsort on millions of columns.
    """
    levels, score_rank = np.unique(-score, return_inverse=True)
    group_bits = int(group.max()).bit_length() if len(group) else 0
    if group_bits + max(len(levels) - 1, 1).bit_length() + 32 <= 63:
        packed = ((group.astype(np.int64) * len(levels) + score_rank) << 32) + tie.astype(np.int64)
        return np.argsort(packed, kind="stable")
    return np.lexsort((tie, -score, group))


def _best_per_group(candidates: np.ndarray, score: np.ndarray, group: np.ndarray,
                    tie: np.ndarray, count: int) -> np.ndarray:
    """The `count` candidates with the highest score within each group (ties by `tie`)."""
    if count <= 0 or len(candidates) == 0:
        return candidates[:0]
    order = candidates[_group_score_tie_order(group[candidates], score[candidates],
                                              tie[candidates])]
    grouped = group[order]
    starts = np.r_[0, np.nonzero(np.diff(grouped))[0] + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < count]


class ColumnPool:
    """The allocation columns a solver holds, and the choice of those that join it.

    Columns are indices into the LP's allocation columns (0..n_x-1); the floor variable z
    is always held and is not part of the pool.
    """

    def __init__(self, lp: LinearProgram, per_gap: int = PER_GAP,
                 tolerance: float = PRICING_TOLERANCE, full_share: float = FULL_SHARE,
                 start_empty: bool = False, start: np.ndarray | None = None):
        self.lp = lp
        self.start_empty = start_empty
        self.start = start
        self.per_gap = per_gap
        self.tolerance = tolerance
        self.full_share = full_share
        n_gaps = int(np.count_nonzero(np.bincount(lp.var_gap))) if lp.n_x else 0
        n_sources = int(np.count_nonzero(np.bincount(lp.var_source))) if lp.n_x else 0
        self.per_source = math.ceil(per_gap * n_gaps / n_sources) if n_sources else 0
        self.held = np.zeros(lp.n_x, dtype=bool)
        self._tie = _hash_order(lp.n_x)
        # A^T, row-wise: a view of the CSC matrix, no copy (slicing off z would copy it).
        self._matrix_t = lp.matrix.T
        self.rounds = 0  # pricing rounds that added columns
        self._started = False
        self._taken: list[np.ndarray] = []

    @property
    def settings(self) -> dict[str, object]:
        """What decides the pool, for the manifest."""
        return {"method": "column generation", "per_gap": self.per_gap,
                "pricing_tolerance": self.tolerance, "full_share": self.full_share}

    def first(self) -> np.ndarray:
        """The starting pool: the best-weighted columns of every gap and every source.

        With `start_empty` it is empty and every column must earn its place by pricing
        (slower; tests use it to run the pricing loop on small instances). With `start`
        it is those columns (a stage that knows where its optimum lies: the split).
        """
        every = np.arange(self.lp.n_x)
        if self._started:
            # A second model sharing the pool: every column taken so far, in the order
            # the first model holds them, so that a basis passes between the two.
            return np.concatenate([every[:0], *self._taken])
        self._started = True
        if self.start is not None:
            return self._take(np.unique(self.start))
        if self.start_empty:
            return every[:0]
        return self._take(self._choose(every, self.lp.weight))

    def reduced_costs(self, cost_x: np.ndarray, row_dual: np.ndarray) -> np.ndarray:
        """`c_j - y . a_j` of every allocation column (duals as d objective / d rhs)."""
        return cost_x - (self._matrix_t @ row_dual)[: self.lp.n_x]

    def entering(self, reduced: np.ndarray) -> np.ndarray:
        """Columns outside the pool whose reduced cost shows they would raise the objective.

        Empty when the pool's optimum is optimal for the whole LP. The columns returned
        have joined the pool.
        """
        attractive = np.nonzero((reduced > self.tolerance) & ~self.held)[0]
        if len(attractive) == 0:
            return attractive
        self.rounds += 1
        return self._take(self._choose(attractive, reduced))

    def _choose(self, candidates: np.ndarray, score: np.ndarray) -> np.ndarray:
        lp = self.lp
        chosen = np.union1d(
            _best_per_group(candidates, score, lp.var_gap, self._tie, self.per_gap),
            _best_per_group(candidates, score, lp.var_source, self._tie, self.per_source),
        )
        if self.held.sum() + len(chosen) > self.full_share * lp.n_x:
            chosen = np.nonzero(~self.held)[0]
        return chosen

    def _take(self, columns: np.ndarray) -> np.ndarray:
        self.held[columns] = True
        taken = columns.astype(np.int64)
        self._taken.append(taken)
        return taken
