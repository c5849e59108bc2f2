"""Benchmark: does the blog's build grow linearly with the number of posts?

Copies the project (content, theme, plugins, carnival, settings) to a temporary folder, adds N
generated posts (original text, varied tags, categories and dates over ten years) and builds:

  ours   this site's settings, theme and plugins (carnival offline: locked editions only),
         cold: no content cache
  warm   the same build again with the content cache of the cold build (a host's rebuild)
  plain  the same posts and settings in Pelican's default theme (notmyidea) with no plugins,
         cold

Each build runs in its own process; its peak memory is that process's maximum resident set
(os.wait4). Prints one row per size with the ratio ours/plain and seconds per 1,000 posts, so a
ratio or a per-post cost that grows with N shows work proportional to the whole site on every page.
Usage: python bench/site_bench.py [--posts 1000 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("content", "theme", "plugins", "carnival", "pelicanconf.py")
PLAIN_SETTINGS = """
from pelicanconf import *  # noqa: F403

THEME = "notmyidea"
PLUGINS = []
DIRECT_TEMPLATES = ["index", "tags", "categories", "authors", "archives"]
"""

CATEGORIES = (
    "Job Search",
    "Networking",
    "Interviews",
    "Career Change",
    "References",
    "Events",
    "Writing",
    "Follow-up",
)
TAGS = tuple(
    [
        "alumni",
        "etiquette",
        "coffee-chats",
        "introverts",
        "layoffs",
        "linkedin",
        "thank-you-notes",
        "mentors",
        "recruiters",
        "cold-email",
        "referrals",
        "conferences",
        "meetups",
        "portfolios",
        "salary",
        "negotiation",
        "small-talk",
        "volunteering",
        "informational-interviews",
        "weak-ties",
        "reconnecting",
        "boundaries",
        "templates",
        "remote-work",
        "side-projects",
        "career-fairs",
        "hiring-managers",
        "follow-up",
        "storytelling",
        "listening",
        "generosity",
        "introductions",
        "job-boards",
        "résumés",
        "cover-letters",
        "reputation",
        "community-college",
        "bootcamps",
        "returning-to-work",
        "first-jobs",
    ]
)
OPENERS = (
    "Networking, for someone who says they hate it,",
    "A friend who changed careers last spring",
    "The quiet part of any job search",
    "Every hiring manager I have asked",
    "An introduction that lands well",
    "The note you send after a conversation",
    "Someone you met once at a meetup",
    "A former colleague you have not called in years",
    "The best referral I ever received",
    "Your second conversation with a stranger",
)
MIDDLES = (
    "is usually shorter than you expect",
    "depends more on timing than on charm",
    "works best when it asks for one small thing",
    "rarely needs a perfect opening line",
    "goes further when you name what you can offer",
    "tends to remember how you made the request",
    "is easier to give when you do the writing first",
    "will not happen unless somebody follows up",
    "grows out of curiosity rather than need",
    "feels awkward mostly to the person sending it",
)
ENDINGS = (
    "so keep it to three sentences.",
    "and that is good news for anyone who is shy.",
    "which is why a calendar reminder beats good intentions.",
    "so say thank you twice: once that day, once when it pays off.",
    "because people like to help when the path is clear.",
    "and a short draft makes saying yes painless.",
    "so write down what you learned before you forget it.",
    "even if the first reply takes a month.",
    "which matters more than the job title on either side.",
    "and nobody keeps score as closely as you fear.",
)
HEADINGS = (
    "Start before you need it",
    "Make the ask small",
    "What to send afterwards",
    "When nobody answers",
    "A short script",
    "Keep a simple list",
    "Give first",
    "The follow-up that works",
)


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(OPENERS)} {rng.choice(MIDDLES)}, {rng.choice(ENDINGS)}"


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))


def post_text(i: int) -> str:
    """One post in Pelican's Markdown format: metadata, then a few sections of prose."""
    rng = random.Random(i)
    day = 1 + (i * 7919) % 3650  # spread over ten years, not in file order
    year, rest = 2016 + day // 365, day % 365
    month, mday = 1 + rest // 31 % 12, 1 + rest % 28
    hour, minute = (i * 5) % 24, (i * 13) % 60
    tags = ", ".join(rng.sample(TAGS, rng.randint(1, 4)))
    meta = [
        f"Title: {rng.choice(HEADINGS)}, part {i}",
        f"Date: {year}-{month:02d}-{mday:02d} {hour:02d}:{minute:02d}",
        f"Category: {CATEGORIES[i % len(CATEGORIES)]}",
        f"Tags: {tags}",
        f"Slug: generated-{i}",
    ]
    if i % 3 == 0:
        meta.append(f"Summary: {sentence(rng)}")
    if i % 97 == 0:
        meta.append("Carnival: networking-carnival/1")
    body = [paragraph(rng)]
    for heading in rng.sample(HEADINGS, rng.randint(2, 3)):
        body += [f"## {heading}", paragraph(rng)]
        if rng.random() < 0.5:
            body.append("\n".join(f"- {sentence(rng)}" for _ in range(rng.randint(2, 4))))
    body.append(f"More on this in [the archives](/archives/) and *{rng.choice(TAGS)}*.")
    return "\n".join(meta) + "\n\n" + "\n\n".join(body) + "\n"


def make_site(folder: Path, posts: int) -> Path:
    """A copy of the project with `posts` generated posts added to content/posts/."""
    site = folder / "site"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, site / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, site / name)
    (site / "plainconf.py").write_text(PLAIN_SETTINGS, encoding="utf-8")
    target = site / "content" / "posts"
    for i in range(posts):
        (target / f"generated-{i}.md").write_text(post_text(i), encoding="utf-8")
    return site


@dataclass(frozen=True)
class Build:
    seconds: float  # wall clock
    cpu: float  # user + system seconds of the build process: steadier on a shared machine
    peak_mib: float


def build(site: Path, settings: str, out: Path, *, cold: bool) -> Build:
    """One Pelican build in its own process: wall time and that process's peak memory."""
    if cold:
        shutil.rmtree(site / "cache", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pelican", "content", "-s", settings, "-o", str(out)]
    env = {**os.environ, "CARNIVAL_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    with open(site / "build.log", "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = (site / "build.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"build with {settings} failed ({proc.returncode}):\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Build(seconds, cpu, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def median(builds: list[Build]) -> Build:
    return Build(
        statistics.median(b.seconds for b in builds),
        statistics.median(b.cpu for b in builds),
        max(b.peak_mib for b in builds),
    )


def measure(site: Path, out: Path, runs: int) -> tuple[Build, Build, Build]:
    """Plain, ours cold, ours warm: interleaved run by run, so a busy spell on a shared
    machine falls on all three rather than on one column."""
    plain, ours, warm = [], [], []
    for _ in range(runs):
        plain.append(build(site, "plainconf.py", out, cold=True))
        ours.append(build(site, "pelicanconf.py", out, cold=True))
        warm.append(build(site, "pelicanconf.py", out, cold=False))
    return median(plain), median(ours), median(warm)


def compile_plugins() -> None:
    """Compile the project's plugins once, as their first build does on a host's machine:
    with PYTHONDONTWRITEBYTECODE set (some CI images set it) no build would write them, and
    every build and worker process would compile them from source, timing the compiler.
    Pelican's own modules were compiled when pip installed them."""
    compileall.compile_dir(ROOT / "plugins", quiet=1)


def main() -> None:
    compile_plugins()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=3, help="builds per figure (median)")
    args = parser.parse_args()
    print(
        "wall seconds (cpu seconds) per build; ratio = ours / plain; s/1k = seconds per 1,000 posts",
        flush=True,
    )
    print(
        f"{'posts':>6} {'ours_s':>11} {'plain_s':>11} {'ratio':>11} {'warm_s':>11} "
        f"{'ours_s/1k':>9} {'plain_s/1k':>10} {'ours_MiB':>8} {'warm_MiB':>8} {'plain_MiB':>9}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="site-bench.") as tmp:
        for n in args.posts:
            site = make_site(Path(tmp), n)
            out = Path(tmp) / "out"
            plain, ours, warm = measure(site, out, args.runs)
            print(
                f"{n:>6} {both(ours.seconds, ours.cpu)} {both(plain.seconds, plain.cpu)} "
                f"{both(ours.seconds / plain.seconds, ours.cpu / plain.cpu, 2)} "
                f"{both(warm.seconds, warm.cpu)} "
                f"{ours.seconds * 1000 / n:>9.2f} {plain.seconds * 1000 / n:>10.2f} "
                f"{ours.peak_mib:>8.0f} {warm.peak_mib:>8.0f} {plain.peak_mib:>9.0f}",
                flush=True,
            )


def both(wall: float, cpu: float, digits: int = 1) -> str:
    return f"{f'{wall:.{digits}f} ({cpu:.{digits}f})':>11}"


if __name__ == "__main__":
    main()
