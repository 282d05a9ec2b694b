"""evidence.book.text: the prediction-interval rule and its sentence."""

from __future__ import annotations


def test_prediction_intervals_from_three_studies_and_read_for_tau2_zero() -> None:
    from evidence.book.text import prediction_reading, shows_prediction

    assert not shows_prediction(2, "REML") and shows_prediction(3, "GLMM")
    assert not shows_prediction(10, "FE")
    two = prediction_reading(2, "REML", 0.1, "1%", "9%", "a new study")
    assert "No prediction interval is given: with 2 studies" in two and "1%" not in two
    three = prediction_reading(3, "GLMM", 0.4, "1.0%", "60.0%", "the proportion in a new study")
    assert "the proportion in a new study would be expected between 1.0% and 60.0%" in three
    assert "variance is zero" not in three
    flat = prediction_reading(4, "REML", 0.0, "5.0%", "9.0%", "x")
    assert "equals the confidence interval" in flat and "not that the studies agree" in flat
    assert prediction_reading(5, "FE", 0.0, "a", "b", "x") == ""


def test_fmt_pct_never_prints_minus_zero() -> None:
    from evidence.book.text import fmt_pct

    assert fmt_pct(-0.00001) == "0.0%" and fmt_pct(-0.0004, 2) == "-0.04%"
    assert fmt_pct(-0.02) == "-2.0%"
