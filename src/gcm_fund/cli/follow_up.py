"""The follow-up and review commands (docs/review.md): `record` a run as a cycle of a
history file, and `review` the cycles it holds."""

# No `from __future__ import annotations`: Typer reads the parameters from the annotations.
from pathlib import Path
from typing import Annotated

import typer

from gcm_fund.cli import app as cli
from gcm_fund.writing import usd_short


@cli.app.command()
def record(
    run_dir: cli.RunDirArg,
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

    done = cli._guard(lambda: api.record(run_dir, cycle, history))
    cli.out.print(f"cycle {done.cycle}: {done.rows} gaps, {usd_short(done.committed_usd)} "
                  f"committed, {'written to new file' if done.created else 'appended to'} "
                  f"{done.history}", soft_wrap=True)
