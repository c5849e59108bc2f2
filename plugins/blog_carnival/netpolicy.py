"""Address policy: which IP addresses the fetcher may connect to, enforced at connect time.

The check runs before every new connection (``Guard``): every redirect hop and every fresh
lookup (DNS rebinding) is covered, and the HTTP client is given the checked
addresses to connect to, never resolving the name again itself.

An address is refused when it is loopback, private, link-local (169.254.0.0/16 with the cloud
metadata address, fe80::/10), multicast, reserved, unspecified or otherwise not globally
routable, including the same addresses written as IPv4-mapped (``::ffff:10.0.0.1``) or 6to4
IPv6. A host is allowed anyway when its name, or the address it resolves to, is listed in
``allowed_private_hosts``. When a name resolves to several addresses and any of them is
refused, the whole host is refused.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetFault(Exception):
    """A remote or policy fault met while fetching; ``str(exc)`` is the plain reason."""


class AddressRefused(NetFault):
    def __init__(self, address: str, host: str, category: str) -> None:
        super().__init__(f"refused address {address} for {host} ({category})")
        self.address = address
        self.host = host
        self.category = category


class DNSFailure(NetFault):
    def __init__(self, host: str) -> None:
        super().__init__(f"DNS lookup failed for {host}")
        self.host = host


class DeadlineExceeded(NetFault):
    """The per-URL deadline passed while connecting, reading or writing."""

    def __init__(self) -> None:
        super().__init__("deadline exceeded")


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``socket.getaddrinfo``; addresses in the system's order, unique."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone allowed), or None if it is a name."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(address: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a packet to ``address`` really goes to, for policy purposes.

    IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::a.b.c.d``) addresses stand for
    their IPv4 address alone; a 6to4 address is judged by itself and its IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return (address.ipv4_mapped,)
        if address in _NAT64:
            return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
        if address.sixtofour is not None:
            return (address.sixtofour, address)
    return (address,)


def _unwrap(address: IPAddress) -> IPAddress:
    return _embedded(address)[0]


def classify(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched ("loopback", "private", ...), or None if it is public."""
    ip = parse_ip(address) if isinstance(address, str) else address
    if ip is None:
        return "not an IP address"
    for candidate in _embedded(ip):
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_loopback:
            return "loopback"
        if candidate.is_link_local:
            return "link-local"
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_reserved:
            return "reserved"
        if candidate.is_private:
            return "private"
        if not candidate.is_global:
            return "reserved"
    return None


def normalise_host(host: str) -> str:
    """Host names compare lower-case without a trailing dot; IP literals in canonical form."""
    ip = parse_ip(host)
    if ip is not None:
        return str(_unwrap(ip))
    return host.strip().rstrip(".").lower()


class AddressPolicy:
    """Refuses non-public addresses unless the host name or the address is allowed."""

    def __init__(self, allowed_private_hosts: Iterable[str] = ()) -> None:
        self.allowed = frozenset(normalise_host(h) for h in allowed_private_hosts if h.strip())

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise ``AddressRefused`` for the first address of ``host`` that may not be used."""
        host_allowed = normalise_host(host) in self.allowed
        for address in addresses:
            if host_allowed or normalise_host(address) in self.allowed:
                continue
            category = classify(address)
            if category is not None:
                raise AddressRefused(address, host, category)


class _Lookups:
    """A few daemon threads that run DNS lookups for every backend, started as needed and
    reused, so a new connection costs no new thread.

    ``getaddrinfo`` cannot be interrupted: a lookup that never answers keeps its thread, and
    the caller stops waiting at its timeout. Daemon threads, so such a lookup never keeps
    the process from exiting; at most ``size`` of them, so hung lookups cannot pile up
    threads either: once all are stuck, lookups wait in the queue and time out.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[[], list[str]]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], list[str]]) -> Future:
        future: Future = Future()
        self._jobs.put((future, job))
        with self._lock:
            if self._idle == 0 and self._threads < self.size:
                self._threads += 1
                self._idle += 1  # counted idle until it takes its first job
                threading.Thread(target=self._work, name="carnival-dns", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if not future.set_running_or_notify_cancel():
                with self._lock:
                    self._idle += 1
                continue  # its caller stopped waiting before it started
            try:
                found, failure = job(), None
            except BaseException as exc:  # reported to the caller as a DNS failure
                found, failure = None, exc
            with self._lock:
                self._idle += 1  # idle again before the caller hears: its next lookup is ours
            if failure is None:
                future.set_result(found)
            else:
                future.set_exception(failure)


_LOOKUPS = _Lookups(64)


class LookupTimeout(NetFault):
    """A DNS lookup did not answer within the connect timeout."""

    def __init__(self, host: str) -> None:
        super().__init__(f"DNS lookup for {host} timed out")
        self.host = host


class Guard:
    """Resolves a host, bounded in time, and checks every address it resolves to.

    The fetcher connects only to the addresses ``addresses`` returns (it pins them in the
    HTTP client, which then never resolves the name itself), so every redirect hop and every
    fresh DNS answer is checked, and the socket goes to an address that was checked, never to
    one the operating system resolves again afterwards.
    """

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver

    def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """Addresses for ``host``: the literal itself, or the resolver's answer (bounded in time)."""
        ip = parse_ip(host)
        if ip is not None:
            return [host.strip("[]")]
        if timeout is not None and timeout <= 0:
            raise LookupTimeout(host)
        lookup = _LOOKUPS.submit(lambda: list(self.resolver(host, port)))
        try:
            found = lookup.result(timeout)
        except (FutureTimeout, CancelledError):
            lookup.cancel()  # not started yet: it never will
            raise LookupTimeout(host) from None
        except Exception as exc:
            logger.debug("carnival: DNS lookup for %s failed: %r", host, exc)
            raise DNSFailure(host) from exc
        addresses = [a for a in found if a]
        if not addresses:
            raise DNSFailure(host)
        return addresses

    def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The addresses the fetcher may connect to for ``host``: all it resolves to, each
        allowed by the policy (else ``AddressRefused``, before any connection)."""
        found = self.resolve(host, port, timeout)
        self.policy.check(host, found)
        return found
