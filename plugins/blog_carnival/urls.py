"""URL helpers: canonical forms for matching, and the only links readers may click."""

from __future__ import annotations

import functools
import re
from urllib.parse import (
    SplitResult,
    parse_qsl,
    quote,
    unquote,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)

# Query parameters that only track the click and never change the page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "ref",
        "ref_src",
        "_hsenc",
        "_hsmi",
        "yclid",
    }
)
SAFE_SCHEMES = ("http", "https")
# A control character or any whitespace (``\s`` is ``str.isspace``, Unicode's spaces included).
_UNSAFE_CHAR = re.compile(r"[\x00-\x1f\x7f\s]")


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


PATH_SAFE = "/:@!$&'()*+,;=-._~%"
# What ``quote(unquote(path), safe=PATH_SAFE)`` gives back unchanged: no escape to decode,
# nothing to encode (quote never encodes ASCII letters, digits and "_.-~").
PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]*")


def _split(text: str) -> tuple[SplitResult, str, int | None] | None:
    """The URL's parts, its host lower-cased without a trailing dot, and its port; None when
    it cannot be parsed at all (a bad port, an unbalanced IPv6 bracket)."""
    try:
        parts = urlsplit(text)
        return parts, (parts.hostname or "").lower().rstrip("."), parts.port
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def site_of(url: str | None) -> str:
    """Whose site a URL is on, for telling bloggers apart: its host, lower case, without a
    leading ``www.`` ("" when it has none). (Remembered: a roundup asks it of each entry's
    blog twice, and a blog has several entries.)"""
    try:
        host = urlsplit((url or "").strip()).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").removeprefix("www.")


def clean_url(url: str) -> str:
    """The URL to store for a post: scheme and host lower-cased, default port, fragment and
    tracking parameters (``utm_*`` and friends) dropped; path and other parameters kept as
    given. Never raises: junk in, the stripped text out."""
    text = (url or "").strip()
    split = _split(text)
    if split is None:
        return text
    parts, host, port = split
    if not parts.scheme or not host:
        return text
    scheme = parts.scheme.lower()
    netloc = host if ":" not in host else f"[{host}]"
    if port and port != {"http": 80, "https": 443}.get(scheme):
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        return text  # credentials in a post URL: leave it alone, it will be refused anyway
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def canonical_url(url: str) -> str:
    """A key under which two spellings of the same post URL compare equal.

    Ignores the scheme (http/https), host case, a leading ``www.``, default ports, the
    fragment, a trailing slash or ``index.html``, tracking parameters (``utm_*`` and
    friends) and query-parameter order. Never raises: junk in, junk key out.
    """
    text = (url or "").strip()
    split = _split(text)
    if split is None:
        return text
    parts, host, port = split
    if host.startswith("www."):
        host = host[4:]
    netloc = host
    if port and port not in (80, 443):
        netloc = f"{host}:{port}"
    path = canonical_path(parts.path)
    for suffix in ("/index.html", "/index.htm", "/index.php"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    path = path.rstrip("/")
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode(sorted((k, v) for k, v in pairs if not _is_tracking(k)))
    return urlunsplit(("", netloc, path, query, "")).lstrip("/")


def canonical_path(path: str) -> str:
    """A URL path with its escapes spelled one way: decoded, then encoded again except for
    ``PATH_SAFE``. A path of those characters alone (most are) is already spelled so."""
    if PLAIN_PATH.fullmatch(path):
        return path
    return quote(unquote(path), safe=PATH_SAFE)


def _absolute(parts: SplitResult, text: str) -> bool:
    """Whether joining ``text`` (split as ``parts``) to any base gives ``text``'s own parts:
    an http(s) URL with a host, and no ";" (``urljoin`` splits a path's last ";" off and
    rejoins it, dropping one that is left empty). Most links in a feed are such URLs, and
    the join (three more parses) was half of what checking them cost."""
    return bool(parts.netloc) and parts.scheme in SAFE_SCHEMES and ";" not in text


def safe_link(url: str | None, base: str | None = None) -> str | None:
    """Return ``url`` resolved against ``base`` if it is an absolute http(s) URL, else None.

    This is the gate for every link a reader can click: ``javascript:``, ``data:``,
    protocol-relative tricks, control characters and host-less URLs all come out None.
    """
    if not url:
        return None
    text = url.strip()
    if _UNSAFE_CHAR.search(text):
        return None
    try:
        parts = urlsplit(text)
        if base and not _absolute(parts, text):
            parts = urlsplit(urljoin(base, text))
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not host:
        return None
    if "\\" in parts.netloc or "@" in parts.netloc and not parts.username:
        return None
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, parts.fragment)
    )
