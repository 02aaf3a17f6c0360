"""Certifying priority levels (docs/model.md) from the run folder alone.

Under `method = "levels"` the allocation is not the optimum of one LP but of a sequence:
step k maximises the level L with `sum_f x >= pi U L` on the gaps still rising and
`sum_f x >= pi U l` on those stopped before (`held`), every rule of section 4, the floor
and `sum x >= X* - 0.01 USD x |E|` (`allocated[total]`). The run writes every step's
non-zero duals (`level_duals.csv`), its level (`levels.csv`) and the step each gap stopped
at (`coverage.csv`, column `step`). From those this module proves, with the rules rebuilt
from the copied inputs:

1. each gap's amount is its priority x U x the level of the step that stopped it (so
   moving money between two gaps fails, with both gaps named);
2. each step's duals are dual feasible and bound L by the recorded L_k (weak duality,
   every dual infeasibility priced at its worst), while the allocation reaches L_k on every
   gap still rising: L_k is that step's optimum;
3. each gap stopped at step k is held there: the step's duals bound how far any
   allocation that keeps the rising gaps at the step's level can raise it (the bound's
   excess over the level, divided by the dual of the gap's level row), and that rise must
   be within docs/model.md's tolerance, USD 0.01 + 1e-6 U: a vanishing dual proves nothing.
   A gap's floor row bounds its amount from below as its level row does: where a step's
   level meets the floor, the solver may put the dual on either, and both count;
4. stages 1b (the money placed) and 3 (the least loan burden) optimal by their own duals
   (`stage_duals.csv`, see `level_stages`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gcm_fund.audit.common import parse_numbers, usd
from gcm_fund.audit.level_stages import LevelFacts, check_loans, check_placed, grants_of
from gcm_fund.audit.rules import LE, Rules
from gcm_fund.audit.tolerances import (
    GAP_RELATIVE,
    GAP_RELATIVE_U,
    GAP_USD,
    LEVEL_DIGITS,
    ROW_CENT,
    SAME_CENT,
)
from gcm_fund.inputs.schema import INCOME_GROUPS

if TYPE_CHECKING:
    from gcm_fund.audit.checks import Certifier

# A level row's dual counts as positive when the gap's share of d L / d rhs
# (|dual| x priority x U, which sums to 1 over a step's level rows) exceeds this.
POSITIVE_SHARE = 1e-9
PLACED_SLACK_USD = 0.01


def priorities(rules: Rules) -> np.ndarray:
    """pi[s,t] = Wt[t] * Wi[income(s)] * Wr(s) by gap, restated from docs/model.md, times
    the State's performance factor p_s (docs/cycles.md; 1 without history)."""
    policy = rules.policy
    states = rules.data.states
    income_weight = {g: policy.weights.income.get(g) for g in INCOME_GROUPS}
    by_state = {iso3: income_weight[income] * max(
        (float(getattr(policy.weights.role, r)) for r in roles), default=1.0)
        for iso3, income, roles in zip(states["iso3"], states["income_group"],
                                       states["roles"], strict=True)}
    return np.array([policy.weights.target.get(t, 1.0) * by_state[i] for i, t in
                     zip(rules.gaps["iso3"], rules.gaps["target"], strict=True)],
                    dtype=float) * rules.gaps["factor"].to_numpy(dtype=float)


def certify_levels(checker: Certifier, z_final: float | None) -> None:
    """Add the checks of docs/model.md to a certificate (in place of section 4's stage 2)."""
    from gcm_fund.audit.checks import Check

    rules, run = checker.rules, checker.run
    missing = [n for n in ("levels.csv", "level_duals.csv", "coverage.csv") if not run.has(n)]
    if missing:
        checker.add(Check("levels", False, f"{', '.join(missing)} missing: nothing proves "
                          "the levels"))
        return
    gaps = rules.gaps
    n_gaps = len(gaps)
    key = {(i, t): g for g, (i, t) in enumerate(zip(gaps["iso3"], gaps["target"], strict=True))}
    label = [f"gap[{i},{t}]" for i, t in zip(gaps["iso3"], gaps["target"], strict=True)]
    pi = priorities(rules)
    fundable = gaps["fundable_usd"].to_numpy(dtype=float)
    gap_of = rules.triples["gap"].to_numpy(dtype=int)
    amount = np.bincount(gap_of, weights=checker.x, minlength=n_gaps)
    rows_written = np.bincount(gap_of, weights=checker.written.astype(float), minlength=n_gaps)
    in_e = np.bincount(gap_of, minlength=n_gaps) > 0
    scale = pi * fundable  # USD per unit of level

    # -- the tables -------------------------------------------------------------------
    problems: list[str] = []
    levels_table = run.table("levels.csv", ("step", "level"))
    duals_table = run.table("level_duals.csv", ("step", "name", "dual"))
    coverage = run.table("coverage.csv", ("iso3", "target", "step"))
    level_of_step = parse_numbers(levels_table["level"])
    n_steps = len(level_of_step)
    if list(parse_numbers(levels_table["step"])) != list(range(1, n_steps + 1)):
        problems.append("levels.csv: steps are not numbered 1, 2, ...")
    if np.isnan(level_of_step).any():
        problems.append("levels.csv: a level is not a number")
    if n_steps and (np.diff(level_of_step) < -GAP_RELATIVE * np.abs(level_of_step[1:])).any():
        problems.append("levels.csv: the levels fall from one step to the next")
    step = np.zeros(n_gaps, dtype=int)  # 0: outside E
    for iso3, target, text in zip(coverage["iso3"], coverage["target"], coverage["step"],
                                  strict=True):
        found = key.get((iso3, target))
        if found is None:
            continue
        value = parse_numbers(pd.Series([text]))[0]
        if in_e[found]:
            if not (value == value and 1 <= value <= n_steps and value == int(value)):
                problems.append(f"coverage.csv: {label[found]}: step {text!r} is not a step "
                                "of levels.csv")
            else:
                step[found] = int(value)
        elif text != "":
            problems.append(f"coverage.csv: {label[found]}: a step for a gap outside E")
    if problems or n_steps == 0 and in_e.any():
        checker.add(Check("levels tables", False, f"{n_steps} steps", "", problems
                          or ["levels.csv has no step although some gap can be funded"]))
        return

    # -- 1: every gap at the level of its step ----------------------------------------
    held = np.full(n_gaps, np.nan)  # E empty: no step, no level
    if n_steps:
        held = np.where(step > 0, level_of_step[np.maximum(step, 1) - 1], np.nan)
    expected = scale * held
    tol = GAP_USD + GAP_RELATIVE_U * fundable + ROW_CENT * np.maximum(rows_written, 1)
    off = in_e & ~(np.abs(amount - expected) <= tol)
    order = np.argsort(-np.abs(np.nan_to_num(amount - expected)) * off, kind="stable")
    problems = [f"{label[g]}: allocated {usd(amount[g])}, but its level is "
                f"{held[g]:.10g} (step {step[g]}) at priority {pi[g]:.6g}: expected "
                f"{usd(expected[g])} (off by {usd(amount[g] - expected[g])})"
                for g in order if off[g]]
    worst = float(np.max(np.abs(amount - expected)[in_e], initial=0.0))
    checker.add(Check("levels: gap amounts", not problems,
                      f"{int(in_e.sum())} gaps in E, each at priority x U x the level of its "
                      f"step; largest difference {usd(worst)}",
                      "0.01 USD + 1e-6 of U + half a cent per written row", problems))

    # -- 2 and 3: each step's duals ----------------------------------------------------
    index = {name: r for r, name in enumerate(rules.rows["name"])}
    level_row = {f"level[{i},{t}]": g for (i, t), g in key.items()}
    held_row = {f"held[{i},{t}]": g for (i, t), g in key.items()}
    sense = rules.rows["sense"].to_numpy(dtype=int)
    rhs = rules.rows["rhs_usd"].to_numpy(dtype=float)
    upper = rules.triples["upper_usd"].to_numpy(dtype=float)
    floor_rows = rules.floor_rows
    floor_u = rules.floor_fundable()
    # Each gap's own floor row, if it has one (-1: none).
    floor_row_of = np.array([index.get(f"floor[{i},{t}]", -1) for (i, t) in key], dtype=int)
    # z's bounds as docs/model.md sets them (check_floor compared the recorded ones with them).
    z_bounds = checker.z_bounds if checker.z_bounds is not None else \
        run.pair("floor_variable", "stage2_bounds")
    placed = run.number("levels", "allocated_at_least_usd")
    allocated_star = run.number("objective", "allocated_usd")
    dual_problems: list[str] = []
    stop_problems: list[str] = []
    if allocated_star is None or placed is None:
        dual_problems.append("manifest.json lacks objective.allocated_usd or "
                             "levels.allocated_at_least_usd")
        placed = 0.0
    elif placed < allocated_star - PLACED_SLACK_USD * in_e.sum() - 1e-7 * allocated_star \
            - SAME_CENT:  # X* is written to the cent; the run eases by 1e-7 of its own
        dual_problems.append(f"allocated[total] holds sum x >= {usd(float(placed))}, below "
                             f"X* {usd(float(allocated_star))} - 0.01 USD x {int(in_e.sum())} "
                             "gaps")
    grants = grants_of(rules)
    granted = float(checker.x @ grants)  # stage 1b counts grant money only (docs/model.md)
    # docs/outputs.md's tolerance for a rule: a cent per allocation row plus 1e-7 of its size.
    placed_tol = 2 * ROW_CENT * checker.n_written \
        + 1e-7 * max(float(placed), granted, 1e6)
    if granted < float(placed) - placed_tol:
        dual_problems.append(f"the allocation places {usd(granted)} of grants, less than "
                             f"allocated[total]'s {usd(float(placed))}")
    lcap = float(1.0 / pi[in_e].min()) if in_e.any() else 1.0
    step_name = parse_numbers(duals_table["step"])
    duals = parse_numbers(duals_table["dual"])
    names = duals_table["name"].to_numpy()
    worst_excess = 0.0
    rise = np.zeros(n_gaps)  # by stopped gap: the most its step's duals let it rise, USD
    rise_tol = GAP_USD + GAP_RELATIVE_U * fundable
    for k in range(1, n_steps + 1):
        here = step_name == k
        y = np.zeros(len(rules.rows))
        y_level = np.zeros(n_gaps)
        y_held = np.zeros(n_gaps)
        y_placed = 0.0
        for name, value in zip(names[here], duals[here], strict=True):
            if value != value:
                dual_problems.append(f"step {k}: {name}: dual is not a number")
            elif name in index:
                y[index[name]] = value
            elif name in level_row:
                y_level[level_row[name]] = value
            elif name in held_row:
                y_held[held_row[name]] = value
            elif name == "allocated[total]":
                y_placed = value
            else:
                dual_problems.append(f"step {k}: {name}: not a row of the step's LP")
        # Level, held and allocated rows are `>=` rows: their duals are <= 0. A row the
        # step does not have (a stopped gap's level row, a rising gap's held row) must
        # carry no dual beyond noise.
        rising = in_e & (step >= k)
        stopped_before = in_e & (step < k) & (step > 0)
        bad = np.nonzero((np.abs(y_level) * scale > POSITIVE_SHARE) & ~rising)[0]
        dual_problems.extend(f"step {k}: level row of {label[g]}, stopped at step {step[g]}, "
                             f"has dual {y_level[g]:.6g}" for g in bad)
        bad = np.nonzero((np.abs(y_held) * scale > POSITIVE_SHARE) & ~stopped_before)[0]
        dual_problems.extend(f"step {k}: held row of {label[g]}, not stopped before, has "
                             f"dual {y_held[g]:.6g}" for g in bad)
        # Wrong-signed duals priced at their worst: set to 0 (docs/outputs.md's convention).
        y = np.where(sense == LE, np.maximum(y, 0.0), np.minimum(y, 0.0))
        y_level = np.where(rising, np.minimum(y_level, 0.0), 0.0)
        y_held = np.where(stopped_before, np.minimum(y_held, 0.0), 0.0)
        y_placed = min(y_placed, 0.0)
        reduced = -rules.transpose_sums(y) - y_level[gap_of] - y_held[gap_of] \
            - y_placed * grants
        weight_l = -float(y_level @ scale)  # L's coefficient in the duals' combination
        base = float(y @ rhs) + float(y_held @ (scale * np.nan_to_num(held))) \
            + y_placed * float(placed)
        base += float(np.maximum(reduced, 0.0) @ upper)
        if z_bounds is not None and rules.has_floor:
            reduced_z = float(floor_u @ y[floor_rows])
            base += reduced_z * (z_bounds[1] if reduced_z > 0 else z_bounds[0])
        # weight_l x L <= base for every allocation. Pricing L's reduced cost 1 - weight_l
        # at Lcap turns the duals' written digits into Lcap / L_k times as much relative
        # error (priorities spread 1e6: 1e-12 becomes 1e-6); dividing by weight_l does not.
        bound = min(base + max(1.0 - weight_l, 0.0) * lcap,
                    base / weight_l if weight_l > 0 else np.inf)
        level_k = float(level_of_step[k - 1])
        # For every allocation that keeps each rising gap at level L or more, the duals'
        # combination gives |y_g| x (a_g - pi U L) <= base - weight_l L (every other row's
        # term is >= 0): how far, in USD, gap g can rise. Its own columns' positive reduced
        # costs (a level-row dual no rule dual balances) count in full, the rest of the
        # bound only where positive: negative noise in the rest (the solver's levels drift
        # up step by step) must not cancel them. L is the lowest of the recorded
        # level, the duals' bound on it and the level the written amounts of the gaps
        # stopped here show (each row rounded up by half a cent); LEVEL_DIGITS of it keeps
        # a dual balanced by a fake one from hiding in the noise.
        stopped = np.nonzero(in_e & (step == k))[0]
        shown = float((amount[stopped] + ROW_CENT * rows_written[stopped]).sum()
                      / scale[stopped].sum()) if scale[stopped].sum() > 0 else level_k
        floor_k = min(level_k, bound, shown)
        own = np.bincount(gap_of, weights=np.maximum(reduced, 0.0) * upper,
                          minlength=n_gaps)[stopped]
        rest = base - weight_l * floor_k - own + LEVEL_DIGITS * weight_l * floor_k
        room = fundable[stopped] - scale[stopped] * floor_k  # its gap row caps it anyway
        # The floor row's term |y| (a_g - U z) joins the level row's: with z >= z_lo
        # (priced at z_lo in base), |y| (a_g - U z_lo) <= the same bound, so a rise r
        # above the level costs |y| r less the floor's excess over the level.
        own_floor = floor_row_of[stopped]
        y_floor = np.where(own_floor >= 0, -y[np.maximum(own_floor, 0)], 0.0)
        if z_bounds is None or not rules.has_floor:
            y_floor[:] = 0.0
        floor_above = (np.maximum(float(z_bounds[0]) * fundable[stopped]
                                  - scale[stopped] * floor_k, 0.0)
                       if z_bounds is not None else np.zeros(len(stopped)))
        holding = -y_level[stopped] + y_floor
        floor_dual = np.zeros(n_gaps)
        floor_dual[stopped] = -y_floor
        by_duals = np.full(len(stopped), np.inf)  # no dual on its level or floor row: no bound
        held_by = holding > 0
        with np.errstate(over="ignore"):  # a dual of 1e-300 bounds nothing: inf
            by_duals[held_by] = (own + np.maximum(rest, 0.0)
                                 + y_floor * floor_above)[held_by] / holding[held_by]
        rise[stopped] = np.maximum(np.minimum(by_duals, room), 0.0)
        excess = bound - level_k
        worst_excess = max(worst_excess, excess / max(abs(level_k), 1e-12))
        if not excess <= GAP_RELATIVE * max(abs(level_k), 1e-12):
            dual_problems.append(f"step {k}: the duals bound L by {bound:.10g}, above the "
                                 f"recorded level {level_k:.10g}")
        reach = np.nonzero(rising & ~(amount >= scale * level_k - tol))[0]
        dual_problems.extend(f"step {k}: {label[g]} is still rising but gets "
                             f"{usd(amount[g])} < priority x U x L = {usd(scale[g] * level_k)}"
                             for g in reach)
        for g in stopped[~(rise[stopped] <= rise_tol[stopped])]:
            stop_problems.append(f"{label[g]} stops at step {k} (level {level_k:.10g}), but "
                                 f"its level row's dual {y_level[g]:.6g}"
                                 + (f" and its floor row's {floor_dual[g]:.6g}"
                                    if floor_dual[g] else "")
                                 + f" lets it rise {usd(rise[g])} above "
                                 f"{usd(scale[g] * level_k)} with every rising gap at the "
                                 "level")
    checker.cert.figures.update(levels_steps=float(n_steps),
                                levels_worst_excess=worst_excess)
    checker.add(Check("levels: each step optimal", not dual_problems,
                      f"{n_steps} steps; the largest dual bound on L exceeds the recorded level "
                      f"by {max(worst_excess, 0.0):.2e} relative", f"{GAP_RELATIVE:g} relative",
                      dual_problems))
    stopped_any = in_e & (step > 0)
    worst_rise = float(np.max(rise[stopped_any] / rise_tol[stopped_any], initial=0.0))
    checker.cert.figures.update(levels_worst_rise=worst_rise)
    checker.add(Check("levels: stopped gaps held", not stop_problems,
                      f"{int(in_e.sum())} gaps, each held at its level by its step's duals; "
                      f"the largest rise they allow is {worst_rise:.2e} of its tolerance",
                      "0.01 USD + 1e-6 of U", stop_problems))
    facts = LevelFacts(scale=scale, in_e=in_e, held=held, lcap=lcap, placed=float(placed),
                       z_bounds=z_bounds)
    checker.step("levels: stage 1b (money placed)", check_placed, facts)
    checker.step("levels: stage 3 (loan burden)", check_loans, facts)
