"""evidence.book.synthesis: flow, feasibility, NNS claim, summary of findings, robustness."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evidence.book import synthesis

STUDIES = pd.DataFrame({"study_id": ["a2012", "b2019", "c2018"],
                        "label": ["A 2012", "B 2019", "C 2018"], "year": [2012, 2019, 2018]})


def outcome(study: str, name: str, events: int, total: int, arm: str = "all",
            role: str = "", subgroup: str = "") -> dict:
    return {"study_id": study, "arm": arm, "arm_role": role, "outcome": name,
            "subgroup": subgroup, "events": events, "total": total}


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
    flow = synthesis.flow_table(rows, STUDIES)
    assert list(flow["study_id"]) == ["a2012", "c2018", "b2019"]  # by year
    a, c, b = (flow.iloc[i] for i in range(3))
    assert (a["screened"], a["her2_positive_ctcs"], a["treated"], a["evaluable"]) == (139, 7, 7, 7)
    assert pd.isna(a["with_ctcs"])
    assert b["evaluable"] == 11  # the experimental arm, not the control, not a subgroup
    assert pd.isna(b["treated"])
    assert (c["screened"], c["with_ctcs"], c["treated"]) == (1317, 95, 63)


def test_nns_claim_of_the_seed_on_its_own_table() -> None:
    # Verschoor 2024 Table 2 and its own trial: screened / with HER2-positive CTCs
    table = pd.DataFrame({"label": list("PHJQV"), "events": [7, 24, 14, 69, 8],
                          "total": [139, 283, 154, 311, 64]})
    nns = synthesis.nns_per_trial(table)
    assert nns["nns"].tolist() == pytest.approx([139 / 7, 283 / 24, 11.0, 311 / 69, 8.0])
    claim = synthesis.nns_claim(nns["nns"], 9, 5, 20)
    assert claim["median"] == pytest.approx(11.0)
    assert claim["low"] == pytest.approx(311 / 69) and claim["high"] == pytest.approx(139 / 7)
    assert claim["range_holds"] and not claim["median_holds"] and not claim["holds"]
    assert "holds for the range but not for the median" in claim["text"]
    assert synthesis.nns_claim([8, 9, 10], 9, 8, 10)["holds"]
    with pytest.raises(ValueError, match="no trials"):
        synthesis.nns_claim([], 9, 5, 20)


def test_nns_with_no_positive_patient_is_infinite() -> None:
    nns = synthesis.nns_per_trial(pd.DataFrame({"label": ["x"], "events": [0], "total": [10]}))
    assert math.isinf(nns["nns"][0])


def test_feasibility_reproduces_the_seed_design() -> None:
    f = synthesis.feasibility({"estimate": 0.1, "ci_lower": 0.05, "ci_upper": 0.2},
                              p0=0.5, p1=0.8, alpha=0.05, beta=0.2)
    assert (f["design"]["n"], f["design"]["r"]) == (18, 13)
    assert f["nns"]["estimate"] == pytest.approx(10.0)
    assert (f["nns"]["ci_lower"], f["nns"]["ci_upper"]) == pytest.approx((5.0, 20.0))
    assert f["to_screen"]["estimate"] == pytest.approx(180.0)
    assert (f["to_screen"]["ci_lower"], f["to_screen"]["ci_upper"]) == pytest.approx((90, 360))
    text = synthesis.describe_feasibility(f)
    assert "n = 18" in text and "r = 13" in text and "about 180 patients" in text


def test_certainty_notes_rules() -> None:
    assert synthesis.certainty_notes(1, 40, None, 0.1, 0.2) == \
        "single study, not pooled; 40 patients: imprecise"
    notes = synthesis.certainty_notes(3, 500, 75.0, 0.1, 0.5, "single-arm trials")
    assert notes == ("only 3 studies; substantial heterogeneity (I² 75%); wide confidence "
                     "interval; single-arm trials")
    assert synthesis.certainty_notes(8, 900, 10.0, 0.1, 0.2) == "no major concern by these rules"


def test_sof_rows_from_pooled_and_custom_results() -> None:
    pooled = {"outcome": "objective_response", "k": 5, "patients": 60, "method": "GLMM",
              "pooled": {"estimate": 0.095, "ci_lower": 0.026, "ci_upper": 0.297,
                         "pi_lower": 0.009, "pi_upper": 0.565}, "model": {"i2": 53.0}}
    rows = synthesis.sof_rows(pooled, "ORR")
    assert rows[0]["estimate"] == 0.095 and rows[0]["scale"] == "proportion"
    assert "only 5 studies" not in rows[0]["certainty"]
    assert "60 patients: imprecise" in rows[0]["certainty"]
    custom = {"summary_of_findings": [{"outcome": "pfs", "k": 2, "estimate": 0.4,
                                       "ci_lower": 0.2, "ci_upper": 0.8, "scale": "ratio"}]}
    assert synthesis.sof_rows(custom, "HR")[0]["analysis"] == "HR"
    assert synthesis.sof_rows({"trials": []}, "flow") == []
    table = synthesis.sof_table(rows + synthesis.sof_rows(custom, "HR"))
    assert table["Estimate (95% CI)"].tolist() == ["9.5% (2.6% to 29.7%)", "0.40 (0.20 to 0.80)"]
    assert table["95% PI"].tolist() == ["0.9% to 56.5%", "—"]


def test_robustness_panel_and_summary() -> None:
    res = {"k": 5, "pooled": {"estimate": 0.0954},
           "studies": [{"study_id": s, "events": e, "total": n} for s, e, n in
                       [("p", 0, 7), ("h", 1, 14), ("j", 1, 11), ("q", 1, 20), ("v", 4, 8)]]}
    panel = synthesis.robustness_panel({"orr": res, "single": {"k": 1}}, {"orr": "ORR"})
    assert set(panel["analysis"]) == {"ORR"}
    assert len(panel) == 4 * 8  # 4 measures x (7 estimators + REML with Hartung-Knapp)
    reml = panel[(panel["measure"] == "PLO") & (panel["method"] == "REML") & ~panel["knha"]]
    assert reml["proportion"].iloc[0] == pytest.approx(0.128232954256837, rel=1e-9)  # metafor
    summary = synthesis.robustness_summary(panel)
    assert summary.loc[0, "Primary estimate"] == "9.5%"
    assert summary.loc[0, "Failed fits"] == 0
    assert synthesis.robustness_panel({}, {}).empty


def test_compare_within_study_matches_r() -> None:
    table = pd.DataFrame([
        outcome("z", "c", 29, 41, subgroup="biopsy_interval=gt_1y"),
        outcome("z", "c", 7, 17, subgroup="biopsy_interval=lt_1y"),
        outcome("z", "c", 1, 3, subgroup="line=first"),
        outcome("z", "c", 3, 7, subgroup="line=second"),
        outcome("z", "c", 5, 11, subgroup="line=third"),
    ])
    frame, test = synthesis.compare_within_study(table, "biopsy_interval")
    # R: fisher.test(matrix(c(29, 12, 7, 10), 2, byrow = TRUE))$p.value
    assert test["p_value"] == pytest.approx(0.0430428528844622, rel=1e-9)
    assert test["test"] == "Fisher's exact test"
    assert frame["level"].tolist() == ["gt_1y", "lt_1y"]
    _, test3 = synthesis.compare_within_study(table, "line")
    # R: chisq.test(matrix(c(1, 2, 3, 4, 5, 6), 3, byrow = TRUE), correct = FALSE)$p.value
    assert test3["p_value"] == pytest.approx(0.931734784568187, rel=1e-9)
    assert test3["test"] == "Pearson's χ² test"
    text = synthesis.describe_within_study(frame, test, "the share discordant")
    assert "gt 1y: 29/41 (70.7%" in text and "p = 0.043" in text
    with pytest.raises(ValueError, match="fewer than two levels"):
        synthesis.compare_within_study(table, "nothing")


def test_methods_table_reads_what_was_run(tmp_path) -> None:
    from pipeline_book import copy_book

    from evidence.pipeline.config import load_config

    config = load_config(copy_book(tmp_path))
    table = synthesis.methods_table(config, {
        "orr": {"method": "GLMM", "measure": "PLO", "knha": False, "k": 5,
                "ci_method": "clopper-pearson", "outcome": "objective_response",
                "evidence_version": "0.1.0"},
        "yield": {"method": "REML", "k": 1}})
    assert table.loc[0, "Model"].startswith("binomial-normal")
    assert table.loc[0, "Per-study CI"] == "exact (Clopper–Pearson)"
    assert table.loc[1, "Model"] == "none (single study)"
    assert table.loc[1, "Outcome"] == "her2_ctc_screening_yield"


def test_flow_display_names() -> None:
    flow = pd.DataFrame({"study_id": ["a"], "label": ["A"], "year": [2000], "screened": [1],
                         "with_ctcs": [1], "her2_positive_ctcs": [1], "treated": [1],
                         "evaluable": [1]})
    assert synthesis.flow_display(flow).columns.tolist() == [
        "Trial", "Year", "Screened", "With CTCs", "With HER2+ CTCs", "Treated or randomised",
        "Analysed for response"]


def test_sof_rows_for_ratios_two_arm_and_transitions() -> None:
    studies = pd.DataFrame({"study_id": ["v", "t"], "label": ["V 2024", "T 2018"],
                            "randomized": ["no", "yes"]})
    hr = {"measure": "HR", "k": 2, "method": "REML", "outcome": "pfs",
          "pooled": {"estimate": 0.36, "ci_lower": 0.2, "ci_upper": 0.65,
                     "pi_lower": 0.2, "pi_upper": 0.65}, "model": {"i2": 0.0}}
    row = synthesis.sof_rows(hr, "PFS HR", studies)[0]
    assert row["scale"] == "ratio" and row["patients"] is None
    assert row["certainty"] == "only 2 studies; populations and agents differ between studies"
    two_arm = {"effects": [
        {"study_id": "v", "outcome": "objective_response", "measure": "RR", "n1i": 8,
         "n2i": 25, "estimate": 2.5, "ci_lower": 0.88, "ci_upper": 7.1},
        {"study_id": "v", "outcome": "objective_response", "measure": "OR", "n1i": 8,
         "n2i": 25, "estimate": 4.0, "ci_lower": 0.7, "ci_upper": 21.8},
        {"study_id": "t", "outcome": "ctc_persistence", "measure": "RR", "n1i": 31,
         "n2i": 32, "estimate": 1.29, "ci_lower": 0.38, "ci_upper": 4.4}]}
    rows = synthesis.sof_rows(two_arm, "Two-arm", studies)
    assert [r["analysis"] for r in rows] == [
        "Two-arm: V 2024, objective response (risk ratio)",
        "Two-arm: T 2018, ctc persistence (risk ratio)"]
    assert rows[0]["certainty"].endswith("non-randomised comparison")
    assert rows[1]["certainty"].endswith("; randomised")
    rates = {"rates": [
        {"label": "zero → low", "identified": True, "total": 51, "proportion": 25 / 51,
         "ci_lower": 0.35, "ci_upper": 0.63},
        {"label": "low → zero", "identified": False, "total": 125, "proportion": None}]}
    assert [r["analysis"] for r in synthesis.sof_rows(rates, "Shi")] == ["Shi: zero → low"]


def test_flow_for_figure_keeps_the_largest_trials_in_order() -> None:
    flow = pd.DataFrame({"study_id": list("abcd"), "screened": [10, None, 300, 40]})
    shown, which = synthesis.flow_for_figure(flow, 2)
    assert shown["study_id"].tolist() == ["c", "d"]
    assert which.startswith("the 2 largest of the 4 trials")
    all_shown, text = synthesis.flow_for_figure(flow, 10)
    assert len(all_shown) == 4 and text == "all 4 trials"
    with pytest.raises(ValueError, match="max_trials"):
        synthesis.flow_for_figure(flow, 0)
