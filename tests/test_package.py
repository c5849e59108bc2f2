"""The plugin as a package: `python -m build` makes a wheel and an sdist that `twine check`
accepts; the wheel, installed into a fresh virtual environment with no access to plugins/,
gives a quickstart-shaped site working carnivals (Pelican finds it as a namespace plugin) and
the `pelican-carnival` command."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from sites_server import SitesServer

pytestmark = [pytest.mark.package, pytest.mark.timeout(600)]

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "300", "HOME": os.environ.get("HOME", "/tmp")}


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment with only the wheel and what it depends on (versions
    constrained to the project's pins, so the install is the one CI tested)."""
    env = tmp_path_factory.mktemp("venv") / "v"
    run([sys.executable, "-m", "venv", str(env)])
    (wheel,) = dist.glob("*.whl")
    run(
        [
            str(env / "bin/pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "requirements.txt"),
            str(wheel),
        ],
        env=CLEAN_ENV,
    )
    return env


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(str(p) for p in dist.iterdir())
    assert sorted(Path(f).suffix for f in files) == [".gz", ".whl"]
    run([sys.executable, "-m", "twine", "check", "--strict", *files])


def test_the_wheel_is_a_namespace_plugin_with_its_templates(dist):
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if not n.startswith("pelican_blog_carnival-")]
    assert code and all(n.startswith("pelican/plugins/blog_carnival/") for n in code)
    assert "pelican/__init__.py" not in names and "pelican/plugins/__init__.py" not in names
    for template in (
        "roundup.html",
        "call.html",
        "carnival_index.html",
        "carnivals.html",
        "carnival_badge.html",
        "carnival_roundup_body.html",
        "carnival.css",
    ):
        assert f"pelican/plugins/blog_carnival/templates/{template}" in names
    metadata = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    )
    for line in (
        "Name: pelican-blog-carnival",
        "License-Expression: MIT",
        "Classifier: Framework :: Pelican :: Plugins",
        "Project-URL: Source",
        "Requires-Dist: pelican>=4.8",
    ):
        assert line in metadata


def test_installed_wheel_builds_a_quickstart_site_and_runs_the_command(venv, tmp_path):
    python = venv / "bin/python"
    where = run(
        [str(python), "-c", "import pelican.plugins.blog_carnival as p; print(p.__file__)"],
        cwd=tmp_path,
        env=CLEAN_ENV,
    ).stdout
    assert str(venv) in where and str(ROOT) not in where  # the installed copy, not plugins/

    help_text = run([str(venv / "bin/pelican-carnival"), "--help"], env=CLEAN_ENV).stdout
    for command in ("new", "edition", "submit", "check", "status", "freeze", "announce"):
        assert command in help_text

    site = tmp_path / "site"
    with SitesServer() as server:
        post = server.url("coffee-and-careers.example", "/2026/11/reading-list.html")
        feed = server.url("coffee-and-careers.example", "/feed.xml")
        run(
            [str(python), str(ROOT / "tests/quickstart_site.py"), str(site), feed, post],
            env=CLEAN_ENV,
        )
        proc = run(
            [str(venv / "bin/pelican"), "content", "-s", "pelicanconf.py", "-o", "output"],
            cwd=site,
            env=CLEAN_ENV,
        )
    assert "quick-carnival/2 (network): 1 resolved" in proc.stdout, proc.stdout
    out = site / "output"
    two = (out / "carnival/quick-carnival/2/index.html").read_text()
    assert '<header id="banner"' in two  # inside Pelican's default theme
    assert f'<a href="{post}">' in two
    assert (out / "carnival/quick-carnival/atom.xml").is_file()
    assert (out / "theme/css/carnival.css").is_file()

    # the same site in Pelican's `simple` theme, still from the installed package
    simple = tmp_path / "simple"
    with SitesServer() as server:
        post = server.url("coffee-and-careers.example", "/2026/11/reading-list.html")
        feed = server.url("coffee-and-careers.example", "/feed.xml")
        run(
            [
                str(python),
                str(ROOT / "tests/quickstart_site.py"),
                str(simple),
                feed,
                post,
                "simple",
            ],
            env=CLEAN_ENV,
        )
        run(
            [str(venv / "bin/pelican"), "content", "-s", "pelicanconf.py", "-o", "output"],
            cwd=simple,
            env=CLEAN_ENV,
        )
    page = (simple / "output/carnival/quick-carnival/2/index.html").read_text()
    assert "<hgroup><h1>" in page and f'<a href="{post}">' in page

    check = run(
        [str(venv / "bin/pelican-carnival"), "-s", "pelicanconf.py", "check"],
        cwd=site,
        env=CLEAN_ENV,
    )
    assert "no problems" in check.stdout
    made = run(
        [
            str(venv / "bin/pelican-carnival"),
            "-s",
            "pelicanconf.py",
            "edition",
            "quick-carnival",
            "--title",
            "Third time",
        ],
        cwd=site,
        env=CLEAN_ENV,
    )
    assert "003.toml" in made.stdout and (site / "carnival/quick-carnival/003.toml").is_file()


WORKER_PROBE = """
from pelican.plugins.blog_carnival.parsepool import spawn_pool

if __name__ == "__main__":
    with spawn_pool(1) as pool:
        before = pool.submit(eval, "sorted(m for m in __import__('sys').modules if m.startswith('pelican'))").result()
        name = pool.submit(eval, "__import__('pelican').Pelican.__name__").result()
        after = pool.submit(eval, "'pelican.generators' in __import__('sys').modules").result()
    print(before, name, after)
"""


def test_installed_workers_run_pelicans_init_only_when_used(venv, tmp_path):
    """Importing pelican.plugins.blog_carnival in a worker does not run Pelican's __init__
    (the whole of Pelican, ~0.3 s a worker); a worker that does ask for one of Pelican's
    names gets the real one."""
    probe = tmp_path / "probe.py"
    probe.write_text(WORKER_PROBE)
    out = run([str(venv / "bin/python"), str(probe)], cwd=tmp_path, env=CLEAN_ENV).stdout
    before, name, after = out.rsplit(" ", 2)
    modules = eval(before)  # a list of module names, printed by the probe
    assert "pelican" in modules and "pelican.plugins.blog_carnival.parsepool" in modules
    assert not [m for m in modules if m.startswith(("pelican.generators", "pelican.readers"))]
    assert (name, after.strip()) == ("Pelican", "True")


def test_this_sites_plugins_load_beside_the_installed_carnival(venv):
    """With the wheel installed, Pelican loads `blog_carnival` from site-packages (a
    namespace plugin wins over PLUGIN_PATHS); the site's own plugins that use the carnival's
    helpers still load, with the installed copy's."""
    code = (
        "from pelican.plugins._utils import load_plugins\n"
        f"plugins = load_plugins({{'PLUGINS': ['blog_carnival', 'content_cache'], "
        f"'PLUGIN_PATHS': [{str(ROOT / 'plugins')!r}]}})\n"
        "print(*[p.__name__ for p in plugins], plugins[1].write_atomic.__module__)\n"
    )
    out = run([str(venv / "bin/python"), "-c", code], env=CLEAN_ENV).stdout.split()
    assert out == [
        "pelican.plugins.blog_carnival",
        "content_cache",
        "pelican.plugins.blog_carnival.textutil",
    ]
