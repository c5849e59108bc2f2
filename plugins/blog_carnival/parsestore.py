"""The parse cache: how each feed body read, kept so that a feed answering 304 (or still
fresh) costs no parsing.

One SQLite database in the parse-cache folder (``parsed.sqlite3``) with one row per feed
(its final URL) and tag set: the sha256 of the body it was parsed from, and the record, a
sha256 line and then the JSON of the whole parse (``parse.feed_to_json``). A row answers only
for the body it was parsed from; a feed's new body replaces it, so the cache holds one record
per feed read, not one per version of every feed.

Why one database, and what happens on crashes, damage and several processes at once:
``sqlstore``. Each record keeps its own sha256 (``seal``): bit rot that SQLite cannot see is
caught per record, logged with the feed's URL, and the record dropped (parsed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from .model import ParsedFeed
from .parse import feed_from_json, feed_to_json
from .sqlstore import SqliteStore

logger = logging.getLogger(__name__)

DB_NAME = "parsed.sqlite3"
# The folders of the earlier layout (one JSON file per record under <2 hex digits>/).
OLD_FOLDER = re.compile(r"[0-9a-f]{2}")
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


class ParseStore(SqliteStore):
    """The parse cache in ``folder`` (``sqlstore.SqliteStore``: opened on first use, safe to
    share between threads; close it when done)."""

    NAME = DB_NAME
    SCHEMA = (SCHEMA,)
    WHAT = "parse cache"
    AGAIN = "its feeds are parsed again"
    WITHOUT = "parsing without it"

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
        self.put_many([(key, whole)])

    def put_many(self, records: list[tuple[RecordKey, ParsedFeed]]) -> None:
        """``put`` each of ``records``, in one transaction: a parse worker stores a batch of
        feeds at once (a commit each was a third of a millisecond of a worker's CPU a feed,
        two workers taking turns at the write lock)."""
        rows = [
            (
                key.url,
                key.tags,
                key.digest,
                seal(json.dumps(feed_to_json(whole), ensure_ascii=False)),
            )
            for key, whole in records
        ]
        self._run_many("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", rows)

    def record_keys(self) -> Iterator[RecordKey]:
        """Every stored record's key (a damaged database has none)."""
        rows = self._run("SELECT url, tags, digest FROM records", (), all_rows=True) or []
        for url, tags, digest in rows:
            yield RecordKey(url, tags, digest)

    # -- the database ---------------------------------------------------------------------------
    def _created(self) -> None:
        """The earlier layout's records are never read again: free their space once."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.is_dir(follow_symlinks=False) and OLD_FOLDER.fullmatch(entry.name):
                    shutil.rmtree(entry.path, ignore_errors=True)
