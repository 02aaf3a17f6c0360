"""Benchmark of the allocation core on a generated instance (prints figures, asserts nothing).

    python benchmarks/bench_allocate.py [--states 193] [--targets 12] [--sources 100]

Reports: the LP build time (best of 5; goal under 50 ms at 193 x 12 x 100), the time
HiGHS alone takes for the two stages as `allocate` runs it (a pool of columns, priced)
and over the whole LP, the wall time of the whole `gcm-fund allocate` process (goal:
within 1.5 times the HiGHS time), and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gcm_fund import api
from gcm_fund.inputs import synthetic
from gcm_fund.methods.stages import make_backend, solve_stages
from gcm_fund.model.lp import build
from gcm_fund.solvers.highs import HighsBackend

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=193)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic.write_instance(Path(tmp) / "inputs", args.states, args.targets,
                                          args.sources, seed=args.seed)
        policy = ROOT / "models" / "baseline.toml"
        started = time.perf_counter()
        loaded = api.load(inputs, policy)
        load_s = time.perf_counter() - started

        build_times = []
        for _ in range(5):
            started = time.perf_counter()
            lp = build(loaded.data, loaded.policy_file.policy)
            build_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        solution = solve_stages(lp, make_backend(lp, "highs"))
        highs_s = time.perf_counter() - started
        started = time.perf_counter()
        whole = solve_stages(lp, HighsBackend(lp))
        whole_s = time.perf_counter() - started

        out = Path(tmp) / "run"
        started = time.perf_counter()
        # The solve's path alone: the donor figures' re-solves are bench_donor_figures.py's.
        subprocess.run([sys.executable, "-m", "gcm_fund", "allocate", str(inputs), "--model",
                        str(policy), "--out", str(out), "--donor-figures", "none"],
                       check=True, capture_output=True)
        process_s = time.perf_counter() - started
        child_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"instance: {args.states} states x {args.targets} targets x {args.sources} sources; "
          f"{lp.n_x} variables, {lp.n_rows} rows")
    print(f"load (parse and check CSV): {load_s * 1e3:.1f} ms")
    print(f"build LP: best {min(build_times) * 1e3:.1f} ms of 5 (goal < 50 ms)")
    print(f"HiGHS, both stages, as allocate runs it: {highs_s:.2f} s (floor "
          f"{solution.floor:.6f}, weighted {solution.weighted_usd:,.2f})")
    print(f"HiGHS, both stages over the whole LP: {whole_s:.2f} s (floor {whole.floor:.6f}, "
          f"weighted {whole.weighted_usd:,.2f})")
    print(f"whole `gcm-fund allocate` process: {process_s:.2f} s = "
          f"{process_s / highs_s:.2f} x HiGHS (goal <= 1.5)")
    print(f"peak memory of the allocate process: {child_peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
