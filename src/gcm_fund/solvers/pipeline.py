"""The solve pipeline: the stages of docs/model.md over one LP, whatever the solver.

One `Pipeline` owns the solver backend(s), the column pool they share and the LP's
right-hand sides (pledge changes). `allocate` (through `solve.solve`), `sweep`, `compare`
and `verify` all drive it; none holds a copy of the stages.

A stage is a named solve, `solve_stage(name, cost, bounds, rhs=None)`: maximise `cost`
over the LP's columns with `bounds` on named columns (LP column -> (lower, upper)), at
the pipeline's right-hand sides or at `rhs`. Section 4's stages are `stage1` (maximise
the floor z) and `stage2` (maximise the weighted objective with z held near z*); `run()`
runs them and returns a `Solution`.

Backends. On HiGHS (`solver="highs"`) each stage name gets its own model, warm from its
own last basis, when `warm_stages` (the sweep: a pledge change is then a bound change
that dual simplex absorbs in a few pivots, and stage 1 is skipped where its basis stays
optimal: `Backend.value_from_basis`); otherwise every stage shares one model (allocate:
half the memory, and stage 2 goes on from stage 1 by primal simplex). The stage models
share one `ColumnPool`, so that a column that joins one joins all and a basis passes
between them (`Backend.start_from`). PuLP's solvers keep nothing between solves.

How a new stage plugs in (section 4b's levels, for example):

1. Extend the LP before making the pipeline: `lp.with_columns(["L"], block)` adds a
   column of the stage's own, `lp.with_rows("level", {"iso3": ..., "target": ...}, block,
   GE, rhs)` a family of rows. Rows that other stages must not see get a free right-hand
   side in the LP (-inf for `>=`, +inf for `<=`), so that stages 1 and 2 are unchanged.
2. Write the stage as a method of a subclass, or a function taking the pipeline, that
   calls `solve_stage("levels", cost, {lp.column("L"): (0.0, inf), lp.z_col: z_bounds},
   rhs=...)`, changing only right-hand sides of its rows between calls (a gap that stops:
   its level row freed, its hold row set). With `warm_stages` the stage has a model of
   its own and each call re-solves warm by dual simplex.
3. Read values and duals from the `StageSolution` by LP column and row, through
   `lp.column(name)`, `lp.block(family)` and the registry (`lp.registry()`), never by
   position from the end.
4. When a stage comes back INFEASIBLE, `raise self.infeasible()`: the diagnosis of
   the policy at the pipeline's right-hand sides.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gcm_fund.errors import Diagnosis, InfeasibleError
from gcm_fund.inputs.policy import Policy
from gcm_fund.model.lp import SCALE_USD, LinearProgram, unmet_thematic_diagnosis
from gcm_fund.model.spec import reported_floor as spec_reported_floor
from gcm_fund.model.spec import stage2_z_bounds
from gcm_fund.solvers.backend import (
    INFEASIBLE,
    OPTIMAL,
    Backend,
    Bounds,
    SolverInfo,
    StageSolution,
    Status,
)
from gcm_fund.solvers.basis_trail import BasisTrail
from gcm_fund.solvers.diagnosis import diagnose
from gcm_fund.solvers.highs import HighsBackend
from gcm_fund.solvers.pricing import ColumnPool
from gcm_fund.solvers.pulp import PulpBackend

log = logging.getLogger(__name__)


@dataclass
class Solution:
    """The result of both stages: the floor, the allocation and the final duals.

    `floor` is the run's reported floor, max(z_min, floor_share * z*) when maximizing
    (docs/terms.md), and `floor_max` is z* itself (None when not maximizing or G is empty).

    `stage1` is None when G is empty, when the floor is not maximised, or when a warm
    pipeline took z* from its last basis without solving (`Pipeline.stage1_skipped`).
    """

    status: Status
    floor: float | None
    weighted_usd: float
    x_usd: np.ndarray
    stage1: StageSolution | None
    stage2: StageSolution
    solver: SolverInfo
    rhs: np.ndarray  # the right-hand sides solved (scaled), after any pledge change
    z_col: int | None = None  # the LP column of z in the stages' values, None without G
    # Under `[allocation] method = "levels"`: a `levels.LevelsResult` (docs/model.md); stage2
    # is then the last level step, its duals d L / d rhs.
    levels: Any = None
    floor_max: float | None = None
    # Under `[allocation] method = "programmes"`: a `programmes.Selection` (docs/programmes.md).
    programmes: Any = None


def make_backend(lp: LinearProgram, solver: str = "highs", pool: ColumnPool | None = None,
                 keep_basis: bool = False) -> Backend:
    """The backend for a solver name: `highs` (default), `cbc`, or a PuLP solver name.

    Both leave out the rows that others imply (`LinearProgram.implied_rows`); HiGHS also
    solves over a column pool (`pricing`; a new one unless `pool` is given). PuLP gets
    every column: it keeps no model between solves to add columns to.
    """
    if solver == "highs":
        return HighsBackend(lp, pool if pool is not None else ColumnPool(lp),
                            leave_out_implied=True, keep_basis=keep_basis)
    return PulpBackend(lp, solver, leave_out_implied=True)


def stage2_floor_bounds(policy: Policy, floor: float, value_precision: float = 0.0
                        ) -> tuple[float, float]:
    """Stage 2's bounds on z when maximizing: z >= max(z_min, z* - tolerance), z <= 1.

    A z* read back rounded (CBC: 8 digits, `value_precision` 1e-8) may lie above the
    feasible one, so stage 2 gives up at least that rounding, or a finer tolerance would
    make it infeasible (the rule is `spec.stage2_z_bounds`; the manifest records it).
    """
    return stage2_z_bounds(policy.equity, floor, value_precision)


def reported_floor(policy: Policy, floor: float | None) -> tuple[float | None, float | None]:
    """(floor, floor_max) as a run reports them from what `floor_stage` found: under
    `maximize`, max(z_min, floor_share * z*) and z* (docs/terms.md); else the floor as it is."""
    if floor is None or not policy.equity.maximize:
        return floor, None
    return spec_reported_floor(policy.equity, floor), floor


# Objectives whose largest coefficient lies within these powers of two are solved as
# they are; others are scaled into [1/2, 2) (see `cost_scale`).
COST_SCALE_RANGE = (2.0**-10, 2.0**10)


def cost_scale(cost: np.ndarray) -> float:
    """The power of two a stage's objective is divided by before the solver sees it.

    HiGHS's tolerances are absolute: with a target weight of 1e12 its simplex can stall
    ("status Unknown") or slow down by orders of magnitude against a weight of 1.
    Dividing by a power of two is exact, so the optimum, the objective and
    the duals (multiplied back) are those of the objective as given.
    """
    largest = float(np.abs(cost).max()) if cost.size else 0.0
    if largest == 0.0 or COST_SCALE_RANGE[0] <= largest <= COST_SCALE_RANGE[1]:
        return 1.0
    return float(2.0 ** np.round(np.log2(largest)))


# The stage whose optimum `value_from_basis` reads from its last basis (the only one that
# keeps it: reading a basis out after each solve costs the others time for nothing).
FLOOR_STAGE = "stage1"


class Pipeline:
    """The stages of one LP on one solver, with the pool and right-hand sides they share.

    See the module's docstring for how the stages run and how a new stage plugs in.
    `solver` is a name (`highs`, `cbc`, a PuLP solver) or a backend made by the caller
    (then every stage uses it).
    """

    def __init__(self, lp: LinearProgram, solver: str | Backend = "highs", *,
                 warm_stages: bool = False, pool_options: Mapping[str, Any] | None = None):
        self.lp = lp
        self.rhs = lp.rhs.copy()
        self.floor_active = lp.has_floor  # G not empty at the current pledges
        self.unmet_thematic = list(lp.unmet_thematic)
        self.warm_stages = warm_stages
        self.stage1_skipped = 0  # stage-1 solves replaced by the last basis
        self._backends: dict[str, Backend] = {}
        self._shared: Backend | None = None
        self._solved: set[str] = set()
        self._trails: dict[str, BasisTrail] = {}
        self.pool: ColumnPool | None = None
        self._pool_options = dict(pool_options or {})
        if isinstance(solver, str):
            self.solver_name = solver
            if solver == "highs":
                self.pool = ColumnPool(lp, **self._pool_options)
        else:
            self.solver_name = solver.info.name
            self._shared = solver

    @property
    def info(self) -> SolverInfo:
        """Which solver runs the stages, for the manifest."""
        return self.backend("stage2").info

    def backend(self, stage: str) -> Backend:
        """The backend that solves this stage (made on first use)."""
        if self._shared is not None:
            return self._shared
        if self.solver_name != "highs" or not self.warm_stages:
            self._shared = make_backend(self.lp, self.solver_name, self.pool)
            return self._shared
        if stage not in self._backends:
            made = make_backend(self.lp, "highs", self.pool, keep_basis=stage == FLOOR_STAGE)
            assert isinstance(made, HighsBackend)
            for other in self._backends.values():
                assert isinstance(other, HighsBackend)
                if other.pool is self.pool:  # not a restarted stage's (`restart`)
                    other.partners.append(made)
                    made.partners.append(other)
            self._backends[stage] = made
        return self._backends[stage]

    def restart(self, stage: str, columns: np.ndarray) -> bool:
        """Let this stage's next solve start on a new HiGHS model whose pool holds these
        allocation columns (and prices in the rest as usual); the model it ran on so far
        is dropped, basis and all. False, and nothing changes, when the stages run on no
        pool (PuLP's solvers, or a backend the caller made).

        For a stage whose optimum lies far from the last basis but whose support is known
        roughly (a min-cost flow's, `flow.flow_guess`): from scratch on a few thousand
        columns, HiGHS gets there faster than by pivoting over the tens of thousands that
        earlier stages priced in. With `warm_stages` the other stages keep their models
        (the sweep's stage 1 its basis); the new one shares no pool with them.
        """
        if self.pool is None or self.solver_name != "highs":
            return False
        pool = ColumnPool(self.lp, **{**self._pool_options, "start": columns})
        if not self.warm_stages:
            self.pool = pool
            self._shared = None
        else:
            old = self._backends.pop(stage, None)
            for other in self._backends.values():
                assert isinstance(other, HighsBackend)
                other.partners = [p for p in other.partners if p is not old]
            self._backends[stage] = make_backend(self.lp, "highs", pool,
                                                 keep_basis=stage == FLOOR_STAGE)
        self._solved.discard(stage)
        return True

    def aside(self, columns: np.ndarray) -> Pipeline:
        """A pipeline over the same LP and solver whose pool starts from these columns,
        for a stage solved once on the side (HiGHS only): this one's models stay as they
        are, for what runs on them next (the sweep's next pledge)."""
        return Pipeline(self.lp, "highs", pool_options={**self._pool_options, "start": columns})

    # -- right-hand sides ------------------------------------------------------------

    def set_rhs(self, rhs: np.ndarray) -> None:
        """Solve the next stages at these right-hand sides (scaled, LP row order)."""
        self.rhs = np.asarray(rhs, dtype=float).copy()

    def set_pledges(self, pledge_usd: np.ndarray) -> None:
        """Every rule that involves the pledges moves with them (docs/commands.md's sweep):
        `budget`, `state_share`, `source_state`, and eligibility (B_f > 0).

        The LP must have been built with every pledge that may change positive, so that
        its triples exist; a source at 0 keeps its columns, held at 0 by its budget row.
        A gap left with no source of positive pledge leaves G (its floor row is freed);
        a thematic target left with none makes the policy infeasible, as in `allocate`.
        """
        lp = self.lp
        pledge_usd = np.asarray(pledge_usd, dtype=float)
        rhs = lp.rhs_for_pledges(pledge_usd)
        live = lp.live_columns(pledge_usd)
        funded = np.bincount(lp.var_gap[live], minlength=len(lp.data.gaps)) > 0
        self.floor_active = lp.has_floor
        floor = lp.block("floor")
        if floor is not None:
            lost = ~funded[lp.floor_gaps]
            rhs[floor.start + np.nonzero(lost)[0]] = -np.inf  # these gaps leave G
            self.floor_active = not bool(lost.all())
        self.unmet_thematic = list(lp.unmet_thematic)
        thematic = lp.block("thematic")
        if thematic is not None:
            var_target = lp.data.gaps["target"].to_numpy()[lp.var_gap[live]]
            # A target no triple reaches at all is in `lp.unmet_thematic` already.
            self.unmet_thematic += [str(t) for t in thematic.keys[0]
                                    if not (var_target == t).any()
                                    and str(t) not in self.unmet_thematic]
        self.rhs = rhs

    # -- stages ----------------------------------------------------------------------

    def solve_stage(self, stage: str, cost: np.ndarray, bounds: Bounds,
                    rhs: np.ndarray | None = None, trial: bool = False, fresh: bool = False
                    ) -> StageSolution:
        """Maximise `cost` with `bounds` on named columns at `rhs` (default: the
        pipeline's); OPTIMAL or INFEASIBLE, never raised. `trial`, `fresh`: see
        `Backend.solve`; `fresh` suits a stage whose optimum lies far from the last one on
        a large model, where HiGHS's presolve pays for itself."""
        backend = self.backend(stage)
        scale = cost_scale(cost)
        scaled = cost / scale
        trail = self._trails.get(stage)
        start = None if trail is None else trail.next_basis()
        if start is not None and not fresh and isinstance(backend, HighsBackend):
            backend.start_from_kept(start, scaled)
        solution = backend.solve(scaled, bounds, self.rhs if rhs is None else rhs, trial, fresh)
        if trail is not None:
            trail.passed(backend.kept_basis(scaled)
                         if trail.recording and isinstance(backend, HighsBackend)
                         and solution.status == OPTIMAL else None)
        self._solved.add(stage)
        if scale != 1.0 and solution.status == OPTIMAL:
            solution.objective *= scale
            solution.row_dual = solution.row_dual * scale
            solution.col_dual = solution.col_dual * scale
        return solution

    def trail(self, stage: str) -> BasisTrail:
        """This stage's trail of bases (made on first call): the solves of its first run
        are recorded, and after `rewind()` each solve starts from its recorded basis
        (HiGHS; other solvers keep none). For runs repeated at nearby right-hand sides."""
        return self._trails.setdefault(stage, BasisTrail())

    def infeasible(self, diagnosed: bool = True) -> InfeasibleError:
        """The error to raise when a stage is infeasible: with the diagnosis of the policy
        at the current right-hand sides, or (`diagnosed=False`, the sweep's levels)
        without one."""
        if self.unmet_thematic:
            return InfeasibleError(unmet_thematic_diagnosis(self.unmet_thematic))
        if not diagnosed:
            return InfeasibleError(Diagnosis(reason="infeasible (not diagnosed)"))
        log.info("infeasible; diagnosing")
        return InfeasibleError(diagnose(self.lp, self.rhs))

    def stage1(self) -> tuple[float | None, StageSolution | None]:
        """Stage 1: z*, and the stage's solution (None when z* came from the last basis);
        z* None when no allocation meets the rules."""
        lp = self.lp
        z = lp.z_col
        assert z is not None
        backend = self.backend(FLOOR_STAGE)
        from_basis = backend.value_from_basis(self.rhs, z)
        if from_basis is not None:
            self.stage1_skipped += 1
            return min(1.0, from_basis), None
        log.info("stage 1: maximising the floor z (%s)", backend.info.name)
        solution = self.solve_stage(FLOOR_STAGE, lp.stage1_objective(),
                                    {z: (lp.policy.equity.min_floor, 1.0)})
        if solution.status == INFEASIBLE:
            return None, solution
        floor = min(1.0, float(solution.col_value[z]))
        log.info("stage 1: floor z* = %.9g", floor)
        return floor, solution

    def floor_stage(self, value_precision: float, diagnosed: bool = True
                    ) -> tuple[float | None, StageSolution | None, dict[int, tuple[float, float]]]:
        """Stage 1 where the policy asks for it, and the bounds on z every later stage
        holds: (z*, or z_min when not maximizing; stage 1's solution or None; {z: bounds},
        empty without z). `reported_floor` turns z* into the run's `floor`.

        Raises `InfeasibleError` when stage 1 finds no allocation.
        """
        equity = self.lp.policy.equity
        stage1: StageSolution | None = None
        floor: float | None = None
        bounds: dict[int, tuple[float, float]] = {}
        z = self.lp.z_col
        if z is not None:
            if not self.floor_active:
                # G is empty at these pledges: z meets no floor row, so it is free.
                bounds[z] = (equity.min_floor, 1.0 if equity.maximize else equity.min_floor)
            elif equity.maximize:
                floor, stage1 = self.stage1()
                if floor is None:
                    raise self.infeasible(diagnosed)
                bounds[z] = stage2_floor_bounds(self.lp.policy, floor, value_precision)
            else:
                floor = equity.min_floor
                bounds[z] = (equity.min_floor, equity.min_floor)
        return floor, stage1, bounds

    def run(self, diagnosed: bool = True) -> Solution:
        """Stage 1 (maximise the floor z) then stage 2 (maximise the weighted objective).

        Raises `InfeasibleError` (with a diagnosis unless `diagnosed=False`) when no
        allocation meets the policy.
        """
        lp = self.lp
        if self.unmet_thematic:
            raise self.infeasible()
        floor, stage1, bounds = self.floor_stage(self.backend(FLOOR_STAGE).value_precision,
                                                 diagnosed)
        shown, floor_max = reported_floor(lp.policy, floor)
        z = lp.z_col
        stage2_backend = self.backend("stage2")
        if (stage1 is not None and "stage2" not in self._solved
                and stage2_backend is not self.backend(FLOOR_STAGE)):
            # Stage 1's optimum is feasible for stage 2: go on from it by primal simplex.
            stage2_backend.start_from(self.backend(FLOOR_STAGE))
        log.info("stage 2: maximising the weighted objective%s",
                 "" if z is None else f" with z in [{bounds[z][0]:.9g}, {bounds[z][1]:.9g}]")
        stage2 = self.solve_stage("stage2", lp.stage2_objective(), bounds)
        if stage2.status == INFEASIBLE:
            raise self.infeasible(diagnosed)
        log.info("stage 2: weighted objective %.12g (USD millions)", stage2.objective)
        return Solution(
            status=OPTIMAL,
            floor=shown,
            floor_max=floor_max,
            weighted_usd=stage2.objective * SCALE_USD,
            x_usd=np.clip(stage2.col_value[: lp.n_x], 0.0, None) * SCALE_USD,
            stage1=stage1,
            stage2=stage2,
            solver=stage2_backend.info,
            rhs=self.rhs.copy(),
            z_col=z,
        )
