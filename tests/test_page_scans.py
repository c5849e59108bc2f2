"""Pages do work proportional to what they show, with the output of the templates that scanned
the whole site on every page: each post's Older/Newer links (found once per build instead of a
walk over the site-wide list: same posts, same roundups, same ties) and the footer's copyright
years (the first and last year archive instead of a map over all of them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_site, copy_site
from golden import tree

pytestmark = pytest.mark.site

# The block article.html had before neighbours were found once per build (quadratic: every
# post page walked every article and computed its URL).
WALKING_POST_NAV = """{% block post_nav %}
{#- Neighbours by date, found in the site-wide list (newest first). -#}
{% set nb = namespace(newer=None, older=None) %}
{% for a in (articles or []) %}
  {% if a.url == article.url %}
    {% if not loop.first %}{% set nb.newer = loop.previtem %}{% endif %}
    {% if not loop.last %}{% set nb.older = loop.nextitem %}{% endif %}
  {% endif %}
{% endfor %}
{% if nb.newer or nb.older %}
<nav class="post-nav" aria-label="More posts">
  <ul>
  {% if nb.older %}
    <li class="older"><span class="label">Older</span> <a href="{{ SITEURL }}/{{ nb.older.url }}" rel="prev">{{ nb.older.title }}</a></li>
  {% endif %}
  {% if nb.newer %}
    <li class="newer"><span class="label">Newer</span> <a href="{{ SITEURL }}/{{ nb.newer.url }}" rel="next">{{ nb.newer.title }}</a></li>
  {% endif %}
  </ul>
</nav>
{% endif %}
{% endblock post_nav %}"""

# The footer's years as base.html found them (a map, a min and a max over every year, per page).
SCANNING_YEARS = """    {% set years = (period_archives['year'] if period_archives is defined and period_archives and 'year' in period_archives else [])|map(attribute='period_num')|map('first')|list %}
"""

# Dates that tie with each other and with the roundups (editions 1 and 3), around both.
DATES = [
    "2024-05-01 10:00",
    "2026-09-02 18:00",
    "2026-09-03 00:00",
    "2026-09-03 00:00",
    "2026-09-03 07:30",
    "2026-10-01 09:00",
    "2026-11-19 23:59",
    "2026-11-20 00:00",
    "2026-11-20 00:00",
    "2026-11-21 12:00",
    "2027-02-01 08:00",
]


def add_posts(site: Path) -> None:
    posts = site / "content" / "posts"
    for i, date in enumerate(DATES):
        status = {4: "hidden", 7: "draft"}.get(i, "published")
        (posts / f"nav-{i}.md").write_text(
            f"Title: Neighbour test {i}\nDate: {date}\nCategory: Networking\n"
            f"Tags: nav-{i % 3}\nSlug: nav-{i}\nStatus: {status}\n\n"
            f"A short post, number {i}, to sit between others.\n",
            encoding="utf-8",
        )


def replace(path: Path, start: str, end: str, new: str) -> None:
    """Replace the text from `start` to the end of `end` (inclusive) in a template."""
    text = path.read_text(encoding="utf-8")
    a = text.index(start)
    b = text.index(end, a) + len(end)
    path.write_text(text[:a] + new + text[b:], encoding="utf-8")


def test_pages_match_the_scanning_templates(tmp_path):
    ours = copy_site(tmp_path / "ours")
    add_posts(ours)
    walking = copy_site(tmp_path / "walking")
    add_posts(walking)
    templates = walking / "theme/templates"
    replace(
        templates / "article.html",
        "{% block post_nav %}",
        "{% endblock post_nav %}",
        WALKING_POST_NAV,
    )
    replace(templates / "base.html", "    {#- The first and last year", "else [] %}\n", "")
    replace(templates / "base.html", "    {% set years =", "else [] %}\n", SCANNING_YEARS)
    built = {}
    for name, site in (("ours", ours), ("walking", walking)):
        out = tmp_path / f"out-{name}"
        proc = build_site(out, cwd=site, env={"CARNIVAL_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        built[name] = tree(out)
    assert built["ours"] == built["walking"]
    pages = {k: v.decode() for k, v in built["ours"].items() if k.endswith(".html")}
    # the comparison covers the cases that matter: roundups as neighbours, a hidden post
    # and a draft (no links), a post with only a newer or only an older neighbour
    assert 'href="../../carnival/networking-carnival/1/" rel="next"' in pages["2026/09/nav-2.html"]
    assert 'href="../../carnival/networking-carnival/3/" rel="prev"' in pages["2026/11/nav-9.html"]
    assert "post-nav" not in pages["2026/09/nav-4.html"]
    assert "post-nav" not in pages["drafts/nav-7.html"]
    assert "post-nav" in pages["2027/02/nav-10.html"]
    assert 'rel="next"' not in pages["2027/02/nav-10.html"]
    assert "© 2024–2027 Marisol Quint." in pages["index.html"]
