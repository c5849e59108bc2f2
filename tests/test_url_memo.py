"""URLs are worked out once per build while they can no longer change (plugins/url_memo.py).

Real Pelican content and URL wrapper objects; a changed slug shows whether an answer was
kept. The whole site's output with the plugin is checked by the golden test.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import url_memo
from pelican.contents import Article, Page, Static
from pelican.settings import DEFAULT_CONFIG
from pelican.urlwrappers import Tag


@pytest.fixture
def settings() -> dict:
    url_memo.install()
    config = copy.deepcopy(DEFAULT_CONFIG)
    config.update(
        ARTICLE_URL="{date:%Y}/{slug}.html",
        ARTICLE_SAVE_AS="{date:%Y}/{slug}.html",
        PAGE_URL="{slug}/",
        PAGE_SAVE_AS="{slug}/index.html",
    )
    yield config
    url_memo.stop()


def article(settings: dict, slug: str = "first") -> Article:
    return Article(
        "<p>Text.</p>",
        metadata={
            "title": "First",
            "slug": slug,
            "date": dt.datetime(2026, 5, 1),
        },
        settings=settings,
    )


def test_before_the_build_is_written_every_read_follows_the_metadata(settings):
    post = article(settings)
    assert post.url == "2026/first.html"
    post.slug = "renamed"  # a plugin may still do this while the context is built
    assert post.url == "2026/renamed.html"
    assert post.save_as == "2026/renamed.html"


def test_while_the_build_is_written_the_first_answer_is_kept(settings):
    post, page, tag = (
        article(settings),
        Page("x", {"title": "About", "slug": "about"}, settings=settings),
        Tag("Job Search", settings),
    )
    url_memo.start()
    assert (post.url, page.save_as, tag.url) == (
        "2026/first.html",
        "about/index.html",
        "tag/job-search.html",
    )
    post.slug, page.slug, tag.slug = "renamed", "moved", "other"
    assert (post.url, page.save_as, tag.url) == (
        "2026/first.html",
        "about/index.html",
        "tag/job-search.html",
    )
    url_memo.stop()  # the build is over: the next one follows the metadata again
    assert (post.url, page.save_as, tag.url) == (
        "2026/renamed.html",
        "moved/index.html",
        "tag/other.html",
    )


def test_static_files_keep_pelicans_own_tracking(settings, tmp_path):
    """A static file may still move when a post attaches it ({attach}): Pelican tracks
    whether its location was read, so it is never kept here."""
    path = tmp_path / "image.png"
    path.write_bytes(b"png")
    image = Static(
        "", {"title": "image", "slug": "image"}, settings=settings, source_path=str(path)
    )
    url_memo.start()
    first = image.url
    image.override_url = "elsewhere/image.png"
    assert image.url == "elsewhere/image.png" != first


def test_installing_twice_wraps_once(settings):
    before = Article.url.fget
    url_memo.install()
    assert Article.url.fget is before
