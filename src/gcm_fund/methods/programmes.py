"""The programmes method (docs/programmes.md): whole programmes selected by a mixed-integer program.

The rules are section 4's, written once in `model.build` over the eligible triples
x[f,s,t]. A programme's money is counted toward its gaps by its shares, so the counted
amounts are a linear map of the programme amounts: `x_triple = T @ x_prog`, where
`T[(f,s,t), (f,p)] = share[p,s,t]`. The programme model's rows are the LP's rows times
`T` (no rule is restated here), plus `size[p]`: `M_p y_p <= a_p <= R_p y_p` and, where
the policy asks, `per_state[s]`: the funded programmes naming `s` at most `max_per_state`.

The lexicographic objective (`select`): (1) the most value `V = sum v_p a_p`; `V*` is the
value of the LP re-solved with that selection held; (2) with `V >= V* (1 - 1e-7)`, the
most money placed; (3) with that money held the same way, the tie-break: the most
`sum c_p a_p`, `c_p` in [1, 2) a fixed pseudo-random number of the programme's id
(`tie_break_cost`), so that the selection and every `a_p` are unique whatever solver
finds them. Then, with the selection and every `a_p` held, the least loan burden and the
split rule (the least `sum d[f,p] x[f,p]`, `d` from the source and programme ids) choose
the sources. Each MIP runs first with alike sources merged (`programme_relaxation`), its
selection checked in the model's LP (`_best`). See docs/programmes.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from gcm_fund.errors import Diagnosis, InfeasibleError, Shortfall
from gcm_fund.inputs.programmes import parse_shares
from gcm_fund.inputs.schema import ProgrammeRow
from gcm_fund.methods.programme_costs import split_cost, tie_break_cost
from gcm_fund.methods.programme_relaxation import merge_alike_sources
from gcm_fund.model.eligibility import gap_priority, loan_cost
from gcm_fund.model.lp import GE, LE, SCALE_USD, LinearProgram
from gcm_fund.solvers.backend import OPTIMAL, SolverInfo, StageSolution
from gcm_fund.solvers.pipeline import Solution
from gcm_fund.solvers.programmes import (
    SUB_MIP_HEURISTICS,
    HeldLP,
    Solved,
    solve_lp_priced,
    solve_matrix,
)

log = logging.getLogger(__name__)

VALUE_WINDOW = 1e-7  # docs/programmes.md: stage 2 keeps V >= V* (1 - 1e-7); stage 3 the money alike
HOLD = 1e-9  # a held a_p may move this much (relative) in the burden and split stages
# ... and this much on a solver that reads values back to 8 digits (CBC): held tighter,
# the amounts read back need not fit the budgets they exhaust, and the split fails.
HOLD_ROUNDED = 1e-7
BURDEN_PRICE_TOLERANCE = 1e-6  # relative to the largest loan cost, as split.py
MAX_REASONS = 200  # docs/programmes.md: reasons solved for at most this many unfunded programmes
PRICING_MIN_COLUMNS = 20_000  # docs/performance.md: the relaxation LP by column generation


@dataclass
class ProgrammeModel:
    """The programme MIP over one LP: columns x[f,p] then y_p (one per eligible
    programme), rows the LP's rows (but the floor's) times T, then size and per-State."""

    lp: LinearProgram  # the LP of section 4 without the floor (no z)
    ids: list[str]
    names: list[str]
    states: list[tuple[str, ...]]
    targets: list[tuple[str, ...]]
    budget: np.ndarray  # R_p, USD millions
    minimum: np.ndarray  # M_p, USD millions
    quality: np.ndarray
    priority: np.ndarray  # pi_p (NaN without gaps)
    value: np.ndarray  # v_p = q_p pi_p
    not_eligible: dict[int, str]  # programme -> why
    prog_gaps: list[dict[int, float]]  # programme -> {gap: share}
    col_source: np.ndarray  # x columns: source index
    col_prog: np.ndarray  # x columns: programme index
    y_prog: np.ndarray  # y columns: programme index (the eligible programmes)
    counted: sp.csr_matrix  # T: n_x triples x n_xp
    matrix: sp.csr_matrix  # all rows x all columns
    row_lo: np.ndarray
    row_hi: np.ndarray
    # The first rows are the LP's rows `base_rows`, in its order: the rows others imply
    # are left out (`LinearProgram.implied_rows`; their dual 0 is valid), as the LP
    # backends do.
    base_rows: np.ndarray
    row_names: list[str] = field(default_factory=list)

    @property
    def n_xp(self) -> int:
        """x[f,p] columns."""
        return len(self.col_source)

    @property
    def n_cols(self) -> int:
        """All columns: x[f,p] then y_p."""
        return self.n_xp + len(self.y_prog)

    def amounts(self, values: np.ndarray) -> np.ndarray:
        """a_p by programme (USD millions) from column values."""
        return np.bincount(self.col_prog, values[: self.n_xp], minlength=len(self.ids))

    def amount_row(self, weight: np.ndarray) -> np.ndarray:
        """The row `sum_p weight_p a_p` over all columns."""
        row = np.zeros(self.n_cols)
        row[: self.n_xp] = weight[self.col_prog]
        return row


def without_floor(lp: LinearProgram) -> LinearProgram:
    """The LP without its floor rows and z: docs/programmes.md has no floor."""
    keep_rows = np.ones(lp.n_rows, dtype=bool)
    blocks = []
    start = 0
    for b in lp.blocks:
        if b.family == "floor":
            keep_rows[b.start:b.stop] = False
            continue
        n = b.stop - b.start
        blocks.append(replace(b, start=start, stop=start + n))
        start += n
    matrix = lp.matrix.tocsr()[keep_rows][:, : lp.n_x].tocsc()
    return replace(lp, matrix=matrix, sense=lp.sense[keep_rows], rhs=lp.rhs[keep_rows],
                   blocks=blocks, aux_columns=[], floor_gaps=np.zeros(0, dtype=np.intp))


def build_programmes(lp: LinearProgram) -> ProgrammeModel:
    """The programme model of docs/programmes.md over the LP of the same inputs and policy."""
    lp = without_floor(lp)
    data, policy = lp.data, lp.policy
    table = data.programme_table
    if table is None:
        raise ValueError("the programmes method needs programmes.csv (load_programmes)")
    gaps = data.gap_table
    gap_index = {k: i for i, k in enumerate(zip(gaps["iso3"].tolist(), gaps["target"].tolist(),
                                                strict=True))}
    pi_gap = gap_priority(data, policy)
    triple = {(int(f), int(g)): j for j, (f, g) in enumerate(zip(lp.var_source, lp.var_gap,
                                                              strict=True))}
    sources_of_gap: dict[int, set[int]] = {}
    for (f, g) in triple:
        sources_of_gap.setdefault(g, set()).add(f)

    rows = [row for row in table.rows if isinstance(row, ProgrammeRow)]
    n_p = len(rows)
    not_eligible: dict[int, str] = {}
    prog_gaps: list[dict[int, float]] = []
    priority = np.full(n_p, np.nan)
    col_source: list[int] = []
    col_prog: list[int] = []
    t_rows: list[int] = []
    t_cols: list[int] = []
    t_vals: list[float] = []
    for p, row in enumerate(rows):
        if row.shares:
            entries = parse_shares(";".join(row.shares))
            named = {gap_index[(e.iso3, e.target)]: e.share for e in entries}
            outside = [g for g in named if not lp.gap_eligible[g]]
            if outside:
                keys = ", ".join(f"{gaps['iso3'][g]}:{gaps['target'][g]}" for g in outside)
                not_eligible[p] = f"no source may fund its gap {keys}"
            shares = named
        else:
            mine = [gap_index[(s, t)] for s in row.states for t in row.targets
                    if (s, t) in gap_index]
            mine = [g for g in mine if lp.gap_eligible[g]]
            total = float(lp.fundable[mine].sum()) if mine else 0.0
            shares = {g: float(lp.fundable[g]) / total for g in sorted(mine)} if total else {}
            if not shares:
                not_eligible[p] = "none of its States x targets is a gap any source may fund"
        prog_gaps.append(shares)
        if shares:
            priority[p] = sum(s * pi_gap[g] for g, s in shares.items())
        if p in not_eligible:
            continue
        if row.quality <= 0:
            not_eligible[p] = "quality 0"
            continue
        funders = set.intersection(*(sources_of_gap[g] for g in shares))
        if not funders:
            not_eligible[p] = "no source may fund every one of its gaps (earmarks)"
            continue
        for f in sorted(funders):
            col = len(col_source)
            col_source.append(f)
            col_prog.append(p)
            for g, s in shares.items():
                t_rows.append(triple[(f, g)])
                t_cols.append(col)
                t_vals.append(s)

    n_xp = len(col_source)
    counted = sp.csr_matrix((t_vals, (t_rows, t_cols)), shape=(lp.n_x, n_xp))
    eligible = np.array([p for p in range(n_p) if p not in not_eligible], dtype=np.intp)
    y_at = {int(p): n_xp + k for k, p in enumerate(eligible)}
    n_cols = n_xp + len(eligible)
    c_source = np.array(col_source, dtype=np.intp)
    c_prog = np.array(col_prog, dtype=np.intp)

    kept = np.nonzero(~lp.implied_rows())[0]
    base = (lp.matrix.tocsr()[kept] @ counted).tocsr()
    base = sp.hstack([base, sp.csr_matrix((len(kept), len(eligible)))], format="csr")
    inf = np.inf
    row_lo = [np.where(lp.sense == GE, lp.rhs, -inf)[kept]]
    row_hi = [np.where(lp.sense == LE, lp.rhs, inf)[kept]]
    all_names = lp.row_names()
    names = [all_names[i] for i in kept]
    budget = np.array([r.budget_usd for r in rows]) / SCALE_USD
    minimum = np.array([r.minimum_usd for r in rows]) / SCALE_USD
    blocks = [base]
    # size[p]: a_p - M_p y_p >= 0 and a_p - R_p y_p <= 0.
    if len(eligible):
        k = np.arange(len(eligible))
        pos = {int(p): i for i, p in enumerate(eligible)}
        xr = np.array([pos[p] for p in col_prog], dtype=np.intp)
        for bound, lo, hi in ((minimum, 0.0, inf), (budget, -inf, 0.0)):
            block = sp.csr_matrix(
                (np.concatenate([np.ones(n_xp), -bound[eligible]]),
                 (np.concatenate([xr, k]), np.concatenate([np.arange(n_xp),
                                                           n_xp + k]))),
                shape=(len(eligible), n_cols))
            blocks.append(block)
            row_lo.append(np.full(len(eligible), lo))
            row_hi.append(np.full(len(eligible), hi))
        names += [f"size_min[{rows[p].programme_id}]" for p in eligible]
        names += [f"size_max[{rows[p].programme_id}]" for p in eligible]
    limit = policy.programmes.max_per_state
    if limit is not None and len(eligible):
        iso3 = data.state_table["iso3"].tolist()
        per_state: dict[str, list[int]] = {}
        for p in eligible:
            for code in sorted({str(gaps["iso3"][g]) for g in prog_gaps[p]}):
                per_state.setdefault(code, []).append(y_at[int(p)])
        states = [c for c in iso3 if c in per_state and len(per_state[c]) > limit]
        if states:
            r = [i for i, code in enumerate(states) for _ in per_state[code]]
            c = [col for code in states for col in per_state[code]]
            blocks.append(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(states), n_cols)))
            row_lo.append(np.full(len(states), -inf))
            row_hi.append(np.full(len(states), float(limit)))
            names += [f"per_state[{code}]" for code in states]
    return ProgrammeModel(
        lp=lp, ids=[r.programme_id for r in rows], names=[r.name for r in rows],
        states=[r.states for r in rows], targets=[r.targets for r in rows],
        budget=budget, minimum=minimum, quality=np.array([r.quality for r in rows]),
        priority=priority, value=np.array([r.quality for r in rows]) * np.nan_to_num(priority),
        not_eligible=not_eligible, prog_gaps=prog_gaps, col_source=c_source, col_prog=c_prog,
        y_prog=eligible, counted=counted, matrix=sp.vstack(blocks, format="csr"),
        row_lo=np.concatenate(row_lo), row_hi=np.concatenate(row_hi), base_rows=kept,
        row_names=names)


def _solve(model: ProgrammeModel, cost: np.ndarray, extra: list[tuple[np.ndarray, float]],
           col_lo: np.ndarray, col_hi: np.ndarray, integer: bool, solver: str,
           start: np.ndarray | None = None,
           block: tuple[sp.csr_matrix, np.ndarray, np.ndarray] | None = None) -> Solved:
    """Maximise cost.x over the model's rows, then the rows of `block` (matrix, lower
    and upper bounds), then the `extra` rows (row, lower bound)."""
    matrices = [model.matrix]
    row_lo, row_hi = [model.row_lo], [model.row_hi]
    if block is not None:
        matrices.append(block[0])
        row_lo.append(block[1])
        row_hi.append(block[2])
    if extra:
        matrices.append(sp.csr_matrix(np.array([r for r, _ in extra])))
        row_lo.append(np.array([lo for _, lo in extra]))
        row_hi.append(np.full(len(extra), np.inf))
    matrix = sp.vstack(matrices, format="csc") if len(matrices) > 1 else model.matrix.tocsc()
    lo_rows, hi_rows = np.concatenate(row_lo), np.concatenate(row_hi)
    kinds = np.zeros(model.n_cols, dtype=np.int32)
    if integer:
        kinds[model.n_xp:] = 1
    return solve_matrix(matrix, cost, lo_rows, hi_rows, col_lo, col_hi, kinds, solver, start)


# ---------------------------------------------------------------------------------------
# The stages


@dataclass
class Selection:
    """What the programmes method chose, and why (docs/programmes.md)."""

    model: ProgrammeModel
    x_prog: np.ndarray  # x[f,p], USD millions
    amount: np.ndarray  # a_p, USD millions
    funded: np.ndarray  # bool by programme
    value: float  # V, USD millions x value per USD
    value_bound: float  # the LP relaxation's optimum
    relaxation_duals: np.ndarray
    placed: float  # sum of a_p, USD millions
    value_loss: dict[int, float] = field(default_factory=dict)
    displaced: dict[int, list[str]] = field(default_factory=dict)
    solver_name: str = "highs"
    final_duals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    relaxed: ProgrammeModel | None = None  # the merged sources' relaxation, when smaller


def _bounds(model: ProgrammeModel, y_fixed: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(model.n_cols)
    hi = np.full(model.n_cols, np.inf)
    hi[model.n_xp:] = 1.0
    if y_fixed is not None:
        lo[model.n_xp:] = y_fixed
        hi[model.n_xp:] = y_fixed
        # A programme left out pays nothing: its columns are fixed at 0 (size_max says
        # so too), and `_solve` leaves them out.
        y_by_programme = np.zeros(len(model.ids))
        y_by_programme[model.y_prog] = y_fixed
        hi[: model.n_xp][y_by_programme[model.col_prog] < 0.5] = 0.0
    return lo, hi


def _infeasible(model: ProgrammeModel) -> InfeasibleError:
    families = sorted({n.split("[", 1)[0] for n in model.row_names if n.startswith(
        ("thematic", "regional", "per_state"))})
    reason = ("no selection of whole programmes meets the rules"
              + (f" ({', '.join(families)} among them)" if families else ""))
    return InfeasibleError(Diagnosis(reason=reason, shortfalls=[
        Shortfall(n, n.split("[", 1)[0], 0.0) for n in model.row_names
        if n.startswith(("thematic", "regional"))]))


def unmet_balance(model: ProgrammeModel) -> list[str]:
    """`thematic[t]` and `regional[r]` rows with a share > 0 that no eligible programme
    counts toward (docs/programmes.md: exit 3)."""
    lp = model.lp
    gaps = lp.data.gap_table
    region_of = dict(zip(lp.data.state_table["iso3"].tolist(),
                         lp.data.state_table["region"].tolist(), strict=True))
    counted = [g for p in model.y_prog for g in model.prog_gaps[p]]
    targets = {str(gaps["target"][g]) for g in counted}
    regions = {region_of[str(gaps["iso3"][g])] for g in counted}
    policy = lp.policy
    return ([f"thematic[{t}]" for t, v in sorted(policy.thematic.min_share.items())
             if v > 0 and t not in targets]
            + [f"regional[{r}]" for r, v in sorted(policy.regional.min_share.items())
               if v > 0 and r not in regions])


@dataclass
class _Stage:
    """One stage's selection `y`, the model's LP with it held (`held`, optimum `star`),
    and the MIP's values on the model `on` it was found on (the next stage's start)."""

    y: np.ndarray
    star: float
    held: Solved
    values: np.ndarray
    on: ProgrammeModel


def _best(model: ProgrammeModel, relaxed: ProgrammeModel | None, weight: np.ndarray,
          windows: list[tuple[np.ndarray, float]], solver: str, forced: int | None = None,
          start: _Stage | None = None, held_lp: HeldLP | None = None) -> _Stage | None:
    """The selection of the most `sum weight_p a_p` with each window `sum w_p a_p >= b`
    held (and programme `forced` funded when given); None when no selection meets the
    rules. The merged relaxation is tried first: its selection is the model's when the
    model's LP with it held reaches the relaxation's optimum (docs/programmes.md)."""
    tolerance = (HOLD if solver == "highs" else HOLD_ROUNDED)
    for on in ([relaxed] if relaxed is not None else []) + [model]:
        lo, hi = _bounds(on)
        if forced is not None:
            lo[on.n_xp + int(np.nonzero(on.y_prog == forced)[0][0])] = 1.0
        extra = [(on.amount_row(w), bound) for w, bound in windows]
        mip = _solve(on, on.amount_row(weight), extra, lo, hi, True, solver,
                     start=start.values if start is not None and start.on is on else None)
        if not mip.optimal:  # the relaxation's infeasibility is the model's too
            return None
        y = np.round(mip.values[on.n_xp:])
        held_lo, held_hi = _bounds(model, y)
        if forced is not None:
            held_lo[model.n_xp + int(np.nonzero(model.y_prog == forced)[0][0])] = 1.0
        held = (held_lp.solve(held_lo, held_hi) if held_lp is not None and not windows
                else _solve(model, model.amount_row(weight),
                            [(model.amount_row(w), bound) for w, bound in windows],
                            held_lo, held_hi, False, solver))
        if on is model:
            return _Stage(y, held.objective if held.optimal else mip.objective, held,
                          mip.values, on)
        if held.optimal and held.objective >= mip.objective - tolerance * max(
                1.0, abs(mip.objective)):
            return _Stage(y, held.objective, held, mip.values, on)
        log.info("the merged sources' selection does not hold in the model: its own MIP")
    raise AssertionError("unreachable: the model's own MIP returns")


def select(lp: LinearProgram, solver: str = "highs", reasons: bool = True,
           merge: bool = True) -> Selection:
    """docs/programmes.md's selection over the LP of the inputs and policy: the lexicographic MIP,
    the relaxation's bound and, with `reasons`, the cost of each of the unfunded
    programmes of highest value per USD. `merge=False` solves every MIP on the model
    itself (the same selection, slower: what the tests compare the merged path with)."""
    model = build_programmes(lp)
    if lp.unmet_thematic or lp.unmet_regional:
        raise _infeasible(model)
    unmet = unmet_balance(model)
    if unmet:
        raise InfeasibleError(Diagnosis(
            reason=f"{', '.join(unmet)}: the policy asks a share > 0, but no eligible "
                   "programme counts toward it", shortfalls=[
                Shortfall(name, name.split("[", 1)[0], 0.0) for name in unmet]))
    n_p = len(model.ids)
    value_row = model.amount_row(model.value)
    lo, hi = _bounds(model)
    relaxation = _relaxation(model, value_row, solver)
    if not relaxation.optimal:
        raise _infeasible(model)
    relaxed = merge_alike_sources(model) if merge else None
    first = _best(model, relaxed, model.value, [], solver)
    if first is None:
        raise _infeasible(model)
    windows = [(model.value, first.star * (1 - VALUE_WINDOW))]
    # Each stage starts from the last one's selection, which meets its window.
    placed = _best(model, relaxed, np.ones(n_p), windows, solver, start=first)
    if placed is None:  # the window holds stage 1's selection: never
        raise _infeasible(model)
    windows.append((np.ones(n_p), placed.star * (1 - VALUE_WINDOW)))
    tied = _best(model, relaxed, tie_break_cost(model.ids), windows, solver, start=placed)
    if tied is None or not tied.held.optimal:
        raise _infeasible(model)
    y = tied.y
    held_lo, held_hi = _bounds(model, y)
    x_prog = written_programme_amounts(model, _split(model, tied.held.values, held_lo,
                                                     held_hi, solver))
    amount = model.amounts(x_prog)
    funded = np.zeros(n_p, dtype=bool)
    funded[model.y_prog[y > 0.5]] = True
    # constraints.csv's duals: the value LP with the selection held (docs/programmes.md's final LP).
    held = (first.held if np.array_equal(first.y, y)
            else _solve(model, value_row, [], held_lo, held_hi, False, solver))
    selection = Selection(model, x_prog, amount, funded, float(model.value @ amount),
                          relaxation.objective, relaxation.row_dual,
                          float(amount.sum()), solver_name=solver,
                          final_duals=_base_duals(model, held.row_dual), relaxed=relaxed)
    if reasons:
        _reasons(selection, solver)
    return selection


def _relaxation(model: ProgrammeModel, value_row: np.ndarray, solver: str) -> Solved:
    """The LP relaxation behind `value_bound`; on a large model by column generation over
    the x[f,p] columns, each programme starting from its sources of largest pledge."""
    lo, hi = _bounds(model)
    if model.n_xp < PRICING_MIN_COLUMNS:
        return _solve(model, value_row, [], lo, hi, False, solver)
    return solve_lp_priced(model.matrix, value_row, model.row_lo, model.row_hi, lo, hi,
                           solver, model.col_prog, model.lp.pledge[model.col_source])


def _split(model: ProgrammeModel, values: np.ndarray, lo: np.ndarray, hi: np.ndarray,
           solver: str) -> np.ndarray:
    """With every a_p held (within HOLD), the least loan burden, then the least
    `sum d[f,p] x[f,p]`: the sources of each programme's money."""
    lp = model.lp
    a = model.amounts(values)
    hold = HOLD if solver == "highs" else HOLD_ROUNDED
    paid = np.nonzero(a > 0)[0]
    rank = np.full(len(model.ids), -1, dtype=np.intp)
    rank[paid] = np.arange(len(paid))
    cols = np.nonzero(rank[model.col_prog] >= 0)[0]
    holds = sp.csr_matrix((np.ones(len(cols)), (rank[model.col_prog[cols]], cols)),
                          shape=(len(paid), model.n_cols))
    block = (holds, a[paid] * (1 - hold), a[paid] * (1 + hold))
    extra: list[tuple[np.ndarray, float]] = []
    burden = np.zeros(model.n_cols)
    if lp.policy.loans.penalty > 0:
        per_triple = loan_cost(lp.data, lp.policy, lp.var_source, lp.var_gap)
        burden[: model.n_xp] = model.counted.T @ per_triple
        least = _solve(model, -burden, [], lo, hi, False, solver, block=block)
        if least.optimal and np.any(burden):
            extra.append((-burden, least.objective - hold * max(1.0, abs(least.objective))))
            # A column its optimal duals price as costlier is 0 in every allocation of
            # least burden (complementary slackness, as split.py): held at 0, the split
            # cannot spend the window on it.
            rows = sp.vstack([model.matrix, holds], format="csr")
            reduced = -burden - rows.T @ least.row_dual
            costlier = reduced[: model.n_xp] < -BURDEN_PRICE_TOLERANCE * float(
                np.abs(burden).max())
            hi = hi.copy()
            hi[: model.n_xp][costlier] = 0.0
    ids = lp.data.source_table["source_id"]
    d = split_cost(ids[model.col_source], np.array(model.ids, dtype=object)[model.col_prog])
    cost = np.zeros(model.n_cols)
    cost[: model.n_xp] = 2.0 - d  # as split.py: each dollar placed fills the hold's room
    solved = _solve(model, cost, extra, lo, hi, False, solver, block=block)
    if not solved.optimal:  # a bug, not the policy: the held amounts are feasible
        raise RuntimeError("the split stage found no allocation with the amounts held")
    return np.clip(solved.values[: model.n_xp], 0.0, None)


def _base_duals(model: ProgrammeModel, row_dual: np.ndarray) -> np.ndarray:
    """Duals by LP row (0 on the implied rows the model leaves out)."""
    duals = np.zeros(model.lp.n_rows)
    duals[model.base_rows] = row_dual[: len(model.base_rows)]
    return duals


def written_programme_amounts(model: ProgrammeModel, x_prog: np.ndarray) -> np.ndarray:
    """x[f,p] as written (USD millions of whole cents): no source's total above its
    pledge, no programme's above its budget (`cents.round_to_cents`)."""
    from gcm_fund.model.cents import round_to_cents, written_cents

    pledges = model.lp.data.source_table["pledge_usd"]
    cents = round_to_cents(x_prog * SCALE_USD, model.col_source, model.col_prog,
                           written_cents(pledges), written_cents(model.budget * SCALE_USD))
    return cents / 100.0 / SCALE_USD


def _reasons(selection: Selection, solver: str) -> None:
    """The fall in V and the programmes displaced when each of the unfunded eligible
    programmes of highest v_p is funded at least at its minimum (one MIP each)."""
    model = selection.model
    left_out = [int(p) for p in model.y_prog if not selection.funded[p]]
    left_out.sort(key=lambda p: (-model.value[p], model.ids[p]))
    # On HiGHS each check starts from the last one's basis (`HeldLP`).
    held_lp = (HeldLP(model.matrix, model.amount_row(model.value), model.row_lo,
                      model.row_hi) if solver == "highs" and left_out else None)
    for p in left_out[:MAX_REASONS]:
        forced = _best(model, selection.relaxed, model.value, [], solver, forced=p,
                       held_lp=held_lp)
        if forced is None:
            selection.value_loss[p] = float("inf")
            continue
        selection.value_loss[p] = max(0.0, selection.value - forced.star)
        now = set(model.y_prog[forced.y > 0.5].tolist())
        selection.displaced[p] = [model.ids[q] for q in np.nonzero(selection.funded)[0]
                                  if q not in now]


# ---------------------------------------------------------------------------------------
# The method


def solution_of(selection: Selection, info: SolverInfo) -> Solution:
    """The run's `Solution`: the counted amounts x[f,s,t] = T x[f,p] in USD."""
    model = selection.model
    lp = model.lp
    x_triple = model.counted @ selection.x_prog
    duals = (selection.final_duals if len(selection.final_duals) == lp.n_rows
             else np.full(lp.n_rows, np.nan))
    stage = StageSolution(OPTIMAL, objective=selection.value, col_value=x_triple,
                          row_dual=duals)
    return Solution(status=OPTIMAL, floor=None, weighted_usd=float(lp.weight @ x_triple)
                    * SCALE_USD, x_usd=np.clip(x_triple, 0.0, None) * SCALE_USD, stage1=None,
                    stage2=stage, solver=info, rhs=lp.rhs.copy(), z_col=None,
                    programmes=selection)


def solver_info(solver: str) -> SolverInfo:
    """Which solver selected, for the manifest."""
    if solver == "highs":
        from gcm_fund.solvers.highs_calls import new_highs

        return SolverInfo("highs", new_highs().version(), {
            "mip_rel_gap": 0.0, "mip_abs_gap": 0.0,
            **{heuristic: False for heuristic in SUB_MIP_HEURISTICS}})
    from gcm_fund.solvers.pulp import _pulp_solver, _pulp_solver_version

    return SolverInfo("cbc" if solver == "cbc" else f"pulp:{solver}",
                      _pulp_solver_version(_pulp_solver(solver)),
                      {"gapRel": 0.0, "gapAbs": 0.0}, value_precision=1e-8)


class ProgrammesMethod:
    """docs/programmes.md: whole programmes by a lexicographic MIP, then loans and the split."""

    name = "programmes"
    has_levels = False
    selects_programmes = True
    has_marginal_value = False
    budget_dual_per_usd = 1.0

    def solve(self, lp: LinearProgram, solver: Any = "highs") -> Solution:
        """Select the programmes and return the counted allocation."""
        name = solver if isinstance(solver, str) else solver.info.name
        return solution_of(select(lp, name), solver_info(name))

    def warm(self, lp: LinearProgram, pool_options: Any = None) -> Any:
        """The selection at many pledges: a MIP keeps no basis worth keeping, so each
        pledge is selected afresh on HiGHS (without the reasons)."""
        return _ProgrammeSweep(lp)


class _ProgrammeSweep:
    def __init__(self, lp: LinearProgram):
        from gcm_fund.solvers.pipeline import Pipeline

        self.lp = lp
        self.pipeline = Pipeline(lp, "highs")  # what the sweep reads: solver, pool figures

    def solve(self, pledges_usd: np.ndarray) -> Solution:
        pledges = np.asarray(pledges_usd, dtype=float)
        lp = replace(self.lp, rhs=self.lp.rhs_for_pledges(pledges),
                     pledge=pledges / SCALE_USD)
        return solution_of(select(lp, "highs", reasons=False), solver_info("highs"))
