"""The library behind the command line: one `api` function per command, returning a result
object, doing everything a command does (the CLI only parses, prints and maps errors)."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path

import pytest

from gcm_fund import api
from gcm_fund.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny"


def test_every_command_has_one_api_function():
    commands = {(c.name or c.callback.__name__).replace("-", "_"): c.callback
                for c in cli.app.registered_commands if c.callback is not None}
    for name in ("validate", "allocate", "sweep", "fair_share", "compare", "certify",
                 "verify", "explain", "diff"):
        assert callable(getattr(api, name)), name
        assert getattr(api, name).__doc__, name
        assert re.search(rf"\bapi\.{name}\(", inspect.getsource(commands[name])), name
    for name, callback in commands.items():
        called = set(re.findall(r"\bapi\.(\w+)\(", inspect.getsource(callback)))
        assert len(called) == 1, f"{name} calls {sorted(called)}"


def test_the_cli_writes_no_file_itself():
    source = Path(cli.__file__).read_text(encoding="utf-8")
    assert not re.search(r"write_text|write_bytes|atomic_folder|write_atomic|(?<!os\.)\bopen\(",
                         source)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in ("states.csv", "gaps.csv", "sources.csv"):
        shutil.copyfile(TINY / name, folder / name)
    return folder


def test_each_api_function_returns_its_result(inputs: Path, tmp_path: Path):
    policy = TINY / "policy.toml"
    figures = api.validate(inputs, policy)
    assert (figures.states, figures.gaps, figures.sources) == (3, 4, 2)

    run = api.allocate(inputs, policy, out=tmp_path / "run")
    assert run.folder == tmp_path / "run"
    assert (run.folder / "manifest.json").is_file()
    assert api.certify(run.folder).ok
    assert api.verify(run.folder).ok
    assert api.diff(run.folder, run.folder).same
    assert api.explain(run.folder, "KEN").lines()[0].startswith("KEN")

    swept = api.sweep(inputs, ["deu"], "0:2e7:3", tmp_path / "s.csv", model=policy,
                      chart=False)
    assert [p.name for p in swept.written] == ["s.csv", "s.breakpoints.csv"]
    assert [level.pledge_usd for level in swept.result.levels] == [0.0, 1e7, 2e7]

    shares = api.fair_share(inputs, tmp_path / "f.csv", model=policy)
    assert shares.written == tmp_path / "f.csv"
    assert list(shares.table["donor_iso3"]) == ["DEU"]

    compared = api.compare(inputs, tmp_path / "c.csv", [policy])
    assert compared.written == tmp_path / "c.csv"
    assert [s.status for s in compared.result.scenarios] == ["optimal"]


def test_library_outputs_are_optional(inputs: Path, tmp_path: Path):
    """Without `out`, nothing is written: the result is only returned."""
    before = sorted(tmp_path.rglob("*"))
    api.sweep(inputs, ["deu"], [1e6], model=TINY / "policy.toml")
    api.fair_share(inputs, model=TINY / "policy.toml")
    api.compare(inputs, None, [TINY / "policy.toml"])
    assert api.allocate(inputs, TINY / "policy.toml").folder is None
    assert sorted(tmp_path.rglob("*")) == before


def _add_an_unknown_column(inputs: Path) -> None:
    """A `colour` column in states.csv: a warning, not an error."""
    states = inputs / "states.csv"
    lines = states.read_text(encoding="utf-8").splitlines()
    states.write_text("\n".join([lines[0] + ",colour", *(line + ",blue" for line in lines[1:])])
                      + "\n", encoding="utf-8")


def _assert_warned_then_failed(code: int, stderr: str, reason: str) -> None:
    assert code == 2
    warning, error = stderr.splitlines()
    assert warning.startswith("warning: ") and "colour" in warning
    assert error.startswith("error: ") and reason in error


def test_fair_share_shows_the_inputs_warnings_even_when_it_then_fails(inputs: Path):
    _add_an_unknown_column(inputs)
    code, _, stderr = _cli("fair-share", inputs, "-m", TINY / "policy.toml", "--basis",
                           "gni-per-capita-adjusted", "--out", inputs.parent / "f.csv")
    _assert_warned_then_failed(code, stderr, "population")
    assert not (inputs.parent / "f.csv").exists()


def _cli(*args: object) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_compare_shows_the_warnings_before_it_solves(inputs: Path):
    _add_an_unknown_column(inputs)
    code, _, stderr = _cli("compare", inputs, "-m", TINY / "policy.toml", "--solver",
                           "no_such_solver", "--out", inputs.parent / "c.csv")
    _assert_warned_then_failed(code, stderr, "no_such_solver")
    assert not (inputs.parent / "c.csv").exists()
