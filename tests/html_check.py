"""Parsing HTML fragments in tests: the start tags, links and text a fragment holds."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

#: Tags a rendered registry table may contain; anything else came from the registry.
ALLOWED_TAGS = {"div", "table", "caption", "thead", "tbody", "tr", "th", "td", "a", "details",
                "summary"}
#: A label that must never run.
SCRIPT = '<script>alert("x")</script>'


class Collector(HTMLParser):
    """Start tags, attributes and text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs.extend(v for k, v in attrs if k == "href")

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> Collector:
    c = Collector()
    c.feed(fragment)
    c.close()
    return c




def reader_text(path: Path, tag: str = "main") -> str:
    """The visible text of a built page's ``<tag>`` element: scripts and styles removed,
    tags dropped, entities decoded, whitespace collapsed."""
    import html
    import re

    raw = path.read_text(encoding="utf-8")
    part = raw[raw.index(f"<{tag}"):raw.index(f"</{tag}>")]
    part = re.sub(r"<(script|style)\b.*?</\1>", "", part, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", part)))
