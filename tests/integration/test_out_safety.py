"""Nothing lost: where a run folder may be written (`--out`, `--force`), and copies that are
the bytes the run read (issue: nothing lost, items 1 and 3).

In-process through Typer's CliRunner; every test builds its own project folder from the
tiny instance, so that `--out .`, `--out ..` and the default `outputs/<run_id>/` are safe.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcm_fund import api
from gcm_fund.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny"
INFEASIBLE = "[equity]\nmaximize = false\nmin_floor = 1.0\n"


def cli(*args: object) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the current folder): inputs/ with a README, models/policy.toml."""
    root = tmp_path / "project"
    (root / "inputs").mkdir(parents=True)
    for name in ("states.csv", "gaps.csv", "sources.csv"):
        shutil.copyfile(TINY / name, root / "inputs" / name)
    (root / "inputs" / "README.md").write_text("my notes\n", encoding="utf-8")
    (root / "models").mkdir()
    shutil.copyfile(TINY / "policy.toml", root / "models" / "policy.toml")
    (root / "models" / "infeasible.toml").write_text(INFEASIBLE, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def allocate(*extra: object, policy: str = "models/policy.toml") -> tuple[int, str, str]:
    return cli("allocate", "inputs", "--model", policy, *extra)


def tree(folder: Path) -> list[str]:
    """Every path under `folder`, relative, hidden ones included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_force_refuses_a_folder_with_user_files(project: Path):
    mine = project / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    (mine / "data.csv").write_text("a,b\n", encoding="utf-8")
    code, stdout, stderr = allocate("--out", "mine", "--force")
    assert code == 2
    assert stderr == ("error: mine: exists and is not a run folder of gcm-fund (it holds "
                      "data.csv, thesis.docx); choose another --out (--force replaces only a "
                      "run folder)\n")
    assert stdout == ""
    assert (mine / "thesis.docx").read_bytes() == b"years of work"
    assert tree(mine) == ["data.csv", "thesis.docx"]


def test_force_refuses_a_folder_whose_manifest_is_not_a_run_manifest(project: Path):
    fake = project / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"name": "my package"}\n', encoding="utf-8")
    code, _, stderr = allocate("--out", "fake", "--force")
    assert code == 2
    assert "is not a run folder of gcm-fund (it holds manifest.json)" in stderr
    assert tree(fake) == ["manifest.json"]


def test_force_refuses_a_run_folder_holding_a_user_file(project: Path):
    assert allocate("--out", "run")[0] == 0
    (project / "run" / "notes.txt").write_text("my reading of the run\n", encoding="utf-8")
    (project / "run" / "inputs" / "extra.csv").write_text("x\n", encoding="utf-8")
    code, _, stderr = allocate("--out", "run", "--force")
    assert code == 2
    assert stderr.startswith("error: run: exists and is not a run folder of gcm-fund (it holds "
                             "inputs/extra.csv, notes.txt); ")
    assert (project / "run" / "notes.txt").is_file()
    assert (project / "run" / "inputs" / "extra.csv").is_file()


def test_force_replaces_a_run_folder_and_leaves_nothing_beside_it(project: Path):
    assert allocate("--out", "run")[0] == 0
    before = tree(project)
    code, _, stderr = allocate("--out", "run", "--force")
    assert code == 0, stderr
    assert tree(project) == before


def test_force_refuses_the_project_folder(project: Path):
    code, _, stderr = allocate("--out", project, "--force")
    assert code == 2
    assert stderr == (f"error: {project}: holds the input folder inputs; a run folder replaces "
                      "its destination, so write it elsewhere with --out\n")
    assert (project / "inputs" / "README.md").is_file()


def test_force_refuses_the_input_folder(project: Path):
    before = tree(project)
    code, _, stderr = allocate("--out", "inputs", "--force")
    assert code == 2
    assert stderr.startswith("error: inputs: holds the input folder inputs; ")
    assert tree(project) == before


def test_out_inside_the_input_folder_is_refused(project: Path):
    code, _, stderr = allocate("--out", "inputs/run")
    assert code == 2
    assert stderr == ("error: inputs/run: is inside the input folder inputs; write the run "
                      "outside it with --out\n")
    assert not (project / "inputs" / "run").exists()


def test_out_holding_the_policy_is_refused(project: Path):
    before = tree(project)
    code, _, stderr = allocate("--out", "models", "--force")
    assert code == 2
    assert stderr.startswith("error: models: holds the policy file models/policy.toml; ")
    assert tree(project) == before


def test_a_run_beside_its_policy_is_allowed(project: Path):
    """`--out models/run1`: a run folder in the policy's folder, the policy untouched; and
    a second run there replaces the first only with --force."""
    policy = (project / "models" / "policy.toml").read_bytes()
    code, _, stderr = allocate("--out", "models/run1")
    assert code == 0, stderr
    assert (project / "models" / "run1" / "manifest.json").is_file()
    assert (project / "models" / "policy.toml").read_bytes() == policy
    code, _, stderr = allocate("--out", "models/run1")
    assert code == 2
    assert stderr == "error: models/run1: exists and is not empty; use --force to replace it\n"
    code, _, stderr = allocate("--out", "models/run1", "--force")
    assert code == 0, stderr
    assert sorted(p.name for p in (project / "models").iterdir()) == [
        "infeasible.toml", "policy.toml", "run1"]


def test_policy_and_runs_in_one_working_folder_are_allowed(project: Path):
    """The policy and its runs side by side in a folder of their own (not the working
    folder): each run beside the policy is written, the policy kept."""
    work = project / "work"
    work.mkdir()
    shutil.copyfile(project / "models" / "policy.toml", work / "policy.toml")
    for run in ("run1", "run2"):
        code, _, stderr = allocate("--out", f"work/{run}", policy="work/policy.toml")
        assert code == 0, stderr
    assert sorted(p.name for p in work.iterdir()) == ["policy.toml", "run1", "run2"]


def test_a_run_holding_its_policy_is_still_refused(project: Path):
    """Beside the policy is allowed; a destination holding it, even a run folder that holds
    it as its own policy.toml, is not."""
    assert allocate("--out", "run")[0] == 0
    before = tree(project)
    code, _, stderr = allocate("--out", "run", "--force", policy="run/policy.toml")
    assert code == 2
    assert stderr.startswith("error: run: holds the policy file run/policy.toml; ")
    assert tree(project) == before


def test_a_policy_loose_in_the_working_folder_still_allows_the_default_outputs(project: Path):
    shutil.copyfile(project / "models" / "policy.toml", project / "policy.toml")
    code, stdout, stderr = allocate(policy="policy.toml")
    assert code == 0, stderr
    assert len(list((project / "outputs").iterdir())) == 1


def test_out_that_is_a_symbolic_link_is_refused(project: Path):
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    (project / "run").symlink_to(elsewhere)
    code, _, stderr = allocate("--out", "run", "--force")
    assert code == 2
    assert stderr == (f"error: run: is a symbolic link to {elsewhere}; give --out the folder "
                      "itself, or another name\n")
    assert (project / "run").is_symlink() and list(elsewhere.iterdir()) == []


def test_force_refuses_a_file(project: Path):
    (project / "report.docx").write_bytes(b"my report")
    code, _, stderr = allocate("--out", "report.docx", "--force")
    assert code == 2
    assert stderr == ("error: report.docx: is a file, not a folder; --out names the folder the "
                      "run is written to\n")
    assert (project / "report.docx").read_bytes() == b"my report"


def test_infeasible_run_with_force_keeps_the_users_folder(project: Path):
    mine = project / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine\n", encoding="utf-8")
    code, _, stderr = allocate("--out", "mine", "--force", policy="models/infeasible.toml")
    assert code == 2, "refused before solving: the folder is not a run folder"
    assert "is not a run folder of gcm-fund" in stderr
    assert tree(mine) == ["keep.txt"]


def test_infeasible_run_writes_its_diagnosis_and_force_replaces_only_a_run_folder(
        project: Path):
    code, _, stderr = allocate("--out", "run", policy="models/infeasible.toml")
    assert code == 3
    assert stderr.startswith("infeasible: ")
    assert tree(project / "run") == ["diagnosis.json"]
    assert json.loads((project / "run" / "diagnosis.json").read_text())["status"] == "infeasible"
    # A diagnosis folder is a run folder of this tool: --force replaces it with the run.
    code, _, stderr = allocate("--out", "run", "--force")
    assert code == 0, stderr
    assert (project / "run" / "manifest.json").is_file()
    assert not (project / "run" / "diagnosis.json").exists()
    # And the next infeasible attempt replaces the run with its diagnosis, nothing else.
    code, _, _ = allocate("--out", "run", "--force", policy="models/infeasible.toml")
    assert code == 3
    assert tree(project / "run") == ["diagnosis.json"]
    assert sorted(p.name for p in project.iterdir()) == ["inputs", "models", "run"]


def test_api_allocate_writes_the_diagnosis_for_a_library_caller(project: Path):
    with pytest.raises(api.InfeasibleError):
        api.allocate("inputs", "models/infeasible.toml", out="run")
    assert tree(project / "run") == ["diagnosis.json"]


def test_rerun_without_out_keeps_a_user_file_in_the_run_id_folder(project: Path):
    code, _, stderr = allocate()
    assert code == 0, stderr
    (folder,) = (project / "outputs").iterdir()
    code, _, stderr = allocate()
    assert code == 0, "the same run replaces its own folder"
    (folder / "notes.txt").write_text("my reading\n", encoding="utf-8")
    code, _, stderr = allocate()
    assert code == 2
    assert stderr == (f"error: outputs/{folder.name}: holds files gcm-fund did not write "
                      "(notes.txt); move them out to run into it again, or write elsewhere "
                      "with --out\n")
    assert (folder / "notes.txt").read_text() == "my reading\n"


def test_out_dot_and_dotdot_leave_no_old_folders(project: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    inputs, policy = project / "inputs", project / "models" / "policy.toml"
    assert allocate("--out", "runs/a")[0] == 0
    monkeypatch.chdir(project / "runs" / "a")
    code, _, stderr = cli("allocate", inputs, "--model", policy, "--out", ".", "--force")
    assert code == 0, stderr
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["a"]
    assert (project / "runs" / "a" / "manifest.json").is_file()
    monkeypatch.chdir(project / "models")
    code, _, stderr = cli("allocate", inputs, "--model", policy, "--out", ".", "--force")
    assert code == 2
    assert stderr.startswith("error: .: holds the policy file ")
    code, _, stderr = cli("allocate", inputs, "--model", policy, "--out", "..", "--force")
    assert code == 2
    assert stderr.startswith("error: ..: holds the input folder ")
    assert sorted(p.name for p in project.iterdir()) == ["inputs", "models", "runs"]
    assert sorted(p.name for p in project.parent.iterdir()) == ["project"]


def test_the_copies_are_the_bytes_that_were_read(project: Path):
    loaded = api.load("inputs", "models/policy.toml")
    run = api.solve_loaded(loaded)
    read = {name: (project / "inputs" / name).read_bytes()
            for name in ("states.csv", "gaps.csv", "sources.csv")}
    policy_read = (project / "models" / "policy.toml").read_bytes()
    # Edited while the run was solving: the run folder must not pick the edits up.
    with open(project / "inputs" / "gaps.csv", "a", encoding="utf-8") as handle:
        handle.write("ZZZ,1.1,1000\n")
    (project / "models" / "policy.toml").write_text('name = "edited"\n', encoding="utf-8")
    folder = api.write(run, "run")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name, content in read.items():
        assert (folder / "inputs" / name).read_bytes() == content
        assert manifest["inputs"][name] == hashlib.sha256(content).hexdigest()
    assert (folder / "policy.toml").read_bytes() == policy_read
    assert manifest["model"]["sha256"] == hashlib.sha256(policy_read).hexdigest()
    code, stdout, _ = cli("certify", folder)
    assert code == 0, stdout


# ---------------------------------------------------------------------------------------
# sweep, fair-share, compare: files they write (item 2)

SWEEP = ("sweep", "inputs", "-m", "models/policy.toml", "--source", "deu",
         "--pledges", "0:2e7:3")
FAIR_SHARE = ("fair-share", "inputs", "-m", "models/policy.toml")
COMPARE = ("compare", "inputs", "-m", "models/policy.toml")
COMMANDS = [pytest.param(SWEEP, id="sweep"), pytest.param(FAIR_SHARE, id="fair-share"),
            pytest.param(COMPARE, id="compare")]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("target", ["inputs/states.csv", "inputs/gaps.csv",
                                    "models/policy.toml"])
def test_out_that_is_an_input_is_refused(project: Path, command: tuple[str, ...],
                                         target: str):
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    code, stdout, stderr = cli(*command, "--out", target, "--force")
    assert code == 2
    assert stderr.startswith(f"error: {target}: is one of this command's inputs (")
    assert stderr.endswith("); write the output elsewhere\n")
    assert stdout == ""
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_out_that_is_an_input_under_another_name_is_refused(project: Path):
    (project / "link.csv").symlink_to(project / "inputs" / "sources.csv")
    (project / "hard.csv").hardlink_to(project / "inputs" / "gaps.csv")
    for name in ("link.csv", "hard.csv", "inputs/../inputs/states.csv"):
        code, _, stderr = cli(*FAIR_SHARE, "--out", name, "--force")
        assert code == 2, name
        assert "is one of this command's inputs" in stderr


def test_compare_refuses_an_overlay_as_out(project: Path):
    overlay = project / "pledges.csv"
    overlay.write_text("source_id,pledge_usd\ndeu,1000000\n", encoding="utf-8")
    code, _, stderr = cli(*COMPARE, "--overlay", "pledges.csv", "--out", "pledges.csv",
                          "--force")
    assert code == 2
    assert stderr == ("error: pledges.csv: is one of this command's inputs (pledges.csv); "
                      "write the output elsewhere\n")
    assert overlay.read_text() == "source_id,pledge_usd\ndeu,1000000\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_out_refuses_an_existing_file_unless_force(project: Path, command: tuple[str, ...]):
    (project / "result.csv").write_text("mine\n", encoding="utf-8")
    code, _, stderr = cli(*command, "--out", "result.csv")
    assert code == 2
    assert stderr == "error: result.csv: exists; use --force to replace it\n"
    assert (project / "result.csv").read_text() == "mine\n"
    assert sorted(p.name for p in project.iterdir()) == ["inputs", "models", "result.csv"]
    code, _, stderr = cli(*command, "--out", "result.csv", "--force")
    assert code == 0, stderr
    assert (project / "result.csv").read_text() != "mine\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_out_that_is_a_folder_is_refused(project: Path, command: tuple[str, ...]):
    (project / "out.csv").mkdir()
    code, _, stderr = cli(*command, "--out", "out.csv", "--force")
    assert code == 2
    assert stderr == "error: out.csv: is a folder; --out names the file to write\n"


def test_sweep_refuses_before_solving_when_a_companion_file_exists(project: Path):
    (project / "s.png").write_bytes(b"my chart")
    code, _, stderr = cli(*SWEEP, "--out", "s.csv")
    assert code == 2
    assert stderr == "error: s.png: exists; use --force to replace it\n"
    assert sorted(p.name for p in project.iterdir()) == ["inputs", "models", "s.png"]
    code, _, _ = cli(*SWEEP, "--out", "s.csv", "--no-chart")
    assert code == 0, "without a chart, s.png is not the sweep's"
    assert (project / "s.png").read_bytes() == b"my chart"


def test_sweep_writes_csv_breakpoints_and_chart_all_or_nothing(project: Path):
    code, _, stderr = cli(*SWEEP, "--out", "s.csv")
    assert code == 0, stderr
    before = {p.name: p.read_bytes() for p in project.glob("s.*")}
    assert sorted(before) == ["s.breakpoints.csv", "s.csv", "s.png"]
    # The chart cannot be put in place (a non-empty folder took its name): the two CSVs
    # must stay as they were, and no temporary file is left.
    (project / "s.png").unlink()
    (project / "s.png").mkdir()
    (project / "s.png" / "x").write_text("x", encoding="utf-8")
    from gcm_fund.analyses import sweep as sweeping
    from gcm_fund.writing import write_files_atomic

    result = api.sweep("inputs", ["deu"], "0:1e7:2", model="models/policy.toml").result
    with pytest.raises(OSError):
        write_files_atomic({
            project / "s.csv": "new\n", project / "s.breakpoints.csv": "new\n",
            project / "s.png": sweeping.chart_png(result)})
    assert (project / "s.csv").read_bytes() == before["s.csv"]
    assert (project / "s.breakpoints.csv").read_bytes() == before["s.breakpoints.csv"]
    assert sorted(p.name for p in project.iterdir()) == [
        "inputs", "models", "s.breakpoints.csv", "s.csv", "s.png"]


def test_default_outputs_inside_the_input_folder_is_refused_before_solving(
        project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(project / "inputs")
    code, _, stderr = cli("allocate", ".", "--model", "../models/policy.toml")
    assert code == 2
    assert stderr == ("error: outputs/<run_id>: is inside the input folder .; write the run "
                      "outside it with --out\n")
    assert not (project / "inputs" / "outputs").exists()


@pytest.mark.parametrize("command", [
    *COMMANDS, pytest.param(("allocate", "inputs", "-m", "models/policy.toml"), id="allocate"),
    pytest.param(("allocate", "inputs", "-m", "models/policy.toml", "--out", "run", "--xlsx"),
                 id="allocate-xlsx"),
])
def test_out_dash_is_refused_not_written_as_a_file_named_dash(project: Path,
                                                              command: tuple[str, ...]):
    """`--out -` (issue 19, point 8): not standard output, and no file or folder named `-`."""
    option = [] if command[-1] == "--xlsx" else ["--out"]
    before = tree(project)
    code, stdout, stderr = cli(*command, *option, "-")
    assert code == 2, stderr
    assert stderr == ("error: -: gcm-fund writes files, not to standard output; name the file "
                      "or folder to write\n")
    assert stdout == ""
    assert tree(project) == before


def test_export_to_dash_is_refused(project: Path):
    assert allocate("--out", "run")[0] == 0
    before = tree(project)
    code, _, stderr = cli("export", "run", "--xlsx", "-")
    assert code == 2
    assert stderr.startswith("error: -: gcm-fund writes files, not to standard output")
    assert tree(project) == before
