"""Benchmark: a warm pledge sweep against independent `allocate` solves of the same levels.

    python benchmarks/bench_sweep.py [--levels 50] [--seed 0] [--source ID]

On `synthetic.write_instance(folder, 193, 12, 100)` under models/baseline.toml, the sweep
(one build, two highspy models kept alive, warm re-solves) runs the levels 0 .. 2 x the
source's pledge; then each level is built and solved from scratch, in the same process.
Prints both times, the ratio, where the sweep's time goes, and the largest relative
differences of floor and weighted across levels (which must be at most 1e-6). The goal is
a sweep at least 20 times faster. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gcm_fund import api
from gcm_fund.analyses.sweep import sweep, with_pledges
from gcm_fund.inputs import synthetic
from gcm_fund.methods.stages import solve
from gcm_fund.model.lp import build
from gcm_fund.solvers.highs import HighsBackend

ROOT = Path(__file__).resolve().parents[1]


def relative(a: float | None, b: float | None) -> float:
    """|a - b| / max(|b|, 1e-12); 0 when both are None."""
    if a is None or b is None:
        return 0.0 if a is b else float("inf")
    return abs(a - b) / max(abs(b), 1e-12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default=None,
                        help="the swept source [default: the first without earmarks]")
    parser.add_argument("--model", default=str(ROOT / "models" / "baseline.toml"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic.write_instance(Path(tmp) / "inputs", 193, 12, 100, seed=args.seed)
        loaded = api.load(folder, args.model)
    data, policy = loaded.data, loaded.policy_file.policy
    sources = data.sources
    if args.source is None:
        open_to_all = sources[[len(t) == 0 and len(r) == 0 and len(g) == 0 for t, r, g in
                               zip(sources["targets"], sources["regions"],
                                   sources["income_groups"], strict=True)]]
        source_id = str(open_to_all["source_id"].iloc[0])
    else:
        source_id = args.source
    pledge = float(sources.set_index("source_id").loc[source_id, "pledge_usd"])
    levels = np.round(np.linspace(0.0, 2 * pledge, args.levels), 2)
    print(f"instance: 193 States x 12 targets x 100 sources (seed {args.seed}), policy "
          f"{policy.name}; sweep of {source_id} (pledge USD {pledge:,.0f}) over "
          f"{args.levels} levels 0 .. USD {levels[-1]:,.0f}")

    stamps: list[float] = []
    start = time.perf_counter()
    result = sweep(data, policy, [source_id], levels, breakpoint_tol_usd=None,
                   progress=lambda phase, done, total: stamps.append(time.perf_counter())
                   if done else None)
    sweep_s = time.perf_counter() - start
    per_level = np.diff([start, *stamps])
    print(f"sweep:       {sweep_s:8.2f} s  (first level, with the build and both cold "
          f"stages: {per_level[0]:.2f} s; then {per_level[1:].mean():.3f} s a level, median "
          f"{np.median(per_level[1:]):.3f} s; stage 1 taken from its last basis at "
          f"{result.extra['stage1_skipped']} of {len(levels)} levels)", flush=True)

    # Stage 1 is skipped where its last basis stays feasible (z* then follows from one
    # basis solve); on generated instances the floor is usually pinned by a State's
    # absorption cap, so it always is. Time also the worst case: HiGHS runs stage 1 (warm)
    # at every level, as when the binding rows of the floor change at every level.
    shortcut = HighsBackend.value_from_basis
    HighsBackend.value_from_basis = lambda self, rhs, col: None  # type: ignore[method-assign]
    start = time.perf_counter()
    both = sweep(data, policy, [source_id], levels, breakpoint_tol_usd=None)
    both_s = time.perf_counter() - start
    HighsBackend.value_from_basis = shortcut  # type: ignore[method-assign]
    print(f"sweep, stage 1 re-solved at every level: {both_s:.2f} s", flush=True)

    start = time.perf_counter()
    refined = sweep(data, policy, [source_id], levels, breakpoint_tol_usd=1.0)
    refined_s = time.perf_counter() - start
    print(f"sweep + breakpoints bisected to 1 USD: {refined_s:.2f} s, "
          f"{len(refined.breakpoints)} breakpoints, {refined.solves} two-stage solves",
          flush=True)

    floors, weighted, marginal = [], [], []
    start = time.perf_counter()
    for level, got, again in zip(levels, result.levels, both.levels, strict=True):
        lp = build(with_pledges(data, {source_id: float(level)}), policy)
        solution = solve(lp)
        for run in (got, again):
            floors.append(relative(run.floor, solution.floor))
            weighted.append(relative(run.weighted_usd, solution.weighted_usd))
        budget = lp.block("budget")
        rows = np.nonzero(lp._budget_sources == list(sources["source_id"]).index(source_id))[0]
        if budget is not None and len(rows) and got.marginal_value is not None:
            dual = max(float(solution.stage2.row_dual[budget.start + rows[0]]), 0.0)
            marginal.append(abs(got.marginal_value - dual))
    independent_s = time.perf_counter() - start
    print(f"independent: {independent_s:8.2f} s  ({independent_s / len(levels):.2f} s a level:"
          " build + two-stage solve from scratch)")
    print(f"ratio:       {independent_s / sweep_s:8.1f} x  (goal >= 20 x); with stage 1 "
          f"re-solved at every level {independent_s / both_s:.1f} x")
    print(f"largest relative difference: floor {max(floors):.2e}, weighted "
          f"{max(weighted):.2e} (must be <= 1e-6); marginal value, largest absolute "
          f"difference {max(marginal, default=0.0):.2e}")
    ok = max(floors) <= 1e-6 and max(weighted) <= 1e-6
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
