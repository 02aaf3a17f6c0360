"""Every folder of `tests/data/bad/` through the command: exit status 2, the exact
message of its `expected.txt` on stderr, no traceback, and nothing written.

The commands run in-process (tests/cases.run_cli: Typer's CliRunner, stdout and stderr
apart), from the folder of the cases as a user would type them; tests/integration/
test_cli.py checks the exit statuses of the installed `gcm-fund` script as a shell sees them.
"""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

import cases
import pytest

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "expected.txt").is_file())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """(case, command) -> (completed process, the --out folder of allocate)."""
    root = tmp_path_factory.mktemp("bad-out")
    keys, jobs, outs = [], [], []
    for case in CASES:
        model = f"{case}/policy.toml"
        out = root / case / "run"
        out.parent.mkdir()
        for command, args, out_dir in (
                ("validate", ["validate", case, "--model", model], None),
                ("allocate", ["allocate", case, "--model", model, "--out", str(out)], out)):
            keys.append((case, command))
            jobs.append(args)
            outs.append(out_dir)
    done = [cases.run_cli(*args, cwd=BAD) for args in jobs]
    return {key: (result, out) for key, result, out in zip(keys, done, outs, strict=True)}


def test_there_are_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("command", ["validate", "allocate"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_the_expected_message(runs, case, command):
    done, out = runs[case, command]
    expected = (BAD / case / "expected.txt").read_text(encoding="utf-8")
    assert done.stderr == expected
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""
    if out is not None:
        assert not out.exists()
        assert list(out.parent.iterdir()) == [], "a staging folder was left beside --out"


def test_cases_match_their_generator(tmp_path):
    """expected.txt and the damaged files are what make_cases.py writes: a case edited by
    hand on one side only is caught."""
    spec = importlib.util.spec_from_file_location("make_cases", BAD / "make_cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == CASES
    for case in CASES:
        compared = filecmp.dircmp(tmp_path / case, BAD / case)
        assert compared.left_only == compared.right_only == [], case
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / case, BAD / case,
                                               compared.common_files, shallow=False)
        assert mismatch == errors == [], case
