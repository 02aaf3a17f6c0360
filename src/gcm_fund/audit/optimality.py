"""Checks that the allocation meets every rule and that the recorded duals prove it optimal.

Weak duality is all it takes: a dual-feasible y bounds every feasible allocation's
objective by sum(rhs * y) plus the floor variable's bound term, so an allocation that meets
the bound is optimal, whatever solver produced either. Every tolerance is relative to the
allocation's own objective and to the inputs, never to a figure the folder supplies.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.audit.common import cents_of, name_list, parse_numbers, sum_cents, text_cents, usd
from gcm_fund.audit.folder import ALLOCATION_COLUMNS, CONSTRAINT_COLUMNS, ROW_KEY_COLUMNS
from gcm_fund.audit.rules import LE, state_loan_caps, why_not_eligible
from gcm_fund.audit.tolerances import (
    DUAL_RELATIVE,
    GAP_RELATIVE,
    ROW_ALLOWANCE_USD,
    SAME_CENT,
    Z_TOLERANCE,
    rule_tolerance_usd,
)
from gcm_fund.model.spec import FAMILIES, MAX_VALUE_PRECISION, stage2_z_bounds


def check_allocations(c: Certifier) -> bool:
    """allocations.csv: its format, and every row an eligible triple; keeps the amounts."""
    rules = c.rules
    table = c.run.table("allocations.csv", ALLOCATION_COLUMNS)
    problems: list[str] = []
    amounts = parse_numbers(table["amount_usd"])
    keys = list(zip(table["source_id"], table["iso3"], table["target"], strict=True))
    for i, text in enumerate(table["amount_usd"]):
        line = i + 2
        if not math.isfinite(amounts[i]):
            problems.append(f"allocations.csv:{line}: amount_usd: got {text!r}, not a finite "
                            "number")
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
    c.add(Check("allocations format", not problems,
                   f"{len(table)} rows: amounts > 0 with two decimals, keys unique and "
                   "sorted", "exact", problems))

    index = pd.MultiIndex.from_frame(rules.triples[["source_id", "iso3", "target"]])
    position = index.get_indexer(pd.MultiIndex.from_tuples(
        keys, names=["source_id", "iso3", "target"])) if keys else np.zeros(0, dtype=int)
    ineligible = []
    for i in map(int, np.nonzero(position < 0)[0]):
        why = why_not_eligible(rules, *keys[i]) or "not an eligible triple"
        ineligible.append(f"allocations.csv:{i + 2}: {','.join(keys[i])}: {why}")
    c.add(Check("eligibility", not ineligible,
                   f"{len(keys) - len(ineligible)} of {len(keys)} allocation rows are "
                   f"eligible triples ({rules.n_x} eligible in all)", "exact", ineligible))
    x = np.zeros(rules.n_x)
    ok = (position >= 0) & np.isfinite(amounts)
    np.add.at(x, position[ok], amounts[ok])
    c.x = x
    cents, two_decimals = text_cents(table["amount_usd"])
    # A cell not written with two decimals (named above) counts as its amount rounded;
    # an absurd one (named by the numbers check) as 0.
    rounded = ok & ~two_decimals & (np.abs(amounts) < 1e16)
    cents[rounded] = cents_of(amounts[rounded])
    c.cents = sum_cents(position[ok], cents[ok], rules.n_x)
    c.written = np.zeros(rules.n_x, dtype=bool)
    c.written[position[ok]] = True
    c.n_written = len(keys)
    return True


def readable(c: Certifier, z: float | None) -> tuple[np.ndarray, np.ndarray]:
    """lhs and rhs of every row as constraints.csv shows them, for allocation x."""
    rules = c.rules
    lhs = rules.row_sums(c.x)
    rhs = rules.rows["rhs_usd"].to_numpy(dtype=float).copy()
    family = rules.rows["family"].to_numpy()
    if rules.thematic:
        at = np.nonzero(family == "thematic")[0]
        total = float(c.x.sum())
        in_target = {t: float(c.x[(rules.triples["target"] == t).to_numpy()].sum())
                     for t in rules.thematic}
        targets = rules.rows["target"].to_numpy()[at]
        lhs[at] = [in_target[t] for t in targets]
        rhs[at] = [rules.thematic[t] * total for t in targets]
    at = np.nonzero(family == "loan_share")[0]
    if len(at):
        # Shown as loans to s <= m(s) * all money to s (docs/terms.md).
        state = rules.triples["state"].to_numpy(dtype=int)
        n = len(rules.data.states)
        loans = np.bincount(state, weights=c.x * rules.triples["loan"].to_numpy(), minlength=n)
        money = np.bincount(state, weights=c.x, minlength=n)
        s_at = rules.rows["state"].to_numpy()[at].astype(int)
        cap = state_loan_caps(rules.data.states, rules.policy)
        lhs[at] = loans[s_at]
        rhs[at] = cap[s_at] * money[s_at]
    if rules.regional:
        at = np.nonzero(family == "regional")[0]
        region = rules.data.states["region"].to_numpy()[rules.triples["state"].to_numpy()]
        total = float(c.x.sum())
        names = rules.rows["region"].to_numpy()[at]
        lhs[at] = [float(c.x[region == r].sum()) for r in names]
        rhs[at] = [rules.regional[r] * total for r in names]
    if z is not None:
        rhs[rules.floor_rows] = z * rules.floor_fundable()
    return lhs, rhs



def row_tolerance(c: Certifier, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """docs/outputs.md's tolerance of each row."""
    return rule_tolerance_usd(c.rules.rows_written(c.written), lhs, rhs)


def check_rules(c: Certifier) -> None:
    """Every rule but the floor on the written amounts (docs/model.md and docs/outputs.md)."""
    rules = c.rules
    lhs, rhs = readable(c, None)
    sense = rules.rows["sense"].to_numpy(dtype=int)
    violation = np.where(sense == LE, lhs - rhs, rhs - lhs)
    tolerance = row_tolerance(c, lhs, rhs)
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
        c.add(Check(f"rule {fam}", not problems, figure,
                       "0.01 USD per allocation row in the rule + 1e-7 of "
                       "max(|lhs|, |rhs|, 1e6)", problems))
    c.cert.figures["largest_violation_usd"] = max(
        worst_all, c.cert.figures.get("largest_violation_usd", 0.0))

def stage2_precision(c: Certifier, problems: list[str]) -> float:
    """The solver's value precision the manifest records (0 when it records none).

    docs/model.md's stage-2 bound on z is widened by this share of z* for a solver that reads
    values back rounded; more than `MAX_VALUE_PRECISION` is no solver's rounding.
    """
    if c.run.raw("solver", "value_precision") is None:
        return 0.0
    found = c.run.number("solver", "value_precision")
    if found is None or not 0.0 <= found <= MAX_VALUE_PRECISION:
        problems.append(f"manifest.json: solver.value_precision "
                        f"{c.run.raw('solver', 'value_precision')!r} is outside "
                        f"[0, {MAX_VALUE_PRECISION:g}] (the widest rounding of z* allowed)")
        return 0.0
    return found


def floor_max_of(c: Certifier, problems: list[str]) -> float | None:
    """z*: the manifest's `objective.floor_max` (docs/terms.md), or its `floor` when it records
    none and floor_share is 1 (a run of an earlier version); None when not maximizing."""
    equity = c.rules.policy.equity
    if not equity.maximize:
        return None
    if c.run.raw("objective", "floor_max") is not None:
        found = c.run.number("objective", "floor_max")
        if found is None:
            problems.append(f"manifest.json: objective.floor_max "
                            f"{c.run.raw('objective', 'floor_max')!r} is not a finite number")
        return found
    if equity.floor_share < 1:
        problems.append("manifest.json lacks objective.floor_max (z*), which floor_share "
                        f"{equity.floor_share:g} needs")
        return None
    return c.run.number("objective", "floor")


def check_floor(c: Certifier) -> float | None:
    """The floor variable's bounds and value; returns z_final (None when G is empty)."""
    rules, run = c.rules, c.run
    equity = rules.policy.equity
    present = run.raw("objective", "floor") is not None
    floor = run.number("objective", "floor")
    problems: list[str] = []
    if not rules.has_floor:
        if present:
            problems.append(f"manifest floor is {run.raw('objective', 'floor')!r}, expected "
                            f"null: no gap of group {equity.group!r} has an eligible triple")
        c.add(Check("floor", not problems, f"the floor set G ({equity.group}) is empty",
                    "exact", problems))
        return None
    z_value = run.number("floor_variable", "stage2_value")
    bounds = run.pair("floor_variable", "stage2_bounds")
    if floor is None or z_value is None or bounds is None:
        problems.append("manifest.json lacks objective.floor or floor_variable."
                        "stage2_value / stage2_bounds (finite numbers) for a non-empty floor "
                        "set")
        c.add(Check("rule floor", False, f"{int(rules.gaps['in_floor'].sum())} gaps in G",
                    "", problems))
        return None
    z_final = z_value
    recorded = floor_max_of(c, problems)
    precision = stage2_precision(c, problems)
    if not equity.maximize and abs(floor - equity.min_floor) > Z_TOLERANCE:
        problems.append(f"floor {floor} is not min_floor {equity.min_floor} "
                        "(the policy does not maximize the floor)")
    if equity.maximize and recorded is not None:
        shown = max(equity.min_floor, equity.floor_share * recorded)
        if abs(floor - shown) > 1e-12:
            problems.append(f"floor {floor} is not max(z_min, floor_share x z*) = {shown} "
                            f"(floor_share {equity.floor_share:g}, z* = floor_max {recorded})")
    if recorded is None:
        recorded = floor
    expected = stage2_z_bounds(equity, recorded, precision)
    c.z_low = expected[0]
    c.z_bounds = expected
    if abs(bounds[0] - expected[0]) > 1e-12 or abs(bounds[1] - expected[1]) > 1e-12:
        problems.append(f"stage-2 bounds of z {list(bounds)} are not {list(expected)} "
                        "(docs/terms.md: z >= max(z_min, floor_share * z* - tolerance), z <= 1"
                        + (f", the tolerance widened to {precision:g} of z* for the solver's "
                           "rounding" if precision else "") + ")")
    widening = run.number("floor_variable", "stage2_widening")
    spec_low = max(equity.min_floor, equity.floor_share * recorded - equity.tolerance)
    if equity.maximize and widening is not None \
            and abs(widening - max(0.0, spec_low - expected[0])) > 1e-12:
        problems.append(f"floor_variable.stage2_widening {widening} is not how far the bound "
                        f"lies below max(z_min, z* - tolerance) ({spec_low - expected[0]:.3g})")
    if not expected[0] - Z_TOLERANCE <= z_final <= expected[1] + Z_TOLERANCE:
        problems.append(f"z = {z_final} lies outside its bounds {list(expected)}")
    if not equity.min_floor - Z_TOLERANCE <= recorded <= 1 + Z_TOLERANCE:
        problems.append(f"floor {recorded} is outside [min_floor, 1]")
    lhs, rhs = readable(c, z_final)
    at = rules.floor_rows
    tol = row_tolerance(c, lhs, rhs)[at]
    short = rhs[at] - lhs[at]
    worst = at[np.argmax(short)] if len(at) else None
    names = rules.rows["name"].to_numpy()
    bad = at[short > tol]
    problems.extend(f"{names[i]}: allocated {usd(lhs[i])} < z * U = {usd(rhs[i])} "
                    f"(short {usd(rhs[i] - lhs[i])})" for i in bad)
    fundable = rules.floor_fundable()
    coverage = np.where(fundable > 0, lhs[at] / fundable, np.inf)
    c.cert.figures["floor"] = floor
    c.cert.figures["z_final"] = z_final
    c.cert.figures["largest_violation_usd"] = max(
        c.cert.figures.get("largest_violation_usd", 0.0), float(short.max()))
    figure = (f"{len(at)} gaps in G; z = {z_final:.10g} >= {expected[0]:.10g} (floor "
              f"{recorded:.10g} - {recorded - expected[0]:.3g}); lowest coverage "
              f"{coverage.min():.10g}; largest shortfall {usd(max(0.0, float(short.max())))}"
              + (f" ({names[worst]})" if worst is not None and short.max() > 0 else ""))
    c.add(Check("rule floor", not problems, figure,
                   f"z to {Z_TOLERANCE:g}; rows as docs/outputs.md", problems))
    return z_final

# -- constraints.csv --------------------------------------------------------------

def read_constraints(c: Certifier, name: str) -> pd.DataFrame:
    """A constraints table with its columns (`DamagedFile` when missing or unreadable)."""
    return c.run.table(name, CONSTRAINT_COLUMNS)


def check_constraint_rows(c: Certifier, label: str, table: pd.DataFrame, z: float | None,
                          with_lhs: bool) -> np.ndarray:
    """Names, families and figures of a constraints table; returns the duals by row."""
    rules = c.rules
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
    lhs, rhs = readable(c, z)
    got = {col: np.full(len(names), np.nan) for col in ("lhs", "rhs", "slack", "dual")}
    for col in got:
        values = parse_numbers(table[col])
        got[col][found] = values[position[found]]
    written_family = table["family"].to_numpy()[position[found]]
    expected_family = rules.rows["family"].to_numpy()[found]
    for name, got_f, want in zip(names[found], written_family, expected_family,
                                 strict=True):
        if got_f != want:
            problems.append(f"{label}: {name} has family {got_f!r}, expected {want!r}")
    if all(col in table.columns for col in ROW_KEY_COLUMNS):
        # explain reads the rows' keys from these columns: they must be the rules' own.
        keyed = rules.row_keys()
        for col in ROW_KEY_COLUMNS:
            written_key = table[col].to_numpy()[position[found]]
            expected_key = keyed[col].to_numpy()[found]
            problems.extend(
                f"{label}: {name}: {col} {got_k!r}, expected {want_k!r}"
                for name, got_k, want_k in zip(names[found], written_key, expected_key,
                                               strict=True) if got_k != want_k)
    near = SAME_CENT + 1e-12 * np.maximum(np.abs(lhs), np.abs(rhs))
    checks = [("rhs", rhs)]
    if with_lhs:
        checks.append(("lhs", lhs))
    # Stage 1's allocation is not written: its thematic rhs (theta * its total) cannot
    # be recomputed, the other right-hand sides do not depend on the allocation.
    comparable = found if with_lhs else found & ~rules.rows["family"].isin(
        ["thematic", "loan_share", "regional"]).to_numpy()
    for column, expected in checks:
        off = comparable & ~(np.abs(got[column] - expected) <= near)
        problems.extend(f"{label}: {names[i]}: {column} {got[column][i]:.2f}, recomputed "
                        f"{expected[i]:.2f}" for i in np.nonzero(off)[0])
    if with_lhs:
        sense = rules.rows["sense"].to_numpy(dtype=int)
        slack = np.where(sense == LE, got["rhs"] - got["lhs"], got["lhs"] - got["rhs"])
        # Each of the three written to the cent, and beside USD 1e13 as close as float64
        # holds them (its spacing there is USD 0.016): `near` is the rule's rounding.
        off = found & ~(np.abs(got["slack"] - slack) <= 2 * SAME_CENT + near)
        problems.extend(f"{label}: {names[i]}: slack {got['slack'][i]:.2f} is not its "
                        f"rhs and lhs apart ({slack[i]:.2f})" for i in np.nonzero(off)[0])
    bad_dual = found & np.isnan(got["dual"])
    problems.extend(f"{label}: {names[i]}: dual is not a finite number" for i in
                    np.nonzero(bad_dual)[0])
    what = "names, families, lhs, rhs and slack" if with_lhs else "names, families and rhs"
    c.add(Check(f"{label} rows", not problems,
                   f"{int(found.sum())} of {len(names)} rule rows present; {what} as "
                   "recomputed", f"{SAME_CENT} USD + 1e-12 relative", problems))
    return np.nan_to_num(got["dual"], nan=0.0)

# -- duals ------------------------------------------------------------------------

def check_duals(c: Certifier, label: str, y: np.ndarray, cost_x: np.ndarray, cost_z: float,
                z_bounds: tuple[float, float] | None, z_value: float | None,
                recorded_reduced: float | None, dual_tol: float
                ) -> tuple[float, float]:
    """Dual feasibility of one stage; returns (dual objective, rigorous bound)."""
    rules = c.rules
    names = rules.rows["name"].to_numpy()
    sense = rules.rows["sense"].to_numpy(dtype=int)
    wrong = np.where(sense == LE, -y, y)  # > 0 is a dual of the wrong sign
    problems = [f"{names[i]}: dual {y[i]:.8g} has the wrong sign for a "
                f"{'<=' if sense[i] == LE else '>='} row (d objective / d rhs)"
                for i in np.nonzero(wrong > dual_tol)[0]]
    worst_sign = float(wrong.max()) if len(wrong) else 0.0
    c.add(Check(f"{label} dual signs", not problems,
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
    c.add(Check(f"{label} reduced costs", not problems,
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
        c.add(Check(f"{label} floor variable", not problems,
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

def stage2(c: Certifier, z_final: float | None) -> None:
    """constraints.csv: its rows as recomputed, dual feasibility and the duality gap."""
    rules, run = c.rules, c.run
    table = read_constraints(c, "constraints.csv")
    y = check_constraint_rows(c, "constraints.csv", table, z_final, with_lhs=True)
    weight = rules.triples["weight"].to_numpy(dtype=float)
    max_weight = float(np.abs(weight).max()) if len(weight) else 0.0
    tol = DUAL_RELATIVE * max(1.0, max_weight)
    # z's bounds as docs/model.md sets them (check_floor compared the recorded ones with them).
    z_bounds = c.z_bounds if c.z_bounds is not None else \
        run.pair("floor_variable", "stage2_bounds")
    recorded = run.number("floor_variable", "stage2_reduced_cost")
    dual, rigorous = check_duals(
        c, "stage 2", y, weight, 0.0, z_bounds, z_final,
        None if recorded is None else recorded * run.solved_scale, tol)
    primal = float(weight @ c.x)
    weighted = run.number("objective", "weighted")
    # Relative to the allocation's own objective and the inputs' weights only: a figure
    # the folder supplies (a dual, the manifest's objective) never widens it.
    allowance = ROW_ALLOWANCE_USD * max_weight * c.n_written
    gap_tol = GAP_RELATIVE * max(abs(primal), 1.0) + allowance
    gap = dual - primal
    problems = []
    if not abs(gap) <= gap_tol:
        problems.append(f"primal sum w x = {usd(primal)}, dual sum rhs y + z term = "
                        f"{usd(dual)}: gap {usd(gap)}")
    if not rigorous - primal <= gap_tol:
        problems.append(f"with its infeasibilities priced in, the dual bounds the objective "
                        f"by {usd(rigorous)}, {usd(rigorous - primal)} above the allocation")
    if weighted is None or not abs(weighted - primal) <= gap_tol:
        problems.append(f"manifest weighted {run.raw('objective', 'weighted')!r} is not the "
                        f"allocation's sum w x {primal:.2f}")
    relative = abs(gap) / max(abs(primal), 1.0)
    c.cert.figures.update(stage2_primal=primal, stage2_dual=dual, stage2_gap=gap,
                          stage2_gap_relative=relative, stage2_bound=rigorous)
    c.add(Check("stage 2 duality gap", not problems,
                f"sum w x {usd(primal)}, dual objective {usd(dual)}, gap {usd(gap)} "
                f"({relative:.2e} relative); certified bound {usd(rigorous)}",
                f"1e-6 of max(|sum w x|, 1) + 0.01 USD x max|w| per allocation row = "
                f"{usd(gap_tol)}", problems))


def levels_constraints(c: Certifier, z_final: float | None) -> None:
    """constraints.csv under levels: its rows as recomputed, and its duals those of the
    last level step in level_duals.csv (docs/model.md), which certify_levels proves."""
    table = read_constraints(c, "constraints.csv")
    y = check_constraint_rows(c, "constraints.csv", table, z_final, with_lhs=True)
    if not c.run.has("level_duals.csv"):
        return  # certify_levels names the missing file
    duals = c.run.table("level_duals.csv", ("step", "name", "dual"))
    steps = parse_numbers(duals["step"])
    last = duals[steps == np.nanmax(steps)] if len(steps) else duals
    proved = dict(zip(last["name"], parse_numbers(last["dual"]), strict=True))
    names = c.rules.rows["name"].to_numpy()
    expected = np.array([proved.get(n, 0.0) for n in names])
    off = ~(np.abs(y - expected) <= 1e-9 * np.abs(expected) + 1e-15)
    problems = [f"constraints.csv: {names[i]}: dual {y[i]:.12g}, the last step's in "
                f"level_duals.csv {expected[i]:.12g}" for i in np.nonzero(off)[0]]
    c.add(Check("constraints.csv duals", not problems,
                f"{len(names)} rows: each dual is the last level step's (d L / d rhs)",
                "1e-9 relative", problems))
    # Under levels `weighted` is a figure of the allocation (sum w x), kept for comparison.
    weight = c.rules.triples["weight"].to_numpy(dtype=float)
    primal = float(weight @ c.x)
    max_weight = float(np.abs(weight).max()) if len(weight) else 0.0
    tol = GAP_RELATIVE * max(abs(primal), 1.0) + ROW_ALLOWANCE_USD * max_weight * c.n_written
    weighted = c.run.number("objective", "weighted")
    ok = weighted is not None and abs(weighted - primal) <= tol
    c.add(Check("manifest weighted", ok, f"sum w x of the allocation {usd(primal)}",
                usd(tol), [] if ok else [f"manifest weighted "
                                         f"{c.run.raw('objective', 'weighted')!r} is not the "
                                         f"allocation's sum w x {primal:.2f}"]))


def stage1(c: Certifier, z_final: float | None) -> None:
    """stage1_constraints.csv: its duals prove the recorded floor z* optimal."""
    rules, run = c.rules, c.run
    equity = rules.policy.equity
    expected = rules.has_floor and equity.maximize
    present = run.has("stage1_constraints.csv")
    if not expected:
        if present:
            c.add(Check("stage 1", False, "stage1_constraints.csv present, but stage 1 "
                        "does not run (the floor set is empty or not maximized)"))
        return
    if not present:
        c.add(Check("stage 1", False, "stage1_constraints.csv is missing: nothing "
                    "proves the floor z* optimal"))
        return
    table = read_constraints(c, "stage1_constraints.csv")
    recorded = floor_max_of(c, [])  # z*: stage 1 proves it, floor_share aside
    if recorded is None:
        c.add(Check("stage 1 floor proof", False, "manifest.json records no finite "
                    "objective.floor to prove"))
        return
    y = check_constraint_rows(c, "stage1_constraints.csv", table, recorded, with_lhs=False)
    fundable_g = float(rules.floor_fundable().sum())
    tol = DUAL_RELATIVE / max(fundable_g, 1.0)
    z_bounds = (equity.min_floor, 1.0)  # docs/model.md's, whatever the folder says
    problems = []
    written = run.pair("floor_variable", "stage1_bounds")
    if written is None or abs(written[0] - z_bounds[0]) > 1e-12 \
            or abs(written[1] - z_bounds[1]) > 1e-12:
        problems.append(f"stage-1 bounds of z {written} are not [min_floor, 1]")
    recorded_reduced = run.number("floor_variable", "stage1_reduced_cost")
    dual, rigorous = check_duals(c, "stage 1", y, np.zeros(rules.n_x), 1.0, z_bounds, None,
                                 recorded_reduced, tol)
    # z is a share of full coverage: its own scale is 1.
    gap_tol = GAP_RELATIVE
    if not abs(dual - recorded) <= gap_tol:
        problems.append(f"the stage-1 dual objective {dual:.10g} (an upper bound on the "
                        f"floor) differs from the recorded floor {recorded:.10g}")
    if not rigorous - recorded <= gap_tol:
        problems.append(f"with its infeasibilities priced in, the dual bounds the floor by "
                        f"{rigorous:.10g}, above the recorded {recorded:.10g}")
    reached = z_final if z_final is not None else float("nan")
    low = c.z_low if c.z_low is not None else recorded - equity.tolerance
    if not reached >= low - Z_TOLERANCE:
        problems.append(f"the allocation reaches z = {reached}, below stage 2's bound "
                        f"{low:.10g} (floor {recorded} - tolerance {equity.tolerance:g})")
    c.cert.figures.update(stage1_dual=dual, stage1_gap=dual - recorded,
                          stage1_bound=rigorous)
    c.add(Check("stage 1 floor proof", not problems,
                f"dual bound on z {dual:.10g} vs recorded floor {recorded:.10g} (gap "
                f"{dual - recorded:.2e}); the allocation reaches z = {reached:.10g}",
                f"{gap_tol:.0e} of full coverage; allocation >= floor - "
                f"{equity.tolerance:g}", problems))
