"""The address policy: classification, allow-listing, and the connect-time backend."""

from __future__ import annotations

import ipaddress
import threading
import time

import httpcore
import pytest
from blog_carnival.netpolicy import (
    AddressPolicy,
    AddressRefused,
    ConnectionRefused,
    DeadlineExceeded,
    DNSFailure,
    GuardedBackend,
    classify,
    normalise_host,
    system_resolver,
)
from hostile_server import (
    free_port,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
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


def test_backend_refuses_before_connecting(hostile_server) -> None:
    two = hostile_server("127.0.0.2")
    backend = GuardedBackend(AddressPolicy({"127.0.0.1"}))
    with pytest.raises(AddressRefused):
        backend.connect_tcp("127.0.0.2", two.port, timeout=1)
    with pytest.raises(AddressRefused):
        GuardedBackend(AddressPolicy(), lambda h, p: ["127.0.0.2"]).connect_tcp("x.test", two.port)
    # Ordering evidence, not a pause: the server accepts connections in turn, so once our own
    # request has been answered, any earlier connection would have been counted before it.
    allowed = GuardedBackend(AddressPolicy({"127.0.0.2"}))
    stream = allowed.connect_tcp("127.0.0.2", two.port, timeout=5)
    try:
        stream.write(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        assert stream.read(100, timeout=5).startswith(b"HTTP/1.1 404")
    finally:
        stream.close()
    assert two.connections_total == 1 and [r.path for r in two.requests] == ["/after"]


def test_backend_connects_to_the_checked_address(hostile_server) -> None:
    two = hostile_server("127.0.0.2")
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.2"]

    backend = GuardedBackend(AddressPolicy({"feed.test"}), resolver)
    stream = backend.connect_tcp("feed.test", two.port, timeout=1)
    try:
        stream.write(b"GET /nothing HTTP/1.1\r\nHost: feed.test\r\n\r\n", timeout=1)
        assert stream.read(100, timeout=1).startswith(b"HTTP/1.1 404")
    finally:
        stream.close()
    assert calls == [("feed.test", two.port)]
    assert two.requests[0].headers["host"] == "feed.test"


def test_backend_faults() -> None:
    local = AddressPolicy({"127.0.0.1"})
    with pytest.raises(ConnectionRefused):
        GuardedBackend(local).connect_tcp("127.0.0.1", free_port(), timeout=1)
    with pytest.raises(DNSFailure, match="^DNS lookup failed for nosuch.invalid$"):
        GuardedBackend(local).connect_tcp("nosuch.invalid", 80, timeout=1)
    with pytest.raises(AddressRefused):
        GuardedBackend(local).connect_unix_socket("/run/docker.sock")


@pytest.mark.timeout(60)  # the hang guard: the resolver below never answers
def test_slow_dns_is_bounded_by_the_timeout_and_the_deadline() -> None:
    answer = threading.Event()
    asked: list[str] = []

    def never(host: str, port: int) -> list[str]:
        asked.append(host)
        answer.wait()  # released at the end of the test
        return ["127.0.0.1"]

    backend = GuardedBackend(AddressPolicy({"127.0.0.1"}), never)
    try:
        with pytest.raises(httpcore.ConnectTimeout, match="DNS lookup for slow.test timed out"):
            backend.connect_tcp("slow.test", 80, timeout=0.3)
        backend.set_deadline(time.monotonic() + 0.2)  # shorter than the timeout: it wins
        with pytest.raises(DeadlineExceeded):
            backend.connect_tcp("slow.test", 80, timeout=30)
        backend.set_deadline(time.monotonic() - 1)  # already past: no lookup at all
        with pytest.raises(DeadlineExceeded):
            backend.connect_tcp("passed.test", 80, timeout=30)
        assert asked == ["slow.test", "slow.test"]
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

    backend = GuardedBackend(AddressPolicy({"127.0.0.1"}), resolver)
    try:
        before = lookup_threads()
        for _ in range(30):
            assert backend.resolve("fast.test", 80, timeout=10) == ["127.0.0.1"]
        # 30 lookups ran on the threads already there, and at most one more: not one each
        assert len(threads) <= before + 1 and lookup_threads() <= before + 1
        assert all(t.daemon and t.name == "carnival-dns" for t in threads)
        with pytest.raises(httpcore.ConnectTimeout, match="DNS lookup for hung.test timed out"):
            backend.resolve("hung.test", 80, timeout=0.2)
        assert backend.resolve("fast.test", 80, timeout=10) == ["127.0.0.1"]
    finally:
        release.set()
