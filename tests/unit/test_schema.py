"""The input contract of SPEC sections 2, 3 and 7, one rule per case, exact messages.

Every case copies the tiny valid instance of `tests/data/tiny/` into `in/`, damages one
thing, and asserts the full list of problems (or warnings) the loader reports, as the user
reads them: `file:line: column: what is wrong`, or `file: what is wrong` for a whole file.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.load import ProblemData, load_inputs, load_inputs_and_policy
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.policy_file import load_policy

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny"

Edit = tuple[str, str] | Callable[[str], str | bytes]


def _apply(path: Path, edit: Edit) -> None:
    text = path.read_text(encoding="utf-8")
    if callable(edit):
        new = edit(text)
    else:
        old, replacement = edit
        assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
        new = text.replace(old, replacement)
    if isinstance(new, bytes):
        path.write_bytes(new)
    else:
        path.write_text(new, encoding="utf-8", newline="")


def write_inputs(root: Path, edits: dict[str, Edit | None]) -> Path:
    """A copy of the tiny instance in `root/in`, each file edited (None: file removed)."""
    folder = root / "in"
    shutil.copytree(TINY, folder)
    for name, edit in edits.items():
        if edit is None:
            (folder / name).unlink()
        else:
            _apply(folder / name, edit)
    return folder


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a damaged copy and work from its parent, so that messages name `in/...`."""
    monkeypatch.chdir(tmp_path)

    def make(edits: dict[str, Edit | None]) -> Path:
        write_inputs(tmp_path, edits)
        return Path("in")

    return make


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_inputs(folder)
    return [str(p) for p in caught.value.problems]


def drop_column(name: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        index = rows[0].index(name)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(
            [row[:index] + row[index + 1:] for row in rows])
        return out.getvalue()

    return edit


def append(line: str) -> Callable[[str], str]:
    return lambda text: text + line + "\n"


GAP = "KEN,8.8,10000000"  # gaps.csv line 3
STATE = "KEN,Kenya,Africa,LMIC,origin;transit,false,false,,100000000000"  # states.csv line 2
GRANT = "deu,Germany grant,donor,grant,25000000,1,,,,,,DEU"  # sources.csv line 2
LOAN = "wb,World Bank loan,ifi,loan,20000000,0.4,10.7;8.8,Africa,LIC;LMIC,,0.8,"  # line 3
PLAIN = "written plainly (no thousands separators or currency signs)"
NOT_UTF8 = ("byte 0xe9 is not UTF-8 (is the file Latin-1 or Windows-1252?): save the file "
            "as UTF-8 text")

BAD_INPUTS = [
    # --- the shape of a file (SPEC 2 and 7) ------------------------------------------
    pytest.param({"gaps.csv": ("need_usd", "needusd")},
                 ["in/gaps.csv:1: need_usd: required column is missing (did you mean needusd?)"],
                 id="missing-required-column-with-hint"),
    pytest.param({"states.csv": drop_column("region")},
                 ["in/states.csv:1: region: required column is missing"],
                 id="missing-required-column"),
    pytest.param({"sources.csv": None}, ["in/sources.csv: file not found"],
                 id="missing-file"),
    pytest.param({"states.csv": ("absorption_usd,gni_usd", "absorption_usd,ldc")},
                 ["in/states.csv:1: ldc: column appears more than once"],
                 id="repeated-column-name"),
    pytest.param({"gaps.csv": lambda t: "iso3,target,need_usd\n"},
                 ["in/gaps.csv: the file has a header and no rows"], id="header-only"),
    pytest.param({"gaps.csv": lambda t: "iso3,target,need_usd\n\n  \n"},
                 ["in/gaps.csv: the file has a header and no rows"],
                 id="header-and-blank-lines-only"),
    pytest.param({"gaps.csv": lambda t: ""},
                 ["in/gaps.csv: the file is empty: expected a header row"], id="empty-file"),
    pytest.param({"gaps.csv": lambda t: " \n\n"},
                 ["in/gaps.csv: the file is empty: expected a header row"],
                 id="blank-file"),
    pytest.param({"gaps.csv": (GAP, GAP + ",5")},
                 ["in/gaps.csv:3: field 4: the row has 4 fields, the header 3 "
                  "(quote a cell that holds a comma)"], id="more-fields-than-header"),
    pytest.param({"gaps.csv": (GAP, "KEN,8.8,10,000,000")},
                 ["in/gaps.csv:3: fields 4-5: the row has 5 fields, the header 3 "
                  "(quote a cell that holds a comma)"], id="unquoted-thousands-separators"),
    pytest.param({"gaps.csv": (GAP, "KEN,8.8")},
                 ["in/gaps.csv:3: need_usd: required, got a blank cell"],
                 id="fewer-fields-blank-required"),
    pytest.param({"gaps.csv": (GAP, "KEN,,10000000")},
                 ["in/gaps.csv:3: target: required, got a blank cell"],
                 id="blank-required-cell"),
    pytest.param({"states.csv": (STATE, STATE.replace("Kenya", "   "))},
                 ["in/states.csv:2: name: required, got a blank cell"],
                 id="spaces-only-required-cell"),
    pytest.param({"gaps.csv": lambda t: t.replace(",", ";")},
                 ["in/gaps.csv:1: iso3;target;need_usd: the columns are separated by ';', "
                  "expected ',': save the file as comma-separated values"],
                 id="semicolon-delimited"),
    pytest.param({"gaps.csv": lambda t: t.replace(",", "\t")},
                 ["in/gaps.csv:1: 'iso3\\ttarget\\tneed_usd': the columns are separated by "
                  "'\\t', expected ',': save the file as comma-separated values"],
                 id="tab-delimited"),
    pytest.param({"gaps.csv": (GAP, "KEN;8.8;10000000")},
                 ["in/gaps.csv:3: iso3: the row is separated by ';', expected ','"],
                 id="semicolon-delimited-row"),
    pytest.param({"states.csv": lambda t: t.replace("Kenya", "Kény").encode("latin-1")},
                 [f"in/states.csv:2: name: {NOT_UTF8}"], id="latin-1-cell"),
    pytest.param({"states.csv": lambda t: t.replace("region", "région").encode("latin-1")},
                 [f"in/states.csv:1: 'r\\udce9gion': {NOT_UTF8}"], id="latin-1-header"),
    pytest.param({"states.csv": lambda t: t.encode("utf-16")},
                 ["in/states.csv: the file is UTF-16 text: save it as UTF-8"], id="utf-16"),
    pytest.param({"states.csv": ("Kenya", "Ke\x00nya")},
                 ["in/states.csv:2: name: got 'Ke\\x00nya': the cell holds a control character"],
                 id="control-character"),
    pytest.param({"states.csv": ("Kenya", "K" + "e" * 140_000 + "nya")},
                 ["in/states.csv:2: name: the cell holds more than 131072 characters: is a '\"' "
                  "not closed?"], id="cell-beyond-the-csv-field-limit"),
    pytest.param({"states.csv": ("Kenya", '"Kenya')},
                 ["in/states.csv:2: name: the cell runs over several lines: is a '\"' not "
                  "closed?"], id="unclosed-quote"),
    # --- keys and references -----------------------------------------------------------
    pytest.param({"gaps.csv": (GAP, "KEM,8.8,10000000")},
                 ["in/gaps.csv:3: iso3: got 'KEM', not in states.csv (did you mean KEN?)"],
                 id="unknown-iso3-did-you-mean-by-code"),
    pytest.param({"gaps.csv": (GAP, "Kenya,8.8,10000000")},
                 ["in/gaps.csv:3: iso3: got 'Kenya', not in states.csv (did you mean KEN?)"],
                 id="unknown-iso3-did-you-mean-by-name"),
    pytest.param({"gaps.csv": (GAP, "XYZ,8.8,10000000")},
                 ["in/gaps.csv:3: iso3: got 'XYZ', not in states.csv"],
                 id="unknown-iso3-no-hint"),
    pytest.param({"gaps.csv": (GAP, "ken,8.8,10000000")},
                 ["in/gaps.csv:3: iso3: got 'ken', not in states.csv (did you mean KEN?)"],
                 id="iso3-wrong-case-in-gaps"),
    # The State still exists for gaps.csv: one mistake, one message.
    pytest.param({"states.csv": (STATE, STATE.replace("KEN", "ken"))},
                 ["in/states.csv:2: iso3: got 'ken', expected 3 upper-case letters "
                  "(did you mean KEN?)"], id="iso3-wrong-case-in-states"),
    pytest.param({"states.csv": (STATE, STATE.replace("KEN", "KENYA"))},
                 ["in/gaps.csv:2: iso3: got 'KEN', not in states.csv",
                  "in/gaps.csv:3: iso3: got 'KEN', not in states.csv",
                  "in/states.csv:2: iso3: got 'KENYA', expected 3 upper-case letters"],
                 id="iso3-too-long"),
    pytest.param({"states.csv": append("KEN,Kenya again,Africa,LMIC,,,,,")},
                 ["in/states.csv:5: iso3: duplicate key 'KEN', first on line 2"],
                 id="duplicate-iso3"),
    pytest.param({"gaps.csv": append("KEN,10.7,5")},
                 ["in/gaps.csv:6: target: duplicate key 'KEN,10.7', first on line 2"],
                 id="duplicate-gap"),
    pytest.param({"gaps.csv": append("MLI,10.C,5")},
                 ["in/gaps.csv:6: target: duplicate key 'MLI,10.c', first on line 5"],
                 id="duplicate-gap-after-lower-casing"),
    pytest.param({"sources.csv": append(GRANT)},
                 ["in/sources.csv:4: source_id: duplicate key 'deu', first on line 2"],
                 id="duplicate-source-id"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace("wb,", "WB,"))},
                 ["in/sources.csv:3: source_id: got 'WB', expected lower-case letters, "
                  "digits, '_' or '-'"], id="bad-source-id"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace("wb,", "w b,"))},
                 ["in/sources.csv:3: source_id: got 'w b', expected lower-case letters, "
                  "digits, '_' or '-'"], id="source-id-with-space"),
    # --- numbers -------------------------------------------------------------------------
    *[
        pytest.param({"gaps.csv": (GAP, f"KEN,8.8,{cell}")},
                     [f"in/gaps.csv:3: need_usd: got {shown!r}, {why}"], id=f"need-{name}")
        for name, cell, shown, why in [
            ("negative", "-5", "-5", "expected a number > 0 (USD)"),
            ("zero", "0", "0", "expected a number > 0 (USD)"),
            ("negative-zero", "-0", "-0", "expected a number > 0 (USD)"),
            ("underflow-to-zero", "1e-400", "1e-400", "expected a number > 0 (USD)"),
            ("non-numeric", "n/a", "n/a", "expected a number > 0 (USD)"),
            ("hexadecimal", "0x10", "0x10", "expected a number > 0 (USD)"),
            ("nan", "nan", "nan", "expected a finite number"),
            ("NaN", "NaN", "NaN", "expected a finite number"),
            ("inf", "inf", "inf", "expected a finite number"),
            ("minus-infinity", "-Infinity", "-Infinity", "expected a finite number"),
            ("1e400", "1e400", "1e400", "out of range for a number"),
            ("thousands-separators", '"1,000,000"', "1,000,000",
             f"expected a number > 0 (USD) {PLAIN}"),
            ("underscores", "1_000", "1_000", f"expected a number > 0 (USD) {PLAIN}"),
            ("dollar-sign", "$5", "$5", f"expected a number > 0 (USD) {PLAIN}"),
            ("usd-prefix", "USD 5", "USD 5", f"expected a number > 0 (USD) {PLAIN}"),
            ("usd-suffix", "5 USD", "5 USD", f"expected a number > 0 (USD) {PLAIN}"),
            ("euro-sign", "€5", "€5", f"expected a number > 0 (USD) {PLAIN}"),
            ("arabic-indic-digits", "٥", "٥", "expected a number > 0 (USD)"),
        ]
    ],
    pytest.param({"gaps.csv": (GAP, "KEN,8.8," + "9" * 400)},
                 ["in/gaps.csv:3: need_usd: got '9999999999999999999999999999999999999...' "
                  "(400 characters), out of range for a number"], id="need-400-digits"),
    pytest.param({"sources.csv": (GRANT, GRANT.replace("25000000", "-1"))},
                 ["in/sources.csv:2: pledge_usd: got '-1', expected a number >= 0 (USD)"],
                 id="negative-pledge"),
    pytest.param({"states.csv": ("50000000", "-50000000")},
                 ["in/states.csv:3: absorption_usd: got '-50000000', expected a number >= 0 "
                  "(USD)"], id="negative-absorption"),
    pytest.param({"states.csv": ("100000000000", "lots")},
                 ["in/states.csv:2: gni_usd: got 'lots', expected a number >= 0 (USD)"],
                 id="non-numeric-gni"),
    # --- enumerations (SPEC 7: exact spelling) -----------------------------------------
    pytest.param({"states.csv": (STATE, STATE.replace("LMIC", "lmic"))},
                 ["in/states.csv:2: income_group: got 'lmic', expected one of LIC, LMIC, "
                  "UMIC, HIC (did you mean LMIC?)"], id="income-group-wrong-case"),
    pytest.param({"states.csv": (STATE, STATE.replace("LMIC", "middle"))},
                 ["in/states.csv:2: income_group: got 'middle', expected one of LIC, LMIC, "
                  "UMIC, HIC"], id="unknown-income-group"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",ifi,", ",bank,"))},
                 ["in/sources.csv:3: kind: got 'bank', expected one of donor, ifi, private"],
                 id="unknown-kind"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",ifi,", ",IFI,"))},
                 ["in/sources.csv:3: kind: got 'IFI', expected one of donor, ifi, private "
                  "(did you mean ifi?)"], id="kind-wrong-case"),
    pytest.param({"sources.csv": (GRANT, GRANT.replace(",grant,", ",gift,"))},
                 ["in/sources.csv:2: instrument: got 'gift', expected one of grant, loan"],
                 id="unknown-instrument"),
    pytest.param({"states.csv": ("origin;transit", "origin;trans")},
                 ["in/states.csv:2: roles: got 'trans', expected one of origin, transit, "
                  "destination (did you mean transit?)"], id="unknown-role"),
    # --- grant element and shares ------------------------------------------------------
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",0.4,", ",,"))},
                 ["in/sources.csv:3: grant_element: a loan needs a grant_element in [0, 1]"],
                 id="loan-without-grant-element"),
    pytest.param({"sources.csv": (GRANT, GRANT.replace(",1,", ",0.5,"))},
                 ["in/sources.csv:2: grant_element: got 0.5, a grant's grant_element is "
                  "blank or 1"], id="grant-with-grant-element-0.5"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",0.4,", ",1.5,"))},
                 ["in/sources.csv:3: grant_element: got '1.5', expected a number in [0, 1]"],
                 id="grant-element-1.5"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",0.8,", ",0,"))},
                 ["in/sources.csv:3: max_state_share: got '0', expected a number in (0, 1]"],
                 id="max-state-share-0"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace(",0.8,", ",1.5,"))},
                 ["in/sources.csv:3: max_state_share: got '1.5', expected a number in (0, 1]"],
                 id="max-state-share-1.5"),
    # --- target codes --------------------------------------------------------------------
    *[
        pytest.param({"gaps.csv": (GAP, f"KEN,{code},10000000")},
                     [f"in/gaps.csv:3: target: got {code!r}, expected an SDG target code "
                      "such as 10.7 or 10.c"], id=f"target-{code}-invalid")
        for code in ["107", "10.77a", "10.", "100.1", "10.7.1", "ten.7"]
    ],
    # --- earmarks and donors -----------------------------------------------------------
    pytest.param({"sources.csv": (LOAN, LOAN.replace("LIC;LMIC", "LIC;MIDDLE"))},
                 ["in/sources.csv:3: income_groups: got 'MIDDLE', expected one of LIC, LMIC, "
                  "UMIC, HIC"], id="earmark-unknown-income-group"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace("LIC;LMIC,,", "LIC;LMIC,KEM,"))},
                 ["in/sources.csv:3: exclude_states: got 'KEM', not in states.csv "
                  "(did you mean KEN?)"], id="earmark-unknown-iso3"),
    pytest.param({"sources.csv": (LOAN, LOAN.replace("10.7;8.8", "10.7;107"))},
                 ["in/sources.csv:3: targets: got '107', expected an SDG target code such as "
                  "10.7 or 10.c"], id="earmark-bad-target-code"),
    pytest.param({"sources.csv": (GRANT, GRANT.replace("DEU", "FRA"))},
                 ["in/sources.csv:2: donor_iso3: got 'FRA', not in states.csv"],
                 id="donor-iso3-unknown"),
    pytest.param({"sources.csv": (GRANT, GRANT.replace("DEU", "deu"))},
                 ["in/sources.csv:2: donor_iso3: got 'deu', not in states.csv "
                  "(did you mean DEU?)"], id="donor-iso3-wrong-case"),
    # --- booleans --------------------------------------------------------------------------
    pytest.param({"states.csv": (STATE, STATE.replace("false,false", "maybe,false"))},
                 ["in/states.csv:2: ldc: got 'maybe', expected true or false"],
                 id="boolean-maybe"),
    pytest.param({"states.csv": (STATE, STATE.replace("false,false", "true,y"))},
                 ["in/states.csv:2: debt_distress: got 'y', expected true or false"],
                 id="boolean-y"),
]


@pytest.mark.parametrize(("edits", "expected"), BAD_INPUTS)
def test_bad_input_is_reported_exactly(inputs, edits, expected):
    assert problems_of(inputs(edits)) == expected


def test_every_problem_of_every_file_at_once(inputs):
    folder = inputs({
        "states.csv": (STATE, STATE.replace("LMIC", "lmic")),
        "gaps.csv": lambda t: t.replace(GAP, "KEM,8.8,-5") + "MLI,107,nan\n",
        "sources.csv": (LOAN, LOAN.replace(",0.4,", ",,").replace(",ifi,", ",bank,")),
    })
    with pytest.raises(InputError) as caught:
        load_inputs(folder)
    assert caught.value.render().splitlines() == [
        "7 problems in the input:",
        "in/gaps.csv:3: iso3: got 'KEM', not in states.csv (did you mean KEN?)",
        "in/gaps.csv:3: need_usd: got '-5', expected a number > 0 (USD)",
        "in/gaps.csv:6: need_usd: got 'nan', expected a finite number",
        "in/gaps.csv:6: target: got '107', expected an SDG target code such as 10.7 or 10.c",
        "in/sources.csv:3: grant_element: a loan needs a grant_element in [0, 1]",
        "in/sources.csv:3: kind: got 'bank', expected one of donor, ifi, private",
        "in/states.csv:2: income_group: got 'lmic', expected one of LIC, LMIC, UMIC, HIC "
        "(did you mean LMIC?)",
    ]


def test_inputs_and_policy_problems_at_once(inputs, tmp_path):
    folder = inputs({"gaps.csv": (GAP, "KEN,8.8,-5")})
    (tmp_path / "policy.toml").write_text("[equity]\nmaximise = true\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_inputs_and_policy(folder, "policy.toml")
    assert [str(p) for p in caught.value.problems] == [
        "in/gaps.csv:3: need_usd: got '-5', expected a number > 0 (USD)",
        "policy.toml:2: equity.maximise: unknown key (did you mean maximize?)",
    ]


def test_no_line_without_a_column():
    """Problem renders SPEC's form, or the whole-file form when there is no line."""
    assert str(Problem("a.csv", 3, "iso3", "why")) == "a.csv:3: iso3: why"
    assert str(Problem("a.csv", None, None, "why")) == "a.csv: why"


# ---------------------------------------------------------------------------------------
# Accepted forms


def loaded(folder: Path) -> ProblemData:
    return load_inputs(folder)


def test_the_tiny_instance_loads_without_warnings(inputs):
    data = loaded(inputs({}))
    assert data.warnings == []
    assert list(data.states["iso3"]) == ["DEU", "KEN", "MLI"]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: "\ufeff" + t, id="utf-8-bom"),
    pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
    pytest.param(lambda t: t.replace(",", " ,  "), id="surrounding-spaces"),
    pytest.param(lambda t: t.replace("\n", "\n\n"), id="blank-lines"),
    pytest.param(lambda t: t.replace("Kenya", '"Kenya"'), id="quoted-cells"),
])
def test_accepted_formats_load_the_same(inputs, edit):
    plain = loaded(inputs({}))
    shutil.rmtree("in")
    edited = loaded(inputs({"states.csv": edit, "gaps.csv": edit, "sources.csv": edit}))
    for table in ("states", "gaps", "sources"):
        assert getattr(edited, table).equals(getattr(plain, table)), table


def test_blank_lines_keep_line_numbers(inputs):
    folder = inputs({"gaps.csv": lambda t: t.replace("\n", "\n\n").replace(GAP, "KEN,8.8,x")})
    assert problems_of(folder) == [
        "in/gaps.csv:5: need_usd: got 'x', expected a number > 0 (USD)"]


def test_unknown_columns_are_a_warning_naming_them(inputs):
    header = ("need_usd\n", "need_usd,notes,owner\n")
    data = loaded(inputs({"gaps.csv": lambda t: t.replace(*header)}))
    assert [str(w) for w in data.warnings] == [
        "in/gaps.csv:1: notes, owner: unknown columns, ignored"]


def test_optional_columns_may_be_absent(inputs):
    states = "iso3,name,region,income_group\nKEN,Kenya,Africa,LMIC\nMLI,Mali,Africa,LIC\n" \
             "DEU,Germany,Europe,HIC\n"
    sources = "source_id,name,kind,instrument,pledge_usd,grant_element\n" \
              "deu,Germany grant,donor,grant,25000000,\nwb,World Bank loan,ifi,loan,2e7,0.4\n"
    data = loaded(inputs({"states.csv": lambda t: states, "sources.csv": lambda t: sources}))
    kenya = data.states.set_index("iso3").loc["KEN"]
    assert kenya["roles"] == () and not kenya["ldc"] and not kenya["debt_distress"]
    assert kenya["absorption_usd"] is None or kenya["absorption_usd"] != kenya["absorption_usd"]
    wb = data.sources.set_index("source_id").loc["wb"]
    assert wb["pledge_usd"] == 2e7 and wb["targets"] == () and wb["regions"] == ()
    assert data.warnings == []


@pytest.mark.parametrize("folder", ["tiny", "optional-blank", "example"])
def test_each_column_reads_the_same_as_the_frame(inputs, folder):
    """`table[column]` (what validate and the model read, without pandas) holds what the
    DataFrame holds, row for row: blanks as NaN or None, booleans, tuples of items."""
    states = "iso3,name,region,income_group,absorption_usd\nKEN,Kenya,Africa,LMIC,\n" \
             "MLI,Mali,Africa,LIC,5e6\nDEU,Germany,Europe,HIC,\n"
    if folder == "example":
        data = loaded(Path(__file__).resolve().parents[2] / "inputs")
    else:
        data = loaded(inputs({"states.csv": lambda t: states} if folder != "tiny" else {}))
    for table in (data.state_table, data.gap_table, data.source_table):
        frame = table.frame
        assert len(table) == len(frame) > 0
        for column in frame.columns:
            cells, expected = table[column].tolist(), frame[column].tolist()
            assert len(cells) == len(expected)
            for got, want in zip(cells, expected, strict=True):
                if want is None or want != want:  # blank: None in an object column, or NaN
                    assert got is None or got != got, (table.name, column)
                else:
                    assert got == want and type(got) is type(want), (table.name, column)
    assert data.gap_state.tolist() == [list(data.states["iso3"]).index(code)
                                       for code in data.gaps["iso3"]]


def test_unknown_columns_are_ignored_whatever_they_hold(inputs):
    """A note may run over lines, hold a tab or even a Latin-1 byte: it is not read."""
    gaps = (b'iso3,target,need_usd,notes\n'
            b'KEN,10.7,20000000,"two\nlines"\n'
            b'KEN,8.8,10000000,a\ttab\n'
            b'MLI,10.7,30000000,caf\xe9\n'
            b'MLI,10.c,5000000,\n')
    data = loaded(inputs({"gaps.csv": lambda t: gaps}))
    assert len(data.gaps) == 4
    assert [str(w) for w in data.warnings] == ["in/gaps.csv:1: notes: unknown column, ignored"]


def test_an_unpaired_quote_in_an_unknown_column_is_still_found(inputs):
    folder = inputs({"gaps.csv": lambda t: t.replace("need_usd\n", "need_usd,notes\n")
                     .replace(GAP, GAP + ',"unclosed')})
    assert problems_of(folder) == [
        "in/gaps.csv:3: notes: the cell runs over several lines: is a '\"' not closed?"]


@pytest.mark.parametrize(("cells", "ldc", "debt"), [
    pytest.param("yes,NO", True, False, id="yes-NO"),
    pytest.param("1,0", True, False, id="1-0"),
    pytest.param("TRUE,False", True, False, id="TRUE-False"),
    pytest.param(",", False, False, id="blank-is-false"),
])
def test_booleans(inputs, cells, ldc, debt):
    data = loaded(inputs({"states.csv": (STATE, STATE.replace("false,false", cells))}))
    kenya = data.states.set_index("iso3").loc["KEN"]
    assert (bool(kenya["ldc"]), bool(kenya["debt_distress"])) == (ldc, debt)


@pytest.mark.parametrize(("code", "kept"), [
    pytest.param("8.10", "8.10", id="8.10-stays-8.10"),
    pytest.param("10.C", "10.c", id="10.C-becomes-10.c"),
    pytest.param(" 16.2 ", "16.2", id="spaces-stripped"),
])
def test_target_codes_are_strings(inputs, code, kept):
    data = loaded(inputs({"gaps.csv": (GAP, f"KEN,{code},10000000")}))
    assert kept in set(data.gaps["target"])


def test_lists_drop_empty_and_repeated_items(inputs):
    data = loaded(inputs({
        "states.csv": ("origin;transit", " transit ;;origin; transit"),
        "sources.csv": ("10.7;8.8", "10.7;;8.8;10.7"),
    }))
    assert data.states.set_index("iso3").loc["KEN", "roles"] == ("transit", "origin")
    assert data.sources.set_index("source_id").loc["wb", "targets"] == ("10.7", "8.8")


def test_grant_element_blank_for_a_grant(inputs):
    data = loaded(inputs({"sources.csv": (GRANT, GRANT.replace(",1,", ",,"))}))
    assert data.warnings == []


@pytest.mark.parametrize(("edit", "warning"), [
    pytest.param((LOAN, LOAN.replace("Africa", "Afrika")),
                 "in/sources.csv:3: regions: 'Afrika' matches no State's region "
                 "(did you mean Africa?)", id="earmark-unknown-region"),
    pytest.param((LOAN, LOAN.replace("10.7;8.8", "10.7;5.2")),
                 "in/sources.csv:3: targets: '5.2' matches no gap", id="earmark-unknown-target"),
])
def test_earmarks_matching_nothing_are_warnings(inputs, edit, warning):
    data = loaded(inputs({"sources.csv": edit}))
    assert [str(w) for w in data.warnings] == [warning]


# ---------------------------------------------------------------------------------------
# The policy (SPEC section 3)


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> Path:
        path = Path("policy.toml")
        path.write_bytes(text.encode("utf-8"))
        return path

    return write


def policy_problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_policy(path, targets={"10.7", "10.c", "8.8"})
    return [str(p) for p in caught.value.problems]


BAD_POLICIES = [
    pytest.param("[equity]\nmaximise = true\n",
                 ["policy.toml:2: equity.maximise: unknown key (did you mean maximize?)"],
                 id="unknown-key-did-you-mean"),
    pytest.param("nam = \"x\"\n", ["policy.toml:1: nam: unknown key (did you mean name?)"],
                 id="unknown-top-level-key"),
    pytest.param("[equty]\ngroup = \"all\"\n",
                 ["policy.toml:1: equty: unknown key (did you mean equity?)"],
                 id="unknown-table"),
    pytest.param("[loans]\nburden = { LIX = 1.0 }\n",
                 ["policy.toml:2: loans.burden.LIX: unknown key (did you mean LIC?)"],
                 id="unknown-key-in-inline-table"),
    pytest.param("[weights.target]\n10.7 = 1.2\n",
                 ['policy.toml:2: weights.target."10.7": an unquoted target code is read as a '
                  'nested table: quote it, "10.7" = ...'], id="unquoted-target-key"),
    pytest.param("[thematic.min_share]\n10.c = 0.1\n8.8 = 0.1\n",
                 ['policy.toml:2: thematic.min_share."10.c": an unquoted target code is read as '
                  'a nested table: quote it, "10.c" = ...',
                  'policy.toml:3: thematic.min_share."8.8": an unquoted target code is read as '
                  'a nested table: quote it, "8.8" = ...'], id="unquoted-target-keys-each"),
    pytest.param("[weights.target]\n\"107\" = 1.0\n",
                 ["policy.toml:2: weights.target.107: got '107', expected an SDG target code "
                  "such as 10.7 or 10.c"], id="bad-target-key"),
    pytest.param("[equity]\nmin_floor = \"high\"\n",
                 ["policy.toml:2: equity.min_floor: got 'high', expected a number"],
                 id="wrong-type-string-for-number"),
    pytest.param("[cofinancing]\nLIC = true\n",
                 ["policy.toml:2: cofinancing.LIC: got true, expected a number"],
                 id="wrong-type-boolean-for-number"),
    pytest.param("[equity]\nmaximize = \"yes\"\n",
                 ["policy.toml:2: equity.maximize: got 'yes', expected true or false"],
                 id="wrong-type-string-for-boolean"),
    pytest.param("name = 5\n", ["policy.toml:1: name: got 5, expected a quoted string"],
                 id="wrong-type-name"),
    pytest.param("cofinancing = 5\n", ["policy.toml:1: cofinancing: got 5, expected a table"],
                 id="wrong-type-number-for-table"),
    pytest.param("[cofinancing]\nLIC = 1.5\n",
                 ["policy.toml:2: cofinancing.LIC: got 1.5, expected a number in [0, 1]"],
                 id="cofinancing-1.5"),
    pytest.param("[limits]\nmax_state_share = 0\n",
                 ["policy.toml:2: limits.max_state_share: got 0, expected a number in (0, 1]"],
                 id="limits-0"),
    pytest.param("[limits]\nmax_source_state_share = 1.5\n",
                 ["policy.toml:2: limits.max_source_state_share: got 1.5, expected a number in "
                  "(0, 1]"], id="limits-1.5"),
    pytest.param("[equity]\ntolerance = 0.1\n",
                 ["policy.toml:2: equity.tolerance: got 0.1, expected a number in (0, 0.01]"],
                 id="tolerance-0.1"),
    pytest.param("[equity]\nfloor_share = 1.2\n",
                 ["policy.toml:2: equity.floor_share: got 1.2, expected a number in (0, 1]"],
                 id="floor_share-1.2"),
    pytest.param("[loans.max_share]\nhigh = -0.1\n",
                 ["policy.toml:2: loans.max_share.high: got -0.1, expected a number in [0, 1]"],
                 id="max_share-negative"),
    pytest.param("[loans.max_share]\nmoderat = 0.5\n",
                 ["policy.toml:2: loans.max_share.moderat: unknown debt risk, expected one of "
                  "low, moderate, high, distress, unrated (did you mean moderate?)"],
                 id="max_share-unknown-risk"),
    pytest.param("[equity]\ntolerance = 0\n",
                 ["policy.toml:2: equity.tolerance: got 0, expected a number in (0, 0.01]"],
                 id="tolerance-0"),
    pytest.param("[equity]\nmin_floor = 2\n",
                 ["policy.toml:2: equity.min_floor: got 2, expected a number in [0, 1]"],
                 id="min-floor-2"),
    pytest.param("[thematic.min_share]\n\"10.7\" = 0.6\n\"8.8\" = 0.5\n",
                 ["policy.toml:1: thematic.min_share: the shares sum to 1.1, expected at "
                  "most 1"], id="thematic-shares-sum-above-1"),
    pytest.param("[thematic.min_share]\n\"10.7\" = 1.5\n",
                 ['policy.toml:2: thematic.min_share."10.7": got 1.5, expected a number in '
                  '[0, 1]'], id="thematic-share-1.5"),
    pytest.param("[weights.income]\nLIC = -1\n",
                 ["policy.toml:2: weights.income.LIC: got -1, expected a number >= 0"],
                 id="negative-weight"),
    pytest.param("[loans]\npenalty = -0.5\n",
                 ["policy.toml:2: loans.penalty: got -0.5, expected a number >= 0"],
                 id="negative-penalty"),
    pytest.param("[loans]\nburden = { LIC = -1 }\n",
                 ["policy.toml:2: loans.burden.LIC: got -1, expected a number >= 0"],
                 id="negative-burden"),
    pytest.param("[cofinancing]\nLIC = nan\n",
                 ["policy.toml:2: cofinancing.LIC: got nan, expected a finite number"],
                 id="nan"),
    pytest.param("[weights.income]\nLIC = inf\n",
                 ["policy.toml:2: weights.income.LIC: got inf, expected a finite number"],
                 id="inf"),
    pytest.param("[equity]\ngroup = \"LDC\"\n",
                 ["policy.toml:2: equity.group: got 'LDC', expected one of all, ldc, LIC, LMIC, "
                  "UMIC, HIC (did you mean ldc?)"], id="equity-group-wrong-case"),
    pytest.param("[equity]\ngroup = \"poorest\"\n",
                 ["policy.toml:2: equity.group: got 'poorest', expected one of all, ldc, LIC, "
                  "LMIC, UMIC, HIC"], id="equity-group-unknown"),
    pytest.param("name = \"x\"\n[equity\n",
                 ["policy.toml:2: not valid TOML: Expected ']' at the end of a table "
                  "declaration (column 8)"], id="invalid-toml-table"),
    pytest.param("name = \"x\"\n\n[equity]\ngroup = all\n",
                 ["policy.toml:4: equity.group: not valid TOML: Invalid value (column 9)"],
                 id="invalid-toml-unquoted-string"),
    pytest.param("[equity]\ngroup = \"all\"\ngroup = \"ldc\"\n",
                 ["policy.toml:3: equity.group: not valid TOML: Cannot overwrite a value "
                  "(column 14)"],
                 id="invalid-toml-repeated-key"),
    pytest.param("[equity]\nmaximise = true\nmin_floor = 2\n[limits]\nmax_state_share = 0\n",
                 ["policy.toml:2: equity.maximise: unknown key (did you mean maximize?)",
                  "policy.toml:3: equity.min_floor: got 2, expected a number in [0, 1]",
                  "policy.toml:5: limits.max_state_share: got 0, expected a number in (0, 1]"],
                 id="every-problem-at-once"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_POLICIES)
def test_bad_policy_is_reported_exactly(policy, text, expected):
    assert policy_problems(policy(text)) == expected


def test_policy_not_utf8(policy):
    path = policy("")
    path.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    assert policy_problems(path) == [
        "policy.toml:1: name: byte 0xe9 is not UTF-8: save the file as UTF-8 text"]


def test_policy_file_not_found(policy):
    assert policy_problems(Path("missing.toml")) == ["missing.toml: policy file not found"]


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("# only a comment\n\n", id="comment-only"),
    pytest.param("\ufeff", id="bom-only"),
])
def test_empty_policy_is_all_defaults(policy, text):
    loaded_policy = load_policy(policy(text)).policy
    assert loaded_policy == Policy().model_copy(update={"name": "policy"})


def test_policy_name_is_optional_and_defaults_to_the_file_stem(policy):
    assert load_policy(policy("[equity]\ngroup = \"ldc\"\n")).policy.name == "policy"
    assert load_policy(policy("name = \"mine\"\n")).policy.name == "mine"


def test_partial_tables_keep_the_other_defaults(policy):
    loaded_policy = load_policy(policy("[cofinancing]\nLIC = 0.9\n[weights.role]\n"
                                       "transit = 1.3\n")).policy
    assert loaded_policy.cofinancing.LIC == 0.9 and loaded_policy.cofinancing.LMIC == 0.75
    assert loaded_policy.role_weight(("origin",)) == 1.0
    assert loaded_policy.role_weight(("origin", "transit")) == 1.3


def test_target_keys_are_canonical_and_unknown_ones_warn(policy):
    loaded_file = load_policy(policy("[weights.target]\n\"10.C\" = 1.5\n\"5.2\" = 1.1\n"
                                     "[thematic.min_share]\n\"16.2\" = 0.0\n"),
                              targets={"10.c"})
    assert loaded_file.policy.weights.target == {"10.c": 1.5, "5.2": 1.1}
    assert [str(w) for w in loaded_file.warnings] == [
        'policy.toml:3: weights.target."5.2": names a target that no gap has',
        'policy.toml:5: thematic.min_share."16.2": names a target that no gap has',
    ]


def test_every_bundled_policy_loads():
    models = Path(__file__).resolve().parents[2] / "models"
    for path in sorted(models.glob("*.toml")):
        assert load_policy(path).policy.name == path.stem
