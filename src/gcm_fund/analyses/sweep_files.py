"""The files of a pledge sweep (docs/commands.md): the level table, its breakpoints, the
chart and, with `--by`, the `next_dollar` files; all or none written."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gcm_fund.analyses import next_dollar
from gcm_fund.methods.strategy import method_named
from gcm_fund.solvers.backend import OPTIMAL
from gcm_fund.writing import amount, check_output_files, csv_text, real, write_files_atomic

if TYPE_CHECKING:
    from gcm_fund.analyses.sweep import SweepResult

COLUMNS = ("pledge_usd", "status", "floor", "weighted", "allocated_usd", "marginal_value")
BREAKPOINT_COLUMNS = ("pledge_usd", "pledge_below_usd", "pledge_above_usd", "marginal_below",
                      "marginal_above")


def level_columns(result: SweepResult) -> list[str]:
    """The columns after docs/commands.md's under levels: `levels` (how many distinct levels) and
    `level_1` ... `level_K`, K the most any pledge has; none under weighted."""
    found = [len(lv.levels) for lv in result.levels if lv.levels is not None]
    if not found and not method_named(result.method).has_levels:
        return []
    return ["levels"] + [f"level_{k}" for k in range(1, max(found, default=0) + 1)]


PROGRAMME_COLUMNS = ("programme_value", "programmes_funded", "funded_programmes")


def sweep_columns(result: SweepResult) -> list[str]:
    """Every column of the sweep CSV: docs/commands.md's, the levels', docs/terms.md's, then under
    programmes the value, how many are funded and which."""
    from gcm_fund.outputs.results import TERMS_METRICS

    programmes = PROGRAMME_COLUMNS if method_named(result.method).selects_programmes else ()
    return [*COLUMNS, *level_columns(result), *TERMS_METRICS, *programmes]


def sweep_rows(result: SweepResult) -> list[list[str]]:
    """The rows of the sweep CSV (docs/commands.md, `level_columns`, then docs/terms.md's
    `TERMS_METRICS`), formatted."""
    from gcm_fund.outputs.results import TERMS_METRICS

    extra = len(level_columns(result))
    programmes = method_named(result.method).selects_programmes
    rows = []
    for level in result.levels:
        if level.status != OPTIMAL:
            rows.append([amount(level.pledge_usd), level.status, "", "", "", "",
                         *[""] * (extra + (len(PROGRAMME_COLUMNS) if programmes else 0)),
                         *[""] * len(TERMS_METRICS)])
            continue
        row = [amount(level.pledge_usd), level.status, real(level.floor),
               amount(level.weighted_usd), amount(level.allocated_usd),
               real(level.marginal_value)]
        if extra:
            values = list(level.levels or ())
            row += [str(len(values)), *(real(v) for v in values),
                    *[""] * (extra - 1 - len(values))]
        terms = level.terms or (None,) * len(TERMS_METRICS)
        row += [amount(v) if name.endswith("_usd") else real(v)
                for name, v in zip(TERMS_METRICS, terms, strict=True)]
        if programmes:
            value, count, ids = level.programmes or (0.0, 0, "")
            row += [amount(value), str(count), ids]
        rows.append(row)
    return rows


def breakpoint_rows(result: SweepResult) -> list[list[str]]:
    """The rows of the breakpoints CSV, formatted."""
    return [[amount(p.pledge_usd), amount(p.pledge_below_usd), amount(p.pledge_above_usd),
             real(p.marginal_below), real(p.marginal_above)] for p in result.breakpoints]


def companion_paths(out: Path | str) -> tuple[Path, Path]:
    """Where the breakpoints and the chart of a sweep written to `out` go:
    `sweep.csv` -> `sweep.breakpoints.csv` and `sweep.png`."""
    out = Path(out)
    return out.with_suffix(".breakpoints.csv"), out.with_suffix(".png")


def chart_png(result: SweepResult) -> bytes:
    """Floor and weighted objective (under levels: each level) against the pledge,
    breakpoints marked, and below them the additionality of each extra USD between
    neighbouring levels (`next_dollar`), as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    optimal = [lv for lv in result.levels if lv.status == OPTIMAL]
    pledge = np.array([lv.pledge_usd for lv in optimal]) / 1e6
    floor = np.array([np.nan if lv.floor is None else lv.floor for lv in optimal])
    weighted = np.array([lv.weighted_usd for lv in optimal], dtype=float) / 1e6
    steps = next_dollar.additionality(result) if "fundable_gaps" in result.extra else []
    figure = Figure(figsize=(7, 7.5 if steps else 5.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3 if steps else 2, 1, sharex=True)
    top, bottom = axes[0], axes[1]
    top.plot(pledge, floor * 100, marker="o", markersize=3, color="#1f77b4")
    top.set_ylabel("floor z* (%)")
    if method_named(result.method).has_levels:
        # docs/model.md: how each level (the k-th lowest at each pledge) rises with the pledge.
        most = max((len(lv.levels or ()) for lv in optimal), default=0)
        for k in range(most):
            values = [lv.levels[k] if lv.levels is not None and len(lv.levels) > k
                      else np.nan for lv in optimal]
            bottom.plot(pledge, values, marker="o", markersize=2, linewidth=0.8)
        bottom.set_ylabel("levels, k-th lowest (coverage / priority)")
    else:
        bottom.plot(pledge, weighted, marker="o", markersize=3, color="#d62728")
        bottom.set_ylabel("weighted objective (USD million)")
    if steps:
        # Who gets the next dollar: per extra USD between neighbouring levels, what reaches
        # the swept sources' gaps and what displaces other money there (docs/commands.md).
        edges = [x / 1e6 for b1, b2, *_ in steps for x in (b1, b2)]
        reach = [v for step in steps for v in (step[3], step[3])]
        moved = [v for step in steps for v in (step[4], step[4])]
        axes[2].plot(edges, reach, color="#2ca02c", label="reaches its gaps (additionality)")
        axes[2].plot(edges, moved, color="#ff7f0e", label="displaces other money there")
        axes[2].set_ylim(min(0.0, *reach, *moved) - 0.05, max(1.0, *reach, *moved) + 0.05)
        axes[2].set_ylabel("per extra USD")
        axes[2].legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(f"pledge of {', '.join(result.source_ids)} (USD million)")
    for point in result.breakpoints:
        for axis in axes:
            axis.axvline(point.pledge_usd / 1e6, color="grey", linewidth=0.6, linestyle=":")
    infeasible = [lv.pledge_usd / 1e6 for lv in result.levels if lv.status != OPTIMAL]
    if infeasible:
        top.axvspan(min(infeasible), max(infeasible), color="#eeeeee")
    top.set_title("Pledge sweep (dotted: breakpoints, the kinks of its figures)", fontsize=10)
    for axis in axes:
        axis.grid(True, linewidth=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    # No Software or date entries, so the same sweep gives the same bytes.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def output_paths(out: Path | str, *, chart: bool = True, by: str | None = None) -> list[Path]:
    """Every file a sweep written to `out` writes: the CSV, its breakpoints, its chart,
    and with `by` the amounts by State or target and the additionality (`next_dollar`)."""
    breakpoints_path, chart_path = companion_paths(out)
    return [Path(out), breakpoints_path, *([chart_path] if chart else []),
            *(next_dollar.by_paths(out, by) if by else [])]


def write_sweep(result: SweepResult, out: Path | str, *, chart: bool = True,
                force: bool = False, inputs: Sequence[Path | str] = (),
                by: str | None = None) -> list[Path]:
    """Write the sweep CSV to `out`, its breakpoints and (if `chart`) its PNG beside it,
    with `by` (`state` or `target`) the `next_dollar` files: all or none. Refused
    (`UsageError`) over one of `inputs`, or over an existing file unless `force`."""
    next_dollar.check_by(by)
    paths = output_paths(out, chart=chart, by=by)
    check_output_files(paths, force=force, inputs=inputs)
    contents: list[str | bytes] = [csv_text(sweep_columns(result), sweep_rows(result)),
                                   csv_text(BREAKPOINT_COLUMNS, breakpoint_rows(result))]
    if chart:
        contents.append(chart_png(result))  # drawn before any file is touched
    if by:
        contents += [csv_text(*next_dollar.by_rows(result, by)),
                     csv_text(next_dollar.ADDITIONALITY_COLUMNS,
                              next_dollar.additionality_rows(result))]
    write_files_atomic(dict(zip(paths, contents, strict=True)))
    return paths
