"""Large inputs: validate and solve a generated instance, reporting time and peak memory.

    python benchmarks/bench_large.py [--states 834] [--targets 12] [--sources 1000]

The default is 834 States x 12 targets = 10,008 gap rows and 1,000 sources (issue: 10,000
gap rows and 1,000 sources within the machine's memory). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from gcm_fund import api, synthetic
from gcm_fund.model import build
from gcm_fund.solve import solve

ROOT = Path(__file__).resolve().parents[1]


def peak_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=834)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--solver", default="highs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic.write_instance(Path(tmp) / "inputs", args.states, args.targets,
                                          args.sources, seed=args.seed)
        started = time.perf_counter()
        figures = api.validate(inputs, ROOT / "models" / "baseline.toml")
        validate_s = time.perf_counter() - started
        print(f"validate: {figures['gaps']} gap rows, {figures['sources']} sources, "
              f"{figures['eligible_triples']:,} eligible triples in {validate_s:.1f} s; "
              f"peak {peak_mib():,.0f} MiB", flush=True)

        loaded = api.load(inputs, ROOT / "models" / "baseline.toml")
        started = time.perf_counter()
        lp = build(loaded.data, loaded.policy_file.policy)
        print(f"build: {lp.n_x:,} variables, {lp.n_rows:,} rows, {lp.matrix.nnz:,} non-zeros "
              f"in {time.perf_counter() - started:.1f} s; peak {peak_mib():,.0f} MiB",
              flush=True)
        started = time.perf_counter()
        solution = solve(lp, args.solver)
        print(f"solve ({args.solver}, both stages): {time.perf_counter() - started:.1f} s, "
              f"floor {solution.floor:.6f}, weighted {solution.weighted_usd:,.2f}; "
              f"peak {peak_mib():,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
