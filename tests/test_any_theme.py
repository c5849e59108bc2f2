"""Any Pelican site can host a carnival: the plugin's own templates fit inside Pelican's default
theme (notmyidea) and `simple`, a theme overrides any of them by name, and nothing a feed or a
host writes reaches the page unescaped, whatever the site's autoescape setting."""

from __future__ import annotations

import gzip
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import feedparser
import pytest
from conftest import ROOT
from quickstart_site import write_site
from safety import scan_site
from sites_server import SitesServer

pytestmark = pytest.mark.site

POST = "/2026/11/reading-list.html"
LAYOUT = {None: '<header id="banner"', "simple": "<hgroup><h1>"}  # each theme's own markup


@pytest.fixture(scope="module")
def server():
    with SitesServer() as running:
        yield running


def build(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", "-o", "output"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300"},
    )


def written(server, folder: Path, theme: str | None = None, extra: str = "") -> Path:
    """The quickstart site, with the plugin from plugins/, written into ``folder``."""
    return write_site(
        folder,
        feed_url=server.url("coffee-and-careers.example", "/feed.xml"),
        post_url=server.url("coffee-and-careers.example", POST),
        theme=theme,
        plugin_path=str(ROOT / "plugins"),
        extra_settings=extra,
    )


def site(server, folder: Path, theme: str | None = None, extra: str = "") -> Path:
    written(server, folder, theme, extra)
    proc = build(folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder / "output"


def read(out: Path, path: str) -> str:
    return (out / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("theme", [None, "simple"], ids=["notmyidea", "simple"])
def test_roundups_index_and_feeds_render_inside_the_theme(server, tmp_path, theme):
    out = site(server, tmp_path, theme)
    one = read(out, "carnival/quick-carnival/1/index.html")
    two = read(out, "carnival/quick-carnival/2/index.html")
    index = read(out, "carnival/quick-carnival/index.html")
    for page in (one, two, index, read(out, "carnival/index.html")):
        assert LAYOUT[theme] in page  # the theme's own frame around the plugin's content
        assert "theme/css/carnival.css" in page
    assert "Locked &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; one</a>" in one
    assert "<h1>The Quick Carnival #1: Links &amp; &lt;lists&gt;</h1>" in one
    assert f'<a href="{server.url("coffee-and-careers.example", POST)}">' in two
    assert "roundup-entry" in two and "Worth it." in one
    assert "#2: Fetched live" in index and "The Quick Carnival" in index
    assert (out / "theme/css/carnival.css").is_file()
    for name in ("atom.xml", "rss.xml"):
        feed = feedparser.parse((out / "carnival/quick-carnival" / name).read_bytes())
        assert not feed.bozo and len(feed.entries) == 2
        titles = {e.title for e in feed.entries}
        assert "The Quick Carnival #1: Links & <lists>" in titles  # nothing stripped
    # the post that was an entry says so, in the page and in what feeds carry
    post = read(out, "my-entry.html")
    assert 'class="carnival-badge"' in post
    assert 'href="/carnival/quick-carnival/1/"' in post


@pytest.mark.parametrize("theme", [None, "simple"], ids=["notmyidea", "simple"])
def test_no_script_from_a_feed_reaches_any_page_whatever_the_autoescape_setting(
    server, tmp_path, theme
):
    out = site(server, tmp_path, theme)  # Pelican's default: autoescape off
    assert scan_site(out) == []  # pages and feeds, parsed as a browser and a reader would
    for page in out.rglob("*.html"):
        assert "<script>alert" not in page.read_text(encoding="utf-8"), page


def test_a_theme_template_overrides_the_plugins_default(server, tmp_path):
    theme = tmp_path / "mytheme"
    (theme / "templates").mkdir(parents=True)
    (theme / "static" / "css").mkdir(parents=True)
    (theme / "static" / "css" / "carnival.css").write_text("/* the theme's own */\n")
    (theme / "templates" / "base.html").write_text(
        "<!doctype html><html><head>{% block head %}<title>t</title>{% endblock %}</head>"
        "<body class='mine'>{% block content %}{% endblock %}</body></html>"
    )
    for name in (
        "index",
        "article",
        "page",
        "archives",
        "tags",
        "categories",
        "authors",
        "tag",
        "category",
        "author",
        "period_archives",
    ):
        (theme / "templates" / f"{name}.html").write_text("{% extends 'base.html' %}")
    (theme / "templates" / "carnival_roundup_body.html").write_text(
        textwrap.dedent(
            """\
            <div class="my-roundup">{% for g in groups %}{% for e in g.entries %}
            <p class="mine"><a href="{{ e.url }}">{{ e.title }}</a></p>{% endfor %}{% endfor %}</div>
            """
        )
    )
    (theme / "templates" / "carnival_index.html").write_text(
        "{% extends 'base.html' %}{% block content %}<h1 class='my-index'>{{ carnival.title }}</h1>"
        "{% endblock %}"
    )
    out = site(server, tmp_path / "site", str(theme))
    one = read(out, "carnival/quick-carnival/1/index.html")
    assert '<div class="my-roundup">' in one and "roundup-entries" not in one
    assert "Locked &lt;script&gt;" in one  # the override is autoescaped too
    assert "<body class='mine'>" in one  # the plugin's roundup.html, inside this theme
    assert "<h1 class='my-index'>The Quick Carnival</h1>" in read(
        out, "carnival/quick-carnival/index.html"
    )
    feed = feedparser.parse((out / "carnival/quick-carnival/atom.xml").read_bytes())
    assert all("my-roundup" in e.content[0].value for e in feed.entries)  # pages and feeds agree
    assert read(out, "theme/css/carnival.css") == "/* the theme's own */\n"


def test_the_badge_can_be_left_to_the_theme(server, tmp_path):
    out = site(server, tmp_path, None, extra='CARNIVAL_BADGE = "theme"\n')
    assert "carnival-badge" not in read(out, "my-entry.html")


def test_our_own_theme_overrides_every_plugin_page_template():
    ours = {p.name for p in (ROOT / "theme" / "templates").glob("*.html")}
    plugin = {p.name for p in (ROOT / "plugins/blog_carnival/templates").glob("*.html")}
    pages = {"roundup.html", "call.html", "carnival_index.html", "carnivals.html"}
    assert pages <= plugin and pages <= ours
    assert not re.search(r"carnival_base", (ROOT / "theme/templates/roundup.html").read_text())


def test_pelicans_content_cache_works_with_the_plugin(server, tmp_path):
    """Pelican pickles the Tag, Category and Author objects its readers make into its content
    cache, and each keeps the settings, where the plugin's per-build state lives: that state
    must not stop the cache from being saved (the save used to fail on it midway, leaving a
    cut-short file that made the next build crash)."""
    written(server, tmp_path, extra="CACHE_CONTENT = True\nLOAD_CONTENT_CACHE = True\n")
    (tmp_path / "content/posts/tagged.md").write_text(
        "Title: Tagged\nDate: 2026-02-01 10:00\nTags: careers\nCategory: advice\n"
        "Author: A. Writer\n\nA post whose tags, category and author are Pelican objects.\n"
    )
    first = build(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Could not save cache" not in first.stdout + first.stderr
    with gzip.open(tmp_path / "cache/ArticlesGenerator-Readers", "rb") as handle:
        cached = pickle.load(handle)  # GZIP_CACHE is Pelican's default
    assert any(str(path).endswith("tagged.md") for path in cached)
    again = build(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Could not save cache" not in again.stdout + again.stderr
    page = read(tmp_path / "output", "carnival/quick-carnival/2/index.html")
    assert "roundup-entry" in page


RUN_TWICE = """
import shutil, sys
from pathlib import Path
from pelican import Pelican
from pelican.settings import read_settings

pelican = Pelican(read_settings("pelicanconf.py", override={"OUTPUT_PATH": "output"}))
for run in ("first", "second"):  # what `pelican --autoreload` does on each change
    pelican.run()
    shutil.copytree("output", run)
"""


def test_one_pelican_instance_builds_the_same_site_each_run(server, tmp_path):
    """Pelican's autoreload builds again and again on one instance: the second build must
    not repeat the roundups, lose their entries or keep the first build's articles."""
    written(server, tmp_path)
    (tmp_path / "twice.py").write_text(RUN_TWICE)
    proc = subprocess.run(
        [sys.executable, "twice.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second = tmp_path / "first", tmp_path / "second"
    pages = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert pages == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for page in pages:
        assert (first / page).read_bytes() == (second / page).read_bytes(), page
    two = read(second, "carnival/quick-carnival/2/index.html")
    assert two.count("roundup-entry") == 1 and "Worth it." in read(
        second, "carnival/quick-carnival/1/index.html"
    )
    assert read(second, "index.html").count("The Quick Carnival #2") == 1
