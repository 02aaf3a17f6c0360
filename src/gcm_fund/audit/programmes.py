"""certify under `[allocation] method = "programmes"` (docs/programmes.md), from the files alone.

An independent restatement: each programme's gaps and shares, its priority and value per
USD, which sources may fund it, and the relaxation's bound are rebuilt here from the copied
inputs and the rules of `audit.rules`, never from `programmes.py`. What is proved:

- the counted amounts (allocations.csv) are the programme amounts times the shares;
- every programme amount is 0 or within [min_usd, budget_usd], from sources that may fund
  every one of its gaps; `max_per_state` holds; selection.csv's figures are recomputed;
- each reason's figures agree with the amounts and with the columns beside them;
- the manifest's value is `sum v_p a_p`, and `value_bound` is an upper bound on it proved
  by the relaxation's duals (weak duality: dual signs, reduced costs, the dual objective).

What is not: that no other selection has a larger value (a MIP's optimality needs a
solver; `verify` re-solves the run).
"""

from __future__ import annotations

import re

import numpy as np

from gcm_fund.audit.checks import Certifier, Check
from gcm_fund.audit.common import parse_numbers
from gcm_fund.audit.optimality import check_constraint_rows, read_constraints
from gcm_fund.inputs.schema import ProgrammeRow

LE, GE = 1, -1
SAME_CENT = 0.0051  # USD, as the other checks
SIZE_TOLERANCE = 0.02  # USD: a programme's amount is the sum of cent-rounded rows
FULL_RELATIVE = 1e-7  # docs/programmes.md's `funded` in full: within 0.02 USD + 1e-7 of the budget
DUAL_TOLERANCE = 1e-7  # a reduced cost or dual sign this far off is rounding
SCALE = 1e6  # the relaxation's duals are per USD million of a count row's right-hand side
SELECTION_COLUMNS = ("programme_id", "funded", "amount_usd", "priority", "value_per_usd",
                     "value_loss", "displaced", "reason", "min_usd", "budget_usd")


def _programme_gaps(c: Certifier, row: ProgrammeRow) -> tuple[dict[int, float], str | None]:
    """{gap: share} of one programme and why it is not eligible (None when it is)."""
    rules = c.rules
    gaps = rules.gaps
    index = {(i, t): g for g, (i, t) in enumerate(zip(gaps["iso3"], gaps["target"],
                                                       strict=True))}
    funded_gaps = set(rules.triples["gap"].tolist())  # E: U > 0 and an eligible triple
    if row.shares:
        shares: dict[int, float] = {}
        for item in row.shares:
            pair, share = item.rsplit("=", 1)
            iso3, target = (p.strip() for p in pair.split(":", 1))
            shares[index[(iso3, target.lower())]] = float(share)
        outside = [g for g in shares if g not in funded_gaps]
        return shares, ("a gap outside E" if outside else None)
    mine = sorted({index[(s, t)] for s in row.states for t in row.targets
                   if (s, t) in index and index[(s, t)] in funded_gaps})
    fundable = gaps["fundable_usd"].to_numpy(dtype=float)
    total = float(fundable[mine].sum()) if mine else 0.0
    if not total:
        return {}, "no gap in E"
    return {g: float(fundable[g]) / total for g in mine}, None


def _priority(c: Certifier) -> np.ndarray:
    """pi[s,t] by gap: Wt Wi Wr (docs/model.md), from the policy and states.csv, times p_s
    (docs/cycles.md)."""
    rules, policy = c.rules, c.rules.policy
    states = rules.data.states
    roles = dict(zip(states["iso3"], states["roles"], strict=True))
    gaps = rules.gaps
    out = []
    for iso3, target, income in zip(gaps["iso3"], gaps["target"], gaps["income_group"],
                                    strict=True):
        role = max((float(getattr(policy.weights.role, r)) for r in roles[iso3]), default=1.0)
        out.append(policy.weights.target.get(target, 1.0) * policy.weights.income.get(income)
                   * role)
    return np.array(out) * gaps["factor"].to_numpy(dtype=float)


def certify_programmes(c: Certifier) -> None:
    """Every check of docs/programmes.md that needs no solver (see the module's docstring)."""
    rules, run = c.rules, c.run
    table = rules.data.programme_table
    if table is None:
        c.add(Check("programmes", False, "inputs/programmes.csv is missing"))
        return
    rows = [r for r in table.rows if isinstance(r, ProgrammeRow)]
    ids = [r.programme_id for r in rows]
    at = {p: k for k, p in enumerate(ids)}
    triple = {(int(f), int(g)): j for j, (f, g) in enumerate(zip(
        rules.triples["source"], rules.triples["gap"], strict=True))}
    source_ids = rules.data.sources["source_id"].tolist()
    source_at = {s: f for f, s in enumerate(source_ids)}
    pi_gap = _priority(c)

    shares, why_not = zip(*(_programme_gaps(c, r) for r in rows), strict=True) if rows \
        else ((), ())
    priority = np.array([sum(s * pi_gap[g] for g, s in sh.items()) if sh else np.nan
                         for sh in shares])
    value = np.array([r.quality for r in rows]) * np.nan_to_num(priority)

    problems: list[str] = []
    # Programme amounts and the counted amounts they make.
    written = run.table("programme_allocations.csv", ("source_id", "programme_id",
                                                       "amount_usd"))
    amounts = parse_numbers(written["amount_usd"])
    x_counted = np.zeros(len(rules.triples))
    a = np.zeros(len(rows))
    for line, (sid, pid, amount) in enumerate(zip(written["source_id"], written["programme_id"],
                                                  amounts, strict=True), start=2):
        label = f"programme_allocations.csv:{line}"
        if pid not in at or sid not in source_at or not np.isfinite(amount) or amount < 0:
            problems.append(f"{label}: {sid},{pid}: not a source, programme and amount >= 0")
            continue
        p, f = at[pid], source_at[sid]
        missing = [g for g in shares[p] if (f, g) not in triple]
        if why_not[p] is not None or missing or rows[p].quality <= 0:
            problems.append(f"{label}: {pid}: {sid} may not fund it (a gap it may not fund, "
                            "or the programme is not eligible)")
            continue
        a[p] += amount
        for g, s in shares[p].items():
            x_counted[triple[(f, g)]] += s * amount
    off = np.abs(x_counted - c.x) > SAME_CENT * 2 + 1e-9 * np.abs(c.x)
    for j in np.nonzero(off)[0][:20]:
        t = rules.triples.iloc[j]
        problems.append(f"allocations.csv: {t['source_id']},{t['iso3']},{t['target']}: "
                        f"{c.x[j]:.2f}, the programmes' shares give {x_counted[j]:.2f}")
    c.add(Check("programme amounts", not problems,
                f"{len(written)} programme allocation rows counted toward the gaps by their "
                "shares", f"{SAME_CENT * 2} USD per row", problems))

    sizes: list[str] = []
    for p, r in enumerate(rows):
        if a[p] > SIZE_TOLERANCE and not (r.minimum_usd - SIZE_TOLERANCE <= a[p]
                                          <= r.budget_usd + SIZE_TOLERANCE):
            sizes.append(f"{r.programme_id}: USD {a[p]:,.2f} is outside [min_usd, budget_usd]"
                         f" = [{r.minimum_usd:,.2f}, {r.budget_usd:,.2f}]")
    limit = rules.policy.programmes.max_per_state
    if limit is not None:
        gaps = rules.gaps
        count: dict[str, list[str]] = {}
        for p in np.nonzero(a > SIZE_TOLERANCE)[0].tolist():
            for iso3 in sorted({gaps["iso3"][g] for g in shares[p]}):
                count.setdefault(iso3, []).append(ids[p])
        sizes += [f"per_state[{s}]: {len(found)} funded programmes ({';'.join(found)}), "
                  f"max_per_state {limit}" for s, found in count.items() if len(found) > limit]
    c.add(Check("programme sizes", not sizes,
                f"{int((a > SIZE_TOLERANCE).sum())} funded programmes each in "
                "[min_usd, budget_usd]" + (f", at most {limit} per State" if limit is not None
                                           else ""),
                f"{SIZE_TOLERANCE} USD", sizes))

    _check_selection(c, ids, rows, a, priority, value, why_not)
    v = float(value @ a)
    _check_value(c, v)
    _check_bound(c, rows, shares, value, triple, v, why_not)
    c.add(Check("selection optimal", True,
                "not proved by certify: a mixed-integer optimum needs a solver; `verify` "
                "re-solves the run and must find the same selection"))
    # constraints.csv: the rows as recomputed (its duals are the final LP's, not a proof).
    check_constraint_rows(c, "constraints.csv", read_constraints(c, "constraints.csv"), None,
                          with_lhs=True)


def _check_selection(c: Certifier, ids: list[str], rows: list[ProgrammeRow], a: np.ndarray,
                     priority: np.ndarray, value: np.ndarray, why_not: tuple) -> None:
    """selection.csv's figures and each reason's, against the amounts."""
    table = c.run.table("selection.csv", SELECTION_COLUMNS)
    problems: list[str] = []
    if table["programme_id"].tolist() != ids:
        problems.append("selection.csv: programme_id: not the programmes of programmes.csv "
                        "in id order")
        c.add(Check("selection.csv", False, "one row per programme", "", problems))
        return
    funded = table["funded"].str.lower().eq("true").to_numpy()
    amount = parse_numbers(table["amount_usd"])
    loss = parse_numbers(table["value_loss"])
    for k, (pid, r) in enumerate(zip(ids, rows, strict=True)):
        line = f"selection.csv:{k + 2}: {pid}"
        if funded[k] != (a[k] > SIZE_TOLERANCE):
            problems.append(f"{line}: funded {table['funded'][k]}, but it receives "
                            f"USD {a[k]:,.2f}")
        if not abs(amount[k] - a[k]) <= SIZE_TOLERANCE:
            problems.append(f"{line}: amount_usd {table['amount_usd'][k]}, the programme "
                            f"allocations give {a[k]:.2f}")
        got_p = parse_numbers(table["priority"][k:k + 1])[0]
        if not (np.isnan(priority[k]) and np.isnan(got_p)) and \
                not abs(got_p - priority[k]) <= 1e-9 * max(1.0, abs(priority[k])):
            problems.append(f"{line}: priority {table['priority'][k]}, recomputed "
                            f"{priority[k]:.12g}")
        got_v = parse_numbers(table["value_per_usd"][k:k + 1])[0]
        if not abs(got_v - value[k]) <= 1e-9 * max(1.0, abs(value[k])):
            problems.append(f"{line}: value_per_usd {table['value_per_usd'][k]}, recomputed "
                            f"{value[k]:.12g}")
        reason = str(table["reason"][k])
        word = reason.split(":", 1)[0]
        expected = ("not_eligible" if why_not[k] is not None or r.quality <= 0 else
                    "left_out" if not funded[k] else
                    "funded" if a[k] >= r.budget_usd * (1 - FULL_RELATIVE) - SIZE_TOLERANCE
                    - 1e-6 else "partial")
        if word != expected:
            problems.append(f"{line}: reason {reason!r} starts with {word!r}, expected "
                            f"{expected!r}")
        numbers = [float(n.replace(",", "")) for n in
                   re.findall(r"(?<![\w.])\d[\d,]*\.\d\d(?!\d)", reason)]
        if word == "partial" and numbers[:2] != [round(a[k], 2), round(r.budget_usd, 2)]:
            problems.append(f"{line}: reason {reason!r}: its figures are not the amount "
                            f"{a[k]:,.2f} and the budget {r.budget_usd:,.2f}")
        if word == "left_out" and "lower the value by" in reason:
            if len(numbers) < 2 or not np.isfinite(loss[k]) or \
                    abs(numbers[1] - loss[k]) > 0.01 or numbers[0] != round(r.minimum_usd, 2):
                problems.append(f"{line}: reason {reason!r}: its figures are not min_usd "
                                f"{r.minimum_usd:,.2f} and value_loss {table['value_loss'][k]}")
            displaced = [d for d in str(table["displaced"][k]).split(";") if d]
            if loss[k] < -0.01:
                problems.append(f"{line}: value_loss {loss[k]} < 0")
            not_funded = [d for d in displaced if d not in ids or not funded[ids.index(d)]]
            if not_funded:
                problems.append(f"{line}: displaces {';'.join(not_funded)}, which are not "
                                "funded")
    c.add(Check("selection.csv", not problems,
                f"{len(ids)} programmes: funded, amount, priority, value per USD and each "
                "reason's figures as recomputed", f"{SIZE_TOLERANCE} USD; 1e-9 relative",
                problems))


def _check_value(c: Certifier, v: float) -> None:
    recorded = c.run.number("objective", "value")
    ok = recorded is not None and abs(recorded - v) <= 1e-6 * max(1.0, abs(v)) + 0.05
    c.add(Check("value", ok, f"V = sum v_p a_p = {v:,.2f} (manifest {recorded})",
                "1e-6 relative + 0.05", [] if ok else
                [f"manifest.json: objective.value {recorded}, recomputed {v:.2f}"]))


def _check_bound(c: Certifier, rows: list[ProgrammeRow], shares: tuple, value: np.ndarray,
                 triple: dict[tuple[int, int], int], v: float, why_not: tuple) -> None:
    """value_bound >= V, proved by relaxation_duals.csv (weak duality, USD millions)."""
    rules = c.rules
    recorded = c.run.number("objective", "value_bound")
    table = c.run.table("relaxation_duals.csv", ("name", "dual"))
    duals = dict(zip(table["name"], parse_numbers(table["dual"]), strict=True))
    problems: list[str] = []
    names = rules.rows["name"].tolist()
    sense = rules.rows["sense"].to_numpy(dtype=int)
    rhs = rules.rows["rhs_usd"].to_numpy(dtype=float) / SCALE
    y = np.array([duals.get(n, 0.0) for n in names])
    wrong = (sense == LE) & (y < -DUAL_TOLERANCE) | (sense == GE) & (y > DUAL_TOLERANCE)
    problems += [f"relaxation_duals.csv: {names[i]}: dual {y[i]:g} has the wrong sign"
                 for i in np.nonzero(wrong)[0]]
    # Row duals priced on the triples: sum over rows of y_r A_r,j.
    priced = np.zeros(len(rules.triples))
    np.add.at(priced, rules.entry_col, rules.entry_coef * y[rules.entry_row])
    bound = float(rhs @ y)
    limit = rules.policy.programmes.max_per_state
    for p, r in enumerate(rows):
        if not shares[p] or value[p] <= 0 or why_not[p] is not None:
            continue
        pid = r.programme_id
        y_min = duals.get(f"size_min[{pid}]", 0.0)
        y_max = duals.get(f"size_max[{pid}]", 0.0)
        if y_min > DUAL_TOLERANCE or y_max < -DUAL_TOLERANCE:
            problems.append(f"relaxation_duals.csv: size rows of {pid}: wrong sign")
        for f in range(len(rules.data.sources)):
            if all((f, g) in triple for g in shares[p]):
                reduced = value[p] - y_min - y_max - sum(
                    s * priced[triple[(f, g)]] for g, s in shares[p].items())
                if reduced > DUAL_TOLERANCE * max(1.0, value[p]):
                    problems.append(f"x[{rules.data.sources['source_id'][f]},{pid}]: reduced "
                                    f"cost {reduced:.3g} > 0")
        per_state = sum(duals.get(f"per_state[{s}]", 0.0) for s in
                        {rules.gaps["iso3"][g] for g in shares[p]}) if limit is not None else 0.0
        reduced_y = y_min * r.minimum_usd / SCALE + y_max * r.budget_usd / SCALE - per_state
        bound += max(0.0, reduced_y)
    per_state_duals = {n: d for n, d in duals.items() if n.startswith("per_state[")}
    problems += [f"relaxation_duals.csv: {n}: dual {d:g} < 0" for n, d in
                 per_state_duals.items() if d < -DUAL_TOLERANCE]
    bound += sum((limit or 0) * d for d in per_state_duals.values())
    bound_usd = bound * SCALE
    ok_bound = not problems and v <= bound_usd * (1 + 1e-6) + 0.05
    if recorded is None or abs(recorded - bound_usd) > 1e-6 * max(1.0, abs(bound_usd)) + 0.05:
        problems.append(f"manifest.json: objective.value_bound {recorded}, the duals bound "
                        f"the relaxation by {bound_usd:.2f}")
    c.add(Check("value bound", ok_bound and not problems,
                f"the relaxation's duals bound the value by {bound_usd:,.2f} >= V {v:,.2f}",
                "1e-6 relative + 0.05", problems))

