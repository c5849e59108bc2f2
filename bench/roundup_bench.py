"""Benchmark: the CPU the carnival's own stages cost on a large edition, with no network.

A carnival of 2,000 feeds gives a roundup of 4,000 entries, and every build of it, even one
that sends no request, pays for rendering that roundup, picking and deduplicating its
entries, and reading the carnival's files. This times each of those stages alone, in this
process, on synthetic input of the given size:

  load     core.load: carnival.toml and the edition file of a carnival with N contributors
  assemble select_tagged on N feeds of two tagged entries each, then dedupe and limits
  render   roundup_html of the 2N entries (the page body every build writes)

Usage: python bench/roundup_bench.py [--contributors 2000] [--runs 5]
Prints the median milliseconds of each stage and the microseconds per entry.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blog_carnival import core  # noqa: E402
from blog_carnival.assemble import assemble  # noqa: E402
from blog_carnival.collect import Documents, Fetched  # noqa: E402
from blog_carnival.model import FeedEntry, ParsedFeed  # noqa: E402
from blog_carnival.render import roundup_html  # noqa: E402
from blog_carnival.settings import read_settings  # noqa: E402
from blog_carnival.sources import plan  # noqa: E402
from carnival_bench import TODAY, write_carnival  # noqa: E402
from feed_server import TAG  # noqa: E402

HOSTS = 50
PORT = 8000


class _Addresses:
    """What write_carnival needs of a feed farm: no server is started here."""

    def __init__(self, feeds: int) -> None:
        self.feeds, self.hosts, self.port = feeds, HOSTS, PORT

    def addresses(self) -> list[str]:
        return [f"127.0.0.{2 + i}" for i in range(self.hosts)]


def parsed_feed(url: str) -> ParsedFeed:
    """A contributor's feed as the parser hands it over: two entries tagged for the edition,
    their excerpt text already worked out (as parsepool.narrow leaves it)."""
    base = url.rsplit("/", 1)[0]
    entries = tuple(
        FeedEntry(
            link=f"{base}/posts/{i}.html",
            id=f"{base}/posts/{i}",
            title=f"Post {i}: on keeping in touch",
            author="A writer",
            published=dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC) - dt.timedelta(days=3 * i),
            tags=(TAG, "jobs"),
            summary=f"<p>Paragraph {i}. A short note on networking and following up.</p>",
            base=url,
            text=f"Paragraph {i}. A short note on networking and following up.",
        )
        for i in range(2)
    )
    return ParsedFeed(url=url, title="A blog", link=f"{base}/", entries=entries)


def median_ms(runs: int, stage: Callable[[], object]) -> tuple[float, object]:
    stage()  # warm: templates compiled, modules imported
    times, result = [], None
    for _ in range(runs):
        start = time.process_time()
        result = stage()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributors", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roundup-bench.") as tmp:
        folder = Path(tmp) / "carnival"
        write_carnival(folder, _Addresses(args.contributors), contributors=True)
        settings = read_settings(
            {"CARNIVAL_PATH": str(folder), "CARNIVAL_TODAY": TODAY, "PATH": tmp}, Path(tmp)
        )
        load_ms, carnivals = median_ms(args.runs, lambda: core.load(settings))
        _, to_fetch = core.from_locks(carnivals, settings.today)
        ((carnival, edition),) = to_fetch
        the_plan = plan(carnival, edition)
        docs = Documents(
            fetched={p.feed: Fetched(is_feed=True) for p in the_plan.contributors},
            feed_of={p.blog: p.feed for p in the_plan.contributors},
            feeds={p.feed: parsed_feed(p.feed) for p in the_plan.contributors},
        )
        assemble_ms, result = median_ms(
            args.runs, lambda: assemble(the_plan, docs, settings.excerpt_words)
        )
        render_ms, html = median_ms(args.runs, lambda: roundup_html(carnival, edition, result))
    entries = len(result.entries)
    print(
        f"{args.contributors} contributors, {entries} entries, {len(html) / 1e6:.1f} MB of "
        f"roundup; CPU milliseconds, median of {args.runs}"
    )
    print(f"{'stage':<9} {'ms':>8} {'us/entry':>9}")
    for name, ms in (("load", load_ms), ("assemble", assemble_ms), ("render", render_ms)):
        print(f"{name:<9} {ms:>8.1f} {ms * 1000 / max(entries, 1):>9.1f}")


if __name__ == "__main__":
    main()
