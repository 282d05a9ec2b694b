"""Fixed- and random-effects pooling of effect sizes, exactly as metafor 3.8-1's ``rma.uni``.

:func:`rma` reproduces ``metafor::rma(yi, vi, method=...)`` (and ``test="knha"``),
including metafor's numerical procedures, so that results agree to machine
precision rather than merely to the tolerance of the algorithms:

* ``REML``/``ML``: Fisher scoring started at the Hedges (``HE``) estimate
  truncated at 0, step halving below ``tau2_min``, convergence when the change in
  tau2 is at most ``threshold = 1e-5`` (at most ``maxiter = 100`` iterations,
  otherwise :class:`ConvergenceError`), then metafor's check that the
  (restricted) likelihood at tau2 = 0 is not higher (``ll0check``).
* ``PM``: the root of the generalised Q statistic ``Q(tau2) = k - p`` found by a
  port of R's ``uniroot`` (Brent's ``zeroin`` with ``tol = .Machine$double.eps^0.25``,
  ``maxiter = 100``) on ``[tau2_min, tau2_max]``, ``tau2_max = max(100, 10 * mad(yi)^2)``;
  tau2 = 0 when ``Q(0) < k - p``.  Because metafor's tolerance is about 1.2e-4, the
  port of the root finder itself (not just the equation) is what makes the values agree.
* ``DL``, ``HE``: moment estimators truncated at 0; ``SJ``: Sidik-Jonkman with
  metafor's initial value ``var(yi) * (k - 1) / k``, truncated at 0.
* ``se_tau2`` with metafor's formula for each estimator; ``I2 = 100 tau2 / (vt + tau2)``
  and ``H2 = tau2 / vt + 1`` with the "typical" within-study variance
  ``vt = (k - p) / tr(P)`` (``I2 = (Q - df) / Q`` and ``H2 = Q / df`` for ``FE``);
  Cochran's Q from inverse-variance weights.
* ``knha=True``: Hartung-Knapp(-Sidik-Jonkman) scaling ``s2w = sum(w r^2) / (k - p)``
  (not truncated at 1, metafor's default ``test="knha"``) with t(k - p) for the CI,
  the test and the prediction interval.
* Prediction interval ``estimate +- crit * sqrt(se^2 + tau2)`` (z, or t(k - p) with
  ``knha``); for ``FE`` models the prediction interval equals the CI.
* Q-profile confidence intervals for tau2, I2 and H2 as ``confint.rma.uni``.

Every computation is O(k p^2): no k x k matrix is ever formed (metafor forms
several), so tens of thousands of studies fit in milliseconds.

Deviations from metafor (documented choices): with k = 1 the Q test p-value is NaN
(metafor reports 1); non-positive sampling variances raise ``ValueError`` (metafor
fits some estimators and leaves Q, I2, H2 undefined); studies whose ``yi``/``vi``
are NaN (e.g. zero cells with ``add=0``) are omitted with a note, as metafor does
with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the distributions come from scipy.special, not scipy.stats: importing scipy.stats
# (~1 s) would dominate a whole `evidence pool` run
from evidence.stats.distributions import chisq_quantile as _chisq_quantile
from evidence.stats.distributions import norm_quantile_upper as _norm_quantile_upper
from evidence.stats.distributions import p_chisq as _p_chisq
from evidence.stats.distributions import p_f as _p_f
from evidence.stats.distributions import p_norm2 as _p_norm2
from evidence.stats.distributions import p_t2 as _p_t2
from evidence.stats.distributions import t_quantile_upper as _t_quantile_upper
from evidence.stats.results import EffectSizes, MetaResult, check_level

__all__ = [
    "METHODS",
    "ConvergenceError",
    "TauConfint",
    "confint_tau2",
    "rma",
]

#: Estimators accepted by :func:`rma` (``EE``/``CE`` are metafor's aliases of ``FE``).
METHODS: tuple[str, ...] = ("FE", "EE", "CE", "DL", "REML", "PM", "ML", "HE", "SJ")
_FE_METHODS = ("FE", "EE", "CE")

_DBL_EPS = float(np.finfo(float).eps)
_CONTROL_DEFAULTS: dict[str, Any] = {
    "tau2_init": None,
    "tau2_min": 0.0,
    "tau2_max": 100.0,
    "threshold": 1e-5,
    "tol": _DBL_EPS ** 0.25,
    "maxiter": 100,
    "stepadj": 1.0,
    "ll0check": True,
}


class ConvergenceError(RuntimeError):
    """An iterative estimator (REML/ML Fisher scoring, PM root finding) did not converge."""


# --------------------------------------------------------------------------- helpers


def _zeroin(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float,
            tol: float, maxiter: int) -> tuple[float, int, float]:
    """Brent's root finder, a line-by-line port of R's ``R_zeroin2`` (``uniroot``).

    Returns ``(root, iterations, estimated precision)``; ``iterations = -1`` when
    ``maxiter`` was reached (R's uniroot then warns and returns the last iterate).
    """
    a, b = ax, bx
    c, fc = a, fa
    maxit = maxiter + 1
    if fa == 0.0:
        return a, 0, 0.0
    if fb == 0.0:
        return b, 0, 0.0
    while maxit:
        maxit -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * _DBL_EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, maxiter - maxit, abs(c - b)
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, -1, -1.0


def _uniroot(f: Callable[[float], float], lower: float, upper: float, tol: float,
             maxiter: int) -> tuple[float, bool]:
    """R's ``uniroot(f, c(lower, upper), tol=, maxiter=)`` without interval extension.

    Returns ``(root, converged)``; raises ``ValueError`` when ``f`` does not change
    sign on the interval (R stops with an error there).
    """
    flo, fup = f(lower), f(upper)
    if math.isnan(flo) or math.isnan(fup) or not lower < upper:
        raise ValueError("uniroot: f is NaN at an end point or lower >= upper")
    if np.sign(flo) * np.sign(fup) > 0:
        raise ValueError("uniroot: f() values at end points not of opposite sign")
    root, it, _ = _zeroin(f, lower, upper, flo, fup, tol, maxiter)
    return root, it >= 0


def _r_mad(x: np.ndarray) -> float:
    """R's ``mad(x)``: median absolute deviation times 1.4826."""
    med = np.median(x)
    return float(1.4826 * np.median(np.abs(x - med)))


class _Wls:
    """Weighted least squares pieces for weights ``d`` and model matrix ``X``.

    ``A = (X' D X)^-1`` via the QR decomposition of ``sqrt(D) X`` (as metafor's
    ``.invcalc``); ``P = D - D X A X' D`` is never formed, its traces are.
    """

    def __init__(self, X: np.ndarray, d: np.ndarray):
        self.X = X
        self.d = d
        sx = np.sqrt(d)[:, None] * X
        r = np.linalg.qr(sx, mode="r")
        rinv = np.linalg.solve(r, np.eye(r.shape[0]))
        self.A = rinv @ rinv.T

    def gram(self, f: np.ndarray) -> np.ndarray:
        """``X' diag(f) X``."""
        return self.X.T @ (f[:, None] * self.X)

    def beta(self, y: np.ndarray) -> np.ndarray:
        return self.A @ (self.X.T @ (self.d * y))

    def resid(self, y: np.ndarray) -> np.ndarray:
        return y - self.X @ self.beta(y)

    def rss(self, y: np.ndarray) -> float:
        """``y' P y``."""
        r = self.resid(y)
        return float(np.sum(self.d * r * r))

    def rss_pp(self, y: np.ndarray) -> float:
        """``y' P P y``."""
        pr = self.d * self.resid(y)
        return float(np.sum(pr * pr))

    def tr_p(self) -> float:
        """``tr(P)``."""
        return float(np.sum(self.d) - np.trace(self.A @ self.gram(self.d ** 2)))

    def tr_p_diag(self, a: np.ndarray) -> float:
        """``tr(P diag(a))``."""
        return float(np.sum(self.d * a) - np.trace(self.A @ self.gram(self.d ** 2 * a)))

    def tr_pa_pb(self, a: np.ndarray, b: np.ndarray) -> float:
        """``tr(P diag(a) P diag(b))`` (``sum(P * P)`` for ``a = b = 1``)."""
        d = self.d
        term1 = float(np.sum(d * d * a * b))
        term2 = float(np.trace(self.A @ self.gram(d ** 3 * a * b)))
        term3 = float(np.trace(self.A @ self.gram(d * d * a) @ self.A @ self.gram(d * d * b)))
        return term1 - 2.0 * term2 + term3

    def logdet_xwx(self) -> float:
        """``log det(X' D X)``."""
        return float(-np.linalg.slogdet(self.A)[1])


def _qe_func(tau2: float, y: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """metafor's ``.QE.func``: the generalised Q statistic at ``tau2``."""
    if np.any(tau2 + vi < 0):
        raise ValueError("Some marginal variances are negative.")
    return _Wls(X, 1.0 / (vi + tau2)).rss(y)


def _merge_control(control: Mapping[str, Any] | None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if control is None:
        return user
    if not isinstance(control, Mapping):
        raise TypeError(f"control must be a dict, got {type(control).__name__}")
    for key, value in control.items():
        name = key.replace(".", "_")
        if name not in _CONTROL_DEFAULTS:
            raise ValueError(f"unknown control setting {key!r}; allowed: "
                             f"{', '.join(_CONTROL_DEFAULTS)}")
        user[name] = value
    return user


def _check_method(method: str) -> str:
    """Validate an ``rma`` method name and return it."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    return method



# --------------------------------------------------------------------------- core fit


@dataclass
class _Fit:
    """Everything ``rma.uni`` computes for one model (internal)."""

    k: int
    p: int
    method: str
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    crit: float
    tau2: float
    se_tau2: float
    tau2_fixed: bool
    qe: float
    qe_pvalue: float
    i2: float
    h2: float
    vt: float
    qm: float
    qm_df: int
    qm_ddf: int | None
    qm_pvalue: float
    wi: np.ndarray
    test: str
    ddf: int | None
    ll_ml: float
    ll_reml: float
    s2w: float
    user_control: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def loglik(self) -> float:
        return self.ll_reml if self.method == "REML" else self.ll_ml


def _estimate_tau2(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, method: str,
                   con: dict[str, Any], tau2_fix: float | None,
                   notes: list[str]) -> tuple[float, float]:
    """tau2 and its standard error for a random-effects ``method`` (metafor's loop)."""
    k, p = X.shape
    ymc = yi - np.mean(yi)  # metafor estimates tau2 from mean-centred yi
    fixed = tau2_fix is not None
    tau2: float = float(tau2_fix) if fixed else float("nan")
    tau2_min = float(con["tau2_min"])

    if method in ("HE", "ML", "REML"):
        ols = _Wls(X, np.ones(k))
        rss = ols.rss(ymc)
        tr_pv = ols.tr_p_diag(vi)
        if not fixed:
            tau2 = (rss - tr_pv) / (k - p)
    if method == "DL":
        fe = _Wls(X, 1.0 / vi)
        tr_p = fe.tr_p()
        if not fixed:
            tau2 = (fe.rss(ymc) - (k - p)) / tr_p
    if method == "SJ":
        tau2_0 = (float(np.var(ymc, ddof=1)) * (k - 1) / k if con["tau2_init"] is None
                  else float(con["tau2_init"]))
        sj = _Wls(X, 1.0 / (vi + tau2_0))
        if not fixed:
            tau2 = tau2_0 * sj.rss(ymc) / (k - p)
    if method == "PM":
        target = float(k - p)
        if not fixed:
            tau2_max = float(con["tau2_max"])
            if _qe_func(tau2_min, ymc, vi, X) < target:
                tau2 = tau2_min
            elif _qe_func(tau2_max, ymc, vi, X) > target:
                raise ConvergenceError(
                    f"PM: Q(tau2_max = {tau2_max:g}) is still above k - p; increase "
                    "control['tau2_max'] or use another method (metafor: \"Value of "
                    "'tau2.max' too low\")")
            else:
                root, ok = _uniroot(lambda t: _qe_func(t, ymc, vi, X) - target,
                                    tau2_min, tau2_max, float(con["tol"]),
                                    int(con["maxiter"]))
                if not ok:
                    raise ConvergenceError("PM: the root search for tau2 (uniroot) did not "
                                           f"converge in {con['maxiter']} iterations")
                tau2 = root
    if method in ("ML", "REML") and not fixed:
        tau2 = float(con["tau2_init"]) if con["tau2_init"] is not None else max(
            0.0, tau2, tau2_min)
        threshold = float(con["threshold"])
        change = threshold + 1.0
        it = 0
        converged = True
        while change > threshold:
            it += 1
            old = tau2
            wi = 1.0 / (vi + tau2)
            if np.any(tau2 + vi < 0):
                raise ValueError("Some marginal variances are negative.")
            if np.any(np.isinf(wi)):
                raise ValueError("Division by zero when computing the inverse variance weights.")
            fit = _Wls(X, wi)
            ypp = fit.rss_pp(ymc)
            if method == "ML":
                adj = (ypp - float(np.sum(wi))) / float(np.sum(wi * wi))
            else:
                adj = (ypp - fit.tr_p()) / fit.tr_pa_pb(np.ones(k), np.ones(k))
            adj = adj * float(con["stepadj"])
            if math.isnan(adj):
                adj = 0.0
            while tau2 + adj < tau2_min:
                adj /= 2.0
            tau2 = tau2 + adj
            change = abs(old - tau2)
            if it > int(con["maxiter"]):
                converged = False
                break
        if not converged:
            raise ConvergenceError(
                f"{method}: Fisher scoring did not converge in {con['maxiter']} iterations "
                "(metafor: \"Fisher scoring algorithm did not converge\"); try "
                "control={'stepadj': 0.5} or {'maxiter': 1000}, or another method")
        if con["ll0check"]:
            ll0 = _loglik_tau2(ymc, vi, X, 0.0, method)
            ll1 = _loglik_tau2(ymc, vi, X, tau2, method)
            if ll0 - ll1 > float(con["tol"]) and tau2 > threshold:
                notes.append("Fisher scoring may have got stuck at a local maximum; tau2 set "
                             "to 0 (metafor's ll0check). Check the profile likelihood.")
                tau2 = 0.0

    tau2 = max(tau2_min, tau2)
    if np.any(tau2 + vi < 0):
        raise ValueError("Some marginal variances are negative.")

    t = max(tau2, 0.0)
    ones = np.ones(k)
    if method == "HE":
        se_tau2 = math.sqrt(1.0 / (k - p) ** 2 * (2.0 * ols.tr_pa_pb(vi, vi) + 4.0 * t * tr_pv
                                                  + 2.0 * t * t * (k - p)))
    elif method == "DL":
        se_tau2 = math.sqrt(1.0 / tr_p ** 2 * (2.0 * (k - p) + 4.0 * t * tr_p
                                               + 2.0 * t * t * fe.tr_pa_pb(ones, ones)))
    elif method == "SJ":
        se_tau2 = math.sqrt(tau2_0 ** 2 / (k - p) ** 2 * (
            2.0 * sj.tr_pa_pb(vi, vi) + 4.0 * t * sj.tr_pa_pb(ones, vi)
            + 2.0 * t * t * sj.tr_pa_pb(ones, ones)))
    elif method == "ML":
        wi = 1.0 / (vi + tau2)
        se_tau2 = math.sqrt(2.0 / float(np.sum(wi * wi)))
    elif method == "REML":
        se_tau2 = math.sqrt(2.0 / _Wls(X, 1.0 / (vi + tau2)).tr_pa_pb(ones, ones))
    else:  # PM
        wi = 1.0 / (vi + tau2)
        se_tau2 = math.sqrt(2.0 * k * k / (k - p) / float(np.sum(wi)) ** 2)
    return float(tau2), float(se_tau2)


def _loglik_tau2(y: np.ndarray, vi: np.ndarray, X: np.ndarray, tau2: float,
                 method: str) -> float:
    """(Restricted) log-likelihood as in metafor's ll0check (without the REMLf term)."""
    k, p = X.shape
    wi = 1.0 / (vi + tau2)
    fit = _Wls(X, wi)
    rss = fit.rss(y)
    if method == "ML":
        return float(-0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2))
                     - 0.5 * rss)
    return float(-0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2))
                 - 0.5 * fit.logdet_xwx() - 0.5 * rss)


def _rma_fit(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, *, method: str, knha: bool,
             level: float, tau2: float | None, control: Mapping[str, Any] | None,
             int_incl: bool) -> _Fit:
    """metafor's ``rma.uni`` for a full-rank model matrix ``X`` (k x p), k > p or FE."""
    _check_method(method)
    level = check_level(level)
    user_control = _merge_control(control)
    k, p = X.shape
    notes: list[str] = []
    if np.any(vi <= 0):
        raise ValueError("sampling variances must be > 0 (found vi <= 0); metafor cannot "
                         "compute Q, I2 or H2 then, and DL/PM fail")
    is_fe = method in _FE_METHODS
    tau2_fix = None if (tau2 is None or is_fe) else float(tau2)
    if is_fe:
        if p > k:
            raise ValueError("Number of parameters to be estimated is larger than the number "
                             "of observations.")
    elif (p if tau2_fix is not None else p + 1) > k:
        raise ValueError("Number of parameters to be estimated is larger than the number of "
                         f"observations (k = {k}, p = {p}, method {method} also estimates "
                         "tau2).")
    if np.linalg.eigvalsh(X.T @ X).min() <= 1e-7:
        raise ValueError("Model matrix not of full rank. Cannot fit model.")

    con = dict(_CONTROL_DEFAULTS)
    con["tau2_max"] = max(100.0, 10.0 * _r_mad(yi) ** 2)
    con.update(user_control)
    if con["tau2_min"] < 0 and -con["tau2_min"] > float(np.min(vi)):
        con["tau2_min"] = -float(np.min(vi))
        notes.append(f"tau2_min constrained to -min(vi) = {con['tau2_min']:.4g}.")

    if is_fe:
        tau2_hat, se_tau2 = 0.0, float("nan")
    else:
        tau2_hat, se_tau2 = _estimate_tau2(yi, vi, X, method, con, tau2_fix, notes)

    wi = 1.0 / (vi + tau2_hat)
    if np.any(np.isinf(wi)):
        raise ValueError("Division by zero when computing the inverse variance weights.")
    re = _Wls(X, wi)
    beta = re.beta(yi)
    vb = re.A.copy()
    resid = yi - X @ beta
    rss_f = float(np.sum(wi * resid * resid))
    s2w = 1.0
    if knha:
        if is_fe:
            notes.append("Knapp & Hartung method is not meant to be used with FE models.")
        s2w = 0.0 if rss_f <= _DBL_EPS else rss_f / (k - p)
        vb = s2w * vb
    ddf = k - p if knha else None

    m_idx = np.arange(1, p) if (int_incl and p > 1) else np.arange(p)
    try:
        sub = vb[np.ix_(m_idx, m_idx)]
        chol = np.linalg.cholesky(sub)
        z = np.linalg.solve(chol, beta[m_idx])
        qm = float(z @ z)
    except np.linalg.LinAlgError:
        qm = float("nan")
    m = int(m_idx.size)
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    if knha:
        qm = qm / m
        qm_pvalue = _p_f(qm, m, k - p) if k - p > 0 else float("nan")
        pval = _p_t2(zval, k - p) if k - p > 0 else np.full(p, np.nan)
        crit = _t_quantile_upper((1 - level) / 2, k - p) if k - p > 0 else float("nan")
    else:
        qm_pvalue = _p_chisq(qm, m)
        pval = _p_norm2(zval)
        crit = _norm_quantile_upper((1 - level) / 2)
    ci_lower = beta - crit * se
    ci_upper = beta + crit * se

    if k > p:
        fe = _Wls(X, 1.0 / vi)
        ymc = yi - np.mean(yi)
        qe = max(0.0, fe.rss(ymc))
        qe_pvalue = _p_chisq(qe, k - p)
        vt = (k - p) / fe.tr_p()
        if is_fe:
            with np.errstate(divide="ignore", invalid="ignore"):
                i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0 else 0.0
            h2 = qe / (k - p)
        else:
            i2 = 100.0 * tau2_hat / (vt + tau2_hat)
            h2 = tau2_hat / vt + 1.0
    else:
        qe, qe_pvalue, i2, h2, vt = 0.0, 1.0, 0.0, 1.0, 0.0

    sum_log = float(np.sum(np.log(vi + tau2_hat)))
    ll_ml = -0.5 * k * math.log(2 * math.pi) - 0.5 * sum_log - 0.5 * rss_f
    logdet_xx = float(np.linalg.slogdet(X.T @ X)[1])
    ll_reml = (-0.5 * (k - p) * math.log(2 * math.pi) + 0.5 * logdet_xx - 0.5 * sum_log
               - 0.5 * re.logdet_xwx() - 0.5 * rss_f)

    return _Fit(k=k, p=p, method=method, beta=beta, vb=vb, se=se, zval=zval,
                pval=np.asarray(pval, dtype=float), ci_lower=ci_lower, ci_upper=ci_upper,
                crit=float(crit), tau2=tau2_hat, se_tau2=se_tau2,
                tau2_fixed=tau2_fix is not None, qe=float(qe), qe_pvalue=float(qe_pvalue),
                i2=float(i2), h2=float(h2), vt=float(vt), qm=qm, qm_df=m,
                qm_ddf=(k - p) if knha else None, qm_pvalue=qm_pvalue, wi=wi,
                test="t" if knha else "z", ddf=ddf, ll_ml=float(ll_ml),
                ll_reml=float(ll_reml), s2w=s2w, user_control=user_control, notes=notes)


# --------------------------------------------------------------------------- Q-profile


@dataclass(frozen=True)
class TauConfint:
    """Q-profile confidence intervals for tau2, I2 (percent) and H2 (``confint.rma.uni``).

    ``tau2_lower_sign``/``tau2_upper_sign`` are metafor's ``lb.sign``/``ub.sign``:
    ``"<"`` or ``">"`` when a limit is the search bound rather than a root;
    ``ci_null`` is True when the whole interval is {0}.
    """

    tau2: float
    tau2_ci_lower: float
    tau2_ci_upper: float
    i2: float
    i2_ci_lower: float
    i2_ci_upper: float
    h2: float
    h2_ci_lower: float
    h2_ci_upper: float
    level: float
    tau2_lower_sign: str = ""
    tau2_upper_sign: str = ""
    ci_null: bool = False
    notes: tuple[str, ...] = ()


def _qprofile(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, fit: _Fit,
              level: float) -> TauConfint:
    """``confint.rma.uni(type="QP")`` for a fitted model."""
    k, p = X.shape
    ctrl = fit.user_control
    tau2_min = float(ctrl["tau2_min"]) if "tau2_min" in ctrl else min(0.0, fit.tau2)
    tau2_max = (float(ctrl["tau2_max"]) if "tau2_max" in ctrl
                else max(100.0, fit.tau2 * 10.0, tau2_min * 10.0))
    tol = float(ctrl.get("tol", _DBL_EPS ** 0.25))
    maxiter = 1000
    alpha = 1.0 - level
    crit_u = _chisq_quantile(alpha / 2, k - p, upper=True)
    crit_l = _chisq_quantile(alpha / 2, k - p, upper=False)
    qe_max = _qe_func(tau2_max, yi, vi, X)
    qe_min = _qe_func(tau2_min, yi, vi, X)
    lb = ub = float("nan")
    lb_sign = ub_sign = ""
    ci_null = False
    notes: list[str] = []

    def root(target: float) -> float:
        try:
            r, ok = _uniroot(lambda t: _qe_func(t, yi, vi, X) - target, tau2_min, tau2_max,
                             tol, maxiter)
        except ValueError:
            return float("nan")
        return r if ok else float("nan")

    if qe_min < crit_l:
        lb = ub = tau2_min
        lb_sign = ub_sign = "<"
        ci_null = tau2_min <= 0
    elif qe_max > crit_l:
        ub = tau2_max
        ub_sign = ">"
    else:
        ub = root(crit_l)
    if qe_max > crit_u:
        lb = ub = tau2_max
        lb_sign = ub_sign = ">"
    elif qe_min < crit_u:
        lb = tau2_min
        if tau2_min > 0:
            lb_sign = "<"
    else:
        lb = root(crit_u)
    if math.isnan(lb):
        notes.append("Q-profile: error in iterative search for the lower bound of tau2.")
    if math.isnan(ub):
        notes.append("Q-profile: error in iterative search for the upper bound of tau2.")
    if lb_sign or ub_sign:
        notes.append(f"Q-profile CI of tau2 hit a search bound (lower {lb_sign or '='}, "
                     f"upper {ub_sign or '='}).")
    vt = fit.vt
    return TauConfint(
        tau2=fit.tau2, tau2_ci_lower=lb, tau2_ci_upper=ub,
        i2=fit.i2, i2_ci_lower=100.0 * lb / (vt + lb), i2_ci_upper=100.0 * ub / (vt + ub),
        h2=fit.h2, h2_ci_lower=lb / vt + 1.0, h2_ci_upper=ub / vt + 1.0, level=level,
        tau2_lower_sign=lb_sign, tau2_upper_sign=ub_sign, ci_null=ci_null,
        notes=tuple(notes))


# --------------------------------------------------------------------------- public API


def _usable(es: EffectSizes) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    if not isinstance(es, EffectSizes):
        raise TypeError(f"es must be an EffectSizes (from escalc), got {type(es).__name__}")
    yi = np.asarray(es.yi, dtype=float)
    vi = np.asarray(es.vi, dtype=float)
    if yi.ndim != 1 or yi.shape != vi.shape:
        raise ValueError(f"yi and vi must be 1-D of equal length, got {yi.shape} and {vi.shape}")
    if len(es.study_ids) != yi.shape[0]:
        raise ValueError(f"{len(es.study_ids)} study_ids for {yi.shape[0]} studies")
    ok = np.isfinite(yi) & np.isfinite(vi)
    notes = []
    if not ok.all():
        dropped = [s for s, keep in zip(es.study_ids, ok, strict=True) if not keep]
        notes.append(f"{len(dropped)} studies with missing yi/vi omitted from model fitting: "
                     f"{', '.join(dropped)}.")
    return yi[ok], vi[ok], ok, notes


def confint_tau2(es: EffectSizes, method: str = "REML", level: float = 0.95, *,
                 tau2: float | None = None,
                 control: Mapping[str, Any] | None = None) -> TauConfint:
    """Q-profile confidence intervals for tau2, I2 and H2, as metafor's ``confint(res)``.

    Parameters
    ----------
    es : EffectSizes
        Study-level ``yi``/``vi``.
    method : str
        The random-effects estimator whose tau2 (and hence default search interval
        ``[0, max(100, 10 tau2)]``) and I2/H2 the interval accompanies.
    level : float
        Confidence level, e.g. 0.95.
    tau2 : float, optional
        A fixed tau2 is rejected (metafor: no estimated random-effects component).
    control : dict, optional
        ``tau2_min``/``tau2_max`` bound the search, ``tol`` the root finder (as metafor).

    Returns
    -------
    TauConfint
        The limits (NaN where the root search failed, with a note).

    Raises
    ------
    ValueError
        For ``FE`` models, fixed tau2, or k < 2.
    """
    _check_method(method)
    if method in _FE_METHODS:
        raise ValueError("Model does not contain a random-effects component (method FE).")
    if tau2 is not None:
        raise ValueError("Model does not contain an estimated random-effects component.")
    yi, vi, _, _ = _usable(es)
    if yi.shape[0] < 2:
        raise ValueError("Stopped because k = 1 (no Q-profile interval).")
    X = np.ones((yi.shape[0], 1))
    fit = _rma_fit(yi, vi, X, method=method, knha=False, level=level, tau2=None,
                   control=control, int_incl=True)
    return _qprofile(yi, vi, X, fit, check_level(level))


def rma(es: EffectSizes, method: str = "REML", *, knha: bool = False, level: float = 0.95,
        tau2: float | None = None, control: Mapping[str, Any] | None = None) -> MetaResult:
    """Fixed- or random-effects meta-analysis, as ``metafor::rma(yi, vi, method=...)``.

    Parameters
    ----------
    es : EffectSizes
        Study-level effects from :func:`evidence.stats.effects.escalc` (or
        :func:`evidence.stats.effects.hazard_ratios`).  Studies whose ``yi`` or ``vi`` is
        NaN are omitted with a note.
    method : {"FE", "DL", "REML", "PM", "ML", "HE", "SJ"}
        Common-effect (``EE``/``CE`` are aliases) or the tau2 estimator.
    knha : bool
        Hartung-Knapp(-Sidik-Jonkman) adjustment: metafor's ``test="knha"``.
    level : float
        Confidence level of the CI and prediction interval, e.g. 0.95.
    tau2 : float, optional
        Fix tau2 at this value instead of estimating it (metafor's ``tau2=``).
    control : dict, optional
        metafor's ``control`` list in snake_case: ``tau2_init``, ``tau2_min``,
        ``tau2_max``, ``threshold``, ``tol``, ``maxiter``, ``stepadj``, ``ll0check``.

    Returns
    -------
    MetaResult
        On the measure's scale; ``pooled()`` back-transforms.  Q-profile CIs of
        tau2/I2/H2 are filled in for estimated tau2.  With k = 1 the study's own
        estimate is returned with tau2 = 0, q = 0, q_df = 0, q_pvalue = NaN and the
        note ``"k = 1: no pooling"`` (for a proportion, the book shows the exact
        Clopper-Pearson interval of that study instead, see
        :func:`evidence.stats.effects.proportion_ci`).

    Raises
    ------
    ValueError
        Unknown method, no studies, non-positive ``vi``.
    ConvergenceError
        REML/ML Fisher scoring or the PM root search did not converge.
    """
    _check_method(method)
    level = check_level(level)
    yi, vi, ok, notes = _usable(es)
    ids = tuple(s for s, keep in zip(es.study_ids, ok, strict=True) if keep)
    k = yi.shape[0]
    if k == 0:
        raise ValueError("no studies (k = 0)")
    from evidence.stats.transforms import back_transform_name

    measure = es.measure
    try:
        bt_name = back_transform_name(measure)
    except ValueError:
        bt_name = "identity"
    hm_n = None
    if measure == "PFT" and es.ni is not None:
        ni = np.asarray(es.ni, dtype=float)[ok]
        hm_n = float(1.0 / np.mean(1.0 / ni))

    if k == 1:
        if np.any(vi <= 0):
            raise ValueError("sampling variances must be > 0 (found vi <= 0)")
        est, se = float(yi[0]), float(math.sqrt(vi[0]))
        crit = _norm_quantile_upper((1 - level) / 2)
        z = est / se
        notes = [*notes, "k = 1: no pooling"]
        if knha:
            notes.append("knha ignored with k = 1 (z test, as metafor).")
        if tau2 is not None and method not in _FE_METHODS:
            t2 = max(0.0, float(tau2))
        else:
            t2 = 0.0
        lo, hi = est - crit * se, est + crit * se
        v = float(vi[0]) + t2
        if method == "REML":  # metafor's ll.REML with k = p = 1 (REMLf term log det X'X = 0)
            loglik = -0.5 * math.log(v) - 0.5 * math.log(1.0 / v)
        else:
            loglik = -0.5 * math.log(2 * math.pi) - 0.5 * math.log(v)
        return MetaResult(
            measure=measure, method=method, k=1, estimate=est, se=se, zval=z,
            pval=float(_p_norm2(np.array([z]))[0]), ci_lower=lo, ci_upper=hi,
            pi_lower=est - crit * math.sqrt(se * se + t2),
            pi_upper=est + crit * math.sqrt(se * se + t2), tau2=t2, i2=0.0, h2=1.0, q=0.0,
            q_df=0, q_pvalue=float("nan"), weights=np.array([100.0]), yi=yi, vi=vi,
            study_ids=ids, test="z", df=None, loglik=loglik, level=level,
            back_transform=bt_name, harmonic_mean_n=hm_n, notes=tuple(notes))

    X = np.ones((k, 1))
    fit = _rma_fit(yi, vi, X, method=method, knha=knha, level=level, tau2=tau2,
                   control=control, int_incl=True)
    notes.extend(fit.notes)
    est = float(fit.beta[0])
    se = float(fit.se[0])
    is_fe = method in _FE_METHODS
    if is_fe:
        pi_lo, pi_hi = float(fit.ci_lower[0]), float(fit.ci_upper[0])
    else:
        half = fit.crit * math.sqrt(float(fit.vb[0, 0]) + fit.tau2)
        pi_lo, pi_hi = est - half, est + half
    ci_vals = {}
    if not is_fe and not fit.tau2_fixed:
        qp = _qprofile(yi, vi, X, fit, level)
        notes.extend(qp.notes)
        ci_vals = {"tau2_ci_lower": qp.tau2_ci_lower, "tau2_ci_upper": qp.tau2_ci_upper,
                   "i2_ci_lower": qp.i2_ci_lower, "i2_ci_upper": qp.i2_ci_upper,
                   "h2_ci_lower": qp.h2_ci_lower, "h2_ci_upper": qp.h2_ci_upper}
    if not is_fe and fit.tau2 == 0.0:
        notes.append("tau2 estimated at 0 (boundary): the random-effects model equals the "
                     "common-effect model.")
    return MetaResult(
        measure=measure, method=method, k=k, estimate=est, se=se, zval=float(fit.zval[0]),
        pval=float(fit.pval[0]), ci_lower=float(fit.ci_lower[0]),
        ci_upper=float(fit.ci_upper[0]), pi_lower=pi_lo, pi_upper=pi_hi, tau2=fit.tau2,
        i2=fit.i2, h2=fit.h2, q=fit.qe, q_df=k - 1, q_pvalue=fit.qe_pvalue,
        weights=fit.wi / np.sum(fit.wi) * 100.0, yi=yi, vi=vi, study_ids=ids,
        test=fit.test, df=None if fit.ddf is None else float(fit.ddf), se_tau2=fit.se_tau2,
        loglik=fit.loglik, level=level, back_transform=bt_name, harmonic_mean_n=hm_n,
        notes=tuple(notes), **ci_vals)
