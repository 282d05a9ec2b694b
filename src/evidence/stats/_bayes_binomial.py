"""The binomial-normal model of :mod:`evidence.stats.bayes` (private): single proportions,
``xi ~ Bin(ni, expit(theta_i))``, ``theta_i ~ N(mu, tau^2)``, exact likelihood.

The joint posterior comes from :mod:`evidence.stats._bayes_binomial_grid`. The marginal
density of ``mu`` (a mixture of the grid rows' polynomials), the predictive density and
the shrinkage densities can be evaluated exactly at any point and are tabulated on their
own adaptive panels (:func:`_refine`: a panel is halved until its interpolating
polynomial matches the exact density at six test points to ``1e-10`` of the peak). The
predictive and shrinkage densities convolve every row with ``N(0, tau^2)``: by direct
summation over the row's ``mu`` nodes when ``tau`` is at least half the row's scale
``s(u)``, and otherwise by Gauss-Hermite quadrature of the row's interpolating
polynomial (of the density, or of ``log(p / L_i)`` for the shrinkage), which is exact in
the limit ``tau -> 0`` where a sum over nodes would break into spikes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from evidence.stats._bayes_binomial_grid import (
    BinomialLikelihood,
    _agq_check,
    _BinomialGrid,
    _sample_moments,
)
from evidence.stats._bayes_priors import _MuPrior, _TauPrior
from evidence.stats._bayes_quadrature import (
    _G,
    _LOG_2PI,
    _SQRT2,
    _VINV,
    _W0,
    _WG,
    _XG,
    _Dist,
    _geometric_edges,
    _Interp,
    _panel_nodes,
    _Panels,
)
from evidence.stats._bayes_summaries import (
    BayesFit,
    _density_grids,
    _existing_moments,
    _moment_exists,
    _summaries,
)

__all__ = ["fit_binomial"]

_N_GH = 16                                # adaptive Gauss-Hermite nodes per study (start)
_N_GH_MAX = 128
_AGQ_TOL = 1e-8                           # allowed posterior sd of the log-likelihood change
_N_CONV = 24                              # Gauss-Hermite nodes for the N(0, tau^2) convolution
_CONV_SWITCH = 0.5                        # tau / s(u) below which that convolution is used
_HX, _HW = np.polynomial.hermite.hermgauss(_N_CONV)
_LOG_HW_SQRTPI = np.log(_HW) - 0.5 * math.log(math.pi)

_CHECK_XI = np.array([-0.97, -0.62, -0.21, 0.28, 0.71, 0.96])   # test points in a panel
_REFINE_TOL = 1e-10


def _refine(fn: Callable[[np.ndarray], np.ndarray], edges: np.ndarray,
            tol: float = _REFINE_TOL, rounds: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive panels for a density evaluated exactly by ``fn`` (1-D in, 1-D out).

    Every panel's interpolating polynomial is compared with ``fn`` at six test
    points; panels whose error exceeds ``tol`` times the largest density value are
    halved, until none does (at most ``rounds`` times).  Returns the final edges
    ``(P + 1,)`` and the node values ``(P, G)``.
    """
    edges = np.asarray(edges, dtype=float)
    mid = 0.5 * (edges[1:] + edges[:-1])
    half = 0.5 * (edges[1:] - edges[:-1])
    vals = np.maximum(fn((mid[:, None] + half[:, None] * _XG).reshape(-1)), 0.0).reshape(-1, _G)
    test = np.ones(mid.size, dtype=bool)
    for _ in range(rounds):
        idx = np.flatnonzero(test & (half > 0))
        if idx.size == 0:
            break
        pts = (mid[idx, None] + half[idx, None] * _CHECK_XI).reshape(-1)
        truth = np.maximum(fn(pts), 0.0).reshape(idx.size, -1)
        coef = vals[idx] @ _VINV.T                                       # (n, G)
        interp = np.polynomial.legendre.legval(_CHECK_XI, coef.T, tensor=True)  # (n, 6)
        scale = max(float(vals.max()), float(truth.max()))
        bad = np.max(np.abs(interp - truth), axis=1) > tol * scale
        test[:] = False
        if not np.any(bad):
            break
        split = idx[bad]
        # halve the bad panels
        new_mid = np.concatenate([mid[split] - 0.5 * half[split], mid[split] + 0.5 * half[split]])
        new_half = np.concatenate([0.5 * half[split], 0.5 * half[split]])
        new_vals = np.maximum(fn((new_mid[:, None] + new_half[:, None] * _XG).reshape(-1)),
                              0.0).reshape(-1, _G)
        keep = np.ones(mid.size, dtype=bool)
        keep[split] = False
        mid = np.concatenate([mid[keep], new_mid])
        half = np.concatenate([half[keep], new_half])
        vals = np.concatenate([vals[keep], new_vals])
        test = np.concatenate([np.zeros(int(keep.sum()), dtype=bool),
                               np.ones(new_mid.size, dtype=bool)])
        order = np.argsort(mid, kind="stable")
        mid, half, vals, test = mid[order], half[order], vals[order], test[order]
    edges = np.concatenate([mid - half, [mid[-1] + half[-1]]])
    return edges, vals


def _trim(edges: np.ndarray, vals: np.ndarray, rel: float = 1e-17) -> tuple[np.ndarray, np.ndarray]:
    """Drop end panels whose node values are all below ``rel`` of the maximum."""
    peak = vals.max(axis=1)
    big = np.flatnonzero(peak > rel * peak.max())
    i0 = max(int(big[0]) - 1, 0)
    i1 = min(int(big[-1]) + 1, peak.size - 1)
    return edges[i0:i1 + 2], vals[i0:i1 + 1]


def _repanel(pdf: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: float, hi: float,
             center: float, w0: float) -> tuple[_Panels, float]:
    """Tabulate an exactly computable density on its own Gauss-Legendre panels.

    The panels start at width ``w0`` at ``center``, grow geometrically towards
    ``lo`` and ``hi`` and are then refined adaptively (:func:`_refine`); panels
    beyond the last ones with a node density above ``1e-17`` of the maximum are
    dropped.  Returns the panels and the integral of the tabulated density (1 up to
    the truncation and quadrature errors).
    """
    center = min(max(center, lo), hi)
    edges = _geometric_edges(np.array([lo]), np.array([center]), np.array([hi]),
                             np.array([w0]), np.array([w0]))[0]
    edges, vals = _refine(lambda t: pdf(t[None, :], np.array([0]))[0], edges)
    edges, vals = _trim(edges, vals)
    mass = float((vals @ _WG * 0.5 * np.diff(edges)).sum())
    return _Panels(edges[None, :], vals[None, :, :]), mass

def _normal_expit_mean(mu: np.ndarray, tau: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """``E[expit(mu + tau Z)]`` and ``E[expit(...)^2]`` averaged with weights ``w``."""
    th = mu[:, None] + _SQRT2 * tau[:, None] * _HX[None, :]
    p = special.expit(th)
    hw = np.exp(_LOG_HW_SQRTPI)
    return float(w @ (p @ hw)), float(w @ ((p * p) @ hw))


def fit_binomial(x: np.ndarray, n: np.ndarray, tp: _TauPrior, mp: _MuPrior, level: float,
                 ids: tuple[str, ...]) -> BayesFit:
    """Posterior of the binomial-normal model for checked counts and priors.

    Parameters
    ----------
    x, n : numpy.ndarray
        Events and sample sizes (whole numbers, ``0 <= x <= n``, ``n > 0``, ``k >= 1``).
    tp, mp : prior objects
        From :func:`~evidence.stats._bayes_priors.check_tau_prior` (proper) and
        :func:`~evidence.stats._bayes_priors.check_mu_prior`; a flat ``mu`` prior only
        when some study has ``0 < x < n`` (checked by the caller).
    level : float
        Probability content of the intervals.
    ids : tuple of str
        Study labels (for the shrinkage labels).

    Returns
    -------
    BayesFit
    """
    k = x.size
    inner = (x > 0) & (x < n)
    notes: list[str] = []
    bm = BinomialLikelihood(x, n)
    nh = _N_GH
    grid = _BinomialGrid(bm, mp, tp, nh)
    while True:
        agq_err = _agq_check(grid)
        if agq_err <= _AGQ_TOL or nh >= _N_GH_MAX:
            break
        nh *= 2
        grid.evaluate(nh)
    if agq_err > _AGQ_TOL:
        notes.append(f"adaptive Gauss-Hermite quadrature with {nh} nodes changes the "
                     f"log-likelihood by {agq_err:.1e} when doubled")
    R, Nz = grid.mu.shape
    Pz = grid.Pz
    rows_all = np.arange(R)
    W, mh, sh, tau = grid.W, grid.mhat, grid.shat, grid.tau
    rowpan = _Panels(grid.z_edges, grid.row_density.reshape(R, Pz, _G))
    om_flat = grid.omega.reshape(-1)
    mu_flat = grid.mu.reshape(-1)
    tau_flat = np.repeat(tau, Nz)
    keep = np.flatnonzero(om_flat > 1e-15)

    # -- mu (logit) and the pooled proportion: the mixture of the rows' polynomials,
    #    tabulated on its own adaptive panels
    def mu_pdf(xv: np.ndarray, rows: np.ndarray) -> np.ndarray:
        z = (xv.reshape(1, -1) - mh[:, None]) / sh[:, None]
        return ((W / sh) @ rowpan.pdf(z, rows_all)).reshape(xv.shape)

    mu_lo = np.array([float(np.min(mh + sh * grid.z_edges[:, 0]))])
    mu_hi = np.array([float(np.max(mh + sh * grid.z_edges[:, -1]))])
    om_k, mu_k, tau_k = om_flat[keep], mu_flat[keep], tau_flat[keep]
    mu_mean = float(om_k @ mu_k)
    s_min = float(np.min(sh[W > 1e-12 * W.max()]))
    mu_pan, mu_mass = _repanel(mu_pdf, float(mu_lo[0]), float(mu_hi[0]), mu_mean, _W0 * s_min)
    mu_d = _Dist(mu_pan.cdf, mu_pan.pdf, mu_pan.lo, mu_pan.hi)
    prop_d = _Dist(mu_pan.cdf, mu_pan.pdf, mu_pan.lo, mu_pan.hi, "expit")
    mu_sd = math.sqrt(max(float(om_k @ mu_k ** 2) - mu_mean ** 2, 0.0))
    pm = special.expit(mu_k)
    p_mean = float(om_k @ pm)
    p_sd = math.sqrt(max(float(om_k @ pm ** 2) - p_mean ** 2, 0.0))

    # -- tau (integrated on u = log tau)
    lf = grid.lf_u
    fmax = float(np.max(lf))
    tau_pan = _Panels(grid.u_edges, np.exp(lf - fmax).reshape(1, -1, _G))
    f0 = math.exp(float(lf[0] - grid.u[0]) - grid.log_z)
    tau_d = _Dist(tau_pan.cdf, tau_pan.pdf, tau_pan.lo, tau_pan.hi, "exp",
                  lower_density=np.array([f0]))
    t_mean = float(W @ tau)
    t_sd = math.sqrt(max(float(W @ tau ** 2) - t_mean ** 2, 0.0))
    decay = float(np.sum(inner)) - (1.0 if mp.flat else 0.0)
    has1 = _moment_exists(1, tp, decay)
    has2 = _moment_exists(2, tp, decay)

    # -- predictive theta_new: per row, direct sum over the mu nodes (tau not small)
    #    or Gauss-Hermite convolution of the row polynomial (tau small); tabulated on
    #    adaptive panels
    small = tau < _CONV_SWITCH * sh
    rows_b = np.flatnonzero(small)
    in_a = np.repeat(~small, Nz)[keep]
    a_mu, a_tau, a_om = mu_k[in_a], tau_k[in_a], om_k[in_a]
    groups = _conv_groups(tau, sh, rows_b)

    def new_pdf(xv: np.ndarray, rows: np.ndarray) -> np.ndarray:
        t = xv.reshape(-1)
        out = np.zeros(t.size)
        if a_om.size:
            z = (t[:, None] - a_mu[None, :]) / a_tau[None, :]
            out += (np.exp(-0.5 * z * z) / a_tau[None, :]) @ a_om / math.sqrt(2.0 * math.pi)
        for rb, sq, wq in groups:
            zq = _conv_points(t, rb, sq, tau, mh, sh)
            f = rowpan.pdf(zq, rb).reshape(rb.size, t.size, -1)
            out += np.einsum("l,ltq,q->t", W[rb] / sh[rb], f, wq)
        return out.reshape(xv.shape)

    # half-width beyond which every node's normal kernel is below 1e-17 of the density
    span = float(np.max(tau_k * np.sqrt(2.0 * np.maximum(0.0, 40.0 + np.log(om_k)))))
    new_pan, new_mass = _repanel(new_pdf, float(mu_lo[0]) - span, float(mu_hi[0]) + span,
                                 mu_mean, _W0 * s_min)
    new_d = _Dist(new_pan.cdf, new_pan.pdf, new_pan.lo, new_pan.hi)
    newp_d = _Dist(new_pan.cdf, new_pan.pdf, new_pan.lo, new_pan.hi, "expit")
    new_mean = mu_mean
    new_sd = math.sqrt(max(float(om_k @ (mu_k ** 2 + tau_k ** 2)) - mu_mean ** 2, 0.0))
    np_mean, np2 = _normal_expit_mean(mu_k, tau_k, om_k)
    np_sd = math.sqrt(max(np2 - np_mean ** 2, 0.0))
    (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd) = _existing_moments(
        has1, has2, mp.flat, notes, (t_mean, t_sd), (mu_mean, mu_sd), (new_mean, new_sd))

    # -- shrinkage: densities on panels placed with moments from a sample of nodes,
    #    then exact moments from the densities
    m0, s0 = _sample_moments(grid)
    sh_pan, sh_mass_err = _shrinkage_panels(grid, keep, in_a, groups, m0, s0)
    mass_err = sh_mass_err
    sh_d = _Dist(sh_pan.cdf, sh_pan.pdf, sh_pan.lo, sh_pan.hi)
    shp_d = _Dist(sh_pan.cdf, sh_pan.pdf, sh_pan.lo, sh_pan.hi, "expit")
    nodes_t, wt_t = _panel_nodes(sh_pan.edges)
    tt = nodes_t.reshape(k, -1)
    wtt = sh_pan.pdf(tt, np.arange(k)) * wt_t.reshape(k, -1)
    wtt /= wtt.sum(axis=1, keepdims=True)
    sh_mean = (wtt * tt).sum(axis=1)
    sh_sd = np.sqrt(np.maximum((wtt * (tt - sh_mean[:, None]) ** 2).sum(axis=1), 0.0))
    pt = special.expit(tt)
    shp_mean = (wtt * pt).sum(axis=1)
    shp_sd = np.sqrt(np.maximum((wtt * (pt - shp_mean[:, None]) ** 2).sum(axis=1), 0.0))

    # -- summaries
    mu_s = _summaries(mu_d, ["mu"], level, np.array([mu_mean]), np.array([mu_sd]), notes)[0]
    tau_s = _summaries(tau_d, ["tau"], level, np.array([t_mean]), np.array([t_sd]), notes)[0]
    new_s = _summaries(new_d, ["theta_new"], level, np.array([new_mean]), np.array([new_sd]),
                       notes)[0]
    p_s = _summaries(prop_d, ["proportion"], level, np.array([p_mean]), np.array([p_sd]),
                     notes)[0]
    pn_s = _summaries(newp_d, ["proportion_new"], level, np.array([np_mean]),
                      np.array([np_sd]), notes)[0]
    sh_s = _summaries(sh_d, [f"theta[{s}]" for s in ids], level, sh_mean, sh_sd, notes)
    shp_s = _summaries(shp_d, [f"proportion[{s}]" for s in ids], level, shp_mean, shp_sd,
                       notes)
    mu_grid, mu_dens, tau_grid, tau_dens = _density_grids(mu_d, tau_d)
    qa, qb = prop_d.quantile(np.array([1e-3, 1 - 1e-3]), np.array([0, 0]))
    pg = np.linspace(qa, qb, 201)
    prop_grid = special.expit(pg)
    prop_dens = prop_d.natural_pdf(pg[None, :], np.array([0]))[0]
    p_pos = 1.0 - float(mu_d.cdf(np.array([[0.0]]), np.array([0]))[0, 0])
    mass_err = max(mass_err, abs(mu_mass - 1.0), abs(new_mass - 1.0))
    if mp.flat:
        notes.append("improper prior: the marginal likelihood is not defined (reported as nan)")
        log_ml = math.nan
    else:
        log_ml = grid.log_z
    dists = {"mu": (mu_d, 0), "tau": (tau_d, 0), "theta_new": (new_d, 0),
             "proportion": (prop_d, 0), "proportion_new": (newp_d, 0),
             "shrinkage": (sh_d, 0), "shrinkage_proportion": (shp_d, 0)}
    diag = {"n_tau_nodes": R, "n_mu_nodes": Nz,
            "tau_range": (float(np.exp(grid.u_edges[0, 0])),
                          float(np.exp(grid.u_edges[0, -1]))),
            "agq_nodes": nh, "agq_error": agq_err, "edge_density": grid.edge_density,
            "shrinkage_mass_error": mass_err}
    return BayesFit(mu=mu_s, tau=tau_s, theta_new=new_s, shrinkage=sh_s,
                    log_marginal_likelihood=log_ml, prob_mu_positive=p_pos, mu_grid=mu_grid,
                    mu_density=mu_dens, tau_grid=tau_grid, tau_density=tau_dens,
                    diagnostics=diag, notes=notes, dists=dists, proportion=p_s,
                    proportion_new=pn_s, shrinkage_proportion=shp_s,
                    proportion_grid=prop_grid, proportion_density=prop_dens)

_CONV_RULES = ((1e-6, 1), (1e-2, 3), (1e-1, 8), (math.inf, _N_CONV))


def _conv_groups(tau: np.ndarray, sh: np.ndarray, rows_b: np.ndarray
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows whose ``N(0, tau^2)`` convolution is done by Gauss-Hermite quadrature of the
    row polynomial: ``(rows, nodes s_q, weights)``.  The number of nodes grows with
    ``r = tau / s(u)``: one node below ``1e-6`` (the convolution changes the row
    density by less than ``1e-12``), 3 below ``1e-2`` (error of order ``r^6``), 8
    below 0.1 (``r^16``) and 24 up to the switch to direct summation at 0.5."""
    r = tau[rows_b] / sh[rows_b]
    out = []
    lower = -math.inf
    for upper, q in _CONV_RULES:
        sel = rows_b[(r >= lower) & (r < upper)]
        lower = upper
        if sel.size == 0:
            continue
        if q == 1:
            out.append((sel, np.zeros(1), np.ones(1)))
        else:
            sq, wq = np.polynomial.hermite.hermgauss(q)
            out.append((sel, sq, wq / math.sqrt(math.pi)))
    return out


def _conv_points(t: np.ndarray, rb: np.ndarray, sq: np.ndarray, tau: np.ndarray,
                 mh: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Row coordinates ``z`` of ``t - sqrt(2) tau s_q``: shape ``(rows, T * Q)``."""
    zq = ((t[None, :, None] - _SQRT2 * tau[rb][:, None, None] * sq[None, None, :]
           - mh[rb][:, None, None]) / sh[rb][:, None, None])
    return zq.reshape(rb.size, -1)


def _shrinkage_panels(grid: _BinomialGrid, keep: np.ndarray, in_a: np.ndarray,
                      groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                      mean: np.ndarray, sd: np.ndarray) -> tuple[_Panels, float]:
    """Posterior densities of every ``theta_i`` on their own adaptive panels.

    ``f_i(t) = Bin(x_i | n_i, expit(t)) * sum over rows of
    int N(t | mu, tau^2) p(mu | tau, data) / L_i(mu, tau) d mu``; every term is a
    conditional density of ``theta_i`` given ``(mu, tau)`` times a posterior weight,
    so nothing overflows.  The ``mu`` integral is the sum over the row's nodes, or for
    small ``tau`` the Gauss-Hermite convolution of the row's interpolating polynomial
    of ``log(p / L_i)``.  The panels start at the approximate mean +- 12 sd, are
    widened while the density at an end exceeds ``1e-14`` of its maximum, and are
    refined adaptively (:func:`_refine`).  Returns the panels and the largest
    deviation of a density's integral from 1.
    """
    bm = grid.bm
    k = bm.k
    Nz = grid.mu.shape[1]
    Pz = grid.Pz
    W, mh, sh, tau = grid.W, grid.mhat, grid.shat, grid.tau
    ka = keep[in_a]
    a_mu = grid.mu.reshape(-1)[ka]
    a_tau = np.repeat(tau, Nz)[ka]
    a_lom = np.log(grid.omega.reshape(-1)[ka])
    a_ll = grid.ll.reshape(-1, k)[ka]                    # (nA, k)
    log_rho = np.log(np.maximum(grid.row_density, 1e-300))  # (R, Nz) density in z
    sd = np.where(sd > 0, sd, 1.0)
    edges_all, vals_all, masses = [], [], []
    a_lomn = a_lom - np.log(a_tau) - 0.5 * _LOG_2PI
    a_itau = 1.0 / a_tau
    for i in range(k):
        # B rows: interpolate log(p(z) / L_i(mu(z), tau)) (smooth, near-quadratic); the
        # products with Bin(x_i | t) are conditional densities and stay bounded
        parts = []
        for rb, sq, wq in groups:
            lh = (log_rho[rb] - grid.ll[rb, :, i]).reshape(rb.size, Pz, _G)
            parts.append((rb, sq, np.log(wq), _Interp(grid.z_edges[rb], lh)))

        def dens(t: np.ndarray, i: int = i, parts: list = parts) -> np.ndarray:
            """Density of theta_i at t: every term is a conditional density of theta_i
            (bounded), weighted by the posterior weight of its node or row."""
            lt = bm.loglik_theta(t, i)
            tot = np.zeros(t.size)
            if a_mu.size:
                ci = a_lomn - a_ll[:, i]
                for s0 in range(0, t.size, 64):
                    tt = t[s0:s0 + 64]
                    z = (tt[:, None] - a_mu[None, :]) * a_itau[None, :]
                    np.multiply(z, z, out=z)
                    z *= -0.5
                    z += ci[None, :]
                    z += lt[s0:s0 + 64, None]
                    np.exp(z, out=z)
                    tot[s0:s0 + 64] += z.sum(axis=1)
            for rb, sq, lwq, lh in parts:
                zq = _conv_points(t, rb, sq, tau, mh, sh)                 # (nB, T*Q)
                ex = (lh(zq, np.arange(rb.size)).reshape(rb.size, t.size, -1)
                      + lwq + lt[None, :, None]
                      + (np.log(W[rb]) - np.log(sh[rb]))[:, None, None])
                tot += np.exp(ex).sum(axis=(0, 2))
            return np.nan_to_num(tot, nan=0.0, posinf=0.0)

        ref = 0.0
        lo_f, hi_f = 12.0, 12.0
        for _attempt in range(6):
            lo = np.array([mean[i] - lo_f * sd[i]])
            hi = np.array([mean[i] + hi_f * sd[i]])
            e = _geometric_edges(lo, np.array([mean[i]]), hi, np.array([_W0 * sd[i]]),
                                 np.array([_W0 * sd[i]]))[0]
            e, vals = _refine(dens, e)
            vmax = float(vals.max())
            left_ok = vals[0, 0] < 1e-14 * vmax
            right_ok = vals[-1, -1] < 1e-14 * vmax
            if left_ok and right_ok:
                break
            if not left_ok:
                lo_f *= 2.0
            if not right_ok:
                hi_f *= 2.0
        e, vals = _trim(e, vals)
        masses.append(float((vals @ _WG * 0.5 * np.diff(e)).sum()) * math.exp(ref))
        edges_all.append(e)
        vals_all.append(vals)
    # pad to a common panel count (tiny panels beyond the end carry no mass)
    P_t = max(v.shape[0] for v in vals_all)
    E = np.empty((k, P_t + 1))
    V = np.zeros((k, P_t, _G))
    for i in range(k):
        p = vals_all[i].shape[0]
        E[i, : p + 1] = edges_all[i]
        tiny = 1e-9 * max(float(edges_all[i][-1] - edges_all[i][0]), 1e-300)
        E[i, p + 1:] = edges_all[i][-1] + tiny * np.arange(1, P_t - p + 1)
        V[i, :p] = vals_all[i]
    mass_err = float(np.max(np.abs(np.array(masses) - 1.0)))
    return _Panels(E, V), mass_err
