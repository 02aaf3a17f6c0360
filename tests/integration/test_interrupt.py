"""A run interrupted at any moment leaves no run folder and no partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcm_fund import synthetic
from gcm_fund.report import remove_stale_staging

RUN_FILES = {"allocations.csv", "coverage.csv", "sources_summary.csv", "constraints.csv",
             "manifest.json", "report.html", "policy.toml", "inputs"}


@pytest.fixture(scope="module")
def slow_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance whose solve takes a few seconds, long enough to be interrupted.

    400 x 12 x 300 (745,072 eligible triples): about 7.5 s for the whole allocate here,
    most of it in the solve, which starts about 2 s in.
    """
    return synthetic.write_instance(tmp_path_factory.mktemp("slow") / "inputs", 400, 12, 300,
                                    seed=2)


def start_allocate(inputs: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gcm_fund", "allocate", str(inputs), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_until_solving(process: subprocess.Popen[str], seconds: float = 3.0) -> None:
    """Give the process time to import, load, build and start the solve (about 2 s here)."""
    time.sleep(seconds)
    assert process.poll() is None, "the solve finished before it could be interrupted"


def test_ctrl_c_during_the_solve_writes_nothing(slow_instance: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = start_allocate(slow_instance, out)
    wait_until_solving(process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip() == "interrupted: nothing was written"
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_kill_during_the_solve_writes_nothing(slow_instance: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = start_allocate(slow_instance, out)
    wait_until_solving(process)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0, 4.5, 6.0])
def test_kill_at_any_moment_leaves_a_complete_run_or_none(slow_instance: Path, tmp_path: Path,
                                                         delay: float) -> None:
    """Whenever the kill lands, the run folder is either complete or absent."""
    out = tmp_path / "run"
    process = start_allocate(slow_instance, out)
    time.sleep(delay)
    process.kill()
    process.communicate(timeout=60)
    if out.exists():
        assert {p.name for p in out.iterdir()} >= RUN_FILES
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    # A SIGKILL during the final write can leave a staging folder; the next run removes it.
    remove_stale_staging(tmp_path)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    for leftover in leftovers:
        assert not leftover.exists()


def test_staging_of_a_dead_process_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".run.{int(dead.stdout)}.abc123.partial"
    live = tmp_path / f".run.{os.getppid()}.def456.partial"
    stale.mkdir()
    live.mkdir()
    remove_stale_staging(tmp_path)
    assert not stale.exists()
    assert live.exists()
