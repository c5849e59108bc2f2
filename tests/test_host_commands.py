"""The host's commands: new, edition, submit, check and status, through the same functions the
Invoke tasks and `pelican-carnival` call, against the demo blogs served on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from blog_carnival import cli, core
from blog_carnival.config import load_carnivals
from blog_carnival.errors import Refused, UsageError
from blog_carnival.model import Person
from blog_carnival.scaffold import next_dates
from blog_carnival.settings import read_settings
from conftest import ROOT, build_site
from sites_server import SitesServer, local_carnival

TODAY = "2027-01-20"  # edition 5's call is open; editions 1 and 3 are published
NEW_POST = "/2027/01/thank-you-after-the-offer.html"  # on follow-up-notes.example, dated Jan 12


@pytest.fixture(scope="module")
def server():
    with SitesServer() as running:
        yield running


@pytest.fixture()
def site(server, tmp_path):
    """A copy of the sample carnival pointed at the demo server, with its locks."""
    folder = local_carnival(server, ROOT / "carnival", tmp_path / "carnival", locks=True)
    return folder


def settings_for(folder: Path, tmp_path: Path, **extra):
    values = {
        "CARNIVAL_PATH": str(folder),
        "CARNIVAL_CACHE_PATH": str(tmp_path / "cache"),
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"],
        "CARNIVAL_TODAY": TODAY,
        **extra,
    }
    return read_settings(values, tmp_path)


def edition_text(folder: Path, number: int) -> bytes:
    return (folder / "networking-carnival" / f"{number:03d}.toml").read_bytes()


def post(server: SitesServer, path: str = NEW_POST, host: str = "follow-up-notes.example") -> str:
    return server.url(host, path)


# -- submit: success ------------------------------------------------------------------------


def test_submit_appends_one_block_and_keeps_every_byte_before_it(server, site, tmp_path):
    settings = settings_for(site, tmp_path)
    path = site / "networking-carnival" / "005.toml"
    path.write_text(path.read_text() + "# the host's own comment, kept\n\n")
    before = path.read_bytes()
    url = post(server) + "?utm_source=newsletter&utm_medium=email#comments"
    done = core.submit(
        settings,
        "networking-carnival/5",
        url,
        section="Closing the loop",
        note="Names *what* help became.",
        pick=True,
    )
    after = path.read_bytes()
    assert after.startswith(before)  # byte for byte: nothing before the block changed
    block = after[len(before) :].decode()
    assert block == done.block
    assert block.count("[[entries]]") == 1
    stored = post(server)
    assert f'url = "{stored}"' in block  # canonical: no utm_*, no fragment
    assert f'feed = "{server.url("follow-up-notes.example", "/rss.xml")}"' in block  # discovered
    assert 'section = "Closing the loop"' in block and "pick = true" in block
    assert 'title = "The thank-you after the offer"' in block
    (carnival,) = load_carnivals(site)
    entry = carnival.edition(5).entries[-1]
    assert (entry.url, entry.section, entry.pick) == (stored, "Closing the loop", True)
    assert entry.note == "Names *what* help became."
    lines = "\n".join(done.lines())
    assert "The thank-you after the offer" in lines and "Ken Aldana" in lines
    assert "2027-01-12" in lines and "Follow-Up Notes" in lines


def test_submit_falls_back_to_the_page_when_the_feed_does_not_carry_the_post(
    server, site, tmp_path
):
    settings = settings_for(site, tmp_path, CARNIVAL_TODAY="2026-11-10")
    # edition 3's window; this post is missing from its blog's feed
    (site / "networking-carnival" / "003.lock.json").unlink()
    path = site / "networking-carnival" / "003.toml"
    path.write_text(path.read_text().split("[[entries]]")[0])  # no entries yet
    done = core.submit(
        settings,
        "networking-carnival/3",
        post(server, "/2026/11/the-first-five-days.html", "the-quiet-networker.example"),
    )
    assert done.found.source.value == "page"
    assert done.found.title == "The first five days after the layoff"


def test_dry_run_writes_nothing_and_shows_the_block(server, site, tmp_path):
    before = edition_text(site, 5)
    done = core.submit(
        settings_for(site, tmp_path), "networking-carnival/5", post(server), dry_run=True
    )
    assert edition_text(site, 5) == before
    assert not done.written
    assert any("dry run: would append" in line for line in done.lines())


def test_a_submission_renders_in_the_built_roundup(server, site, tmp_path):
    core.submit(settings_for(site, tmp_path), "networking-carnival/5", post(server))
    out = tmp_path / "out"
    proc = build_site(
        out,
        extra={
            "CARNIVAL_PATH": json.dumps(str(site)),
            "CARNIVAL_CACHE_PATH": json.dumps(str(tmp_path / "cache")),
            "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
            "CARNIVAL_TODAY": '"2027-02-05"',  # the roundup's day
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (out / "carnival/networking-carnival/5/index.html").read_text()
    assert "Call for submissions" not in page
    assert f'<a href="{post(server)}">The thank-you after the offer</a>' in page


# -- submit: refusals leave the file byte-identical ------------------------------------------


def refused(settings, ref, url, folder, number, **options) -> str:
    before = edition_text(folder, number)
    with pytest.raises(Refused) as info:
        core.submit(settings, ref, url, **options)
    assert edition_text(folder, number) == before
    return str(info.value)


@pytest.mark.parametrize(
    "url", ["ftp://files.example/post", "javascript:alert(1)", "post.html", ""]
)
def test_non_http_urls_are_refused(site, tmp_path, url):
    assert "not an http(s) URL" in refused(
        settings_for(site, tmp_path), "networking-carnival/5", url, site, 5
    )


def test_an_address_the_policy_forbids_is_refused(server, site, tmp_path):
    settings = settings_for(site, tmp_path, CARNIVAL_ALLOWED_PRIVATE_HOSTS=[])
    reason = refused(settings, "networking-carnival/5", post(server), site, 5)
    assert "refused address 127.0.0.1" in reason and "loopback" in reason


def test_a_page_that_does_not_answer_or_is_not_html_is_refused(server, site, tmp_path):
    settings = settings_for(site, tmp_path)
    missing = post(server, "/2027/01/no-such-post.html")
    assert "HTTP 404" in refused(settings, "networking-carnival/5", missing, site, 5)
    feed = server.url("follow-up-notes.example", "/rss.xml")
    assert "is not an HTML page" in refused(settings, "networking-carnival/5", feed, site, 5)
    closed = "http://127.0.0.1:9/post.html"  # the discard port: nothing listens
    assert "cannot read" in refused(settings, "networking-carnival/5", closed, site, 5)


def test_a_duplicate_in_the_same_edition_is_refused_in_any_spelling(server, site, tmp_path):
    settings = settings_for(site, tmp_path)
    core.submit(settings, "networking-carnival/5", post(server))
    path = site / "networking-carnival" / "005.toml"
    path.write_text(
        path.read_text() + '\n[[entries]]\nurl = "https://Blog.Example/2027/01/post/"\n'
    )
    for spelling in (
        post(server),
        post(server) + "?utm_campaign=x&fbclid=abc",
        post(server).replace("http://", "HTTP://") + "#comments",
        "https://blog.example/2027/01/post",  # host case and trailing slash
        "http://BLOG.example/2027/01/post/?utm_source=feed",
    ):
        assert "already an entry in networking-carnival/5" in refused(
            settings, "networking-carnival/5", spelling, site, 5
        )


def test_a_post_featured_in_an_earlier_edition_is_refused(server, site, tmp_path):
    url = server.url("coffee-and-careers.example", "/2026/08/asking-for-coffee.html")
    reason = refused(settings_for(site, tmp_path), "networking-carnival/5", url, site, 5)
    assert "already featured in networking-carnival/1" in reason


def test_a_post_dated_outside_the_window_is_refused_unless_forced(server, site, tmp_path):
    settings = settings_for(site, tmp_path)
    url = server.url("follow-up-notes.example", "/2026/10/spreadsheet.html")
    reason = refused(settings, "networking-carnival/5", url, site, 5)
    assert "dated 2026-10-23, outside the window 2027-01-06..2027-02-02" in reason
    done = core.submit(settings, "networking-carnival/5", url, force=True)
    assert done.written and any("accepted with --force" in line for line in done.lines())


def test_a_blogger_over_max_per_contributor_is_refused(server, site, tmp_path):
    path = site / "networking-carnival" / "005.toml"
    text = path.read_text().replace("tag = ", "max_per_contributor = 1\ntag = ")
    text += f'\n[[entries]]\nurl = "{server.url("follow-up-notes.example", "/2026/11/when-replies-slow-down.html")}"\n'
    path.write_text(text)
    reason = refused(settings_for(site, tmp_path), "networking-carnival/5", post(server), site, 5)
    assert "already has 1 entry in networking-carnival/5 (max_per_contributor = 1)" in reason


def test_a_locked_edition_says_the_lock_must_be_refreshed_and_refuses_without_force(
    server, site, tmp_path
):
    settings = settings_for(site, tmp_path, CARNIVAL_TODAY="2026-11-25")
    url = server.url("follow-up-notes.example", "/2026/11/when-replies-slow-down.html")
    path = site / "networking-carnival" / "003.toml"
    path.write_text(path.read_text().replace(url, url.replace("replies", "REPLIES-x")))
    reason = refused(settings, "networking-carnival/3", url, site, 3)
    assert (
        "is locked (003.lock.json)" in reason
        and "invoke carnival.freeze networking-carnival/3" in reason
    )
    done = core.submit(settings, "networking-carnival/3", url, force=True)
    assert any("must be refreshed" in line for line in done.lines())


def test_an_edition_hosted_elsewhere_and_an_unknown_section_are_refused(server, site, tmp_path):
    settings = settings_for(site, tmp_path)
    assert "hosted elsewhere" in refused(settings, "networking-carnival/4", post(server), site, 4)
    with pytest.raises(UsageError, match="not one of networking-carnival/5's"):
        core.submit(settings, "networking-carnival/5", post(server), section="Nope")


# -- exit codes through the command line ------------------------------------------------------


def write_conf(tmp_path: Path, folder: Path, allowed: bool = True) -> Path:
    conf = tmp_path / "siteconf.py"
    conf.write_text(
        textwrap.dedent(
            f"""
            AUTHOR = "Test Organizer"
            SITEURL = "https://carnival-host.example"
            PATH = {str(tmp_path / "content")!r}
            CARNIVAL_PATH = {str(folder)!r}
            CARNIVAL_CACHE_PATH = {str(tmp_path / "cache")!r}
            CARNIVAL_ALLOWED_PRIVATE_HOSTS = {["127.0.0.1"] if allowed else []!r}
            CARNIVAL_TODAY = {TODAY!r}
            """
        )
    )
    (tmp_path / "content").mkdir(exist_ok=True)
    return conf


def test_command_line_exit_codes(server, site, tmp_path, capsys):
    conf = str(write_conf(tmp_path, site))
    assert cli.main(["-s", conf, "submit", "networking-carnival/5", post(server), "--dry-run"]) == 0
    assert cli.main(["-s", conf, "submit", "networking-carnival/5", "ftp://x.example/"]) == 1
    assert cli.main(["-s", conf, "submit", "networking-carnival/99", post(server)]) == 2
    assert cli.main(["-s", conf, "submit", "no-such/5", post(server)]) == 2
    err = capsys.readouterr().err
    assert "carnival: not an http(s) URL" in err and "no edition 'networking-carnival/99'" in err
    assert "Traceback" not in err


def test_a_config_error_exits_2_with_the_builds_messages(site, tmp_path, capsys):
    (site / "networking-carnival" / "005.toml").write_text('number = 5\ntitel = "typo"\n')
    conf = str(write_conf(tmp_path, site))
    assert cli.main(["-s", conf, "check"]) == 2
    err = capsys.readouterr().err
    assert "005.toml: titel: unknown key (did you mean 'title'?)" in err


# -- new, edition ----------------------------------------------------------------------------


def test_new_carnival_then_editions_with_a_cadence(tmp_path, capsys):
    folder = tmp_path / "carnival"
    folder.mkdir()
    conf = str(write_conf(tmp_path, folder))
    assert cli.main(["-s", conf, "new", "reading-circle", "--submit-email", "me@x.example"]) == 0
    text = (folder / "reading-circle" / "carnival.toml").read_text()
    assert "# timezone =" in text and "# [[contributors]]" in text  # optional fields, commented
    assert cli.main(["-s", conf, "new", "reading-circle"]) == 1  # never overwrites
    assert cli.main(["-s", conf, "new", "Bad Name"]) == 2
    assert (
        cli.main(
            [
                "-s",
                conf,
                "edition",
                "reading-circle",
                "--title",
                "Firsts",
                "--opens",
                "2027-01-01",
                "--deadline",
                "2027-01-20",
                "--date",
                "2027-01-25",
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "-s",
                conf,
                "edition",
                "reading-circle",
                "--title",
                "Seconds",
                "--host-name",
                "Guest",
                "--host-url",
                "https://guest.example/",
            ]
        )
        == 0
    )
    (carnival,) = load_carnivals(folder)
    first, second = carnival.editions
    assert (carnival.title, carnival.submit_email) == ("The Reading Circle", "me@x.example")
    assert first.host == Person("Test Organizer", "https://carnival-host.example/")
    assert second.host == Person("Guest", "https://guest.example/")
    # one edition of history: 30 days later, same window length and gap
    assert (second.opens, second.deadline, second.date) == (
        dt.date(2027, 1, 31),
        dt.date(2027, 2, 19),
        dt.date(2027, 2, 24),
    )
    assert "# sections =" in (folder / "reading-circle" / "002.toml").read_text()
    assert cli.main(["-s", conf, "edition", "reading-circle", "--opens", "someday"]) == 2
    assert cli.main(["-s", conf, "edition", "nobody"]) == 2
    assert cli.main(["-s", conf, "check"]) == 0
    assert "no problems" in capsys.readouterr().out


def test_next_dates_follow_the_last_two_editions():
    (carnival,) = load_carnivals(ROOT / "carnival")
    opens, deadline, date = next_dates(carnival.editions, dt.date(2026, 12, 1))
    last, before = carnival.editions[-1], carnival.editions[-2]
    assert date - last.date == last.date - before.date
    assert date - deadline == last.date - last.deadline
    assert deadline - opens == last.deadline - last.opens


# -- check, status ---------------------------------------------------------------------------


def test_check_passes_on_this_repository():
    settings = read_settings({"CARNIVAL_PATH": str(ROOT / "carnival")}, ROOT)
    assert core.check(settings)[-1].endswith("no problems")


def test_check_names_a_damaged_lock(site, tmp_path, capsys):
    (site / "networking-carnival" / "001.lock.json").write_text("{ not json")
    assert cli.main(["-s", str(write_conf(tmp_path, site)), "check"]) == 2
    assert "001.lock.json: unreadable lock file" in capsys.readouterr().err


def test_status_reports_resolution_links_back_announcements_and_feeds(
    server, site, tmp_path, capsys
):
    settings = settings_for(site, tmp_path)
    core.submit(settings, "networking-carnival/5", post(server))
    conf = str(write_conf(tmp_path, site))
    assert cli.main(["-s", conf, "status", "networking-carnival", "--json"]) == 0
    statuses = {s["key"]: s for s in json.loads(capsys.readouterr().out)}
    five = statuses["networking-carnival/5"]
    assert five["state"] == "call" and not five["locked"]
    (entry,) = five["entries"]
    assert entry["resolved"] == "feed" and entry["announced"] == "not yet"
    assert entry["links_back"] is False  # the demo post does not link the carnival
    assert any(f["url"].endswith("/rss.xml") and f["last_success"] for f in five["feeds"])
    one = statuses["networking-carnival/1"]
    assert one["state"] == "published" and one["locked"]
    assert {e["resolved"] for e in one["entries"]} == {"from lock (feed)"}
    assert statuses["networking-carnival/4"]["state"] == "hosted elsewhere"
    # a feed that starts failing shows its last error beside its last success
    server.fail["/follow-up-notes.example/rss.xml"] = 503
    try:
        assert cli.main(["-s", conf, "status", "networking-carnival/5", "--json"]) == 0
    finally:
        server.fail.clear()
    (five,) = json.loads(capsys.readouterr().out)
    feed = next(f for f in five["feeds"] if f["url"].endswith("/rss.xml"))
    assert feed["last_error"] == "HTTP 503" and feed["last_success"]


def test_status_sees_a_post_that_links_back(server, site, tmp_path, capsys):
    blog = tmp_path / "blogs"
    shutil.copytree(ROOT / "tests/sites/demo", blog)
    page = blog / "follow-up-notes.example" / NEW_POST.lstrip("/")
    page.write_text(
        page.read_text().replace(
            "</article>",
            '<p>Part of <a href="https://carnival-host.example/carnival/networking-carnival/5/">'
            "the Networking Carnival</a>.</p></article>",
        )
    )
    with SitesServer(blog) as own:
        folder = local_carnival(own, ROOT / "carnival", tmp_path / "c2", locks=True)
        settings = settings_for(folder, tmp_path)
        core.submit(settings, "networking-carnival/5", post(own))
        (five,) = core.status(
            settings, "networking-carnival/5", site_url="https://carnival-host.example"
        )
    (entry,) = five.entries
    assert entry.links_back is True


# -- announce --------------------------------------------------------------------------------


def test_announce_sends_one_webmention_per_entry_with_an_endpoint_and_is_idempotent(
    tmp_path, capsys
):
    from hostile_server import HostileServer
    from webmention_receiver import Receiver

    with HostileServer("127.0.0.1") as endpoint_server:
        receiver = Receiver(endpoint_server, "/webmention", status=202)
        blogs = tmp_path / "blogs"
        shutil.copytree(ROOT / "tests/sites/demo", blogs)
        page = blogs / "coffee-and-careers.example/2026/08/asking-for-coffee.html"
        page.write_text(
            page.read_text().replace(
                "</head>", f'<link rel="webmention" href="{receiver.url}"></head>', 1
            )
        )
        with SitesServer(blogs) as own:
            folder = local_carnival(own, ROOT / "carnival", tmp_path / "c", locks=True)
            conf = str(write_conf(tmp_path, folder))
            assert cli.main(["-s", conf, "announce", "networking-carnival/5"]) == 1  # a call
            assert "not published yet" in capsys.readouterr().err
            assert cli.main(["-s", conf, "announce", "networking-carnival/1", "--dry-run"]) == 0
            assert (
                receiver.posts == []
                and not (folder / "networking-carnival/001.announce.json").exists()
            )
            code = cli.main(
                [
                    "-s",
                    conf,
                    "announce",
                    "networking-carnival/1",
                    "--messages",
                    str(tmp_path / "m.txt"),
                ]
            )
            assert code == 0, capsys.readouterr()
            (sent,) = receiver.posts
            assert sent.fields == {
                "source": ["https://carnival-host.example/carnival/networking-carnival/1/"],
                "target": [
                    own.url("coffee-and-careers.example", "/2026/08/asking-for-coffee.html")
                ],
            }
            record = json.loads((folder / "networking-carnival/001.announce.json").read_text())
            assert len(record["mentions"]) == 6
            messages = (tmp_path / "m.txt").read_text()
            assert "The Networking Carnival #1" in messages  # the five without an endpoint
            capsys.readouterr()
            assert cli.main(["-s", conf, "announce", "networking-carnival/1"]) == 0
            assert len(receiver.posts) == 1  # nothing new to send
            assert cli.main(["-s", conf, "announce", "networking-carnival/1", "--resend"]) == 0
            assert len(receiver.posts) == 2
