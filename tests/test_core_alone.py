"""The carnival core imports no Pelican: it can be used and tested on its own."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

CORE = [
    "config",
    "sources",
    "fetch",
    "parse",
    "page",
    "select",
    "lock",
    "render",
    "report",
    "pipeline",
    "sanitize",
    "trim",
    "cache",
    "netpolicy",
    "urls",
    "model",
    "settings",
    "comments",
    "spam",
]


def test_core_modules_import_without_pelican():
    code = (
        "import sys\n"
        + "".join(f"import blog_carnival.{name}\n" for name in CORE)
        + "loaded = sorted(m for m in sys.modules if m == 'pelican' or m.startswith('pelican.'))\n"
        + "print(loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "plugins", capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_resolver_runs_without_pelican(tmp_path):
    """Resolve a sample edition with the real fetcher and parser, no Pelican involved."""
    code = f"""
import sys
sys.path[:0] = [{str(ROOT / "tests")!r}, {str(ROOT / "plugins")!r}]
from pathlib import Path
from sites_server import SitesServer, local_carnival
from blog_carnival.config import load_carnivals
from blog_carnival.fetch import Fetcher, FetchSettings
from blog_carnival.pipeline import Resolver
with SitesServer() as server:
    folder = local_carnival(server, Path({str(ROOT / "carnival")!r}), Path({str(tmp_path)!r}) / 'c')
    (carnival,) = load_carnivals(folder)
    edition = carnival.edition(1)
    with Fetcher(FetchSettings(allowed_private_hosts=frozenset({{'127.0.0.1'}}))) as fetcher:
        result = Resolver(fetcher).resolve([(carnival, edition)])[edition.key]
print(len(result.entries), result.count('feed'), 'pelican' in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["6", "6", "False"]


def test_a_304_costs_no_parsing(tmp_path):
    """Second resolve with every feed answering 304: parse_feed is never called."""
    code = f"""
import sys
sys.path[:0] = [{str(ROOT / "tests")!r}, {str(ROOT / "plugins")!r}]
from pathlib import Path
from sites_server import SitesServer, local_carnival
from blog_carnival import pipeline
from blog_carnival.cache import HttpCache
from blog_carnival.config import load_carnivals
from blog_carnival.fetch import Fetcher, FetchSettings

tmp = Path({str(tmp_path)!r})
def resolve(server, carnival, edition):
    cache = HttpCache(tmp / 'http')
    with Fetcher(FetchSettings(allowed_private_hosts=frozenset({{'127.0.0.1'}})), cache) as fetcher:
        resolver = pipeline.Resolver(fetcher, cache=cache, parse_cache=tmp / 'parsed', parse_processes=0)
        return resolver.resolve([(carnival, edition)])[edition.key]

with SitesServer() as server:
    (carnival,) = load_carnivals(local_carnival(server, Path({str(ROOT / "carnival")!r}), tmp / 'c'))
    edition = carnival.edition(3)
    first = resolve(server, carnival, edition)
    def no_parsing(*args, **kwargs):
        raise AssertionError('parsed again')
    pipeline.parse_feed = no_parsing
    before = len(server.requests)
    second = resolve(server, carnival, edition)
    feeds = [s for p, s in server.requests[before:] if p.endswith(('.xml', '.json', '.rdf'))]
print(first.entries == second.entries, len(first.entries), set(feeds))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "5", "{304}"]
