"""Host tasks: every quickstart task exists, and the publishing dry runs change nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.site


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "CARNIVAL_OFFLINE": "1", "COLUMNS": "300"},
    )


def test_every_task_is_listed():
    listing = invoke("--list").stdout
    for name in (
        "build",
        "rebuild",
        "clean",
        "serve",
        "reserve",
        "regenerate",
        "livereload",
        "preview",
        "publish",
        "gh-pages",
        "golden",
        "pin",
        "carnival.new",
        "carnival.edition",
        "carnival.submit",
        "carnival.check",
        "carnival.status",
        "carnival.freeze",
        "carnival.announce",
        "carnival.sample-locks",
    ):
        assert f"  {name} " in listing or f"  {name}\n" in listing, name


def test_gh_pages_dry_run_builds_for_publishing_and_pushes_nothing(tmp_path):
    before = subprocess.run(
        ["git", "branch", "--list", "gh-pages"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    proc = invoke("gh-pages", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: ghp-import -b gh-pages" in proc.stdout
    after = subprocess.run(
        ["git", "branch", "--list", "gh-pages"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert before == after
    feed = (ROOT / "output" / "feeds" / "all.atom.xml").read_text(encoding="utf-8")
    assert "https://warm-introduction.example/" in feed  # publishconf's absolute URLs


def test_build_task_offline_makes_the_site():
    proc = invoke("build", "--offline", "--output", "output")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (ROOT / "output" / "carnival" / "networking-carnival" / "3" / "index.html").is_file()


def test_carnival_tasks_call_the_commands_with_their_exit_codes():
    assert invoke("carnival.check").returncode == 0
    unknown = invoke("carnival.check", "-e", "networking-carnival/99")
    assert unknown.returncode == 2 and "no edition 'networking-carnival/99'" in unknown.stderr
    assert invoke("carnival.check", "--edition", "networking-carnival/3").returncode == 0
    refused = invoke("carnival.submit", "networking-carnival/5", "ftp://example.org/post")
    assert refused.returncode == 1 and "not an http(s) URL" in refused.stderr


def test_build_can_revalidate_every_feed():
    """`invoke build --refresh` asks every feed again (CARNIVAL_REFRESH), fresh or not."""
    assert "--refresh" in invoke("build", "--help").stdout
    dry = invoke("--dry", "build", "--refresh")  # prints the command instead of running it
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "-m pelican content" in dry.stdout and "CARNIVAL_REFRESH=true" in dry.stdout
    assert "CARNIVAL_REFRESH" not in invoke("--dry", "build").stdout
