"""The on-disk HTTP cache: round trips, damaged entries, whole writes, the old layout."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from blog_carnival.cache import (
    DB_NAME,
    IN_CHUNK,
    WRITE_BATCH,
    WRITE_BYTES,
    CachedResponse,
    HttpCache,
)
from cache_rows import rows, set_row, stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polling import wait_for

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


def test_one_entry_per_url_in_one_database(tmp_path: Path) -> None:
    with HttpCache(tmp_path) as cache:
        cache.put(URL, URL, 200, {}, b"a")
        cache.put(URL + "?2", URL, 200, {}, b"b")
        cache.put(URL, URL, 200, {}, b"c")  # replaces
        assert cache.get(URL).body == b"c"
    assert rows(tmp_path) == {URL: b"c", URL + "?2": b"b"}
    assert {p.name for p in tmp_path.iterdir()} <= {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"}


def test_bulk_writes_are_committed_together_and_read_back_before(tmp_path: Path) -> None:
    """A bulk run's writes wait until WRITE_BATCH of them are waiting; meanwhile the cache
    itself reads them back (committing first), and close commits the rest."""
    cache = HttpCache(tmp_path)
    assert cache.available()  # the database is made: its rows can be counted
    urls = [f"{URL}?{n}" for n in range(WRITE_BATCH + 3)]
    for url in urls[: WRITE_BATCH - 1]:
        assert cache.put(url, url, 200, {}, url.encode(), durable=False) is not None
    assert rows(tmp_path) == {}  # nothing committed yet: no other process sees them
    cache.put(urls[WRITE_BATCH - 1], urls[WRITE_BATCH - 1], 200, {}, b"x", durable=False)
    # the batch is full: committed in one go, by the cache's writer thread
    assert wait_for(lambda: len(rows(tmp_path)) == WRITE_BATCH, 10.0)
    cache.put(urls[-1], urls[-1], 200, {}, b"last", durable=False)
    assert urls[-1] not in rows(tmp_path)
    assert cache.get(urls[-1]).body == b"last"  # read back: committed first
    assert urls[-1] in rows(tmp_path)
    cache.put(urls[-2], urls[-2], 200, {}, b"waiting", durable=False)
    cache.close()
    assert rows(tmp_path)[urls[-2]] == b"waiting"


def test_a_full_batch_is_committed_while_the_caller_goes_on(tmp_path: Path) -> None:
    """The put that fills a batch does not wait for its commit (the fetching loop makes it:
    its requests would wait too); the rows are read back all the same, before and after."""
    cache = HttpCache(tmp_path)
    assert cache.available()
    urls = [f"{URL}?{n}" for n in range(WRITE_BATCH)]
    for url in urls[:-1]:
        cache.put(url, url, 200, {}, b"early", durable=False)
    put = threading.Thread(
        target=cache.put, args=(urls[-1], urls[-1], 200, {}, b"full"), kwargs={"durable": False}
    )
    with cache._lock:  # the database is busy: a commit in ``put`` would wait for it here
        put.start()
        put.join(10.0)  # a generous bound, only there to catch a put that waits
        assert not put.is_alive()
        assert rows(tmp_path) == {}  # handed over, not committed yet
        assert cache.stored_among(urls) == set(urls)  # still known meanwhile
    assert cache.get(urls[-1]).body == b"full"  # read back: waits for the commit first
    assert len(rows(tmp_path)) == WRITE_BATCH
    cache.close()


def test_which_urls_are_stored_is_asked_in_a_few_queries(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path)
    stored = [f"{URL}?{n}" for n in range(2 * IN_CHUNK + 7)]
    for url in stored:
        cache.put(url, url, 200, {}, b"x", durable=False)  # committed in batches, or waiting
    asked = [*stored, URL, URL + "?new", 42, *stored[:3]]  # a non-string is never stored
    queries = []
    cache.flush()  # the writer thread's commits are not counted: all are done
    cache._db.set_trace_callback(queries.append)
    assert cache.stored_among(asked) == set(stored)
    assert len(queries) <= 3  # a query per IN_CHUNK URLs
    assert cache.has(stored[-1]) and not cache.has(URL)


def test_a_waiting_bulk_write_never_replaces_a_newer_one(tmp_path: Path) -> None:
    with HttpCache(tmp_path) as cache:
        cache.put(URL, URL, 200, {}, b"bulk", durable=False)
        cache.put(URL, URL, 200, {}, b"durable")  # committed now; the waiting one is older
        assert rows(tmp_path) == {URL: b"durable"}
        cache.put(URL + "?gone", URL, 200, {}, b"bulk", durable=False)
        cache.remove(URL + "?gone")  # a no-store answer: the waiting write goes too
    assert rows(tmp_path) == {URL: b"durable"}


def test_a_time_of_validation_waits_with_the_bulk_writes(tmp_path: Path) -> None:
    now = [1000.0]
    cache = HttpCache(tmp_path, clock=lambda: now[0])
    entry = cache.put(URL, URL, 200, {"Cache-Control": "max-age=60"}, b"body")  # durable
    now[0] = 2000.0
    again = cache.refresh(entry, {"Cache-Control": "max-age=60"})  # a 304 that changes nothing
    assert again.validated_at == 2000.0 and again.stored_at == 1000.0
    assert stored(tmp_path, URL)[2] == 1000.0  # waiting, not committed
    assert cache.get(URL).validated_at == 2000.0  # read back: committed first
    assert stored(tmp_path, URL)[2] == 2000.0
    now[0] = 3000.0
    cache.refresh(cache.get(URL), {"Cache-Control": "max-age=60"})
    cache.close()
    assert stored(tmp_path, URL)[2] == 3000.0


def test_large_bulk_writes_wait_only_up_to_write_bytes(tmp_path: Path) -> None:
    with HttpCache(tmp_path) as cache:
        assert cache.available()
        big = b"x" * (WRITE_BYTES // 2 + 1)
        cache.put(URL, URL, 200, {}, big, durable=False)
        assert rows(tmp_path) == {}
        cache.put(URL + "?2", URL, 200, {}, big, durable=False)
        # memory is not held for bodies: handed over to be committed
        assert wait_for(lambda: set(rows(tmp_path)) == {URL, URL + "?2"}, 10.0)


def _damaged(meta: str, body: bytes) -> list[tuple[str, bytes]]:
    """(meta, body) pairs SQLite reads without complaint but the entry's checks refuse."""
    data = json.loads(meta)
    return [
        (meta, b""),
        (meta, body[:-1]),
        (meta, body + b"extra"),
        (meta, body[:-1] + bytes([body[-1] ^ 1])),
        (meta[:-1], body),
        ("", body),
        ("[1, 2, 3]", body),
        (json.dumps({**data, "url": "https://other.example/"}), body),
        (json.dumps({**data, "headers": ["not", "a", "mapping"]}), body),
        (json.dumps({k: v for k, v in data.items() if k != "sha256"}), body),
    ]


@pytest.mark.parametrize("case", range(10))
def test_a_damaged_entry_is_a_miss_and_is_discarded_with_a_notice(
    tmp_path: Path, case: int, caplog
) -> None:
    with HttpCache(tmp_path) as cache:
        body = b"<rss>" + b"x" * 100 + b"</rss>"
        cache.put(URL, URL, 200, HEADERS, body)
        meta = stored(tmp_path, URL)[0]
        bad_meta, bad_body = _damaged(meta, body)[case]
        set_row(tmp_path, URL, meta=bad_meta, body=bad_body)
        assert cache.get(URL) is None
        assert not cache.has(URL)
    (notice,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    database = tmp_path / DB_NAME
    assert notice.startswith(
        f"carnival: discarded damaged HTTP cache entry for {URL} in {database} ("
    )
    assert notice.endswith("; it will be fetched again")


def test_a_damaged_entry_replaced_meanwhile_is_kept(tmp_path: Path) -> None:
    """Another build may store a good entry between our read and the discard: it stays."""
    with HttpCache(tmp_path) as cache, HttpCache(tmp_path) as other:
        cache.put(URL, URL, 200, {}, b"first")
        set_row(tmp_path, URL, body=b"damaged")
        read = cache._run  # the discard runs right after the read: let the other write first

        def read_then_replaced(sql, params=(), **kw):
            result = read(sql, params, **kw)
            if sql.startswith("SELECT meta, body"):
                other.put(URL, URL, 200, {}, b"good")
            return result

        cache._run = read_then_replaced
        assert cache.get(URL) is None
        cache._run = read
        assert cache.get(URL).body == b"good"


def test_the_old_layout_is_removed_when_the_database_is_made(tmp_path: Path) -> None:
    """A cache folder from before (a file per URL, holds, a killed writer's temporary file)
    is cleared once; anything else in the folder is left alone."""
    key = hashlib.sha256(URL.encode()).hexdigest()
    old = [f"{key}.http", f"{key}.wait", f".{key}.http.abc123.tmp"]
    for name in old:
        (tmp_path / name).write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    with HttpCache(tmp_path) as cache:
        assert cache.get(URL) is None
        cache.put(URL, URL, 200, {}, b"new")
    assert not any((tmp_path / name).exists() for name in old)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with HttpCache(tmp_path) as cache:  # the database exists: nothing more is removed
        (tmp_path / old[0]).write_bytes(b"old")
        assert cache.get(URL).body == b"new"
    assert (tmp_path / old[0]).exists()


def test_a_database_sqlite_cannot_read_is_set_aside(tmp_path: Path, caplog) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with HttpCache(tmp_path) as cache:
        assert cache.get(URL) is None
        assert cache.put(URL, URL, 200, {}, b"x") is not None
        assert cache.get(URL).body == b"x"
    assert (tmp_path / f"{DB_NAME}.damaged").exists()
    (notice,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert notice.startswith(f"carnival: discarded damaged HTTP cache {tmp_path / DB_NAME} (")
    assert notice.endswith("; its feeds are fetched again")


def test_a_file_stored_for_another_url_is_a_miss(tmp_path: Path) -> None:
    with HttpCache(tmp_path) as cache:
        cache.put("https://other.example/", "https://other.example/", 200, {}, b"other")
        cache.put(URL, URL, 200, {}, b"mine")
        other = stored(tmp_path, "https://other.example/")
        set_row(tmp_path, URL, meta=other[0], body=b"other")
        assert cache.get(URL) is None


def test_an_unusable_cache_is_named_once_not_raised(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with HttpCache(blocker) as cache:
        assert cache.put(URL, URL, 200, {}, b"x") is None
        assert cache.get(URL) is None
        assert not cache.has(URL) and cache.held_until(URL) is None
        cache.hold(URL, 1e12)
    (notice,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert notice.startswith(f"carnival: cannot use HTTP cache {blocker / DB_NAME} (")
    assert notice.endswith("; fetching without it")


def test_holds_are_kept_until_they_end(tmp_path: Path) -> None:
    now = [1000.0]
    with HttpCache(tmp_path, clock=lambda: now[0]) as cache:
        assert cache.held_until(URL) is None
        cache.hold(URL, 1060.0)
        assert cache.held_until(URL) == 1060.0
        assert cache.held_until(URL + "?other") is None
    with HttpCache(tmp_path, clock=lambda: now[0]) as cache:  # another run sees it
        assert cache.held_until(URL) == 1060.0
        now[0] = 1060.0
        assert cache.held_until(URL) is None
        now[0] = 1000.0
        assert cache.held_until(URL) is None  # an ended hold is forgotten


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
    assert cache.get(URL).body in bodies


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
