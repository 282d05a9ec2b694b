"""The PRISMA 2020 flow diagram of study selection (Page et al. 2021, the template for new
reviews with searches of databases and registers and of other sources)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from evidence.book.figures._base import FONT, PALETTE, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["prisma_diagram"]

#: Box geometry in axes units (the axes span 0..10 horizontally).
_W_MAIN, _W_SIDE, _H = 3.0, 3.0, 1.0
_X_MAIN = {"databases": 0.25, "other": 5.25}
_X_SIDE_OFFSET = 3.35
_ROW_GAP = 1.45


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, *,
         fill: str = "white", gid: str = "prisma_box", wrap: int = 40) -> float:
    """Draw a box with its top-left corner at (x, y), tall enough for its wrapped text
    (at least ``h``); return its height."""
    from matplotlib.patches import FancyBboxPatch

    text = text.replace("n = ", "n\u00a0=\u00a0")
    lines = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, wrap) or [""])
    h = max(h, 0.22 + 0.165 * len(lines))
    ax.add_patch(FancyBboxPatch((x, y - h), w, h, boxstyle="round,pad=0,rounding_size=0.05",
                                facecolor=fill, edgecolor=PALETTE["blue"], linewidth=1.0,
                                gid=gid))
    ax.text(x + 0.12, y - 0.1, "\n".join(lines), ha="left", va="top", fontsize=FONT - 1.5,
            gid="prisma_text")
    return h


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "color": PALETTE["grey"], "linewidth": 0.9,
                            "shrinkA": 0, "shrinkB": 0}, gid="prisma_arrow")


def prisma_diagram(counts: Any, reason_names: dict[str, str]) -> Figure:
    """Draw the PRISMA 2020 diagram of :class:`evidence.book.selection.SelectionCounts`.

    Two columns (identification via databases and registers; via other methods), each
    from records identified to reports assessed, with the exclusions beside them, and one
    box of included studies and reports at the bottom.

    Parameters
    ----------
    counts : SelectionCounts
        The flow (:func:`evidence.book.selection.selection_counts`).
    reason_names : dict
        Display names of the exclusion reasons.
    """
    fig = new_figure(9.0, 7.4)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 10.0)
    ax.set_ylim(-8.2, 0.4)
    ax.set_axis_off()
    titles = {"databases": "Identification of studies via databases and registers",
              "other": "Identification of studies via other methods"}
    for column in ("databases", "other"):
        c = getattr(counts, column)
        x = _X_MAIN[column]
        ax.text(x, 0.25, titles[column], fontsize=FONT, fontweight="bold", ha="left",
                va="center")
        source = ("Records identified from the search tool's stored PubMed, PMC, journal and "
                  "registry pages" if column == "databases" else
                  "Records identified from reference lists and the seed papers")
        rows = [
            (f"{source} (n = {c.identified}; {c.searches} searches)",
             f"Records removed before screening:\nduplicate records (n = {c.duplicates})"),
            (f"Records screened (n = {c.screened})",
             f"Records excluded on title and excerpt (n = {c.excluded})"),
            (f"Reports sought for retrieval (n = {c.sought})",
             f"Reports not retrieved (n = {c.not_retrieved})"),
            (f"Reports assessed for eligibility (n = {c.assessed})",
             "Reports excluded:\n" + ("\n".join(
                 f"{reason_names.get(r, r)} (n = {n})" for r, n in c.excluded_reasons.items())
                 or "none")),
        ]
        y = -0.2
        for i, (main, side) in enumerate(rows):
            _box(ax, x, y, _W_MAIN * 0.98, _H, main)
            side_x = x + _X_SIDE_OFFSET - 0.25
            _box(ax, side_x, y, _W_SIDE * 0.55, _H, side, fill="#F4F4F4", wrap=24)
            _arrow(ax, x + _W_MAIN * 0.98, y - _H / 2, side_x, y - _H / 2)
            if i < len(rows) - 1:
                _arrow(ax, x + _W_MAIN / 2, y - _H, x + _W_MAIN / 2, y - _ROW_GAP)
            y -= _ROW_GAP
        _arrow(ax, x + _W_MAIN / 2, y + _ROW_GAP - _H, x + _W_MAIN / 2, -7.4)
    _box(ax, 0.25, -7.4, 7.94, 0.6,
         f"Studies included in review (n = {counts.studies_included})\n"
         f"Reports of included studies (n = {counts.reports_included})",
         fill="#DDEEF9", gid="prisma_included", wrap=90)
    return fig
