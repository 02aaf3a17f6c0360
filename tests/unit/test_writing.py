"""The number formats and the atomic writers of gcm_fund.writing."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcm_fund import writing
from gcm_fund.errors import UsageError


@pytest.mark.parametrize(("function", "value", "text"), [
    pytest.param(writing.amount, 1234.5, "1234.50", id="amount"),
    pytest.param(writing.amount, None, "", id="amount-none"),
    pytest.param(writing.amount, math.nan, "", id="amount-nan"),
    pytest.param(writing.share, 0.25, "0.250000", id="share"),
    pytest.param(writing.share, math.nan, "", id="share-nan"),
    pytest.param(writing.real, -0.0, "0", id="real-negative-zero"),
    pytest.param(writing.real, -1e-20, "-1e-20", id="real-tiny"),
    pytest.param(writing.real, 1 / 3, "0.333333333333", id="real-12-digits"),
    pytest.param(writing.real, None, "", id="real-none"),
    pytest.param(writing.boolean, True, "true", id="boolean"),
    pytest.param(writing.usd, 1234567.891, "USD 1,234,567.89", id="usd"),
    pytest.param(writing.usd_short, 2.5e9, "USD 2.50 billion", id="usd-billion"),
    pytest.param(writing.usd_short, -4.5e6, "USD -4.50 million", id="usd-million"),
    pytest.param(writing.usd_short, 999.0, "USD 999.00", id="usd-small"),
    pytest.param(writing.whole, 1234567.5, "1,234,568", id="whole"),
])
def test_number_formats(function, value, text):
    assert function(value) == text


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64)
                | st.sampled_from([0.0, -0.0, 0.005, 2.675, -1e-20, 1e16 + 0.5]),
                min_size=1, max_size=60))
def test_columns_are_formatted_as_each_cell_alone(values):
    # format_columns formats a float column in one pass: the cells must be the ones the
    # per-value functions write (NaN blank, -0.0 as 0 for reals, -0.00 kept for amounts).
    table = pd.DataFrame({"a": np.array(values, dtype=float), "s": np.array(values),
                          "r": np.array(values), "t": [str(v) for v in values]})
    formats = {"a": writing.amount, "s": writing.share, "r": writing.real}
    cells = writing.format_columns(table, formats)
    assert cells == [[writing.amount(v) for v in values], [writing.share(v) for v in values],
                     [writing.real(v) for v in values], [str(v) for v in values]]


CELLS = st.text(alphabet=st.sampled_from(["a", "1", ",", '"', "\n", " ", "é"]), max_size=4)


def _as_csv_writer_writes(tmp_path: Path, rows: list[list[str]], width: int) -> None:
    columns = [f"c{j}" for j in range(width)]
    path = tmp_path / "t.csv"
    writing.write_table(path, columns, [[row[j] for row in rows] for j in range(width)])
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    assert path.read_bytes() == expected.getvalue().encode("utf-8")


@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.tuples(st.just(width), st.lists(st.lists(CELLS, min_size=width,
                                                                max_size=width), max_size=12))))
def test_a_table_is_written_as_csv_writer_writes_it(tmp_path_factory, table):
    # write_table joins quoted columns itself (fast on millions of cells): the bytes must
    # be csv.writer's, commas, quotes, line ends and empty cells included.
    width, rows = table
    _as_csv_writer_writes(tmp_path_factory.mktemp("table"), rows, width)


@pytest.mark.parametrize("cell", ["a\rb", "\r", 'x,"\r\n', "\0"])
def test_a_carriage_return_or_nul_is_written_as_csv_writer_writes_it(tmp_path: Path, cell):
    _as_csv_writer_writes(tmp_path, [["1", cell], ['"q"', "a,b"], ["", ""]], 2)


def test_csv_text_has_newline_line_ends_and_quotes_commas():
    assert writing.csv_text(["a", "b"], [["1", "x,y"]]) == 'a,b\n1,"x,y"\n'


def test_write_atomic_replaces_a_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "sub" / "out.csv"
    writing.write_atomic(path, "one\n")
    writing.write_atomic(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.csv"]


def ANYTHING(folder: Path, shown: Path) -> None:
    """A caller's check that accepts whatever stands at the destination."""


def test_atomic_folder_leaves_the_destination_untouched_on_error(tmp_path: Path):
    destination = tmp_path / "run"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError), writing.atomic_folder(destination, ANYTHING) as folder:
        (folder / "new.txt").write_text("half")
        raise RuntimeError("failed half way")
    assert [p.name for p in destination.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_folder_refuses_a_non_empty_destination_unless_told(tmp_path: Path):
    destination = tmp_path / "run"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not empty"), \
            writing.atomic_folder(destination):
        pass
    with writing.atomic_folder(destination, ANYTHING) as folder:
        (folder / "new.txt").write_text("new")
    assert [p.name for p in destination.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_sigterm_in_atomic_folder_removes_the_staging_and_restores_the_handler(
        tmp_path: Path):
    import os
    import signal

    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by the test runner here")
    destination = tmp_path / "run"
    with pytest.raises(writing.Terminated), writing.atomic_folder(destination) as folder:
        (folder / "half.csv").write_text("a,b\n")
        os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_rename_no_replace_refuses_a_taken_name(tmp_path: Path):
    source, taken, empty = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    source.mkdir()
    (source / "new").write_text("new")
    taken.mkdir()
    (taken / "mine").write_text("mine")
    assert not writing.rename_no_replace(source, taken)
    assert (taken / "mine").read_text() == "mine" and (source / "new").exists()
    empty.mkdir()
    if writing._load_renameat2():  # rename(2), the fallback, replaces an empty folder
        assert not writing.rename_no_replace(source, empty)
    assert writing.rename_no_replace(source, tmp_path / "d")
    assert (tmp_path / "d" / "new").read_text() == "new"
