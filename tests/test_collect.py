"""Collecting: every feed read once, each parsed feed narrowed to what the plans use, and the
editions assembled from the narrowed feeds exactly as from the whole ones.

Feeds and pages are served over real HTTP on 127.0.0.1 and parsed by the real feedparser.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from blog_carnival import parsepool
from blog_carnival.assemble import assemble
from blog_carnival.collect import Documents, collect
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.model import (
    Carnival,
    Contributor,
    Edition,
    FeedEntry,
    FetchResult,
    ParsedFeed,
    Person,
    Source,
    Submission,
    Want,
)
from blog_carnival.parse import parse_feed
from blog_carnival.parsepool import FeedParser, narrow
from blog_carnival.parsestore import ParseStore
from blog_carnival.select import find_in_feed, tag_matches
from blog_carnival.sources import plan
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
from hypothesis import given
from hypothesis import strategies as st

TAG = "job-hunt"
RSS = {"Content-Type": "application/rss+xml"}


def rss(base: str, items: int, tagged: tuple[int, ...] = (), title: str = "A blog") -> bytes:
    parts = []
    for i in range(items):
        when = dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC) - dt.timedelta(days=i)
        category = f"<category>{TAG}</category>" if i in tagged else "<category>misc</category>"
        parts.append(
            f"<item><title>Post {i}</title><link>{base}/posts/{i}.html</link>"
            f"<guid>{base}/posts/{i}.html</guid>"
            f"<pubDate>{when:%a, %d %b %Y %H:%M:%S} +0000</pubDate>{category}"
            f"<description>Words of post {i}.</description></item>"
        )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>{base}/</link>{''.join(parts)}</channel></rss>"
    ).encode()


def page(feed_url: str) -> bytes:
    return (
        "<!doctype html><html><head><title>A post</title>"
        f'<link rel="alternate" type="application/rss+xml" href="{feed_url}"></head>'
        "<body><p>Text.</p></body></html>"
    ).encode()


def carnival(submissions=(), contributors=()) -> tuple[Carnival, Edition]:  # noqa: ANN001
    edition = Edition(
        carnival="c",
        number=1,
        title="One",
        host=Person("Host"),
        opens=dt.date(2026, 11, 1),
        deadline=dt.date(2026, 11, 30),
        date=dt.date(2026, 12, 1),
        intro="",
        path=Path("c/001.toml"),
        tag=TAG,
        entries=tuple(submissions),
    )
    return (
        Carnival(
            slug="c",
            title="C",
            description="",
            organizer=Person("O"),
            path=Path("c"),
            contributors=tuple(contributors),
            editions=(edition,),
        ),
        edition,
    )


def run(server: HostileServer, items, tmp_path: Path, processes: int = 0) -> Documents:  # noqa: ANN001
    settings = FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout=5.0)
    plans = [plan(c, e) for c, e in items]
    with Fetcher(settings) as fetcher, FeedParser(tmp_path / "parsed", processes) as parser:
        return collect(plans, fetcher, parser)


def whole(body: bytes, url: str) -> ParsedFeed:
    """The feed parsed whole, as it was before narrowing."""
    parsed = parse_feed(body, RSS, url)
    assert isinstance(parsed, ParsedFeed)
    return parsed


@pytest.fixture
def server(hostile_server) -> HostileServer:
    return hostile_server("127.0.0.1")


def test_each_feed_keeps_only_the_entries_the_plan_uses(server, tmp_path: Path) -> None:
    base = server.base
    bodies = {"/a/feed.xml": rss(f"{base}/a", 30), "/b/feed.xml": rss(f"{base}/b", 30, (2, 5, 29))}
    submitted, tagged = (server.route(path, body, headers=RSS) for path, body in bodies.items())
    items = [
        carnival(
            submissions=[Submission(f"{base}/a/posts/7.html", feed=submitted)],
            contributors=[Contributor("B", f"{base}/b/", feed=tagged)],
        )
    ]
    docs = run(server, items, tmp_path)
    assert [e.link for e in docs.feeds[submitted].entries] == [f"{base}/a/posts/7.html"]
    assert [e.link for e in docs.feeds[tagged].entries] == [
        f"{base}/b/posts/{i}.html" for i in (2, 5, 29)
    ]
    # The edition is what it would have been from the whole feeds: the same entries, and the
    # same notices (post 29 is tagged but dated before the window).
    full = dataclasses.replace(
        docs,
        feeds={server.url(path): whole(body, server.url(path)) for path, body in bodies.items()},
    )
    plans = [plan(c, e) for c, e in items]
    narrowed, reference = assemble(plans[0], docs), assemble(plans[0], full)
    assert narrowed == reference
    assert [e.source for e in narrowed.entries] == [Source.FEED, Source.TAG, Source.TAG]
    assert any("posts/29.html" in n and "outside" in n for n in narrowed.notices)


def test_a_feed_found_on_a_page_later_is_read_again_for_everyone_who_reads_it(
    server, tmp_path: Path
) -> None:
    """A contributor's feed is read for its tag first; a submission without a feed turns out
    (from its page) to be in the same feed, untagged: it is found there, not on its page."""
    base = server.base
    shared = server.route("/s/feed.xml", rss(f"{base}/s", 12, tagged=(1,)), headers=RSS)
    post = f"{base}/s/posts/4.html"
    server.route("/s/posts/4.html", page(shared), headers={"Content-Type": "text/html"})
    items = [
        carnival(
            submissions=[Submission(post)],
            contributors=[Contributor("S", f"{base}/s/", feed=shared)],
        )
    ]
    docs = run(server, items, tmp_path)
    assert docs.feed_of[post] == shared
    assert [e.link for e in docs.feeds[shared].entries] == [
        f"{base}/s/posts/{i}.html" for i in (1, 4)
    ]
    result = assemble(plan(*items[0]), docs)
    assert [(e.url, e.source) for e in result.entries] == [
        (post, Source.FEED),
        (f"{base}/s/posts/1.html", Source.TAG),
    ]
    assert len(server.requests_to("/s/feed.xml")) == 1  # read again from memory, not fetched


def test_the_parse_pool_starts_only_when_enough_feeds_need_parsing(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(parsepool, "PROCESSES_FROM", 4)
    results = []
    for n in range(6):
        url = f"https://blog{n}.example/feed.xml"
        results.append(FetchResult(url, url, 200, RSS, rss(url[:-9], 6, tagged=(0,))))
    want = Want(tags=frozenset({TAG}))
    with FeedParser(tmp_path / "few", processes=2) as few:
        for result in results[:3]:
            few.submit(result, want)
        assert not few.started  # three feeds: parsed here, no interpreter started
        got = [few.take(r.url, want) for r in results[:3]]
    with FeedParser(tmp_path / "many", processes=2) as many:
        for result in results:
            many.submit(result, want)
        assert many.started
        got_many = [many.take(r.url, want) for r in results]
    expected = [narrow(parse_feed(r.body, RSS, r.url, tags=want.trim), want) for r in results]
    assert got == expected[:3] and got_many == expected
    assert all(len(f.entries) == 1 for f in expected)
    with FeedParser(tmp_path / "many", processes=2) as warm:  # every record cached: no pool
        for result in results:
            warm.submit(result, want)
        assert not warm.started
        assert [warm.take(r.url, want) for r in results] == expected


# -- narrowing is exact -----------------------------------------------------------------------

LINKS = st.sampled_from(
    [
        None,
        "https://b.example/1",
        "https://b.example/1/",
        "http://b.example/2",
        "https://b.example/3",
    ]
)


@given(
    entries=st.lists(
        st.tuples(LINKS, LINKS, st.lists(st.sampled_from([TAG, "Job Hunt", "misc"]), max_size=2)),
        max_size=8,
    ),
    urls=st.frozensets(st.sampled_from(["https://b.example/1", "http://b.example/2/", "x"])),
    tags=st.frozensets(st.sampled_from([TAG, "other"])),
)
def test_narrowing_finds_what_the_whole_feed_finds(entries, urls, tags) -> None:  # noqa: ANN001
    feed = ParsedFeed(
        url="https://b.example/feed.xml",
        title="B",
        link=None,
        entries=tuple(
            FeedEntry(link=link, id=ident, title=f"t{i}", tags=tuple(t))
            for i, (link, ident, t) in enumerate(entries)
        ),
    )
    narrowed = narrow(feed, Want(tags, urls))

    def bare(entry: FeedEntry | None) -> FeedEntry | None:
        """The entry without the text narrowing adds (entries differ by title: equal is same)."""
        return entry and dataclasses.replace(entry, text=None)

    for url in urls:
        assert bare(find_in_feed(narrowed, url)) == find_in_feed(feed, url)
    for tag in tags:
        assert [bare(e) for e in narrowed.entries if tag_matches(e, tag)] == [
            e for e in feed.entries if tag_matches(e, tag)
        ]
    assert all(bare(e) in feed.entries for e in narrowed.entries)
    assert all(e.text == "" for e in narrowed.entries)  # no summary, no content: no text


def test_the_parse_cache_keeps_the_text_of_the_entries_narrowed(
    tmp_path: Path, monkeypatch
) -> None:
    """A feed read again from the parse cache (a 304, a fresh copy) comes back narrowed with
    the same text, and that text is not worked out a second time."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>'
        b"<item><title>One</title><link>https://b.example/1</link><category>job-hunt</category>"
        b"<description>&lt;p&gt;Kept &lt;b&gt;words&lt;/b&gt;.&lt;/p&gt;</description></item>"
        b"<item><title>Two</title><link>https://b.example/2</link>"
        b"<description>Not wanted.</description></item></channel></rss>"
    )
    result = FetchResult(
        "https://b.example/feed.xml", None, 200, {"content-type": "application/rss+xml"}, body
    )
    want = Want(frozenset(), frozenset({"https://b.example/1"}))  # one entry of the two
    with FeedParser(tmp_path, processes=0) as parser:
        first = parser.parse(result, want)
    with ParseStore(tmp_path) as store:
        (key,) = store.record_keys()
        assert [e.text for e in store.get(key).entries] == ["Kept words.", None]

    def worked_out_again(entry: FeedEntry) -> str:
        raise AssertionError(f"text of {entry.title} worked out again")

    monkeypatch.setattr(parsepool, "entry_text", worked_out_again)
    with FeedParser(tmp_path, processes=0) as parser:
        again = parser.parse(result, want)
    assert again == first and [e.text for e in again.entries] == ["Kept words."]
