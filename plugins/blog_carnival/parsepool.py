"""Parse feed bodies, each distinct body once: in worker processes while fetching goes on when
there is enough to parse, and remembered on disk so a feed that answers 304 costs no parsing.

feedparser is pure Python and CPU-bound. A worker process costs an interpreter start and the
imports (a third of a second of CPU and some 30 MiB): the pool starts only once
``PROCESSES_FROM`` feeds in a run have really needed parsing (parse-cache misses), with at most
``processes`` workers; until then, and for a handful of feeds, bodies are parsed in this
process as they arrive. A worker writes the parse-cache record itself, so the writes are
spread over the workers too.

The parse cache (``parsestore.ParseStore``, one SQLite database) keeps each feed's parse under
its final URL and the tags it was trimmed for, for the body of one sha256; a damaged record is
discarded with a notice and the body parsed again. Workers write their records themselves.

What leaves this module is narrowed to what the plan can use (``Want``): a feed read for
tag mode keeps the entries carrying a wanted tag, a feed read for submissions keeps the
entry each submitted URL finds. Nothing else is kept in memory for the rest of the build.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import multiprocessing.spawn
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import workermain
from .model import FeedEntry, FetchResult, ParsedFeed, ParseFailure, Want
from .parse import parse_feed
from .parsestore import ParseStore, RecordKey
from .select import entry_text, find_in_feed, tag_matches
from .textutil import Closing

logger = logging.getLogger(__name__)

# Parse in worker processes once this many feeds of one run have needed parsing: below it,
# starting interpreters costs more CPU than the parsing they would take over.
PROCESSES_FROM = 64
# Feeds sent to a worker together: each hand-over costs this process (which also fetches)
# CPU and thread switches; sending eight at a time costs an eighth of it per feed.
BATCH = 8

Tags = frozenset[str] | None
Parsed = ParsedFeed | ParseFailure
Job = tuple[bytes, Mapping[str, str], str, "Want", RecordKey | None]
Record = tuple[RecordKey, ParsedFeed]  # what the parse cache keeps of one feed


def narrow(parsed: Parsed, want: Want) -> Parsed:
    """``parsed`` with only the entries ``want`` can use, in their order, each with the plain
    text its excerpt is cut from (worked out here, where the feed was parsed: in a worker
    process when there are many).

    Exact for the plan: ``find_in_feed`` finds the same entry for every wanted URL in the
    narrowed feed as in the whole one (the entry it found comes first among those kept that
    could match), and ``select_tagged`` sees the same tagged entries.
    """
    if not isinstance(parsed, ParsedFeed):
        return parsed
    return replace(parsed, entries=tuple(e for _, e in _kept(parsed, want)))


def _narrowed(parsed: Parsed, want: Want) -> tuple[Parsed, Parsed]:
    """``narrow(parsed, want)``, and the whole of ``parsed`` with the text of each entry kept
    filled in: what the parse cache stores, so that a feed read from it (a 304, a fresh
    copy) does not work the same text out again."""
    if not isinstance(parsed, ParsedFeed):
        return parsed, parsed
    whole = list(parsed.entries)
    kept = []
    for i, e in _kept(parsed, want):
        whole[i] = e
        kept.append(e)
    return replace(parsed, entries=tuple(kept)), replace(parsed, entries=tuple(whole))


def _kept(feed: ParsedFeed, want: Want) -> Iterator[tuple[int, FeedEntry]]:
    """The place and entry of each entry ``want`` can use, with its text worked out."""
    keep = {id(e) for url in want.urls if (e := find_in_feed(feed, url)) is not None}
    for i, e in enumerate(feed.entries):
        if id(e) in keep or any(tag_matches(e, tag) for tag in want.tags):
            yield i, (e if e.text is not None else replace(e, text=entry_text(e)))


@dataclass
class _Sent:
    """A feed handed to the workers: the ``index``-th of the batch whose ``future`` (None
    while the batch is still being filled) gives the parsed feeds."""

    want: Want
    index: int
    future: Future | None = None


class FeedParser(Closing):
    """Turns fetched feed bodies into narrowed ``ParsedFeed`` / ``ParseFailure``; close it
    when done. ``processes`` caps the worker processes (default: the CPU count; 0 or 1:
    parse in this process only). ``submit`` may be called from several threads at once (one
    URL from one thread at a time)."""

    def __init__(self, cache_dir: Path | None = None, processes: int | None = None) -> None:
        self.cache_dir = cache_dir
        self.store = ParseStore(cache_dir) if cache_dir is not None else None
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, _Sent] = {}
        self._done: dict[str, tuple[Want, Parsed]] = {}
        self._batch: list[Job] = []
        self._batched: list[_Sent] = []
        self._misses = 0  # feeds of this run that the parse cache did not have
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers without waiting for them to exit (as ``shards.Shards.close``)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._batch, self._batched = [], []
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()
        self._done.clear()
        if self.store is not None:
            self.store.close()

    def expect(self, misses: int) -> None:
        """About ``misses`` feeds are about to need parsing (a cold cache): when that is worth
        it, start the workers now, so that their start-up overlaps the first answers."""
        with self._lock:
            if self._pool is None and self.processes > 1 and misses >= PROCESSES_FROM:
                self._start()

    @property
    def started(self) -> bool:
        """Whether worker processes were started (they are only when worth it)."""
        return self._pool is not None

    # -- parsing --------------------------------------------------------------------------------
    def submit(self, result: FetchResult, want: Want) -> None:
        """Start reading a fetched feed: from the parse cache, in a worker, or right here.
        The caller need not keep the body: ``take`` gives the narrowed result."""
        if not result.ok:
            return
        with self._lock:
            self._pending.pop(result.url, None)
        key = self._key(result, want.trim)
        cached = self._stored(key)
        if cached is not None:
            self._done[result.url] = (want, narrow(cached, want))
            return
        if self._workers() is not None:
            job = (result.body or b"", dict(result.headers), _base(result), want, key)
            with self._lock:
                sent = self._pending[result.url] = _Sent(want, len(self._batch))
                self._batch.append(job)
                self._batched.append(sent)
                if len(self._batch) >= BATCH:
                    self._send()
            return
        self._done[result.url] = (want, _parse_and_store(*_args(result), want, self.store, key))

    def flush(self) -> None:
        """Hand the feeds still gathering for a batch to the workers now (the fetching
        phase is over: nothing more is coming to fill it)."""
        with self._lock:
            self._send()

    def _send(self) -> None:
        jobs, sent, self._batch, self._batched = self._batch, self._batched, [], []
        if not jobs or self._pool is None:
            return
        try:
            # the workers store what they parse, unless this process found the cache unusable
            # (each would say so again, on its own stderr)
            usable = self.store is not None and self.store.usable
            future = self._pool.submit(_parse_batch, self.cache_dir if usable else None, jobs)
        except (BrokenProcessPool, RuntimeError) as exc:  # take() then says: parse it again
            logger.debug("carnival: parse workers unavailable (%s); parsing here", exc)
            future = Future()
            future.set_exception(exc)
        for item in sent:
            item.future = future

    def take(self, url: str, want: Want) -> Parsed | None:
        """The narrowed result ``submit`` started for ``url`` (waiting for its worker), or
        None when there is none for this ``want`` (then submit the body again)."""
        with self._lock:
            sent = self._pending.pop(url, None)
            if sent is not None and sent.future is None:
                self._send()
        if sent is not None:
            assert sent.future is not None
            try:
                parsed = sent.future.result()[sent.index]
            except Exception as exc:  # a dead worker must not cost the feed
                logger.debug("carnival: worker failed on %s (%s)", url, exc)
                return None
            self._done[url] = (sent.want, parsed)
        done = self._done.get(url)
        if done is None:
            return None
        wanted, parsed = done
        if wanted == want:
            return parsed
        if wanted.trim == want.trim and isinstance(parsed, ParseFailure):
            return parsed
        return None

    def record(self, url: str, want: Want, parsed: Parsed) -> None:
        """Remember a feed parsed for ``want`` elsewhere (by a fetch worker, see shards.py),
        for ``take`` to give."""
        with self._lock:
            self._pending.pop(url, None)
        self._done[url] = (want, parsed)

    def parse(self, result: FetchResult, want: Want) -> Parsed:
        """``submit`` then ``take``: the narrowed feed, parsed here if no worker has it."""
        found = self.take(result.url, want)
        if found is not None:
            return found
        self._done.pop(result.url, None)
        key = self._key(result, want.trim)
        cached = self._stored(key)
        if cached is not None:
            return narrow(cached, want)
        return _parse_and_store(*_args(result), want, self.store, key)

    def _workers(self) -> ProcessPoolExecutor | None:
        """The worker pool, started once enough feeds have needed parsing (this one too)."""
        with self._lock:
            self._misses += 1
            if self._pool is None and self.processes > 1 and self._misses >= PROCESSES_FROM:
                self._start()
            return self._pool

    def _start(self) -> None:
        try:
            self._pool = spawn_pool(self.processes)
            for _ in range(self.processes):  # processes start on demand: demand them now
                self._pool.submit(_ready)
        except (OSError, ValueError, BrokenProcessPool) as exc:  # parse in this process
            logger.debug("carnival: parsing in-process (%s)", exc)
            self.processes = 1
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    # -- the parse cache ------------------------------------------------------------------------
    def _key(self, result: FetchResult, tags: Tags) -> RecordKey | None:
        if self.store is None or result.body is None:
            return None
        return RecordKey.of(_base(result), tags, result.body, result.digest)

    def _stored(self, key: RecordKey | None) -> ParsedFeed | None:
        return self.store.get(key) if self.store is not None and key is not None else None


def spawn_pool(
    processes: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """Worker processes for this package (parse workers here, fetch workers in shards.py):
    fresh interpreters (``spawn``: forking a process that runs threads is unsafe), which
    start with a copy of ``sys.path``, so this package is made importable there as it was
    imported here (from PLUGIN_PATHS, or as pelican.plugins.blog_carnival from
    site-packages). Each worker ends itself when this process ends, however it ends (see
    ``_worker_start``); ``initializer(*initargs)`` then sets it up."""
    root = str(Path(__file__).resolve().parents[len(__package__.split("."))])
    if root not in sys.path:
        sys.path.append(root)
    if not getattr(multiprocessing.spawn.get_preparation_data, "skips_main_for_workers", False):
        multiprocessing.spawn.get_preparation_data = _without_main(
            multiprocessing.spawn.get_preparation_data
        )
    return ProcessPoolExecutor(
        processes,
        mp_context=_WorkerContext(),
        initializer=_worker_start,
        initargs=(initializer, initargs),
    )


WORKER_NAME = "carnival-worker"
WORKER_MAIN = Path(workermain.__file__)  # a worker's main module when installed (see there)


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker of this package, named so that ``_without_main`` knows it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = f"{WORKER_NAME}-{self.name}"


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


def _without_main(prepare: Callable[[str], dict]) -> Callable[[str], dict]:
    """multiprocessing's preparation of a spawned process, without the parent's main module
    for this package's workers (other processes are prepared as before).

    A spawned child runs the parent's main script again (as ``__mp_main__``) in case
    something it is sent was defined there. Nothing ours is, and under the ``pelican``
    command (or ``make html``, which runs it) that script imports the whole of Pelican: each
    worker spent 0.3 s of CPU on it before its first feed. (``python -m pelican`` was
    already spared: multiprocessing does not run a package's ``__main__`` again.)

    Installed as ``pelican.plugins.blog_carnival``, the workers' main module is
    ``workermain.py`` instead: it spares them Pelican's ``__init__`` the same way."""

    @functools.wraps(prepare)
    def preparation_data(name: str) -> dict:
        data = prepare(name)
        if name.startswith(WORKER_NAME):
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
            if __package__.partition(".")[0] == workermain.PARENT:
                data["init_main_from_path"] = str(WORKER_MAIN)
        return data

    preparation_data.skips_main_for_workers = True  # type: ignore[attr-defined]
    return preparation_data


def _worker_start(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Watch the parent: when the build is killed (SIGKILL leaves no chance to shut the
    pool down), a worker would otherwise go on with its task and then wait for work
    forever, or block writing results nobody reads, holding the build's output pipes."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            multiprocessing.connection.wait([sentinel])
            os._exit(1)  # no clean-up to do: the parent is gone

        threading.Thread(target=watch, name="carnival-watch-parent", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _args(result: FetchResult) -> tuple[bytes, Mapping[str, str], str]:
    return result.body or b"", result.headers, _base(result)


def _ready() -> None:
    """A worker's first task: being started, with this module imported."""


_stores: dict[Path, ParseStore] = {}  # in a worker: the parse cache, opened once


def _parse_batch(cache_dir: Path | None, jobs: list[Job]) -> list[Parsed]:
    """What a worker does with a batch."""
    store = None
    if cache_dir is not None:
        if cache_dir not in _stores:
            _stores[cache_dir] = ParseStore(cache_dir)
        store = _stores[cache_dir]
    narrowed: list[Parsed] = []
    records: list[Record] = []
    for job in jobs:
        parsed, kept = _parsed(*job)
        narrowed.append(parsed)
        records.extend(kept)
    if store is not None and records:
        store.put_many(records)  # one commit for the batch
    return narrowed


def _parse_and_store(
    body: bytes,
    headers: Mapping[str, str],
    base: str,
    want: Want,
    store: ParseStore | None,
    key: RecordKey | None,
) -> Parsed:
    """Parse (here), record the whole parse in the cache, return it narrowed."""
    narrowed, kept = _parsed(body, headers, base, want, key)
    if store is not None and kept:
        store.put_many(kept)
    return narrowed


def _parsed(
    body: bytes, headers: Mapping[str, str], base: str, want: Want, key: RecordKey | None
) -> tuple[Parsed, list[Record]]:
    """The feed parsed and narrowed for ``want``, and what the parse cache is to keep of it:
    the whole parse under ``key`` (nothing for a failure, or with no key)."""
    narrowed, whole = _narrowed(parse_feed(body, headers, base, tags=want.trim), want)
    keep = key is not None and isinstance(whole, ParsedFeed)
    return narrowed, [(key, whole)] if keep else []


def _base(result: FetchResult) -> str:
    """The URL the body really came from: relative links resolve against it."""
    return result.final_url or result.url
