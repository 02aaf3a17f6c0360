"""The follow-up and review commands (docs/review.md): `record` a run as a cycle of a
history file, and `review` the cycles it holds. `cli.app` registers them on the command
group; they reach its error handling and consoles when they run."""

# No `from __future__ import annotations`: Typer reads the parameters from the annotations.
from pathlib import Path
from typing import Annotated

import typer

from gcm_fund.writing import usd_short


def record(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `gcm-fund "
                                             "allocate`.", metavar="RUN_DIR",
                                             show_default=False)],
    cycle: Annotated[int, typer.Option("--cycle", help="The cycle this run allocated "
                                       "(an integer >= 1, not yet in the history).",
                                       show_default=False)],
    history: Annotated[Path, typer.Option("--history", metavar="FILE", help="The history "
                                          "CSV to append to (created with its header when "
                                          "absent).", show_default=False)],
) -> None:
    """Append a run's allocation to a history file as one cycle.

    One row per gap the run gave money: cycle, iso3, target, committed_usd (the gap's
    allocated amount), disbursed_usd 0 and result blank, for the fund to fill in from the
    implementers' reports; sorted by iso3, target. The run must certify; a cycle already
    in the file is refused (exit 2), and so is one other than the run's `[cycle] number`.

    Example: gcm-fund record outputs/round1 --cycle 1 --history inputs/history.csv
    """
    from gcm_fund import api
    from gcm_fund.cli import app as cli

    done = cli._guard(lambda: api.record(run_dir, cycle, history))
    cli.out.print(f"cycle {done.cycle}: {done.rows} gaps, {usd_short(done.committed_usd)} "
                  f"committed, {'written to new file' if done.created else 'appended to'} "
                  f"{done.history}", soft_wrap=True)


def review(
    inputs: Annotated[Path, typer.Argument(help="Folder with states.csv, gaps.csv, "
                                           "sources.csv (and contributions.csv).",
                                           show_default=False)],
    history: Annotated[Path, typer.Option("--history", metavar="FILE", help="The history "
                                          "CSV (cycle,iso3,target,committed_usd,"
                                          "disbursed_usd,result).", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="The folder to write the review "
                                          "into (refused if it exists, unless --force).",
                                          show_default=False)],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Policy TOML file "
                                               "[default: models/baseline.toml].",
                                               show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier review folder at "
                                        "--out (never a folder holding other files).")]
    = False,
) -> None:
    """The follow-up and review of a fund's cycles, as CSV tables and one page.

    Per cycle and State, target and region: committed, disbursed, execution
    (disbursed / committed) and results (the committed-weighted mean of the
    reported results), in review_states.csv, review_targets.csv and
    review_regions.csv; each donor's pledges, payments (with contributions.csv:
    paid over face value at the valuation date's rates) and fair share in
    review_donors.csv; the lags flagged (execution under 50 %, results under
    0.5, a donor that paid under 80 %); and review.html, a self-contained page
    with charts of execution and results by region and target across cycles.

    Example: gcm-fund review scenarios/cycles --history scenarios/cycles/history.csv
    --model scenarios/cycles/round3.toml --out outputs/review
    """
    from gcm_fund import api
    from gcm_fund.cli import app as cli

    done = cli._guard(lambda: api.review(inputs, history, out_dir, model=model, force=force))
    cli._print_warnings(done.warnings)
    states = done.review.states
    flagged = int((states["flags"] != "").sum())
    cli.out.print(f"review written to {done.written}: {states['cycle'].nunique()} cycles, "
                  f"{len(states)} State rows ({flagged} flagged), {len(done.review.donors)} "
                  "donors", soft_wrap=True)
