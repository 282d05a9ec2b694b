"""Meta-regression and Egger-type tests, exactly as metafor 3.8-1.

* :func:`rma_mods` is ``rma(yi, vi, mods = ..., method = ...)``: the same estimators,
  numerical procedures and tests as :func:`evidence.stats.pooling.rma` (omnibus ``QM``
  test of the moderators, a chi-square test, or ``QM / m`` against F(m, k - p)
  with ``knha``), residual heterogeneity ``QE``, and metafor's pseudo R^2
  ``max(0, 100 (tau2_RE - tau2) / tau2_RE)`` where ``tau2_RE`` comes from the
  intercept-only model with the same estimator.
* :func:`regtest` is metafor's ``regtest``: the ``sei`` (or other predictor) slope in
  a mixed-effects meta-regression (``model="rma"``) or in Egger's weighted linear
  regression (``model="lm"``), with the limit estimate (the intercept, the
  estimate as the standard error goes to 0).

Deviation from metafor: a model matrix that is not of full rank raises
``ValueError`` (metafor silently drops redundant columns with a warning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evidence.stats._rma import Wls, rma_fit, usable
from evidence.stats.checks import check_level
from evidence.stats.distributions import norm_quantile_upper, p_t2, t_quantile_upper
from evidence.stats.results import EffectSizes, Summary
from evidence.stats.vocabulary import check_method, is_common_effect

__all__ = [
    "MetaRegression",
    "RegtestResult",
    "dummy_code",
    "regtest",
    "rma_mods",
]

_REGTEST_MODELS = ("rma", "lm")
_REGTEST_PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")


# --------------------------------------------------------------------------- moderators


def dummy_code(values: Sequence[Any], name: str, *, levels: Sequence[Any] | None = None,
               drop_reference: bool = True) -> dict[str, np.ndarray]:
    """Dummy (indicator) columns for a categorical moderator, named as R's ``model.matrix``.

    Parameters
    ----------
    values : sequence
        One category per study.
    name : str
        Moderator name; columns are called ``name + level`` (metafor/R:
        ``mods = ~ alloc`` gives ``allocrandom``, ``allocsystematic``).
    levels : sequence, optional
        Level order; the first is the reference.  Default: sorted unique values
        (R's factor order).
    drop_reference : bool
        Drop the reference level (for a model with an intercept); keep all levels
        for a cell-means model (``intercept=False``, R's ``~ 0 + alloc``).

    Returns
    -------
    dict of str to numpy.ndarray
        Ordered columns of 0/1 floats.
    """
    vals = [str(v) for v in values]
    lv = [str(v) for v in levels] if levels is not None else sorted(set(vals))
    unknown = sorted(set(vals) - set(lv))
    if unknown:
        raise ValueError(f"{name}: values {unknown} are not among the levels {lv}")
    if len(set(lv)) != len(lv):
        raise ValueError(f"{name}: duplicated levels {lv}")
    keep = lv[1:] if drop_reference else lv
    arr = np.asarray(vals, dtype=object)
    return {f"{name}{level}": (arr == level).astype(float) for level in keep}


def _model_matrix(X: Any, k: int, intercept: bool) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """Columns and names from a dict/DataFrame/array; metafor's intercept handling."""
    names: list[str]
    if isinstance(X, Mapping):
        names = [str(n) for n in X]
        cols = [np.asarray(X[n], dtype=float) for n in X]
    elif hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = [str(c) for c in X.columns]
        cols = [np.asarray(X[c], dtype=float) for c in X.columns]
    else:
        arr = np.asarray(X, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"X must be 1-D or 2-D, got shape {arr.shape}")
        names = [f"x{j + 1}" for j in range(arr.shape[1])]
        cols = [arr[:, j] for j in range(arr.shape[1])]
    for n, c in zip(names, cols, strict=True):
        if c.shape != (k,):
            raise ValueError(f"moderator {n!r} has shape {c.shape}; expected ({k},)")
    # metafor: a column of ones anywhere becomes the intercept, moved to the front
    is_int = [bool(np.all(np.abs(c - 1.0) < 1e-8)) for c in cols]
    if any(is_int):
        intercept = True
        names = [n for n, flag in zip(names, is_int, strict=True) if not flag]
        cols = [c for c, flag in zip(cols, is_int, strict=True) if not flag]
    if intercept:
        names = ["intrcpt", *names]
        cols = [np.ones(k), *cols]
    if not cols:
        raise ValueError("the model has no columns: give moderators or intercept=True")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicated moderator names: {names}")
    return np.column_stack(cols), tuple(names), intercept


@dataclass(frozen=True)
class MetaRegression:
    """A meta-regression (mixed-effects or fixed-effects model with moderators).

    Attributes
    ----------
    coef_names : tuple of str
        ``"intrcpt"`` then the moderators, as metafor.
    estimates, se, zval, pval, ci_lower, ci_upper : numpy.ndarray
        Per coefficient; ``zval`` holds t values when ``test`` is not ``"z"`` (knha).
    vcov : numpy.ndarray
        Covariance matrix of the coefficients (scaled under knha).
    qm, qm_df, qm_ddf, qm_pvalue : float, int, int or None, float
        Omnibus test of the moderators (all coefficients but the intercept):
        chi-square on ``qm_df`` df, or with knha ``QM / m`` against
        F(``qm_df``, ``qm_ddf``).
    tau2, se_tau2, i2, h2 : float
        Residual heterogeneity (I2 in percent).
    qe, qe_df, qe_pvalue : float, int, float
        Test of residual heterogeneity.
    r2 : float
        metafor's pseudo R^2 (percent) of heterogeneity accounted for; NaN for
        models without intercept or without moderators.
    """

    coef_names: tuple[str, ...]
    estimates: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    vcov: np.ndarray
    qm: float
    qm_df: int
    qm_ddf: int | None
    qm_pvalue: float
    tau2: float
    se_tau2: float
    i2: float
    h2: float
    qe: float
    qe_df: int
    qe_pvalue: float
    r2: float
    k: int
    p: int
    method: str
    measure: str
    test: str = "z"
    df: float | None = None
    level: float = 0.95
    loglik: float = float("nan")
    intercept: bool = True
    study_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> Summary:
        """Coefficient table (one row per coefficient, metafor's layout)."""
        stat = "zval" if self.test == "z" else "tval"
        return Summary("coefficient", self.coef_names,
                       {"estimate": self.estimates, "se": self.se, stat: self.zval,
                        "pval": self.pval, "ci_lower": self.ci_lower,
                        "ci_upper": self.ci_upper})

    def predict(self, newmods: Mapping[str, Any]) -> Summary:
        """Predicted effects for moderator values (metafor's ``predict(res, newmods=)``).

        Parameters
        ----------
        newmods : dict of str to array-like
            One entry per moderator (all but ``intrcpt``), equal lengths.

        Returns
        -------
        Summary
            ``pred, se, ci_lower, ci_upper, pi_lower, pi_upper`` on the measure's scale,
            one row per set of moderator values.
        """
        mods = [n for n in self.coef_names if n != "intrcpt"]
        missing = sorted(set(mods) - set(newmods))
        extra = sorted(set(newmods) - set(mods))
        if missing or extra:
            raise ValueError(f"newmods must give exactly {mods}; missing {missing}, "
                             f"unknown {extra}")
        cols = [np.atleast_1d(np.asarray(newmods[n], dtype=float)) for n in mods]
        m = cols[0].shape[0] if cols else 1
        X = np.column_stack(([np.ones(m)] if self.intercept else []) + cols)
        pred = X @ self.estimates
        vpred = np.einsum("ij,jk,ik->i", X, self.vcov, X)
        se = np.sqrt(vpred)
        if self.test != "z":
            crit = t_quantile_upper((1 - self.level) / 2, float(self.df))
        else:
            crit = norm_quantile_upper((1 - self.level) / 2)
        half_pi = crit * np.sqrt(vpred + self.tau2)
        return Summary("row", tuple(range(m)),
                       {"pred": pred, "se": se, "ci_lower": pred - crit * se,
                        "ci_upper": pred + crit * se, "pi_lower": pred - half_pi,
                        "pi_upper": pred + half_pi})


def _r2_fe(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """``max(0, 100 * summary(lm(yi ~ X, weights = 1/vi))$adj.r.squared)``."""
    if np.var(yi) == 0:
        return 0.0
    w = 1.0 / vi
    fit = Wls(X, w)
    r = fit.resid(yi)
    f = yi - r
    m = np.sum(w * f / np.sum(w))
    mss = float(np.sum(w * (f - m) ** 2))
    rss = float(np.sum(w * r * r))
    k, p = X.shape
    r2 = mss / (mss + rss)
    adj = 1.0 - (1.0 - r2) * ((k - 1) / (k - p))
    return max(0.0, 100.0 * adj)


def rma_mods(es: EffectSizes, X: Any, method: str = "REML", knha: bool = False,
             intercept: bool = True, *, level: float = 0.95, tau2: float | None = None,
             control: Mapping[str, Any] | None = None) -> MetaRegression:
    """Meta-regression, as ``metafor::rma(yi, vi, mods = X, method = ...)``.

    Parameters
    ----------
    es : EffectSizes
        Study-level effects.
    X : dict of str to array-like, pandas.DataFrame, or array
        Moderators, one value per study (use :func:`dummy_code` for categories).
        Unnamed array columns are called ``x1``, ``x2``, ...
    method : {"FE", "DL", "REML", "PM", "ML", "HE", "SJ"}
        Estimator of the residual tau2.
    knha : bool
        Knapp-Hartung: t tests on k - p df and the F test of the moderators.
    intercept : bool
        Add an intercept (``intrcpt``) column.
    level : float
        Confidence level.
    tau2 : float, optional
        Fixed residual tau2.
    control : dict, optional
        As :func:`evidence.stats.pooling.rma`.

    Returns
    -------
    MetaRegression

    Raises
    ------
    ValueError
        Unknown method, too few studies, a model matrix not of full rank.
    evidence.stats.pooling.ConvergenceError
        REML/ML or PM did not converge.
    """
    check_method(method)
    level = check_level(level)
    yi_all = np.asarray(es.yi, dtype=float)
    Xf, names, int_incl = _model_matrix(X, yi_all.shape[0], intercept)
    yi, vi, ok, notes = usable(es)
    row_ok = np.all(np.isfinite(Xf), axis=1)
    if not row_ok[ok].all():
        notes.append(f"{int((~row_ok[ok]).sum())} studies with missing moderators omitted.")
    keep = ok & row_ok
    yi, vi = yi_all[keep], np.asarray(es.vi, dtype=float)[keep]
    Xm = Xf[keep]
    k, p = Xm.shape
    if k == 0:
        raise ValueError("no studies (k = 0)")
    fit = rma_fit(yi, vi, Xm, method=method, knha=knha, level=level, tau2=tau2,
                   control=control, int_incl=int_incl)
    notes.extend(fit.notes)
    int_only = p == 1 and int_incl
    r2 = float("nan")
    if not int_only and int_incl:
        if is_common_effect(method):
            r2 = _r2_fe(yi, vi, Xm)
        else:
            try:
                fit0 = rma_fit(yi, vi, np.ones((k, 1)), method=method, knha=knha,
                                level=level, tau2=None, control=control, int_incl=True)
            except (ValueError, RuntimeError) as exc:
                notes.append(f"R^2 not computed: intercept-only model failed ({exc}).")
            else:
                if fit0.tau2 == 0:
                    r2 = 0.0
                else:
                    r2 = max(0.0, 100.0 * (fit0.tau2 - fit.tau2) / fit0.tau2)
    ids = tuple(s for s, flag in zip(es.study_ids, keep, strict=True) if flag)
    return MetaRegression(
        coef_names=names, estimates=fit.beta, se=fit.se, zval=fit.zval, pval=fit.pval,
        ci_lower=fit.ci_lower, ci_upper=fit.ci_upper, vcov=fit.vb, qm=fit.qm,
        qm_df=fit.qm_df, qm_ddf=fit.qm_ddf, qm_pvalue=fit.qm_pvalue, tau2=fit.tau2,
        se_tau2=fit.se_tau2, i2=fit.i2, h2=fit.h2, qe=fit.qe, qe_df=k - p,
        qe_pvalue=fit.qe_pvalue, r2=r2, k=k, p=p, method=method, measure=es.measure,
        test=fit.test, df=None if fit.ddf is None else float(fit.ddf), level=level,
        loglik=fit.loglik, intercept=int_incl, study_ids=ids, notes=tuple(notes))


# --------------------------------------------------------------------------- regtest


@dataclass(frozen=True)
class RegtestResult:
    """Regression test for funnel-plot asymmetry (metafor's ``regtest``).

    Attributes
    ----------
    zval, pval : float
        Test of the predictor's slope (a t value when ``df`` is set: ``model="lm"``
        or knha).
    limit_estimate, limit_ci_lower, limit_ci_upper : float
        The intercept: the estimate as the predictor goes to 0 (NaN for predictors
        ``ni``/``sqrtni``, as metafor).
    low_power : bool
        True when k < 10: the test has little power and should not be interpreted.
    """

    model: str
    predictor: str
    method: str
    zval: float
    pval: float
    df: float | None
    limit_estimate: float
    limit_ci_lower: float
    limit_ci_upper: float
    slope: float
    slope_se: float
    intercept: float
    intercept_se: float
    fit_tau2: float
    k: int
    low_power: bool
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dictionary."""
        from dataclasses import asdict

        return asdict(self)


def regtest(es: EffectSizes, model: str = "rma", method: str = "REML",
            predictor: str = "sei", *, knha: bool = False, level: float = 0.95,
            control: Mapping[str, Any] | None = None) -> RegtestResult:
    """Egger-type regression test for funnel-plot asymmetry, as ``metafor::regtest``.

    Parameters
    ----------
    es : EffectSizes
        Study-level effects (``ni`` needed for the sample-size predictors).
    model : {"rma", "lm"}
        Mixed-effects meta-regression on the predictor (z test, or t with knha),
        or Egger's classical weighted linear regression (t test on k - 2 df).
    method : str
        tau2 estimator for ``model="rma"``.
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
        Standard error, variance, sample size, 1/n, sqrt(n), 1/sqrt(n).
    knha : bool
        Knapp-Hartung for ``model="rma"``.
    level : float
        Confidence level of the limit estimate.
    control : dict, optional
        As :func:`evidence.stats.pooling.rma`.

    Returns
    -------
    RegtestResult
    """
    if model not in _REGTEST_MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(_REGTEST_MODELS)}")
    if predictor not in _REGTEST_PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; allowed: "
                         f"{', '.join(_REGTEST_PREDICTORS)}")
    check_method(method)
    level = check_level(level)
    yi, vi, ok, _ = usable(es)
    k = yi.shape[0]
    if predictor == "sei":
        x = np.sqrt(vi)
    elif predictor == "vi":
        x = vi
    else:
        if es.ni is None:
            raise ValueError(f"predictor {predictor!r} needs sample sizes (es.ni)")
        ni = np.asarray(es.ni, dtype=float)[ok]
        x = {"ni": ni, "ninv": 1.0 / ni, "sqrtni": np.sqrt(ni),
             "sqrtninv": 1.0 / np.sqrt(ni)}[predictor]
    X = np.column_stack([np.ones(k), x])
    if k < 3:
        raise ValueError(f"regtest needs at least 3 studies, got k = {k}")
    if np.linalg.matrix_rank(X) < 2:
        raise ValueError("Model matrix no longer of full rank after addition of predictor.")
    limit = predictor in ("sei", "vi", "ninv", "sqrtninv")
    if model == "rma":
        fit = rma_fit(yi, vi, X, method=method, knha=knha, level=level, tau2=None,
                       control=control, int_incl=True)
        est = float(fit.beta[0])
        return RegtestResult(
            model=model, predictor=predictor, method=method, zval=float(fit.zval[1]),
            pval=float(fit.pval[1]), df=None if fit.ddf is None else float(fit.ddf),
            limit_estimate=est if limit else float("nan"),
            limit_ci_lower=float(fit.ci_lower[0]) if limit else float("nan"),
            limit_ci_upper=float(fit.ci_upper[0]) if limit else float("nan"),
            slope=float(fit.beta[1]), slope_se=float(fit.se[1]), intercept=est,
            intercept_se=float(fit.se[0]), fit_tau2=fit.tau2, k=k, low_power=k < 10,
            level=level)
    w = 1.0 / vi
    wls = Wls(X, w)
    beta = wls.beta(yi)
    r = yi - X @ beta
    dfs = k - 2
    sigma2 = float(np.sum(w * r * r)) / dfs
    se = np.sqrt(np.diag(wls.A) * sigma2)
    tval = beta / se
    pval = p_t2(tval, dfs)
    crit = t_quantile_upper((1 - level) / 2, dfs)
    return RegtestResult(
        model=model, predictor=predictor, method="lm", zval=float(tval[1]),
        pval=float(pval[1]), df=float(dfs),
        limit_estimate=float(beta[0]) if limit else float("nan"),
        limit_ci_lower=float(beta[0] - crit * se[0]) if limit else float("nan"),
        limit_ci_upper=float(beta[0] + crit * se[0]) if limit else float("nan"),
        slope=float(beta[1]), slope_se=float(se[1]), intercept=float(beta[0]),
        intercept_se=float(se[0]), fit_tau2=float("nan"), k=k, low_power=k < 10,
        level=level)

