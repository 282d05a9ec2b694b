"""The book builds offline and the built pages load nothing from the network.

The fixture book (tests/fixtures/pipeline) is built with every proxy variable
pointing at a closed port (127.0.0.1:9, the discard port), so any attempt of
papermill, Jupyter Book or Sphinx to reach the internet through a proxy fails;
then every HTML page and stylesheet of ``_build/html`` is scanned for remote
scripts, stylesheets, images and fonts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pipeline_book import copy_book
from real_book import RealBook

from evidence.pipeline.cli import main

pytestmark = pytest.mark.slow

NOWHERE = "http://127.0.0.1:9"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")

#: A resource attribute of an HTML tag that loads from another host.
_REMOTE_ATTR = re.compile(r"""\b(?:src|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
                          re.I)
#: <link> tags that load something (not rel=canonical/alternate/... navigation links).
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_LOADING_REL = re.compile(r"""\brel\s*=\s*["']?[^"'>]*\b(?:stylesheet|preload|icon|"""
                          r"""modulepreload|prefetch|manifest)\b""", re.I)
_REMOTE_HREF = re.compile(r"""\bhref\s*=\s*["']?\s*(?:https?:)?//""", re.I)
#: CSS url(...) or @import of another host (inline <style>/style="" or .css files).
_REMOTE_CSS = re.compile(r"""(?:url\(\s*["']?\s*(?:https?:)?//|@import\s+["'](?:https?:)?//)""",
                         re.I)
_TAG = re.compile(r"<(?:script|img|source|video|audio|iframe|embed|object|input|track)\b[^>]*>",
                  re.I)


def remote_references(html: str) -> list[str]:
    """Tags and CSS snippets of an HTML or CSS text that load from another host."""
    found = [m.group(0) for m in _TAG.finditer(html) if _REMOTE_ATTR.search(m.group(0))]
    found += [m.group(0) for m in _LINK_TAG.finditer(html)
              if _LOADING_REL.search(m.group(0)) and _REMOTE_HREF.search(m.group(0))]
    found += [html[max(m.start() - 40, 0):m.end() + 60] for m in _REMOTE_CSS.finditer(html)]
    return found


def test_scanner_flags_remote_resources_and_only_them() -> None:
    remote = ['<script src="https://cdn.example.org/x.js"></script>',
              "<link rel='stylesheet' href='//fonts.example.org/a.css'>",
              '<img alt="" src="http://example.org/a.png">',
              '<style>@font-face { src: url("https://example.org/f.woff2") }</style>',
              '@import "https://example.org/b.css";',
              '<div style="background: url(http://example.org/bg.png)"></div>']
    local = ['<script src="_static/x.js"></script>',
             '<a href="https://doi.org/10.1007/s10549-012-2045-1">doi</a>',
             '<link rel="canonical" href="https://example.org/book/">',
             '<svg xmlns="http://www.w3.org/2000/svg"></svg>',
             'url("data:image/svg+xml;utf8,<svg xmlns=\'http://www.w3.org/2000/svg\'/>")',
             '/* see https://example.org for the license */']
    for snippet in remote:
        assert remote_references(snippet), snippet
    for snippet in local:
        assert not remote_references(snippet), snippet


def test_book_builds_offline_without_remote_resources(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, NOWHERE)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    root = copy_book(tmp_path)
    assert main(["build", "--root", str(root), "--data", str(root / "data"), "-q"]) == 0
    html = root / "_build" / "html"
    pages = sorted(html.rglob("*.html"))
    stylesheets = sorted(html.rglob("*.css"))
    assert pages and stylesheets
    problems = [f"{path.relative_to(html)}: {ref}"
                for path in pages + stylesheets
                for ref in remote_references(path.read_text(encoding="utf-8", errors="replace"))]
    assert not problems, "remote resources in the built book:\n" + "\n".join(problems)


def test_real_book_loads_nothing_remote(real_book: RealBook) -> None:
    """The same scan over the real book (its own _config.yml, extensions and figures)."""
    html = real_book.root / "_build" / "html"
    files = sorted(html.rglob("*.html")) + sorted(html.rglob("*.css"))
    assert len(files) > 20
    problems = [f"{path.relative_to(html)}: {ref}" for path in files
                for ref in remote_references(path.read_text(encoding="utf-8", errors="replace"))]
    assert not problems, "remote resources in the built book:\n" + "\n".join(problems)
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
