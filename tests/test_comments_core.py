"""Comments as files: the format, loading, adding, moderation and comments by e-mail.

Real files in a temporary folder, real e-mail messages (tests/comments_corpus/mail/), an
injected clock; no Pelican.
"""

from __future__ import annotations

import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from blog_carnival import comments
from blog_carnival.comments import (
    AddResult,
    Comment,
    CommentError,
    CommentFormatError,
    IncomingComment,
    ReplyError,
    UnknownCommentError,
    UnknownPostError,
    add_comment,
    comment_from_email,
    format_comment,
    load_comments,
    new_comment_id,
    parse_comment,
    pending,
    set_status,
)
from blog_carnival.errors import CarnivalError
from blog_carnival.spam import SpamSettings
from hypothesis import given
from hypothesis import strategies as st

MAIL = Path(__file__).parent / "comments_corpus" / "mail"
NOW = datetime(2026, 11, 20, 9, 15, 42, 123456, tzinfo=UTC)
CET = timezone(timedelta(hours=1))
SLUGS = {
    "who-pays-for-coffee": "Who Pays for the Coffee? Whoever asked for the meeting pays; "
    "arrive early, keep the clock, thank them within a day.",
    "networking-after-a-layoff": "Networking After a Layoff: tell people plainly, start with "
    "your warmest contacts, ask for something specific.",
}
RULES = SpamSettings()
GOOD = "Arriving ten minutes early and keeping the clock made my coffee meeting easy."

SAMPLE = """\
Author: Dana Whitfield
Date: 2026-11-20T10:15:00+01:00
Url: https://dana.example/
Email: dana@mail.example
Status: approved

Arriving early made the whole *conversation* calmer.

> quoted from the post
"""


def sample(**changes) -> Comment:
    base = Comment(
        id="20261120T091500Z-0a1b2c3d",
        post_slug="who-pays-for-coffee",
        author="Dana Whitfield",
        date=datetime(2026, 11, 20, 10, 15, tzinfo=CET),
        status="approved",
        text="Arriving early made the whole *conversation* calmer.",
        url="https://dana.example/",
        email="dana@mail.example",
        path=Path("c/who-pays-for-coffee/20261120T091500Z-0a1b2c3d.md"),
    )
    return replace(base, **changes)


def write(root: Path, slug: str, name: str, text: str | bytes) -> Path:
    path = root / slug / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def add(root: Path, slug: str = "who-pays-for-coffee", **kw) -> AddResult:
    args = dict(known_slugs=SLUGS, author="Robin Vale", text=GOOD, now=NOW, rules=RULES)
    args.update(kw)
    return add_comment(root, slug, **args)


# -- the format -------------------------------------------------------------------------------


def test_the_file_format_is_a_pelican_style_header_and_markdown():
    path = Path("c/who-pays-for-coffee/20261120T091500Z-0a1b2c3d.md")
    comment = parse_comment(SAMPLE, path, "who-pays-for-coffee")
    assert comment == sample(text=comment.text)
    assert comment.text == (
        "Arriving early made the whole *conversation* calmer.\n\n> quoted from the post"
    )
    assert comment.date.utcoffset() == timedelta(hours=1)  # the zone as written
    assert format_comment(comment) == SAMPLE


def test_every_field_round_trips():
    full = sample(reply_to="20261119T080000Z-99999999", source="https://x.example/p", kind="reply")
    text = format_comment(full)
    assert text.splitlines()[:8] == [
        "Author: Dana Whitfield",
        "Date: 2026-11-20T10:15:00+01:00",
        "Url: https://dana.example/",
        "Email: dana@mail.example",
        "Reply-To: 20261119T080000Z-99999999",
        "Status: approved",
        "Source: https://x.example/p",
        "Kind: reply",
    ]
    assert parse_comment(text, full.path, full.post_slug) == full


@pytest.mark.parametrize("text", ["ends with a CR\r", "\r\n", "\n\nblank lines around\n\n", ""])
def test_line_ends_of_the_text_itself_are_kept(text):
    comment = sample(text=text)
    assert parse_comment(format_comment(comment), comment.path, comment.post_slug) == comment


def test_empty_optional_values_mean_absent():
    assert sample(url="", email="").url is None
    header_only = "Author: A\nDate: 2026-11-20T10:15:00Z\nUrl:\nStatus: pending\n"
    comment = parse_comment(header_only, Path("p/x.md"), "p")
    assert (comment.url, comment.text) == (None, "")


SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=40
).map(str.strip)


@given(
    author=SAFE_TEXT.filter(bool),
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
    status=st.sampled_from(comments.STATUSES),
    minutes=st.integers(-14 * 60, 14 * 60),
    stamp=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
)
def test_parse_of_format_gives_the_same_comment(author, text, status, minutes, stamp):
    date = stamp.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    comment = sample(author=author, text=text, status=status, date=date)
    written = format_comment(comment)
    assert parse_comment(written, comment.path, comment.post_slug) == comment
    assert format_comment(parse_comment(written, comment.path, comment.post_slug)) == written


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author", "Mallory\nStatus: approved"),
        ("author", "Mallory\r\nStatus: approved"),
        ("author", "Mallory\rStatus: approved"),
        ("author", "Mallory\u2028Status: approved"),
        ("author", "Mallory\u0085Status: approved"),
        ("author", "Mallory\x0bStatus: approved"),
        ("author", "Mallory\x00"),
        ("author", " padded "),
        ("email", "m@x.example\nStatus: approved"),
        ("url", "https://x.example/\nStatus: approved"),
        ("reply_to", "abc\nStatus: approved"),
    ],
)
def test_a_header_value_cannot_inject_a_header_line(field, value):
    with pytest.raises(CommentFormatError) as err:
        format_comment(sample(status="pending", **{field: value}))
    assert "20261120T091500Z-0a1b2c3d.md" in str(err.value)


@pytest.mark.parametrize("author", ["Mallory\nStatus: approved", "Mallory\u2028Status: approved"])
def test_add_comment_folds_a_line_break_in_a_header_value(tmp_path, author):
    result = add(tmp_path, author=author, email="m@x.example\r\n")
    assert result.comment.author == "Mallory Status: approved"
    stored = load_comments(tmp_path).get(result.comment.id)
    assert stored == result.comment
    assert (stored.status, stored.email) == ("pending", "m@x.example")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("url", "https://x.example/\nStatus: approved", "Url: "),
        ("url", "javascript:alert(1)", "Url: "),
        ("email", "m@x.example\nStatus: approved", "Email: "),
        ("source", "ftp://x.example/", "Source: "),
        ("kind", "boost", "Kind: "),
    ],
)
def test_add_comment_refuses_a_bad_url_email_or_kind(tmp_path, field, value, reason):
    with pytest.raises(CommentError) as err:
        add(tmp_path, **{field: value})
    assert str(err.value).startswith(f"comments: {reason}")
    assert not (tmp_path / "who-pays-for-coffee").exists()


def test_header_lines_in_the_text_stay_text():
    text = "Status: approved\nAuthor: Someone Else\n\nreal text"
    comment = sample(status="spam", text=text)
    parsed = parse_comment(format_comment(comment), comment.path, comment.post_slug)
    assert (parsed.status, parsed.author, parsed.text) == ("spam", "Dana Whitfield", text)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("", None, "is empty"),
        ("\nAuthor: A\n", None, "no header"),
        ("Hello there\n\ntext", None, "no header"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nthis is text\n", None, "line 3 is not"),
        ("Date: 2026-11-20T10:15:00Z\nStatus: pending\n\nx", "Author", "missing"),
        ("Author: A\nStatus: pending\n\nx", "Date", "missing"),
        ("Author: A\nDate: 2026-11-20\nStatus: pending\n\nx", "Date", "time zone"),
        ("Author: A\nDate: 2026-11-20T10:15:00\nStatus: pending\n\nx", "Date", "time zone"),
        ("Author: A\nDate: 20 Nov 2026\nStatus: pending\n\nx", "Date", "ISO 8601"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\n\nx", "Status", "missing (approved"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: ok\n\nx", "Status", "'ok' is not"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStauts: spam\n\n", "Stauts", "'Status'?"),
        ("Author: A\nAuthor: B\n\n", "Author", "given twice"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nUrl: javascript:alert(1)\n\n", "Url", "not an absolute http(s) URL"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nEmail: nobody\n\n", "Email", "not an e-mail"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nReply-To: x\n\n", "Reply-To", "itself"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nReply-To: ../etc\n\n", "Reply-To", "safe name"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nKind: like\n\n", "Kind", "needs its Source"),
        ("Author: A\nDate: 2026-11-20T10:15:00Z\nStatus: spam\nSource: https://s.example/\nKind: boost\n\n", "Kind", "not one of"),
        ("Author: A\x0b\nDate: 2026-11-20T10:15:00Z\nStatus: spam\n\n", "Author", "control"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_an_error_naming_the_file_and_field(text, field, reason):
    path = Path("content/comments/who-pays-for-coffee/x.md")
    with pytest.raises(CommentFormatError) as err:
        parse_comment(text, path, "who-pays-for-coffee")
    message = str(err.value)
    where = f"comments: {path}: {field}: " if field else f"comments: {path}: "
    assert message.startswith(where), message
    assert reason in message
    assert err.value.problem.field == field
    assert isinstance(err.value, CarnivalError)


def test_crlf_and_a_byte_order_mark_are_read():
    text = "\ufeff" + SAMPLE.replace("\n", "\r\n")
    comment = parse_comment(text, Path("p/x.md"), "p")
    assert comment.author == "Dana Whitfield" and comment.status == "approved"
    assert comment.text.startswith("Arriving early") and not comment.text.endswith("\r\n")


def test_header_keys_are_read_in_any_case():
    text = "author:A\nDATE: 2026-11-20T10:15:00Z\nstatus :  pending\nreply-to: abc\n\nx"
    comment = parse_comment(text, Path("p/x.md"), "p")
    assert (comment.author, comment.status, comment.reply_to) == ("A", "pending", "abc")


# -- loading ----------------------------------------------------------------------------------


def test_load_keeps_going_past_a_bad_file(tmp_path):
    good = format_comment(sample(path=None))
    write(tmp_path, "who-pays-for-coffee", "20261120T091500Z-0a1b2c3d.md", good)
    write(tmp_path, "who-pays-for-coffee", "broken.md", "Author: A\nDate: yesterday\n\nx")
    write(tmp_path, "who-pays-for-coffee", "latin1.md", "Author: Zoë\n".encode("latin-1"))
    write(tmp_path, "who-pays-for-coffee", ".20261120.md.abc.tmp", "half a fi")
    write(tmp_path, "who-pays-for-coffee", ".hidden.md", "not a comment")
    write(tmp_path, "", "stray.md", good)
    result = load_comments(tmp_path)
    assert [c.id for c in result] == ["20261120T091500Z-0a1b2c3d"]
    assert len(result.problems) == 3
    problems = "\n".join(str(p) for p in result.problems)
    assert f"comments: {tmp_path / 'who-pays-for-coffee' / 'broken.md'}: Date: " in problems
    assert "latin1.md: is not UTF-8 (byte 10)" in problems
    assert "stray.md: not in a post's folder" in problems


def test_load_of_a_missing_folder_is_empty(tmp_path):
    result = load_comments(tmp_path / "nothing")
    assert len(result) == 0 and result.problems == ()


def test_load_orders_by_date_and_checks_replies_ids_and_slugs(tmp_path):
    def put(slug, name, hour, **kw):
        c = sample(id=name, post_slug=slug, date=datetime(2026, 11, 20, hour, tzinfo=UTC), **kw)
        write(tmp_path, slug, f"{name}.md", format_comment(replace(c, path=None)))

    put("who-pays-for-coffee", "b", 9)
    put("who-pays-for-coffee", "a", 10, reply_to="b")
    put("who-pays-for-coffee", "c", 11, reply_to="a")  # a reply to a reply
    put("who-pays-for-coffee", "d", 12, reply_to="gone")
    put("no-such-post", "b", 8)  # the same id under another post
    result = load_comments(tmp_path, known_slugs=SLUGS)
    assert [c.id for c in result.by_post["who-pays-for-coffee"]] == ["b", "a", "c", "d"]
    problems = "\n".join(str(p) for p in result.problems)
    assert "no-such-post: no post has the slug 'no-such-post'" in problems
    assert "c.md: Reply-To: 'a' is itself a reply (replies are one level deep)" in problems
    assert "d.md: Reply-To: no comment 'gone' here" in problems
    assert "b.md: the same id as" in problems
    assert result.for_post("who-pays-for-coffee") == result.by_post["who-pays-for-coffee"]
    assert result.for_post("who-pays-for-coffee", statuses=("spam",)) == ()


# -- ids --------------------------------------------------------------------------------------


def test_comment_ids_sort_by_time_and_are_safe_file_names():
    first = new_comment_id(NOW, "text")
    later = new_comment_id(NOW + timedelta(seconds=1), "text")
    assert first < later
    assert first.startswith("20261120T091542Z-")
    assert new_comment_id(NOW.astimezone(CET), "text") == first  # the zone does not matter
    assert comments._NAME.fullmatch(first) and first.isascii()
    assert new_comment_id(NOW, "other text") != first
    assert new_comment_id(NOW, "text", taken={first}) not in {first}
    with pytest.raises(ValueError):
        new_comment_id(datetime(2026, 11, 20), "naive clock")


# -- adding -----------------------------------------------------------------------------------


def test_add_writes_a_pending_comment_and_returns_what_it_did(tmp_path):
    result = add(tmp_path, url="https://robinvale.example/", email="robin@mail.example")
    comment = result.comment
    assert result.path == tmp_path / "who-pays-for-coffee" / f"{comment.id}.md"
    assert comment.path == result.path
    assert result.status == comment.status == "pending" and not result.trusted
    assert comment.date == NOW.replace(microsecond=0)
    assert parse_comment(result.path.read_text(), result.path, "who-pays-for-coffee") == comment
    lines = result.lines()
    assert lines[0] == f"pending: {result.path} (id {comment.id})"
    assert lines[-1].startswith("  - score 0 is below the spam threshold 5: pending")
    assert sorted(p.name for p in result.path.parent.iterdir()) == [result.path.name]


def test_add_prints_the_verdict_and_reasons_for_the_seed(tmp_path):
    result = add(
        tmp_path,
        "networking-after-a-layoff",
        author="find job search",
        text="Here's some useful info on the job hunt, new openings daily. "
        "The url is: https://jobsite.example/find-jobs",
    )
    assert result.status == "spam" and result.verdict.status == "spam"
    printed = "\n".join(result.lines())
    assert printed.startswith("spam: ")
    assert "  - the name is keywords, not a person: 'find job search'" in printed
    assert "link-drop wording" in printed
    assert load_comments(tmp_path).get(result.comment.id).status == "spam"


def test_an_unknown_post_slug_is_an_error(tmp_path):
    with pytest.raises(UnknownPostError) as err:
        add(tmp_path, "who-pays-for-cofee")
    assert "no post has the slug 'who-pays-for-cofee' (did you mean 'who-pays-for-coffee'?)" in str(
        err.value
    )
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_known_slugs_can_be_a_plain_collection(tmp_path):
    result = add(tmp_path, known_slugs=["who-pays-for-coffee"])
    assert result.status == "pending"


def test_replies_are_one_level_deep(tmp_path):
    parent = add(tmp_path).comment
    reply = add(tmp_path, text="Agreed, and ask what they would like.", reply_to=parent.id).comment
    assert reply.reply_to == parent.id
    assert load_comments(tmp_path).problems == ()
    with pytest.raises(ReplyError) as err:
        add(tmp_path, text="A reply to the reply.", reply_to=reply.id)
    assert f"'{reply.id}' is itself a reply to '{parent.id}'" in str(err.value)
    with pytest.raises(ReplyError, match="no comment 'nope' under"):
        add(tmp_path, reply_to="nope")
    other = add(tmp_path, "networking-after-a-layoff", text="Telling people plainly helped.")
    with pytest.raises(ReplyError, match="it is under 'networking-after-a-layoff'"):
        add(tmp_path, reply_to=other.comment.id)


@pytest.mark.parametrize(
    ("email", "url"),
    [("Robin@Mail.Example", None), (None, "http://www.robinvale.example"), ("x@y.example", None)],
)
def test_a_trusted_author_is_approved(tmp_path, email, url):
    rules = SpamSettings(trusted=frozenset({"robin@mail.example", "https://robinvale.example/"}))
    result = add(tmp_path, email=email, url=url, rules=rules)
    trusted = email != "x@y.example"
    assert result.trusted is trusted
    assert result.status == ("approved" if trusted else "pending")
    if trusted:
        assert result.reasons[-1] == "the author's e-mail or URL is on the trusted list: approved"


def test_a_trusted_address_cannot_publish_spam(tmp_path):
    rules = SpamSettings(trusted=frozenset({"robin@mail.example"}))
    result = add(
        tmp_path,
        author="Cheap Loans Online",
        text="payday loan, instant approval: https://loans.example/",
        email="robin@mail.example",
        rules=rules,
    )
    assert result.trusted and result.status == "spam"
    assert "on the trusted list, but the rules say spam: not approved" in result.reasons[-1]


def test_the_host_can_set_the_status(tmp_path):
    result = add(tmp_path, status="approved")
    assert result.status == "approved" and result.verdict.status == "pending"
    assert result.reasons[-1] == "status approved set by the host"
    with pytest.raises(CommentError, match="'published' is not one of"):
        add(tmp_path, status="published")


def test_add_judges_against_the_post_and_the_other_posts(tmp_path):
    praise = "Great post, thanks for sharing! Keep up the good work."
    result = add(tmp_path, text=praise, url="https://robinvale.example/")
    assert any("generic praise" in r for r in result.reasons)
    text = "What a helpful read, I will definitely come back for more of these tips soon."
    add(tmp_path, "networking-after-a-layoff", text=text)
    again = add(tmp_path, text=text)
    assert "the same text as a comment under another post (+5)" in again.reasons
    assert again.status == "spam"


def test_add_refuses_empty_input(tmp_path):
    with pytest.raises(CommentError, match="the author's name is empty"):
        add(tmp_path, author=" \n ")
    with pytest.raises(CommentError, match="the comment text is empty"):
        add(tmp_path, text="\n\n")
    like = add(tmp_path, text="", source="https://s.example/p", kind="like")
    assert like.comment.kind == "like" and like.comment.text == ""


def test_add_tidies_the_text(tmp_path):
    messy = "\n\n  First   line\x00 here.\u202e\n\n\n\nSecond\tline.  \n\n"
    assert add(tmp_path, text=messy).comment.text == "First line here.\n\nSecond line."


def test_the_same_comment_twice_in_one_second_gets_two_ids(tmp_path):
    first, second = add(tmp_path), add(tmp_path)
    assert first.comment.id != second.comment.id
    assert len(load_comments(tmp_path)) == 2


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    parent = add(tmp_path).comment
    add(tmp_path, text="A reply about the clock.", reply_to=parent.id)
    set_status(tmp_path, parent.id, "approved")
    names = [p.name for p in (tmp_path / "who-pays-for-coffee").iterdir()]
    assert len(names) == 2 and all(n.endswith(".md") and not n.startswith(".") for n in names)


# -- moderation -------------------------------------------------------------------------------


def test_set_status_approves_and_marks_spam(tmp_path):
    added = add(tmp_path).comment
    approved = set_status(tmp_path, added.id, "approved")
    assert approved == replace(added, status="approved")
    assert load_comments(tmp_path).get(added.id) == approved
    assert set_status(tmp_path, added.id, "spam").status == "spam"
    assert set_status(tmp_path, added.id, "spam").status == "spam"  # again: no change


def test_set_status_of_an_unknown_or_broken_comment(tmp_path):
    added = add(tmp_path).comment
    with pytest.raises(UnknownCommentError) as err:
        set_status(tmp_path, added.id[:-1] + "x", "approved")
    assert f"no comment has the id '{added.id[:-1]}x' (did you mean '{added.id}'?)" in str(
        err.value
    )
    write(tmp_path, "who-pays-for-coffee", "broken.md", "Author: A\n\nno date")
    with pytest.raises(CommentFormatError, match="broken.md: Date: missing"):
        set_status(tmp_path, "broken", "approved")
    with pytest.raises(CommentError, match="'ok' is not one of"):
        set_status(tmp_path, added.id, "ok")


def test_pending_lists_what_waits_oldest_first(tmp_path):
    late = add(tmp_path, now=NOW + timedelta(hours=2)).comment
    early = add(tmp_path, "networking-after-a-layoff", text="Telling people plainly helped.")
    done = add(tmp_path, now=NOW + timedelta(hours=1), text="Keeping the clock worked.").comment
    set_status(tmp_path, done.id, "approved")
    assert [c.id for c in pending(tmp_path)] == [early.comment.id, late.id]
    assert pending(tmp_path / "nothing") == []


# -- comments by e-mail -----------------------------------------------------------------------


def mail(name: str) -> IncomingComment:
    return comment_from_email((MAIL / name).read_bytes(), name=name)


def test_a_plain_text_message():
    got = mail("plain.eml")
    assert (got.author, got.email) == ("Dana Whitfield", "dana.whitfield@mail.example")
    assert got.date == datetime(2026, 5, 11, 5, 42, 55, tzinfo=UTC)
    assert got.subject == "Re: Who Pays for the Coffee?"
    assert got.text.startswith("Arriving ten minutes early and picking a table away")
    assert got.text.endswith("have already ordered?")
    assert "\n\nOne question:" in got.text


def test_an_html_only_message_with_an_attachment():
    got = mail("multipart_html.eml")
    assert (got.author, got.email) == ("Leo Brandt", "leo@brandt.example")
    assert got.text == (
        "Small rooms, short lists: exactly my experience. I skipped the big mixer and went to "
        "a volunteer shift at the food bank instead \u2014 three real conversations & one "
        "coffee booked."
    )


def test_a_quoted_reply_with_a_signature_in_flowed_text():
    got = mail("quoted_reply.eml")
    assert got.text == (
        'I tried the "easy exit" line from your post on a hiring manager who had been silent '
        "for five weeks. She replied the next morning and apologised for the delay.\n\n"
        "Also, the spreadsheet idea: I keep mine in a notebook and it works."
    )
    assert got.date == datetime(2026, 7, 7, 11, 15, 3, tzinfo=UTC)


def test_an_encoded_sender_name_and_a_latin1_body():
    got = mail("encoded_from.eml")
    assert (got.author, got.email) == ("Zoë Ångström", "zoe.angstrom@mail.example")
    assert got.date == datetime(2026, 11, 20, 2, 4, 10, tzinfo=UTC)
    assert "half-page résumé" in got.text and "chatting in a café" in got.text
    assert got.text.endswith("Merci beaucoup,\nZoë")


def message(body: str, html: str | None = None, sender: str = "Jo <jo@mail.example>") -> bytes:
    msg = EmailMessage(policy=email.policy.default)
    msg["From"] = sender
    msg["Subject"] = "Re: a post"
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def test_the_plain_part_is_preferred_to_the_html_one():
    got = comment_from_email(message("Plain words about coffee.", "<p>HTML words</p>"))
    assert got.text == "Plain words about coffee." and got.date is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Top-posted answer.\n\nOn Tue, Nov 3, 2026 at 9:15 AM Marisol Quint\n"
            "<m@warm.example> wrote:\n> the post\n> more of it\n",
            "Top-posted answer.",
        ),
        (
            "On Mon, 2 Nov 2026, Marisol wrote:\n> first point\n\nMy answer to it.\n\n"
            "> second point\nAnd to that.\n",
            "My answer to it.\n\nAnd to that.",
        ),
        (
            "Le lun. 2 nov. 2026 à 09:00, Marisol a écrit :\n> texte\nMa réponse.\n",
            "Ma réponse.",
        ),
        ("Answer.\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold text\n", "Answer."),
        ("Answer.\n--\nJo, sent from my phone\n", "Answer."),
        (
            "On Monday I wrote to three people:\none answered within the hour.\n",
            "On Monday I wrote to three people:\none answered within the hour.",
        ),
    ],
)
def test_quotes_and_signatures_are_removed_and_the_rest_kept(body, expected):
    assert comment_from_email(message(body)).text == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message("text", sender="undisclosed-recipients:;"), "From: no sender address"),
        (b"Subject: hi\n\nno sender at all\n", "From: no sender address"),
        (message("> only a quote\n> of the post\n"), "no text of its own"),
        (message("\n-- \nJust a signature\n"), "no text of its own"),
        (
            b"From: a@b.example\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBO\n",
            "no text/plain or text/html part",
        ),
    ],
)
def test_a_message_that_gives_no_comment_is_a_clear_error(raw, reason):
    with pytest.raises(CommentError) as err:
        comment_from_email(raw, name="inbox/42.eml")
    assert str(err.value).startswith("comments: inbox/42.eml: ")
    assert reason in str(err.value)


def test_a_mailed_comment_can_be_filed(tmp_path):
    got = mail("plain.eml")
    result = add(tmp_path, author=got.author, email=got.email, text=got.text, now=got.date or NOW)
    assert result.comment.email == "dana.whitfield@mail.example"
    assert result.comment.date == datetime(2026, 5, 11, 5, 42, 55, tzinfo=UTC)
    assert result.status == "pending"
