"""Where `certify` spends its time on the bundled example's run folder (prints figures,
asserts nothing).

    python benchmarks/bench_certify.py [--repeat 5]

Solves the example once into a scratch folder, then reports the best of `--repeat`
in-process `certify` wall times, the CPU time of each of its checks (one profiled run,
cumulative), and how long finding the first differing byte of report.html takes: the
per-byte Python loop certify once ran on every call (even on equal pages) against the
numpy comparison it runs now only when the pages differ. The machine's load average is
printed first: on a shared machine the CPU figures mean more than the seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loop_difference(a: bytes, b: bytes) -> int:
    """The first differing byte as certify once found it, one Python step per byte."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


def best(repeat: int, call) -> float:  # type: ignore[no-untyped-def]
    """The shortest wall time of `call()` over `repeat` runs (seconds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    from gcm_fund import api, audit
    from gcm_fund.audit.derived import _first_difference

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} cores; best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        run = api.write(api.allocate(ROOT / "inputs", ROOT / "models" / "baseline.toml"),
                        Path(tmp) / "run")
        cert = audit.certify(run)
        print(f"certify: {'certified' if cert.ok else 'NOT certified'}, "
              f"{len(cert.checks)} checks")
        seconds = best(args.repeat, lambda: audit.certify(run))
        print(f"{'certify (in-process)':<34} {seconds:.3f} s")
        profile = cProfile.Profile()
        profile.runcall(audit.certify, run)
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        checks = {}
        for (path, _, name), (_, _, _, cumulative, _) in stats.items():
            if "/audit/" in path and name.startswith(("check_", "certify_", "stage")):
                checks[f"{Path(path).stem}.{name}"] = cumulative
        for name, seconds in sorted(checks.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {name:<32} {seconds:.3f} s CPU (profiled)")
        page = (run / "report.html").read_bytes()
        other = page[:-1] + b"!"
        print(f"report.html {len(page):,} bytes, pages differing in the last byte:")
        timings = {"per-byte Python loop": lambda: loop_difference(page, other),
                   "numpy comparison": lambda: _first_difference(page, other),
                   "equal pages: bytes ==": lambda: page == bytes(page)}
        for name, call in timings.items():
            print(f"  {name:<32} {best(args.repeat, call):.4f} s")

if __name__ == "__main__":
    main()
