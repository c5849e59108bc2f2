"""Webmention (W3C Recommendation, 12 January 2017): endpoint discovery (3.1.2), sending
(3.1.3) through the guarded client, and link verification for received mentions (3.2.2).

The discovery cases are ours, modelled on the kinds of case webmention.rocks checks. The
sending tests run against real HTTP on 127.0.0.1 (``hostile_server``) with the real Fetcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.webmention import (
    discover_endpoint,
    links_to,
    parse_link_header,
    send_webmention,
    verify_mention,
)
from hostile_server import (
    HostileServer,
    free_port,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
from webmention_receiver import Receiver

PAGE = "https://blog.example/2026/10/coffee-chats.html"
HTML = {"Content-Type": "text/html; charset=utf-8"}
LOCAL = {"timeout": 1.0, "deadline": 2.0, "allowed_private_hosts": frozenset({"127.0.0.1"})}
SOURCE = "https://carnival.example/carnival/networking/2/"


def page(*parts: str) -> bytes:
    """A small HTML page: the parts go into <head> and <body> as written."""
    return ("<!doctype html><html><head><title>Coffee chats</title>" + "".join(parts)).encode()


# -- 3.1.2 discovery: HTTP Link header -------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # absolute endpoint
        (
            {"Link": '<https://mentions.example/endpoint>; rel="webmention"'},
            "https://mentions.example/endpoint",
        ),
        # relative to the host, and relative to the page's folder
        ({"Link": '</mentions/in>; rel="webmention"'}, "https://blog.example/mentions/in"),
        ({"Link": '<receive>; rel="webmention"'}, "https://blog.example/2026/10/receive"),
        # the header name in any case
        ({"LINK": '</a>; rel="webmention"'}, "https://blog.example/a"),
        ({"lInK": '</b>; rel="webmention"'}, "https://blog.example/b"),
        # rel unquoted, in capitals, and among other link types
        ({"Link": "</c>; rel=webmention"}, "https://blog.example/c"),
        ({"Link": '</d>; rel="WebMention"'}, "https://blog.example/d"),
        ({"Link": '</e>; rel="webmention somethingelse"'}, "https://blog.example/e"),
        ({"Link": '</f>; rel="somethingelse webmention"'}, "https://blog.example/f"),
        # spacing around ; and = is allowed
        ({"Link": '</g> ;  rel = "webmention"'}, "https://blog.example/g"),
        # other parameters first, rel second
        ({"Link": '</h>; title="Send mentions here"; rel="webmention"'}, "https://blog.example/h"),
        # several links in one header, the first with webmention wins
        (
            {
                "Link": '</feed.xml>; rel="alternate", </i>; rel="webmention", </j>; rel="webmention"'
            },
            "https://blog.example/i",
        ),
        # several Link headers, as a list of values
        (
            {"Link": ['<https://blog.example/>; rel="home"', '</k>; rel="webmention"']},
            "https://blog.example/k",
        ),
        # commas inside the URL and inside a quoted string do not split links
        (
            {"Link": '</x?a=1,2>; rel="preload"; title="one, two", </l>; rel="webmention"'},
            "https://blog.example/l",
        ),
        # the endpoint's query string is kept as it is
        ({"Link": '</wm?token=z9&v=2>; rel="webmention"'}, "https://blog.example/wm?token=z9&v=2"),
        # only the first rel counts (RFC 8288 §3.3)
        (
            {"Link": '</m>; rel="preload"; rel="webmention", </n>; rel=webmention'},
            "https://blog.example/n",
        ),
        # a link-value that is junk is skipped, the next one still read
        ({"Link": 'junk; rel="webmention", </o>; rel="webmention"'}, "https://blog.example/o"),
        # a non-http(s) endpoint does not count; the next candidate does
        (
            {"Link": '<mailto:mentions@blog.example>; rel="webmention", </p>; rel="webmention"'},
            "https://blog.example/p",
        ),
        # an empty reference is the page itself
        ({"Link": '<>; rel="webmention"'}, PAGE),
        # not webmention
        ({"Link": '</q>; rel="not-webmention"'}, None),
        ({"Link": '</r>; rel="webmentions"'}, None),
        ({"Link": "</s>; title=webmention"}, None),
        ({}, None),
    ],
)
def test_link_header_discovery(headers: dict, expected: str | None) -> None:
    assert discover_endpoint(PAGE, headers, b"") == expected


def test_a_fetch_result_s_joined_link_headers_are_read() -> None:
    # httpx joins repeated headers with ", ": that is the shape a FetchResult carries.
    joined = {"link": '<https://blog.example/>; rel="home", </wm>; rel="webmention"'}
    assert discover_endpoint(PAGE, joined, b"") == "https://blog.example/wm"


def test_parse_link_header_keeps_order_and_unquotes() -> None:
    value = r'<https://a.example/x,y>; rel="a b"; title="say \"hi\", ok", </z>;rel=c'
    assert parse_link_header(value) == [
        ("https://a.example/x,y", {"rel": "a b", "title": 'say "hi", ok'}),
        ("/z", {"rel": "c"}),
    ]


def test_link_header_takes_precedence_over_html() -> None:
    headers = {**HTML, "Link": '</from-header>; rel="webmention"'}
    body = page('<link rel="webmention" href="/from-link">', "<body>")
    assert discover_endpoint(PAGE, headers, body) == "https://blog.example/from-header"


# -- 3.1.2 discovery: <link> and <a> ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            page('<link rel="webmention" href="https://mentions.example/in">'),
            "https://mentions.example/in",
        ),
        (page('<link rel="webmention" href="/in">'), "https://blog.example/in"),
        (
            page('<body><p>Mentions: <a rel="webmention" href="/a-in">here</a>'),
            "https://blog.example/a-in",
        ),
        # attribute and element names in any case, unquoted values
        (page("<LINK REL=WebMention HREF=/caps>"), "https://blog.example/caps"),
        (page("<link href=/rev rel=webmention>"), "https://blog.example/rev"),
        # rel as a token list
        (page('<link rel="me webmention" href="/two">'), "https://blog.example/two"),
        (page('<link rel="  webmention\tpingback " href="/ws">'), "https://blog.example/ws"),
        # document order between <link> and <a>: whichever comes first
        (
            page(
                '</head><body><a rel="webmention" href="/a-first">x</a><link rel="webmention" href="/link-second">'
            ),
            "https://blog.example/a-first",
        ),
        (
            page(
                '<link rel="webmention" href="/link-first"></head><body><a rel="webmention" href="/a-second">x</a>'
            ),
            "https://blog.example/link-first",
        ),
        # an element with the rel but no href is skipped
        (
            page('<link rel="webmention"><a rel="webmention" href="/after">x</a>'),
            "https://blog.example/after",
        ),
        # an empty href, or an href of only spaces, is the page itself
        (page('<link rel="webmention" href="">'), PAGE),
        (page('<a rel="webmention" href="  ">x</a>'), PAGE),
        (page("<link rel=webmention href>"), PAGE),
        # the query string is kept (and &amp; is an ampersand)
        (
            page('<link rel="webmention" href="/in?key=7&amp;ver=2">'),
            "https://blog.example/in?key=7&ver=2",
        ),
        (page('<link rel="webmention" href="?page=mentions">'), PAGE + "?page=mentions"),
        # not webmention
        (page('<link rel="not-webmention" href="/no">'), None),
        (page('<link rel="webmention-endpoint" href="/no">'), None),
        (page('<link rel="alternate" href="/webmention">'), None),
        # other elements with the rel do not count
        (page('<area rel="webmention" href="/no"><form rel="webmention" action="/no">'), None),
        # a non-http(s) endpoint does not count; the next one does
        (
            page(
                '<link rel="webmention" href="javascript:alert(1)"><link rel="webmention" href="/ok">'
            ),
            "https://blog.example/ok",
        ),
        (page('<a rel="webmention" href="ftp://blog.example/in">x</a>'), None),
    ],
)
def test_html_discovery(body: bytes, expected: str | None) -> None:
    assert discover_endpoint(PAGE, HTML, body) == expected


@pytest.mark.parametrize(
    "decoy",
    [
        '<!-- <link rel="webmention" href="/decoy"> -->',
        '<!--\n<a rel="webmention" href="/decoy">old endpoint</a>\n-->',
        '<pre>&lt;link rel="webmention" href="/decoy"&gt;</pre>',
        '<p>Write <code>&lt;a rel="webmention" href="/decoy"&gt;</code> in your page.</p>',
        '<script>var tag = \'<link rel="webmention" href="/decoy">\';</script>',
        '<textarea><link rel="webmention" href="/decoy"></textarea>',
        '<style>/* <a rel="webmention" href="/decoy"> */</style>',
        '<noframes><a rel="webmention" href="/decoy">x</a></noframes>',
    ],
)
def test_decoys_in_comments_and_escaped_text_are_ignored(decoy: str) -> None:
    body = page("</head><body>", decoy, '<a rel="webmention" href="/real">endpoint</a>')
    assert discover_endpoint(PAGE, HTML, body) == "https://blog.example/real"
    assert discover_endpoint(PAGE, HTML, page("</head><body>", decoy)) is None


def test_relative_endpoints_resolve_against_the_final_url() -> None:
    final = "https://new-home.example/posts/coffee-chats/"
    body = page('<link rel="webmention" href="mentions">')
    assert (
        discover_endpoint(final, HTML, body)
        == "https://new-home.example/posts/coffee-chats/mentions"
    )
    header = {"Link": '<../inbox>; rel="webmention"'}
    assert discover_endpoint(final, header, b"") == "https://new-home.example/posts/inbox"


def test_html_is_decoded_by_its_own_encoding() -> None:
    body = '<link rel="webmention" href="/utf16">'.encode("utf-16")  # with a BOM
    assert discover_endpoint(PAGE, {}, body) == "https://blog.example/utf16"
    latin = '<meta charset="iso-8859-1"><title>Café</title><link rel="webmention" href="/é">'
    assert discover_endpoint(PAGE, {}, latin.encode("latin-1")) == "https://blog.example/é"


def test_html_elements_count_only_in_html_documents() -> None:
    body = b'<link rel="webmention" href="/in">'
    assert discover_endpoint(PAGE, {"Content-Type": "text/plain"}, body) is None
    assert discover_endpoint(PAGE, {"content-type": "application/xhtml+xml"}, body) == (
        "https://blog.example/in"
    )
    assert discover_endpoint(PAGE, {}, body) == "https://blog.example/in"  # no type: sniffed
    text_with_header = {"Content-Type": "text/plain", "Link": "</h>; rel=webmention"}
    assert discover_endpoint(PAGE, text_with_header, body) == "https://blog.example/h"


def test_garbage_never_raises() -> None:
    for body in (b"", b"<", b"<a rel=webmention href='", b"\xff\xfe\x00<", b"<!--" * 1000):
        assert discover_endpoint(PAGE, HTML, body) is None
    assert discover_endpoint(PAGE, {"Link": "<"}, None) is None


# -- 3.1.3 sending, over real HTTP -------------------------------------------------------------


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings(**LOCAL)) as f:
        yield f


@pytest.fixture
def server(hostile_server: Callable[..., HostileServer]) -> HostileServer:
    return hostile_server("127.0.0.1")


def target_page(
    server: HostileServer, path: str, *, link: str | None = None, html: str = ""
) -> str:
    headers = {"Content-Type": "text/html; charset=utf-8"}
    if link:
        headers["Link"] = link
    return server.route(path, body=page(html, "<body><p>A post.</p>"), headers=headers)


def test_a_webmention_is_a_form_encoded_post_of_source_and_target(server, fetcher) -> None:
    receiver = Receiver(server, "/wm", status=202)
    target = target_page(server, "/post", link='</wm>; rel="webmention"')
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status, result.endpoint) == ("sent", 202, receiver.url)
    assert result.ok and result.error is None
    (post,) = receiver.posts
    assert post.method == "POST" and post.path == "/wm"
    assert post.content_type == "application/x-www-form-urlencoded"
    assert post.fields == {"source": [SOURCE], "target": [target]}


def test_the_endpoint_s_query_string_stays_in_the_url(server, fetcher) -> None:
    receiver = Receiver(server, "/wm", status=202)
    target = target_page(
        server, "/post", html='<link rel="webmention" href="/wm?token=k3&amp;x=1">'
    )
    result = send_webmention(fetcher, SOURCE, target)
    assert result.ok and result.endpoint == server.url("/wm?token=k3&x=1")
    (post,) = receiver.posts
    assert post.path == "/wm?token=k3&x=1"
    assert post.fields == {"source": [SOURCE], "target": [target]}  # not in the body


def test_201_created_gives_a_status_page(server, fetcher) -> None:
    Receiver(server, "/wm", status=201, headers={"Location": "/wm/status/41"})
    target = target_page(server, "/post", html='<link rel="webmention" href="/wm">')
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status) == ("sent", 201)
    assert result.location == server.url("/wm/status/41")


@pytest.mark.parametrize("status", [200, 202, 204, 299])
def test_any_2xx_is_success(server, fetcher, status: int) -> None:
    Receiver(server, "/wm", status=status)
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status) == ("sent", status)


def test_a_relative_endpoint_after_a_redirect(server, fetcher) -> None:
    receiver = Receiver(server, "/2026/wm", status=202)
    target_page(server, "/2026/moved-post", link='<wm>; rel="webmention"')
    target = server.redirect("/old-post", "/2026/moved-post", status=301)
    result = send_webmention(fetcher, SOURCE, target)
    assert result.ok and result.endpoint == server.url("/2026/wm")
    # the target sent is the URL as linked, not the one it redirects to
    assert receiver.posts[0].fields["target"] == [target]


def test_a_500_is_a_failure_with_the_receiver_s_words(server, fetcher) -> None:
    Receiver(
        server,
        "/wm",
        status=500,
        headers={"Content-Type": "text/plain"},
        body=b"database is\nresting\x1b[31m",
    )
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status) == ("failed", 500)
    assert result.error == "HTTP 500: database is resting [31m"


def test_a_400_is_a_failure(server, fetcher) -> None:
    Receiver(server, "/wm", status=400, headers={"Content-Type": "text/html"}, body=b"<h1>No</h1>")
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status, result.error) == ("failed", 400, "HTTP 400")


def test_a_receiver_that_never_answers_times_out(server, fetcher) -> None:
    endpoint = server.hang("/wm")
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    result = send_webmention(fetcher, SOURCE, target)
    assert result.outcome == "failed" and result.endpoint == endpoint
    assert result.error == "timed out after 1 s"
    assert len(server.requests_to("/wm")) == 1


def test_a_redirect_from_the_endpoint_is_not_followed(server, fetcher) -> None:
    elsewhere = Receiver(server, "/elsewhere", status=202)
    server.redirect("/wm", "/elsewhere", status=307)
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.status) == ("failed", 307)
    assert result.error == "HTTP 307 (a redirect; not followed for a POST)"
    assert elsewhere.posts == []


def test_an_endpoint_on_a_private_address_is_refused(server, fetcher) -> None:
    # Only 127.0.0.1 is allowed; 127.0.0.2 is loopback too. Nothing listens there: the policy
    # must refuse before connecting (a connection attempt would say "connection refused").
    target = target_page(server, "/post", link='<http://127.0.0.2:9/wm>; rel="webmention"')
    result = send_webmention(fetcher, SOURCE, target)
    assert result.outcome == "failed" and result.endpoint == "http://127.0.0.2:9/wm"
    assert result.error == "refused address 127.0.0.2 for 127.0.0.2 (loopback)"


def test_a_private_endpoint_is_tried_when_allowed(server) -> None:
    # The same setting as for feeds: with 127.0.0.2 allowed, the POST is attempted (nothing
    # listens there, so the connection itself is refused, not the address).
    port = free_port("127.0.0.2")
    target = target_page(server, "/post", link=f'<http://127.0.0.2:{port}/wm>; rel="webmention"')
    allowed = frozenset({"127.0.0.1", "127.0.0.2"})
    with Fetcher(FetchSettings(**{**LOCAL, "allowed_private_hosts": allowed})) as lenient:
        result = send_webmention(lenient, SOURCE, target)
    assert (result.outcome, result.error) == ("failed", "connection refused")


def test_the_target_page_is_under_the_address_policy_too(server) -> None:
    receiver = Receiver(server, "/wm", status=202)
    target = target_page(server, "/post", link='</wm>; rel="webmention"')
    with Fetcher(FetchSettings(**{**LOCAL, "allowed_private_hosts": frozenset()})) as strict:
        refused = send_webmention(strict, SOURCE, target)
    assert refused.outcome == "failed"
    assert refused.error == "could not fetch it: refused address 127.0.0.1 for 127.0.0.1 (loopback)"
    assert receiver.posts == [] and server.request_count == 0


def test_a_page_without_an_endpoint(server, fetcher) -> None:
    target = target_page(server, "/post", html='<link rel="pingback" href="/xmlrpc">')
    result = send_webmention(fetcher, SOURCE, target)
    assert (result.outcome, result.endpoint, result.error) == ("no-endpoint", None, None)
    assert [r.method for r in server.requests] == ["GET"]


def test_a_target_that_cannot_be_fetched(server, fetcher) -> None:
    result = send_webmention(fetcher, SOURCE, server.url("/missing"))
    assert (result.outcome, result.error) == ("failed", "could not fetch it: HTTP 404")
    result = send_webmention(fetcher, SOURCE, "gopher://blog.example/post")
    assert (result.outcome, result.error) == (
        "failed",
        "could not fetch it: refused scheme 'gopher'",
    )


def test_a_page_already_fetched_is_not_fetched_again(server, fetcher) -> None:
    Receiver(server, "/wm", status=202)
    target = target_page(server, "/post", link="</wm>; rel=webmention")
    fetched = fetcher.fetch(target)
    assert send_webmention(fetcher, SOURCE, target, page=fetched).ok
    assert len(server.requests_to("/post")) == 1


def test_post_form_sends_nothing_offline(server) -> None:
    receiver = Receiver(server, "/wm", status=202)
    with Fetcher(FetchSettings(**LOCAL, offline=True)) as offline:
        result = offline.post_form(receiver.url, {"source": SOURCE, "target": PAGE})
    assert result.error == "offline: nothing sent" and receiver.posts == []


def test_post_form_refuses_other_schemes(fetcher) -> None:
    result = fetcher.post_form("file:///etc/passwd", {"source": SOURCE})
    assert result.error == "refused scheme 'file'" and result.status is None


# -- 3.2.2 verification: does the source link to the target? ----------------------------------

TARGET = "https://carnival.example/carnival/networking/2/"
BASE = "https://blog.example/2026/11/thanks.html"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (f'<a href="{TARGET}">the roundup</a>', True),
        ('<a href="/carnival/networking/2/">roundup</a>', False),  # another host when resolved
        ('<a href="//carnival.example/carnival/networking/2/">roundup</a>', True),
        (f'<img src="{TARGET}">', True),
        (f'<video src="{TARGET}"></video>', True),
        (f'<audio src="{TARGET}"></audio>', True),
        (f'<video><source src="{TARGET}"></video>', True),
        (f'<area href="{TARGET}">', True),
        (f'<A HREF="{TARGET}">caps</A>', True),
        # exact match only
        (f'<a href="{TARGET}#comments">roundup</a>', False),
        (f'<a href="{TARGET}?utm_source=x">roundup</a>', False),
        (f'<a href="{TARGET.rstrip("/")}">roundup</a>', False),
        ('<a href="https://carnival.example/carnival/networking/3/">the next one</a>', False),
        # not links
        (f"<p>{TARGET}</p>", False),
        (f'<link rel="alternate" href="{TARGET}">', False),
        (f'<img href="{TARGET}">', False),
        (f'<!-- <a href="{TARGET}">roundup</a> -->', False),
        (f'<pre>&lt;a href="{TARGET}"&gt;</pre>', False),
        (f"<script>document.write('<a href=\"{TARGET}\">')</script>", False),
        (f'<textarea><a href="{TARGET}"></a></textarea>', False),
    ],
)
def test_links_to(html: str, expected: bool) -> None:
    body = f"<!doctype html><title>Thanks</title><body>{html}</body>".encode()
    assert links_to(body, HTML, BASE, TARGET) is expected


def test_links_to_resolves_relative_links() -> None:
    body = b'<body><a href="../../../carnival/networking/2/">the roundup</a>'
    assert links_to(body, HTML, "https://carnival.example/a/b/c/post.html", TARGET)
    based = b'<base href="https://carnival.example/carnival/"><a href="networking/2/">roundup</a>'
    assert links_to(based, HTML, BASE, TARGET)


def test_links_to_other_media_types() -> None:
    data = b'{"items": [{"url": "https://x.example/"}, {"in-reply-to": ["%s"]}]}' % TARGET.encode()
    assert links_to(data, {"Content-Type": "application/json"}, BASE, TARGET)
    assert not links_to(
        b'{"url": "%s#x"}' % TARGET.encode(), {"Content-Type": "application/json"}, BASE, TARGET
    )
    assert not links_to(b"[[[[", {"Content-Type": "application/json"}, BASE, TARGET)
    assert links_to(f"See {TARGET} today".encode(), {"Content-Type": "text/plain"}, BASE, TARGET)
    assert not links_to(TARGET.encode(), {"Content-Type": "image/png"}, BASE, TARGET)
    assert not links_to(b'<a href="javascript:x">', HTML, BASE, "javascript:x")


def test_verify_mention(server, fetcher) -> None:
    target = "https://carnival.example/carnival/networking/2/"
    linking = server.route("/thanks", body=f'<a href="{target}">roundup</a>'.encode(), headers=HTML)
    silent = server.route("/silent", body=b"<p>no links here</p>", headers=HTML)
    gone = server.route("/gone", status=410)

    assert verify_mention(fetcher, linking, target).outcome == "verified"
    assert verify_mention(fetcher, silent, target).outcome == "no-link"
    assert verify_mention(fetcher, gone, target).outcome == "gone"
    failed = verify_mention(fetcher, server.url("/missing"), target)
    assert (failed.outcome, failed.reason) == ("failed", "could not fetch the source: HTTP 404")
    same = verify_mention(fetcher, target, target + "#top")
    assert (same.outcome, same.reason) == ("refused", "source and target are the same URL")
    assert verify_mention(fetcher, "mailto:a@b.example", target).outcome == "refused"
    private = verify_mention(fetcher, "http://127.0.0.2:9/post", target)
    assert private.outcome == "failed"
    assert (
        private.reason
        == "could not fetch the source: refused address 127.0.0.2 for 127.0.0.2 (loopback)"
    )
