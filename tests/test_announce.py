"""Announcing a roundup: one Webmention per entry, recorded so that nobody is told twice.

Real HTTP on 127.0.0.1 (``hostile_server``) and the real Fetcher; the clock is injected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from blog_carnival.announce import AnnounceTarget, announce, write_messages
from blog_carnival.fetch import Fetcher, FetchSettings
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
from webmention_receiver import Receiver

SOURCE = "https://carnival.example/carnival/networking/2/"
EDITION = "The Networking Carnival #2: Networking for a Job Search"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
LOCAL = {"timeout": 1.0, "deadline": 2.0, "allowed_private_hosts": frozenset({"127.0.0.1"})}
HTML = {"Content-Type": "text/html; charset=utf-8"}


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings(**LOCAL)) as f:
        yield f


@pytest.fixture
def server(hostile_server: Callable[..., HostileServer]) -> HostileServer:
    return hostile_server("127.0.0.1")


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "networking-carnival" / "002.announce.json"


def blog(
    server: HostileServer, name: str, *, status: int = 202, **answer
) -> tuple[AnnounceTarget, Receiver]:
    """A contributor's post at /<name>/post advertising /<name>/wm, and that endpoint."""
    receiver = Receiver(server, f"/{name}/wm", status=status, **answer)
    url = server.route(
        f"/{name}/post",
        body=b'<html><head><link rel="webmention" href="wm"></head><body>A post.</body>',
        headers=HTML,
    )
    return AnnounceTarget(
        url, f"A post on {name}", f"The {name} blog", f"{name.title()} Writer"
    ), receiver


def quiet_blog(server: HostileServer, name: str, contributor: str | None = None) -> AnnounceTarget:
    """A post whose page advertises no endpoint."""
    url = server.route(f"/{name}/post", body=b"<html><body>No endpoint here.</body>", headers=HTML)
    return AnnounceTarget(url, f"Notes from {name}", contributor or f"The {name} blog")


def stored(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_first_run_sends_and_second_run_sends_nothing(server, fetcher, record) -> None:
    (a, wa), (b, wb) = (
        blog(server, "ana"),
        blog(server, "ben", status=201, headers={"Location": "/ben/wm/7"}),
    )

    first = announce(SOURCE, [a, b], record, fetcher, now=NOW)
    assert [i.outcome for i in first.items] == ["sent", "sent"]
    assert first.ok and first.wrote_record
    assert [len(wa.posts), len(wb.posts)] == [1, 1]
    assert wa.posts[0].fields == {"source": [SOURCE], "target": [a.url]}
    text = record.read_text(encoding="utf-8")

    second = announce(SOURCE, [a, b], record, fetcher, now=LATER)
    assert [i.outcome for i in second.items] == ["already-sent", "already-sent"]
    assert [i.sent_at for i in second.items] == ["2026-11-02T09:30:00Z"] * 2
    assert [len(wa.posts), len(wb.posts)] == [1, 1]  # the receivers heard nothing new
    assert len(server.requests_to("/ana/post")) == 1  # nor were the pages fetched again
    assert not second.wrote_record and record.read_text(encoding="utf-8") == text
    assert second.ok
    assert "already sent" in "\n".join(second.lines())


def test_a_target_listed_twice_is_fetched_and_told_once(server, fetcher, record) -> None:
    (a, wa), (b, wb) = blog(server, "ana"), blog(server, "ben")
    report = announce(SOURCE, [a, b, a], record, fetcher, now=NOW)
    assert [i.target.url for i in report.items] == [a.url, b.url]
    assert len(server.requests_to("/ana/post")) == 1
    assert [len(wa.posts), len(wb.posts)] == [1, 1]
    assert list(stored(record)["mentions"]) == sorted([a.url, b.url])


def test_an_entry_added_later_is_sent_alone(server, fetcher, record) -> None:
    (a, wa), (b, wb) = blog(server, "ana"), blog(server, "ben")
    announce(SOURCE, [a], record, fetcher, now=NOW)
    report = announce(SOURCE, [a, b], record, fetcher, now=LATER)
    assert [i.outcome for i in report.items] == ["already-sent", "sent"]
    assert [len(wa.posts), len(wb.posts)] == [1, 1]
    mentions = stored(record)["mentions"]
    assert mentions[a.url]["sent_at"] == ["2026-11-02T09:30:00Z"]
    assert mentions[b.url]["sent_at"] == ["2026-11-03T09:30:00Z"]


def test_a_failure_is_recorded_and_retried_on_the_next_run(server, fetcher, record) -> None:
    a, wa = blog(server, "ana", status=500)
    first = announce(SOURCE, [a], record, fetcher, now=NOW)
    (item,) = first.items
    assert (item.outcome, item.status, item.error) == ("failed", 500, "HTTP 500")
    assert not first.ok and first.wrote_record
    entry = stored(record)["mentions"][a.url]
    assert (entry["outcome"], entry["http_status"], entry["sent_at"]) == ("failed", 500, [])
    assert any("HTTP 500 (tried again on the next run)" in line for line in first.lines())

    wa.answer(202)  # the receiver is back
    second = announce(SOURCE, [a], record, fetcher, now=LATER)
    assert [i.outcome for i in second.items] == ["sent"]
    assert len(wa.posts) == 2
    entry = stored(record)["mentions"][a.url]
    assert (entry["outcome"], entry["error"], entry["sent_at"]) == (
        "sent",
        None,
        ["2026-11-03T09:30:00Z"],
    )

    third = announce(SOURCE, [a], record, fetcher, now=LATER + timedelta(days=1))
    assert [i.outcome for i in third.items] == ["already-sent"] and len(wa.posts) == 2


def test_a_timeout_and_a_refused_address_are_retried(server, fetcher, record) -> None:
    server.hang("/slow/wm")
    slow = AnnounceTarget(
        server.route("/slow/post", body=b'<link rel="webmention" href="wm">', headers=HTML),
        "Slow",
        "Slow blog",
    )
    private = AnnounceTarget(
        server.route(
            "/private/post",
            body=b"x",
            headers={**HTML, "Link": "<http://127.0.0.2:9/wm>; rel=webmention"},
        ),
        "Private",
        "Private blog",
    )
    first = announce(SOURCE, [slow, private], record, fetcher, now=NOW)
    assert [(i.outcome, i.error) for i in first.items] == [
        ("failed", "timed out after 1 s"),
        ("failed", "refused address 127.0.0.2 for 127.0.0.2 (loopback)"),
    ]
    # the next run tries both again (and the recovered one gets through)
    Receiver(server, "/slow/wm", status=202)
    second = announce(SOURCE, [slow, private], record, fetcher, now=LATER)
    assert [i.outcome for i in second.items] == ["sent", "failed"]
    assert len(server.requests_to("/private/post")) == 2
    assert stored(record)["mentions"][private.url]["attempted_at"] == "2026-11-03T09:30:00Z"


def test_resend_sends_again_to_every_target(server, fetcher, record) -> None:
    (a, wa), (b, wb) = blog(server, "ana"), blog(server, "ben")
    announce(SOURCE, [a, b], record, fetcher, now=NOW)
    report = announce(SOURCE, [a, b], record, fetcher, now=LATER, resend=True)
    assert [i.outcome for i in report.items] == ["sent", "sent"]
    assert [len(wa.posts), len(wb.posts)] == [2, 2]
    assert wa.posts[1].fields == {"source": [SOURCE], "target": [a.url]}  # same source (3.1.4)
    assert len(server.requests_to("/ana/post")) == 2  # the endpoint is discovered again
    assert stored(record)["mentions"][a.url]["sent_at"] == [
        "2026-11-02T09:30:00Z",
        "2026-11-03T09:30:00Z",
    ]
    assert "sending again to every post" in report.lines()[0]


def test_a_new_roundup_url_is_a_new_mention(server, fetcher, record) -> None:
    a, wa = blog(server, "ana")
    announce(SOURCE, [a], record, fetcher, now=NOW)
    moved = "https://carnival.example/networking/2/"
    report = announce(moved, [a], record, fetcher, now=LATER)
    assert [i.outcome for i in report.items] == ["sent"]
    assert wa.posts[1].fields["source"] == [moved]
    entry = stored(record)["mentions"][a.url]
    assert (entry["source"], entry["sent_at"]) == (moved, ["2026-11-03T09:30:00Z"])


def test_a_dry_run_sends_and_writes_nothing(server, fetcher, record) -> None:
    (a, wa), (b, wb) = blog(server, "ana"), blog(server, "ben")
    c = quiet_blog(server, "cleo")
    report = announce(SOURCE, [a, b, c], record, fetcher, now=NOW, dry_run=True, edition=EDITION)
    assert [(i.outcome, i.endpoint) for i in report.items] == [
        ("would-send", server.url("/ana/wm")),
        ("would-send", server.url("/ben/wm")),
        ("no-endpoint", None),
    ]
    assert wa.posts == [] and wb.posts == []
    assert [r.method for r in server.requests] == ["GET", "GET", "GET"]
    assert not record.exists() and not record.parent.exists()
    assert not report.wrote_record and len(report.messages) == 1
    lines = report.lines()
    assert lines[1] == "Dry run: nothing is sent and nothing is written."
    assert lines[-2].startswith("2 would be sent, 0 sent,")

    # a dry run after a real one leaves the record byte for byte
    announce(SOURCE, [a], record, fetcher, now=NOW)
    before = record.read_bytes()
    announce(SOURCE, [a, b], record, fetcher, now=LATER, dry_run=True, resend=True)
    assert record.read_bytes() == before and len(wa.posts) == 1 and wb.posts == []


def test_posts_without_an_endpoint_get_a_message(server, fetcher, record, tmp_path) -> None:
    a, _ = blog(server, "ana")
    c1 = quiet_blog(server, "cleo1", contributor="Cleo's Career Notes")
    c2 = quiet_blog(server, "cleo2", contributor="cleo's career notes")
    d = AnnounceTarget(
        server.route("/dev/post", body=b"<p>plain</p>", headers=HTML),
        "Interviews",
        "Dev Diaries",
        "Dev Okafor",
    )
    report = announce(SOURCE, [c1, a, d, c2], record, fetcher, now=NOW, edition=EDITION)
    assert [i.outcome for i in report.items] == [
        "no-endpoint",
        "sent",
        "no-endpoint",
        "no-endpoint",
    ]
    assert report.ok  # a blog without an endpoint is nobody's fault
    cleo, dev = report.messages
    assert cleo.posts == ((c1.title, c1.url), (c2.title, c2.url))  # one message per blog
    assert dev.text == (
        "To: Dev Okafor (Dev Diaries)\n"
        f"Subject: You're in: {EDITION}\n"
        "\n"
        "Hello Dev Okafor,\n"
        "\n"
        f'Your post "Interviews" is in {EDITION}.\n'
        f"Your post: {d.url}\n"
        f"The roundup: {SOURCE}\n"
        "\n"
        "Thank you for taking part. A link back to the roundup helps readers find the rest.\n"
    )
    assert f'- "{c1.title}" {c1.url}' in cleo.text and cleo.text.startswith(
        "To: Cleo's Career Notes\n"
    )

    out = tmp_path / "messages.txt"
    assert write_messages(report, out) == 2
    written = out.read_text(encoding="utf-8")
    assert written.count("Subject: You're in:") == 2 and d.url in written and SOURCE in written
    assert (
        write_messages(announce(SOURCE, [a], record, fetcher, now=LATER), tmp_path / "none.txt")
        == 0
    )
    assert not (tmp_path / "none.txt").exists()

    # no endpoint is recorded and looked for again next time (the blog may add one)
    assert stored(record)["mentions"][d.url]["outcome"] == "no-endpoint"
    again = announce(SOURCE, [d], record, fetcher, now=LATER)
    assert [i.outcome for i in again.items] == ["no-endpoint"]
    assert len(server.requests_to("/dev/post")) == 2


def test_the_record_file(server, fetcher, record) -> None:
    a, _ = blog(server, "ana", status=201, headers={"Location": "https://ana.example/status/3"})
    b, _ = blog(server, "ben", status=500)
    c = quiet_blog(server, "cleo")
    announce(SOURCE, [a, b, c], record, fetcher, now=NOW)
    text = record.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data == {
        "format": 1,
        "mentions": {
            a.url: {
                "source": SOURCE,
                "title": a.title,
                "contributor": a.contributor,
                "author": a.author,
                "attempted_at": "2026-11-02T09:30:00Z",
                "outcome": "sent",
                "endpoint": server.url("/ana/wm"),
                "http_status": 201,
                "location": "https://ana.example/status/3",
                "error": None,
                "sent_at": ["2026-11-02T09:30:00Z"],
            },
            b.url: {
                "source": SOURCE,
                "title": b.title,
                "contributor": b.contributor,
                "author": b.author,
                "attempted_at": "2026-11-02T09:30:00Z",
                "outcome": "failed",
                "endpoint": server.url("/ben/wm"),
                "http_status": 500,
                "location": None,
                "error": "HTTP 500",
                "sent_at": [],
            },
            c.url: {
                "source": SOURCE,
                "title": c.title,
                "contributor": c.contributor,
                "author": None,
                "attempted_at": "2026-11-02T09:30:00Z",
                "outcome": "no-endpoint",
                "endpoint": None,
                "http_status": None,
                "location": None,
                "error": None,
                "sent_at": [],
            },
        },
    }
    assert not list(record.parent.glob(".*.tmp"))  # written atomically, nothing left over


def test_no_fault_is_a_traceback(server, fetcher, record, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ok, _ = blog(server, "ana")
    broken, _ = blog(server, "ben", status=503)
    server.hang("/slow/wm")
    slow = AnnounceTarget(
        server.route("/slow/post", body=b'<a rel="webmention" href="wm">x</a>', headers=HTML),
        "S",
        "Slow",
    )
    missing = AnnounceTarget(server.url("/gone/post"), "Gone", "Gone blog")
    targets = [
        ok,
        broken,
        slow,
        missing,
        AnnounceTarget("ftp://old.example/post", "FTP", "Old blog"),
        AnnounceTarget("not a url at all", "Junk", "Junk blog"),
        AnnounceTarget("", "Empty", "Nobody"),
        quiet_blog(server, "cleo"),
    ]
    report = announce(SOURCE, targets, record, fetcher, now=NOW, edition=EDITION)
    assert [i.outcome for i in report.items] == [
        "sent",
        "failed",
        "failed",
        "failed",
        "failed",
        "failed",
        "failed",
        "no-endpoint",
    ]
    assert [i.error for i in report.items[1:7]] == [
        "HTTP 503",
        "timed out after 1 s",
        "could not fetch it: HTTP 404",
        "could not fetch it: refused scheme 'ftp'",
        "could not fetch it: invalid URL (no scheme)",
        "could not fetch it: invalid URL (no scheme)",
    ]
    lines = report.lines()
    assert lines[-2] == (
        f"1 sent, 0 already sent, 1 without an endpoint, 6 failed. Recorded in {record}."
    )
    assert not any(r.exc_info for r in caplog.records)
    assert not any("Traceback" in line for line in lines)


def test_a_damaged_record_refuses_and_changes_nothing(server, fetcher, record) -> None:
    a, wa = blog(server, "ana")
    record.parent.mkdir(parents=True)
    for damaged in (
        '{"format": 1, "mentions": ',
        '["not", "a", "record"]',
        '{"format": 1, "mentions": {"x": 3}}',
        '{"format": 9, "mentions": {}}',
    ):
        record.write_text(damaged, encoding="utf-8")
        report = announce(SOURCE, [a], record, fetcher, now=NOW)
        assert report.refused and str(record) in report.refused
        assert report.lines() == [f"Nothing announced: {report.refused}"]
        assert not report.ok and report.items == ()
        assert record.read_text(encoding="utf-8") == damaged
    assert wa.posts == [] and server.request_count == 0


def test_an_unwritable_record_is_a_fault_line(server, fetcher, tmp_path) -> None:
    # A 245-byte name can be looked up (there is no such file yet), but the temporary file
    # write_atomic makes beside it (".<name>.<random>.tmp") is longer than NAME_MAX (255).
    a, wa = blog(server, "ana")
    path = tmp_path / ("n" * 232 + ".announce.json")
    report = announce(SOURCE, [a], path, fetcher, now=NOW)
    assert [i.outcome for i in report.items] == ["sent"] and len(wa.posts) == 1
    assert not report.ok and not report.wrote_record and not path.exists()
    (fault,) = report.faults
    assert fault.startswith(f"Could not write {path} (File name too long)")
    assert fault in report.lines()


def test_a_record_that_cannot_be_read_refuses(server, fetcher, tmp_path) -> None:
    a, wa = blog(server, "ana")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    report = announce(SOURCE, [a], blocked / "002.announce.json", fetcher, now=NOW)
    assert report.refused == f"cannot read {blocked / '002.announce.json'} (Not a directory)"
    assert wa.posts == [] and server.request_count == 0


def test_the_roundup_url_must_be_absolute_http(fetcher, record) -> None:
    report = announce("/carnival/networking/2/", [], record, fetcher, now=NOW)
    assert report.refused == "the roundup URL '/carnival/networking/2/' is not absolute http(s)"
    assert not record.exists()


def test_summary_lines(server, fetcher, record) -> None:
    a, _ = blog(server, "ana", status=201, headers={"Location": "/ana/wm/1"})
    c = quiet_blog(server, "cleo")
    lines = announce(SOURCE, [a, c], record, fetcher, now=NOW, edition=EDITION).lines()
    assert lines == [
        f"Announcing {SOURCE} to 2 posts.",
        f"  sent         {a.url} -> {server.url('/ana/wm')} (HTTP 201, status page {server.url('/ana/wm/1')})",
        f"  no endpoint  {c.url}: no Webmention endpoint; tell {c.contributor} yourself",
        f"1 sent, 0 already sent, 1 without an endpoint, 0 failed. Recorded in {record}.",
        "1 contributor(s) take no Webmention: send them the message(s) yourself.",
    ]
