"""Feeds over HTTPS, against a real TLS server on 127.0.0.1 with a test CA (trustme).

Verification is never switched off: the fetcher is handed a CA bundle that trusts the test CA
on top of the default store (``fetch.trust_ca``), exactly as strict as production's.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable, Iterator

import pytest
import trustme
from blog_carnival.fetch import Fetcher, FetchSettings, trust_ca
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)

HOST = "feeds.test"  # the name in the good certificate; the test resolver maps it to 127.0.0.1
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Secure</title></channel></rss>'
SETTINGS = FetchSettings(timeout=5, deadline=10, allowed_private_hosts=frozenset({"127.0.0.1"}))


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def trusting(ca: trustme.CA) -> bytes:
    with ca.cert_pem.tempfile() as pem:
        return trust_ca(pem)


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture
def tls_server(hostile_server, ca: trustme.CA) -> Callable[..., HostileServer]:
    """``tls_server(*names, **dates)``: an HTTPS server whose certificate names ``names``."""

    def start(*names: str, **dates: dt.datetime) -> HostileServer:
        cert = ca.issue_cert(*(names or (HOST,)), **dates)
        return hostile_server("127.0.0.1", tls=server_context(cert))

    return start


@pytest.fixture
def fetcher(trusting: bytes) -> Iterator[Fetcher]:
    with Fetcher(SETTINGS, resolver=to_loopback, ca_bundle=trusting) as fetcher:
        yield fetcher


def test_a_good_certificate_is_fetched(fetcher: Fetcher, tls_server) -> None:
    server = tls_server()
    server.route("/feed.xml", body=FEED, headers={"Content-Type": "application/rss+xml"})
    url = f"https://{HOST}:{server.port}/feed.xml"
    result = fetcher.fetch(url)
    assert result.ok and result.body == FEED and result.final_url == url
    assert server.requests_to("/feed.xml")[0].headers["host"] == f"{HOST}:{server.port}"
    assert server.tls_failures == 0


def test_an_expired_certificate_is_refused(fetcher: Fetcher, tls_server) -> None:
    server = tls_server(
        HOST,
        not_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
    )
    server.route("/feed.xml", body=FEED)
    result = fetcher.fetch(f"https://{HOST}:{server.port}/feed.xml")
    assert result.error == "TLS certificate verification failed (certificate has expired)"
    assert result.body is None
    assert server.request_count == 0  # no request went over the unverified connection


def test_a_certificate_for_another_name_is_refused(fetcher: Fetcher, tls_server) -> None:
    server = tls_server("elsewhere.test")
    server.route("/feed.xml", body=FEED)
    result = fetcher.fetch(f"https://{HOST}:{server.port}/feed.xml")
    assert result.error == (
        "TLS certificate verification failed "
        f"(no alternative certificate subject name matches target hostname '{HOST}')"
    )
    assert server.request_count == 0


def test_a_certificate_without_the_address_is_refused(fetcher: Fetcher, tls_server) -> None:
    server = tls_server(HOST)  # names the host, not 127.0.0.1
    server.route("/feed.xml", body=FEED)
    result = fetcher.fetch(f"https://127.0.0.1:{server.port}/feed.xml")
    assert result.error == (
        "TLS certificate verification failed "
        "(no alternative certificate subject name matches target IPv4 address '127.0.0.1')"
    )
    assert server.request_count == 0


def test_the_default_context_does_not_trust_the_test_ca(tls_server) -> None:
    """Production keeps its own store: the test CA is trusted only where a test adds it."""
    server = tls_server()
    server.route("/feed.xml", body=FEED)
    with Fetcher(SETTINGS, resolver=to_loopback) as plain:
        result = plain.fetch(f"https://{HOST}:{server.port}/feed.xml")
    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed (")
    assert server.request_count == 0


def test_a_redirect_from_https_to_http_is_refused(
    fetcher: Fetcher, tls_server, hostile_server
) -> None:
    secure, plain = tls_server(), hostile_server("127.0.0.1")
    target = plain.route("/feed.xml", body=FEED)
    secure.redirect("/feed.xml", target, status=301)
    result = fetcher.fetch(f"https://{HOST}:{secure.port}/feed.xml")
    assert result.error == "refused redirect from https to http"
    assert result.final_url == f"https://{HOST}:{secure.port}/feed.xml"
    assert plain.request_count == 0 and plain.connections_total == 0


def test_redirects_within_https_and_up_from_http_are_followed(
    fetcher: Fetcher, tls_server, hostile_server
) -> None:
    secure, plain = tls_server(), hostile_server("127.0.0.1")
    secure.route("/new.xml", body=FEED)
    secure.redirect("/old.xml", "/new.xml", status=308)
    upgraded = f"https://{HOST}:{secure.port}/old.xml"
    result = fetcher.fetch(plain.redirect("/feed.xml", upgraded, status=301))
    assert result.ok and result.body == FEED
    assert result.final_url == f"https://{HOST}:{secure.port}/new.xml"
