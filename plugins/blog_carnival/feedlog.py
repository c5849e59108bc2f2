"""What happened the last times each URL was fetched: its last success and its last error.

The HTTP cache keeps the last good body; this keeps the history a host asks about in
``carnival.status`` ("when did this feed last work, and what is wrong with it now?"). One
small JSON file in the cache folder, merged and rewritten once per run, atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .textutil import write_atomic

logger = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class UrlHistory:
    last_success: str | None = None  # ISO 8601, UTC
    last_error: str | None = None
    last_error_at: str | None = None


def read_log(path: Path) -> dict[str, UrlHistory]:
    """The log, or an empty one when it is missing or damaged (it is only history)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        return {
            str(url): UrlHistory(
                **{k: v for k, v in item.items() if k in UrlHistory.__annotations__}
            )
            for url, item in data["urls"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("carnival: ignoring damaged feed log %s (%s)", path, exc)
        return {}


def record(
    path: Path, outcomes: Iterable[tuple[str, str | None]], now: dt.datetime
) -> Mapping[str, UrlHistory]:
    """Merge this run's (url, error or None) outcomes into the log and write it."""
    log = read_log(path)
    stamp = now.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    for url, error in outcomes:
        before = log.get(url, UrlHistory())
        if error is None:
            log[url] = UrlHistory(stamp, before.last_error, before.last_error_at)
        else:
            log[url] = UrlHistory(before.last_success, error, stamp)
    data = {
        "format": FORMAT,
        "urls": {
            url: {
                "last_success": h.last_success,
                "last_error": h.last_error,
                "last_error_at": h.last_error_at,
            }
            for url, h in sorted(log.items())
        },
    }
    try:
        write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n", durable=False)
    except OSError as exc:
        logger.warning("carnival: cannot write feed log %s: %s", path, exc)
    return log
