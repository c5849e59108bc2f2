"""Development settings: relative links, complete site with every feed."""

import logging
import os

AUTHOR = "Marisol Quint"
SITENAME = "The Warm Introduction"
SITESUBTITLE = "Plain advice on networking for a job search"
SITEURL = ""

PATH = "content"
PAGE_PATHS = ["pages"]
ARTICLE_PATHS = ["posts"]
STATIC_PATHS = ["extra"]
EXTRA_PATH_METADATA = {"extra/robots.txt": {"path": "robots.txt"}}
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
DEFAULT_DATE_FORMAT = "%B %-d, %Y"

THEME = "theme"
# Autoescape everything our templates print; trusted HTML (our own Markdown) is marked |safe.
JINJA_ENVIRONMENT = {
    "autoescape": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "extensions": [],
}

# Permanent URLs: dates and slugs never change, so feed ids never change.
ARTICLE_URL = "{date:%Y}/{date:%m}/{slug}.html"
ARTICLE_SAVE_AS = ARTICLE_URL
PAGE_URL = "{slug}/"
PAGE_SAVE_AS = "{slug}/index.html"
CATEGORY_URL = "category/{slug}/"
CATEGORY_SAVE_AS = "category/{slug}/index.html"
TAG_URL = "tag/{slug}/"
TAG_SAVE_AS = "tag/{slug}/index.html"
AUTHOR_URL = "author/{slug}/"
AUTHOR_SAVE_AS = "author/{slug}/index.html"
YEAR_ARCHIVE_URL = "{date:%Y}/"
YEAR_ARCHIVE_SAVE_AS = "{date:%Y}/index.html"
MONTH_ARCHIVE_URL = "{date:%Y}/{date:%m}/"
MONTH_ARCHIVE_SAVE_AS = "{date:%Y}/{date:%m}/index.html"
ARCHIVES_URL = "archives/"
ARCHIVES_SAVE_AS = "archives/index.html"
CATEGORIES_URL = "categories/"
CATEGORIES_SAVE_AS = "categories/index.html"
TAGS_URL = "tags/"
TAGS_SAVE_AS = "tags/index.html"
AUTHORS_URL = "authors/"
AUTHORS_SAVE_AS = "authors/index.html"
DIRECT_TEMPLATES = ["index", "archives", "categories", "tags", "authors", "404"]
PAGINATED_TEMPLATES = {"index": None, "tag": None, "category": None, "author": None}
DEFAULT_PAGINATION = 6
PAGINATION_PATTERNS = (
    (1, "{url}", "{save_as}"),
    (2, "{base_name}/page/{number}/", "{base_name}/page/{number}/index.html"),
)

# Feeds: on in development too, full content, per category and per tag.
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
CATEGORY_FEED_ATOM = "feeds/category/{slug}.atom.xml"
CATEGORY_FEED_RSS = "feeds/category/{slug}.rss.xml"
TAG_FEED_ATOM = "feeds/tag/{slug}.atom.xml"
TAG_FEED_RSS = "feeds/tag/{slug}.rss.xml"
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
TRANSLATION_FEED_RSS = None
FEED_ALL_JSON = "feeds/all.json"  # JSON Feed 1.1, written by the carnival plugin
FEED_MAX_ITEMS = None
RSS_FEED_SUMMARY_ONLY = False

MENUITEMS = (("Archives", "archives/"), ("Carnivals", "carnival/"))
DISPLAY_PAGES_ON_MENU = True
DISPLAY_CATEGORIES_ON_MENU = False

PLUGIN_PATHS = ["plugins"]
# neighbors (pelican-neighbors): each post's newer/older post, found once per build.
# content_cache: one content cache per settings fingerprint (see below);
# template_cache: compiled templates kept in cache/templates/ while their source is the same;
# url_memo: each post's, page's and tag's URL worked out once while the pages are written.
# sitemap (pelican-sitemap): sitemap.xml of every page written, roundups included;
# sitemap_dates: undated pages get the newest content's date, so a rebuild is identical.
PLUGINS = [
    "blog_carnival",
    "neighbors",
    "content_cache",
    "template_cache",
    "url_memo",
    "sitemap",
    "sitemap_dates",
]
SITEMAP = {"format": "xml", "exclude": [r"^404\.html$"]}

# Carnival host (defaults live in plugins/blog_carnival/settings.py).
CARNIVAL_PATH = "carnival"
CARNIVAL_CACHE_PATH = ".carnival-cache"
CARNIVAL_OFFLINE = os.environ.get("CARNIVAL_OFFLINE", "") not in ("", "0", "false")
CARNIVAL_STRICT = os.environ.get("CARNIVAL_STRICT", "") not in ("", "0", "false")
CARNIVAL_TIMEOUT = 10
CARNIVAL_MAX_BYTES = 10 * 1024 * 1024
CARNIVAL_CONCURRENCY = 200
CARNIVAL_USER_AGENT = "WarmIntroductionCarnival/1.0 (+https://warm-introduction.example/carnival/)"
CARNIVAL_ALLOWED_PRIVATE_HOSTS = []
# Our theme places the entry note itself (article.html) and styles the carnival in style.css.
CARNIVAL_BADGE = "theme"
CARNIVAL_STYLESHEET = ""

DELETE_OUTPUT_DIRECTORY = False
RELATIVE_URLS = True

# Content cache for a host's repeated builds (publishconf.py builds from scratch): what the
# readers made of each file (HTML and metadata), reused while the file's bytes are the same.
# Articles are made anew from it every build, so plugins' additions to them are never stale;
# content_cache keeps the cache under cache/<settings fingerprint>/ so a changed setting or
# package release starts a fresh one. The theme renders every build; only its compiled
# templates are kept (template_cache), and a template whose source changed is compiled again.
CACHE_CONTENT = True
LOAD_CONTENT_CACHE = True
CONTENT_CACHING_LAYER = "reader"
CHECK_MODIFIED_METHOD = "sha256"
CACHE_PATH = "cache"

# The conversation under posts (comments as files in content/comments/<post-slug>/<id>.md,
# moderated with `invoke comments.*`; defaults in plugins/blog_carnival/settings.py).
COMMENTS_ENABLED = True
COMMENTS_EMAIL = "letters@warm-introduction.example"
COMMENTS_TRUSTED = ["marisol@warm-introduction.example"]
# Webmentions: advertised on posts and roundups; `invoke comments.mentions` reads new ones from
# the service's JF2 API with the token in $WEBMENTION_IO_TOKEN (never in a file).
WEBMENTION_ENDPOINT = "https://webmention.io/warm-introduction.example/webmention"
WEBMENTION_API = "https://webmention.io/api/mentions.jf2?domain=warm-introduction.example"

# Development builds have no SITEURL on purpose (relative links): Pelican's warning about feeds
# without one is expected here, and publishconf.py sets SITEURL.
LOG_FILTER = [
    (
        logging.WARNING,
        "Feeds generated without SITEURL or FEED_DOMAIN set properly may not be valid",
    )
]
