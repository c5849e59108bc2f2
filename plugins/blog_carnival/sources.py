"""What to fetch for an edition, decided once: submitted posts, their feeds, contributors' feeds.

Pure planning. A submission or a contributor is read from one feed, chosen in exactly one
place (``feed_for``): the feed the host gave, else the URL itself when it is a feed, else the
first feed its page advertises. Collection fetches in phases (the URLs known up front, then
feeds discovered on pages, then pages of posts their feed no longer carries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .model import Carnival, Contributor, Edition, PageInfo, Submission, Want


@dataclass(frozen=True)
class EditionPlan:
    """One edition's wants: per submission its feed (if known), per contributor theirs."""

    carnival: Carnival
    edition: Edition
    submissions: tuple[Submission, ...]
    contributors: tuple[Contributor, ...]

    def first_urls(self) -> list[str]:
        """URLs known before anything is fetched: feeds given, else the pages to discover them."""
        return [s.feed or s.url for s in self.submissions] + [
            p.feed or p.blog for p in self.contributors
        ]

    def readers(self) -> list[tuple[str, str | None]]:
        """(page, feed given) for everything this edition reads a feed for."""
        return [(s.url, s.feed) for s in self.submissions] + [
            (p.blog, p.feed) for p in self.contributors
        ]


def plan(carnival: Carnival, edition: Edition) -> EditionPlan:
    """Tag mode asks every contributor's feed; submissions always ask their own."""
    contributors = carnival.contributors if edition.tag else ()
    return EditionPlan(carnival, edition, edition.entries, contributors)


def feed_for(
    url: str,
    given: str | None,
    is_feed: Callable[[str], bool],
    page: Callable[[str], PageInfo | None],
) -> str | None:
    """The feed to read for a post or blog: the one given, the URL itself if it is a feed, or
    the first one its page advertises. The only place this is decided."""
    if given:
        return given
    if is_feed(url):
        return url
    info = page(url)
    return info.feed_links[0] if info and info.feed_links else None


def wants(plans: Iterable[EditionPlan], feed_of: Mapping[str, str | None]) -> dict[str, Want]:
    """Per feed URL, what the plans read it for: the editions' tags for the contributors whose
    feed it is, and the submitted URLs it is the feed of. Feeds not yet known (``feed_of``
    not decided) are left out."""
    tags: dict[str, set[str]] = {}
    urls: dict[str, set[str]] = {}
    for p in plans:
        for person in p.contributors:
            url = person.feed or feed_of.get(person.blog)
            if url and p.edition.tag:
                tags.setdefault(url, set()).add(p.edition.tag)
        for sub in p.submissions:
            url = sub.feed or feed_of.get(sub.url)
            if url:
                urls.setdefault(url, set()).add(sub.url)
    return {
        url: Want(frozenset(tags.get(url, ())), frozenset(urls.get(url, ())))
        for url in tags.keys() | urls.keys()
    }
