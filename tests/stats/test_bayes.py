"""Tests of :mod:`evidence.stats.bayes`, the public API: the published bayesmeta results
(``tests/fixtures/bayes/``, see its README), the result object and its ``summary()``,
the posterior functions, determinism and the argument checks.

The independent checks of the two models are in ``test_bayes_normal.py`` and
``test_bayes_binomial.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bayes_cases import EXAMPLES, OBJ_N, OBJ_X, crins_data, published

from evidence.stats import bayes
from evidence.stats.effects import escalc
from evidence.stats.results import Summary

# ======================================================================= published values


@pytest.fixture(scope="module")
def published_fits() -> dict[str, bayes.BayesResult]:
    return {ex["id"]: published.fit_example(ex) for ex in EXAMPLES}


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e["id"] for e in EXAMPLES])
def test_published_bayesmeta_values(ex: dict, published_fits: dict) -> None:
    res = published_fits[ex["id"]]
    failures = []
    for item in ex["printed"]:
        value, sd = published.our_value(res, ex, item["quantity"])
        printed = float(item["printed"])
        tol = published.tolerance(item, sd, value)
        if not abs(value - printed) <= tol:
            failures.append(f"{item['quantity']} ({item['where']}): printed {item['printed']}, "
                            f"ours {value:.9g}, |diff| {abs(value - printed):.2e} > tol {tol:.2e}")
    assert not failures, "\n".join(failures)


def test_published_computed_column_is_current(published_fits: dict) -> None:
    """The fixture's 'computed' column (documentation only; the test above recomputes
    every value) is what the module computes now: run
    tests/fixtures/bayes/make_bayesmeta_published.py when it is not."""
    stale = []
    for ex in EXAMPLES:
        for item in ex["printed"]:
            value, _ = published.our_value(published_fits[ex["id"]], ex, item["quantity"])
            if not abs(item["computed"] - value) <= 1e-9 * max(1.0, abs(value)):
                stale.append(f"{ex['id']} {item['quantity']}: stored {item['computed']}, "
                             f"now {value:.10g}")
    assert not stale, "\n".join(stale)


def test_published_escalc_effect_sizes() -> None:
    """The Crins log odds ratios are metafor's escalc(measure="OR") of the counts (as
    printed in the vignette, 4 decimals), recomputed with the wing's escalc; the eight
    schools' variances are the squared printed standard errors."""
    d = EXAMPLES[0]["data"]
    assert np.allclose(d["yi"], d["yi_printed"], atol=5e-5)
    assert np.allclose(d["vi"], d["vi_printed"], atol=5e-5)
    a, n1 = np.array(d["exp_AR_events"]), np.array(d["exp_total"])
    c, n2 = np.array(d["cont_AR_events"]), np.array(d["cont_total"])
    es = escalc("OR", ai=a, bi=n1 - a, ci=c, di=n2 - c)
    assert np.allclose(es.yi, d["yi"], rtol=0, atol=1e-12)
    assert np.allclose(es.vi, d["vi"], rtol=0, atol=1e-12)
    r = EXAMPLES[2]["data"]
    assert np.allclose(np.array(r["sei"]) ** 2, r["vi"], rtol=0, atol=1e-12)


def test_default_interval_is_bayesmeta_shortest(published_fits: dict) -> None:
    """bayesmeta quotes shortest intervals: our shortest_* fields carry them, and the
    tau interval of the eight-schools example starts at 0 as printed."""
    res = published_fits["rubin1981_example1"]
    assert res.tau.shortest_lower == 0.0
    assert res.tau.central_lower > 0.0


@pytest.fixture(scope="module")
def objective_fit() -> bayes.BayesResult:
    return bayes.bayes_binomial(OBJ_X, OBJ_N, study_ids=["pestrin", "hainsworth", "jacot",
                                                          "parsons", "verschoor"])


# ============================================================ density helper and result object


def test_density_helpers(objective_fit: bayes.BayesResult) -> None:
    res = objective_fit
    # the stored grids integrate to about the mass they cover
    assert abs(np.trapezoid(res.mu_density, res.mu_grid) - 0.998) < 2e-3
    assert abs(np.trapezoid(res.proportion_density, res.proportion_grid) - 0.998) < 2e-3
    # posterior_density is the derivative of posterior_cdf
    for par, pts in (("mu", [-3.0, -2.0, -1.0]), ("tau", [0.2, 0.5]),
                     ("proportion", [0.05, 0.1]), ("theta[verschoor]", [-1.0, 0.0]),
                     ("proportion_new", [0.1])):
        for x0 in pts:
            h = 1e-5
            up = bayes.posterior_cdf(res, x0 + h, par)
            fd = (up - bayes.posterior_cdf(res, x0 - h, par)) / (2 * h)
            assert abs(float(bayes.posterior_density(res, x0, par)) - float(fd)) < 1e-5
    # quantile inverts cdf
    q = bayes.posterior_quantile(res, [0.1, 0.9], "tau")
    assert np.allclose(bayes.posterior_cdf(res, q, "tau"), [0.1, 0.9], atol=1e-12)
    assert float(bayes.posterior_density(res, -1.0, "tau")) == 0.0
    with pytest.raises(ValueError):
        bayes.posterior_density(res, 0.0, "sigma")
    with pytest.raises(ValueError):
        bayes.posterior_density(res, 0.0, "theta[nobody]")
    y, v = crins_data()
    r = bayes.bayes_normal(y, v)
    with pytest.raises(ValueError):
        bayes.posterior_density(r, 0.5, "proportion")


def test_result_object(objective_fit: bayes.BayesResult) -> None:
    res = objective_fit
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["mu"]["shortest_lower"] <= d["mu"]["median"] <= d["mu"]["shortest_upper"]
    assert res.model == "binomial-normal" and res.k == 5
    assert res.tau_prior == "halfnormal(0.5)" and res.mu_prior == "normal(0, 10)"
    with pytest.raises(AttributeError):
        res.k = 3  # frozen
    for s in (res.mu, res.tau, res.proportion, res.theta_new, *res.shrinkage):
        assert s.central_lower < s.median < s.central_upper
        assert s.level == 0.95
    assert set(bayes.__all__) == {"bayes_normal", "bayes_binomial", "posterior_density",
                                  "posterior_cdf", "posterior_quantile", "BayesResult",
                                  "PosteriorSummary", "Diagnostics", "TAU_PRIORS"}


COLUMNS = ["median", "mean", "sd", "central_lower", "central_upper", "shortest_lower",
           "shortest_upper"]


def test_summary_binomial(objective_fit: bayes.BayesResult) -> None:
    """One row per parameter, the values of the PosteriorSummary fields."""
    s = objective_fit.summary()
    assert isinstance(s, Summary)
    assert s.index_name == "parameter"
    assert s.index == ("mu", "tau", "theta_new", "proportion", "proportion_new")
    assert list(s.columns) == COLUMNS
    for i, label in enumerate(s.index):
        ps = getattr(objective_fit, label)
        for c in COLUMNS:
            assert s.columns[c][i] == getattr(ps, c)
    rec = s.records()[3]
    assert rec["parameter"] == "proportion"
    assert 0.0 < rec["central_lower"] < rec["median"] < rec["central_upper"] < 1.0


def test_summary_normal_and_infinite_moments() -> None:
    y, v = crins_data()
    s = bayes.bayes_normal(y, v, mu_prior=("normal", 0, 4)).summary()
    assert s.index == ("mu", "tau", "theta_new")
    assert all(len(col) == 3 for col in s.columns.values())
    assert s.columns["shortest_lower"][1] == 0.0  # tau's shortest interval starts at 0
    # moments that do not exist stay inf/nan in the table (k = 1, half-Cauchy prior)
    h = bayes.bayes_normal([0.3], [0.04], tau_prior="halfcauchy", tau_scale=0.5).summary()
    assert math.isnan(h.columns["mean"][0]) and h.columns["mean"][1] == math.inf
    assert np.isfinite(h.columns["median"]).all()


def test_tau_priors() -> None:
    """TAU_PRIORS names the accepted families; spelling variants are accepted."""
    assert bayes.TAU_PRIORS == ("halfnormal", "halfcauchy", "uniform")
    y, v = crins_data()
    for name in (*bayes.TAU_PRIORS, "half-normal", "Half_Cauchy"):
        res = bayes.bayes_normal(y, v, tau_prior=name, tau_scale=1.0)
        assert res.tau_prior.startswith(name.lower().replace("-", "").replace("_", ""))
    with pytest.raises(ValueError, match="'halfnormal', 'halfcauchy' or 'uniform'"):
        bayes.bayes_normal(y, v, tau_prior="lognormal")


def test_study_ids() -> None:
    """Default labels "1" .. "k"; given labels become strings and must be unique."""
    res = bayes.bayes_normal([0.1, 0.2], [0.01, 0.02])
    assert res.study_ids == ("1", "2") and res.shrinkage[1].label == "theta[2]"
    res = bayes.bayes_normal([0.1, 0.2], [0.01, 0.02], study_ids=[2001, 2005])
    assert res.study_ids == ("2001", "2005")
    assert float(bayes.posterior_cdf(res, 0.15, "theta[2005]")) > 0.0
    with pytest.raises(ValueError, match="2 studies"):
        bayes.bayes_normal([0.1, 0.2], [0.01, 0.02], study_ids=["a"])


@pytest.mark.slow
def test_determinism() -> None:
    a = bayes.bayes_binomial(OBJ_X, OBJ_N).to_dict()
    b = bayes.bayes_binomial(OBJ_X, OBJ_N).to_dict()
    assert json.dumps(a) == json.dumps(b)
    y, v = crins_data()
    first = json.dumps(bayes.bayes_normal(y, v).to_dict())
    assert first == json.dumps(bayes.bayes_normal(y, v).to_dict())


# ======================================================================== argument checks


@pytest.mark.parametrize("kwargs,match", [
    ({"yi": [], "vi": []}, "k >= 1"),
    ({"yi": [0.1, np.nan], "vi": [0.1, 0.1]}, "finite"),
    ({"yi": [0.1, 0.2], "vi": [0.1, 0.0]}, "vi"),
    ({"yi": [0.1, 0.2], "vi": [0.1]}, "length"),
    ({"yi": [0.1], "vi": [0.1], "level": 95}, "level"),
    ({"yi": [0.1], "vi": [0.1], "tau_scale": 0}, "tau_scale"),
    ({"yi": [0.1], "vi": [0.1], "tau_scale": -1}, "tau_scale"),
    ({"yi": [0.1], "vi": [0.1], "tau_prior": "gamma"}, "tau_prior"),
    ({"yi": [0.1], "vi": [0.1], "mu_prior": ("normal", 0, 0)}, "sd"),
    ({"yi": [0.1], "vi": [0.1], "mu_prior": "normal"}, "mu_prior"),
    ({"yi": [0.1, 0.2], "vi": [0.1, 0.1], "study_ids": ["a", "a"]}, "unique"),
])
def test_normal_argument_checks(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bayes.bayes_normal(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"xi": [1, 2], "ni": [10]}, "length"),
    ({"xi": [11], "ni": [10]}, "0 <= xi <= ni"),
    ({"xi": [-1], "ni": [10]}, "0 <= xi <= ni"),
    ({"xi": [1], "ni": [0]}, "ni must be positive"),
    ({"xi": [], "ni": []}, "k >= 1"),
    ({"xi": [np.nan], "ni": [10]}, "finite"),
    ({"xi": [1.5], "ni": [10]}, "whole"),
    ({"xi": [1], "ni": [10], "tau_prior": "uniform", "tau_scale": math.inf}, "improper"),
    ({"xi": [1], "ni": [10], "level": 1.0}, "level"),
])
def test_binomial_argument_checks(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bayes.bayes_binomial(**kwargs)
