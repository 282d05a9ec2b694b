"""evidence.book.summary: the summary of findings, robustness and the models run."""

from __future__ import annotations

import pandas as pd
import pytest

from evidence.book import summary


def test_certainty_notes_rules() -> None:
    assert summary.certainty_notes(1, 40, None, 0.1, 0.2) == \
        "single study, not pooled; 40 patients: imprecise"
    notes = summary.certainty_notes(3, 500, 75.0, 0.1, 0.5, "single-arm trials")
    assert notes == ("only 3 studies; substantial heterogeneity (I² 75%); wide confidence "
                     "interval; single-arm trials")
    assert summary.certainty_notes(8, 900, 10.0, 0.1, 0.2) == "no major concern by these rules"


def test_sof_rows_from_pooled_and_custom_results() -> None:
    pooled = {"outcome": "objective_response", "k": 5, "patients": 60, "method": "GLMM",
              "pooled": {"estimate": 0.095, "ci_lower": 0.026, "ci_upper": 0.297,
                         "pi_lower": 0.009, "pi_upper": 0.565}, "model": {"i2": 53.0}}
    rows = summary.sof_rows(pooled, "ORR")
    assert rows[0]["estimate"] == 0.095 and rows[0]["scale"] == "proportion"
    assert "only 5 studies" not in rows[0]["certainty"]
    assert "60 patients: imprecise" in rows[0]["certainty"]
    custom = {"summary_of_findings": [{"outcome": "pfs", "k": 2, "estimate": 0.4,
                                       "ci_lower": 0.2, "ci_upper": 0.8, "scale": "ratio"}]}
    assert summary.sof_rows(custom, "HR")[0]["analysis"] == "HR"
    assert summary.sof_rows({"trials": []}, "flow") == []
    table = summary.sof_table(rows + summary.sof_rows(custom, "HR"))
    assert table["Estimate (95% CI)"].tolist() == ["9.5% (2.6% to 29.7%)", "0.40 (0.20 to 0.80)"]
    assert table["95% PI"].tolist() == ["0.9% to 56.5%", "—"]


def test_robustness_panel_and_summary() -> None:
    res = {"k": 5, "pooled": {"estimate": 0.0954},
           "studies": [{"study_id": s, "events": e, "total": n} for s, e, n in
                       [("p", 0, 7), ("h", 1, 14), ("j", 1, 11), ("q", 1, 20), ("v", 4, 8)]]}
    panel = summary.robustness_panel({"orr": res, "single": {"k": 1}}, {"orr": "ORR"})
    assert set(panel["analysis"]) == {"ORR"}
    # 4 measures x (7 estimators + REML with Hartung-Knapp and ad hoc) + GLMM z and t
    assert len(panel) == 4 * 9 + 2
    glmm_t = panel[(panel["method"] == "GLMM") & (panel["test"] == "t")].iloc[0]
    assert glmm_t["prop_ci_lower"] < glmm_t["proportion"] < glmm_t["prop_ci_upper"]
    reml = panel[(panel["measure"] == "PLO") & (panel["method"] == "REML") & (panel["test"] == "z")]
    assert reml["proportion"].iloc[0] == pytest.approx(0.128232954256837, rel=1e-9)  # metafor
    spread = summary.robustness_summary(panel)
    assert spread.loc[0, "Primary estimate"] == "9.5%"
    assert spread.loc[0, "Failed fits"] == 0
    assert summary.robustness_panel({}, {}).empty


def test_methods_table_reads_what_was_run(tmp_path) -> None:
    from pipeline_book import copy_book

    from evidence.pipeline.config import load_config

    config = load_config(copy_book(tmp_path))
    table = summary.methods_table(config, {
        "orr": {"method": "GLMM", "measure": "PLO", "knha": False, "k": 5,
                "ci_method": "clopper-pearson", "outcome": "objective_response",
                "evidence_version": "0.1.0"},
        "yield": {"method": "REML", "k": 1}})
    assert table.loc[0, "Model"].startswith("binomial-normal")
    assert table.loc[0, "Per-study CI"] == "exact (Clopper–Pearson)"
    assert table.loc[1, "Model"] == "none (single study)"
    assert table.loc[1, "Outcome"] == "her2_ctc_screening_yield"


def test_sof_rows_for_ratios_two_arm_and_transitions() -> None:
    studies = pd.DataFrame({"study_id": ["v", "t"], "label": ["V 2024", "T 2018"],
                            "randomized": ["no", "yes"]})
    hr = {"measure": "HR", "k": 2, "method": "REML", "outcome": "pfs",
          "pooled": {"estimate": 0.36, "ci_lower": 0.2, "ci_upper": 0.65,
                     "pi_lower": 0.2, "pi_upper": 0.65}, "model": {"i2": 0.0}}
    row = summary.sof_rows(hr, "PFS HR", studies)[0]
    assert row["scale"] == "ratio" and row["patients"] is None
    assert row["certainty"] == "only 2 studies; populations and agents differ between studies"
    two_arm = {"effects": [
        {"study_id": "v", "outcome": "objective_response", "measure": "RR", "n1i": 8,
         "n2i": 25, "estimate": 2.5, "ci_lower": 0.88, "ci_upper": 7.1},
        {"study_id": "v", "outcome": "objective_response", "measure": "OR", "n1i": 8,
         "n2i": 25, "estimate": 4.0, "ci_lower": 0.7, "ci_upper": 21.8},
        {"study_id": "t", "outcome": "ctc_persistence", "measure": "RR", "n1i": 31,
         "n2i": 32, "estimate": 1.29, "ci_lower": 0.38, "ci_upper": 4.4}]}
    rows = summary.sof_rows(two_arm, "Two-arm", studies)
    assert [r["analysis"] for r in rows] == [
        "Two-arm: V 2024, objective response (risk ratio)",
        "Two-arm: T 2018, ctc persistence (risk ratio)"]
    assert rows[0]["certainty"].endswith("non-randomised comparison")
    assert rows[1]["certainty"].endswith("; randomised")
    rates = {"rates": [
        {"label": "zero → low", "identified": True, "total": 51, "proportion": 25 / 51,
         "ci_lower": 0.35, "ci_upper": 0.63},
        {"label": "low → zero", "identified": False, "total": 125, "proportion": None}]}
    assert [r["analysis"] for r in summary.sof_rows(rates, "Shi")] == ["Shi: zero → low"]




def test_describe_defaults_states_the_configured_choice() -> None:
    from types import SimpleNamespace

    a = SimpleNamespace
    config = SimpleNamespace(
        defaults={"pool_proportions": {"method": "GLMM", "test": "t"},
                  "hazard_ratios": {"test": "adhoc"}},
        analyses=[a(id="orr", template="pool_proportions",
                    parameters={"method": "GLMM", "test": "t"}),
                  a(id="yield_z", template="pool_proportions",
                    parameters={"method": "GLMM", "test": "z"}),
                  a(id="pfs", template="hazard_ratios", parameters={"test": "adhoc"})])
    text = summary.describe_defaults(config)
    assert ("- Pooled proportions: binomial-normal random-effects model (GLMM, exact binomial "
            "likelihood); Student's t interval — except yield\\_z, which set their own.") in text
    assert ("- Pooled hazard ratios: Hartung–Knapp interval, never narrower than the normal "
            "one (ad hoc).") in text
    none = summary.describe_defaults(SimpleNamespace(defaults={}, analyses=[]))
    assert "sets no defaults" in none
