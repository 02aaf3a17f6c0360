"""The engine: `run(scenario, solver) -> Run`, the one path from a scenario to a solved run.

`allocate`, `sweep`'s reference levels, `compare` and `verify` all come through here: the
LP is built from the scenario, solved by the policy's method (`methods`), and turned into
the run's tables, summary and id (the scenario's, with the solver's).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcm_fund.errors import InfeasibleError, InputError
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.methods.donor_figures import Progress, check_figure_set
from gcm_fund.methods.donor_figures import donor_figures as resolve_donor_figures
from gcm_fund.methods.strategy import method_of
from gcm_fund.model.limits import check_solvable
from gcm_fund.model.lp import LinearProgram, build, unmet_regional_diagnosis
from gcm_fund.model.scenario import Scenario
from gcm_fund.outputs.results import RunTables, build_tables, summary
from gcm_fund.solvers.pipeline import Solution

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One solved allocation, ready to be written."""

    scenario: Scenario
    lp: LinearProgram
    solution: Solution
    tables: RunTables
    summary: dict[str, Any]
    run_id: str
    folder: Path | None = None  # where the run folder was written, if it was

    @property
    def loaded(self) -> Scenario:
        """The scenario solved (the name `api.Loaded` had)."""
        return self.scenario


def solve(data: ProblemData, policy: Policy, solver: str = "highs",
          donor_figures: str = "none", progress: Progress | None = None
          ) -> tuple[LinearProgram, Solution, RunTables]:
    """The LP of checked inputs under a policy, solved by the policy's method, and the
    run's tables: `run` without the scenario's bytes (the sweep's reference levels).
    Under levels a budget dual is one of many valid duals, so `sources_summary`'s donor
    figures come from re-solves (docs/outputs.md): `donor_figures` is one of
    `FIGURE_SETS`, "marginal" the marginal values (a re-solve up to the source's lowest
    level per source), "all" the per-USD figures too (a whole re-solve per source),
    "none" blank. `progress` hears of each source's re-solves."""
    check_figure_set(donor_figures)
    started = time.perf_counter()
    lp = build(data, policy)
    log.info("LP: %s allocation columns, %s rows, %s non-zeros, built in %.2f s",
             f"{lp.n_x:,}", f"{lp.n_rows:,}", f"{lp.matrix.nnz:,}",
             time.perf_counter() - started)
    if lp.unmet_regional:
        raise InfeasibleError(unmet_regional_diagnosis(lp.unmet_regional))
    solution = method_of(policy).solve(lp, solver)
    if solution.programmes is not None:
        lp = solution.programmes.model.lp  # docs/programmes.md has no floor: its LP has none
    tables = build_tables(lp, solution)
    if solution.levels is not None:
        # docs/outputs.md: a donor's figures under levels are re-solves, never a dual.
        tables.sources_summary["marginal_value"] = float("nan")
        if donor_figures != "none":
            figures = resolve_donor_figures(lp, placed=donor_figures == "all",
                                            progress=progress)
            solution.levels.donor = figures
            tables.sources_summary["marginal_value"] = figures.marginal_value
            tables.sources_summary["placed_per_usd"] = figures.placed_per_usd
            tables.sources_summary["additionality"] = figures.additionality
    return lp, solution, tables


def run(scenario: Scenario, solver: str = "highs", donor_figures: str = "none",
        progress: Progress | None = None) -> Run:
    """Build and solve a scenario's LP by its policy's method with the named solver.

    Raises `InputError` when the policy cannot be met at the scenario's figures (checked
    again: a transform may have changed them) and `InfeasibleError` when no allocation
    meets the rules. `donor_figures`, `progress`: see `solve`.
    """
    unsolvable = check_solvable(scenario.data, scenario.policy, scenario.model_path)
    if unsolvable:
        raise InputError(unsolvable)
    lp, solution, tables = solve(scenario.data, scenario.policy, solver, donor_figures,
                                 progress)
    identifier = scenario.run_id(solution.solver.name, solution.solver.version)
    return Run(scenario, lp, solution, tables, summary(lp, solution, tables), identifier)


def write(run: Run, destination: Path | str, *, force: bool = False,
          replace_same: bool = False) -> Path:
    """Write a run folder into `destination` (`report.write_run`: atomically, refused
    where it would lose something); its input copies are the scenario's bytes."""
    from gcm_fund.outputs.run_folder import write_run

    scenario = run.scenario
    return write_run(Path(destination), scenario.data, scenario.policy_file, run.solution,
                     run.tables, run.summary, run.run_id, scenario.model_path, force=force,
                     replace_same=replace_same)
