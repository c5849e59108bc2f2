"""Frozen editions: <NNN>.lock.json beside the edition's TOML.

A lock holds what was resolved from the network (title, blog, author, date, excerpt);
the host's words (section, note, pick) stay in the TOML, so a host can edit them after
freezing. Re-freezing never drops an entry that resolved before and fails now.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, replace
from pathlib import Path

from .model import RoundupEntry, Source
from .textutil import write_atomic

LOCK_FORMAT = 1
LOCKED_FIELDS = (
    "url",
    "title",
    "blog_name",
    "blog_url",
    "author",
    "published",
    "excerpt",
    "source",
    "feed_url",
)


class LockError(ValueError):
    """A lock file that cannot be read; the message names the file."""


def entry_to_json(entry: RoundupEntry) -> dict:
    data = {k: v for k, v in asdict(entry).items() if k in LOCKED_FIELDS}
    data["source"] = entry.source.value
    data["published"] = entry.published.isoformat() if entry.published else None
    return data


def entry_from_json(data: dict) -> RoundupEntry:
    fields = {k: data.get(k) for k in LOCKED_FIELDS}
    if not isinstance(fields["url"], str) or not isinstance(fields["title"], str):
        raise ValueError("entry without url or title")
    if fields["published"]:
        stamp = dt.datetime.fromisoformat(fields["published"])
        fields["published"] = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    fields["excerpt"] = fields["excerpt"] or ""
    fields["source"] = Source(fields["source"] or "feed")
    return RoundupEntry(**fields)


def read_lock(path: Path) -> list[RoundupEntry] | None:
    """Entries of a lock file, None when there is none; LockError when it is unreadable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        if data.get("format") != LOCK_FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        return [entry_from_json(item) for item in data["entries"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LockError(
            f"{path}: unreadable lock file ({exc}); restore it from git or re-freeze"
        ) from exc


def merge(
    old: list[RoundupEntry] | None, new: list[RoundupEntry]
) -> tuple[list[RoundupEntry], list[str]]:
    """New resolution laid over the old lock: an entry never gets worse, and none disappears.

    Returns the merged entries (new order first, then old entries the new run did not
    produce at all) and notices for each entry whose old data was kept.
    """
    old_by_key = {e.key: e for e in old or []}
    merged, notices = [], []
    for entry in new:
        before = old_by_key.pop(entry.key, None)
        if before is not None and entry.source.rank < before.source.rank:
            notices.append(
                f"kept locked data for {entry.url}: it resolved from {before.source} before, "
                f"only {entry.source} now"
            )
            merged.append(replace(before, section=entry.section, note=entry.note, pick=entry.pick))
        else:
            merged.append(entry)
    for entry in old_by_key.values():
        notices.append(f"kept locked entry {entry.url}: not found this time")
        merged.append(entry)
    return merged, notices


def write_lock(
    path: Path,
    carnival: str,
    number: int,
    entries: list[RoundupEntry],
    *,
    now: dt.datetime | None = None,
) -> None:
    """Write atomically: a temp file in the same folder, fsync, then replace."""
    data = {
        "format": LOCK_FORMAT,
        "carnival": carnival,
        "number": number,
        "frozen_at": (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat(),
        "entries": [entry_to_json(e) for e in entries],
    }
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
