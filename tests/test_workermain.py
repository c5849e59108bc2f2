"""workermain.defer: a package registered without running its __init__, which runs (once,
in the same module object) when one of its names is first asked for. Each case runs in a
fresh interpreter: it changes sys.modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

WORKERMAIN = ROOT / "plugins" / "blog_carnival" / "workermain.py"


def package(tmp_path: Path) -> Path:
    """`pkg`: its __init__ counts its runs in a file and defines NAME; `pkg.sub` a module."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import pathlib\n"
        "marker = pathlib.Path(__file__).with_name('runs')\n"
        "marker.write_text(str(int(marker.read_text() or 0) + 1) if marker.exists() else '1')\n"
        "NAME = 'from init'\n"
    )
    (pkg / "sub.py").write_text("VALUE = 42\n")
    return pkg


def run(tmp_path: Path, code: str) -> str:
    script = f"import runpy, sys\nsys.path.insert(0, {str(tmp_path)!r})\n" + (
        f"defer = runpy.run_path({str(WORKERMAIN)!r})['defer']\n" + code
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_submodule_imports_without_the_packages_init(tmp_path):
    pkg = package(tmp_path)
    out = run(
        tmp_path,
        "m = defer('pkg')\nimport pkg.sub\nprint(type(m).__name__, pkg.sub.VALUE)\n",
    )
    assert out == "_Deferred 42"
    assert not (pkg / "runs").exists()


def test_the_first_name_asked_for_runs_the_init_once(tmp_path):
    pkg = package(tmp_path)
    out = run(
        tmp_path,
        "m = defer('pkg')\nimport pkg.sub, pkg\n"
        "print(pkg.NAME, pkg.NAME, pkg.marker.name, type(m).__name__, pkg is m)\n",
    )
    assert out == "from init from init runs module True"
    assert (pkg / "runs").read_text() == "1"


def test_a_name_the_package_lacks_is_still_an_attribute_error(tmp_path):
    package(tmp_path)
    out = run(
        tmp_path,
        "defer('pkg')\nimport pkg\n"
        "try:\n    pkg.missing\nexcept AttributeError:\n    print('AttributeError')\n",
    )
    assert out == "AttributeError"


def test_nothing_is_deferred_when_imported_already_or_not_found(tmp_path):
    package(tmp_path)
    out = run(
        tmp_path,
        "import pkg\nprint(defer('pkg'), defer('no_such_package_here'), defer('json.decoder'))\n",
    )
    assert out == "None None None"


def test_threads_asking_at_once_all_wait_for_the_one_init(tmp_path):
    pkg = package(tmp_path)
    (pkg / "__init__.py").write_text(
        (pkg / "__init__.py").read_text().replace("NAME =", "import time; time.sleep(0.2); NAME =")
    )
    out = run(
        tmp_path,
        "from concurrent.futures import ThreadPoolExecutor\ndefer('pkg')\nimport pkg\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    print(set(pool.map(lambda _: pkg.NAME, range(8))))\n",
    )
    assert out == "{'from init'}"
    assert (pkg / "runs").read_text() == "1"
