"""evidence.book.prisma_checklist: all 27 PRISMA 2020 items, each place a page of the
book, links escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence.book import prisma_checklist as pc
from evidence.pipeline import load_config

REPO = Path(__file__).resolve().parents[2]


def test_every_item_is_addressed_on_a_page_of_the_book() -> None:
    numbers = [i.number for i in pc.ITEMS]
    assert {n.rstrip("abcdef") for n in numbers} == {str(n) for n in range(1, 28)}
    assert {"10a", "10b", "13a", "13f", "16a", "16b", "20d", "23d", "24c"} <= set(numbers)
    assert all(i.pages and i.comment for i in pc.ITEMS)
    table = pc.checklist(pc.book_pages(load_config(REPO)))
    assert len(table) == len(pc.ITEMS)
    assert "All 27 items" in pc.describe_checklist()


def test_a_missing_page_breaks_the_checklist_and_html_is_escaped() -> None:
    with pytest.raises(ValueError, match=r"pages \['book/gone'\] are not in the table"):
        pc.checklist(["book/intro"], (pc.ChecklistItem("Title", "1", "t", ("book/gone",),
                                                        "c"),))
    item = pc.ChecklistItem("Title", "1", "<b>t</b>", ("book/intro",), "a & b")
    html = pc.checklist_html(pc.checklist(["book/intro"], (item,)))
    assert "&lt;b&gt;t&lt;/b&gt;" in html and "a &amp; b" in html
    assert '<a href="../../book/intro.html">book/intro</a>' in html
