"""A scenario's identity and bytes follow the data solved (issue 20): transforms write the
changed file anew, the run id changes with it, and the run folder certifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from cases import gap, source, state, write_case

from gcm_fund import api, engine
from gcm_fund.analyses import sweep
from gcm_fund.audit import certify
from gcm_fund.errors import InputError, UsageError
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy
from gcm_fund.model.scenario import Scenario, load_scenario, policy_bytes, table_bytes


def small_case(tmp_path: Path, method: str = "levels") -> tuple[Path, Path]:
    """Two States, three gaps, a grant and a capped loan: 41 M pledged against 43 M of
    fundable need, so that a pledge changes the allocation."""
    return write_case(
        tmp_path,
        states=[state("KEN", "LIC", roles="origin", ldc=True),
                state("MEX", "UMIC", region="Americas", absorption_usd=6e6)],
        gaps=[gap("KEN", "10.7", 25e6), gap("KEN", "8.8", 10e6), gap("MEX", "10.7", 16e6)],
        sources=[source("donor_a", 28.5e6, targets="10.7"),
                 source("bank_b", 12.5e6, instrument="loan", grant_element=0.35,
                        max_state_share=0.8)],
        policy=f'name = "small"\n[allocation]\nmethod = "{method}"\n',
    )


@pytest.fixture()
def scenario(tmp_path: Path) -> Scenario:
    inputs, policy = small_case(tmp_path)
    return load_scenario(inputs, policy)


def test_two_scenarios_differing_in_one_pledge_have_different_run_ids(scenario, tmp_path):
    halved = scenario.with_pledges({"bank_b": 6.25e6})
    assert halved.identity != scenario.identity
    base_run, halved_run = engine.run(scenario), engine.run(halved)
    assert base_run.run_id != halved_run.run_id
    assert (halved_run.tables.allocations["amount_usd"].sum()
            < base_run.tables.allocations["amount_usd"].sum())
    # Same content, same identity: a transform that changes nothing is the scenario itself.
    assert scenario.with_pledges({"bank_b": 12.5e6}) is scenario


def test_a_run_folder_written_from_a_transformed_scenario_certifies(scenario, tmp_path):
    halved = scenario.with_pledges({"bank_b": 6.25e6})
    out = engine.write(engine.run(halved), tmp_path / "halved")
    assert certify(out).ok
    copied = load_inputs(out / "inputs")
    pledges = dict(zip(copied.source_table["source_id"], copied.source_table["pledge_usd"],
                       strict=True))
    assert pledges == {"bank_b": 6.25e6, "donor_a": 28.5e6}
    assert (out / "inputs" / "sources.csv").read_bytes() == halved.data.file_bytes["sources.csv"]
    # The files the transform left alone are copied as they were read.
    assert ((out / "inputs" / "states.csv").read_bytes()
            == (scenario.data.folder / "states.csv").read_bytes())


def test_halved_pledge_through_sweep_with_pledges_gets_its_own_run_id_and_certifies(tmp_path):
    """The defect: `sweep.with_pledges` replaced the table but kept the bytes read, so
    the run had the original's id and its folder copied the original inputs."""
    inputs, policy = small_case(tmp_path)
    loaded = api.load(inputs, policy)
    changed = api.Loaded(sweep.with_pledges(loaded.data, {"bank_b": 6.25e6}),
                         loaded.policy_file, loaded.model_path)
    base, halved = api.solve_loaded(loaded), api.solve_loaded(changed)
    assert base.run_id != halved.run_id
    assert certify(api.write(halved, tmp_path / "halved")).ok


def test_an_unchanged_scenario_copies_the_bytes_it_read(scenario, tmp_path):
    out = engine.write(engine.run(scenario), tmp_path / "run")
    for name in ("states.csv", "gaps.csv", "sources.csv"):
        assert (out / "inputs" / name).read_bytes() == (scenario.data.folder / name).read_bytes()
    assert (out / "policy.toml").read_bytes() == scenario.policy_file.path.read_bytes()


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_with_needs_and_with_policy_runs_certify(tmp_path, method):
    inputs, policy = small_case(tmp_path, method)
    base = load_scenario(inputs, policy)
    other = base.policy.model_copy(update={"limits": base.policy.limits.model_copy(
        update={"max_state_share": 0.7})})
    changed = base.with_needs({("MEX", "10.7"): 8e6}).with_policy(other)
    assert changed.identity not in {base.identity, base.with_policy(other).identity}
    run = engine.run(changed)
    assert run.run_id != engine.run(base).run_id
    out = engine.write(run, tmp_path / "changed")
    assert certify(out).ok
    assert load_policy(out / "policy.toml").policy == other


def test_canonical_bytes_read_back_to_the_same_tables_and_policy(tmp_path):
    example = api.load(api.project_path("inputs"), api.project_path("models/baseline.toml"))
    folder = tmp_path / "inputs"
    folder.mkdir()
    for table in (example.data.state_table, example.data.gap_table, example.data.source_table):
        (folder / table.name).write_bytes(table_bytes(table))
    again = load_inputs(folder)
    for name in ("state_table", "gap_table", "source_table"):
        assert getattr(again, name).rows == getattr(example.data, name).rows
    (tmp_path / "policy.toml").write_bytes(policy_bytes(example.policy))
    assert load_policy(tmp_path / "policy.toml").policy == example.policy


def test_transforms_refuse_unknown_keys_and_bad_values(scenario):
    with pytest.raises(UsageError, match="'bank_c' is not a source_id of sources.csv"):
        scenario.with_pledges({"bank_c": 1.0})
    with pytest.raises(UsageError, match="expected a number >= 0"):
        scenario.with_pledges({"bank_b": -1.0})
    with pytest.raises(UsageError, match="'KEN,16.2' is not a iso3,target of gaps.csv"):
        scenario.with_needs({("KEN", "16.2"): 1.0})
    zero = scenario.policy.model_copy(update={"weights": scenario.policy.weights.model_copy(
        update={"target": {"10.7": 0.0}})})
    with pytest.raises(InputError, match="expected a weight > 0"):
        scenario.with_policy(zero)


@pytest.mark.parametrize("method", ["levels", "weighted"])
def test_run_files_name_every_file_a_run_writes_with_the_schema_columns(tmp_path, method):
    """RUN_FILES lacked levels.csv, level_duals.csv and stage_duals.csv; every table a run
    writes has the columns its output schema declares."""
    from gcm_fund.outputs.destination import RUN_FILES
    from gcm_fund.outputs.schema import COVERAGE_COLUMNS, OUTPUT_TABLES

    inputs, policy = small_case(tmp_path, method)
    out = engine.write(engine.run(load_scenario(inputs, policy)), tmp_path / "run")
    tables = sorted(p.name for p in out.glob("*.csv"))
    assert set(tables) <= set(OUTPUT_TABLES) and {p.name for p in out.iterdir()} <= RUN_FILES
    assert ("levels.csv" in tables) == (method == "levels")
    for name in tables:
        header = (out / name).read_text(encoding="utf-8").splitlines()[0].split(",")
        expected = OUTPUT_TABLES[name].column_names
        if name == "coverage.csv" and method == "weighted":
            expected = COVERAGE_COLUMNS
        assert tuple(header) == expected, name


def test_writing_a_transformed_run_by_its_id_leaves_the_original_run_folder(
        scenario, tmp_path, monkeypatch):
    """With the original's run id, `api.write` with no `out` replaced the real run's
    outputs/<run_id>/ with the transformed run."""
    monkeypatch.chdir(tmp_path)
    base = api.write(engine.run(scenario))
    before = (base / "inputs" / "sources.csv").read_bytes()
    halved = api.write(engine.run(scenario.with_pledges({"bank_b": 6.25e6})))
    assert halved != base and base.is_dir() and halved.is_dir()
    assert (base / "inputs" / "sources.csv").read_bytes() == before
    assert certify(base).ok and certify(halved).ok


def test_a_table_the_output_schema_does_not_declare_is_refused_not_dropped(scenario, tmp_path):
    import dataclasses

    import pandas as pd

    from gcm_fund.outputs.results import RunTables

    @dataclasses.dataclass
    class WithExtra(RunTables):
        extra_summary: pd.DataFrame | None = None

    run = engine.run(scenario)
    run.tables = WithExtra(**vars(run.tables), extra_summary=pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="extra_summary"):
        engine.write(run, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_scenarios_of_the_same_content_have_the_same_canonical_identity(tmp_path):
    first = load_scenario(*small_case(tmp_path / "a"))
    inputs, policy = small_case(tmp_path / "b")
    # The same rows in another order and spelling, the same policy written otherwise.
    text = (inputs / "gaps.csv").read_text(encoding="utf-8").splitlines()
    (inputs / "gaps.csv").write_text("\n".join([text[0], *reversed(text[1:])]).replace(
        "25000000", "2.5e7") + "\n", encoding="utf-8")
    policy.write_text('name = "x"\n\n[allocation]\nmethod = "levels"  # spaced otherwise\n',
                      encoding="utf-8")
    second = load_scenario(inputs, policy)
    assert second.identity != first.identity
    assert second.canonical().identity != first.canonical().identity  # named otherwise
    renamed = second.with_policy(second.policy.model_copy(update={"name": "small"}))
    assert renamed.canonical().identity == first.canonical().identity
    assert first.canonical().canonical().identity == first.canonical().identity
