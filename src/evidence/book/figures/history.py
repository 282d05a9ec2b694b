"""Each pooled estimate across the releases of the review (the Version history page)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evidence.book.figures._base import FONT, PALETTE, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["estimate_history"]

_COLUMNS = 3
_PANEL_W, _PANEL_H = 2.6, 1.9
_CURRENT = "this build"


def estimate_history(series: Sequence[Any]) -> Figure:
    """One small panel per pooled analysis: its estimate (dot) and 95% confidence
    interval (bar) in every release, oldest on the left, and this build's as an open
    circle when it differs from the latest release.  Proportions are drawn in per cent,
    ratios on a logarithmic axis with a line at 1.

    Parameters
    ----------
    series : sequence
        :class:`evidence.book.versions.HistorySeries` (``title``, ``scale``, ``points``
        with ``version``, ``estimate``, ``ci_lower``, ``ci_upper``, and ``current``).

    Artists carry ``gid`` ``"release_estimate"`` (one per release point),
    ``"release_ci"``, ``"current_estimate"`` and ``"current_ci"``.

    Raises
    ------
    ValueError
        No series to draw.
    """
    if not series:
        raise ValueError("no pooled estimate to draw")
    n = len(series)
    cols = min(_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = new_figure(_PANEL_W * cols, _PANEL_H * rows)
    for i, s in enumerate(series):
        ax = fig.add_subplot(rows, cols, i + 1)
        labels = [str(p.version) for p in s.points]
        points = list(s.points)
        if s.current is not None:
            labels.append(_CURRENT)
            points.append(s.current)
        for x, p in enumerate(points):
            current = p.version is None
            colour = PALETTE["vermillion"] if current else PALETTE["blue"]
            if p.ci_lower is not None and p.ci_upper is not None:
                ax.plot([x, x], [p.ci_lower, p.ci_upper], color=colour, linewidth=1.6,
                        linestyle="--" if current else "-",
                        gid="current_ci" if current else "release_ci")
            ax.plot([x], [p.estimate], "o", color=colour, markersize=5,
                    markerfacecolor="white" if current else colour,
                    gid="current_estimate" if current else "release_estimate")
        ax.set_xticks(range(len(points)))
        ax.set_xticklabels(labels, fontsize=FONT - 2)
        ax.set_xlim(-0.6, len(points) - 0.4)
        values = [v for p in points for v in (p.estimate, p.ci_lower, p.ci_upper)
                  if v is not None and math.isfinite(v)]
        if s.scale == "ratio":
            ax.set_yscale("log")
            ax.axhline(1.0, color=PALETTE["grey"], linewidth=0.8, linestyle=":",
                       gid="null_line")
            low, high = min([*values, 1.0]), max([*values, 1.0])
            ax.set_ylim(low / 1.4, high * 1.4)
            ax.yaxis.set_major_formatter(_ratio)
        elif s.scale == "proportion":
            ax.set_ylim(0.0, min(1.0, max(values) * 1.1) if values else 1.0)
            ax.yaxis.set_major_formatter(_percent)
        else:
            ax.margins(y=0.1)
        ax.tick_params(axis="y", labelsize=FONT - 2)
        ax.set_title(_wrap(s.title), fontsize=FONT - 1, parse_math=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14 / rows + 0.05,
                        top=1 - 0.22 / rows, wspace=0.35, hspace=0.75)
    return fig


def _wrap(title: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(title, width)[:2])


def _percent(x: float, _pos: int) -> str:
    return f"{100 * x:.0f}%"


def _ratio(x: float, _pos: int) -> str:
    return f"{x:g}"
