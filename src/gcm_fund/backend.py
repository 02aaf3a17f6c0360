"""What a solver backend gives the two-stage solve, whatever the solver.

A backend maximises a cost over the LP's columns with z in given bounds and given
right-hand sides, and returns a `StageSolution` in one convention: duals d objective /
d rhs, reduced costs d objective / d bound, values in LP column order.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .model import GE, LE

OPTIMAL, INFEASIBLE = "optimal", "infeasible"
EMPTY = "empty"  # HiGHS's kModelEmpty: a model without columns


@dataclass
class StageSolution:
    """One solved stage, in scaled units, with duals as d objective / d rhs."""

    status: str
    objective: float = float("nan")
    col_value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    row_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_bounds: tuple[float, float] | None = None


@dataclass
class SolverInfo:
    """Which solver ran, for the manifest."""

    name: str
    version: str
    options: dict[str, Any]


class Backend(Protocol):
    """What the two-stage solve needs of a solver."""

    info: SolverInfo

    def solve(self, cost: np.ndarray, z_bounds: tuple[float, float] | None,
              rhs: np.ndarray) -> StageSolution:
        """Maximise cost.x with z in z_bounds and these right-hand sides."""
        ...


@contextlib.contextmanager
def quiet_stdout():
    """Silence what a C library prints to the process's stdout (HiGHS's banner)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def row_bounds(sense: np.ndarray, rhs: np.ndarray, inf: float) -> tuple[np.ndarray, np.ndarray]:
    """Row lower and upper bounds for these senses and right-hand sides (`inf`: none)."""
    lower = np.where(sense == GE, rhs, -inf)
    upper = np.where(sense == LE, rhs, inf)
    return lower, upper
