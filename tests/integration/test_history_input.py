"""docs/cycles.md: reading history.csv, its checks (exit 2, `file:line: column: why`, nothing
written) and the policy keys of cycles."""

from __future__ import annotations

import math
from pathlib import Path

import cases
import pytest
from cases import gap, source, state, write_case, write_rows

from gcm_fund.errors import InputError
from gcm_fund.inputs.history import HISTORY_FRAME_COLUMNS, read_history

CYCLE = "[cycle]\nnumber = 3\n"


def row(cycle: object, iso3: str, target: str, committed: object, disbursed: object,
        result: object = "") -> dict[str, object]:
    return {"cycle": cycle, "iso3": iso3, "target": target, "committed_usd": committed,
            "disbursed_usd": disbursed, "result": result}


GOOD = [row(2, "MLI", "10.7", 4e6, 1e6, 0.5), row(1, "KEN", "10.7", 2e6, 2e6),
        row(2, "KEN", "10.7", 3e6, 3e6, 1)]


def make(tmp_path: Path, rows: list[dict[str, object]] | str, policy: str = CYCLE
         ) -> tuple[Path, Path]:
    """KEN and MLI with USD 10 M of need each at 10.7, one USD 8 M grant."""
    inputs, model = write_case(
        tmp_path, states=[state("KEN"), state("MLI")],
        gaps=[gap("KEN", "10.7", 10e6), gap("MLI", "10.7", 10e6)],
        sources=[source("deu", 8e6)], policy=policy)
    write_rows(inputs / "history.csv", rows)
    return inputs, model


def test_read_history_returns_the_rows_sorted_with_blank_results_as_nan(tmp_path):
    inputs, _ = make(tmp_path, GOOD)
    frame = read_history(inputs / "history.csv", {"KEN", "MLI"}, {"10.7"}, before=3)
    assert tuple(frame.columns) == HISTORY_FRAME_COLUMNS
    assert frame[["cycle", "iso3"]].values.tolist() == [[1, "KEN"], [2, "KEN"], [2, "MLI"]]
    assert frame["cycle"].dtype == "int64"
    assert frame["committed_usd"].tolist() == [2e6, 3e6, 4e6]
    assert math.isnan(frame["result"].iloc[0])
    assert frame["result"].iloc[1:].tolist() == [1.0, 0.5]


def test_a_history_with_a_header_and_no_rows_is_an_empty_frame(tmp_path):
    inputs, _ = make(tmp_path, ",".join(HISTORY_FRAME_COLUMNS) + "\n")
    frame = read_history(inputs / "history.csv", {"KEN"})
    assert frame.empty and tuple(frame.columns) == HISTORY_FRAME_COLUMNS


def test_read_history_reports_every_problem_at_once(tmp_path):
    inputs, _ = make(tmp_path, [row(0, "KEN", "10.7", 1, 2), row(1, "XXX", "10.7", 1, 1)])
    with pytest.raises(InputError) as caught:
        read_history(inputs / "history.csv", {"KEN"})
    assert [str(p).split("history.csv")[1] for p in caught.value.problems] == [
        ":2: cycle: got '0', expected an integer >= 1",
        ":2: disbursed_usd: got 2, above committed_usd 1: expected a number in "
        "[0, committed_usd] (USD)",
        ":3: iso3: got 'XXX', not in states.csv"]


# ---------------------------------------------------------------------------------------
# Bad input through `allocate`: exit 2, one message per problem, nothing written


def _refused(tmp_path: Path, inputs: Path, model: Path) -> list[str]:
    out = tmp_path / "out"
    done = cases.run_cli("allocate", inputs, "--model", model, "--out", out)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not out.exists()
    return [line.strip() for line in done.stderr.splitlines()[1:] if line.strip()]


BAD = [
    pytest.param([row(1, "KEM", "10.7", 1e6, 0)], CYCLE,
                 ["history.csv:2: iso3: got 'KEM', not in states.csv (did you mean KEN?)"],
                 id="iso3_unknown"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 2e6)], CYCLE,
                 ["history.csv:2: disbursed_usd: got 2e+06, above committed_usd 1e+06: "
                  "expected a number in [0, committed_usd] (USD)"],
                 id="disbursed_above_committed"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0, 1.5)], CYCLE,
                 ["history.csv:2: result: got '1.5', expected a number in [0, 1]"],
                 id="result_above_1"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0, -0.1)], CYCLE,
                 ["history.csv:2: result: got '-0.1', expected a number in [0, 1]"],
                 id="result_below_0"),
    pytest.param([row(2, "KEN", "10.7", 1e6, 0), row(3, "MLI", "10.7", 1e6, 0)], CYCLE,
                 ["history.csv:3: cycle: got 3, expected a past cycle, below [cycle] "
                  "number = 3"], id="cycle_not_below_number"),
    pytest.param([row("1.5", "KEN", "10.7", 1e6, 0)], CYCLE,
                 ["history.csv:2: cycle: got '1.5', expected an integer >= 1"],
                 id="cycle_not_an_integer"),
    pytest.param([row("2024-01-01", "KEN", "10.7", 1e6, 0)], CYCLE,
                 ["history.csv:2: cycle: got '2024-01-01', expected an integer >= 1"],
                 id="cycle_a_date"),
    pytest.param([row(1, "KEN", "10.7", "1,000", 0)], CYCLE,
                 ["history.csv:2: committed_usd: got '1,000', expected a number >= 0 (USD) "
                  "written plainly (no thousands separators or currency signs)"],
                 id="committed_not_a_number"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0), row(1, "KEN", "10.7", 2e6, 0)], CYCLE,
                 ["history.csv:3: target: duplicate key '1,KEN,10.7', first on line 2"],
                 id="duplicate_cycle_iso3_target"),
    pytest.param([row(1, "KEN", "8.8", 1e6, 0)], CYCLE,
                 ["history.csv:2: target: got '8.8', no gap in gaps.csv has it"],
                 id="target_unknown"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)], "",
                 ["policy.toml: cycle.number: required when the inputs have history.csv: "
                  "this round's number, above every cycle in it (an integer >= 1)"],
                 id="no_cycle_number"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)],
                 CYCLE + "[performance]\nmin_factor = 1.3\n",
                 ["policy.toml:3: performance.max_factor: got 1.2, below min_factor = 1.3"],
                 id="max_factor_below_min_factor"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)],
                 CYCLE + "[performance]\nwindow = 0\n",
                 ["policy.toml:4: performance.window: got 0, expected an integer >= 1"],
                 id="window_zero"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)],
                 CYCLE + '[carryover]\nundisbursed = "return"\n',
                 ["policy.toml:4: carryover.undisbursed: got 'return', expected one of "
                  "keep, pool"], id="carryover_unknown"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)], "[cycle]\nnumber = 1.5\n",
                 ["policy.toml:2: cycle.number: got 1.5, expected an integer >= 1"],
                 id="cycle_number_not_an_integer"),
    pytest.param([row(1, "KEN", "10.7", 1e6, 0)], CYCLE + "[pacing]\nmax_cut = 1.5\n",
                 ["policy.toml:4: pacing.max_cut: got 1.5, expected a number in [0, 1]"],
                 id="max_cut_above_1"),
]


@pytest.mark.parametrize(("rows", "policy", "expected"), BAD)
def test_bad_history_exits_2_naming_the_problem(tmp_path, rows, policy, expected):
    inputs, model = make(tmp_path, rows, policy)
    found = _refused(tmp_path, inputs, model)
    assert found == [f"{model.parent if m.startswith('policy') else inputs}/{m}"
                     for m in expected]
