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


def test_the_builds_bar_appears_with_the_first_url_fetched_and_closes_with_its_stack(
    monkeypatch,
) -> None:
    """A first build's resolving starts with Pelican's build but fetches nothing until the
    posts are read: its bar is drawn from the first URL fetched, not while it waits."""
    from contextlib import ExitStack, contextmanager

    from blog_carnival import adapter

    events: list[str] = []

    @contextmanager
    def recording(console):  # noqa: ANN001, ANN202
        events.append("shown")
        yield lambda url: events.append(url)
        events.append("closed")

    monkeypatch.setattr(adapter, "fetch_progress", recording)
    stack = ExitStack()
    bar = adapter._BarOnDemand(stack)
    assert events == []
    bar.advance("https://a.example/feed")
    bar.advance("https://b.example/feed")
    assert events == ["shown", "https://a.example/feed", "https://b.example/feed"]
    stack.close()
    assert events[-1] == "closed"
