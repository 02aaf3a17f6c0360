"""Damaged run folders never crash certify, explain, diff or verify (issue 9, item 6).

A real run folder of a small instance is damaged the ways files get damaged or forged:
files deleted, emptied, cut short, replaced by a folder, random bytes, bad cells (NaN, inf,
1e400, text), columns dropped or repeated, rows repeated or cut, a manifest nested
thousands of levels deep, a manifest section of the wrong type, non-finite JSON numbers.
Each damaged folder goes through `certify`, `explain` (of a State and of a source) and
`diff` in-process (and every
VERIFY_EVERY-th through `verify`): the exit status is 0, 1 or 2 with a message, never 70
and never a traceback; certify never says "certified" of a folder whose bytes changed.

Deterministic: the damages come from a seeded `random.Random`; the counts are printed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcm_fund import api
from gcm_fund.audit.checks import UNFORESEEN
from gcm_fund.cli.app import app
from gcm_fund.inputs.synthetic import write_instance

ROOT = Path(__file__).resolve().parents[2]
MUTATIONS = 160
VERIFY_EVERY = 16
SEED = 20261130

BAD_CELLS = ["inf", "-inf", "nan", "NaN", "1e400", "1e308", "-1e308", "", " ", "abc", "-5",
             "0", "1" * 400, "\x00", "1,5", "true", "0x10", "=1+1", "😀", "-0.00"]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _csvs(folder: Path) -> list[Path]:
    return [p for p in _files(folder) if p.suffix == ".csv"]


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text(encoding="utf-8",
                                                       errors="replace").split("\n")]


def _put(path: Path, data: bytes) -> None:
    """Replace the file with new bytes, as a new file: a damaged folder's files are hard
    links to the original's until damaged, and writing through a link would damage the
    original too."""
    staged = path.with_name(f"{path.name}.new")
    staged.write_bytes(data)
    os.replace(staged, path)


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    _put(path, "\n".join(",".join(r) for r in rows).encode("utf-8"))


# Each damage changes the folder and returns a short description.


def delete_file(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_files(folder))
    path.unlink()
    return f"delete {path.name}"


def empty_file(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_files(folder))
    _put(path, rng.choice([b"", b"\n", b"\x00", b"   \r\n"]))
    return f"empty {path.name}"


def truncate_file(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_files(folder))
    data = path.read_bytes()
    _put(path, data[: rng.randrange(len(data) + 1)])
    return f"truncate {path.name}"


def random_bytes(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_files(folder))
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    _put(path, bytes(data))
    return f"random bytes in {path.name}"


def folder_for_file(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_files(folder))
    path.unlink()
    path.mkdir()
    return f"a folder for {path.name}"


def bad_cell(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    row = rng.randrange(len(rows))
    if rows[row]:
        rows[row][rng.randrange(len(rows[row]))] = rng.choice(BAD_CELLS)
    _write_rows(path, rows)
    return f"bad cell in {path.name}"


def drop_column(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    index = rng.randrange(len(rows[0]))
    _write_rows(path, [r[:index] + r[index + 1:] for r in rows])
    return f"drop column {index} of {path.name}"


def repeat_column(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    index = rng.randrange(len(rows[0]))
    _write_rows(path, [r + [r[index]] if index < len(r) else r for r in rows])
    return f"repeat column {index} of {path.name}"


def rename_header(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    rows[0][rng.randrange(len(rows[0]))] = rng.choice(["", "x", "name", "dual", "ISO3"])
    _write_rows(path, rows)
    return f"rename a column of {path.name}"


def extra_field(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    rows[rng.randrange(len(rows))].append(rng.choice(["", "5", "x"]))
    _write_rows(path, rows)
    return f"extra field in {path.name}"


def rows_changed(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    rows = _rows(path)
    index = rng.randrange(len(rows))
    kind = rng.choice(["drop", "repeat", "swap", "header only"])
    if kind == "drop":
        del rows[index]
    elif kind == "repeat":
        rows.insert(index, list(rows[index]))
    elif kind == "swap":
        rows[0], rows[index] = rows[index], rows[0]
    else:
        rows = rows[:1]
    _write_rows(path, rows)
    return f"{kind} rows of {path.name}"


def stray_quote(folder: Path, rng: random.Random) -> str:
    path = rng.choice(_csvs(folder))
    data = path.read_bytes()
    index = rng.randrange(len(data) + 1)
    _put(path, data[:index] + b'"' + data[index:])
    return f"stray quote in {path.name}"


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _set_manifest(folder: Path, document: object) -> None:
    _put(folder / "manifest.json", json.dumps(document, allow_nan=True).encode("utf-8"))


def manifest_deep(folder: Path, rng: random.Random) -> str:
    depth = rng.choice([20, 900, 5000, 100_000])
    key = rng.choice(["objective", "solver", "files", "extra"])
    document = _manifest(folder)
    document[key] = None
    text = json.dumps(document)
    # Written as text: json itself cannot write what it cannot read back.
    nested = text.replace(f'"{key}": null', f'"{key}": ' + "[" * depth + "]" * depth)
    _put(folder / "manifest.json", nested.encode("utf-8"))
    return f"manifest {key} nested {depth} deep"


def _kind(value: object) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) \
        else type(value).__name__


def manifest_wrong_type(folder: Path, rng: random.Random) -> str:
    """A manifest value replaced by one of another JSON type (or a non-finite number)."""
    document = _manifest(folder)
    key = rng.choice(list(document))
    sub = document[key]
    candidates = [None, "x", [], {}, [1, 2, 3], True, float("inf"), float("nan")]
    if isinstance(sub, dict) and sub and rng.random() < 0.6:
        inner = rng.choice(list(sub))
        sub[inner] = rng.choice([v for v in candidates if _kind(v) != _kind(sub[inner])
                                 or isinstance(v, float)])
        where = f"{key}.{inner}"
    else:
        document[key] = rng.choice([v for v in candidates if _kind(v) != _kind(sub)
                                    or isinstance(v, float)])
        where = key
    _set_manifest(folder, document)
    return f"manifest {where} of another type"


def manifest_drop_key(folder: Path, rng: random.Random) -> str:
    document = _manifest(folder)
    key = rng.choice(list(document))
    del document[key]
    _set_manifest(folder, document)
    return f"manifest without {key}"


def manifest_not_object(folder: Path, rng: random.Random) -> str:
    _set_manifest(folder, rng.choice([[], "run", 5, None, [_manifest(folder)]]))
    return "manifest not an object"


def policy_damage(folder: Path, rng: random.Random) -> str:
    text = rng.choice(["[" * 5000, "a.b" + ".c" * 3000 + " = 1", "name = 5", "[equity]\n"
                       "tolerance = nan", "\xff\xfe", "x = [" + "[" * 3000])
    _put(folder / "policy.toml", text.encode("utf-8", errors="surrogateescape"))
    return "policy.toml damaged"


DAMAGES: list[Callable[[Path, random.Random], str]] = [
    delete_file, empty_file, truncate_file, random_bytes, folder_for_file, bad_cell,
    bad_cell, bad_cell, drop_column, repeat_column, rename_header, extra_field, rows_changed,
    stray_quote, manifest_deep, manifest_wrong_type, manifest_wrong_type, manifest_drop_key,
    manifest_not_object, policy_damage,
]


def damage(folder: Path, rng: random.Random) -> str:
    """One damage drawn at random; one an earlier damage made impossible is skipped."""
    chosen = rng.choice(DAMAGES)
    try:
        return chosen(folder, rng)
    except (OSError, ValueError, IndexError, RecursionError, AttributeError, TypeError):
        return f"skipped {chosen.__name__}"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def linked_copy(original: Path, folder: Path) -> Path:
    """The run folder with every file a hard link to the original's: no bytes copied (the
    page alone is megabytes); each damage replaces what it changes (`_put`)."""
    return Path(shutil.copytree(original, folder, copy_function=os.link))


def changed_from(folder: Path, original: Path, before: dict[str, bytes | None]) -> bool:
    """Whether the damaged folder's bytes differ from the original's; a file still linked
    to the original's is the same without reading it."""
    entries = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))}
    if set(entries) != set(before):
        return True
    for name, path in entries.items():
        if path.is_file() != (before[name] is not None):
            return True
        if path.is_file() and not path.samefile(original / name) \
                and path.read_bytes() != before[name]:
            return True
    return False


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz-run")
    inputs = write_instance(base / "inputs", 6, 3, 4, seed=3)
    policy = base / "policy.toml"
    policy.write_text('name = "fuzz"\n[thematic.min_share]\n"10.7" = 0.05\n')
    return api.write(api.allocate(inputs, policy), base / "run")


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_damaged_run_folders_never_crash(original: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    iso3 = next(line.split(",")[0] for line in
                (original / "inputs" / "states.csv").read_text().splitlines()[1:])
    source_id = next(line.split(",")[0] for line in
                     (original / "inputs" / "sources.csv").read_text().splitlines()[1:])
    before = snapshot(original)
    statuses: dict[str, Counter[int]] = {c: Counter() for c in
                                         ("certify", "explain", "explain --source", "diff",
                                          "verify")}
    kinds: Counter[str] = Counter()
    nets: Counter[str] = Counter()  # damage met by the net, not by a check that names it
    failures: list[str] = []
    for i in range(MUTATIONS):
        folder = linked_copy(original, tmp_path / f"m{i}")
        done = [damage(folder, rng) for _ in range(rng.choice([1, 1, 1, 2]))]
        kinds.update(d.split()[0] for d in done)
        changed = changed_from(folder, original, before)
        commands = {"certify": ("certify", folder),
                    "explain": ("explain", folder, "--state", iso3),
                    "explain --source": ("explain", folder, "--source", source_id),
                    "diff": ("diff", original, folder)}
        if i % VERIFY_EVERY == 0:
            commands["verify"] = ("verify", folder)
        for name, args in commands.items():
            status, output = invoke(*args)
            statuses[name][status] += 1
            nets[name] += UNFORESEEN in output or "a damaged run folder (" in output
            if status not in (0, 1, 2) or "Traceback" in output or "internal error" in output:
                failures.append(f"{name} after {done}: exit {status}: {output[-300:]}")
            elif name == "certify" and changed and status == 0:
                failures.append(f"certify passed a changed folder after {done}")
            elif status != 0 and not output.strip():
                failures.append(f"{name} after {done}: exit {status} without a message")
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nrun-folder fuzz: {MUTATIONS} damaged folders ({dict(sorted(kinds.items()))}); "
          + "; ".join(f"{c}: {dict(sorted(s.items()))}" for c, s in statuses.items())
          + f"; caught by the net only: {dict(nets)}")
    assert not failures, "\n".join(failures[:10]) + f"\n({len(failures)} failures)"
    # Every damage is named by a check or a reader, none left to the last-resort net.
    assert not sum(nets.values()), dict(nets)
    assert snapshot(original) == before  # no damage reached the original through a link


# ---------------------------------------------------------------------------------------
# The crashes of the issue, one by one


@pytest.fixture
def copy(original: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original, tmp_path / "run"))


def test_a_manifest_nested_thousands_deep_is_not_a_run_folder(copy: Path) -> None:
    text = (copy / "manifest.json").read_text()
    (copy / "manifest.json").write_text(text[:-2] + ', "x": ' + "[" * 100_000
                                        + "]" * 100_000 + "}\n")
    for args in (("certify", copy), ("explain", copy, "--state", "AAA"), ("verify", copy)):
        status, output = invoke(*args)
        assert (status, output.strip().endswith("(nested too deeply)")) == (2, True), output


def test_an_empty_allocations_table_is_not_certified(copy: Path) -> None:
    (copy / "allocations.csv").write_text("")
    status, output = invoke("certify", copy)
    assert status == 1, output
    assert "FAIL allocations: allocations.csv: empty (no header)" in output
    status, output = invoke("explain", copy, "--state", "AAA")
    assert (status, output) == (2, "error: allocations.csv: empty (no header)\n")


def test_a_table_without_a_column_is_named(copy: Path, original: Path) -> None:
    rows = _rows(copy / "constraints.csv")
    _write_rows(copy / "constraints.csv", [r[:-1] for r in rows])  # no dual
    status, output = invoke("certify", copy)
    assert status == 1 and "constraints.csv: lacks column dual" in output, output
    status, output = invoke("diff", original, copy)
    assert status == 1 and "table constraints.csv: " in output, output


def test_a_manifest_section_of_another_type_is_named(copy: Path, original: Path) -> None:
    document = _manifest(copy)
    document["solver"] = None
    document["objective"] = ["floor"]
    _set_manifest(copy, document)
    status, output = invoke("certify", copy)
    assert status == 1, output
    assert "manifest.json: solver is None, expected object" in output
    assert "manifest.json: objective is ['floor'], expected object" in output
    status, output = invoke("diff", original, copy)
    assert status == 1 and "solver: highs" in output and "-> None None" in output, output


def test_a_ragged_table_is_named(copy: Path) -> None:
    rows = _rows(copy / "allocations.csv")
    rows[2].append("5")
    _write_rows(copy / "allocations.csv", rows)
    status, output = invoke("certify", copy)
    assert status == 1 and "allocations.csv: not a CSV table" in output, output


def test_diff_compares_every_table(copy: Path, original: Path) -> None:
    rows = _rows(copy / "constraints.csv")
    budget = next(i for i, r in enumerate(rows) if r[1] == "budget")
    rows[budget][rows[0].index("dual")] = "0.123"
    _write_rows(copy / "constraints.csv", rows)
    summary = _rows(copy / "sources_summary.csv")
    summary[1][4] = "9"
    _write_rows(copy / "sources_summary.csv", summary)
    status, output = invoke("diff", original, copy)
    assert status == 1, output
    assert "totals by State: no change" in output
    assert "table constraints.csv: 1 rows changed, 0 added, 0 removed" in output
    assert f"  {rows[budget][0]}: dual " in output and "-> 0.123" in output
    assert "table sources_summary.csv: 1 rows changed" in output
    assert "table coverage.csv: no change" in output
