"""`diff`: what changed between two run folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..load import load_policy
from .common import agree, flatten, usd
from .folder import open_run


def _shown(flat: dict[str, Any], key: str) -> str:
    """A policy value for `diff`; a target key left out has SPEC 3's default."""
    if key in flat:
        return repr(flat[key])
    defaults = {"weights.target.": 1.0, "thematic.min_share.": 0.0}
    default = next((v for k, v in defaults.items() if key.startswith(k)), None)
    return "(not set)" if default is None else f"(not set: {default!r})"


def _input_changes(a: Path, b: Path, name: str) -> list[str]:
    """Rows added, removed or changed between two copies of an input file, by key."""
    keys = {"states.csv": ["iso3"], "gaps.csv": ["iso3", "target"],
            "sources.csv": ["source_id"]}[name]
    try:
        left = pd.read_csv(a, dtype=str, keep_default_na=False).set_index(keys)
        right = pd.read_csv(b, dtype=str, keep_default_na=False).set_index(keys)
    except (OSError, ValueError, KeyError) as exc:
        return [f"cannot compare rows ({exc})"]
    out = []
    for k in left.index.difference(right.index):
        out.append(f"removed {k if isinstance(k, str) else ','.join(k)}")
    for k in right.index.difference(left.index):
        out.append(f"added {k if isinstance(k, str) else ','.join(k)}")
    common = left.index.intersection(right.index)
    columns = [c for c in left.columns if c in right.columns]
    for k in common:
        lr, rr = left.loc[k, columns], right.loc[k, columns]
        if isinstance(lr, pd.DataFrame) or isinstance(rr, pd.DataFrame):
            continue  # a repeated key: the loader refuses it anyway
        changed = [f"{c} {lr[c]!r} -> {rr[c]!r}" for c in columns if lr[c] != rr[c]]
        if changed:
            out.append(f"{k if isinstance(k, str) else ','.join(k)}: {', '.join(changed)}")
    return out


def _totals(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "allocations.csv", dtype={"source_id": str, "iso3": str,
                                                           "target": str},
                        keep_default_na=False)
    table["amount_usd"] = table["amount_usd"].astype(float)
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
    """Input, policy, objective and totals differences between two run folders."""
    a, b = open_run(folder_a), open_run(folder_b)
    ma, mb = a.manifest, b.manifest
    lines = [f"diff {a.path} (run {ma.get('run_id')}) -> {b.path} (run {mb.get('run_id')})"]
    changed = False
    inputs_a, inputs_b = ma.get("inputs", {}), mb.get("inputs", {})
    for name in sorted(set(inputs_a) | set(inputs_b)):
        if inputs_a.get(name) != inputs_b.get(name):
            changed = True
            lines.append(f"input {name}: sha256 {str(inputs_a.get(name))[:12]} -> "
                         f"{str(inputs_b.get(name))[:12]}")
            lines.extend(f"  {c}" for c in _input_changes(a.inputs / name, b.inputs / name,
                                                          name)[: top or None])
    pa, pb = ma.get("model", {}), mb.get("model", {})
    if pa.get("sha256") != pb.get("sha256"):
        changed = True
        lines.append(f"policy: sha256 {str(pa.get('sha256'))[:12]} ({pa.get('path')}) -> "
                     f"{str(pb.get('sha256'))[:12]} ({pb.get('path')})")
        try:
            fa = flatten(load_policy(a.policy).policy.model_dump())
            fb = flatten(load_policy(b.policy).policy.model_dump())
        except InputError as exc:
            lines.append(f"  cannot compare the policies: {exc.problems[0]}")
        else:
            for key in sorted(set(fa) | set(fb)):
                if fa.get(key) != fb.get(key):
                    lines.append(f"  {key}: {_shown(fa, key)} -> {_shown(fb, key)}")
    sa, sb = ma.get("solver", {}), mb.get("solver", {})
    if (sa.get("name"), sa.get("version")) != (sb.get("name"), sb.get("version")):
        changed = True
        lines.append(f"solver: {sa.get('name')} {sa.get('version')} -> {sb.get('name')} "
                     f"{sb.get('version')}")
    oa, ob = ma.get("objective", {}), mb.get("objective", {})
    for key, absolute in (("floor", 1e-9), ("weighted", 0.01)):
        va, vb = oa.get(key), ob.get(key)
        if va == vb:
            lines.append(f"{key}: {va} (same)")
            continue
        delta = f" ({vb - va:+.6g})" if va is not None and vb is not None else ""
        if agree(va, vb, absolute):
            lines.append(f"{key}: {va} -> {vb}{delta}, the same within 1e-6 relative")
        else:
            changed = True
            lines.append(f"{key}: {va} -> {vb}{delta}")
    ta, tb = _totals(a.path), _totals(b.path)
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
    if not changed:
        lines.append("the runs are the same")
    return RunDiff(not changed, lines)
