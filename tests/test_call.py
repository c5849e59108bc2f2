"""The call for submissions: an edition still ahead renders as a call at its own URL, and the
same URL becomes the roundup on its date. "Today" is injected, never read from the calendar."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
from blog_carnival.errors import ConfigError
from blog_carnival.model import Carnival, Edition, Person
from blog_carnival.render import call_html, call_view, carnival_view, mailto_link
from blog_carnival.select import window
from blog_carnival.settings import DEFAULTS, read_settings
from golden import build_golden

URLS = {k: v for k, v in DEFAULTS.items() if isinstance(v, str) and "{carnival}" in v}
URLS["CARNIVAL_URL"] = DEFAULTS["CARNIVAL_URL"]


def edition(**overrides) -> Edition:
    fields = dict(
        carnival="demo",
        number=4,
        title="Asking for <help> & more",
        host=Person("Host Name", "https://host.example/"),
        opens=dt.date(2027, 1, 6),
        deadline=dt.date(2027, 2, 2),
        date=dt.date(2027, 2, 5),
        intro="A *short* intro.",
        path=Path("/nowhere/004.toml"),
        tag="demo-carnival",
    )
    fields.update(overrides)
    return Edition(**fields)


def carnival(*editions: Edition, email: str | None = "host@host.example") -> Carnival:
    return Carnival(
        slug="demo",
        title="The Demo Carnival",
        description="About it.",
        organizer=Person("Org"),
        path=Path("/nowhere/carnival.toml"),
        rules="Be kind.",
        editions=editions,
        submit_email=email,
    )


# -- mailto ----------------------------------------------------------------------------------


def test_mailto_prefills_subject_and_body_per_rfc_6068():
    link = mailto_link("host@host.example", "Entry for #4: A & B", "Line one\nPost URL: \n")
    parts = urlsplit(link)
    assert parts.scheme == "mailto" and parts.path == "host@host.example"
    assert "+" not in parts.query  # spaces are %20 in mailto, never '+'
    assert "%0D%0A" in parts.query  # line breaks are CRLF (RFC 6068 section 5)
    fields = parse_qs(parts.query)
    assert fields["subject"] == ["Entry for #4: A & B"]
    assert fields["body"] == ["Line one\r\nPost URL: \r\n"]


def test_call_mailto_names_the_edition_and_leaves_blanks_for_the_post():
    ed = edition()
    call = call_view(carnival(ed), ed, URLS, dt.date(2027, 1, 10))
    fields = parse_qs(urlsplit(call.mailto).query)
    assert fields["subject"] == ["Entry for The Demo Carnival #4: Asking for <help> & more"]
    assert "Post URL: \r\n" in fields["body"][0]
    assert "The Demo Carnival #4" in fields["body"][0]


def test_no_submit_email_means_no_mailto_link():
    ed = edition()
    call = call_view(carnival(ed, email=None), ed, URLS, dt.date(2027, 1, 10))
    assert call.mailto is None
    assert "mailto:" not in call_html(call)


# -- states and the deadline ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (dt.date(2027, 1, 5), "announced"),
        (dt.date(2027, 1, 6), "open"),
        (dt.date(2027, 2, 2), "open"),  # the deadline day counts
        (dt.date(2027, 2, 3), "closed"),
        (dt.date(2027, 2, 4), "closed"),
    ],
)
def test_call_state_follows_today(today, state):
    ed = edition()
    assert call_view(carnival(ed), ed, URLS, today).state == state


def test_an_edition_is_a_call_until_its_date_then_a_roundup():
    ed = edition()
    assert ed.is_call(dt.date(2027, 2, 4))
    assert not ed.is_call(dt.date(2027, 2, 5))
    view = carnival_view(carnival(ed), URLS, dt.date(2027, 2, 4))
    assert [c.number for c in view.calls] == [4]
    assert carnival_view(carnival(ed), URLS, dt.date(2027, 2, 5)).calls == ()


def test_deadline_is_the_end_of_the_day_in_the_carnivals_time_zone():
    ed = edition(timezone="America/New_York")
    start, end = window(ed)
    assert end.isoformat() == "2027-02-02T23:59:59.999999-05:00"
    assert start.isoformat() == "2027-01-06T00:00:00-05:00"
    call = call_view(carnival(ed), ed, URLS, dt.date(2027, 1, 10))
    assert call.deadline_text == "February 2, 2027, 23:59 America/New_York time"
    assert 'datetime="2027-02-02T23:59:59-05:00"' in call_html(call)


def test_call_body_escapes_the_title_and_shows_window_tag_and_rules():
    ed = edition()
    html = call_html(call_view(carnival(ed), ed, URLS, dt.date(2027, 1, 10)))
    assert "Asking for &lt;help&gt; &amp; more" in html and "<help>" not in html
    assert "February 2, 2027, 23:59 UTC" in html
    assert '<code class="call-tag">demo-carnival</code>' in html
    assert "Be kind." in html
    assert "<em>short</em>" in html


# -- "today" ----------------------------------------------------------------------------------


def fixed_clock():
    return dt.datetime(2030, 5, 6, 12, 0, tzinfo=dt.UTC)


def test_today_comes_from_the_clock_when_nothing_pins_it():
    settings = read_settings({}, environ={}, clock=fixed_clock)
    assert settings.today == dt.date(2030, 5, 6)


def test_today_from_the_environment_and_the_setting_wins_over_it():
    env = {"CARNIVAL_TODAY": "2026-12-01"}
    assert read_settings({}, environ=env, clock=fixed_clock).today == dt.date(2026, 12, 1)
    pinned = read_settings({"CARNIVAL_TODAY": "2026-03-01"}, environ=env, clock=fixed_clock)
    assert pinned.today == dt.date(2026, 3, 1)
    as_date = read_settings({"CARNIVAL_TODAY": dt.date(2025, 1, 2)}, environ={})
    assert as_date.today == dt.date(2025, 1, 2)


def test_a_bad_today_is_a_config_error_naming_the_setting():
    with pytest.raises(ConfigError, match="CARNIVAL_TODAY"):
        read_settings({"CARNIVAL_TODAY": "next tuesday"}, environ={})


# -- the whole site ---------------------------------------------------------------------------


def _feed_entry(folder: Path, title_start: str):
    feed = feedparser.parse((folder / "carnival/golden-carnival/atom.xml").read_bytes())
    return next(e for e in feed.entries if e.title.startswith(title_start))


@pytest.mark.site
def test_the_same_url_is_a_call_before_the_date_and_the_roundup_after(tmp_path):
    before = tmp_path / "before"
    after = tmp_path / "after"
    assert build_golden(before).returncode == 0  # the golden day: 2026-03-01
    proc = build_golden(after, extra={"CARNIVAL_TODAY": '"2026-03-18"'})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    call_page = (before / "carnival/golden-carnival/3/index.html").read_text()
    assert "Call for submissions: The Golden Carnival #3" in call_page
    assert "call-mailto" in call_page and "March 15, 2026, 23:59 UTC" in call_page
    index = (before / "carnival/golden-carnival/index.html").read_text()
    assert index.index("open-calls") < index.index('class="editions"')  # the call comes first

    roundup_page = (after / "carnival/golden-carnival/3/index.html").read_text()
    assert "Call for submissions" not in roundup_page
    assert re.search(r'<h1 class="post-title">The Golden Carnival #3: Calls', roundup_page)
    assert "open-calls" not in (after / "carnival/golden-carnival/index.html").read_text()

    call_entry = _feed_entry(before, "Call for submissions")
    roundup_entry = _feed_entry(after, "The Golden Carnival #3")
    assert call_entry.link == roundup_entry.link  # the same URL...
    assert call_entry.id != roundup_entry.id  # ...but a new feed item for the roundup
    assert "call-facts" in call_entry.content[0].value
