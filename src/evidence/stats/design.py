"""Study-design helpers: A'Hern's single-stage phase II design and screening numbers.

* :func:`ahern` — the exact single-stage design of A'Hern (2001): the smallest
  sample size ``n`` and cut-off ``r`` such that declaring the treatment active when
  ``r`` or more of ``n`` patients respond has type I error ``<= alpha`` under the
  uninteresting response rate ``p0`` and power ``>= 1 - beta`` under the
  interesting rate ``p1`` (exact binomial tails, no normal approximation).
* :func:`number_needed_to_screen` — how many patients must be screened to find
  one with the marker (``1 / yield``), with the interval obtained by inverting the
  yield's confidence limits.
* :func:`patients_to_screen` — how many must be screened to enrol ``n_required``
  marker-positive patients (``n_required / yield``).

References
----------
A'Hern RP (2001). Sample size tables for exact single-stage phase II designs.
Stat Med 20:859-866.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evidence.stats.checks import check_probability
from evidence.stats.results import jsonable

__all__ = ["NNS", "AHernDesign", "ahern", "number_needed_to_screen", "patients_to_screen"]


@dataclass(frozen=True)
class AHernDesign:
    """An exact single-stage phase II design (A'Hern 2001).

    Attributes
    ----------
    n : int
        Number of patients to treat.
    r : int
        Declare the treatment worth pursuing if ``r`` or more patients respond.
    alpha, power : float
        Actual type I error ``P(X >= r | p0)`` and power ``P(X >= r | p1)``.
    p0, p1 : float
        Uninteresting and interesting response rates.
    alpha_target, beta_target : float
        The requested bounds (``alpha <= alpha_target``, ``power >= 1 - beta_target``).
    """

    n: int
    r: int
    alpha: float
    power: float
    p0: float
    p1: float
    alpha_target: float = 0.05
    beta_target: float = 0.20

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return jsonable(asdict(self))


def ahern(p0: float, p1: float, alpha: float = 0.05, beta: float = 0.20,
          n_max: int = 500) -> AHernDesign:
    """A'Hern's exact single-stage phase II design.

    For ``n = 1, 2, ...`` take the smallest cut-off ``r`` with
    ``P(X >= r | n, p0) <= alpha``; the first ``n`` at which that ``r`` also gives
    ``P(X >= r | n, p1) >= 1 - beta`` is the design (the smallest ``r`` maximises
    the power among the admissible cut-offs).

    Parameters
    ----------
    p0, p1 : float
        Response rates under the null (not worth pursuing) and the alternative;
        ``0 < p0 < p1 < 1``.
    alpha, beta : float
        One-sided type I error and type II error bounds.
    n_max : int
        Largest sample size searched.

    Returns
    -------
    AHernDesign
        ``n``, ``r`` and the actual ``alpha`` and ``power``.

    Raises
    ------
    ValueError
        Invalid rates or bounds, or no design with ``n <= n_max``.

    Examples
    --------
    >>> d = ahern(0.5, 0.8)
    >>> (d.n, d.r)
    (18, 13)
    """
    from scipy.special import bdtrc  # bdtrc(k, n, p) = P(X > k)

    p0 = check_probability("p0", p0)
    p1 = check_probability("p1", p1)
    alpha = check_probability("alpha", alpha)
    beta = check_probability("beta", beta)
    if not p0 < p1:
        raise ValueError(f"p1 must exceed p0 (got p0={p0}, p1={p1})")
    if isinstance(n_max, bool) or int(n_max) != n_max or n_max < 1:
        raise ValueError(f"n_max must be a positive integer, got {n_max!r}")
    for n in range(1, int(n_max) + 1):
        r = np.arange(n + 2)
        size = bdtrc(r - 1, n, p0)  # P(X >= r | p0), r = 0..n+1
        r_min = int(np.argmax(size <= alpha))  # size is decreasing; size[n + 1] = 0
        power = float(bdtrc(r_min - 1, n, p1))
        if power >= 1.0 - beta:
            return AHernDesign(n=n, r=r_min, alpha=float(size[r_min]), power=power,
                               p0=p0, p1=p1, alpha_target=alpha, beta_target=beta)
    raise ValueError(f"no single-stage design with n <= {n_max} for p0={p0}, p1={p1}, "
                     f"alpha={alpha}, beta={beta}")


@dataclass(frozen=True)
class NNS:
    """Number of patients to screen, with the interval from the yield's CI.

    ``estimate = n_required / yield``; ``ci_lower = n_required / yield_ci_upper`` and
    ``ci_upper = n_required / yield_ci_lower`` (infinite when the yield's lower
    limit is 0).  The ``*_ceil`` fields round up to whole patients for reporting.

    Attributes
    ----------
    estimate, ci_lower, ci_upper : float
        Raw values.
    estimate_ceil, ci_lower_ceil, ci_upper_ceil : int or float
        Rounded up (``math.inf`` stays infinite).
    n_required : int
        Marker-positive patients wanted (1 for the number needed to screen).
    yield_estimate, yield_ci_lower, yield_ci_upper : float
        The yield (proportion marker-positive) the numbers were derived from.
    """

    estimate: float
    ci_lower: float
    ci_upper: float
    estimate_ceil: int | float
    ci_lower_ceil: int | float
    ci_upper_ceil: int | float
    n_required: int
    yield_estimate: float
    yield_ci_lower: float
    yield_ci_upper: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields (infinite values become ``None``)."""
        return jsonable(asdict(self))


def _ceil(value: float) -> int | float:
    """Round up to a whole patient, ignoring floating-point noise (1/0.05 -> 20)."""
    if not math.isfinite(value):
        return value
    return math.ceil(round(value, 9))


def _need(n_required: int, p: float, lower: float, upper: float) -> NNS:
    p, lower, upper = float(p), float(lower), float(upper)
    for name, v in (("yield_estimate", p), ("ci_lower", lower), ("ci_upper", upper)):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} must be a proportion in [0, 1], got {v!r}")
    if not lower <= p <= upper:
        raise ValueError(f"need ci_lower <= yield_estimate <= ci_upper, got {lower}, {p}, "
                         f"{upper}")
    if p == 0.0:
        raise ValueError("yield_estimate is 0: no number of patients screened suffices")

    def inv(q: float) -> float:
        return n_required / q if q > 0 else math.inf

    est, lo, hi = inv(p), inv(upper), inv(lower)
    return NNS(estimate=est, ci_lower=lo, ci_upper=hi, estimate_ceil=_ceil(est),
               ci_lower_ceil=_ceil(lo), ci_upper_ceil=_ceil(hi), n_required=n_required,
               yield_estimate=p, yield_ci_lower=lower, yield_ci_upper=upper)


def number_needed_to_screen(yield_estimate: float, ci_lower: float, ci_upper: float) -> NNS:
    """Patients to screen to find one marker-positive patient: ``1 / yield``.

    Parameters
    ----------
    yield_estimate : float
        Proportion of screened patients who are marker-positive (``> 0``).
    ci_lower, ci_upper : float
        Its confidence limits.

    Returns
    -------
    NNS
        Point value ``1 / yield`` and interval ``(1 / ci_upper, 1 / ci_lower)``, raw
        and rounded up.
    """
    return _need(1, yield_estimate, ci_lower, ci_upper)


def patients_to_screen(n_required: int, yield_estimate: float, ci_lower: float,
                       ci_upper: float) -> NNS:
    """Patients to screen to enrol ``n_required`` marker-positive patients.

    Parameters
    ----------
    n_required : int
        Marker-positive patients needed (e.g. the ``n`` of an :func:`ahern` design).
    yield_estimate : float
        Proportion of screened patients who are marker-positive (``> 0``).
    ci_lower, ci_upper : float
        Its confidence limits.

    Returns
    -------
    NNS
        ``n_required / yield`` with interval ``(n_required / ci_upper,
        n_required / ci_lower)``, raw and rounded up.
    """
    if isinstance(n_required, bool) or int(n_required) != n_required or n_required < 1:
        raise ValueError(f"n_required must be a positive integer, got {n_required!r}")
    return _need(int(n_required), yield_estimate, ci_lower, ci_upper)
