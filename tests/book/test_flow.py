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
    assert (a["screened"], a["her2_positive_ctcs"], a["treated"], a["evaluable"]) == (139, 7, 7, 7)
    assert pd.isna(a["with_ctcs"])
    assert b["evaluable"] == 11  # the experimental arm, not the control, not a subgroup
    assert pd.isna(b["treated"])
    assert (c["screened"], c["with_ctcs"], c["treated"]) == (1317, 95, 63)


def test_flow_display_names() -> None:
    flow = pd.DataFrame({"study_id": ["a"], "label": ["A"], "year": [2000], "screened": [1],
                         "with_ctcs": [1], "her2_positive_ctcs": [1], "treated": [1],
                         "evaluable": [1]})
    assert patient_flow.flow_display(flow).columns.tolist() == [
        "Trial", "Year", "Screened", "With CTCs", "With HER2+ CTCs", "Treated or randomised",
        "Analysed for response"]


def test_flow_for_figure_keeps_the_largest_trials_in_order() -> None:
    flow = pd.DataFrame({"study_id": list("abcd"), "screened": [10, None, 300, 40]})
    shown, which = patient_flow.flow_for_figure(flow, 2)
    assert shown["study_id"].tolist() == ["c", "d"]
    assert which.startswith("the 2 largest of the 4 trials")
    all_shown, text = patient_flow.flow_for_figure(flow, 10)
    assert len(all_shown) == 4 and text == "all 4 trials"
    with pytest.raises(ValueError, match="max_trials"):
        patient_flow.flow_for_figure(flow, 0)
