"""Checks that a run folder holds the files its run wrote, and only those.

- `check_hashes`: the input copies and the policy copy against the manifest's sha256;
- `check_files`: every file against the manifest's `files` (the sha256 of every file the
  run wrote, the manifest aside), naming the file that differs or was added;
- `check_manifest`: the keys docs/outputs.md requires and a reproduction needs, with their types;
- `check_numbers`: no number anywhere in the folder is non-finite or absurd.
"""

from __future__ import annotations

import math
import os
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.audit.folder import NUMERIC_COLUMNS, SCALES, DamagedFile
from gcm_fund.inputs.csv_input import sha256_bytes
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES
from gcm_fund.inputs.schema import INPUT_FILES, META_FILE
from gcm_fund.outputs.schema import MANIFEST

# A number in a run file larger than this many times the inputs' own scale (their largest
# USD total times their largest weight, at least 1) is no figure a run can write: duals are
# USD of objective per USD, amounts at most the pledges.
ABSURD_FACTOR = 1e12
# More files than a run writes by far: certify stops listing there.
MAX_FILES = 10_000


def check_hashes(c: Certifier) -> None:
    """The copies of the inputs and of the policy are the files the run was made from."""
    run = c.run
    problems = []
    recorded = run.section("inputs")
    if not recorded:
        problems.append("manifest.json records no input hashes (inputs)")
    for name in sorted(set(recorded) | set(INPUT_FILES)):
        path = run.inputs / name
        if name not in (*INPUT_FILES, *OPTIONAL_INPUT_FILES, META_FILE):
            problems.append(f"manifest.json: inputs.{name}: not an input file of the tool")
        elif name not in recorded:
            problems.append(f"inputs/{name}: no sha256 in manifest.json")
        elif not path.is_file():
            problems.append(f"inputs/{name}: missing from the run folder")
        elif (found := sha256_bytes(run.read_bytes(f"inputs/{name}"))) != recorded[name]:
            problems.append(f"inputs/{name}: sha256 {found[:12]}... differs from "
                            f"manifest.json's {str(recorded[name])[:12]}... (the copy "
                            "was changed after the run)")
    policy_hash = run.text("model", "sha256")
    if not run.policy.is_file():
        problems.append("policy.toml: missing from the run folder")
    elif policy_hash is None:
        problems.append("policy.toml: no model.sha256 in manifest.json")
    elif (found := sha256_bytes(run.read_bytes("policy.toml"))) != policy_hash:
        problems.append(f"policy.toml: sha256 {found[:12]}... differs from manifest.json's "
                        f"model.sha256 {policy_hash[:12]}... (the policy was changed "
                        "after the run)")
    c.add(Check("provenance", not problems,
                f"sha256 of {len(recorded)} input copies and policy.toml against "
                f"{MANIFEST}", "exact", problems))


def _present(c: Certifier) -> list[str]:
    """Every file of the folder but the manifest, '/'-joined; dot-files left out."""
    found: list[str] = []
    for top, folders, files in os.walk(c.run.path, followlinks=False):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        relative = PurePosixPath(os.path.relpath(top, c.run.path))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = (relative / name).as_posix() if str(relative) != "." else name
            if path != MANIFEST:
                found.append(path)
            if len(found) > MAX_FILES:
                return found
    return found


def check_files(c: Certifier) -> None:
    """Every file of the folder is one the run wrote, with the sha256 the manifest lists."""
    run = c.run
    recorded = run.section("files")
    problems: list[str] = []
    if not recorded:
        problems.append("manifest.json lists no files (files: the sha256 of every file the "
                        "run wrote)")
    present = _present(c)
    if len(present) > MAX_FILES:
        problems.append(f"more than {MAX_FILES:,} files: not a run folder")
        present = present[:MAX_FILES]
    on_disk = set(present)
    changed = 0
    for name, digest in sorted(recorded.items()):
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or not parts:
            problems.append(f"manifest.json: files: {name!r} is not a path inside the folder")
        elif not isinstance(digest, str):
            problems.append(f"manifest.json: files.{name}: {digest!r} is not a sha256")
        elif name not in on_disk:
            problems.append(f"{name}: listed in manifest.json but missing from the folder")
        elif (found := sha256_bytes(run.read_bytes(name))) != digest:
            changed += 1
            problems.append(f"{name}: sha256 {found[:12]}... differs from manifest.json's "
                            f"{digest[:12]}... (the file was changed after the run)")
    problems.extend(f"{name}: not written by the run (not in manifest.json's files)"
                    for name in present if name not in recorded)
    c.add(Check("files", not problems,
                f"sha256 of {len(recorded)} files against manifest.json"
                + (f", {changed} changed" if changed else ""), "exact", problems))


def check_manifest(c: Certifier) -> None:
    """docs/outputs.md's keys and what a reproduction needs, each of the expected type."""
    run = c.run
    manifest = run.manifest
    problems = []
    for path, kinds in MANIFEST_FIELDS.items():
        value = run.raw(*path)
        where = ".".join(path)
        if value is None and not _present_at(manifest, path):
            if "optional" not in kinds:
                problems.append(f"manifest.json: no {where}")
        elif not any(_is(value, kind) for kind in kinds):
            problems.append(f"manifest.json: {where} is {_shown(value)}, expected "
                            f"{' or '.join(k for k in kinds if k != 'optional')}")
    for key in ("inputs", "versions", "files"):
        problems.extend(f"manifest.json: {key}.{k} is {_shown(v)}, expected text"
                        for k, v in run.section(key).items() if not isinstance(v, str))
    if run.text("units", "solved_in") not in (None, *SCALES):
        problems.append(f"manifest.json: units.solved_in {_shown(run.raw('units', 'solved_in'))}"
                        f" is none of {', '.join(SCALES)}")
    if run.text("solver", "version") in ("", "unknown"):
        problems.append("manifest.json: the solver's version is not recorded")
    if manifest.get("status") != "optimal":
        problems.append(f"manifest.json: status is {_shown(manifest.get('status'))}, not "
                        "optimal")
    if run.text("tool_version") != run.text("versions", "gcm_fund"):
        problems.append(f"manifest.json: tool_version {_shown(run.raw('tool_version'))} is "
                        f"not versions.gcm_fund {_shown(run.raw('versions', 'gcm_fund'))}")
    c.add(Check("manifest", not problems,
                "records tool, solver, options, versions, hashes, objective, totals, files "
                "and the floor variable", "every key present", problems))


# Every manifest field certify reads or vouches for, with the types it may have. A table
# or feature that adds manifest fields adds them here.
MANIFEST_FIELDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("tool_version",): ("text",), ("run_id",): ("text",), ("status",): ("text",),
    ("objective",): ("object",), ("objective", "floor"): ("number", "null"),
    ("objective", "weighted"): ("number",),
    # docs/terms.md (optional: run folders of earlier versions lack them).
    ("objective", "floor_max"): ("number", "optional"),
    ("objective", "grant_equivalent_usd"): ("number", "optional"),
    # Under levels (docs/model.md): figures the page and compare show.
    ("objective", "method"): ("text", "optional"), ("objective", "levels"): ("number", "optional"),
    ("objective", "steps"): ("number", "optional"),
    ("solver",): ("object",), ("solver", "name"): ("text",), ("solver", "version"): ("text",),
    ("solver", "options"): ("object",), ("solver", "value_precision"): ("number", "optional"),
    ("model",): ("object",), ("model", "path"): ("text",), ("model", "sha256"): ("text",),
    ("model", "name"): ("text",),
    ("inputs",): ("object",), ("versions",): ("object",),
    ("versions", "gcm_fund"): ("text",), ("versions", "python"): ("text",),
    ("versions", "pulp"): ("text",), ("versions", "highspy"): ("text",),
    ("units",): ("object",), ("units", "amounts"): ("text",),
    ("units", "solved_in"): ("text",),
    ("floor_variable",): ("object",),
    ("floor_variable", "stage1_bounds"): ("pair", "null"),
    ("floor_variable", "stage2_bounds"): ("pair", "null"),
    ("floor_variable", "stage2_value"): ("number", "null"),
    ("floor_variable", "stage2_reduced_cost"): ("number", "null"),
    ("floor_variable", "stage1_reduced_cost"): ("number", "null"),
    ("floor_variable", "stage2_widening"): ("number", "null", "optional"),
    ("totals",): ("object",), ("totals", "pledged_usd"): ("number",),
    ("totals", "allocated_usd"): ("number",), ("totals", "fundable_usd"): ("number",),
    ("files",): ("object",),
    ("illustrative",): ("boolean", "optional"), ("description",): ("text", "optional"),
    ("pledges",): ("object", "optional"),
}


def _is(value: Any, kind: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {"text": isinstance(value, str), "object": isinstance(value, dict),
            "number": number, "null": value is None, "boolean": isinstance(value, bool),
            "pair": isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
            "optional": False}[kind]


def _present_at(document: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def input_scale(c: Certifier) -> float:
    """The inputs' own scale: their largest USD total times their largest |weight|, or
    its smallest one's inverse where that is larger (levels are coverage / priority, so
    their duals grow as the priorities shrink)."""
    rules = c.rules
    usd = max(1.0, float(rules.data.sources["pledge_usd"].sum()),
              float(rules.gaps["fundable_usd"].sum()), float(rules.gaps["need_usd"].max()
                                                            if len(rules.gaps) else 0.0))
    weights = np.abs(rules.triples["weight"].to_numpy(dtype=float)) if rules.n_x \
        else np.ones(1)
    positive = weights[weights > 0]
    inverse = 1.0 / float(positive.min()) if positive.size else 1.0
    return usd * max(1.0, float(weights.max()), inverse)


def check_numbers(c: Certifier) -> None:
    """No number in the run's tables or manifest is NaN, infinite or absurdly large."""
    run = c.run
    limit = ABSURD_FACTOR * input_scale(c)
    problems: list[str] = []
    tables = sorted(p.name for p in run.path.glob("*.csv") if p.is_file())
    for name in tables:
        try:
            table = run.table(name)
        except DamagedFile as exc:
            problems.append(f"{exc.name}: {exc.why}")
            continue
        for column in (col for col in table.columns if col in NUMERIC_COLUMNS):
            cells = table[column]
            values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():  # a blank cell is no number, but no bad one either
                bad &= (cells.str.strip() != "").to_numpy()
            huge = np.isfinite(values) & (np.abs(values) > limit)
            problems.extend(f"{name}:{i + 2}: {column}: {cells.iat[i]!r} is not a finite "
                            "number" for i in np.nonzero(bad)[0])
            problems.extend(f"{name}:{i + 2}: {column}: {cells.iat[i]} is absurd (more than "
                            f"{limit:.3g}, 1e12 times the inputs' scale)"
                            for i in np.nonzero(huge)[0])
    stack: list[tuple[str, Any]] = [("", run.manifest)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append(f"manifest.json: {path}: {node} is not a finite number")
        elif isinstance(node, int | float) and not isinstance(node, bool) \
                and abs(node) > limit:
            problems.append(f"manifest.json: {path}: {_shown(node)} is absurd (more than "
                            f"{limit:.3g})")
    c.add(Check("numbers", not problems,
                f"every number in {len(tables)} tables and manifest.json is finite and "
                "within the inputs' scale",
                f"|value| <= {ABSURD_FACTOR:g} x the inputs' scale = {limit:.3g}",
                sorted(problems)))
