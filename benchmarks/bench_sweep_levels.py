"""Benchmark: issue 22's donor sweep under priority levels, with the default options.

    python benchmarks/bench_sweep_levels.py [--source gbr] [--pledges 0:240e6:51]

On the bundled example (inputs/, models/baseline.toml), the sweep of one source with the
default breakpoint search (`kinks`: bounded in solves and in resolution). Prints the wall
and CPU time, the solves (levels, marginal values' second solves, breakpoint search) and
the breakpoints found. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gcm_fund import api
from gcm_fund.analyses.sweep import parse_levels, sweep

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="gbr")
    parser.add_argument("--pledges", default="0:240e6:51")
    args = parser.parse_args()
    loaded = api.load(ROOT / "inputs", ROOT / "models" / "baseline.toml")
    levels = parse_levels(args.pledges)
    wall, cpu = time.perf_counter(), time.process_time()
    result = sweep(loaded.data, loaded.policy_file.policy, [args.source], levels)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    search = result.extra["breakpoint_solves"]
    print(f"sweep of {args.source} over {args.pledges}: {wall:.1f} s wall, {cpu:.1f} s CPU; "
          f"{result.solves} solves ({len(levels)} levels, {result.solves - len(levels) - search}"
          f" marginal values' second solves, {search} in the breakpoint search)")
    for point in result.breakpoints:
        print(f"  breakpoint USD {point.pledge_below_usd:,.2f} .. {point.pledge_above_usd:,.2f}:"
              f" marginal {point.marginal_below} -> {point.marginal_above}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
