"""Bayesian random-effects meta-analysis by deterministic numerical integration.

Two hierarchical models, both with independent priors on the overall effect ``mu``
and the between-study standard deviation ``tau``:

* :func:`bayes_normal` - the normal-normal hierarchical model of R's ``bayesmeta``
  (Roever 2020): ``yi ~ N(theta_i, vi)``, ``theta_i ~ N(mu, tau^2)``.
* :func:`bayes_binomial` - the binomial-normal model for single proportions on the
  logit scale with the exact binomial likelihood (no continuity correction):
  ``xi ~ Bin(ni, expit(theta_i))``, ``theta_i ~ N(mu, tau^2)``.

Nothing is sampled; every number is a deterministic integral, so the same input
gives bitwise the same output.

Integration scheme
------------------
The heterogeneity is integrated on the scale ``u = log(tau)``: the posterior density
of ``u`` (prior x likelihood x Jacobian ``tau``) decays at least like ``tau`` towards
``tau = 0`` and like a power of ``tau`` (or faster) in the upper tail, so it is
smooth with two decaying tails.  Its range is cut where the log density has dropped
by 37 (relative density ``1e-16``) below its maximum (or at the upper bound of a
bounded uniform prior) and is covered by panels of 20-point Gauss-Legendre rules
whose widths start at three posterior standard deviations at the mode and grow
geometrically (factor 1.3) into the tails.  On each panel the density is also
represented by its degree-19 interpolating (Legendre) polynomial, which gives the
cumulative distribution function anywhere, and hence quantiles by root finding.

*Normal-normal model.*  Given ``tau`` the effect ``mu`` is conditionally normal
(flat or normal prior), so ``mu`` is integrated analytically and the posterior of
``mu``, the posterior predictive distribution of a new study's ``theta`` and the
shrinkage posteriors of the ``theta_i`` are normal mixtures over the ``tau`` nodes
(the construction of bayesmeta, which approximates the same mixtures with a coarser
support chosen by its DIRECT algorithm).  Their distribution functions are exact sums
of normal distribution functions.

*Binomial-normal model.*  Each study's random effect is integrated by adaptive
Gauss-Hermite quadrature (centred at the mode of the integrand, scaled by its
curvature; 16 nodes, doubled automatically until the change of the total
log-likelihood on doubling has a posterior standard deviation below ``1e-8`` over
the nodes that carry 99.99% of the posterior mass).  The joint posterior of
``(mu, u)`` is integrated on a sheared grid: for every ``u`` node, ``mu`` runs over
Gauss-Legendre panels in the standardised variable ``z = (mu - m(u)) / s(u)``,
where ``m(u)`` and ``s(u)`` are the conditional posterior mode and curvature scale
of ``mu`` (the conditional posterior of ``mu`` given ``tau`` is log-concave), so the
funnel of the joint posterior costs nothing.  The marginal density of ``mu`` (a
mixture of the rows' polynomials), the predictive density and the shrinkage
densities can be evaluated exactly at any point and are tabulated on their own
adaptive panels: a panel is halved until its interpolating polynomial matches the
exact density at six test points to ``1e-10`` of the peak.  The predictive and
shrinkage densities convolve every row with ``N(0, tau^2)``: by direct summation over
the row's ``mu`` nodes when ``tau`` is at least half the row's scale ``s(u)``, and
otherwise by Gauss-Hermite quadrature of the row's interpolating polynomial (of the
density, or of ``log(p / L_i)`` for the shrinkage), which is exact in the limit
``tau -> 0`` where a sum over nodes would break into spikes.

Accuracy
--------
Against independent integrations written separately (``tests/stats/test_bayes*.py``)
the distribution functions at the reported quantiles agree to about ``1e-10`` (normal
model) and ``1e-9`` (binomial model), posterior means to ``1e-10``.  The limiting
factor of the binomial model is the Gauss-Hermite quadrature for studies with 0 or
all events when a heavy-tailed ``tau`` prior puts mass at ``tau`` well above 2 on the
logit scale; ``diagnostics.agq_error`` reports it and a note is added when it exceeds
``1e-8``.

Intervals
---------
Every summary carries the posterior median, mean, standard deviation, mode, the
equal-tailed (central) interval and the shortest interval.  ``bayesmeta`` reports
**shortest** intervals by default (its ``interval.type = "shortest"``, stated below
its printed summaries); for a unimodal density the shortest interval is the
highest-posterior-density interval.  Shortest intervals are computed on the scale on
which they are reported (``tau``, not ``log(tau)``; the proportion, not the logit);
if a density is not unimodal on that scale the shortest interval is reported as NaN
with a note.

Modules
-------
This module holds the public API (the result types, the two fits, the posterior
functions). The numerical work is in private modules of the wing:
``_bayes_quadrature`` (panels, mixtures, root finding), ``_bayes_priors``,
``_bayes_summaries`` (intervals, modes, moments), ``_bayes_normal`` (the normal-normal
fit), ``_bayes_binomial_grid`` (the binomial-normal likelihood and the joint grid) and
``_bayes_binomial`` (the binomial-normal fit and its tabulated densities).

References
----------
Roever C (2020). Bayesian random-effects meta-analysis using the bayesmeta R
package. J Stat Softw 93(6). doi:10.18637/jss.v093.i06
Roever C, Friede T (2017). Discrete approximation of a mixture distribution via
restricted divergence. J Comput Graph Stat 26(1):217-222.
Gelman A, Carlin JB, Stern HS, Dunson DB, Vehtari A, Rubin DB (2014). Bayesian Data
Analysis, 3rd ed. Chapman & Hall/CRC.
Pinheiro JC, Bates DM (1995). Approximations to the log-likelihood function in the
nonlinear mixed-effects model. J Comput Graph Stat 4(1):12-35 (adaptive
Gauss-Hermite quadrature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import special

from evidence.stats._bayes_binomial import fit_binomial
from evidence.stats._bayes_normal import fit_normal
from evidence.stats._bayes_priors import (
    TAU_PRIORS,
    check_mu_prior,
    check_tau_prior,
    normal_tail_decay,
)
from evidence.stats._bayes_summaries import BayesFit
from evidence.stats.checks import check_count_pairs, check_level, check_study_ids
from evidence.stats.results import Summary, jsonable

__all__ = [
    "TAU_PRIORS",
    "BayesResult",
    "Diagnostics",
    "PosteriorSummary",
    "bayes_binomial",
    "bayes_normal",
    "posterior_cdf",
    "posterior_density",
    "posterior_quantile",
]

# the columns of BayesResult.summary(), one value per parameter
_SUMMARY_COLUMNS: tuple[str, ...] = ("median", "mean", "sd", "central_lower", "central_upper",
                                     "shortest_lower", "shortest_upper")

# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PosteriorSummary:
    """Summary of one scalar posterior (or posterior predictive) distribution.

    Attributes
    ----------
    label : str
        What is summarised, e.g. ``"mu"``, ``"tau"``, ``"theta_new"``,
        ``"theta[Smith 2001]"``, ``"proportion"``.
    median, mean, sd, mode : float
        Posterior median, mean, standard deviation and mode.  ``mean``/``sd`` are
        ``inf`` (or NaN for a mean of a quantity on the real line) when the moment
        does not exist (heavy-tailed priors with few studies).
    central_lower, central_upper : float
        Equal-tailed interval: the ``(1 - level) / 2`` and ``(1 + level) / 2``
        quantiles.
    shortest_lower, shortest_upper : float
        Shortest interval with probability ``level`` (bayesmeta's default
        ``interval.type``); NaN if the density is not unimodal.
    level : float
        Probability content of both intervals.
    """

    label: str
    median: float
    mean: float
    sd: float
    mode: float
    central_lower: float
    central_upper: float
    shortest_lower: float
    shortest_upper: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (non-finite numbers become ``None``)."""
        return jsonable(asdict(self))


@dataclass(frozen=True)
class Diagnostics:
    """Numerical details of the integration (for reports and tests).

    Attributes
    ----------
    n_tau_nodes : int
        Gauss-Legendre nodes on ``u = log(tau)``.
    n_mu_nodes : int
        ``mu`` nodes per ``tau`` node (binomial model; 0 for the normal model,
        where ``mu`` is integrated analytically).
    tau_range : tuple of float
        ``(tau_min, tau_max)`` covered by the nodes.
    agq_nodes : int
        Adaptive Gauss-Hermite nodes per study used (binomial model; 0 otherwise).
    agq_error : float
        Posterior standard deviation of the change of the total log-likelihood when
        the number of Gauss-Hermite nodes is doubled (binomial model).
    edge_density : float
        Largest relative (log-scale drop converted to a ratio) density at the ends of
        the integration ranges; about ``1e-16`` when the ranges are wide enough.
    shrinkage_mass_error : float
        Largest deviation from 1 of the integral of a tabulated density (the
        marginal of ``mu``, the predictive and the shrinkage densities) before it
        was renormalised (binomial model; 0 otherwise).
    """

    n_tau_nodes: int
    n_mu_nodes: int
    tau_range: tuple[float, float]
    agq_nodes: int = 0
    agq_error: float = 0.0
    edge_density: float = 0.0
    shrinkage_mass_error: float = 0.0


@dataclass(frozen=True)
class BayesResult:
    """Result of :func:`bayes_normal` or :func:`bayes_binomial`.

    All effects are on the analysis scale (the scale of ``yi``; the logit for the
    binomial model).  For the binomial model the ``proportion*`` fields repeat the
    summaries on the probability scale (quantiles are back-transformed with
    ``expit``; means, modes and shortest intervals are computed on the probability
    scale itself).

    Attributes
    ----------
    model : str
        ``"normal-normal"`` or ``"binomial-normal"``.
    k : int
        Number of studies.
    study_ids : tuple of str
        One label per study, in input order.
    yi, vi : numpy.ndarray or None
        The data of the normal model.
    xi, ni : numpy.ndarray or None
        The data of the binomial model.
    tau_prior : str
        ``"halfnormal(scale)"``, ``"halfcauchy(scale)"``, ``"uniform(0, upper)"`` or
        ``"uniform(0, inf) (improper)"``.
    mu_prior : str
        ``"flat (improper)"`` or ``"normal(mean, sd)"``.
    level : float
        Probability content of the intervals.
    mu, tau, theta_new : PosteriorSummary
        Marginal posteriors of the overall effect and of the heterogeneity, and the
        posterior predictive distribution of a new study's true effect.
    shrinkage : tuple of PosteriorSummary
        Posterior of each study's true effect ``theta_i``, in input order.
    proportion, proportion_new : PosteriorSummary or None
        Binomial model: ``expit(mu)`` and ``expit(theta_new)``.
    shrinkage_proportion : tuple of PosteriorSummary
        Binomial model: ``expit(theta_i)`` (empty for the normal model).
    log_marginal_likelihood : float
        ``log p(data)`` (NaN when a prior is improper).
    prob_mu_positive : float
        Posterior probability that ``mu > 0`` (the proportion exceeds 1/2 in the
        binomial model).
    mu_grid, mu_density : numpy.ndarray
        201 points from the 0.1% to the 99.9% posterior quantile of ``mu`` and the
        marginal posterior density there (for figures).
    tau_grid, tau_density : numpy.ndarray
        201 points from 0 to the 99.5% quantile of ``tau`` and the density.
    proportion_grid, proportion_density : numpy.ndarray or None
        Binomial model: density of ``expit(mu)`` on 201 points.
    diagnostics : Diagnostics
    notes : tuple of str
        Things the reader must know (improper priors, non-existent moments,
        multimodal densities).
    """

    model: str
    k: int
    study_ids: tuple[str, ...]
    yi: np.ndarray | None
    vi: np.ndarray | None
    xi: np.ndarray | None
    ni: np.ndarray | None
    tau_prior: str
    mu_prior: str
    level: float
    mu: PosteriorSummary
    tau: PosteriorSummary
    theta_new: PosteriorSummary
    shrinkage: tuple[PosteriorSummary, ...]
    proportion: PosteriorSummary | None
    proportion_new: PosteriorSummary | None
    shrinkage_proportion: tuple[PosteriorSummary, ...]
    log_marginal_likelihood: float
    prob_mu_positive: float
    mu_grid: np.ndarray
    mu_density: np.ndarray
    tau_grid: np.ndarray
    tau_density: np.ndarray
    proportion_grid: np.ndarray | None
    proportion_density: np.ndarray | None
    diagnostics: Diagnostics
    notes: tuple[str, ...] = ()
    _post: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every field except the internal posterior object."""
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "_post"}
        out["mu"] = self.mu.to_dict()
        out["tau"] = self.tau.to_dict()
        out["theta_new"] = self.theta_new.to_dict()
        out["shrinkage"] = [s.to_dict() for s in self.shrinkage]
        out["proportion"] = None if self.proportion is None else self.proportion.to_dict()
        out["proportion_new"] = (None if self.proportion_new is None
                                 else self.proportion_new.to_dict())
        out["shrinkage_proportion"] = [s.to_dict() for s in self.shrinkage_proportion]
        out["diagnostics"] = asdict(self.diagnostics)
        return jsonable(out)

    def summary(self) -> Summary:
        """One row per parameter: ``mu``, ``tau``, ``theta_new`` and, for the binomial
        model, ``proportion`` and ``proportion_new``.

        Returns
        -------
        Summary
            Indexed by ``"parameter"`` (the summaries' labels), with the columns
            ``median``, ``mean``, ``sd``, ``central_lower``, ``central_upper``,
            ``shortest_lower`` and ``shortest_upper`` (intervals of probability
            ``level``). The shrinkage estimates are in ``shrinkage`` and
            ``shrinkage_proportion``.
        """
        rows = [self.mu, self.tau, self.theta_new]
        if self.proportion is not None and self.proportion_new is not None:
            rows += [self.proportion, self.proportion_new]
        columns = {c: np.array([getattr(s, c) for s in rows]) for c in _SUMMARY_COLUMNS}
        return Summary("parameter", tuple(s.label for s in rows), columns)


# ----------------------------------------------------------------------------- input checks


def _as_vector(values: Any, name: str) -> np.ndarray:
    # no helper of evidence.stats.checks does this: a finite 1-D float vector with k >= 1,
    # a scalar taken as one study (check_counts is for counts, check_count_pairs wants 1-D)
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.size < 1:
        raise ValueError(f"{name} is empty: at least one study (k >= 1) is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or infinite values)")
    return arr


def _study_ids(study_ids: Sequence[Any] | None, k: int) -> tuple[str, ...]:
    # the wing's check (unique labels); the default labels stay "1" .. "k" rather than the
    # wing's "study 1" .., so that the parameters are "theta[1]" .. as before the move
    return check_study_ids(study_ids if study_ids is not None else range(1, k + 1), k,
                           unique=True)


# ----------------------------------------------------------------------------- posterior objects


class _Posterior:
    """Everything needed to evaluate the marginal distributions after the fit."""

    def __init__(self, dists: dict[str, tuple[Any, int]]) -> None:
        self.dists = dists            # name -> (distribution, row)


def _lookup(result: BayesResult, parameter: str) -> tuple[Any, int]:
    post = result._post
    if post is None:
        raise ValueError("this result carries no posterior object")
    key = parameter
    if parameter.startswith("theta[") and parameter.endswith("]"):
        sid = parameter[6:-1]
        if sid not in result.study_ids:
            raise ValueError(f"unknown study {sid!r}")
        key = ("shrinkage", result.study_ids.index(sid))
    elif parameter.startswith("proportion[") and parameter.endswith("]"):
        sid = parameter[11:-1]
        if sid not in result.study_ids:
            raise ValueError(f"unknown study {sid!r}")
        key = ("shrinkage_proportion", result.study_ids.index(sid))
    if isinstance(key, tuple):
        name, i = key
        if name not in post.dists:
            raise ValueError(f"{parameter!r} is not available for the {result.model} model")
        d, _ = post.dists[name]
        return d, i
    if key not in post.dists:
        allowed = sorted(k for k in post.dists if k not in ("shrinkage", "shrinkage_proportion"))
        raise ValueError(f"parameter must be one of {allowed} or 'theta[<study id>]'; "
                         f"got {parameter!r}")
    return post.dists[key]


def _to_working(d: Any, x: np.ndarray) -> np.ndarray:
    if d.transform == "exp":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)
    if d.transform == "expit":
        with np.errstate(divide="ignore", invalid="ignore"):
            return special.logit(x)
    return x


def posterior_density(result: BayesResult, grid: Any, parameter: str = "mu") -> np.ndarray:
    """Marginal posterior density of a parameter on a grid of its natural scale.

    Parameters
    ----------
    result : BayesResult
        A fit from :func:`bayes_normal` or :func:`bayes_binomial`.
    grid : array-like
        Points at which to evaluate the density (values of ``tau`` for ``"tau"``,
        probabilities for ``"proportion"``).
    parameter : str
        ``"mu"``, ``"tau"``, ``"theta_new"`` (posterior predictive), ``"theta[<id>]"``
        (shrinkage of a study), and for the binomial model ``"proportion"``,
        ``"proportion_new"`` and ``"proportion[<id>]"``.

    Returns
    -------
    numpy.ndarray
        The density at every grid point (0 outside the support or where the
        integration ranges end, i.e. beyond relative density ``1e-16``).
    """
    d, row = _lookup(result, parameter)
    x = np.asarray(grid, dtype=float)
    shape = x.shape
    x = x.reshape(1, -1)
    w = _to_working(d, x)
    out = np.zeros_like(x)
    ok = np.isfinite(w)
    if np.any(ok):
        out[ok] = d.natural_pdf(w[ok].reshape(1, -1), np.array([row]))[0]
    if d.transform in ("exp", "expit"):
        out = np.where(x == 0.0, d.lower_density[row], out)
        out = np.where(x < 0.0, 0.0, out)
        if d.transform == "expit":
            out = np.where(x >= 1.0, 0.0, out)
    return out.reshape(shape)


def posterior_cdf(result: BayesResult, x: Any, parameter: str = "mu") -> np.ndarray:
    """Marginal posterior distribution function ``P(parameter <= x)``.

    Parameters are as for :func:`posterior_density`.
    """
    d, row = _lookup(result, parameter)
    xv = np.asarray(x, dtype=float)
    shape = xv.shape
    xv = xv.reshape(1, -1)
    w = _to_working(d, xv)
    out = np.where(w == np.inf, 1.0, 0.0)
    ok = np.isfinite(w)
    if np.any(ok):
        out[ok] = d.cdf(w[ok].reshape(1, -1), np.array([row]))[0]
    return out.reshape(shape)


def posterior_quantile(result: BayesResult, p: Any, parameter: str = "mu") -> np.ndarray:
    """Quantiles of a marginal posterior (inverse of :func:`posterior_cdf`).

    Parameters are as for :func:`posterior_density`; ``p`` must lie in (0, 1).
    """
    d, row = _lookup(result, parameter)
    pv = np.asarray(p, dtype=float)
    if np.any(~((pv > 0) & (pv < 1))):
        raise ValueError("probabilities must lie in (0, 1)")
    flat = pv.reshape(-1)
    rows = np.full(flat.size, row)
    return d.g(d.quantile(flat, rows)).reshape(pv.shape)


# ----------------------------------------------------------------------------- normal-normal model


def bayes_normal(yi: Any, vi: Any, *, tau_prior: str = "halfnormal", tau_scale: float = 0.5,
                 mu_prior: str | tuple[str, float, float] = "flat", level: float = 0.95,
                 study_ids: Sequence[Any] | None = None) -> BayesResult:
    """Bayesian random-effects meta-analysis in the normal-normal hierarchical model.

    The model of R's ``bayesmeta`` (Roever 2020): ``yi ~ N(theta_i, vi)`` with known
    sampling variances, ``theta_i ~ N(mu, tau^2)``, independent priors on ``mu`` and
    ``tau``.  Computed by deterministic numerical integration (see the module
    docstring); no sampling.

    Parameters
    ----------
    yi : array-like
        Observed effects (``k >= 1``, finite).
    vi : array-like
        Their sampling variances (squared standard errors, ``> 0``; bayesmeta's
        ``sigma`` is ``sqrt(vi)``).
    tau_prior : {"halfnormal", "halfcauchy", "uniform"}
        Prior family of the heterogeneity ``tau`` (:data:`TAU_PRIORS`).
    tau_scale : float
        Scale of the half-normal or half-Cauchy prior (``> 0``); for ``"uniform"``
        the upper bound, where ``math.inf`` gives bayesmeta's default improper
        uniform prior on ``[0, inf)`` (then ``k >= 3`` is needed with a flat
        ``mu`` prior, ``k >= 2`` with a normal one, for a proper posterior).
    mu_prior : "flat" or ("normal", mean, sd)
        Prior of the overall effect: improper uniform (bayesmeta's default) or
        normal with the given mean and standard deviation (``sd > 0``).
    level : float
        Probability content of the intervals, in (0, 1).
    study_ids : sequence, optional
        Unique study labels (default ``"1" .. "k"``).

    Returns
    -------
    BayesResult
        Posterior summaries of ``mu``, ``tau``, the predictive ``theta_new`` and the
        shrinkage estimates ``theta_i``, density grids, the marginal likelihood.

    Raises
    ------
    ValueError
        For invalid data or priors, or when the priors give an improper posterior.

    Notes
    -----
    Given ``tau``, ``mu`` is normal with precision
    ``P = sum(1 / (vi + tau^2)) (+ 1 / sd^2)``, so the posterior of ``mu``, the
    predictive distribution and the shrinkage posteriors are normal mixtures over
    the ``tau`` quadrature nodes; the marginal posterior of ``tau`` is integrated on
    ``log(tau)`` with Gauss-Legendre panels.  Quantiles come from root finding on
    the distribution functions (relative accuracy about ``1e-10``).

    Examples
    --------
    >>> res = bayes_normal([0.1, 0.3, -0.2], [0.04, 0.09, 0.05], mu_prior=("normal", 0, 1))
    >>> res.tau.shortest_lower        # the shortest tau interval starts at 0 here
    0.0
    >>> res.mu.central_lower < res.mu.median < res.mu.central_upper
    True
    """
    y = _as_vector(yi, "yi")
    v = _as_vector(vi, "vi")
    if y.size != v.size:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    if np.any(v <= 0):
        raise ValueError("every vi (sampling variance) must be > 0")
    level = check_level(level)
    k = y.size
    ids = _study_ids(study_ids, k)
    tp = check_tau_prior(tau_prior, tau_scale, allow_improper=True)
    mp = check_mu_prior(mu_prior)
    if not tp.proper and normal_tail_decay(k, mp) <= 1.0:
        raise ValueError("the improper uniform prior on tau gives an improper posterior here: "
                         "it needs k >= 3 studies with a flat mu prior (k >= 2 with a normal "
                         "mu prior); use a proper tau prior")
    fit = fit_normal(y, v, tp, mp, level, ids)
    return _result(fit, model="normal-normal", k=k, study_ids=ids, yi=y, vi=v, xi=None,
                   ni=None, tau_prior=tp.describe(), mu_prior=mp.describe(), level=level)


# ------------------------------------------------------------------------ binomial-normal model


def bayes_binomial(xi: Any, ni: Any, *, tau_prior: str = "halfnormal", tau_scale: float = 0.5,
                   mu_prior: str | tuple[str, float, float] = ("normal", 0.0, 10.0),
                   level: float = 0.95, study_ids: Sequence[Any] | None = None) -> BayesResult:
    """Bayesian random-effects meta-analysis of single proportions (binomial-normal model).

    ``xi ~ Binomial(ni, expit(theta_i))``, ``theta_i ~ N(mu, tau^2)`` on the logit
    scale, with the exact binomial likelihood: studies with no events or with only
    events enter as they are, without any continuity correction.  Deterministic
    numerical integration (see the module docstring); no sampling.

    Parameters
    ----------
    xi, ni : array-like
        Events and sample sizes (whole numbers, ``0 <= xi <= ni``, ``ni > 0``,
        ``k >= 1``).
    tau_prior : {"halfnormal", "halfcauchy", "uniform"}
        Prior family of ``tau`` (logit scale; :data:`TAU_PRIORS`).  It must be proper: for
        ``"uniform"`` give a finite upper bound as ``tau_scale``.
    tau_scale : float
        Scale of the half-normal or half-Cauchy prior, or the upper bound of the
        uniform prior (``> 0``).
    mu_prior : ("normal", mean, sd) or "flat"
        Prior of ``mu`` (logit scale); default ``normal(0, 10)``.  A flat prior is
        accepted only if at least one study has ``0 < xi < ni``: when every study
        has 0 events (or every study has only events) the likelihood does not vanish
        as ``mu -> -inf`` (``+inf``) and a flat prior gives an improper posterior;
        with zero-event and all-event studies only, the posterior is improper for
        heavy-tailed ``tau`` priors.  In these degenerate cases a proper (normal)
        ``mu`` prior is required and a ``ValueError`` is raised otherwise.
    level : float
        Probability content of the intervals, in (0, 1).
    study_ids : sequence, optional
        Unique study labels (default ``"1" .. "k"``).

    Returns
    -------
    BayesResult
        Summaries of ``mu`` and ``tau`` (logit scale), of the pooled proportion
        ``expit(mu)``, of the predictive ``theta_new`` and ``expit(theta_new)``, and
        of the shrinkage estimates ``theta_i`` and ``expit(theta_i)``.

    Raises
    ------
    ValueError
        For invalid counts or priors, or when the priors would give an improper
        posterior.

    Notes
    -----
    Each study's likelihood ``L_i(mu, tau) = int Bin(xi | ni, expit(theta))
    N(theta | mu, tau^2) dtheta`` is computed by adaptive Gauss-Hermite quadrature;
    the number of nodes (16 to start) is doubled until the change of the total
    log-likelihood on doubling has a posterior standard deviation below ``1e-8``
    over the nodes carrying 99.99% of the posterior (``diagnostics.agq_error``;
    every posterior expectation then moves by less than ``1e-8`` standard
    deviations).  The joint posterior of
    ``(mu, log tau)`` is integrated on a grid sheared along the conditional mode of
    ``mu`` (see the module docstring).

    Examples
    --------
    >>> res = bayes_binomial([0, 3, 10], [20, 25, 40])
    >>> 0.0 < res.proportion.median < 1.0
    True
    """
    # the wing's check of events and totals, after the local one (k >= 1, a scalar is
    # one study, finite values first)
    x, n = check_count_pairs(_as_vector(xi, "xi"), _as_vector(ni, "ni"))
    level = check_level(level)
    k = x.size
    ids = _study_ids(study_ids, k)
    tp = check_tau_prior(tau_prior, tau_scale, allow_improper=False)
    mp = check_mu_prior(mu_prior)
    inner = (x > 0) & (x < n)
    if mp.flat and not np.any(inner):
        raise ValueError("a flat mu prior gives an improper posterior when no study has "
                         "0 < xi < ni (only zero-event and/or all-event studies); use a "
                         "proper prior such as mu_prior=('normal', 0, 10)")
    fit = fit_binomial(x, n, tp, mp, level, ids)
    return _result(fit, model="binomial-normal", k=k, study_ids=ids, yi=None, vi=None, xi=x,
                   ni=n, tau_prior=tp.describe(), mu_prior=mp.describe(), level=level)


def _result(fit: BayesFit, **fields: Any) -> BayesResult:
    """The frozen result of a fit; ``fields`` are the model, the data, priors and level."""
    def one(s: dict[str, Any] | None) -> PosteriorSummary | None:
        return None if s is None else PosteriorSummary(**s)

    return BayesResult(
        **fields, mu=PosteriorSummary(**fit.mu), tau=PosteriorSummary(**fit.tau),
        theta_new=PosteriorSummary(**fit.theta_new),
        shrinkage=tuple(PosteriorSummary(**s) for s in fit.shrinkage),
        proportion=one(fit.proportion), proportion_new=one(fit.proportion_new),
        shrinkage_proportion=tuple(PosteriorSummary(**s) for s in fit.shrinkage_proportion),
        log_marginal_likelihood=fit.log_marginal_likelihood,
        prob_mu_positive=fit.prob_mu_positive, mu_grid=fit.mu_grid,
        mu_density=fit.mu_density, tau_grid=fit.tau_grid, tau_density=fit.tau_density,
        proportion_grid=fit.proportion_grid, proportion_density=fit.proportion_density,
        diagnostics=Diagnostics(**fit.diagnostics), notes=tuple(dict.fromkeys(fit.notes)),
        _post=_Posterior(fit.dists))
