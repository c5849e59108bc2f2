"""One summary at the end of a build: per edition what resolved, per feed what failed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .model import Carnival, EditionResult, Source

MAX_NOTES = 30  # per edition on the terminal; Report.notices keeps them all


@dataclass(frozen=True)
class Report:
    text: str
    failures: tuple[str, ...]  # "networking-carnival/3: https://feed: HTTP 404"
    notices: tuple[str, ...]


def render_report(
    carnivals: tuple[Carnival, ...],
    results: dict[str, EditionResult],
    today: dt.date | None = None,
) -> Report:
    lines = ["carnival report:"]
    failures: list[str] = []
    notices: list[str] = []
    for carnival in carnivals:
        for edition in carnival.editions:
            if edition.external:
                lines.append(f"  {edition.key}: hosted elsewhere ({edition.roundup_url})")
                continue
            if today is not None and edition.is_call(today):
                lines.append(
                    f"  {edition.key}: call for submissions until {edition.deadline}, "
                    f"roundup on {edition.date}"
                )
                continue
            result = results.get(edition.key)
            if result is None:
                continue
            resolved = result.count(Source.FEED, Source.TAG)
            page = result.count(Source.PAGE)
            missing = result.count(Source.UNRESOLVED)
            origin = "lock" if result.from_lock else "network"
            lines.append(
                f"  {edition.key} ({origin}): {resolved} resolved, {page} from page fallback, "
                f"{missing} unresolved"
            )
            for url, reason in result.failures:
                failures.append(f"{edition.key}: {url}: {reason}")
                lines.append(f"    failed: {url}: {reason}")
            for n, notice in enumerate(result.notices):
                notices.append(f"{edition.key}: {notice}")
                if n < MAX_NOTES:
                    lines.append(f"    note: {notice}")
            if len(result.notices) > MAX_NOTES:
                lines.append(
                    f"    note: ... and {len(result.notices) - MAX_NOTES} more notes like these"
                )
    if not failures:
        lines.append("  no feed failures")
    return Report(text="\n".join(lines), failures=tuple(failures), notices=tuple(notices))
