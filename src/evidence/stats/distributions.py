"""Tail probabilities, quantiles, exact tests and binomial intervals.

The routines :mod:`scipy.stats` and statsmodels call, without importing them: importing
:mod:`scipy.stats` takes 1-3 s, more than every computation of a chapter put together,
and statsmodels more again. Each function here is the same special function (or R's
algorithm), so the results are those of ``scipy.stats``/statsmodels and R to the last
few units in the last place; ``tests/test_distributions.py`` checks that.  The normal,
chi-square, t and F functions, which every pooling needs, are computed without scipy
(:mod:`evidence.stats._special`; importing :mod:`scipy.special` alone would cost more
than an ``evidence pool`` run); the exact tests and binomial intervals use
:mod:`scipy.special`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "chisq_quantile",
    "chisq_test",
    "clopper_pearson",
    "fisher_exact",
    "norm_quantile_upper",
    "p_chisq",
    "p_f",
    "p_norm2",
    "p_t2",
    "t_quantile_upper",
    "wilson",
]


# --------------------------------------------------------------------------- distributions


def norm_quantile_upper(alpha: float) -> float:
    """Upper ``alpha`` quantile of the standard normal (R's ``qnorm(alpha, lower = FALSE)``)."""
    from evidence.stats._special import ndtri

    return float(-ndtri(alpha))


def t_quantile_upper(alpha: float, df: float) -> float:
    """Upper ``alpha`` quantile of Student's t with ``df`` degrees of freedom."""
    # scipy.stats.t.isf(a, df) is -stdtrit(df, a)
    from evidence.stats._special import t_quantile

    return float(-t_quantile(float(df), float(alpha)))


def p_norm2(z: Any) -> np.ndarray:
    """Two-sided normal p-values of the statistics ``z``."""
    from evidence.stats._special import ndtr

    return 2.0 * np.asarray(ndtr(-np.abs(np.asarray(z, dtype=float))), dtype=float)


def p_t2(t: Any, df: float) -> np.ndarray:
    """Two-sided p-values of ``t`` statistics with ``df`` degrees of freedom."""
    from evidence.stats._special import t_cdf

    return 2.0 * np.asarray(t_cdf(df, -np.abs(np.asarray(t, dtype=float))), dtype=float)


def p_chisq(q: float, df: float) -> float:
    """Upper tail probability of a chi-square statistic ``q`` on ``df`` degrees of freedom."""
    from evidence.stats._special import chi2_sf

    return float(chi2_sf(df, q))


def p_f(f: float, df1: float, df2: float) -> float:
    """Upper tail probability of an F statistic on ``df1`` and ``df2`` degrees of freedom."""
    from evidence.stats._special import f_sf

    return float(f_sf(df1, df2, f))


def chisq_quantile(prob: float, df: float, upper: bool) -> float:
    """Chi-square quantile: of the upper tail (``upper=True``) or the lower tail."""
    from evidence.stats._special import chi2_quantile

    return chi2_quantile(float(prob), float(df), upper=upper)


# --------------------------------------------------------------------------- tests


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of the 2x2 table ``[[a, b], [c, d]]``.

    R's ``fisher.test`` algorithm: the conditional (hypergeometric) probabilities of
    every table with the observed margins are summed over the tables no more likely
    than the observed one, with R's relative tolerance ``1 + 1e-7``.

    Parameters
    ----------
    a, b, c, d : int
        Non-negative cell counts (rows: groups; columns: outcome yes/no).

    Returns
    -------
    float
        The p-value, in [0, 1]; 1 when a margin is zero.

    Examples
    --------
    >>> round(fisher_exact(4, 4, 5, 20), 4)  # Verschoor 2024, response by arm
    0.1695
    """
    from scipy.special import gammaln

    cells = [a, b, c, d]
    if any(int(v) != v or v < 0 for v in cells):
        raise ValueError(f"cell counts must be non-negative integers; got {cells}")
    a, b, c, d = (int(v) for v in cells)
    m, n, k = a + c, b + d, a + b  # column 1 total, column 2 total, row 1 total
    lo, hi = max(0, k - n), min(k, m)
    if lo == hi:
        return 1.0
    x = np.arange(lo, hi + 1, dtype=float)
    logd = (gammaln(m + 1) - gammaln(x + 1) - gammaln(m - x + 1)
            + gammaln(n + 1) - gammaln(k - x + 1) - gammaln(n - k + x + 1))
    dens = np.exp(logd - logd.max())
    dens /= dens.sum()
    observed = dens[a - lo]
    return float(min(1.0, dens[dens <= observed * (1.0 + 1e-7)].sum()))


def chisq_test(table: Any) -> tuple[float, float, int]:
    """Pearson's chi-square test of independence, without continuity correction.

    ``scipy.stats.chi2_contingency(table, correction=False)``, and R's
    ``chisq.test(table, correct = FALSE)``.

    Parameters
    ----------
    table : array-like of int, shape (r, c)
        Observed counts.

    Returns
    -------
    (float, float, int)
        Statistic, p-value and degrees of freedom ``(r - 1)(c - 1)``.

    Raises
    ------
    ValueError
        A negative count, or a row or column summing to zero (an expected count of
        zero leaves the statistic undefined).
    """
    obs = np.asarray(table, dtype=float)
    if obs.ndim != 2:
        raise ValueError(f"table must be two-dimensional; got shape {obs.shape}")
    if (obs < 0).any():
        raise ValueError("table has negative counts")
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    if (expected == 0).any():
        raise ValueError("a row or column of the table sums to zero: the expected count of a "
                         "cell is zero and the chi-square test is undefined")
    df = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    if df == 0:
        return 0.0, 1.0, 0
    stat = float(((obs - expected) ** 2 / expected).sum())
    return stat, p_chisq(stat, df), df


# --------------------------------------------------------------------------- intervals


def _binomial_args(x: Any, n: Any, level: float) -> tuple[np.ndarray, np.ndarray, float]:
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    if not 0.0 < float(level) < 1.0 or math.isnan(float(level)):
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return x, n, 1.0 - float(level)


def clopper_pearson(x: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval of ``x / n``, as R's ``binom.test``.

    Lower limit ``qbeta(alpha / 2, x, n - x + 1)`` (0 when ``x = 0``), upper limit
    ``qbeta(alpha / 2, x + 1, n - x, lower = FALSE)`` (1 when ``x = n``): the routines
    behind ``scipy.stats.beta.ppf`` and ``.isf``, which statsmodels' ``"beta"`` calls.
    """
    from scipy.special import betainccinv, betaincinv

    x, n, alpha = _binomial_args(x, n, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, betaincinv(np.maximum(x, 1.0), n - x + 1.0, alpha / 2.0), 0.0)
        hi = np.where(x < n, betainccinv(x + 1.0, np.maximum(n - x, 1.0), alpha / 2.0),
                      1.0)
    return lo, hi


def wilson(x: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``x / n`` without continuity correction.

    statsmodels' ``proportion_confint(method="wilson")`` formula, term by term (R's
    ``prop.test(correct = FALSE)`` gives the same interval).
    """
    x, n, alpha = _binomial_args(x, n, level)
    crit = norm_quantile_upper(alpha / 2.0)
    crit2 = crit ** 2
    q = x / n
    denom = 1.0 + crit2 / n
    center = (q + crit2 / (2.0 * n)) / denom
    dist = crit * np.sqrt(q * (1.0 - q) / n + crit2 / (4.0 * n ** 2)) / denom
    return center - dist, center + dist
