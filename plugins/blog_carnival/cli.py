"""`pelican-carnival`: the host's commands for any Pelican site, reading the site's settings.

    pelican-carnival [-s pelicanconf.py] new <carnival> [--title T] [--submit-email E]
    pelican-carnival edition <carnival> [--title --host-name --host-url --opens --deadline --date]
    pelican-carnival submit <carnival>/<number> <url> [--section S] [--note N] [--pick]
                                                      [--force] [--dry-run]
    pelican-carnival check [<carnival>/<number>]
    pelican-carnival status [<carnival>[/<number>]] [--json]
    pelican-carnival freeze <carnival>/<number>
    pelican-carnival announce <carnival>/<number> [--dry-run] [--resend] [--messages FILE]
    pelican-carnival comments add <post-slug> --author A [--url U] [--email E]
                                  (--text T | --file F | --mail MESSAGE.eml)
    pelican-carnival comments pending | approve <id> | spam <id> | mentions

Each ``run_*`` function is one command: it reads the settings file, calls one function of
``core`` and prints what happened in plain words; it returns the exit code (0 done, 1 refused,
2 a usage or configuration error). A site's Invoke tasks call the same functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import core
from .errors import CarnivalError, UsageError
from .model import Person
from .settings import CarnivalSettings

PUBLISH = "publishconf.py"
DEVELOP = "pelicanconf.py"


class Site:
    """A Pelican settings file, read once, and the carnival settings it gives."""

    def __init__(self, settings_file: str | os.PathLike | None, prefer: str = DEVELOP) -> None:
        from pelican.settings import read_settings as pelican_settings

        from .settings import read_settings

        path = Path(settings_file or _default_settings(prefer))
        if not path.is_file():
            raise UsageError(f"no settings file {path} (use -s to name one)")
        self.path = path
        # Pelican resolves PATH and friends against the settings file's folder; a
        # publishconf.py imports pelicanconf from there, as under `pelican -s`.
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
        quiet = logging.getLogger("pelican.settings")
        level = quiet.level
        try:
            quiet.setLevel(logging.ERROR)  # its warnings are about building, not these commands
            self.pelican = pelican_settings(str(path.resolve()))
        finally:
            quiet.setLevel(level)
        base = Path(self.pelican.get("PATH", path.parent)).resolve().parent
        self.carnival: CarnivalSettings = read_settings(self.pelican, base)

    @property
    def site_url(self) -> str | None:
        url = str(self.pelican.get("SITEURL") or "")
        return url if "://" in url else None

    @property
    def comments_root(self) -> Path:
        """Where comment files live: COMMENTS_PATH under the content folder."""
        return Path(self.pelican["PATH"]) / str(self.pelican.get("COMMENTS_PATH", "comments"))

    def posts(self) -> dict[str, SitePost]:
        """Every published post (and page) by slug, read with Pelican's own readers, and every
        edition hosted here: what comments and mentions may be filed under."""
        from pelican.contents import Article
        from pelican.readers import Readers
        from pelican.utils import get_relative_path  # noqa: F401  (Pelican >= 4.8)

        settings = self.pelican
        readers = Readers(settings)
        content = Path(settings["PATH"])
        excluded = {content / str(x) for x in settings.get("ARTICLE_EXCLUDES", [])}
        excluded.add(self.comments_root)
        found: dict[str, SitePost] = {}
        for folder in settings.get("ARTICLE_PATHS", [""]):
            for path in sorted((content / folder).rglob("*")):
                if (
                    not path.is_file()
                    or path.suffix.lstrip(".") not in readers.extensions
                    or any(path.is_relative_to(x) for x in excluded)
                ):
                    continue
                try:
                    post = readers.read_file(
                        base_path=str(content),
                        path=str(path.relative_to(content)),
                        content_class=Article,
                    )
                except Exception as exc:  # a post Pelican cannot read is Pelican's to report
                    logging.getLogger(__name__).debug("carnival: skipped %s (%s)", path, exc)
                    continue
                if getattr(post, "status", "published") != "published":
                    continue
                found[post.slug] = SitePost(
                    post.slug, str(post.title), f"{post.title}\n{post._content}", post.url
                )
        for carnival in core.load(self.carnival):
            for edition in carnival.editions:
                if edition.external:
                    continue
                slug = f"{carnival.slug}-{edition.number}"
                url = edition.url(self.carnival.urls["CARNIVAL_EDITION_URL"])
                title = carnival.full_title(edition)
                found[slug] = SitePost(slug, title, f"{title}\n{edition.intro}", url)
        return found

    @property
    def organizer(self) -> Person:
        url = self.site_url
        return Person(
            str(self.pelican.get("AUTHOR") or "The organizer"), url + "/" if url else None
        )


@dataclass(frozen=True)
class SitePost:
    slug: str
    title: str
    text: str  # title and body: what the spam rules compare a comment with
    url: str  # site-relative


def _default_settings(prefer: str) -> str:
    if prefer == PUBLISH and Path(PUBLISH).is_file():
        return PUBLISH
    return DEVELOP


def _print(lines: Sequence[str], *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        print(line, file=stream)


def _fail(exc: CarnivalError) -> int:
    text = str(exc)
    print(text if text.startswith("carnival:") else f"carnival: {text}", file=sys.stderr)
    return exc.exitcode


def _command(run: Callable[..., int]) -> Callable[..., int]:
    """A command's refusal or mistake (CarnivalError) becomes one line on stderr and its exit
    code, never a traceback."""

    @functools.wraps(run)
    def guarded(*args, **kwargs) -> int:
        try:
            return run(*args, **kwargs)
        except CarnivalError as exc:
            return _fail(exc)

    return guarded


def _date(value: str | None, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--{name} must be a date like 2027-01-31, got {value!r}") from None


def _progress():
    from rich.console import Console

    from .progress import fetch_progress

    return fetch_progress(Console(stderr=True))


# -- the commands --------------------------------------------------------------------------------


@_command
def run_new(settings_file, carnival: str, *, title=None, submit_email=None) -> int:
    """Write carnival/<carnival>/carnival.toml, commented."""
    site = Site(settings_file)
    path = core.new_carnival(
        site.carnival,
        carnival,
        organizer=site.organizer,
        title=title,
        submit_email=submit_email,
    )
    _print(
        [f"carnival: wrote {path}", "edit its title, description and rules, then add an edition"]
    )
    return 0


@_command
def run_edition(
    settings_file,
    carnival: str,
    *,
    title=None,
    host_name=None,
    host_url=None,
    opens=None,
    deadline=None,
    date=None,
) -> int:
    """Write the carnival's next <NNN>.toml."""
    site = Site(settings_file)
    host = Person(host_name, host_url) if host_name else None
    if host_url and not host_name:
        raise UsageError("--host-url needs --host-name")
    path, edition = core.new_edition(
        site.carnival,
        carnival,
        title=title,
        host=host,
        opens=_date(opens, "opens"),
        deadline=_date(deadline, "deadline"),
        date=_date(date, "date"),
    )
    _print(
        [
            f"carnival: wrote {path}",
            f"  #{edition.number}: {edition.title}, hosted by {edition.host.name}",
            f"  submissions {edition.opens} to {edition.deadline} ({edition.timezone}); "
            f"roundup on {edition.date}",
            "  until then its page is the call for submissions",
        ]
    )
    return 0


@_command
def run_submit(
    settings_file,
    edition: str,
    url: str,
    *,
    section=None,
    note=None,
    pick=False,
    force=False,
    dry_run=False,
) -> int:
    """Read a submitted post and append it to the edition."""
    site = Site(settings_file)
    done = core.submit(
        site.carnival,
        edition,
        url,
        section=section,
        note=note,
        pick=pick,
        force=force,
        dry_run=dry_run,
    )
    _print(done.lines())
    return 0


@_command
def run_check(settings_file, edition: str | None = None) -> int:
    """Validate every carnival file without building."""
    site = Site(settings_file)
    lines = core.check(site.carnival, edition)
    _print(lines)
    return 0


@_command
def run_status(settings_file, which: str | None = None, *, as_json: bool = False) -> int:
    """Where each edition stands: entries, links back, announcements, feeds."""
    from rich.console import Console

    from .status import as_json as to_json
    from .status import render_tables

    site = Site(settings_file, prefer=PUBLISH)
    if as_json:
        statuses = core.status(site.carnival, which, site_url=site.site_url)
    else:
        with _progress() as advance:
            statuses = core.status(site.carnival, which, site_url=site.site_url, progress=advance)
    if as_json:
        print(to_json(statuses))
    else:
        render_tables(statuses, Console(highlight=False))
    return 0


@_command
def run_freeze(settings_file, edition: str) -> int:
    """Resolve an edition and write its lock."""
    from .report import render_report

    site = Site(settings_file)
    carnival, target = core.find_edition(core.load(site.carnival), edition)
    with _progress() as advance:
        result = core.freeze(site.carnival, carnival, target, advance)
    print(render_report((carnival,), {target.key: result}).text)
    print(f"carnival: wrote {target.lock_path}")
    return 0


@_command
def run_announce(settings_file, edition: str, *, dry_run=False, resend=False, messages=None) -> int:
    """Tell every entry of a published edition it is in: Webmention, else a message to send."""
    from .announce import write_messages

    site = Site(settings_file, prefer=PUBLISH)
    with _progress() as advance:
        report = core.announce(
            site.carnival,
            edition,
            site_url=site.site_url,
            dry_run=dry_run,
            resend=resend,
            progress=advance,
        )
    _print(report.lines())
    if report.messages:
        if messages:
            try:
                count = write_messages(report, Path(messages))
            except OSError as exc:
                print(f"carnival: cannot write {messages}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            print(
                f"carnival: wrote {count} message(s) for blogs without a Webmention endpoint to {messages}"
            )
        else:
            print("\nMessages for blogs without a Webmention endpoint (send them by e-mail):")
            for message in report.messages:
                print("\n" + message.text)
    if report.refused:
        return 1
    return 0 if report.ok else 1


# -- comments ------------------------------------------------------------------------------------


@_command
def run_comments_add(
    settings_file,
    post: str,
    *,
    author=None,
    url=None,
    email=None,
    text=None,
    file=None,
    mail=None,
    reply_to=None,
) -> int:
    """File a comment (from --text, --file or an e-mail), judged by the spam rules."""
    from .comments import add_comment, comment_from_email
    from .spam import spam_settings

    sources = [x for x in (text, file, mail) if x]
    if len(sources) != 1:
        raise UsageError("give the comment as exactly one of --text, --file or --mail")
    site = Site(settings_file)
    date = None
    if mail:
        incoming = comment_from_email(_read_bytes(mail), name=str(mail))
        author = author or incoming.author
        email = email or incoming.email
        url = url or incoming.url
        body, date = incoming.text, incoming.date
    else:
        body = text if text else _read_bytes(file).decode("utf-8", "replace")
    if not author:
        raise UsageError("--author is needed (an e-mail gives it from its From line)")
    posts = site.posts()
    result = add_comment(
        site.comments_root,
        post,
        known_slugs={slug: p.text for slug, p in posts.items()},
        author=author,
        text=body,
        url=url,
        email=email,
        reply_to=reply_to,
        now=date or dt.datetime.now(dt.UTC),
        rules=spam_settings(site.pelican),
    )
    _print(result.lines())
    return 0


def _read_bytes(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


@_command
def run_comments_pending(settings_file) -> int:
    """List the comments waiting for the host."""
    from .comments import pending

    site = Site(settings_file)
    waiting = pending(site.comments_root)
    if not waiting:
        print("comments: nothing pending")
    for c in waiting:
        first = " ".join(c.text.split())[:70]
        print(f"{c.id}  {c.post_slug}  {c.author}{' (' + c.kind + ')' if c.kind else ''}: {first}")
    return 0


@_command
def run_comments_status(settings_file, comment_id: str, status: str) -> int:
    """Approve a comment, or mark it spam."""
    from .comments import set_status

    site = Site(settings_file)
    comment = set_status(site.comments_root, comment_id, status)
    print(f"comments: {comment.id} on {comment.post_slug} is now {comment.status}")
    return 0


@_command
def run_comments_mentions(settings_file) -> int:
    """Fetch new Webmentions from WEBMENTION_API, verify each, file them as pending comments."""
    from .mentions import run_mentions
    from .spam import spam_settings

    site = Site(settings_file, prefer=PUBLISH)
    api = site.pelican.get("WEBMENTION_API")
    if not api:
        raise UsageError(
            "set WEBMENTION_API (e.g. https://webmention.io/api/mentions.jf2?domain=...)"
        )
    token_name = str(site.pelican.get("WEBMENTION_TOKEN_ENV", "WEBMENTION_IO_TOKEN"))
    if site.site_url is None:
        raise UsageError("mentions name your public URLs: use the publish settings (SITEURL)")
    posts = site.posts()
    targets = {core.absolute(site.site_url, p.url): slug for slug, p in posts.items()}
    with core.open_fetcher(site.carnival) as client:
        report = run_mentions(
            site.comments_root,
            client,
            str(api),
            os.environ.get(token_name),
            targets=targets,
            known_slugs={slug: p.text for slug, p in posts.items()},
            rules=spam_settings(site.pelican),
            now=dt.datetime.now(dt.UTC),
        )
    _print(report.lines())
    return 0 if report.ok else 1


# -- argument parsing --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pelican-carnival",
        description="Host a blog carnival on a Pelican site: scaffold, take submissions, check, "
        "freeze and announce editions.",
    )
    p.add_argument(
        "-s",
        "--settings",
        help="the site's settings file (default: pelicanconf.py; publishconf.py for status "
        "and announce, which need the public SITEURL)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    c = sub.add_parser("new", help="write carnival/<carnival>/carnival.toml, commented")
    c.add_argument("carnival")
    c.add_argument("--title")
    c.add_argument("--submit-email")

    c = sub.add_parser("edition", help="write the carnival's next <NNN>.toml, commented")
    c.add_argument("carnival")
    for name in ("title", "host-name", "host-url", "opens", "deadline", "date"):
        c.add_argument(f"--{name}")

    c = sub.add_parser("submit", help="read a submitted post and add it to an edition")
    c.add_argument("edition", help="<carnival>/<number>")
    c.add_argument("url")
    c.add_argument("--section")
    c.add_argument("--note")
    c.add_argument("--pick", action="store_true")
    c.add_argument(
        "--force", action="store_true", help="accept a locked edition or a post outside the window"
    )
    c.add_argument("--dry-run", action="store_true", help="show what would be added, write nothing")

    c = sub.add_parser("check", help="validate every carnival file without building")
    c.add_argument("edition", nargs="?")

    c = sub.add_parser("status", help="entries, links back, announcements and feeds per edition")
    c.add_argument("which", nargs="?", help="<carnival> or <carnival>/<number>")
    c.add_argument("--json", action="store_true")

    c = sub.add_parser("freeze", help="resolve an edition and write its <NNN>.lock.json")
    c.add_argument("edition")

    c = sub.add_parser("comments", help="moderate comments: add, pending, approve, spam, mentions")
    verbs = c.add_subparsers(dest="verb", required=True, metavar="verb")
    v = verbs.add_parser("add", help="file a comment, judged by the spam rules")
    v.add_argument("post", help="the post's slug")
    v.add_argument("--author")
    v.add_argument("--url")
    v.add_argument("--email")
    v.add_argument("--reply-to", help="the id of the comment this answers")
    v.add_argument("--text")
    v.add_argument("--file")
    v.add_argument("--mail", help="an e-mail message (.eml) to take the comment from")
    verbs.add_parser("pending", help="list the comments waiting for you")
    for verb in ("approve", "spam"):
        v = verbs.add_parser(
            verb, help=f"{'publish' if verb == 'approve' else 'never publish'} a comment"
        )
        v.add_argument("id")
    verbs.add_parser("mentions", help="fetch, verify and file new Webmentions (WEBMENTION_API)")

    c = sub.add_parser("announce", help="send Webmentions to a published edition's entries")
    c.add_argument("edition")
    c.add_argument("--dry-run", action="store_true")
    c.add_argument("--resend", action="store_true")
    c.add_argument("--messages", help="write the messages for blogs without an endpoint here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    s = args.settings
    match args.command:
        case "new":
            return run_new(s, args.carnival, title=args.title, submit_email=args.submit_email)
        case "edition":
            return run_edition(
                s,
                args.carnival,
                title=args.title,
                host_name=args.host_name,
                host_url=args.host_url,
                opens=args.opens,
                deadline=args.deadline,
                date=args.date,
            )
        case "submit":
            return run_submit(
                s,
                args.edition,
                args.url,
                section=args.section,
                note=args.note,
                pick=args.pick,
                force=args.force,
                dry_run=args.dry_run,
            )
        case "check":
            return run_check(s, args.edition)
        case "status":
            return run_status(s, args.which, as_json=args.json)
        case "freeze":
            return run_freeze(s, args.edition)
        case "comments":
            match args.verb:
                case "add":
                    return run_comments_add(
                        s,
                        args.post,
                        author=args.author,
                        url=args.url,
                        email=args.email,
                        text=args.text,
                        file=args.file,
                        mail=args.mail,
                        reply_to=args.reply_to,
                    )
                case "pending":
                    return run_comments_pending(s)
                case "approve":
                    return run_comments_status(s, args.id, "approved")
                case "spam":
                    return run_comments_status(s, args.id, "spam")
                case "mentions":
                    return run_comments_mentions(s)
        case "announce":
            return run_announce(
                s, args.edition, dry_run=args.dry_run, resend=args.resend, messages=args.messages
            )
    raise AssertionError(args.command)


def entry_point() -> None:
    sys.exit(main())
