"""A smaller relaxation of the programme MIP: sources that fund the same programmes alike
merged into one column per programme (docs/programmes.md, "Solving it fast").

Two sources are alike when they may fund the same programmes and their columns x[f,p]
have the same coefficients in every row that is not a source's own (the gaps, the
balance, the sizes). The merged column x[C,p] stands for `sum over f in C of x[f,p]`;
each row a source owns alone (`budget[f]`, `source_state[f,s]`) is summed over the class
where every member has it with the same coefficients, and dropped otherwise. Every row of
the merged model is a sum of rows of the model (or absent), so any selection and amounts
the model allows, the merged one allows too: its optimum bounds the model's. A selection
the merged MIP finds optimal is therefore optimal for the model as soon as the model's LP
with that selection held reaches the same objective (`programmes._best`); otherwise the
model's own MIP decides.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from gcm_fund.methods.programmes import ProgrammeModel


def _column_signatures(block: sp.csc_matrix) -> list[bytes]:
    """Each column's row indices and coefficients, as bytes."""
    ptr, rows, vals = block.indptr, block.indices, block.data
    return [rows[ptr[j]:ptr[j + 1]].tobytes() + b"|" + vals[ptr[j]:ptr[j + 1]].tobytes()
            for j in range(block.shape[1])]


def source_rows(model: ProgrammeModel) -> np.ndarray:
    """The source a model row belongs to alone (a row of a family keyed by source whose
    x columns are all that source's), -1 for every other row."""
    lp = model.lp
    owner = np.full(model.matrix.shape[0], -1, dtype=np.intp)
    keyed = lp.row_keys()["source_id"][model.base_rows] != ""  # the LP's rows come first
    x_part = model.matrix[:, : model.n_xp].tocsr()
    for i in np.nonzero(keyed)[0]:
        sources = np.unique(model.col_source[x_part.indices[x_part.indptr[i]:
                                                            x_part.indptr[i + 1]]])
        if len(sources) == 1:
            owner[i] = sources[0]
    return owner


def merge_alike_sources(model: ProgrammeModel) -> ProgrammeModel | None:
    """The merged relaxation of `model` (its x columns then x[C,p] by class C, the same
    y columns and weights), or None when no two sources are alike."""
    n_xp = model.n_xp
    owner = source_rows(model)
    shared = np.nonzero(owner < 0)[0]
    csc = model.matrix[:, :n_xp].tocsc()
    column_sig = _column_signatures(csc[shared].tocsc())
    by_source: dict[int, list[tuple[int, bytes]]] = {}
    for j in np.lexsort((model.col_prog, model.col_source)):
        by_source.setdefault(int(model.col_source[j]), []).append(
            (int(model.col_prog[j]), column_sig[j]))
    classes: dict[tuple[tuple[int, bytes], ...], int] = {}
    class_of = {f: classes.setdefault(tuple(cols), len(classes))
                for f, cols in sorted(by_source.items())}
    if len(classes) == len(class_of):
        return None
    members = np.bincount(list(class_of.values()), minlength=len(classes))

    # x[f,p] -> x[C,p]: one merged column per class and programme, in (class, p) order.
    col_class = np.array([class_of[int(f)] for f in model.col_source], dtype=np.intp)
    pairs, merged_of = np.unique(np.stack([col_class, model.col_prog]), axis=1,
                                 return_inverse=True)
    merged_of = merged_of.ravel()
    n_merged = pairs.shape[1]
    first = np.full(n_merged, -1, dtype=np.intp)
    first[merged_of[::-1]] = np.arange(n_xp)[::-1]
    gather = sp.csr_matrix((np.ones(n_xp), (np.arange(n_xp), merged_of)),
                           shape=(n_xp, n_merged))

    # Shared rows keep the coefficients every member has; a source's own rows are summed
    # over the class where all members have them alike.
    shared_x = model.matrix[shared][:, :n_xp].tocsc()[:, first]
    keyed: dict[tuple[int, str, str, str], list[tuple[int, bytes, int]]] = {}
    lp = model.lp
    keys = lp.row_keys()
    families = lp.row_families()[model.base_rows]
    own = np.nonzero(owner >= 0)[0]
    own_rows = (model.matrix[own][:, :n_xp] @ gather).tocsr()
    own_rows.sort_indices()  # alike rows compare equal byte for byte
    for k, i in enumerate(own):
        base = model.base_rows[i]
        key = (class_of[int(owner[i])], families[i], keys["iso3"][base], keys["target"][base])
        row = own_rows.getrow(k)
        keyed.setdefault(key, []).append((int(i), row.indices.tobytes() + row.data.tobytes(), k))
    summed: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    for key, rows in keyed.items():
        # One row of each member, all alike: a key the row's name holds beyond these
        # (a region) may give a member several, and then the rows are dropped.
        if (len(rows) != members[key[0]] or len({owner[i] for i, _, _ in rows}) != len(rows)
                or len({sig for _, sig, _ in rows}) != 1):
            continue
        summed.append(rows[0][2])
        lo.append(float(sum(model.row_lo[i] for i, _, _ in rows)))
        hi.append(float(sum(model.row_hi[i] for i, _, _ in rows)))
    y_part = model.matrix[:, n_xp:].tocsr()
    matrix = sp.vstack([
        sp.hstack([shared_x, y_part[shared]]),
        sp.hstack([own_rows[summed], sp.csr_matrix((len(summed), y_part.shape[1]))]),
    ], format="csr")
    names = [model.row_names[i] for i in shared] + [
        f"merged:{model.row_names[own[k]]}" for k in summed]
    return replace(model, col_source=pairs[0].astype(np.intp), col_prog=pairs[1].astype(np.intp),
                   matrix=matrix, row_lo=np.concatenate([model.row_lo[shared], lo]),
                   row_hi=np.concatenate([model.row_hi[shared], hi]), row_names=names,
                   base_rows=np.zeros(0, dtype=np.intp))
