"""Each post's Older/Newer links, found once per build, are the ones the old template found by
walking the whole site-wide list on every page: same posts, same roundups, same ties."""

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

# Dates that tie with each other and with the roundups (editions 1 and 3), around both.
DATES = [
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
        status = {3: "hidden", 6: "draft"}.get(i, "published")
        (posts / f"nav-{i}.md").write_text(
            f"Title: Neighbour test {i}\nDate: {date}\nCategory: Networking\n"
            f"Tags: nav-{i % 3}\nSlug: nav-{i}\nStatus: {status}\n\n"
            f"A short post, number {i}, to sit between others.\n",
            encoding="utf-8",
        )


def test_neighbours_match_the_site_wide_list(tmp_path):
    ours = copy_site(tmp_path / "ours")
    add_posts(ours)
    walking = copy_site(tmp_path / "walking")
    add_posts(walking)
    article = walking / "theme/templates/article.html"
    text = article.read_text(encoding="utf-8")
    start, end = text.index("{% block post_nav %}"), text.index("{% endblock post_nav %}")
    article.write_text(
        text[:start] + WALKING_POST_NAV + text[end + len("{% endblock post_nav %}") :],
        encoding="utf-8",
    )
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
    assert 'href="../../carnival/networking-carnival/1/" rel="next"' in pages["2026/09/nav-1.html"]
    assert 'href="../../carnival/networking-carnival/3/" rel="prev"' in pages["2026/11/nav-8.html"]
    assert "post-nav" not in pages["2026/09/nav-3.html"]
    assert "post-nav" not in pages["drafts/nav-6.html"]
    assert "post-nav" in pages["2027/02/nav-9.html"]
    assert 'rel="next"' not in pages["2027/02/nav-9.html"]
