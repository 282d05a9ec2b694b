"""The real book's HTML, read as text: registry markup never reaches a page as markup.

The session's ``real_book`` plants ``<b>Bold</b> <script>window.__xss = 1</script>`` in
every registry text that can reach a page (``real_book.PLANTED``). Every HTML file of the
book, and the search index, must hold it only escaped.
"""

from __future__ import annotations

import pytest
from real_book import TRICKY, RealBook

pytestmark = pytest.mark.slow


def test_no_page_holds_planted_markup_unescaped(real_book: RealBook) -> None:
    html = real_book.root / "_build" / "html"
    pages = sorted(html.rglob("*.html"))
    assert len(pages) > 10
    raw = [p.relative_to(html).as_posix() for p in pages
           if "<script>window.__xss" in p.read_text(encoding="utf-8")]
    assert raw == [], f"pages with the planted <script> as markup: {raw}"
    shown = [p for p in pages if "&lt;script&gt;window.__xss" in p.read_text(encoding="utf-8")]
    assert len(shown) >= 10, "the planted text should show (escaped) on most chapters"
    index = (html / "searchindex.js").read_text(encoding="utf-8")
    assert "<script>" not in index
    assert TRICKY.startswith("<b>")
