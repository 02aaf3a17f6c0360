"""What a run folder holds, and where one may be written without losing anything.

A run folder replaces its destination as a whole, so before writing one we make sure the
destination holds nothing but an earlier run of this tool: never a user's own files, never
the inputs or the policy the run reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gcm_fund.errors import UsageError
from gcm_fund.inputs.files import OPTIONAL_INPUT_FILES
from gcm_fund.inputs.schema import INPUT_FILES, META_FILE
from gcm_fund.outputs.schema import (  # noqa: F401 (the names this module gave them first)
    DIAGNOSIS,
    INPUT_COPY_DIR,
    MANIFEST,
    POLICY_COPY,
    RUN_FILES,
)
from gcm_fund.writing import file_kind, refuse_dash

# RUN_FILES: every name a run (or an infeasible run's diagnosis) writes at the top of its
# folder; a manifest may list more (its "files" table), and those count as the run's own.

_INPUT_COPIES = frozenset({*INPUT_FILES, *OPTIONAL_INPUT_FILES, META_FILE})

# A manifest larger than this is not one of ours (ours are a few kB); not read.
_MANIFEST_LIMIT = 10_000_000


def _json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is not one (or cannot be read)."""
    try:
        if path.stat().st_size > _MANIFEST_LIMIT:
            return None
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _own_names(folder: Path) -> set[str] | None:
    """The top-level names a run folder's own files may have, or None when `folder` is
    not recognisably a run folder: a manifest with a run id, or a diagnosis."""
    manifest = _json_object(folder / MANIFEST) if (folder / MANIFEST).is_file() else None
    if manifest is not None and isinstance(manifest.get("run_id"), str):
        listed = manifest.get("files")
        extra = ({str(name).split("/", 1)[0] for name in listed}
                 if isinstance(listed, dict) else set())
        return set(RUN_FILES) | extra
    if (folder / MANIFEST).exists():
        return None
    diagnosis = _json_object(folder / DIAGNOSIS) if (folder / DIAGNOSIS).is_file() else None
    if diagnosis is not None and diagnosis.get("status") == "infeasible":
        return set(RUN_FILES)
    return None


def foreign_entries(folder: Path) -> list[str] | None:
    """The entries of `folder` that are not a run's own files (sorted, `inputs/x` for one
    inside the inputs copy), or None when `folder` is not recognisably a run folder."""
    own = _own_names(folder)
    if own is None:
        return None
    foreign: list[str] = []
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if name == INPUT_COPY_DIR and path.is_dir() and not path.is_symlink():
            foreign.extend(f"{name}/{inner}" for inner in sorted(os.listdir(path))
                           if inner not in _INPUT_COPIES or not (path / inner).is_file())
        elif name not in own or (path.is_dir() and not path.is_symlink()):
            foreign.append(name)
    return foreign


def _shown(names: Sequence[str], limit: int = 3) -> str:
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def check_apart(destination: Path | str, *, inputs: Path | str | None = None,
                policy: Path | str | None = None, folder: str = "run") -> None:
    """Refuse (`UsageError`) a run folder's destination that is, or holds, the input folder
    or the policy file, or lies inside the input folder, whatever is there now. Beside the
    policy (`--out models/run1`) is allowed: a run folder replaces only a run folder.
    `folder` names what is written there in the messages ("run", "review")."""
    destination = Path(destination)
    target = _real(destination)
    for what, kept in (("the input folder", inputs), ("the policy file", policy)):
        if kept is None:
            continue
        held = _real(kept)
        if held == target or target in held.parents:
            raise UsageError(f"{destination}: holds {what} {kept}; a {folder} folder "
                             "replaces its destination, so write it elsewhere with --out")
        if what == "the input folder" and held in target.parents:
            raise UsageError(f"{destination}: is inside {what} {kept}; write the {folder} "
                             "outside it with --out")


def check_destination(destination: Path | str, *, force: bool = False,
                      same_run: bool = False, inputs: Path | str | None = None,
                      policy: Path | str | None = None) -> None:
    """Refuse a run folder's destination that would lose something (`UsageError`).

    Refused whatever `force` says: a destination that is, or holds, the input folder or
    the policy file; one inside the input folder; a symbolic link; an existing file; a
    non-empty folder that is not recognisably a run folder of this tool, or holds files
    besides the run's own. A run folder is replaced only with `force`, or when `same_run`
    (a folder named by the run id, which can only hold the same run).
    """
    refuse_dash(destination)
    check_apart(destination, inputs=inputs, policy=policy)
    check_replaceable(Path(destination), force=force, same_run=same_run)


def check_replaceable(folder: Path, shown: Path | None = None, *, force: bool = False,
                      same_run: bool = False) -> None:
    """Refuse (`UsageError`) what stands at `folder` when a run folder may not replace it
    (the rules of `check_destination` but where it lies); messages name it `shown`."""
    destination = Path(shown if shown is not None else folder)
    if not os.path.lexists(folder):
        return
    if folder.is_symlink():
        # Replacing the link would put a real folder where the user kept a link; replacing
        # what it points to would write somewhere --out does not name.
        raise UsageError(f"{destination}: is a symbolic link to {os.readlink(folder)}; "
                         "give --out the folder itself, or another name")
    if not folder.is_dir():
        kind = file_kind(folder) or "a broken link"
        raise UsageError(f"{destination}: is {kind}, not a folder; --out names the folder "
                         "the run is written to")
    entries = sorted(os.listdir(folder))
    if not entries:
        return
    foreign = foreign_entries(folder)
    if foreign is None or foreign:
        listed = _shown(foreign or entries)
        if same_run:
            raise UsageError(f"{destination}: holds files gcm-fund did not write ({listed}); "
                             "move them out to run into it again, or write elsewhere with "
                             "--out")
        raise UsageError(f"{destination}: exists and is not a run folder of gcm-fund (it "
                         f"holds {listed}); choose another --out (--force replaces only a run "
                         "folder)")
    if not (force or same_run):
        raise UsageError(f"{destination}: exists and is not empty; use --force to replace it")


def replaceable(*, force: bool = False, same_run: bool = False
                ) -> Callable[[Path, Path], None]:
    """`check_replaceable` with these flags, as `writing.atomic_folder` asks it."""
    def check(folder: Path, shown: Path) -> None:
        check_replaceable(folder, shown, force=force, same_run=same_run)
    return check
