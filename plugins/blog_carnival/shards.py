"""Fetch and read in worker processes, each owning a share of the hosts.

Reading a feed costs more CPU than fetching it, and one process's threads share one
interpreter lock: with thousands of feeds a single process is CPU-bound long before the
network is. Here the URLs of one fetch phase are split by host into one shard per worker
process; each worker fetches its shard with its own threads and HTTP client (the same
``Fetcher`` and ``HttpCache`` the build uses, with the concurrency split between workers),
reads each result as ``collect.read_one`` does, and parses each feed (``FeedParser``, its
records in the same parse cache) for what the plans want. Only the outcome comes back:
``Fetched``, the page's ``PageInfo``, the narrowed feed, and a feed's body only while the
run still needs it (before feeds are discovered on pages).

Politeness holds: a host's URLs all go to one worker, so its per-host limit is the host's
limit. A redirect to a host another worker owns is the one exception (that host may then
see up to twice the limit while both fetch from it). Results stream back in small batches,
so the progress bar moves and memory holds only what the roundup needs.

Workers start only for a fetch of at least ``SHARD_FROM`` URLs (below that, starting
interpreters costs more than it saves), most of which need a request (a phase the cache
answers alone, feeds still fresh or a build offline, is read faster in the build process:
``collect.mostly_from_cache``), and are kept for the rest of the run. If a worker
dies, the URLs it had not answered for are handed back to be fetched in this process.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from .cache import HttpCache
from .collect import Read, read_one
from .fetch import Fetcher, FetchSettings
from .model import FetchResult, ParsedFeed, ParseFailure, Want
from .parsepool import FeedParser, spawn_pool
from .parsestore import ParseStore
from .sqlstore import SqliteStore
from .textutil import Closing

logger = logging.getLogger(__name__)

# Fetches of fewer URLs stay in this process: two interpreters and their imports cost about
# a second of CPU, what reading a few hundred feeds costs.
SHARD_FROM = 400
# Results a worker sends together: each message costs a pickle and a wake-up of this process.
STREAM = 32
# How often this process looks whether a worker died while waiting for results, seconds.
POLL = 0.5
LOG = 0  # the task number a worker's log records travel under (shards are numbered from 1)

Parsed = ParsedFeed | ParseFailure


@dataclass(frozen=True)
class ShardRead:
    """One URL's outcome from a worker: what ``read_one`` saw, the feed parsed for ``want``
    (None when it was not read as a feed, or nothing wanted it yet)."""

    read: Read
    want: Want | None = None
    parsed: Parsed | None = None


def host_of(url: str) -> str:
    """Which worker-share ``url`` belongs to: its host name without a leading "www.", every
    port together (so that a redirect from http to https, or to the www. name, stays in the
    same worker and under the same politeness); "" when it has none."""
    try:
        host = urlsplit(url).hostname or ""
    except (ValueError, TypeError, AttributeError):
        return ""
    return host.removeprefix("www.")


def split(urls: Iterable[str], shards: int) -> list[list[str]]:
    """``urls`` in at most ``shards`` lists, every host's URLs in one list, the lists as
    even as whole hosts allow (the largest hosts placed first, each on the shortest list)."""
    by_host: dict[str, list[str]] = {}
    for url in dict.fromkeys(urls):
        by_host.setdefault(host_of(url), []).append(url)
    lists: list[list[str]] = [[] for _ in range(max(1, shards))]
    for host in sorted(by_host, key=lambda h: (-len(by_host[h]), h)):
        min(lists, key=len).extend(by_host[host])
    return [shard for shard in lists if shard]


def portable(fetcher: Fetcher) -> tuple[FetchSettings, HttpCache | None] | None:
    """What a worker needs to build the same fetcher (its settings and cache), or None when
    it cannot: a test's resolver, trusted CA or clock do not cross into another process."""
    if not fetcher.portable:
        return None
    cache = fetcher.cache
    if cache is not None and not cache.portable:
        return None
    return fetcher.settings, cache


def _folder(store: SqliteStore | None) -> Path | None:
    """The folder a worker opens ``store`` from; None when this process cannot use it:
    each worker would only find the same and name it again."""
    return store.folder if store is not None and store.available() else None


class Shards(Closing):
    """Worker processes that fetch and read shares of a fetch phase; close it when done.

    ``processes``: how many workers (below 2, none: everything is fetched in the caller).
    ``cache`` and ``parse_cache``: this process's own; the workers open the same folders.
    """

    def __init__(
        self,
        settings: FetchSettings,
        cache: HttpCache | None,
        parse_cache: ParseStore | None,
        processes: int,
        *,
        shard_from: int = SHARD_FROM,
    ) -> None:
        self.processes = processes
        self.shard_from = shard_from
        self._spec = (settings, cache, parse_cache, processes)
        self._pool: ProcessPoolExecutor | None = None
        self._inbox: multiprocessing.Queue | None = None
        self._task = 0
        self.sent = 0  # URLs handed to the workers so far

    def close(self) -> None:
        """Stop the workers. They are not waited for: every answer is in by now, and their
        exit (each closes its connections) takes a tenth of a second or more that the build
        spends on the roundups instead; the pool joins them when this process exits."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._inbox is not None:
            self._inbox.close()
            self._inbox.join_thread()
            self._inbox = None

    def worth(self, count: int) -> bool:
        """Whether a fetch of ``count`` URLs goes to the workers."""
        return self.processes > 1 and count >= self.shard_from

    def read_each(
        self,
        urls: list[str],
        feeds: frozenset[str],
        wants: Mapping[str, Want],
        keep_feeds: bool,
        left: Callable[[list[str]], None],
    ) -> Iterator[ShardRead]:
        """Fetch and read ``urls`` in the workers, yielding each outcome as it arrives.
        ``feeds``: URLs to read as feeds whatever their content type; ``wants``: what each
        feed is parsed for; ``keep_feeds``: send feed bodies back too. URLs a dead worker
        never answered for are passed to ``left`` at the end (fetch them here)."""
        pool, inbox = self._start()
        if pool is None or inbox is None:
            left(list(urls))
            return
        shares = split(urls, self.processes)
        pending: dict[int, set[str]] = {}
        running: dict[int, Future] = {}
        for share in shares:
            self._task += 1
            task = self._task
            wanted = {u: wants[u] for u in share if u in wants}
            shard_feeds = frozenset(u for u in share if u in feeds)
            try:
                running[task] = pool.submit(
                    _read_shard, task, share, shard_feeds, wanted, keep_feeds
                )
            except (BrokenProcessPool, RuntimeError) as exc:  # all of it is fetched here
                logger.debug("carnival: fetch workers unavailable (%s)", exc)
                left(share)
                continue
            pending[task] = set(share)
            self.sent += len(share)
        while running:
            try:
                task, items = inbox.get(timeout=POLL)
            except queue.Empty:
                for task, future in list(running.items()):
                    if future.done() and future.exception() is not None:
                        logger.warning(
                            "carnival: a fetch worker failed (%s); fetching its %d remaining "
                            "URLs here",
                            future.exception(),
                            len(pending[task]),
                        )
                        del running[task]
                        left(sorted(pending.pop(task)))
                continue
            if task == LOG:  # a worker's log record: logged here, where the build's handlers are
                logging.getLogger(items.name).handle(items)
                continue
            if task not in running:  # a late message from a shard already given up on
                continue
            if items is None:  # the shard is done
                running.pop(task).result()
                rest = pending.pop(task)
                if rest:  # should not happen; never lose a URL
                    left(sorted(rest))
                continue
            for item in items:
                pending[task].discard(item.read.url)
                yield item

    def _start(self) -> tuple[ProcessPoolExecutor | None, multiprocessing.Queue | None]:
        if self._pool is not None:
            return self._pool, self._inbox
        settings, cache, parse_cache, processes = self._spec
        try:
            self._inbox = multiprocessing.get_context("spawn").Queue()
            self._pool = spawn_pool(
                self.processes,
                initializer=_worker_start,
                initargs=(
                    settings,
                    _folder(cache),
                    _folder(parse_cache),
                    processes,
                    self._inbox,
                    logging.getLogger(__package__).getEffectiveLevel(),
                ),
            )
        except (OSError, ValueError, BrokenProcessPool) as exc:
            logger.debug("carnival: fetching in this process only (%s)", exc)
            self.processes = 1
            self.close()
        return self._pool, self._inbox


# -- in the worker --------------------------------------------------------------------------------

_worker: dict[str, object] = {}


def _worker_start(
    settings: FetchSettings,
    cache_path: Path | None,
    parse_cache: Path | None,
    processes: int,
    outbox: multiprocessing.Queue,
    level: int,
) -> None:
    """A worker's fetcher (its share of the concurrency, at least one host's limit) and
    parser (in this worker only), made once for the worker's life. What the worker logs at
    ``level`` or above goes to the parent, to be logged there."""
    handler = _Forward(outbox)
    package = logging.getLogger(__package__)
    package.handlers[:] = [handler]
    package.setLevel(level)
    package.propagate = False
    share = max(settings.per_host, -(-settings.concurrency // processes))
    cache = HttpCache(cache_path) if cache_path is not None else None
    _worker["fetcher"] = Fetcher(replace(settings, concurrency=share), cache)
    _worker["parser"] = FeedParser(parse_cache, processes=1)
    _worker["outbox"] = outbox


class _Forward(logging.handlers.QueueHandler):
    """Sends each record (message formatted, arguments dropped: they may not pickle) to the
    parent under the ``LOG`` task number."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put_nowait((LOG, record))


def _read_shard(
    task: int, urls: list[str], feeds: frozenset[str], wants: Mapping[str, Want], keep: bool
) -> int:
    """Fetch, read and parse one shard, sending outcomes as they come; the count sent."""
    fetcher: Fetcher = _worker["fetcher"]  # type: ignore[assignment]
    parser: FeedParser = _worker["parser"]  # type: ignore[assignment]
    outbox: multiprocessing.Queue = _worker["outbox"]  # type: ignore[assignment]
    lock = threading.Lock()
    batch: list[ShardRead] = []
    sent = 0

    def send(items: list[ShardRead]) -> None:
        if items:
            outbox.put((task, items))

    def done(result: FetchResult) -> None:  # in the threads that read answers
        nonlocal batch, sent
        read = read_one(result, result.url in feeds, fetcher.cache)
        want = wants.get(result.url)
        parsed = None
        if read.feed is not None and want is not None:
            parsed = parser.parse(read.feed, want)
        if read.feed is not None and not keep:
            read = replace(read, feed=None)
        item = ShardRead(read, want if parsed is not None else None, parsed)
        with lock:
            batch.append(item)
            sent += 1
            full, batch = (batch, []) if len(batch) >= STREAM else ([], batch)
        send(full)

    for _ in fetcher.fetch_each(urls, after=done):
        pass
    if fetcher.cache is not None:  # the worker is not closed at the end: nothing may wait
        fetcher.cache.flush()
    with lock:
        rest, batch = batch, []
    send(rest)
    outbox.put((task, None))
    return sent
