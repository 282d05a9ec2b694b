"""Diagrams: the heatmap of HER2-category transitions, the patient-flow diagram and the
figure of two-arm comparisons."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.figures._base import (
    FONT,
    PALETTE,
    draw_direction_labels,
    new_figure,
    plain_text,
    text_width,
)
from evidence.book.names import MEASURE_NAMES, outcome_short
from evidence.book.studies import StudyIndex, most_telling
from evidence.book.text import cap, fmt_num
from evidence.stats.vocabulary import TWO_GROUP_MEASURES, check_measure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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
        fig = new_figure(5.6, 4.4)
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
            ax.text(j, i, text, ha="center", va="center", fontsize=FONT + 1,
                    color="white" if dark else "black",
                    fontweight="bold" if i == j else "normal", gid="cell_text")
    ax.set_xticks(range(n), cats, fontsize=FONT)
    ax.set_yticks(range(n), [f"{c}\n(n = {t})" for c, t in zip(cats, row_totals,
                                                               strict=True)],
                  fontsize=FONT)
    ax.set_xlabel(col_label, fontsize=FONT + 0.5)
    ax.set_ylabel(row_label, fontsize=FONT + 0.5)
    ax.tick_params(length=0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.04)
    colorbar.set_label("Row percentage", fontsize=FONT)
    colorbar.ax.tick_params(labelsize=FONT - 1)
    if title is None:
        title = "HER2 category: primary tumour → recurrence"
    if title and created:
        fig.text(0.03, 0.97, title, ha="left", va="top", fontsize=FONT + 2,
                 fontweight="bold")
    elif title:
        ax.set_title(title, loc="left", fontsize=FONT + 1.5, fontweight="bold")
    return fig


_DEFAULT_STAGE_LABELS = {
    "screened": "Screened",
    "with_ctcs": "With CTCs",
    "her2_positive_ctcs": "With HER2+ CTCs",
    "with_her2_ctcs": "With HER2+ CTCs",
    "randomised": "Randomised",
    "treated": "Treated",
    "response_denominator": "In response analysis",
    "evaluable": "Evaluable",
}


def _flow_table(stages: Any, label_column: str,
                stage_labels: Mapping[str, str] | None
                ) -> tuple[list[str], list[str], list[list[int | None]], list[str]]:
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
        return trials, labels, table, stage_cols
    pairs = list(stages)
    if not pairs:
        raise ValueError("no stages given")
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise ValueError(f"stages must be (name, count) pairs, got {pair!r}")
    labels = [names.get(str(s), str(s)) for s, _ in pairs]
    return [""], labels, [[count(v, str(s)) for s, v in pairs]], [str(s) for s, _ in pairs]


def flow_diagram(stages: Sequence[tuple[str, int | None]] | pd.DataFrame, *,
                 label_column: str = "label",
                 stage_labels: Mapping[str, str] | None = None,
                 ax: Axes | None = None, title: str | None = "Patient flow",
                 max_columns: int = 5,
                 missing_text: Mapping[tuple[str, str], str] | None = None) -> Figure:
    """PRISMA-style patient flow: a vertical chain of boxes per trial.

    Each box shows a stage and its count with the percentage of the last
    reported stage before it; a missing count appears as "not reported" in a dashed
    box (or as its ``missing_text``, e.g. "not randomised").
    Several trials are drawn side by side as small multiples, wrapping after
    ``max_columns`` trials.

    Parameters
    ----------
    stages : sequence of (str, int) or pandas.DataFrame
        One chain as ``[("screened", 139), ("with_ctcs", 80), ...]``, or a table
        with a study-label column and one column per stage in order (e.g.
        ``screened, with_ctcs, her2_positive_ctcs, treated, evaluable``); missing
        values (NaN/None/NA) are shown as "not reported".
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
    missing_text : mapping, optional
        ``(trial label, stage key) -> text`` shown instead of "not reported" in a box
        without a count (a stage that does not apply to the trial).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    trials, labels, table, keys = _flow_table(stages, label_column, stage_labels)
    why = dict(missing_text or {})
    n_trials, n_stages = len(trials), len(labels)
    n_cols = min(n_trials, max_columns)
    n_grid_rows = math.ceil(n_trials / n_cols)
    has_header = any(trials)
    block = n_stages + (0.6 if has_header else 0.0) + 0.3  # height of one grid row
    if ax is None:
        col_w, stage_h = 1.9, 0.78
        width = max(3.2, n_cols * col_w + 0.3)
        height = n_grid_rows * block * stage_h + (0.5 if title else 0.15)
        fig = new_figure(width, height)
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
                    va="center", fontsize=FONT, fontweight="bold", gid="flow_trial")
        previous: int | None = None
        for s, (stage, key, n) in enumerate(zip(labels, keys, counts, strict=True)):
            yc = y0 - s - 0.5
            missing = n is None
            ax.add_patch(FancyBboxPatch(
                (x - box_w / 2, yc - box_h / 2), box_w, box_h,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor="white" if missing else "#DDEEF9",
                edgecolor=PALETTE["grey"] if missing else PALETTE["blue"],
                linestyle="--" if missing else "-", linewidth=1.0, gid="flow_box"))
            if n is None:
                value = why.get((trial, key), "not reported")
            elif previous is not None and previous > 0:
                value = f"n = {n} ({100 * n / previous:.0f}%)"
            else:
                value = f"n = {n}"
            ax.text(x, yc, "\n".join(textwrap.wrap(stage, 22)) + "\n" + value,
                    ha="center", va="center", fontsize=FONT - 1,
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
        ax.set_title(title, loc="left", fontsize=FONT + 2, fontweight="bold")
    return fig


def two_arm_figure(effects: pd.DataFrame, studies: pd.DataFrame, measure: str = "RR",
                   *, ax: Any = None, title: str | None = None,
                   max_rows: int | None = None,
                   direction_labels: tuple[str, str] | None = None) -> Figure:
    """Forest-style plot of two-arm effects, one row per comparison, nothing pooled.

    Ratios are drawn on a log axis with a reference line at 1 (0 for ``RD``).
    Randomised comparisons have filled squares, non-randomised ones open squares
    (and "not randomised" in their label), so the two never look alike.

    Parameters
    ----------
    effects : pandas.DataFrame
        From :func:`two_arm_effects` (rows of other measures are ignored).
    studies : pandas.DataFrame
        ``studies.csv`` rows (``study_id``, ``label``, ``randomized``).
    measure : {"RR", "OR", "RD"}
        Which measure to draw.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure when None.
    title : str, optional
        Figure title.
    max_rows : int, optional
        Draw at most this many comparisons: randomised ones first, then the largest
        by patients (in the table's order); the title then says how many are shown.
    direction_labels : (str, str), optional
        What an estimate left and right of the reference line means, written under the
        axis on either side of it (RevMan's "favours …"), e.g. from
        :func:`evidence.book.two_arm.direction_labels`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_measure(measure, TWO_GROUP_MEASURES)
    study = StudyIndex(studies)
    rows = effects[effects["measure"] == measure].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no {measure} rows to plot")
    if max_rows is not None and len(rows) > max_rows:
        total = len(rows)
        rows = rows.loc[most_telling(
            [study(sid).get("randomized") == "yes" for sid in rows["study_id"]],
            (rows["n1i"] + rows["n2i"]).tolist(), max_rows)].reset_index(drop=True)
        title = (title + ": " if title else "") + (
            f"{max_rows} of {total} comparisons (randomised first, then the largest)")
    k = len(rows)
    labels, rand = [], []
    for r in rows.to_dict("records"):
        s = study(r["study_id"])
        is_rand = s.get("randomized") == "yes"
        rand.append(is_rand)
        labels.append(plain_text(s['label']) + ("" if is_rand else " (not randomised)") + "\n"
                      + cap(outcome_short(r["outcome"])))
    texts = [f"{fmt_num(e, 2)} [{fmt_num(lo, 2)}, {fmt_num(hi, 2)}]"
             for e, lo, hi in zip(rows["estimate"], rows["ci_lower"], rows["ci_upper"],
                                  strict=True)]
    counts = [f"{a}/{n1} vs {c}/{n2}" for a, n1, c, n2 in
              zip(rows["ai"], rows["n1i"], rows["ci"], rows["n2i"], strict=True)]
    headers = ("Study and outcome", "Experimental vs control", f"{measure} [95% CI]")
    font, pad, row_h, plot_w = 9.0, 0.12, 0.46, 2.6
    w1 = max(text_width(t, size=font) for t in [*labels, headers[0]]) + 2 * pad
    w2 = max(text_width(t, size=font) for t in [*counts, headers[1]]) + 2 * pad
    w3 = max(text_width(t, size=font) for t in [*texts, headers[2]]) + 2 * pad
    foot = ("Filled squares: randomised comparison; open squares: not randomised.\n"
            "Each row is one study's own estimate with its Wald 95% CI; nothing is pooled.")
    label_space = 0.22 if direction_labels is not None else 0.0
    if ax is None:
        top, bottom = (0.45 if title else 0.15), 1.05 + label_space
        width = 0.3 + w1 + w2 + plot_w + w3
        height = top + (k + 1) * row_h + bottom
        fig = new_figure(width, height)
        ax = fig.add_axes(((0.15 + w1 + w2) / width, bottom / height, plot_w / width,
                           (k + 1) * row_h / height))
        if title:
            fig.text(0.15 / width, 1 - 0.1 / height, title, ha="left", va="top",
                     fontsize=font + 2, fontweight="bold")
    else:
        fig = ax.figure
        if title:
            ax.set_title(title, loc="left", fontsize=font + 1.5, fontweight="bold")
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = blended_transform_factory(ax.transAxes, ax.transData)

    def _at(dx: float) -> Any:
        return base + ScaledTranslation(dx, 0.0, fig.dpi_scale_trans)

    y = -np.arange(1, k + 1, dtype=float)
    est = rows["estimate"].to_numpy(float)
    lo = rows["ci_lower"].to_numpy(float)
    hi = rows["ci_upper"].to_numpy(float)
    ax.hlines(y, lo, hi, color=PALETTE["black"], linewidth=1.1, gid="study_ci")
    face = [PALETTE["blue"] if r else "white" for r in rand]
    ax.scatter(est, y, s=60, marker="s", c=face, edgecolors=PALETTE["black"],
               linewidths=0.9, zorder=3, gid="study_markers")
    null = 0.0 if measure == "RD" else 1.0
    ax.axvline(null, color="0.35", linestyle=":", linewidth=1.0, gid="refline")
    span = np.concatenate([lo, hi, [null]])
    if measure != "RD":
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        span = np.log(span)
        margin = 0.06 * (span.max() - span.min())
        ax.set_xlim(math.exp(span.min() - margin), math.exp(span.max() + margin))
    else:
        margin = 0.06 * (span.max() - span.min())
        ax.set_xlim(span.min() - margin, span.max() + margin)
    ax.set_ylim(-k - 0.6, 0.6)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=font - 0.5)
    ax.set_xlabel(f"{MEASURE_NAMES[measure].capitalize()}, experimental vs control arm"
                  + (" (log scale)" if measure != "RD" else ""), fontsize=font)
    cols = ((0.0, -(w1 + w2) + pad, "left", labels, headers[0]),
            (0.0, -pad, "right", counts, headers[1]),
            (1.0, pad, "left", texts, headers[2]))
    for x, dx, align, cells, header in cols:
        ax.text(x, 0.0, header, transform=_at(dx), ha=align, va="center", fontsize=font,
                fontweight="bold", clip_on=False, gid="column_header")
        for yy, cell in zip(y, cells, strict=True):
            ax.text(x, yy, cell, transform=_at(dx), ha=align, va="center", fontsize=font,
                    clip_on=False, gid="cell")
    if direction_labels is not None:
        if len(direction_labels) != 2:
            raise ValueError("direction_labels must be two strings: (left, right)")
        draw_direction_labels(ax, null, direction_labels)
    ax.text(0.0, 0.0, foot, transform=ax.transAxes + ScaledTranslation(
        -(w1 + w2) + pad, -0.55 - label_space, fig.dpi_scale_trans), fontsize=font - 1,
        ha="left", va="top", color="0.25", clip_on=False, gid="footnote")
    return fig
