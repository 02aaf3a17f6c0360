"""The terminal of the command line: its consoles (quiet on a closed pipe), the step log of
`-v`, and what the commands print for people (the run summary and the tables of sweep,
fair-share and compare). `gcm_fund.cli.app` parses and maps errors; this module prints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gcm_fund.errors import EXIT_OK
from gcm_fund.writing import real, whole

if TYPE_CHECKING:
    from gcm_fund import api


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass  # not a real file (an in-process runner): nothing is flushed at exit


class PipeConsole(Console):
    """A Rich console that ends quietly (status 0) when its reader stops reading."""

    def on_broken_pipe(self) -> None:
        # Rich's own handling exits with status 1; a reader that stops reading (`| head`)
        # is not a failure.
        self.quiet = True
        quiet_stdout()
        raise typer.Exit(EXIT_OK)


# markup=False: paths, policy names and cells are the user's text, printed as written
# (`--out 'run[/x]'` is a folder name, not a closing tag).
def consoles() -> tuple[PipeConsole, PipeConsole]:
    """stdout and stderr as Rich consoles, made per command: the width comes from the
    environment (COLUMNS) when the command starts, also for an in-process runner."""
    return (PipeConsole(highlight=False, markup=False),
            PipeConsole(stderr=True, highlight=False, markup=False))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever sys.stderr is when a message comes (an in-process
    runner swaps it per command)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_STEPS = _StderrHandler()
_STEPS.setFormatter(logging.Formatter("%(relativeCreated)8.0f ms  %(message)s"))


def log_steps(verbose: bool) -> None:
    """Send the library's step messages (logger `gcm_fund`, level INFO) to stderr, for
    this command only."""
    logger = logging.getLogger("gcm_fund")
    logger.removeHandler(_STEPS)
    logger.setLevel(logging.NOTSET)
    if verbose:
        logger.addHandler(_STEPS)
        logger.setLevel(logging.INFO)


def run_summary(console: Console, run: api.Run, written: Path) -> None:
    """What `allocate` prints: where the run went, the floor, coverage tables and the
    rules that bound (or, under levels, what set the floor and stopped the money)."""
    figures = run.summary
    floor = figures["floor"]
    from gcm_fund.methods.strategy import method_of
    from gcm_fund.outputs.results import floor_text
    from gcm_fund.outputs.run_folder import illustrative_entry, illustrative_notice

    notice = illustrative_notice(illustrative_entry(run.loaded.data))
    if notice:
        console.print(Text(notice, style="bold"), soft_wrap=True)
    console.print(f"run {run.run_id} ({run.solution.solver.name}): written to {written}",
              soft_wrap=True)
    coverage = run.tables.coverage
    eligible = coverage["eligible"].to_numpy(dtype=bool)
    reachable = float(coverage["fundable_usd"].to_numpy(dtype=float)[eligible].sum())
    # Both denominators, named: a State no source may fund stays in the tables' totals.
    apart = ("" if abs(reachable - figures["fundable_usd"]) < 0.005 else
             f" (USD {whole(reachable)} of it in gaps some source may fund, "
             f"{figures['allocated_usd'] / reachable:.1%} covered)" if reachable > 0 else "")
    console.print(
        f"floor reached: {floor_text(floor, figures['floor_reason'])}"
        f"; allocated USD {whole(figures['allocated_usd'])} of USD "
        f"{whole(figures['pledged_usd'])} pledged; fundable need USD "
        f"{whole(figures['fundable_usd'])}{apart}", soft_wrap=True
    )
    for title, key in (("income group", "coverage_by_income"), ("target", "coverage_by_target")):
        table = Table(title=f"Coverage by {title} (of all fundable need)",
                      title_justify="left")
        table.add_column(title)
        table.add_column("allocated USD", justify="right")
        table.add_column("fundable USD", justify="right")
        table.add_column("coverage", justify="right")
        for name, (allocated, fundable) in figures[key].items():
            share = f"{allocated / fundable:.1%}" if fundable > 0 else "-"
            table.add_row(Text(name), whole(allocated), whole(fundable), share)
        console.print(table)
    if method_of(run.scenario.policy_file.policy).has_levels:
        _levels(console, figures)
        _next_dollar(console, run.tables.sources_summary, written)
    elif figures["most_binding"]:
        table = Table(title="Most binding rules", title_justify="left")
        table.add_column("rule")
        table.add_column("dual (objective per USD)", justify="right")
        for name, dual in figures["most_binding"]:
            table.add_row(Text(name), f"{dual:.6g}")
        console.print(table)


def _next_dollar(console: Console, summary: Any, written: Path) -> None:
    """Under levels, the marginal values in a line (docs/outputs.md): whose next dollar
    lifts the worst-off gaps it may fund. Nothing when they were not computed."""
    marginal = summary["marginal_value"].astype(float)
    computed = int(marginal.notna().sum())
    if not computed:
        return
    lifting = [str(sid) for sid, value in zip(summary["source_id"], marginal, strict=True)
               if value > 0]
    shown = ", ".join(lifting[:6]) + (f" and {len(lifting) - 6} more" if len(lifting) > 6
                                      else "")
    said = (f"one more dollar of pledge lifts the worst-off gaps a source may fund for "
            f"{len(lifting)} of {computed} sources ({shown})" if lifting else
            "one more dollar of pledge lifts the worst-off gaps a source may fund for none of "
            f"{computed} sources (rules no pledge moves hold them)")
    console.print(f"{said}; in words: gcm-fund explain {written} --source ID", soft_wrap=True)


def _levels(console: Console, figures: dict) -> None:
    """Under priority levels: what set the floor and the rules that stopped the most money."""
    set_by = figures["floor_set_by"]
    if set_by:
        shown = ", ".join(set_by[:5]) + (f" and {len(set_by) - 5} more" if len(set_by) > 5
                                         else "")
        console.print(f"the floor is set by: {shown}", soft_wrap=True)
    table = Table(title="Rules that stopped the most money", title_justify="left")
    table.add_column("rule")
    table.add_column("gaps stopped", justify="right")
    table.add_column("their USD", justify="right")
    for family, count, money, rules in figures["stopped_most"][:6]:
        label = rules[0] if len(rules) == 1 else f"{family} ({len(rules)} rules)"
        table.add_row(Text(label), f"{count:,}", whole(money))
    console.print(table)


def overall_additionality(result: Any) -> tuple[float, float, float, float, float] | None:
    """`next_dollar`'s figures from the lowest positive feasible level to the highest:
    (B1, B2, placed, additionality, displaced) per extra USD; None with fewer than two."""
    from dataclasses import replace

    from gcm_fund.analyses.next_dollar import additionality

    ends = [lv for lv in result.levels if lv.status == "optimal" and lv.pledge_usd > 0
            and lv.gap_amounts is not None]
    if len(ends) < 2 or "fundable_gaps" not in result.extra:
        return None
    found = additionality(replace(result, levels=[ends[0], ends[-1]]))
    return None if not found else found[0][:5]


def sweep_result(console: Console, swept: api.SweepRun) -> None:
    """What `sweep` prints: the levels, the breakpoints and where they were written."""
    result, written = swept.result, swept.written
    optimal = [lv for lv in result.levels if lv.status == "optimal"]
    console.print(f"sweep of {', '.join(result.source_ids)}: {len(result.levels)} levels "
              f"({len(result.levels) - len(optimal)} infeasible), {len(result.breakpoints)} "
              f"breakpoint{'s' if len(result.breakpoints) != 1 else ''}; written to "
              f"{', '.join(str(p) for p in written)}", soft_wrap=True)
    whole_range = overall_additionality(result)
    if whole_range is not None:
        low, high, placed, reaches, displaced = whole_range
        console.print(f"of each extra USD from {whole(low)} to {whole(high)}: {placed:.2f} "
                      f"placed, {reaches:.2f} reaches the gaps {', '.join(result.source_ids)} "
                      f"may fund, {displaced:.2f} displaces other money there",
                      soft_wrap=True)
    if result.breakpoints:
        table = Table(title="Breakpoints (kinks of the floor, money placed or levels)",
                      title_justify="left")
        for name in ("pledge USD", "marginal below", "marginal above"):
            table.add_column(name, justify="right")
        for point in result.breakpoints:
            table.add_row(whole(point.pledge_usd), real(point.marginal_below),
                          real(point.marginal_above))
        console.print(table)


def fair_shares(console: Console, shares: Any, basis: str, capacity_weight: float,
                threshold: str, out_file: Path) -> None:
    """What `fair-share` prints: the total and the largest shares against pledges."""
    table, total = shares.table, shares.total_fundable_usd

    def shown(value: float) -> str:
        return "-" if value != value else whole(value)

    def ratio(value: float) -> str:
        return "-" if value != value else f"{value:.2f}"

    if basis == "rci":
        owing = table[table["fair_share_usd"] > 0]
        console.print(f"fundable need less ifi and private pledges: USD {whole(total)}, owed by "
                  f"{len(owing)} of {len(table)} States with GNI; written to {out_file}",
                  soft_wrap=True)
        view = Table(title=f"15 largest (rci, w {capacity_weight:g}, {threshold} and up)",
                     title_justify="left")
        for name in ("State", "rci", "fair share USD", "pledged USD", "ratio", "received USD",
                     "net USD"):
            view.add_column(name, justify="left" if name == "State" else "right")
        for row in owing.sort_values(["fair_share_usd", "iso3"],
                                     ascending=[False, True]).head(15).itertuples(index=False):
            view.add_row(Text(str(row.iso3)), f"{row.rci:.4f}", shown(row.fair_share_usd),
                         shown(row.pledged_usd), ratio(row.ratio), shown(row.received_usd),
                         shown(row.net_usd))
        console.print(view)
        return
    console.print(f"total fundable need USD {whole(total)} across {len(table)} donor States; "
              f"written to {out_file}", soft_wrap=True)
    view = Table(title=f"Fair shares, basis {basis}", title_justify="left")
    view.add_column("donor")
    paid = "paid_usd" in table.columns  # with contributions.csv (docs/contributions.md)
    for name in ("GNI USD", "fair share USD", "pledged USD", "ratio",
                 *(("paid USD", "paid ratio") if paid else ())):
        view.add_column(name, justify="right")
    for row in table.itertuples(index=False):
        view.add_row(Text(str(row.donor_iso3)), shown(row.gni_usd), shown(row.fair_share_usd),
                     shown(row.pledged_usd), ratio(row.ratio),
                     *((shown(row.paid_usd), ratio(row.paid_ratio)) if paid else ()))
    console.print(view)


def comparison(console: Console, result: Any, out_file: Path) -> None:
    """What `compare` prints: the figures of every scenario, in blocks that fit the
    terminal, and why an infeasible scenario is."""
    from gcm_fund.analyses import compare as comparing

    console.print(Text(f"Scenarios: shares in %, amounts in USD million; written to {out_file}"))
    metric_width = max(len(m) for m in result.metric_names)
    # One table per block of scenarios that fits the terminal (80 columns when piped).
    for block in comparing.scenario_blocks(result, console.width, metric_width):
        view = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        view.add_column("metric", no_wrap=True)
        for s in block:
            view.add_column(Text(s.label), justify="right", overflow="fold",
                            max_width=comparing.LABEL_WIDTH)
        for metric in result.metric_names:
            view.add_row(Text(metric), *(Text(
                comparing.text_metric(s, metric) or shown_metric(metric, s.metrics.get(metric)))
                for s in block))
        console.print(view)
    for s in result.scenarios:
        if s.diagnosis:
            console.print(Text(f"{s.label}: infeasible: {s.diagnosis}"))


def shown_metric(metric: str, value: float | None) -> str:
    """A figure of `compare` for the terminal: shares and the floor in %, USD in millions."""
    if value is None or value != value:
        return "-"
    if metric.startswith("binding_caps") or metric == "levels":
        return str(int(value))
    if metric.endswith("_usd") or metric == "weighted":
        return f"{value / 1e6:,.1f}"
    if metric.startswith("level_"):  # a level is coverage / priority: no unit
        return f"{value:.6g}"
    return f"{value:.2%}" if metric == "floor" else f"{value:.1%}"


def say(text: str) -> None:
    """A message on stderr exactly as written: plain text, never wrapped or restyled
    (messages are tested and parsed line by line)."""
    typer.echo(text, err=True)
