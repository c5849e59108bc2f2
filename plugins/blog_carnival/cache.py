"""On-disk HTTP cache: the last good body of each URL with the validators to revalidate it.

One file per URL, named by the sha256 of the URL, under the cache folder::

    <cache>/<sha256(url)>.http  =  b"carnival-http-cache 1\\n" + JSON metadata + b"\\n" + body

The metadata records the body's length and sha256, so a truncated or otherwise damaged file is
recognised and treated as a miss. Files are written atomically: a temporary file in the same
folder, flushed and fsynced, then ``os.replace``d over the old one. A cache that cannot be read
or written is logged and ignored; it never fails a fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
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
        """The stored response for ``url``, or None when there is none or it is damaged."""
        file = self.file_for(url)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("carnival: cannot read cache file %s: %s", file, exc)
            return None
        try:
            return _decode(url, data)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("carnival: ignoring damaged cache file %s (%s)", file, exc)
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
    ) -> CachedResponse | None:
        """Store a response atomically; return it, or None if it could not be written."""
        entry = CachedResponse(url, final_url, status, headers, bytes(body), time.time())
        file = self.file_for(url)
        try:
            write_atomic(file, _encode(entry))
        except OSError as exc:
            logger.warning("carnival: cannot write cache file %s: %s", file, exc)
            return None
        return entry


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
