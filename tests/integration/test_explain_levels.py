"""`explain` under priority levels (issue 22): every ineligibility has its reason, and a gap
held at the equity floor says that the floor, not its priority, decided its amount."""

from __future__ import annotations

from cases import gap, source, state

from gcm_fund import api
from gcm_fund.audit.explanation import explain


def test_a_state_with_no_gap_is_given_a_reason_not_a_blank(tmp_path, write_case):
    """Before: every source showed "not eligible: " with nothing after it."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN"), state("ARE", "HIC")], gaps=[gap("KEN", "10.7", 1e6)],
        sources=[source("s", 5e5)], policy={})
    api.allocate(inputs, policy, out=tmp_path / "run")
    lines = explain(tmp_path / "run", "ARE").lines()
    assert "  s: not eligible: ARE has no gap in gaps.csv (no need costed for any target)" \
        in lines


def test_the_floor_not_the_priority_decides_a_gap_held_at_the_floor(tmp_path, write_case):
    """KEN (LIC, priority 2) and IND (LMIC, priority 1) each need 100, one source of 100:
    the floor z* = 0.5 holds both at 50. Priority alone would give KEN twice IND's
    coverage (66.7 and 33.3); the floor gives IND 50, which is what it gets."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC"), state("IND", "LMIC", region="Asia")],
        gaps=[gap("KEN", "10.7", 100e6), gap("IND", "10.7", 100e6)],
        sources=[source("s", 100e6)],
        policy={"cofinancing": {"LMIC": 1.0}, "weights": {"income": {"LIC": 2.0}}})
    api.allocate(inputs, policy, out=tmp_path / "run")
    held = explain(tmp_path / "run", "IND").lines()
    assert any("held at the equity floor (50.00% coverage): the floor, not the priority, "
               "decided its amount" in line for line in held)
    # The rules of the last step are not the gap's: it says where they are instead of "none".
    assert not any(line.startswith("  none: no rule") for line in held)
    # KEN is at the floor's coverage too, but at the lowest level: its priority held it.
    assert not any("held at the equity floor" in line
                   for line in explain(tmp_path / "run", "KEN").lines())
