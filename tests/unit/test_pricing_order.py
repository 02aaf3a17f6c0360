"""The packed sort of `pricing` gives exactly lexsort's order."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gcm_fund.solvers.pricing import _group_score_tie_order, _hash_order


@st.composite
def columns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 200))
    group = draw(hnp.arrays(np.int64, n, elements=st.integers(0, draw(st.sampled_from(
        [3, 1000, 2**40])))))
    score = draw(hnp.arrays(np.float64, n, elements=st.sampled_from(
        [-1.5, 0.0, 1e-9, 0.25, 1.0, 1.1]) | st.floats(-10, 10)))
    return group, score, _hash_order(n)


@given(columns())
def test_packed_order_is_lexsorts(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    group, score, tie = data
    expected = np.lexsort((tie, -score, group))
    assert np.array_equal(_group_score_tie_order(group, score, tie), expected)
