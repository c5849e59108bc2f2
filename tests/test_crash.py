"""Killed at any moment (SIGKILL), a build or a freeze leaves the HTTP cache, the parse cache
and every lock readable, and the next run recovers; a damaged cache entry is discarded with a
notice and fetched again.

Real processes are killed: loops of the real cache and lock writers, each killed while a
temporary file of its is on disk (mid-write), and ``python -m pelican`` and ``invoke
carnival.freeze`` against a slow loopback server, killed once it has answered k requests and
after short random delays (a fixed seed: the same kill points on every run). Every file left
must be absent or whole. Nothing here measures time.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pickle
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from blog_carnival import cache as http_cache
from blog_carnival.cache import HttpCache
from blog_carnival.lock import LOCK_FORMAT, read_lock
from blog_carnival.model import ParsedFeed
from blog_carnival.parsestore import DB_NAME, ParseStore, RecordKey, seal
from cache_rows import rows, set_row
from conftest import ROOT, build_site
from sites_server import SitesServer, local_carnival

SAMPLE = ROOT / "carnival"
TEMP = re.compile(r"^\..+\.tmp$")  # what textutil.write_atomic writes before its rename


def database_files(name: str) -> set[str]:
    """A database and its journals: WAL once it is set up, a rollback journal while it is
    being created (a kill then leaves a hot journal, which SQLite rolls back on next open)."""
    return {name, f"{name}-wal", f"{name}-shm", f"{name}-journal"}


HTTP_DB = http_cache.DB_NAME
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "PYTHONHASHSEED": "0"}


# -- what a killed process may leave, checked ------------------------------------------------


def database_in(folder: Path, name: str) -> bool:
    """Whether ``folder`` holds the database ``name``; nothing but it and its journals may be
    there, and it passes SQLite's own integrity check (after recovering what a killed writer
    left in its journal) with nothing set aside as damaged."""
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        assert path.name in database_files(name), f"unexpected file beside {name}: {path}"
    database = folder / name
    if not database.exists():
        return False
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert not Path(f"{database}.damaged").exists()
    return True


def http_cache_state(folder: Path) -> dict[str, bytes]:
    """Every entry of the HTTP cache, each read back whole the way a fetch reads it (length
    and sha256 checked); the database passes its integrity check; nothing else is there."""
    entries: dict[str, bytes] = {}
    if not database_in(folder, HTTP_DB):
        return entries
    with HttpCache(folder) as cache:
        for url in rows(folder):
            entry = cache.get(url)
            assert entry is not None, f"damaged cache entry: {url}"
            entries[url] = entry.body
    assert not (folder / f"{HTTP_DB}.damaged").exists()
    return entries


def parse_cache_state(folder: Path) -> dict[RecordKey, ParsedFeed]:
    """Every parse-cache record, each read back the way a build reads it. The database must
    pass SQLite's own integrity check (after recovering what a killed writer left in its
    journal) and hold nothing the store would discard; nothing else may be in the folder."""
    entries: dict[RecordKey, ParsedFeed] = {}
    if not database_in(folder, DB_NAME):
        return entries
    with ParseStore(folder) as store:
        for key in store.record_keys():
            entry = store.get(key)
            assert entry is not None, f"damaged parse cache record: {key}"
            entries[key] = entry
    assert not (folder / f"{DB_NAME}.damaged").exists()
    return entries


def lock_state(path: Path) -> list | None:
    """None when there is no lock; else its entries, read as a build reads them."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == LOCK_FORMAT and isinstance(data["entries"], list), path
    entries = read_lock(path)
    assert entries is not None
    return entries


def temp_files(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if TEMP.match(name)} if folder.exists() else set()


def identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_dev)


def kill_while_writing(code: str, target: Path, folder: Path) -> None:
    """Run ``code`` (a loop of atomic writes, ``target`` among them) in a child; once it has
    replaced ``target`` at least once, SIGKILL it as soon as a new temporary file appears in
    ``folder``: the kill lands mid-write, with a whole earlier write on disk."""
    old = identity(target)
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def wait_for(ready: Callable[[], bool]) -> None:
        while child.poll() is None and not ready():
            time.sleep(0.001)  # polling, not timing: each wait ends on what is on disk
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""

    try:
        wait_for(lambda: identity(target) not in (None, old))
        before = temp_files(folder)
        wait_for(lambda: bool(temp_files(folder) - before))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stderr:
            child.stderr.close()


CACHE_WRITER = """
import sys
from blog_carnival.cache import HttpCache

cache = HttpCache(sys.argv[1])
urls = [f"https://blog{i}.example/feed.xml" for i in range(3)]
n = 0
while True:
    for url in urls:
        # large bodies (about 2 MiB) so that a kill often lands inside a write
        body = bytes([65 + n % 26]) * (2 * 1024 * 1024 + n % 7)
        cache.put(url, url, 200, {"etag": f'"{n}"'}, body, durable=n % 2 == 0)
        print(n, flush=True)
        n += 1
"""

LOCK_WRITER = """
import sys
from pathlib import Path
from blog_carnival.lock import write_lock
from blog_carnival.model import RoundupEntry

entries = [
    RoundupEntry(
        url=f"https://blog.example/2026/{i}.html",
        title=f"Post number {i}",
        blog_name="A blog",
        blog_url="https://blog.example/",
        source="feed",
    )
    for i in range(5_005)
]
n = 0
while True:
    write_lock(Path(sys.argv[1]) / "001.lock.json", "crash-carnival", n, entries[: 5_000 + n % 5])
    n += 1
"""


WATCHED = "https://blog0.example/feed.xml"


def kill_writer(code: str, folder: Path, rng: random.Random) -> None:
    """Run ``code`` (a loop of writes, printing a line after each) in a child and SIGKILL it
    after a seeded number of whole writes and a short seeded delay: often mid-write."""
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(rng.randint(1, 6)):  # some writes whole first
            assert writer.stdout.readline(), writer.stderr.read()
        time.sleep(rng.uniform(0, 0.02))  # placing the kill; nothing is measured
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        writer.stderr.close()


def test_an_http_cache_writer_killed_mid_write_leaves_whole_entries(tmp_path: Path) -> None:
    """The cache's writes (durable and not), killed at seeded points while 2 MiB bodies go
    in one after another: every entry left reads back whole, each one write's (not a mix)."""
    folder = tmp_path / "http"
    rng = random.Random(7)
    for _ in range(5):
        kill_writer(CACHE_WRITER, folder, rng)
        entries = http_cache_state(folder)
        assert entries
        for body in entries.values():
            assert len(set(body)) == 1 and 2 * 1024 * 1024 <= len(body) < 2 * 1024 * 1024 + 7
    with HttpCache(folder) as cache:  # and it takes writes again
        assert cache.put(WATCHED, WATCHED, 200, {}, b"<rss/>") is not None
        assert cache.get(WATCHED).body == b"<rss/>"


def test_a_lock_writer_killed_mid_write_leaves_the_old_lock_or_the_new(tmp_path: Path) -> None:
    folder = tmp_path / "carnival"
    lock = folder / "001.lock.json"
    for _ in range(4):
        kill_while_writing(LOCK_WRITER, lock, folder)
        entries = lock_state(lock)
        assert entries is not None and 5_000 <= len(entries) < 5_005
        number = json.loads(lock.read_text(encoding="utf-8"))["number"]
        assert len(entries) == 5_000 + number % 5  # one write's entries, not a mix
    assert temp_files(folder)  # the cut writes, beside the whole lock


# -- whole builds and freezes, killed --------------------------------------------------------


def live_settings(carnival: Path, cache: Path) -> dict[str, str]:
    return {
        "CARNIVAL_PATH": json.dumps(str(carnival)),
        "CARNIVAL_CACHE_PATH": json.dumps(str(cache)),
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
        "CARNIVAL_OFFLINE": "false",
        "CARNIVAL_PER_HOST": "2",
    }


def pelican_command(out: Path, settings: dict[str, str], content_cache: Path) -> list[str]:
    """A development build (Pelican's content cache on) whose caches are all the test's."""
    cmd = [sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", "-o", str(out)]
    cmd += ["--cache-path", str(content_cache)]
    return [*cmd, "-e", *(f"{k}={v}" for k, v in settings.items())]


def freeze_command(conf: Path, edition: str = "networking-carnival/3") -> list[str]:
    return [sys.executable, "-m", "invoke", "carnival.freeze", edition, "--settings", str(conf)]


def freeze_conf(tmp_path: Path, carnival: Path, cache: Path) -> Path:
    conf = tmp_path / "crashconf.py"
    conf.write_text(
        f"from pelicanconf import *\nPATH = {str(ROOT / 'content')!r}\n"
        f"CARNIVAL_PATH = {str(carnival)!r}\nCARNIVAL_CACHE_PATH = {str(cache)!r}\n"
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS = ['127.0.0.1']\nCARNIVAL_PER_HOST = 2\n"
        f"CACHE_PATH = {str(tmp_path / 'content-cache')!r}\n"
    )
    return conf


def run_and_kill(
    cmd: list[str], server: SitesServer, answers: int, delay: float, log: Path
) -> None:
    """Start ``cmd`` in its own process group; once the server has answered ``answers`` more
    requests and ``delay`` seconds more have passed, SIGKILL the whole group."""
    base = server.answered
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "0", "COLUMNS": "400"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server.wait_answered(base + answers, still_waiting=lambda: proc.poll() is None)
        if delay:
            time.sleep(delay)  # placing the kill; nothing is measured
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def kill_points(seed: int, answers: int, count: int) -> list[tuple[int, float]]:
    """(requests answered, then a short delay): early, mid-fetch, and after the last answer."""
    rng = random.Random(seed)
    points = [(k, rng.uniform(0, 0.03)) for k in rng.sample(range(1, answers + 1), count)]
    return [*points, (answers, rng.uniform(0, 0.5)), (answers, rng.uniform(0.5, 1.5))]


def check_caches(cache: Path, content_cache: Path | None = None) -> None:
    http_cache_state(cache / "http")
    parse_cache_state(cache / "parsed")
    if content_cache is not None:
        content_cache_state(content_cache)


def content_cache_state(folder: Path) -> list[str]:
    """Pelican's content cache files, each loaded whole the way Pelican loads it (gzipped
    pickles); no temporary file left beside them. Returns their names."""
    names = []
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        if path.is_dir() or path.parent.name == "templates":  # Jinja's own, written whole
            continue
        assert not TEMP.match(path.name), f"temporary file left: {path}"
        with gzip.open(path, "rb") as f:
            pickle.load(f)  # raises if the file is cut short or mixed
        names.append(path.name)
    return names


def roundup(out: Path, number: int) -> str:
    return (out / "carnival" / "networking-carnival" / str(number) / "index.html").read_text(
        encoding="utf-8"
    )


@pytest.fixture()
def slow_server():
    with SitesServer() as running:
        running.delay = 0.1  # slow enough for kills to land mid-fetch and mid-write
        yield running


@pytest.fixture()
def reference(slow_server: SitesServer, tmp_path: Path) -> tuple[Path, Path]:
    """The carnival pointed at the server, and an uninterrupted build of it to compare with."""
    carnival = local_carnival(slow_server, SAMPLE, tmp_path / "carnival")
    out = tmp_path / "reference"
    proc = build_site(out, extra=live_settings(carnival, tmp_path / "reference-cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return carnival, out


REQUESTS_PER_BUILD = 9  # feeds and pages the sample carnival's unlocked editions fetch
REQUESTS_PER_FREEZE = 8  # those edition 3 needs


@pytest.mark.site
def test_a_build_killed_at_any_moment_leaves_the_caches_whole(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    carnival, ref = reference
    cache, out, log = tmp_path / "cache", tmp_path / "out", tmp_path / "killed.log"
    content_cache = tmp_path / "content-cache"
    settings = live_settings(carnival, cache)
    for i, (answers, delay) in enumerate(kill_points(2027, REQUESTS_PER_BUILD, 6)):
        slow_server.salt = f"round {i}"  # every copy stale: each round writes the cache anew
        command = pelican_command(out, settings, content_cache)
        run_and_kill(command, slow_server, answers, delay, log)
        check_caches(cache, content_cache)
    proc = build_site(out, extra=settings, cache=content_cache)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output and "discarded damaged" not in output
    assert "is damaged" not in output  # content_cache's warning
    check_caches(cache, content_cache)
    assert "ArticlesGenerator-Readers" in content_cache_state(content_cache)
    for number in (1, 3):
        assert roundup(out, number) == roundup(ref, number)


@pytest.mark.site
def test_a_freeze_killed_at_any_moment_leaves_the_lock_and_caches_whole(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    carnival, ref = reference
    cache, log = tmp_path / "cache", tmp_path / "killed.log"
    conf = freeze_conf(tmp_path, carnival, cache)
    lock = carnival / "networking-carnival" / "003.lock.json"
    for i, (answers, delay) in enumerate(kill_points(5, REQUESTS_PER_FREEZE, 4)):
        slow_server.salt = f"round {i}"
        run_and_kill(freeze_command(conf), slow_server, answers, delay, log)
        entries = lock_state(lock)
        assert entries is None or len(entries) == 5
        check_caches(cache)
    freeze = subprocess.run(
        freeze_command(conf), cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert freeze.returncode == 0, freeze.stdout + freeze.stderr
    assert len(lock_state(lock) or []) == 5
    check_caches(cache)
    proc = build_site(tmp_path / "out", extra=live_settings(carnival, cache))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "networking-carnival/3 (lock)" in proc.stdout
    assert roundup(tmp_path / "out", 3) == roundup(ref, 3)


# -- damaged entries ---------------------------------------------------------------------------


def damage_truncate(body: bytes) -> bytes:
    return body[:-40]


def damage_flip(body: bytes) -> bytes:
    data = bytearray(body)
    data[-20] ^= 0x01  # one bit
    return bytes(data)


@pytest.mark.site
def test_a_damaged_http_cache_entry_is_discarded_with_a_notice_and_fetched_again(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    carnival, ref = reference
    cache = tmp_path / "reference-cache"  # the reference build filled it
    stored = rows(cache / "http")
    assert len(stored) == REQUESTS_PER_BUILD
    first, second = sorted(stored)[:2]
    set_row(cache / "http", first, body=damage_truncate(stored[first]))
    set_row(cache / "http", second, body=damage_flip(stored[second]))
    urls = {first, second}
    asked = len(slow_server.validators)

    proc = build_site(tmp_path / "out", extra=live_settings(carnival, cache))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    database = cache / "http" / HTTP_DB
    for url in urls:
        assert f"discarded damaged HTTP cache entry for {url} in {database}" in output
    # a fresh, unconditional GET for each damaged entry; the others revalidated (304)
    sent = {slow_server.url_of(path): etag for path, etag in slow_server.validators[asked:]}
    assert {url for url, etag in sent.items() if etag is None} == urls
    assert all(etag for url, etag in sent.items() if url not in urls)
    assert urls <= set(http_cache_state(cache / "http"))  # stored whole again
    for number in (1, 3):
        assert roundup(tmp_path / "out", number) == roundup(ref, number)


# Damage to one record (what the database holds for it); the last two carry a good sha256,
# so what reads the JSON must refuse them itself.
PARSE_DAMAGE: dict[str, Callable[[str], str]] = {
    "truncated": lambda record: record[:-40],
    "not JSON": lambda record: "\x00garbage",
    "another shape": lambda record: seal("[1, 2, 3]"),
    "another format": lambda record: seal('{"format": 999, "entries": []}'),
}


def damage_records(folder: Path, damage: Callable[[str], str]) -> list[RecordKey]:
    """Apply ``damage`` to every record in the parse cache, as bit rot would (SQLite's pages
    stay valid); the keys of the records damaged."""
    with contextlib.closing(sqlite3.connect(folder / DB_NAME)) as db, db:
        rows = db.execute("SELECT url, tags, digest, record FROM records").fetchall()
        for url, tags, _, record in rows:
            db.execute(
                "UPDATE records SET record = ? WHERE url = ? AND tags = ?",
                (damage(record), url, tags),
            )
    return [RecordKey(url, tags, digest) for url, tags, digest, _ in rows]


def rebuild_with_damaged_parse_cache(
    server: SitesServer, reference: tuple[Path, Path], tmp_path: Path, damage
) -> tuple[subprocess.CompletedProcess, list[RecordKey]]:  # noqa: ANN001
    carnival, _ = reference
    cache = tmp_path / "reference-cache"
    records = damage_records(cache / "parsed", damage)
    assert records
    return build_site(tmp_path / "out", extra=live_settings(carnival, cache)), records


@pytest.mark.site
@pytest.mark.parametrize("damage", PARSE_DAMAGE, ids=list(PARSE_DAMAGE))
def test_a_damaged_parse_cache_record_is_parsed_again(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    proc, records = rebuild_with_damaged_parse_cache(
        slow_server, reference, tmp_path, PARSE_DAMAGE[damage]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entries = parse_cache_state(tmp_path / "reference-cache" / "parsed")
    assert set(records) <= set(entries)  # each written whole again
    for number in (1, 3):
        assert roundup(tmp_path / "out", number) == roundup(reference[1], number)


@pytest.mark.site
def test_a_damaged_parse_cache_record_is_named(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    proc, records = rebuild_with_damaged_parse_cache(
        slow_server, reference, tmp_path, PARSE_DAMAGE["truncated"]
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    database = tmp_path / "reference-cache" / "parsed" / DB_NAME
    for key in records:
        assert f"discarded damaged parse cache record for {key.url} in {database}" in output


def flip_title_case(record: str) -> str:
    """Bit rot that leaves valid JSON: one bit of the first letter of each entry's title."""
    return re.sub(r'("title": ")([A-Za-z])', lambda m: m[1] + chr(ord(m[2]) ^ 0x20), record)


@pytest.mark.site
def test_bit_rot_in_the_parse_cache_does_not_reach_the_page(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    proc, _ = rebuild_with_damaged_parse_cache(slow_server, reference, tmp_path, flip_title_case)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for number in (1, 3):
        assert roundup(tmp_path / "out", number) == roundup(reference[1], number)


DATABASE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "not a database": lambda path: path.write_bytes(b"\x00garbage" * 512),
    "cut short": lambda path: path.write_bytes(path.read_bytes()[:1536]),
}


@pytest.mark.site
@pytest.mark.parametrize("damage", DATABASE_DAMAGE, ids=list(DATABASE_DAMAGE))
def test_a_damaged_parse_cache_database_is_set_aside_and_built_again(
    slow_server: SitesServer, reference: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    carnival, ref = reference
    folder = tmp_path / "reference-cache" / "parsed"
    database = folder / DB_NAME
    with ParseStore(folder) as store:
        before = set(store.record_keys())
    assert before
    for journal in ("-wal", "-shm"):  # what SQLite would still recover from goes too
        Path(f"{database}{journal}").unlink(missing_ok=True)
    DATABASE_DAMAGE[damage](database)

    proc = build_site(tmp_path / "out", extra=live_settings(carnival, tmp_path / "reference-cache"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"discarded damaged parse cache {database}" in output
    assert (folder / f"{DB_NAME}.damaged").exists()  # kept aside for a look
    (folder / f"{DB_NAME}.damaged").unlink()
    assert set(parse_cache_state(folder)) == before  # every feed parsed and stored again
    for number in (1, 3):
        assert roundup(tmp_path / "out", number) == roundup(ref, number)


PARSE_WRITER = """
import sys
from blog_carnival.model import FeedEntry, ParsedFeed
from blog_carnival.parsestore import ParseStore, RecordKey

store = ParseStore(sys.argv[1])
n = 0
while True:
    for feed in range(3):
        # large records (about 400 KB) so that a kill often lands inside a write
        entries = tuple(
            FeedEntry(link=f"https://blog{feed}.example/{i}", id=None, title=f"write {n}",
                      summary="x" * 4000)
            for i in range(100)
        )
        key = RecordKey(f"https://blog{feed}.example/feed.xml", "", f"{n:064x}")
        store.put(key, ParsedFeed(key.url, f"write {n}", None, entries))
        print(n, flush=True)
        n += 1
"""


def test_a_parse_cache_writer_killed_mid_write_leaves_whole_records(tmp_path: Path) -> None:
    """The store's writes, killed at seeded points while records of 400 KB go in one after
    another: every record left reads back whole, each one write's (not a mix)."""
    folder = tmp_path / "parsed"
    rng = random.Random(11)
    for _ in range(5):
        kill_writer(PARSE_WRITER, folder, rng)
        entries = parse_cache_state(folder)
        assert entries
        for key, feed in entries.items():
            assert {e.title for e in feed.entries} == {feed.title}
            assert int(key.digest, 16) == int(feed.title.split()[1])
    with ParseStore(folder) as store:  # and it takes writes again
        key = RecordKey("https://blog0.example/feed.xml", "", "f" * 64)
        store.put(key, ParsedFeed(key.url, "after", None, ()))
        assert store.get(key).title == "after"
