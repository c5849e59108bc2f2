"""A Webmention endpoint for tests: a ``HostileServer`` route that records every POST.

    server = hostile_server("127.0.0.1")
    receiver = Receiver(server, "/webmention", status=202)
    ...
    assert receiver.posts[0].fields == {"source": [...], "target": [...]}

The answer (status, headers, body) can be changed between runs (``receiver.answer(...)``),
so a test can make a receiver fail once and then recover.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from hostile_server import HostileServer


@dataclass(frozen=True)
class Post:
    method: str
    path: str  # with the query string
    content_type: str
    fields: dict[str, list[str]]
    body: bytes


class Receiver:
    def __init__(
        self,
        server: HostileServer,
        path: str = "/webmention",
        status: int = 202,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self.answer(status, headers, body)
        self.url = server.handler(path, self._handle)

    def answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.status, self.headers, self.body = status, dict(headers or {}), body

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        post = Post(
            method=h.command,
            path=h.path,
            content_type=h.headers.get("Content-Type", ""),
            fields=parse_qs(raw.decode("utf-8"), keep_blank_values=True),
            body=raw,
        )
        with self._lock:
            self.posts.append(post)
        h.send_response(self.status)
        for name, value in self.headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(self.body)))
        h.end_headers()
        if self.body:
            h.wfile.write(self.body)
