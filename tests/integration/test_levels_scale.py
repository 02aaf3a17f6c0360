"""Priority levels at the edge of what the solvers hold (issue 9 item 7 under section 4b).

The level column is solved in units of a power of two amid the priorities, so that weights
all multiplied by 1e9 give the allocation of weights of 1 and certify; priorities that span
more than `limits.MAX_PRIORITY_SPREAD` are refused (exit 2) naming the two gaps.
"""

from __future__ import annotations

from pathlib import Path

from cases import bundled_policy
from typer.testing import CliRunner

from gcm_fund import api, audit
from gcm_fund.cli.app import app
from gcm_fund.model.limits import MAX_PRIORITY_SPREAD

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("10.7", "10.c", "8.8", "8.7", "5.2", "16.2")


# The income and role weights the spreads below are figured with (1.1 x 1.1 at the top),
# stated here so that they do not follow the bundled baseline's.
INCOME = {"LIC": 1.1, "LMIC": 1.0, "UMIC": 1.0, "HIC": 1.0}
ROLE = {"origin": 1.0, "transit": 1.1, "destination": 1.0}


def baseline_with(folder: Path, target_weights: dict[str, float],
                  income: dict[str, float] | None = None) -> Path:
    """The bundled baseline (levels) with these target weights and the income and role
    weights above (or `income`), in a folder of its own."""
    return bundled_policy(folder, tables={
        "allocation": {"method": "levels"}, "weights.target": target_weights,
        "weights.income": {**INCOME, **(income or {})}, "weights.role": ROLE})


def per_gap(folder: Path) -> dict[tuple[str, str], float]:
    import csv

    out: dict[tuple[str, str], float] = {}
    with open(folder / "coverage.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            out[(row["iso3"], row["target"])] = float(row["allocated_usd"])
    return out


def test_every_priority_times_1e9_gives_the_allocation_of_weights_of_one_and_certifies(
        tmp_path: Path) -> None:
    # Every target is named, so every priority scales (SPEC 4b: invariance holds then).
    scaled = baseline_with(tmp_path, dict.fromkeys(TARGETS, 1e9))
    plain = baseline_with(tmp_path / "plain_policy", {})
    runs = {}
    for name, policy in (("scaled", scaled), ("plain", plain)):
        folder = api.write(api.allocate(ROOT / "inputs", policy, "highs"), tmp_path / name)
        certificate = audit.certify(folder)
        assert certificate.ok, "\n".join(certificate.lines())
        runs[name] = per_gap(folder)
    assert runs["scaled"].keys() == runs["plain"].keys()
    worst = max(abs(runs["scaled"][k] - runs["plain"][k]) for k in runs["plain"])
    assert worst <= 0.02  # a cent of rounding either way


def test_priorities_that_span_more_than_a_million_are_refused_naming_both_gaps(
        tmp_path: Path) -> None:
    policy = baseline_with(tmp_path, {"10.7": 1e12})
    result = CliRunner().invoke(app, ["allocate", str(ROOT / "inputs"), "--model",
                                      str(policy), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert (f"{policy}: weights: under method = \"levels\" the gaps' priorities Wt x Wi x Wr "
            "span 1.21e+12 times, from ") in result.stderr
    assert f"at most {MAX_PRIORITY_SPREAD:g}" in result.stderr
    assert 'use method = "weighted"' in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_spread_of_exactly_the_limit_solves(tmp_path: Path, write_case) -> None:
    from cases import gap, source, state

    inputs, policy = write_case(
        tmp_path, states=[state("KEN", "LIC"), state("MLI", "LIC")],
        gaps=[gap("KEN", "10.7", 1e6), gap("MLI", "8.8", 1e6)],
        sources=[source("deu", 1e6)],
        policy={"weights": {"target": {"10.7": MAX_PRIORITY_SPREAD, "8.8": 1.0}},
                "equity": {"maximize": False}},
    )
    run = api.allocate(inputs, policy, "highs")
    amounts = dict(zip(run.tables.coverage["target"], run.tables.coverage["allocated_usd"],
                       strict=True))
    # Water rising (no floor): the budget stops both at one level L, pi U L summing to
    # USD 1 million: 10.7 gets 1e6 / (1e6 + 1) of it, 8.8 the rest.
    assert amounts["10.7"] + amounts["8.8"] == 1e6
    assert abs(amounts["10.7"] - 1e12 / (1e6 + 1)) <= 0.01


def test_the_spread_of_priorities_past_a_float_is_a_real_figure(tmp_path: Path) -> None:
    """Weights of 1e300 and 1e-300 (issue 19, point 8): the products overflow and underflow
    a float, and the message said "span nan times" with a numpy warning (an error under
    pytest). Computed in logarithms: the highest priority is MLI 10.7's, 1e300 (10.7) x
    1e300 (LIC) x 1.1 (its role), the lowest AGO 8.8's, 1e-300 x 1 x 1: 1.1e+900 times.
    The check itself is called: a range check on each weight may come first in `load`."""
    from gcm_fund.inputs.load import load_inputs_and_policy
    from gcm_fund.model.eligibility import fundable_usd
    from gcm_fund.model.limits import _priority_spread

    policy = baseline_with(tmp_path, {"10.7": 1e300, "8.8": 1e-300}, income={"LIC": 1e300})
    data, policy_file = load_inputs_and_policy(ROOT / "inputs", policy)
    rules = policy_file.policy
    [problem] = _priority_spread(data, rules, "p.toml", fundable_usd(data, rules))
    assert str(problem).startswith(
        "p.toml: weights: under method = \"levels\" the gaps' priorities Wt x Wi x Wr span "
        "1.1e+900 times, from AGO 8.8 (1e-300) to MLI 10.7 (1.1e+600); at most 1e+06 ")
