"""Spam rules for comments: a pure function from a comment and its context to a verdict.

No online service is asked. Each signal adds points and a reason a host can read; a score at
or above ``SpamSettings.spam_score`` is spam, anything below is pending. ``judge`` never
approves: approval comes from the host (the trusted list, handled by ``comments.add_comment``,
or an explicit ``approve``), so when the rules are in doubt a comment waits, unpublished.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .errors import ConfigError
from .urls import canonical_url

Status = Literal["approved", "pending", "spam"]

# -- settings ---------------------------------------------------------------------------------

SPAM_SCORE = 5
MAX_LINKS = 2

# The host's settings and their defaults, in one place (see ``spam_settings``).
DEFAULTS: dict[str, object] = {
    "COMMENTS_TRUSTED": (),  # e-mail addresses and site URLs whose comments are approved
    "COMMENTS_SPAM_KEYWORDS": (),  # extra commercial words or phrases, added to the built-in list
    "COMMENTS_SPAM_SCORE": SPAM_SCORE,  # a score at or above this is spam
    "COMMENTS_MAX_LINKS": MAX_LINKS,  # more links than this in the text is a strong signal
}


@dataclass(frozen=True)
class SpamSettings:
    """What the host decides: who is trusted, which extra words are commercial, thresholds."""

    trusted: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    spam_score: int = SPAM_SCORE
    max_links: int = MAX_LINKS
    duplicate_ratio: float = 0.85  # word-sequence similarity that counts as the same text
    duplicate_min_words: int = 6  # shorter texts ("Thanks!") are never called duplicates

    def is_trusted(self, email: str | None, url: str | None) -> bool:
        """True when the e-mail (case-insensitively) or the URL (``urls.canonical_url``)
        is on the trusted list."""
        emails = {t.strip().casefold() for t in self.trusted if _looks_like_email(t)}
        sites = {canonical_url(t) for t in self.trusted if not _looks_like_email(t)}
        if email and email.strip().casefold() in emails:
            return True
        return bool(url and url.strip() and canonical_url(url) in sites)


def _looks_like_email(text: str) -> bool:
    return "@" in text and "/" not in text


def spam_settings(settings: Mapping[str, object]) -> SpamSettings:
    """Lay the host's ``COMMENTS_*`` settings over ``DEFAULTS``; a bad value is a
    ``ConfigError`` naming the key."""
    merged = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
    problems: list[str] = []

    def strings(key: str) -> tuple[str, ...]:
        value = merged[key]
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
            problems.append(f"{key}: expected a list of strings, got {value!r}")
            return ()
        return tuple(v.strip() for v in value if v.strip())

    def positive(key: str, default: int) -> int:
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key}: expected a whole number of at least 1, got {value!r}")
            return default
        return value

    result = SpamSettings(
        trusted=frozenset(strings("COMMENTS_TRUSTED")),
        keywords=strings("COMMENTS_SPAM_KEYWORDS"),
        spam_score=positive("COMMENTS_SPAM_SCORE", SPAM_SCORE),
        max_links=positive("COMMENTS_MAX_LINKS", MAX_LINKS),
    )
    if problems:
        raise ConfigError([f"comments: {p}" for p in problems])
    return result


# -- inputs and verdict -----------------------------------------------------------------------


class Judgeable(Protocol):
    """What the rules look at: ``comments.Comment`` and ``comments.IncomingComment`` fit."""

    @property
    def author(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...


@dataclass(frozen=True)
class SpamContext:
    """What the comment is judged against.

    ``post_text``: the post's title and body (generic praise shares no words with it).
    ``other_texts``: comments under other posts (the same text under several posts is spam).
    ``spam_texts``: comments the host already marked as spam, under any post.
    """

    post_text: str = ""
    other_texts: tuple[str, ...] = ()
    spam_texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """``status`` is "spam" or "pending" from ``judge``; ``reasons`` say why, in words."""

    status: Status
    reasons: tuple[str, ...] = field(default=())
    score: int = 0


# -- word lists -------------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Phrases that mark commercial text wherever they appear (text, name, the URL's words).
COMMERCIAL_PHRASES = (
    "payday loan",
    "fast loan",
    "instant loan",
    "loan offer",
    "bad credit",
    "instant approval",
    "credit repair",
    "debt relief",
    "viagra",
    "cialis",
    "levitra",
    "tramadol",
    "xanax",
    "pharmacy",
    "no prescription",
    "without prescription",
    "pills",
    "weight loss",
    "diet pill",
    "casino",
    "slot machine",
    "poker online",
    "betting",
    "bitcoin",
    "crypto",
    "forex",
    "binary option",
    "investment opportunity",
    "passive income",
    "make money",
    "earn money",
    "earn $",
    "work from home",
    "seo",
    "rank for",
    "backlink",
    "guest post",
    "sponsored post",
    "dofollow",
    "do-follow",
    "your price",
    "your rates",
    "rank your website",
    "first page of google",
    "traffic to your",
    "buy followers",
    "buy likes",
    "essay writing",
    "write my essay",
    "resume writing service",
    "best resume writing",
    "cv writing service",
    "job search site",
    "job portal",
    "hiring now",
    "apply now",
    "promo code",
    "coupon",
    "discount code",
    "limited offer",
    "free trial",
    "best price",
    "lowest price",
    "cheap",
    "replica watch",
    "escort",
    "dating site",
    "spell caster",
    "get your ex back",
    "recover your lost",
    "recovery expert",
    "hacker",
    "whatsapp",
    "telegram",
)

# Words that are commercial in spam but also turn up in a reader's ordinary sentence
# ("a cheap diner", "we chat on WhatsApp"): they count for less.
AMBIGUOUS_PHRASES = frozenset(
    {
        "apply now",
        "betting",
        "bitcoin",
        "cheap",
        "coupon",
        "crypto",
        "free trial",
        "hacker",
        "hiring now",
        "make money",
        "pharmacy",
        "pills",
        "rank for",
        "seo",
        "telegram",
        "whatsapp",
        "work from home",
    }
)

# Words a person's name does not contain; two of them, or one commercial phrase, make
# the name a keyword ("find job search", "best resume writing service").
NAME_WORDS = _word_set(
    """job jobs search resume resumes cv seo service services loan loans online best cheap buy
    agency marketing casino pharmacy pills writing writer essay essays hiring career careers
    recruitment recruiting free download solutions insurance lawyer attorney dental repair shop
    store sale deals review reviews tips hub outsourcing crypto bitcoin forex trading escort
    dating tickets hire portal vacancies consultancy digital website web company ltd llc inc
    find top"""
)

# Link-drop phrases: how spam introduces its link.
LINK_DROP_PHRASES = (
    "the url is",
    "the link is",
    "here is the link",
    "here's the link",
    "useful info",
    "useful information on",
    "more info at",
    "more information visit",
    "for more details visit",
    "visit my",
    "visit our",
    "check out my",
    "check out our",
    "check this out",
    "click here",
    "click the link",
    "read more at",
    "see more at",
    "my website",
    "our website",
    "this website",
    "this site",
)

# Praise that fits any post.
PRAISE_PHRASES = (
    "great post",
    "nice post",
    "good post",
    "great article",
    "nice article",
    "good article",
    "great blog",
    "nice blog",
    "awesome blog",
    "great content",
    "great information",
    "nice information",
    "useful information",
    "valuable information",
    "very informative",
    "informative article",
    "informative post",
    "very helpful",
    "really helpful",
    "so helpful",
    "very useful",
    "thanks for sharing",
    "thank you for sharing",
    "keep up the good work",
    "keep it up",
    "keep posting",
    "well written",
    "nicely written",
    "i really enjoyed",
    "enjoyed reading",
    "bookmarked",
    "i like this",
    "i love this",
    "amazing",
    "awesome",
    "wonderful",
    "excellent",
    "fantastic",
    "appreciate your effort",
    "i must say",
    "you are a great",
)

# Words that say nothing about which post a comment sits under.
STOPWORDS = _word_set(
    """a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't could did didn't do does doesn't doing don't
    down during each even ever every few for from further get gets got had has have having he her
    here here's hers him his how i i'd i'll i'm i've if in into is isn't it it's its itself just
    let's like lot lots me more most much my myself no nor not now of off on once one only or other
    our ours out over own really same she should so some such than that that's the their theirs
    them then there these they this those through to too under until up us very was we we're were
    what when where which while who whom why will with would you you're your yours yourself thing
    things way ways make makes made many well still thanks thank please hi hello dear sir madam
    post posts article articles blog blogs site website page content information info topic
    read reading share sharing shared writing written write wrote author great good nice useful
    helpful informative amazing awesome wonderful excellent fantastic love enjoyed enjoy keep work
    job time people need needs want know find look take give feel felt first last next best
    better less back come came going done day days week weeks year years today new old right sure
    help helps helped tips link links url"""
)

_TLDS = (
    "com|net|org|info|biz|io|co|us|uk|in|xyz|online|site|top|ru|me|shop|store|club|pro|"
    "click|link|live|app|dev|example|test"
)
# A URL in prose; trailing sentence punctuation is not part of it.
_URL = re.compile(r"""(?:https?://|www\.)[^\s<>"'\])]*[^\s<>"'\]).,;:!?]""", re.I)
# A domain without a scheme. The ending must be lower case: "it worked.In the end" (a
# missing space after a full stop) is prose, "JobSite.com" is an address.
_BARE_DOMAIN = re.compile(
    rf"(?<![\w@/.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?:{_TLDS})\b(?!\.\w)"
    r"(?:/[^\s<>\"')\]]*[^\s<>\"')\].,;:!?])?"
)
_SHORTENERS = frozenset(
    {"bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "cutt.ly", "rb.gy"}
)
# Web addresses written so that no link checker sees them. The spaced forms are matched in
# lower case only and with a short list of endings, so that prose ("for example. Example",
# "the meeting . Online ones", "my polka dot top", "the dot com bubble") is left alone.
_SPACED_TLDS = "com|net|org|info|biz|io|uk|xyz|online|site|ru|shop|store|club"
_DOT_TLDS = "com|net|org|info|biz|io|ru|xyz"
_DOT_COM_ERA = r"(?!\s+(?:bubble|boom|bust|crash|era|days|years|times|mania|start-?ups?|compan))"
_OBFUSCATED = (
    # example dot com, example(dot)com, example [dot] net
    re.compile(
        rf"\b(?!(?:the|a|an|early|late|old)\b)[a-z0-9-]{{2,}}\s*[\[({{]?\s*dot\s*[\])}}]?\s*"
        rf"(?:{_DOT_TLDS})\b{_DOT_COM_ERA}",
        re.I,
    ),
    re.compile(r"\bh[x*]{2}ps?\b|\bh\s+t\s+t\s+p", re.I),  # hxxp://, h t t p
    re.compile(r"\bwww\s*\.\s+\S+|\bwww\s+\.\s*\S+|\bw\s+w\s+w\b\S*", re.I),  # www .site, w w w
    re.compile(rf"\b[a-z0-9-]{{2,}}\s+\.\s*(?:{_SPACED_TLDS})\b"),  # site .com, site . com
    re.compile(rf"\b[a-z0-9-]{{2,}}\.\s+(?:{_SPACED_TLDS})\b"),  # site. com
    re.compile(r"[\[(]\s*\.\s*[\])]|\[dot\]|\(dot\)", re.I),  # site[.]com, site(.)com
    re.compile(r"\bslash\s*slash\b|:\s+/\s*/", re.I),  # http: //, slash slash
)
_HTML_LINK = re.compile(r"<\s*a\s[^>]*href", re.I)
_BBCODE_LINK = re.compile(r"\[(?:url|link)\s*=", re.I)
_EMAIL_IN_TEXT = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ().-]{8,}\d(?!\w)")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

# Points per signal: a strong one is spam on its own, a weak one only with company.
STRONG = 5
FIRM = 3
WEAK = 1


# -- helpers ----------------------------------------------------------------------------------


def _lower(text: str) -> str:
    """Lower case with compatibility forms folded (full-width letters, ligatures) and
    typographic apostrophes made plain, so phrase matching sees what a reader sees."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _words(text: str) -> list[str]:
    return _WORD.findall(_lower(text))


def _phrases_in(text: str, phrases: Iterable[str]) -> list[str]:
    """Phrases that occur in ``text`` on word boundaries (case-insensitive)."""
    low = " ".join(_lower(text).split())
    found = []
    for phrase in phrases:
        p = _lower(phrase).strip()
        if not p:
            continue
        left = r"\b" if p[0].isalnum() else ""
        right = r"\b" if p[-1].isalnum() else ""
        if re.search(left + re.escape(p).replace(r"\ ", r"\s+") + right, low):
            found.append(phrase)
    return found


def _stem(word: str) -> str:
    """A crude stem, enough for 'questions' to meet 'question' and 'introduced' to meet
    'introduce'."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if len(w) >= 4 and w not in STOPWORDS}


def _without_links(text: str) -> str:
    return _BARE_DOMAIN.sub(" ", _URL.sub(" ", text))


def _quote(items: Iterable[str]) -> str:
    return ", ".join(f"'{i}'" for i in items)


def _similar(words: list[str], others: Iterable[str], settings: SpamSettings) -> bool:
    """True when ``words`` and one of ``others`` are the same text give or take a few
    words (links and case ignored)."""
    if len(words) < settings.duplicate_min_words:
        return False
    for other in others:
        theirs = _words(_without_links(other))
        if len(theirs) < settings.duplicate_min_words:
            continue
        matcher = difflib.SequenceMatcher(None, words, theirs, autojunk=False)
        if (
            matcher.real_quick_ratio() >= settings.duplicate_ratio
            and matcher.quick_ratio() >= settings.duplicate_ratio
            and matcher.ratio() >= settings.duplicate_ratio
        ):
            return True
    return False


def _script(text: str) -> str | None:
    """The writing system most of the letters belong to ("LATIN", "CYRILLIC", "CJK", ...)."""
    counts: dict[str, int] = {}
    for char in unicodedata.normalize("NFKC", text or ""):
        if char.isalpha():
            name = unicodedata.name(char, "")
            if name:
                key = name.split()[0]
                counts[key] = counts.get(key, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def _host(url: str) -> str:
    return canonical_url(url).split("/", 1)[0]


# -- the rules --------------------------------------------------------------------------------


def judge(comment: Judgeable, context: SpamContext, rules: SpamSettings) -> Verdict:
    """Score ``comment`` on signals that need no online service; return spam or pending.

    Pure: the same comment, context and rules always give the same verdict.
    """
    score = 0
    reasons: list[str] = []

    def signal(points: int, reason: str) -> None:
        nonlocal score
        score += points
        reasons.append(f"{reason} (+{points})")

    # Compatibility forms folded first: "ｗｗｗ．ｃａｓｉｎｏ" is read as a reader would read it.
    author = unicodedata.normalize("NFKC", comment.author or "")
    text = unicodedata.normalize("NFKC", comment.text or "")
    url = (comment.url or "").strip()
    commercial = (*COMMERCIAL_PHRASES, *rules.keywords)

    # The name: a person, or keywords for a search engine?
    name_phrases = _phrases_in(author, commercial)
    name_words = [w for w in _words(author) if w in NAME_WORDS]
    if _URL.search(author) or _BARE_DOMAIN.search(author) or "@" in author:
        signal(STRONG, f"the name is a web or e-mail address: '{author}'")
    elif name_phrases or len(set(name_words)) >= 2:
        signal(
            STRONG,
            f"the name is keywords, not a person: '{author}' "
            f"({_quote(name_phrases or sorted(set(name_words)))})",
        )
    elif name_words:
        signal(WEAK, f"the name contains a commercial word: '{name_words[0]}'")

    # Links: how many, how written.
    links = _URL.findall(text)
    bare = [m.group(0) for m in _BARE_DOMAIN.finditer(_URL.sub(" ", text))]  # not in a URL
    total = len(links) + len(bare)
    if total > rules.max_links:
        signal(FIRM + 1, f"{total} links in the text (more than {rules.max_links})")
    elif total:
        what = "a link" if total == 1 else f"{total} links"
        signal(total, f"{what} in the text: {_quote([*links, *bare][:2])}")
    if bare:
        signal(WEAK + 1, f"a web address written without http: {_quote(bare[:3])}")
    obfuscated = [m.group(0) for p in _OBFUSCATED for m in p.finditer(text)]
    if obfuscated:
        signal(STRONG, f"a disguised web address: {_quote(dict.fromkeys(obfuscated))}")
    if _BBCODE_LINK.search(text):
        signal(FIRM + 1, "BBCode link markup ([url=...]), which no blog reader writes here")
    elif _HTML_LINK.search(text):
        signal(FIRM, "HTML link markup in the text")
    hosts = [_host(u) for u in [*links, *([url] if url else [])]]
    shorteners = sorted({h for h in hosts if h in _SHORTENERS})
    if shorteners:
        signal(FIRM + 1, f"a link shortener hides the destination: {_quote(shorteners)}")
    if url and any(_host(link) == _host(url) for link in links):
        signal(WEAK + 1, "the text links to the author's own site")

    # Commercial and link-drop wording.
    text_phrases = _phrases_in(text, commercial)
    if text_phrases:
        points = sum(1 if p in AMBIGUOUS_PHRASES else 2 for p in text_phrases)
        signal(min(points, 6), f"commercial wording: {_quote(text_phrases[:4])}")
    drops = _phrases_in(text, LINK_DROP_PHRASES)
    if drops:
        signal(min(FIRM * len(drops), 6), f"link-drop wording: {_quote(drops[:3])}")
    phones = [m for m in _PHONE.findall(text) if sum(c.isdigit() for c in m) >= 9]
    if _EMAIL_IN_TEXT.search(text) or phones:
        signal(WEAK + 1, "contact details (an e-mail address or phone number) in the text")

    # The author's URL: commercial, or the only thing the comment carries.
    if url:
        url_words = set(_words(_host(url).replace("-", " ").replace(".", " ")))
        url_hits = sorted(url_words & NAME_WORDS)
        if len(url_hits) >= 2 or _phrases_in(_host(url).replace("-", " "), commercial):
            signal(FIRM, f"the author's URL looks commercial: {_host(url)}")

    # Praise that fits any post, and text that says nothing of this post.
    body = _without_links(text)
    words = _words(body)
    content = _content_words(body)
    praise = _phrases_in(body, PRAISE_PHRASES)
    post_words = _content_words(context.post_text)
    shared = content & post_words
    if praise and context.post_text and not shared:
        signal(FIRM, f"generic praise that shares no words with the post: {_quote(praise[:3])}")
    elif praise and not context.post_text and len(content) <= 2:
        signal(WEAK, f"praise only, with nothing about the post: {_quote(praise[:3])}")
    elif context.post_text and not shared and (links or bare):
        signal(WEAK + 1, "an off-topic comment (no words shared with the post) with a link")
    elif context.post_text and len(content) >= 4 and not shared:
        signal(WEAK, "shares no words with the post")
    script, post_script = _script(body), _script(context.post_text)
    if script and post_script and script != post_script:
        signal(WEAK, f"written in another script than the post ({script.title()})")
    if (links or bare) and len(words) <= 3:
        signal(FIRM, "the text is little more than a link")
    if url and (len(content) <= 1 or (praise and not shared)):
        signal(FIRM, "the author's URL is the only payload: the text says nothing")

    # The same text elsewhere.
    if _similar(words, context.spam_texts, rules):
        signal(STRONG + 1, "the same text as a comment already marked spam")
    elif _similar(words, context.other_texts, rules):
        signal(STRONG, "the same text as a comment under another post")

    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 20 and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        signal(WEAK, "mostly capital letters")

    if score >= rules.spam_score:
        reasons.append(f"score {score} reaches the spam threshold {rules.spam_score}: spam")
        return Verdict("spam", tuple(reasons), score)
    if not reasons:
        reasons.append("no spam signals")
    reasons.append(
        f"score {score} is below the spam threshold {rules.spam_score}: pending, "
        "held for the host's approval"
    )
    return Verdict("pending", tuple(reasons), score)
