"""Diagnostic plots: the funnel plot and the meta-regression bubble plot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from evidence.book.figures._base import (
    FONT,
    PALETTE,
    SCALE_LABEL,
    as_vector,
    new_figure,
)
from evidence.stats.checks import critical_value
from evidence.stats.vocabulary import check_measure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evidence.stats.results import MetaResult

# ---------------------------------------------------------------------------
# funnel and bubble plots
# ---------------------------------------------------------------------------


def funnel(result: MetaResult, *, ax: Axes | None = None, title: str | None = "Funnel plot",
           xlabel: str | None = None) -> Figure:
    """Funnel plot: observed outcomes ``yi`` against their standard errors.

    The y-axis (standard error) is inverted so precise studies sit at the top; a
    vertical line marks the pooled estimate and dashed lines the pseudo-confidence
    region ``estimate ± z·se`` (z from ``result.level``).  Everything is on the
    measure's scale, as in metafor's ``funnel()``.

    Parameters
    ----------
    result : MetaResult
        The fitted model.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new 5.5 x 4.5 inch Figure when None.
    title, xlabel : str, optional
        Title (none when empty) and x-axis label (default: the measure's scale).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    With fewer than 10 studies the figure says that asymmetry cannot be judged
    reliably (Sterne et al. 2011).
    """
    measure = check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    yi = as_vector(result.yi, k, "result.yi")
    sei = np.sqrt(as_vector(result.vi, k, "result.vi"))
    if ax is None:
        fig = new_figure(5.5, 4.5)
        ax = fig.add_axes((0.14, 0.14, 0.8, 0.74))
    else:
        fig = ax.figure
    z = critical_value(float(getattr(result, "level", 0.95)))
    est = float(result.estimate)
    se_max = float(np.nanmax(sei)) * 1.08 if np.any(np.isfinite(sei)) else 1.0
    se_grid = np.array([0.0, se_max])
    ax.plot(est - z * se_grid, se_grid, color="0.35", linestyle="--", linewidth=1.0,
            gid="pseudo_ci")
    ax.plot(est + z * se_grid, se_grid, color="0.35", linestyle="--", linewidth=1.0,
            gid="pseudo_ci")
    ax.axvline(est, color=PALETTE["vermillion"], linewidth=1.2, gid="pooled_estimate")
    ax.scatter(yi, sei, s=28, color=PALETTE["blue"], edgecolors=PALETTE["black"],
               linewidths=0.5, zorder=3, gid="study_markers")
    ax.set_ylim(se_max, 0.0)
    width = max(z * se_max, float(np.nanmax(np.abs(yi - est))) if k else 0.0) * 1.08
    ax.set_xlim(est - width, est + width)
    ax.set_xlabel(xlabel if xlabel is not None else SCALE_LABEL[measure], fontsize=FONT)
    ax.set_ylabel("Standard error", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if k < 10:
        ax.text(1.0, 1.015, f"k = {k} < 10: asymmetry cannot be judged reliably",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=FONT - 1,
                color="0.25", gid="footnote")
    if title:
        ax.set_title(title, loc="left", fontsize=FONT + 2, fontweight="bold")
    return fig


def bubble(x: Sequence[float], yi: Sequence[float], vi: Sequence[float], *,
           fit_intercept: float | None = None, fit_slope: float | None = None,
           ax: Axes | None = None, xlabel: str = "Moderator",
           ylabel: str = "Observed outcome (yi)",
           title: str | None = "Meta-regression") -> Figure:
    """Meta-regression bubble plot: ``yi`` against a moderator.

    Bubble area is proportional to the inverse-variance weight ``1/vi`` (the
    largest bubble is 600 pt²; bubbles never shrink below 4 pt² so that tiny
    weights stay visible).  When both ``fit_intercept`` and ``fit_slope`` are given
    the fitted line ``intercept + slope·x`` is drawn across the range of ``x``.

    Parameters
    ----------
    x, yi, vi : sequence of float
        Moderator values, observed outcomes and their sampling variances (> 0).
    fit_intercept, fit_slope : float, optional
        Coefficients of the fitted meta-regression (both or neither).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new 5.5 x 4.2 inch Figure when None.
    xlabel, ylabel, title : str
        Axis labels and title (no title when empty or None).

    Returns
    -------
    matplotlib.figure.Figure
    """
    xs = np.asarray(x, dtype=float)
    if xs.ndim != 1 or xs.size == 0:
        raise ValueError("x must be a non-empty 1-D sequence")
    k = xs.size
    ys = as_vector(yi, k, "yi")
    vs = as_vector(vi, k, "vi")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(np.isfinite(vs))):
        raise ValueError("x, yi and vi must be finite")
    if np.any(vs <= 0):
        raise ValueError("vi must be > 0")
    if (fit_intercept is None) != (fit_slope is None):
        raise ValueError("give both fit_intercept and fit_slope, or neither")
    if ax is None:
        fig = new_figure(5.5, 4.2)
        ax = fig.add_axes((0.14, 0.14, 0.8, 0.74))
    else:
        fig = ax.figure
    w = 1.0 / vs
    sizes = np.maximum(600.0 * w / w.max(), 4.0)
    ax.scatter(xs, ys, s=sizes, color=PALETTE["sky_blue"], alpha=0.6,
               edgecolors=PALETTE["blue"], linewidths=0.8, zorder=3, gid="bubbles")
    if fit_intercept is not None and fit_slope is not None:
        span = xs.max() - xs.min()
        pad = 0.05 * span if span > 0 else 0.5
        grid = np.array([xs.min() - pad, xs.max() + pad])
        ax.plot(grid, float(fit_intercept) + float(fit_slope) * grid,
                color=PALETTE["vermillion"], linewidth=1.5, zorder=2, gid="fitted_line")
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel(ylabel, fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.text(1.0, 1.015, "Bubble area ∝ 1/vi", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=FONT - 1, color="0.25", gid="footnote")
    if title:
        ax.set_title(title, loc="left", fontsize=FONT + 2, fontweight="bold")
    return fig
