"""Priority levels (SPEC 4b) against section 4's two stages: steps, time and peak memory.

    python benchmarks/bench_levels.py [--sizes 193x12x100,834x12x1000] [--solver highs]

For each size (States x targets x sources, `synthetic.write_instance`) it solves the
baseline policy twice, each in a process of its own so that peak memory is that method's:
`method = "weighted"` (stage 1 and the weighted stage 2) and `method = "levels"` (stage 1,
1b, the level steps, the split). Prints the LP build, the solve's wall and CPU time (the
machine may be shared: CPU time is the steadier figure), the HiGHS runs and simplex
pivots (counted by wrapping `highs_backend.run_highs`), the number of level steps and
distinct levels, and peak memory; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(inputs: str, policy: str, solver: str) -> dict[str, float]:
    """Solve once in this process; the figures as a dict."""
    from gcm_fund import api
    from gcm_fund.methods.stages import solve
    from gcm_fund.model.lp import build
    from gcm_fund.solvers import highs as highs_backend

    runs: list[int] = []
    run_highs = highs_backend.run_highs

    def counted(highs: object) -> None:
        run_highs(highs)
        runs.append(int(highs.getInfo().simplex_iteration_count))  # type: ignore[attr-defined]

    highs_backend.run_highs = counted
    loaded = api.load(inputs, policy)
    started = time.perf_counter()
    lp = build(loaded.data, loaded.policy_file.policy)
    built = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    solution = solve(lp, solver)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    figures = {"build_s": built, "solve_s": seconds, "cpu_s": cpu, "n_x": lp.n_x,
               "highs_runs": len(runs), "pivots": sum(runs),
               "allocated_usd": float(solution.x_usd.sum()),
               "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if solution.levels is not None:
        from gcm_fund.outputs.results import distinct_levels

        figures["steps"] = len(solution.levels.steps)
        figures["levels"] = distinct_levels(solution.levels.held)
    return figures


def policy_file(folder: Path, method: str) -> Path:
    text = (ROOT / "models" / "baseline.toml").read_text(encoding="utf-8")
    text = text.replace('method = "levels"', f'method = "{method}"') \
        .replace('method = "weighted"', f'method = "{method}"')
    path = folder / f"baseline_{method}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="193x12x100,834x12x1000")
    parser.add_argument("--solver", default="highs")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.solver)))
        return

    from gcm_fund.inputs import synthetic

    for size in args.sizes.split(","):
        states, targets, sources = (int(v) for v in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            inputs = synthetic.write_instance(Path(tmp) / "inputs", states, targets, sources,
                                              seed=args.seed)
            figures = {}
            for method in ("weighted", "levels"):
                done = subprocess.run(
                    [sys.executable, __file__, "--solver", args.solver, "--one", str(inputs),
                     str(policy_file(Path(tmp), method))],
                    capture_output=True, text=True, check=True)
                figures[method] = json.loads(done.stdout.strip().splitlines()[-1])
            weighted, levels = figures["weighted"], figures["levels"]
            print(f"{states} x {targets} x {sources} ({weighted['n_x']:,} eligible triples, "
                  f"{args.solver}):")
            for name, found in (("weighted (stages 1, 2)", weighted),
                                (f"levels (1, 1b, {levels['steps']} steps, split)", levels)):
                print(f"  {name}: build {found['build_s']:.1f} s, solve {found['solve_s']:.1f} s "
                      f"wall, {found['cpu_s']:.1f} s CPU; {found['highs_runs']} HiGHS runs, "
                      f"{found['pivots']:,} pivots; peak {found['peak_mib']:,.0f} MiB; "
                      f"allocated USD {found['allocated_usd']:,.0f}")
            print(f"  levels / weighted: {levels['solve_s'] / weighted['solve_s']:.1f} x wall, "
                  f"{levels['cpu_s'] / weighted['cpu_s']:.1f} x CPU; {levels['levels']} "
                  "distinct levels", flush=True)


if __name__ == "__main__":
    main()
