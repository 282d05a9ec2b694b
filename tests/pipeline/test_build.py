"""evidence build: strict Jupyter Book build, atomic swap, no-op rebuilds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_book import copy_book, replace_in, tree_digest

from evidence.pipeline import runner
from evidence.pipeline.build import book_digest, build_book, sync_toc
from evidence.pipeline.cli import main
from evidence.pipeline.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def fixed_library() -> Iterator[None]:
    """Hold the library digest still while other work edits src/."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "library_digest", lambda: "1" * 64)
        yield


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_book(tmp_path_factory.mktemp("book"))
    assert main(["build", "--root", str(root), "--data", str(root / "data"), "-q"]) == 0
    return root


def test_build_produces_every_page_and_download(book: Path) -> None:
    html = book / "_build" / "html"
    assert (html / "index.html").is_file()
    for page in ("book/intro.html", "book/results.html", "book/analyses/orr.html",
                 "book/analyses/yield.html", "search.html"):
        assert (html / page).is_file(), page
    downloads = {p.name for p in (html / "_downloads").rglob("*") if p.is_file()}
    assert {"orr.ipynb", "orr.json", "orr.csv", "yield.json"} <= downloads
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert not (book / "_build" / "last-failed-build.log").exists()


def test_html_has_no_remote_resources(book: Path) -> None:
    import re

    remote = re.compile(r"""<(?:script|link|img)\b[^>]*(?:src|href)=["']https?://""")
    for page in (book / "_build" / "html").rglob("*.html"):
        assert not remote.search(page.read_text(encoding="utf-8")), page


def test_noop_rebuild_is_skipped(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(book / "_build" / "html")
    assert main(["build", "--root", str(book), "--data", str(book / "data"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "0 executed, 2 up to date" in out and "book up to date" in out
    assert tree_digest(book / "_build" / "html") == before


def test_failed_build_keeps_previous_book(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(book / "_build" / "html")
    chapter = book / "book" / "results.md"
    original = chapter.read_text()
    try:
        replace_in(chapter, "The analyses follow.", "See {ref}`a-label-that-does-not-exist`.")
        assert main(["build", "--root", str(book), "--data", str(book / "data"), "-q"]) == 1
        err = capsys.readouterr().err
        assert "a-label-that-does-not-exist" in err
        assert "previous book in _build/html is unchanged" in err
        assert tree_digest(book / "_build" / "html") == before
        assert (book / "_build" / "last-failed-build.log").is_file()
    finally:
        chapter.write_text(original)


def test_failed_analysis_keeps_previous_book(book: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(book / "_build" / "html")
    template = book / "notebooks" / "count_rows.ipynb"
    original = template.read_text()
    try:
        replace_in(template, "import evidence.pipeline.context as ea", "1 / 0")
        assert main(["build", "--root", str(book), "--data", str(book / "data"), "-q"]) == 1
        err = capsys.readouterr().err
        assert "ZeroDivisionError" in err and "_build/failed/orr.ipynb" in err
        assert tree_digest(book / "_build" / "html") == before
    finally:
        template.write_text(original)


def test_book_digest_tracks_inputs(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    sync_toc(load_config(root))
    first = book_digest(root)
    assert book_digest(root) == first
    replace_in(root / "book" / "intro.md", "A tiny book", "A small book")
    assert book_digest(root) != first


def test_sync_toc_writes_only_on_change(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    config = load_config(root)
    assert sync_toc(config) is True
    assert sync_toc(config) is False
    assert build_book.__doc__


def test_book_sources_include_extensions_and_parameter_paths(tmp_path: Path) -> None:
    from evidence.pipeline.build import book_sources, copy_book_sources

    repo = Path(__file__).resolve().parents[2]
    sources = book_sources(repo)
    assert {"analyses.yml", "book", "data", "notebooks", "_ext", "tests/fixtures"} <= set(sources)
    dest = copy_book_sources(tmp_path / "copy", repo)
    assert (dest / "tests" / "fixtures" / "metafor").is_dir()
    assert not list((dest / "book" / "analyses").glob("*.ipynb"))
    with pytest.raises(FileExistsError):
        copy_book_sources(dest, repo)
