"""Progress bars for the long commands (`imgclf prepare --download`, `imgclf bench`).

A bar is for a person watching: it is drawn on stderr only when stderr is a terminal that can
redraw a line (not TERM=dumb). Everywhere else (logs, CI, pipes, tests) `progress` draws nothing
and costs nothing, so the output there is the log lines alone, as before. NO_COLOR is left to
rich: the bar is drawn, without colours.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

REFRESH_PER_SECOND = 2
"""Redraws a second: `imgclf bench` measures this process's own CPU time, so the bar stays cheap."""


class Bar:
    """What `progress` yields: call `advance` as the work gets done."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)


@contextmanager
def progress(total: float | None, description: str, *, in_bytes: bool = False) -> Iterator[Bar]:
    """A bar of `total` steps (or bytes; None: not known) on stderr while the block runs, if stderr
    is a terminal; with nothing to do (`total` 0), no bar."""
    console = _stderr_terminal()
    if console is None or not console.is_interactive or total == 0:
        yield Bar()
        return
    counts: list[ProgressColumn] = (
        [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        if in_bytes
        else [MofNCompleteColumn(), TimeElapsedColumn()]
    )
    # Transient: once done the bar is erased, and the terminal shows what it showed without one.
    # stdout is printed above the bar only when it is a terminal too; redirected, it stays where it goes.
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        console=console,
        transient=True,
        refresh_per_second=REFRESH_PER_SECOND,
        redirect_stdout=_isatty(sys.stdout),
    )
    with bar:
        task = bar.add_task(description, total=total)
        with _logging_above(bar):
            yield Bar(bar, task)


def _stderr_terminal() -> Console | None:
    # Asked of the stream itself: rich would also call a pipe a terminal when FORCE_COLOR is set.
    return Console(stderr=True) if _isatty(sys.stderr) else None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # closed
        return False


@contextmanager
def _logging_above(bar: Progress) -> Iterator[None]:
    """Route the root logger's stderr handlers through the bar's console while it is drawn.

    They hold the stderr they were configured with, so their lines would land in the middle of
    the bar; rich has replaced `sys.stderr` with a proxy that prints above it instead.
    """
    proxy = sys.stderr
    original = getattr(proxy, "rich_proxied_file", proxy)  # the stderr before rich replaced it
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is original
    ]
    for handler in handlers:
        handler.setStream(proxy)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(original)
