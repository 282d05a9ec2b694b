"""The binomial-normal likelihood and the grid of its joint posterior (private part of
:mod:`evidence.stats.bayes`).

Each study's likelihood ``L_i(mu, tau) = int Bin(x_i | n_i, expit(theta))
N(theta | mu, tau^2) d theta`` is computed by adaptive Gauss-Hermite quadrature
(:class:`BinomialLikelihood`: centred at the mode of the integrand, found by a bracketed
Newton / regula falsi iteration, scaled by its curvature; Pinheiro and Bates 1995). The
joint posterior of ``(mu, u = log tau)`` is integrated on a sheared grid
(:class:`_BinomialGrid`): for every ``u`` node, ``mu`` runs over Gauss-Legendre panels in
``z = (mu - m(u)) / s(u)`` around the conditional mode ``m(u)`` of the (log-concave)
conditional posterior of ``mu``, with ``s(u)`` its curvature scale, so the funnel of the
joint posterior costs nothing. :func:`_agq_check` measures the error of the inner
quadrature as the posterior standard deviation of the change of the total
log-likelihood when the nodes are doubled.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from evidence.stats._bayes_priors import _MuPrior, _TauPrior
from evidence.stats._bayes_quadrature import (
    _DROP,
    _LOG_2PI,
    _SQRT2,
    _W0,
    _geometric_edges,
    _panel_nodes,
    _scan_range,
    _solve_increasing,
)

__all__ = ["BinomialLikelihood"]

_N_GH_LAYOUT = 8                          # nodes used only to place the integration grid
_GH_TABLE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gh(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and ``log(weight) + node^2`` (for adaptive quadrature)."""
    if nodes not in _GH_TABLE:
        t, w = np.polynomial.hermite.hermgauss(nodes)
        _GH_TABLE[nodes] = (t, np.log(w) + t * t)
    return _GH_TABLE[nodes]


def _newton_falsi_step(xv: np.ndarray, f: np.ndarray, df: np.ndarray, lo: np.ndarray,
                       hi: np.ndarray, flo: np.ndarray, fhi: np.ndarray,
                       dxold: np.ndarray) -> np.ndarray:
    """Next iterate of a bracketed root search of a decreasing function.

    Newton from ``xv`` when it stays inside ``(lo, hi)`` and is shorter than the
    previous step; otherwise regula falsi between the bracket ends (whose stored
    values the caller halves Illinois-style); otherwise bisection.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        newton = xv - f / df
        falsi = lo - flo * (hi - lo) / (fhi - flo)
    w = hi - lo
    ok_n = (newton > lo) & (newton < hi) & (np.abs(newton - xv) < dxold)
    ok_f = (falsi > lo + 1e-3 * w) & (falsi < hi - 1e-3 * w)
    return np.where(ok_n, newton, np.where(ok_f, falsi, 0.5 * (lo + hi)))


def _mode_offset(d: np.ndarray, lo: np.ndarray, hi: np.ndarray, glo: np.ndarray,
                 ghi: np.ndarray, m: np.ndarray, t2: np.ndarray, x: np.ndarray,
                 n: np.ndarray) -> np.ndarray:
    """Root of ``x - n expit(m + d) - d / t2`` (decreasing in ``d``) in ``[lo, hi]``.

    All arrays broadcast to the shape of ``d``; the iteration runs on the
    not-yet-converged elements only.
    """
    shape = d.shape
    d = d.reshape(-1).copy()
    lo = np.broadcast_to(lo, shape).reshape(-1).copy()
    hi = np.broadcast_to(hi, shape).reshape(-1).copy()
    glo = np.broadcast_to(glo, shape).reshape(-1).copy()
    ghi = np.broadcast_to(ghi, shape).reshape(-1).copy()
    m = np.broadcast_to(m, shape).reshape(-1)
    t2 = np.broadcast_to(t2, shape).reshape(-1)
    x = np.broadcast_to(x, shape).reshape(-1)
    n = np.broadcast_to(n, shape).reshape(-1)
    dxold = hi - lo
    side = np.zeros(d.shape, dtype=np.int8)
    idx = np.arange(d.size)
    for _ in range(100):
        if idx.size == 0:
            break
        di, ti = d[idx], t2[idx]
        p = special.expit(m[idx] + di)
        g1 = x[idx] - n[idx] * p - di / ti
        g2 = -n[idx] * p * (1.0 - p) - 1.0 / ti
        left = g1 > 0                       # root to the right of d
        li = np.where(left, di, lo[idx])
        hi_ = np.where(left, hi[idx], di)
        gl = np.where(left, g1, glo[idx])
        gh = np.where(left, ghi[idx], g1)
        # Illinois: an end kept twice in a row has its value halved
        sd = side[idx]
        gh = np.where(left & (sd == 1), 0.5 * gh, gh)
        gl = np.where(~left & (sd == -1), 0.5 * gl, gl)
        side[idx] = np.where(left, 1, -1)
        lo[idx], hi[idx], glo[idx], ghi[idx] = li, hi_, gl, gh
        tol = 1e-13 * (1.0 + np.abs(di))
        tiny = np.abs(g1 / g2) <= tol          # the Newton step vanishes: converged
        new = _newton_falsi_step(di, g1, g2, li, hi_, gl, gh, dxold[idx])
        stop = tiny | (g1 == 0)
        new = np.where(stop, di, new)
        step = np.abs(new - di)
        dxold[idx] = step
        d[idx] = new
        done = stop | (step <= tol) | (hi_ - li <= tol)
        idx = idx[~done]
    return d.reshape(shape)


class BinomialLikelihood:
    """Per-study binomial-normal likelihood by adaptive Gauss-Hermite quadrature."""

    def __init__(self, x: np.ndarray, n: np.ndarray) -> None:
        self.x = x
        self.n = n
        self.k = x.size
        self.lc = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
        # normal approximation of each study's logit (start values only)
        self.ybar = np.log((x + 0.5) / (n - x + 0.5))
        self.wy = (x + 0.5) * (n - x + 0.5) / (n + 1.0)

    def loglik_theta(self, t: np.ndarray, i: int) -> np.ndarray:
        """``log Bin(x_i | n_i, expit(t))``."""
        return self.lc[i] + self.x[i] * t - self.n[i] * np.logaddexp(0.0, t)

    def agq(self, mu: np.ndarray, tau: np.ndarray, nh: int,
            moments: bool = False) -> dict[str, np.ndarray]:
        """``log L_i(mu, tau)`` for node vectors ``mu``, ``tau`` (``(N,)``) -> ``(N, k)``.

        With ``moments`` also the conditional moments of ``theta_i`` given
        ``(mu, tau, x_i)``: ``Es`` and ``Hs`` (first and second ``mu``-derivatives of
        ``log L_i``), ``Et``, ``Et2`` (mean and second moment of ``theta_i``) and
        ``Ep`` (mean of ``expit(theta_i)``).
        """
        x, n, lc = self.x, self.n, self.lc
        ybar, wy = self.ybar, self.wy
        mu = np.asarray(mu, dtype=float).reshape(-1)
        tau = np.broadcast_to(np.asarray(tau, dtype=float).reshape(-1), mu.shape)
        N, k = mu.size, self.k
        t_nodes, lw = _gh(nh)
        out = {"ll": np.empty((N, k))}
        if moments:
            for key in ("Es", "Hs", "Et", "Et2", "Ep"):
                out[key] = np.empty((N, k))
        chunk = max(1, int(1e6 // max(1, k * nh)))
        for s in range(0, N, chunk):
            e = min(N, s + chunk)
            m = mu[s:e, None]
            t2 = (tau[s:e] ** 2)[:, None]
            # conditional mode of theta - mu (offset d): x - n expit(mu + d) - d / t2 = 0;
            # the root lies between 0 and t2 * (x - n expit(mu))
            g_at0 = x - n * special.expit(m)
            g_at1 = n * (special.expit(m) - special.expit(m + t2 * g_at0))
            a = t2 * g_at0
            lo, hi = np.minimum(0.0, a), np.maximum(0.0, a)
            glo = np.where(a > 0, g_at0, g_at1)
            ghi = np.where(a > 0, g_at1, g_at0)
            d = np.clip((wy * (ybar - m)) / (wy + 1.0 / t2), lo, hi)
            # fast path: plain Newton steps kept inside the bracket; the safeguarded
            # iteration finishes the elements that have not converged
            for _ in range(3):
                p = special.expit(m + d)
                d = np.clip(d + (x - n * p - d / t2) / (n * p * (1.0 - p) + 1.0 / t2), lo, hi)
            p = special.expit(m + d)
            g1 = x - n * p - d / t2
            step = g1 / (n * p * (1.0 - p) + 1.0 / t2)
            bad = ~(np.abs(step) <= 1e-13 * (1.0 + np.abs(d)))
            if np.any(bad):
                d[bad] = _mode_offset(d[bad], lo[bad], hi[bad], glo[bad], ghi[bad],
                                      np.broadcast_to(m, d.shape)[bad],
                                      np.broadcast_to(t2, d.shape)[bad],
                                      np.broadcast_to(x, d.shape)[bad],
                                      np.broadcast_to(n, d.shape)[bad])
            p = special.expit(m + d)
            sig = 1.0 / np.sqrt(n * p * (1.0 - p) + 1.0 / t2)

            off = d[..., None] + (_SQRT2 * sig)[..., None] * t_nodes          # theta - mu
            th = m[..., None] + off
            q_ = special.expit(-th)                     # 1 - p, accurate in both tails
            with np.errstate(divide="ignore"):
                lq = np.where(th < 700.0, np.log(q_), -th)  # log(1 - p) = -softplus(theta)
            g = (lc[:, None] + x[:, None] * th + n[:, None] * lq
                 - 0.5 * off * off / t2[..., None]
                 - 0.5 * np.log(t2)[..., None] - 0.5 * _LOG_2PI) + lw
            g = g + np.log(_SQRT2 * sig)[..., None]
            gmax = g.max(axis=-1, keepdims=True)
            a = np.exp(g - gmax)
            sa = a.sum(axis=-1)
            out["ll"][s:e] = gmax[..., 0] + np.log(sa)
            if moments:
                a = a / sa[..., None]
                pq = 1.0 - q_
                sc = x[:, None] - n[:, None] * pq
                es = (a * sc).sum(axis=-1)
                out["Es"][s:e] = es
                out["Hs"][s:e] = ((a * (sc - es[..., None]) ** 2).sum(axis=-1)
                                  - (a * n[:, None] * pq * (1.0 - pq)).sum(axis=-1))
                eo = (a * off).sum(axis=-1)
                out["Et"][s:e] = m + eo
                out["Et2"][s:e] = (m + eo) ** 2 + (a * (off - eo[..., None]) ** 2).sum(axis=-1)
                out["Ep"][s:e] = (a * pq).sum(axis=-1)
        return out


def _mu_logprior(mp: _MuPrior, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    if mp.flat:
        return np.zeros_like(mu), np.zeros_like(mu), 0.0
    z = (mu - mp.mean) / mp.sd
    return (-0.5 * z * z - math.log(mp.sd) - 0.5 * _LOG_2PI, -z / mp.sd, -1.0 / mp.sd ** 2)


def _conditional_mode(bm: BinomialLikelihood, mp: _MuPrior, tau: np.ndarray, nh: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode of ``mu`` given each ``tau`` (log-concave), the curvature there and the log
    posterior kernel at the mode: ``(mode, curvature, log kernel)``."""
    tau = np.asarray(tau, dtype=float).reshape(-1)
    R = tau.size
    wv = 1.0 / (1.0 / bm.wy[None, :] + tau[:, None] ** 2)
    w0 = 0.0 if mp.flat else 1.0 / mp.sd ** 2
    m0 = 0.0 if mp.flat else mp.mean
    start = (wv @ bm.ybar + w0 * m0) / (wv.sum(axis=1) + w0)
    sd0 = 1.0 / np.sqrt(wv.sum(axis=1) + w0)

    def grad_hess(mu: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = bm.agq(mu, tau[rows], nh, moments=True)
        _, g0, h0 = _mu_logprior(mp, mu)
        return g0 + res["Es"].sum(axis=1), h0 + res["Hs"].sum(axis=1)

    # bracket the root of the (decreasing) gradient
    g, _ = grad_hess(start, np.arange(R))
    direction = np.where(g > 0, 1.0, -1.0)
    lo = np.where(g > 0, start, -np.inf)
    hi = np.where(g > 0, np.inf, start)
    step = 2.0 * sd0
    open_ = np.ones(R, dtype=bool)
    for _ in range(80):
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            break
        trial = start[idx] + direction[idx] * step[idx]
        gt, _ = grad_hess(trial, idx)
        up = direction[idx] > 0
        crossed = np.where(up, gt <= 0, gt > 0)
        hi[idx[up & crossed]] = trial[up & crossed]
        lo[idx[~up & crossed]] = trial[~up & crossed]
        lo[idx[up & ~crossed]] = trial[up & ~crossed]
        hi[idx[~up & ~crossed]] = trial[~up & ~crossed]
        open_[idx[crossed]] = False
        step[idx[~crossed]] *= 2.0
    if np.any(open_):
        raise ValueError("the conditional posterior of mu is not proper (no mode found); "
                         "use a proper (normal) prior for mu")
    def neg_grad(m: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gg, hh = grad_hess(m, i)
        return -gg, -hh

    mode = _solve_increasing(neg_grad, np.zeros(R), lo, hi, xtol=1e-12)
    _, h = grad_hess(mode, np.arange(R))
    curv = -h

    def logpost(m: np.ndarray, t: np.ndarray) -> np.ndarray:
        return _mu_logprior(mp, m)[0] + bm.agq(m, t, nh)["ll"].sum(axis=1)

    lp = logpost(mode, tau)
    # the quadrature can lose the log-concavity far in the tails: check the curvature
    # against a finite difference and use the latter where they disagree
    hstep = np.where(np.isfinite(curv) & (curv > 0), 1.0 / np.sqrt(np.abs(curv) + 1e-300), sd0)
    hstep = np.minimum(hstep, 10.0 * sd0)
    fd = -(logpost(mode + hstep, tau) - 2.0 * lp + logpost(mode - hstep, tau)) / hstep ** 2
    bad = ~(np.isfinite(curv) & (curv > 0) & (np.abs(curv - fd) <= 0.5 * np.abs(fd)))
    curv = np.where(bad, fd, curv)
    floor = 1.0 / mp.sd ** 2 if not mp.flat else 1e-12
    curv = np.where(np.isfinite(curv) & (curv > 0), curv, floor)
    return mode, np.maximum(curv, 1e-300), lp


class _BinomialGrid:
    """The sheared (u, z) grid of the joint posterior and its weights."""

    def __init__(self, bm: BinomialLikelihood, mp: _MuPrior, tp: _TauPrior, nh: int,
                 nh_layout: int = _N_GH_LAYOUT) -> None:
        self.bm, self.mp, self.tp, self.nh = bm, mp, tp, nh_layout
        nh, nh_eval = nh_layout, nh
        hard_hi = math.log(tp.upper) if math.isfinite(tp.upper) else math.inf

        def laplace(u: np.ndarray) -> np.ndarray:
            t = np.exp(u)
            _, c, lp = _conditional_mode(bm, mp, t, nh)
            return tp.logpdf(t) + u + lp + 0.5 * _LOG_2PI - 0.5 * np.log(c)

        start = min(math.log(tp.scale) if math.isfinite(tp.scale) else 0.0, hard_hi)
        u_lo, u_mode, u_hi, sl, sr = _scan_range(laplace, start, 0.5, hard_hi=hard_hi)
        # a margin of two local standard deviations: the Laplace approximation of the
        # row masses only locates the range
        u_lo -= 2.0 * sl
        if not math.isfinite(hard_hi) or u_hi < hard_hi:
            u_hi = min(u_hi + 2.0 * sr, hard_hi)
        self.u_edges = _geometric_edges(np.array([u_lo]), np.array([u_mode]),
                                        np.array([u_hi]), np.array([_W0 * sl]),
                                        np.array([_W0 * sr]))
        unode, uw = _panel_nodes(self.u_edges)
        self.u = unode.reshape(-1)
        self.uw = uw.reshape(-1)
        self.tau = np.exp(self.u)
        R = self.u.size
        self.mhat, curv, lp_mode = _conditional_mode(bm, mp, self.tau, nh)
        self.shat = 1.0 / np.sqrt(curv)
        # z-range of every row: where the conditional log density has dropped by _DROP
        zl, zh = self._z_range(lp_mode)
        self.z_edges = _geometric_edges(zl, np.zeros(R), zh, np.full(R, _W0), np.full(R, _W0))
        znode, zw = _panel_nodes(self.z_edges)
        self.Pz = self.z_edges.shape[1] - 1
        self.z = znode.reshape(R, -1)
        self.zw = zw.reshape(R, -1)
        self.mu = self.mhat[:, None] + self.shat[:, None] * self.z           # (R, Nz)
        self.hard_hi = hard_hi
        self.evaluate(nh_eval)

    def evaluate(self, nh: int) -> None:
        """Likelihood at every node with ``nh`` Gauss-Hermite nodes, and the weights."""
        bm, mp, tp = self.bm, self.mp, self.tp
        self.nh = nh
        R = self.tau.size
        res = bm.agq(self.mu.reshape(-1), np.repeat(self.tau, self.z.shape[1]), nh)
        self.ll = res["ll"].reshape(R, -1, bm.k)                             # (R, Nz, k)
        self.lp = _mu_logprior(mp, self.mu)[0] + self.ll.sum(axis=-1)          # (R, Nz)
        # row masses (in mu) and the joint weights
        rmax = self.lp.max(axis=1)
        rv = np.exp(self.lp - rmax[:, None])
        rmass = (self.zw * rv).sum(axis=1)
        self.log_rowmass = rmax + np.log(rmass) + np.log(self.shat)           # log int p d mu
        self.row_density = rv / rmass[:, None]                                # density in z
        self.lf_u = tp.logpdf(self.tau) + self.u + self.log_rowmass
        fmax = float(np.max(self.lf_u))
        wu = self.uw * np.exp(self.lf_u - fmax)
        self.log_z = fmax + math.log(float(wu.sum()))
        self.W = wu / wu.sum()                                                # row weights
        self.omega = self.W[:, None] * self.zw * self.row_density             # (R, Nz)
        # ends of the ranges: relative densities there
        zr = np.concatenate([self.lp[:, :1] - rmax[:, None], self.lp[:, -1:] - rmax[:, None]])
        ue = [self.lf_u[0] - fmax]
        u_hi = self.u_edges[0, -1]
        if not (math.isfinite(self.hard_hi) and u_hi >= self.hard_hi):
            ue.append(self.lf_u[-1] - fmax)
        self.edge_density = float(np.exp(max(float(np.max(zr)), max(ue))))

    def _z_range(self, lp_mode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bm, mp, nh = self.bm, self.mp, self.nh
        R = self.tau.size
        out = []
        for sign in (-1.0, 1.0):
            inside = np.zeros(R)
            z = np.full(R, 2.0)
            open_ = np.ones(R, dtype=bool)
            for _ in range(40):
                idx = np.flatnonzero(open_)
                if idx.size == 0:
                    break
                m = self.mhat[idx] + sign * z[idx] * self.shat[idx]
                lp = _mu_logprior(mp, m)[0] + bm.agq(m, self.tau[idx], nh)["ll"].sum(axis=1)
                below = lp - lp_mode[idx] < -_DROP
                open_[idx[below]] = False
                inside[idx[~below]] = z[idx[~below]]
                z[idx[~below]] *= 2.0
            # refine by bisection between the last point inside and the first outside
            a, b = inside.copy(), z.copy()
            for _ in range(6):
                c = 0.5 * (a + b)
                m = self.mhat + sign * c * self.shat
                lp = _mu_logprior(mp, m)[0] + bm.agq(m, self.tau, nh)["ll"].sum(axis=1)
                below = lp - lp_mode < -_DROP
                b = np.where(below, c, b)
                a = np.where(below, a, c)
            out.append(sign * b)
        return out[0], out[1]



def _agq_check(grid: _BinomialGrid) -> float:
    """Posterior standard deviation of the change of the total log-likelihood when the
    Gauss-Hermite nodes are doubled, over the nodes that carry 99.99% of the
    posterior mass (at most 400 of them, weighted by their posterior weights).

    A change ``delta`` of the log-likelihood that varies over the posterior moves
    every posterior expectation by at most ``sd(g) * sd(delta)``, so this is the
    relative accuracy of the reported numbers due to the inner quadrature.
    """
    om = grid.omega.reshape(-1)
    order = np.argsort(-om, kind="stable")
    cum = np.cumsum(om[order])
    take = order[: int(np.searchsorted(cum, 0.9999)) + 1]
    if take.size > 400:
        take = take[np.linspace(0, take.size - 1, 400).round().astype(int)]
    mu = grid.mu.reshape(-1)[take]
    tau = np.repeat(grid.tau, grid.mu.shape[1])[take]
    fine = grid.bm.agq(mu, tau, 2 * grid.nh)["ll"].sum(axis=1)
    delta = fine - grid.ll.reshape(-1, grid.bm.k)[take].sum(axis=1)
    w = om[take] / om[take].sum()
    mean = float(w @ delta)
    return math.sqrt(max(float(w @ (delta - mean) ** 2), 0.0))


def _sample_moments(grid: _BinomialGrid) -> tuple[np.ndarray, np.ndarray]:
    """Approximate posterior mean and sd of every ``theta_i`` from the conditional
    moments at the (at most 400) nodes that carry 99.99% of the posterior mass; only
    used to place the panels of the shrinkage densities."""
    om = grid.omega.reshape(-1)
    order = np.argsort(-om, kind="stable")
    cum = np.cumsum(om[order])
    take = order[: int(np.searchsorted(cum, 0.9999)) + 1]
    if take.size > 400:
        take = take[np.linspace(0, take.size - 1, 400).round().astype(int)]
    res = grid.bm.agq(grid.mu.reshape(-1)[take],
                      np.repeat(grid.tau, grid.mu.shape[1])[take], grid.nh, moments=True)
    w = om[take] / om[take].sum()
    mean = w @ res["Et"]
    sd = np.sqrt(np.maximum(w @ res["Et2"] - mean ** 2, 1e-300))
    return mean, sd
