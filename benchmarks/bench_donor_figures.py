"""Benchmark: what the donor figures under priority levels add to `allocate` (issue 22).

    python benchmarks/bench_donor_figures.py [--repeat 3] [--sources N [--states S]]

On the bundled example (inputs/, models/baseline.toml), or with `--sources` on a
generated instance of S States x 12 targets x N sources under the same policy: the solve
without the donor figures (the run's own stages), the marginal values by re-solves up to
each source's lowest level (`allocate`'s default), and with the money placed per USD (a
whole re-solve per source: `allocate --donor-figures all`; the example only, unless
`--all`). Best of `--repeat` in CPU seconds (the machine is shared: wall time says more
about the neighbours); set OMP_NUM_THREADS=1, or OpenBLAS's waiting threads count too.
A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gcm_fund import api
from gcm_fund.inputs import synthetic
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
    parser.add_argument("--sources", type=int, default=0, help="0: the bundled example")
    parser.add_argument("--states", type=int, default=193)
    parser.add_argument("--all", action="store_true", help="the per-USD figures at scale too")
    args = parser.parse_args()
    policy_path = ROOT / "models" / "baseline.toml"
    with tempfile.TemporaryDirectory() as tmp:
        inputs = (ROOT / "inputs" if args.sources == 0 else synthetic.write_instance(
            Path(tmp) / "inputs", args.states, 12, args.sources, seed=1))
        loaded = api.load(inputs, policy_path)
        policy = loaded.policy_file.policy
        lp = build(loaded.data, policy)
        run = best(args.repeat, lambda: method_of(policy).solve(build(loaded.data, policy),
                                                                "highs"))
        marginal = best(args.repeat, lambda: donor_figures(lp, placed=False))
        line = (f"solve {run:.2f} s CPU; marginal values {marginal:.2f} s "
                f"({(run + marginal) / run:.2f}x the solve)")
        if args.sources == 0 or args.all:
            placed = best(1, lambda: donor_figures(lp, placed=True))
            line += f"; with placed per USD {placed:.2f} s ({(run + placed) / run:.2f}x)"
        whole = best(args.repeat, lambda: api.allocate(inputs, policy_path))
        print(f"{line}; api.allocate (marginal values included) {whole:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
