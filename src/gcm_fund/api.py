"""The library's entry points: one function per command, each returning a result object.

The command line only parses, prints and maps errors to exit statuses; everything a
command does (checking where it writes, writing, `diagnosis.json`) happens here.

    >>> from gcm_fund import api
    >>> run = api.allocate("inputs", "models/baseline.toml")   # doctest: +SKIP
    >>> api.write(run, "outputs/my-run")                        # doctest: +SKIP
    >>> api.allocate(out="outputs/my-run", force=True).folder  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gcm_fund.errors import Diagnosis, InfeasibleError, Problem, UsageError
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES
from gcm_fund.inputs.schema import INPUT_FILES, META_FILE
from gcm_fund.model.eligibility import eligible_triples, fundable_usd
from gcm_fund.model.limits import check_swept_total
from gcm_fund.model.scenario import DEFAULT_MODEL, Scenario, load, project_path  # noqa: F401 (the library's names)
from gcm_fund.model.scenario import policy_path as _policy_path
from gcm_fund.outputs.destination import (
    DIAGNOSIS,
    MANIFEST,
    check_apart,
    check_destination,
    replaceable,
)
from gcm_fund.writing import atomic_folder, check_output_files

if TYPE_CHECKING:
    import pandas as pd

    from gcm_fund.analyses.compare import Comparison
    from gcm_fund.analyses.sweep import SweepResult
    from gcm_fund.audit import Certificate, Explanation, RunDiff
    from gcm_fund.engine import Run
    from gcm_fund.verification import Verification

log = logging.getLogger(__name__)

DEFAULT_INPUTS = "inputs"
DEFAULT_OUTPUTS = "outputs"


# The checked inputs and policy of a command (the name this module gave them first).
Loaded = Scenario


def __getattr__(name: str) -> Any:
    # `api.Run` without importing the engine (pandas, the solvers) until it is asked for.
    if name == "Run":
        from gcm_fund.engine import Run

        return Run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def input_files(inputs: Path | str, model: Path | str | None = None) -> list[Path]:
    """The files a command reads: the input folder's files and the policy."""
    names = (*INPUT_FILES, *OPTIONAL_INPUT_FILES, META_FILE)
    return [Path(inputs) / name for name in names] + [_policy_path(model)]


@dataclass
class Validation:
    """What `validate` found: the figures of checked inputs under a policy."""

    states: int
    gaps: int
    sources: int
    eligible_triples: int
    need_usd: float
    fundable_usd: float
    pledged_usd: float
    policy: str
    warnings: list[Problem]
    # With contributions.csv (docs/contributions.md): how they were valued, one line.
    contributions: str | None = None
    # With history.csv (docs/cycles.md): what it does to this round, one line.
    history: str | None = None


def history_line(data: Any) -> str | None:
    """`validate`'s line on history.csv: its rows, the window, e_bar, the States with a
    factor and the carry-over; None without history."""
    cycle, history = data.cycle, data.history
    if cycle is None or history is None:
        return None
    e_bar = "undefined" if cycle.e_bar != cycle.e_bar else f"{cycle.e_bar:.2%}"
    what = "kept by the States" if cycle.keep else "pooled as the carryover source"
    span = (f"cycles {cycle.first}-{cycle.last}" if cycle.first < cycle.last
            else f"cycle {cycle.last}")
    return (f"history: {len(history)} row{'s' * (len(history) != 1)}; cycle {cycle.number} "
            f"looks back at {span} (execution of all States {e_bar}; "
            f"{len(cycle.performance)} with a factor); undisbursed USD "
            f"{cycle.carryover_usd:,.2f} {what}")


def contributions_line(data: Any) -> str | None:
    """`validate`'s line on contributions.csv: rows, valuation date, face and counted USD,
    and each rate used with its date; None without contributions."""
    valuation = data.valuation
    if valuation is None:
        return None
    rates = "; ".join(f"{r.currency} at USD {r.usd_per_unit:.10g} ({r.date.isoformat()}, "
                      f"{r.source})" for r in valuation.rates)
    return (f"contributions: {len(valuation.resources)} rows valued at "
            f"{valuation.valuation_date.isoformat()}, counted USD "
            f"{valuation.counted_usd:,.2f} of USD {valuation.face_usd:,.2f} face"
            f"{'; ' + rates if rates else ''}")


def validate(inputs: Path | str, model: Path | str | None = None) -> Validation:
    """Check inputs and policy without solving; the figures `validate` prints."""
    loaded = load(inputs, model)
    data, policy = loaded.data, loaded.policy_file.policy
    # Counting the eligible triples needs no LP: validate stays light on large inputs.
    var_source, _ = eligible_triples(data, policy)
    return Validation(
        states=len(data.state_table),
        gaps=len(data.gap_table),
        sources=len(data.source_table),
        eligible_triples=len(var_source),
        need_usd=float(data.gap_table["need_usd"].sum()),
        fundable_usd=float(fundable_usd(data, policy).sum()),
        pledged_usd=float(data.source_table["pledge_usd"].sum()),
        policy=loaded.policy_file.policy.name,
        warnings=loaded.warnings,
        contributions=contributions_line(data),
        history=history_line(data),
    )


def solve_loaded(scenario: Scenario, solver: str = "highs", donor_figures: str = "none",
                 progress: Callable[[str, int, int | None], None] | None = None) -> Run:
    """Build and solve the LP of a scenario (`engine.run`)."""
    # Imported here: `validate` and the commands that read a run folder need none of it.
    from gcm_fund.engine import run

    return run(scenario, solver, donor_figures, progress)


def allocate(inputs: Path | str | None = None, model: Path | str | None = None,
             solver: str = "highs", *, out: Path | str | None = None, force: bool = False,
             write_run: bool = False, xlsx: Path | str | None = None,
             donor_figures: str = "marginal",
             on_loaded: Callable[[Loaded], None] | None = None,
             progress: Callable[[str, int, int | None], None] | None = None) -> Run:
    """Load, build and solve: the allocation of `inputs` (the bundled example when None)
    under the policy `model` (the bundled baseline when None).

    With `out` (or `write_run`, into `outputs/<run_id>/`) the run folder is written too and
    `Run.folder` says where; a destination that would lose something is refused before
    anything is solved (`runfolder.check_destination`). An infeasible policy raises
    `InfeasibleError`; with `out`, its `diagnosis.json` is written into `out` first.
    `on_loaded` is called once the inputs are read (to show their warnings before solving).
    With `xlsx`, the run's workbook is written there too (as `export`), refused like
    `sweep`'s `out` before anything is solved. `donor_figures`: under levels, which of
    sources_summary.csv's donor figures to find by re-solves (`engine.solve`): the
    marginal values by default, "all" for the per-USD figures too, "none" for neither;
    `progress(phase, done, total)` hears of their re-solves.
    """
    from gcm_fund.methods.donor_figures import check_figure_set

    check_figure_set(donor_figures)  # before anything is read or solved
    folder = Path(inputs) if inputs is not None else project_path(DEFAULT_INPUTS)
    policy = _policy_path(model)
    if out is not None:
        check_destination(out, force=force, inputs=folder, policy=policy)
    elif write_run:
        # The run id is known only once solved; where outputs/ lies is known now.
        check_apart(Path(DEFAULT_OUTPUTS) / "<run_id>", inputs=folder, policy=policy)
    if xlsx is not None:
        if out is not None:
            _refuse_workbook_inside(xlsx, out)
        check_output_files([Path(xlsx)], force=force, inputs=input_files(folder, model))
    loaded = load(folder, model)
    if on_loaded is not None:
        on_loaded(loaded)
    try:
        run = solve_loaded(loaded, solver, donor_figures, progress)
    except InfeasibleError as exc:
        if out is not None:
            write_diagnosis(exc.diagnosis, out, force=force, inputs=folder, policy=policy)
        raise
    if out is not None or write_run or xlsx is not None:
        run.folder = write(run, out, force=force)
    if xlsx is not None and run.folder is not None:
        export(run.folder, xlsx, force=True)  # checked above, before solving
    return run


def write_diagnosis(diagnosis: Diagnosis, out: Path | str, *, force: bool = False,
                    inputs: Path | str | None = None, policy: Path | str | None = None
                    ) -> Path:
    """Write an infeasible run's `diagnosis.json` into the folder `out`, atomically, under
    the rules of a run folder (`runfolder.check_destination`)."""
    check_destination(out, force=force, inputs=inputs, policy=policy)
    with atomic_folder(Path(out), replaceable(force=force)) as folder:
        (folder / DIAGNOSIS).write_text(json.dumps(diagnosis.to_dict(), indent=2) + "\n",
                                        encoding="utf-8")
    return Path(out)


def write(run: Run, out: Path | str | None = None, *, force: bool = False) -> Path:
    """Write a run folder: into `out` itself, or `outputs/<run_id>/` when None."""
    if out is None:
        destination = Path(DEFAULT_OUTPUTS) / run.run_id
        replace_same = True  # a folder named by the run id can only hold this same run
    else:
        destination, replace_same = Path(out), False
    from gcm_fund.engine import write as write_run

    return write_run(run, destination, force=force, replace_same=replace_same)


# ---------------------------------------------------------------------------------------
# Pledge sweeps, fair shares, scenario comparison: each checks where it writes before it
# computes anything, and writes all its files or none.


@dataclass
class SweepRun:
    """A sweep and the files it was written to."""

    result: SweepResult
    written: list[Path]
    warnings: list[Problem]


def sweep(inputs: Path | str, source_ids: Sequence[str], pledges: str | Sequence[float],
          out: Path | str | None = None, *, model: Path | str | None = None,
          chart: bool = True, breakpoint_tol_usd: float | None = 1.0, max_solves: int = 120,
          force: bool = False, by: str | None = None,
          on_loaded: Callable[[Loaded], None] | None = None,
          progress: Callable[[str, int, int | None], None] | None = None) -> SweepRun:
    """What `allocate` gives at each pledge level of `source_ids` (moved together).

    `pledges` is `START:STOP:N` or the levels in USD. With `out`, the sweep CSV goes there
    and its breakpoints and chart beside it (`sweep.companion_paths`), all or nothing; an
    `out` that is an input, or an existing file without `force`, is refused first.
    `breakpoint_tol_usd=None` reports breakpoints as pairs of neighbouring levels.
    """
    import numpy as np

    from gcm_fund.analyses import next_dollar
    from gcm_fund.analyses import sweep as sweeping

    ids = list(source_ids)
    levels = (sweeping.parse_levels(pledges) if isinstance(pledges, str)
              else np.asarray(pledges, dtype=float))
    next_dollar.check_by(by)
    if out is not None:
        check_output_files(sweeping.output_paths(out, chart=chart, by=by), force=force,
                           inputs=input_files(inputs, model))
    loaded = load(inputs, model)
    sweeping.source_indices(loaded.data, ids)
    check_swept_total(loaded.data, ids, levels)
    if on_loaded is not None:
        on_loaded(loaded)
    result = sweeping.sweep(loaded.data, loaded.policy_file.policy, ids, levels,
                            breakpoint_tol_usd=breakpoint_tol_usd, max_solves=max_solves,
                            progress=progress)
    written = ([] if out is None
               else sweeping.write_sweep(result, out, chart=chart, force=force, by=by,
                                         inputs=input_files(inputs, model)))
    return SweepRun(result, written, loaded.warnings)


@dataclass
class FairShares:
    """The fair-share table, the total it splits, and where it was written."""

    table: pd.DataFrame
    total_fundable_usd: float
    basis: str
    written: Path | None
    warnings: list[Problem]
    notes: list[str] = field(default_factory=list)


def fair_share(inputs: Path | str, out: Path | str | None = None, *,
               model: Path | str | None = None, basis: str = "gni", force: bool = False,
               capacity_weight: float | None = None, threshold: str | None = None,
               on_loaded: Callable[[Loaded], None] | None = None) -> FairShares:
    """The total fundable need split across donor States in proportion to GNI (or
    `basis`), with their pledges; written to `out` (CSV) when given, refused like
    `sweep`'s. Under basis `rci` every State with GNI is in the table, `capacity_weight`
    and `threshold` apply (`fairshare`'s defaults when None), and the total is what States
    owe once ifi and private sources have pledged; under another basis giving either is a
    `UsageError`."""
    from gcm_fund.analyses import fairshare

    if basis != "rci":
        given = [name for name, value in (("--capacity-weight", capacity_weight),
                                          ("--threshold", threshold)) if value is not None]
        if given:
            raise UsageError(f"{' and '.join(given)}: for --basis rci only (the basis is "
                             f"{basis})")
    if out is not None:
        check_output_files([Path(out)], force=force, inputs=input_files(inputs, model))
    loaded = load(inputs, model)
    if on_loaded is not None:
        on_loaded(loaded)
    policy = loaded.policy_file.policy
    if basis == "rci":
        table = fairshare.rci_shares(
            loaded.data, policy,
            fairshare.CAPACITY_WEIGHT if capacity_weight is None else capacity_weight,
            fairshare.THRESHOLD if threshold is None else threshold,
            fairshare.received_by_state(loaded.data, policy))
        total = fairshare.owed_by_states_usd(loaded.data, policy)
    else:
        table = fairshare.fair_shares(loaded.data, policy, basis)
        total = fairshare.total_fundable_usd(loaded.data, policy)
    written = (None if out is None
               else fairshare.write_fair_shares(table, out, force=force,
                                                inputs=input_files(inputs, model)))
    return FairShares(table, total, basis, written, loaded.warnings,
                      list(table.attrs.get("notes", [])))


@dataclass
class CompareRun:
    """The scenarios side by side and where the comparison was written."""

    result: Comparison
    written: Path | None


def compare(inputs: Path | str, out: Path | str | None = None,
            models: Sequence[Path | str] = (), overlays: Sequence[Path | str] = (),
            solver: str = "highs", *, force: bool = False,
            on_warnings: Callable[[list[Problem]], None] | None = None) -> CompareRun:
    """Every policy in `models` (the baseline when none), without and with each pledge
    overlay, solved and compared; written to `out` (CSV) when given, refused like
    `sweep`'s (the policies and overlays count as inputs). `on_warnings` gets the
    warnings once everything is read, before solving."""
    from gcm_fund.analyses import compare as comparing

    read = [*input_files(inputs)[:-1],
            *(map(Path, models) if models else [_policy_path(None)]), *map(Path, overlays)]
    if out is not None:
        check_output_files([Path(out)], force=force, inputs=read)
    result = comparing.compare(inputs, list(models), list(overlays), solver, on_warnings)
    written = (None if out is None
               else comparing.write_comparison(result, out, force=force, inputs=read))
    return CompareRun(result, written)


# ---------------------------------------------------------------------------------------
# Auditing run folders (gcm_fund.audit)


def certify(run_dir: Path | str) -> Certificate:
    """Prove a run folder's allocation correct and optimal from its files alone."""
    from gcm_fund.audit import certify as certify_run

    return certify_run(run_dir)


def verify(run_dir: Path | str, solver: str | None = None) -> Verification:
    """Solve a run's recorded inputs and policy again and compare."""
    from gcm_fund.verification import verify as verify_run

    return verify_run(run_dir, solver)


def explain(run_dir: Path | str, iso3: str, target: str | None = None) -> Explanation:
    """Why a State got what it got in a run."""
    from gcm_fund.audit import explain as explain_run

    return explain_run(run_dir, iso3, target)


def explain_source(run_dir: Path | str, source_id: str) -> list[str]:
    """Where a source's money went in a run and what one more dollar of its pledge would
    do, in words (`explain --source`)."""
    from gcm_fund.audit.source_explanation import explain_source as explain_a_source

    return explain_a_source(run_dir, source_id)


def diff(run_a: Path | str, run_b: Path | str, top: int | None = None) -> RunDiff:
    """What changed between two runs."""
    from gcm_fund.audit import diff as diff_runs

    return diff_runs(run_a, run_b, top)


# ---------------------------------------------------------------------------------------
# Follow-up and review (docs/review.md): a run recorded as a cycle of a history file


@dataclass
class Recorded:
    """A run's allocation appended to a history file as one cycle."""

    history: Path
    cycle: int
    rows: int
    committed_usd: float
    created: bool


def record(run_dir: Path | str, cycle: int, history: Path | str) -> Recorded:
    """Append a run folder's allocation to `history` as cycle `cycle` (docs/review.md):
    one row per gap with money, `committed_usd` its allocated amount, disbursed 0 and
    result blank; the file is created with its header when absent.

    Refused (`UsageError`, exit 2), nothing written: a folder that is not a run folder or
    does not certify, a cycle below 1, one the history already holds, or other than the
    run's policy's `[cycle] number`, and a history file inside the run folder.
    """
    import tomllib

    from gcm_fund.analyses import record as recording
    from gcm_fund.audit import certify as certify_run
    from gcm_fund.inputs.history import read_history
    from gcm_fund.writing import file_kind, refuse_dash, write_atomic

    folder, path = Path(run_dir), Path(history)
    refuse_dash(path)
    if cycle < 1:
        recording.check_cycle(cycle, set(), path)
    kind = file_kind(path)
    if kind not in (None, "a file"):
        raise UsageError(f"{path}: is {kind}, not a history file")
    certificate = certify_run(folder)
    if not certificate.ok:
        failed = ", ".join(check.name for check in certificate.failed())
        raise UsageError(f"{folder}: does not certify ({failed}); record only a run that "
                         f"`gcm-fund certify {folder}` proves")
    if folder.resolve() in path.resolve().parents:
        raise UsageError(f"{path}: is inside the run folder {folder}, which holds the run's "
                         "own files only; keep the history elsewhere")
    policy = tomllib.loads((folder / "policy.toml").read_text(encoding="utf-8"))
    number = policy.get("cycle", {}).get("number") if isinstance(policy.get("cycle"), dict) \
        else None
    recording.check_policy_cycle(cycle, number if isinstance(number, int) else None, folder)
    existing = path.read_text(encoding="utf-8") if kind == "a file" else None
    recorded = (set(read_history(path, run_states(folder))["cycle"].tolist())
                if existing and existing.strip() else set())
    recording.check_cycle(cycle, recorded, path)
    rows = recording.cycle_rows(folder / "coverage.csv", cycle)
    write_atomic(path, recording.appended(existing, rows))
    return Recorded(path, cycle, len(rows), sum(float(r[3]) for r in rows), existing is None)


@dataclass
class ReviewRun:
    """The follow-up and review and the folder it was written to."""

    review: Any  # outputs.review_folder.Review
    written: Path
    warnings: list[Problem]


def review(inputs: Path | str, history: Path | str, out: Path | str, *,
           model: Path | str | None = None, force: bool = False) -> ReviewRun:
    """The follow-up and review of a history file (docs/review.md): per cycle, State,
    target and region what was committed, disbursed and achieved, each donor's payments
    against its pledges and fair share, the lags flagged; written to the folder `out`
    (four CSV tables and review.html), all or nothing. `out` is refused like a run
    folder's, and over the history file; an earlier review only with `force`."""
    from gcm_fund import __version__
    from gcm_fund.analyses import review as reviewing
    from gcm_fund.inputs.csv_input import sha256_bytes
    from gcm_fund.inputs.history import read_history
    from gcm_fund.outputs.review_folder import Review, check_review_destination, write_review

    check_review_destination(out, force=force, inputs=inputs, history=history)
    loaded = load(inputs, model)
    data, policy = loaded.data, loaded.policy_file.policy
    rows = read_history(history, set(data.states["iso3"]), set(data.gaps["target"]))
    found = Review(
        states=reviewing.states_review(rows, data),
        targets=reviewing.targets_review(rows),
        regions=reviewing.regions_review(rows, data),
        donors=reviewing.donors_review(data, policy),
        cycles=reviewing.by_group(rows, []),
        illustrative=data.meta.illustrative, description=data.meta.description or "",
        contributions=data.valuation is not None,
        provenance=[("gcm_fund", __version__),
                    ("history", f"{history} (sha256 {sha256_bytes(Path(history).read_bytes())})"),
                    ("policy", f"{loaded.policy_file.path} (sha256 "
                               f"{loaded.policy_file.sha256})"),
                    *[(f"input {name}", f"sha256 {digest}")
                      for name, digest in sorted(data.file_sha256.items())]])
    return ReviewRun(found, write_review(found, out, force=force), loaded.warnings)


def run_states(run_dir: Path) -> set[str]:
    """The iso3 codes of a run folder's copy of states.csv."""
    import csv

    with open(run_dir / "inputs" / "states.csv", newline="", encoding="utf-8") as handle:
        return {row["iso3"] for row in csv.DictReader(handle)}


# ---------------------------------------------------------------------------------------
# The board pack: the page and the workbook, from a run folder's files


def rebuild_report(run_dir: Path | str) -> Path:
    """Build a run folder's report.html again from the folder's own files."""
    from gcm_fund.outputs import run_folder as report

    return report.rebuild_report(run_dir)


def _refuse_workbook_inside(xlsx: Path | str, run_dir: Path | str) -> None:
    """A run folder holds the run's own files only (`certify` names any other, and
    `--force` then refuses to replace the folder): the workbook goes elsewhere."""
    workbook, folder = Path(xlsx).resolve(), Path(run_dir).resolve()
    if folder in workbook.parents:
        raise UsageError(f"{xlsx}: is inside the run folder {run_dir}, which holds the run's "
                         "own files only; write the workbook elsewhere")


def export(run_dir: Path | str, xlsx: Path | str, *, force: bool = False) -> Path:
    """Write an Excel workbook of a run folder: a sheet per table, the policy, the manifest.

    An existing `xlsx` is replaced only with `force`; a file of the run folder never."""
    from gcm_fund.outputs.workbook import (
        write_workbook,  # openpyxl is imported only when a workbook is asked
    )

    folder = Path(run_dir)
    if (folder / MANIFEST).exists():  # else: "not a run folder", from the reader
        _refuse_workbook_inside(xlsx, folder)
    kept = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    check_output_files([Path(xlsx)], force=force, inputs=kept)
    return write_workbook(folder, xlsx)
