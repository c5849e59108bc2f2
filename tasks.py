"""Host tasks (Invoke), in the shape of Pelican's quickstart: build, serve, publish, freeze."""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Collection, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "plugins"))

CONFIG = {
    "settings_base": "pelicanconf.py",
    "settings_publish": "publishconf.py",
    "deploy_path": "output",
    "ssh_user": os.environ.get("DEPLOY_USER", "www"),
    "ssh_host": os.environ.get("DEPLOY_HOST", "warm-introduction.example"),
    "ssh_port": os.environ.get("DEPLOY_PORT", "22"),
    "ssh_path": os.environ.get("DEPLOY_PATH", "/var/www/warm-introduction"),
    "github_pages_branch": "gh-pages",
    "commit_message": f"Publish site on {datetime.date.today().isoformat()}",
    "host": "127.0.0.1",
    "port": 8000,
    "golden_content": "tests/golden/content",
    "golden_expected": "tests/golden/expected",
}


def pelican_run(
    c,
    args: str,
    *,
    offline: bool = False,
    strict: bool = False,
    refresh: bool = False,
    output: str | None = None,
) -> None:
    """Run Pelican in a child process so its exit code becomes ours."""
    extra = []
    if offline:
        extra.append("CARNIVAL_OFFLINE=true")
    if strict:
        extra.append("CARNIVAL_STRICT=true")
    if refresh:
        extra.append("CARNIVAL_REFRESH=true")
    out = shlex.quote(output or CONFIG["deploy_path"])
    cmd = f"{shlex.quote(sys.executable)} -m pelican content {args} -o {out}"
    if extra:
        cmd += " -e " + " ".join(extra)
    c.run(cmd, pty=False)


@task
def clean(c):
    """Remove generated files."""
    shutil.rmtree(ROOT / CONFIG["deploy_path"], ignore_errors=True)


@task(
    help={
        "offline": "build from locks and cache only, no network",
        "strict": "fail (non-zero exit) when any contributor feed fails",
        "refresh": "ask every feed again, even those still fresh in the cache (max-age)",
        "settings": "settings file (default pelicanconf.py)",
        "output": "output folder (default output/)",
    }
)
def build(c, offline=False, strict=False, refresh=False, settings=None, output=None):
    """Build the local version of the site (feeds and carnival included)."""
    settings_file = shlex.quote(settings or CONFIG["settings_base"])
    pelican_run(
        c,
        f"-s {settings_file}",
        offline=offline,
        strict=strict,
        refresh=refresh,
        output=output,
    )


@task(help={"offline": "build from locks and cache only", "strict": "fail when any feed fails"})
def rebuild(c, offline=False, strict=False):
    """Clean the output folder, then build."""
    clean(c)
    build(c, offline=offline, strict=strict)


@task
def regenerate(c):
    """Rebuild automatically whenever content changes."""
    pelican_run(c, f"-r -s {CONFIG['settings_base']}")


@task
def serve(c):
    """Serve output/ at http://127.0.0.1:8000/."""
    c.run(
        f"{shlex.quote(sys.executable)} -m pelican --listen -b {CONFIG['host']} -p {CONFIG['port']} "
        f"-o {CONFIG['deploy_path']} -s {CONFIG['settings_base']}"
    )


@task
def reserve(c):
    """Build, then serve."""
    build(c)
    serve(c)


@task
def livereload(c):
    """Serve with live reload: rebuild and refresh the browser when content or theme changes."""
    from livereload import Server

    def cached_build():
        pelican_run(c, f"-s {CONFIG['settings_base']}", offline=True)

    cached_build()
    server = Server()
    for pattern in ("content/**/*", "theme/**/*", "carnival/**/*", "pelicanconf.py"):
        server.watch(pattern, cached_build)
    server.serve(host=CONFIG["host"], port=CONFIG["port"], root=CONFIG["deploy_path"])


@task
def preview(c):
    """Build the production version of the site (publish settings)."""
    pelican_run(c, f"-s {CONFIG['settings_publish']}")


@task(help={"dry_run": "print the rsync command and ask rsync what it would change (-n)"})
def publish(c, dry_run=False):
    """Publish to the server over rsync/ssh."""
    preview(c)
    flags = "-n " if dry_run else ""
    cmd = (
        f"rsync --delete --exclude '.DS_Store' -pthrvz -c {flags}"
        f"-e 'ssh -p {CONFIG['ssh_port']}' {CONFIG['deploy_path']}/ "
        f"{CONFIG['ssh_user']}@{CONFIG['ssh_host']}:{CONFIG['ssh_path']}"
    )
    if dry_run:
        print(f"dry run: {cmd}")
        result = c.run(cmd, warn=True)
        if result is not None and result.failed:
            print("dry run: rsync could not reach the server; nothing was changed")
        return
    c.run(cmd)


@task(help={"dry_run": "build and print the ghp-import command, push nothing"})
def gh_pages(c, dry_run=False):
    """Publish to GitHub Pages with ghp-import."""
    preview(c)
    cmd = (
        f"ghp-import -b {CONFIG['github_pages_branch']} -m {shlex.quote(CONFIG['commit_message'])} "
        f"-n {CONFIG['deploy_path']} -p"
    )
    if dry_run:
        print(f"dry run: {cmd}")
        return
    c.run(cmd)


@task
def golden(c):
    """Regenerate the golden expected output (after an intended change to theme or plugin)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from golden import regenerate_expected

    regenerate_expected()
    print(f"golden: wrote {CONFIG['golden_expected']}")


@task
def pin(c):
    """Re-pin requirements.txt from requirements.in in a throwaway virtual environment."""
    tmp = ROOT / ".pin-venv"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    subprocess.run(
        [str(tmp / "bin/pip"), "install", "-q", "-r", "requirements.in"], check=True, cwd=ROOT
    )
    frozen = subprocess.run(
        [str(tmp / "bin/pip"), "freeze"], check=True, capture_output=True, text=True
    ).stdout
    lines = [line for line in frozen.splitlines() if not line.startswith("pip==")]
    header = "# Pinned, complete set (pip freeze of requirements.in). Regenerate: invoke pin\n"
    (ROOT / "requirements.txt").write_text(header + "\n".join(lines) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


def _carnival_settings(settings_file: str):
    from blog_carnival.errors import ConfigError
    from blog_carnival.settings import read_settings
    from pelican.settings import read_settings as pelican_settings

    try:
        return read_settings(pelican_settings(str(ROOT / settings_file)), ROOT)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(exc.exitcode)


def _load_carnivals(settings):
    """The carnivals, or exit 2 with the list of problems (no traceback for a host's typo)."""
    from blog_carnival import core
    from blog_carnival.errors import ConfigError

    try:
        return core.load(settings)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(exc.exitcode)


@task(
    help={"edition": "<carnival>/<number>, e.g. networking-carnival/3", "settings": "settings file"}
)
def freeze(c, edition, settings="pelicanconf.py"):
    """Resolve an edition from the network and write its <NNN>.lock.json (never drops an entry)."""
    from blog_carnival import core
    from blog_carnival.errors import CarnivalError
    from blog_carnival.progress import fetch_progress
    from blog_carnival.report import render_report

    carnival_settings = _carnival_settings(settings)
    carnivals = _load_carnivals(carnival_settings)
    try:
        carnival, target = core.find_edition(carnivals, edition)
        with fetch_progress() as advance:
            result = core.freeze(carnival_settings, carnival, target, advance)
    except CarnivalError as exc:
        print(f"carnival: {exc}", file=sys.stderr)
        sys.exit(exc.exitcode)
    print(render_report((carnival,), {target.key: result}).text)
    print(f"carnival: wrote {target.lock_path}")


@task
def sample_locks(c):
    """Freeze the sample carnival's editions against the demo blogs in tests/sites/demo.

    The demo blogs are served on 127.0.0.1 (URLs rewritten on the fly); the real pipeline
    fetches, parses and freezes them, and the locks are written back with public URLs.
    """
    import dataclasses
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from blog_carnival import core
    from blog_carnival.report import render_report
    from sites_server import SitesServer, local_carnival

    base = _carnival_settings("pelicanconf.py")
    with SitesServer() as server, tempfile.TemporaryDirectory() as tmp:
        folder = local_carnival(server, base.path, Path(tmp) / "carnival", locks=True)
        settings = dataclasses.replace(
            base,
            path=folder,
            cache_path=Path(tmp) / "cache",
            offline=False,
            allowed_private_hosts=frozenset({"127.0.0.1"}),
        )
        for carnival in _load_carnivals(settings):
            for edition in carnival.editions:
                if edition.external:
                    continue
                result = core.freeze(settings, carnival, edition)
                print(server.to_public(render_report((carnival,), {edition.key: result}).text))
                target = base.path / carnival.slug / edition.lock_path.name
                target.write_text(
                    server.to_public(edition.lock_path.read_text(encoding="utf-8")),
                    encoding="utf-8",
                )
                print(f"carnival: wrote {target.relative_to(ROOT)}")


ns = Collection(
    clean,
    build,
    rebuild,
    regenerate,
    serve,
    reserve,
    livereload,
    preview,
    publish,
    gh_pages,
    golden,
    pin,
)
carnival_tasks = Collection("carnival")
carnival_tasks.add_task(freeze)
carnival_tasks.add_task(sample_locks)
ns.add_collection(carnival_tasks)
