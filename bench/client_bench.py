"""Benchmark: the CPU one request costs, with our fetcher and with other HTTP clients.

A carnival build of thousands of feeds is CPU-bound on a small machine long before it is
network-bound (see carnival_bench.py). This script separates the HTTP client's share: the same
URLs of the feed farm (bench/feed_server.py, its own process, every answer after --latency)
fetched in this process by

  ours cold     Fetcher.fetch_each with an empty HTTP cache (what a first build does)
  ours 304      the same again with refresh on: every feed revalidated, every answer a 304
  plain pool    ThreadPoolExecutor(concurrency) + urllib (a new connection per request)
  asyncio       httpcore's async connection pools (the library under httpx, our client
                before libcurl) on asyncio, per-host and overall limits as ours
  libcurl       pycurl's multi interface (libcurl's own event loop, in C), per-host and
                overall limits as ours
  libcurl easy  pycurl's easy handles in a pool of threads, each host's handles (and their
                kept-alive connections) reused for its next URLs: the shape our fetcher
                has, without its policy
  loop+threads  a thread per request, as ours, that hands its easy handle to one thread
                running libcurl's multi interface and waits for it there: libcurl's
                callbacks then all run in that one thread
  loop+python   libcurl's multi interface in this thread with the work an event-loop
                fetcher would do in Python: our header and body callbacks (a call per
                header line and per piece of body), per-host turns and limits kept in
                Python, each finished request followed at once by its host's next

and prints for each the wall time beside the latency floor, the CPU seconds (user + system
of this process: every thread) per request, and the context switches per request (voluntary
and not: a thread giving up the CPU, or made to). The last two rows tell apart where our CPU
goes: in libcurl and the callbacks, or in the handing over between threads. Only "ours" applies the fetch policy (address
guard, caps, cache, redirects by hand); the others show what the transport alone costs.

Usage: python bench/client_bench.py [--feeds 2000] [--hosts 50] [--latency 0.2]
       [--per-host 4] [--concurrency N (the plugin's default)]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import math
import queue
import resource
import select
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "plugins"))
from blog_carnival.cache import HttpCache  # noqa: E402
from blog_carnival.fetch import Fetcher, FetchSettings  # noqa: E402
from carnival_bench import FarmProcess  # noqa: E402


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def switches() -> int:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_nvcsw + used.ru_nivcsw


def measure(fetch: Callable[[], list[int]]) -> tuple[float, float, int, list[int]]:
    """Wall seconds, CPU seconds, context switches and the statuses of one run of ``fetch``."""
    cpu, switched, start = cpu_seconds(), switches(), time.perf_counter()
    statuses = fetch()
    took = time.perf_counter() - start
    return took, cpu_seconds() - cpu, switches() - switched, statuses


def ours(urls: list[str], settings: FetchSettings, cache: HttpCache) -> list[int]:
    with Fetcher(settings, cache) as fetcher:
        return [r.status or 0 for r in fetcher.fetch_each(urls)]


def plain_pool(urls: list[str], workers: int) -> list[int]:
    def get(url: str) -> int:
        with urllib.request.urlopen(url, timeout=60) as answer:
            answer.read()
            return answer.status

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(get, urls))


def httpcore_asyncio(urls: list[str], per_host: int, concurrency: int) -> list[int]:
    import httpcore

    async def main() -> list[int]:
        pools: dict[bytes, httpcore.AsyncConnectionPool] = {}
        slots: dict[bytes, asyncio.Semaphore] = {}
        overall = asyncio.Semaphore(concurrency)

        async def one(url: str) -> int:
            target = httpcore.URL(url)
            key = target.host + b":" + str(target.port).encode()
            if key not in pools:
                pools[key] = httpcore.AsyncConnectionPool(max_connections=per_host)
                slots[key] = asyncio.Semaphore(per_host)
            async with overall, slots[key]:
                answer = await pools[key].request("GET", target, headers=[(b"Host", key)])
                return answer.status

        try:
            return await asyncio.gather(*(one(url) for url in urls))
        finally:
            for pool in pools.values():
                await pool.aclose()

    return asyncio.run(main())


def libcurl_multi(urls: list[str], per_host: int, concurrency: int) -> list[int]:
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, concurrency)
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, per_host)
    statuses: list[int] = []
    for url in urls:
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEDATA, io.BytesIO())
        handle.setopt(pycurl.ACCEPT_ENCODING, "")
        handle.setopt(pycurl.TIMEOUT, 60)
        multi.add_handle(handle)
    left = len(urls)
    while left:
        code, _ = multi.perform()
        while code == pycurl.E_CALL_MULTI_PERFORM:
            code, _ = multi.perform()
        _, finished, failed = multi.info_read()
        for handle in finished:
            statuses.append(handle.getinfo(pycurl.RESPONSE_CODE))
            multi.remove_handle(handle)
            handle.close()
        for handle, _, _ in failed:
            statuses.append(0)
            multi.remove_handle(handle)
            handle.close()
        left -= len(finished) + len(failed)
        if left:
            multi.select(1.0)
    multi.close()  # its kept-alive connections too: the farm then stops cleanly
    return statuses


def _in_threads(
    urls: list[str], per_host: int, concurrency: int, transfer: Callable[[object, str], int]
) -> list[int]:
    """``transfer(handle, url) -> status`` for each URL in a pool of ``concurrency`` threads,
    ``per_host`` at a time for a host, each host's easy handles (and their kept-alive
    connections) reused for its next URLs, hosts taking turns as Fetcher.fetch_each hands
    them out."""
    import pycurl

    lock = threading.Lock()
    idle: dict[str, list[pycurl.Curl]] = {}
    slots: dict[str, threading.BoundedSemaphore] = {}

    def get(url: str) -> int:
        host = urlsplit(url).netloc
        with lock:
            slot = slots.setdefault(host, threading.BoundedSemaphore(per_host))
        with slot:
            with lock:
                handles = idle.setdefault(host, [])
                handle = handles.pop() if handles else pycurl.Curl()
            status = transfer(handle, url)
            with lock:
                idle[host].append(handle)
            return status

    order = [u for turn in itertools.zip_longest(*_by_host(urls).values()) for u in turn if u]
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(get, order))
    finally:
        for handles in idle.values():
            for handle in handles:
                handle.close()


def libcurl_threads(urls: list[str], per_host: int, concurrency: int) -> list[int]:
    import pycurl

    def transfer(handle, url: str) -> int:  # noqa: ANN001
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEFUNCTION, io.BytesIO().write)
        handle.setopt(pycurl.HEADERFUNCTION, io.BytesIO().write)
        handle.setopt(pycurl.TIMEOUT, 60)
        handle.perform()
        return handle.getinfo(pycurl.RESPONSE_CODE)

    return _in_threads(urls, per_host, concurrency, transfer)


class _Answer:
    """What our fetcher's callbacks do with an answer, roughly: fields parsed line by line,
    the body gathered piece by piece."""

    __slots__ = ("status", "fields", "body")

    def __init__(self) -> None:
        self.status = 0
        self.fields: dict[str, str] = {}
        self.body = bytearray()

    def header(self, line: bytes) -> None:
        if line.startswith(b"HTTP/"):
            self.status = int(line.split()[1])
            return
        name, colon, value = line.partition(b":")
        if colon:
            self.fields[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")

    def write(self, data: bytes) -> None:
        self.body.extend(data)


def _by_host(urls: list[str]) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for url in urls:
        hosts.setdefault(urlsplit(url).netloc, []).append(url)
    return hosts


def _drive(multi, finished: Callable[[object, int], None], left: Callable[[], int]) -> None:
    """Run ``multi`` until ``left()`` is 0, calling ``finished(handle, curl_code)``."""
    import pycurl

    while left():
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            waiting, done, failed = multi.info_read()
            for handle in done:
                finished(handle, 0)
            for handle, code, _ in failed:
                finished(handle, code)
            if not waiting:
                break
        if left():
            timeout = multi.timeout()
            multi.select(1.0 if timeout < 0 else min(timeout, 1000) / 1000)


def libcurl_loop_python(urls: list[str], per_host: int, concurrency: int) -> list[int]:
    """One thread, libcurl's multi interface, our callbacks' work and our turns in Python."""
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, concurrency)
    queues = _by_host(urls)
    busy = dict.fromkeys(queues, 0)
    idle: list = []
    statuses: list[int] = []
    remaining = [len(urls)]

    def start(host: str) -> None:
        handle = idle.pop() if idle else pycurl.Curl()
        answer = handle.answer = _Answer()
        handle.host = host
        handle.setopt(pycurl.URL, queues[host].pop())
        handle.setopt(pycurl.HEADERFUNCTION, answer.header)
        handle.setopt(pycurl.WRITEFUNCTION, answer.write)
        handle.setopt(pycurl.TIMEOUT, 60)
        busy[host] += 1
        multi.add_handle(handle)

    def finished(handle, code: int) -> None:
        multi.remove_handle(handle)
        statuses.append(handle.answer.status if not code else 0)
        handle.answer = None
        idle.append(handle)
        remaining[0] -= 1
        busy[handle.host] -= 1
        if queues[handle.host]:
            start(handle.host)

    for host in queues:
        while queues[host] and busy[host] < per_host:
            start(host)
    try:
        _drive(multi, finished, lambda: remaining[0])
    finally:
        for handle in idle:
            handle.close()
        multi.close()
    return statuses


def libcurl_loop_threads(urls: list[str], per_host: int, concurrency: int) -> list[int]:
    """A thread per request, as ours, each waiting while one loop thread does its transfer."""
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, concurrency)
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    waiting: dict[int, threading.Event] = {}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            while True:
                try:
                    handle, event = inbox.get_nowait()
                except queue.Empty:
                    break
                waiting[id(handle)] = event
                multi.add_handle(handle)
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            while True:
                left, done, failed = multi.info_read()
                for handle in [*done, *(f[0] for f in failed)]:
                    multi.remove_handle(handle)
                    waiting.pop(id(handle)).set()
                if not left:
                    break
            readable, writable, broken = multi.fdset()
            timeout = multi.timeout()
            select.select(
                [*readable, wake_r], writable, broken, 1.0 if timeout < 0 else timeout / 1000
            )
            with contextlib.suppress(BlockingIOError):
                wake_r.recv(4096)

    def transfer(handle, url: str) -> int:  # noqa: ANN001
        answer = _Answer()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HEADERFUNCTION, answer.header)
        handle.setopt(pycurl.WRITEFUNCTION, answer.write)
        handle.setopt(pycurl.TIMEOUT, 60)
        done = threading.Event()
        inbox.put((handle, done))
        wake_w.send(b".")
        done.wait()
        return answer.status

    runner = threading.Thread(target=loop, daemon=True)
    runner.start()
    try:
        return _in_threads(urls, per_host, concurrency, transfer)
    finally:
        stop.set()
        wake_w.send(b".")
        runner.join()
        multi.close()
        wake_r.close()
        wake_w.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=FetchSettings().concurrency)
    args = parser.parse_args()
    farm = FarmProcess(args.feeds, args.hosts, args.latency)
    rows: list[tuple[str, tuple[float, float, list[int]] | str]] = []
    try:
        urls = farm.urls()
        base = dict(
            allowed_private_hosts=frozenset(farm.addresses()),
            per_host=args.per_host,
            concurrency=args.concurrency,
        )
        with tempfile.TemporaryDirectory() as tmp:
            cache = HttpCache(Path(tmp) / "http")
            farm.mode("fresh")
            rows.append(("ours cold", measure(lambda: ours(urls, FetchSettings(**base), cache))))
            farm.mode("plain")
            again = FetchSettings(**base, refresh=True)
            rows.append(("ours 304", measure(lambda: ours(urls, again, cache))))
        rows.append(("plain pool", measure(lambda: plain_pool(urls, args.concurrency))))
        rows.append(
            (
                "asyncio",
                measure(lambda: httpcore_asyncio(urls, args.per_host, args.concurrency)),
            )
        )
        try:
            import pycurl  # noqa: F401
        except ImportError:  # a dependency of the plugin: only a broken install lacks it
            rows.append(("libcurl", "pycurl is not installed (pip install pycurl)"))
        else:
            rows.append(
                (
                    "libcurl",
                    measure(lambda: libcurl_multi(urls, args.per_host, args.concurrency)),
                )
            )
            rows.append(
                (
                    "libcurl easy",
                    measure(lambda: libcurl_threads(urls, args.per_host, args.concurrency)),
                )
            )
            rows.append(
                (
                    "loop+threads",
                    measure(lambda: libcurl_loop_threads(urls, args.per_host, args.concurrency)),
                )
            )
            rows.append(
                (
                    "loop+python",
                    measure(lambda: libcurl_loop_python(urls, args.per_host, args.concurrency)),
                )
            )
    finally:
        farm.stop()
    per_host = math.ceil(args.feeds / args.hosts / args.per_host) * args.latency
    floor = max(per_host, math.ceil(args.feeds / args.concurrency) * args.latency)
    print(
        f"{args.feeds} URLs on {args.hosts} hosts, {args.latency * 1000:.0f} ms latency, "
        f"{args.per_host} a host, {args.concurrency} at once: latency floor {floor:.2f} s"
    )
    print(
        f"{'client':<12} {'wall s':>7} {'CPU ms a request':>17} {'switches a request':>19}  statuses"
    )
    for name, row in rows:
        if isinstance(row, str):
            print(f"{name:<12} {row}")
            continue
        wall, cpu, switched, statuses = row
        counts = ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses)))
        print(
            f"{name:<12} {wall:7.2f} {1000 * cpu / len(urls):17.2f} "
            f"{switched / len(urls):19.1f}  {counts}"
        )


if __name__ == "__main__":
    main()
