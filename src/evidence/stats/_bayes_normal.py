"""The normal-normal hierarchical model of :mod:`evidence.stats.bayes` (private):
R's ``bayesmeta`` (Roever 2020), ``yi ~ N(theta_i, vi)``, ``theta_i ~ N(mu, tau^2)``.

Given ``tau`` the effect ``mu`` is conditionally normal (flat or normal prior), with
precision ``P = sum(1 / (vi + tau^2)) (+ 1 / sd^2)``, so ``mu`` is integrated
analytically and the posterior of ``mu``, the posterior predictive distribution of a new
study's ``theta`` and the shrinkage posteriors of the ``theta_i`` are normal mixtures over
the ``tau`` nodes (the construction of bayesmeta, which approximates the same mixtures
with a coarser support chosen by its DIRECT algorithm). Their distribution functions are
exact sums of normal distribution functions. The marginal posterior of ``tau`` is
integrated on ``u = log(tau)`` with Gauss-Legendre panels.
"""

from __future__ import annotations

import math

import numpy as np

from evidence.stats._bayes_priors import _MuPrior, _TauPrior, normal_tail_decay
from evidence.stats._bayes_quadrature import (
    _G,
    _LOG_2PI,
    _W0,
    _Dist,
    _geometric_edges,
    _Mixture,
    _panel_nodes,
    _Panels,
    _scan_range,
)
from evidence.stats._bayes_summaries import (
    BayesFit,
    _density_grids,
    _existing_moments,
    _moment_exists,
    _summaries,
)

__all__ = ["fit_normal"]


def fit_normal(y: np.ndarray, v: np.ndarray, tp: _TauPrior, mp: _MuPrior, level: float,
               ids: tuple[str, ...]) -> BayesFit:
    """Posterior of the normal-normal model for checked data and priors.

    Parameters
    ----------
    y, v : numpy.ndarray
        Effects and sampling variances (``k >= 1``, finite, ``v > 0``).
    tp, mp : prior objects
        From :func:`~evidence.stats._bayes_priors.check_tau_prior` and
        :func:`~evidence.stats._bayes_priors.check_mu_prior`; the posterior must be
        proper (checked by the caller).
    level : float
        Probability content of the intervals.
    ids : tuple of str
        Study labels (for the shrinkage labels ``theta[<id>]``).

    Returns
    -------
    BayesFit
    """
    k = y.size
    decay = normal_tail_decay(k, mp)           # mu-integrated likelihood ~ tau^-decay
    notes: list[str] = []
    w0 = 0.0 if mp.flat else 1.0 / mp.sd ** 2
    m0 = 0.0 if mp.flat else mp.mean
    nconst = (k - 1 if mp.flat else k) * 0.5 * _LOG_2PI

    def conditional(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = 1.0 / (v[None, :] + (tau ** 2)[:, None])
        prec = w.sum(axis=1) + w0
        mean = (w @ y + w0 * m0) / prec
        q = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1) + w0 * (m0 - mean) ** 2
        ll = 0.5 * np.log(w).sum(axis=1) - 0.5 * np.log(prec) - 0.5 * q - nconst
        if not mp.flat:
            ll = ll + 0.5 * math.log(w0)
        return ll, mean, prec

    def logf_u(u: np.ndarray) -> np.ndarray:
        t = np.exp(u)
        with np.errstate(divide="ignore"):
            return tp.logpdf(t) + u + conditional(t)[0]

    # integration range on u = log(tau)
    ref = math.log(tp.scale) if math.isfinite(tp.scale) else 0.5 * math.log(
        max(float(np.var(y)), float(np.median(v))))
    hard_hi = math.log(tp.upper) if math.isfinite(tp.upper) else math.inf
    u_lo, u_mode, u_hi, sl, sr = _scan_range(logf_u, min(ref, hard_hi), 0.5, hard_hi=hard_hi)
    edges = _geometric_edges(np.array([u_lo]), np.array([u_mode]), np.array([u_hi]),
                             np.array([_W0 * sl]), np.array([_W0 * sr]))
    nodes, qw = _panel_nodes(edges)
    u = nodes.reshape(-1)
    lf = logf_u(u)
    lmax = float(np.max(lf))
    vals = np.exp(lf - lmax)
    wts = qw.reshape(-1) * vals
    log_z = lmax + math.log(float(wts.sum()))
    W = wts / wts.sum()
    tau = np.exp(u)
    _, M, P = conditional(tau)
    edge_lf = logf_u(np.array([u_lo, u_hi]))
    edge = [float(np.exp(edge_lf[0] - lmax))]
    if not (math.isfinite(hard_hi) and u_hi >= hard_hi):
        edge.append(float(np.exp(edge_lf[1] - lmax)))

    # marginal of tau (on u), exact density at tau = 0
    tau_pan = _Panels(edges, vals.reshape(1, -1, _G))
    ll0 = conditional(np.array([0.0]))[0][0]
    f0 = math.exp(float(tp.logpdf(np.array([0.0]))[0]) + ll0 - log_z)
    tau_d = _Dist(tau_pan.cdf, tau_pan.pdf, tau_pan.lo, tau_pan.hi, "exp",
                  lower_density=np.array([f0]))
    # normal mixtures
    mu_mix = _Mixture(W, M[None, :], 1.0 / np.sqrt(P)[None, :])
    new_mix = _Mixture(W, M[None, :], np.sqrt(1.0 / P + tau ** 2)[None, :])
    B = v[:, None] / (v[:, None] + tau[None, :] ** 2)
    sh_mix = _Mixture(W, (1.0 - B) * y[:, None] + B * M[None, :],
                      np.sqrt(v[:, None] * (1.0 - B) + B ** 2 / P[None, :]))
    mu_d = _Dist(mu_mix.cdf, mu_mix.pdf, mu_mix.lo, mu_mix.hi)
    new_d = _Dist(new_mix.cdf, new_mix.pdf, new_mix.lo, new_mix.hi)
    sh_d = _Dist(sh_mix.cdf, sh_mix.pdf, sh_mix.lo, sh_mix.hi)

    # moments
    t_mean = float(W @ tau)
    t_sd = math.sqrt(max(float(W @ tau ** 2) - t_mean ** 2, 0.0))
    has1 = _moment_exists(1, tp, decay)
    has2 = _moment_exists(2, tp, decay)
    mu_mean, mu_sd = (float(a[0]) for a in mu_mix.moments())
    new_mean, new_sd = (float(a[0]) for a in new_mix.moments())
    sh_mean, sh_sd = sh_mix.moments()
    (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd) = _existing_moments(
        has1, has2, mp.flat, notes, (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd))

    mu_s = _summaries(mu_d, ["mu"], level, np.array([mu_mean]), np.array([mu_sd]), notes)[0]
    tau_s = _summaries(tau_d, ["tau"], level, np.array([t_mean]), np.array([t_sd]), notes)[0]
    new_s = _summaries(new_d, ["theta_new"], level, np.array([new_mean]), np.array([new_sd]),
                       notes)[0]
    sh_s = _summaries(sh_d, [f"theta[{s}]" for s in ids], level, sh_mean, sh_sd, notes)
    mu_grid, mu_dens, tau_grid, tau_dens = _density_grids(mu_d, tau_d)
    p_pos = 1.0 - float(mu_d.cdf(np.array([[0.0]]), np.array([0]))[0, 0])
    if mp.flat or not tp.proper:
        notes.append("improper prior: the marginal likelihood is not defined (reported as nan)")
        log_ml = math.nan
    else:
        log_ml = log_z
    dists = {"mu": (mu_d, 0), "tau": (tau_d, 0), "theta_new": (new_d, 0),
             "shrinkage": (sh_d, 0)}
    diag = {"n_tau_nodes": int(u.size), "n_mu_nodes": 0,
            "tau_range": (float(math.exp(u_lo)), float(math.exp(u_hi))),
            "edge_density": max(edge)}
    return BayesFit(mu=mu_s, tau=tau_s, theta_new=new_s, shrinkage=sh_s,
                    log_marginal_likelihood=log_ml, prob_mu_positive=p_pos, mu_grid=mu_grid,
                    mu_density=mu_dens, tau_grid=tau_grid, tau_density=tau_dens,
                    diagnostics=diag, notes=notes, dists=dists)
