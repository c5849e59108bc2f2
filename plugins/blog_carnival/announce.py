"""Announce a published roundup: a Webmention to every entry, and a record of who was told.

``announce`` sends one Webmention (``webmention.send``; W3C Recommendation section 3.1) from
the roundup's URL to each entry's URL, fetching each entry page once per run, and keeps
``<NNN>.announce.json`` beside the edition: for every target what was sent, when, to which
endpoint and what the receiver answered. A second run sends nothing to a target already
told; a target added later gets its own; a failed send (a 500, a timeout, a refused address,
no endpoint) is retried on the next run; ``resend`` sends again to every target (section
3.1.4, "Sending Webmentions for updated posts": re-send with the same source, re-discovering
each endpoint). Entries whose blogs have no endpoint get a short "you're in" message the host
can send by hand. Every fault is a value in the report, never an exception.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .fetch import Fetcher
from .textutil import fold, write_atomic
from .urls import safe_link
from .webmention import Discovery, SendResult, discover, notify

logger = logging.getLogger(__name__)

RECORD_FORMAT = 1
MAX_SENDERS = 8  # POSTs in flight at once (the fetcher's per-host limit still applies)

ItemOutcome = Literal["sent", "would-send", "already-sent", "no-endpoint", "failed"]
_LABELS: dict[str, str] = {
    "sent": "sent",
    "would-send": "would send",
    "already-sent": "already sent",
    "no-endpoint": "no endpoint",
    "failed": "failed",
}


@dataclass(frozen=True)
class AnnounceTarget:
    """One entry as the roundup shows it: the URL it links, the post's title, the blog's name."""

    url: str
    title: str
    contributor: str  # the blog's name
    author: str | None = None


@dataclass(frozen=True)
class AnnounceItem:
    """What happened to one target in this run."""

    target: AnnounceTarget
    outcome: ItemOutcome
    endpoint: str | None = None
    status: int | None = None  # the endpoint's HTTP status
    location: str | None = None  # a 201's status page
    error: str | None = None
    sent_at: str | None = None  # already-sent: when it was last sent (ISO 8601, UTC)


@dataclass(frozen=True)
class Message:
    """A plain-text "you're in" note for a contributor whose blog takes no Webmention."""

    contributor: str
    author: str | None
    posts: tuple[tuple[str, str], ...]  # (title, url) in roundup order
    edition: str | None
    roundup: str

    @property
    def text(self) -> str:
        who = self.author or self.contributor
        where = self.edition or "the roundup"
        lines = [
            f"To: {who}" + (f" ({self.contributor})" if self.author else ""),
            f"Subject: You're in: {where}",
            "",
            f"Hello {who},",
            "",
        ]
        if len(self.posts) == 1:
            title, url = self.posts[0]
            lines += [f'Your post "{title}" is in {where}.', f"Your post: {url}"]
        else:
            lines.append(f"Your posts are in {where}:")
            lines += [f'- "{title}" {url}' for title, url in self.posts]
        lines += [
            f"The roundup: {self.roundup}",
            "",
            "Thank you for taking part. A link back to the roundup helps readers find the rest.",
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AnnounceReport:
    """The outcome of one ``announce`` run; ``lines()`` is what the terminal shows."""

    source: str
    record_path: Path
    items: tuple[AnnounceItem, ...] = ()
    messages: tuple[Message, ...] = ()
    faults: tuple[str, ...] = ()  # problems beyond single targets (the record file)
    dry_run: bool = False
    resend: bool = False
    wrote_record: bool = False
    refused: str | None = None  # nothing was done, and why

    def count(self, outcome: ItemOutcome) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)

    @property
    def ok(self) -> bool:
        """Nothing refused, failed or left unrecorded (a blog without an endpoint is fine)."""
        return self.refused is None and not self.faults and not self.count("failed")

    def lines(self) -> list[str]:
        if self.refused:
            return [f"Nothing announced: {self.refused}"]
        n = len(self.items)
        head = f"Announcing {self.source} to {n} post{'s' if n != 1 else ''}"
        if self.resend:
            head += ", sending again to every post"
        lines = [head + "."]
        if self.dry_run:
            lines.append("Dry run: nothing is sent and nothing is written.")
        width = max((len(_LABELS[item.outcome]) for item in self.items), default=0)
        for item in self.items:
            lines.append(f"  {_LABELS[item.outcome]:<{width}}  {_describe(item)}")
        lines += list(self.faults)
        parts = [
            f"{self.count('sent')} sent",
            f"{self.count('already-sent')} already sent",
            f"{self.count('no-endpoint')} without an endpoint",
            f"{self.count('failed')} failed",
        ]
        if self.dry_run:
            parts.insert(0, f"{self.count('would-send')} would be sent")
        summary = ", ".join(parts) + "."
        if self.wrote_record:
            summary += f" Recorded in {self.record_path}."
        lines.append(summary)
        if self.messages:
            lines.append(
                f"{len(self.messages)} contributor(s) take no Webmention: "
                "send them the message(s) yourself."
            )
        return lines


def _describe(item: AnnounceItem) -> str:
    url = item.target.url
    if item.outcome == "sent":
        answer = f"HTTP {item.status}"
        if item.location:
            answer += f", status page {item.location}"
        return f"{url} -> {item.endpoint} ({answer})"
    if item.outcome == "would-send":
        return f"{url} -> {item.endpoint}"
    if item.outcome == "already-sent":
        return f"{url} (on {_readable(item.sent_at)})"
    if item.outcome == "no-endpoint":
        return f"{url}: no Webmention endpoint; tell {item.target.contributor} yourself"
    where = f" -> {item.endpoint}" if item.endpoint else ""
    return f"{url}{where}: {item.error} (tried again on the next run)"


def _readable(stamp: str | None) -> str:
    """ "2026-11-02T09:30:00Z" -> "2026-11-02 09:30 UTC"."""
    if not stamp:
        return "an earlier run"
    return stamp.replace("T", " ")[:16] + " UTC"


def _stamp(now: datetime) -> str:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the record file --------------------------------------------------------------------------


class BadRecord(ConfigError):
    """An announce record that cannot be trusted (the message names the file)."""

    def __init__(self, reason: str) -> None:
        super().__init__([reason])
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def read_record(path: Path) -> dict[str, dict[str, Any]]:
    """The mentions recorded in ``path`` keyed by target URL ({} when there is no file yet).

    Raises ``BadRecord`` with a plain reason naming the file when it cannot be trusted: a
    run must not resend to everyone, or overwrite history, because a file was damaged.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BadRecord(f"cannot read {path} ({reason})") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadRecord(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("mentions"), dict):
        raise BadRecord(f'{path} is not an announce record (no "mentions" table)')
    if not isinstance(data.get("format"), int) or data["format"] > RECORD_FORMAT:
        raise BadRecord(f"{path} has an unknown format ({data.get('format')!r})")
    mentions: dict[str, dict[str, Any]] = {}
    for url, entry in data["mentions"].items():
        sent = entry.get("sent_at") if isinstance(entry, dict) else None
        if not isinstance(sent, list) or not all(isinstance(s, str) for s in sent):
            raise BadRecord(f"{path}: the record for {url} is damaged (no sent_at list)")
        mentions[url] = entry
    return mentions


def record_text(mentions: Mapping[str, Mapping[str, Any]]) -> str:
    """The record file's text: pretty JSON, keys sorted, so a rerun changes only what changed."""
    data = {"format": RECORD_FORMAT, "mentions": mentions}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _entry(
    previous: Mapping[str, Any] | None,
    target: AnnounceTarget,
    source: str,
    result: SendResult,
    stamp: str,
) -> dict[str, Any]:
    sent = list(previous.get("sent_at", [])) if previous else []
    if previous and previous.get("source") != source:
        sent = []  # sends from another roundup URL say nothing about this one
    if result.ok:
        sent.append(stamp)
    return {
        "source": source,
        "title": target.title,
        "contributor": target.contributor,
        "author": target.author,
        "attempted_at": stamp,
        "outcome": result.outcome,
        "endpoint": result.endpoint,
        "http_status": result.status,
        "location": result.location,
        "error": result.error,
        "sent_at": sent,
    }


def _already_sent(entry: Mapping[str, Any] | None, source: str) -> str | None:
    """When ``entry`` was last sent from ``source``, or None if it never was."""
    if not entry or entry.get("source") != source or not entry.get("sent_at"):
        return None
    return str(entry["sent_at"][-1])


# -- announcing -------------------------------------------------------------------------------


def announce(
    source: str,
    targets: Sequence[AnnounceTarget],
    record_path: Path,
    fetcher: Fetcher,
    *,
    now: datetime,
    dry_run: bool = False,
    resend: bool = False,
    edition: str | None = None,
) -> AnnounceReport:
    """Send a Webmention from ``source`` (the roundup's absolute URL) to each target.

    ``edition`` names the edition in the "you're in" messages ("The Networking Carnival #2").
    A dry run fetches the pages and discovers the endpoints but sends and writes nothing.
    """
    record_path = Path(record_path)
    base = dict(source=source, record_path=record_path, dry_run=dry_run, resend=resend)
    if safe_link(source) is None:
        return AnnounceReport(**base, refused=f"the roundup URL {source!r} is not absolute http(s)")
    try:
        mentions = read_record(record_path)
    except BadRecord as exc:
        return AnnounceReport(**base, refused=str(exc))

    chosen: dict[str, AnnounceTarget] = {}
    for target in targets:
        chosen.setdefault(target.url, target)  # listed twice: one page fetch, one mention

    stamp = _stamp(now)
    items: dict[str, AnnounceItem] = {}
    todo: list[AnnounceTarget] = []
    for url, target in chosen.items():
        when = None if resend else _already_sent(mentions.get(url), source)
        if when:
            items[url] = AnnounceItem(target, "already-sent", sent_at=when)
        else:
            todo.append(target)

    pages = fetcher.fetch_all(t.url for t in todo)  # each page once, in parallel
    found = {t.url: discover(fetcher, t.url, page=pages[t.url]) for t in todo}
    to_send = [t for t in todo if found[t.url].endpoint and not found[t.url].error]

    results: dict[str, SendResult] = {}
    for target in todo:
        discovery = found[target.url]
        if discovery.error:
            results[target.url] = SendResult(source, target.url, "failed", error=discovery.error)
        elif discovery.endpoint is None:
            results[target.url] = SendResult(source, target.url, "no-endpoint")
    if dry_run:
        for target in to_send:
            endpoint = found[target.url].endpoint
            items[target.url] = AnnounceItem(target, "would-send", endpoint=endpoint)
    elif to_send:
        results.update(_send_all(fetcher, source, to_send, found))

    for url, result in results.items():
        items[url] = AnnounceItem(
            chosen[url],
            result.outcome,
            endpoint=result.endpoint,
            status=result.status,
            location=result.location,
            error=result.error,
        )
    ordered = tuple(items[url] for url in chosen)

    faults: list[str] = []
    wrote = False
    if results and not dry_run:
        for url, result in results.items():
            mentions[url] = _entry(mentions.get(url), chosen[url], source, result, stamp)
        try:
            write_atomic(record_path, record_text(mentions))
            wrote = True
        except OSError as exc:
            faults.append(
                f"Could not write {record_path} ({exc.strerror or exc}): what was sent above "
                "is not recorded, so the next run sends it again."
            )

    return AnnounceReport(
        **base,
        items=ordered,
        messages=_messages(ordered, source, edition),
        faults=tuple(faults),
        wrote_record=wrote,
    )


def _send_all(
    fetcher: Fetcher,
    source: str,
    targets: Sequence[AnnounceTarget],
    found: Mapping[str, Discovery],
) -> dict[str, SendResult]:
    """One POST per target, a few at a time; a bug in one send is that target's failure."""

    def send(target: AnnounceTarget) -> SendResult:
        endpoint = found[target.url].endpoint
        assert endpoint is not None
        try:
            return notify(fetcher, endpoint, source, target.url)
        except Exception as exc:  # never a traceback for the host; the details go to the log
            logger.debug("carnival: sending to %s failed", endpoint, exc_info=True)
            return SendResult(
                source,
                target.url,
                "failed",
                endpoint,
                error=f"unexpected error ({type(exc).__name__})",
            )

    workers = max(1, min(MAX_SENDERS, fetcher.settings.concurrency, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="carnival-wm") as pool:
        answers = list(pool.map(send, targets))
    return {target.url: answer for target, answer in zip(targets, answers, strict=True)}


def _messages(
    items: Sequence[AnnounceItem], source: str, edition: str | None
) -> tuple[Message, ...]:
    """One message per contributor (blog names folded) whose posts have no endpoint."""
    grouped: dict[str, list[AnnounceTarget]] = {}
    for item in items:
        if item.outcome == "no-endpoint":
            key = fold(item.target.contributor) or item.target.url
            grouped.setdefault(key, []).append(item.target)
    return tuple(
        Message(
            contributor=posts[0].contributor,
            author=posts[0].author,
            posts=tuple((t.title, t.url) for t in posts),
            edition=edition,
            roundup=source,
        )
        for posts in grouped.values()
    )


def write_messages(report: AnnounceReport, path: Path) -> int:
    """Write the report's messages to ``path`` (atomically), one after another; return how many.

    Nothing is written when there are none. Raises OSError when the file cannot be written
    (the caller turns it into one line for the host).
    """
    if not report.messages:
        return 0
    separator = "\n" + "-" * 72 + "\n\n"
    write_atomic(Path(path), separator.join(m.text for m in report.messages))
    return len(report.messages)
