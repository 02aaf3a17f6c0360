"""Shared fixtures and the hypothesis profiles.

Profiles: `ci` (default: few examples, derandomized so that CI is deterministic) and `slow`
(many examples, for a thorough run). Choose one with the environment variable
HYPOTHESIS_PROFILE or pytest's `--hypothesis-profile`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import cases
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "slow",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def write_case() -> Callable[..., tuple]:
    """`write_case(tmp_path, states=[...], gaps=[...], sources=[...], policy=...)`.

    Writes the instance under tmp_path and returns (inputs folder, policy file); see
    tests/cases.py for the row helpers `state`, `gap` and `source`.
    """
    return cases.write_case



@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli("allocate", inputs, "--out", folder, cwd=None, columns=None)`: the command run
    in-process (Typer's CliRunner) with `returncode`, `stdout` and `stderr` apart; see
    `cases.run_cli`. Subprocesses are for exit statuses as a shell sees them, signals and
    the README's commands only."""
    return cases.run_cli


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (pytest-xdist's workers)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """`bundled_run(policy="baseline", solver="highs", method="levels")`: a run folder of
    the bundled example (`models/<policy>.toml`; `method="weighted"` solves a copy of it
    under section 4's stage 2), solved once for the whole session and shared by every
    pytest-xdist worker. Read it; copy it before changing anything: at the end of the
    session every shared folder must still hold the bytes it was written with."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own base; their parent is this session's alone.
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "example-runs"
    shared.mkdir(exist_ok=True)
    seen: dict[Path, dict[str, str]] = {}

    def run(policy: str = "baseline", solver: str = "highs", method: str = "levels") -> Path:
        from gcm_fund import api

        folder = shared / f"{policy}-{solver}-{method}"
        out = folder / "run"
        if out not in seen:
            with _locked(shared / f"{folder.name}.lock"):
                if not (out / "manifest.json").is_file():  # a run folder appears complete
                    folder.mkdir(exist_ok=True)
                    model = (cases.weighted_policy(folder, policy) if method == "weighted"
                             else ROOT / "models" / f"{policy}.toml")
                    api.write(api.allocate(ROOT / "inputs", model, solver), out)
            seen[out] = _digests(out)
        return out

    yield run
    changed = [str(out) for out, digests in seen.items() if _digests(out) != digests]
    assert not changed, f"a test changed a shared example run in place: {changed}"

