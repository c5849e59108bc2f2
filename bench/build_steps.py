"""Diagnosis: when each step of a carnival build happens, against the feed farm's first and
last request, to find what stands between a build and the network's floor.

A first build then a 304 rebuild (``--refresh``) of a tag-mode carnival on the benchmark's
feed farm (carnival_bench.FarmProcess: ``--feeds`` on ``--hosts`` loopback addresses, each
answer after ``--latency``). Each build runs under this script's probe, which notes when
Pelican sent each of its signals and every full (generation 2) garbage collection, with its
length. Printed, a line a build: every mark in seconds since the build started, beside the
farm's first request (FIRST) and last answer (LAST).

The eleventh session found three stalls this way (README, Benchmarks): a full collection
just before the first request, the first round's requests held until all were prepared,
and the HTTP cache's commits in the fetching loop's thread.

Usage: python bench/build_steps.py [--feeds 200] [--hosts 20] [--latency 0.2] [--runs 2]
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = "--probe"
SIGNALS = (
    "initialized",
    "article_generator_init",
    "article_generator_pretaxonomy",
    "article_generator_finalized",
    "get_writer",
    "finalized",
)


def probe(marks_file: str, pelican_args: list[str]) -> None:
    """In the build's process: note the marks, write them at exit, run Pelican."""
    marks: list[tuple[str, float]] = [("python up", time.time())]
    collecting: list[float] = []

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            collecting[:] = [time.perf_counter()]
        elif info["generation"] == 2 and collecting:
            took = (time.perf_counter() - collecting[0]) * 1000
            marks.append((f"gc2 {took:.0f} ms", time.time()))

    gc.callbacks.append(on_collection)
    from pelican import main, signals

    for name in SIGNALS:
        getattr(signals, name).connect(
            lambda _sender, _name=name, **_kw: marks.append((_name, time.time())), weak=False
        )

    def write() -> None:
        marks.append(("exit", time.time()))
        Path(marks_file).write_text(json.dumps(marks))

    atexit.register(write)
    sys.argv = ["pelican", *pelican_args]
    main()


def run(args: argparse.Namespace) -> None:
    from carnival_bench import ROOT, FarmProcess, write_carnival
    from site_bench import compile_plugins

    compile_plugins()
    args.site = ROOT
    farm = FarmProcess(args.feeds, args.hosts, args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            carnival = tmp / "carnival"
            write_carnival(carnival, farm, contributors=True)
            for run_number in range(args.runs):
                cache = tmp / f"cache-{run_number}"
                for kind in ("cold", "304"):
                    farm.mode("fresh" if kind == "cold" else "plain")
                    print(f"{kind:>5}  " + one_build(tmp, carnival, cache, farm, args, kind))
    finally:
        farm.stop()


def one_build(tmp: Path, carnival: Path, cache: Path, farm, args, kind: str) -> str:  # noqa: ANN001
    from carnival_bench import build_command

    marks_file = tmp / "marks.json"
    pelican_args, env = build_command(
        tmp / "out", carnival, cache, farm, args, refresh=kind == "304"
    )
    farm.window()
    started = time.time()
    subprocess.run(
        [sys.executable, __file__, PROBE, str(marks_file), *pelican_args],
        cwd=args.site,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    total = time.time() - started
    window = farm.window()
    marks = [(name, at) for name, at in json.loads(marks_file.read_text())]
    if window["first"] is not None:
        marks += [("FIRST", window["first"]), ("LAST", window["last"])]
    marks.sort(key=lambda mark: mark[1])
    return f"{total:.2f} s: " + ", ".join(f"{name} {at - started:.3f}" for name, at in marks)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == PROBE:
        probe(sys.argv[2], sys.argv[3:])  # nothing of the benchmark's is imported there
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from carnival_bench import FetchSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=FetchSettings().concurrency)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
