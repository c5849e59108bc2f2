"""A loopback server for the demo contributor blogs in tests/sites/demo/.

Each blog lives in a folder named for its host (coffee-and-careers.example/...). Each host is
served at the root of its own port on 127.0.0.1 (as a real blog is at the root of its host,
so a page's origin is the blog), and every `https://<host>` in what is served is rewritten to
that address, so feeds, pages and carnival files keep their real-looking URLs on disk and
still resolve over real HTTP here. It honours If-None-Match (304), can be told to fail a
path, to answer slowly (``delay``) or to change every ETag (``salt``), and records each
request as `/<host>/<path>` with the If-None-Match it carried; ``wait_answered`` blocks
until it has answered so many requests (for tests that act in the middle of a build).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEMO = Path(__file__).resolve().parent / "sites" / "demo"
TYPES = {
    ".xml": "application/rss+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".atom": "application/atom+xml",
}


class SitesServer:
    def __init__(self, root: Path = DEMO, host: str = "127.0.0.1", first_port: int = 0):
        """``first_port``: serve the blogs on fixed ports from it, in name order (the demo);
        0 lets the system pick free ports (the tests)."""
        self.root = root
        self.address = host
        self.hosts = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.fail: dict[str, int] = {}  # "/<host>/<path>" -> status to answer instead
        self.requests: list[tuple[str, int]] = []  # ("/<host>/<path>", status)
        self.validators: list[tuple[str, str | None]] = []  # (path, If-None-Match sent)
        self.delay = 0.0  # seconds to wait before each answer
        self.salt = ""  # mixed into every ETag: a new salt makes every cached copy stale
        self.answered = 0  # answers written out in full
        self._answered = threading.Condition()
        self.base = f"http://{host}"  # every served URL starts with this
        self.servers = {
            name: self._serve(name, first_port + i if first_port else 0)
            for i, name in enumerate(self.hosts)
        }
        self.origins = {
            name: f"http://{host}:{httpd.server_address[1]}" for name, httpd in self.servers.items()
        }
        self._threads = [
            threading.Thread(target=httpd.serve_forever, daemon=True)
            for httpd in self.servers.values()
        ]

    def _serve(self, name: str, port: int) -> ThreadingHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if server.delay:
                    time.sleep(server.delay)
                path = f"/{name}{self.path}"
                sent = self.headers.get("If-None-Match")
                status, body, ctype, etag = server.answer(path, sent)
                server.requests.append((path, status))
                server.validators.append((path, sent))
                self.send_response(status)
                if etag:
                    self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with server._answered:
                    server.answered += 1
                    server._answered.notify_all()

        httpd = ThreadingHTTPServer((self.address, port), Handler)
        httpd.daemon_threads = True
        return httpd

    def __enter__(self) -> SitesServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for httpd in self.servers.values():
            httpd.shutdown()
            httpd.server_close()

    def url(self, host: str, path: str = "/") -> str:
        """Where ``https://<host><path>`` is served here."""
        return self.origins[host] + path

    def url_of(self, recorded: str) -> str:
        """The URL a recorded request path (``/<host>/<path>``) was asked for."""
        host, _, rest = recorded.lstrip("/").partition("/")
        return self.url(host, "/" + rest)

    def wait_answered(self, count: int, still_waiting=lambda: True) -> bool:  # noqa: ANN001
        """Block until ``count`` answers have gone out, or ``still_waiting()`` turns false;
        True when the count was reached."""
        with self._answered:
            while self.answered < count:
                if not still_waiting():
                    return False
                self._answered.wait(0.05)
            return True

    def to_local(self, text: str) -> str:
        for host in self.hosts:
            text = text.replace(f"https://{host}", self.origins[host])
        return text

    def to_public(self, text: str) -> str:
        for host, origin in self.origins.items():
            text = re.sub(re.escape(origin) + r"(?![0-9])", f"https://{host}", text)
        return text

    def answer(self, path: str, if_none_match: str | None) -> tuple[int, bytes, str, str | None]:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean in self.fail:
            return self.fail[clean], b"failing on purpose", "text/plain", None
        file = (self.root / clean.lstrip("/")).resolve()
        if file.is_dir():
            file = file / "index.html"
        if not file.is_relative_to(self.root.resolve()) or not file.is_file():
            return 404, b"not found", "text/plain", None
        body = self.to_local(file.read_text(encoding="utf-8")).encode("utf-8")
        etag = f'"{hashlib.sha256(body + self.salt.encode()).hexdigest()[:20]}"'
        if if_none_match == etag:
            return 304, b"", "", etag
        return 200, body, TYPES.get(file.suffix, "application/octet-stream"), etag


def local_carnival(server: SitesServer, source: Path, target: Path, *, locks: bool = False) -> Path:
    """Copy a carnival folder with its URLs pointed at the server (lock files only if asked)."""
    for path in sorted(source.rglob("*")):
        if path.is_dir() or (path.name.endswith(".lock.json") and not locks):
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(server.to_local(path.read_text(encoding="utf-8")), encoding="utf-8")
    return target


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)
