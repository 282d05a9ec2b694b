"""The real book built once per test session (``real_book`` fixture in conftest.py).

A temporary copy of the repository's book sources (``analyses.yml``, ``book/``,
``notebooks/``, ``data/``, ...) in which one study's label carries markup
(``TRICKY``), built with ``evidence build -j 2``.  The browser tests serve it; the
determinism test builds a second copy and compares the two byte for byte.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Markup in a study label: must show as text, and its script must never run.
TRICKY = "<b>Bold</b> <script>window.__xss = 1</script>"
#: A single-arm trial in the objective-response analysis and the registry chapter.
TRICKY_STUDY = "hainsworth2016"


@dataclass(frozen=True)
class RealBook:
    """A built copy of the real book."""

    root: Path
    tricky_label: str  # the full label of TRICKY_STUDY in this copy


def plant_label(studies_csv: Path, study_id: str) -> str:
    """Append TRICKY to one study's label (CSV rewritten with the csv module)."""
    with studies_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    matches = [r for r in rows if r["study_id"] == study_id]
    assert len(matches) == 1, f"{study_id} is not (once) in {studies_csv}"
    label = f"{matches[0]['label']} {TRICKY}"
    matches[0]["label"] = label
    with studies_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return label


def build_real_book(root: Path) -> RealBook:
    """Copy the book sources to ``root``, plant the label, build; fail on any error."""
    from evidence.pipeline.build import copy_book_sources
    from evidence.pipeline.cli import main

    copy_book_sources(root, REPO)
    label = plant_label(root / "data" / "studies.csv", TRICKY_STUDY)
    status = main(["build", "--root", str(root), "--data", str(root / "data"), "-j", "2",
                   "-q"])
    assert status == 0, "`evidence build` of the real book failed (output above)"
    return RealBook(root, label)
