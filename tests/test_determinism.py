"""Two builds of the real book from the same inputs are byte-identical.

The session's ``real_book`` (built with ``-j 2``) is copied, sources only, and built
again with ``-j 1`` (a different order of the analyses). Every result file
(``results/*.json``, ``*.csv``, the R scripts ``*.R``), every executed notebook with its
figures, and every file of the HTML book must have the same bytes. Nothing may depend on the clock,
the order in which analyses ran, memory addresses, random ids or the directory the
book is built in.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from pipeline_book import tree_digest
from real_book import RealBook

from evidence.pipeline.build import copy_book_sources
from evidence.pipeline.cli import main
from evidence.pipeline.config import load_config

pytestmark = pytest.mark.slow


def glued_figures(notebooks: Path) -> dict[str, str]:
    """sha256 of every PNG figure in the executed notebooks, by notebook and output."""
    figures = {}
    for path in sorted(notebooks.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            for j, output in enumerate(cell.get("outputs", [])):
                for mime, data in output.get("data", {}).items():
                    if mime.endswith("image/png"):
                        png = base64.b64decode("".join(data))
                        figures[f"{path.name} cell {i} output {j}"] = \
                            hashlib.sha256(png).hexdigest()
    return figures


def differences(first: dict[str, str], second: dict[str, str]) -> list[str]:
    return sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))


@pytest.fixture(scope="module")
def second_build(real_book: RealBook, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_book_sources(tmp_path_factory.mktemp("again") / "book", real_book.root)
    assert not (root / "results").exists() and not list((root / "book" / "analyses")
                                                       .glob("*.ipynb"))
    assert main(["build", "--root", str(root), "--data", str(root / "data"), "-j", "1",
                 "-q"]) == 0
    return root


@pytest.mark.parametrize("part", ["results", "book/analyses", "_build/html"])
def test_same_inputs_give_the_same_bytes(real_book: RealBook, second_build: Path,
                                         part: str) -> None:
    first, second = tree_digest(real_book.root / part), tree_digest(second_build / part)
    assert first, f"{part} is empty"
    assert not differences(first, second), f"{part} differs: {differences(first, second)}"


def test_same_inputs_give_the_same_figures(real_book: RealBook, second_build: Path) -> None:
    first = glued_figures(real_book.root / "book" / "analyses")
    second = glued_figures(second_build / "book" / "analyses")
    assert len(first) >= 10, "the book should glue its forest plots and other figures"
    assert not differences(first, second), differences(first, second)


def test_every_analysis_left_a_result(real_book: RealBook) -> None:
    analyses = load_config(real_book.root).analyses
    results = {p.stem for p in (real_book.root / "results").glob("*.json")}
    assert results == {a.id for a in analyses}
