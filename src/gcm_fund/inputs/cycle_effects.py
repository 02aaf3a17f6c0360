"""What `history.csv` does to this round (docs/cycles.md), computed once from the history
and the policy: the performance factor `p_s` of each State, the last cycle's undisbursed
balance `b[s,t]` of each gap (`keep` lowers `U` by it), the `carryover` source's pledge
(`pool`), and `C_s`, what each State was committed in the last cycle (pacing).

The model reads `ProblemData.cycle`; `apply_cycle` puts it there (and, under `pool`, the
`carryover` row into the sources) whenever the history or the policy changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gcm_fund.inputs.history import CARRYOVER_SOURCE, load_history
from gcm_fund.inputs.load import InputTable, ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.policy_file import PolicyFile
from gcm_fund.inputs.schema import SourceRow

if TYPE_CHECKING:
    import pandas as pd

CARRYOVER_NAME = "Carry-over of the last cycle's undisbursed balances"
# performance.csv's columns (docs/outputs.md), in order.
PERFORMANCE_COLUMNS = ("iso3", "committed_usd", "disbursed_usd", "execution", "result",
                       "factor")


@dataclass(frozen=True)
class CycleEffects:
    """The history's effects on this round, aligned with the inputs' tables."""

    number: int  # this round, `[cycle] number`
    first: int  # the window's first cycle, `number - window` (1 at the least)
    e_bar: float  # total disbursed over total committed in the window (NaN when 0 committed)
    performance: pd.DataFrame  # performance.csv: one row per State with history in the window
    factor: np.ndarray  # p_s by State (states.csv order), 1 without history
    balance: np.ndarray  # b[s,t] of the last cycle by gap (gaps.csv order), 0 when none
    keep: bool  # `[carryover] undisbursed = "keep"`: U' = max(0, U - b)
    carryover_usd: float  # sum of b over every pair of the last cycle (the pool's source)
    committed_last: np.ndarray  # C_s by State: committed in the last cycle

    @property
    def last(self) -> int:
        """The last cycle, `number - 1`."""
        return self.number - 1

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's `cycle` (docs/cycles.md): this round, the window, e_bar and
        what the carry-over did."""
        return {"number": self.number, "window": [self.first, self.last],
                "e_bar": None if np.isnan(self.e_bar) else self.e_bar,
                "undisbursed": "keep" if self.keep else "pool",
                "carryover_usd": round(self.carryover_usd, 2)}

    @property
    def pooled(self) -> bool:
        """Whether the balances return to the pool as the `carryover` source (B > 0)."""
        return not self.keep and self.carryover_usd > 0


def performance_table(history: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, float]:
    """performance.csv for `history` under `[cycle]` and `[performance]`, and `e_bar`.

    Per State over the window: committed and disbursed summed, execution `e_s` their
    ratio (NaN when nothing was committed), result `r_s` the committed-weighted mean of the
    reported results (1 when none is reported, or when those rows committed nothing), and
    `p_s = clip((e_s / e_bar)^alpha * r_s^beta, min_factor, max_factor)`, 1 when `e_s`
    or `e_bar` is undefined or `e_bar` is 0.
    """
    import pandas as pd

    number = policy.cycle.number
    assert number is not None, "a history is read with a cycle number"
    perf = policy.performance
    window = history[(history["cycle"] >= number - perf.window) & (history["cycle"] < number)]
    reported = window[window["result"].notna()]
    sums = window.groupby("iso3", sort=True)[["committed_usd", "disbursed_usd"]].sum()
    weighted = (reported["committed_usd"] * reported["result"]).groupby(
        reported["iso3"]).sum().reindex(sums.index, fill_value=0.0)
    weight = reported.groupby("iso3")["committed_usd"].sum().reindex(sums.index,
                                                                     fill_value=0.0)
    committed = sums["committed_usd"].to_numpy(dtype=float)
    disbursed = sums["disbursed_usd"].to_numpy(dtype=float)
    total = float(committed.sum())
    e_bar = float(disbursed.sum()) / total if total > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        execution = np.where(committed > 0, disbursed / committed, np.nan)
        result = np.where(weight.to_numpy() > 0, weighted.to_numpy() / weight.to_numpy(), 1.0)
        raw = (execution / e_bar) ** perf.alpha * result ** perf.beta
    defined = (committed > 0) & (e_bar > 0)  # NaN e_bar compares False
    factor = np.where(defined, np.clip(np.nan_to_num(raw), perf.min_factor, perf.max_factor),
                      1.0)
    table = pd.DataFrame({"iso3": sums.index.to_numpy(dtype=object),
                          "committed_usd": committed, "disbursed_usd": disbursed,
                          "execution": execution, "result": result, "factor": factor},
                         columns=list(PERFORMANCE_COLUMNS))
    return table, e_bar


def cycle_effects(data: ProblemData, policy: Policy) -> CycleEffects | None:
    """The effects of `data.history` under the policy; None without a history."""
    history = data.history
    if history is None:
        return None
    number = policy.cycle.number
    assert number is not None, "a history is read with a cycle number"
    table, e_bar = performance_table(history, policy)
    iso3 = data.state_table["iso3"].tolist()
    factor = np.ones(len(iso3))
    index = {code: i for i, code in enumerate(iso3)}
    for code, p in zip(table["iso3"].tolist(), table["factor"].tolist(), strict=True):
        factor[index[code]] = p
    last = history[history["cycle"] == number - 1]
    owed = (last["committed_usd"] - last["disbursed_usd"]).to_numpy(dtype=float)
    gap_row = {key: g for g, key in enumerate(zip(data.gap_table["iso3"].tolist(),
                                                  data.gap_table["target"].tolist(),
                                                  strict=True))}
    balance = np.zeros(len(data.gap_table))
    committed_last = np.zeros(len(iso3))
    for code, target, b, c in zip(last["iso3"].tolist(), last["target"].tolist(), owed,
                                  last["committed_usd"].tolist(), strict=True):
        g = gap_row.get((code, target))
        if g is not None:  # a pair that is not a gap this round: `keep` skips it
            balance[g] = b
        committed_last[index[code]] += c
    # Cycles count from 1: a window reaching further back starts there.
    return CycleEffects(number=number, first=max(1, number - policy.performance.window),
                        e_bar=e_bar, performance=table, factor=factor, balance=balance,
                        keep=policy.carryover.undisbursed == "keep",
                        carryover_usd=float(owed.sum()), committed_last=committed_last)


def carryover_row(pledge_usd: float) -> SourceRow:
    """The `carryover` source of `pool`: a donor's grant of `pledge_usd`, no earmarks, the
    policy's rho."""
    return SourceRow.model_validate({"source_id": CARRYOVER_SOURCE, "name": CARRYOVER_NAME,
                                     "kind": "donor", "instrument": "grant",
                                     "pledge_usd": repr(float(pledge_usd))})


def without_carryover(sources: InputTable) -> InputTable:
    """The sources without the `carryover` row `apply_cycle` added."""
    rows = [r for r in sources.rows if getattr(r, "source_id", None) != CARRYOVER_SOURCE]
    return sources if len(rows) == len(sources) else InputTable(sources.name, rows)


def apply_cycle(data: ProblemData, policy: Policy) -> ProblemData:
    """The inputs with `cycle` computed from their history under `policy` and, under
    `pool` with a balance, the `carryover` source among the sources (key order). The
    inputs unchanged without a history."""
    if data.history is None:
        return data
    effects = cycle_effects(data, policy)
    assert effects is not None
    sources = data.source_table
    if data.cycle is not None and data.cycle.pooled:
        sources = without_carryover(sources)
    if effects.pooled:
        rows = sorted([*sources.rows, carryover_row(effects.carryover_usd)],
                      key=lambda r: r.source_id)  # type: ignore[attr-defined]
        sources = InputTable(sources.name, rows)
    return replace(data, cycle=effects, source_table=sources)


def load_cycle(folder: Path | str, data: ProblemData, policy_file: PolicyFile) -> ProblemData:
    """The inputs with `history.csv` of `folder` read (`load_history`) and its effects
    applied under the policy (`apply_cycle`); unchanged when the folder has none."""
    data = load_history(folder, data, policy_file)
    return apply_cycle(data, policy_file.policy)
