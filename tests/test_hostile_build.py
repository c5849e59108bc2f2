"""Whole builds against hostile contributors: every fault is named, the rest renders,
nothing executable reaches the output, and the build ends (each fault within its deadline)."""

from __future__ import annotations

import json
import re
import resource
import socket
from pathlib import Path

import pytest
from conftest import build_site
from hostile_server import HostileServer
from safety import roundup_links, scan_site

pytestmark = pytest.mark.site

TAG = "hostile-carnival"
WHEN = "Tue, 10 Nov 2026 10:00:00 GMT"


def good_feed(base: str, name: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{name}</title><link>{base}/</link><description>d</description>
<item><title>A good post from {name}</title><link>{base}/good.html</link><guid>{base}/good</guid>
<category>{TAG}</category><pubDate>{WHEN}</pubDate><description>Plain good words.</description></item>
</channel></rss>""".encode()


def xss_feed(base: str) -> bytes:
    """Script-bearing values in every field a feed can carry, on entries that get selected."""
    vectors = [
        "<script>alert('t')</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
        '<a href="JaVaScRiPt:alert(1)">y</a>',
        '<a href="java&#x09;script:alert(1)">z</a>',
        '<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
        '<div style="background:url(javascript:alert(1))">s</div>',
        '<form action="javascript:alert(1)"><input></form>',
        '<object data="javascript:alert(1)"></object>',
    ]
    items = []
    for i, vector in enumerate(vectors):
        esc = vector.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        items.append(
            f"<item><title>Title {i} {esc}</title><link>{base}/p{i}.html</link><guid>{base}/p{i}</guid>"
            f"<author>x@y.example ({esc})</author><category>{TAG}</category><pubDate>{WHEN}</pubDate>"
            + (
                f"<description>{esc} and words</description>" if i % 2 else ""
            )  # odd: summary, even: content only
            + f"<content:encoded><![CDATA[<p>{vector}</p>]]></content:encoded></item>"
        )
    items.append(
        f"<item><title>Link is script</title><link>javascript:alert(1)</link><guid>js-link</guid>"
        f"<category>{TAG}</category><pubDate>{WHEN}</pubDate><description>d</description></item>"
    )
    title = "Feed &lt;script&gt;alert(1)&lt;/script&gt; title"
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{title}</title>'
        f"<link>javascript:alert(1)</link><description>d</description>{''.join(items)}</channel></rss>"
    ).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def servers():
    with (
        HostileServer("127.0.0.1") as main,
        HostileServer("127.0.0.2") as forbidden,
        HostileServer("127.0.0.3") as forbidden_target,
    ):
        yield main, forbidden, forbidden_target


def write_carnival(folder: Path, feeds: dict[str, str]) -> Path:
    root = folder / "hostile"
    root.mkdir(parents=True)
    people = "".join(
        f'\n[[contributors]]\nname = "{name}"\nblog = "http://127.0.0.1/{name}/"\nfeed = "{url}"\n'
        for name, url in feeds.items()
    )
    (root / "carnival.toml").write_text(
        f'title = "The Hostile Carnival"\ndescription = "Strangers\' feeds."\norganizer = {{ name = "Host" }}\n{people}'
    )
    (root / "001.toml").write_text(
        'number = 1\ntitle = "Everything at once"\nhost = { name = "Host" }\nopens = 2026-11-01\n'
        f'deadline = 2026-11-30\ndate = 2026-12-01\ntag = "{TAG}"\nintro = "Whatever survives."\n'
    )
    return folder


# The hang guard: deadlines are 3 s per URL, all in parallel, so a build that takes minutes is
# stuck (bench/hostile_bench.py measures the build time of each hostile case).
@pytest.mark.timeout(200)
def test_every_fault_is_named_and_the_rest_renders(servers, tmp_path):
    main, forbidden, forbidden_target = servers
    refused_port = free_port()
    feeds = {
        "good-one": main.route("/good1.xml", good_feed(main.base + "/one", "Good One")),
        "good-two": main.route("/good2.xml", good_feed(main.base + "/two", "Good Two")),
        "xss": main.route("/xss.xml", xss_feed(main.base + "/xss")),
        "gone-404": main.route("/404.xml", b"no", status=404),
        "gone-410": main.route("/410.xml", b"gone", status=410),
        "busy-429": main.route(
            "/429.xml", b"slow down", status=429, headers={"Retry-After": "3600"}
        ),
        "broken-500": main.route("/500.xml", b"oops", status=500),
        "hangs": main.hang("/hang.xml"),
        "trickles": main.trickle("/trickle.xml", size=100_000, rate=1.0),
        "loops": main.redirect_loop("/loop-a", "/loop-b"),
        "long-chain": main.redirect_chain("/chain", 8),
        "to-ftp": main.redirect("/to-ftp", "ftp://127.0.0.1/feed.xml"),
        "huge": main.huge("/huge.xml", 100 * 1024 * 1024),
        "bomb": main.gzip_bomb("/bomb.xml", 300),
        "html-page": main.route(
            "/page.xml",
            b"<!doctype html><html><head><title>x</title></head><body>hi</body></html>",
            headers={"Content-Type": "text/html"},
        ),
        "empty": main.route("/empty.xml", b""),
        "refused": f"http://127.0.0.1:{refused_port}/feed.xml",
        "no-dns": "http://nosuch.invalid/feed.xml",
        "private": forbidden.route("/feed.xml", good_feed(forbidden.base, "Private")),
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "malformed": main.route(
            "/malformed.xml",
            good_feed(main.base + "/mal", "Malformed").replace(
                b"</channel>", b"<unclosed></channel>"
            ),
        ),
        "hop-to-private": main.redirect(
            "/hop", forbidden_target.route("/feed.xml", good_feed(forbidden_target.base, "T"))
        ),
    }
    folder = write_carnival(tmp_path / "carnival", feeds)
    proc = build_site(
        tmp_path / "out",
        extra={
            "CARNIVAL_PATH": json.dumps(str(folder)),
            "CARNIVAL_CACHE_PATH": json.dumps(str(tmp_path / "cache")),
            "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
            "CARNIVAL_OFFLINE": "false",
            "CARNIVAL_TIMEOUT": "1",
            "CARNIVAL_DEADLINE": "3",
        },
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out

    expected = {
        "gone-404": "HTTP 404",
        "gone-410": "HTTP 410 (gone)",
        "busy-429": "HTTP 429 (rate limited; Retry-After: 3600)",
        "broken-500": "HTTP 500",
        "hangs": "timed out after",
        "trickles": "timed out after",
        "loops": "redirect loop at",
        "long-chain": "too many redirects (more than 5)",
        "to-ftp": "refused redirect to scheme 'ftp'",
        "huge": "too large (more than 10 MiB)",
        "bomb": "too large (more than 10 MiB)",
        "html-page": "not a feed (HTML page)",
        "empty": "empty body",
        "refused": "connection refused",
        "no-dns": "DNS lookup failed for nosuch.invalid",
        "private": "refused address 127.0.0.2",
        "metadata": "refused address 169.254.169.254",
        "hop-to-private": "refused address 127.0.0.3",
    }
    for name, reason in expected.items():
        line = next((x for x in out.splitlines() if f"failed: {feeds[name]}" in x), None)
        assert line is not None and reason in line, (name, reason, line)
    assert "0 from page fallback" in out
    assert f"note: {feeds['malformed']}: recovered from malformed XML" in out  # kept, and said so
    # the forbidden addresses never saw a request
    assert forbidden.request_count == 0
    assert forbidden_target.request_count == 0

    html = (tmp_path / "out" / "carnival" / "hostile" / "1" / "index.html").read_text(
        encoding="utf-8"
    )
    assert "A good post from Good One" in html and "A good post from Good Two" in html
    assert "A good post from Malformed" in html  # recovered from bad XML
    # three good posts and the twelve hostile ones, sanitized
    assert html.count('class="roundup-entry') == 3 + 12
    assert "Link is script" not in html  # no usable link: left out, and named in the report
    assert "tagged but has no usable link" in out
    links = roundup_links(html)
    assert links and all(link.startswith(("http://", "https://")) for link in links), links
    problems = scan_site(tmp_path / "out")
    assert not problems, "\n".join(problems[:20])
    assert "<script" not in html.lower()
    assert ">Title 0</a>" in html  # an HTML title keeps its text; the script in it is gone

    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 500, (
        f"peak memory of a build {peak_mib:.0f} MiB"
    )  # generous; bench/ measures it


def test_a_locked_edition_ignores_every_fault(servers, tmp_path):
    main, *_ = servers
    feeds = {"good-one": main.route("/good1.xml", good_feed(main.base + "/one", "Good One"))}
    folder = write_carnival(tmp_path / "carnival", feeds)
    settings = {
        "CARNIVAL_PATH": json.dumps(str(folder)),
        "CARNIVAL_CACHE_PATH": json.dumps(str(tmp_path / "cache")),
        "CARNIVAL_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1"]',
        "CARNIVAL_OFFLINE": "false",
    }
    from blog_carnival.lock import write_lock
    from blog_carnival.model import RoundupEntry

    entry = RoundupEntry(
        url=main.base + "/one/good.html",
        title="Locked title",
        blog_name="Good One",
        blog_url=main.base + "/one/",
        source="tag",
    )
    write_lock(folder / "hostile" / "001.lock.json", "hostile", 1, [entry])
    main.route("/good1.xml", b"oops", status=500)
    before = main.request_count
    proc = build_site(tmp_path / "out", extra=settings)
    assert proc.returncode == 0, proc.stderr
    assert main.request_count == before  # a locked edition touches no network at all
    html = (tmp_path / "out" / "carnival" / "hostile" / "1" / "index.html").read_text(
        encoding="utf-8"
    )
    assert "Locked title" in html


def test_strict_build_fails_on_a_feed_failure_through_invoke(servers, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    main, *_ = servers
    feeds = {"gone": main.route("/404.xml", b"no", status=404)}
    folder = write_carnival(tmp_path / "carnival", feeds)
    conf = tmp_path / "strictconf.py"
    conf.write_text(
        f"from pelicanconf import *\nPATH = {str(ROOT / 'content')!r}\nCARNIVAL_PATH = {str(folder)!r}\n"
        f"CARNIVAL_CACHE_PATH = {str(tmp_path / 'cache')!r}\nCARNIVAL_ALLOWED_PRIVATE_HOSTS = ['127.0.0.1']\n"
        "CARNIVAL_OFFLINE = False\n"
        f"PLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]\nTHEME = {str(ROOT / 'theme')!r}\n"
        f"CACHE_PATH = {str(tmp_path / 'pelican-cache')!r}\n"  # not the working tree's cache/
    )
    env = {"COLUMNS": "300", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    base = [
        sys.executable,
        "-m",
        "invoke",
        "build",
        "--settings",
        str(conf),
        "--output",
        str(tmp_path / "o"),
    ]
    lenient = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, env=env)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    strict = subprocess.run([*base, "--strict"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert strict.returncode != 0
    assert re.search(r"HTTP 404", strict.stdout + strict.stderr)
