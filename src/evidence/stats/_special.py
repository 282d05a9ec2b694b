"""The special functions of the normal, chi-square, t and F distributions, in numpy and math.

Private to the statistics wing: :mod:`evidence.stats.distributions` and the GLMM use
them.  ``evidence pool`` is timed as a whole process, and importing
:mod:`scipy.special` (scipy 1.17) costs more than everything else it does: scipy's array
API layer imports most of numpy's submodules (``numpy.f2py``, ``numpy.ma``,
``numpy.testing``), 0.15-0.8 s on this kind of machine, against a fit of 10-60 ms.  The
few functions a pooling needs are therefore computed here, by the classical algorithms:

- the normal distribution from :func:`math.erfc`; its quantile by Acklam's rational
  approximation refined by Halley steps on ``erfc`` (full double precision);
- the regularized incomplete gamma function by its series below ``x = a + 1`` and
  Lentz's continued fraction above (Numerical Recipes, 3rd ed., section 6.2);
- the regularized incomplete beta function by its continued fraction, on the side of
  ``(a + 1) / (a + b + 2)`` where it converges, with ``1 - x`` passed in exactly so
  that small tail probabilities keep their relative accuracy (section 6.4);
- quantiles by a safeguarded Newton iteration on the logarithm of the tail
  probability, inside a bracket (bisection where Newton would leave it).

``tests/stats/test_special.py`` checks every function against :mod:`scipy.special` over
grids of arguments, to 1e-13 relative or better where the arguments are moderate and
1e-11 for degrees of freedom in the thousands (the cancellation in ``a log x - x -
lgamma(a)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["chi2_quantile", "chi2_sf", "f_sf", "gammaln", "ndtr", "ndtri", "t_cdf",
           "t_quantile", "xlog1py", "xlogy"]

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 100_000
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)

# Acklam's rational approximation of the normal quantile (relative error < 1.15e-9)
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_P_LOW = 0.02425


def _vectorize(f: Callable[..., float], *args: Any) -> Any:
    """``f`` over broadcast arguments: a float for scalars, else an array."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    if arrays[0].ndim == 0:
        return float(f(*(float(a) for a in arrays)))
    flat = [a.ravel() for a in arrays]
    out = np.fromiter((f(*vals) for vals in zip(*flat, strict=True)), dtype=float,
                      count=flat[0].size)
    return out.reshape(arrays[0].shape)


# --------------------------------------------------------------------------- normal


def _ndtr(x: float) -> float:
    if math.isnan(x):
        return math.nan
    return 0.5 * math.erfc(-x / _SQRT2)


def ndtr(x: Any) -> Any:
    """Standard normal distribution function (``scipy.special.ndtr``)."""
    return _vectorize(_ndtr, x)


def _ndtri(p: float) -> float:
    if math.isnan(p) or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = min(p, 1.0 - p)
    if q < _P_LOW:
        r = math.sqrt(-2.0 * math.log(q))
        x = ((((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5])
             / ((((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + 1.0))
    else:
        r = (q - 0.5) ** 2
        x = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
             * (q - 0.5)
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    # x is the quantile of the smaller tail q (x <= 0); refine it on that tail, where erfc
    # keeps its relative accuracy, by Halley steps
    for _ in range(3):
        e = 0.5 * math.erfc(-x / _SQRT2) - q
        u = e * _SQRT2PI * math.exp(0.5 * x * x)
        step = u / (1.0 + 0.5 * x * u)
        x -= step
        if abs(step) <= 1e-16 * max(1.0, abs(x)):
            break
    return x if p <= 0.5 else -x


def ndtri(p: Any) -> Any:
    """Standard normal quantile (``scipy.special.ndtri``): ``-inf`` at 0, ``inf`` at 1,
    NaN outside [0, 1]."""
    return _vectorize(_ndtri, p)


# --------------------------------------------------------------------------- gamma


def _gamma_pq(a: float, x: float) -> tuple[float, float]:
    """Regularized lower and upper incomplete gamma functions ``P(a, x), Q(a, x)``."""
    if x <= 0.0:
        return 0.0, 1.0
    if math.isinf(x):
        return 1.0, 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(_MAX_ITER):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        p = total * math.exp(log_front)
        return p, 1.0 - p
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    q = math.exp(log_front) * h
    return 1.0 - q, q


def _chi2_sf(df: float, x: float) -> float:
    if math.isnan(x) or math.isnan(df) or df <= 0:
        return math.nan
    return _gamma_pq(0.5 * df, 0.5 * x)[1]


def chi2_sf(df: Any, x: Any) -> Any:
    """Upper tail probability of the chi-square distribution (``scipy.special.chdtrc``)."""
    return _vectorize(_chi2_sf, df, x)


def _chi2_density(df: float, x: float) -> float:
    a = 0.5 * df
    return math.exp((a - 1.0) * math.log(0.5 * x) - 0.5 * x - math.lgamma(a)) * 0.5


def chi2_quantile(p: float, df: float, *, upper: bool) -> float:
    """The chi-square quantile of upper-tail probability ``p`` (``upper=True``, as
    ``scipy.special.chdtri(df, p)``) or of lower-tail probability ``p`` (as
    ``2 * scipy.special.gammaincinv(df / 2, p)``)."""
    if math.isnan(p) or math.isnan(df) or df <= 0 or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return math.inf if upper else 0.0
    if p == 1.0:
        return 0.0 if upper else math.inf
    a = 0.5 * df

    def tail(x: float) -> float:  # the tail whose probability is p
        lo, hi = _gamma_pq(a, 0.5 * x)
        return hi if upper else lo

    # Wilson-Hilferty start, moved into the bracket by the solver when it is poor
    z = _ndtri(p if not upper else 1.0 - p) if 1e-300 < p < 1.0 else 0.0
    h = 2.0 / (9.0 * df)
    start = max(df * (1.0 - h + z * math.sqrt(h)) ** 3, 1e-12)
    return _solve_tail(tail, lambda x: _chi2_density(df, x), p, start, increasing=not upper,
                       lower_bound=0.0)


# --------------------------------------------------------------------------- beta


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)``, with ``y = 1 - x`` given exactly."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log(y))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, y) / b


def _t_lower(df: float, t: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    t2 = t * t
    tail = 0.5 * _betainc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t < 0 else 1.0 - tail


def t_cdf(df: Any, t: Any) -> Any:
    """Student's t distribution function (``scipy.special.stdtr``)."""
    return _vectorize(_t_lower, df, t)


def _t_density(df: float, t: float) -> float:
    log_c = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df)
             - 0.5 * math.log(df * math.pi))
    return math.exp(log_c - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def t_quantile(df: float, p: float) -> float:
    """Student's t quantile of lower-tail probability ``p`` (``scipy.special.stdtrit``)."""
    if math.isnan(p) or math.isnan(df) or df <= 0 or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p == 0.5:
        return 0.0
    q = min(p, 1.0 - p)  # solve for the upper quantile of the smaller tail q

    def tail(t: float) -> float:
        t2 = t * t
        return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))

    z = -_ndtri(q)
    g1 = (z ** 3 + z) / 4.0
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96.0
    start = z + g1 / df + g2 / df ** 2  # Cornish-Fisher; poor for df < 3, then bracketed
    t = _solve_tail(tail, lambda u: _t_density(df, u), q, max(start, 1e-12),
                    increasing=False, lower_bound=0.0)
    return -t if p < 0.5 else t


def _f_sf(df1: float, df2: float, f: float) -> float:
    if math.isnan(f) or math.isnan(df1) or math.isnan(df2) or df1 <= 0 or df2 <= 0:
        return math.nan
    if f <= 0.0:
        return 1.0
    if math.isinf(f):
        return 0.0
    denom = df2 + df1 * f
    return _betainc(0.5 * df2, 0.5 * df1, df2 / denom, df1 * f / denom)


def f_sf(df1: Any, df2: Any, f: Any) -> Any:
    """Upper tail probability of the F distribution (``scipy.special.fdtrc``)."""
    return _vectorize(_f_sf, df1, df2, f)


# --------------------------------------------------------------------------- solver


def _solve_tail(tail: Callable[[float], float], density: Callable[[float], float],
                target: float, start: float, *, increasing: bool,
                lower_bound: float) -> float:
    """The ``x > lower_bound`` with ``tail(x) == target``, for a tail probability that is
    monotone in ``x`` (increasing: a lower tail; decreasing: an upper tail) with
    derivative ``±density``: Newton steps on ``log tail(x) - log target`` inside a
    bracket that bisection keeps."""
    log_target = math.log(target)
    lo, hi = lower_bound, math.inf
    x = start
    for _ in range(1000):
        value = tail(x)
        if value == target:
            return x
        # which side of the root x lies on
        if (value < target) == increasing:
            lo = x
        else:
            hi = x
        if value > 0.0:
            g = math.log(value) - log_target
            slope = (density(x) if increasing else -density(x)) / value
            step = g / slope if slope != 0.0 and math.isfinite(slope) else math.nan
            new = x - step
        else:
            new = math.nan
        if not (lo < new < hi) or not math.isfinite(new):
            new = 2.0 * x + 1.0 if math.isinf(hi) else 0.5 * (lo + hi)
        if abs(new - x) <= 4e-16 * abs(new) or (math.isfinite(hi) and hi - lo <= 4e-16 * hi):
            return new
        x = new
    return x


# --------------------------------------------------------------------------- misc


def gammaln(x: Any) -> Any:
    """``log |Γ(x)|`` (``scipy.special.gammaln``)."""
    return _vectorize(math.lgamma, x)


def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, 0 where ``x == 0`` (``scipy.special.xlogy``)."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))
    return float(out) if out.ndim == 0 else out


def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, 0 where ``x == 0`` (``scipy.special.xlog1py``)."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(x == 0, 0.0, x * np.log1p(np.where(x == 0, 0.0, y)))
    return float(out) if out.ndim == 0 else out
