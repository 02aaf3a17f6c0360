"""Every tolerance of the priority levels' stages (docs/model.md), stated once: when a gap stops,
how far a stopped gap is held below its level, which duals are written, and how the holds
are eased when a solver finds them infeasible."""

from __future__ import annotations

import enum

# A gap stops when its share of d L / d rhs (|dual| * pi * U, which sums to 1 over the
# level rows of a step) exceeds this. A smaller share may be solver noise.
STOP_SHARE = 1e-7
# ... or when its level row's dual itself (d L / d rhs per unit of money, the share over
# pi U) is at least this fraction of the smallest such dual among the gaps that stop by
# their share. Noise in a vertex dual is a rounding error of the whole dual vector, so it
# is small per unit of money whatever the gap's size; a real dual is not, however small
# the gap: a rule that stops many gaps (a budget) gives each the same dual per unit, and a
# USD 100 gap beside twenty of USD 1e10 gets 5e-10 of the share. Left rising, it takes
# what the twenty holds below their level give way, which can pass docs/model.md's 0.01.
SAME_DUAL = 1e-3
# ... its dual above WRITTEN_DUAL, so that the step's written duals prove the stop, however
# small its share: a small gap beside huge ones under one budget has a tiny share, and left
# rising it takes what the solver's tolerances on the huge gaps' holds give way.
# A step's duals at or below this (in the LP's units) are not recorded.
WRITTEN_DUAL = 1e-12
# A stopped gap is held this far (relative) below the level it stopped at: the steps after
# it come back within the solver's tolerances, not exactly, and a hold at the very edge
# can make a later stage infeasible (the order of the rows alone can decide it). 1e-9 of
# a gap's fundable need is far inside docs/model.md's 1e-6.
HOLD_MARGIN = 1e-9
# ... and never more than this (USD): what a hold gives way is money a rising gap can
# take, and a gap that truly stops but that the step's dual does not name (a zero dual on
# its level row, or one too small by both tests above) takes it all in the next step. A
# relative margin on a level of billions frees dollars, where docs/model.md allows a small
# gap USD 0.01. A thousandth of a cent per hold is HiGHS's primal tolerance (1e-9 of USD 1
# million).
HOLD_MARGIN_USD = 1e-3
# A rising gap is full at its own cap when pi L >= 1 - this: its coverage cannot exceed 1.
FULL_TOL = 1e-9
# The share of d L / d rhs each such gap gets in a step's blended dual (see `_blend_full`).
FULL_SHARE = 1e-8
# An LP with forecast stops held "reaches" the last of them when its L is this close
# (relative, plus the solver's read-back precision x 10).
REACH_TOLERANCE = 1e-9

# The money forecast stops need fits the money placeable within this (relative, and
# absolute in USD millions): the solver's feasibility tolerances.
MONEY_RELATIVE = 1e-7
MONEY_ABSOLUTE = 1e-6


def within_money(needed: float, money: float) -> bool:
    """Whether `needed` (USD millions) fits in `money` within the tolerances above."""
    return needed <= money * (1 + MONEY_RELATIVE) + MONEY_ABSOLUTE


class LevelStage(enum.Enum):
    """The solves of the levels after stage 1 (the value: what the log calls them)."""

    STAGE_1B = "stage 1b"
    STAGE_2_STEP = "stage 2 step"
    STAGE_3 = "stage 3"
    SPLIT = "split"

    @property
    def eases_holds(self) -> bool:
        """Whether an infeasible solve is tried again with the holds eased (`EASINGS`):
        the stages that run at holds that came back from earlier solves."""
        return self is not LevelStage.STAGE_1B

    def label(self, step: int | None = None) -> str:
        """What the log and messages call a solve of this stage ("stage 2 step 4")."""
        return self.value if step is None else f"{self.value} {step}"

# A rising gap's floor row and level row say the same when pi U L and U z agree within
# this (relative): a dual on the one may move to the other (`Filling._move_floor_duals`).
FLOOR_TIGHT = 1e-9
# ... and moving the duals of such rows moves the step's bound on L by each dual times the
# rows' slack: by at most this much of L in all (`certify` allows 1e-6).
FLOOR_SHIFT = 5e-7
# An LP with forecast stops "reaches" the last of them only when the widest gap still
# rising is then within this (USD) of the forecast amount: a forecast accepted above the
# LP's level holds a gap above its true amount, with money the gaps still rising lack (a
# relative tolerance on a huge gap's level is dollars).
REACH_USD = 1e-3
# How the holds are eased when a stage after the levels begin finds them infeasible (or
# the solver stops): by this share of each level, at most EASE_USD plus
# EASE_RELATIVE_TOTAL of the pledges (the solvers' accuracy on rows that sum that much
# money), then uncapped.
EASINGS = ((1e-7, True), (1e-7, False))
EASE_USD = 1e-3
EASE_RELATIVE_TOTAL = 1e-12
