"""The engine of ``rma``: metafor 3.8-1's ``rma.uni`` fit for a model matrix (private).

:func:`rma_fit` is shared by :func:`evidence.stats.pooling.rma` (intercept only), the
meta-regression and the subgroup test of :mod:`evidence.stats.regression`; the numerical
procedures (R's ``uniroot``, weighted least squares without k x k matrices) are those the
module docstring of :mod:`evidence.stats.pooling` describes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the distributions come from scipy.special, not scipy.stats: importing scipy.stats
# (~1 s) would dominate a whole `evidence pool` run
from evidence.stats.checks import ConvergenceError, check_level
from evidence.stats.distributions import (
    norm_quantile_upper,
    p_chisq,
    p_f,
    p_norm2,
    p_t2,
    t_quantile_upper,
)
from evidence.stats.results import EffectSizes
from evidence.stats.vocabulary import check_method, is_common_effect, resolve_test

__all__ = ["CONTROL_DEFAULTS", "DBL_EPS", "Fit", "Wls", "merge_control", "qe_func", "r_mad",
           "rma_fit", "uniroot", "usable", "zeroin"]

DBL_EPS = float(np.finfo(float).eps)
CONTROL_DEFAULTS: dict[str, Any] = {
    "tau2_init": None,
    "tau2_min": 0.0,
    "tau2_max": 100.0,
    "threshold": 1e-5,
    "tol": DBL_EPS ** 0.25,
    "maxiter": 100,
    "stepadj": 1.0,
    "ll0check": True,
}


# --------------------------------------------------------------------------- helpers


def zeroin(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float,
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
        tol_act = 2.0 * DBL_EPS * abs(b) + tol / 2.0
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


def uniroot(f: Callable[[float], float], lower: float, upper: float, tol: float,
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
    root, it, _ = zeroin(f, lower, upper, flo, fup, tol, maxiter)
    return root, it >= 0


def r_mad(x: np.ndarray) -> float:
    """R's ``mad(x)``: median absolute deviation times 1.4826."""
    med = np.median(x)
    return float(1.4826 * np.median(np.abs(x - med)))


class Wls:
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


def qe_func(tau2: float, y: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """metafor's ``.QE.func``: the generalised Q statistic at ``tau2``."""
    if np.any(tau2 + vi < 0):
        raise ValueError("Some marginal variances are negative.")
    return Wls(X, 1.0 / (vi + tau2)).rss(y)


def merge_control(control: Mapping[str, Any] | None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if control is None:
        return user
    if not isinstance(control, Mapping):
        raise TypeError(f"control must be a dict, got {type(control).__name__}")
    for key, value in control.items():
        name = key.replace(".", "_")
        if name not in CONTROL_DEFAULTS:
            raise ValueError(f"unknown control setting {key!r}; allowed: "
                             f"{', '.join(CONTROL_DEFAULTS)}")
        user[name] = value
    return user


# --------------------------------------------------------------------------- core fit


@dataclass
class Fit:
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


def estimate_tau2(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, method: str,
                   con: dict[str, Any], tau2_fix: float | None,
                   notes: list[str]) -> tuple[float, float]:
    """tau2 and its standard error for a random-effects ``method`` (metafor's loop)."""
    k, p = X.shape
    ymc = yi - np.mean(yi)  # metafor estimates tau2 from mean-centred yi
    fixed = tau2_fix is not None
    tau2: float = float(tau2_fix) if fixed else float("nan")
    tau2_min = float(con["tau2_min"])

    if method in ("HE", "ML", "REML"):
        ols = Wls(X, np.ones(k))
        rss = ols.rss(ymc)
        tr_pv = ols.tr_p_diag(vi)
        if not fixed:
            tau2 = (rss - tr_pv) / (k - p)
    if method == "DL":
        fe = Wls(X, 1.0 / vi)
        tr_p = fe.tr_p()
        if not fixed:
            tau2 = (fe.rss(ymc) - (k - p)) / tr_p
    if method == "SJ":
        tau2_0 = (float(np.var(ymc, ddof=1)) * (k - 1) / k if con["tau2_init"] is None
                  else float(con["tau2_init"]))
        sj = Wls(X, 1.0 / (vi + tau2_0))
        if not fixed:
            tau2 = tau2_0 * sj.rss(ymc) / (k - p)
    if method == "PM":
        target = float(k - p)
        if not fixed:
            tau2_max = float(con["tau2_max"])
            if qe_func(tau2_min, ymc, vi, X) < target:
                tau2 = tau2_min
            elif qe_func(tau2_max, ymc, vi, X) > target:
                raise ConvergenceError(
                    f"PM: Q(tau2_max = {tau2_max:g}) is still above k - p; increase "
                    "control['tau2_max'] or use another method (metafor: \"Value of "
                    "'tau2.max' too low\")")
            else:
                root, ok = uniroot(lambda t: qe_func(t, ymc, vi, X) - target,
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
            fit = Wls(X, wi)
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
            ll0 = loglik_tau2(ymc, vi, X, 0.0, method)
            ll1 = loglik_tau2(ymc, vi, X, tau2, method)
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
        se_tau2 = math.sqrt(2.0 / Wls(X, 1.0 / (vi + tau2)).tr_pa_pb(ones, ones))
    else:  # PM
        wi = 1.0 / (vi + tau2)
        se_tau2 = math.sqrt(2.0 * k * k / (k - p) / float(np.sum(wi)) ** 2)
    return float(tau2), float(se_tau2)


def loglik_tau2(y: np.ndarray, vi: np.ndarray, X: np.ndarray, tau2: float,
                 method: str) -> float:
    """(Restricted) log-likelihood as in metafor's ll0check (without the REMLf term)."""
    k, p = X.shape
    wi = 1.0 / (vi + tau2)
    fit = Wls(X, wi)
    rss = fit.rss(y)
    if method == "ML":
        return float(-0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2))
                     - 0.5 * rss)
    return float(-0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2))
                 - 0.5 * fit.logdet_xwx() - 0.5 * rss)


def rma_fit(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, *, method: str, knha: bool,
            level: float, tau2: float | None, control: Mapping[str, Any] | None,
            int_incl: bool, test: str | None = None) -> Fit:
    """metafor's ``rma.uni`` for a full-rank model matrix ``X`` (k x p), k > p or FE.

    ``test`` is metafor's (``"z"``, ``"t"``, ``"knha"``, ``"adhoc"``; see
    :func:`evidence.stats.vocabulary.resolve_test`); ``knha=True`` is ``test="knha"``.
    """
    check_method(method)
    test = resolve_test(test, knha)
    scaled = test in ("knha", "adhoc")  # Hartung-Knapp: the variance scaled by s2w
    t_based = test != "z"
    level = check_level(level)
    user_control = merge_control(control)
    k, p = X.shape
    notes: list[str] = []
    if np.any(vi <= 0):
        raise ValueError("sampling variances must be > 0 (found vi <= 0); metafor cannot "
                         "compute Q, I2 or H2 then, and DL/PM fail")
    is_fe = is_common_effect(method)
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

    con = dict(CONTROL_DEFAULTS)
    con["tau2_max"] = max(100.0, 10.0 * r_mad(yi) ** 2)
    con.update(user_control)
    if con["tau2_min"] < 0 and -con["tau2_min"] > float(np.min(vi)):
        con["tau2_min"] = -float(np.min(vi))
        notes.append(f"tau2_min constrained to -min(vi) = {con['tau2_min']:.4g}.")

    if is_fe:
        tau2_hat, se_tau2 = 0.0, float("nan")
    else:
        tau2_hat, se_tau2 = estimate_tau2(yi, vi, X, method, con, tau2_fix, notes)

    wi = 1.0 / (vi + tau2_hat)
    if np.any(np.isinf(wi)):
        raise ValueError("Division by zero when computing the inverse variance weights.")
    re = Wls(X, wi)
    beta = re.beta(yi)
    vb = re.A.copy()
    resid = yi - X @ beta
    rss_f = float(np.sum(wi * resid * resid))
    s2w = 1.0
    if scaled:
        if is_fe:
            notes.append("Knapp & Hartung method is not meant to be used with FE models.")
        s2w = 0.0 if rss_f <= DBL_EPS else rss_f / (k - p)
        if test == "adhoc":  # never narrower than the z interval (metafor's test="adhoc")
            s2w = max(1.0, s2w)
        vb = s2w * vb
    ddf = k - p if t_based else None

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
    if t_based:
        qm = qm / m
        qm_pvalue = p_f(qm, m, k - p) if k - p > 0 else float("nan")
        pval = p_t2(zval, k - p) if k - p > 0 else np.full(p, np.nan)
        crit = t_quantile_upper((1 - level) / 2, k - p) if k - p > 0 else float("nan")
    else:
        qm_pvalue = p_chisq(qm, m)
        pval = p_norm2(zval)
        crit = norm_quantile_upper((1 - level) / 2)
    ci_lower = beta - crit * se
    ci_upper = beta + crit * se

    if k > p:
        fe = Wls(X, 1.0 / vi)
        ymc = yi - np.mean(yi)
        qe = max(0.0, fe.rss(ymc))
        qe_pvalue = p_chisq(qe, k - p)
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

    return Fit(k=k, p=p, method=method, beta=beta, vb=vb, se=se, zval=zval,
                pval=np.asarray(pval, dtype=float), ci_lower=ci_lower, ci_upper=ci_upper,
                crit=float(crit), tau2=tau2_hat, se_tau2=se_tau2,
                tau2_fixed=tau2_fix is not None, qe=float(qe), qe_pvalue=float(qe_pvalue),
                i2=float(i2), h2=float(h2), vt=float(vt), qm=qm, qm_df=m,
                qm_ddf=(k - p) if t_based else None, qm_pvalue=qm_pvalue, wi=wi,
                test=test, ddf=ddf, ll_ml=float(ll_ml),
                ll_reml=float(ll_reml), s2w=s2w, user_control=user_control, notes=notes)




def usable(es: EffectSizes) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
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
