"""The parse cache: how each feed body read, kept so that a feed answering 304 (or still
fresh) costs no parsing.

One SQLite database in the parse-cache folder (``parsed.sqlite3``) with one row per feed
(its final URL) and tag set: the sha256 of the body it was parsed from, and the record, a
sha256 line and then the JSON of the whole parse (``parse.feed_to_json``). A row answers only
for the body it was parsed from; a feed's new body replaces it, so the cache holds one record
per feed read, not one per version of every feed.

Why one database, not a file per record: a new file costs an inode, and on this project's
machine (ext4, soon after files were deleted) that was 1 to 1.5 ms of CPU a record, a third
of what parsing a trimmed feed costs, paid by every feed of a first build. A row costs tens
of microseconds.

Crashes and damage:

- WAL journal, ``synchronous=NORMAL``: a process killed at any moment leaves the database
  whole (SQLite recovers it on the next open); a power cut may lose the last records, which
  are then parsed again.
- Each record keeps its own sha256: bit rot that SQLite cannot see (valid pages, wrong
  letters) is caught per record, logged with the feed's URL, and the record dropped.
- A database SQLite cannot read at all (not a database, a malformed image) is logged, moved
  aside and started again empty.
- Several processes use it at once (the build, its parse and fetch workers): WAL lets
  readers go on while one writes, and a writer waits up to ``BUSY_SECONDS`` for another. A
  record that still cannot be written is skipped (it is parsed again next time): the parse
  cache never fails a build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .model import ParsedFeed
from .parse import feed_from_json, feed_to_json
from .textutil import Closing

logger = logging.getLogger(__name__)

DB_NAME = "parsed.sqlite3"
BUSY_SECONDS = 10.0  # how long a write waits for another process's
# The folders of the earlier layout (one JSON file per record under <2 hex digits>/).
OLD_FOLDER = re.compile(r"[0-9a-f]{2}")
# SQLite's primary result codes for a file that is not a database or is damaged.
DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    " url TEXT NOT NULL, tags TEXT NOT NULL, digest TEXT NOT NULL, record TEXT NOT NULL,"
    " PRIMARY KEY (url, tags)) WITHOUT ROWID"
)


@dataclass(frozen=True)
class RecordKey:
    """Which record a body's parse is: the URL it came from, the tags it was trimmed for
    (sorted, comma-joined; "" for the whole feed) and the sha256 of the body."""

    url: str
    tags: str
    digest: str

    @classmethod
    def of(cls, url: str, tags: frozenset[str] | None, body: bytes, digest: str | None = None):
        return cls(url, ",".join(sorted(tags or ())), digest or hashlib.sha256(body).hexdigest())


def seal(text: str) -> str:
    """A record is its sha256 on the first line, then the JSON: bit rot that still leaves
    valid JSON is caught too."""
    return f"{hashlib.sha256(text.encode()).hexdigest()}\n{text}"


def unseal(sealed: str) -> str:
    digest, _, text = sealed.partition("\n")
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise ValueError("record does not match its sha256")
    return text


def read_record(sealed: str) -> ParsedFeed:
    """A record as the build reads it; ValueError (or KeyError, TypeError) when damaged."""
    return feed_from_json(json.loads(unseal(sealed)))


class ParseStore(Closing):
    """The parse cache in ``folder``, opened on first use; safe to share between threads.
    Close it when done (a process that exits without closing loses nothing)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self._db: sqlite3.Connection | None = None
        self._unusable = False  # could not be opened: parse without it for this run
        self._lock = threading.Lock()

    @property
    def usable(self) -> bool:
        """False once the database could not be opened (it is not tried again this run)."""
        return not self._unusable

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    # -- reading and writing --------------------------------------------------------------------
    def get(self, key: RecordKey) -> ParsedFeed | None:
        """The parse stored for exactly this body, or None (none stored, another body's, or
        damaged: then it is logged and dropped)."""
        where = (key.url, key.tags)
        row = self._run("SELECT digest, record FROM records WHERE url = ? AND tags = ?", where)
        if row is None or row[0] != key.digest:
            return None
        try:
            return read_record(row[1])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "carnival: discarded damaged parse cache record for %s in %s (%s)",
                key.url,
                self.path,
                exc,
            )
            self._run("DELETE FROM records WHERE url = ? AND tags = ?", where)
            return None

    def put(self, key: RecordKey, whole: ParsedFeed) -> None:
        """Store the whole parse of the body ``key`` names, replacing the feed's older one."""
        record = seal(json.dumps(feed_to_json(whole), ensure_ascii=False))
        row = (key.url, key.tags, key.digest, record)
        self._run("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", row)

    def record_keys(self) -> Iterator[RecordKey]:
        """Every stored record's key (a damaged database has none)."""
        rows = self._run("SELECT url, tags, digest FROM records", (), all_rows=True) or []
        for url, tags, digest in rows:
            yield RecordKey(url, tags, digest)

    # -- the database ---------------------------------------------------------------------------
    def _run(self, sql: str, params: tuple, *, all_rows: bool = False):
        """Run one statement (its own transaction), opening the database first if need be;
        its first row, or all with ``all_rows``; None when the cache cannot answer (logged).
        A database SQLite finds damaged, on opening or on reading, is set aside and the
        statement run once more on a new one."""
        with self._lock:
            for attempt in (1, 2):
                if self._unusable:
                    return None
                try:
                    if self._db is None:
                        self._db = self._open()
                    cursor = self._db.execute(sql, params)
                    return cursor.fetchall() if all_rows else cursor.fetchone()
                except sqlite3.Error as exc:
                    if attempt == 1 and _damaged(exc):
                        self._discard(exc)
                        continue
                    if self._db is None:  # it could not be opened
                        return self._give_up(exc)
                    logger.debug("carnival: parse cache %s: %s", self.path, exc)
                    return None
                except OSError as exc:  # its folder cannot be made
                    return self._give_up(exc)
        return None

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")  # where WAL is impossible, SQLite keeps its own
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
        except BaseException:
            db.close()
            raise
        if fresh:
            self._remove_old_layout()
        return db

    def _remove_old_layout(self) -> None:
        """The earlier layout's records are never read again: free their space once."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.is_dir(follow_symlinks=False) and OLD_FOLDER.fullmatch(entry.name):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def _discard(self, exc: sqlite3.Error) -> None:
        """Move a database SQLite cannot read aside (``.damaged``, kept for a look, replacing
        the last one) and start again empty."""
        logger.warning(
            "carnival: discarded damaged parse cache %s (%s); its feeds are parsed again",
            self.path,
            exc,
        )
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")
        with contextlib.suppress(OSError):
            os.replace(self.path, f"{self.path}.damaged")

    def _give_up(self, exc: BaseException) -> None:
        logger.warning(
            "carnival: cannot use parse cache %s (%s); parsing without it", self.path, exc
        )
        self._unusable = True
        return None


def _damaged(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in DAMAGED
