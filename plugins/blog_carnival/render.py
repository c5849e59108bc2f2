"""Turn resolved editions into template context and the roundup and call bodies.

The bodies are rendered here, so the same HTML serves the page and every feed; the theme
only frames them. They are Jinja2 templates of the plugin's (``templates/``), which a theme
overrides by shipping one of the same name: the adapter passes an environment whose loader
looks in the theme first. Rendering always autoescapes, whatever the site's own Jinja settings.
Host Markdown goes through the same allow-list sanitizer as feed HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode, urlsplit

import markdown
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from .model import Carnival, Contributor, Edition, EditionResult, RoundupEntry
from .sanitize import clean_html
from .select import order, window
from .textutil import fold

TEMPLATES = Path(__file__).parent / "templates"


BODY_OPTIONS = dict(autoescape=True, trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def _env() -> Environment:
    """The plugin's own templates only (for use without Pelican)."""
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), **BODY_OPTIONS)


def body_environment(site_env: Environment) -> Environment:
    """The site's environment (theme templates first, then the plugin's), always escaping."""
    return site_env.overlay(**BODY_OPTIONS)


def markdown_html(text: str | None, base: str | None = None) -> Markup:
    """Host-written Markdown, rendered and then cleaned like any feed HTML."""
    if not text:
        return Markup("")
    return Markup(clean_html(markdown.markdown(text, output_format="html"), base))


def long_date(value: dt.date | dt.datetime) -> str:
    return f"{value:%B} {value.day}, {value.year}"


@dataclass(frozen=True)
class EditionLink:
    number: int
    title: str
    full_title: str
    url: str  # site-relative for ours, absolute when external
    external: bool
    host_name: str
    host_url: str | None
    date: dt.datetime
    opens: dt.date
    deadline: dt.date
    upcoming: bool = False  # its publication date is still ahead


@dataclass(frozen=True)
class EditionView:
    number: int
    title: str
    full_title: str
    host_name: str
    host_url: str | None
    date: dt.datetime
    prev: EditionLink | None
    next: EditionLink | None


@dataclass(frozen=True)
class CarnivalView:
    slug: str
    title: str
    url: str
    description_html: Markup
    rules_html: Markup
    organizer_name: str
    organizer_url: str | None
    atom_url: str
    rss_url: str
    opml_url: str
    editions: tuple[EditionLink, ...]
    contributors: tuple[Contributor, ...] = ()
    calls: tuple[CallView, ...] = ()  # upcoming editions, soonest first: the index shows them first
    json_url: str = ""  # the editions' JSON Feed

    @property
    def latest(self) -> EditionLink | None:
        """The newest edition already published (an announced one is not 'latest')."""
        published = [e for e in self.editions if not e.upcoming]
        return published[-1] if published else None

    @property
    def upcoming(self) -> list[EditionLink]:
        return [e for e in self.editions if e.upcoming]

    @property
    def edition_count(self) -> int:
        return len(self.editions)

    @property
    def editions_by_year(self) -> list[tuple[int, list[EditionLink]]]:
        years: dict[int, list[EditionLink]] = {}
        for link in sorted(self.editions, key=lambda e: e.number, reverse=True):
            years.setdefault(link.date.year, []).append(link)
        return sorted(years.items(), reverse=True)


def edition_datetime(edition: Edition) -> dt.datetime:
    return dt.datetime.combine(edition.date, dt.time(9, 0), tzinfo=dt.UTC)


def carnival_view(carnival: Carnival, urls: Mapping[str, str], today: dt.date) -> CarnivalView:
    """Everything the carnival's index and its editions' pages show about the carnival."""

    def fmt(key: str, **extra) -> str:
        return urls[key].format(carnival=carnival.slug, **extra)

    links = tuple(
        EditionLink(
            number=e.number,
            title=e.title,
            full_title=carnival.full_title(e),
            url=e.url(urls["CARNIVAL_EDITION_URL"]),
            external=e.external,
            host_name=e.host.name,
            host_url=e.host.url,
            date=edition_datetime(e),
            opens=e.opens,
            deadline=e.deadline,
            upcoming=e.is_call(today),
        )
        for e in carnival.editions
    )
    return CarnivalView(
        slug=carnival.slug,
        title=carnival.title,
        url=fmt("CARNIVAL_URL"),
        description_html=markdown_html(carnival.description),
        rules_html=markdown_html(carnival.rules),
        organizer_name=carnival.organizer.name,
        organizer_url=carnival.organizer.url,
        atom_url=fmt("CARNIVAL_FEED_ATOM"),
        rss_url=fmt("CARNIVAL_FEED_RSS"),
        opml_url=fmt("CARNIVAL_OPML"),
        json_url=fmt("CARNIVAL_FEED_JSON") if urls.get("CARNIVAL_FEED_JSON") else "",
        editions=links,
        contributors=carnival.contributors,
        calls=tuple(
            call_view(carnival, e, urls, today) for e in carnival.editions if e.is_call(today)
        ),
    )


# -- the call for submissions ------------------------------------------------------------------


@dataclass(frozen=True)
class CallView:
    """An edition still ahead: its topic, window, and how to take part."""

    number: int
    title: str
    full_title: str
    url: str  # site-relative for ours, absolute when hosted elsewhere
    external: bool
    host_name: str
    host_url: str | None
    opens: dt.date
    deadline: dt.date
    date: dt.date
    timezone: str
    state: str  # "announced" (opens later), "open", or "closed" (roundup on its way)
    deadline_at: dt.datetime  # the last second of the deadline day, in the carnival's zone
    tag: str | None
    submit_email: str | None
    mailto: str | None
    intro_html: Markup
    how_to_submit_html: Markup
    rules_html: Markup

    @property
    def deadline_text(self) -> str:
        zone = "UTC" if self.timezone == "UTC" else f"{self.timezone} time"
        return f"{long_date(self.deadline)}, 23:59 {zone}"


def mailto_link(address: str, subject: str, body: str) -> str:
    """A mailto: URL with subject and body prefilled (RFC 6068: percent-encoded, CRLF lines)."""
    fields = urlencode(
        {"subject": subject, "body": body.replace("\r\n", "\n").replace("\n", "\r\n")},
        quote_via=quote,
    )
    return f"mailto:{quote(address, safe='@')}?{fields}"


def call_view(
    carnival: Carnival, edition: Edition, urls: Mapping[str, str], today: dt.date
) -> CallView:
    if today < edition.opens:
        state = "announced"
    elif today <= edition.deadline:
        state = "open"
    else:
        state = "closed"
    full_title = carnival.full_title(edition)
    mailto = None
    if carnival.submit_email and not edition.external:
        body = (
            f"My entry for {full_title}\n\n"
            "Post URL: \n"
            "Post title: \n"
            "Blog name: \n"
            "Your name: \n"
            "One sentence on what the post is about: \n"
        )
        mailto = mailto_link(carnival.submit_email, f"Entry for {full_title}", body)
    return CallView(
        number=edition.number,
        title=edition.title,
        full_title=full_title,
        url=edition.url(urls["CARNIVAL_EDITION_URL"]),
        external=edition.external,
        host_name=edition.host.name,
        host_url=edition.host.url,
        opens=edition.opens,
        deadline=edition.deadline,
        date=edition.date,
        timezone=edition.timezone,
        state=state,
        deadline_at=window(edition)[1].replace(microsecond=0),
        tag=edition.tag,
        submit_email=None if edition.external else carnival.submit_email,
        mailto=mailto,
        intro_html=markdown_html(edition.intro),
        how_to_submit_html=markdown_html(edition.how_to_submit),
        rules_html=markdown_html(carnival.rules),
    )


def call_html(call: CallView, env: Environment | None = None) -> str:
    """The call's body, shared by its page and every feed that carries it."""
    template = (env or _env()).get_template("carnival_call_body.html")
    return template.render(call=call, long_date=long_date)


def call_summary_html(call: CallView) -> str:
    """What a call shows in the site's post lists."""
    text = (
        f"{call.host_name} hosts edition {call.number}, on {call.title}. "
        f"Submissions are open from {long_date(call.opens)} to {call.deadline_text}; "
        f"the roundup comes out on {long_date(call.date)}."
    )
    return str(Markup('<p class="call-summary">{}</p>').format(text))


def edition_view(view: CarnivalView, edition: Edition) -> EditionView:
    numbers = [e.number for e in view.editions]
    at = numbers.index(edition.number)
    return EditionView(
        number=edition.number,
        title=edition.title,
        full_title=view.editions[at].full_title,
        host_name=edition.host.name,
        host_url=edition.host.url,
        date=view.editions[at].date,
        prev=view.editions[at - 1] if at > 0 else None,
        next=view.editions[at + 1] if at + 1 < len(view.editions) else None,
    )


def _entry_fields(entry: RoundupEntry) -> dict:
    """What the template's meta line shows: the blog (linked when it has a URL), the author
    when it is not just the blog's name again, and the date."""
    blog_name = entry.blog_name or (urlsplit(entry.blog_url).hostname if entry.blog_url else None)
    return {
        "blog_name": blog_name,
        "blog_url": entry.blog_url if blog_name else None,
        "author": entry.author if entry.author and entry.author != blog_name else None,
        "published": entry.published.date().isoformat() if entry.published else None,
        "published_text": long_date(entry.published) if entry.published else None,
    }


def upcoming_text(carnival: Carnival, edition: Edition) -> str | None:
    """What comes next, when a later edition file exists."""
    later = [e for e in carnival.editions if e.number > edition.number]
    if not later:
        return None
    nxt = later[0]
    return (
        f"{carnival.full_title(nxt)} is hosted by {nxt.host.name}. Submissions are open from "
        f"{long_date(nxt.opens)} to {long_date(nxt.deadline)}; the roundup comes out on {long_date(nxt.date)}."
    )


def roundup_html(
    carnival: Carnival, edition: Edition, result: EditionResult, env: Environment | None = None
) -> str:
    """The roundup body: intro, sections in the host's order, entries, and what comes next.

    Groups and entries reach the template as attribute objects, not dicts: Jinja reads
    ``e.title`` by trying the attribute first, and on a dict each such miss raised and caught
    an exception (half the time of a 4,000-entry roundup). ``e["title"]`` still works in a
    theme's copy of the template: Jinja falls back to the attribute."""
    groups = []
    for name, entries in order(list(result.entries), edition.sections):
        heading = name if name or not edition.sections else "More entries"
        groups.append(
            SimpleNamespace(
                name=heading,
                id=f"section-{fold(heading)}" if heading else None,
                entries=[
                    SimpleNamespace(
                        url=e.url,
                        title=e.title,
                        pick=e.pick,
                        **_entry_fields(e),
                        note_html=markdown_html(e.note, e.url),
                        excerpt=e.excerpt,
                    )
                    for e in entries
                ],
            )
        )
    later = [e for e in carnival.editions if e.number > edition.number]
    how = later[0].how_to_submit if later else None
    return (
        (env or _env())
        .get_template("carnival_roundup_body.html")
        .render(
            intro_html=markdown_html(edition.intro),
            groups=groups,
            upcoming=upcoming_text(carnival, edition),
            how_to_submit_html=markdown_html(how or carnival.rules),
        )
    )


def summary_html(carnival: Carnival, edition: Edition, result: EditionResult) -> str:
    """What a roundup shows in the site's post lists: the host's intro and how much is in it."""
    count = len(result.entries)
    noun = "entry" if count == 1 else "entries"
    hosts = f"{count} {noun}, gathered by {edition.host.name}."
    return str(
        markdown_html(edition.intro) + Markup('<p class="roundup-count">{}</p>').format(hosts)
    )


def entry_notice(carnival: Carnival, edition: Edition, url: str, external: bool) -> dict:
    """What a post of ours that was an entry in a carnival shows."""
    return {
        "carnival_title": carnival.title,
        "edition_title": carnival.full_title(edition),
        "url": url,
        "external": external,
    }


def badge_html(notice: dict, env: Environment | None = None) -> Markup:
    """The note on a post that was an entry in a carnival (``carnival_badge.html``)."""
    return Markup((env or _env()).get_template("carnival_badge.html").render(entry=notice))
