"""Tests for evidence.stats.glmm against metafor 3.8-1 ``rma.glmm`` (lme4 1.1-31).

Reference values live in ``tests/fixtures/glmm/`` (see its README.md for the R calls).
Tolerance: lme4's optimiser stops about 1e-5 short of the optimum and its
finite-difference Hessian carries the noise of its PIRLS tolerance, so ``se`` and ``tau2``
are compared to 1e-4 relative (tau2: 1e-6 absolute at 0), the estimate and logLik to
``1e-4 * max(|reference|, 1)`` and interval limits to 1e-4 of the larger of ``|limit|``, 1
and the half-width.  Quantities that do not depend on the optimiser (LR test, escalc
values) are compared to 1e-9, the Wald test to 1e-6.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_rscript

from evidence.stats.effects import escalc
from evidence.stats.glmm import (
    ConvergenceError,
    glmm_fitter,
    glmm_heterogeneity,
    rma_glmm,
)
from evidence.stats.pooling import ConvergenceError as PoolingConvergenceError
from evidence.stats.sensitivity import Refits, cumulative, leave_one_out

FIX = Path(__file__).parents[1] / "fixtures" / "glmm"
SETS = ["objective_response", "screening_yield", "pritz1997", "homogeneous_tau2_zero",
        "zeros_but_one", "simulated_k24"]
# metafor key -> MetaResult attribute
LIMITS = {"ci_lb": "ci_lower", "ci_ub": "ci_upper", "pi_lb": "pi_lower", "pi_ub": "pi_upper"}


def load(name: str) -> tuple[pd.DataFrame, dict]:
    data = pd.read_csv(FIX / f"{name}.csv")
    ref = json.loads((FIX / f"{name}.json").read_text())
    return data, ref


def close_logit(got: float, ref: float, tol: float = 1e-4) -> bool:
    return abs(got - ref) <= tol * max(abs(ref), 1.0)


def assert_tau2(got: float, ref: float, tol: float = 1e-4) -> None:
    if ref < 1e-8:
        assert abs(got - ref) <= 1e-6
    else:
        assert got == pytest.approx(ref, rel=tol)


def assert_matches(res, ref: dict, tol: float = 1e-4) -> None:
    """Compare a MetaResult with a metafor rma.glmm record."""
    assert close_logit(res.estimate, ref["estimate"], tol), (res.estimate, ref["estimate"])
    assert close_logit(res.loglik, ref["logLik"], tol), (res.loglik, ref["logLik"])
    assert res.se == pytest.approx(ref["se"], rel=tol)
    assert res.zval == pytest.approx(ref["zval"], rel=2 * tol)
    for key, attr in LIMITS.items():
        scale = max(abs(ref[key]), 1.0, abs(ref[key] - ref["estimate"]))
        assert abs(getattr(res, attr) - ref[key]) <= tol * scale, (key, getattr(res, attr))
    assert_tau2(res.tau2, ref["tau2"], tol)
    assert res.i2 == pytest.approx(ref["I2"], rel=tol, abs=1e-6)
    assert res.h2 == pytest.approx(ref["H2"], rel=tol)
    assert res.pval == pytest.approx(ref["pval"], rel=10 * tol, abs=1e-12)
    # the Wald test does not depend on the GLMM fit: R's glm path, reproduced exactly
    assert res.q == pytest.approx(ref["QE_Wld"], rel=1e-6, abs=1e-12)
    assert res.q_pvalue == pytest.approx(ref["QEp_Wld"], rel=1e-6, abs=1e-12)


# ---------------------------------------------------------------------------- rma_glmm


@pytest.mark.parametrize("name", SETS)
def test_rma_glmm_matches_metafor(name: str) -> None:
    data, ref = load(name)
    glmm = ref["glmm"][0]
    res = rma_glmm(data["events"], data["total"], study_ids=data["study"])
    assert res.method == "GLMM" and res.measure == "PLO" and res.k == len(data)
    assert_matches(res, glmm)
    pooled = res.pooled()
    for key, attr in (("prop", "estimate"), ("prop_ci_lb", "ci_lower"),
                      ("prop_ci_ub", "ci_upper"), ("prop_pi_lb", "pi_lower"),
                      ("prop_pi_ub", "pi_upper")):
        assert getattr(pooled, attr) == pytest.approx(glmm[key], rel=2e-4), key


@pytest.mark.parametrize("name", SETS)
def test_heterogeneity_tests_match_metafor(name: str) -> None:
    data, ref = load(name)
    glmm = ref["glmm"][0]
    het = glmm_heterogeneity(data["events"], data["total"])
    assert het.df == len(data) - 1
    assert het.qe_wld == pytest.approx(glmm["QE_Wld"], rel=1e-6, abs=1e-12)
    assert het.qe_lrt == pytest.approx(glmm["QE_LRT"], rel=1e-9)
    assert het.qe_lrt_pvalue == pytest.approx(glmm["QEp_LRT"], rel=1e-9)
    res = rma_glmm(data["events"], data["total"])
    assert any("QE.LRT" in note and f"{het.qe_lrt:.4f}" in note for note in res.notes)


@pytest.mark.parametrize("name", SETS)
def test_yi_vi_are_escalc_plo(name: str) -> None:
    data, ref = load(name)
    res = rma_glmm(data["events"], data["total"], study_ids=data["study"])
    np.testing.assert_allclose(res.yi, [s["yi_PLO"] for s in ref["studies"]], rtol=1e-12)
    np.testing.assert_allclose(res.vi, [s["vi_PLO"] for s in ref["studies"]], rtol=1e-12)
    assert res.study_ids == tuple(data["study"])
    assert np.isnan(res.weights).all() and res.weights.shape == (len(data),)


def test_large_k_matches_metafor() -> None:
    """k = 1,000 (the benchmark size): metafor took 11 s for this fit."""
    data = pd.read_csv(FIX / "simulated_k1000.csv")
    ref = json.loads((FIX / "simulated_k1000.json").read_text())["full"]
    res = rma_glmm(data["events"], data["total"])
    assert_matches(res, ref)


@pytest.mark.parametrize("name", ["objective_response", "pritz1997"])
def test_laplace_matches_lme4_with_tight_pirls(name: str) -> None:
    """nagq=1 is the exact Laplace optimum: lme4 agrees once its PIRLS is tight."""
    data = pd.read_csv(FIX / f"{name}.csv")
    tight = json.loads((FIX / f"{name}_nagq1_tight.json").read_text())["full"]
    res = rma_glmm(data["events"], data["total"], nagq=1)
    assert_matches(res, tight)
    # with lme4's default tolerance (what metafor users get) the Laplace fit moves
    default = json.loads((FIX / f"{name}_nagq1.json").read_text())["full"]
    assert close_logit(res.estimate, default["estimate"], 1e-3)
    assert res.tau2 == pytest.approx(default["tau2"], rel=5e-3)


def test_tau2_zero_on_the_boundary() -> None:
    data, ref = load("homogeneous_tau2_zero")
    res = rma_glmm(data["events"], data["total"])
    assert res.tau2 == 0.0 and ref["glmm"][0]["tau2"] == 0.0
    assert res.i2 == 0.0 and res.h2 == 1.0
    assert res.pi_lower == pytest.approx(res.ci_lower) and res.pi_upper == pytest.approx(
        res.ci_upper)
    assert any("boundary" in note for note in res.notes)
    # tau2 = 0: the model is the common-effect logistic regression, se = 1/sqrt(info)
    x, n = data["events"].to_numpy(float), data["total"].to_numpy(float)
    p = x.sum() / n.sum()
    assert res.estimate == pytest.approx(math.log(p / (1 - p)), rel=1e-8)
    assert res.se == pytest.approx(1 / math.sqrt(n.sum() * p * (1 - p)), rel=1e-6)


def test_level_changes_only_the_intervals() -> None:
    data, _ = load("screening_yield")
    r95 = rma_glmm(data["events"], data["total"])
    r90 = rma_glmm(data["events"], data["total"], level=0.90)
    assert r90.estimate == r95.estimate and r90.level == 0.90
    z90 = 1.6448536269514722
    assert r90.ci_upper - r90.estimate == pytest.approx(z90 * r95.se, rel=1e-12)
    assert r90.pi_upper - r90.estimate == pytest.approx(z90 * math.sqrt(r95.se**2 + r95.tau2),
                                                        rel=1e-12)


# ------------------------------------------------------------------ properties (no R)


def test_deviance_agrees_with_direct_integration() -> None:
    """The AGQ marginal deviance equals -2 log of the integral computed by scipy.quad."""
    from scipy.integrate import quad

    from evidence.stats.glmm import _Binomial

    x = np.array([0.0, 1.0, 4.0, 13.0])
    n = np.array([7.0, 14.0, 8.0, 40.0])
    data = _Binomial(x, n, 25)
    mu, tau = -1.3, 0.9
    total = 0.0
    for xi, ni in zip(x, n, strict=True):
        def integrand(u, xi=xi, ni=ni):
            eta = mu + tau * u
            return math.exp(xi * eta - ni * math.log1p(math.exp(eta)) - u * u / 2) / math.sqrt(
                2 * math.pi)
        val, _ = quad(integrand, -12, 12, epsabs=0, epsrel=1e-13, limit=200)
        sat = (xi * math.log(xi / ni) if xi > 0 else 0.0) + (
            (ni - xi) * math.log(1 - xi / ni) if xi < ni else 0.0)
        total += -2 * (math.log(val) - sat)
    assert data.deviance(mu, tau) == pytest.approx(total, rel=1e-10)
    assert _Binomial(x, n, 7).deviance(mu, tau) == pytest.approx(total, rel=1e-5)
    # tau = 0: the binomial deviance of the common model
    p = 1 / (1 + math.exp(-mu))
    ll = np.sum(x * math.log(p) + (n - x) * math.log(1 - p))
    assert data.deviance(mu, 0.0) == pytest.approx(
        -2 * (ll - np.sum(np.where(x > 0, x * np.log(np.maximum(x, 1) / n), 0)
                          + np.where(x < n, (n - x) * np.log(np.maximum(n - x, 1) / n), 0))),
        rel=1e-12)


def test_swapping_events_and_non_events_negates_the_logit() -> None:
    data, _ = load("objective_response")
    x, n = data["events"].to_numpy(), data["total"].to_numpy()
    a = rma_glmm(x, n)
    b = rma_glmm(n - x, n)
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-6)
    assert b.se == pytest.approx(a.se, rel=1e-5)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-5)
    assert b.q == pytest.approx(a.q, rel=1e-9)


def test_study_order_does_not_matter() -> None:
    data, _ = load("pritz1997")
    perm = np.random.default_rng(3).permutation(len(data))
    a = rma_glmm(data["events"], data["total"])
    b = rma_glmm(data["events"].to_numpy()[perm], data["total"].to_numpy()[perm])
    assert b.estimate == pytest.approx(a.estimate, rel=1e-7)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-6)
    assert b.q == pytest.approx(a.q, rel=1e-9)


def test_vcov_falls_back_like_lme4(monkeypatch: pytest.MonkeyPatch) -> None:
    """A singular Hessian gives lme4's RX-based variance, 1 / sum(w / (1 + tau^2 w))."""
    import evidence.stats.glmm as g

    monkeypatch.setattr(g, "_hessian", lambda data, mu, tau: np.zeros((2, 2)))
    data, _ = load("homogeneous_tau2_zero")
    res = rma_glmm(data["events"], data["total"])
    n = data["total"].to_numpy(float)
    p = 1 / (1 + math.exp(-res.estimate))
    assert res.se == pytest.approx(1 / math.sqrt(np.sum(n * p * (1 - p))), rel=1e-9)
    assert any("fallback" in note for note in res.notes)


# ------------------------------------------------------------------ errors


def test_convergence_error_is_the_shared_one() -> None:
    assert ConvergenceError is PoolingConvergenceError
    assert issubclass(ConvergenceError, RuntimeError)


@pytest.mark.parametrize("x, n, what", [
    ([0, 0, 0], [10, 12, 9], "0 events"),
    ([10, 12], [10, 12], "only events"),
])
def test_no_finite_estimate_raises(x, n, what) -> None:
    with pytest.raises(ConvergenceError, match=what):
        rma_glmm(x, n)


def test_separated_data_raise_instead_of_returning_a_huge_tau() -> None:
    # metafor returns tau2 = 29616 here; the likelihood increases without bound in tau
    with pytest.raises(ConvergenceError, match="tau diverges"):
        rma_glmm([0, 10], [10, 10])


@pytest.mark.parametrize("kwargs, message", [
    ({"xi": [1], "ni": [10]}, "k >= 2"),
    ({"xi": [1, 2], "ni": [10]}, "differ in length"),
    ({"xi": [11, 2], "ni": [10, 10]}, "0 <= xi <= ni"),
    ({"xi": [-1, 2], "ni": [10, 10]}, "0 <= xi <= ni"),
    ({"xi": [1.5, 2], "ni": [10, 10]}, "whole numbers"),
    ({"xi": [1, 2], "ni": [0, 10]}, "positive"),
    ({"xi": [1, np.nan], "ni": [10, 10]}, "finite"),
    ({"xi": [1, 2], "ni": [10, 10], "level": 95}, "level must be in"),
    ({"xi": [1, 2], "ni": [10, 10], "nagq": 0}, "nagq must be"),
    ({"xi": [1, 2], "ni": [10, 10], "study_ids": ["a"]}, "study_ids has 1"),
    ({"xi": [1, 2], "ni": [10, 10], "study_ids": ["a", "a"]}, "unique"),
])
def test_bad_input_raises_value_error(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        rma_glmm(**kwargs)


# ------------------------------------------------------------- leave-one-out / cumulative


def glmm_leave_one_out(x, n, ids) -> Refits:
    """The GLMM refitted without each study (the one refit type, with the GLMM fitter)."""
    return leave_one_out(escalc("PLO", xi=x, ni=n, study_ids=ids), fitter=glmm_fitter())


def glmm_cumulative(x, n, ids, order=None) -> Refits:
    return cumulative(escalc("PLO", xi=x, ni=n, study_ids=ids), order, fitter=glmm_fitter())

def column(ref: dict, key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in ref[key]], dtype=float)


def assert_sequence(seq: Refits, ref: dict) -> None:
    est = column(ref, "estimate")
    for key, attr in (("estimate", "estimate"), ("ci_lb", "ci_lower"), ("ci_ub", "ci_upper")):
        want, got = column(ref, key), getattr(seq, attr)
        assert np.array_equal(np.isnan(got), np.isnan(want)), key
        ok = ~np.isnan(want)
        scale = np.maximum(np.maximum(np.abs(want[ok]), 1.0), np.abs(want[ok] - est[ok]))
        assert np.all(np.abs(got[ok] - want[ok]) <= 1e-4 * scale), key
    ok = ~np.isnan(est)
    np.testing.assert_allclose(seq.se[ok], column(ref, "se")[ok], rtol=1e-4)
    np.testing.assert_allclose(seq.zval[ok], column(ref, "zval")[ok], rtol=2e-4)
    # QE_Wld: R inverts the covariance of the contrasts by Cholesky; with an all-event
    # study (glm variance ~3e9, pritz1997) that costs R ~2e-6 relative (the exact
    # rational value of the quadratic form agrees with ours to 1e-15)
    for key, attr, rel in (("tau2", "tau2", 1e-4), ("I2", "i2", 1e-4), ("QE_Wld", "q", 1e-5),
                           ("pval", "pval", 1e-3)):
        want = column(ref, key)
        ok = ~np.isnan(want)
        np.testing.assert_allclose(getattr(seq, attr)[ok], want[ok], rtol=rel, atol=1e-6)
    np.testing.assert_allclose(seq.back_estimate, 1 / (1 + np.exp(-seq.estimate)), rtol=1e-12)


@pytest.mark.parametrize("name", ["objective_response", "screening_yield", "pritz1997"])
def test_leave_one_out_matches_looped_rma_glmm(name: str) -> None:
    data = pd.read_csv(FIX / f"{name}.csv")
    ref = json.loads((FIX / f"{name}_sequences.json").read_text())
    seq = glmm_leave_one_out(data["events"], data["total"], data["study"])
    assert seq.kind == "leave_one_out" and seq.study_ids == tuple(data["study"])
    assert list(seq.k) == [len(data) - 1] * len(data)
    assert_sequence(seq, ref["leave1out"])
    frame = seq.summary()
    assert frame.index_name == "omitted" and list(frame.index) == list(data["study"])
    assert frame.columns["estimate"][0] == seq.estimate[0]
    assert seq.method == "GLMM" and seq.failed == {}


@pytest.mark.parametrize("name", ["objective_response", "screening_yield", "pritz1997"])
def test_cumulative_matches_looped_rma_glmm(name: str) -> None:
    data = pd.read_csv(FIX / f"{name}.csv")
    ref = json.loads((FIX / f"{name}_sequences.json").read_text())
    seq = glmm_cumulative(data["events"], data["total"], data["study"])
    assert seq.kind == "cumulative" and list(seq.k) == list(range(1, len(data) + 1))
    assert_sequence(seq, ref["cumul"])
    assert np.isnan(seq.estimate[0]) and "k >= 2" in seq.errors[0]
    assert seq.summary().index_name == "added"
    # the last step is the full fit
    full = rma_glmm(data["events"], data["total"])
    assert seq.estimate[-1] == pytest.approx(full.estimate, rel=1e-12)


def test_cumulative_order_sorts_by_key() -> None:
    data = pd.read_csv(FIX / "objective_response.csv")
    years = [2012, 2016, 2019, 2021, 2024]
    order = years[::-1]  # newest first
    seq = glmm_cumulative(data["events"], data["total"], data["study"], order=order)
    assert seq.study_ids == tuple(data["study"][::-1])
    rev = glmm_cumulative(data["events"][::-1], data["total"][::-1], data["study"][::-1])
    np.testing.assert_allclose(seq.estimate, rev.estimate, rtol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="order has shape"):
        glmm_cumulative(data["events"], data["total"], data["study"], order=[1, 2])


def test_sequence_to_dict_is_json_ready() -> None:
    seq = glmm_cumulative([0, 1, 1], [7, 14, 11], ["a", "b", "c"])
    out = json.loads(json.dumps(seq.to_dict()))
    assert out["estimate"][0] is None and out["study_ids"] == ["a", "b", "c"]


# ------------------------------------------------------------------ live metafor


@pytest.mark.metafor
def test_live_metafor_on_fresh_data(tmp_path: Path) -> None:
    """Run rma.glmm (and its leave-one-out/cumulative loops) now, on data made here."""
    require_rscript("metafor", "lme4", "jsonlite")
    rng = np.random.default_rng(2024)
    k = 7
    n = rng.integers(10, 120, size=k)
    x = rng.binomial(n, 1 / (1 + np.exp(-rng.normal(-1.2, 0.8, size=k))))
    x[0] = 0  # keep a zero-event study in play
    ids = [f"s{i}" for i in range(k)]
    csv = tmp_path / "live.csv"
    pd.DataFrame({"study": ids, "events": x, "total": n}).to_csv(csv, index=False)
    out = tmp_path / "live.json"
    subprocess.run(["Rscript", str(FIX / "glmm_reference.R"), str(csv), str(out)], check=True,
                   capture_output=True)
    ref = json.loads(out.read_text())
    assert_matches(rma_glmm(x, n, study_ids=ids), ref["full"])
    assert_sequence(glmm_leave_one_out(x, n, ids), ref["leave1out"])
    assert_sequence(glmm_cumulative(x, n, ids), ref["cumul"])
