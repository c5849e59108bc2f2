"""Benchmark: what a tag-mode carnival of many contributor feeds adds to a build, cold and warm.

For each pair of (feeds, hosts) (default 200 and 2,000 feeds, each on 20 and 50 hosts) a feed
farm (bench/feed_server.py, its own process) serves the feeds from 127.0.0.2 upwards, every
answer after a fixed latency (default 200 ms). The site is then built with Pelican, each build
in its own process:

  site   the same site and carnival with no contributors (the carnival costs nothing)
  cold   an empty cache: every feed fetched (answers say max-age=3600) and parsed
  fresh  again, inside the feeds' freshness window: no request at all
  304    again with CARNIVAL_REFRESH (what `invoke build --refresh` sets), the farm no longer
         stating a lifetime: every feed revalidated, every one answering 304 Not Modified

Each build is given as the time it ADDS to "site", beside the latency floor (the rounds of
requests the per-host limit forces, ceil(feeds per host / per_host) x latency, and the rounds
concurrency forces, ceil(feeds / concurrency) x latency: the larger is the floor) and a plain
thread pool (ThreadPoolExecutor(concurrency) + urllib, no politeness, no cache) fetching the
same URLs. Peak memory is the sum of the high-water resident sets (VmHWM) of the build
process and of every child it started (parse workers), sampled every 20 ms. CPU is the user
and system time of the build and of the workers it joined: on a machine whose speed wanders,
it says more steadily than the seconds where the time goes. A second table splits each
build's CPU between the build process and its worker processes (parse or fetch workers, read
from /proc at the same samples).

Usage: python bench/carnival_bench.py [--feeds 200,2000] [--hosts 20,50] [--latency 0.2]
       [--runs 3] [--per-host 4] [--concurrency N (the plugin's default)] [--posts 0]
With --posts N the site is the project with N generated posts added (bench/site_bench.py), its
content cache kept between builds as a host's is: the feeds are fetched while Pelican reads
the posts, so on a large site much of their time is hidden.
Times are medians of --runs; on a busy machine they wander, so the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "plugins"))
from blog_carnival.fetch import FetchSettings  # noqa: E402
from feed_server import TAG, feed_url, host_of  # noqa: E402

TODAY = "2026-12-01"  # the edition's date is behind it: a roundup, not a call


# -- the feed farm --------------------------------------------------------------------------------


class FarmProcess:
    def __init__(self, feeds: int, hosts: int, latency: float) -> None:
        self.feeds, self.hosts = feeds, hosts
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "feed_server.py"),
                f"--feeds={feeds}",
                f"--hosts={hosts}",
                f"--latency={latency}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            sys.exit(f"feed farm did not start: {line!r}")
        self.port = int(line.split()[1])

    def control(self, path: str) -> dict:
        url = f"http://{host_of(0, self.hosts)}:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict:
        return self.control("/_stats")

    def mode(self, name: str) -> None:
        self.control(f"/_mode/{name}")

    def window(self) -> dict:
        """When the first feed request since the last call arrived and the last answer left
        (epoch seconds, or None); starts a new window."""
        return self.control("/_window")

    def urls(self) -> list[str]:
        return [feed_url(n, self.hosts, self.port) for n in range(self.feeds)]

    def addresses(self) -> list[str]:
        return sorted({host_of(n, self.hosts) for n in range(self.feeds)})

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


def write_carnival(folder: Path, farm: FarmProcess, contributors: bool) -> None:
    c = folder / "bench"
    c.mkdir(parents=True)
    people = ""
    if contributors:
        people = "".join(
            f'\n[[contributors]]\nname = "Writer {n}"\n'
            f'blog = "http://{host_of(n, farm.hosts)}:{farm.port}/{n}/"\n'
            f'feed = "{feed_url(n, farm.hosts, farm.port)}"\n'
            for n in range(farm.feeds)
        )
    (c / "carnival.toml").write_text(
        'title = "Bench Carnival"\ndescription = "Synthetic."\norganizer = { name = "Bench" }\n'
        + people
    )
    (c / "001.toml").write_text(
        'number = 1\ntitle = "Everything"\nhost = { name = "Bench" }\nopens = 2026-10-01\n'
        f'deadline = 2026-10-31\ndate = 2026-11-02\ntag = "{TAG}"\nintro = "All of it."\n'
    )


# -- one build, timed, its memory sampled ---------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process so far (not of its children), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _sample_tree(
    root: int, peaks: dict[int, int], cpu: dict[int, float], stop: threading.Event
) -> None:
    """Keep each process's latest high-water mark (their sum is the peak) and its latest CPU
    seconds (sampled, so each may miss its last 20 ms) until ``stop``."""
    while not stop.is_set():
        todo, seen = [root], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            hwm = _hwm_kib(pid)
            if hwm is not None:
                peaks[pid] = max(peaks.get(pid, 0), hwm)
            used = _cpu_seconds(pid)
            if used is not None:
                cpu[pid] = max(cpu.get(pid, 0.0), used)
            todo.extend(_children(pid))
        stop.wait(0.02)


@dataclass
class Build:
    seconds: float
    peak_mib: float
    requests: int
    entries: int
    cpu: float = 0.0  # CPU seconds (user + system) of the build and its worker processes
    workers_cpu: float = 0.0  # of which its worker processes' (sampled: a lower bound)
    # Seconds from the build's start to the farm's first request, and from its last answer
    # to the build's end (None: the build sent no request).
    to_first: float | None = None
    after_last: float | None = None


def build_command(
    out: Path, carnival: Path, cache: Path, farm: FarmProcess, args, *, refresh: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The arguments to ``pelican`` (run in ``args.site``) and the environment of one build
    of ``carnival`` against ``farm`` into ``out``."""
    hosts = ",".join(f'"{h}"' for h in farm.addresses())
    pelican_args = [
        "content",
        "-s",
        "pelicanconf.py",
        "-o",
        str(out),
        "-q",
        "-e",
        f'CARNIVAL_PATH="{carnival}"',
        f'CARNIVAL_CACHE_PATH="{cache}"',
        f"CARNIVAL_ALLOWED_PRIVATE_HOSTS=[{hosts}]",
        f"CARNIVAL_PER_HOST={args.per_host}",
        f"CARNIVAL_CONCURRENCY={args.concurrency}",
    ]
    env = {**os.environ, "CARNIVAL_OFFLINE": "", "CARNIVAL_TODAY": TODAY}
    env["CARNIVAL_REFRESH"] = "true" if refresh else ""
    return pelican_args, env


def build(
    tmp: Path, carnival: Path, cache: Path, farm: FarmProcess, args, *, refresh: bool = False
) -> Build:
    out = tmp / "out"
    shutil.rmtree(out, ignore_errors=True)
    pelican_args, env = build_command(out, carnival, cache, farm, args, refresh=refresh)
    cmd = [sys.executable, "-m", "pelican", *pelican_args]
    before = farm.stats()["requests"]
    farm.window()
    started = time.time()
    peaks: dict[int, int] = {}
    per_process: dict[int, float] = {}
    stop = threading.Event()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=args.site, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = threading.Thread(
        target=_sample_tree, args=(proc.pid, peaks, per_process, stop), daemon=True
    )
    sampler.start()
    stdout, stderr = proc.communicate()
    took = time.perf_counter() - start
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build and the workers it joined
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{stdout}\n{stderr}")
    page = out / "carnival" / "bench" / "1" / "index.html"
    entries = page.read_text().count('class="roundup-entry') if page.exists() else 0
    workers = sum(used for pid, used in per_process.items() if pid != proc.pid)
    requests = farm.stats()["requests"] - before
    window = farm.window()
    to_first = after_last = None
    if window["first"] is not None and window["last"] is not None:
        to_first, after_last = window["first"] - started, ended - window["last"]
    return Build(
        took, sum(peaks.values()) / 1024, requests, entries, cpu, workers, to_first, after_last
    )


def plain_pool(urls: list[str], workers: int) -> float:
    """The same URLs with the standard library's client in a plain thread pool."""

    def get(url: str) -> int:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return len(answer.read())

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        sizes = list(pool.map(get, urls))
    took = time.perf_counter() - start
    assert all(sizes)
    return took


# -- the runs -------------------------------------------------------------------------------------

KINDS = ("site", "cold", "fresh", "304")


@dataclass
class Case:
    feeds: int
    hosts: int
    builds: dict[str, list[Build]] = field(default_factory=lambda: {k: [] for k in KINDS})
    plain: list[float] = field(default_factory=list)


def run_case(feeds: int, hosts: int, args, tmp: Path) -> Case:
    case = Case(feeds, hosts)
    farm = FarmProcess(feeds, hosts, args.latency)
    try:
        folder = tmp / f"{feeds}-{hosts}"
        alone, full = folder / "alone", folder / "carnival"
        write_carnival(alone, farm, contributors=False)
        write_carnival(full, farm, contributors=True)
        for run in range(args.runs):
            case.builds["site"].append(
                build(folder, alone, folder / f"cache-site-{run}", farm, args)
            )
            cache = folder / f"cache-{run}"
            farm.mode("fresh")  # answers state a lifetime of an hour
            case.builds["cold"].append(build(folder, full, cache, farm, args))
            case.builds["fresh"].append(build(folder, full, cache, farm, args))
            farm.mode("plain")
            case.builds["304"].append(build(folder, full, cache, farm, args, refresh=True))
            case.plain.append(plain_pool(farm.urls(), args.concurrency))
            print(
                f"  {feeds} feeds / {hosts} hosts, run {run + 1}: "
                + ", ".join(f"{k} {case.builds[k][-1].seconds:.2f} s" for k in KINDS)
                + f", plain pool {case.plain[-1]:.2f} s",
                flush=True,
            )
    finally:
        farm.stop()
    return case


def floors(feeds: int, hosts: int, args) -> tuple[float, float]:
    per_host_rounds = math.ceil(math.ceil(feeds / hosts) / args.per_host)
    concurrency_rounds = math.ceil(feeds / args.concurrency)
    return per_host_rounds * args.latency, concurrency_rounds * args.latency


def report(cases: list[Case], args) -> None:
    med = statistics.median
    print()
    print(
        f"latency {args.latency * 1000:.0f} ms, per_host {args.per_host}, concurrency "
        f"{args.concurrency}, runs {args.runs} (medians), load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    head = (
        f"{'feeds':>5} {'hosts':>5} | {'site':>5} | {'floor':>5} {'(host':>5} {'conc)':>5} | "
        f"{'plain':>5} | {'cold':>5} {'304':>5} {'fresh':>5} | "
        f"{'MiB cold':>8} {'304':>5} {'fresh':>5} | {'CPU cold':>8} {'304':>5} {'fresh':>5} | "
        f"{'requests c/304/f':>16} | entries"
    )
    print(head)
    print("-" * len(head))
    for case in cases:
        site = med(b.seconds for b in case.builds["site"])
        by_host, by_conc = floors(case.feeds, case.hosts, args)
        added = {k: med(b.seconds for b in case.builds[k]) - site for k in ("cold", "304", "fresh")}
        peak = {k: max(b.peak_mib for b in case.builds[k]) for k in ("cold", "304", "fresh")}
        site_cpu = med(b.cpu for b in case.builds["site"])
        cpu = {k: med(b.cpu for b in case.builds[k]) - site_cpu for k in ("cold", "304", "fresh")}
        reqs = "/".join(str(case.builds[k][-1].requests) for k in ("cold", "304", "fresh"))
        entries = {b.entries for k in ("cold", "304", "fresh") for b in case.builds[k]}
        print(
            f"{case.feeds:>5} {case.hosts:>5} | {site:5.2f} | {max(by_host, by_conc):5.2f} "
            f"{by_host:5.2f} {by_conc:5.2f} | {med(case.plain):5.2f} | "
            f"{added['cold']:+5.2f} {added['304']:+5.2f} {added['fresh']:+5.2f} | "
            f"{peak['cold']:8.0f} {peak['304']:5.0f} {peak['fresh']:5.0f} | "
            f"{cpu['cold']:+8.2f} {cpu['304']:+5.2f} {cpu['fresh']:+5.2f} | {reqs:>16} | "
            f"{'/'.join(str(e) for e in sorted(entries))} (of {case.feeds * 2})"
        )
    print()
    print("CPU seconds of each build (not less the site's): the build process / its workers")
    print(f"{'feeds':>5} {'hosts':>5} | {'site':>11} | {'cold':>11} | {'304':>11} | {'fresh':>11}")
    for case in cases:
        split = []
        for kind in ("site", "cold", "304", "fresh"):
            builds = case.builds[kind]
            own = med(b.cpu - b.workers_cpu for b in builds)
            split.append(f"{own:5.1f} /{med(b.workers_cpu for b in builds):4.1f}")
        print(f"{case.feeds:>5} {case.hosts:>5} | " + " | ".join(f"{x:>11}" for x in split))
    print()
    print(
        "Where a build's seconds go (medians): from its start to the farm's first request, "
        "from there to the last answer, and from that to the end"
    )
    print(f"{'feeds':>5} {'hosts':>5} | {'site':>5} | {'cold':>17} | {'304':>17}")
    for case in cases:
        parts = []
        for kind in ("cold", "304"):
            timed = [b for b in case.builds[kind] if b.to_first is not None]
            if not timed:
                parts.append(f"{'-':>17}")
                continue
            first, last = med(b.to_first for b in timed), med(b.after_last for b in timed)
            fetching = med(b.seconds - b.to_first - b.after_last for b in timed)
            parts.append(f"{first:5.2f} {fetching:5.2f} {last:5.2f}")
        site = med(b.seconds for b in case.builds["site"])
        print(f"{case.feeds:>5} {case.hosts:>5} | {site:5.2f} | " + " | ".join(parts))
    print(
        "site: build seconds with no contributors; floor: the latency floor (larger of the "
        "per-host and the concurrency rounds); plain: ThreadPoolExecutor + urllib, seconds; "
        "cold/304/fresh: seconds ADDED to site; MiB: peak resident memory, build + workers; "
        "CPU: CPU seconds (user + system, build + workers) ADDED to site's; the split: the "
        "build process's own CPU and its worker processes' (parse or fetch workers, sampled "
        "every 20 ms from /proc)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", default="200,2000")
    parser.add_argument("--hosts", default="20,50")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=FetchSettings().concurrency)
    parser.add_argument(
        "--posts",
        type=int,
        default=0,
        help="add this many generated posts to the site (as bench/site_bench.py does): the "
        "feeds are fetched while Pelican reads them",
    )
    args = parser.parse_args()
    from site_bench import compile_plugins

    compile_plugins()
    tmp = Path(tempfile.mkdtemp(prefix="carnival-bench-"))
    args.site = ROOT
    cases = []
    try:
        if args.posts:
            from site_bench import make_site

            args.site = make_site(tmp, args.posts)
        for feeds in (int(f) for f in args.feeds.split(",")):
            for hosts in (int(h) for h in args.hosts.split(",")):
                cases.append(run_case(feeds, hosts, args, tmp))
        report(cases, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
