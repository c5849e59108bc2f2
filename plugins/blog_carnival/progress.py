"""A transient progress bar for fetching, on whichever rich console the caller prints to
(Pelican's for a build, the command line's own for host commands)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn


@contextmanager
def fetch_progress(console: Console | None = None) -> Iterator[Callable[[object], None]]:
    """Yields the per-result callback that advances the bar."""
    columns = (TextColumn("carnival: fetching"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("fetch", total=None)
        yield lambda _result: bar.advance(task)
