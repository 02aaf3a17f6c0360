"""Benchmark: what the donor figures under priority levels add to `allocate` (issue 22).

    python benchmarks/bench_donor_figures.py [--repeat 3]

On the bundled example (inputs/, models/baseline.toml): the solve without the donor
figures (the run's own stages), the marginal values by re-solves up to each source's
lowest level, and with the money placed per USD (a whole re-solve per source): together
`allocate --donor-figures`. Best of `--repeat`
in CPU seconds (the machine is shared: wall time says more about the neighbours). A
script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gcm_fund import api
from gcm_fund.methods.donor_figures import donor_figures
from gcm_fund.methods.strategy import method_of
from gcm_fund.model.lp import build

ROOT = Path(__file__).resolve().parents[1]


def best(repeat: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    loaded = api.load(ROOT / "inputs", ROOT / "models" / "baseline.toml")
    policy = loaded.policy_file.policy
    lp = build(loaded.data, policy)
    run = best(args.repeat, lambda: method_of(policy).solve(build(loaded.data, policy), "highs"))
    marginal = best(args.repeat, lambda: donor_figures(lp, placed=False))
    placed = best(1, lambda: donor_figures(lp, placed=True))
    whole = best(args.repeat, lambda: api.allocate(ROOT / "inputs",
                                                   ROOT / "models" / "baseline.toml"))
    print(f"solve {run:.2f} s CPU; marginal values {marginal:.2f} s "
          f"({(run + marginal) / run:.2f}x the solve); with placed per USD {placed:.2f} s "
          f"({(run + placed) / run:.2f}x); api.allocate in all {whole:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
