"""One SQLite database file in a cache folder: what the HTTP cache and the parse cache share.

Why a database and not a file per entry: a new file costs an inode, and on this project's
machine (ext4, soon after files were deleted) that was 0.4 to 1.5 ms of CPU a file, paid by
every feed of a first build, twice (its response and its parse). A row costs tens of
microseconds.

Crashes and damage, the same for every store:

- WAL journal, ``synchronous=NORMAL``: a process killed at any moment leaves the database
  whole (SQLite recovers it on the next open); a power cut may lose the last writes. A
  ``durable`` write is synced (``synchronous=FULL`` for that statement).
- Each store keeps a digest with every entry, so bit rot that SQLite cannot see (valid
  pages, wrong letters) is caught per entry by the store, logged and the entry dropped.
- A database SQLite cannot read at all (not a database, a malformed image) is logged, moved
  aside (``<name>.damaged``) and started again empty.
- Several processes use one at once (the build, its parse and fetch workers): WAL lets
  readers go on while one writes, and a writer waits up to ``BUSY_SECONDS`` for another.
  A statement that still fails is logged at debug level and answers None: a cache never
  fails a build.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .textutil import Closing

logger = logging.getLogger(__name__)

BUSY_SECONDS = 10.0  # how long a write waits for another process's
# SQLite's primary result codes for a file that is not a database or is damaged.
DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class SqliteStore(Closing):
    """The database ``NAME`` in ``folder``, opened on first use (and again after ``close``);
    safe to share between threads (one connection behind a lock). Subclasses name it and
    give its schema and how a user is told about it."""

    NAME = "store.sqlite3"
    SCHEMA: tuple[str, ...] = ()
    WHAT = "cache"  # in messages: "discarded damaged <WHAT> ..."
    AGAIN = "its entries are made again"  # what follows when it is set aside
    WITHOUT = "going on without it"  # what follows when it cannot be used

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self._db: sqlite3.Connection | None = None
        self._unusable = False  # could not be opened: go on without it for this run
        self._lock = threading.Lock()

    @property
    def usable(self) -> bool:
        """False once the database could not be opened (it is not tried again this run)."""
        return not self._unusable

    def available(self) -> bool:
        """Open the database now if need be (a failure is named, once); whether it can be used."""
        self._run("SELECT 1")
        return self.usable

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _run(self, sql: str, params: tuple = (), *, all_rows: bool = False, durable: bool = False):
        """Run one statement (its own transaction), opening the database first if need be;
        its first row, or all with ``all_rows``; None when the store cannot answer (logged).
        A database SQLite finds damaged, on opening or on reading, is set aside and the
        statement run once more on a new one. ``durable``: synced before it returns."""
        return self._attempt(lambda db: self._execute(db, sql, params, all_rows, durable))

    def _run_many(self, sql: str, rows: list[tuple]) -> bool:
        """Run one statement for each of ``rows``, all in one transaction (each row's own
        commit is most of what writing a small row costs); whether they were written (the
        failure is handled as ``_run``'s)."""
        return bool(rows) and self._attempt(lambda db: self._execute_many(db, sql, rows)) is True

    def _attempt(self, execute: Callable[[sqlite3.Connection], Any]) -> Any:
        """``execute`` on the open database, as ``_run`` describes."""
        with self._lock:
            for attempt in (1, 2):
                if self._unusable:
                    return None
                try:
                    if self._db is None:
                        self._db = self._open()
                    return execute(self._db)
                except sqlite3.Error as exc:
                    if attempt == 1 and _damaged(exc):
                        self._discard(exc)
                        continue
                    if self._db is None:  # it could not be opened
                        return self._give_up(exc)
                    logger.debug("carnival: %s %s: %s", self.WHAT, self.path, exc)
                    return None
                except OSError as exc:  # its folder cannot be made
                    return self._give_up(exc)
        return None

    @staticmethod
    def _execute(
        db: sqlite3.Connection, sql: str, params: tuple, all_rows: bool, durable: bool
    ) -> Any:
        """Every row is read before returning: a statement left unfinished would keep its
        transaction (and, for ``RETURNING``, its write lock) open."""
        if durable:
            db.execute("PRAGMA synchronous=FULL")  # WAL: the commit syncs the log
        try:
            rows = db.execute(sql, params).fetchall()
        finally:
            if durable:
                db.execute("PRAGMA synchronous=NORMAL")
        return rows if all_rows else (rows[0] if rows else None)

    @staticmethod
    def _execute_many(db: sqlite3.Connection, sql: str, rows: list[tuple]) -> bool:
        db.execute("BEGIN IMMEDIATE")  # the write lock now: no upgrade from a read to fail
        try:
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        return True

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")  # where WAL is impossible, SQLite keeps its own
            db.execute("PRAGMA synchronous=NORMAL")
            for statement in self.SCHEMA:
                db.execute(statement)
        except BaseException:
            db.close()
            raise
        if fresh:
            self._created()
        return db

    def _created(self) -> None:
        """Called once when the database file was first made (to clear an older layout)."""

    def _discard(self, exc: sqlite3.Error) -> None:
        """Move a database SQLite cannot read aside (``.damaged``, kept for a look, replacing
        the last one) and start again empty."""
        logger.warning(
            "carnival: discarded damaged %s %s (%s); %s", self.WHAT, self.path, exc, self.AGAIN
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
            "carnival: cannot use %s %s (%s); %s", self.WHAT, self.path, exc, self.WITHOUT
        )
        self._unusable = True
        return None


def _damaged(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in DAMAGED
