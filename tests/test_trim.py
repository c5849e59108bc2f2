"""Item trimming keeps every item the tag selection would keep, and caps the count."""

from __future__ import annotations

import html
import re
from pathlib import Path

from blog_carnival.parse import parse_feed
from blog_carnival.select import tag_matches
from blog_carnival.textutil import fold
from blog_carnival.trim import cannot_carry, items, trim_items
from hypothesis import example, given, settings
from hypothesis import strategies as st

FEEDS = Path(__file__).parent / "feeds"
URL = "https://blog.example/feed.xml"


def rss(items: list[tuple[str, list[str]]], extra: str = "") -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://blog.example/{i}</link>"
        + "".join(f"<category>{c}</category>" for c in cats)
        + "<pubDate>Tue, 10 Nov 2026 10:00:00 GMT</pubDate></item>"
        for i, (title, cats) in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>B</title>'
        f"<link>https://blog.example/</link>{extra}{body}</channel></rss>"
    ).encode()


def test_tag_filter_keeps_tagged_and_channel():
    body = rss([("a", ["jobs"]), ("b", ["Networking Carnival"]), ("c", [])])
    out = trim_items(body, tags=frozenset({"networking-carnival"}))
    assert (out.total, out.kept) == (3, 1)
    feed = parse_feed(out.body, {}, URL)
    assert feed.title == "B" and [e.title for e in feed.entries] == ["b"]


def test_cap_names_what_was_left_out():
    body = rss([(str(i), []) for i in range(30)])
    feed = parse_feed(body, {}, URL, max_items=10)
    assert len(feed.entries) == 10
    assert "read 10 of 30 items (the rest are past the limit of 10)" in feed.warnings


def test_entity_encoded_tag_is_kept():
    body = rss([("a", ["networking&#45;carnival"]), ("b", ["jobs"])])
    out = trim_items(body, tags=frozenset({"networking-carnival"}))
    assert out.kept == 1 and b"&#45;" in out.body


def test_unusual_documents_are_left_alone():
    tricky = rss([("a", ["x"])], extra="<description><![CDATA[an <item> in text]]></description>")
    assert trim_items(tricky, tags=frozenset({"zzz"})).body == tricky
    utf16 = (
        rss([("a", ["x"])])
        .decode()
        .replace('encoding="utf-8"', 'encoding="utf-16"')
        .encode("utf-16")
    )
    assert trim_items(utf16, tags=frozenset({"zzz"})).body == utf16


def test_fixture_feeds_select_the_same_with_and_without_trimming():
    for path in sorted(FEEDS.glob("*.xml")):
        body = path.read_bytes()
        full = parse_feed(body, {}, URL, max_items=None)
        if not hasattr(full, "entries"):
            continue
        for entry in full.entries:
            for tag in entry.tags:
                trimmed = parse_feed(body, {}, URL, tags=frozenset({tag}), max_items=None)
                want = [e.link or e.id for e in full.entries if tag_matches(e, tag)]
                got = [e.link or e.id for e in trimmed.entries if tag_matches(e, tag)]
                assert got == want, (path.name, tag)


tag_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["t1", "t2", "t3"]), st.lists(tag_text, max_size=3)),
        min_size=1,
        max_size=8,
    ),
    tag_text,
)
def test_trimming_never_loses_a_tag_match(items, wanted):
    from xml.sax.saxutils import escape

    body = rss([(title, [escape(c) for c in cats]) for title, cats in items])
    full = parse_feed(body, {}, URL, max_items=None)
    trimmed = parse_feed(body, {}, URL, tags=frozenset({wanted}), max_items=None)
    if not hasattr(full, "entries"):
        return
    keys = lambda feed: [e.link for e in feed.entries if tag_matches(e, wanted)]  # noqa: E731
    assert keys(trimmed) == keys(full)


def test_fold_matches_tag_spellings():
    assert fold("Networking Carnival") == fold("networking_carnival") == "networking-carnival"


def test_a_feed_of_100000_items_is_read_within_the_cap():
    items = "".join(
        f"<item><title>t{i}</title><link>https://b.example/{i}</link></item>"
        for i in range(100_000)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>{items}</channel></rss>'.encode()
    assert len(body) < 10 * 1024 * 1024  # fits under the default size cap, so parsing must cope
    feed = parse_feed(body, {}, URL)
    assert len(feed.entries) == 1000
    assert "read 1000 of 100000 items (the rest are past the limit of 1000)" in feed.warnings


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [*"abcAB-_ <>/&;#1xñ", "&amp;", "&#98;", "&lt;", "&ntilde;", "&apos;", "&quot;"]
            + ["&gt;", "&AMP;", "&amp", "&ampx;", "&#x62;"]
        ),
        max_size=40,
    ).map("".join),
    st.lists(st.text(st.sampled_from(list("abcnAB-_ 1ñ")), min_size=1, max_size=8), max_size=3),
)
@example("&#98;", ["b"])  # a character reference that is a letter
@example("&ntilde;", ["n"])  # a named entity that folds to a letter
@example("ñ", ["N"])  # a letter with an accent folds to one without
@example("a&lt;b", ["a-b"])  # punctuation from an entity separates words, as folding does
@example("&amp;&#98;", ["b"])  # a letter behind an XML entity
@example("&ampx;", ["b"])  # not &amp; (an unknown entity): folding decides
def test_the_quick_check_never_drops_an_item_folding_would_keep(text, tags):
    """``cannot_carry`` is only a shortcut: whatever it drops, folding would have dropped."""
    item = f"<item>{text}</item>".encode()
    wanted = [fold(t) for t in tags]
    words = [[w.encode("ascii") for w in tag.split("-") if w] for tag in wanted]
    if cannot_carry(item, words):
        folded = fold(html.unescape(item.decode("utf-8")))
        assert not any(w in folded for w in wanted)


# The pattern ``items`` replaced, kept here as the reference its spans must equal.
ITEM_PATTERN = re.compile(rb"<(item|entry)(?=[\s>/])[^>]*?(?:/>|>.*?</\1\s*>)", re.S)
OPENER_PATTERN = re.compile(rb"<(?:item|entry)(?=[\s>/])")


def reference_items(body: bytes) -> list[tuple[int, int]] | None:
    found = [m.span() for m in ITEM_PATTERN.finditer(body)]
    if len(OPENER_PATTERN.findall(body)) != len(found):
        return None
    return found


PIECES = [
    "<item>",
    "</item>",
    "<item/>",
    "<item />",
    "<item a='>'>",
    "</item >",
    "</item\n>",
    "</items>",
    "<items>",
    "<entry>",
    "</entry>",
    "<entry x='1'/>",
    "</entry\t>",
    "<itemx>",
    "<item",
    "/>",
    ">",
    "/",
    "</",
    "text",
    " ",
    "\n",
    "<entry/ >",
    "<item//>",
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
@example(["<item>", "<item>", "</item>", "</item>"])  # an item inside another
@example(["<item>", "text"])  # never closed
@example(["<item", "/", ">", "</item", " ", ">"])
def test_items_finds_the_spans_the_pattern_found(pieces: list[str]) -> None:
    body = "".join(pieces).encode()
    assert (items(body) or None) == (reference_items(body) or None)
