"""A loopback feed farm for the benchmarks: N synthetic feeds on H addresses, 127.0.0.2 upwards,
each answering after a fixed latency. Runs in its own process, so its CPU is not the build's
nor the plain client's.

Feed n lives at http://127.0.0.<2 + n % H>:<port>/<n>/feed.xml: 20 RSS items, the first two
tagged for the edition and dated in its window. Answers carry an ETag; a matching
If-None-Match gets a 304. In "fresh" mode answers also say ``Cache-Control: max-age=3600``.

Control (not delayed, not counted), on the first address:
  GET /_stats             {"requests", "not_modified", "ok", "connections"} counts as JSON
  GET /_mode/plain|fresh  switch the mode
  GET /_window            {"first", "last"}: when (epoch seconds, this machine's clock) the
                          first feed request since the previous /_window arrived and the
                          last answer was sent, or null; starts a new window
Run it as a script: it prints "PORT <port>" on stdout, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.utils
import hashlib
import json
import sys
import threading
import time

TAG = "bench-carnival"


def host_of(n: int, hosts: int) -> str:
    return f"127.0.0.{2 + n % hosts}"


def feed_url(n: int, hosts: int, port: int) -> str:
    return f"http://{host_of(n, hosts)}:{port}/{n}/feed.xml"


def synthetic_feed(n: int, base: str, entries: int = 20) -> bytes:
    """An RSS 2.0 feed: ``entries`` items, the first two tagged and dated inside the window."""
    items = []
    for i in range(entries):
        when = dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC) - dt.timedelta(days=i * 3)
        tags = [f"<category>{TAG}</category>"] if i < 2 else []
        tags.append("<category>jobs</category>")
        items.append(
            f"<item><title>Post {i} from blog {n}: on keeping in touch</title>"
            f"<link>{base}/{n}/posts/{i}.html</link>"
            f"<guid>tag:blog{n}.example,2026:{i}</guid>"
            f"<pubDate>{email.utils.format_datetime(when)}</pubDate>"
            f"<author>writer{n}@blog{n}.example (Writer {n})</author>{''.join(tags)}"
            f"<description>&lt;p&gt;Paragraph {i} of blog {n}. A short note on networking, "
            f"following up and thanking the people who helped, with a "
            f'&lt;a href="/x"&gt;relative link&lt;/a&gt;.&lt;/p&gt;</description></item>'
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Blog {n}</title><link>{base}/{n}/</link>"
        f"<description>Synthetic blog {n}</description>" + "".join(items) + "</channel></rss>"
    ).encode()


class Farm:
    def __init__(self, feeds: int, hosts: int, latency: float) -> None:
        self.feeds, self.hosts, self.latency = feeds, hosts, latency
        self.mode = "plain"
        self.stats = {"requests": 0, "not_modified": 0, "ok": 0, "connections": 0}
        self.window: dict[str, float | None] = {"first": None, "last": None}
        self.bodies: dict[int, tuple[bytes, str]] = {}
        self.port = 0

    async def serve(self, ready: threading.Event | None = None) -> None:
        first = await asyncio.start_server(self.handle, host_of(0, self.hosts), 0, backlog=1024)
        self.port = first.sockets[0].getsockname()[1]
        servers = [first]
        for h in range(1, min(self.hosts, self.feeds)):
            servers.append(
                await asyncio.start_server(
                    self.handle, host_of(h, self.hosts), self.port, backlog=1024
                )
            )
        for n in range(self.feeds):
            body = synthetic_feed(n, f"http://{host_of(n, self.hosts)}:{self.port}")
            self.bodies[n] = (body, f'"{hashlib.sha256(body).hexdigest()[:16]}"')
        print(f"PORT {self.port}", flush=True)
        if ready is not None:
            ready.set()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for s in servers:
            s.close()

    def answer(self, path: str, headers: dict[str, str]) -> bytes:
        parts = path.strip("/").split("/")
        n = int(parts[0]) if parts[0].isdigit() else -1
        found = self.bodies.get(n)
        if found is None:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        body, etag = found
        fresh = "Cache-Control: max-age=3600\r\n" if self.mode == "fresh" else ""
        date = email.utils.formatdate(usegmt=True)
        if headers.get("if-none-match") == etag:
            self.stats["not_modified"] += 1
            return (
                f"HTTP/1.1 304 Not Modified\r\nDate: {date}\r\nETag: {etag}\r\n{fresh}\r\n".encode()
            )
        self.stats["ok"] += 1
        return (
            f"HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/rss+xml\r\n"
            f"ETag: {etag}\r\n{fresh}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                if path.startswith("/_"):
                    if path.startswith("/_mode/"):
                        self.mode = path.rsplit("/", 1)[1]
                    if path == "/_window":
                        data = json.dumps(self.window).encode()
                        self.window = {"first": None, "last": None}
                    else:
                        data = json.dumps({**self.stats, "mode": self.mode}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                    )
                    await writer.drain()
                else:
                    if self.window["first"] is None:
                        self.window["first"] = time.time()
                    await asyncio.sleep(self.latency)
                    self.stats["requests"] += 1
                    writer.write(self.answer(path, headers))
                    await writer.drain()
                    self.window["last"] = time.time()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 250:
        sys.exit("--hosts must be 1..250")
    asyncio.run(Farm(args.feeds, args.hosts, args.latency).serve())


if __name__ == "__main__":
    main()
