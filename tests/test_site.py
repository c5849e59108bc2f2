"""The whole site, built offline from what is committed: pages, links and feeds."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import pytest
from conftest import ROOT, build_site

pytestmark = pytest.mark.site

POSTS = sorted((ROOT / "content" / "posts").glob("*.md"))


def metadata(path: Path) -> dict[str, str]:
    head = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
    return {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in head.splitlines())
    }


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def post_path(meta: dict[str, str]) -> str:
    year, month = meta["date"][:4], meta["date"][5:7]
    return f"{year}/{month}/{meta['slug']}.html"


def test_every_post_and_page_exists(built_site):
    assert len(POSTS) >= 8
    for post in POSTS:
        assert (built_site / post_path(metadata(post))).is_file(), post.name
    for page in ("about", "blog-carnival"):
        assert (built_site / page / "index.html").is_file()
    for name in (
        "index.html",
        "archives/index.html",
        "tags/index.html",
        "categories/index.html",
        "404.html",
    ):
        assert (built_site / name).is_file(), name


def test_archives_tags_categories_and_feeds_exist(built_site):
    tags, categories, months = set(), set(), set()
    for post in POSTS:
        meta = metadata(post)
        tags.update(t.strip() for t in meta["tags"].split(","))
        categories.add(meta["category"])
        months.add(meta["date"][:7].replace("-", "/"))
    slug = lambda s: re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")  # noqa: E731
    for tag in tags:
        assert (built_site / "tag" / slug(tag) / "index.html").is_file(), tag
        assert (built_site / "feeds" / "tag" / f"{slug(tag)}.atom.xml").is_file(), tag
        assert (built_site / "feeds" / "tag" / f"{slug(tag)}.rss.xml").is_file(), tag
    for category in categories:
        assert (built_site / "category" / slug(category) / "index.html").is_file()
        assert (built_site / "feeds" / "category" / f"{slug(category)}.atom.xml").is_file()
    for month in months:
        assert (built_site / month / "index.html").is_file(), month
    assert (built_site / "feeds" / "all.atom.xml").is_file()
    assert (built_site / "feeds" / "all.rss.xml").is_file()


def test_internal_links_resolve(built_site):
    missing = []
    for page in built_site.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        here = "file://" + str(page)
        for link in parser.links:
            if link.startswith(("http://", "https://", "mailto:", "#", "data:")):
                continue
            target = Path(unquote(urlsplit(urljoin(here, link)).path))
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                missing.append(f"{page.relative_to(built_site)} -> {link}")
    assert not missing, "\n".join(missing[:30])


def test_every_page_has_feed_autodiscovery_and_one_h1(built_site):
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert 'rel="alternate" type="application/atom+xml"' in html, page
        assert 'type="application/rss+xml"' in html, page
        assert len(re.findall(r"<h1[\s>]", html)) == 1, page


@pytest.mark.parametrize("name", ["all.atom.xml", "all.rss.xml"])
def test_site_feeds_have_every_post_with_full_content(built_site, name):
    feed = feedparser.parse((built_site / "feeds" / name).read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    titles = {e.title for e in feed.entries}
    for post in POSTS:
        meta = metadata(post)
        assert meta["title"] in titles
        entry = next(e for e in feed.entries if e.title == meta["title"])
        body = entry.content[0].value if "content" in entry else entry.summary
        first_heading = re.search(r"^## (.+)$", post.read_text(encoding="utf-8"), re.M).group(1)
        assert first_heading.replace("'", "&#8217;")[:12] in body or first_heading[:12] in body
        assert len(body) > 1500  # full content, not a summary


def test_feed_ids_are_stable_across_builds(built_site, tmp_path):
    again = tmp_path / "again"
    proc = build_site(
        again, extra={"CARNIVAL_OFFLINE": "true", "CARNIVAL_CACHE_PATH": f'"{tmp_path / "c"}"'}
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "feeds/all.atom.xml",
        "feeds/all.rss.xml",
        "carnival/networking-carnival/atom.xml",
        "carnival/networking-carnival/rss.xml",
    ):
        first = [
            (e.id, e.get("updated"))
            for e in feedparser.parse((built_site / name).read_bytes()).entries
        ]
        second = [
            (e.id, e.get("updated")) for e in feedparser.parse((again / name).read_bytes()).entries
        ]
        assert first == second and len({i for i, _ in first}) == len(first)


def test_published_feeds_use_absolute_links(tmp_path):
    out = tmp_path / "published"
    proc = build_site(
        out,
        settings="publishconf.py",
        extra={"CARNIVAL_OFFLINE": "true", "CARNIVAL_CACHE_PATH": f'"{tmp_path / "c"}"'},
    )
    assert proc.returncode == 0, proc.stderr
    feed = feedparser.parse((out / "feeds" / "all.atom.xml").read_bytes())
    assert not feed.bozo
    assert all(e.link.startswith("https://warm-introduction.example/") for e in feed.entries)
    assert all(e.id.startswith("tag:warm-introduction.example,") for e in feed.entries)
