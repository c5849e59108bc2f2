"""Read what a post's own HTML page says about itself: title, description, feeds.

Used to discover a blog's feed from a submitted post URL and as a fallback when the
feed does not carry the entry. Standard library only (``html.parser``); never raises
for bad input: garbage in, an empty ``PageInfo`` out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

from .model import PageInfo, utc_datetime
from .sanitize import normalize_text
from .textutil import decode_html
from .urls import safe_link

log = logging.getLogger(__name__)

FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
)
MAX_TITLE = 300
MAX_DESCRIPTION = 1000
MAX_NAME = 200
# Most pages keep their metadata in <head>, and reading stops at <body> when the head had a
# title and a description. Some put them far into the body (a large video site's channel pages:
# about 400 KB in); then reading goes on, for what is missing only, up to this much text. The
# cap bounds CPU, not memory (the fetcher's CARNIVAL_MAX_BYTES, 10 MiB, bounds that):
# html.parser reads dense markup at roughly 3 MB/s, so 2 Mi characters cost well under a
# second at worst, five times the depth real pages have been seen to need.
MAX_PAGE_CHARS = 2 * 1024 * 1024
_CHUNK = 16 * 1024  # text handed to the parser at a time; reading stops between handlers

TITLE_KEYS = ("og:title", "twitter:title")
DESCRIPTION_KEYS = ("og:description", "description")
# HTML Standard, 4.2.4 and 4.6.7: a <link> belongs in <body> only when every rel keyword is
# "body-ok" (dns-prefetch, modulepreload, pingback, preconnect, prefetch, preload, stylesheet).
# "alternate" and "canonical" are not, and feed autodiscovery looks in <head>: links in the
# body (often user-supplied, in comments) are not read as feeds or as the canonical URL.
# <base> is taken from <head> only, for the same reason.
# Foreign content: a <title> inside inline <svg> or <math> is not the document's title.
FOREIGN = frozenset({"svg", "math"})


@dataclass
class PageStats:
    """How much of a page was read: for tests and benchmarks (``parse_page(stats=...)``)."""

    chars_read: int = 0  # characters handed to the HTML parser
    read_past_head: bool = False  # the head lacked a title or description: read on for them


class _Enough(Exception):
    """Raised from a handler once everything wanted is known: stops the parser mid-chunk."""


class _PageParser(HTMLParser):
    """Collects what a page says about itself, as a browser would find it.

    In ``<head>``: meta, link, base and the first ``<title>``. After ``<head>``, only if the
    head had no title or no description, and only for what is missing: meta tags and the
    first ``<title>`` of the document (a browser's ``document.title``, HTML Standard 3.1.3),
    until both are known. og:title (or twitter:title) wins over ``<title>`` there as in the
    head, so after the head a ``<title>`` alone does not end the reading; it is the fallback.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: list[tuple[str, str, str]] = []  # (rel tokens, type, href)
        self.base_href: str | None = None
        self.title_parts: list[str] = []
        self.in_title = False
        self.title_done = False
        self.in_head = True
        self.read_on = False  # reading past the head for what it lacked
        self.head_title = False  # the head had a title of some kind: nothing after replaces it
        self.foreign = 0  # depth inside <svg>/<math>

    # -- what is known ------------------------------------------------------------------
    def _has(self, keys: tuple[str, ...]) -> bool:
        return any(self.meta.get(key, "").strip() for key in keys)

    def has_title(self) -> bool:
        return self._has(TITLE_KEYS) or bool("".join(self.title_parts).strip())

    def complete(self) -> bool:
        """A description, and the head's title or an og:title/twitter:title from anywhere."""
        return self._has(DESCRIPTION_KEYS) and (self.head_title or self._has(TITLE_KEYS))

    def _head_ends(self) -> None:
        if not self.in_head:
            return
        self.in_head = False
        self.in_title = False
        self.title_done = self.title_done or bool(self.title_parts)
        self.head_title = self.has_title()
        if self.complete():
            raise _Enough
        self.read_on = True

    def _wanted(self, key: str) -> bool:
        """After the head, a meta key is taken only for a field still missing."""
        if key in TITLE_KEYS:
            return not (self.head_title or self._has(TITLE_KEYS))
        if key in DESCRIPTION_KEYS:
            return not self._has(DESCRIPTION_KEYS)
        return True

    # -- html.parser ----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._head_ends()
            return
        if tag in FOREIGN:
            self.foreign += 1
            return
        attrs_d = {name.lower(): (value or "") for name, value in attrs}
        if tag == "meta":
            key = (attrs_d.get("property") or attrs_d.get("name") or "").strip().lower()
            content = attrs_d.get("content")
            if not key or content is None or key in self.meta:
                return
            if self.in_head:
                self.meta[key] = content
            elif self._wanted(key):
                self.meta[key] = content
                if self.complete():
                    raise _Enough
        elif tag == "title":
            if not (self.title_done or self.foreign or self.head_title):
                self.in_title = True
        elif not self.in_head:
            return
        elif tag == "link":
            href = attrs_d.get("href", "").strip()
            if href:
                rel = attrs_d.get("rel", "").lower()
                ctype = attrs_d.get("type", "").split(";")[0].strip().lower()
                self.links.append((rel, ctype, href))
        elif tag == "base" and self.base_href is None and attrs_d.get("href"):
            self.base_href = attrs_d["href"].strip()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FOREIGN:
            return  # <svg/>: nothing inside
        self.handle_starttag(tag, attrs)
        if tag == "title":
            self.in_title = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.title_done = True
        elif tag in FOREIGN and self.foreign:
            self.foreign -= 1
        elif tag == "head":
            self._head_ends()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)


def parse_page(
    body: bytes, headers: Mapping[str, str], url: str, *, stats: PageStats | None = None
) -> PageInfo:
    """Read title, description, site name, author, date, canonical URL and feed links
    from a post's HTML page. Links are absolute http(s) (resolved against ``<base>`` or
    ``url``) or left out. ``stats``, if given, is filled in with how much was read."""
    text = decode_html(body or b"", headers or {})[:MAX_PAGE_CHARS]
    parser = _PageParser()
    read = 0
    try:
        for start in range(0, len(text), _CHUNK):
            piece = text[start : start + _CHUNK]
            read += len(piece)
            parser.feed(piece)
        parser.close()
    except _Enough:
        pass
    except Exception:  # html.parser is lenient, but a build must never stop on a page
        log.debug("carnival: html.parser gave up on %s; keeping what it read", url)
    if stats is not None:
        stats.chars_read = read
        stats.read_past_head = parser.read_on

    meta = parser.meta
    base = safe_link(parser.base_href, url) if parser.base_href else None
    base = base or url

    def first(*keys: str) -> str | None:
        for key in keys:
            if meta.get(key, "").strip():
                return meta[key]
        return None

    title = normalize_text(first("og:title", "twitter:title"), MAX_TITLE)
    if not title:
        title = normalize_text("".join(parser.title_parts), MAX_TITLE)

    canonical = None
    feeds: list[str] = []
    for rel, ctype, href in parser.links:
        tokens = rel.split()
        if "canonical" in tokens and canonical is None:
            canonical = safe_link(href, base)
        if "alternate" in tokens and ctype in FEED_TYPES:
            link = safe_link(href, base)
            if link and link not in feeds:
                feeds.append(link)

    return PageInfo(
        url=url,
        title=title or None,
        description=normalize_text(first("og:description", "description"), MAX_DESCRIPTION) or None,
        site_name=normalize_text(first("og:site_name"), MAX_NAME) or None,
        author=normalize_text(first("author", "article:author"), MAX_NAME) or None,
        published=utc_datetime(first("article:published_time")),
        canonical=canonical,
        feed_links=tuple(feeds),
    )
