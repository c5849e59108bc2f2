"""Write a new carnival's carnival.toml and the next edition's <NNN>.toml, commented so a host
sees every optional field. Values are written as TOML by tomlkit, and each file is validated
as the build would read it before it is written (atomically)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import tomlkit

from .config import SLUG, edition_from_text, load_carnivals
from .errors import ConfigError, Refused, UsageError
from .model import Carnival, Edition, Person
from .textutil import write_atomic

DEFAULT_CADENCE = dt.timedelta(days=30)  # between editions, when there is no history yet
DEFAULT_WINDOW = dt.timedelta(days=27)  # from opening to deadline
DEFAULT_GAP = dt.timedelta(days=3)  # from deadline to publication


def toml_value(value: object) -> str:
    """One TOML value, escaped as TOML wants it (strings, dates, booleans; a dict becomes an
    inline table)."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string()
    return tomlkit.item(value).as_string()


def title_from_slug(slug: str) -> str:
    """'networking-carnival' -> 'The Networking Carnival'."""
    words = slug.replace("-", " ").strip().title()
    return words if words.lower().startswith("the ") else f"The {words}"


def new_carnival(
    root: Path,
    slug: str,
    *,
    title: str | None = None,
    organizer: Person,
    submit_email: str | None = None,
) -> Path:
    """Write ``<root>/<slug>/carnival.toml``; refuses to overwrite one."""
    if not SLUG.match(slug):
        raise UsageError(
            f"{slug!r} is not a carnival name: use lowercase letters, digits and hyphens"
        )
    path = root / slug / "carnival.toml"
    if path.exists():
        raise Refused(f"{path} already exists; edit it, or choose another name")
    organizer_table = {"name": organizer.name, **({"url": organizer.url} if organizer.url else {})}
    email = (
        f"submit_email = {toml_value(submit_email)}"
        if submit_email
        else '# submit_email = "you@example.org"'
    )
    text = f"""\
# {slug}: one blog carnival. Every field is explained; optional ones start commented out.
# Editions live beside this file, one per edition: 001.toml, 002.toml, ...
# (`invoke carnival.edition {slug}` writes the next one).

title = {toml_value(title or title_from_slug(slug))}

# Markdown, shown on the carnival's page: what it is about and who it is for.
description = \"\"\"
A recurring roundup of blog posts. Each edition has one topic, a host and a deadline;
bloggers send posts, and the host publishes a roundup with a word on every entry.
\"\"\"

organizer = {toml_value(organizer_table)}

# Where bloggers send their entries: the call for submissions links to it with the subject
# and the blanks filled in.
{email}

# Markdown: how to take part, shown on the carnival's page and on every call.
rules = \"\"\"
1. Write a post on the edition's topic, published between its opening date and its deadline.
2. Send its link to the host before the deadline.
3. One post per blogger per edition.
\"\"\"

# The time zone deadlines are in: a deadline ends at 23:59 there. Default: UTC.
# timezone = "Europe/Lisbon"

# Limits, off unless set (an edition can set its own): the report names what they drop.
# max_entries = 30
# max_per_contributor = 1

# Regular contributors. An edition with a `tag` picks up their posts carrying that tag,
# published in its window, without a submission.
# [[contributors]]
# name = "Dana Whitlock"
# blog = "https://blog.example/"
# feed = "https://blog.example/feed.xml"   # optional: found on the blog's page
"""
    _validate_carnival(root, slug, text)
    write_atomic(path, text)
    return path


def _validate_carnival(root: Path, slug: str, text: str) -> None:
    """Load the new carnival from a scratch copy, as the build would."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / root.name / slug
        scratch.mkdir(parents=True)
        (scratch / "carnival.toml").write_text(text, encoding="utf-8")
        load_carnivals(scratch.parent)


def next_dates(previous: tuple[Edition, ...], today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(opens, deadline, date) for the next edition, from the previous editions' cadence.

    The cadence is the time between the last two publication dates (30 days with only one);
    the new edition keeps the last one's window length and its gap before publication. With
    no edition yet: open today, a four-week window, published three days after it closes.
    """
    if not previous:
        opens = today
        deadline = opens + DEFAULT_WINDOW
        return opens, deadline, deadline + DEFAULT_GAP
    last = previous[-1]
    cadence = last.date - previous[-2].date if len(previous) > 1 else DEFAULT_CADENCE
    cadence = max(cadence, dt.timedelta(days=1))
    date = last.date + cadence
    deadline = date - (last.date - last.deadline)
    opens = deadline - (last.deadline - last.opens)
    return opens, deadline, date


def new_edition(
    carnival: Carnival,
    *,
    today: dt.date,
    title: str | None = None,
    host: Person | None = None,
    opens: dt.date | None = None,
    deadline: dt.date | None = None,
    date: dt.date | None = None,
) -> tuple[Path, Edition]:
    """Write the next free ``<NNN>.toml`` of ``carnival``; returns its path and the edition."""
    number = max((e.number for e in carnival.editions), default=0) + 1
    path = carnival.path.parent / f"{number:03d}.toml"
    if path.exists():
        raise Refused(f"{path} already exists but is not a valid edition; fix or remove it")
    auto = next_dates(carnival.editions, today)
    opens = opens or auto[0]
    deadline = deadline or (opens + (auto[1] - auto[0]) if opens != auto[0] else auto[1])
    date = date or (deadline + (auto[2] - auto[1]))
    host = host or carnival.organizer
    host_table = {"name": host.name, **({"url": host.url} if host.url else {})}
    text = f"""\
# {carnival.title} #{number}. Until `date` this edition's page is its call for submissions;
# from `date` on it is the roundup. Optional fields start commented out.

number = {number}
title = {toml_value(title or "Topic to be announced")}
host = {toml_value(host_table)}

# The submission window (both days included; the deadline ends at 23:59 {carnival.timezone})
# and the day the roundup is published.
opens = {opens.isoformat()}
deadline = {deadline.isoformat()}
date = {date.isoformat()}

# Markdown: a sentence or two that opens the call and, later, the roundup.
intro = \"\"\"
What this edition is about, and what kind of post you hope for.
\"\"\"

# Entries are grouped under these headings, in this order (empty ones are left out).
# sections = ["Getting started", "Going further"]

# Tag mode: contributors' posts with this tag, published in the window, join on their own.
# tag = "{carnival.slug}"

# This edition is hosted on another blog: we only link to it (no entries here).
# roundup_url = "https://other-host.example/carnival/{number}/"

# Markdown: how to take part, if it differs from the carnival's rules.
# how_to_submit = \"\"\"Send your link to ... by ...\"\"\"

# Limits for this edition only (off unless set).
# max_entries = 30
# max_per_contributor = 1

# Entries: `invoke carnival.submit {carnival.slug}/{number} <url>` adds them here. By hand:
# [[entries]]
# url = "https://blog.example/2026/11/post.html"
# feed = "https://blog.example/feed.xml"   # optional: found on the post's page
# section = "Getting started"              # optional
# note = "Markdown: why it is worth reading"
# pick = true                              # optional: the host's pick
"""
    try:
        edition = edition_from_text(carnival, path, text)
    except ConfigError as exc:
        raise UsageError("; ".join(exc.problems)) from None
    write_atomic(path, text)
    return path, edition
