"""Priority levels at the edges of the solvers' precision (SPEC section 4b): priorities
spread a million-fold, and a gap a billion times smaller than its State's others.

The limit of a gap 1e10 times smaller than its capped State's others under certify is
test_level_forecast's; the one here is the same mechanism in LP steps, where a tiny gap
rises on past a shared stop and takes what the holds below it give way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cases import allocate_and_read, gap, source, state, write_case
from test_levels import SOLVERS

from gcm_fund import api, audit
from gcm_fund.methods.levels import extend, run_levels
from gcm_fund.model.eligibility import gap_priority
from gcm_fund.model.lp import build
from gcm_fund.solvers.pipeline import Pipeline

NO_FLOOR: dict[str, Any] = {"equity": {"group": "ldc"}}


@pytest.mark.parametrize("solver", SOLVERS)
def test_steps_certify_with_priorities_a_million_fold_apart(tmp_path, solver):
    """Three States (caps 4e6, 2e6, 1e6; CCC an LMIC: co-financing 0.75), gaps 10.7 at
    priority 1e3 and 8.8 at 1e-3, a floor of 10 % and one grant of 5e6.

    The floors take 0.1 x (1e6 + 0.5e6 + 0.75e6) = 0.225e6; the 10.7 gaps (5.25e6 of
    fundable need) share the remaining 4.775e6: L = 4.775 / 5.25 / 1e3. Step 1's duals,
    written with 12 (CBC: 8) significant digits, leave L's reduced cost at 1e-12 (1e-8);
    priced at Lcap = 1 / 1e-3 that was 1e-6 (2.7e-3) of L_1, and certify failed."""
    states = [state("AAA", absorption_usd=4e6), state("BBB", absorption_usd=2e6),
              state("CCC", "LMIC", absorption_usd=1e6)]
    gaps = [gap("AAA", "10.7", 3e6), gap("AAA", "8.8", 1e6), gap("BBB", "10.7", 1.5e6),
            gap("BBB", "8.8", 0.5e6), gap("CCC", "8.8", 1e6), gap("CCC", "10.7", 1e6)]
    inputs, policy = write_case(
        tmp_path, states=states, gaps=gaps, sources=[source("g", 5e6)],
        policy={"equity": {"group": "all", "maximize": False, "min_floor": 0.1},
                "weights": {"target": {"10.7": 1e3, "8.8": 1e-3}}})
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver)
    amounts = {(r["iso3"], r["target"]): float(r["allocated_usd"]) for r in run.coverage}
    share = 4.775 / 5.25
    assert amounts[("AAA", "10.7")] == pytest.approx(3e6 * share, abs=3.01)
    assert amounts[("CCC", "10.7")] == pytest.approx(0.75e6 * share, abs=0.76)
    assert amounts[("BBB", "8.8")] == pytest.approx(0.05e6, abs=0.51)
    certificate = audit.certify(run.folder)
    assert certificate.ok, "\n".join(certificate.lines())


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_hundred_dollar_gap_beside_ten_billion_ones_gets_its_level(tmp_path, solver):
    """AAA: gaps of 1e10 and 100 USD; BBB: 1e10; one grant of 5e9 (no caps bind). The
    budget stops everything at L = 5e9 / (2e10 + 100): the 100 USD gap gets 25 USD. Its
    share of step 1's dual is 5e-9 < STOP_SHARE, but its dual per unit of money is the
    budget's, as the large gaps': it stops with them. Left rising, it took in step 2 what
    the two large gaps' holds give way below their level: held 1e-9 (CBC: 1.1e-8) of
    their level below it, they gave USD 5 (CBC: 55) and it got 30 (80), where SPEC 4b
    allows 0.01 + 1e-6 x 100; certify accepts that (the large gaps' own tolerance, 1e-6
    of U, is 1e4 USD)."""
    states = [state("AAA"), state("BBB")]
    gaps = [gap("AAA", "10.7", 1e10), gap("AAA", "8.8", 100.0), gap("BBB", "10.7", 1e10)]
    inputs, policy = write_case(tmp_path, states=states, gaps=gaps,
                                sources=[source("g", 5e9)], policy=NO_FLOOR)
    loaded = api.load(inputs, policy)
    lp = build(loaded.data, loaded.policy_file.policy)
    priority = gap_priority(lp.data, lp.policy)
    exact = 5e9 / (2e10 + 100) * 100
    for forecast in (True, False):
        ext, layout = extend(lp, priority)
        solution = run_levels(Pipeline(ext, solver), lp, layout, priority, forecast=forecast)
        amount = np.bincount(lp.var_gap, weights=solution.x_usd, minlength=len(lp.data.gaps))
        small = int(np.nonzero(lp.data.gaps["need_usd"].to_numpy() == 100.0)[0][0])
        assert amount[small] == pytest.approx(exact, abs=0.01 + 1e-4)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_hundred_dollar_gap_beside_twenty_ten_billion_ones_gets_its_level(tmp_path, solver):
    """Twenty States with a USD 1e10 gap each, one more with a USD 100 gap; one grant of a
    quarter of the needs: the budget stops all at L = 5e10 / (2e11 + 100), 25 USD for the
    small gap. Its share of step 1's dual is 5e-10, under STOP_SHARE, but its dual per unit
    of money is the budget's, as the twenty's: it stops with them. Left rising, it took
    what the twenty holds give way, USD 0.001 each: 25.02, past SPEC 4b's 0.01 + 1e-6 x 100."""
    names = ["A" + chr(65 + i // 26) + chr(65 + i % 26) for i in range(20)]
    states = [state(s) for s in names] + [state("ZZZ")]
    gaps = [gap(s, "10.7", 1e10) for s in names] + [gap("ZZZ", "8.8", 100.0)]
    inputs, policy = write_case(tmp_path, states=states, gaps=gaps,
                                sources=[source("g", 5e10)], policy=NO_FLOOR)
    run = allocate_and_read(inputs, policy, tmp_path / "run", solver=solver)
    amounts = {(r["iso3"], r["target"]): float(r["allocated_usd"]) for r in run.coverage}
    assert amounts[("ZZZ", "8.8")] == pytest.approx(5e10 / (2e11 + 100) * 100, abs=0.0101)
    certificate = audit.certify(run.folder)
    assert certificate.ok, "\n".join(certificate.lines())


def test_a_loan_burden_of_zero_certifies_without_stage_3_duals(tmp_path):
    """A loan (grant element 0, penalty 0.5) and a grant both may fund KEN's gap, but the
    share cap (0.3 x 30,000) lets KEN take 9,000 only, which the grant covers: stage 3
    runs and finds burden 0 with every dual 0, so stage_duals.csv has no stage 3 row. The
    zero dual proves that burden: certify used to fail on the missing rows."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN")], gaps=[gap("KEN", "10.7", 10e3)],
        sources=[source("loan", 10e3, "loan", grant_element=0.0), source("grant", 20e3)],
        policy={**NO_FLOOR, "loans": {"penalty": 0.5}, "limits": {"max_state_share": 0.3}})
    run = allocate_and_read(inputs, policy, tmp_path / "run")
    assert run.amounts() == pytest.approx({("grant", "KEN", "10.7"): 9e3})
    stage_rows = (run.folder / "stage_duals.csv").read_text(encoding="utf-8").splitlines()
    assert not any(line.startswith("3,") for line in stage_rows)
    certificate = audit.certify(run.folder)
    assert certificate.ok, "\n".join(certificate.lines())
