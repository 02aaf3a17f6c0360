"""The allocation methods as strategies: how the allocation is chosen among the optima of
the floor (the policy's `[allocation] method`).

`method_of(policy)` picks one, once; callers ask it, never the method's name. A method
solves an LP cold (`solve`, what `allocate` does) or warm over changing pledges (`warm`,
what the sweep does). A new method is a new `Method` registered in `METHODS` (its name in
`schema.ALLOCATION_METHODS`, its traits in `model.spec.METHOD_TRAITS` for the audit and the
page, which know a run by its files).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from gcm_fund.inputs.policy import Policy
from gcm_fund.methods.levels import extend, run_levels, solve_levels
from gcm_fund.methods.programmes import ProgrammesMethod
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import SCALE_USD, LinearProgram
from gcm_fund.solvers.backend import Backend
from gcm_fund.solvers.pipeline import Pipeline, Solution


class WarmStages(Protocol):
    """A method's stages kept warm on one HiGHS pipeline between pledge changes."""

    pipeline: Pipeline

    def solve(self, pledges_usd: np.ndarray) -> Solution:
        """The allocation at these pledges (USD, by source); `InfeasibleError` (not
        diagnosed) when there is none."""
        ...


class Method(Protocol):
    """An allocation method: docs/model.md's weighted stages, 4b's levels, and those to come."""

    name: str
    # Whether runs carry level results: levels.csv and its duals, the level columns of
    # sweeps and comparisons, the manifest's `levels` entry.
    has_levels: bool
    # Whether it selects whole programmes: the programme columns of sweeps and comparisons.
    selects_programmes: bool
    # Whether a pledge has a marginal value (the sweep's column and its breakpoints); a
    # selection of whole programmes has none (docs/programmes.md).
    has_marginal_value: bool
    # What a unit of the last stage's budget dual is worth in the sweep's marginal value
    # (weighted objective per USD, or under levels the last level per USD).
    budget_dual_per_usd: float

    def solve(self, lp: LinearProgram, solver: str | Backend = "highs") -> Solution:
        """The allocation of `lp` (`InfeasibleError`, diagnosed, when there is none)."""
        ...

    def warm(self, lp: LinearProgram, pool_options: Mapping[str, Any] | None = None
             ) -> WarmStages:
        """The method's stages on a warm HiGHS pipeline over `lp` (built with every pledge
        that may change positive), for many pledge changes."""
        ...


class _WarmWeighted:
    def __init__(self, lp: LinearProgram, pool_options: Mapping[str, Any] | None):
        self.pipeline = Pipeline(lp, "highs", warm_stages=True, pool_options=pool_options)

    def solve(self, pledges_usd: np.ndarray) -> Solution:
        self.pipeline.set_pledges(pledges_usd)
        return self.pipeline.run(diagnosed=False)


class Weighted:
    """docs/model.md: stage 1 maximises the floor, stage 2 the weighted objective."""

    name = "weighted"
    has_levels = False
    selects_programmes = False
    has_marginal_value = True
    budget_dual_per_usd = 1.0

    def solve(self, lp: LinearProgram, solver: str | Backend = "highs") -> Solution:
        """Both stages of section 4 on one pipeline."""
        return Pipeline(lp, solver).run()

    def warm(self, lp: LinearProgram, pool_options: Mapping[str, Any] | None = None
             ) -> WarmStages:
        """Both stages, one warm HiGHS model each."""
        return _WarmWeighted(lp, pool_options)


class _WarmLevels:
    def __init__(self, lp: LinearProgram, pool_options: Mapping[str, Any] | None):
        self.lp = lp
        # docs/model.md: the level stages run on the LP with its level column and rows.
        self.priority = gap_priority(lp.data, lp.policy)
        extended, self.layout = extend(lp, self.priority)
        self.pipeline = Pipeline(extended, "highs", warm_stages=True,
                                 pool_options=pool_options)

    def solve(self, pledges_usd: np.ndarray) -> Solution:
        self.pipeline.set_pledges(pledges_usd)
        lp = self.lp
        live = lp.live_columns(pledges_usd)
        funded = np.bincount(lp.var_gap[live], minlength=len(lp.data.gaps)) > 0
        return run_levels(self.pipeline, lp, self.layout, self.priority, diagnosed=False,
                          funded=funded)


class Levels:
    """docs/model.md: priority levels, then the loans' stage and the split rule."""

    name = "levels"
    has_levels = True
    selects_programmes = False
    has_marginal_value = True
    budget_dual_per_usd = 1.0 / SCALE_USD

    def solve(self, lp: LinearProgram, solver: str | Backend = "highs") -> Solution:
        """The stages of section 4b."""
        return solve_levels(lp, solver)

    def warm(self, lp: LinearProgram, pool_options: Mapping[str, Any] | None = None
             ) -> WarmStages:
        """The level stages, one warm HiGHS model each."""
        return _WarmLevels(lp, pool_options)


WEIGHTED = Weighted()
LEVELS = Levels()
PROGRAMMES = ProgrammesMethod()
# Every method by its policy name.
METHODS: dict[str, Method] = {WEIGHTED.name: WEIGHTED, LEVELS.name: LEVELS,
                              PROGRAMMES.name: PROGRAMMES}


def method_named(name: str) -> Method:
    """The method a policy names (a name the schema accepts)."""
    return METHODS[name]


def method_of(policy: Policy) -> Method:
    """The method of a policy's `[allocation] method`."""
    return METHODS[policy.allocation.method]
