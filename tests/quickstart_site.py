"""A Pelican site in the shape `pelican-quickstart` makes, hosting one small carnival: the site a
new user of the plugin has. Used by tests/test_any_theme.py (plugin from plugins/) and by
tests/test_package.py (plugin installed from the built wheel, in a fresh virtualenv).

Standard library only, so it runs under any interpreter: `python quickstart_site.py FOLDER
FEED_URL POST_URL [THEME] [--plugin-path DIR]` writes the site.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

HOST_TITLE = "Links & <lists>"  # the host's plain text: escaped, never lost
FEED_TITLE = 'Locked <script>alert("x")</script> one'  # what a hostile feed said


def write_site(
    folder: Path,
    *,
    feed_url: str,
    post_url: str,
    theme: str | None = None,
    plugin_path: str | None = None,
    extra_settings: str = "",
) -> Path:
    """Write the site into ``folder``; returns its pelicanconf.py. Edition 1 is locked (no
    network), edition 2 is fetched live from ``feed_url`` (a loopback server)."""
    content = folder / "content"
    (content / "posts").mkdir(parents=True, exist_ok=True)
    (content / "posts" / "entry.md").write_text(
        textwrap.dedent(
            """\
            Title: My entry
            Date: 2026-01-05 10:00
            Carnival: quick-carnival/1

            A post that took part in the carnival.
            """
        )
    )
    root = folder / "carnival" / "quick-carnival"
    root.mkdir(parents=True, exist_ok=True)
    (root / "carnival.toml").write_text(
        textwrap.dedent(
            """\
            title = "The Quick Carnival"
            description = "A *small* carnival for testing."
            organizer = { name = "Quick Host", url = "https://quick.example/" }
            submit_email = "host@quick.example"
            """
        )
    )
    (root / "001.toml").write_text(
        textwrap.dedent(
            f"""\
            number = 1
            title = {json.dumps(HOST_TITLE)}
            host = {{ name = "Quick Host" }}
            opens = 2026-01-01
            deadline = 2026-01-10
            date = 2026-01-12
            intro = "The first edition."

            [[entries]]
            url = "https://one.example/a.html"
            note = "Worth it."
            """
        )
    )
    (root / "001.lock.json").write_text(
        json.dumps(
            {
                "format": 1,
                "carnival": "quick-carnival",
                "number": 1,
                "frozen_at": "2026-01-12T09:00:00+00:00",
                "entries": [
                    {
                        "url": "https://one.example/a.html",
                        "title": FEED_TITLE,
                        "blog_name": "One",
                        "blog_url": "https://one.example/",
                        "author": None,
                        "published": "2026-01-03T00:00:00+00:00",
                        "excerpt": "From the lock.",
                        "source": "feed",
                        "feed_url": "https://one.example/feed.xml",
                    }
                ],
            },
            indent=2,
        )
    )
    (root / "002.toml").write_text(
        textwrap.dedent(
            f"""\
            number = 2
            title = "Fetched live"
            host = {{ name = "Quick Host" }}
            opens = 2026-10-01
            deadline = 2026-12-31
            date = 2027-01-02
            intro = "The second edition."

            [[entries]]
            url = {json.dumps(post_url)}
            feed = {json.dumps(feed_url)}
            """
        )
    )
    lines = [
        'AUTHOR = "Quick Host"',
        'SITENAME = "Quick Site"',
        'SITEURL = ""',
        'PATH = "content"',
        'TIMEZONE = "UTC"',
        'DEFAULT_LANG = "en"',
        "FEED_ALL_ATOM = None",
        "CATEGORY_FEED_ATOM = None",
        "TRANSLATION_FEED_ATOM = None",
        "AUTHOR_FEED_ATOM = None",
        "AUTHOR_FEED_RSS = None",
        "DEFAULT_PAGINATION = False",
        'PLUGINS = ["blog_carnival"]',
        'CARNIVAL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]',
        'CARNIVAL_TODAY = "2027-01-05"',
    ]
    if theme:
        lines.append(f"THEME = {theme!r}")
    if plugin_path:
        lines.append(f"PLUGIN_PATHS = [{plugin_path!r}]")
    conf = folder / "pelicanconf.py"
    conf.write_text("\n".join(lines) + "\n" + extra_settings)
    return conf


if __name__ == "__main__":
    args = sys.argv[1:]
    plugin_path = None
    if "--plugin-path" in args:
        at = args.index("--plugin-path")
        plugin_path = args[at + 1]
        del args[at : at + 2]
    target, feed, post, *rest = args
    write_site(
        Path(target),
        feed_url=feed,
        post_url=post,
        theme=rest[0] if rest else None,
        plugin_path=plugin_path,
    )
