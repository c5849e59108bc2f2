"""On-disk HTTP cache: the last good body of each URL with the validators to revalidate it.

One file per URL, named by the sha256 of the URL, under the cache folder::

    <cache>/<sha256(url)>.http  =  b"carnival-http-cache 1\\n" + JSON metadata + b"\\n" + body

The metadata records the body's length and sha256, so a truncated or otherwise damaged file is
recognised, logged (naming the file), removed and treated as a miss: the next fetch is a fresh
unconditional GET. Files are written atomically: a temporary file in the same folder (a dot
name ending ``.tmp``, never read as an entry), flushed and fsynced, then ``os.replace``d over
the old one, so a process killed at any moment leaves the old entry or the new one. A cache
that cannot be read or written is logged and ignored; it never fails a fetch.

A 304 lays its header fields over the stored ones (RFC 9111 section 3.2), so new validators
and a new freshness lifetime are remembered (``refresh``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .textutil import write_atomic

logger = logging.getLogger(__name__)

MAGIC = b"carnival-http-cache 1\n"
SUFFIX = ".http"

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


def cache_key(url: str) -> str:
    """The file name stem for ``url``: sha256 hex of the URL as given."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


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
    stored_at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType(storable_headers(self.headers)))

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class HttpCache:
    """The cache folder; ``get`` and ``put`` are safe to call from several threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def file_for(self, url: str) -> Path:
        return self.path / f"{cache_key(url)}{SUFFIX}"

    def get(self, url: str) -> CachedResponse | None:
        """The stored response for ``url``, or None when there is none or it is damaged
        (a damaged file is removed, with a warning naming it)."""
        file = self.file_for(url)
        try:
            with file.open("rb") as handle:
                data = handle.read()
                identity = os.fstat(handle.fileno())
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("carnival: cannot read cache file %s: %s", file, exc)
            return None
        try:
            return _decode(url, data)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "carnival: discarded damaged cache file %s (%s); %s will be fetched again",
                file,
                exc,
                url,
            )
            _discard(file, identity)
            return None

    def hold(self, url: str, until: float) -> None:
        """Remember that the server asked us not to come back before ``until`` (epoch seconds)."""
        file = self.path / f"{cache_key(url)}.wait"
        try:
            write_atomic(file, f"{until:.0f}\n", durable=False)
        except OSError as exc:
            logger.warning("carnival: cannot write cache file %s: %s", file, exc)

    def held_until(self, url: str, now: float | None = None) -> float | None:
        """When a Retry-After for ``url`` still holds, the time it ends; else None."""
        file = self.path / f"{cache_key(url)}.wait"
        try:
            until = float(file.read_text().strip())
        except (OSError, ValueError):
            return None
        if until <= (time.time() if now is None else now):
            with contextlib.suppress(OSError):
                file.unlink()
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
    ) -> CachedResponse | None:
        """Store a response atomically; return it, or None if it could not be written."""
        entry = CachedResponse(url, final_url, status, headers, bytes(body), time.time())
        file = self.file_for(url)
        try:
            write_atomic(file, _encode(entry), durable=durable)
        except OSError as exc:
            logger.warning("carnival: cannot write cache file %s: %s", file, exc)
            return None
        return entry

    def refresh(self, entry: CachedResponse, headers: Mapping[str, str]) -> CachedResponse:
        """The stored ``entry`` updated by a 304's ``headers`` (RFC 9111 sections 3.2 and
        4.3.4): each field the 304 sends replaces the stored one, except those describing the
        body. Stored again, with a new ``stored_at``, when a field changed or the response
        has a freshness lifetime to restart; otherwise left as it is (no write per 304).
        """
        update = {k: v for k, v in storable_headers(headers).items() if k not in BODY_HEADERS}
        merged = {**entry.headers, **update}

        def lasting(fields: Mapping[str, str]) -> dict[str, str]:
            return {k: v for k, v in fields.items() if k not in PER_ANSWER_HEADERS}

        if lasting(merged) == lasting(entry.headers) and not _has_lifetime(merged):
            return entry
        # Not fsynced: a refresh lost to a power cut leaves the older entry, or a damaged file
        # that the length and digest check discards; neither loses a feed.
        stored = self.put(
            entry.url, entry.final_url, entry.status, merged, entry.body, durable=False
        )
        return stored or CachedResponse(
            entry.url, entry.final_url, entry.status, merged, entry.body, time.time()
        )


def _has_lifetime(headers: Mapping[str, str]) -> bool:
    """Whether the response states how long it stays fresh (RFC 9111 section 4.2.1)."""
    control = headers.get("cache-control", "").lower()
    return "max-age" in control or "expires" in headers


def _discard(file: Path, identity: os.stat_result) -> None:
    """Remove a damaged ``file``, unless another process has meanwhile replaced it."""
    try:
        now = os.stat(file)
        if (now.st_ino, now.st_dev) == (identity.st_ino, identity.st_dev):
            file.unlink()
    except OSError:
        pass


def _encode(entry: CachedResponse) -> bytes:
    meta = {
        "url": entry.url,
        "final_url": entry.final_url,
        "status": entry.status,
        "headers": dict(entry.headers),
        "stored_at": entry.stored_at,
        "length": len(entry.body),
        "sha256": entry.digest,
    }
    line = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return MAGIC + line + b"\n" + entry.body


def _decode(url: str, data: bytes) -> CachedResponse:
    if not data.startswith(MAGIC):
        raise ValueError("not a cache file")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ValueError("truncated metadata")
    meta = json.loads(data[len(MAGIC) : end])
    body = data[end + 1 :]
    if meta["url"] != url:
        raise ValueError("stored for another URL")
    if len(body) != meta["length"] or hashlib.sha256(body).hexdigest() != meta["sha256"]:
        raise ValueError("body does not match its length and digest")
    headers = meta["headers"]
    if not isinstance(headers, dict):
        raise TypeError("headers are not a mapping")
    return CachedResponse(
        url=url,
        final_url=str(meta["final_url"]),
        status=int(meta["status"]),
        headers={str(k): str(v) for k, v in headers.items()},
        body=body,
        stored_at=float(meta.get("stored_at", 0.0)),
    )
