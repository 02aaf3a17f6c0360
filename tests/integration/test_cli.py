"""The command line as a user meets it (SPEC sections 6 and 7): exit statuses, the
`validate` summary, `--out` refusal and `--force`, an unknown solver, `--debug`.

Run in-process (Typer's CliRunner) with stdout and stderr apart; the exit status as a
shell sees it is checked by subprocess where that is the point of the test.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import cases
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inputs"
MODELS = cases.example_policies()  # the bundled example has no programme pipeline
TINY = ROOT / "tests" / "data" / "tiny"
BAD = ROOT / "tests" / "data" / "bad"
COMMAND = [str(Path(sys.executable).with_name("gcm-fund"))]
INCOME = ("LIC", "LMIC", "UMIC", "HIC")


def gcm_fund(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """In-process (tests/cases.run_cli); the tests below that need a shell's view run
    `COMMAND` as a subprocess themselves."""
    return cases.run_cli(*args, cwd=cwd)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def _split(cell: str) -> set[str]:
    return {item.strip() for item in cell.split(";") if item.strip()}


def expected_figures(folder: Path) -> dict[str, object]:
    """The summary's figures recomputed from the CSV files alone, by SPEC sections 2 and
    4c (the policy's co-financing shares and loan caps by debt risk enter through
    `eligible_triples`)."""
    states = {r["iso3"]: r for r in _rows(folder / "states.csv")}
    gaps = _rows(folder / "gaps.csv")
    sources = _rows(folder / "sources.csv")
    return {
        "states": len(states),
        "gaps": len(gaps),
        "sources": len(sources),
        "need": sum(float(g["need_usd"]) for g in gaps),
        "pledged": sum(float(s["pledge_usd"]) for s in sources),
        "pairs": [(s, g, states[g["iso3"]]) for s in sources for g in gaps],
    }


def _open_to(source: dict[str, str], gap: dict[str, str], state: dict[str, str],
             cofinancing: dict[str, float]) -> bool:
    """SPEC 2's eligibility of (source, gap), the loans' debt risk aside."""
    fundable = cofinancing[state["income_group"]] * float(gap["need_usd"])
    absorption = state.get("absorption_usd", "")
    target = gap["target"].lower()
    return (fundable > 0 and float(source["pledge_usd"]) > 0
            and state.get("eligible", "").lower() not in {"false", "no", "0"}
            and (absorption == "" or float(absorption) > 0)
            and (not _split(source["targets"])
                 or target in {t.lower() for t in _split(source["targets"])})
            and (not _split(source["regions"]) or state["region"] in _split(source["regions"]))
            and (not _split(source["income_groups"])
                 or state["income_group"] in _split(source["income_groups"]))
            and state["iso3"] not in _split(source["exclude_states"]))


def eligible_triples(figures: dict[str, object], cofinancing: dict[str, float],
                     max_share: dict[str, float]) -> int:
    """SPEC 4c: a loan reaches a State only where m(s) = max_share[debt_risk(s)] > 0 and,
    when m(s) < 1, some grant reaches it too (debt_risk(s) is `distress` under
    debt_distress, else the column's word, else `unrated`)."""
    candidates: list[Any] = figures["pairs"]  # type: ignore[assignment]
    pairs = [(source, state) for source, gap, state in candidates
             if _open_to(source, gap, state, cofinancing)]
    granted = {state["iso3"] for source, state in pairs if source["instrument"] == "grant"}

    def lends(state: dict[str, str]) -> bool:
        distress = state.get("debt_distress", "").lower() in {"true", "yes", "1"}
        m = max_share["distress" if distress else (state.get("debt_risk") or "unrated")]
        return m > 0 and (m >= 1 or state["iso3"] in granted)

    return sum(1 for source, state in pairs if source["instrument"] != "loan" or lends(state))


def _policy(model: Path) -> dict[str, Any]:
    return tomllib.loads(model.read_text(encoding="utf-8"))


def _cofinancing(model: Path) -> dict[str, float]:
    table = _policy(model).get("cofinancing", {})
    defaults = {"LIC": 1.0, "LMIC": 0.75, "UMIC": 0.5, "HIC": 0.0}
    return {g: float(table.get(g, defaults[g])) for g in INCOME}


def _max_share(model: Path) -> dict[str, float]:
    table = _policy(model).get("loans", {}).get("max_share", {})
    defaults = {"low": 1.0, "moderate": 1.0, "high": 1.0, "distress": 0.0, "unrated": 1.0}
    return {risk: float(table.get(risk, share)) for risk, share in defaults.items()}


@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_validate_prints_the_summary_of_the_bundled_example(model):
    done = gcm_fund("validate", EXAMPLE, "--model", model)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    figures = expected_figures(EXAMPLE)
    triples = eligible_triples(figures, _cofinancing(model), _max_share(model))
    assert done.stdout.startswith(
        f"valid: {figures['states']} states, {figures['gaps']} gaps, {figures['sources']} "
        f"sources, {triples} eligible triples; need USD {figures['need']:,.0f} (fundable USD ")
    assert done.stdout.endswith(
        f" under policy {model.stem}), pledges USD {figures['pledged']:,.0f}\n")
    assert len(done.stdout.splitlines()) == 1, "the summary is one line, never wrapped"


@pytest.fixture
def infeasible_policy(tmp_path: Path) -> Path:
    """Pledges of USD 45 million cannot cover every fundable gap in full."""
    (tmp_path / "policy").mkdir()
    path = tmp_path / "policy" / "everything.toml"
    path.write_text("[equity]\nmaximize = false\nmin_floor = 1.0\n", encoding="utf-8")
    return path


def test_validate_passes_an_infeasible_policy(infeasible_policy):
    done = gcm_fund("validate", TINY, "--model", infeasible_policy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: 3 states, 4 gaps, 2 sources, 6 eligible triples;")


def test_allocate_finds_the_infeasible_policy(infeasible_policy, tmp_path):
    out = tmp_path / "run"
    done = gcm_fund("allocate", TINY, "--model", infeasible_policy, "--out", out)
    assert done.returncode == 3
    assert done.stderr.startswith("infeasible: ")
    assert not (out / "allocations.csv").exists()


@pytest.fixture
def occupied(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n", encoding="utf-8")
    return out


def test_allocate_refuses_a_non_empty_out_folder(occupied):
    done = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", occupied)
    assert done.returncode == 2
    assert done.stderr == (f"error: {occupied}: exists and is not a run folder of gcm-fund (it "
                           "holds keep.txt); choose another --out (--force replaces only a run "
                           "folder)\n")
    assert done.stdout == ""
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    assert [p.name for p in occupied.parent.iterdir()] == ["run"], "nothing beside it"


def test_allocate_replaces_an_earlier_run_folder_only_with_force(tmp_path):
    out = tmp_path / "run"
    first = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", out)
    assert first.returncode == 0, first.stderr
    again = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", out)
    assert again.returncode == 2
    assert again.stderr == f"error: {out}: exists and is not empty; use --force to replace it\n"
    (out / "allocations.csv").write_text("edited\n", encoding="utf-8")
    done = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", out, "--force")
    assert done.returncode == 0, done.stderr
    assert (out / "allocations.csv").read_text(encoding="utf-8").startswith("source_id,")
    assert [p.name for p in tmp_path.iterdir()] == ["run"], "no staging folder left"


def test_allocate_writes_into_an_empty_out_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    done = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", out)
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.json").is_file()


def test_unknown_solver_is_exit_2_with_a_message(tmp_path):
    out = tmp_path / "run"
    done = gcm_fund("allocate", TINY, "--model", TINY / "policy.toml", "--out", out,
                    "--solver", "nosuch")
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown solver 'nosuch': use highs, cbc or ")
    assert "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_debug_shows_a_traceback_and_only_then(tmp_path):
    case = BAD / "unknown_iso3"
    expected = (case / "expected.txt").read_text(encoding="utf-8")
    plain = gcm_fund("validate", case.name, "--model", f"{case.name}/policy.toml", cwd=BAD)
    debug = gcm_fund("--debug", "validate", case.name, "--model", f"{case.name}/policy.toml",
                     cwd=BAD)
    assert plain.returncode == debug.returncode == 2
    assert plain.stderr == expected
    assert "Traceback (most recent call last):" in debug.stderr
    assert "gcm_fund.errors.InputError" in debug.stderr
    assert debug.stderr.endswith(expected)


def test_validate_a_file_instead_of_a_folder(tmp_path):
    done = gcm_fund("validate", TINY / "states.csv", "--model", TINY / "policy.toml")
    assert done.returncode == 2
    assert done.stderr == (f"1 problem in the input:\n{TINY / 'states.csv'}: expected a folder "
                           "with states.csv, gaps.csv and sources.csv, found a file\n")


def test_warnings_are_printed_unwrapped(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(TINY, folder)
    gaps = folder / "gaps.csv"
    gaps.write_text(gaps.read_text(encoding="utf-8").replace(
        "need_usd\n", "need_usd,a_rather_long_comment_column_name,another_one\n"),
        encoding="utf-8")
    done = gcm_fund("validate", "in", "--model", "in/policy.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("warning: in/gaps.csv:1: a_rather_long_comment_column_name, "
                           "another_one: unknown columns, ignored\n")


def test_bad_inputs_and_a_bad_policy_are_reported_together(tmp_path: Path, write_case) -> None:
    from cases import gap, source, state

    inputs, policy = write_case(
        tmp_path, states=[state("AAA")], gaps=[gap("AAA", "10.7", -5)],
        sources=[source("donor", 1e6)], policy="[equity]\nmaximise = true\n",
    )
    result = subprocess.run([sys.executable, "-m", "gcm_fund", "validate", str(inputs),
                             "--model", str(policy)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert f"{inputs / 'gaps.csv'}:2: need_usd: " in result.stderr
    assert f"{policy}:2: equity.maximise: unknown key" in result.stderr


def test_verbose_reports_each_step_on_stderr_and_leaves_stdout_alone(tmp_path):
    quiet = gcm_fund("allocate", "--out", tmp_path / "quiet")
    loud = gcm_fund("-v", "allocate", "--out", tmp_path / "loud")
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr == ""
    lines = loud.stderr.strip().splitlines()
    steps = [re.fullmatch(r"\s*\d+ ms  (.+)", line).group(1) for line in lines]
    assert steps[0].startswith("loaded ") and steps[0].endswith(" s")
    assert steps.pop() == f"writing the run folder {tmp_path / 'loud'}"
    # A search that confirms several forecast stops with one LP says so between the steps
    # (level_filling); it is a line of its own, never a step.
    search = re.compile(r"stage 2: (\d+ of \d+ forecast stops hold \(\d+ LPs\)"
                        r"|the forecast at level \S+ falls short; one LP step)")
    searches = [s for s in steps if search.fullmatch(s)]
    steps = [s for s in steps if not search.fullmatch(s)]
    manifest = json.loads((tmp_path / "loud" / "manifest.json").read_text())
    # The bundled policy: priority levels, one line per step of levels.csv.
    n_steps = len((tmp_path / "loud" / "levels.csv").read_text().splitlines()) - 1
    assert [step.split(":")[0] for step in steps[1:]] == [
        "LP", "HiGHS model", "stage 1", "stage 1", "stage 1b", "stage 2",
        *(f"stage 2 step {k}" for k in range(1, n_steps + 1)), "split", "donor figures"]
    # The re-solves of the marginal values say how many, not each step (docs/outputs.md).
    assert steps[-1] == "donor figures: 16 re-solves up to each source's lowest level"
    assert len(searches) <= n_steps
    assert steps[3] == "stage 1: maximising the floor z (highs)"
    # The floor found (z*), which the run reports as floor_max (SPEC 4c).
    assert steps[4] == f"stage 1: floor z* = {manifest['objective']['floor_max']:.9g}"
    assert steps[5] == f"stage 1b: objective {manifest['objective']['allocated_usd'] / 1e6:.12g}"
    rising = [r for r in cases.read_csv(tmp_path / "loud" / "coverage.csv") if r["step"]]
    assert steps[6] == f"stage 2: raising the levels of {len(rising)} gaps"
    levels = (tmp_path / "loud" / "levels.csv").read_text().splitlines()[1:]
    for line, row in zip(steps[7:-2], levels, strict=True):
        number, level = row.split(",")[:2]
        assert line.startswith(f"stage 2 step {number}: level {float(level):.9g}, ")
    assert steps[-3].endswith(", 0 rising")
    assert quiet.stdout.replace("quiet", "loud") == loud.stdout


def test_exit_statuses_as_a_shell_sees_them(infeasible_policy, tmp_path):
    """The installed `gcm-fund` script, as a subprocess: 0 done, 2 bad input, 3 infeasible."""
    def status(*args: str | Path) -> int:
        return subprocess.run([*COMMAND, *map(str, args)], capture_output=True,
                              timeout=300).returncode

    assert status("validate", TINY, "--model", infeasible_policy) == 0
    assert status("validate", tmp_path / "missing") == 2
    assert status("allocate", TINY, "--model", infeasible_policy, "--out",
                  tmp_path / "run") == 3
