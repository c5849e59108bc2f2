"""`make demo` (the `demo` task): on a fresh clone and with no internet it serves the demo blogs,
builds the site live from them, serves it, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from conftest import ROOT

pytestmark = pytest.mark.site


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free now on 127.0.0.1."""
    for base in range(21000, 40000, 97):
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
        return answer.read().decode("utf-8")


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def run_demo(site_port: int, blogs_port: int) -> subprocess.Popen:
    """The demo as a host starts it at a terminal: Ctrl-C (SIGINT) raises KeyboardInterrupt
    in it. Started from a job that ignores SIGINT (a background job of a script, as a CI
    runner may start the tests), a child would inherit that, and Python then sets up no
    KeyboardInterrupt at all: the signal this test sends as Ctrl-C would go unnoticed.
    So the child is started while this process catches SIGINT (a caught signal is set
    back to its default in the new program; an ignored one stays ignored)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("CARNIVAL_TODAY", None)  # the demo pins its own day
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "invoke",
                "demo",
                "--port",
                str(site_port),
                "--blogs-port",
                str(blogs_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, before)


def stop(proc: subprocess.Popen) -> str:
    """Ctrl-C, and what the demo printed after it; a demo that does not stop is killed,
    not left serving after the test."""
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=60)  # a generous bound: it stops in about a second
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
        pytest.fail(f"the demo did not stop on Ctrl-C within 60 s:\n{rest}")
    return rest


@pytest.mark.timeout(180)
def test_demo_serves_a_live_roundup_and_stops_on_ctrl_c():
    base = free_ports(6)
    site_port, blogs_port = base, base + 1
    for attempt in range(2):  # a second run must work too
        proc = run_demo(site_port, blogs_port)
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("Ctrl-C stops"):
                    break
            output = "".join(lines)
            assert f"demo: open http://127.0.0.1:{site_port}/" in output, output
            # the build's report, with the feed that fails on purpose
            assert "networking-carnival/3 (network)" in output
            assert "feed.json: HTTP 503" in output
            call = get(f"http://127.0.0.1:{site_port}/carnival/networking-carnival/5/")
            assert "Call for submissions" in call and "call-mailto" in call
            roundup = get(f"http://127.0.0.1:{site_port}/carnival/networking-carnival/3/")
            assert (
                f"http://127.0.0.1:{blogs_port + 1}/2026/11/when-replies-slow-down.html" in roundup
            )
            blog = get(f"http://127.0.0.1:{blogs_port}/")
            assert "Coffee" in blog
        finally:
            rest = stop(proc)
        assert proc.returncode == 0, rest
        assert "demo: stopped" in rest
        assert all(refused(port) for port in range(base, base + 6)), f"attempt {attempt}"
