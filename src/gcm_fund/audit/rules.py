"""The rules of docs/model.md, rebuilt from the inputs without model.py."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gcm_fund.audit.cycles import Restated, factors, fundable_after, pacing_rows
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.model.spec import equity_members, fundable_usd

LE, GE = 1, -1


@dataclass
class Rules:
    """The LP of docs/model.md in USD, rebuilt from the inputs and the policy.

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
    regional: dict[str, float] = dataclasses.field(default_factory=dict)
    cycle: Restated | None = None  # docs/cycles.md's figures, from the copied history.csv

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

    def row_keys(self) -> pd.DataFrame:
        """`name,source_id,iso3,target` of every row, from the row's own key (blank where
        its family has none), as constraints.csv must carry them."""
        rows = self.rows
        sources = self.data.sources["source_id"].to_numpy()
        states = self.data.states["iso3"].to_numpy()
        gaps = self.gaps

        def pick(index: str, values: np.ndarray) -> np.ndarray:
            at = pd.to_numeric(rows[index], errors="coerce").to_numpy()
            has = ~np.isnan(at)
            out = np.full(len(rows), "", dtype=object)
            out[has] = values[at[has].astype(int)]
            return out

        iso3 = pick("state", states)
        by_gap = pick("gap", gaps["iso3"].to_numpy())
        iso3[by_gap != ""] = by_gap[by_gap != ""]
        target = pick("gap", gaps["target"].to_numpy())
        named = rows["target"].notna().to_numpy()
        target[named] = rows["target"].to_numpy()[named]
        return pd.DataFrame({"name": rows["name"].to_numpy(),
                             "source_id": pick("source", sources), "iso3": iso3,
                             "target": target})

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


def rebuild(data: ProblemData, policy: Policy, cycle: Restated | None = None) -> Rules:
    """The rules of docs/model.md for these inputs and this policy (independent of model.py);
    with `cycle` (audit/cycles.py), docs/cycles.md's U', factors and pacing rows."""
    states = data.states.reset_index(drop=True)
    gaps = data.gaps.reset_index(drop=True)
    sources = data.sources.reset_index(drop=True)
    state_of_gap = pd.Index(states["iso3"]).get_indexer(gaps["iso3"])
    income = states["income_group"].to_numpy()[state_of_gap]
    region = states["region"].to_numpy()[state_of_gap]
    loan_cap = state_loan_caps(states, policy)
    absorption = states["absorption_usd"].to_numpy(dtype=float)
    gap_target = gaps["target"].to_numpy()
    gap_iso3 = gaps["iso3"].to_numpy()
    fundable = fundable_usd(gaps["need_usd"].to_numpy(dtype=float), income, policy.cofinancing)
    fundable = fundable_after(cycle, gaps["iso3"].to_numpy(), gaps["target"].to_numpy(),
                              fundable)
    can_absorb = ~(absorption[state_of_gap] <= 0)  # blank (NaN) means no limit
    can_absorb &= states["eligible"].to_numpy(dtype=bool)[state_of_gap]

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
            ok &= loan_cap[state_of_gap] > 0
        found = np.nonzero(ok)[0]
        source_of.append(np.full(len(found), f))
        gap_of.append(found)
    f_of = np.concatenate(source_of).astype(int) if source_of else np.zeros(0, dtype=int)
    g_of = np.concatenate(gap_of).astype(int) if gap_of else np.zeros(0, dtype=int)
    is_loan = (sources["instrument"] == "loan").to_numpy()[f_of]
    # docs/terms.md: a State whose loans are capped below 1 and which no grant reaches takes
    # no loan either (at most a share m of nothing).
    granted = np.zeros(len(states), dtype=bool)
    granted[state_of_gap[g_of[~is_loan]]] = True
    capped = (loan_cap > 0) & (loan_cap < 1)
    keep = ~(is_loan & capped[state_of_gap[g_of]] & ~granted[state_of_gap[g_of]])
    f_of, g_of, is_loan = f_of[keep], g_of[keep], is_loan[keep]
    s_of = state_of_gap[g_of]

    eligible = np.zeros(len(gaps), dtype=bool)
    eligible[g_of] = True
    member = equity_members(policy.equity.group, states["ldc"].to_numpy(dtype=bool),
                            states["income_group"].to_numpy())[state_of_gap]
    gap_table = pd.DataFrame({
        "iso3": gap_iso3, "target": gap_target,
        "need_usd": gaps["need_usd"].to_numpy(dtype=float), "fundable_usd": fundable,
        "income_group": income, "state": state_of_gap, "eligible": eligible,
        "in_floor": eligible & member,
        "factor": factors(cycle, gap_iso3),  # p_s of docs/cycles.md, 1 without history
    })

    pledge = sources["pledge_usd"].to_numpy(dtype=float)
    rho = sources["max_state_share"].to_numpy(dtype=float)
    rho = np.where(np.isnan(rho), policy.limits.max_source_state_share, rho)
    kappa_cap = policy.limits.max_state_share * pledge.sum()
    weight = _triple_weights(states, sources, policy, f_of, g_of, s_of, gap_target, income,
                             gap_table["factor"].to_numpy())
    upper = np.minimum.reduce([fundable[g_of], pledge[f_of], rho[f_of] * pledge[f_of],
                               np.nan_to_num(absorption[s_of], nan=np.inf),
                               np.full(len(f_of), kappa_cap)]) if len(f_of) else np.zeros(0)
    triples = pd.DataFrame({
        "source_id": sources["source_id"].to_numpy()[f_of], "iso3": gap_iso3[g_of],
        "target": gap_target[g_of], "source": f_of, "gap": g_of, "state": s_of,
        "weight": weight, "upper_usd": upper, "loan": is_loan,
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
    regional = {r: float(v) for r, v in sorted(policy.regional.min_share.items()) if v > 0}
    if len(f_of) and regional:
        names = list(regional)
        theta = np.array(list(regional.values()))
        state_region = states["region"].to_numpy()
        coef = (state_region[s_of][None, :] == np.array(names, dtype=object)[:, None]) \
            - theta[:, None]
        row_of, cols = np.nonzero(coef)
        add("regional", pd.DataFrame({"region": names}), [f"regional[{r}]" for r in names],
            GE, np.zeros(len(names)), row_of, cols, coef[row_of, cols])
    floor_gaps = np.nonzero(gap_table["in_floor"].to_numpy())[0]
    if policy.allocation.method == "programmes":  # docs/programmes.md has no floor
        floor_gaps = floor_gaps[:0]
        gap_table["in_floor"] = False
    if len(floor_gaps):
        position = np.full(len(gaps), -1)
        position[floor_gaps] = np.arange(len(floor_gaps))
        cols = np.nonzero(position[g_of] >= 0)[0]
        add("floor", pd.DataFrame({"gap": floor_gaps}),
            [f"floor[{gap_iso3[g]},{gap_target[g]}]" for g in floor_gaps], GE,
            np.zeros(len(floor_gaps)), position[g_of[cols]], cols, np.ones(len(cols)))

    lending = np.zeros(len(states), dtype=bool)
    lending[s_of[is_loan & capped[s_of]]] = True
    if lending.any():
        cols = np.nonzero(lending[s_of])[0]
        present, row_of = np.unique(s_of[cols], return_inverse=True)
        add("loan_share", pd.DataFrame({"state": present}),
            [f"loan_share[{iso3[s]}]" for s in present], LE, np.zeros(len(present)),
            row_of, cols, is_loan[cols].astype(float) - loan_cap[s_of[cols]])
    reach = np.bincount(state_of_gap, weights=np.where(eligible, fundable, 0.0),
                        minlength=len(states))
    for family, sense, state, bound in pacing_rows(cycle, policy, iso3, s_of, reach,
                                                   absorption, kappa_cap):
        cols = np.nonzero(s_of == state[0])[0]
        add(family, pd.DataFrame({"state": state}), [f"{family}[{iso3[state[0]]}]"],
            GE if sense < 0 else LE, np.array([bound]), np.zeros(len(cols), dtype=int), cols,
            np.ones(len(cols)))

    rows = (pd.concat(blocks, ignore_index=True) if blocks else
            pd.DataFrame(columns=["name", "family", "sense", "rhs_usd"]))
    for key in ("source", "gap", "state", "target", "region"):
        if key not in rows:
            rows[key] = np.nan

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return Rules(data, policy, gap_table, triples, rows, joined(rows_e, int),
                 joined(cols_e, int), joined(coefs_e, float), thematic, regional, cycle)


def debt_risk_of(debt_distress: Any, debt_risk: Any) -> str:
    """debt_risk(s) of docs/terms.md: distress when debt_distress is true, else the column's
    word, else unrated."""
    if bool(debt_distress):
        return "distress"
    return str(debt_risk) if isinstance(debt_risk, str) and debt_risk else "unrated"


def state_loan_caps(states: pd.DataFrame, policy: Policy) -> np.ndarray:
    """m(s) = max_share[debt_risk(s)] by State (docs/terms.md)."""
    risk = states["debt_risk"] if "debt_risk" in states else pd.Series([None] * len(states))
    return np.array([float(getattr(policy.loans.max_share, debt_risk_of(d, r)))
                     for d, r in zip(states["debt_distress"], risk, strict=True)], dtype=float)


def _triple_weights(states: pd.DataFrame, sources: pd.DataFrame, policy: Policy,
                    f_of: np.ndarray, g_of: np.ndarray, s_of: np.ndarray,
                    gap_target: np.ndarray, income: np.ndarray, factor: np.ndarray
                    ) -> np.ndarray:
    """w = p_s Wt[t] Wi[income] Wr(s) - lambda (1 - g_f) burden[income] (docs/model.md,
    docs/cycles.md: p_s by gap, 1 without history)."""
    role = policy.weights.role
    role_weight = np.array([max((float(getattr(role, r)) for r in roles), default=1.0)
                            for roles in states["roles"]])
    target_weight = np.array([policy.weights.target.get(t, 1.0) for t in gap_target])
    income_weight = np.array([policy.weights.income.get(g) for g in income])
    burden = np.array([policy.loans.burden.get(g) for g in income])
    is_loan = (sources["instrument"] == "loan").to_numpy()
    grant_element = np.nan_to_num(sources["grant_element"].to_numpy(dtype=float), nan=1.0)
    concession_gap = np.where(is_loan, 1.0 - grant_element, 0.0)
    return (target_weight[g_of] * income_weight[g_of] * role_weight[s_of] * factor[g_of]
            - policy.loans.penalty * concession_gap[f_of] * burden[g_of])


def why_not_eligible(rules: Rules, source_id: str, iso3: str, target: str) -> str | None:
    """Why (source, State, target) may get nothing under docs/inputs.md's eligibility, or None."""
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
    if not st["eligible"]:
        return f"{iso3} is not eligible (eligible = false in states.csv)"
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
    if src["instrument"] == "loan":
        risk = debt_risk_of(st["debt_distress"], st.get("debt_risk"))
        share = float(getattr(policy.loans.max_share, risk))
        if st["debt_distress"] and share <= 0:
            return f"{source_id} lends, and {iso3} is in debt distress"
        if share <= 0:
            return (f"{source_id} lends, and loans.max_share for {iso3}'s debt risk "
                    f"({risk}) is 0")
        granted = (rules.triples["iso3"] == iso3) & ~rules.triples["loan"]
        if share < 1 and not granted.any():
            return (f"{source_id} lends, and {iso3} (debt risk {risk}) may take at most "
                    f"{share:g} of its money as loans, but no grant may reach it")
    return None
