"""Properties of random small instances, checked from the written files alone.

The reference here reads the input CSV files and the policy with the standard library and
restates SPEC sections 2-4 with plain loops and dicts: eligibility, U, w, the floor set G
and every rule. It never imports gcm_fund's model, so an error in model.py cannot hide
itself. Properties:

1. every rule of SPEC section 4 holds on allocations.csv within the SPEC section 5
   tolerance, every row is an eligible triple, amounts have two decimals and rows are
   sorted; coverage.csv, sources_summary.csv and constraints.csv agree with it;
2. CBC and HiGHS agree on feasibility, `floor` and `weighted`;
3. scipy's linprog, on a matrix built here from the CSV tables, agrees too: stage 1 max z,
   stage 2 with z >= max(z_min, z* - tolerance); `weighted` must lie between the optimum
   with z >= z* and the one with z >= z* - tolerance, widened by 1e-6 relative.

Instances may be infeasible; then every solver must say so.
"""

from __future__ import annotations

import csv
import math
import re
import tempfile
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import RunFiles, allocate_and_read, gap, source, state, toml_text, write_case
from hypothesis import event, given
from hypothesis import strategies as st
from scipy.optimize import linprog

from gcm_fund.errors import InfeasibleError

SOLVERS = ["highs", "cbc"]
INCOME = ("LIC", "LMIC", "UMIC", "HIC")
ROLES = ("origin", "transit", "destination")
REGIONS = ("Africa", "Asia", "Europe")
TARGET_POOL = ("10.7", "8.8", "10.c", "16.2")  # plain string order: 10.7 10.c 16.2 8.8
ISO_POOL = ("KEN", "MEX", "BGD", "AFG", "TUR", "NER")
SOURCE_POOL = ("wb_ida", "wb-ida", "don1", "don10", "don2", "zz")  # '-' < '1' < '_' < 'z'
AMOUNT = re.compile(r"^\d+\.\d\d$")
REL = 1e-6
SCALE = 1e6  # the reference LP works in USD millions

# ---------------------------------------------------------------------------------------
# Random instances


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    """A random small instance: 1-6 States, 1-4 targets, 1-5 sources, a random policy."""
    n_states = draw(st.sampled_from([1, 2, 3, 4, 4, 5, 5, 6, 6]))
    iso3s = draw(st.permutations(ISO_POOL))[:n_states]
    targets = list(TARGET_POOL[: draw(st.sampled_from([1, 2, 2, 3, 3, 4]))])
    amount = st.integers(1, 300).map(lambda k: k * 1e4)

    states = []
    for iso3 in iso3s:
        extra: dict[str, Any] = {
            "roles": draw(st.lists(st.sampled_from(ROLES), max_size=3, unique=True)),
            "ldc": draw(st.booleans()),
            "debt_distress": draw(sometimes(st.just(True), st.just(False), 0.2)),
            "eligible": draw(sometimes(st.just(False), st.sampled_from([None, True]), 0.1)),
            "absorption_usd": draw(sometimes(st.just(0.0), sometimes(amount, st.none(), 0.4),
                                              0.1)),
        }
        income = draw(st.sampled_from(["LIC", "LIC", "LMIC", "LMIC", "UMIC", "HIC"]))
        states.append(state(iso3, income, draw(st.sampled_from(REGIONS)), **extra))

    pairs = [(s, t) for s in iso3s for t in targets]
    chosen = [draw(sometimes(st.just(False), st.just(True), 0.3)) for _ in pairs]
    if not any(chosen):
        chosen[0] = True
    gaps = [gap(s, t, draw(amount)) for (s, t), keep in zip(pairs, chosen, strict=True)
            if keep]

    sources = []
    n_sources = draw(st.sampled_from([1, 2, 3, 3, 4, 4, 5]))
    for source_id in draw(st.permutations(SOURCE_POOL))[:n_sources]:
        loan = draw(st.booleans())
        extra = {
            "targets": draw(earmark(TARGET_POOL)),
            "regions": draw(earmark(REGIONS)),
            "income_groups": draw(earmark(INCOME)),
            "exclude_states": draw(sometimes(
                st.lists(st.sampled_from(iso3s), min_size=1, max_size=2, unique=True),
                st.just([]), 0.2)),
            "max_state_share": draw(st.sampled_from([None, None, 0.25, 0.5, 1.0])),
        }
        if loan:
            extra["grant_element"] = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
        pledge = draw(sometimes(st.just(0.0), st.integers(1, 400).map(lambda k: k * 1e4),
                                share=0.1))
        sources.append(source(source_id, pledge, "loan" if loan else "grant", **extra))

    return {"states": states, "gaps": gaps, "sources": sources,
            "policy": draw(policies(targets))}


def sometimes(special: st.SearchStrategy[Any], usual: st.SearchStrategy[Any],
              share: float = 0.3) -> st.SearchStrategy[Any]:
    """`special` for about `share` of the draws, else `usual` (which shrinking prefers)."""

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        return draw(special if draw(st.integers(0, 99)) >= 100 - share * 100 else usual)

    return pick()


def earmark(pool: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """No earmark (three times in four) or a non-empty subset of the pool."""
    subset = st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True)
    return sometimes(subset, st.just([]), share=0.25)


@st.composite
def policies(draw: st.DrawFn, targets: list[str]) -> dict[str, Any]:
    """A random policy as a nested dict (keys left out keep their defaults)."""
    policy: dict[str, Any] = {}
    share = st.sampled_from([0.0, 0.5, 0.75, 0.75, 1.0, 1.0])
    weight = st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0])
    if draw(st.booleans()):
        policy["cofinancing"] = draw(st.dictionaries(st.sampled_from(INCOME), share))
    policy["weights"] = {
        "target": draw(st.dictionaries(st.sampled_from(targets), weight)),
        "income": draw(st.dictionaries(st.sampled_from(INCOME), weight)),
        "role": draw(st.dictionaries(st.sampled_from(ROLES), weight)),
    }
    policy["loans"] = {"penalty": draw(st.sampled_from([0.0, 0.5, 3.0]))}
    if draw(st.booleans()):
        policy["loans"]["burden"] = draw(st.dictionaries(st.sampled_from(INCOME),
                                                         st.sampled_from([0.0, 0.5, 2.0])))
    policy["limits"] = {
        "max_state_share": draw(st.sampled_from([0.3, 0.6, 1.0])),
        "max_source_state_share": draw(st.sampled_from([0.5, 1.0])),
    }
    policy["thematic"] = {"min_share": draw(st.dictionaries(
        st.sampled_from(targets), st.sampled_from([0.0, 0.1, 0.25, 0.4]), max_size=2))}
    # These properties are about section 4's weighted stage 2 (zero weights included).
    policy["allocation"] = {"method": "weighted"}
    policy["equity"] = {
        "group": draw(st.sampled_from(["all", "all", "ldc", "LIC", "LMIC"])),
        "maximize": draw(st.sampled_from([True, True, False])),
        "min_floor": draw(st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.05, 0.3])),
        "tolerance": draw(st.sampled_from([1e-6, 1e-3])),
    }
    return policy


# ---------------------------------------------------------------------------------------
# The reference: SPEC sections 2-4 restated from the CSV files, without gcm_fund


def _items(cell: str) -> list[str]:
    out: list[str] = []
    for item in cell.split(";"):
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def _flag(cell: str) -> bool:
    return cell.strip().lower() in {"true", "yes", "1"}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "cofinancing": {"LIC": 1.0, "LMIC": 0.75, "UMIC": 0.5, "HIC": 0.0},
    "limits": {"max_state_share": 1.0, "max_source_state_share": 1.0},
    "equity": {"group": "all", "maximize": True, "min_floor": 0.0, "tolerance": 1e-6},
}
BURDEN_DEFAULTS = {"LIC": 1.0, "LMIC": 0.5, "UMIC": 0.25, "HIC": 0.0}

Triple = tuple[str, str, str]


@dataclass
class Reference:
    """The instance as SPEC section 4 defines its LP, in USD."""

    pledge: dict[str, float]
    rho: dict[str, float]
    kappa: float
    absorption: dict[str, float]  # only States with a limit
    fundable: dict[tuple[str, str], float]  # U of every gap
    triples: list[Triple]  # eligible, sorted
    weight: dict[Triple, float]
    theta: dict[str, float]  # targets with a share > 0
    floor_set: list[tuple[str, str]]  # G
    maximize: bool
    min_floor: float
    tolerance: float
    lends: frozenset[str] = frozenset()  # the loan sources (SPEC 4b's stage 1b leaves them out)

    @property
    def structurally_infeasible(self) -> bool:
        """A thematic share > 0 on a target no triple may fund (SPEC section 4)."""
        funded = {t for _, _, t in self.triples}
        return any(t not in funded for t in self.theta)

    def row_names(self) -> set[str]:
        """The rows that have a variable, named as constraints.csv names them."""
        names: set[str] = set()
        for f, s, t in self.triples:
            names |= {f"budget[{f}]", f"gap[{s},{t}]", f"state_share[{s}]",
                      f"source_state[{f},{s}]"}
            if s in self.absorption:
                names.add(f"absorb[{s}]")
        names |= {f"thematic[{t}]" for t in self.theta}
        names |= {f"floor[{s},{t}]" for s, t in self.floor_set}
        return names


def reference(inputs: Path, policy_path: Path) -> Reference:
    """Read the input files and the policy and restate the LP of SPEC section 4."""
    states = {r["iso3"]: r for r in _read(inputs / "states.csv")}
    gaps = _read(inputs / "gaps.csv")
    sources = _read(inputs / "sources.csv")
    document = tomllib.loads(policy_path.read_text(encoding="utf-8"))

    def table(name: str) -> dict[str, Any]:
        return {**POLICY_DEFAULTS.get(name, {}), **document.get(name, {})}

    cofinancing = table("cofinancing")
    limits = table("limits")
    equity = table("equity")
    weights = document.get("weights", {})
    target_weight = weights.get("target", {})
    income_weight = weights.get("income", {})
    role_weight = weights.get("role", {})
    loans = document.get("loans", {})
    penalty = float(loans.get("penalty", 0.0))
    burden = {**BURDEN_DEFAULTS, **loans.get("burden", {})}
    theta = {t: float(v) for t, v in document.get("thematic", {}).get("min_share", {}).items()
             if v > 0}

    def wr(iso3: str) -> float:
        roles = _items(states[iso3].get("roles", ""))
        return max((float(role_weight.get(r, 1.0)) for r in roles), default=1.0)

    absorption = {s: float(r["absorption_usd"]) for s, r in states.items()
                  if r.get("absorption_usd", "") != ""}
    fundable = {(g["iso3"], g["target"]): cofinancing[states[g["iso3"]]["income_group"]]
                * float(g["need_usd"]) for g in gaps}
    pledge = {r["source_id"]: float(r["pledge_usd"]) for r in sources}
    rho = {r["source_id"]: float(r["max_state_share"]) if r.get("max_state_share", "")
           else float(limits["max_source_state_share"]) for r in sources}

    triples: list[Triple] = []
    weight: dict[Triple, float] = {}
    for src in sources:
        f = src["source_id"]
        loan = src["instrument"] == "loan"
        grant_element = float(src["grant_element"]) if src.get("grant_element", "") else 1.0
        for (s, t), u in fundable.items():
            st_row = states[s]
            income = st_row["income_group"]
            ok = (u > 0 and pledge[f] > 0 and absorption.get(s, 1.0) > 0
                  and (not _items(src.get("targets", "")) or t in _items(src["targets"]))
                  and (not _items(src.get("regions", ""))
                       or st_row["region"] in _items(src["regions"]))
                  and (not _items(src.get("income_groups", ""))
                       or income in _items(src["income_groups"]))
                  and s not in _items(src.get("exclude_states", ""))
                  and not (loan and _flag(st_row.get("debt_distress", "")))
                  and st_row.get("eligible", "").lower() not in {"false", "no", "0"})
            if not ok:
                continue
            triples.append((f, s, t))
            weight[(f, s, t)] = (
                float(target_weight.get(t, 1.0)) * float(income_weight.get(income, 1.0))
                * wr(s) - penalty * ((1 - grant_element) if loan else 0.0) * burden[income]
            )
    triples.sort()

    group = equity["group"]
    funded_gaps = {(s, t) for _, s, t in triples}

    def in_group(iso3: str) -> bool:
        if group == "all":
            return True
        if group == "ldc":
            return _flag(states[iso3].get("ldc", ""))
        return bool(states[iso3]["income_group"] == group)

    floor_set = sorted(g for g in funded_gaps if in_group(g[0]))
    return Reference(
        pledge=pledge, rho=rho, kappa=float(limits["max_state_share"]), absorption=absorption,
        fundable=fundable, triples=triples, weight=weight, theta=theta, floor_set=floor_set,
        maximize=bool(equity["maximize"]), min_floor=float(equity["min_floor"]),
        tolerance=float(equity["tolerance"]),
        lends=frozenset(r["source_id"] for r in sources if r["instrument"] == "loan"))


# ---------------------------------------------------------------------------------------
# Property 1: the rules hold on the written files


def allowed(n_rows: int, lhs: float, rhs: float) -> float:
    """SPEC section 5: 0.01 USD per allocation row in the rule + 1e-7 of the magnitude."""
    return 0.01 * n_rows + 1e-7 * max(abs(lhs), abs(rhs), 1e6)


def check_allocations_file(ref: Reference, run: RunFiles) -> dict[Triple, float]:
    """allocations.csv: header, formats, order, eligibility; returns the amounts."""
    with open(run.folder / "allocations.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["source_id", "iso3", "target", "amount_usd"]
    keys = [(r["source_id"], r["iso3"], r["target"]) for r in run.allocations]
    assert keys == sorted(keys), "rows are not sorted by source_id, iso3, target"
    assert len(set(keys)) == len(keys), "a triple is written twice"
    eligible = set(ref.triples)
    amounts: dict[Triple, float] = {}
    for key, row in zip(keys, run.allocations, strict=True):
        assert AMOUNT.match(row["amount_usd"]), row
        assert float(row["amount_usd"]) > 0, row
        assert key in eligible, f"{key} is not an eligible triple"
        amounts[key] = float(row["amount_usd"])
    return amounts


def rule_violations(ref: Reference, amounts: dict[Triple, float], floor: float | None
                    ) -> list[str]:
    """Every rule of SPEC section 4 recomputed on the written amounts; what fails."""
    failures: list[str] = []

    def at_most(name: str, rows: list[float], rhs: float) -> None:
        lhs = sum(rows)
        if lhs > rhs + allowed(len(rows), lhs, rhs):
            failures.append(f"{name}: {lhs:.2f} > {rhs:.2f}")

    def at_least(name: str, rows: list[float], rhs: float, n_rows: int) -> None:
        lhs = sum(rows)
        if lhs < rhs - allowed(n_rows, lhs, rhs):
            failures.append(f"{name}: {lhs:.2f} < {rhs:.2f}")

    by: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (f, s, t), amount in amounts.items():
        by["budget"][f].append(amount)
        by["gap"][(s, t)].append(amount)
        by["state"][s].append(amount)
        by["source_state"][(f, s)].append(amount)
        by["target"][t].append(amount)
    total = sum(amounts.values())
    for f, b in ref.pledge.items():
        at_most(f"budget[{f}]", by["budget"][f], b)
    for (s, t), u in ref.fundable.items():
        at_most(f"gap[{s},{t}]", by["gap"][(s, t)], u)
    for s, limit in ref.absorption.items():
        at_most(f"absorb[{s}]", by["state"][s], limit)
    for s in {s for _, s, _ in ref.triples}:
        at_most(f"state_share[{s}]", by["state"][s], ref.kappa * sum(ref.pledge.values()))
    for (f, s), rows in by["source_state"].items():
        at_most(f"source_state[{f},{s}]", rows, ref.rho[f] * ref.pledge[f])
    for t, share in ref.theta.items():
        at_least(f"thematic[{t}]", by["target"][t], share * total, len(amounts))

    if not ref.floor_set:
        if floor is not None:
            failures.append(f"floor is {floor}, expected null: G is empty")
        return failures
    if floor is None:
        return [*failures, "floor is null, but G is not empty"]
    if ref.maximize:
        z_low = max(ref.min_floor, floor - ref.tolerance)
        if not ref.min_floor - 1e-9 <= floor <= 1 + 1e-9:
            failures.append(f"floor {floor} outside [z_min, 1]")
    else:
        z_low = ref.min_floor
        if floor != ref.min_floor:
            failures.append(f"floor {floor}, expected z_min = {ref.min_floor}")
    lowest = math.inf
    for s, t in ref.floor_set:
        rows = by["gap"][(s, t)]
        u = ref.fundable[(s, t)]
        at_least(f"floor[{s},{t}]", rows, z_low * u, len(rows))
        lowest = min(lowest, (sum(rows) - allowed(len(rows), sum(rows), u)) / u)
    # z* is the best floor: no allocation, this one included, covers every gap of G more.
    if ref.maximize and lowest > floor + 1e-9:
        failures.append(f"every gap in G is covered at least {lowest:.9f} > z* = {floor}")
    return failures


def check_tables(ref: Reference, run: RunFiles, amounts: dict[Triple, float]) -> None:
    """coverage.csv, sources_summary.csv and constraints.csv against allocations.csv."""
    by_gap: dict[tuple[str, str], float] = defaultdict(float)
    by_source: dict[str, float] = defaultdict(float)
    for (f, s, t), amount in amounts.items():
        by_gap[(s, t)] += amount
        by_source[f] += amount
    funded = {(s, t) for _, s, t in ref.triples}

    assert sorted((r["iso3"], r["target"]) for r in run.coverage) == sorted(ref.fundable)
    for row in run.coverage:
        key = (row["iso3"], row["target"])
        u = ref.fundable[key]
        assert float(row["fundable_usd"]) == pytest.approx(u, abs=0.005), row
        assert float(row["allocated_usd"]) == pytest.approx(by_gap[key], abs=1e-6), row
        assert row["eligible"] == ("true" if key in funded else "false"), row
        if u > 0:
            assert float(row["coverage"]) == pytest.approx(by_gap[key] / u, abs=1e-6), row
        else:
            assert row["coverage"] == "", row

    funding = {f for f, _, _ in ref.triples}
    assert sorted(r["source_id"] for r in run.sources_summary) == sorted(ref.pledge)
    for row in run.sources_summary:
        f = row["source_id"]
        assert float(row["pledge_usd"]) == pytest.approx(ref.pledge[f], abs=0.005), row
        assert float(row["allocated_usd"]) == pytest.approx(by_source[f], abs=1e-6), row
        assert float(row["unallocated_usd"]) == pytest.approx(
            ref.pledge[f] - by_source[f], abs=0.011), row
        if f in funding:
            assert float(row["marginal_value"]) >= 0, row
        else:
            assert row["marginal_value"] == "", row

    assert set(run.row_names()) == ref.row_names()
    assert len(run.row_names()) == len(ref.row_names())
    for row in run.constraints:
        dual = float(row["dual"])
        scale = 1e-6 * max(1.0, max(abs(w) for w in ref.weight.values()))
        if row["family"] in {"thematic", "floor"}:
            assert dual <= scale, row
        else:
            assert dual >= -scale, row


# ---------------------------------------------------------------------------------------
# Property 3's reference optimum: an independent LP for scipy's linprog


LINPROG_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


@dataclass
class Optimum:
    """The reference optimum: z* and the weighted objective at z >= z* and z >= z* - tol."""

    feasible: bool
    floor: float | None = None
    weighted_exact: float = 0.0
    weighted_tolerant: float = 0.0


@dataclass
class ReferenceMatrix:
    """SPEC section 4's rules as `matrix @ [x, z] <= bound`, in USD millions."""

    matrix: np.ndarray
    bound: np.ndarray
    column: dict[Triple, int]  # the column of each eligible triple; z is the last one
    has_z: bool

    @property
    def n_x(self) -> int:
        """Number of allocation columns."""
        return len(self.column)


def reference_matrix(ref: Reference) -> ReferenceMatrix:
    """Every rule of SPEC section 4 as a `<=` row, built row by row from the reference."""
    column = {triple: j for j, triple in enumerate(ref.triples)}
    n_x = len(column)
    has_z = bool(ref.floor_set)
    z = n_x
    n_cols = n_x + (1 if has_z else 0)
    rows: list[dict[int, float]] = []
    rhs: list[float] = []

    def at_most(coefficients: dict[int, float], bound: float) -> None:
        rows.append(coefficients)
        rhs.append(bound)

    for f, b in ref.pledge.items():
        at_most({column[k]: 1.0 for k in ref.triples if k[0] == f}, b / SCALE)
    for (s, t), u in ref.fundable.items():
        at_most({column[k]: 1.0 for k in ref.triples if k[1:] == (s, t)}, u / SCALE)
    for s, limit in ref.absorption.items():
        at_most({column[k]: 1.0 for k in ref.triples if k[1] == s}, limit / SCALE)
    total_pledge = sum(ref.pledge.values())
    for s in {k[1] for k in ref.triples}:
        at_most({column[k]: 1.0 for k in ref.triples if k[1] == s},
                ref.kappa * total_pledge / SCALE)
    for f, s in {k[:2] for k in ref.triples}:
        at_most({column[k]: 1.0 for k in ref.triples if k[:2] == (f, s)},
                ref.rho[f] * ref.pledge[f] / SCALE)
    for t, share in ref.theta.items():
        # sum_t x >= theta * sum x, as theta * sum x - sum_t x <= 0
        at_most({column[k]: share - (1.0 if k[2] == t else 0.0) for k in ref.triples}, 0.0)
    for s, t in ref.floor_set:
        # sum_f x >= z U, as U z - sum_f x <= 0
        coefficients = {column[k]: -1.0 for k in ref.triples if k[1:] == (s, t)}
        coefficients[z] = ref.fundable[(s, t)] / SCALE
        at_most(coefficients, 0.0)
    matrix = np.zeros((len(rows), n_cols))
    for i, coefficients in enumerate(rows):
        for j, value in coefficients.items():
            matrix[i, j] = value
    return ReferenceMatrix(matrix, np.array(rhs), column, has_z)


def reference_optimum(ref: Reference) -> Optimum:
    """Stage 1 and stage 2 of SPEC section 4 with linprog, the matrix built row by row."""
    if ref.structurally_infeasible:
        return Optimum(False)
    if not ref.triples:
        return Optimum(True, None)
    rm = reference_matrix(ref)
    matrix, bound, n_x, has_z = rm.matrix, rm.bound, rm.n_x, rm.has_z
    z = n_x
    n_cols = n_x + (1 if has_z else 0)

    def maximise(cost: np.ndarray, z_range: tuple[float, float]) -> Any:
        bounds = [(0.0, None)] * n_x + ([z_range] if has_z else [])
        return linprog(-cost, A_ub=matrix, b_ub=bound, bounds=bounds, method="highs",
                       options=LINPROG_OPTIONS)

    weight = np.array([ref.weight[k] for k in ref.triples] + ([0.0] if has_z else []))
    if not has_z:
        result = maximise(weight, (0.0, 0.0))
        assert result.status == 0, result.message
        return Optimum(True, None, -result.fun * SCALE, -result.fun * SCALE)
    if not ref.maximize:
        result = maximise(weight, (ref.min_floor, ref.min_floor))
        if result.status == 2:
            return Optimum(False)
        assert result.status == 0, result.message
        return Optimum(True, ref.min_floor, -result.fun * SCALE, -result.fun * SCALE)
    level = np.zeros(n_cols)
    level[z] = 1.0
    stage1 = maximise(level, (ref.min_floor, 1.0))
    if stage1.status == 2:
        return Optimum(False)
    assert stage1.status == 0, stage1.message
    z_star = min(1.0, float(stage1.x[z]))
    tolerant = maximise(weight, (max(ref.min_floor, z_star - ref.tolerance), 1.0))
    assert tolerant.status == 0, tolerant.message
    exact = maximise(weight, (z_star, 1.0))
    if exact.status == 2:  # z* found at the edge of feasibility: step back by a hair
        exact = maximise(weight, (z_star - 1e-9, 1.0))
    assert exact.status == 0, exact.message
    return Optimum(True, z_star, -exact.fun * SCALE, -tolerant.fun * SCALE)


def assert_matches_optimum(optimum: Optimum, floor: float | None, weighted: float) -> None:
    """The run's floor is z*, and its weighted objective lies between the optimum with
    z >= z* and the one with z >= z* - tolerance, widened by 1e-6 relative (SPEC 4)."""
    if optimum.floor is None:
        assert floor is None
    else:
        assert floor == pytest.approx(optimum.floor, rel=REL, abs=1e-7)
    low, high = sorted((optimum.weighted_exact, optimum.weighted_tolerant))
    slack = REL * max(abs(low), abs(high)) + 0.01
    assert low - slack <= weighted <= high + slack, f"weighted {weighted} outside [{low}, {high}]"


# ---------------------------------------------------------------------------------------
# The tests


def solve_instance(folder: Path, instance: dict[str, Any], solver: str
                   ) -> tuple[Path, Path, RunFiles | None]:
    """Write the instance under folder and solve it; None when infeasible."""
    inputs, policy = write_case(folder, states=instance["states"], gaps=instance["gaps"],
                                sources=instance["sources"], policy=toml_text(instance["policy"]))
    out = folder / f"run-{solver}"
    try:
        return inputs, policy, allocate_and_read(inputs, policy, out, solver)
    except InfeasibleError:
        assert not out.exists(), "an infeasible run wrote files"
        return inputs, policy, None


def assert_every_rule_holds(run: RunFiles) -> None:
    """Every rule on the written files, restated from the inputs the run folder copied."""
    ref = reference(run.folder / "inputs", run.folder / "policy.toml")
    amounts = check_allocations_file(ref, run)
    assert rule_violations(ref, amounts, run.floor) == []
    check_tables(ref, run, amounts)
    event(f"{len(amounts)} allocation rows")


@given(instance=instances())
def test_every_rule_holds_on_the_written_files(instance):
    # HiGHS here; CBC's files are checked the same way in test_highs_and_cbc_agree, on
    # the CBC run that test solves anyway.
    with tempfile.TemporaryDirectory() as folder:
        _, _, run = solve_instance(Path(folder), instance, "highs")
        if run is None:
            event("infeasible")
            return
        assert_every_rule_holds(run)


@given(instance=instances())
def test_highs_and_cbc_agree(instance):
    """Both solvers give the same optima, and every rule holds on CBC's written files."""
    with tempfile.TemporaryDirectory() as folder:
        _, _, highs = solve_instance(Path(folder) / "highs", instance, "highs")
        _, _, cbc = solve_instance(Path(folder) / "cbc", instance, "cbc")
        assert (highs is None) == (cbc is None), "one solver found the policy infeasible"
        if highs is None or cbc is None:
            event("infeasible")
            return
        assert_every_rule_holds(cbc)
        if highs.floor is None:
            assert cbc.floor is None
        else:
            assert cbc.floor == pytest.approx(highs.floor, rel=REL, abs=1e-7)
        assert cbc.weighted == pytest.approx(highs.weighted, rel=REL, abs=0.01)


@given(instance=instances())
def test_linprog_on_an_independent_matrix_agrees(instance):
    with tempfile.TemporaryDirectory() as folder:
        inputs, policy, run = solve_instance(Path(folder), instance, "highs")
        optimum = reference_optimum(reference(inputs, policy))
        assert optimum.feasible == (run is not None)
        if run is None:
            event("infeasible")
            return
        assert_matches_optimum(optimum, run.floor, run.weighted)


# ---------------------------------------------------------------------------------------
# Badly scaled data


def badly_scaled(factor: float) -> dict[str, Any]:
    """Needs from USD 1e3 to 1e11 in one instance, every amount times `factor`."""
    needs = {("AFG", "10.7"): 1e3, ("BGD", "10.7"): 1e5, ("BGD", "8.8"): 2.5e4,
             ("KEN", "8.8"): 1e7, ("MEX", "10.7"): 1e9, ("NER", "10.7"): 1e11,
             ("NER", "8.8"): 3e10, ("TUR", "8.8"): 7e8}
    return {
        "states": [
            state("AFG", "LIC", "Asia", roles="origin", ldc=True),
            state("BGD", "LMIC", "Asia", roles="origin;transit", ldc=True),
            state("KEN", "LMIC", "Africa", roles="transit", absorption_usd=4e6 * factor),
            state("MEX", "UMIC", "Americas", roles="transit;destination", debt_distress=True),
            state("NER", "LIC", "Africa", roles="origin", ldc=True),
            state("TUR", "UMIC", "Europe", roles="destination"),
        ],
        "gaps": [gap(s, t, need * factor) for (s, t), need in needs.items()],
        "sources": [
            source("big_loan", 2e10 * factor, "loan", grant_element=0.3,
                   regions="Africa;Asia"),
            source("donor", 5e8 * factor, max_state_share=0.5),
            source("small", 3e4 * factor, targets="10.7", kind="private"),
            source("mid", 4e7 * factor, income_groups="UMIC;LMIC"),
        ],
        "policy": {
            "weights": {"target": {"8.8": 1.2}, "income": {"LIC": 1.5},
                        "role": {"transit": 1.3}},
            "loans": {"penalty": 0.5},
            "limits": {"max_state_share": 0.8},
            "thematic": {"min_share": {"8.8": 0.2}},
            "allocation": {"method": "weighted"},
        },
    }


@pytest.mark.parametrize("solver", SOLVERS)
def test_badly_scaled_amounts_give_the_same_optimum(tmp_path, solver):
    """Every amount times 1000 gives the same floor and weighted / 1000 (relative 1e-6)."""
    runs = {}
    for factor in (1.0, 1000.0):
        _, _, run = solve_instance(tmp_path / f"x{factor:g}", badly_scaled(factor), solver)
        assert run is not None
        ref = reference(run.folder / "inputs", run.folder / "policy.toml")
        amounts = check_allocations_file(ref, run)
        assert rule_violations(ref, amounts, run.floor) == []
        runs[factor] = run
    small, large = runs[1.0], runs[1000.0]
    assert small.floor is not None and large.floor is not None
    assert 0 < small.floor < 1
    assert large.floor == pytest.approx(small.floor, rel=REL)
    assert large.weighted / 1000 == pytest.approx(small.weighted, rel=REL)
