"""Benchmark of docs/cycles.md's history (prints figures, asserts nothing).

    python benchmarks/bench_history.py [--states 193] [--targets 6] [--cycles 10]

On a generated instance (193 States x 6 targets, 100 sources) with a generated history of
`--cycles` past cycles (every gap in every cycle, made-up figures), reports: the time to
read and check history.csv, to compute the factors, balances and `C_s` from it, the load
and solve of `allocate` with and without the history (levels, the default method), and
the certify restatement (best of 5 for the reading and the factors).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from gcm_fund import api
from gcm_fund.audit.cycles import restate
from gcm_fund.inputs import synthetic
from gcm_fund.inputs.cycle_effects import cycle_effects
from gcm_fund.inputs.history import read_history


def write_history(inputs: Path, cycles: int, seed: int) -> Path:
    """history.csv of `cycles` cycles over every gap of `inputs`: committed about the
    need over 10, disbursed a random share of it, results in [0, 1] or blank."""
    rng = np.random.default_rng(seed)
    with open(inputs / "gaps.csv", newline="") as handle:
        gaps = [(r["iso3"], r["target"], float(r["need_usd"])) for r in csv.DictReader(handle)]
    path = inputs / "history.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["cycle", "iso3", "target", "committed_usd", "disbursed_usd", "result"])
        for cycle in range(1, cycles + 1):
            for iso3, target, need in gaps:
                committed = round(need / 10 * rng.uniform(0.5, 1.5), 2)
                disbursed = round(committed * rng.uniform(0.3, 1.0), 2)
                result = "" if rng.random() < 0.2 else f"{rng.uniform(0.2, 1.0):.3f}"
                writer.writerow([cycle, iso3, target, f"{committed:.2f}", f"{disbursed:.2f}",
                                 result])
    return path


def best(times: list[float]) -> str:
    return f"{min(times) * 1e3:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=193)
    parser.add_argument("--targets", type=int, default=6)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic.write_instance(Path(tmp) / "inputs", args.states, args.targets,
                                          args.sources, seed=args.seed)
        policy = Path(tmp) / "policy.toml"
        policy.write_text(f"[cycle]\nnumber = {args.cycles + 1}\n[pacing]\nmax_cut = 0.5\n",
                          encoding="utf-8")
        plain = Path(tmp) / "plain.toml"
        plain.write_text("", encoding="utf-8")
        no_history = api.load(inputs, plain)
        started = time.perf_counter()
        run = api.allocate(inputs, plain, donor_figures="none")
        solve_plain = time.perf_counter() - started

        path = write_history(inputs, args.cycles, args.seed)
        rows = path.read_text(encoding="utf-8").count("\n") - 1
        states = set(no_history.data.states["iso3"])
        targets = set(no_history.data.gaps["target"])
        reading = []
        for _ in range(5):
            started = time.perf_counter()
            read_history(path, states, targets, before=args.cycles + 1)
            reading.append(time.perf_counter() - started)

        started = time.perf_counter()
        loaded = api.load(inputs, policy)
        load_s = time.perf_counter() - started
        factors = []
        for _ in range(5):
            started = time.perf_counter()
            cycle_effects(loaded.data, loaded.policy)
            factors.append(time.perf_counter() - started)
        restating = []
        for _ in range(5):
            started = time.perf_counter()
            restate(inputs, no_history.data, loaded.policy)
            restating.append(time.perf_counter() - started)
        started = time.perf_counter()
        run = api.allocate(inputs, policy, donor_figures="none")
        solve_history = time.perf_counter() - started
        paced = run.lp.block("pace_down")

    print(f"instance: {args.states} States x {args.targets} targets, {args.sources} sources; "
          f"history.csv: {rows:,} rows over {args.cycles} cycles")
    print(f"read and check history.csv      {best(reading)}")
    print(f"factors, balances and C_s        {best(factors)}")
    print(f"certify's restatement            {best(restating)}")
    print(f"load with history (all files)    {load_s * 1e3:8.1f} ms")
    print(f"allocate without history         {solve_plain * 1e3:8.1f} ms")
    print(f"allocate with history, pacing    {solve_history * 1e3:8.1f} ms "
          f"({0 if paced is None else paced.stop - paced.start} pace_down rows)")
    print(f"reading + factors as a share of allocate with history: "
          f"{(min(reading) + min(factors)) / solve_history:.1%}")


if __name__ == "__main__":
    main()
