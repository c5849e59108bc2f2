"""The golden sample builds byte-for-byte as committed (regenerate with `invoke golden`)."""

from __future__ import annotations

import difflib

import pytest
from golden import EXPECTED, build_golden, tree

pytestmark = pytest.mark.site


def test_golden_output_matches(tmp_path):
    proc = build_golden(tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got, want = tree(tmp_path / "out"), tree(EXPECTED)
    assert sorted(got) == sorted(want), (
        "file lists differ; run `invoke golden` if the change is intended"
    )
    for name in want:
        if got[name] != want[name]:
            diff = difflib.unified_diff(
                want[name].decode(errors="replace").splitlines(),
                got[name].decode(errors="replace").splitlines(),
                f"expected/{name}",
                f"built/{name}",
                lineterm="",
                n=2,
            )
            pytest.fail(
                f"{name} differs (run `invoke golden` if intended):\n" + "\n".join(list(diff)[:60])
            )
