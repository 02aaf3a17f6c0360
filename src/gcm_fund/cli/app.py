"""The `gcm-fund` command: parse, call the library, print, map errors to exit statuses.

Exit status: 0 done; 1 a check failed (certify); 2 bad input or usage, nothing written;
3 the policy cannot be met, no allocation written; 74 the results could not be printed;
130 Ctrl-C, 143 a SIGTERM while writing (nothing written).
"""

# No `from __future__ import annotations` here: Typer reads every command's parameters from
# their annotations as the command line is parsed, and evaluating hundreds of them from
# strings each time costs more than the rest of the parsing.
import errno
import gc
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from gcm_fund import __version__
from gcm_fund.cli import terminal
from gcm_fund.cli.group import Commands
from gcm_fund.cli.progress import progress_bar
from gcm_fund.cli.terminal import say
from gcm_fund.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_TERMINATED,
    GcmFundError,
    InfeasibleError,
    InputError,
)
from gcm_fund.writing import Terminated, whole

# Each command imports the library (gcm_fund.api pulls in pandas and scipy) when it runs:
# `--help` and a typo answer at once.

app = typer.Typer(
    name="gcm-fund",
    cls=Commands,
    help="Allocate a pooled migration-financing fund to States' capacity gaps (a linear "
         "program under shared but differentiated responsibility).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings are wrapped at the source width: markdown mode joins their lines.
    rich_markup_mode="markdown",
)
out, err = terminal.consoles()

T = TypeVar("T")
_state = {"debug": False}

InputsArg = Annotated[Path, typer.Argument(help="Folder with states.csv, gaps.csv, sources.csv.",
                                           show_default=False)]
ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="Policy TOML file "
                                               "[default: models/baseline.toml].",
                                               show_default=False)]
SolverOpt = Annotated[str, typer.Option("--solver", help="highs (default), cbc, or a PuLP "
                                        "solver name such as GLPK_CMD.")]


def _print_version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"gcm-fund {__version__}")
        except BrokenPipeError:
            # click would exit 1 on it; a reader that stops reading is not a failure.
            terminal.quiet_stdout()
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors "
                                              "(before or after the command).")]
          = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Report each step "
                                                "(load, build, stages, pricing rounds) on "
                                                "stderr, with the time since start (before "
                                                "or after the command).")]
          = False,
          version: Annotated[bool, typer.Option("--version", help="Show the version and exit.",
                                                callback=_print_version, is_eager=True)]
          = False) -> None:
    global out, err
    out, err = terminal.consoles()
    _state["debug"] = debug
    terminal.log_steps(verbose)


def _guard(action: Callable[[], T]) -> T:
    """Run a command body: library errors become one message and an exit status.

    A traceback is shown only with --debug, for expected errors and bugs alike.
    """
    try:
        return action()
    except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
        raise
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            say("terminated: nothing was written")
            raise typer.Exit(EXIT_TERMINATED) from None
        say("interrupted: nothing was written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if _state["debug"]:
            traceback.print_exc()
        if isinstance(exc, InputError):
            say(exc.render())
        elif isinstance(exc, InfeasibleError):
            say(f"infeasible: {exc.diagnosis.reason}")
        elif isinstance(exc, OSError) and exc.filename is not None:
            say(f"error: {exc.filename}: {exc.strerror or exc}")
        elif isinstance(exc, (GcmFundError, OSError)):
            say(f"error: {exc}")
        else:
            say(f"internal error: {type(exc).__name__}: {exc} (a bug in gcm_fund; run with "
                 "--debug for a traceback)")
            raise typer.Exit(EXIT_INTERNAL) from None
        code = exc.exit_code if isinstance(exc, GcmFundError) else EXIT_BAD_INPUT
        raise typer.Exit(code) from None


def _print_warnings(warnings: list[Any]) -> None:
    for warning in warnings:
        say(f"warning: {warning}")


@app.command()
def validate(inputs: InputsArg, model: ModelOpt = None) -> None:
    """Check the input files and the policy without solving.

    Example: gcm-fund validate inputs --model models/baseline.toml
    """
    from gcm_fund import api

    figures = _guard(lambda: api.validate(inputs, model))
    _print_warnings(figures.warnings)
    out.print(
        f"valid: {figures.states} states, {figures.gaps} gaps, {figures.sources} "
        f"sources, {figures.eligible_triples} eligible triples; need USD "
        f"{whole(figures.need_usd)} (fundable USD {whole(figures.fundable_usd)} under "
        f"policy {figures.policy}), pledges USD {whole(figures.pledged_usd)}",
        soft_wrap=True,
    )
    if figures.contributions is not None:
        out.print(figures.contributions, soft_wrap=True)
    if figures.history is not None:
        out.print(figures.history, soft_wrap=True)


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
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier run folder at "
                                        "--out (never a folder holding other files).")]
    = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", metavar="FILE", help="Also write an "
                                              "Excel workbook of the run (as `export`; an "
                                              "existing file only with --force).",
                                              show_default=False)] = None,
    donor_figures: Annotated[str, typer.Option(
        "--donor-figures", metavar="marginal|all|none",
        help="Under priority levels, the donor figures of sources_summary.csv, by "
        "re-solves: each source's marginal value; all: also the money placed and what "
        "reaches its gaps per USD more of its pledge (a whole re-solve per source); "
        "none: blank (no re-solve).")] = "marginal",
) -> None:
    """Solve the allocation and write a run folder.

    Example: gcm-fund allocate inputs --model models/ldc_priority.toml --out outputs/ldc
    """
    from gcm_fund import api

    def body() -> api.Run:
        with progress_bar(err) as progress:
            return api.allocate(inputs, model, solver, out=out_dir, force=force,
                                write_run=True, xlsx=xlsx, donor_figures=donor_figures,
                                on_loaded=lambda loaded: _print_warnings(loaded.warnings),
                                progress=progress)

    run = _guard(body)
    assert run.folder is not None
    terminal.run_summary(out, run, run.folder)
    if donor_figures != "marginal" and run.solution.levels is None:
        say(f"warning: --donor-figures {donor_figures}: for priority levels only; this "
            "policy's sources_summary.csv follows its own method (docs/outputs.md)")
    if xlsx is not None:
        out.print(f"workbook written to {xlsx}", soft_wrap=True)


def main() -> None:
    """Entry point of the `gcm-fund` console script."""
    # `--help` and `--version` print while the command line is parsed, before any command
    # body runs: through Typer's own Rich console, whose broken-pipe handling exits 1, and
    # through click, which lets a full disk's OSError out as a traceback. The process is
    # ours, so its help output ends like a command's: quietly on a closed pipe, 74 when
    # stdout cannot be written.
    Console.on_broken_pipe = terminal.PipeConsole.on_broken_pipe  # type: ignore[method-assign,assignment]
    # numpy's OpenBLAS starts a worker thread that busy-waits for work before it sleeps:
    # the other core's time in every command that imports numpy, on a shared machine
    # taken from someone else's work. The wait is read once, when
    # numpy loads (after this line); the number of threads, and so every sum's bits, stays.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    # Pydantic looks for plugins (observability hooks) in the entry points of every package
    # installed beside it, at every command's start; the tool's checks use none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        app()
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            err.print("terminated: nothing was written")
            sys.exit(EXIT_TERMINATED)
        err.print("interrupted: nothing was written")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        terminal.quiet_stdout()
        if exc.errno == errno.EPIPE:
            sys.exit(EXIT_OK)
        err.print(f"error: cannot write the output to standard output: {exc.strerror}")
        sys.exit(EXIT_OUTPUT)
    finally:
        # The process ends here. The interpreter's last garbage collections would walk
        # every object still alive (numpy, pandas, scipy and their modules: about a tenth
        # of a second of a 1-second allocate) only to free them at exit anyway.
        gc.freeze()


# ---------------------------------------------------------------------------------------
# Auditing run folders: certify, verify, explain, diff (the logic is in gcm_fund.audit)

RunDirArg = Annotated[Path, typer.Argument(help="A run folder written by `gcm-fund allocate`.",
                                           metavar="RUN_DIR", show_default=False)]


def _echo_lines(lines: list[str]) -> None:
    # Plain echo, not rich: one check per line, never re-wrapped to the terminal width.
    for line in lines:
        typer.echo(line)


@app.command()
def certify(run_dir: RunDirArg) -> None:
    """Prove a run's allocation correct and optimal from its files alone, without a solver.

    Rebuilds the rules from the run's copy of the inputs and policy, checks their sha256
    against manifest.json, every rule on the written amounts (docs/outputs.md's tolerance), the
    constraints tables, the duals' signs and reduced costs, a zero duality gap for stage 2
    and, when stage 1 ran, the dual bound that proves the floor. One line per check with
    its figure and tolerance. Exit status 0 when every check holds, 1 when one fails, 2 for
    a folder that is not a run folder.

    Example: gcm-fund certify outputs/3cd959e03080682b
    """
    from gcm_fund import api

    certificate = _guard(lambda: api.certify(run_dir))
    _echo_lines(certificate.lines())
    raise typer.Exit(EXIT_OK if certificate.ok else EXIT_CHECK_FAILED)


@app.command()
def verify(
    run_dir: RunDirArg,
    solver: Annotated[str | None, typer.Option(
        "--solver", help="Solve with this solver instead of the recorded one (highs, cbc, "
        "or a PuLP solver name).", show_default=False)] = None,
) -> None:
    """Solve a run's recorded inputs and policy again and compare.

    With the recorded solver, allocations.csv, coverage.csv and manifest.json must come
    back byte-identical; with another solver, floor and weighted objective must agree
    within 1e-6 relative (differing allocations are then an alternative optimum, and are
    certified; under levels every gap's amount must agree, only its split may differ).
    Exit status 0 when identical / equivalent, 1 otherwise.

    Example: gcm-fund verify outputs/3cd959e03080682b --solver cbc
    """
    from gcm_fund import api

    result = _guard(lambda: api.verify(run_dir, solver))
    _echo_lines(result.lines)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_CHECK_FAILED)


@app.command()
def explain(
    run_dir: RunDirArg,
    state: Annotated[str | None, typer.Option("--state", help="The State's iso3 code.",
                                              show_default=False)] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only this SDG target.",
                                               show_default=False)] = None,
    programme: Annotated[str | None, typer.Option(
        "--programme", help="A programme's id (a run of the programmes method).",
        show_default=False)] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="A source's id: where its money went and what one more dollar "
        "of its pledge would do.", show_default=False)] = None,
) -> None:
    """Why a State got what it got: its gaps, its sources, the rules that bound it.

    Per gap: need, fundable, allocated and coverage; what each source gave; the binding
    rules involving the State (gap, absorb, state_share, source_state, floor) with their
    duals in plain words; and every source that gave it nothing, with the reason.

    Under the programmes method, `--programme ID` says what a programme asked, what it got
    and why; `--state` also lists the State's programmes. `--source ID` tells a donor
    where its money went (by target, income group and State), its earmarks and budget,
    and its donor figures in words (docs/outputs.md).

    Example: gcm-fund explain outputs/3cd959e03080682b --state KEN --target 10.7

    Example: gcm-fund explain outputs/3cd959e03080682b --source gbr
    """
    from gcm_fund import api
    from gcm_fund.audit.programme_explanation import explain_programme, state_programmes
    from gcm_fund.audit.source_explanation import explain_source
    from gcm_fund.errors import UsageError

    def body() -> list[str]:
        lines = [] if programme is None else explain_programme(run_dir, programme)
        if source is not None:
            lines += explain_source(run_dir, source)
        if state is None:
            if programme is None and source is None:
                raise UsageError("give --state ISO3, --source ID or --programme ID")
            return lines
        return [*lines, *api.explain(run_dir, state, target).lines(),
                *state_programmes(run_dir, state)]

    _echo_lines(_guard(body))


@app.command()
def diff(
    run_a: Annotated[Path, typer.Argument(help="The first run folder.", metavar="RUN_A",
                                          show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="The second run folder.", metavar="RUN_B",
                                          show_default=False)],
    top: Annotated[int | None, typer.Option("--top", help="Show at most N changed lines per "
                                            "table (all when not given).", show_default=False,
                                            min=1)] = None,
) -> None:
    """What changed between two runs: inputs, policy keys, solver, floor, weighted objective,
    and the totals by State, target and source (changed lines only, largest first).

    Exit status 0 when the runs are the same, 1 when they differ (like diff(1)).

    Example: gcm-fund diff outputs/baseline outputs/ldc --top 10
    """
    from gcm_fund import api

    result = _guard(lambda: api.diff(run_a, run_b, top))
    _echo_lines(result.lines)
    raise typer.Exit(EXIT_OK if result.same else EXIT_CHECK_FAILED)


# ---------------------------------------------------------------------------------------
# Pledge sweeps, fair shares and scenario comparison


def _swept_sources(source: str | None, sources: str | None) -> list[str]:
    from gcm_fund.errors import UsageError

    if (source is None) == (sources is None):
        raise UsageError("name the swept source with --source ID, or several with "
                         "--sources a,b (not both)")
    if source is not None:
        return [source.strip()]
    assert sources is not None
    return [s.strip() for s in sources.split(",") if s.strip()]


@app.command()
def sweep(
    inputs: InputsArg,
    pledges: Annotated[str, typer.Option("--pledges", help="START:STOP:N: N pledge levels in "
                                         "USD, evenly spaced, both ends included (1 <= N <= "
                                         "10,000; 0 <= START <= STOP).", show_default=False)],
    out_file: Annotated[Path, typer.Option("--out", help="The sweep CSV; FILE.breakpoints.csv "
                                           "and FILE.png are written beside it (refused if "
                                           "one exists, unless --force).",
                                           show_default=False)],
    model: ModelOpt = None,
    source: Annotated[str | None, typer.Option("--source", help="The source whose pledge "
                                               "moves.", show_default=False)] = None,
    sources: Annotated[str | None, typer.Option("--sources", help="Several sources, comma-"
                                                "separated, all set to the same level at once "
                                                "(marginal_value is then the sum of their "
                                                "budget duals).", show_default=False)] = None,
    chart: Annotated[bool, typer.Option("--chart/--no-chart", help="Write FILE.png, floor and "
                                        "weighted objective against the pledge.")] = True,
    breakpoint_tol: Annotated[float, typer.Option("--breakpoint-tol", metavar="USD",
                                                  help="Search each kink to a bracket this "
                                                  "wide, or 1e-6 of the pledge if wider (at "
                                                  "least 0.01).", min=0.01)] = 1.0,
    max_solves: Annotated[int, typer.Option("--max-solves", help="At most this many solves "
                                            "in the breakpoint search, beyond the levels'; "
                                            "kinks not yet found exactly stay brackets.",
                                            min=0)] = 120,
    no_refine: Annotated[bool, typer.Option("--no-refine", help="Report breakpoints as the "
                                            "pairs of neighbouring levels only (no extra "
                                            "solves).")] = False,
    by: Annotated[str | None, typer.Option("--by", help="state or target: also write "
                                           "FILE.by_state.csv (or .by_target.csv), each "
                                           "one's amount at every level, and "
                                           "FILE.additionality.csv: of each extra USD, how "
                                           "much reaches the gaps the source may fund.",
                                           show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace output files that exist "
                                        "(never the command's own inputs).")] = False,
) -> None:
    """What `allocate` gives at each level of one source's pledge.

    One LP, re-solved warm by HiGHS at every level. Writes
    pledge_usd,status,floor,weighted,allocated_usd,marginal_value
    (one row per level) to FILE; the kinks of the floor, the money placed and
    the levels (or the weighted objective) to FILE.breakpoints.csv
    (pledge_usd,pledge_below_usd,pledge_above_usd,marginal_below,marginal_above:
    the kink lies in the bracket, pledge_usd is its middle, the marginal values
    are those of the pieces on either side); a chart to FILE.png. A progress
    bar on stderr when it is a terminal.

    Example: gcm-fund sweep inputs -m models/baseline.toml --source deu
    --pledges 0:1e9:51 --out outputs/sweep_deu.csv
    """
    from gcm_fund import api

    def body() -> api.SweepRun:
        ids = _swept_sources(source, sources)
        with progress_bar(err) as progress:
            return api.sweep(inputs, ids, pledges, out_file, model=model, chart=chart,
                             breakpoint_tol_usd=None if no_refine else breakpoint_tol,
                             max_solves=max_solves, force=force, by=by, progress=progress,
                             on_loaded=lambda loaded: _print_warnings(loaded.warnings))

    swept = _guard(body)
    terminal.sweep_result(out, swept)

@app.command("fair-share")
def fair_share(
    inputs: InputsArg,
    out_file: Annotated[Path, typer.Option("--out", help="The fair-share CSV (refused if it "
                                           "exists, unless --force).", show_default=False)],
    model: ModelOpt = None,
    basis: Annotated[str, typer.Option("--basis", help="gni, gni-per-capita-adjusted "
                                       "(needs the population column) or rci (every State "
                                       "with GNI; needs migrants_hosted); formulas in "
                                       "gcm_fund.analyses.fairshare.")] = "gni",
    capacity_weight: Annotated[float | None, typer.Option(
        "--capacity-weight", help="rci only: the weight w of capacity (GNI); 1 - w goes to "
        "responsibility (migrants hosted) [default: 0.5].", show_default=False)] = None,
    threshold: Annotated[str | None, typer.Option(
        "--threshold", help="rci only: the lowest income group that owes a share "
        "[default: HIC, so that no net recipient owes a share].", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace output files that exist "
                                        "(never the command's own inputs).")] = False,
) -> None:
    """Split the total fundable need across States and compare it with their pledges.

    The total is the sum of cofinancing[income] * need over all gaps (the
    policy gives the co-financing shares). --basis gni (default): the donors
    are the States named as donor_iso3, those with gni_usd > 0 share it in
    proportion to GNI; writes donor_iso3,gni_usd,fair_share_usd,pledged_usd,ratio
    (ratio = pledged / fair share; both blank without a positive GNI). --basis
    gni-per-capita-adjusted lightens the share of donors poorer per person than
    the donors' average (needs the optional population column of states.csv).
    --basis rci: every State with gni_usd at or above --threshold shares the
    total less the ifi and private pledges, by rci = w * its share of GNI +
    (1 - w) * its share of migrants hosted; writes
    iso3,name,income_group,capacity_usd,migrants_hosted,rci,fair_share_usd,pledged_usd,ratio,
    received_usd,net_usd, one row per State with GNI (pledged 0 for a State that
    pledges nothing; received: what it gets in allocate; net = fair share less
    received, < 0 for a net recipient, which a note names).

    Example: gcm-fund fair-share inputs -m models/baseline.toml --basis rci
    --out outputs/fair_share.csv
    """
    from gcm_fund import api

    shares = _guard(lambda: api.fair_share(inputs, out_file, model=model, basis=basis,
                                            force=force, capacity_weight=capacity_weight,
                                            threshold=threshold,
                                            on_loaded=lambda loaded: _print_warnings(
                                                loaded.warnings)))
    for note in shares.notes:
        say(f"note: {note}")
    # Under rci, the weight and threshold the table was computed with (defaults included).
    used = shares.table.attrs
    terminal.fair_shares(out, shares, basis, used.get("capacity_weight"), used.get("threshold"),
                         out_file)


@app.command()
def compare(
    inputs: InputsArg,
    out_file: Annotated[Path, typer.Option("--out", help="The comparison CSV: one row per "
                                           "metric, one column per scenario (refused if it "
                                           "exists, unless --force).", show_default=False)],
    models: Annotated[list[Path] | None, typer.Option("--model", "-m", metavar="FILE",
                                                      help="A policy TOML file; repeat for "
                                                      "several (default: "
                                                      "models/baseline.toml).",
                                                      show_default=False)] = None,
    overlays: Annotated[list[Path] | None, typer.Option("--overlay", metavar="FILE", help="A CSV "
                                                        "source_id,pledge_usd replacing those "
                                                        "pledges; repeat for several. Each "
                                                        "policy is run without and with each "
                                                        "overlay.", show_default=False)] = None,
    solver: SolverOpt = "highs",
    force: Annotated[bool, typer.Option("--force", help="Replace output files that exist "
                                        "(never the command's own inputs).")] = False,
) -> None:
    """Several policies and pledge overlays on the same inputs, side by side.

    Scenarios: every --model, without and with each --overlay. Figures:
    status, floor, weighted, pledged and allocated USD, the shares of the
    allocation to LDCs, to each income group, region and target, the loans
    share, and the number of binding caps (absorb, state_share and
    source_state rows whose slack is within the rules' tolerance and whose dual
    is not zero); then the grant equivalent, its shares to LDCs and to each
    income group, and the loans' share of the money by debt risk. One CSV row
    per figure, one column per scenario.

    Example: gcm-fund compare inputs -m models/baseline.toml
    -m models/ldc_priority.toml --overlay pledges.csv --out compare.csv
    """
    from gcm_fund import api

    result = _guard(lambda: api.compare(inputs, out_file, list(models or []),
                                        list(overlays or []), solver, force=force,
                                        on_warnings=_print_warnings)).result
    terminal.comparison(out, result, out_file)


@app.command()
def report(run_dir: RunDirArg) -> None:
    """Build a run folder's report.html again from the folder's own files.

    The page is the one `allocate` writes: the same folder gives the same
    page. When manifest.json lists the hash of report.html and the page
    changed (another version of gcm_fund), that hash is updated.

    Example: gcm-fund report outputs/ldc
    """
    from gcm_fund import api

    written = _guard(lambda: api.rebuild_report(run_dir))
    out.print(f"report written to {written}", soft_wrap=True)


@app.command()
def export(
    run_dir: RunDirArg,
    xlsx: Annotated[Path, typer.Option("--xlsx", metavar="FILE", help="The Excel workbook to "
                                       "write.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --xlsx file.")]
    = False,
) -> None:
    """An Excel workbook of a run folder: a sheet per table, the policy, the manifest.

    Header rows frozen, amounts in USD and shares as percentages; every text
    cell is stored as text, never as a formula.

    Example: gcm-fund export outputs/ldc --xlsx ldc.xlsx
    """
    from gcm_fund import api

    written = _guard(lambda: api.export(run_dir, xlsx, force=force))
    out.print(f"workbook written to {written}", soft_wrap=True)


# The follow-up and review commands (docs/review.md) live in their own module.
from gcm_fund.cli import follow_up  # noqa: E402

app.command()(follow_up.record)
app.command()(follow_up.review)
