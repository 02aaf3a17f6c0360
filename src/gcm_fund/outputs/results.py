"""Turning a solution into the tables of a run folder (docs/outputs.md).

Everything written is computed from the amounts as written (rounded to cents), so that
what an auditor recomputes from the files is what the files say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.inputs.schema import INCOME_GROUPS, RISK_KEYS
from gcm_fund.methods.stages import Solution
from gcm_fund.model import spec
from gcm_fund.model.cents import cents_by_group, round_to_cents, usd_of_cents, written_cents
from gcm_fund.model.eligibility import state_loan_cap
from gcm_fund.model.lp import GE, SCALE_USD, LinearProgram
from gcm_fund.model.spec import POSITIVE_DUAL, equity_members
from gcm_fund.outputs import schema as output_schema
from gcm_fund.solvers.backend import StageSolution


@dataclass
class RunTables:
    """The tables of one run, ready to be written."""

    allocations: pd.DataFrame
    coverage: pd.DataFrame
    sources_summary: pd.DataFrame
    constraints: pd.DataFrame
    stage1_constraints: pd.DataFrame | None
    # docs/terms.md: per State with a gap, its grants, loans and their grant equivalent.
    states_summary: pd.DataFrame | None = None
    # Under levels (docs/model.md): `levels.csv`, `level_duals.csv` and `stage_duals.csv`.
    levels: pd.DataFrame | None = None
    level_duals: pd.DataFrame | None = None
    stage_duals: pd.DataFrame | None = None
    # With contributions.csv (docs/contributions.md): `resources.csv`, one row per contribution.
    resources: pd.DataFrame | None = None
    # With history.csv (docs/cycles.md): `performance.csv`, one row per State with history.
    performance: pd.DataFrame | None = None
    # Under programmes (docs/programmes.md): `selection.csv`, `programme_allocations.csv`,
    # `relaxation_duals.csv`.
    selection: pd.DataFrame | None = None
    programme_allocations: pd.DataFrame | None = None
    relaxation_duals: pd.DataFrame | None = None


def written_amounts(lp: LinearProgram, x_usd: np.ndarray, pledge_usd: np.ndarray) -> np.ndarray:
    """Amounts as written, in USD: whole cents whose totals never exceed a source's pledge,
    a gap's fundable need, a source's per-State cap or a State's absorption or share cap
    (see `cents`), solver noise below a cent gone."""
    pledge_usd = np.asarray(pledge_usd, dtype=float)
    cents = round_to_cents(x_usd, lp.var_source, lp.var_gap, written_cents(pledge_usd),
                           written_cents(lp.fundable * SCALE_USD),
                           more=_capped_groups(lp, pledge_usd))
    return cents / 100.0


def _capped_groups(lp: LinearProgram, pledge_usd: np.ndarray
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The caps beyond budgets and gaps, as `cents.round_to_cents` takes them: each source's
    per-State cap rho_f B_f where rho_f < 1 (`source_state`), and each State's least of its
    absorption and kappa x all pledges (`absorb`, `state_share`), rounded down to a cent."""
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    n_states = len(lp.data.states)
    share = lp.source_share[lp.var_source]
    if (share < 1.0).any():
        pair = lp.var_source.astype(np.int64) * n_states + lp.var_state
        present, member = np.unique(pair, return_inverse=True)
        member = np.where(share < 1.0, member, -1)
        f = present // n_states
        groups.append((member, _cap_cents(lp.source_share[f] * pledge_usd[f])))
    absorption = lp.data.states["absorption_usd"].to_numpy(dtype=float)
    state_cap = np.where(np.isnan(absorption), np.inf, absorption)
    kappa = lp.policy.limits.max_state_share
    if kappa < 1.0:
        state_cap = np.minimum(state_cap, kappa * float(pledge_usd.sum()))
    if np.isfinite(state_cap).any():
        member = np.where(np.isfinite(state_cap[lp.var_state]), lp.var_state, -1)
        groups.append((member, _cap_cents(np.where(np.isfinite(state_cap), state_cap, 0.0))))
    return groups


def _cap_cents(cap_usd: np.ndarray) -> np.ndarray:
    """A cap in whole cents, rounded down (the written total must not exceed it); a hair
    of float noise below a whole cent counts as that cent."""
    return np.floor(np.asarray(cap_usd, dtype=float) * 100.0 + 1e-6).astype(np.int64)


def allocation_table(lp: LinearProgram, x_written: np.ndarray) -> pd.DataFrame:
    """`source_id,iso3,target,amount_usd`: the non-zero amounts, sorted by the keys."""
    keep = x_written > 0
    table = pd.DataFrame({
        "source_id": lp.data.sources["source_id"].to_numpy()[lp.var_source[keep]],
        "iso3": lp.data.gaps["iso3"].to_numpy()[lp.var_gap[keep]],
        "target": lp.data.gaps["target"].to_numpy()[lp.var_gap[keep]],
        "amount_usd": x_written[keep],
    })
    return table.sort_values(["source_id", "iso3", "target"], kind="stable", ignore_index=True)


def coverage_table(lp: LinearProgram, x_written: np.ndarray) -> pd.DataFrame:
    """Per gap: need, fundable share, what was allocated, coverage and eligibility."""
    gaps = lp.data.gaps
    allocated = usd_of_cents(_cent_totals(lp.var_gap, x_written, len(gaps)))
    fundable = lp.fundable * SCALE_USD
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(fundable > 0, allocated / fundable, np.nan)
    return pd.DataFrame({
        "iso3": gaps["iso3"].to_numpy(),
        "target": gaps["target"].to_numpy(),
        "need_usd": gaps["need_usd"].to_numpy(dtype=float),
        "fundable_usd": fundable,
        "allocated_usd": allocated,  # whole cents, correctly rounded (np.round is not at 1e14)
        "coverage": coverage,
        "eligible": lp.gap_eligible,
    })


def sources_table(lp: LinearProgram, x_written: np.ndarray, solution: Solution,
                  dual_scale: float = 1.0) -> pd.DataFrame:
    """Per source: pledge, allocated, unallocated, and the dual of its budget row (under
    levels the last step's: how far the last level rises per USD of pledge)."""
    sources = lp.data.sources
    pledge = solution_pledges(lp, solution)
    allocated_cents = _cent_totals(lp.var_source, x_written, len(sources))
    marginal = np.full(len(sources), np.nan)
    budget = lp.block("budget")
    if budget is not None:
        dual = solution.stage2.row_dual[budget.start:budget.stop]
        # A budget dual is >= 0 in exact arithmetic; a solver's -1e-12 is noise.
        marginal[lp._budget_sources] = np.maximum(dual, 0.0) * dual_scale
    return pd.DataFrame({
        "source_id": sources["source_id"].to_numpy(),
        "pledge_usd": pledge,
        "allocated_usd": usd_of_cents(allocated_cents),
        # In whole cents, so pledge = allocated + unallocated as written, to the cent.
        "unallocated_usd": usd_of_cents(written_cents(pledge) - allocated_cents),
        "marginal_value": marginal,
        # Summed exactly, then rounded once: g x of one row has fractions of a cent.
        "grant_equivalent_usd": np.rint(np.bincount(
            lp.var_source, weights=np.rint(x_written * 100) * grant_element(lp),
            minlength=len(sources))) / 100.0,
        # Under levels the engine fills both figures by re-solves (`donor_figures`).
        "placed_per_usd": np.full(len(sources), np.nan),
        "additionality": np.full(len(sources), np.nan),
    })


def grant_element(lp: LinearProgram) -> np.ndarray:
    """g_f of every allocation column (docs/terms.md): 1 for a grant, the loan's grant element."""
    sources = lp.data.source_table
    g = np.array([spec.grant_equivalent(i, e) for i, e in
                  zip(sources["instrument"], sources["grant_element"], strict=True)], dtype=float)
    return g[lp.var_source]


def terms_metrics(lp: LinearProgram, x_usd: np.ndarray) -> dict[str, float | None]:
    """docs/terms.md's figures of an allocation, for `sweep` and `compare`: the grant equivalent
    (USD), its shares by LDC status and income group, and the loans' share of the money
    of the States of each debt risk (None where a share has nothing to divide)."""
    states = lp.data.state_table
    equivalent = x_usd * grant_element(lp)
    total = float(equivalent.sum())
    ldc = np.asarray(states["ldc"], dtype=bool)[lp.var_state]
    income = np.asarray(states["income_group"], dtype=object)[lp.var_state]
    risk = np.array([spec.risk_word(bool(d), r) for d, r in
                     zip(states["debt_distress"], states["debt_risk"], strict=True)],
                    dtype=object)[lp.var_state]
    is_loan = np.asarray(lp.data.source_table["instrument"] == "loan")[lp.var_source]

    def part(numerator: float, denominator: float) -> float | None:
        return numerator / denominator if denominator > 0 else None

    found: dict[str, float | None] = {"grant_equivalent_usd": total,
                                      "ge_ldc_share": part(float(equivalent[ldc].sum()), total)}
    for group in INCOME_GROUPS:
        found[f"ge_income_share[{group}]"] = part(float(equivalent[income == group].sum()),
                                                   total)
    for word in RISK_KEYS:
        mine = risk == word
        found[f"loans_share[{word}]"] = part(float(x_usd[mine & is_loan].sum()),
                                             float(x_usd[mine].sum()))
    return found


TERMS_METRICS = ("grant_equivalent_usd", "ge_ldc_share",
                 *(f"ge_income_share[{g}]" for g in INCOME_GROUPS),
                 *(f"loans_share[{r}]" for r in RISK_KEYS))


STATES_SUMMARY_COLUMNS = output_schema.STATES_SUMMARY.column_names


def states_table(lp: LinearProgram, x_written: np.ndarray) -> pd.DataFrame:
    """`states_summary.csv` (docs/terms.md): one row per State with a gap, sorted by iso3;
    amounts sum the written ones, `loan_share` = loans / allocated (blank when nothing is
    allocated), `coverage` = allocated / fundable (blank when fundable is 0)."""
    states = lp.data.state_table
    n = len(states)
    is_loan = np.asarray(lp.data.source_table["instrument"] == "loan")[lp.var_source]
    # Exact in cents, then rounded once per State (a grant equivalent has fractions of one).
    cents = np.rint(x_written * 100).astype(np.int64)
    allocated = cents_by_group(lp.var_state, cents, n)
    loans = cents_by_group(lp.var_state, cents * is_loan, n)
    equivalent = np.bincount(lp.var_state, weights=cents * grant_element(lp), minlength=n)
    need = np.bincount(lp.gap_state, weights=lp.data.gap_table["need_usd"], minlength=n)
    fundable = np.bincount(lp.gap_state, weights=lp.fundable * SCALE_USD, minlength=n)
    has_gap = np.bincount(lp.gap_state, minlength=n) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(allocated > 0, loans / allocated, np.nan)
        coverage = np.where(fundable > 0, allocated / 100 / fundable, np.nan)
    risk = [spec.risk_word(bool(d), r) for d, r in
            zip(states["debt_distress"], states["debt_risk"], strict=True)]
    table = pd.DataFrame({
        "iso3": states["iso3"], "name": states["name"], "income_group": states["income_group"],
        "ldc": states["ldc"], "debt_risk": risk, "need_usd": need, "fundable_usd": fundable,
        "allocated_usd": usd_of_cents(allocated),
        "grants_usd": usd_of_cents(allocated - loans), "loans_usd": usd_of_cents(loans),
        "grant_equivalent_usd": np.rint(equivalent) / 100,
        "loan_share": share, "coverage": coverage,
    })
    return table[has_gap].reset_index(drop=True)


def _cent_totals(group: np.ndarray, x_written: np.ndarray, size: int) -> np.ndarray:
    """Sums of written amounts by group in whole cents, exact (a float sum can drift)."""
    return cents_by_group(group, np.rint(x_written * 100), size)


def solution_pledges(lp: LinearProgram, solution: Solution) -> np.ndarray:
    """The pledges in USD the solution was solved with (a sweep changes them)."""
    pledge = lp.pledge.copy()
    budget = lp.block("budget")
    if budget is not None:
        pledge[lp._budget_sources] = solution.rhs[budget.start:budget.stop]
    return pledge * SCALE_USD


def row_labels(lp: LinearProgram) -> dict[str, Any]:
    """The `name`, `family`, `source_id`, `iso3` and `target` columns of a constraints
    table: the same for every stage of one LP, so computed once per LP."""
    return {"name": lp.row_names(), "family": lp.row_families(), **lp.row_keys()}


def constraints_table(lp: LinearProgram, x_written: np.ndarray, stage: StageSolution,
                      rhs_scaled: np.ndarray, dual_scale: float = 1.0,
                      duals: np.ndarray | None = None,
                      labels: dict[str, Any] | None = None) -> pd.DataFrame:
    """`name,family,source_id,iso3,target,lhs,rhs,slack,dual` for every row, lhs from
    the written amounts; the keys blank where the row's family has none.

    A row is shown in its readable form: `floor[s,t]` as allocated >= z * U, and
    `thematic[t]` as allocated to t >= theta * all allocated. `dual` is d objective /
    d rhs, per USD; `dual_scale` turns a stage objective that is not in USD (stage 1's
    z) into per-USD terms. `labels` are `row_labels(lp)`, when the caller has them.
    """
    # The other columns (z) at 0 instead of a slice of the matrix without them: the same
    # sums (a zero term leaves a sum as it is) without copying the matrix's non-zeros.
    columns = np.zeros(lp.matrix.shape[1])
    columns[:lp.n_x] = x_written
    lhs = np.asarray(lp.matrix @ columns).ravel()
    rhs = rhs_scaled * SCALE_USD
    if lp.z_col is not None and stage.col_value.size:
        floor = lp.block("floor")
        assert floor is not None
        z = float(stage.col_value[lp.z_col])
        rhs[floor.start:floor.stop] = z * lp.fundable[lp.floor_gaps] * SCALE_USD
    thematic = lp.block("thematic")
    if thematic is not None:
        total = float(x_written.sum())
        var_target = lp.data.gaps["target"].to_numpy()[lp.var_gap]
        in_target = np.array([x_written[var_target == t].sum() for t in thematic.keys[0]])
        theta = np.array([lp.policy.thematic.min_share[t] for t in thematic.keys[0]])
        lhs[thematic.start:thematic.stop] = in_target
        rhs[thematic.start:thematic.stop] = theta * total
    loan_share = lp.block("loan_share")
    if loan_share is not None:
        # Shown as loans to s <= m(s) * all money to s (the row itself: their difference <= 0).
        cap = state_loan_cap(lp.data, lp.policy)
        states = np.searchsorted(lp.data.states["iso3"].to_numpy(), loan_share.keys[0])
        is_loan = np.asarray(lp.data.source_table["instrument"] == "loan")[lp.var_source]
        n = len(lp.data.states)
        loans = np.bincount(lp.var_state, weights=x_written * is_loan, minlength=n)
        money = np.bincount(lp.var_state, weights=x_written, minlength=n)
        lhs[loan_share.start:loan_share.stop] = loans[states]
        rhs[loan_share.start:loan_share.stop] = cap[states] * money[states]
    regional = lp.block("regional")
    if regional is not None:
        var_region = lp.data.states["region"].to_numpy()[lp.var_state]
        theta = np.array([lp.policy.regional.min_share[r] for r in regional.keys[0]])
        lhs[regional.start:regional.stop] = [x_written[var_region == r].sum()
                                             for r in regional.keys[0]]
        rhs[regional.start:regional.stop] = theta * float(x_written.sum())
    slack = np.where(lp.sense == GE, lhs - rhs, rhs - lhs)
    if duals is None:
        duals = stage.row_dual if stage.row_dual.size else np.full(lp.n_rows, np.nan)
    dual = duals[: lp.n_rows] * dual_scale
    return pd.DataFrame({
        **(labels if labels is not None else row_labels(lp)),
        "lhs": lhs,
        "rhs": rhs,
        "slack": slack,
        "dual": dual,
    })


def build_tables(lp: LinearProgram, solution: Solution) -> RunTables:
    """All tables of a run from the model and its solution."""
    tables = _solution_tables(lp, solution)
    if lp.data.valuation is not None:
        tables.resources = lp.data.valuation.table()
    if lp.data.cycle is not None:
        tables.performance = lp.data.cycle.performance
    return tables


def _solution_tables(lp: LinearProgram, solution: Solution) -> RunTables:
    pledge = solution_pledges(lp, solution)
    x_written = written_amounts(lp, solution.x_usd, pledge)
    if solution.levels is not None:
        return _level_tables(lp, solution, x_written)
    labels = row_labels(lp)
    stage1 = None
    if solution.stage1 is not None:
        # Stage 1 maximises z, a share: its duals are per USD million of rhs.
        stage1 = constraints_table(lp, written_amounts(
            lp, solution.stage1.col_value[: lp.n_x] * SCALE_USD, pledge),
            solution.stage1, solution.rhs, dual_scale=1.0 / SCALE_USD, labels=labels)
    tables = RunTables(
        allocations=allocation_table(lp, x_written),
        coverage=coverage_table(lp, x_written),
        sources_summary=sources_table(lp, x_written, solution),
        states_summary=states_table(lp, x_written),
        constraints=constraints_table(lp, x_written, solution.stage2, solution.rhs,
                                      labels=labels),
        stage1_constraints=stage1,
    )
    if solution.programmes is not None:
        from gcm_fund.outputs.programme_tables import add_programme_tables

        add_programme_tables(tables, solution.programmes)
    return tables


def summary(lp: LinearProgram, solution: Solution, tables: RunTables) -> dict[str, object]:
    """Headline figures of a run, for the terminal and the manifest."""
    cov = tables.coverage
    states = lp.data.states.set_index("iso3")
    by_income = _coverage_by(cov, cov["iso3"].map(states["income_group"]))
    by_target = _coverage_by(cov, cov["target"])
    constraints = tables.constraints
    binding = constraints[(constraints["dual"].abs() > POSITIVE_DUAL)]
    binding = binding.reindex(binding["dual"].abs().sort_values(ascending=False,
                                                                kind="stable").index)
    return {
        "floor": solution.floor,
        "floor_reason": no_floor_reason(lp) if solution.floor is None else None,
        "weighted": solution.weighted_usd,
        "allocated_usd": int(np.rint(tables.allocations["amount_usd"] * 100).astype(np.int64)
                             .sum()) / 100,
        "pledged_usd": float(tables.sources_summary["pledge_usd"].sum()),
        "grant_equivalent_usd": float(np.rint(
            tables.sources_summary["grant_equivalent_usd"] * 100).sum()) / 100,
        "fundable_usd": float(cov["fundable_usd"].sum()),
        "coverage_by_income": by_income,
        "coverage_by_target": by_target,
        "most_binding": [(r.name, float(r.dual)) for r in binding.head(3).itertuples()],
        **(_level_summary(lp, solution, tables) if solution.levels is not None else {}),
    }


def _level_summary(lp: LinearProgram, solution: Solution, tables: RunTables
                   ) -> dict[str, object]:
    """Under levels: what set the floor (stage 1's binding rules other than floor rows),
    and the rules that stopped the most money (by family, each gap's amount counted once
    per family among its `stopped_by`)."""
    floor_set_by: list[str] = []
    if solution.stage1 is not None and solution.stage1.row_dual.size:
        dual = solution.stage1.row_dual[: lp.n_rows]
        families = lp.row_families()
        names = np.array(lp.row_names(), dtype=object)
        rows = np.nonzero((np.abs(dual) > POSITIVE_DUAL) & (families != "floor"))[0]
        rows = rows[np.argsort(-np.abs(dual[rows]), kind="stable")]
        floor_set_by = [str(n) for n in names[rows]]
    cov = tables.coverage
    money: dict[str, list[float]] = {}
    named: dict[str, set[str]] = {}
    for rules, amount in zip(cov["stopped_by"], cov["allocated_usd"], strict=True):
        families_here: set[str] = set()
        for rule in str(rules).split(";") if rules else []:
            family = rule.partition("[")[0]
            named.setdefault(family, set()).add(rule)
            if family not in families_here:
                families_here.add(family)
                entry = money.setdefault(family, [0.0, 0.0])
                entry[0] += 1
                entry[1] += float(amount)
    stopped = sorted(((f, int(n), usd, sorted(named[f])) for f, (n, usd) in money.items()),
                     key=lambda item: (-item[2], item[0]))
    return {"method": "levels", "floor_set_by": floor_set_by, "stopped_most": stopped}


def no_floor_reason(lp: LinearProgram) -> str:
    """Why a run has no floor (the floor set G is empty), in words for a reader."""
    group = lp.policy.equity.group
    if not (lp.pledge > 0).any():
        return "every pledge is 0, so no gap can receive money"
    states = lp.data.state_table
    members = equity_members(group, states["ldc"], states["income_group"])
    if not members[lp.gap_state].any():
        return f"no gap in the equity group {group}"
    return (f"no gap in the equity group {group} can receive money (earmarks, absorption, "
            "debt distress or a co-financing share of 0 leave each without a source)")


def floor_text(floor: float | None, reason: str | None, digits: int = 2) -> str:
    """The floor for a reader: a percentage, or 'none' with the reason.

    z is bounded below by min_floor >= 0, so a negative value is the solver's rounding
    (-1e-12), shown as 0 rather than as -0.00%.
    """
    if floor is None:
        return f"none ({reason or 'no gap in the equity group'})"
    return f"{max(floor, 0.0):.{digits}%}"


def _coverage_by(coverage: pd.DataFrame, key: pd.Series) -> dict[str, tuple[float, float]]:
    grouped = coverage.groupby(key, sort=True)[["allocated_usd", "fundable_usd"]].sum()
    return {str(k): (float(r.allocated_usd), float(r.fundable_usd))
            for k, r in grouped.iterrows()}


# ---------------------------------------------------------------------------------------
# Priority levels (docs/model.md)



def distinct_levels(levels: np.ndarray) -> int:
    """How many distinct levels: values within 1e-6 relative count as one (CBC reads
    values back with 8 significant digits, so one level may come back twice)."""
    from gcm_fund.methods.levels import distinct_level_values

    return len(distinct_level_values(levels))


def _step_rules(lp: LinearProgram, solution: Solution, names: np.ndarray
                ) -> tuple[list[list[str]], list[dict[int, list[str]]]]:
    """Per step: its positive-dual rules (not level or held rows), and for every gap it
    stopped, those of them whose row holds one of the gap's columns, `gap[...]` first.
    `names`: the extended LP's row names."""
    import scipy.sparse as sp  # here, not at the top: `validate` imports this module lean

    levels = solution.levels
    ext = levels.ext
    families = ext.row_families()
    rule = ~np.isin(families, ("level", "held"))
    by_gap = sp.csr_matrix((np.ones(lp.n_x), (np.arange(lp.n_x), lp.var_gap)),
                           shape=(lp.n_x, len(lp.data.gaps)))
    x_part = ext.matrix[:, : lp.n_x].tocsr()
    step_rules: list[list[str]] = []
    gap_rules: list[dict[int, list[str]]] = []
    for step in levels.steps:
        rows = step.dual_rows[(np.abs(step.dual_values) > POSITIVE_DUAL)
                              & rule[step.dual_rows]]
        order = np.argsort([0 if families[r] == "gap" else 1 for r in rows], kind="stable")
        rows = rows[order]
        step_rules.append([str(names[r]) for r in rows])
        touches = (abs(x_part[rows]) @ by_gap).tocsc()
        touches.eliminate_zeros()
        touches.sort_indices()
        # Column slices read from the index arrays: scipy's own slicing costs more per
        # gap than the rest of the step, and a step can stop hundreds of gaps.
        start, index = touches.indptr, touches.indices
        stopped: dict[int, list[str]] = {}
        for g in step.stopped.tolist():
            hit = index[start[g]:start[g + 1]]
            stopped[int(g)] = [str(names[rows[i]]) for i in hit.tolist()]
        gap_rules.append(stopped)
    return step_rules, gap_rules


def _level_tables(lp: LinearProgram, solution: Solution, x_written: np.ndarray) -> RunTables:
    """The tables of docs/model.md: duals d L / d rhs of the last step, per USD."""
    levels = solution.levels
    per_usd = 1.0 / SCALE_USD
    coverage = coverage_table(lp, x_written)
    priority = levels.priority
    in_e = lp.gap_eligible
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(in_e, coverage["coverage"].to_numpy(dtype=float) / priority, np.nan)
    names = np.array(levels.ext.row_names(), dtype=object)
    step_rules, gap_rules = _step_rules(lp, solution, names)
    stopped_by = np.full(len(lp.data.gaps), "", dtype=object)
    for found in gap_rules:
        for g, rules in found.items():
            stopped_by[g] = ";".join(rules)
    coverage["priority"] = priority
    coverage["level"] = level
    coverage["stopped_by"] = stopped_by
    # The step that stopped the gap: what `certify` needs to rebuild each step's LP.
    coverage["step"] = [str(k + 1) if k >= 0 else "" for k in levels.stop_step]
    # The step depends on the solver's path; the rank of the level does not (docs/outputs.md).
    from gcm_fund.methods.levels import distinct_level_values, level_ranks

    ranks = level_ranks(levels.held)
    coverage["level_rank"] = ["" if r != r else str(int(r)) for r in ranks]
    steps = levels.steps
    distinct = np.asarray(distinct_level_values(levels.held))
    step_rank = np.searchsorted(distinct, [s.level for s in steps], side="right")
    table = pd.DataFrame({
        "step": np.arange(1, len(steps) + 1),
        "level": [s.level for s in steps],
        "gaps_stopped": [len(s.stopped) for s in steps],
        "stopped_by": [";".join(r) for r in step_rules],
        "level_rank": [str(int(max(r, 1))) for r in step_rank],
    })
    duals = pd.DataFrame({
        "step": np.concatenate([np.full(len(s.dual_rows), k + 1) for k, s in enumerate(steps)]
                               or [np.zeros(0, dtype=int)]).astype(int),
        "name": np.concatenate([names[s.dual_rows] for s in steps] or [np.zeros(0, dtype=object)]),
        "dual": np.concatenate([s.dual_values for s in steps] or [np.zeros(0)]) * per_usd,
    })
    # Stages 1b and 3 maximise USD (the money placed, minus the loan burden) over USD
    # right-hand sides: their duals are per USD as solved.
    found = levels.stage_duals or {}
    stage_duals = pd.DataFrame({
        "stage": np.concatenate([np.full(len(found[k][0]), k, dtype=object) for k in found]
                                or [np.zeros(0, dtype=object)]),
        "name": np.concatenate([names[found[k][0]] for k in found]
                               or [np.zeros(0, dtype=object)]),
        "dual": np.concatenate([found[k][1] for k in found] or [np.zeros(0)]),
    })
    labels = row_labels(lp)
    stage1 = None
    if solution.stage1 is not None:
        stage1 = constraints_table(lp, written_amounts(
            lp, solution.stage1.col_value[: lp.n_x] * SCALE_USD, solution_pledges(lp, solution)),
            solution.stage1, solution.rhs, dual_scale=per_usd, labels=labels)
    return RunTables(
        allocations=allocation_table(lp, x_written),
        coverage=coverage,
        sources_summary=sources_table(lp, x_written, solution, dual_scale=per_usd),
        states_summary=states_table(lp, x_written),
        # The last step's duals as level_duals.csv records them (the others are 0).
        constraints=constraints_table(lp, x_written, solution.stage2, solution.rhs,
                                      dual_scale=per_usd, labels=labels,
                                      duals=_recorded_duals(lp, steps[-1]) if steps else None),
        stage1_constraints=stage1,
        levels=table,
        level_duals=duals,
        stage_duals=stage_duals,
    )


def _recorded_duals(lp: LinearProgram, step: Any) -> np.ndarray:
    """A level step's duals on `lp`'s rows as written to level_duals.csv: those it records
    (above the written threshold), 0 elsewhere."""
    dense = np.zeros(lp.n_rows)
    rows = np.asarray(step.dual_rows)
    inside = rows < lp.n_rows
    dense[rows[inside]] = np.asarray(step.dual_values)[inside]
    return dense
