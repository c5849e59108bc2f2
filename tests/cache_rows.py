"""Reading and damaging the HTTP cache's database behind its back, as tests need to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from blog_carnival.cache import DB_NAME


def stored(folder: Path, url: str) -> tuple[str, bytes, float] | None:
    """``url``'s row as it is on disk: (meta, body, validated), or None."""
    with sqlite3.connect(folder / DB_NAME) as db:
        return db.execute(
            "SELECT meta, body, validated FROM responses WHERE url = ?", (url,)
        ).fetchone()


def rows(folder: Path) -> dict[str, bytes]:
    """Every stored URL and its body."""
    with sqlite3.connect(folder / DB_NAME) as db:
        return dict(db.execute("SELECT url, body FROM responses"))


def set_row(folder: Path, url: str, **values) -> None:
    """Write columns of ``url``'s row behind the cache's back, as damage would."""
    with sqlite3.connect(folder / DB_NAME) as db:
        for column, value in values.items():
            db.execute(f"UPDATE responses SET {column} = ? WHERE url = ?", (value, url))
