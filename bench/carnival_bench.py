"""Benchmark: what the carnival adds to a build, cold and warm.

Serves N synthetic contributor feeds (default 200, 20 entries each, 2 tagged for the
edition) from N loopback addresses (127.0.1.x, one per contributor, as real contributors
live on many hosts) with a fixed latency per response (default 200 ms), then builds the
site with Pelican in a subprocess:

  baseline  the same site with an empty carnival folder
  cold      the carnival with an empty cache (every feed fetched and parsed)
  warm      the same cache again (every feed answers 304 Not Modified)

and prints the median of several runs of each, and what cold and warm add to baseline.
Usage: python bench/carnival_bench.py [--feeds 200] [--latency 0.2] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.utils
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "bench-carnival"
OPENS, DEADLINE = dt.date(2026, 10, 1), dt.date(2026, 10, 31)


def synthetic_feed(n: int, entries: int = 20) -> bytes:
    """An RSS 2.0 feed: `entries` items, the first two tagged and dated inside the window."""
    items = []
    for i in range(entries):
        when = dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC) - dt.timedelta(days=i * 3)
        tags = [f"<category>{TAG}</category>"] if i < 2 else []
        tags.append("<category>jobs</category>")
        items.append(
            f"<item><title>Post {i} from blog {n}: on keeping in touch</title>"
            f"<link>http://127.0.1.{n % 250 + 1}:{{port}}/{n}/posts/{i}.html</link>"
            f"<guid>tag:blog{n}.example,2026:{i}</guid><pubDate>{email.utils.format_datetime(when)}</pubDate>"
            f"<author>writer{n}@blog{n}.example (Writer {n})</author>{''.join(tags)}"
            f"<description>&lt;p&gt;Paragraph {i} of blog {n}. A short note on networking, following up "
            f'and thanking the people who helped, with a &lt;a href="/x"&gt;relative link&lt;/a&gt;.&lt;/p&gt;'
            f"</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Blog {n}</title>'
        f"<link>http://127.0.1.{n % 250 + 1}:{{port}}/{n}/</link><description>Synthetic blog {n}</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class FeedServer:
    """One asyncio loop in a thread, one listening socket per contributor address."""

    def __init__(self, feeds: int, latency: float):
        self.feeds, self.latency = feeds, latency
        self.port = 0
        self.bodies: dict[int, bytes] = {}
        self.requests = 0
        self.not_modified = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FeedServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        first = await asyncio.start_server(self._handle, "127.0.1.1", 0)
        self.port = first.sockets[0].getsockname()[1]
        servers = [first]
        for host in sorted({f"127.0.1.{n % 250 + 1}" for n in range(self.feeds)} - {"127.0.1.1"}):
            servers.append(await asyncio.start_server(self._handle, host, self.port))
        for n in range(self.feeds):
            self.bodies[n] = synthetic_feed(n).replace(b"{port}", str(self.port).encode())
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        for s in servers:
            s.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                await asyncio.sleep(self.latency)
                self.requests += 1
                n = (
                    int(path.strip("/").split("/")[0])
                    if path.strip("/").split("/")[0].isdigit()
                    else -1
                )
                body = self.bodies.get(n)
                if body is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                    if headers.get("if-none-match") == etag:
                        self.not_modified += 1
                        writer.write(
                            f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n".encode()
                        )
                    else:
                        writer.write(
                            f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                        )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()


def write_carnival(folder: Path, server: FeedServer) -> None:
    c = folder / "bench"
    c.mkdir(parents=True)
    people = "".join(
        f'\n[[contributors]]\nname = "Writer {n}"\nblog = "http://127.0.1.{n % 250 + 1}:{server.port}/{n}/"\n'
        f'feed = "http://127.0.1.{n % 250 + 1}:{server.port}/{n}/feed.xml"\n'
        for n in range(server.feeds)
    )
    (c / "carnival.toml").write_text(
        'title = "Bench Carnival"\ndescription = "Synthetic."\norganizer = { name = "Bench" }\n'
        + people
    )
    (c / "001.toml").write_text(
        f'number = 1\ntitle = "Everything"\nhost = {{ name = "Bench" }}\nopens = {OPENS}\ndeadline = {DEADLINE}\n'
        f'date = 2026-11-02\ntag = "{TAG}"\nintro = "All of it."\n'
    )


def build(out: Path, carnival: Path, cache: Path, hosts: list[str]) -> float:
    cmd = [
        sys.executable,
        "-m",
        "pelican",
        "content",
        "-s",
        "pelicanconf.py",
        "-o",
        str(out),
        "-q",
        "-e",
        f'CARNIVAL_PATH="{carnival}"',
        f'CARNIVAL_CACHE_PATH="{cache}"',
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS=" + "[" + ",".join(f'"{h}"' for h in hosts) + "]",
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "CARNIVAL_OFFLINE": ""}
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = FeedServer(args.feeds, args.latency).start()
    hosts = sorted({f"127.0.1.{n % 250 + 1}" for n in range(args.feeds)})
    tmp = Path(tempfile.mkdtemp(prefix="carnival-bench-"))
    try:
        empty, full = tmp / "empty", tmp / "carnival"
        empty.mkdir()
        write_carnival(full, server)
        times: dict[str, list[float]] = {"baseline": [], "cold": [], "warm": []}
        for run in range(args.runs):
            times["baseline"].append(
                build(tmp / "out-base", empty, tmp / f"cache-base-{run}", hosts)
            )
            cache = tmp / f"cache-{run}"
            before = server.requests
            times["cold"].append(build(tmp / "out-cold", full, cache, hosts))
            cold_requests = server.requests - before
            nm_before = server.not_modified
            times["warm"].append(build(tmp / "out-warm", full, cache, hosts))
            warm_304 = server.not_modified - nm_before
        html = (tmp / "out-warm" / "carnival" / "bench" / "1" / "index.html").read_text()
        entries = html.count('class="roundup-entry')
        base = statistics.median(times["baseline"])
        print(
            f"feeds: {args.feeds} x 20 entries, latency {args.latency * 1000:.0f} ms, runs: {args.runs}"
        )
        print(f"roundup entries selected by tag: {entries} (expected {args.feeds * 2})")
        print(f"requests per cold build: {cold_requests}; 304 answers per warm build: {warm_304}")
        for name, values in times.items():
            med = statistics.median(values)
            extra = "" if name == "baseline" else f"   adds {med - base:+.2f} s"
            print(
                f"{name:9s} median {med:6.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)}){extra}"
            )
        print(
            f"sequential fetching would wait at least {args.feeds * args.latency:.0f} s on latency alone"
        )
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
