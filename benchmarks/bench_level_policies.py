"""Priority levels under policy variants: which part of models/baseline.toml costs stage 2 time.

    python benchmarks/bench_level_policies.py [--size 400x12x300] [--seed 2]
                                              [--variants baseline,floor_share_1,...]

Writes one generated instance (`synthetic.write_instance`) and solves it under
`models/baseline.toml` and variants of it, each in a process of its own: `floor_share_1`
(the floor holds all of z*), `max_share_flat` (loans to every State but those in debt
distress), `lic_1` (the LIC weight 1.0 instead of 1.5). Prints per variant the solve's CPU
time, the CPU time inside HiGHS and inside `refined_duals`, the stage 2 LPs and steps (how
many forecast), and the HiGHS runs; asserts nothing. Note that the generated instance
has no debt_risk column: every State but those in distress is unrated, so `max_share`
by risk matters there only through the distressed States.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "baseline": (),
    "floor_share_1": (("floor_share = 0.5", "floor_share = 1.0"),),
    "max_share_flat": (("moderate = 0.5, high = 0.0", "moderate = 1.0, high = 1.0"),),
    "lic_1": (("LIC = 1.5", "LIC = 1.0"),),
}


def one(inputs: str, policy: str) -> dict[str, float]:
    """Solve once in this process; the figures as a dict."""
    from gcm_fund import api
    from gcm_fund.methods import level_filling
    from gcm_fund.methods.stages import solve
    from gcm_fund.model.lp import build
    from gcm_fund.solvers import highs as highs_backend

    spent = {"highs_cpu_s": 0.0, "highs_runs": 0, "refined_duals_cpu_s": 0.0}
    run_highs, refined_duals = highs_backend.run_highs, level_filling.refined_duals

    def counted(highs: object) -> None:
        started = time.process_time()
        run_highs(highs)
        spent["highs_cpu_s"] += time.process_time() - started
        spent["highs_runs"] += 1

    def refined(*args: object, **kwargs: object) -> object:
        started = time.process_time()
        found = refined_duals(*args, **kwargs)  # type: ignore[arg-type]
        spent["refined_duals_cpu_s"] += time.process_time() - started
        return found

    highs_backend.run_highs = counted
    level_filling.refined_duals = refined  # type: ignore[assignment]
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    started = time.process_time()
    solution = solve(lp, "highs")
    levels = solution.levels
    assert levels is not None
    return {"cpu_s": time.process_time() - started, **spent, "lps": levels.lps,
            "steps": len(levels.steps), "forecast": sum(s.forecast for s in levels.steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="400x12x300")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1])))
        return

    from gcm_fund.inputs import synthetic

    states, targets, sources = (int(v) for v in args.size.split("x"))
    baseline = (ROOT / "models" / "baseline.toml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic.write_instance(Path(tmp) / "inputs", states, targets, sources,
                                          seed=args.seed)
        print(f"{states} x {targets} x {sources} (seed {args.seed}), HiGHS:")
        for name in args.variants.split(","):
            text = baseline
            for old, new in VARIANTS[name]:
                assert text.count(old) == 1, f"models/baseline.toml: no single {old!r}"
                text = text.replace(old, new)
            policy = Path(tmp) / f"{name}.toml"
            policy.write_text(text, encoding="utf-8")
            done = subprocess.run([sys.executable, __file__, "--one", str(inputs), str(policy)],
                                  capture_output=True, text=True, check=True)
            f = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {name}: solve {f['cpu_s']:.1f} s CPU (HiGHS {f['highs_cpu_s']:.1f} s in "
                  f"{f['highs_runs']} runs, refined_duals {f['refined_duals_cpu_s']:.1f} s); "
                  f"stage 2: {f['lps']} LPs, {f['steps']} steps ({f['forecast']} forecast)",
                  flush=True)


if __name__ == "__main__":
    main()
