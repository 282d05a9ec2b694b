"""Tests for evidence.stats.effects: escalc, hazard-ratio conversions, study CIs, against
metafor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import PROPORTION_SETS, assert_metafor_close, load_metafor, proportion_csv

from evidence.stats.effects import (
    escalc,
    hazard_ratios,
    log_hr_from_ci,
    log_hr_from_p,
    proportion_ci,
    subset_studies,
)

# --------------------------------------------------------------------------- escalc vs metafor


@pytest.mark.parametrize("name", PROPORTION_SETS)
@pytest.mark.parametrize("measure", ["PLO", "PR", "PAS", "PFT"])
def test_proportion_measures_match_metafor(name, measure):
    """escalc(measure, xi, ni) with metafor's defaults, study by study (metafor_reference.R)."""
    d = proportion_csv(name)
    es = escalc(measure, xi=d.events, ni=d.total, study_ids=d.study)
    studies = load_metafor(name)["studies"]
    assert_metafor_close(es.yi, [s[f"yi_{measure}"] for s in studies], f"{name} {measure} yi")
    assert_metafor_close(es.vi, [s[f"vi_{measure}"] for s in studies], f"{name} {measure} vi")
    assert es.study_ids == tuple(d.study)
    np.testing.assert_array_equal(es.xi, d.events)
    np.testing.assert_array_equal(es.ni, d.total)


def _extra_escalc(extra, label, measure, **match):
    for r in extra["escalc"]:
        if r["label"] == label and r["measure"] == measure and all(
                r.get(k) == v for k, v in match.items()):
            return r
    raise LookupError((label, measure, match))


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_two_group_bcg_matches_metafor(extra, measure):
    b = extra["data"]["bcg"]
    es = escalc(measure, ai=b["ai"], bi=b["bi"], ci=b["ci"], di=b["di"])
    r = _extra_escalc(extra, "bcg", measure)
    assert_metafor_close(es.yi, r["yi"], f"bcg {measure} yi")
    assert_metafor_close(es.vi, r["vi"], f"bcg {measure} vi")
    assert not es.corrected.any()


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
@pytest.mark.parametrize("add, to", [(0.5, "only0"), (0.5, "all"), (0.5, "if0all"), (0, "none"),
                                     (1, "only0")])
def test_two_group_zero_handling_matches_metafor(extra, measure, add, to):
    """dat.nielweise2007: sparse two-arm data with zero-event arms."""
    n = extra["data"]["nielweise2007"]
    es = escalc(measure, ai=n["ai"], n1i=n["n1i"], ci=n["ci"], n2i=n["n2i"], add=add, to=to)
    r = _extra_escalc(extra, "nielweise2007", measure, add=add, to=to)
    assert_metafor_close(es.yi, r["yi"], f"nielweise2007 {measure} {add} {to} yi")
    assert_metafor_close(es.vi, r["vi"], f"nielweise2007 {measure} {add} {to} vi")


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
@pytest.mark.parametrize("drop00", [False, True])
def test_drop00_matches_metafor(extra, measure, drop00):
    z = extra["data"]["double_zero"]
    es = escalc(measure, ai=z["ai"], n1i=z["n1i"], ci=z["ci"], n2i=z["n2i"], drop00=drop00)
    r = _extra_escalc(extra, "double_zero", measure, drop00=drop00)
    assert_metafor_close(es.yi, r["yi"], f"double zero {measure} drop00={drop00} yi")
    assert_metafor_close(es.vi, r["vi"], f"double zero {measure} drop00={drop00} vi")
    assert np.isnan(es.yi[-1]) == drop00


@pytest.mark.parametrize("measure", ["PR", "PLO", "PAS", "PFT"])
@pytest.mark.parametrize("add, to, default", [(None, "only0", True), (0.5, "only0", False),
                                              (0.5, "all", False), (0, "only0", False)])
def test_explicit_add_for_proportions_matches_metafor(extra, measure, add, to, default):
    """pritz1997 has all-event studies: metafor's add applies to PR/PLO by default, to
    PAS/PFT only when given explicitly."""
    p = load_metafor("pritz1997")["studies"]
    xi = [s["events"] for s in p]
    ni = [s["n"] for s in p]
    es = escalc(measure, xi=xi, ni=ni, add=add, to=to)
    match = {"default_add": True} if default else {"add": add, "to": to, "default_add": False}
    r = _extra_escalc(extra, "pritz1997", measure, **match)
    assert_metafor_close(es.yi, r["yi"], f"pritz {measure} add={add} to={to} yi")
    assert_metafor_close(es.vi, r["vi"], f"pritz {measure} add={add} to={to} vi")


# --------------------------------------------------------------------------- zero handling


def test_default_add_is_half_for_plo_and_pr_and_zero_for_pas_pft():
    xi, ni = [0, 3, 10], [10, 10, 10]
    plo = escalc("PLO", xi=xi, ni=ni)
    assert plo.add == 0.5 and plo.to == "only0"
    np.testing.assert_array_equal(plo.corrected, [True, False, True])
    assert math.isclose(plo.yi[0], math.log(0.5 / 10.5), rel_tol=1e-14)
    pr = escalc("PR", xi=xi, ni=ni)
    assert pr.yi[0] == 0.5 / 11  # the correction applies to PR too (metafor)
    for m in ("PAS", "PFT"):
        es = escalc(m, xi=xi, ni=ni)
        assert es.add == 0.0
        assert not es.corrected.any()
    assert escalc("PAS", xi=xi, ni=ni).yi[0] == 0.0


def test_zero_events_without_correction_give_nan():
    es = escalc("PLO", xi=[0, 3, 10], ni=[10, 10, 10], add=0, to="none")
    assert np.isnan(es.yi[0]) and np.isnan(es.vi[0])
    assert np.isnan(es.yi[2])
    assert np.isfinite(es.yi[1])


def test_if0all_corrects_every_study():
    es = escalc("PLO", xi=[0, 3, 4], ni=[10, 10, 10], to="if0all")
    assert es.corrected.all()
    assert math.isclose(es.yi[1], math.log(3.5 / 7.5), rel_tol=1e-14)
    none = escalc("PLO", xi=[1, 3, 4], ni=[10, 10, 10], to="if0all")
    assert not none.corrected.any()


def test_all_events_study():
    es = escalc("PLO", xi=[12], ni=[12])
    assert math.isclose(es.yi[0], math.log(12.5 / 0.5), rel_tol=1e-14)
    assert es.vi[0] == 1 / 12.5 + 1 / 0.5


def test_default_study_ids_and_float_counts():
    es = escalc("PLO", xi=np.array([1.0, 2.0]), ni=np.array([10.0, 20.0]))
    assert es.study_ids == ("study 1", "study 2")
    assert es.k == 2


def test_two_group_with_cells_or_sizes_agree():
    a = escalc("OR", ai=[4, 0], bi=[4, 10], ci=[14, 3], di=[11, 9])
    b = escalc("OR", ai=[4, 0], n1i=[8, 10], ci=[14, 3], n2i=[25, 12])
    np.testing.assert_array_equal(a.yi, b.yi)
    np.testing.assert_array_equal(a.vi, b.vi)
    assert a.xi is None and a.ni is None


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, message", [
    ({"measure": "XYZ", "xi": [1], "ni": [2]}, r"unknown measure 'XYZ'; allowed: PLO, PFT"),
    ({"measure": "plo", "xi": [1], "ni": [2]}, "unknown measure 'plo'"),
    ({"measure": "PLO", "xi": [1], "ni": [2], "to": "some"}, "unknown to 'some'; allowed"),
    ({"measure": "PLO", "xi": [1, 2], "ni": [2]}, "not all of the same length"),
    ({"measure": "PLO", "xi": [-1], "ni": [2]}, "must be >= 0"),
    ({"measure": "PLO", "xi": [1.5], "ni": [2]}, "whole numbers"),
    ({"measure": "PLO", "xi": [3], "ni": [2]}, "more events than patients"),
    ({"measure": "PLO", "xi": [0], "ni": [0]}, "must be > 0"),
    ({"measure": "PLO", "xi": [np.nan], "ni": [2]}, "non-finite"),
    ({"measure": "PLO", "xi": [1]}, "needs xi"),
    ({"measure": "PLO", "xi": [1], "ni": [2], "add": -1}, "add must be"),
    ({"measure": "PLO", "xi": [1], "ni": [2], "study_ids": ["a", "b"]}, "study_ids has 2"),
    ({"measure": "RR", "ai": [1], "ci": [2]}, "needs ai and ci"),
    ({"measure": "RR", "ai": [5], "n1i": [4], "ci": [1], "n2i": [4]}, "more events"),
    ({"measure": "RR", "ai": [1], "bi": [3], "n1i": [5], "ci": [1], "n2i": [4]}, r"n1i != ai"),
    ({"measure": "OR", "ai": [0], "bi": [0], "ci": [1], "di": [1]}, "must be > 0"),
])
def test_invalid_input_rejected_before_arithmetic(kwargs, message):
    with pytest.raises(ValueError, match=message):
        escalc(**kwargs)


# --------------------------------------------------------------------------- hazard ratios


def test_log_hr_from_ci_zhang2016():
    yi, vi = log_hr_from_ci([0.321, 0.383], [0.156, 0.166], [0.62, 0.831])
    z = 1.959963984540054
    np.testing.assert_allclose(yi, np.log([0.321, 0.383]), rtol=1e-15)
    np.testing.assert_allclose(np.sqrt(vi), (np.log([0.62, 0.831]) - np.log([0.156, 0.166]))
                               / (2 * z), rtol=1e-14)


def test_log_hr_from_ci_other_level():
    _, v95 = log_hr_from_ci(0.5, 0.3, 0.8)
    _, v90 = log_hr_from_ci(0.5, 0.3, 0.8, level=0.90)
    assert math.isclose(math.sqrt(v95[0]) * 1.959963984540054,
                        math.sqrt(v90[0]) * 1.6448536269514722, rel_tol=1e-12)


def test_log_hr_from_p():
    yi, vi = log_hr_from_p(1.85, 0.012)
    z = 2.5121443279304616  # qnorm(1 - 0.012 / 2)
    assert math.isclose(math.sqrt(vi[0]), abs(math.log(1.85)) / z, rel_tol=1e-12)
    assert yi[0] == math.log(1.85)


def test_hazard_ratios_matches_metafor_input(extra):
    """The R script derives yi/vi for the same rule (CI, else p); rma agreement is tested
    in test_pooling; here the per-study values."""
    h = extra["data"]["hr"]
    es = hazard_ratios(h["hr"], h["lo"], h["hi"], h["p"], h["study"])
    assert es.measure == "HR"
    assert es.study_ids == tuple(h["study"])
    z = 1.959963984540054
    expected = [(math.log(u) - math.log(lo)) / (2 * z) if lo is not None
                else abs(math.log(hr)) / 2.5121443279304616
                for hr, lo, u in zip(h["hr"], h["lo"], h["hi"], strict=True)]
    np.testing.assert_allclose(np.sqrt(es.vi), expected, rtol=1e-12)


def test_hazard_ratio_errors():
    with pytest.raises(ValueError, match="ratio of exactly 1"):
        log_hr_from_p(1.0, 0.5)
    with pytest.raises(ValueError, match=r"p_value must be in \(0, 1\)"):
        log_hr_from_p(0.8, 1.0)
    with pytest.raises(ValueError, match="ci_lower must be < ci_upper"):
        log_hr_from_ci(0.5, 0.8, 0.3)
    with pytest.raises(ValueError, match="outside its confidence interval"):
        log_hr_from_ci(0.9, 0.3, 0.8)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        log_hr_from_ci(-0.5, 0.3, 0.8)
    with pytest.raises(ValueError, match="no complete CI and no p-value for b"):
        hazard_ratios([0.5, 0.7], [0.3, None], [0.8, None], None, ["a", "b"])
    with pytest.raises(ValueError, match="ratio of exactly 1"):
        hazard_ratios([1.0], None, None, [0.3])


def test_hazard_ratios_prefers_ci_over_p():
    a = hazard_ratios([0.5], [0.3], [0.8], [0.001])
    b = hazard_ratios([0.5], [0.3], [0.8])
    np.testing.assert_array_equal(a.vi, b.vi)


# --------------------------------------------------------------------------- study CIs


@pytest.mark.parametrize("name", PROPORTION_SETS)
def test_clopper_pearson_matches_binom_test(name):
    studies = load_metafor(name)["studies"]
    xi = [s["events"] for s in studies]
    ni = [s["n"] for s in studies]
    lo, hi = proportion_ci(xi, ni, "clopper-pearson")
    assert_metafor_close(lo, [s["cp_lb"] for s in studies], f"{name} CP lower")
    assert_metafor_close(hi, [s["cp_ub"] for s in studies], f"{name} CP upper")


@pytest.mark.parametrize("name", PROPORTION_SETS)
def test_wilson_matches_reference(name):
    studies = load_metafor(name)["studies"]
    xi = [s["events"] for s in studies]
    ni = [s["n"] for s in studies]
    lo, hi = proportion_ci(xi, ni, "wilson")
    assert_metafor_close(lo, [s["wilson_lb"] for s in studies], f"{name} Wilson lower")
    assert_metafor_close(hi, [s["wilson_ub"] for s in studies], f"{name} Wilson upper")


def test_proportion_ci_edges_and_errors():
    lo, hi = proportion_ci([0, 7], [7, 7])
    assert lo[0] == 0.0 and hi[1] == 1.0
    lo90, hi90 = proportion_ci([3], [10], level=0.90)
    lo95, hi95 = proportion_ci([3], [10])
    assert lo95[0] < lo90[0] < hi90[0] < hi95[0]
    with pytest.raises(ValueError, match="unknown method 'exact'"):
        proportion_ci([1], [2], "exact")
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        proportion_ci([1], [2], level=95)
    with pytest.raises(ValueError, match="xi > ni"):
        proportion_ci([3], [2])


# --------------------------------------------------------------------------- subsetting


def test_subset_studies_keeps_everything_aligned():
    es = escalc("PLO", xi=[0, 3, 4, 9], ni=[10, 10, 12, 9], study_ids=["a", "b", "c", "d"])
    sub = subset_studies(es, [3, 1])
    assert sub.study_ids == ("d", "b")
    np.testing.assert_array_equal(sub.yi, es.yi[[3, 1]])
    np.testing.assert_array_equal(sub.ni, [9, 10])
    np.testing.assert_array_equal(sub.corrected, [True, False])
    mask = subset_studies(es, np.array([True, False, False, True]))
    assert mask.study_ids == ("a", "d")
    with pytest.raises(ValueError, match="boolean index"):
        subset_studies(es, np.array([True, False]))
