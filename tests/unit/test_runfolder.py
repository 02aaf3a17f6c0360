"""Recognising a run folder and refusing a destination that would lose something, without a
solver: each folder is built by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcm_fund.errors import UsageError
from gcm_fund.outputs.destination import check_destination, foreign_entries

MANIFEST = json.dumps({"run_id": "0123456789abcdef", "status": "optimal"})
RUN = {"manifest.json": MANIFEST, "allocations.csv": "source_id\n", "report.html": "<p>",
       "inputs/states.csv": "iso3\n", "inputs/meta.toml": "", "policy.toml": ""}


def build(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("files", "foreign"), [
    pytest.param(RUN, [], id="run"),
    pytest.param({"diagnosis.json": '{"status": "infeasible"}'}, [], id="diagnosis"),
    pytest.param({**RUN, "notes.txt": "mine"}, ["notes.txt"], id="user-file"),
    pytest.param({**RUN, "inputs/extra.csv": "x"}, ["inputs/extra.csv"], id="user-input-file"),
    pytest.param({**{k: v for k, v in RUN.items() if k != "allocations.csv"},
                  "allocations.csv/x": "x"}, ["allocations.csv"], id="folder-named-as-file"),
    pytest.param({**RUN, "manifest.json": json.dumps({"run_id": "x", "files": {
        "report.xlsx": "ab", "inputs/states.csv": "cd"}}), "report.xlsx": ""}, [],
        id="listed-in-manifest"),
    pytest.param({"manifest.json": '{"name": "a package"}', "index.js": ""}, None,
                 id="foreign-manifest"),
    pytest.param({"manifest.json": "not json"}, None, id="manifest-not-json"),
    pytest.param({"manifest.json": "[1, 2]"}, None, id="manifest-a-list"),
    pytest.param({"manifest.json": "[" * 100_000 + "]" * 100_000}, None, id="manifest-deep"),
    pytest.param({"manifest.json": "{]", "diagnosis.json": '{"status": "infeasible"}'}, None,
                 id="damaged-manifest-beside-a-diagnosis"),
    pytest.param({"diagnosis.json": '{"status": "optimal"}'}, None, id="diagnosis-not-ours"),
    pytest.param({"allocations.csv": "x"}, None, id="no-manifest"),
])
def test_foreign_entries(tmp_path: Path, files: dict[str, str], foreign: list[str] | None):
    assert foreign_entries(build(tmp_path / "d", files)) == foreign


def test_a_link_is_never_the_runs_own(tmp_path: Path):
    folder = build(tmp_path / "d", RUN)
    (folder / "elsewhere").symlink_to(tmp_path)
    assert foreign_entries(folder) == ["elsewhere"]


def test_force_replaces_a_run_folder_only(tmp_path: Path):
    run = build(tmp_path / "run", RUN)
    with pytest.raises(UsageError, match="exists and is not empty; use --force"):
        check_destination(run)
    check_destination(run, force=True)
    check_destination(run, same_run=True)
    mine = build(tmp_path / "mine", {"a.txt": ""})
    for kwargs in ({}, {"force": True}, {"same_run": True}):
        with pytest.raises(UsageError, match="a.txt"):
            check_destination(mine, **kwargs)


def test_inputs_and_policy_are_never_a_destination(tmp_path: Path):
    project = build(tmp_path / "p", {"inputs/states.csv": "", "models/a.toml": ""})
    inputs, policy = project / "inputs", project / "models" / "a.toml"
    for destination, message in [(project, "holds the input folder"),
                                 (inputs, "holds the input folder"),
                                 (inputs / "run", "is inside the input folder"),
                                 (project / "models", "holds the policy file"),
                                 (inputs / ".." / "models", "holds the policy file"),
                                 (policy, "holds the policy file")]:
        with pytest.raises(UsageError, match=message):
            check_destination(destination, force=True, inputs=inputs, policy=policy)
    check_destination(project / "outputs" / "run", force=True, inputs=inputs, policy=policy)


def test_a_run_beside_its_policy_is_allowed(tmp_path: Path):
    project = build(tmp_path / "p", {"inputs/states.csv": "", "models/a.toml": "",
                                     "work/b.toml": ""})
    inputs = project / "inputs"
    check_destination(project / "models" / "run", inputs=inputs, policy=project / "models" /
                      "a.toml")
    check_destination(project / "work" / "run", inputs=inputs, policy=project / "work" /
                      "b.toml")
