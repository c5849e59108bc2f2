"""Bytes and response headers in, typed entries out: the only module that imports feedparser.

feedparser's dicts never leave this module. Missing ids, missing or impossible dates,
HTML in titles, relative links and duplicate entries are settled here, once, so later
stages see frozen ``FeedEntry`` values. Bad input never raises: bytes that are not a
feed come back as a ``ParseFailure`` with a plain reason, and problems that could be
worked around are listed in ``ParsedFeed.warnings``.

Speed: feedparser's own sanitizer and relative-URI rewriting are off (a build parses
thousands of entries); ``sanitize.clean_html`` cleans only the entries that get shown.
A few of feedparser's helpers are replaced below by quicker ones that give the same answers
(its URL joins remembered, its dict lookups and content-parameter copies), each tested
against feedparser's own.

Safety: feedparser never fetches external entities (expat's external general entities
are off), but it only strips ``<!ENTITY`` declarations that sit before the first
``<tag`` in the document, so an entity whose value contains markup hides the rest of the
internal subset from it, and expat then expands a "billion laughs" payload for seconds
before its amplification limit stops it. ``_defuse_doctype`` therefore removes any
DOCTYPE that has an internal subset before feedparser sees the bytes.
"""

from __future__ import annotations

import copy
import functools
import html
import io
import json
import logging
import re
import xml.sax
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from .model import FeedEntry, ParsedFeed, ParseFailure, utc_datetime
from .sanitize import excerpt, normalize_text, plain_text
from .textutil import BOMS, bom_codec, wide_codec
from .trim import trim_items
from .urls import safe_link

log = logging.getLogger(__name__)

# feedparser asks xml.sax for the libxml2 driver first on every parse; it is not installed, so
# each parse paid a failed import (a search of sys.path, under the import lock that every
# thread shares). Expat, Python's own, is what it then uses anyway: ask for it alone.
feedparser.api.PREFERRED_XML_PARSERS = []


def _remembered(join: Any) -> Any:
    """``join`` with its answers remembered: feedparser joins the document's base URL with
    itself on every start tag (a quarter of its time on a blog's feed). Its URL functions are
    pure functions of their string arguments, so a remembered answer is the same answer."""
    cached = functools.lru_cache(maxsize=4096)(join)

    @functools.wraps(join)
    def remembered(*args: Any) -> Any:
        try:
            return cached(*args)
        except TypeError:  # an unhashable argument: no memory, the same answer
            return join(*args)

    return remembered


for _module in (feedparser.mixin, feedparser.namespaces._base):
    for _name in ("make_safe_absolute_uri", "_urljoin"):
        if hasattr(_module, _name):
            setattr(_module, _name, _remembered(getattr(_module, _name)))


# feedparser's FeedParserDict answers every ``get`` and ``in`` through its ``__getitem__``,
# which first compares the key with five names it treats specially and then looks it up in
# ``keymap``: about 150 lookups a feed, an eighth of feedparser's time. For any other key that
# is a plain dict lookup, so ``get`` and ``in`` take it directly; the special and mapped keys
# (and so the deprecation warning of feedparser's issue 310) still go through its own code.
_SPECIAL_KEYS = frozenset(
    {"category", "enclosures", "license", "updated", "updated_parsed"}
) | frozenset(feedparser.FeedParserDict.keymap)
_feedparser_contains = feedparser.FeedParserDict.__contains__


def _plain_get(self: dict, key: Any, default: Any = None) -> Any:
    if key in _SPECIAL_KEYS:
        try:
            return self[key]
        except KeyError:
            return default
    return dict.get(self, key, default)


def _plain_contains(self: dict, key: Any) -> bool:
    if key in _SPECIAL_KEYS:
        return _feedparser_contains(self, key)
    return dict.__contains__(self, key)


feedparser.FeedParserDict.get = _plain_get
feedparser.FeedParserDict.__contains__ = _plain_contains

_ATOMS = (str, int, bool, type(None))


class _Copying:
    """``copy`` as feedparser's mixin uses it: ``deepcopy`` of its content parameters (a
    FeedParserDict of a few strings) on every text element, through the general reduce
    protocol. A dict of immutable values is deep-copied by a shallow copy of it."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if type(value) is feedparser.FeedParserDict and all(
            type(v) in _ATOMS for v in dict.values(value)
        ):
            copied = feedparser.FeedParserDict()
            dict.update(copied, value)
            return copied
        return copy.deepcopy(value, memo)


feedparser.mixin.copy = _Copying

MAX_TITLE = 300
MAX_NAME = 200
MAX_TAG = 100
MAX_ID = 2000
MAX_REASON = 160
UNTITLED = "Untitled"
CACHE_FORMAT = 1
MAX_ITEMS = 1000  # items read per feed; a blog's feed carries tens, a hostile one 100,000

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_HTML_START = re.compile(
    r"\A(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]",
    re.IGNORECASE | re.DOTALL,
)
_TAG_LIKE = re.compile(r"<(?:[A-Za-z][^<>]*|/[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)
_JSONFEED_VERSION = re.compile(r"\Ahttps?://jsonfeed\.org/version/1(?:\.\d+)?/?\Z")
# --- entry point -------------------------------------------------------------------------


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    tags: frozenset[str] | None = None,
    max_items: int | None = MAX_ITEMS,
) -> ParsedFeed | ParseFailure:
    """Parse RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed 1.x bytes fetched from ``url``.

    ``headers`` are the HTTP response headers (their Content-Type charset matters for
    encoding detection). Returns a ``ParsedFeed`` (possibly with ``warnings``) or a
    ``ParseFailure`` whose reason says why the bytes are not a usable feed.

    ``max_items`` caps the items read (the rest are named in a warning). ``tags``, when
    given, lets items that cannot carry any of those tags be skipped unparsed (see trim).
    """
    headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("parse_feed needs the fetched bytes, not a str (feedparser would open it)")
    body = bytes(body)
    if not body.removeprefix(b"\xef\xbb\xbf").strip():
        return ParseFailure(url, "empty body")

    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    head = _head_text(body)
    if head.startswith(("{", "[")) or (media_type in _JSON_TYPES and not head.startswith("<")):
        return _parse_json_feed(body, url, max_items)
    if _HTML_START.match(head):
        return ParseFailure(url, "not a feed (HTML page)")

    body, defused = _defuse_doctype(body)
    trimmed = trim_items(body, tags=tags, max_items=max_items)
    body = trimmed.body
    fp_headers = {**headers, "content-location": url}
    bom = wide_codec(body) if bom_codec(body) else None
    if bom and "charset=" not in fp_headers.get("content-type", "").lower():
        # feedparser lets an application/*+xml type (or none) default to UTF-8 before it
        # looks at a UTF-16/32 BOM; a BOM settles the encoding, so name it.
        fp_headers["content-type"] = f"{media_type or 'application/xml'}; charset={bom}"
    try:
        result = feedparser.parse(
            # a file object: handed bytes, feedparser first tries them as a FILE NAME (a
            # failed open per parse, and a feed whose body names a local file would be read)
            io.BytesIO(body),
            response_headers=fp_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser never raises by design; a bad feed must not stop a build
        log.exception("carnival: feedparser failed on %s", url)
        return ParseFailure(url, f"not a feed: parser error ({type(exc).__name__})")

    warnings: list[str] = []
    if trimmed.capped:
        warnings.append(
            f"read {max_items} of {trimmed.total} items (the rest are past the limit of {max_items})"
        )
    if defused:
        warnings.append(
            "removed a DOCTYPE with an internal subset: entity declarations are never expanded"
        )
    return _from_feedparser(result, url, media_type, warnings)


# --- XML ---------------------------------------------------------------------------------


def _head_text(body: bytes, size: int = 1024) -> str:
    """The start of the document as text, BOM and leading whitespace removed, good
    enough to sniff JSON and HTML (latin-1 keeps ASCII markup as is)."""
    codec = wide_codec(body)
    text = body[: size * 4].decode(codec, "replace") if codec else body[:size].decode("latin-1")
    return text.lstrip("\ufeff\xef\xbb\xbf \t\r\n")


def _defuse_doctype(body: bytes) -> tuple[bytes, bool]:
    """Remove a DOCTYPE that has an internal subset (``<!DOCTYPE x [ ... ]>``).

    Entity declarations live only in the internal subset (external DTDs are never
    loaded), so with it gone nothing can expand: references to undeclared entities make
    the strict parser fail and feedparser's lenient parser keeps them as literal text.
    A DOCTYPE without a subset (RSS 0.91's Netscape DTD) is left alone.
    """
    codec = wide_codec(body)
    if codec:
        bom = next((b for b, c in BOMS if c == codec and body.startswith(b)), b"")
        text = body[len(bom) :].decode(codec, "replace")
    elif _DOCTYPE_BYTES.search(body) is None:
        return body, False  # the common case, decided without copying the body
    else:
        bom, text = b"", body.decode("latin-1")  # one char per byte: indices match
    span = _doctype_subset_span(text)
    if span is None:
        return body, False
    start, end = span
    if codec:
        return bom + (text[:start] + text[end:]).encode(codec), True
    return body[:start] + body[end:], True


_DOCTYPE_BYTES = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_PROLOG_SKIP = re.compile(r"[\s\ufeff\xef\xbb\xbf]*")
_DOCTYPE_HEAD = re.compile(r"[^\"'\[>]*")
_SUBSET_TEXT = re.compile(r"[^\"'\]<]*")


def _doctype_subset_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the DOCTYPE declaration if it has an internal subset, else None.

    Scans the prolog only (XML declaration, processing instructions, comments, stray
    text) and skips quoted literals, comments and PIs inside the subset, so markup in an
    entity value cannot end the scan early. Each step jumps with ``find`` or a regex:
    linear in the input, whatever it holds.
    """
    n = len(text)
    i = 0
    while i < n:
        i = _PROLOG_SKIP.match(text, i).end()
        if text.startswith("<?", i):
            j = text.find("?>", i + 2)
            i = n if j < 0 else j + 2
        elif text.startswith("<!--", i):
            j = text.find("-->", i + 4)
            i = n if j < 0 else j + 3
        elif text[i : i + 9].upper() == "<!DOCTYPE":
            break
        elif text.startswith("<", i):
            return None  # the root element: no DOCTYPE
        else:
            j = text.find("<", i)  # junk before the prolog; expat will reject it anyway
            if j < 0:
                return None
            i = j
    else:
        return None

    start = i
    i += 9
    while True:  # name and external id, up to "[" or ">"
        i = _DOCTYPE_HEAD.match(text, i).end()
        if i >= n:
            return None
        if text[i] in "\"'":
            j = text.find(text[i], i + 1)
            if j < 0:
                return None
            i = j + 1
        elif text[i] == ">":
            return None  # no internal subset
        else:  # "["
            i += 1
            break
    while i < n:  # the internal subset, up to "]"
        i = _SUBSET_TEXT.match(text, i).end()
        if i >= n:
            break
        ch = text[i]
        if ch in "\"'":
            j = text.find(ch, i + 1)
            i = n if j < 0 else j + 1
        elif text.startswith("<!--", i):
            j = text.find("-->", i + 4)
            i = n if j < 0 else j + 3
        elif text.startswith("<?", i):
            j = text.find("?>", i + 2)
            i = n if j < 0 else j + 2
        elif ch == "<":
            i += 1
        else:  # "]"
            j = text.find(">", i + 1)
            return start, n if j < 0 else j + 1
    return start, n  # never closed: everything after it was the subset


def _short(text: str, limit: int = MAX_REASON) -> str:
    return normalize_text(text, limit)


def _bozo_message(exc: BaseException) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return _short(f"{exc.getMessage()} (line {exc.getLineNumber()})")
    return _short(str(exc) or type(exc).__name__)


def _from_feedparser(
    result: Mapping[str, Any], url: str, media_type: str, warnings: list[str]
) -> ParsedFeed | ParseFailure:
    feed = dict.get(result, "feed") or {}
    raw_entries = dict.get(result, "entries") or []
    version = dict.get(result, "version") or ""
    exc = dict.get(result, "bozo_exception") if dict.get(result, "bozo") else None
    malformed = exc is not None and not isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)
    atom = version.startswith("atom")
    title = _detail_text(feed, "title", atom) or None

    if not raw_entries and not version:
        if media_type in _HTML_TYPES:
            return ParseFailure(url, "not a feed (HTML page)")
        if malformed:
            return ParseFailure(url, f"not a feed: {_bozo_message(exc)}")
        return ParseFailure(url, "not a feed: no RSS, Atom or JSON Feed found")
    if not raw_entries and not title and malformed:
        return ParseFailure(url, f"not a feed: {_bozo_message(exc)}")

    if malformed:
        warnings.append(f"recovered from malformed XML: {_bozo_message(exc)}")
    elif isinstance(
        exc, feedparser.CharacterEncodingOverride | feedparser.CharacterEncodingUnknown
    ):
        warnings.append(f"encoding: {_bozo_message(exc)}")

    feed_base = safe_link(_detail(feed, "title_detail").get("base"), url) or url
    feed_author = _authors(feed) if atom else None  # Atom entries inherit the feed's author
    entries = [_entry(raw, url, feed_base, feed_author, atom) for raw in raw_entries]
    parsed = ParsedFeed(
        url=url,
        title=title,
        link=safe_link(dict.get(feed, "link"), feed_base),
        entries=(),
        warnings=(),
    )
    return _finish(parsed, entries, warnings)


def _detail(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = dict.get(obj, key)
    return value if isinstance(value, Mapping) else {}


def _detail_text(obj: Mapping[str, Any], key: str, atom: bool, max_chars: int = MAX_TITLE) -> str:
    """A feedparser text construct as plain text, whether it was text or HTML.

    Atom says which it is. RSS does not, and feedparser's guess calls a title "text"
    when it holds tags it would not allow (``<script>``), so an RSS title with anything
    tag-shaped in it is read as HTML: "Salary < respect" keeps its "<".
    """
    value = dict.get(obj, key)
    if not isinstance(value, str):
        return ""
    ctype = str(_detail(obj, f"{key}_detail").get("type") or "text/plain").lower()
    if ctype in _HTML_TYPES or (not atom and _TAG_LIKE.search(value)):
        return plain_text(value, max_chars)
    return normalize_text(value, max_chars)


def _authors(obj: Mapping[str, Any]) -> str | None:
    """Author names, joined; an e-mail address is not a name and is left out.

    feedparser splits RSS ``<author>`` strings with an e-mail pattern that breaks on long
    top-level domains ("ed@blog.example" gives the name "ple"), so a raw author string
    with an "@" in it is read here instead of through its ``authors`` list.
    """
    raw = dict.get(obj, "author")
    if isinstance(raw, str) and "@" in raw:
        name = _name_from_address(raw)
        return normalize_text(name, MAX_NAME) or None
    names: list[str] = []
    for author in dict.get(obj, "authors") or ():
        if isinstance(author, Mapping):
            name = _clean_name(author.get("name"))
            if name and name not in names:
                names.append(name)
    if not names:
        name = _clean_name(raw)
        if name:
            names.append(name)
    return normalize_text(", ".join(names), MAX_NAME) or None


_ADDRESS_THEN_NAME = re.compile(r"\s*\S+@\S+\s*\((.+)\)\s*", re.DOTALL)  # ed@x.example (Ed)
_NAME_THEN_ADDRESS = re.compile(r"\s*(.+?)\s*[<(]\s*\S+@\S+\s*[>)]\s*", re.DOTALL)  # Ed <ed@x>
_ADDRESS = re.compile(r"\S+@\S+")


def _name_from_address(raw: str) -> str | None:
    text = plain_text(raw, MAX_NAME * 2)
    match = _ADDRESS_THEN_NAME.fullmatch(text) or _NAME_THEN_ADDRESS.fullmatch(text)
    name = match.group(1) if match else _ADDRESS.sub(" ", text)
    return _clean_name(name.strip(" ()<>\"'"))


def _clean_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = plain_text(value, MAX_NAME)
    if not name or _ADDRESS.search(name):
        return None
    return name


def _datetime_from_struct(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` (a UTC struct_time) as an aware datetime, or None."""
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(x) for x in tuple(value)[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _tags(values: Iterable[Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for value in values:
        if isinstance(value, Mapping):
            candidates = (value.get("term"), value.get("label"))
        else:
            candidates = (value,)
        for candidate in candidates:
            if isinstance(candidate, str):
                tag = plain_text(candidate, MAX_TAG)
                if tag and tag not in tags:
                    tags.append(tag)
    return tuple(tags)


def _content(raw: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The first content value (text/html preferred) and its base URL."""
    values = [c for c in dict.get(raw, "content") or () if isinstance(c, Mapping)]
    if not values:
        return None, None
    chosen = next(
        (c for c in values if c.get("type") in ("text/html", "application/xhtml+xml")), values[0]
    )
    value = chosen.get("value")
    if not isinstance(value, str) or not value.strip():
        return None, chosen.get("base")
    if chosen.get("type") == "text/plain":
        value = _text_to_html(value)
    return value, chosen.get("base")


def _text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _entry(
    raw: Mapping[str, Any], url: str, feed_base: str, feed_author: str | None, atom: bool
) -> tuple[FeedEntry, bool]:
    """Map one feedparser entry; the flag says whether it had a title of its own.

    ``base`` is the xml:base in force for the entry's content when the feed set one;
    otherwise the entry's own link (the page the content was written for, which is
    right when a feed is served from another host, as proxied feeds are), else the feed
    URL.
    """
    content, content_base = _content(raw)
    summary = dict.get(raw, "summary")
    summary = summary if isinstance(summary, str) and summary.strip() else None
    summary_detail = _detail(raw, "summary_detail")
    if summary and summary_detail.get("type") == "text/plain":
        summary = _text_to_html(summary)
    xml_base = safe_link(
        content_base or summary_detail.get("base") or _detail(raw, "title_detail").get("base")
    )
    link = safe_link(dict.get(raw, "link"), xml_base or feed_base)
    base = xml_base if xml_base and xml_base != url else (link or feed_base)
    raw_id = dict.get(raw, "id")
    entry_id = normalize_text(raw_id, MAX_ID) if isinstance(raw_id, str) else ""
    title = _detail_text(raw, "title", atom)
    has_title = bool(title)
    if not title:
        title = excerpt(summary or content, 10, max_chars=80) or UNTITLED
    entry = FeedEntry(
        link=link,
        id=entry_id or link,
        title=title,
        author=_authors(raw) or feed_author,
        published=_datetime_from_struct(dict.get(raw, "published_parsed")),
        updated=_datetime_from_struct(dict.get(raw, "updated_parsed")),
        tags=_tags(dict.get(raw, "tags") or ()),
        summary=summary,
        content=content,
        base=base,
    )
    return entry, has_title


def _finish(
    parsed: ParsedFeed, entries: list[tuple[FeedEntry, bool]], warnings: list[str]
) -> ParsedFeed:
    """Drop entries that cannot be identified and repeated ids; say how many and why."""
    kept: list[FeedEntry] = []
    seen: set[str] = set()
    anonymous = 0
    duplicates: list[str] = []
    for entry, has_title in entries:
        if not entry.link and not entry.id and not has_title:
            anonymous += 1
            continue
        if entry.id is not None:
            if entry.id in seen:
                duplicates.append(entry.id)
                continue
            seen.add(entry.id)
        kept.append(entry)
    if anonymous:
        warnings.append(
            f"dropped {_count(anonymous, 'entry', 'entries')} with no link, id or title"
        )
    if duplicates:
        warnings.append(
            f"dropped {_count(len(duplicates), 'entry', 'entries')} repeating an earlier id "
            f"(first: {_short(duplicates[0], 80)})"
        )
    result = ParsedFeed(
        url=parsed.url,
        title=parsed.title,
        link=parsed.link,
        entries=tuple(kept),
        warnings=tuple(warnings),
    )
    log.debug("carnival: parsed %s: %d entries, %d warnings", parsed.url, len(kept), len(warnings))
    return result


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# --- JSON Feed ---------------------------------------------------------------------------


def _json_str(value: Any) -> str | None:
    """A JSON string field, or None for anything else (numbers, objects, blanks)."""
    if isinstance(value, str) and value.strip():
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    return None


def _json_date(value: Any) -> datetime | None:
    return utc_datetime(_json_str(value))


def _json_authors(obj: Mapping[str, Any]) -> str | None:
    authors = obj.get("authors")
    if not isinstance(authors, list):
        authors = [obj.get("author")]
    names: list[str] = []
    for author in authors:
        if isinstance(author, Mapping):
            name = _clean_name(_json_str(author.get("name")))
            if name and name not in names:
                names.append(name)
    return normalize_text(", ".join(names), MAX_NAME) or None


def _parse_json_feed(
    body: bytes, url: str, max_items: int | None = MAX_ITEMS
) -> ParsedFeed | ParseFailure:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return ParseFailure(url, f"not a feed: invalid JSON ({_short(str(exc), 80)})")
    if not isinstance(data, dict):
        return ParseFailure(url, "not a feed: JSON that is not an object")
    version = data.get("version")
    if not isinstance(version, str):
        return ParseFailure(url, "not a feed: JSON without a JSON Feed version")
    if not _JSONFEED_VERSION.match(version.strip()):
        return ParseFailure(
            url, f"not a feed: unsupported JSON Feed version {_short(version, 60)!r}"
        )

    warnings: list[str] = []
    items = data.get("items")
    if not isinstance(items, list):
        warnings.append("JSON Feed has no items list")
        items = []
    if max_items is not None and len(items) > max_items:
        warnings.append(
            f"read {max_items} of {len(items)} items (the rest are past the limit of {max_items})"
        )
        items = items[:max_items]
    feed_author = _json_authors(data)
    entries: list[tuple[FeedEntry, bool]] = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        entries.append(_json_entry(item, url, feed_author))
    if skipped:
        what = (
            "item that is not a JSON object" if skipped == 1 else "items that are not JSON objects"
        )
        warnings.append(f"skipped {skipped} {what}")

    parsed = ParsedFeed(
        url=url,
        title=normalize_text(_json_str(data.get("title")), MAX_TITLE) or None,
        link=safe_link(_json_str(data.get("home_page_url")), url),
        entries=(),
    )
    return _finish(parsed, entries, warnings)


def _json_entry(
    item: Mapping[str, Any], url: str, feed_author: str | None
) -> tuple[FeedEntry, bool]:
    link = safe_link(_json_str(item.get("url")), url) or safe_link(
        _json_str(item.get("external_url")), url
    )
    raw_id = item.get("id")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)  # the spec asks readers to coerce numeric ids
    entry_id = normalize_text(_json_str(raw_id), MAX_ID)
    content = _json_str(item.get("content_html"))
    if content is None and (text := _json_str(item.get("content_text"))):
        content = _text_to_html(text)
    summary_text = _json_str(item.get("summary"))
    summary = _text_to_html(summary_text) if summary_text else None
    title = normalize_text(_json_str(item.get("title")), MAX_TITLE)  # plain text by spec
    has_title = bool(title)
    if not title:
        title = excerpt(summary or content, 10, max_chars=80) or UNTITLED
    tags = item.get("tags")
    entry = FeedEntry(
        link=link,
        id=entry_id or link,
        title=title,
        author=_json_authors(item) or feed_author,
        published=_json_date(item.get("date_published")),
        updated=_json_date(item.get("date_modified")),
        tags=_tags(tags if isinstance(tags, list) else ()),
        summary=summary,
        content=content,
        base=link or url,
    )
    return entry, has_title


# --- cache round trip --------------------------------------------------------------------

# "text": an entry's plain text, when narrowing worked it out (absent from older records)
_ENTRY_FIELDS = ("link", "id", "title", "author", "summary", "content", "base", "text")


def feed_to_json(feed: ParsedFeed) -> dict:
    """A JSON-ready dict of ``feed`` (datetimes as ISO 8601 strings) for the parse cache."""
    return {
        "format": CACHE_FORMAT,
        "url": feed.url,
        "title": feed.title,
        "link": feed.link,
        "warnings": list(feed.warnings),
        "entries": [
            {
                **{name: getattr(entry, name) for name in _ENTRY_FIELDS},
                "published": entry.published.isoformat() if entry.published else None,
                "updated": entry.updated.isoformat() if entry.updated else None,
                "tags": list(entry.tags),
            }
            for entry in feed.entries
        ],
    }


def feed_from_json(data: dict) -> ParsedFeed:
    """Rebuild a ``ParsedFeed`` from ``feed_to_json`` output.

    Raises ``ValueError`` when the data is not in this module's cache format (another
    version, or damaged): the caller then parses the bytes again.
    """
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise ValueError(f"not a parse-cache record of format {CACHE_FORMAT}")
    try:
        entries = tuple(
            FeedEntry(
                **{name: _opt_str(raw.get(name)) for name in _ENTRY_FIELDS if name != "title"},
                title=str(raw["title"]),
                published=_cached_date(raw.get("published")),
                updated=_cached_date(raw.get("updated")),
                tags=tuple(str(tag) for tag in raw.get("tags") or ()),
            )
            for raw in data["entries"]
        )
        return ParsedFeed(
            url=str(data["url"]),
            title=_opt_str(data.get("title")),
            link=_opt_str(data.get("link")),
            entries=entries,
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"damaged parse-cache record: {exc!r}") from exc


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _cached_date(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("cached datetime without a timezone")
    return parsed
