"""Benchmark: the whole test suite as CI runs it, timed.

    python benchmarks/bench_suite.py [--workers auto] [--durations 40] [-- PYTEST ARGS]

Runs `python -m pytest -q -n WORKERS --dist loadfile --durations N` (the README's and
`.ci/run`'s command, with the slowest tests listed) in a subprocess and prints the wall
time, the CPU time of the suite's processes, the machine's load average before and after
(the machine is shared: a wall time means little without it) and the pytest summary. The
goal is the whole suite within 3 minutes of wall time on an idle 2-core machine. A script
that prints figures, not a test; docs/performance.md keeps the figures, dated.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def children_cpu_s() -> float:
    """CPU seconds (user and system) of the child processes that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="auto", help="pytest-xdist's -n (default auto)")
    parser.add_argument("--durations", type=int, default=40, help="slowest tests to list")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args()

    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-n", args.workers, "--dist", "loadfile", f"--durations={args.durations}",
               *args.pytest_args]
    load_before = os.getloadavg()
    cpu_before = children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    cpu = children_cpu_s() - cpu_before
    load_after = os.getloadavg()
    print(f"\ncommand: {' '.join(command[1:])}")
    print(f"wall {wall:.1f} s, CPU of the suite's processes {cpu:.1f} s "
          f"({cpu / wall:.2f} cores busy on average), exit status {done.returncode}")
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{x:.2f}" for x in load_before)
          + "; after: " + ", ".join(f"{x:.2f}" for x in load_after)
          + f"; cores: {os.cpu_count()}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
