"""Readers see a moderated conversation: approved comments with their replies, mentions grouped,
counts in every list of posts, comment feeds, JSON Feed, and pages that share well. Pending and
spam never reach any page or feed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from blog_carnival import cli
from blog_carnival.comments import Comment
from blog_carnival.conversation import conversation
from conftest import ROOT, build_site, copy_site
from safety import scan_site

T = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def comment(n: int, **fields) -> Comment:
    values = dict(
        id=f"c{n}",
        post_slug="p",
        author=f"A{n}",
        date=T + dt.timedelta(hours=n),
        status="approved",
        text=f"Text {n}",
    )
    values.update(fields)
    return Comment(**values)


# -- the conversation, pure ------------------------------------------------------------------


def test_replies_nest_one_level_and_mentions_are_grouped_not_counted():
    conv = conversation(
        [
            comment(1),
            comment(2, reply_to="c1"),
            comment(3, kind="like", source="https://x.example/l"),
            comment(4, kind="reply", source="https://y.example/r"),
            comment(5, kind="mention", source="https://z.example/m"),
            comment(6, reply_to="missing"),  # its parent is not shown: it stands on its own
        ]
    )
    assert [c.id for c in conv.comments] == ["c1", "c4", "c6"]
    assert [r.id for r in conv.comments[0].replies] == ["c2"]
    assert [(label, [v.id for v in views]) for label, views in conv.groups] == [
        ("Liked by", ["c3"]),
        ("Mentioned by", ["c5"]),
    ]
    assert conv.count == 4 and conv.count_text == "4 comments"
    assert [v.id for v in conv.flat()] == ["c1", "c2", "c4", "c6"]


@pytest.mark.parametrize(
    ("n", "text"), [(0, "No comments yet"), (1, "1 comment"), (2, "2 comments")]
)
def test_count_text(n, text):
    assert conversation([comment(i) for i in range(n)]).count_text == text


def test_comment_markdown_goes_through_the_sanitizer_and_author_links_are_http_only():
    (view,) = conversation(
        [
            comment(
                1,
                text='**hi** <script>x()</script> <a href="javascript:y()">z</a>',
                url="javascript:alert(1)",
            )
        ]
    ).comments
    assert "<strong>hi</strong>" in view.html
    assert "<script" not in view.html and "javascript:" not in view.html
    assert view.author_url is None


# -- the real site -----------------------------------------------------------------------------

pytestmark_site = pytest.mark.site


@pytest.mark.site
def test_pending_and_spam_reach_no_page_or_feed(built_site):
    for path in built_site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".xml", ".json"):
            text = path.read_text(encoding="utf-8")
            for secret in ("Jun Park", "jobs-jobs-now", "find job search", "rosa@rosa-writes"):
                assert secret not in text, (secret, path)
    assert scan_site(built_site) == []


@pytest.mark.site
def test_counts_appear_in_lists_and_comment_feeds_carry_approved_comments(built_site):
    index = (built_site / "index.html").read_text()
    assert "No comments yet" in index
    archives = (built_site / "archives/index.html").read_text()
    assert 'who-pays-for-coffee.html#comments">3 comments</a>' in archives
    post = (built_site / "2026/05/who-pays-for-coffee.html").read_text()
    assert (
        'type="application/atom+xml" href="../../feeds/comments/who-pays-for-coffee.atom.xml"'
        in post
    )
    assert '<link rel="webmention" href="https://webmention.io/' in post
    feed = feedparser.parse(
        (built_site / "feeds/comments/who-pays-for-coffee.atom.xml").read_bytes()
    )
    assert [e.author for e in feed.entries] == ["Theo Brandt", "Marisol Quint", "Rosa Delgado"]
    everything = feedparser.parse((built_site / "feeds/comments.atom.xml").read_bytes())
    assert len(everything.entries) == 4  # three on the coffee post, one reply from another site
    roundup = (built_site / "carnival/networking-carnival/3/index.html").read_text()
    assert "Mentioned by" in roundup and "Liked by" in roundup


# -- adding, approving, building ------------------------------------------------------------


def write_eml(path: Path) -> Path:
    path.write_text(
        "From: Grace Obi <grace@obi.example>\n"
        "To: letters@warm-introduction.example\n"
        "Subject: Re: Who Pays for the Coffee?\n"
        "Date: Tue, 12 May 2026 08:15:00 +0000\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "Your point about arriving first saved me at a busy cafe near the station: I had a table\n"
        "before my old colleague walked in, and we used all thirty minutes.\n\n"
        "-- \nGrace\n"
    )
    return path


@pytest.mark.site
def test_add_from_text_and_mail_approve_then_build(tmp_path, capsys):
    site = copy_site(tmp_path / "site")
    conf = str(site / "pelicanconf.py")
    text = (
        "Thank you for the bit about offering two specific times; it got me a yes from a busy VP."
    )
    assert (
        cli.main(
            [
                "-s",
                conf,
                "comments",
                "add",
                "who-pays-for-coffee",
                "--author",
                "Lee Wong",
                "--text",
                text,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("pending:")
    assert (
        cli.main(
            [
                "-s",
                conf,
                "comments",
                "add",
                "who-pays-for-coffee",
                "--mail",
                str(write_eml(tmp_path / "m.eml")),
            ]
        )
        == 0
    )
    assert "pending:" in capsys.readouterr().out
    assert (
        cli.main(["-s", conf, "comments", "add", "no-such-post", "--author", "X", "--text", "hi"])
        == 2
    )
    assert cli.main(["-s", conf, "comments", "pending"]) == 0
    listing = capsys.readouterr().out
    ids = {
        name: line.split()[0]
        for line in listing.splitlines()
        for name in ("Lee Wong", "Grace Obi")
        if name in line
    }
    assert len(ids) == 2
    built = tmp_path / "before"
    assert build_site(built, cwd=site).returncode == 0
    assert "Lee Wong" not in (built / "2026/05/who-pays-for-coffee.html").read_text()
    for comment_id in ids.values():
        assert cli.main(["-s", conf, "comments", "approve", comment_id]) == 0
    after = tmp_path / "after"
    proc = build_site(after, cwd=site)
    assert proc.returncode == 0, proc.stderr
    post = (after / "2026/05/who-pays-for-coffee.html").read_text()
    assert "Lee Wong" in post and "Grace Obi" in post and "thirty minutes" in post
    assert "-- \nGrace" not in post  # the signature was cut from the e-mail
    assert "5 comments" in post
    assert (
        'who-pays-for-coffee.html#comments">5 comments</a>'
        in (after / "archives/index.html").read_text()
    )
    feed = feedparser.parse((after / "feeds/comments/who-pays-for-coffee.atom.xml").read_bytes())
    assert {"Lee Wong", "Grace Obi"} <= {e.author for e in feed.entries}
    spammed = ids["Lee Wong"]
    assert cli.main(["-s", conf, "comments", "spam", spammed]) == 0
    again = tmp_path / "again"
    assert build_site(again, cwd=site).returncode == 0
    assert "Lee Wong" not in "".join(p.read_text() for p in again.rglob("*.xml"))
    assert "Lee Wong" not in (again / "2026/05/who-pays-for-coffee.html").read_text()


# -- JSON Feed -----------------------------------------------------------------------------


def check_json_feed(path: Path, atom_path: Path) -> dict:
    """The JSON Feed 1.1 required fields, and the same ids and content as the Atom feed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(data["title"], str) and data["title"]
    assert isinstance(data["items"], list) and data["items"]
    for item in data["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        for key in ("date_published", "date_modified"):
            if key in item:
                dt.datetime.fromisoformat(item[key])  # RFC 3339
    atom = feedparser.parse(atom_path.read_bytes())
    assert [i["id"] for i in data["items"]] == [e.id for e in atom.entries]
    assert [i["content_html"] for i in data["items"]] == [e.content[0].value for e in atom.entries]
    assert len({i["id"] for i in data["items"]}) == len(data["items"])
    return data


@pytest.mark.site
def test_json_feeds_match_the_atom_feeds_and_are_advertised(built_site):
    check_json_feed(built_site / "feeds/all.json", built_site / "feeds/all.atom.xml")
    carnival = built_site / "carnival/networking-carnival"
    check_json_feed(carnival / "feed.json", carnival / "atom.xml")
    home = (built_site / "index.html").read_text()
    assert '<link rel="alternate" type="application/feed+json" href="./feeds/all.json"' in home or (
        'type="application/feed+json"' in home and "feeds/all.json" in home
    )


@pytest.mark.site
def test_json_feed_ids_are_stable_across_builds(built_site, tmp_path):
    again = tmp_path / "again"
    assert build_site(again, extra={"CARNIVAL_OFFLINE": "true"}).returncode == 0
    first = json.loads((built_site / "feeds/all.json").read_text())
    second = json.loads((again / "feeds/all.json").read_text())
    assert [i["id"] for i in first["items"]] == [i["id"] for i in second["items"]]


# -- pages that share well (publish settings) ----------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("published")
    proc = build_site(out, settings="publishconf.py", extra={"CARNIVAL_OFFLINE": "true"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


SITE = "https://warm-introduction.example"


@pytest.mark.site
def test_sitemap_lists_posts_and_roundups_with_absolute_urls(published):
    sitemap = (published / "sitemap.xml").read_text()
    assert f"<loc>{SITE}/2026/05/who-pays-for-coffee.html</loc>" in sitemap
    assert f"<loc>{SITE}/carnival/networking-carnival/3/</loc>" in sitemap
    assert f"<loc>{SITE}/carnival/networking-carnival/</loc>" in sitemap
    assert "404.html" not in sitemap and "<loc>/" not in sitemap


@pytest.mark.site
@pytest.mark.parametrize(
    ("path", "url", "kind"),
    [
        ("2026/05/who-pays-for-coffee.html", "2026/05/who-pays-for-coffee.html", "article"),
        ("carnival/networking-carnival/3/index.html", "carnival/networking-carnival/3/", "article"),
        ("about/index.html", "about/", "website"),
    ],
)
def test_canonical_and_open_graph_meta_are_absolute(published, path, url, kind):
    page = (published / path).read_text()
    assert f'<link rel="canonical" href="{SITE}/{url}">' in page
    assert f'<meta property="og:url" content="{SITE}/{url}">' in page
    assert f'<meta property="og:type" content="{kind}">' in page
    assert (
        '<meta property="og:title" content="' in page
        and '<meta name="twitter:card" content="summary">' in page
    )
    if kind == "article":
        assert '<meta property="article:published_time" content="20' in page


# -- quiet builds ------------------------------------------------------------------------------


@pytest.mark.site
def test_a_clean_build_prints_no_warning(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "build", "--offline", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "CARNIVAL_TODAY": "2026-12-01"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (proc.stdout + proc.stderr).splitlines()
    assert not [line for line in lines if "WARNING" in line], lines


@pytest.mark.site
def test_a_comment_full_of_script_is_inert_once_approved(tmp_path, capsys):
    site = copy_site(tmp_path / "site")
    conf = str(site / "pelicanconf.py")
    vectors = (
        "Nice post <script>alert(1)</script> <img src=x onerror=alert(2)> "
        '<a href="javascript:alert(3)">click</a> <iframe src="https://evil.example/"></iframe> '
        "[md link](javascript:alert(4)) <svg onload=alert(5)></svg> "
        '<a href="https://ok.example/" onclick="alert(6)" style="color:red">fine</a>'
    )
    author = '<b onmouseover="alert(7)">Mallory</b>'
    add = [
        "-s",
        conf,
        "comments",
        "add",
        "who-pays-for-coffee",
        "--author",
        author,
        "--text",
        vectors,
    ]
    assert cli.main([*add, "--url", "javascript:alert(8)"]) == 1  # refused: not http(s)
    assert "is not an absolute http(s) URL" in capsys.readouterr().err
    assert cli.main(add) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "(id " in x)
    assert cli.main(["-s", conf, "comments", "approve", line.rsplit("(id ", 1)[1].rstrip(")")]) == 0
    out = tmp_path / "out"
    assert build_site(out, cwd=site).returncode == 0
    post = (out / "2026/05/who-pays-for-coffee.html").read_text()
    assert "Mallory" in post and "fine</a>" in post  # it is shown...
    assert scan_site(out) == []  # ...and nothing in it runs, on the page or in any feed
    assert "javascript:" not in post
    assert "&lt;b onmouseover=&#34;alert(7)&#34;&gt;Mallory&lt;/b&gt;" in post  # a name, as text
