"""A scripted, misbehaving HTTP server on 127.0.0.x for fetch tests. No mocks: real sockets.

Use it directly::

    with HostileServer("127.0.0.2") as server:
        url = server.route("/feed.xml", body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})
        ...
        assert server.requests_to("/feed.xml")

or through the ``hostile_server`` fixture, a factory that starts servers on the addresses you
name and always stops them at teardown::

    from hostile_server import hostile_server_fixture  # noqa: F401  (provides "hostile_server")

    def test_something(hostile_server):
        server = hostile_server("127.0.0.1")

Routes: ``route`` (body, status, headers, per-path ``delay``, ``etag``/``last_modified`` with
304 handling, ``close``), ``redirect``, ``redirect_chain``, ``redirect_loop``, ``hang`` (accept,
read the request, never answer), ``trickle`` (body at N bytes/s), ``trickle_headers`` (the status
line and headers at N bytes/s), ``huge`` (a body of any size generated on the fly), ``gzip_bomb``
(a small gzip that inflates to ``size`` bytes) and ``handler`` (your own function).

Every request is recorded (method, path, lower-cased headers) and the server counts its open
connections and in-flight requests, keeping the maxima.

``HostileServer(host, tls=context)`` serves HTTPS instead (a server-side ``ssl.SSLContext``, e.g.
from a ``trustme`` test CA); the handshake runs in the connection's own thread, and handshakes
the client gave up on are counted in ``tls_failures``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import socketserver
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

CHUNK = 64 * 1024
_ZEROS = bytes(1024 * 1024)
_FILLER = b"x" * CHUNK


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    client: tuple[str, int]
    at: float


@dataclass
class Route:
    kind: str = "normal"  # normal | hang | trickle | trickle_headers | huge | handler
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    etag: str | None = None
    last_modified: str | None = None
    close: bool = False  # answer with Connection: close
    size: int = 0  # huge: body length
    rate: float = 0.0  # trickle: bytes per second
    chunked: bool = False  # huge: chunked transfer instead of Content-Length
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@functools.cache
def make_gzip_bomb(size_mib: int) -> bytes:
    """A valid gzip file (about 1 KiB per MiB) that inflates to ``size_mib`` MiB of zeros.

    Built in well under a second: one MiB of zeros is deflated once, ending with a full flush
    so the block stands alone, and that block is repeated.
    """
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(_ZEROS) + deflater.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    crc = 0
    for _ in range(size_mib):
        crc = zlib.crc32(_ZEROS, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (size_mib * len(_ZEROS)) & 0xFFFFFFFF)
    return header + block * size_mib + final + trailer


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False
    owner: HostileServer

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # clients hanging up mid-answer are the point of this server


class _TLSServer(_Server):
    tls: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = self.socket.accept()
        # No handshake here: a client that refuses our certificate must not stall accept().
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15  # an idle keep-alive connection is dropped after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._opened(self.connection)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ValueError):
                self.server.owner._tls_failed(self.connection)
                raise

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    do_HEAD = do_GET
    do_POST = do_GET


class HostileServer:
    """A threaded HTTP/1.1 server on ``host`` (a 127.x address) and an ephemeral port."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("HostileServer binds to loopback addresses only")
        if tls is None:
            self._server = _Server((host, port), _Handler, bind_and_activate=True)
        else:
            self._server = _TLSServer((host, port), _Handler, bind_and_activate=True)
            self._server.tls = tls
        self._server.owner = self
        self.scheme = "https" if tls is not None else "http"
        self.host, self.port = self._server.server_address[:2]
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.connections_total = 0
        self.max_connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent: dict[str, int] = {}
        self.tls_failures = 0  # TLS handshakes that did not complete

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> HostileServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hostile-server-{self.host}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake every hanging handler and close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route) -> str:
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    def route(self, path: str, body: bytes = b"", status: int = 200, **kwargs: object) -> str:
        """A plain answer; kwargs are ``Route`` fields (headers, delay, etag, ...)."""
        return self.add(path, Route(status=status, body=body, **kwargs))  # type: ignore[arg-type]

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, Route(status=status, headers={"Location": location}))

    def redirect_chain(self, prefix: str, hops: int, body: bytes = b"end of chain") -> str:
        """``prefix/0`` -> ``prefix/1`` -> ... -> ``prefix/<hops>`` (200 with ``body``)."""
        for i in range(hops):
            self.redirect(f"{prefix}/{i}", f"{prefix}/{i + 1}")
        self.route(f"{prefix}/{hops}", body=body)
        return self.url(f"{prefix}/0")

    def redirect_loop(self, a: str, b: str) -> str:
        self.redirect(a, b)
        self.redirect(b, a)
        return self.url(a)

    def hang(self, path: str) -> str:
        return self.add(path, Route(kind="hang"))

    def trickle(self, path: str, size: int = 1000, rate: float = 4.0) -> str:
        return self.add(path, Route(kind="trickle", size=size, rate=rate))

    def trickle_headers(self, path: str, rate: float = 10.0) -> str:
        return self.add(path, Route(kind="trickle_headers", rate=rate))

    def huge(self, path: str, size: int, chunked: bool = True) -> str:
        return self.add(path, Route(kind="huge", size=size, chunked=chunked))

    def gzip_bomb(self, path: str, size_mib: int = 300) -> str:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/xml"}
        return self.add(path, Route(body=make_gzip_bomb(size_mib), headers=headers))

    def handler(self, path: str, fn: Callable[[BaseHTTPRequestHandler], None]) -> str:
        return self.add(path, Route(kind="handler", handler=fn))

    # -- what happened ----------------------------------------------------------------------
    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- internals --------------------------------------------------------------------------
    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.connections_total += 1
            self.max_connections = max(self.max_connections, len(self._sockets))

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _tls_failed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self.tls_failures += 1
        with contextlib.suppress(OSError):
            sock.close()

    def _dispatch(self, h: _Handler) -> None:
        record = RecordedRequest(
            method=h.command,
            path=h.path,
            headers={k.lower(): v for k, v in h.headers.items()},
            client=h.client_address,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            route = self._routes.get(h.path) or self._routes.get(h.path.split("?", 1)[0])
        try:
            self._answer(h, route)
        except (ConnectionError, TimeoutError, OSError):
            h.close_connection = True  # the client hung up: that is allowed here
        finally:
            with self._lock:
                self.in_flight -= 1

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + n

    def _answer(self, h: _Handler, route: Route | None) -> None:
        if route is None:
            self._send(h, 404, {"Content-Type": "text/plain"}, b"not found")
            return
        if route.delay and self._stop.wait(route.delay):
            h.close_connection = True
            return
        kind = route.kind
        if kind == "hang":
            self._stop.wait()
            h.close_connection = True
        elif kind == "handler":
            assert route.handler is not None
            route.handler(h)
        elif kind == "trickle":
            self._trickle_body(h, route)
        elif kind == "trickle_headers":
            self._trickle_headers(h, route)
        elif kind == "huge":
            self._huge(h, route)
        else:
            self._normal(h, route)

    def _send(
        self, h: _Handler, status: int, headers: dict[str, str], body: bytes, close: bool = False
    ) -> None:
        h.send_response(status)
        names = {k.lower() for k in headers}
        for name, value in headers.items():
            h.send_header(name, value)
        if "content-length" not in names and status != 304:
            h.send_header("Content-Length", str(len(body)))
        if close:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        if h.command != "HEAD" and status != 304 and body:
            h.wfile.write(body)
            self._count(h.path, len(body))

    def _normal(self, h: _Handler, route: Route) -> None:
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.status == 200 and (route.etag or route.last_modified):
            inm = h.headers.get("If-None-Match")
            ims = h.headers.get("If-Modified-Since")
            fresh = (
                (inm is not None and route.etag is not None and inm in (route.etag, "*"))
                if inm is not None
                else (ims is not None and ims == route.last_modified)
            )
            if fresh:
                self._send(h, 304, headers, b"", close=route.close)
                return
        self._send(h, route.status, headers, route.body, close=route.close)

    def _trickle_body(self, h: _Handler, route: Route) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(route.size))
        h.end_headers()
        h.wfile.flush()
        for _ in range(route.size):
            h.wfile.write(b"x")
            h.wfile.flush()
            self._count(h.path, 1)
            if self._stop.wait(1.0 / route.rate):
                break
        h.close_connection = True

    def _trickle_headers(self, h: _Handler, route: Route) -> None:
        raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n" + b"X-Slow: " + b"s" * 200
        raw += b"\r\nContent-Length: 2\r\n\r\nok"
        for i in range(len(raw)):
            h.wfile.write(raw[i : i + 1])
            h.wfile.flush()
            self._count(h.path, 1)
            if self._stop.wait(1.0 / route.rate):
                break
        h.close_connection = True

    def _huge(self, h: _Handler, route: Route) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/xml")
        if route.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(route.size))
        h.end_headers()
        left = route.size
        while left > 0 and not self._stop.is_set():
            piece = _FILLER if left >= CHUNK else _FILLER[:left]
            if route.chunked:
                h.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                h.wfile.write(piece)
            self._count(h.path, len(piece))
            left -= len(piece)
        if route.chunked:
            h.wfile.write(b"0\r\n\r\n")


@pytest.fixture(name="hostile_server")
def hostile_server_fixture() -> Iterator[Callable[..., HostileServer]]:
    """Factory: ``hostile_server("127.0.0.2")`` starts a server there; all stop at teardown."""
    servers: list[HostileServer] = []

    def start(
        host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> HostileServer:
        server = HostileServer(host, port, tls=tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
