"""The linear program of docs/model.md, built once as sparse matrices with named rows.

`build` reads like the table of rules: one `add_<rule>` per family, each selecting its rows
with masks over the tables and returning early when there are none. Amounts are scaled to
USD millions here, so that the solver sees numbers near 1 whatever the currency scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from gcm_fund.errors import Diagnosis, InfeasibleError, Shortfall
from gcm_fund.inputs.load import ProblemData
from gcm_fund.inputs.policy import Policy
from gcm_fund.model.cycles import add_pace_down, add_pace_up, pace_down_rhs, paced_states
from gcm_fund.model.eligibility import (
    eligible_triples,
    fundable_usd,
    in_equity_group,
    source_shares,
    state_loan_cap,
    triple_weights,
)

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp


def _sparse() -> ModuleType:
    """scipy.sparse, imported when a matrix is first built: `validate` counts eligible
    triples with numpy alone and never pays for it."""
    import scipy.sparse

    return scipy.sparse

SCALE_USD = 1e6  # the solver works in USD millions
LE, GE = 1, -1  # row senses: lhs <= rhs, lhs >= rhs


KEY_COLUMNS = ("source_id", "iso3", "target")  # the keys a row of the registry may carry


@dataclass
class RowBlock:
    """A run of rows of one family; `keys` holds one string array per key position, and
    `key_columns` says which key each position is (`source_id`, `iso3` or `target`)."""

    family: str
    start: int
    stop: int
    keys: tuple[np.ndarray, ...]
    key_columns: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """`family[key,key]` for every row of the block."""
        # One string per row, built in one step (large inputs have hundreds of thousands).
        prefix = f"{self.family}["
        if len(self.keys) == 1:
            return [f"{prefix}{k}]" for k in self.keys[0]]
        if len(self.keys) == 2:
            return [f"{prefix}{a},{b}]" for a, b in zip(*self.keys, strict=True)]
        joined = [",".join(parts) for parts in zip(*self.keys, strict=True)]
        return [f"{prefix}{k}]" for k in joined]

    def key(self, column: str) -> np.ndarray | None:
        """The block's keys of one key column, or None when its rows do not carry it."""
        if column not in self.key_columns:
            return None
        return self.keys[self.key_columns.index(column)]


@dataclass
class LinearProgram:
    """The LP in scaled units: max obj.x subject to row bounds, with a row registry.

    Columns 0..n_x-1 are the eligible triples x[f,s,t] (USD millions); the columns after
    them are named in `aux_columns`: the floor level `z` when the floor set G is not
    empty, and whatever a stage adds (`with_columns`). Find a column by its name
    (`column("z")`, `z_col`), never by its position.
    """

    data: ProblemData
    policy: Policy
    var_source: np.ndarray  # index into data.sources
    var_gap: np.ndarray  # index into data.gaps
    var_state: np.ndarray  # index into data.states
    weight: np.ndarray  # w[f,s,t], objective of stage 2
    fundable: np.ndarray  # U[s,t] in USD millions, by gap
    gap_state: np.ndarray  # index into data.states, by gap
    gap_eligible: np.ndarray  # the gap has at least one eligible triple
    floor_gaps: np.ndarray  # indices of the gaps in G
    pledge: np.ndarray  # B_f in USD millions, by source
    source_share: np.ndarray  # rho_f, by source
    matrix: sp.csc_matrix = field(default_factory=lambda: _sparse().csc_matrix((0, 0)))
    sense: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    rhs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    blocks: list[RowBlock] = field(default_factory=list)
    unmet_thematic: list[str] = field(default_factory=list)
    unmet_regional: list[str] = field(default_factory=list)
    # Names of the columns after the allocations, which a solver always holds: `z`, the
    # elastic diagnosis's `shortfall` slacks, a later stage's own columns.
    aux_columns: list[str] = field(default_factory=list)
    # `rows()`'s copy of the matrix by rows, with the matrix it was made from.
    _by_rows: tuple[object, sp.csr_matrix] | None = field(default=None, init=False,
                                                           repr=False, compare=False)

    def rows(self) -> sp.csr_matrix:
        """The matrix by rows, made once per matrix: the level steps read it at every
        solve, and an LP's matrix is replaced (`with_rows`), never changed in place. Shared
        by every caller: read it, never change it."""
        if self._by_rows is None or self._by_rows[0] is not self.matrix:
            self._by_rows = (self.matrix, self.matrix.tocsr())
        return self._by_rows[1]

    @property
    def n_x(self) -> int:
        """Number of allocation variables."""
        return len(self.var_source)

    @property
    def has_floor(self) -> bool:
        """Whether the floor set G is not empty, so that z exists."""
        return len(self.floor_gaps) > 0

    @property
    def n_cols(self) -> int:
        """Columns: the allocations and the named columns after them."""
        return self.n_x + len(self.aux_columns)

    def column(self, name: str) -> int | None:
        """The LP column of a named column after the allocations (first of that name), or
        None when the LP has none."""
        if name not in self.aux_columns:
            return None
        return self.n_x + self.aux_columns.index(name)

    @property
    def z_col(self) -> int | None:
        """The column of the floor level z, None when G is empty."""
        return self.column("z")

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.rhs)

    def block(self, family: str) -> RowBlock | None:
        """The rows of one family, or None when it has none."""
        return next((b for b in self.blocks if b.family == family), None)

    def row_names(self) -> list[str]:
        """`family[keys]` of every row, in row order."""
        return [name for b in self.blocks for name in b.names()]

    def implied_rows(self) -> np.ndarray:
        """Rows that other rows imply for every allocation x >= 0, whatever the pledges.

        `source_state[f,s]` with rho_f = 1 is `budget[f]` restricted to one State, and
        `state_share[s]` with kappa = 1 is the sum of all budgets restricted to one State.
        On large inputs these are most of the rows. They stay in
        the LP and in `constraints.csv`; a solver may leave them out, and a dual of 0 on
        them is then valid (they never bind alone).
        """
        implied = np.zeros(self.n_rows, dtype=bool)
        pairs = self.block("source_state")
        if pairs is not None:
            implied[pairs.start:pairs.stop] = self.source_share[self._pair_sources] >= 1.0
        share = self.block("state_share")
        if share is not None and self.policy.limits.max_state_share >= 1.0:
            implied[share.start:share.stop] = True
        return implied

    def row_keys(self) -> dict[str, np.ndarray]:
        """The keys of every row, in row order: one array per key column (`source_id`,
        `iso3`, `target`), "" where the row's family has no such key."""
        keys = {column: np.full(self.n_rows, "", dtype=object) for column in KEY_COLUMNS}
        for b in self.blocks:
            for column, values in zip(b.key_columns, b.keys, strict=True):
                if column in keys:  # a region (`regional[r]`) is in the name only
                    keys[column][b.start:b.stop] = values
        return keys

    def registry(self) -> pd.DataFrame:
        """The row registry as a table, one line per LP row in row order: `name`
        (`family[key,key]`), `family`, `sense` (LE or GE), `rhs` (scaled) and the keys
        `source_id`, `iso3`, `target` ("" where the family has none). Look rows up by
        family and keys here, never by parsing a name."""
        import pandas as pd

        return pd.DataFrame({"name": self.row_names(), "family": self.row_families(),
                             "sense": self.sense, "rhs": self.rhs, **self.row_keys()})

    def row_families(self) -> np.ndarray:
        """The family of every row, in row order."""
        out = np.empty(self.n_rows, dtype=object)
        for b in self.blocks:
            out[b.start:b.stop] = b.family
        return out

    def stage2_objective(self) -> np.ndarray:
        """The weighted objective over all columns (z weighs nothing)."""
        return np.concatenate([self.weight, np.zeros(self.n_cols - self.n_x)])

    def elastic(self) -> LinearProgram:
        """This LP with a slack column after z for every `>=` row (floor, thematic).

        Each slack lets its row fall short; the diagnosis prices them at one per USD
        million. Allocating nothing, with each slack covering its row, is always feasible.
        """
        ge_rows = np.nonzero(self.sense == GE)[0]
        slack = _sparse().csc_matrix((np.ones(len(ge_rows)), (ge_rows, np.arange(len(ge_rows)))),
                                     shape=(self.n_rows, len(ge_rows)))
        return self.with_columns(["shortfall"] * len(ge_rows), slack)

    def with_columns(self, names: list[str], block: sp.spmatrix) -> LinearProgram:
        """This LP with named columns added after the last one (`block`: their entries,
        n_rows x len(names)). A solver holds them always, from 0 to no upper bound unless
        a stage bounds them."""
        sparse = _sparse()
        matrix = sparse.hstack([self.matrix, sparse.csc_matrix(block)], format="csc")
        return replace(self, matrix=matrix, aux_columns=[*self.aux_columns, *names])

    def with_rows(self, family: str, keys: dict[str, np.ndarray], block: sp.spmatrix,
                  sense: int, rhs: np.ndarray) -> LinearProgram:
        """This LP with a family of rows added after the last one: `keys` maps key columns
        (`source_id`, `iso3`, `target`) to one string per row, `block` holds their
        entries (len(rhs) x n_cols). A right-hand side of -inf (`>=`) or +inf (`<=`)
        leaves a row free until a stage sets it (`Pipeline.solve_stage(rhs=...)`)."""
        rhs = np.asarray(rhs, dtype=float)
        new = RowBlock(family, self.n_rows, self.n_rows + len(rhs),
                       tuple(np.asarray(v) for v in keys.values()), tuple(keys))
        sparse = _sparse()
        return replace(self, matrix=sparse.vstack([self.matrix, sparse.csr_matrix(block)],
                                                  format="csc"),
                       sense=np.concatenate([self.sense, np.full(len(rhs), sense, np.int8)]),
                       rhs=np.concatenate([self.rhs, rhs]), blocks=[*self.blocks, new])

    def stage1_objective(self) -> np.ndarray:
        """The floor level z alone."""
        cost = np.zeros(self.n_cols)
        if self.z_col is not None:
            cost[self.z_col] = 1.0
        return cost

    def live_columns(self, pledge_usd: np.ndarray) -> np.ndarray:
        """Which allocation columns are eligible triples at these pledges (docs/inputs.md): the
        source pledges something, and a loan to a State whose loans are capped below 1
        (docs/terms.md) needs a grant of positive pledge that may reach the State."""
        live = (np.asarray(pledge_usd, dtype=float) > 0)[self.var_source]
        is_loan = np.asarray(self.data.source_table["instrument"] == "loan")[self.var_source]
        cap = state_loan_cap(self.data, self.policy)[self.var_state]
        granted = np.bincount(self.var_state[live & ~is_loan],
                              minlength=len(self.data.states)) > 0
        return live & ~(is_loan & (cap > 0) & (cap < 1) & ~granted[self.var_state])

    def rhs_for_pledges(self, pledge_usd: np.ndarray) -> np.ndarray:
        """The right-hand sides with other pledges: every rule involving B_f moves."""
        pledge = np.asarray(pledge_usd, dtype=float) / SCALE_USD
        rhs = self.rhs.copy()
        budget = self.block("budget")
        if budget is not None:
            rhs[budget.start:budget.stop] = pledge[self._budget_sources]
        share = self.block("state_share")
        if share is not None:
            rhs[share.start:share.stop] = self.policy.limits.max_state_share * pledge.sum()
        pairs = self.block("source_state")
        if pairs is not None:
            f = self._pair_sources
            rhs[pairs.start:pairs.stop] = self.source_share[f] * pledge[f]
        pace = self.block("pace_down")  # lowered to kappa * sum of B_f (docs/cycles.md)
        if pace is not None:
            rhs[pace.start:pace.stop] = pace_down_rhs(self, paced_states(self), pledge)
        return rhs

    # filled by build: the source index behind each budget and source_state row
    _budget_sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _pair_sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class _Rows:
    """Collects COO triplets and row blocks while the rules are added."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.sense: list[np.ndarray] = []
        self.rhs: list[np.ndarray] = []
        self.blocks: list[RowBlock] = []
        self.count = 0

    def add(self, family: str, keys: dict[str, np.ndarray], row_of_entry: np.ndarray,
            cols: np.ndarray, vals: np.ndarray, sense: int, rhs: np.ndarray) -> None:
        n = len(rhs)
        # 32-bit indices: half the memory of numpy's default on millions of entries.
        self.rows.append((row_of_entry + self.count).astype(np.int32))
        self.cols.append(np.asarray(cols, dtype=np.int32))
        self.vals.append(vals)
        self.sense.append(np.full(n, sense, dtype=np.int8))
        self.rhs.append(np.asarray(rhs, dtype=float))
        self.blocks.append(RowBlock(family, self.count, self.count + n,
                                    tuple(keys.values()), tuple(keys)))
        self.count += n


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts end to end; the list is emptied, so that parts and whole never coexist
    longer than needed (tens of millions of entries on large inputs)."""
    whole = np.concatenate(parts)
    parts.clear()
    return whole


def build(data: ProblemData, policy: Policy) -> LinearProgram:
    """The LP of docs/model.md for these inputs and this policy."""
    sources = data.sources
    gap_state = data.gap_state
    fundable = fundable_usd(data, policy) / SCALE_USD

    var_source, var_gap = eligible_triples(data, policy)
    var_state = gap_state[var_gap]
    gap_eligible = np.zeros(len(data.gaps), dtype=bool)
    gap_eligible[var_gap] = True

    lp = LinearProgram(
        data=data,
        policy=policy,
        var_source=var_source,
        var_gap=var_gap,
        var_state=var_state,
        weight=triple_weights(data, policy, var_source, var_gap),
        fundable=fundable,
        gap_state=gap_state,
        gap_eligible=gap_eligible,
        floor_gaps=np.nonzero(gap_eligible & in_equity_group(data, policy, gap_state))[0],
        pledge=sources["pledge_usd"].to_numpy(dtype=float) / SCALE_USD,
        source_share=source_shares(data, policy),
    )
    if lp.has_floor:
        lp.aux_columns = ["z"]
    rows = _Rows()
    add_budget(lp, rows)
    add_gap(lp, rows)
    add_absorb(lp, rows)
    add_state_share(lp, rows)
    add_source_state(lp, rows)
    add_thematic(lp, rows)
    add_regional(lp, rows)
    add_floor(lp, rows)
    add_loan_share(lp, rows)
    add_pace_down(lp, rows)  # docs/cycles.md, in model/cycles.py
    add_pace_up(lp, rows)

    if rows.count:
        # Column-wise, as HiGHS takes it: no conversion before each solve.
        lp.matrix = _sparse().csc_matrix(
            (_joined(rows.vals), (_joined(rows.rows), _joined(rows.cols))),
            shape=(rows.count, lp.n_cols),
        )
        lp.sense = np.concatenate(rows.sense)
        lp.rhs = np.concatenate(rows.rhs)
    else:
        lp.matrix = _sparse().csc_matrix((0, lp.n_cols))
    lp.blocks = rows.blocks
    return lp


def _group_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct labels that occur (sorted) and each entry's row among them.

    Labels are small non-negative integers, so counting is linear where np.unique sorts.
    """
    occurs = np.bincount(labels) > 0
    present = np.nonzero(occurs)[0]
    rank = np.cumsum(occurs) - 1
    return present, rank[labels]


def add_budget(lp: LinearProgram, rows: _Rows) -> None:
    """budget[f]: sum over s,t of x[f,s,t] <= B_f."""
    if lp.n_x == 0:
        return
    present, row_of = _group_rows(lp.var_source)
    ids = lp.data.sources["source_id"].to_numpy()
    lp._budget_sources = present
    rows.add("budget", {"source_id": ids[present]}, row_of, np.arange(lp.n_x),
             np.ones(lp.n_x), LE, lp.pledge[present])


def add_gap(lp: LinearProgram, rows: _Rows) -> None:
    """gap[s,t]: sum over f of x[f,s,t] <= U[s,t]."""
    if lp.n_x == 0:
        return
    present, row_of = _group_rows(lp.var_gap)
    gaps = lp.data.gaps
    keys = {"iso3": gaps["iso3"].to_numpy()[present],
            "target": gaps["target"].to_numpy()[present]}
    rows.add("gap", keys, row_of, np.arange(lp.n_x), np.ones(lp.n_x), LE, lp.fundable[present])


def add_absorb(lp: LinearProgram, rows: _Rows) -> None:
    """absorb[s]: sum over f,t of x[f,s,t] <= absorption_usd(s), where given."""
    absorption = lp.data.states["absorption_usd"].to_numpy(dtype=float)
    limited = ~np.isnan(absorption[lp.var_state])
    if not limited.any():
        return
    cols = np.nonzero(limited)[0]
    present, row_of = _group_rows(lp.var_state[cols])
    iso3 = lp.data.states["iso3"].to_numpy()
    rows.add("absorb", {"iso3": iso3[present]}, row_of, cols, np.ones(len(cols)), LE,
             absorption[present] / SCALE_USD)


def add_state_share(lp: LinearProgram, rows: _Rows) -> None:
    """state_share[s]: sum over f,t of x[f,s,t] <= kappa * sum over f of B_f."""
    if lp.n_x == 0:
        return
    present, row_of = _group_rows(lp.var_state)
    iso3 = lp.data.states["iso3"].to_numpy()
    cap = lp.policy.limits.max_state_share * lp.pledge.sum()
    rows.add("state_share", {"iso3": iso3[present]}, row_of, np.arange(lp.n_x),
             np.ones(lp.n_x), LE, np.full(len(present), cap))


def _source_state_pairs(lp: LinearProgram) -> tuple[np.ndarray, np.ndarray]:
    """The (source, State) pairs that have a `source_state` row, as `source * n_states +
    State` in row order, and each allocation column's row among them."""
    return _group_rows(lp.var_source * len(lp.data.states) + lp.var_state)


def source_state_row_of(lp: LinearProgram) -> np.ndarray:
    """Each allocation column's `source_state` row, counted from the family's first."""
    return _source_state_pairs(lp)[1] if lp.n_x else np.zeros(0, dtype=np.int64)


def add_source_state(lp: LinearProgram, rows: _Rows) -> None:
    """source_state[f,s]: sum over t of x[f,s,t] <= rho_f * B_f."""
    if lp.n_x == 0:
        return
    n_states = len(lp.data.states)
    present, row_of = _source_state_pairs(lp)
    f, s = present // n_states, present % n_states
    lp._pair_sources = f
    ids = lp.data.sources["source_id"].to_numpy()
    iso3 = lp.data.states["iso3"].to_numpy()
    rows.add("source_state", {"source_id": ids[f], "iso3": iso3[s]}, row_of,
             np.arange(lp.n_x), np.ones(lp.n_x), LE, lp.source_share[f] * lp.pledge[f])


def add_thematic(lp: LinearProgram, rows: _Rows) -> None:
    """thematic[t]: sum over f,s of x[f,s,t] - theta[t] * sum of all x >= 0."""
    shares = {t: s for t, s in sorted(lp.policy.thematic.min_share.items()) if s > 0}
    if not shares:
        return
    var_target = lp.data.gaps["target"].to_numpy()[lp.var_gap]
    lp.unmet_thematic = [t for t in shares if not (var_target == t).any()]
    if lp.n_x == 0:
        return
    targets = np.array(list(shares), dtype=object)
    theta = np.array(list(shares.values()), dtype=float)
    dense = (var_target[None, :] == targets[:, None]).astype(float) - theta[:, None]
    row_of, cols = np.nonzero(dense)
    rows.add("thematic", {"target": targets}, row_of, cols, dense[row_of, cols], GE,
             np.zeros(len(targets)))


def regional_shares(policy: Policy) -> dict[str, float]:
    """theta_r of every region with a share > 0, in name order (docs/programmes.md)."""
    return {r: s for r, s in sorted(policy.regional.min_share.items()) if s > 0}


def add_regional(lp: LinearProgram, rows: _Rows) -> None:
    """regional[r]: sum over f, s in region r, t of x[f,s,t] - theta_r * sum of all x >= 0."""
    shares = regional_shares(lp.policy)
    if not shares:
        return
    var_region = lp.data.states["region"].to_numpy()[lp.var_state]
    lp.unmet_regional = [r for r in shares if not (var_region == r).any()]
    if lp.n_x == 0:
        return
    regions = np.array(list(shares), dtype=object)
    theta = np.array(list(shares.values()), dtype=float)
    dense = (var_region[None, :] == regions[:, None]).astype(float) - theta[:, None]
    row_of, cols = np.nonzero(dense)
    rows.add("regional", {"region": regions}, row_of, cols, dense[row_of, cols], GE,
             np.zeros(len(regions)))


def unmet_regional_diagnosis(regions: list[str]) -> Diagnosis:
    """Why a policy whose regional shares name regions no source may fund is infeasible."""
    joined = ", ".join(regions)
    return Diagnosis(
        reason=(f"regional[{joined}]: the policy asks a share > 0 for region {joined}, "
                "but no source may fund any of its gaps"),
        shortfalls=[Shortfall(f"regional[{r}]", "regional", 0.0) for r in regions],
    )


def add_floor(lp: LinearProgram, rows: _Rows) -> None:
    """floor[s,t], (s,t) in G: sum over f of x[f,s,t] - z * U[s,t] >= 0."""
    if not lp.has_floor:
        return
    position = np.full(len(lp.data.gaps), -1)
    position[lp.floor_gaps] = np.arange(len(lp.floor_gaps))
    in_floor = position[lp.var_gap] >= 0
    x_cols = np.nonzero(in_floor)[0]
    n = len(lp.floor_gaps)
    row_of = np.concatenate([position[lp.var_gap[x_cols]], np.arange(n)])
    cols = np.concatenate([x_cols, np.full(n, lp.z_col)])
    vals = np.concatenate([np.ones(len(x_cols)), -lp.fundable[lp.floor_gaps]])
    gaps = lp.data.gaps
    keys = {"iso3": gaps["iso3"].to_numpy()[lp.floor_gaps],
            "target": gaps["target"].to_numpy()[lp.floor_gaps]}
    rows.add("floor", keys, row_of, cols, vals, GE, np.zeros(n))


def add_loan_share(lp: LinearProgram, rows: _Rows) -> None:
    """loan_share[s], 0 < m(s) < 1 and s has a loan triple (docs/terms.md):
    sum over loan f, t of x[f,s,t] - m(s) * sum over f, t of x[f,s,t] <= 0."""
    if lp.n_x == 0:
        return
    cap = state_loan_cap(lp.data, lp.policy)[lp.var_state]
    is_loan = (lp.data.source_table["instrument"] == "loan")[lp.var_source]
    capped = (cap > 0) & (cap < 1)
    lending = np.zeros(len(lp.data.states), dtype=bool)
    lending[lp.var_state[capped & is_loan]] = True
    cols = np.nonzero(lending[lp.var_state])[0]
    if not len(cols):
        return
    present, row_of = _group_rows(lp.var_state[cols])
    vals = np.where(is_loan[cols], 1.0, 0.0) - cap[cols]
    iso3 = lp.data.states["iso3"].to_numpy()
    rows.add("loan_share", {"iso3": iso3[present]}, row_of, cols, vals, LE,
             np.zeros(len(present)))


def unmet_thematic_diagnosis(targets: list[str]) -> Diagnosis:
    """Why a policy whose thematic shares name targets no source may fund is infeasible."""
    joined = ", ".join(targets)
    return Diagnosis(
        reason=(
            f"thematic[{joined}]: the policy asks a share > 0 for target {joined}, "
            "but no source may fund it (no eligible source, State and gap)"
        ),
        shortfalls=[Shortfall(f"thematic[{t}]", "thematic", 0.0) for t in targets],
    )


def check_structurally_feasible(lp: LinearProgram) -> None:
    """Raise `InfeasibleError` for a thematic share on a target no source may fund."""
    if lp.unmet_thematic:
        raise InfeasibleError(unmet_thematic_diagnosis(lp.unmet_thematic))
    if lp.unmet_regional:
        raise InfeasibleError(unmet_regional_diagnosis(lp.unmet_regional))
