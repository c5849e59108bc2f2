"""The plugin's settings: defaults in one place, user values laid over them once."""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .fetch import FetchSettings

_FETCH = FetchSettings()
DEFAULTS: dict[str, object] = {
    "CARNIVAL_PATH": "carnival",
    "CARNIVAL_CACHE_PATH": ".carnival-cache",
    "CARNIVAL_OFFLINE": _FETCH.offline,
    "CARNIVAL_TIMEOUT": _FETCH.timeout,
    "CARNIVAL_DEADLINE": _FETCH.deadline,
    "CARNIVAL_MAX_BYTES": _FETCH.max_bytes,
    "CARNIVAL_CONCURRENCY": _FETCH.concurrency,
    "CARNIVAL_PER_HOST": _FETCH.per_host,
    "CARNIVAL_USER_AGENT": _FETCH.user_agent,
    "CARNIVAL_ALLOWED_PRIVATE_HOSTS": tuple(_FETCH.allowed_private_hosts),
    "CARNIVAL_MAX_FRESHNESS": _FETCH.max_freshness,
    # Revalidate every cached feed, fresh or not (`invoke build --refresh`). None reads the
    # CARNIVAL_REFRESH environment variable, like CARNIVAL_TODAY below.
    "CARNIVAL_REFRESH": None,
    "CARNIVAL_STRICT": False,
    "CARNIVAL_EXCERPT_WORDS": 40,
    "CARNIVAL_URL": "carnival/{carnival}/",
    "CARNIVAL_SAVE_AS": "carnival/{carnival}/index.html",
    "CARNIVAL_EDITION_URL": "carnival/{carnival}/{number}/",
    "CARNIVAL_EDITION_SAVE_AS": "carnival/{carnival}/{number}/index.html",
    "CARNIVAL_FEED_ATOM": "carnival/{carnival}/atom.xml",
    "CARNIVAL_FEED_RSS": "carnival/{carnival}/rss.xml",
    "CARNIVAL_FEED_JSON": "carnival/{carnival}/feed.json",
    "CARNIVAL_OPML": "carnival/{carnival}/contributors.opml",
    "CARNIVALS_URL": "carnival/",
    "CARNIVALS_SAVE_AS": "carnival/index.html",
    "CARNIVAL_CATEGORY": "Carnival",
    # Where a post that was an entry shows its note: "end" appends it to the post's content
    # (any theme, and feeds); "theme" only sets `article.carnival_badge` for the theme to place.
    "CARNIVAL_BADGE": "end",
    # The plugin's stylesheet, under the theme's static folder; "" when the theme styles it all.
    "CARNIVAL_STYLESHEET": "css/carnival.css",
    # "Today" for deciding which editions are still calls for submissions: a date (or
    # "2026-12-01"); None means the clock. The CARNIVAL_TODAY environment variable is read
    # when the setting is None, so a build or a test can pin the day without editing files.
    "CARNIVAL_TODAY": None,
}


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class CarnivalSettings:
    """Every CARNIVAL_* setting, read once, typed."""

    path: Path
    cache_path: Path
    offline: bool
    timeout: float
    deadline: float
    max_bytes: int
    concurrency: int
    per_host: int
    user_agent: str
    allowed_private_hosts: frozenset[str]
    strict: bool
    excerpt_words: int
    urls: Mapping[str, str]
    today: dt.date
    badge: str = "end"
    stylesheet: str = "css/carnival.css"  # under the theme's static folder; "" for none
    max_freshness: float = _FETCH.max_freshness
    refresh: bool = False

    @property
    def fetch(self) -> FetchSettings:
        """The fetcher's settings, from these (the one place they are translated)."""
        return FetchSettings(
            timeout=self.timeout,
            deadline=self.deadline,
            max_bytes=self.max_bytes,
            concurrency=self.concurrency,
            per_host=self.per_host,
            user_agent=self.user_agent,
            allowed_private_hosts=self.allowed_private_hosts,
            offline=self.offline,
            max_freshness=self.max_freshness,
            refresh=self.refresh,
        )

    @property
    def http_cache_path(self) -> Path:
        return self.cache_path / "http"

    @property
    def parse_cache_path(self) -> Path:
        return self.cache_path / "parsed"

    @property
    def feed_log_path(self) -> Path:
        return self.cache_path / "feeds.json"


def read_settings(
    pelican_settings: Mapping[str, object],
    base: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> CarnivalSettings:
    """Lay user settings over DEFAULTS; environment-style strings are accepted for flags.

    A misspelt CARNIVAL_* key is an error naming the nearest valid key. ``environ`` and
    ``clock`` are injected for tests (default: os.environ and the UTC wall clock).
    """
    problems = []
    for key in pelican_settings:
        if key.startswith("CARNIVAL") and key not in DEFAULTS:
            near = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"setting {key} is not a carnival setting{hint}")
    merged = {**DEFAULTS, **{k: v for k, v in pelican_settings.items() if k in DEFAULTS}}
    base = base or Path.cwd()

    def number(key: str, kind, minimum) -> object:
        try:
            value = kind(merged[key])
        except (TypeError, ValueError):
            problems.append(f"setting {key} must be a number, got {merged[key]!r}")
            return kind(DEFAULTS[key])
        if value < minimum:
            problems.append(f"setting {key} must be at least {minimum}, got {value!r}")
            return kind(DEFAULTS[key])
        return value

    def today() -> dt.date:
        value = merged["CARNIVAL_TODAY"]
        if value in (None, ""):
            value = (os.environ if environ is None else environ).get("CARNIVAL_TODAY") or None
        if value is None:
            return (clock or (lambda: dt.datetime.now(dt.UTC)))().date()
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            problems.append(f"setting CARNIVAL_TODAY must be a date like 2026-12-01, got {value!r}")
            return (clock or (lambda: dt.datetime.now(dt.UTC)))().date()

    badge = str(merged["CARNIVAL_BADGE"])
    if badge not in ("end", "theme"):
        problems.append(f"setting CARNIVAL_BADGE must be 'end' or 'theme', got {badge!r}")
        badge = "end"

    refresh = merged["CARNIVAL_REFRESH"]
    if refresh in (None, ""):
        refresh = (os.environ if environ is None else environ).get("CARNIVAL_REFRESH", "")
    hosts = merged["CARNIVAL_ALLOWED_PRIVATE_HOSTS"]
    if isinstance(hosts, str):
        hosts = [h for h in hosts.replace(",", " ").split() if h]
    result = CarnivalSettings(
        path=(base / str(merged["CARNIVAL_PATH"])).resolve(),
        cache_path=(base / str(merged["CARNIVAL_CACHE_PATH"])).resolve(),
        offline=_truthy(merged["CARNIVAL_OFFLINE"]),
        timeout=number("CARNIVAL_TIMEOUT", float, 0.1),
        deadline=number("CARNIVAL_DEADLINE", float, 0.1),
        max_bytes=number("CARNIVAL_MAX_BYTES", int, 1024),
        concurrency=number("CARNIVAL_CONCURRENCY", int, 1),
        per_host=number("CARNIVAL_PER_HOST", int, 1),
        user_agent=str(merged["CARNIVAL_USER_AGENT"]),
        allowed_private_hosts=frozenset(str(h).strip().lower() for h in hosts),
        strict=_truthy(merged["CARNIVAL_STRICT"]),
        max_freshness=number("CARNIVAL_MAX_FRESHNESS", float, 0),
        refresh=_truthy(refresh),
        excerpt_words=number("CARNIVAL_EXCERPT_WORDS", int, 5),
        urls={
            k: str(v)
            for k, v in merged.items()
            if k.endswith(("_URL", "_SAVE_AS", "_ATOM", "_RSS", "_JSON", "_OPML"))
        },
        today=today(),
        badge=badge,
        stylesheet=str(merged["CARNIVAL_STYLESHEET"] or ""),
    )
    if problems:
        raise ConfigError(problems)
    return result


# -- the conversation under posts, and the site's JSON Feed ---------------------------------------

COMMENTS_DEFAULTS: dict[str, object] = {
    "COMMENTS_ENABLED": False,  # show comments, mentions and their counts
    "COMMENTS_PATH": "comments",  # under the content folder: <post-slug>/<id>.md
    "COMMENTS_EMAIL": None,  # "Reply by e-mail" goes here
    "COMMENTS_FEED_ATOM": "feeds/comments/{slug}.atom.xml",  # one post's comments
    "COMMENTS_FEED_ALL_ATOM": "feeds/comments.atom.xml",  # every approved comment
    "FEED_ALL_JSON": None,  # the site's JSON Feed 1.1, e.g. "feeds/all.json"
    "WEBMENTION_ENDPOINT": None,  # advertised on posts and roundups when set
}


@dataclass(frozen=True)
class CommentsSettings:
    enabled: bool
    path: Path
    email: str | None
    feed_atom: str | None
    feed_all_atom: str | None
    feed_all_json: str | None
    webmention_endpoint: str | None


def read_comments_settings(pelican_settings: Mapping[str, object]) -> CommentsSettings:
    """The conversation's settings over their defaults; paths under the content folder."""
    merged = {
        **COMMENTS_DEFAULTS,
        **{k: v for k, v in pelican_settings.items() if k in COMMENTS_DEFAULTS},
    }
    content = Path(str(pelican_settings.get("PATH", "content")))

    def text(key: str) -> str | None:
        value = merged[key]
        return str(value) if value else None

    return CommentsSettings(
        enabled=_truthy(merged["COMMENTS_ENABLED"]),
        path=content / str(merged["COMMENTS_PATH"]),
        email=text("COMMENTS_EMAIL"),
        feed_atom=text("COMMENTS_FEED_ATOM"),
        feed_all_atom=text("COMMENTS_FEED_ALL_ATOM"),
        feed_all_json=text("FEED_ALL_JSON"),
        webmention_endpoint=text("WEBMENTION_ENDPOINT"),
    )
