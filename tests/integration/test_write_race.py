"""A run folder put in place never replaces what appeared at `--out` while it was written
(issue 19, point 3), and a SIGTERM during the write leaves nothing behind (point 8).

The races are built, not waited for: a callback on the run's own step message "writing the
run folder" (logged once the staging folder exists, before the run is put in place) makes a
real folder at `--out`, holds ten real runs until all of them are writing, or sends the
process a real SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcm_fund.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny"
WRITING = "writing the run folder"


class OnWriting(logging.Handler):
    """Calls `action` when the run logs that it is writing its folder."""

    def __init__(self, action: Callable[[], None]):
        super().__init__(logging.INFO)
        self.action = action
        self.calls = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(WRITING):
            self.calls += 1
            self.action()


@pytest.fixture
def hook() -> Iterator[Callable[[Callable[[], None]], OnWriting]]:
    logger = logging.getLogger("gcm_fund")
    added: list[OnWriting] = []

    def attach(action: Callable[[], None]) -> OnWriting:
        handler = OnWriting(action)
        logger.addHandler(handler)
        added.append(handler)
        return handler

    yield attach
    for handler in added:
        logger.removeHandler(handler)


def allocate(out: Path, *extra: str) -> tuple[int, str]:
    # -v: the step messages, the one the hook waits for among them, are logged.
    result = CliRunner().invoke(app, ["-v", "allocate", str(TINY), "--model",
                                      str(TINY / "policy.toml"), "--out", str(out), *extra])
    return result.exit_code, result.stderr


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def make_users_folder(out: Path) -> Callable[[], None]:
    def make() -> None:
        out.mkdir()
        (out / "thesis.docx").write_bytes(b"years of work")
    return make


@pytest.mark.parametrize("force", [False, True], ids=["no-force", "force"])
def test_a_folder_made_while_the_run_writes_is_kept(tmp_path: Path, hook, force: bool):
    """The destination is free when the run checks it; the user makes a folder there while
    the run writes; the run must leave it as it is and exit 2, with or without --force
    (--force replaces only a run folder)."""
    out = tmp_path / "out"
    handler = hook(make_users_folder(out))
    code, stderr = allocate(out, *(["--force"] if force else []))
    assert handler.calls == 1
    assert code == 2, stderr
    assert stderr.splitlines()[-1] == (
        f"error: {out}: changed while this run was being written (another run, or someone "
        "else, wrote there): it was left as it is and nothing was written; exists and is "
        "not a run folder of gcm-fund (it holds thesis.docx); choose another --out (--force "
        "replaces only a run folder)")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.docx"]
    assert (out / "thesis.docx").read_bytes() == b"years of work"
    assert leftovers(tmp_path) == []


def test_an_empty_folder_made_while_the_run_writes_is_replaced(tmp_path: Path, hook):
    """An empty folder holds nothing to lose: `--out` may name one, made before or during."""
    out = tmp_path / "out"
    hook(out.mkdir)
    code, stderr = allocate(out)
    assert code == 0, stderr
    assert (out / "manifest.json").is_file()
    assert leftovers(tmp_path) == []


def test_a_run_folder_made_while_the_run_writes_is_replaced_only_with_force(tmp_path: Path,
                                                                           hook):
    out, other = tmp_path / "out", tmp_path / "other"
    assert allocate(other)[0] == 0
    hook(lambda: other.rename(out))
    code, stderr = allocate(out)
    assert code == 2
    assert stderr.splitlines()[-1].endswith(
        "nothing was written; exists and is not empty; use --force to replace it")
    assert (out / "manifest.json").is_file()
    out.rename(other)
    code, stderr = allocate(out, "--force")
    assert code == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# Runs the command line in a process of its own with a callback on the step message: the
# process's first argument says what the callback does.
DRIVER = """
import logging, os, signal, sys, time
from pathlib import Path

what, place = sys.argv[1], Path(sys.argv[2])

class Hook(logging.Handler):
    def emit(self, record):
        if not record.getMessage().startswith("writing the run folder"):
            return
        if what == "terminate":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler's Terminated is raised before this sleep ends
            return
        (place / str(os.getpid())).touch()
        deadline = time.monotonic() + 300
        while len(list(place.iterdir())) < int(what) and time.monotonic() < deadline:
            time.sleep(0.01)

logging.getLogger("gcm_fund").addHandler(Hook())
sys.argv = ["gcm-fund", *sys.argv[3:]]
from gcm_fund.cli.app import main
main()
"""


def start(what: str, place: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, what, str(place), "-v", "allocate", str(TINY),
         "--model", str(TINY / "policy.toml"), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def test_ten_concurrent_runs_to_one_new_out_one_wins(tmp_path: Path):
    """Ten runs to one new --out, all past their check and writing before any puts its
    folder in place: exactly one exits 0; the nine others exit 2 saying why, and leave
    the winner's folder as it is."""
    barrier, parent = tmp_path / "barrier", tmp_path / "runs"
    barrier.mkdir()
    parent.mkdir()
    out = parent / "out"
    processes = [start("10", barrier, out) for _ in range(10)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in processes]
    assert len(list(barrier.iterdir())) == 10, "every run reached its write"
    codes = sorted(code for code, _ in results)
    assert codes == [0] + [2] * 9, results
    for code, stderr in results:
        if code == 2:
            assert stderr.splitlines()[-1] == (
                f"error: {out}: changed while this run was being written (another run, or "
                "someone else, wrote there): it was left as it is and nothing was written; "
                "exists and is not empty; use --force to replace it"), stderr
    assert sorted(p.name for p in parent.iterdir()) == ["out"]  # no staging left
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) >= {"allocations.csv", "coverage.csv", "report.html"}
    done = subprocess.run([sys.executable, "-m", "gcm_fund", "certify", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sigterm_during_the_write_leaves_no_partial_folder(tmp_path: Path):
    """A real SIGTERM while the run folder is being written: the staging folder is removed
    (as Ctrl-C removes it), nothing is written, and the exit status is 143."""
    out = tmp_path / "out"
    process = start("terminate", tmp_path, out)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "terminated: nothing was written"
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []
