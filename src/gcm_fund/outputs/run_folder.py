"""Writing a run folder: the CSV tables, the manifest, a copy of the inputs, the HTML page.

A run is written into a temporary folder beside its destination and renamed into place
only when every file is complete, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from gcm_fund import __version__, writing
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.policy_file import PolicyFile
from gcm_fund.inputs.schema import INPUT_FILES, META_FILE
from gcm_fund.methods.donor_figures import DEFINITION as DONOR_FIGURES
from gcm_fund.methods.stages import Solution
from gcm_fund.model import spec
from gcm_fund.outputs import page as html_report
from gcm_fund.outputs import schema as output_schema
from gcm_fund.outputs.destination import check_destination, replaceable
from gcm_fund.outputs.page_folder import CONSTRAINT_COLUMNS, Written
from gcm_fund.outputs.schema import INPUT_COPY_DIR, MANIFEST, POLICY_COPY

log = logging.getLogger(__name__)


def run_id(data: ProblemData, policy_file: PolicyFile, solver_name: str,
           solver_version: str) -> str:
    """An id derived from the inputs, the policy and the solver only: same inputs, same id."""
    return spec.run_id(data.file_sha256, policy_file.sha256, solver_name, solver_version)


# Each output column's format, from its kind in the output schema.
_KIND_FORMATS: dict[str, Callable[[Any], str]] = {
    output_schema.USD: writing.amount, output_schema.MONEY: writing.amount,
    output_schema.SHARE: writing.share,
    output_schema.REAL: writing.real, output_schema.EXACT: writing.exact,
    output_schema.BOOLEAN: writing.boolean}
FORMATS: dict[str, Callable[[Any], str]] = {
    name: _KIND_FORMATS[kind] for name, kind in output_schema.formats().items()}


def write_csv(path: Path, table: pd.DataFrame) -> list[list[str]]:
    """A table as CSV with the project's fixed number formats and '\\n' line ends; its cells
    column by column, as written."""
    cells = writing.format_columns(table, FORMATS)
    writing.write_table(path, list(table.columns), cells)
    return cells


def versions() -> dict[str, str]:
    """Versions of everything a reproduction needs (the solver's own is in `solver`)."""
    found = {"gcm_fund": __version__, "python": platform.python_version()}
    for package in ("highspy", "pulp", "numpy", "scipy", "pandas", "pydantic", "plotly"):
        found[package] = _version(package)
    found["platform"] = f"{platform.system()}-{platform.machine()}"
    return found


def _version(package: str) -> str:
    """`metadata.version(package)`, read from the metadata's header lines only: the email
    parser behind `metadata.version` reads the whole file, long descriptions included
    (pandas' and scipy's), a hundredth of a second for the seven packages."""
    found = metadata.distribution(package)
    text = found.read_text("METADATA") or found.read_text("PKG-INFO") or ""
    for line in text.partition("\n\n")[0].splitlines():
        if line.startswith("Version:") and line[8:].strip():
            return line[8:].strip()
    return metadata.version(package)


def manifest(data: ProblemData, policy_file: PolicyFile, solution: Solution,
             identifier: str, summary: dict[str, Any], model_path: str) -> dict[str, Any]:
    """The manifest of docs/outputs.md, with everything a reproduction needs."""
    stage1 = solution.stage1
    z = solution.z_col
    z_final = (float(solution.stage2.col_value[z])
               if z is not None and solution.floor is not None
               and solution.stage2.col_value.size else None)
    stage1_bounds = stage1.bounds_of(z) if stage1 else None
    stage2_bounds = solution.stage2.bounds_of(z)
    return {
        "tool_version": __version__,
        "run_id": identifier,
        "status": solution.status,
        "objective": {**objective(solution),
                      "grant_equivalent_usd": round(summary["grant_equivalent_usd"], 2)},
        "solver": {"name": solution.solver.name, "version": solution.solver.version,
                   "options": solution.solver.options,
                   "value_precision": solution.solver.value_precision},
        "model": {"path": model_path, "sha256": policy_file.sha256,
                  "name": policy_file.policy.name},
        "inputs": dict(sorted(data.file_sha256.items())),
        **illustrative_entry(data),
        **({"pledges": data.valuation.manifest_entry()} if data.valuation is not None
           else {}),
        **({"cycle": data.cycle.manifest_entry()} if data.cycle is not None else {}),
        "versions": versions(),
        "units": {"amounts": "USD", "solved_in": "USD millions"},
        "floor_variable": {
            "stage1_bounds": list(stage1_bounds) if stage1_bounds else None,
            "stage2_bounds": list(stage2_bounds) if stage2_bounds else None,
            "stage2_widening": _widening(policy_file.policy, solution.floor_max,
                                         stage2_bounds),
            "stage2_value": z_final,
            "stage2_reduced_cost": (float(solution.stage2.col_dual[z])
                                    if z is not None and z_final is not None else None),
            "stage1_reduced_cost": (float(stage1.col_dual[z])
                                    if stage1 and z is not None else None),
        },
        **({"levels": {"allocated_at_least_usd": round(solution.levels.placed_usd, 6),
                       **({"donor_figures": _donor_figures_entry(solution.levels.donor,
                                                                 data)}
                          if solution.levels.donor is not None else {})}}
           if solution.levels is not None else {}),
        "totals": {
            "pledged_usd": round(summary["pledged_usd"], 2),
            "allocated_usd": round(summary["allocated_usd"], 2),
            "fundable_usd": round(summary["fundable_usd"], 2),
        },
    }


def illustrative_entry(data: ProblemData) -> dict[str, Any]:
    """`{"illustrative": true, "description": ...}` when the inputs' meta.toml says the
    figures are illustrative; nothing otherwise, so that real data carry no label."""
    if not data.meta.illustrative:
        return {}
    return {"illustrative": True, "description": data.meta.description}


def illustrative_notice(document: dict[str, Any]) -> str | None:
    """The sentence every reader of an illustrative run sees first, or None."""
    if document.get("illustrative") is not True:
        return None
    description = str(document.get("description") or "").strip()
    return ("ILLUSTRATIVE DATA: these inputs are an example, not real pledges or costings."
            + (f" {description}" if description else ""))


def _widening(policy: Policy, floor: float | None, bounds: tuple[float, float] | None
              ) -> float | None:
    """How far stage 2's lower bound on z lies below docs/terms.md's
    max(z_min, floor_share * z* - tolerance); `floor` is z*."""
    if bounds is None or floor is None or not policy.equity.maximize:
        return None
    equity = policy.equity
    return max(0.0, max(equity.min_floor, equity.floor_share * floor - equity.tolerance)
               - bounds[0])


def objective(solution: Solution) -> dict[str, Any]:
    """The manifest's `objective`: floor, weighted and the method; under levels also the
    number of distinct levels, the LPs of stage 2, the money placed and the loan burden."""
    found: dict[str, Any] = {"floor": solution.floor,
                             **({} if solution.floor_max is None
                                else {"floor_max": solution.floor_max}),
                             "weighted": round(solution.weighted_usd, 6)}
    if solution.programmes is not None:
        from gcm_fund.outputs.programme_tables import programme_objective

        found.update(programme_objective(solution.programmes))
        return found
    levels = solution.levels
    if levels is None:
        found["method"] = "weighted"
        return found
    from gcm_fund.outputs.results import distinct_levels

    found.update({
        "method": "levels",
        "levels": distinct_levels(levels.held),
        "steps": levels.lps,
        "allocated_usd": round(levels.allocated_usd, 2),
        "loan_burden": round(levels.loan_burden_usd, 6),
    })
    return found


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file in a run folder but its manifest, by '/'-joined path."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST}


def rebuild_report(folder: Path | str) -> Path:
    """Build report.html again from a run folder's files, keeping the manifest's hash of it
    true: the same folder gives the same page, so the hash changes only when the page does
    (another version of the tool)."""
    folder = Path(folder)
    page = html_report.write_report(folder)
    path = folder / MANIFEST
    document = json.loads(path.read_text(encoding="utf-8"))
    files = document.get("files")
    if isinstance(files, dict) and html_report.REPORT_FILE in files:
        digest = hashlib.sha256(page.read_bytes()).hexdigest()
        if files[html_report.REPORT_FILE] != digest:
            files[html_report.REPORT_FILE] = digest
            writing.write_atomic(path, _json_text(document))
    return page


def write_run(destination: Path, data: ProblemData, policy_file: PolicyFile,
              solution: Solution, tables: Any, summary: dict[str, Any], identifier: str,
              model_path: str, *, force: bool = False, replace_same: bool = False) -> Path:
    """Write every file of a run into `destination`, atomically.

    Refused (`UsageError`) where it would lose something: see `runfolder.check_destination`.
    """
    check_destination(destination, force=force, same_run=replace_same, inputs=data.folder,
                      policy=policy_file.path)
    with writing.atomic_folder(destination, replaceable(force=force, same_run=replace_same)
                               ) as folder:
        log.info("writing the run folder %s", destination)
        # The page reads the tables' cells as written, not the files again (of the
        # constraints tables only the columns it shows).
        undeclared = [f.name for f in fields(tables) if getattr(tables, f.name) is not None
                      and f"{f.name}.csv" not in output_schema.OUTPUT_TABLES]
        if undeclared:  # a table joins the run folder by its entry in the output schema
            raise ValueError(f"tables not in output_schema.OUTPUT_TABLES: {undeclared}")
        written: Written = {}
        for spec_table in output_schema.OUTPUT_TABLES.values():
            # Each table of the output schema is the `RunTables` field named by its stem.
            table = getattr(tables, spec_table.stem)
            if table is None:
                continue
            name = spec_table.name
            cells = write_csv(folder / name, table)
            if spec_table.on_page:
                shown = CONSTRAINT_COLUMNS if "constraints" in name else table.columns
                written[name] = {column: cells[j] for j, column in enumerate(table.columns)
                                 if column in shown}
        copy = folder / INPUT_COPY_DIR
        copy.mkdir()
        for name in INPUT_FILES:
            (copy / name).write_bytes(data.file_bytes[name])
        for name in OPTIONAL_INPUT_FILES:
            if name in data.file_bytes:
                (copy / name).write_bytes(data.file_bytes[name])
        if data.meta_bytes is not None:
            (copy / META_FILE).write_bytes(data.meta_bytes)
        (folder / POLICY_COPY).write_bytes(policy_file.raw)
        document = manifest(data, policy_file, solution, identifier, summary, model_path)
        # The page is built from the folder's own files, the manifest included, exactly as
        # `gcm-fund report` rebuilds it (the list of hashes added below is not on the page);
        # of the constraints tables, from the cells just written to them.
        (folder / MANIFEST).write_text(_json_text(document), encoding="utf-8")
        html_report.write_report(folder, written)
        # Written last: it lists the sha256 of every other file, which certify checks.
        document["files"] = file_hashes(folder)
        (folder / MANIFEST).write_text(_json_text(document), encoding="utf-8")
    return destination


def _donor_figures_entry(donor: Any, data: ProblemData) -> dict[str, Any]:
    """The manifest's `levels.donor_figures`: how the figures were made, the columns they
    fill and the sources whose re-solve failed (blank there, not a figure)."""
    ids = data.sources["source_id"].to_numpy()
    return {**DONOR_FIGURES, "computed": donor.computed,
            **({"unsolved": [str(ids[f]) for f in donor.unsolved]} if donor.unsolved else {})}
