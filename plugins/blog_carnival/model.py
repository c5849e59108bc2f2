"""Values that cross stage boundaries: frozen, typed, and free of third-party dicts.

config -> Carnival / Edition / Submission / Contributor; fetch -> FetchResult;
parse -> ParsedFeed / FeedEntry / PageInfo; select and assemble -> RoundupEntry /
EditionResult. Per-URL faults are values (``error`` set), never exceptions.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from .urls import canonical_url, site_of


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

    def __reduce__(self) -> tuple:
        """Pickled (to and from worker processes) with its headers as a plain dict: a
        mappingproxy cannot be pickled, and a fetch worker's answer that held one was lost
        on the way (its URLs were then fetched again here)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["headers"] = dict(self.headers)
        return (type(self), tuple(values.values()))

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
    # The plain text of summary (else content), for its excerpt: set by parsepool.narrow on
    # the entries it keeps, so that it is worked out where the feed was parsed (a worker),
    # and kept in the parse cache with the entry
    text: str | None = None

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


# -- what the host wrote (config) -----------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    url: str | None = None


@dataclass(frozen=True)
class Contributor:
    name: str
    blog: str
    feed: str | None = None


@dataclass(frozen=True)
class Submission:
    """One entry a blogger submitted, with what the host says about it."""

    url: str
    feed: str | None = None
    section: str | None = None
    note: str | None = None
    pick: bool = False
    title: str | None = None  # host's fallback title when the post cannot be read


@dataclass(frozen=True)
class Edition:
    carnival: str
    number: int
    title: str
    host: Person
    opens: dt.date
    deadline: dt.date
    date: dt.date
    intro: str
    path: Path
    tag: str | None = None
    roundup_url: str | None = None
    sections: tuple[str, ...] = ()
    entries: tuple[Submission, ...] = ()
    max_entries: int | None = None
    max_per_contributor: int | None = None
    how_to_submit: str | None = None
    timezone: str = "UTC"  # the carnival's: the window's days begin and end there

    @property
    def key(self) -> str:
        return f"{self.carnival}/{self.number}"

    @property
    def external(self) -> bool:
        return self.roundup_url is not None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.lock.json")

    @property
    def announce_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.announce.json")

    def url(self, pattern: str) -> str:
        """Where a reader finds this edition: the other host's roundup, or ours at ``pattern``
        (CARNIVAL_EDITION_URL, site-relative)."""
        return self.roundup_url or pattern.format(carnival=self.carnival, number=self.number)

    def is_call(self, today: dt.date) -> bool:
        """Until its publication date an edition is a call for submissions, then a roundup."""
        return self.date > today


@dataclass(frozen=True)
class Carnival:
    slug: str
    title: str
    description: str
    organizer: Person
    path: Path
    rules: str | None = None
    contributors: tuple[Contributor, ...] = ()
    editions: tuple[Edition, ...] = ()
    max_entries: int | None = None
    max_per_contributor: int | None = None
    submit_email: str | None = None  # the call for submissions' mailto:
    timezone: str = "UTC"

    def edition(self, number: int) -> Edition | None:
        return next((e for e in self.editions if e.number == number), None)

    def full_title(self, edition: Edition) -> str:
        return f"{self.title} #{edition.number}: {edition.title}"


# -- what an edition resolved to (select, assemble, lock) ----------------------------------------


class Source(StrEnum):
    """Where a roundup entry's title, blog and excerpt came from (stored in locks as text)."""

    FEED = "feed"  # the submitted post, found in its blog's feed
    TAG = "tag"  # a contributor's post carrying the edition's tag, found in their feed
    PAGE = "page"  # the post's own HTML page (its feed did not carry it)
    UNRESOLVED = "unresolved"  # nothing could be read: the host's fallback title, or the URL

    @property
    def rank(self) -> int:
        """How good the data is: a re-freeze never trades an entry for a worse one."""
        return {"unresolved": 0, "page": 1, "feed": 2, "tag": 2}[self.value]


@dataclass(frozen=True)
class RoundupEntry:
    """One line of a roundup: everything a reader sees, already safe to print (escaped by templates)."""

    url: str
    title: str
    blog_name: str | None = None
    blog_url: str | None = None
    author: str | None = None
    published: dt.datetime | None = None
    excerpt: str = ""
    source: Source = Source.UNRESOLVED
    feed_url: str | None = None
    section: str | None = None
    note: str | None = None
    pick: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Source(self.source))

    @functools.cached_property
    def key(self) -> str:
        """The URL as duplicates share it (worked out once: dedupe asks for it often)."""
        return canonical_url(self.url)

    @property
    def contributor(self) -> str:
        """Who wrote it, for per-contributor limits: the blog's host name."""
        return site_of(self.blog_url or self.url)


@dataclass(frozen=True)
class EditionResult:
    """What one edition resolved to, and everything that went wrong on the way."""

    key: str
    entries: tuple[RoundupEntry, ...]
    failures: tuple[tuple[str, str], ...] = ()  # (url, reason)
    notices: tuple[str, ...] = ()
    from_lock: bool = False

    def count(self, *sources: Source) -> int:
        return sum(1 for e in self.entries if e.source in sources)


# -- what a feed is read for (sources -> parsepool) -----------------------------------------


@dataclass(frozen=True)
class Want:
    """What the plan reads one feed for: entries carrying one of ``tags`` (tag mode), and
    the entries of the submitted ``urls``."""

    tags: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()

    @property
    def trim(self) -> frozenset[str] | None:
        """The tags items may be filtered by before parsing (see trim.py), or None when a
        submission needs the feed whole."""
        return None if self.urls else (self.tags or None)
