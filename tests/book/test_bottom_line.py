"""evidence.book.bottom_line and evidence.book.abstract: every sentence that depends on a
number is chosen by the number (each chapter's claim is flipped here by changing its
data), and the HTML boxes are escaped."""

from __future__ import annotations

import pytest
from chapter_data import plain

from evidence.book import abstract, bottom_line


def row(oid: str, estimate: float, lo: float, hi: float, certainty: str = "low",
        scale: str = "proportion", k: int = 3, start: str = "high", **extra) -> dict:
    return {"outcome_id": oid, "title": extra.pop("title", oid.title()), "k": k,
            "patients": 100, "scale": scale, "estimate": estimate, "ci_lower": lo,
            "ci_upper": hi, "certainty": certainty, "statement": f"{oid} may be so.",
            "grade": {"start": start}, **extra}


def test_response_and_screening_findings_follow_the_rows() -> None:
    orr = row("orr", 0.06, 0.01, 0.34, "very low")
    md = bottom_line.key_findings_markdown([orr])
    assert "6.0% (95% CI 1.0% to 34.0%); 100 patients, 3 studies" in plain(md)
    assert "⊕◯◯◯ very low certainty" in md
    moved = bottom_line.key_findings_markdown([dict(orr, estimate=0.5, certainty="low")])
    assert "50.0%" in plain(moved) and "⊕⊕◯◯ low certainty" in moved
    extras = bottom_line.chapter_extras({"feasibility": {"feasibility": {"nns": {
        "estimate_ceil": 10, "ci_lower_ceil": 6, "ci_upper_ceil": 16}}}}, {}, {})
    assert extras["screening"] == ["About 10 patients (95% CI 6 to 16) must be screened to "
                                   "find one with HER2-positive CTCs."]


def test_conversion_subgroup_claim_needs_p_below_005() -> None:
    res = {"subgroups": {"setting": {"q_between_pvalue": 0.01}, "x": None}}
    assert plain(bottom_line.subgroup_claim(res, "setting", "setting")).startswith(
        "The share differs by setting (p = 0.010), an exploratory finding")
    res["subgroups"]["setting"]["q_between_pvalue"] = 0.2
    assert bottom_line.subgroup_claim(res, "setting", "setting") == (
        "No difference by setting was detected (p = 0.200).")
    assert bottom_line.subgroup_claim(res, "x", "x") == ""
    rows = {"conv_neg_to_pos": row("conv_neg_to_pos", 0.3, 0.2, 0.4)}
    extras = bottom_line.chapter_extras({"conv_neg_to_pos": res}, rows, {"setting": "setting"})
    assert "no difference by setting" in plain(extras["conversion"][0])


def test_randomised_and_prognostic_claims_follow_the_interval() -> None:
    rr = row("two_arm:t:persist", 1.2, 0.4, 3.6, scale="ratio", k=1)
    assert bottom_line.effect_claim(rr).startswith("The interval includes no difference")
    assert bottom_line.estimate_text(rr) == "RR 1.20 (95% CI 0.40 to 3.60)"
    benefit = dict(rr, estimate=0.3, ci_lower=0.1, ci_upper=0.8)
    assert "excludes no difference (the ratio is lower than 1)" in bottom_line.effect_claim(
        benefit)
    hr = row("pfs_hazard_ratios", 0.4, 0.2, 0.7, scale="ratio")
    assert bottom_line.estimate_text(hr).startswith("HR 0.40")
    none = bottom_line.practice_conclusion([rr])
    assert none.startswith("None of the 1 randomised comparisons shows")
    some = plain(bottom_line.practice_conclusion([benefit]))
    assert some.startswith("Randomised evidence of a difference at low certainty or better "
                           "comes from Two_Arm:T:Persist only")
    weak = bottom_line.practice_conclusion([dict(benefit, certainty="very low")])
    assert weak.startswith("None of the 1")
    assert "untested" in bottom_line.practice_conclusion([hr])


def test_recurrence_agreement_with_other_reviews() -> None:
    ours = {"estimate": 0.085, "ci_lower": 0.006, "ci_upper": 0.61}
    review = {"review_id": "schrijver2018", "estimate": 21.3, "ci_lower": 14.3,
              "ci_upper": 30.5}
    assert "is consistent with Schrijver 2018's 21.3% (14.3% to 30.5%)" in plain(
        bottom_line.review_agreement(ours, review, "HER2 loss"))
    narrow = {"estimate": 0.05, "ci_lower": 0.04, "ci_upper": 0.06}
    assert "is different from Schrijver 2018's" in plain(
        bottom_line.review_agreement(narrow, review, "HER2 loss"))
    no_ci = {"review_id": "aurilio2014", "estimate": 13.0, "ci_lower": float("nan"),
             "ci_upper": ""}
    assert "(no interval given)" in bottom_line.review_agreement(ours, no_ci, "loss")


def test_html_boxes_are_escaped_and_claims_listed() -> None:
    bad = row("orr", 0.1, 0.05, 0.2, title="<script>alert(1)</script>")
    box = bottom_line.key_findings_html([bad], "analyses/summary.html", ["a & b"])
    assert "<script>" not in box and "&lt;script&gt;" in box and "a &amp; b" in box
    kf = bottom_line.KeyFindings(box)
    assert kf._repr_html_() == box and repr(kf).startswith("Key findings")
    landing = bottom_line.landing_html({"orr": bad}, ["orr"], {})
    assert "The bottom line" in landing
    assert bottom_line.claims({"orr": bad}, {"x": ["a\\_b"]}) == ["orr: orr may be so.", "a_b"]


def test_abstract_and_plain_summary_numbers() -> None:
    rows = {"orr": row("orr", 0.06, 0.01, 0.34, "very low", title="Objective response"),
            "conv_neg_to_pos": row("conv_neg_to_pos", 0.305, 0.19, 0.45, "very low"),
            "screening_yield": row("screening_yield", 0.107, 0.06, 0.17, "low")}
    selection = {"databases": {"searches": 10, "screened": 50},
                 "other": {"searches": 2, "screened": 5}, "last_search": "2026-12-01",
                 "studies_included": 7, "reports_included": 8}
    text = plain(abstract.abstract_markdown(rows, selection, ["orr"]))
    assert "(10 searches) and reference lists (2) up to 2026-12-01, screened 55 records" in text
    assert "7 studies (8 reports) were included. Objective response: 6.0%" in text
    assert "Of the 3 outcomes in the summary of findings, 2 are of very low certainty and 1 " \
           "of low certainty." in text
    pls = plain(abstract.plain_summary_markdown(rows, selection))
    assert "about 31 in 100 had HER2-positive cells" in pls and "about 11 in 100" in pls
    with pytest.raises(KeyError):
        abstract.abstract_markdown(rows, {}, ["orr"])


def test_discussion_sections() -> None:
    rows = {"rec_loss": row("rec_loss", 0.085, 0.006, 0.61, "very low")}
    reviews = [{"review_id": "schrijver2018", "quantity": "her2_positive_to_negative_pct",
                "estimate": 21.3, "ci_lower": 14.3, "ci_upper": 30.5}]
    sections = abstract.discussion_markdown(rows, reviews, 25, 151, ["Fehm 2024"])
    assert set(sections) == {"main", "applicability", "quality", "biases", "agreement",
                             "practice", "research"}
    assert "25 of the 151 extracted rows" in sections["biases"]
    assert "Schrijver 2018" in sections["agreement"] and "Fehm 2024" in plain(
        sections["applicability"])
    assert bottom_line.lower_first("CTC clearance") == "CTC clearance"
    assert bottom_line.lower_first("Relapse") == "relapse"
