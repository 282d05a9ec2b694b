"""Tests for evidence.book.two_arm: experimental and control arms paired, their effects, tables
and words.

Reference values: see ``chapter_data.py`` (R 4.2.2, metafor 3.8-1, and hand-worked tables).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from chapter_data import R_FISHER, TABLES, TOL, R, outcome_rows, plain, study_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact

from evidence.book import two_arm


def test_two_arm_pairs() -> None:
    pairs = two_arm.two_arm_pairs(outcome_rows())
    assert list(zip(pairs["study_id"], pairs["outcome"], strict=True)) == [
        ("verschoor2024", "objective_response"), ("verschoor2024", "pfr6"),
        ("ignatiadis2018", "ctc_persistence")]  # Pestrin: no control arm, not paired
    first = pairs.iloc[0]
    assert (first["arm_1"], first["ai"], first["n1i"], first["arm_2"], first["ci"],
            first["n2i"]) == ("trastuzumab_taxane", 4, 8, "taxane_only", 5, 25)
    only = two_arm.two_arm_pairs(outcome_rows(), ["pfr6"])
    assert only["outcome"].tolist() == ["pfr6"]
    with pytest.raises(ValueError, match="no experimental/control pair"):
        two_arm.two_arm_pairs(outcome_rows(), ["disease_control"])
    doubled = pd.concat([outcome_rows(), outcome_rows().iloc[[0]].assign(arm="other")])
    with pytest.raises(ValueError, match="more than one experimental or control arm"):
        two_arm.two_arm_pairs(doubled)


@pytest.mark.parametrize("name", list(TABLES))
def test_two_arm_effects_match_metafor_and_fisher(name: str) -> None:
    ai, n1i, ci, n2i = TABLES[name]
    pairs = pd.DataFrame([{"study_id": name, "outcome": "o", "subgroup": "", "arm_1": "e",
                           "ai": ai, "n1i": n1i, "arm_2": "c", "ci": ci, "n2i": n2i}])
    eff = two_arm.two_arm_effects(pairs).set_index("measure")
    for m in ("RR", "OR", "RD"):
        yi, vi, lb, ub = R[(name, m)]
        row = eff.loc[m]
        assert (row["yi"], row["vi"]) == pytest.approx((yi, vi), **TOL)
        back = (lambda v: v) if m == "RD" else math.exp
        assert (row["estimate"], row["ci_lower"], row["ci_upper"]) == pytest.approx(
            (back(yi), back(lb), back(ub)), rel=1e-9)
        assert row["fisher_pvalue"] == pytest.approx(R_FISHER[name], rel=1e-9)
    # hand-computed risk ratio and odds ratio (no zero cells: no correction)
    assert eff.loc["RR", "estimate"] == pytest.approx((ai / n1i) / (ci / n2i))
    assert eff.loc["OR", "estimate"] == pytest.approx(ai * (n2i - ci) / ((n1i - ai) * ci))
    assert eff.loc["RD", "fisher_pvalue"] == pytest.approx(
        fisher_exact([[ai, n1i - ai], [ci, n2i - ci]]).pvalue, rel=1e-12)
    with pytest.raises(ValueError, match="unknown measure 'HR'"):
        two_arm.two_arm_effects(pairs, measures=("HR",))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(0, 30),
                          st.integers(0, 30)), min_size=1, max_size=8),
       st.sampled_from(["only0", "all", "if0all", "none"]), st.sampled_from([0.5, 0.0]))
def test_two_arm_effects_equal_two_arm_effect_pair_by_pair(tables, to, add) -> None:
    from evidence.stats.twoarm import two_arm_effect

    rows = [(min(a, n1), n1, min(c, n2), n2) for n1, n2, a, c in tables]
    pairs = pd.DataFrame([{"study_id": f"s{i}", "outcome": "o", "subgroup": "", "ai": a,
                           "n1i": n1, "ci": c, "n2i": n2}
                          for i, (a, n1, c, n2) in enumerate(rows)])
    eff = two_arm.two_arm_effects(pairs, add=add, to=to)
    assert len(eff) == 3 * len(rows)
    for r in eff.to_dict("records"):
        e = two_arm_effect(*rows[int(r["study_id"][1:])], r["measure"], add=add, to=to)
        got = [r[k] for k in ("yi", "vi", "estimate", "ci_lower", "ci_upper", "fisher_pvalue")]
        want = [e.yi, e.vi, e.pred, e.pred_ci_lower, e.pred_ci_upper, e.fisher_pvalue]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
        assert r["corrected"] == e.corrected


def test_two_arm_effects_empty_and_bad_counts() -> None:
    empty = two_arm.two_arm_pairs(outcome_rows()).iloc[0:0]
    assert two_arm.two_arm_effects(empty).empty
    bad = pd.DataFrame([{"study_id": "x", "outcome": "o", "subgroup": "", "ai": 5, "n1i": 4,
                         "ci": 0, "n2i": 3}])
    with pytest.raises(ValueError, match=r"x, o: need 0 <= ai <= n1i"):
        two_arm.two_arm_effects(bad)


def test_two_arm_words_and_tables() -> None:
    studies = study_rows()
    pairs = two_arm.two_arm_pairs(outcome_rows())
    eff = two_arm.two_arm_effects(pairs)
    table = two_arm.two_arm_table(eff, studies)
    assert table["Study"].tolist() == ["Verschoor 2024 (not randomised)"] * 2 + [
        "Ignatiadis 2018 (Treat CTC)"]
    treat = table.iloc[2]
    assert treat["Experimental"] == "5/31 (16.1%)" and treat["Control"] == "4/32 (12.5%)"
    assert treat["RR [95% CI]"] == "1.29 [0.38, 4.36]"  # exp(R's -0.9636, 1.4734)
    assert treat["RD, points [95% CI]"] == "3.6 [-13.7, 20.9]"
    assert treat["Fisher p"] == "0.732"
    text = plain(two_arm.describe_two_arm(pairs, eff, studies))
    verschoor, treat_text = text.split("**Ignatiadis 2018 (Treat CTC)**")
    assert "not formed by randomisation" in verschoor
    assert "does not estimate the effect of the treatment" in verschoor
    assert ("- *Objective response*: in the trastuzumab + taxane arm 4 of 8 (50.0%) had an "
            "objective response, in the taxane only arm 5 of 25 (20.0%)") in verschoor
    assert "Patients were randomised between the arms." in treat_text
    assert "risk ratio 1.29 (0.38 to 4.36)" in treat_text
    assert "Fisher's exact test p = 0.732" in treat_text
    assert "includes 1 (no difference)" in treat_text
    unreported = two_arm.unreported_randomised(studies, pairs)
    assert unreported["study_id"].tolist() == ["fehm2021"]
    words = plain(two_arm.describe_unreported(unreported))
    assert "Fehm 2021 (DETECT III)" in words and "no counts in the abstract" in words
    assert "Every randomised trial" in two_arm.describe_unreported(unreported.iloc[0:0])
    overview = plain(two_arm.two_arm_overview(pairs, studies, unreported))
    assert overview.startswith(
        "The registry holds 3 comparisons of an experimental (anti-HER2) arm with a control "
        "arm, from 2 studies (Verschoor 2024, Ignatiadis 2018 (Treat CTC)); 1 of them was "
        "randomised.")
    assert ("1 further randomised trial reports no counts per arm (Fehm 2021 (DETECT III))."
            in overview)
    one = plain(two_arm.two_arm_overview(pairs[pairs["study_id"] == pairs["study_id"].iloc[0]],
                                          studies, unreported.iloc[0:0]))
    assert "from 1 study (Verschoor 2024); it was not randomised." in one
    many = pd.concat([pairs.assign(study_id=f"s{i}") for i in range(11)], ignore_index=True)
    assert "from 11 studies; 0 of them were randomised." in two_arm.two_arm_overview(
        many, studies, unreported.iloc[0:0])
    context = two_arm.context_table(outcome_rows(), pairs["study_id"], studies)
    assert context["n / N"].tolist() == ["8 / 64", "95 / 1317"]


def test_describe_two_arm_caps_the_paragraphs_randomised_first() -> None:
    studies = study_rows()
    pairs = two_arm.two_arm_pairs(outcome_rows())
    eff = two_arm.two_arm_effects(pairs)
    full = plain(two_arm.describe_two_arm(pairs, eff, studies))
    assert plain(two_arm.describe_two_arm(pairs, eff, studies, max_studies=2)) == full
    one = plain(two_arm.describe_two_arm(pairs, eff, studies, max_studies=1))
    # Treat CTC is randomised, Verschoor (more patients) is not: Treat CTC is kept
    assert one.startswith("Of the 2 studies with a two-arm comparison, 1 is described")
    treat = "**Ignatiadis 2018 (Treat CTC)**"
    assert treat in one and "Verschoor" not in one
    assert one.split("\n\n", 1)[1] == treat + full.split(treat)[1]
    with pytest.raises(ValueError, match="max_studies must be >= 1"):
        two_arm.describe_two_arm(pairs, eff, studies, max_studies=0)


def test_two_arm_pairs_rejects_two_rows_of_one_role() -> None:
    rows = outcome_rows()
    exp = rows[rows["arm_role"] == "experimental"].iloc[[0]]
    with pytest.raises(ValueError, match="more than one experimental or control arm"):
        two_arm.two_arm_pairs(pd.concat([rows, exp], ignore_index=True))




def test_randomised_trials_sentence_says_which_trials_select_by_her2_ctcs() -> None:
    # issue 13 item 9: the introduction said randomised trials had tested the hypothesis,
    # though Treat CTC never assessed HER2 on the CTCs
    studies = pd.DataFrame({
        "study_id": ["d21", "d24", "treat", "geo", "single"],
        "label": ["D 2021", "D 2024", "Treat", "Geo", "Single"],
        "year": ["2021", "2024", "2018", "2012", "2020"],
        "randomized": ["yes", "yes", "yes", "yes", "no"],
        "cohort": ["d3", "d3", "", "", ""],
        "her2_cutoff_group": ["at_least_one_ctc", "at_least_one_ctc", "not_applicable",
                              "not_applicable", "at_least_one_ctc"]})
    pairs = pd.DataFrame({"study_id": ["treat", "geo"]})
    text = two_arm.randomised_trials_sentence(studies, pairs)
    assert text.startswith("Of the 3 randomised trials in the registry, 1 selected patients "
                           "by HER2-positive CTCs (D 2024), but the registry holds no results "
                           "per arm for it.")
    assert "The other 2 trials (Treat and Geo) selected patients by CTCs without HER2" in text
    none = two_arm.randomised_trials_sentence(studies[studies["study_id"] == "treat"], pairs)
    assert none.startswith("Of the 1 randomised trial in the registry, none selected")
    assert two_arm.randomised_trials_sentence(studies.iloc[4:], pairs) == \
        "No randomised trial is in the registry."


def test_direction_labels_say_more_or_less_frequent_in_the_experimental_arm() -> None:
    """Effects are experimental vs control, so below 1 (RR, OR) or 0 (RD) the outcome was
    less frequent in the experimental arm; good or bad depends on the outcome, so the
    labels never say "favours"."""
    for measure in ("RR", "OR", "RD"):
        left, right = two_arm.direction_labels(measure)
        assert left == "Outcome less frequent in the experimental arm"
        assert right == "Outcome more frequent in the experimental arm"
    assert two_arm.direction_labels("RR", ["objective_response"] * 2)[0] == (
        "Objective response less frequent in the experimental arm")
    assert "favours" not in " ".join(two_arm.direction_labels("OR", ["a", "b"])).lower()
    with pytest.raises(ValueError, match="unknown measure 'HR'"):
        two_arm.direction_labels("HR")
