"""A trail of optimal bases: the bases of a sequence of solves, kept in order, so that the
same sequence run again at nearby right-hand sides starts each solve from its own basis.

The donor figures (docs/outputs.md) run stage 1b and the first level steps again for
every source with its pledge raised by a dollar or so. Warm from the last source's final
step, stage 1b pivots far; from its own basis at the unraised pledges it needs few pivots
or none, as does every step after it (docs/performance.md gives the counts). Only the starting
point changes: each solve still ends at an optimum of its own LP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class KeptBasis:
    """One solve's optimal basis on one HiGHS model, and the objective it was optimal for."""

    owner: int  # the serial of the backend whose model it is: a restarted stage's differs
    col_status: list[Any]
    row_status: list[Any]
    cost: bytes  # `cost_key` of the objective: the same one keeps the basis dual feasible


@dataclass
class BasisTrail:
    """The bases of the first run of a sequence of solves (`recording`), then started from
    in the same order by every later run (`rewind` before each)."""

    bases: list[KeptBasis | None] = field(default_factory=list)
    recording: bool = True
    at: int = 0

    def rewind(self) -> None:
        """The next solve is the first of a run again; what was recorded is kept."""
        self.recording = False
        self.at = 0

    def next_basis(self) -> KeptBasis | None:
        """The basis the next solve starts from (None while recording, past the trail's
        end, or where the recorded solve kept none)."""
        if self.recording or self.at >= len(self.bases):
            return None
        return self.bases[self.at]

    def passed(self, basis: KeptBasis | None) -> None:
        """A solve ended: record its basis (None when it kept none), or move on."""
        if self.recording:
            self.bases.append(basis)
        else:
            self.at += 1


def cost_key(cost: np.ndarray) -> bytes:
    """A digest of an objective: equal objectives, equal keys (a few bytes, where the
    objective of a large LP has millions of entries)."""
    return hashlib.blake2b(np.ascontiguousarray(cost, dtype=np.float64).tobytes(),
                           digest_size=16).digest()
