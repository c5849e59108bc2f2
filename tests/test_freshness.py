"""HTTP freshness (RFC 9111 section 4.2): a feed still fresh in the cache costs no request, a
stale one is revalidated with a conditional GET, ``refresh`` revalidates everything.

Requests are counted at a real loopback server. Time is a fake clock the tests move by hand,
and the server dates its answers by the same clock, as a server with a good clock would: no
assertion depends on the real time or on how long anything took.
"""

from __future__ import annotations

import threading
from email.utils import formatdate
from pathlib import Path

import pytest
from blog_carnival.cache import (
    DELTA_MAX,
    CachedResponse,
    HttpCache,
    cache_directives,
    current_age,
    freshness_lifetime,
    stores,
)
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.settings import read_settings
from cache_rows import set_row, stored
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LOCAL = frozenset({"127.0.0.1"})


DATE = "Tue, 03 Nov 2026 10:00:00 GMT"
AT = 1793700000.0  # DATE as epoch seconds


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(hostile_server) -> HostileServer:
    return hostile_server("127.0.0.1")


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> HttpCache:
    return HttpCache(tmp_path / "http", clock=clock)


def fetch(cache: HttpCache, url: str, **settings: object):  # noqa: ANN201
    options = {"allowed_private_hosts": LOCAL, "timeout": 5.0, "deadline": 10.0, **settings}
    with Fetcher(FetchSettings(**options), cache) as fetcher:
        return fetcher.fetch(url)


def feed(server: HostileServer, clock: Clock, status: int = 200, **headers: str) -> str:
    """The feed at /feed.xml, ETag "v1" (a matching If-None-Match gets a 304), answers dated by
    ``clock`` and carrying ``headers``."""

    def answer(h) -> None:  # noqa: ANN001
        code = 304 if status == 200 and h.headers.get("If-None-Match") == '"v1"' else status
        h.send_response_only(code)
        h.send_header("Date", formatdate(clock(), usegmt=True))
        h.send_header("ETag", '"v1"')
        h.send_header("Content-Type", "application/rss+xml")
        for name, value in headers.items():
            h.send_header(name, value)
        body = FEED if code != 304 else b""
        if code != 304:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return server.handler("/feed.xml", answer)


def asked(server: HostileServer) -> int:
    return len(server.requests_to("/feed.xml"))


# -- over the network --------------------------------------------------------------------------


def test_a_fresh_entry_is_used_without_a_request(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    assert fetch(cache, url).ok and asked(server) == 1
    clock.advance(599)
    again = fetch(cache, url)
    assert asked(server) == 1  # nothing was sent
    assert again.ok and again.body == FEED and again.from_cache and not again.not_modified
    assert again.status == 200


def test_a_stale_entry_is_revalidated_with_if_none_match(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=60"})
    fetch(cache, url)
    clock.advance(61)
    again = fetch(cache, url)
    assert asked(server) == 2
    assert server.requests_to("/feed.xml")[-1].headers["if-none-match"] == '"v1"'
    assert again.not_modified and again.body == FEED


def test_a_304_restarts_the_freshness_lifetime(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=60"})
    fetch(cache, url)
    clock.advance(61)
    assert fetch(cache, url).not_modified  # revalidated: fresh for another 60 s from now
    clock.advance(59)
    fetch(cache, url)
    assert asked(server) == 2


def test_a_304_that_changes_nothing_restarts_freshness_without_a_rewrite(
    server, cache, clock
) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=60"})
    fetch(cache, url)
    meta, body, _ = stored(cache.folder, url)
    clock.advance(61)
    assert fetch(cache, url).not_modified
    assert stored(cache.folder, url) == (meta, body, clock())  # only its time of validation
    assert cache.get(url).validated_at == clock()
    clock.advance(59)
    fetch(cache, url)
    assert asked(server) == 2


def test_expires_stays_a_fixed_time_after_a_revalidation(server, cache, clock) -> None:
    url = feed(server, clock, Expires=formatdate(clock() + 600, usegmt=True))
    fetch(cache, url)
    clock.advance(500)
    assert fetch(cache, url, refresh=True).not_modified  # validated, Expires unchanged
    clock.advance(50)
    fetch(cache, url)
    assert asked(server) == 2  # still fresh: 550 s
    clock.advance(150)
    fetch(cache, url)
    assert asked(server) == 3  # 700 s: past Expires, however recently validated


def test_without_a_lifetime_every_fetch_revalidates(server, cache, clock) -> None:
    url = feed(server, clock)
    fetch(cache, url)
    assert fetch(cache, url).not_modified
    assert asked(server) == 2


def test_no_store_is_not_stored(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    fetch(cache, url)
    assert cache.get(url) is not None
    clock.advance(601)
    feed(server, clock, **{"Cache-Control": "no-store"})
    result = fetch(cache, url)  # a 304 saying no-store: the stored copy goes
    assert result.not_modified and result.body == FEED
    assert cache.get(url) is None
    result = fetch(cache, url)  # asked afresh, a 200 saying no-store: not stored
    assert result.ok and result.body == FEED and not result.from_cache
    assert "if-none-match" not in server.requests_to("/feed.xml")[-1].headers
    assert cache.get(url) is None
    assert asked(server) == 3


def test_no_cache_is_always_revalidated(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "no-cache, max-age=600"})
    fetch(cache, url)
    assert fetch(cache, url).not_modified  # stored, but never used without asking
    assert asked(server) == 2
    assert server.requests_to("/feed.xml")[-1].headers["if-none-match"] == '"v1"'


def test_expires_in_the_past_is_stale(server, cache, clock) -> None:
    url = feed(server, clock, Expires=formatdate(clock() - 3600, usegmt=True))
    fetch(cache, url)
    assert fetch(cache, url).not_modified
    assert asked(server) == 2


def test_expires_in_the_future_is_fresh_until_then(server, cache, clock) -> None:
    url = feed(server, clock, Expires=formatdate(clock() + 300, usegmt=True))
    fetch(cache, url)
    clock.advance(200)
    fetch(cache, url)
    assert asked(server) == 1
    clock.advance(200)
    fetch(cache, url)
    assert asked(server) == 2


def test_max_age_is_capped_by_the_setting(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=86400"})
    fetch(cache, url, max_freshness=600)
    clock.advance(500)
    fetch(cache, url, max_freshness=600)
    assert asked(server) == 1
    clock.advance(200)  # 700 s: fresh for the server, past our cap
    assert fetch(cache, url, max_freshness=600).not_modified
    assert asked(server) == 2


def test_a_cap_of_zero_revalidates_everything(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    fetch(cache, url, max_freshness=0)
    assert fetch(cache, url, max_freshness=0).not_modified
    assert asked(server) == 2


def test_refresh_revalidates_fresh_entries(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    fetch(cache, url)
    clock.advance(10)
    again = fetch(cache, url, refresh=True)
    assert asked(server) == 2
    assert server.requests_to("/feed.xml")[-1].headers["if-none-match"] == '"v1"'
    assert again.not_modified


def test_an_age_from_upstream_counts(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600", "Age": "590"})
    fetch(cache, url)
    clock.advance(5)
    fetch(cache, url)
    assert asked(server) == 1
    clock.advance(10)  # 590 + 15 > 600
    fetch(cache, url)
    assert asked(server) == 2


def test_a_retry_after_hold_is_still_honoured(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=60"})
    fetch(cache, url)
    clock.advance(61)
    feed(server, clock, status=429, **{"Retry-After": "3600"})
    assert fetch(cache, url).error == "HTTP 429 (rate limited; Retry-After: 3600)"
    clock.advance(600)
    for settings in ({}, {"refresh": True}):  # not even --refresh asks before the hour is up
        held = fetch(cache, url, **settings)
        assert held.error.startswith("skipped: the server asked to wait until ")
    assert asked(server) == 2
    assert cache.get(url).body == FEED  # the last good copy is kept for the build to fall back on
    clock.advance(3000)
    feed(server, clock)
    assert fetch(cache, url).not_modified
    assert asked(server) == 3


def test_a_fresh_copy_is_used_while_a_retry_after_holds(server, cache, clock) -> None:
    """A --refresh meets a 429: the stored copy, still fresh for a day, is what the next
    plain build uses, with no request and no error (a fresh response needs no server, RFC
    9111 section 4.2); a --refresh still honours the hold."""
    url = feed(server, clock, **{"Cache-Control": "max-age=86400"})
    fetch(cache, url)
    feed(server, clock, status=429, **{"Retry-After": "3600"})
    assert fetch(cache, url, refresh=True).error.startswith("HTTP 429")
    clock.advance(60)
    again = fetch(cache, url)
    assert again.ok and again.body == FEED and again.from_cache and again.error is None
    assert fetch(cache, url, refresh=True).error.startswith("skipped: the server asked")
    assert asked(server) == 2


def test_a_clock_set_back_makes_entries_stale(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    fetch(cache, url)
    clock.advance(-3600)
    assert fetch(cache, url).not_modified
    assert asked(server) == 2


# -- the rules, value by value (RFC 9111 sections 4.2.1, 4.2.3, 5.1, 5.2, 5.3) ----------------


def test_date_constant_is_what_the_tests_think() -> None:
    assert formatdate(AT, usegmt=True) == DATE


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({"cache-control": "max-age=60"}, 60),
        ({"cache-control": "Max-Age=60, public"}, 60),  # names are case-insensitive
        ({"cache-control": 'max-age="60"'}, 60),  # the quoted form is accepted (5.2)
        ({"cache-control": "max-age=60, max-age=5"}, 60),  # the first one counts (4.2.1)
        ({"cache-control": "max-age=-1"}, 0),  # not delta-seconds: stale (4.2.1)
        ({"cache-control": "max-age=soon"}, 0),
        ({"cache-control": "max-age=99999999999999"}, DELTA_MAX),  # 1.2.2
        ({"cache-control": "s-maxage=600"}, 0),  # for shared caches only (5.2.2.10)
        ({"cache-control": "s-maxage=600, max-age=30"}, 30),
        ({"cache-control": "private, max-age=30"}, 30),  # we are a private cache (5.2.2.7)
        ({"cache-control": "no-cache, max-age=600"}, 0),  # 5.2.2.4
        ({"cache-control": 'no-cache="set-cookie", max-age=600'}, 0),  # taken strictly
        ({"cache-control": "no-store, max-age=600"}, 0),  # 5.2.2.5
        ({"cache-control": 'community="no-cache, x", max-age=90'}, 90),  # quoted text is text
        ({"cache-control": "max-age=60", "expires": "Tue, 03 Nov 2026 12:00:00 GMT"}, 60),
        ({"expires": "Tue, 03 Nov 2026 11:00:00 GMT", "date": DATE}, 3600),  # Expires - Date
        ({"expires": "Tue, 03 Nov 2026 11:00:00 GMT"}, 3600),  # no Date: the time received
        ({"expires": "Tue, 03 Nov 2026 09:00:00 GMT", "date": DATE}, 0),  # in the past
        ({"expires": "0", "date": DATE}, 0),  # an invalid date is in the past (5.3)
        ({"date": DATE}, 0),  # no heuristic freshness (4.2.2)
        ({}, 0),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], lifetime: float) -> None:
    assert freshness_lifetime(headers, received_at=AT) == lifetime


@pytest.mark.parametrize(
    ("headers", "received", "now", "age"),
    [
        ({"date": DATE}, AT, AT + 30, 30),  # resident time
        ({"date": DATE}, AT + 5, AT + 5, 5),  # apparent age: received 5 s after Date
        ({"date": "Tue, 03 Nov 2026 10:00:10 GMT"}, AT, AT, 0),  # a server clock ahead
        ({"date": DATE, "age": "100"}, AT, AT + 1, 101),  # Age from a cache upstream
        ({"date": DATE, "age": "100, 7"}, AT, AT, 100),  # a list: the first member (5.1)
        ({"date": DATE, "age": "old"}, AT, AT, 0),  # invalid: ignored (5.1)
        ({"age": "20"}, AT, AT + 1, 21),  # no Date
        ({"date": DATE}, AT, AT - 1, float("inf")),  # the clock went back: unknown
    ],
)
def test_current_age(headers: dict[str, str], received: float, now: float, age: float) -> None:
    assert current_age(headers, received, now) == age


def test_is_fresh_compares_the_capped_lifetime_with_the_age(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path, clock=lambda: AT + 100)
    entry = CachedResponse(
        "u", "u", 200, {"cache-control": "max-age=3600", "date": DATE}, b"", stored_at=AT
    )
    assert cache.is_fresh(entry, cap=3600)
    assert cache.is_fresh(entry, cap=101)
    assert not cache.is_fresh(entry, cap=100)  # fresh while lifetime > age (4.2)
    assert not cache.is_fresh(entry, cap=0)
    assert not cache.is_fresh(entry, cap=3600, now=AT + 3600)


def test_directives_and_no_store() -> None:
    assert cache_directives({"cache-control": 'max-age=5, no-cache="a, b", Private'}) == {
        "max-age": "5",
        "no-cache": "a, b",
        "private": None,
    }
    assert not stores({"cache-control": "public, NO-STORE"})
    assert stores({"cache-control": "no-cache"}) and stores({})


# -- settings ------------------------------------------------------------------------------------


def test_the_settings_reach_the_fetcher(tmp_path: Path) -> None:
    default = read_settings({}, tmp_path, environ={})
    assert (default.fetch.max_freshness, default.fetch.refresh) == (3600.0, False)
    chosen = read_settings(
        {"CARNIVAL_MAX_FRESHNESS": 60, "CARNIVAL_REFRESH": True}, tmp_path, environ={}
    )
    assert (chosen.fetch.max_freshness, chosen.fetch.refresh) == (60.0, True)
    from_env = read_settings({}, tmp_path, environ={"CARNIVAL_REFRESH": "1"})
    assert from_env.fetch.refresh
    with pytest.raises(Exception, match="CARNIVAL_MAX_FRESHNESS must be at least 0"):
        read_settings({"CARNIVAL_MAX_FRESHNESS": -1}, tmp_path, environ={})


# -- judged from the metadata alone, answered in the calling thread ---------------------------------


def test_stored_fresh_agrees_with_is_fresh(server, cache, clock) -> None:
    url = feed(server, clock, **{"Cache-Control": "max-age=600"})
    assert not cache.stored_fresh(url, 3600)  # nothing stored yet
    fetch(cache, url)
    assert cache.stored_fresh(url, 3600) and cache.is_fresh(cache.get(url), 3600)
    assert not cache.stored_fresh(url, 0)  # a cap of zero: nothing is ever fresh
    clock.advance(601)
    assert not cache.stored_fresh(url, 3600) and not cache.is_fresh(cache.get(url), 3600)


def test_stored_fresh_counts_from_the_last_revalidation(server, cache, clock) -> None:
    """A 304 that changes nothing only records when it was validated; the peek reads that."""
    url = feed(server, clock, **{"Cache-Control": "max-age=60"})
    fetch(cache, url)
    clock.advance(61)
    assert not cache.stored_fresh(url, 3600)
    assert fetch(cache, url).not_modified
    clock.advance(30)
    assert cache.stored_fresh(url, 3600)


def test_stored_fresh_reads_long_metadata_and_refuses_damage(cache, clock) -> None:
    url = "https://long.example/feed.xml"
    headers = {"cache-control": "max-age=600", "date": formatdate(clock(), usegmt=True)}
    headers["link"] = "<https://long.example/x>; " * 1000  # metadata of about 26 KB
    cache.put(url, url, 200, headers, FEED)
    assert cache.stored_fresh(url, 3600)
    meta = stored(cache.folder, url)[0]
    set_row(cache.folder, url, meta=meta[:100])  # cut inside the metadata
    assert not cache.stored_fresh(url, 3600)
    set_row(cache.folder, url, meta="junk")
    assert not cache.stored_fresh(url, 3600)


def test_fresh_urls_are_answered_in_the_calling_thread_without_a_request(
    server, cache, clock
) -> None:
    """fetch_each answers what the cache holds fresh right in the caller's thread (no worker
    thread, no request) and fetches the rest as usual: each URL once, each result once."""
    fresh = [feed(server, clock, **{"Cache-Control": "max-age=600"})]
    for n in range(3):  # more fresh feeds, at paths of their own
        fresh.append(
            server.route(
                f"/fresh{n}.xml",
                FEED,
                headers={
                    "Content-Type": "application/rss+xml",
                    "Cache-Control": "max-age=600",
                    "Date": formatdate(clock(), usegmt=True),
                },
            )
        )
    stale = [
        server.route(f"/plain{n}.xml", FEED, headers={"Content-Type": "text/xml"}) for n in range(3)
    ]
    settings = FetchSettings(allowed_private_hosts=LOCAL, timeout=5.0, deadline=10.0)
    with Fetcher(settings, cache) as fetcher:
        list(fetcher.fetch_each(fresh + stale))
        before = server.request_count
        threads: dict[str, str] = {}
        results = list(
            fetcher.fetch_each(
                fresh + stale,
                after=lambda r: threads.__setitem__(r.url, threading.current_thread().name),
            )
        )
    assert sorted(r.url for r in results) == sorted(fresh + stale)
    assert all(r.ok for r in results)
    assert server.request_count - before == len(stale)  # the fresh ones cost no request
    here = threading.current_thread().name
    assert {threads[u] for u in fresh} == {here}
    assert all(threads[u] != here for u in stale)


def test_offline_answers_everything_in_the_calling_thread(server, cache, clock) -> None:
    url = feed(server, clock)
    fetch(cache, url)
    offline = FetchSettings(allowed_private_hosts=LOCAL, offline=True)
    seen: list[str] = []
    with Fetcher(offline, cache) as fetcher:
        results = list(
            fetcher.fetch_each(
                [url, server.url("/nowhere.xml")],
                after=lambda r: seen.append(threading.current_thread().name),
            )
        )
    assert [r.ok for r in results] == [True, False]
    assert results[1].error == "offline: not in cache"
    assert seen == [threading.current_thread().name] * 2
    assert asked(server) == 1
