"""Scenario comparison: several policies and pledge overlays on the same inputs, side by side.

The scenarios are every policy crossed with "no overlay" and each overlay, in the order
given: `--model a.toml --model b.toml --overlay more.csv` gives `a`, `a+more`, `b`,
`b+more`. A scenario is labelled by the policy's `name` (the file's stem when the policy
names none), `+` the overlay file's stem (a label seen before gets `#2`, `#3`, ...).

A pledge overlay is a CSV file `source_id,pledge_usd` that replaces the pledges of the
sources it names (every id must be in sources.csv; the others keep their pledges).

Every figure comes from the run's tables as `allocate` writes them (amounts rounded to
cents), so a scenario's column equals what `allocate` reports for it:

| metric | meaning |
|---|---|
| `status` | `optimal` or `infeasible` (an infeasible scenario leaves the rest blank) |
| `floor` | z*, blank when G is empty |
| `weighted` | the stage-2 objective, USD |
| `pledged_usd`, `allocated_usd` | sum of the pledges, of the allocation |
| `ldc_share` | share of the allocation that goes to least developed countries |
| `income_share[G]` | share to States of income group G (all four groups) |
| `region_share[R]` | share to each region of states.csv |
| `target_share[T]` | share to each target of gaps.csv |
| `loans_share` | share given by loan sources |
| `binding_caps` | rows of `absorb`, `state_share` and `source_state` that bind |
| `binding_caps[F]` | the same, for family F alone |
| `grant_equivalent_usd` | the allocation at each source's grant element (docs/terms.md), USD |
| `ge_ldc_share` | share of the grant equivalent that goes to least developed countries |
| `ge_income_share[G]` | share of the grant equivalent to States of income group G |
| `loans_share[R]` | the loans' share of the money to States of debt risk R (blank: none) |

When some scenario's policy uses `[allocation] method = "levels"` (docs/model.md), these follow:

| metric | meaning |
|---|---|
| `method` | `levels` or `weighted` |
| `loan_burden_usd` | the least loan burden (stage 3), USD; blank under `weighted` |
| `levels` | how many distinct levels (coverage / priority) the gaps stop at |
| `level_1` ... | those levels, lowest first (`level_1`: every gap reaches it); blank past |
|  | a scenario's own count |

When some scenario's policy uses `[allocation] method = "programmes"` (docs/programmes.md), these
follow:

| metric | meaning |
|---|---|
| `programme_value` | V, the value of the selection (value per USD x USD) |
| `programme_value_bound` | the LP relaxation's bound on V |
| `programmes_funded` | how many programmes are funded (in full or in part) |
| `programme_states` | how many States get money from a funded programme |
| `smallest_programme_usd` | the smallest amount a funded programme receives |

A cap binds when, in the final stage, its slack on the written amounts is within
docs/outputs.md's tolerance (0.01 USD per allocation in the row plus 1e-7 of
max(|lhs|, |rhs|, 1e6)) and the absolute value of its dual exceeds 1e-9 per USD; under
levels, also when it is tight and stopped gaps at any step of the filling (levels.csv's
`stopped_by`), not only at the last. Shares are of
`allocated_usd` (blank when nothing is allocated).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.engine import Run
from gcm_fund.engine import run as run_scenario
from gcm_fund.errors import InfeasibleError, InputError, Problem
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.schema import INCOME_GROUPS, did_you_mean, parse_number
from gcm_fund.methods.strategy import method_named
from gcm_fund.model.lp import SCALE_USD, LinearProgram
from gcm_fund.model.scenario import Scenario, load
from gcm_fund.model.spec import POSITIVE_DUAL, rule_tolerance_usd
from gcm_fund.outputs.results import TERMS_METRICS, solution_pledges, terms_metrics, written_amounts
from gcm_fund.writing import (
    amount,
    check_output_files,
    csv_text,
    file_kind,
    inert,
    real,
    share,
    write_atomic,
)

CAP_FAMILIES = ("absorb", "state_share", "source_state")
DUAL_TOL = POSITIVE_DUAL
OVERLAY_COLUMNS = ("source_id", "pledge_usd")


@dataclass(frozen=True)
class Overlay:
    """Pledges that replace those of sources.csv for the sources named."""

    path: Path
    pledges: dict[str, float]
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """One scenario: its label, what it is made of, and its figures (None where blank)."""

    label: str
    model_path: str
    overlay_path: str | None
    status: str
    metrics: dict[str, float | None]
    run: Run | None = None
    diagnosis: str | None = None  # an infeasible scenario: the first line of its diagnosis
    method: str = "weighted"  # the policy's `[allocation] method`


@dataclass
class Comparison:
    """The scenarios in order and the names of the metrics, in the order written."""

    scenarios: list[ScenarioResult]
    metric_names: list[str]
    warnings: list[Problem] = field(default_factory=list)


def load_overlay(path: Path | str, data: ProblemData) -> Overlay:
    """Read a pledge overlay `source_id,pledge_usd`; every problem reported at once."""
    path = Path(path)
    label = str(path)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not path.is_file():
        kind = file_kind(path)
        why = "file not found" if kind is None else f"expected a file, found {kind}"
        raise InputError([Problem(label, None, None, why)])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([Problem(label, None, None, f"not UTF-8 text ({exc.reason})")]) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise InputError([Problem(label, None, None, "empty file, expected a header "
                                  "source_id,pledge_usd")])
    header = [cell.strip() for cell in rows[0]]
    missing = [c for c in OVERLAY_COLUMNS if c not in header]
    for column in missing:
        problems.append(Problem(label, 1, column, "missing column"))
    unknown = [c for c in header if c not in OVERLAY_COLUMNS]
    if unknown:
        warnings.append(Problem(label, 1, None, f"unknown columns ignored: {', '.join(unknown)}"))
    if missing:
        raise InputError(problems)
    at = {c: header.index(c) for c in OVERLAY_COLUMNS}
    known = list(data.sources["source_id"])
    pledges: dict[str, float] = {}
    first: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(Problem(label, line, None,
                                    f"{len(row)} fields, the header has {len(header)}"))
            continue
        cells = {c: (row[i].strip() if i < len(row) else "") for c, i in at.items()}
        source_id = cells["source_id"]
        if not source_id:
            problems.append(Problem(label, line, "source_id", "blank, expected a source_id"))
        elif source_id not in known:
            problems.append(Problem(label, line, "source_id", f"got {source_id!r}, not in "
                                    f"sources.csv{did_you_mean(source_id, known)}"))
        elif source_id in first:
            problems.append(Problem(label, line, "source_id",
                                    f"duplicate key {source_id!r}, first on line "
                                    f"{first[source_id]}"))
        try:
            value = parse_number(cells["pledge_usd"], "a number >= 0 (USD)")
            if value < 0:
                raise ValueError(f"got {cells['pledge_usd']!r}, expected a number >= 0 (USD)")
        except ValueError as exc:
            message = exc.message() if hasattr(exc, "message") else str(exc)
            problems.append(Problem(label, line, "pledge_usd", message))
            continue
        if source_id in known and source_id not in first:
            first[source_id] = line
            pledges[source_id] = value
    if not problems and not pledges:
        problems.append(Problem(label, None, None, "a header and no rows"))
    if problems:
        raise InputError(problems)
    return Overlay(path, pledges, warnings)


def _labels(names: Sequence[str], overlays: Sequence[Overlay | None]) -> list[str]:
    labels: list[str] = []
    for name in names:
        for overlay in overlays:
            base = name + (f"+{overlay.path.stem}" if overlay else "")
            label, n = base, 1
            while label in labels:
                n += 1
                label = f"{base}#{n}"
            labels.append(label)
    return labels


def policy_label(loaded: Scenario) -> str:
    """A scenario's policy as people call it: its `name`, or the file's stem when the
    policy names none."""
    policy = loaded.policy_file.policy
    if "name" in policy.model_fields_set and policy.name.strip():
        return policy.name.strip()
    return Path(loaded.model_path).stem


def compare(inputs: Path | str, models: Sequence[Path | str | None],
            overlays: Sequence[Path | str] = (), solver: str = "highs",
            on_warnings: Callable[[list[Problem]], None] | None = None) -> Comparison:
    """Solve every scenario (policy x {no overlay, each overlay}) and collect its figures.

    An infeasible scenario is reported with status `infeasible`, not raised.
    `on_warnings` gets the warnings about the inputs, policies and overlays once they are
    read, before anything is solved.
    """
    models = list(models) or [None]
    loaded = [load(inputs, m) for m in models]
    data = loaded[0].data
    read = [load_overlay(o, data) for o in overlays]
    variants: list[Overlay | None] = [None, *read]
    labels = iter(_labels([policy_label(lo) for lo in loaded], variants))
    warnings = _unique([w for lo in loaded for w in lo.warnings]
                       + [w for o in read for w in o.warnings])
    if on_warnings is not None:
        on_warnings(warnings)
    results: list[ScenarioResult] = []
    for scenario in loaded:
        method = scenario.policy_file.policy.allocation.method
        for overlay in variants:
            changed = scenario if overlay is None else scenario.with_pledges(overlay.pledges)
            label = next(labels)
            overlay_path = None if overlay is None else str(overlay.path)
            try:
                run = run_scenario(changed, solver)
            except InfeasibleError as exc:
                results.append(ScenarioResult(label, scenario.model_path, overlay_path,
                                              "infeasible", {},
                                              diagnosis=str(exc).strip().splitlines()[0],
                                              method=method))
                continue
            results.append(ScenarioResult(label, scenario.model_path, overlay_path, "optimal",
                                          run_metrics(run), run, method=method))
    return Comparison(results, metric_names(data) + level_metric_names(results)
                      + programme_metric_names(results), warnings)


PROGRAMME_METRICS = ("programme_value", "programme_value_bound", "programmes_funded",
                     "programme_states", "smallest_programme_usd")


def programme_metric_names(results: Sequence[ScenarioResult]) -> list[str]:
    """The programmes block: empty unless some scenario's policy uses programmes."""
    return list(PROGRAMME_METRICS) if any(method_named(r.method).selects_programmes
                                            for r in results) else []


def level_metric_names(results: Sequence[ScenarioResult]) -> list[str]:
    """The levels block (see the module's docstring): empty unless some scenario's policy
    uses levels."""
    if not any(method_named(r.method).has_levels for r in results):
        return []
    most = max((int(r.metrics.get("levels") or 0) for r in results), default=0)
    return ["method", "loan_burden_usd", "levels", *(f"level_{k}" for k in range(1, most + 1))]


def text_metric(scenario: ScenarioResult, metric: str) -> str | None:
    """The scenario's text for a metric that is a word (`status`, `method`), else None."""
    if metric == "status":
        return scenario.status
    if metric == "method":
        return scenario.method
    return None


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return seen


def metric_names(data: ProblemData) -> list[str]:
    """Every metric, in the order written: headline figures, then shares, then caps."""
    regions = sorted(set(data.states["region"]))
    targets = sorted(set(data.gaps["target"]))
    return [
        "status", "floor", "weighted", "pledged_usd", "allocated_usd", "ldc_share",
        *(f"income_share[{g}]" for g in INCOME_GROUPS),
        *(f"region_share[{r}]" for r in regions),
        *(f"target_share[{t}]" for t in targets),
        "loans_share", "binding_caps", *(f"binding_caps[{f}]" for f in CAP_FAMILIES),
        *TERMS_METRICS,
    ]


def run_metrics(run: Run) -> dict[str, float | None]:
    """The figures of one solved run, from its tables."""
    data = run.lp.data
    allocations = run.tables.allocations
    amount = allocations["amount_usd"].to_numpy(dtype=float)
    total = float(amount.sum())
    states = data.states.set_index("iso3")
    sources = data.sources.set_index("source_id")

    def share(mask: np.ndarray) -> float | None:
        return float(amount[mask].sum()) / total if total > 0 else None

    iso3 = allocations["iso3"]
    income = iso3.map(states["income_group"]).to_numpy()
    region = iso3.map(states["region"]).to_numpy()
    ldc = iso3.map(states["ldc"]).to_numpy(dtype=bool)
    target = allocations["target"].to_numpy()
    loan = allocations["source_id"].map(sources["instrument"]).to_numpy() == "loan"
    metrics: dict[str, float | None] = {
        "floor": run.solution.floor,
        "weighted": run.solution.weighted_usd,
        "pledged_usd": float(run.tables.sources_summary["pledge_usd"].sum()),
        "allocated_usd": total,
        "ldc_share": share(ldc),
        "loans_share": share(loan),
    }
    for group in INCOME_GROUPS:
        metrics[f"income_share[{group}]"] = share(income == group)
    for name in sorted(set(data.states["region"])):
        metrics[f"region_share[{name}]"] = share(region == name)
    for name in sorted(set(data.gaps["target"])):
        metrics[f"target_share[{name}]"] = share(target == name)
    counts = binding_caps(run.lp, run.tables.constraints, run.tables.levels)
    metrics["binding_caps"] = float(sum(counts.values()))
    for family, count in counts.items():
        metrics[f"binding_caps[{family}]"] = float(count)
    metrics.update(terms_metrics(run.lp, written_amounts(
        run.lp, run.solution.x_usd, solution_pledges(run.lp, run.solution))))
    selection = run.solution.programmes
    if selection is not None:
        funded = selection.amount[selection.funded]
        metrics["programme_value"] = selection.value * SCALE_USD
        metrics["programme_value_bound"] = selection.value_bound * SCALE_USD
        metrics["programmes_funded"] = float(selection.funded.sum())
        metrics["programme_states"] = float(allocations["iso3"].nunique())
        metrics["smallest_programme_usd"] = float(funded.min()) * SCALE_USD if len(funded) \
            else None
    levels = run.solution.levels
    if levels is not None:
        from gcm_fund.methods.levels import distinct_level_values

        values = distinct_level_values(levels.held)
        metrics["loan_burden_usd"] = float(levels.loan_burden_usd)
        metrics["levels"] = float(len(values))
        for k, value in enumerate(values, start=1):
            metrics[f"level_{k}"] = value
    return metrics


def binding_caps(lp: LinearProgram, constraints: pd.DataFrame,
                 levels: pd.DataFrame | None = None) -> dict[str, int]:
    """How many rows of each cap family bind (see the module's docstring). Under levels
    (`levels`: levels.csv's table) a cap binds when it is tight and stopped gaps at some
    step (it is in that step's `stopped_by`), not only at the last."""
    entries = np.diff(lp.matrix[:, : lp.n_x].tocsr().indptr)
    families = constraints["family"].to_numpy()
    lhs = constraints["lhs"].to_numpy(dtype=float)
    rhs = constraints["rhs"].to_numpy(dtype=float)
    slack = constraints["slack"].to_numpy(dtype=float)
    dual = constraints["dual"].to_numpy(dtype=float)
    tight = slack <= rule_tolerance_usd(entries, lhs, rhs)
    binding = tight & (np.abs(dual) > DUAL_TOL)
    if levels is not None:
        stopped = {rule for cell in levels["stopped_by"] for rule in str(cell).split(";")}
        binding |= tight & constraints["name"].isin(stopped).to_numpy()
    return {family: int(np.sum(binding & (families == family))) for family in CAP_FAMILIES}


def _cell(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if metric.startswith("binding_caps") or metric in ("levels", "programmes_funded",
                                                        "programme_states"):
        return str(int(value))
    if metric.endswith("_usd") or metric in ("weighted", "programme_value",
                                              "programme_value_bound"):
        return amount(value)
    return real(value) if metric == "floor" or is_level(metric) else share(value)


def is_level(metric: str) -> bool:
    """Whether a metric is one of the levels `level_1` ... (a number, not a share)."""
    return metric.startswith("level_") and metric[6:].isdigit()


def comparison_rows(result: Comparison) -> list[list[str]]:
    """One row per metric, one column per scenario, formatted."""
    rows = []
    for metric in result.metric_names:
        rows.append([metric, *(text_metric(s, metric) or _cell(metric, s.metrics.get(metric))
                               for s in result.scenarios)])
    return rows


LABEL_WIDTH = 20  # a longer scenario label is folded over lines in the terminal


def scenario_blocks(result: Comparison, width: int, metric_width: int
                    ) -> list[list[ScenarioResult]]:
    """The scenarios in blocks, each narrow enough to print beside the metric names in a
    terminal `width` columns wide (at least one scenario per block)."""
    blocks: list[list[ScenarioResult]] = []
    used = width
    for scenario in result.scenarios:
        figures = [len(scenario.status)] + [12]  # "1,234,567.8" or "100.0%" fit in 12
        column = min(max(len(scenario.label), *figures), LABEL_WIDTH) + 2
        if not blocks or used + column > width:
            blocks.append([])
            used = metric_width + 1
        blocks[-1].append(scenario)
        used += column
    return blocks


def columns(result: Comparison) -> list[str]:
    """`metric` and the scenario labels (written inert: a policy's name is free text)."""
    return ["metric", *(inert(s.label) for s in result.scenarios)]


def write_comparison(result: Comparison, out: Path | str, *, force: bool = False,
                     inputs: Sequence[Path | str] = ()) -> Path:
    """Write the comparison to `out` (CSV). Refused (`UsageError`) over one of `inputs`
    (the input files, the policies, the overlays), or over an existing file unless
    `force`."""
    out = Path(out)
    check_output_files([out], force=force, inputs=inputs)
    write_atomic(out, csv_text(columns(result), comparison_rows(result)))
    return out
