"""Benchmark: two checkouts of this project, builds taking turns, on the same feed farm.

On a machine whose speed wanders from one minute to the next (this project's 2-core VM: tens
of percent), two versions can only be compared interleaved: each round builds the site alone,
then cold, fresh and 304 with one tree, then the same with the other (the order alternating
from round to round), against one feed farm (carnival_bench.FarmProcess). Printed: each tree's
median build of the site alone, and what cold, fresh and 304 add to it, in seconds and in CPU
seconds (user + system of the build and every process it started).

Usage: python bench/ab_trees.py OLD_TREE NEW_TREE [--feeds 200] [--hosts 20] [--runs 5]
       [--latency 0.2]
Each tree is a checkout (``git worktree add ../old <commit>``) whose Python files are compiled
first, as carnival_bench does: with PYTHONDONTWRITEBYTECODE set, every build and worker would
otherwise compile them from source. Both are built with this checkout's Python environment.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from carnival_bench import TODAY, FarmProcess, write_carnival  # noqa: E402

KINDS = ("site", "cold", "fresh", "304")


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        compileall.compile_dir(tree / "plugins", quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="ab-trees-"))
    farm = FarmProcess(args.feeds, args.hosts, args.latency)
    wall = {(t, k): [] for t in trees for k in KINDS}
    cpu = {(t, k): [] for t in trees for k in KINDS}
    try:
        full, alone = tmp / "carnival", tmp / "alone"
        write_carnival(full, farm, contributors=True)
        write_carnival(alone, farm, contributors=False)
        hosts = ",".join(f'"{h}"' for h in farm.addresses())

        def build(tree: Path, carnival: Path, cache: Path, refresh: bool = False) -> tuple:
            env = {
                **os.environ,
                "CARNIVAL_OFFLINE": "",
                "CARNIVAL_TODAY": TODAY,
                "CARNIVAL_REFRESH": "true" if refresh else "",
            }
            command = [
                sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py",
                "-o", str(tmp / "out"), "-q",
                "-e", f'CARNIVAL_PATH="{carnival}"', f'CARNIVAL_CACHE_PATH="{cache}"',
                f"CARNIVAL_ALLOWED_PRIVATE_HOSTS=[{hosts}]",
            ]  # fmt: skip
            cpu_before, start = children_cpu(), time.perf_counter()
            done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
            seconds, used = time.perf_counter() - start, children_cpu() - cpu_before
            if done.returncode != 0:
                sys.exit(f"build failed in {tree}:\n{done.stderr[-2000:]}")
            return seconds, used

        for run in range(args.runs):
            order = list(trees.items()) if run % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                cache = tmp / f"cache-{name}-{run}"
                steps = (
                    ("site", alone, tmp / f"site-cache-{name}-{run}", False, "fresh"),
                    ("cold", full, cache, False, "fresh"),
                    ("fresh", full, cache, False, "fresh"),
                    ("304", full, cache, True, "plain"),
                )
                for kind, carnival, folder, refresh, mode in steps:
                    farm.mode(mode)
                    seconds, used = build(tree, carnival, folder, refresh)
                    wall[(name, kind)].append(seconds)
                    cpu[(name, kind)].append(used)
                shown = {k: round(wall[(name, k)][-1], 2) for k in KINDS}
                print(f"run {run + 1} {name}: {shown}", flush=True)
        print(f"\n{args.feeds} feeds on {args.hosts} hosts, {args.runs} runs, medians")
        for name, tree in trees.items():
            site = statistics.median(wall[(name, "site")])
            site_cpu = statistics.median(cpu[(name, "site")])
            added = "  ".join(
                f"{k} +{statistics.median(wall[(name, k)]) - site:.2f} s "
                f"(CPU +{statistics.median(cpu[(name, k)]) - site_cpu:.2f} s)"
                for k in KINDS[1:]
            )
            print(f"{name} ({tree}): site {site:.2f} s  {added}")
    finally:
        farm.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
