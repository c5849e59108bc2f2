"""Rendering is pure: a resolved edition in, the roundup body and template views out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from blog_carnival.model import Carnival, Edition, EditionResult, Person, RoundupEntry
from blog_carnival.render import (
    carnival_view,
    edition_view,
    roundup_html,
    summary_html,
    upcoming_text,
)
from blog_carnival.settings import DEFAULTS

URLS = {
    k: str(v)
    for k, v in DEFAULTS.items()
    if k.endswith(("_URL", "_SAVE_AS", "_ATOM", "_RSS", "_OPML"))
}


def edition(number: int, **kw) -> Edition:
    base = dict(
        carnival="c",
        number=number,
        title=f"Topic {number}",
        host=Person("Host", "https://host.example/"),
        opens=dt.date(2026, number, 1),
        deadline=dt.date(2026, number, 20),
        date=dt.date(2026, number, 25),
        intro="Hello *there*.",
        path=Path(f"c/{number:03}.toml"),
        sections=("First", "Second", "Third"),
    )
    base.update(kw)
    return Edition(**base)


def carnival(*editions: Edition) -> Carnival:
    return Carnival(
        slug="c",
        title="The C Carnival",
        description="About *c*.",
        organizer=Person("Org"),
        path=Path("c/carnival.toml"),
        rules="Send a link.",
        editions=editions,
    )


def entry(title: str, section: str | None = None, **kw) -> RoundupEntry:
    return RoundupEntry(url=f"https://blog.example/{title}", title=title, section=section, **kw)


def test_sections_in_host_order_and_empty_ones_left_out():
    ed = edition(1)
    result = EditionResult("c/1", (entry("b", "Third"), entry("a", "First"), entry("loose")))
    html = roundup_html(carnival(ed), ed, result)
    assert (
        html.index("<h2>First</h2>")
        < html.index("<h2>Third</h2>")
        < html.index("<h2>More entries</h2>")
    )
    assert "<h2>Second</h2>" not in html


def test_no_sections_means_no_headings():
    ed = edition(1, sections=())
    html = roundup_html(carnival(ed), ed, EditionResult("c/1", (entry("a"),)))
    assert "<h2>" not in html.split('class="roundup-next"')[0]


def test_pick_note_meta_and_escaping():
    ed = edition(1)
    result = EditionResult(
        "c/1",
        (
            entry(
                "a",
                "First",
                pick=True,
                note="Read *this* <script>alert(1)</script>",
                blog_name="A & B",
                blog_url="https://blog.example/",
                author="Ann",
                published=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
                excerpt="<b>not bold</b>",
            ),
        ),
    )
    html = roundup_html(carnival(ed), ed, result)
    assert 'class="roundup-entry roundup-pick"' in html and "Host's pick" in html
    assert "<em>this</em>" in html and "<script" not in html
    assert '<a class="entry-blog" href="https://blog.example/">A &amp; B</a>' in html
    assert '<time datetime="2026-01-05">January 5, 2026</time>' in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html  # excerpts are text


def test_blog_name_falls_back_to_host_name():
    ed = edition(1)
    html = roundup_html(
        carnival(ed), ed, EditionResult("c/1", (entry("a", blog_url="https://www.plain.example/"),))
    )
    assert ">www.plain.example</a>" in html


def test_next_edition_is_announced_when_its_file_exists():
    one, two = edition(1), edition(2, host=Person("Next Host"))
    assert upcoming_text(carnival(one, two), two) is None
    text = upcoming_text(carnival(one, two), one)
    assert text.startswith("The C Carnival #2: Topic 2 is hosted by Next Host.")
    assert "February 1, 2026 to February 20, 2026" in text


def test_views_link_editions_and_mark_upcoming():
    one, two, three = edition(1), edition(2, roundup_url="https://else.example/2/"), edition(3)
    view = carnival_view(carnival(one, two, three), URLS, today=dt.date(2026, 2, 28))
    assert [e.url for e in view.editions] == [
        "carnival/c/1/",
        "https://else.example/2/",
        "carnival/c/3/",
    ]
    assert [e.upcoming for e in view.editions] == [False, False, True]
    assert view.latest.number == 2
    assert [y for y, _ in view.editions_by_year] == [2026]
    middle = edition_view(view, three)
    assert middle.prev.number == 2 and middle.prev.external and middle.next is None
    assert middle.full_title == "The C Carnival #3: Topic 3"


def test_summary_has_intro_and_count():
    ed = edition(1)
    html = summary_html(carnival(ed), ed, EditionResult("c/1", (entry("a"), entry("b"))))
    assert (
        html
        == '<p>Hello <em>there</em>.</p><p class="roundup-count">2 entries, gathered by Host.</p>'
    )


def test_a_themes_roundup_template_may_read_entries_by_key_or_attribute():
    """A theme's copy of carnival_roundup_body.html written for the dicts entries once were
    (``e["title"]``, ``group["entries"]``) renders as one using attributes does."""
    from jinja2 import DictLoader, Environment

    ed = edition(1, sections=())
    result = EditionResult("c/1", (entry("a", blog_name="A & B", pick=True),))
    by_key = (
        '{% for g in groups %}{% for e in g["entries"] %}'
        '{{ e["title"] }}|{{ e["blog_name"] }}|{{ e["pick"] }}{% endfor %}{% endfor %}'
    )
    by_attribute = by_key.replace('["', ".").replace('"]', "")
    for source in (by_key, by_attribute):
        env = Environment(
            loader=DictLoader({"carnival_roundup_body.html": source}), autoescape=True
        )
        assert roundup_html(carnival(ed), ed, result, env) == "a|A &amp; B|True"
