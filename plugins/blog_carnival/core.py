"""The carnival's one API: what the Pelican adapter and the host's command line both call.

The flow, stage by stage (each a module with one job; nothing here imports Pelican):

    settings.read_settings      CARNIVAL_* settings, read once
    config.load_carnivals       carnival/<slug>/carnival.toml and <NNN>.toml, validated
    sources.plan                per edition: which posts, pages and feeds to read
    collect.collect             fetch (fetch.Fetcher) and parse (parsepool.FeedParser) in phases,
                                large phases in worker processes by host (shards.Shards)
    assemble.assemble           pure: the edition's entries, failures and notices
    lock.read_lock / write_lock a published edition frozen into <NNN>.lock.json
    render / report             template context, and the summary at the end of a build
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

from . import feedlog
from .assemble import assemble, from_lock
from .cache import HttpCache
from .collect import Documents, collect, mostly_new, new_feeds
from .config import load_carnivals
from .errors import ConfigError, Refused, UsageError
from .fetch import Fetcher
from .lock import LockError, merge, read_lock, write_lock
from .model import Carnival, Edition, EditionResult, Person
from .parsepool import FeedParser
from .settings import CarnivalSettings
from .shards import Shards, portable
from .sources import plan

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]  # called with each URL as its fetch is done


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
    results, _ = _resolve(
        items, fetcher, parse_cache, excerpt_words, progress, parse_processes=parse_processes
    )
    return results


def _resolve(
    items, fetcher, parse_cache, excerpt_words, progress, parse_processes=None, deliver=None
) -> tuple[dict[str, EditionResult], Documents]:
    """``deliver``, when given, is called with the results as soon as they are assembled,
    before the parse cache, the parse and fetch workers are closed."""
    plans = [plan(carnival, edition) for carnival, edition in items]
    parser = FeedParser(parse_cache, parse_processes)
    spec = portable(fetcher)
    workers = Shards(*spec, parser.store, parser.processes) if spec is not None else None
    with parser, workers or contextlib.nullcontext():
        docs = collect(
            plans, fetcher, parser, cache=fetcher.cache, progress=progress, shards=workers
        )
        results = {p.edition.key: assemble(p, docs, excerpt_words) for p in plans}
        if deliver is not None:
            deliver(results)
    return results, docs


def resolve(
    settings: CarnivalSettings,
    items: Iterable[tuple[Carnival, Edition]],
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    deliver: Callable[[dict[str, EditionResult]], None] | None = None,
) -> dict[str, EditionResult]:
    """``resolve_editions`` with the fetcher, caches and excerpt length the settings give;
    each URL's outcome goes into the feed log that ``status`` reads. ``deliver``: called
    with the results as soon as they are assembled, before the caches are closed and the
    feed log written (see ``start_resolving``)."""
    items = list(items)
    if not items:
        if deliver is not None:
            deliver({})
        return {}
    with open_fetcher(settings) as fetcher:
        results, docs = _resolve(
            items,
            fetcher,
            settings.parse_cache_path,
            settings.excerpt_words,
            progress,
            deliver=deliver,
        )
    outcomes = [(url, f.error or f.stale) for url, f in docs.fetched.items()]
    feedlog.record(settings.feed_log_path, outcomes, now or dt.datetime.now(dt.UTC))
    return results


def mostly_stored(settings: CarnivalSettings, items: Iterable[tuple[Carnival, Edition]]) -> bool:
    """Whether resolving these editions is a rebuild: the first URLs they are read from are
    mostly in the HTTP cache already (``collect.mostly_new``, the rule each fetch follows)."""
    plans = [plan(carnival, edition) for carnival, edition in items]
    urls = {url for p in plans for url in p.first_urls()}
    feeds = {feed for p in plans for _, feed in p.readers() if feed}
    with HttpCache(settings.http_cache_path) as cache:
        new = new_feeds(urls, feeds, cache)
    return bool(urls) and not mostly_new(urls, new)


class Resolving:
    """Editions being resolved in a thread of their own (``start_resolving``).

    While they are, the objects the caller had built before (a site's settings, templates
    and posts) are left out of garbage collection (``gc.freeze``), until ``finish``. The
    resolving allocates fast, and each full collection it set off walked that whole heap
    too: 45-51 ms in a build of the project's site, just before its first request. With the
    heap frozen, the collector took 19 ms of a 200-feed rebuild instead of 61 ms, and 0.33 s
    of a first 2,000-feed build instead of 0.49 s. Nothing is lost: unreachable cycles among
    the frozen objects are collected after ``finish``. The freeze is the process's: should
    two resolvings overlap (a build runs one at a time), the first ``finish`` ends it for
    both, which costs the second only time.
    """

    def __init__(
        self,
        settings: CarnivalSettings,
        items: list[tuple[Carnival, Edition]],
        progress: Progress | None,
    ) -> None:
        self._results: Future[dict[str, EditionResult]] = Future()
        self._finished = threading.Event()
        gc.freeze()
        threading.Thread(
            target=self._run, args=(settings, items, progress), name="carnival-resolve", daemon=True
        ).start()

    def result(self, timeout: float | None = None) -> dict[str, EditionResult]:
        """The results, as soon as they are assembled; raises what ``resolve`` raised."""
        return self._results.result(timeout)

    def finish(self) -> None:
        """Wait for the rest: the caches closed (their last writes committed), the feed
        log written; the caller's objects are collected as usual again."""
        self._finished.wait()
        gc.unfreeze()

    def _run(self, settings, items, progress) -> None:  # noqa: ANN001
        try:
            resolve(settings, items, progress, deliver=self._results.set_result)
        except BaseException as exc:
            if not self._results.done():  # handed to whoever waits for the result
                self._results.set_exception(exc)
            else:  # after the results: nobody is waiting for this, so say it here
                logger.exception("carnival: error after the editions were resolved")
        finally:
            self._finished.set()


def start_resolving(
    settings: CarnivalSettings,
    items: Iterable[tuple[Carnival, Edition]],
    progress: Progress | None = None,
) -> Resolving:
    """``resolve`` in a thread of its own: the network's time passes while the caller does
    other work (Pelican reads the site's posts), and what follows the results (closing the
    caches, writing the feed log: tens of milliseconds at 200 feeds) while the caller
    renders them. Call ``finish()`` before the process ends."""
    return Resolving(settings, list(items), progress)


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


# -- host commands -------------------------------------------------------------------------------
# Each is called by the Invoke tasks in a site's tasks.py and by the `pelican-carnival` command
# line alike; they print nothing. A refusal raises Refused (exit 1), a usage or configuration
# mistake UsageError or ConfigError (exit 2).


def absolute(site_url: str | None, path: str) -> str | None:
    """A site-relative URL made absolute under SITEURL (None when there is no SITEURL)."""
    if not site_url or "://" not in site_url:
        return None
    return f"{site_url.rstrip('/')}/{path.lstrip('/')}"


def check(settings: CarnivalSettings, ref: str | None = None) -> list[str]:
    """Validate every carnival file, lock and announce record without building; the lines to
    print. ConfigError lists what is wrong, with the build's own messages."""
    from .announce import read_record

    carnivals = load(settings)
    chosen = (
        [find_edition(carnivals, ref)] if ref else [(c, e) for c in carnivals for e in c.editions]
    )
    problems, notes = [], []
    for carnival, edition in chosen:
        try:
            locked = read_lock(edition.lock_path)
        except LockError as exc:
            problems.append(str(exc))
            locked = None
        if locked is not None:
            notes.extend(
                f"{edition.key}: {n}" for n in from_lock(carnival, edition, locked).notices
            )
        try:
            read_record(edition.announce_path)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    editions = len(chosen)
    what = ref or f"{len(carnivals)} carnival(s), {editions} edition(s)"
    return [f"note: {n}" for n in notes] + [f"carnival: checked {what}: no problems"]


def new_carnival(
    settings: CarnivalSettings,
    slug: str,
    *,
    organizer: Person,
    title: str | None = None,
    submit_email: str | None = None,
) -> Path:
    from .scaffold import new_carnival as write

    return write(settings.path, slug, title=title, organizer=organizer, submit_email=submit_email)


def new_edition(
    settings: CarnivalSettings,
    slug: str,
    *,
    title: str | None = None,
    host: Person | None = None,
    opens: dt.date | None = None,
    deadline: dt.date | None = None,
    date: dt.date | None = None,
) -> tuple[Path, Edition]:
    from .scaffold import new_edition as write

    carnival = next((c for c in load(settings) if c.slug == slug), None)
    if carnival is None:
        raise UsageError(f"no carnival {slug!r}: create it with `carnival.new {slug}`")
    return write(
        carnival,
        today=settings.today,
        title=title,
        host=host,
        opens=opens,
        deadline=deadline,
        date=date,
    )


def submit(
    settings: CarnivalSettings,
    ref: str,
    url: str,
    *,
    section: str | None = None,
    note: str | None = None,
    pick: bool = False,
    force: bool = False,
    dry_run: bool = False,
):
    """Read a submitted post and append it to the edition (see ``submit.submit``)."""
    from .submit import submit as add

    carnival, edition = find_edition(load(settings), ref)
    with open_fetcher(settings) as fetcher:
        return add(
            carnival,
            edition,
            url,
            fetcher,
            today=settings.today,
            section=section,
            note=note,
            pick=pick,
            force=force,
            dry_run=dry_run,
        )


def status(
    settings: CarnivalSettings,
    ref: str | None = None,
    *,
    site_url: str | None = None,
    progress: Progress | None = None,
):
    """Each chosen edition's entries (resolved from the lock, else through the cache), whether
    each post links back to the carnival under ``site_url``, what was announced, and its feeds'
    history."""
    from .announce import read_record
    from .status import edition_status
    from .webmention import links_to

    carnivals = load(settings)
    if ref and "/" in ref.strip("/"):
        chosen = [find_edition(carnivals, ref)]
    else:
        picked = [c for c in carnivals if not ref or c.slug == ref.strip("/")]
        if ref and not picked:
            raise UsageError(f"no carnival {ref!r}")
        chosen = [(c, e) for c in picked for e in c.editions]
    hosted = [(c, e) for c, e in chosen if not e.external]
    results = {e.key: r for c, e in hosted if (r := locked_result(c, e)) is not None}
    results.update(resolve(settings, [(c, e) for c, e in hosted if e.key not in results], progress))
    history = feedlog.read_log(settings.feed_log_path)
    statuses = []
    with open_fetcher(settings) as fetcher:
        for carnival, edition in chosen:
            result = results.get(edition.key)
            notes = []
            targets = [
                absolute(site_url, edition.url(settings.urls["CARNIVAL_EDITION_URL"])),
                absolute(site_url, settings.urls["CARNIVAL_URL"].format(carnival=carnival.slug)),
            ]
            if site_url is None:
                notes.append("links back not checked: no SITEURL (use the publish settings)")
            links: dict[str, bool | None] = {}
            for entry in result.entries if result else ():
                page = fetcher.fetch(entry.url) if site_url else None
                if page is None or not page.ok:
                    links[entry.url] = None
                    continue
                base = page.final_url or entry.url
                links[entry.url] = any(
                    links_to(page.body, page.headers, base, t) for t in targets if t
                )
            try:
                announced = read_record(edition.announce_path)
            except ConfigError as exc:
                announced = {}
                notes.extend(exc.problems)
            feed_urls = {e.feed_url for e in (result.entries if result else ()) if e.feed_url}
            feed_urls |= {s.feed for s in edition.entries if s.feed}
            if edition.tag:
                feed_urls |= {p.feed or p.blog for p in carnival.contributors}
            feeds = {u: history[u] for u in feed_urls if u in history}
            holds = {u: h for u in feed_urls if (h := fetcher.cache.held_until(u))}
            statuses.append(
                edition_status(
                    edition,
                    carnival.full_title(edition),
                    settings.today,
                    result,
                    links_back=links,
                    announced=announced,
                    feeds=feeds,
                    holds=holds,
                    notes=tuple(notes) + (result.notices if result else ()),
                )
            )
    return statuses


def announce(
    settings: CarnivalSettings,
    ref: str,
    *,
    site_url: str | None,
    dry_run: bool = False,
    resend: bool = False,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
):
    """Send a Webmention to every entry of a published edition (see ``announce.announce``)."""
    from .announce import AnnounceTarget
    from .announce import announce as send

    carnival, edition = find_edition(load(settings), ref)
    if edition.external:
        raise Refused(
            f"{edition.key} is hosted elsewhere ({edition.roundup_url}): its host announces it"
        )
    if edition.is_call(settings.today):
        raise Refused(
            f"{edition.key} is not published yet (its roundup comes out on {edition.date}): "
            "announce it after publishing"
        )
    source = absolute(site_url, edition.url(settings.urls["CARNIVAL_EDITION_URL"]))
    if source is None:
        raise UsageError(
            "announcing needs the site's public address: use the publish settings "
            "(-s publishconf.py) where SITEURL is set"
        )
    result = locked_result(carnival, edition)
    if result is None:
        result = resolve(settings, [(carnival, edition)], progress)[edition.key]
    targets = [
        AnnounceTarget(
            url=e.url, title=e.title, contributor=e.blog_name or e.contributor, author=e.author
        )
        for e in result.entries
    ]
    with open_fetcher(settings) as fetcher:
        return send(
            source,
            targets,
            edition.announce_path,
            fetcher,
            now=now or dt.datetime.now(dt.UTC),
            dry_run=dry_run,
            resend=resend,
            edition=carnival.full_title(edition),
        )
