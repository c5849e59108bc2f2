"""Pelican's content cache in the host's development builds is reused only while it is right.

Each test copies the site (content, theme, plugins, carnival, settings) to a temporary folder,
builds it, then changes one thing and builds again with the same cache. To show that the second
build really read the cache (and not merely that a build without cache is right), the cached
HTML of every file is marked after the first build: an unchanged post still shows the mark, a
re-read one does not.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest
from conftest import build_site, copy_site
from golden import tree

pytestmark = pytest.mark.site

MARK = "<!-- served from the content cache -->"
LAYOFF = "2026/10/networking-after-a-layoff.html"  # says Carnival: networking-carnival/2
REFERENCES = "2026/11/asking-for-references.html"
BADGE = 'class="note carnival-note"'


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return copy_site(tmp_path / "site")


def build(site: Path, name: str) -> Path:
    """A development build (pelicanconf.py) with the cache the settings name: site/cache/."""
    out = site.parent / name
    proc = build_site(out, cwd=site, cache=site / "cache", env={"CARNIVAL_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Could not save cache" not in proc.stdout + proc.stderr
    return out


def page(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


def fingerprints(site: Path) -> list[str]:
    """The content caches (one folder per settings fingerprint; templates/ is not one)."""
    return sorted(p.name for p in (site / "cache").iterdir() if p.name != "templates")


def mark_cache(site: Path) -> None:
    """Append MARK to the HTML cached for every post, as the next build would read it."""
    (name,) = fingerprints(site)
    path = site / "cache" / name / "ArticlesGenerator-Readers"
    with gzip.open(path, "rb") as f:
        cached = pickle.load(f)
    assert len(cached) >= 10
    marked = {
        key: (stamp, (content + MARK, metadata))
        for key, (stamp, (content, metadata)) in cached.items()
    }
    with gzip.open(path, "wb") as f:
        pickle.dump(marked, f)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_unchanged_rebuild_is_identical_and_reads_the_cache(site):
    first = build(site, "first")
    second = build(site, "second")
    assert tree(first) == tree(second)
    assert len(fingerprints(site)) == 1
    mark_cache(site)
    third = build(site, "third")
    assert MARK in page(third, REFERENCES) and MARK in page(third, LAYOFF)


def test_changed_post_shows_its_new_text(site):
    before = build(site, "before")
    assert "The best references are not the most senior people you know." in page(
        before, REFERENCES
    )
    mark_cache(site)
    edit(
        site / "content/posts/asking-for-references.md",
        "The best references are not the most senior people you know.",
        "Pick references who watched your work closely, whatever their rank.",
    )
    after = build(site, "after")
    text = page(after, REFERENCES)
    assert "Pick references who watched your work closely" in text
    assert "The best references are not the most senior" not in text
    assert MARK not in text  # re-read
    assert MARK in page(after, LAYOFF)  # the others still come from the cache


def test_changed_template_changes_the_output(site):
    build(site, "before")
    mark_cache(site)
    assert any((site / "cache" / "templates").iterdir())  # compiled templates were kept
    edit(
        site / "theme/templates/article.html",
        '<div class="post-body">',
        '<div class="post-body" data-probe="new-template">',
    )
    after = build(site, "after")
    assert 'data-probe="new-template"' in page(after, REFERENCES)
    assert MARK in page(after, REFERENCES)  # the theme is rendered anew, the reading reused
    edit(site / "theme/templates/article.html", ' data-probe="new-template"', "")
    back = build(site, "back")  # the first compiled article.html is still right for its source
    assert 'data-probe="new-template"' not in page(back, REFERENCES)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('SITENAME = "A Renamed Blog"', "<title>How to Ask for a Reference"),
        # a setting that changes what the Markdown reader makes of every post
        (
            'MARKDOWN = {"extension_configs": {"markdown.extensions.extra": {}, '
            '"markdown.extensions.toc": {}}, "output_format": "html5"}',
            '<h2 id="choose-people-who-saw-your-work">',
        ),
    ],
)
def test_changed_setting_starts_a_fresh_cache(site, setting, expected):
    build(site, "before")
    (old,) = fingerprints(site)
    mark_cache(site)
    with (site / "pelicanconf.py").open("a", encoding="utf-8") as f:
        f.write(f"\n{setting}\n")
    after = build(site, "after")
    text = page(after, REFERENCES)
    assert expected in text
    if "SITENAME" in setting:
        assert "A Renamed Blog" in text
    assert MARK not in text and MARK not in page(after, LAYOFF)
    assert fingerprints(site) != [old] and len(fingerprints(site)) == 1  # the old one is gone


def test_removed_carnival_line_removes_the_badge(site):
    before = build(site, "before")
    assert BADGE in page(before, LAYOFF)
    mark_cache(site)
    edit(
        site / "content/posts/networking-after-a-layoff.md", "Carnival: networking-carnival/2\n", ""
    )
    after = build(site, "after")
    assert BADGE not in page(after, LAYOFF)
    assert MARK not in page(after, LAYOFF) and MARK in page(after, REFERENCES)


def test_changed_carnival_reference_names_the_new_edition(site):
    build(site, "before")
    mark_cache(site)
    edit(
        site / "content/posts/networking-after-a-layoff.md",
        "Carnival: networking-carnival/2",
        "Carnival: networking-carnival/1",
    )
    after = build(site, "after")
    text = page(after, LAYOFF)
    assert BADGE in text
    assert 'href="../../carnival/networking-carnival/1/"' in text
    assert "hiring-desk.example/2026/11/networking-carnival-2/" not in text


def test_changed_edition_updates_the_badge_of_a_cached_post(site):
    before = build(site, "before")
    assert "Networking for a job search" in page(before, LAYOFF)
    mark_cache(site)
    edit(
        site / "carnival/networking-carnival/002.toml",
        'title = "Networking for a job search"',
        'title = "Asking for help in a job search"',
    )
    after = build(site, "after")
    text = page(after, LAYOFF)
    assert MARK in text  # the post itself came from the cache...
    assert "Asking for help in a job search" in text  # ...its badge from this build's carnival
    assert "Networking for a job search" not in text


def test_damaged_cache_is_discarded_with_a_warning(site):
    """A build killed while Pelican saved its cache leaves the file cut short: Pelican alone
    would stop every later build with a traceback (EOFError from gzip)."""
    first = build(site, "first")
    (name,) = fingerprints(site)
    path = site / "cache" / name / "ArticlesGenerator-Readers"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = site.parent / "second"
    proc = build_site(out, cwd=site, cache=site / "cache", env={"CARNIVAL_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = " ".join((proc.stdout + proc.stderr).split())
    assert "content_cache:" in log and "ArticlesGenerator-Readers is damaged (EOFError" in log
    assert tree(out) == tree(first)
    assert build(site, "third")  # the cache written by the second build loads again


def test_fingerprint_follows_reading_settings_only():
    from content_cache import fingerprint

    base = {"SITENAME": "A", "OUTPUT_PATH": "/tmp/a", "TAGS": {"b", "a"}, "SLUGIFY": len}
    same = {**base, "OUTPUT_PATH": "/tmp/b", "CARNIVAL_OFFLINE": True, "_state": object()}
    assert fingerprint(base) == fingerprint(same)
    assert fingerprint(base) != fingerprint({**base, "SITENAME": "B"})
    assert fingerprint(base) == fingerprint({**base, "TAGS": {"a", "b"}})


# -- saving whole (pure: Pelican's own cacher class, no build) --------------------------------


@pytest.fixture
def whole_saves(monkeypatch):
    """Pelican's cacher as the plugin's register() leaves it (without connecting its signals
    in this process); Pelican's own save_cache again after the test."""
    import content_cache
    from pelican.cache import FileDataCacher

    monkeypatch.setattr(FileDataCacher, "save_cache", FileDataCacher.save_cache)
    content_cache.save_caches_whole()
    return FileDataCacher


def cacher(cls, folder: Path, *, gzipped: bool = True, load: bool = False):
    settings = {"CACHE_PATH": str(folder), "GZIP_CACHE": gzipped}
    return cls(settings, "ArticlesGenerator-Readers", True, load)


class ReadsTheCacheWhenPickled:
    """Stands for a second build that loads the cache file while this one is saving it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.seen: list[object] = []

    def __reduce__(self):
        from pelican.cache import FileDataCacher

        self.seen.append(cacher(FileDataCacher, self.folder, load=True)._cache)
        return (str, ("read",))


@pytest.mark.parametrize("gzipped", [True, False])
def test_a_saved_cache_loads_in_pelican(whole_saves, tmp_path, gzipped):
    first = cacher(whole_saves, tmp_path / "cache", gzipped=gzipped)
    first.cache_data("a.md", ("<p>A</p>", {"title": "A"}))
    first.save_cache()
    again = cacher(whole_saves, tmp_path / "cache", gzipped=gzipped, load=True)
    assert again.get_cached_data("a.md") == ("<p>A</p>", {"title": "A"})


def test_a_build_reading_the_cache_while_another_saves_it_reads_it_whole(whole_saves, tmp_path):
    """Pelican opens the file for writing (emptying it) before pickling: a build loading it
    meanwhile found it empty or half written; this is what failed CI with a damaged-cache
    warning when two builds of the same site ran at once."""
    folder = tmp_path / "cache"
    old = cacher(whole_saves, folder)
    old.cache_data("a.md", "old")
    old.save_cache()
    reader = ReadsTheCacheWhenPickled(folder)
    new = cacher(whole_saves, folder)
    new.cache_data("a.md", "new")
    new.cache_data("b.md", reader)
    new.save_cache()
    assert reader.seen == [{"a.md": "old"}]
    assert cacher(whole_saves, folder, load=True)._cache == {"a.md": "new", "b.md": "read"}
    assert [p.name for p in folder.iterdir()] == ["ArticlesGenerator-Readers"]  # no temp file


def test_a_save_that_fails_keeps_the_old_cache(whole_saves, tmp_path, caplog):
    folder = tmp_path / "cache"
    old = cacher(whole_saves, folder)
    old.cache_data("a.md", "old")
    old.save_cache()
    broken = cacher(whole_saves, folder)
    broken.cache_data("a.md", lambda: "a local function does not pickle")
    broken.save_cache()
    assert "Could not save cache" in caplog.text
    assert cacher(whole_saves, folder, load=True)._cache == {"a.md": "old"}
    assert [p.name for p in folder.iterdir()] == ["ArticlesGenerator-Readers"]
