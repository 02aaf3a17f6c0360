"""What a solver backend gives the solve pipeline, whatever the solver.

A backend maximises a cost over the LP's columns with some named columns (z, a stage's
own) in given bounds and given right-hand sides, and returns a `StageSolution` in one
convention: duals d objective / d rhs, reduced costs d objective / d bound, values in LP
column order. Statuses are the one `Status` enum; each backend maps its solver's
statuses to it in one place.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gcm_fund.model.lp import GE, LE


class Status(enum.StrEnum):
    """How a solve ended. A `str`, so that it compares equal to the word written in
    `manifest.json` and the sweep's CSV (`Status.OPTIMAL == "optimal"`)."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    EMPTY = "empty"  # a model without columns (HiGHS's kModelEmpty): nothing to allocate


OPTIMAL, INFEASIBLE, EMPTY = Status.OPTIMAL, Status.INFEASIBLE, Status.EMPTY

Bounds = Mapping[int, tuple[float, float]]  # LP column -> (lower, upper)


class SolverStopped(RuntimeError):
    """The solver ended neither optimal nor infeasible (a numerical failure): a crash of
    the tool, not an answer about the policy."""


@dataclass
class StageSolution:
    """One solved stage, in scaled units, with duals as d objective / d rhs.

    `bounds` are the bounds the stage set on named columns (LP column -> bounds).
    """

    status: Status
    objective: float = float("nan")
    col_value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    row_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bounds: dict[int, tuple[float, float]] = field(default_factory=dict)

    def bounds_of(self, col: int | None) -> tuple[float, float] | None:
        """The bounds this stage set on a column, None when it set none (or no column)."""
        return None if col is None else self.bounds.get(col)


@dataclass
class SolverInfo:
    """Which solver ran, for the manifest."""

    name: str
    version: str
    options: dict[str, Any]
    # How finely the solver's values come back (0: exactly as computed); stage 2 widens
    # its bound on z by this share of z* (`spec.stage2_z_bounds`), and the manifest says so.
    value_precision: float = 0.0


class Backend(Protocol):
    """What the solve pipeline needs of a solver.

    `value_precision`: the relative precision of the values the solver hands back (0 for
    HiGHS in memory; 1e-8 for CBC, read from an 8-digit solution file). A stage that
    bounds a column by a value read back gives up at least that much.
    """

    info: SolverInfo
    value_precision: float

    def solve(self, cost: np.ndarray, bounds: Bounds, rhs: np.ndarray, trial: bool = False,
              fresh: bool = False) -> StageSolution:
        """Maximise cost.x with these bounds on named columns and these right-hand sides
        (raises `SolverStopped` when the solver ends neither optimal nor infeasible).

        `trial`: the caller only asks whether these right-hand sides are feasible and
        takes INFEASIBLE for "no"; a backend that holds some columns only (a column pool)
        may then answer INFEASIBLE without proving it over every column. `fresh`: solve
        from scratch, not from the last basis (a backend that keeps none always does)."""
        ...

    def value_from_basis(self, rhs: np.ndarray, col: int) -> float | None:
        """Column `col`'s optimal value at right-hand sides `rhs`, from the last optimal
        basis without a solve, when that basis stays optimal at `rhs`; None when it
        may not (or the backend keeps no basis): then solve."""
        ...

    def start_from(self, other: Backend) -> None:
        """Start the next solve from `other`'s last basis, when both hold the same
        columns and rows (stages that share a column pool); otherwise nothing."""
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
