"""Every page of the built site is valid HTML5: one Nu Html Checker run over the whole site."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"

pytestmark = pytest.mark.site


def run_vnu(site: Path) -> list[dict]:
    """Check every .html under ``site`` with one java process; return the error messages."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("java is not installed: the Nu Html Checker needs it (.ci/run installs it)")
    if not VNU_JAR.is_file():
        pytest.fail(f"Nu Html Checker not found at {VNU_JAR}: run `npm ci` (make test does)")
    pages = sorted(site.rglob("*.html"))
    assert pages, f"no .html files in {site}"
    cmd = [
        java,
        "-jar",
        str(VNU_JAR),
        "--errors-only",
        "--format",
        "json",
        "--skip-non-html",
        str(site),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    report = (proc.stderr or proc.stdout).strip()
    try:
        messages = json.loads(report)["messages"]
    except (ValueError, KeyError) as exc:
        pytest.fail(f"vnu gave no JSON report (exit {proc.returncode}): {exc}\n{report[:2000]}")
    if proc.returncode not in (0, 1):
        pytest.fail(f"vnu failed to run (exit {proc.returncode}):\n{report[:2000]}")
    return [m for m in messages if m.get("type") != "info"]


def format_message(message: dict, site: Path) -> str:
    where = message.get("url", "?").removeprefix("file:").removeprefix(str(site)).lstrip("/")
    line = message.get("lastLine") or message.get("firstLine") or "?"
    extract = (message.get("extract") or "").replace("\n", " ").strip()
    text = f"{where}:{line}: {message.get('type')}: {message.get('message')}"
    return f"{text}\n    {extract}" if extract else text


def test_every_page_is_valid_html(built_site: Path) -> None:
    errors = run_vnu(built_site)
    if errors:
        listing = "\n".join(format_message(m, built_site) for m in errors)
        pytest.fail(f"{len(errors)} HTML error(s) from the Nu Html Checker:\n{listing}")
