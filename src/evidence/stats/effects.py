"""Study-level effect sizes, exactly as metafor 3.8-1's ``escalc``.

Single proportions (``xi`` events out of ``ni``):

========  ============================================  ============================
measure   ``yi``                                        ``vi``
========  ============================================  ============================
``PR``    ``p = xi / ni``                               ``p (1 - p) / ni``
``PLO``   ``log(p / (1 - p))``                          ``1 / xi + 1 / (ni - xi)``
``PAS``   ``asin(sqrt(p))``                             ``1 / (4 ni)``
``PFT``   ``(asin(sqrt(xi / (ni + 1)))``                ``1 / (4 ni + 2)``
          ``+ asin(sqrt((xi + 1) / (ni + 1)))) / 2``
========  ============================================  ============================

Two groups (``ai`` events / ``bi`` non-events in group 1, ``ci`` / ``di`` in group 2):
``RR`` (log risk ratio, ``vi = 1/ai - 1/n1i + 1/ci - 1/n2i``), ``OR`` (log odds ratio,
``vi = 1/ai + 1/bi + 1/ci + 1/di``), ``RD`` (risk difference,
``vi = p1 (1 - p1) / n1i + p2 (1 - p2) / n2i``).

Zero cells, as metafor: ``add`` is added to every cell of a study (``xi`` and
``ni - xi``; or ``ai, bi, ci, di``) when ``to="only0"`` and the study has a zero
cell (for proportions: 0 events or all events), to every study with ``to="all"``,
to every study if any has a zero cell with ``to="if0all"``, never with ``to="none"``.
The corrected counts are used for both ``yi`` and ``vi``, for every measure
(including ``PR`` and ``RD``).  metafor's default ``add`` is 1/2, except for
``PAS`` and ``PFT`` where it is 0 (they need no correction); ``add=None`` here
means exactly that default.  Values that come out infinite or undefined (e.g.
``PLO`` with 0 events and ``add=0``) are NaN, and :func:`evidence.stats.pooling.rma`
omits such studies, as metafor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evidence.stats.checks import check_counts, check_level, check_study_ids, critical_value
from evidence.stats.results import EffectSizes
from evidence.stats.vocabulary import (
    ESCALC_MEASURES,
    NO_ADD_BY_DEFAULT,
    PROPORTION_MEASURES,
    check_measure,
    check_to,
)

__all__ = [
    "escalc",
    "hazard_ratios",
    "log_hr_from_ci",
    "log_hr_from_p",
    "proportion_ci",
    "subset_studies",
]



def _same_length(arrays: dict[str, np.ndarray]) -> int:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("supplied data vectors are not all of the same length: "
                         + ", ".join(f"{n}={m}" for n, m in lengths.items()))
    return next(iter(lengths.values()))


def _zero_mask(has_zero: np.ndarray, to: str, add: float) -> np.ndarray:
    if to == "all":
        mask = np.ones_like(has_zero)
    elif to == "only0":
        mask = has_zero.copy()
    elif to == "if0all":
        mask = np.full_like(has_zero, bool(has_zero.any()))
    else:
        mask = np.zeros_like(has_zero)
    return mask


def _clean(yi: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """metafor: +-Inf and NaN become missing (NaN here); negative vi become missing."""
    bad = ~np.isfinite(yi) | ~np.isfinite(vi)
    yi = np.where(bad, np.nan, yi)
    vi = np.where(bad | (vi < 0), np.nan, vi)
    return yi, vi


def escalc(measure: str, *, xi: Any = None, ni: Any = None, ai: Any = None, bi: Any = None,
           ci: Any = None, di: Any = None, n1i: Any = None, n2i: Any = None,
           add: float | None = None, to: str = "only0", drop00: bool = False,
           study_ids: Sequence[Any] | None = None) -> EffectSizes:
    """Effect sizes and sampling variances, as ``metafor::escalc``.

    Parameters
    ----------
    measure : {"PLO", "PFT", "PAS", "PR", "RR", "OR", "RD"}
        metafor's measure code.
    xi, ni : array-like of int
        Events and sample sizes (single-group measures).
    ai, bi, ci, di : array-like of int
        Two-group 2x2 cells: events / non-events in group 1 (``ai``/``bi``) and
        group 2 (``ci``/``di``).  ``bi``/``di`` may be replaced by the group sizes.
    n1i, n2i : array-like of int
        Group sizes (alternative to ``bi``/``di``; checked against them if both given).
    add : float, optional
        Continuity correction; None means metafor's default (1/2, but 0 for
        ``PAS`` and ``PFT``).
    to : {"only0", "all", "if0all", "none"}
        Which studies get ``add`` (see the module docstring).
    drop00 : bool
        Two-group measures: studies with no events (or only events) in both groups
        get NaN ``yi``/``vi`` (metafor's ``drop00``).  Ignored for proportions, as
        in metafor.
    study_ids : sequence of str, optional
        Labels; default ``"study 1"``, ``"study 2"``, ...

    Returns
    -------
    EffectSizes
        ``xi``/``ni`` hold the uncorrected counts for single-group measures;
        ``corrected`` flags the studies that received ``add`` (> 0).

    Raises
    ------
    ValueError
        Unknown ``measure``/``to``, missing inputs, unequal lengths, counts that are
        negative, not whole, or larger than their group size, group sizes of 0.
    """
    check_measure(measure, ESCALC_MEASURES)
    check_to(to)
    if add is None:
        add = 0.0 if measure in NO_ADD_BY_DEFAULT else 0.5
    add = float(add)
    if not np.isfinite(add) or add < 0:
        raise ValueError(f"add must be a finite number >= 0, got {add!r}")
    if measure in PROPORTION_MEASURES:
        return _escalc_proportion(measure, xi, ni, add, to, study_ids)
    return _escalc_two_group(measure, ai, bi, ci, di, n1i, n2i, add, to, drop00, study_ids)


def _escalc_proportion(measure: str, xi: Any, ni: Any, add: float, to: str,
                       study_ids: Sequence[Any] | None) -> EffectSizes:
    if xi is None or ni is None:
        raise ValueError(f"measure {measure!r} needs xi (events) and ni (sample sizes)")
    x = check_counts("xi", xi)
    n = check_counts("ni", ni)
    k = _same_length({"xi": x, "ni": n})
    ids = check_study_ids(study_ids, k)
    if (n <= 0).any():
        raise ValueError(f"ni: group sizes must be > 0; not at position(s) "
                         f"{np.flatnonzero(n <= 0).tolist()}")
    if (x > n).any():
        raise ValueError(f"xi > ni (more events than patients) at position(s) "
                         f"{np.flatnonzero(x > n).tolist()}")
    mi = n - x
    mask = _zero_mask((x == 0) | (mi == 0), to, add)
    xc = np.where(mask, x + add, x)
    mc = np.where(mask, mi + add, mi)
    nc = xc + mc
    pri = xc / nc
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            yi = pri
            vi = pri * (1 - pri) / nc
        elif measure == "PLO":
            yi = np.log(pri / (1 - pri))
            vi = 1 / xc + 1 / mc
        elif measure == "PAS":
            yi = np.arcsin(np.sqrt(pri))
            vi = 1 / (4 * nc)
        else:  # PFT
            yi = 1 / 2 * (np.arcsin(np.sqrt(xc / (nc + 1))) + np.arcsin(np.sqrt((xc + 1)
                                                                                / (nc + 1))))
            vi = 1 / (4 * nc + 2)
    yi, vi = _clean(np.asarray(yi, dtype=float), np.asarray(vi, dtype=float))
    return EffectSizes(measure=measure, yi=yi, vi=vi, study_ids=ids, xi=x, ni=n,
                       corrected=mask & (add > 0), add=add, to=to)


def _escalc_two_group(measure: str, ai: Any, bi: Any, ci: Any, di: Any, n1i: Any, n2i: Any,
                      add: float, to: str, drop00: bool,
                      study_ids: Sequence[Any] | None) -> EffectSizes:
    if ai is None or ci is None or (bi is None and n1i is None) or (di is None and n2i is None):
        raise ValueError(f"measure {measure!r} needs ai and ci, plus bi or n1i and di or n2i")
    arrays = {"ai": check_counts("ai", ai), "ci": check_counts("ci", ci)}
    for name, val in (("bi", bi), ("di", di), ("n1i", n1i), ("n2i", n2i)):
        if val is not None:
            arrays[name] = check_counts(name, val)
    k = _same_length(arrays)
    ids = check_study_ids(study_ids, k)
    a, c = arrays["ai"], arrays["ci"]
    for cell, size, event in (("bi", "n1i", "ai"), ("di", "n2i", "ci")):
        if size in arrays:
            if (arrays[size] <= 0).any():
                raise ValueError(f"{size}: group sizes must be > 0; not at position(s) "
                                 f"{np.flatnonzero(arrays[size] <= 0).tolist()}")
            if (arrays[event] > arrays[size]).any():
                raise ValueError(f"{event} > {size} (more events than patients) at "
                                 f"position(s) "
                                 f"{np.flatnonzero(arrays[event] > arrays[size]).tolist()}")
            if cell in arrays:
                bad = arrays[size] != arrays[event] + arrays[cell]
                if bad.any():
                    raise ValueError(f"{size} != {event} + {cell} at position(s) "
                                     f"{np.flatnonzero(bad).tolist()}")
            else:
                arrays[cell] = arrays[size] - arrays[event]
    b, d = arrays["bi"], arrays["di"]
    if ((a + b) <= 0).any() or ((c + d) <= 0).any():
        raise ValueError("group sizes (ai + bi, ci + di) must be > 0")
    mask = _zero_mask((a == 0) | (b == 0) | (c == 0) | (d == 0), to, add)
    ac, bc = np.where(mask, a + add, a), np.where(mask, b + add, b)
    cc, dc = np.where(mask, c + add, c), np.where(mask, d + add, d)
    n1, n2 = ac + bc, cc + dc
    p1, p2 = ac / n1, cc / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / ac - 1 / n1 + 1 / cc - 1 / n2
        elif measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / ac + 1 / bc + 1 / cc + 1 / dc
        else:  # RD
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    yi, vi = _clean(np.asarray(yi, dtype=float), np.asarray(vi, dtype=float))
    if drop00:
        id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        yi = np.where(id00, np.nan, yi)
        vi = np.where(id00, np.nan, vi)
    return EffectSizes(measure=measure, yi=yi, vi=vi, study_ids=ids, xi=None, ni=None,
                       corrected=mask & (add > 0), add=add, to=to)


def subset_studies(es: EffectSizes, index: Any) -> EffectSizes:
    """The studies selected by ``index`` (integer positions or a boolean mask).

    Parameters
    ----------
    es : EffectSizes
        All studies.
    index : array-like of int or bool
        Which studies to keep, in the order given.

    Returns
    -------
    EffectSizes
        Same measure and zero handling; ``xi``/``ni``/``corrected`` subset alike.
    """
    idx = np.asarray(index)
    if idx.dtype == bool:
        if idx.shape != (es.k,):
            raise ValueError(f"boolean index of shape {idx.shape} for {es.k} studies")
        idx = np.flatnonzero(idx)
    idx = idx.astype(int)

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a)[idx]

    return EffectSizes(measure=es.measure, yi=np.asarray(es.yi)[idx],
                       vi=np.asarray(es.vi)[idx],
                       study_ids=tuple(es.study_ids[i] for i in idx), xi=pick(es.xi),
                       ni=pick(es.ni), corrected=pick(es.corrected), add=es.add, to=es.to)


# --------------------------------------------------------------------------- hazard ratios


def _positive(name: str, values: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    if not (np.isfinite(arr) & (arr > 0)).all():
        raise ValueError(f"{name}: must be finite and > 0, got {arr.tolist()}")
    return arr


def log_hr_from_ci(estimate: Any, ci_lower: Any, ci_upper: Any,
                   level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Log hazard ratio and its variance from a reported ratio and its confidence interval.

    ``yi = log(HR)``, ``se = (log(upper) - log(lower)) / (2 z)`` with
    ``z = qnorm(1 - (1 - level) / 2)``, ``vi = se^2``.

    Parameters
    ----------
    estimate, ci_lower, ci_upper : float or array-like
        Hazard (or other) ratios and their CI limits, all > 0.
    level : float
        Confidence level of the reported interval.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``yi`` and ``vi``.

    Raises
    ------
    ValueError
        Non-positive values, ``lower >= upper`` or an estimate outside its interval.
    """
    hr = _positive("estimate", estimate)
    lo = _positive("ci_lower", ci_lower)
    hi = _positive("ci_upper", ci_upper)
    _same_length({"estimate": hr, "ci_lower": lo, "ci_upper": hi})
    if (lo >= hi).any():
        raise ValueError(f"ci_lower must be < ci_upper at position(s) "
                         f"{np.flatnonzero(lo >= hi).tolist()}")
    outside = (hr < lo) | (hr > hi)
    if outside.any():
        raise ValueError(f"estimate outside its confidence interval at position(s) "
                         f"{np.flatnonzero(outside).tolist()}")
    se = (np.log(hi) - np.log(lo)) / (2.0 * critical_value(level))
    return np.log(hr), se ** 2


def log_hr_from_p(estimate: Any, p_value: Any) -> tuple[np.ndarray, np.ndarray]:
    """Log hazard ratio and its variance from a ratio and its two-sided p-value.

    ``z = qnorm(1 - p / 2)``, ``se = |log HR| / z``, ``vi = se^2``.

    Parameters
    ----------
    estimate : float or array-like
        Ratios, > 0 and != 1 (a ratio of 1 carries no information on the SE).
    p_value : float or array-like
        Two-sided p-values in (0, 1).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``yi`` and ``vi``.
    """
    from evidence.stats._special import ndtri

    hr = _positive("estimate", estimate)
    p = np.atleast_1d(np.asarray(p_value, dtype=float))
    _same_length({"estimate": hr, "p_value": p})
    if not (np.isfinite(p) & (p > 0) & (p < 1)).all():
        raise ValueError(f"p_value must be in (0, 1), got {p.tolist()}")
    if (hr == 1).any():
        raise ValueError("a ratio of exactly 1 with only a p-value gives no standard error "
                         f"(position(s) {np.flatnonzero(hr == 1).tolist()})")
    z = -ndtri(p / 2.0)
    se = np.abs(np.log(hr)) / z
    return np.log(hr), se ** 2


def hazard_ratios(estimates: Any, ci_lower: Any = None, ci_upper: Any = None,
                  p_values: Any = None, study_ids: Sequence[Any] | None = None,
                  level: float = 0.95) -> EffectSizes:
    """Log hazard ratios for pooling, from CIs where reported, else from p-values.

    Parameters
    ----------
    estimates : array-like of float
        Hazard ratios.
    ci_lower, ci_upper : array-like of float, optional
        CI limits (NaN/None where not reported).
    p_values : array-like of float, optional
        Two-sided p-values (NaN/None where not reported).
    study_ids : sequence of str, optional
        Labels.
    level : float
        Confidence level of the reported intervals.

    Returns
    -------
    EffectSizes
        ``measure="HR"``; ``yi`` = log HR.

    Raises
    ------
    ValueError
        A study with neither a complete CI nor a p-value, or invalid values.
    """
    hr = _positive("estimates", estimates)
    k = hr.shape[0]

    def optional(name: str, values: Any) -> np.ndarray:
        if values is None:
            return np.full(k, np.nan)
        arr = np.atleast_1d(np.array([np.nan if v is None else v for v in
                                      np.atleast_1d(np.asarray(values, dtype=object))],
                                     dtype=float))
        if arr.shape != (k,):
            raise ValueError(f"{name} has {arr.shape[0]} entries for {k} studies")
        return arr

    lo, hi, p = optional("ci_lower", ci_lower), optional("ci_upper", ci_upper), optional(
        "p_values", p_values)
    ids = check_study_ids(study_ids, k)
    use_ci = np.isfinite(lo) & np.isfinite(hi)
    use_p = ~use_ci & np.isfinite(p)
    missing = ~use_ci & ~use_p
    if missing.any():
        raise ValueError("no complete CI and no p-value for "
                         + ", ".join(ids[i] for i in np.flatnonzero(missing)))
    yi = np.log(hr)
    vi = np.full(k, np.nan)
    if use_ci.any():
        _, vi[use_ci] = log_hr_from_ci(hr[use_ci], lo[use_ci], hi[use_ci], level)
    if use_p.any():
        _, vi[use_p] = log_hr_from_p(hr[use_p], p[use_p])
    return EffectSizes(measure="HR", yi=yi, vi=vi, study_ids=ids, add=0.0, to="none")


# --------------------------------------------------------------------------- study CIs


def proportion_ci(xi: Any, ni: Any, method: str = "clopper-pearson",
                  level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of each study's proportion ``xi / ni``.

    Parameters
    ----------
    xi, ni : array-like of int
        Events and sample sizes.
    method : {"clopper-pearson", "wilson"}
        Exact Clopper-Pearson (R's ``binom.test``) or the Wilson score interval
        without continuity correction (the formulas of statsmodels'
        ``proportion_confint``, ``"beta"`` and ``"wilson"``; see
        :mod:`evidence.stats.distributions`).
    level : float
        Confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper limits, within [0, 1].
    """
    from evidence.stats.distributions import clopper_pearson, wilson

    methods = {"clopper-pearson": clopper_pearson, "wilson": wilson}
    if method not in methods:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(methods)}")
    level = check_level(level)
    x = check_counts("xi", xi)
    n = check_counts("ni", ni)
    _same_length({"xi": x, "ni": n})
    if (n <= 0).any():
        raise ValueError("ni: group sizes must be > 0")
    if (x > n).any():
        raise ValueError(f"xi > ni at position(s) {np.flatnonzero(x > n).tolist()}")
    lo, hi = methods[method](x, n, level)
    lo = np.clip(np.asarray(lo, dtype=float), 0.0, 1.0)
    hi = np.clip(np.asarray(hi, dtype=float), 0.0, 1.0)
    return lo, hi
