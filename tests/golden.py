"""Golden output in Pelican's manner: build a small fixed sample, compare with committed files.

`invoke golden` calls regenerate_expected() after an intended change to theme or plugin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
EXPECTED = GOLDEN / "expected"
ROOT = HERE.parent


def build_golden(output: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "pelican",
        str(GOLDEN / "content"),
        "-s",
        str(GOLDEN / "goldenconf.py"),
        "-o",
        str(output),
        "--cache-path",  # Pelican's content cache, out of the working tree
        str(output.parent / "pelican-cache"),
        "-e",
        f'CARNIVAL_CACHE_PATH="{output.parent / "cache"}"',
        *(f"{key}={value}" for key, value in (extra or {}).items()),
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def regenerate_expected() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        proc = build_golden(out)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        shutil.rmtree(EXPECTED, ignore_errors=True)
        shutil.copytree(out, EXPECTED)
