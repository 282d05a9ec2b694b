"""Tests for evidence.book.names: what readers see for each code."""
from __future__ import annotations

import csv
from pathlib import Path

import yaml

from evidence.book.names import STUDY_COLUMN_NAMES, level_name

REPO = Path(__file__).resolve().parents[2]


def test_every_subgroup_column_and_level_of_the_registry_reads_as_words() -> None:
    """No slug reaches a reader: every study column an analysis forms subgroups by has a
    reader's name, and every value it takes in studies.csv reads without underscores."""
    config = yaml.safe_load((REPO / "analyses.yml").read_text(encoding="utf-8"))
    columns = {c for a in config["analyses"]
               for c in (a.get("parameters") or {}).get("subgroup_by") or []}
    assert columns, "analyses.yml forms no subgroups"
    with (REPO / "data" / "studies.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    slugs = []
    for column in sorted(columns):
        assert column in STUDY_COLUMN_NAMES, column
        for value in {r[column] or "not_reported" for r in rows}:
            shown = level_name("", value)
            if "_" in shown:
                slugs.append(f"{column}={value!r} shows as {shown!r}")
    assert not slugs, slugs
    assert level_name("", "trastuzumab_pertuzumab") == "trastuzumab + pertuzumab"
