"""Add a submitted post to an edition: read it the way the build will, refuse what the build
should not get, and append one ``[[entries]]`` block to the edition's TOML.

The page is fetched with the build's guarded client (address policy, timeouts, size cap,
cache); its feed is discovered on the page and the entry found in it, else the page's own
metadata stands in. Every refusal is a ``Refused`` with one line saying why, and leaves the
edition file as it was. The file is only ever appended to: every comment, blank line and
the order of what was there are kept byte for byte.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

from .config import edition_from_text
from .errors import ConfigError, Refused, UsageError
from .fetch import Fetcher
from .lock import LockError, read_lock
from .model import Carnival, Edition, FeedEntry, PageInfo, ParsedFeed, Source
from .page import parse_page
from .parse import parse_feed
from .sanitize import normalize_text
from .scaffold import toml_value
from .select import find_in_feed, origin, window
from .textutil import write_atomic
from .urls import canonical_url, clean_url, safe_link, site_of


@dataclass(frozen=True)
class Found:
    """What the post says about itself: from its blog's feed, else from its page."""

    url: str  # the URL to store: canonical, tracking parameters dropped
    title: str | None
    blog_name: str | None
    blog_url: str | None
    author: str | None
    published: dt.datetime | None
    feed_url: str | None
    source: Source  # FEED or PAGE

    @property
    def contributor(self) -> str:
        """The blogger, for per-contributor limits: the blog's host name."""
        return site_of(self.blog_url or self.url)


@dataclass(frozen=True)
class Submitted:
    """The outcome of a submission that was accepted (or would be, in a dry run)."""

    edition: Edition
    found: Found
    block: str  # the TOML appended to the edition file
    written: bool
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        f = self.found
        date = f.published.date().isoformat() if f.published else "unknown"
        out = [
            f"found: {f.title or '(no title)'}",
            f"  blog:   {f.blog_name or '(unnamed)'}{f' <{f.blog_url}>' if f.blog_url else ''}",
            f"  author: {f.author or 'unknown'}",
            f"  date:   {date}",
            f"  feed:   {f.feed_url or 'none found (the page itself will be read)'}",
            f"  from:   {'its feed' if f.source == Source.FEED else 'its page'}",
        ]
        out.extend(f"note: {n}" for n in self.notes)
        if self.written:
            out.append(f"added {f.url} to {self.edition.key} ({self.edition.path.name})")
        else:
            out.append(f"dry run: would append to {self.edition.path.name}:")
            out.extend(f"  {line}" for line in self.block.strip("\n").splitlines())
        return out


def _is_html(headers) -> bool:
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype in ("text/html", "application/xhtml+xml")


def read_post(fetcher: Fetcher, url: str) -> Found:
    """Fetch the post's page and its feed; what they say about the post. Refused when the page
    cannot be had or is not HTML."""
    page = fetcher.fetch(url)
    if not page.ok:
        raise Refused(f"cannot read {url}: {page.error}")
    if not _is_html(page.headers):
        ctype = page.headers.get("content-type", "none") or "none"
        raise Refused(f"{url} is not an HTML page (content type: {ctype})")
    final = page.final_url or url
    info = parse_page(page.body, page.headers, final)
    stored = clean_url(_canonical_of(info, final))
    feed_url = info.feed_links[0] if info.feed_links else None
    entry, feed = _entry_in_feed(fetcher, feed_url, (url, final, stored))
    if entry is not None and feed is not None:
        return Found(
            url=stored,
            title=normalize_text(entry.title, 300) or info.title,
            blog_name=normalize_text(feed.title, 120) or info.site_name,
            blog_url=feed.link or origin(stored),
            author=normalize_text(entry.author, 120) or info.author,
            published=entry.date or info.published,
            feed_url=feed_url,
            source=Source.FEED,
        )
    return Found(
        url=stored,
        title=info.title,
        blog_name=info.site_name or (normalize_text(feed.title, 120) if feed else None),
        blog_url=(feed.link if feed else None) or origin(stored),
        author=info.author,
        published=info.published,
        feed_url=feed_url,
        source=Source.PAGE,
    )


def _canonical_of(info: PageInfo, final: str) -> str:
    """The page's rel=canonical when it names a page on the same site, else the final URL."""
    if info.canonical and site_of(info.canonical) == site_of(final):
        return info.canonical
    return final


def _entry_in_feed(
    fetcher: Fetcher, feed_url: str | None, urls: tuple[str, ...]
) -> tuple[FeedEntry | None, ParsedFeed | None]:
    if feed_url is None:
        return None, None
    result = fetcher.fetch(feed_url)
    if not result.ok:
        return None, None
    feed = parse_feed(result.body, result.headers, result.final_url or feed_url)
    if not isinstance(feed, ParsedFeed):
        return None, None
    for url in urls:
        entry = find_in_feed(feed, url)
        if entry is not None:
            return entry, feed
    return None, feed


def featured_in(carnival: Carnival, key: str, before: int) -> Edition | None:
    """The earlier edition of this carnival that already has the post (canonical ``key``)."""
    for edition in carnival.editions:
        if edition.number >= before:
            continue
        keys = {canonical_url(s.url) for s in edition.entries}
        with contextlib.suppress(LockError):
            keys |= {e.key for e in read_lock(edition.lock_path) or ()}
        if key in keys:
            return edition
    return None


def _contributors_in(edition: Edition) -> list[str]:
    """Who already has an entry: each entry's blog host (from the lock when it knows it)."""
    try:
        locked = {e.key: e for e in read_lock(edition.lock_path) or ()}
    except LockError:
        locked = {}
    hosts = []
    for sub in edition.entries:
        entry = locked.get(canonical_url(sub.url))
        hosts.append(entry.contributor if entry else site_of(sub.url))
    return hosts


def entry_block(
    found: Found,
    *,
    section: str | None,
    note: str | None,
    pick: bool,
    today: dt.date,
) -> str:
    """The ``[[entries]]`` block for ``found``, preceded by a blank line and a comment."""
    about = found.title or found.url
    by = f" by {found.author}" if found.author else ""
    blog = f", {found.blog_name}" if found.blog_name else ""
    comment = _comment(f"{about}{by}{blog}; added by carnival.submit on {today.isoformat()}")
    lines = ["", "[[entries]]", f"# {comment}", f"url = {toml_value(found.url)}"]
    if found.feed_url:
        lines.append(f"feed = {toml_value(found.feed_url)}")
    if found.title:
        lines.append(f"title = {toml_value(found.title)}  # used only if the post cannot be read")
    if section:
        lines.append(f"section = {toml_value(section)}")
    if note:
        lines.append(f"note = {toml_value(note)}")
    if pick:
        lines.append("pick = true")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """Text safe inside a TOML comment: one line, no control characters (TOML 1.0, Comment)."""
    return "".join(
        ch if ch == "\t" or (ord(ch) >= 0x20 and ord(ch) != 0x7F) else " " for ch in text
    )


def submit(
    carnival: Carnival,
    edition: Edition,
    url: str,
    fetcher: Fetcher,
    *,
    today: dt.date,
    section: str | None = None,
    note: str | None = None,
    pick: bool = False,
    force: bool = False,
    dry_run: bool = False,
) -> Submitted:
    """Check a submission and append it to the edition's TOML (unless ``dry_run``)."""
    notes: list[str] = []
    url = (url or "").strip()
    if safe_link(url) is None or "://" not in url:
        raise Refused(f"not an http(s) URL: {url!r}")
    if edition.external:
        raise Refused(
            f"{edition.key} is hosted elsewhere ({edition.roundup_url}): send the post to "
            f"{edition.host.name}"
        )
    if section and edition.sections and section not in edition.sections:
        raise UsageError(
            f"section {section!r} is not one of {edition.key}'s: {', '.join(edition.sections)}"
        )
    if edition.lock_path.exists():
        message = (
            f"{edition.key} is locked ({edition.lock_path.name}): after adding an entry the lock "
            f"must be refreshed with `invoke carnival.freeze {edition.key}`"
        )
        if not force:
            raise Refused(message + "; --force adds it anyway")
        notes.append(message)
    _refuse_known(carnival, edition, canonical_url(url))

    found = read_post(fetcher, url)
    _refuse_known(carnival, edition, canonical_url(found.url))
    start, end = window(edition)
    if found.published is None:
        notes.append("the post gives no date: check that it was published in the window")
    elif not start <= found.published <= end:
        local = found.published.astimezone(start.tzinfo).date()  # in the carnival's zone
        message = (
            f"{found.url} is dated {local.isoformat()}, outside the window "
            f"{edition.opens}..{edition.deadline}"
        )
        if not force:
            raise Refused(message + "; --force accepts it")
        notes.append(message + " (accepted with --force)")
    limit = edition.max_per_contributor or carnival.max_per_contributor
    if limit is not None:
        count = _contributors_in(edition).count(found.contributor)
        if count >= limit:
            raise Refused(
                f"{found.contributor} already has {count} entr{'y' if count == 1 else 'ies'} in "
                f"{edition.key} (max_per_contributor = {limit})"
            )
    if edition.is_call(today) is False:
        notes.append(f"{edition.key} was published on {edition.date}: rebuild to show the entry")

    block = entry_block(found, section=section, note=note, pick=pick, today=today)
    old = edition.path.read_text(encoding="utf-8")
    new = old + ("" if old.endswith("\n") or not old else "\n") + block
    try:
        edition_from_text(carnival, edition.path, new)
    except ConfigError as exc:
        raise Refused(f"the new entry would not be valid: {'; '.join(exc.problems)}") from None
    if not dry_run:
        write_atomic(edition.path, new)
    return Submitted(edition, found, block, written=not dry_run, notes=tuple(notes))


def _refuse_known(carnival: Carnival, edition: Edition, key: str) -> None:
    for sub in edition.entries:
        if canonical_url(sub.url) == key:
            raise Refused(f"{sub.url} is already an entry in {edition.key}")
    earlier = featured_in(carnival, key, edition.number)
    if earlier is not None:
        raise Refused(f"this post was already featured in {earlier.key} ({earlier.title})")
