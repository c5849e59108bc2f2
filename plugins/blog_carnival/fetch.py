"""Fetch stage: bytes over HTTP with our own client, one ``FetchResult`` per URL.

Policy (see DESIGN.md, "Fetch policy"):

- http and https only, checked before any I/O; every redirect is followed by hand (at most
  ``max_redirects``) and its scheme checked again.
- The address policy (``netpolicy.Guard``): a host is resolved by us the first time a
  fetcher asks for it, every address checked, and libcurl pinned to those addresses
  (CURLOPT_RESOLVE) for the fetcher's life (``Fetcher._pinned``), so every hop to a new
  host is checked, every socket goes to a checked address, no later DNS answer (a rebinding
  attack's) is used, and a last look before each request makes sure.
- A connect timeout, a read timeout (nothing arriving for that long; ``_Loop._watch``),
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
- HTTP/1.1 through libcurl's multi interface (pycurl), no proxy from the environment, every
  transfer and the policy between them in one thread per fetcher (``_Loop``). Bounded
  concurrency with a polite per-host limit, hosts taking turns; connections are kept for a
  host's next requests (a bounded number of idle ones, least recently used closed first),
  and small answers we do not use (304s, redirects, error pages) are read to their end so
  that the connection can be kept. What the cache answers with no request (fresh, or
  offline) is read in the calling thread, not handed to the loop.

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
import heapq
import itertools
import logging
import math
import os
import queue
import re
import selectors
import socket
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
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
# requests (CURLMOPT_MAXCONNECTS, beyond those under way): a carnival of thousands of hosts
# must not hold a socket open for each of them.
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


# -- transport: libcurl's multi interface, in one thread -----------------------------------------
#
# Requests go through libcurl (pycurl): it does the per-request work (the connection, the
# request line, parsing the answer) in C, where httpcore and h11 did it in Python at several
# times the CPU, the cost that decided a build of thousands of feeds on a small machine
# (bench/client_bench.py). Everything that is policy stays here in Python: which addresses may
# be used (``Guard``: resolved and checked by us, then pinned with CURLOPT_RESOLVE so libcurl
# never resolves a name itself), redirects (libcurl follows none), the body cap and the
# decoding (libcurl is given no Accept-Encoding: it passes the bytes as sent), the deadline,
# the read timeout, the cache, and the wording of every fault.
#
# All of it runs in one thread per fetcher (``_Loop``), on libcurl's multi interface: each
# URL's policy is a generator that yields what it waits for (a polite slot, a DNS lookup, a
# transfer) and the loop resumes it when that is there. A thread per request, as before,
# cost about twenty context switches a request on a small VM (the interpreter lock changing
# hands among the threads libcurl's callbacks woke), some 1 ms of CPU; one thread has none.

CA_BUNDLE = certifi.where()  # the trusted roots: the same store whatever the machine has


def trust_ca(ca_file: str | bytes | Path) -> bytes:
    """The default trusted roots plus ``ca_file`` (a PEM path), as one PEM bundle to give a
    ``Fetcher`` (``ca_bundle``). Certificate and host name checks stay on; only the set of
    trusted roots grows."""
    return Path(CA_BUNDLE).read_bytes() + b"\n" + Path(os.fsdecode(ca_file)).read_bytes()


def _configured(ca_bundle: bytes | None, user_agent: str) -> pycurl.Curl:
    """A new easy handle with the options every request shares."""
    handle = pycurl.Curl()
    handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.FOLLOWLOCATION, 0)  # redirects are ours (``_redirect_target``)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.PROXY, "")  # no proxy from the environment (as trust_env=False was)
    handle.setopt(pycurl.SSL_VERIFYPEER, 1)
    handle.setopt(pycurl.SSL_VERIFYHOST, 2)
    if ca_bundle is None:
        handle.setopt(pycurl.CAINFO, CA_BUNDLE)
    else:
        handle.setopt(pycurl.CAINFO_BLOB, ca_bundle)
    handle.setopt(pycurl.USERAGENT, user_agent)
    return handle


class _Slot(NamedTuple):
    """Wait for a polite slot of ``key`` (host and port) and a place among ``concurrency``;
    resumed with True, or with False once ``deadline`` (``time.monotonic``; None: none) is
    past. The slot is the waiter's until it gives it back (``_Loop.free``)."""

    key: str
    deadline: float | None


class _Lookup(NamedTuple):
    """Resolve ``host`` and check every address (``Guard.addresses``, in a thread of its
    own); resumed with the addresses, or with the ``NetFault`` thrown in."""

    host: str
    port: int
    timeout: float


class _Transfer(NamedTuple):
    """Run ``handle``'s transfer; resumed with None once it completed, else with libcurl's
    (code, message, errno). ``exchange`` is its answer, which the read timeout watches."""

    handle: pycurl.Curl
    exchange: _Exchange


Steps = Generator[object, object, FetchResult]
WATCH_LEAST = 0.02  # the read timeout is looked at no more often than this (seconds)
SPARE_HANDLES = 64  # easy handles kept for the next requests (connections are the multi's)


class _Task:
    """One URL's steps in the loop; ``done`` gets its result (None: cancelled), in the loop's
    thread."""

    __slots__ = ("steps", "done", "cancelled", "waiting")

    def __init__(self, steps: Steps, done: Callable[[FetchResult | None], None]) -> None:
        self.steps = steps
        self.done = done
        self.cancelled = False
        self.waiting: str | None = None  # the slot it waits for, if it does


class _Loop:
    """The fetcher's network thread: libcurl's multi interface driven by ``socket_action``
    and a ``selectors`` poller, the polite slots, and the steps of every URL under way.

    Slots: at most ``per_host`` held for one host and port, ``concurrency`` in all; hosts
    with waiters take turns (``_ready``), so one host with many URLs never holds back the
    others. The read timeout: a transfer in which nothing has arrived for ``timeout`` seconds
    since the request went out or the answer last moved is removed from the multi handle,
    which ends it and closes its connection (so libcurl never retries it on another).

    Everything but ``submit``, ``run``, ``cancel`` and ``close`` runs in the loop's thread;
    the steps of a URL call ``free`` and ``handle``/``give_back`` from there too.
    """

    def __init__(
        self,
        settings: FetchSettings,
        guard: Guard,
        new_handle: Callable[[], pycurl.Curl],
    ) -> None:
        self.per_host = settings.per_host
        self.most = settings.concurrency
        self.timeout = settings.timeout
        self.guard = guard
        self._new_handle = new_handle
        self._lock = threading.Lock()  # the thread's start and stop, and the inbox
        self._thread: threading.Thread | None = None
        self._inbox: deque[Callable[[], None]] = deque()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # -- the loop thread's own --
        self._spare: list[pycurl.Curl] = []
        self._busy: dict[str, int] = {}
        self._running = 0  # slots held
        self._waiting: dict[str, deque[_Task]] = {}
        self._ready: deque[str] = deque()  # keys with waiters and a free slot, in turn
        self._in_ready: set[str] = set()
        self._deadlines: list[tuple[float, int, _Task, str]] = []  # heap of slot waits
        self._order = itertools.count()
        self._runnable: deque[tuple[_Task, object, BaseException | None]] = deque()
        self._results: list[tuple[_Task, FetchResult]] = []  # to hand over (``done``)
        self._transfers: dict[int, tuple[_Task, pycurl.Curl, _Exchange]] = {}
        self._lookups: dict[tuple[str, int], list[_Task]] = {}
        self._lookup_threads: ThreadPoolExecutor | None = None
        self._multi: pycurl.CurlMulti | None = None
        self._selector: selectors.BaseSelector | None = None
        self._curl_due: float | None = None  # when libcurl asked to be called back
        self._watch_due = 0.0  # when the read timeout is looked at next
        self._stopping = False
        self._connecting = False  # a transfer started since the sockets were last looked at

    # -- from any thread ----------------------------------------------------------------
    def submit(self, tasks: list[_Task]) -> None:
        """Start ``tasks`` (their steps run in the loop's thread)."""
        self._post(functools.partial(self._start, tasks))

    def run(self, steps: Steps, first: object) -> FetchResult:
        """Run ``steps`` (whose first step ``first`` it has already yielded) to their end
        in the loop, and wait for the result here."""
        if threading.current_thread() is self._thread:  # it would wait for itself forever
            raise RuntimeError("a fetch from within the fetcher's own loop (an after callback)")
        answer: Future[FetchResult] = Future()

        def done(result: FetchResult | None) -> None:
            if not answer.done():
                answer.set_result(result)  # type: ignore[arg-type]

        task = _Task(steps, done)
        self._post(functools.partial(self._do, task, first))
        return answer.result()

    def cancel(self, tasks: list[_Task]) -> None:
        """Those of ``tasks`` still waiting for a slot never start (``done(None)``); those
        under way go on to their end."""
        for task in tasks:
            task.cancelled = True
        self._post(self._sweep)

    def close(self) -> None:
        """Stop the thread once nothing is under way, closing every connection."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._inbox.append(self._stop)
            self._wake()
        thread.join()

    def _post(self, action: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._wake_r, self._wake_w = socket.socketpair()
                self._wake_r.setblocking(False)
                self._wake_w.setblocking(False)
                self._thread = threading.Thread(
                    target=self._run, name="carnival-fetch", daemon=True
                )
                self._thread.start()
            was_empty = not self._inbox
            self._inbox.append(action)
            if was_empty:
                self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: it is awake already
            self._wake_w.send(b".")  # type: ignore[union-attr]

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        multi = self._multi = pycurl.CurlMulti()
        # Connections kept after use: every one under way may be kept, and as many idle ones
        # again as IDLE_CONNECTIONS; beyond that libcurl closes the least recently used.
        multi.setopt(pycurl.M_MAXCONNECTS, self.most + IDLE_CONNECTIONS)
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        selector = self._selector = selectors.DefaultSelector()
        wake_r = self._wake_r
        selector.register(wake_r, selectors.EVENT_READ, None)
        try:
            while True:
                self._take_inbox()
                self._advance_all()
                if self._stopping and not self._transfers and not self._runnable:
                    break
                self._poll(self._next_timeout())
                now = time.monotonic()
                if self._curl_due is not None and now >= self._curl_due:
                    self._curl_due = None
                    multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
                self._finished()
                if now >= self._watch_due:
                    self._watch(now)
                if self._deadlines and self._deadlines[0][0] <= now:
                    self._expire(now)
        except BaseException as exc:  # a bug of ours or libcurl's: no caller may wait forever
            logger.exception("carnival: the fetching loop failed")
            self._fail_all(f"unexpected error ({type(exc).__name__})")
        else:
            self._fail_all("the fetcher was closed")  # nothing should be left: just in case
        finally:
            self._shut()

    def _poll(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` for the sockets libcurl watches (or a wake-up), and hand
        libcurl what became ready."""
        multi, wake_r = self._multi, self._wake_r
        assert multi is not None and self._selector is not None
        for key, mask in self._selector.select(timeout):
            if key.fileobj is wake_r:
                with contextlib.suppress(OSError):
                    wake_r.recv(4096)  # type: ignore[union-attr]
                continue
            action = 0
            if mask & selectors.EVENT_READ:
                action |= pycurl.CSELECT_IN
            if mask & selectors.EVENT_WRITE:
                action |= pycurl.CSELECT_OUT
            multi.socket_action(key.fd, action)

    def _take_inbox(self) -> None:
        with self._lock:
            actions, self._inbox = self._inbox, deque()
        for action in actions:
            action()

    def _next_timeout(self) -> float | None:
        if self._runnable or self._inbox:
            return 0
        now = time.monotonic()
        due = [d for d in (self._curl_due, self._deadlines[0][0] if self._deadlines else None) if d]
        if self._transfers:
            due.append(self._watch_due)
        if not due:
            return None
        return max(0.0, min(due) - now)

    def _on_socket(self, what: int, fd: int, _multi: object, _data: object) -> None:
        selector = self._selector
        assert selector is not None
        if what == pycurl.POLL_REMOVE:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(fd)
            return
        events = 0
        if what in (pycurl.POLL_IN, pycurl.POLL_INOUT):
            events |= selectors.EVENT_READ
        if what in (pycurl.POLL_OUT, pycurl.POLL_INOUT):
            events |= selectors.EVENT_WRITE
        if not events:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(fd)
            return
        try:
            selector.modify(fd, events)
        except KeyError:
            selector.register(fd, events)

    def _on_timer(self, ms: int) -> None:
        self._curl_due = None if ms < 0 else time.monotonic() + ms / 1000

    def _finished(self) -> bool:
        """Resume the steps whose transfers ended; whether there were any."""
        multi = self._multi
        assert multi is not None
        ended = False
        while True:
            left, done, failed = multi.info_read()
            for handle in done:
                self._ended(handle, None)
            for handle, code, message in failed:
                self._ended(handle, (code, message, handle.getinfo(pycurl.OS_ERRNO)))
            ended = ended or bool(done or failed)
            if not left:
                return ended

    def _ended(self, handle: pycurl.Curl, outcome: tuple | None) -> None:
        entry = self._transfers.pop(id(handle), None)
        self._multi.remove_handle(handle)  # type: ignore[union-attr]
        if entry is not None:
            self._runnable.append((entry[0], outcome, None))

    def _watch(self, now: float) -> None:
        """The read timeout: end every transfer in which nothing has moved for too long."""
        earliest = now + self.timeout
        for key, (task, handle, exchange) in list(self._transfers.items()):
            due = exchange.active + self.timeout
            if due <= now:
                exchange.stalled = True
                del self._transfers[key]
                self._multi.remove_handle(handle)  # type: ignore[union-attr]
                self._runnable.append((task, (pycurl.E_OPERATION_TIMEDOUT, "", 0), None))
            else:
                earliest = min(earliest, due)
        self._watch_due = max(earliest, now + WATCH_LEAST)

    # -- steps ------------------------------------------------------------------------------
    def _start(self, tasks: list[_Task]) -> None:
        for task in tasks:
            self._runnable.append((task, None, None))

    def _advance_all(self) -> None:
        while True:
            while self._runnable:
                task, value, error = self._runnable.popleft()
                self._advance(task, value, error)
                if self._connecting and self._runnable:
                    # A new connection's request is sent once its socket is writable: look
                    # now, not once every other step has run. Else a first round's requests
                    # all left together after the last was prepared (measured: at 200 feeds
                    # on 20 hosts, 80 requests, the first left 20-45 ms late, and every
                    # host's chain of requests with it).
                    self._connecting = False
                    self._poll(0)
            if self._grant():
                continue
            if self._multi is not None and self._finished():
                continue  # transfers a step's request ended at once (a fast answer)
            if not self._results:
                return
            # The requests that could go out are out: now hand over what came in.
            results, self._results = self._results, []
            for task, result in results:
                task.done(result)

    def _advance(self, task: _Task, value: object, error: BaseException | None) -> None:
        try:
            step = task.steps.throw(error) if error is not None else task.steps.send(value)
        except StopIteration as stop:
            self._results.append((task, stop.value))
            return
        except BaseException as exc:  # the steps catch what they expect: this is a bug
            logger.exception("carnival: a fetch failed unexpectedly")
            task.done(FetchResult(url="", error=f"unexpected error ({type(exc).__name__})"))
            return
        self._do(task, step)

    def _do(self, task: _Task, step: object) -> None:
        kind = type(step)
        if kind is _Slot:
            self._want_slot(task, step)  # type: ignore[arg-type]
        elif kind is _Transfer:
            handle, exchange = step  # type: ignore[misc]
            self._transfers[id(handle)] = (task, handle, exchange)
            exchange.active = time.monotonic()
            if len(self._transfers) == 1:
                self._watch_due = exchange.active + self.timeout
            self._multi.add_handle(handle)  # type: ignore[union-attr]
            # Have libcurl send it now, not once every other step waiting has run: on a
            # connection kept from before it goes out here; a new one's goes out when
            # ``_poll`` finds it connected.
            self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)  # type: ignore[union-attr]
            self._connecting = True
        elif kind is _Lookup:
            self._look_up(task, step)  # type: ignore[arg-type]
        else:
            error = TypeError(f"unknown fetch step {step!r}")
            self._runnable.append((task, None, error))

    def _want_slot(self, task: _Task, step: _Slot) -> None:
        key = step.key
        if task.cancelled:
            self._drop(task)
            return
        task.waiting = key
        self._waiting.setdefault(key, deque()).append(task)
        if step.deadline is not None:
            heapq.heappush(self._deadlines, (step.deadline, next(self._order), task, key))
        if self._busy.get(key, 0) < self.per_host and key not in self._in_ready:
            self._ready.append(key)
            self._in_ready.add(key)

    def _grant(self) -> bool:
        """Hand free slots to waiters, hosts taking turns; whether any was handed out."""
        granted = False
        while self._ready and self._running < self.most:
            key = self._ready.popleft()
            self._in_ready.discard(key)
            waiters = self._waiting.get(key)
            busy = self._busy.get(key, 0)
            if not waiters or busy >= self.per_host:
                continue
            task = waiters.popleft()
            if not waiters:
                del self._waiting[key]
            elif busy + 1 < self.per_host:
                self._ready.append(key)
                self._in_ready.add(key)
            task.waiting = None
            if task.cancelled:
                self._drop(task)
                continue
            self._busy[key] = busy + 1
            self._running += 1
            self._runnable.appendleft((task, True, None))  # its request goes out first
            granted = True
        return granted

    def free(self, key: str) -> None:
        """Give back a slot of ``key``."""
        busy = self._busy.get(key, 0) - 1
        if busy > 0:
            self._busy[key] = busy
        else:
            self._busy.pop(key, None)
        self._running -= 1
        if key in self._waiting and key not in self._in_ready:
            self._ready.append(key)
            self._in_ready.add(key)
        self._grant()  # the next request goes out before the answer just in is read

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, task, key = heapq.heappop(self._deadlines)
            if task.waiting != key:
                continue  # it had its slot in time
            waiters = self._waiting.get(key)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(task)
                if not waiters:
                    del self._waiting[key]
            task.waiting = None
            self._runnable.append((task, False, None))

    def _sweep(self) -> None:
        """End the cancelled tasks that wait for a slot."""
        for key in list(self._waiting):
            waiters = self._waiting[key]
            kept = deque(t for t in waiters if not t.cancelled)
            for task in waiters:
                if task.cancelled:
                    task.waiting = None
                    self._drop(task)
            if kept:
                self._waiting[key] = kept
            else:
                del self._waiting[key]

    def _drop(self, task: _Task) -> None:
        task.steps.close()
        task.done(None)

    def _look_up(self, task: _Task, step: _Lookup) -> None:
        """Lookups of one host at once are one lookup."""
        key = (step.host, step.port)
        waiting = self._lookups.get(key)
        if waiting is not None:
            waiting.append(task)
            return
        self._lookups[key] = [task]
        if self._lookup_threads is None:
            self._lookup_threads = ThreadPoolExecutor(8, thread_name_prefix="carnival-lookup")

        def look() -> None:
            try:
                found: object = self.guard.addresses(step.host, step.port, step.timeout)
                error = None
            except BaseException as exc:  # handed to every step waiting for it
                found, error = None, exc
            self._post(functools.partial(self._looked, key, found, error))

        self._lookup_threads.submit(look)

    def _looked(self, key: tuple[str, int], found: object, error: BaseException | None) -> None:
        for task in self._lookups.pop(key, []):
            self._runnable.append((task, found, error))

    def handle(self) -> pycurl.Curl:
        """An easy handle for one transfer (``give_back`` it after)."""
        return self._spare.pop() if self._spare else self._new_handle()

    def give_back(self, handle: pycurl.Curl) -> None:
        if len(self._spare) < SPARE_HANDLES:
            self._spare.append(handle)
        else:
            handle.close()

    # -- the end ----------------------------------------------------------------------------
    def _stop(self) -> None:
        self._stopping = True

    def _fail_all(self, reason: str) -> None:
        """End every task still in the loop with ``reason``."""
        tasks = [t for t, _, _ in self._runnable] + [t for t, _, _ in self._transfers.values()]
        tasks += [t for waiters in self._waiting.values() for t in waiters]
        tasks += [t for waiting in self._lookups.values() for t in waiting]
        tasks += [t for t, _ in self._results]
        self._runnable.clear()
        self._results.clear()
        for task in tasks:
            with contextlib.suppress(Exception):
                task.steps.close()
            task.done(FetchResult(url="", error=reason))

    def _shut(self) -> None:
        multi = self._multi
        for _, handle, _ in self._transfers.values():
            with contextlib.suppress(pycurl.error):
                multi.remove_handle(handle)  # type: ignore[union-attr]
        self._transfers.clear()
        if multi is not None:
            multi.close()  # and every connection it kept
        for handle in self._spare:
            handle.close()
        self._spare.clear()
        if self._selector is not None:
            self._selector.close()
        self._wake_r.close()
        if self._wake_w is not None:
            self._wake_w.close()
        if self._lookup_threads is not None:
            self._lookup_threads.shutdown(wait=False)
        self._multi = self._selector = self._lookup_threads = None
        self._busy.clear()
        self._running = 0
        self._waiting.clear()
        self._ready.clear()
        self._in_ready.clear()
        self._deadlines.clear()
        self._lookups.clear()
        self._stopping = False
        self._curl_due = None
        with self._lock:
            if self._thread is threading.current_thread():
                self._thread = None  # it failed: the next use starts a new thread
            leftover, self._inbox = self._inbox, deque()
        for action in leftover:  # posted while it stopped: run them on the next thread
            self._post(action)


class ReadTimeout(NetFault):
    """Nothing arrived for the read timeout (``_Loop._watch``)."""

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
    answer last moved, for the read timeout (``_Loop._watch``), which sets ``stalled``.
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
        self.allowed = allowed  # the addresses the guard checked (``Fetcher._pinned``)
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

    A host's name is looked up and its addresses checked once in a fetcher's life (its first
    request to that host and port, see ``_pinned``): libcurl connects only to those addresses,
    so no later DNS answer, such as a rebinding attack's, is ever used.
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
        new_handle = functools.partial(_configured, ca_bundle, settings.user_agent)
        self._loop = _Loop(settings, self.guard, new_handle)
        self._get_fields = [f"Accept: {ACCEPT}", f"Accept-Encoding: {ACCEPT_ENCODING}"]
        # host:port -> (the checked addresses, libcurl's CURLOPT_RESOLVE entry for a name)
        self._pins: dict[str, tuple[frozenset[str], list[str]]] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self._loop.close()
        self._pins.clear()
        if self.cache is not None:
            self.cache.close()  # its database is opened again if it is used again

    # -- public ---------------------------------------------------------------------------
    def fetch(self, url: str, *, secret: str | None = None) -> FetchResult:
        """Fetch one URL; remote faults come back as ``FetchResult.error``, never raised.

        ``secret``: a credential inside ``url`` (an API token in its query string). Such a
        fetch neither reads nor writes the cache (its files would hold the URL), and the log
        lines and ``result.error`` show it as "REDACTED" (``redact``).
        """
        cache = self.cache if not secret else None
        return self._here(self._logged(url, self._steps(url, True, cache), secret))

    def _here(self, steps: Steps) -> FetchResult:
        """Run ``steps`` in this thread until they need the network, then in the loop."""
        try:
            first = next(steps)
        except StopIteration as stop:  # answered without the network (cache, refusal)
            return stop.value
        return self._loop.run(steps, first)

    def _logged(self, url: str, steps: Steps, secret: str | None = None) -> Steps:
        shown = redact(url, secret)
        try:
            result = yield from steps
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

        ``after``, when given, is called with each result before the result is yielded, in
        the fetcher's loop, once the requests that could go out have gone out: work on a
        result that reads files or parses belongs there, beside the network's waiting,
        rather than in the calling thread, which would wake for every result (measured: a
        thread of its own for it cost more than the reading). It holds up the next round of
        answers while it runs, so it must be short (many feeds are parsed in worker
        processes, see parsepool).

        Every URL waits for a polite slot of its host (``_Loop``: hosts take turns, so URLs
        listed host by host do not keep other hosts idle) and gives it back as soon as its
        answer is in, before ``after`` reads it: the next request goes out while this one is
        read. A host's last requests of the run close their connections when done
        (CURLOPT_FORBID_REUSE): nothing more is asked of it. Closing the iterator early
        cancels what has not started, and waits for what has.

        A URL the cache answers with no request (``answers_from_cache``: offline, or a stored
        response still fresh) is fetched and handed to ``after`` right here, in the calling
        thread, between the network's answers: passing it through the loop would cost more
        than reading it. (Should the cache have changed meanwhile, the request it then needs
        still waits for its host's polite slot.)
        """
        here: deque[str] = deque()
        network: list[str] = []
        urls = list(dict.fromkeys(urls))
        stored = self.cache.stored_among(urls) if self.cache is not None else set()
        maybe = self._maybe_from_cache(stored)
        for url in urls:
            if (maybe is None or url in maybe) and self.answers_from_cache(url):
                here.append(url)
            else:
                network.append(url)
        total = len(here) + len(network)
        if not total:
            return
        arrived: queue.SimpleQueue[FetchResult | _Raised] = queue.SimpleQueue()
        outstanding = [len(network)]  # tasks whose result is not handed over yet
        settled = threading.Condition()

        def handed_over() -> None:
            with settled:
                outstanding[0] -= 1
                if not outstanding[0]:
                    settled.notify_all()

        def read(result: FetchResult) -> None:
            try:
                after(result)  # type: ignore[misc]
                arrived.put(result)
            except BaseException as exc:  # raised in the calling thread, as before
                arrived.put(_Raised(exc))
            finally:
                handed_over()

        def done(result: FetchResult | None) -> None:  # in the loop's thread
            if result is None:  # cancelled
                handed_over()
            elif after is None:
                arrived.put(result)
                handed_over()
            else:
                read(result)

        tasks = [
            _Task(self._logged(url, self._bulk(url, key, closing, url in stored)), done)
            for url, key, closing in _by_host(network, self.settings.per_host)
        ]
        if tasks:
            self._loop.submit(tasks)
        try:
            for _ in range(total):
                if here:
                    try:
                        result = arrived.get_nowait()
                    except queue.Empty:  # nothing from the network yet: answer one here
                        yield self._read_here(here.popleft(), after)
                        continue
                else:
                    result = arrived.get()
                if isinstance(result, _Raised):
                    raise result.exc
                yield result
        finally:
            if tasks:
                self._loop.cancel(tasks)
            with settled:
                settled.wait_for(lambda: not outstanding[0])

    def _read_here(self, url: str, after: Callable[[FetchResult], None] | None) -> FetchResult:
        result = self._here(self._logged(url, self._steps(url, False, self.cache)))
        if after is not None:
            after(result)
        return result

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

    def _maybe_from_cache(self, stored: set[str]) -> set[str] | None:
        """Which URLs ``answers_from_cache`` may say yes to: none when nothing can be fresh,
        those ``stored`` otherwise; None: any of them (offline)."""
        s = self.settings
        if s.offline:
            return None
        if s.refresh or s.max_freshness <= 0:
            return set()
        return stored

    def post_form(self, url: str, data: Mapping[str, str]) -> FetchResult:
        """POST ``data`` as application/x-www-form-urlencoded to ``url``; faults are values.

        The same policy as ``fetch`` (schemes, the address policy at connect time, timeouts,
        the deadline, the body cap), but a redirect is not followed (the answer is the
        result: a POST is not repeated somewhere else), nothing is cached, and an offline
        fetcher sends nothing. ``error`` is None exactly when the answer is 2xx; the status
        line decides, so a 2xx whose body cannot be read is still a 2xx (body ``b""``).
        """
        try:
            result = self._here(self._post_form(url, data))
        except Exception as exc:  # a bug of ours or a library's: log it loudly, carry on
            logger.exception("carnival: unexpected error posting to %s", url)
            result = FetchResult(url=url, error=f"unexpected error ({type(exc).__name__})")
        if result.error:
            logger.info("carnival: POST to %s failed: %s", url, result.error)
        else:
            logger.debug("carnival: POST to %s answered %s", url, result.status)
        return result

    # -- internals: the steps of one URL (generators the loop runs, see ``_Loop``) ---------
    def _post_form(self, url: str, data: Mapping[str, str]) -> Steps:
        current, problem = _checked(url)
        if current is None:
            return FetchResult(url=url, error=problem)
        if self.settings.offline:
            return FetchResult(url=url, error="offline: nothing sent")
        key = _slot_key(current)
        yield _Slot(key, None)  # queueing for a polite slot does not count against the deadline
        deadline = time.monotonic() + self.settings.deadline
        form = urlencode(dict(data)).encode("ascii")
        fields = [
            "Accept: */*",
            "Content-Type: application/x-www-form-urlencoded",
            "Expect:",  # no 100-continue round trip
        ]
        try:
            answer = yield from self._perform(current, fields, deadline, lambda status: True, form)
        except NetFault as exc:
            return self._failure(url, current, exc, deadline)
        finally:
            self._loop.free(key)
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

    def _bulk(self, url: str, key: str, closing: bool, stored: bool) -> Steps:
        """``_steps`` for ``fetch_each``: the URL first waits for a slot of its host ``key``
        (hosts take turns), and only then reads the cache, so the first requests of a large
        run go out before the rest are even looked at. ``closing``: the host's connection
        is closed after this request. ``stored``: the cache had the URL when the run began
        (else it is not read: a first build's lookups would wait for its writes)."""
        yield _Slot(key, None)
        return (
            yield from self._steps(url, False, self.cache, held=key, closing=closing, stored=stored)
        )

    def _steps(
        self,
        url: str,
        durable: bool,
        cache: HttpCache | None,
        held: str | None = None,
        closing: bool = False,
        stored: bool = True,
    ) -> Steps:
        """One URL under the fetch policy. ``held``: a slot already taken for it (given back
        here). ``stored``: False when the cache is known not to have it (not read then)."""
        try:
            before = self._before_network(url, cache, stored)
        except BaseException:
            if held is not None:
                self._loop.free(held)
            raise
        if isinstance(before, FetchResult):
            if held is not None:
                self._loop.free(held)
            return before
        parsed, cached = before
        if held is not None and held != _slot_key(parsed):
            self._loop.free(held)  # not the slot this URL's host counts by: ask for that one
            held = None
        return (yield from self._network(url, parsed, cached, durable, cache, held, closing))

    def _before_network(
        self, url: str, cache: HttpCache | None, stored: bool = True
    ) -> FetchResult | tuple[httpx.URL, CachedResponse | None]:
        """What needs no request: an answer from the cache, or a refusal; else the parsed URL
        and what the cache has of it."""
        s = self.settings
        readable = cache is not None and stored and isinstance(url, str)
        cached = cache.get(url) if readable else None  # type: ignore[union-attr]
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
        until = cache.held_until(url) if cache is not None else None
        if until is not None:
            # The server asked us (Retry-After) to stay away: skip it, never sleep.
            when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")
            return FetchResult(
                url=url, error=f"skipped: the server asked to wait until {when} (Retry-After)"
            )
        return parsed, cached

    def _network(
        self,
        url: str,
        current: httpx.URL,
        cached: CachedResponse | None,
        durable: bool,
        cache: HttpCache | None,
        held: str | None = None,
        closing: bool = False,
    ) -> Steps:
        s = self.settings
        visited = {str(current)}
        redirects = 0
        deadline: float | None = None
        while True:
            key = _slot_key(current)
            # queueing for the first polite slot does not count against the deadline
            if held is None and not (yield _Slot(key, deadline)):
                assert deadline is not None
                return self._failure(url, current, DeadlineExceeded(), deadline)
            held = None
            if deadline is None:
                deadline = time.monotonic() + s.deadline
            release = _Release(self._loop, key)
            try:
                target = yield from self._hop(
                    url, current, cached, deadline, durable, cache, closing, release
                )
            except _Stop as stop:
                return stop.result
            except NetFault as exc:
                return self._failure(url, current, exc, deadline)
            finally:
                release()

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
        closing: bool,
        release: Callable[[], None],
    ) -> Generator[object, object, httpx.URL]:
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
        answer = yield from self._perform(
            current, fields, deadline, _wanted, closing=closing, release=release
        )
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
        closing: bool = False,
        release: Callable[[], None] | None = None,
    ) -> Generator[object, object, _Exchange]:
        """Send one request (a GET, or a POST of ``form``) to the checked addresses of
        ``current``'s host and return its answer once read: the header always, the body
        when ``keep(status)``. Raises ``NetFault`` for what kept an answer from arriving.
        ``release``: called as soon as the transfer is over (the polite slot it held)."""
        s = self.settings
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        allowed, resolve = yield from self._pinned(current, min(s.timeout, left))
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        handle = self._loop.handle()
        try:
            exchange = _Exchange(keep, s.max_bytes, allowed)
            handle.setopt(pycurl.URL, str(current))
            handle.setopt(pycurl.HTTPHEADER, fields)
            handle.setopt(pycurl.RESOLVE, resolve)
            if form is None:
                handle.setopt(pycurl.HTTPGET, 1)
            else:
                handle.setopt(pycurl.POSTFIELDS, form)
            handle.setopt(pycurl.FORBID_REUSE, 1 if closing else 0)
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, math.ceil(min(s.timeout, left) * 1000)))
            handle.setopt(pycurl.TIMEOUT_MS, max(1, math.ceil(left * 1000)))
            handle.setopt(pycurl.HEADERFUNCTION, exchange.header)
            handle.setopt(pycurl.WRITEFUNCTION, exchange.write)
            handle.setopt(pycurl.PREREQFUNCTION, exchange.ready)
            outcome = yield _Transfer(handle, exchange)
            if release is not None:
                release()
            if outcome is not None:
                # A POST's answer is decided by its status line; a GET's by it too when its
                # body is not wanted. Then a fault in the body does not undo the answer.
                decided = exchange.complete and (form is not None or not keep(exchange.status))
                exchange.broken = True
                if not decided:
                    if exchange.fault is not None:
                        raise exchange.fault
                    if exchange.stalled:
                        raise ReadTimeout()
                    code, message, os_errno = outcome  # type: ignore[misc]
                    raise CurlFault(code, str(message), os_errno)
        finally:
            # Callbacks hold the exchange (and its body): the handle lets them go.
            handle.setopt(pycurl.HEADERFUNCTION, _ignore)
            handle.setopt(pycurl.WRITEFUNCTION, _ignore)
            handle.setopt(pycurl.PREREQFUNCTION, _go)
            if form is not None:
                handle.setopt(pycurl.HTTPGET, 1)  # the form is not kept for the next request
            self._loop.give_back(handle)
        return exchange

    def _pinned(
        self, current: httpx.URL, timeout: float
    ) -> Generator[object, object, tuple[frozenset[str], list[str]]]:
        """The checked addresses of ``current``'s host (``Guard``), and the CURLOPT_RESOLVE
        entry that pins libcurl to them: looked up the first time the host is asked for and
        kept for the fetcher's life, as a browser keeps a name's addresses for a while. So
        every connection goes to an address that was checked, and a later DNS answer (a
        rebinding attack's) is never used. A failed lookup is not kept."""
        host, port = current.host, current.port or (443 if current.scheme == "https" else 80)
        key = f"{host}:{port}"
        pin = self._pins.get(key)
        if pin is not None:
            return pin
        literal = parse_ip(host) is not None
        if literal:  # nothing to look up: checked here and now
            addresses: list[str] = self.guard.addresses(host, port, timeout)
        else:
            addresses = yield _Lookup(host, port, timeout)  # type: ignore[assignment]
        pin = self._pins.get(key)  # another request's lookup may have come first
        if pin is None:
            entry = []
            if not literal:
                listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
                entry = [f"{host}:{port}:{listed}"]
            pin = (frozenset(normalise_host(a) for a in addresses), entry)
            self._pins[key] = pin
        return pin

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


class _Release:
    """Gives back one polite slot, the first time it is called."""

    __slots__ = ("loop", "key")

    def __init__(self, loop: _Loop, key: str | None) -> None:
        self.loop, self.key = loop, key

    def __call__(self) -> None:
        key, self.key = self.key, None
        if key is not None:
            self.loop.free(key)


class _Raised:
    """An exception ``after`` raised, carried to the calling thread."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _by_host(urls: list[str], per_host: int) -> list[tuple[str, str, bool]]:
    """Each of ``urls`` (in order) with its host's key (``_host_key``) and whether it is
    among the last ``per_host`` of that host: after those nothing more is asked of the host,
    so their connections are not kept."""
    keys = [_host_key(url) for url in urls]
    left = Counter(keys)
    marked = []
    for url, key in zip(urls, keys, strict=True):
        left[key] -= 1
        marked.append((url, key, left[key] < per_host))
    return marked


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
