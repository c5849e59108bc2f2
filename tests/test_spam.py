"""Spam rules: a pure verdict with reasons, checked on a corpus we wrote and on each signal.

The corpus is tests/comments_corpus/{spam,genuine}.toml: comments under the real posts in
content/posts/, judged with the post's own text as context and every other corpus comment
under another post as the "other posts" texts (so text posted under two posts is seen).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from blog_carnival.comments import IncomingComment
from blog_carnival.errors import ConfigError
from blog_carnival.spam import (
    DEFAULTS,
    SpamContext,
    SpamSettings,
    Verdict,
    judge,
    spam_settings,
)
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "comments_corpus"
POSTS = ROOT / "content" / "posts"
RULES = SpamSettings()


def post_text(slug: str) -> str:
    """A post's title and body (the header lines before the first blank line dropped)."""
    path = next(p for p in POSTS.glob("*.md") if re.search(rf"^Slug: {slug}$", p.read_text(), re.M))
    header, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    title = re.search(r"^Title: (.*)$", header, re.M)
    assert title, path
    return f"{title.group(1)}\n\n{body}"


def load(kind: str) -> list[dict]:
    items = tomllib.loads((CORPUS / f"{kind}.toml").read_text(encoding="utf-8"))["comment"]
    return [{**item, "class": kind} for item in items]


GENUINE = load("genuine")
SPAM = load("spam")
ALL = GENUINE + SPAM


def context_for(item: dict) -> SpamContext:
    return SpamContext(
        post_text=post_text(item["post"]),
        other_texts=tuple(o["text"] for o in ALL if o["post"] != item["post"]),
    )


def incoming(item: dict) -> IncomingComment:
    return IncomingComment(
        author=item["author"], text=item["text"], url=item.get("url"), email=item.get("email")
    )


def verdict_for(item: dict, rules: SpamSettings = RULES) -> Verdict:
    return judge(incoming(item), context_for(item), rules)


def one(author: str = "Robin Vale", text: str = "", url: str | None = None) -> IncomingComment:
    return IncomingComment(author=author, text=text, url=url)


COFFEE = post_text("who-pays-for-coffee")


# -- the corpus -------------------------------------------------------------------------------


def test_the_corpus_is_big_varied_and_well_formed():
    assert len(GENUINE) >= 35 and len(SPAM) >= 35
    ids = [item["id"] for item in ALL]
    assert len(ids) == len(set(ids)), "corpus ids must be unique"
    slugs = {item["post"] for item in ALL}
    assert len(slugs) >= 8, "comments should sit under most posts"
    for item in ALL:
        assert item["author"] and item["text"] and item["about"], item["id"]
        assert post_text(item["post"]), item["id"]
    assert sum("url" in i for i in GENUINE) >= 10, "genuine readers who link their own site"
    assert sum("url" not in i for i in GENUINE) >= 10


@pytest.mark.parametrize("item", GENUINE, ids=[i["id"] for i in GENUINE])
def test_a_genuine_comment_is_never_spam(item):
    verdict = verdict_for(item)
    assert verdict.status == "pending", verdict.reasons


@pytest.mark.parametrize("item", SPAM, ids=[i["id"] for i in SPAM])
def test_a_spam_comment_is_never_approved_and_trips_a_signal(item):
    verdict = verdict_for(item)
    assert verdict.status in ("spam", "pending")
    assert verdict.score > 0, f"no signal at all for {item['id']}"


def test_at_least_90_percent_of_the_spam_is_spam():
    missed = [i["id"] for i in SPAM if verdict_for(i).status != "spam"]
    rate = 1 - len(missed) / len(SPAM)
    # Today: 39 of 41 (95%); the two pending are a bare "Awesome blog! Bookmarked." and a
    # plumber's advert with a phone number, both held back, never shown.
    assert rate >= 0.9, f"spam rate {rate:.0%}, pending instead of spam: {missed}"


def test_the_seed_comment_is_spam_for_the_reasons_it_shows():
    seed = next(i for i in SPAM if i["id"] == "seed-find-job-search")
    verdict = verdict_for(seed)
    assert verdict.status == "spam"
    text = "\n".join(verdict.reasons)
    assert "the name is keywords, not a person: 'find job search'" in text
    assert "'the url is'" in text and "'useful info'" in text
    assert "https://jobsite.example/find-jobs" in text
    # Spam even judged alone, with no post and no other comments to compare with.
    assert judge(incoming(seed), SpamContext(), RULES).status == "spam"


def test_the_issue_examples_of_genuine_readers_are_not_spam():
    thanks = one(
        "Priya Raman",
        "Thanks, the three-question rule worked for my coffee chat with a former manager",
    )
    own_blog = one(
        "Kwame Asante",
        "Offering two or three specific times instead of 'whenever works' got me a yes the same day.",
        url="https://kwame-writes.example/",
    )
    for comment in (thanks, own_blog):
        for context in (SpamContext(post_text=COFFEE), SpamContext()):
            verdict = judge(comment, context, RULES)
            assert verdict == Verdict("pending", verdict.reasons, 0), verdict.reasons


# -- verdicts and reasons ---------------------------------------------------------------------


@pytest.mark.parametrize("item", ALL, ids=[i["id"] for i in ALL])
def test_reasons_are_sentences_a_host_can_read(item):
    verdict = verdict_for(item)
    assert verdict.reasons, "a verdict always says why"
    for reason in verdict.reasons:
        assert isinstance(reason, str) and "\n" not in reason and len(reason) < 300
        assert re.match(r"[\w'\"]", reason), reason
        assert "object at 0x" not in reason and "None" not in reason, reason
    signals = [r for r in verdict.reasons[:-1] if r != "no spam signals"]
    assert sum(int(p) for p in re.findall(r"\(\+(\d+)\)$", "\n".join(signals), re.M)) == (
        verdict.score
    ), "each signal's points add up to the score"
    assert verdict.reasons[-1].startswith(f"score {verdict.score} ")
    assert verdict.reasons[-1].endswith(
        "spam" if verdict.status == "spam" else "held for the host's approval"
    )


def test_judge_is_pure():
    item = SPAM[0]
    assert verdict_for(item) == verdict_for(item)


@given(
    author=st.text(max_size=60),
    text=st.text(max_size=400),
    url=st.one_of(st.none(), st.text(max_size=80)),
    post=st.text(max_size=200),
)
def test_judge_never_approves_and_never_raises(author, text, url, post):
    verdict = judge(one(author, text, url), SpamContext(post_text=post, other_texts=(text,)), RULES)
    assert verdict.status in ("spam", "pending")
    assert verdict.reasons


# -- the host's settings ----------------------------------------------------------------------


def test_host_keywords_extend_the_built_in_list():
    text = "Zorblax capsules keep me sharp before every coffee meeting."
    comment = one("Robin Vale", text)
    plain = judge(comment, SpamContext(post_text=COFFEE), RULES)
    assert not any("zorblax" in r.lower() for r in plain.reasons)
    extended = SpamSettings(keywords=("Zorblax",))
    verdict = judge(comment, SpamContext(post_text=COFFEE), extended)
    assert "commercial wording: 'Zorblax' (+2)" in verdict.reasons
    assert verdict.score == plain.score + 2
    # ... and as a name it is a keyword name: spam.
    named = judge(
        one("Zorblax Official", "Good point about arriving early."), SpamContext(), extended
    )
    assert named.status == "spam"
    assert any("the name is keywords" in r and "'Zorblax'" in r for r in named.reasons)


def test_spam_settings_from_the_host_settings():
    assert spam_settings({}) == SpamSettings()
    assert SpamSettings().spam_score == DEFAULTS["COMMENTS_SPAM_SCORE"]
    rules = spam_settings(
        {
            "COMMENTS_TRUSTED": ["jo@example.org", " https://friend.example/ "],
            "COMMENTS_SPAM_KEYWORDS": "zorblax",
            "COMMENTS_SPAM_SCORE": 7,
            "COMMENTS_MAX_LINKS": 1,
            "SITENAME": "not ours",
        }
    )
    assert rules.trusted == frozenset({"jo@example.org", "https://friend.example/"})
    assert rules.keywords == ("zorblax",)
    assert (rules.spam_score, rules.max_links) == (7, 1)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("COMMENTS_TRUSTED", 42),
        ("COMMENTS_SPAM_KEYWORDS", ["ok", 3]),
        ("COMMENTS_SPAM_SCORE", 0),
        ("COMMENTS_SPAM_SCORE", "5"),
        ("COMMENTS_MAX_LINKS", True),
    ],
)
def test_a_bad_setting_is_an_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        spam_settings({key: value})
    assert f"comments: {key}: expected" in str(err.value)


def test_a_higher_threshold_turns_spam_into_pending():
    comment = one("Sarah", "Great post, very informative.", url="https://sarahs-deals.example/")
    context = SpamContext(post_text=COFFEE)
    assert judge(comment, context, RULES).status == "spam"
    assert judge(comment, context, SpamSettings(spam_score=50)).status == "pending"


@pytest.mark.parametrize(
    ("email", "url", "trusted"),
    [
        ("jo@example.org", None, True),
        ("JO@Example.ORG ", None, True),
        ("jo@example.org.evil", None, False),
        (None, "https://friend.example/", True),
        (None, "http://www.friend.example", True),  # canonical: scheme, www and slash aside
        (None, "https://friend.example/?utm_source=x", True),
        (None, "https://friend.example/other-page", False),
        (None, "https://friend.example.evil/", False),
        (None, None, False),
        ("", "", False),
    ],
)
def test_the_trusted_list(email, url, trusted):
    rules = SpamSettings(trusted=frozenset({"Jo@example.org", "https://friend.example/"}))
    assert rules.is_trusted(email, url) is trusted


# -- one signal at a time ---------------------------------------------------------------------


def reasons(comment: IncomingComment, context: SpamContext | None = None) -> str:
    return "\n".join(judge(comment, context or SpamContext(post_text=COFFEE), RULES).reasons)


@pytest.mark.parametrize(
    "name",
    [
        "find job search",
        "best resume writing service",
        "Cheap Loans Online",
        "SEO Agency",
        "payday loan",
        "jobsite.example",
        "https://jobsite.example",
        "jobs@jobsite.example",
    ],
)
def test_keywords_or_addresses_for_a_name(name):
    verdict = judge(one(name, "Arriving early helped me."), SpamContext(post_text=COFFEE), RULES)
    assert verdict.status == "spam", verdict.reasons
    assert "the name is" in verdict.reasons[0]


@pytest.mark.parametrize(
    "name", ["Robin Vale", "Pete Best", "Dr. Samuel Adeyemi", "chris", "Zoë Ångström", "李娜"]
)
def test_people_names_are_not_keywords(name):
    assert "the name is" not in reasons(one(name, "Arriving ten minutes early helped me."))


@pytest.mark.parametrize(
    "text",
    [
        "best jobs at example dot com",
        "see jobsite (dot) net today",
        "go to jobsite [dot] org",
        "hxxp://jobsite.example/x",
        "hxxps://jobsite.example/x",
        "visit www .jobsite. com",
        "VISIT WWW .JOBSITE. COM",
        "visit www. jobsite.com",
        "visit jobsite . com",
        "jobsite. com has more",
        "jobsite[.]com",
        "w w w jobsite",
        "h t t p : / / jobsite",
    ],
)
def test_disguised_web_addresses(text):
    assert "a disguised web address" in reasons(one(text=text))


@pytest.mark.parametrize(
    "text",
    [
        "For example. Example two is harder.",
        "I work in telecom. Coffee helps.",
        "We met at 9.30 and I paid. Com-pletely fine.",
        "The dot on the map was the café.",
        "Arriving ten minutes early and ordering first: e.g. a tea.",
        "I wore my polka dot top to the coffee meeting.",
        "I lost my first job when the dot com bubble burst.",
        "Back in the early dot com days we met in person.",
        "I prefer meeting . Online ones tire me.",
    ],
)
def test_ordinary_prose_is_not_a_disguised_address(text):
    assert "disguised" not in reasons(one(text=text))


def test_links_are_counted_and_trailing_punctuation_is_not_part_of_them():
    text = "See https://a.example/x. And https://b.example/y, too."
    assert "2 links in the text: 'https://a.example/x', 'https://b.example/y' (+2)" in reasons(
        one(text=text)
    )
    many = " ".join(f"https://s{n}.example/" for n in range(3))
    assert "3 links in the text (more than 2) (+4)" in reasons(one(text=many))
    assert "1 link" not in reasons(one(text="No links here at all, only coffee."))


def test_a_bare_domain_counts_as_a_link():
    text = "I found the café on citymap.example before the coffee meeting."
    assert "a web address written without http: 'citymap.example'" in reasons(one(text=text))
    assert "'JobSite.com/open'" in reasons(one(text="See JobSite.com/open."))
    # ... but an e-mail address is not one, nor a missing space after a full stop.
    assert "without http" not in reasons(one(text="Write to jo@citymap.example about coffee."))
    assert "without http" not in reasons(one(text="It worked.In the end.Me and a friend went."))


def test_generic_praise_that_shares_no_words_with_the_post():
    generic = one(text="Great post, thanks for sharing! Keep up the good work.")
    assert "generic praise that shares no words with the post" in reasons(generic)
    specific = one(text="Great post: going to the counter together to pay settled it for me.")
    assert "generic praise" not in reasons(specific)


def test_the_authors_url_as_the_only_payload():
    bare = one(text="Nice.", url="https://robinvale.example/")
    assert "the author's URL is the only payload" in reasons(bare)
    real = one(
        text="Suggesting a place near their office made all the difference.",
        url="https://robinvale.example/",
    )
    assert judge(real, SpamContext(post_text=COFFEE), RULES).score == 0


def test_text_posted_under_another_post_is_spam_and_short_texts_are_exempt():
    text = "What a helpful read, I will definitely come back for more of these tips soon."
    edited = "What a helpful read, I will surely come back for more of these tips soon!"
    context = SpamContext(post_text=COFFEE, other_texts=("Something else entirely.", edited))
    verdict = judge(one(text=text), context, RULES)
    assert verdict.status == "spam"
    assert "the same text as a comment under another post (+5)" in verdict.reasons
    short = SpamContext(post_text=COFFEE, other_texts=("Thanks!",))
    assert "the same text" not in reasons(one(text="Thanks!"), short)
    different = SpamContext(post_text=COFFEE, other_texts=(GENUINE[1]["text"],))
    assert "the same text" not in reasons(one(text=GENUINE[2]["text"]), different)


def test_a_copy_of_known_spam_weighs_more():
    spam = "Arrive early and pay for both coffees, then ask about their team and take notes."
    verdict = judge(one(text=spam), SpamContext(post_text=COFFEE, spam_texts=(spam,)), RULES)
    assert "the same text as a comment already marked spam (+6)" in verdict.reasons
    assert verdict.status == "spam"


def test_link_drop_wording():
    text = "Here's some useful info on coffee meetings. The url is: https://x.example/"
    assert "link-drop wording: 'the url is', 'useful info' (+6)" in reasons(one(text=text))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("More here: https://bit.ly/abc123", "a link shortener hides the destination: 'bit.ly'"),
        ('<a href="https://x.example/">coffee</a>', "HTML link markup in the text"),
        ("[url=https://x.example/]coffee[/url]", "BBCode link markup"),
        ("CALL NOW FOR THE BEST COFFEE DEALS IN TOWN", "mostly capital letters"),
        ("Call me on +1 555 010 2233 about coffee", "contact details"),
        (
            "Ｖｉｓｉｔ ｗｗｗ．ｊｏｂｓｉｔｅ．ｃｏｍ ｔｏｄａｙ",
            "a link in the text: 'www.jobsite.com'",
        ),
        ("https://x.example/coffee", "the text is little more than a link"),
        ("Кофе онлайн без отказа, пишите сейчас", "written in another script than the post"),
    ],
)
def test_other_signals(text, reason):
    assert reason in reasons(one(text=text))


@pytest.mark.parametrize(
    "text", ["We met on 2026-11-20 at 10:15.", "It cost $40,000 over 12 months.", "From 1990-2005."]
)
def test_dates_and_amounts_are_not_phone_numbers(text):
    assert "contact details" not in reasons(one(text=text))


def test_a_link_to_the_authors_own_site_in_the_text():
    comment = one(
        text="I wrote about paying for coffee here: https://robinvale.example/coffee",
        url="https://www.robinvale.example/",
    )
    assert "the text links to the author's own site (+2)" in reasons(comment)
