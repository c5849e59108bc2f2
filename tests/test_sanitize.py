"""clean_html, plain_text and excerpt: tables of cases plus hypothesis properties."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import pytest
from blog_carnival.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ELLIPSIS,
    clean_html,
    excerpt,
    normalize_text,
    plain_text,
)
from hypothesis import given, settings
from hypothesis import strategies as st

BASE = "https://blog.example/2026/10/post.html"
ON_ATTRIBUTE = re.compile(r"[\s/\"']on[a-z]+\s*=")
BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}

# Attack strings whose danger sits in markup (attributes, script bodies, embedded
# documents). After cleaning, none of "javascript:", "<script", "<iframe" or an on*=
# attribute may remain anywhere in the output, not even as text.
VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="javascript&#58;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<a href="\x01javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="https://ok.example/" onclick="alert(1)">x</a>',
    '<a href="https://ok.example/" ONMOUSEOVER=alert(1)>x</a>',
    '<img src="javascript:alert(1)">',
    "<img src=x onerror=alert(1)>",
    '<img """><script>alert(1)</script>">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<img/src/onerror=alert(1)>",
    "<body onload=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<style>@import 'javascript:alert(1)';</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<p style="x:expression(alert(1))" class="c" id="i">x</p>',
    '<form action="javascript:alert(1)"><input type=submit onfocus=alert(1) autofocus></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    "<details open ontoggle=alert(1)>x</details>",
    '<video poster="javascript:alert(1)"><source src="javascript:alert(1)"></video>',
    '<blockquote cite="javascript:alert(1)">x</blockquote>',
    '<q cite="javascript:alert(1)">x</q>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<title><img src=x onerror=alert(1)></title>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "<template><img src=x onerror=alert(1)></template>",
]
# Strings that change how what follows is parsed (an unterminated tag, an open quote or
# comment). Combined with vectors they can leave "javascript:" as harmless visible text,
# so they only get the structural check.
CONTEXT_VECTORS = [
    "<img src=x onerror=alert(1)//",
    '<a href="',
    "<a title='",
    "<!--",
    "<p",
    "</",
    "<plaintext>",
]
SEPARATORS = ["", " ", "\n", "x", "<p>", "</p>", "<div>", "</div>", "<b>", "<table>", "<li>"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_safe(html: str) -> None:
    """The structure of a cleaned fragment: allowed tags and attributes only, http(s) URLs."""
    lowered = html.lower()
    assert "<script" not in lowered and "<iframe" not in lowered, html
    parser = _Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS and tag != "h1", html
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ALLOWED_ATTRIBUTES["*"]
        if tag == "a":
            allowed = allowed | {"rel"}
        for name, value in attrs:
            assert name in allowed, (name, html)
            assert not name.startswith("on"), html
            if name in ("href", "src", "cite"):
                assert value and value.startswith(("http://", "https://")), html
                assert "javascript:" not in value.lower(), html
            if name == "rel":
                assert value == "nofollow noopener ugc"


def assert_clean_of_vectors(html: str) -> None:
    assert_safe(html)
    lowered = html.lower()
    # Escaped text inside a quoted attribute value is inert ("&lt;img onerror=...&gt;" in a
    # title); nh3 always double-quotes values and escapes quotes in them, so drop values first.
    # (Link-bearing attributes themselves are checked, value and all, by assert_safe.)
    markup_only = re.sub(r'"[^"]*"', '""', lowered)
    assert "javascript:" not in markup_only, html
    assert not ON_ATTRIBUTE.search(markup_only), html


@pytest.mark.parametrize("vector", VECTORS)
def test_known_vectors(vector: str) -> None:
    assert_clean_of_vectors(clean_html(vector, BASE))
    assert_clean_of_vectors(clean_html(vector, None))


CASES = [
    # (description, html, base, expected output)
    ("plain paragraph kept", "<p>Hello <em>there</em></p>", BASE, "<p>Hello <em>there</em></p>"),
    (
        "relative link resolved, rel added",
        '<a href="../09/older.html">older</a>',
        BASE,
        '<a href="https://blog.example/2026/09/older.html" rel="nofollow noopener ugc">older</a>',
    ),
    (
        "relative link without a base is dropped",
        '<a href="/x">x</a>',
        None,
        '<a rel="nofollow noopener ugc">x</a>',
    ),
    (
        "protocol-relative URL takes the base's scheme",
        '<img src="//cdn.example/a.png" alt="a">',
        BASE,
        '<img src="https://cdn.example/a.png" alt="a">',
    ),
    (
        "a javascript: base is ignored",
        '<a href="x.html">x</a>',
        "javascript:alert(1)//",
        '<a rel="nofollow noopener ugc">x</a>',
    ),
    ("h1 becomes h2", "<h1>Title</h1><h2>Sub</h2>", BASE, "<h2>Title</h2><h2>Sub</h2>"),
    ("h1 with a title keeps it", '<H1 title="t">T</H1>', BASE, '<h2 title="t">T</h2>'),
    (
        "h1 text in an attribute is not a tag",
        '<abbr title="<h1>">x</abbr>',
        BASE,
        '<abbr title="&lt;h1&gt;">x</abbr>',
    ),
    ("class, id, style dropped", '<p class="a" id="b" style="c">x</p>', BASE, "<p>x</p>"),
    (
        "width/height must be numbers",
        '<img src="a.png" width="100" height="50%">',
        BASE,
        '<img src="https://blog.example/2026/10/a.png" width="100">',
    ),
    (
        "table spans kept",
        '<table><tr><td colspan="2" rowspan="x">a</td></tr></table>',
        BASE,
        '<table><tbody><tr><td colspan="2">a</td></tr></tbody></table>',
    ),
    (
        "time and del keep a datetime",
        '<del datetime="2026-10-01T10:00:00Z">old</del><time datetime="bad<">t</time>',
        BASE,
        '<del datetime="2026-10-01T10:00:00Z">old</del><time>t</time>',
    ),
    ("comments removed", "<p>a<!-- secret -->b</p>", BASE, "<p>ab</p>"),
    ("script content removed", "a<script>var x = 1;</script>b", BASE, "ab"),
    ("style content removed", "a<style>p{}</style>b", BASE, "ab"),
    ("form unwrapped, text kept", "<form><label>Name</label><input name=n></form>", BASE, "Name"),
    ("bidi override removed", "<p>a\u202eb</p>", BASE, "<p>ab</p>"),
    ("control character removed", "<p>a\x07b</p>", BASE, "<p>ab</p>"),
    ("empty input", "", BASE, ""),
    ("None input", None, BASE, ""),
    (
        "mailto dropped",
        '<a href="mailto:me@example.com">me</a>',
        BASE,
        '<a rel="nofollow noopener ugc">me</a>',
    ),
    (
        "figure kept",
        '<figure><img src="https://a.example/x.png" alt="x"><figcaption>c</figcaption></figure>',
        BASE,
        '<figure><img src="https://a.example/x.png" alt="x"><figcaption>c</figcaption></figure>',
    ),
]


@pytest.mark.parametrize(
    ("description", "html", "base", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_clean_html(description: str, html: str | None, base: str | None, expected: str) -> None:
    assert clean_html(html, base) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_safe(text: str) -> None:
    assert_safe(clean_html(text, BASE))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(VECTORS), st.sampled_from(SEPARATORS)), min_size=1, max_size=8
    )
)
def test_vector_combinations_are_safe(parts: list[str]) -> None:
    assert_clean_of_vectors(clean_html("".join(parts), BASE))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(VECTORS),
            st.sampled_from(CONTEXT_VECTORS),
            st.text(alphabet="<>\"'=/ &#;:abcdehijlnoprstv", max_size=12),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_vectors_mixed_with_markup_noise_are_safe(parts: list[str]) -> None:
    """Noise can turn a vector into text ("javascript:" as words is harmless), never into markup."""
    assert_safe(clean_html("".join(parts), BASE))


# --- plain_text --------------------------------------------------------------------------

PLAIN = [
    ("<p>Hello <em>world</em></p>", None, "Hello world"),
    ("<p>one</p><p>two</p>", None, "one two"),
    ("a<br>b", None, "a b"),
    ("Tom &amp; Jerry &lt;3 &#8212; &eacute;", None, "Tom & Jerry <3 — é"),
    ("Salary < respect", None, "Salary < respect"),
    ("x<script>alert(1)</script>y<style>p{}</style>z", None, "xyz"),
    ("  lots \n\t of   space  ", None, "lots of space"),
    ("\u202eevil\u202c \u2066iso\u2069", None, "evil iso"),
    ("bell\x07 and\x1b escape", None, "bell and escape"),
    ("one two three four", 10, "one two…"),
    ("abcdefghijklmnop", 5, "abcd…"),
    ("short", 10, "short"),
    ("", None, ""),
    (None, None, ""),
    ("<a href='unclosed", None, "<a href='unclosed"),
]


@pytest.mark.parametrize(("html", "max_chars", "expected"), PLAIN)
def test_plain_text(html: str | None, max_chars: int | None, expected: str) -> None:
    assert plain_text(html, max_chars) == expected


def _is_clean_text(text: str) -> bool:
    return not any(
        unicodedata.category(c) in ("Cc", "Cs") or c in BIDI or c == "\ufeff" for c in text
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.integers(min_value=1, max_value=80)))
def test_plain_text_properties(text: str, max_chars: int | None) -> None:
    result = plain_text(text, max_chars)
    assert _is_clean_text(result)
    assert result == result.strip() and "  " not in result
    if max_chars is not None:
        assert len(result) <= max_chars


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_normalize_text_properties(text: str) -> None:
    result = normalize_text(text)
    assert _is_clean_text(result)
    assert normalize_text(result) == result


# --- excerpt -----------------------------------------------------------------------------

EXCERPTS = [
    ("<p>one two three</p>", 5, "one two three"),
    ("<p>one two three four five six</p>", 3, "one two three…"),
    ("one, two, three, four", 2, "one, two…"),
    ("<p>Ask about <em>the work</em>, not the job.</p>", 4, "Ask about the work…"),
    ("<p>Ask about <em>the work</em>, not the job.</p>", 5, "Ask about the work, not…"),
    ("<p>a <b>bold</b> move</p><script>secret words here</script>", 10, "a bold move"),
    ("", 5, ""),
    (None, 5, ""),
    ("東京" * 100, 40, "東京" * 100),  # 200 chars: under the default 480
]


@pytest.mark.parametrize(("html", "max_words", "expected"), EXCERPTS)
def test_excerpt(html: str | None, max_words: int, expected: str) -> None:
    assert excerpt(html, max_words) == expected


def test_excerpt_bounds_text_without_spaces() -> None:
    result = excerpt("東" * 1000, 10)
    assert result == "東" * 120 + ELLIPSIS


def test_excerpt_prefers_a_space_within_max_chars() -> None:
    assert excerpt("alpha beta gamma delta", 10, max_chars=13) == "alpha beta…"


def test_excerpt_rejects_zero_words() -> None:
    with pytest.raises(ValueError):
        excerpt("x", 0)


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÀé東,.;:!?'-", min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WORDS, max_size=80),
    st.lists(
        st.sampled_from([" ", "  ", "\n", "\t", "<br>", "</p><p>", " <b>", "</b> "]), max_size=80
    ),
    st.integers(min_value=1, max_value=50),
)
def test_excerpt_cuts_on_word_boundaries(words: list[str], gaps: list[str], max_words: int) -> None:
    html = "".join(w + (gaps[i] if i < len(gaps) else " ") for i, w in enumerate(words))
    source = plain_text(html).split()
    result = excerpt(html, max_words)
    cut = result.endswith(ELLIPSIS) and result != " ".join(source)
    body = result[: -len(ELLIPSIS)] if cut else result
    got = body.split()
    assert len(got) <= max_words
    # every word is whole: all but the last equal the source, the last may only have lost
    # trailing ",;:" before the ellipsis
    assert got[:-1] == source[: len(got) - 1]
    if got:
        original = source[len(got) - 1]
        assert got[-1] == original or (cut and got[-1] == original.rstrip(",;:"))
    if not cut:
        assert got == source


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=1, max_value=60))
def test_excerpt_word_count_on_any_text(text: str, max_words: int) -> None:
    result = excerpt(text, max_words)
    assert len(result.removesuffix(ELLIPSIS).split()) <= max_words
    assert _is_clean_text(result)
