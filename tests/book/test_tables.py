"""Tests for evidence.book.tables (and the escaping of evidence.book.text): every cell,
header, caption and link of a table is escaped text; Markdown glued from the registry
renders literally."""

from __future__ import annotations

import pandas as pd
import pytest
from html_check import ALLOWED_TAGS, SCRIPT, parse

from evidence.book.provenance import doi_url
from evidence.book.tables import as_markdown, html_table
from evidence.book.text import escape_markdown


def test_html_table_escapes_every_cell_header_group_and_caption():
    frame = pd.DataFrame({"Group": [SCRIPT, SCRIPT, "g2"],
                          "Study <b>": ["<b>bold</b>", "a & b", 'say "hi"'],
                          "Quote": [SCRIPT, "<img src=x onerror=alert(1)>", None]})
    out = html_table(frame, group_by="Group", group_labels={"g2": "<i>two</i>"},
                     caption="<em>cap</em>")
    assert "<script" not in out and "<b>" not in out and "<img" not in out
    assert "<i>" not in out and "<em>" not in out
    parsed = parse(out)
    assert set(parsed.tags) <= ALLOWED_TAGS
    text = "".join(parsed.text)
    for literal in (SCRIPT, "<b>bold</b>", "a & b", 'say "hi"', "Study <b>", "<i>two</i>",
                    "<em>cap</em>", "<img src=x onerror=alert(1)>"):
        assert literal in text
    assert parsed.tags.count("tbody") == 2  # two groups, in order of appearance
    assert text.index(SCRIPT) < text.index("<i>two</i>")


def test_html_table_links_only_http_urls_and_escapes_them():
    frame = pd.DataFrame({"DOI": ["10.1000/xyz", "", '10.1234/"><script>x</script>'],
                          "Other": ["a", "b", "c"]})
    out = html_table(frame, links={"DOI": doi_url, "Other": lambda v: "javascript:alert(1)"})
    parsed = parse(out)
    assert parsed.hrefs == ["https://doi.org/10.1000/xyz",
                            "https://doi.org/10.1234/%22%3E%3Cscript%3Ex%3C/script%3E"]
    assert "<script" not in out and "javascript:" not in out
    assert '10.1234/"><script>x</script>' in "".join(parsed.text)


def test_html_table_rejects_unknown_columns():
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(KeyError, match="column 'b' not in the table"):
        html_table(frame, group_by="b")
    with pytest.raises(KeyError, match="column 'c' not in the table"):
        html_table(frame, links={"c": doi_url})


def test_long_text_columns_get_room():
    frame = pd.DataFrame({"Short": ["x"], "Long": ["y" * 200], "Medium": ["z" * 100]})
    out = html_table(frame)
    assert 'min-width:4em">Short' in out
    assert 'min-width:25em">Long' in out  # 200 / 8
    assert 'min-width:16em">Medium' in out  # at least 16


def _render(md: str) -> str:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return MarkdownIt("commonmark").use(dollarmath_plugin).render(md)


def test_escape_markdown_renders_literally():
    text = f"{SCRIPT} <b>x</b> *em* _u_ {{glue:md}}`k` $x^2$ [a](http://e) # 1. a\\b & c"
    out = _render(escape_markdown(text))
    assert "<script" not in out and "<b>" not in out and "<em>" not in out
    assert "<a " not in out and "math" not in out and "<code>" not in out
    parsed = parse(out)
    assert set(parsed.tags) == {"p"}
    assert "".join(parsed.text).strip() == text


def test_as_markdown():
    md = as_markdown("a *b*")
    assert md.data == r"a \*b\*"
    assert as_markdown("0c03" * 16, code=True).data == f"`{'0c03' * 16}`"
    with pytest.raises(ValueError, match="cannot show 'a`b' as inline code"):
        as_markdown("a`b", code=True)


# --------------------------------------------------------------------------- software




def test_a_long_table_is_collapsed_behind_a_summary_that_counts_its_rows() -> None:
    frame = pd.DataFrame({"Study": [f"<S{i}>" for i in range(20)], "n": range(20)})
    closed = html_table(frame, collapse_after=15, caption="Counts & sources")
    assert closed.startswith('<details class="evidence-collapse">')
    assert "<summary>Counts &amp; sources: show the table (20 rows)</summary>" in closed
    assert closed.endswith("</details>") and "&lt;S19&gt;" in closed
    assert "<details" not in html_table(frame.head(15), collapse_after=15)
    assert "<details" not in html_table(frame)  # only when asked
