"""Fetch and read everything a set of editions needs, in three phases, all editions together.

1. every URL known up front (feeds the host gave, else the post or blog page);
2. feeds discovered on those pages;
3. pages of submitted posts their feed does not carry (the page fallback).

Each phase fetches concurrently, so the whole carnival costs about its slowest feed per phase
rather than the sum. A failed fetch falls back to the last good copy in the cache (nothing
collected is lost). The result, ``Documents``, is a frozen snapshot: assembling an edition
from it is a pure function (``assemble``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .cache import HttpCache
from .model import FetchResult, PageInfo, ParsedFeed, ParseFailure
from .page import parse_page
from .parsepool import FeedParser
from .select import find_in_feed
from .sources import EditionPlan, feed_for, parse_tags

FEED_TYPES = ("xml", "rss", "atom", "rdf", "json")


@dataclass(frozen=True)
class Fetched:
    """What became of fetching one URL (the bytes themselves are not kept)."""

    error: str | None = None  # why there are no bytes at all
    is_feed: bool = False  # served with a feed's content type
    stale: str | None = None  # why the fresh fetch failed, when the cached copy was used


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Documents:
    """Everything one run fetched and read, keyed by URL."""

    fetched: Mapping[str, Fetched] = field(default_factory=dict)
    feed_of: Mapping[str, str | None] = field(default_factory=dict)  # page/blog -> its feed
    feeds: Mapping[str, ParsedFeed | ParseFailure] = field(default_factory=dict)
    pages: Mapping[str, PageInfo] = field(default_factory=dict)

    def failure(self, url: str) -> str | None:
        """Why ``url`` gave nothing usable: a fetch fault, or bytes that are not a feed."""
        fetched = self.fetched.get(url)
        if fetched is None:
            return None
        if fetched.error:
            return fetched.error
        parsed = self.feeds.get(url)
        return parsed.reason if isinstance(parsed, ParseFailure) else None

    def ok(self, url: str) -> bool:
        fetched = self.fetched.get(url)
        return fetched is not None and fetched.error is None

    def is_feed(self, url: str) -> bool:
        fetched = self.fetched.get(url)
        return fetched is not None and fetched.error is None and fetched.is_feed


def looks_like_feed(result: FetchResult) -> bool:
    ctype = result.headers.get("content-type", "").lower()
    return "html" not in ctype and any(t in ctype for t in FEED_TYPES)


class _Run:
    """The mutable state of one collection; ``collect`` hands back a frozen ``Documents``."""

    def __init__(self, fetcher, parser: FeedParser, cache: HttpCache | None, progress) -> None:
        self.fetcher = fetcher
        self.parser = parser
        self.cache = cache
        self.progress = progress
        self.fetched: dict[str, Fetched] = {}
        self.feed_of: dict[str, str | None] = {}
        self.feeds: dict[str, ParsedFeed | ParseFailure] = {}
        self.pages: dict[str, PageInfo] = {}
        self.bodies: dict[str, FetchResult] = {}  # fetched feed bodies until they are parsed
        self.tags: dict[str, frozenset[str] | None] = {}

    def fetch(self, urls: Iterable[str], feeds: Iterable[str] = ()) -> None:
        """Fetch what is not fetched yet; known feeds start parsing as soon as they arrive."""
        todo = sorted({u for u in urls if u and u not in self.fetched})
        if not todo:
            return
        feeds = set(feeds) & set(todo)
        self.parser.expect(len(feeds))

        def arrived(result: FetchResult) -> None:
            if self.progress is not None:
                self.progress(result)
            if result.url in feeds and result.ok:
                self.parser.submit(result, self.tags.get(result.url))

        results = self.fetcher.fetch_all(todo, progress=arrived)
        for url in todo:
            result = results.get(url) or FetchResult(url=url, error="not fetched")
            stale = None
            if not result.ok:
                stale, result = self._stale_copy(url, result)
            if not result.ok:
                self.fetched[url] = Fetched(error=result.error or "failed")
                continue
            fetched = self.fetched[url] = Fetched(is_feed=looks_like_feed(result), stale=stale)
            if url in feeds or fetched.is_feed:
                self.bodies[url] = result
            if not fetched.is_feed:
                self.pages[url] = parse_page(result.body, result.headers, result.final_url or url)

    def _stale_copy(self, url: str, failed: FetchResult) -> tuple[str | None, FetchResult]:
        """The last good body from the cache when the fresh fetch failed."""
        cached = self.cache.get(url) if self.cache is not None else None
        if cached is None or not cached.body:
            return None, failed
        copy = FetchResult(
            url=url,
            final_url=cached.final_url,
            status=cached.status,
            headers=dict(cached.headers),
            body=cached.body,
            from_cache=True,
            digest=cached.digest,
        )
        return failed.error or "failed", copy

    def decide_feeds(self, plans: list[EditionPlan]) -> None:
        """Each post's and blog's feed, decided once (see ``sources.feed_for``)."""
        for p in plans:
            for url, given in p.readers():
                if url not in self.feed_of:
                    self.feed_of[url] = feed_for(url, given, self.is_feed, self.pages.get)
        self.tags = parse_tags(plans, self.feed_of)

    def is_feed(self, url: str) -> bool:
        fetched = self.fetched.get(url)
        return fetched is not None and fetched.error is None and fetched.is_feed

    def feed(self, url: str | None) -> ParsedFeed | ParseFailure | None:
        if url is None:
            return None
        if url not in self.feeds:
            result = self.bodies.pop(url, None)
            if result is None:
                return None
            self.feeds[url] = self.parser.parse(result, self.tags.get(url))
        return self.feeds[url]


def collect(
    plans: list[EditionPlan],
    fetcher,
    parser: FeedParser,
    *,
    cache: HttpCache | None = None,
    progress: Callable[[FetchResult], None] | None = None,
) -> Documents:
    """Fetch and read what ``plans`` need; remote faults end up in ``Documents``, never raised."""
    run = _Run(fetcher, parser, cache, progress)
    run.tags = parse_tags(plans, {})
    given = [feed for p in plans for _, feed in p.readers() if feed]
    run.fetch((url for p in plans for url in p.first_urls()), feeds=given)
    run.decide_feeds(plans)
    discovered = [u for u in run.feed_of.values() if u]
    run.fetch(discovered, feeds=discovered)
    missing_pages = []
    for p in plans:
        for sub in p.submissions:
            feed = run.feed(run.feed_of[sub.url])
            if not isinstance(feed, ParsedFeed) or find_in_feed(feed, sub.url) is None:
                missing_pages.append(sub.url)
    run.fetch(missing_pages)
    for url in set(run.feed_of.values()):
        run.feed(url)
    run.bodies.clear()
    return Documents(
        fetched=_frozen(run.fetched),
        feed_of=_frozen(run.feed_of),
        feeds=_frozen(run.feeds),
        pages=_frozen(run.pages),
    )
