"""The programmes method (SPEC 8) at pipeline sizes: time and peak memory per solver.

    python benchmarks/bench_programmes.py [--sizes 200,1000,5000] [--solvers highs,cbc]
                                          [--reasons 200]

Each size is a generated instance (`synthetic.write_instance`, 193 States x 12 targets x
100 sources) with that many programmes (a fifth of them joint, budgets USD 0.5-5 M,
minimums 60-100 % of the budget), solved in a process of its own so that peak memory is
that solve's: the selection (the relaxation, the three lexicographic MIPs, the split),
then the reasons of the `--reasons` unfunded programmes of highest value per USD. Prints
wall and CPU time of each part (on a shared machine CPU time is the steadier figure),
the programmes funded, the MIPs' columns (alike sources merged) and peak memory;
asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

POLICY = '[allocation]\nmethod = "programmes"\n[programmes]\nmax_per_state = 3\n'


def write_pipeline(folder: Path, count: int, seed: int = 0) -> None:
    """programmes.csv of `count` generated programmes on the instance's gaps."""
    rng = np.random.default_rng(seed)
    with open(folder / "gaps.csv", newline="") as handle:
        gaps = [(r["iso3"], r["target"]) for r in csv.DictReader(handle)]
    with open(folder / "programmes.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["programme_id", "name", "states", "targets", "budget_usd",
                         "min_usd", "quality"])
        for k in range(count):
            picks = rng.choice(len(gaps), size=3 if rng.random() < 0.2 else 1, replace=False)
            target = gaps[picks[0]][1]
            states = sorted({gaps[i][0] for i in picks})
            budget = round(float(rng.uniform(0.5, 5.0)), 2) * 1e6
            writer.writerow([f"p{k:05d}", f"Programme {k}", ";".join(states), target,
                             f"{budget:.0f}", f"{budget * rng.choice([0.6, 0.8, 1.0]):.0f}",
                             f"{rng.uniform(0.4, 1.0):.2f}"])


def one(inputs: str, policy: str, solver: str, reasons: int) -> dict[str, float]:
    """Select once in this process; the figures as a dict."""
    from gcm_fund.methods import programmes
    from gcm_fund.model.lp import build
    from gcm_fund.model.scenario import load_scenario

    def cpu() -> float:  # this process's threads and CBC's processes
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    scenario = load_scenario(inputs, policy)
    lp = build(scenario.data, scenario.policy)
    programmes.MAX_REASONS = reasons
    started, cpu_at = time.perf_counter(), cpu()
    selection = programmes.select(lp, solver, reasons=False)
    select_s, select_cpu = time.perf_counter() - started, cpu() - cpu_at
    started, cpu_at = time.perf_counter(), cpu()
    programmes._reasons(selection, solver)
    return {"select_s": select_s, "select_cpu_s": select_cpu,
            "reasons_s": time.perf_counter() - started,
            "reasons_cpu_s": cpu() - cpu_at,
            "reasons": len(selection.value_loss), "funded": int(selection.funded.sum()),
            "columns": selection.model.n_cols, "rows": selection.model.matrix.shape[0],
            "merged_columns": (selection.relaxed.n_cols if selection.relaxed is not None
                               else selection.model.n_cols),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    """Print one line per size and solver."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,5000")
    parser.add_argument("--solvers", default="highs,cbc")
    parser.add_argument("--reasons", type=int, default=200)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.one[2], int(args.one[3]))))
        return
    from gcm_fund.inputs.synthetic import write_instance

    with tempfile.TemporaryDirectory() as scratch:
        policy = Path(scratch) / "policy.toml"
        policy.write_text(POLICY)
        for size in (int(s) for s in args.sizes.split(",")):
            folder = write_instance(Path(scratch) / f"n{size}", n_sources=100)
            write_pipeline(folder, size)
            for solver in args.solvers.split(","):
                out = subprocess.run([sys.executable, __file__, "--one", str(folder),
                                      str(policy), solver, str(args.reasons)],
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    print(f"{size} programmes, {solver}: failed\n{out.stderr[-2000:]}")
                    continue
                figures = json.loads(out.stdout)
                print(f"{size:>5} programmes x 100 sources, {solver}: select "
                      f"{figures['select_s']:.1f} s ({figures['select_cpu_s']:.1f} s CPU), "
                      f"{figures['funded']} funded, {figures['columns']:,} columns x "
                      f"{figures['rows']:,} rows (MIPs on {figures['merged_columns']:,} "
                      f"columns); reasons of {figures['reasons']} "
                      f"{figures['reasons_s']:.1f} s ({figures['reasons_cpu_s']:.1f} s CPU); "
                      f"peak {figures['peak_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
