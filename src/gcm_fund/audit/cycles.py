"""certify's restatement of docs/cycles.md: the performance factors, `U'`, the carry-over
source's `B` and the pacing bounds recomputed from the copied `history.csv` and policy
(`audit.rules` builds them into the rules; `audit.performance` checks performance.csv and
the manifest's `cycle`).

Deliberately separate from `inputs/cycle_effects.py` and `model/cycles.py` (the engine's
side): the rules are restated here from docs/cycles.md with pandas, so that a fault in one
is caught by the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from gcm_fund.inputs.csv_input import sha256_bytes
from gcm_fund.inputs.history import CARRYOVER_SOURCE, HISTORY_FILE, read_history
from gcm_fund.inputs.load import InputTable, ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import SourceRow
from gcm_fund.model.spec import kept_fundable_usd


@dataclass(frozen=True)
class Restated:
    """docs/cycles.md's figures, recomputed: by State iso3 or by (iso3, target)."""

    number: int
    window: tuple[int, int]  # first and last cycle looked back
    e_bar: float
    table: pd.DataFrame  # iso3, committed_usd, disbursed_usd, execution, result, factor
    factor: dict[str, float]
    balance: dict[tuple[str, str], float]  # b of the last cycle, every pair
    committed_last: dict[str, float]  # C_s
    keep: bool

    @property
    def carryover_usd(self) -> float:
        """B of the `carryover` source: every balance of the last cycle."""
        return float(sum(self.balance.values()))


def restate(folder: Path, data: ProblemData, policy: Policy) -> Restated | None:
    """The figures of the copied `history.csv` in `folder`; None when it has none. Raises
    `ValueError` when the policy has no cycle number beside it."""
    path = folder / HISTORY_FILE
    if not path.is_file():
        return None
    number = policy.cycle.number
    if number is None:
        raise ValueError(f"policy.toml: cycle.number is missing, and the inputs have "
                         f"{HISTORY_FILE}")
    history = read_history(path, set(data.states["iso3"]), set(data.gaps["target"]),
                           before=number)
    perf = policy.performance
    first = max(1, number - perf.window)  # cycles count from 1
    window = history[history["cycle"].between(first, number - 1)]
    rows = []
    for iso3, mine in window.groupby("iso3", sort=True):
        committed = float(mine["committed_usd"].sum())
        disbursed = float(mine["disbursed_usd"].sum())
        reported = mine[mine["result"].notna()]
        weight = float(reported["committed_usd"].sum())
        result = (float((reported["committed_usd"] * reported["result"]).sum()) / weight
                  if weight > 0 else 1.0)
        rows.append((iso3, committed, disbursed, result))
    total = sum(r[1] for r in rows)
    e_bar = sum(r[2] for r in rows) / total if total > 0 else math.nan
    records = []
    for iso3, committed, disbursed, result in rows:
        execution = disbursed / committed if committed > 0 else math.nan
        factor = 1.0
        if committed > 0 and e_bar > 0:
            raw = (execution / e_bar) ** perf.alpha * result ** perf.beta
            factor = min(max(raw, perf.min_factor), perf.max_factor)
        records.append({"iso3": iso3, "committed_usd": committed, "disbursed_usd": disbursed,
                        "execution": execution, "result": result, "factor": factor})
    table = pd.DataFrame(records, columns=["iso3", "committed_usd", "disbursed_usd",
                                           "execution", "result", "factor"])
    last = history[history["cycle"] == number - 1]
    balance = {(r.iso3, r.target): float(r.committed_usd - r.disbursed_usd)
               for r in last.itertuples(index=False)}
    committed_last = last.groupby("iso3")["committed_usd"].sum().astype(float).to_dict()
    return Restated(number, (first, number - 1), e_bar, table,
                    dict(zip(table["iso3"], table["factor"], strict=True)), balance,
                    committed_last, policy.carryover.undisbursed == "keep")


def with_cycle(data: ProblemData, folder: Path, cycle: Restated | None) -> ProblemData:
    """The copied inputs with history.csv's hash among theirs (the run id hashes it) and,
    under `pool` with a balance, the source `carryover`: a donor's grant of B = the sum of
    the balances, no earmarks, the policy's rho."""
    if cycle is None:
        return data
    digest = sha256_bytes((folder / HISTORY_FILE).read_bytes())
    data = replace(data, file_sha256={**data.file_sha256, HISTORY_FILE: digest})
    if cycle.keep or not cycle.carryover_usd > 0:
        return data
    if CARRYOVER_SOURCE in set(data.sources["source_id"]):
        raise ValueError(f"inputs/sources.csv: a source {CARRYOVER_SOURCE!r} beside "
                         "[carryover] undisbursed = \"pool\"")
    row = SourceRow.model_validate({"source_id": CARRYOVER_SOURCE, "name": CARRYOVER_SOURCE,
                                    "kind": "donor", "instrument": "grant",
                                    "pledge_usd": repr(cycle.carryover_usd)})
    rows = sorted([*data.source_table.rows, row], key=lambda r: r.source_id)  # type: ignore[attr-defined]
    return replace(data, source_table=InputTable("sources.csv", rows))


def fundable_after(cycle: Restated | None, iso3: np.ndarray, target: np.ndarray,
                   fundable: np.ndarray) -> np.ndarray:
    """U' = max(0, U - b) by gap under `keep` (0 below a cent: `spec.kept_fundable_usd`);
    U otherwise."""
    if cycle is None or not cycle.keep:
        return fundable
    owed = np.array([cycle.balance.get((i, t), 0.0) for i, t in
                     zip(iso3, target, strict=True)], dtype=float)
    return kept_fundable_usd(fundable, owed) if owed.any() else fundable


def factors(cycle: Restated | None, iso3: np.ndarray) -> np.ndarray:
    """p_s of each State named in `iso3` (1 without history)."""
    if cycle is None:
        return np.ones(len(iso3))
    return np.array([cycle.factor.get(code, 1.0) for code in iso3], dtype=float)


def pacing_rows(cycle: Restated | None, policy: Policy, iso3: np.ndarray,
                s_of: np.ndarray, fundable_by_state: np.ndarray, absorption: np.ndarray,
                kappa_cap: float) -> list[tuple[str, int, np.ndarray, float]]:
    """(family, sense, State indices, bound) of every pacing row: for each State with
    `C_s > 0` and an eligible triple, `pace_down` >= min((1 - max_cut) C_s, its U' over its
    eligible gaps, absorption, kappa sum B) and, with `max_rise`, `pace_up` <= (1 +
    max_rise) C_s. The sense is -1 for >=, 1 for <=."""
    if cycle is None:
        return []
    found: list[tuple[str, int, np.ndarray, float]] = []
    for s in sorted(set(s_of.tolist())):
        c_s = cycle.committed_last.get(str(iso3[s]), 0.0)
        if not c_s > 0:
            continue
        down = min((1.0 - policy.pacing.max_cut) * c_s, float(fundable_by_state[s]),
                   kappa_cap)
        if not math.isnan(absorption[s]):
            down = min(down, float(absorption[s]))
        found.append(("pace_down", -1, np.array([s]), down))
        if policy.pacing.max_rise is not None:
            found.append(("pace_up", 1, np.array([s]), (1.0 + policy.pacing.max_rise) * c_s))
    return found


def factor_words(cycle: Restated | None, policy: Policy, iso3: str) -> str:
    """A State's performance factor and why, in words (`explain`); "" without history."""
    if cycle is None:
        return ""
    first, last = cycle.window
    span = f"cycles {first}-{last}" if first < last else f"cycle {last}"
    mine = cycle.table[cycle.table["iso3"] == iso3]
    if mine.empty:
        return f"factor 1: no history in {span}"
    row = mine.iloc[0]
    perf = policy.performance
    committed, disbursed = float(row["committed_usd"]), float(row["disbursed_usd"])
    head = f"factor {row['factor']:.6g} from {span}"
    if not committed > 0 or not cycle.e_bar > 0:
        return f"{head}: undefined execution (nothing committed, or none disbursed by all), so 1"
    execution, result = float(row["execution"]), float(row["result"])
    raw = (execution / cycle.e_bar) ** perf.alpha * result ** perf.beta
    clipped = ("" if perf.min_factor <= raw <= perf.max_factor else
               f", clipped to min_factor {perf.min_factor:g}" if raw < perf.min_factor else
               f", clipped to max_factor {perf.max_factor:g}")
    return (f"{head}: execution {execution:.2%} (USD {disbursed:,.0f} disbursed of "
            f"{committed:,.0f} committed) against {cycle.e_bar:.2%} for all States, "
            f"results {result:.3g}; ({execution:.4g} / {cycle.e_bar:.4g})^{perf.alpha:g} x "
            f"{result:.4g}^{perf.beta:g} = {raw:.6g}{clipped}")
