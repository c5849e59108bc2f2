"""Webmentions received through a webmention.io-style JF2 API, verified and filed as comments.

Real HTTP on 127.0.0.1 only: a loopback JF2 API (it checks the token and honours since_id,
per-page and sort-dir as webmention.io does) and loopback source pages, read with the real
guarded Fetcher (127.0.0.1 allowed, nothing else). Real comment files in a temporary folder,
an injected clock; no Pelican.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from blog_carnival import mentions
from blog_carnival.cache import HttpCache
from blog_carnival.comments import IncomingComment, load_comments
from blog_carnival.fetch import Fetcher, FetchSettings, redact
from blog_carnival.mentions import (
    MentionBatch,
    MentionState,
    MentionStateError,
    fetch_mentions,
    kind_for,
    read_since_id,
    read_state,
    receive_mentions,
    run_mentions,
    write_since_id,
    write_state,
)
from blog_carnival.spam import SpamContext, SpamSettings, judge
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)

NOW = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
TOKEN = "s3cr3t-Tok/en+with=odd&chars"  # reserved URL characters: it must be encoded and hidden
LOCAL = {"timeout": 5.0, "deadline": 10.0, "allowed_private_hosts": frozenset({"127.0.0.1"})}
HTML = {"Content-Type": "text/html; charset=utf-8"}
SITE = "https://networking.example"
COFFEE = f"{SITE}/2026/11/who-pays-for-coffee/"
LAYOFF = f"{SITE}/2026/10/networking-after-a-layoff/"
ROUNDUP = f"{SITE}/carnival/networking/2/"
TARGETS = {
    COFFEE: "who-pays-for-coffee",
    LAYOFF: "networking-after-a-layoff",
    ROUNDUP: "carnival-networking-2",
}
SLUGS = {
    "who-pays-for-coffee": "Who Pays for the Coffee? Whoever asked for the meeting pays; "
    "arrive early, keep the clock, thank them within a day.",
    "networking-after-a-layoff": "Networking After a Layoff: tell people plainly, start with "
    "your warmest contacts, ask for something specific.",
    "carnival-networking-2": "The Networking Carnival #2: Networking for a Job Search.",
}
RULES = SpamSettings()


# -- a loopback JF2 API -----------------------------------------------------------------------


class JF2Api:
    """A webmention.io-style ``/api/mentions.jf2``: answers only with the right token, returns
    the children with wm-id above ``since_id``, oldest first with ``sort-dir=up``, at most
    ``per-page`` of them. ``raw`` replaces the whole answer (bad JSON, wrong shapes)."""

    def __init__(self, server: HostileServer, path: str = "/api/mentions.jf2") -> None:
        self.children: list[object] = []
        self.raw: tuple[int, bytes] | None = None
        self.ignore_since_id = False
        self.ignore_per_page = False
        self.queries: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        self.url = server.handler(path, self._handle) + "?domain=networking.example"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(h.path).query, keep_blank_values=True)
        with self._lock:
            self.queries.append(query)
        if self.raw is not None:
            status, body = self.raw
        elif query.get("token") != [TOKEN]:
            status = 401
            body = json.dumps({"error": "forbidden", "error_description": "bad token"}).encode()
        else:
            status, body = 200, self._feed(query)
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _feed(self, query: dict[str, list[str]]) -> bytes:
        since = int(query.get("since_id", ["-1"])[0])
        per_page = int(query.get("per-page", ["20"])[0])
        children = [
            c
            for c in self.children
            if self.ignore_since_id or not isinstance(c, dict) or int(c["wm-id"]) > since
        ]
        up = query.get("sort-dir") == ["up"]
        children.sort(key=lambda c: c["wm-id"] if isinstance(c, dict) else 0, reverse=not up)
        if not self.ignore_per_page:
            children = children[:per_page]
        feed = {"type": "feed", "name": "Webmentions", "children": children}
        return json.dumps(feed).encode()


def child(
    wm_id: int,
    source: str,
    target: str = COFFEE,
    prop: str = "in-reply-to",
    *,
    name: str | None = "Rosa Okafor",
    author_url: str | None = "https://rosa.example/",
    text: str | None = "Paying for the coffee when I asked for the meeting felt right.",
    published: str | None = "2026-11-18T08:30:00-05:00",
    **extra: object,
) -> dict[str, object]:
    """One JF2 entry as webmention.io writes it."""
    entry: dict[str, object] = {
        "type": "entry",
        "wm-id": wm_id,
        "wm-source": source,
        "wm-target": target,
        "wm-property": prop,
        "wm-received": "2026-11-19T10:00:00Z",
        "url": source,
        "author": {"type": "card", "name": name, "url": author_url, "photo": ""},
        "published": published,
    }
    if text is not None:
        entry["content"] = {"text": text, "html": f"<p>{text}</p>"}
    entry.update(extra)
    return entry


def source_page(server: HostileServer, path: str, *links: str, words: str = "") -> str:
    """A loopback page linking to ``links``."""
    anchors = "".join(f'<p>See <a href="{link}">this post</a>.</p>' for link in links)
    body = f"<!doctype html><title>A note</title><article>{words}{anchors}</article>"
    return server.route(path, body=body.encode(), headers=HTML)


@pytest.fixture
def server(hostile_server: Callable[..., HostileServer]) -> HostileServer:
    return hostile_server("127.0.0.1")


@pytest.fixture
def api(server: HostileServer) -> JF2Api:
    return JF2Api(server)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings(**LOCAL)) as f:
        yield f


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "comments"


def run(root: Path, fetcher: Fetcher, api: JF2Api, **kwargs: object) -> mentions.ReceiveReport:
    options: dict[str, object] = {
        "targets": TARGETS,
        "known_slugs": SLUGS,
        "rules": RULES,
        "now": NOW,
        **kwargs,
    }
    return run_mentions(root, fetcher, api.url, TOKEN, **options)  # type: ignore[arg-type]


def outcomes(report: mentions.ReceiveReport) -> dict[int | None, str]:
    return {item.wm_id: item.outcome for item in report.items}


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "kind"),
    [
        ("in-reply-to", "reply"),
        ("like-of", "like"),
        ("repost-of", "repost"),
        ("mention-of", "mention"),
        ("bookmark-of", "mention"),
        ("rsvp", "mention"),
        ("follow-of", "mention"),
        ("", "mention"),
        (None, "mention"),
    ],
)
def test_wm_property_decides_the_kind(prop: str | None, kind: str) -> None:
    assert kind_for(prop) == kind


# -- receiving --------------------------------------------------------------------------------


def test_a_verified_reply_is_filed_as_a_pending_comment(server, api, fetcher, root) -> None:
    source = source_page(server, "/notes/coffee", COFFEE)
    api.children = [child(7, source)]

    report = run(root, fetcher, api)

    assert outcomes(report) == {7: "stored"}
    (comment,) = load_comments(root)
    assert comment.post_slug == "who-pays-for-coffee"
    assert (comment.source, comment.kind, comment.status) == (source, "reply", "pending")
    assert (comment.author, comment.url) == ("Rosa Okafor", "https://rosa.example/")
    assert comment.date == datetime(2026, 11, 18, 13, 30, tzinfo=UTC)  # published, in UTC
    assert comment.text == "Paying for the coffee when I asked for the meeting felt right."
    assert report.items[0].comment_id == comment.id
    # The file is in the one comment format, with the mention's headers.
    written = (root / "who-pays-for-coffee" / f"{comment.id}.md").read_text()
    assert f"Source: {source}\nKind: reply\n" in written
    # The request carried the token and webmention.io's paging, and kept the host's domain.
    (query,) = api.queries
    assert query["token"] == [TOKEN] and query["domain"] == ["networking.example"]
    assert query["sort-dir"] == ["up"] and query["per-page"] == ["100"]
    assert "since_id" not in query  # a first run reads from the beginning


def test_a_trusted_author_s_mention_still_waits(server, api, fetcher, root) -> None:
    # COMMENTS_TRUSTED approves typed comments; a mention is always held for the host.
    api.children = [child(1, source_page(server, "/n", COFFEE))]
    rules = SpamSettings(trusted=frozenset({"https://rosa.example/"}))
    report = run(root, fetcher, api, rules=rules)
    assert [c.status for c in load_comments(root)] == ["pending"]
    assert report.items[0].status == "pending"


def test_a_source_that_does_not_link_the_target_is_rejected(server, api, fetcher, root) -> None:
    elsewhere = source_page(server, "/notes/other", LAYOFF)  # links another post of ours
    api.children = [child(3, elsewhere)]

    report = run(root, fetcher, api)

    (item,) = report.items
    assert (item.outcome, item.group, item.final) == ("no-link", "rejected", True)
    assert item.reason == "the source does not link to the target"
    assert len(load_comments(root)) == 0
    assert report.saved == MentionState(3)  # final: not read again


def test_a_source_that_is_gone_is_rejected(server, api, fetcher, root) -> None:
    api.children = [child(4, server.route("/deleted", status=410))]
    (item,) = run(root, fetcher, api).items
    assert (item.outcome, item.reason) == ("gone", "the source is gone (HTTP 410)")
    assert len(load_comments(root)) == 0


def test_a_source_on_a_private_address_is_refused(api, fetcher, root) -> None:
    # Only 127.0.0.1 is allowed; 127.0.0.2 is loopback too, and nothing is sent to it.
    api.children = [child(5, "http://127.0.0.2:9/notes/coffee")]

    report = run(root, fetcher, api)

    (item,) = report.items
    assert (item.outcome, item.group, item.final) == ("refused", "rejected", True)
    assert item.reason == (
        "could not fetch the source: refused address 127.0.0.2 for 127.0.0.2 (loopback)"
    )
    assert len(load_comments(root)) == 0
    assert report.saved == MentionState(5)  # a policy answer does not change next run


def test_the_api_is_under_the_address_policy_too(server, api, root) -> None:
    api.children = [child(5, source_page(server, "/n", COFFEE))]
    with Fetcher(FetchSettings(timeout=5.0, deadline=10.0)) as strict:  # nothing allowed
        refused = run(root, strict, api)
    assert refused.batch.error == (
        f"{api.url}&token=REDACTED&per-page=100&sort-dir=up: "
        "refused address 127.0.0.1 for 127.0.0.1 (loopback)"
    )
    assert api.queries == []  # refused before connecting


def test_likes_and_reposts_are_filed_with_their_kind_and_a_short_line(
    server, api, fetcher, root
) -> None:
    api.children = [
        child(10, source_page(server, "/likes/1", COFFEE), prop="like-of", text="whole post"),
        child(11, source_page(server, "/reposts/1", COFFEE), prop="repost-of", text=None),
        child(12, source_page(server, "/bookmarks/1", COFFEE), prop="bookmark-of", text=None),
    ]

    report = run(root, fetcher, api)

    assert outcomes(report) == {10: "stored", 11: "stored", 12: "stored"}
    filed = {c.source.rsplit("/", 2)[1]: c for c in load_comments(root) if c.source}
    assert (filed["likes"].kind, filed["likes"].text) == ("like", "Liked this post")
    assert (filed["reposts"].kind, filed["reposts"].text) == ("repost", "Reposted this post")
    assert (filed["bookmarks"].kind, filed["bookmarks"].text) == (
        "mention",
        "Bookmarked this post",
    )
    assert {c.status for c in filed.values()} == {"pending"}


def test_a_mention_of_a_roundup_is_filed_under_the_roundup(server, api, fetcher, root) -> None:
    # How a host sees which entries linked back: an entry's page mentions the roundup.
    entry = source_page(server, "/blog/my-entry", ROUNDUP, words="<p>My post made #2.</p>")
    api.children = [child(20, entry, ROUNDUP, "mention-of", text="My post made the roundup.")]
    run(root, fetcher, api)
    (comment,) = load_comments(root)
    assert (comment.post_slug, comment.kind, comment.source) == (
        "carnival-networking-2",
        "mention",
        entry,
    )


def test_a_target_is_matched_in_any_spelling(server, api, fetcher, root) -> None:
    # http, no trailing slash, a fragment: the same page of ours (urls.canonical_url).
    spelled = "http://networking.example/2026/11/who-pays-for-coffee#comments"
    api.children = [child(8, source_page(server, "/n", spelled), spelled)]
    assert outcomes(run(root, fetcher, api)) == {8: "stored"}
    assert [c.post_slug for c in load_comments(root)] == ["who-pays-for-coffee"]


def test_the_link_must_be_to_the_exact_target(server, api, fetcher, root) -> None:
    # 3.2.2: the source links to the exact target URL; a link to our other spelling is not it.
    spelled = "http://networking.example/2026/11/who-pays-for-coffee"
    api.children = [child(9, source_page(server, "/n", COFFEE), spelled)]
    assert outcomes(run(root, fetcher, api)) == {9: "no-link"}


def test_a_mention_of_a_page_that_is_not_ours_is_skipped(server, api, fetcher, root) -> None:
    other = "https://someone-else.example/2026/11/post/"
    source = source_page(server, "/n", other)
    api.children = [child(30, source, other)]

    report = run(root, fetcher, api)

    (item,) = report.items
    assert (item.outcome, item.group) == ("not-ours", "skipped")
    assert item.reason == f"{other} is not one of this site's pages"
    assert server.requests_to("/n") == []  # not verified: no request to the source
    assert report.saved == MentionState(30)


def test_the_same_source_and_target_is_filed_once(server, api, fetcher, root) -> None:
    source = source_page(
        server, "/notes/coffee", COFFEE, "http://networking.example/2026/11/who-pays-for-coffee"
    )
    api.children = [
        child(40, source),
        # the same source for the same post, spelled another way, in the same batch
        child(41, source, "http://networking.example/2026/11/who-pays-for-coffee"),
    ]
    first = run(root, fetcher, api)
    assert outcomes(first) == {40: "stored", 41: "duplicate"}
    assert first.items[1].reason == f"already filed as {first.items[0].comment_id}"

    # A later run that reads them again (the state file lost) files nothing twice.
    mentions.state_path(root).unlink()
    second = run(root, fetcher, api)
    assert outcomes(second) == {40: "duplicate", 41: "duplicate"}
    assert len(load_comments(root)) == 1
    assert len(server.requests_to("/notes/coffee")) == 1  # a duplicate is not fetched again


def test_one_source_may_mention_two_posts(server, api, fetcher, root) -> None:
    source = source_page(server, "/notes/both", COFFEE, LAYOFF)
    api.children = [child(50, source), child(51, source, LAYOFF)]
    assert outcomes(run(root, fetcher, api)) == {50: "stored", 51: "stored"}
    assert sorted(c.post_slug for c in load_comments(root)) == [
        "networking-after-a-layoff",
        "who-pays-for-coffee",
    ]


def test_since_id_advances_and_only_new_mentions_come_back(server, api, fetcher, root) -> None:
    api.children = [
        child(60, source_page(server, "/a", COFFEE)),
        child(61, source_page(server, "/b", LAYOFF), LAYOFF),
    ]
    first = run(root, fetcher, api)
    assert outcomes(first) == {60: "stored", 61: "stored"}
    assert read_since_id(mentions.state_path(root)) == 61
    assert "mentions: since_id None -> 61" in first.lines()

    second = run(root, fetcher, api)
    assert api.queries[-1]["since_id"] == ["61"]
    assert second.items == () and "nothing new" in second.lines()[0]

    api.children.append(child(62, source_page(server, "/c", COFFEE)))
    third = run(root, fetcher, api)
    assert outcomes(third) == {62: "stored"}
    assert read_since_id(mentions.state_path(root)) == 62
    assert len(load_comments(root)) == 3


def test_an_api_that_ignores_since_id_is_filtered_here(server, api, fetcher, root) -> None:
    api.ignore_since_id = True
    api.children = [child(70, source_page(server, "/a", COFFEE))]
    run(root, fetcher, api)
    api.children.append(child(71, source_page(server, "/b", COFFEE)))
    report = run(root, fetcher, api)
    assert outcomes(report) == {71: "stored"}


def test_a_full_page_leaves_the_rest_for_the_next_run(server, api, fetcher, root) -> None:
    api.children = [child(i, source_page(server, f"/p{i}", COFFEE)) for i in (83, 81, 82)]
    first = run(root, fetcher, api, per_page=2)
    assert outcomes(first) == {81: "stored", 82: "stored"}  # the oldest, never 83 first
    assert first.saved == MentionState(82)
    assert "mentions: the page was full; run again for more" in first.lines()
    assert outcomes(run(root, fetcher, api, per_page=2)) == {83: "stored"}


def test_no_more_than_a_page_is_read_whatever_the_api_sends(server, api, fetcher, root) -> None:
    api.ignore_per_page = True
    api.children = [
        child(204, source_page(server, "/d", COFFEE)),
        child(203, "ftp://files.example/x"),  # malformed, above the page: not jumped to
        child(202, source_page(server, "/b", COFFEE)),
        child(201, source_page(server, "/a", COFFEE)),
    ]
    first = run(root, fetcher, api, per_page=2)
    assert outcomes(first) == {201: "stored", 202: "stored"}
    assert first.saved == MentionState(202) and first.batch.more
    assert outcomes(run(root, fetcher, api, per_page=2)) == {203: "malformed", 204: "stored"}


def test_an_unreachable_source_is_tried_again_then_given_up(server, api, fetcher, root) -> None:
    flaky = server.route("/flaky", status=503)
    api.children = [
        child(90, source_page(server, "/first", COFFEE)),
        child(91, flaky),
        child(92, source_page(server, "/third", LAYOFF), LAYOFF),
        child(93, source_page(server, "/silent")),  # no link: final, but read again
    ]
    first = run(root, fetcher, api)
    assert outcomes(first) == {90: "stored", 91: "failed", 92: "stored", 93: "no-link"}
    failed = first.items[1]
    assert (failed.final, failed.attempt) == (False, 1)
    assert (
        failed.reason
        == "could not fetch the source: HTTP 503 (try 1 of 3; will try again next run)"
    )
    # since_id stops below the mention being retried; its try is counted.
    assert first.saved == MentionState(90, {91: 1})
    assert read_state(mentions.state_path(root)) == MentionState(90, {91: 1})
    assert any(line.startswith("  retry") for line in first.lines())

    # The source comes back: the retry files it; the others after it are not filed twice.
    server.route("/flaky", body=f'<a href="{COFFEE}">coffee</a>'.encode(), headers=HTML)
    second = run(root, fetcher, api)
    assert api.queries[-1]["since_id"] == ["90"]
    assert outcomes(second) == {91: "stored", 92: "duplicate", 93: "no-link"}
    assert second.saved == MentionState(93)
    assert len(load_comments(root)) == 3


def test_a_source_down_for_good_is_given_up_after_three_runs(server, api, fetcher, root) -> None:
    api.children = [child(95, server.route("/down", status=500))]
    tries = []
    for _ in range(3):
        (item,) = run(root, fetcher, api).items
        tries.append((item.outcome, item.attempt, item.final))
    assert tries == [("failed", 1, False), ("failed", 2, False), ("failed", 3, True)]
    assert item.reason.endswith("(try 3 of 3; given up)")
    assert read_state(mentions.state_path(root)) == MentionState(95)
    assert run(root, fetcher, api).items == ()


def test_the_comment_date_comes_from_the_mention(server, api, fetcher, root) -> None:
    api.children = [
        child(100, source_page(server, "/a", COFFEE), published=None),  # wm-received
        child(101, source_page(server, "/b", LAYOFF), LAYOFF, published="2031-01-01T00:00:00Z"),
        child(
            102,
            source_page(server, "/c", ROUNDUP),
            ROUNDUP,
            published=None,
            **{"wm-received": None},
        ),
    ]
    run(root, fetcher, api)
    dates = {c.post_slug: c.date for c in load_comments(root)}
    assert dates["who-pays-for-coffee"] == datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    assert dates["networking-after-a-layoff"] == NOW  # a date in the future is taken as now
    assert dates["carnival-networking-2"] == NOW  # no date at all


def test_an_author_without_a_name_is_the_source_s_host(server, api, root) -> None:
    # The host name stands in for the author, and is not judged as a name: a typed comment
    # whose name is a web address is spam, a nameless mention is not.
    text = "Paying for the coffee when I asked for the meeting felt right."
    as_named = judge(IncomingComment(author="rosa-notes.example", text=text), SpamContext(), RULES)
    assert as_named.status == "spam"
    source = server.url("/a").replace("127.0.0.1", "rosa-notes.example")
    server.route("/a", body=f'<a href="{COFFEE}">the post</a>'.encode(), headers=HTML)
    api.children = [child(110, source, name=None, author_url=None, text=text)]
    # The name resolves to 127.0.0.1 (an injected resolver): real HTTP on loopback only.
    with Fetcher(FetchSettings(**LOCAL), resolver=lambda host, port: ["127.0.0.1"]) as named:
        report = run(root, named, api)
    (comment,) = load_comments(root)
    assert (comment.author, comment.url, comment.status) == ("rosa-notes.example", None, "pending")
    assert report.items[0].status == "pending"


def test_html_content_is_flattened_and_a_bad_author_url_dropped(server, api, fetcher, root) -> None:
    entry = child(
        120,
        source_page(server, "/a", COFFEE),
        text=None,
        content={"html": "<p>Kept the <b>clock</b>, as you said.<script>alert(1)</script></p>"},
        author={"name": "Sam\u202e Ode", "url": "javascript:alert(1)"},
    )
    api.children = [entry]
    run(root, fetcher, api)
    (comment,) = load_comments(root)
    assert comment.text == "Kept the clock, as you said."
    assert (comment.author, comment.url) == ("Sam Ode", None)


def test_spam_rules_can_mark_a_mention_spam(server, api, fetcher, root) -> None:
    pitch = (
        "Here's some useful info about cheap seo services and buy backlinks. "
        "The url is: https://jobs-cheap.example/ https://jobs-cheap.example/a https://x.example/"
    )
    source = source_page(server, "/spam", COFFEE, words=f"<p>{pitch}</p>")
    api.children = [child(130, source, prop="mention-of", name="find job search", text=pitch)]
    report = run(root, fetcher, api)
    (comment,) = load_comments(root)
    assert comment.status == "spam" and report.items[0].status == "spam"
    lines = report.lines()
    assert any("spam threshold" in line for line in lines)


# -- the API's faults are values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b'{"type": "feed", "children": [', "not JSON"),
        (200, b"\xff\xfe\x00garbage", "not JSON"),
        (200, b"[1, 2, 3]", "expected a JF2 feed object, got a JSON array"),
        (200, b'{"type": "entry", "children": []}', "expected a JF2 feed, got type 'entry'"),
        (200, b'{"type": "feed"}', "the JF2 feed has no list of children"),
        (200, b'{"type": "feed", "children": {}}', "the JF2 feed has no list of children"),
        (
            200,
            b'{"error": "forbidden", "error_description": "Access token was not valid"}',
            "the API answered an error (forbidden: Access token was not valid)",
        ),
        (500, b"oops", "HTTP 500"),
        (200, b"[" * 100_000, "not JSON"),
    ],
)
def test_api_faults_are_reported_with_the_token_redacted(
    api, fetcher, root, status: int, body: bytes, reason: str
) -> None:
    api.raw = (status, body)
    report = run(root, fetcher, api)
    error = report.batch.error or ""
    assert reason in error
    # It names the API URL as requested, the token redacted.
    assert error.startswith(f"{api.url}&token=REDACTED&per-page=100&sort-dir=up: ")
    assert TOKEN not in error and "s3cr3t" not in error
    assert report.items == () and not report.ok
    assert report.lines() == [f"mentions: could not read new mentions: {error}"]
    assert not mentions.state_path(root).exists()  # nothing handled: the state stays


def test_a_wrong_token_is_an_error_value(api, fetcher, root) -> None:
    report = run_mentions(
        root, fetcher, api.url, "wrong", targets=TARGETS, known_slugs=SLUGS, rules=RULES, now=NOW
    )
    assert report.batch.error == (f"{api.url}&token=REDACTED&per-page=100&sort-dir=up: HTTP 401")


def test_no_token_sends_nothing(api, fetcher, root) -> None:
    for token in (None, ""):
        batch = fetch_mentions(fetcher, api.url, token)
        assert batch.error == f"{api.url}: no API token given"
    assert api.queries == []


def test_a_token_written_into_the_api_url_is_refused_and_hidden(api, fetcher) -> None:
    committed = api.url + "&token=committed-secret"
    batch = fetch_mentions(fetcher, committed, TOKEN)
    assert batch.error == (
        api.url + "&token=REDACTED: the API URL holds a token; give it in the environment instead"
    )
    assert "committed-secret" not in batch.error and api.queries == []


def test_an_api_url_that_is_not_http_is_an_error(fetcher) -> None:
    batch = fetch_mentions(fetcher, "file:///etc/passwd", TOKEN)
    assert batch.error == "file:///etc/passwd: not an absolute http(s) URL"


def test_malformed_entries_are_skipped_and_the_rest_received(server, api, fetcher, root) -> None:
    good = child(143, source_page(server, "/good", COFFEE))
    api.ignore_since_id = True  # the server sends the junk whatever since_id says
    api.children = [
        "not an object",
        child(140, "javascript:alert(1)"),
        child(141, source_page(server, "/x", COFFEE), target=None),  # type: ignore[arg-type]
        {**child(142, source_page(server, "/y", COFFEE)), "wm-id": True},
        good,
    ]
    report = run(root, fetcher, api)
    assert outcomes(report) == {
        140: "malformed",
        141: "malformed",
        143: "stored",
        None: "malformed",
    }
    reasons = [i.reason for i in report.items if i.outcome == "malformed"]
    assert "wm-source is not an absolute http(s) URL ('javascript:alert(1)')" in reasons[0]
    assert "wm-target is not an absolute http(s) URL (missing)" in reasons[1]
    assert len(reasons) == 4
    assert report.saved == MentionState(143)


# -- the token stays secret -------------------------------------------------------------------


def test_the_token_never_reaches_a_log_record_a_report_or_the_cache(
    server, api, root, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: httpx, httpcore, ours
    cache = HttpCache(tmp_path / "http-cache")
    api.children = [
        child(150, source_page(server, "/ok", COFFEE)),
        child(151, server.route("/broken", status=503)),
        child(152, "http://127.0.0.2:9/private"),
    ]
    reports = []
    with Fetcher(FetchSettings(**LOCAL), cache) as fetcher:
        reports.append(run(root, fetcher, api))
        api.raw = (200, b"{not json")
        reports.append(run(root, fetcher, api))
        api.raw = (302, b"")  # a redirect with no Location: an unexpected status
        reports.append(run(root, fetcher, api))
    with Fetcher(FetchSettings(timeout=5.0, deadline=10.0)) as strict:
        reports.append(run(root, strict, api))  # the API on a refused address
    forms = {TOKEN, "s3cr3t-Tok%2Fen%2Bwith%3Dodd%26chars", "s3cr3t-Tok/en%2Bwith%3Dodd%26chars"}

    assert reports[0].items and not reports[1].batch.ok and not reports[3].batch.ok
    texts = [line for report in reports for line in report.lines()]
    texts += [record.getMessage() for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    assert any("token=REDACTED" in text for text in texts)
    assert not [text for text in texts if any(form in text for form in forms)]
    # The API answer was not cached (its file would hold the URL); the pages were.
    stored = [p.read_bytes() for p in (tmp_path / "http-cache").iterdir()]
    assert stored and not [b for b in stored if b"s3cr3t" in b]
    assert not [b for b in stored if b"/api/mentions.jf2" in b]
    assert api.queries and all(q["token"] == [TOKEN] for q in api.queries)


def test_redact_hides_every_spelling_of_a_secret() -> None:
    url = "https://a.example/?token=a%2Fb%2Bc&x=a/b+c"
    assert redact(url, "a/b+c") == "https://a.example/?token=REDACTED&x=REDACTED"
    assert redact("nothing to hide", None) == "nothing to hide"


# -- the state file ---------------------------------------------------------------------------


def test_the_state_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "comments" / ".mentions.json"
    assert read_state(path) == MentionState()  # a first run
    write_state(path, MentionState(41, {45: 2}))
    assert read_state(path) == MentionState(41, {45: 2})
    assert json.loads(path.read_text()) == {"since_id": 41, "attempts": {"45": 2}}
    write_since_id(path, 46)  # past the retried mention: its count goes
    assert read_state(path) == MentionState(46)
    assert read_since_id(path) == 46
    assert list(path.parent.iterdir()) == [path]  # atomic writes leave no temporary file


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON (Expecting property name enclosed in double quotes: line 1 column 2"),
        ("[]", "expected a JSON object"),
        ('{"since_id": "twelve"}', "since_id: 'twelve' is not a wm-id"),
        ('{"since_id": 3, "attempts": []}', "attempts: expected an object"),
        ('{"since_id": 3, "attempts": {"4": 0}}', "attempts: '4': 0 is not a number of tries"),
    ],
)
def test_a_damaged_state_file_is_named_with_its_problem(tmp_path, text, reason) -> None:
    path = tmp_path / ".mentions.json"
    path.write_text(text)
    with pytest.raises(MentionStateError) as caught:
        read_state(path)
    assert str(caught.value).startswith(f"comments: {path}: {reason}")


def test_a_damaged_state_file_does_not_stop_a_run(server, api, fetcher, root) -> None:
    api.children = [child(160, source_page(server, "/a", COFFEE))]
    run(root, fetcher, api)
    mentions.state_path(root).write_text("{oops")
    report = run(root, fetcher, api)
    assert report.problems and report.problems[0].startswith(
        f"comments: {mentions.state_path(root)}: not JSON"
    )
    assert report.lines()[0].startswith("warning: comments: ")
    assert outcomes(report) == {160: "duplicate"}  # read again, filed once
    assert read_state(mentions.state_path(root)) == MentionState(160)


def test_the_state_file_is_not_taken_for_a_comment(server, api, fetcher, root) -> None:
    api.children = [child(170, source_page(server, "/a", COFFEE))]
    run(root, fetcher, api)
    assert mentions.state_path(root).exists()
    assert load_comments(root, SLUGS).problems == ()


def test_a_failed_batch_leaves_the_state_alone(tmp_path: Path, fetcher) -> None:
    state = MentionState(9, {10: 1})
    batch = MentionBatch("https://api.example/", 9, error="https://api.example/: HTTP 500")
    report = receive_mentions(
        tmp_path,
        batch,
        fetcher,
        targets=TARGETS,
        known_slugs=SLUGS,
        rules=RULES,
        now=NOW,
        state=state,
    )
    assert report.next_state() == state


def test_dates_of_now_must_be_aware(tmp_path: Path, fetcher) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        receive_mentions(
            tmp_path,
            MentionBatch("https://api.example/"),
            fetcher,
            targets=TARGETS,
            known_slugs=SLUGS,
            rules=RULES,
            now=NOW.replace(tzinfo=None),
        )


def test_a_like_is_judged_on_its_author_not_on_our_line(server, api, fetcher, root) -> None:
    # "Liked this post" is our line, not the liker's: the rules see the name and the URL.
    api.children = [
        child(135, source_page(server, "/l1", COFFEE), prop="like-of", name="Ines Varga"),
        child(
            136,
            source_page(server, "/l2", COFFEE),
            prop="like-of",
            name="cheap seo backlinks",
            author_url="https://best-cheap-seo-backlinks.example/",
        ),
    ]
    report = run(root, fetcher, api)
    assert {i.wm_id: i.status for i in report.items} == {135: "pending", 136: "spam"}
