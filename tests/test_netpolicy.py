"""The address policy: classification, allow-listing, and the guard that resolves and checks
every address before the fetcher connects."""

from __future__ import annotations

import ipaddress
import threading

import pytest
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.netpolicy import (
    AddressPolicy,
    AddressRefused,
    DNSFailure,
    Guard,
    LookupTimeout,
    classify,
    normalise_host,
    system_resolver,
)
from hostile_server import hostile_server_fixture  # noqa: F401  (the hostile_server fixture)
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),  # carrier-grade NAT: not private, not global either
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_classify(address: str, category: str | None) -> None:
    assert classify(address) == category


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_and_nat64_forms_are_judged_as_their_ipv4(v4: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    assert classify(mapped) == classify(v4) == classify(nat64)


@given(st.ip_addresses())
def test_only_global_addresses_pass(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if classify(address) is None:
        assert address.is_global and not address.is_multicast


def test_policy_allows_listed_names_and_addresses() -> None:
    policy = AddressPolicy({"Intranet.Example.", "127.0.0.1", "[::1]", ""})
    policy.check("intranet.example", ["10.0.0.5"])  # allowed by name, whatever it resolves to
    policy.check("localhost", ["127.0.0.1", "0:0::1"])  # allowed by address
    policy.check("example.com", ["93.184.216.34"])  # public
    with pytest.raises(AddressRefused) as refused:
        policy.check("localhost", ["127.0.0.1", "127.0.0.2"])
    assert str(refused.value) == "refused address 127.0.0.2 for localhost (loopback)"
    with pytest.raises(
        AddressRefused, match=r"^refused address 10\.1\.2\.3 for host\.example \(private\)$"
    ):
        AddressPolicy().check("host.example", ["10.1.2.3"])


def test_normalise_host() -> None:
    assert normalise_host("Example.COM.") == "example.com"
    assert normalise_host("[0:0::1]") == "::1"
    assert normalise_host("::ffff:127.0.0.1") == "127.0.0.1"


def test_system_resolver_resolves_literals_and_localhost() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(OSError):
        system_resolver("nosuch.invalid", 80)


def test_guard_refuses_before_any_connection(hostile_server) -> None:
    two = hostile_server("127.0.0.2")
    with pytest.raises(AddressRefused, match="^refused address 127.0.0.2 for 127.0.0.2 "):
        Guard(AddressPolicy({"127.0.0.1"})).addresses("127.0.0.2", two.port, timeout=1)
    with pytest.raises(AddressRefused, match="^refused address 127.0.0.2 for x.test "):
        Guard(AddressPolicy(), lambda h, p: ["127.0.0.2"]).addresses("x.test", two.port, 1)
    assert Guard(AddressPolicy({"127.0.0.2"})).addresses("127.0.0.2", 80, 1) == ["127.0.0.2"]
    assert two.connections_total == 0


def test_the_fetcher_connects_to_the_checked_address_only(hostile_server) -> None:
    """The name is resolved once, by our resolver, and libcurl is pinned to its answer: the
    request reaches 127.0.0.2 with the name in its Host field, never resolved again."""
    two = hostile_server("127.0.0.2")
    two.route("/feed.xml", body=b"<rss/>")
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.2"]

    settings = FetchSettings(allowed_private_hosts=frozenset({"feed.test"}))
    with Fetcher(settings, resolver=resolver) as fetcher:
        result = fetcher.fetch(f"http://feed.test:{two.port}/feed.xml")
    assert (result.error, result.body) == (None, b"<rss/>")
    assert calls == [("feed.test", two.port)]
    assert two.requests[0].headers["host"] == f"feed.test:{two.port}"


def test_a_kept_connection_needs_no_new_lookup(hostile_server) -> None:
    """A name is looked up to open a connection, not for every request sent on it."""
    two = hostile_server("127.0.0.2")
    for n in range(3):
        two.route(f"/{n}.xml", body=b"<rss/>")
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.2"]

    settings = FetchSettings(allowed_private_hosts=frozenset({"feed.test"}))
    with Fetcher(settings, resolver=resolver) as fetcher:
        for n in range(3):
            assert fetcher.fetch(f"http://feed.test:{two.port}/{n}.xml").body == b"<rss/>"
    assert (calls, two.connections_total) == (["feed.test"], 1)


def test_guard_faults() -> None:
    local = Guard(AddressPolicy({"127.0.0.1"}))
    with pytest.raises(DNSFailure, match="^DNS lookup failed for nosuch.invalid$"):
        local.addresses("nosuch.invalid", 80, timeout=5)
    with pytest.raises(DNSFailure, match="^DNS lookup failed for empty.test$"):
        Guard(AddressPolicy(), lambda h, p: []).addresses("empty.test", 80, timeout=5)


@pytest.mark.timeout(60)  # the hang guard: the resolver below never answers
def test_slow_dns_is_bounded_by_the_timeout_and_the_deadline() -> None:
    answer = threading.Event()
    asked: list[str] = []

    def never(host: str, port: int) -> list[str]:
        asked.append(host)
        answer.wait()  # released at the end of the test
        return ["127.0.0.1"]

    guard = Guard(AddressPolicy({"127.0.0.1"}), never)
    try:
        with pytest.raises(LookupTimeout, match="^DNS lookup for slow.test timed out$"):
            guard.addresses("slow.test", 80, timeout=0.3)
        with pytest.raises(LookupTimeout):  # no time left: no lookup at all
            guard.addresses("passed.test", 80, timeout=0)
        # In the fetcher a deadline shorter than the timeout bounds the lookup, and is named
        settings = FetchSettings(timeout=30, deadline=0.3)
        with Fetcher(settings, resolver=never) as fetcher:
            assert fetcher.fetch("http://slow.test/").error == "timed out after 0.3 s"
        with Fetcher(FetchSettings(timeout=0.3, deadline=30), resolver=never) as fetcher:
            assert fetcher.fetch("http://slow.test/").error == "timed out after 0.3 s"
        assert asked == ["slow.test"] * 3
    finally:
        answer.set()


def test_lookups_reuse_their_threads_and_a_hung_one_holds_up_no_other() -> None:
    """No thread per connection: lookups run on a few reused daemon threads; one that never
    answers keeps its thread, and the next lookup gets another."""
    threads: set[threading.Thread] = set()
    release = threading.Event()

    def resolver(host: str, port: int) -> list[str]:
        threads.add(threading.current_thread())
        if host == "hung.test":
            release.wait()
        return ["127.0.0.1"]

    def lookup_threads() -> int:
        return sum(t.name == "carnival-dns" for t in threading.enumerate())

    backend = Guard(AddressPolicy({"127.0.0.1"}), resolver)
    try:
        before = lookup_threads()
        for _ in range(30):
            assert backend.resolve("fast.test", 80, timeout=10) == ["127.0.0.1"]
        # 30 lookups ran on the threads already there, and at most one more: not one each
        assert len(threads) <= before + 1 and lookup_threads() <= before + 1
        assert all(t.daemon and t.name == "carnival-dns" for t in threads)
        with pytest.raises(LookupTimeout, match="DNS lookup for hung.test timed out"):
            backend.resolve("hung.test", 80, timeout=0.2)
        assert backend.resolve("fast.test", 80, timeout=10) == ["127.0.0.1"]
    finally:
        release.set()
