"""Damaged inputs never crash the loader (issue 5, item 1).

A valid small instance (`tests/data/tiny/`) is damaged the ways spreadsheets get damaged:
columns dropped, repeated or renamed, `;` or tab between cells, Latin-1 bytes, NaN, inf,
1e400, negative, blank and garbage cells, files cut short, extra fields, stray quotes,
random bytes. The loader must either load it or raise `InputError`, never anything else,
and every problem must read `file:line: column: why` (or `file: why` for a whole file).
Some examples also go through `gcm-fund validate` in-process: exit status 0 or 2, never a
traceback.

Size: the loaded hypothesis profile's `max_examples` times FUZZ_SCALE (the `ci` profile
gives some hundreds of damaged inputs in a few seconds; HYPOTHESIS_PROFILE=slow, thousands).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gcm_fund.cli.app import app
from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import load_policy

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny"
CSV_FILES = ("states.csv", "gaps.csv", "sources.csv")
BASE = {name: (TINY / name).read_bytes() for name in (*CSV_FILES, "policy.toml")}
FUZZ_SCALE = 20
EXAMPLES = settings().max_examples * FUZZ_SCALE

TRIED = {"inputs": 0, "loaded": 0, "refused": 0, "cli": 0, "policies": 0}

ACCENTED = ["Côte d'Ivoire", "São Tomé and Príncipe", "Türkiye", "Curaçao", "Réunion",
            "Åland", "Niño"]
BAD_CELLS = ["NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "-5", "0", "-0",
             "", "   ", "n/a", "N/A", "-", "?", "1,000", "1 000", "$5", "USD 5", "5 USD",
             "€5", "0x1F", "1e", ".", "1.2.3", "١٢", "TRUE", "yes", "maybe", "ken", "KENYA",
             "10.C", "8.10", "107", "10.77a", "LMIC ", "lmic", "loan", "donor", '"', '""',
             "\x00", "\x1b[31m", "a\u200bb", "😀", "\ufeff", "\r", "=1+1", "1e-400"]


# ---------------------------------------------------------------------------------------
# Damage: each takes the file's bytes and a hypothesis draw, and returns new bytes.


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _fields(line: bytes) -> list[bytes]:
    return line.split(b",")


def _join(rows: list[list[bytes]]) -> bytes:
    return b"\n".join(b",".join(row) for row in rows)


def drop_column(data: bytes, draw) -> bytes:
    rows = [_fields(line) for line in _lines(data)]
    index = draw(st.integers(0, len(rows[0]) - 1))
    return _join([row[:index] + row[index + 1:] for row in rows])


def duplicate_column(data: bytes, draw) -> bytes:
    rows = [_fields(line) for line in _lines(data)]
    index = draw(st.integers(0, len(rows[0]) - 1))
    return _join([row + [row[index]] if index < len(row) else row for row in rows])


def rename_column(data: bytes, draw) -> bytes:
    rows = [_fields(line) for line in _lines(data)]
    index = draw(st.integers(0, len(rows[0]) - 1))
    name = draw(st.sampled_from([b"", b"ISO3", b"Need USD", b"need_usd ", b"target",
                                 b"income group", b"r\xe9gion"])
                | st.text(max_size=8).map(str.encode))
    rows[0][index] = name
    return _join(rows)


def swap_delimiter(data: bytes, draw) -> bytes:
    delimiter = draw(st.sampled_from([b";", b"\t", b"|"]))
    if draw(st.booleans()):
        return data.replace(b",", delimiter)
    lines = _lines(data)
    index = draw(st.integers(0, len(lines) - 1))
    lines[index] = lines[index].replace(b",", delimiter)
    return b"\n".join(lines)


def latin1_names(data: bytes, draw) -> bytes:
    rows = [_fields(line) for line in _lines(data)]
    for row in rows[1:]:
        if len(row) > 1:
            row[1] = draw(st.sampled_from(ACCENTED)).encode("utf-8")
    text = _join(rows).decode("utf-8", errors="replace")  # earlier damage may not be UTF-8
    return text.encode(draw(st.sampled_from(["latin-1", "cp1252", "utf-8"])), errors="replace")


def bad_cell(data: bytes, draw) -> bytes:
    rows = [_fields(line) for line in _lines(data)]
    row = draw(st.integers(0, len(rows) - 1))
    if not rows[row]:
        return data
    column = draw(st.integers(0, len(rows[row]) - 1))
    value = draw(st.sampled_from(BAD_CELLS) | st.text(max_size=12))
    rows[row][column] = value.encode("utf-8", errors="surrogatepass")
    return _join(rows)


def truncate(data: bytes, draw) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


def extra_fields(data: bytes, draw) -> bytes:
    lines = _lines(data)
    index = draw(st.integers(0, len(lines) - 1))
    lines[index] += b"," * draw(st.integers(1, 3)) + draw(st.sampled_from([b"", b"x", b"5"]))
    return b"\n".join(lines)


def random_bytes(data: bytes, draw) -> bytes:
    start = draw(st.integers(0, len(data)))
    length = draw(st.integers(0, 20))
    return data[:start] + draw(st.binary(min_size=1, max_size=40)) + data[start + length:]


def stray_quote(data: bytes, draw) -> bytes:
    index = draw(st.integers(0, len(data)))
    return data[:index] + b'"' + data[index:]


def shuffle_lines(data: bytes, draw) -> bytes:
    lines = _lines(data)
    kind = draw(st.sampled_from(["drop", "repeat", "swap", "blank"]))
    index = draw(st.integers(0, len(lines) - 1))
    if kind == "drop":
        del lines[index]
    elif kind == "repeat":
        lines.insert(index, lines[index])
    elif kind == "swap" and len(lines) > 1:
        lines[0], lines[index] = lines[index], lines[0]
    else:
        lines.insert(index, b"  ")
    return b"\n".join(lines)


def line_ends_and_bom(data: bytes, draw) -> bytes:
    if draw(st.booleans()):
        data = data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n"])))
    if draw(st.booleans()):
        data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb"])) + data
    return data


def utf16(data: bytes, draw) -> bytes:
    return data.decode("utf-8", errors="replace").encode(draw(st.sampled_from(
        ["utf-16", "utf-16-le", "utf-32"])))


def empty(data: bytes, draw) -> bytes:
    return draw(st.sampled_from([b"", b"\n", b"   \r\n", b"\x00"]))


DAMAGES = [drop_column, duplicate_column, rename_column, swap_delimiter, latin1_names,
           bad_cell, bad_cell, bad_cell, truncate, extra_fields, random_bytes, stray_quote,
           shuffle_lines, line_ends_and_bom, utf16, empty]


@st.composite
def damaged_instances(draw) -> tuple[dict[str, bytes], list[str]]:
    files = dict(BASE)
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(CSV_FILES))
        damage = draw(st.sampled_from(DAMAGES))
        files[name] = damage(files[name], draw)
        done.append(f"{damage.__name__}({name})")
    return files, done


# ---------------------------------------------------------------------------------------
# What a message must look like


def check_problem(problem: Problem, labels: set[str]) -> None:
    """One problem: a known file, a line >= 1 with a column, one printable line."""
    text = str(problem)
    assert problem.file in labels, text
    assert "\n" not in text and "\r" not in text, text
    assert text.isprintable(), text
    assert problem.why.strip(), text
    if problem.line is None:
        assert problem.column is None, text
        assert text == f"{problem.file}: {problem.why}"
    else:
        assert problem.line >= 1, text
        assert problem.column, f"a line without a column: {text}"
        assert text == f"{problem.file}:{problem.line}: {problem.column}: {problem.why}"


def check_rendered(stderr: str, labels: set[str]) -> None:
    """The CLI's stderr: the count, then one `file:line: column: why` per problem."""
    lines = stderr.splitlines()
    head = re.fullmatch(r"(\d+) problems? in the input:", lines[0])
    assert head, stderr
    assert len(lines) == 1 + int(head.group(1)), stderr
    for line in lines[1:]:
        file_part = next((label for label in sorted(labels, key=len, reverse=True)
                          if line.startswith(label + ":")), None)
        assert file_part, line
        assert re.fullmatch(r":\d+: .+?: .+|: .+", line[len(file_part):]), line


# ---------------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=damaged_instances(), through_cli=st.integers(0, 9))
def test_damaged_inputs_load_or_raise_input_error(case, through_cli):
    files, damages = case
    TRIED["inputs"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        labels = {str(folder / name) for name in CSV_FILES} | {str(folder)}
        try:
            data = load_inputs(folder)
        except InputError as exc:
            TRIED["refused"] += 1
            assert exc.problems, damages
            for problem in exc.problems:
                check_problem(problem, labels)
            assert len(exc.render().splitlines()) == 1 + len(exc.problems)
        else:
            TRIED["loaded"] += 1
            for warning in data.warnings:
                check_problem(warning, labels)
            assert len(data.states) and len(data.gaps) and len(data.sources)
        if through_cli == 0:
            TRIED["cli"] += 1
            result = CliRunner().invoke(app, ["validate", str(folder), "--model",
                                              str(folder / "policy.toml")])
            output = result.stdout + result.stderr
            assert "Traceback" not in output, (damages, output)
            assert result.exit_code in (0, 2), (damages, result.exit_code, output)
            if result.exit_code == 2:
                check_rendered(result.stderr, labels)


POLICY_DAMAGES = [
    b"", b"[", b"]", b"=", b"\"", b"'", b"\n[equity]\nmaximise = true", b"\n10.7 = 1",
    b"\nnan", b"= inf", b"\xe9", b"\x00", b"[[cofinancing]]", b"{", b"LIC = -1",
    b"\n[weights.target]\n\"10.77a\" = 1", b"\n[thematic.min_share]\n\"8.8\" = 0.99",
]


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(BASE["policy.toml"])), length=st.integers(0, 10),
       insert=st.sampled_from(POLICY_DAMAGES) | st.binary(max_size=12))
def test_damaged_policies_load_or_raise_input_error(cut, length, insert):
    TRIED["policies"] += 1
    text = BASE["policy.toml"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.toml"
        path.write_bytes(text[:cut] + insert + text[cut + length:])
        try:
            load_policy(path, targets={"10.7", "10.c", "8.8"})
        except InputError as exc:
            for problem in exc.problems:
                text_form = str(problem)
                assert problem.file == str(path)
                assert "\n" not in text_form and text_form.isprintable(), text_form
                # A TOML syntax error on a line that shows no key: `file:line: not valid
                # TOML: ...`; every other problem with a line names its key.
                if problem.column is None and problem.line is not None:
                    assert problem.why.startswith(("not valid TOML", "byte 0x")), text_form


# ---------------------------------------------------------------------------------------
# The damages a user meets most, with the message each must give


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for file, content in BASE.items():
        (folder / file).write_bytes(content)
    (folder / name).write_bytes(data)
    return folder


def _problems(folder: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_inputs(folder)
    return [str(p).removeprefix(str(folder) + "/") for p in caught.value.problems]


def test_semicolons_name_file_line_and_column(tmp_path):
    folder = _write(tmp_path, "sources.csv", BASE["sources.csv"].replace(b",", b";"))
    assert _problems(folder) == [
        "sources.csv:1: source_id;name;kind;instrument;pledge...: "
        "the columns are separated by ';', expected ',': save the file as comma-separated "
        "values"]


def test_latin1_names_file_line_and_column_of_each_cell(tmp_path):
    text = BASE["states.csv"].decode().replace("Kenya", "Kényä").replace("Mali", "Malí")
    folder = _write(tmp_path, "states.csv", text.encode("latin-1"))
    why = ("is not UTF-8 (is the file Latin-1 or Windows-1252?): save the file as UTF-8 "
           "text")
    assert _problems(folder) == [f"states.csv:2: name: byte 0xe9 {why}",
                                 f"states.csv:3: name: byte 0xed {why}"]


@pytest.mark.parametrize(("cell", "why"), [
    ("NaN", "got 'NaN', expected a finite number"),
    ("inf", "got 'inf', expected a finite number"),
    ("1e400", "got '1e400', out of range for a number"),
    ("-3", "got '-3', expected a number > 0 (USD)"),
])
def test_bad_numbers_name_file_line_and_column(tmp_path, cell, why):
    data = BASE["gaps.csv"].replace(b"MLI,10.c,5000000", b"MLI,10.c," + cell.encode())
    assert _problems(_write(tmp_path, "gaps.csv", data)) == [f"gaps.csv:5: need_usd: {why}"]


def test_zz_report_how_many_damaged_inputs_were_tried(capsys):
    """Runs last in this file: how many damaged inputs the property tests tried."""
    if not TRIED["inputs"]:
        pytest.skip("the fuzz tests did not run in this session")
    with capsys.disabled():
        print(f"\nfuzz: {TRIED['inputs']} damaged input folders tried ({TRIED['loaded']} "
              f"loaded, {TRIED['refused']} refused with InputError, {TRIED['cli']} also "
              f"through `gcm-fund validate`); {TRIED['policies']} damaged policies; "
              "no other exception")
    assert TRIED["loaded"] + TRIED["refused"] == TRIED["inputs"]
