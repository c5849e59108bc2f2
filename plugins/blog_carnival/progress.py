"""A transient progress bar for fetching, on whichever rich console the caller prints to
(Pelican's for a build, the command line's own for host commands).

Drawn only on a terminal, four times a second: transient, it would leave nothing in a pipe
or a CI log, and rich builds the bar's table on every refresh whether it is shown or not
(measured: about 4% of a 2,000-feed build's interpreter time at its default ten)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn


@contextmanager
def fetch_progress(console: Console | None = None) -> Iterator[Callable[[object], None]]:
    """Yields the per-result callback that advances the bar."""
    console = console or Console()
    columns = (TextColumn("carnival: fetching"), BarColumn(), MofNCompleteColumn())
    shown = console.is_terminal and not console.is_dumb_terminal
    with Progress(
        *columns, console=console, transient=True, refresh_per_second=4, disable=not shown
    ) as bar:
        task = bar.add_task("fetch", total=None)
        yield lambda _result: bar.advance(task)
