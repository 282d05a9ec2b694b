"""evidence.book.report: the words and display tables the book shows."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from evidence.book import report
from evidence.pipeline.context import pool_table


def table(events: list[int], totals: list[int]) -> pd.DataFrame:
    k = len(events)
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(k)],
                         "label": [f"Study {i}" for i in range(k)],
                         "year": [2000 + i for i in range(k)], "events": events,
                         "total": totals})


def test_formatters() -> None:
    assert report.fmt_pct(0.12823) == "12.8%"
    assert report.fmt_pct(None) == report.fmt_pct(float("nan")) == "n.r."
    assert report.fmt_ci(0.0388, 0.3488) == "3.9% to 34.9%"
    assert report.fmt_ci(0.156, 0.62, pct=False, digits=3) == "0.156 to 0.620"
    assert report.fmt_p(0.00049) == "p < 0.001" and report.fmt_p(0.0684) == "p = 0.068"
    assert report.fmt_p(None) == "p not available"


def test_describe_pooled_states_estimate_intervals_and_caution() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    text = report.describe_pooled(res, "responded")
    assert text.startswith("Across 5 studies with 60 patients (7 events), an estimated 12.8% "
                           "responded (95% CI 3.9% to 34.9%;")
    assert "prediction interval" in text and "1.3% and 62.7%" in text
    fe = report.describe_pooled(pool_table(table([1, 2, 3, 4, 5], [10] * 5), method="FE"), "x")
    assert "prediction interval" not in fe and "With only" not in fe
    few = report.describe_pooled(pool_table(table([1, 2], [10, 10]), method="REML"), "x")
    assert "With only 2 studies" in few


def test_single_study_is_described_as_not_pooled() -> None:
    res = pool_table(table([4], [8]))
    text = report.describe_pooled(res, "were progression-free")
    assert text.startswith("Only one study (Study 0) reports this outcome, so nothing is pooled")
    assert "4 of 8 patients (50.0%, exact 95% CI 15.7% to 84.3%)" in text
    assert report.describe_heterogeneity(res.result).startswith("Heterogeneity cannot")


def test_heterogeneity_sentence() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    text = report.describe_heterogeneity(res.result)
    assert "τ² = 1.111 (95% CI 0.000 to 11.178)" in text
    assert "I² = 52.4%" in text and "Q = 8.72 on 4 df, p = 0.068" in text
    assert ("evidence (p < 0.10, the usual threshold for this test) that the studies differ "
            "more than chance allows") in text
    glmm = report.describe_heterogeneity(pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]),
                                                    method="GLMM").result)
    assert "Wald-type test of heterogeneity" in glmm
    same = report.describe_heterogeneity(pool_table(table([2, 2, 2], [20, 20, 20]),
                                                    method="REML").result)
    assert "little statistical evidence of heterogeneity (p ≥ 0.10)" in same


def test_tables() -> None:
    res = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="REML")
    st = report.study_table(res)
    assert st.columns.tolist() == ["Study", "Year", "Events / total",
                                   "Proportion (95% exact CI)", "Weight"]
    assert st.loc[0, "Events / total"] == "0 / 7"
    assert st.loc[0, "Proportion (95% exact CI)"].startswith("0.0% (0.0% to 41.0%)")
    glmm = report.study_table(pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]),
                                         method="GLMM"))
    assert "Weight" not in glmm.columns
    from evidence.stats.sensitivity import estimator_panel

    panel = report.panel_table(estimator_panel([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]))
    assert len(panel) == 32 and (panel["Note"] == "").all()
    assert panel.loc[(panel["Measure"] == "PLO") & (panel["Method"] == "REML + HK"),
                     "Pooled (95% CI)"].iloc[0].startswith("12.8%")


@pytest.mark.parametrize("method", ["GLMM", "REML"])
def test_leave_one_out_and_subgroup_words(method: str) -> None:
    from evidence.pipeline.context import leave_one_out, subgroups

    t = table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])
    t["group"] = ["a", "a", "b", "b", "c"]
    res = pool_table(t, method=method)
    loo = leave_one_out(res)
    labels = dict(zip(t["study_id"], t["label"], strict=True))
    assert len(report.loo_table(loo, labels)) == 5
    assert "the most influential study is Study 4" in report.describe_loo(loo, res.pooled,
                                                                           labels)
    sub = subgroups(res, t, "group")
    shown = report.subgroup_table(sub)
    assert shown["Note"].tolist() == ["", "", "single study: not pooled"]
    assert "Test for differences between subgroups by group: Q = " in \
        report.describe_subgroups(sub, "group")


def test_no_influence_analysis_says_why() -> None:
    assert report.no_influence_analysis(2, 100).startswith("With fewer than three studies")
    text = report.no_influence_analysis(1000, 100)
    assert "With 1000 studies" in text and "up to 100 studies" in text
    assert "`max_influence_k`" in text



@pytest.mark.parametrize("method", ["GLMM", "REML"])
def test_leave_one_out_says_which_refits_failed_and_why(method: str) -> None:
    from evidence.pipeline.context import leave_one_out

    t = table([0, 0, 4], [10, 12, 15])
    res = pool_table(t, method=method)
    loo = leave_one_out(res)
    labels = dict(zip(t["study_id"], t["label"], strict=True))
    words = report.describe_loo(loo, res.pooled, labels)
    shown = report.loo_table(loo, labels)
    if method == "REML":  # with 1/2 added to the zero cells every refit is fitted
        assert "could not be fitted" not in words
        assert not shown["Pooled without it (95% CI)"].str.startswith("not fitted").any()
        return
    # GLMM without the only study with events: no finite maximum of the likelihood
    reason = report.escape_markdown("GLMM: every study has 0 events; the likelihood has no "
                                    "finite maximum (metafor: 'Cannot fit ML model')")
    assert words.endswith(f"Without Study 2 the model could not be fitted ({reason}); that "
                          "refit is left out of the range above.")
    fitted = [e for e in loo.prop if e == e]
    assert f"between {report.fmt_pct(min(fitted))} and {report.fmt_pct(max(fitted))}" in words
    assert "nan" not in words.lower() and "n.r." not in words
    row = shown.iloc[2]
    assert row["Pooled without it (95% CI)"].startswith("not fitted: GLMM: every study has 0")
    assert (row["τ²"], row["I²"]) == ("—", "—")
    # nothing fitted at all
    nothing = dataclasses.replace(loo, prop=loo.prop * float("nan"),
                                  notes=tuple(f"{s}: not fitted (test)" for s in loo.study_ids))
    assert report.describe_loo(nothing, res.pooled, labels) == (
        "No leave-one-out refit could be fitted. Without Study 0, Study 1 and Study 2 the "
        "model could not be fitted (test); those refits are marked in the table.")

def test_show_and_prose_escape_registry_text() -> None:
    t = table([1, 2, 3], [10, 10, 10])
    t.loc[0, "label"] = "<b>Bold</b> <script>x = 1</script> *star*"
    res = pool_table(t, method="REML")
    html = report.show(report.study_table(res)).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Bold" not in html
    single = report.describe_pooled(pool_table(t.iloc[[0]]), "x")
    assert "<script>" not in single and r"\<script\>" in single and r"\*star\*" in single
    assert report.escape_markdown("a_b [c](d)") == r"a\_b \[c\]\(d\)"


def test_show_gives_reproducible_distinct_table_ids() -> None:
    import re

    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    ids = [re.search(r'<table id="([^"]+)"', report.show(f).to_html()).group(1)
           for f in (frame, frame, frame.assign(a=[1, 3]))]
    assert len(set(ids)) == 3  # a second showing of the same table gets its own id
    assert ids[0].split("_")[:2] == ids[1].split("_")[:2]  # made from the content
    assert ids[0].split("_")[1] != ids[2].split("_")[1]
    counter = int(ids[1].rsplit("_", 1)[1])
    assert int(ids[2].rsplit("_", 1)[1]) == counter + 1  # and the order: no randomness
    shown = report.show(frame)
    assert shown._repr_html_() == shown.to_html()
    assert repr(shown) == "<table of 2 row(s): a, b>"  # no memory address
