"""How lean the process is: start-up of the command line and the example's allocate against
its solve (prints figures, asserts nothing).

    python benchmarks/bench_startup.py [--repeat 5] [--cached-bytecode]

Reports the best of `--repeat` wall times of `gcm-fund --help`, `gcm-fund validate` and
`gcm-fund allocate` on the bundled example (goals: `--help` and `validate` under 0.4 s,
`allocate` within 3 times its solve), then `gcm-fund certify` of that run folder against
`validate` (goal: within 3 times validate's time), the solve alone (build and both
stages, in-process, best of the same number), the ratio of each to the solve (wall, and
CPU to the solve's CPU), and which heavy libraries each command imports. The machine's load
average is printed first: on a shared machine the ratios mean more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ)  # the commands' environment (--cached-bytecode changes it)
HEAVY = ("pandas", "scipy", "pydantic", "highspy", "ortools", "pulp", "matplotlib")
PROBE = ("import sys, atexit\n"
         f"atexit.register(lambda: print('HEAVY', ' '.join(m for m in {HEAVY!r} "
         "if m in sys.modules), file=sys.__stderr__))\n"
         "from gcm_fund.cli.app import main\n"
         "sys.argv = ['gcm-fund', *sys.argv[1:]]\n"
         "main()\n")


def best_wall(args: list[str], repeat: int) -> tuple[float, float]:
    """The shortest wall time and the shortest CPU time (user + system) of `gcm-fund ARGS`
    over `repeat` runs (seconds). On a busy machine the CPU time varies less."""
    times, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gcm_fund", *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(times), min(cpus)


def heavy_imports(args: list[str]) -> str:
    """The heavy libraries `gcm-fund ARGS` imports."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, check=True, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = [x for x in done.stderr.splitlines() if x.startswith("HEAVY")][-1]
    return line.removeprefix("HEAVY").strip() or "none"


def best_solve(repeat: int) -> tuple[float, float]:
    """The shortest in-process build-and-solve of the example, wall and CPU (seconds)."""
    from gcm_fund import api
    from gcm_fund.methods.stages import solve
    from gcm_fund.model.lp import build

    loaded = api.load(ROOT / "inputs", ROOT / "models" / "baseline.toml")
    times, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        solve(build(loaded.data, loaded.policy_file.policy), "highs")
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(times), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cached-bytecode", action="store_true",
                        help="run the commands with Python's bytecode cache on, as an "
                             "installed copy runs (PYTHONDONTWRITEBYTECODE unset for them)")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} cores; best of {args.repeat}")
    if args.cached_bytecode:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    if ENV.get("PYTHONDONTWRITEBYTECODE"):
        # Then every command compiles gcm_fund's own modules (~0.05 s of allocate's CPU)
        # unless a __pycache__ is already there: pip compiles an installed copy's.
        print("PYTHONDONTWRITEBYTECODE is set: gcm_fund's modules may be compiled on every "
              "run (see --cached-bytecode)")
    # The solve runs as under `gcm-fund` (cli.main sets this before numpy loads): without
    # it OpenBLAS's idle worker would spin on the solve's CPU clock.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    solve_s, solve_cpu = best_solve(args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "--help": ["--help"],
            "validate": ["validate", "inputs"],
            "allocate": ["allocate", "inputs", "--out", str(Path(tmp) / "run"), "--force"],
        }
        print(f"{'solve (build + stages)':<24} {solve_s:7.3f} s  CPU {solve_cpu:.3f} s")
        for name, command in commands.items():
            wall, cpu = best_wall(command, args.repeat)
            goal = "goal 3x the solve" if name == "allocate" else "goal 0.4 s"
            print(f"{name:<24} {wall:7.3f} s  {wall / solve_s:6.1f}x the solve  ({goal}); "
                  f"CPU {cpu:.3f} s = {cpu / solve_cpu:.2f}x the solve's; "
                  f"imports {heavy_imports(command)}")
            if name == "validate":
                validate_s, validate_cpu = wall, cpu
        # An auditor's check of the run just written, against reading the inputs.
        wall, cpu = best_wall(["certify", str(Path(tmp) / "run")], args.repeat)
        print(f"{'certify':<24} {wall:7.3f} s  {wall / validate_s:6.1f}x validate  "
              f"(goal 3x); CPU {cpu:.3f} s = {cpu / validate_cpu:.2f}x validate's")
    print(f"{'python -c pass':<24} {best_wall_python(args.repeat):7.3f} s  (the floor)")


def best_wall_python(repeat: int) -> float:
    """The interpreter's own start-up, the floor under every command."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    main()
