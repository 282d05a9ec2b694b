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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evidence.stats._rma import DBL_EPS, Fit, qe_func, rma_fit, uniroot, usable
from evidence.stats.checks import ConvergenceError, check_level
from evidence.stats.distributions import chisq_quantile, norm_quantile_upper, p_norm2
from evidence.stats.results import EffectSizes, MetaResult
from evidence.stats.vocabulary import check_method, is_common_effect, resolve_test

__all__ = [
    "ConvergenceError",
    "TauConfint",
    "confint_tau2",
    "rma",
]



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


def _qprofile(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, fit: Fit,
              level: float) -> TauConfint:
    """``confint.rma.uni(type="QP")`` for a fitted model."""
    k, p = X.shape
    ctrl = fit.user_control
    tau2_min = float(ctrl["tau2_min"]) if "tau2_min" in ctrl else min(0.0, fit.tau2)
    tau2_max = (float(ctrl["tau2_max"]) if "tau2_max" in ctrl
                else max(100.0, fit.tau2 * 10.0, tau2_min * 10.0))
    tol = float(ctrl.get("tol", DBL_EPS ** 0.25))
    maxiter = 1000
    alpha = 1.0 - level
    crit_u = chisq_quantile(alpha / 2, k - p, upper=True)
    crit_l = chisq_quantile(alpha / 2, k - p, upper=False)
    qe_max = qe_func(tau2_max, yi, vi, X)
    qe_min = qe_func(tau2_min, yi, vi, X)
    lb = ub = float("nan")
    lb_sign = ub_sign = ""
    ci_null = False
    notes: list[str] = []

    def root(target: float) -> float:
        try:
            r, ok = uniroot(lambda t: qe_func(t, yi, vi, X) - target, tau2_min, tau2_max,
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
    check_method(method)
    if is_common_effect(method):
        raise ValueError("Model does not contain a random-effects component (method FE).")
    if tau2 is not None:
        raise ValueError("Model does not contain an estimated random-effects component.")
    yi, vi, _, _ = usable(es)
    if yi.shape[0] < 2:
        raise ValueError("Stopped because k = 1 (no Q-profile interval).")
    X = np.ones((yi.shape[0], 1))
    fit = rma_fit(yi, vi, X, method=method, knha=False, level=level, tau2=None,
                   control=control, int_incl=True)
    return _qprofile(yi, vi, X, fit, check_level(level))


def rma(es: EffectSizes, method: str = "REML", *, knha: bool = False, test: str | None = None,
        level: float = 0.95, tau2: float | None = None,
        control: Mapping[str, Any] | None = None) -> MetaResult:
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
    test : {"z", "t", "knha", "adhoc"}, optional
        metafor's ``test``: normal (default), Student's t with k - 1 df, Hartung-Knapp,
        or the ad hoc Hartung-Knapp whose variance scaling is never below 1 (its interval
        is never narrower than the z interval).  ``knha=True`` is ``test="knha"``.
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
    check_method(method)
    level = check_level(level)
    test = resolve_test(test, knha)
    yi, vi, ok, notes = usable(es)
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
        crit = norm_quantile_upper((1 - level) / 2)
        z = est / se
        notes = [*notes, "k = 1: no pooling"]
        if test != "z":
            notes.append(f"test={test!r} ignored with k = 1 (z test, as metafor).")
        if tau2 is not None and not is_common_effect(method):
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
            pval=float(p_norm2(np.array([z]))[0]), ci_lower=lo, ci_upper=hi,
            pi_lower=est - crit * math.sqrt(se * se + t2),
            pi_upper=est + crit * math.sqrt(se * se + t2), tau2=t2, i2=0.0, h2=1.0, q=0.0,
            q_df=0, q_pvalue=float("nan"), weights=np.array([100.0]), yi=yi, vi=vi,
            study_ids=ids, test="z", df=None, loglik=loglik, level=level,
            back_transform=bt_name, harmonic_mean_n=hm_n, notes=tuple(notes))

    X = np.ones((k, 1))
    fit = rma_fit(yi, vi, X, method=method, knha=False, test=test, level=level, tau2=tau2,
                  control=control, int_incl=True)
    notes.extend(fit.notes)
    est = float(fit.beta[0])
    se = float(fit.se[0])
    is_fe = is_common_effect(method)
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
