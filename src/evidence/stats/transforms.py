"""Transformations of proportions and their inverses, exactly as metafor 3.8-1.

The inverses are the functions metafor's ``predict(res, transf=...)`` applies to
a pooled estimate and its interval limits:

==========  =========================================  ==============================
measure     metafor                                    here
==========  =========================================  ==============================
``PLO``     ``transf.ilogit`` (``plogis``)             :func:`ilogit`
``PR``      none (identity; **not** clipped to [0, 1])  identity
``RD``      none (identity)                            identity
``PAS``     ``transf.iarcsin``                         :func:`iarcsin`
``PFT``     ``transf.ipft.hm(targs=list(ni=ni))``      :func:`ipft_hm`
``RR``,     ``exp``                                    :func:`numpy.exp`
``OR``,
``HR``
==========  =========================================  ==============================

``transf.iarcsin`` is ``sin(x)^2`` set to 0 below 0 and to 1 above ``pi/2``.
``transf.ipft.hm`` is Miller's (1978) inverse of the Freeman-Tukey double-arcsine
transformation evaluated at the harmonic mean of the sample sizes,
``nhm = 1 / mean(1 / ni)``; values beyond the transformation of 0 or 1 at ``nhm``
are set to 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BACK_TRANSFORM_NAMES",
    "back_transform",
    "back_transform_name",
    "iarcsin",
    "ilogit",
    "ipft",
    "ipft_hm",
    "logit",
    "pft",
]

#: Names of the inverse transformations, as ``metafor_common.R``'s ``back_fun``.
BACK_TRANSFORM_NAMES: dict[str, str] = {
    "PLO": "transf.ilogit",
    "PR": "identity",
    "RD": "identity",
    "PAS": "transf.iarcsin",
    "PFT": "transf.ipft.hm(ni=harmonic mean of ni)",
    "RR": "exp",
    "OR": "exp",
    "HR": "exp",
}


def _out(value: np.ndarray, scalar: bool) -> Any:
    return float(value) if scalar else value


def logit(p: Any) -> Any:
    """Log-odds ``log(p / (1 - p))`` (metafor's ``transf.logit``, R's ``qlogis``).

    Parameters
    ----------
    p : float or array-like
        Proportions in [0, 1].

    Returns
    -------
    float or numpy.ndarray
        ``-inf`` at 0 and ``inf`` at 1.
    """
    arr = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(arr) - np.log1p(-arr)
    return _out(out, arr.ndim == 0)


def ilogit(x: Any) -> Any:
    """Inverse logit ``1 / (1 + exp(-x))`` (``transf.ilogit``, R's ``plogis``).

    Computed without overflow for large ``|x|``.

    Parameters
    ----------
    x : float or array-like
        Log-odds.

    Returns
    -------
    float or numpy.ndarray
        Proportions in [0, 1].
    """
    arr = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(arr))
        out = np.where(arr >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return _out(out, arr.ndim == 0)


def iarcsin(x: Any) -> Any:
    """Inverse of the arcsine square-root transformation (``transf.iarcsin``).

    ``sin(x)^2``, set to 0 for ``x < 0`` and to 1 for ``x > pi/2`` (as metafor).

    Parameters
    ----------
    x : float or array-like
        Values on the ``asin(sqrt(p))`` scale.

    Returns
    -------
    float or numpy.ndarray
        Proportions.
    """
    arr = np.asarray(x, dtype=float)
    out = np.sin(arr) ** 2
    out = np.where(arr < 0, 0.0, out)
    out = np.where(arr > np.arcsin(1.0), 1.0, out)
    return _out(out, arr.ndim == 0)


def pft(p: Any, ni: Any) -> Any:
    """Freeman-Tukey double-arcsine transformation of a proportion (``transf.pft``).

    ``1/2 * (asin(sqrt(x / (n + 1))) + asin(sqrt((x + 1) / (n + 1))))`` with
    ``x = p * n``.

    Parameters
    ----------
    p : float or array-like
        Proportions.
    ni : float or array-like
        Sample sizes.

    Returns
    -------
    float or numpy.ndarray
        Transformed values.
    """
    parr = np.asarray(p, dtype=float)
    narr = np.asarray(ni, dtype=float)
    xi = parr * narr
    out = 0.5 * (np.arcsin(np.sqrt(xi / (narr + 1.0)))
                 + np.arcsin(np.sqrt((xi + 1.0) / (narr + 1.0))))
    return _out(out, out.ndim == 0)


def ipft(x: Any, ni: Any) -> Any:
    """Inverse Freeman-Tukey transformation for sample size(s) ``ni`` (``transf.ipft``).

    Miller's (1978) inverse; values above ``pft(1, ni)`` give 1, below
    ``pft(0, ni)`` give 0; undefined values (NaN) stay NaN.

    Parameters
    ----------
    x : float or array-like
        Values on the Freeman-Tukey scale.
    ni : float or array-like
        Sample size(s), broadcast against ``x``.

    Returns
    -------
    float or numpy.ndarray
        Proportions.
    """
    xarr = np.asarray(x, dtype=float)
    narr = np.asarray(ni, dtype=float)
    s2 = np.sin(2.0 * xarr)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * (1.0 - np.sign(np.cos(2.0 * xarr))
                     * np.sqrt(1.0 - (s2 + (s2 - 1.0 / s2) / narr) ** 2))
    out = np.where(xarr > pft(1.0, narr), 1.0, out)
    out = np.where(xarr < pft(0.0, narr), 0.0, out)
    return _out(np.asarray(out, dtype=float), xarr.ndim == 0 and narr.ndim == 0)


def ipft_hm(y: Any, ni: Any) -> Any:
    """Inverse Freeman-Tukey transformation at the harmonic mean of ``ni`` (``transf.ipft.hm``).

    Parameters
    ----------
    y : float or array-like
        Values on the Freeman-Tukey scale (e.g. a pooled estimate and its limits).
    ni : float or array-like
        The studies' sample sizes; their harmonic mean ``1 / mean(1 / ni)``
        (ignoring NaN, as metafor's ``na.rm = TRUE``) is used for every value.

    Returns
    -------
    float or numpy.ndarray
        Proportions.
    """
    narr = np.atleast_1d(np.asarray(ni, dtype=float))
    narr = narr[~np.isnan(narr)]
    if narr.size == 0:
        raise ValueError("ipft_hm needs at least one sample size ni")
    nhm = 1.0 / float(np.mean(1.0 / narr))
    return ipft(y, nhm)


def back_transform_name(measure: str) -> str:
    """Name of the inverse transformation for ``measure`` (as ``metafor_common.R``).

    Parameters
    ----------
    measure : str
        One of ``PLO``, ``PR``, ``RD``, ``PAS``, ``PFT``, ``RR``, ``OR``, ``HR``.

    Returns
    -------
    str
        E.g. ``"transf.ilogit"``.
    """
    if measure not in BACK_TRANSFORM_NAMES:
        raise ValueError(f"unknown measure {measure!r}; allowed: "
                         f"{', '.join(BACK_TRANSFORM_NAMES)}")
    return BACK_TRANSFORM_NAMES[measure]


def back_transform(measure: str,
                   harmonic_mean_n: float | None = None) -> Callable[[float], float]:
    """The function that maps a value on the measure's scale to the natural scale.

    Matches metafor's ``predict(res, transf=...)`` (see the module docstring);
    ``PR`` and ``RD`` are the identity and are not clipped.

    Parameters
    ----------
    measure : str
        One of ``PLO``, ``PR``, ``RD``, ``PAS``, ``PFT``, ``RR``, ``OR``, ``HR``.
    harmonic_mean_n : float, optional
        Required for ``PFT``: the harmonic mean of the studies' sample sizes.

    Returns
    -------
    callable
        Maps a float (or array) to a float (or array).
    """
    back_transform_name(measure)  # validates
    if measure == "PLO":
        return ilogit
    if measure in ("PR", "RD"):
        return _identity
    if measure == "PAS":
        return iarcsin
    if measure == "PFT":
        if harmonic_mean_n is None or not np.isfinite(harmonic_mean_n) or harmonic_mean_n <= 0:
            raise ValueError("measure 'PFT' needs harmonic_mean_n (the harmonic mean of ni) "
                             f"> 0 for its back-transformation, got {harmonic_mean_n!r}")
        nhm = float(harmonic_mean_n)
        return lambda x: ipft(x, nhm)
    return _exp


def _identity(x: Any) -> Any:
    arr = np.asarray(x, dtype=float)
    return _out(arr, arr.ndim == 0)


def _exp(x: Any) -> Any:
    arr = np.asarray(x, dtype=float)
    return _out(np.exp(arr), arr.ndim == 0)
