"""Tests for evidence.book.discrepancies: the sources' own inconsistencies and the
registry's assumptions, read from the registry alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evidence.book import discrepancies
from evidence.pipeline.context import open_analysis


def _outcome_rows(*rows: dict) -> pd.DataFrame:
    base = {"arm": "all", "subgroup": "", "use": "primary", "derived": "", "note": "",
            "quote": "", "printed": "", "source_error": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_source_discrepancies_list_printed_percentages_the_counts_do_not_give() -> None:
    studies = pd.DataFrame({"study_id": ["a2020", "b2021"], "label": ["A 2020", "B 2021"],
                            "year": [2020, 2021]})
    rows = _outcome_rows(
        {"study_id": "a2020", "arm": "taxane_only", "outcome": "pfr6", "events": 14,
         "total": 25, "quote": "54% in the control group (14 out of 25 patients)",
         "source_error": "a Kaplan-Meier estimate"},
        {"study_id": "b2021", "outcome": "objective_response", "events": 1, "total": 8,
         "quote": "1/8 (12.5%)", "printed": "1 of 8 (12.5 %)"},
        {"study_id": "b2021", "outcome": "disease_control", "events": 2, "total": 7,
         "printed": "2 (30%)"})
    found = discrepancies.source_discrepancies(rows, studies)
    assert found.to_dict("records") == [
        {"Study": "A 2020", "What": "Progression-free at 6 months, taxane only arm",
         "Printed": "54% in the control group (14 out of 25", "The counts give": "14/25 = 56.0%",
         "Reading": "used", "Explanation": "a Kaplan-Meier estimate"},
        {"Study": "B 2021", "What": "Disease control", "Printed": "2 (30%)",
         "The counts give": "2/7 = 28.6%", "Reading": "used",
         "Explanation": "none given in the registry"}]


def test_registry_assumptions_quote_the_sentences_that_state_them() -> None:
    studies = pd.DataFrame({"study_id": ["j2025"], "label": ["J 2025"], "year": [2025]})
    rows = _outcome_rows(
        {"study_id": "j2025", "outcome": "ctc_detection", "events": 4, "total": 60,
         "subgroup": "timepoint=before_cycle_2",
         "derived": "total = 60; the number tested at T2 is not stated, 60 assumed",
         "note": "Second time point. 4/60 = 6.67 % is printed as 6.6 %. The denominator "
                 "(one patient per sample assumed) is an assumption."},
        {"study_id": "j2025", "outcome": "her2_ctc_positive", "events": 7, "total": 60,
         "note": "Printed as 11.6 %."})
    got = discrepancies.registry_assumptions(rows, studies)
    assert got.to_dict("records") == [
        {"Study": "J 2025", "What": "CTC detection (time point: before cycle 2)",
         "Counts": "4 / 60", "Reading": "used",
         "What is assumed": "the number tested at T2 is not stated, 60 assumed; The "
                            "denominator (one patient per sample assumed) is an assumption."}]


def test_the_registry_shows_its_known_discrepancies_and_assumptions() -> None:
    """Over the real registry: Verschoor 2024's 54% beside 14 of 25, Jacot 2019's 78.7%,
    and Jacot 2025's 13 of 20 that rests on an assumption (issue 13, item 18)."""
    ctx = open_analysis("x", str(Path(__file__).resolve().parents[2] / "data"),
                        "/nonexistent-results")
    reg = ctx.registry_tables()
    found = discrepancies.source_discrepancies(reg.outcomes, reg.studies)
    printed = set(zip(found["Study"], found["The counts give"], strict=True))
    assert ("Verschoor 2024", "14/25 = 56.0%") in printed
    assert ("Jacot 2019 (CirCe T-DM1)", "118/154 = 76.62%") in printed
    assert (found["Explanation"] != "none given in the registry").all()
    assumed = discrepancies.registry_assumptions(reg.outcomes, reg.studies)
    jacot = assumed[(assumed["Study"] == "Jacot 2025") & (assumed["Counts"] == "13 / 20")]
    assert len(jacot) == 1 and jacot["What is assumed"].iloc[0].startswith("Assumes all 7")


def test_printed_p_values_stand_beside_fishers_exact_test() -> None:
    studies = pd.DataFrame({"study_id": ["v2024"], "label": ["V 2024"], "year": [2024]})
    rows = _outcome_rows(
        {"study_id": "v2024", "arm": "t", "outcome": "objective_response", "events": 4,
         "total": 8, "arm_role": "experimental", "printed_p": "0.34",
         "note": "Denominator as treated. Printed p = 0.34 is for the whole response table."},
        {"study_id": "v2024", "arm": "c", "outcome": "objective_response", "events": 5,
         "total": 25, "arm_role": "control", "printed_p": ""})
    got = discrepancies.printed_p_values(rows, studies)
    # Fisher's exact test of 4/8 vs 5/25, two-sided: 0.170 (scipy.stats.fisher_exact)
    assert got.to_dict("records") == [
        {"Study": "V 2024", "What": "Objective response", "Counts": "4/8 vs 5/25",
         "Printed p": "0.34", "Fisher's exact p (two-sided)": "0.170",
         "What the source tested": "Printed p = 0.34 is for the whole response table."}]
    no_control = rows.iloc[:1]
    assert discrepancies.printed_p_values(no_control, studies).empty


def test_the_registry_shows_printed_p_values_beside_recomputed_ones() -> None:
    ctx = open_analysis("x", str(Path(__file__).resolve().parents[2] / "data"),
                        "/nonexistent-results")
    reg = ctx.registry_tables()
    got = discrepancies.printed_p_values(reg.outcomes, reg.studies)
    pairs = set(zip(got["Printed p"], got["Fisher's exact p (two-sided)"], strict=True))
    assert {("0.34", "0.170"), ("0.765", "0.732")} <= pairs  # issue 13, item 18
