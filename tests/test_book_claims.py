"""The bottom line follows the data: a copy of the real book is rebuilt after adding a
trial and changing a randomised comparison, and every chapter's Key findings box, the
abstract and the claims show the new numbers and the sentences their rules choose.

(The session's real book is built first; the copy re-runs only what the edit reaches.)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from real_book import RealBook, append_rows, rewrite_rows

from evidence.pipeline.cli import main
from evidence.registry.appraisal import TOOLS

pytestmark = pytest.mark.slow

NEW = "newtrial2026"


def add_trial_and_flip_treat_ctc(data: Path) -> None:
    """A new single-arm trial with 9 of 10 responses (and its search, screening record and
    appraisal), and Treat CTC's trastuzumab arm at 25 of 31 persisting CTCs."""
    append_rows(data / "studies.csv", [{
        "study_id": NEW, "label": "New Trial 2026", "year": "2026",
        "design": "single-arm phase II", "setting": "metastatic", "tissue_her2": "negative",
        "ctc_assay": "CellSearch", "her2_method": "immunofluorescence",
        "her2_cutoff": ">= 1 HER2-positive CTC", "intervention": "trastuzumab",
        "citation": "New T (2026) A trial.", "doi": "10.1000/new2026",
        "her2_method_group": "immunofluorescence", "her2_cutoff_group": "at_least_one_ctc",
        "agent": "trastuzumab", "randomized": "no", "source": "doi:10.1000/new2026",
        "url": "https://example.org/new2026", "locator": "Abstract",
        "retrieved": "2026-12-01", "tissue_source": "primary"}])
    append_rows(data / "outcomes.csv", [{
        "study_id": NEW, "arm": "all", "outcome": "objective_response", "events": "9",
        "total": "10", "source": "doi:10.1000/new2026", "use": "primary",
        "arm_role": "experimental", "url": "https://example.org/new2026",
        "locator": "Abstract, Results", "printed": "9 of 10 responded",
        "retrieved": "2026-12-01", "source_level": "primary"}])
    append_rows(data / "searches.csv", [{
        "search_id": "test_s001", "date": "2026-12-01", "source": "search tool, corpus pages",
        "query": "new trial", "records_returned": "1", "question": "therapy"}])
    append_rows(data / "screening.csv", [{
        "record_id": "test_r001", "search_ids": "test_s001", "identifier": "doi:10.1000/new2026",
        "title": "A trial", "record_type": "journal_article", "stage": "eligibility",
        "decision": "included", "questions": "therapy", "study_id": NEW}])
    append_rows(data / "risk_of_bias.csv", [{
        "study_id": NEW, "tool": "jbi_case_series", "domain": code, "judgement": "yes",
        "reason": "stated in the report", "source": "doi:10.1000/new2026",
        "locator": "Methods", "retrieved": "2026-12-01"}
        for code in TOOLS["jbi_case_series"].domain_codes])

    def flip(row: dict[str, str]) -> None:
        if (row["study_id"], row["arm"], row["outcome"], row.get("use", "")) == (
                "ignatiadis2018", "trastuzumab", "ctc_persistence", "primary"):
            row["events"], row["printed"] = "25", "25 of 31"
    rewrite_rows(data / "outcomes.csv", flip)

    def rejudge(row: dict[str, str]) -> None:
        # the reviewers note their re-judgement of the outcomes the edit changed (their
        # domains are as_proposed, so the rule's new proposals are followed; the reason
        # is shown beside them)
        if row["outcome_id"] in ("orr", "two_arm:ignatiadis2018:ctc_persistence") \
                and not row["reason"]:
            row["reason"] = "re-judged after the update"
    rewrite_rows(data / "certainty.csv", rejudge)


def page_text(root: Path, page: str) -> str:
    text = (root / "_build" / "html" / "book" / page).read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


@pytest.fixture(scope="module")
def updated(real_book: RealBook, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("updated") / "book"
    shutil.copytree(real_book.root, root, symlinks=True)
    add_trial_and_flip_treat_ctc(root / "data")
    status = main(["build", "--root", str(root), "--data", str(root / "data"), "-j", "2",
                   "-q"])
    assert status == 0, "the rebuild after the edit failed (output above)"
    return root


def test_key_findings_equal_the_results_before_and_after(real_book: RealBook,
                                                         updated: Path) -> None:
    from evidence.book.bottom_line import estimate_text

    for root in (real_book.root, updated):
        summary = json.loads((root / "results" / "summary.json").read_text())
        rows = {r["outcome_id"]: r for r in summary["rows"]}
        abstract = json.loads((root / "results" / "abstract.json").read_text())
        for chapter, ids in abstract["chapters"].items():
            text = page_text(root, f"{chapter}.html")
            assert "Key findings" in text, chapter
            for oid in ids:
                assert estimate_text(rows[oid]) in text, (chapter, oid)
                assert f"{rows[oid]['certainty']} certainty" in text, (chapter, oid)


def test_the_edit_moves_the_numbers_and_flips_the_randomised_claim(real_book: RealBook,
                                                                   updated: Path) -> None:
    def rows(root: Path) -> dict:
        summary = json.loads((root / "results" / "summary.json").read_text())
        return {r["outcome_id"]: r for r in summary["rows"]}

    before, after = rows(real_book.root), rows(updated)
    assert after["orr"]["k"] == before["orr"]["k"] + 1
    assert after["orr"]["estimate"] > before["orr"]["estimate"]
    treat = "two_arm:ignatiadis2018:ctc_persistence"
    assert before[treat]["ci_lower"] <= 1 <= before[treat]["ci_upper"]
    assert after[treat]["ci_lower"] > 1
    old = page_text(real_book.root, "randomised.html")
    new = page_text(updated, "randomised.html")
    claim = "CTC persistence, trastuzumab vs observation (Treat CTC, randomised): the interval"
    assert f"{claim} includes no difference" in old
    assert f"{claim} excludes no difference (the ratio is higher than 1)" in new
    claims_before = json.loads((real_book.root / "results" / "abstract.json").read_text())
    claims_after = json.loads((updated / "results" / "abstract.json").read_text())
    assert claims_before["claims"] != claims_after["claims"]
    response = page_text(updated, "response.html")
    assert f"{after['orr']['k']} studies" in response
