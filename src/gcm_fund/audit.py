"""Checking a run folder from its files alone: certify, verify, explain and diff.

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

import functools
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import EXIT_BAD_INPUT, GcmFundError, InfeasibleError, InputError, UsageError
from .load import ProblemData, load_inputs, load_policy, sha256_bytes
from .schema import INPUT_FILES, Policy, did_you_mean

# SPEC 5: a rule holds within 0.01 USD per allocation row in it plus 1e-7 of
# max(|lhs|, |rhs|, 1e6).
ROW_ALLOWANCE_USD = 0.01
RELATIVE_ALLOWANCE = 1e-7
RELATIVE_FLOOR_USD = 1e6
# SPEC 7: the duality gap accepted is at most 1e-6 relative to the objective.
GAP_RELATIVE = 1e-6
# Dual feasibility: a reduced cost or a wrong-signed dual is noise up to 1e-7 of the
# objective's cost scale (max |w| per USD in stage 2; one floor unit per USD of the floor
# set's fundable need in stage 1). CBC writes 8 significant digits, HiGHS 12.
DUAL_RELATIVE = 1e-7
# Floor levels are shares; a solver that writes 8 significant digits moves them ~1e-9.
Z_TOLERANCE = 1e-8
# A figure written to the cent from the written amounts is off by at most half a cent (and
# float noise) from the same figure recomputed: anything more means the files disagree.
SAME_CENT = 0.0051

RUN_TABLES = ("allocations.csv", "coverage.csv", "sources_summary.csv", "constraints.csv")
ALLOCATION_COLUMNS = ("source_id", "iso3", "target", "amount_usd")
CONSTRAINT_COLUMNS = ("name", "family", "lhs", "rhs", "slack", "dual")
LE, GE = 1, -1
FAMILIES = ("budget", "gap", "absorb", "state_share", "source_state", "thematic", "floor")
SCALES = {"USD": 1.0, "USD thousands": 1e3, "USD millions": 1e6, "USD billions": 1e9}


class NotARunFolder(GcmFundError):
    """The folder is not a run folder written by `gcm-fund allocate` (exit status 2)."""

    exit_code = EXIT_BAD_INPUT


# ---------------------------------------------------------------------------------------
# Reading a run folder


@dataclass
class RunFolder:
    """A run folder: its manifest and where its files are."""

    path: Path
    manifest: dict[str, Any]

    @property
    def inputs(self) -> Path:
        """The copy of the input folder."""
        return self.path / "inputs"

    @property
    def policy(self) -> Path:
        """The copy of the policy file."""
        return self.path / "policy.toml"

    def has(self, name: str) -> bool:
        """Whether the run folder holds a file."""
        return (self.path / name).is_file()

    def table(self, name: str) -> pd.DataFrame:
        """A CSV file of the run as text cells (nothing parsed, nothing blank turned NaN)."""
        return pd.read_csv(self.path / name, dtype=str, keep_default_na=False,
                           na_filter=False)

    @property
    def floor_variable(self) -> dict[str, Any]:
        """manifest `floor_variable`, empty when absent."""
        found = self.manifest.get("floor_variable")
        return found if isinstance(found, dict) else {}

    @property
    def solved_scale(self) -> float:
        """USD per unit of the solver's amounts (manifest units.solved_in)."""
        units = self.manifest.get("units", {})
        return SCALES.get(units.get("solved_in", "USD millions") if isinstance(units, dict)
                          else "USD millions", 1e6)


def open_run(folder: Path | str) -> RunFolder:
    """A run folder's manifest; raises `NotARunFolder` when it has none."""
    path = Path(folder)
    if not path.is_dir():
        raise NotARunFolder(f"{path}: not a folder")
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise NotARunFolder(f"{path}: not a run folder (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotARunFolder(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise NotARunFolder(f"{manifest_path}: not a run manifest (no run_id)")
    return RunFolder(path, manifest)


# ---------------------------------------------------------------------------------------
# The rules of SPEC section 4, rebuilt from the inputs without model.py


@dataclass
class Rules:
    """The LP of SPEC 4 in USD, rebuilt from the inputs and the policy.

    Triples (columns) are the eligible (source, gap) pairs; rows carry their family, name,
    sense and right-hand side in the model's form (floor and thematic rows have rhs 0:
    `sum x - U z >= 0` and `sum_t x - theta * sum x >= 0`). Entries list the non-zero
    coefficients of the allocation columns; the floor variable z has coefficient -U in
    each floor row.
    """

    data: ProblemData
    policy: Policy
    gaps: pd.DataFrame  # iso3, target, need_usd, fundable_usd, income_group, eligible, in_floor
    triples: pd.DataFrame  # source_id, iso3, target, source, gap, state, weight, upper_usd
    rows: pd.DataFrame  # name, family, sense, rhs_usd, and the row's key (source, gap, state)
    entry_row: np.ndarray
    entry_col: np.ndarray
    entry_coef: np.ndarray
    thematic: dict[str, float]

    @property
    def n_x(self) -> int:
        """Number of eligible triples."""
        return len(self.triples)

    @property
    def floor_rows(self) -> np.ndarray:
        """Row indices of the floor rows."""
        return np.nonzero((self.rows["family"] == "floor").to_numpy())[0]

    @property
    def has_floor(self) -> bool:
        """Whether the floor set G is not empty."""
        return bool(self.gaps["in_floor"].any())

    def floor_fundable(self) -> np.ndarray:
        """U of the gap of each floor row (the floor variable's coefficient is -U)."""
        rows = self.rows.iloc[self.floor_rows]
        return self.gaps["fundable_usd"].to_numpy()[rows["gap"].to_numpy(dtype=int)]

    def row_sums(self, x: np.ndarray) -> np.ndarray:
        """A x over the allocation columns (the floor variable left out)."""
        return np.bincount(self.entry_row, weights=self.entry_coef * x[self.entry_col],
                           minlength=len(self.rows))

    def transpose_sums(self, y: np.ndarray) -> np.ndarray:
        """A^T y over the allocation columns."""
        return np.bincount(self.entry_col, weights=self.entry_coef * y[self.entry_row],
                           minlength=self.n_x)

    @functools.cached_property
    def lookup(self) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], float]]:
        """Sources by id, States by iso3, and U by (iso3, target), for questions by key."""
        fundable = dict(zip(zip(self.gaps["iso3"], self.gaps["target"], strict=True),
                            self.gaps["fundable_usd"], strict=True))
        return (self.data.sources.set_index("source_id"), self.data.states.set_index("iso3"),
                fundable)

    def rows_written(self, written: np.ndarray) -> np.ndarray:
        """How many written allocation rows each rule holds."""
        return np.bincount(self.entry_row, weights=written[self.entry_col].astype(float),
                           minlength=len(self.rows))


def rebuild(data: ProblemData, policy: Policy) -> Rules:
    """The rules of SPEC 4 for these inputs and this policy (independent of model.py)."""
    states = data.states.reset_index(drop=True)
    gaps = data.gaps.reset_index(drop=True)
    sources = data.sources.reset_index(drop=True)
    state_of_gap = pd.Index(states["iso3"]).get_indexer(gaps["iso3"])
    income = states["income_group"].to_numpy()[state_of_gap]
    region = states["region"].to_numpy()[state_of_gap]
    debt = states["debt_distress"].to_numpy(dtype=bool)[state_of_gap]
    absorption = states["absorption_usd"].to_numpy(dtype=float)
    gap_target = gaps["target"].to_numpy()
    gap_iso3 = gaps["iso3"].to_numpy()
    fundable = np.array([policy.cofinancing.get(g) for g in income], dtype=float) \
        * gaps["need_usd"].to_numpy(dtype=float)
    can_absorb = ~(absorption[state_of_gap] <= 0)  # blank (NaN) means no limit

    source_of, gap_of = [], []
    for f, src in enumerate(sources.itertuples(index=False)):
        if not src.pledge_usd > 0:
            continue
        ok = (fundable > 0) & can_absorb
        if src.targets:
            ok &= np.isin(gap_target, list(src.targets))
        if src.regions:
            ok &= np.isin(region, list(src.regions))
        if src.income_groups:
            ok &= np.isin(income, list(src.income_groups))
        if src.exclude_states:
            ok &= ~np.isin(gap_iso3, list(src.exclude_states))
        if src.instrument == "loan":
            ok &= ~debt
        found = np.nonzero(ok)[0]
        source_of.append(np.full(len(found), f))
        gap_of.append(found)
    f_of = np.concatenate(source_of).astype(int) if source_of else np.zeros(0, dtype=int)
    g_of = np.concatenate(gap_of).astype(int) if gap_of else np.zeros(0, dtype=int)
    s_of = state_of_gap[g_of]

    eligible = np.zeros(len(gaps), dtype=bool)
    eligible[g_of] = True
    group = policy.equity.group
    if group == "all":
        member = np.ones(len(gaps), dtype=bool)
    elif group == "ldc":
        member = states["ldc"].to_numpy(dtype=bool)[state_of_gap]
    else:
        member = income == group
    gap_table = pd.DataFrame({
        "iso3": gap_iso3, "target": gap_target,
        "need_usd": gaps["need_usd"].to_numpy(dtype=float), "fundable_usd": fundable,
        "income_group": income, "state": state_of_gap, "eligible": eligible,
        "in_floor": eligible & member,
    })

    pledge = sources["pledge_usd"].to_numpy(dtype=float)
    rho = sources["max_state_share"].to_numpy(dtype=float)
    rho = np.where(np.isnan(rho), policy.limits.max_source_state_share, rho)
    kappa_cap = policy.limits.max_state_share * pledge.sum()
    weight = _triple_weights(states, sources, policy, f_of, g_of, s_of, gap_target, income)
    upper = np.minimum.reduce([fundable[g_of], pledge[f_of], rho[f_of] * pledge[f_of],
                               np.nan_to_num(absorption[s_of], nan=np.inf),
                               np.full(len(f_of), kappa_cap)]) if len(f_of) else np.zeros(0)
    triples = pd.DataFrame({
        "source_id": sources["source_id"].to_numpy()[f_of], "iso3": gap_iso3[g_of],
        "target": gap_target[g_of], "source": f_of, "gap": g_of, "state": s_of,
        "weight": weight, "upper_usd": upper,
    })

    blocks: list[pd.DataFrame] = []
    rows_e: list[np.ndarray] = []
    cols_e: list[np.ndarray] = []
    coefs_e: list[np.ndarray] = []
    count = 0

    def add(family: str, keys: pd.DataFrame, names: list[str], sense: int, rhs: np.ndarray,
            row_of_col: np.ndarray, cols: np.ndarray, coefs: np.ndarray) -> None:
        nonlocal count
        block = keys.reset_index(drop=True).copy()
        block.insert(0, "rhs_usd", np.asarray(rhs, dtype=float))
        block.insert(0, "sense", sense)
        block.insert(0, "family", family)
        block.insert(0, "name", names)
        blocks.append(block)
        rows_e.append(row_of_col + count)
        cols_e.append(cols)
        coefs_e.append(coefs)
        count += len(block)

    all_cols = np.arange(len(f_of))
    ones = np.ones(len(f_of))
    ids = sources["source_id"].to_numpy()
    iso3 = states["iso3"].to_numpy()
    if len(f_of):
        present, row_of = np.unique(f_of, return_inverse=True)
        add("budget", pd.DataFrame({"source": present}), [f"budget[{ids[f]}]" for f in present],
            LE, pledge[present], row_of, all_cols, ones)
        present, row_of = np.unique(g_of, return_inverse=True)
        add("gap", pd.DataFrame({"gap": present}),
            [f"gap[{gap_iso3[g]},{gap_target[g]}]" for g in present], LE, fundable[present],
            row_of, all_cols, ones)
        limited = ~np.isnan(absorption[s_of])
        if limited.any():
            present, row_of = np.unique(s_of[limited], return_inverse=True)
            add("absorb", pd.DataFrame({"state": present}),
                [f"absorb[{iso3[s]}]" for s in present], LE, absorption[present], row_of,
                all_cols[limited], ones[limited])
        present, row_of = np.unique(s_of, return_inverse=True)
        add("state_share", pd.DataFrame({"state": present}),
            [f"state_share[{iso3[s]}]" for s in present], LE, np.full(len(present), kappa_cap),
            row_of, all_cols, ones)
        pair = f_of * len(states) + s_of
        present, row_of = np.unique(pair, return_inverse=True)
        pf, ps = present // len(states), present % len(states)
        add("source_state", pd.DataFrame({"source": pf, "state": ps}),
            [f"source_state[{ids[f]},{iso3[s]}]" for f, s in zip(pf, ps, strict=True)], LE,
            rho[pf] * pledge[pf], row_of, all_cols, ones)
    thematic = {t: float(v) for t, v in sorted(policy.thematic.min_share.items()) if v > 0}
    if len(f_of) and thematic:
        targets = list(thematic)
        theta = np.array(list(thematic.values()))
        coef = (gap_target[g_of][None, :] == np.array(targets, dtype=object)[:, None]) \
            - theta[:, None]
        row_of, cols = np.nonzero(coef)
        add("thematic", pd.DataFrame({"target": targets}), [f"thematic[{t}]" for t in targets],
            GE, np.zeros(len(targets)), row_of, cols, coef[row_of, cols])
    floor_gaps = np.nonzero(gap_table["in_floor"].to_numpy())[0]
    if len(floor_gaps):
        position = np.full(len(gaps), -1)
        position[floor_gaps] = np.arange(len(floor_gaps))
        cols = np.nonzero(position[g_of] >= 0)[0]
        add("floor", pd.DataFrame({"gap": floor_gaps}),
            [f"floor[{gap_iso3[g]},{gap_target[g]}]" for g in floor_gaps], GE,
            np.zeros(len(floor_gaps)), position[g_of[cols]], cols, np.ones(len(cols)))

    rows = (pd.concat(blocks, ignore_index=True) if blocks else
            pd.DataFrame(columns=["name", "family", "sense", "rhs_usd"]))
    for key in ("source", "gap", "state", "target"):
        if key not in rows:
            rows[key] = np.nan

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return Rules(data, policy, gap_table, triples, rows, joined(rows_e, int),
                 joined(cols_e, int), joined(coefs_e, float), thematic)


def _triple_weights(states: pd.DataFrame, sources: pd.DataFrame, policy: Policy,
                    f_of: np.ndarray, g_of: np.ndarray, s_of: np.ndarray,
                    gap_target: np.ndarray, income: np.ndarray) -> np.ndarray:
    """w = Wt[t] Wi[income] Wr(s) - lambda (1 - g_f) burden[income] (SPEC 4)."""
    role = policy.weights.role
    role_weight = np.array([max((float(getattr(role, r)) for r in roles), default=1.0)
                            for roles in states["roles"]])
    target_weight = np.array([policy.weights.target.get(t, 1.0) for t in gap_target])
    income_weight = np.array([policy.weights.income.get(g) for g in income])
    burden = np.array([policy.loans.burden.get(g) for g in income])
    is_loan = (sources["instrument"] == "loan").to_numpy()
    grant_element = np.nan_to_num(sources["grant_element"].to_numpy(dtype=float), nan=1.0)
    concession_gap = np.where(is_loan, 1.0 - grant_element, 0.0)
    return (target_weight[g_of] * income_weight[g_of] * role_weight[s_of]
            - policy.loans.penalty * concession_gap[f_of] * burden[g_of])


def why_not_eligible(rules: Rules, source_id: str, iso3: str, target: str) -> str | None:
    """Why (source, State, target) may get nothing under SPEC 2's eligibility, or None."""
    policy = rules.policy
    sources, states, fundable = rules.lookup
    if source_id not in sources.index:
        return f"source {source_id!r} is not in sources.csv"
    if iso3 not in states.index:
        return f"State {iso3!r} is not in states.csv"
    if (iso3, target) not in fundable:
        return f"{iso3} has no gap for target {target} in gaps.csv"
    src, st = sources.loc[source_id], states.loc[iso3]
    if not src["pledge_usd"] > 0:
        return f"{source_id} pledges nothing"
    if not fundable[iso3, target] > 0:
        return (f"the fund covers none of {iso3}'s need (co-financing share for "
                f"{st['income_group']} is {policy.cofinancing.get(st['income_group']):g})")
    if pd.notna(st["absorption_usd"]) and float(st["absorption_usd"]) <= 0:
        return f"{iso3} can absorb nothing (absorption_usd = 0)"
    if src["targets"] and target not in src["targets"]:
        return f"earmark: {source_id} funds targets {', '.join(src['targets'])} only"
    if src["regions"] and st["region"] not in src["regions"]:
        return (f"earmark: {source_id} funds regions {', '.join(src['regions'])} only "
                f"({iso3} is in {st['region']})")
    if src["income_groups"] and st["income_group"] not in src["income_groups"]:
        return (f"earmark: {source_id} funds income groups {', '.join(src['income_groups'])} "
                f"only ({iso3} is {st['income_group']})")
    if iso3 in src["exclude_states"]:
        return f"earmark: {source_id} excludes {iso3}"
    if src["instrument"] == "loan" and st["debt_distress"]:
        return f"{source_id} lends, and {iso3} is in debt distress"
    return None


# ---------------------------------------------------------------------------------------
# certify


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


def _usd(value: float) -> str:
    return f"USD {value:,.2f}"


def _parse_numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column.str.strip(), errors="coerce").to_numpy(dtype=float)


def _names(items: Iterable[str], shown: int = 5) -> str:
    items = list(items)
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


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
        amounts = _parse_numbers(table["amount_usd"])
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
            problems = [f"{names[i]}: lhs {_usd(lhs[i])} {'<=' if sense[i] == LE else '>='} "
                        f"rhs {_usd(rhs[i])} fails by {_usd(violation[i])} (tolerance "
                        f"{_usd(tolerance[i])})" for i in bad]
            figure = (f"{len(at)} rows, largest violation {_usd(max(0.0, violation[worst]))}"
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
        problems.extend(f"{names[i]}: allocated {_usd(lhs[i])} < z * U = {_usd(rhs[i])} "
                        f"(short {_usd(rhs[i] - lhs[i])})" for i in bad)
        fundable = rules.floor_fundable()
        coverage = np.where(fundable > 0, lhs[at] / fundable, np.inf)
        self.cert.figures["floor"] = recorded
        self.cert.figures["z_final"] = z_final
        self.cert.figures["largest_violation_usd"] = max(
            self.cert.figures.get("largest_violation_usd", 0.0), float(short.max()))
        figure = (f"{len(at)} gaps in G; z = {z_final:.10g} >= floor {recorded:.10g} - "
                  f"{equity.tolerance:g}; lowest coverage {coverage.min():.10g}; largest "
                  f"shortfall {_usd(max(0.0, float(short.max())))}"
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
            problems.append(f"{label}: {len(missing)} rule rows missing: {_names(missing)}")
        if extra:
            problems.append(f"{label}: {len(extra)} rows that are no rule of these inputs: "
                            f"{_names(extra)}")
        position = np.array([where.get(n, -1) for n in names], dtype=int)
        found = position >= 0
        lhs, rhs = self.readable(z)
        got = {c: np.full(len(names), np.nan) for c in ("lhs", "rhs", "slack", "dual")}
        for c in got:
            values = _parse_numbers(table[c])
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
            problems.append(f"primal sum w x = {_usd(primal)}, dual sum rhs y + z term = "
                            f"{_usd(dual)}: gap {_usd(gap)}")
        if not rigorous - primal <= gap_tol:
            problems.append(f"with its infeasibilities priced in, the dual bounds the objective "
                            f"by {_usd(rigorous)}, {_usd(rigorous - primal)} above the allocation")
        if weighted is None or not abs(float(weighted) - primal) <= gap_tol:
            problems.append(f"manifest weighted {weighted} is not the allocation's sum w x "
                            f"{primal:.2f}")
        relative = abs(gap) / max(abs(primal), 1.0)
        self.cert.figures.update(stage2_primal=primal, stage2_dual=dual, stage2_gap=gap,
                                 stage2_gap_relative=relative, stage2_bound=rigorous)
        self.add(Check("stage 2 duality gap", not problems,
                       f"sum w x {_usd(primal)}, dual objective {_usd(dual)}, gap {_usd(gap)} "
                       f"({relative:.2e} relative); certified bound {_usd(rigorous)}",
                       f"1e-6 relative + 0.01 USD x max|w| per allocation row = {_usd(gap_tol)}",
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
                got[at >= 0] = _parse_numbers(cov[column])[at[at >= 0]]
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


# ---------------------------------------------------------------------------------------
# verify

COMPARED = ("allocations.csv", "coverage.csv", "manifest.json")


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
        table = pd.read_csv(path, dtype={"source_id": str, "iso3": str, "target": str},
                            keep_default_na=False)
        return table.set_index(["source_id", "iso3", "target"])["amount_usd"].astype(float)

    both = pd.concat([read(a).rename("recorded"), read(b).rename("resolved")], axis=1)
    both = both.fillna(0.0)
    both["difference"] = both["resolved"] - both["recorded"]
    changed = both[both["difference"].abs() >= 0.005]
    return changed.reindex(changed["difference"].abs().sort_values(ascending=False,
                                                                  kind="stable").index)


def _agree(a: float | None, b: float | None, absolute: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(absolute, 1e-6 * max(abs(a), abs(b)))


def verify(folder: Path | str, solver: str | None = None) -> Verification:
    """Solve a run's copied inputs and policy again and compare with what it recorded.

    With the recorded solver the run must come back byte-identical (allocations.csv,
    coverage.csv, manifest.json); with another solver, floor and weighted must agree
    within 1e-6 relative, and differing allocations are an alternative optimum.
    """
    from . import api

    run = open_run(folder)
    manifest = run.manifest
    recorded_solver = str(manifest.get("solver", {}).get("name", "highs"))
    chosen = solver or _solver_argument(recorded_solver)
    same_solver = _solver_argument(recorded_solver) == chosen
    model_path = str(manifest.get("model", {}).get("path", "policy.toml"))
    lines = [f"verify {run.path}: run {manifest.get('run_id')} recorded with "
             f"{recorded_solver}; solving its copied inputs and policy again with {chosen}"]
    provenance = _Certifier(run)
    provenance.check_hashes()
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
        loaded = api.Loaded(data, policy_file, model_path)
        try:
            again = api.solve_loaded(loaded, chosen)
        except InfeasibleError as exc:
            lines.append(f"FAIL the re-solve is infeasible ({exc.diagnosis.reason}), the run "
                         f"recorded status {manifest.get('status')!r}")
            return Verification(False, lines)
        out = Path(scratch) / "run"
        api.write(again, out)
        identical = {name: (run.path / name).is_file()
                     and (run.path / name).read_bytes() == (out / name).read_bytes()
                     for name in COMPARED}
        new_manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        for name, same in identical.items():
            lines.append(f"{'same' if same else 'DIFFERS'} {name}")
        if not identical["manifest.json"]:
            before, after = _flatten(manifest), _flatten(new_manifest)
            lines.extend(f"       {key}: {_short(before.get(key))} -> {_short(after.get(key))}"
                         for key in sorted(set(before) | set(after))
                         if before.get(key) != after.get(key))
        old_obj, new_obj = manifest.get("objective", {}), new_manifest["objective"]
        floor_ok = _agree(old_obj.get("floor"), new_obj["floor"], 1e-9)
        weighted_ok = _agree(old_obj.get("weighted"), new_obj["weighted"], 0.01)
        lines.append(f"{'agree' if floor_ok else 'DIFFER'} floor: recorded "
                     f"{old_obj.get('floor')}, re-solved {new_obj['floor']}")
        lines.append(f"{'agree' if weighted_ok else 'DIFFER'} weighted: recorded "
                     f"{old_obj.get('weighted')}, re-solved {new_obj['weighted']} "
                     "[tolerance: 1e-6 relative]")
        changed = _allocation_differences(run.path / "allocations.csv", out / "allocations.csv") \
            if (run.path / "allocations.csv").is_file() else pd.DataFrame()
        if len(changed):
            kind = ("an alternative optimum (same floor and weighted objective)"
                    if floor_ok and weighted_ok else "a different allocation")
            lines.append(f"allocations: {len(changed)} rows differ, {kind}; largest:")
            for key, row in changed.head(10).iterrows():
                lines.append(f"       {','.join(key)}: {row['recorded']:,.2f} -> "
                             f"{row['resolved']:,.2f} ({row['difference']:+,.2f})")
            if floor_ok and weighted_ok:
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
            ok = floor_ok and weighted_ok
            verdict = ("equivalent: floor and weighted objective agree" if ok else
                       "NOT equivalent: the objectives differ")
        lines.append(verdict)
    return Verification(ok, lines)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------------------------------
# explain


@dataclass
class GapLine:
    """One gap of the State: its need and what it got."""

    target: str
    need_usd: float
    fundable_usd: float
    allocated_usd: float
    coverage: float
    eligible: bool


@dataclass
class RuleLine:
    """A binding row of constraints.csv that involves the State, in words."""

    name: str
    dual: float
    slack_usd: float
    words: str


@dataclass
class Explanation:
    """Why a State got what it got (`gcm-fund explain`)."""

    iso3: str
    name: str
    income_group: str
    gaps: list[GapLine]
    by_source: dict[str, dict[str, float]]
    rules: list[RuleLine]
    nothing: list[tuple[str, str]]

    @property
    def allocated_usd(self) -> float:
        """All the State got (over the targets shown)."""
        return sum(g.allocated_usd for g in self.gaps)

    def lines(self) -> list[str]:
        """What `explain` prints."""
        out = [f"{self.iso3} ({self.name}, {self.income_group}): allocated "
               f"{_usd(self.allocated_usd)} of {_usd(sum(g.fundable_usd for g in self.gaps))} "
               "fundable", "", "gaps:"]
        for g in self.gaps:
            cov = "-" if math.isnan(g.coverage) else f"{g.coverage:.2%}"
            out.append(f"  {g.target:<6} need {_usd(g.need_usd)}, fundable {_usd(g.fundable_usd)}"
                       f", allocated {_usd(g.allocated_usd)}, coverage {cov}"
                       + ("" if g.eligible else " (no source may fund it)"))
        out += ["", "sources:"]
        if not self.by_source:
            out.append("  none")
        for sid, targets in self.by_source.items():
            parts = ", ".join(f"{t} {_usd(v)}" for t, v in targets.items())
            out.append(f"  {sid}: {_usd(sum(targets.values()))} ({parts})")
        out += ["", "rules that bound it:"]
        if not self.rules:
            out.append("  none: no rule involving it has a non-zero dual")
        out.extend(f"  {r.name} (dual {r.dual:.6g}): {r.words}" for r in self.rules)
        out += ["", "sources that gave it nothing:"]
        if not self.nothing:
            out.append("  none")
        out.extend(f"  {sid}: {why}" for sid, why in self.nothing)
        return out


_DUAL_NOISE = 1e-9


def _dual_words(family: str, dual: float, row: pd.Series, rules: Rules, iso3: str) -> str:
    per = f"{abs(dual):.4g}"
    if family == "gap":
        return (f"the gap is fully funded: one more USD of fundable need would add {per} "
                "to the objective")
    if family == "absorb":
        return (f"{iso3} gets all it can absorb: one more USD of absorption capacity would "
                f"add {per} to the objective")
    if family == "state_share":
        return (f"{iso3} is at the cap of {rules.policy.limits.max_state_share:g} of all pledges "
                f"(max_state_share): one more USD of cap would add {per} to the objective")
    if family == "source_state":
        sid = row["name"].split("[", 1)[1].split(",", 1)[0]
        return (f"{sid} gives {iso3} the most it may (its max_state_share of its pledge): one "
                f"more USD of that cap would add {per} to the objective")
    if family == "floor":
        return (f"the gap is held at the floor: each USD it must get to keep the floor costs "
                f"the objective {per} (the money would weigh more elsewhere)")
    return f"one more USD of right-hand side would change the objective by {dual:.4g}"


def explain(folder: Path | str, iso3: str, target: str | None = None) -> Explanation:
    """Why State `iso3` got what it got in a run (optionally for one target only)."""
    run = open_run(folder)
    data = load_inputs(run.inputs)
    policy = load_policy(run.policy, targets=set(data.gaps["target"])).policy
    rules = rebuild(data, policy)
    states = data.states.set_index("iso3")
    if iso3 not in states.index:
        raise UsageError(f"{iso3}: not a State of this run"
                         f"{did_you_mean(iso3, list(states.index))}")
    gaps = rules.gaps[rules.gaps["iso3"] == iso3]
    if target is not None:
        if target not in set(gaps["target"]):
            raise UsageError(f"{iso3} has no gap for target {target} in this run")
        gaps = gaps[gaps["target"] == target]
    alloc = run.table("allocations.csv")
    alloc["amount_usd"] = alloc["amount_usd"].astype(float)
    mine = alloc[(alloc["iso3"] == iso3) & alloc["target"].isin(set(gaps["target"]))]
    got = mine.groupby("target")["amount_usd"].sum()
    lines = []
    for g in gaps.itertuples():
        allocated = round(float(got.get(g.target, 0.0)), 2)
        lines.append(GapLine(g.target, g.need_usd, g.fundable_usd, allocated,
                             allocated / g.fundable_usd if g.fundable_usd > 0 else math.nan,
                             bool(g.eligible)))
    by_source: dict[str, dict[str, float]] = {}
    for r in mine.itertuples():
        by_source.setdefault(r.source_id, {})[r.target] = float(r.amount_usd)
    by_source = dict(sorted(by_source.items(), key=lambda kv: -sum(kv[1].values())))

    constraints = run.table("constraints.csv")
    for column in ("lhs", "rhs", "slack", "dual"):
        constraints[column] = pd.to_numeric(constraints[column], errors="coerce")
    family = constraints["family"]
    key = constraints["name"].str.extract(r"\[(.*)\]")[0].fillna("")
    parts = key.str.split(",")
    first, second = parts.str[0], parts.str[1].fillna("")
    targets = set(gaps["target"])
    involves = (((family == "gap") | (family == "floor")) & (first == iso3)
                & second.isin(targets)) \
        | (family.isin(["absorb", "state_share"]) & (first == iso3)) \
        | ((family == "source_state") & (second == iso3))
    binding = constraints[involves & (constraints["dual"].abs() > _DUAL_NOISE)]
    binding = binding.reindex(binding["dual"].abs().sort_values(ascending=False,
                                                                kind="stable").index)
    rule_lines = [RuleLine(r["name"], float(r["dual"]), float(r["slack"]),
                           _dual_words(r["family"], float(r["dual"]), r, rules, iso3))
                  for _, r in binding.iterrows()]

    nothing = _gave_nothing(rules, constraints, alloc, iso3, sorted(targets), set(by_source))
    st = states.loc[iso3]
    return Explanation(iso3, str(st["name"]), str(st["income_group"]), lines, by_source,
                       rule_lines, nothing)


def _gave_nothing(rules: Rules, constraints: pd.DataFrame, alloc: pd.DataFrame, iso3: str,
                  targets: list[str], givers: set[str]) -> list[tuple[str, str]]:
    """Each source that gave the State nothing (over `targets`), with the reason.

    Reasons come from the rows' slack and the weights where the money went, not from the
    duals alone: at a degenerate optimum a budget's value may be split among several rows.
    """
    by_name = constraints.set_index("name")
    slack = by_name["slack"].to_dict()
    rhs = by_name["rhs"].to_dict()
    triples = rules.triples
    keys = ["source_id", "iso3", "target"]
    used = alloc.merge(triples[[*keys, "weight"]], on=keys, how="left")

    def tight(name: str) -> bool:
        # SPEC 5's tolerance, taking every eligible triple of the row as written
        return name in slack and slack[name] <= ROW_ALLOWANCE_USD * len(triples) \
            + RELATIVE_ALLOWANCE * max(abs(rhs.get(name, 0.0)), RELATIVE_FLOOR_USD)

    out = []
    for sid in rules.data.sources["source_id"]:
        if sid in givers:
            continue
        reasons = [why_not_eligible(rules, sid, iso3, t) for t in targets]
        open_targets = [t for t, why in zip(targets, reasons, strict=True) if why is None]
        if not open_targets:
            distinct = list(dict.fromkeys(r for r in reasons if r))
            out.append((sid, "not eligible: " + "; ".join(distinct)))
            continue
        mask = (triples["source_id"] == sid) & (triples["iso3"] == iso3) \
            & triples["target"].isin(open_targets)
        here = float(triples.loc[mask, "weight"].max())
        why: list[str] = []
        if tight(f"budget[{sid}]"):
            mine = used[used["source_id"] == sid]
            states = mine.groupby("iso3")["amount_usd"].sum().sort_values(ascending=False,
                                                                          kind="stable")
            shown = ", ".join(f"{k} {_usd(v)}" for k, v in states.head(3).items())
            more = f" and {len(states) - 3} more" if len(states) > 3 else ""
            low, high = float(mine["weight"].min()), float(mine["weight"].max())
            worth = f"{low:.4g}" if math.isclose(low, high) else f"{low:.4g} to {high:.4g}"
            why.append(f"budget exhausted: all {_usd(rhs.get(f'budget[{sid}]', 0.0))} went "
                       f"elsewhere ({shown}{more}) at weight {worth} per USD, against "
                       f"{here:.4g} here")
        for name, words in ((f"state_share[{iso3}]", "cap reached: the State has its share "
                             "of all pledges (max_state_share)"),
                            (f"absorb[{iso3}]", "cap reached: the State absorbs all it can")):
            if tight(name):
                why.append(words)
        full = [t for t in open_targets if tight(f"gap[{iso3},{t}]")]
        if full:
            why.append(f"gap{'s' if len(full) > 1 else ''} {', '.join(full)} already fully "
                       "funded by others")
        out.append((sid, "; ".join(why) or f"eligible (weight {here:.4g} here), but its money "
                    "went elsewhere at an optimum as good"))
    return out


# ---------------------------------------------------------------------------------------
# diff


def _flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b."10.7"': value}: nested keys joined by '.', a key holding a '.' quoted."""
    if isinstance(document, dict):
        flat: dict[str, Any] = {}
        for key, value in document.items():
            part = f'"{key}"' if "." in str(key) else str(key)
            flat.update(_flatten(value, f"{prefix}.{part}" if prefix else part))
        return flat
    return {prefix: document}


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
    return [f"  {k}: {_usd(r.a)} -> {_usd(r.b)} ({r.delta:+,.2f})" for k, r in both.iterrows()]


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
            fa = _flatten(load_policy(a.policy).policy.model_dump())
            fb = _flatten(load_policy(b.policy).policy.model_dump())
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
        if _agree(va, vb, absolute):
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
