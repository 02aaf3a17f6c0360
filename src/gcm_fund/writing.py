"""Writing files safely and formatting numbers: the one place for both.

Every file the tool writes goes through a temporary file or folder beside its destination
and is renamed into place only when complete, so an interrupted or failed command leaves
the destination as it was. Every number written or printed uses one of the formats below,
so the same figure reads the same in a CSV, a message and the terminal.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import math
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------
# Number formats


def amount(value: float | None) -> str:
    """A USD amount in a CSV cell: two decimals, blank for None or NaN."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:.2f}"


def share(value: float | None) -> str:
    """A fraction in a CSV cell: six decimals, blank for None or NaN."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:.6f}"


def real(value: float | None) -> str:
    """A dual, ratio or other real in a CSV cell: 12 significant digits, no negative zero,
    blank for None or NaN."""
    if value is None or math.isnan(value):
        return ""
    text = f"{value:.12g}"
    return "0" if text in {"-0", "0"} else text


def exact(value: float | None) -> str:
    """A real read back into a proof (a dual, a level): the shortest text that reads back as
    the same double, no negative zero, blank for None or NaN."""
    if value is None or math.isnan(value):
        return ""
    text = repr(float(value))
    return "0" if text in {"-0.0", "0.0"} else text.removesuffix(".0")


def boolean(value: bool) -> str:
    """`true` or `false`."""
    return "true" if value else "false"


def usd(value: float) -> str:
    """An amount in a message, to the cent: `USD 1,234,567.89`."""
    return f"USD {value:,.2f}"


def usd_short(value: float) -> str:
    """An amount in a message, in the unit a reader takes in at a glance:
    `USD 1.23 billion`, `USD 4.50 million`, `USD 999.00`."""
    if abs(value) >= 1e9:
        return f"USD {value / 1e9:,.2f} billion"
    if abs(value) >= 1e6:
        return f"USD {value / 1e6:,.2f} million"
    return f"USD {value:,.2f}"


def whole(value: float) -> str:
    """An amount in a terminal table, whole dollars with thousands separators: `1,234,568`."""
    return f"{value:,.0f}"


# Characters that make a spreadsheet read a cell as a formula (or that some of them strip
# before doing so): a text cell starting with one is written with a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str) -> str:
    """Free text for a CSV cell that a spreadsheet will not run as a formula: a leading
    `=`, `+`, `-`, `@`, tab or carriage return gets an apostrophe before it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# ---------------------------------------------------------------------------------------
# CSV text


def csv_text(columns: Sequence[str], rows: Iterator[Sequence[str]] | Sequence[Sequence[str]]
             ) -> str:
    """A CSV document with '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(path: Path, columns: Sequence[str],
                cells: Sequence[Sequence[str]]) -> None:
    """A table given column by column (`cells[j]` is column j, already formatted) as CSV
    with '\\n' line ends, byte for byte as `csv.writer` writes it."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(columns))
        quoted = [_quoted(column) for column in cells]
        if len(cells) < 2 or any(column is None for column in quoted):
            writer.writerows(zip(*cells, strict=True))
            return
        # Each column quoted once, then the lines joined in C: csv.writer inspects every
        # character of every cell, the most of a large constraints table's writing time
        # (docs/performance.md).
        lines = "\n".join(map(",".join, zip(*quoted, strict=True)))
        if lines:
            handle.write(lines + "\n")


# Cells holding one of these are quoted, their quotes doubled (csv.writer's QUOTE_MINIMAL
# with the ',' delimiter, '"' quote and '\\n' line end).
_QUOTED = (",", '"', "\n")
_MUST_QUOTE = re.compile('[,"\n]')


def _quoted(column: Sequence[str]) -> list[str] | None:
    """The cells of a column as csv.writer writes them; None when one holds a carriage
    return or a NUL, which csv.writer treats differently across Python versions (the
    table is then written by csv.writer itself)."""
    text = "".join(column)
    if "\r" in text or "\0" in text:
        return None
    if not any(mark in text for mark in _QUOTED):
        return list(column)
    if '"' not in text and "\n" not in text:  # commas alone: `gap[KEN,10.7]`
        return ['"' + cell + '"' if "," in cell else cell for cell in column]
    return ['"' + cell.replace('"', '""') + '"' if _MUST_QUOTE.search(cell) else cell
            for cell in column]


def format_columns(table: Any, formats: Mapping[str, Callable[[Any], str]]) -> list[list[str]]:
    """The cells of a DataFrame column by column, each column in its format (`str` when
    the column has none)."""
    return [_formatted(table[name], formats.get(name, str)) for name in table.columns]


# The number formats as format strings: a float column is formatted by one `map` over
# its values (a constraints table has millions of cells), with the blanks and zeros that
# the functions above write put back by position.
_PATTERNS: dict[Callable[[Any], str], str] = {amount: "{:.2f}", share: "{:.6f}",
                                              real: "{:.12g}"}


def _formatted(column: Any, form: Callable[[Any], str]) -> list[str]:
    pattern = _PATTERNS.get(form)
    if pattern is None or column.dtype.kind != "f":
        return list(map(form, column.tolist()))
    import numpy as np  # here: `--help` imports this module and needs no numpy

    # Each distinct value formatted once (a constraints table's slacks and duals repeat:
    # few distinct values in many rows), told apart by their bits so that -0.0 and 0.0
    # keep their own texts.
    bits = np.ascontiguousarray(column.to_numpy(), dtype=np.float64).view(np.int64)
    distinct, inverse = np.unique(bits, return_inverse=True)
    values = distinct.view(np.float64)
    texts = np.array(list(map(pattern.format, values.tolist())), dtype=object)
    texts[values != values] = ""  # NaN
    if form is real:
        texts[values == 0] = "0"  # -0.0 is written 0
    return list(texts[inverse.ravel()].tolist())


# ---------------------------------------------------------------------------------------
# Paths


def file_kind(path: Path) -> str | None:
    """What `path` is, for a message: "a file", "a folder", "a device" (/dev/null),
    "a FIFO (named pipe)", "a socket"; None when nothing is there."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"a path that cannot be read ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file"


# ---------------------------------------------------------------------------------------
# Atomic writers


def umask() -> int:
    """The process's file-creation mask (read without changing it for good)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def named_errors(path: Path) -> Iterator[None]:
    """An OSError without a file name (a write on a full disk: `[Errno 28] No space left
    on device`) raised inside the block names `path`, the file or folder being written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write a file through a temporary file beside it, renamed into place when complete
    (a SIGTERM or Ctrl-C before that removes the temporary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with terminations_interrupt() as termination:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with named_errors(path), os.fdopen(handle, "wb") as stream:
                stream.write(content.encode("utf-8") if isinstance(content, str) else content)
            os.chmod(temporary, 0o666 & ~umask())  # mkstemp makes it private; a file is not
            with _signals_held():
                os.replace(temporary, path)
                termination.release()
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # a hard link is the same file under another name
    except OSError:
        return False


def refuse_dash(path: Path | str) -> None:
    """Refuse (`UsageError`) an output named `-`: the tool writes files and folders, never
    to standard output, and a file named `-` is almost never what was meant (an absolute
    path names one)."""
    from gcm_fund.errors import UsageError

    if str(path) == "-":
        raise UsageError("-: gcm-fund writes files, not to standard output; name the file or "
                         "folder to write")


def check_output_files(paths: Sequence[Path | str], *, force: bool = False,
                       inputs: Sequence[Path | str] = ()) -> None:
    """Refuse to write files where they would lose something (`UsageError`).

    Refused whatever `force` says: a path that is one of the command's `inputs` (it
    was just read), a folder, two outputs on the same path. An existing file is
    replaced only with `force`.
    """
    from gcm_fund.errors import UsageError

    seen: list[Path] = []
    for path in map(Path, paths):
        refuse_dash(path)
        for kept in map(Path, inputs):
            if _same_file(path, kept):
                raise UsageError(f"{path}: is one of this command's inputs ({kept}); write "
                                 "the output elsewhere")
        for other in seen:
            if _same_file(path, other):
                raise UsageError(f"{path}: two of this command's outputs would be the same "
                                 "file; choose another --out")
        seen.append(path)
        kind = file_kind(path)
        if kind == "a folder":
            raise UsageError(f"{path}: is a folder; --out names the file to write")
        if kind not in (None, "a file"):
            # Replacing it would put a file where a device or FIFO was (as root, /dev/null).
            raise UsageError(f"{path}: is {kind}, not a file; --out names the file to write")
        if os.path.lexists(path) and not force:
            raise UsageError(f"{path}: exists; use --force to replace it")


def write_files_atomic(contents: Mapping[Path, str | bytes]) -> None:
    """Write several files all or nothing: each through a temporary file beside it, then
    all renamed into place; when any step fails (or a SIGTERM or Ctrl-C comes) the files
    that were there are put back."""
    with terminations_interrupt():
        _write_files_atomic(contents)


def _write_files_atomic(contents: Mapping[Path, str | bytes]) -> None:
    staged: list[tuple[Path, Path]] = []
    moved: list[tuple[Path, Path | None]] = []
    try:
        for destination, content in contents.items():
            destination = Path(destination)
            destination.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{destination.name}.",
                                            dir=destination.parent)
            staged.append((Path(name), destination))
            with named_errors(destination), os.fdopen(handle, "wb") as stream:
                stream.write(content.encode("utf-8") if isinstance(content, str) else content)
            os.chmod(name, 0o666 & ~umask())  # mkstemp makes it private; a file is not
        for temporary, path in staged:
            backup = None
            if os.path.lexists(path):
                handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".old",
                                                dir=path.parent)
                os.close(handle)
                backup = Path(name)
                try:
                    os.replace(path, backup)
                except BaseException:
                    backup.unlink(missing_ok=True)
                    raise
            moved.append((path, backup))
            os.replace(temporary, path)
    except BaseException:
        for path, backup in reversed(moved):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                elif os.path.lexists(path):
                    path.unlink()
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for _, backup in moved:
        if backup is not None:
            backup.unlink(missing_ok=True)


def remove_stale_staging(parent: Path) -> None:
    """Remove staging folders left by a killed run (its process no longer exists).

    A SIGKILL cannot be caught, so the run it kills cannot clean up after itself; the
    next run writing beside it does. The owner's process id is part of the folder name.
    """
    for leftover in parent.glob(".*.partial"):
        parts = leftover.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is not None and pid != os.getpid() and not _process_exists(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# renameat2's flag (linux/fs.h): fail with EEXIST rather than replace the new name.
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: Any = None


def _load_renameat2() -> Any:
    """libc's renameat2, or False where there is none (not Linux, or a libc before 2.28)."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        if sys.platform.startswith("linux"):
            import ctypes
            import ctypes.util

            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                   use_errno=True)
                function = libc.renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_char_p, ctypes.c_uint]
                function.restype = ctypes.c_int
                _renameat2 = function
    return _renameat2


def rename_no_replace(source: Path, destination: Path) -> bool:
    """Rename the folder `source` to `destination` unless something stands there: True
    when renamed, False when `destination` was taken (it is then left as it is).

    Linux's renameat2 with RENAME_NOREPLACE refuses any existing name in one step. Where it
    is missing (another system, an old libc, a file system without the flag) a folder is
    renamed with rename(2), which replaces an existing name only when that is an empty
    folder, and fails on a folder with anything in it, a file or a link.
    """
    function = _load_renameat2()
    if function:
        import ctypes

        if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination),
                    _RENAME_NOREPLACE) == 0:
            return True
        error = ctypes.get_errno()
        if error == errno.EEXIST:
            return False
        if error not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(error, os.strerror(error), str(destination))
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise
    return True


class Terminated(KeyboardInterrupt):
    """A SIGTERM that arrived while files were being written: unwinds like Ctrl-C, so the
    half-written files are removed on the way out."""


class _Termination:
    """SIGTERM raising `Terminated` while installed (see `terminations_interrupt`)."""

    def __init__(self) -> None:
        self.installed = (threading.current_thread() is threading.main_thread()
                          and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        if self.installed:
            signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise Terminated()

    def release(self) -> None:
        """SIGTERM ends the process again, as it did before."""
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.installed = False


@contextlib.contextmanager
def terminations_interrupt() -> Iterator[_Termination]:
    """Within the block, SIGTERM raises `Terminated`, when it would otherwise end the
    process at once (its handler is the default, and this is the main thread)."""
    termination = _Termination()
    try:
        yield termination
    finally:
        termination.release()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT held back during the block (a swap of folders that must not be
    cut in two); one that arrived meanwhile is delivered at its end."""
    held = {signal.SIGTERM, signal.SIGINT}
    if (not hasattr(signal, "pthread_sigmask")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


# Whatever stands at the destination is checked in place, moved aside, checked again and
# replaced; another writer can take the name in between, so this is tried a few times.
_PLACE_ATTEMPTS = 10


def _place(staging: Path, destination: Path, shown: Path,
           replaceable: Callable[[Path, Path], None] | None, trash: Path) -> None:
    """Rename `staging` to `destination`, replacing only what `replaceable` accepts.

    `replaceable(folder, shown)` raises `UsageError` for a folder that may not be replaced
    (`shown` is the name to give in the message); None accepts only an empty folder.
    Whatever stands at `destination` is checked where it stands, then again once moved
    aside into `trash` (nobody else writes there): a folder that is not accepted is put
    back, and a refusal raised.
    """
    from gcm_fund.errors import UsageError

    for attempt in range(_PLACE_ATTEMPTS):
        if rename_no_replace(staging, destination):
            return
        try:
            _accept(destination, shown, replaceable)
        except UsageError as exc:
            raise _changed(shown, exc) from None
        aside = trash / str(attempt)
        try:
            os.rename(destination, aside)
        except FileNotFoundError:
            continue  # gone meanwhile: try the rename again
        try:
            _accept(aside, shown, replaceable)
        except UsageError as exc:
            if not rename_no_replace(aside, destination):
                kept = Path(tempfile.mkdtemp(prefix=f"{destination.name}.kept.",
                                             dir=destination.parent))
                os.rename(aside, kept / destination.name)
                raise UsageError(f"{_changed(shown, exc)}; it was moved to "
                                 f"{kept / destination.name}, as another folder took its "
                                 "place meanwhile") from None
            raise _changed(shown, exc) from None
    raise UsageError(f"{shown}: kept changing while this run was being written; nothing was "
                     "written")


def _accept(folder: Path, shown: Path,
            replaceable: Callable[[Path, Path], None] | None) -> None:
    from gcm_fund.errors import UsageError

    if replaceable is not None:
        replaceable(folder, shown)
    elif os.path.lexists(folder) and (not folder.is_dir() or folder.is_symlink()
                                      or any(folder.iterdir())):
        raise UsageError(f"{shown}: exists and is not empty; use --force to replace it")


def _changed(shown: Path, refusal: Exception) -> Exception:
    from gcm_fund.errors import UsageError

    reason = str(refusal).removeprefix(f"{shown}: ")
    return UsageError(f"{shown}: changed while this run was being written (another run, or "
                      f"someone else, wrote there): it was left as it is and nothing was "
                      f"written; {reason}")


@contextlib.contextmanager
def atomic_folder(destination: Path,
                  replaceable: Callable[[Path, Path], None] | None = None
                  ) -> Iterator[Path]:
    """A temporary folder beside `destination`, renamed to it when the block completes.

    What may be replaced is decided by `replaceable(folder, shown)`, which raises
    `UsageError` for a folder that may not be (None: only an empty folder). It is asked
    before the block runs and again, for whatever stands at `destination` by then, when
    the folder is put in place: a folder made meanwhile (by hand, or by another run) is
    never replaced unless it passes, and is then refused (`UsageError`). On any error,
    refusal or interruption (Ctrl-C, or a SIGTERM) the temporary folder is removed and the
    destination is as it was.
    """
    shown = Path(destination)
    # An absolute path gives `.` and `..` a real name and parent: the staging folder
    # goes beside the destination, never inside it.
    destination = Path(os.path.abspath(shown))
    if os.path.lexists(destination):
        _accept(destination, shown, replaceable)
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(destination.parent)
    with terminations_interrupt() as termination:
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.",
                                        suffix=".partial", dir=destination.parent))
        # mkdtemp makes the folder private (drwx------); a run folder is for colleagues
        # too, as the user's umask says.
        os.chmod(staging, 0o777 & ~umask())
        trash: Path | None = None
        try:
            with named_errors(shown):
                yield staging
            trash = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.",
                                          suffix=".partial", dir=destination.parent))
            with _signals_held():
                _place(staging, destination, shown, replaceable, trash)
                # In place: a SIGTERM held back until now ends the process as it would
                # have, the folder complete.
                termination.release()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
