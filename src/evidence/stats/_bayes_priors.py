"""Priors of :mod:`evidence.stats.bayes` (private): the ``tau`` and ``mu`` priors, their
checks and descriptions.

``tau`` (the between-study standard deviation) has a half-normal, half-Cauchy or uniform
prior (:data:`TAU_PRIORS`); the uniform prior on ``[0, inf)`` is bayesmeta's default
improper prior. ``mu`` has a flat (improper) or a normal prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evidence.stats._bayes_quadrature import _LOG_2PI

__all__ = ["TAU_PRIORS", "check_mu_prior", "check_tau_prior", "normal_tail_decay"]

#: The prior families of ``tau`` that ``bayes_normal`` and ``bayes_binomial`` accept (a
#: scale, or the upper bound of ``"uniform"``, is given separately as ``tau_scale``).
TAU_PRIORS: tuple[str, ...] = ("halfnormal", "halfcauchy", "uniform")
# "'halfnormal', 'halfcauchy' or 'uniform'", for the messages
_ALLOWED = ", ".join(repr(p) for p in TAU_PRIORS[:-1]) + f" or {TAU_PRIORS[-1]!r}"


@dataclass(frozen=True)
class _TauPrior:
    name: str              # halfnormal | halfcauchy | uniform
    scale: float           # scale, or the upper bound of the uniform prior

    @property
    def upper(self) -> float:
        return self.scale if self.name == "uniform" else math.inf

    @property
    def proper(self) -> bool:
        return self.name != "uniform" or math.isfinite(self.scale)

    @property
    def tail(self) -> float:
        """Exponent ``e`` of the density's tail ``tau^-e`` (inf: lighter than any power)."""
        if self.name == "halfcauchy":
            return 2.0
        if self.name == "uniform" and not math.isfinite(self.scale):
            return 0.0
        return math.inf

    def describe(self) -> str:
        if self.name == "uniform":
            return ("uniform(0, inf) (improper)" if not math.isfinite(self.scale)
                    else f"uniform(0, {self.scale:g})")
        return f"{self.name}({self.scale:g})"

    def logpdf(self, tau: np.ndarray) -> np.ndarray:
        tau = np.asarray(tau, dtype=float)
        s = self.scale
        if self.name == "halfnormal":
            return math.log(2.0) - 0.5 * _LOG_2PI - math.log(s) - 0.5 * (tau / s) ** 2
        if self.name == "halfcauchy":
            return math.log(2.0 / math.pi) - math.log(s) - np.log1p((tau / s) ** 2)
        if not math.isfinite(s):
            return np.zeros_like(tau)
        return np.where(tau <= s, -math.log(s), -np.inf)


def check_tau_prior(tau_prior: str, tau_scale: float, *, allow_improper: bool) -> _TauPrior:
    """The ``tau`` prior of a family in :data:`TAU_PRIORS` (case, spaces, ``-`` and ``_``
    ignored: ``"half-normal"`` is ``"halfnormal"``) with scale ``tau_scale > 0``;
    ``tau_scale = inf`` only for ``"uniform"`` and only with ``allow_improper``."""
    if not isinstance(tau_prior, str):
        raise ValueError(f"tau_prior must be {_ALLOWED}")
    name = tau_prior.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if name not in TAU_PRIORS:
        raise ValueError(f"tau_prior must be {_ALLOWED}; got {tau_prior!r}")
    try:
        scale = float(tau_scale)
    except (TypeError, ValueError):
        raise ValueError(f"tau_scale must be a positive number; got {tau_scale!r}") from None
    if math.isnan(scale) or scale <= 0.0:
        raise ValueError(f"tau_scale must be > 0; got {tau_scale!r}")
    if math.isinf(scale) and name != "uniform":
        raise ValueError("tau_scale must be finite for the half-normal and half-Cauchy priors")
    if math.isinf(scale) and not allow_improper:
        raise ValueError("the improper uniform prior on tau (tau_scale=inf) is not allowed "
                         "for the binomial-normal model; give a finite upper bound")
    return _TauPrior(name, scale)


@dataclass(frozen=True)
class _MuPrior:
    mean: float            # NaN for the flat prior
    sd: float              # inf for the flat prior

    @property
    def flat(self) -> bool:
        return not math.isfinite(self.sd)

    def describe(self) -> str:
        return "flat (improper)" if self.flat else f"normal({self.mean:g}, {self.sd:g})"


def check_mu_prior(mu_prior: Any) -> _MuPrior:
    """The ``mu`` prior: ``"flat"`` (also ``"uniform"`` or None; improper) or
    ``("normal", mean, sd)`` with finite ``mean`` and ``sd > 0``."""
    if mu_prior is None or (isinstance(mu_prior, str)
                            and mu_prior.strip().lower() in ("flat", "uniform")):
        return _MuPrior(math.nan, math.inf)
    if (isinstance(mu_prior, (tuple, list)) and len(mu_prior) == 3
            and isinstance(mu_prior[0], str) and mu_prior[0].strip().lower() == "normal"):
        try:
            mean, sd = float(mu_prior[1]), float(mu_prior[2])
        except (TypeError, ValueError):
            raise ValueError("mu_prior normal mean and sd must be numbers; "
                             f"got {mu_prior!r}") from None
        if not math.isfinite(mean):
            raise ValueError(f"mu_prior mean must be finite; got {mu_prior[1]!r}")
        if not (math.isfinite(sd) and sd > 0.0):
            raise ValueError("mu_prior sd (the prior scale) must be finite and > 0; "
                             f"got {mu_prior[2]!r}")
        return _MuPrior(mean, sd)
    raise ValueError("mu_prior must be 'flat' or ('normal', mean, sd); "
                     f"got {mu_prior!r}")


def normal_tail_decay(k: int, mp: _MuPrior) -> float:
    """Exponent ``e`` of the upper tail ``tau^-e`` of the normal-normal likelihood
    integrated over ``mu``: ``k - 1`` with a flat ``mu`` prior, ``k`` with a normal one."""
    return float(k - 1 if mp.flat else k)
