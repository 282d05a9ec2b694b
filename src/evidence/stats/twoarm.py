"""Two-arm comparisons: Mantel-Haenszel pooling and single 2x2 tables.

:func:`rma_mh` reproduces metafor 3.8-1 ``rma.mh`` for ``measure="OR"``, ``"RR"`` and
``"RD"``:

* the pooled estimate uses the raw counts (no continuity correction; metafor's
  ``add[2] = 0, to[2] = "none"``); its variance is Robins-Breslow-Greenland's for
  the log odds ratio, Greenland-Robins' for the log risk ratio and the Sato /
  Greenland-Robins estimator metafor uses for the risk difference;
* Cochran's Q, I2 and H2 use the study effects from ``escalc(measure, add, to,
  drop00 = TRUE)``: tables without events (or with only events) in both groups do
  not enter Q, though they stay in the Mantel-Haenszel sums;
* for the odds ratio also the Cochran-Mantel-Haenszel test (with ``correct=True``
  the continuity correction 1/2), Cochran's variant with ``N`` instead of ``N - 1``,
  and the Breslow-Day and Tarone tests of homogeneity.

:func:`two_arm_effect` is the effect of one two-arm study (e.g. a trial arm against
its control group): escalc's estimate with a Wald CI and Fisher's exact test.

References
----------
Robins J, Breslow N, Greenland S (1986). Estimators of the Mantel-Haenszel variance
consistent in both sparse data and large-strata limiting models. Biometrics 42:311-323.
Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse
follow-up data. Biometrics 41:55-68.
Tarone RE (1985). On heterogeneity tests based on efficient scores. Biometrika 72:91-95.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from evidence.stats.checks import check_level, check_study_ids
from evidence.stats.results import Pooled, jsonable
from evidence.stats.vocabulary import TWO_GROUP_MEASURES, check_measure, check_to

__all__ = ["MHResult", "TwoArmEffect", "effect_columns", "rma_mh", "two_arm_effect"]




def _cells(**cells: Any) -> dict[str, np.ndarray]:
    out = {}
    for name, values in cells.items():
        arr = np.atleast_1d(np.asarray(values, dtype=float))
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (no missing values)")
        if np.any(arr < 0) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold non-negative whole numbers")
        out[name] = arr
    sizes = {a.size for a in out.values()}
    if len(sizes) != 1:
        raise ValueError("the cell counts differ in length: "
                         + ", ".join(f"{k}={v.size}" for k, v in out.items()))
    if next(iter(sizes)) == 0:
        raise ValueError("no tables (k = 0)")
    return out


def _transform(measure: str) -> str:
    return "identity" if measure == "RD" else "exp"


def _back(measure: str, v: float) -> float:
    return v if measure == "RD" else math.exp(v) if math.isfinite(v) else math.nan


def effect_columns(ai: np.ndarray, n1i: np.ndarray, ci: np.ndarray, n2i: np.ndarray,
                    measure: str, *, add: float, to: str, level: float
                    ) -> dict[str, np.ndarray]:
    """Effect size and Wald CI of each 2x2 table on its own (counts already checked).

    Returns arrays ``yi, vi, se, ci_lower, ci_upper`` (the measure's scale), ``pred,
    pred_ci_lower, pred_ci_upper`` (back-transformed) and ``corrected`` (``add`` applied).
    Shared by :func:`two_arm_effect` (one table) and
    :func:`evidence.book.chapters.two_arm_effects` (many, one call per measure).
    """
    from evidence.stats.distributions import norm_quantile_upper
    from evidence.stats.effects import escalc

    # each table on its own: for a single table "if0all" is "only0"
    es = escalc(measure, ai=ai, n1i=n1i, ci=ci, n2i=n2i, add=float(add),
                to="only0" if to == "if0all" else to)
    yi, vi = np.asarray(es.yi, dtype=float), np.asarray(es.vi, dtype=float)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.where(vi >= 0, vi, np.nan))
    crit = norm_quantile_upper((1.0 - level) / 2.0)
    lo, hi = yi - crit * se, yi + crit * se
    back = [np.asarray([_back(measure, float(v)) for v in x], dtype=float) for x in (yi, lo, hi)]
    corrected = (np.asarray(es.corrected, dtype=bool) if es.corrected is not None
                 else np.zeros(yi.size, dtype=bool))
    return {"yi": yi, "vi": vi, "se": se, "ci_lower": lo, "ci_upper": hi, "pred": back[0],
            "pred_ci_lower": back[1], "pred_ci_upper": back[2], "corrected": corrected}


# --------------------------------------------------------------------------------------
# Mantel-Haenszel


@dataclass(frozen=True)
class MHResult:
    """Result of :func:`rma_mh` (metafor's ``rma.mh`` object, snake_case).

    Attributes
    ----------
    measure : str
        ``"OR"``, ``"RR"`` or ``"RD"``.
    k, k_yi : int
        Tables in the Mantel-Haenszel sums, and studies with an escalc effect (those
        entering Q).
    estimate, se, zval, pval, ci_lower, ci_upper : float
        On the measure's scale: log odds/risk ratio, or risk difference (NaN when
        the estimate does not exist, e.g. no events in one group overall).
    pred, pred_ci_lower, pred_ci_upper : float
        Back-transformed (``exp`` for OR/RR, identity for RD), as metafor's
        ``predict(res, transf=exp)``.
    q, q_df, q_pvalue, i2, h2 : float, int, float, float, float
        Cochran's Q about the MH estimate and metafor's I2 (percent) and H2 from it.
    cmh, cmh_pvalue : float
        OR only: Cochran-Mantel-Haenszel test (metafor ``MH``; continuity-corrected
        when ``correct``); NaN otherwise.
    cochran, cochran_pvalue : float
        OR only: Cochran's version with ``N`` in place of ``N - 1`` (metafor ``CO``).
    tarone, tarone_pvalue, breslow_day, breslow_day_pvalue : float
        OR only: Tarone's and the Breslow-Day homogeneity tests on ``k_pos - 1`` df
        (p-values NaN when ``k_pos < 2``).
    k_pos : int or None
        OR only: tables informative for the Breslow-Day/Tarone tests.
    yi, vi : numpy.ndarray
        escalc effects and variances (NaN for dropped tables).
    study_ids : tuple of str
        One label per table.
    correct, level, add, to : bool, float, float, str
        The options used.
    notes : tuple of str
        Warnings for the reader.
    """

    measure: str
    k: int
    k_yi: int
    estimate: float
    se: float
    zval: float
    pval: float
    ci_lower: float
    ci_upper: float
    pred: float
    pred_ci_lower: float
    pred_ci_upper: float
    q: float
    q_df: int
    q_pvalue: float
    i2: float
    h2: float
    cmh: float
    cmh_pvalue: float
    cochran: float
    cochran_pvalue: float
    tarone: float
    tarone_pvalue: float
    breslow_day: float
    breslow_day_pvalue: float
    k_pos: int | None
    yi: np.ndarray
    vi: np.ndarray
    study_ids: tuple[str, ...]
    correct: bool = True
    level: float = 0.95
    add: float = 0.5
    to: str = "only0"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def transform(self) -> str:
        """``"exp"`` for OR/RR, ``"identity"`` for RD."""
        return _transform(self.measure)

    def pooled(self) -> Pooled:
        """The estimate and CI on the natural scale (no prediction interval: PI = CI)."""
        return Pooled(self.pred, self.pred_ci_lower, self.pred_ci_upper,
                      self.pred_ci_lower, self.pred_ci_upper, transform=self.transform)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return jsonable(asdict(self))


def rma_mh(ai: Any, bi: Any, ci: Any, di: Any, measure: str = "OR", *, add: float = 0.5,
           to: str = "only0", study_ids: Sequence[Any] | None = None, level: float = 0.95,
           correct: bool = True) -> MHResult:
    """Mantel-Haenszel common-effect meta-analysis of 2x2 tables (metafor's ``rma.mh``).

    Parameters
    ----------
    ai, bi, ci, di : array_like of int
        Events and non-events in group 1 (``ai``, ``bi``) and group 2 (``ci``, ``di``).
    measure : {"OR", "RR", "RD"}
        Odds ratio, risk ratio or risk difference.
    add, to : float, {"only0", "all", "if0all", "none"}
        Continuity correction for the study effects ``yi``/``vi`` that enter Q (not
        for the Mantel-Haenszel estimate), as metafor's ``add``/``to``.
    study_ids : sequence of str, optional
        One label per table.
    level : float
        Confidence level (0.95 = 95%).
    correct : bool
        Continuity correction of the Cochran-Mantel-Haenszel test (OR).

    Returns
    -------
    MHResult
        Estimate, Wald CI, Q/I2/H2 and, for OR, the CMH and Tarone tests.

    Raises
    ------
    ValueError
        Unknown ``measure``/``to``, bad counts, or bad ``level``.
    """
    from evidence.stats.distributions import norm_quantile_upper, p_chisq, p_norm2
    from evidence.stats.effects import escalc

    measure = check_measure(measure, TWO_GROUP_MEASURES)
    to = check_to(to)
    level = check_level(level)
    if not (math.isfinite(float(add)) and float(add) >= 0):
        raise ValueError(f"add must be a non-negative number, got {add!r}")
    c = _cells(ai=ai, bi=bi, ci=ci, di=di)
    a, b, cc, d = c["ai"], c["bi"], c["ci"], c["di"]
    k = a.size
    if np.any(a + b == 0) or np.any(cc + d == 0):
        raise ValueError("every group needs at least one patient (ai + bi > 0, ci + di > 0)")
    ids = check_study_ids(study_ids, k)
    if len(ids) != k:
        raise ValueError(f"study_ids has {len(ids)} entries for {k} tables")

    # escalc with drop00 = TRUE: metafor drops the double-zero tables before applying
    # add/to, so they cannot trigger to = "if0all".
    id00 = ((a == 0) & (cc == 0)) | ((b == 0) & (d == 0))
    yi = np.full(k, np.nan)
    vi = np.full(k, np.nan)
    keep = ~id00
    notes: list[str] = []
    if keep.any():
        es = escalc(measure, ai=a[keep], bi=b[keep], ci=cc[keep], di=d[keep], add=float(add),
                    to=to)
        yi[keep], vi[keep] = es.yi, es.vi
    if id00.any():
        notes.append(f"{int(id00.sum())} table(s) without events (or with only events) in "
                     "both groups: kept in the Mantel-Haenszel sums, left out of Q")

    n1, n2 = a + b, cc + d
    n = n1 + n2
    crit = norm_quantile_upper((1.0 - level) / 2.0)
    nan = math.nan
    est = se = nan
    tests = dict(cmh=nan, cmh_pvalue=nan, cochran=nan, cochran_pvalue=nan, tarone=nan,
                 tarone_pvalue=nan, breslow_day=nan, breslow_day_pvalue=nan)
    k_pos: int | None = None
    if measure == "OR":
        p_i, q_i = a / n + d / n, b / n + cc / n
        r_i, s_i = (a / n) * d, (b / n) * cc
        r, s = float(np.sum(r_i)), float(np.sum(s_i))
        if r > 0 and s > 0:
            est = math.log(r / s)
            se = math.sqrt(0.5 * (np.sum(p_i * r_i) / r**2 + np.sum(p_i * s_i + q_i * r_i)
                                  / (r * s) + np.sum(q_i * s_i) / s**2))
        else:
            notes.append("no Mantel-Haenszel odds ratio: a sum of a*d/N or b*c/N is 0")
        tests.update(_cmh(a, n1, n2, n, cc, b, d, correct))
        tests_het, k_pos = _tarone(est, a, n1, n2, n, cc, b, d)
        tests.update(tests_het)
    elif measure == "RR":
        r = float(np.sum(a * (n2 / n)))
        s = float(np.sum(cc * (n1 / n)))
        if np.sum(a) > 0 and np.sum(cc) > 0:
            est = math.log(r / s)
            se = math.sqrt(np.sum((n1 / n) * (n2 / n) * (a + cc) - (a / n) * cc) / (r * s))
        else:
            notes.append("no Mantel-Haenszel risk ratio: no events in one group overall")
    else:  # RD
        w = float(np.sum(n1 * (n2 / n)))
        est = float(np.sum(a * (n2 / n) - cc * (n1 / n)) / w)
        se = math.sqrt((est * np.sum(cc * (n1 / n) ** 2 - a * (n2 / n) ** 2
                                     + (n1 / n) * (n2 / n) * (n2 - n1) / 2)
                        + np.sum(a * (n2 - cc) / n + cc * (n1 - a) / n) / 2) / w**2)
    zval = est / se if math.isfinite(est) else nan
    pval = float(p_norm2(zval)) if math.isfinite(zval) else nan
    lo, hi = est - crit * se, est + crit * se

    ok = np.isfinite(yi) & np.isfinite(vi)
    k_yi = int(ok.sum())
    if ok.sum() < k:
        dropped = int(k - ok.sum() - id00.sum())
        if dropped:
            notes.append(f"{dropped} table(s) without a finite escalc effect left out of Q")
    if k_yi > 1:
        q = max(0.0, float(np.sum((yi[ok] - est) ** 2 / vi[ok]))) if math.isfinite(est) else nan
        q_p = p_chisq(q, k_yi - 1) if math.isfinite(q) else nan
        with np.errstate(divide="ignore", invalid="ignore"):
            i2 = max(0.0, 100.0 * (q - (k_yi - 1)) / q) if q > 0 else (0.0 if q == 0 else nan)
        h2 = q / (k_yi - 1)
    else:
        q, q_p, i2, h2 = 0.0, 1.0, 0.0, 1.0
    return MHResult(
        measure=measure, k=k, k_yi=k_yi, estimate=est, se=se, zval=zval, pval=pval,
        ci_lower=lo, ci_upper=hi, pred=_back(measure, est), pred_ci_lower=_back(measure, lo),
        pred_ci_upper=_back(measure, hi), q=q, q_df=max(k_yi - 1, 0), q_pvalue=q_p, i2=i2,
        h2=h2, k_pos=k_pos, yi=yi, vi=vi, study_ids=ids, correct=bool(correct), level=level,
        add=float(add), to=to, notes=tuple(notes), **tests)


def _cmh(a: np.ndarray, n1: np.ndarray, n2: np.ndarray, n: np.ndarray, c: np.ndarray,
         b: np.ndarray, d: np.ndarray, correct: bool) -> dict[str, float]:
    """Cochran-Mantel-Haenszel (``MH``) and Cochran's (``CO``) tests, metafor's formulas."""
    from evidence.stats.distributions import p_chisq

    xt, yt = a + c, b + d
    if np.sum(xt) == 0 or np.sum(yt) == 0:
        return {}
    cc = 0.5 if correct else 0.0
    num = (abs(float(np.sum(a - (n1 / n) * xt))) - cc) ** 2
    co = num / float(np.sum((n1 / n) * (n2 / n) * (xt * (yt / n))))
    mh = num / float(np.sum((n1 / n) * (n2 / n) * (xt * (yt / (n - 1)))))
    return {"cmh": mh, "cmh_pvalue": p_chisq(mh, 1),
            "cochran": co, "cochran_pvalue": p_chisq(co, 1)}


def _tarone(est: float, a: np.ndarray, n1: np.ndarray, n2: np.ndarray, n: np.ndarray,
            c: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[dict[str, float], int]:
    """Breslow-Day and Tarone tests at the MH odds ratio (metafor's formulas)."""
    from evidence.stats.distributions import p_chisq

    if not math.isfinite(est):
        return {}, 0
    psi = math.exp(est)
    xt, yt = a + c, b + d
    if psi == 1.0:
        n11 = (n1 / n) * xt
    else:
        big_a = psi * (n1 + xt) + (n2 - xt)
        big_b = np.sqrt(big_a**2 - 4.0 * n1 * xt * psi * (psi - 1.0))
        n11 = (big_a - big_b) / (2.0 * (psi - 1.0))
    pos = (n11 > 0) & (xt > 0) & (yt > 0)
    k_pos = int(pos.sum())
    e11 = n11[pos]
    e12 = n1[pos] - e11
    e21 = xt[pos] - e11
    e22 = e11 - n1[pos] - xt[pos] + n[pos]
    inv_var = 1.0 / (1.0 / e11 + 1.0 / e12 + 1.0 / e21 + 1.0 / e22)
    dev = a[pos] - e11
    bd = max(0.0, float(np.sum(dev**2 / inv_var)))
    ta = max(0.0, bd - float(np.sum(dev)) ** 2 / float(np.sum(inv_var)))
    out = {"breslow_day": bd, "tarone": ta}
    if k_pos > 1:
        out["breslow_day_pvalue"] = p_chisq(bd, k_pos - 1)
        out["tarone_pvalue"] = p_chisq(ta, k_pos - 1)
    return out, k_pos


# --------------------------------------------------------------------------------------
# one two-arm study


@dataclass(frozen=True)
class TwoArmEffect:
    """Effect of one two-arm study (group 1 against group 2).

    Attributes
    ----------
    measure : str
        ``"OR"``, ``"RR"`` or ``"RD"``.
    ai, n1i, ci, n2i : int
        Events and group sizes (uncorrected).
    yi, vi, se : float
        escalc's effect (log OR/RR or RD) and sampling variance (``add = 1/2,
        to = "only0"`` unless told otherwise).
    ci_lower, ci_upper : float
        Wald interval ``yi -/+ z * se`` on the measure's scale.
    pred, pred_ci_lower, pred_ci_upper : float
        Back-transformed (``exp`` for OR/RR, identity for RD).
    fisher_pvalue : float
        Two-sided Fisher's exact test of the 2x2 table (R's ``fisher.test``).
    corrected : bool
        Whether ``add`` was applied.
    level : float
        Confidence level.
    """

    measure: str
    ai: int
    n1i: int
    ci: int
    n2i: int
    yi: float
    vi: float
    se: float
    ci_lower: float
    ci_upper: float
    pred: float
    pred_ci_lower: float
    pred_ci_upper: float
    fisher_pvalue: float
    corrected: bool
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return jsonable(asdict(self))


def two_arm_effect(ai: int, n1i: int, ci: int, n2i: int, measure: str = "OR", *,
                   add: float = 0.5, to: str = "only0", level: float = 0.95) -> TwoArmEffect:
    """Effect size, Wald CI and Fisher's exact test for a single two-arm study.

    Parameters
    ----------
    ai, n1i : int
        Events and patients in group 1 (e.g. the trastuzumab arm).
    ci, n2i : int
        Events and patients in group 2 (e.g. the control group).
    measure : {"OR", "RR", "RD"}
        Effect measure.
    add, to : float, str
        Zero-cell handling for ``yi``/``vi`` (metafor's escalc defaults).
    level : float
        Confidence level.

    Returns
    -------
    TwoArmEffect
        ``yi``, ``vi``, Wald CI on the measure's scale and back-transformed, and the
        two-sided Fisher exact p-value.

    Examples
    --------
    Verschoor 2024: objective response 4/8 with trastuzumab against 5/25 without.

    >>> e = two_arm_effect(4, 8, 5, 25, "OR")
    >>> round(e.pred, 6)
    4.0
    """
    from evidence.stats.distributions import fisher_exact

    measure = check_measure(measure, TWO_GROUP_MEASURES)
    to = check_to(to)
    level = check_level(level)
    cells = _cells(ai=ai, n1i=n1i, ci=ci, n2i=n2i)
    if any(v.size != 1 for v in cells.values()):
        raise ValueError("two_arm_effect takes one table; use rma_mh for several")
    a, m1, c, m2 = (int(cells[k][0]) for k in ("ai", "n1i", "ci", "n2i"))
    if m1 == 0 or m2 == 0 or a > m1 or c > m2:
        raise ValueError(f"need 0 <= ai <= n1i, 0 <= ci <= n2i and n1i, n2i > 0 "
                         f"(got {a}/{m1} vs {c}/{m2})")
    col = effect_columns(np.array([a]), np.array([m1]), np.array([c]), np.array([m2]),
                          measure, add=add, to=to, level=level)
    e = {k: v[0] for k, v in col.items()}
    return TwoArmEffect(
        measure=measure, ai=a, n1i=m1, ci=c, n2i=m2, yi=float(e["yi"]), vi=float(e["vi"]),
        se=float(e["se"]), ci_lower=float(e["ci_lower"]), ci_upper=float(e["ci_upper"]),
        pred=float(e["pred"]), pred_ci_lower=float(e["pred_ci_lower"]),
        pred_ci_upper=float(e["pred_ci_upper"]), fisher_pvalue=fisher_exact(a, m1 - a, c, m2 - c),
        corrected=bool(e["corrected"]), level=level)
