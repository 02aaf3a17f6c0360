"""Write the bad-input folders of this directory: each a copy of `tests/data/tiny/` with one
defect, and `expected.txt`, the exact stderr of `gcm-fund validate CASE --model
CASE/policy.toml` run from this directory.

The expected messages are written here by hand, not captured from the program: rerun
(`python tests/data/bad/make_cases.py`) after changing a case, then review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY = HERE.parent / "tiny"
FILES = ("states.csv", "gaps.csv", "sources.csv", "policy.toml")

GAP = "KEN,8.8,10000000"  # gaps.csv line 3
STATE = "KEN,Kenya,Africa,LMIC,origin;transit,false,false,,100000000000"  # states.csv line 2
GRANT = "deu,Germany grant,donor,grant,25000000,1,,,,,,DEU"  # sources.csv line 2
LOAN = "wb,World Bank loan,ifi,loan,20000000,0.4,10.7;8.8,Africa,LIC;LMIC,,0.8,"  # line 3
# states.csv with a debt_risk column, every State unrated (SPEC 4c).
STATES_WITH_RISK = (
    "iso3,name,region,income_group,roles,ldc,debt_distress,debt_risk,absorption_usd,gni_usd\n"
    "KEN,Kenya,Africa,LMIC,origin;transit,false,false,,,100000000000\n"
    "MLI,Mali,Africa,LIC,transit,true,true,,50000000,\n"
    "DEU,Germany,Europe,HIC,destination,false,false,,,4000000000000\n")
PLAIN = "written plainly (no thousands separators or currency signs)"

# name: ({file: (old, new) | full new text | bytes | None to delete}, [problem lines])
CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "missing_column": (
        {"gaps.csv": ("need_usd", "needusd")},
        ["gaps.csv:1: need_usd: required column is missing (did you mean needusd?)"]),
    "repeated_column": (
        {"states.csv": ("absorption_usd,gni_usd", "absorption_usd,ldc")},
        ["states.csv:1: ldc: column appears more than once"]),
    "header_only": (
        {"gaps.csv": "iso3,target,need_usd\n"},
        ["gaps.csv: the file has a header and no rows"]),
    "empty_file": (
        {"sources.csv": ""},
        ["sources.csv: the file is empty: expected a header row"]),
    "missing_file": (
        {"states.csv": None},
        ["states.csv: file not found"]),
    "extra_field": (
        {"gaps.csv": (GAP, GAP + ",5")},
        ["gaps.csv:3: field 4: the row has 4 fields, the header 3 "
         "(quote a cell that holds a comma)"]),
    "blank_required": (
        {"gaps.csv": (GAP, "KEN,,10000000")},
        ["gaps.csv:3: target: required, got a blank cell"]),
    "unknown_iso3": (
        {"gaps.csv": (GAP, "KEM,8.8,10000000")},
        ["gaps.csv:3: iso3: got 'KEM', not in states.csv (did you mean KEN?)"]),
    "iso3_by_name": (
        {"gaps.csv": (GAP, "Kenya,8.8,10000000")},
        ["gaps.csv:3: iso3: got 'Kenya', not in states.csv (did you mean KEN?)"]),
    "iso3_lower_case": (
        {"states.csv": (STATE, STATE.replace("KEN", "ken"))},
        ["states.csv:2: iso3: got 'ken', expected 3 upper-case letters (did you mean KEN?)"]),
    "duplicate_state": (
        {"states.csv": ("DEU,Germany", "KEN,Germany")},
        ["sources.csv:2: donor_iso3: got 'DEU', not in states.csv",
         "states.csv:4: iso3: duplicate key 'KEN', first on line 2"]),
    "duplicate_gap": (
        {"gaps.csv": ("MLI,10.c,5000000", "MLI,10.7,5000000")},
        ["gaps.csv:5: target: duplicate key 'MLI,10.7', first on line 4"]),
    "duplicate_source": (
        {"sources.csv": ("wb,World", "deu,World")},
        ["sources.csv:3: source_id: duplicate key 'deu', first on line 2"]),
    "negative_need": (
        {"gaps.csv": (GAP, "KEN,8.8,-10000000")},
        ["gaps.csv:3: need_usd: got '-10000000', expected a number > 0 (USD)"]),
    "non_numeric_amount": (
        {"sources.csv": (GRANT, GRANT.replace("25000000", "25 million"))},
        ["sources.csv:2: pledge_usd: got '25 million', expected a number >= 0 (USD)"]),
    "nan_amount": (
        {"gaps.csv": (GAP, "KEN,8.8,NaN")},
        ["gaps.csv:3: need_usd: got 'NaN', expected a finite number"]),
    "overflow_amount": (
        {"gaps.csv": (GAP, "KEN,8.8,1e400")},
        ["gaps.csv:3: need_usd: got '1e400', out of range for a number"]),
    "thousands_separator": (
        {"gaps.csv": (GAP, 'KEN,8.8,"10,000,000"')},
        [f"gaps.csv:3: need_usd: got '10,000,000', expected a number > 0 (USD) {PLAIN}"]),
    "currency_sign": (
        {"gaps.csv": (GAP, "KEN,8.8,$10000000")},
        [f"gaps.csv:3: need_usd: got '$10000000', expected a number > 0 (USD) {PLAIN}"]),
    "unknown_income_group": (
        {"states.csv": (STATE, STATE.replace("LMIC", "lmic"))},
        ["states.csv:2: income_group: got 'lmic', expected one of LIC, LMIC, UMIC, HIC "
         "(did you mean LMIC?)"]),
    "unknown_kind": (
        {"sources.csv": (LOAN, LOAN.replace(",ifi,", ",bank,"))},
        ["sources.csv:3: kind: got 'bank', expected one of donor, ifi, private"]),
    "loan_without_grant_element": (
        {"sources.csv": (LOAN, LOAN.replace(",0.4,", ",,"))},
        ["sources.csv:3: grant_element: a loan needs a grant_element in [0, 1]"]),
    "grant_with_grant_element": (
        {"sources.csv": (GRANT, GRANT.replace(",1,", ",0.5,"))},
        ["sources.csv:2: grant_element: got 0.5, a grant's grant_element is blank or 1"]),
    "max_state_share_zero": (
        {"sources.csv": (LOAN, LOAN.replace(",0.8,", ",0,"))},
        ["sources.csv:3: max_state_share: got '0', expected a number in (0, 1]"]),
    "bad_target": (
        {"gaps.csv": (GAP, "KEN,10.77a,10000000")},
        ["gaps.csv:3: target: got '10.77a', expected an SDG target code such as 10.7 or "
         "10.c"]),
    "bad_source_id": (
        {"sources.csv": (LOAN, LOAN.replace("wb,", "World Bank,", 1))},
        ["sources.csv:3: source_id: got 'World Bank', expected lower-case letters, digits, "
         "'_' or '-'"]),
    "earmark_unknown_income_group": (
        {"sources.csv": (LOAN, LOAN.replace("LIC;LMIC", "LIC;LMC"))},
        ["sources.csv:3: income_groups: got 'LMC', expected one of LIC, LMIC, UMIC, HIC "
         "(did you mean LMIC?)"]),
    "earmark_unknown_iso3": (
        {"sources.csv": (LOAN, LOAN.replace("LIC;LMIC,,", "LIC;LMIC,MLI;KNE,"))},
        ["sources.csv:3: exclude_states: got 'KNE', not in states.csv (did you mean KEN?)"]),
    "donor_unknown": (
        {"sources.csv": (GRANT, GRANT.replace("DEU", "FRA"))},
        ["sources.csv:2: donor_iso3: got 'FRA', not in states.csv"]),
    "bad_boolean": (
        {"states.csv": (STATE, STATE.replace("false,false", "maybe,false"))},
        ["states.csv:2: ldc: got 'maybe', expected true or false"]),
    "debt_risk_beside_distress": (
        {"states.csv": STATES_WITH_RISK.replace("MLI,Mali,Africa,LIC,transit,true,true,",
                                                "MLI,Mali,Africa,LIC,transit,true,true,low")},
        ["states.csv:3: debt_risk: got 'low', but debt_distress is true, which means "
         "distress: leave debt_risk blank or write distress"]),
    "debt_risk_unknown": (
        {"states.csv": STATES_WITH_RISK.replace("origin;transit,false,false,",
                                                "origin;transit,false,false,medium")},
        ["states.csv:2: debt_risk: got 'medium', expected one of low, moderate, high, "
         "distress"]),
    "policy_max_share_out_of_range": (
        {"policy.toml": ('group = "all"', 'group = "all"\n\n[loans]\n'
                         "max_share = { moderate = 1.5 }")},
        ["policy.toml:23: loans.max_share.moderate: got 1.5, expected a number in [0, 1]"]),
    "policy_max_share_unknown_risk": (
        {"policy.toml": ('group = "all"', 'group = "all"\n\n[loans.max_share]\nsevere = 0')},
        ["policy.toml:23: loans.max_share.severe: unknown debt risk, expected one of low, "
         "moderate, high, distress, unrated"]),
    "policy_floor_share_out_of_range": (
        {"policy.toml": ('group = "all"', 'group = "all"\nfloor_share = 0')},
        ["policy.toml:21: equity.floor_share: got 0, expected a number in (0, 1]"]),
    "semicolon_delimited": (
        {"gaps.csv": "iso3;target;need_usd\nKEN;10.7;20000000\n"},
        ["gaps.csv:1: iso3;target;need_usd: the columns are separated by ';', expected ',': "
         "save the file as comma-separated values"]),
    "latin1": (
        {"states.csv": ("Kenya", "K\u00e9nya")},
        ["states.csv:2: name: byte 0xe9 is not UTF-8 (is the file Latin-1 or "
         "Windows-1252?): save the file as UTF-8 text"]),
    "unclosed_quote": (
        {"states.csv": ("Mali,", '"Mali,')},
        ["states.csv:3: name: the cell runs over several lines: is a '\"' not closed?"]),
    "policy_unknown_key": (
        {"policy.toml": ('group = "all"', 'group = "all"\nmaximise = true')},
        ["policy.toml:21: equity.maximise: unknown key (did you mean maximize?)"]),
    "policy_unquoted_target": (
        {"policy.toml": ('"10.7" = 1.2', "10.7 = 1.2")},
        ['policy.toml:8: weights.target."10.7": an unquoted target code is read as a '
         'nested table: quote it, "10.7" = ...']),
    "policy_out_of_range": (
        {"policy.toml": ("max_state_share = 0.9", "max_state_share = 0")},
        ["policy.toml:14: limits.max_state_share: got 0, expected a number in (0, 1]"]),
    "policy_syntax": (
        {"policy.toml": ("[equity]", "[equity")},
        ["policy.toml:19: not valid TOML: Expected ']' at the end of a table declaration "
         "(column 8)"]),
    "all_at_once": (
        {"states.csv": (STATE, STATE.replace("LMIC", "LMCI")),
         "gaps.csv": (GAP, "KEN,8.8,inf"),
         "sources.csv": (LOAN, LOAN.replace(",loan,", ",credit,"))},
        ["gaps.csv:3: need_usd: got 'inf', expected a finite number",
         "sources.csv:3: instrument: got 'credit', expected one of grant, loan",
         "states.csv:2: income_group: got 'LMCI', expected one of LIC, LMIC, UMIC, HIC "
         "(did you mean LMIC?)"]),
}

LATIN1 = {"latin1"}


def write_case(root: Path, name: str, edits: dict[str, object], lines: list[str]) -> None:
    """One case folder under `root`: the damaged files and `expected.txt`."""
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for file in FILES:
        text = (TINY / file).read_text(encoding="utf-8")
        edit = edits.get(file, ...)
        if edit is None:
            continue
        if isinstance(edit, tuple):
            old, new = edit
            assert text.count(old) == 1, (name, file, old)
            text = text.replace(old, new)
        elif isinstance(edit, str):
            text = edit
        data = text.encode("latin-1" if name in LATIN1 and file == "states.csv" else "utf-8")
        (folder / file).write_bytes(data)
    count = len(lines)
    head = f"{count} problem{'s' if count != 1 else ''} in the input:"
    body = [head, *(f"{name}/{line}" for line in lines)]
    (folder / "expected.txt").write_text("\n".join(body) + "\n", encoding="utf-8")


def main(root: Path = HERE) -> None:
    """Write every case under `root` (this directory by default)."""
    for name, (edits, lines) in CASES.items():
        write_case(root, name, edits, lines)


if __name__ == "__main__":
    main()
