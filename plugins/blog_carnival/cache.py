"""On-disk HTTP cache: the last good body of each URL with the validators to revalidate it.

One SQLite database in the cache folder (``http.sqlite3``, see ``sqlstore`` for crashes,
damage and several processes at once), one row per URL as given::

    responses(url, meta, body, validated)   meta: JSON (final URL, status, header fields,
                                            stored_at, the body's length and sha256)
    holds(url, until)                       a Retry-After still in force

The metadata records the body's length and sha256, so a damaged entry is recognised, logged
(naming the URL and the database), removed and treated as a miss: the next fetch is a fresh
unconditional GET. A durable write is synced before ``put`` returns. A bulk run's writes
(``durable=False``) wait in memory and are committed ``WRITE_BATCH`` at a time (and on
``close``), by a writer thread of the cache's own: a commit per response cost a build of
2,000 feeds about 0.5 s of CPU, most of it threads queueing for the database, and a commit
in the fetching loop's thread held up its requests. An entry lost to a crash or a power cut
before its commit is fetched again. A cache that
cannot be opened is named once and the build fetches without it; it never fails a fetch.
An older cache folder's files (one per URL) are removed when the database is created.

A 304 lays its header fields over the stored ones (RFC 9111 section 3.2), so new validators
and a new freshness lifetime are remembered (``refresh``). A 304 that changes no lasting field
only says when the response was last validated: that time is recorded alone (``validated``,
no rewrite of the body), and freshness counts from it.
``is_fresh`` decides whether a stored response may be used without asking the server at all
(RFC 9111 section 4.2), as a private cache does: ``max-age``, else ``Expires`` minus ``Date``,
against the response's age.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from types import MappingProxyType

from .model import utc_datetime
from .sqlstore import SqliteStore

logger = logging.getLogger(__name__)

DB_NAME = "http.sqlite3"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " url TEXT PRIMARY KEY, meta TEXT NOT NULL, body BLOB NOT NULL, validated REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS holds (url TEXT PRIMARY KEY, until REAL NOT NULL)",
)
PUT = "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)"
VALIDATED = "UPDATE responses SET validated = ? WHERE url = ?"
# A bulk run's writes wait in memory until this many (or this many body bytes) are waiting.
WRITE_BATCH = 32
WRITE_BYTES = 4 * 1024 * 1024
IN_CHUNK = 500  # URLs asked about in one query (SQLite's old limit is 999 parameters)
# The earlier layout: <sha256 of the URL>.http (a response) and .wait (a hold), and the
# dot-named temporary files they were written through.
OLD_FILE = re.compile(r"\.?[0-9a-f]{64}\.(?:http|wait)(?:\..+\.tmp)?")

# Headers that describe the transfer, not the stored (decoded) body.
TRANSFER_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "keep-alive",
        "set-cookie",
        "transfer-encoding",
    }
)


# Header fields a 304 does not replace: they describe the stored body, which a 304 does not
# change (RFC 9111 section 3.2: fields "that the cache's stored response depends upon").
BODY_HEADERS = frozenset({"content-type"}) | TRANSFER_HEADERS
# Fields that change on every answer without saying anything new about the stored body.
PER_ANSWER_HEADERS = frozenset({"date", "age"})


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers without those that describe the transfer rather than the body."""
    return {
        str(k).lower(): str(v) for k, v in headers.items() if str(k).lower() not in TRANSFER_HEADERS
    }


@dataclass(frozen=True)
class CachedResponse:
    """A stored response: the decoded body and what is needed to revalidate it."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    stored_at: float = 0.0  # when the response was received (the clock's epoch seconds)
    known_digest: str | None = field(default=None, compare=False, repr=False)
    # When a 304 last confirmed it, if later than stored_at (the row's ``validated``).
    validated_at: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType(storable_headers(self.headers)))

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    def freshness_basis(self) -> tuple[Mapping[str, str], float]:
        """The header fields and the time received that its age and freshness are judged by.
        After a 304 that changed no lasting field, those of that 304 (RFC 9111 section
        4.3.4): its Date is the time of validation, and it came with no Age."""
        if self.validated_at is None or self.validated_at <= self.stored_at + 1:
            return self.headers, self.stored_at
        fields = {k: v for k, v in self.headers.items() if k != "age"}
        fields["date"] = formatdate(self.validated_at, usegmt=True)
        return fields, self.validated_at

    @property
    def digest(self) -> str:
        """sha256 hex of the body (checked when the entry was read, not computed again)."""
        if self.known_digest is None:
            object.__setattr__(self, "known_digest", hashlib.sha256(self.body).hexdigest())
        return self.known_digest  # type: ignore[return-value]


class HttpCache(SqliteStore):
    """The cache folder's database (``sqlstore.SqliteStore``: opened on first use, safe to
    share between threads; close it when done).

    ``clock`` gives the time in epoch seconds (default ``time.time``): when a response was
    stored, how old it is now, whether a Retry-After still holds. Tests pass a fake one.
    """

    NAME = DB_NAME
    SCHEMA = SCHEMA
    WHAT = "HTTP cache"
    AGAIN = "its feeds are fetched again"
    WITHOUT = "fetching without it"

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path)
        self.clock = clock
        self.portable = clock is time.time  # another process opening ``path`` sees the same
        # Whether any hold may be stored: looked up once, then kept up to date by ``hold``.
        # Holds are rare, and each fetch asks about one: a build with none asks no more.
        # (Another process's new hold is for URLs it fetches itself: each URL of a run is
        # fetched by one process.)
        self._any_holds: bool | None = None
        # Bulk writes not committed yet, by URL (see ``put``): rows, and times of validation.
        # The lock is held while they are added, looked up and committed: what is known of
        # a URL is always in one place or the other.
        self._later: dict[str, tuple] = {}
        self._later_bytes = 0
        self._later_validated: dict[str, float] = {}
        self._later_lock = threading.Lock()
        # Batches handed to the writer thread and not committed yet (``_hand_over``), and
        # the last batch handed over (the writer takes them in turn).
        self._writing: dict[str, tuple] = {}
        self._writing_validated: dict[str, float] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._written: Future | None = None

    def close(self) -> None:
        self.flush()
        with self._later_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
        super().close()

    def flush(self) -> None:
        """Commit the bulk writes still waiting, and wait until they are (``close`` does it)."""
        with self._later_lock:
            self._hand_over()
            last = self._written
        _wait(last)

    def _hand_over(self) -> Future | None:
        """With ``_later_lock`` held: give the waiting writes to the writer thread, which
        commits them while the caller goes on. A commit of a batch of 32 feeds took 3 ms
        of the fetching loop's thread (a first build of 2,000 feeds: 0.2 s, in which no
        request went out and no answer was read); SQLite lets go of the interpreter lock
        while it writes. Until committed, they are still found here (``_writing``).

        Returns the batch handed over before this one: the caller waits for it once the
        lock is let go, so at most two batches are in memory beside the one gathering (a
        writer slower than the fetching holds the fetching back, not the bodies)."""
        rows, self._later, self._later_bytes = self._later, {}, 0
        seen, self._later_validated = self._later_validated, {}
        previous = self._written
        if not rows and not seen:
            return previous
        self._writing.update(rows)
        self._writing_validated.update(seen)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="carnival-cache-writer")
        self._written = self._writer.submit(self._commit, rows, seen)
        return previous

    def _commit(self, rows: dict[str, tuple], seen: dict[str, float]) -> None:
        """In the writer thread: commit one batch, rows first (a time of validation is of
        the row as it then is); a failure is logged (``_run_many``), the entries are then
        fetched again next time."""
        try:
            self._run_many(PUT, list(rows.values()))
            self._run_many(VALIDATED, [(when, url) for url, when in seen.items()])
        except Exception:  # a bug: nothing waits for this thread to say so
            logger.exception("carnival: could not write %s responses to %s", len(rows), self.path)
        finally:
            with self._later_lock:
                for url, row in rows.items():
                    if self._writing.get(url) is row:
                        del self._writing[url]
                for url, when in seen.items():
                    if self._writing_validated.get(url) is when:
                        del self._writing_validated[url]

    def _in_flight(self, url: str) -> Future | None:
        """With ``_later_lock`` held: what to wait for before ``url``'s row is as written."""
        if url in self._writing or url in self._writing_validated:
            return self._written  # batches are committed in turn: the last is after this one
        return None

    def _forget_later(self, url: str) -> Future | None:
        """With ``_later_lock`` held: drop what waits for ``url`` (a newer write replaces
        it); what to wait for first, so that no older write lands after the newer one."""
        row = self._later.pop(url, None)
        if row is not None:
            self._later_bytes -= len(row[2])
        self._later_validated.pop(url, None)
        return self._in_flight(url)

    def _settle(self, url: str) -> None:
        """Before ``url``'s row is read or changed: what waits for it is committed first."""
        with self._later_lock:
            if url in self._later or url in self._later_validated:
                self._hand_over()
            last = self._in_flight(url)
        _wait(last)

    def has(self, url: str) -> bool:
        """Whether something is stored for ``url`` (not checked: ``get`` does that)."""
        return url in self.stored_among((url,))

    def stored_among(self, urls: Iterable[str]) -> set[str]:
        """Which of ``urls`` have something stored: a query per ``IN_CHUNK`` URLs, not one
        a URL (a first build of 2,000 feeds asked 2,000 times, before its first request)."""
        wanted = [u for u in dict.fromkeys(urls) if isinstance(u, str)]
        with self._later_lock:
            found = {u for u in wanted if u in self._later or u in self._writing}
        wanted = [u for u in wanted if u not in found]
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT url FROM responses WHERE url IN ({marks})"
            found.update(url for (url,) in self._run(sql, tuple(chunk), all_rows=True) or ())
        return found

    def get(self, url: str) -> CachedResponse | None:
        """The stored response for ``url``, or None when there is none or it is damaged
        (a damaged entry is removed, with a warning naming it)."""
        self._settle(url)
        row = self._run("SELECT meta, body, validated FROM responses WHERE url = ?", (url,))
        if row is None:
            return None
        meta, body, validated = row
        try:
            return replace(_decode(url, meta, body), validated_at=float(validated))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "carnival: discarded damaged HTTP cache entry for %s in %s (%s); "
                "it will be fetched again",
                url,
                self.path,
                exc,
            )
            # only the entry that was read: another process may have stored a good one since
            self._run("DELETE FROM responses WHERE url = ? AND meta = ?", (url, meta))
            return None

    def stored_fresh(self, url: str, cap: float, now: float | None = None) -> bool:
        """Whether ``url``'s stored response is fresh (``is_fresh``), judged from its metadata
        alone: the body is neither read nor checked. A scheduling hint (answer it here, no
        thread or request needed); ``get`` still checks the entry before it is used."""
        if cap <= 0:
            return False
        self._settle(url)
        row = self._run("SELECT meta, validated FROM responses WHERE url = ?", (url,))
        if row is None:
            return False
        try:
            entry = replace(_decode_meta(url, row[0])[0], validated_at=float(row[1]))
        except (ValueError, KeyError, TypeError):
            return False
        return self.is_fresh(entry, cap, now)

    def hold(self, url: str, until: float) -> None:
        """Remember that the server asked us not to come back before ``until`` (epoch seconds)."""
        self._any_holds = True
        self._run("INSERT OR REPLACE INTO holds VALUES (?, ?)", (url, float(until)))

    def held_until(self, url: str, now: float | None = None) -> float | None:
        """When a Retry-After for ``url`` still holds, the time it ends; else None."""
        if self._any_holds is None:
            self._any_holds = self._run("SELECT 1 FROM holds LIMIT 1") is not None
        if not self._any_holds:
            return None
        row = self._run("SELECT until FROM holds WHERE url = ?", (url,))
        if row is None:
            return None
        until = float(row[0])
        if until <= (self.clock() if now is None else now):
            self._run("DELETE FROM holds WHERE url = ? AND until = ?", (url, until))
            return None
        return until

    def put(
        self,
        url: str,
        final_url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        durable: bool = True,
        digest: str | None = None,
    ) -> CachedResponse | None:
        """Store a response, replacing the URL's older one; return it, or None if it could
        not be written. ``digest``: the body's sha256 hex, when the caller has it already.
        Not yet validated since it was stored: ``validated`` is ``stored_at``.

        ``durable``: committed and synced before this returns. Otherwise the write waits with
        others, committed with them (see the module's docstring), and the entry is returned
        as it will be stored: a failure to commit is only logged."""
        entry = CachedResponse(
            url, final_url, status, headers, bytes(body), self.clock(), known_digest=digest
        )
        if not durable:
            return self._put_later(entry)
        with self._later_lock:
            last = self._forget_later(url)  # this write is the newer
        _wait(last)
        row = (url, _encode_meta(entry), entry.body, entry.stored_at)
        if not self._run(f"{PUT} RETURNING url", row, all_rows=True, durable=True):
            return None
        return replace(entry, validated_at=entry.stored_at)

    def _put_later(self, entry: CachedResponse) -> CachedResponse:
        """A bulk write of ``entry``: it waits with the others (``put``); returned as stored."""
        with self._later_lock:
            self._forget_later(entry.url)  # this write is the newer
            self._later[entry.url] = (entry.url, _encode_meta(entry), entry.body, entry.stored_at)
            self._later_bytes += len(entry.body)
            previous = self._commit_when_full()
        _wait(previous)
        return replace(entry, validated_at=entry.stored_at)

    def _commit_when_full(self) -> Future | None:
        """With ``_later_lock`` held: hand over once enough is waiting (``_hand_over``)."""
        waiting = len(self._later) + len(self._later_validated)
        if waiting >= WRITE_BATCH or self._later_bytes >= WRITE_BYTES:
            return self._hand_over()
        return None

    def _validated(self, url: str, when: float) -> None:
        """Record when ``url``'s stored entry (just read by this process) was last validated:
        a bulk write, committed with the others. (Should the row be gone by then, removed
        by another process, there is nothing to record: its next fetch is unconditional.)"""
        with self._later_lock:
            self._later_validated[url] = when
            previous = self._commit_when_full()
        _wait(previous)

    def remove(self, url: str) -> None:
        """Forget ``url``'s stored response (a server said ``no-store``)."""
        with self._later_lock:
            last = self._forget_later(url)
        _wait(last)
        self._run("DELETE FROM responses WHERE url = ?", (url,))

    def _created(self) -> None:
        """The earlier layout's files are never read again: free their space once."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if OLD_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def is_fresh(self, entry: CachedResponse, cap: float, now: float | None = None) -> bool:
        """Whether ``entry`` may be used without asking the server (RFC 9111 section 4.2: its
        freshness lifetime exceeds its current age), the lifetime capped at ``cap`` seconds
        (0: nothing is ever fresh, everything is revalidated)."""
        if cap <= 0:
            return False
        now = self.clock() if now is None else now
        headers, received_at = entry.freshness_basis()
        lifetime = min(freshness_lifetime(headers, received_at), cap)
        return lifetime > current_age(headers, received_at, now)

    def refresh(self, entry: CachedResponse, headers: Mapping[str, str]) -> CachedResponse:
        """The stored ``entry`` updated by a 304's ``headers`` (RFC 9111 sections 3.2 and
        4.3.4): each field the 304 sends replaces the stored one, except those describing the
        body. Stored again, with a new ``stored_at``, when a lasting field changed or the 304
        states an Age; otherwise only the time of validation is recorded (``validated_at``,
        the row's ``validated``) when the response has a freshness lifetime to restart,
        and nothing at all when it has none.
        """
        update = {k: v for k, v in storable_headers(headers).items() if k not in BODY_HEADERS}
        merged = {**entry.headers, **update}
        if "age" not in update:
            # The origin has just validated the response: its age starts again from the 304
            # (RFC 9111 section 5.1), not from the Age the stored response came with.
            merged.pop("age", None)
        renewed = CachedResponse(
            entry.url,
            entry.final_url,
            entry.status,
            merged,
            entry.body,
            self.clock(),
            known_digest=entry.known_digest,
        )
        if not stores(merged):  # the response now says no-store (RFC 9111 section 5.2.2.5)
            self.remove(entry.url)
            return renewed

        def lasting(fields: Mapping[str, str]) -> dict[str, str]:
            return {k: v for k, v in fields.items() if k not in PER_ANSWER_HEADERS}

        if lasting(merged) == lasting(entry.headers) and "age" not in update:
            if not _has_lifetime(merged):
                return entry
            now = self.clock()
            self._validated(entry.url, now)
            return replace(entry, validated_at=now)
        # A bulk write: a refresh lost to a crash or a power cut leaves the older entry, which
        # is revalidated again; no feed is lost.
        return self._put_later(renewed)


def _wait(written: Future | None) -> None:
    """Wait for a batch handed to the writer (``HttpCache._hand_over``) to be committed."""
    if written is not None:
        written.result()


def _has_lifetime(headers: Mapping[str, str]) -> bool:
    """Whether the response states how long it stays fresh (RFC 9111 section 4.2.1)."""
    return "max-age" in cache_directives(headers) or "expires" in headers


# -- freshness (RFC 9111 section 4.2) ------------------------------------------------------------

# One directive of a Cache-Control list: a token, optionally "=" and a token or quoted string.
_DIRECTIVE = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*(?:,|$)"""
)
DELTA_MAX = 2**31  # RFC 9111 section 1.2.2: a larger delta-seconds counts as this


def cache_directives(headers: Mapping[str, str]) -> dict[str, str | None]:
    """The Cache-Control directives of a response (RFC 9111 section 5.2): names lower-cased,
    arguments unquoted (both the token and the quoted-string form are accepted, section 5.2),
    the first occurrence of a directive kept (section 4.2.1)."""
    found: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(headers.get("cache-control", "")):
        name, value = match.group(1).lower(), match.group(2)
        if value is not None and value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.setdefault(name, value)
    return found


def _delta_seconds(value: str | None) -> int | None:
    """delta-seconds (RFC 9111 section 1.2.2): a non-negative integer, else None."""
    value = (value or "").strip()
    return min(int(value), DELTA_MAX) if value.isascii() and value.isdigit() else None


def _http_date(value: str | None) -> float | None:
    return _timestamp(value) if value else None


@functools.lru_cache(maxsize=4096)
def _timestamp(value: str) -> float | None:
    """An HTTP date as epoch seconds (remembered: a rebuild judges each stored response's
    freshness twice, from its metadata and again from the entry it reads)."""
    when = utc_datetime(value)
    return when.timestamp() if when is not None else None


def freshness_lifetime(headers: Mapping[str, str], received_at: float) -> float:
    """How long a stored response stays fresh, in seconds (RFC 9111 section 4.2.1), for a
    private cache: 0 when it must be validated before every use.

    - ``no-store`` and ``no-cache`` (sections 5.2.2.5 and 5.2.2.4; the field-qualified form
      of no-cache is taken as the plain one, the stricter reading): 0.
    - ``max-age`` (section 5.2.2.1); one that is not a non-negative integer makes the
      response stale (section 4.2.1 encourages it). ``s-maxage`` is for shared caches
      (section 5.2.2.10): ignored.
    - Else ``Expires`` minus ``Date`` (or minus the time it was received, without a Date);
      an Expires that is not a valid date, such as "0", is in the past (section 5.3).
    - Nothing else makes a response fresh: no heuristic freshness (section 4.2.2 allows it,
      we revalidate instead, which costs one conditional request).
    """
    directives = cache_directives(headers)
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    if "max-age" in directives:
        return float(_delta_seconds(directives["max-age"]) or 0)
    if "expires" in headers:
        expires = _http_date(headers["expires"])
        if expires is None:
            return 0.0
        date = _http_date(headers.get("date"))
        return max(0.0, expires - (received_at if date is None else date))
    return 0.0


def current_age(headers: Mapping[str, str], received_at: float, now: float) -> float:
    """How old a stored response is, in seconds (RFC 9111 section 4.2.3).

    apparent_age = max(0, response_time - date_value); corrected_initial_age = max(
    apparent_age, age_value + response_delay); current_age = corrected_initial_age +
    resident_time. The request time is not stored, so response_delay counts as 0 (a
    request takes at most the fetch deadline). An Age that is not a non-negative integer
    is ignored (section 5.1; of a list, the first member counts). A clock that reads
    earlier than the time the response was received makes the age unknown: infinite, so
    the response is stale.
    """
    resident_time = now - received_at
    if resident_time < 0:
        return math.inf
    date = _http_date(headers.get("date"))
    apparent_age = max(0.0, received_at - date) if date is not None else 0.0
    age_value = _delta_seconds(headers.get("age", "").split(",")[0]) or 0
    return max(apparent_age, float(age_value)) + resident_time


def stores(headers: Mapping[str, str]) -> bool:
    """Whether a response may be stored at all: not when it says ``no-store`` (RFC 9111
    section 5.2.2.5)."""
    return "no-store" not in cache_directives(headers)


def _encode_meta(entry: CachedResponse) -> str:
    meta = {
        "url": entry.url,
        "final_url": entry.final_url,
        "status": entry.status,
        "headers": dict(entry.headers),
        "stored_at": entry.stored_at,
        "length": len(entry.body),
        "sha256": entry.digest,
    }
    return json.dumps(meta, ensure_ascii=True, separators=(",", ":"))


def _decode(url: str, meta_text: str, body: bytes) -> CachedResponse:
    entry, meta = _decode_meta(url, meta_text)
    body = bytes(body)
    if len(body) != meta["length"] or hashlib.sha256(body).hexdigest() != meta["sha256"]:
        raise ValueError("body does not match its length and digest")
    return replace(entry, body=body)


def _decode_meta(url: str, meta_text: str) -> tuple[CachedResponse, dict]:
    """The entry its metadata describes (body empty), and the metadata itself."""
    meta = json.loads(meta_text)
    if not isinstance(meta, dict):
        raise TypeError("metadata is not a mapping")
    if meta["url"] != url:
        raise ValueError("stored for another URL")
    headers = meta["headers"]
    if not isinstance(headers, dict):
        raise TypeError("headers are not a mapping")
    entry = CachedResponse(
        url=url,
        final_url=str(meta["final_url"]),
        status=int(meta["status"]),
        headers={str(k): str(v) for k, v in headers.items()},
        stored_at=float(meta.get("stored_at", 0.0)),
        known_digest=str(meta["sha256"]),
    )
    return entry, meta
