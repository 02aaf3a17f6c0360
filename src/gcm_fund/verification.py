"""`verify`: solving a run's copied inputs and policy again and comparing.

It stands above `audit` (whose readers and provenance check it uses) because it calls the
engine, which `audit` never does: `certify` restates the rules on its own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.audit.certificate import certify
from gcm_fund.audit.checks import Certifier
from gcm_fund.audit.common import agree, flatten, parse_numbers
from gcm_fund.audit.derived import donor_columns
from gcm_fund.audit.folder import (
    ALLOCATION_COLUMNS,
    DamagedFile,
    RunFolder,
    open_run,
    read_as_damaged,
)
from gcm_fund.audit.provenance import check_hashes
from gcm_fund.audit.tolerances import GAP_RELATIVE_U, GAP_USD, ROW_CENT
from gcm_fund.engine import run as run_scenario
from gcm_fund.engine import write as write_run
from gcm_fund.errors import InfeasibleError
from gcm_fund.inputs.contributions import value_pledges
from gcm_fund.inputs.cycle_effects import load_cycle
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.inputs.programmes import load_programmes
from gcm_fund.methods.strategy import method_of
from gcm_fund.model.scenario import Scenario
from gcm_fund.outputs.schema import ALLOCATIONS, COVERAGE, MANIFEST

COMPARED = (ALLOCATIONS.name, COVERAGE.name, MANIFEST)


@dataclass
class Verification:
    """The outcome of re-solving a run: what `verify` prints, and whether it holds."""

    ok: bool
    lines: list[str]


def _solver_argument(recorded: str) -> str:
    """The `--solver` value that gives a run whose manifest names `recorded`."""
    return recorded.split(":", 1)[1] if recorded.startswith("pulp:") else recorded


def _allocation_differences(a: Path, b: Path) -> pd.DataFrame:
    """Rows whose amount differs between two allocations.csv, largest difference first."""
    def read(path: Path) -> pd.Series:
        table = RunFolder(path.parent, {}).table(path.name, ALLOCATION_COLUMNS)
        table["amount_usd"] = np.nan_to_num(parse_numbers(table["amount_usd"]))
        table = table.drop_duplicates(["source_id", "iso3", "target"])
        return table.set_index(["source_id", "iso3", "target"])["amount_usd"]

    both = pd.concat([read(a).rename("recorded"), read(b).rename("resolved")], axis=1)
    both = both.fillna(0.0)
    both["difference"] = both["resolved"] - both["recorded"]
    changed = both[both["difference"].abs() >= 0.005]
    return changed.reindex(changed["difference"].abs().sort_values(ascending=False,
                                                                  kind="stable").index)


def _gap_differences(a: Path, b: Path) -> pd.DataFrame:
    """Gaps whose amount differs between two run folders beyond what docs/model.md lets each
    differ from the exact leximin allocation (USD 0.01 + 1e-6 U, and half a cent per written
    row), on each side; largest difference first. `b` is the re-solved folder, which
    gives U."""
    def by_gap(path: Path) -> pd.DataFrame:
        table = RunFolder(path.parent, {}).table(path.name, ALLOCATION_COLUMNS)
        table["amount_usd"] = np.nan_to_num(parse_numbers(table["amount_usd"]))
        table = table.drop_duplicates(["source_id", "iso3", "target"])
        return table.groupby(["iso3", "target"])["amount_usd"].agg(["sum", "count"])

    recorded, resolved = by_gap(a / "allocations.csv"), by_gap(b / "allocations.csv")
    coverage = RunFolder(b, {}).table("coverage.csv", ("iso3", "target", "fundable_usd"))
    fundable = pd.Series(parse_numbers(coverage["fundable_usd"]),
                         index=pd.MultiIndex.from_frame(coverage[["iso3", "target"]]))
    both = pd.concat([recorded["sum"].rename("recorded"), resolved["sum"].rename("resolved"),
                      (recorded["count"].add(resolved["count"], fill_value=0)).rename("rows"),
                      fundable.rename("fundable")], axis=1).fillna(0.0)
    both["difference"] = both["resolved"] - both["recorded"]
    tolerance = 2 * (GAP_USD + GAP_RELATIVE_U * both["fundable"]) + ROW_CENT * both["rows"]
    changed = both[~(both["difference"].abs() <= tolerance)]
    return changed.reindex(changed["difference"].abs().sort_values(ascending=False,
                                                                  kind="stable").index)


def verify(folder: Path | str, solver: str | None = None) -> Verification:
    """Solve a run's copied inputs and policy again and compare with what it recorded.

    With the recorded solver the run must come back byte-identical (allocations.csv,
    coverage.csv, manifest.json); with another solver, floor and weighted must agree
    within 1e-6 relative. Under `weighted` differing allocations are then an alternative
    optimum; under `levels` every gap's amount is unique (docs/model.md), so a gap that differs
    beyond its tolerance fails, and only the split among sources may differ.
    """
    with read_as_damaged(folder):
        return _verify(open_run(folder), solver)


def _verify(run: RunFolder, solver: str | None) -> Verification:
    manifest = run.manifest
    recorded_solver = run.text("solver", "name") or "highs"
    chosen = solver or _solver_argument(recorded_solver)
    same_solver = _solver_argument(recorded_solver) == chosen
    model_path = run.text("model", "path") or "policy.toml"
    lines = [f"verify {run.path}: run {run.text('run_id')} recorded with "
             f"{recorded_solver}; solving its copied inputs and policy again with {chosen}"]
    provenance = Certifier(run)
    provenance.step("provenance", check_hashes)
    if not provenance.cert.ok:
        lines.extend(provenance.cert.checks[0].lines())
        lines.append("NOT verified: the copies are not the files the run was made from")
        return Verification(False, lines)
    with tempfile.TemporaryDirectory(prefix="gcm-fund-verify-") as scratch:
        # The policy keeps its original file name: a policy without `name` is named after it.
        policy_dir = Path(scratch) / "policy"
        policy_dir.mkdir()
        policy_copy = policy_dir / (Path(model_path).name or "policy.toml")
        shutil.copyfile(run.policy, policy_copy)
        data = load_inputs(run.inputs)
        policy_file = load_policy(policy_copy, targets=set(data.gaps["target"]))
        if policy_file.policy.allocation.reads_programmes:
            data = load_programmes(run.inputs, data)
        data = load_cycle(run.inputs, value_pledges(data, policy_file), policy_file)
        scenario = Scenario(data, policy_file, model_path)
        method = method_of(policy_file.policy)
        levels = method.has_levels  # every gap's amount is unique
        programmes = method.selects_programmes
        try:
            # The donor figures' re-solves where the run has them (docs/outputs.md).
            again = run_scenario(scenario, chosen, _donor_figures_of(run))
        except InfeasibleError as exc:
            lines.append(f"FAIL the re-solve is infeasible ({exc.diagnosis.reason}), the run "
                         f"recorded status {run.raw('status')!r}")
            return Verification(False, lines)
        out = Path(scratch) / "run"
        write_run(again, out)
        identical = {name: (run.path / name).is_file()
                     and (run.path / name).read_bytes() == (out / name).read_bytes()
                     for name in COMPARED}
        new_manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        for name, same in identical.items():
            lines.append(f"{'same' if same else 'DIFFERS'} {name}")
        if not identical[MANIFEST]:
            before, after = flatten(manifest), flatten(new_manifest)
            lines.extend(f"       {key}: {_short(before.get(key))} -> {_short(after.get(key))}"
                         for key in sorted(set(before) | set(after))
                         if before.get(key) != after.get(key))
        new_obj = new_manifest["objective"]
        old_floor, old_weighted = run.number("objective", "floor"), \
            run.number("objective", "weighted")
        floor_ok = agree(old_floor, new_obj["floor"], 1e-9)
        weighted_ok = agree(old_weighted, new_obj["weighted"], 0.01)
        lines.append(f"{'agree' if floor_ok else 'DIFFER'} floor: recorded "
                     f"{old_floor}, re-solved {new_obj['floor']}")
        lines.append(f"{'agree' if weighted_ok else 'DIFFER'} weighted: recorded "
                     f"{old_weighted}, re-solved {new_obj['weighted']} "
                     "[tolerance: 1e-6 relative]")
        try:
            changed = _allocation_differences(run.path / "allocations.csv",
                                              out / "allocations.csv")
        except DamagedFile as exc:
            lines.append(f"allocations: the recorded {exc.name} cannot be compared: {exc.why}")
            changed = pd.DataFrame()
        gaps_ok = True
        if len(changed) and levels:
            # docs/model.md: every gap's amount is unique; only its split among sources is not.
            try:
                gaps_changed = _gap_differences(run.path, out)
            except DamagedFile as exc:
                gaps_changed = pd.DataFrame()
                lines.append(f"gaps: the recorded {exc.name} cannot be compared: {exc.why}")
                gaps_ok = False
            gaps_ok = gaps_ok and not len(gaps_changed)
            if len(gaps_changed):
                lines.append(f"FAIL gaps: {len(gaps_changed)} gaps differ beyond the levels' "
                             "tolerance (docs/model.md), but under levels every gap's "
                             "amount is unique: a different allocation; largest:")
                for key, row in gaps_changed.head(10).iterrows():
                    lines.append(f"       gap[{','.join(key)}]: {row['recorded']:,.2f} -> "
                                 f"{row['resolved']:,.2f} ({row['difference']:+,.2f})")
        if len(changed):
            if levels:
                kind = ("the same amount for every gap, split otherwise among its sources"
                        if gaps_ok else "a different allocation")
            else:
                kind = ("an alternative optimum (same floor and weighted objective)"
                        if floor_ok and weighted_ok else "a different allocation")
            lines.append(f"allocations: {len(changed)} rows differ, {kind}; largest:")
            for key, row in changed.head(10).iterrows():
                lines.append(f"       {','.join(key)}: {row['recorded']:,.2f} -> "
                             f"{row['resolved']:,.2f} ({row['difference']:+,.2f})")
            if floor_ok and weighted_ok and gaps_ok:
                cert = certify(out)
                lines.append(f"{'ok' if cert.ok else 'FAIL'} the re-solved allocation "
                             f"{'certifies' if cert.ok else 'does not certify'} as optimal")
                weighted_ok = weighted_ok and cert.ok
        if same_solver:
            versions_now = new_manifest.get("versions")
            if not all(identical.values()) and manifest.get("versions") != versions_now:
                lines.append("note: the installed versions differ from the recorded ones "
                             "(see versions above)")
            ok = all(identical.values())
            verdict = ("reproduced: byte-identical" if ok else
                       "NOT reproduced: the files differ with the recorded solver")
        else:
            ok = floor_ok and weighted_ok and gaps_ok
            verdict = ("equivalent: floor and weighted objective agree" if ok else
                       "NOT equivalent: the objectives differ" if gaps_ok else
                       "NOT equivalent: the gaps' amounts differ")
        if programmes:  # docs/programmes.md: any solver must give the same selection
            moved = _selection_differences(run.path / "selection.csv", out / "selection.csv")
            lines.append("same selection" if not moved else
                         f"DIFFERENT selection: {', '.join(moved[:10])}")
            if not same_solver:
                ok = ok and not moved
                verdict = ("equivalent: the same selection, value and money placed" if ok else
                           "NOT equivalent: another solver selects differently")
        lines.append(verdict)
    return Verification(ok, lines)


def _selection_differences(a: Path, b: Path) -> list[str]:
    """Programmes funded, or funded with amounts further apart than two cents plus 2e-7
    (a solver that reads values back to 8 digits holds them within 1e-7), in one
    selection.csv and not the other (`id: recorded -> re-solved`)."""
    def read(path: Path) -> dict[str, float]:
        table = RunFolder(path.parent, {}).table(path.name, ("programme_id", "funded",
                                                             "amount_usd"))
        amount = np.nan_to_num(parse_numbers(table["amount_usd"]))
        return dict(zip(table["programme_id"], amount, strict=True))

    before, after = read(a), read(b)
    return [f"{p}: {before.get(p, 0.0):,.2f} -> {after.get(p, 0.0):,.2f}"
            for p in sorted(set(before) | set(after))
            if abs(before.get(p, 0.0) - after.get(p, 0.0))
            > 0.02 + 2e-7 * max(before.get(p, 0.0), after.get(p, 0.0))]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def _donor_figures_of(run: RunFolder) -> str:
    """The `--donor-figures` a run was made with, from the figures its manifest records."""
    computed = donor_columns(run)
    return "all" if "placed_per_usd" in computed else "marginal" if computed else "none"
