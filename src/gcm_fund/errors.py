"""The errors gcm_fund raises, each mapped by the command line to one exit status."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_INTERNAL = 70  # a bug, not the user's input (sysexits' EX_SOFTWARE)
EXIT_OUTPUT = 74  # the results could not be printed, e.g. a full disk (sysexits' EX_IOERR)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT (128 + 2)
EXIT_TERMINATED = 143  # SIGTERM while writing, as a shell reports it (128 + 15)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in one place of a user's file.

    `line` counts the header (or the first line of a TOML file) as 1; it is None when
    the problem is the file as a whole (missing, unreadable).
    """

    file: str
    line: int | None
    column: str | None
    why: str

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.column:
            return f"{place}: {self.column}: {self.why}"
        return f"{place}: {self.why}"


class GcmFundError(Exception):
    """Base of every error the command line turns into a message and an exit status."""

    exit_code = EXIT_BAD_INPUT


class UsageError(GcmFundError):
    """A command was called with options that cannot work together (exit status 2)."""


class InputError(GcmFundError):
    """Bad input files or policy: every problem found, reported at once (exit status 2)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=_problem_order)
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line, in file and line order."""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the input:"
        return "\n".join([head, *(str(p) for p in self.problems)])


def _problem_order(problem: Problem) -> tuple[str, int, str, str]:
    return (problem.file, problem.line or 0, problem.column or "", problem.why)


@dataclass
class Shortfall:
    """A `>=` rule that the elastic re-solve had to relax, and by how much (USD)."""

    row: str
    family: str
    short_usd: float


@dataclass
class ConflictRule:
    """One rule of a set that cannot hold together, though any smaller part of it can.

    `row` is the rule's row name, or `equity.min_floor` for the floor's lower bound.
    `need_usd`: how far this rule alone would have to give for the others to hold (USD
    more room for a `<=` cap, USD less for a `>=` rule); None when giving on it alone is
    not enough (another conflict remains) or was not `checked` (a large conflict).
    `floor_reach`: for `equity.min_floor`, the highest floor the other rules allow.
    """

    row: str
    family: str
    need_usd: float | None = None
    floor_reach: float | None = None
    checked: bool = True


@dataclass
class Diagnosis:
    """Why a policy cannot be met: the relaxed rules and the `<=` rules that block them,
    and `conflict`, an irreducible set of rules that cannot hold together."""

    reason: str
    shortfalls: list[Shortfall] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    conflict: list[ConflictRule] = field(default_factory=list)

    def families(self) -> list[str]:
        """The rule families that cannot all hold, relaxed ones first."""
        seen: list[str] = []
        for name in [s.family for s in self.shortfalls] + [_family(b) for b in self.blocking]:
            if name not in seen:
                seen.append(name)
        return seen

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, for `diagnosis.json`."""
        return {
            "status": "infeasible",
            "reason": self.reason,
            "families": self.families(),
            "shortfalls": [
                {"row": s.row, "family": s.family, "short_usd": round(s.short_usd, 2)}
                for s in self.shortfalls
            ],
            "blocking": self.blocking,
            "conflict": [
                {"row": c.row, "family": c.family,
                 "need_usd": None if c.need_usd is None else round(c.need_usd, 2),
                 **({"floor_reach": round(c.floor_reach, 9)}
                    if c.floor_reach is not None else {}),
                 **({} if c.checked else {"checked": False})}
                for c in self.conflict
            ],
        }


def _family(row_name: str) -> str:
    return row_name.split("[", 1)[0]


class InfeasibleError(GcmFundError):
    """The policy cannot be met on these inputs (exit status 3)."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, diagnosis: Diagnosis):
        self.diagnosis = diagnosis
        super().__init__(diagnosis.reason)
