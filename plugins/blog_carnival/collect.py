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

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .cache import HttpCache
from .model import FetchResult, PageInfo, ParsedFeed, ParseFailure
from .page import parse_page
from .parsepool import FeedParser
from .select import find_in_feed
from .sources import EditionPlan, feed_for, wants

FEED_TYPES = ("xml", "rss", "atom", "rdf", "json")
CACHE_SAMPLE = 64  # URLs looked at to tell whether a phase needs the network (see below)


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


@dataclass(frozen=True)
class Read:
    """What one fetched URL gave before any feed is parsed: its outcome, the page read
    from it, and the result to parse when it is (or is served as) a feed."""

    url: str
    fetched: Fetched
    page: PageInfo | None = None
    feed: FetchResult | None = None


def read_one(result: FetchResult, listed_as_feed: bool, cache: HttpCache | None) -> Read:
    """Read one fetch result: a failure falls back to the cache's last good copy, a page
    becomes its ``PageInfo`` (the body is let go), a feed is handed back for parsing."""
    url = result.url
    stale = None
    if not result.ok:
        stale, result = stale_copy(url, result, cache)
    if not result.ok:
        return Read(url, Fetched(error=result.error or "failed"))
    fetched = Fetched(is_feed=looks_like_feed(result), stale=stale)
    page = None
    if not fetched.is_feed:
        page = parse_page(result.body, result.headers, result.final_url or url)
    feed = result if listed_as_feed or fetched.is_feed else None
    return Read(url, fetched, page, feed)


def stale_copy(
    url: str, failed: FetchResult, cache: HttpCache | None
) -> tuple[str | None, FetchResult]:
    """The last good body from the cache when the fresh fetch failed."""
    cached = cache.get(url) if cache is not None else None
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


def new_feeds(urls: Iterable[str], feeds: Collection[str], cache: HttpCache | None) -> int:
    """How many of ``urls`` are feeds the cache never stored: each will need parsing."""
    listed = [u for u in urls if u in feeds]
    stored = cache.stored_among(listed) if cache is not None else set()
    return sum(u not in stored for u in listed)


def mostly_new(urls: Collection[str], new: int) -> bool:
    """Whether parsing ``new`` never-stored feeds is most of the work of fetching ``urls``
    (a first build), rather than cache reads and revalidations (a rebuild).

    A rebuild's work is spread over fetch workers by host (shards.py), and may run beside
    Pelican's reading of posts (the adapter). A first build's parsing goes best to parse
    workers fed by this process's fetching loop: parsing in a process that also
    fetches costs it the interpreter lock its fetching loop wants."""
    return 2 * new > len(urls)


def mostly_from_cache(fetcher, urls: list[str], sample: int = CACHE_SAMPLE) -> bool:
    """Whether most of ``urls`` need no request (``Fetcher.answers_from_cache``: offline, or
    still fresh), judged on at most ``sample`` of them spread evenly through the list. Such a
    phase is read in this process: starting fetch workers for it costs more than the reading
    (a request-free answer costs about half a millisecond here, without a thread)."""
    if not urls:
        return False
    picked = urls[:: max(1, len(urls) // sample)]
    return 2 * sum(fetcher.answers_from_cache(u) for u in picked) > len(picked)


class _Run:
    """The mutable state of one collection; ``collect`` hands back a frozen ``Documents``.

    Bodies are let go as soon as they are read: a page becomes its ``PageInfo``, a feed goes
    to the parser, which keeps only the narrowed result. A feed's body is kept only while
    what the plans read it for may still change (before feeds are discovered on pages).
    """

    def __init__(
        self,
        plans: list[EditionPlan],
        fetcher,
        parser: FeedParser,
        cache: HttpCache | None,
        shards=None,
    ) -> None:
        self.fetcher = fetcher
        self.parser = parser
        self.cache = cache
        self.shards = shards  # shards.Shards, or None: everything fetched in this process
        self.plans = plans
        self.progress: Callable[[str], None] | None = None
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
        threads that read answers (``Fetcher.fetch_each``'s ``after``)."""
        todo = sorted({u for u in urls if u and u not in self.fetched})
        feeds = frozenset(feeds)
        unparsed = new_feeds(todo, feeds, self.cache)
        shard = self.shards is not None and self.shards.worth(len(todo))
        if shard and not mostly_new(todo, unparsed) and not mostly_from_cache(self.fetcher, todo):
            left: list[str] = []
            for item in self.shards.read_each(
                todo, feeds, self.wants, not self.settled, left.extend
            ):
                if item.parsed is not None and item.want is not None:
                    self.parser.record(item.read.url, item.want, item.parsed)
                self.record(item.read, kept=item.read.feed)
                self._advance(item.read.url)
            todo, unparsed = left, len(left)
        # A cold cache starts the parse workers before the first answer.
        self.parser.expect(unparsed)
        for result in self.fetcher.fetch_each(todo, lambda r: self.arrived(r, r.url in feeds)):
            self._advance(result.url)
        self.parser.flush()

    def _advance(self, url: str) -> None:
        if self.progress is not None:
            self.progress(url)

    def arrived(self, result: FetchResult, listed_as_feed: bool) -> None:
        """Record one result and read it (called from the threads that read answers)."""
        read = read_one(result, listed_as_feed, self.cache)
        if read.feed is not None:
            want = self.wants.get(result.url)
            if want is not None:
                self.parser.submit(read.feed, want)
        self.record(read, kept=None if self.settled else read.feed)

    def record(self, read: Read, kept: FetchResult | None) -> None:
        url = read.url
        self.fetched[url] = read.fetched
        if read.page is not None:
            self.pages[url] = read.page
        if kept is not None:
            self.bodies[url] = kept

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
    progress: Callable[[str], None] | None = None,
    shards=None,
) -> Documents:
    """Fetch and read what ``plans`` need; remote faults end up in ``Documents``, never raised.
    ``shards`` (a ``shards.Shards``): worker processes for large fetches; ``progress`` is
    called with each URL as it is done."""
    run = _Run(list(plans), fetcher, parser, cache, shards)
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
