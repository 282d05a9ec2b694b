"""evidence.book.flow: the patient flow of the trials."""

from __future__ import annotations

import pandas as pd
import pytest
from synthesis_data import STUDIES, outcome

from evidence.book import flow as patient_flow


def test_flow_table_takes_each_stage_from_its_outcome() -> None:
    rows = pd.DataFrame([
        outcome("a2012", "her2_ctc_screening_yield", 7, 139),
        outcome("a2012", "treated_among_eligible", 7, 7),
        outcome("a2012", "objective_response", 0, 7, role="experimental"),
        outcome("b2019", "her2_ctc_screening_yield", 14, 154),
        outcome("b2019", "objective_response", 1, 11, arm="x", role="experimental"),
        outcome("b2019", "objective_response", 5, 25, arm="ctl", role="control"),
        outcome("b2019", "objective_response", 0, 5, subgroup="hormone_receptor=negative"),
        outcome("c2018", "ctc_detection", 95, 1317),
        outcome("c2018", "randomized_among_eligible", 63, 95),
    ])
    flow = patient_flow.flow_table(rows, STUDIES)
    assert list(flow["study_id"]) == ["a2012", "c2018", "b2019"]  # by year
    a, c, b = (flow.iloc[i] for i in range(3))
    assert (a["screened"], a["her2_positive_ctcs"], a["treated"],
            a["response_denominator"]) == (139, 7, 7, 7)
    assert pd.isna(a["with_ctcs"]) and pd.isna(a["randomised"])
    # the experimental arm, not the control, not a subgroup
    assert b["response_denominator"] == 11
    assert pd.isna(b["treated"])
    # issue 13 item 10: Treat CTC's 63 were randomised (32 to observation), not treated
    assert (c["screened"], c["with_ctcs"], c["randomised"]) == (1317, 95, 63)
    assert pd.isna(c["treated"])


def test_flow_display_names() -> None:
    flow = pd.DataFrame({"study_id": ["a"], "label": ["A"], "year": [2000], "screened": [1],
                         "with_ctcs": [None], "her2_positive_ctcs": [1], "randomised": [None],
                         "treated": [1], "response_denominator": [1]})
    shown = patient_flow.flow_display(flow, {("A", "randomised"): "not randomised"})
    assert shown.columns.tolist() == [
        "Trial", "Year", "Screened", "With CTCs", "With HER2+ CTCs", "Randomised",
        "Treated (anti-HER2)", "In response analysis (all treated)"]
    assert (shown["With CTCs"][0], shown["Randomised"][0]) == ("n.r.", "n.a.")


def test_flow_for_figure_keeps_the_largest_trials_in_order() -> None:
    flow = pd.DataFrame({"study_id": list("abcd"), "screened": [10, None, 300, 40]})
    shown, which = patient_flow.flow_for_figure(flow, 2)
    assert shown["study_id"].tolist() == ["c", "d"]
    assert which.startswith("the 2 largest of the 4 studies with flow counts")
    all_shown, text = patient_flow.flow_for_figure(flow, 10)
    assert len(all_shown) == 4 and text == "all 4 studies with flow counts"
    with pytest.raises(ValueError, match="max_trials"):
        patient_flow.flow_for_figure(flow, 0)


def _studies() -> pd.DataFrame:
    return pd.DataFrame({
        "study_id": ["s", "r", "d21", "d24", "scr", "geo", "obs"],
        "label": ["Single", "Rand", "D 2021", "D 2024", "Screening", "Geo", "Cohort"],
        "year": [2012, 2018, 2021, 2024, 2021, 2012, 2016],
        "randomized": ["no", "yes", "yes", "yes", "no", "yes", "no"],
        "her2_cutoff_group": ["at_least_one_ctc", "not_applicable", "at_least_one_ctc",
                              "at_least_one_ctc", "at_least_one_ctc", "not_applicable",
                              "at_least_one_ctc"],
        "cohort": ["", "", "d3", "d3", "d3", "", ""]})


def test_flow_marks_stages_that_do_not_apply() -> None:
    rows = pd.DataFrame([outcome("s", "her2_ctc_screening_yield", 7, 139),
                         outcome("r", "ctc_detection", 95, 1317),
                         outcome("r", "randomized_among_eligible", 63, 95)])
    flow = patient_flow.flow_table(rows, _studies())
    assert patient_flow.flow_not_applicable(flow, _studies()) == {
        ("Single", "randomised"): "not randomised",
        ("Rand", "her2_positive_ctcs"): "not a criterion"}


def test_trials_without_flow_are_named_with_the_reason() -> None:
    # issue 13 item 10: DETECT III was silently absent from "all 6 trials"
    rows = pd.DataFrame([
        outcome("s", "her2_ctc_screening_yield", 7, 139),
        outcome("s", "objective_response", 0, 7, role="experimental"),
        outcome("scr", "her2_ctc_screening_yield", 174, 1933),
        outcome("geo", "relapse", 4, 36, arm="t", role="experimental"),
        outcome("obs", "ctc_detection", 10, 50),
    ])
    flow = patient_flow.flow_table(rows, _studies())
    absent = patient_flow.trials_without_flow(rows, _studies(), flow)
    assert absent == [
        {"labels": ["Rand"], "randomised": True, "counted_under": []},
        {"labels": ["D 2021", "D 2024"], "randomised": True, "counted_under": ["Screening"]},
        {"labels": ["Geo"], "randomised": True, "counted_under": []}]
    text = patient_flow.describe_absent(absent, len(flow))
    assert text.startswith("The flow shows 2 studies with a screening, allocation or "
                           "treatment count in the registry. 3 interventional trials")
    assert "**D 2021** (randomised; also reported as D 2024): its screening is counted " \
           "with Screening" in text
    assert "**Geo** (randomised): no screening, allocation or treatment count" in text
    assert patient_flow.describe_absent([], 2).endswith(
        "Every interventional trial of the registry is among them.")
