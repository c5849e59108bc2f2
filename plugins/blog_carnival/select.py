"""Pure selection: match submissions to feed entries, pick tagged entries in the window,
dedupe, order by the host's sections then date, and apply limits (reporting what they drop).

No I/O here: every function takes values and returns values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .model import (
    Edition,
    FeedEntry,
    PageInfo,
    ParsedFeed,
    RoundupEntry,
    Source,
    Submission,
)
from .sanitize import cut_words, normalize_text, plain_text
from .sanitize import excerpt as make_excerpt
from .textutil import fold
from .urls import canonical_url, safe_link


def origin(url: str) -> str | None:
    parts = urlsplit(url)
    return safe_link(f"{parts.scheme}://{parts.netloc}/") if parts.netloc else None


def find_in_feed(feed: ParsedFeed, url: str) -> FeedEntry | None:
    """The entry whose link (canonically) or id is the submitted URL."""
    wanted = canonical_url(url)
    for entry in feed.entries:
        if entry.link and canonical_url(entry.link) == wanted:
            return entry
    for entry in feed.entries:
        if entry.id and (entry.id == url or canonical_url(entry.id) == wanted):
            return entry
    return None


def entry_text(entry: FeedEntry) -> str:
    """The plain text an entry's excerpt is cut from (``FeedEntry.text`` when narrowing has
    worked it out already)."""
    if entry.text is not None:
        return entry.text
    return plain_text(entry.summary or entry.content)


def from_feed(
    entry: FeedEntry,
    feed: ParsedFeed,
    *,
    url: str | None = None,
    source: Source = Source.FEED,
    excerpt_words: int = 40,
) -> RoundupEntry:
    link = safe_link(url) if url else None
    link = link or entry.link or feed.link or feed.url
    return RoundupEntry(
        url=link,
        title=normalize_text(entry.title, 300) or link,
        blog_name=normalize_text(feed.title, 120) or None,
        blog_url=feed.link or origin(link),
        author=normalize_text(entry.author, 120) or None,
        published=entry.date,
        excerpt=cut_words(entry_text(entry), excerpt_words),
        source=source,
        feed_url=feed.url,
    )


def from_page(page: PageInfo, url: str, excerpt_words: int = 40) -> RoundupEntry:
    link = safe_link(url) or url
    return RoundupEntry(
        url=link,
        title=normalize_text(page.title, 300) or link,
        blog_name=normalize_text(page.site_name, 120) or None,
        blog_url=origin(link),
        author=normalize_text(page.author, 120) or None,
        published=page.published,
        excerpt=make_excerpt(page.description, excerpt_words),
        source=Source.PAGE,
    )


def unresolved(submission: Submission) -> RoundupEntry:
    link = safe_link(submission.url) or submission.url
    return RoundupEntry(
        url=link, title=submission.title or link, blog_url=origin(link), source=Source.UNRESOLVED
    )


def with_submission(entry: RoundupEntry, submission: Submission) -> RoundupEntry:
    """Lay the host's words (section, note, pick, fallback title) over a resolved entry."""
    title = entry.title
    if submission.title and (entry.source == Source.UNRESOLVED or title == entry.url):
        title = submission.title
    return replace(
        entry, section=submission.section, note=submission.note, pick=submission.pick, title=title
    )


def window(edition: Edition) -> tuple[dt.datetime, dt.datetime]:
    """The submission window, both ends inclusive (the deadline day counts to its last
    second), in the carnival's time zone, as aware datetimes."""
    zone = ZoneInfo(edition.timezone)
    start = dt.datetime.combine(edition.opens, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(edition.deadline, dt.time.max, tzinfo=zone)
    return start, end


def tag_matches(entry: FeedEntry, tag: str) -> bool:
    wanted = fold(tag)
    return any(fold(t) == wanted for t in entry.tags)


def select_tagged(
    feed: ParsedFeed, edition: Edition, excerpt_words: int = 40
) -> tuple[list[RoundupEntry], list[str]]:
    """Entries of one contributor's feed with the edition's tag, dated inside the window.

    Returns the entries and plain notices for tagged entries that were left out (and why).
    """
    if not edition.tag:
        return [], []
    start, end = window(edition)
    chosen, notices = [], []
    for entry in feed.entries:
        if not tag_matches(entry, edition.tag):
            continue
        label = entry.link or entry.id or entry.title
        if entry.date is None:
            notices.append(f"left out {label}: tagged but has no date")
        elif not (start <= entry.date <= end):
            notices.append(
                f"left out {label}: dated {entry.date:%Y-%m-%d}, outside {edition.opens}..{edition.deadline}"
            )
        elif entry.link is None:
            notices.append(f"left out {entry.title!r}: tagged but has no usable link")
        else:
            chosen.append(from_feed(entry, feed, source=Source.TAG, excerpt_words=excerpt_words))
    return chosen, notices


def dedupe(entries: list[RoundupEntry]) -> tuple[list[RoundupEntry], list[RoundupEntry]]:
    """Keep the first entry per canonical URL (submissions come before tagged finds)."""
    seen: set[str] = set()
    kept, dropped = [], []
    for entry in entries:
        if entry.key in seen:
            dropped.append(entry)
        else:
            seen.add(entry.key)
            kept.append(entry)
    return kept, dropped


def _date_key(entry: RoundupEntry) -> tuple:
    stamp = entry.published
    return (
        stamp is None,
        stamp or dt.datetime.min.replace(tzinfo=dt.UTC),
        entry.title.casefold(),
        entry.url,
    )


def order(
    entries: list[RoundupEntry], sections: tuple[str, ...]
) -> list[tuple[str | None, list[RoundupEntry]]]:
    """Group by the host's sections in their order (empty ones left out), then by date.

    Entries without a known section go last, under None (rendered without a heading when
    the edition has no sections, under "More entries" otherwise).
    """
    groups: dict[str | None, list[RoundupEntry]] = {}
    for entry in entries:
        section = entry.section if entry.section in sections else None
        groups.setdefault(section, []).append(entry)
    names: list[str | None] = [s for s in sections if s in groups]
    if None in groups:
        names.append(None)
    return [(name, sorted(groups[name], key=_date_key)) for name in names]


def apply_limits(
    entries: list[RoundupEntry], max_entries: int | None, max_per_contributor: int | None
) -> tuple[list[RoundupEntry], list[tuple[RoundupEntry, str]]]:
    """Limits are off unless set; everything a limit drops comes back with the reason."""
    kept: list[RoundupEntry] = []
    dropped: list[tuple[RoundupEntry, str]] = []
    per: dict[str, int] = {}
    for entry in entries:
        count = per.get(entry.contributor, 0)
        if max_per_contributor is not None and count >= max_per_contributor:
            dropped.append((entry, f"more than {max_per_contributor} from {entry.contributor}"))
            continue
        if max_entries is not None and len(kept) >= max_entries:
            dropped.append((entry, f"edition limit of {max_entries} entries reached"))
            continue
        per[entry.contributor] = count + 1
        kept.append(entry)
    return kept, dropped
