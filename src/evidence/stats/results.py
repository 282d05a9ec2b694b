"""Typed result objects shared by every statistics module.

These frozen dataclasses are the contract between the statistics (``effects``,
``pooling``, ``glmm``, ``twoarm``, ``regression``, ``sensitivity``), the plots and
the book.  Field names follow metafor's vocabulary in snake_case (``yi``, ``vi``,
``tau2``, ``i2``, ``ci_lower`` for metafor's ``ci.lb`` ...).  Arrays are NumPy
arrays; intervals are always named fields, never positional tuples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["EffectSizes", "MetaResult", "Pooled", "Summary", "jsonable"]


def jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and non-finite floats (to None) into
    JSON-ready values, recursively; dictionary keys become strings."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass(frozen=True)
class Summary:
    """A result as columns of one row per item (study, subgroup, refit, fit), without pandas.

    What statsmodels' ``summary_frame()`` returns as a DataFrame; the book turns it into
    one with :func:`evidence.book.tables.summary_frame`.

    Attributes
    ----------
    index_name : str
        What a row is (``"omitted"``, ``"added"``, ``"group"``, ``"coefficient"``).
    index : tuple
        One label per row.
    columns : dict of str to numpy.ndarray or tuple
        The columns, in display order, each with one value per row.
    """

    index_name: str
    index: tuple[Any, ...]
    columns: dict[str, Any]

    def __post_init__(self) -> None:
        for name, values in self.columns.items():
            if len(values) != len(self.index):
                raise ValueError(f"column {name!r} has {len(values)} values for "
                                 f"{len(self.index)} rows")

    def records(self) -> list[dict[str, Any]]:
        """One dictionary per row, the index under ``index_name``."""
        names = list(self.columns)
        return [{self.index_name: label, **{c: self.columns[c][i] for c in names}}
                for i, label in enumerate(self.index)]


@dataclass(frozen=True)
class EffectSizes:
    """Study-level effect sizes, as returned by :func:`evidence.stats.effects.escalc`.

    Attributes
    ----------
    measure : str
        metafor measure code (``"PLO"``, ``"PFT"``, ``"PAS"``, ``"PR"``, ``"RR"``,
        ``"OR"``, ``"RD"``, ``"HR"``).
    yi, vi : numpy.ndarray
        Observed outcomes on the measure's scale and their sampling variances.
    study_ids : tuple of str
        One label per study, in input order.
    xi, ni : numpy.ndarray or None
        Event counts and sample sizes for single-group measures (as given, before
        any zero-cell correction).
    corrected : numpy.ndarray of bool
        Which studies received the continuity correction ``add``.
    add, to : float, str
        The zero-cell handling that was applied (metafor's ``add`` and ``to``).
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    study_ids: tuple[str, ...]
    xi: np.ndarray | None = None
    ni: np.ndarray | None = None
    corrected: np.ndarray | None = None
    add: float = 0.5
    to: str = "only0"

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.shape[0])

    @property
    def sei(self) -> np.ndarray:
        """Standard errors, ``sqrt(vi)``."""
        return np.sqrt(self.vi)


@dataclass(frozen=True)
class Pooled:
    """A pooled estimate back-transformed to the natural scale (a proportion for
    ``PLO``/``PFT``/``PAS``/``PR``, a ratio for ``RR``/``OR``/``HR``).

    ``pi_lower``/``pi_upper`` equal the CI for common-effect models (as metafor's
    reference output does).
    """

    estimate: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    transform: str = "identity"
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return jsonable(asdict(self))


@dataclass(frozen=True)
class MetaResult:
    """Result of a meta-analytic model fit (``rma``- or ``rma.glmm``-like).

    All quantities are on the measure's scale (logit for ``PLO``); use
    :meth:`pooled` for the natural scale.  ``i2`` is a percentage (0-100) like
    metafor.  ``weights`` are percentages summing to 100.

    Attributes
    ----------
    measure, method : str
        metafor codes; ``method`` is ``"FE"``, ``"DL"``, ``"REML"``, ``"PM"``,
        ``"ML"``, ``"HE"``, ``"SJ"`` or ``"GLMM"``.
    test : str
        metafor's test: ``"z"``, ``"t"`` (Student's t), ``"knha"`` (Hartung-Knapp) or
        ``"adhoc"`` (Hartung-Knapp never narrower than z); ``df`` is the t degrees of
        freedom (None for ``"z"``).
    q, q_df, q_pvalue : float, int, float
        Cochran's Q test of heterogeneity (for the GLMM: the Wald-type test).
    tau2_ci_lower ... h2_ci_upper : float
        Q-profile confidence limits (NaN where not computed, e.g. ``FE``).
    back_transform : str
        Name of the inverse transformation used by :meth:`pooled`.
    harmonic_mean_n : float or None
        For ``PFT``: the harmonic mean of the sample sizes used by the inverse.
    notes : tuple of str
        Warnings the reader must see (e.g. the PFT back-transform caveat,
        estimator fell back, tau2 on the boundary).
    """

    measure: str
    method: str
    k: int
    estimate: float
    se: float
    zval: float
    pval: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    weights: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    study_ids: tuple[str, ...]
    test: str = "z"
    df: float | None = None
    se_tau2: float = float("nan")
    tau2_ci_lower: float = float("nan")
    tau2_ci_upper: float = float("nan")
    i2_ci_lower: float = float("nan")
    i2_ci_upper: float = float("nan")
    h2_ci_lower: float = float("nan")
    h2_ci_upper: float = float("nan")
    loglik: float = float("nan")
    level: float = 0.95
    back_transform: str = "identity"
    harmonic_mean_n: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tau(self) -> float:
        """Between-study standard deviation."""
        return float(np.sqrt(self.tau2))

    def pooled(self) -> Pooled:
        """The pooled estimate, CI and prediction interval on the natural scale."""
        from evidence.stats.transforms import back_transform

        f = back_transform(self.measure, harmonic_mean_n=self.harmonic_mean_n)
        vals = [f(v) for v in (self.estimate, self.ci_lower, self.ci_upper,
                               self.pi_lower, self.pi_upper)]
        warning = None
        if self.measure == "PFT":
            warning = ("Freeman-Tukey back-transformation uses the harmonic mean of the "
                       "sample sizes and can mislead when study sizes differ widely "
                       "(Schwarzer et al. 2019).")
        return Pooled(*vals, transform=self.back_transform, warning=warning)

    def model_dict(self) -> dict[str, Any]:
        """The ``model`` block of the result JSON (DESIGN.md)."""
        return jsonable({
            "estimate": self.estimate, "se": self.se, "zval": self.zval, "pval": self.pval,
            "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
            "pi_lower": self.pi_lower, "pi_upper": self.pi_upper,
            "tau2": self.tau2, "tau2_ci_lower": self.tau2_ci_lower,
            "tau2_ci_upper": self.tau2_ci_upper, "i2": self.i2,
            "i2_ci_lower": self.i2_ci_lower, "i2_ci_upper": self.i2_ci_upper,
            "h2": self.h2, "q": self.q, "q_df": self.q_df, "q_pvalue": self.q_pvalue,
            "test": self.test, "df": self.df, "level": self.level, "notes": list(self.notes),
        })

    def to_dict(self) -> dict[str, Any]:
        """Everything as a JSON-ready dictionary (``model`` and ``pooled`` blocks)."""
        return jsonable({
            "measure": self.measure, "method": self.method, "k": self.k,
            "model": self.model_dict(), "pooled": self.pooled().to_dict(),
            "weights": self.weights, "study_ids": list(self.study_ids),
        })
