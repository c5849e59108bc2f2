"""What to fetch for an edition: submitted posts, their feeds, contributors' feeds.

Pure planning; the pipeline fetches in phases (known URLs, then feeds discovered on
pages, then pages of posts their feed no longer carries).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Carnival, Contributor, Edition, Submission


@dataclass(frozen=True)
class Need:
    """One edition's wants: per submission its feed (if known), per contributor theirs."""

    edition: Edition
    submissions: tuple[Submission, ...]
    contributors: tuple[Contributor, ...]

    def first_urls(self) -> list[str]:
        """URLs known before anything is fetched: feeds given, else the pages to discover them."""
        urls = []
        for sub in self.submissions:
            urls.append(sub.feed or sub.url)
        for person in self.contributors:
            urls.append(person.feed or person.blog)
        return urls


def plan(carnival: Carnival, edition: Edition) -> Need:
    """Tag mode asks every contributor's feed; submissions always ask their own."""
    contributors = carnival.contributors if edition.tag else ()
    return Need(edition=edition, submissions=edition.entries, contributors=contributors)
