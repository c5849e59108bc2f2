"""The benchmark scripts that need no server still run against the code as it is now (the
figures themselves are not checked: speed is measured by running them, never in a test)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_roundup_bench_times_each_stage_of_a_small_edition():
    proc = subprocess.run(
        [sys.executable, "bench/roundup_bench.py", "--contributors", "20", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("20 contributors, 40 entries")  # two tagged entries each
    assert [line.split()[0] for line in lines[2:]] == ["load", "assemble", "render"]
