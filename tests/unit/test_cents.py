"""Written amounts add up: source and gap totals never exceed their caps, to the cent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcm_fund.model.cents import cents_by_group, round_to_cents, usd_of_cents, written_cents


def rounded(x_usd, sources, gaps, source_cap_usd, gap_cap_usd):
    return round_to_cents(np.array(x_usd, dtype=float), np.array(sources), np.array(gaps),
                          written_cents(source_cap_usd), written_cents(gap_cap_usd))


def test_thirds_of_a_dollar_add_up_to_the_dollar():
    # Each third rounds to 0.33 on its own (0.99 in all); the largest remainder takes the cent.
    cents = rounded([1 / 3, 1 / 3, 1 / 3], [0, 0, 0], [0, 1, 2], [1.0], [1.0, 1.0, 1.0])
    assert cents.tolist() == [34, 33, 33]


def test_a_pledge_is_not_exceeded_by_a_cent():
    # The issue's case: two halves of 0.005 over a pledge of 5,000,000.00 rounded up each.
    cents = rounded([2500000.005, 2500000.005], [0, 0], [0, 1], [5000000.0],
                    [3e6, 3e6])
    assert cents.sum() == 500000000
    assert sorted(cents.tolist()) == [250000000, 250000000]


def test_a_solver_overshoot_is_trimmed_in_proportion():
    # A CBC-like 1.12 USD beyond a 350 million pledge, split 3:1 between two gaps.
    x = [262500000.84, 87500000.28]
    cents = rounded(x, [0, 0], [0, 1], [350e6], [400e6, 400e6])
    assert cents.sum() == 35000000000
    assert cents.tolist() == [26250000000, 8750000000]


def test_a_gap_is_not_filled_beyond_its_fundable_need():
    # Two sources each give 0.505 to a gap whose fundable need is 1.01: 0.51 + 0.51 > 1.01.
    cents = rounded([0.505, 0.505], [0, 1], [0, 0], [1.0, 1.0], [1.01])
    assert cents.sum() == 101
    assert cents.tolist() == [51, 50]  # a tie goes to the lower column


def test_solver_noise_does_not_become_a_cent():
    cents = rounded([1e-9, 0.999999999, -1e-9], [0, 0, 0], [0, 1, 2], [5.0], [5.0] * 3)
    assert cents.tolist() == [0, 100, 0]


def test_written_cents_follows_the_written_text():
    assert written_cents([5e6, 1 / 3, 0.125, 2.675]).tolist() == [
        500000000, 33, int(f"{0.125:.2f}".replace(".", "")), int(f"{2.675:.2f}".replace(".", ""))]


@st.composite
def instances(draw):
    n_sources = draw(st.integers(1, 4))
    n_gaps = draw(st.integers(1, 5))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_sources - 1), st.integers(0, n_gaps - 1)),
                          min_size=1, max_size=12, unique=True))
    amount = st.floats(0, 1e7, allow_nan=False).map(lambda v: round(v, draw(st.integers(0, 6))))
    x = np.array([draw(amount) for _ in pairs])
    sources = np.array([f for f, _ in pairs])
    gaps = np.array([g for _, g in pairs])
    # Caps as a solver leaves them: the exact totals, some tight, some with room, and some
    # exceeded by solver noise of up to a few dollars.
    def caps(group, size):
        totals = np.bincount(group, weights=x, minlength=size)
        slack = np.array([draw(st.sampled_from([0.0, 0.004, 0.5, -0.003, -2.5, 1e3]))
                          for _ in range(size)])
        return np.maximum(totals + slack, 0.0)
    return x, sources, gaps, caps(sources, n_sources), caps(gaps, n_gaps)


@given(instances())
def test_totals_never_exceed_caps_and_amounts_move_less_than_a_cent(instance):
    x, sources, gaps, source_cap, gap_cap = instance
    cents = round_to_cents(x, sources, gaps, written_cents(source_cap), written_cents(gap_cap))
    assert (cents >= 0).all()
    by_source = np.bincount(sources, weights=cents, minlength=source_cap.size)
    by_gap = np.bincount(gaps, weights=cents, minlength=gap_cap.size)
    assert (by_source <= written_cents(source_cap)).all()
    assert (by_gap <= written_cents(gap_cap)).all()
    # Where no cap was overshot by the solver, every amount is its value rounded down or up.
    over = (np.bincount(sources, weights=x, minlength=source_cap.size) * 100
            > written_cents(source_cap) + 1e-6)[sources] | (
        np.bincount(gaps, weights=x, minlength=gap_cap.size) * 100
        > written_cents(gap_cap) + 1e-6)[gaps]
    moved = np.abs(cents - x * 100)
    assert (moved[~over] < 1 + 1e-6).all()
    # Deterministic: the same values give the same cents.
    again = round_to_cents(x, sources, gaps, written_cents(source_cap), written_cents(gap_cap))
    assert again.tolist() == cents.tolist()


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_written_totals_hold_exactly_on_the_example(tmp_path, solver):
    # Recomputed from the written text in exact decimals, as a treasury would add them.
    from decimal import Decimal

    import cases

    root = Path(__file__).resolve().parents[2]
    run = cases.allocate_and_read(root / "inputs", root / "models" / "ldc_priority.toml",
                                  tmp_path / "run", solver=solver)
    by_source: dict[str, Decimal] = {}
    by_gap: dict[tuple[str, str], Decimal] = {}
    for row in run.allocations:
        amount = Decimal(row["amount_usd"])
        by_source[row["source_id"]] = by_source.get(row["source_id"], Decimal(0)) + amount
        key = (row["iso3"], row["target"])
        by_gap[key] = by_gap.get(key, Decimal(0)) + amount
    for row in run.sources_summary:
        allocated = by_source.get(row["source_id"], Decimal(0))
        assert Decimal(row["allocated_usd"]) == allocated, row
        assert allocated <= Decimal(row["pledge_usd"]), row
        assert Decimal(row["unallocated_usd"]) == Decimal(row["pledge_usd"]) - allocated, row
        assert Decimal(row["unallocated_usd"]) >= 0, row
    for row in run.coverage:
        allocated = by_gap.get((row["iso3"], row["target"]), Decimal(0))
        assert Decimal(row["allocated_usd"]) == allocated, row
        assert allocated <= Decimal(row["fundable_usd"]), row


def test_issue20_written_amounts_meet_a_source_per_state_cap(tmp_path: Path) -> None:
    """Issue 20: a CBC run wrote `source_state[src_03-donor,NOC]` at 408,960.20 against a
    cap of 0.09 x 4,544,000 = 408,960.00 and certify refused it. Solver values that
    overshoot the cap by USD 0.20 over eleven gaps are written at the cap exactly, each
    amount within two cents of its value, the other source rounded as before."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cases import gap, source, state, write_case

    from gcm_fund import api
    from gcm_fund.model.lp import build
    from gcm_fund.outputs.results import written_amounts

    targets = ["10.7", "10.c", "8.8", "8.7", "5.2", "16.2", "1.1", "2.1", "3.1", "4.1", "6.1"]
    inputs, policy = write_case(
        tmp_path, states=[state("NOC"), state("KEN")],
        gaps=[gap("NOC", t, 1e6) for t in targets] + [gap("KEN", "10.7", 1e6)],
        sources=[source("src_03-donor", 4544000.0, max_state_share=0.09),
                 source("src_04-donor", 1e6)],
        policy={"allocation": {"method": "weighted"}})
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    capped = (lp.var_source == 0) & (lp.data.states["iso3"].to_numpy()[lp.var_state] == "NOC")
    assert capped.sum() == len(targets)
    x = np.zeros(lp.n_x)
    x[capped] = (408960.00 + 0.20) / len(targets)
    x[lp.var_source == 1] = 1234.567
    written = written_amounts(lp, x, np.array([4544000.0, 1e6]))
    assert round(written[capped].sum() * 100) == 40896000
    assert np.all(np.abs(written - x) <= 0.02 + 1e-9)
    other = lp.var_source == 1  # rounded as before: its total is the exact one rounded up
    assert round(written[other].sum() * 100) == int(np.ceil(x[other].sum() * 100))


def test_round_to_cents_meets_further_group_caps() -> None:
    # Three columns of one source and one pair group (cap 1.00): 0.34 x 3 rounds to 1.02.
    cents = round_to_cents(np.array([0.34, 0.34, 0.34, 5.0]), np.array([0, 0, 0, 0]),
                           np.array([0, 1, 2, 3]), np.array([1000]),
                           np.array([100, 100, 100, 1000]),
                           more=[(np.array([0, 0, 0, -1]), np.array([100]))])
    assert cents[:3].sum() == 100
    assert cents[3] == 500


def test_sums_of_cents_stay_exact_beyond_usd_9e13():
    """A float sum of whole cents rounds beyond 2**53 cents (USD 9e13); a run's totals may
    reach USD 1e15, so written totals sum cents as integers."""
    cents = np.array([11_066_985_299_999_990, 3, 4], dtype=np.int64)
    group = np.zeros(3, dtype=np.intp)
    exact = 11_066_985_299_999_997
    assert cents_by_group(group, cents, 1)[0] == exact
    assert int(np.bincount(group, weights=cents, minlength=1)[0]) != exact
    assert f"{usd_of_cents(cents_by_group(group, cents, 1))[0]:.2f}" == "110669852999999.97"
    assert f"{cents_by_group(group, cents, 1)[0] / 100:.2f}" != "110669852999999.97"
