"""Fetch stage: bytes over HTTP with our own client, one ``FetchResult`` per URL.

Policy (see DESIGN.md, "Fetch policy"):

- http and https only, checked before any I/O; every redirect is followed by hand (at most
  ``max_redirects``) and its scheme checked again.
- The address policy (``netpolicy.Guard``) runs before every new connection: the host is
  resolved by us, every address checked, and libcurl pinned to those addresses
  (CURLOPT_RESOLVE), so every hop to a new host and every fresh DNS answer is checked, the
  socket goes to a checked address, and a last look before each request makes sure.
- A connect timeout, a read timeout (nothing arriving for that long; ``_Watch``),
  and an overall deadline per URL that bounds the whole exchange, redirects and body
  included (so a server trickling bytes, in its headers or its body, is cut off on time).
- A cap on the decompressed body, enforced while streaming: we inflate gzip/deflate ourselves
  in bounded pieces, so a gzip bomb never grows beyond the cap in memory.
- HTTP freshness (RFC 9111 section 4.2): a stored response that is still fresh (``max-age``,
  else ``Expires``, each capped by ``max_freshness``) is used without any request, unless
  ``refresh`` asks to revalidate everything. Otherwise a conditional GET against the on-disk
  ``HttpCache``; a 304's header fields refresh the stored ones; a failed fetch leaves the
  cache alone; a ``no-store`` answer is not stored. ``fetch`` writes the cache durably (fsync);
  the bulk ``fetch_each`` and ``fetch_all`` do not (see cache.py for why that is safe).
- TLS: certificates and host names are always verified against certifi's roots (``ca_bundle``
  may add a trusted CA, never switch checks off); a redirect from https to http is refused.
- HTTP/1.1 through libcurl's easy handles (pycurl), no proxy from the environment.
  Bounded concurrency in ``fetch_each`` / ``fetch_all`` (threads kept for the fetcher's life)
  with a polite per-host limit, hosts taking turns; each host's handles keep their connection
  for its next request (``CurlHandles``), and small answers we do not use (304s, redirects,
  error pages) are read to their end so that the connection can be kept. What the cache
  answers with no request (fresh, or offline) is read in the calling thread, not handed to a
  worker thread.

Remote faults are values: ``fetch`` never raises for them; the reason is in ``result.error``.

``post_form`` sends one form-encoded POST (a Webmention, W3C Recommendation section 3.1.3) under
the same address policy, timeouts, deadline and body cap; it follows no redirect and never
touches the cache.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import math
import os
import queue
import re
import socket
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import certifi
import httpx
import pycurl

from .cache import CachedResponse, HttpCache, storable_headers, stores
from .model import FetchResult, utc_datetime
from .netpolicy import (
    AddressPolicy,
    AddressRefused,
    DeadlineExceeded,
    Guard,
    LookupTimeout,
    NetFault,
    Resolver,
    normalise_host,
    parse_ip,
)
from .textutil import Closing

logger = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * 1024

ALLOWED_SCHEMES = ("http", "https")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "text/html;q=0.7, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate"
DECODE_CHUNK = 64 * KiB  # most bytes one inflate step may produce
DRAIN_BYTES = 64 * KiB  # an unused answer body up to this size is read to keep its connection
# Connections kept open to hosts while no request to them is under way, for their next
# requests (CurlHandles): a carnival of thousands of hosts must not hold a socket open
# for each of them.
IDLE_CONNECTIONS = 128


@dataclass(frozen=True)
class FetchSettings:
    """How the fetcher behaves. These defaults are the plugin's defaults too: settings.py
    reads them from here (the CARNIVAL_* setting beside each field), so there is one set."""

    timeout: float = 10.0  # CARNIVAL_TIMEOUT: connect and read timeout, seconds
    deadline: float = 30.0  # CARNIVAL_DEADLINE: wall-clock limit per URL, redirects and body
    max_bytes: int = 10 * MiB  # CARNIVAL_MAX_BYTES: cap on the DECOMPRESSED body, streaming
    max_redirects: int = 5
    # CARNIVAL_CONCURRENCY: total parallel fetches. Politeness is per_host's job; this cap
    # keeps the build's own threads and sockets bounded (a browser's whole socket pool is of
    # this order: Chromium's is 256). A carnival's feeds are mostly on hosts of their own, so
    # with the latency of a blog's server this cap, not per_host, decides how long 2,000
    # feeds take: at 200, ten rounds where 100 took twenty. Lowered to fit the process's
    # open-file limit when that cannot be raised (within_open_files).
    concurrency: int = 200
    per_host: int = 4  # CARNIVAL_PER_HOST: polite parallel limit per host (host:port)
    user_agent: str = "blog-carnival/1.0"  # CARNIVAL_USER_AGENT
    # CARNIVAL_ALLOWED_PRIVATE_HOSTS: names or IP literals that may be fetched though private
    allowed_private_hosts: frozenset[str] = frozenset()
    offline: bool = False  # CARNIVAL_OFFLINE: answer from cache only, "offline: not in cache"
    # CARNIVAL_MAX_FRESHNESS: the longest a stored response is used without asking the server
    # (its max-age or Expires, capped at this), seconds; 0: always revalidate
    max_freshness: float = 3600.0
    refresh: bool = False  # CARNIVAL_REFRESH: revalidate every stored response, fresh or not

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_private_hosts", frozenset(self.allowed_private_hosts))
        for name in ("timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if not self.max_freshness >= 0:
            raise ValueError("max_freshness must be 0 or more seconds")
        for name, least in (
            ("max_bytes", 0),
            ("max_redirects", 0),
            ("concurrency", 1),
            ("per_host", 1),
        ):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}")


# -- faults raised while reading a body ------------------------------------------------------


class TooLarge(NetFault):
    def __init__(self, limit: int) -> None:
        super().__init__(f"too large (more than {format_size(limit)})")


class UndecodableBody(NetFault):
    pass


def format_size(n: int) -> str:
    """10485760 -> "10 MiB", 2048 -> "2 KiB", 1000 -> "1000 bytes"."""
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} bytes"


# Open files a build holds besides those of its requests: the interpreter's and Pelican's
# own, logs, the pipes to parse and fetch workers, and the cache databases (3 files each).
FILES_BESIDES = 64
# Per request under way: its socket, and two spare (when the HTTP cache kept a file per URL,
# one written and one read; kept as a margin for libcurl's resolver and a closing socket).
FILES_PER_REQUEST = 3


def files_needed(settings: FetchSettings) -> int:
    """The open files a fetcher with ``settings`` may hold at once, at most."""
    return FILES_BESIDES + FILES_PER_REQUEST * settings.concurrency + IDLE_CONNECTIONS


def concurrency_within(settings: FetchSettings, open_files: int) -> int:
    """The concurrency that fits in ``open_files`` (at least 1): ``settings.concurrency``
    when it all fits, else as many requests as the files left for requests allow."""
    if open_files >= files_needed(settings):
        return settings.concurrency
    spare = open_files - FILES_BESIDES - IDLE_CONNECTIONS
    return max(1, min(settings.concurrency, spare // FILES_PER_REQUEST))


def open_file_limit(wanted: int) -> int:
    """How many files this process may open, the limit first raised to ``wanted`` when it
    is lower and the hard limit allows, as Go's runtime does for every program since 1.19:
    the soft limit systems start with (256 on macOS, 1,024 on most Linux systems) dates from
    select(2), which nothing here uses, and is below what a 2,000-feed carnival needs."""
    try:
        import resource
    except ImportError:  # no such limit (Windows)
        return wanted
    infinite = resource.RLIM_INFINITY
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == infinite or soft >= wanted:
            return wanted
        raised = wanted if hard == infinite else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    except (OSError, ValueError) as exc:  # refused (a sandbox, macOS's own ceiling): keep it
        logger.debug("carnival: cannot raise the open-file limit to %d: %s", wanted, exc)
    return soft


def within_open_files(settings: FetchSettings) -> FetchSettings:
    """``settings`` with a concurrency this process's open-file limit allows (raised first
    if it can be: ``open_file_limit``); a lower one is logged once, with the way out."""
    limit = open_file_limit(files_needed(settings))
    fits = concurrency_within(settings, limit)
    if fits == settings.concurrency:
        return settings
    logger.warning(
        "carnival: this process may open %d files (ulimit -n), too few to fetch %d feeds at "
        "once: fetching %d at once instead (raise the limit to %d to fetch at full speed)",
        limit,
        settings.concurrency,
        fits,
        files_needed(settings),
    )
    return replace(settings, concurrency=fits)


def format_seconds(s: float) -> str:
    """10.0 -> "10", 0.5 -> "0.5"."""
    return f"{s:g}"


def _printable(text: str, limit: int = 120) -> str:
    """Server-supplied text made safe for one log line and an error reason."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


# -- content decoding in bounded pieces -----------------------------------------------------


class _Inflater:
    """zlib inflation that never returns more than ``DECODE_CHUNK`` bytes per step."""

    def __init__(self, name: str, wbits: int) -> None:
        self.name = name
        self.wbits = wbits
        self._d = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._d.eof:  # bytes after the end of the stream are ignored
            try:
                out = self._d.decompress(data, DECODE_CHUNK)
            except zlib.error as exc:
                if self.name == "deflate" and not self._started and self.wbits > 0:
                    # "deflate" is sometimes sent raw, without the zlib wrapper.
                    self.wbits = -zlib.MAX_WBITS
                    self._d = zlib.decompressobj(self.wbits)
                    continue
                raise UndecodableBody(f"undecodable {self.name} body ({exc})") from exc
            self._started = True
            if out:
                yield out
            data = self._d.unconsumed_tail
            while not data and len(out) == DECODE_CHUNK and not self._d.eof:
                out = self._d.decompress(b"", DECODE_CHUNK)  # drain output zlib still holds
                if out:
                    yield out

    def finish(self) -> Iterator[bytes]:
        try:
            out = self._d.flush()
        except zlib.error as exc:
            raise UndecodableBody(f"undecodable {self.name} body ({exc})") from exc
        if out:
            yield out


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def finish(self) -> Iterator[bytes]:
        return iter(())


class _Chain:
    """Decoders applied in turn: the last listed encoding is undone first."""

    def __init__(self, decoders: list[_Inflater | _Identity]) -> None:
        self.decoders = decoders or [_Identity()]

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(1, self.decoders[0].feed(data))

    def finish(self) -> Iterator[bytes]:
        for i, decoder in enumerate(self.decoders):
            yield from self._through(i + 1, decoder.finish())

    def _through(self, start: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces`` passed through ``decoders[start:]``."""
        if start >= len(self.decoders):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(start + 1, self.decoders[start].feed(piece))


def content_decoder(content_encoding: str | None) -> _Chain:
    """A streaming decoder for a Content-Encoding header (gzip, x-gzip, deflate, identity)."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    decoders: list[_Inflater | _Identity] = []
    for name in reversed([n for n in names if n and n != "identity"]):
        if name in ("gzip", "x-gzip"):
            decoders.append(_Inflater("gzip", zlib.MAX_WBITS | 16))
        elif name == "deflate":
            decoders.append(_Inflater("deflate", zlib.MAX_WBITS))
        else:
            raise UndecodableBody(f"unsupported content-encoding '{_printable(name, 40)}'")
    return _Chain(decoders)


# -- transport: libcurl's easy handles ---------------------------------------------------------
#
# Requests go through libcurl (pycurl): it does the per-request work (the connection, the
# request line, parsing the answer) in C, where httpcore and h11 did it in Python at several
# times the CPU, the cost that decided a build of thousands of feeds on a small machine
# (bench/client_bench.py). Everything that is policy stays here in Python: which addresses may
# be used (``Guard``: resolved and checked by us, then pinned with CURLOPT_RESOLVE so libcurl
# never resolves a name itself), redirects (libcurl follows none), the body cap and the
# decoding (libcurl is given no Accept-Encoding: it passes the bytes as sent), the deadline,
# the cache, and the wording of every fault.

CA_BUNDLE = certifi.where()  # the trusted roots: the same store whatever the machine has


def trust_ca(ca_file: str | bytes | Path) -> bytes:
    """The default trusted roots plus ``ca_file`` (a PEM path), as one PEM bundle to give a
    ``Fetcher`` (``ca_bundle``). Certificate and host name checks stay on; only the set of
    trusted roots grows."""
    return Path(CA_BUNDLE).read_bytes() + b"\n" + Path(os.fsdecode(ca_file)).read_bytes()


class _Handle(pycurl.Curl):
    """An easy handle for one host, that knows the addresses it was pinned to and the
    sockets of its connection.

    ``pinned``: the addresses the guard checked for the handle's connection (libcurl was
    given them with CURLOPT_RESOLVE). A request on that kept-alive connection needs no new
    lookup; one that needs a new connection looks again, as a connection pool resolves a
    name only to open a connection.

    The sockets, so that a stalled transfer can be cut from another thread (``_Watch``):
    libcurl tells us each socket it opens (CURLOPT_SOCKOPTFUNCTION) and lets us close it
    (CURLOPT_CLOSESOCKETFUNCTION), under a lock, so a socket is never cut after its number
    has gone to another file."""

    def __init__(self) -> None:
        super().__init__()
        self.pinned: frozenset[str] | None = None
        self.fds: set[int] = set()
        self.fds_lock = threading.Lock()
        self.setopt(pycurl.SOCKOPTFUNCTION, self._opened)
        self.setopt(pycurl.CLOSESOCKETFUNCTION, self._closing)

    def _opened(self, fd: int, _purpose: int) -> int:
        with self.fds_lock:
            self.fds.add(fd)
        return pycurl.SOCKOPT_OK

    def _closing(self, fd: int) -> int:
        with self.fds_lock:
            self.fds.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        return 0

    def cut(self) -> None:
        """Shut this handle's connection down: the transfer on it ends at once, in error."""
        with self.fds_lock:
            for fd in self.fds:
                try:
                    with socket.socket(fileno=os.dup(fd)) as sock:
                        sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Watch:
    """The read timeout: one thread per fetcher that cuts the connection of any transfer
    in which nothing has arrived for ``timeout`` seconds since the request went out or the
    last piece of the answer came in, as a socket timeout on each read would.

    It is a thread of ours, not a callback of libcurl's progress meter (which libcurl calls
    ten times in a request, each call a turn at the interpreter lock, and while waiting only
    once a second), and it sleeps until the earliest moment a transfer could be stalled.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._under_way: dict[int, tuple[_Exchange, _Handle]] = {}
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self, exchange: _Exchange, handle: _Handle) -> None:
        with self._wake:
            self._under_way[id(exchange)] = (exchange, handle)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="carnival-read-timeout", daemon=True
                )
                self._thread.start()
            elif len(self._under_way) == 1:
                self._wake.notify()

    def stop(self, exchange: _Exchange) -> None:
        with self._wake:
            self._under_way.pop(id(exchange), None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._under_way:
                    self._wake.wait()
                    continue
                now = time.monotonic()
                earliest = now + self.timeout
                for exchange, handle in self._under_way.values():
                    if exchange.stalled:
                        continue
                    due = exchange.active + self.timeout
                    if due <= now:
                        exchange.stalled = True
                        handle.cut()
                    else:
                        earliest = min(earliest, due)
                self._wake.wait(max(WATCH_LEAST, earliest - now))


WATCH_LEAST = 0.02  # the read-timeout thread sleeps at least this long between its rounds


def _configured(ca_bundle: bytes | None, user_agent: str) -> _Handle:
    """A new easy handle with the options every request shares."""
    handle = _Handle()
    handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.FOLLOWLOCATION, 0)  # redirects are ours (``_redirect_target``)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.PROXY, "")  # no proxy from the environment (as trust_env=False was)
    handle.setopt(pycurl.MAXCONNECTS, 1)  # one connection a handle: open sockets = handles
    handle.setopt(pycurl.SSL_VERIFYPEER, 1)
    handle.setopt(pycurl.SSL_VERIFYHOST, 2)
    if ca_bundle is None:
        handle.setopt(pycurl.CAINFO, CA_BUNDLE)
    else:
        handle.setopt(pycurl.CAINFO_BLOB, ca_bundle)
    handle.setopt(pycurl.USERAGENT, user_agent)
    return handle


class CurlHandles:
    """Easy handles by host and port, each keeping its one connection open for that
    host's next request.

    Open connections are bounded as well as busy ones. A handle is leased for each request
    (``lease``) and given back (the release function) when its answer is read. A host the
    caller has no more requests for has its idle handles closed (``retire``); of the other
    idle handles, at most ``idle_connections`` are kept, those of the least recently used
    host beyond that closed. Without this every host of a carnival kept its connections open
    to the end of the run: 2,000 feeds on as many hosts ran out of the process's open files
    (1,024 by default on most Linux systems), and fetches and cache files failed with "Too
    many open files".
    """

    def __init__(
        self,
        new: Callable[[], _Handle],
        *,
        idle_connections: int = IDLE_CONNECTIONS,
    ) -> None:
        self._new = new
        self._idle: OrderedDict[str, list[_Handle]] = OrderedDict()  # oldest host first
        self._idle_count = 0  # their sum
        self._idle_connections = max(0, idle_connections)
        self._users: dict[str, int] = {}  # requests under way, by host
        self._retired: set[str] = set()  # close once idle: nothing more is asked of them
        self._lock = threading.Lock()

    def lease(self, key: str) -> tuple[_Handle, Callable[[], None]]:
        """A handle for ``key`` (the one used last for it, when one is idle) and the function
        to call (once) when the request made with it is done."""
        with self._lock:
            idle = self._idle.get(key)
            handle = idle.pop() if idle else None
            if handle is not None:
                self._idle_count -= 1
                if not idle:
                    del self._idle[key]
            self._users[key] = self._users.get(key, 0) + 1
            self._retired.discard(key)
        if handle is None:
            handle = self._new()
        return handle, _once(functools.partial(self._release, key, handle))

    def retire(self, key: str) -> None:
        """Nothing more will be asked of ``key``'s host for now: close its handles once no
        request to it is under way (at once if none is). Asked again later, it connects
        again."""
        with self._lock:
            if key in self._users:
                self._retired.add(key)
                return
            closing = self._forget_locked(key)
        for handle in closing:
            handle.close()

    def _release(self, key: str, handle: _Handle) -> None:
        closing: list[_Handle] = []
        with self._lock:
            users = self._users.pop(key, 1) - 1
            if users:
                self._users[key] = users
            if key in self._retired and not users:
                self._retired.discard(key)
                closing = [handle, *self._forget_locked(key)]
            else:
                self._idle.setdefault(key, []).append(handle)
                self._idle.move_to_end(key)
                self._idle_count += 1
                while self._idle_count > self._idle_connections:
                    oldest = next(iter(self._idle))
                    closing.extend(self._forget_locked(oldest))
        for old in closing:  # no request under way on it: nothing is cut short
            old.close()

    def _forget_locked(self, key: str) -> list[_Handle]:
        """The idle handles of ``key``, forgotten (the caller closes them, outside the lock)."""
        handles = self._idle.pop(key, [])
        self._idle_count -= len(handles)
        return handles

    def idle(self) -> dict[str, int]:
        """Idle handles by host: what is kept open."""
        with self._lock:
            return {key: len(handles) for key, handles in self._idle.items()}

    def close(self) -> None:
        with self._lock:
            handles = [h for idle in self._idle.values() for h in idle]
            self._idle.clear()
            self._idle_count = 0
            self._retired.clear()
        for handle in handles:
            handle.close()


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, run the first time the result is called and never again."""
    first = threading.Lock()

    def run() -> None:
        if first.acquire(blocking=False):  # taken once, never given back
            action()

    return run


class ReadTimeout(NetFault):
    """Nothing arrived for the read timeout (``_Watch``)."""

    def __init__(self) -> None:
        super().__init__("read timed out")


class CurlFault(NetFault):
    """libcurl's own error: its code, its message, and the system's errno where it has one."""

    def __init__(self, code: int, message: str, os_errno: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.os_errno = os_errno


# How an answer's body is taken (``_Exchange.mode``).
KEEP, DRAIN, CUT = "keep", "drain", "cut"


class _Exchange:
    """One request's answer as libcurl hands it over: the status line and header fields
    (``header``, line by line), then the body in pieces (``write``), decoded and capped as it
    arrives. An answer whose body is not wanted (``keep`` says which) is read to its end when
    it is small and of known size, so that its connection carries the host's next request (a
    connection is only reusable once the whole message has been read, RFC 9112 section 9.3);
    otherwise it is cut at once: closing the connection costs less.

    A fault met in a callback (``TooLarge``, ``UndecodableBody``, ``AddressRefused``) is
    kept in ``fault`` and the transfer stopped: libcurl then reports a write error or an
    abort, and the fault is the reason. ``active`` is when the request went out or the
    answer last moved, for the read timeout (``_Watch``), which sets ``stalled``.
    """

    __slots__ = (
        "allowed",
        "active",
        "stalled",
        "keep",
        "limit",
        "status",
        "fields",
        "complete",
        "mode",
        "body",
        "decoder",
        "fault",
        "broken",
        "drained",
    )

    def __init__(self, keep: Callable[[int], bool], limit: int, allowed: frozenset[str]) -> None:
        self.allowed = allowed  # the addresses the guard checked (``_Handle.pinned``)
        self.active = time.monotonic()
        self.stalled = False
        self.keep = keep
        self.limit = limit
        self.status = 0
        self.fields: dict[str, str] = {}
        self.complete = False  # the header is all in: the answer's status is decided
        self.mode = ""
        self.body = bytearray()
        self.decoder: _Chain | None = None
        self.fault: NetFault | None = None
        self.broken = False  # the transfer failed after the header was in
        self.drained = 0

    def ready(self, address: str, _local: str, _port: int, _local_port: int) -> int:
        """The connection is made (or reused) and the request about to go: to a checked
        address, or not at all (CURLOPT_PREREQFUNCTION; the pinned addresses make it so, this
        makes sure)."""
        if self.stalled:  # libcurl retrying on a new connection the request we cut: no
            return pycurl.PREREQFUNC_ABORT
        self.active = time.monotonic()
        if normalise_host(address) not in self.allowed:
            self.fault = AddressRefused(address, "this request", "not the checked address")
            return pycurl.PREREQFUNC_ABORT
        return pycurl.PREREQFUNC_OK

    def header(self, line: bytes) -> None:
        self.active = time.monotonic()
        if line.startswith(b"HTTP/"):  # a new answer (after a 1xx): its fields start afresh
            parts = line.split(None, 2)
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.fields = {}
            self.complete = False
            return
        if line in (b"\r\n", b"\n"):
            self.complete = not 100 <= self.status < 200
            return
        name, colon, value = line.partition(b":")
        if colon:
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            seen = self.fields.get(key)  # repeated fields are one list (RFC 9110 section 5.3)
            self.fields[key] = text if seen is None else f"{seen}, {text}"

    def write(self, data: bytes) -> int | None:
        self.active = time.monotonic()
        if not self.mode:
            self._choose()
        if self.mode == KEEP:
            try:
                self._take(self.decoder.feed(data))  # type: ignore[union-attr]
            except NetFault as fault:
                self.fault, self.mode = fault, CUT
                return 0  # stops the transfer
            return None
        if self.mode == DRAIN:
            self.drained += len(data)
            if self.drained <= DRAIN_BYTES:
                return None
            self.mode = CUT
        return 0

    def _choose(self) -> None:
        fields = self.fields
        if self.keep(self.status):
            self.mode = KEEP
            encoding = fields.get("content-encoding")
            try:
                self.decoder = content_decoder(encoding)
                if not encoding or encoding.strip().lower() == "identity":
                    length = fields.get("content-length", "")
                    if length.isdigit() and int(length) > self.limit:
                        raise TooLarge(self.limit)
            except NetFault as fault:
                self.fault, self.mode = fault, CUT
            return
        length = fields.get("content-length", "")
        small = length.isdigit() and int(length) <= DRAIN_BYTES
        self.mode = DRAIN if small else CUT

    def _take(self, pieces: Iterator[bytes]) -> None:
        body, limit = self.body, self.limit
        for piece in pieces:
            if len(body) + len(piece) > limit:
                raise TooLarge(limit)
            body.extend(piece)

    def finish(self) -> bytes:
        """The whole decoded body, once the transfer is over."""
        if not self.mode and self.keep(self.status):  # no body at all: nothing chose yet
            self._choose()
        if self.fault is not None:
            raise self.fault
        if self.mode == KEEP:
            if self.broken:
                raise NetFault("the answer was cut short")
            self._take(self.decoder.finish())  # type: ignore[union-attr]
        return bytes(self.body)


# -- the fetcher ----------------------------------------------------------------------------


class _Stop(Exception):
    """Carries a finished result out of the redirect loop."""

    def __init__(self, result: FetchResult) -> None:
        super().__init__(result.error)
        self.result = result


class Fetcher(Closing):
    """Fetch URLs under the fetch policy; thread-safe; close it (or use ``with``) when done.

    ``resolver(host, port) -> list[str]`` replaces DNS (default ``socket.getaddrinfo``).
    ``ca_bundle`` replaces the trusted roots (a PEM bundle; default certifi's store, with
    certificate and host name verification always on): tests pass one that trusts a test CA
    as well (``trust_ca``), so HTTPS is tested without ever turning verification off.
    """

    def __init__(
        self,
        settings: FetchSettings | None = None,
        cache: HttpCache | None = None,
        *,
        resolver: Resolver | None = None,
        ca_bundle: bytes | None = None,
    ) -> None:
        # real sockets: as many at once as the open-file limit allows
        settings = within_open_files(settings or FetchSettings())
        self.settings = settings
        self.cache = cache
        # Whether another process can build the same fetcher from ``settings`` and the cache
        # folder alone (see shards.py): not with a test's resolver or CA.
        self.portable = resolver is None and ca_bundle is None
        self.policy = AddressPolicy(settings.allowed_private_hosts)
        self.guard = Guard(self.policy, resolver)
        self.handles = CurlHandles(functools.partial(_configured, ca_bundle, settings.user_agent))
        self._watch = _Watch(settings.timeout)
        self._get_fields = [f"Accept: {ACCEPT}", f"Accept-Encoding: {ACCEPT_ENCODING}"]
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        with self._slots_lock:
            pool, self._threads = self._threads, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._watch.close()
        self.handles.close()
        if self.cache is not None:
            self.cache.close()  # its database is opened again if it is used again

    # -- public ---------------------------------------------------------------------------
    def fetch(self, url: str, *, secret: str | None = None) -> FetchResult:
        """Fetch one URL; remote faults come back as ``FetchResult.error``, never raised.

        ``secret``: a credential inside ``url`` (an API token in its query string). Such a
        fetch neither reads nor writes the cache (its files would hold the URL), and the log
        lines and ``result.error`` show it as "REDACTED" (``redact``).
        """
        return self._fetch_logged(url, durable=True, secret=secret)

    def _fetch_then(
        self,
        url: str,
        after: Callable[[FetchResult], None] | None,
        fetched: Callable[[], None] | None = None,
    ) -> FetchResult:
        try:
            result = self._fetch_logged(url, durable=False)  # a bulk run: see cache.py
        finally:
            if fetched is not None:  # the network is done with: the next request may go
                fetched()
        if after is not None:
            after(result)
        return result

    def _fetch_logged(self, url: str, durable: bool, secret: str | None = None) -> FetchResult:
        shown = redact(url, secret)
        cache = self.cache if not secret else None
        try:
            result = self._fetch(url, durable, cache)
        except Exception as exc:  # a bug of ours or a library's: log it loudly, carry on
            if secret:  # the exception's text could quote the URL: name its type only
                logger.error(
                    "carnival: unexpected error fetching %s (%s)", shown, type(exc).__name__
                )
            else:
                logger.exception("carnival: unexpected error fetching %s", url)
            result = FetchResult(url=url, error=f"unexpected error ({type(exc).__name__})")
        if secret and result.error:
            result = replace(result, error=redact(result.error, secret))
        if result.error:
            logger.info("carnival: could not fetch %s: %s", shown, result.error)
        else:
            logger.debug(
                "carnival: fetched %s (status %s, %d bytes%s)",
                shown,
                result.status,
                len(result.body or b""),
                ", from cache" if result.from_cache else "",
            )
        return result

    def fetch_all(
        self,
        urls: Iterable[str],
        progress: Callable[[FetchResult], None] | None = None,
    ) -> dict[str, FetchResult]:
        """Fetch each distinct URL once, in parallel; results keyed by URL in first-seen order.

        ``progress`` is called in the calling thread as each result arrives.
        """
        unique = list(dict.fromkeys(urls))
        done: dict[str, FetchResult] = {}
        for result in self.fetch_each(unique):
            done[result.url] = result
            if progress is not None:
                progress(result)
        return {url: done[url] for url in unique}

    def fetch_each(
        self, urls: Iterable[str], after: Callable[[FetchResult], None] | None = None
    ) -> Iterator[FetchResult]:
        """Fetch each distinct URL once, in parallel, yielding results as they arrive (in the
        calling thread), so a caller can use each body and let it go before the next.

        ``after``, when given, is called with each result in the thread that fetched it,
        before the result is yielded: work on a result that reads files or parses belongs
        there, in parallel, rather than in the one calling thread, where every system call
        would wait its turn for the interpreter lock behind the fetching threads.

        A worker is handed a URL only when its host has a free polite slot, hosts taking
        turns: URLs listed host by host would otherwise fill every worker with one host's
        URLs, all but ``per_host`` of them waiting on its slot while other hosts sit idle.
        A request's slot (of its host, and of ``concurrency``) is freed as soon as its answer
        is in, before ``after`` reads it: the next request goes out while this one is read
        (reading happens on extra threads, up to ``concurrency`` more), so a host's rounds
        are not also waiting on the reading. When a host's last URL is done, its connections
        are closed (``CurlHandles.retire``). Closing the iterator early cancels what has
        not started.

        A URL the cache answers with no request (``answers_from_cache``: offline, or a stored
        response still fresh) is fetched and handed to ``after`` right here, in the calling
        thread, between the network's answers: passing it through a worker thread would cost
        more than reading it. (Should the cache have changed meanwhile, the request it then
        needs still waits for its host's polite slot.)
        """
        queues: dict[str, deque[str]] = {}
        here: deque[str] = deque()
        urls = list(dict.fromkeys(urls))
        maybe = self._maybe_from_cache(urls)
        for url in urls:
            if (maybe is None or url in maybe) and self.answers_from_cache(url):
                here.append(url)
            else:
                queues.setdefault(_host_key(url), deque()).append(url)
        total = len(here) + sum(len(q) for q in queues.values())
        if not total:
            return
        turn = deque(queues)  # hosts with URLs waiting, in turn; a host stays while it has some
        busy: dict[str, int] = dict.fromkeys(queues, 0)
        limit, most = self.settings.per_host, self.settings.concurrency
        pool = self._workers()
        retire = self._retire
        lock = threading.RLock()  # a callback may run at once, in the thread that launched
        arrived: queue.SimpleQueue[Future[FetchResult]] = queue.SimpleQueue()
        running: set[Future[FetchResult]] = set()  # not done yet (fetching or being read)
        fetching = 0  # of which on the network
        stopped = False

        def launch() -> None:
            nonlocal fetching
            passed = 0  # hosts passed over in a row because all their slots are taken
            while turn and not stopped and fetching < most and passed < len(turn):
                host = turn.popleft()
                if host and busy[host] >= limit:
                    turn.append(host)
                    passed += 1
                    continue
                passed = 0
                busy[host] += 1
                fetching += 1
                url = queues[host].popleft()
                done = functools.partial(fetched, host, url)
                future = pool.submit(self._fetch_then, url, after, done)
                running.add(future)
                if queues[host]:
                    turn.append(host)
                future.add_done_callback(finished)

        def fetched(host: str, url: str) -> None:
            nonlocal fetching
            with lock:
                busy[host] -= 1
                fetching -= 1
                last = not busy[host] and not queues[host]
                launch()
            if last:  # its connections are not kept for nothing
                retire(url)

        def finished(future: Future[FetchResult]) -> None:
            nonlocal fetching
            with lock:
                running.discard(future)
                if future.cancelled():  # never ran: its slots were never given back
                    fetching -= 1
            arrived.put(future)

        with lock:
            launch()
        try:
            for _ in range(total):
                if here:
                    try:
                        future = arrived.get_nowait()
                    except queue.Empty:  # nothing from the network yet: answer one here
                        yield self._fetch_then(here.popleft(), after)
                        continue
                else:
                    future = arrived.get()
                yield future.result()
        finally:
            with lock:
                stopped = True
                left = list(running)
            for future in left:
                future.cancel()
            futures.wait(left)

    def answers_from_cache(self, url: str) -> bool:
        """Whether fetching ``url`` now would be answered from the cache alone, with no
        request: the fetcher is offline, or the stored response is still fresh (judged from
        its metadata, see ``HttpCache.stored_fresh``). A hint for where to do the work: the
        fetch itself decides again."""
        s = self.settings
        if not isinstance(url, str):  # refused by the fetch itself, with its reason
            return False
        if s.offline:
            return True
        return (
            self.cache is not None
            and not s.refresh
            and self.cache.stored_fresh(url, s.max_freshness)
        )

    def _maybe_from_cache(self, urls: list[str]) -> set[str] | None:
        """Which of ``urls`` ``answers_from_cache`` may say yes to: none when nothing can be
        fresh, those stored (one query for them all) otherwise; None: any of them (offline)."""
        s = self.settings
        if s.offline:
            return None
        if self.cache is None or s.refresh or s.max_freshness <= 0:
            return set()
        return self.cache.stored_among(urls)

    def _workers(self) -> ThreadPoolExecutor:
        """The fetching threads, started on demand and kept for every later ``fetch_all``."""
        with self._slots_lock:
            if self._threads is None:
                # ``concurrency`` on the network, as many again reading answers (fetch_each)
                self._threads = ThreadPoolExecutor(
                    max_workers=2 * self.settings.concurrency, thread_name_prefix="carnival-fetch"
                )
            return self._threads

    def post_form(self, url: str, data: Mapping[str, str]) -> FetchResult:
        """POST ``data`` as application/x-www-form-urlencoded to ``url``; faults are values.

        The same policy as ``fetch`` (schemes, the address policy at connect time, timeouts,
        the deadline, the body cap), but a redirect is not followed (the answer is the
        result: a POST is not repeated somewhere else), nothing is cached, and an offline
        fetcher sends nothing. ``error`` is None exactly when the answer is 2xx; the status
        line decides, so a 2xx whose body cannot be read is still a 2xx (body ``b""``).
        """
        try:
            result = self._post_form(url, data)
        except Exception as exc:  # a bug of ours or a library's: log it loudly, carry on
            logger.exception("carnival: unexpected error posting to %s", url)
            result = FetchResult(url=url, error=f"unexpected error ({type(exc).__name__})")
        if result.error:
            logger.info("carnival: POST to %s failed: %s", url, result.error)
        else:
            logger.debug("carnival: POST to %s answered %s", url, result.status)
        return result

    def _retire(self, url: str) -> None:
        """Close ``url``'s host's idle connections: nothing more is asked of it."""
        target, _ = _checked(url)
        if target is not None:
            self.handles.retire(_slot_key(target))

    # -- internals ------------------------------------------------------------------------
    def _post_form(self, url: str, data: Mapping[str, str]) -> FetchResult:
        current, problem = _checked(url)
        if current is None:
            return FetchResult(url=url, error=problem)
        if self.settings.offline:
            return FetchResult(url=url, error="offline: nothing sent")
        slot = self._slot(current)
        slot.acquire()  # queueing for a polite slot does not count against the deadline
        deadline = time.monotonic() + self.settings.deadline
        form = urlencode(dict(data)).encode("ascii")
        fields = [
            "Accept: */*",
            "Content-Type: application/x-www-form-urlencoded",
            "Expect:",  # no 100-continue round trip
        ]
        try:
            answer = self._perform(current, fields, deadline, lambda status: True, form)
        except NetFault as exc:
            return self._failure(url, current, exc, deadline)
        finally:
            slot.release()
        try:
            body = answer.finish()
        except NetFault as exc:
            # The status line has already answered the question; the body is extra.
            logger.debug("carnival: answer from %s not read: %s", url, exc)
            body = b""
        status, headers = answer.status, answer.fields
        error = None
        if not 200 <= status < 300:
            error = _status_reason(status, headers)
            if status in REDIRECT_STATUSES:
                error = f"HTTP {status} (a redirect; not followed for a POST)"
        return FetchResult(
            url, str(current), status, storable_headers(headers), body=body, error=error
        )

    def _fetch(self, url: str, durable: bool, cache: HttpCache | None) -> FetchResult:
        s = self.settings
        cached = cache.get(url) if cache is not None and isinstance(url, str) else None
        if cached is not None and (
            s.offline or (not s.refresh and cache.is_fresh(cached, s.max_freshness))
        ):
            # Offline, or fresh (RFC 9111 section 4.2): used without a request, so a
            # Retry-After, which is about requests, does not apply. Only a URL that passed
            # ``_checked`` was ever stored, so it is not parsed again to be read back.
            return _from_cache(url, cached, status=cached.status, not_modified=False)
        parsed, problem = _checked(url)
        if parsed is None:
            return FetchResult(url=url, error=problem)
        if s.offline:
            return FetchResult(url=url, error="offline: not in cache")
        held = cache.held_until(url) if cache is not None else None
        if held is not None:
            # The server asked us (Retry-After) to stay away: skip it, never sleep.
            until = datetime.fromtimestamp(held, UTC).strftime("%Y-%m-%d %H:%M UTC")
            return FetchResult(
                url=url, error=f"skipped: the server asked to wait until {until} (Retry-After)"
            )
        return self._fetch_network(url, parsed, cached, durable, cache)

    def _slot(self, target: httpx.URL) -> threading.BoundedSemaphore:
        key = _slot_key(target)
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = threading.BoundedSemaphore(self.settings.per_host)
            return slot

    def _fetch_network(
        self,
        url: str,
        current: httpx.URL,
        cached: CachedResponse | None,
        durable: bool,
        cache: HttpCache | None,
    ) -> FetchResult:
        s = self.settings
        visited = {str(current)}
        redirects = 0
        deadline: float | None = None
        while True:
            slot = self._slot(current)
            if deadline is None:
                slot.acquire()  # queueing for a polite slot does not count against the deadline
                deadline = time.monotonic() + s.deadline
            elif not slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return self._failure(url, current, DeadlineExceeded(), deadline)
            try:
                target = self._hop(url, current, cached, deadline, durable, cache)
            except _Stop as stop:
                return stop.result
            except NetFault as exc:
                return self._failure(url, current, exc, deadline)
            finally:
                slot.release()

            key = str(target)
            if key in visited:
                return FetchResult(url=url, final_url=str(current), error=f"redirect loop at {key}")
            redirects += 1
            if redirects > s.max_redirects:
                return FetchResult(
                    url=url,
                    final_url=str(current),
                    error=f"too many redirects (more than {s.max_redirects})",
                )
            visited.add(key)
            current = target

    def _hop(
        self,
        url: str,
        current: httpx.URL,
        cached: CachedResponse | None,
        deadline: float,
        durable: bool,
        cache: HttpCache | None,
    ) -> httpx.URL:
        """One request; returns the next URL for a redirect, raises ``_Stop`` when done."""
        fields = self._get_fields
        conditional = False
        if cached is not None and cached.final_url == str(current):
            extra = []
            if cached.etag:
                extra.append(f"If-None-Match: {cached.etag}")
            if cached.last_modified:
                extra.append(f"If-Modified-Since: {cached.last_modified}")
            if extra:
                fields, conditional = [*fields, *extra], True
        answer = self._perform(current, fields, deadline, _wanted)
        status, headers = answer.status, answer.fields
        final = str(current)
        if status in REDIRECT_STATUSES and headers.get("location"):
            return _redirect_target(url, current, headers["location"])
        if status == 304 and conditional and cached is not None:
            if cache is not None:  # new validators and freshness are remembered
                cached = cache.refresh(cached, headers)
            raise _Stop(_from_cache(url, cached, status=304, not_modified=True, final_url=final))
        stored = storable_headers(headers)
        if not 200 <= status < 300:
            reason = _status_reason(status, headers)
            if status in (429, 503) and cache is not None:
                now = cache.clock()
                wait = retry_after_seconds(headers.get("retry-after"), now)
                if wait:
                    cache.hold(url, now + wait)
            raise _Stop(FetchResult(url, final, status, stored, error=reason))
        body = answer.finish()
        digest = hashlib.sha256(body).hexdigest()
        if cache is not None:
            if stores(headers):
                cache.put(url, final, status, stored, body, durable=durable, digest=digest)
            else:  # RFC 9111 section 5.2.2.5: not stored, and no older copy is kept either
                cache.remove(url)
        raise _Stop(FetchResult(url, final, status, stored, body=body, digest=digest))

    def _perform(
        self,
        current: httpx.URL,
        fields: list[str],
        deadline: float,
        keep: Callable[[int], bool],
        form: bytes | None = None,
    ) -> _Exchange:
        """Send one request (a GET, or a POST of ``form``) to the checked addresses of
        ``current``'s host and return its answer once read: the header always, the body
        when ``keep(status)``. Raises ``NetFault`` for what kept an answer from arriving."""
        s = self.settings
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        handle, release = self.handles.lease(_slot_key(current))
        try:
            if handle.pinned is None or not handle.fds:  # a new connection: look again
                self._pin(handle, current, min(s.timeout, left))
            exchange = _Exchange(keep, s.max_bytes, handle.pinned)
            handle.setopt(pycurl.URL, str(current))
            handle.setopt(pycurl.HTTPHEADER, fields)
            if form is None:
                handle.setopt(pycurl.HTTPGET, 1)
            else:
                handle.setopt(pycurl.POSTFIELDS, form)
            left = deadline - time.monotonic()
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, math.ceil(min(s.timeout, left) * 1000)))
            handle.setopt(pycurl.TIMEOUT_MS, max(1, math.ceil(left * 1000)))
            handle.setopt(pycurl.HEADERFUNCTION, exchange.header)
            handle.setopt(pycurl.WRITEFUNCTION, exchange.write)
            handle.setopt(pycurl.PREREQFUNCTION, exchange.ready)
            self._watch.start(exchange, handle)
            try:
                handle.perform()
            except pycurl.error as exc:
                # A POST's answer is decided by its status line; a GET's by it too when its
                # body is not wanted. Then a fault in the body does not undo the answer.
                decided = exchange.complete and (form is not None or not keep(exchange.status))
                exchange.broken = True
                if not decided:
                    if exchange.fault is not None:
                        raise exchange.fault from None
                    if exchange.stalled:
                        raise ReadTimeout() from None
                    code, message = exc.args
                    os_errno = handle.getinfo(pycurl.OS_ERRNO)
                    raise CurlFault(code, str(message), os_errno) from None
            finally:
                self._watch.stop(exchange)
                # Callbacks hold the exchange (and its body): the handle lets them go.
                handle.setopt(pycurl.HEADERFUNCTION, _ignore)
                handle.setopt(pycurl.WRITEFUNCTION, _ignore)
                handle.setopt(pycurl.PREREQFUNCTION, _go)
        finally:
            release()
        return exchange

    def _pin(self, handle: _Handle, current: httpx.URL, timeout: float) -> None:
        """Resolve and check ``current``'s host (``Guard``) and pin ``handle`` to those
        addresses: libcurl connects to them and never resolves the name itself."""
        host, port = current.host, current.port or (443 if current.scheme == "https" else 80)
        addresses = self.guard.addresses(host, port, timeout)
        if parse_ip(host) is None:
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            handle.setopt(pycurl.RESOLVE, [f"{host}:{port}:{pinned}"])
        handle.pinned = frozenset(normalise_host(a) for a in addresses)

    def _failure(
        self, url: str, current: httpx.URL, exc: BaseException, deadline: float | None
    ) -> FetchResult:
        return FetchResult(url=url, final_url=str(current), error=self._reason(exc, deadline))

    def _reason(self, exc: BaseException, deadline: float | None) -> str:
        s = self.settings
        past = deadline is not None and time.monotonic() >= deadline
        timeout = isinstance(exc, LookupTimeout | ReadTimeout) or (
            isinstance(exc, CurlFault) and exc.code == pycurl.E_OPERATION_TIMEDOUT
        )
        if isinstance(exc, DeadlineExceeded) or (timeout and past):
            return f"timed out after {format_seconds(s.deadline)} s"
        if timeout:
            return f"timed out after {format_seconds(s.timeout)} s"
        if not isinstance(exc, CurlFault):
            return str(exc)
        return _curl_reason(exc)


def _wanted(status: int) -> bool:
    """Whether a GET answer's body is read: only a success's."""
    return 200 <= status < 300


def _ignore(data: bytes) -> None:
    return None


def _go(*_connection: object) -> int:
    return pycurl.PREREQFUNC_OK


# libcurl's faults by the words the fetcher reports them with; its message follows.
CURL_KINDS = {
    pycurl.E_COULDNT_CONNECT: "connection failed",
    pycurl.E_SSL_CONNECT_ERROR: "TLS handshake failed",
    pycurl.E_FTP_WEIRD_SERVER_REPLY: "protocol error",  # 8, CURLE_WEIRD_SERVER_REPLY
    pycurl.E_UNSUPPORTED_PROTOCOL: "protocol error",
    pycurl.E_GOT_NOTHING: "protocol error",
    pycurl.E_PARTIAL_FILE: "protocol error",
    pycurl.E_RECV_ERROR: "network error",
    pycurl.E_SEND_ERROR: "network error",
    pycurl.E_URL_MALFORMAT: "invalid URL",
}
TLS_VERIFY_PREFIXES = (
    "SSL certificate OpenSSL verify result: ",
    "SSL certificate problem: ",
    "SSL: ",
)


def _curl_reason(fault: CurlFault) -> str:
    message = _printable(str(fault), 160).rstrip(".")
    message = re.sub(r" \(\d+\)$", "", message)  # an OpenSSL code after its words
    if fault.code == pycurl.E_COULDNT_CONNECT and fault.os_errno == errno.ECONNREFUSED:
        return "connection refused"
    if fault.code == pycurl.E_PEER_FAILED_VERIFICATION:
        for prefix in TLS_VERIFY_PREFIXES:
            message = message.removeprefix(prefix)
        return f"TLS certificate verification failed ({message})"
    if fault.code == pycurl.E_GOT_NOTHING:  # libcurl says "Empty reply from server"
        return "protocol error (the server closed the connection without answering)"
    kind = CURL_KINDS.get(fault.code, "network error")
    return f"{kind} ({message})" if message else kind


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` replaced by "REDACTED", as written and as percent-encoded in
    a URL (``quote`` and ``quote_plus`` forms), so a credential never reaches a log or a
    report."""
    if not secret:
        return text
    for form in sorted({secret, quote(secret, safe=""), quote_plus(secret)}, key=len, reverse=True):
        text = text.replace(form, "REDACTED")
    return text


def _checked(url: str) -> tuple[httpx.URL | None, str | None]:
    """``url`` parsed, without its fragment, or why it may not be fetched at all (decided
    without any I/O)."""
    if not isinstance(url, str):
        return None, "invalid URL (not a string)"
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        return None, _describe("invalid URL", exc)
    if not scheme:
        return None, "invalid URL (no scheme)"
    if scheme not in ALLOWED_SCHEMES:
        return None, f"refused scheme '{_printable(scheme, 40)}'"
    try:
        parsed = httpx.URL(url)
        if "#" in url:
            parsed = parsed.copy_with(fragment=None)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        return None, _describe("invalid URL", exc)
    if not parsed.host:
        return None, "invalid URL (no host)"
    return parsed, None


def _slot_key(target: httpx.URL) -> str:
    """What politeness counts connections by: host and port."""
    port = target.port or (443 if target.scheme == "https" else 80)
    return f"{target.host}:{port}"


def _host_key(url: str) -> str:
    """Which host ``url`` is on, for taking turns (politeness itself is ``_slot_key``'s);
    "" when it has none (it fails without I/O). Cheaper than parsing it with httpx."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except (ValueError, TypeError, AttributeError):
        return ""
    return f"{parts.hostname}:{port}" if parts.hostname else ""


def _redirect_target(url: str, current: httpx.URL, location: str) -> httpx.URL:
    try:
        scheme = urlsplit(location).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme and scheme not in ALLOWED_SCHEMES:
        error = f"refused redirect to scheme '{_printable(scheme, 40)}'"
        raise _Stop(FetchResult(url, str(current), error=error))
    try:
        target = current.join(location).copy_with(fragment=None)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise _Stop(
            FetchResult(url, str(current), error=_describe("bad redirect location", exc))
        ) from exc
    if target.scheme not in ALLOWED_SCHEMES:
        error = f"refused redirect to scheme '{_printable(target.scheme, 40)}'"
        raise _Stop(FetchResult(url, str(current), error=error))
    if current.scheme == "https" and target.scheme == "http":
        # Following a redirect is the client's choice (RFC 9110 section 15.4). An https URL
        # promises that what we read was protected in transit (RFC 9110 section 4.2.2); after
        # a downgrade anyone on the path could rewrite the feed we republish, and the links we
        # record would silently become http. Browsers refuse such downgrades for subresources
        # (mixed content) and HSTS (RFC 6797) exists to prevent them: we refuse, and say so.
        raise _Stop(FetchResult(url, str(current), error="refused redirect from https to http"))
    if not target.host:
        raise _Stop(FetchResult(url, str(current), error="bad redirect location (no host)"))
    return target


MAX_HOLD = 7 * 24 * 3600  # a Retry-After longer than a week is not taken at its word


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        when = utc_datetime(value)
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(seconds, MAX_HOLD) if seconds > 0 else None


def _status_reason(status: int, headers: httpx.Headers) -> str:
    if status == 410:
        return "HTTP 410 (gone)"
    if status == 429:
        retry_after = headers.get("retry-after")
        if retry_after:
            return f"HTTP 429 (rate limited; Retry-After: {_printable(retry_after, 40)})"
        return "HTTP 429 (rate limited)"
    if status in (304, *REDIRECT_STATUSES):
        return f"HTTP {status} (unexpected)"
    return f"HTTP {status}"


def _from_cache(
    url: str,
    cached: CachedResponse,
    *,
    status: int,
    not_modified: bool,
    final_url: str | None = None,
) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=final_url or cached.final_url,
        status=status,
        headers=cached.headers,
        body=cached.body,
        not_modified=not_modified,
        from_cache=True,
        digest=cached.digest,
    )


def _describe(kind: str, exc: BaseException) -> str:
    message = _printable(str(exc), 160)
    name = type(exc).__name__
    return f"{kind} ({name}: {message})" if message else f"{kind} ({name})"
