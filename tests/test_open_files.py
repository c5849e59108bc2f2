"""A carnival of more hosts than the process may open files: the fetcher keeps a bounded number
of idle connections (libcurl's CURLMOPT_MAXCONNECTS), closes a host's once nothing more is
asked of it (CURLOPT_FORBID_REUSE on its last requests) and fetches as many feeds at once as
the open-file limit allows (``within_open_files``), raising that limit first when it can.

The hosts are ports of 127.0.0.1 (connections are kept per host and port); the fetching
runs in a child process whose open-file limit the test sets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from blog_carnival.cache import HttpCache
from blog_carnival.fetch import (
    FILES_BESIDES,
    FILES_PER_REQUEST,
    IDLE_CONNECTIONS,
    Fetcher,
    FetchSettings,
    concurrency_within,
    files_needed,
)
from cache_rows import rows
from polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>A blog</title>'
    b"<item><title>A post</title><link>http://127.0.0.1/post</link></item></channel></rss>"
)


class ManyPorts:
    """One tiny HTTP/1.1 server (keep-alive, a feed for every path) listening on ``count``
    ports of 127.0.0.1, in a thread of its own; counts the connections it accepted."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self.accepted = 0
        self.open = 0  # connections not closed yet
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ManyPorts:
        self._thread.start()
        assert self._ready.wait(30), "the servers did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/feed.xml" for port in self.ports]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        servers = [
            self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            for _ in range(self.count)
        ]
        self.ports = [s.sockets[0].getsockname()[1] for s in servers]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for server in servers:
                server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while (await reader.readuntil(b"\r\n\r\n")).startswith(b"GET "):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(FEED), FEED)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@pytest.fixture(scope="module")
def many_ports() -> Iterator[ManyPorts]:
    with ManyPorts(300) as server:
        yield server


CHILD = textwrap.dedent(
    """
    import json, logging, resource, sys
    sys.path.insert(0, sys.argv[1])
    soft, hard, cache, urls = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from blog_carnival.cache import HttpCache
    from blog_carnival.fetch import Fetcher, FetchSettings
    settings = FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout=10)
    with Fetcher(settings, HttpCache(cache)) as fetcher:
        results = fetcher.fetch_all(urls)
        print(json.dumps({
            "errors": sorted({r.error for r in results.values() if r.error}),
            "ok": sum(r.ok for r in results.values()),
            "concurrency": fetcher.settings.concurrency,
            "limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        }))
    """
)


def fetch_in_child(urls: list[str], soft: int, hard: int, tmp: Path) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT / "plugins"), str(soft), str(hard), str(tmp), *urls],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def test_more_hosts_than_open_files_are_all_fetched(many_ports: ManyPorts, tmp_path: Path):
    """macOS's default limit, 256 files, fixed (the hard limit too): 300 hosts are fetched,
    each once, every one whole, and the cache written for each. Before the idle hosts were
    bounded, every host kept its connection open and the fetch ran out of files."""
    urls = many_ports.urls()
    assert len(urls) > 256
    before = many_ports.accepted
    outcome, log = fetch_in_child(urls, 256, 256, tmp_path / "cache")
    assert outcome["errors"] == []
    assert outcome["ok"] == len(urls)
    assert many_ports.accepted - before == len(urls)  # one connection per host, no retries
    assert set(rows(tmp_path / "cache")) == set(urls)
    # The limit could not be raised: fewer at once, said once, with the way out.
    expected = (256 - FILES_BESIDES - IDLE_CONNECTIONS) // FILES_PER_REQUEST
    assert outcome["concurrency"] == expected
    assert log.count("ulimit -n") == 1
    assert f"fetching {expected} at once instead" in log
    assert f"raise the limit to {files_needed(FetchSettings())}" in log


def test_a_low_soft_limit_is_raised_within_the_hard_one(many_ports: ManyPorts, tmp_path: Path):
    """A soft limit of 256 under a hard one of 4,096 is raised to what the default
    concurrency needs: nothing is slowed down, nothing is logged."""
    outcome, log = fetch_in_child(many_ports.urls(), 256, 4096, tmp_path / "cache")
    assert outcome["errors"] == []
    assert outcome["ok"] == len(many_ports.urls())
    assert outcome["concurrency"] == FetchSettings().concurrency
    assert outcome["limit"] == [files_needed(FetchSettings()), 4096]
    assert "ulimit" not in log


# -- the arithmetic ------------------------------------------------------------------------------


def test_the_default_concurrency_fits_in_linux_default_limit():
    """1,024 open files, most Linux systems' default: no need to raise it for the defaults."""
    assert files_needed(FetchSettings()) <= 1024
    assert concurrency_within(FetchSettings(), 1024) == FetchSettings().concurrency


@pytest.mark.parametrize(
    ("open_files", "expected"),
    [
        (10**6, 200),  # plenty
        (FILES_BESIDES + IDLE_CONNECTIONS + 3 * 200, 200),  # exactly enough
        (FILES_BESIDES + IDLE_CONNECTIONS + 3 * 200 - 1, 199),  # one file short
        (FILES_BESIDES + IDLE_CONNECTIONS + 30, 10),
        (FILES_BESIDES + IDLE_CONNECTIONS, 1),  # nothing spare: one at a time, never none
        (16, 1),
    ],
)
def test_concurrency_within(open_files: int, expected: int):
    assert concurrency_within(replace(FetchSettings(), concurrency=200), open_files) == expected


# -- open connections are bounded: finished hosts closed, then the least recently used -----------


def test_idle_connections_are_bounded_least_recently_used_closed_first(
    many_ports: ManyPorts, tmp_path: Path
):
    """One request to each of 300 hosts, one after the other (``fetch``, which does not
    know a host is done with): at most ``concurrency`` + IDLE_CONNECTIONS connections stay
    open, those of the most recently used hosts; an older host connects again."""
    settings = FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), concurrency=4)
    urls = many_ports.urls()
    assert len(urls) > 4 + IDLE_CONNECTIONS
    with Fetcher(settings) as fetcher:
        for url in urls:
            assert fetcher.fetch(url).ok
        assert wait_for(lambda: many_ports.open <= 4 + IDLE_CONNECTIONS), many_ports.open
        before = many_ports.accepted
        assert fetcher.fetch(urls[-1]).ok  # the most recent host: its connection is kept
        assert many_ports.accepted == before
        assert fetcher.fetch(urls[0]).ok  # the oldest was closed: a new connection
        assert many_ports.accepted == before + 1
    assert wait_for(lambda: many_ports.open == 0)  # closing the fetcher closes them all


def test_fetch_each_closes_each_host_when_its_last_url_is_done(many_ports: ManyPorts, tmp_path):
    """Three URLs on each of 20 hosts: while a host has URLs left its connection is reused
    (one connection per host in all), and none is left open at the end."""
    urls = [f"{u}?n={n}" for u in many_ports.urls()[:20] for n in range(3)]
    before = many_ports.accepted
    settings = FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), per_host=1)
    with Fetcher(settings, HttpCache(tmp_path)) as fetcher:
        results = fetcher.fetch_all(urls)
        assert all(r.ok for r in results.values())
        assert many_ports.accepted - before == 20
        # The server sees each connection closed while the fetcher is still open.
        assert wait_for(lambda: many_ports.open == 0)
