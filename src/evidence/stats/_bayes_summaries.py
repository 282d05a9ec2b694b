"""Summaries of the posteriors of :mod:`evidence.stats.bayes` (private): median, moments,
mode, central and shortest intervals, the density grids for figures, and the container
:class:`BayesFit` a model's fit hands to the public module.

A summary is a dictionary of the fields of :class:`evidence.stats.bayes.PosteriorSummary`
(the public module builds the frozen dataclass; importing it here would tie the two
modules in a circle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evidence.stats._bayes_priors import _TauPrior
from evidence.stats._bayes_quadrature import _Dist, _golden_max, _solve_increasing

__all__ = ["BayesFit"]


@dataclass(frozen=True)
class BayesFit:
    """Everything a fit of either model computes, before it becomes a ``BayesResult``.

    The fields have the names and meaning of :class:`evidence.stats.bayes.BayesResult`;
    ``mu`` ... ``shrinkage_proportion`` are summaries as dictionaries, ``diagnostics`` the
    keyword arguments of ``Diagnostics``, and ``dists`` maps each parameter name
    (``"mu"``, ``"tau"``, ``"theta_new"``, ``"shrinkage"``, ...) to its distribution
    object and row, for ``posterior_density``/``cdf``/``quantile``.
    """

    mu: dict[str, Any]
    tau: dict[str, Any]
    theta_new: dict[str, Any]
    shrinkage: list[dict[str, Any]]
    log_marginal_likelihood: float
    prob_mu_positive: float
    mu_grid: np.ndarray
    mu_density: np.ndarray
    tau_grid: np.ndarray
    tau_density: np.ndarray
    diagnostics: dict[str, Any]
    notes: list[str]
    dists: dict[str, tuple[_Dist, int]]
    proportion: dict[str, Any] | None = None
    proportion_new: dict[str, Any] | None = None
    shrinkage_proportion: list[dict[str, Any]] = field(default_factory=list)
    proportion_grid: np.ndarray | None = None
    proportion_density: np.ndarray | None = None
def _shortest(dist: _Dist, level: float, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shortest intervals (natural scale) of the given batch rows; assumes unimodality."""
    r = rows.size
    L = level

    def dens(x: np.ndarray, i: np.ndarray) -> np.ndarray:
        return dist.natural_pdf(x[:, None], rows[i])[:, 0]

    allr = np.arange(r)
    qL = dist.quantile(np.full(r, L), rows)
    q1 = dist.quantile(np.full(r, 1.0 - L), rows)
    h_lo = dist.lower_density[rows] - dens(qL, allr)       # h(0)
    h_hi = dens(q1, allr)                                   # h(1 - L); upper density is 0
    lower = np.full(r, np.nan)
    upper = np.full(r, np.nan)
    at0 = h_lo >= 0
    lower[at0] = dist.natural_lower
    upper[at0] = dist.g(qL[at0])
    at1 = (~at0) & (h_hi <= 0)
    lower[at1] = dist.g(q1[at1])
    upper[at1] = dist.g(dist.hi[rows][at1])
    todo = np.flatnonzero(~(at0 | at1))
    if todo.size:
        n = todo.size
        sub = rows[todo]
        plo = np.zeros(n)
        phi = np.full(n, 1.0 - L)
        hlo = h_lo[todo].copy()
        hhi = h_hi[todo].copy()
        a_lo = dist.lo[sub].copy()
        a_hi = q1[todo].copy()
        b_lo = qL[todo].copy()
        b_hi = dist.hi[sub].copy()
        side = np.zeros(n, dtype=int)
        a = np.empty(n)
        b = np.empty(n)
        act = np.ones(n, dtype=bool)
        for _ in range(200):
            idx = np.flatnonzero(act)
            if idx.size == 0:
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                pc = plo[idx] - hlo[idx] * (phi[idx] - plo[idx]) / (hhi[idx] - hlo[idx])
            width = phi[idx] - plo[idx]
            badp = ((~np.isfinite(pc)) | (pc <= plo[idx] + 1e-3 * width)
                    | (pc >= phi[idx] - 1e-3 * width))
            pc = np.where(badp, 0.5 * (plo[idx] + phi[idx]), pc)
            fun = dist._cdf_pdf(sub[idx])
            ac = _solve_increasing(fun, pc, a_lo[idx].copy(), a_hi[idx].copy())
            bc = _solve_increasing(fun, pc + L, b_lo[idx].copy(), b_hi[idx].copy())
            hc = (dist.natural_pdf(ac[:, None], sub[idx])[:, 0]
                  - dist.natural_pdf(bc[:, None], sub[idx])[:, 0])
            a[idx] = ac
            b[idx] = bc
            neg = hc < 0
            i_n, i_p = idx[neg], idx[~neg]
            plo[i_n], hlo[i_n], a_lo[i_n], b_lo[i_n] = pc[neg], hc[neg], ac[neg], bc[neg]
            hhi[i_n[side[i_n] == -1]] *= 0.5
            side[i_n] = -1
            phi[i_p], hhi[i_p], a_hi[i_p], b_hi[i_p] = pc[~neg], hc[~neg], ac[~neg], bc[~neg]
            hlo[i_p[side[i_p] == 1]] *= 0.5
            side[i_p] = 1
            tol_a = 1e-11 * (1.0 + np.abs(ac))
            tol_b = 1e-11 * (1.0 + np.abs(bc))
            done = (((a_hi[idx] - a_lo[idx]) <= tol_a) & ((b_hi[idx] - b_lo[idx]) <= tol_b)) \
                | (hc == 0) | ((phi[idx] - plo[idx]) <= 1e-16)
            act[idx[done]] = False
        lower[todo] = dist.g(a)
        upper[todo] = dist.g(b)
    return lower, upper


def _summaries(dist: _Dist, labels: Sequence[str], level: float, mean: np.ndarray,
               sd: np.ndarray, notes: list[str]) -> list[dict[str, Any]]:
    """Median, central and shortest intervals and mode of every batch member."""
    b = dist.b
    rows = np.arange(b)
    alpha = 1.0 - level
    med = dist.quantile(np.full(b, 0.5))
    clo = dist.quantile(np.full(b, alpha / 2.0))
    chi = dist.quantile(np.full(b, 1.0 - alpha / 2.0))
    # candidate grid for the mode and the unimodality check
    qa = dist.quantile(np.full(b, 1e-4))
    qb = dist.quantile(np.full(b, 1.0 - 1e-4))
    t = np.linspace(0.0, 1.0, 161)
    grid = qa[:, None] + (qb - qa)[:, None] * t[None, :]
    dens = dist.natural_pdf(grid, rows)
    bounded = dist.transform in ("exp", "expit")
    full = np.concatenate([dist.lower_density[:, None], dens], axis=1) if bounded else dens
    dmax = full.max(axis=1, keepdims=True)
    step = np.diff(full, axis=1)
    tol = 1e-7 * dmax
    sgn = np.where(step > tol, 1, np.where(step < -tol, -1, 0))
    n_modes = np.zeros(b, dtype=int)
    for i in range(b):
        s = sgn[i][sgn[i] != 0]
        if s.size:
            n_modes[i] = (int(np.sum((s[:-1] > 0) & (s[1:] < 0)))
                          + int(s[0] < 0) + int(s[-1] > 0))
    unimodal = n_modes <= 1
    slo = np.full(b, np.nan)
    shi = np.full(b, np.nan)
    if np.any(unimodal):
        u_rows = np.flatnonzero(unimodal)
        slo[u_rows], shi[u_rows] = _shortest(dist, level, u_rows)
    for i in np.flatnonzero(~unimodal):
        notes.append(f"the posterior density of {labels[i]} is not unimodal on its reporting "
                     "scale; its shortest interval is not reported")
    # mode
    j = np.argmax(dens, axis=1)
    mode = np.empty(b)
    at_lower = bounded & (j == 0) & (dist.lower_density >= dens[rows, 0])
    inner = ~at_lower
    if np.any(inner):
        ii = np.flatnonzero(inner)
        ja = np.clip(j[ii] - 1, 0, grid.shape[1] - 1)
        jb = np.clip(j[ii] + 1, 0, grid.shape[1] - 1)
        a = grid[ii, ja]
        bb = grid[ii, jb]
        if not bounded:
            span = grid[ii, 1] - grid[ii, 0]
            a = np.where(j[ii] == 0, a - span, a)
            bb = np.where(j[ii] == grid.shape[1] - 1, bb + span, bb)
        xm = _golden_max(lambda x, r: dist.natural_pdf(x[:, None], ii[r])[:, 0], a, bb)
        mode[ii] = dist.g(xm)
    mode[at_lower] = dist.natural_lower
    out = []
    for i in range(b):
        out.append(dict(
            label=labels[i], median=float(dist.g(med[i])), mean=float(mean[i]), sd=float(sd[i]),
            mode=float(mode[i]), central_lower=float(dist.g(clo[i])),
            central_upper=float(dist.g(chi[i])), shortest_lower=float(slo[i]),
            shortest_upper=float(shi[i]), level=level))
    return out


def _moment_exists(order: int, prior: _TauPrior, lik_decay: float) -> bool:
    """Whether ``E[tau^order]`` is finite when the likelihood (integrated over ``mu``)
    decays like ``tau^-lik_decay``: the posterior tail is ``tau^-(tail + lik_decay)``."""
    if not math.isfinite(prior.tail) or math.isfinite(prior.upper):
        return True
    return prior.tail + lik_decay - order > 1.0

def _density_grids(mu_d: _Dist, tau_d: _Dist) -> tuple[np.ndarray, ...]:
    one = np.array([0])
    qa, qb = mu_d.quantile(np.array([1e-3, 1 - 1e-3]), np.array([0, 0]))
    mu_grid = np.linspace(qa, qb, 201)
    mu_dens = mu_d.natural_pdf(mu_grid[None, :], one)[0]
    t_hi = float(tau_d.g(tau_d.quantile(np.array([0.995]), one))[0])
    tau_grid = np.linspace(0.0, t_hi, 201)
    with np.errstate(divide="ignore"):
        tau_dens = tau_d.natural_pdf(np.log(tau_grid[1:])[None, :], one)[0]
    tau_dens = np.concatenate([[tau_d.lower_density[0]], tau_dens])
    return mu_grid, mu_dens, tau_grid, tau_dens


def _existing_moments(has1: bool, has2: bool, flat: bool, notes: list[str],
                      tau: tuple[float, float], mu: tuple[float, float],
                      new: tuple[float, float]
                      ) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """(mean, sd) of tau, mu and theta_new with the moments that do not exist replaced
    (no first moment: means nan, tau's mean inf; no second: sds inf), each noted; mu's
    moments go only under a flat prior on mu."""
    (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd) = tau, mu, new
    if not has1:
        t_mean, new_mean = math.inf, math.nan
        _moment_note("tau", notes)
        _moment_note("theta_new", notes)
        if flat:
            mu_mean = math.nan
            _moment_note("mu", notes)
    if not has2:
        t_sd, new_sd = math.inf, math.inf
        if flat:
            mu_sd = math.inf
        if has1:
            _moment_note("tau (sd)", notes)
    return (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd)


def _moment_note(label: str, notes: list[str]) -> None:
    notes.append(f"the posterior mean/sd of {label} does not exist (heavy-tailed posterior); "
                 "reported as nan/inf")
