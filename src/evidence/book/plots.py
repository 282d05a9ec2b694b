"""Figures for the evidence book.

Forest plots (``forest``, ``cumulative_forest``, ``leave_one_out_plot``), a funnel
plot, a meta-regression bubble plot, a heatmap of HER2-category transitions and a
PRISMA-style patient-flow diagram.

Conventions shared by every function:

- ``ax=None`` creates a new Figure of a fixed, content-dependent size; passing an
  Axes draws into it (text columns of the forest plots are then placed outside the
  Axes, at fixed distances in inches, so leave room around it).  The Figure is
  always returned; nothing is shown and no global backend is set.
- Figures created here are plain :class:`matplotlib.figure.Figure` objects (not
  registered with pyplot, so nothing leaks between calls) that also know how to
  display themselves in Jupyter (``_repr_png_``), with or without ``%matplotlib``.
- Output is deterministic: no jitter, no random state, fixed sizes.
- Colours come from the Okabe-Ito palette and the ``cividis`` colour map, both safe
  for colour-vision deficiencies; intervals also differ by line style, not colour
  alone.  Fonts are matplotlib's default (DejaVu Sans).
- Artists that tests and readers may want to find carry a ``gid``:
  ``"study_markers"``, ``"study_ci"``, ``"pooled_diamond"``,
  ``"prediction_interval"``, ``"refline"``, ``"pooled_estimate"``,
  ``"pooled_ci_band"``, ``"pseudo_ci"``, ``"bubbles"``, ``"fitted_line"``,
  ``"transition_cells"``, ``"cell_text"``, ``"flow_box"``, ``"flow_arrow"``.

Measures use metafor's codes; on the natural scale the single-proportion measures
(``PLO``, ``PFT``, ``PAS``, ``PR``) show proportions and ``RR``/``OR``/``HR`` show
ratios on a logarithmic axis.  Back-transformations come from
:func:`evidence.stats.transforms.back_transform` (metafor's ``transf.*`` functions).
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evidence.stats.results import MetaResult

__all__ = [
    "PALETTE",
    "bubble",
    "caterpillar",
    "cumulative_forest",
    "flow_diagram",
    "forest",
    "funnel",
    "leave_one_out_plot",
    "transition_heatmap",
]

#: Okabe-Ito colours (Okabe & Ito 2008), distinguishable with colour-vision deficiencies.
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

_PROPORTION = ("PLO", "PFT", "PAS", "PR")
_RATIO = ("RR", "OR", "HR")
_DIFFERENCE = ("RD",)
_MEASURES = _PROPORTION + _RATIO + _DIFFERENCE

#: Axis label of each measure's own (model) scale.
_SCALE_LABEL = {
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
_NATURAL_LABEL = {
    "PLO": "Proportion",
    "PFT": "Proportion",
    "PAS": "Proportion",
    "PR": "Proportion",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "HR": "Hazard ratio",
    "RD": "Risk difference",
}
_SORTS = ("estimate", "weight", "label")

# Layout constants, in inches (figures are laid out in absolute units so that
# text stays the same size whatever the number of studies).
_FONT = 9.0
_ROW = 0.27
_PAD = 0.14
_MARGIN = 0.15
_PLOT_WIDTH = 3.2
_XAXIS_SPACE = 0.52
_FOOT_LINE = 0.19
_TITLE_SPACE = 0.42
_TOP_SPACE = 0.12
_WRAP = 110


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


@functools.cache
def _figure_class() -> type:
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


def _new_figure(width: float, height: float) -> Figure:
    """A new white Figure of the given size in inches."""
    return _figure_class()(figsize=(width, height), facecolor="white")


def _check_measure(measure: str) -> str:
    if measure not in _MEASURES:
        raise ValueError(f"measure={measure!r} is not supported; "
                         f"allowed: {', '.join(_MEASURES)}")
    return measure


def _text_width(text: str, *, size: float = _FONT, bold: bool = False) -> float:
    """Width of a (possibly multi-line) text in inches, without a renderer."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    widths = [text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0]
              for line in str(text).split("\n") if line]
    return max(widths, default=0.0) / 72.0


def _fmt(value: float, digits: int) -> str:
    return "n.a." if not np.isfinite(value) else f"{value:.{digits}f}"


def _fmt_interval(est: float, lower: float, upper: float, digits: int) -> str:
    return f"{_fmt(est, digits)} [{_fmt(lower, digits)}, {_fmt(upper, digits)}]"


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p = n.a."
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def _as_vector(values: Any, k: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"{name} must be a 1-D sequence of length {k}, got shape {arr.shape}")
    return arr


def _labels(labels: Sequence[str] | Mapping[str, str] | None,
            study_ids: Sequence[str], k: int) -> list[str]:
    """Row labels: a sequence (one per study), a mapping study_id -> label, or the ids."""
    ids = [str(s) for s in study_ids]
    if len(ids) != k:
        raise ValueError(f"expected {k} study ids, got {len(ids)}")
    if labels is None:
        return ids
    if isinstance(labels, Mapping):
        return [str(labels.get(s, s)) for s in ids]
    out = [str(label) for label in labels]
    if len(out) != k:
        raise ValueError(f"labels must have one entry per study ({k}), got {len(out)}")
    return out


def _counts(events: Sequence[int] | None, totals: Sequence[int] | None,
            k: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if (events is None) != (totals is None):
        raise ValueError("give both events and totals, or neither")
    if events is None or totals is None:
        return None, None
    ev = _as_vector(events, k, "events")
    tot = _as_vector(totals, k, "totals")
    if not (np.all(np.isfinite(ev)) and np.all(np.isfinite(tot))):
        raise ValueError("events and totals must be finite")
    if np.any(ev < 0) or np.any(tot <= 0) or np.any(ev > tot):
        raise ValueError("need 0 <= events <= totals and totals > 0")
    if np.any(ev != np.round(ev)) or np.any(tot != np.round(tot)):
        raise ValueError("events and totals must be whole numbers")
    return ev.astype(np.int64), tot.astype(np.int64)


def _apply(f: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """Apply a scalar transformation element-wise, leaving non-finite values NaN."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    for i, v in np.ndenumerate(values):
        if np.isfinite(v):
            out[i] = float(f(float(v)))
    return out


@dataclass(frozen=True)
class _Scale:
    """How values are displayed: the transformation, axis label and axis kind."""

    f: Callable[[float], float]
    label: str
    kind: str  # "proportion" (clamped to [0, 1]), "log" (ratios) or "linear"
    null: float | None  # no-effect value on the displayed scale, if any


def _scale(measure: str, transform: bool | Callable[[float], float],
           harmonic_mean_n: float | None) -> _Scale:
    """Resolve ``transform`` (True: metafor's back-transformation, False: the
    measure's own scale, or a callable) into a :class:`_Scale`."""
    if callable(transform):
        return _Scale(transform, _NATURAL_LABEL[measure], "linear", None)
    if transform is not True and transform is not False:
        raise ValueError(f"transform={transform!r} is not valid; allowed: True, False "
                         "or a callable")
    if transform is False or measure in ("PR", "RD"):
        null = 0.0 if measure in _RATIO + _DIFFERENCE else None
        kind = "proportion" if measure == "PR" else "linear"
        return _Scale(lambda v: v, _SCALE_LABEL[measure], kind, null)
    if measure == "PFT" and harmonic_mean_n is None:
        raise ValueError("measure 'PFT' needs harmonic_mean_n to back-transform; "
                         "pass transform=False or a MetaResult with harmonic_mean_n")
    from evidence.stats.transforms import back_transform

    f = back_transform(measure, harmonic_mean_n=harmonic_mean_n)
    if measure in _RATIO:
        return _Scale(f, _NATURAL_LABEL[measure], "log", 1.0)
    return _Scale(f, _NATURAL_LABEL[measure], "proportion", None)


def _refline(refline: float | bool | None, scale: _Scale) -> float | None:
    if refline is None or refline is True:
        return scale.null
    if refline is False:
        return None
    return float(refline)


def _set_xlim(ax: Axes, values: Sequence[float], scale: _Scale) -> None:
    """Fit the x-axis to the finite values (positive only on a log axis)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if scale.kind == "log":
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        v = v[v > 0]
        if v.size == 0:
            return
        lo, hi = np.log(v.min()), np.log(v.max())
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
class _Column:
    """One text column of a forest table: header, one cell per row, alignment."""

    header: str
    cells: Sequence[str]
    align: str  # "left" or "right"
    bold_rows: tuple[int, ...] = ()

    @property
    def width(self) -> float:
        body = max((_text_width(c, bold=i in self.bold_rows)
                    for i, c in enumerate(self.cells)), default=0.0)
        return max(body, _text_width(self.header, bold=True)) + 2 * _PAD


def _offset(ax: Axes, dx: float, dy: float = 0.0, *, y_in_data: bool = True) -> Any:
    """Transform: x in axes fraction, y in data (or axes) units, shifted by inches."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = (blended_transform_factory(ax.transAxes, ax.transData) if y_in_data
            else ax.transAxes)
    return base + ScaledTranslation(dx, dy, ax.figure.dpi_scale_trans)


def _table_axes(ax: Axes | None, *, n_rows: int, left: Sequence[_Column],
                right: Sequence[_Column], n_foot: int, title: str | None,
                plot_width: float = _PLOT_WIDTH) -> tuple[Figure, Axes]:
    """The Axes of a forest-style table, creating a Figure sized to the table."""
    if ax is not None:
        if title:
            ax.set_title(title, loc="left", fontsize=_FONT + 1.5, fontweight="bold")
        return ax.figure, ax
    left_w = sum(c.width for c in left)
    right_w = sum(c.width for c in right)
    width = 2 * _MARGIN + left_w + plot_width + right_w
    top = _TITLE_SPACE if title else _TOP_SPACE
    bottom = _XAXIS_SPACE + n_foot * _FOOT_LINE + _MARGIN
    height = top + n_rows * _ROW + bottom
    fig = _new_figure(width, height)
    ax = fig.add_axes(((_MARGIN + left_w) / width, bottom / height,
                       plot_width / width, n_rows * _ROW / height))
    if title:
        fig.text(_MARGIN / width, 1 - 0.1 / height, title, ha="left", va="top",
                 fontsize=_FONT + 2, fontweight="bold")
    return fig, ax


def _draw_table(ax: Axes, *, ys: Sequence[float], header_y: float,
                left: Sequence[_Column], right: Sequence[_Column]) -> None:
    """Write the text columns left and right of the Axes, one cell per row y."""
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=_FONT)
    # left columns end at the Axes' left edge (x = 0), right ones start at x = 1
    edge = -sum(c.width for c in left)
    placed = [(c, 0.0, edge + sum(x.width for x in left[:i])) for i, c in enumerate(left)]
    placed += [(c, 1.0, sum(x.width for x in right[:i])) for i, c in enumerate(right)]
    for col, anchor, start in placed:
        trans = _offset(ax, start + (_PAD if col.align == "left" else col.width - _PAD))
        ax.text(anchor, header_y, col.header, transform=trans, ha=col.align, va="center",
                fontsize=_FONT, fontweight="bold", clip_on=False, gid="column_header")
        for row, (y, cell) in enumerate(zip(ys, col.cells, strict=True)):
            ax.text(anchor, y, cell, transform=trans, ha=col.align, va="center",
                    fontsize=_FONT, clip_on=False, gid="cell",
                    fontweight="bold" if row in col.bold_rows else "normal")
    # rule under the header across the whole table
    fig = ax.figure
    ax_width = ax.get_position().width * fig.get_figwidth()
    x_left = -sum(c.width for c in left) / ax_width
    x_right = 1 + sum(c.width for c in right) / ax_width
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transAxes, ax.transData)
    ax.plot([x_left, x_right], [header_y - 0.5] * 2, transform=trans, color="0.6",
            linewidth=0.6, clip_on=False, gid="header_rule")


def _draw_footer(ax: Axes, lines: Sequence[str], left: Sequence[_Column]) -> None:
    """Write footnote lines under the x-axis, flush with the leftmost column."""
    dx = -sum(c.width for c in left) + _PAD
    for i, line in enumerate(lines):
        ax.text(0.0, 0.0, line, transform=_offset(ax, dx, -(_XAXIS_SPACE + i * _FOOT_LINE),
                                                  y_in_data=False),
                ha="left", va="top", fontsize=_FONT - 0.5, color="0.15", clip_on=False,
                gid="footnote")


def _wrap(lines: Sequence[str], left: Sequence[_Column], right: Sequence[_Column],
          ax: Axes | None) -> list[str]:
    """Wrap footnotes to the width of the table (or 110 characters in a given Axes)."""
    if ax is None:
        table = sum(c.width for c in (*left, *right)) + _PLOT_WIDTH - _PAD
        width = max(60, int(table / (0.58 * (_FONT - 0.5) / 72)))  # ~0.58 em per character
    else:
        width = _WRAP
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, width) or [""])
    return out


def _model_label(result: Any) -> str:
    method = str(result.method)
    if method in ("FE", "EE", "CE"):
        return "Common-effect model"
    extra = ", Hartung-Knapp" if getattr(result, "test", "z") == "t" else ""
    return f"Random-effects model ({method}{extra})"


def _heterogeneity_text(result: MetaResult) -> str:
    """metafor-style heterogeneity summary, e.g. ``τ² = 0.41, I² = 63.2%, Q = ...``."""
    parts = []
    if str(result.method) not in ("FE", "EE", "CE"):
        tau2 = float(result.tau2)
        parts.append("τ² = " + ("n.a." if not np.isfinite(tau2) else f"{tau2:.3g}"))
    i2 = float(result.i2)
    parts.append("I² = " + ("n.a." if not np.isfinite(i2) else f"{i2:.1f}%"))
    q = float(result.q)
    q_text = "n.a." if not np.isfinite(q) else f"{q:.2f}"
    parts.append(f"Q = {q_text} (df = {int(result.q_df)}, {_fmt_p(float(result.q_pvalue))})")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# forest plot
# ---------------------------------------------------------------------------


def forest(result: MetaResult, *, labels: Sequence[str] | Mapping[str, str] | None = None,
           events: Sequence[int] | None = None, totals: Sequence[int] | None = None,
           study_ci: tuple[Sequence[float], Sequence[float]] | None = None,
           transform: bool | Callable[[float], float] = True, ax: Axes | None = None,
           xlabel: str | None = None, show_weights: bool = True, show_pi: bool = True,
           sort: str | None = None, title: str | None = None,
           refline: float | bool | None = None, digits: int = 2) -> Figure:
    """Forest plot of a meta-analysis in the usual clinical layout.

    Left columns: study label and (if given) events/total; centre: one square per
    study, area proportional to its weight, with its confidence interval, then the
    pooled diamond and, for random-effects models, the prediction interval as a
    dashed bar under it; right columns: "estimate [CI]" and weight (%).  Under the
    x-axis: the heterogeneity line ``τ² = …, I² = …%, Q = … (df = …, p = …)``, the
    measure and method, and the result's ``notes``.

    Parameters
    ----------
    result : MetaResult
        The fitted model (``yi``, ``vi``, ``weights`` per study; pooled values on
        the measure's scale).
    labels : sequence of str or mapping, optional
        Row labels, one per study, or a mapping ``study_id -> label``.  Defaults to
        ``result.study_ids``.
    events, totals : sequence of int, optional
        Counts shown in an "Events / total" column (``xi``/``ni``); the pooled row
        shows their sums.
    study_ci : (lower, upper), optional
        Explicit per-study confidence limits on the displayed scale, e.g.
        Clopper-Pearson limits from :func:`evidence.stats.effects.proportion_ci`.
        Preferred over the default Wald limits ``yi ± z·sqrt(vi)``.  When given
        together with ``events``/``totals`` for a proportion measure shown on the
        natural scale, each study's point is the raw proportion ``xi/ni`` (so a
        zero-event study sits at 0 with an interval starting at 0).
    transform : bool or callable, default True
        True: back-transform to the natural scale (a proportion, or a ratio on a
        log axis) with :func:`evidence.stats.transforms.back_transform`; False: stay on
        the measure's scale; a callable: apply it (like metafor's ``transf=``).
    ax : matplotlib.axes.Axes, optional
        Axes for the plotting area; the text columns are placed outside it.
    xlabel : str, optional
        Defaults to the displayed scale (e.g. ``"Proportion"``).
    show_weights : bool, default True
        Show the weight column (dropped when the weights are undefined, e.g. GLMM).
    show_pi : bool, default True
        Draw the prediction interval (random-effects models with k >= 2 only).
    sort : {None, "estimate", "weight", "label"}
        Row order: input order, ascending estimate, descending weight, or label.
    title : str, optional
        Figure title; none when None or empty.
    refline : float or bool, optional
        Vertical reference line: None/True for the measure's null value (1 for
        ratios, 0 for log ratios and risk differences, none for proportions),
        False for none, or a value on the displayed scale.
    digits : int, default 2
        Decimals in the "estimate [CI]" column.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure drawn on (new, height growing with k, when ``ax`` is None).

    Notes
    -----
    With ``k == 1`` the study is drawn alone with the note "k = 1: not pooled".
    """
    measure = _check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    if sort is not None and sort not in _SORTS:
        raise ValueError(f"sort={sort!r} is not valid; allowed: None, {', '.join(_SORTS)}")
    yi = _as_vector(result.yi, k, "result.yi")
    vi = _as_vector(result.vi, k, "result.vi")
    names = _labels(labels, result.study_ids, k)
    ev, tot = _counts(events, totals, k)
    scale = _scale(measure, transform, getattr(result, "harmonic_mean_n", None))
    level = float(getattr(result, "level", 0.95))
    z = NormalDist().inv_cdf(0.5 + level / 2)

    if study_ci is not None:
        lo = _as_vector(study_ci[0], k, "study_ci lower")
        hi = _as_vector(study_ci[1], k, "study_ci upper")
        if ev is not None and tot is not None and scale.kind == "proportion" \
                and measure in _PROPORTION:
            point = ev / tot
        else:
            point = _apply(scale.f, yi)
    else:
        se = np.sqrt(vi)
        point = _apply(scale.f, yi)
        a, b = _apply(scale.f, yi - z * se), _apply(scale.f, yi + z * se)
        lo, hi = np.fmin(a, b), np.fmax(a, b)

    weights = np.asarray(result.weights, dtype=float)
    if weights.shape != (k,):
        weights = np.full(k, np.nan)
    has_weights = bool(np.all(np.isfinite(weights)))

    if sort == "estimate":
        order = np.argsort(point, kind="stable")
    elif sort == "weight":
        order = np.argsort(-weights, kind="stable")
    elif sort == "label":
        order = np.array(sorted(range(k), key=lambda i: names[i]), dtype=int)
    else:
        order = np.arange(k)

    pooled = k >= 2
    method = str(result.method)
    random_effects = method not in ("FE", "EE", "CE")
    est_n, ci_l, ci_u, pi_l, pi_u = (float(v) for v in _apply(scale.f, np.array(
        [result.estimate, result.ci_lower, result.ci_upper, result.pi_lower, result.pi_upper],
        dtype=float)))
    ci_l, ci_u = min(ci_l, ci_u), max(ci_l, ci_u)
    pi_l, pi_u = min(pi_l, pi_u), max(pi_l, pi_u)
    draw_pi = (pooled and show_pi and random_effects
               and np.isfinite(pi_l) and np.isfinite(pi_u))

    # rows: header y = 0, studies y = -1 ... -k, gap, pooled, prediction interval
    study_y = -(np.arange(k) + 1.0)
    ys = list(study_y)
    pooled_y = -(k + 2.0)
    pi_y = pooled_y - 1.0
    row_labels = [names[i] for i in order]
    row_counts = [f"{ev[i]}/{tot[i]}" for i in order] if ev is not None else None
    row_est = [_fmt_interval(point[i], lo[i], hi[i], digits) for i in order]
    show_w = show_weights and has_weights
    row_w = [f"{weights[i]:.1f}%" for i in order]
    bold_rows: list[int] = []
    if pooled:
        ys.append(pooled_y)
        bold_rows.append(len(ys) - 1)
        row_labels.append(_model_label(result))
        if row_counts is not None and ev is not None and tot is not None:
            row_counts.append(f"{int(ev.sum())}/{int(tot.sum())}")
        row_est.append(_fmt_interval(est_n, ci_l, ci_u, digits))
        row_w.append("100%")
        if draw_pi:
            ys.append(pi_y)
            row_labels.append("Prediction interval")
            if row_counts is not None:
                row_counts.append("")
            row_est.append(f"[{_fmt(pi_l, digits)}, {_fmt(pi_u, digits)}]")
            row_w.append("")
    n_rows = 1 + int(-min(ys))

    level_pct = f"{100 * level:g}%"
    bold = tuple(bold_rows)
    left = [_Column("Study", row_labels, "left", bold)]
    if row_counts is not None:
        left.append(_Column("Events / total", row_counts, "right", bold))
    right = [_Column(f"{scale.label} [{level_pct} CI]", row_est, "right", bold)]
    if show_w:
        right.append(_Column("Weight", row_w, "right", bold))

    foot = []
    if pooled:
        foot.append(_heterogeneity_text(result))
    else:
        foot.append("k = 1: not pooled")
    study_ci_text = ("as given (e.g. exact)" if study_ci is not None
                     else f"Wald, yi ± {z:.2f}·√vi on the {measure} scale")
    foot.append(f"Measure: {measure} ({_SCALE_LABEL[measure].lower()}); method: {method}; "
                f"study CIs: {study_ci_text}")
    if show_weights and not has_weights:
        foot.append("Squares of equal size: model weights are not defined for this method.")
    drawn = np.concatenate([lo, hi, [ci_l, ci_u] if pooled else [],
                            [pi_l, pi_u] if draw_pi else []])
    if scale.kind == "proportion" and np.any((drawn < 0) | (drawn > 1)):
        foot.append("Intervals are cut at 0 and 1 in the plot; the numbers are not.")
    foot.extend(f"Note: {n}" for n in getattr(result, "notes", ())
                if not str(n).startswith("k = 1"))
    foot = _wrap(foot, left, right, ax)

    fig, ax = _table_axes(ax, n_rows=n_rows, left=left, right=right, n_foot=len(foot),
                          title=title)
    _draw_table(ax, ys=ys, header_y=0.0, left=left, right=right)
    _draw_footer(ax, foot, left)

    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon

    ordered_point, ordered_lo, ordered_hi = point[order], lo[order], hi[order]
    ax.add_collection(LineCollection(
        [[(a, y), (b, y)] for a, b, y in zip(ordered_lo, ordered_hi, study_y, strict=True)],
        colors=PALETTE["black"], linewidths=1.1, gid="study_ci"))
    max_area = (0.72 * _ROW * 72) ** 2
    if has_weights and weights.max() > 0:
        sizes = np.maximum(max_area * weights[order] / weights.max(), 9.0)
    else:
        sizes = np.full(k, max_area / 3)
    ax.scatter(ordered_point, study_y, s=sizes, marker="s", color=PALETTE["blue"],
               edgecolors=PALETTE["black"], linewidths=0.4, zorder=3, clip_on=False,
               gid="study_markers")
    x_values = [*ordered_lo, *ordered_hi, *ordered_point]
    if pooled:
        half = 0.36
        ax.add_patch(Polygon([(ci_l, pooled_y), (est_n, pooled_y + half), (ci_u, pooled_y),
                              (est_n, pooled_y - half)], closed=True,
                             facecolor=PALETTE["vermillion"], edgecolor=PALETTE["black"],
                             linewidth=0.6, zorder=3, gid="pooled_diamond"))
        x_values += [ci_l, ci_u]
        if draw_pi:
            ax.plot([pi_l, pi_u], [pi_y, pi_y], color=PALETTE["vermillion"], linestyle="--",
                    linewidth=1.6, marker="|", markersize=8, gid="prediction_interval")
            x_values += [pi_l, pi_u]
    ref = _refline(refline, scale)
    if ref is not None:
        ax.axvline(ref, color="0.35", linestyle=":", linewidth=1.0, zorder=1, gid="refline")
        x_values.append(ref)
    ax.set_ylim(-(n_rows - 1) - 0.6, 0.6)
    _set_xlim(ax, x_values, scale)
    ax.set_xlabel(xlabel if xlabel is not None else scale.label, fontsize=_FONT)
    return fig


# ---------------------------------------------------------------------------
# cumulative and leave-one-out forests
# ---------------------------------------------------------------------------


def _interval_forest(*, row_labels: list[str], est: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, scale: _Scale, level: float, header: str,
                     ax: Axes | None,
                     title: str | None, xlabel: str | None, foot: list[str],
                     digits: int, reference: tuple[float, float, float] | None,
                     refline: float | None) -> Figure:
    """Rows of estimate + CI (no weights, no diamond): cumulative and leave-one-out."""
    n = len(row_labels)
    ys = list(-(np.arange(n) + 1.0))
    a, b = np.fmin(lower, upper), np.fmax(lower, upper)
    left = [_Column(header, row_labels, "left")]
    right = [_Column(f"{scale.label} [{100 * level:g}% CI]",
                     [_fmt_interval(e, x, y, digits) for e, x, y in zip(est, a, b, strict=True)],
                     "right")]
    foot = _wrap(foot, left, right, ax)
    fig, ax = _table_axes(ax, n_rows=n + 1, left=left, right=right, n_foot=len(foot),
                          title=title)
    _draw_table(ax, ys=ys, header_y=0.0, left=left, right=right)
    _draw_footer(ax, foot, left)

    from matplotlib.collections import LineCollection

    x_values = [*a, *b, *est]
    if reference is not None:
        r_est, r_lo, r_hi = reference
        ax.fill_betweenx([-n - 0.5, -0.5], r_lo, r_hi, color=PALETTE["sky_blue"],
                         alpha=0.3, linewidth=0, zorder=0, gid="pooled_ci_band")
        ax.plot([r_est, r_est], [-n - 0.5, -0.5], color=PALETTE["blue"], linestyle="--",
                linewidth=1.0, zorder=1, gid="pooled_estimate")
        x_values += [r_lo, r_hi]
    if refline is not None:
        ax.axvline(refline, color="0.35", linestyle=":", linewidth=1.0, zorder=1,
                   gid="refline")
        x_values.append(refline)
    ax.add_collection(LineCollection(
        [[(x, y), (w, y)] for x, w, y in zip(a, b, ys, strict=True)],
        colors=PALETTE["black"], linewidths=1.1, gid="study_ci"))
    ax.scatter(est, ys, s=30, marker="D", color=PALETTE["vermillion"],
               edgecolors=PALETTE["black"], linewidths=0.4, zorder=3, clip_on=False,
               gid="study_markers")
    ax.set_ylim(-n - 0.6, 0.6)
    _set_xlim(ax, x_values, scale)
    ax.set_xlabel(xlabel if xlabel is not None else scale.label, fontsize=_FONT)
    return fig


def _sequential_fields(obj: Any, what: str) -> tuple[str, list[str], np.ndarray,
                                                      np.ndarray, np.ndarray]:
    """Read ``measure, study_ids, estimate, ci_lower, ci_upper`` from a duck-typed result."""
    missing = [f for f in ("measure", "study_ids", "estimate", "ci_lower", "ci_upper")
               if not hasattr(obj, f)]
    if missing:
        raise TypeError(f"{what} needs attributes measure, study_ids, estimate, ci_lower, "
                        f"ci_upper; missing: {', '.join(missing)}")
    measure = _check_measure(str(obj.measure))
    ids = [str(s) for s in obj.study_ids]
    n = len(ids)
    if n == 0:
        raise ValueError(f"{what} has no rows")
    est = _as_vector(obj.estimate, n, "estimate")
    lo = _as_vector(obj.ci_lower, n, "ci_lower")
    hi = _as_vector(obj.ci_upper, n, "ci_upper")
    return measure, ids, est, lo, hi


def cumulative_forest(cum: Any, *, labels: Sequence[str] | Mapping[str, str] | None = None,
                      transform: bool | Callable[[float], float] = True,
                      ax: Axes | None = None, title: str | None = "Cumulative meta-analysis",
                      xlabel: str | None = None, refline: float | bool | None = None,
                      digits: int = 2) -> Figure:
    """Forest plot of a cumulative meta-analysis: one row per study added.

    Row *i* shows the pooled estimate and CI of the first *i* studies.

    Parameters
    ----------
    cum : object
        Duck-typed (e.g. :class:`evidence.stats.sensitivity.Cumulative` or the GLMM
        equivalent); needs ``measure`` (metafor code), ``study_ids`` (the study
        added at each step, in order), and ``estimate``, ``ci_lower``, ``ci_upper``
        (arrays on the measure's scale).  ``harmonic_mean_n`` is used if present
        (needed for ``PFT`` when ``transform=True``).
    labels : sequence of str or mapping, optional
        Labels for ``study_ids`` (one per row, or ``study_id -> label``).
    transform : bool or callable, default True
        As in :func:`forest`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure when None.
    title, xlabel : str, optional
        Figure title and x-axis label (default: the displayed scale).
    refline : float or bool, optional
        As in :func:`forest`.
    digits : int, default 2
        Decimals in the "estimate [CI]" column.

    Returns
    -------
    matplotlib.figure.Figure
    """
    measure, ids, est, lo, hi = _sequential_fields(cum, "cumulative_forest")
    names = _labels(labels, ids, len(ids))
    scale = _scale(measure, transform, getattr(cum, "harmonic_mean_n", None))
    rows = [names[0]] + [f"+ {name}" for name in names[1:]]
    foot = [f"Row i: pooled estimate of the first i studies; measure {measure}"
            + (f", method {cum.method}" if hasattr(cum, "method") else "") + "."]
    return _interval_forest(row_labels=rows, est=_apply(scale.f, est),
                            lower=_apply(scale.f, lo), upper=_apply(scale.f, hi),
                            scale=scale, level=float(getattr(cum, "level", 0.95)),
                            header="Study added", ax=ax, title=title,
                            xlabel=xlabel, foot=foot, digits=digits, reference=None,
                            refline=_refline(refline, scale))


def leave_one_out_plot(loo: Any, *, pooled: Any = None,
                       labels: Sequence[str] | Mapping[str, str] | None = None,
                       transform: bool | Callable[[float], float] = True,
                       ax: Axes | None = None,
                       title: str | None = "Leave-one-out analysis",
                       xlabel: str | None = None, refline: float | bool | None = None,
                       digits: int = 2) -> Figure:
    """Forest plot of a leave-one-out analysis: one row per omitted study.

    Parameters
    ----------
    loo : object
        Duck-typed (e.g. :class:`evidence.stats.sensitivity.LeaveOneOut`); needs
        ``measure``, ``study_ids`` (the omitted study of each row), and
        ``estimate``, ``ci_lower``, ``ci_upper`` on the measure's scale.
        ``harmonic_mean_n`` is used if present.
    pooled : MetaResult or Pooled, optional
        The fit with all studies, drawn as a dashed line with a shaded CI band.
        A :class:`~evidence.stats.results.MetaResult` is transformed like the rows; a
        :class:`~evidence.stats.results.Pooled` is taken as already on the natural
        scale (only with ``transform=True``).
    labels, transform, ax, title, xlabel, refline, digits
        As in :func:`cumulative_forest`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    measure, ids, est, lo, hi = _sequential_fields(loo, "leave_one_out_plot")
    names = _labels(labels, ids, len(ids))
    scale = _scale(measure, transform, getattr(loo, "harmonic_mean_n", None))
    reference = None
    foot = [f"Row: pooled estimate without that study; measure {measure}"
            + (f", method {loo.method}" if hasattr(loo, "method") else "") + "."]
    if pooled is not None:
        if hasattr(pooled, "yi"):  # a MetaResult: measure scale
            if str(pooled.measure) != measure:
                raise ValueError(f"pooled.measure={pooled.measure!r} differs from the "
                                 f"leave-one-out measure {measure!r}")
            values = _apply(scale.f, np.array([pooled.estimate, pooled.ci_lower,
                                               pooled.ci_upper], dtype=float))
        elif transform is True:  # a Pooled: natural scale
            values = np.array([pooled.estimate, pooled.ci_lower, pooled.ci_upper], float)
        else:
            raise ValueError("a Pooled (natural scale) reference needs transform=True; "
                             "pass the MetaResult instead")
        r_est, r_lo, r_hi = (float(v) for v in values)
        reference = (r_est, min(r_lo, r_hi), max(r_lo, r_hi))
        foot.append(f"Dashed line and band: all studies, {_fmt(r_est, digits)} "
                    f"[{_fmt(reference[1], digits)}, {_fmt(reference[2], digits)}].")
    rows = [f"Omitting {name}" for name in names]
    return _interval_forest(row_labels=rows, est=_apply(scale.f, est),
                            lower=_apply(scale.f, lo), upper=_apply(scale.f, hi),
                            scale=scale, level=float(getattr(loo, "level", 0.95)),
                            header="Study omitted", ax=ax, title=title,
                            xlabel=xlabel, foot=foot, digits=digits, reference=reference,
                            refline=_refline(refline, scale))


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
    measure = _check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    yi = _as_vector(result.yi, k, "result.yi")
    sei = np.sqrt(_as_vector(result.vi, k, "result.vi"))
    if ax is None:
        fig = _new_figure(5.5, 4.5)
        ax = fig.add_axes((0.14, 0.14, 0.8, 0.74))
    else:
        fig = ax.figure
    z = NormalDist().inv_cdf(0.5 + float(getattr(result, "level", 0.95)) / 2)
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
    ax.set_xlabel(xlabel if xlabel is not None else _SCALE_LABEL[measure], fontsize=_FONT)
    ax.set_ylabel("Standard error", fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if k < 10:
        ax.text(1.0, 1.015, f"k = {k} < 10: asymmetry cannot be judged reliably",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=_FONT - 1,
                color="0.25", gid="footnote")
    if title:
        ax.set_title(title, loc="left", fontsize=_FONT + 2, fontweight="bold")
    return fig


def caterpillar(result: MetaResult, *, study_ci: tuple[Any, Any] | None = None,
                ax: Axes | None = None, xlabel: str | None = None,
                title: str | None = None) -> Figure:
    """A forest plot for many studies: intervals sorted by estimate, no text rows.

    Each study is a horizontal line (its CI) with a dot (its estimate), sorted from
    the lowest to the highest estimate; the pooled estimate is a vertical line with
    its CI as a band and, for random-effects models, the prediction interval as a
    lighter band.  Drawn with line collections, so k = 10,000 stays fast and the
    figure's size does not grow with k.

    Parameters
    ----------
    result : MetaResult
        The fit (``yi``/``vi`` on the measure's scale).
    study_ci : (lower, upper), optional
        Per-study limits on the natural scale (e.g. exact Clopper-Pearson); by
        default ``yi ± z sqrt(vi)`` back-transformed.
    ax, xlabel, title
        As in :func:`forest`.
    """
    from matplotlib.collections import LineCollection

    from evidence.stats.transforms import back_transform

    measure = _check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    f = back_transform(measure, harmonic_mean_n=result.harmonic_mean_n)
    yi = _as_vector(result.yi, k, "result.yi")
    sei = np.sqrt(_as_vector(result.vi, k, "result.vi"))
    z = NormalDist().inv_cdf(0.5 + float(result.level) / 2)
    est = _apply(f, yi)
    if study_ci is not None:
        lo = np.asarray(study_ci[0], dtype=float)
        hi = np.asarray(study_ci[1], dtype=float)
    else:
        lo, hi = _apply(f, yi - z * sei), _apply(f, yi + z * sei)
    order = np.argsort(est, kind="stable")
    rows = np.arange(1, k + 1, dtype=float)
    if ax is None:
        fig = _new_figure(7.0, 4.8)
        ax = fig.add_axes((0.1, 0.13, 0.86, 0.77))
    else:
        fig = ax.figure
    pooled = result.pooled()
    if result.method not in ("FE", "EE", "CE") and k > 1:
        ax.axvspan(pooled.pi_lower, pooled.pi_upper, color=PALETTE["orange"], alpha=0.15,
                   linewidth=0, gid="prediction_interval")
    ax.axvspan(pooled.ci_lower, pooled.ci_upper, color=PALETTE["vermillion"], alpha=0.25,
               linewidth=0, gid="pooled_ci")
    ax.axvline(pooled.estimate, color=PALETTE["vermillion"], linewidth=1.2,
               gid="pooled_estimate")
    segments = np.stack([np.column_stack([lo[order], rows]),
                         np.column_stack([hi[order], rows])], axis=1)
    ax.add_collection(LineCollection(segments, colors=PALETTE["blue"],
                                     linewidths=0.6 if k > 200 else 1.0, gid="study_cis"))
    ax.scatter(est[order], rows, s=4 if k > 200 else 12, color=PALETTE["black"], zorder=3,
               gid="study_markers")
    ax.set_ylim(0, k + 1)
    finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    if finite.size:
        pad = 0.03 * (finite.max() - finite.min() or 1.0)
        ax.set_xlim(finite.min() - pad, finite.max() + pad)
    ax.set_yticks([])
    ax.set_ylabel(f"{k} studies, sorted by estimate", fontsize=_FONT)
    ax.set_xlabel(xlabel if xlabel is not None else _SCALE_LABEL[measure], fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title if title is not None else
                 f"{_model_label(result)}: {pooled.estimate:.2f} "
                 f"[{pooled.ci_lower:.2f}, {pooled.ci_upper:.2f}]",
                 loc="left", fontsize=_FONT + 1)
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
    ys = _as_vector(yi, k, "yi")
    vs = _as_vector(vi, k, "vi")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(np.isfinite(vs))):
        raise ValueError("x, yi and vi must be finite")
    if np.any(vs <= 0):
        raise ValueError("vi must be > 0")
    if (fit_intercept is None) != (fit_slope is None):
        raise ValueError("give both fit_intercept and fit_slope, or neither")
    if ax is None:
        fig = _new_figure(5.5, 4.2)
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
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.set_ylabel(ylabel, fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.text(1.0, 1.015, "Bubble area ∝ 1/vi", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=_FONT - 1, color="0.25", gid="footnote")
    if title:
        ax.set_title(title, loc="left", fontsize=_FONT + 2, fontweight="bold")
    return fig


# ---------------------------------------------------------------------------
# HER2 transitions and patient flow
# ---------------------------------------------------------------------------


def transition_heatmap(matrix: Any, categories: Sequence[str] = ("zero", "low", "positive"),
                       *, ax: Axes | None = None, title: str | None = None,
                       row_label: str = "Primary tumour",
                       col_label: str = "Recurrence") -> Figure:
    """Heatmap of HER2-category transitions (rows: primary tumour; columns: recurrence).

    Each cell shows the count and the row percentage; colour encodes the row
    percentage (``cividis``, 0-100%).  Row totals appear in the row labels.

    Parameters
    ----------
    matrix : array-like of int, shape (n, n)
        Counts; ``matrix[i, j]`` patients moved from category ``i`` in the primary
        tumour to category ``j`` at recurrence.
    categories : sequence of str, default ("zero", "low", "positive")
        The n category names, in matrix order.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new 5.6 x 4.4 inch Figure when None.
    title : str, optional
        Defaults to "HER2 category: primary tumour → recurrence"; none when empty.
    row_label, col_label : str
        Axis labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    m = np.asarray(matrix, dtype=float)
    cats = [str(c) for c in categories]
    n = len(cats)
    if m.ndim != 2 or m.shape != (n, n):
        raise ValueError(f"matrix must be {n} x {n} to match categories {cats}, "
                         f"got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m != np.round(m)):
        raise ValueError("matrix must hold non-negative whole counts")
    counts = m.astype(np.int64)
    row_totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(row_totals[:, None] > 0, 100.0 * m / row_totals[:, None], np.nan)
    created = ax is None
    if ax is None:
        fig = _new_figure(5.6, 4.4)
        ax = fig.add_axes((0.2, 0.13, 0.62, 0.74))
    else:
        fig = ax.figure
    import matplotlib

    cmap = matplotlib.colormaps["cividis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(pct), cmap=cmap, vmin=0.0, vmax=100.0,
                      aspect="equal")
    image.set_gid("transition_cells")
    for i in range(n):
        for j in range(n):
            value = pct[i, j]
            text = f"{counts[i, j]}\n" + ("n.a." if not np.isfinite(value) else f"{value:.0f}%")
            dark = np.isfinite(value) and value < 55.0
            ax.text(j, i, text, ha="center", va="center", fontsize=_FONT + 1,
                    color="white" if dark else "black",
                    fontweight="bold" if i == j else "normal", gid="cell_text")
    ax.set_xticks(range(n), cats, fontsize=_FONT)
    ax.set_yticks(range(n), [f"{c}\n(n = {t})" for c, t in zip(cats, row_totals,
                                                               strict=True)],
                  fontsize=_FONT)
    ax.set_xlabel(col_label, fontsize=_FONT + 0.5)
    ax.set_ylabel(row_label, fontsize=_FONT + 0.5)
    ax.tick_params(length=0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.04)
    colorbar.set_label("Row percentage", fontsize=_FONT)
    colorbar.ax.tick_params(labelsize=_FONT - 1)
    if title is None:
        title = "HER2 category: primary tumour → recurrence"
    if title and created:
        fig.text(0.03, 0.97, title, ha="left", va="top", fontsize=_FONT + 2,
                 fontweight="bold")
    elif title:
        ax.set_title(title, loc="left", fontsize=_FONT + 1.5, fontweight="bold")
    return fig


_DEFAULT_STAGE_LABELS = {
    "screened": "Screened",
    "with_ctcs": "With CTCs",
    "her2_positive_ctcs": "With HER2+ CTCs",
    "with_her2_ctcs": "With HER2+ CTCs",
    "treated": "Treated",
    "evaluable": "Evaluable",
}


def _flow_table(stages: Any, label_column: str,
                stage_labels: Mapping[str, str] | None
                ) -> tuple[list[str], list[str], list[list[int | None]]]:
    """Normalise the input of :func:`flow_diagram` to (trials, stage names, counts)."""
    names = dict(_DEFAULT_STAGE_LABELS)
    names.update(stage_labels or {})

    def count(value: Any, where: str) -> int | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        number = float(value)
        if number < 0 or number != round(number):
            raise ValueError(f"{where}: count must be a non-negative whole number, "
                             f"got {value!r}")
        return int(number)

    if hasattr(stages, "columns") and hasattr(stages, "itertuples"):
        columns = [str(c) for c in stages.columns]
        if not columns:
            raise ValueError("the table has no columns")
        label_col = label_column if label_column in columns else columns[0]
        stage_cols = [c for c in columns if c != label_col]
        if not stage_cols:
            raise ValueError("the table has no stage columns")
        if len(stages) == 0:
            raise ValueError("the table has no rows")
        trials = [str(v) for v in stages[label_col].tolist()]
        table = [[count(v, f"{trial}: {col}") for col, v in
                  zip(stage_cols, stages.loc[idx, stage_cols].tolist(), strict=True)]
                 for trial, idx in zip(trials, stages.index, strict=True)]
        labels = [names.get(c, c.replace("_", " ").capitalize()) for c in stage_cols]
        return trials, labels, table
    pairs = list(stages)
    if not pairs:
        raise ValueError("no stages given")
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise ValueError(f"stages must be (name, count) pairs, got {pair!r}")
    labels = [names.get(str(s), str(s)) for s, _ in pairs]
    return [""], labels, [[count(v, str(s)) for s, v in pairs]]


def flow_diagram(stages: Sequence[tuple[str, int | None]] | pd.DataFrame, *,
                 label_column: str = "label",
                 stage_labels: Mapping[str, str] | None = None,
                 ax: Axes | None = None, title: str | None = "Patient flow",
                 max_columns: int = 5) -> Figure:
    """PRISMA-style patient flow: a vertical chain of boxes per trial.

    Each box shows a stage and its count with the percentage of the last
    reported stage before it; missing counts appear as "n.r." (not reported) in a dashed box.
    Several trials are drawn side by side as small multiples, wrapping after
    ``max_columns`` trials.

    Parameters
    ----------
    stages : sequence of (str, int) or pandas.DataFrame
        One chain as ``[("screened", 139), ("with_ctcs", 80), ...]``, or a table
        with a study-label column and one column per stage in order (e.g.
        ``screened, with_ctcs, her2_positive_ctcs, treated, evaluable``); missing
        values (NaN/None/NA) are shown as "n.r.".
    label_column : str, default "label"
        Column with the trial labels (the first column if absent).
    stage_labels : mapping, optional
        Display names for stage keys (defaults cover the five standard stages;
        others are shown with underscores replaced by spaces).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (its axis is turned off); a new Figure when None.
    title : str, optional
        Title; none when empty.
    max_columns : int, default 5
        Trials per row of the small-multiples grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    trials, labels, table = _flow_table(stages, label_column, stage_labels)
    n_trials, n_stages = len(trials), len(labels)
    n_cols = min(n_trials, max_columns)
    n_grid_rows = math.ceil(n_trials / n_cols)
    has_header = any(trials)
    block = n_stages + (0.6 if has_header else 0.0) + 0.3  # height of one grid row
    if ax is None:
        col_w, stage_h = 1.9, 0.78
        width = max(3.2, n_cols * col_w + 0.3)
        height = n_grid_rows * block * stage_h + (0.5 if title else 0.15)
        fig = _new_figure(width, height)
        top = 1 - (0.5 if title else 0.15) / height
        ax = fig.add_axes((0.15 / width, 0.0, 1 - 0.3 / width, top))
    else:
        fig = ax.figure

    from matplotlib.patches import FancyBboxPatch

    box_w, box_h = 0.84, 0.62
    for t, (trial, counts) in enumerate(zip(trials, table, strict=True)):
        col, grid_row = t % n_cols, t // n_cols
        x = col + 0.5
        y0 = -grid_row * block - (0.6 if has_header else 0.0)
        if has_header:
            ax.text(x, y0 + 0.25, "\n".join(textwrap.wrap(trial, 24)), ha="center",
                    va="center", fontsize=_FONT, fontweight="bold", gid="flow_trial")
        previous: int | None = None
        for s, (stage, n) in enumerate(zip(labels, counts, strict=True)):
            yc = y0 - s - 0.5
            missing = n is None
            ax.add_patch(FancyBboxPatch(
                (x - box_w / 2, yc - box_h / 2), box_w, box_h,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor="white" if missing else "#DDEEF9",
                edgecolor=PALETTE["grey"] if missing else PALETTE["blue"],
                linestyle="--" if missing else "-", linewidth=1.0, gid="flow_box"))
            if n is None:
                value = "n.r."
            elif previous is not None and previous > 0:
                value = f"n = {n} ({100 * n / previous:.0f}%)"
            else:
                value = f"n = {n}"
            ax.text(x, yc, "\n".join(textwrap.wrap(stage, 22)) + "\n" + value,
                    ha="center", va="center", fontsize=_FONT - 1,
                    color="0.35" if missing else "black", gid="flow_text")
            if s > 0:
                ax.annotate("", xy=(x, yc + box_h / 2), xytext=(x, yc + 1 - box_h / 2),
                            arrowprops={"arrowstyle": "-|>", "color": PALETTE["grey"],
                                        "linewidth": 0.9, "shrinkA": 0, "shrinkB": 0},
                            gid="flow_arrow")
            if n is not None:  # percentages refer to the last stage that was reported
                previous = n
    ax.set_xlim(0, n_cols)
    ax.set_ylim(-n_grid_rows * block + 0.2, 0.1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, loc="left", fontsize=_FONT + 2, fontweight="bold")
    return fig
