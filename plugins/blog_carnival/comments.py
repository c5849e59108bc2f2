"""Comments as files, moderated: the Pelican-free core behind ``invoke comments.*``.

A comment is ``content/comments/<post-slug>/<id>.md``: Pelican-style ``Key: value`` header
lines, a blank line, then the Markdown text. The header is the moderation record (``Status``),
so a host can read, edit and commit comments like any other content. Rendering (only approved
comments, through the one sanitizer) is the adapter's job, not this module's.
"""

from __future__ import annotations

import difflib
import email
import email.policy
import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from types import MappingProxyType

from .errors import CarnivalError
from .model import utc_datetime
from .sanitize import normalize_text, plain_text
from .spam import SpamContext, SpamSettings, Status, Verdict, judge
from .textutil import write_atomic
from .urls import safe_link

log = logging.getLogger(__name__)

STATUSES: tuple[Status, ...] = ("approved", "pending", "spam")
KINDS = ("reply", "like", "repost", "mention")  # Webmention kinds, as JF2 names them

# Header keys in the order they are written; read case-insensitively, like Pelican does.
HEADER = (
    ("Author", "author"),
    ("Date", "date"),
    ("Url", "url"),
    ("Email", "email"),
    ("Reply-To", "reply_to"),
    ("Status", "status"),
    ("Source", "source"),
    ("Kind", "kind"),
)
_KEYS = {key.lower(): (key, attr) for key, attr in HEADER}
OPTIONAL = frozenset({"url", "email", "reply_to", "source", "kind"})

# Post slugs and comment ids are file and folder names: no separators, no leading dot.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")
_HEADER_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)[ \t]*:[ \t]*(.*)")
# Characters a header value cannot hold: they could end the line and start another one.
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


# -- errors -----------------------------------------------------------------------------------


class CommentError(CarnivalError):
    """A comment command cannot do what was asked; the message says why."""


class UnknownPostError(CommentError):
    """The post slug names no post (a usage error: exit code 2)."""

    exitcode = 2


class UnknownCommentError(CommentError):
    """No comment has this id (a usage error: exit code 2)."""

    exitcode = 2


class ReplyError(CommentError):
    """``Reply-To`` names no comment of the post, or a reply (replies are one level deep)."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one comment file: the file, the header field (None for the file
    as a whole) and the reason."""

    path: Path
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else str(self.path)
        return f"comments: {where}: {self.reason}"


class CommentFormatError(CommentError):
    """A comment file (or a comment about to be written) is malformed."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    """One comment file. ``id`` is the file's stem, ``post_slug`` its folder; ``email`` is
    for the host only and never published; ``source``/``kind`` are set for Webmentions."""

    id: str
    post_slug: str
    author: str
    date: datetime
    status: Status
    text: str
    url: str | None = None
    email: str | None = None
    reply_to: str | None = None
    source: str | None = None
    kind: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        for name in OPTIONAL:  # "" and None both mean "not given"
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)


@dataclass(frozen=True)
class IncomingComment:
    """A comment before it is filed: from an e-mail, a form or a mention. ``judge`` takes it."""

    author: str
    text: str
    url: str | None = None
    email: str | None = None
    date: datetime | None = None
    subject: str | None = None
    source: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class CommentSet:
    """Every comment file under a root: by post slug (each tuple ordered by date, then id),
    and the problems found on the way (a bad file is a problem here, never an exception)."""

    by_post: Mapping[str, tuple[Comment, ...]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_post", MappingProxyType(dict(self.by_post)))

    def __iter__(self) -> Iterator[Comment]:
        for slug in sorted(self.by_post):
            yield from self.by_post[slug]

    def __len__(self) -> int:
        return sum(len(c) for c in self.by_post.values())

    def get(self, comment_id: str) -> Comment | None:
        return next((c for c in self if c.id == comment_id), None)

    def for_post(
        self, post_slug: str, statuses: Collection[str] = ("approved",)
    ) -> tuple[Comment, ...]:
        """The post's comments with one of ``statuses`` (by default only what may be shown)."""
        return tuple(c for c in self.by_post.get(post_slug, ()) if c.status in statuses)


@dataclass(frozen=True)
class AddResult:
    """What ``add_comment`` did: the comment as filed (its ``status`` is final), the spam
    rules' verdict, whether the author is trusted, and every reason in words."""

    comment: Comment
    verdict: Verdict
    path: Path
    trusted: bool
    reasons: tuple[str, ...]

    @property
    def status(self) -> Status:
        return self.comment.status

    def lines(self) -> list[str]:
        """What ``invoke comments.add`` prints."""
        return [f"{self.status}: {self.path} (id {self.comment.id})"] + [
            f"  - {reason}" for reason in self.reasons
        ]


# -- the file format --------------------------------------------------------------------------


def _bad(path: Path, field: str | None, reason: str) -> CommentFormatError:
    return CommentFormatError(Problem(Path(path), field, reason))


def _check_value(path: Path, key: str, value: str) -> None:
    """A header value is one line: no control or line-separator characters (they could
    end the line and start a forged header), no padding (it would not survive a read)."""
    bad = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in _LINE_BREAKING})
    if bad:
        raise _bad(path, key, f"control or line-break characters in the value ({', '.join(bad)})")
    if value != value.strip():
        raise _bad(path, key, "leading or trailing spaces in the value")


def _check_name(path: Path, key: str, value: str, what: str) -> None:
    if not _NAME.fullmatch(value):
        raise _bad(
            path, key, f"{what} {value!r} is not a safe name (letters, digits, '.', '_', '-')"
        )


def _header_values(comment: Comment) -> list[tuple[str, str]]:
    """The header as (key, text) pairs, validated so that reading them back gives the
    same comment."""
    path = comment.path or Path(f"{comment.post_slug}/{comment.id}.md")
    if not isinstance(comment.date, datetime) or comment.date.tzinfo is None:
        raise _bad(path, "Date", "needs a timezone-aware datetime")
    pairs = []
    for key, attr in HEADER:
        value = getattr(comment, attr)
        if value is None and attr in OPTIONAL:
            continue
        text = comment.date.isoformat() if attr == "date" else value
        if not isinstance(text, str):
            raise _bad(path, key, f"expected text, got {type(value).__name__}")
        pairs.append((key, text))
    for key, text in pairs:
        _check_value(path, key, text)
    _validate(path, comment.id, dict((_KEYS[k.lower()][1], v) for k, v in pairs))
    return pairs


def format_comment(comment: Comment) -> str:
    """The file text of ``comment``; ``parse_comment`` of it gives ``comment`` back.

    Raises CommentFormatError for a value that could not be read back as written (a line
    break or control character in a header value, an unknown status, a naive date, ...).
    """
    _check_name(comment.path or Path(comment.id), "id", comment.id, "comment id")
    lines = [f"{key}: {value}" for key, value in _header_values(comment)]
    return "\n".join(lines) + "\n\n" + comment.text + "\n"


def _parse_date(path: Path, value: str) -> datetime:
    """ISO 8601 with a zone, nothing else: a comment file is written by a tool or a host
    who can say which zone they meant (model.utc_datetime's lenient fallbacks, RFC 822
    dates and zone-less times read as UTC, would hide a mistake here). The offset is kept
    so the file reads back as written."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _bad(
            path, "Date", f"{value!r} is not an ISO 8601 date and time with a time zone"
        ) from None
    return parsed


def _validate(path: Path, comment_id: str, values: Mapping[str, str]) -> dict[str, object]:
    """Check header values (as text) and convert them; shared by reading and writing."""
    out: dict[str, object] = {}
    if not values.get("author"):
        raise _bad(path, "Author", "missing")
    out["author"] = values["author"]
    if not values.get("date"):
        raise _bad(path, "Date", "missing")
    out["date"] = _parse_date(path, values["date"])
    if not values.get("status"):
        raise _bad(path, "Status", f"missing ({', '.join(STATUSES)})")
    if values["status"] not in STATUSES:
        raise _bad(path, "Status", f"{values['status']!r} is not one of {', '.join(STATUSES)}")
    out["status"] = values["status"]
    for attr, key in (("url", "Url"), ("source", "Source")):
        if values.get(attr):
            if safe_link(values[attr]) is None:
                raise _bad(path, key, f"{values[attr]!r} is not an absolute http(s) URL")
            out[attr] = values[attr]
    if values.get("email"):
        if not _EMAIL.fullmatch(values["email"]):
            raise _bad(path, "Email", f"{values['email']!r} is not an e-mail address")
        out["email"] = values["email"]
    if values.get("reply_to"):
        _check_name(path, "Reply-To", values["reply_to"], "comment id")
        if values["reply_to"] == comment_id:
            raise _bad(path, "Reply-To", "a comment cannot reply to itself")
        out["reply_to"] = values["reply_to"]
    if values.get("kind"):
        if values["kind"] not in KINDS:
            raise _bad(path, "Kind", f"{values['kind']!r} is not one of {', '.join(KINDS)}")
        if not values.get("source"):
            raise _bad(path, "Kind", "a mention's Kind needs its Source")
        out["kind"] = values["kind"]
    return out


def parse_comment(text: str, path: Path, post_slug: str) -> Comment:
    """Read one comment file's text. ``path``'s stem is the comment id.

    Raises CommentFormatError naming the file and the field. The header ends at the first
    empty line; every line before it must be ``Key: value`` with a known key, once.
    CRLF line ends and a leading BOM (Windows editors) are accepted.
    """
    path = Path(path)
    _check_name(path, None, path.stem, "file name")
    _check_name(path, None, post_slug, "post folder")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _bad(path, None, "is empty")
    if text.startswith(("\n", "\r\n")):
        raise _bad(path, None, "no header: the file must start with 'Author: ...'")
    values: dict[str, str] = {}
    body = ""
    pos = 0
    number = 0
    while pos <= len(text):
        end = text.find("\n", pos)
        line = text[pos : len(text) if end < 0 else end].removesuffix("\r")
        number += 1
        if line == "":
            body = "" if end < 0 else text[end + 1 :]
            break
        match = _HEADER_LINE.fullmatch(line)
        if not match:
            if number == 1:
                raise _bad(path, None, "no header: the file must start with 'Author: ...'")
            raise _bad(path, None, f"line {number} is not a 'Key: value' header line: {line!r}")
        key, value = match.group(1), match.group(2).strip(" \t")
        known = _KEYS.get(key.lower())
        if known is None:
            near = difflib.get_close_matches(key.lower(), list(_KEYS), n=1)
            hint = (
                f" (did you mean '{_KEYS[near[0]][0]}'?)"
                if near
                else f" (known: {', '.join(k for k, _ in HEADER)})"
            )
            raise _bad(path, key, f"unknown header field{hint}")
        if known[1] in values:
            raise _bad(path, known[0], "given twice")
        _check_value(path, known[0], value)
        values[known[1]] = value
        if end < 0:
            break
        pos = end + 1
    # The one line end that closes the file is not part of the text (a CRLF one when the
    # file was saved with CRLF line ends; a "\r" of the text itself stays).
    crlf = "\r\n" in text[:pos]
    body = body.removesuffix("\r\n" if crlf else "\n")
    fields = _validate(path, path.stem, values)
    return Comment(
        id=path.stem,
        post_slug=post_slug,
        text=body,
        path=path,
        **fields,  # type: ignore[arg-type]
    )


def _read(path: Path, post_slug: str) -> Comment:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(path, None, f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(path, None, f"is not UTF-8 (byte {exc.start})") from None
    return parse_comment(text, path, post_slug)


def _order(comment: Comment) -> tuple[datetime, str]:
    return (comment.date.astimezone(UTC), comment.id)


def load_comments(root: Path, known_slugs: Collection[str] | None = None) -> CommentSet:
    """Every ``<root>/<post-slug>/<id>.md``. A bad file, a duplicate id, a reply to a
    missing comment or to a reply, a comment under a post not in ``known_slugs`` (when
    given): each is a Problem in the result; nothing raises for one bad file."""
    root = Path(root)
    by_post: dict[str, list[Comment]] = {}
    problems: list[Problem] = []
    if not root.is_dir():
        return CommentSet()
    for path in sorted(root.rglob("*.md")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # a temporary file of an interrupted write, an editor's swap file
        if len(relative.parts) != 2:
            problems.append(Problem(path, None, "not in a post's folder (<post-slug>/<id>.md)"))
            continue
        try:
            comment = _read(path, path.parent.name)
        except CommentFormatError as exc:
            problems.append(exc.problem)
            continue
        by_post.setdefault(comment.post_slug, []).append(comment)

    seen: dict[str, Comment] = {}
    for slug in sorted(by_post):
        by_post[slug].sort(key=_order)
        if known_slugs is not None and slug not in known_slugs:
            problems.append(Problem(root / slug, None, f"no post has the slug {slug!r}"))
        ids = {c.id: c for c in by_post[slug]}
        for comment in by_post[slug]:
            assert comment.path is not None
            if comment.id in seen:
                problems.append(
                    Problem(comment.path, None, f"the same id as {seen[comment.id].path}")
                )
            seen.setdefault(comment.id, comment)
            if comment.reply_to:
                parent = ids.get(comment.reply_to)
                if parent is None:
                    problems.append(
                        Problem(comment.path, "Reply-To", f"no comment {comment.reply_to!r} here")
                    )
                elif parent.reply_to:
                    problems.append(
                        Problem(
                            comment.path,
                            "Reply-To",
                            f"{parent.id!r} is itself a reply (replies are one level deep)",
                        )
                    )
    return CommentSet({s: tuple(c) for s, c in by_post.items()}, tuple(problems))


# -- ids --------------------------------------------------------------------------------------


def new_comment_id(now: datetime, text: str, *, taken: Collection[str] = ()) -> str:
    """``20261120T091500Z-3fa2c9d1``: the UTC time (so ids sort by age) and a short hash
    of the time and text (so two comments in one second differ); never one in ``taken``.
    Only digits, letters and '-': safe as a file name everywhere."""
    if now.tzinfo is None:
        raise ValueError("comments: now must be timezone-aware")
    utc = now.astimezone(UTC)
    stamp = utc.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1_000_000):
        digest = hashlib.sha256(f"{utc.isoformat()}\n{attempt}\n{text}".encode()).hexdigest()
        candidate = f"{stamp}-{digest[:8]}"
        if candidate not in taken:
            return candidate
    raise CommentError("comments: no free comment id")  # pragma: no cover - 2**32 hashes


# -- adding -----------------------------------------------------------------------------------


def _one_line(value: str | None) -> str | None:
    """A header value from user input: controls and bidi overrides out, whitespace collapsed."""
    return (normalize_text(value) or None) if value is not None else None


def _clean_text(text: str) -> str:
    """Comment text from user input: each line tidied (controls out, spaces collapsed),
    blank-line runs kept to one, outer blank lines dropped."""
    lines = [normalize_text(line) for line in (text or "").splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def _suggest(name: str, choices: Collection[str]) -> str:
    near = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def spam_context(
    existing: Iterable[Comment],
    post_slug: str,
    known_slugs: Collection[str] | Mapping[str, str],
) -> SpamContext:
    """What the spam rules compare a new comment under ``post_slug`` with: the post's text
    (when ``known_slugs`` maps slugs to it), the texts under other posts, and spam texts."""
    comments = tuple(existing)
    post_text = known_slugs.get(post_slug, "") if isinstance(known_slugs, Mapping) else ""
    return SpamContext(
        post_text=post_text or "",
        other_texts=tuple(c.text for c in comments if c.post_slug != post_slug),
        spam_texts=tuple(c.text for c in comments if c.status == "spam"),
    )


def add_comment(
    root: Path,
    post_slug: str,
    *,
    known_slugs: Collection[str] | Mapping[str, str],
    author: str,
    text: str,
    url: str | None = None,
    email: str | None = None,
    reply_to: str | None = None,
    now: datetime,
    rules: SpamSettings,
    source: str | None = None,
    kind: str | None = None,
    status: Status | None = None,
) -> AddResult:
    """File a new comment under ``root/<post_slug>/`` after running the spam rules.

    ``known_slugs``: the site's post slugs; a mapping slug -> the post's title and text
    also lets the rules see the post (generic praise shares no words with it).
    The status is ``status`` when the host gives one; else "approved" when the author's
    e-mail or URL is trusted and the rules did not say spam (a forged From of a trusted
    address still cannot publish spam); else the verdict's ("spam" or "pending").
    Raises CommentError (UnknownPostError, ReplyError, CommentFormatError) with the reason.
    """
    root = Path(root)
    if post_slug not in known_slugs:
        raise UnknownPostError(
            f"comments: no post has the slug {post_slug!r}{_suggest(post_slug, known_slugs)}"
        )
    if now.tzinfo is None:
        raise ValueError("comments: now must be timezone-aware")
    if status is not None and status not in STATUSES:
        raise CommentError(f"comments: status {status!r} is not one of {', '.join(STATUSES)}")
    author_name = _one_line(author)
    if not author_name:
        raise CommentError("comments: the author's name is empty")
    body = _clean_text(text)
    if not body and kind in (None, "reply"):
        raise CommentError("comments: the comment text is empty")
    url, email = _one_line(url), _one_line(email)
    source, reply_to = _one_line(source), _one_line(reply_to)
    for key, value in (("Url", url), ("Source", source)):
        if value is not None and safe_link(value) is None:
            raise CommentError(f"comments: {key}: {value!r} is not an absolute http(s) URL")
    if email is not None and not _EMAIL.fullmatch(email):
        raise CommentError(f"comments: Email: {email!r} is not an e-mail address")
    if kind is not None and kind not in KINDS:
        raise CommentError(f"comments: Kind: {kind!r} is not one of {', '.join(KINDS)}")

    existing = load_comments(root)
    siblings = {c.id: c for c in existing.by_post.get(post_slug, ())}
    if reply_to is not None:
        parent = siblings.get(reply_to)
        if parent is None:
            where = existing.get(reply_to)
            elsewhere = f" (it is under {where.post_slug!r})" if where else ""
            raise ReplyError(
                f"comments: Reply-To: no comment {reply_to!r} under {post_slug!r}{elsewhere}"
            )
        if parent.reply_to is not None:
            raise ReplyError(
                f"comments: Reply-To: {reply_to!r} is itself a reply to {parent.reply_to!r};"
                " replies are one level deep, reply to that one instead"
            )

    incoming = IncomingComment(author=author_name, text=body, url=url, email=email)
    verdict = judge(incoming, spam_context(existing, post_slug, known_slugs), rules)
    trusted = rules.is_trusted(email, url)
    reasons = list(verdict.reasons)
    final: Status = verdict.status
    if status is not None:
        final = status
        reasons.append(f"status {status} set by the host")
    elif trusted and verdict.status != "spam":
        final = "approved"
        reasons.append("the author's e-mail or URL is on the trusted list: approved")
    elif trusted:
        reasons.append("the author is on the trusted list, but the rules say spam: not approved")

    date = now.replace(microsecond=0)
    taken = {c.id for c in existing} | {p.path.stem for p in existing.problems}
    comment_id = new_comment_id(date, body, taken=taken)
    path = root / post_slug / f"{comment_id}.md"
    comment = Comment(
        id=comment_id,
        post_slug=post_slug,
        author=author_name,
        date=date,
        status=final,
        text=body,
        url=url,
        email=email,
        reply_to=reply_to,
        source=source,
        kind=kind,
        path=path,
    )
    write_atomic(path, format_comment(comment))
    log.info("comments: filed %s under %s as %s", comment_id, post_slug, final)
    return AddResult(comment, verdict, path, trusted, tuple(reasons))


# -- moderation -------------------------------------------------------------------------------


def set_status(root: Path, comment_id: str, status: Status) -> Comment:
    """Approve a comment, or mark it spam (or pending again); rewrites its file atomically.
    An unknown id, or the id of a file that cannot be read, is a CommentError."""
    if status not in STATUSES:
        raise CommentError(f"comments: status {status!r} is not one of {', '.join(STATUSES)}")
    comments = load_comments(Path(root))
    comment = comments.get(comment_id)
    if comment is None:
        broken = next((p for p in comments.problems if p.path.stem == comment_id), None)
        if broken is not None:
            raise CommentFormatError(broken)
        raise UnknownCommentError(
            f"comments: no comment has the id {comment_id!r}"
            f"{_suggest(comment_id, [c.id for c in comments])}"
        )
    assert comment.path is not None
    if comment.status == status:
        return comment
    updated = replace(comment, status=status)
    write_atomic(comment.path, format_comment(updated))
    log.info("comments: %s is now %s", comment_id, status)
    return updated


def pending(root: Path) -> list[Comment]:
    """Comments waiting for the host, oldest first."""
    return sorted((c for c in load_comments(Path(root)) if c.status == "pending"), key=_order)


# -- e-mail -----------------------------------------------------------------------------------

# "On Tue, 3 Nov 2026 at 09:15, Jo <jo@example.org> wrote:" (one line, or wrapped over
# two) and its French and German cousins: the line a mail program puts above a quote.
_ATTRIBUTION = re.compile(r"(?:On|Le|Am)\s.{1,300}?\s(?:wrote|a\s+écrit|schrieb)\s*:")
_ATTRIBUTION_START = ("On ", "Le ", "Am ")
# The same in text flattened from HTML: the last such phrase, not containing another " On ".
_INLINE_ATTRIBUTION = re.compile(
    r"(?:^|\s)(?:On|Le|Am)\s(?:(?!\s(?:On|Le|Am)\s).){1,300}?\s(?:wrote|a\s+écrit|schrieb)\s*:"
)
_FORWARD_MARKER = re.compile(
    r"(?:-{2,}\s*Original Message\s*-{2,}|_{10,}|-{2,}\s*Forwarded message\s*-{2,})", re.I
)


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line of the
    same quote depth (sections 4.2 and 4.5; with DelSp=yes that space goes), a space after
    the quote marks was added for transport (space-stuffing, 4.4), and the signature
    separator "-- " never flows (4.3)."""
    out: list[str] = []
    joining, last_depth = False, -1
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        line = line[1:] if line.startswith(" ") else line
        flowed = line.endswith(" ") and line != "-- "
        if flowed and delsp:
            line = line[:-1]
        if joining and depth == last_depth and out:
            out[-1] += line
        else:
            out.append(f"{'>' * depth} {line}" if depth else line)
        joining, last_depth = flowed, depth
    return "\n".join(out)


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_attribution(line: str) -> bool:
    return line.startswith(_ATTRIBUTION_START) and bool(_ATTRIBUTION.fullmatch(line))


def _strip_reply(text: str) -> str:
    """Cut what the reader's mail program added: the signature (from the "-- " line,
    RFC 3676 section 4.3), quoted lines ("> "), the "On ... wrote:" line that introduces
    a quote, and forwarded or "Original Message" blocks."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "-- " or line.rstrip() == "--" or _FORWARD_MARKER.fullmatch(line.strip()):
            lines = lines[:i]
            break
    keep = [not _is_quote(line) for line in lines]
    # An attribution is the line (or two) just above a quote block, or the last line.
    anchors = [i for i, line in enumerate(lines) if _is_quote(line)] + [len(lines)]
    for anchor in anchors:
        above = anchor - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above < 0 or _is_quote(lines[above]):
            continue
        one = lines[above].strip()
        two = f"{lines[above - 1].strip()} {one}" if above >= 1 else ""
        if _is_attribution(one):
            keep[above] = False
        elif _is_attribution(two):
            keep[above - 1] = keep[above] = False
    return "\n".join(line for line, kept in zip(lines, keep, strict=True) if kept)


def _cut_inline_quote(text: str) -> str:
    """Text flattened from HTML: cut from the last "On ... wrote:" to the end (the quote
    follows it)."""
    last = None
    for last in _INLINE_ATTRIBUTION.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    return text[: last.start()] if last else text


def comment_from_email(raw: bytes, *, name: str = "the message") -> IncomingComment:
    """A comment from an e-mail (RFC 5322, MIME): author and address from From, the date
    from Date, the text from the text/plain part (or the HTML part, as plain text), with
    the quoted message and the signature removed. ``name`` (the .eml path) is used in
    error messages. Raises CommentError when there is no sender or no text."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is a last resort
        raise CommentError(f"comments: {name}: not an e-mail message ({exc})") from None
    assert isinstance(message, EmailMessage)

    try:
        sender = message["From"]
        addresses: tuple[Address, ...] = tuple(sender.addresses) if sender is not None else ()
    except Exception:  # a From header too broken to parse
        addresses = ()
    address = next((a for a in addresses if a.addr_spec and "@" in a.addr_spec), None)
    if address is None:
        raise CommentError(f"comments: {name}: From: no sender address")
    author = normalize_text(address.display_name)
    sender_email = normalize_text(address.addr_spec)

    try:
        date = utc_datetime(str(message["Date"] or ""))
    except Exception:
        date = None
    subject = normalize_text(str(message["Subject"] or "")) or None

    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        raise CommentError(f"comments: {name}: no text/plain or text/html part")
    try:
        content = part.get_content()
    except (LookupError, UnicodeError) as exc:
        raise CommentError(f"comments: {name}: the text cannot be decoded ({exc})") from None
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_subtype() == "html":
        # plain_text gives one line; the quote is cut at its "On ... wrote:" introduction.
        text = _cut_inline_quote(plain_text(content))
    else:
        if str(part.get_param("format", "")).lower() == "flowed":
            delsp = str(part.get_param("delsp", "")).lower() == "yes"
            content = _unflow(content, delsp)
        text = _strip_reply(content)
    text = _clean_text(text)
    if not text:
        raise CommentError(f"comments: {name}: the message has no text of its own")
    return IncomingComment(
        author=author, text=text, email=sender_email or None, date=date, subject=subject
    )
