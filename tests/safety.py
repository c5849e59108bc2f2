"""What "nothing executable" means for the built site, checked on parsed markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

FORBIDDEN_TAGS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "svg",
    "math",
    "link-in-body",
}
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "poster",
    "background",
    "cite",
    "data",
    "srcset",
    "ping",
    "manifest",
    "codebase",
}


class _Checker(HTMLParser):
    def __init__(self, where: str):
        super().__init__(convert_charrefs=True)
        self.where = where
        self.problems: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        self._check(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._check(tag, attrs)

    def _check(self, tag, attrs):
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"{self.where}: <{tag}>")
        for name, value in attrs:
            value = (value or "").strip()
            low = "".join(value.split()).lower()
            if name.startswith("on"):
                self.problems.append(f"{self.where}: <{tag} {name}=...>")
            if name == "style":
                self.problems.append(f"{self.where}: <{tag} style=...>")
            if name in URL_ATTRIBUTES and value:
                scheme = urlsplit(low).scheme if ":" in low.split("/", 1)[0] else ""
                if scheme not in ("", "http", "https", "mailto"):
                    self.problems.append(f"{self.where}: <{tag} {name}={value[:60]!r}>")
        if tag == "meta" and any(
            n == "http-equiv" and (v or "").lower() == "refresh" for n, v in attrs
        ):
            self.problems.append(f"{self.where}: <meta http-equiv=refresh>")


def executable_markup(html: str, where: str = "") -> list[str]:
    checker = _Checker(where)
    checker.feed(html)
    checker.close()
    return checker.problems


def scan_site(output: Path) -> list[str]:
    """Every HTML page, and the HTML inside every Atom/RSS feed, of a built site."""
    problems: list[str] = []
    for page in sorted(output.rglob("*.html")):
        problems += executable_markup(
            page.read_text(encoding="utf-8"), str(page.relative_to(output))
        )
    for feed in sorted(output.rglob("*.xml")):
        root = ET.parse(feed).getroot()
        for element in root.iter():
            name = element.tag.rsplit("}", 1)[-1]
            if name in ("content", "summary", "description") and element.text:
                problems += executable_markup(element.text, f"{feed.relative_to(output)}:{name}")
            if name == "link" and element.get("href", "").lower().startswith(
                ("javascript:", "data:")
            ):
                problems.append(f"{feed.relative_to(output)}: link {element.get('href')}")
    return problems


def roundup_links(html: str) -> list[str]:
    """Every link inside the roundup body."""

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth = 0
            self.links: list[str] = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "div" and "roundup" in (attrs.get("class") or "").split():
                self.depth = 1
            elif self.depth and tag == "div":
                self.depth += 1
            if self.depth and tag == "a":
                self.links.append(attrs.get("href") or "")

        def handle_endtag(self, tag):
            if self.depth and tag == "div":
                self.depth -= 1

    parser = Links()
    parser.feed(html)
    return parser.links
