"""Tests for evidence.book.provenance: the registry tables for readers, and that registry
markup reaches the page as text.

The registry used is ``tests/fixtures/registry/good/data`` (see its README: 4 studies,
11 counts with one alternative reading, 2 hazard ratios, a 3x3 transition table with
margins), opened read-only; escaping tests copy it to ``tmp_path`` and plant markup
in labels and quotes.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from html_check import ALLOWED_TAGS, parse
from reproduce_cases import entry_for, proportion_result

from evidence.book import provenance
from evidence.book.provenance import (
    contradiction_table,
    count_table,
    doi_url,
    effects_table,
    study_characteristics,
    transition_table,
)
from evidence.book.tables import html_table
from evidence.pipeline.context import open_analysis

GOOD = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "good" / "data"
def rows(name: str) -> list[dict[str, str]]:
    with (GOOD / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def tables() -> provenance.RegistryTables:
    return open_analysis("t", str(GOOD), "unused_results").registry_tables()


# --------------------------------------------------------------------------- collect


def test_registry_counts_and_sentence(tables):
    counts = provenance.registry_counts(tables)
    uses = [r["use"] or "primary" for r in rows("outcomes.csv")]
    assert counts == {"studies": 4, "counts": uses.count("primary"), "hazard_ratios": 2,
                      "transitions": 16, "alternatives": 1, "outcomes": 6}
    assert provenance.describe_registry(tables) == (
        "The registry holds 4 studies, 10 counts (events of a total) in 6 defined outcomes, "
        "2 hazard ratios and 16 HER2 transition counts, plus 1 alternative reading of "
        "numbers on which a source contradicts itself.")


# --------------------------------------------------------------------------- tables


def test_study_characteristics_one_row_per_study_by_year(tables):
    frame = study_characteristics(tables.studies)
    assert list(frame.columns) == ["Study", "Year", "Design", "Setting", "Tissue HER2",
                                   "CTC assay", "HER2 method", "HER2 cut-off", "Intervention",
                                   "Citation", "DOI"]
    assert list(frame["Study"]) == ["Zhang 2016", "Treat CTC", "Synthetic 2020", "Shi 2023"]
    assert list(frame["Year"]) == ["2016", "2019", "2020", "2023"]
    assert frame.loc[frame["Study"] == "Treat CTC", "DOI"].item() == "10.1055/a-1031-1120"


def test_count_table_groups_by_outcome_in_vocabulary_order(tables):
    frame = count_table(tables.outcomes, tables.studies, tables.outcome_types)
    assert len(frame) == 11
    vocab = [r["outcome"] for r in rows("outcome_types.csv")]
    seen = list(dict.fromkeys(frame["Outcome"]))
    assert seen == [o for o in vocab if o in set(frame["Outcome"])]
    assert list(frame.columns) == ["Outcome", "Study", "Arm", "Subgroup", "Events / total",
                                   "Derived", "Quote", "Source"]
    shift = frame[frame["Outcome"] == "shift_to_low"]
    assert list(shift["Events / total"]) == ["20 / 51",
                                            "25 / 51 (alternative reading, not used)"]
    assert set(shift["Subgroup"]) == {"primary_her2=zero"}
    detection = frame[frame["Outcome"] == "ctc_detection"]
    assert list(detection["Study"]) == ["Zhang 2016", "Treat CTC"]  # by year
    assert list(detection["Subgroup"]) == ["whole population"] * 2
    persistence = frame[frame["Outcome"] == "ctc_persistence"]
    assert list(persistence["Arm"]) == ["all", "observation", "trastuzumab"]
    assert persistence.iloc[0]["Derived"] == "events = 5 + 4; total = 31 + 32"


def test_outcome_groups_heading_has_the_definitions(tables):
    groups = provenance.outcome_groups(tables.outcome_types)
    assert groups["ctc_detection"] == ("ctc_detection: CTC detection rate Events: patients "
                                       "with detectable CTCs; total: patients tested.")


def test_effects_table_shows_the_numbers_as_recorded(tables):
    frame = effects_table(tables.effects, tables.studies)
    assert list(frame["Hazard ratio (95% CI)"]) == ["0.321 (0.156 to 0.62)",
                                                    "0.383 (0.166 to 0.831)"]
    assert list(frame["p"]) == ["0.0011", "0.019"]
    assert list(frame["Adjusted"]) == ["no", "yes"]
    assert list(frame["Study"]) == ["Zhang 2016"] * 2


def test_hazard_ratio_without_interval_or_p(tables):
    effects = tables.effects.iloc[:1].copy()
    effects["ci_lower"] = np.nan
    effects["ci_upper"] = np.nan
    effects["p_value"] = np.nan
    frame = effects_table(effects, tables.studies)
    assert frame.iloc[0]["Hazard ratio (95% CI)"] == "0.321"
    assert frame.iloc[0]["p"] == ""


def test_transition_table_orders_categories_with_margins_last(tables):
    frame = transition_table(tables.transitions, tables.studies)
    pairs = list(zip(frame["From (primary tumor)"], frame["To (recurrence)"], strict=True))
    cats = ["zero", "low", "positive", "any"]
    expected = [(f, t) for f in cats for t in cats if (f, t) != ("any", "any")] + [("any", "any")]
    expected = [p for p in expected if p in set(pairs)]
    assert pairs == sorted(pairs, key=lambda p: (cats.index(p[0]), cats.index(p[1])))
    assert pairs == expected
    assert frame.iloc[0]["Count"] == "26"


def test_contradiction_table_pairs_each_alternative_with_its_primary(tables):
    frame = contradiction_table(tables.outcomes, tables.effects, tables.transitions,
                                tables.studies)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["Registry file"] == "outcomes.csv"
    assert row["Study"] == "Shi 2023"
    assert row["What"] == "shift_to_low, arm all, primary_her2=zero"
    assert (row["Primary reading (used)"], row["Alternative reading"]) == ("20 / 51", "25 / 51")
    assert row["Alternative's quote"].startswith("with 25 (49.0%) primary HER2-zero patients")
    assert row["Note"] != ""


def test_contradiction_table_for_transitions_and_without_alternatives(tables):
    tr = tables.transitions.copy()
    extra = tr[(tr["from_category"] == "any") & (tr["to_category"] == "any")].copy()
    extra["count"] = 254
    extra["use"] = "alternative"
    extra["note"] = "Results say 254, the parts add to 247."
    tr = pd.concat([tr, extra], ignore_index=True)
    none = tables.outcomes[tables.outcomes["use"] == "primary"]
    frame = contradiction_table(none, tables.effects, tr, tables.studies)
    assert list(frame["What"]) == ["HER2 any to any"]
    assert (frame.iloc[0]["Primary reading (used)"], frame.iloc[0]["Alternative reading"]) == (
        "247", "254")
    empty = contradiction_table(none, tables.effects, tables.transitions, tables.studies)
    assert empty.empty and "Note" in empty.columns


def test_outcome_vocabulary(tables):
    frame = provenance.outcome_vocabulary(tables.outcome_types)
    assert list(frame.columns) == ["Outcome", "Events", "Total", "Description"]
    assert frame.iloc[0].tolist() == ["ctc_detection", "patients with detectable CTCs",
                                      "patients tested", "CTC detection rate"]


# --------------------------------------------------------------------------- HTML safety


@pytest.mark.parametrize(("doi", "url"), [
    ("10.1007/s10549-023-07231-4", "https://doi.org/10.1007/s10549-023-07231-4"),
    (" 10.1158/1538-7445.Sabcs20-pd3-12 ", "https://doi.org/10.1158/1538-7445.Sabcs20-pd3-12"),
    ("10.1002/(SICI)1097-0258", "https://doi.org/10.1002/(SICI)1097-0258"),
    ("", None), ("n/a", None), ("doi:10.1000/x", None), ("javascript:alert(1)", None),
    (float("nan"), None), (None, None),
])
def test_doi_url(doi, url):
    assert doi_url(doi) == url


def test_registry_markup_renders_as_text_end_to_end(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(GOOD, data)
    studies = (data / "studies.csv").read_text(encoding="utf-8")
    studies = studies.replace("Zhang 2016,2016", '"<script>alert(1)</script> <b>Zhang</b>",2016')
    (data / "studies.csv").write_text(studies, encoding="utf-8")
    outcomes = (data / "outcomes.csv").read_text(encoding="utf-8")
    outcomes = outcomes.replace("Of 1317 patients screened", "<b>Of</b> 1317 patients screened")
    (data / "outcomes.csv").write_text(outcomes, encoding="utf-8")
    reg = open_analysis("t", str(data), str(tmp_path / "results")).registry_tables()
    pages = [
        html_table(study_characteristics(reg.studies), links={"DOI": doi_url}),
        html_table(count_table(reg.outcomes, reg.studies, reg.outcome_types),
                   group_by="Outcome", group_labels=provenance.outcome_groups(reg.outcome_types)),
        html_table(effects_table(reg.effects, reg.studies)),
        html_table(contradiction_table(reg.outcomes, reg.effects, reg.transitions, reg.studies)),
    ]
    for page in pages:
        assert "<script" not in page and "<b>" not in page
        assert set(parse(page).tags) <= ALLOWED_TAGS
    assert "<script>alert(1)</script> <b>Zhang</b>" in "".join(parse(pages[0]).text)
    assert "<b>Of</b> 1317 patients screened" in "".join(parse(pages[1]).text)
    assert "<script>alert(1)</script> <b>Zhang</b>" in "".join(parse(pages[2]).text)


# --------------------------------------------------------------------------- Markdown


# --------------------------------------------------------------------------- R scripts


def test_the_r_comparison_never_claims_agreement_it_has_not_checked() -> None:
    result = proportion_result()
    current = {"orr": result}
    text = provenance.describe_reproduction(None, current)
    assert text.startswith("This build did not run the R scripts, so it makes no claim")
    assert "`evidence reproduce`" in text
    assert provenance.reproduce_table(None, current)["Verdict"].tolist() == [
        "not checked: evidence reproduce has not run this script"]
    report = {"analyses": [entry_for(result)]}
    assert provenance.describe_reproduction(report, current).startswith(
        "The R script reproduces the book's numbers with metafor 3\\.8\\.1 (R 4\\.2\\.2): ")
    assert provenance.reproduce_table(report, current)["Verdict"].tolist() == ["agrees"]
    changed = json.loads(json.dumps(result))
    changed["model"]["estimate"] += 0.1
    table = provenance.reproduce_table(report, {"orr": changed})
    assert table["Verdict"].str.startswith("out of date").all()
    assert "were compared with older results" in provenance.describe_reproduction(
        report, {"orr": changed})
    bad = {"analyses": [entry_for(result, scale=lambda key, v: v + 1 if key ==
                                  ("primary", "estimate") else v)]}
    table = provenance.reproduce_table(bad, current)
    assert table["Verdict"].iloc[0].startswith("differs in 1 value: primary estimate (book")
    assert "do not reproduce the book's numbers (orr)" in provenance.describe_reproduction(
        bad, current)


def test_read_report_reads_the_file_ctx_files_found(tmp_path: Path) -> None:
    assert provenance.read_report([]) is None
    path = tmp_path / "reproduce.json"
    path.write_text(json.dumps({"analyses": [], "ok": True}), encoding="utf-8")
    assert provenance.read_report([path]) == {"analyses": [], "ok": True}


def test_an_error_entry_and_states() -> None:
    from evidence.book.reproduce import r_script, summarise

    result = proportion_result()
    report = {"analyses": [summarise("orr", result, [], None,
                                     r_script(result, "orr.csv", "orr"),
                                     error="Rscript orr.R exited with status 1: boom")]}
    current = {"orr": result, "dcr": result}
    assert provenance.reproduction_states(report, current) == {"orr": "error",
                                                               "dcr": "not checked"}
    table = provenance.reproduce_table(report, current)
    assert table["Verdict"].tolist() == [
        "the script failed: Rscript orr.R exited with status 1: boom",
        "not checked: evidence reproduce has not run this script"]
    text = provenance.describe_reproduction(report, current)
    assert "1 of 2 do not reproduce the book's numbers (orr); 1 of 2 have not been run (dcr)" \
        in text
    assert provenance.describe_reproduction(report, {}) == (
        "No analysis of this build has an R script.")
