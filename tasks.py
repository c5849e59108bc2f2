"""Host tasks (Invoke), in the shape of Pelican's quickstart: build, serve, publish, freeze."""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Collection, Exit, task

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
    """Remove generated files (the output and the content cache)."""
    shutil.rmtree(ROOT / CONFIG["deploy_path"], ignore_errors=True)
    shutil.rmtree(ROOT / "cache", ignore_errors=True)


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
    from blog_carnival.cli import Site
    from blog_carnival.errors import CarnivalError

    try:
        return Site(ROOT / settings_file).carnival
    except CarnivalError as exc:
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


def _done(code: int) -> None:
    """Exit as the command said: 0 done, 1 refused, 2 usage or configuration error."""
    if code:
        raise Exit(code=code)


SETTINGS_HELP = "settings file (default pelicanconf.py)"
EDITION_HELP = "<carnival>/<number>, e.g. networking-carnival/5"


@task(
    help={
        "carnival": "the new carnival's name (a slug)",
        "title": "its title",
        "submit_email": "where bloggers send entries",
        "settings": SETTINGS_HELP,
    }
)
def new(c, carnival, title=None, submit_email=None, settings=None):
    """Write carnival/<carnival>/carnival.toml, commented."""
    from blog_carnival.cli import run_new

    _done(run_new(settings, carnival, title=title, submit_email=submit_email))


@task(
    help={
        "carnival": "the carnival's name",
        "title": "the topic",
        "host_name": "who hosts it (default: the organizer)",
        "host_url": "the host's blog",
        "opens": "first day of submissions, YYYY-MM-DD (default: from the cadence)",
        "deadline": "last day of submissions",
        "date": "publication day of the roundup",
        "settings": SETTINGS_HELP,
    }
)
def edition(
    c,
    carnival,
    title=None,
    host_name=None,
    host_url=None,
    opens=None,
    deadline=None,
    date=None,
    settings=None,
):
    """Write the carnival's next <NNN>.toml, commented; until its date it is a call."""
    from blog_carnival.cli import run_edition

    _done(
        run_edition(
            settings,
            carnival,
            title=title,
            host_name=host_name,
            host_url=host_url,
            opens=opens,
            deadline=deadline,
            date=date,
        )
    )


@task(
    help={
        "edition": EDITION_HELP,
        "url": "the submitted post",
        "section": "one of the edition's sections",
        "note": "Markdown: the host's word on it",
        "pick": "the host's pick",
        "force": "accept a locked edition, or a post dated outside the window",
        "dry_run": "show what would be added, write nothing",
        "settings": SETTINGS_HELP,
    }
)
def submit(
    c, edition, url, section=None, note=None, pick=False, force=False, dry_run=False, settings=None
):
    """Read a submitted post (page, feed) and append it to the edition's TOML."""
    from blog_carnival.cli import run_submit

    _done(
        run_submit(
            settings,
            edition,
            url,
            section=section,
            note=note,
            pick=pick,
            force=force,
            dry_run=dry_run,
        )
    )


@task(
    help={
        "edition": "check one edition only, <carnival>/<number> (default: every file)",
        "settings": SETTINGS_HELP,
    },
)
def check(c, edition="", settings=None):
    """Validate every carnival file, lock and announce record without building."""
    from blog_carnival.cli import run_check

    _done(run_check(settings, edition or None))


@task(
    help={
        "which": "<carnival> or <carnival>/<number> (default: everything)",
        "json": "print JSON for scripts",
        "settings": "settings file (default publishconf.py: links back need the public SITEURL)",
    },
)
def status(c, which="", json=False, settings=None):
    """Per edition: each entry's resolution, link back and announcement; each feed's history."""
    from blog_carnival.cli import run_status

    _done(run_status(settings, which or None, as_json=json))


@task(help={"edition": EDITION_HELP, "settings": SETTINGS_HELP})
def freeze(c, edition, settings=None):
    """Resolve an edition from the network and write its <NNN>.lock.json (never drops an entry)."""
    from blog_carnival.cli import run_freeze

    _done(run_freeze(settings, edition))


@task(
    help={
        "edition": EDITION_HELP,
        "dry_run": "discover endpoints, send and write nothing",
        "resend": "send again to every entry (an update)",
        "messages": "write the messages for blogs without an endpoint to this file",
        "settings": "settings file (default publishconf.py: the roundup's public URL)",
    }
)
def announce(c, edition, dry_run=False, resend=False, messages=None, settings=None):
    """After publishing: a Webmention to every entry, and a message for those without one."""
    from blog_carnival.cli import run_announce

    _done(run_announce(settings, edition, dry_run=dry_run, resend=resend, messages=messages))


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


@task(
    help={
        "post": "the post's slug (its URL's last part), or a roundup's <carnival>-<number>",
        "author": "the commenter's name (an e-mail gives it from its From line)",
        "url": "the commenter's own site",
        "email": "the commenter's address (never published)",
        "text": "the comment, as Markdown",
        "file": "a file holding the comment",
        "mail": "an e-mail message (.eml) to take the comment from",
        "reply_to": "the id of the comment this answers",
        "settings": SETTINGS_HELP,
    }
)
def comments_add(
    c,
    post,
    author=None,
    url=None,
    email=None,
    text=None,
    file=None,
    mail=None,
    reply_to=None,
    settings=None,
):
    """File a comment; the spam rules judge it (spam, pending, or approved when trusted)."""
    from blog_carnival.cli import run_comments_add

    _done(
        run_comments_add(
            settings,
            post,
            author=author,
            url=url,
            email=email,
            text=text,
            file=file,
            mail=mail,
            reply_to=reply_to,
        )
    )


@task(help={"settings": SETTINGS_HELP})
def comments_pending(c, settings=None):
    """List the comments waiting for you."""
    from blog_carnival.cli import run_comments_pending

    _done(run_comments_pending(settings))


@task(help={"id": "the comment's id (see comments.pending)", "settings": SETTINGS_HELP})
def comments_approve(c, id, settings=None):
    """Publish a comment."""
    from blog_carnival.cli import run_comments_status

    _done(run_comments_status(settings, id, "approved"))


@task(help={"id": "the comment's id (see comments.pending)", "settings": SETTINGS_HELP})
def comments_spam(c, id, settings=None):
    """Mark a comment as spam: it is never published."""
    from blog_carnival.cli import run_comments_status

    _done(run_comments_status(settings, id, "spam"))


@task(help={"settings": "settings file (default publishconf.py: your public URLs)"})
def comments_mentions(c, settings=None):
    """Fetch new Webmentions (WEBMENTION_API; token in $WEBMENTION_IO_TOKEN), verify, file them."""
    from blog_carnival.cli import run_comments_mentions

    _done(run_comments_mentions(settings))


DEMO = ROOT / ".demo"
DEMO_TODAY = "2027-01-20"  # edition 5's call is open; edition 3 is built live
DEMO_FAILING = "/hiring-desk.example/feed.json"


@task(
    help={
        "port": "port for the site (default 8000)",
        "blogs_port": "first of five ports for the demo blogs (default 8101)",
        "once": "build and print the addresses, then stop (for checking the demo itself)",
    }
)
def demo(c, port=8000, blogs_port=8101, once=False):
    """Serve the demo blogs on 127.0.0.1, build the site live from them, serve it. Ctrl-C stops."""
    import functools
    import http.server
    import threading

    sys.path.insert(0, str(ROOT / "tests"))
    from sites_server import SitesServer, local_carnival

    shutil.rmtree(DEMO, ignore_errors=True)
    try:
        blogs = SitesServer(first_port=int(blogs_port))
    except OSError as exc:
        raise Exit(
            f"demo: cannot serve the demo blogs on ports {blogs_port}+: {exc}", code=1
        ) from None
    with blogs:
        folder = local_carnival(blogs, ROOT / "carnival", DEMO / "carnival", locks=True)
        (folder / "networking-carnival" / "003.lock.json").unlink()  # built live, not locked
        blogs.fail[DEMO_FAILING] = 503  # one contributor's feed is down: see the report
        conf = DEMO / "democonf.py"
        conf.write_text(
            f"""# Written by `invoke demo`: the site's settings, pointed at the demo blogs.
import sys
sys.path.insert(0, {str(ROOT)!r})
from pelicanconf import *  # noqa: E402,F403

PATH = {str(ROOT / "content")!r}
THEME = {str(ROOT / "theme")!r}
PLUGIN_PATHS = [{str(ROOT / "plugins")!r}]
CARNIVAL_PATH = {str(folder)!r}
CARNIVAL_CACHE_PATH = {str(DEMO / "cache")!r}
CARNIVAL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
CARNIVAL_TODAY = {DEMO_TODAY!r}
""",
            encoding="utf-8",
        )
        print(
            f"demo: five contributor blogs on http://127.0.0.1:{blogs_port}..{int(blogs_port) + 4}"
        )
        print(f"demo: the feed {blogs.url_of(DEMO_FAILING)} fails on purpose (HTTP 503)")
        print("demo: building the site, edition 3 fetched live from the blogs ...")
        pelican_run(c, f"-s {shlex.quote(str(conf))}", output=str(DEMO / "output"))

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=str(DEMO / "output"))
        try:
            site = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
        except OSError as exc:
            raise Exit(f"demo: cannot serve the site on port {port}: {exc}", code=1) from None
        base = f"http://127.0.0.1:{port}"
        post = blogs.url("follow-up-notes.example", "/2027/01/thank-you-after-the-offer.html")
        print(
            f"""
demo: open {base}/
  the call for submissions  {base}/carnival/networking-carnival/5/
  a roundup fetched live    {base}/carnival/networking-carnival/3/
  the carnival's editions   {base}/carnival/networking-carnival/
  (today is {DEMO_TODAY} in the demo; the build's report above names the failing feed)

Try a submission in another terminal, then see where the edition stands:
  .venv/bin/invoke carnival.submit networking-carnival/5 {post} --settings {conf.relative_to(ROOT)}
  .venv/bin/invoke carnival.status -w networking-carnival/5 --settings {conf.relative_to(ROOT)}

Ctrl-C stops the blogs and the site."""
        )
        with site:
            thread = threading.Thread(target=site.serve_forever, daemon=True)
            thread.start()
            try:
                if not once:
                    threading.Event().wait()
            except KeyboardInterrupt:
                print("\ndemo: stopped")
            finally:
                site.shutdown()


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
    demo,
)
carnival_tasks = Collection("carnival")
for _task in (new, edition, submit, check, status, freeze, announce, sample_locks):
    carnival_tasks.add_task(_task)
ns.add_collection(carnival_tasks)
comment_tasks = Collection("comments")
for _name, _task in (
    ("add", comments_add),
    ("pending", comments_pending),
    ("approve", comments_approve),
    ("spam", comments_spam),
    ("mentions", comments_mentions),
):
    comment_tasks.add_task(_task, name=_name)
ns.add_collection(comment_tasks)
