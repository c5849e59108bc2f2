"""Webmention (W3C Recommendation, 12 January 2017): sending, and verifying what is received.

Sending (section 3.1): fetch the target page with the guarded client, discover its endpoint
(3.1.2), POST ``source`` and ``target`` form-encoded to it (3.1.3). Receiving, the verification
half (3.2.1, 3.2.2): fetch the source with the same client and check that it links to the exact
target. Discovery and link checking are pure functions over bytes and headers; the network is
``fetch.Fetcher`` (address policy on every hop and on the endpoint too, timeouts, size cap), so
an endpoint on a loopback or private address is refused unless allowed, as section 4.3 and 4.5
of the Recommendation advise. Remote faults are values, never exceptions.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urldefrag

from .fetch import Fetcher
from .model import FetchResult
from .textutil import decode_html
from .urls import safe_link

logger = logging.getLogger(__name__)

# Header values as a fetch gives them ("a, b" when a header came twice) or as a list per name.
Headers = Mapping[str, str] | Mapping[str, Sequence[str]]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Elements whose content is text, not markup (HTML Living Standard, "raw text" and "escapable
# raw text" elements): a <link> written inside them is not a link. Python's html.parser only
# knows script and style, so the rest are switched into the same mode by hand.
RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
)
# What a mention may look like in HTML (3.2.2: "<a href>, <img href>, <video src> and other
# similar links"; the img line is an erratum for img src).
MENTION_ATTRS = {
    "a": "href",
    "area": "href",
    "img": "src",
    "video": "src",
    "audio": "src",
    "source": "src",  # inside <video> and <audio>
}
_CHUNK = 64 * 1024
_HTML_SPACE = re.compile(r"[ \t\n\f\r]+")
_MAX_ANSWER_TEXT = 120  # a receiver's plain-text error, quoted in a report line


# -- headers ----------------------------------------------------------------------------------


def header_values(headers: Headers | None, name: str) -> list[str]:
    """Every value of header ``name`` (any case), in order; list values are kept apart."""
    wanted = name.lower()
    values: list[str] = []
    for key, value in (headers or {}).items():
        if str(key).lower() != wanted:
            continue
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, bytes):
            values.append(value.decode("latin-1"))
        else:
            values.extend(str(v) for v in value)
    return values


def _flat(headers: Headers | None) -> dict[str, str]:
    """Lower-case names, one string per name: the shape ``textutil.decode_html`` reads."""
    names = {str(key).lower() for key in (headers or {})}
    return {name: ", ".join(header_values(headers, name)) for name in names}


def _media_type(headers: Headers | None) -> str | None:
    values = header_values(headers, "content-type")
    if not values:
        return None
    return values[0].split(";", 1)[0].strip().lower() or None


def _rel_tokens(value: str | None) -> set[str]:
    """A rel value as a set of link types: space-separated, compared case-insensitively."""
    return {token.lower() for token in _HTML_SPACE.split(value or "") if token}


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """``Link`` header field value -> [(URI reference, {param: value})], in order (RFC 8288 §3).

    Handles several comma-separated link-values, commas inside ``<...>`` and inside quoted
    strings, quoted and bare parameter values, and junk (skipped up to the next comma). Param
    names are lower-cased; a parameter that occurs twice keeps its first value (RFC 8288 §3.3:
    occurrences of ``rel`` after the first are ignored).
    """
    links: list[tuple[str, dict[str, str]]] = []
    n = len(value)
    i = 0
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        if value[i] != "<":
            i = _skip_to_comma(value, i)
            continue
        end = value.find(">", i + 1)
        if end < 0:
            break
        uri = value[i + 1 : end].strip()
        i = end + 1
        params: dict[str, str] = {}
        while True:
            while i < n and value[i] in " \t":
                i += 1
            if i >= n or value[i] == ",":
                break
            if value[i] != ";":
                i = _skip_to_comma(value, i)
                break
            j = i = i + 1
            while j < n and value[j] not in "=;,":
                j += 1
            name = value[i:j].strip().lower()
            i = j
            param = ""
            if i < n and value[i] == "=":
                i += 1
                while i < n and value[i] in " \t":
                    i += 1
                if i < n and value[i] == '"':
                    param, i = _quoted_string(value, i)
                else:
                    j = i
                    while j < n and value[j] not in ";,":
                        j += 1
                    param, i = value[i:j].strip(), j
            if name and name not in params:
                params[name] = param
        links.append((uri, params))
    return links


def _skip_to_comma(value: str, i: int) -> int:
    """Index of the next comma outside a quoted string (or the end)."""
    quoted = False
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == ",":
            return i
        i += 1
    return i


def _quoted_string(value: str, i: int) -> tuple[str, int]:
    """The unescaped content of the quoted string starting at ``value[i]`` and the index after it
    (RFC 9110 §5.6.4)."""
    out: list[str] = []
    i += 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i


# -- HTML scanning ----------------------------------------------------------------------------


class _Scanner(HTMLParser):
    """Start tags of interest in document order; comments and raw text are never markup.

    ``visit(tag, attrs)`` sees each wanted start tag (attribute names lower-case, the first of
    a repeated attribute wins, a bare attribute is ""); it returns True to stop the scan.
    """

    def __init__(self, tags: Collection[str], visit: Callable[[str, dict[str, str]], bool]):
        super().__init__(convert_charrefs=True)
        self.tags = tags
        self.visit = visit
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag in self.tags:
            found: dict[str, str] = {}
            for name, value in attrs:
                found.setdefault(name, value if value is not None else "")
            self.done = bool(self.visit(tag, found))
        if tag in RAW_TEXT:
            # Everything up to the matching end tag is text: "<a rel=webmention>" written in
            # a <textarea> or a <script> string is not an element.
            self.set_cdata_mode(tag)


def _scan(
    body: bytes | None,
    headers: Headers | None,
    tags: Collection[str],
    visit: Callable[[str, dict[str, str]], bool],
) -> None:
    """Run ``visit`` over the page's wanted start tags; stops as soon as it returns True."""
    text = decode_html(body or b"", _flat(headers))
    scanner = _Scanner(tags, visit)
    try:
        for start in range(0, len(text), _CHUNK):
            scanner.feed(text[start : start + _CHUNK])
            if scanner.done:
                return
        scanner.close()
    except Exception:  # html.parser is lenient; a page must never stop us
        logger.debug("carnival: html.parser gave up on a page; keeping what it read")


def _resolve(href: str, base: str) -> str | None:
    """``href`` resolved against ``base`` when the result is http(s), else None.

    An empty reference is the document itself (URL Standard: parsing "" against a base gives
    the base without its fragment); the query string is kept as it is.
    """
    href = href.strip(" \t\n\f\r")
    if not href:
        return safe_link(urldefrag(base).url)
    return safe_link(href, base)


# -- 3.1.2 discovery --------------------------------------------------------------------------


def discover_endpoint(final_url: str, headers: Headers | None, body: bytes | None) -> str | None:
    """The target page's Webmention endpoint as an absolute http(s) URL, or None.

    W3C Webmention 3.1.2, "Sender discovers receiver Webmention endpoint": first an HTTP
    ``Link`` header whose rel includes ``webmention``; if the document is HTML, then the first
    ``<link>`` or ``<a>`` element in document order whose rel includes ``webmention`` and that
    has an ``href``. "The first HTTP Link header takes precedence, followed by the first
    <link> or <a> element in document order." A relative endpoint is resolved against the
    page's URL (``final_url``, the target after redirects); its query string is kept (3.1.2,
    3.1.3: query parameters MUST be preserved). A candidate that is not http(s) is skipped.
    """
    base = final_url
    for value in header_values(headers, "link"):
        for uri, params in parse_link_header(value):
            # rel is a space-separated list of link types, compared case-insensitively
            # (RFC 8288 §3.3, §2.1.1).
            if "webmention" in _rel_tokens(params.get("rel")):
                endpoint = _resolve(uri, base)
                if endpoint:
                    return endpoint
    media = _media_type(headers)
    if media is not None and media not in HTML_TYPES:
        return None  # 3.1.2: the HTML elements count only "if the content type ... is HTML"
    found: list[str] = []

    def visit(tag: str, attrs: dict[str, str]) -> bool:
        if "href" not in attrs or "webmention" not in _rel_tokens(attrs.get("rel")):
            return False
        endpoint = _resolve(attrs["href"], base)
        if endpoint:
            found.append(endpoint)
        return bool(endpoint)

    _scan(body, headers, ("link", "a"), visit)
    return found[0] if found else None


# -- 3.1.3 sending ----------------------------------------------------------------------------

Outcome = Literal["sent", "no-endpoint", "failed"]


@dataclass(frozen=True)
class Discovery:
    """What fetching a target page told us: its endpoint, or why there is none."""

    target: str
    endpoint: str | None = None
    final_url: str | None = None  # the target after redirects
    error: str | None = None  # the page could not be fetched


@dataclass(frozen=True)
class SendResult:
    """One Webmention sent (or not): the endpoint, the receiver's answer, or the reason."""

    source: str
    target: str
    outcome: Outcome
    endpoint: str | None = None
    status: int | None = None  # the endpoint's HTTP status
    location: str | None = None  # 201's status page (3.2), absolute http(s)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


def discover(client: Fetcher, target: str, *, page: FetchResult | None = None) -> Discovery:
    """Fetch ``target`` (or use ``page``, its fetch result) and discover its endpoint (3.1.2)."""
    if page is None:
        page = client.fetch(target)
    if not page.ok:
        reason = page.error or "no answer"
        return Discovery(target, final_url=page.final_url, error=f"could not fetch it: {reason}")
    final = page.final_url or target
    return Discovery(target, discover_endpoint(final, page.headers, page.body), final)


def notify(client: Fetcher, endpoint: str, source: str, target: str) -> SendResult:
    """POST ``source`` and ``target`` form-encoded to ``endpoint`` (3.1.3).

    "The sender MUST post x-www-form-urlencoded source and target parameters to the Webmention
    endpoint"; the endpoint's own query string stays in the URL, never in the body. "Any 2xx
    response code MUST be considered a success"; 201 carries a Location (a status page).
    """
    answer = client.post_form(endpoint, {"source": source, "target": target})
    status = answer.status
    if status is not None and 200 <= status < 300:
        location = safe_link(answer.headers.get("location"), answer.final_url or endpoint)
        return SendResult(source, target, "sent", endpoint, status, location)
    error = answer.error or f"HTTP {status}"
    said = _receiver_text(answer) if status is not None else None
    if said:
        error = f"{error}: {said}"  # 3.2.3: a receiver MAY describe the error in the body
    return SendResult(source, target, "failed", endpoint, status, error=error)


def send_webmention(
    client: Fetcher, source: str, target: str, *, page: FetchResult | None = None
) -> SendResult:
    """Discover ``target``'s endpoint and send it a Webmention from ``source``.

    ``page`` is ``target``'s fetch result when the caller already has it (fetch once per run).
    """
    found = discover(client, target, page=page)
    if found.error:
        return SendResult(source, target, "failed", error=found.error)
    if found.endpoint is None:
        return SendResult(source, target, "no-endpoint")
    return notify(client, found.endpoint, source, target)


def _receiver_text(answer: FetchResult) -> str | None:
    """A receiver's short plain-text explanation, made safe for one terminal line."""
    if _media_type(answer.headers) != "text/plain" or not answer.body:
        return None
    text = answer.body[:1024].decode("utf-8", "replace")
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(text) > _MAX_ANSWER_TEXT:
        text = text[: _MAX_ANSWER_TEXT - 1] + "…"
    return text or None


# -- 3.2 receiving: verification --------------------------------------------------------------


def links_to(body: bytes | None, headers: Headers | None, base_url: str, target: str) -> bool:
    """Does this document mention exactly ``target``? (3.2.2, per media type)

    HTML (or no Content-Type): an ``<a>``/``<area>`` href or an ``<img>``, ``<video>``,
    ``<audio>`` or ``<source>`` src that, resolved against the document's base URL (the first
    ``<base href>``, else ``base_url``), is the target; comments and raw text do not count.
    JSON: a string value equal to the target. Plain text: the target as a substring. "The
    source document MUST have an exact match of the target URL."
    """
    wanted = safe_link(target)
    if wanted is None:
        return False
    media = _media_type(headers)
    if media is None or media in HTML_TYPES:
        return _html_links_to(body, headers, base_url, wanted)
    if media == "application/json" or media.endswith("+json"):
        return _json_mentions(body, target)
    if media == "text/plain":
        return target in decode_html(body or b"", _flat(headers))
    return False


def _html_links_to(body: bytes | None, headers: Headers | None, base_url: str, wanted: str) -> bool:
    base: list[str] = []
    links: list[str] = []

    def visit(tag: str, attrs: dict[str, str]) -> bool:
        if tag == "base":
            if not base and "href" in attrs:
                base.append(safe_link(attrs["href"], base_url) or base_url)
            return False
        value = attrs.get(MENTION_ATTRS[tag])
        if value is not None:
            links.append(value)
        return False

    _scan(body, headers, ("base", *MENTION_ATTRS), visit)
    document_base = base[0] if base else base_url
    return any(_resolve(link, document_base) == wanted for link in links)


def _json_mentions(body: bytes | None, target: str) -> bool:
    try:
        data = json.loads((body or b"").decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return False
    stack: list[object] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item == target:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


VerifyOutcome = Literal["verified", "no-link", "gone", "refused", "failed"]


@dataclass(frozen=True)
class Verification:
    """Whether a received mention holds: the source page links to the exact target."""

    source: str
    target: str
    outcome: VerifyOutcome
    reason: str | None = None
    final_url: str | None = None  # the source after redirects

    @property
    def ok(self) -> bool:
        return self.outcome == "verified"


def verify_mention(client: Fetcher, source: str, target: str) -> Verification:
    """Check a received Webmention: 3.2.1 request checks, then 3.2.2 verification.

    ``refused``: not http(s) URLs, or source and target the same (3.2.1 MUST reject).
    ``gone``: the source answers 410 (3.2.4: delete an earlier mention). ``failed``: the
    source could not be fetched. ``no-link`` / ``verified``: whether it links to the target.
    """
    if safe_link(source) is None or safe_link(target) is None:
        return Verification(source, target, "refused", "source and target must be http(s) URLs")
    if urldefrag(source).url == urldefrag(target).url:
        return Verification(source, target, "refused", "source and target are the same URL")
    page = client.fetch(source)
    final = page.final_url or source
    if page.status == 410:
        return Verification(source, target, "gone", "the source is gone (HTTP 410)", final)
    if not page.ok:
        reason = f"could not fetch the source: {page.error or 'no answer'}"
        return Verification(source, target, "failed", reason, final)
    if links_to(page.body, page.headers, final, target):
        return Verification(source, target, "verified", None, final)
    return Verification(source, target, "no-link", "the source does not link to the target", final)
