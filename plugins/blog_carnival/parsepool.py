"""Parse feed bodies, each distinct body once: in worker processes while fetching goes on, and
remembered on disk so a feed that answers 304 costs no parsing.

feedparser is pure Python and CPU-bound: with many feeds, parsing is spread over worker
processes, started as soon as the first feeds arrive. The parse cache is keyed by the final
URL, the body's sha256 and the tags the feed was trimmed for; each record carries its own
sha256, and a damaged record is
discarded with a notice and the body parsed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType

from .model import FetchResult, ParsedFeed, ParseFailure
from .parse import feed_from_json, feed_to_json, parse_feed
from .textutil import write_atomic

logger = logging.getLogger(__name__)

# With at least this many feeds to parse in one phase, parse in worker processes.
PROCESSES_FROM = 8

Tags = frozenset[str] | None


class FeedParser:
    """Turns fetched feed bodies into ``ParsedFeed`` / ``ParseFailure``; close it when done."""

    def __init__(self, cache_dir: Path | None = None, processes: int | None = None) -> None:
        self.cache_dir = cache_dir
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, tuple[Future, Tags]] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> FeedParser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def expect(self, count: int) -> None:
        """``count`` feeds are about to arrive: start the worker pool if that is worth it."""
        if self._pool is not None or count < PROCESSES_FROM or self.processes <= 1:
            return
        try:
            # Workers are fresh interpreters started with a copy of sys.path: make this
            # package importable there as it was imported here (from PLUGIN_PATHS or as
            # pelican.plugins.blog_carnival from site-packages).
            root = str(Path(__file__).resolve().parents[len(__package__.split("."))])
            if root not in sys.path:
                sys.path.append(root)
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn")
            )
        except (OSError, ValueError) as exc:  # no processes here: parse in this one
            logger.debug("carnival: parsing in-process (%s)", exc)
            self.processes = 1

    # -- parsing --------------------------------------------------------------------------------
    def submit(self, result: FetchResult, tags: Tags) -> None:
        """Start parsing in a worker, unless there is no pool or this body was parsed before."""
        if self._pool is None or not result.ok or result.url in self._pending:
            return
        memo = self._memo_path(result, tags)
        if memo is not None and memo.exists():
            return
        future = self._pool.submit(
            parse_feed, result.body, dict(result.headers), _base(result), tags=tags
        )
        self._pending[result.url] = (future, tags)

    def parse(self, result: FetchResult, tags: Tags) -> ParsedFeed | ParseFailure:
        """The parsed feed: from the parse cache, a worker started earlier, or parsed here."""
        pending, pending_tags = self._pending.pop(result.url, (None, None))
        if pending is not None and pending_tags != tags:
            pending = None  # a later phase found that a submission needs the whole feed
        memo = self._memo_path(result, tags)
        if memo is not None and pending is None:
            cached = self._read_memo(memo)
            if cached is not None:
                return cached
        parsed = None
        if pending is not None:
            try:
                parsed = pending.result()
            except Exception as exc:  # a dead worker must not cost the feed: parse it here
                logger.debug("carnival: worker failed on %s (%s); parsing here", result.url, exc)
        if parsed is None:
            parsed = parse_feed(result.body, result.headers, _base(result), tags=tags)
        if memo is not None and isinstance(parsed, ParsedFeed):
            try:
                write_atomic(memo, _seal(json.dumps(feed_to_json(parsed), ensure_ascii=False)))
            except OSError as exc:
                logger.debug("carnival: could not write parse cache %s: %s", memo, exc)
        return parsed

    # -- the parse cache ------------------------------------------------------------------------
    def _memo_path(self, result: FetchResult, tags: Tags) -> Path | None:
        if self.cache_dir is None or result.body is None:
            return None
        digest = result.digest or hashlib.sha256(result.body).hexdigest()
        key = f"{_base(result)}\n{digest}\n{','.join(sorted(tags or ()))}"
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / name[:2] / f"{name}.json"

    @staticmethod
    def _read_memo(memo: Path) -> ParsedFeed | None:
        try:
            return read_record(memo)
        except OSError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("carnival: discarded damaged parse cache entry %s (%s)", memo, exc)
            with contextlib.suppress(OSError):
                memo.unlink()
            return None


def read_record(path: Path) -> ParsedFeed:
    """A parse-cache record as the build reads it; ValueError (or KeyError, TypeError) when it
    is damaged, OSError when it cannot be read."""
    return feed_from_json(json.loads(_unseal(path.read_text(encoding="utf-8"))))


def _seal(text: str) -> str:
    """A record is its sha256 on the first line, then the JSON: bit rot that still leaves
    valid JSON is caught too."""
    return f"{hashlib.sha256(text.encode()).hexdigest()}\n{text}"


def _unseal(sealed: str) -> str:
    digest, _, text = sealed.partition("\n")
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise ValueError("record does not match its sha256")
    return text


def _base(result: FetchResult) -> str:
    """The URL the body really came from: relative links resolve against it."""
    return result.final_url or result.url
