"""Pledge sweeps (docs/commands.md): what `allocate` gives at each level of one source's pledge.

The LP is built once, with the swept pledge set to a positive value so that the source's
triples exist, and re-solved at every level by changing right-hand sides only
(`Pipeline.set_pledges`: `budget[f]`, `source_state[f,*]` and `state_share[*]` move with
B_f). The stages are `allocate`'s, run by a warm `Pipeline`: one highspy model per stage,
each keeping its own objective, so a new level changes only row bounds (and z's lower
bound in stage 2), the previous basis stays dual feasible, and the dual simplex goes on
from it in a few pivots. Stage 1 does not even run where its last optimal basis stays
primal feasible at the new level: z* then follows from one solve with that basis's
factors (`HighsBackend.value_from_basis`).

Files: `FILE.csv` (docs/commands.md columns), `FILE.breakpoints.csv`
(`pledge_usd,pledge_below_usd,pledge_above_usd,marginal_below,marginal_above`: a kink of
the floor, the money placed or (under levels) a gap's level, or under weighted of the
weighted objective, lies in the bracket (found exactly where its two ends are equal);
`marginal_below` and `marginal_above` are the marginal value's figure's slopes on the
pieces either side, blank where a piece is not known), `FILE.png` (floor and levels or
weighted objective against the pledge, breakpoints dotted); with `by`, the
`next_dollar` files. With `--sources a,b` every named pledge is set to the level. The
same inputs give the same bytes in every file.

Eligibility includes B_f > 0. At a level of 0 the source has no eligible triple: its
budget row forces its amounts to 0, its `marginal_value` is blank, and a gap whose only
eligible sources are the swept ones leaves the floor set G, so its `floor` row is dropped
(made free) at that level; a thematic target that only the swept sources may fund makes
that level infeasible, as it makes `allocate` infeasible. The result is the LP that an
independent `allocate` with pledge 0 builds, plus columns fixed at 0.

Feasibility is monotone in the pledge: a larger B_f only loosens `budget`, `state_share` and
`source_state`. So the infeasible levels, if any, are the lowest ones.

Marginal value: under weighted the budget dual; under levels docs/outputs.md's one-sided
difference `(m(B + h) - m(B)) / h` by one more warm solve per level (up to the step that
stops one of the gaps in question), `m` the lowest level
among the gaps the swept sources can fund.

Breakpoints (`kinks`): the kinks are searched from the levels' own figures, with at most
`max_solves` more solves and never below a bracket of max(`breakpoint_tol_usd`,
`rel_width` x pledge): the search always ends.

    >>> from gcm_fund import api, sweep                                  # doctest: +SKIP
    >>> loaded = api.load("inputs", "models/baseline.toml")              # doctest: +SKIP
    >>> result = sweep.sweep(loaded.data, loaded.policy_file.policy, ["deu"],
    ...                      sweep.parse_levels("0:5e8:11"))             # doctest: +SKIP
    >>> sweep.write_sweep(result, "deu.csv")                             # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gcm_fund.analyses.kinks import DEFAULT_MAX_SOLVES, DEFAULT_REL_WIDTH, Kink, Line, Point, Search
from gcm_fund.analyses.sweep_files import (
    BREAKPOINT_COLUMNS,
    COLUMNS,
    PROGRAMME_COLUMNS,
    breakpoint_rows,
    chart_png,
    companion_paths,
    level_columns,
    output_paths,
    sweep_columns,
    sweep_rows,
    write_sweep,
)
from gcm_fund.errors import InfeasibleError, UsageError
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import did_you_mean
from gcm_fund.methods.donor_figures import LowestLevel, level_difference
from gcm_fund.methods.levels import distinct_level_values
from gcm_fund.methods.strategy import method_named, method_of
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import SCALE_USD, LinearProgram, build
from gcm_fund.model.scenario import with_table
from gcm_fund.solvers.backend import INFEASIBLE, OPTIMAL, SolverInfo
from gcm_fund.solvers.pricing import ColumnPool

# The files' names stay importable from here, where callers found them.
__all__ = ["BREAKPOINT_COLUMNS", "COLUMNS", "PROGRAMME_COLUMNS", "Breakpoint", "Level",
           "SweepResult", "breakpoint_rows", "chart_png", "companion_paths", "level_columns",
           "output_paths", "parse_levels", "reference_level", "source_indices", "sweep",
           "sweep_columns", "sweep_rows", "with_pledges", "write_sweep"]

# Two marginal values closer than this (relative to max(1, |value|)) are the same value:
# duals come out of the simplex accurate to about 1e-12 of the weights.
MARGINAL_TOL = 1e-9
# Under levels the marginal value is a difference of two solves over h: two are the same
# within this share of the larger.
LEVELS_MARGINAL_TOL = 1e-4
DEFAULT_BREAKPOINT_TOL_USD = 1.0

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Level:
    """What `allocate` gives at one pledge level (amounts in USD).

    `floor` is None when G is empty; `marginal_value` is None when no swept source has an
    eligible triple; every figure but `pledge_usd` and `status` is None when infeasible.
    """

    pledge_usd: float
    status: str
    floor: float | None = None
    weighted_usd: float | None = None
    allocated_usd: float | None = None
    marginal_value: float | None = None
    # Under levels (docs/model.md): the distinct levels of the gaps, ascending (None under
    # weighted, or when infeasible).
    levels: tuple[float, ...] | None = None
    # Under levels: every gap's level (NaN outside E) and m (docs/outputs.md), the lowest level
    # among the gaps the swept sources can fund; not written, the breakpoints' figures.
    gap_levels: np.ndarray | None = field(default=None, repr=False, compare=False)
    lowest_level: float | None = None
    # Every gap's amount in USD (all sources), for `next_dollar`: who gets the money.
    gap_amounts: np.ndarray | None = field(default=None, repr=False, compare=False)
    # docs/terms.md: `results.terms_metrics` of the allocation, in `TERMS_METRICS` order; derived
    # from the allocation, so left out of a level's equality.
    terms: tuple[float | None, ...] | None = field(default=None, compare=False)
    # Under programmes (docs/programmes.md): the value V (USD), how many programmes are funded, and
    # their ids.
    programmes: tuple[float, int, str] | None = None


@dataclass(frozen=True)
class Breakpoint:
    """The marginal value changes somewhere in [pledge_below_usd, pledge_above_usd]: it is
    `marginal_below` at the lower end and `marginal_above` at the upper one."""

    pledge_below_usd: float
    pledge_above_usd: float
    marginal_below: float | None
    marginal_above: float | None

    @property
    def pledge_usd(self) -> float:
        """The middle of the bracket, to the cent: the breakpoint's estimate."""
        return round((self.pledge_below_usd + self.pledge_above_usd) / 2, 2)


@dataclass
class SweepResult:
    """The levels of a sweep, in order, and the breakpoints found between them."""

    source_ids: tuple[str, ...]
    levels: list[Level]
    breakpoints: list[Breakpoint]
    solver: SolverInfo
    solves: int = 0  # warm two-stage solves, refinement included
    extra: dict[str, Any] = field(default_factory=dict)
    method: str = "weighted"  # the policy's `[allocation] method`


# Each level is one warm re-solve and one row of every table: the limit keeps a sweep's
# time and files within reason on large inputs, and a typo such as 999999999999 must not
# try to allocate terabytes.
MAX_LEVELS = 10_000


def parse_levels(text: str) -> np.ndarray:
    """`START:STOP:N` as N evenly spaced levels in USD, both ends included, to the cent.

    1 <= N <= MAX_LEVELS and 0 <= START <= STOP, else `UsageError`. With N = 1 the one
    level is START.

    >>> parse_levels("0:1e6:5").tolist()
    [0.0, 250000.0, 500000.0, 750000.0, 1000000.0]
    """
    parts = text.split(":")
    usage = f"--pledges: got {text!r}, expected START:STOP:N such as 0:5e8:51"
    if len(parts) != 3:
        raise UsageError(usage)
    try:
        start, stop = (_finite(p) for p in parts[:2])
        count = int(parts[2].strip())
    except ValueError:
        raise UsageError(usage) from None
    if count < 1:
        raise UsageError(f"--pledges: N must be at least 1, got {count}")
    if count > MAX_LEVELS:
        raise UsageError(f"--pledges: N must be at most {MAX_LEVELS:,}, got {count:,} "
                         "(sweep a narrower range in several runs)")
    if not 0 <= start <= stop:
        raise UsageError(f"--pledges: need 0 <= START <= STOP, got START {parts[0].strip()} "
                         f"and STOP {parts[1].strip()}")
    return np.round(np.linspace(start, stop, count), 2)


def _finite(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def source_indices(data: ProblemData, source_ids: Sequence[str]) -> np.ndarray:
    """The row of each named source in `data.sources`; unknown or repeated ids are an error."""
    known = list(data.sources["source_id"])
    if not source_ids:
        raise UsageError("name a source to sweep: --source ID or --sources a,b")
    problems = []
    seen: set[str] = set()
    for sid in source_ids:
        if sid not in known:
            problems.append(f"unknown source {sid!r}{did_you_mean(sid, known)}")
        elif sid in seen:
            problems.append(f"source {sid!r} named twice")
        seen.add(sid)
    if problems:
        raise UsageError("; ".join(problems))
    return np.array([known.index(s) for s in source_ids], dtype=np.int64)


def with_pledges(data: ProblemData, pledges: dict[str, float]) -> ProblemData:
    """The same inputs with some sources' `pledge_usd` replaced (ids must exist)."""
    index = source_indices(data, list(pledges))
    column = data.source_table["pledge_usd"].copy()
    column[index] = [float(pledges[s]) for s in pledges]
    return with_table(data, data.source_table.replaced("pledge_usd", column.tolist()))


def reference_level(data: ProblemData, policy: Policy, source_ids: Sequence[str],
                    level_usd: float) -> Level:
    """One level the slow way, as `allocate` does it: a fresh build and a cold solve.

    The sweep's reference in tests and in the benchmark.
    """
    from gcm_fund.engine import solve as solve_cold

    changed = with_pledges(data, dict.fromkeys(source_ids, level_usd))
    try:
        lp, solution, tables = solve_cold(changed, policy)
    except InfeasibleError:
        return Level(float(level_usd), INFEASIBLE)
    marginal = tables.sources_summary.set_index("source_id")["marginal_value"]
    values = [float(marginal[s]) for s in source_ids if not math.isnan(marginal[s])]
    value = float(sum(values)) if values else None
    if solution.levels is not None:  # docs/outputs.md: a re-solve, cold here
        value = _cold_difference(lp, solution.levels.held, source_indices(data, source_ids),
                                 float(level_usd))
    return Level(
        pledge_usd=float(level_usd),
        status=OPTIMAL,
        floor=solution.floor,
        weighted_usd=solution.weighted_usd,
        allocated_usd=float(tables.allocations["amount_usd"].sum()),
        marginal_value=value,
        levels=_levels_of(solution.levels),
        terms=_terms_of(lp, solution.x_usd),
    )


def _cold_difference(lp: LinearProgram, held: np.ndarray, swept: np.ndarray,
                     level_usd: float) -> float | None:
    """The sweep's marginal value under levels on a fresh pipeline (`_WarmSweep`'s does the
    same on a warm one)."""
    lowest = lowest_level(held, np.unique(lp.var_gap[np.isin(lp.var_source, swept)]))
    if lowest is None or level_usd <= 0:
        return None
    h = marginal_step_usd(level_usd)
    pledges = lp.pledge * SCALE_USD
    pledges[swept] = level_usd + h
    gaps = np.zeros(len(lp.data.gaps), dtype=bool)
    gaps[lp.var_gap[np.isin(lp.var_source, swept)]] = True
    higher = float(LowestLevel(lp).at(pledges, gaps[None, :])[0])
    return None if math.isnan(higher) else level_difference(higher, lowest, h)


def _terms_of(lp: LinearProgram, x_usd: np.ndarray) -> tuple[float | None, ...]:
    """docs/terms.md's figures of the allocation as written (to the cent)."""
    from gcm_fund.outputs.results import TERMS_METRICS, terms_metrics

    found = terms_metrics(lp, np.round(x_usd, 2))
    return tuple(found[name] for name in TERMS_METRICS)


def _levels_of(levels: Any) -> tuple[float, ...] | None:
    """The distinct levels of a levels solution, ascending; None under weighted."""
    if levels is None:
        return None
    return tuple(distinct_level_values(levels.held))


class _WarmSweep:
    """`allocate` of one LP at many pledge levels of the swept sources: a warm `Pipeline`
    (one HiGHS model per stage, sharing a column pool) whose pledges change between
    levels."""

    def __init__(self, lp: LinearProgram, swept: np.ndarray, base_pledges_usd: np.ndarray,
                 pool_options: Mapping[str, Any] | None = None):
        self.lp = lp
        self.swept = swept
        self.base = base_pledges_usd.astype(float)
        self.method = method_of(lp.policy)
        self.stages = self.method.warm(lp, pool_options)
        self.pipeline = self.stages.pipeline
        self.solves = 0
        self.swept_budget_rows = self._budget_rows(swept)
        # docs/outputs.md: the gaps the swept sources can fund, whose lowest level is `m`.
        self.fundable_gaps = np.unique(lp.var_gap[np.isin(lp.var_source, swept)])
        # The marginal value's re-solves, on a pipeline of their own (made when first needed).
        self.finder: LowestLevel | None = None

    @property
    def pool(self) -> ColumnPool:
        """The column pool both stages share."""
        assert self.pipeline.pool is not None
        return self.pipeline.pool

    @property
    def stage1_skipped(self) -> int:
        """Levels whose z* came from stage 1's last basis, without a solve."""
        return self.pipeline.stage1_skipped

    def _budget_rows(self, swept: np.ndarray) -> np.ndarray:
        budget = self.lp.block("budget")
        if budget is None:
            return np.zeros(0, dtype=np.int64)
        rows = np.nonzero(np.isin(self.lp._budget_sources, swept))[0]
        return budget.start + rows

    def _solution(self, level_usd: float) -> Any:
        pledges = self.base.copy()
        pledges[self.swept] = level_usd
        self.solves += 1
        return self.stages.solve(pledges)

    def solve(self, level_usd: float, marginal: bool = True) -> Level:
        """Every stage at this level of every swept pledge; with `marginal`, under levels,
        one more solve at the level plus h for the marginal value (docs/outputs.md)."""
        try:
            solution = self._solution(level_usd)
        except InfeasibleError:
            return Level(level_usd, INFEASIBLE)
        value: float | None = None
        selection = solution.programmes
        gap_levels = None if solution.levels is None else solution.levels.held
        lowest = lowest_level(gap_levels, self.fundable_gaps)
        if len(self.swept_budget_rows) and level_usd > 0 and marginal and selection is None:
            # (docs/programmes.md: no marginal value under programmes)
            if self.method.has_levels:
                value = self._difference(level_usd, lowest)
            else:
                dual = solution.stage2.row_dual[self.swept_budget_rows] * \
                    self.method.budget_dual_per_usd
                # A budget dual is >= 0 in exact arithmetic; a solver's -1e-12 is noise.
                value = float(np.maximum(dual, 0.0).sum())
        return Level(
            pledge_usd=level_usd,
            status=OPTIMAL,
            floor=solution.floor,
            weighted_usd=solution.weighted_usd,
            allocated_usd=float(np.round(solution.x_usd, 2).sum()),
            marginal_value=value,
            levels=_levels_of(solution.levels),
            gap_levels=gap_levels,
            lowest_level=lowest,
            terms=_terms_of(self.lp, solution.x_usd),
            programmes=None if selection is None else (
                selection.value * SCALE_USD, int(selection.funded.sum()),
                ";".join(p for p, f in zip(selection.model.ids, selection.funded, strict=True)
                         if f)),
            gap_amounts=np.bincount(self.lp.var_gap, weights=np.round(solution.x_usd, 2),
                                    minlength=len(self.lp.data.gaps)),
        )

    def _difference(self, level_usd: float, lowest: float | None) -> float | None:
        """docs/outputs.md's marginal value: (m(B + h) - m(B)) / h, m(B + h) by a re-solve
        up to the first level step that stops one of the swept sources' gaps."""
        if lowest is None:
            return None
        if self.finder is None:
            self.finder = LowestLevel(self.lp)
        h = marginal_step_usd(level_usd)
        pledges = self.base.copy()
        pledges[self.swept] = level_usd + h
        gaps = np.zeros(len(self.lp.data.gaps), dtype=bool)
        gaps[self.fundable_gaps] = True
        self.solves += 1
        try:
            higher = float(self.finder.at(pledges, gaps[None, :])[0])
        except InfeasibleError:  # looser budgets cannot make a feasible policy infeasible
            return None
        return None if math.isnan(higher) else level_difference(higher, lowest, h)


def marginal_step_usd(pledge_usd: float) -> float:
    """docs/outputs.md's step h of the marginal value: max(USD 1, 1e-6 B_f)."""
    return max(1.0, 1e-6 * float(pledge_usd))


def lowest_level(gap_levels: np.ndarray | None, gaps: np.ndarray) -> float | None:
    """m of docs/outputs.md: the lowest level among these gaps (None when none of them is in E)."""
    if gap_levels is None or len(gaps) == 0:
        return None
    values = gap_levels[gaps]
    values = values[np.isfinite(values)]
    return float(values.min()) if len(values) else None


def _figures(level: Level, has_levels: bool) -> np.ndarray:
    """The figures whose kinks are breakpoints: floor, money placed, then the marginal
    value's figure (m under levels, the weighted objective under weighted) and under
    levels every gap's level."""
    def number(value: float | None) -> float:
        return np.nan if value is None else float(value)

    head = [number(level.floor), number(level.allocated_usd)]
    if not has_levels:
        return np.array([*head, number(level.weighted_usd)])
    gaps = level.gap_levels if level.gap_levels is not None else np.zeros(0)
    return np.concatenate([head, [number(level.lowest_level)], gaps])


def _tolerance(has_levels: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Absolute tolerance per figure: USD 1 plus 1e-9 for amounts (cents rounded over
    every allocation row), 1e-8 of max(1, value) for coverage and levels."""
    def tolerance(values: np.ndarray) -> np.ndarray:
        size = np.abs(np.nan_to_num(values))
        out = 1e-8 * np.maximum(1.0, size)
        usd = [1] if has_levels else [1, 2]
        out[usd] = 1.0 + 1e-9 * size[usd]
        return out
    return tolerance


def sweep(data: ProblemData, policy: Policy, source_ids: Sequence[str], levels: np.ndarray,
          *, breakpoint_tol_usd: float | None = DEFAULT_BREAKPOINT_TOL_USD,
          max_solves: int = DEFAULT_MAX_SOLVES, rel_width: float = DEFAULT_REL_WIDTH,
          progress: Progress | None = None,
          pool_options: Mapping[str, Any] | None = None) -> SweepResult:
    """`allocate` at every level of the named sources' pledges, all set to the same level.

    `marginal_value`: under levels docs/outputs.md's one-sided difference of the lowest level
    among the gaps the swept sources can fund, every swept pledge raised by h; under
    weighted the sum of their budget duals.
    Breakpoints are the kinks of the floor, the money placed and (under levels) every
    gap's level, or the weighted objective (`kinks`). `breakpoint_tol_usd`: a kink is
    searched to a bracket max(this, `rel_width` x pledge) wide, with at most `max_solves`
    solves beyond the levels' own; None reports the pairs of neighbouring levels that
    hold a kink and whose marginal values differ, without further solves.
    `pool_options`: keyword arguments of the `ColumnPool` both stages share.
    """
    swept = source_indices(data, source_ids)
    levels = np.asarray(levels, dtype=float)
    base = data.sources["pledge_usd"].to_numpy(dtype=float)
    # Build with a positive pledge, so that the swept sources' triples exist at every level.
    build_level = float(levels.max()) if levels.size and levels.max() > 0 else 1.0
    lp = build(with_pledges(data, dict.fromkeys(source_ids, build_level)), policy)
    warm = _WarmSweep(lp, swept, base, pool_options)
    method = method_named(policy.allocation.method)
    has_levels = method.has_levels

    results: list[Level] = []
    if progress:
        progress("levels", 0, len(levels))
    for i, level in enumerate(levels):
        results.append(warm.solve(float(level)))
        if progress:
            progress("levels", i + 1, len(levels))

    tol = max(0.01, float(breakpoint_tol_usd or 0.0))
    # No marginal value (docs/programmes.md), so no breakpoints of it.
    refine = breakpoint_tol_usd is not None and method.has_marginal_value
    search = Search(
        evaluate=lambda x: _point(warm.solve(x, marginal=False), has_levels),
        tolerance=_tolerance(has_levels),
        resolution=lambda x: max(tol, rel_width * x),
        max_solves=max_solves if refine else 0,
        on_solve=(lambda done: progress("breakpoints", done, max_solves)) if progress else None,
    )
    kinks: list[Kink] = []
    # Runs of neighbouring levels where the swept sources fund something: the step from
    # a level of 0 (no eligible triple) or an infeasible one is no kink.
    run: list[Point] = []
    for level in [*results, None]:
        point = None if level is None or level.pledge_usd <= 0 else _point(level, has_levels)
        if point is None:
            kinks += search.run(run) if method.has_marginal_value else []
            run = []
        else:
            run.append(point)
    if progress and refine:
        progress("breakpoints", max_solves, max_solves)
    if refine:
        kinks = _merge(kinks)
    marginal_at = 2  # the marginal value's figure in `_figures`
    # Under levels no USD lifts a level by less than 1 / (sum of pi U) over every gap, where
    # it lifts it at all: a slope a billion times smaller is the solves' rounding.
    noise = (1e-9 / float((gap_priority(lp.data, policy) * lp.fundable).sum() * SCALE_USD)
             if has_levels and lp.fundable.sum() > 0 else 0.0)
    by_pledge = {lv.pledge_usd: lv for lv in results}
    breakpoints = []
    for kink in kinks:
        if breakpoint_tol_usd is None:
            low, high = by_pledge[kink.below], by_pledge[kink.above]
            if _same_marginal(low, high, has_levels):
                continue
            breakpoints.append(Breakpoint(kink.below, kink.above, low.marginal_value,
                                          high.marginal_value))
            continue
        breakpoints.append(Breakpoint(
            kink.below, kink.above, _slope(kink.left, marginal_at, noise),
            _slope(kink.right, marginal_at, noise)))
    return SweepResult(tuple(source_ids), results, breakpoints, warm.pipeline.info,
                       solves=warm.solves,
                       extra={"build_pledge_usd": build_level, "n_x": lp.n_x,
                              "stage1_skipped": warm.stage1_skipped,
                              "columns_held": int(warm.pool.held.sum()),
                              "pricing_rounds": warm.pool.rounds,
                              "breakpoint_solves": search.solves,
                              # For `next_dollar`: the gaps' keys, and those the swept
                              # sources can fund (their earmarks and eligibility).
                              "gap_iso3": lp.data.gaps["iso3"].to_numpy(),
                              "gap_target": lp.data.gaps["target"].to_numpy(),
                              "fundable_gaps": warm.fundable_gaps},
                       method=policy.allocation.method)


def _merge(kinks: list[Kink]) -> list[Kink]:
    """Join brackets that touch or overlap: kinks closer than the resolution are one."""
    merged: list[Kink] = []
    for kink in sorted(kinks, key=lambda k: (k.below, k.above)):
        if merged and kink.below <= merged[-1].above:
            last = merged.pop()
            kink = Kink(last.below, max(last.above, kink.above), last.left,
                        kink.right if kink.above >= last.above else last.right)
        merged.append(kink)
    return merged


def _point(level: Level, has_levels: bool) -> Point | None:
    return None if level.status != OPTIMAL else Point(level.pledge_usd,
                                                      _figures(level, has_levels))


def _slope(line: Line | None, at: int, noise: float = 0.0) -> float | None:
    """The marginal value on a piece: the slope of its figure (per USD), 0 within `noise`."""
    if line is None or not math.isfinite(line.slopes[at]):
        return None
    slope = float(line.slopes[at])
    return 0.0 if abs(slope) <= noise else slope


def _same_marginal(a: Level, b: Level, has_levels: bool) -> bool:
    if a.status != b.status:
        return False
    if a.marginal_value is None or b.marginal_value is None:
        return a.marginal_value is b.marginal_value
    if has_levels:  # a difference of two re-solves, per USD of h
        scale = LEVELS_MARGINAL_TOL * max(abs(a.marginal_value), abs(b.marginal_value))
    else:
        scale = MARGINAL_TOL * max(1.0, abs(a.marginal_value), abs(b.marginal_value))
    return abs(a.marginal_value - b.marginal_value) <= scale
