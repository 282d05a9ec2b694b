"""Tests of the normal-normal model of :mod:`evidence.stats.bayes` (``bayes_normal``;
its fit is in ``_bayes_normal``) against integrations written separately: a 2-D brute
force over ``(mu, tau)``, scipy ``quad`` over ``tau``, a seeded Metropolis-within-Gibbs
sampler, and the limiting cases (k = 1, tau -> 0, improper and bounded priors, k = 500).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from bayes_cases import crins_data, gl_nodes, rubin_data
from scipy import integrate, special

from evidence.stats import bayes


def brute_normal_2d(y: np.ndarray, v: np.ndarray, m0: float, s0: float, tau_s: float,
                    q_mu: float, q_tau: float) -> dict[str, float]:
    """2-D tensor Gauss-Legendre integration of the full (unmarginalised) posterior
    N(y_i | mu, v_i + tau^2) N(mu | m0, s0^2) HN(tau | tau_s) over (mu, tau)."""
    mu_e = np.concatenate([np.linspace(-6, q_mu, 41), np.linspace(q_mu, 3, 41)[1:]])
    tau_e = np.concatenate([np.linspace(0, q_tau, 41), np.linspace(q_tau, 4, 81)[1:]])
    mu, wm = gl_nodes(mu_e, 16)
    tau, wt = gl_nodes(tau_e, 16)
    V = v[None, None, :] + tau[None, :, None] ** 2
    ll = (-0.5 * ((y[None, None, :] - mu[:, None, None]) ** 2 / V + np.log(2 * np.pi * V))).sum(-1)
    lp = ll - 0.5 * ((mu[:, None] - m0) / s0) ** 2 - 0.5 * (tau[None, :] / tau_s) ** 2
    lmax = lp.max()
    P = np.exp(lp - lmax) * wm[:, None] * wt[None, :]
    Z = P.sum()
    norm = math.log(2.0 / (math.sqrt(2 * math.pi) * tau_s)) - 0.5 * math.log(2 * math.pi * s0 ** 2)
    P /= Z
    return {"mu_mean": float(P.sum(1) @ mu), "tau_mean": float(P.sum(0) @ tau),
            "mu_cdf": float(P[mu <= q_mu].sum()), "tau_cdf": float(P[:, tau <= q_tau].sum()),
            "log_ml": lmax + math.log(Z) + norm}


def test_normal_vs_bruteforce_2d_grid() -> None:
    """Independent 2-D quadrature (no conditional-normal algebra): 1e-8."""
    y, v = crins_data()
    res = bayes.bayes_normal(y, v, tau_scale=0.5, mu_prior=("normal", 0, 4))
    for p in (0.025, 0.5, 0.975):
        qm = float(bayes.posterior_quantile(res, p, "mu"))
        qt = float(bayes.posterior_quantile(res, p, "tau"))
        bf = brute_normal_2d(y, v, 0.0, 4.0, 0.5, qm, qt)
        assert abs(bf["mu_cdf"] - p) < 1e-8
        assert abs(bf["tau_cdf"] - p) < 1e-8
    assert abs(bf["mu_mean"] - res.mu.mean) < 1e-9
    assert abs(bf["tau_mean"] - res.tau.mean) < 1e-9
    assert abs(bf["log_ml"] - res.log_marginal_likelihood) < 1e-8


def normal_tau_marginal(y: np.ndarray, v: np.ndarray, logprior, m0: float | None,
                        s0: float | None):
    """Unnormalised tau posterior (mu integrated analytically) and its conditional moments."""
    def f(t: float) -> tuple[float, float, float]:
        w = 1.0 / (v + t * t)
        prec = w.sum() + (0.0 if s0 is None else 1.0 / s0 ** 2)
        mean = (w @ y + (0.0 if s0 is None else m0 / s0 ** 2)) / prec
        q = (w * (y - mean) ** 2).sum() + (0.0 if s0 is None else (m0 - mean) ** 2 / s0 ** 2)
        dens = math.exp(0.5 * np.log(w).sum() - 0.5 * math.log(prec) - 0.5 * q + logprior(t))
        return dens, mean, prec
    return f


def quad_split(fun, scale: float) -> float:
    pts = [0.0, *(scale * np.array([0.01, 0.1, 1 / 3, 1.0, 3.0, 10.0, 100.0])), np.inf]
    return sum(integrate.quad(fun, a, b, epsabs=0, epsrel=1e-12, limit=500)[0]
               for a, b in itertools.pairwise(pts))


@pytest.mark.parametrize("case", ["crins", "rubin"])
def test_normal_predictive_and_shrinkage_vs_quad(case: str) -> None:
    """CDF of theta_new and theta_i at our quantiles by scipy quad over tau: 1e-9."""
    if case == "crins":
        y, v = crins_data()
        res = bayes.bayes_normal(y, v, tau_scale=0.5, mu_prior=("normal", 0, 4))
        f = normal_tau_marginal(y, v, lambda t: -t * t / 0.5, 0.0, 4.0)
        scale = 0.4
    else:
        y, v = rubin_data()
        res = bayes.bayes_normal(y, v, tau_prior="halfcauchy", tau_scale=25,
                                 mu_prior=("normal", 0, 50))
        f = normal_tau_marginal(y, v, lambda t: -math.log1p((t / 25) ** 2), 0.0, 50.0)
        scale = 5.0
    Z = quad_split(lambda t: f(t)[0], scale)
    for s in (res.theta_new, res.shrinkage[0]):
        for p, q in ((0.5, s.median), (0.025, s.central_lower), (0.975, s.central_upper)):
            new = s is res.theta_new

            def g(t: float, q: float = q, new: bool = new) -> float:
                a, m, pr = f(t)
                if new:
                    return a * special.ndtr((q - m) / math.sqrt(1 / pr + t * t))
                b = v[0] / (v[0] + t * t)
                return a * special.ndtr((q - ((1 - b) * y[0] + b * m))
                                        / math.sqrt(v[0] * (1 - b) + b * b / pr))
            assert abs(quad_split(g, scale) / Z - p) < 1e-9
        # shortest interval: coverage `level` and equal density at both ends
        lo, hi = s.shortest_lower, s.shortest_upper
        label = "theta_new" if s is res.theta_new else f"theta[{res.study_ids[0]}]"
        cov = bayes.posterior_cdf(res, hi, label) - bayes.posterior_cdf(res, lo, label)
        assert abs(cov - 0.95) < 1e-9
        dens = bayes.posterior_density(res, [lo, hi], label)
        assert abs(dens[0] - dens[1]) < 1e-7 * dens.max()


@pytest.mark.slow
def test_normal_metropolis_sampler() -> None:
    """Seeded Metropolis-within-Gibbs over (mu, tau, theta) in test code: quantiles
    within 0.01."""
    y, v = crins_data()
    res = bayes.bayes_normal(y, v, tau_scale=0.5, mu_prior=("normal", 0, 4))
    rng = np.random.default_rng(20240601)
    C, k = 2000, y.size
    mu = rng.normal(-1.5, 0.5, C)
    tau = np.abs(rng.normal(0, 0.5, C))
    keep_mu, keep_tau, keep_new = [], [], []
    for it in range(2500):
        # theta | mu, tau, y: normal (Gibbs)
        prec = 1 / v[None, :] + 1 / tau[:, None] ** 2
        mean = (y[None, :] / v[None, :] + mu[:, None] / tau[:, None] ** 2) / prec
        theta = mean + rng.standard_normal((C, k)) / np.sqrt(prec)
        # mu | theta, tau: normal (Gibbs)
        pm = k / tau ** 2 + 1 / 16
        mu = (theta.sum(1) / tau ** 2) / pm + rng.standard_normal(C) / np.sqrt(pm)
        # tau: random walk on log(tau), non-centred (theta - mu scaled with tau)
        eta = (theta - mu[:, None]) / tau[:, None]
        u_new = np.log(tau) + 0.4 * rng.standard_normal(C)
        t_new = np.exp(u_new)

        def logt(t: np.ndarray, mu: np.ndarray = mu, eta: np.ndarray = eta) -> np.ndarray:
            th = mu[:, None] + t[:, None] * eta
            return (-0.5 * ((y[None, :] - th) ** 2 / v[None, :]).sum(1)
                    - t ** 2 / 0.5 + np.log(t))

        acc = np.log(rng.uniform(size=C)) < logt(t_new) - logt(tau)
        tau = np.where(acc, t_new, tau)
        if it >= 500:
            keep_mu.append(mu.copy())
            keep_tau.append(tau.copy())
            keep_new.append(mu + tau * rng.standard_normal(C))
    for draws, s in ((keep_mu, res.mu), (keep_tau, res.tau), (keep_new, res.theta_new)):
        q = np.quantile(np.concatenate(draws), [0.025, 0.5, 0.975])
        assert np.allclose(q, [s.central_lower, s.median, s.central_upper], atol=0.01)



# ============================================================================= edge cases


def test_normal_k1_tau_posterior_equals_prior() -> None:
    """k = 1 with a flat mu prior: the data carry no information on tau."""
    res = bayes.bayes_normal([0.3], [0.04], tau_scale=0.5)
    assert abs(res.tau.median - 0.5 * special.ndtri(0.75)) < 1e-9
    assert abs(res.tau.mean - 0.5 * math.sqrt(2 / math.pi)) < 1e-9
    assert abs(res.mu.median - 0.3) < 1e-10


def test_normal_tau_to_zero_is_fixed_effect() -> None:
    y, v = crins_data()
    res = bayes.bayes_normal(y, v, tau_scale=1e-8)
    w = 1 / v
    m, se = (w @ y) / w.sum(), 1 / math.sqrt(w.sum())
    assert abs(res.mu.median - m) < 1e-7
    assert abs(res.mu.central_upper - (m + special.ndtri(0.975) * se)) < 1e-7
    assert abs(res.shrinkage[2].median - m) < 1e-6


def test_normal_improper_uniform_tau_needs_three_studies() -> None:
    with pytest.raises(ValueError, match="improper posterior"):
        bayes.bayes_normal([0.1, 0.2], [0.01, 0.02], tau_prior="uniform", tau_scale=math.inf)
    res = bayes.bayes_normal([0.1, 0.2], [0.01, 0.02], tau_prior="uniform", tau_scale=math.inf,
                             mu_prior=("normal", 0, 1))
    assert math.isfinite(res.tau.median)


def test_heavy_tailed_moments_reported_as_missing() -> None:
    res = bayes.bayes_normal([0.3], [0.04], tau_prior="halfcauchy", tau_scale=0.5)
    assert res.tau.mean == math.inf and math.isnan(res.mu.mean)
    assert any("does not exist" in n for n in res.notes)
    assert math.isfinite(res.tau.median)



def test_bounded_uniform_prior() -> None:
    y, v = crins_data()
    res = bayes.bayes_normal(y, v, tau_prior="uniform", tau_scale=1.0, mu_prior=("normal", 0, 4))
    assert res.tau.central_upper < 1.0 and res.diagnostics.tau_range[1] == pytest.approx(1.0)
    f = normal_tau_marginal(y, v, lambda t: 0.0, 0.0, 4.0)
    z = integrate.quad(lambda t: f(t)[0], 0, 1, epsrel=1e-12)[0]
    half = integrate.quad(lambda t: f(t)[0], 0, res.tau.median, epsrel=1e-12)[0]
    assert abs(half / z - 0.5) < 1e-9


def test_large_k_runs() -> None:
    rng = np.random.default_rng(11)
    k = 500
    v = rng.uniform(0.01, 0.2, k)
    y = rng.normal(0.2, 0.3, k) + rng.normal(0, np.sqrt(v))
    res = bayes.bayes_normal(y, v)
    assert abs(res.tau.median - 0.3) < 0.05 and len(res.shrinkage) == k
