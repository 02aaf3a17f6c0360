"""Honest headlines (issue 22): coverage states its denominator, and a State no source may
fund does not hide in it."""

from __future__ import annotations

from cases import gap, source, state
from typer.testing import CliRunner

from gcm_fund.cli.app import app


def test_allocate_names_the_need_some_source_may_fund_beside_all_need(tmp_path, write_case):
    """KEN needs 100e6 and may be funded; UGA (eligible = false) needs 300e6: 60e6 placed
    covers 15 % of all fundable need but 60 % of the need some source may fund."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN"), state("UGA", eligible="false")],
        gaps=[gap("KEN", "10.7", 100e6), gap("UGA", "10.7", 300e6)],
        sources=[source("s", 60e6)], policy={})
    result = CliRunner().invoke(app, ["allocate", str(inputs), "--model", str(policy),
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert ("fundable need USD 400,000,000 (USD 100,000,000 of it in gaps some source may "
            "fund, 60.0% covered)") in " ".join(result.output.split())
    assert "Coverage by income group (of all fundable need)" in result.output
