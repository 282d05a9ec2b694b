"""The real book built once per test session (``real_book`` fixture in conftest.py).

A temporary copy of the repository's book sources (``analyses.yml``, ``book/``,
``notebooks/``, ``data/``, ...) in which every text of the registry that can reach a page
carries markup (``TRICKY``: every study's label, design, intervention, cut-off and notes,
and every note of a count or a hazard ratio), built with ``evidence build -j 2``.  The
browser tests serve it; the determinism test builds a second copy and compares the two
byte for byte.
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


#: Registry text columns that reach the pages, per file: TRICKY is planted in each.
PLANTED = {"studies.csv": ("label", "design", "intervention", "her2_cutoff", "notes"),
           "outcomes.csv": ("note",), "effects.csv": ("note",), "transitions.csv": ("note",),
           "risk_of_bias.csv": ("reason",), "certainty.csv": ("reason",),
           "searches.csv": ("query",), "eligibility.csv": ("criterion",)}


def _rewrite(path: Path, edit) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for row in rows:
        edit(row)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def plant_markup(data_dir: Path, study_id: str) -> str:
    """Append TRICKY to every label and every non-empty planted text of the registry
    (CSV rewritten with the csv module); return the full label of ``study_id``."""
    labels: dict[str, str] = {}

    def plant(columns):
        def edit(row):
            for column in columns:
                if row.get(column):
                    row[column] = f"{row[column]} {TRICKY}"
            if "label" in columns:
                labels[row["study_id"]] = row["label"]
        return edit

    for name, columns in PLANTED.items():
        if (data_dir / name).is_file():
            _rewrite(data_dir / name, plant(columns))
    assert study_id in labels, f"{study_id} is not in {data_dir / 'studies.csv'}"
    return labels[study_id]


def build_real_book(root: Path) -> RealBook:
    """Copy the book sources to ``root``, plant the label, build; fail on any error."""
    from evidence.pipeline.build import copy_book_sources
    from evidence.pipeline.cli import main

    copy_book_sources(root, REPO)
    label = plant_markup(root / "data", TRICKY_STUDY)
    status = main(["build", "--root", str(root), "--data", str(root / "data"), "-j", "2",
                   "-q"])
    assert status == 0, "`evidence build` of the real book failed (output above)"
    return RealBook(root, label)
