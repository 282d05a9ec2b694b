"""The references: every registry study listed with its identifiers, and the book's
bibliography complete enough to find each work."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest
from pybtex.database import parse_file

from evidence.book import references
from evidence.book.provenance import doi_url
from evidence.registry import load, query_of

REPO = Path(__file__).resolve().parents[2]
BIB = REPO / "book" / "references.bib"
#: references.bib entries that lack both a DOI and volume + pages, and why: the repository
#: holds no more than this (the registry and the seed texts are the only sources used; no
#: volume or DOI is guessed).
KNOWN_INCOMPLETE = {
    "jacot2025": "conference abstract (SABCS 2025) without a DOI in the registry; its "
                 "supplement issue (Clin Cancer Res 32(4 Suppl), abstract PS5-02-07) is in "
                 "the note",
    "banys2019": "the screening log records this seed document by its PMCID only "
                 "(PMC6924333); volume, pages and DOI are not in the repository",
}


@pytest.fixture(scope="module")
def studies() -> pd.DataFrame:
    return load(REPO / "data").rows(query_of("studies"))


def test_every_registry_study_is_listed_with_its_doi_as_a_link(studies: pd.DataFrame) -> None:
    refs = references.study_references(studies)
    page = references.references_html(refs)
    assert len(refs) == len(studies)
    for row in studies.to_dict("records"):
        assert f'<li id="ref-{row["study_id"]}">' in page, row["study_id"]
        assert html.escape(row["citation"], quote=True) in page, row["study_id"]
        if row["doi"]:
            url = html.escape(doi_url(row["doi"]), quote=True)
            assert f'<a href="{url}">{html.escape(row["doi"])}</a>' in page, row["study_id"]
    # a study without a DOI still carries the identifier its numbers were read from
    treat_ctc = page.split('<li id="ref-ignatiadis2018">')[1].split("</li>")[0]
    assert ('<a href="https://pubmed.ncbi.nlm.nih.gov/29893791/">PMID 29893791</a>'
            in treat_ctc)
    assert page.count("<li ") == len(studies)


def test_order_source_and_summary() -> None:
    frame = pd.DataFrame([
        {"study_id": "b2020", "label": "beta 2020", "year": 2020, "citation": "B (2020)",
         "doi": "10.1000/b", "source": "doi:10.1000/b"},
        {"study_id": "a2019", "label": "Alpha 2019", "year": 2019, "citation": "A (2019)",
         "doi": "", "source": "000_seed.txt"},
        {"study_id": "c2021", "label": "Gamma 2021", "year": 2021, "citation": "C (2021)",
         "doi": float("nan"), "source": "pmcid:PMC123"},
    ])
    refs = references.study_references(frame)
    assert [r.study_id for r in refs] == ["a2019", "b2020", "c2021"]
    # the study's own DOI is not repeated as its source; a seed file name is no identifier
    assert [r.source for r in refs] == ["", "", "pmcid:PMC123"]
    assert refs[2].doi == "" and refs[0].year == "2019"
    assert references.describe_references(refs).startswith(
        "The 3 studies of the registry (data/studies.csv), by first author: 1 with a DOI.")
    assert references.describe_references([]) == "The registry holds no study."


def test_registry_text_is_escaped_and_only_resolvable_identifiers_are_linked() -> None:
    frame = pd.DataFrame([{
        "study_id": "x2020", "label": "<b>X</b> 2020", "year": 2020,
        "citation": 'X et al. <script>alert("x")</script> & co', "doi": "not a doi",
        "source": "pmid:12<3"}])
    page = references.references_html(references.study_references(frame))
    assert "<script>" not in page and "<b>X</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "DOI: not a doi." in page and page.count("<a ") == 0
    assert references.identifier_url("nct:NCT01234567") == (
        "ClinicalTrials.gov NCT01234567", "https://clinicaltrials.gov/study/NCT01234567")
    assert references.identifier_url("pmcid:PMC6924333") == (
        "PMCID PMC6924333", "https://pmc.ncbi.nlm.nih.gov/articles/PMC6924333/")
    assert references.identifier_url("doi:10.1/x") is None  # registrant too short
    assert references.identifier_url("000_9b98dfee22ec06eb.txt") is None


def test_every_bibliography_entry_has_a_year_and_a_doi_or_volume_and_pages() -> None:
    entries = parse_file(str(BIB), bib_format="bibtex").entries
    incomplete = []
    for key, entry in entries.items():
        fields = {k.lower(): v for k, v in entry.fields.items()}
        assert fields.get("year", "").isdigit(), f"{key}: no year"
        if not (fields.get("doi") or (fields.get("volume") and fields.get("pages"))):
            incomplete.append(key)
    assert sorted(incomplete) == sorted(KNOWN_INCOMPLETE)
    for key in KNOWN_INCOMPLETE:  # what there is, is there
        assert entries[key].fields.get("note") or entries[key].fields.get("url"), key


def test_bibliography_entries_of_registry_studies_agree_with_the_registry(
        studies: pd.DataFrame) -> None:
    entries = parse_file(str(BIB), bib_format="bibtex").entries
    by_id = studies.set_index("study_id")
    shared = [key for key in entries if key in by_id.index]
    assert {"verschoor2024", "zhang2016", "jacot2025", "shi2023"} <= set(shared)
    for key in shared:
        fields = entries[key].fields
        assert int(fields["year"]) == by_id.loc[key, "year"], key
        assert fields.get("doi", "") == by_id.loc[key, "doi"], key
