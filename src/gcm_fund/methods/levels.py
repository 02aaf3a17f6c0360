"""Priority levels (docs/model.md): the allocation that the policy alone decides.

Stage 1 (the floor) is section 4's. Stage 1b maximises the grant money placed, X*. Stage 2 is
progressive filling: every gap of E gets `pi * L` of its fundable need as the level L
rises, until a rule stops it. All of it is one model, solved again and again warm:

- a column `L` after z;
- per gap of E a **level row** `sum_f x - pi U L >= 0` ("rising"), and a **held row**
  `sum_f x >= 0`;
- one row `allocated[total]`: `sum x >= X* - 0.01 USD x |E|`.

Stopping a gap at level l is two right-hand-side changes and nothing else: its level row
is relaxed to `>= -pi U Lcap` (never binding, as some rising gap keeps L <= Lcap) and its
held row raised to `pi U l`. So each step is a warm dual-simplex re-solve of the same
HiGHS model, column pool and all. A gap stops when its level row has a positive dual
(in d L / d rhs terms a negative one): by complementary slackness it cannot rise
while the others keep the level.

Stage 3 (loans) minimises the loan burden with every gap held; then the **split rule**
(`split`) chooses how each gap's amount is split among its sources, which is the one part
the levels leave open.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gcm_fund.methods.level_filling import Filling, Layout, LevelStep
from gcm_fund.methods.level_tolerances import (
    EASE_RELATIVE_TOTAL,
    EASE_USD,
    EASINGS,
    WRITTEN_DUAL,
    LevelStage,
)
from gcm_fund.methods.split import least_burden_columns, solve_split
from gcm_fund.model.eligibility import gap_priority, loan_cost
from gcm_fund.model.lp import GE, LE, SCALE_USD, LinearProgram
from gcm_fund.model.spec import ceiling_margin, read_back_allowance, relaxed_ceiling_usd
from gcm_fund.solvers.backend import INFEASIBLE, OPTIMAL, Backend, SolverStopped, StageSolution
from gcm_fund.solvers.pipeline import Pipeline, Solution, reported_floor
from gcm_fund.solvers.pulp import refined_objective

log = logging.getLogger(__name__)

LEVEL_FAMILIES = ("level", "held", "ceiling", "allocated", "loan_burden")
# Money placed may fall short of X* by this much per gap of E (docs/model.md), in USD.
PLACED_SLACK_USD = 0.01
# The largest level-row coefficient pi U / unit (USD millions) the unit allows (`extend`).
LEVEL_SCALE_MAX = 2.0 ** 20
# Stage 1b is solved from scratch from this many allocation columns on (see run_levels).
FRESH_STAGE_1B_COLUMNS = 500_000

@dataclass
class LevelsResult:
    """What stage 2 found, by gap and by step."""

    priority: np.ndarray  # pi by gap (every gap)
    stop_step: np.ndarray  # by gap: the step that stopped it (from 0), -1 outside E
    held: np.ndarray  # by gap: the level l it is held at (NaN outside E)
    steps: list[LevelStep]
    allocated_usd: float  # X*, stage 1b
    placed_usd: float  # what later stages keep: sum x >= this (X* less the slack)
    loan_burden_usd: float  # sum of lambda (1 - g) burden x over the final allocation
    stage3: bool  # whether stage 3 ran
    ext: LinearProgram  # the LP with the level column and rows
    # Stage 1b's and stage 3's non-zero duals (d objective / d rhs; stage 3 maximises
    # minus the loan burden), by stage name ("1b", "3"): rows of `ext` and their values.
    stage_duals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    lps: int = 0  # LPs solved in stage 2 (docs/outputs.md's `steps`): forecast steps need none
    # The donor figures by re-solve (`donor_figures.DonorFigures`), set by the engine.
    donor: Any = None




def _attempt(run: Callable[[], StageSolution], retry: bool) -> StageSolution | None:
    """`run()`; None when the solver stops and the stage may be retried (`retry`)."""
    try:
        return run()
    except SolverStopped:
        if not retry:
            raise
        return None


def distinct_level_values(held: np.ndarray) -> list[float]:
    """The distinct levels of the gaps (`LevelsResult.held`), ascending: values within
    1e-6 relative count as one (CBC reads values back with 8 significant digits, so one
    level may come back twice); each is the lowest of its cluster. Unlike the steps,
    they are unique: the sorted leximin vector, each value once."""
    values = np.sort(held[np.isfinite(held)])
    if len(values) == 0:
        return []
    starts = np.concatenate([[True], np.diff(values) > 1e-6 * np.maximum(np.abs(values[1:]),
                                                                         1e-12)])
    return [float(v) for v in values[starts]]


def level_ranks(held: np.ndarray) -> np.ndarray:
    """By gap: the rank of its level among `distinct_level_values(held)` (1 the lowest;
    NaN outside E). Unique like the levels, unlike the step that stopped the gap."""
    values = np.asarray(distinct_level_values(held))
    ranks = np.full(len(held), np.nan)
    ok = np.isfinite(held)
    if len(values):
        # Each level's cluster starts at its lowest value: the last start at or below it.
        ranks[ok] = np.searchsorted(values, held[ok], side="right")
    return ranks


def extend(lp: LinearProgram, priority: np.ndarray) -> tuple[LinearProgram, Layout]:
    """The LP with the level column L and the level, held, allocated (and loan burden)
    rows, each at a right-hand side that no allocation reaches: stages 1 and 1b see
    section 4's LP, and each later stage changes right-hand sides only.

    The relaxed sides are finite (a level row at -pi U Lcap, which holds for L <= Lcap,
    and some gap still rising keeps L there), so that PuLP's solvers get them too.
    """
    gaps_e = np.nonzero(lp.gap_eligible)[0]
    n_e = len(gaps_e)
    position = np.full(len(lp.data.gaps), -1)
    position[gaps_e] = np.arange(n_e)
    # Between the largest and smallest priority (their spread is at most
    # limits.MAX_PRIORITY_SPREAD), so that every level row's coefficient pi U / unit
    # stays well inside what the solvers hold.
    # (log2 of each apart: their product over- or underflows at weights of 1e300.)
    unit = float(2.0 ** round(0.5 * (math.log2(priority[gaps_e].max())
                                     + math.log2(priority[gaps_e].min())))) if n_e else 1.0
    scale = priority[gaps_e] / unit * lp.fundable[gaps_e]
    if n_e and float(scale.max()) > LEVEL_SCALE_MAX:
        # A level row's dual per unit of money is about 1 / sum pi U: beside gaps of USD
        # 1e13 at the larger priority it fell below the solvers' dual tolerance (1e-9), and
        # HiGHS called a step optimal that spent a gap's whole need above its level.
        unit *= float(2.0 ** math.ceil(math.log2(float(scale.max()) / LEVEL_SCALE_MAX)))
        scale = priority[gaps_e] / unit * lp.fundable[gaps_e]
    cap = float(unit / priority[gaps_e].min()) if n_e else 1.0
    n_x = lp.n_x
    x_cols = np.arange(n_x)
    row_of_x = position[lp.var_gap]
    ext = lp.with_columns(["L"], sp.csc_matrix((lp.n_rows, 1)))
    level_col = ext.column("L")
    assert level_col is not None
    n_cols = ext.n_cols
    gaps = lp.data.gaps
    keys = {"iso3": gaps["iso3"].to_numpy()[gaps_e], "target": gaps["target"].to_numpy()[gaps_e]}
    level = sp.csr_matrix((np.concatenate([np.ones(n_x), -scale]),
                           (np.concatenate([row_of_x, np.arange(n_e)]),
                            np.concatenate([x_cols, np.full(n_e, level_col)]))),
                          shape=(n_e, n_cols))
    relaxed = -scale * cap
    ext = ext.with_rows("level", keys, level, GE, relaxed)
    held = sp.csr_matrix((np.ones(n_x), (row_of_x, x_cols)), shape=(n_e, n_cols))
    ext = ext.with_rows("held", keys, held, GE, np.zeros(n_e))
    # The same sums from above, relaxed until stage 2 ends.
    ext = ext.with_rows("ceiling", keys, held, LE,
                        relaxed_ceiling_usd(lp.fundable[gaps_e] * SCALE_USD) / SCALE_USD)
    total = {"total": np.array(["total"], dtype=object)}
    grants = x_cols[grant_columns(lp)]
    ext = ext.with_rows("allocated", total, sp.csr_matrix(
        (np.ones(len(grants)), (np.zeros(len(grants), dtype=int), grants)), shape=(1, n_cols)),
        GE, np.zeros(1))
    burden = loan_cost(lp.data, lp.policy, lp.var_source, lp.var_gap)
    burden_row = None
    if lp.policy.loans.penalty > 0 and bool((burden > 0).any()):
        on = np.nonzero(burden > 0)[0]
        burden_row = ext.n_rows
        # Above any burden the pledges could carry, until stage 3 sets it.
        ext = ext.with_rows("loan_burden", total, sp.csr_matrix(
            (burden[on], (np.zeros(len(on), dtype=int), on)), shape=(1, n_cols)), LE,
            np.array([float(burden.max() * lp.pledge.sum()) + 1.0]))
    start = lp.n_rows
    gap_block = lp.block("gap")
    gap_rows = np.zeros(0, dtype=np.int64) if gap_block is None else \
        gap_block.start + np.searchsorted(np.unique(lp.var_gap), gaps_e)
    layout = Layout(level_col=level_col, gaps=gaps_e, level_rows=np.arange(n_e) + start,
                    held_rows=np.arange(n_e) + start + n_e,
                    ceiling_rows=np.arange(n_e) + start + 2 * n_e, allocated_row=start + 3 * n_e,
                    burden_row=burden_row, gap_rows=gap_rows, cap=cap, scale=scale,
                    relaxed=relaxed, position=position, unit=unit)
    return ext, layout


def grant_columns(lp: LinearProgram) -> np.ndarray:
    """Which allocation columns are grants: stage 1b counts their money only (docs/model.md)."""
    return np.asarray(lp.data.source_table["instrument"] != "loan")[lp.var_source]


def solve_levels(lp: LinearProgram, solver: str | Backend = "highs") -> Solution:
    """The allocation of docs/model.md for `lp` with the named solver (or backend made
    for the extended LP, `extend`)."""
    priority = gap_priority(lp.data, lp.policy)
    ext, layout = extend(lp, priority)
    return run_levels(Pipeline(ext, solver), lp, layout, priority)


def run_levels(pipeline: Pipeline, lp: LinearProgram, layout: Layout, priority: np.ndarray,
               diagnosed: bool = True, funded: np.ndarray | None = None,
               forecast: bool = True, watch: np.ndarray | None = None) -> Solution:
    """Stages 1, 1b, 2 (levels), 3 (loans) and the split on a pipeline over the extended
    LP (`extend(lp)`), at the pipeline's right-hand sides.

    `funded` (by gap): the gaps some source of positive pledge may fund at these
    right-hand sides (a sweep sets pledges to 0); the others leave E. Default: all of E.
    `forecast=False` solves one LP per step instead of forecasting local stops
    (`level_filling`): the same levels, found more slowly.
    `watch` (groups x gaps): raise `LevelReached` once every group has a stopped gap, with
    the level of each group's first (the donor figures' re-solves need no more).

    Returns the solution in `lp`'s terms: stage 2 is the last level step (its duals
    d L / d rhs), `levels` what each step found. Raises `InfeasibleError` when no
    allocation meets the policy.
    """
    ext = pipeline.lp
    if pipeline.unmet_thematic:
        raise pipeline.infeasible()
    rhs = pipeline.rhs.copy()
    n_cols = ext.n_cols
    precision = float(pipeline.backend("levels").info.value_precision)
    floor, stage1, bounds = pipeline.floor_stage(precision, diagnosed)

    def solve(stage: LevelStage, cost: np.ndarray, allowed: np.ndarray | None = None,
              last: StageSolution | None = None, fresh: bool = False,
              step: int | None = None) -> StageSolution:
        name = stage.label(step)

        def run() -> StageSolution:
            if allowed is not None:  # the split: `cost` is d, by allocation column
                return solve_split(pipeline, layout, cost, bounds, rhs, allowed, last)
            return pipeline.solve_stage("levels", cost, bounds, rhs, fresh=fresh)

        held_stage = stage.eases_holds
        solution = _attempt(run, held_stage)
        for relative, capped in EASINGS if held_stage else ():
            if solution is not None and solution.status != INFEASIBLE:
                break
            # The holds came back from earlier solves within tolerances: give them a
            # little more room before calling it a failure, first at most a few cents (a
            # relative easing of a huge gap's hold is money the gaps still rising take),
            # then 1e-7 of each level. A warning, not a step: on a level step the room it
            # frees goes to the gaps still rising, which certify cannot see.
            log.warning("%s: %s at the holds; easing them by %g of each level%s, which may "
                        "move amounts by that much", name,
                        "infeasible" if solution is not None else "the solver stopped",
                        relative, " (capped)" if capped else "")
            room = (EASE_USD / SCALE_USD + EASE_RELATIVE_TOTAL * float(lp.pledge.sum())
                    if capped else np.inf)
            # At least a thousandth of a cent each: a relative easing frees nothing on the
            # holds of gaps of a dollar.
            least = EASE_USD / SCALE_USD
            rhs[layout.held_rows] -= np.minimum(
                np.maximum(np.abs(rhs[layout.held_rows]) * relative, least), room)
            rhs[layout.ceiling_rows] += np.minimum(
                np.maximum(np.abs(rhs[layout.ceiling_rows]) * relative, least), room)
            if not capped:  # X* less its slack: at USD 1e13 it binds as hard as the holds
                rhs[layout.allocated_row] -= abs(rhs[layout.allocated_row]) * relative
            solution = _attempt(run, held_stage)
        if solution is None or (held_stage and solution.status == INFEASIBLE):
            raise SolverStopped(f"{name}: the solver finds the held levels infeasible")
        if solution.status == INFEASIBLE:
            raise pipeline.infeasible(diagnosed)
        if stage is not LevelStage.STAGE_2_STEP:  # a step logs its level below
            log.info("%s: objective %.12g", name, solution.objective)
        return solution

    stage_duals: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def keep_duals(stage: str, solution: StageSolution) -> StageSolution:
        # What `certify` needs to prove the stage optimal from the run folder alone.
        nonzero = np.nonzero(np.abs(solution.row_dual) > WRITTEN_DUAL)[0]
        stage_duals[stage] = (nonzero, solution.row_dual[nonzero])
        return solution

    # Stage 1b: the most grant money the rules let the fund place.
    cost = np.zeros(n_cols)
    cost[: lp.n_x] = grant_columns(lp)
    # From scratch on large LPs, where HiGHS's presolve pays; warm from stage 1's basis on
    # small ones, where it needs few pivots or none (docs/performance.md).
    n_e = len(layout.gaps)
    slack = PLACED_SLACK_USD * n_e / SCALE_USD
    if not cost.any():
        # No grant may be placed: X* = 0 needs no solve (and CBC refuses an LP whose
        # objective is empty). The level steps find an infeasible policy as well.
        total = 0.0
        stage_duals["1b"] = (np.zeros(0, dtype=np.int64), np.zeros(0))
    else:
        placed = keep_duals("1b", solve(LevelStage.STAGE_1B, cost,
                                        fresh=lp.n_x >= FRESH_STAGE_1B_COLUMNS))
        total = float(placed.col_value[: lp.n_x] @ cost[: lp.n_x])
    if precision > 0 and cost.any():
        # Where the money placed binds, docs/model.md's slack is money the levels spend: X*
        # read back rounded (dollars off on large sums) would change the levels.
        refined = refined_objective(ext, placed, cost, rhs)
        if refined is None:
            slack = max(slack, read_back_allowance(precision) * total)
        else:
            log.info("stage 1b: X* refined from %.12g to %.12g", total, refined)
            total = refined
    rhs[layout.allocated_row] = max(0.0, total - slack)

    # Stage 2: progressive filling.
    funded_e = np.ones(n_e, dtype=bool) if funded is None else funded[layout.gaps].copy()
    filling = Filling(pipeline, lp, layout, priority, rhs, bounds, precision, funded_e, total,
                      solve, forecast, watch)
    filling.run()
    stop_step, held, steps, last = filling.stop_step, filling.held, filling.steps, filling.last

    # Stage 3 and the split hold each gap from above too: the holds below give way by
    # the solver's precision, and the money that frees (dollars over hundreds of gaps)
    # must not pile onto one stopped gap, past docs/model.md's tolerance.
    in_e = np.isfinite(held[layout.gaps])
    rhs[layout.ceiling_rows[in_e]] = (layout.scale[in_e] * held[layout.gaps[in_e]] * layout.unit
                                      * (1.0 + ceiling_margin(precision)))
    burden = loan_cost(lp.data, lp.policy, lp.var_source, lp.var_gap)
    allowed = np.ones(lp.n_x, dtype=bool)
    before_split = last
    if layout.burden_row is not None:
        cost = np.zeros(n_cols)
        cost[: lp.n_x] = -burden
        stage3 = keep_duals("3", solve(LevelStage.STAGE_3, cost))
        least = float(burden @ stage3.col_value[: lp.n_x])
        rhs[layout.burden_row] = least * (1.0 + 1e-9 + read_back_allowance(precision)) + 1e-9
        allowed = least_burden_columns(ext, stage3, burden)
        before_split = stage3

    final = solve(LevelStage.SPLIT, filling.split_cost(), allowed, before_split)
    x_usd = np.clip(final.col_value[: lp.n_x], 0.0, None) * SCALE_USD

    if last is None:  # E is empty: nothing to fill; the last stage stands in
        last = final
    base_cols = lp.n_cols
    # A level step's objective and duals are in L x unit; back to L (the final stage, when
    # E is empty, has no level: its figures stand as they are).
    unit = layout.unit if last is not final else 1.0
    stage2 = StageSolution(OPTIMAL, objective=last.objective / unit,
                           col_value=np.concatenate([final.col_value[: lp.n_x],
                                                     last.col_value[lp.n_x:base_cols]]),
                           row_dual=last.row_dual[: lp.n_rows] / unit,
                           col_dual=last.col_dual[:base_cols] / unit, bounds=dict(bounds))
    base_stage1 = None if stage1 is None else StageSolution(
        OPTIMAL, objective=stage1.objective, col_value=stage1.col_value[:base_cols],
        row_dual=stage1.row_dual[: lp.n_rows], col_dual=stage1.col_dual[:base_cols],
        bounds=stage1.bounds)
    result = LevelsResult(priority=priority, stop_step=stop_step, held=held, steps=steps,
                          allocated_usd=total * SCALE_USD,
                          placed_usd=float(rhs[layout.allocated_row]) * SCALE_USD,
                          loan_burden_usd=float(burden @ x_usd),
                          stage3=layout.burden_row is not None, ext=ext,
                          stage_duals=stage_duals, lps=filling.lps)
    shown, floor_max = reported_floor(lp.policy, floor)
    return Solution(status=OPTIMAL, floor=shown, floor_max=floor_max,
                    weighted_usd=float(lp.weight @ x_usd),
                    x_usd=x_usd, stage1=base_stage1, stage2=stage2,
                    solver=pipeline.backend("levels").info, rhs=pipeline.rhs[: lp.n_rows].copy(),
                    z_col=lp.z_col, levels=result)
