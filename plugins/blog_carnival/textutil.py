"""Small helpers every stage shares, each written once: atomic writes, encoding sniffing of
XML and HTML bytes, folding text into a comparable slug, and ``with`` for what has ``close``.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import itertools
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Self

# -- things to close --------------------------------------------------------------------------


class Closing:
    """``with`` for a class that has ``close()`` (the fetcher, the parser, the fetch workers):
    the block gives the object itself and closes it however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- atomic writes ----------------------------------------------------------------------------


def write_atomic(path: Path | str, data: bytes | str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so a reader (or a crash) sees the old file or the new one,
    never a half-written one: a temporary file in the same folder, flushed and (``durable``)
    fsynced, then ``os.replace``d. Raises OSError; the temporary file never outlives a failure.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


_serial = itertools.count()
_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, only ours (mode 0600, as ``mkstemp`` makes them), named by
    process, thread and a counter: no two writers ever pick the same name, and it costs
    two system calls where ``mkstemp`` and ``mkdir(exist_ok=True)`` cost many (a bulk fetch
    writes thousands). The folder is made on first use."""
    for _ in range(100):
        name = f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_serial)}.tmp"
        tmp = os.path.join(path.parent, name)
        try:
            return os.open(tmp, _EXCLUSIVE, 0o600), tmp
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # left by a killed process whose id was reused: next name
            continue
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _fsync_dir(path: Path) -> None:
    """Make the rename durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- text folding -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """'Networking Carnival', 'networking-carnival' and 'NETWORKING_carnival' fold alike:
    accents dropped, lower case, runs of anything but letters and digits become one hyphen.
    (Remembered: a roundup of 4,000 entries folds the same few tags 8,000 times.)"""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


# -- encoding sniffing ------------------------------------------------------------------------

BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
# XML without a BOM, by the first characters of "<?xml" (XML 1.0, appendix F).
WIDE_PATTERNS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# WHATWG encoding rules: these labels mean windows-1252 in HTML.
_HTML_ALIASES = {"latin_1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"}


def bom_codec(body: bytes) -> str | None:
    """The encoding a byte order mark at the start of ``body`` settles, or None."""
    return next((codec for bom, codec in BOMS if body.startswith(bom)), None)


def wide_codec(body: bytes) -> str | None:
    """UTF-16/32 by BOM or, without one, by the shape of the first character."""
    codec = bom_codec(body)
    if codec and codec != "utf-8-sig":
        return codec
    return next((c for pattern, c in WIDE_PATTERNS if body.startswith(pattern)), None)


def codec_name(label: str | bytes | None, *, html: bool = False, meta: bool = False) -> str | None:
    """Python's name for an encoding label, or None when Python has no such text codec.

    ``html``: WHATWG rules, where latin-1 and ascii mean windows-1252. ``meta``: the label
    came from a ``<meta>`` tag, which cannot truthfully declare UTF-16 or UTF-32 (it was
    read as ASCII), so those mean UTF-8.
    """
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    name = info.name
    if html:
        name = _HTML_ALIASES.get(name, name)
    if meta and name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return name


def charset_param(headers: Mapping[str, str]) -> str | None:
    """The charset parameter of a Content-Type header, if any (header names in any case)."""
    for key, value in headers.items():
        if key.lower() == "content-type":
            try:
                msg = Message()
                msg["content-type"] = value
                charset = msg.get_param("charset")
            except Exception:  # a malformed header is no reason to fail
                return None
            return charset if isinstance(charset, str) else None
    return None


def decode_html(body: bytes, headers: Mapping[str, str]) -> str:
    """Decode an HTML page: BOM, then the Content-Type charset, then a ``<meta>`` charset in
    the first 1024 bytes, then UTF-8; undecodable bytes become U+FFFD. Never raises."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(codec, "replace")
    codec = codec_name(charset_param(headers), html=True)
    if codec is None:
        match = _META_CHARSET.search(body[:1024])
        codec = codec_name(match.group(1), html=True, meta=True) if match else None
    try:
        return body.decode(codec or "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")
