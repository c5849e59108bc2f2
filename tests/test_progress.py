"""The fetch progress bar: drawn on a terminal, not built at all anywhere else."""

from __future__ import annotations

import io

import pytest
from blog_carnival.progress import fetch_progress
from rich.console import Console


@pytest.mark.parametrize("terminal", [True, False])
def test_the_bar_is_drawn_only_on_a_terminal_and_advancing_always_works(terminal: bool) -> None:
    out = io.StringIO()
    with fetch_progress(Console(file=out, force_terminal=terminal, width=80)) as advance:
        for _ in range(3):
            advance(None)
    if terminal:
        assert "carnival: fetching" in out.getvalue()
        assert "3" in out.getvalue()  # the count of results in
    else:
        assert out.getvalue() == ""
