"""The rules and thresholds with one owner each (issue 20), on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from gcm_fund import level_filling, spec
from gcm_fund.level_tolerances import LevelStage, stage_of, within_money
from gcm_fund.methods import LEVELS, METHODS, WEIGHTED, method_of
from gcm_fund.schema import ALLOCATION_METHODS, Policy


@pytest.mark.parametrize(("group", "expected"), [
    pytest.param("all", [True, True, True], id="all"),
    pytest.param("ldc", [True, False, False], id="ldc"),
    pytest.param("UMIC", [False, False, True], id="income-group"),
    pytest.param("HIC", [False, False, False], id="empty"),
])
def test_equity_members_by_state(group, expected):
    ldc = np.array([True, False, False])
    income = np.array(["LIC", "LIC", "UMIC"], dtype=object)
    assert spec.equity_members(group, ldc, income).tolist() == expected


@pytest.mark.parametrize(("label", "stage", "eases"), [
    pytest.param("stage 1b", LevelStage.STAGE_1B, False, id="1b"),
    pytest.param("stage 2 step 12", LevelStage.STAGE_2_STEP, True, id="step"),
    pytest.param("stage 3", LevelStage.STAGE_3, True, id="3"),
    pytest.param("split", LevelStage.SPLIT, True, id="split"),
])
def test_retry_on_infeasible_holds_is_keyed_on_the_stage(label, stage, eases):
    assert stage_of(label) is stage
    assert stage.eases_holds is eases


def test_an_unknown_stage_label_is_refused():
    with pytest.raises(ValueError, match="names no stage"):
        stage_of("stage 4")


def test_money_fits_within_the_stated_tolerances():
    assert within_money(100.0 * (1 + 1e-7) + 1e-6, 100.0)
    assert not within_money(100.0 * (1 + 2e-7) + 1e-6, 100.0)


def test_read_back_allowance_is_ten_times_the_precision_in_every_user():
    assert spec.read_back_allowance(1e-8) == pytest.approx(1e-7)
    assert spec.ceiling_margin(1e-8) == spec.read_back_allowance(1e-8) + 1e-9
    # The filling's tolerances are the module's, re-exported where they were.
    assert level_filling.HOLD_MARGIN == 1e-9 and level_filling.STOP_SHARE == 1e-7


def test_every_policy_method_has_a_strategy():
    assert set(METHODS) == set(ALLOCATION_METHODS)
    assert method_of(Policy()) is LEVELS
    weighted = Policy.model_validate({"allocation": {"method": "weighted"}})
    assert method_of(weighted) is WEIGHTED
    assert LEVELS.has_levels and not WEIGHTED.has_levels
