"""Names shown to readers, and the glossary that explains every code a table shows."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from evidence.book import names
from evidence.book.hazard_ratios import hazard_ratio_panel_abbreviations
from evidence.book.pooled import panel_abbreviations
from evidence.stats.vocabulary import METHODS, PROPORTION_MEASURES, TESTS, TWO_GROUP_MEASURES

GLOSSARY = Path(__file__).resolve().parents[2] / "book" / "glossary.md"
#: Terms the book uses that a reader may not know (issue 13, item 16), besides the codes.
LISTED_TERMS = ("RECIST", "CR", "PR", "SD", "PD", "Clopper–Pearson", "Wald-type interval",
                "Hartung–Knapp", "Prediction interval", "τ²", "I²", "REML", "ML", "GLMM",
                "Raw proportion", "DerSimonian–Laird", "Paule–Mandel", "Sidik–Jonkman",
                "Hedges", "Freeman–Tukey", "Common-effect model", "Wilson", "t interval")


def glossary_terms(text: str) -> set[str]:
    """Terms of every ``{glossary}`` block: its unindented, non-empty lines."""
    terms: set[str] = set()
    for block in re.findall(r"```\{glossary\}\n(.*?)```", text, flags=re.S):
        terms |= {line.strip() for line in block.splitlines()
                  if line.strip() and not line[0].isspace()}
    return terms


@pytest.fixture(scope="module")
def terms() -> set[str]:
    return glossary_terms(GLOSSARY.read_text(encoding="utf-8"))


def test_glossary_terms_are_read_from_every_block() -> None:
    text = "```{glossary}\nA\nB\n  def of A and B\n```\ntext\n```{glossary}\nC\n  c\n```\n"
    assert glossary_terms(text) == {"A", "B", "C"}


def test_every_model_measure_and_interval_code_has_a_glossary_entry(terms: set[str]) -> None:
    # a code added to the statistics vocabulary without a glossary entry fails here
    codes = [*METHODS, *PROPORTION_MEASURES, *TWO_GROUP_MEASURES, *names.METHOD_NAMES,
             *names.MEASURE_LABELS, *TESTS]
    missing = [c for c in codes if names.ABBREVIATION_TERMS.get(c, c) not in terms]
    assert not missing, f"no glossary entry for {missing} in {GLOSSARY}"
    assert set(METHODS) <= set(names.METHOD_SHORT) and set(METHODS) <= set(names.METHOD_NAMES)
    assert set(PROPORTION_MEASURES) <= set(names.MEASURE_LABELS)


def test_the_listed_terms_have_a_glossary_entry(terms: set[str]) -> None:
    assert [t for t in LISTED_TERMS if t not in terms] == []


def test_pr_is_explained_as_both_partial_response_and_the_raw_proportion() -> None:
    text = GLOSSARY.read_text(encoding="utf-8")
    entry = re.search(r"^PR\n((?:  .*\n|\n)+?)(?=\S)", text, flags=re.M)
    assert entry is not None
    assert "partial response" in entry.group(1) and "raw" in entry.group(1)
    assert names.MEASURE_LABELS["PR"] == "Raw proportion (PR)"


def term_targets(note: str) -> list[str]:
    """The target of every ``{term}`` role (``{term}`text <target>``` or ``{term}`x```)."""
    return [m.group(2) or m.group(1)
            for m in re.finditer(r"\{term\}`([^`<]+?)(?: <([^>]+)>)?`", note)]


def test_abbreviation_notes_link_every_code_of_their_tables(terms: set[str]) -> None:
    note = panel_abbreviations()
    targets = term_targets(note)
    assert set(targets) <= terms
    for code in (*METHODS, *PROPORTION_MEASURES):
        assert names.ABBREVIATION_TERMS.get(code, code) in targets, code
    assert "{term}`Raw proportion (PR) <Raw proportion>`" in note
    assert "{term}`DL`, DerSimonian–Laird" in note
    hr = hazard_ratio_panel_abbreviations()
    assert set(term_targets(hr)) <= terms
    assert {"REML", "DL", "PM", "FE", "Hartung–Knapp", "Wald-type interval"} <= set(
        term_targets(hr))
    assert "GLMM" not in term_targets(hr)  # only the codes the table shows


def test_abbreviations_note_rejects_a_code_it_cannot_explain() -> None:
    with pytest.raises(KeyError):
        names.abbreviations_note(["XYZ"])
    assert names.abbreviations_note(["FE", "FE"]).count("{term}`FE`") == 1


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
        assert column in names.STUDY_COLUMN_NAMES, column
        for value in {r[column] or "not_reported" for r in rows}:
            shown = names.level_name("", value)
            if "_" in shown:
                slugs.append(f"{column}={value!r} shows as {shown!r}")
    assert not slugs, slugs
    assert names.level_name("", "trastuzumab_pertuzumab") == "trastuzumab + pertuzumab"


def test_every_registry_outcome_and_subgroup_reads_as_words() -> None:
    """Every outcome of outcome_types.csv has a reader's phrase, and every registry
    subgroup key a name, so no slug ('ctc clearance', 'hormone_receptor=positive')
    reaches a sentence or a table."""
    with (REPO / "data" / "outcome_types.csv").open(encoding="utf-8", newline="") as f:
        outcomes = [r["outcome"] for r in csv.DictReader(f)]
    assert sorted(set(outcomes) - set(names.OUTCOME_PHRASES)) == []
    keys = set()
    for table in ("outcomes.csv", "transitions.csv"):
        with (REPO / "data" / table).open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                keys |= {p.partition("=")[0] for p in (r.get("subgroup") or "").split(";") if p}
    assert sorted(keys - set(names.SUBGROUP_NAMES)) == []
    assert names.subgroup_phrase("hormone_receptor=positive") == "hormone receptor-positive"
    assert names.subgroup_phrase("metastasis_count=one") == "number of metastases: one"
    assert names.subgroup_phrase("") == "whole population"
    both = names.subgroup_phrase("hormone_receptor=negative;metastatic_site=non_visceral")
    assert both == "hormone receptor-negative; metastatic site: non-visceral"


def test_bayesian_notes_in_readers_words() -> None:
    from evidence.book.bayesian import reader_notes

    notes = ["the posterior density of proportion_new is not unimodal on its reporting "
             "scale; its shortest interval is not reported", "tau hit the grid's end"]
    assert reader_notes(notes) == "τ hit the grid's end"
