"""`certify`: a run folder proved correct and optimal from its files alone.

`certify` proves an allocation correct and optimal without a solver and without the
model-building code of `model.py`: it rebuilds the rules of SPEC section 4 from the copied
inputs and policy with its own (deliberately separate) code, then checks

- the copies are the files the run was made from (sha256 against manifest.json);
- primal feasibility: every allocation row is eligible and every rule holds on the written
  amounts within SPEC 5's tolerance, the floor included;
- constraints.csv names every rule row and reports its lhs as the allocation gives it;
- dual feasibility of the final stage: the `dual` column (d objective / d rhs) has the sign
  of its row and leaves no eligible triple with a positive reduced cost;
- zero duality gap: sum w x of the written allocation equals the dual objective;
- when stage 1 ran: its duals bound the floor from above by the recorded floor z*, and the
  allocation reaches z* - tolerance from below, which proves z*.

Weak duality is all it takes: a dual-feasible y bounds every feasible allocation's
objective by sum(rhs * y) plus the floor variable's bound term, so an allocation that meets
the bound is optimal, whatever solver produced either.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..load import load_inputs, load_policy, sha256_bytes
from ..schema import INPUT_FILES
from .common import name_list, parse_numbers, usd
from .folder import ALLOCATION_COLUMNS, CONSTRAINT_COLUMNS, RunFolder, open_run
from .rules import FAMILIES, LE, Rules, rebuild, why_not_eligible
from .tolerances import (
    DUAL_RELATIVE,
    GAP_RELATIVE,
    RELATIVE_ALLOWANCE,
    RELATIVE_FLOOR_USD,
    ROW_ALLOWANCE_USD,
    SAME_CENT,
    Z_TOLERANCE,
)


@dataclass
class Check:
    """One check of `certify`: its figure, the tolerance it was held to, what failed."""

    name: str
    ok: bool
    figure: str
    tolerance: str = ""
    problems: list[str] = field(default_factory=list)

    def lines(self, shown: int = 8) -> list[str]:
        """The check as printed: one line, then the failing rows (at most `shown`)."""
        held = f" [tolerance: {self.tolerance}]" if self.tolerance else ""
        head = f"{'ok' if self.ok else 'FAIL':<4} {self.name}: {self.figure}{held}"
        more = len(self.problems) - shown
        tail = [f"       {p}" for p in self.problems[:shown]]
        if more > 0:
            tail.append(f"       ... and {more} more")
        return [head, *tail]


@dataclass
class Certificate:
    """Every check of one run folder."""

    folder: Path
    manifest: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        """The checks that do not hold."""
        return [c for c in self.checks if not c.ok]

    def lines(self) -> list[str]:
        """What `certify` prints."""
        solver = self.manifest.get("solver", {})
        model = self.manifest.get("model", {})
        head = (f"certify {self.folder}: run {self.manifest.get('run_id')}, solver "
                f"{solver.get('name')} {solver.get('version')}, policy {model.get('name')}")
        body = [line for check in self.checks for line in check.lines()]
        verdict = ("certified: the allocation meets every rule and the recorded duals prove "
                   "it optimal" if self.ok else
                   f"NOT certified: {len(self.failed())} check"
                   f"{'s' if len(self.failed()) != 1 else ''} failed "
                   f"({', '.join(c.name for c in self.failed())})")
        return [head, *body, verdict]


class _Certifier:
    """The state shared by the checks of one run folder."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.cert = Certificate(run.path, run.manifest)
        self.rules: Rules | None = None
        self.x = np.zeros(0)
        self.written = np.zeros(0, dtype=bool)
        self.n_written = 0

    def add(self, check: Check) -> None:
        self.cert.checks.append(check)

    # -- provenance -------------------------------------------------------------------

    def check_hashes(self) -> None:
        run, manifest = self.run, self.run.manifest
        problems = []
        recorded = manifest.get("inputs")
        if not isinstance(recorded, dict) or not recorded:
            problems.append("manifest.json records no input hashes (inputs)")
            recorded = {}
        for name in sorted(set(recorded) | set(INPUT_FILES)):
            path = run.inputs / name
            if name not in recorded:
                problems.append(f"inputs/{name}: no sha256 in manifest.json")
            elif not path.is_file():
                problems.append(f"inputs/{name}: missing from the run folder")
            elif (found := sha256_bytes(path.read_bytes())) != recorded[name]:
                problems.append(f"inputs/{name}: sha256 {found[:12]}... differs from "
                                f"manifest.json's {str(recorded[name])[:12]}... (the copy "
                                "was changed after the run)")
        policy_hash = manifest.get("model", {}).get("sha256") \
            if isinstance(manifest.get("model"), dict) else None
        if not run.policy.is_file():
            problems.append("policy.toml: missing from the run folder")
        elif policy_hash is None:
            problems.append("policy.toml: no model.sha256 in manifest.json")
        elif (found := sha256_bytes(run.policy.read_bytes())) != policy_hash:
            problems.append(f"policy.toml: sha256 {found[:12]}... differs from manifest.json's "
                            f"model.sha256 {policy_hash[:12]}... (the policy was changed "
                            "after the run)")
        self.add(Check("provenance", not problems,
                       f"sha256 of {len(recorded)} input copies and policy.toml against "
                       "manifest.json", "exact", problems))

    def check_manifest(self) -> None:
        """SPEC 5's keys and what a reproduction needs."""
        manifest = self.run.manifest
        needed = {"tool_version": None, "solver": ("name", "version", "options"),
                  "model": ("path", "sha256"), "inputs": None, "status": None,
                  "objective": ("floor", "weighted"), "run_id": None,
                  "versions": ("gcm_fund", "python", "pulp", "highspy"),
                  "floor_variable": ("stage1_bounds", "stage2_bounds", "stage2_value",
                                     "stage2_reduced_cost", "stage1_reduced_cost")}
        problems = []
        for key, sub in needed.items():
            if key not in manifest:
                problems.append(f"manifest.json: no {key}")
            elif sub is not None:
                value = manifest[key]
                missing = [s for s in sub if not isinstance(value, dict) or s not in value]
                problems.extend(f"manifest.json: no {key}.{s}" for s in missing)
        solver = manifest.get("solver")
        if isinstance(solver, dict) and solver.get("version") in (None, "", "unknown"):
            problems.append("manifest.json: the solver's version is not recorded")
        if manifest.get("status") != "optimal":
            problems.append(f"manifest.json: status is {manifest.get('status')!r}, not optimal")
        self.add(Check("manifest", not problems,
                       "records tool, solver, options, versions, hashes, objective and the "
                       "floor variable", "every key present", problems))

    # -- the rules --------------------------------------------------------------------

    def load_rules(self) -> bool:
        try:
            data = load_inputs(self.run.inputs)
            targets = set(data.gaps["target"])
            policy = load_policy(self.run.policy, targets=targets).policy
        except InputError as exc:
            self.add(Check("inputs", False, "the copied inputs or policy cannot be read", "",
                           [str(p) for p in exc.problems]))
            return False
        self.rules = rebuild(data, policy)
        return True

    # -- the allocation ---------------------------------------------------------------

    def check_allocations(self) -> bool:
        rules = self.rules
        assert rules is not None
        if not self.run.has("allocations.csv"):
            self.add(Check("allocations", False, "allocations.csv is missing"))
            return False
        table = self.run.table("allocations.csv")
        missing = [c for c in ALLOCATION_COLUMNS if c not in table.columns]
        if missing:
            self.add(Check("allocations", False, f"allocations.csv lacks {', '.join(missing)}"))
            return False
        problems: list[str] = []
        amounts = parse_numbers(table["amount_usd"])
        keys = list(zip(table["source_id"], table["iso3"], table["target"], strict=True))
        for i, text in enumerate(table["amount_usd"]):
            line = i + 2
            if math.isnan(amounts[i]):
                problems.append(f"allocations.csv:{line}: amount_usd: got {text!r}, not a number")
            elif amounts[i] <= 0:
                problems.append(f"allocations.csv:{line}: amount_usd: got {text}, expected > 0 "
                                "(zero rows are left out, amounts are >= 0)")
            elif not re.fullmatch(r"\d+\.\d\d", text):
                problems.append(f"allocations.csv:{line}: amount_usd: got {text!r}, expected "
                                "exactly two decimals")
        seen: dict[tuple[str, str, str], int] = {}
        for i, key in enumerate(keys):
            if key in seen:
                problems.append(f"allocations.csv:{i + 2}: {','.join(key)} repeats line "
                                f"{seen[key]}")
            else:
                seen[key] = i + 2
        if keys != sorted(keys):
            first = next(i for i in range(1, len(keys)) if keys[i] < keys[i - 1])
            problems.append(f"allocations.csv:{first + 2}: rows are not sorted by source_id, "
                            "iso3, target")
        self.add(Check("allocations format", not problems,
                       f"{len(table)} rows: amounts > 0 with two decimals, keys unique and "
                       "sorted", "exact", problems))

        index = pd.MultiIndex.from_frame(rules.triples[["source_id", "iso3", "target"]])
        position = index.get_indexer(pd.MultiIndex.from_tuples(
            keys, names=["source_id", "iso3", "target"])) if keys else np.zeros(0, dtype=int)
        ineligible = []
        for i in map(int, np.nonzero(position < 0)[0]):
            why = why_not_eligible(rules, *keys[i]) or "not an eligible triple"
            ineligible.append(f"allocations.csv:{i + 2}: {','.join(keys[i])}: {why}")
        self.add(Check("eligibility", not ineligible,
                       f"{len(keys) - len(ineligible)} of {len(keys)} allocation rows are "
                       f"eligible triples ({rules.n_x} eligible in all)", "exact", ineligible))
        x = np.zeros(rules.n_x)
        ok = (position >= 0) & ~np.isnan(amounts)
        np.add.at(x, position[ok], amounts[ok])
        self.x = x
        self.written = np.zeros(rules.n_x, dtype=bool)
        self.written[position[ok]] = True
        self.n_written = len(keys)
        return True

    def readable(self, z: float | None) -> tuple[np.ndarray, np.ndarray]:
        """lhs and rhs of every row as constraints.csv shows them, for allocation x."""
        rules = self.rules
        assert rules is not None
        lhs = rules.row_sums(self.x)
        rhs = rules.rows["rhs_usd"].to_numpy(dtype=float).copy()
        family = rules.rows["family"].to_numpy()
        if rules.thematic:
            at = np.nonzero(family == "thematic")[0]
            total = float(self.x.sum())
            in_target = {t: float(self.x[(rules.triples["target"] == t).to_numpy()].sum())
                         for t in rules.thematic}
            targets = rules.rows["target"].to_numpy()[at]
            lhs[at] = [in_target[t] for t in targets]
            rhs[at] = [rules.thematic[t] * total for t in targets]
        if z is not None:
            rhs[rules.floor_rows] = z * rules.floor_fundable()
        return lhs, rhs

    def row_tolerance(self, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """SPEC 5's tolerance of each row."""
        assert self.rules is not None
        count = self.rules.rows_written(self.written)
        return ROW_ALLOWANCE_USD * count + RELATIVE_ALLOWANCE * np.maximum.reduce(
            [np.abs(lhs), np.abs(rhs), np.full(len(lhs), RELATIVE_FLOOR_USD)])

    def check_rules(self) -> None:
        """Every rule but the floor on the written amounts (SPEC 4 and 5)."""
        rules = self.rules
        assert rules is not None
        lhs, rhs = self.readable(None)
        sense = rules.rows["sense"].to_numpy(dtype=int)
        violation = np.where(sense == LE, lhs - rhs, rhs - lhs)
        tolerance = self.row_tolerance(lhs, rhs)
        names = rules.rows["name"].to_numpy()
        family = rules.rows["family"].to_numpy()
        worst_all = 0.0
        for fam in FAMILIES:
            at = np.nonzero(family == fam)[0]
            if fam == "floor" or not len(at):  # the floor: check_floor, with z
                continue
            worst = at[np.argmax(violation[at])]
            worst_all = max(worst_all, float(violation[worst]))
            bad = at[violation[at] > tolerance[at]]
            bad = bad[np.argsort(-violation[bad], kind="stable")]
            problems = [f"{names[i]}: lhs {usd(lhs[i])} {'<=' if sense[i] == LE else '>='} "
                        f"rhs {usd(rhs[i])} fails by {usd(violation[i])} (tolerance "
                        f"{usd(tolerance[i])})" for i in bad]
            figure = (f"{len(at)} rows, largest violation {usd(max(0.0, violation[worst]))}"
                      + (f" ({names[worst]})" if violation[worst] > 0 else ""))
            self.add(Check(f"rule {fam}", not problems, figure,
                           "0.01 USD per allocation row in the rule + 1e-7 of "
                           "max(|lhs|, |rhs|, 1e6)", problems))
        self.cert.figures["largest_violation_usd"] = max(
            worst_all, self.cert.figures.get("largest_violation_usd", 0.0))

    def check_floor(self) -> float | None:
        """The floor variable's bounds and value; returns z_final (None when G is empty)."""
        rules, run = self.rules, self.run
        assert rules is not None
        equity = rules.policy.equity
        recorded = run.manifest.get("objective", {}).get("floor")
        fv = run.floor_variable
        problems: list[str] = []
        if not rules.has_floor:
            if recorded is not None:
                problems.append(f"manifest floor is {recorded}, expected null: no gap of group "
                                f"{equity.group!r} has an eligible triple")
            self.add(Check("floor", not problems, f"the floor set G ({equity.group}) is empty",
                           "exact", problems))
            return None
        z_final = fv.get("stage2_value")
        bounds = fv.get("stage2_bounds")
        if recorded is None or z_final is None or not bounds:
            problems.append("manifest.json lacks objective.floor or floor_variable."
                            "stage2_value / stage2_bounds for a non-empty floor set")
            self.add(Check("floor", False, f"{int(rules.gaps['in_floor'].sum())} gaps in G",
                           "", problems))
            return None
        recorded, z_final = float(recorded), float(z_final)
        if equity.maximize:
            expected = (max(equity.min_floor, recorded - equity.tolerance), 1.0)
        else:
            expected = (equity.min_floor, equity.min_floor)
            if abs(recorded - equity.min_floor) > Z_TOLERANCE:
                problems.append(f"floor {recorded} is not min_floor {equity.min_floor} "
                                "(the policy does not maximize the floor)")
        if abs(float(bounds[0]) - expected[0]) > 1e-12 or abs(float(bounds[1]) - expected[1]) \
                > 1e-12:
            problems.append(f"stage-2 bounds of z {bounds} are not {list(expected)} "
                            "(SPEC 4: z >= max(z_min, z* - tolerance), z <= 1)")
        if not expected[0] - Z_TOLERANCE <= z_final <= expected[1] + Z_TOLERANCE:
            problems.append(f"z = {z_final} lies outside its bounds {list(expected)}")
        if not equity.min_floor - Z_TOLERANCE <= recorded <= 1 + Z_TOLERANCE:
            problems.append(f"floor {recorded} is outside [min_floor, 1]")
        lhs, rhs = self.readable(z_final)
        at = rules.floor_rows
        tol = self.row_tolerance(lhs, rhs)[at]
        short = rhs[at] - lhs[at]
        worst = at[np.argmax(short)] if len(at) else None
        names = rules.rows["name"].to_numpy()
        bad = at[short > tol]
        problems.extend(f"{names[i]}: allocated {usd(lhs[i])} < z * U = {usd(rhs[i])} "
                        f"(short {usd(rhs[i] - lhs[i])})" for i in bad)
        fundable = rules.floor_fundable()
        coverage = np.where(fundable > 0, lhs[at] / fundable, np.inf)
        self.cert.figures["floor"] = recorded
        self.cert.figures["z_final"] = z_final
        self.cert.figures["largest_violation_usd"] = max(
            self.cert.figures.get("largest_violation_usd", 0.0), float(short.max()))
        figure = (f"{len(at)} gaps in G; z = {z_final:.10g} >= floor {recorded:.10g} - "
                  f"{equity.tolerance:g}; lowest coverage {coverage.min():.10g}; largest "
                  f"shortfall {usd(max(0.0, float(short.max())))}"
                  + (f" ({names[worst]})" if worst is not None and short.max() > 0 else ""))
        self.add(Check("rule floor", not problems, figure,
                       f"z to {Z_TOLERANCE:g}; rows as SPEC 5", problems))
        return z_final

    # -- constraints.csv --------------------------------------------------------------

    def read_constraints(self, name: str) -> pd.DataFrame | None:
        if not self.run.has(name):
            self.add(Check(name, False, f"{name} is missing"))
            return None
        table = self.run.table(name)
        missing = [c for c in CONSTRAINT_COLUMNS if c not in table.columns]
        if missing:
            self.add(Check(name, False, f"{name} lacks {', '.join(missing)}"))
            return None
        return table

    def check_constraint_rows(self, label: str, table: pd.DataFrame, z: float | None,
                              with_lhs: bool) -> np.ndarray:
        """Names, families and figures of a constraints table; returns the duals by row."""
        rules = self.rules
        assert rules is not None
        problems: list[str] = []
        names = rules.rows["name"].to_numpy()
        where = {n: i for i, n in enumerate(table["name"])}
        dupes = table["name"][table["name"].duplicated()].tolist()
        problems.extend(f"{label}: {n} appears more than once" for n in dupes)
        missing = [n for n in names if n not in where]
        extra = sorted(set(table["name"]) - set(names))
        if missing:
            problems.append(f"{label}: {len(missing)} rule rows missing: {name_list(missing)}")
        if extra:
            problems.append(f"{label}: {len(extra)} rows that are no rule of these inputs: "
                            f"{name_list(extra)}")
        position = np.array([where.get(n, -1) for n in names], dtype=int)
        found = position >= 0
        lhs, rhs = self.readable(z)
        got = {c: np.full(len(names), np.nan) for c in ("lhs", "rhs", "slack", "dual")}
        for c in got:
            values = parse_numbers(table[c])
            got[c][found] = values[position[found]]
        written_family = table["family"].to_numpy()[position[found]]
        expected_family = rules.rows["family"].to_numpy()[found]
        for name, got_f, want in zip(names[found], written_family, expected_family,
                                     strict=True):
            if got_f != want:
                problems.append(f"{label}: {name} has family {got_f!r}, expected {want!r}")
        near = SAME_CENT + 1e-12 * np.maximum(np.abs(lhs), np.abs(rhs))
        checks = [("rhs", rhs)]
        if with_lhs:
            checks.append(("lhs", lhs))
        # Stage 1's allocation is not written: its thematic rhs (theta * its total) cannot
        # be recomputed, the other right-hand sides do not depend on the allocation.
        comparable = found if with_lhs else found & (rules.rows["family"] != "thematic").to_numpy()
        for column, expected in checks:
            off = comparable & ~(np.abs(got[column] - expected) <= near)
            problems.extend(f"{label}: {names[i]}: {column} {got[column][i]:.2f}, recomputed "
                            f"{expected[i]:.2f}" for i in np.nonzero(off)[0])
        if with_lhs:
            sense = rules.rows["sense"].to_numpy(dtype=int)
            slack = np.where(sense == LE, got["rhs"] - got["lhs"], got["lhs"] - got["rhs"])
            off = found & ~(np.abs(got["slack"] - slack) <= 3 * SAME_CENT)
            problems.extend(f"{label}: {names[i]}: slack {got['slack'][i]:.2f} is not its "
                            f"rhs and lhs apart ({slack[i]:.2f})" for i in np.nonzero(off)[0])
        bad_dual = found & np.isnan(got["dual"])
        problems.extend(f"{label}: {names[i]}: dual is not a number" for i in
                        np.nonzero(bad_dual)[0])
        what = "names, families, lhs, rhs and slack" if with_lhs else "names, families and rhs"
        self.add(Check(f"{label} rows", not problems,
                       f"{int(found.sum())} of {len(names)} rule rows present; {what} as "
                       "recomputed", f"{SAME_CENT} USD + 1e-12 relative", problems))
        return np.nan_to_num(got["dual"], nan=0.0)

    # -- duals ------------------------------------------------------------------------

    def check_duals(self, label: str, y: np.ndarray, cost_x: np.ndarray, cost_z: float,
                    z_bounds: tuple[float, float] | None, z_value: float | None,
                    recorded_reduced: float | None, dual_tol: float
                    ) -> tuple[float, float]:
        """Dual feasibility of one stage; returns (dual objective, rigorous bound)."""
        rules = self.rules
        assert rules is not None
        names = rules.rows["name"].to_numpy()
        sense = rules.rows["sense"].to_numpy(dtype=int)
        wrong = np.where(sense == LE, -y, y)  # > 0 is a dual of the wrong sign
        problems = [f"{names[i]}: dual {y[i]:.8g} has the wrong sign for a "
                    f"{'<=' if sense[i] == LE else '>='} row (d objective / d rhs)"
                    for i in np.nonzero(wrong > dual_tol)[0]]
        worst_sign = float(wrong.max()) if len(wrong) else 0.0
        self.add(Check(f"{label} dual signs", not problems,
                       f"{len(y)} rows, largest wrong-signed dual {max(0.0, worst_sign):.3g}",
                       f"{dual_tol:.3g} per USD", problems))

        reduced = cost_x - rules.transpose_sums(y)
        keys = rules.triples
        bad = np.nonzero(reduced > dual_tol)[0]
        bad = bad[np.argsort(-reduced[bad], kind="stable")]
        problems = [f"x[{keys['source_id'].iat[j]},{keys['iso3'].iat[j]},{keys['target'].iat[j]}]"
                    f": reduced cost {reduced[j]:.6g} > 0 (weight {cost_x[j]:.6g}, duals of "
                    f"its rows sum to {cost_x[j] - reduced[j]:.6g})" for j in bad]
        worst = float(reduced.max()) if len(reduced) else 0.0
        self.add(Check(f"{label} reduced costs", not problems,
                       f"{rules.n_x} eligible triples, largest reduced cost {worst:.3g}",
                       f"{dual_tol:.3g} per USD", problems))

        dual_objective = float(rules.rows["rhs_usd"].to_numpy(dtype=float) @ y)
        bound_term = 0.0
        fundable = rules.floor_fundable()
        if z_bounds is not None and rules.has_floor:
            reduced_z = cost_z + float(fundable @ y[rules.floor_rows])
            z_tol = dual_tol * max(float(fundable.sum()), 1.0)
            low, high = z_bounds
            bound_term = reduced_z * (high if reduced_z > 0 else low)
            problems = []
            if z_value is not None and high > low:
                if reduced_z < -z_tol and abs(z_value - low) > Z_TOLERANCE:
                    problems.append(f"z's reduced cost {reduced_z:.6g} < 0 but z = {z_value} "
                                    f"is not at its lower bound {low}")
                if reduced_z > z_tol and abs(z_value - high) > Z_TOLERANCE:
                    problems.append(f"z's reduced cost {reduced_z:.6g} > 0 but z = {z_value} "
                                    f"is not at its upper bound {high}")
            if recorded_reduced is not None and not abs(recorded_reduced - reduced_z) <= \
                    z_tol + 1e-6 * abs(reduced_z):
                problems.append(f"z's reduced cost recomputed from the duals is "
                                f"{reduced_z:.8g}, manifest.json records {recorded_reduced:.8g}")
            self.add(Check(f"{label} floor variable", not problems,
                           f"reduced cost of z {reduced_z:.6g} with z in [{low:.10g}, "
                           f"{high:.10g}]" + (f", z = {z_value:.10g}" if z_value is not None
                                               else ""),
                           f"{z_tol:.3g}; z to {Z_TOLERANCE:g}", problems))
        # The bound with every dual infeasibility priced at its worst: wrong-signed duals
        # set to 0, then a positive reduced cost times the most that triple can carry.
        repaired = np.where(sense == LE, np.maximum(y, 0.0), np.minimum(y, 0.0))
        repaired_reduced = cost_x - rules.transpose_sums(repaired)
        rigorous = float(rules.rows["rhs_usd"].to_numpy(dtype=float) @ repaired)
        rigorous += float(np.maximum(repaired_reduced, 0.0) @ rules.triples["upper_usd"]
                          .to_numpy(dtype=float))
        if z_bounds is not None and rules.has_floor:
            repaired_z = cost_z + float(fundable @ repaired[rules.floor_rows])
            rigorous += repaired_z * (z_bounds[1] if repaired_z > 0 else z_bounds[0])
        return dual_objective + bound_term, rigorous

    def stage2(self, z_final: float | None) -> None:
        rules, run = self.rules, self.run
        assert rules is not None
        table = self.read_constraints("constraints.csv")
        if table is None:
            return
        y = self.check_constraint_rows("constraints.csv", table, z_final, with_lhs=True)
        weight = rules.triples["weight"].to_numpy(dtype=float)
        tol = DUAL_RELATIVE * max(1.0, float(np.abs(weight).max()) if len(weight) else 1.0)
        fv = run.floor_variable
        bounds = fv.get("stage2_bounds")
        recorded = fv.get("stage2_reduced_cost")
        dual, rigorous = self.check_duals(
            "stage 2", y, weight, 0.0, _bounds(bounds), z_final,
            None if recorded is None else float(recorded) * run.solved_scale, tol)
        primal = float(weight @ self.x)
        weighted = run.manifest.get("objective", {}).get("weighted")
        allowance = ROW_ALLOWANCE_USD * float(np.abs(weight).max() if len(weight) else 0.0) \
            * self.n_written
        gap_tol = GAP_RELATIVE * max(abs(primal), abs(dual), 1.0) + allowance
        gap = dual - primal
        problems = []
        if not abs(gap) <= gap_tol:
            problems.append(f"primal sum w x = {usd(primal)}, dual sum rhs y + z term = "
                            f"{usd(dual)}: gap {usd(gap)}")
        if not rigorous - primal <= gap_tol:
            problems.append(f"with its infeasibilities priced in, the dual bounds the objective "
                            f"by {usd(rigorous)}, {usd(rigorous - primal)} above the allocation")
        if weighted is None or not abs(float(weighted) - primal) <= gap_tol:
            problems.append(f"manifest weighted {weighted} is not the allocation's sum w x "
                            f"{primal:.2f}")
        relative = abs(gap) / max(abs(primal), 1.0)
        self.cert.figures.update(stage2_primal=primal, stage2_dual=dual, stage2_gap=gap,
                                 stage2_gap_relative=relative, stage2_bound=rigorous)
        self.add(Check("stage 2 duality gap", not problems,
                       f"sum w x {usd(primal)}, dual objective {usd(dual)}, gap {usd(gap)} "
                       f"({relative:.2e} relative); certified bound {usd(rigorous)}",
                       f"1e-6 relative + 0.01 USD x max|w| per allocation row = {usd(gap_tol)}",
                       problems))

    def stage1(self, z_final: float | None) -> None:
        rules, run = self.rules, self.run
        assert rules is not None
        equity = rules.policy.equity
        expected = rules.has_floor and equity.maximize
        present = run.has("stage1_constraints.csv")
        if not expected:
            if present:
                self.add(Check("stage 1", False, "stage1_constraints.csv present, but stage 1 "
                               "does not run (the floor set is empty or not maximized)"))
            return
        if not present:
            self.add(Check("stage 1", False, "stage1_constraints.csv is missing: nothing "
                           "proves the floor z* optimal"))
            return
        table = self.read_constraints("stage1_constraints.csv")
        if table is None:
            return
        recorded = float(run.manifest["objective"]["floor"])
        y = self.check_constraint_rows("stage1_constraints.csv", table, recorded, with_lhs=False)
        fundable_g = float(rules.floor_fundable().sum())
        tol = DUAL_RELATIVE / max(fundable_g, 1.0)
        fv = run.floor_variable
        bounds = fv.get("stage1_bounds")
        z_bounds = _bounds(bounds) or (equity.min_floor, 1.0)
        problems = []
        if abs(z_bounds[0] - equity.min_floor) > 1e-12 or abs(z_bounds[1] - 1.0) > 1e-12:
            problems.append(f"stage-1 bounds of z {list(z_bounds)} are not [min_floor, 1]")
        recorded_reduced = fv.get("stage1_reduced_cost")
        dual, rigorous = self.check_duals(
            "stage 1", y, np.zeros(rules.n_x), 1.0, z_bounds, None,
            None if recorded_reduced is None else float(recorded_reduced), tol)
        gap_tol = GAP_RELATIVE * max(abs(recorded), 1.0)
        if not abs(dual - recorded) <= gap_tol:
            problems.append(f"the stage-1 dual objective {dual:.10g} (an upper bound on the "
                            f"floor) differs from the recorded floor {recorded:.10g}")
        if not rigorous - recorded <= gap_tol:
            problems.append(f"with its infeasibilities priced in, the dual bounds the floor by "
                            f"{rigorous:.10g}, above the recorded {recorded:.10g}")
        reached = z_final if z_final is not None else float("nan")
        if not reached >= recorded - equity.tolerance - Z_TOLERANCE:
            problems.append(f"the allocation reaches z = {reached}, below floor {recorded} - "
                            f"tolerance {equity.tolerance:g}")
        self.cert.figures.update(stage1_dual=dual, stage1_gap=dual - recorded,
                                 stage1_bound=rigorous)
        self.add(Check("stage 1 floor proof", not problems,
                       f"dual bound on z {dual:.10g} vs recorded floor {recorded:.10g} (gap "
                       f"{dual - recorded:.2e}); the allocation reaches z = {reached:.10g}",
                       f"{gap_tol:.0e} of full coverage; allocation >= floor - "
                       f"{equity.tolerance:g}", problems))

    # -- the other tables -------------------------------------------------------------

    def check_tables(self) -> None:
        """coverage.csv and sources_summary.csv agree with allocations.csv."""
        rules = self.rules
        assert rules is not None
        problems: list[str] = []
        gaps = rules.gaps
        allocated = np.bincount(rules.triples["gap"].to_numpy(dtype=int), weights=self.x,
                                minlength=len(gaps))
        if self.run.has("coverage.csv"):
            cov = self.run.table("coverage.csv")
            if not {"iso3", "target", "allocated_usd", "fundable_usd"} <= set(cov.columns):
                problems.append("coverage.csv lacks a column of SPEC 5")
                cov = pd.DataFrame(columns=["iso3", "target", "allocated_usd", "fundable_usd"])
            if len(cov) != len(gaps):
                problems.append(f"coverage.csv has {len(cov)} rows, gaps.csv {len(gaps)}")
            at = pd.MultiIndex.from_frame(cov[["iso3", "target"]]).get_indexer(
                pd.MultiIndex.from_frame(gaps[["iso3", "target"]])) if len(cov) else \
                np.full(len(gaps), -1)
            problems.extend(f"coverage.csv: no row for {gaps['iso3'].iat[g]},"
                            f"{gaps['target'].iat[g]}" for g in np.nonzero(at < 0)[0])
            for column, expected in (("allocated_usd", allocated),
                                     ("fundable_usd", gaps["fundable_usd"].to_numpy())):
                got = np.full(len(gaps), np.nan)
                got[at >= 0] = parse_numbers(cov[column])[at[at >= 0]]
                off = (at >= 0) & ~(np.abs(got - expected) <= SAME_CENT + 1e-12 * np.abs(expected))
                problems.extend(f"coverage.csv: {gaps['iso3'].iat[g]},{gaps['target'].iat[g]}: "
                                f"{column} {got[g]}, recomputed {expected[g]:.2f}"
                                for g in np.nonzero(off)[0])
        else:
            problems.append("coverage.csv is missing")
        if self.run.has("sources_summary.csv"):
            summary = self.run.table("sources_summary.csv")
            by_source = np.bincount(rules.triples["source"].to_numpy(dtype=int), weights=self.x,
                                    minlength=len(rules.data.sources))
            rows = dict(zip(summary.get("source_id", []), summary.get("allocated_usd", []),
                            strict=True))
            for f, sid in enumerate(rules.data.sources["source_id"]):
                got = pd.to_numeric(rows.get(sid, ""), errors="coerce")
                if not abs(got - by_source[f]) <= SAME_CENT + 1e-12 * by_source[f]:
                    problems.append(f"sources_summary.csv: {sid}: allocated_usd {got}, "
                                    f"recomputed {by_source[f]:.2f}")
        else:
            problems.append("sources_summary.csv is missing")
        self.add(Check("coverage and sources tables", not problems,
                       "allocated and fundable amounts agree with allocations.csv",
                       f"{SAME_CENT} USD + 1e-12 relative", problems))


def _bounds(recorded: Any) -> tuple[float, float] | None:
    """A [low, high] pair of the manifest as floats, None when not recorded."""
    return (float(recorded[0]), float(recorded[1])) if recorded else None


def certify(folder: Path | str) -> Certificate:
    """Every check of `gcm-fund certify` on one run folder (no solver involved).

    Raises `NotARunFolder` when the folder has no run manifest.
    """
    run = open_run(folder)
    checker = _Certifier(run)
    checker.check_hashes()
    checker.check_manifest()
    if not checker.load_rules() or not checker.check_allocations():
        return checker.cert
    checker.check_rules()
    z_final = checker.check_floor()
    checker.stage2(z_final)
    checker.stage1(z_final)
    checker.check_tables()
    return checker.cert
