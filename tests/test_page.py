"""parse_page: what a post's HTML page says about itself, from a table of small pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from blog_carnival.model import PageInfo
from blog_carnival.page import parse_page
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
        "metadata after <body> is not read",
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
