"""The commands' progress bar: one line per phase on stderr, shown when it is a terminal
(`sweep`'s levels and kink search, `allocate`'s donor figures)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console


@contextmanager
def progress_bar(console: Console) -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress bar on `console`, shown when it is a terminal: the callback
    `progress(phase, done, total)` that `api.sweep` and `api.allocate` call."""
    # Imported here: most commands never show a bar, and rich.progress costs start-up time.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:<12}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress
