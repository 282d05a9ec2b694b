"""Tests for evidence.book.hazard_ratios: harmonised, pooled and described hazard ratios.

Reference values: see ``chapter_data.py`` (R 4.2.2, metafor 3.8-1, and hand-worked tables).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from chapter_data import R_HR_FIT, R_HR_VI, effect_rows

from evidence.book import hazard_ratios
from evidence.stats.pooling import rma


def test_harmonise_inverts_the_reverse_comparison() -> None:
    rows = pd.DataFrame({"study_id": ["a", "b", "c"],
                         "comparison": ["x_vs_y", "y_vs_x", "x_vs_z"],
                         "estimate": [2.0, 2.0, 3.0], "ci_lower": [1.25, 1.25, 1.0],
                         "ci_upper": [4.0, 4.0, 9.0], "p_value": [0.01, 0.01, 0.05]})
    out = hazard_ratios.harmonise_hazard_ratios(rows, "x_vs_y")
    assert out["study_id"].tolist() == ["a", "b"]
    assert out["direction"].tolist() == ["as reported", "inverted"]
    assert out.loc[1, ["hr", "hr_lower", "hr_upper"]].tolist() == pytest.approx(
        [0.5, 0.25, 0.8])
    assert out["comparison"].tolist() == ["x_vs_y", "x_vs_y"]
    assert out["reported_comparison"].tolist() == ["x_vs_y", "y_vs_x"]
    shared = pd.DataFrame({"study_id": ["a"], "comparison": ["ctc_her2_negative_vs_positive"],
                           "estimate": [4.0], "ci_lower": [2.0], "ci_upper": [8.0],
                           "p_value": [0.001]})
    inv = hazard_ratios.harmonise_hazard_ratios(shared, "ctc_her2_positive_vs_negative")
    assert inv.loc[0, ["hr", "hr_lower", "hr_upper"]].tolist() == pytest.approx(
        [0.25, 0.125, 0.5])
    with pytest.raises(ValueError, match="not '<numerator>_vs_<reference>'"):
        hazard_ratios.harmonise_hazard_ratios(rows, "x_versus_y")


def test_pooled_log_hazard_ratios_match_metafor() -> None:
    table = hazard_ratios.harmonise_hazard_ratios(effect_rows(), "ctc_her2_positive_vs_negative")
    pooled, shown = hazard_ratios.split_by_adjustment(table, "no")
    assert pooled["study_id"].tolist() == ["zhang2016", "jacot2025"]
    assert shown["adjusted"].tolist() == ["yes"]
    es = hazard_ratios.hazard_ratio_effects(pooled)
    assert es.measure == "HR"
    assert np.asarray(es.vi) == pytest.approx(R_HR_VI, rel=1e-9)
    for method, (est, se, tau2, q) in R_HR_FIT.items():
        fit = rma(es, method=method)
        assert (fit.estimate, fit.se, fit.tau2, fit.q) == pytest.approx(
            (est, se, tau2, q), rel=1e-8, abs=1e-10)
    lo, hi = hazard_ratios.hazard_ratio_study_ci(pooled, es)
    assert (lo[0], hi[0]) == (0.156, 0.62)  # as reported
    se = math.sqrt(R_HR_VI[1])
    assert (lo[1], hi[1]) == pytest.approx((0.48 * math.exp(-1.959963984540054 * se),
                                            0.48 * math.exp(1.959963984540054 * se)), rel=1e-9)
    with pytest.raises(ValueError, match="more than one hazard ratio for \\['zhang2016'\\]"):
        hazard_ratios.hazard_ratio_effects(table)
    with pytest.raises(ValueError, match="unknown pool_adjusted 'maybe'"):
        hazard_ratios.split_by_adjustment(table, "maybe")


def test_hazard_ratio_words_and_table() -> None:
    studies = pd.DataFrame({
        "study_id": ["zhang2016", "jacot2025"], "label": ["Zhang 2016", "Jacot 2025"],
        "tissue_her2": ["positive", "positive"], "setting": ["metastatic", "metastatic"],
        "intervention": ["trastuzumab or lapatinib + chemotherapy", "T-DXd"],
        "her2_cutoff": ["> 30% 3+", "ACCEPT"], "randomized": ["no", "no"]})
    table = hazard_ratios.harmonise_hazard_ratios(effect_rows(), "ctc_her2_positive_vs_negative")
    pooled, shown = hazard_ratios.split_by_adjustment(table, "no")
    es = hazard_ratios.hazard_ratio_effects(pooled)
    text = hazard_ratios.describe_hazard_ratios(rma(es, method="REML"), rma(es, method="FE"),
                                           pooled, shown, studies, "A with B",
                                           "progression-free survival")
    # exp(-1.02599) = 0.358, exp(-1.02599 -/+ 1.95996 * 0.29989) = 0.199, 0.645
    assert ("hazard ratio of 0.36 (95% CI 0.20 to 0.65; random-effects model, REML, normal (z) "
            "interval)") in text
    assert "none had to be inverted" in text
    assert "The pooled interval excludes 1." in text
    assert "back-calculated from the printed p-value" in text
    assert ("The adjusted (multivariable) estimate is shown, not pooled: Zhang 2016 0.38 "
            "(95% CI 0.17 to 0.83)") in text
    assert "- *Jacot 2025*: tissue HER2-positive" in text
    shown_table = hazard_ratios.hazard_ratio_table(table, studies, "no")
    assert shown_table["Pooled"].tolist() == ["yes", "no (shown only)", "yes"]
    assert shown_table["SE from"].tolist() == ["reported CI", "reported CI", "p-value"]
    assert shown_table.iloc[2]["Hazard ratio (95% CI)"] == "0.48 (CI not reported)"
    notes = hazard_ratios.hazard_ratio_notes(table, studies)
    assert "- *Jacot 2025, unadjusted (univariable)*: no CI given" in notes
    es1 = hazard_ratios.hazard_ratio_effects(pooled.iloc[[0]])
    one = hazard_ratios.describe_hazard_ratios(rma(es1, method="REML"), rma(es1, method="FE"),
                                          pooled.iloc[[0]], shown.iloc[0:0], studies, "A",
                                          "x")
    assert "Only one unadjusted (univariable) estimate (Zhang 2016)" in one
    assert "nothing is pooled" in one and "Population:" in one




def test_pooled_hazard_ratio_uses_the_ad_hoc_interval_and_the_panel_the_rest() -> None:
    table = hazard_ratios.harmonise_hazard_ratios(effect_rows(), "ctc_her2_positive_vs_negative")
    pooled, _ = hazard_ratios.split_by_adjustment(table, "no")
    es = hazard_ratios.hazard_ratio_effects(pooled)
    re, fe = hazard_ratios.pool_hazard_ratios(es)
    z = rma(es, method="REML")
    assert re.test == "adhoc" and fe.method == "FE"
    assert re.estimate == pytest.approx(z.estimate, abs=1e-12)
    # never narrower than the normal interval; with k = 2, t has one degree of freedom
    assert re.ci_lower <= z.ci_lower and re.ci_upper >= z.ci_upper
    panel = hazard_ratios.hazard_ratio_panel(es)
    assert list(zip(panel["Model"], panel["Interval"], strict=True)) == [
        ("REML (primary)", "Hartung–Knapp ad hoc"), ("REML", "Hartung–Knapp"), ("REML", "z"),
        ("DL", "z"), ("PM", "z"), ("FE", "z")]
    assert panel.loc[2, "Hazard ratio (95% CI)"] == "0.36 (0.20 to 0.65)"
    assert (panel["95% PI"] == "—").all()  # k = 2: no prediction interval
    marked = hazard_ratios.hazard_ratio_panel(es, ("REML", "z"))
    assert marked.loc[2, "Model"] == "REML (primary)" and marked.loc[0, "Model"] == "REML"


def test_population_phrase_names_tissue_status_and_reference_groups() -> None:
    studies = pd.DataFrame({"study_id": ["z", "j", "r"], "label": ["Z 2016", "J 2025", "R"],
                            "design": ["prospective cohort", "prospective cohort (abstract)",
                                       "randomized phase II"],
                            "randomized": ["no", "no", "yes"],
                            "tissue_her2": ["positive", "positive", "negative"]})
    refs = {"z": "HER2-negative CTCs", "j": "no HER2-positive CTCs"}
    assert hazard_ratios.population_phrase(["z", "j"], refs, studies) == (
        "2 observational cohorts, tissue HER2-positive; reference groups differ: "
        "HER2-negative CTCs (Z 2016) vs no HER2-positive CTCs (J 2025)")
    same = hazard_ratios.population_phrase(["z", "j"], {"z": "x", "j": "x"}, studies)
    assert same.endswith("; reference group: x")
    mixed = hazard_ratios.population_phrase(["z", "r"], {"z": "x"}, studies)
    assert mixed == ("2 studies, tissue HER2 status differs: positive (Z 2016), negative (R); "
                     "reference groups not all recorded: x (Z 2016) vs not recorded (R)")


def test_reference_groups_of_inverted_rows_name_the_other_group() -> None:
    table = pd.DataFrame({"study_id": ["a", "b", "c"], "direction": ["as reported", "inverted",
                                                                     "as reported"],
                          "reference_group": ["HER2-negative CTCs", "HER2-positive CTCs", ""]})
    refs = hazard_ratios.reference_groups(table)
    assert refs["a"] == "HER2-negative CTCs" and refs["c"] == ""
    assert refs["b"].startswith("the group compared with HER2-positive CTCs")


def test_pooled_patients_is_the_sum_only_when_every_pooled_row_states_it() -> None:
    rows = pd.DataFrame({"study_id": ["z", "j"], "patients": ["58", "60"]})
    assert hazard_ratios.pooled_patients(rows) == 118
    assert hazard_ratios.pooled_patients(rows.assign(patients=["58", ""])) is None
    assert hazard_ratios.pooled_patients(rows.drop(columns="patients")) is None
    assert hazard_ratios.pooled_patients(rows.iloc[:0]) is None


def test_direction_labels_follow_the_harmonised_direction() -> None:
    """HR = hazard of the first-named group over the second's: below 1 the first group
    has the lower hazard. The labels name the groups in that order, in words."""
    assert hazard_ratios.hazard_ratio_direction_labels("ctc_her2_positive_vs_negative") == (
        "Lower hazard with HER2-positive CTCs", "Lower hazard with HER2-negative CTCs")
    # the reverse comparison swaps the sides, as harmonising inverts the ratios
    assert hazard_ratios.hazard_ratio_direction_labels("ctc_her2_negative_vs_positive") == (
        "Lower hazard with HER2-negative CTCs", "Lower hazard with HER2-positive CTCs")
    # groups without a reader's name are spelt out from their slugs
    assert hazard_ratios.comparison_groups("therapy_line_ge2_vs_1") == (
        "therapy_line_ge2", "therapy_line_1")
    assert hazard_ratios.hazard_ratio_direction_labels("lapatinib_chemo_vs_trastuzumab_chemo"
                                                       ) == (
        "Lower hazard with lapatinib chemo", "Lower hazard with trastuzumab chemo")
    with pytest.raises(ValueError, match="not '<numerator>_vs_<reference>'"):
        hazard_ratios.hazard_ratio_direction_labels("x_versus_y")
