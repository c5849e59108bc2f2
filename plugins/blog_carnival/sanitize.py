"""Make feed text safe to show: an allow-list HTML sanitizer, plain text and excerpts.

Feed HTML is parsed unsanitized (for speed); only entries that get selected come here.
``clean_html`` keeps a small allow-list of tags and attributes (nh3/ammonia, an HTML5
parser, so mutation tricks are parsed the way a browser would), resolves relative links
against the entry's base and drops every link that is not absolute http(s).
``plain_text`` and ``excerpt`` return text, never markup, so a cut can never break a tag;
the templates escape them like any other text.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser

import nh3

from .urls import safe_link

log = logging.getLogger(__name__)

ELLIPSIS = "…"

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",  # kept by nh3, then renamed to h2 (see _demote_h1)
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "u",
        "ul",
        "var",
    }
)

# Tags removed together with everything inside them: script text is not prose, and the
# raw-text elements (xmp, plaintext, title, textarea, noscript...) would otherwise turn
# markup into visible text.
# Other unknown tags (form, input, meta, link, div, font, ...) are unwrapped: the tag
# goes, its text stays.
DROPPED_WITH_CONTENT = frozenset(
    {
        "applet",
        "embed",
        "frame",
        "frameset",
        "iframe",
        "listing",
        "math",
        "noembed",
        "noframes",
        "noscript",
        "object",
        "plaintext",
        "script",
        "select",
        "style",
        "svg",
        "template",
        "textarea",
        "title",
        "xmp",
    }
)

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}

URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
NUMBER_ATTRIBUTES = frozenset({"width", "height", "colspan", "rowspan"})
LINK_REL = "nofollow noopener ugc"
URL_SCHEMES = frozenset({"http", "https"})

_NUMBER = re.compile(r"\d{1,4}")
_DATETIME = re.compile(r"[0-9A-Za-z:.+\- ]{1,64}")
_H1 = re.compile(r"<(/?)h1(?=[\s>])")

# Characters removed from text: C0/C1 controls (the whitespace ones become a space),
# bidi embeddings/overrides (U+202A-202E) and isolates (U+2066-2069), a stray BOM, and
# lone surrogates (they cannot be written as UTF-8).
_SPACE_CONTROLS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"
_TEXT_TABLE: dict[int, str | None] = {}
for _code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
    _TEXT_TABLE[_code] = " " if chr(_code) in _SPACE_CONTROLS else None
for _code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]:
    _TEXT_TABLE[_code] = None
for _code in range(0xD800, 0xE000):
    _TEXT_TABLE[_code] = None
del _code

# In HTML only the invisible troublemakers go; whitespace controls stay whitespace.
_HTML_TABLE: dict[int, str | None] = dict(_TEXT_TABLE)
_HTML_TABLE.update({ord("\t"): "\t", ord("\n"): "\n", ord("\r"): "\n"})

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    }
)
_SKIP_TEXT_TAGS = frozenset(
    {"script", "style", "template", "svg", "math", "noscript", "iframe", "object", "head", "title"}
)


def _attribute_filter(base: str | None):
    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr in URL_ATTRIBUTES:
            return safe_link(value, base)
        if attr in NUMBER_ATTRIBUTES:
            value = value.strip()
            return value if _NUMBER.fullmatch(value) else None
        if attr == "datetime":
            value = value.strip()
            return value if _DATETIME.fullmatch(value) else None
        return value

    return keep


def _demote_h1(html: str) -> str:
    """Rename h1 to h2 so a roundup page keeps its single h1.

    Runs on nh3's output, where ``<`` inside text and attribute values is escaped, so
    every ``<h1`` left is a real tag.
    """
    return _H1.sub(r"<\1h2", html)


def clean_html(html: str | None, base: str | None) -> str:
    """Return a safe HTML fragment made from untrusted feed HTML.

    Allow-listed tags and attributes only (no style, class, id or event handlers);
    script/style/svg/math/iframe/object/... are dropped with their content; relative
    ``href``/``src``/``cite`` are resolved against ``base`` and every URL that is not
    absolute http(s) afterwards is removed; links get ``rel="nofollow noopener ugc"``;
    ``h1`` becomes ``h2``; comments, control characters and bidi overrides go.
    """
    if not html:
        return ""
    base = safe_link(base) if base else None
    cleaner = nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter(base),
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        url_relative="pass_through",  # resolved (or dropped) by the attribute filter
    )
    cleaned = cleaner.clean(html.translate(_HTML_TABLE))
    return _demote_h1(cleaned).strip()


class _TextExtractor(HTMLParser):
    """Collect the text of an HTML fragment; block boundaries become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TEXT_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TEXT_TAGS:
            if self.skipping:
                self.skipping -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _strip_tags(html: str) -> str:
    if "<" not in html and "&" not in html:
        return html
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; never let odd input stop a build
        log.debug("carnival: html.parser gave up on a fragment; keeping the text so far")
    return "".join(parser.parts)


def _cut(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, ellipsis included, preferring
    a word boundary in the second half of the allowance."""
    if len(text) <= max_chars:
        return text
    if max_chars < 2:
        return ELLIPSIS[:max_chars]
    room = max_chars - 1
    head = text[:room]
    if text[room] != " ":
        space = head.rfind(" ")
        if space >= room // 2:
            head = head[:space]
    return (head.rstrip(" ,;:") or head) + ELLIPSIS


def normalize_text(text: str | None, max_chars: int | None = None) -> str:
    """Tidy text that is already plain: controls and bidi overrides removed, whitespace
    collapsed, optionally cut to ``max_chars`` (ellipsis included, on a word boundary
    when one is near)."""
    if not text:
        return ""
    text = " ".join(text.translate(_TEXT_TABLE).split())
    if max_chars is not None:
        text = _cut(text, max_chars)
    return text


def plain_text(html_or_text: str | None, max_chars: int | None = None) -> str:
    """Text of an HTML fragment: tags stripped (script/style text too), entities
    decoded, control and bidi-override characters removed, whitespace collapsed,
    optionally cut to ``max_chars`` characters including the ellipsis."""
    if not html_or_text:
        return ""
    return normalize_text(_strip_tags(html_or_text), max_chars)


def excerpt(html_or_text: str | None, max_words: int = 40, *, max_chars: int | None = None) -> str:
    """Plain-text excerpt of at most ``max_words`` words, with "…" appended when cut.

    The cut is on a word boundary (trailing ``,;:`` dropped before the ellipsis).
    ``max_chars`` (default: 12 per word) also bounds the length: the cut then falls on
    the last space before it, and only a single word longer than that (CJK prose, a
    long URL) is cut between characters.
    """
    return cut_words(plain_text(html_or_text), max_words, max_chars=max_chars)


def cut_words(text: str, max_words: int = 40, *, max_chars: int | None = None) -> str:
    """``excerpt`` of text that is plain already (as ``plain_text`` gives it)."""
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    limit = max(1, max_chars if max_chars is not None else 12 * max_words)
    words = text.split(" ")
    if words == [""]:
        return ""
    cut = len(words) > max_words
    text = " ".join(words[:max_words])
    if len(text) > limit:
        cut = True
        head = text[:limit]
        if text[limit] != " ":
            space = head.rfind(" ")
            if space > 0:
                head = head[:space]
        text = head
    if not cut:
        return text
    return (text.rstrip(",;: ") or text) + ELLIPSIS
