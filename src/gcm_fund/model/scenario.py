"""A `Scenario`: checked inputs and policy as one value, with their bytes and identity.

A scenario read from files keeps the bytes it read: a run folder copies them and the run id
hashes them, so a run of the files as they are is the same run whoever makes it. A
transform (`with_pledges`, `with_needs`, `with_policy`) returns a new scenario whose changed
file is written anew in canonical form (`table_bytes`, `policy_bytes`): the run folder then
copies the data solved, the run id changes with it, and `certify` rebuilds the same model
from the copies.

    >>> from gcm_fund.model.scenario import load_scenario            # doctest: +SKIP
    >>> base = load_scenario("inputs", "models/baseline.toml")  # doctest: +SKIP
    >>> half = base.with_pledges({"wb_ida": 150e6})             # doctest: +SKIP
    >>> half.run_id("highs", "1.11") != base.run_id("highs", "1.11")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gcm_fund.errors import InputError, Problem, UsageError
from gcm_fund.inputs.contributions import pledged_apart, revalue, value_pledges
from gcm_fund.inputs.csv_input import readable, sha256_bytes
from gcm_fund.inputs.cycle_effects import apply_cycle, without_carryover
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES, input_file
from gcm_fund.inputs.history import CARRYOVER_SOURCE
from gcm_fund.inputs.load import InputTable, ProblemData, load_inputs_and_policy
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.policy_file import PolicyFile, parse_policy
from gcm_fund.inputs.schema import (
    CONTRIBUTION_FILE,
    FX_FILE,
    INPUT_FILES,
    META_FILE,
    did_you_mean,
)
from gcm_fund.model import spec
from gcm_fund.model.limits import check_solvable

log = logging.getLogger(__name__)

DEFAULT_MODEL = "models/baseline.toml"


# ---------------------------------------------------------------------------------------
# Canonical bytes


def _cell(value: Any) -> str:
    """One cell as the input schema reads it back to the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text float() reads back to the same number
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def table_bytes(table: InputTable, counted: frozenset[str] = frozenset()) -> bytes:
    """An input table as canonical CSV: every column of the schema in its order, rows in
    key order, numbers as Python writes the shortest text that reads back the same.
    `counted`: the sources whose pledge contributions.csv makes, written blank
    (docs/contributions.md)."""
    columns = [column.name for column in input_file(table.name).columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([
        "" if name == "pledge_usd" and getattr(row, "source_id", None) in counted
        else _cell(getattr(row, name)) for name in columns] for row in table.rows)
    return buffer.getvalue().encode("utf-8")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)  # an integer key (max_per_state) reads back as one
    if isinstance(value, float):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} has no place in a policy")
        return repr(number)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()  # a TOML local date
    raise TypeError(f"no TOML form for {value!r}")


def _toml_table(path: tuple[str, ...], table: Mapping[str, Any], lines: list[str]) -> None:
    if path:
        lines.extend(["", f"[{'.'.join(_toml_key(p) for p in path)}]"])
    # A key whose value is None (an optional date not given) is left out, as it was.
    lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items()
                 if not isinstance(value, Mapping) and value is not None)
    for key, value in table.items():
        if isinstance(value, Mapping):
            _toml_table((*path, key), value, lines)


def policy_bytes(policy: Policy) -> bytes:
    """A policy as canonical TOML: every key written out, in the schema's order."""
    lines: list[str] = []
    _toml_table((), policy.model_dump(mode="python"), lines)
    return ("\n".join(lines) + "\n").encode("utf-8")


def with_table(data: ProblemData, table: InputTable) -> ProblemData:
    """The inputs with one table replaced, its file's bytes and hash those of the table in
    canonical form (`table_bytes`).

    A source whose pledge in the new sources.csv differs from what its contributions
    count for takes that pledge in USD, and its rows leave contributions.csv
    (docs/contributions.md: a source has one or the other)."""
    if table.name not in (*INPUT_FILES, *OPTIONAL_INPUT_FILES):
        raise ValueError(f"{table.name!r} is not an input table")
    if table.name == "sources.csv" and data.valuation is not None:
        data = _with_contributions(data, pledged_apart(data, table))
    counted = frozenset(data.valuation.pledges) if data.valuation is not None else frozenset()
    written = table  # the `carryover` source of `pool` is made from history.csv, not read
    if table.name == "sources.csv" and data.cycle is not None and data.cycle.pooled:
        written = without_carryover(table)
    raw = table_bytes(written, counted if table.name == "sources.csv" else frozenset())
    return replace(
        data,
        state_table=table if table.name == "states.csv" else data.state_table,
        gap_table=table if table.name == "gaps.csv" else data.gap_table,
        source_table=table if table.name == "sources.csv" else data.source_table,
        contribution_table=(table if table.name == CONTRIBUTION_FILE
                            else data.contribution_table),
        fx_table=table if table.name == FX_FILE else data.fx_table,
        file_bytes={**data.file_bytes, table.name: raw},
        file_sha256={**data.file_sha256, table.name: sha256_bytes(raw)},
    )


def _with_contributions(data: ProblemData, dropped: frozenset[str]) -> ProblemData:
    """The inputs without the contributions of the sources `dropped` (revalued, the file
    written anew; gone when no row is left)."""
    if not dropped or data.contribution_table is None or data.valuation is None:
        return data
    kept = [(row, line) for row, line in zip(data.contribution_table.rows,
                                             data.contribution_lines, strict=True)
            if row.source_id not in dropped]  # type: ignore[attr-defined]
    if not kept:
        files = {k: v for k, v in data.file_bytes.items() if k != CONTRIBUTION_FILE}
        hashes = {k: v for k, v in data.file_sha256.items() if k != CONTRIBUTION_FILE}
        return replace(data, contribution_table=None, contribution_lines=(), valuation=None,
                       file_bytes=files, file_sha256=hashes)
    table = InputTable(CONTRIBUTION_FILE, [row for row, _ in kept])
    valuation = revalue(data.valuation, table, data.fx_table)
    raw = table_bytes(table)
    return replace(data, contribution_table=table,
                   contribution_lines=tuple(line for _, line in kept), valuation=valuation,
                   file_bytes={**data.file_bytes, CONTRIBUTION_FILE: raw},
                   file_sha256={**data.file_sha256, CONTRIBUTION_FILE: sha256_bytes(raw)})


# ---------------------------------------------------------------------------------------
# The scenario


@dataclass(frozen=True)
class Scenario:
    """Checked inputs and policy: the tables and policy solved, their bytes and identity.

    `data.file_bytes` (with `data.meta_bytes`) and `policy_file.raw` are the bytes a run
    folder copies; `data.file_sha256` and `policy_file.sha256` their hashes, from which
    `identity` and `run_id` are made. `model_path` is the policy as the manifest names it.
    """

    data: ProblemData
    policy_file: PolicyFile
    model_path: str

    @property
    def policy(self) -> Policy:
        """The checked policy."""
        return self.policy_file.policy

    @property
    def warnings(self) -> list[Problem]:
        """Every warning about the inputs and the policy."""
        return [*self.data.warnings, *self.policy_file.warnings]

    def input_bytes(self) -> dict[str, bytes]:
        """The input files a run folder copies, by name (meta.toml when there is one)."""
        found = {name: self.data.file_bytes[name] for name in INPUT_FILES}
        found.update({name: self.data.file_bytes[name] for name in OPTIONAL_INPUT_FILES
                      if name in self.data.file_bytes})
        if self.data.meta_bytes is not None:
            found[META_FILE] = self.data.meta_bytes
        return found

    @property
    def identity(self) -> str:
        """The sha256 of the scenario's bytes: inputs and policy, whatever the solver."""
        payload = json.dumps({"inputs": dict(sorted(self.data.file_sha256.items())),
                              "policy": self.policy_file.sha256}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def run_id(self, solver_name: str, solver_version: str) -> str:
        """docs/outputs.md's run id of this scenario solved by this solver."""
        return spec.run_id(self.data.file_sha256, self.policy_file.sha256, solver_name,
                           solver_version)

    def canonical(self) -> Scenario:
        """The same scenario with every input table and the policy in canonical form: two
        scenarios of the same content, however their files were written, have the same
        canonical identity (meta.toml, not solved, stays as read)."""
        data = self.data
        for table in (data.state_table, data.gap_table, data.source_table,
                      data.contribution_table, data.fx_table):
            if table is not None:
                data = with_table(data, table)
        raw = policy_bytes(self.policy)
        checked = parse_policy(raw, self.policy_file.path, set(data.gap_table["target"].tolist()))
        return Scenario(data, checked, self.model_path)

    # -- transforms ------------------------------------------------------------------

    def with_table(self, table: InputTable) -> Scenario:
        """The scenario with one input table replaced (its file written anew)."""
        return replace(self, data=with_table(self.data, table))

    def with_pledges(self, pledges: Mapping[str, float]) -> Scenario:
        """The scenario with these sources' `pledge_usd` (USD, each >= 0) replaced."""
        ids = self.data.source_table["source_id"].tolist()
        index = {s: i for i, s in enumerate(ids)}
        _check_keys("sources.csv", "source_id", list(pledges), ids)
        if self.data.cycle is not None and self.data.cycle.pooled and CARRYOVER_SOURCE in pledges:
            raise UsageError(f"{CARRYOVER_SOURCE}: its pledge is the last cycle's undisbursed "
                             "balance, made from history.csv (docs/cycles.md); change that "
                             "file or [carryover] instead")
        column = list(self.data.source_table["pledge_usd"].tolist())
        for source_id, value in pledges.items():
            value = float(value)
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"pledge of {source_id}: got {value!r}, expected a number "
                                 ">= 0 (USD)")
            column[index[source_id]] = value
        if column == self.data.source_table["pledge_usd"].tolist():
            return self
        return self.with_table(self.data.source_table.replaced("pledge_usd", column))

    def with_needs(self, needs: Mapping[tuple[str, str], float]) -> Scenario:
        """The scenario with these gaps' `need_usd` (keyed by (iso3, target); USD, each
        > 0) replaced."""
        keys = list(zip(self.data.gap_table["iso3"].tolist(),
                        self.data.gap_table["target"].tolist(), strict=True))
        index = {k: i for i, k in enumerate(keys)}
        _check_keys("gaps.csv", "iso3,target", [",".join(k) for k in needs],
                    [",".join(k) for k in keys])
        column = list(self.data.gap_table["need_usd"].tolist())
        for key, value in needs.items():
            value = float(value)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"need of {','.join(key)}: got {value!r}, expected a number "
                                 "> 0 (USD)")
            column[index[(key[0], key[1])]] = value
        if column == self.data.gap_table["need_usd"].tolist():
            return self
        return self.with_table(self.data.gap_table.replaced("need_usd", column))

    def with_policy(self, policy: Policy) -> Scenario:
        """The scenario under another policy, checked as a policy file is
        (`InputError` when it breaks a rule of the file)."""
        if policy == self.policy:
            return self
        path = self.policy_file.path
        raw = policy_bytes(policy)
        checked = parse_policy(raw, path, set(self.data.gap_table["target"].tolist()))
        if checked.policy != policy:
            raise ValueError("the policy does not read back as written")  # a bug, not input
        data = self.data
        if data.contribution_table is not None and policy.pledges != self.policy.pledges:
            # docs/contributions.md: another date or count, other B_f
            data = value_pledges(data, checked)
        if data.history is not None and _cycle_keys(policy) != _cycle_keys(self.policy):
            data = apply_cycle(data, policy)  # docs/cycles.md: other factors, U', carry-over
        return replace(self, policy_file=checked, data=data)


def _cycle_keys(policy: Policy) -> tuple[Any, ...]:
    """The policy's tables the history's effects depend on (docs/cycles.md)."""
    return (policy.cycle, policy.performance, policy.carryover)


def _check_keys(file: str, column: str, asked: Sequence[str], known: Sequence[str]) -> None:
    present = set(known)
    missing = [key for key in asked if key not in present]
    if missing:
        raise UsageError("; ".join(f"{key!r} is not a {column} of {file}"
                                   f"{did_you_mean(key, list(known))}" for key in missing))


def load_scenario(inputs: Path | str, policy: Path | str, model_path: str | None = None
                  ) -> Scenario:
    """Read and check the inputs and the policy file, and that the policy can be met
    (`InputError` with every problem otherwise). `model_path` is how the manifest names
    the policy (default: `policy` as given)."""
    started = time.perf_counter()
    data, policy_file = load_inputs_and_policy(inputs, policy)
    unsolvable = check_solvable(data, policy_file.policy, str(policy))
    if unsolvable:
        raise InputError(unsolvable)
    log.info("loaded %s: %s States, %s gaps, %s sources in %.2f s", inputs,
             len(data.state_table), len(data.gap_table), len(data.source_table),
             time.perf_counter() - started)
    label = Path(model_path if model_path is not None else str(policy)).as_posix()
    return Scenario(data, policy_file, readable(label))


def project_path(relative: str) -> Path:
    """A bundled path: relative to the current folder when it exists there, else to the
    source checkout this package was installed from."""
    here = Path(relative)
    if here.exists():
        return here
    # src/gcm_fund/<package>/<module>.py: the checkout is one folder above src/.
    checkout = Path(__file__).resolve().parents[len(__name__.split("."))] / relative
    return checkout if checkout.exists() else here


def policy_path(model: Path | str | None) -> Path:
    """The policy file a command reads: `model`, or the bundled baseline when None."""
    return Path(model) if model is not None else project_path(DEFAULT_MODEL)


def load(inputs: Path | str, model: Path | str | None = None) -> Scenario:
    """Read and check the inputs and the policy (the bundled baseline when None)."""
    model_path = str(model) if model is not None else DEFAULT_MODEL
    return load_scenario(inputs, policy_path(model), model_path)
