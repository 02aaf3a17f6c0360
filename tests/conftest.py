"""Shared fixtures and the hypothesis profiles.

Profiles: `ci` (default: few examples, derandomized so that CI is deterministic) and `slow`
(many examples, for a thorough run). Choose one with the environment variable
HYPOTHESIS_PROFILE or pytest's `--hypothesis-profile`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import cases
import pytest
from hypothesis import HealthCheck, settings

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
