"""A small figure of posterior densities of a pooled proportion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.figures._base import FONT, PALETTE, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["nothing_pooled", "posterior_densities"]

_STYLES = (("blue", "-"), ("vermillion", "--"), ("bluish_green", ":"), ("reddish_purple", "-."))


def posterior_densities(curves: Sequence[tuple[str, Any, Any]], estimate: float,
                        ci_lower: float, ci_upper: float, *,
                        xlabel: str = "Pooled proportion") -> Figure:
    """Density curves (label, grid, density) on the proportion scale, each with its own
    colour and line style, and the primary estimate (a dot) with its confidence
    interval (a bar) below them.

    Raises
    ------
    ValueError
        No curve, or a grid and density of different lengths.
    """
    if not curves:
        raise ValueError("no posterior density to draw")
    fig = new_figure(6.4, 2.9)
    ax = fig.add_axes((0.1, 0.2, 0.86, 0.72))
    top = 0.0
    for (label, grid, density), (colour, style) in zip(curves, _STYLES * 4, strict=False):
        x, y = np.asarray(grid, dtype=float), np.asarray(density, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"{label}: grid and density differ in length")
        ax.plot(x, y, color=PALETTE[colour], linestyle=style, linewidth=1.6, label=label,
                gid="posterior_density")
        top = max(top, float(np.nanmax(y)))
    y0 = -0.08 * top
    ax.plot([ci_lower, ci_upper], [y0, y0], color="black", linewidth=2.0, gid="primary_ci")
    ax.plot([estimate], [y0], "o", color="black", markersize=5,
            label="Primary analysis (95% CI)", gid="primary_estimate")
    ax.set_ylim(2 * y0, top * 1.08)
    lo = min(min(float(np.min(c[1])) for c in curves), ci_lower)
    hi = max(max(float(np.max(c[1])) for c in curves), ci_upper)
    ax.set_xlim(max(0.0, lo - 0.02), min(1.0, hi + 0.02))
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel("Posterior density", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    ax.xaxis.set_major_formatter(_percent)
    ax.legend(fontsize=FONT - 1.5, frameon=False, loc="upper right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def nothing_pooled(message: str) -> Figure:
    """A small empty panel that states why there is no posterior to draw."""
    fig = new_figure(6.4, 0.8)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=FONT, color="0.35")
    return fig


def _percent(x: float, _pos: int) -> str:
    return f"{100 * x:.0f}%"
