"""The on-disk HTTP cache: round trips, damaged files, atomic writes."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from blog_carnival import cache as cache_module
from blog_carnival.cache import MAGIC, CachedResponse, HttpCache, cache_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

URL = "https://blog.example/feed.xml"
HEADERS = {
    "Content-Type": "application/rss+xml; charset=utf-8",
    "ETag": '"abc"',
    "Last-Modified": "Tue, 03 Nov 2026 10:00:00 GMT",
    "Content-Encoding": "gzip",
    "Content-Length": "42",
    "Transfer-Encoding": "chunked",
    "Set-Cookie": "session=1",
}


def test_round_trip(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path / "cache")
    assert cache.get(URL) is None
    stored = cache.put(URL, URL + "?final", 200, HEADERS, b"<rss/>")
    got = cache.get(URL)
    assert got == stored and isinstance(got, CachedResponse)
    assert (got.url, got.final_url, got.status, got.body) == (URL, URL + "?final", 200, b"<rss/>")
    assert got.etag == '"abc"' and got.last_modified == "Tue, 03 Nov 2026 10:00:00 GMT"
    assert dict(got.headers) == {
        "content-type": "application/rss+xml; charset=utf-8",
        "etag": '"abc"',
        "last-modified": "Tue, 03 Nov 2026 10:00:00 GMT",
    }
    assert got.digest == hashlib.sha256(b"<rss/>").hexdigest()


def test_one_file_per_url_named_by_sha256(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path)
    cache.put(URL, URL, 200, {}, b"a")
    cache.put(URL + "?2", URL, 200, {}, b"b")
    cache.put(URL, URL, 200, {}, b"c")  # replaces
    key = hashlib.sha256(URL.encode()).hexdigest()
    assert cache_key(URL) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{key}.http", f"{cache_key(URL + '?2')}.http"]
    )  # and no temporary files left behind
    assert cache.get(URL).body == b"c"


def _damage(data: bytes) -> list[bytes]:
    body_start = data.index(b"\n", len(MAGIC)) + 1
    return [
        b"",
        data[:5],
        data[: len(MAGIC) + 10],
        data[:body_start],
        data[:-1],
        data + b"extra",
        data[:-1] + bytes([data[-1] ^ 1]),
        b"garbage" + data,
        MAGIC + b"[1, 2, 3]\n",
        MAGIC + b"\xff\xfe\n",
    ]


@pytest.mark.parametrize("case", range(10))
def test_a_damaged_file_is_a_miss_and_is_discarded_with_a_notice(
    tmp_path: Path, case: int, caplog
) -> None:
    cache = HttpCache(tmp_path)
    cache.put(URL, URL, 200, HEADERS, b"<rss>" + b"x" * 100 + b"</rss>")
    file = cache.file_for(URL)
    file.write_bytes(_damage(file.read_bytes())[case])
    assert cache.get(URL) is None
    assert not file.exists()
    (notice,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert notice.startswith(f"carnival: discarded damaged cache file {file} (")
    assert notice.endswith(f"; {URL} will be fetched again")


def test_a_damaged_file_replaced_meanwhile_is_kept(tmp_path: Path) -> None:
    """Another build may write a good entry between our read and the discard: it stays."""
    cache = HttpCache(tmp_path)
    file = cache.file_for(URL)
    file.write_bytes(b"damaged")
    with file.open("rb") as handle:
        seen = os.fstat(handle.fileno())
    cache.put(URL, URL, 200, {}, b"good")  # a new file (os.replace), a new inode
    cache_module._discard(file, seen)
    assert cache.get(URL).body == b"good"
    cache_module._discard(file, os.stat(file))  # the very file read: removed
    assert not file.exists()


def test_temporary_files_are_never_read_as_entries(tmp_path: Path) -> None:
    """What a killed writer leaves behind (a dot name ending .tmp) is not an entry."""
    cache = HttpCache(tmp_path)
    good = cache.put(URL, URL, 200, {}, b"<rss/>")
    assert good is not None
    leftover = tmp_path / f".{cache.file_for(URL).name}.abc123.tmp"
    leftover.write_bytes(cache_module._encode(good)[:-2])
    assert cache.get(URL) == good
    assert leftover.exists()


def test_a_file_stored_for_another_url_is_a_miss(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path)
    cache.put("https://other.example/", "https://other.example/", 200, {}, b"other")
    cache.file_for(URL).write_bytes(cache.file_for("https://other.example/").read_bytes())
    assert cache.get(URL) is None


def test_an_unwritable_cache_is_logged_not_raised(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = HttpCache(blocker)
    assert cache.put(URL, URL, 200, {}, b"x") is None
    assert cache.get(URL) is None
    assert any(
        r.getMessage().startswith("carnival: cannot write cache file") for r in caplog.records
    )


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path)
    bodies = [bytes([65 + i]) * (200_000 + i) for i in range(4)]
    cache.put(URL, URL, 200, {}, bodies[0])
    seen: list[bytes | None] = []
    stop = threading.Event()

    def write(body: bytes) -> None:
        for _ in range(15):
            cache.put(URL, URL, 200, {}, body)

    def read() -> None:
        while not stop.is_set():
            got = cache.get(URL)
            seen.append(None if got is None else got.body)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert seen and all(body in bodies for body in seen)
    assert [p.name for p in tmp_path.iterdir()] == [f"{cache_key(URL)}.http"]


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    url=st.text(min_size=1, max_size=60),
    status=st.integers(100, 599),
    headers=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
        st.text(max_size=30),
        max_size=5,
    ),
    body=st.binary(max_size=2000),
)
def test_anything_stored_comes_back(
    tmp_path: Path, url: str, status: int, headers, body: bytes
) -> None:  # noqa: ANN001
    cache = HttpCache(tmp_path)
    stored = cache.put(url, url, status, headers, body)
    assert stored is not None and cache.get(url) == stored
