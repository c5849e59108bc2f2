"""Retry-After is honoured as a reason to skip (on this build and the next), never to wait."""

from __future__ import annotations

import time

import pytest
from blog_carnival.cache import HttpCache
from blog_carnival.fetch import Fetcher, FetchSettings, retry_after_seconds
from hostile_server import HostileServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def fetcher(cache: HttpCache) -> Fetcher:
    return Fetcher(
        FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout=2, deadline=4), cache
    )


@pytest.mark.timeout(60)  # no sleeping: waiting out an hour's Retry-After would hang here
def test_429_is_not_asked_again_until_retry_after_passes(tmp_path):
    cache = HttpCache(tmp_path / "cache")
    with HostileServer("127.0.0.1") as server:
        url = server.route("/feed.xml", FEED, status=429, headers={"Retry-After": "3600"})
        with fetcher(cache) as f:
            first = f.fetch(url)
        assert first.error == "HTTP 429 (rate limited; Retry-After: 3600)"
        with fetcher(cache) as f:  # the next build
            second = f.fetch(url)
        assert second.error.startswith("skipped: the server asked to wait until ")
        assert len(server.requests_to("/feed.xml")) == 1
        # once the time has passed, the feed is asked again
        assert cache.held_until(url, now=time.time() + 3601) is None
        server.route("/feed.xml", FEED)
        with fetcher(cache) as f:
            third = f.fetch(url)
        assert third.ok and len(server.requests_to("/feed.xml")) == 2


def test_503_with_retry_after_date_also_holds(tmp_path):
    cache = HttpCache(tmp_path / "cache")
    with HostileServer("127.0.0.1") as server:
        url = server.route(
            "/feed.xml",
            b"busy",
            status=503,
            headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"},
        )
        with fetcher(cache) as f:
            assert f.fetch(url).error == "HTTP 503"
        assert cache.held_until(url) is not None


def test_retry_after_values():
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("99999999") == 7 * 24 * 3600  # capped at a week
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None  # already past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
