"""Tests for evidence.book.subgroups: subgroup analyses of a pooled proportion."""

from __future__ import annotations

import pytest
from chapter_data import plain, proportion_table

from evidence.book import subgroups
from evidence.book.pooled import pool_table

table = proportion_table


def test_subgroup_verdict_is_chosen_from_the_p_value() -> None:
    # issue 13 item 9: "select very different shares" stood beside p = 0.190
    assert subgroups.subgroup_verdict(0.190).startswith("The test does not show that the "
                                                     "subgroups differ")
    assert subgroups.subgroup_verdict(0.01) == ("The subgroups differ by more than chance alone "
                                             "would explain.")
    assert "cannot be computed" in subgroups.subgroup_verdict(float("nan"))


def test_subgroup_sections_one_per_column_with_their_studies() -> None:
    t = table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])
    t["setting"] = ["metastatic"] * 5
    t["her2_cutoff_group"] = ["at_least_one_ctc", "at_least_one_ctc", "proportion_of_ctcs",
                              "proportion_of_ctcs", ""]
    res = pool_table(t, method="GLMM", test="t")
    sections = subgroups.subgroup_sections(res, t, ["her2_cutoff_group", "setting"])
    assert [s.column for s in sections] == ["her2_cutoff_group", "setting"]
    words, frame, sub = sections[0].text, sections[0].frame, sections[0].test
    assert plain(words).startswith(
        "**By definition of HER2-positive CTCs.** The test for differences between subgroups "
        "by definition of HER2-positive CTCs compares at least one HER2-positive CTC (k = 2) "
        "and a share of the CTCs HER2-positive (k = 2): Q = ")
    assert plain(words).endswith("The subgroup not reported has a single study, shown with "
                                 "its exact 95% CI, and not part of the test.")
    assert list(frame["Subgroup"]) == ["at least one HER2-positive CTC", "not reported",
                                       "a share of the CTCs HER2-positive"]
    assert list(frame["Studies"]) == ["Study 0; Study 1", "Study 4", "Study 2; Study 3"]
    # the single study shows its own proportion and exact interval (4/8: 15.7%-84.3%), as in
    # the study table, not a logit-Wald interval; it does not enter the Q-between test
    assert frame["Proportion (95% CI)"].iloc[1] == "50.0% (15.7% to 84.3%)"
    assert frame["Note"].iloc[1] == "single study: exact CI, not pooled; not in the test"
    assert sub.groups == ("at_least_one_ctc", "proportion_of_ctcs") and sub.q_between_df == 1
    assert subgroups.subgroup_verdict(sub.q_between_pvalue) in words  # chosen from its p
    same, none_frame, none_sub = sections[1].text, sections[1].frame, sections[1].test
    assert "Every study has the same disease setting (metastatic)" in plain(same)
    assert none_frame is None and none_sub is None
    saved = subgroups.subgroups_json(sections)
    assert saved["setting"] is None
    assert [lv["k"] for lv in saved["her2_cutoff_group"]["levels"]] == [2, 1, 2]
    assert saved["her2_cutoff_group"]["levels"][0]["studies"] == "Study 0; Study 1"
    assert saved["her2_cutoff_group"]["compared"] == ["at_least_one_ctc", "proportion_of_ctcs"]
    # one subgroup of two or more studies: the levels are shown, no test between them
    t["her2_method_group"] = ["immunofluorescence"] * 3 + ["FISH", "rt_pcr"]
    only = subgroups.subgroup_sections(res, t, ["her2_method_group"])[0]
    assert only.test is None and len(only.frame) == 3
    assert "Only one subgroup by " in plain(only.text) and "no test between" in only.text
    assert subgroups.subgroups_json([only])["her2_method_group"]["q_between_pvalue"] is None
    zero = table([0, 1, 1], [7, 14, 11])
    zero["her2_method_group"] = ["FISH", "immunofluorescence", "rt_pcr"]
    z = subgroups.subgroup_sections(pool_table(zero, method="GLMM", test="t"), zero,
                                 ["her2_method_group"])[0]
    assert z.test is None and z.frame["Proportion (95% CI)"].iloc[0] == "0.0% (0.0% to 41.0%)"
    assert plain(z.text) == (
        "**By HER2 method on CTCs.** No subgroup by HER2 method on CTCs has two or more "
        "studies, so there is no test between subgroups. The subgroups FISH, "
        "immunofluorescence and RT-PCR have a single study each, shown with its exact 95% CI.")
    intro = subgroups.describe_subgroup_sections(sections)
    assert plain(intro).startswith("Subgroups by definition of HER2-positive CTCs and disease "
                                   "setting")
    assert "a lead to examine, not a finding" in intro
    assert subgroups.describe_subgroup_sections([]) == "No subgroup analysis for this outcome."
    with pytest.raises(KeyError, match="no study column 'colour'"):
        subgroups.subgroup_sections(res, t, ["colour"])
