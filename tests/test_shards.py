"""Fetching in worker processes by host: the same Documents as fetching here, every host in
one worker, and no URL lost when a worker dies.

Feeds are served over real HTTP on 127.0.0.1; workers are real spawned interpreters.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from blog_carnival.cache import DB_NAME, HttpCache
from blog_carnival.collect import collect
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.model import Contributor, Submission, Want
from blog_carnival.parsepool import FeedParser
from blog_carnival.parsestore import ParseStore
from blog_carnival.shards import Shards, host_of, portable, split
from blog_carnival.sources import plan
from cache_rows import rows, set_row
from hostile_server import (
    HostileServer,
    hostile_server_fixture,  # noqa: F401  (the hostile_server fixture)
)
from test_collect import RSS, carnival, page, rss

SETTINGS = FetchSettings(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout=5.0)


@pytest.fixture
def server(hostile_server) -> HostileServer:
    return hostile_server("127.0.0.1")


# -- splitting ------------------------------------------------------------------------------------


def test_every_host_goes_to_one_shard_and_the_shards_are_even() -> None:
    urls = [f"https://h{n % 5}.example/{n}" for n in range(50)] + ["https://big.example/1"] * 3
    shards = split(urls, 2)
    assert sorted(u for s in shards for u in s) == sorted(set(urls))  # each URL once
    for n in range(5):
        assert sum(any(f"//h{n}." in u for u in s) for s in shards) == 1
    assert abs(len(shards[0]) - len(shards[1])) <= 10  # whole hosts of 10: as even as that allows


def test_a_hosts_ports_and_its_www_name_share_a_shard() -> None:
    same = ["http://blog.example/feed", "https://blog.example/feed", "https://www.blog.example/"]
    assert {host_of(u) for u in same} == {"blog.example"}
    assert len(split([*same, "https://other.example/"], 2)) == 2
    assert any(set(same) <= set(s) for s in split([*same, "https://other.example/"], 2))


def test_fewer_urls_than_shards_and_urls_without_host() -> None:
    assert split([], 4) == []
    assert split(["https://a.example/"], 4) == [["https://a.example/"]]
    assert split(["not a url", "https://a.example/"], 2) == [["not a url"], ["https://a.example/"]]


def test_only_a_fetcher_another_process_can_rebuild_is_portable(tmp_path: Path) -> None:
    cache = HttpCache(tmp_path)
    with Fetcher(SETTINGS, cache) as plain:
        assert portable(plain) == (SETTINGS, cache)
    with Fetcher(SETTINGS, resolver=lambda host, port: ["127.0.0.1"]) as resolved:
        assert portable(resolved) is None
    with Fetcher(SETTINGS, HttpCache(tmp_path, clock=lambda: 0.0)) as clocked:
        assert portable(clocked) is None


# -- the same Documents ---------------------------------------------------------------------------


def editions(server: HostileServer, blogs: int = 6, **fields: str):  # noqa: ANN201
    """Contributors with feeds (tag mode), a submission found through its page's feed, and
    a submission whose feed does not carry it (read from its page). ``fields``: more header
    fields for every answer."""
    base = server.base
    contributors = []
    feed_fields = {**RSS, **fields}
    for n in range(blogs):
        feed = server.route(f"/b{n}/feed.xml", rss(f"{base}/b{n}", 8, (1, 3)), headers=feed_fields)
        contributors.append(Contributor(f"B{n}", f"{base}/b{n}/", feed=feed))
    shared = server.route("/s/feed.xml", rss(f"{base}/s", 5), headers=feed_fields)
    html = {"Content-Type": "text/html", **fields}
    server.route("/s/posts/2.html", page(shared), headers=html)
    server.route("/s/posts/99.html", page(shared), headers=html)
    submissions = [Submission(f"{base}/s/posts/2.html"), Submission(f"{base}/s/posts/99.html")]
    return [carnival(submissions=submissions, contributors=contributors)]


def run(items, cache: Path, shards: Shards | None):  # noqa: ANN001, ANN201
    plans = [plan(c, e) for c, e in items]
    with (
        Fetcher(SETTINGS, HttpCache(cache / "http")) as fetcher,
        FeedParser(cache / "parsed", processes=0) as parser,
    ):
        return collect(plans, fetcher, parser, cache=fetcher.cache, shards=shards)


def shards_for(cache: Path, shard_from: int = 1) -> Shards:
    stores = HttpCache(cache / "http"), ParseStore(cache / "parsed")
    return Shards(SETTINGS, *stores, 2, shard_from=shard_from)


def test_workers_read_a_warm_cache_as_this_process_does(server, tmp_path: Path) -> None:
    items = editions(server)
    here = run(items, tmp_path / "here", None)
    run(items, tmp_path / "there", None)  # the same cache, filled the same way
    before = server.request_count
    again_here = run(items, tmp_path / "here", None)
    asked_here, before = server.request_count - before, server.request_count
    with shards_for(tmp_path / "there") as workers:
        there = run(items, tmp_path / "there", workers)
        assert workers.sent > 0  # the warm phase really went to the workers
    assert there == again_here
    # every answer came back from the workers (feed bodies too: these plans discover
    # feeds on pages), none was fetched again here
    assert server.request_count - before == asked_here
    assert len(there.feeds) == len(here.feeds) == 7 and len(there.pages) == 2
    # found through its page's feed / read from its page: the same in both
    base = server.base
    assert there.feed_of[f"{base}/s/posts/2.html"] == server.url("/s/feed.xml")
    assert f"{base}/s/posts/99.html" in there.pages


def test_what_workers_store_is_committed_when_their_shard_is_done(server, tmp_path: Path) -> None:
    """A worker's cache is never closed (it lives as long as the worker): the writes it
    gathers (see cache.py) are committed at the end of each shard."""
    items = editions(server)
    run(items, tmp_path, None)
    changed = rss(f"{server.base}/b0", 9, (1, 3))
    server.route("/b0/feed.xml", changed, headers=RSS)
    with shards_for(tmp_path) as workers:
        run(items, tmp_path, workers)
        assert workers.sent > 0
        assert rows(tmp_path / "http")[server.url("/b0/feed.xml")] == changed


def test_a_mostly_new_phase_stays_here(server, tmp_path: Path) -> None:
    """Nothing cached: the feeds need parsing, which goes to parse workers, not fetch workers."""
    items = editions(server)
    with shards_for(tmp_path) as workers:
        docs = run(items, tmp_path, workers)
        assert workers.sent == 0
    assert len(docs.feeds) == 7


def test_a_phase_the_cache_answers_stays_here(server, tmp_path: Path) -> None:
    """Feeds still fresh need no request: reading them here costs less than starting workers,
    and gives the same Documents."""
    items = editions(server, **{"Cache-Control": "max-age=3600"})
    first = run(items, tmp_path, None)
    asked = server.request_count
    with shards_for(tmp_path) as workers:
        again = run(items, tmp_path, workers)
        assert workers.sent == 0
    assert server.request_count == asked  # and nothing was asked again
    assert again == first


def test_a_phase_below_the_threshold_stays_here(server, tmp_path: Path) -> None:
    items = editions(server)
    run(items, tmp_path, None)
    with shards_for(tmp_path, shard_from=1000) as workers:
        run(items, tmp_path, workers)
        assert workers.sent == 0


def test_what_a_dead_worker_never_answered_is_handed_back(server, tmp_path: Path) -> None:
    urls = [
        server.route(f"/f{n}.xml", rss(f"{server.base}/f{n}", 3), headers=RSS) for n in range(4)
    ]
    with shards_for(tmp_path) as workers:
        pool, _ = workers._start()
        assert pool is not None
        pool.submit(time.sleep, 0).result()  # the workers are up
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        left: list[str] = []
        answered = [
            item.read.url
            for item in workers.read_each(urls, frozenset(urls), {}, False, left.extend)
        ]
    assert sorted(answered + left) == sorted(urls)  # every URL answered or handed back
    assert left  # the killed workers answered for none of them


def test_workers_answer_with_the_feed_parsed_for_what_is_wanted(server, tmp_path: Path) -> None:
    base = server.base
    url = server.route("/w/feed.xml", rss(f"{base}/w", 10, (4,)), headers=RSS)
    want = Want(tags=frozenset({"job-hunt"}))
    left: list[str] = []
    with shards_for(tmp_path) as workers:
        (item,) = workers.read_each([url], frozenset({url}), {url: want}, False, left.extend)
    assert not left and item.want == want and item.read.feed is None  # body not kept
    assert [e.link for e in item.parsed.entries] == [f"{base}/w/posts/4.html"]


def test_what_a_worker_logs_is_logged_here(server, tmp_path: Path, caplog) -> None:
    """A damaged cache entry found by a worker is discarded with the usual warning, in this
    process's log (where the build's handlers are), and the feed is fetched again."""
    items = editions(server)
    run(items, tmp_path, None)
    damaged = server.url("/b0/feed.xml")
    set_row(tmp_path / "http", damaged, body=b"not the body stored")
    with caplog.at_level("WARNING"), shards_for(tmp_path) as workers:
        docs = run(items, tmp_path, workers)
        assert workers.sent > 0
    database = tmp_path / "http" / DB_NAME
    notice = f"discarded damaged HTTP cache entry for {damaged} in {database}"
    assert any(notice in r.getMessage() for r in caplog.records)
    assert len(docs.feeds[server.url("/b0/feed.xml")].entries) == 2


def test_a_parse_cache_this_process_cannot_use_is_named_once(server, tmp_path: Path, caplog):
    """Not handed to the workers: each would find the same and name it again."""
    items = editions(server)
    run(items, tmp_path, None)  # a warm HTTP cache: the next phase goes to the workers
    shutil.rmtree(tmp_path / "parsed")
    (tmp_path / "parsed").write_text("a file where the parse cache's folder should be")
    plans = [plan(c, e) for c, e in items]
    with (
        caplog.at_level("WARNING"),
        Fetcher(SETTINGS, HttpCache(tmp_path / "http")) as fetcher,
        FeedParser(tmp_path / "parsed", processes=0) as parser,
        Shards(SETTINGS, fetcher.cache, parser.store, 2, shard_from=1) as workers,
    ):
        docs = collect(plans, fetcher, parser, cache=fetcher.cache, shards=workers)
        assert workers.sent > 0
    named = [r for r in caplog.records if "cannot use parse cache" in r.getMessage()]
    assert len(named) == 1, [r.getMessage() for r in named]
    assert len(docs.feeds[server.url("/b0/feed.xml")].entries) == 2  # parsed all the same


# -- resolving in the background ----------------------------------------------------------------


def test_editions_resolve_in_a_thread_of_their_own_to_the_same_result(
    server, tmp_path: Path
) -> None:
    """What the build starts when Pelican starts reading posts: the fetching happens in the
    resolving thread (not the caller's), and the result is what ``resolve`` gives."""
    import threading

    from blog_carnival import core
    from blog_carnival.settings import read_settings

    settings = read_settings(
        {"CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"], "CARNIVAL_CACHE_PATH": "cache"},
        tmp_path,
        environ={},
    )
    items = editions(server)
    threads: list[str] = []
    future = core.start_resolving(
        settings, items, lambda url: threads.append(threading.current_thread().name)
    )
    background = future.result(timeout=60)
    future.finish()
    assert len(threads) == 9 and set(threads) == {"carnival-resolve"}  # 7 feeds, 2 pages
    assert background == core.resolve(settings, items)
    (result,) = background.values()
    assert len(result.entries) == 6 * 2 + 2  # two tagged posts per blog, two submissions


def test_the_callers_objects_sit_out_collection_while_resolving(server, tmp_path: Path) -> None:
    """The heap built before resolving (Pelican's, in a build) is frozen out of garbage
    collection until ``finish()``; a cycle of it that became garbage meanwhile is collected
    after that, not lost."""
    import gc
    import weakref

    from blog_carnival import core
    from blog_carnival.settings import read_settings

    class Node:
        pass

    settings = read_settings(
        {"CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"], "CARNIVAL_CACHE_PATH": "cache"},
        tmp_path,
        environ={},
    )
    items = editions(server)
    cycle = Node()
    cycle.self = cycle
    alive = weakref.ref(cycle)
    gc.collect()
    assert gc.get_freeze_count() == 0
    resolving = core.start_resolving(settings, items)
    assert gc.get_freeze_count() > 0
    del cycle
    resolving.result(timeout=60)
    gc.collect()
    assert alive() is not None  # frozen: not even a full collection looks at it
    resolving.finish()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_the_results_are_handed_over_before_the_caches_are_closed(
    server, tmp_path: Path, monkeypatch, caplog
) -> None:
    """The build renders the editions while the resolving thread closes the caches and
    writes the feed log; ``finish()`` waits for that, and what fails then is logged."""
    import threading

    from blog_carnival import core, feedlog
    from blog_carnival.settings import read_settings

    settings = read_settings(
        {"CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"], "CARNIVAL_CACHE_PATH": "cache"},
        tmp_path,
        environ={},
    )
    items = editions(server)
    go_on = threading.Event()
    record = feedlog.record

    def held(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        assert go_on.wait(60)
        return record(*args, **kwargs)

    monkeypatch.setattr(feedlog, "record", held)
    resolving = core.start_resolving(settings, items)
    (result,) = resolving.result().values()
    assert len(result.entries) == 6 * 2 + 2
    finisher = threading.Thread(target=resolving.finish)
    finisher.start()
    finisher.join(0.5)
    assert finisher.is_alive() and not settings.feed_log_path.exists()  # still tidying up
    go_on.set()
    finisher.join(60)
    assert not finisher.is_alive() and settings.feed_log_path.exists()

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(feedlog, "record", broken)
    resolving = core.start_resolving(settings, items)
    assert resolving.result() == {result.key: result}  # the failure comes after the results
    resolving.finish()
    assert "error after the editions were resolved" in caplog.text


def test_a_rebuild_is_told_from_a_first_build_by_the_cache(server, tmp_path: Path) -> None:
    """What decides whether the build resolves beside Pelican's reading (a rebuild) or after
    it (a first build, whose parsing would compete with the reading)."""
    from blog_carnival import core
    from blog_carnival.settings import read_settings

    settings = read_settings(
        {"CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"], "CARNIVAL_CACHE_PATH": "cache"},
        tmp_path,
        environ={},
    )
    items = editions(server)
    assert not core.mostly_stored(settings, items)
    core.resolve(settings, items)
    assert core.mostly_stored(settings, items)
    assert not core.mostly_stored(settings, [])


# -- a killed build leaves no worker behind ------------------------------------------------------

HOLDER = """
import sys, time
sys.path[:0] = [{plugins!r}]
from pathlib import Path
from blog_carnival.fetch import FetchSettings
from blog_carnival.parsepool import FeedParser
from blog_carnival.shards import Shards
shards = Shards(FetchSettings(), None, None, 2)
pool, _ = shards._start()
parser = FeedParser(Path({cache!r}), processes=2)
parser.expect(10**6)  # starts the parse workers
for p in (pool, parser._pool):
    p.submit(time.sleep, 0).result()
print(" ".join(map(str, pool._processes)), "|", " ".join(map(str, parser._pool._processes)), flush=True)
time.sleep(600)
"""


def test_workers_end_when_the_build_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the build no chance to shut its pools down: each worker notices its
    parent is gone and ends (before, they waited for work forever, holding the pipes)."""
    import subprocess
    import sys

    from conftest import ROOT

    code = HOLDER.format(plugins=str(ROOT / "plugins"), cache=str(tmp_path / "parsed"))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        fetchers, parsers = (part.split() for part in proc.stdout.readline().split("|"))
        assert fetchers and parsers  # workers of both kinds are running
        pids = [int(pid) for pid in fetchers + parsers]
        proc.kill()
        proc.wait()

        def gone(pid: int) -> bool:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
            except FileNotFoundError:
                return True

        end = time.monotonic() + 30  # a generous bound, only there to catch a hang
        while not all(gone(pid) for pid in pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert [pid for pid in pids if not gone(pid)] == []
    finally:
        proc.kill()


MAIN_SCRIPT = """
import os, sys
sys.path.insert(0, {plugins!r})
if __name__ == "__mp_main__":  # a worker runs this script again
    with open({marker!r}, "a") as marker:
        marker.write("ran in a worker\\n")
import multiprocessing
from blog_carnival.parsepool import spawn_pool

def other_process():
    return 1

if __name__ == "__main__":
    with spawn_pool(2) as pool:
        print(sorted({{pool.submit(os.getpid).result() for _ in range(8)}}))
    # Processes that are not ours are prepared as multiprocessing always does.
    process = multiprocessing.get_context("spawn").Process(target=other_process)
    process.start()
    process.join()
"""


def test_workers_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    """Under the ``pelican`` command the main module is its script, which imports the whole
    of Pelican: a spawned worker ran it again (0.3 s of CPU each) though nothing it is sent
    comes from there. Other spawned processes still run it, as multiprocessing intends."""
    import subprocess
    import sys

    from conftest import ROOT

    marker = tmp_path / "marker"
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT.format(plugins=str(ROOT / "plugins"), marker=str(marker)))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[")  # the workers ran the tasks
    assert marker.read_text() == "ran in a worker\n"  # once: the process that is not ours


def test_a_build_that_will_fetch_freezes_its_heap_before_it_reads_the_cache(
    tmp_path: Path, monkeypatch
) -> None:
    """As soon as the adapter knows the build will fetch (editions without a lock), the
    heap is left out of collection, before the cache is asked whether this is a rebuild: a
    full collection fell just there, before the first request (20-32 ms of a 200-feed
    build). Resolving ends the freeze (``finish``); here the test does."""
    import gc
    from types import SimpleNamespace

    from blog_carnival import adapter, core
    from blog_carnival.settings import read_comments_settings, read_settings
    from conftest import ROOT

    folder = tmp_path / "carnival"
    shutil.copytree(ROOT / "carnival", folder, ignore=shutil.ignore_patterns("*.lock.json"))
    settings = read_settings(
        {"CARNIVAL_PATH": str(folder), "CARNIVAL_CACHE_PATH": str(tmp_path / "cache")},
        tmp_path,
        environ={"CARNIVAL_TODAY": "2026-12-01"},
    )
    state = adapter.BuildState(
        settings=settings, carnivals=core.load(settings), comments=read_comments_settings({})
    )
    frozen: list[int] = []
    asked = core.mostly_stored
    monkeypatch.setattr(
        core,
        "mostly_stored",
        lambda s, items: frozen.append(gc.get_freeze_count()) or asked(s, items),
    )
    gc.unfreeze()
    try:
        adapter.on_articles_init(SimpleNamespace(settings={adapter.STATE_KEY: state}))
        assert state.to_fetch and state.pending is None  # an empty cache: a first build
        assert frozen and frozen[0] > 0
    finally:
        gc.unfreeze()
