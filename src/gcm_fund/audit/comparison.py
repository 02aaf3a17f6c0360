"""`diff`: what changed between two run folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.audit.common import agree, flatten, parse_numbers, usd
from gcm_fund.audit.folder import (
    ALLOCATION_COLUMNS,
    DamagedFile,
    RunFolder,
    open_run,
    read_as_damaged,
)
from gcm_fund.errors import InputError
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.outputs.schema import OUTPUT_TABLES


def _shown(flat: dict[str, Any], key: str) -> str:
    """A policy value for `diff`; a target key left out has docs/policy.md's default."""
    if key in flat:
        return repr(flat[key])
    defaults = {"weights.target.": 1.0, "thematic.min_share.": 0.0}
    default = next((v for k, v in defaults.items() if key.startswith(k)), None)
    return "(not set)" if default is None else f"(not set: {default!r})"


def _key_text(key: Any) -> str:
    """A table key as `KEN,10.7` (a tuple of cells) or as it is (one cell)."""
    return key if isinstance(key, str) else ",".join(str(k) for k in key)


def _input_changes(a: Path, b: Path, name: str) -> list[str]:
    """Rows added, removed or changed between two copies of an input file, by key."""
    keys = {"states.csv": ["iso3"], "gaps.csv": ["iso3", "target"],
            "sources.csv": ["source_id"]}.get(name)
    if keys is None:
        return []
    try:
        left = pd.read_csv(a, dtype=str, keep_default_na=False).drop_duplicates(keys) \
            .set_index(keys)
        right = pd.read_csv(b, dtype=str, keep_default_na=False).drop_duplicates(keys) \
            .set_index(keys)
    except (OSError, ValueError, KeyError) as exc:
        return [f"cannot compare rows ({str(exc).strip().splitlines()[-1:] or exc})"]
    out = []
    for k in left.index.difference(right.index):
        out.append(f"removed {_key_text(k)}")
    for k in right.index.difference(left.index):
        out.append(f"added {_key_text(k)}")
    common = left.index.intersection(right.index)
    columns = [c for c in left.columns if c in right.columns]
    for k in common:
        lr, rr = left.loc[k, columns], right.loc[k, columns]
        changed = [f"{c} {lr[c]!r} -> {rr[c]!r}" for c in columns if lr[c] != rr[c]]
        if changed:
            out.append(f"{_key_text(k)}: {', '.join(changed)}")
    return out


# The key of each table of a run (the output schema's); a table the schema does not know
# is keyed by its first column.
TABLE_KEYS = {table.name: list(table.key) for table in OUTPUT_TABLES.values()}
# Figures written to the cent differ when they differ by half a cent; other figures (duals,
# shares) when they differ beyond the 12 digits they are written with.
CENT_COLUMNS = {"lhs", "rhs", "slack"}
SHOWN_ROWS = 10


def _differs(left: pd.Series, right: pd.Series, column: str) -> np.ndarray:
    """Where two columns of text cells differ, numbers compared as numbers."""
    a = pd.to_numeric(left, errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(right, errors="coerce").to_numpy(dtype=float)
    numeric = np.isfinite(a) & np.isfinite(b)
    if column.endswith("_usd") or column in CENT_COLUMNS:
        near = np.abs(a - b) < 0.005
    else:
        near = np.abs(a - b) <= 1e-12 + 1e-9 * np.maximum(np.abs(a), np.abs(b))
    same_text = left.to_numpy() == right.to_numpy()
    return ~np.where(numeric, near, same_text)


def _table_changes(name: str, a: RunFolder, b: RunFolder, top: int | None) -> list[str]:
    """Rows of one table added, removed or changed between two runs, by the table's key."""
    left, right = a.table(name), b.table(name)
    keys = TABLE_KEYS.get(name) or list(left.columns[:1])
    for run, table in ((a, left), (b, right)):
        missing = [k for k in keys if k not in table.columns]
        if missing:
            raise DamagedFile(name, f"lacks column {missing[0]} (in {run.path})")
    left = left.drop_duplicates(keys).set_index(keys)
    right = right.drop_duplicates(keys).set_index(keys)
    out: list[str] = []
    only = [c for c in left.columns if c not in right.columns]
    new = [c for c in right.columns if c not in left.columns]
    if only or new:
        out.append(f"  columns: {', '.join(only) or 'none'} removed, {', '.join(new) or 'none'}"
                   " added")
    removed = left.index.difference(right.index)
    added = right.index.difference(left.index)
    common = left.index.intersection(right.index, sort=False)
    columns = [c for c in left.columns if c in right.columns]
    lc, rc = left.loc[common, columns], right.loc[common, columns]
    flags = {c: _differs(lc[c], rc[c], c) for c in columns}
    changed = np.logical_or.reduce(list(flags.values())) if flags else \
        np.zeros(len(common), dtype=bool)
    counts = f"{int(changed.sum())} rows changed, {len(added)} added, {len(removed)} removed"
    if not (only or new or changed.any() or len(added) or len(removed)):
        return []
    out.insert(0, counts)
    limit = top or SHOWN_ROWS
    details = [f"  removed {_key_text(k)}" for k in removed] \
        + [f"  added {_key_text(k)}" for k in added]
    for i in np.nonzero(changed)[0]:
        cells = ", ".join(f"{c} {lc[c].iat[i]} -> {rc[c].iat[i]}" for c in columns
                          if flags[c][i])
        details.append(f"  {_key_text(common[i])}: {cells}")
    out.extend(details[:limit])
    if len(details) > limit:
        out.append(f"  ... and {len(details) - limit} more")
    return out


def _totals(run: RunFolder) -> pd.DataFrame:
    table = run.table("allocations.csv", ALLOCATION_COLUMNS)
    amounts = parse_numbers(table["amount_usd"])
    if np.isnan(amounts).any():
        line = int(np.nonzero(np.isnan(amounts))[0][0]) + 2
        raise DamagedFile("allocations.csv", f"line {line}: amount_usd is not a finite number "
                                             f"(in {run.path})")
    table["amount_usd"] = amounts
    return table


def _changed_totals(a: pd.DataFrame, b: pd.DataFrame, key: str) -> list[str]:
    left = a.groupby(key)["amount_usd"].sum()
    right = b.groupby(key)["amount_usd"].sum()
    both = pd.concat([left.rename("a"), right.rename("b")], axis=1).fillna(0.0)
    both["delta"] = both["b"] - both["a"]
    both = both[both["delta"].abs() >= 0.005]
    both = both.reindex(both["delta"].abs().sort_values(ascending=False, kind="stable").index)
    return [f"  {k}: {usd(r.a)} -> {usd(r.b)} ({r.delta:+,.2f})" for k, r in both.iterrows()]


@dataclass
class RunDiff:
    """What changed between two runs (`gcm-fund diff`)."""

    same: bool
    lines: list[str]


def diff(folder_a: Path | str, folder_b: Path | str, top: int | None = None) -> RunDiff:
    """Input, policy, solver, objective, totals and table differences between two runs.

    Raises `NotARunFolder` (naming the file where it can) when a folder is damaged.
    """
    with read_as_damaged(f"{folder_a} or {folder_b}"):
        return _diff(open_run(folder_a), open_run(folder_b), top)


def _diff(a: RunFolder, b: RunFolder, top: int | None) -> RunDiff:
    lines = [f"diff {a.path} (run {a.text('run_id')}) -> {b.path} (run {b.text('run_id')})"]
    changed = False
    inputs_a, inputs_b = a.section("inputs"), b.section("inputs")
    for name in sorted(set(inputs_a) | set(inputs_b)):
        if inputs_a.get(name) != inputs_b.get(name):
            changed = True
            lines.append(f"input {name}: sha256 {str(inputs_a.get(name))[:12]} -> "
                         f"{str(inputs_b.get(name))[:12]}")
            lines.extend(f"  {c}" for c in _input_changes(a.inputs / name, b.inputs / name,
                                                          name)[: top or None])
    if a.text("model", "sha256") != b.text("model", "sha256"):
        changed = True
        lines.append(f"policy: sha256 {str(a.text('model', 'sha256'))[:12]} "
                     f"({a.text('model', 'path')}) -> {str(b.text('model', 'sha256'))[:12]} "
                     f"({b.text('model', 'path')})")
        try:
            fa = flatten(load_policy(a.policy).policy.model_dump())
            fb = flatten(load_policy(b.policy).policy.model_dump())
        except InputError as exc:
            lines.append(f"  cannot compare the policies: {exc.problems[0]}")
        except RecursionError:
            lines.append("  cannot compare the policies: one is nested too deeply")
        else:
            for key in sorted(set(fa) | set(fb)):
                if fa.get(key) != fb.get(key):
                    lines.append(f"  {key}: {_shown(fa, key)} -> {_shown(fb, key)}")
    solver_a = (a.text("solver", "name"), a.text("solver", "version"))
    solver_b = (b.text("solver", "name"), b.text("solver", "version"))
    if solver_a != solver_b:
        changed = True
        lines.append(f"solver: {' '.join(map(str, solver_a))} -> {' '.join(map(str, solver_b))}")
    for key, absolute in (("floor", 1e-9), ("weighted", 0.01)):
        va, vb = a.number("objective", key), b.number("objective", key)
        if va == vb:
            lines.append(f"{key}: {va} (same)")
            continue
        delta = f" ({vb - va:+.6g})" if va is not None and vb is not None else ""
        if agree(va, vb, absolute):
            lines.append(f"{key}: {va} -> {vb}{delta}, the same within 1e-6 relative")
        else:
            changed = True
            lines.append(f"{key}: {va} -> {vb}{delta}")
    ta, tb = _totals(a), _totals(b)
    for key, title in (("iso3", "State"), ("target", "target"), ("source_id", "source")):
        rows = _changed_totals(ta, tb, key)
        if rows:
            changed = True
            lines.append(f"totals by {title}: {len(rows)} changed, largest first")
            lines.extend(rows[: top or None])
            if top and len(rows) > top:
                lines.append(f"  ... and {len(rows) - top} more")
        else:
            lines.append(f"totals by {title}: no change")
    tables_a = {p.name for p in a.path.glob("*.csv") if p.is_file()}
    tables_b = {p.name for p in b.path.glob("*.csv") if p.is_file()}
    for name in sorted(tables_a | tables_b):
        if name not in tables_b or name not in tables_a:
            changed = True
            lines.append(f"table {name}: only in {a.path if name in tables_a else b.path}")
            continue
        rows = _table_changes(name, a, b, top)
        if rows:
            changed = True
            lines.append(f"table {name}: {rows[0]}")
            lines.extend(rows[1:])
        else:
            lines.append(f"table {name}: no change")
    files_a, files_b = a.section("files"), b.section("files")
    for name in sorted(n for n in set(files_a) | set(files_b)
                       if not n.endswith(".csv") and not n.startswith("inputs/")
                       and n != "policy.toml"):
        if files_a.get(name) != files_b.get(name):
            changed = True
            lines.append(f"{name}: differs (sha256 {str(files_a.get(name))[:12]} -> "
                         f"{str(files_b.get(name))[:12]})")
    if not changed:
        lines.append("the runs are the same")
    return RunDiff(not changed, lines)
