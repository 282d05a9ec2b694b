"""Numerical core of :mod:`evidence.stats.bayes` (private): Gauss-Legendre panels,
normal mixtures, distributions on a working scale, root finding and range scanning.

Every density of the Bayesian models is held either as piecewise polynomials on
Gauss-Legendre panels (:class:`_Panels`: degree ``G - 1`` through the ``G = 20`` nodes of
each panel, whose exact integral gives the distribution function) or as a normal mixture
(:class:`_Mixture`); :class:`_Dist` puts either on the scale it is reported on (identity,
``exp`` for ``tau`` integrated on ``log(tau)``, ``expit`` for proportions). The panels are
placed by :func:`_scan_range` and :func:`_geometric_edges` (widths starting at three local
standard deviations at the mode, growing by 1.3, cut where the log density has dropped by
37). The integration scheme is described in the module docstring of
:mod:`evidence.stats.bayes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

# ----------------------------------------------------------------------------- constants

_G = 20                                   # Gauss-Legendre nodes per panel
_XG, _WG = np.polynomial.legendre.leggauss(_G)
_DROP = 37.0                              # log-density drop that ends a range (e^-37 ~ 1e-16)
_RATIO = 1.3                              # geometric growth of panel widths
_W0 = 3.0                                 # first panel width in (local) standard deviations
_LOG_2PI = math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


def _legendre_table(x: np.ndarray, degree: int) -> np.ndarray:
    """Legendre polynomials ``P_0 .. P_degree`` at ``x``; shape ``x.shape + (degree + 1,)``."""
    out = np.empty((*x.shape, degree + 1))
    out[..., 0] = 1.0
    if degree >= 1:
        out[..., 1] = x
    for n in range(1, degree):
        out[..., n + 1] = ((2 * n + 1) * x * out[..., n] - n * out[..., n - 1]) / (n + 1)
    return out


# values at the nodes -> Legendre coefficients of the interpolating polynomial
_VINV = np.linalg.inv(_legendre_table(_XG, _G - 1))

# ----------------------------------------------------------------------------- numerical core


class _Panels:
    """A batch of piecewise-polynomial densities on Gauss-Legendre panels.

    ``edges`` has shape ``(b, P + 1)``, ``vals`` (the density at the panel nodes,
    unnormalised, non-negative) shape ``(b, P, G)``.  On every panel the density is
    the degree ``G - 1`` polynomial through the node values (Legendre series); the
    distribution function adds the exact integral of that polynomial to the
    Gauss-Legendre masses of the panels to the left.  With ``normalize`` the batch
    members are scaled to integrate to one.
    """

    def __init__(self, edges: np.ndarray, vals: np.ndarray, *, normalize: bool = True) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=float)
        self.h = np.diff(self.edges, axis=1)
        masses = 0.5 * self.h * (vals @ _WG)
        total = masses.sum(axis=1)
        scale = 1.0 / total if normalize else np.ones_like(total)
        self.total = total if normalize else np.ones_like(total)
        coef = (vals @ _VINV.T) * scale[:, None, None]                    # (b, P, G)
        # coefficient axis first (numpy.polynomial.legendre.legval layout)
        self.coef = np.ascontiguousarray(np.moveaxis(coef, -1, 0))          # (G, b, P)
        self.icoef = np.ascontiguousarray(                                    # (G+1, b, P)
            np.polynomial.legendre.legint(self.coef, lbnd=-1.0, axis=0))
        self.cum = np.concatenate(
            [np.zeros((self.edges.shape[0], 1)), np.cumsum(masses * scale[:, None], axis=1)],
            axis=1)
        self.lo = self.edges[:, 0].copy()
        self.hi = self.edges[:, -1].copy()

    def _locate(self, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = self.edges[rows]                                        # (r, P+1)
        j = (x[..., None] >= e[:, None, 1:-1]).sum(axis=-1)         # (r, n)
        a = np.take_along_axis(e, j, axis=1)
        h = np.take_along_axis(self.h[rows], j, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = np.clip(2.0 * (x - a) / h - 1.0, -1.0, 1.0)
        return j, np.where(np.isfinite(xi), xi, -1.0), h

    def pdf(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        j, xi, _ = self._locate(x, rows)
        c = self.coef[:, rows[:, None], j]                          # (G, r, n)
        val = np.polynomial.legendre.legval(xi, c, tensor=False)
        inside = (x >= self.lo[rows][:, None]) & (x <= self.hi[rows][:, None])
        return np.where(inside, np.maximum(val, 0.0), 0.0)

    def cdf(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        j, xi, h = self._locate(x, rows)
        c = self.icoef[:, rows[:, None], j]
        base = np.take_along_axis(self.cum[rows], j, axis=1)
        val = base + 0.5 * h * np.polynomial.legendre.legval(xi, c, tensor=False)
        val = np.where(x < self.lo[rows][:, None], 0.0, val)
        val = np.where(x > self.hi[rows][:, None], 1.0, val)
        return np.clip(val, 0.0, 1.0)


class _Interp:
    """Piecewise-polynomial interpolation (degree ``G - 1`` through the Gauss-Legendre
    nodes of every panel) of arbitrary values, e.g. a log density; ``-inf`` outside."""

    def __init__(self, edges: np.ndarray, vals: np.ndarray) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=float)          # (b, P + 1)
        self.h = np.diff(self.edges, axis=1)
        self.coef = np.ascontiguousarray(np.moveaxis(vals @ _VINV.T, -1, 0))   # (G, b, P)

    def __call__(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        e = self.edges[rows]
        j = (x[..., None] >= e[:, None, 1:-1]).sum(axis=-1)
        a = np.take_along_axis(e, j, axis=1)
        h = np.take_along_axis(self.h[rows], j, axis=1)
        xi = np.clip(2.0 * (x - a) / h - 1.0, -1.0, 1.0)
        val = np.polynomial.legendre.legval(xi, self.coef[:, rows[:, None], j], tensor=False)
        inside = (x >= e[:, :1]) & (x <= e[:, -1:])
        return np.where(inside, val, -np.inf)


class _Mixture:
    """A batch of normal mixtures: ``sum_m w[m] N(means[b, m], sds[b, m]^2)``."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> None:
        self.w = np.asarray(weights, dtype=float)
        self.means = np.atleast_2d(means)
        self.sds = np.atleast_2d(sds)
        keep = self.w > 0
        span = 40.0 * self.sds[:, keep]
        self.lo = (self.means[:, keep] - span).min(axis=1)
        self.hi = (self.means[:, keep] + span).max(axis=1)

    def cdf(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        z = (x[..., None] - self.means[rows][:, None, :]) / self.sds[rows][:, None, :]
        return special.ndtr(z) @ self.w

    def pdf(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        s = self.sds[rows][:, None, :]
        z = (x[..., None] - self.means[rows][:, None, :]) / s
        return (np.exp(-0.5 * z * z) / s) @ self.w / math.sqrt(2.0 * math.pi)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Means and standard deviations of the batch members."""
        mean = self.means @ self.w
        second = (self.means ** 2 + self.sds ** 2) @ self.w
        return mean, np.sqrt(np.maximum(second - mean ** 2, 0.0))


class _Dist:
    """A batch of continuous distributions on a working scale ``x``.

    The reported (natural) value is ``g(x)`` with ``g`` the identity, ``exp`` (for
    ``tau`` integrated on ``log(tau)``) or ``expit`` (proportions).  ``cdf`` and
    ``pdf`` take ``x`` of shape ``(r, n)`` and the batch rows ``(r,)``.
    """

    def __init__(self, cdf: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 pdf: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 lo: np.ndarray, hi: np.ndarray, transform: str = "identity",
                 lower_density: np.ndarray | None = None) -> None:
        self.cdf = cdf
        self.pdf = pdf
        self.lo = np.asarray(lo, dtype=float)
        self.hi = np.asarray(hi, dtype=float)
        self.b = self.lo.size
        self.transform = transform
        # natural-scale density at the lower end of the support (tau = 0, p = 0)
        self.lower_density = (np.zeros(self.b) if lower_density is None
                              else np.asarray(lower_density, dtype=float))

    def g(self, x: np.ndarray) -> np.ndarray:
        if self.transform == "exp":
            return np.exp(x)
        if self.transform == "expit":
            return special.expit(x)
        return x

    def log_gprime(self, x: np.ndarray) -> np.ndarray:
        if self.transform == "exp":
            return x
        if self.transform == "expit":
            return -np.logaddexp(0.0, x) - np.logaddexp(0.0, -x)
        return np.zeros_like(x)

    @property
    def natural_lower(self) -> float:
        return 0.0 if self.transform in ("exp", "expit") else -math.inf

    def natural_pdf(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Density of ``g(X)`` at ``g(x)``."""
        return self.pdf(x, rows) * np.exp(-self.log_gprime(x))

    def quantile(self, p: np.ndarray, rows: np.ndarray | None = None,
                 lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
        """Quantiles on the working scale (vectorised safeguarded Newton)."""
        rows = np.arange(self.b) if rows is None else np.asarray(rows)
        p = np.broadcast_to(np.asarray(p, dtype=float), rows.shape).copy()
        lo = self.lo[rows].copy() if lo is None else np.asarray(lo, dtype=float).copy()
        hi = self.hi[rows].copy() if hi is None else np.asarray(hi, dtype=float).copy()
        return _solve_increasing(self._cdf_pdf(rows), p, lo, hi)

    def _cdf_pdf(self, rows: np.ndarray) -> Callable[[np.ndarray, np.ndarray],
                                                     tuple[np.ndarray, np.ndarray]]:
        def fun(x: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self.cdf(x[:, None], rows[i])[:, 0], self.pdf(x[:, None], rows[i])[:, 0]
        return fun


def _solve_increasing(fun: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]],
                      target: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      xtol: float = 1e-13, maxiter: int = 400) -> np.ndarray:
    """Solve ``f(x) = target`` for increasing ``f`` on brackets ``[lo, hi]``.

    ``fun(x, rows)`` returns ``(f(x), f'(x))`` (the derivative may be ``None``).
    Newton steps are taken while they stay inside the bracket and are less than
    half the step before (the ``rtsafe`` rule); otherwise the bracket is bisected.
    Vectorised over rows.
    """
    x = 0.5 * (lo + hi)
    active = np.ones(target.shape, dtype=bool)
    dxold = hi - lo
    for _ in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xi = x[idx]
        fv, d = fun(xi, idx)
        f = fv - target[idx]
        neg = f < 0
        lo[idx[neg]] = xi[neg]
        hi[idx[~neg]] = xi[~neg]
        li, hi_ = lo[idx], hi[idx]
        if d is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                nstep = -f / d
        else:
            nstep = np.full_like(xi, np.nan)
        cand = xi + nstep
        tol = xtol * (1.0 + np.abs(xi))
        tiny = np.abs(nstep) <= tol                 # Newton step vanishes: converged
        # Newton (rtsafe): only inside the bracket and when the step shrinks fast enough
        bad = ((~np.isfinite(cand)) | (cand <= li) | (cand >= hi_)
               | (np.abs(nstep) > 0.5 * dxold[idx]))
        cand = np.where(bad, 0.5 * (li + hi_), cand)
        cand = np.where(tiny | (f == 0), xi, cand)
        dxold[idx] = np.abs(cand - xi)
        done = tiny | (f == 0) | (np.abs(cand - xi) <= tol) | ((hi_ - li) <= tol)
        x[idx] = cand
        active[idx[done]] = False
    return x


def _golden_max(fun: Callable[[np.ndarray, np.ndarray], np.ndarray],
                a: np.ndarray, b: np.ndarray, iters: int = 90) -> np.ndarray:
    """Vectorised golden-section search for the maximum of unimodal ``fun`` on ``[a, b]``."""
    rows = np.arange(a.size)
    r = (math.sqrt(5.0) - 1.0) / 2.0
    a = a.copy()
    b = b.copy()
    c = b - r * (b - a)
    d = a + r * (b - a)
    fc = fun(c, rows)
    fd = fun(d, rows)
    for _ in range(iters):
        left = fc > fd                     # maximum in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        newc = b - r * (b - a)
        newd = a + r * (b - a)
        c2 = np.where(left, newc, d)
        d2 = np.where(left, c, newd)
        fnew = fun(np.where(left, newc, newd), rows)
        fc, fd = np.where(left, fnew, fd), np.where(left, fc, fnew)
        c, d = c2, d2
        if np.all(b - a <= 1e-15 * (1.0 + np.abs(a))):
            break
    return 0.5 * (a + b)


def _geometric_side(length: np.ndarray, w0: np.ndarray) -> np.ndarray:
    """Cumulative panel widths on one side of the mode, same count for every row."""
    length = np.maximum(length, 0.0)
    w0 = np.maximum(np.minimum(w0, np.where(length > 0, length, 1.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.log1p(length * (_RATIO - 1.0) / w0) / math.log(_RATIO)
    need = np.where(length > 0, np.ceil(need - 1e-9), 0.0)
    n = int(max(1, np.max(need)))
    widths = _RATIO ** np.arange(n)
    widths = widths / widths.sum()
    return length[:, None] * np.cumsum(widths)[None, :]


def _geometric_edges(lo: np.ndarray, mode: np.ndarray, hi: np.ndarray,
                     wl: np.ndarray, wr: np.ndarray) -> np.ndarray:
    """Panel edges from ``lo`` to ``hi`` growing geometrically away from ``mode``.

    All arguments have shape ``(r,)``; returns ``(r, P + 1)``.  A side of zero length
    (mode on the boundary) gets panels of zero width, which carry no mass.
    """
    left = _geometric_side(mode - lo, wl)
    right = _geometric_side(hi - mode, wr)
    edges = np.concatenate([mode[:, None] - left[:, ::-1], mode[:, None],
                            mode[:, None] + right], axis=1)
    edges[:, 0] = lo
    edges[:, -1] = hi
    # drop zero-width panels shared by all rows (a mode on the boundary)
    keep = np.concatenate([[True], np.any(np.diff(edges, axis=1) > 0, axis=0)])
    return edges[:, keep]


def _panel_nodes(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights of every panel: shapes ``(r, P, G)``."""
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    nodes = mid[..., None] + half[..., None] * _XG
    weights = half[..., None] * _WG
    return nodes, weights


def _scan_range(logf: Callable[[np.ndarray], np.ndarray], start: float, step: float,
                hard_lo: float = -math.inf, hard_hi: float = math.inf,
                drop: float = _DROP, limit: float = 700.0
                ) -> tuple[float, float, float, float, float]:
    """Find the range, mode and local scales of a (log) density of one variable.

    ``logf`` is evaluated on a grid of spacing ``step`` that is extended until it
    has dropped by ``drop`` below its maximum on both sides (or reaches the hard
    bounds), then on a 20 times finer grid around the maximum.  Returns
    ``(lo, mode, hi, scale_left, scale_right)``: the first grid points beyond the
    drop, the (approximate) mode, and half the distances over which ``logf`` drops
    by 2 on either side (one standard deviation for a normal density).  Only the
    placement of the integration panels depends on these numbers.
    """
    lo_lim, hi_lim = max(hard_lo, start - limit), min(hard_hi, start + limit)
    pts = np.unique(np.clip(start + step * np.arange(-20, 21), lo_lim, hi_lim))
    vals = logf(pts)
    for _ in range(100):
        vals = np.where(np.isfinite(vals), vals, -np.inf)
        vmax = np.max(vals)
        imax = int(np.argmax(vals))
        grow_lo = pts[0] > lo_lim and (vals[0] > vmax - drop or imax == 0)
        grow_hi = pts[-1] < hi_lim and (vals[-1] > vmax - drop or imax == pts.size - 1)
        if not (grow_lo or grow_hi):
            break
        if grow_lo:
            new = np.maximum(pts[0] - step * np.arange(20, 0, -1), lo_lim)
            new = np.unique(new[new < pts[0]])
            pts = np.concatenate([new, pts])
            vals = np.concatenate([logf(new), vals])
        if grow_hi:
            new = np.minimum(pts[-1] + step * np.arange(1, 21), hi_lim)
            new = np.unique(new[new > pts[-1]])
            pts = np.concatenate([pts, new])
            vals = np.concatenate([vals, logf(new)])
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    imax = int(np.argmax(vals))
    fa = pts[max(imax - 1, 0)]
    fb = pts[min(imax + 1, pts.size - 1)]
    fine = np.linspace(fa, fb, 41)
    fv = logf(fine)
    fv = np.where(np.isfinite(fv), fv, -np.inf)
    j = int(np.argmax(fv))
    mode = float(fine[j])
    fmode = float(fv[j])
    # merge both grids for the crossings
    allp = np.concatenate([pts, fine])
    allv = np.concatenate([vals, fv])
    order = np.argsort(allp, kind="stable")
    allp, allv = allp[order], allv[order]

    def crossing(level: float, side: int, interpolate: bool) -> float:
        if side < 0:
            idx = np.flatnonzero((allp < mode) & (allv < level))
            if idx.size == 0:
                return float(allp[0])
            i = int(idx[-1])
            if not interpolate:
                return float(allp[i])
            a, b, va, vb = allp[i], allp[i + 1], allv[i], allv[i + 1]
        else:
            idx = np.flatnonzero((allp > mode) & (allv < level))
            if idx.size == 0:
                return float(allp[-1])
            i = int(idx[0])
            if not interpolate:
                return float(allp[i])
            a, b, va, vb = allp[i - 1], allp[i], allv[i - 1], allv[i]
        if not (np.isfinite(va) and np.isfinite(vb)) or va == vb:
            return float(a if side < 0 else b)
        return float(a + (level - va) * (b - a) / (vb - va))

    lo = crossing(fmode - drop, -1, False) if mode > allp[0] else float(allp[0])
    hi = crossing(fmode - drop, +1, False) if mode < allp[-1] else float(allp[-1])
    sl = (mode - crossing(fmode - 2.0, -1, True)) / 2.0 if mode > allp[0] else math.inf
    sr = (crossing(fmode - 2.0, +1, True) - mode) / 2.0 if mode < allp[-1] else math.inf
    if not math.isfinite(sl):
        sl = sr
    if not math.isfinite(sr):
        sr = sl
    if not math.isfinite(sl):
        sl = sr = step
    return lo, mode, hi, max(sl, 1e-12), max(sr, 1e-12)
