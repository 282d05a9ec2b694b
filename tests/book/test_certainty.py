"""evidence.book.certainty: GRADE's starting levels, the proposal rules and the decision
from certainty.csv (departures need a reason)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evidence.book.certainty import (
    DOMAINS,
    CertaintyError,
    Evidence,
    check_outcomes,
    decide,
    propose,
    start_level,
)


def ev(**change) -> Evidence:
    base = dict(kind="agreement", scale="proportion", k=4,
                patients={"a": 100, "b": 100, "c": 100, "d": 100},
                risk_of_bias={"a": "low", "b": "low", "c": "low", "d": "low"},
                estimate=0.3, ci_lower=0.27, ci_upper=0.33, pi_lower=0.25, pi_upper=0.35,
                i2=10.0, settings=("metastatic",), cutoffs=("at_least_one_ctc",))
    base.update(change)
    return Evidence(**base)


def test_start_levels() -> None:
    assert [start_level(k) for k in ("randomised", "agreement", "prognosis", "single_arm",
                                     "non_randomised")] == ["high", "high", "high", "low",
                                                            "low"]
    with pytest.raises(ValueError, match="unknown kind"):
        start_level("case_report")


@pytest.mark.parametrize(("change", "domain", "judgement", "reason"), [
    ({}, "risk_of_bias", "not_serious", "0% of patients in 0 studies at high risk"),
    ({"risk_of_bias": {"a": "high", "b": "low", "c": "low", "d": "low"}}, "risk_of_bias",
     "serious", "25% of patients in 1 study at high risk"),
    ({"risk_of_bias": {"a": "high", "b": "high", "c": "serious", "d": "low"}},
     "risk_of_bias", "very_serious", "75% of patients in 3 studies"),
    ({"risk_of_bias": {"a": "some_concerns", "b": "unclear", "c": "low", "d": "low"}},
     "risk_of_bias", "serious", "50% in studies with some concerns or unclear risk"),
    ({"risk_of_bias": {"a": None, "b": "low", "c": "low", "d": "low"}}, "risk_of_bias",
     "serious", "1 study is not appraised"),
    ({"i2": 49.9}, "inconsistency", "not_serious", "I² = 50%"),
    ({"i2": 50.0}, "inconsistency", "serious", "I² = 50%"),
    ({"i2": 80.0}, "inconsistency", "serious", "I² = 80%"),
    ({"i2": 80.0, "pi_lower": 0.05, "pi_upper": 0.7}, "inconsistency", "very_serious",
     "the prediction interval is wide"),
    ({"k": 1, "i2": math.nan}, "inconsistency", "not_serious", "single study"),
    ({"settings": ("early", "metastatic")}, "indirectness", "serious",
     "disease settings (early, metastatic)"),
    ({"cutoffs": ("a", "b")}, "indirectness", "serious", "2 definitions"),
    ({}, "imprecision", "not_serious", "95% CI 6 percentage points wide; 400 patients"),
    ({"ci_lower": 0.2, "ci_upper": 0.35}, "imprecision", "serious", "15 percentage points"),
    ({"patients": {"a": 20, "b": 20, "c": 20, "d": 20}}, "imprecision", "serious",
     "80 patients"),
    ({"ci_lower": 0.1, "ci_upper": 0.45}, "imprecision", "very_serious",
     "35 percentage points"),
    ({"scale": "ratio", "estimate": 0.5, "ci_lower": 0.3, "ci_upper": 0.8},
     "imprecision", "not_serious", "0.30 to 0.80"),
    ({"scale": "ratio", "estimate": 0.5, "ci_lower": 0.3, "ci_upper": 1.1},
     "imprecision", "serious", "0.30 to 1.10"),
    ({"scale": "ratio", "estimate": 1.0, "ci_lower": 0.5, "ci_upper": 2.0},
     "imprecision", "very_serious", "0.50 to 2.00"),
    ({"scale": "ratio", "patients": {}, "estimate": 0.4, "ci_lower": 0.2, "ci_upper": 0.7},
     "imprecision", "serious", "no patient numbers"),
    ({}, "publication_bias", "not_serious", "not assessable with 4 studies"),
    ({"k": 12, "egger_p": 0.05}, "publication_bias", "serious", "Egger's test p = 0.050"),
    ({"k": 12, "egger_p": 0.5}, "publication_bias", "not_serious", "p = 0.500"),
])
def test_proposal_rules(change: dict, domain: str, judgement: str, reason: str) -> None:
    p = propose(ev(**change))[domain]
    assert (p.judgement, reason in p.reason) == (judgement, True), p


def rows(outcome: str = "x", **judgements: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"outcome_id": outcome, "domain": d,
                          "judgement": judgements.get(d, ("not_serious", ""))[0],
                          "reason": judgements.get(d, ("", ""))[1]} for d in DOMAINS])


def test_decide_levels_and_departures() -> None:
    proposals = propose(ev(i2=60.0))  # inconsistency proposed serious
    c = decide("x", "agreement", proposals, rows(inconsistency=("serious", "")))
    assert (c.start, c.level, c.departures) == ("high", "moderate", ())
    assert c.reasons["inconsistency"] == "I² = 60%"  # the proposal's reason stands
    c2 = decide("x", "agreement", proposals, rows(
        inconsistency=("serious", ""), indirectness=("very_serious", "mixed populations")))
    assert (c2.level, c2.departures, c2.symbol) == ("very low", ("indirectness",), "⊕◯◯◯")
    single = decide("x", "single_arm", propose(ev()), rows())
    assert single.level == "low"
    with pytest.raises(CertaintyError, match="departs from the proposal 'serious'"):
        decide("x", "agreement", proposals, rows())
    with pytest.raises(CertaintyError, match="needs exactly one row for 'imprecision'"):
        decide("x", "agreement", proposals,
               rows(inconsistency=("serious", "")).iloc[:3])
    with pytest.raises(CertaintyError, match="'grave' is not one of"):
        decide("x", "agreement", proposals, rows(inconsistency=("grave", "why")))
    with pytest.raises(CertaintyError, match="outcome_id \\['y'\\] not in the summary"):
        check_outcomes(rows("y"), ["x"])
    assert c2.to_dict()["proposed"]["indirectness"]["judgement"] == "not_serious"
    # as_proposed takes the proposal, on whatever data: a new study may change it
    follows = decide("x", "agreement", proposals, rows(inconsistency=("as_proposed", "")))
    assert follows.final["inconsistency"] == "serious" and follows.departures == ()
    calmer = decide("x", "agreement", propose(ev(i2=20.0)),
                    rows(inconsistency=("as_proposed", "")))
    assert calmer.final["inconsistency"] == "not_serious" and calmer.level == "high"
    # an explicit judgement that the data now contradict stops the build
    with pytest.raises(CertaintyError, match="'serious' departs from the proposal "
                                             "'not_serious'"):
        decide("x", "agreement", propose(ev(i2=20.0)), rows(inconsistency=("serious", "")))
