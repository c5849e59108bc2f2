"""The thin layer between the carnival core and Pelican: signals, Articles, the writer.

- initialized: read settings and carnival files once; a bad file stops the build.
- generator_init: the plugin's templates become the fallback after the theme's, so a
  theme overrides any of them by shipping a template of the same name.
- article_generator_pretaxonomy: resolve editions (locks, else fetch through the cache),
  add each hosted roundup as an Article (so it is in the index, archives and feeds),
  and mark our posts that were carnival entries.
- get_generators: CarnivalGenerator writes the carnival indexes, edition feeds and OPML
  through Pelican's Writer.
- finalized: print the report; in strict mode a failed feed fails the build.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from markupsafe import Markup
from pelican import signals
from pelican.contents import Article
from pelican.generators import Generator
from pelican.log import console
from pelican.urlwrappers import Author, Category, Tag
from pelican.utils import order_content

from . import core
from .comments import load_comments
from .conversation import conversation
from .errors import ConfigError, StrictModeError
from .jsonfeed import JsonFeedItem, json_feed
from .model import Carnival, EditionResult
from .progress import fetch_progress
from .render import (
    TEMPLATES,
    badge_html,
    body_environment,
    call_html,
    call_summary_html,
    carnival_view,
    edition_view,
    entry_notice,
    roundup_html,
    summary_html,
)
from .report import render_report
from .settings import CarnivalSettings, CommentsSettings, read_comments_settings, read_settings

logger = logging.getLogger(__name__)
STATE_KEY = "_carnival_state"


@dataclass
class BuildState:
    """Everything the carnival learned in this build, shared through Pelican's context."""

    settings: CarnivalSettings
    carnivals: tuple[Carnival, ...]
    comments: CommentsSettings
    results: dict[str, EditionResult] = field(default_factory=dict)
    articles: dict[str, list[Article]] = field(default_factory=dict)  # carnival slug -> roundups
    views: dict = field(default_factory=dict)
    env: object = None  # the Jinja environment the bodies are rendered with
    conversations: dict = field(default_factory=dict)  # slug -> (article, Conversation)
    to_fetch: list = field(default_factory=list)  # (carnival, edition) without a lock
    pending: core.Resolving | None = None  # being resolved while Pelican reads posts
    tidying: core.Resolving | None = None  # resolved; its caches closing while Pelican writes
    showing: ExitStack = field(default_factory=ExitStack)  # the fetch progress bar meanwhile

    def __reduce__(self) -> tuple:
        """Pickled as None. Pelican's content cache pickles the Tag, Category and Author
        objects its readers make, and each keeps the settings this state lives in; one
        build's state (its Jinja environment and articles do not pickle) is not cached."""
        return (type(None), ())


def on_initialized(pelican) -> None:
    """Read settings and carnival files once. A host's mistake stops the build with the
    list of problems (file and field each) and exit code 2, not a traceback."""
    base = Path(pelican.settings.get("PATH", ".")).resolve().parent
    try:
        settings = read_settings(pelican.settings, base)
        carnivals = core.load(settings)
    except ConfigError as exc:
        console.print(str(exc), soft_wrap=True, markup=False, highlight=False)
        raise SystemExit(exc.exitcode) from None
    pelican.settings[STATE_KEY] = BuildState(
        settings=settings, carnivals=carnivals, comments=read_comments_settings(pelican.settings)
    )


def on_generator_init(generator) -> None:
    """Look for templates in the theme first, then in the plugin (then Pelican's `simple`)."""
    loader = generator.env.loader
    ours = FileSystemLoader(str(TEMPLATES))
    if isinstance(loader, ChoiceLoader):
        if not any(getattr(x, "searchpath", None) == ours.searchpath for x in loader.loaders):
            loader.loaders.insert(1, ours)
    else:
        generator.env.loader = ChoiceLoader([loader, ours])
    state: BuildState | None = generator.settings.get(STATE_KEY)
    if state is not None:
        generator.context["CARNIVAL_STYLESHEET_URL"] = _stylesheet(generator.settings, state)


def _stylesheet(settings, state: BuildState) -> str | None:
    """Where the plugin's stylesheet is served, under the theme's static output folder (None
    when the site turned it off)."""
    name = state.settings.stylesheet
    return f"{settings.get('THEME_STATIC_DIR', 'theme')}/{name}" if name else None


def on_articles_init(generator) -> None:
    """Find the editions to resolve once per build (Pelican's autoreload runs many builds on
    one instance). On a rebuild, start resolving them now, so that the feeds are revalidated
    while Pelican reads the site's posts, not after: that work goes to worker processes. A
    first build's fetching and parsing would fight Pelican's reading for this process and
    the cores (measured: slower than one after the other), so it waits for pretaxonomy."""
    state: BuildState | None = generator.settings.get(STATE_KEY)
    if state is None:
        return
    state.results, state.to_fetch = core.from_locks(state.carnivals, state.settings.today)
    state.pending = None
    if state.to_fetch:
        # The heap built so far is left out of garbage collection now, as resolving does
        # (``core.Resolving``, which ends it): else a full collection fell just here, before
        # the first request, 20-32 ms of a 200-feed build (none in the site's own build).
        gc.freeze()
    if state.to_fetch and core.mostly_stored(state.settings, state.to_fetch):
        advance = state.showing.enter_context(fetch_progress(console))
        state.pending = core.start_resolving(state.settings, state.to_fetch, advance)


def on_pretaxonomy(generator) -> None:
    state: BuildState | None = generator.settings.get(STATE_KEY)
    if state is None:
        return
    today = state.settings.today
    state.env = body_environment(generator.env)
    if state.pending is not None:
        try:
            state.results.update(state.pending.result())
        finally:
            state.tidying, state.pending = state.pending, None
            state.showing.close()
    elif state.to_fetch:
        with fetch_progress(console) as advance:
            state.tidying = core.start_resolving(state.settings, state.to_fetch, advance)
            state.results.update(state.tidying.result())
    by_key = {}
    for carnival in state.carnivals:
        view = carnival_view(carnival, state.settings.urls, today)
        state.views[carnival.slug] = view
        articles = []
        for edition in carnival.editions:
            by_key[edition.key] = (carnival, edition)
            if edition.external:
                continue
            if edition.is_call(today):
                articles.append(_call_article(generator, state, carnival, edition, view))
            else:
                articles.append(_roundup_article(generator, state, carnival, edition, view))
        state.articles[carnival.slug] = articles
        generator.articles.extend(articles)
    generator.articles = order_content(generator.articles, generator.settings["ARTICLE_ORDER_BY"])
    _mark_entries(generator.articles + generator.hidden_articles, by_key, state)
    if state.comments.enabled:
        _attach_conversations(generator.articles, state)


def _attach_conversations(articles, state: BuildState) -> None:
    """Each post's approved comments and mentions, read once per build (set on every post:
    a post from Pelican's content cache must not keep last build's)."""
    found = load_comments(state.comments.path, known_slugs={a.slug for a in articles})
    for problem in found.problems:
        logger.warning("comments: %s", problem)
    for article in articles:
        conv = conversation(found.for_post(article.slug))
        article.conversation = conv
        article.comment_count_text = conv.count_text
        if state.comments.feed_atom and conv.count:
            article.comments_feed = state.comments.feed_atom.format(slug=article.slug)
        else:
            article.comments_feed = None
        state.conversations[article.slug] = (article, conv)


def _edition_article(generator, state, carnival, edition, view, *, content, **metadata) -> Article:
    """An edition as a Pelican Article at its own URL: in post lists, archives and feeds.

    Pelican's themes print titles unescaped and its feeds strip tags from them, treating them
    as HTML: the host's plain-text title is escaped once, as Markup, so it shows as written in
    any theme (an autoescaping one does not escape it again) and in feeds."""
    settings = generator.settings
    urls = state.settings.urls
    article = Article(
        content,
        metadata={
            "slug": f"{carnival.slug}-{edition.number}",
            "category": Category(settings.get("CARNIVAL_CATEGORY", "Carnival"), settings),
            "tags": [Tag(carnival.title, settings)],
            "author": Author(edition.host.name, settings),
            "authors": [Author(edition.host.name, settings)],
            "url": edition.url(urls["CARNIVAL_EDITION_URL"]),
            "save_as": urls["CARNIVAL_EDITION_SAVE_AS"].format(
                carnival=carnival.slug, number=edition.number
            ),
            "status": "published",
            **metadata,
        },
        settings=settings,
        source_path=str(edition.path),
        context=generator.context,
    )
    article.carnival = view
    article.edition = edition_view(view, edition)
    return article


def _roundup_article(generator, state, carnival, edition, view) -> Article:
    result = state.results[edition.key]
    eview = edition_view(view, edition)
    return _edition_article(
        generator,
        state,
        carnival,
        edition,
        view,
        content=roundup_html(carnival, edition, result, state.env),
        title=Markup.escape(eview.full_title),
        date=eview.date,
        summary=summary_html(carnival, edition, result),
        template="roundup",
    )


def _call_article(generator, state, carnival, edition, view) -> Article:
    """Until its date, the edition's URL is a call for submissions. Its date is the day the
    window opens, so its feed id differs from the roundup's that later takes the URL."""
    call = next(c for c in view.calls if c.number == edition.number)
    article = _edition_article(
        generator,
        state,
        carnival,
        edition,
        view,
        content=call_html(call, state.env),
        title=Markup.escape(f"Call for submissions: {call.full_title}"),
        date=dt.datetime.combine(edition.opens, dt.time(9, 0), tzinfo=dt.UTC),
        summary=call_summary_html(call),
        template="call",
    )
    article.call = call
    return article


def _mark_entries(articles, by_key, state: BuildState) -> None:
    """Posts with `Carnival: <carnival>/<number>` say so and link to the roundup.

    Set (or cleared) on every post in every build: with Pelican's content cache an Article
    comes back from the last build with the attributes it had then.
    """
    placement = state.settings.badge
    site_url = str(articles[0].settings.get("SITEURL") or "") if articles else ""
    for article in articles:
        if hasattr(article, "edition"):  # a roundup or call of ours
            continue
        notice = None
        ref = article.metadata.get("carnival")
        found = by_key.get(ref.strip().strip("/")) if isinstance(ref, str) else None
        if isinstance(ref, str) and found is None:
            logger.warning(
                "carnival: %s names carnival %r, which no carnival/ file defines",
                article.source_path,
                ref,
            )
        if found is not None:
            carnival, edition = found
            url = edition.url(state.settings.urls["CARNIVAL_EDITION_URL"])
            notice = entry_notice(carnival, edition, url, edition.external)
        article.carnival_entry = notice
        article.carnival_badge = (
            badge_html(_linkable(notice, site_url), state.env) if notice else None
        )
        if placement == "end":
            _append_badge(article)


def _linkable(notice: dict, site_url: str) -> dict:
    """The badge is rendered once per post and may travel in feeds: its link is absolute under
    SITEURL, or root-relative when there is none (development)."""
    if notice["external"]:
        return notice
    return {**notice, "url": f"{site_url.rstrip('/')}/{notice['url']}"}


def _append_badge(article) -> None:
    """Default placement for themes that do not place `article.carnival_badge` themselves:
    at the end of the post's content (so feeds carry it too). Always rebuilt from the post's
    own content, never appended twice."""
    own = getattr(article, "_carnival_own_content", None)
    if own is None:
        own = article._carnival_own_content = article._content
    article._content = own + (article.carnival_badge or "")


class CarnivalGenerator(Generator):
    """Writes what is not an Article: carnival indexes, edition feeds, OPML, the site's JSON
    Feed and the comment feeds."""

    def generate_context(self) -> None:
        pass

    def generate_output(self, writer) -> None:
        state: BuildState | None = self.settings.get(STATE_KEY)
        if state is None:
            return
        if state.comments.feed_all_json:
            articles = list(self.context.get("articles", []))
            self._write_json_feed(writer, articles, state.comments.feed_all_json, None)
        if state.comments.enabled:
            self._write_comment_feeds(writer, state)
        if not state.carnivals:
            return
        self._write_carnivals(writer, state)

    def _write_json_feed(self, writer, elements, path: str, title: str | None) -> None:
        """JSON Feed 1.1 from the very items Pelican's Atom writer makes: the same ids, links,
        dates and full content (the Atom feed object is built, not written, then converted)."""
        atom = _atom_feed(writer, list(elements), self.context, path, title)
        items = [
            JsonFeedItem(
                id=item["unique_id"],
                url=item["link"],
                title=item["title"],
                content_html=item.get("content") or item.get("description") or "",
                summary=Markup(item["description"]).striptags()
                if item.get("description")
                else None,
                date_published=item.get("pubdate"),
                date_modified=item.get("updateddate"),
                authors=(str(item["author_name"]),) if item.get("author_name") else (),
                tags=tuple(str(c) for c in item.get("categories") or ()),
            )
            for item in atom.items
        ]
        site = str(self.settings.get("SITEURL") or "")
        domain = str(self.settings.get("FEED_DOMAIN") or site)
        text = json_feed(
            title=atom.feed["title"],
            items=items,
            home_page_url=f"{site}/" if site else None,
            feed_url=f"{domain}/{path}" if domain else None,
            description=self.settings.get("SITESUBTITLE"),
            language=self.settings.get("DEFAULT_LANG"),
        )
        writer.write_file(path, _RAW, self.context, relative_urls=False, text=text)

    def _write_comment_feeds(self, writer, state: BuildState) -> None:
        """An Atom feed of each post's comments (posts that have some) and of every comment."""
        everything = []
        for article, conv in state.conversations.values():
            items = [_CommentItem(article, view) for view in reversed(conv.flat())]
            everything.extend(items)
            if article.comments_feed:
                title = Markup("Comments on ") + Markup(article.title)
                writer.write_feed(items, self.context, article.comments_feed, feed_title=title)
        if state.comments.feed_all_atom:
            everything.sort(key=lambda item: item.date, reverse=True)
            writer.write_feed(
                everything, self.context, state.comments.feed_all_atom, feed_title="Comments"
            )

    def _write_carnivals(self, writer, state: BuildState) -> None:
        urls = state.settings.urls
        stylesheet = _stylesheet(self.settings, state)
        theme_has_one = (Path(self.theme) / "static" / state.settings.stylesheet).is_file()
        if stylesheet and not theme_has_one:
            writer.write_file(
                stylesheet,
                state.env.get_template("carnival.css"),
                self.context,
                relative_urls=False,
            )
        views = [state.views[c.slug] for c in state.carnivals if c.slug in state.views]
        writer.write_file(
            urls["CARNIVALS_SAVE_AS"],
            self.get_template("carnivals"),
            self.context,
            relative_urls=self.settings["RELATIVE_URLS"],
            carnivals=views,
            url=urls["CARNIVALS_URL"],
        )
        for carnival in state.carnivals:
            view = state.views[carnival.slug]
            writer.write_file(
                urls["CARNIVAL_SAVE_AS"].format(carnival=carnival.slug),
                self.get_template("carnival_index"),
                self.context,
                relative_urls=self.settings["RELATIVE_URLS"],
                carnival=view,
                editions_by_year=view.editions_by_year,
                url=view.url,
            )
            roundups = sorted(
                state.articles.get(carnival.slug, []), key=lambda a: a.date, reverse=True
            )
            for feed_type, path in (("atom", view.atom_url), ("rss", view.rss_url)):
                writer.write_feed(
                    roundups, self.context, path, feed_type=feed_type, feed_title=carnival.title
                )
            if view.json_url:
                self._write_json_feed(writer, roundups, view.json_url, carnival.title)
            writer.write_file(
                view.opml_url,
                state.env.get_template("carnival_contributors.opml"),
                self.context,
                relative_urls=False,
                carnival=view,
                contributors=carnival.contributors,
            )


_RAW = Environment(autoescape=False).from_string("{{ text }}")


def _atom_feed(writer, elements, context, path: str, title: str | None):
    """The Atom feed object Pelican's ``Writer.write_feed`` builds for ``elements``, without
    writing it (the same steps, through the writer's own item builder, so ids match)."""
    writer.site_url = context.get("SITEURL", "")
    writer.feed_domain = context.get("FEED_DOMAIN")
    writer.feed_url = writer.urljoiner(writer.feed_domain, path)
    feed = writer._create_new_feed("atom", title, context)
    for element in elements[: writer.settings["FEED_MAX_ITEMS"]]:
        writer._add_item_to_the_feed(feed, element)
    return feed


class _CommentItem:
    """An approved comment as Pelican's feed writer wants an item."""

    def __init__(self, article, view) -> None:
        self.title = Markup.escape(f"{view.author} on ") + Markup(article.title)
        self.url = f"{article.url}#{view.anchor}"
        self.date = view.date
        self.author = view.author
        self.summary = None
        self._html = str(view.html)

    def get_content(self, site_url: str) -> str:
        return self._html


def get_generators(pelican):
    return CarnivalGenerator


def on_finalized(pelican) -> None:
    state: BuildState | None = pelican.settings.get(STATE_KEY)
    if state is None:
        return
    if state.tidying is not None:  # the caches' last writes, the feed log
        state.tidying.finish()
        state.tidying = None
    if not state.carnivals:
        return
    report = render_report(state.carnivals, state.results, state.settings.today)
    console.print(report.text, soft_wrap=True, markup=False, highlight=False)
    for line in report.failures:
        logger.warning("carnival: %s", line)
    if state.settings.strict and report.failures:
        raise StrictModeError(f"carnival: strict mode: {len(report.failures)} feed failure(s)")


def register() -> None:
    signals.initialized.connect(on_initialized)
    signals.generator_init.connect(on_generator_init)
    signals.article_generator_init.connect(on_articles_init)
    signals.article_generator_pretaxonomy.connect(on_pretaxonomy)
    signals.get_generators.connect(get_generators)
    signals.finalized.connect(on_finalized)
