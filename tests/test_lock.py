"""Locks: round-trip, merge never loses an entry, atomic writes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from blog_carnival.lock import LockError, merge, read_lock, write_lock
from blog_carnival.model import RoundupEntry

WHEN = dt.datetime(2026, 11, 5, 8, 30, tzinfo=dt.UTC)


def entry(path: str, source: str = "feed", title: str | None = None) -> RoundupEntry:
    return RoundupEntry(
        url=f"https://blog.example/{path}",
        title=title or path,
        blog_name="Blog",
        blog_url="https://blog.example/",
        published=WHEN,
        excerpt="x",
        source=source,
        feed_url="https://blog.example/feed.xml",
    )


def test_round_trip(tmp_path):
    path = tmp_path / "001.lock.json"
    entries = [entry("a"), entry("b", "page")]
    write_lock(path, "c", 1, entries, now=WHEN)
    assert read_lock(path) == entries
    data = json.loads(path.read_text())
    assert data["format"] == 1 and data["frozen_at"] == "2026-11-05T08:30:00+00:00"
    assert "note" not in data["entries"][0]  # host's words stay in the TOML


def test_missing_lock_is_none(tmp_path):
    assert read_lock(tmp_path / "nope.lock.json") is None


def test_corrupt_lock_names_file(tmp_path):
    path = tmp_path / "002.lock.json"
    path.write_text("{not json")
    with pytest.raises(LockError, match="002.lock.json"):
        read_lock(path)


def test_merge_keeps_better_old_data_and_missing_entries():
    old = [entry("a", "feed", "Old A"), entry("b", "feed", "Old B"), entry("c", "tag", "Old C")]
    new = [
        entry("a", "unresolved", "https://blog.example/a"),
        entry("b", "feed", "New B"),
        entry("d", "feed", "New D"),
    ]
    merged, notices = merge(old, new)
    assert [e.title for e in merged] == ["Old A", "New B", "New D", "Old C"]
    assert any("kept locked data for https://blog.example/a" in n for n in notices)
    assert any("kept locked entry https://blog.example/c" in n for n in notices)


def test_failed_write_leaves_old_lock(tmp_path, monkeypatch):
    path = tmp_path / "001.lock.json"
    write_lock(path, "c", 1, [entry("a")], now=WHEN)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_lock(path, "c", 1, [entry("zzz")], now=WHEN)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["001.lock.json"]
