"""evidence.book.pooled (with the text primitives and tables it uses): the words and display
tables of a pooled chapter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chapter_data import proportion_table
from pipeline_book import copy_book

from evidence.book import pooled, tables, text
from evidence.book.pooled import influence, pool_table
from evidence.book.subgroups import subgroup_pool
from evidence.book.tables import summary_frame
from evidence.pipeline.context import AnalysisContext, open_analysis

table = proportion_table


def test_formatters() -> None:
    assert text.fmt_pct(0.12823) == "12.8%"
    assert text.fmt_pct(None) == text.fmt_pct(float("nan")) == "n.r."
    assert text.fmt_ci(0.0388, 0.3488) == "3.9% to 34.9%"
    assert text.fmt_ci(0.156, 0.62, pct=False, digits=3) == "0.156 to 0.620"
    assert text.fmt_p(0.00049) == "p < 0.001" and text.fmt_p(0.0684) == "p = 0.068"
    assert text.fmt_p(None) == "p not available"


def test_describe_pooled_states_estimate_intervals_and_caution() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    text = pooled.describe_pooled(res, "responded")
    assert text.startswith("Across 5 studies with 60 patients (7 events), an estimated 12.8% "
                           "responded (95% CI 3.9% to 34.9%;")
    assert "prediction interval" in text and "1.3% and 62.7%" in text
    fe = pooled.describe_pooled(pool_table(table([1, 2, 3, 4, 5], [10] * 5), method="FE"), "x")
    assert "prediction interval" not in fe and "With only" not in fe
    few = pooled.describe_pooled(pool_table(table([1, 2], [10, 10]), method="REML"), "x")
    assert "With only 2 studies" in few


def test_single_study_is_described_as_not_pooled() -> None:
    res = pool_table(table([4], [8]))
    text = pooled.describe_pooled(res, "were progression-free")
    assert text.startswith("Only one study (Study 0) reports this outcome, so nothing is pooled")
    assert "4 of 8 patients (50.0%, exact 95% CI 15.7% to 84.3%)" in text
    assert pooled.describe_heterogeneity(res.result).startswith("Heterogeneity cannot")


def test_heterogeneity_sentence() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    text = pooled.describe_heterogeneity(res.result)
    assert "τ² = 1.111 (95% CI 0.000 to 11.178)" in text
    assert "I² = 52.4%" in text and "Q = 8.72 on 4 df, p = 0.068" in text
    assert ("evidence (p < 0.10, the usual threshold for this test) that the studies differ "
            "more than chance allows") in text
    glmm = pooled.describe_heterogeneity(pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]),
                                                    method="GLMM").result)
    assert "Wald-type test of heterogeneity" in glmm
    same = pooled.describe_heterogeneity(pool_table(table([2, 2, 2], [20, 20, 20]),
                                                    method="REML").result)
    assert "little statistical evidence of heterogeneity (p ≥ 0.10)" in same


def test_tables() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    st = pooled.study_table(res)
    assert st.columns.tolist() == ["Study", "Year", "Events / total",
                                   "Proportion (95% exact CI)", "Weight"]
    assert st.loc[0, "Events / total"] == "0 / 7"
    assert st.loc[0, "Proportion (95% exact CI)"].startswith("0.0% (0.0% to 41.0%)")
    glmm = pooled.study_table(pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]),
                                         method="GLMM"))
    assert "Weight" not in glmm.columns
    from evidence.stats.sensitivity import estimator_panel

    panel = pooled.panel_table(summary_frame(estimator_panel([0, 1, 1, 1, 4],
                                                             [7, 14, 11, 20, 8])))
    assert len(panel) == 36
    # a raw-proportion (PR) Wald interval running below 0% is shown truncated, and says so;
    # the logit (PLO) and arcsine (PAS/PFT) intervals stay inside 0%-100% and carry no note
    cut = panel["Note"] == "interval truncated to 0%–100% for display"
    assert (panel.loc[~cut, "Note"] == "").all()
    assert set(panel.loc[cut, "Measure"]) == {"Raw proportion (PR)"} and cut.sum() == 6
    # every measure reads with its name, never as a bare code ("PR" is also partial response)
    assert set(panel["Measure"]) == {"Logit (PLO)", "Freeman–Tukey (PFT)", "Arcsine (PAS)",
                                     "Raw proportion (PR)"}
    assert not panel["Pooled (95% CI)"].str.contains("−|-").any()
    hk = panel[(panel["Measure"] == "Logit (PLO)") & (panel["Method"] == "REML")
               & (panel["Interval"] == "Hartung–Knapp")]
    assert hk["Pooled (95% CI)"].iloc[0].startswith("12.8%")
    # the book's panel adds the GLMM under both intervals and marks the primary analysis;
    # metafor rma.glmm(measure="PLO", test="t"): 9.54% (1.46% to 42.89%), PI 0.30% to 78.68%
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="GLMM", test="t")
    full = pooled.estimator_panel_table(res)
    primary = full[full["Method"].str.endswith("(primary)")]
    assert len(primary) == 1 and primary["Interval"].iloc[0] == "t (k − 1 df)"
    assert primary["Pooled (95% CI)"].iloc[0] == "9.5% (1.5% to 42.9%)"
    assert primary["95% PI"].iloc[0] == "0.3% to 78.7%"
    two = pooled.panel_table(summary_frame(estimator_panel([1, 2], [10, 10])))
    assert (two["95% PI"] == "—").all()  # no prediction interval below three studies


@pytest.mark.parametrize("method", ["GLMM", "REML"])
def test_leave_one_out_and_subgroup_words(method: str) -> None:
    from evidence.book.pooled import influence

    t = table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])
    t["group"] = ["a", "a", "b", "b", "c"]
    res = pool_table(t, method=method)
    loo = influence(res)
    labels = dict(zip(t["study_id"], t["label"], strict=True))
    assert len(pooled.loo_table(loo, labels)) == 5
    assert "the most influential study is Study 4" in pooled.describe_loo(loo, res.pooled,
                                                                           labels)
    sub = subgroup_pool(res, t, "group")
    assert sub.single_study == ("c",)


def test_no_influence_analysis_says_why() -> None:
    assert pooled.no_influence_analysis(2, 100).startswith("With fewer than three studies")
    text = pooled.no_influence_analysis(1000, 100)
    assert "With 1000 studies" in text and "up to 100 studies" in text
    assert "`max_influence_k`" in text



@pytest.mark.parametrize("method", ["GLMM", "REML"])
def test_leave_one_out_says_which_refits_failed_and_why(method: str) -> None:
    from evidence.book.pooled import influence

    t = table([0, 0, 4], [10, 12, 15])
    res = pool_table(t, method=method)
    loo = influence(res)
    labels = dict(zip(t["study_id"], t["label"], strict=True))
    words = pooled.describe_loo(loo, res.pooled, labels)
    shown = pooled.loo_table(loo, labels)
    if method == "REML":  # with 1/2 added to the zero cells every refit is fitted
        assert "could not be fitted" not in words
        assert not shown["Pooled without it (95% CI)"].str.startswith("not fitted").any()
        return
    # GLMM without the only study with events: no finite maximum of the likelihood
    reason = text.escape_markdown("GLMM: every study has 0 events; the likelihood has no "
                                    "finite maximum (metafor: 'Cannot fit ML model')")
    assert words.endswith(f"Without Study 2 the model could not be fitted ({reason}); that "
                          "refit is left out of the range above.")
    fitted = [e for e in loo.back_estimate if e == e]
    assert f"between {text.fmt_pct(min(fitted))} and {text.fmt_pct(max(fitted))}" in words
    assert "nan" not in words.lower() and "n.r." not in words
    row = shown.iloc[2]
    assert row["Pooled without it (95% CI)"].startswith("not fitted: GLMM: every study has 0")
    assert (row["τ²"], row["I²"]) == ("—", "—")
    # nothing fitted at all
    nothing = dataclasses.replace(loo, back_estimate=loo.back_estimate * float("nan"),
                                  reasons=tuple("test" for _ in loo.study_ids))
    assert pooled.describe_loo(nothing, res.pooled, labels) == (
        "No leave-one-out refit could be fitted. Without Study 0, Study 1 and Study 2 the "
        "model could not be fitted (test); those refits are marked in the table.")

def test_show_and_prose_escape_registry_text() -> None:
    t = table([1, 2, 3], [10, 10, 10])
    t.loc[0, "label"] = "<b>Bold</b> <script>x = 1</script> *star*"
    res = pool_table(t, method="REML")
    html = tables.show(pooled.study_table(res)).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Bold" not in html
    single = pooled.describe_pooled(pool_table(t.iloc[[0]]), "x")
    assert "<script>" not in single and r"\<script\>" in single and r"\*star\*" in single
    assert text.escape_markdown("a_b [c](d)") == r"a\_b \[c\]\(d\)"


def test_show_gives_reproducible_distinct_table_ids() -> None:
    import re

    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    ids = [re.search(r'<table id="([^"]+)"', tables.show(f).to_html()).group(1)
           for f in (frame, frame, frame.assign(a=[1, 3]))]
    assert len(set(ids)) == 3  # a second showing of the same table gets its own id
    assert ids[0].split("_")[:2] == ids[1].split("_")[:2]  # made from the content
    assert ids[0].split("_")[1] != ids[2].split("_")[1]
    counter = int(ids[1].rsplit("_", 1)[1])
    assert int(ids[2].rsplit("_", 1)[1]) == counter + 1  # and the order: no randomness
    shown = tables.show(frame)
    assert shown._repr_html_() == shown.to_html()
    assert repr(shown) == "<table of 2 row(s): a, b>"  # no memory address


@pytest.fixture
def ctx(tmp_path: Path) -> AnalysisContext:
    root = copy_book(tmp_path)
    return open_analysis("orr", str(root / "data"), str(root / "results"))


ORR = ([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])


def test_pool_table_rejects_two_rows_per_study(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    with pytest.raises(ValueError, match="more than one row per study"):
        pool_table(table.iloc[[0, 0]])


def test_influence_and_subgroup_pool(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    res = pool_table(table, method="REML")
    with pytest.raises(ValueError, match="at least 3 studies"):
        influence(res)
    with pytest.raises(KeyError, match="no study column 'colour'"):
        subgroup_pool(res, table, "colour")
    sub = subgroup_pool(res, table, "her2_method")
    assert set(sub.groups) == {"immunofluorescence", "FISH"}


def test_influence_uses_the_analysis_model() -> None:
    import pandas as pd

    table = pd.DataFrame({"study_id": list("abcde"), "label": list("ABCDE"),
                          "year": [2000 + i for i in range(5)],
                          "events": ORR[0], "total": ORR[1]})
    glmm = influence(pool_table(table, method="GLMM"))
    reml = influence(pool_table(table, method="REML"))
    assert np.asarray(glmm.back_estimate).shape == (5,)
    assert reml.method == "REML"
    # omitting Verschoor 2024 (4/8) lowers the pooled proportion most
    assert int(np.argmin(glmm.back_estimate)) == 4 and int(np.argmin(reml.back_estimate)) == 4




def test_unused_rows_say_why_each_row_is_not_pooled() -> None:
    rows = pd.DataFrame({
        "study_id": ["a", "b", "b", "c", "c"],
        "arm": ["all", "treated", "control", "all", "all"],
        "outcome": "objective_response",
        "subgroup": ["", "", "", "", "hormone_receptor=positive"],
        "events": [1, 2, 3, 4, 5], "total": [10, 10, 10, 10, 10],
        "use": ["primary", "primary", "primary", "alternative", "primary"],
        "arm_role": ["experimental", "experimental", "control", "experimental",
                     "experimental"]})
    studies = pd.DataFrame({"study_id": list("abc"), "label": ["A 2001", "B 2002", "C 2003"]})
    used = rows.iloc[[0, 1]]
    unused = pooled.unused_rows(rows, used, studies, arm_role="experimental")
    assert unused["Study"].tolist() == ["B 2002", "C 2003", "C 2003"]
    why = unused["Why it is not pooled here"].tolist()
    assert why[0] == "the control arm; this analysis pools the experimental arms"
    assert why[1].startswith("the other reading of a number the source gives two ways")
    assert why[2] == ("a subgroup (hormone receptor-positive); this analysis pools whole "
                      "populations")
    assert pooled.describe_unused(unused, len(rows)) == (
        "2 of the 5 registry rows of this outcome are pooled; the 3 rows below are not, for "
        "the reason given.")
    none = pooled.unused_rows(rows.iloc[[0]], rows.iloc[[0]], studies)
    assert none.empty
    assert pooled.describe_unused(none, 1) == (
        "Every registry row of this outcome (1) is pooled here.")


def test_key_panel_keeps_the_primary_the_key_rows_and_bayes_in_order() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="GLMM", test="t")
    full = pooled.estimator_panel_table(res, bayes_rows=pd.DataFrame([{
        "Measure": "Logit (PLO)", "Method": "Bayes, τ ~ half-normal(0.5)",
        "Interval": "95% credible",
        "Pooled (95% CI)": "x", "95% PI": "y", "τ²": "z", "I²": "—", "Note": ""}]))
    key = pooled.key_panel(full)
    assert list(zip(key["Method"], key["Interval"], strict=True)) == [
        ("GLMM (primary)", "t (k − 1 df)"), ("GLMM", "z"), ("REML", "Hartung–Knapp ad hoc"),
        ("REML", "Hartung–Knapp"), ("REML", "z"), ("DL", "z"), ("FE", "z"),
        ("Bayes, τ ~ half-normal(0.5)", "95% credible")]
    assert set(key["Measure"]) == {"Logit (PLO)"} and len(full) == 4 * 9 + 2 + 1
