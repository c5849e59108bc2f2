"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/): the same items, ids and full content
as the site's Atom feeds, for readers that prefer JSON. Pure: values in, text out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

VERSION = "https://jsonfeed.org/version/1.1"
MEDIA_TYPE = "application/feed+json"


@dataclass(frozen=True)
class JsonFeedItem:
    id: str  # the Atom entry's id: "id (required, string)" and stable across builds
    url: str | None
    title: str | None
    content_html: str  # at least one of content_html and content_text is required
    date_published: dt.datetime | None = None
    date_modified: dt.datetime | None = None
    summary: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def _date(value: dt.datetime | None) -> str | None:
    """RFC 3339, as 1.1 requires for dates; a naive datetime is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def _compact(data: dict) -> dict:
    """Optional keys that have no value are left out rather than written as null."""
    return {k: v for k, v in data.items() if v not in (None, "", [], ())}


def json_feed(
    *,
    title: str,
    items: Iterable[JsonFeedItem],
    home_page_url: str | None = None,
    feed_url: str | None = None,
    description: str | None = None,
    language: str | None = None,
    authors: Iterable[str] = (),
) -> str:
    """The feed document. ``version``, ``title`` and ``items`` are the required top-level keys;
    each item needs an ``id`` and content (JSON Feed 1.1, "Top-level" and "Items")."""
    document = _compact(
        {
            "version": VERSION,
            "title": title,
            "home_page_url": home_page_url,
            "feed_url": feed_url,
            "description": description,
            "language": language,
            "authors": [{"name": name} for name in authors],
        }
    )
    document["items"] = [
        {"id": str(item.id), "content_html": item.content_html or ""}
        | _compact(
            {
                "url": item.url,
                "title": item.title,
                "summary": item.summary,
                "date_published": _date(item.date_published),
                "date_modified": _date(item.date_modified),
                "authors": [{"name": name} for name in item.authors],
                "tags": list(item.tags),
            }
        )
        for item in items
    ]
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"
