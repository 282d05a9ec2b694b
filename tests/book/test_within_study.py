"""Tests for evidence.book.within_study: subgroup levels compared within one study.

Reference values: see ``chapter_data.py`` (R 4.2.2, metafor 3.8-1, and hand-worked tables).
"""

from __future__ import annotations

import pandas as pd
import pytest
from chapter_data import R_HR_SUBGROUP, R_RECURRENCE_CHISQ, conversion_rows
from scipy.stats import fisher_exact
from synthesis_data import outcome

from evidence.book import within_study


def test_subgroup_comparisons_match_r() -> None:
    levels, tests = within_study.compare_subgroups(conversion_rows())
    assert list(levels["key"]) == ["hormone_receptor"] * 2 + ["recurrence"] * 3 + [
        "primary_her2"]
    assert levels["derived"].tolist() == [True, True, True, True, False, True]
    t = tests.set_index("key")
    assert set(t.index) == {"hormone_receptor", "recurrence"}  # one level: no test
    hr = t.loc["hormone_receptor"]
    assert hr["test"] == "fisher"
    assert hr["p_value"] == pytest.approx(R_HR_SUBGROUP["fisher_p"], rel=1e-9)
    assert hr["p_value"] == pytest.approx(fisher_exact([[54, 81], [40, 72]]).pvalue, rel=1e-12)
    assert hr["statistic"] == pytest.approx(54 * 72 / (81 * 40))
    assert (hr["rd"], hr["rd_lower"], hr["rd_upper"]) == pytest.approx(
        (R_HR_SUBGROUP["rd"], R_HR_SUBGROUP["rd_lb"], R_HR_SUBGROUP["rd_ub"]), rel=1e-9)
    rec = t.loc["recurrence"]
    assert rec["test"] == "chisq"
    assert (rec["statistic"], rec["df"], rec["p_value"]) == pytest.approx(
        R_RECURRENCE_CHISQ, rel=1e-9)
    text = within_study.describe_level_comparisons(levels, tests, "changed HER2 category")
    assert "40.0% (54/135) for hormone receptor-positive vs 35.7% (40/112)" in text
    assert "Fisher's exact test p = 0.513" in text
    assert "Pearson chi-square test of independence: χ² = 25.23 on 2 df, p < 0.001" in text
    assert "back-calculated" in text
    shown = within_study.level_table(levels, tests)
    assert shown.iloc[0]["Comparison"].startswith("Fisher's exact test (two-sided): p = 0.513")
    assert shown.iloc[0]["Changed / total"] == "54 / 135 (back-calculated)"
    assert shown.iloc[4]["Changed / total"] == "42 / 66"


def test_subgroup_comparisons_reject_mixed_rows() -> None:
    rows = conversion_rows()
    with pytest.raises(ValueError, match="one study and one outcome"):
        within_study.compare_subgroups(rows.assign(outcome=["x"] + ["y"] * (len(rows) - 1)))
    with pytest.raises(ValueError, match="appears twice"):
        within_study.compare_subgroups(pd.concat([rows, rows.iloc[[1]]]))


def test_compare_within_study_matches_r() -> None:
    table = pd.DataFrame([
        outcome("z", "c", 29, 41, subgroup="biopsy_interval=gt_1y"),
        outcome("z", "c", 7, 17, subgroup="biopsy_interval=lt_1y"),
        outcome("z", "c", 1, 3, subgroup="line=first"),
        outcome("z", "c", 3, 7, subgroup="line=second"),
        outcome("z", "c", 5, 11, subgroup="line=third"),
    ])
    frame, test = within_study.compare_within_study(table, "biopsy_interval")
    # R: fisher.test(matrix(c(29, 12, 7, 10), 2, byrow = TRUE))$p.value
    assert test["p_value"] == pytest.approx(0.0430428528844622, rel=1e-9)
    assert test["test"] == "Fisher's exact test"
    assert frame["level"].tolist() == ["gt_1y", "lt_1y"]
    _, test3 = within_study.compare_within_study(table, "line")
    # R: chisq.test(matrix(c(1, 2, 3, 4, 5, 6), 3, byrow = TRUE), correct = FALSE)$p.value
    assert test3["p_value"] == pytest.approx(0.931734784568187, rel=1e-9)
    assert test3["test"] == "Pearson's χ² test"
    text = within_study.describe_within_study(frame, test, "the share discordant")
    # the key and its levels in readers' words (issue 13 item 13: no 'gt 1y' slugs)
    assert text.startswith("By time since biopsy, the share discordant: \\> 1 year: 29/41 "
                           "(70.7%") and "p = 0.043" in text
    listed = within_study.comparisons_markdown([(frame, test), (frame, test)], "the share")
    assert listed.count("\n- By time since biopsy") == 1 and listed.startswith("- By")
    with pytest.raises(ValueError, match="fewer than two levels"):
        within_study.compare_within_study(table, "nothing")


