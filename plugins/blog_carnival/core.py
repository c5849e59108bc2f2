"""The carnival's one API: what the Pelican adapter and the host's command line both call.

The flow, stage by stage (each a module with one job; nothing here imports Pelican):

    settings.read_settings      CARNIVAL_* settings, read once
    config.load_carnivals       carnival/<slug>/carnival.toml and <NNN>.toml, validated
    sources.plan                per edition: which posts, pages and feeds to read
    collect.collect             fetch (fetch.Fetcher) and parse (parsepool.FeedParser) in phases
    assemble.assemble           pure: the edition's entries, failures and notices
    lock.read_lock / write_lock a published edition frozen into <NNN>.lock.json
    render / report             template context, and the summary at the end of a build
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

from .assemble import assemble, from_lock
from .cache import HttpCache
from .collect import collect
from .config import load_carnivals
from .errors import UsageError
from .fetch import Fetcher
from .lock import LockError, merge, read_lock, write_lock
from .model import Carnival, Edition, EditionResult, FetchResult
from .parsepool import FeedParser
from .settings import CarnivalSettings
from .sources import plan

logger = logging.getLogger(__name__)

Progress = Callable[[FetchResult], None]


def load(settings: CarnivalSettings) -> tuple[Carnival, ...]:
    """Every carnival under CARNIVAL_PATH; ConfigError lists every problem in every file."""
    return load_carnivals(settings.path)


def find_edition(carnivals: Iterable[Carnival], ref: str) -> tuple[Carnival, Edition]:
    """``networking-carnival/3`` -> that carnival and edition, or UsageError saying why not."""
    slug, _, number = ref.strip().strip("/").partition("/")
    carnivals = tuple(carnivals)
    carnival = next((c for c in carnivals if c.slug == slug), None)
    if carnival is None:
        known = ", ".join(c.slug for c in carnivals) or "none"
        raise UsageError(f"no carnival {slug!r} (carnivals: {known})")
    edition = carnival.edition(int(number)) if number.isdigit() else None
    if edition is None:
        numbers = ", ".join(str(e.number) for e in carnival.editions) or "none yet"
        raise UsageError(f"no edition {ref!r}: expected <carnival>/<number> (editions: {numbers})")
    return carnival, edition


def open_fetcher(settings: CarnivalSettings) -> Fetcher:
    """The guarded HTTP client with the on-disk cache, as every command and the build use it."""
    return Fetcher(settings.fetch, HttpCache(settings.http_cache_path))


def resolve_editions(
    items: Iterable[tuple[Carnival, Edition]],
    fetcher: Fetcher,
    *,
    parse_cache=None,
    excerpt_words: int = 40,
    progress: Progress | None = None,
    parse_processes: int | None = None,
) -> dict[str, EditionResult]:
    """Resolve editions from the network (through the fetcher's cache), all together."""
    plans = [plan(carnival, edition) for carnival, edition in items]
    with FeedParser(parse_cache, parse_processes) as parser:
        docs = collect(plans, fetcher, parser, cache=fetcher.cache, progress=progress)
    return {p.edition.key: assemble(p, docs, excerpt_words) for p in plans}


def resolve(
    settings: CarnivalSettings,
    items: Iterable[tuple[Carnival, Edition]],
    progress: Progress | None = None,
) -> dict[str, EditionResult]:
    """``resolve_editions`` with the fetcher, caches and excerpt length the settings give."""
    items = list(items)
    if not items:
        return {}
    with open_fetcher(settings) as fetcher:
        return resolve_editions(
            items,
            fetcher,
            parse_cache=settings.parse_cache_path,
            excerpt_words=settings.excerpt_words,
            progress=progress,
        )


def locked_result(carnival: Carnival, edition: Edition) -> EditionResult | None:
    """The edition from its lock, or None when it has none (or the lock is unreadable, which
    is logged: the edition is then resolved from the network instead)."""
    try:
        locked = read_lock(edition.lock_path)
    except LockError as exc:
        logger.error("carnival: %s", exc)
        return None
    return None if locked is None else from_lock(carnival, edition, locked)


def from_locks(
    carnivals: Iterable[Carnival], today: dt.date
) -> tuple[dict[str, EditionResult], list[tuple[Carnival, Edition]]]:
    """Every published edition hosted here that has a lock, resolved from it; and those still
    to fetch. Calls for submissions (editions still ahead of ``today``) need neither."""
    results: dict[str, EditionResult] = {}
    to_fetch = []
    for carnival in carnivals:
        for edition in carnival.editions:
            if edition.external or edition.is_call(today):
                continue
            locked = locked_result(carnival, edition)
            if locked is not None:
                results[edition.key] = locked
            else:
                to_fetch.append((carnival, edition))
    return results, to_fetch


def freeze(
    settings: CarnivalSettings,
    carnival: Carnival,
    edition: Edition,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> EditionResult:
    """Resolve an edition from the network and write its lock, never losing an entry."""
    if edition.external:
        raise UsageError(
            f"{edition.key} is hosted elsewhere ({edition.roundup_url}); nothing to freeze"
        )
    try:
        old = read_lock(edition.lock_path)
    except LockError as exc:
        logger.warning("carnival: %s", exc)
        old = None
    fresh = resolve(settings, [(carnival, edition)], progress)[edition.key]
    merged, kept_notices = merge(old, list(fresh.entries))
    write_lock(edition.lock_path, edition.carnival, edition.number, merged, now=now)
    result = from_lock(carnival, edition, merged)
    return EditionResult(
        key=edition.key,
        entries=result.entries,
        failures=fresh.failures,
        notices=fresh.notices + tuple(kept_notices) + result.notices,
        from_lock=False,
    )
