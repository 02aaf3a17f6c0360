"""`explain`: why a State got what it got in a run, in words."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.audit.common import parse_numbers, usd
from gcm_fund.audit.cycles import Restated, factor_words, restate, with_cycle
from gcm_fund.audit.folder import (
    ALLOCATION_COLUMNS,
    CONSTRAINT_COLUMNS,
    DamagedFile,
    RunFolder,
    open_run,
    read_as_damaged,
)
from gcm_fund.audit.pledges import counted_pledges
from gcm_fund.audit.rules import Rules, debt_risk_of, rebuild, why_not_eligible
from gcm_fund.audit.tolerances import rule_tolerance_usd
from gcm_fund.errors import UsageError
from gcm_fund.inputs.load import ProblemData, load_inputs
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.inputs.schema import did_you_mean
from gcm_fund.model.spec import POSITIVE_DUAL


@dataclass
class GapLine:
    """One gap of the State: its need and what it got."""

    target: str
    need_usd: float
    fundable_usd: float
    allocated_usd: float
    coverage: float
    eligible: bool
    # Under priority levels (docs/model.md): the gap's priority, level, step and stopping rules.
    priority: float = math.nan
    level: float = math.nan
    step: str = ""
    stopped_by: str = ""
    level_rank: str = ""  # its level's rank among the distinct levels (any solver's)


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
    levels: bool = False  # whether the run's method writes levels (docs/model.md)
    floor_set_by: list[str] | None = None  # under levels: what holds the floor at z*
    loans: str = ""  # docs/terms.md: its loan share and the rule that capped it, in words
    performance: str = ""  # docs/cycles.md: its factor p_s and why, in words
    floor: float | None = None  # the run's floor (the manifest's), under levels
    lowest_level: float = math.nan  # the lowest level of any gap of the run, under levels

    @property
    def allocated_usd(self) -> float:
        """All the State got (over the targets shown)."""
        return sum(g.allocated_usd for g in self.gaps)

    def lines(self) -> list[str]:
        """What `explain` prints."""
        out = [f"{self.iso3} ({self.name}, {self.income_group}): allocated "
               f"{usd(self.allocated_usd)} of {usd(sum(g.fundable_usd for g in self.gaps))} "
               "fundable", "", "gaps:"]
        for g in self.gaps:
            cov = "-" if math.isnan(g.coverage) else f"{g.coverage:.2%}"
            out.append(f"  {g.target:<6} need {usd(g.need_usd)}, fundable {usd(g.fundable_usd)}"
                       f", allocated {usd(g.allocated_usd)}, coverage {cov}"
                       + ("" if g.eligible else " (no source may fund it)"))
            if self.levels and g.step:
                stopped = g.stopped_by.replace(";", ", ") or "no rule named"
                rank = (f" (level no. {g.level_rank}, the same on every solver)"
                        if g.level_rank else "")
                out.append(f"         priority {g.priority:.6g}, level {g.level:.6g} (coverage "
                           f"/ priority), stopped at step {g.step}{rank} by {stopped}")
                if self._at_floor(g):
                    out.append(f"         held at the equity floor ({self.floor:.2%} "
                               "coverage): the floor, not the priority, decided its amount")
        if self.levels:
            out += ["", "levels: each gap's amount, level and stopping rules are unique (any "
                    "correct solver gives them); how a gap's amount is split among its "
                    "sources below follows the documented split rule."]
            if self.floor_set_by:
                shown = ", ".join(self.floor_set_by[:6]) + (
                    f" and {len(self.floor_set_by) - 6} more" if len(self.floor_set_by) > 6
                    else "")
                out.append(f"the floor (stage 1) is set by: {shown}")
        if self.loans:
            out += ["", f"loans: {self.loans}"]
        if self.performance:
            out += ["", f"performance: {self.performance}"]
        out += ["", "sources:"]
        if not self.by_source:
            out.append("  none")
        for sid, targets in self.by_source.items():
            parts = ", ".join(f"{t} {usd(v)}" for t, v in targets.items())
            out.append(f"  {sid}: {usd(sum(targets.values()))} ({parts})")
        out += ["", "rules that bound it:"]
        if not self.rules and self.levels and any(g.stopped_by for g in self.gaps):
            # constraints.csv holds the last step's duals only; earlier steps stopped these.
            out.append("  none in the last level step; its gaps stopped earlier, by the "
                       "rules named beside each gap above (levels.csv lists every step's)")
        elif not self.rules:
            out.append("  none: no rule involving it has a non-zero dual")
        out.extend(f"  {r.name} (dual {r.dual:.6g}): {r.words}" for r in self.rules)
        out += ["", "sources that gave it nothing:"]
        if not self.nothing:
            out.append("  none")
        out.extend(f"  {sid}: {why}" for sid, why in self.nothing)
        return out


    def _at_floor(self, g: GapLine) -> bool:
        """Whether the floor held a gap up: its coverage is the floor's (within 1e-5) while
        its level is above the run's lowest, where its priority alone would have let the
        lower gaps rise first and given it less."""
        if self.floor is None or self.floor <= 0 or math.isnan(g.coverage):
            return False
        return abs(g.coverage - self.floor) <= 1e-5 and \
            g.level > self.lowest_level * (1 + 1e-9)


_DUAL_NOISE = POSITIVE_DUAL
# Under levels: a dual below this share of the last step's largest one is noise.
_LEVEL_DUAL_NOISE = 1e-6
KEYS = ["source_id", "iso3", "target"]


def _with_keys(constraints: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """constraints.csv with its key columns `source_id,iso3,target` (blank where a row's
    family has none). A run folder written before those columns existed gets them from
    the rules rebuilt from its inputs, matched by row name; no name is parsed."""
    if all(column in constraints.columns for column in KEYS):
        return constraints
    keyed = rules.row_keys()
    return constraints.drop(columns=[c for c in KEYS if c in constraints.columns]).merge(
        keyed, on="name", how="left").fillna({c: "" for c in KEYS})


def _dual_words(family: str, dual: float, row: pd.Series, rules: Rules, iso3: str) -> str:
    per = f"{abs(dual):.4g}"
    # Under levels the duals are those of the last level step: d L / d rhs.
    levels = rules.method.writes_levels
    objective = "the last level L" if levels else "the objective"
    add = f"raise {objective} by {per}" if levels else f"add {per} to the objective"
    if family == "gap":
        return f"the gap is fully funded: one more USD of fundable need would {add}"
    if family == "absorb":
        return f"{iso3} gets all it can absorb: one more USD of absorption capacity would {add}"
    if family == "state_share":
        return (f"{iso3} is at the cap of {rules.policy.limits.max_state_share:g} of all pledges "
                f"(max_state_share): one more USD of cap would {add}")
    if family == "source_state":
        sid = row["source_id"]
        return (f"{sid} gives {iso3} the most it may (its max_state_share of its pledge): one "
                f"more USD of that cap would {add}")
    if family == "loan_share":
        return (f"{iso3}'s loans are at the most its debt risk allows (loans.max_share): "
                f"one more USD of loan room would {add}")
    if family == "pace_down":
        return (f"{iso3} is held at the least pacing allows (pacing.max_cut of what it was "
                f"committed in the last cycle): one USD less of that least would {add}")
    if family == "pace_up":
        return (f"{iso3} is at the most pacing allows (pacing.max_rise over what it was "
                f"committed in the last cycle): one more USD of that most would {add}")
    if family == "floor":
        if levels:
            return (f"the gap is held at the floor: each USD it must get to keep the floor "
                    f"lowers the last level L by {per}")
        return (f"the gap is held at the floor: each USD it must get to keep the floor costs "
                f"the objective {per} (the money would weigh more elsewhere)")
    return f"one more USD of right-hand side would change {objective} by {dual:.4g}"


def explain(folder: Path | str, iso3: str, target: str | None = None) -> Explanation:
    """Why State `iso3` got what it got in a run (optionally for one target only).

    Raises `NotARunFolder` (naming the file where it can) when the folder is damaged.
    """
    with read_as_damaged(folder):
        return _explain(open_run(folder), iso3, target)


def read_allocations(run: RunFolder) -> pd.DataFrame:
    """allocations.csv with its amounts as numbers; `DamagedFile` naming the first line
    whose amount is not a finite number."""
    alloc = run.table("allocations.csv", ALLOCATION_COLUMNS)
    amounts = parse_numbers(alloc["amount_usd"])
    if np.isnan(amounts).any():
        line = int(np.nonzero(np.isnan(amounts))[0][0]) + 2
        raise DamagedFile("allocations.csv", f"line {line}: amount_usd is not a finite number")
    alloc["amount_usd"] = amounts
    return alloc


def rules_of(run: RunFolder) -> tuple[ProblemData, Policy, Restated | None, Rules]:
    """The run's inputs as counted (contributions, docs/contributions.md), its policy, its
    cycle's figures (docs/cycles.md) and its rules, rebuilt from the copied files."""
    data = load_inputs(run.inputs)
    try:
        policy_file = load_policy(run.policy, targets=set(data.gaps["target"]))
    except RecursionError:
        raise DamagedFile("policy.toml", "nested too deeply to be a policy") from None
    policy = policy_file.policy
    data = counted_pledges(data, policy)
    cycle = restate(run.inputs, data, policy)
    return data, policy, cycle, rebuild(with_cycle(data, run.inputs, cycle), policy, cycle)


def _explain(run: RunFolder, iso3: str, target: str | None) -> Explanation:
    data, policy, cycle, rules = rules_of(run)
    states = data.states.set_index("iso3")
    if iso3 not in states.index:
        raise UsageError(f"{iso3}: not a State of this run"
                         f"{did_you_mean(iso3, list(states.index))}")
    gaps = rules.gaps[rules.gaps["iso3"] == iso3]
    if target is not None:
        if target not in set(gaps["target"]):
            raise UsageError(f"{iso3} has no gap for target {target} in this run")
        gaps = gaps[gaps["target"] == target]
    alloc = read_allocations(run)
    mine = alloc[(alloc["iso3"] == iso3) & alloc["target"].isin(set(gaps["target"]))]
    got = mine.groupby("target")["amount_usd"].sum()
    writes_levels = rules.method.writes_levels
    levels: dict[str, dict[str, str]] = {}
    lowest = math.nan
    if writes_levels and run.has("coverage.csv"):
        cov = run.table("coverage.csv", ("iso3", "target", "priority", "level", "stopped_by",
                                         "step"))
        levels = {r["target"]: r for r in cov[cov["iso3"] == iso3].to_dict("records")}
        all_levels = parse_numbers(cov["level"])
        if np.isfinite(all_levels).any():
            lowest = float(np.nanmin(all_levels))
    lines = []
    for g in gaps.itertuples():
        allocated = round(float(got.get(g.target, 0.0)), 2)
        row = levels.get(g.target, {})
        lines.append(GapLine(g.target, g.need_usd, g.fundable_usd, allocated,
                             allocated / g.fundable_usd if g.fundable_usd > 0 else math.nan,
                             bool(g.eligible), _number(row.get("priority", "")),
                             _number(row.get("level", "")), row.get("step", ""),
                             row.get("stopped_by", ""), row.get("level_rank", "")))
    by_source: dict[str, dict[str, float]] = {}
    for r in mine.itertuples():
        by_source.setdefault(r.source_id, {})[r.target] = float(r.amount_usd)
    by_source = dict(sorted(by_source.items(), key=lambda kv: -sum(kv[1].values())))

    constraints = run.table("constraints.csv", CONSTRAINT_COLUMNS)
    for column in ("lhs", "rhs", "slack", "dual"):
        constraints[column] = parse_numbers(constraints[column])
    constraints = _with_keys(constraints, rules)
    family = constraints["family"]
    targets = set(gaps["target"])
    mine_rows = constraints["iso3"] == iso3
    involves = mine_rows & (family.isin(["absorb", "state_share", "source_state",
                                         "loan_share", "pace_down", "pace_up"])
                            | (family.isin(["gap", "floor"])
                               & constraints["target"].isin(targets)))
    noise = _DUAL_NOISE
    if writes_levels and len(constraints):
        # d L / d rhs per USD is about 1 / (the money of the gaps still rising), tiny for a
        # large fund: noise is small beside the step's largest dual, not below a constant.
        noise = _LEVEL_DUAL_NOISE * float(np.abs(np.nan_to_num(constraints["dual"])).max())
    binding = constraints[involves & (constraints["dual"].abs() > noise)]
    binding = binding.reindex(binding["dual"].abs().sort_values(ascending=False,
                                                                kind="stable").index)
    rule_lines = [RuleLine(r["name"], float(r["dual"]), float(r["slack"]),
                           _dual_words(r["family"], float(r["dual"]), r, rules, iso3))
                  for _, r in binding.iterrows()]

    nothing = _gave_nothing(rules, constraints, alloc, iso3, sorted(targets), set(by_source))
    floor_set_by = None
    if writes_levels and run.has("stage1_constraints.csv"):
        stage1 = run.table("stage1_constraints.csv", CONSTRAINT_COLUMNS)
        dual = parse_numbers(stage1["dual"])
        # Stage 1 maximises a share: its duals per USD are tiny, so any non-zero one counts.
        keep = (np.nan_to_num(dual) != 0) & (stage1["family"] != "floor")
        order = np.argsort(-np.abs(np.nan_to_num(dual[keep.to_numpy()])), kind="stable")
        floor_set_by = [str(n) for n in stage1["name"][keep].to_numpy()[order]]
    st = states.loc[iso3]
    floor = run.number("objective", "floor") if writes_levels else None
    return Explanation(iso3, str(st["name"]), str(st["income_group"]), lines, by_source,
                       rule_lines, nothing, writes_levels, floor_set_by,
                       _loan_words(rules, alloc, constraints, iso3),
                       factor_words(cycle, policy, iso3),
                       floor, lowest)


def _loan_words(rules: Rules, alloc: pd.DataFrame, constraints: pd.DataFrame, iso3: str
                ) -> str:
    """The State's loan share (over all its targets) and the rule that capped it (docs/terms.md)."""
    states = rules.data.states.set_index("iso3")
    st = states.loc[iso3]
    risk = debt_risk_of(st["debt_distress"], st.get("debt_risk"))
    cap = float(getattr(rules.policy.loans.max_share, risk))
    instrument = rules.data.sources.set_index("source_id")["instrument"]
    mine = alloc[alloc["iso3"] == iso3]
    total = float(mine["amount_usd"].sum())
    loans = float(mine["amount_usd"][mine["source_id"].map(instrument) == "loan"].sum())
    share = f"{loans / total:.2%}" if total > 0 else "-"
    said = (f"{usd(loans)} of {usd(total)} (loan share {share}); debt risk {risk}, "
            f"loans.max_share.{risk} = {cap:g}")
    lends = (rules.triples["iso3"] == iso3) & rules.triples["loan"]
    if cap <= 0:
        return f"{said}: no loan may reach it (m = 0)"
    if cap >= 1:
        return f"{said}: no cap on its loans"
    row = constraints[(constraints["family"] == "loan_share") & (constraints["iso3"] == iso3)]
    if not lends.any():
        grants = (rules.triples["iso3"] == iso3) & ~rules.triples["loan"]
        why = "no grant may reach it, so it may take no loan either (m < 1)" \
            if not grants.any() else "no loan source may reach it"
        return f"{said}: {why}"
    if len(row):
        r = row.iloc[0]
        held = abs(float(r["dual"])) > _DUAL_NOISE or abs(float(r["slack"])) <= 0.01
        return (f"{said}: capped by {r['name']}"
                + (" (binding)" if held else f" (slack {usd(float(r['slack']))})"))
    return f"{said}: capped by loan_share[{iso3}]"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _no_gap(rules: Rules, iso3: str) -> str:
    """Why no source may fund a State that has no gap to show: the reason, never blank."""
    states = rules.data.states.set_index("iso3")
    if iso3 in states.index and not bool(states.loc[iso3, "eligible"]):
        return f"{iso3} is not eligible (eligible = false in states.csv), and has no gap"
    return f"{iso3} has no gap in gaps.csv (no need costed for any target)"


def _gave_nothing(rules: Rules, constraints: pd.DataFrame, alloc: pd.DataFrame, iso3: str,
                  targets: list[str], givers: set[str]) -> list[tuple[str, str]]:
    """Each source that gave the State nothing (over `targets`), with the reason.

    Reasons come from the rows' slack and the weights where the money went, not from the
    duals alone: at a degenerate optimum a budget's value may be split among several rows.
    """
    levels = rules.method.writes_levels
    by_key = constraints.drop_duplicates(["family", *KEYS]).set_index(["family", *KEYS])
    slack = by_key["slack"].to_dict()
    rhs = by_key["rhs"].to_dict()
    triples = rules.triples
    used = alloc.merge(triples[[*KEYS, "weight"]], on=KEYS, how="left")

    def tight(key: tuple[str, str, str, str]) -> bool:
        # docs/outputs.md's tolerance, taking every eligible triple of the row as written
        return key in slack and slack[key] <= float(
            rule_tolerance_usd(np.array(len(triples)), np.array(0.0),
                               np.array(rhs.get(key, 0.0))))

    out = []
    for sid in rules.data.sources["source_id"]:
        if sid in givers:
            continue
        reasons = [why_not_eligible(rules, sid, iso3, t) for t in targets]
        open_targets = [t for t, why in zip(targets, reasons, strict=True) if why is None]
        if not open_targets:
            distinct = list(dict.fromkeys(r for r in reasons if r)) or [_no_gap(rules, iso3)]
            out.append((sid, "not eligible: " + "; ".join(distinct)))
            continue
        mask = (triples["source_id"] == sid) & (triples["iso3"] == iso3) \
            & triples["target"].isin(open_targets)
        here = float(triples.loc[mask, "weight"].max())
        why: list[str] = []
        if tight(("budget", sid, "", "")):
            mine = used[used["source_id"] == sid]
            states = mine.groupby("iso3")["amount_usd"].sum().sort_values(ascending=False,
                                                                          kind="stable")
            shown = ", ".join(f"{k} {usd(v)}" for k, v in states.head(3).items())
            more = f" and {len(states) - 3} more" if len(states) > 3 else ""
            low, high = float(mine["weight"].min()), float(mine["weight"].max())
            worth = f"{low:.4g}" if math.isclose(low, high) else f"{low:.4g} to {high:.4g}"
            spent = (f"budget exhausted: all {usd(rhs.get(('budget', sid, '', ''), 0.0))} "
                     f"went elsewhere ({shown}{more})")
            # Under levels weights set priorities, not a price: the split rule chose.
            why.append(spent + ("; this State's gaps got their levels from other sources "
                                "(the split rule)" if levels else
                                f" at weight {worth} per USD, against {here:.4g} here"))
        for family, words in (("state_share", "cap reached: the State has its share "
                               "of all pledges (max_state_share)"),
                              ("absorb", "cap reached: the State absorbs all it can")):
            if tight((family, "", iso3, "")):
                why.append(words)
        full = [t for t in open_targets if tight(("gap", "", iso3, t))]
        if full:
            why.append(f"gap{'s' if len(full) > 1 else ''} {', '.join(full)} already fully "
                       "funded by others")
        otherwise = ("eligible, but the split rule gave this State's amounts to other "
                     "sources" if levels else f"eligible (weight {here:.4g} "
                     "here), but its money went elsewhere at an optimum as good")
        out.append((sid, "; ".join(why) or otherwise))
    return out
