"""Benchmark: the worst contributor feeds, one build each, with the site's own settings.

For each case the carnival has one good contributor and one hostile one. Prints the
build's wall time and peak memory (the largest resident set of the build process and of
its parse workers), and the reason the report gave. Usage: python bench/hostile_bench.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from hostile_server import HostileServer  # noqa: E402

TAG = "bench-hostile"
WHEN = "Tue, 10 Nov 2026 10:00:00 GMT"
RUNNER = (
    "import resource, sys\n"
    "from pelican import main\n"
    "try:\n    main(sys.argv[1:])\n"
    "finally:\n"
    "    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    print(f'PEAK_KIB {max(me, kids)}', file=sys.stderr)\n"
)


def feed(base: str, items: int = 1, title: str = "Good") -> bytes:
    body = "".join(
        f"<item><title>{title} {i}</title><link>{base}/{i}.html</link><category>{TAG}</category>"
        f"<pubDate>{WHEN}</pubDate><description>Words {i}.</description></item>"
        for i in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>{base}/</link><description>d</description>{body}</channel></rss>"
    ).encode()


def many_items(count: int) -> bytes:
    """As many small tagged items as fit under the size cap (about 75 bytes each)."""
    body = "".join(
        f"<item><title>{i}</title><link>/{i}</link><category>{TAG}</category></item>"
        for i in range(count)
    )
    return f'<rss version="2.0"><channel><title>Many</title><link>/</link>{body}</channel></rss>'.encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b']><rss version="2.0"><channel><title>&j;</title><item><title>x</title></item></channel></rss>'
)


def build(tmp: Path, name: str, feeds: dict[str, str]) -> tuple[float, float, str]:
    folder = tmp / name / "carnival" / "bench"
    folder.mkdir(parents=True)
    people = "".join(
        f'\n[[contributors]]\nname = "{who}"\nblog = "http://127.0.0.1/{who}/"\nfeed = "{url}"\n'
        for who, url in feeds.items()
    )
    (folder / "carnival.toml").write_text(
        f'title = "Bench"\ndescription = "d"\norganizer = {{ name = "B" }}\n{people}'
    )
    (folder / "001.toml").write_text(
        'number = 1\ntitle = "One"\nhost = { name = "B" }\nopens = 2026-11-01\ndeadline = 2026-11-30\n'
        f'date = 2026-12-01\ntag = "{TAG}"\nintro = "i"\n'
    )
    cmd = [
        sys.executable,
        "-c",
        RUNNER,
        "content",
        "-s",
        "pelicanconf.py",
        "-o",
        str(tmp / name / "out"),
        "-e",
        f"CARNIVAL_PATH={json.dumps(str(folder.parent))}",
        f"CARNIVAL_CACHE_PATH={json.dumps(str(tmp / name / 'cache'))}",
        'CARNIVAL_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"]',
        "CARNIVAL_OFFLINE=false",
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"}
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{name}: build failed\n{proc.stdout}\n{proc.stderr}")
    peak = next(
        int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB")
    )
    reason = next(
        (
            line.strip()
            for line in proc.stdout.splitlines()
            if "failed:" in line or "read 1000" in line or "DOCTYPE" in line
        ),
        "no failure",
    )
    return took, peak / 1024, reason


def main() -> None:
    with HostileServer("127.0.0.1") as server, tempfile.TemporaryDirectory() as tmp:
        good = server.route(
            "/good.xml",
            feed(server.base + "/good"),
            headers={"Content-Type": "application/rss+xml"},
        )
        cases = {
            "good feed only": None,
            "never answers": server.hang("/hang.xml"),
            "trickles 1 byte/s": server.trickle("/trickle.xml", size=100_000, rate=1.0),
            "100 MB body": server.huge("/huge.xml", 100 * 1024 * 1024),
            "gzip bomb (300 MiB)": server.gzip_bomb("/bomb.xml", 300),
            "100,000 items": server.route("/many.xml", many_items(100_000)),
            "billion laughs": server.route("/laughs.xml", BILLION_LAUGHS),
        }
        print(f"{'case':22s} {'build s':>8s} {'peak MiB':>9s}  report")
        for i, (name, url) in enumerate(cases.items()):
            feeds = {"good": good} | ({"hostile": url} if url else {})
            took, peak, reason = build(Path(tmp), f"case{i}", feeds)
            print(f"{name:22s} {took:8.2f} {peak:9.0f}  {reason[:110]}")


if __name__ == "__main__":
    main()
