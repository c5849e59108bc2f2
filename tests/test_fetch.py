"""The fetch stage against real misbehaving servers on 127.0.0.x (see hostile_server.py)."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pycurl
import pytest
from blog_carnival.cache import HttpCache
from blog_carnival.fetch import ACCEPT, Fetcher, FetchSettings, _Exchange, format_size
from blog_carnival.model import FetchResult
from cache_rows import set_row, stored
from hostile_server import (
    HostileServer,
    free_port,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polling import wait_for

MiB = 1024 * 1024
LOCAL = frozenset({"127.0.0.1"})
FAST = {"timeout": 1.0, "deadline": 2.0, "max_bytes": MiB, "allowed_private_hosts": LOCAL}

Make = Callable[..., Fetcher]


@pytest.fixture
def make_fetcher() -> Iterator[Make]:
    """Factory for fetchers with short test limits; every one is closed at teardown."""
    fetchers: list[Fetcher] = []

    def make(cache: HttpCache | None = None, *, resolver=None, **overrides: object) -> Fetcher:  # noqa: ANN001
        fetcher = Fetcher(FetchSettings(**{**FAST, **overrides}), cache, resolver=resolver)
        fetchers.append(fetcher)
        return fetcher

    yield make
    for fetcher in fetchers:
        fetcher.close()


@pytest.fixture
def server(hostile_server) -> HostileServer:
    return hostile_server("127.0.0.1")


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host}:{port}")


# -- 1. schemes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("FILE:///etc/passwd", "file"),
        ("ftp://ftp.example.com/feed.xml", "ftp"),
        ("data:application/xml,<rss/>", "data"),
        ("javascript:alert(1)", "javascript"),
        ("gopher://example.com/1", "gopher"),
    ],
)
@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
def test_other_schemes_are_refused_without_io(
    make_fetcher: Make, tmp_path, url: str, scheme: str, cached: bool
) -> None:
    cache = HttpCache(tmp_path / "http") if cached else None
    result = make_fetcher(cache, resolver=no_dns).fetch(url)
    assert result.error == f"refused scheme '{scheme}'"
    assert result.body is None and not result.ok


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("example.com/feed.xml", "invalid URL (no scheme)"),
        ("http:///feed.xml", "invalid URL (no host)"),
    ],
)
@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
def test_urls_without_scheme_or_host_are_refused(
    make_fetcher: Make, tmp_path, url: str, error: str, cached: bool
) -> None:
    cache = HttpCache(tmp_path / "http") if cached else None
    assert make_fetcher(cache, resolver=no_dns).fetch(url).error == error


@pytest.mark.parametrize("url", [None, b"http://127.0.0.1/feed.xml", 42])
@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
def test_a_url_that_is_not_a_string_is_refused(
    make_fetcher: Make, tmp_path, url: object, cached: bool
) -> None:
    """Before anything else, the cache included: a cache file is named by the URL's text."""
    cache = HttpCache(tmp_path / "http") if cached else None
    fetcher = make_fetcher(cache, resolver=no_dns)
    assert fetcher.fetch(url).error == "invalid URL (not a string)"  # type: ignore[arg-type]
    together = fetcher.fetch_all([url, "ftp://example.com/feed.xml"])  # type: ignore[list-item]
    assert [r.error for r in together.values()] == [
        "invalid URL (not a string)",
        "refused scheme 'ftp'",
    ]


# -- 2. address policy, at connect time --------------------------------------------------------


def test_loopback_servers_that_are_not_allowed_see_nothing(
    make_fetcher: Make, hostile_server
) -> None:
    two, three = hostile_server("127.0.0.2"), hostile_server("127.0.0.3")
    fetcher = make_fetcher()  # allows 127.0.0.1 only
    for srv in (two, three):
        result = fetcher.fetch(srv.route("/feed.xml", body=b"<rss/>"))
        assert result.error == f"refused address {srv.host} for {srv.host} (loopback)"
        assert srv.request_count == 0 and srv.connections_total == 0


def test_an_allowed_private_address_is_fetched(make_fetcher: Make, hostile_server) -> None:
    two = hostile_server("127.0.0.2")
    result = make_fetcher(allowed_private_hosts={"127.0.0.2"}).fetch(two.route("/f", body=b"ok"))
    assert result.ok and result.body == b"ok"
    assert len(two.requests_to("/f")) == 1


def test_redirect_to_a_disallowed_address_is_refused(
    make_fetcher: Make, server, hostile_server
) -> None:
    three = hostile_server("127.0.0.3")
    target = three.route("/secret", body=b"secret")
    result = make_fetcher().fetch(server.redirect("/go", target))
    assert result.error == "refused address 127.0.0.3 for 127.0.0.3 (loopback)"
    assert result.final_url == target and result.body is None
    assert len(server.requests_to("/go")) == 1
    assert three.request_count == 0 and three.connections_total == 0


def test_dns_rebinding_never_reaches_the_rebound_address(
    make_fetcher: Make, server, hostile_server
) -> None:
    """A name is looked up and checked once in a fetcher's life, and libcurl is pinned to
    what was checked: a later DNS answer (a rebinding attack's) is never used, even for a
    new connection; the next fetcher (the next build) looks again and checks that answer."""
    # Same port on 127.0.0.3: the name "feed.test" first resolves to the allowed 127.0.0.1,
    # then (a rebinding attack) to 127.0.0.3.
    three = hostile_server("127.0.0.3", server.port)
    server.route("/feed.xml", body=b"public", close=True)  # each request a new connection
    three.route("/feed.xml", body=b"internal")
    answers = iter([["127.0.0.1"], ["127.0.0.3"]])
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    fetcher = make_fetcher(resolver=resolver)
    url = f"http://feed.test:{server.port}/feed.xml"
    assert fetcher.fetch(url).body == b"public"
    assert fetcher.fetch(url).body == b"public"  # a new connection, to the checked address
    assert asked == ["feed.test"] and server.connections_total == 2
    later = make_fetcher(resolver=resolver)
    assert later.fetch(url).error == "refused address 127.0.0.3 for feed.test (loopback)"
    assert three.connections_total == 0


def test_a_name_with_any_refused_address_is_refused(make_fetcher: Make, server) -> None:
    fetcher = make_fetcher(resolver=lambda host, port: ["127.0.0.1", "10.1.2.3"])
    result = fetcher.fetch(f"http://mixed.test:{server.port}/x")
    assert result.error == "refused address 10.1.2.3 for mixed.test (private)"
    assert server.connections_total == 0


def test_cloud_metadata_address_is_refused(make_fetcher: Make) -> None:
    fetcher = make_fetcher(resolver=lambda host, port: ["169.254.169.254"])
    result = fetcher.fetch("http://metadata.test/latest/meta-data/")
    assert result.error == "refused address 169.254.169.254 for metadata.test (link-local)"


@pytest.mark.parametrize("host", ["2130706433", "127.1", "[::ffff:127.0.0.1]"])
def test_disguised_loopback_forms_are_refused(make_fetcher: Make, server, host: str) -> None:
    result = make_fetcher(allowed_private_hosts=frozenset()).fetch(f"http://{host}:{server.port}/")
    assert result.error is not None
    assert result.error.startswith("refused address ") and result.error.endswith("(loopback)")
    assert server.connections_total == 0


def test_an_allowed_host_name_may_resolve_to_a_private_address(
    make_fetcher: Make, hostile_server
) -> None:
    two = hostile_server("127.0.0.2")
    two.route("/f", body=b"ok")
    fetcher = make_fetcher(
        allowed_private_hosts={"intranet.test"}, resolver=lambda h, p: ["127.0.0.2"]
    )
    assert fetcher.fetch(f"http://intranet.test:{two.port}/f").body == b"ok"


def test_dns_failure(make_fetcher: Make) -> None:
    assert (
        make_fetcher().fetch("http://nosuch.invalid/feed").error
        == "DNS lookup failed for nosuch.invalid"
    )

    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert (
        make_fetcher(resolver=broken).fetch("http://x.test/").error
        == "DNS lookup failed for x.test"
    )
    assert make_fetcher(resolver=lambda h, p: []).fetch("http://y.test/").error == (
        "DNS lookup failed for y.test"
    )


# -- 3. redirects --------------------------------------------------------------------------------


def test_redirect_chain_is_followed_and_final_url_reported(make_fetcher: Make, server) -> None:
    result = make_fetcher().fetch(server.redirect_chain("/c", 3, body=b"<feed/>"))
    assert result.ok and result.body == b"<feed/>"
    assert result.final_url == server.url("/c/3") and result.status == 200
    assert [r.path for r in server.requests] == ["/c/0", "/c/1", "/c/2", "/c/3"]


def test_at_most_max_redirects(make_fetcher: Make, server) -> None:
    fetcher = make_fetcher()
    assert fetcher.fetch(server.redirect_chain("/five", 5)).ok
    result = fetcher.fetch(server.redirect_chain("/six", 6))
    assert result.error == "too many redirects (more than 5)"
    assert not server.requests_to("/six/6")
    assert make_fetcher(max_redirects=0).fetch(server.redirect_chain("/one", 1)).error == (
        "too many redirects (more than 0)"
    )


def test_redirect_loop(make_fetcher: Make, server) -> None:
    result = make_fetcher().fetch(server.redirect_loop("/a", "/b"))
    assert result.error == f"redirect loop at {server.url('/a')}"


@pytest.mark.parametrize("location", ["ftp://ftp.example.com/feed.xml", "file:///etc/passwd"])
def test_redirect_to_another_scheme_is_refused(make_fetcher: Make, server, location: str) -> None:
    scheme = location.split(":", 1)[0]
    result = make_fetcher().fetch(server.redirect("/r", location, status=301))
    assert result.error == f"refused redirect to scheme '{scheme}'"


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("mailto:feeds@blog.example", "refused redirect to scheme 'mailto'"),
        ("\tjavascript:alert(1)", "refused redirect to scheme 'javascript'"),
        ("data:text/html,<script>", "refused redirect to scheme 'data'"),
        ("http://[::1", "bad redirect location (InvalidURL: Invalid port: ':1')"),
        ("http://:99999/", "bad redirect location (no host)"),
        ("http://exa mple.invalid/", "DNS lookup failed for exa%20mple.invalid"),
    ],
)
def test_malformed_redirects_are_reported(
    make_fetcher: Make, server, location: str, error: str
) -> None:
    assert make_fetcher().fetch(server.redirect("/w", location)).error == error


def test_relative_redirects_and_every_status(make_fetcher: Make, server) -> None:
    server.route("/feeds/main.xml", body=b"main")
    fetcher = make_fetcher()
    for status in (301, 302, 303, 307, 308):
        result = fetcher.fetch(
            server.redirect(f"/old/{status}", "../feeds/main.xml", status=status)
        )
        assert (result.body, result.final_url) == (b"main", server.url("/feeds/main.xml"))


# -- 4. timeouts and the deadline ----------------------------------------------------------------
# No test here measures seconds: each asserts the reason given, and what the server saw (the
# request, how many bytes it got out before the client hung up, which hops were asked for).
# pytest-timeout is the hang guard; bench/hostile_bench.py measures how long these cases take.

HANG_GUARD = pytest.mark.timeout(60)


@HANG_GUARD
def test_a_server_that_never_answers_times_out(make_fetcher: Make, server) -> None:
    result = make_fetcher(timeout=0.5, deadline=30).fetch(server.hang("/hang"))
    assert result.error == "timed out after 0.5 s"  # the read timeout, not the deadline
    assert len(server.requests_to("/hang")) == 1


@HANG_GUARD
def test_a_kept_connection_that_then_hangs_times_out_once(make_fetcher: Make, server) -> None:
    """The second request goes out on the first one's connection; the read timeout cuts that
    connection, and libcurl's retry of a request on a cut kept-alive connection is refused:
    the server is asked once, and the reason is the read timeout."""
    fetcher = make_fetcher(timeout=0.5, deadline=30)
    assert fetcher.fetch(server.route("/first", body=b"ok")).body == b"ok"
    for path, send in (("/hang", fetcher.fetch), ("/post-hang", None)):
        url = server.hang(path)
        result = send(url) if send else fetcher.post_form(url, {"source": "a", "target": "b"})
        assert result.error == "timed out after 0.5 s"
        assert len(server.requests_to(path)) == 1


@HANG_GUARD
def test_a_posts_answer_is_its_status_whatever_its_body(make_fetcher: Make, server) -> None:
    """A POST (a Webmention) is answered by its status line: a body past the cap, or cut off,
    leaves the status standing, with no body."""
    fetcher = make_fetcher(max_bytes=1000)
    huge = server.huge("/big", size=100_000)
    result = fetcher.post_form(huge, {"source": "a", "target": "b"})
    assert (result.status, result.error, result.body) == (200, None, b"")

    def cut_short(h) -> None:  # noqa: ANN001
        h.send_response(202)
        h.send_header("Content-Length", "500")
        h.end_headers()
        h.wfile.write(b"accepted, and then")
        h.close_connection = True

    result = fetcher.post_form(server.handler("/cut", cut_short), {"source": "a"})
    assert (result.status, result.error, result.body) == (202, None, b"")


def test_a_request_goes_only_to_a_checked_address() -> None:
    """libcurl is pinned to the addresses the guard checked; the last look before the request
    goes out (CURLOPT_PREREQFUNCTION) refuses any other, should one ever be connected."""
    exchange = _Exchange(lambda status: True, MiB, frozenset({"127.0.0.1"}))
    assert exchange.ready("127.0.0.1", "127.0.0.1", 80, 50000) == pycurl.PREREQFUNC_OK
    assert exchange.ready("10.0.0.7", "10.0.0.1", 80, 50000) == pycurl.PREREQFUNC_ABORT
    assert str(exchange.fault) == (
        "refused address 10.0.0.7 for this request (not the checked address)"
    )


@HANG_GUARD
@pytest.mark.parametrize("kind", ["body", "headers"])
def test_a_trickling_server_is_cut_at_the_deadline(make_fetcher: Make, server, kind: str) -> None:
    # A byte every 50 ms, far inside the 5 s read timeout, so only the deadline can stop it;
    # the whole answer would take minutes.
    if kind == "body":
        url, total = server.trickle("/t", size=10_000, rate=20), 10_000
    else:
        url, total = server.trickle_headers("/t", 20), 281  # its whole answer
    result = make_fetcher(timeout=5.0, deadline=2.0).fetch(url)
    assert result.error == "timed out after 2 s"
    assert 1 < server.bytes_sent["/t"] < total  # it was read for a while, then cut off


@HANG_GUARD
def test_the_deadline_covers_all_redirect_hops(make_fetcher: Make, server) -> None:
    # Each hop answers well inside the 5 s read timeout; together they pass the 2 s deadline.
    for i in range(4):
        server.route(f"/slow/{i}", status=302, headers={"Location": f"/slow/{i + 1}"}, delay=0.6)
    server.route("/slow/4", body=b"late")
    result = make_fetcher(timeout=5.0, deadline=2.0).fetch(server.url("/slow/0"))
    assert result.error == "timed out after 2 s"
    assert server.requests_to("/slow/0") and not server.requests_to("/slow/4")


# -- 5. the size cap on the decoded body ----------------------------------------------------------


def _peak_during(fn: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        value = fn()
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("chunked", [True, False])
def test_a_huge_body_is_cut_off_while_streaming(make_fetcher: Make, server, chunked: bool) -> None:
    url = server.huge("/huge", 100 * MiB, chunked=chunked)
    fetcher = make_fetcher()
    result, peak = _peak_during(lambda: fetcher.fetch(url))
    assert result.error == "too large (more than 1 MiB)"
    assert peak < 8 * MiB
    assert server.bytes_sent.get("/huge", 0) < 20 * MiB


def test_a_gzip_bomb_is_cut_off_after_inflating_the_cap(make_fetcher: Make, server) -> None:
    url = server.gzip_bomb("/bomb", size_mib=300)
    fetcher = make_fetcher()
    result, peak = _peak_during(lambda: fetcher.fetch(url))
    assert result.error == "too large (more than 1 MiB)"
    assert peak < 8 * MiB  # the whole thing would be 300 MiB


def test_the_cap_is_on_decoded_bytes_exactly(make_fetcher: Make, server) -> None:
    fetcher = make_fetcher(max_bytes=100_000)
    at_cap = server.route(
        "/at", body=gzip.compress(b"a" * 100_000), headers={"Content-Encoding": "gzip"}
    )
    over = server.route(
        "/over", body=gzip.compress(b"a" * 100_001), headers={"Content-Encoding": "gzip"}
    )
    assert fetcher.fetch(at_cap).body == b"a" * 100_000
    assert fetcher.fetch(over).error == f"too large (more than {format_size(100_000)})"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send it
        ("identity", lambda d: d),
        ("gzip, gzip", lambda d: gzip.compress(gzip.compress(d))),
    ],
)
def test_content_encodings_are_decoded(make_fetcher: Make, server, encoding: str, encode) -> None:  # noqa: ANN001
    body = b"<rss>" + b"entry " * 50_000 + b"</rss>"
    url = server.route("/enc", body=encode(body), headers={"Content-Encoding": encoding})
    result = make_fetcher().fetch(url)
    assert result.body == body
    assert "content-encoding" not in result.headers  # the body we hand on is decoded


def test_unsupported_or_broken_encodings_are_errors(make_fetcher: Make, server) -> None:
    fetcher = make_fetcher()
    br = server.route("/br", body=b"\x0b\x02\x80", headers={"Content-Encoding": "br"})
    assert fetcher.fetch(br).error == "unsupported content-encoding 'br'"
    bad = server.route("/bad", body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert fetcher.fetch(bad).error.startswith("undecodable gzip body (")


# -- 6. statuses and transport faults -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (404, {}, "HTTP 404"),
        (410, {}, "HTTP 410 (gone)"),
        (429, {"Retry-After": "120"}, "HTTP 429 (rate limited; Retry-After: 120)"),
        (429, {}, "HTTP 429 (rate limited)"),
        (500, {}, "HTTP 500"),
        (503, {"Retry-After": "3600"}, "HTTP 503"),
        (403, {}, "HTTP 403"),
    ],
)
@pytest.mark.timeout(60)  # Retry-After is reported, never slept on (a sleep would hang here)
def test_http_error_statuses(
    make_fetcher: Make, server, status: int, headers: dict, error: str
) -> None:
    result = make_fetcher().fetch(server.route("/s", body=b"oops", status=status, headers=headers))
    assert (result.error, result.status, result.body) == (error, status, None)
    assert len(server.requests_to("/s")) == 1


def test_connection_refused(make_fetcher: Make) -> None:
    assert make_fetcher().fetch(f"http://127.0.0.1:{free_port()}/").error == "connection refused"


def test_other_transport_faults_are_plain_reasons(make_fetcher: Make, server) -> None:
    def hang_up(h) -> None:  # noqa: ANN001
        h.close_connection = True

    def garbage(h) -> None:  # noqa: ANN001
        h.wfile.write(b"SPDY/9 banana\r\n\r\n")
        h.close_connection = True

    fetcher = make_fetcher()
    assert fetcher.fetch(server.handler("/hangup", hang_up)).error == (
        "protocol error (the server closed the connection without answering)"
    )
    garbled = fetcher.fetch(server.handler("/garbage", garbage)).error
    assert garbled.startswith("protocol error (") and garbled != "protocol error ()"
    tls = fetcher.fetch(f"https://127.0.0.1:{server.port}/")  # TLS to a plain HTTP server
    assert tls.error.startswith("TLS handshake failed (")


# Host labels that cannot end the host part early, so no example reaches a real address.
HOST_JUNK = st.characters(exclude_characters="/?#@\\:[]")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.text(max_size=40), label=st.text(HOST_JUNK, max_size=20), path=st.text(max_size=40))
def test_fetch_never_raises(make_fetcher: Make, junk: str, label: str, path: str) -> None:
    def refuse(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "no")

    fetcher = make_fetcher(resolver=refuse, allowed_private_hosts=frozenset())
    for url in (junk, f"{junk}://nosuch.invalid/{path}", f"http://{label}.invalid/{path}"):
        result = fetcher.fetch(url)
        assert result.error and result.body is None


# -- 7. conditional GET and the cache --------------------------------------------------------------

LAST_MODIFIED = "Tue, 03 Nov 2026 10:00:00 GMT"


def test_conditional_get_answers_304_from_the_cache(make_fetcher: Make, server, tmp_path) -> None:
    url = server.route("/feed.xml", body=b"<rss>v1</rss>", etag='"v1"', last_modified=LAST_MODIFIED)
    fetcher = make_fetcher(HttpCache(tmp_path))
    first = fetcher.fetch(url)
    assert (first.status, first.from_cache, first.not_modified) == (200, False, False)
    assert first.digest == hashlib.sha256(b"<rss>v1</rss>").hexdigest()

    second = fetcher.fetch(url)
    sent = server.requests_to("/feed.xml")[-1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == LAST_MODIFIED
    assert (second.status, second.from_cache, second.not_modified) == (304, True, True)
    assert second.body == first.body and second.digest == first.digest
    assert second.headers["etag"] == '"v1"' and second.final_url == url


def test_a_run_reads_only_the_entries_the_cache_had(make_fetcher: Make, server, tmp_path) -> None:
    """``fetch_each`` asks the cache once which URLs it has; a URL it did not have is not
    looked up again before its request (a first build's lookups would queue behind its
    writes), and one it had is revalidated as before."""
    old = server.route("/old.xml", body=b"<rss>old</rss>", etag='"o"')
    new = [server.route(f"/new/{n}.xml", body=b"<rss>new</rss>") for n in range(3)]
    cache = HttpCache(tmp_path)
    fetcher = make_fetcher(cache)
    assert fetcher.fetch(old).ok
    cache.flush()
    read: list[str] = []
    cache._db.set_trace_callback(read.append)
    results = {r.url: r for r in fetcher.fetch_each([old, *new])}
    cache._db.set_trace_callback(None)
    assert results[old].not_modified and all(results[u].status == 200 for u in new)
    looked_up = [q for q in read if q.startswith("SELECT meta, body")]
    assert len(looked_up) == 1 and old in looked_up[0], looked_up
    assert all(cache.get(u).body == b"<rss>new</rss>" for u in new)  # stored all the same


def test_last_modified_alone_revalidates(make_fetcher: Make, server, tmp_path) -> None:
    url = server.route("/lm", body=b"x", last_modified=LAST_MODIFIED)
    fetcher = make_fetcher(HttpCache(tmp_path))
    fetcher.fetch(url)
    assert fetcher.fetch(url).not_modified
    assert "if-none-match" not in server.requests_to("/lm")[-1].headers


def test_validators_go_to_the_final_url_after_redirects(
    make_fetcher: Make, server, tmp_path
) -> None:
    server.route("/real.xml", body=b"feed", etag='"e"')
    url = server.redirect("/moved", "/real.xml", status=301)
    fetcher = make_fetcher(HttpCache(tmp_path))
    fetcher.fetch(url)
    result = fetcher.fetch(url)
    assert result.not_modified and result.final_url == server.url("/real.xml")
    assert "if-none-match" not in server.requests_to("/moved")[-1].headers
    assert server.requests_to("/real.xml")[-1].headers["if-none-match"] == '"e"'


def test_a_failed_fetch_leaves_the_cache_untouched(make_fetcher: Make, server, tmp_path) -> None:
    cache = HttpCache(tmp_path)
    url = server.route("/feed.xml", body=b"good", etag='"g"')
    fetcher = make_fetcher(cache)
    assert fetcher.fetch(url).ok
    before = stored(tmp_path, url)
    server.route("/feed.xml", body=b"broken", status=500)
    assert fetcher.fetch(url).error == "HTTP 500"
    assert stored(tmp_path, url) == before
    assert cache.get(url).body == b"good"


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_a_damaged_cache_entry_is_discarded_and_fetched_again(
    make_fetcher: Make, server, tmp_path, caplog, damage: str
) -> None:
    cache = HttpCache(tmp_path)
    url = server.route("/feed.xml", body=b"<rss>" + b"x" * 1000 + b"</rss>", etag='"t"')
    fetcher = make_fetcher(cache)
    fetcher.fetch(url)
    data = stored(tmp_path, url)[1]
    if damage == "truncated":
        set_row(tmp_path, url, body=data[:-300])  # a partial write
    else:
        set_row(tmp_path, url, body=data[:-10] + bytes([data[-10] ^ 0x20]) + data[-9:])  # bit rot
    result = fetcher.fetch(url)
    assert result.ok and result.status == 200 and not result.from_cache
    assert "if-none-match" not in server.requests_to("/feed.xml")[-1].headers  # unconditional
    notices = [r for r in caplog.records if "discarded damaged HTTP cache" in r.getMessage()]
    assert len(notices) == 1 and f"entry for {url} in {cache.path}" in notices[0].getMessage()
    assert notices[0].levelname == "WARNING"
    assert cache.get(url).body == result.body  # repaired by the fresh answer


def _answer_304(headers: dict[str, str]):  # noqa: ANN202
    def answer(h) -> None:  # noqa: ANN001
        h.send_response(304)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()

    return answer


def test_a_304_refreshes_the_stored_validators_and_lifetime(
    make_fetcher: Make, server, tmp_path
) -> None:
    cache = HttpCache(tmp_path)
    url = server.route(
        "/feed.xml",
        body=b"<rss>v1</rss>",
        etag='"v1"',
        headers={"Content-Type": "application/rss+xml", "Cache-Control": "max-age=60"},
    )
    fetcher = make_fetcher(cache)
    fetcher.fetch(url)
    fresh = {
        "ETag": '"v2"',
        "Last-Modified": LAST_MODIFIED,
        "Cache-Control": "max-age=600",
        "Expires": "Tue, 03 Nov 2026 11:00:00 GMT",
        "Content-Type": "text/plain",  # describes no body here: not taken over (RFC 9111 3.2)
    }
    server.handler("/feed.xml", _answer_304(fresh))
    fetcher = make_fetcher(cache, refresh=True)  # still fresh (max-age=60): ask anyway
    second = fetcher.fetch(url)
    assert second.not_modified and second.body == b"<rss>v1</rss>"
    stored = cache.get(url)
    for result in (second, stored):
        assert result.headers["etag"] == '"v2"'
        assert result.headers["last-modified"] == LAST_MODIFIED
        assert result.headers["cache-control"] == "max-age=600"
        assert result.headers["expires"] == "Tue, 03 Nov 2026 11:00:00 GMT"
        assert result.headers["content-type"] == "application/rss+xml"
    fetcher.fetch(url)
    sent = server.requests_to("/feed.xml")[-1].headers
    assert sent["if-none-match"] == '"v2"' and sent["if-modified-since"] == LAST_MODIFIED


def test_a_304_that_says_nothing_new_does_not_rewrite_the_entry(
    make_fetcher: Make, server, tmp_path
) -> None:
    cache = HttpCache(tmp_path)
    url = server.route("/feed.xml", body=b"<rss/>", etag='"same"')
    fetcher = make_fetcher(cache)
    fetcher.fetch(url)
    before = stored(tmp_path, url)
    server.handler("/feed.xml", _answer_304({"ETag": '"same"', "Date": "Tue, 03 Nov 2026"}))
    assert fetcher.fetch(url).not_modified
    assert stored(tmp_path, url) == before  # same bytes, same stored_at, no lifetime to restart


def test_offline_answers_from_the_cache_only(make_fetcher: Make, server, tmp_path) -> None:
    cache = HttpCache(tmp_path)
    url = server.route("/feed.xml", body=b"cached")
    assert make_fetcher(cache).fetch(url).ok
    seen = server.request_count
    offline = make_fetcher(cache, offline=True, resolver=no_dns)
    hit = offline.fetch(url)
    assert (hit.body, hit.from_cache, hit.not_modified, hit.status) == (b"cached", True, False, 200)
    assert hit.digest == hashlib.sha256(b"cached").hexdigest()
    assert offline.fetch(server.url("/other.xml")).error == "offline: not in cache"
    assert make_fetcher(None, offline=True).fetch(url).error == "offline: not in cache"
    assert offline.fetch("file:///etc/passwd").error == "refused scheme 'file'"
    assert server.request_count == seen


def test_a_url_with_a_secret_skips_the_cache_and_is_redacted(
    make_fetcher: Make, server, tmp_path, caplog
) -> None:
    caplog.set_level("DEBUG")
    cache = HttpCache(tmp_path)
    url = server.route("/api", body=b"{}", etag='"e"') + "?token=sesame%2Fopen"
    fetcher = make_fetcher(cache)
    first = fetcher.fetch(url, secret="sesame/open")
    second = fetcher.fetch(url, secret="sesame/open")
    assert first.ok and second.ok and not second.from_cache
    assert "if-none-match" not in server.requests_to("/api?token=sesame%2Fopen")[-1].headers
    assert list(tmp_path.iterdir()) == []  # nothing stored: the file would hold the URL
    missing = fetcher.fetch(server.url("/nothing?token=sesame"), secret="sesame")
    assert missing.error == "HTTP 404"
    logged = [r.getMessage() for r in caplog.records]
    assert any("token=REDACTED" in m for m in logged)
    assert not [m for m in logged if "sesame" in m]


# -- 8. request headers ------------------------------------------------------------------------------


def test_user_agent_and_accept_are_sent_on_every_hop(make_fetcher: Make, server) -> None:
    agent = "blog-carnival/1.0 (+https://warm-introduction.example/)"
    make_fetcher(user_agent=agent).fetch(server.redirect_chain("/c", 2))
    assert len(server.requests) == 3
    for request in server.requests:
        assert request.headers["user-agent"] == agent
        assert request.headers["accept"] == ACCEPT
        assert request.headers["accept"].startswith("application/atom+xml, application/rss+xml")
        assert request.headers["accept-encoding"] == "gzip, deflate"
        assert "cookie" not in request.headers


# -- 9. concurrency --------------------------------------------------------------------------------


def gathering(barrier: threading.Barrier, body: bytes = b"x"):  # noqa: ANN201
    """A handler that answers only once ``barrier.parties`` requests are waiting together:
    a client that does not run them in parallel gets HTTP 500 (after the barrier times out)."""

    def answer(h) -> None:  # noqa: ANN001
        try:
            barrier.wait(timeout=30)
            status = 200
        except threading.BrokenBarrierError:
            status = 500
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


@pytest.mark.timeout(120)
def test_fetch_all_runs_in_parallel(make_fetcher: Make, hostile_server) -> None:
    # 4 hosts x 4 connections each: every request waits until 16 are in flight at once.
    servers = [hostile_server("127.0.0.1") for _ in range(4)]
    together = threading.Barrier(16)
    urls = [
        srv.handler(f"/feed/{i}", gathering(together, b"%d" % i))
        for i in range(8)
        for srv in servers
    ]
    seen: list[str] = []
    results = make_fetcher(concurrency=32, per_host=4).fetch_all(
        urls, progress=lambda r: seen.append(r.url)
    )
    assert list(results) == urls and all(r.ok for r in results.values()), results
    assert sorted(seen) == sorted(urls)
    assert all(srv.max_in_flight == 4 for srv in servers)


@pytest.mark.timeout(120)
def test_the_per_host_limit_holds(make_fetcher: Make, server) -> None:
    together = threading.Barrier(3)  # three at a time reach the server, never more
    urls = [server.handler(f"/p/{i}", gathering(together)) for i in range(12)]
    results = make_fetcher(concurrency=32, per_host=3).fetch_all(urls)
    assert all(r.ok for r in results.values())
    assert server.max_in_flight == 3
    assert server.max_connections <= 3


def test_fetch_all_dedupes(make_fetcher: Make, server) -> None:
    a, b = server.route("/a", body=b"a"), server.route("/b", body=b"b")
    calls: list[str] = []
    results = make_fetcher().fetch_all([a, b, a, a, b], progress=lambda r: calls.append(r.url))
    assert list(results) == [a, b] and sorted(calls) == [a, b]
    assert len(server.requests_to("/a")) == 1 and len(server.requests_to("/b")) == 1
    assert make_fetcher().fetch_all([]) == {}


def test_connections_are_reused(make_fetcher: Make, server) -> None:
    fetcher = make_fetcher()
    for i in range(5):
        assert fetcher.fetch(server.route(f"/r/{i}", body=b"x")).ok
    assert server.connections_total == 1


def test_a_304_a_redirect_and_an_error_page_keep_the_connection(
    make_fetcher: Make, server, tmp_path
) -> None:
    """An answer we do not read the body of is read to its end, so that its connection can
    carry the next request (RFC 9112 section 9.3) instead of being closed."""
    fetcher = make_fetcher(HttpCache(tmp_path))
    url = server.route("/feed.xml", body=b"<rss/>", etag='"e"')
    assert fetcher.fetch(url).ok
    assert fetcher.fetch(url).not_modified
    assert fetcher.fetch(server.redirect("/old", server.url("/feed.xml"))).ok
    assert fetcher.fetch(server.route("/gone", body=b"a short page", status=404)).error
    assert fetcher.fetch(url).not_modified
    assert server.request_count == 6 and server.connections_total == 1


@pytest.mark.timeout(120)
def test_one_host_with_many_urls_does_not_hold_back_the_others(
    make_fetcher: Make, hostile_server
) -> None:
    """Workers are handed a URL only when its host has a free slot: the one URL of host B,
    listed after eight of host A, is fetched while A's first is still in flight."""
    a, b = hostile_server("127.0.0.1"), hostile_server("127.0.0.1")
    together = threading.Barrier(2)
    urls = [a.handler("/0", gathering(together, b"a0"))]
    urls += [a.route(f"/{i}", body=b"a") for i in range(1, 8)]
    urls.append(b.handler("/0", gathering(together, b"b0")))
    results = make_fetcher(concurrency=4, per_host=1).fetch_all(urls)
    assert all(r.ok for r in results.values()), results
    assert a.max_in_flight == 1


def test_fetch_each_hands_out_results_as_they_come_and_may_stop_early(
    make_fetcher: Make, server
) -> None:
    fetcher = make_fetcher(per_host=1)
    urls = [server.route(f"/e/{i}", body=b"%d" % i) for i in range(6)]
    each = fetcher.fetch_each(urls + urls[:2])
    first = next(each)
    assert first.ok and first.url in urls
    each.close()  # what had not started is cancelled; nothing is left running
    assert server.request_count < 6
    rest = fetcher.fetch_all(urls)  # the fetcher goes on working
    assert sorted(rest) == sorted(urls) and all(r.ok for r in rest.values())


def test_a_hosts_next_request_goes_out_while_the_last_answer_is_read(
    make_fetcher: Make, server
) -> None:
    """One polite slot: the second request is sent while the caller still reads the first
    answer (``after`` waits for the server to see it), not after; and never two at once."""
    urls = [server.route(f"/n/{i}", body=b"%d" % i) for i in range(3)]
    overlapped: list[bool] = []

    def after(result: FetchResult) -> None:
        if result.url == urls[0]:  # a generous bound, only there to catch a hang
            overlapped.append(wait_for(lambda: len(server.requests_to("/n/1")) == 1, 10.0))

    fetcher = make_fetcher(concurrency=4, per_host=1)
    results = list(fetcher.fetch_each(urls, after))
    assert [r.url for r in results if r.ok] == urls
    assert overlapped == [True]
    assert server.max_in_flight == 1


def test_a_first_request_goes_out_before_every_other_is_prepared(
    make_fetcher: Make, hostile_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty hosts, each with a slot free at the start: the first request is sent (libcurl
    calls ``_Exchange.ready`` just before it sends) while later ones are still being
    prepared, not once all twenty are. A new connection's request waits for its socket
    to be writable, and the loop looks at the sockets between steps (``_Loop._poll``)."""
    events: list[str] = []

    class Recorded(_Exchange):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            events.append("prepared")
            super().__init__(*args, **kwargs)

        def ready(self, *args) -> int:  # noqa: ANN002
            events.append("sent")
            return super().ready(*args)

    monkeypatch.setattr("blog_carnival.fetch._Exchange", Recorded)
    urls = [hostile_server("127.0.0.1").route("/f", body=b"f") for _ in range(20)]
    results = make_fetcher(concurrency=20, per_host=1).fetch_all(urls)
    assert all(r.ok for r in results.values()), results
    assert events.count("prepared") == events.count("sent") == 20
    assert events.index("sent") < 19, events


def test_fetcher_is_a_context_manager(server) -> None:
    with Fetcher(FetchSettings(**FAST)) as fetcher:
        assert fetcher.fetch(server.route("/x", body=b"x")).ok


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="per_host"):
        FetchSettings(per_host=0)
    assert FetchSettings(allowed_private_hosts=["a"]).allowed_private_hosts == frozenset({"a"})  # type: ignore[arg-type]


def test_a_fetch_from_an_after_callback_is_refused_not_hung(make_fetcher: Make, server) -> None:
    """``after`` runs in the fetcher's loop: a fetch from there would wait for itself; it is
    an error in the calling thread instead, and the fetcher goes on working."""
    fetcher = make_fetcher()
    url = server.route("/a", body=b"a")

    def after(result: FetchResult) -> None:
        fetcher.fetch(server.url("/b"))

    with pytest.raises(RuntimeError, match="own loop"):
        list(fetcher.fetch_each([url], after))
    assert fetcher.fetch(url).ok
