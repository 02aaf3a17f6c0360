"""Reading a policy TOML file into a checked `Policy`, every problem with its line and key.

A policy can name thousands of keys: the lines of its keys are indexed once (`TomlLines`).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gcm_fund.errors import InputError, Problem
from gcm_fund.inputs.csv_input import file_label, readable, sha256_bytes
from gcm_fund.inputs.policy import Policy
from gcm_fund.inputs.schema import ALLOCATION_METHODS, EQUITY_GROUPS, RISK_KEYS, did_you_mean, shown
from gcm_fund.writing import file_kind


@dataclass(frozen=True)
class PolicyFile:
    """A checked policy with the file it came from."""

    policy: Policy
    path: Path
    sha256: str
    text: str
    warnings: list[Problem] = field(default_factory=list)
    raw: bytes = field(default=b"", repr=False)  # the bytes read, as for ProblemData



TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_PART = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY_LINE = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key_parts(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p.strip("\"'") for p in parts)


def _dotted(path: tuple[str, ...]) -> tuple[str, ...]:
    """A key path with every dot split, lower-cased: `10.7` unquoted and `"10.C"` quoted
    compare equal to the checked key ("10.7", "10.c") for finding a line."""
    return tuple(piece.lower() for part in path for piece in part.split("."))


class TomlLines:
    """Where each key path of a TOML text is set: read once, then looked up per key in
    time independent of the file's length (a policy can name thousands of keys, each
    with a message to place)."""

    def __init__(self, text: str):
        self.first_key: dict[tuple[str, ...], int] = {}  # exact path of a key line
        self.first_under: dict[tuple[str, ...], int] = {}  # any prefix of a key line's path
        self.first_header: dict[tuple[str, ...], int] = {}
        self.last_header: dict[tuple[str, ...], int] = {}
        self.first_header_under: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _TABLE_HEADER.match(line)
            if header:
                table = _dotted(_toml_key_parts(header.group(1)))
                self.first_header.setdefault(table, number)
                self.last_header[table] = number
                for end in range(len(table) + 1):
                    self.first_header_under.setdefault(table[:end], number)
                continue
            key = _KEY_LINE.match(line)
            if key:
                full = table + _dotted(_toml_key_parts(key.group(1)))
                self.first_key.setdefault(full, number)
                for end in range(len(full) + 1):
                    self.first_under.setdefault(full[:end], number)

    def line(self, path: tuple[str, ...]) -> int | None:
        """The line that sets the key path, else the header of its table, else the first
        line of a table inside it (best effort, for messages only)."""
        wanted = _dotted(path)
        # The first line that sets a key at or under `wanted`, sets a key above it (a
        # table given as a value), or opens exactly its table.
        found = [self.first_under.get(wanted), self.first_header.get(wanted),
                 *(self.first_key.get(wanted[:end]) for end in range(1, len(wanted)))]
        hits = [n for n in found if n is not None]
        if hits:
            return min(hits)
        above = [self.last_header[wanted[:end]] for end in range(1, len(wanted))
                 if wanted[:end] in self.last_header]
        if above:
            return max(above)
        return self.first_header_under.get(wanted)


def find_toml_line(text: str, path: tuple[str, ...]) -> int | None:
    """The line of a key path in a TOML text, best effort (for messages only): the line
    that sets the key, else the header of its table, else the first line of a table
    inside it. For many look-ups in one text, build one `TomlLines`."""
    return TomlLines(text).line(path)


def key_at_line(text: str, number: int) -> str | None:
    """The key a TOML line sets, or the table it opens, as `render_key` writes it; None
    when the line holds neither in a form this reading recognises (for messages only)."""
    table: tuple[str, ...] = ()
    for current, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        key = None if header else _KEY_LINE.match(line)
        if header:
            table = _toml_key_parts(header.group(1))
        if current == number:
            if header:
                return render_key(table)
            return render_key(table + _toml_key_parts(key.group(1))) if key else None
    return None


def render_key(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: `weights.target."10.7"` (escaped, one line)."""
    def quoted(part: str) -> str:
        if _BARE_KEY.fullmatch(part):
            return part
        text = json.dumps(part, ensure_ascii=False)
        return text if text.isprintable() else json.dumps(part)

    return ".".join(quoted(p) for p in path)


def load_policy(path: Path | str, targets: set[str] | None = None) -> PolicyFile:
    """Read and check a policy TOML file; unknown keys and bad values raise `InputError`.

    `targets`, when given, are the gaps' target codes: policy keys naming another target
    are warnings.
    """
    path = Path(path)
    label = file_label(path)
    if not path.is_file():
        kind = file_kind(path)
        why = "policy file not found" if kind is None else f"expected a policy file, found {kind}"
        raise InputError([Problem(label, None, None, why)])
    return parse_policy(path.read_bytes(), path, targets)


def parse_policy(raw: bytes, path: Path | str, targets: set[str] | None = None) -> PolicyFile:
    """Check a policy's bytes as `load_policy` checks a file's, `path` naming it in
    messages (and the policy, when it names none)."""
    path = Path(path)
    label = file_label(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        decoded = raw.decode("utf-8-sig", errors="replace")
        raise InputError([Problem(label, line, key_at_line(decoded, line),
                                  f"byte 0x{raw[exc.start]:02x} is not UTF-8: save the file "
                                  "as UTF-8 text")]) from None
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise InputError([Problem(label, None, None, "not valid TOML for a policy: arrays or "
                                  "inline tables nested too deeply to read")]) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = TOML_LINE.search(message)
        why = TOML_LINE.sub("", message).strip()
        where = None
        if found:
            why += f" (column {found.group(2)})"
            where = int(found.group(1))
        # A syntax error names the key of its line when the line still shows one.
        raise InputError([Problem(label, where, key_at_line(text, where) if where else None,
                                  f"not valid TOML: {why}")]) from None
    lines = TomlLines(text)
    deep = _too_deep(document)
    if deep is not None:
        raise InputError([Problem(label, lines.line(deep), render_key(deep),
                                  f"tables nested more than {MAX_POLICY_DEPTH} deep: a policy's "
                                  "keys are at most 3 deep (weights.target.\"10.7\")")])
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # pydantic marks a dict key's own error with a last element '[key]'
            key_path = tuple(str(p) for p in error["loc"] if p != "[key]")
            problems.append(
                Problem(label, lines.line(key_path), render_key(key_path) or None,
                        policy_message(error, key_path))
            )
        raise InputError(problems) from None
    if policy.allocation.method == "levels":
        zero = [Problem(label, find_toml_line(text, key), render_key(key),
                        "got 0, expected a weight > 0 under [allocation] method = \"levels\" "
                        "(a gap's priority is the product of its weights; use method = "
                        "\"weighted\" to keep zero weights)")
                for key in policy.zero_weights()]
        if zero:
            raise InputError(zero)
    if "name" not in document:
        policy = policy.model_copy(update={"name": readable(path.stem)})
    warnings: list[Problem] = []
    if targets is not None:
        named = [(("weights", "target"), policy.weights.target),
                 (("thematic", "min_share"), policy.thematic.min_share)]
        for table, values in named:
            for target in values:
                if target not in targets:
                    warnings.append(
                        Problem(label, lines.line((*table, target)),
                                render_key((*table, target)), "names a target that no gap has")
                    )
    return PolicyFile(policy=policy, path=path, sha256=sha256_bytes(raw), text=text,
                      warnings=warnings, raw=raw)


MAX_POLICY_DEPTH = 16


def _too_deep(document: dict[str, Any]) -> tuple[str, ...] | None:
    """The first key path deeper than MAX_POLICY_DEPTH, cut there; None when there is none.
    Checked without recursion: a TOML file can nest dotted keys thousands deep."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_POLICY_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend(((*path, str(k)), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), v) for i, v in enumerate(value))
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return shown(value)
    return str(value)


def policy_message(error: Any, key_path: tuple[str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    got = f"got {_toml_value(value)}"
    if kind == "gcm_fund":
        return str(error["ctx"]["message"])
    if kind == "extra_forbidden" and key_path[:2] == ("loans", "max_share"):
        return (f"unknown debt risk, expected one of {', '.join(RISK_KEYS)}"
                f"{did_you_mean(key_path[-1], RISK_KEYS)}")
    if kind == "extra_forbidden":
        return f"unknown key{_policy_key_hint(key_path)}"
    if kind == "finite_number":
        return f"{got}, expected a finite number"
    if kind in {"int_type", "int_from_float"} and key_path[-1:] in _INTEGER_KEYS:
        return f"{got}, {_range_text(key_path)}"
    if kind in {"float_type", "int_type", "float_parsing"}:
        return f"{got}, expected a number"
    if kind == "bool_type":
        return f"{got}, expected true or false"
    if kind in {"string_type"}:
        return f"{got}, expected a quoted string"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"{got}, expected a table"
    if kind == "literal_error":
        choices = {"allocation": ALLOCATION_METHODS, "carryover": CARRYOVER_CHOICES}.get(
            key_path[0] if key_path else "", EQUITY_GROUPS)
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return f"{got}, expected one of {', '.join(choices)}{hint}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        return f"{got}, {_range_text(key_path)}"
    return str(error["msg"])


# docs/cycles.md's keys that take an integer >= 1, and what `[carryover] undisbursed` takes.
_INTEGER_KEYS = {("number",), ("window",)}
CARRYOVER_CHOICES = ("keep", "pool")


def _range_text(key_path: tuple[str, ...]) -> str:
    head = key_path[0] if key_path else ""
    if key_path[-1:] in _INTEGER_KEYS and head in {"cycle", "performance"}:
        return "expected an integer >= 1"
    if key_path[-1:] in {("min_factor",), ("max_factor",)}:
        return "expected a number > 0"
    if key_path == ("pacing", "max_cut"):
        return "expected a number in [0, 1]"
    if head in {"cofinancing", "thematic", "pledges"} or key_path[-1:] == ("min_floor",) \
            or key_path[:2] == ("loans", "max_share"):
        return "expected a number in [0, 1]"
    if head == "limits" or key_path[-1:] == ("floor_share",):
        return "expected a number in (0, 1]"
    if key_path[-1:] == ("tolerance",):
        return "expected a number in (0, 0.01]"
    return "expected a number >= 0"


def _policy_key_hint(key_path: tuple[str, ...]) -> str:
    model: Any = Policy
    for part in key_path[:-1]:
        field_info = getattr(model, "model_fields", {}).get(part)
        if field_info is None or not isinstance(field_info.annotation, type):
            return ""
        model = field_info.annotation
    known = list(getattr(model, "model_fields", {}))
    return did_you_mean(key_path[-1], known) if known else ""
