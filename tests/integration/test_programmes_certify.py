"""certify under programmes (SPEC 8): a clean run is certified; a funded programme below
its minimum, a swapped selection and a forged reason figure each fail, the programme named.

Each forgery also writes the edited files' sha256 into the manifest, so that only the
programme checks can catch it."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cases import gap, source, state, write_case, write_rows

from gcm_fund import audit, engine
from gcm_fund.model.scenario import load_scenario


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("programmes")
    inputs, policy = write_case(tmp, states=[state("AAA"), state("BBB"), state("CCC")],
                                gaps=[gap(s, "10.7", 8e6) for s in ("AAA", "BBB", "CCC")],
                                sources=[source("fund", 10e6)],
                                policy='[allocation]\nmethod = "programmes"\n')
    write_rows(inputs / "programmes.csv", [
        {"programme_id": "p1", "name": "P1", "states": "AAA", "targets": "10.7",
         "budget_usd": 6e6},
        {"programme_id": "p2", "name": "P2", "states": "BBB", "targets": "10.7",
         "budget_usd": 5e6, "quality": 0.9},
        {"programme_id": "p3", "name": "P3", "states": "CCC", "targets": "10.7",
         "budget_usd": 5e6, "quality": 0.9}])
    return engine.write(engine.run(load_scenario(inputs, policy), "highs"), tmp / "run")


@pytest.fixture
def run(clean: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(clean, tmp_path / "run"))


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def rewrite(folder: Path, name: str, table: list[dict[str, str]]) -> None:
    """Write a forged table and its sha256 into the manifest, as a careful forger would."""
    with open(folder / name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def failures(folder: Path) -> dict[str, list[str]]:
    return {c.name: c.problems for c in audit.certify(folder).failed()}


def test_a_clean_programmes_run_is_certified_and_says_what_it_cannot_prove(clean: Path
                                                                             ) -> None:
    certificate = audit.certify(clean)
    assert certificate.ok, [c.lines() for c in certificate.failed()]
    assert certificate.lines()[-1].endswith("its optimality is verify's")
    check = next(c for c in certificate.checks if c.name == "selection optimal")
    assert check.figure.startswith("not proved by certify")


def test_a_funded_programme_below_its_minimum_fails(run: Path) -> None:
    rewrite(run, "programme_allocations.csv", [
        {"source_id": "fund", "programme_id": "p2", "amount_usd": "4000000.00"},
        {"source_id": "fund", "programme_id": "p3", "amount_usd": "5000000.00"}])
    rewrite(run, "allocations.csv", [
        {"source_id": "fund", "iso3": "BBB", "target": "10.7", "amount_usd": "4000000.00"},
        {"source_id": "fund", "iso3": "CCC", "target": "10.7", "amount_usd": "5000000.00"}])
    found = failures(run)
    assert found["programme sizes"] == [
        "p2: USD 4,000,000.00 is outside [min_usd, budget_usd] = [5,000,000.00, 5,000,000.00]"]


def test_a_swapped_selection_fails(run: Path) -> None:
    rewrite(run, "programme_allocations.csv", [
        {"source_id": "fund", "programme_id": "p1", "amount_usd": "6000000.00"}])
    rewrite(run, "allocations.csv", [
        {"source_id": "fund", "iso3": "AAA", "target": "10.7", "amount_usd": "6000000.00"}])
    problems = failures(run)["selection.csv"]
    assert "selection.csv:2: p1: funded false, but it receives USD 6,000,000.00" in problems
    assert "selection.csv:3: p2: funded true, but it receives USD 0.00" in problems


def test_a_forged_reason_figure_fails(run: Path) -> None:
    table = rows(run / "selection.csv")
    table[0]["reason"] = table[0]["reason"].replace("3,000,000.00", "1,000,000.00")
    rewrite(run, "selection.csv", table)
    (problem,) = failures(run)["selection.csv"]
    assert problem.startswith("selection.csv:2: p1: reason 'left_out: funding it at its "
                              "minimum USD 6,000,000.00 would lower the value by 1,000,000.00")


def test_explain_says_why_a_programme_was_left_out_and_lists_a_states_programmes(
        clean: Path, cli) -> None:
    result = cli("explain", clean, "--programme", "p1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "p1 (P1): in AAA, target 10.7",
        "  asked USD 6,000,000.00, at least USD 6,000,000.00; quality 1, priority 1, value "
        "per USD 1",
        "  left out: funding it at its minimum USD 6,000,000.00 would lower the value by "
        "3,000,000.00, displacing p2;p3"]
    result = cli("explain", clean, "--state", "BBB")
    assert result.stdout.splitlines()[-2:] == [
        "programmes naming BBB: 1", "  p2 (10.7, funded): USD 5,000,000.00 of USD 5,000,000.00"]
    result = cli("explain", clean, "--programme", "p9")
    assert result.returncode == 2
    assert "programme 'p9' is not in selection.csv" in result.stderr


def test_the_page_shows_the_selection(clean: Path) -> None:
    page = (clean / "report.html").read_text(encoding="utf-8")
    assert ('<section id="selection"><h2>Programmes</h2><p class="lead">2 of 3 programmes '
            "funded (0 in part), USD 10.0 m placed; the smallest funded programme "
            "USD 5.0 m.</p>") in page
    assert "<td>left_out: funding it at its minimum USD 6,000,000.00 would lower" in page


def test_the_workbook_shows_the_selection(clean: Path, tmp_path: Path) -> None:
    import openpyxl

    from gcm_fund.outputs.workbook import write_workbook

    book = openpyxl.load_workbook(write_workbook(clean, tmp_path / "run.xlsx"), read_only=True)
    for name in ("selection", "programme_allocations", "relaxation_duals"):
        assert name in book.sheetnames
    table = list(book["selection"].iter_rows(values_only=True))
    header = list(table[0])
    funded = {row[0]: row[header.index("funded")] for row in table[1:]}
    reasons = {row[0]: row[header.index("reason")].split(":")[0] for row in table[1:]}
    assert funded == {"p1": "false", "p2": "true", "p3": "true"}
    assert reasons == {"p1": "left_out", "p2": "funded", "p3": "funded"}
