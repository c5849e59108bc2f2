"""Values that cross stage boundaries: frozen, typed, and free of third-party dicts.

fetch -> FetchResult; parse -> ParsedFeed / FeedEntry / PageInfo. Per-URL faults are
values (``error`` set), never exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType


def utc_datetime(text: str | None) -> datetime | None:
    """A timezone-aware UTC datetime from ISO 8601 or an RFC 822 / HTTP date, else None.

    The one place text dates are settled (page meta, JSON Feed, Retry-After); a date
    without a zone is taken as UTC, and nothing here raises on junk.
    """
    value = (text or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _frozen_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType({k.lower(): v for k, v in (headers or {}).items()})


@dataclass(frozen=True)
class FetchResult:
    """The outcome of fetching one URL.

    ``body`` holds the (decompressed) bytes when the fetch succeeded, including a 304
    answered from the on-disk cache (then ``not_modified`` is True). ``error`` is a plain
    reason ("HTTP 404", "timed out after 10 s", "refused address 10.0.0.1 (private)", ...)
    and is None on success.
    """

    url: str
    final_url: str | None = None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error: str | None = None
    not_modified: bool = False
    from_cache: bool = False
    digest: str | None = None  # sha256 hex of body, for parse memoisation

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _frozen_headers(self.headers))

    @property
    def ok(self) -> bool:
        return self.error is None and self.body is not None


@dataclass(frozen=True)
class FeedEntry:
    """One feed entry, settled at the parse boundary.

    ``title`` is plain text (tags stripped, entities decoded). ``summary`` and ``content``
    are the feed's HTML *unsanitized* (feedparser's sanitizer is off for speed); only
    entries that get selected are cleaned, by ``sanitize.clean_html`` against ``base``.
    Dates are timezone-aware (UTC when the feed gave none) or None.
    """

    link: str | None
    id: str | None
    title: str
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    tags: tuple[str, ...] = ()
    summary: str | None = None
    content: str | None = None
    base: str | None = None  # URL that relative links in summary/content resolve against

    @property
    def date(self) -> datetime | None:
        return self.published or self.updated


@dataclass(frozen=True)
class ParsedFeed:
    """A feed that could be read (possibly with recovered problems in ``warnings``)."""

    url: str  # final URL the bytes came from
    title: str | None
    link: str | None  # the blog's home page, absolute http(s) or None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParseFailure:
    """Bytes that are not a feed we can use; ``reason`` is plain ("not a feed: HTML page")."""

    url: str
    reason: str


@dataclass(frozen=True)
class PageInfo:
    """What a post's own HTML page tells us: used for feed discovery and as a fallback."""

    url: str
    title: str | None = None
    description: str | None = None
    site_name: str | None = None
    author: str | None = None
    published: datetime | None = None
    canonical: str | None = None
    feed_links: tuple[str, ...] = ()  # absolute http(s) URLs of rel=alternate feeds, in page order
