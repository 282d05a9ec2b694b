"""Tests of the binomial-normal model of :mod:`evidence.stats.bayes` (``bayes_binomial``;
its fit is in ``_bayes_binomial`` and ``_bayes_binomial_grid``) against integrations
written separately: a brute force with non-adaptive quadrature and fixed grids, a seeded
Metropolis-within-Gibbs sampler, the published lme4/metafor maximum-likelihood fits
(``tests/fixtures/bayes/lme4_ml.json``), and the edge cases (tau -> 0, zero-event and
all-event studies, k = 1, improper priors, k = 500).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bayes_cases import BAYES_FIXTURES, OBJ_N, OBJ_X, SCR_N, SCR_X, gl_nodes
from scipy import integrate, optimize, special

from evidence.stats import bayes
from evidence.stats._bayes_binomial_grid import BinomialLikelihood

GLMM_FIXTURES = BAYES_FIXTURES.parent / "glmm"



class BinomialBrute:
    """Posterior expectations in the binomial-normal model by brute force, independent of
    evidence.stats.bayes: non-adaptive 120-point Gauss-Hermite for each random effect and a fixed
    tensor Gauss-Legendre grid in (tau, mu); for tau < 0.3 the mu panels get extra
    breakpoints around the evaluation point q, where the integrand has a step of
    width tau."""

    def __init__(self, x, n, m0=0.0, s0=10.0, tau_s=0.5, mu_range=(-12.0, 6.0), tau_max=3.5,
                 n_gh=120):
        self.x, self.n = np.asarray(x, float), np.asarray(n, float)
        self.lc = (special.gammaln(self.n + 1) - special.gammaln(self.x + 1)
                   - special.gammaln(self.n - self.x + 1))
        self.m0, self.s0, self.tau_s = m0, s0, tau_s
        self.lo, self.hi = mu_range
        self.gx, self.gw = np.polynomial.hermite.hermgauss(n_gh)
        self.tau, self.wt = gl_nodes(np.concatenate([np.linspace(0, 0.3, 7),
                                                     np.linspace(0.3, tau_max, 26)[1:]]), 16)
        self.base = np.linspace(self.lo, self.hi, 37)
        self.mu_b, self.wm_b = gl_nodes(self.base, 20)
        self.lp_b = np.array([self.logpost(self.mu_b, t) for t in self.tau])   # (T, M)
        self.shift = float(self.lp_b.max())

    def lbin(self, th: np.ndarray, i: int) -> np.ndarray:
        return self.lc[i] + self.x[i] * th - self.n[i] * np.logaddexp(0.0, th)

    def logpost(self, mu: np.ndarray, t: float) -> np.ndarray:
        th = mu[:, None] + math.sqrt(2) * t * self.gx[None, :]
        ll = sum(np.log(np.exp(self.lbin(th, i)) @ self.gw / math.sqrt(math.pi))
                 for i in range(self.x.size))
        return ll - 0.5 * ((mu - self.m0) / self.s0) ** 2 - 0.5 * (t / self.tau_s) ** 2

    def expect(self, fn, q: float | None = None) -> float:
        """E[fn(mu, tau)]."""
        num = den = 0.0
        for j, (t, wt) in enumerate(zip(self.tau, self.wt, strict=True)):
            if q is None or t >= 0.3:
                mu, wm, lp = self.mu_b, self.wm_b, self.lp_b[j]
            else:
                extra = np.clip(q + t * np.array([-12, -6, -3, -1.5, 0, 1.5, 3, 6, 12]),
                                self.lo, self.hi)
                mu, wm = gl_nodes(np.unique(np.concatenate([self.base, extra])), 20)
                lp = self.logpost(mu, t)
            e = np.exp(lp - self.shift) * wm * wt
            num += e @ fn(mu, t)
            den += e.sum()
        return num / den

    def mu_cdf(self, qs: list[float]) -> np.ndarray:
        """P(mu <= q) for every q, with the q's as breakpoints of the mu panels."""
        mu, wm = gl_nodes(np.unique(np.concatenate([self.base, qs])), 20)
        num = np.zeros(len(qs))
        den = 0.0
        for t, wt in zip(self.tau, self.wt, strict=True):
            e = np.exp(self.logpost(mu, t) - self.shift) * wm * wt
            num += np.array([e[mu <= q].sum() for q in qs])
            den += e.sum()
        return num / den

    def cond_cdf(self, i: int, q: float):
        """P(theta_i <= q | mu, tau, x_i) by Gauss-Legendre in z = (theta - mu) / tau."""
        zx, zw = np.polynomial.legendre.leggauss(120)

        def f(mu: np.ndarray, t: float) -> np.ndarray:
            c = np.clip((q - mu) / max(t, 1e-300), -12, 12)
            half, mid = (c + 12) / 2, (c - 12) / 2
            z = mid[:, None] + half[:, None] * zx
            num = ((np.exp(self.lbin(mu[:, None] + t * z, i)) * np.exp(-0.5 * z * z) * zw).sum(1)
                   * half / math.sqrt(2 * math.pi))
            th = mu[:, None] + math.sqrt(2) * t * self.gx
            den = np.exp(self.lbin(th, i)) @ self.gw / math.sqrt(math.pi)
            return num / den
        return f

    def tau_cdf(self, q: float) -> float:
        """P(tau <= q) with the tau grid split at q."""
        def mass(a: float, b: float) -> float:
            t, wt = gl_nodes(np.linspace(a, b, 11), 16)
            return sum(np.exp(self.logpost(self.mu_b, tj) - self.shift) @ self.wm_b * wj
                       for tj, wj in zip(t, wt, strict=True))
        lower = mass(0.0, q)
        return lower / (lower + mass(q, 3.5))


@pytest.fixture(scope="module")
def objective_fit() -> bayes.BayesResult:
    return bayes.bayes_binomial(OBJ_X, OBJ_N, study_ids=["pestrin", "hainsworth", "jacot",
                                                          "parsons", "verschoor"])


@pytest.fixture(scope="module")
def objective_brute() -> BinomialBrute:
    return BinomialBrute(OBJ_X, OBJ_N)


@pytest.mark.slow
def test_binomial_vs_bruteforce(objective_fit: bayes.BayesResult,
                                objective_brute: BinomialBrute) -> None:
    """Brute-force integration (non-adaptive quadrature, fixed grids) agrees to 1e-8
    (CDF at our quantiles, posterior means) for the book's objective-response data,
    which include a study with no events."""
    res, bf = objective_fit, objective_brute
    assert abs(bf.expect(lambda m, t: m) - res.mu.mean) < 1e-9
    assert abs(bf.expect(lambda m, t: np.full_like(m, t)) - res.tau.mean) < 1e-9
    assert abs(bf.expect(lambda m, t: special.expit(m)) - res.proportion.mean) < 1e-9
    probs = [0.025, 0.5, 0.975]
    qs = [res.mu.central_lower, res.mu.median, res.mu.central_upper]
    assert np.allclose(bf.mu_cdf(qs), probs, atol=1e-9, rtol=0)
    for p, q in zip(probs, (res.theta_new.central_lower, res.theta_new.median,
                            res.theta_new.central_upper), strict=True):
        def cdf_new(m: np.ndarray, t: float, q: float = q) -> np.ndarray:
            return special.ndtr((q - m) / max(t, 1e-300))
        assert abs(bf.expect(cdf_new, q) - p) < 1e-8
    for i in (0, 4):
        s = res.shrinkage[i]
        for p, q in zip(probs, (s.central_lower, s.median, s.central_upper), strict=True):
            assert abs(bf.expect(bf.cond_cdf(i, q), q) - p) < 1e-8


@pytest.mark.slow
def test_binomial_tau_cdf_vs_bruteforce(objective_fit: bayes.BayesResult,
                                        objective_brute: BinomialBrute) -> None:
    """CDF of tau at our quantiles by a tau grid split at the quantile: 1e-8."""
    res = objective_fit
    for p, q in ((0.025, res.tau.central_lower), (0.5, res.tau.median),
                 (0.975, res.tau.central_upper)):
        assert abs(objective_brute.tau_cdf(q) - p) < 1e-8


@pytest.mark.slow
def test_binomial_metropolis_sampler(objective_fit: bayes.BayesResult) -> None:
    """Seeded Metropolis-within-Gibbs over (mu, tau, theta) with the exact binomial
    likelihood, written independently: quantiles within 0.01 on the logit scale."""
    res = objective_fit
    x, n = np.array(OBJ_X, float), np.array(OBJ_N, float)
    rng = np.random.default_rng(314159)
    C, k = 2000, x.size
    mu = rng.normal(-2.0, 0.5, C)
    tau = np.abs(rng.normal(0.0, 0.5, C)) + 0.01
    theta = mu[:, None] + tau[:, None] * rng.standard_normal((C, k))
    step = 1.8 / np.sqrt(n * 0.15 + 4.0)

    def lbin(th: np.ndarray) -> np.ndarray:
        return x * th - n * np.logaddexp(0.0, th)

    draws = {"mu": [], "tau": [], "new": [], "t0": [], "t4": []}
    for it in range(3000):
        prop = theta + step * rng.standard_normal((C, k))
        lr = (lbin(prop) - lbin(theta)
              - 0.5 * ((prop - mu[:, None]) ** 2 - (theta - mu[:, None]) ** 2) / tau[:, None] ** 2)
        theta = np.where(np.log(rng.uniform(size=(C, k))) < lr, prop, theta)
        pm = k / tau ** 2 + 1 / 100.0
        mu = (theta.sum(1) / tau ** 2) / pm + rng.standard_normal(C) / np.sqrt(pm)
        # centred update of tau
        u_new = np.log(tau) + 0.5 * rng.standard_normal(C)
        t_new = np.exp(u_new)
        ss = ((theta - mu[:, None]) ** 2).sum(1)

        def lc(t: np.ndarray, ss: np.ndarray = ss) -> np.ndarray:
            return -k * np.log(t) - 0.5 * ss / t ** 2 - t ** 2 / 0.5 + np.log(t)

        tau = np.where(np.log(rng.uniform(size=C)) < lc(t_new) - lc(tau), t_new, tau)
        # non-centred update of tau (theta - mu rescaled)
        eta = (theta - mu[:, None]) / tau[:, None]
        t_new = np.exp(np.log(tau) + 0.5 * rng.standard_normal(C))
        th_new = mu[:, None] + t_new[:, None] * eta
        lr = ((lbin(th_new) - lbin(theta)).sum(1) - (t_new ** 2 - tau ** 2) / 0.5
              + np.log(t_new / tau))
        acc = np.log(rng.uniform(size=C)) < lr
        tau = np.where(acc, t_new, tau)
        theta = np.where(acc[:, None], th_new, theta)
        if it >= 800:
            draws["mu"].append(mu.copy())
            draws["tau"].append(tau.copy())
            draws["new"].append(mu + tau * rng.standard_normal(C))
            draws["t0"].append(theta[:, 0].copy())
            draws["t4"].append(theta[:, 4].copy())
    pairs = (("mu", res.mu), ("tau", res.tau), ("new", res.theta_new),
             ("t0", res.shrinkage[0]), ("t4", res.shrinkage[4]))
    for key, s in pairs:
        q = np.quantile(np.concatenate(draws[key]), [0.025, 0.5, 0.975])
        assert np.allclose(q, [s.central_lower, s.median, s.central_upper], atol=0.01), key
    # proportion scale (expit is monotone): within 0.002
    qp = np.quantile(special.expit(np.concatenate(draws["mu"])), [0.025, 0.5, 0.975])
    assert np.allclose(qp, [res.proportion.central_lower, res.proportion.median,
                            res.proportion.central_upper], atol=0.002)


@pytest.mark.parametrize("name", ["objective_response", "screening_yield", "pritz1997"])
def test_binomial_likelihood_matches_lme4_ml(name: str) -> None:
    """The exact marginal likelihood, maximised, agrees with the published lme4/metafor
    ML fit (rma.glmm, nAGQ = 7) to the accuracy of lme4's 7-node quadrature."""
    ref = json.loads((BAYES_FIXTURES / "lme4_ml.json").read_text())[name]
    x, n = np.array(ref["xi"], float), np.array(ref["ni"], float)
    bm = BinomialLikelihood(x, n)

    def negll(p: np.ndarray) -> float:
        return -float(bm.agq(np.array([p[0]]), np.array([math.exp(p[1])]), 64)["ll"].sum())

    opt = optimize.minimize(negll, [ref["mu"], 0.5 * math.log(ref["tau2"])], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
    assert abs(opt.x[0] - ref["mu"]) < 1e-3
    assert abs(math.exp(2 * opt.x[1]) - ref["tau2"]) < 2e-3


@pytest.mark.parametrize("name", ["objective_response", "screening_yield", "pritz1997"])
def test_lme4_fixture_is_the_glmm_reference(name: str) -> None:
    """lme4_ml.json repeats the project's metafor/lme4 reference values
    (tests/fixtures/glmm/<name>.json, record 'glmm'; data <name>.csv)."""
    ref = json.loads((BAYES_FIXTURES / "lme4_ml.json").read_text())[name]
    glmm = json.loads((GLMM_FIXTURES / f"{name}.json").read_text())["glmm"][0]
    assert ref["mu"] == glmm["estimate"] and ref["tau2"] == glmm["tau2"]
    rows = (GLMM_FIXTURES / f"{name}.csv").read_text().split()[1:]
    assert [r.split(",")[0] for r in rows] == ref["study"]
    assert [int(r.split(",")[1]) for r in rows] == ref["xi"]
    assert [int(r.split(",")[2]) for r in rows] == ref["ni"]


# ============================================================================= edge cases


def test_binomial_tau_to_zero_is_common_effect() -> None:
    x, n = np.array(SCR_X, float), np.array(SCR_N, float)
    res = bayes.bayes_binomial(x, n, tau_scale=1e-6)
    lc = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)

    def f(m: float) -> float:
        ll = float((lc + x * m - n * np.logaddexp(0, m)).sum())
        return math.exp(ll - 0.5 * (m / 10) ** 2 + 200)

    z = integrate.quad(f, -4, 0, epsrel=1e-12, points=[-2])[0]
    cdf = integrate.quad(f, -4, res.mu.median, epsrel=1e-12)[0] / z
    assert abs(cdf - 0.5) < 1e-5


@pytest.mark.parametrize("x,n", [([0], [20]),
                                 pytest.param([20], [20], marks=pytest.mark.slow),
                                 pytest.param([0, 0, 0], [10, 50, 30], marks=pytest.mark.slow)])
def test_binomial_degenerate_studies(x: list, n: list) -> None:
    res = bayes.bayes_binomial(x, n)
    assert all(math.isfinite(v) for v in (res.mu.median, res.mu.central_lower, res.tau.median))
    p = res.proportion
    assert 0.0 <= p.central_lower < p.median < p.central_upper <= 1.0
    assert res.diagnostics.shrinkage_mass_error < 1e-8


@pytest.mark.slow
def test_binomial_zero_and_all_events_mirror() -> None:
    a = bayes.bayes_binomial([0, 3], [20, 10])
    b = bayes.bayes_binomial([20, 7], [20, 10])
    assert abs(a.mu.median + b.mu.median) < 1e-8
    assert abs(a.tau.median - b.tau.median) < 1e-8
    assert abs(a.shrinkage[0].central_lower + b.shrinkage[0].central_upper) < 1e-8


@pytest.mark.slow
def test_binomial_k1_zero_events_shrinkage_exact() -> None:
    """k = 1: theta's posterior is Bin(0 | 20, expit(t)) times the prior predictive
    int N(t | 0, 100 + tau^2) HN(tau) d tau, integrated here in one dimension."""
    res = bayes.bayes_binomial([0], [20])

    def f(t: float) -> float:
        def g(s: float) -> float:
            return (math.exp(-0.5 * t * t / (100 + s * s)) / math.sqrt(100 + s * s)
                    * math.exp(-s * s / 0.5))
        return integrate.quad(g, 0, np.inf, epsrel=1e-12)[0] * math.exp(-20 * np.logaddexp(0, t))

    z = integrate.quad(f, -90, 15, epsrel=1e-11, limit=400, points=[-3])[0]
    s = res.shrinkage[0]
    for p, q in ((0.5, s.median), (0.025, s.central_lower), (0.975, s.central_upper)):
        assert abs(integrate.quad(f, -90, q, epsrel=1e-11, limit=400)[0] / z - p) < 1e-8


@pytest.mark.slow
def test_binomial_flat_mu_needs_an_informative_study() -> None:
    with pytest.raises(ValueError, match="improper posterior"):
        bayes.bayes_binomial([0, 0], [10, 20], mu_prior="flat")
    with pytest.raises(ValueError, match="improper posterior"):
        bayes.bayes_binomial([0, 20], [10, 20], mu_prior="flat")
    res = bayes.bayes_binomial([0, 3], [10, 20], mu_prior="flat")
    assert math.isnan(res.log_marginal_likelihood)



@pytest.mark.slow
def test_bounded_uniform_prior() -> None:
    b = bayes.bayes_binomial(OBJ_X, OBJ_N, tau_prior="uniform", tau_scale=2.0)
    assert b.tau.central_upper < 2.0



@pytest.mark.slow
def test_large_k_runs() -> None:
    rng = np.random.default_rng(11)
    k = 500
    v = rng.uniform(0.01, 0.2, k)
    _ = rng.normal(0.2, 0.3, k) + rng.normal(0, np.sqrt(v))  # test_bayes_normal's yi
    n = rng.integers(10, 200, k)
    x = rng.binomial(n, special.expit(rng.normal(-1.5, 0.4, k)))
    res = bayes.bayes_binomial(x, n)
    assert abs(res.mu.median + 1.5) < 0.1 and abs(res.tau.median - 0.4) < 0.1
    assert len(res.shrinkage) == k and res.diagnostics.shrinkage_mass_error < 1e-8
