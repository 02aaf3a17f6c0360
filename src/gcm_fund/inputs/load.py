"""Reading an input folder into checked, frozen tables (and, with `load_inputs_and_policy`,
its policy file too).

Every problem in every file is collected in one pass and raised as one `InputError`, so a
user fixes a spreadsheet once, not once per run.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.contributions import Valuation, value_pledges
from gcm_fund.inputs.csv_input import file_label, read_csv_rows, sha256_bytes, validate_rows
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES, input_file
from gcm_fund.inputs.policy_file import (
    TOML_LINE,
    PolicyFile,
    find_toml_line,
    load_policy,
    policy_message,
    render_key,
)
from gcm_fund.inputs.schema import (
    CONTRIBUTION_FILE,
    FX_FILE,
    INCOME_GROUPS,
    INPUT_FILES,
    ISO3_PATTERN,
    META_FILE,
    InputFile,
    InputMeta,
    did_you_mean,
    normalise_target,
    parse_iso3,
    parse_source_id,
    shown,
    split_list,
)
from gcm_fund.writing import file_kind

if TYPE_CHECKING:
    import pandas as pd

    from gcm_fund.inputs.cycle_effects import CycleEffects


class InputTable:
    """The checked rows of one input file, sorted by key: read as numpy columns
    (`table["need_usd"]`) or as a pandas DataFrame (`table.frame`).

    The frame is built on first use: `validate` reads columns only and never imports
    pandas (whose import costs more than all of its work on small inputs). Both views
    are shared, never changed in place: a changed table is a new one (`replaced`).
    """

    def __init__(self, name: str, rows: Sequence[BaseModel]) -> None:
        self.name = name  # the file, a key of schema.INPUT_FILES
        self.rows = tuple(rows)
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> np.ndarray:
        """One column as a numpy array: a number column as floats (NaN when blank), a
        true/false column as booleans, any other as Python objects (str, tuple, None)."""
        found = self._columns.get(column)
        if found is None:
            values = [getattr(row, column) for row in self.rows]
            kind = input_file(self.name).column(column).kind
            if kind == "number":
                found = np.array(values, dtype=float)
            elif kind == "true/false":
                found = np.array(values, dtype=bool)
            else:
                found = np.empty(len(values), dtype=object)
                found[:] = values
            found.flags.writeable = False  # shared by every caller: copy to change it
            self._columns[column] = found
        return found

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, one column per field, index 0..n-1."""
        import pandas as pd

        return pd.DataFrame([row.model_dump() for row in self.rows])

    def replaced(self, column: str, values: Sequence[Any]) -> InputTable:
        """The same rows with `column` set to `values` (one per row)."""
        return InputTable(self.name, [row.model_copy(update={column: value})
                                      for row, value in zip(self.rows, values, strict=True)])


@dataclass(frozen=True)
class ProblemData:
    """The checked inputs: one table per file, sorted by key, plus what was warned about.

    Rows are sorted by their keys (plain string order) so that the order of rows in a
    file never changes the model, and so never changes which optimum a solver returns.
    `state_table`, `gap_table` and `source_table` hold them; `states`, `gaps` and
    `sources` are the same as DataFrames.
    """

    state_table: InputTable
    gap_table: InputTable
    source_table: InputTable
    folder: Path
    file_sha256: dict[str, str]
    warnings: list[Problem] = field(default_factory=list)
    meta: InputMeta = field(default_factory=InputMeta)
    meta_bytes: bytes | None = None  # meta.toml as read, None when the folder has none
    # The bytes each file had when read: a run folder copies these, not the file as it
    # is when the run ends, so the copies always match the hashes and the tables.
    file_bytes: dict[str, bytes] = field(default_factory=dict, repr=False)
    # docs/contributions.md: contributions.csv and fx.csv when the folder has them (rows in key
    # order, with the line each row was read from), and the pledges valued from them.
    contribution_table: InputTable | None = None
    contribution_lines: tuple[int, ...] = ()
    fx_table: InputTable | None = None
    valuation: Valuation | None = None
    # programmes.csv, read under `[allocation] method = "programmes"` only (docs/programmes.md).
    programme_table: InputTable | None = None
    # history.csv when the folder has it (docs/cycles.md): inputs.history's frame.
    history: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    # What the history does to this round under the policy (inputs.cycle_effects).
    cycle: CycleEffects | None = field(default=None, repr=False, compare=False)

    @property
    def states(self) -> pd.DataFrame:
        """states.csv's rows, sorted by iso3."""
        return self.state_table.frame

    @property
    def gaps(self) -> pd.DataFrame:
        """gaps.csv's rows, sorted by iso3 and target."""
        return self.gap_table.frame

    @property
    def sources(self) -> pd.DataFrame:
        """sources.csv's rows, sorted by source_id."""
        return self.source_table.frame

    @cached_property
    def gap_state(self) -> np.ndarray:
        """The row in states of each gap's State."""
        row = {code: i for i, code in enumerate(self.state_table["iso3"].tolist())}
        return np.array([row[code] for code in self.gap_table["iso3"].tolist()], dtype=np.intp)



def _report_duplicates(
    label: str, keyed: list[tuple[int, tuple[str, ...]]], column: str, problems: list[Problem]
) -> None:
    first: dict[tuple[str, ...], int] = {}
    for line, key in keyed:
        if key in first:
            problems.append(
                Problem(label, line, column,
                        f"duplicate key {shown(','.join(key))}, first on line {first[key]}")
            )
        else:
            first[key] = line


def _valid_key(rows: list[tuple[int, dict[str, str]]], *columns: tuple[str, Any]
               ) -> list[tuple[int, tuple[str, ...]]]:
    """(line, key) of every row whose key cells parse, whatever its other cells hold:
    a duplicate is a problem of its own, reported with the row's other problems."""
    keyed = []
    for line, row in rows:
        try:
            key = tuple(parse(row[name]) for name, parse in columns)
        except (KeyError, ValueError):
            continue
        keyed.append((line, key))
    return keyed


def _parsed(parse: Any) -> Any:
    def check(text: str) -> str:
        try:
            return str(parse(text))
        except PydanticCustomError as exc:
            raise ValueError(str(exc)) from None

    return check


# How a key cell is read for the duplicate check (others: stripped): the parsed form, so
# that `10.C` and `10.c` are one key; a cell that does not parse is a problem of its own.
_KEY_CELL: dict[tuple[str, str], Any] = {
    ("states.csv", "iso3"): _parsed(parse_iso3),
    ("gaps.csv", "target"): _parsed(normalise_target),
    ("sources.csv", "source_id"): _parsed(parse_source_id),
}


def load_inputs(folder: Path | str) -> ProblemData:
    """Read and check states.csv, gaps.csv and sources.csv of `folder`.

    Raises `InputError` with every problem of every file; returns the tables otherwise.
    References between files and duplicate keys are checked on the cells as read, so a
    row with a bad amount still has its iso3 and key checked: every problem at once.
    """
    folder = Path(folder)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked: dict[str, list[tuple[int, Any]]] = {}
    cells: dict[str, list[tuple[int, dict[str, str]]]] = {}
    complete: dict[str, bool] = {}
    hashes: dict[str, str] = {}
    contents: dict[str, bytes] = {}
    if not folder.is_dir():
        kind = file_kind(folder)
        why = ("input folder not found" if kind is None else
               f"expected a folder with states.csv, gaps.csv and sources.csv, found {kind}")
        raise InputError([Problem(str(folder), None, None, why)])
    def read_file(name: str, spec: InputFile) -> None:
        model, columns = spec
        path = folder / name
        rows, raw, complete[name] = read_csv_rows(path, columns, problems, warnings)
        if raw is not None:
            hashes[name] = sha256_bytes(raw)
            contents[name] = raw
        cells[name] = rows
        checked[name] = validate_rows(file_label(path), model, rows, problems)

    for name, spec in INPUT_FILES.items():
        read_file(name, spec)
    # docs/contributions.md's files are read whenever present (other optional files only
    # under the method that reads them).
    for name in (CONTRIBUTION_FILE, FX_FILE):
        if (folder / name).exists() or (folder / name).is_symlink():
            read_file(name, OPTIONAL_INPUT_FILES[name])

    meta, meta_bytes = load_meta(folder / META_FILE, problems)
    if meta_bytes is not None:
        hashes[META_FILE] = sha256_bytes(meta_bytes)

    states = checked["states.csv"]
    gaps = checked["gaps.csv"]
    sources = checked["sources.csv"]
    states_label = file_label(folder / "states.csv")
    sources_label = file_label(folder / "sources.csv")

    # Keys and references as schema.INPUT_FILES declares them.
    for spec in INPUT_FILES.values():
        parsers = tuple((name, _KEY_CELL.get((spec.name, name), str.strip)) for name in spec.key)
        _report_duplicates(file_label(folder / spec.name), _valid_key(cells[spec.name], *parsers),
                           spec.key[-1], problems)

    # A State whose row has another problem still exists for the other files (its code
    # upper-cased when the case was the problem): one mistake, one message. When a row of
    # states.csv could not be read at all, references to States cannot be checked.
    known_codes = {row["iso3"].upper() for _, row in cells["states.csv"] if "iso3" in row}
    states_read = bool(known_codes) and complete["states.csv"]
    iso3s = sorted(c for c in known_codes if ISO3_PATTERN.fullmatch(c))
    names = {row["name"].lower(): row["iso3"].upper() for _, row in cells["states.csv"]
             if "iso3" in row and "name" in row}

    def unknown_iso3(value: str) -> str:
        hint = did_you_mean(value, iso3s)
        if not hint and value.lower() in names:
            hint = f" (did you mean {names[value.lower()]}?)"
        return f"got {shown(value)}, not in states.csv{hint}"

    for spec in INPUT_FILES.values():
        for reference in spec.references:
            # Every reference of docs/inputs.md names a State (the declarations say so;
            # test_readme checks each one is refused when broken).
            assert (reference.to_file, reference.to_column) == ("states.csv", "iso3")
            if not states_read:
                continue
            listed = spec.column(reference.column).kind.startswith(";-list")
            for line, row in cells[spec.name]:
                if reference.column not in row:
                    continue
                cell = row[reference.column]
                for code in (split_list(cell) if listed else (cell,)):
                    if code not in known_codes:
                        problems.append(Problem(file_label(folder / spec.name), line,
                                                reference.column, unknown_iso3(code)))
    _check_contributions(folder, cells, complete, problems)
    for line, row in cells["sources.csv"]:
        for group in split_list(row.get("income_groups", "")):
            if group not in INCOME_GROUPS:
                problems.append(
                    Problem(sources_label, line, "income_groups",
                            f"got {shown(group)}, expected one of {', '.join(INCOME_GROUPS)}"
                            f"{did_you_mean(group, INCOME_GROUPS)}")
                )

    if problems:
        raise InputError(problems)

    regions = {r.region for _, r in states}
    targets = {g.target for _, g in gaps}
    warnings.extend(_near_regions(states_label, states, sources_label, sources))
    for line, source in sources:
        if source.source_id.startswith("-"):
            # The schema allows the id; a spreadsheet opening a CSV reads such a cell as a formula.
            warnings.append(
                Problem(sources_label, line, "source_id",
                        f"{shown(source.source_id)} starts with '-', which a spreadsheet "
                        "reads as a formula: an id starting with a letter or digit is safer")
            )
    for line, source in sources:
        for region in source.regions:
            if region not in regions:
                warnings.append(
                    Problem(sources_label, line, "regions",
                            f"{shown(region)} matches no State's region"
                            f"{did_you_mean(region, sorted(regions))}")
                )
        for target in source.targets:
            if target not in targets:
                warnings.append(
                    Problem(sources_label, line, "targets", f"{shown(target)} matches no gap")
                )

    contributions = None
    lines: tuple[int, ...] = ()
    if CONTRIBUTION_FILE in checked:
        ordered = sorted(checked[CONTRIBUTION_FILE], key=lambda pair: _key_of(
            CONTRIBUTION_FILE, pair[1]))
        lines = tuple(line for line, _ in ordered)
        contributions = InputTable(CONTRIBUTION_FILE, [row for _, row in ordered])
    return ProblemData(
        state_table=_table("states.csv", states),
        gap_table=_table("gaps.csv", gaps),
        source_table=_table("sources.csv", sources),
        folder=folder,
        file_sha256=hashes,
        file_bytes=contents,
        warnings=warnings,
        meta=meta,
        meta_bytes=meta_bytes,
        contribution_table=contributions,
        contribution_lines=lines,
        fx_table=_table(FX_FILE, checked[FX_FILE]) if FX_FILE in checked else None,
    )


def _check_contributions(folder: Path, cells: dict[str, list[tuple[int, dict[str, str]]]],
                         complete: dict[str, bool], problems: list[Problem]) -> None:
    """docs/contributions.md across files: a contribution's source is in sources.csv; a source with
    rows has `pledge_usd` blank, one without has it given; fx.csv has one rate per currency and
    day."""
    sources_label = file_label(folder / "sources.csv")
    rows = cells.get(CONTRIBUTION_FILE)
    with_rows = {row.get("source_id", "").strip() for _, row in rows or []}
    if FX_FILE in cells:
        _report_duplicates(file_label(folder / FX_FILE), _valid_key(
            cells[FX_FILE], ("currency", str.strip), ("date", str.strip)), "date", problems)
    if rows is not None and complete["sources.csv"]:
        known = [row["source_id"] for _, row in cells["sources.csv"] if "source_id" in row]
        label = file_label(folder / CONTRIBUTION_FILE)
        for line, row in rows:
            source_id = row.get("source_id")
            if source_id is not None and source_id not in known:
                problems.append(Problem(label, line, "source_id",
                                        f"got {shown(source_id)}, not in sources.csv"
                                        f"{did_you_mean(source_id, known)}"))
    for line, row in cells["sources.csv"]:
        source_id = row.get("source_id")
        given = "pledge_usd" in row
        if given and source_id in with_rows:
            problems.append(Problem(
                sources_label, line, "pledge_usd",
                f"source {source_id} has rows in {CONTRIBUTION_FILE}, which make its "
                "pledge: leave pledge_usd blank"))
        elif not given and source_id not in with_rows and (
                rows is None or complete[CONTRIBUTION_FILE]):
            hint = ("" if rows is None
                    else f" (or give source {source_id} rows in {CONTRIBUTION_FILE})")
            problems.append(Problem(sources_label, line, "pledge_usd",
                                    f"required, got a blank cell{hint}"))


def load_meta(path: Path, problems: list[Problem]) -> tuple[InputMeta, bytes | None]:
    """The optional meta.toml of an input folder and its bytes; defaults when absent.

    Its problems (not UTF-8, not TOML, an unknown key, a value of the wrong type) join
    `problems`, each with its line and key.
    """
    if not path.is_file():
        return InputMeta(), None
    label = file_label(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(label, raw[: exc.start].count(b"\n") + 1, None,
                                f"byte 0x{raw[exc.start]:02x} is not UTF-8: save the file "
                                "as UTF-8 text"))
        return InputMeta(), raw
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = TOML_LINE.search(message)
        why = TOML_LINE.sub("", message).strip()
        problems.append(Problem(label, int(found.group(1)) if found else None, None,
                                f"not valid TOML: {why}"))
        return InputMeta(), raw
    try:
        return InputMeta.model_validate(document), raw
    except ValidationError as exc:
        for error in exc.errors():
            key_path = tuple(str(p) for p in error["loc"])
            known = ", ".join(InputMeta.model_fields)
            why = (f"unknown key, expected one of {known}" if error["type"] == "extra_forbidden"
                   else policy_message(error, key_path))
            problems.append(Problem(label, find_toml_line(text, key_path),
                                    render_key(key_path) or None, why))
        return InputMeta(), raw


def _latin_lookalike(character: str) -> str:
    """The Latin letter `character` is drawn like (a Cyrillic "а" is an "a"), per Unicode's
    confusables table; itself when it has none or is Latin already."""
    if character.isascii():
        return character
    from confusable_homoglyphs import confusables  # a 2 MB table: only for non-ASCII text

    for entry in confusables.is_confusable(character, greedy=True,
                                           preferred_aliases=["latin"]) or []:
        for glyph in entry["homoglyphs"]:
            if glyph["n"].startswith("LATIN ") and len(glyph["c"]) == 1:
                return str(glyph["c"])
    return character


def region_key(text: str) -> str:
    """A region as a reader skims it: compatibility-normalised, case-folded, without
    invisible format characters (a zero-width space) or spaces of any kind (a no-break
    space typed inside a word), and with letters of other scripts drawn like Latin ones
    read as those (a Cyrillic "А" in "Africa")."""
    text = unicodedata.normalize("NFKC", text)
    visible = "".join(_latin_lookalike(ch) for ch in text if unicodedata.category(ch) != "Cf")
    return "".join(visible.casefold().split())


def _lookalikes(text: str) -> str:
    """", which has letters of another script that look Latin (Cyrillic)", or ""."""
    scripts = sorted({unicodedata.name(ch, "?").split()[0].title() for ch in text
                      if not ch.isascii() and _latin_lookalike(ch) != ch})
    return f", which has letters that only look Latin ({', '.join(scripts)})" if scripts else ""


def _near_regions(states_label: str, states: list[tuple[int, Any]], sources_label: str,
                  sources: list[tuple[int, Any]]) -> list[Problem]:
    """A warning for each State whose region differs from a source's region earmark only
    in case, invisible characters or look-alike letters of another script: regions match
    exactly (docs/inputs.md), so that earmark silently leaves the State out."""
    earmarked: dict[str, tuple[str, int]] = {}
    for line, source in sources:
        for region in source.regions:
            earmarked.setdefault(region_key(region), (region, line))
    found = []
    for line, state in states:
        near = earmarked.get(region_key(state.region))
        if near is not None and near[0] != state.region:
            found.append(
                Problem(states_label, line, "region",
                        f"{shown(state.region)}{_lookalikes(state.region)} is not "
                        f"{shown(near[0])}, the region earmarked by {sources_label} line "
                        f"{near[1]}, so that earmark leaves {state.iso3} out (did you mean "
                        f"{shown(near[0])}?)")
            )
    return found


def _key_of(name: str, row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, k) for k in input_file(name).key)


def _table(name: str, rows: list[tuple[int, Any]]) -> InputTable:
    """The rows of one file sorted by its key (duplicate keys were refused)."""
    return InputTable(name, sorted((row for _, row in rows),
                                   key=lambda row: _key_of(name, row)))


def load_inputs_and_policy(inputs: Path | str, model: Path | str
                           ) -> tuple[ProblemData, PolicyFile]:
    """`load_inputs` and `load_policy` together: the problems of both in one `InputError`,
    so that a user sees every file's problems in one run."""
    problems: list[Problem] = []
    data: ProblemData | None = None
    try:
        data = load_inputs(inputs)
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        targets = None if data is None else set(data.gap_table["target"].tolist())
        policy_file = load_policy(model, targets)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    assert data is not None
    data = value_pledges(data, policy_file)
    from gcm_fund.inputs.cycle_effects import load_cycle  # it builds on this module

    data = load_cycle(inputs, data, policy_file)
    if policy_file.policy.allocation.reads_programmes:
        from gcm_fund.inputs.programmes import load_programmes

        data = load_programmes(inputs, data)
    return data, policy_file
