"""Turning a solution into the tables of a run folder (SPEC section 5).

Everything written is computed from the amounts as written (rounded to cents), so that
what an auditor recomputes from the files is what the files say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .backend import StageSolution
from .cents import round_to_cents, written_cents
from .model import GE, SCALE_USD, LinearProgram
from .solve import Solution


@dataclass
class RunTables:
    """The tables of one run, ready to be written."""

    allocations: pd.DataFrame
    coverage: pd.DataFrame
    sources_summary: pd.DataFrame
    constraints: pd.DataFrame
    stage1_constraints: pd.DataFrame | None


def written_amounts(lp: LinearProgram, x_usd: np.ndarray, pledge_usd: np.ndarray) -> np.ndarray:
    """Amounts as written, in USD: whole cents whose totals never exceed a source's pledge
    or a gap's fundable need as written (see `cents`), solver noise below a cent gone."""
    cents = round_to_cents(x_usd, lp.var_source, lp.var_gap, written_cents(pledge_usd),
                           written_cents(lp.fundable * SCALE_USD))
    return cents / 100.0


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
    allocated = _cent_totals(lp.var_gap, x_written, len(gaps))
    fundable = lp.fundable * SCALE_USD
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(fundable > 0, allocated / fundable, np.nan)
    return pd.DataFrame({
        "iso3": gaps["iso3"].to_numpy(),
        "target": gaps["target"].to_numpy(),
        "need_usd": gaps["need_usd"].to_numpy(dtype=float),
        "fundable_usd": fundable,
        "allocated_usd": np.round(allocated, 2),
        "coverage": coverage,
        "eligible": lp.gap_eligible,
    })


def sources_table(lp: LinearProgram, x_written: np.ndarray, solution: Solution) -> pd.DataFrame:
    """Per source: pledge, allocated, unallocated, and the dual of its budget row."""
    sources = lp.data.sources
    pledge = solution_pledges(lp, solution)
    allocated = _cent_totals(lp.var_source, x_written, len(sources))
    marginal = np.full(len(sources), np.nan)
    budget = lp.block("budget")
    if budget is not None:
        dual = solution.stage2.row_dual[budget.start:budget.stop]
        # A budget dual is >= 0 in exact arithmetic; a solver's -1e-12 is noise.
        marginal[lp._budget_sources] = np.maximum(dual, 0.0)
    return pd.DataFrame({
        "source_id": sources["source_id"].to_numpy(),
        "pledge_usd": pledge,
        "allocated_usd": allocated,
        # In whole cents, so pledge = allocated + unallocated as written, to the cent.
        "unallocated_usd": (written_cents(pledge) - np.rint(allocated * 100)) / 100.0,
        "marginal_value": marginal,
    })


def _cent_totals(group: np.ndarray, x_written: np.ndarray, size: int) -> np.ndarray:
    """Sums of written amounts by group, exact in cents (a float sum can drift by one)."""
    cents = np.rint(x_written * 100).astype(np.int64)
    return np.bincount(group, weights=cents, minlength=size).round() / 100.0


def solution_pledges(lp: LinearProgram, solution: Solution) -> np.ndarray:
    """The pledges in USD the solution was solved with (a sweep changes them)."""
    pledge = lp.pledge.copy()
    budget = lp.block("budget")
    if budget is not None:
        pledge[lp._budget_sources] = solution.rhs[budget.start:budget.stop]
    return pledge * SCALE_USD


def constraints_table(lp: LinearProgram, x_written: np.ndarray, stage: StageSolution,
                      rhs_scaled: np.ndarray, dual_scale: float = 1.0) -> pd.DataFrame:
    """`name,family,source_id,iso3,target,lhs,rhs,slack,dual` for every row, lhs from
    the written amounts; the keys blank where the row's family has none.

    A row is shown in its readable form: `floor[s,t]` as allocated >= z * U, and
    `thematic[t]` as allocated to t >= theta * all allocated. `dual` is d objective /
    d rhs, per USD; `dual_scale` turns a stage objective that is not in USD (stage 1's
    z) into per-USD terms.
    """
    n_x = lp.n_x
    x_part = lp.matrix[:, :n_x]
    lhs = np.asarray(x_part @ x_written).ravel()
    rhs = rhs_scaled * SCALE_USD
    families = lp.row_families()
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
    slack = np.where(lp.sense == GE, lhs - rhs, rhs - lhs)
    dual = stage.row_dual * dual_scale if stage.row_dual.size else np.full(lp.n_rows, np.nan)
    return pd.DataFrame({
        "name": lp.row_names(),
        "family": families,
        **lp.row_keys(),
        "lhs": lhs,
        "rhs": rhs,
        "slack": slack,
        "dual": dual,
    })


def build_tables(lp: LinearProgram, solution: Solution) -> RunTables:
    """All tables of a run from the model and its solution."""
    pledge = solution_pledges(lp, solution)
    x_written = written_amounts(lp, solution.x_usd, pledge)
    stage1 = None
    if solution.stage1 is not None:
        # Stage 1 maximises z, a share: its duals are per USD million of rhs.
        stage1 = constraints_table(lp, written_amounts(
            lp, solution.stage1.col_value[: lp.n_x] * SCALE_USD, pledge),
            solution.stage1, solution.rhs, dual_scale=1.0 / SCALE_USD)
    return RunTables(
        allocations=allocation_table(lp, x_written),
        coverage=coverage_table(lp, x_written),
        sources_summary=sources_table(lp, x_written, solution),
        constraints=constraints_table(lp, x_written, solution.stage2, solution.rhs),
        stage1_constraints=stage1,
    )


def summary(lp: LinearProgram, solution: Solution, tables: RunTables) -> dict[str, object]:
    """Headline figures of a run, for the terminal and the manifest."""
    cov = tables.coverage
    states = lp.data.states.set_index("iso3")
    by_income = _coverage_by(cov, cov["iso3"].map(states["income_group"]))
    by_target = _coverage_by(cov, cov["target"])
    constraints = tables.constraints
    binding = constraints[(constraints["dual"].abs() > 1e-9)]
    binding = binding.reindex(binding["dual"].abs().sort_values(ascending=False,
                                                                kind="stable").index)
    return {
        "floor": solution.floor,
        "floor_reason": no_floor_reason(lp) if solution.floor is None else None,
        "weighted": solution.weighted_usd,
        "allocated_usd": float(np.rint(tables.allocations["amount_usd"] * 100).sum()) / 100,
        "pledged_usd": float(tables.sources_summary["pledge_usd"].sum()),
        "fundable_usd": float(cov["fundable_usd"].sum()),
        "coverage_by_income": by_income,
        "coverage_by_target": by_target,
        "most_binding": [(r.name, float(r.dual)) for r in binding.head(3).itertuples()],
    }


def no_floor_reason(lp: LinearProgram) -> str:
    """Why a run has no floor (the floor set G is empty), in words for a reader."""
    group = lp.policy.equity.group
    if not (lp.pledge > 0).any():
        return "every pledge is 0, so no gap can receive money"
    states = lp.data.states
    if group == "ldc":
        members = states["ldc"].to_numpy(dtype=bool)
    elif group == "all":
        members = np.ones(len(states), dtype=bool)
    else:
        members = (states["income_group"] == group).to_numpy()
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
