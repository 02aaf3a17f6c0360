"""What `certify` reports: one `Check` per question asked of a run folder, and the state
the checks of one folder share (`Certifier`).

The checks themselves live by subject: `provenance` (are these the files the run wrote?),
`optimality` (do the rules hold and do the duals prove the optimum?), `derived` (do the
tables and figures derived from the allocation say what it says?).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gcm_fund.audit.folder import DamagedFile, RunFolder
from gcm_fund.audit.rules import Rules

T = TypeVar("T")

# The words of a check that failed on something no targeted check foresaw: a damaged
# folder must still be "not certified", never a crash (the run-folder fuzz test expects
# every damage it makes to be named by a targeted check instead).
UNFORESEEN = "could not be checked, the folder is damaged"


@dataclass
class Check:
    """One check of `certify`: its figure, the tolerance it was held to, what failed."""

    name: str
    ok: bool
    figure: str
    tolerance: str = ""
    problems: list[str] = field(default_factory=list)

    def lines(self, shown: int = 8) -> list[str]:
        """The check as printed: one line, then the failing rows (at most `shown`)."""
        held = f" [tolerance: {self.tolerance}]" if self.tolerance else ""
        head = f"{'ok' if self.ok else 'FAIL':<4} {self.name}: {self.figure}{held}"
        more = len(self.problems) - shown
        tail = [f"       {p}" for p in self.problems[:shown]]
        if more > 0:
            tail.append(f"       ... and {more} more")
        return [head, *tail]


@dataclass
class Certificate:
    """Every check of one run folder."""

    folder: Path
    run: RunFolder
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, Any]:
        """The run's manifest as read."""
        return self.run.manifest

    @property
    def ok(self) -> bool:
        """Whether every check holds (and there was at least one)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        """The checks that do not hold."""
        return [c for c in self.checks if not c.ok]

    def lines(self) -> list[str]:
        """What `certify` prints."""
        run = self.run
        head = (f"certify {self.folder}: run {run.text('run_id')}, solver "
                f"{run.text('solver', 'name')} {run.text('solver', 'version')}, policy "
                f"{run.text('model', 'name')}")
        body = [line for check in self.checks for line in check.lines()]
        mip = any(c.name == "selection optimal" for c in self.checks)  # docs/programmes.md
        verdict = ("certified: the allocation meets every rule and the recorded duals prove "
                   "it optimal" if self.ok and not mip else
                   "certified: the selection meets every rule, its figures are recomputed "
                   "and the relaxation's duals bound its value; its optimality is verify's"
                   if self.ok else
                   f"NOT certified: {len(self.failed())} check"
                   f"{'s' if len(self.failed()) != 1 else ''} failed "
                   f"({', '.join(c.name for c in self.failed())})")
        return [head, *body, verdict]


class Certifier:
    """The state shared by the checks of one run folder."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.cert = Certificate(run.path, run)
        self.rules_: Rules | None = None
        self.x = np.zeros(0)  # the written allocation over the eligible triples, USD
        self.cents = np.zeros(0, dtype=np.int64)  # the same in whole cents, exactly
        self.written = np.zeros(0, dtype=bool)
        self.n_written = 0
        self.z_low: float | None = None  # stage 2's lower bound on z, as docs/model.md gives it
        self.z_bounds: tuple[float, float] | None = None
        self.policy_named = True  # whether the copied policy names itself

    @property
    def rules(self) -> Rules:
        """The rules rebuilt from the copied inputs (only once `load_rules` succeeded)."""
        if self.rules_ is None:
            raise RuntimeError("the rules are not loaded")
        return self.rules_

    def add(self, check: Check) -> None:
        """Record a check."""
        self.cert.checks.append(check)

    def step(self, name: str, check: Callable[..., T], *args: Any) -> T | None:
        """Run one check; a file it cannot read fails it, as does anything unforeseen."""
        try:
            return check(self, *args)
        except DamagedFile as exc:
            self.add(Check(name, False, f"{exc.name}: {exc.why}"))
        except RecursionError:
            self.add(Check(name, False, f"{UNFORESEEN} (nested too deeply)"))
        except Exception as exc:  # noqa: BLE001 - a damaged folder is "not certified"
            self.add(Check(name, False, f"{UNFORESEEN} ({type(exc).__name__}: {exc})"))
        return None
