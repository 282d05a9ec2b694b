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


def test_summary_of_findings_certainty_is_the_files_final_judgement(real_book: RealBook) -> None:
    """Every SoF row's certainty follows from data/certainty.csv's final judgements (start
    level less the downgrades; ``as_proposed`` takes the rule's proposal), and every
    departure from a proposal gives a reason."""
    import json

    import pandas as pd

    from evidence.book.certainty import LEVELS, start_level

    steps = {"not_serious": 0, "serious": 1, "very_serious": 2}
    summary = json.loads((real_book.root / "results" / "summary.json").read_text())
    file_rows = pd.read_csv(real_book.root / "data" / "certainty.csv", keep_default_na=False)
    assert summary["rows"], "the summary of findings is empty"
    for row in summary["rows"]:
        mine = file_rows[file_rows["outcome_id"] == row["outcome_id"]]
        assert len(mine) == 5, row["outcome_id"]
        grade = row["grade"]
        # the file's judgement, or the rule's proposal where the file says as_proposed
        judged = {d: (grade["proposed"][d]["judgement"] if j == "as_proposed" else j)
                  for d, j in zip(mine["domain"], mine["judgement"], strict=True)}
        assert grade["final"] == judged
        kind_start = grade["start"]
        assert kind_start in ("high", "low")
        down = sum(steps[j] for j in judged.values())
        level = LEVELS[min(LEVELS.index(kind_start) + down, 3)]
        assert row["certainty"] == level, row["outcome_id"]
        for domain in grade["departures"]:
            assert mine[mine["domain"] == domain]["reason"].iloc[0].strip(), domain
    assert start_level("randomised") == "high"


def _reader_text(page) -> tuple[str, str]:
    """The main column of a page: its HTML and its text (scripts and styles removed)."""
    import html
    import re

    raw = page.read_text(encoding="utf-8")
    main = raw[raw.find("<main"):raw.find("</main>")]
    main = re.sub(r"<script.*?</script>|<style.*?</style>", "", main, flags=re.S)
    return main, html.unescape(re.sub(r"<[^>]+>", " ", main))


def test_no_page_shows_nan_float_noise_negative_percentages_or_raw_outputs(
        real_book: RealBook) -> None:
    """On every page: no NaN, no '60.000000', no negative percentage, and no code cell's
    plain-text output (a repr such as 'Not applicable' or '' in a code box)."""
    import re

    html_dir = real_book.root / "_build" / "html" / "book"
    problems = []
    for page in sorted(html_dir.rglob("*.html")):
        main, text = _reader_text(page)
        name = page.relative_to(html_dir).as_posix()
        for pattern, what in ((r"\bNaN\b|\bnan\b", "NaN"), (r"\b\d+\.000000\b", "float noise"),
                              (r"(?<![\w.])[-−]\d+(?:\.\d+)?\s?%", "negative percentage")):
            found = re.findall(pattern, text)
            if found:
                problems.append(f"{name}: {what} {found[:3]}")
        if "output text_plain" in main:
            problems.append(f"{name}: a code cell's plain-text output is shown to readers")
    assert not problems, "\n".join(problems)


def test_references_list_every_registry_study_and_tables_link_their_codes(
        real_book: RealBook) -> None:
    """The references of the included studies hold every row of the copy's studies.csv
    (its citation escaped, its DOI a link); the estimator panels and the robustness page
    link each model and measure code to its glossary entry."""
    import csv
    import html
    import re

    from evidence.book.provenance import doi_url

    book = real_book.root / "_build" / "html" / "book"
    main, _ = _reader_text(book / "analyses" / "study_references.html")
    with (real_book.root / "data" / "studies.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        entry = re.search(rf'<li id="ref-{row["study_id"]}">(.*?)</li>', main, flags=re.S)
        assert entry is not None, f"{row['study_id']} missing from the references"
        assert html.escape(row["citation"], quote=True) in entry.group(1), row["study_id"]
        if row["doi"]:
            assert f'href="{html.escape(doi_url(row["doi"]), quote=True)}"' in entry.group(1)
    assert main.count("<li id=\"ref-") == len(rows)
    refs_page, _ = _reader_text(book / "references.html")
    assert "analyses/study_references.html" in refs_page
    glossary = (book / "glossary.html").read_text(encoding="utf-8")
    for page in ("orr", "robustness", "pfs_hazard_ratios"):
        main, text = _reader_text(book / "analyses" / f"{page}.html")
        assert "Abbreviations (each linked to the glossary)" in text, page
        anchors = re.findall(r'href="\.\./glossary\.html#(term-[^"]+)"', main)
        assert {"term-REML", "term-DL", "term-FE"} <= set(anchors), page
        assert all(f'id="{a}"' in glossary for a in anchors), page
    orr, orr_text = _reader_text(book / "analyses" / "orr.html")
    assert "Raw proportion (PR)" in orr_text and "term-Raw-proportion" in orr


def test_forest_captions_say_what_was_drawn_and_no_page_names_metafor_attributes(
        real_book: RealBook) -> None:
    """A pooled proportion's caption calls the figure a caterpillar plot only when one was
    drawn (more than ``max_forest_k`` studies), a single study's says nothing is pooled,
    and no page shows metafor's attribute names or a single study's "method: FE"."""
    import html
    import json
    import re

    from evidence.pipeline.config import load_config

    root = real_book.root
    problems = []
    for analysis in load_config(root).analyses:
        if analysis.template != "pool_proportions":
            continue
        k = json.loads((root / analysis.result).read_text(encoding="utf-8"))["k"]
        page = root / "_build" / "html" / "book" / "analyses" / f"{analysis.id}.html"
        main, _text = _reader_text(page)
        captions = [html.unescape(re.sub(r"<[^>]+>", " ", c)) for c in
                    re.findall(r"<figcaption.*?</figcaption>", main, flags=re.S)]
        (caption,) = [c for c in captions if "Observed proportion" in c]
        drawn = "caterpillar" if k > analysis.parameters.get("max_forest_k", 60) else "forest"
        if ("caterpillar" in caption) != (drawn == "caterpillar"):
            problems.append(f"{analysis.id} (k = {k}, a {drawn} plot): {caption.strip()}")
        if k == 1 and "nothing is pooled" not in caption:
            problems.append(f"{analysis.id}: a single study's caption: {caption.strip()}")
    for page in sorted((root / "_build" / "html" / "book").rglob("*.html")):
        _main, text = _reader_text(page)
        for raw in ("QE.Wld", "QE.LRT", "method: FE"):
            if raw in text:
                problems.append(f"{page.name}: {raw!r}")
    assert not problems, "\n".join(problems)
