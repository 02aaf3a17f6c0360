"""Issue 9, item 7: legal numbers at the edge of what the solvers hold.

HiGHS used to crash (exit 70) where CBC solved and certified: a target weight of 1e12
("status Unknown"), a `need_usd` of 0.001 or a cofinancing share of 1e-9 ("refused the
model: kWarning"). Weights are now scaled (each stage's objective by a power of two);
a fundable need below a cent and a thematic share below 1e-6 are refused with exit
status 2, naming the gap or the policy key (README, "Limits").
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cases import gap, source, state, weighted_policy
from typer.testing import CliRunner

from gcm_fund import api, audit
from gcm_fund.cli.app import app
from gcm_fund.solvers.pipeline import cost_scale

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_item7_a_target_weight_of_1e12_solves_on_highs_at_once_and_certifies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The bundled example with weight 1e12 on target 10.7 under section 4's weighted stage
    2: HiGHS's warm stage 2 used to end "Unknown" (then crash; later solved again from
    scratch, 10 s lost). Scaled, it solves at once, certifies, and agrees with CBC."""
    (tmp_path / "policy").mkdir()
    policy = tmp_path / "policy" / "heavy.toml"
    baseline = weighted_policy(tmp_path).read_text(encoding="utf-8")
    assert '"10.7" = 1.0' in baseline
    policy.write_text(baseline.replace('"10.7" = 1.0', '"10.7" = 1e12'), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="gcm_fund"):
        highs = api.allocate(ROOT / "inputs", policy, "highs")
    assert not [r for r in caplog.records if "from scratch" in r.getMessage()]
    cbc = api.allocate(ROOT / "inputs", policy, "cbc")
    assert highs.solution.floor == pytest.approx(cbc.solution.floor, abs=1e-6)
    assert highs.solution.weighted_usd == pytest.approx(cbc.solution.weighted_usd, rel=1e-6)
    for run, name in ((highs, "highs"), (cbc, "cbc")):
        folder = api.write(run, tmp_path / name)
        certificate = audit.certify(folder)
        assert certificate.ok, "\n".join(certificate.lines())


def test_item7_the_objective_is_scaled_by_an_exact_power_of_two() -> None:
    import numpy as np

    assert cost_scale(np.array([1.0, 1.2, -0.3])) == 1.0  # ordinary weights: untouched
    assert cost_scale(np.array([1.0, 1e12])) == 2.0**40
    assert cost_scale(np.array([1e-12, 0.0])) == 2.0**-40
    assert cost_scale(np.zeros(3)) == 1.0


def _case(write_case, tmp_path: Path, need: float, cofinancing: float = 1.0,
          thematic: float | None = None) -> tuple[Path, Path]:
    policy: dict = {"cofinancing": {"LMIC": cofinancing}}
    if thematic is not None:
        policy["thematic"] = {"min_share": {"8.8": thematic}}
    return write_case(
        tmp_path,
        states=[state("KEN", "LMIC"), state("MLI", "LIC")],
        gaps=[gap("KEN", "10.7", 2e7), gap("KEN", "8.8", need), gap("MLI", "10.7", 3e7)],
        sources=[source("deu", 2.5e7)],
        policy=policy,
    )


@pytest.mark.parametrize("command", ["allocate", "validate"])
def test_item7_a_need_of_a_tenth_of_a_cent_is_refused_naming_the_gap(
        write_case, tmp_path: Path, command: str) -> None:
    inputs, policy = _case(write_case, tmp_path, need=0.001)
    out = tmp_path / "run"
    extra = ["--out", out] if command == "allocate" else []
    status, output = cli(command, inputs, "--model", policy, *extra)
    assert status == 2, output
    assert (f"{inputs / 'gaps.csv'}:3: need_usd: gap KEN 8.8: the fundable need "
            "cofinancing.LMIC 1 x need_usd 0.001 = USD 0.001 is below USD 0.01, the least "
            "the solvers can allocate beside the other gaps; raise need_usd or "
            "cofinancing.LMIC, or leave the gap out") in " ".join(output.split())
    assert "Traceback" not in output
    assert not out.exists()


def test_item7_a_cofinancing_share_of_1e_9_is_refused_where_it_leaves_less_than_a_cent(
        write_case, tmp_path: Path) -> None:
    inputs, policy = _case(write_case, tmp_path, need=1e6, cofinancing=1e-9)
    status, output = cli("allocate", inputs, "--model", policy, "--out", tmp_path / "run")
    assert status == 2, output
    text = " ".join(output.split())
    assert "gap KEN 8.8: the fundable need cofinancing.LMIC 1e-09 x need_usd 1e+06" in text
    assert "gap KEN 10.7" not in text  # 1e-9 x USD 20 million is 2 cents: solvable


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_item7_a_cofinancing_share_of_1e_9_that_leaves_cents_solves_and_certifies(
        write_case, tmp_path: Path, solver: str) -> None:
    inputs, policy = _case(write_case, tmp_path, need=2e7, cofinancing=1e-9)
    folder = api.write(api.allocate(inputs, policy, solver), tmp_path / "run")
    certificate = audit.certify(folder)
    assert certificate.ok, "\n".join(certificate.lines())


def test_item7_a_thematic_share_below_1e_6_is_refused_naming_the_key(
        write_case, tmp_path: Path) -> None:
    inputs, policy = _case(write_case, tmp_path, need=1e7, thematic=1e-12)
    status, output = cli("allocate", inputs, "--model", policy, "--out", tmp_path / "run")
    assert status == 2, output
    assert (f"{policy}: thematic.min_share.8.8: got 1e-12: a thematic share is 0 or at "
            "least 1e-06 (the solvers drop smaller coefficients)") in " ".join(output.split())


@pytest.mark.parametrize("column,value,expected", [
    ("need_usd", 1e22, "gaps.csv: need_usd: the need_usd values add up to USD 1e+22, above "
     "USD 1e+15, the most the tool counts in whole cents (largest: KEN 8.8, USD 1e+22)"),
    ("pledge_usd", 1e19, "sources.csv: pledge_usd: the pledge_usd values add up to USD 1e+19, "
     "above USD 1e+15, the most the tool counts in whole cents (largest: deu, USD 1e+19)"),
], ids=["need-1e22", "pledge-1e19"])
def test_item7_amounts_beyond_a_thousand_trillion_are_refused_naming_the_file(
        write_case, tmp_path: Path, column: str, value: float, expected: str) -> None:
    """A need of 1e22 made HiGHS refuse the model (kError), a pledge of 1e19 overflowed
    the whole-cent counts (OverflowError): both exit 70 before."""
    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LMIC"), state("MLI", "LIC")],
        gaps=[gap("KEN", "10.7", 2e7), gap("KEN", "8.8", value if column == "need_usd"
                                           else 1e7)],
        sources=[source("deu", value if column == "pledge_usd" else 2.5e7)],
    )
    status, output = cli("allocate", inputs, "--model", policy, "--out", tmp_path / "run")
    assert status == 2, output
    assert expected in " ".join(output.split())
    assert not (tmp_path / "run").exists()


def test_item7_an_overlay_pledge_beyond_the_limit_is_refused_too(
        write_case, tmp_path: Path) -> None:
    from gcm_fund.analyses.compare import compare
    from gcm_fund.errors import InputError

    inputs, policy = _case(write_case, tmp_path, need=1e7)
    overlay = tmp_path / "more.csv"
    overlay.write_text("source_id,pledge_usd\ndeu,1e19\n", encoding="utf-8")
    with pytest.raises(InputError, match="pledge_usd values add up to USD 1e"):
        compare(inputs, [policy], [overlay])


# Issue 19, point 5: crashes (exit 70) on legal input.

def _forty_large_gaps(write_case, tmp_path: Path) -> tuple[Path, Path]:
    """40 gaps of USD 1e11 to 2e12, evenly spaced, in States of three income groups; pledges
    of USD 3e13 and 1e13 (the issue's case)."""
    import numpy as np

    groups = ("LIC", "LMIC", "UMIC")
    targets = ("10.7", "8.8", "5.2")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    iso3 = [f"S{letters[i // 26]}{letters[i % 26]}" for i in range(40)]
    needs = np.linspace(1e11, 2e12, 40)
    return write_case(
        tmp_path,
        states=[state(code, groups[(7 * i) % 3]) for i, code in enumerate(iso3)],
        gaps=[gap(code, targets[(5 * i) % 3], float(round(need)))
              for i, (code, need) in enumerate(zip(iso3, needs, strict=True))],
        sources=[source("a", 3e13), source("b", 1e13)],
    )


def test_point5_highs_unbounded_in_stage_1_on_forty_gaps_of_1e11_to_2e12_solves(
        write_case, tmp_path: Path) -> None:
    """HiGHS's simplex called stage 1 "Unbounded" (z is bounded by 1) and the run exited
    70; CBC solved it. It is now solved again with other HiGHS options, certifies, and
    agrees with CBC gap by gap."""
    from cases import read_csv

    inputs, policy = _forty_large_gaps(write_case, tmp_path)
    amounts = {}
    for solver in ("highs", "cbc"):
        status, output = cli("allocate", inputs, "--model", policy, "--solver", solver,
                             "--out", tmp_path / solver)
        assert status == 0, output
        certificate = audit.certify(tmp_path / solver)
        assert certificate.ok, "\n".join(certificate.lines())
        amounts[solver] = {(r["iso3"], r["target"]): (float(r["allocated_usd"]),
                                                       float(r["fundable_usd"]))
                           for r in read_csv(tmp_path / solver / "coverage.csv")}
    for key, (highs, fundable) in amounts["highs"].items():
        assert abs(highs - amounts["cbc"][key][0]) <= 2 * (0.01 + 1e-6 * fundable), key


@pytest.mark.parametrize("weight", [1e300, 1e-300, 1e51, 1e-51])
@pytest.mark.parametrize("command", ["validate", "allocate"])
def test_point5_a_target_weight_of_1e300_or_1e_300_is_refused_naming_the_key(
        write_case, tmp_path: Path, weight: float, command: str) -> None:
    """Under levels `log2(max pi x min pi)` overflowed (exit 70) while `validate` accepted
    the policy; both now refuse it with exit 2 and nothing written."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN"), state("MLI")],
        gaps=[gap("KEN", "10.7", 2e7), gap("MLI", "10.7", 3e7)],
        sources=[source("deu", 2.5e7)], policy={"weights": {"target": {"10.7": weight}}})
    out = tmp_path / "run"
    extra = ["--out", out] if command == "allocate" else []
    status, output = cli(command, inputs, "--model", policy, *extra)
    assert status == 2, output
    assert (f"{policy}: weights.target.10.7: got {weight:g}: a weight, the loan penalty or "
            "a loan burden is 0 or between 1e-50 and 1e+50 (beyond, its products with other "
            "weights and amounts leave floating point)") in " ".join(output.split())
    assert "Traceback" not in output
    assert not out.exists()


@pytest.mark.parametrize("key,value", [("penalty", 1e60), ("burden", 1e-60)])
def test_point5_a_loan_penalty_or_burden_out_of_range_is_refused(
        write_case, tmp_path: Path, key: str, value: float) -> None:
    loans = {"penalty": value} if key == "penalty" else {"burden": {"LIC": value}}
    inputs, policy = write_case(
        tmp_path, states=[state("KEN")], gaps=[gap("KEN", "10.7", 2e7)],
        sources=[source("deu", 2.5e7)], policy={"loans": loans})
    status, output = cli("validate", inputs, "--model", policy)
    assert status == 2, output
    name = "loans.penalty" if key == "penalty" else "loans.burden.LIC"
    assert f"{policy}: {name}: got {value:g}:" in " ".join(output.split())


@pytest.mark.parametrize("weight", [1e50, 1e-50])
@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_point5_weights_at_the_ends_of_the_range_solve_and_certify(
        write_case, tmp_path: Path, weight: float, solver: str) -> None:
    """Every named weight at 1e50 (priorities 1e150) or 1e-50 under levels: the level
    column's unit (a power of two amid the priorities) is computed without overflow, and
    the allocation is that of weights of 1."""
    inputs, policy = write_case(
        tmp_path, states=[state("KEN"), state("MLI", "LMIC")],
        gaps=[gap("KEN", "10.7", 2e7), gap("MLI", "8.8", 3e7)],
        sources=[source("deu", 2.5e7)],
        policy={"weights": {"target": {"10.7": weight, "8.8": weight},
                            "income": {g: weight for g in ("LIC", "LMIC", "UMIC", "HIC")},
                            "role": {r: weight for r in ("origin", "transit", "destination")}}})
    run = api.allocate(inputs, policy, solver)
    folder = api.write(run, tmp_path / "run")
    certificate = audit.certify(folder)
    assert certificate.ok, "\n".join(certificate.lines())
    # Equal priorities: fundable USD 2e7 and 2.25e7 (LMIC 0.75), 2.5e7 placed alike.
    from cases import read_csv

    amounts = {(r["iso3"], r["target"]): float(r["allocated_usd"])
               for r in read_csv(folder / "coverage.csv")}
    level = 2.5e7 / (2e7 + 2.25e7)
    assert amounts[("KEN", "10.7")] == pytest.approx(2e7 * level, abs=0.02)
    assert amounts[("MLI", "8.8")] == pytest.approx(2.25e7 * level, abs=0.02)
