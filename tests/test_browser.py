"""The built site in a real browser: pages load, nothing fails, nothing leaves 127.0.0.1.

Serves the site built by the ``built_site`` fixture over HTTP on 127.0.0.1, drives Debian's
headless Chromium through Playwright, and saves full-page screenshots (desktop and phone) of
the front page, a post and, when there is one, a roundup into ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.site]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@dataclass
class Server:
    """A static file server for one folder on 127.0.0.1, on a port the OS picks."""

    root: Path
    httpd: http.server.ThreadingHTTPServer = field(init=False)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@dataclass
class Visit:
    """Everything that went wrong while one page loaded."""

    url: str
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        if self.status != 200:
            out.append(f"{self.url}: HTTP status {self.status}")
        out += [f"{self.url}: console error: {text}" for text in self.console_errors]
        out += [f"{self.url}: failed request: {text}" for text in self.failed_requests]
        out += [f"{self.url}: request to another host: {u}" for u in self.foreign_requests]
        return out


def visit(page, url: str) -> Visit:
    """Load ``url`` in ``page`` and record console errors, failures and foreign requests."""
    record = Visit(url)

    def on_console(msg):
        if msg.type == "error":
            record.console_errors.append(msg.text)

    def on_request_failed(request):
        record.failed_requests.append(f"{request.url} ({request.failure})")

    def on_response(response):
        if response.status >= 400:
            record.failed_requests.append(f"{response.url} (HTTP {response.status})")

    def on_route(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            record.foreign_requests.append(route.request.url)
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: record.console_errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    page.route("**/*", on_route)
    try:
        response = page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        record.status = response.status if response else None
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("requestfailed", on_request_failed)
        page.remove_listener("response", on_response)
        page.unroute("**/*")
    return record


def h1_count(page) -> int:
    return page.locator("h1").count()


def first_post_url(page, server: Server) -> str | None:
    """The first post linked from the page that is an ordinary post (not a roundup)."""
    for href in page.locator("main .post-title a").evaluate_all("els => els.map(e => e.href)"):
        path = urlsplit(href).path.lstrip("/")
        file = server.root / (path + "index.html" if path.endswith("/") or not path else path)
        if file.is_file() and "roundup-page" not in file.read_text(encoding="utf-8"):
            return href
    return None


def find_roundup(site: Path) -> Path | None:
    """A page rendered with roundup.html (its body carries the roundup-page class)."""
    for path in sorted(site.rglob("*.html")):
        if 'class="single roundup-page"' in path.read_text(encoding="utf-8", errors="replace"):
            return path
    return None


def site_url(server: Server, path: Path) -> str:
    rel = path.relative_to(server.root).as_posix()
    if rel.endswith("index.html"):
        rel = rel[: -len("index.html")]
    return urljoin(server.url, rel)


def screenshot(browser, url: str, name: str) -> list[Path]:
    """Full-page screenshots of ``url`` at desktop and phone widths; returns the files."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for label, viewport, scale in (("desktop", DESKTOP, 1), ("phone", PHONE, 2)):
        context = browser.new_context(viewport=viewport, device_scale_factor=scale)
        try:
            page = context.new_page()
            record = visit(page, url)
            assert not record.problems(), "\n".join(record.problems())
            target = SCREENSHOTS / f"{name}-{label}.png"
            page.screenshot(path=str(target), full_page=True)
            shots.append(target)
        finally:
            context.close()
    return shots


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def server(built_site: Path) -> Iterator[Server]:
    srv = Server(built_site)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        pytest.fail(f"playwright is not installed: {exc}")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield context.new_page()
    finally:
        context.close()


# ---------------------------------------------------------------- tests


def test_front_page_and_a_post_load_cleanly(server: Server, page) -> None:
    home = visit(page, server.url)
    assert not home.problems(), "\n".join(home.problems())
    assert h1_count(page) == 1, "the front page needs exactly one h1"
    assert page.locator("main .date-header").count() >= 1, "posts are grouped under date headers"

    post_url = first_post_url(page, server)
    assert post_url, "the front page links to no post"
    post = visit(page, post_url)
    assert not post.problems(), "\n".join(post.problems())
    assert h1_count(page) == 1, f"{post_url} needs exactly one h1"
    assert page.locator("main .post-body").count() == 1


def test_every_nav_link_loads(server: Server, page) -> None:
    visit(page, server.url)
    links = page.locator(".site-nav a").evaluate_all("els => els.map(e => e.href)")
    links = [u for u in links if urlsplit(u).hostname == "127.0.0.1"]
    assert links, "the main navigation has no links to the site's own pages"
    problems = []
    for link in dict.fromkeys(links):
        record = visit(page, link)
        problems += record.problems()
        if record.status == 200 and h1_count(page) != 1:
            problems.append(f"{link}: {h1_count(page)} h1 elements, expected 1")
        current = page.locator('.site-nav a[aria-current="page"]').count()
        if record.status == 200 and current != 1:
            problems.append(f"{link}: {current} nav links marked aria-current=page, expected 1")
    assert not problems, "\n".join(problems)


def test_skip_link_moves_to_main(server: Server, page) -> None:
    visit(page, server.url)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == "#main", "the first Tab stop is the skip link"
    assert page.locator("main#main").count() == 1


def test_phone_layout_puts_first_paragraph_above_the_fold(server: Server, browser) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    try:
        page = context.new_page()
        visit(page, server.url)
        post_url = first_post_url(page, server)
        assert post_url
        record = visit(page, post_url)
        assert not record.problems(), "\n".join(record.problems())
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        top = page.locator("main .post-body p").first.bounding_box()["y"]
        assert top < PHONE["height"] * 0.6, f"first paragraph starts {top:.0f}px down on a phone"
    finally:
        context.close()


def test_screenshots(server: Server, browser, page, built_site: Path) -> None:
    visit(page, server.url)
    post_url = first_post_url(page, server)
    assert post_url
    targets = {"index": server.url, "post": post_url}
    roundup = find_roundup(built_site)
    if roundup is not None:
        targets["roundup"] = site_url(server, roundup)
    saved = []
    for name, url in targets.items():
        saved += screenshot(browser, url, name)
    for path in saved:
        assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_a_post_with_comments_shows_the_conversation(server: Server, browser, page) -> None:
    url = urljoin(server.url, "2026/05/who-pays-for-coffee.html")
    record = visit(page, url)
    assert not record.problems(), "\n".join(record.problems())
    assert page.locator("#comments h2").inner_text() == "3 comments"
    # replies sit inside their parent, indented
    reply = page.locator(".comment-replies .comment")
    assert reply.count() == 1
    parent_box = page.locator(".comment-list > .comment").first.bounding_box()
    reply_box = reply.first.bounding_box()
    assert reply_box["x"] > parent_box["x"]
    assert page.locator(".comment-author a[rel='ugc nofollow']").count() >= 1
    mail = page.locator("a.reply-by-email").get_attribute("href")
    assert mail.startswith("mailto:") and "subject=Re%3A%20Who%20Pays" in mail
    body = page.locator("main").inner_text()
    assert "Jun Park" not in body and "jobs-jobs-now" not in body  # pending and spam
    # following a comment's own link lands on it
    page.locator(".comment-link").first.click()
    assert page.evaluate("location.hash").startswith("#comment-")
    screenshot(browser, url, "post-with-comments")
