"""Tests for evidence.stats.pooling.rma / confint_tau2 against metafor 3.8-1 (fixtures), plus
edge cases, properties (hypothesis) and a cross-check with statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    PROPORTION_SETS,
    RMA_FIELDS,
    assert_metafor_close,
    compare_fields,
    load_metafor,
    proportion_csv,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evidence.stats._rma import uniroot, zeroin
from evidence.stats.effects import escalc, hazard_ratios
from evidence.stats.pooling import (
    ConvergenceError,
    TauConfint,
    confint_tau2,
    rma,
)
from evidence.stats.results import EffectSizes, MetaResult
from evidence.stats.vocabulary import RMA_METHODS

# --------------------------------------------------------------------------- single proportions

ZERO_HANDLING = {
    "add=1/2,to=all": {"add": 0.5, "to": "all"},
    "add=1/2,to=if0all": {"add": 0.5, "to": "if0all"},
    "add=0 (zero studies dropped)": {"add": 0.0, "to": "none"},
}


def _proportion_cases():
    for name in PROPORTION_SETS:
        for i, r in enumerate(load_metafor(name)["records"]):
            label = f"{name}-{r['measure']}-{r['method']}-{r.get('test')}-{i}"
            yield pytest.param(name, r, id=label)


@pytest.mark.parametrize("name, record", list(_proportion_cases()))
def test_proportions_match_metafor(name, record):
    """Every rma() record of metafor_reference.R: 7 data sets x (7 estimators, knha, zero
    handling variants, PFT/PR/PAS), all fields including back-transformed values."""
    assert "error" not in record, record
    d = proportion_csv(name)
    es = escalc(record["measure"], xi=d.events, ni=d.total, study_ids=d.study,
                **ZERO_HANDLING.get(record["zero_handling"], {}))
    res = rma(es, record["method"], knha=record["test"] == "knha")
    what = f"{name} {record['measure']} {record['method']} {record['test']}"
    compare_fields(res, record, RMA_FIELDS, what)
    assert res.k == record["k"]
    assert res.test == record["test"]
    assert_metafor_close(res.df, record["ddf"], f"{what} df")
    assert_metafor_close(res.weights, record["weights_pct"], f"{what} weights")
    pb = res.pooled()
    for key, val in (("prop", pb.estimate), ("prop_ci_lb", pb.ci_lower),
                     ("prop_ci_ub", pb.ci_upper), ("prop_pi_lb", pb.pi_lower),
                     ("prop_pi_ub", pb.pi_upper)):
        assert_metafor_close(val, record[key], f"{what} {key}")
    assert res.back_transform == record["back_transform"]
    if record["measure"] == "PFT":
        assert_metafor_close(res.harmonic_mean_n, record["harmonic_mean_n"], f"{what} hm n")
        assert pb.warning and "harmonic mean" in pb.warning
    if record["method"] == "FE":
        assert (res.pi_lower, res.pi_upper) == (res.ci_lower, res.ci_upper)
        assert math.isnan(res.tau2_ci_lower)


# --------------------------------------------------------------------------- other measures


def _es_extra(extra, label, measure) -> EffectSizes:
    data = extra["data"]
    if label == "bcg":
        b = data["bcg"]
        return escalc(measure, ai=b["ai"], bi=b["bi"], ci=b["ci"], di=b["di"],
                      study_ids=b["author"])
    if label == "nielweise2007":
        n = data["nielweise2007"]
        return escalc(measure, ai=n["ai"], n1i=n["n1i"], ci=n["ci"], n2i=n["n2i"],
                      study_ids=n["study"])
    if label == "hr":
        h = data["hr"]
        return hazard_ratios(h["hr"], h["lo"], h["hi"], h["p"], h["study"])
    if label == "identical":
        return escalc("PLO", xi=data["identical"]["xi"], ni=data["identical"]["ni"])
    if label == "k1":
        return escalc("PLO", xi=[data["k1"]["xi"]], ni=[data["k1"]["ni"]])
    raise LookupError(label)


_OPTIONS = {
    "": {},
    "tau2=0.1": {"tau2": 0.1},
    "level=0.90": {"level": 0.90},
    "level=0.90,knha": {"level": 0.90},
    "control=tau2.init=2": {"control": {"tau2_init": 2}},
    "control=stepadj=0.5": {"control": {"stepadj": 0.5}},
    "control=tau2.max=50": {"control": {"tau2_max": 50}},
    "knha": {},
}


def _extra_cases():
    for i, r in enumerate(load_metafor("metafor_extra")["rma"]):
        opt = r.get("option") or ""
        label = f"{r['label']}-{r['measure']}-{r['method']}-{r['test']}-{opt}-{i}"
        yield pytest.param(r, id=label)


@pytest.mark.parametrize("record", list(_extra_cases()))
def test_other_measures_and_options_match_metafor(extra, record):
    """RR/OR/RD (dat.bcg, sparse dat.nielweise2007), log HRs, fixed tau2, level, control
    settings, identical studies, k = 1."""
    opt = record.get("option") or ""
    es = _es_extra(extra, record["label"], record["measure"])
    knha = record["test"] == "knha" or opt.endswith("knha")
    res = rma(es, record["method"], knha=knha, **_OPTIONS[opt])
    what = f"{record['label']} {record['measure']} {record['method']} {record['test']} {opt}"
    skip = set()
    if record["k"] == 1:
        skip.add("QEp")  # documented: NaN here, 1 in metafor
        assert math.isnan(res.q_pvalue)
    compare_fields(res, record, RMA_FIELDS, what, skip=skip)
    assert_metafor_close(res.weights, record["weights_pct"], f"{what} weights")
    pb = res.pooled()
    for key, val in (("back", pb.estimate), ("back_ci_lb", pb.ci_lower),
                     ("back_ci_ub", pb.ci_upper), ("back_pi_lb", pb.pi_lower),
                     ("back_pi_ub", pb.pi_upper)):
        assert_metafor_close(val, record[key], f"{what} {key}")


def test_convergence_failure_raises(extra):
    err = next(e for e in extra["errors"] if e.get("option") == "control=maxiter=2")
    assert "did not converge" in err["error"]  # metafor fails too
    es = _es_extra(extra, "bcg", "RR")
    with pytest.raises(ConvergenceError, match="Fisher scoring did not converge"):
        rma(es, "REML", control={"maxiter": 2})
    assert issubclass(ConvergenceError, RuntimeError)


def test_pm_upper_bound_too_low_raises(extra):
    err = next(e for e in extra["errors"] if e.get("option") == "control=tau2.max=0.05")
    assert "tau2.max" in err["error"]
    with pytest.raises(ConvergenceError, match="tau2_max"):
        rma(_es_extra(extra, "bcg", "RR"), "PM", control={"tau2.max": 0.05})


# --------------------------------------------------------------------------- edge cases


def test_k0_raises():
    es = EffectSizes(measure="PLO", yi=np.array([]), vi=np.array([]), study_ids=())
    with pytest.raises(ValueError, match="no studies"):
        rma(es)


def test_all_missing_is_k0():
    es = escalc("PLO", xi=[0, 5], ni=[5, 5], add=0, to="none")
    with pytest.raises(ValueError, match="no studies"):
        rma(es)


def test_k1_returns_study_estimate_with_note():
    es = escalc("PLO", xi=[4], ni=[8], study_ids=["Verschoor 2024"])
    res = rma(es, "REML", knha=True)
    assert isinstance(res, MetaResult)
    assert res.k == 1 and res.estimate == es.yi[0] and res.se == math.sqrt(es.vi[0])
    assert res.tau2 == 0 and res.q == 0 and res.q_df == 0 and math.isnan(res.q_pvalue)
    assert res.test == "z"
    assert "k = 1: no pooling" in res.notes
    assert res.weights.tolist() == [100.0]
    assert (res.pi_lower, res.pi_upper) == (res.ci_lower, res.ci_upper)


def test_zero_event_studies_dropped_with_note():
    es = escalc("PLO", xi=[0, 3, 5, 2], ni=[10, 12, 20, 9], add=0, to="none",
                study_ids=list("abcd"))
    res = rma(es, "DL")
    assert res.k == 3
    assert res.study_ids == ("b", "c", "d")
    assert any("omitted" in n and "a" in n for n in res.notes)


def test_identical_studies_give_tau2_zero_for_every_method():
    es = escalc("PLO", xi=[5, 5, 5], ni=[20, 20, 20])
    for method in ("FE", "DL", "REML", "PM", "ML", "HE", "SJ"):
        res = rma(es, method)
        assert res.tau2 == 0.0
        assert res.q == pytest.approx(0.0, abs=1e-12)
        assert res.i2 == 0.0
        assert res.estimate == pytest.approx(math.log(5 / 15), rel=1e-12)


def test_tau2_zero_boundary_note():
    d = proportion_csv("screening_yield")
    es = escalc("PLO", xi=[7, 8, 9], ni=[100, 100, 100])
    res = rma(es, "REML")
    assert res.tau2 == 0.0
    assert any("boundary" in n for n in res.notes)
    assert rma(escalc("PLO", xi=d.events, ni=d.total), "REML").tau2 > 0


def test_invalid_method_and_options():
    es = escalc("PLO", xi=[1, 2, 3], ni=[10, 10, 10])
    with pytest.raises(ValueError, match=r"unknown method 'GLMM'; allowed: FE, EE, CE, DL"):
        rma(es, "GLMM")
    with pytest.raises(ValueError, match="unknown method 'reml'"):
        rma(es, "reml")
    with pytest.raises(ValueError, match="unknown control setting 'bogus'"):
        rma(es, control={"bogus": 1})
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        rma(es, level=95)
    with pytest.raises(TypeError, match="EffectSizes"):
        rma((es.yi, es.vi))


def test_non_positive_variance_rejected():
    es = EffectSizes(measure="PR", yi=np.array([0.0, 0.2, 0.3]), vi=np.array([0.0, 0.01, 0.02]),
                     study_ids=("a", "b", "c"))
    with pytest.raises(ValueError, match="vi <= 0"):
        rma(es, "REML")


def test_ee_ce_are_aliases_of_fe():
    es = escalc("PLO", xi=[1, 2, 9], ni=[10, 10, 10])
    fe = rma(es, "FE")
    for alias in ("EE", "CE"):
        res = rma(es, alias)
        assert res.method == alias
        assert res.estimate == fe.estimate and res.se == fe.se and res.i2 == fe.i2
    assert set(RMA_METHODS) >= {"FE", "DL", "REML", "PM", "ML", "HE", "SJ"}


def test_weights_and_result_bookkeeping():
    d = proportion_csv("orr_her2ctc")
    es = escalc("PLO", xi=d.events, ni=d.total, study_ids=d.study)
    res = rma(es, "REML")
    assert res.weights.sum() == pytest.approx(100.0, rel=1e-12)
    assert res.q_df == 4
    assert res.study_ids == tuple(d.study)
    assert res.back_transform == "transf.ilogit"
    assert res.model_dict()["i2"] == res.i2
    assert res.to_dict()["pooled"]["estimate"] == pytest.approx(res.pooled().estimate)


# --------------------------------------------------------------------------- Q-profile CI


def test_confint_tau2_matches_rma_and_metafor():
    d = proportion_csv("pritz1997")
    es = escalc("PLO", xi=d.events, ni=d.total)
    ci = confint_tau2(es, "REML")
    assert isinstance(ci, TauConfint)
    rec = next(r for r in load_metafor("pritz1997")["records"]
               if r["method"] == "REML" and r["test"] == "z" and r["measure"] == "PLO"
               and r["zero_handling"].startswith("add=1/2,to=only0"))
    assert_metafor_close(ci.tau2_ci_lower, rec["tau2_ci_lb"], "tau2 lb")
    assert_metafor_close(ci.tau2_ci_upper, rec["tau2_ci_ub"], "tau2 ub")
    assert_metafor_close(ci.i2_ci_upper, rec["I2_ci_ub"], "I2 ub")
    assert_metafor_close(ci.h2_ci_lower, rec["H2_ci_lb"], "H2 lb")


def test_confint_tau2_errors():
    es = escalc("PLO", xi=[1, 4, 3], ni=[10, 12, 10])
    with pytest.raises(ValueError, match="random-effects component"):
        confint_tau2(es, "FE")
    with pytest.raises(ValueError, match="estimated random-effects"):
        confint_tau2(es, "REML", tau2=0.1)
    with pytest.raises(ValueError, match="k = 1"):
        confint_tau2(escalc("PLO", xi=[1], ni=[10]), "REML")


def test_confint_null_interval_flagged():
    """Q(0) below the lower chi-square quantile: metafor's interval {0} (ci.null)."""
    ci = confint_tau2(escalc("PLO", xi=[5, 5, 5], ni=[20, 20, 20]), "DL")
    assert ci.tau2_ci_lower == 0.0 and ci.tau2_ci_upper == 0.0 and ci.ci_null
    assert ci.tau2_lower_sign == "<" and ci.tau2_upper_sign == "<"
    wide = confint_tau2(escalc("PLO", xi=[7, 8, 9], ni=[100, 100, 100]), "DL")
    assert wide.tau2_ci_lower == 0.0 and not wide.ci_null
    assert wide.tau2_ci_upper == pytest.approx(0.5986808, rel=1e-6)  # metafor: 0.5987


# --------------------------------------------------------------------------- root finder


def test_zeroin_port_is_bit_identical_to_r_uniroot(extra):
    """R's uniroot (zeroin2) on five functions at two tolerances: same root, same
    iteration count (metafor's PM and Q-profile use it with tol ~1.2e-4, so only an
    exact port reproduces their values)."""
    funcs = {1: lambda x: x ** 3 - 2 * x - 5, 2: lambda x: math.exp(x) - 10,
             3: lambda x: math.cos(x) - x, 4: lambda x: math.log(x + 1) - 0.3,
             5: lambda x: (x - 0.123456) ** 5}
    for case in extra["uniroot"]:
        f = funcs[case["fun"]]
        lo, hi = case["lower"], case["upper"]
        root, it, prec = zeroin(f, lo, hi, f(lo), f(hi), case["tol"], 1000)
        assert it == case["iter"]
        assert_metafor_close(root, case["root"], f"uniroot {case['fun']} tol {case['tol']}",
                             rel=1e-14, abs_tol=1e-300)
        assert_metafor_close(prec, case["estim_prec"], "estim.prec", rel=1e-12)


def test_uniroot_requires_sign_change():
    with pytest.raises(ValueError, match="opposite sign"):
        uniroot(lambda x: x * x + 1, -1.0, 1.0, 1e-8, 100)
    root, ok = uniroot(lambda x: x - 0.25, 0.0, 1.0, 1e-12, 100)
    assert ok and root == pytest.approx(0.25, abs=1e-12)


# --------------------------------------------------------------------------- statsmodels


@pytest.mark.parametrize("name", ["pritz1997", "li2007_treated", "screening_yield"])
def test_dl_and_pm_agree_with_statsmodels(name):
    from statsmodels.stats.meta_analysis import combine_effects

    d = proportion_csv(name)
    es = escalc("PLO", xi=d.events, ni=d.total)
    sm_dl = combine_effects(es.yi, es.vi, method_re="dl")
    dl = rma(es, "DL")
    assert dl.tau2 == pytest.approx(sm_dl.tau2, rel=1e-10)
    assert dl.estimate == pytest.approx(sm_dl.mean_effect_re, rel=1e-10)
    assert dl.se == pytest.approx(sm_dl.sd_eff_w_re, rel=1e-10)
    assert dl.q == pytest.approx(sm_dl.q, rel=1e-10)
    # statsmodels iterates PM to convergence; metafor's (and our default) root has
    # tol ~1.2e-4, so compare with a tight root-finder tolerance.
    sm_pm = combine_effects(es.yi, es.vi, method_re="pm", atol=1e-9, maxiter=1000)
    pm = rma(es, "PM", control={"tol": 1e-14})
    assert pm.tau2 == pytest.approx(sm_pm.tau2, rel=1e-8)
    assert pm.estimate == pytest.approx(sm_pm.mean_effect_re, rel=1e-8)


# --------------------------------------------------------------------------- properties

_RE_METHODS = ("FE", "DL", "REML", "PM", "ML", "HE", "SJ")


@st.composite
def proportion_data(draw, min_k=2, max_k=25):
    k = draw(st.integers(min_k, max_k))
    ni = draw(st.lists(st.integers(1, 400), min_size=k, max_size=k))
    xi = [draw(st.integers(0, n)) for n in ni]
    return np.array(xi), np.array(ni)


def _fit_or_reject(es, method, **kw):
    try:
        return rma(es, method, **kw)
    except ConvergenceError:
        assume(False)
        raise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=proportion_data(), measure=st.sampled_from(["PLO", "PFT", "PAS", "PR"]),
       method=st.sampled_from(_RE_METHODS), seed=st.integers(0, 2 ** 31 - 1))
def test_rma_is_invariant_to_study_order(data, measure, method, seed):
    xi, ni = data
    perm = np.random.default_rng(seed).permutation(xi.size)
    a = _fit_or_reject(escalc(measure, xi=xi, ni=ni), method)
    b = _fit_or_reject(escalc(measure, xi=xi[perm], ni=ni[perm]), method)
    for f in ("estimate", "se", "tau2", "i2", "q", "ci_lower", "ci_upper"):
        x, y = getattr(a, f), getattr(b, f)
        assert x == pytest.approx(y, rel=1e-7, abs=1e-9), f


@settings(max_examples=60, deadline=None)
@given(data=proportion_data(), measure=st.sampled_from(["PLO", "PFT", "PAS", "PR"]))
def test_fe_estimate_within_observed_range(data, measure):
    xi, ni = data
    es = escalc(measure, xi=xi, ni=ni)
    res = rma(es, "FE")
    span = es.yi.max() - es.yi.min()
    assert es.yi.min() - 1e-12 * (1 + span) <= res.estimate <= es.yi.max() + 1e-12 * (1 + span)


@settings(max_examples=80, deadline=None)
@given(data=proportion_data(), measure=st.sampled_from(["PLO", "PFT", "PAS", "PR"]),
       method=st.sampled_from(_RE_METHODS), knha=st.booleans())
def test_interval_and_heterogeneity_invariants(data, measure, method, knha):
    xi, ni = data
    res = _fit_or_reject(escalc(measure, xi=xi, ni=ni), method, knha=knha)
    assert res.ci_lower <= res.estimate <= res.ci_upper
    assert res.pi_lower <= res.ci_lower and res.ci_upper <= res.pi_upper
    assert res.tau2 >= 0.0
    assert 0.0 <= res.i2 <= 100.0
    assert res.h2 >= 1.0 or method == "FE"
    assert res.q >= 0.0
    assert res.weights.sum() == pytest.approx(100.0)
    if not math.isnan(res.tau2_ci_lower):
        assert res.tau2_ci_lower <= res.tau2_ci_upper


# --------------------------------------------------------------------------- scale


def test_large_k_reml_is_fast_and_sane():
    """O(k) memory: 20,000 studies would need a 3 GB matrix in metafor's formulation."""
    rng = np.random.default_rng(7)
    k = 20_000
    ni = rng.integers(20, 200, k)
    xi = rng.binomial(ni, 1 / (1 + np.exp(-rng.normal(-1.0, 0.5, k))))
    res = rma(escalc("PLO", xi=xi, ni=ni), "REML")
    assert 0.15 < res.tau2 < 0.40
    assert 0.15 < res.tau2_ci_lower < res.tau2_ci_upper < 0.40
