"""The bundled example: every policy solves, runs are deterministic, the quickstart works."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cases import example_policies

from gcm_fund import api

ROOT = Path(__file__).resolve().parents[2]
POLICIES = example_policies()
DETERMINISTIC = ("allocations.csv", "coverage.csv", "manifest.json", "constraints.csv",
                 "sources_summary.csv")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run([sys.executable, "-m", "gcm_fund", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_there_are_at_least_three_policies() -> None:
    assert len(POLICIES) >= 3
    assert (ROOT / "models" / "baseline.toml") in POLICIES


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_every_policy_solves_the_bundled_example(policy: Path, bundled_run) -> None:
    # api.allocate then api.write, once a session (conftest's bundled_run).
    manifest = json.loads((bundled_run(policy.stem) / "manifest.json").read_text())
    assert manifest["status"] == "optimal"
    allocated = manifest["totals"]["allocated_usd"]
    assert 0 < allocated <= manifest["totals"]["pledged_usd"] * (1 + 1e-7)
    assert manifest["model"]["sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest()


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_two_runs_are_byte_identical(solver: str, tmp_path: Path, bundled_run) -> None:
    first = bundled_run("baseline", solver)
    second = api.allocate(ROOT / "inputs", ROOT / "models" / "baseline.toml", solver)
    assert json.loads((first / "manifest.json").read_text())["run_id"] == second.run_id
    api.write(second, tmp_path / "b")
    for name in DETERMINISTIC:
        assert (first / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_run_id_depends_on_inputs_policy_and_solver(bundled_run) -> None:
    ids = {json.loads((bundled_run(policy, solver) / "manifest.json").read_text())["run_id"]
           for policy, solver in [("baseline", "highs"), ("flat_responsibility", "highs"),
                                  ("baseline", "cbc")]}
    assert len(ids) == 3


def test_quickstart_allocate_with_no_arguments(tmp_path: Path) -> None:
    """`gcm-fund allocate` alone runs the bundled example into outputs/<run_id>/."""
    result = run_cli("allocate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "outputs").iterdir())
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert runs[0].name == manifest["run_id"]
    assert manifest["model"]["path"] == "models/baseline.toml"
    assert manifest["objective"]["method"] == "levels"  # every bundled policy: SPEC 4b
    # What the README's quickstart says the run prints, figures included: the floor, and
    # all the money pledged allocated.
    printed = re.search(r"floor reached: (\d+\.\d\d)%; allocated USD ([\d,]+) of USD "
                        r"([\d,]+) pledged", result.stdout)
    assert printed is not None, result.stdout
    floor, allocated, pledged = printed.groups()
    assert float(floor) / 100 == pytest.approx(manifest["objective"]["floor"], abs=5e-5)
    assert allocated == pledged
    for phrase in ("Coverage by income group", "Coverage by target", "the floor is set by: ",
                   "Rules that stopped the most money"):
        assert phrase in result.stdout, phrase
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"the equity floor reached ({floor} %" in readme
    assert f"the money allocated (all USD {pledged} pledged)" in readme
    for name in ("allocations.csv", "coverage.csv", "sources_summary.csv", "constraints.csv",
                 "manifest.json", "report.html", "policy.toml", "inputs/states.csv"):
        assert (runs[0] / name).is_file(), name
    # The same run again lands in the same folder, replaced by identical files.
    again = run_cli("allocate", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == [runs[0].name]


def test_run_folder_holds_what_reproduces_it(tmp_path: Path) -> None:
    run = api.allocate(ROOT / "inputs", ROOT / "models" / "ldc_priority.toml")
    folder = api.write(run, tmp_path / "run")
    again = api.allocate(folder / "inputs", folder / "policy.toml")
    assert again.run_id == run.run_id
    assert again.solution.weighted_usd == pytest.approx(run.solution.weighted_usd, rel=1e-12)


def test_the_readmes_policy_table_is_what_the_script_prints() -> None:
    """Issue 21's table of the three policies on the example and mptf_scale: the README
    shows scripts/policy_table.py's output as it is, so a change to a policy, the data or
    the model that moves a figure fails here until the README is printed again."""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "policy_table.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    table = done.stdout.strip()
    assert table.count("\n") >= 10
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")
