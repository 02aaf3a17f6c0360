"""Dual adjustments of a level step (docs/model.md, "Amounts of cents"): where a gap's amount
at the level is below the solver's feasibility tolerance in USD millions, the vertex dual
may name the wrong row for it, or none; these move or add dual so that the step stops the
gaps that cannot rise, keeping the dual optimal."""

from __future__ import annotations

import logging

import numpy as np

from gcm_fund.methods.level_forecast import Forecaster
from gcm_fund.methods.level_layout import Layout
from gcm_fund.methods.level_tolerances import REACH_USD, WRITTEN_DUAL
from gcm_fund.model.lp import SCALE_USD
from gcm_fund.solvers.backend import StageSolution

log = logging.getLogger(__name__)


def move_held_duals(solution: StageSolution, layout: Layout, forecaster: Forecaster,
                    cost: np.ndarray, rising: np.ndarray) -> None:
    """Move the dual of each rising gap's held row whole onto its level row, in place,
    and scale the dual so that it bounds L again (L's reduced cost 0).

    A rising gap's held row (`sum x >= 0`) and level row (`sum x >= pi U L`) differ by
    L's term alone. Where pi U L is below the solver's feasibility tolerance (a gap of
    a few dollars is 1e-12 in USD millions), x = 0 meets both, and the vertex dual may
    name the held row: the level row's dual is then 0, the gap does not stop and, the
    others held, rises alone to a lower level in the next step. Both rows have the
    same terms in every allocation column, so the move keeps their reduced costs, and
    their right-hand sides are both 0, so it keeps the bound.
    """
    held_dual = np.where(rising, solution.row_dual[layout.held_rows], 0.0)
    move = held_dual < -WRITTEN_DUAL
    if not move.any():
        return
    shifted = solution.row_dual.copy()
    shifted[layout.level_rows[move]] += held_dual[move]
    shifted[layout.held_rows[move]] = 0.0
    on_level = float(forecaster.transpose(shifted)[layout.level_col])
    if on_level <= 0:
        return
    solution.row_dual = shifted / on_level
    solution.col_dual = cost - forecaster.transpose(solution.row_dual)
    log.debug("stage 2: the held-row duals of %d rising gaps moved onto their level rows",
              int(move.sum()))


def fill_unnamed(solution: StageSolution, layout: Layout, forecaster: Forecaster,
                 cost: np.ndarray, rising: np.ndarray, level: float) -> None:
    """Give the rising gaps at their level (within `REACH_USD`) whose level row has no
    dual the most dual their columns' reduced costs allow, in place, keeping L's
    reduced cost at 0.

    Where pi U L is below the solver's feasibility tolerance (a USD 5 gap beside a USD
    1,000 one under a USD 3 budget: 1e-11 in USD millions), x = 0 meets the gap's
    level row, and the solver may leave it out of its dual: the gap then rises alone in
    the next step, to a lower level. The dual added to a gap's level row raises each
    of its columns' reduced costs by as much, so it is at most the least of theirs
    below 0, and the dual stays feasible. Where L's reduced cost is short of 0, the
    added dual makes up that much; where it is not (CBC's dual bounds the LP in which
    those gaps get nothing), only gaps whose amount at the level is below
    `REACH_USD` get it, and the dual is scaled down so that it bounds L again: its
    bound falls by their share, as the level would with them at their level.
    """
    ext = forecaster.ext
    on_level = float(forecaster.transpose(solution.row_dual)[layout.level_col])
    short = 1.0 - on_level
    x = solution.col_value[: ext.n_x]
    gap_of = layout.position[ext.var_gap]
    known = gap_of >= 0
    n_e = len(layout.gaps)
    amount = np.bincount(gap_of[known], weights=x[known], minlength=n_e)
    reduced = -forecaster.transpose(solution.row_dual)[: ext.n_x]
    room = np.full(n_e, np.inf)
    np.minimum.at(room, gap_of[known], -reduced[known])
    room = np.where(np.isfinite(room), np.maximum(room, 0.0), 0.0)
    at_level = layout.scale * level
    unnamed = rising & (solution.row_dual[layout.level_rows] >= -WRITTEN_DUAL) \
        & (np.abs(amount - at_level) <= REACH_USD / SCALE_USD) & (room > 0)
    if short <= WRITTEN_DUAL:
        unnamed &= at_level <= REACH_USD / SCALE_USD
    if not unnamed.any():
        return
    gain = float((room[unnamed] * layout.scale[unnamed]).sum())
    if short > WRITTEN_DUAL:
        solution.row_dual[layout.level_rows[unnamed]] -= min(1.0, short / gain) \
            * room[unnamed]
    else:
        solution.row_dual[layout.level_rows[unnamed]] -= room[unnamed]
        solution.row_dual /= on_level + gain
    solution.col_dual = cost - forecaster.transpose(solution.row_dual)
    log.debug("stage 2: %d rising gaps at their level given a dual", int(unnamed.sum()))
