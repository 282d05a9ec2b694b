"""Pooling single proportions: the engine behind ``evidence pool`` and the book's chapters.

:func:`pool_proportions` takes events and sample sizes and returns the model with its
``pooled`` block on the proportion scale, whichever model is chosen: an ``rma`` estimator
on one of the proportion measures, or the binomial-normal GLMM. With a single study
nothing is pooled; the study's own proportion and exact interval are returned instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evidence.stats.checks import check_level, check_study_ids
from evidence.stats.effects import escalc, proportion_ci
from evidence.stats.glmm import rma_glmm
from evidence.stats.pooling import rma
from evidence.stats.results import MetaResult
from evidence.stats.vocabulary import (
    GLMM_TESTS,
    METHODS,
    PROPORTION_MEASURES,
    check_measure,
    check_method,
    resolve_test,
)

__all__ = ["pool_proportions"]


def pool_proportions(events: Any, totals: Any, study_ids: Sequence[Any] | None = None, *,
                     measure: str = "PLO", method: str = "REML", knha: bool = False,
                     test: str | None = None,
                     level: float = 0.95) -> tuple[MetaResult, dict[str, Any]]:
    """Pool single proportions; the engine behind ``evidence pool`` and the templates.

    Parameters
    ----------
    events, totals : array-like of int
        Events ``xi`` and sample sizes ``ni``.
    measure : {"PLO", "PFT", "PAS", "PR"}
        Effect-size measure (metafor's codes); ignored by ``GLMM`` (always logit).
    method : {"FE", "DL", "REML", "PM", "ML", "HE", "SJ", "GLMM"}
        Common-effect, random-effects tau2 estimator, or the binomial-normal GLMM.
    knha : bool
        Hartung-Knapp(-Sidik-Jonkman) adjustment (not with ``FE``... allowed as in
        metafor; not with ``GLMM``); the same as ``test="knha"``.
    test : {"z", "t", "knha", "adhoc"}, optional
        metafor's ``test`` (default ``"z"``): for ``GLMM`` ``"z"`` or ``"t"`` (Student's t
        with k - 1 df for the CI and the prediction interval); for the rma methods also
        Hartung-Knapp (``"knha"``) and its ad hoc variant (``"adhoc"``).

    Returns
    -------
    (MetaResult, dict)
        The model and the ``pooled`` block on the proportion scale.  With k = 1
        nothing is pooled: the ``pooled`` block holds the study's own proportion
        and exact Clopper-Pearson interval (with a ``warning`` saying so), and the
        model is that single study's common-effect fit, for drawing only.
    """
    check_measure(measure, PROPORTION_MEASURES)
    check_method(method, METHODS)
    level = check_level(level)
    test = resolve_test(test, knha)
    xi = np.asarray(events, dtype=float)
    ni = np.asarray(totals, dtype=float)
    k = xi.shape[0]
    ids = check_study_ids(study_ids, k)
    if k == 0:
        raise ValueError("no studies to pool (k = 0)")
    if k == 1:
        lo, hi = proportion_ci(xi, ni, method="clopper-pearson", level=level)
        p = float(xi[0] / ni[0])
        # the single study as a model object, so that plots can draw it (not pooled)
        single = rma(escalc("PLO", xi=xi, ni=ni, study_ids=ids), method="FE", level=level)
        return single, {"estimate": p, "ci_lower": float(lo[0]), "ci_upper": float(hi[0]),
                        "pi_lower": None, "pi_upper": None, "transform": "none",
                        "warning": "k = 1: the study's own proportion with its exact "
                                   "(Clopper-Pearson) interval; nothing was pooled."}
    if method == "GLMM":
        if test not in GLMM_TESTS:
            raise ValueError(f"test {test!r} applies to rma methods; the GLMM takes "
                             f"{' or '.join(GLMM_TESTS)}")
        result = rma_glmm(xi, ni, study_ids=ids, level=level, test=test)
    else:
        es = escalc(measure, xi=xi, ni=ni, study_ids=ids)
        result = rma(es, method=method, test=test, level=level)
    return result, result.pooled().to_dict()
