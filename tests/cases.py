"""Writing small instances from Python lists and reading run folders back, for tests.

A test states its instance the way a hand-worked example is written down:

    inputs, policy = write_case(
        tmp_path,
        states=[state("KEN", "LIC"), state("MEX", "UMIC", absorption_usd=3e6)],
        gaps=[gap("KEN", "10.7", 2e6), gap("MEX", "8.8", 1e6)],
        sources=[source("wb_ida", 5e6, instrument="loan", grant_element=0.4)],
        policy='[equity]\\ngroup = "ldc"\\n',
    )

`write_case` writes exactly the cells it is given (a test of a missing column leaves the key
out); `state`, `gap` and `source` fill the required columns with plain defaults.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Rows = Iterable[Mapping[str, Any]] | str


def cell(value: Any) -> str:
    """One CSV cell as a user would type it: lists joined by ';', booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return ";".join(cell(v) for v in items)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def write_rows(path: Path, rows: Rows) -> Path:
    """A CSV file from dicts (the header is every key, in first-seen order) or raw text."""
    if isinstance(rows, str):
        path.write_text(rows, encoding="utf-8")
        return path
    rows = list(rows)
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell(row.get(name)) for name in header])
    return path


def toml_text(document: Mapping[str, Any]) -> str:
    """A small TOML writer for policies given as nested dicts (every key quoted)."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item)
        if isinstance(item, str):
            return json.dumps(item)
        raise TypeError(f"cannot write {item!r} as a TOML value")

    lines: list[str] = []

    def table(prefix: tuple[str, ...], body: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in body.items() if isinstance(v, Mapping)}
        if prefix:
            lines.append("[" + ".".join(json.dumps(p) for p in prefix) + "]")
        lines.extend(f"{json.dumps(str(k))} = {value(v)}" for k, v in scalars.items())
        for key, sub in tables.items():
            table((*prefix, str(key)), sub)

    table((), document)
    return "\n".join(lines) + "\n"


def write_case(tmp_path: Path, *, states: Rows, gaps: Rows, sources: Rows,
               policy: str | Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write `inputs/{states,gaps,sources}.csv` and `policy.toml` under `tmp_path`.

    Each table is a list of dicts (written as given) or the raw text of the file. The
    policy is TOML text, a nested dict, or None for an empty file (all defaults).
    Returns (inputs folder, policy file).
    """
    inputs = Path(tmp_path) / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    write_rows(inputs / "states.csv", states)
    write_rows(inputs / "gaps.csv", gaps)
    write_rows(inputs / "sources.csv", sources)
    policy_path = Path(tmp_path) / "policy.toml"
    if policy is None:
        text = ""
    elif isinstance(policy, str):
        text = policy
    else:
        text = toml_text(policy)
    policy_path.write_text(text, encoding="utf-8")
    return inputs, policy_path


def state(iso3: str, income_group: str = "LIC", region: str = "Africa", **extra: Any
          ) -> dict[str, Any]:
    """A states.csv row with the required columns filled in."""
    return {"iso3": iso3, "name": f"State {iso3}", "region": region,
            "income_group": income_group, **extra}


def gap(iso3: str, target: str, need_usd: float) -> dict[str, Any]:
    """A gaps.csv row."""
    return {"iso3": iso3, "target": target, "need_usd": need_usd}


def source(source_id: str, pledge_usd: float, instrument: str = "grant", **extra: Any
           ) -> dict[str, Any]:
    """A sources.csv row; kind defaults to `ifi` for a loan, `donor` for a grant."""
    kind = extra.pop("kind", "ifi" if instrument == "loan" else "donor")
    return {"source_id": source_id, "name": f"Source {source_id}", "kind": kind,
            "instrument": instrument, "pledge_usd": pledge_usd, **extra}


def weighted_policy(folder: Path, name: str = "baseline") -> Path:
    """A copy of the bundled `models/<name>.toml` under section 4's weighted stage 2
    (`[allocation] method = "weighted"`), written into `folder`: for tests about section 4,
    now that every bundled policy uses priority levels (section 4b)."""
    from gcm_fund import api

    text = Path(api.project_path(f"models/{name}.toml")).read_text(encoding="utf-8")
    stated = 'method = "levels"'
    assert text.count(stated) == 1, f"models/{name}.toml: no single {stated!r} line"
    path = Path(folder) / "weighted_policy" / f"{name}_weighted.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(stated, 'method = "weighted"'), encoding="utf-8")
    return path


def bundled_policy(folder: Path, name: str = "baseline",
                   tables: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """A copy of the bundled `models/<name>.toml` with the keys a test depends on set, e.g.
    `{"equity": {"floor_share": 1.0}, "weights.income": {"LIC": 1.1}}`: each key's line in
    its `[table]` is replaced (or added below the header), so the test keeps its premise
    when the bundled policy's values change. Written as `folder/policy/<name>.toml`."""
    from gcm_fund import api

    lines = Path(api.project_path(f"models/{name}.toml")).read_text(
        encoding="utf-8").splitlines()
    for table, keys in (tables or {}).items():
        header = f"[{table}]"
        assert lines.count(header) == 1, f"models/{name}.toml: no single {header} line"
        start = lines.index(header) + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")),
                   len(lines))
        for key, item in keys.items():
            line = toml_text({key: item}).strip()
            found = [i for i in range(start, end)
                     if lines[i].split("=")[0].strip().strip('"') == key]
            assert len(found) <= 1, f"models/{name}.toml: {key} twice in {header}"
            if found:
                lines[found[0]] = line
            else:
                lines.insert(start, line)
                end += 1
    path = Path(folder) / "policy" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Reading a run folder back


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of the raw cell text."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: str) -> float:
    """A cell as a float; blank is NaN."""
    return math.nan if text == "" else float(text)


@dataclass
class RunFiles:
    """The files of a run folder as written, with the raw text kept for format checks."""

    folder: Path
    manifest: dict[str, Any]
    allocations: list[dict[str, str]]
    coverage: list[dict[str, str]]
    sources_summary: list[dict[str, str]]
    constraints: list[dict[str, str]]

    @property
    def floor(self) -> float | None:
        """`objective.floor` of the manifest."""
        return self.manifest["objective"]["floor"]

    @property
    def weighted(self) -> float:
        """`objective.weighted` of the manifest (USD)."""
        return float(self.manifest["objective"]["weighted"])

    def row(self, name: str) -> dict[str, float]:
        """One row of constraints.csv by name, numbers parsed (keys left out)."""
        found = [r for r in self.constraints if r["name"] == name]
        assert len(found) == 1, f"{name}: {len(found)} rows in constraints.csv"
        text = {"name", "family", "source_id", "iso3", "target"}
        return {k: number(v) for k, v in found[0].items() if k not in text}

    def dual(self, name: str) -> float:
        """The dual of one row of constraints.csv."""
        return self.row(name)["dual"]

    def row_names(self) -> list[str]:
        """Every name in constraints.csv, in file order."""
        return [r["name"] for r in self.constraints]

    def marginal_value(self, source_id: str) -> float:
        """`marginal_value` of one source in sources_summary.csv (NaN when blank)."""
        found = [r for r in self.sources_summary if r["source_id"] == source_id]
        assert len(found) == 1, f"{source_id}: {len(found)} rows in sources_summary.csv"
        return number(found[0]["marginal_value"])

    def amounts(self) -> dict[tuple[str, str, str], float]:
        """allocations.csv as {(source_id, iso3, target): amount_usd}."""
        return {(r["source_id"], r["iso3"], r["target"]): float(r["amount_usd"])
                for r in self.allocations}


def read_run(folder: Path | str) -> RunFiles:
    """Read the CSV tables and the manifest of a run folder."""
    folder = Path(folder)
    return RunFiles(
        folder=folder,
        manifest=json.loads((folder / "manifest.json").read_text(encoding="utf-8")),
        allocations=read_csv(folder / "allocations.csv"),
        coverage=read_csv(folder / "coverage.csv"),
        sources_summary=read_csv(folder / "sources_summary.csv"),
        constraints=read_csv(folder / "constraints.csv"),
    )


def allocate_and_read(inputs: Path, policy: Path, out: Path, solver: str = "highs"
                      ) -> RunFiles:
    """`api.allocate` then `api.write` into `out`, and the files read back."""
    from gcm_fund import api

    run = api.allocate(inputs, policy, solver=solver)
    api.write(run, out)
    return read_run(out)


# ---------------------------------------------------------------------------------------
# The command line, in-process


def run_cli(*args: str | Path, cwd: Path | None = None, columns: int | None = None
            ) -> subprocess.CompletedProcess[str]:
    """`gcm-fund ARGS` run in-process by Typer's CliRunner, as a CompletedProcess (its
    `returncode`, `stdout` and `stderr` apart) so that a test reads it as a shell would.

    `cwd` is the working folder for the command (restored after), `columns` the terminal
    width Rich lays tables out for. Real subprocesses are for exit statuses as a shell
    sees them, signals and the README's commands.
    """
    from typer.testing import CliRunner

    from gcm_fund.cli.app import app

    command = [str(a) for a in args]
    runner = CliRunner(env={"COLUMNS": str(columns)} if columns else None)
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = runner.invoke(app, command, catch_exceptions=False)
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["gcm-fund", *command], result.exit_code,
                                       result.stdout, result.stderr)


def reseal(folder: Path | str) -> Path:
    """Make an edited run folder consistent again, as a careful forger would: the inputs'
    hashes and the run id recomputed from the copies, report.html rendered again from the
    files, and every file's sha256 written into manifest.json."""
    import hashlib

    from gcm_fund.model.spec import run_id
    from gcm_fund.outputs import page as html_report
    from gcm_fund.outputs.page_folder import read_folder

    folder = Path(folder)

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["inputs"] = {p.name: digest(p) for p in sorted((folder / "inputs").iterdir())}
    manifest["run_id"] = run_id(manifest["inputs"], digest(folder / "policy.toml"),
                                manifest["solver"]["name"], manifest["solver"]["version"])
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (folder / html_report.REPORT_FILE).write_bytes(html_report.render(read_folder(folder)))
    manifest["files"] = {p.relative_to(folder).as_posix(): digest(p)
                         for p in sorted(folder.rglob("*"))
                         if p.is_file() and p.name != "manifest.json"}
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


def example_policies() -> list[Path]:
    """models/*.toml that allocate the bundled example (inputs/): every policy but those
    of the programmes method, whose pipeline (programmes.csv) is scenarios/mptf_scale's."""
    from gcm_fund.inputs.policy_file import load_policy
    from gcm_fund.methods.strategy import PROGRAMMES, method_of

    models = Path(__file__).resolve().parents[1] / "models"
    return [path for path in sorted(models.glob("*.toml"))
            if method_of(load_policy(path).policy) is not PROGRAMMES]
