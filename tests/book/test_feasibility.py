"""evidence.book.feasibility: patients to screen, the A'Hern design, the seed's claim."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evidence.book import feasibility


def test_nns_claim_of_the_seed_on_its_own_table() -> None:
    # Verschoor 2024 Table 2 and its own trial: screened / with HER2-positive CTCs
    table = pd.DataFrame({"label": list("PHJQV"), "events": [7, 24, 14, 69, 8],
                          "total": [139, 283, 154, 311, 64]})
    nns = feasibility.nns_per_trial(table)
    assert nns["nns"].tolist() == pytest.approx([139 / 7, 283 / 24, 11.0, 311 / 69, 8.0])
    claim = feasibility.nns_claim(nns["nns"], 9, 5, 20)
    assert claim["median"] == pytest.approx(11.0)
    assert claim["low"] == pytest.approx(311 / 69) and claim["high"] == pytest.approx(139 / 7)
    assert claim["range_holds"] and not claim["median_holds"] and not claim["holds"]
    assert "it holds for the range but not for the median" in claim["text"]
    assert "2.0 patients from 9, more than the 1 allowed" in claim["text"]
    assert feasibility.nns_claim([8, 9, 10], 9, 8, 10)["holds"]
    with pytest.raises(ValueError, match="no trials"):
        feasibility.nns_claim([], 9, 5, 20)


def test_nns_with_no_positive_patient_is_infinite() -> None:
    nns = feasibility.nns_per_trial(pd.DataFrame({"label": ["x"], "events": [0], "total": [10]}))
    assert math.isinf(nns["nns"][0])


def test_feasibility_reproduces_the_seed_design() -> None:
    f = feasibility.feasibility({"estimate": 0.1, "ci_lower": 0.05, "ci_upper": 0.2},
                              p0=0.5, p1=0.8, alpha=0.05, beta=0.2)
    assert (f["design"]["n"], f["design"]["r"]) == (18, 13)
    assert f["nns"]["estimate"] == pytest.approx(10.0)
    assert (f["nns"]["ci_lower"], f["nns"]["ci_upper"]) == pytest.approx((5.0, 20.0))
    assert f["to_screen"]["estimate"] == pytest.approx(180.0)
    assert (f["to_screen"]["ci_lower"], f["to_screen"]["ci_upper"]) == pytest.approx((90, 360))
    text = feasibility.describe_feasibility(f)
    assert "n = 18" in text and "r = 13" in text and "about 180 patients" in text
    assert "95% CI: 5.0 to 20.0" in text  # no k: the confidence interval




def test_nns_claim_about_9_is_met_by_9_5_and_rounds_halves_up() -> None:
    # issue 13 item 9: "about 9" was called failed while the page computed 9.5, and
    # Python's round(4.5) == 4 broke the range "5 to 20"
    claim = feasibility.nns_claim([4.5, 8.0, 9.5, 11.0, 19.9, 9.5], 9, 5, 20)
    assert claim["median"] == pytest.approx(9.5)
    assert claim["median_holds"] and claim["range_holds"] and claim["holds"]
    assert "within 1 patient of 9" in claim["text"] and "it holds:" in claim["text"]
    assert not feasibility.nns_claim([4.5, 10.5, 19.9], 9, 5, 20)["median_holds"]


def test_feasibility_plans_with_the_prediction_interval_from_three_trials() -> None:
    yield_ = {"estimate": 0.1, "ci_lower": 0.05, "ci_upper": 0.2,
              "pi_lower": 0.025, "pi_upper": 0.4}
    f = feasibility.feasibility(yield_, 0.5, 0.8, 0.05, 0.2, k=3)
    assert f["interval"] == "prediction"
    assert (f["to_screen"]["ci_lower"], f["to_screen"]["ci_upper"]) == pytest.approx((45, 720))
    assert "95% prediction interval" in feasibility.describe_feasibility(f)
    two = feasibility.feasibility(yield_, 0.5, 0.8, 0.05, 0.2, k=2)
    assert two["interval"] == "confidence"
    assert "95% CI" in feasibility.describe_feasibility(two)


def test_feasibility_names_its_end_point_not_a_response_rate() -> None:
    f = feasibility.feasibility({"estimate": 0.1, "ci_lower": 0.05, "ci_upper": 0.2},
                                0.5, 0.8, 0.05, 0.2, endpoint="pfr6")
    text = feasibility.describe_feasibility(f)
    assert "progression-free at 6 months" in text and "response rate" not in text


def test_feasibility_accounts_for_the_loss_between_eligibility_and_treatment() -> None:
    yield_ = {"estimate": 0.1, "ci_lower": 0.05, "ci_upper": 0.2}
    treated = {"estimate": 0.5, "ci_lower": 0.25, "ci_upper": 1.0, "pi_lower": 0.01,
               "pi_upper": 1.0}
    f = feasibility.feasibility(yield_, 0.5, 0.8, 0.05, 0.2, treated=treated, k_treated=4)
    assert f["eligible_needed"]["estimate"] == pytest.approx(36.0)
    assert f["to_screen_treated"]["estimate"] == pytest.approx(360.0)
    assert (f["to_screen_treated"]["ci_lower"], f["to_screen_treated"]["ci_upper"]) == \
        pytest.approx((90.0, 1440.0))
    text = feasibility.describe_feasibility(f)
    assert "about 36 eligible patients and about 360 screened" in text
    # the share treated is planned with its CI, even from 4 trials
    assert "in the 4 trials of the registry that report it, 50% of eligible patients were " \
           "treated (95% CI 25% to 100%)" in text
    bare = feasibility.describe_feasibility(feasibility.feasibility(yield_, 0.5, 0.8, 0.05, 0.2))
    assert "registry records no count of eligible patients who were treated" in bare
