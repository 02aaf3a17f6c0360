"""Large inputs: validate and solve a generated instance, reporting time and peak memory.

    python benchmarks/bench_large.py [--states 834] [--targets 12] [--sources 1000]
                                     [--method weighted|levels]

The default is 834 States x 12 targets = 10,008 gap rows and 1,000 sources (10,000 gap
rows and 1,000 sources must validate and solve within the machine's memory). Reports, with
peak memory: validate, the LP build, both stages through the library, then the whole
`gcm-fund allocate` process (and its ratio to the build and both stages: goal 1.5x) and
`gcm-fund certify` on its run folder. The policy is the bundled baseline under `--method`
(default `weighted`: under priority levels the solve at this size takes about 20 times
longer, see bench_levels.py). `--whole-lp` also times HiGHS over every column
with every row, for comparison (slow: at the default size it had not finished after 55
minutes). Prints figures; asserts nothing.
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


def peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far, in MiB (Linux reports KiB): of this process, or of the
    largest child waited for (RUSAGE_CHILDREN)."""
    return resource.getrusage(who).ru_maxrss / 1024


def timed_command(*arguments: str, expect: int = 0) -> float:
    """Run `python -m gcm_fund ARGUMENTS` to the end; its wall time in seconds."""
    return timed_command_cpu(*arguments, expect=expect)[0]


def timed_command_cpu(*arguments: str, expect: int = 0) -> tuple[float, float]:
    """Run `python -m gcm_fund ARGUMENTS` to the end; its wall and CPU (user + system)
    times in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gcm_fund", *arguments],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"gcm-fund {arguments[0]} exited {done.returncode}: {done.stderr}")
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def baseline_under(method: str, folder: Path) -> Path:
    """A copy of models/baseline.toml under `method`, written into `folder`."""
    text = (ROOT / "models" / "baseline.toml").read_text(encoding="utf-8")
    stated = 'method = "levels"'
    assert text.count(stated) == 1, "models/baseline.toml: no single method line"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"baseline_{method}.toml"
    path.write_text(text.replace(stated, f'method = "{method}"'), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=834)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--solver", default="highs")
    parser.add_argument("--method", choices=("weighted", "levels"), default="weighted")
    parser.add_argument("--whole-lp", action="store_true",
                        help="also solve over every column and row (HiGHS only; slow)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic.write_instance(Path(tmp) / "inputs", args.states, args.targets,
                                          args.sources, seed=args.seed)
        policy = baseline_under(args.method, Path(tmp) / "policy")
        started = time.perf_counter()
        figures = api.validate(inputs, policy)
        validate_s = time.perf_counter() - started
        print(f"validate: {figures.gaps} gap rows, {figures.sources} sources, "
              f"{figures.eligible_triples:,} eligible triples in {validate_s:.1f} s; "
              f"peak {peak_mib():,.0f} MiB", flush=True)

        loaded = api.load(inputs, policy)
        started = time.perf_counter()
        lp = build(loaded.data, loaded.policy_file.policy)
        build_s = time.perf_counter() - started
        print(f"build: {lp.n_x:,} variables, {lp.n_rows:,} rows, {lp.matrix.nnz:,} non-zeros "
              f"in {time.perf_counter() - started:.1f} s; peak {peak_mib():,.0f} MiB",
              flush=True)
        started = time.perf_counter()
        backend = make_backend(lp, args.solver)
        solution = solve_stages(lp, backend)
        solve_s = time.perf_counter() - started
        pool = getattr(backend, "pool", None)
        held = f"; {len(backend.model_cols):,} columns held" if pool is not None else ""
        print(f"solve ({args.solver}, both stages): {time.perf_counter() - started:.1f} s, "
              f"floor {solution.floor:.6f}, weighted {solution.weighted_usd:,.2f}{held}; "
              f"peak {peak_mib():,.0f} MiB", flush=True)
        if args.whole_lp:
            started = time.perf_counter()
            whole = solve_stages(lp, HighsBackend(lp))
            print(f"solve over the whole LP (highs): {time.perf_counter() - started:.1f} s, "
                  f"floor {whole.floor:.6f}, weighted {whole.weighted_usd:,.2f}", flush=True)
        del lp, backend, solution, loaded

        run = Path(tmp) / "run"
        model = str(policy)
        # The solve's path alone: the donor figures' re-solves are bench_donor_figures.py's.
        seconds, cpu = timed_command_cpu("allocate", str(inputs), "--model", model, "--out",
                                         str(run), "--solver", args.solver,
                                         "--donor-figures", "none")
        print(f"whole `gcm-fund allocate` process: {seconds:.1f} s ({cpu:.1f} s CPU), "
              f"{seconds / solve_s:.2f}x the solve (goal 1.5x), "
              f"{seconds / (build_s + solve_s):.2f}x the build and the solve; "
              f"peak {peak_mib(resource.RUSAGE_CHILDREN):,.0f} MiB (goal 3 GB)", flush=True)
        seconds = timed_command("certify", str(run))
        print(f"`gcm-fund certify` of that run: {seconds:.1f} s (certified); "
              f"largest child peak so far {peak_mib(resource.RUSAGE_CHILDREN):,.0f} MiB",
              flush=True)
        floor_90 = Path(tmp) / "floor90.toml"
        floor_90.write_text("[equity]\nmin_floor = 0.9\n", encoding="utf-8")
        seconds = timed_command("allocate", str(inputs), "--model", str(floor_90), "--out",
                                str(Path(tmp) / "infeasible"), "--solver", args.solver,
                                expect=3)
        print(f"`gcm-fund allocate` with an unreachable floor of 90 % (exit 3, diagnosed): "
              f"{seconds:.1f} s; largest child peak so far "
              f"{peak_mib(resource.RUSAGE_CHILDREN):,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
