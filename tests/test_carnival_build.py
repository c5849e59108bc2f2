"""Whole builds that fetch the demo blogs live over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from conftest import ROOT, build_site
from sites_server import SitesServer, local_carnival

pytestmark = pytest.mark.site
SAMPLE = ROOT / "carnival"


def live_build(out: Path, carnival: Path, cache: Path, **extra: str) -> subprocess.CompletedProcess:
    settings = {
        "CARNIVAL_PATH": json.dumps(str(carnival)),
        "CARNIVAL_CACHE_PATH": json.dumps(str(cache)),
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
        "CARNIVAL_OFFLINE": "false",
        "CARNIVAL_TIMEOUT": "5",
        **extra,
    }
    return build_site(out, extra=settings)


def roundup(out: Path, number: int) -> str:
    return (out / "carnival" / "networking-carnival" / str(number) / "index.html").read_text(
        encoding="utf-8"
    )


def entry_links(html: str) -> list[str]:
    return re.findall(r'<p class="entry-title"><a href="([^"]+)"', html)


@pytest.fixture()
def server():
    with SitesServer() as running:
        yield running


def test_live_build_resolves_every_entry(server, tmp_path):
    carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    proc = live_build(tmp_path / "out", carnival, tmp_path / "cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one, three = roundup(tmp_path / "out", 1), roundup(tmp_path / "out", 3)
    assert len(entry_links(one)) == 6
    assert all(link.startswith(server.base) for link in entry_links(one))
    # tag mode: two tagged posts join the three submissions; the duplicate appears once
    assert len(entry_links(three)) == 5
    assert "telling-people.html" in three and "what-a-referral-does" in three
    assert "practising-your-story" not in three  # tagged, but before the window
    assert "small-wins-week-two" not in three  # in the window, but not tagged
    # page fallback: the feed no longer carries this post, its OpenGraph title is used
    assert "The first five days after the layoff" in three
    # discovery: second-act gives no feed in the TOML, its page links index.rdf
    assert any(path.endswith("/second-act.example/index.rdf") for path, _ in server.requests)
    assert (
        "networking-carnival/1 (network): 6 resolved, 0 from page fallback, 0 unresolved"
        in proc.stdout
    )
    assert (
        "networking-carnival/3 (network): 4 resolved, 1 from page fallback, 0 unresolved"
        in proc.stdout
    )
    # same HTML as the committed locks give (the locks were frozen from these very blogs)
    offline = tmp_path / "offline"
    assert (
        build_site(
            offline,
            extra={
                "CARNIVAL_OFFLINE": "true",
                "CARNIVAL_CACHE_PATH": json.dumps(str(tmp_path / "c2")),
            },
        ).returncode
        == 0
    )
    assert [server.to_public(x) for x in entry_links(one)] == entry_links(roundup(offline, 1))


def test_second_build_is_all_304(server, tmp_path):
    carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    first = live_build(tmp_path / "a", carnival, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    count = len(server.requests)
    second = live_build(tmp_path / "b", carnival, tmp_path / "cache")
    assert second.returncode == 0, second.stderr
    again = server.requests[count:]
    feeds = [(p, s) for p, s in again if p.endswith((".xml", ".json", ".rdf"))]
    assert feeds and all(status == 304 for _, status in feeds), again
    assert roundup(tmp_path / "a", 3) == roundup(tmp_path / "b", 3)


def test_failing_feed_is_reported_and_the_rest_renders(server, tmp_path):
    carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    server.fail["/follow-up-notes.example/rss.xml"] = 500
    proc = live_build(tmp_path / "out", carnival, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert f"{server.url('follow-up-notes.example', '/rss.xml')}: HTTP 500" in out
    one = roundup(tmp_path / "out", 1)
    assert len(entry_links(one)) == 6  # the failed feed's entry falls back to its page
    assert "The 48-hour thank-you" in one
    strict = live_build(tmp_path / "strict", carnival, tmp_path / "cache2", CARNIVAL_STRICT="true")
    assert strict.returncode != 0
    assert "strict mode" in strict.stdout + strict.stderr


def test_last_good_copy_is_kept_when_a_feed_starts_failing(server, tmp_path):
    carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    assert live_build(tmp_path / "a", carnival, tmp_path / "cache").returncode == 0
    server.fail["/coffee-and-careers.example/feed.xml"] = 503
    proc = live_build(tmp_path / "b", carnival, tmp_path / "cache")
    assert proc.returncode == 0
    assert "used the cached copy of" in proc.stdout and "HTTP 503" in proc.stdout
    assert roundup(tmp_path / "a", 3) == roundup(tmp_path / "b", 3)


def test_freeze_then_rebuild_without_network(tmp_path):
    with SitesServer() as server:
        carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
        settings = tmp_path / "freezeconf.py"
        settings.write_text(
            f"from pelicanconf import *\nPATH = {str(ROOT / 'content')!r}\nCARNIVAL_PATH = {str(carnival)!r}\n"
            f"CARNIVAL_CACHE_PATH = {str(tmp_path / 'cache')!r}\nCARNIVAL_ALLOWED_PRIVATE_HOSTS = ['127.0.0.1']\n"
        )
        live = live_build(tmp_path / "live", carnival, tmp_path / "cache-live")
        assert live.returncode == 0
        for number in (1, 3):
            freeze = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "invoke",
                    "carnival.freeze",
                    f"networking-carnival/{number}",
                    "--settings",
                    str(settings),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert freeze.returncode == 0, freeze.stdout + freeze.stderr
            assert (carnival / "networking-carnival" / f"00{number}.lock.json").is_file()
    # the server is gone, the cache is new: only the locks can answer
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    proc = live_build(tmp_path / "frozen", carnival, tmp_path / "empty-cache")
    assert proc.returncode == 0, proc.stderr
    assert "(lock)" in proc.stdout
    for number in (1, 3):
        assert roundup(tmp_path / "frozen", number) == roundup(tmp_path / "live", number)


def test_offline_without_lock_or_cache_reports_and_still_builds(tmp_path):
    with SitesServer() as server:
        carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    proc = live_build(tmp_path / "out", carnival, tmp_path / "cache", CARNIVAL_OFFLINE="true")
    assert proc.returncode == 0, proc.stderr
    assert "offline" in proc.stdout
    assert "0 resolved, 0 from page fallback, 6 unresolved" in proc.stdout
    assert len(entry_links(roundup(tmp_path / "out", 1))) == 6  # listed by URL, not dropped


def test_config_error_stops_build_and_leaves_locks(tmp_path):
    carnival = tmp_path / "carnival"
    shutil.copytree(SAMPLE, carnival)
    lock = carnival / "networking-carnival" / "001.lock.json"
    before = lock.read_bytes()
    edition = carnival / "networking-carnival" / "003.toml"
    edition.write_text(edition.read_text().replace("deadline =", "dedline ="))
    proc = build_site(
        tmp_path / "out",
        extra={"CARNIVAL_PATH": json.dumps(str(carnival)), "CARNIVAL_OFFLINE": "true"},
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "003.toml: dedline: unknown key (did you mean 'deadline'?)" in out
    assert lock.read_bytes() == before


def test_post_links_to_external_roundup_and_roundups_are_posts(built_site):
    post = (built_site / "2026" / "10" / "networking-after-a-layoff.html").read_text(
        encoding="utf-8"
    )
    assert "This post is an entry in" in post
    assert 'href="https://hiring-desk.example/2026/11/networking-carnival-2/"' in post
    index = (built_site / "index.html").read_text(encoding="utf-8")
    assert "The Networking Carnival #3" in index
    feed = feedparser.parse((built_site / "feeds" / "all.atom.xml").read_bytes())
    roundup3 = next(e for e in feed.entries if e.title.startswith("The Networking Carnival #3"))
    assert "roundup-entry" in roundup3.content[0].value


def test_carnival_index_feeds_and_opml(built_site):
    index = (built_site / "carnival" / "networking-carnival" / "index.html").read_text(
        encoding="utf-8"
    )
    for number in (1, 2, 3, 4):
        assert f"#{number}" in index or f"The Networking Carnival #{number}" in index
    assert "https://second-act.example/carnival/4/" in index
    assert (built_site / "carnival" / "index.html").is_file()
    for name in ("atom.xml", "rss.xml"):
        feed = feedparser.parse(
            (built_site / "carnival" / "networking-carnival" / name).read_bytes()
        )
        assert not feed.bozo
        # two roundups, and the open call for #5 (on the tests' fixed today)
        assert sorted(e.title for e in feed.entries) == [
            "Call for submissions: The Networking Carnival #5: Keeping in touch once you have the job",
            "The Networking Carnival #1: Your first coffee meeting",
            "The Networking Carnival #3: Networking after a layoff",
        ]
        for e in feed.entries:
            body = e.content[0].value if "content" in e else e.summary
            assert ("call-facts" if e.title.startswith("Call") else "roundup-entry") in body
    opml = (built_site / "carnival" / "networking-carnival" / "contributors.opml").read_text(
        encoding="utf-8"
    )
    assert opml.count("<outline ") == len(
        re.findall(
            r"^\[\[contributors\]\]",
            (SAMPLE / "networking-carnival" / "carnival.toml").read_text(),
            re.M,
        )
    )


def test_roundup_order_sections_and_next_edition(built_site):
    html = (built_site / "carnival" / "networking-carnival" / "3" / "index.html").read_text(
        encoding="utf-8"
    )
    positions = [
        html.index(f"<h2>{name}</h2>")
        for name in ("First week", "Asking for help", "Keeping going")
    ]
    assert positions == sorted(positions)
    assert "Next edition" in html and "Tomás Ferreira" in html
    assert html.count("pick-badge") <= 1 + html.count("roundup-pick")


def test_two_builds_and_two_freezes_at_once_leave_cache_and_locks_whole(server, tmp_path):
    carnival = local_carnival(server, SAMPLE, tmp_path / "carnival")
    cache = tmp_path / "cache"
    settings = {
        "CARNIVAL_PATH": json.dumps(str(carnival)),
        "CARNIVAL_CACHE_PATH": json.dumps(str(cache)),
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
        "CARNIVAL_OFFLINE": "false",
    }
    content_cache = tmp_path / "content-cache"  # Pelican's, shared by the two builds
    conf = tmp_path / "twinconf.py"
    conf.write_text(
        f"from pelicanconf import *\nPATH = {str(ROOT / 'content')!r}\nCARNIVAL_PATH = {str(carnival)!r}\n"
        f"CARNIVAL_CACHE_PATH = {str(cache)!r}\nCARNIVAL_ALLOWED_PRIVATE_HOSTS = ['127.0.0.1']\n"
        f"CACHE_PATH = {str(content_cache)!r}\n"
    )

    def pelican(out: str) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "pelican",
            "content",
            "-s",
            "pelicanconf.py",
            "-o",
            str(tmp_path / out),
            "--cache-path",
            str(content_cache),
            "-e",
        ]
        cmd += [f"{k}={v}" for k, v in settings.items()]
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def freeze() -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "invoke",
            "carnival.freeze",
            "networking-carnival/3",
            "--settings",
            str(conf),
        ]
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    running = [pelican("a"), pelican("b"), freeze(), freeze()]
    outputs = []
    for proc in running:
        output, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, output
        outputs.append(output)
    lock = json.loads((carnival / "networking-carnival" / "003.lock.json").read_text())
    assert len(lock["entries"]) == 5
    assert not list((carnival / "networking-carnival").glob(".*.tmp"))  # no stray temp files
    # Pelican's content cache, saved by both builds at once, loads whole
    again = build_site(tmp_path / "again", extra=settings, cache=content_cache)
    log = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 0, log
    for complaint in ("is damaged", "Cannot unpickle cache", "Could not save cache"):
        assert complaint not in log, log
    # the cache is whole: a third build revalidates everything (304) and renders the same
    count = len(server.requests)
    third = live_build(tmp_path / "c", carnival, cache)
    assert third.returncode == 0, third.stderr
    assert "(lock)" in third.stdout  # edition 3 now builds from its lock
    asked = [(p, s) for p, s in server.requests[count:] if p.endswith((".xml", ".json", ".rdf"))]
    assert all(status == 304 for _, status in asked), (asked, third.stdout, outputs)
    assert roundup(tmp_path / "a", 1) == roundup(tmp_path / "c", 1)
