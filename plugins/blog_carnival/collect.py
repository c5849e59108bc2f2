"""Fetch and read everything a set of editions needs, in three phases, all editions together.

1. every URL known up front (feeds the host gave, else the post or blog page);
2. feeds discovered on those pages;
3. pages of submitted posts their feed does not carry (the page fallback).

Each phase fetches concurrently, so the whole carnival costs about its slowest feed per phase
rather than the sum. A failed fetch falls back to the last good copy in the cache (nothing
collected is lost). The result, ``Documents``, is a frozen snapshot: assembling an edition
from it is a pure function (``assemble``).

Memory follows what the roundup needs, not what the feeds hold: each body is read as it
arrives and let go, and each parsed feed keeps only the entries its readers can use (see
``parsepool.Want`` and ``narrow``), so assembling gives what it would from the whole feeds.
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
from .sources import EditionPlan, feed_for, wants

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
    """The mutable state of one collection; ``collect`` hands back a frozen ``Documents``.

    Bodies are let go as soon as they are read: a page becomes its ``PageInfo``, a feed goes
    to the parser, which keeps only the narrowed result. A feed's body is kept only while
    what the plans read it for may still change (before feeds are discovered on pages).
    """

    def __init__(
        self, plans: list[EditionPlan], fetcher, parser: FeedParser, cache: HttpCache | None
    ) -> None:
        self.fetcher = fetcher
        self.parser = parser
        self.cache = cache
        self.plans = plans
        self.progress: Callable[[FetchResult], None] | None = None
        self.fetched: dict[str, Fetched] = {}
        self.feed_of: dict[str, str | None] = {}
        self.feeds: dict[str, ParsedFeed | ParseFailure] = {}
        self.pages: dict[str, PageInfo] = {}
        self.wants = wants(plans, {})
        # Every reader names its feed: what each feed is read for is known from the start.
        self.settled = all(given for p in plans for _, given in p.readers())
        self.bodies: dict[str, FetchResult] = {}  # feed bodies kept until ``settled``

    def fetch(self, urls: Iterable[str], feeds: Iterable[str] = ()) -> None:
        """Fetch what is not fetched yet; each result is read as soon as it arrives, in the
        thread that fetched it."""
        todo = sorted({u for u in urls if u and u not in self.fetched})
        feeds = set(feeds)
        # Feeds never stored before will need parsing: a cold cache starts the parse workers
        # before the first answer.
        cache = self.cache
        self.parser.expect(sum(u in feeds and (cache is None or not cache.has(u)) for u in todo))
        for result in self.fetcher.fetch_each(todo, lambda r: self.arrived(r, r.url in feeds)):
            if self.progress is not None:
                self.progress(result)
        self.parser.flush()

    def arrived(self, result: FetchResult, listed_as_feed: bool) -> None:
        """Record one result and read it (called from the fetching threads)."""
        url = result.url
        stale = None
        if not result.ok:
            stale, result = self._stale_copy(url, result)
        if not result.ok:
            self.fetched[url] = Fetched(error=result.error or "failed")
            return
        fetched = self.fetched[url] = Fetched(is_feed=looks_like_feed(result), stale=stale)
        if listed_as_feed or fetched.is_feed:
            want = self.wants.get(url)
            if want is not None:
                self.parser.submit(result, want)
            if not self.settled:
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

    def decide_feeds(self) -> None:
        """Each post's and blog's feed, decided once (see ``sources.feed_for``); from here on
        what every feed is read for is known, and kept bodies are read for it."""
        for p in self.plans:
            for url, given in p.readers():
                if url not in self.feed_of:
                    self.feed_of[url] = feed_for(url, given, self.is_feed, self.pages.get)
        final = wants(self.plans, self.feed_of)
        for url, result in self.bodies.items():
            want = final.get(url)
            if want is not None and want != self.wants.get(url):
                self.parser.submit(result, want)
        self.wants, self.settled = final, True
        self.bodies.clear()

    def is_feed(self, url: str) -> bool:
        fetched = self.fetched.get(url)
        return fetched is not None and fetched.error is None and fetched.is_feed

    def feed(self, url: str | None) -> ParsedFeed | ParseFailure | None:
        """The feed at ``url`` as parsed and narrowed for what the plans read it for."""
        if url is None:
            return None
        if url not in self.feeds:
            fetched, want = self.fetched.get(url), self.wants.get(url)
            if fetched is None or fetched.error or want is None:
                return None
            parsed = self.parser.take(url, want)
            if parsed is None:  # its worker died: read the body again, from the cache first
                result = self._again(url)
                if result is None:
                    return None
                parsed = self.parser.parse(result, want)
            self.feeds[url] = parsed
        return self.feeds[url]

    def _again(self, url: str) -> FetchResult | None:
        cached = self.cache.get(url) if self.cache is not None else None
        if cached is not None:
            return FetchResult(
                url, cached.final_url, cached.status, cached.headers, cached.body, digest=None
            )
        result = self.fetcher.fetch(url)
        return result if result.ok else None


def collect(
    plans: list[EditionPlan],
    fetcher,
    parser: FeedParser,
    *,
    cache: HttpCache | None = None,
    progress: Callable[[FetchResult], None] | None = None,
) -> Documents:
    """Fetch and read what ``plans`` need; remote faults end up in ``Documents``, never raised."""
    run = _Run(list(plans), fetcher, parser, cache)
    run.progress = progress
    given = [feed for p in run.plans for _, feed in p.readers() if feed]
    run.fetch((url for p in run.plans for url in p.first_urls()), feeds=given)
    run.decide_feeds()
    discovered = [u for u in run.feed_of.values() if u]
    run.fetch(discovered, feeds=discovered)
    missing_pages = []
    for p in run.plans:
        for sub in p.submissions:
            feed = run.feed(run.feed_of[sub.url])
            if not isinstance(feed, ParsedFeed) or find_in_feed(feed, sub.url) is None:
                missing_pages.append(sub.url)
    run.fetch(missing_pages)
    for url in set(run.feed_of.values()):
        run.feed(url)
    return Documents(
        fetched=_frozen(run.fetched),
        feed_of=_frozen(run.feed_of),
        feeds=_frozen(run.feeds),
        pages=_frozen(run.pages),
    )
