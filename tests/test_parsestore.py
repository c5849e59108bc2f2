"""The parse cache's store: one record per feed and tag set, for one body; damage is logged
and dropped, never raised; a database SQLite cannot read is set aside and started again."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from blog_carnival.model import FeedEntry, FetchResult, ParsedFeed, Want
from blog_carnival.parsepool import BATCH, PROCESSES_FROM, FeedParser
from blog_carnival.parsestore import DB_NAME, ParseStore, RecordKey, seal
from conftest import ROOT

URL = "https://blog.example/feed.xml"


def feed(title: str = "A blog", entries: int = 2) -> ParsedFeed:
    return ParsedFeed(
        URL,
        title,
        "https://blog.example/",
        tuple(
            FeedEntry(link=f"https://blog.example/{i}", id=f"id-{i}", title=f"Post {i}", text="")
            for i in range(entries)
        ),
    )


def key(digest: str = "a" * 64, tags: frozenset[str] | None = None) -> RecordKey:
    return RecordKey.of(URL, tags, b"", digest)


def warnings(caplog) -> list[str]:  # noqa: ANN001
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_record_reads_back_as_it_was_stored(tmp_path: Path) -> None:
    with ParseStore(tmp_path) as store:
        store.put(key(), feed())
        assert store.get(key()) == feed()
    with ParseStore(tmp_path) as again:  # and in the next run
        assert again.get(key()) == feed()


def test_records_stored_together_read_back_each_as_stored(tmp_path: Path) -> None:
    """A parse worker stores its batch in one transaction: every record of it is there,
    and a later record for the same feed and tags still replaces the earlier one."""
    batch = [(key(f"{i:x}" * 64, frozenset({f"t{i}"})), feed(f"blog {i}")) for i in range(5)]
    with ParseStore(tmp_path) as store:
        store.put_many(batch)
        store.put_many([(key("9" * 64, frozenset({"t0"})), feed("newer"))])
    with ParseStore(tmp_path) as again:
        assert again.get(batch[0][0]) is None
        assert again.get(key("9" * 64, frozenset({"t0"}))).title == "newer"
        for k, stored in batch[1:]:
            assert again.get(k) == stored
        assert len(list(again.record_keys())) == 5


def test_a_record_answers_only_for_the_body_it_was_parsed_from(tmp_path: Path) -> None:
    with ParseStore(tmp_path) as store:
        store.put(key("a" * 64), feed("old"))
        assert store.get(key("b" * 64)) is None
        store.put(key("b" * 64), feed("new"))  # the feed's new body replaces the old one
        assert store.get(key("b" * 64)).title == "new"
        assert store.get(key("a" * 64)) is None
        assert list(store.record_keys()) == [key("b" * 64)]


def test_each_tag_set_has_its_own_record(tmp_path: Path) -> None:
    whole, tagged = key(), key(tags=frozenset({"jobs", "networking"}))
    assert tagged.tags == "jobs,networking"
    with ParseStore(tmp_path) as store:
        store.put(whole, feed("whole", 5))
        store.put(tagged, feed("tagged", 1))
        assert store.get(whole).title == "whole"
        assert store.get(tagged).title == "tagged"


def test_the_key_is_the_bodys_sha256_unless_the_fetch_knew_it() -> None:
    assert RecordKey.of(URL, None, b"<rss/>").digest == hashlib.sha256(b"<rss/>").hexdigest()
    assert RecordKey.of(URL, None, b"<rss/>", "f" * 64).digest == "f" * 64


def damage_record(folder: Path, record: str) -> None:
    with contextlib.closing(sqlite3.connect(folder / DB_NAME)) as db, db:
        db.execute("UPDATE records SET record = ?", (record,))


@pytest.mark.parametrize(
    "record",
    ["cut short", seal("[1, 2, 3]"), seal('{"format": 999, "entries": []}'), seal("{")],
    ids=["no sha256", "another shape", "another format", "not JSON"],
)
def test_a_damaged_record_is_named_dropped_and_not_raised(
    tmp_path: Path, caplog, record: str
) -> None:  # noqa: ANN001
    with ParseStore(tmp_path) as store:
        store.put(key(), feed())
    damage_record(tmp_path, record)
    with ParseStore(tmp_path) as store:
        assert store.get(key()) is None
        (notice,) = warnings(caplog)
        assert notice.startswith(
            f"carnival: discarded damaged parse cache record for {URL} in {tmp_path / DB_NAME} ("
        )
        assert list(store.record_keys()) == []  # dropped: parsed and stored again next time
        assert store.get(key()) is None
    assert len(warnings(caplog)) == 1


def test_a_file_that_is_not_a_database_is_set_aside_and_the_cache_starts_again(
    tmp_path: Path, caplog
) -> None:  # noqa: ANN001
    (tmp_path / DB_NAME).write_bytes(b"not a database at all" * 100)
    with ParseStore(tmp_path) as store:
        assert store.get(key()) is None
        store.put(key(), feed())
        assert store.get(key()) == feed()
    (notice,) = warnings(caplog)
    assert notice.startswith(f"carnival: discarded damaged parse cache {tmp_path / DB_NAME} (")
    assert (tmp_path / f"{DB_NAME}.damaged").read_bytes().startswith(b"not a database")


def test_a_parse_cache_that_cannot_be_opened_is_named_once_and_never_fails(
    tmp_path: Path, caplog
) -> None:  # noqa: ANN001
    folder = tmp_path / "parsed"
    folder.write_text("a file where the folder should be")
    with ParseStore(folder) as store:
        assert store.usable  # not tried yet
        for _ in range(3):
            store.put(key(), feed())
            assert store.get(key()) is None
        assert list(store.record_keys()) == []
        assert not store.usable
    (notice,) = warnings(caplog)
    assert notice.startswith(f"carnival: cannot use parse cache {folder / DB_NAME} (")


def test_the_earlier_layouts_records_are_removed_once(tmp_path: Path) -> None:
    old = tmp_path / "ab"
    old.mkdir()
    (old / f"{'ab' * 32}.json").write_text("{}")
    (tmp_path / "notes").mkdir()  # not the old layout's: left alone
    with ParseStore(tmp_path) as store:
        store.put(key(), feed())
    assert not old.exists()
    assert (tmp_path / "notes").is_dir()


WRITER = """
import sys
sys.path[:0] = [{tests!r}, {plugins!r}]
from test_parsestore import feed, key
from blog_carnival.parsestore import ParseStore
with ParseStore(sys.argv[1]) as store:
    store.put(key("c" * 64), feed("from another process"))
"""


def test_records_written_by_another_process_are_read(tmp_path: Path) -> None:
    """The build's parse workers write, the build reads: each with its own connection."""
    with ParseStore(tmp_path) as store:
        store.put(key("a" * 64), feed("here"))  # open while the other process writes
        code = WRITER.format(tests=str(ROOT / "tests"), plugins=str(ROOT / "plugins"))
        subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
        assert store.get(key("c" * 64)).title == "from another process"


def test_threads_share_one_store(tmp_path: Path) -> None:
    """The fetching threads look records up all at once; none of them fails."""
    failures: list[BaseException] = []
    with ParseStore(tmp_path) as store:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    k = RecordKey(f"{URL}?{n}-{i}", "", "d" * 64)
                    store.put(k, feed(f"{n}-{i}"))
                    assert store.get(k).title == f"{n}-{i}"
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert len(list(store.record_keys())) == 160


def test_parse_workers_are_not_handed_a_cache_this_process_could_not_open(
    tmp_path: Path, caplog, capfd
) -> None:  # noqa: ANN001
    """The build names an unusable parse cache once; its parse workers (their stderr is this
    test's) are not sent it, so they do not each say so again."""
    folder = tmp_path / "parsed"
    folder.write_text("a file where the folder should be")
    want = Want(frozenset({"jobs"}))
    results = [
        FetchResult(
            f"https://blog{n}.example/feed.xml",
            None,
            200,
            {"content-type": "application/rss+xml"},
            (
                f'<rss version="2.0"><channel><title>Blog {n}</title><item><title>Post</title>'
                f"<link>https://blog{n}.example/1</link><category>jobs</category></item>"
                "</channel></rss>"
            ).encode(),
        )
        for n in range(PROCESSES_FROM + BATCH)
    ]
    with FeedParser(folder, processes=2) as parser:
        for result in results:
            parser.submit(result, want)
        parser.flush()
        parsed = [parser.take(result.url, want) for result in results]
        assert parser.started  # the workers did the parsing
    assert all(isinstance(p, ParsedFeed) and len(p.entries) == 1 for p in parsed)
    (notice,) = warnings(caplog)
    assert notice.startswith("carnival: cannot use parse cache")
    assert "parse cache" not in capfd.readouterr().err
