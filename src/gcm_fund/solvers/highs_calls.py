"""The calls HiGHS is driven by: its options, passing it an LP, running a solve that a
Ctrl-C can cancel and that is retried when it ends neither optimal nor infeasible, and
reading its status. `HighsBackend` (in `highs`) and the programmes' MIP solves use them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gcm_fund.solvers.backend import EMPTY, INFEASIBLE, OPTIMAL, Status, quiet_stdout

log = logging.getLogger(__name__)

# Tight tolerances in USD millions: 1e-9 is a thousandth of a cent, far inside the
# cent-level tolerance that the written allocation is held to.
HIGHS_OPTIONS: dict[str, Any] = {
    "primal_feasibility_tolerance": 1e-9,
    "dual_feasibility_tolerance": 1e-9,
    "threads": 1,
    "random_seed": 0,
    "simplex_strategy": "primal after an objective change, dual after a bound change",
}

# HiGHS's default `small_matrix_value` (a model with a coefficient at or below it is
# refused), and the least it allows, set where a model has such coefficients.
HIGHS_SMALL_DEFAULT = 1e-9
HIGHS_SMALL_MATRIX = 1e-12

# What a solve that ends neither optimal nor infeasible is tried again with, in order:
# as it was (from scratch), then with HiGHS's scaling by largest value rather than its
# equilibration (which can scale a column of large coefficients so far that simplex
# calls a bounded LP unbounded), then by interior point with crossover (a basic
# solution, as the duals need).
RETRIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("", {}),
    (", scaling by the largest values", {"simplex_scale_strategy": 4}),
    (", by interior point", {"solver": "ipm"}),
)


def highs_option(highs: Any, key: str) -> Any:
    """An option's current value (highspy returns it alone or after a status)."""
    found = highs.getOptionValue(key)
    return found[1] if isinstance(found, tuple) else found


def simplex_strategy(warm: bool, cost_changed: bool, bounds_changed: bool) -> int:
    """HiGHS's simplex variant for the next solve from the current basis.

    After an objective change alone the old basis stays primal feasible, so primal simplex
    (4) goes on from it; after bound changes alone it stays dual feasible, so dual simplex
    (1) does: each goes on without a phase that repairs the basis (docs/performance.md
    times stage 2 both ways). Otherwise let HiGHS choose (0).
    """
    if not warm:
        return 0
    if cost_changed and not bounds_changed:
        return 4
    if bounds_changed and not cost_changed:
        return 1
    return 0


def pass_lp(highs: Any, csc: Any, cost: np.ndarray, col_lower: np.ndarray,
            col_upper: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray) -> None:
    """Hand a maximisation LP to a highspy instance as arrays (no per-element copies)."""
    n_rows, n_cols = csc.shape
    status = highs.passModel(
        n_cols, n_rows, csc.nnz, 1, -1, 0.0,  # 1: column-wise matrix; -1: maximise
        cost.astype(np.float64), col_lower.astype(np.float64), col_upper.astype(np.float64),
        row_lower.astype(np.float64), row_upper.astype(np.float64),
        csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
        csc.data.astype(np.float64), np.zeros(n_cols, dtype=np.int32),  # all continuous
    )
    if str(status) != "HighsStatus.kOk":
        raise RuntimeError(f"HiGHS refused the model: {status}")


def run_highs(highs: Any) -> None:
    """`highs.run()` that Ctrl-C stops within moments, not when HiGHS is done.

    HiGHS runs in highspy's worker thread with its simplex interrupt callback armed (see
    `new_highs`); this thread waits. On KeyboardInterrupt it asks HiGHS to stop, waits
    for it (further Ctrl-Cs included) and re-raises, so that the command writes nothing.
    A plain `run()` holds Ctrl-C until the HiGHS run ends, many seconds on large
    inputs.
    """
    try:
        # Inside the try: a Ctrl-C that arrives while startSolve sets the solve up (seconds
        # on a fresh model of millions of entries) is raised as soon as it returns, and
        # the solve it started must be cancelled too, or the process waits for it at exit.
        # Cancelling a solve that never started is harmless.
        highs.startSolve()
        while not highs.wait(0.1)[0]:
            pass
    except KeyboardInterrupt:
        highs.cancelSolve()
        while True:
            try:
                if highs.wait(0.1)[0]:
                    break
            except KeyboardInterrupt:
                continue
        raise


def new_highs() -> Any:
    """A silent highspy instance with the project's options (tolerances, one thread, seed).

    Typed Any: highspy's stubs lack methods it has (changeRowsBounds, getBasisSolve).
    """
    import highspy

    with quiet_stdout():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.HandleUserInterrupt = True  # arms the callback that `run_highs` stops it with
    for key, value in HIGHS_OPTIONS.items():
        if not isinstance(value, str):  # the simplex strategy is chosen per solve
            highs.setOptionValue(key, value)
    return highs


def highs_status(highs: Any) -> Status | None:
    """The one mapping of HiGHS's model status to `Status`; None for any other ending
    (a numerical failure, "Unknown"): the caller retries or gives up.

    The LPs are bounded (every allocation by its gap row; z, and any stage column, by
    its bounds or rows), so "unbounded or infeasible" is infeasible.
    """
    import highspy

    model_status = highspy.HighsModelStatus
    status = highs.getModelStatus()
    if status == model_status.kOptimal:
        return OPTIMAL
    if status in (model_status.kInfeasible, model_status.kUnboundedOrInfeasible):
        return INFEASIBLE
    if status == model_status.kModelEmpty:
        return EMPTY
    return None
