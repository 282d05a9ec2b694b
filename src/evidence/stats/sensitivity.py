"""Sensitivity analyses: leave-one-out, cumulative meta-analysis, estimator panel.

:func:`leave_one_out` and :func:`cumulative` reproduce metafor's ``leave1out`` and
``cumul`` for ``rma`` fits (each refit uses the same estimator, test and control
settings, so e.g. PM's search interval is recomputed from the remaining studies
exactly as metafor does).  Both take an optional ``fitter``: any function from an
:class:`~evidence.stats.results.EffectSizes` (a subset of the studies, with their
``xi``/``ni``) to a :class:`~evidence.stats.results.MetaResult`.  That is how other
models reuse them, e.g. the binomial-normal GLMM::

    leave_one_out(es, fitter=lambda sub: rma_glmm(sub.xi, sub.ni, study_ids=sub.study_ids))

Both return one type, :class:`Refits`, for every fitter (``rma`` or the GLMM): its
``kind`` says which sequence it is. A fit that fails (non-convergence, too few studies)
gives a row of NaN with the error message in ``errors`` instead of stopping the analysis
(metafor likewise leaves NA).  With a single remaining/accumulated study the ``k = 1`` result of
:func:`evidence.stats.pooling.rma` is used (its Q p-value is NaN where metafor reports 1).

:func:`estimator_panel` fits every measure x estimator combination to one set of
proportions and tabulates the back-transformed results side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evidence.stats.checks import ConvergenceError, check_level
from evidence.stats.effects import escalc, subset_studies
from evidence.stats.glmm import rma_glmm
from evidence.stats.pooling import rma
from evidence.stats.results import EffectSizes, MetaResult, Summary, jsonable
from evidence.stats.vocabulary import (
    GLMM_TESTS,
    PROPORTION_MEASURES,
    check_choice,
    check_method,
    resolve_test,
)

__all__ = [
    "KINDS",
    "PANEL_TESTS",
    "Fitter",
    "Refits",
    "cumulative",
    "estimator_panel",
    "leave_one_out",
]

#: A model fitted to a subset of the studies.
Fitter = Callable[[EffectSizes], MetaResult]
#: The two kinds of refit sequence.
KINDS = ("leave_one_out", "cumulative")

_SERIES_FIELDS = ("estimate", "se", "zval", "pval", "ci_lower", "ci_upper", "q", "q_pvalue",
                  "tau2", "i2", "h2")
_BACK_FIELDS = ("back_estimate", "back_ci_lower", "back_ci_upper")


def _default_fitter(method: str, test: str, level: float,
                    control: Mapping[str, Any] | None) -> Fitter:
    check_method(method)

    def fit(sub: EffectSizes) -> MetaResult:
        return rma(sub, method, test=test, level=level, control=control)

    return fit


def _run(es: EffectSizes, subsets: list[np.ndarray], fitter: Fitter) -> dict[str, Any]:
    n = len(subsets)
    cols: dict[str, np.ndarray] = {f: np.full(n, np.nan) for f in _SERIES_FIELDS}
    back = {f: np.full(n, np.nan) for f in _BACK_FIELDS}
    k = np.zeros(n, dtype=int)
    errors: list[str | None] = []
    reasons: list[str | None] = []
    method = test = None
    for i, idx in enumerate(subsets):
        k[i] = len(idx)
        try:
            res = fitter(subset_studies(es, idx))
        except (ValueError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            reasons.append(str(exc))
            continue
        errors.append(None)
        reasons.append(None)
        method, test = res.method, res.test
        k[i] = res.k
        for f in _SERIES_FIELDS:
            cols[f][i] = getattr(res, f)
        try:
            pb = res.pooled()
        except ValueError:
            continue
        back["back_estimate"][i] = pb.estimate
        back["back_ci_lower"][i] = pb.ci_lower
        back["back_ci_upper"][i] = pb.ci_upper
    return {**cols, **back, "k": k, "errors": tuple(errors), "reasons": tuple(reasons),
            "method": method or "",
            "test": test or ""}


@dataclass(frozen=True)
class Refits:
    """A model refitted to subsets of its studies: leave-one-out or cumulative.

    Row ``i`` is the model fitted without study ``study_ids[i]`` (``kind =
    "leave_one_out"``, metafor's ``leave1out``) or to the studies up to and including
    ``study_ids[i]`` (``kind = "cumulative"``, metafor's ``cumul``).  ``back_*`` are the
    estimate and CI back-transformed (a proportion for proportion measures).
    ``errors[i]`` holds the error of a failed fit (``"ConvergenceError: ..."``); its row
    is NaN.

    Attributes
    ----------
    kind : {"leave_one_out", "cumulative"}
    study_ids : tuple of str
        The omitted (leave-one-out) or added (cumulative) study of each row.
    k : numpy.ndarray of int
        Studies in each fit (for a failed fit: in the subset it was given).
    estimate, se, zval, pval, ci_lower, ci_upper, q, q_pvalue, tau2, i2, h2 : numpy.ndarray
        The fields of each fit's :class:`~evidence.stats.results.MetaResult`.
    back_estimate, back_ci_lower, back_ci_upper : numpy.ndarray
        Estimate and CI on the natural scale.
    errors : tuple of (str or None)
        The error of each failed fit with its type (``"ConvergenceError: ..."``).
    reasons : tuple of (str or None)
        The same message without the type, for readers.
    measure, method, test : str
        metafor codes of the refitted model.
    level : float
        Confidence level.
    """

    kind: str
    study_ids: tuple[str, ...]
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    q: np.ndarray
    q_pvalue: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    back_estimate: np.ndarray
    back_ci_lower: np.ndarray
    back_ci_upper: np.ndarray
    errors: tuple[str | None, ...]
    reasons: tuple[str | None, ...]
    measure: str
    method: str
    test: str
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; allowed: {', '.join(KINDS)}")

    @property
    def omitted(self) -> tuple[str, ...]:
        """The omitted study of each row (leave-one-out only)."""
        if self.kind != "leave_one_out":
            raise AttributeError("a cumulative analysis omits no study; see 'added'")
        return self.study_ids

    @property
    def added(self) -> tuple[str, ...]:
        """The study added at each row (cumulative only)."""
        if self.kind != "cumulative":
            raise AttributeError("a leave-one-out analysis adds no study; see 'omitted'")
        return self.study_ids

    @property
    def failed(self) -> dict[int, str]:
        """Row -> why that refit has no estimate (the reason, without the error type)."""
        return {i: r for i, r in enumerate(self.reasons) if r is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields (NaN as None)."""
        return jsonable(asdict(self))

    def summary(self) -> Summary:
        """One row per refit, indexed by the omitted or added study."""
        columns: dict[str, Any] = {f: getattr(self, f) for f in ("k", *_SERIES_FIELDS,
                                                                  *_BACK_FIELDS)}
        columns["error"] = self.errors
        return Summary("omitted" if self.kind == "leave_one_out" else "added",
                       self.study_ids, columns)


def leave_one_out(es: EffectSizes, method: str = "REML", knha: bool = False, *,
                  test: str | None = None, level: float = 0.95,
                  control: Mapping[str, Any] | None = None,
                  fitter: Fitter | None = None) -> Refits:
    """Refit the model with each study omitted in turn (metafor's ``leave1out``).

    Parameters
    ----------
    es : EffectSizes
        All studies (k >= 2).
    method, knha, test, level, control
        Passed to :func:`evidence.stats.pooling.rma` when ``fitter`` is None.
    fitter : callable, optional
        ``fitter(subset) -> MetaResult`` replacing ``rma`` (e.g.
        :func:`evidence.stats.glmm.glmm_fitter`).

    Returns
    -------
    Refits
        ``kind = "leave_one_out"``.
    """
    if es.k < 2:
        raise ValueError("Stopped because k = 1 (leave-one-out needs at least 2 studies).")
    level = check_level(level)
    test = resolve_test(test, knha)
    fit = fitter if fitter is not None else _default_fitter(method, test, level, control)
    all_idx = np.arange(es.k)
    out = _run(es, [np.delete(all_idx, i) for i in range(es.k)], fit)
    return Refits(kind="leave_one_out", study_ids=tuple(es.study_ids), measure=es.measure,
                  level=level, **out)


def cumulative(es: EffectSizes, order: Sequence[Any] | None = None, method: str = "REML",
               knha: bool = False, *, test: str | None = None, level: float = 0.95,
               control: Mapping[str, Any] | None = None,
               fitter: Fitter | None = None) -> Refits:
    """Cumulative meta-analysis adding studies in the order of ``order`` (metafor's ``cumul``).

    Parameters
    ----------
    es : EffectSizes
        All studies.
    order : sequence, optional
        Sort key per study (e.g. publication year); ties keep the input order
        (R's ``order()``).  Default: the input order.
    method, knha, test, level, control
        Passed to :func:`evidence.stats.pooling.rma` when ``fitter`` is None.
    fitter : callable, optional
        ``fitter(subset) -> MetaResult`` replacing ``rma``.

    Returns
    -------
    Refits
        ``kind = "cumulative"``.  With the GLMM the first row (one study) is a failed
        fit: the GLMM needs two studies.
    """
    if es.k < 1:
        raise ValueError("no studies (k = 0)")
    level = check_level(level)
    if order is None:
        perm = np.arange(es.k)
    else:
        key = np.asarray(order)
        if key.shape != (es.k,):
            raise ValueError(f"order has shape {key.shape}; expected ({es.k},)")
        perm = np.argsort(key, kind="stable")
    test = resolve_test(test, knha)
    fit = fitter if fitter is not None else _default_fitter(method, test, level, control)
    out = _run(es, [perm[: i + 1] for i in range(es.k)], fit)
    return Refits(kind="cumulative", study_ids=tuple(es.study_ids[i] for i in perm),
                  measure=es.measure, level=level, **out)


_PANEL_COLUMNS = ("measure", "method", "test", "k", "estimate", "se", "proportion",
                  "prop_ci_lower", "prop_ci_upper", "prop_pi_lower", "prop_pi_upper", "tau2",
                  "i2", "q", "q_pvalue", "notes", "error")

#: Extra rows of the estimator panel: method -> tests besides ``z``.
PANEL_TESTS: Mapping[str, tuple[str, ...]] = {"REML": ("knha", "adhoc")}


def estimator_panel(xi: Any, ni: Any, measures: Sequence[str] = PROPORTION_MEASURES,
                    methods: Sequence[str] = ("FE", "DL", "REML", "PM", "ML", "HE", "SJ"),
                    tests_for: Mapping[str, Sequence[str]] | None = None, *,
                    glmm_tests: Sequence[str] = (),
                    study_ids: Sequence[Any] | None = None,
                    level: float = 0.95) -> Summary:
    """Every measure x estimator (x test) on one set of proportions, side by side.

    Parameters
    ----------
    xi, ni : array-like of int
        Events and sample sizes.
    measures : sequence of str
        Proportion measures (``escalc`` with metafor's default zero handling).
    methods : sequence of str
        Estimators for :func:`evidence.stats.pooling.rma`, each with the z test.
    tests_for : mapping, optional
        Method -> further tests (``"t"``, ``"knha"``, ``"adhoc"``) that get a row each;
        default :data:`PANEL_TESTS` (Hartung-Knapp and its ad hoc variant for REML) for
        the methods it names that are in ``methods``.
    glmm_tests : sequence of str
        Tests (``"z"``, ``"t"``) of the binomial-normal GLMM rows (measure PLO) appended
        after the rma rows; none by default.
    study_ids : sequence, optional
        Labels.
    level : float
        Confidence level.

    Returns
    -------
    Summary
        One row per fit, indexed by position (``fit``): ``measure, method, test, k,
        estimate, se`` (measure scale), ``proportion, prop_ci_lower, prop_ci_upper,
        prop_pi_lower, prop_pi_upper`` (back-transformed), ``tau2, i2, q, q_pvalue,
        notes`` and ``error`` (the message of a failed fit, else None; the numbers of a
        failed fit are NaN).
    """
    for m in methods:
        check_method(m)
    if tests_for is None:
        tests_for = {m: t for m, t in PANEL_TESTS.items() if m in methods}
    unknown = sorted(set(tests_for) - set(methods))
    if unknown:
        raise ValueError(f"tests_for names {unknown}, not in methods {list(methods)}")
    for tests in tests_for.values():
        for t in tests:
            resolve_test(t)
    for t in glmm_tests:
        check_choice("glmm test", t, GLMM_TESTS)
    fits: list[tuple[str, str, str]] = [
        (measure, m, t) for measure in measures
        for m in methods for t in ("z", *tests_for.get(m, ()))]
    fits += [("PLO", "GLMM", t) for t in glmm_tests]
    rows: list[dict[str, Any]] = []
    xi_a, ni_a = np.asarray(xi, dtype=float), np.asarray(ni, dtype=float)
    cache: dict[str, EffectSizes] = {}
    for measure, method, test in fits:
        row: dict[str, Any] = {"measure": measure, "method": method, "test": test}
        try:
            if method == "GLMM":
                res = rma_glmm(xi_a, ni_a, study_ids=study_ids, level=level, test=test)
            else:
                if measure not in cache:
                    cache[measure] = escalc(measure, xi=xi, ni=ni, study_ids=study_ids)
                res = rma(cache[measure], method, test=test, level=level)
            pb = res.pooled()
        except (ValueError, ConvergenceError) as exc:
            row.update({"k": len(xi_a), "error": f"{type(exc).__name__}: {exc}"})
            rows.append(row)
            continue
        row.update({"k": res.k, "estimate": res.estimate, "se": res.se,
                    "proportion": pb.estimate, "prop_ci_lower": pb.ci_lower,
                    "prop_ci_upper": pb.ci_upper, "prop_pi_lower": pb.pi_lower,
                    "prop_pi_upper": pb.pi_upper, "tau2": res.tau2, "i2": res.i2,
                    "q": res.q, "q_pvalue": res.q_pvalue,
                    "notes": " ".join(res.notes) or None, "error": None})
        rows.append(row)
    text = ("measure", "method", "test", "notes", "error")
    columns = {c: (tuple(r.get(c) for r in rows) if c in text
                   else np.array([r.get(c, np.nan) for r in rows], dtype=float))
               for c in _PANEL_COLUMNS}
    columns["k"] = np.array([r["k"] for r in rows], dtype=int)
    return Summary("fit", tuple(range(len(rows))), columns)
