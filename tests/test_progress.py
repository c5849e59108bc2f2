"""The fetch progress bar: drawn on a terminal, not built at all anywhere else."""

from __future__ import annotations

import io

from blog_carnival.progress import fetch_progress
from rich.console import Console


def test_the_bar_is_drawn_on_a_terminal_and_cleared() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with fetch_progress(console) as advance:
        for _ in range(3):
            advance(None)
    assert "carnival: fetching" in out.getvalue()
    assert "3" in out.getvalue()  # the count of results in


def test_off_a_terminal_nothing_is_drawn_and_advancing_still_works() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    with fetch_progress(console) as advance:
        for _ in range(3):
            advance(None)
    assert out.getvalue() == ""
