"""Byte identity across commits: run `gcm-fund allocate` at two commits and compare every file.

    python benchmarks/compare_commits.py [--pair BEFORE AFTER]... [--cases example,mptf_scale,large]
                                         [--states 834] [--targets 12] [--sources 1000]
                                         [--work DIR] [--reuse]

Each commit is checked out with `git worktree add --detach` into a folder of its own under
/tmp and run with this interpreter and `PYTHONPATH=<checkout>/src` (nothing is installed).
The cases: the bundled example (`inputs/` under `models/baseline.toml`), `scenarios/mptf_scale`
under `models/baseline.toml` (and under its own `mptf_programmes.toml` where the commit has
it), and a generated instance (`inputs.synthetic.write_instance`, the default size being
bench_large.py's 834 States x 12 targets x 1,000 sources, seed 2) under the default policy.
Each case's inputs and policy are copied from the commit's own tree into a folder beside
the run and named by relative paths, so that the manifest's paths agree. The generated
instance is written once and shared by every commit.

Every file of the two run folders is compared byte for byte; for `manifest.json` the keys
whose values differ are listed. Runs go one at a time. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIRS = (("3b213f3^1", "3b213f3"), ("666a9df^1", "666a9df"))


def git(*arguments: str) -> str:
    """Run git in this repository; its standard output, stripped."""
    done = subprocess.run(["git", "-C", str(ROOT), *arguments], check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def checkout(commit: str) -> Path:
    """A detached worktree of `commit` under /tmp (made once, reused after)."""
    sha = git("rev-parse", commit)
    folder = Path(f"/tmp/wt-{sha[:12]}")
    if not (folder / "src" / "gcm_fund").is_dir():
        git("worktree", "add", "--detach", str(folder), sha)
    return folder


def cases_of(tree: Path, large: Path | None) -> dict[str, tuple[Path, Path]]:
    """The cases a commit's tree holds: name -> (input folder, policy file)."""
    found = {"example": (tree / "inputs", tree / "models" / "baseline.toml"),
             "mptf_scale": (tree / "scenarios" / "mptf_scale", tree / "models" / "baseline.toml")}
    own = tree / "scenarios" / "mptf_scale" / "mptf_programmes.toml"
    if own.is_file():
        found["mptf_scale_programmes"] = (tree / "scenarios" / "mptf_scale", own)
    if large is not None:
        found["large"] = (large, tree / "models" / "baseline.toml")
    return found


def run_case(tree: Path, inputs: Path, policy: Path, folder: Path,
             reuse: bool) -> tuple[float, int]:
    """Copy the case into `folder` and allocate there; wall seconds and exit status."""
    if reuse and (folder / "run" / "manifest.json").is_file():
        return float("nan"), 0
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copytree(inputs, folder / "inputs")
    shutil.copyfile(policy, folder / "policy.toml")
    environment = dict(os.environ, PYTHONPATH=str(tree / "src"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gcm_fund", "allocate", "inputs",
                           "--model", "policy.toml", "--out", "run"],
                          cwd=folder, env=environment, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    (folder / "stderr.txt").write_text(done.stderr, encoding="utf-8")
    return seconds, done.returncode


def files_under(folder: Path) -> set[str]:
    """Relative paths of every file under `folder`."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def json_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths at which two parsed JSON values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[str] = []
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                found.append(f"{where}: only in {'after' if key in b else 'before'}")
            else:
                found.extend(json_differences(a[key], b[key], where))
        return found
    if a != b:
        return [f"{path}: {json.dumps(a)[:60]} -> {json.dumps(b)[:60]}"]
    return []


def compare(before: Path, after: Path) -> list[str]:
    """One line per file that differs between two run folders (none when identical)."""
    lines = []
    for name in sorted(files_under(before) | files_under(after)):
        a, b = before / name, after / name
        if not a.is_file() or not b.is_file():
            lines.append(f"{name}: only in {'after' if b.is_file() else 'before'}")
            continue
        left, right = a.read_bytes(), b.read_bytes()
        if left == right:
            continue
        if name == "manifest.json":
            for difference in json_differences(json.loads(left), json.loads(right)):
                lines.append(f"manifest.json {difference}")
            continue
        a_lines, b_lines = left.splitlines(), right.splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a_lines, b_lines, strict=False))
                      if x != y), min(len(a_lines), len(b_lines)))
        lines.append(f"{name}: differs ({len(left):,} and {len(right):,} bytes, "
                     f"first differing line {first + 1})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, action="append", metavar=("BEFORE", "AFTER"))
    parser.add_argument("--cases", default="example,mptf_scale,mptf_scale_programmes,large")
    parser.add_argument("--states", type=int, default=834)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/compare_commits"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep run folders an earlier call of this script wrote")
    args = parser.parse_args()
    wanted = set(args.cases.split(","))
    pairs = args.pair or DEFAULT_PAIRS

    large = None
    if "large" in wanted:
        sys.path.insert(0, str(ROOT / "src"))
        from gcm_fund.inputs import synthetic
        large = args.work / f"large_{args.states}x{args.targets}x{args.sources}" / "inputs"
        if not (large / "gaps.csv").is_file():
            synthetic.write_instance(large, args.states, args.targets, args.sources,
                                     seed=args.seed)
        print(f"large: {args.states} x {args.targets} = {args.states * args.targets:,} gaps, "
              f"{args.sources:,} sources, seed {args.seed}", flush=True)

    for before, after in pairs:
        print(f"\n{before} -> {after}", flush=True)
        folders = {}
        for commit in (before, after):
            tree = checkout(commit)
            sha = git("rev-parse", commit)[:12]
            for case, (inputs, policy) in cases_of(tree, large).items():
                if case not in wanted:
                    continue
                size = f"large_{args.states}x{args.targets}x{args.sources}"
                folder = args.work / (size if case == "large" else case) / sha
                seconds, status = run_case(tree, inputs, policy, folder, args.reuse)
                print(f"  {commit} ({sha}) {case}: exit {status}, {seconds:.1f} s", flush=True)
                folders[commit, case] = folder / "run"
        for case in sorted({case for _, case in folders}):
            if (before, case) not in folders or (after, case) not in folders:
                print(f"  {case}: only at one commit", flush=True)
                continue
            differences = compare(folders[before, case], folders[after, case])
            count = len(files_under(folders[after, case]))
            if not differences:
                print(f"  {case}: all {count} files byte-identical", flush=True)
            else:
                print(f"  {case}: {count} files, differences:", flush=True)
                for line in differences:
                    print(f"    {line}", flush=True)


if __name__ == "__main__":
    main()
