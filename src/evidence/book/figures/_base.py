"""What every figure of the book shares (private to :mod:`evidence.book.figures`).

The Figure class that shows itself in Jupyter without pyplot, the Okabe-Ito palette, the
layout constants in inches, text measurement, number formats, the display scale of each
measure, and the text columns of forest-style tables. See the conventions in
:mod:`evidence.book.figures`.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.stats.vocabulary import DIFFERENCE_MEASURES, RATIO_MEASURES, is_common_effect

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evidence.stats.results import MetaResult

PALETTE: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#595959",
}

#: Axis label of each measure's own (model) scale.
SCALE_LABEL = {
    "PLO": "Logit proportion",
    "PFT": "Freeman-Tukey double-arcsine proportion",
    "PAS": "Arcsine square-root proportion",
    "PR": "Proportion",
    "RR": "Log risk ratio",
    "OR": "Log odds ratio",
    "HR": "Log hazard ratio",
    "RD": "Risk difference",
}
#: Label of each measure on the natural (back-transformed) scale.
NATURAL_LABEL = {
    "PLO": "Proportion",
    "PFT": "Proportion",
    "PAS": "Proportion",
    "PR": "Proportion",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "HR": "Hazard ratio",
    "RD": "Risk difference",
}
SORTS = ("estimate", "weight", "label")

# Layout constants, in inches (figures are laid out in absolute units so that
# text stays the same size whatever the number of studies).
FONT = 9.0
ROW = 0.27
PAD = 0.14
MARGIN = 0.15
PLOT_WIDTH = 3.2
XAXIS_SPACE = 0.52
FOOT_LINE = 0.19
TITLE_SPACE = 0.42
TOP_SPACE = 0.12
WRAP = 110



# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


@functools.cache
def figure_class() -> type:
    """A Figure subclass that renders itself as PNG in Jupyter without pyplot."""
    from matplotlib.figure import Figure

    class EvidenceFigure(Figure):
        """:class:`matplotlib.figure.Figure` with a ``_repr_png_`` for Jupyter."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight",
                         metadata={"Software": None})
            return buffer.getvalue()

    EvidenceFigure.__module__ = __name__
    return EvidenceFigure


def new_figure(width: float, height: float) -> Figure:
    """A new white Figure of the given size in inches."""
    return figure_class()(figsize=(width, height), facecolor="white")


def text_width(text: str, *, size: float = FONT, bold: bool = False) -> float:
    """Width of a (possibly multi-line) text in inches, without a renderer."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    widths = [text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0]
              for line in str(text).split("\n") if line]
    return max(widths, default=0.0) / 72.0


def fmt(value: float, digits: int) -> str:
    return "n.a." if not np.isfinite(value) else f"{value:.{digits}f}"


def fmt_interval(est: float, lower: float, upper: float, digits: int) -> str:
    return f"{fmt(est, digits)} [{fmt(lower, digits)}, {fmt(upper, digits)}]"


def fmt_p_value(p: float) -> str:
    if not np.isfinite(p):
        return "p = n.a."
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def as_vector(values: Any, k: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"{name} must be a 1-D sequence of length {k}, got shape {arr.shape}")
    return arr


def study_labels(labels: Sequence[str] | Mapping[str, str] | None,
            study_ids: Sequence[str], k: int) -> list[str]:
    """Row labels: a sequence (one per study), a mapping study_id -> label, or the ids."""
    ids = [str(s) for s in study_ids]
    if len(ids) != k:
        raise ValueError(f"expected {k} study ids, got {len(ids)}")
    if labels is None:
        return ids
    if isinstance(labels, Mapping):
        return [plain_text(labels.get(s, s)) for s in ids]
    out = [plain_text(label) for label in labels]
    if len(out) != k:
        raise ValueError(f"labels must have one entry per study ({k}), got {len(out)}")
    return out


def plain_text(value: Any) -> str:
    """Registry text for a matplotlib label, shown literally: ``$`` would start mathtext,
    so it is escaped (``\\$``)."""
    return str(value).replace("$", r"\$")


def check_events(events: Sequence[int] | None, totals: Sequence[int] | None,
            k: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if (events is None) != (totals is None):
        raise ValueError("give both events and totals, or neither")
    if events is None or totals is None:
        return None, None
    ev = as_vector(events, k, "events")
    tot = as_vector(totals, k, "totals")
    if not (np.all(np.isfinite(ev)) and np.all(np.isfinite(tot))):
        raise ValueError("events and totals must be finite")
    if np.any(ev < 0) or np.any(tot <= 0) or np.any(ev > tot):
        raise ValueError("need 0 <= events <= totals and totals > 0")
    if np.any(ev != np.round(ev)) or np.any(tot != np.round(tot)):
        raise ValueError("events and totals must be whole numbers")
    return ev.astype(np.int64), tot.astype(np.int64)


def apply_scalar(f: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """Apply a scalar transformation element-wise, leaving non-finite values NaN."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    for i, v in np.ndenumerate(values):
        if np.isfinite(v):
            out[i] = float(f(float(v)))
    return out


@dataclass(frozen=True)
class Scale:
    """How values are displayed: the transformation, axis label and axis kind."""

    f: Callable[[float], float]
    label: str
    kind: str  # "proportion" (clamped to [0, 1]), "log" (ratios) or "linear"
    null: float | None  # no-effect value on the displayed scale, if any


def scale_for(measure: str, transform: bool | Callable[[float], float],
           harmonic_mean_n: float | None) -> Scale:
    """Resolve ``transform`` (True: metafor's back-transformation, False: the
    measure's own scale, or a callable) into a :class:`Scale`."""
    if callable(transform):
        return Scale(transform, NATURAL_LABEL[measure], "linear", None)
    if transform is not True and transform is not False:
        raise ValueError(f"transform={transform!r} is not valid; allowed: True, False "
                         "or a callable")
    if transform is False or measure in ("PR", "RD"):
        null = 0.0 if measure in RATIO_MEASURES + DIFFERENCE_MEASURES else None
        kind = "proportion" if measure == "PR" else "linear"
        return Scale(lambda v: v, SCALE_LABEL[measure], kind, null)
    if measure == "PFT" and harmonic_mean_n is None:
        raise ValueError("measure 'PFT' needs harmonic_mean_n to back-transform; "
                         "pass transform=False or a MetaResult with harmonic_mean_n")
    from evidence.stats.transforms import back_transform

    f = back_transform(measure, harmonic_mean_n=harmonic_mean_n)
    if measure in RATIO_MEASURES:
        return Scale(f, NATURAL_LABEL[measure], "log", 1.0)
    return Scale(f, NATURAL_LABEL[measure], "proportion", None)


def refline_value(refline: float | bool | None, scale: Scale) -> float | None:
    if refline is None or refline is True:
        return scale.null
    if refline is False:
        return None
    return float(refline)


def set_xlim(ax: Axes, values: Sequence[float], scale: Scale) -> None:
    """Fit the x-axis to the finite values (positive only on a log axis)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if scale.kind == "log":
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        v = v[v > 0]
        if v.size == 0:
            return
        lo, hi = np.log(v.min()), np.log(v.max())
        # 1-2-5 ticks over a narrow range; over more than two decades they would overlap
        wide = (hi - lo) / math.log(10.0) > 2.0
        ax.xaxis.set_major_locator(LogLocator(base=10.0,
                                              subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        pad = 0.06 * (hi - lo) if hi > lo else 0.5
        ax.set_xlim(math.exp(lo - pad), math.exp(hi + pad))
        return
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    pad = 0.04 * (hi - lo) if hi > lo else max(0.05, 0.1 * abs(lo))
    lo, hi = lo - pad, hi + pad
    if scale.kind == "proportion":
        lo, hi = max(lo, 0.0), min(hi, 1.0)
        if hi <= lo:
            lo, hi = 0.0, 1.0
    ax.set_xlim(lo, hi)


@dataclass(frozen=True)
class Column:
    """One text column of a forest table: header, one cell per row, alignment."""

    header: str
    cells: Sequence[str]
    align: str  # "left" or "right"
    bold_rows: tuple[int, ...] = ()
    #: fill colour of a round badge behind each cell ("" for none): a judgement column
    badges: tuple[str, ...] = ()

    @property
    def width(self) -> float:
        body = max((text_width(c, bold=i in self.bold_rows)
                    for i, c in enumerate(self.cells)), default=0.0)
        return max(body, text_width(self.header, bold=True)) + 2 * PAD


def offset(ax: Axes, dx: float, dy: float = 0.0, *, y_in_data: bool = True) -> Any:
    """Transform: x in axes fraction, y in data (or axes) units, shifted by inches."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = (blended_transform_factory(ax.transAxes, ax.transData) if y_in_data
            else ax.transAxes)
    return base + ScaledTranslation(dx, dy, ax.figure.dpi_scale_trans)


def table_axes(ax: Axes | None, *, n_rows: int, left: Sequence[Column],
                right: Sequence[Column], n_foot: int, title: str | None,
                plot_width: float = PLOT_WIDTH) -> tuple[Figure, Axes]:
    """The Axes of a forest-style table, creating a Figure sized to the table."""
    if ax is not None:
        if title:
            ax.set_title(title, loc="left", fontsize=FONT + 1.5, fontweight="bold")
        return ax.figure, ax
    left_w = sum(c.width for c in left)
    right_w = sum(c.width for c in right)
    width = 2 * MARGIN + left_w + plot_width + right_w
    top = TITLE_SPACE if title else TOP_SPACE
    bottom = XAXIS_SPACE + n_foot * FOOT_LINE + MARGIN
    height = top + n_rows * ROW + bottom
    fig = new_figure(width, height)
    ax = fig.add_axes(((MARGIN + left_w) / width, bottom / height,
                       plot_width / width, n_rows * ROW / height))
    if title:
        fig.text(MARGIN / width, 1 - 0.1 / height, title, ha="left", va="top",
                 fontsize=FONT + 2, fontweight="bold")
    return fig, ax


def draw_table(ax: Axes, *, ys: Sequence[float], header_y: float,
                left: Sequence[Column], right: Sequence[Column]) -> None:
    """Write the text columns left and right of the Axes, one cell per row y."""
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=FONT)
    # left columns end at the Axes' left edge (x = 0), right ones start at x = 1
    edge = -sum(c.width for c in left)
    placed = [(c, 0.0, edge + sum(x.width for x in left[:i])) for i, c in enumerate(left)]
    placed += [(c, 1.0, sum(x.width for x in right[:i])) for i, c in enumerate(right)]
    for col, anchor, start in placed:
        trans = offset(ax, start + (PAD if col.align == "left" else col.width - PAD))
        ax.text(anchor, header_y, col.header, transform=trans, ha=col.align, va="center",
                fontsize=FONT, fontweight="bold", clip_on=False, gid="column_header")
        for row, (y, cell) in enumerate(zip(ys, col.cells, strict=True)):
            badge = col.badges[row] if row < len(col.badges) else ""
            ax.text(anchor, y, cell, transform=trans, ha=col.align, va="center",
                    fontsize=FONT, clip_on=False, gid="badge" if badge else "cell",
                    fontweight="bold" if row in col.bold_rows or badge else "normal",
                    color="white" if badge else "black",
                    bbox={"boxstyle": "circle,pad=0.25", "facecolor": badge,
                          "edgecolor": "none"} if badge else None)
    # rule under the header across the whole table
    fig = ax.figure
    ax_width = ax.get_position().width * fig.get_figwidth()
    x_left = -sum(c.width for c in left) / ax_width
    x_right = 1 + sum(c.width for c in right) / ax_width
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transAxes, ax.transData)
    ax.plot([x_left, x_right], [header_y - 0.5] * 2, transform=trans, color="0.6",
            linewidth=0.6, clip_on=False, gid="header_rule")


def draw_footer(ax: Axes, lines: Sequence[str], left: Sequence[Column]) -> None:
    """Write footnote lines under the x-axis, flush with the leftmost column."""
    dx = -sum(c.width for c in left) + PAD
    for i, line in enumerate(lines):
        ax.text(0.0, 0.0, line, transform=offset(ax, dx, -(XAXIS_SPACE + i * FOOT_LINE),
                                                  y_in_data=False),
                ha="left", va="top", fontsize=FONT - 0.5, color="0.15", clip_on=False,
                gid="footnote")


def wrap_footnotes(lines: Sequence[str], left: Sequence[Column], right: Sequence[Column],
          ax: Axes | None) -> list[str]:
    """Wrap footnotes to the width of the table (or 110 characters in a given Axes)."""
    if ax is None:
        table = sum(c.width for c in (*left, *right)) + PLOT_WIDTH - PAD
        width = max(60, int(table / (0.58 * (FONT - 0.5) / 72)))  # ~0.58 em per character
    else:
        width = WRAP
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, width) or [""])
    return out


def model_label(result: Any) -> str:
    method = str(result.method)
    if is_common_effect(method):
        return "Common-effect model"
    extra = {"knha": ", Hartung-Knapp", "adhoc": ", Hartung-Knapp (ad hoc)",
             "t": ", t-based"}.get(getattr(result, "test", "z"), "")
    return f"Random-effects model ({method}{extra})"


def percent_axis(ax: Axes) -> None:
    """Tick labels of a proportion axis as whole percentages (``0%``, ``25%``, …)."""
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def draw_direction_labels(ax: Axes, ref: float, labels: tuple[str, str]) -> None:
    """Write what each side of the reference line means under the axis (RevMan's
    "favours …"): ``labels[0]`` ends just left of ``ref``, ``labels[1]`` starts just
    right of it, on the first footer line, with an arrow pointing away from ``ref``."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = blended_transform_factory(ax.transData, ax.transAxes)
    y = -(XAXIS_SPACE + 0.02)
    for text, dx, align in ((f"\u2190 {labels[0]}", -0.06, "right"),
                            (f"{labels[1]} \u2192", 0.06, "left")):
        ax.text(ref, 0.0, plain_text(text),
                transform=base + ScaledTranslation(dx, y, ax.figure.dpi_scale_trans),
                ha=align, va="top", fontsize=FONT - 0.5, color="black", clip_on=False,
                gid="direction_label")


def heterogeneity_text(result: MetaResult) -> str:
    """metafor-style heterogeneity summary, e.g. ``τ² = 0.41, I² = 63.2%, Q = ...``.

    For the GLMM, Q is named in words as the Wald-type test of residual heterogeneity
    (metafor's ``QE.Wld``; the attribute name is never shown)."""
    parts = []
    if not is_common_effect(str(result.method)):
        tau2 = float(result.tau2)
        parts.append("τ² = " + ("n.a." if not np.isfinite(tau2) else f"{tau2:.3g}"))
    i2 = float(result.i2)
    parts.append("I² = " + ("n.a." if not np.isfinite(i2) else f"{i2:.1f}%"))
    q = float(result.q)
    q_text = "n.a." if not np.isfinite(q) else f"{q:.2f}"
    test = ("Wald-type test of residual heterogeneity: " if str(result.method) == "GLMM"
            else "")
    parts.append(f"{test}Q = {q_text} (df = {int(result.q_df)}, "
                 f"{fmt_p_value(float(result.q_pvalue))})")
    return ", ".join(parts)
