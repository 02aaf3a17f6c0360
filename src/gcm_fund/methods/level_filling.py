"""Stage 2 of priority levels (docs/model.md): progressive filling.

Each step maximises the level L with every rising gap at `pi L` of its fundable need and
the stopped ones held; a gap whose level row has a positive dual stops. Done naively,
that is one LP per distinct level. Most stops are local, though (a gap fills, a State's
cap fills), and `level_forecast` finds their levels in closed form with a dual that
proves each. One LP then checks many of them at once: hold the first k forecast stops
at their levels and maximise L over the rest. If L reaches the k-th forecast level, all
k stops are steps of the filling (each proved by its own dual, the LP's optimum reaching
it), and the LP's optimum is the next step itself. The k tried first is the highest one
whose holds fit in the money stage 1b places; a bisection finds it otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gcm_fund.methods.level_duals import fill_unnamed, move_held_duals
from gcm_fund.methods.level_forecast import Forecast, Forecaster, cap_rows
from gcm_fund.methods.level_layout import Layout
from gcm_fund.methods.level_tolerances import (
    FLOOR_SHIFT,
    FLOOR_TIGHT,
    FULL_SHARE,
    FULL_TOL,
    HOLD_MARGIN,
    HOLD_MARGIN_USD,
    REACH_TOLERANCE,
    REACH_USD,
    SAME_DUAL,
    STOP_SHARE,
    WRITTEN_DUAL,
    LevelStage,
    within_money,
)
from gcm_fund.methods.split import split_cost
from gcm_fund.model.lp import SCALE_USD, LinearProgram
from gcm_fund.model.spec import read_back_allowance
from gcm_fund.solvers.backend import OPTIMAL, SolverStopped, StageSolution
from gcm_fund.solvers.flow import flow_guess
from gcm_fund.solvers.pipeline import Pipeline
from gcm_fund.solvers.pulp import refined_duals

__all__ = ["FULL_SHARE", "FULL_TOL", "HOLD_MARGIN", "HOLD_MARGIN_USD", "REACH_TOLERANCE",
           "SAME_DUAL", "STOP_SHARE", "WRITTEN_DUAL", "Filling", "Layout", "LevelReached",
           "LevelStep"]

log = logging.getLogger(__name__)

@dataclass
class LevelStep:
    """One step of stage 2: its level, the gaps it stopped and its non-zero duals."""

    level: float
    stopped: np.ndarray  # gap indices (into data.gaps)
    dual_rows: np.ndarray  # rows of the extended LP with a non-zero dual
    dual_values: np.ndarray  # their duals, d L / d rhs in scaled units
    forecast: bool = False  # proved by a dual built from its cap, not by an LP of its own


def _blend_full(solution: StageSolution, layout: Layout, full: np.ndarray) -> None:
    """Give each gap of `full` (rising gaps of E whose level reaches their cap, pi L >= 1)
    a positive dual on its level row, in place, keeping the dual optimal.

    Where many gaps fill at the same level (every gap of priority 1.21 at L = 1/1.21),
    the step's LP is degenerate and the solver's vertex dual may name one of them only:
    the others, unnamed, then stop one per step (docs/performance.md counts such steps).
    For one such gap, dual -1/(pi U) on its level row and 1/(pi U) on its `gap` row
    prove L <= 1/pi <= L_k by themselves; a convex combination of optimal duals is an
    optimal dual, so each gets weight FULL_SHARE and the solver's dual the rest. The
    duals of every other row shrink by that much (m x 1e-8 for m such gaps).
    """
    m = int(full.sum())
    weight = min(FULL_SHARE, 0.5 / m)
    rest = 1.0 - weight * m
    solution.row_dual = solution.row_dual * rest
    solution.col_dual = solution.col_dual * rest
    per = weight / layout.scale[full]
    solution.row_dual[layout.level_rows[full]] -= per
    solution.row_dual[layout.gap_rows[full]] += per


class LevelReached(Exception):  # noqa: N818 (not an error: the filling ends early)
    """Raised by a filling with `watch` (groups of gaps) once a gap of every group has
    stopped, or when it ends: by group, the level its first gap stopped at (NaN where none
    did).

    The lowest level among some gaps is decided by the steps up to the first that stops
    one of them, so a donor's figure needs no more (docs/outputs.md).
    """

    def __init__(self, levels: np.ndarray) -> None:
        super().__init__(levels)
        self.levels = levels


class SolveStage(Protocol):
    """How the filling solves a step: the levels' `solve`, which eases the holds once when
    a stage that `eases_holds` comes back infeasible."""

    def __call__(self, stage: LevelStage, cost: np.ndarray, *, step: int | None = None
                 ) -> StageSolution: ...


class Filling:
    """Stage 2 on a pipeline over the extended LP: `run` fills `steps`, `stop_step` and
    `held` (by gap of the data), and `last`, the last step's solution (its duals, d L /
    d rhs in the LP's units)."""

    def __init__(self, pipeline: Pipeline, lp: LinearProgram, layout: Layout,
                 priority: np.ndarray, rhs: np.ndarray, bounds: dict[int, tuple[float, float]],
                 precision: float, rising: np.ndarray, placeable: float,
                 solve: SolveStage, forecast: bool = True,
                 watch: np.ndarray | None = None) -> None:
        self.pipeline, self.lp, self.layout = pipeline, lp, layout
        # Groups x gaps of the data: stop once each group has a stopped gap (`LevelReached`).
        self.watch = watch
        self.reached = None if watch is None else np.full(len(watch), np.nan)
        self.use_forecast = forecast  # False: one LP per step (what the forecast must equal)
        self.rhs, self.bounds, self.solve = rhs, bounds, solve
        self.rising = rising
        self.placeable = placeable  # X*, the most money the rules let the fund place
        self.priority_e = priority[layout.gaps] / layout.unit
        self.margin = precision + HOLD_MARGIN
        self.reach = REACH_TOLERANCE + read_back_allowance(precision)
        self.precision = precision
        self._widest = 0.0  # the largest scale among the gaps rising in this search
        n_gaps = len(lp.data.gaps)
        self.stop_step = np.full(n_gaps, -1)
        self.held = np.full(n_gaps, np.nan)
        self.held_amount = np.full(len(layout.gaps), np.nan)  # scale x level, exactly
        self.steps: list[LevelStep] = []
        self.lps = 0  # LPs solved: a forecast step has none of its own
        self.last: StageSolution | None = None
        self._confirmed: StageSolution | None = None  # the last LP that confirmed a forecast
        self._split_cost: np.ndarray | None = None  # `split_cost()`, once computed
        self.level = 0.0  # the last step's, in the LP's units
        ext = pipeline.lp
        self.cost = np.zeros(ext.n_cols)
        self.cost[layout.level_col] = 1.0
        self.z_bounds = None if ext.z_col is None else bounds.get(ext.z_col)
        self.floor_rows = np.zeros(0, dtype=np.int64)
        self.forecaster = self._forecaster()

    def _forecaster(self) -> Forecaster:
        layout, ext = self.layout, self.pipeline.lp
        n_e = len(layout.gaps)
        floor_rows = np.full(n_e, -1)
        floor = np.zeros(n_e)
        block = ext.block("floor")
        if block is not None and self.z_bounds is not None:
            at = layout.position[ext.floor_gaps]
            rows = np.arange(block.start, block.stop)
            live = (at >= 0) & np.isfinite(self.rhs[rows])  # a sweep drops lost gaps' rows
            floor_rows[at[live]] = rows[live]
            floor[at[live]] = self.z_bounds[0] * ext.fundable[layout.gaps][at[live]]
        self.floor_rows = floor_rows  # by gap of E: its floor row, -1 outside G
        return Forecaster(ext, cap_rows(ext, layout.position, n_e), layout.scale,
                          ext.fundable[layout.gaps], floor,
                          {"level": layout.level_rows, "held": layout.held_rows,
                           "gap": layout.gap_rows, "floor": floor_rows},
                          layout.level_col, ext.z_col)

    def run(self) -> None:
        """Raise the levels until no gap rises."""
        layout, rhs = self.layout, self.rhs
        rhs[layout.level_rows] = np.where(self.rising, 0.0, layout.relaxed)
        rhs[layout.held_rows] = 0.0
        log.info("stage 2: raising the levels of %d gaps", int(self.rising.sum()))
        while self.rising.any():
            # Without forecasts (`use_forecast`) each step is its own LP: nothing to forecast.
            forecast = (self.forecaster.forecast(self.rising, self.held_amount, rhs, self.level)
                        if self.use_forecast else None)
            proofs = self._proofs(forecast) if forecast is not None else []
            k, solution = self._search(forecast, [level for level, _, _ in proofs])
            for level, stopping, (rows, values) in proofs[:k]:
                stop = np.zeros(len(layout.gaps), dtype=bool)
                stop[stopping] = True
                self._stop(stop, level, rows, values, forecast=True)
            if solution is None:  # the forecast stopped every gap still rising
                break
            self._step(solution)
        if self.reached is not None:  # some group never stopped: none of it is in E
            raise LevelReached(self.reached.copy())
        if self.steps and self.steps[-1].forecast:
            # The last step was forecast: its duals stand for stage 2's.
            self.last = self._forecast_solution()

    def _proofs(self, forecast: Forecast) -> list[tuple[float, np.ndarray,
                                                        tuple[np.ndarray, np.ndarray]]]:
        """The forecast stops in order of level, each with its proof, up to the first
        that its hand-built dual does not prove."""
        out: list[tuple[float, np.ndarray, tuple[np.ndarray, np.ndarray]]] = []
        rising = self.rising.copy()
        held_amount = self.held_amount.copy()
        for level in np.unique(forecast.level[rising & np.isfinite(forecast.level)]):
            stopping = np.nonzero(rising & (forecast.level == level))[0]
            proof = self.forecaster.proof(float(level), stopping, forecast, rising, held_amount,
                                          self.rhs, self.z_bounds)
            if proof is None:
                break
            out.append((float(level), stopping, proof))
            rising[stopping] = False
            held_amount[stopping] = self.layout.scale[stopping] * level
        return out

    def _trial(self, forecast: Forecast, ahead: list[float], k: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """The right-hand sides with the first k forecast stops held, and the gaps that
        still rise then."""
        trial = self.rhs.copy()
        if k == 0:
            return trial, self.rising.copy()
        sel = self.rising & (forecast.level <= ahead[k - 1])
        self._hold(trial, sel, forecast.level[sel])
        return trial, self.rising & ~sel

    def _hold(self, rhs: np.ndarray, stop: np.ndarray, level: float | np.ndarray) -> None:
        """Right-hand sides of the gaps of `stop` stopped at `level`: the level row relaxed,
        the held row just below the level (`HOLD_MARGIN` and the solver's precision, at
        most `HOLD_MARGIN_USD`)."""
        layout = self.layout
        rhs[layout.level_rows[stop]] = layout.relaxed[stop]
        amount = layout.scale[stop] * level
        rhs[layout.held_rows[stop]] = amount - np.minimum(amount * self.margin,
                                                          HOLD_MARGIN_USD / SCALE_USD)

    def _search(self, forecast: Forecast | None, ahead: list[float]
                ) -> tuple[int, StageSolution | None]:
        """The most forecast stops (k) that the LP confirms, and the LP's solution with
        them held (None when none rises then): the next step's.

        The step as it stands comes first: where a rule shared between States stops the
        water before the first forecast stop (often the budgets), that LP is
        the step, and nothing else is solved. Otherwise the forecasts hold up to the
        next stop of a shared rule at some level G. An LP with k forecasts held that
        does not reach the k-th level still tells something: it holds some gaps above
        where they will stop, so its L is at most G, and every forecast up to its L
        holds. That LP is tried next: it is usually the step itself.
        """
        plain = self.solve(LevelStage.STAGE_2_STEP, self.cost, step=len(self.steps) + 1)
        self.lps += 1
        level = float(plain.col_value[self.layout.level_col])
        m = len(ahead)
        self._widest = float(self.layout.scale[self.rising].max()) if self.rising.any() else 0.0
        if m == 0 or not self._reaches(level, ahead[0]):
            return 0, plain
        assert forecast is not None  # `ahead` lists its stops
        # The step reaches the first forecast level, so its allocation meets the holds of
        # the stops there: k = 1 is confirmed without an LP of its own.
        # k = low is confirmed; k >= high fails: past the forecasts whose holds the money
        # of stage 1b can meet, they cannot all hold. Below that, the search doubles k
        # from 1: a trial far above G is infeasible (it tells nothing, and the solver
        # takes long to say so), one just above it tells G's neighbourhood.
        ceiling = min(m, self._affordable(forecast, ahead)) + 1
        low, high = 1, ceiling
        found: dict[int, StageSolution | None] = {}
        # First the most forecasts the money allows (on budgets alone, that is where the
        # shared stop lies); if that fails, doubling from 1.
        k, tries, failed = max(ceiling - 1, 2), 0, False
        self._restart_near(forecast, ahead, min(k, m), plain)
        while high - low > 1 or low not in found:
            if not (low < k < high or k == low not in found):
                k = low if low not in found and high - low <= 1 else (low + high) // 2
            solution, level = self._try(forecast, ahead, k)
            tries += 1
            log.debug("stage 2: %d forecast stops held (confirmed %d, failing %d): level %.9g, "
                      "the k-th forecast %.9g", k, low, high, level, ahead[k - 1])
            if self._reaches(level, ahead[k - 1]):
                low = k
                found[k] = solution
                if k == m or not self._reaches(level, ahead[k]):
                    high = k + 1  # the next stop is the LP's own, below the next forecast
                    continue
                # Its allocation meets the holds of every forecast up to its level too (an
                # infeasible trial among those was the column pool's, not the policy's).
                below = int(np.searchsorted(ahead, self._above(level), side="right"))
                low = max(k, min(below, m))
                if low >= high:  # the trial that failed there failed for the pool's sake
                    # The money's bound counts grants only (stage 1b's X*): where loans meet
                    # holds past it, nothing above `low` is known to fail.
                    high, failed = (ceiling if ceiling > low else m + 1), False
                k = 2 * low if not failed else (low + high) // 2
            elif k == low:
                # Confirmed, yet the LP falls short: the solver's tolerances. The step as
                # it stands stops the first forecast gaps by its own duals.
                log.info("stage 2: the forecast at level %.9g falls short; one LP step", ahead[0])
                return 0, plain
            else:
                # After the first trial (the money's bound) fails, doubling goes on.
                high, failed = k, tries > 1
                below = int(np.searchsorted(ahead, self._above(level), side="right"))
                if below > low:
                    low = min(below, high - 1)
                    k = low  # confirmed by that bound; its LP is likely the step
                else:
                    k = (low + high) // 2 if failed else 2 * low
        log.info("stage 2: %d of %d forecast stops hold (%d LPs)", low, m, tries + 1)
        return low, found[low]

    def _restart_near(self, forecast: Forecast, ahead: list[float], k: int,
                      last: StageSolution) -> None:
        """Restart the pipeline on a column pool near the trial with k forecast stops held.

        That trial moves every held gap and the level far from the last step's basis:
        warm, HiGHS pivoted for seconds and then priced in, round after round, the columns
        the new holds need. A min-cost flow of the trial's amounts (each held gap at its
        hold, each rising one at the k-th level or where the money placed is met)
        finds columns that carry them in a
        fraction of that, and HiGHS solves from there on a pool of a few thousand. The
        pool keeps the columns of the `last` solution too, so that the steps the trial
        does not settle stay feasible on it.
        """
        trial, still = self._trial(forecast, ahead, k)
        layout, ext = self.layout, self.pipeline.lp
        fundable = self.forecaster.fundable
        held = np.maximum(trial[layout.held_rows], self.forecaster.floor)
        # The rising gaps at the k-th level, or higher where the money placed (stage 1b's
        # row) needs it: the trial's own level lies there.
        level = max(ahead[k - 1], self._level_placing(held, still, trial[layout.allocated_row]))
        demand = held.copy()
        demand[still] = np.maximum(held[still],
                                   np.minimum(layout.scale[still] * level, fundable[still]))
        # Any flow that carries the amounts would do (the trial maximises the level
        # alone); the split's generic costs make it one, and a sparse one.
        guess = flow_guess("stage 2 trial", ext, layout.gaps, demand, trial, self.split_cost(),
                           np.ones(ext.n_x, dtype=bool))
        if guess is not None:
            carrying = np.nonzero(last.col_value[: ext.n_x] > 0)[0]
            self.pipeline.restart("levels", np.union1d(guess, carrying))

    def split_cost(self) -> np.ndarray:
        """The split rule's costs d of every allocation column (`split.split_cost`),
        computed once: the trials' flows and the split itself use them."""
        if self._split_cost is None:
            self._split_cost = split_cost(self.lp)
        return self._split_cost

    def _level_placing(self, held: np.ndarray, rising: np.ndarray, placed: float) -> float:
        """The level at which the gaps of `rising` (each at `pi U L`, up to full) and the
        others at `held` add up to `placed` (0 when they do at any level, the highest
        level any gap needs when they never do)."""
        scale, fundable = self.layout.scale[rising], self.forecaster.fundable
        base = float(held[~rising].sum())
        low, high = 0.0, float(self.layout.cap)
        if base + float(fundable[rising].sum()) <= placed:
            return high
        for _ in range(60):  # bisection: the sum is monotone, piecewise linear in L
            middle = 0.5 * (low + high)
            if base + float(np.minimum(scale * middle, fundable[rising]).sum()) < placed:
                low = middle
            else:
                high = middle
        return high

    def _try(self, forecast: Forecast, ahead: list[float], k: int
             ) -> tuple[StageSolution | None, float]:
        """The LP with the first k forecast stops held: its solution (None when no gap
        rises then, or it is infeasible) and its level (inf when no gap rises, -inf when
        infeasible)."""
        trial, still = self._trial(forecast, ahead, k)
        self.lps += 1
        try:
            solution = self.pipeline.solve_stage("levels", self.cost, self.bounds, trial,
                                                 trial=True)
        except SolverStopped:  # a trial that fails tells nothing; the search goes on
            log.info("stage 2: the solver stopped on a trial with %d forecast stops held", k)
            return None, -np.inf
        if solution.status != OPTIMAL:
            return None, -np.inf
        if not still.any():
            self._confirmed = solution
            return None, np.inf
        level = float(solution.col_value[self.layout.level_col])
        if self._reaches(level, ahead[k - 1]):
            self._confirmed = solution
        return solution, level

    def _slack(self, level: float) -> float:
        """How far below a forecast level an LP's level may come and still reach it: the
        relative tolerance, narrowed so that the widest rising gap moves at most
        `REACH_USD`."""
        slack = self.reach * abs(level)
        if self._widest > 0:
            slack = min(slack, REACH_USD / SCALE_USD / self._widest)
        return slack

    def _reaches(self, level: float, forecast: float) -> bool:
        """Whether an LP's level reaches a forecast level (`_slack`)."""
        return level >= forecast - self._slack(forecast)

    def _above(self, level: float) -> float:
        """The highest forecast level an LP's level reaches."""
        return level + self._slack(level)

    def _affordable(self, forecast: Forecast, ahead: list[float]) -> int:
        """The most forecast stops whose holds, with the gaps still rising at the same
        level, fit in the money stage 1b lets the fund place."""
        if not ahead:
            return 0
        scale = self.layout.scale
        fundable = self.forecaster.fundable
        floor = self.forecaster.floor
        kept = np.isfinite(self.held_amount)
        base = float(np.maximum(self.held_amount[kept], floor[kept]).sum())
        up = self.rising
        money = self.placeable

        def needed(k: int) -> float:
            level = ahead[k - 1]
            at = np.minimum(level, forecast.level[up]) * scale[up]
            return base + float(np.clip(at, floor[up], fundable[up]).sum())

        low, high = 0, len(ahead) + 1
        while high - low > 1:
            mid = (low + high) // 2
            if within_money(needed(mid), money):
                low = mid
            else:
                high = mid
        return max(low, 1)

    def _stop(self, stop: np.ndarray, level: float, rows: np.ndarray, values: np.ndarray,
              forecast: bool = False) -> None:
        layout = self.layout
        self._hold(self.rhs, stop, level)
        self.held_amount[stop] = layout.scale[stop] * level
        self.stop_step[layout.gaps[stop]] = len(self.steps)
        self.held[layout.gaps[stop]] = level / layout.unit
        self.rising &= ~stop
        self.level = max(self.level, level)
        self.steps.append(LevelStep(level / layout.unit, layout.gaps[stop], rows,
                                    values / layout.unit, forecast))
        log.info("stage 2 step %d: level %.9g, %d gaps stop%s, %d rising", len(self.steps),
                 level / layout.unit, int(stop.sum()), " (forecast)" if forecast else "",
                 int(self.rising.sum()))
        if self.watch is not None and self.reached is not None:
            hit = self.watch[:, layout.gaps[stop]].any(axis=1) & np.isnan(self.reached)
            self.reached[hit] = level / layout.unit
            if not np.isnan(self.reached).any():
                raise LevelReached(self.reached.copy())

    def _step(self, solution: StageSolution) -> None:
        """A step the LP solved: stop the gaps with a positive dual on their level rows."""
        layout = self.layout
        self.last = solution
        rising = self.rising
        level = float(solution.col_value[layout.level_col])
        # With z above its lower bound no floor row holds anything, yet the solver's dual
        # may balance one floor row's dual with a wrong-signed one on another, which the
        # refinement sets to 0: they move onto the level rows first, whole.
        floor_first = self._z_above_low(solution)
        if floor_first:
            self._move_floor_duals(solution, level, whole=True)
        move_held_duals(solution, self.layout, self.forecaster, self.cost, self.rising)
        fill_unnamed(solution, self.layout, self.forecaster, self.cost, self.rising, level)
        # HiGHS leaves reduced costs within its dual tolerance, not at 0; `certify` prices
        # them at their columns' bounds, beside USD 1e12 gaps dollars of a small gap's rise.
        exact = refined_duals(self.pipeline.lp, solution, self.cost, self.rhs)
        if exact is not None:
            solution.row_dual = exact
            solution.col_dual = self.cost - self.forecaster.transpose(exact)
        if not floor_first:
            self._move_floor_duals(solution, level)
        full = rising & (self.priority_e * level >= 1.0 - FULL_TOL)
        if full.any():
            _blend_full(solution, layout, full)
        dual = np.where(rising, -solution.row_dual[layout.level_rows], 0.0)
        share = dual * layout.scale
        by_share = rising & (share > STOP_SHARE)
        stop = by_share | full
        if by_share.any():
            stop |= rising & (share > 0) & (dual > WRITTEN_DUAL) \
                & (dual >= SAME_DUAL * float(dual[by_share].min()))
        if not stop.any():
            # The shares sum to 1 over the rising gaps: one of them always holds the most.
            stop[int(np.argmax(share))] = True
        nonzero = np.nonzero(np.abs(solution.row_dual) > WRITTEN_DUAL)[0]
        if level < self.level and float(layout.scale[stop].max()) * (self.level - level) \
                <= REACH_USD / SCALE_USD:
            # Below the last step's level by less than REACH_USD on every gap it stops: the
            # solver's tolerance, not a stop (at amounts of cents the holds before take
            # the money within the solver's feasibility tolerance, 1e-9 of USD 1 million,
            # from the gaps still rising). They stop at the last level: levels never fall.
            level = self.level
        self._stop(stop, level, nonzero, solution.row_dual[nonzero])

    def _z_above_low(self, solution: StageSolution) -> bool:
        """Whether the floor z is above its lower bound beyond a rounding (z* read exactly,
        its bound z* less the tolerance): its reduced cost must then be 0."""
        z = self.pipeline.lp.z_col
        if z is None:
            return False
        low = float(solution.bounds.get(z, (0.0, np.inf))[0])
        return float(solution.col_value[z]) - low > \
            (FLOOR_TIGHT + 10 * self.precision) * abs(low)

    def _move_floor_duals(self, solution: StageSolution, level: float,
                          whole: bool = False) -> None:
        """Move half the dual of each rising gap's floor row onto its level row, in place,
        where both rows are tight (the gap's level is the floor's coverage), keeping the
        dual optimal; `whole`: all of it, whatever its sign (z above its lower bound).

        At such a gap the two rows say the same, and a degenerate vertex dual may name
        the floor row alone: its level row's dual is then 0, the gap rises on and takes
        what the holds of the gaps stopped beside it give way (a huge gap's hold gives
        way by more than a small gap's tolerance). Moved whole, with every dual divided
        by 1 + e (e the moved duals times pi U), the dual stays feasible (z sits at its
        lower bound, whose reduced cost only shrinks; L's stays 0) and its bound stays
        L_k, since pi U L_k = U z_lo on those rows; the mean of that dual and the
        solver's is optimal too. With z above its lower bound, its reduced cost is 0 before
        every floor dual moves and after, and so is each allocation column's.
        """
        ext, layout = self.pipeline.lp, self.layout
        z = ext.z_col
        if z is None or not self.floor_rows.size:
            return
        rows = self.floor_rows
        has = self.rising & (rows >= 0)
        if not has.any():
            return
        floor_dual = np.where(has, solution.row_dual[np.maximum(rows, 0)], 0.0)
        z_value = float(solution.col_value[z])
        need = ext.fundable[layout.gaps] * z_value
        at_level = layout.scale * level
        # (Plus the solver's read-back precision, and a thousandth of a cent: a dual names a
        # floor row whose slack is below the solver's tolerance, and moving it moves the
        # bound by that slack times the dual.)
        apart = np.abs(at_level - need)
        tight = apart <= np.maximum((FLOOR_TIGHT + 10 * self.precision) * np.abs(need),
                                    REACH_USD / SCALE_USD)
        move = has & tight & ((floor_dual != 0.0) if whole else (floor_dual < -WRITTEN_DUAL))
        # ... so long as the bound moves by at most FLOOR_SHIFT of L in all: a move moves
        # it by the dual times the rows' slack, which beside gaps of a cent is no rounding
        # (a USD 0.01 gap at its floor, 1e-4 USD above its level, moved a step's bound
        # 1e-5 above its level).
        shift = np.where(move, np.abs(floor_dual) * apart, 0.0)
        order = np.argsort(shift, kind="stable")
        within = np.cumsum(shift[order]) <= FLOOR_SHIFT * abs(level)
        move[order[~within]] = False
        if not move.any():
            return
        moved = floor_dual[move]
        shifted = solution.row_dual.copy()
        shifted[layout.level_rows[move]] += moved
        shifted[rows[move]] = 0.0
        shifted /= 1.0 - float((moved * layout.scale[move]).sum())
        # Half of each (a convex combination of optimal duals is optimal): the floor rows
        # keep half their dual, so that `stopped_by` and `explain` still name the floor.
        # Whole when z is above its lower bound: its reduced cost must then be 0, which
        # floor duals (all <= 0 in an optimal dual) allow only at 0.
        keep = 0.0 if whole else 0.5
        solution.row_dual = keep * solution.row_dual + (1.0 - keep) * shifted
        solution.col_dual = self.cost - self.forecaster.transpose(solution.row_dual)
        log.debug("stage 2: the floor duals of %d gaps at the floor moved onto their level "
                  "rows", int(move.sum()))

    def _forecast_solution(self) -> StageSolution:
        """The last (forecast) step as a stage solution: its duals, and the allocation of
        the LP that confirmed it."""
        ext = self.pipeline.lp
        step = self.steps[-1]
        row_dual = np.zeros(ext.n_rows)
        row_dual[step.dual_rows] = step.dual_values * self.layout.unit
        col_value = self._confirmed.col_value if self._confirmed is not None \
            else np.zeros(ext.n_cols)
        col_dual = self.cost - self.forecaster.transpose(row_dual)
        return StageSolution(OPTIMAL, objective=step.level * self.layout.unit,
                             col_value=col_value, row_dual=row_dual, col_dual=col_dual,
                             bounds=dict(self.bounds))
