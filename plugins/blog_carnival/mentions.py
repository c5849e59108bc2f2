"""Webmentions as moderated comments: the Pelican-free core behind ``invoke comments.mentions``.

A hosted receiver (webmention.io, or a service with the same API) accepts Webmentions for the
site; this module reads the new ones from its JF2 API, verifies each one itself (W3C
Webmention 3.2.2: the source page, fetched with the guarded ``fetch.Fetcher``, links to the
exact target; a hosted service's word is not taken for it), and files each verified one as a
comment with ``Source`` and ``Kind`` through ``comments.add_comment``: always ``pending``, or
``spam`` when the spam rules say so. Nothing here publishes anything.

The API token is a secret: it comes from the caller (the environment), travels only in the
request's query string (``token=``, as webmention.io takes it) and is shown as "REDACTED" in
every reason, report line and log record. The API request never touches the HTTP cache.

Which mentions are new is remembered in a small state file beside the comments
(``<comments root>/.mentions.json``): the last ``wm-id`` handled (webmention.io's ``since_id``)
and how often a mention whose source could not be fetched has been tried. The rule:

- stored, rejected (no link, gone, refused by the address policy, or not fileable) and skipped
  (not our page, already stored, malformed) mentions are final;
- a mention whose source could not be fetched (timeout, connection refused, 5xx, ...) is
  tried again on the next run, up to ``MAX_ATTEMPTS`` runs in all, then it is final too;
- ``since_id`` only moves past a mention once it is final, so the next run reads again
  everything after the first mention still being retried (stored ones come back as
  duplicates and cost nothing; rejected ones are checked again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .comments import (
    Comment,
    CommentError,
    IncomingComment,
    add_comment,
    load_comments,
    spam_context,
)
from .fetch import Fetcher, redact
from .model import utc_datetime
from .sanitize import excerpt, normalize_text, plain_text
from .spam import SpamSettings, Status, judge
from .textutil import write_atomic
from .urls import canonical_url, safe_link
from .webmention import verify_mention

log = logging.getLogger(__name__)

STATE_FILE = ".mentions.json"  # in the comments root; dot-named, so load_comments skips it
PER_PAGE = 100  # mentions read per run (webmention.io's ``per-page``); the rest wait
MAX_ATTEMPTS = 3  # runs in which a mention whose source cannot be fetched is tried
MAX_TEXT = 3000  # characters of a mention's text kept in its comment file
MAX_NAME = 100  # characters of an author's name
# Parameters this module sets on the API URL; a host's WEBMENTION_API keeps its own others.
_OURS = frozenset({"token", "since_id", "per-page", "page", "sort-dir"})

# wm-property -> comment Kind. webmention.io names the property of the source's h-entry
# that points at the target; everything but these three is shown as a mention.
KIND_BY_PROPERTY = {"in-reply-to": "reply", "like-of": "like", "repost-of": "repost"}
# Text for a mention that brings none of its own (a like's content is the liked post).
_SAID = {
    "like-of": "Liked this post",
    "repost-of": "Reposted this post",
    "bookmark-of": "Bookmarked this post",
    "in-reply-to": "Replied to this post",
}
_RSVP = {"yes": "Will attend", "no": "Will not attend", "maybe": "Might attend"}


def kind_for(wm_property: str | None) -> str:
    """The comment ``Kind`` for a JF2 ``wm-property``: reply, like, repost, else mention."""
    return KIND_BY_PROPERTY.get(wm_property or "", "mention")


# -- reading the API --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    """One mention as the API reported it, settled at the JSON boundary (URLs absolute
    http(s), dates aware UTC, text plain)."""

    wm_id: int
    source: str  # wm-source: the page that mentions us
    target: str  # wm-target: our page
    property: str  # wm-property, as given ("mention-of" when missing)
    author_name: str | None = None
    author_url: str | None = None
    published: datetime | None = None
    received: datetime | None = None  # wm-received
    text: str = ""  # content.text, or content.html as plain text
    rsvp: str | None = None

    @property
    def kind(self) -> str:
        return kind_for(self.property)


@dataclass(frozen=True)
class Malformed:
    """A feed child that is not a usable mention: its position, its wm-id if it has a
    readable one, and why."""

    index: int
    wm_id: int | None
    reason: str


@dataclass(frozen=True)
class MentionBatch:
    """What one API request gave: the mentions (by wm-id, oldest first), the children that
    could not be read, or the reason nothing could (``error``). ``api_url`` is the URL
    requested, with the token redacted. ``more``: the page was full, more may be waiting."""

    api_url: str
    since_id: int | None = None
    mentions: tuple[Mention, ...] = ()
    malformed: tuple[Malformed, ...] = ()
    error: str | None = None
    more: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def api_request_url(api_url: str, token: str, *, since_id: int | None, per_page: int) -> str:
    """``api_url`` with the token and paging parameters set (webmention.io's names:
    ``token``, ``since_id``, ``per-page``, and ``sort-dir=up`` so that a capped page holds
    the oldest new mentions and ``since_id`` never jumps over unread ones)."""
    parts = urlsplit(api_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OURS]
    query.append(("token", token))
    if since_id is not None:
        query.append(("since_id", str(since_id)))
    query += [("per-page", str(per_page)), ("sort-dir", "up")]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def fetch_mentions(
    client: Fetcher,
    api_url: str,
    token: str | None,
    *,
    since_id: int | None = None,
    per_page: int = PER_PAGE,
) -> MentionBatch:
    """Read the mentions newer than ``since_id`` from a webmention.io-style JF2 API.

    Never raises for a remote or input fault: a missing token, a token written into
    ``api_url`` (it would be committed with the settings), an HTTP error, bad JSON or a
    wrong shape is ``batch.error``, naming the API URL with the token redacted. The body is
    capped by the fetcher (``max_bytes``) and at most ``per_page`` mentions are kept.
    """
    shown = redact(api_url, token)
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if safe_link(api_url) is None:
        return MentionBatch(shown, since_id, error=f"{shown}: not an absolute http(s) URL")
    if any(k == "token" for k, _ in parse_qsl(urlsplit(api_url).query)):
        given = redact_query_param(api_url, "token")
        return MentionBatch(
            given,
            since_id,
            error=f"{given}: the API URL holds a token; give it in the environment instead",
        )
    if not token:
        return MentionBatch(shown, since_id, error=f"{shown}: no API token given")
    url = api_request_url(api_url, token, since_id=since_id, per_page=per_page)
    shown = redact(url, token)
    answer = client.fetch(url, secret=token)
    if not answer.ok:
        reason = redact(answer.error or "no answer", token)
        return MentionBatch(shown, since_id, error=f"{shown}: {reason}")
    try:
        data = json.loads(answer.body or b"")
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = redact(_short(str(exc)), token)
        return MentionBatch(shown, since_id, error=f"{shown}: not JSON ({reason})")
    problem = _feed_problem(data)
    if problem:
        return MentionBatch(shown, since_id, error=f"{shown}: {redact(problem, token)}")
    children = [_read_child(index, child) for index, child in enumerate(data["children"])]
    # An API that ignores since_id sends old ones again: they were handled.
    new = [c for c in children if since_id is None or c.wm_id is None or c.wm_id > since_id]
    # Oldest first, and no more than a page: what is cut off has higher wm-ids, so
    # since_id cannot move past it.
    new.sort(key=lambda c: (c.wm_id is None, c.wm_id or 0))
    kept = new[:per_page]
    return MentionBatch(
        shown,
        since_id,
        tuple(c for c in kept if isinstance(c, Mention)),
        tuple(c for c in kept if isinstance(c, Malformed)),
        more=len(children) >= per_page,
    )


def redact_query_param(url: str, name: str) -> str:
    """``url`` with the value of query parameter ``name`` shown as "REDACTED"."""
    parts = urlsplit(url)
    query = [
        (k, "REDACTED" if k == name else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _feed_problem(data: object) -> str | None:
    """Why ``data`` is not a JF2 feed ({"type": "feed", "children": [...]}), or None."""
    if not isinstance(data, dict):
        return f"expected a JF2 feed object, got a JSON {_json_type(data)}"
    if "error" in data and "children" not in data:  # webmention.io's error answer
        said = ": ".join(
            _short(str(data[k])) for k in ("error", "error_description") if data.get(k)
        )
        return f"the API answered an error ({said or 'no description'})"
    if data.get("type", "feed") != "feed":
        return f"expected a JF2 feed, got type {_short(str(data.get('type')))!r}"
    if not isinstance(data.get("children"), list):
        return "the JF2 feed has no list of children"
    return None


def _read_child(index: int, child: object) -> Mention | Malformed:
    if not isinstance(child, dict):
        return Malformed(index, None, f"expected an object, got a JSON {_json_type(child)}")
    wm_id = _wm_id(child.get("wm-id"))
    if wm_id is None:
        return Malformed(index, None, f"no usable wm-id ({_short(repr(child.get('wm-id')))})")
    urls = {}
    for key in ("wm-source", "wm-target"):
        value = child.get(key)
        url = safe_link(value) if isinstance(value, str) else None
        if url is None:
            what = _short(repr(value)) if value is not None else "missing"
            return Malformed(index, wm_id, f"{key} is not an absolute http(s) URL ({what})")
        urls[key] = url
    author = child.get("author") if isinstance(child.get("author"), dict) else {}
    name = author.get("name") if isinstance(author.get("name"), str) else None
    author_url = author.get("url") if isinstance(author.get("url"), str) else None
    prop = child.get("wm-property")
    rsvp = child.get("rsvp")
    return Mention(
        wm_id=wm_id,
        source=urls["wm-source"],
        target=urls["wm-target"],
        property=prop if isinstance(prop, str) and prop else "mention-of",
        author_name=plain_text(name, MAX_NAME) or None,
        author_url=safe_link(author_url),
        published=_date(child.get("published")),
        received=_date(child.get("wm-received")),
        text=_content_text(child.get("content")),
        rsvp=rsvp.strip().lower() if isinstance(rsvp, str) and rsvp.strip() else None,
    )


def _wm_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _date(value: object) -> datetime | None:
    return utc_datetime(value) if isinstance(value, str) else None


def _content_text(content: object) -> str:
    """JF2 content: a string (plain text) or {"text", "html"}; text preferred, the HTML
    otherwise flattened by the one sanitizer. Long texts are cut on a word boundary."""
    text = ""
    if isinstance(content, str):
        text = content
    elif isinstance(content, dict):
        if isinstance(content.get("text"), str) and content["text"].strip():
            text = content["text"]
        elif isinstance(content.get("html"), str):
            text = plain_text(content["html"])
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_TEXT:
        text = excerpt(text, max_words=MAX_TEXT, max_chars=MAX_TEXT)
    return text


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), "value")


def _short(text: str, limit: int = 120) -> str:
    return normalize_text(text, limit)


# -- the state file ---------------------------------------------------------------------------


class MentionStateError(CommentError):
    """The state file cannot be read; the message names it and says why."""


@dataclass(frozen=True)
class MentionState:
    """Where the last run stopped: the last ``wm-id`` handled for good, and how many runs
    have tried each mention still waiting for its source (wm-id -> tries)."""

    since_id: int | None = None
    attempts: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attempts", MappingProxyType(dict(self.attempts)))

    def __hash__(self) -> int:
        return hash((self.since_id, tuple(sorted(self.attempts.items()))))


def state_path(root: Path) -> Path:
    """The state file of the comments under ``root``."""
    return Path(root) / STATE_FILE


def read_state(path: Path) -> MentionState:
    """The state in ``path``; no file is the state of a first run. A damaged file is a
    MentionStateError naming the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return MentionState()
    except (OSError, UnicodeDecodeError) as exc:
        raise MentionStateError(f"comments: {path}: cannot be read ({exc})") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MentionStateError(f"comments: {path}: not JSON ({_short(str(exc))})") from None
    if not isinstance(data, dict):
        raise MentionStateError(f"comments: {path}: expected a JSON object")
    since = data.get("since_id")
    if since is not None and _wm_id(since) is None:
        raise MentionStateError(f"comments: {path}: since_id: {since!r} is not a wm-id")
    attempts = data.get("attempts", {})
    if not isinstance(attempts, dict):
        raise MentionStateError(f"comments: {path}: attempts: expected an object")
    tries: dict[int, int] = {}
    for key, count in attempts.items():
        wm_id = _wm_id(key)
        if wm_id is None or isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise MentionStateError(
                f"comments: {path}: attempts: {key!r}: {count!r} is not a number of tries"
            )
        tries[wm_id] = count
    return MentionState(_wm_id(since), tries)


def write_state(path: Path, state: MentionState) -> None:
    """Write ``state`` to ``path`` atomically (``textutil.write_atomic``)."""
    data = {
        "since_id": state.since_id,
        "attempts": {str(k): v for k, v in sorted(state.attempts.items())},
    }
    write_atomic(Path(path), json.dumps(data, indent=2) + "\n")


def read_since_id(path: Path) -> int | None:
    """The last ``wm-id`` handled, from the state file ``path`` (None: none yet)."""
    return read_state(path).since_id


def write_since_id(path: Path, since_id: int | None) -> None:
    """Set the last ``wm-id`` handled in the state file ``path``, keeping its retries
    above it."""
    try:
        old = read_state(path)
    except MentionStateError:
        old = MentionState()
    kept = {k: v for k, v in old.attempts.items() if since_id is None or k > since_id}
    write_state(path, MentionState(since_id, kept))


# -- receiving --------------------------------------------------------------------------------

Outcome = Literal[
    "stored",  # filed as a comment (pending or spam)
    "no-link",  # rejected: the source does not link to the target
    "gone",  # rejected: the source answers 410
    "refused",  # rejected: not http(s), source = target, or a private address not allowed
    "failed",  # rejected: the source could not be fetched (retried while not final)
    "invalid",  # rejected: verified, but no comment could be filed (the reason says why)
    "not-ours",  # skipped: the target is not one of the site's pages
    "duplicate",  # skipped: this source is already a comment on this post
    "malformed",  # skipped: the API's entry is unusable
]
_GROUP = {
    "stored": "stored",
    "no-link": "rejected",
    "gone": "rejected",
    "refused": "rejected",
    "failed": "rejected",
    "invalid": "rejected",
    "not-ours": "skipped",
    "duplicate": "skipped",
    "malformed": "skipped",
}
# How the guarded client words a refusal by its policy (netpolicy.AddressRefused, a scheme
# check): no later run would get a different answer, so such a mention is final.
_POLICY_REFUSAL = "could not fetch the source: refused "


@dataclass(frozen=True)
class MentionOutcome:
    """What happened to one mention. ``final`` is False for a source that could not be
    fetched and will be tried again (``attempt`` counts the runs that tried it)."""

    wm_id: int | None
    outcome: Outcome
    source: str | None = None
    target: str | None = None
    kind: str | None = None
    reason: str | None = None
    post_slug: str | None = None
    comment_id: str | None = None
    status: Status | None = None
    final: bool = True
    attempt: int = 0
    reasons: tuple[str, ...] = ()  # the spam rules' reasons for a stored mention

    @property
    def group(self) -> str:
        """stored, rejected or skipped."""
        return _GROUP[self.outcome]


@dataclass(frozen=True)
class ReceiveReport:
    """One run: the batch read, one outcome per mention (by wm-id), the state the run
    started from, the state it saved, and problems with the run itself."""

    batch: MentionBatch
    items: tuple[MentionOutcome, ...] = ()
    state: MentionState = field(default_factory=MentionState)
    saved: MentionState | None = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.batch.ok and not self.problems

    def stored(self) -> tuple[MentionOutcome, ...]:
        return tuple(i for i in self.items if i.outcome == "stored")

    def count(self, group: str) -> int:
        return sum(1 for i in self.items if i.group == group)

    def next_state(self) -> MentionState:
        """The state after this run: ``since_id`` moves up to the last mention below the
        first one still waiting for a retry; the waiting ones keep their count of tries."""
        if not self.batch.ok:
            return self.state
        waiting = {i.wm_id: i.attempt for i in self.items if not i.final and i.wm_id is not None}
        done = [i.wm_id for i in self.items if i.final and i.wm_id is not None]
        if waiting:
            done = [d for d in done if d < min(waiting)]
        since = self.state.since_id
        if done and (since is None or max(done) > since):
            since = max(done)
        attempts = {**self.state.attempts, **waiting}
        return MentionState(
            since, {k: v for k, v in attempts.items() if since is None or k > since}
        )

    def lines(self) -> list[str]:
        """What ``invoke comments.mentions`` prints (no token in any of it)."""
        lines = [f"warning: {p}" for p in self.problems]
        if not self.batch.ok:
            return [*lines, f"mentions: could not read new mentions: {self.batch.error}"]
        read = len(self.batch.mentions) + len(self.batch.malformed)
        lines.append(
            f"mentions: {read} new from {self.batch.api_url}"
            if read
            else f"mentions: nothing new from {self.batch.api_url}"
        )
        width = max((len(_label(i)) for i in self.items), default=0)
        for item in self.items:
            lines.append(f"  {_label(item):<{width}}  {_describe(item)}")
            if item.outcome == "stored" and item.status == "spam":
                lines += [f"  {'':<{width}}    - {r}" for r in item.reasons]
        counts = ", ".join(
            f"{self.count(g)} {g}" for g in ("stored", "rejected", "skipped") if self.count(g)
        )
        waiting = sum(1 for i in self.items if not i.final)
        if waiting:
            counts = f"{counts} ({waiting} to try again next run)"
        if counts:
            lines.append(f"mentions: {counts}")
        if self.saved is not None and self.saved.since_id != self.state.since_id:
            lines.append(f"mentions: since_id {self.state.since_id} -> {self.saved.since_id}")
        if self.batch.more:
            lines.append("mentions: the page was full; run again for more")
        return lines


def _label(item: MentionOutcome) -> str:
    return "retry" if not item.final else item.group


def _describe(item: MentionOutcome) -> str:
    number = f"#{item.wm_id}" if item.wm_id is not None else "(no wm-id)"
    source = _short(item.source or "", 200)
    if item.outcome == "stored":
        return (
            f"{number} {item.kind} from {source} on {item.post_slug}: "
            f"{item.status} (id {item.comment_id})"
        )
    what = f"{number} {source}" if source else number
    return f"{what}: {item.reason}"


def receive_mentions(
    root: Path,
    batch: MentionBatch,
    client: Fetcher,
    *,
    targets: Mapping[str, str],
    known_slugs: Collection[str] | Mapping[str, str],
    rules: SpamSettings,
    now: datetime,
    state: MentionState | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> ReceiveReport:
    """Verify each mention of ``batch`` and file the verified ones as comments under ``root``.

    ``targets``: the site's absolute page URLs -> post slug (compared with
    ``urls.canonical_url``, so scheme, ``www.``, a trailing slash and tracking parameters do
    not matter). ``known_slugs`` and ``rules`` are those of ``comments.add_comment``.
    ``state``: the run's starting state (the tries of mentions being retried).
    A stored mention's Date is its ``published`` date, else ``wm-received``, else ``now``
    (never later than ``now``). Per-mention faults are outcomes, never exceptions.
    """
    root = Path(root)
    state = state or MentionState()
    if now.tzinfo is None:
        raise ValueError("comments: now must be timezone-aware")
    if not batch.ok:
        log.warning("comments: could not read new mentions: %s", batch.error)
        return ReceiveReport(batch, state=state)
    ours = {canonical_url(url): slug for url, slug in targets.items()}
    existing: list[Comment] = list(load_comments(root))
    filed = {(canonical_url(c.source), c.post_slug): c.id for c in existing if c.source is not None}
    items: list[MentionOutcome] = [
        MentionOutcome(m.wm_id, "malformed", reason=f"unusable entry {m.index}: {m.reason}")
        for m in batch.malformed
    ]
    for mention in batch.mentions:
        item = _receive_one(
            root,
            mention,
            client,
            ours=ours,
            filed=filed,
            existing=existing,
            known_slugs=known_slugs,
            rules=rules,
            now=now,
            tries=state.attempts.get(mention.wm_id, 0) + 1,
            max_attempts=max_attempts,
        )
        items.append(item)
    items.sort(key=lambda i: (i.wm_id is None, i.wm_id or 0))
    return ReceiveReport(batch, tuple(items), state)


def _receive_one(
    root: Path,
    mention: Mention,
    client: Fetcher,
    *,
    ours: Mapping[str, str],
    filed: dict[tuple[str, str], str],
    existing: list[Comment],
    known_slugs: Collection[str] | Mapping[str, str],
    rules: SpamSettings,
    now: datetime,
    tries: int,
    max_attempts: int,
) -> MentionOutcome:
    base = MentionOutcome(mention.wm_id, "stored", mention.source, mention.target, mention.kind)
    slug = ours.get(canonical_url(mention.target))
    if slug is None:
        return replace(
            base, outcome="not-ours", reason=f"{mention.target} is not one of this site's pages"
        )
    base = replace(base, post_slug=slug)
    earlier = filed.get((canonical_url(mention.source), slug))
    if earlier is not None:
        return replace(base, outcome="duplicate", reason=f"already filed as {earlier}")

    check = verify_mention(client, mention.source, mention.target)
    if check.outcome in ("no-link", "gone", "refused"):
        return replace(base, outcome=check.outcome, reason=check.reason)
    if check.outcome == "failed":
        reason = check.reason or "could not fetch the source"
        if reason.startswith(_POLICY_REFUSAL):
            return replace(base, outcome="refused", reason=reason)
        return _retry(base, reason, tries, max_attempts)

    text, own = _comment_text(mention)
    incoming = IncomingComment(
        author=mention.author_name or "",
        text=text if own else "",
        url=mention.author_url,
        source=mention.source,
        kind=mention.kind,
    )
    # Judged on what the mention says: not on the host-name stand-in for a missing author
    # (a name that is a web address is a strong spam signal for a typed comment), and not
    # on a line we wrote ("Bookmarked this post" reads like a spammer's praise).
    verdict = judge(incoming, spam_context(existing, slug, known_slugs), rules)
    status: Status = "spam" if verdict.status == "spam" else "pending"
    date = mention.published or mention.received or now
    try:
        added = add_comment(
            root,
            slug,
            known_slugs=known_slugs,
            author=mention.author_name or (urlsplit(mention.source).hostname or mention.source),
            text=text,
            url=mention.author_url,
            now=min(date, now),
            rules=rules,
            source=mention.source,
            kind=mention.kind,
            status=status,
        )
    except CommentError as exc:
        return replace(base, outcome="invalid", reason=str(exc))
    except OSError as exc:  # a full disk: nothing filed, try again next run
        return _retry(base, f"the comment could not be written ({exc})", tries, max_attempts)
    comment = added.comment
    existing.append(comment)
    filed[(canonical_url(mention.source), slug)] = comment.id
    log.info(
        "comments: mention %s from %s filed as %s under %s (%s)",
        mention.wm_id,
        mention.source,
        comment.id,
        slug,
        status,
    )
    return replace(base, comment_id=comment.id, status=status, reasons=verdict.reasons)


def _retry(base: MentionOutcome, reason: str, tries: int, max_attempts: int) -> MentionOutcome:
    final = tries >= max_attempts
    note = "given up" if final else "will try again next run"
    return replace(
        base,
        outcome="failed",
        reason=f"{reason} (try {tries} of {max_attempts}; {note})",
        final=final,
        attempt=tries,
    )


def _comment_text(mention: Mention) -> tuple[str, bool]:
    """The comment's text, and whether it is the mention's own words: for a like or a
    repost (whose content is the post liked) and for a mention without words, it is a
    short line of ours saying what the mention is."""
    if mention.kind in ("like", "repost"):
        return _SAID[mention.property], False
    if mention.text:
        return mention.text, True
    if mention.property == "rsvp" and mention.rsvp:
        return _RSVP.get(mention.rsvp, f"RSVP: {_short(mention.rsvp, 20)}"), False
    return _SAID.get(mention.property, "Mentioned this post"), False


# -- one run ----------------------------------------------------------------------------------


def run_mentions(
    root: Path,
    client: Fetcher,
    api_url: str,
    token: str | None,
    *,
    targets: Mapping[str, str],
    known_slugs: Collection[str] | Mapping[str, str],
    rules: SpamSettings,
    now: datetime,
    state_file: Path | None = None,
    per_page: int = PER_PAGE,
    max_attempts: int = MAX_ATTEMPTS,
) -> ReceiveReport:
    """``invoke comments.mentions``: read the state, fetch what is new, receive it, save the
    state (``<root>/.mentions.json`` unless ``state_file``). A damaged state file is a
    problem in the report and the run starts from the first mention (nothing is filed
    twice); a state that cannot be saved is a problem too. Never raises for either."""
    path = Path(state_file) if state_file is not None else state_path(root)
    problems: list[str] = []
    try:
        state = read_state(path)
    except MentionStateError as exc:
        problems.append(f"{exc}; reading every mention again (none is filed twice)")
        state = MentionState()
    batch = fetch_mentions(client, api_url, token, since_id=state.since_id, per_page=per_page)
    report = receive_mentions(
        root,
        batch,
        client,
        targets=targets,
        known_slugs=known_slugs,
        rules=rules,
        now=now,
        state=state,
        max_attempts=max_attempts,
    )
    saved = report.next_state()
    if saved != state or problems:
        try:
            write_state(path, saved)
        except OSError as exc:
            problems.append(f"comments: {path}: the state could not be saved ({exc})")
            saved = state
    return replace(report, saved=saved, problems=tuple(problems))
