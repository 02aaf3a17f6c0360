"""The optional meta.toml of an input folder (the illustrative flag): loaded, copied into
the run folder byte for byte, recorded in the manifest, and said first by the printed
summary and the report; absent or false, nothing is said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cases import gap, source, state
from typer.testing import CliRunner

from gcm_fund import audit
from gcm_fund.cli.app import app

NOTICE = "ILLUSTRATIVE DATA"


def _case(tmp_path: Path, write_case, meta: str | None) -> tuple[Path, Path]:
    inputs, policy = write_case(tmp_path, states=[state("KEN", "LIC")],
                                gaps=[gap("KEN", "10.7", 2e6)],
                                sources=[source("don", 1e6)])
    if meta is not None:
        (inputs / "meta.toml").write_bytes(meta.encode("utf-8"))
    return inputs, policy


def _allocate(inputs: Path, policy: Path, out: Path):
    return CliRunner().invoke(app, ["allocate", str(inputs), "--model", str(policy),
                                    "--out", str(out)])


def test_an_illustrative_run_says_so_first_and_records_it(tmp_path, write_case):
    meta = 'illustrative = true\r\ndescription = "Invented pledges."\r\n'  # CRLF kept as read
    inputs, policy = _case(tmp_path, write_case, meta)
    out = tmp_path / "run"
    result = _allocate(inputs, policy, out)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == ("ILLUSTRATIVE DATA: these inputs are an example, not real pledges or "
                     "costings. Invented pledges.")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["illustrative"] is True
    assert manifest["description"] == "Invented pledges."
    assert (out / "inputs" / "meta.toml").read_bytes() == meta.encode("utf-8")
    assert "meta.toml" in manifest["inputs"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.index(NOTICE) < page.index("<h2>")
    assert audit.certify(out).ok


@pytest.mark.parametrize("meta", [None, "illustrative = false\n", 'description = "x"\n'],
                         ids=["absent", "false", "description-only"])
def test_real_data_carry_no_label(tmp_path, write_case, meta):
    inputs, policy = _case(tmp_path, write_case, meta)
    out = tmp_path / "run"
    result = _allocate(inputs, policy, out)
    assert result.exit_code == 0, result.output
    assert NOTICE not in result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "illustrative" not in manifest
    assert NOTICE not in (out / "report.html").read_text(encoding="utf-8")
    assert (out / "inputs" / "meta.toml").exists() == (meta is not None)


@pytest.mark.parametrize(("meta", "message"), [
    pytest.param("illustrative = 1\n",
                 "meta.toml:1: illustrative: got 1, expected true or false", id="not-a-bool"),
    pytest.param("illustrative = true\nsource = 'x'\n",
                 "meta.toml:2: source: unknown key, expected one of illustrative, description",
                 id="unknown-key"),
    pytest.param("illustrative = \n", "meta.toml:1: not valid TOML: Invalid value",
                 id="not-toml"),
])
def test_a_bad_meta_file_is_bad_input(tmp_path, write_case, meta, message):
    inputs, policy = _case(tmp_path, write_case, meta)
    out = tmp_path / "run"
    result = _allocate(inputs, policy, out)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
