"""The solve of docs/model.md: `solve(lp, solver)` runs the stages of a `Pipeline`.

Stage 1 maximises the floor z, stage 2 the weighted objective with z held near z*. The
solver is a backend (`highs_backend`, default, or `pulp_backend`); whatever it is, duals
leave it as d objective / d rhs and reduced costs as d objective / d bound. The stages
themselves live in `pipeline`; this module keeps the short names callers use.
"""

from __future__ import annotations

import numpy as np

from gcm_fund.model.lp import LinearProgram
from gcm_fund.solvers.backend import Backend
from gcm_fund.solvers.diagnosis import diagnose
from gcm_fund.solvers.pipeline import Pipeline, Solution, make_backend, stage2_floor_bounds

__all__ = ["Pipeline", "Solution", "diagnose", "make_backend", "solve", "solve_stages",
           "stage2_floor_bounds"]


def solve_stages(lp: LinearProgram, backend: Backend,
                 rhs: np.ndarray | None = None) -> Solution:
    """Both stages of `lp` on a backend made by the caller (at `rhs`, default the LP's).

    Raises `InfeasibleError`, with a diagnosis, when no allocation meets the policy.
    """
    pipeline = Pipeline(lp, backend)
    if rhs is not None:
        pipeline.set_rhs(rhs)
    return pipeline.run()


def solve(lp: LinearProgram, solver: str = "highs") -> Solution:
    """The allocation of `lp` with the named solver, by the policy's method: priority
    levels (docs/model.md, `levels`) or the two stages of section 4 (`weighted`)."""
    from gcm_fund.methods.strategy import (
        method_of,  # the methods' stages are built on this module's names
    )

    return method_of(lp.policy).solve(lp, solver)
