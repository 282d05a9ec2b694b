"""Argument checks shared by the statistics, and the errors they raise.

metafor checks its arguments once, in one place (``.level()`` and its siblings in
``misc.func.hidden``); these are their counterparts. Each returns the cleaned value or
raises ``ValueError`` with a message that names the argument and what was wrong, before
any arithmetic is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ConvergenceError",
    "check_count_pairs",
    "check_counts",
    "check_level",
    "check_probability",
    "check_study_ids",
    "critical_value",
]


class ConvergenceError(RuntimeError):
    """An iterative estimator (REML/ML Fisher scoring, PM root finding, the GLMM's
    likelihood) did not converge, or gave no finite estimate."""


def check_level(level: float) -> float:
    """A confidence level as a fraction in (0, 1); ``ValueError`` otherwise (95 is not 0.95)."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return level


def critical_value(level: float) -> float:
    """The two-sided standard-normal critical value of ``level`` (1.96 for 0.95), as
    metafor's ``qnorm(level/2, lower.tail = FALSE)`` with ``level = 1 - level``."""
    from evidence.stats.distributions import norm_quantile_upper

    return norm_quantile_upper((1.0 - check_level(level)) / 2.0)


def check_probability(name: str, value: float) -> float:
    """A probability strictly between 0 and 1 (a design rate, an error rate)."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def check_counts(name: str, values: Any) -> np.ndarray:
    """A 1-D float array of non-negative whole numbers, or ``ValueError`` naming ``name``.

    A scalar is taken as one study.
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: counts must be numeric ({exc})") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of counts, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name}: missing or non-finite count at position(s) "
                         f"{np.flatnonzero(bad).tolist()}")
    if (arr < 0).any():
        raise ValueError(f"{name}: counts must be >= 0; negative at position(s) "
                         f"{np.flatnonzero(arr < 0).tolist()}")
    if (arr != np.round(arr)).any():
        raise ValueError(f"{name}: counts must be whole numbers; not at position(s) "
                         f"{np.flatnonzero(arr != np.round(arr)).tolist()}")
    return arr


def check_count_pairs(xi: Any, ni: Any) -> tuple[np.ndarray, np.ndarray]:
    """Events ``xi`` and sample sizes ``ni`` of single groups: 1-D, equal length, whole
    numbers, ``ni > 0`` and ``0 <= xi <= ni``."""
    x = np.asarray(xi, dtype=float)
    n = np.asarray(ni, dtype=float)
    if x.ndim != 1 or n.ndim != 1:
        raise ValueError("xi and ni must be one-dimensional")
    if x.shape != n.shape:
        raise ValueError(f"xi and ni differ in length ({x.size} vs {n.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
        raise ValueError("xi and ni must be finite (no missing values)")
    if np.any(x != np.round(x)) or np.any(n != np.round(n)):
        raise ValueError("xi and ni must be whole numbers of patients")
    if np.any(n <= 0):
        raise ValueError("every ni must be positive")
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("every xi must satisfy 0 <= xi <= ni")
    return x, n


def check_study_ids(study_ids: Sequence[Any] | None, k: int, *,
                    unique: bool = False) -> tuple[str, ...]:
    """Study labels as strings, one per study; ``"study 1"``, ``"study 2"``, ... when None.

    Parameters
    ----------
    study_ids : sequence or None
        Labels in study order.
    k : int
        Number of studies.
    unique : bool
        Also require distinct labels (refits and plots address studies by label).
    """
    if study_ids is None:
        return tuple(f"study {i + 1}" for i in range(k))
    ids = tuple(str(s) for s in study_ids)
    if len(ids) != k:
        raise ValueError(f"study_ids has {len(ids)} entries for {k} studies")
    if unique and len(set(ids)) != k:
        raise ValueError("study_ids must be unique")
    return ids
