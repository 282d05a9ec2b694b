"""Helpers for the pipeline tests: a copy of the tiny fixture book in tmp_path.

``CONFIG_CASES`` lists one bad edit of the fixture's ``analyses.yml`` per configuration
rule with the message it must produce (a regular expression); ``tests/test_config.py``
checks them against ``load_config`` and ``tests/test_bad_input.py`` runs them through
``evidence build``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "pipeline"
REPO = Path(__file__).resolve().parents[1]

#: (old, new, message): replace ``old`` by ``new`` in analyses.yml; ``message`` is a regex.
CONFIG_CASES: list[tuple[str, str, str]] = [
    ("template: count_rows\n    title: Screening", "template: no_such\n    title: Screening",
     r"unknown template 'no_such'; known: \['count_rows'\]"),
    ("id: yield", "id: orr", "duplicate id 'orr'"),
    ("      outcome: objective_response\n", "",
     "requires parameter 'outcome'"),
    ("label: screening", "colour: blue", "has no parameter 'colour'"),
    ("label: screening", "threshold: three", "parameter 'threshold' must be int, got str"),
    ("label: screening", "label: 3", "parameter 'label' must be str, got int"),
    ("label: screening", "analysis_id: other", "parameter 'analysis_id' is set by the runner"),
    ("chapter: book/results\n    parameters:\n      outcome: her2",
     "chapter: book/missing\n    parameters:\n      outcome: her2",
     "chapter 'book/missing' is not a hand-written chapter"),
    ("- book/results", "- book/nowhere", "chapter file book/nowhere.md not found"),
    ("  - id: yield\n", "  - id: yield\n    after: [ghost]\n",
     r"'after' names unknown ids \['ghost'\]"),
    ("  - id: yield\n", "  - id: Yield\n", "must match"),
]

#: An analysis of the real ``pool_proportions`` template on the fixture registry.
POOL = """
  - id: pooled
    template: pool_proportions
    title: Pooled response (fixture)
    chapter: book/results
    parameters:
      outcome: objective_response
      question: How often do patients respond?
      what: responded
      subgroup_by: [her2_method]
      method: {method}
"""


def copy_book(tmp_path: Path) -> Path:
    """A fresh copy of tests/fixtures/pipeline; returns its root."""
    root = tmp_path / "book_root"
    shutil.copytree(FIXTURE, root)
    return root


def tree_digest(path: Path) -> dict[str, str]:
    """File -> sha256 for every file below path."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def replace_in(path: Path, old: str, new: str) -> None:
    """Edit a text file in place, asserting the old text is there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def book_with_template(tmp_path: Path, method: str = "GLMM") -> Path:
    """A fixture book copy with the analysis ``pooled`` of the real pool_proportions, and
    the book's glossary (the template links its abbreviations to glossary terms)."""
    root = copy_book(tmp_path)
    shutil.copy(REPO / "notebooks" / "pool_proportions.ipynb", root / "notebooks")
    shutil.copy(REPO / "book" / "glossary.md", root / "book")
    replace_in(root / "analyses.yml", "      - book/results\n",
               "      - book/results\n      - book/glossary\n")
    with (root / "analyses.yml").open("a", encoding="utf-8") as fh:
        fh.write(POOL.format(method=method))
    return root
