"""parse_page: what a post's HTML page says about itself, from a table of small pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from blog_carnival import page as page_module
from blog_carnival.model import PageInfo
from blog_carnival.page import PageStats, parse_page
from blog_carnival.textutil import decode_html
from hypothesis import given, settings
from hypothesis import strategies as st

FEEDS = Path(__file__).parent / "feeds"
URL = "https://blog.example/2026/10/post.html"


def page(head: str, body: str = "<p>text</p>") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


CASES: list[tuple[str, bytes, dict[str, str], dict[str, Any]]] = [
    (
        "og:title wins over twitter:title and <title>",
        page(
            '<title>Site | Post</title><meta name="twitter:title" content="Tw">'
            '<meta property="og:title" content="OG title">'
        ),
        {},
        {"title": "OG title"},
    ),
    (
        "twitter:title wins over <title>",
        page('<title>Site | Post</title><meta name="twitter:title" content="Tw title">'),
        {},
        {"title": "Tw title"},
    ),
    (
        "<title> with entities and whitespace",
        page("<title>\n  Coffee &amp; Careers\n\t| Blog </title>"),
        {},
        {"title": "Coffee & Careers | Blog"},
    ),
    (
        "og:description wins over meta description",
        page(
            '<meta name="description" content="plain"><meta property="og:description" content="og">'
        ),
        {},
        {"description": "og"},
    ),
    (
        "meta description as fallback; name= used for og: keys too",
        page(
            '<meta name="description" content="plain desc"><meta name="og:site_name" content="S">'
        ),
        {},
        {"description": "plain desc", "site_name": "S"},
    ),
    (
        "author from meta author, else article:author",
        page('<meta property="article:author" content="https://blog.example/me">'),
        {},
        {"author": "https://blog.example/me"},
    ),
    (
        "published time with offset becomes UTC",
        page('<meta property="article:published_time" content="2026-10-08T07:30:00+02:00">'),
        {},
        {"published": datetime(2026, 10, 8, 5, 30, tzinfo=UTC)},
    ),
    (
        "published date without a zone is read as UTC",
        page('<meta property="article:published_time" content="2026-10-08">'),
        {},
        {"published": datetime(2026, 10, 8, tzinfo=UTC)},
    ),
    (
        "unparseable published time",
        page('<meta property="article:published_time" content="last Tuesday">'),
        {},
        {"published": None},
    ),
    (
        "canonical resolved against the page",
        page('<link rel="canonical" href="/2026/10/post/">'),
        {},
        {"canonical": "https://blog.example/2026/10/post/"},
    ),
    (
        "feed links: all four types, absolute, in page order, unsafe and other rels skipped",
        page(
            '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
            '<link rel="stylesheet" type="text/css" href="/s.css">'
            '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            '<link rel="alternate" type="application/rss+xml" href="https://feeds.example/rss">'
            '<link rel="alternate" type="application/feed+json" href="feed.json">'
            '<link rel="alternate" type="application/json" href="/feed.json?v=1">'
            '<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">'
            '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
        ),
        {},
        {
            "feed_links": (
                "https://blog.example/atom.xml",
                "https://feeds.example/rss",
                "https://blog.example/2026/10/feed.json",
                "https://blog.example/feed.json?v=1",
            )
        },
    ),
    (
        "rel and type are case-insensitive; type parameters ignored",
        page('<LINK REL="Alternate" TYPE="Application/RSS+XML; charset=utf-8" HREF="/f.xml">'),
        {},
        {"feed_links": ("https://blog.example/f.xml",)},
    ),
    (
        "<base href> is the base for relative links",
        page(
            '<base href="https://cdn.example/blog/"><link rel="alternate" type="application/rss+xml" href="rss.xml">'
        ),
        {},
        {"feed_links": ("https://cdn.example/blog/rss.xml",)},
    ),
    (
        "an og:title after <body> does not replace the head's <title>",
        page("<title>Head</title>", '<meta property="og:title" content="Body">'),
        {},
        {"title": "Head"},
    ),
    (
        "charset from the Content-Type header",
        "<title>Caf\xe9</title>".encode("latin-1"),
        {"Content-Type": "text/html; charset=ISO-8859-1"},
        {"title": "Café"},
    ),
    (
        "charset from <meta charset>",
        '<meta charset="windows-1252"><title>\x93quoted\x94</title>'.encode("latin-1"),
        {},
        {"title": "“quoted”"},
    ),
    (
        "charset from http-equiv",
        '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><title>\xf3\xc5\xd4\xd8</title>'.encode(
            "latin-1"
        ),
        {},
        {"title": "Сеть"},
    ),
    (
        "a bogus charset falls back to UTF-8 with replacement",
        b"<title>Z\xc3\xbcrich \xff</title>",
        {"content-type": "text/html; charset=no-such-charset"},
        {"title": "Zürich \ufffd"},
    ),
    (
        "a non-text codec name is not used",
        b"<title>plain</title>",
        {"content-type": "text/html; charset=base64"},
        {"title": "plain"},
    ),
    (
        "UTF-16 with BOM",
        "<title>Wide title</title>".encode("utf-16"),
        {},
        {"title": "Wide title"},
    ),
    (
        "control and bidi characters removed from text",
        page('<meta property="og:title" content="a\u202eb\x07c">'),
        {},
        {"title": "abc"},
    ),
    (
        "an empty page",
        b"",
        {},
        {"title": None, "description": None, "feed_links": (), "canonical": None},
    ),
]


@pytest.mark.parametrize(
    ("description", "body", "headers", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_parse_page(
    description: str, body: bytes, headers: dict[str, str], expected: dict[str, Any]
) -> None:
    info = parse_page(body, headers, URL)
    assert isinstance(info, PageInfo)
    assert info.url == URL
    for name, value in expected.items():
        assert getattr(info, name) == value, (description, name, getattr(info, name))


def test_the_html_fixture() -> None:
    """The page served where a feed was expected tells us where the feeds are."""
    body = (FEEDS / "html_page_not_a_feed.html").read_bytes()
    info = parse_page(
        body,
        {"content-type": "text/html; charset=utf-8"},
        "https://coffee.example/2026/10/last-job.html",
    )
    assert info == PageInfo(
        url="https://coffee.example/2026/10/last-job.html",
        title="How I found my last job over coffee",
        description="Forty coffees, three referrals & one offer.",
        site_name="Coffee Before Cover Letters",
        author="Robin Ashdown",
        published=datetime(2026, 10, 8, 5, 30, tzinfo=UTC),
        canonical="https://coffee.example/2026/10/last-job.html",
        feed_links=("https://coffee.example/feed.xml", "https://coffee.example/atom.xml"),
    )


def test_decode_prefers_bom_over_header() -> None:
    body = "\ufeffé".encode()
    assert decode_html(body, {"content-type": "text/html; charset=iso-8859-1"}) == "é"


def test_large_body_stops_at_body() -> None:
    body = page("<title>T</title>", "<p>" + "x" * 5_000_000 + "</p>")
    info = parse_page(body, {}, URL)
    assert info.title == "T"


# -- metadata where real sites put it ----------------------------------------------------------


def filler(size: int) -> str:
    """About ``size`` characters of the markup a big app page carries before its metadata:
    nested blocks, inline SVG icons (with their own <title>), scripts holding markup in
    strings, comments. Every <title> here is one a browser would not take as the page's."""
    block = (
        '<div class="row"><a href="/watch?v=abc" aria-label="Play">'
        '<svg viewBox="0 0 24 24"><title>Play icon</title><path d="M8 5v14l11-7z"/></svg>'
        "</a><span>Some words on a tile</span></div>\n"
        '<script>var t = "<title>Not this</title><meta property=og:title content=No>";</script>\n'
        "<!-- <title>Nor this</title> -->\n"
    )
    return block * (size // len(block) + 1)


def deep_page(*, head: str = "", before: int = 400_000, after: int = 300_000) -> tuple[bytes, int]:
    """A page whose title and OpenGraph tags sit ``before`` characters into its body.
    Returns the bytes and the character offset where the metadata starts."""
    start = f'<!DOCTYPE html><html><head><meta charset="utf-8">{head}</head><body>'
    start += filler(before)
    meta = (
        "<title>Field Notes on Asking for Introductions - Channel</title>"
        '<meta property="og:title" content="Field Notes on Asking for Introductions">'
        '<meta property="og:site_name" content="VideoSite">'  # met on the way: taken too
        '<meta property="og:description" content="Weekly videos on warm introductions.">'
        '<meta name="author" content="Not waited for">'  # title and description end the reading
        '<link rel="alternate" type="application/rss+xml" href="/feeds/channel.xml">'
    )
    rest = filler(after) + "</body></html>"
    return (start + meta + rest).encode(), len(start)


def test_title_and_opengraph_deep_in_the_body_are_found() -> None:
    """Like a large video site's channel pages: the metadata is about 400 KB in."""
    body, offset = deep_page()
    assert offset > 400_000
    stats = PageStats()
    info = parse_page(body, {"content-type": "text/html; charset=utf-8"}, URL, stats=stats)
    assert info.title == "Field Notes on Asking for Introductions"  # og:title, where found
    assert info.description == "Weekly videos on warm introductions."
    assert (info.site_name, info.author) == ("VideoSite", None)
    assert stats.read_past_head
    # it stopped once title and description were known, not at the end of the page
    assert offset < stats.chars_read <= offset + 2 * page_module._CHUNK < len(body)


def test_a_link_in_the_body_is_not_a_feed() -> None:
    """HTML Standard 4.6.7: "alternate" is not body-ok; autodiscovery reads <head> only."""
    body, _ = deep_page()
    assert parse_page(body, {}, URL).feed_links == ()


def test_the_first_title_element_counts_when_there_is_no_og_title() -> None:
    """A browser's document.title: the first <title> in the document, not one in an <svg>."""
    body = (
        "<html><head><meta charset=utf-8></head><body>"
        + filler(50_000)
        + "<title>The channel</title><title>A later one</title>"
        + '<meta name="description" content="About the channel.">'
        + "</body></html>"
    ).encode()
    info = parse_page(body, {}, URL)
    assert (info.title, info.description) == ("The channel", "About the channel.")


def test_a_head_with_everything_is_read_no_further() -> None:
    head = (
        "<title>Head title</title>"
        '<meta name="description" content="Head description.">'
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
    )
    body, offset = deep_page(head=head)
    stats = PageStats()
    info = parse_page(body, {}, URL, stats=stats)
    assert info.title == "Head title"  # the decoys and the og:title far below never seen
    assert info.description == "Head description."
    assert info.feed_links == ("https://blog.example/atom.xml",)
    assert not stats.read_past_head
    assert stats.chars_read <= page_module._CHUNK < offset


def test_past_the_head_only_what_is_missing_is_taken() -> None:
    """The head has a title but no description: the body's og:title does not replace it."""
    body, _ = deep_page(head="<title>Head title</title>")
    info = parse_page(body, {}, URL)
    assert info.title == "Head title"
    assert info.description == "Weekly videos on warm introductions."


def test_an_empty_head_title_still_lets_og_title_in_the_body_count() -> None:
    body, _ = deep_page(head="<title> </title>", before=1000, after=1000)
    assert parse_page(body, {}, URL).title == "Field Notes on Asking for Introductions"


def test_metadata_beyond_the_cap_is_not_read() -> None:
    body, offset = deep_page(before=page_module.MAX_PAGE_CHARS, after=10)
    assert offset > page_module.MAX_PAGE_CHARS
    stats = PageStats()
    info = parse_page(body, {}, URL, stats=stats)
    assert (info.title, info.description) == (None, None)
    assert stats.chars_read == page_module.MAX_PAGE_CHARS


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_garbage_never_raises(body: bytes) -> None:
    info = parse_page(body, {}, URL)
    for link in (*info.feed_links, info.canonical):
        assert link is None or link.startswith(("http://", "https://"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<title>",
                "</title>",
                "<meta property='og:title' content='x",
                '<link rel="alternate" type="application/rss+xml" href="',
                "javascript:alert(1)",
                "/feed.xml",
                '">',
                "<head>",
                "</head>",
                "<body>",
                "<!--",
                "-->",
                "<script>",
                "&amp;",
                "&#x202e;",
                "<",
                ">",
                "'",
            ]
        ),
        max_size=30,
    )
)
def test_tag_soup_never_raises(parts: list[str]) -> None:
    info = parse_page("".join(parts).encode(), {}, URL)
    for link in (*info.feed_links, info.canonical):
        assert link is None or link.startswith(("http://", "https://"))
    assert info.title is None or "\u202e" not in info.title
