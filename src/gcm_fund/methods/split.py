"""The split rule (docs/model.md): how each gap's amount is divided among its sources.

Priority levels make every gap's amount unique, not its split among sources. The rule:
among the allocations that keep every gap at its level (held from below and from above,
within 1e-9), every other rule of the LP and the least loan burden, the one of least
`sum (d[f,s,t] - 2) * x[f,s,t]`, where `d` is a fixed pseudo-random number in [1, 2)
computed from the names `source_id`, `iso3` and `target` (`split_cost`). For given gap
amounts that is the least `sum d x`; the 2 fills the holds' room where the budgets allow
(`solve_split`). Generic costs make the optimum unique, so every solver and every order of
the input rows gives the same split.

With the gap amounts held, what is left is a transportation problem: money flows from
each source (its budget), through its per-State cap where it has one, to the gaps, at
cost `d`. Solved as an LP warm from the levels' last basis, the simplex walks there pivot
by pivot and prices in columns round after round (on large inputs, most of the solve's
time: docs/performance.md). So on HiGHS a min-cost-flow solver (OR-Tools' network simplex on the
same network, in whole units of about 2^-34 of the money) first guesses the support of
the optimum, and HiGHS then solves the LP on a model of its own, holding those columns:
it proves the exact optimum by pricing every other column, as for any stage, so the
answer is the rule's, whatever the guess. The guess only decides how little work that is.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np

from gcm_fund.methods.level_layout import Layout
from gcm_fund.model.lp import LinearProgram
from gcm_fund.solvers.backend import Bounds, StageSolution
from gcm_fund.solvers.flow import flow_guess
from gcm_fund.solvers.pipeline import Pipeline

log = logging.getLogger(__name__)

# What each dollar placed is worth in the split's objective: above every d (see
# `solve_split`).
PLACING = 2.0
# A column stage 3's duals price this far from optimal (relative to the largest loan
# cost) carries no money in any allocation of least loan burden: the guess leaves it out.
BURDEN_PRICE_TOLERANCE = 1e-6


def split_cost(lp: LinearProgram) -> np.ndarray:
    """d[f,s,t] in [1, 2): the split rule's fixed cost of every triple, from its names.

    CRC-32 of the source id and of `iso3,target`, side by side in 64 bits, through
    SplitMix64's finaliser: the same numbers whatever the order of the rows in the input
    files. The finaliser's shifts make d no sum of a source's part and a gap's part, so
    moving money around a cycle of sources and gaps always changes the cost (with any
    such sum, every cycle costs nothing and the split is far from unique).
    """
    ids = lp.data.sources["source_id"].to_numpy()
    gaps = lp.data.gaps
    source_hash = np.array([zlib.crc32(str(s).encode()) for s in ids], dtype=np.uint64)
    gap_hash = np.array([zlib.crc32(f"{i},{t}".encode()) for i, t in
                         zip(gaps["iso3"], gaps["target"], strict=True)], dtype=np.uint64)
    mixed = (source_hash[lp.var_source] << np.uint64(32)) | gap_hash[lp.var_gap]
    mixed += np.uint64(0x9E3779B97F4A7C15)
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return 1.0 + (mixed >> np.uint64(11)).astype(float) / 2.0**53


def least_burden_columns(ext: LinearProgram, stage3: StageSolution, burden: np.ndarray
                         ) -> np.ndarray:
    """The allocation columns that may carry money at the least loan burden: by
    complementary slackness, a column whose reduced cost under stage 3's optimal duals is
    strictly unfavourable is 0 in every optimal allocation of stage 3."""
    reduced = -burden - (ext.matrix.T @ stage3.row_dual)[: ext.n_x]
    tolerance = BURDEN_PRICE_TOLERANCE * max(float(np.abs(burden).max()), 1e-300)
    return reduced >= -tolerance


def solve_split(pipeline: Pipeline, layout: Layout, split: np.ndarray, bounds: Bounds,
                rhs: np.ndarray, allowed: np.ndarray, last: StageSolution | None
                ) -> StageSolution:
    """The split stage over the pipeline's LP at `rhs`: the least `sum (d - 2) x`, where
    `d` is `split` (`split_cost`, per allocation column).

    The holds leave each gap a sliver of room (1e-9 of its level each way). With `d`
    alone the least cost would take every gap to the bottom of it, and the money placed
    would fall short of the pledges by cents where the budgets bind; as `d < 2`, each
    dollar placed lowers `d - 2`, so the slivers fill where the budgets allow, and `d`
    decides the split. With the amounts given, `sum 2 x` is fixed, so the split is the
    least `sum d x` (what the README says and a test restates).

    On HiGHS with a column pool this runs on a new model whose pool starts from the
    flow guess over the `allowed` columns (see the module's docstring), and from the
    columns that carry money in the `last` solution over the same holds, which meets
    them: a guess that misses a column the held amounts need costs no pricing round.
    """
    ext = pipeline.lp
    cost = np.zeros(ext.n_cols)
    cost[: ext.n_x] = PLACING - split
    if pipeline.pool is not None:
        guess = flow_guess("split", ext, layout.gaps, rhs[layout.held_rows], rhs, split,
                           allowed)
        if guess is not None:
            if last is not None:
                guess = np.union1d(guess, np.nonzero(last.col_value[: ext.n_x] > 0)[0])
            if pipeline.warm_stages:  # the sweep's next pledge goes on from its models
                pipeline = pipeline.aside(guess)
            else:  # nothing runs on the levels' model again: its memory is freed
                pipeline.restart("levels", guess)
    return pipeline.solve_stage("levels", cost, bounds, rhs, trial=True)
