"""Shared fixtures: a whole-site build of the real project, done once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The day every build and command in the tests takes as today (subprocesses inherit it):
# which editions are calls for submissions must not change with the calendar.
TODAY = "2026-12-01"
os.environ["CARNIVAL_TODAY"] = TODAY

SITE_PARTS = ("content", "theme", "plugins", "carnival", "pelicanconf.py")


def copy_site(dest: Path) -> Path:
    """A copy of the project's site (content, theme, plugins, carnival, settings) to change."""
    dest.mkdir(parents=True)
    for name in SITE_PARTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def build_site(
    output: Path,
    *,
    settings: str = "pelicanconf.py",
    extra: dict[str, str] | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    cache: Path | None = None,
) -> subprocess.CompletedProcess:
    """Build a site with Pelican in a subprocess (fresh plugin state), return the process.

    Pelican's content cache goes to `cache`, by default a folder beside `output`, never the
    working tree's cache/."""
    cache = cache or output.parent / f"{output.name}.pelican-cache"
    cmd = [sys.executable, "-m", "pelican", "content", "-s", settings, "-o", str(output)]
    cmd += ["--cache-path", str(cache)]
    if extra:  # one -e with every pair: Pelican keeps only the last -e it is given
        cmd += ["-e", *(f"{key}={value}" for key, value in extra.items())]
    run_env = {**os.environ, "PYTHONHASHSEED": "0", "COLUMNS": "400", **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The real site, built offline (locked editions only) into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    proc = build_site(
        out, extra={"CARNIVAL_OFFLINE": "true", "CARNIVAL_CACHE_PATH": f'"{out.parent / "cache"}"'}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out
