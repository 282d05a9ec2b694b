"""evidence.book.summary: robustness across estimators and the models run."""

from __future__ import annotations

import pytest

from evidence.book import summary


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
