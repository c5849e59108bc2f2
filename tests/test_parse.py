"""parse_feed, data-driven: one fixture per behaviour in tests/feeds/, expectations here.

Every file in tests/feeds/ must have a row in CASES (and every row a file), like
feedparser's own tests. A row gives the fixture's one-line description, the response
headers it is served with, and what must come out: a ParseFailure reason, or the feed's
title/link, the number of entries, selected entry fields, and the warnings (matched in
order by substring; no row, no warnings allowed).
"""

from __future__ import annotations

import json
import pyexpat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from blog_carnival import parse
from blog_carnival.model import FeedEntry, ParsedFeed, ParseFailure
from blog_carnival.parse import feed_from_json, feed_to_json, parse_feed
from blog_carnival.sanitize import clean_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FEEDS = Path(__file__).parent / "feeds"
URL = "https://feeds.example/feed.xml"
BIDI_AND_CONTROLS = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]} | {
    chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}
ABSENT = object()  # the feed or entry field must be None


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def has(*parts: str) -> Callable[[Any], bool]:
    return lambda value: value is not None and all(p in value for p in parts)


def lacks(*parts: str) -> Callable[[Any], bool]:
    return lambda value: value is None or not any(p.lower() in value.lower() for p in parts)


def no_controls(value: str) -> bool:
    return not (set(value) & BIDI_AND_CONTROLS) and "  " not in value


@dataclass(frozen=True)
class Case:
    description: str
    headers: Mapping[str, str] = field(default_factory=dict)
    failure: str | None = None  # ParseFailure.reason starts with this
    title: Any = None  # None: not checked; ABSENT: must be None
    link: Any = None
    count: int | None = None
    entries: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


RSS = {"content-type": "application/rss+xml"}
ATOM = {"content-type": "application/atom+xml"}

CASES: dict[str, Case] = {
    "rss20_basic.xml": Case(
        "RSS 2.0: guids, pubDate in several zones, dc:creator, e-mail authors, categories, "
        "content:encoded",
        RSS,
        title="Coffee Before Cover Letters",
        link="https://coffee.example/",
        count=3,
        entries={
            0: {
                "link": "https://coffee.example/2026/10/three-questions.html",
                "id": "https://coffee.example/2026/10/three-questions.html",
                "title": "Three questions to ask at an informational interview",
                "author": "Robin Ashdown",
                "published": d(2026, 10, 6, 7, 30),
                "tags": ("networking-carnival", "interviews"),
                "summary": "Short version: ask about the work, not about the job.",
                "content": has("<em>the work</em>", 'href="/2026/09/before.html"'),
                "base": "https://coffee.example/2026/10/three-questions.html",
            },
            1: {"id": "coffee-example-post-118", "published": d(2026, 10, 2, 17), "author": ABSENT},
            2: {"published": d(2026, 9, 28, 13), "author": "Robin Ashdown", "content": ABSENT},
        },
    ),
    "rss10_rdf.xml": Case(
        "RSS 1.0 (RDF) with dc:date as the only date, dc:creator and dc:subject",
        {"content-type": "application/rdf+xml"},
        title="Weak Ties Weekly",
        link="https://ties.example/",
        count=2,
        entries={
            0: {
                "link": "https://ties.example/posts/alumni-lists",
                "author": "Sam Okafor",
                "updated": d(2026, 10, 5, 13, 15),
                "published": ABSENT,
                "tags": ("alumni",),
            },
            1: {"updated": d(2026, 9, 30)},
        },
    ),
    "rss091.xml": Case(
        "RSS 0.91 with a Netscape DOCTYPE (external DTD, never fetched), no guids, no dates",
        title="Old School Referrals",
        link="http://oldschool.example/",
        count=2,
        entries={
            0: {"id": "http://oldschool.example/advice.html", "published": ABSENT},
            1: {"summary": ABSENT},
        },
    ),
    "atom10_basic.xml": Case(
        "Atom 1.0: alternate link, published+updated, category term and label, "
        "html and xhtml content, inherited and multiple authors",
        ATOM,
        title="Hallway Track",
        link="https://hallway.example/",
        count=2,
        entries={
            0: {
                "link": "https://hallway.example/2026/hallways",
                "id": "tag:hallway.example,2026:hallways",
                "author": "Jo Lindqvist",  # inherited from the feed
                "published": d(2026, 10, 6, 12),
                "updated": d(2026, 10, 7, 9, 15, 30),
                "tags": ("networking-carnival", "Networking Carnival", "events"),
                "summary": "<p>Skip one talk a day and stand by the coffee.</p>",
                "content": has("<strong>stand by the coffee</strong>"),
            },
            1: {
                "author": "Ari Mendez, Jo Lindqvist",
                "published": ABSENT,
                "content": "<p>Say the <em>company</em> name back.</p>",
            },
        },
    ),
    "atom_entry_without_date.xml": Case(
        "Atom entry with neither published nor updated: dates are None, not an error",
        ATOM,
        count=1,
        entries={0: {"published": ABSENT, "updated": ABSENT, "title": has("forgot to date")}},
    ),
    "rss_item_without_guid.xml": Case(
        "RSS items without guid (id falls back to the link) and without link (guid only)",
        RSS,
        count=2,
        entries={
            0: {"id": "https://noguid.example/write.html"},
            1: {"link": ABSENT, "id": "noguid-42"},
        },
    ),
    "atom_relative_links_xml_base.xml": Case(
        "xml:base on feed and entry: links resolve, content keeps relative URLs plus a base",
        ATOM,
        link="https://base.example/blog/",
        count=2,
        entries={
            0: {
                "link": "https://base.example/blog/posts/2026/referrals.html",
                "base": "https://base.example/blog/posts/2026/",
                "content": has('src="img/handshake.png"'),
            },
            1: {"link": "https://base.example/about/", "base": "https://base.example/blog/"},
        },
    ),
    "rss_html_in_title.xml": Case(
        "HTML in titles (CDATA and escaped) is stripped; a lone '<' in text is kept",
        RSS,
        title="Markup & Titles",
        entries={
            0: {"title": "Why weak ties & coffee win"},
            1: {"title": 'Bold moves: asking "who else?"'},
            2: {"title": "Salary < respect"},
        },
    ),
    "rss_latin1_declared.xml": Case(
        "ISO-8859-1 declared in the XML prolog",
        RSS,
        title="Café Réseau",
        entries={0: {"title": "Déjà vu at the career fair", "summary": has("Gespräche")}},
    ),
    "rss_cp1252_header_only.xml": Case(
        "windows-1252 bytes, charset only in the Content-Type header",
        {"content-type": "application/rss+xml; charset=windows-1252"},
        title="“Smart” Quotes Weekly",
        entries={0: {"title": "The “coffee chat” costs €4 – worth it"}},
    ),
    "rss_utf8_bom.xml": Case(
        "UTF-8 with a byte order mark",
        RSS,
        title="Ñandú Networking",
        entries={0: {"title": "Grüße from the 東京 meetup"}},
    ),
    "rss_utf16.xml": Case(
        "UTF-16 LE with BOM and encoding declaration",
        RSS,
        title="Sixteen Bits Apart",
        entries={0: {"title": "Networking in Zürich — ein Leitfaden"}},
    ),
    "jsonfeed_v1.json": Case(
        "JSON Feed 1.0: author object, content_html, external_url, numeric id, bad date",
        {"content-type": "application/json"},
        title="Lunch & Learn",
        link="https://lunch.example/",
        count=2,
        entries={
            0: {
                "link": "https://lunch.example/2026/10/ask-for-thirty-minutes",
                "title": "Ask for thirty minutes, not an hour",
                "author": "Priya Raman",
                "published": d(2026, 10, 4, 6, 30),
                "tags": ("networking-carnival", "asking"),
                "summary": "<p>Small asks get yes.</p>",
                "content": "<p>Small asks get <strong>yes</strong>.</p>",
            },
            1: {
                "link": "https://elsewhere.example/guest-post",
                "id": "17",
                "title": has("A guest post"),
                "updated": ABSENT,
                "content": has("<p>A guest post on another blog.</p>", "&lt;with&gt;"),
            },
        },
    ),
    "jsonfeed_v11.json": Case(
        "JSON Feed 1.1: authors list, relative url, content_text, junk items",
        {"content-type": "application/feed+json"},
        title="Referral Notebook",
        link="https://notebook.example/",
        count=2,
        entries={
            0: {
                "link": "https://feeds.example/2026/10/03/referrals/",
                "title": "Referrals are favours: treat them so",
                "author": "Dana Whitfield, Lee Ortiz",
                "updated": d(2026, 10, 3, 21, 45),
                "base": "https://feeds.example/2026/10/03/referrals/",
            },
            1: {"author": "Dana Whitfield", "published": d(2026, 9, 20)},
        },
        warnings=("skipped 1 item that is not a JSON object", "dropped 1 entry with no link"),
    ),
    "jsonfeed_wrong_version.json": Case(
        "JSON with an unknown JSON Feed version",
        {"content-type": "application/feed+json"},
        failure="not a feed: unsupported JSON Feed version",
    ),
    "jsonfeed_not_object.json": Case(
        "JSON whose top level is an array", failure="not a feed: JSON that is not an object"
    ),
    "jsonfeed_truncated.json": Case("JSON cut off mid-string", failure="not a feed: invalid JSON"),
    "html_page_not_a_feed.html": Case(
        "a blog post's HTML page where a feed was expected",
        {"content-type": "text/html; charset=utf-8"},
        failure="not a feed (HTML page)",
    ),
    "sitemap_not_a_feed.xml": Case(
        "well-formed XML that is not a feed", failure="not a feed: no RSS, Atom"
    ),
    "empty.xml": Case("zero bytes", failure="empty body"),
    "malformed_unclosed_tags.xml": Case(
        "unescaped '&', raw unclosed tags and no closing </rss>: recovered, with a warning",
        RSS,
        title="Hand-Rolled Feed",
        count=2,
        entries={0: {"title": "Coffee & conversation"}, 1: {"title": "Second item still counts"}},
        warnings=("recovered from malformed XML: not well-formed",),
    ),
    "billion_laughs.xml": Case(
        "nested entities behind a markup-valued entity: DOCTYPE removed, nothing expands",
        RSS,
        title=lambda t: len(t) < 100,
        count=1,
        entries={0: {"title": "Item &lol9;", "summary": lambda s: len(s) < 100}},
        warnings=("removed a DOCTYPE", "recovered from malformed XML: undefined entity"),
    ),
    "xxe_file.xml": Case(
        "SYSTEM file:///etc/passwd and a remote parameter entity: never read",
        RSS,
        title="External Entities &xxe;",
        count=1,
        entries={0: {"title": "Item &xxe;", "summary": lacks("root:", "/bin/")}},
        warnings=("removed a DOCTYPE", "recovered from malformed XML"),
    ),
    "doctype_html_entities.xml": Case(
        "a harmless subset declaring &nbsp; and &mdash;: removed too, and the names still read",
        RSS,
        title="Dash—board",
        entries={0: {"title": "Coffee chats — a field guide"}},
        warnings=("removed a DOCTYPE", "recovered from malformed XML: undefined entity"),
    ),
    "duplicate_ids.xml": Case(
        "two items share a guid: the first is kept",
        RSS,
        count=2,
        entries={0: {"title": "The original post"}, 1: {"id": "post-8"}},
        warnings=("dropped 1 entry repeating an earlier id (first: post-7)",),
    ),
    "future_and_bad_dates.xml": Case(
        "a 2098 date is kept; unparseable, impossible and zero dates become None",
        RSS,
        count=5,
        entries={
            0: {"published": d(2098, 1, 1, 12)},
            1: {"published": ABSENT, "updated": ABSENT},
            2: {"published": ABSENT},
            3: {"published": ABSENT},
            4: {"published": d(2026, 10, 2, 9)},  # no zone given: read as UTC
        },
    ),
    "long_title_control_chars.xml": Case(
        "C1 controls, bidi overrides and isolates, tabs, and a 440-character title",
        RSS,
        title=no_controls,
        entries={
            0: {"title": " ".join(["Networking"] * 27) + "…"},  # 297 chars, cut between words
            1: {"title": lambda t: no_controls(t) and t.startswith("evil.exe safe isolate")},
        },
    ),
    "xss_vectors.xml": Case(
        "script injection in every RSS field; links unsafe, titles plain, HTML left for clean_html",
        RSS,
        title="Hostile Feed",
        link=ABSENT,
        count=1,
        entries={
            0: {
                "link": ABSENT,
                "id": "xss-1",
                "title": "Clean title",
                "author": "Mallory",
                "tags": ("tag",),
            }
        },
    ),
    "xss_vectors_atom.xml": Case(
        "script injection in Atom: javascript: xml:base, type=html title, data: link, xhtml",
        ATOM,
        title="Hostile Atom",
        link=ABSENT,
        count=1,
        entries={0: {"link": ABSENT, "title": "Atom entry", "author": "Eve", "base": URL}},
    ),
    "tags_and_categories.xml": Case(
        "RSS categories with padding, a domain, duplicates and blanks, plus dc:subject",
        RSS,
        entries={0: {"tags": ("networking-carnival", "Job Search", "career")}, 1: {"tags": ()}},
    ),
    "atom_category_labels.xml": Case(
        "Atom categories: term and label both become tags, deduplicated, blanks dropped",
        ATOM,
        entries={0: {"tags": ("nc-2026", "Networking Carnival", "same", "Label Only")}},
    ),
    "rss_no_entries.xml": Case(
        "a valid feed with no items yet is a feed, not a failure",
        RSS,
        title="Brand New Blog",
        count=0,
    ),
    "entries_without_identity.xml": Case(
        "items without link, guid or title are dropped; a missing title is borrowed or 'Untitled'",
        RSS,
        count=2,
        entries={
            0: {"title": "A post with no title but a long enough summary…"},
            1: {"title": "Untitled", "id": "https://sparse.example/bare-link"},
        },
        warnings=("dropped 2 entries with no link, id or title",),
    ),
    "rss_served_as_text_html.xml": Case(
        "a real RSS feed served as text/html is still read",
        {"content-type": "text/html"},
        title="Served As HTML",
        count=3,
    ),
}


def _check(label: str, actual: Any, expected: Any) -> None:
    if expected is None:
        return
    if expected is ABSENT:
        assert actual is None, f"{label}: expected None, got {actual!r}"
    elif callable(expected):
        assert expected(actual), f"{label}: {actual!r} fails its check"
    else:
        assert actual == expected, f"{label}: {actual!r} != {expected!r}"


def load(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def test_every_fixture_has_a_case() -> None:
    files = {p.name for p in FEEDS.iterdir() if p.is_file()}
    assert files == set(CASES), (
        f"fixtures without a row: {sorted(files - set(CASES))}; "
        f"rows without a fixture: {sorted(set(CASES) - files)}"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture(name: str) -> None:
    case = CASES[name]
    result = parse_feed(load(name), case.headers, URL)
    if case.failure is not None:
        assert isinstance(result, ParseFailure), f"{case.description}: parsed, expected failure"
        assert result.url == URL
        assert result.reason.startswith(case.failure), result.reason
        return
    assert isinstance(result, ParsedFeed), f"{case.description}: {result}"
    assert result.url == URL
    _check("feed title", result.title, case.title)
    _check("feed link", result.link, case.link)
    if case.count is not None:
        assert len(result.entries) == case.count, [e.title for e in result.entries]
    for index, expected in case.entries.items():
        entry = result.entries[index]
        for name_, value in expected.items():
            _check(f"entries[{index}].{name_}", getattr(entry, name_), value)
    assert len(result.warnings) == len(case.warnings), result.warnings
    for warning, expected in zip(result.warnings, case.warnings, strict=True):
        assert expected in warning, (expected, warning)


PARSED = sorted(name for name, case in CASES.items() if case.failure is None)


@pytest.mark.parametrize("name", PARSED)
def test_invariants(name: str) -> None:
    """What every parsed feed promises, whatever the fixture."""
    result = parse_feed(load(name), CASES[name].headers, URL)
    assert isinstance(result, ParsedFeed)
    ids = [e.id for e in result.entries if e.id is not None]
    assert len(ids) == len(set(ids))
    for entry in result.entries:
        assert isinstance(entry, FeedEntry)
        assert entry.title and len(entry.title) <= parse.MAX_TITLE
        assert no_controls(entry.title)
        assert entry.link or entry.id
        for link in (entry.link, entry.base):
            assert link is None or link.startswith(("http://", "https://"))
        for value in (entry.published, entry.updated):
            assert value is None or value.utcoffset() is not None
        assert all(tag == tag.strip() and tag for tag in entry.tags)


@pytest.mark.parametrize("name", PARSED)
def test_cache_round_trip(name: str) -> None:
    result = parse_feed(load(name), CASES[name].headers, URL)
    assert isinstance(result, ParsedFeed)
    data = json.loads(json.dumps(feed_to_json(result)))
    assert feed_from_json(data) == result


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"format": 999, "url": URL, "entries": []},
        {"format": parse.CACHE_FORMAT, "url": URL},
        {"format": parse.CACHE_FORMAT, "url": URL, "entries": [{"title": "x", "link": 5}]},
        {
            "format": parse.CACHE_FORMAT,
            "url": URL,
            "entries": [{"title": "x", "published": "2026-01-01T00:00:00"}],
        },
        [],
    ],
)
def test_cache_rejects_foreign_data(data: Any) -> None:
    with pytest.raises(ValueError):
        feed_from_json(data)


def test_cleaned_xss_fixture_is_safe() -> None:
    for name in ("xss_vectors.xml", "xss_vectors_atom.xml"):
        result = parse_feed(load(name), {}, URL)
        assert isinstance(result, ParsedFeed)
        for entry in result.entries:
            for html in (entry.summary, entry.content):
                cleaned = clean_html(html, entry.base).lower()
                for bad in (
                    "<script",
                    "javascript",
                    "onerror",
                    "onload",
                    "onclick",
                    "<iframe",
                    "<svg",
                    "data:",
                ):
                    assert bad not in cleaned, (name, bad, cleaned)


# --- hostile XML: entity expansion and external entities --------------------------------


def _all_text(result: ParsedFeed | ParseFailure) -> str:
    return repr(result)


# Speed is shown by what feedparser is handed, not by a stopwatch: with no entity declared,
# there is nothing to expand. bench/hostile_bench.py times the billion laughs in a whole build.


@pytest.fixture
def handed_to_feedparser(monkeypatch) -> list[bytes]:
    """The bytes each real ``feedparser.parse`` call was given (a spy, not a stand-in)."""
    seen: list[bytes] = []
    real = parse.feedparser.parse

    def spy(data, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(data.getvalue())
        return real(data, *args, **kwargs)

    monkeypatch.setattr(parse.feedparser, "parse", spy)
    return seen


def _declares_entities(body: bytes) -> bool:
    text = body.decode("utf-16") if body.startswith((b"\xff\xfe", b"\xfe\xff")) else body.decode()
    return "<!ENTITY" in text.upper()


def test_billion_laughs_is_defused_and_small(handed_to_feedparser: list[bytes]) -> None:
    result = parse_feed(load("billion_laughs.xml"), RSS, URL)
    assert isinstance(result, ParsedFeed)
    assert "removed a DOCTYPE" in result.warnings[0]
    assert len(handed_to_feedparser) == 1 and not _declares_entities(handed_to_feedparser[0])
    assert len(_all_text(result)) < 5000


def test_billion_laughs_utf16_is_defused(handed_to_feedparser: list[bytes]) -> None:
    body = load("billion_laughs.xml").decode("utf-8").encode("utf-16")
    result = parse_feed(body, RSS, URL)
    assert isinstance(result, ParsedFeed)
    assert "removed a DOCTYPE" in result.warnings[0]
    assert len(handed_to_feedparser) == 1 and not _declares_entities(handed_to_feedparser[0])
    assert len(_all_text(result)) < 5000


def test_quadratic_blowup_is_defused(handed_to_feedparser: list[bytes]) -> None:
    """One big entity referenced many times: feedparser's own filter lets this one through."""
    big = "A" * 50_000
    refs = "&big;" * 2_000  # 100 MB if expanded
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "{big}">\n]>\n'
        f'<rss version="2.0"><channel><title>Q</title><item><title>t</title>'
        f"<link>https://q.example/1</link><description>{refs}</description></item></channel></rss>"
    ).encode()
    result = parse_feed(body, RSS, URL)
    assert isinstance(result, ParsedFeed)
    assert "removed a DOCTYPE" in result.warnings[0]
    assert len(handed_to_feedparser) == 1 and not _declares_entities(handed_to_feedparser[0])
    assert len(_all_text(result)) < 50_000


@pytest.mark.skipif(
    pyexpat.version_info < (2, 4, 0), reason="expat before 2.4 has no amplification limit"
)
def test_without_the_defence_expat_expands_until_its_limit(monkeypatch) -> None:
    """Why _defuse_doctype exists: without it, expat stops the bomb only at its amplification
    limit, after megabytes of work (bench/hostile_bench.py shows what that costs)."""
    monkeypatch.setattr(parse, "_defuse_doctype", lambda body: (body, False))
    result = parse_feed(load("billion_laughs.xml"), RSS, URL)
    assert isinstance(result, ParsedFeed)
    assert "amplification" in " ".join(result.warnings)


XXE_TEMPLATES = [
    # plain external entity
    '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{uri}">\n]>',
    # markup-valued entity first, so a regex stopping at the first tag misses the rest
    '<!DOCTYPE rss [\n<!ENTITY m "<b>x</b>">\n<!ENTITY xxe SYSTEM "{uri}">\n]>',
    # all on one line
    '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>',
    # parameter entity pulling the file into the DTD
    '<!DOCTYPE rss [<!ENTITY % p SYSTEM "{uri}"> %p; <!ENTITY xxe "x">]>',
    # a comment with a quote and a bracket inside the subset
    '<!DOCTYPE rss [<!-- don\'t ] stop --><!ENTITY xxe SYSTEM "{uri}">]>',
]


@pytest.mark.parametrize("template", XXE_TEMPLATES)
@pytest.mark.parametrize("defended", [True, False])
def test_external_entities_are_never_read(
    tmp_path, monkeypatch, template: str, defended: bool
) -> None:
    """A secret file named by SYSTEM must not show up, with or without our DOCTYPE removal
    (without it, this checks feedparser/expat: external general entities are off)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    if not defended:
        monkeypatch.setattr(parse, "_defuse_doctype", lambda body: (body, False))
    doctype = template.format(uri=secret.as_uri())
    body = (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>T &xxe;</title>'
        f"<item><title>I &xxe;</title><link>https://x.example/1</link>"
        f"<description>&xxe;</description></item></channel></rss>"
    ).encode()
    result = parse_feed(body, RSS, URL)
    assert "TOP-SECRET" not in _all_text(result)
    if defended:
        assert isinstance(result, ParsedFeed)
        assert "removed a DOCTYPE" in result.warnings[0]


def test_doctype_inside_content_is_left_alone() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
        b"<title>I</title><link>https://x.example/1</link>"
        b"<description><![CDATA[<!DOCTYPE html [ ]><p>x</p>]]></description>"
        b"</item></channel></rss>"
    )
    result = parse_feed(body, RSS, URL)
    assert isinstance(result, ParsedFeed)
    assert result.warnings == ()
    assert "<!DOCTYPE html [ ]>" in result.entries[0].summary


# --- other inputs --------------------------------------------------------------------------


def test_str_body_is_refused() -> None:
    with pytest.raises(TypeError):
        parse_feed("/etc/passwd", {}, URL)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"", b"   \n\t", b"\xef\xbb\xbf  \n"])
def test_empty_bodies(body: bytes) -> None:
    assert parse_feed(body, {}, URL) == ParseFailure(URL, "empty body")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<div>just a fragment</div>", {"Content-Type": "text/html; charset=utf-8"}),
        ("<!DOCTYPE html><html><body>wide</body></html>".encode("utf-16"), {}),
        (b"<!-- generated -->\n<HTML><HEAD></HEAD></HTML>", {}),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x">',
            {},
        ),
    ],
)
def test_html_pages(body: bytes, headers: dict[str, str]) -> None:
    assert parse_feed(body, headers, URL) == ParseFailure(URL, "not a feed (HTML page)")


def test_bozo_without_entries_or_title_is_a_failure() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><oops & </channel>'
    result = parse_feed(body, RSS, URL)
    assert isinstance(result, ParseFailure)
    assert result.reason.startswith("not a feed: ") and len(result.reason) < 200


def test_json_sniffed_without_content_type_and_with_bom() -> None:
    body = b"\xef\xbb\xbf \n" + load("jsonfeed_v11.json")
    result = parse_feed(body, {"Content-Type": "text/plain"}, URL)
    assert isinstance(result, ParsedFeed)
    assert result.title == "Referral Notebook"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"title": "no version"}', "not a feed: JSON without a JSON Feed version"),
        (b'{"version": 1.1}', "not a feed: JSON without a JSON Feed version"),
        (b"[" * 100_000, "not a feed: invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": "x"}', None),
    ],
)
def test_json_edge_cases(body: bytes, reason: str | None) -> None:
    result = parse_feed(body, {"content-type": "application/feed+json"}, URL)
    if reason is None:
        assert isinstance(result, ParsedFeed) and result.entries == ()
        assert result.warnings == ("JSON Feed has no items list",)
    else:
        assert isinstance(result, ParseFailure) and result.reason.startswith(reason)


def test_json_strings_with_lone_surrogates_are_repaired() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "title": "a\\ud800b", "items": [{"id": "1", "title": "x\\udfffy"}]}'
    result = parse_feed(body, {}, URL)
    assert isinstance(result, ParsedFeed)
    result.title.encode("utf-8")
    result.entries[0].title.encode("utf-8")


def test_header_names_are_case_insensitive() -> None:
    body = load("rss_cp1252_header_only.xml")
    result = parse_feed(body, {"Content-Type": "application/rss+xml; charset=windows-1252"}, URL)
    assert isinstance(result, ParsedFeed)
    assert result.entries[0].title == "The “coffee chat” costs €4 – worth it"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    result = parse_feed(body, {}, URL)
    assert isinstance(result, ParsedFeed | ParseFailure)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(PARSED),
    cut=st.floats(min_value=0, max_value=1),
    junk=st.binary(max_size=20),
)
def test_truncated_and_spliced_fixtures_never_raise(name: str, cut: float, junk: bytes) -> None:
    body = load(name)
    at = int(len(body) * cut)
    result = parse_feed(body[:at] + junk + body[at:], CASES[name].headers, URL)
    assert isinstance(result, ParsedFeed | ParseFailure)
    if isinstance(result, ParsedFeed):
        for entry in result.entries:
            assert entry.link is None or entry.link.startswith(("http://", "https://"))


def test_field_names_in_table_exist() -> None:
    names = {f.name for f in fields(FeedEntry)}
    for case in CASES.values():
        for expected in case.entries.values():
            assert set(expected) <= names, set(expected) - names


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/xml"])
def test_bom_without_encoding_declaration(codec: str, content_type: str | None) -> None:
    """feedparser alone reads these as UTF-8 when the type is application/*+xml."""
    text = "\ufeff" + load("rss_utf8_bom.xml").decode("utf-8-sig").replace(' encoding="utf-8"', "")
    headers = {"content-type": content_type} if content_type else {}
    result = parse_feed(text.encode(codec), headers, URL)
    assert isinstance(result, ParsedFeed)
    assert result.entries[0].title == "Grüße from the 東京 meetup"


def test_a_body_that_names_a_local_file_is_not_read(tmp_path: Path) -> None:
    """Handed bytes, feedparser tries them as a file name first: a feed whose whole body is
    the path of a feed on the build machine must not publish that file's entries."""
    local = tmp_path / "private.xml"
    local.write_bytes(load("rss20_basic.xml"))
    result = parse_feed(str(local).encode(), {"content-type": "application/rss+xml"}, URL)
    assert isinstance(result, ParseFailure)


def test_remembered_url_joins_keep_each_document_to_its_own_base() -> None:
    """feedparser's URL joins are remembered across parses: the same relative link in
    documents fetched from two places resolves against each one's own address, in turn."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>home/</link>'
        b"<item><title>I</title><link>post.html</link><guid>g</guid></item></channel></rss>"
    )
    for _ in range(2):
        for base in ("https://a.example/blog/feed.xml", "https://b.example/x/y/feed.xml"):
            result = parse_feed(body, {"content-type": "application/rss+xml"}, base)
            assert isinstance(result, ParsedFeed)
            assert result.link == base.rsplit("/", 1)[0] + "/home/"
            assert result.entries[0].link == base.rsplit("/", 1)[0] + "/post.html"


def _feedparser_get(d: dict, key: Any, default: Any = None) -> Any:
    """FeedParserDict.get as feedparser writes it: through ``__getitem__``."""
    try:
        return type(d).__getitem__(d, key)
    except KeyError:
        return default


def test_feedparser_dicts_answer_get_and_in_as_feedparser_would() -> None:
    """``get`` and ``in`` take a plain dict lookup for ordinary keys; the keys feedparser maps
    (``description`` to ``summary`` or ``subtitle``, ``guid`` to ``id``, ...) and the ones
    it computes (``category``, ``enclosures``, ``license``) still answer its way."""
    import feedparser

    entry = feedparser.FeedParserDict(
        summary="s",
        id="i",
        published="p",
        tags=[feedparser.FeedParserDict(term="t")],
        links=[
            feedparser.FeedParserDict(rel="enclosure", href="e.mp3"),
            feedparser.FeedParserDict(rel="license", href="l.html"),
        ],
        title=None,
    )
    keys = [*feedparser.FeedParserDict.keymap, "category", "enclosures", "license"]
    keys += ["summary", "title", "tags", "links", "absent", "updated_parsed", "subtitle", 0]
    for key in keys:
        assert entry.get(key, "none") == _feedparser_get(entry, key, "none"), key
        assert (key in entry) == (_feedparser_get(entry, key, ABSENT) is not ABSENT), key
    assert entry.get("description") == "s" and entry.get("guid") == "i"
    assert entry.get("category") == "t" and entry.get("license") == "l.html"
    assert "updated" not in entry  # feedparser's own rule for the issue 310 fallback
    with pytest.warns(DeprecationWarning):
        assert entry.get("updated") == "p"


def test_content_parameters_are_copied_not_shared() -> None:
    """feedparser copies its content parameters into each text element's ``*_detail``; the
    quick copy of a flat dict must still be a copy, and anything else a deep copy."""
    import feedparser

    copying = feedparser.mixin.copy
    flat = feedparser.FeedParserDict(type="text/html", language=None, base="https://a.example/")
    copied = copying.deepcopy(flat)
    assert copied == flat and copied is not flat and type(copied) is feedparser.FeedParserDict
    copied["value"] = "v"
    assert "value" not in flat
    nested = feedparser.FeedParserDict(type="text/html", list=["a"])
    deep = copying.deepcopy(nested)
    assert deep == nested and deep["list"] is not nested["list"]


def test_each_text_element_keeps_its_own_detail() -> None:
    """The title's and the summary's details are separate dicts, each with its own value."""
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
        b'<entry><title type="html">A &amp;lt;b&amp;gt;</title><id>x</id>'
        b'<link href="https://a.example/1"/><summary type="text">plain</summary>'
        b"<updated>2026-11-01T00:00:00Z</updated></entry></feed>"
    )
    result = parse_feed(body, {"content-type": "application/atom+xml"}, URL)
    assert isinstance(result, ParsedFeed)
    assert result.entries[0].title == "A <b>"  # read as HTML: its own detail said so
    assert result.entries[0].summary == "<p>plain</p>"
