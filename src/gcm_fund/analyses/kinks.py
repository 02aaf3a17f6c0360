"""The kinks of a piecewise-linear vector function of one variable, found by re-solves.

The sweep's figures (the floor z*, the money placed, every gap's level under priority
levels (docs/model.md), the weighted objective) are piecewise linear in the swept pledge
B: each is the optimum, or a part of the optimum, of an LP whose right-hand sides move
linearly with B. A **kink**
is a pledge where the slope of some figure changes: a breakpoint of the sweep.

The search uses values only (no duals: under levels they are not unique):

- Three points on one line prove the segment between them linear when the figure is
  concave (z* and the money placed are; the levels and the weighted objective are
  piecewise linear but need not be concave, so for them a proof is strong evidence).
  The sweep's own levels give such triples for free.
- A segment [a, b] not proven linear holds a kink. With the line of the piece on its
  left (through a) and of the piece on its right (through b) known, the one candidate is
  where the two lines meet: one solve there either lies on both (the kink, exactly) or
  splits the segment. Without both lines, the segment is split at its middle, and a
  point on the chord of [a, b] proves it linear.
- Every search is bounded: a segment narrower than the resolution (`max(tol_usd,
  rel_width x b)`) is reported as a bracket, and so is every segment left when the
  budget of solves is spent. So the search always ends, whatever the solver's noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A segment narrower than this share of its upper end is not split further.
DEFAULT_REL_WIDTH = 1e-6
# Solves the search may spend beyond the sweep's own levels.
DEFAULT_MAX_SOLVES = 120


@dataclass(frozen=True)
class Point:
    """A figure vector at one pledge; NaN components (a gap outside E) are not compared."""

    x: float
    values: np.ndarray


@dataclass(frozen=True)
class Line:
    """The line of one linear piece: values at `x` and slopes per USD."""

    x: float
    values: np.ndarray
    slopes: np.ndarray

    def at(self, x: float) -> np.ndarray:
        """The values the piece predicts at x."""
        return self.values + self.slopes * (x - self.x)


def chord(a: Point, b: Point) -> Line:
    """The line through two points."""
    return Line(a.x, a.values, (b.values - a.values) / (b.x - a.x))


@dataclass(frozen=True)
class Kink:
    """A change of slope within [below, above] (below == above: found exactly), with the
    lines of the pieces on either side where known."""

    below: float
    above: float
    left: Line | None
    right: Line | None


@dataclass
class Search:
    """A bounded search for kinks: `evaluate(x)` solves at x (None where no figure exists,
    an infeasible pledge); `tolerance(values)` is the absolute tolerance of each
    component; `resolution(x)` the narrowest segment split near x."""

    evaluate: Callable[[float], Point | None]
    tolerance: Callable[[np.ndarray], np.ndarray]
    resolution: Callable[[float], float]
    max_solves: int = DEFAULT_MAX_SOLVES
    on_solve: Callable[[int], None] | None = None
    solves: int = 0

    def on(self, point: Point, line: Line) -> bool:
        """Whether a point lies on a line, component by component, within tolerance."""
        predicted = line.at(point.x)
        ok = np.isfinite(predicted) & np.isfinite(point.values)
        diff = np.abs(point.values[ok] - predicted[ok])
        return bool((diff <= self.tolerance(point.values)[ok]).all())

    def same(self, first: Line, second: Line, x: float, width: float) -> bool:
        """Whether two lines through (nearly) one point x agree at `width` on either side."""
        return all(self.on(Point(at, first.at(at)), second) for at in (x - width, x + width))

    def run(self, points: Sequence[Point]) -> list[Kink]:
        """The kinks between consecutive `points` (ascending x, all of one piecewise
        linear function): each exact where the budget and resolution allow, else a
        bracket. `points` with fewer than two entries have none."""
        left: dict[float, Line] = {}  # the line of a piece ending at x
        right: dict[float, Line] = {}  # the line of a piece starting at x
        brackets: list[tuple[float, float]] = []
        by_x = {p.x: p for p in points}

        def linear(a: Point, b: Point, line: Line) -> None:
            right[a.x] = line
            left[b.x] = line

        for a, m, b in zip(points, points[1:], points[2:], strict=False):
            line = chord(a, b)
            if self.on(m, line):
                linear(a, m, line)
                linear(m, b, line)
        todo = [(a, b) for a, b in zip(points, points[1:], strict=False)
                if right.get(a.x) is None or left.get(b.x) is None
                or right[a.x] is not left[b.x]]
        # Left to right, so that a piece found on the left serves the segment after it.
        stack = list(reversed(todo))
        while stack:
            a, b = stack.pop()
            if right.get(a.x) is not None and right[a.x] is left.get(b.x):
                continue
            line_a, line_b = left.get(a.x), right.get(b.x)
            if line_b is not None and self.on(a, line_b):
                linear(a, b, line_b)
                continue
            if line_a is not None and self.on(b, line_a):
                linear(a, b, line_a)
                continue
            width = self.resolution(b.x)
            x = self._candidate(a.x, b.x, line_a, line_b, width)
            if x is None or self.solves >= self.max_solves:
                brackets.append((a.x, b.x))
                continue
            self.solves += 1
            if self.on_solve is not None:
                self.on_solve(self.solves)
            got = self.evaluate(x)
            if got is None:
                brackets.append((a.x, b.x))
                continue
            by_x[x] = got
            through = chord(a, b)
            if self.on(got, through):
                linear(a, b, through)
                continue
            on_a = line_a is not None and self.on(got, line_a)
            on_b = line_b is not None and self.on(got, line_b)
            if on_a:
                assert line_a is not None
                linear(a, got, line_a)
            if on_b:
                assert line_b is not None
                linear(got, b, line_b)
            if not on_b:
                stack.append((got, b))
            if not on_a:
                stack.append((a, got))
        return self._kinks(sorted(by_x), left, right, brackets)

    def _candidate(self, a: float, b: float, line_a: Line | None, line_b: Line | None,
                   width: float) -> float | None:
        """Where to solve next in (a, b), to the cent: where the two lines meet if that is
        well inside, else the middle; None when the segment is narrower than `width`."""
        if b - a <= width:
            return None
        middle = round((a + b) / 2, 2)
        if line_a is not None and line_b is not None:
            # The component whose slopes differ most (relative to its tolerance) decides.
            gap = np.abs(line_a.slopes - line_b.slopes) * (b - a)
            gap = np.where(np.isfinite(gap), gap, 0.0) / self.tolerance(line_a.at(a))
            k = int(np.argmax(gap))
            if gap[k] > 1.0:
                va, vb = line_a.at(a)[k], line_b.at(a)[k]
                x = a + (vb - va) / (line_a.slopes[k] - line_b.slopes[k])
                x = round(float(x), 2)
                if a + width / 2 < x < b - width / 2:
                    return x
        return middle if a < middle < b else None

    def _kinks(self, xs: list[float], left: dict[float, Line], right: dict[float, Line],
               brackets: list[tuple[float, float]]) -> list[Kink]:
        found = [Kink(a, b, left.get(a), right.get(b)) for a, b in brackets]
        for i, x in enumerate(xs):
            line_l, line_r = left.get(x), right.get(x)
            if line_l is None or line_r is None or line_l is line_r:
                continue
            width = min(x - xs[i - 1] if i > 0 else np.inf,
                        xs[i + 1] - x if i + 1 < len(xs) else np.inf)
            if not self.same(line_l, line_r, x, float(width)):
                found.append(Kink(x, x, line_l, line_r))
        return sorted(found, key=lambda k: (k.below, k.above))
