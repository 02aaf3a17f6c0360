"""Donor figures under priority levels (docs/outputs.md), unique by construction: re-solves,
not duals.

Under levels the budget dual of the last filling step is one of many valid duals (two
solvers' can differ by orders of magnitude), so a donor's figures come from
re-solving with the pledge raised by `h = max(USD 1, 1e-6 B_f)`:

- `marginal_value` = `(m(B_f + h) - m(B_f)) / h`, `m` the lowest level among the gaps
  source f can fund (it has an eligible triple there);
- `placed_per_usd` = `(X(B_f + h) - X(B_f)) / h`, `X` all the money the fund places,
  loans included (stage 1b's X* counts grants only): every level at B_f + h, a whole run
  per source;
- `additionality` = the part of it that reaches the gaps source f may fund (from every
  source), per USD: the rest displaced other money there, which went elsewhere.

`allocate` computes the marginal values by default (`--donor-figures marginal`), all
three with `--donor-figures all` (a whole run per source: several times the marginal
values' time) and none with `--donor-figures none` (docs/commands.md).

Written rounded to what the re-solves can tell apart: the marginal value to 6 significant
digits, the two per-USD figures to 3 decimals. The levels come back from the solver within
its tolerance of each gap's amount, so two valid paths to the same re-solve (a warm start
from one basis or another) agree on fewer digits than a float holds; docs/outputs.md
gives the measured agreement. A source whose re-solve fails is left blank and named in the
manifest (`unsolved`), so that a blank is never mistaken for a figure.

`m` needs no whole run: the levels rise in order, so the lowest level among source f's
gaps is the level of the first step that stops one of them (`LevelReached`). Each
re-solve runs stages 1 and 1b and the filling up to that step, one LP per step, on one
warm HiGHS pipeline (a model per stage) shared by every source. The level stages' LPs
start from the bases the first run recorded at the unraised pledges (`BasisTrail`), each
from the basis of the LP in the same place in the run, where it still fits the model;
stage 1 goes on from its last basis. `m(B_f)` is the run's own on that pipeline too: the
figures are the same, digit for digit, on every solver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from gcm_fund.errors import InfeasibleError, UsageError
from gcm_fund.methods.level_filling import LevelReached
from gcm_fund.methods.levels import extend, run_levels
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import SCALE_USD, LinearProgram
from gcm_fund.solvers.backend import SolverStopped
from gcm_fund.solvers.pipeline import Pipeline, Solution

log = logging.getLogger(__name__)

# progress(phase, done, total): the commands' progress bars (`cli.progress`).
Progress = Callable[[str, int, int | None], None]

# A difference of two levels below this share of the level is the solvers' rounding, not a
# rise: it is written as 0 (HiGHS's levels agree to about 1e-15 between warm and cold).
LEVEL_NOISE = 1e-12

# What `allocate --donor-figures` may ask for: the marginal value alone (its default under
# levels), every figure, or none.
FIGURE_SETS = ("marginal", "all", "none")


def check_figure_set(donor_figures: str) -> None:
    """`UsageError` unless `donor_figures` is one of `FIGURE_SETS`."""
    if donor_figures not in FIGURE_SETS:
        raise UsageError(f"--donor-figures: got {donor_figures!r}, expected one of "
                         f"{', '.join(FIGURE_SETS)}")


PROGRESS_PHASE = "donor figures"  # what a progress bar calls the re-solves
MARGINAL_DIGITS = 6  # significant digits of a marginal value as written
PER_USD_DECIMALS = 3  # decimals of placed_per_usd and additionality as written

# What the manifest says of the figures, so that a reader knows how they were made.
DEFINITION = {
    "marginal_value": "(m(B_f + h) - m(B_f)) / h, m the lowest level among the gaps "
                      "source f can fund (docs/outputs.md)",
    "placed_per_usd": "(X(B_f + h) - X(B_f)) / h, X all the money the fund places",
    "additionality": "(A_f(B_f + h) - A_f(B_f)) / h, A_f all the money in the gaps source f "
                     "can fund",
    "h": "max(USD 1, 1e-6 B_f)",
    "written": f"marginal_value to {MARGINAL_DIGITS} significant digits, placed_per_usd "
               f"and additionality to {PER_USD_DECIMALS} decimals",
    "solver": "highs, warm re-solves: stages 1, 1b and the level steps up to m; a whole "
              "run for X",
}


@dataclass(frozen=True)
class DonorFigures:
    """By source (NaN where the source has no eligible triple, or not asked for)."""

    marginal_value: np.ndarray
    placed_per_usd: np.ndarray
    h_usd: np.ndarray
    additionality: np.ndarray
    placed: bool = True  # whether placed_per_usd and additionality were asked for
    unsolved: tuple[int, ...] = ()  # sources whose re-solve failed: blank, not a figure

    @property
    def computed(self) -> list[str]:
        """The columns of sources_summary.csv these figures fill."""
        return ["marginal_value", *(["placed_per_usd", "additionality"] if self.placed
                                    else [])]

    def written(self) -> DonorFigures:
        """The figures rounded as sources_summary.csv writes them (the module's docstring)."""
        # `+ 0.0`: a rounded -0.0004 is written 0, not -0.
        return replace(self, marginal_value=significant(self.marginal_value, MARGINAL_DIGITS),
                       placed_per_usd=np.round(self.placed_per_usd, PER_USD_DECIMALS) + 0.0,
                       additionality=np.round(self.additionality, PER_USD_DECIMALS) + 0.0)


def significant(values: np.ndarray, digits: int) -> np.ndarray:
    """`values` rounded to `digits` significant digits (NaN and 0 kept)."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    ok = np.isfinite(values) & (values != 0)
    out[ok] = [float(f"{v:.{digits - 1}e}") for v in values[ok]]
    return out


def step_usd(pledge_usd: np.ndarray | float) -> np.ndarray:
    """The step h of the donor figures: max(USD 1, 1e-6 B_f)."""
    return np.maximum(1.0, 1e-6 * np.asarray(pledge_usd, dtype=float))


def lowest_levels(held: np.ndarray, lp: LinearProgram) -> np.ndarray:
    """m by source: the lowest level among the gaps it can fund (NaN where none is in E)."""
    out = np.full(len(lp.data.sources), np.inf)
    level = held[lp.var_gap]
    ok = np.isfinite(level)
    np.minimum.at(out, lp.var_source[ok], level[ok])
    return np.where(np.isfinite(out), out, np.nan)


def level_difference(above: float, below: float, h: float) -> float:
    """(above - below) / h, 0 where the two differ by rounding only (`LEVEL_NOISE`)."""
    if abs(above - below) <= LEVEL_NOISE * max(abs(above), abs(below)):
        return 0.0
    return (above - below) / h


@contextmanager
def _quiet() -> Iterator[None]:
    """The re-solves' stages log nothing below a warning: `-v` lists the run's own steps."""
    package = logging.getLogger("gcm_fund")
    before = package.level
    package.setLevel(max(logging.WARNING, before))
    try:
        yield
    finally:
        package.setLevel(before)


class LowestLevel:
    """m of chosen gaps at changing pledges: stages 1, 1b and the filling up to the first
    step that stops one of them, warm on one HiGHS pipeline (a model per stage)."""

    def __init__(self, lp: LinearProgram, replay: bool = False) -> None:
        self.lp = lp
        self.priority = gap_priority(lp.data, lp.policy)
        self.ext, self.layout = extend(lp, self.priority)
        self.pipeline = Pipeline(self.ext, "highs", warm_stages=True)
        # With `replay`, every run after the first starts each solve from the first's basis
        # (`BasisTrail`): for re-solves at pledges a dollar apart, not a sweep's far ones.
        self.trail = self.pipeline.trail("levels") if replay else None

    def funded(self, pledges_usd: np.ndarray) -> np.ndarray:
        """By gap: some source of positive pledge may fund it."""
        lp = self.lp
        live = lp.live_columns(pledges_usd)
        return np.bincount(lp.var_gap[live], minlength=len(lp.data.gaps)) > 0

    def at(self, pledges_usd: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """m of each group of gaps (`groups`: groups x gaps) at these pledges: the level of
        its first gap to stop; NaN where none rises (outside E). `InfeasibleError` when no
        allocation meets the policy."""
        self.pipeline.set_pledges(pledges_usd)
        funded = self.funded(pledges_usd)
        self._rewind()
        try:
            run_levels(self.pipeline, self.lp, self.layout, self.priority, diagnosed=False,
                       funded=funded, forecast=False, watch=groups)
        except LevelReached as reached:
            return reached.levels
        raise AssertionError("a filling that watches ends with LevelReached")

    def solve(self, pledges_usd: np.ndarray) -> Solution:
        """Every stage at these pledges (the levels of every gap)."""
        self.pipeline.set_pledges(pledges_usd)
        self._rewind()
        return run_levels(self.pipeline, self.lp, self.layout, self.priority,
                          diagnosed=False, funded=self.funded(pledges_usd))

    def _rewind(self) -> None:
        # The first run records its stages' bases; each later one starts from them.
        if self.trail is not None and self.trail.bases:
            self.trail.rewind()


def donor_figures(lp: LinearProgram, placed: bool = True,
                  progress: Progress | None = None) -> DonorFigures:
    """Every source's marginal value and (with `placed`) its money placed per USD and
    additionality, by warm HiGHS re-solves of `lp` under its levels policy, rounded as
    written (`DonorFigures.written`). `progress("donor figures", done, total)` after each
    source's re-solves."""
    with _quiet():
        figures = _re_solve(lp, placed, progress).written()
    log.info("donor figures: %d re-solves up to each source's lowest level%s",
             int((np.bincount(lp.var_source, minlength=len(lp.data.sources)) > 0).sum()),
             ", and as many whole runs" if placed else "")
    return figures


def _re_solve(lp: LinearProgram, placed: bool, progress: Progress | None) -> DonorFigures:
    n = len(lp.data.sources)
    pledges = lp.pledge * SCALE_USD
    h = step_usd(pledges)
    marginal = np.full(n, np.nan)
    per_usd = np.full(n, np.nan)
    reaches = np.full(n, np.nan)
    funding = np.bincount(lp.var_source, minlength=n) > 0
    if not funding.any():
        return DonorFigures(marginal, per_usd, h, reaches, placed)
    finder = LowestLevel(lp, replay=True)
    n_gaps = len(lp.data.gaps)
    funders = np.nonzero(funding)[0]
    groups = np.zeros((n, n_gaps), dtype=bool)
    groups[lp.var_source, lp.var_gap] = True
    # Both ends on this pipeline, whatever solved the run: the same solves in the same
    # order give the same digits (the run's own levels differ from them in the 9th).
    # The first run records the bases every later one starts from: a whole run where
    # later ones are whole too, so that they find every stage's basis.
    x0 = finder.solve(pledges).x_usd if placed else np.zeros(lp.n_x)
    m0 = finder.at(pledges, groups[funders])
    unsolved: list[int] = []
    for done, (f, below) in enumerate(zip(funders, m0, strict=True)):
        if progress is not None:
            progress(PROGRESS_PHASE, done, len(funders))
        raised = pledges.copy()
        raised[f] += h[f]
        try:
            m1 = float(finder.at(raised, groups[f][None, :])[0])
            if placed:
                change = finder.solve(raised).x_usd - x0
                per_usd[f] = float(change.sum()) / h[f]
                reaches[f] = float(change[groups[f][lp.var_gap]].sum()) / h[f]
        except (InfeasibleError, SolverStopped) as failed:
            # A looser budget keeps a feasible policy feasible: what fails here is the
            # solver, on one source's re-solve, and the run it is part of still stands.
            log.warning("donor figures: %s: the re-solve with its pledge raised failed (%s); "
                        "its figures are left blank", lp.data.sources.iloc[f]["source_id"],
                        failed)
            unsolved.append(int(f))
            continue
        if np.isfinite(m1) and np.isfinite(below):
            marginal[f] = level_difference(m1, float(below), float(h[f]))
    if progress is not None:
        progress(PROGRESS_PHASE, len(funders), len(funders))
    return DonorFigures(marginal, per_usd, h, reaches, placed, tuple(unsolved))
