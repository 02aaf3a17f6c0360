"""certify cannot be fooled (issue 9 items 4 and 5) and reads the stage-2 bound on z the
run used (issue 10 item 2).

Each forgery edits one file of a real run folder the way a forger would; the `rehashed`
variants also write the edited file's sha256 into manifest.json, so that only the
recomputation of the derived tables and figures can catch them. Every one must fail with
the file (and for tables the line and column) named.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cases import gap, source, state
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gcm_fund import api, audit
from gcm_fund.cli import app
from gcm_fund.spec import MAX_VALUE_PRECISION
from gcm_fund.synthetic import write_instance

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def baseline(bundled_run: Callable[..., Path]) -> Path:
    """The bundled example's run, shared by the session: copied before any forgery."""
    return bundled_run()


@pytest.fixture
def run(baseline: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(baseline, tmp_path / "run"))


@pytest.fixture
def weighted_baseline(bundled_run: Callable[..., Path]) -> Path:
    """The bundled example under section 4's weighted stage 2 (shared: copy it first)."""
    return bundled_run(method="weighted")


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "manifest.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def rehash(folder: Path, name: str) -> None:
    """Write the edited file's sha256 into the manifest, as a careful forger would."""
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    edit_manifest(folder, lambda m: m["files"].__setitem__(name, digest))


def edit_cell(name: str, pick: Callable[[dict[str, str]], bool], column: str,
              value: Callable[[str], str]) -> Callable[[Path], int]:
    """Change one cell; returns the line (header = 1) it was on."""
    def tamper(folder: Path) -> int:
        rows = read(folder / name)
        index = next(i for i, r in enumerate(rows) if pick(r))
        rows[index][column] = value(rows[index][column])
        write(folder / name, rows)
        return index + 2
    return tamper


def certify_fails(folder: Path, *phrases: str) -> str:
    status, output = cli("certify", folder)
    assert status == 1, output
    assert output.splitlines()[-1].startswith("NOT certified:"), output
    for phrase in phrases:
        assert phrase in output, f"{phrase!r} not in\n{output}"
    return output


def _budget(r: dict[str, str]) -> bool:
    return r["family"] == "budget" and float(r["dual"]) > 0


def _funded(r: dict[str, str]) -> bool:
    return float(r["allocated_usd"]) > 0


def _any(r: dict[str, str]) -> bool:
    return True


# ---------------------------------------------------------------------------------------
# item 4: non-finite and absurd values


@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "-inf", "1e400"])
def test_certify_refuses_a_non_finite_or_absurd_dual(run: Path, value: str) -> None:
    line = edit_cell("constraints.csv", _budget, "dual", lambda d: value)(run)
    rehash(run, "constraints.csv")
    certify_fails(run, "FAIL numbers", f"constraints.csv:{line}: dual: {value!r}"
                  if value != "1e308" else f"constraints.csv:{line}: dual: 1e308 is absurd")


def test_certify_refuses_an_inf_dual_even_where_the_gap_would_hide_it(
        weighted_baseline: Path, tmp_path: Path) -> None:
    # Section 4's stage 2: the gap's tolerance once grew with |dual objective|: an inf dual
    # made it infinite.
    run = Path(shutil.copytree(weighted_baseline, tmp_path / "run"))
    edit_cell("constraints.csv", _budget, "dual", lambda d: "inf")(run)
    rehash(run, "constraints.csv")
    output = certify_fails(run, "FAIL constraints.csv rows", "dual is not a finite number")
    assert "tolerance: 1e-6 of max(|sum w x|, 1)" in output


@pytest.mark.parametrize("value", ["inf", "-inf"])
def test_certify_refuses_an_inf_level_dual(run: Path, value: str) -> None:
    """The levels analogue: a step's dual in level_duals.csv made infinite (a -inf on a
    `<=` row would otherwise be zeroed as wrong-signed) fails the step's proof by name,
    not only the numbers check."""
    def first_step_budget(r: dict[str, str]) -> bool:
        return r["step"] == "1" and r["name"].startswith("budget[")

    edit_cell("level_duals.csv", first_step_budget, "dual", lambda d: value)(run)
    rehash(run, "level_duals.csv")
    certify_fails(run, "FAIL levels: each step optimal",
                  "step 1: budget[adb]: dual is not a number")


def test_certify_refuses_a_non_finite_manifest_number(run: Path) -> None:
    path = run / "manifest.json"
    path.write_text(path.read_text().replace('"stage2_reduced_cost": ',
                                             '"stage2_reduced_cost": Infinity, "x": '))
    certify_fails(run, "FAIL numbers", "manifest.json: floor_variable.stage2_reduced_cost: "
                  "inf is not a finite number")


def test_certify_refuses_an_absurd_amount(run: Path) -> None:
    edit_cell("allocations.csv", _any, "amount_usd", lambda a: "1" + "0" * 40 + ".00")(run)
    rehash(run, "allocations.csv")
    certify_fails(run, "FAIL numbers", "is absurd", "FAIL rule budget")


# ---------------------------------------------------------------------------------------
# item 5: forged files, with and without the manifest's hash rewritten


FORGERIES = {
    "report.html": (lambda f: (f / "report.html").write_text(
        (f / "report.html").read_text().replace("<h1>", "<h1>Approved: ", 1)),
        "report.html differs from the page these files give, from byte"),
    "sources_summary pledge": (edit_cell("sources_summary.csv", _any, "pledge_usd",
                                         lambda v: f"{float(v) + 1e6:.2f}"),
                               "sources_summary.csv:{line}: adb: pledge_usd"),
    "sources_summary marginal value": (edit_cell("sources_summary.csv", _any, "marginal_value",
                                                 lambda v: "0.5"),
                                       "sources_summary.csv:{line}: adb: marginal_value"),
    "coverage coverage": (edit_cell("coverage.csv", _funded, "coverage",
                                    lambda v: f"{min(1.0, float(v) + 0.1):.6f}"),
                          "coverage.csv:{line}: AGO,10.7: coverage"),
    "coverage need": (edit_cell("coverage.csv", _any, "need_usd",
                                lambda v: f"{float(v) * 2:.2f}"),
                      "coverage.csv:{line}: AFG,10.7: need_usd"),
    "coverage eligible": (edit_cell("coverage.csv", _any, "eligible",
                                    lambda v: "true" if v == "false" else "false"),
                          "coverage.csv:{line}: AFG,10.7: eligible 'true', recomputed false"),
    "coverage allocated": (edit_cell("coverage.csv", _funded, "allocated_usd",
                                     lambda v: f"{float(v) + 5:.2f}"),
                           "coverage.csv:{line}: AGO,10.7: allocated_usd"),
}


@pytest.mark.parametrize("forgery,rehashed", [
    *((f, False) for f in FORGERIES), *((f, True) for f in FORGERIES)])
def test_certify_names_a_forged_file(run: Path, forgery: str, rehashed: bool) -> None:
    tamper, named = FORGERIES[forgery]
    line = tamper(run)
    name = forgery.split()[0]
    name = name if name.endswith(".html") else f"{name}.csv"
    if not rehashed:
        certify_fails(run, "FAIL files", f"{name}: sha256", "changed after the run")
        return
    # With the hash rewritten too, only the recomputation (for report.html: the page rendered
    # again from the certified files) can tell.
    rehash(run, name)
    certify_fails(run, f"FAIL {name}", named.format(line=line))


@pytest.mark.parametrize("change,phrase", [
    (lambda m: m.__setitem__("run_id", "0123456789abcdef"),
     "manifest.json: run_id '0123456789abcdef' is not the id of these inputs"),
    (lambda m: m["model"].__setitem__("name", "approved"),
     "manifest.json: model.name 'approved' is not the policy's name 'baseline'"),
    (lambda m: m["totals"].__setitem__("allocated_usd", 3e9),
     "manifest.json: totals.allocated_usd 3000000000.0, recomputed 2015000000.00"),
    (lambda m: m["totals"].__setitem__("pledged_usd", 1.0),
     "manifest.json: totals.pledged_usd 1.0, recomputed 2015000000.00"),
    (lambda m: m["totals"].__setitem__("fundable_usd", "lots"),
     "manifest.json: totals.fundable_usd 'lots', recomputed"),
], ids=["run_id", "policy-name", "allocated-total", "pledged-total", "fundable-not-a-number"])
def test_certify_names_a_forged_manifest_figure(run: Path, change: Callable[[dict], None],
                                                phrase: str) -> None:
    edit_manifest(run, change)
    certify_fails(run, "FAIL manifest figures", phrase)


def test_certify_names_a_file_the_run_did_not_write(run: Path) -> None:
    (run / "notes.csv").write_text("a,b\n1,2\n")
    certify_fails(run, "FAIL files", "notes.csv: not written by the run")


def test_certify_names_a_listed_file_that_is_gone(run: Path) -> None:
    (run / "report.html").unlink()
    certify_fails(run, "FAIL files", "report.html: listed in manifest.json but missing")


def test_certify_refuses_a_manifest_without_file_hashes(run: Path) -> None:
    edit_manifest(run, lambda m: m.pop("files"))
    certify_fails(run, "FAIL files", "manifest.json lists no files", "FAIL manifest",
                  "manifest.json: no files")


def test_the_manifest_lists_every_file_the_run_wrote(baseline: Path) -> None:
    manifest = json.loads((baseline / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(baseline).as_posix() for p in baseline.rglob("*")
                     if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((baseline / name).read_bytes()).hexdigest() == digest


# ---------------------------------------------------------------------------------------
# issue 10 item 2: the stage-2 bound on z as the run used it


def two_thirds(write_case: Callable[..., tuple[Path, Path]], tmp_path: Path,
               tolerance: float) -> tuple[Path, Path]:
    """One LIC gap of 3 M and a pledge of 2 M: z* = 2/3, which 8 digits round up."""
    return write_case(tmp_path, states=[state("AAA", "LIC"), state("BBB", "LIC")],
                      gaps=[gap("AAA", "10.7", 3e6), gap("BBB", "10.7", 3e6)],
                      sources=[source("g1", 4e6)],
                      policy={"equity": {"tolerance": tolerance}})


def test_certify_passes_a_cbc_run_with_a_tiny_tolerance_and_a_floor_of_two_thirds(
        write_case: Callable[..., tuple[Path, Path]], tmp_path: Path) -> None:
    inputs, policy = two_thirds(write_case, tmp_path, 1e-12)
    out = api.write(api.allocate(inputs, policy, "cbc"), tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["solver"]["value_precision"] == MAX_VALUE_PRECISION
    floor = manifest["objective"]["floor"]
    assert abs(floor - 2 / 3) < 1e-8
    low = manifest["floor_variable"]["stage2_bounds"][0]
    assert low == pytest.approx(floor - 1e-8 * floor, abs=1e-15)
    assert manifest["floor_variable"]["stage2_widening"] > 0
    cert = audit.certify(out)
    assert cert.ok, "\n".join(cert.lines())


def test_certify_refuses_a_widening_wider_than_the_rule(
        write_case: Callable[..., tuple[Path, Path]], tmp_path: Path) -> None:
    inputs, policy = two_thirds(write_case, tmp_path, 1e-12)
    out = api.write(api.allocate(inputs, policy, "cbc"), tmp_path / "run")
    edit_manifest(out, lambda m: m["solver"].__setitem__("value_precision", 1e-3))
    certify_fails(out, "FAIL rule floor", "solver.value_precision 0.001 is outside [0, 1e-08]")
    edit_manifest(out, lambda m: m["solver"].__setitem__("value_precision", 0.0))
    certify_fails(out, "FAIL rule floor", "stage-2 bounds of z")


@settings(max_examples=6)
@given(exponent=st.floats(-12, -2), min_floor=st.sampled_from([0.0, 0.1, 2 / 3]),
       seed=st.integers(0, 50), solver=st.sampled_from(["highs", "cbc"]))
def test_certify_passes_across_random_tolerances(exponent: float, min_floor: float,
                                                 seed: int, solver: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        inputs = write_instance(folder / "inputs", 6, 3, 4, seed=seed)
        policy = folder / "p.toml"
        policy.write_text(f"[equity]\ntolerance = {10 ** exponent!r}\n"
                          f"min_floor = {min_floor!r}\n")
        try:
            run = api.allocate(inputs, policy, solver)
        except Exception as exc:  # a min_floor the instance cannot meet
            from gcm_fund.errors import InfeasibleError

            assert isinstance(exc, InfeasibleError)
            return
        out = api.write(run, folder / "run")
        cert = audit.certify(out)
        assert cert.ok, "\n".join(cert.lines())


def test_certify_renders_report_html_again(baseline: Path) -> None:
    cert = audit.certify(baseline)
    check = next(c for c in cert.checks if c.name == "report.html")
    assert check.ok and check.figure == "the page these files give, rendered again"


def test_a_page_from_another_tool_version_is_held_to_its_hash(run: Path) -> None:
    edit_manifest(run, lambda m: m["versions"].__setitem__("plotly", "0.0.1"))
    cert = audit.certify(run)
    assert cert.ok, "\n".join(cert.lines())
    check = next(c for c in cert.checks if c.name == "report.html")
    assert "with plotly 0.0.1" in check.figure and "held to its sha256 only" in check.figure
