"""evidence.book.selection and the PRISMA 2020 diagram: every number is a count over the
logs, recounted here independently (on the shipped registry and on a small example)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from evidence.book import selection
from evidence.book.figures.prisma import prisma_diagram
from evidence.registry import load

DATA = Path(__file__).resolve().parents[2] / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def recount() -> dict[str, dict[str, int]]:
    """The PRISMA boxes straight from the CSV files, without the library."""
    searches = [s for s in _rows("searches.csv")
                if s.get("purpose", "") in ("", "identification")]
    is_db = {s["search_id"]: s["source"].startswith("search tool") for s in searches}
    records = _rows("screening.csv")
    out: dict[str, dict[str, int]] = {}
    for column in ("databases", "other"):
        want_db = column == "databases"
        mine = [r for r in records
                if any(is_db[i] for i in r["search_ids"].split(";")) == want_db]
        identified = sum(int(s["records_returned"]) for s in searches
                         if is_db[s["search_id"]] == want_db)
        sought = [r for r in mine if r["stage"] == "eligibility"]
        lost = [r for r in sought if r["reason"] == "not_retrievable"]
        out[column] = {
            "identified": identified, "duplicates": identified - len(mine),
            "screened": len(mine),
            "excluded": sum(r["stage"] == "screening" and r["decision"] == "excluded"
                            for r in mine),
            "sought": len(sought), "not_retrieved": len(lost),
            "assessed": len(sought) - len(lost),
            "excluded_at_eligibility": sum(r["decision"] == "excluded" for r in sought)
            - len(lost)}
    included = [r for r in records if r["decision"] == "included"]
    out["included"] = {"studies": len({r["study_id"] for r in included}),
                       "reports": len(included)}
    return out


@pytest.fixture(scope="module")
def counts() -> selection.SelectionCounts:
    reg = load(DATA)
    return selection.selection_counts(reg.query("searches"), reg.query("screening"))


def test_every_box_equals_a_count_over_the_logs(counts: selection.SelectionCounts) -> None:
    expected = recount()
    for column in ("databases", "other"):
        c = getattr(counts, column)
        got = {k: getattr(c, k) for k in expected[column]}
        assert got == expected[column], column
    assert counts.studies_included == expected["included"]["studies"]
    assert counts.reports_included == expected["included"]["reports"]
    # every study of the registry is included once
    assert counts.studies_included == len(_rows("studies.csv"))
    assert counts.last_search == max(s["date"] for s in _rows("searches.csv"))


def test_the_figure_shows_exactly_those_numbers(counts: selection.SelectionCounts) -> None:
    fig = prisma_diagram(counts, selection.REASON_NAMES)
    text = " ".join(t.get_text() for t in fig.findobj(lambda a: a.get_gid() == "prisma_text"))
    shown = [int(n) for n in re.findall(r"n\u00a0=\u00a0(\d+)", text)]
    d, o = counts.databases, counts.other
    expected = []
    for c in (d, o):
        expected += [c.identified, c.duplicates, c.screened, c.excluded, c.sought,
                     c.not_retrieved, c.assessed, *c.excluded_reasons.values()]
    expected += [counts.studies_included, counts.reports_included]
    assert sorted(shown) == sorted(expected)
    table = selection.selection_table(counts)
    assert table.loc[table["Stage"] == "Records screened",
                     "Databases and registers"].iloc[0] == d.screened


def test_small_logs_and_the_rules() -> None:
    searches = pd.DataFrame({
        "search_id": ["s1", "s2", "ref", "app"], "date": ["2026-01-02", "2026-03-04",
                                                          "2026-02-01", "2026-05-05"],
        "source": ["search tool, corpus pages", "search tool, corpus pages",
                   "reference list of X", "search tool, corpus pages"],
        "query": ["a", "b", "all", "c"], "records_returned": [3, 1, 2, 9],
        "question": ["therapy", "therapy;screening", "therapy", "therapy"],
        "purpose": ["", "identification", "", "appraisal"]})
    screening = pd.DataFrame({
        "record_id": ["r1", "r2", "r3", "r4"],
        "search_ids": ["s1;s2", "s1", "s1;ref", "ref"],
        "stage": ["eligibility", "screening", "eligibility", "eligibility"],
        "decision": ["included", "excluded", "excluded", "excluded"],
        "reason": ["", "not_relevant", "not_retrievable", "wrong_design"],
        "questions": ["therapy", "therapy", "therapy", "therapy;screening"],
        "study_id": ["a2020", "", "", ""]})
    c = selection.selection_counts(searches, screening)
    assert (c.databases.identified, c.databases.duplicates, c.databases.screened) == (4, 1, 3)
    assert (c.databases.excluded, c.databases.sought, c.databases.not_retrieved,
            c.databases.assessed) == (1, 2, 1, 1)
    assert (c.other.identified, c.other.duplicates, c.other.screened) == (2, 1, 1)
    assert c.other.excluded_reasons == {"wrong_design": 1}
    assert (c.studies_included, c.reports_included) == (1, 1)
    assert c.last_search == "2026-03-04"  # the appraisal search identifies nothing
    words = selection.describe_selection(c)
    assert "returned 6 records: 4 from 2 database searches and 2 from other methods" in words
    assert words.endswith("1 study from 1 report is included.")
    summary = selection.search_summary(searches)
    assert summary["Records returned"].tolist() == [6, 1]  # therapy, screening
    bad = screening.assign(search_ids=["s1", "s1", "s9", "ref"])
    with pytest.raises(ValueError, match="names \\['s9'\\]"):
        selection.selection_counts(searches, bad)
    by_q = selection.studies_by_question(screening)
    assert by_q.to_dict("records") == [{"Question": "therapy", "Reports": 1, "Studies": 1}]
