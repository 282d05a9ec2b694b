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
PLANTED = {"studies.csv": ("label", "design", "intervention", "her2_cutoff", "notes",
                           "citation"),
           "outcomes.csv": ("note",), "effects.csv": ("note", "reference_group"),
           "transitions.csv": ("note",),
           "risk_of_bias.csv": ("reason",), "certainty.csv": ("reason",),
           "searches.csv": ("query",), "eligibility.csv": ("criterion",)}


def rewrite_rows(path: Path, edit) -> None:
    """Rewrite a registry CSV with ``edit(row)`` applied to every row (a dict, changed in
    place); the header and the other cells are kept."""
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
            rewrite_rows(data_dir / name, plant(columns))
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


#: The trial :func:`add_trial` clones (a single-arm trial with a response row).
TEMPLATE_TRIAL = "hainsworth2016"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def append_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Append rows to a registry CSV in its own column order; a column a row does not
    give is written empty."""
    fields, _ = _rows(path)
    text = path.read_text(encoding="utf-8")
    with path.open("a", newline="", encoding="utf-8") as fh:
        if text and not text.endswith("\n"):
            fh.write("\n")
        csv.DictWriter(fh, fieldnames=fields, lineterminator="\n").writerows(
            [{f: r.get(f, "") for f in fields} for r in rows])


def add_trial(data_dir: Path, study_id: str, label: str, events: int, total: int) -> None:
    """Add a new single-arm trial with one objective-response row to a registry copy.

    A clone of :data:`TEMPLATE_TRIAL`'s study row (new id, label, year, no DOI or
    cohort), its primary experimental objective-response row with the given counts, its
    risk-of-bias judgements, and a screening record including it, returned by the first
    identification search (whose ``records_returned`` grows by one) so the logs still add
    up; every other row is left as it is.
    """
    _, studies = _rows(data_dir / "studies.csv")
    template = next(s for s in studies if s["study_id"] == TEMPLATE_TRIAL)
    append_rows(data_dir / "studies.csv", [{
        **template, "study_id": study_id, "label": label, "year": "2026", "doi": "",
        "cohort": "", "citation": f"{label} (a trial added by the test suite)"}])
    _, outcomes = _rows(data_dir / "outcomes.csv")
    row = next(r for r in outcomes if r["study_id"] == TEMPLATE_TRIAL
               and r["outcome"] == "objective_response" and r.get("use") == "primary"
               and r.get("arm_role") == "experimental")
    append_rows(data_dir / "outcomes.csv", [{
        **row, "study_id": study_id, "events": str(events), "total": str(total),
        "printed": f"{events}/{total}" if row.get("printed") else "", "note": ""}])
    _, judgements = _rows(data_dir / "risk_of_bias.csv")
    append_rows(data_dir / "risk_of_bias.csv",
                [{**r, "study_id": study_id} for r in judgements
                 if r["study_id"] == TEMPLATE_TRIAL])
    first: dict[str, str] = {}

    def one_more_record(search: dict[str, str]) -> None:
        if not first and search.get("purpose", "") in ("", "identification"):
            search["records_returned"] = str(int(search["records_returned"]) + 1)
            first.update(search)

    rewrite_rows(data_dir / "searches.csv", one_more_record)
    _, records = _rows(data_dir / "screening.csv")
    record = next(r for r in records if r["study_id"] == TEMPLATE_TRIAL)
    append_rows(data_dir / "screening.csv", [{
        **record, "record_id": f"test_{study_id}", "search_ids": first["search_id"],
        "identifier": "", "url": f"https://example.org/{study_id}",
        "first_author": label.split()[0], "year": "2026", "title": label,
        "study_id": study_id, "cohort": "", "note": ""}])
