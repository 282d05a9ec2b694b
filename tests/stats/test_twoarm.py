"""Tests for evidence.stats.twoarm against metafor 3.8-1 ``rma.mh``/``escalc`` and R's
``fisher.test``.

Reference values: ``tests/fixtures/twoarm/twoarm_reference.json``, made by
``twoarm_reference.R`` in the same folder (see its README.md).  The formulas are closed
form, so everything is compared to 1e-9 relative.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_rscript
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.stats.twoarm import MHResult, rma_mh, two_arm_effect

FIX = Path(__file__).parents[1] / "fixtures" / "twoarm"
REF = json.loads((FIX / "twoarm_reference.json").read_text())

# metafor name -> MHResult attribute
MH_FIELDS = {
    "estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval", "ci_lb": "ci_lower",
    "ci_ub": "ci_upper", "pred": "pred", "pred_ci_lb": "pred_ci_lower",
    "pred_ci_ub": "pred_ci_upper", "QE": "q", "QEp": "q_pvalue", "I2": "i2", "H2": "h2",
    "MH": "cmh", "MHp": "cmh_pvalue", "CO": "cochran", "COp": "cochran_pvalue",
    "TA": "tarone", "TAp": "tarone_pvalue", "BD": "breslow_day",
    "BDp": "breslow_day_pvalue", "k": "k", "k_yi": "k_yi",
}


def case_id(case: dict) -> str:
    return (f"{case['set']}-{case['measure']}-{case['to']}-add{case['add']}"
            f"-correct{case['correct']}-level{case['level']}")


def run_case(case: dict) -> MHResult:
    return rma_mh(case["ai"], case["bi"], case["ci"], case["di"], case["measure"],
                  add=case["add"], to=case["to"], correct=case["correct"],
                  level=case["level"] / 100, study_ids=np.atleast_1d(case["study"]))


def assert_mh(res: MHResult, case: dict) -> None:
    for key, attr in MH_FIELDS.items():
        want, got = case[key], getattr(res, attr)
        if want is None:  # NA in R
            assert got is None or math.isnan(got), (key, got)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-14), (key, got, want)
    if case["k_pos"] is None:
        assert res.k_pos is None
    else:
        assert res.k_pos == case["k_pos"]
    want_yi = np.atleast_1d(np.array(case["yi"], dtype=float))
    want_vi = np.atleast_1d(np.array(case["vi"], dtype=float))
    np.testing.assert_allclose(res.yi, want_yi, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(res.vi, want_vi, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("case", REF["mh"], ids=case_id)
def test_rma_mh_matches_metafor(case: dict) -> None:
    res = run_case(case)
    assert res.measure == case["measure"]
    assert_mh(res, case)


def test_double_zero_table_stays_in_the_mh_sums_but_not_in_q() -> None:
    """dat.nielweise2007 (Yucel 2004: 0/118 vs 0/105): k = 18, Q over 17 studies."""
    case = next(c for c in REF["mh"] if c["set"] == "nielweise2007" and c["measure"] == "RD")
    res = run_case(case)
    assert res.k == 18 and res.k_yi == 17 and res.q_df == 16
    assert any("both groups" in note for note in res.notes)
    # the RD estimate changes if the double-zero table is dropped (it is in the sums)
    keep = [i for i in range(18) if not (case["ai"][i] == 0 and case["ci"][i] == 0)]
    sub = rma_mh(*(np.asarray(case[c])[keep] for c in ("ai", "bi", "ci", "di")), "RD")
    assert sub.estimate != pytest.approx(res.estimate, rel=1e-6)


def test_single_table_mh_is_the_simple_odds_ratio() -> None:
    res = rma_mh([4], [4], [5], [20], "OR")
    assert res.pred == pytest.approx(4 * 20 / (4 * 5), rel=1e-14)
    assert (res.q, res.q_pvalue, res.i2, res.h2, res.q_df) == (0.0, 1.0, 0.0, 1.0, 0)
    assert res.k_pos == 1 and math.isnan(res.tarone_pvalue)


def test_pooled_and_to_dict() -> None:
    case = REF["mh"][0]
    res = run_case(case)
    pooled = res.pooled()
    assert pooled.transform == "exp" and pooled.estimate == res.pred
    assert pooled.pi_lower == pooled.ci_lower == res.pred_ci_lower
    out = json.loads(json.dumps(res.to_dict()))
    assert out["measure"] == "OR" and len(out["yi"]) == 13
    rd = rma_mh(case["ai"], case["bi"], case["ci"], case["di"], "RD")
    assert rd.transform == "identity" and rd.pred == rd.estimate


def test_no_events_in_one_group_gives_nan_not_an_error() -> None:
    res = rma_mh([0, 0], [10, 12], [3, 2], [9, 10], "OR")
    assert math.isnan(res.estimate) and math.isnan(res.pred) and math.isnan(res.tarone)
    assert any("odds ratio" in note for note in res.notes)
    rr = rma_mh([0, 0], [10, 12], [3, 2], [9, 10], "RR")
    assert math.isnan(rr.estimate)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30),
                          st.integers(1, 30)), min_size=2, max_size=6))
def test_swapping_groups_negates_the_estimate(tables) -> None:
    a, b, c, d = (np.array(v) for v in zip(*tables, strict=True))
    for measure in ("OR", "RR", "RD"):
        fwd = rma_mh(a, b, c, d, measure)
        rev = rma_mh(c, d, a, b, measure)
        assert rev.estimate == pytest.approx(-fwd.estimate, rel=1e-9, abs=1e-12)
        assert rev.se == pytest.approx(fwd.se, rel=1e-9)
        assert rev.q == pytest.approx(fwd.q, rel=1e-9, abs=1e-12)
        if measure == "OR":
            assert rev.cmh == pytest.approx(fwd.cmh, rel=1e-9, abs=1e-12)
            # Tarone's statistic is not symmetric in metafor either: for the tables
            # (6, 1, 1, 6), (7, 12, 19, 14) rma.mh gives TA = 9.216222 and, swapped,
            # 13.49191 (metafor 3.8); this library reproduces both (test_metafor_live)
            assert rev.tarone >= 0 and fwd.tarone >= 0


@pytest.mark.parametrize("kwargs, message", [
    ({"measure": "HR"}, "unknown measure 'HR'; allowed: RR, OR, RD"),
    ({"to": "some"}, "unknown to 'some'; allowed: all, only0, if0all, none"),
    ({"level": 95}, "level must be in"),
    ({"add": -1}, "add must be"),
])
def test_rma_mh_rejects_bad_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        rma_mh([1, 2], [3, 4], [5, 6], [7, 8], **kwargs)


@pytest.mark.parametrize("cells, message", [
    (([1, 2], [3], [5, 6], [7, 8]), "differ in length"),
    (([-1, 2], [3, 4], [5, 6], [7, 8]), "non-negative whole"),
    (([1.5, 2], [3, 4], [5, 6], [7, 8]), "non-negative whole"),
    (([0, 2], [0, 4], [5, 6], [7, 8]), "at least one patient"),
    (([], [], [], []), "k = 0"),
])
def test_rma_mh_rejects_bad_counts(cells, message) -> None:
    with pytest.raises(ValueError, match=message):
        rma_mh(*cells)


# ------------------------------------------------------------------ single 2x2 tables


@pytest.mark.parametrize("single", REF["single"], ids=lambda s: s["label"][:40])
@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_two_arm_effect_matches_escalc_and_fisher(single: dict, measure: str) -> None:
    e = two_arm_effect(single["ai"], single["n1i"], single["ci"], single["n2i"], measure)
    ref = single[measure]
    for key, attr in (("yi", "yi"), ("vi", "vi"), ("ci_lb", "ci_lower"), ("ci_ub", "ci_upper"),
                      ("pred", "pred"), ("pred_ci_lb", "pred_ci_lower"),
                      ("pred_ci_ub", "pred_ci_upper")):
        assert getattr(e, attr) == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key
    assert e.fisher_pvalue == pytest.approx(single["fisher"]["p_value"], rel=1e-9)
    assert e.corrected == (0 in (single["ai"], single["ci"], single["n1i"] - single["ai"],
                                 single["n2i"] - single["ci"]))


def test_verschoor_objective_response() -> None:
    """Verschoor 2024: PR 4/8 with trastuzumab vs 5/25 taxane only (Results)."""
    e = two_arm_effect(4, 8, 5, 25, "OR")
    assert e.pred == pytest.approx(4.0)
    # the paper's Fisher p = 0.34 tests the 4-category best-response table (PD/SD/PR/
    # non-evaluable); the 2x2 PR-versus-not table gives R's fisher.test p = 0.1695
    assert e.fisher_pvalue == pytest.approx(0.169504577735946, rel=1e-9)
    assert json.loads(json.dumps(e.to_dict()))["measure"] == "OR"


@pytest.mark.parametrize("args, message", [
    ((9, 8, 5, 25), "0 <= ai <= n1i"),
    ((4, 0, 5, 25), "n1i, n2i > 0"),
    (([4, 1], [8, 9], [5, 2], [25, 20]), "one table"),
])
def test_two_arm_effect_rejects_bad_tables(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        two_arm_effect(*args)


def test_two_arm_effect_rejects_bad_measure() -> None:
    with pytest.raises(ValueError, match="allowed: RR, OR, RD"):
        two_arm_effect(4, 8, 5, 25, "PLO")


# ------------------------------------------------------------------ live metafor


@pytest.mark.metafor
def test_live_metafor_reproduces_the_fixture(tmp_path: Path) -> None:
    """Re-run the R script now: metafor still gives the fixture, and so do we."""
    require_rscript("metafor", "jsonlite")
    out = tmp_path / "twoarm.json"
    subprocess.run(["Rscript", str(FIX / "twoarm_reference.R"), str(out)], check=True,
                   capture_output=True)
    live = json.loads(out.read_text())
    for case in live["mh"]:
        assert_mh(run_case(case), case)
    for single in live["single"]:
        e = two_arm_effect(single["ai"], single["n1i"], single["ci"], single["n2i"], "OR")
        assert e.yi == pytest.approx(single["OR"]["yi"], rel=1e-12, abs=1e-15)
        assert e.fisher_pvalue == pytest.approx(single["fisher"]["p_value"], rel=1e-9)
