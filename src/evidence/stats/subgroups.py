"""Subgroups: separate meta-analyses with the test between them, and comparisons of the
levels of a subgroup within one study.

* :func:`subgroup_analysis` fits each subgroup separately and tests the difference
  between subgroups with a common-effect model fitted to the subgroup estimates
  (metafor: ``rma(estimates, sei = se, method = "FE")``): Q-between on (groups - 1) df.
* :func:`compare_levels` compares a proportion between the levels of one subgroup within
  one study: Fisher's exact test for two levels (with the risk difference and its Wald
  CI), Pearson's chi-square test of independence for more, and the exact CI of each level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evidence.stats._rma import rma_fit
from evidence.stats.checks import check_count_pairs, check_level
from evidence.stats.effects import subset_studies
from evidence.stats.pooling import rma
from evidence.stats.results import EffectSizes, MetaResult, Summary
from evidence.stats.vocabulary import check_method, resolve_test

__all__ = ["LevelComparison", "SubgroupResult", "compare_levels", "subgroup_analysis"]

#: Tests :func:`compare_levels` chooses between.
LEVEL_TESTS = ("fisher", "chisq")


@dataclass(frozen=True)
class SubgroupResult:
    """Separate meta-analyses per subgroup and the test for subgroup differences.

    Attributes
    ----------
    groups : tuple of str
        Subgroup labels in analysis order.
    results : dict of str to MetaResult
        One fit per subgroup.
    single_study : tuple of str
        Subgroups with k = 1 (reported, flagged: no pooling within them).
    q_between, q_between_df, q_between_pvalue : float, int, float
        Q test of a common-effect model fitted to the subgroup estimates and their
        standard errors (metafor: ``rma(estimates, sei = se, method = "FE")``).
    """

    groups: tuple[str, ...]
    results: dict[str, MetaResult]
    single_study: tuple[str, ...]
    q_between: float
    q_between_df: int
    q_between_pvalue: float
    method: str
    measure: str
    knha: bool = False
    notes: tuple[str, ...] = ()

    def summary(self) -> Summary:
        """One row per subgroup: k, estimate, CI, PI (model scale and back-transformed),
        tau2, I2, Q, and the ``single_study`` flag."""
        rows = []
        for g in self.groups:
            r = self.results[g]
            pb = r.pooled()
            rows.append({"group": g, "k": r.k, "estimate": r.estimate, "se": r.se,
                         "ci_lower": r.ci_lower, "ci_upper": r.ci_upper,
                         "pi_lower": r.pi_lower, "pi_upper": r.pi_upper,
                         "back_estimate": pb.estimate, "back_ci_lower": pb.ci_lower,
                         "back_ci_upper": pb.ci_upper, "tau2": r.tau2, "i2": r.i2,
                         "q": r.q, "q_pvalue": r.q_pvalue,
                         "single_study": g in self.single_study})
        names = ("k", "estimate", "se", "ci_lower", "ci_upper", "pi_lower", "pi_upper",
                 "back_estimate", "back_ci_lower", "back_ci_upper", "tau2", "i2", "q",
                 "q_pvalue", "single_study")
        return Summary("group", tuple(r["group"] for r in rows),
                       {c: np.array([r[c] for r in rows]) for c in names})


def subgroup_analysis(es: EffectSizes, groups: Sequence[Any], method: str = "REML",
                      knha: bool = False, *, test: str | None = None,
                      levels: Sequence[Any] | None = None, level: float = 0.95,
                      control: Mapping[str, Any] | None = None) -> SubgroupResult:
    """Meta-analysis within each subgroup and the Q-between test of their difference.

    Parameters
    ----------
    es : EffectSizes
        All studies.
    groups : sequence
        Subgroup of each study.
    method : str
        Estimator within subgroups (see :func:`evidence.stats.pooling.rma`).
    knha : bool
        Knapp-Hartung within subgroups (their SEs then enter the Q-between test).
    test : {"z", "t", "knha", "adhoc"}, optional
        metafor's ``test`` within subgroups (``knha=True`` is ``test="knha"``).
    levels : sequence, optional
        Subgroup order; default sorted labels (R's factor order).
    level : float
        Confidence level.
    control : dict, optional
        As :func:`evidence.stats.pooling.rma`.

    Returns
    -------
    SubgroupResult
    """
    check_method(method)
    test = resolve_test(test, knha)
    labels = [str(g) for g in groups]
    if len(labels) != es.k:
        raise ValueError(f"groups has {len(labels)} entries for {es.k} studies")
    lv = [str(v) for v in levels] if levels is not None else sorted(set(labels))
    unknown = sorted(set(labels) - set(lv))
    if unknown:
        raise ValueError(f"groups {unknown} are not among the levels {lv}")
    arr = np.asarray(labels, dtype=object)
    results: dict[str, MetaResult] = {}
    notes: list[str] = []
    for g in lv:
        idx = np.flatnonzero(arr == g)
        if idx.size == 0:
            notes.append(f"subgroup {g!r} has no studies and was skipped.")
            continue
        results[g] = rma(subset_studies(es, idx), method, test=test, level=level,
                         control=control)
    used = tuple(results)
    single = tuple(g for g in used if results[g].k == 1)
    if single:
        notes.append("single-study subgroups (no pooling within them): " + ", ".join(single))
    if len(used) >= 2:
        est = np.array([results[g].estimate for g in used])
        var = np.array([results[g].se ** 2 for g in used])
        fit = rma_fit(est, var, np.ones((len(used), 1)), method="FE", knha=False,
                       level=level, tau2=None, control=None, int_incl=True)
        qb, qb_df, qb_p = fit.qe, len(used) - 1, fit.qe_pvalue
    else:
        qb, qb_df, qb_p = float("nan"), 0, float("nan")
        notes.append("fewer than two subgroups: no test for subgroup differences.")
    return SubgroupResult(groups=used, results=results, single_study=single, q_between=qb,
                          q_between_df=qb_df, q_between_pvalue=qb_p, method=method,
                          measure=es.measure, knha=test == "knha", notes=tuple(notes))


@dataclass(frozen=True)
class LevelComparison:
    """A proportion compared between the levels of one subgroup within one study.

    Attributes
    ----------
    events, totals : numpy.ndarray of int
        Per level.
    proportion, ci_lower, ci_upper : numpy.ndarray
        Per level, with exact (Clopper-Pearson) intervals.
    test : {"fisher", "chisq"}
        Two-sided Fisher's exact test for two levels; Pearson's chi-square test of
        independence (no continuity correction) for more.
    statistic : float
        The sample odds ratio (first level vs second) for Fisher's test (NaN when a cell
        is zero), the chi-square statistic otherwise.
    df : float
        Degrees of freedom of the chi-square test (NaN for Fisher's).
    p_value : float
    rd, rd_lower, rd_upper : float
        Two levels only: the risk difference first minus second level and its Wald CI
        (metafor's ``escalc("RD")`` with ``add = 1/2, to = "only0"``); NaN otherwise.
    level : float
        Confidence level.
    """

    events: np.ndarray
    totals: np.ndarray
    proportion: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    test: str
    statistic: float
    df: float
    p_value: float
    rd: float = float("nan")
    rd_lower: float = float("nan")
    rd_upper: float = float("nan")
    level: float = 0.95


def compare_levels(events: Any, totals: Any, *, level: float = 0.95) -> LevelComparison:
    """Compare a proportion between two or more levels of a subgroup of one study.

    Parameters
    ----------
    events, totals : array-like of int
        One entry per level, in display order.
    level : float
        Confidence level of the per-level and risk-difference intervals.

    Returns
    -------
    LevelComparison

    Raises
    ------
    ValueError
        Fewer than two levels, or counts that are not ``0 <= events <= totals``.
    """
    from evidence.stats.distributions import chisq_test
    from evidence.stats.effects import proportion_ci
    from evidence.stats.twoarm import two_arm_effect

    level = check_level(level)
    x, n = check_count_pairs(np.atleast_1d(np.asarray(events, dtype=float)),
                             np.atleast_1d(np.asarray(totals, dtype=float)))
    if x.size < 2:
        raise ValueError(f"a comparison needs at least two levels, got {x.size}")
    ev, tot = x.astype(int), n.astype(int)
    lo, hi = proportion_ci(ev, tot, method="clopper-pearson", level=level)
    common = {"events": ev, "totals": tot, "proportion": ev / tot, "ci_lower": lo,
              "ci_upper": hi, "level": level}
    if x.size == 2:
        e = two_arm_effect(int(ev[0]), int(tot[0]), int(ev[1]), int(tot[1]), "RD", level=level)
        cross = (tot[0] - ev[0]) * ev[1]
        odds = (ev[0] * (tot[1] - ev[1])) / cross if cross > 0 else float("nan")
        return LevelComparison(**common, test="fisher", statistic=float(odds),
                               df=float("nan"), p_value=float(e.fisher_pvalue),
                               rd=float(e.pred), rd_lower=float(e.pred_ci_lower),
                               rd_upper=float(e.pred_ci_upper))
    stat, p, dof = chisq_test(np.column_stack([ev, tot - ev]))
    return LevelComparison(**common, test="chisq", statistic=float(stat), df=float(dof),
                           p_value=float(p))
