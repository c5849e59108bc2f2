"""Assemble an edition from what was collected (or from its lock): pure functions, no I/O.

Per submission: the entry in its feed, else its page, else unresolved with the host's title;
per contributor in tag mode: their tagged posts in the window. Then dedupe and the host's
limits, with a notice for everything left out.
"""

from __future__ import annotations

from .collect import Documents
from .model import Carnival, Edition, EditionResult, ParsedFeed, RoundupEntry, Source
from .select import (
    apply_limits,
    dedupe,
    find_in_feed,
    from_feed,
    from_page,
    select_tagged,
    unresolved,
    with_submission,
)
from .sources import EditionPlan
from .urls import canonical_url


def assemble(plan: EditionPlan, docs: Documents, excerpt_words: int = 40) -> EditionResult:
    """One edition's entries, failures and notices from the run's documents."""
    edition = plan.edition
    failures: dict[str, str] = {}
    notices: list[str] = []
    chosen: list[RoundupEntry] = []

    def note(url: str | None) -> None:
        """A feed's (or page's) failure, stale copy and parse warnings, said once per URL."""
        if not url:
            return
        reason = docs.failure(url)
        if reason:
            failures[url] = reason
        fetched = docs.fetched.get(url)
        if fetched is not None and fetched.stale:
            notices.append(f"used the cached copy of {url} ({fetched.stale})")
        parsed = docs.feeds.get(url)
        if isinstance(parsed, ParsedFeed):  # what parsing recovered from or left out
            notices.extend(f"{url}: {warning}" for warning in parsed.warnings)

    for sub in plan.submissions:
        feed_url = docs.feed_of.get(sub.url)
        feed = docs.feeds.get(feed_url) if feed_url else None
        note(feed_url)
        entry = None
        if isinstance(feed, ParsedFeed):
            found = find_in_feed(feed, sub.url)
            if found is not None:
                entry = from_feed(found, feed, url=sub.url, excerpt_words=excerpt_words)
            else:
                notices.append(f"{sub.url} is not in its feed {feed_url}; used its page")
        elif feed_url is None and docs.ok(sub.url):
            notices.append(f"{sub.url}: no feed given and none found on the page; used the page")
        if entry is None:
            info = docs.pages.get(sub.url)
            if info is not None and not docs.is_feed(sub.url):
                entry = from_page(info, sub.url, excerpt_words)
            else:
                note(sub.url)
                entry = unresolved(sub)
        chosen.append(with_submission(entry, sub))

    for person in plan.contributors:
        feed_url = docs.feed_of.get(person.blog)
        if feed_url is None:
            reason = docs.failure(person.blog) or "no feed given and none found on the blog's page"
            failures[person.blog] = reason
            continue
        feed = docs.feeds.get(feed_url)
        note(feed_url)
        if isinstance(feed, ParsedFeed):
            tagged, left_out = select_tagged(feed, edition, excerpt_words)
            chosen.extend(tagged)
            notices.extend(left_out)

    return finish(plan.carnival, edition, chosen, failures, notices)


def finish(
    carnival: Carnival,
    edition: Edition,
    chosen: list[RoundupEntry],
    failures: dict[str, str],
    notices: list[str],
    from_lock: bool = False,
) -> EditionResult:
    """Dedupe, apply the host's limits, and say what each of them left out."""
    notices = list(dict.fromkeys(notices))  # a feed read for several entries speaks once
    kept, duplicates = dedupe(chosen)
    notices.extend(f"dropped duplicate {e.url}" for e in duplicates if e.source == Source.TAG)
    max_entries = edition.max_entries or carnival.max_entries
    max_per = edition.max_per_contributor or carnival.max_per_contributor
    kept, limited = apply_limits(kept, max_entries, max_per)
    notices.extend(f"limit dropped {e.url}: {why}" for e, why in limited)
    return EditionResult(
        key=edition.key,
        entries=tuple(kept),
        failures=tuple(sorted(failures.items())),
        notices=tuple(notices),
        from_lock=from_lock,
    )


def from_lock(carnival: Carnival, edition: Edition, locked: list[RoundupEntry]) -> EditionResult:
    """An edition built from its lock alone: no network. Submissions added after freezing are
    listed unresolved and named in the report."""
    by_key = {e.key: e for e in locked}
    chosen, notices = [], []
    for sub in edition.entries:
        entry = by_key.pop(canonical_url(sub.url), None)
        if entry is None:
            notices.append(
                f"{sub.url} is not in the lock: run `invoke carnival.freeze {edition.key}`"
            )
            entry = unresolved(sub)
        chosen.append(with_submission(entry, sub))
    chosen.extend(e for e in by_key.values() if e.source == Source.TAG)
    return finish(carnival, edition, chosen, {}, notices, from_lock=True)
