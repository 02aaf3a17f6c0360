"""The Excel workbook of a large run: `gcm-fund export` of a generated instance's run folder.

    python benchmarks/bench_workbook.py [--states 834] [--targets 12] [--sources 1000]
                                        [--run DIR]

The default is the 10,008 x 1,000 instance of bench_large.py, solved under the bundled
baseline with `method = "weighted"` (as bench_large.py solves it by default), then
`write_workbook` of its run folder, in this process. Goal: the workbook in under a minute.
`--run DIR` times the workbook of an existing run folder instead (no solve). Prints the
rows and cells written, the time and the peak memory; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path

from gcm_fund import api
from gcm_fund.inputs import synthetic
from gcm_fund.outputs import workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_large import baseline_under  # noqa: E402


def cells_of(folder: Path) -> tuple[int, int]:
    """Rows and cells of the run folder's CSV tables (the bulk of the workbook)."""
    rows = cells = 0
    for path in folder.glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as handle:
            for record in csv.reader(handle):
                rows += 1
                cells += len(record)
    return rows, cells


def time_workbook(run: Path, out: Path) -> None:
    rows, cells = cells_of(run)
    started = time.perf_counter()
    cpu = time.process_time()
    workbook.write_workbook(run, out)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"workbook: {rows:,} rows, {cells:,} cells of CSV tables -> "
          f"{out.stat().st_size / 1e6:,.1f} MB in {seconds:.1f} s ({cpu:.1f} s CPU; "
          f"goal under 60 s); peak {peak:,.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=834)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--run", type=Path, help="an existing run folder (no solve)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.run is not None:
            time_workbook(args.run, Path(tmp) / "run.xlsx")
            return
        inputs = synthetic.write_instance(Path(tmp) / "inputs", args.states, args.targets,
                                          args.sources, seed=args.seed)
        policy = baseline_under("weighted", Path(tmp) / "policy")
        started = time.perf_counter()
        run = api.allocate(inputs, policy, out=Path(tmp) / "run").folder
        assert run is not None
        print(f"allocate (weighted, highs) and write the run folder: "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        time_workbook(run, Path(tmp) / "run.xlsx")


if __name__ == "__main__":
    main()
