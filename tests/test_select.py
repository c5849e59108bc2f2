"""Selection is pure: matching, tag and window, dedupe, order, limits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import pytest
from blog_carnival.model import Edition, FeedEntry, ParsedFeed, Person, RoundupEntry, Submission
from blog_carnival.select import (
    apply_limits,
    dedupe,
    find_in_feed,
    from_feed,
    order,
    select_tagged,
    unresolved,
    with_submission,
)
from blog_carnival.textutil import fold
from blog_carnival.urls import PATH_SAFE, canonical_path, canonical_url, safe_link
from hypothesis import example, given, settings
from hypothesis import strategies as st

UTC = dt.UTC


def stamp(day: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, tzinfo=UTC)


def edition(**kw) -> Edition:
    base = dict(
        carnival="c",
        number=3,
        title="T",
        host=Person("H"),
        opens=dt.date(2026, 11, 3),
        deadline=dt.date(2026, 11, 17),
        date=dt.date(2026, 11, 20),
        intro="",
        path=Path("c/003.toml"),
    )
    base.update(kw)
    return Edition(**base)


def feed(*entries: FeedEntry) -> ParsedFeed:
    return ParsedFeed(
        url="https://blog.example/feed.xml",
        title="A Blog",
        link="https://blog.example/",
        entries=entries,
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://blog.example/post/", "http://blog.example/post"),
        ("https://WWW.Blog.Example/post", "https://blog.example/post"),
        ("https://blog.example/post?utm_source=x&utm_medium=y", "https://blog.example/post"),
        ("https://blog.example/post#comments", "https://blog.example/post"),
        ("https://blog.example:443/post/index.html", "https://blog.example/post"),
        ("https://blog.example/p?b=2&a=1", "https://blog.example/p?a=1&b=2"),
    ],
)
def test_canonical_url_equal(a, b):
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://blog.example/post", "https://blog.example/post2"),
        ("https://blog.example/p?id=1", "https://blog.example/p?id=2"),
        ("https://a.example/post", "https://b.example/post"),
    ],
)
def test_canonical_url_distinct(a, b):
    assert canonical_url(a) != canonical_url(b)


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "data:text/html,x",
        "JaVaScRiPt:x",
        "ftp://a.example/",
        "java\nscript:x",
        "//",
        "http://",
        "mailto:a@b.example",
    ],
)
def test_safe_link_refuses(bad):
    assert safe_link(bad) is None


def test_safe_link_refuses_every_control_and_space_character_and_only_those():
    """Checked for every code point of the first twelve thousand (all controls, Unicode's
    spaces and separators among them): refused exactly when it is a control or a space."""
    for point in [*range(0x3100), 0xFEFF, 0x205F]:
        char = chr(point)
        unsafe = point < 0x20 or point == 0x7F or char.isspace()
        link = safe_link(f"https://blog.example/a{char}b")
        assert (link is None) == unsafe, hex(point)


def test_safe_link_resolves_relative():
    assert safe_link("../x.html", "https://blog.example/a/b/") == "https://blog.example/a/x.html"


def test_find_by_canonical_link_then_id():
    e1 = FeedEntry(link="https://blog.example/one/", id="tag:1", title="One")
    e2 = FeedEntry(link=None, id="https://blog.example/two", title="Two")
    f = feed(e1, e2)
    assert find_in_feed(f, "http://www.blog.example/one?utm_campaign=c") is e1
    assert find_in_feed(f, "https://blog.example/two") is e2
    assert find_in_feed(f, "https://blog.example/three") is None


def test_from_feed_uses_submitted_url_and_feed_blog():
    entry = FeedEntry(
        link="https://blog.example/one",
        id="1",
        title="One",
        author="Ann",
        published=stamp(4),
        summary="<p>Some <b>words</b> here</p>",
    )
    got = from_feed(entry, feed(entry), url="https://blog.example/one?utm_source=x")
    assert (
        got.title == "One" and got.blog_name == "A Blog" and got.blog_url == "https://blog.example/"
    )
    assert got.excerpt == "Some words here"
    assert got.source == "feed"


def test_tag_and_window_selection():
    inside = FeedEntry(
        link="https://blog.example/in",
        id="1",
        title="In",
        tags=("Networking Carnival",),
        published=stamp(10),
    )
    edge = FeedEntry(
        link="https://blog.example/edge",
        id="2",
        title="Edge",
        tags=("networking-carnival",),
        published=dt.datetime(2026, 11, 17, 23, 59, tzinfo=UTC),
    )
    early = FeedEntry(
        link="https://blog.example/early",
        id="3",
        title="Early",
        tags=("networking-carnival",),
        published=stamp(28, 10),
    )
    untagged = FeedEntry(
        link="https://blog.example/other",
        id="4",
        title="Other",
        tags=("jobs",),
        published=stamp(10),
    )
    undated = FeedEntry(
        link="https://blog.example/undated", id="5", title="Undated", tags=("networking-carnival",)
    )
    chosen, notices = select_tagged(
        feed(inside, edge, early, untagged, undated), edition(tag="networking-carnival")
    )
    assert [e.title for e in chosen] == ["In", "Edge"]
    assert any("early" in n and "outside 2026-11-03..2026-11-17" in n for n in notices)
    assert any("undated" in n and "no date" in n for n in notices)
    assert all(e.source == "tag" for e in chosen)


def test_no_tag_selects_nothing():
    entry = FeedEntry(
        link="https://blog.example/in", id="1", title="In", tags=("x",), published=stamp(10)
    )
    assert select_tagged(feed(entry), edition(tag=None)) == ([], [])


def test_dedupe_keeps_first():
    a = RoundupEntry(url="https://blog.example/p", title="A", source="feed")
    b = RoundupEntry(url="http://blog.example/p/", title="B", source="tag")
    kept, dropped = dedupe([a, b])
    assert kept == [a] and dropped == [b]


def test_order_by_section_then_date():
    def e(t, s, d):
        return RoundupEntry(
            url=f"https://x.example/{t}", title=t, section=s, published=stamp(d) if d else None
        )  # noqa: E731

    entries = [
        e("late", "B", 9),
        e("none", None, 1),
        e("undated", "A", None),
        e("early", "A", 4),
        e("mid", "A", 6),
    ]
    groups = order(entries, ("A", "B", "C"))
    assert [(name, [x.title for x in items]) for name, items in groups] == [
        ("A", ["early", "mid", "undated"]),
        ("B", ["late"]),
        (None, ["none"]),
    ]


def test_limits_off_by_default_and_report_drops():
    entries = [
        RoundupEntry(url=f"https://{h}.example/{i}", title=str(i), blog_url=f"https://{h}.example/")
        for i, h in enumerate(["a", "a", "a", "b", "c"])
    ]
    kept, dropped = apply_limits(entries, None, None)
    assert kept == entries and dropped == []
    kept, dropped = apply_limits(entries, 3, 2)
    assert [x.title for x in kept] == ["0", "1", "3"]
    assert [why for _, why in dropped] == [
        "more than 2 from a.example",
        "edition limit of 3 entries reached",
    ]


def test_submission_words_laid_over_entry():
    sub = Submission(
        url="https://x.example/p", section="A", note="Read it", pick=True, title="Host title"
    )
    resolved = with_submission(
        RoundupEntry(url="https://x.example/p", title="Feed title", source="feed"), sub
    )
    assert (resolved.title, resolved.section, resolved.note, resolved.pick) == (
        "Feed title",
        "A",
        "Read it",
        True,
    )
    missing = with_submission(unresolved(sub), sub)
    assert missing.title == "Host title" and missing.source == "unresolved"


def test_fold_compares_tag_spellings():
    assert fold("Networking Carnival") == fold("networking-carnival") == fold("NETWORKING_carnival")


# -- properties --------------------------------------------------------------------------------

hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.example", fullmatch=True)
segments = st.lists(st.from_regex(r"[A-Za-z0-9._~-]{1,8}", fullmatch=True), max_size=4)
params = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True),
    ),
    max_size=3,
)


@given(hosts, segments, params, st.sampled_from(["http", "https"]), st.booleans(), st.booleans())
def test_canonical_url_ignores_spelling(host, path, query, scheme, slash, tracked):
    base = f"{scheme}://{host}/{'/'.join(path)}"
    q = "&".join(f"{k}={v}" for k, v in query if not k.startswith("utm"))
    plain = base + (f"?{q}" if q else "")
    spelled = f"{'https' if scheme == 'http' else 'http'}://WWW.{host.upper()}/{'/'.join(path)}" + (
        "/" if slash else ""
    )
    extra = [
        *(f"{k}={v}" for k, v in query if not k.startswith("utm")),
        *(["utm_source=feed", "fbclid=1"] if tracked else []),
    ]
    spelled += ("?" + "&".join(reversed(extra))) if extra else ""
    assert canonical_url(spelled) == canonical_url(plain)


@given(
    st.text(max_size=60), st.sampled_from([None, "https://blog.example/a/b/", "http://x.example"])
)
def test_safe_link_only_ever_returns_http_links(text, base):
    link = safe_link(text, base)
    if link is not None:
        assert link.startswith(("http://", "https://"))
        assert not any(c.isspace() or ord(c) < 0x20 for c in link)


def _joined_link(url: str, base: str | None) -> str | None:
    """safe_link as it was before its shortcut: always joined to the base."""
    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None
    try:
        parts = urlsplit(urljoin(base, text) if base else text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if "\\" in parts.netloc or "@" in parts.netloc and not parts.username:
        return None
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, parts.fragment)
    )


@settings(max_examples=500)
@given(
    st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", ""]),
    st.sampled_from(["//", "/", "", "///"]),
    st.text(alphabet=st.sampled_from("ab.:@[]1/?#;=&%-_\\"), max_size=12),
    st.text(alphabet=st.sampled_from("ab./?#;=&%-_:"), max_size=14),
    st.sampled_from(
        [None, "https://blog.example/a/b/", "http://x.example", "https://blog.example/a;p"]
    ),
)
@example("https", "//", "blog.example", "/a/;", "https://blog.example/")
@example("http", "//", "blog.example", "/a;b?c#d", "http://x.example")
@example("HTTP", "//", "x", "/a/../b", "http://x.example")
def test_an_absolute_link_is_what_joining_it_would_give(scheme, slashes, host, rest, base):
    """The shortcut for a link with its own scheme and host answers as joining it to the
    base would."""
    url = f"{scheme}:{slashes}{host}{rest}" if scheme else f"{slashes}{host}{rest}"
    assert safe_link(url, base) == _joined_link(url, base)


@given(
    st.text(alphabet=st.sampled_from("aZ09/-._~%:@!$&'()*+,;=?#[] é\u00a0\\\"<>^`{|}"), max_size=30)
)
def test_a_plain_path_is_kept_as_quoting_would_spell_it(path: str) -> None:
    """The shortcut for a path that needs no escaping gives what escaping gives."""
    assert canonical_path(path) == quote(unquote(path), safe=PATH_SAFE)
