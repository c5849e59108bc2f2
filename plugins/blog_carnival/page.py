"""Read what a post's own HTML page says about itself: title, description, feeds.

Used to discover a blog's feed from a submitted post URL and as a fallback when the
feed does not carry the entry. Standard library only (``html.parser``); never raises
for bad input: garbage in, an empty ``PageInfo`` out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
# Metadata lives in <head>; parsing stops at <body>, and never reads past this much text.
MAX_PAGE_CHARS = 2 * 1024 * 1024
_CHUNK = 64 * 1024


class _HeadParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: list[tuple[str, str, str]] = []  # (rel tokens, type, href)
        self.base_href: str | None = None
        self.title_parts: list[str] = []
        self.in_title = False
        self.title_done = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "body":
            self.done = True
            return
        attrs_d = {name.lower(): (value or "") for name, value in attrs}
        if tag == "meta":
            key = (attrs_d.get("property") or attrs_d.get("name") or "").strip().lower()
            content = attrs_d.get("content")
            if key and content is not None and key not in self.meta:
                self.meta[key] = content
        elif tag == "link":
            href = attrs_d.get("href", "").strip()
            if href:
                rel = attrs_d.get("rel", "").lower()
                ctype = attrs_d.get("type", "").split(";")[0].strip().lower()
                self.links.append((rel, ctype, href))
        elif tag == "base" and self.base_href is None and attrs_d.get("href"):
            self.base_href = attrs_d["href"].strip()
        elif tag == "title" and not self.title_done:
            self.in_title = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "title":
            self.in_title = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.title_done = True
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)


def parse_page(body: bytes, headers: Mapping[str, str], url: str) -> PageInfo:
    """Read title, description, site name, author, date, canonical URL and feed links
    from a post's HTML page. Links are absolute http(s) (resolved against ``<base>`` or
    ``url``) or left out."""
    text = decode_html(body or b"", headers or {})[:MAX_PAGE_CHARS]
    parser = _HeadParser()
    try:
        for start in range(0, len(text), _CHUNK):
            parser.feed(text[start : start + _CHUNK])
            if parser.done:
                break
        parser.close()
    except Exception:  # html.parser is lenient, but a build must never stop on a page
        log.debug("carnival: html.parser gave up on %s; keeping what it read", url)

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
