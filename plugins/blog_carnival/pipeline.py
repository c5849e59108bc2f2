"""Run the stages for a set of editions: sources -> fetch -> parse -> select -> lock.

All editions are fetched together, phase by phase, so the whole carnival costs about
as much as its slowest feed per phase rather than the sum. Per-URL faults become
Failure values; nothing here raises for a remote fault.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .config import Carnival, Edition
from .lock import LockError, merge, read_lock, write_lock
from .model import FetchResult, PageInfo, ParsedFeed, ParseFailure
from .page import parse_page
from .parse import feed_from_json, feed_to_json, parse_feed
from .select import (
    RoundupEntry,
    apply_limits,
    dedupe,
    find_in_feed,
    from_feed,
    from_page,
    select_tagged,
    unresolved,
    with_submission,
)
from .sources import Need, plan
from .textutil import write_atomic
from .urls import canonical_url

logger = logging.getLogger(__name__)

FEED_TYPES = ("xml", "rss", "atom", "rdf", "json")
# Parsing is CPU-bound (feedparser is pure Python): with this many feeds to parse, spread
# them over worker processes, started while the feeds are still being fetched.
PARSE_IN_PROCESSES_FROM = 8


@dataclass(frozen=True)
class EditionResult:
    """What one edition resolved to, and everything that went wrong on the way."""

    key: str
    entries: tuple[RoundupEntry, ...]
    failures: tuple[tuple[str, str], ...] = ()  # (url, reason)
    notices: tuple[str, ...] = ()
    from_lock: bool = False

    def count(self, *sources: str) -> int:
        return sum(1 for e in self.entries if e.source in sources)


@dataclass
class _Documents:
    """Every fetched URL and what it parsed to, shared by all editions of one run."""

    fetched: dict[str, FetchResult] = field(default_factory=dict)
    feeds: dict[str, ParsedFeed | ParseFailure] = field(default_factory=dict)
    pages: dict[str, PageInfo] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)  # url -> reason the fresh fetch failed


class Resolver:
    """Resolves editions through an injected fetcher; parses each distinct body once."""

    def __init__(
        self,
        fetcher,
        *,
        cache=None,
        parse_cache: Path | None = None,
        excerpt_words: int = 40,
        progress: Callable[[FetchResult], None] | None = None,
        parse_processes: int | None = None,
    ):
        self.fetcher = fetcher
        self.cache = cache
        self.parse_cache = parse_cache
        self.excerpt_words = excerpt_words
        self.progress = progress
        self.parse_processes = (os.cpu_count() or 1) if parse_processes is None else parse_processes
        self.docs = _Documents()
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, tuple[Future, frozenset[str] | None]] = {}
        self._tags: dict[str, frozenset[str] | None] = {}  # feed URL -> tags it is read for

    # -- fetching -------------------------------------------------------------------------

    def _fetch(self, urls: Iterable[str], feeds: Iterable[str] = ()) -> None:
        """Fetch what is not fetched yet; known feeds start parsing as soon as they arrive."""
        todo = sorted({u for u in urls if u and u not in self.docs.fetched})
        if not todo:
            return
        feeds = set(feeds) & set(todo)
        if len(feeds) >= PARSE_IN_PROCESSES_FROM and self.parse_processes > 1:
            self._start_pool()

        def arrived(result: FetchResult) -> None:
            if self.progress is not None:
                self.progress(result)
            if self._pool is not None and result.url in feeds and result.ok:
                self._submit(result)

        results = self.fetcher.fetch_all(todo, progress=arrived)
        for url in todo:
            result = results.get(url) or FetchResult(url=url, error="not fetched")
            if not result.ok:
                result = self._stale_copy(url, result)
            self.docs.fetched[url] = result

    def _stale_copy(self, url: str, failed: FetchResult) -> FetchResult:
        """The last good body from the cache when the fresh fetch failed: nothing collected is lost."""
        cached = self.cache.get(url) if self.cache is not None else None
        if cached is None or not cached.body:
            return failed
        self.docs.stale[url] = failed.error or "failed"
        return FetchResult(
            url=url,
            final_url=cached.final_url,
            status=cached.status,
            headers=dict(cached.headers),
            body=cached.body,
            from_cache=True,
            digest=cached.digest,
        )

    # -- parsing --------------------------------------------------------------------------

    def _start_pool(self) -> None:
        if self._pool is None:
            try:
                # Workers are fresh interpreters started with a copy of sys.path: make this
                # package importable there as Pelican loaded it (from PLUGIN_PATHS).
                plugin_root = str(Path(__file__).resolve().parent.parent)
                if plugin_root not in sys.path:
                    sys.path.append(plugin_root)
                self._pool = ProcessPoolExecutor(
                    self.parse_processes, mp_context=multiprocessing.get_context("spawn")
                )
            except (OSError, ValueError) as exc:  # no processes here: parse in this one
                logger.debug("carnival: parsing in-process (%s)", exc)
                self.parse_processes = 1

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _plan_tags(self, needs: list[tuple[Carnival, Need]]) -> None:
        """Which feeds are read only for tag mode, and for which tags: those may skip
        untagged items unparsed. A feed any submission needs is read whole (None)."""
        tags: dict[str, set[str] | None] = {}
        for _, need in needs:
            for person in need.contributors:
                url = self._feed_url_for(person.blog, person.feed)  # given, or found once fetched
                if url and tags.get(url, set()) is not None:
                    tags.setdefault(url, set()).add(need.edition.tag)
        for _, need in needs:
            for sub in need.submissions:
                url = self._feed_url_for(sub.url, sub.feed)
                if url:
                    tags[url] = None
        self._tags = {url: (frozenset(t) if t is not None else None) for url, t in tags.items()}

    def _memo_path(self, result: FetchResult) -> Path | None:
        if self.parse_cache is None:
            return None
        digest = result.digest or hashlib.sha256(result.body).hexdigest()
        tags = ",".join(sorted(self._tags.get(result.url) or ()))
        name = hashlib.sha256(
            f"{result.final_url or result.url}\n{digest}\n{tags}".encode()
        ).hexdigest()
        return self.parse_cache / name[:2] / f"{name}.json"

    def _submit(self, result: FetchResult) -> None:
        """Parse in a worker process, unless this exact body was parsed before (a 304 costs no parsing)."""
        memo = self._memo_path(result)
        if memo is not None and memo.exists():
            return
        tags = self._tags.get(result.url)
        future = self._pool.submit(
            parse_feed, result.body, dict(result.headers), result.final_url or result.url, tags=tags
        )
        self._pending[result.url] = (future, tags)

    def feed(self, url: str) -> ParsedFeed | ParseFailure | None:
        if url in self.docs.feeds:
            return self.docs.feeds[url]
        result = self.docs.fetched.get(url)
        if result is None or not result.ok:
            return None
        pending, tags = self._pending.pop(url, (None, None))
        if pending is not None and tags != self._tags.get(url):
            pending = None  # a later phase found that a submission needs the whole feed
        parsed = self._parse_memo(result, pending)
        self.docs.feeds[url] = parsed
        return parsed

    def _parse_memo(
        self, result: FetchResult, pending: Future | None = None
    ) -> ParsedFeed | ParseFailure:
        final = result.final_url or result.url
        memo = self._memo_path(result)
        if memo is not None and pending is None:
            try:
                return feed_from_json(json.loads(memo.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        parsed = None
        if pending is not None:
            try:
                parsed = pending.result()
            except Exception as exc:  # a dead worker must not cost the feed: parse it here
                logger.debug("carnival: worker failed on %s (%s); parsing in-process", final, exc)
        if parsed is None:
            parsed = parse_feed(result.body, result.headers, final, tags=self._tags.get(result.url))
        if memo is not None and isinstance(parsed, ParsedFeed):
            try:
                write_atomic(memo, json.dumps(feed_to_json(parsed), ensure_ascii=False))
            except OSError as exc:
                logger.debug("carnival: could not write parse cache %s: %s", memo, exc)
        return parsed

    def page(self, url: str) -> PageInfo | None:
        if url in self.docs.pages:
            return self.docs.pages[url]
        result = self.docs.fetched.get(url)
        if result is None or not result.ok:
            return None
        info = parse_page(result.body, result.headers, result.final_url or url)
        self.docs.pages[url] = info
        return info

    def _looks_like_feed(self, url: str) -> bool:
        result = self.docs.fetched.get(url)
        if result is None or not result.ok:
            return False
        ctype = result.headers.get("content-type", "").lower()
        return "html" not in ctype and any(t in ctype for t in FEED_TYPES)

    def _feed_url_for(self, url: str, given: str | None) -> str | None:
        """The feed to read for a page: the one given, the page itself if it is a feed, or discovered."""
        if given:
            return given
        if self._looks_like_feed(url):
            return url
        info = self.page(url)
        return info.feed_links[0] if info and info.feed_links else None

    def _failure(self, url: str) -> str | None:
        result = self.docs.fetched.get(url)
        if result is None:
            return None
        if not result.ok:
            return result.error or "failed"
        parsed = self.docs.feeds.get(url)
        if isinstance(parsed, ParseFailure):
            return parsed.reason
        return None

    # -- the run --------------------------------------------------------------------------

    def resolve(self, items: list[tuple[Carnival, Edition]]) -> dict[str, EditionResult]:
        """Resolve editions from the network (through the cache), all together."""
        try:
            return self._resolve(items)
        finally:
            self._stop_pool()

    def _resolve(self, items: list[tuple[Carnival, Edition]]) -> dict[str, EditionResult]:
        needs = [(carnival, plan(carnival, edition)) for carnival, edition in items]
        self._plan_tags(needs)
        # Phase 1: every URL known up front.
        known_feeds = [
            x.feed for _, need in needs for x in (*need.submissions, *need.contributors) if x.feed
        ]
        self._fetch((url for _, need in needs for url in need.first_urls()), feeds=known_feeds)
        # Phase 2: feeds discovered on pages.
        discovered = []
        for _, need in needs:
            for sub in need.submissions:
                discovered.append(self._feed_url_for(sub.url, sub.feed))
            for person in need.contributors:
                discovered.append(self._feed_url_for(person.blog, person.feed))
        self._plan_tags(needs)
        self._fetch((u for u in discovered if u), feeds=[u for u in discovered if u])
        # Phase 3: pages of submitted posts their feed does not carry (page fallback).
        missing_pages = []
        for _, need in needs:
            for sub in need.submissions:
                feed_url = self._feed_url_for(sub.url, sub.feed)
                feed = self.feed(feed_url) if feed_url else None
                if not isinstance(feed, ParsedFeed) or find_in_feed(feed, sub.url) is None:
                    missing_pages.append(sub.url)
        self._fetch(missing_pages)
        return {need.edition.key: self._edition(carnival, need) for carnival, need in needs}

    def _edition(self, carnival: Carnival, need: Need) -> EditionResult:
        edition = need.edition
        failures: dict[str, str] = {}
        notices: list[str] = []
        chosen: list[RoundupEntry] = []

        def note_failure(url: str | None) -> None:
            if url:
                reason = self._failure(url)
                if reason:
                    failures[url] = reason
                if url in self.docs.stale:
                    notices.append(f"used the cached copy of {url} ({self.docs.stale[url]})")
                parsed = self.docs.feeds.get(url)
                if isinstance(parsed, ParsedFeed):  # what parsing recovered from or left out
                    notices.extend(f"{url}: {warning}" for warning in parsed.warnings)

        for sub in need.submissions:
            feed_url = self._feed_url_for(sub.url, sub.feed)
            feed = self.feed(feed_url) if feed_url else None
            note_failure(feed_url)
            entry = None
            if isinstance(feed, ParsedFeed):
                found = find_in_feed(feed, sub.url)
                if found is not None:
                    entry = from_feed(found, feed, url=sub.url, excerpt_words=self.excerpt_words)
                else:
                    notices.append(f"{sub.url} is not in its feed {feed_url}; used its page")
            elif feed_url is None and self.docs.fetched.get(sub.url, FetchResult(sub.url)).ok:
                notices.append(
                    f"{sub.url}: no feed given and none found on the page; used the page"
                )
            if entry is None:
                info = self.page(sub.url)
                if info is not None and not self._looks_like_feed(sub.url):
                    entry = from_page(info, sub.url, self.excerpt_words)
                else:
                    note_failure(sub.url)
                    entry = unresolved(sub)
            chosen.append(with_submission(entry, sub))

        for person in need.contributors:
            feed_url = self._feed_url_for(person.blog, person.feed)
            if feed_url is None:
                reason = (
                    self._failure(person.blog) or "no feed given and none found on the blog's page"
                )
                failures[person.blog] = reason
                continue
            feed = self.feed(feed_url)
            note_failure(feed_url)
            if isinstance(feed, ParsedFeed):
                tagged, left_out = select_tagged(feed, edition, self.excerpt_words)
                chosen.extend(tagged)
                notices.extend(left_out)

        return _finish(carnival, edition, chosen, failures, notices)


def _finish(
    carnival: Carnival,
    edition: Edition,
    chosen: list[RoundupEntry],
    failures: dict[str, str],
    notices: list[str],
    from_lock: bool = False,
) -> EditionResult:
    notices = list(dict.fromkeys(notices))  # a feed read for several entries speaks once
    kept, duplicates = dedupe(chosen)
    notices.extend(f"dropped duplicate {e.url}" for e in duplicates if e.source == "tag")
    max_entries = edition.max_entries or carnival.max_entries
    max_per = edition.max_per_contributor or carnival.max_per_contributor
    kept, limited = apply_limits(kept, max_entries, max_per)
    notices.extend(f"limit dropped {e.url}: {why}" for e, why in limited)
    return EditionResult(
        key=edition.key,
        entries=tuple(kept),
        failures=tuple(sorted(failures.items())),
        notices=tuple(notices),
        from_lock=from_lock,
    )


def from_lock(carnival: Carnival, edition: Edition, locked: list[RoundupEntry]) -> EditionResult:
    """An edition built from its lock alone: no network. Submissions added after
    freezing are listed unresolved and named in the report."""
    by_key = {e.key: e for e in locked}
    chosen, notices = [], []
    for sub in edition.entries:
        entry = by_key.pop(canonical_url(sub.url), None)
        if entry is None:
            notices.append(
                f"{sub.url} is not in the lock: run `invoke carnival.freeze {edition.key}`"
            )
            entry = unresolved(sub)
        chosen.append(with_submission(entry, sub))
    chosen.extend(e for e in by_key.values() if e.source == "tag")
    return _finish(carnival, edition, chosen, {}, notices, from_lock=True)


def freeze(resolver: Resolver, carnival: Carnival, edition: Edition) -> EditionResult:
    """Resolve an edition from the network and write its lock, never losing an entry."""
    try:
        old = read_lock(edition.lock_path)
    except LockError as exc:
        logger.warning("carnival: %s", exc)
        old = None
    fresh = resolver.resolve([(carnival, edition)])[edition.key]
    merged, kept_notices = merge(old, list(fresh.entries))
    write_lock(edition.lock_path, edition.carnival, edition.number, merged)
    result = from_lock(carnival, edition, merged)
    return EditionResult(
        key=edition.key,
        entries=result.entries,
        failures=fresh.failures,
        notices=fresh.notices + tuple(kept_notices) + result.notices,
        from_lock=False,
    )
