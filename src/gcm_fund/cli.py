"""The `gcm-fund` command: parse, call the library, print, map errors to exit statuses.

Exit status: 0 done; 1 a check failed (certify); 2 bad input or usage, nothing written;
3 the policy cannot be met, no allocation written.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import api
from .errors import EXIT_BAD_INPUT, GcmFundError, InfeasibleError, InputError
from .report import atomic_folder

app = typer.Typer(
    name="gcm-fund",
    help="Allocate a pooled migration-financing fund to States' capacity gaps (a linear "
         "program under shared but differentiated responsibility).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

T = TypeVar("T")
_state = {"debug": False}

InputsArg = Annotated[Path, typer.Argument(help="Folder with states.csv, gaps.csv, sources.csv.",
                                           show_default=False)]
ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="Policy TOML file "
                                               "[default: models/baseline.toml].",
                                               show_default=False)]
SolverOpt = Annotated[str, typer.Option("--solver", help="highs (default), cbc, or a PuLP "
                                        "solver name such as GLPK_CMD.")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
          = False) -> None:
    _state["debug"] = debug


def _guard(action: Callable[[], T]) -> T:
    """Run a command body: library errors become one message and an exit status."""
    try:
        return action()
    except InputError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(exc.exit_code) from None
    except InfeasibleError as exc:
        err.print(f"infeasible: {exc.diagnosis.reason}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except GcmFundError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        raise typer.Exit(130) from None
    except OSError as exc:
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _print_warnings(warnings: list[Any]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)


def _usd(value: float) -> str:
    return f"{value:,.0f}"


@app.command()
def validate(inputs: InputsArg, model: ModelOpt = None) -> None:
    """Check the input files and the policy without solving.

    Example: gcm-fund validate inputs --model models/baseline.toml
    """
    figures = _guard(lambda: api.validate(inputs, model))
    _print_warnings(figures["warnings"])
    out.print(
        f"valid: {figures['states']} states, {figures['gaps']} gaps, {figures['sources']} "
        f"sources, {figures['eligible_triples']} eligible triples; need USD "
        f"{_usd(figures['need_usd'])} (fundable USD {_usd(figures['fundable_usd'])} under "
        f"policy {figures['policy']}), pledges USD {_usd(figures['pledged_usd'])}"
    )


@app.command()
def allocate(
    inputs: Annotated[Path | None, typer.Argument(help="Input folder [default: the bundled "
                                                  "example, inputs/].", show_default=False)]
    = None,
    model: ModelOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write the run's files into "
                                                 "this folder [default: outputs/<run_id>/].",
                                                 show_default=False)] = None,
    solver: SolverOpt = "highs",
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")]
    = False,
) -> None:
    """Solve the allocation and write a run folder.

    Example: gcm-fund allocate inputs --model models/ldc_priority.toml --out outputs/ldc
    """
    folder = inputs if inputs is not None else api.project_path(api.DEFAULT_INPUTS)

    def body() -> tuple[api.Run, Path]:
        if out_dir is not None and out_dir.exists() and not force and (
                not out_dir.is_dir() or any(out_dir.iterdir())):
            raise GcmFundError(f"{out_dir}: exists and is not empty; use --force to replace it")
        loaded = api.load(folder, model)
        _print_warnings(loaded.warnings)
        try:
            run = api.solve_loaded(loaded, solver)
        except InfeasibleError as exc:
            if out_dir is not None:
                _write_diagnosis(out_dir, exc, force)
            raise
        return run, api.write(run, out_dir, force=force)

    run, written = _guard(body)
    _print_summary(run, written)


def _write_diagnosis(out_dir: Path, exc: InfeasibleError, force: bool) -> None:
    with atomic_folder(out_dir, force=force) as folder:
        (folder / "diagnosis.json").write_text(
            json.dumps(exc.diagnosis.to_dict(), indent=2) + "\n", encoding="utf-8")


def _print_summary(run: api.Run, written: Path) -> None:
    figures = run.summary
    floor = figures["floor"]
    out.print(f"run {run.run_id} ({run.solution.solver.name}): written to {written}")
    out.print(
        f"floor reached: {'none (no gap in the equity group)' if floor is None else f'{floor:.2%}'}"
        f"; allocated USD {_usd(figures['allocated_usd'])} of USD "
        f"{_usd(figures['pledged_usd'])} pledged; fundable need USD "
        f"{_usd(figures['fundable_usd'])}"
    )
    for title, key in (("income group", "coverage_by_income"), ("target", "coverage_by_target")):
        table = Table(title=f"Coverage by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("allocated USD", justify="right")
        table.add_column("fundable USD", justify="right")
        table.add_column("coverage", justify="right")
        for name, (allocated, fundable) in figures[key].items():
            share = f"{allocated / fundable:.1%}" if fundable > 0 else "-"
            table.add_row(Text(name), _usd(allocated), _usd(fundable), share)
        out.print(table)
    if figures["most_binding"]:
        table = Table(title="Most binding rules", title_justify="left")
        table.add_column("rule")
        table.add_column("dual (objective per USD)", justify="right")
        for name, dual in figures["most_binding"]:
            table.add_row(Text(name), f"{dual:.6g}")
        out.print(table)


def main() -> None:
    """Entry point of the `gcm-fund` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        sys.exit(130)
