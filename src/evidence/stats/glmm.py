"""Binomial-normal random-effects model for single proportions (metafor's ``rma.glmm``).

The model is the random-intercept logistic regression

    xi ~ Binomial(ni, ilogit(mu + tau * u_i)),    u_i ~ N(0, 1),

fitted by maximum likelihood over ``(mu, tau >= 0)``.  :func:`rma_glmm` reproduces
metafor 3.8-1 ``rma.glmm(measure="PLO", xi, ni)``, which calls
``lme4::glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family = binomial, nAGQ = 7)``:

* the marginal likelihood is lme4's adaptive Gauss-Hermite approximation: per
  study, the integrand is centred at its conditional mode and scaled by its
  curvature at the mode, then summed over ``nagq`` nodes (lme4 ``glmerAGQ``);
* ``se`` is lme4's ``vcov()`` of the fixed effect: twice the ``mu`` element of the
  inverse of the finite-difference Hessian (step 1e-4, lme4 ``deriv12``) of the
  deviance over ``(theta, mu)`` with ``theta = tau``.  It therefore *does* carry
  the uncertainty of ``tau`` through the cross term (at ``tau = 0`` the cross term
  vanishes and it is the common-effect information).  If that matrix cannot be
  used, lme4 falls back to the penalised least-squares approximation; so do we;
* the CI is Wald-type with ``z``; the prediction interval is
  ``mu +/- z * sqrt(se^2 + tau2)`` (metafor's ``predict``);
* I2/H2 use metafor's "typical" within-study variance of the escalc PLO sampling
  variances (``add = 1/2, to = "only0"``): ``vt = (k - 1) / tr(P)``;
* heterogeneity tests: ``QE.Wld``, the Wald test of the saturated logistic model
  (one logit per study, fitted by R's ``glm`` iteratively reweighted least squares,
  whose path we follow so that studies with 0 or all events give R's numbers), and
  ``QE.LRT``, the likelihood-ratio test of the saturated against the common-effect
  model;
* ``loglik`` is metafor's ``logLik()``: the saturated log-likelihood minus half of
  lme4's ``deviance()`` (the conditional deviance at the modes).

Beyond metafor: :func:`glmm_fitter` lets :func:`evidence.stats.sensitivity.leave_one_out`
and :func:`~evidence.stats.sensitivity.cumulative` refit the model on subsets (metafor 3.8-1
has ``leave1out``/``cumul`` only for ``rma.uni``, ``rma.mh`` and ``rma.peto``).

References
----------
Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models
using lme4. J Stat Softw 67(1).
Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event outcome
in the framework of the generalized linear mixed model. Stat Med 29:3046-3067.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
J Stat Softw 36(3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evidence.stats.checks import (
    ConvergenceError,
    check_count_pairs,
    check_level,
    check_study_ids,
)
from evidence.stats.distributions import p_t2, t_quantile_upper
from evidence.stats.results import EffectSizes, MetaResult, jsonable
from evidence.stats.vocabulary import GLMM_TESTS, check_choice

__all__ = [
    "ConvergenceError",
    "GlmmHeterogeneity",
    "glmm_fitter",
    "glmm_heterogeneity",
    "rma_glmm",
]


# lme4's finite-difference step for the Hessian (deriv12) and R's glm() control.
_DERIV_DELTA = 1e-4
_GLM_EPSILON = 1e-8
_GLM_MAXIT = 25
# R's binomial logit link: linkinv/mu.eta clamp |eta| > 30 (family.c).
_ETA_THRESH = 30.0
_DBL_EPS = float(np.finfo(float).eps)
_TAU_UPPER = (10.0, 40.0)  # search bounds for tau (logit scale), widened once


# --------------------------------------------------------------------------------------
# input checks


def _check_nagq(nagq: int) -> int:
    if isinstance(nagq, bool) or int(nagq) != nagq or not 1 <= int(nagq) <= 25:
        raise ValueError(f"nagq must be an integer from 1 to 25 (lme4's range), got {nagq!r}")
    return int(nagq)


# --------------------------------------------------------------------------------------
# the marginal deviance (lme4's glmerAGQ)


def _log1pexp(eta: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, eta)


def _pq(eta: np.ndarray) -> np.ndarray:
    """``p (1 - p)`` with ``p = ilogit(eta)``, without overflow."""
    e = np.exp(-np.abs(eta))
    return e / (1.0 + e) ** 2


def _gh_rule(nagq: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for a standard normal (lme4 ``GHrule``)."""
    z, w = np.polynomial.hermite_e.hermegauss(nagq)
    return z, w / math.sqrt(2.0 * math.pi)


class _Binomial:
    """Counts of one data set and the pieces of lme4's deviance that depend on them."""

    def __init__(self, x: np.ndarray, n: np.ndarray, nagq: int) -> None:
        self.x = x
        self.n = n
        p = x / n
        with np.errstate(divide="ignore", invalid="ignore"):
            sat = np.where(x > 0, x * np.log(np.where(x > 0, p, 1.0)), 0.0) + np.where(
                x < n, (n - x) * np.log(np.where(x < n, 1.0 - p, 1.0)), 0.0)
        self.sat = sat  # saturated log-likelihood without the binomial coefficients
        self.z, self.w = _gh_rule(nagq)
        self.half_z2 = 0.5 * self.z**2
        self.u = np.zeros_like(x)  # warm start for the conditional modes

    def loglik(self, eta: np.ndarray) -> np.ndarray:
        """Kernel of the binomial log-likelihood, ``x * eta - n * log(1 + e^eta)``."""
        return self.x * eta - self.n * _log1pexp(eta)

    def modes(self, mu: float, tau: float) -> np.ndarray:
        """Conditional modes ``u_i`` of ``-2 loglik_i(mu + tau u) + u^2`` (safeguarded Newton).

        The gradient ``g(u) = u - tau (x - n p)`` increases in ``u`` and has its root
        in ``[tau (x - n), tau x]``; a Newton step leaving the current bracket is
        replaced by bisection.
        """
        x, n = self.x, self.n
        if tau == 0.0:
            return np.zeros_like(x)
        lo = tau * (x - n)
        hi = tau * x
        u = np.clip(self.u, lo, hi)
        for _ in range(200):
            eta = mu + tau * u
            p = 0.5 * (1.0 + np.tanh(0.5 * eta))
            g = u - tau * (x - n * p)
            lo = np.where(g < 0, u, lo)
            hi = np.where(g > 0, u, hi)
            h = 1.0 + tau * tau * n * _pq(eta)
            new = u - g / h
            out = (new < lo) | (new > hi)
            new = np.where(out, 0.5 * (lo + hi), new)
            step = np.abs(new - u)
            u = new
            if np.all(step <= 1e-13 * (1.0 + np.abs(u))):
                break
        else:  # pragma: no cover - the safeguarded iteration always converges
            raise ConvergenceError("conditional modes did not converge")
        self.u = u
        return u

    def deviance(self, mu: float, tau: float) -> float:
        """lme4's AGQ deviance (relative to the saturated model) at ``(mu, tau)``.

        Even in ``tau`` (``u`` is symmetric), as lme4's ``devfun`` is in ``theta``.
        """
        tau = abs(tau)
        u0 = self.modes(mu, tau)
        eta0 = mu + tau * u0
        ll0 = self.loglik(eta0)
        devc0 = 2.0 * (self.sat - ll0) + u0 * u0
        if tau == 0.0:
            return float(np.sum(devc0))
        w0 = self.n * _pq(eta0)  # n p (1 - p) at the mode
        l2 = 1.0 + tau * tau * w0  # squared Cholesky factor of the penalised Hessian
        sd = 1.0 / np.sqrt(l2)
        uj = u0[None, :] + self.z[:, None] * sd[None, :]
        delta = 2.0 * (ll0[None, :] - self.loglik(mu + tau * uj)) + (uj * uj - u0 * u0)
        mult = np.sum(self.w[:, None] * np.exp(-0.5 * delta + self.half_z2[:, None]), axis=0)
        return float(np.sum(devc0 + np.log(l2) - 2.0 * np.log(mult)))

    def conditional_deviance(self, mu: float, tau: float) -> float:
        """lme4's ``deviance()`` of a glmer fit: sum of squared deviance residuals at the modes."""
        u0 = self.modes(mu, abs(tau))
        return float(np.sum(2.0 * (self.sat - self.loglik(mu + abs(tau) * u0))))

    def unscaled_vcov(self, mu: float, tau: float) -> float:
        """lme4's ``pp$unsc()`` for the intercept: ``1 / sum(w / (1 + tau^2 w))``."""
        u0 = self.modes(mu, tau)
        w0 = self.n * _pq(mu + tau * u0)
        return float(1.0 / np.sum(w0 / (1.0 + tau * tau * w0)))


# --------------------------------------------------------------------------------------
# maximum likelihood


def _minimise_mu(data: _Binomial, tau: float, mu: float) -> tuple[float, float]:
    """Minimise the deviance over ``mu`` at fixed ``tau`` (damped Newton, FD derivatives)."""
    d = _DERIV_DELTA
    f = data.deviance(mu, tau)
    for _ in range(100):
        fp = data.deviance(mu + d, tau)
        fm = data.deviance(mu - d, tau)
        grad = (fp - fm) / (2.0 * d)
        curv = (fp - 2.0 * f + fm) / (d * d)
        step = -grad / curv if curv > 0 else -math.copysign(1.0, grad)
        step = max(-5.0, min(5.0, step))
        for _ in range(60):
            f_new = data.deviance(mu + step, tau)
            if f_new <= f + 1e-12 * abs(f):
                break
            step *= 0.5
        else:
            raise ConvergenceError("GLMM: no descent in mu")
        mu += step
        f = f_new
        # done when the step is negligible or the gradient is at the noise level of
        # the finite differences (a flat deviance, e.g. for very large tau)
        if abs(step) < 1e-10 * (1.0 + abs(mu)) or abs(grad) < 1e-9 * (1.0 + abs(f)):
            return mu, f
    raise ConvergenceError("GLMM: mu did not converge at fixed tau")


def _brent_bounded(f: Any, lower: float, upper: float, xatol: float,
                   maxiter: int = 500) -> float:
    """Minimise ``f`` on ``[lower, upper]``: Brent's golden-section/parabolic search.

    The algorithm of Forsythe, Malcolm and Moler's ``fmin`` (R's ``optimize``, SciPy's
    ``fminbound``), written out to spare the import of :mod:`scipy.optimize`.
    """
    golden = 0.5 * (3.0 - math.sqrt(5.0))
    sqrt_eps = math.sqrt(2.2e-16)
    a, b = lower, upper
    v = w = x = a + golden * (b - a)
    fv = fw = fx = f(x)
    d = e = 0.0
    for _ in range(maxiter):
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * abs(x) + xatol / 3.0
        tol2 = 2.0 * tol1
        if abs(x - xm) <= tol2 - 0.5 * (b - a):
            return x
        use_golden = True
        if abs(e) > tol1:  # try a parabola through x, w, v
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r, e = e, d
            if abs(p) < abs(0.5 * q * r) and q * (a - x) < p < q * (b - x):
                d = p / q
                use_golden = False
                if (x + d - a) < tol2 or (b - x - d) < tol2:
                    d = tol1 if xm >= x else -tol1
        if use_golden:
            e = (a - x) if x >= xm else (b - x)
            d = golden * e
        u = x + (d if abs(d) >= tol1 else math.copysign(tol1, d) if d != 0 else tol1)
        fu = f(u)
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v in (x, w):
                v, fv = u, fu
    raise ConvergenceError("GLMM: the search over tau did not converge")


def _fit_ml(data: _Binomial, mu_start: float) -> tuple[float, float, float]:
    """ML estimates ``(mu, tau, deviance)``: profile over ``tau`` in ``[0, upper]``.

    The interior optimum (bounded Brent) is compared with ``tau = 0`` and the smaller
    deviance wins, as lme4's ``check.boundary`` does.
    """
    state = {"mu": mu_start}

    def profile(tau: float) -> float:
        mu, f = _minimise_mu(data, tau, state["mu"])
        state["mu"] = mu
        return f

    mu0, f0 = _minimise_mu(data, 0.0, mu_start)
    best = (mu0, 0.0, f0)
    for upper in _TAU_UPPER:
        state["mu"] = mu0
        tau = _brent_bounded(profile, 0.0, upper, xatol=1e-9)
        mu, f = _minimise_mu(data, tau, state["mu"])
        # lme4's check.boundary: a theta within 1e-5 of 0 is set to 0 unless that
        # is worse (here: worse beyond rounding of the deviance).
        if f < best[2] and not (tau < 1e-5 and best[2] <= f + 1e-12 * (1.0 + abs(f))):
            best = (mu, tau, f)
        if tau < 0.99 * upper:
            return best
    raise ConvergenceError(
        f"GLMM: tau diverges (no maximum of the likelihood below tau = {_TAU_UPPER[-1]})")


def _hessian(data: _Binomial, mu: float, tau: float) -> np.ndarray:
    """lme4 ``deriv12``: central finite-difference Hessian over ``(theta, beta)``."""
    d = _DERIV_DELTA
    f = data.deviance
    fx = f(mu, tau)
    h = np.empty((2, 2))
    h[0, 0] = (f(mu, tau + d) - 2.0 * fx + f(mu, tau - d)) / d**2
    h[1, 1] = (f(mu + d, tau) - 2.0 * fx + f(mu - d, tau)) / d**2
    h[0, 1] = h[1, 0] = (f(mu + d, tau + d) - f(mu - d, tau + d)
                         - f(mu + d, tau - d) + f(mu - d, tau - d)) / (2.0 * d) ** 2
    return h


def _vcov_mu(data: _Binomial, mu: float, tau: float) -> tuple[float, bool]:
    """lme4's ``vcov()`` for the intercept; ``(variance, used_hessian)``."""
    h = _hessian(data, mu, tau)
    det = h[0, 0] * h[1, 1] - h[0, 1] ** 2
    scale = np.max(np.abs(h))
    if np.all(np.isfinite(h)) and abs(det) > 1e-14 * scale * scale:
        v = 2.0 * h[0, 0] / det
        if v > 0:
            return float(v), True
    return data.unscaled_vcov(mu, tau), False


# --------------------------------------------------------------------------------------
# heterogeneity tests (metafor's QE.Wld and QE.LRT)


@dataclass(frozen=True)
class GlmmHeterogeneity:
    """metafor's heterogeneity tests for ``rma.glmm(measure="PLO")``.

    Attributes
    ----------
    qe_wld, qe_wld_pvalue : float
        Wald-type test that all study logits are equal (saturated logistic model).
    qe_lrt, qe_lrt_pvalue : float
        Likelihood-ratio test of the saturated against the common-effect model.
    df : int
        ``k - 1``.
    loglik_saturated, loglik_common : float
        Log-likelihoods of the two ``glm`` fits (metafor's ``ll.QE`` and ``ll.FE``).
    """

    qe_wld: float
    qe_wld_pvalue: float
    qe_lrt: float
    qe_lrt_pvalue: float
    df: int
    loglik_saturated: float
    loglik_common: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return jsonable(asdict(self))


def _r_linkinv(eta: np.ndarray) -> np.ndarray:
    t = np.where(eta < -_ETA_THRESH, _DBL_EPS,
                 np.where(eta > _ETA_THRESH, 1.0 / _DBL_EPS, np.exp(np.clip(eta, -40, 40))))
    return t / (1.0 + t)


def _r_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, -40, 40))
    return np.where(np.abs(eta) > _ETA_THRESH, _DBL_EPS, e / (1.0 + e) ** 2)


def _r_dev_resids(y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log(np.where(y < 1, 1 - y, 1.0) / (1 - mu)), 0.0)
    return 2.0 * wt * (a + b)


def _saturated_glm(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``glm.fit`` for one logit per study: ``(eta, var(eta), mu)`` as R ends.

    The design spans an indicator per study, so each IRLS step sets ``eta`` to the
    working response; convergence is R's global deviance criterion.  The
    variances come from the working weights of the last iteration (R's QR), i.e.
    from the fitted values *before* the final update.
    """
    y = x / n
    mu = (n * y + 0.5) / (n + 1.0)
    eta = np.log(mu / (1.0 - mu))
    mu = _r_linkinv(eta)
    devold = float(np.sum(_r_dev_resids(y, mu, n)))
    weights = n * _r_mu_eta(eta) ** 2 / (mu * (1.0 - mu))
    for _ in range(_GLM_MAXIT):
        mu_eta = _r_mu_eta(eta)
        weights = n * mu_eta**2 / (mu * (1.0 - mu))
        eta = eta + (y - mu) / mu_eta
        mu = _r_linkinv(eta)
        dev = float(np.sum(_r_dev_resids(y, mu, n)))
        if abs(dev - devold) / (abs(dev) + 0.1) < _GLM_EPSILON:
            break
        devold = dev
    return eta, 1.0 / weights, mu


def _binom_logpmf(x: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``dbinom(x, n, p, log = TRUE)`` (as SciPy's ``binom.logpmf``)."""
    from evidence.stats._special import gammaln, xlog1py, xlogy

    return (gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1) + xlogy(x, p)
            + xlog1py(n - x, -p))


def _chisq_sf(q: float, df: int) -> float:
    from evidence.stats._special import chi2_sf

    return float(chi2_sf(df, q))


def _heterogeneity(x: np.ndarray, n: np.ndarray) -> GlmmHeterogeneity:
    k = x.size
    eta, var, mu_sat = _saturated_glm(x, n)
    w = 1.0 / var
    # Wald test of the k - 1 contrasts against one study = Cochran-type Q of the
    # saturated logits with their glm variances (invariant to the reference study).
    eta_bar = np.sum(w * eta) / np.sum(w)
    qe_wld = max(0.0, float(np.sum(w * (eta - eta_bar) ** 2)))
    ll_sat = float(np.sum(_binom_logpmf(x, n, mu_sat)))
    p_fe = float(np.sum(x) / np.sum(n))
    ll_fe = float(np.sum(_binom_logpmf(x, n, np.full(k, p_fe))))
    qe_lrt = max(0.0, -2.0 * (ll_fe - ll_sat))
    df = k - 1
    return GlmmHeterogeneity(
        qe_wld=qe_wld, qe_wld_pvalue=_chisq_sf(qe_wld, df) if df > 0 else 1.0,
        qe_lrt=qe_lrt, qe_lrt_pvalue=_chisq_sf(qe_lrt, df) if df > 0 else 1.0,
        df=df, loglik_saturated=ll_sat, loglik_common=ll_fe)


def glmm_heterogeneity(xi: Any, ni: Any) -> GlmmHeterogeneity:
    """Heterogeneity tests of ``rma.glmm(measure="PLO")``: ``QE.Wld`` and ``QE.LRT``.

    Parameters
    ----------
    xi, ni : array_like of int
        Events and sample sizes, one per study (``k >= 2``).

    Returns
    -------
    GlmmHeterogeneity
        Both tests on ``k - 1`` degrees of freedom and the two log-likelihoods.
    """
    x, n = check_count_pairs(xi, ni)
    if x.size < 2:
        raise ValueError("heterogeneity tests need k >= 2 studies")
    return _heterogeneity(x, n)


# --------------------------------------------------------------------------------------
# the fit


def _escalc_plo(x: np.ndarray, n: np.ndarray, ids: tuple[str, ...]) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    from evidence.stats.effects import escalc

    es = escalc("PLO", xi=x, ni=n, study_ids=ids)
    return np.asarray(es.yi, dtype=float), np.asarray(es.vi, dtype=float)


def _typical_vi(vi: np.ndarray) -> float:
    """metafor's ``vt = (k - p) / tr(P)`` for an intercept-only model."""
    w = 1.0 / vi
    tr_p = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    return (vi.size - 1) / tr_p


def rma_glmm(xi: Any, ni: Any, *, study_ids: Sequence[Any] | None = None,
             level: float = 0.95, nagq: int = 7, test: str = "z") -> MetaResult:
    """Binomial-normal random-effects meta-analysis of proportions (logit scale).

    Reproduces metafor 3.8-1 ``rma.glmm(measure="PLO", xi=xi, ni=ni)`` (maximum
    likelihood through ``lme4::glmer`` with ``nAGQ = 7``) to about 1e-5 relative.

    Parameters
    ----------
    xi, ni : array_like of int
        Events and sample sizes, one per study; ``k >= 2`` (metafor refuses ``k = 1``).
    study_ids : sequence of str, optional
        Labels, one per study (default ``"1"``, ``"2"``, ...).
    level : float
        Confidence level for the CI and the prediction interval (0.95 = 95%).
    nagq : int
        Number of adaptive Gauss-Hermite quadrature points (lme4's ``nAGQ``;
        1 = Laplace approximation).
    test : {"z", "t"}
        metafor's ``test``: the Wald z test and normal intervals, or Student's t with
        k - 1 degrees of freedom for the test, the CI and the prediction interval (as
        ``rma.glmm(test = "t")`` and its ``predict()``; the estimate and τ² are the same).

    Returns
    -------
    MetaResult
        ``method="GLMM"``, ``measure="PLO"``; ``estimate`` is the mean logit ``mu``.
        ``q``/``q_pvalue`` hold the Wald-type test ``QE.Wld``; the likelihood-ratio
        test ``QE.LRT`` is in ``notes`` (and in :func:`glmm_heterogeneity`).
        ``weights`` are NaN: metafor defines no weights for ``rma.glmm``.  ``yi``/``vi``
        are the escalc PLO values (``add = 1/2, to = "only0"``) used for I2.

    Raises
    ------
    ValueError
        Invalid counts, ``k < 2``, or a bad ``level``/``nagq``.
    ConvergenceError
        No finite maximum likelihood estimate (e.g. all studies with 0 events, or all
        with only events; metafor: "Cannot fit ML model") or the optimiser failed.
    """
    from evidence.stats._special import ndtr, ndtri
    from evidence.stats.transforms import back_transform_name

    x, n = check_count_pairs(xi, ni)
    k = x.size
    ids = check_study_ids(study_ids, k, unique=True)
    level = check_level(level)
    nagq = _check_nagq(nagq)
    check_choice("test", test, GLMM_TESTS)
    if k < 2:
        raise ValueError("rma_glmm needs k >= 2 studies (metafor: more parameters than "
                         "observations)")
    if np.all(x == 0) or np.all(x == n):
        which = "0 events" if np.all(x == 0) else "only events"
        raise ConvergenceError(f"GLMM: every study has {which}; the likelihood has no "
                               "finite maximum (metafor: 'Cannot fit ML model')")

    fit = _fit(x, n, nagq)
    yi, vi = _escalc_plo(x, n, ids)
    het = _heterogeneity(x, n)
    mu, tau2, se = fit["mu"], fit["tau2"], fit["se"]
    zval = mu / se
    df = k - 1
    if test == "t":
        crit = t_quantile_upper((1.0 - level) / 2.0, df)
        pval = float(p_t2(np.array([zval]), df)[0])
    else:
        crit = float(-ndtri((1.0 - level) / 2.0))
        pval = float(2.0 * ndtr(-abs(zval)))
    vt = _typical_vi(vi)
    notes = [
        f"binomial-normal model fitted by ML ({nagq}-point adaptive Gauss-Hermite "
        "quadrature), as metafor::rma.glmm(measure='PLO')",
        f"q is the Wald-type heterogeneity test QE.Wld; likelihood-ratio test QE.LRT = "
        f"{het.qe_lrt:.4f} on {het.df} df, p = {het.qe_lrt_pvalue:.4g}",
        "study weights are not defined for the GLMM (as in metafor): they are NaN",
    ]
    if tau2 == 0.0:
        notes.append("tau2 estimated at the boundary (0)")
    if not fit["hessian"]:
        notes.append("se from lme4's fallback (penalised least-squares) approximation: "
                     "the finite-difference Hessian was not positive definite")
    return MetaResult(
        measure="PLO", method="GLMM", k=k, estimate=mu, se=se, zval=zval, pval=pval,
        ci_lower=mu - crit * se, ci_upper=mu + crit * se,
        pi_lower=mu - crit * math.sqrt(se * se + tau2),
        pi_upper=mu + crit * math.sqrt(se * se + tau2),
        tau2=tau2, i2=100.0 * tau2 / (vt + tau2), h2=tau2 / vt + 1.0,
        q=het.qe_wld, q_df=het.df, q_pvalue=het.qe_wld_pvalue,
        weights=np.full(k, np.nan), yi=yi, vi=vi, study_ids=ids,
        test=test, df=float(df) if test == "t" else None,
        loglik=het.loglik_saturated - 0.5 * fit["conditional_deviance"],
        level=level, back_transform=back_transform_name("PLO"), notes=tuple(notes))


def _fit(x: np.ndarray, n: np.ndarray, nagq: int) -> dict[str, Any]:
    """ML fit: mu, tau2, se (lme4 vcov) and the conditional deviance."""
    data = _Binomial(x, n, nagq)
    mu_start = math.log(np.sum(x) / np.sum(n - x))
    mu, tau, _ = _fit_ml(data, mu_start)
    var, used_hessian = _vcov_mu(data, mu, tau)
    if not (np.isfinite(mu) and np.isfinite(var)):
        raise ConvergenceError("GLMM: non-finite estimate")
    return {"mu": mu, "tau2": tau * tau, "se": math.sqrt(var), "hessian": used_hessian,
            "conditional_deviance": data.conditional_deviance(mu, tau)}


# --------------------------------------------------------------------------------------
# refits


def glmm_fitter(*, level: float = 0.95, nagq: int = 7,
                test: str = "z") -> Callable[[EffectSizes], MetaResult]:
    """The GLMM as a ``fitter`` for :func:`evidence.stats.sensitivity.leave_one_out` and
    :func:`~evidence.stats.sensitivity.cumulative`: it refits :func:`rma_glmm` to the
    ``xi``/``ni`` of each subset (the counts as given, before any zero-cell correction).

    Parameters
    ----------
    level : float
        Confidence level.
    nagq : int
        Quadrature points (lme4's ``nAGQ``).
    test : {"z", "t"}
        As :func:`rma_glmm`.
    """
    level = check_level(level)
    nagq = _check_nagq(nagq)
    check_choice("test", test, GLMM_TESTS)

    def fit(sub: EffectSizes) -> MetaResult:
        if sub.xi is None or sub.ni is None:
            raise ValueError("the GLMM refits counts: effect sizes without xi/ni given")
        return rma_glmm(sub.xi, sub.ni, study_ids=sub.study_ids, level=level, nagq=nagq,
                        test=test)

    return fit
