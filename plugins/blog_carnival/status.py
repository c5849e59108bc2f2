"""Where an edition stands, for the host: per entry how it resolved, whether the post links back
to the carnival, and whether it was announced; per feed its last success, last error and any
Retry-After hold. Pure assembly from values the caller gathered (``core.status``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .feedlog import UrlHistory
from .model import Edition, EditionResult


@dataclass(frozen=True)
class EntryStatus:
    title: str
    blog: str | None
    url: str
    resolved: str  # feed | tag | page | unresolved | from lock (feed) ...
    links_back: bool | None  # None: not checked (no SITEURL, or the page could not be read)
    announced: str  # "sent 2026-12-02", "failed: HTTP 500", "no endpoint", "not yet"


@dataclass(frozen=True)
class FeedStatus:
    url: str
    last_success: str | None
    last_error: str | None
    last_error_at: str | None
    held_until: str | None  # a Retry-After hold still in force


@dataclass(frozen=True)
class EditionStatus:
    key: str
    title: str
    state: str  # "call" | "published" | "hosted elsewhere"
    date: str
    locked: bool
    entries: tuple[EntryStatus, ...] = ()
    feeds: tuple[FeedStatus, ...] = ()
    notes: tuple[str, ...] = ()


def announce_state(record: Mapping, url: str) -> str:
    """One word on what announcing did for ``url`` (from <NNN>.announce.json's mentions)."""
    item = record.get(url)
    if not isinstance(item, Mapping):
        return "not yet"
    sent = item.get("sent_at") or []
    if sent:
        return f"sent {str(sent[-1])[:10]}"
    if item.get("outcome") == "no-endpoint":
        return "no endpoint"
    error = item.get("error") or item.get("outcome") or "failed"
    return f"failed: {error}"


def edition_status(
    edition: Edition,
    full_title: str,
    today: dt.date,
    result: EditionResult | None,
    *,
    links_back: Mapping[str, bool | None],
    announced: Mapping,
    feeds: Mapping[str, UrlHistory],
    holds: Mapping[str, float],
    notes: tuple[str, ...] = (),
) -> EditionStatus:
    if edition.external:
        state = "hosted elsewhere"
    elif edition.is_call(today):
        state = "call"
    else:
        state = "published"
    entries = []
    for entry in result.entries if result else ():
        how = entry.source.value
        entries.append(
            EntryStatus(
                title=entry.title,
                blog=entry.blog_name,
                url=entry.url,
                resolved=f"from lock ({how})" if result.from_lock else how,
                links_back=links_back.get(entry.url),
                announced=announce_state(announced, entry.url),
            )
        )
    feed_rows = []
    for url, history in sorted(feeds.items()):
        hold = holds.get(url)
        feed_rows.append(
            FeedStatus(
                url=url,
                last_success=history.last_success,
                last_error=history.last_error,
                last_error_at=history.last_error_at,
                held_until=(
                    dt.datetime.fromtimestamp(hold, dt.UTC).replace(microsecond=0).isoformat()
                    if hold
                    else None
                ),
            )
        )
    return EditionStatus(
        key=edition.key,
        title=full_title,
        state=state,
        date=edition.date.isoformat(),
        locked=edition.lock_path.exists(),
        entries=tuple(entries),
        feeds=tuple(feed_rows),
        notes=notes,
    )


def as_json(statuses: list[EditionStatus]) -> str:
    return json.dumps([asdict(s) for s in statuses], indent=2, ensure_ascii=False)


def render_tables(statuses: list[EditionStatus], console) -> None:  # noqa: ANN001
    """One rich table of entries (and one of feeds) per edition."""
    from rich.table import Table

    def mark(value: bool | None) -> str:
        return {True: "yes", False: "no", None: "?"}[value]

    for s in statuses:
        lock = ", locked" if s.locked else ""
        console.print(f"[bold]{s.key}[/bold] {s.title} ({s.state}, {s.date}{lock})", markup=True)
        if s.entries:
            table = Table(show_header=True, header_style="bold", expand=False)
            for column in ("title", "blog", "resolved", "links back", "announced"):
                table.add_column(column, overflow="fold")
            for e in s.entries:
                table.add_row(e.title, e.blog or "", e.resolved, mark(e.links_back), e.announced)
            console.print(table)
        elif s.state != "hosted elsewhere":
            console.print("  no entries yet")
        if s.feeds:
            table = Table(show_header=True, header_style="bold", expand=False)
            for column in ("feed", "last success", "last error", "hold"):
                table.add_column(column, overflow="fold")
            for f in s.feeds:
                error = f"{f.last_error} ({f.last_error_at})" if f.last_error else ""
                table.add_row(f.url, f.last_success or "never", error, f.held_until or "")
            console.print(table)
        for note in s.notes:
            console.print(f"  note: {note}", markup=False, highlight=False)
