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
    assert "holds for the range but not for the median" in claim["text"]
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


