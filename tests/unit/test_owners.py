"""The rules and thresholds with one owner each (issue 20), on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import ALLOCATION_METHODS
from gcm_fund.methods import level_filling
from gcm_fund.methods.level_tolerances import LevelStage, within_money
from gcm_fund.methods.strategy import LEVELS, METHODS, WEIGHTED, method_of
from gcm_fund.model import spec


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


@pytest.mark.parametrize(("stage", "step", "label", "eases"), [
    pytest.param(LevelStage.STAGE_1B, None, "stage 1b", False, id="1b"),
    pytest.param(LevelStage.STAGE_2_STEP, 12, "stage 2 step 12", True, id="step"),
    pytest.param(LevelStage.STAGE_3, None, "stage 3", True, id="3"),
    pytest.param(LevelStage.SPLIT, None, "split", True, id="split"),
])
def test_retry_on_infeasible_holds_is_keyed_on_the_stage_not_its_label(stage, step, label,
                                                                       eases):
    assert stage.label(step) == label
    assert stage.eases_holds is eases


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
