"""Every folder of `tests/data/bad/` through the real command: exit status 2, the exact
message of its `expected.txt` on stderr, no traceback, and nothing written.

Each command runs in a process of its own, as a shell would run it, with its own exit
status and stderr. A start of `gcm-fund` costs one to two seconds of imports (pandas,
scipy, highspy), times some 80 commands; so one driver process imports the command once
and forks a child per command, which calls the console script's entry point
(`gcm_fund.cli:main`, exactly what `gcm-fund` runs) with the command's arguments. Where
fork does not exist, each command is a plain `gcm-fund` subprocess. tests/integration/
test_cli.py runs the installed `gcm-fund` script itself.
"""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "expected.txt").is_file())
COMMAND = [str(Path(sys.executable).with_name("gcm-fund"))]

# Runs in its own interpreter: imports the command once, then one forked child per job.
DRIVER = """
import json, os, sys, traceback
from gcm_fund.cli import main
jobs = json.load(sys.stdin)
codes = []
for job in jobs:
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["gcm-fund", *job["args"]]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
json.dump(codes, sys.__stdout__)
"""


def run_commands(jobs: list[list[str]], cwd: Path, scratch: Path
                 ) -> list[subprocess.CompletedProcess[str]]:
    """Each argument list as one `gcm-fund` command in its own process, run from `cwd`."""
    if not hasattr(os, "fork"):
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            return list(pool.map(lambda args: subprocess.run(
                COMMAND + args, cwd=cwd, capture_output=True, text=True, encoding="utf-8",
                timeout=300, check=False), jobs))
    files = [(scratch / f"{i}.out", scratch / f"{i}.err") for i in range(len(jobs))]
    request = [{"args": args, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
               for args, (out, err) in zip(jobs, files, strict=True)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    driver = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(request),
                            capture_output=True, text=True, timeout=600, check=True, env=env)
    codes = json.loads(driver.stdout)
    return [subprocess.CompletedProcess(["gcm-fund", *args], code,
                                        out.read_text(encoding="utf-8"),
                                        err.read_text(encoding="utf-8"))
            for args, code, (out, err) in zip(jobs, codes, files, strict=True)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """(case, command) -> (completed process, the --out folder of allocate)."""
    root = tmp_path_factory.mktemp("bad-out")
    scratch = tmp_path_factory.mktemp("bad-streams")
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
    done = run_commands(jobs, BAD, scratch)
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
