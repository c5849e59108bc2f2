"""Read and validate carnival/<carnival>/carnival.toml and <NNN>.toml, once.

Every problem names the file and the field; all problems are collected and raised
together as one ConfigError, so a host fixes them in one pass.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
import zoneinfo
from pathlib import Path

from .errors import ConfigError
from .model import Carnival, Contributor, Edition, Person, Submission
from .urls import canonical_url, safe_link

EDITION_FILE = re.compile(r"^(\d{3,})\.toml$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


CARNIVAL_KEYS = {
    "title",
    "description",
    "organizer",
    "rules",
    "contributors",
    "max_entries",
    "max_per_contributor",
    "submit_email",
    "timezone",
}
PERSON_KEYS = {"name", "url"}
CONTRIBUTOR_KEYS = {"name", "blog", "feed"}
EDITION_KEYS = {
    "number",
    "title",
    "host",
    "opens",
    "deadline",
    "date",
    "tag",
    "roundup_url",
    "intro",
    "sections",
    "entries",
    "max_entries",
    "max_per_contributor",
    "how_to_submit",
}
ENTRY_KEYS = {"url", "feed", "section", "note", "pick", "title"}


class _Reader:
    """Validates one TOML table, recording problems as 'file: field: message'."""

    def __init__(self, path: Path, root: Path, problems: list[str], text: str | None = None):
        self.path = path
        self.source_text = text  # the text as it would be written, when not read from disk
        self.name = (
            str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)
        )
        self.problems = problems

    def problem(self, field: str, message: str) -> None:
        where = f"{self.name}: {field}: " if field else f"{self.name}: "
        self.problems.append(where + message)

    def load(self) -> dict | None:
        try:
            if self.source_text is not None:
                return tomllib.loads(self.source_text)
            with self.path.open("rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            self.problem("", f"invalid TOML: {exc}")
        except OSError as exc:
            self.problem("", f"cannot read: {exc.strerror}")
        return None

    def unknown_keys(self, table: dict, allowed: set[str], prefix: str = "") -> None:
        for key in table:
            if key not in allowed:
                near = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = (
                    f" (did you mean '{near[0]}'?)"
                    if near
                    else f" (valid: {', '.join(sorted(allowed))})"
                )
                self.problem(prefix + key, "unknown key" + hint)

    def text(self, table: dict, key: str, field: str, *, required: bool = True) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(field, "missing")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.problem(field, f"must be a non-empty string, got {value!r}")
            return None
        return value.strip()

    def url(self, table: dict, key: str, field: str, *, required: bool = True) -> str | None:
        value = self.text(table, key, field, required=required)
        if value is None:
            return None
        if safe_link(value) is None or "://" not in value:
            self.problem(field, f"must be an absolute http(s) URL, got {value!r}")
            return None
        return value

    def date(self, table: dict, key: str, field: str) -> dt.date | None:
        value = table.get(key)
        if value is None:
            self.problem(field, "missing")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.problem(field, f"must be a date like 2026-10-31, got {value!r}")
        return None

    def email(self, table: dict, key: str, field: str) -> str | None:
        value = self.text(table, key, field, required=False)
        if value is None:
            return None
        if not EMAIL.match(value):
            self.problem(field, f"must be an e-mail address like host@example.org, got {value!r}")
            return None
        return value

    def timezone(self, table: dict, key: str, field: str) -> str:
        """An IANA time zone name ("Europe/Lisbon"); deadlines end at midnight there."""
        value = self.text(table, key, field, required=False)
        if value is None:
            return "UTC"
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.problem(field, f"unknown time zone {value!r} (use a name like 'Europe/Lisbon')")
            return "UTC"
        return value

    def limit(self, table: dict, key: str, field: str) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(field, f"must be a whole number of at least 1, got {value!r}")
            return None
        return value

    def tables(self, data: dict, key: str):
        """(field name, table) for each table of an array of tables like [[entries]]."""
        items = data.get(key, [])
        if not isinstance(items, list):
            self.problem(key, f"must be an array of tables ([[{key}]])")
            return
        for i, item in enumerate(items, 1):
            field = f"{key}[{i}]"
            if isinstance(item, dict):
                yield field, item
            else:
                self.problem(field, "must be a table")

    def person(self, table: dict, key: str, field: str) -> Person | None:
        value = table.get(key)
        if value is None:
            self.problem(field, "missing")
            return None
        if isinstance(value, str):
            return Person(value.strip()) if value.strip() else None
        if not isinstance(value, dict):
            self.problem(field, 'must be a table like { name = "...", url = "https://..." }')
            return None
        self.unknown_keys(value, PERSON_KEYS, field + ".")
        name = self.text(value, "name", field + ".name")
        url = self.url(value, "url", field + ".url", required=False)
        return Person(name, url) if name else None


def load_carnivals(root: Path) -> tuple[Carnival, ...]:
    """Every carnival under ``root`` (sorted by slug), or ConfigError listing all problems."""
    problems: list[str] = []
    carnivals = []
    if not root.is_dir():
        return ()
    for folder in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ):
        carnival = _load_carnival(folder, root, problems)
        if carnival is not None:
            carnivals.append(carnival)
    for stray in sorted(root.rglob("*.py")):
        problems.append(
            f"{stray.relative_to(root.parent)}: the carnival folder holds data only (TOML and lock files)"
        )
    if problems:
        raise ConfigError(problems)
    return tuple(carnivals)


def edition_from_text(carnival: Carnival, path: Path, text: str) -> Edition:
    """Validate an edition file's new text before it is written (as the build would read it);
    ConfigError lists the problems."""
    problems: list[str] = []
    match = EDITION_FILE.match(path.name)
    reader = _Reader(path, path.parent.parent, problems, text)
    edition = _load_edition(
        reader, carnival.slug, int(match.group(1)) if match else 0, carnival.timezone
    )
    if problems or edition is None:
        raise ConfigError(problems or [f"{path}: not a valid edition"])
    return edition


def _load_carnival(folder: Path, root: Path, problems: list[str]) -> Carnival | None:
    path = folder / "carnival.toml"
    reader = _Reader(path, root, problems)
    if not SLUG.match(folder.name):
        reader.problem(
            "", f"folder name {folder.name!r} must be a slug (lowercase letters, digits, hyphens)"
        )
        return None
    if not path.exists():
        reader.problem("", "missing (every carnival folder needs a carnival.toml)")
        return None
    data = reader.load()
    if data is None:
        return None
    reader.unknown_keys(data, CARNIVAL_KEYS)
    title = reader.text(data, "title", "title")
    description = reader.text(data, "description", "description")
    organizer = reader.person(data, "organizer", "organizer")
    rules = reader.text(data, "rules", "rules", required=False)
    submit_email = reader.email(data, "submit_email", "submit_email")
    timezone = reader.timezone(data, "timezone", "timezone")
    contributors = []
    for field, item in reader.tables(data, "contributors"):
        reader.unknown_keys(item, CONTRIBUTOR_KEYS, field + ".")
        name = reader.text(item, "name", field + ".name")
        blog = reader.url(item, "blog", field + ".blog")
        feed = reader.url(item, "feed", field + ".feed", required=False)
        if name and blog:
            contributors.append(Contributor(name, blog, feed))
    editions = []
    seen: dict[int, Path] = {}
    for edition_path in sorted(folder.glob("*.toml")):
        if edition_path.name == "carnival.toml":
            continue
        match = EDITION_FILE.match(edition_path.name)
        ereader = _Reader(edition_path, root, problems)
        if not match:
            ereader.problem("", "edition files are named by number: 001.toml, 002.toml, ...")
            continue
        edition = _load_edition(ereader, folder.name, int(match.group(1)), timezone)
        if edition is None:
            continue
        if edition.number in seen:
            ereader.problem(
                "number",
                f"duplicate edition number {edition.number} (also in {seen[edition.number].name})",
            )
            continue
        seen[edition.number] = edition_path
        editions.append(edition)
    if not (title and description and organizer):
        return None
    return Carnival(
        slug=folder.name,
        title=title,
        description=description,
        organizer=organizer,
        path=path,
        rules=rules,
        submit_email=submit_email,
        timezone=timezone,
        contributors=tuple(contributors),
        editions=tuple(sorted(editions, key=lambda e: e.number)),
        max_entries=reader.limit(data, "max_entries", "max_entries"),
        max_per_contributor=reader.limit(data, "max_per_contributor", "max_per_contributor"),
    )


def _load_edition(
    reader: _Reader, carnival: str, file_number: int, timezone: str = "UTC"
) -> Edition | None:
    data = reader.load()
    if data is None:
        return None
    before = len(reader.problems)
    reader.unknown_keys(data, EDITION_KEYS)
    number = data.get("number", file_number)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        reader.problem("number", f"must be a whole number of at least 1, got {number!r}")
        number = file_number
    elif number != file_number:
        reader.problem("number", f"is {number} but the file is named {reader.path.name}")
    title = reader.text(data, "title", "title")
    host = reader.person(data, "host", "host")
    opens = reader.date(data, "opens", "opens")
    deadline = reader.date(data, "deadline", "deadline")
    date = reader.date(data, "date", "date")
    if opens and deadline and deadline < opens:
        reader.problem("deadline", f"{deadline} is before opens {opens}")
    if deadline and date and date < deadline:
        reader.problem("date", f"publication date {date} is before the deadline {deadline}")
    roundup_url = reader.url(data, "roundup_url", "roundup_url", required=False)
    intro = reader.text(data, "intro", "intro", required=roundup_url is None) or ""
    tag = reader.text(data, "tag", "tag", required=False)
    how_to_submit = reader.text(data, "how_to_submit", "how_to_submit", required=False)
    sections = data.get("sections", [])
    if not isinstance(sections, list) or not all(
        isinstance(s, str) and s.strip() for s in sections
    ):
        reader.problem("sections", "must be a list of section names")
        sections = []
    sections = [s.strip() for s in sections]
    for dup in sorted({s for s in sections if sections.count(s) > 1}):
        reader.problem("sections", f"section {dup!r} is listed twice")
    entries = []
    seen_urls: dict[str, str] = {}  # canonical URL -> the field that named it first
    for field, item in reader.tables(data, "entries"):
        reader.unknown_keys(item, ENTRY_KEYS, field + ".")
        url = reader.url(item, "url", field + ".url")
        feed = reader.url(item, "feed", field + ".feed", required=False)
        section = reader.text(item, "section", field + ".section", required=False)
        if section and sections and section not in sections:
            near = difflib.get_close_matches(section, sections, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            reader.problem(
                field + ".section", f"{section!r} is not one of the edition's sections{hint}"
            )
        pick = item.get("pick", False)
        if not isinstance(pick, bool):
            reader.problem(field + ".pick", f"must be true or false, got {pick!r}")
            pick = False
        if url:
            key = canonical_url(url)
            if key in seen_urls:
                reader.problem(
                    field + ".url",
                    f"duplicate entry {url} (same post as {seen_urls[key]})",
                )
                continue
            seen_urls[key] = field
            entries.append(
                Submission(
                    url=url,
                    feed=feed,
                    section=section,
                    note=reader.text(item, "note", field + ".note", required=False),
                    pick=pick,
                    title=reader.text(item, "title", field + ".title", required=False),
                )
            )
    max_entries = reader.limit(data, "max_entries", "max_entries")
    max_per = reader.limit(data, "max_per_contributor", "max_per_contributor")
    if len(reader.problems) > before or not (title and host and opens and deadline and date):
        return None
    return Edition(
        carnival=carnival,
        number=number,
        title=title,
        host=host,
        opens=opens,
        deadline=deadline,
        date=date,
        intro=intro,
        path=reader.path,
        tag=tag,
        roundup_url=roundup_url,
        sections=tuple(sections),
        entries=tuple(entries),
        max_entries=max_entries,
        max_per_contributor=max_per,
        how_to_submit=how_to_submit,
        timezone=timezone,
    )
