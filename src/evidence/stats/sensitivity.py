"""Sensitivity analyses: leave-one-out, cumulative meta-analysis, estimator panel.

:func:`leave_one_out` and :func:`cumulative` reproduce metafor's ``leave1out`` and
``cumul`` for ``rma`` fits (each refit uses the same estimator, test and control
settings, so e.g. PM's search interval is recomputed from the remaining studies
exactly as metafor does).  Both take an optional ``fitter``: any function from an
:class:`~evidence.stats.results.EffectSizes` (a subset of the studies, with their
``xi``/``ni``) to a :class:`~evidence.stats.results.MetaResult`.  That is how other
models reuse them, e.g. the binomial-normal GLMM::

    leave_one_out(es, fitter=lambda sub: rma_glmm(sub.xi, sub.ni, study_ids=sub.study_ids))

A fit that fails (non-convergence, too few studies) gives a row of NaN with the
error message in ``errors`` instead of stopping the analysis (metafor likewise
leaves NA).  With a single remaining/accumulated study the ``k = 1`` result of
:func:`evidence.stats.pooling.rma` is used (its Q p-value is NaN where metafor reports 1).

:func:`estimator_panel` fits every measure x estimator combination to one set of
proportions and tabulates the back-transformed results side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.stats.effects import escalc, subset_studies
from evidence.stats.pooling import ConvergenceError, _check_method, rma
from evidence.stats.results import EffectSizes, MetaResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Cumulative",
    "LeaveOneOut",
    "cumulative",
    "estimator_panel",
    "leave_one_out",
]

Fitter = Callable[[EffectSizes], MetaResult]

_SERIES_FIELDS = ("estimate", "se", "zval", "pval", "ci_lower", "ci_upper", "q", "q_pvalue",
                  "tau2", "i2", "h2")


def _default_fitter(method: str, knha: bool, level: float,
                    control: Mapping[str, Any] | None) -> Fitter:
    _check_method(method)

    def fit(sub: EffectSizes) -> MetaResult:
        return rma(sub, method, knha=knha, level=level, control=control)

    return fit


def _run(es: EffectSizes, subsets: list[np.ndarray], fitter: Fitter) -> dict[str, Any]:
    n = len(subsets)
    cols: dict[str, np.ndarray] = {f: np.full(n, np.nan) for f in _SERIES_FIELDS}
    back = {f: np.full(n, np.nan) for f in ("back_estimate", "back_ci_lower", "back_ci_upper")}
    k = np.zeros(n, dtype=int)
    errors: list[str | None] = []
    method = test = None
    for i, idx in enumerate(subsets):
        try:
            res = fitter(subset_studies(es, idx))
        except (ValueError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        errors.append(None)
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
    return {**cols, **back, "k": k, "errors": tuple(errors), "method": method or "",
            "test": test or ""}


@dataclass(frozen=True)
class _RefitSeries:
    """Columns shared by :class:`LeaveOneOut` and :class:`Cumulative`, one row per fit."""

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
    measure: str
    method: str
    test: str

    def _frame(self, labels: tuple[str, ...], name: str) -> pd.DataFrame:
        import pandas as pd

        data = {f: getattr(self, f) for f in ("k", *_SERIES_FIELDS, "back_estimate",
                                              "back_ci_lower", "back_ci_upper")}
        data["error"] = list(self.errors)
        return pd.DataFrame(data, index=pd.Index(labels, name=name))


@dataclass(frozen=True)
class LeaveOneOut(_RefitSeries):
    """Each study omitted in turn (metafor's ``leave1out``).

    Row ``i`` is the model fitted without study ``omitted[i]``.  ``back_*`` are the
    estimate and CI back-transformed (a proportion for proportion measures).
    ``errors[i]`` holds the error message of a failed fit (its row is NaN).
    """

    omitted: tuple[str, ...]

    def summary_frame(self) -> pd.DataFrame:
        """One row per omitted study."""
        return self._frame(self.omitted, "omitted")


@dataclass(frozen=True)
class Cumulative(_RefitSeries):
    """Studies added one at a time in a given order (metafor's ``cumul``).

    Row ``i`` is the model fitted to the first ``i + 1`` studies of ``added``.
    """

    added: tuple[str, ...]

    def summary_frame(self) -> pd.DataFrame:
        """One row per added study."""
        return self._frame(self.added, "added")


def leave_one_out(es: EffectSizes, method: str = "REML", knha: bool = False, *,
                  level: float = 0.95, control: Mapping[str, Any] | None = None,
                  fitter: Fitter | None = None) -> LeaveOneOut:
    """Refit the model with each study omitted in turn (metafor's ``leave1out``).

    Parameters
    ----------
    es : EffectSizes
        All studies (k >= 2).
    method, knha, level, control
        Passed to :func:`evidence.stats.pooling.rma` when ``fitter`` is None.
    fitter : callable, optional
        ``fitter(subset) -> MetaResult`` replacing ``rma`` (e.g. the GLMM).

    Returns
    -------
    LeaveOneOut
    """
    if es.k < 2:
        raise ValueError("Stopped because k = 1 (leave-one-out needs at least 2 studies).")
    fit = fitter if fitter is not None else _default_fitter(method, knha, level, control)
    all_idx = np.arange(es.k)
    out = _run(es, [np.delete(all_idx, i) for i in range(es.k)], fit)
    return LeaveOneOut(omitted=tuple(es.study_ids), measure=es.measure, **out)


def cumulative(es: EffectSizes, order: Sequence[Any] | None = None, method: str = "REML",
               knha: bool = False, *, level: float = 0.95,
               control: Mapping[str, Any] | None = None,
               fitter: Fitter | None = None) -> Cumulative:
    """Cumulative meta-analysis adding studies in the order of ``order`` (metafor's ``cumul``).

    Parameters
    ----------
    es : EffectSizes
        All studies.
    order : sequence, optional
        Sort key per study (e.g. publication year); ties keep the input order
        (R's ``order()``).  Default: the input order.
    method, knha, level, control
        Passed to :func:`evidence.stats.pooling.rma` when ``fitter`` is None.
    fitter : callable, optional
        ``fitter(subset) -> MetaResult`` replacing ``rma``.

    Returns
    -------
    Cumulative
    """
    if es.k < 1:
        raise ValueError("no studies (k = 0)")
    if order is None:
        perm = np.arange(es.k)
    else:
        key = np.asarray(order)
        if key.shape != (es.k,):
            raise ValueError(f"order has shape {key.shape}; expected ({es.k},)")
        perm = np.argsort(key, kind="stable")
    fit = fitter if fitter is not None else _default_fitter(method, knha, level, control)
    out = _run(es, [perm[: i + 1] for i in range(es.k)], fit)
    return Cumulative(added=tuple(es.study_ids[i] for i in perm), measure=es.measure, **out)


def estimator_panel(xi: Any, ni: Any, measures: Sequence[str] = ("PLO", "PFT", "PAS", "PR"),
                    methods: Sequence[str] = ("FE", "DL", "REML", "PM", "ML", "HE", "SJ"),
                    knha_for: Sequence[str] = ("REML",), *,
                    study_ids: Sequence[Any] | None = None,
                    level: float = 0.95) -> pd.DataFrame:
    """Every measure x estimator on one set of proportions, side by side.

    Parameters
    ----------
    xi, ni : array-like of int
        Events and sample sizes.
    measures : sequence of str
        Proportion measures (``escalc`` with metafor's default zero handling).
    methods : sequence of str
        Estimators for :func:`evidence.stats.pooling.rma`.
    knha_for : sequence of str
        Methods that get an extra row with the Knapp-Hartung adjustment.
    study_ids : sequence, optional
        Labels.
    level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per measure x method (+ knha rows): ``measure, method, knha, k,
        estimate, se`` (measure scale), ``proportion, prop_ci_lower, prop_ci_upper,
        prop_pi_lower, prop_pi_upper`` (back-transformed), ``tau2, i2, q,
        q_pvalue, notes`` and ``error`` (the message of a failed fit, else None).
    """
    import pandas as pd

    for m in methods:
        _check_method(m)
    unknown = sorted(set(knha_for) - set(methods))
    if unknown:
        raise ValueError(f"knha_for {unknown} not in methods {list(methods)}")
    rows: list[dict[str, Any]] = []
    for measure in measures:
        es = escalc(measure, xi=xi, ni=ni, study_ids=study_ids)
        combos = [(m, False) for m in methods] + [(m, True) for m in methods if m in knha_for]
        for method, kn in combos:
            row: dict[str, Any] = {"measure": measure, "method": method, "knha": kn}
            try:
                res = rma(es, method, knha=kn, level=level)
                pb = res.pooled()
            except (ValueError, ConvergenceError) as exc:
                row.update({"k": es.k, "error": f"{type(exc).__name__}: {exc}"})
                rows.append(row)
                continue
            row.update({"k": res.k, "estimate": res.estimate, "se": res.se,
                        "proportion": pb.estimate, "prop_ci_lower": pb.ci_lower,
                        "prop_ci_upper": pb.ci_upper, "prop_pi_lower": pb.pi_lower,
                        "prop_pi_upper": pb.pi_upper, "tau2": res.tau2, "i2": res.i2,
                        "q": res.q, "q_pvalue": res.q_pvalue,
                        "notes": " ".join(res.notes) or None, "error": None})
            rows.append(row)
    cols = ["measure", "method", "knha", "k", "estimate", "se", "proportion",
            "prop_ci_lower", "prop_ci_upper", "prop_pi_lower", "prop_pi_upper", "tau2", "i2",
            "q", "q_pvalue", "notes", "error"]
    return pd.DataFrame(rows, columns=cols)
