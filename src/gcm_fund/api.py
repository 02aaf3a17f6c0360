"""The library's entry points: what each command does, callable from Python.

    >>> from gcm_fund import api
    >>> run = api.allocate("inputs", "models/baseline.toml")   # doctest: +SKIP
    >>> api.write(run, "outputs/my-run")                        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import report
from .errors import Problem
from .load import PolicyFile, ProblemData, load_inputs_and_policy, readable
from .model import LinearProgram, build, eligible_triples, fundable_usd
from .results import RunTables, build_tables, summary
from .solve import Solution, solve

log = logging.getLogger(__name__)

DEFAULT_INPUTS = "inputs"
DEFAULT_MODEL = "models/baseline.toml"
DEFAULT_OUTPUTS = "outputs"


def project_path(relative: str) -> Path:
    """A bundled path: relative to the current folder when it exists there, else to the
    source checkout this package was installed from."""
    here = Path(relative)
    if here.exists():
        return here
    checkout = Path(__file__).resolve().parents[2] / relative
    return checkout if checkout.exists() else here


@dataclass
class Loaded:
    """Checked inputs and policy, with their warnings."""

    data: ProblemData
    policy_file: PolicyFile
    model_path: str

    @property
    def warnings(self) -> list[Problem]:
        """Every warning about the inputs and the policy."""
        return [*self.data.warnings, *self.policy_file.warnings]


@dataclass
class Run:
    """One solved allocation, ready to be written."""

    loaded: Loaded
    lp: LinearProgram
    solution: Solution
    tables: RunTables
    summary: dict[str, Any]
    run_id: str
    extra: dict[str, Any] = field(default_factory=dict)


def load(inputs: Path | str, model: Path | str | None = None) -> Loaded:
    """Read and check the inputs and the policy (the bundled baseline when None)."""
    model_path = str(model) if model is not None else DEFAULT_MODEL
    path = Path(model) if model is not None else project_path(DEFAULT_MODEL)
    started = time.perf_counter()
    data, policy_file = load_inputs_and_policy(inputs, path)
    log.info("loaded %s: %s States, %s gaps, %s sources in %.2f s", inputs, len(data.states),
             len(data.gaps), len(data.sources), time.perf_counter() - started)
    return Loaded(data, policy_file, readable(Path(model_path).as_posix()))


def validate(inputs: Path | str, model: Path | str | None = None) -> dict[str, Any]:
    """Check inputs and policy without solving; the figures `validate` prints."""
    loaded = load(inputs, model)
    data, policy = loaded.data, loaded.policy_file.policy
    # Counting the eligible triples needs no LP: validate stays light on large inputs.
    var_source, _ = eligible_triples(data, policy)
    return {
        "states": len(data.states),
        "gaps": len(data.gaps),
        "sources": len(data.sources),
        "eligible_triples": len(var_source),
        "need_usd": float(data.gaps["need_usd"].sum()),
        "fundable_usd": float(fundable_usd(data, policy).sum()),
        "pledged_usd": float(data.sources["pledge_usd"].sum()),
        "policy": loaded.policy_file.policy.name,
        "warnings": loaded.warnings,
    }


def solve_loaded(loaded: Loaded, solver: str = "highs") -> Run:
    """Build and solve the LP of already loaded inputs."""
    started = time.perf_counter()
    lp = build(loaded.data, loaded.policy_file.policy)
    log.info("LP: %s allocation columns, %s rows, %s non-zeros, built in %.2f s",
             f"{lp.n_x:,}", f"{lp.n_rows:,}", f"{lp.matrix.nnz:,}",
             time.perf_counter() - started)
    solution = solve(lp, solver)
    tables = build_tables(lp, solution)
    identifier = report.run_id(loaded.data, loaded.policy_file, solution.solver.name,
                               solution.solver.version)
    return Run(loaded, lp, solution, tables, summary(lp, solution, tables), identifier)


def allocate(inputs: Path | str, model: Path | str | None = None,
             solver: str = "highs") -> Run:
    """Load, build and solve: the allocation of `inputs` under the policy `model`."""
    return solve_loaded(load(inputs, model), solver)


def write(run: Run, out: Path | str | None = None, *, force: bool = False) -> Path:
    """Write a run folder: into `out` itself, or `outputs/<run_id>/` when None."""
    if out is None:
        destination = Path(DEFAULT_OUTPUTS) / run.run_id
        replace_same = True  # a folder named by the run id can only hold this same run
    else:
        destination, replace_same = Path(out), False
    return report.write_run(
        destination, run.loaded.data, run.loaded.policy_file, run.solution, run.tables,
        run.summary, run.run_id, run.loaded.model_path, force=force, replace_same=replace_same,
    )
