"""Forest plots: studies and the pooled estimate, refits (cumulative, leave-one-out) and
the caterpillar plot for many studies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.figures._base import (
    FONT,
    PALETTE,
    ROW,
    SCALE_LABEL,
    SORTS,
    Column,
    Scale,
    apply_scalar,
    as_vector,
    check_events,
    draw_direction_labels,
    draw_footer,
    draw_table,
    fmt,
    fmt_interval,
    heterogeneity_text,
    model_label,
    new_figure,
    percent_axis,
    refline_value,
    scale_for,
    set_xlim,
    study_labels,
    table_axes,
    wrap_footnotes,
)
from evidence.book.text import fmt_pct, shows_prediction
from evidence.stats.checks import critical_value
from evidence.stats.vocabulary import PROPORTION_MEASURES, check_measure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from evidence.stats.results import MetaResult

# ---------------------------------------------------------------------------
# forest plot
# ---------------------------------------------------------------------------


def forest(result: MetaResult, *, labels: Sequence[str] | Mapping[str, str] | None = None,
           events: Sequence[int] | None = None, totals: Sequence[int] | None = None,
           study_ci: tuple[Sequence[float], Sequence[float]] | None = None,
           transform: bool | Callable[[float], float] = True, ax: Axes | None = None,
           xlabel: str | None = None, show_weights: bool = True, show_pi: bool = True,
           sort: str | None = None, title: str | None = None,
           refline: float | bool | None = None, digits: int = 2,
           risk_of_bias: Sequence[str | None] | None = None, percent: bool | None = None,
           direction_labels: tuple[str, str] | None = None) -> Figure:
    """Forest plot of a meta-analysis in the usual clinical layout.

    Left columns: study label and (if given) events/total; centre: one square per
    study, area proportional to its weight, with its confidence interval, then the
    pooled diamond and, for random-effects models, the prediction interval as a
    dashed bar under it; right columns: "estimate [CI]" and weight (%).  Under the
    x-axis: the reference line's direction labels (``direction_labels``, RevMan's
    "favours …"), the heterogeneity line ``τ² = …, I² = …%, Q = … (df = …, p = …)``, the
    measure and method (or, with one study, that nothing is pooled), and the result's
    ``notes`` in words (:func:`reader_notes`).

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
        Draw the prediction interval (random-effects models with k >= 3 only,
        :func:`evidence.book.text.shows_prediction`).
    sort : {None, "estimate", "weight", "label"}
        Row order: input order, ascending estimate, descending weight, or label.
    title : str, optional
        Figure title; none when None or empty.
    refline : float or bool, optional
        Vertical reference line: None/True for the measure's null value (1 for
        ratios, 0 for log ratios and risk differences, none for proportions),
        False for none, or a value on the displayed scale.
    digits : int, default 2
        Decimals in the "estimate [CI]" column (of a percentage: ``digits - 1``).
    risk_of_bias : sequence of str or None, optional
        Each study's overall risk-of-bias judgement (in input order; None: not
        assessed), drawn as a coloured symbol in a last column, as RevMan does
        (:data:`evidence.book.figures.robvis.JUDGEMENT_STYLE`).
    percent : bool, optional
        Show proportions as percentages (``"6.2% [0.8%, 34.0%]"``, as the text does,
        and a percentage axis).  Default: True when the displayed scale is a
        proportion.
    direction_labels : (str, str), optional
        What an estimate left and right of the reference line means, written under
        the axis on either side of it (RevMan's "favours …" labels), e.g.
        ``("Lower hazard with A", "Lower hazard with B")``.  Needs a reference line.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure drawn on (new, height growing with k, when ``ax`` is None).

    Notes
    -----
    With ``k == 1`` the study is drawn alone with the note "A single study: nothing is
    pooled" (no method is named: there is no model).
    """
    measure = check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    if sort is not None and sort not in SORTS:
        raise ValueError(f"sort={sort!r} is not valid; allowed: None, {', '.join(SORTS)}")
    yi = as_vector(result.yi, k, "result.yi")
    vi = as_vector(result.vi, k, "result.vi")
    names = study_labels(labels, result.study_ids, k)
    ev, tot = check_events(events, totals, k)
    scale = scale_for(measure, transform, getattr(result, "harmonic_mean_n", None))
    level = float(getattr(result, "level", 0.95))
    z = critical_value(level)
    if percent is None:
        percent = scale.kind == "proportion"
    elif percent and scale.kind != "proportion":
        raise ValueError("percent=True needs a proportion shown on the natural scale")

    if study_ci is not None:
        lo = as_vector(study_ci[0], k, "study_ci lower")
        hi = as_vector(study_ci[1], k, "study_ci upper")
        if ev is not None and tot is not None and scale.kind == "proportion" \
                and measure in PROPORTION_MEASURES:
            point = ev / tot
        else:
            point = apply_scalar(scale.f, yi)
    else:
        se = np.sqrt(vi)
        point = apply_scalar(scale.f, yi)
        a, b = apply_scalar(scale.f, yi - z * se), apply_scalar(scale.f, yi + z * se)
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
    est_n, ci_l, ci_u, pi_l, pi_u = (float(v) for v in apply_scalar(scale.f, np.array(
        [result.estimate, result.ci_lower, result.ci_upper, result.pi_lower, result.pi_upper],
        dtype=float)))
    ci_l, ci_u = min(ci_l, ci_u), max(ci_l, ci_u)
    pi_l, pi_u = min(pi_l, pi_u), max(pi_l, pi_u)
    draw_pi = (pooled and show_pi and shows_prediction(k, method)
               and np.isfinite(pi_l) and np.isfinite(pi_u))

    # rows: header y = 0, studies y = -1 ... -k, gap, pooled, prediction interval
    study_y = -(np.arange(k) + 1.0)
    ys = list(study_y)
    pooled_y = -(k + 2.0)
    pi_y = pooled_y - 1.0
    row_labels = [names[i] for i in order]
    row_counts = [f"{ev[i]}/{tot[i]}" for i in order] if ev is not None else None

    def number(value: float) -> str:
        if percent and np.isfinite(value):
            return fmt_pct(value, max(digits - 1, 0))
        return fmt(value, digits)

    def bounds(lower: float, upper: float) -> str:
        return f"[{number(lower)}, {number(upper)}]"

    def interval(est: float, lower: float, upper: float) -> str:
        return f"{number(est)} {bounds(lower, upper)}"

    row_est = [interval(point[i], lo[i], hi[i]) for i in order]
    show_w = show_weights and has_weights and pooled
    row_w = [f"{weights[i]:.1f}%" for i in order]
    rob_cells: list[tuple[str, str]] = []
    if risk_of_bias is not None:
        from evidence.book.figures.robvis import judgement_style

        if len(risk_of_bias) != k:
            raise ValueError(f"risk_of_bias has {len(risk_of_bias)} entries for {k} studies")
        for i in order:
            j = risk_of_bias[i]
            rob_cells.append(("n.a.", "") if j is None else judgement_style(j)[1:])
    bold_rows: list[int] = []
    if pooled:
        ys.append(pooled_y)
        bold_rows.append(len(ys) - 1)
        row_labels.append(model_label(result))
        if row_counts is not None and ev is not None and tot is not None:
            row_counts.append(f"{int(ev.sum())}/{int(tot.sum())}")
        row_est.append(interval(est_n, ci_l, ci_u))
        row_w.append("100%")
        if draw_pi:
            ys.append(pi_y)
            row_labels.append("Prediction interval")
            if row_counts is not None:
                row_counts.append("")
            row_est.append(bounds(pi_l, pi_u))
            row_w.append("")
    n_rows = 1 + int(-min(ys))

    level_pct = f"{100 * level:g}%"
    bold = tuple(bold_rows)
    left = [Column("Study", row_labels, "left", bold)]
    if row_counts is not None:
        left.append(Column("Events / total", row_counts, "right", bold))
    right = [Column(f"{scale.label} [{level_pct} CI]", row_est, "right", bold)]
    if show_w:
        right.append(Column("Weight", row_w, "right", bold))
    if rob_cells:
        extra = len(row_labels) - len(rob_cells)
        right.append(Column("RoB", [c[0] for c in rob_cells] + [""] * extra, "right", bold,
                            badges=tuple(c[1] for c in rob_cells) + ("",) * extra))

    foot = []
    study_ci_text = ("as given (e.g. exact)" if study_ci is not None
                     else f"Wald, yi ± {z:.2f}·√vi on the {measure} scale")
    if pooled:
        foot.append(heterogeneity_text(result))
        foot.append(f"Pooled on the {SCALE_LABEL[measure].lower()} scale ({measure}); "
                    f"study CIs: {study_ci_text}")
    else:
        foot.append(f"A single study: nothing is pooled; study CI: {study_ci_text}")
    if show_weights and not has_weights and pooled:
        foot.append("Squares of equal size: study weights are not defined for this model.")
    drawn = np.concatenate([lo, hi, [ci_l, ci_u] if pooled else [],
                            [pi_l, pi_u] if draw_pi else []])
    if scale.kind == "proportion" and np.any((drawn < 0) | (drawn > 1)):
        foot.append("Intervals are cut at 0 and 1 in the plot; the numbers are not.")
    foot.extend(reader_notes(getattr(result, "notes", ())))
    if rob_cells:
        from evidence.book.figures.robvis import judgement_style

        shown = dict.fromkeys(j for j in risk_of_bias if j is not None)
        foot.append("RoB: overall risk of bias, " + ", ".join(
            f"{judgement_style(j)[1]} {judgement_style(j)[0].lower()}" for j in shown)
            + ("; n.a. not assessed" if None in risk_of_bias else ""))
    foot = wrap_footnotes(foot, left, right, ax)
    ref = refline_value(refline, scale)
    if direction_labels is not None:
        if ref is None:
            raise ValueError("direction_labels need a reference line (refline)")
        if len(direction_labels) != 2:
            raise ValueError("direction_labels must be two strings: (left, right)")
    # the direction labels take the first footer line; the footnotes follow
    skip = 1 if direction_labels is not None else 0

    fig, ax = table_axes(ax, n_rows=n_rows, left=left, right=right,
                          n_foot=len(foot) + skip, title=title)
    draw_table(ax, ys=ys, header_y=0.0, left=left, right=right)
    draw_footer(ax, [""] * skip + foot, left)
    if direction_labels is not None and ref is not None:
        draw_direction_labels(ax, ref, direction_labels)

    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon

    ordered_point, ordered_lo, ordered_hi = point[order], lo[order], hi[order]
    ax.add_collection(LineCollection(
        [[(a, y), (b, y)] for a, b, y in zip(ordered_lo, ordered_hi, study_y, strict=True)],
        colors=PALETTE["black"], linewidths=1.1, gid="study_ci"))
    max_area = (0.72 * ROW * 72) ** 2
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
    if ref is not None:
        ax.axvline(ref, color="0.35", linestyle=":", linewidth=1.0, zorder=1, gid="refline")
        x_values.append(ref)
    ax.set_ylim(-(n_rows - 1) - 0.6, 0.6)
    set_xlim(ax, x_values, scale)
    if percent:
        percent_axis(ax)
    ax.set_xlabel(xlabel if xlabel is not None else scale.label, fontsize=FONT)
    return fig


#: Prefixes of the statistics' notes that the forest plot says otherwise (the model
#: label, the heterogeneity line, the equal squares) or that only an analyst needs.
_SAID_OTHERWISE = ("k = 1", "study weights are not defined", "q is the Wald-type",
                   "binomial-normal model fitted by ML")


def reader_notes(notes: Sequence[str]) -> list[str]:
    """A result's ``notes`` as footnotes for readers.

    Notes that the forest plot already says in words (a single study, the GLMM's
    undefined weights, its Wald-type and likelihood-ratio heterogeneity tests, how it
    was fitted) are dropped; ``tau2`` is written τ²; the rest are kept as "Note: …".

    Parameters
    ----------
    notes : sequence of str
        ``MetaResult.notes`` (the statistics' own words).

    Returns
    -------
    list of str
        One footnote per note kept, in order; never a metafor attribute name such as
        ``QE.Wld`` or the word NaN.
    """
    out = []
    for note in notes:
        text = str(note).strip()
        if not text or text.startswith(_SAID_OTHERWISE):
            continue
        out.append(f"Note: {text.replace('tau2', 'τ²')}")
    return out


# ---------------------------------------------------------------------------
# cumulative and leave-one-out forests
# ---------------------------------------------------------------------------


def _interval_forest(*, row_labels: list[str], est: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, scale: Scale, level: float, header: str,
                     ax: Axes | None,
                     title: str | None, xlabel: str | None, foot: list[str],
                     digits: int, reference: tuple[float, float, float] | None,
                     refline: float | None) -> Figure:
    """Rows of estimate + CI (no weights, no diamond): cumulative and leave-one-out."""
    n = len(row_labels)
    ys = list(-(np.arange(n) + 1.0))
    a, b = np.fmin(lower, upper), np.fmax(lower, upper)
    left = [Column(header, row_labels, "left")]
    right = [Column(f"{scale.label} [{100 * level:g}% CI]",
                     [fmt_interval(e, x, y, digits) for e, x, y in zip(est, a, b, strict=True)],
                     "right")]
    foot = wrap_footnotes(foot, left, right, ax)
    fig, ax = table_axes(ax, n_rows=n + 1, left=left, right=right, n_foot=len(foot),
                          title=title)
    draw_table(ax, ys=ys, header_y=0.0, left=left, right=right)
    draw_footer(ax, foot, left)

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
    set_xlim(ax, x_values, scale)
    ax.set_xlabel(xlabel if xlabel is not None else scale.label, fontsize=FONT)
    return fig


def _sequential_fields(obj: Any, what: str) -> tuple[str, list[str], np.ndarray,
                                                      np.ndarray, np.ndarray]:
    """Read ``measure, study_ids, estimate, ci_lower, ci_upper`` from a duck-typed result."""
    missing = [f for f in ("measure", "study_ids", "estimate", "ci_lower", "ci_upper")
               if not hasattr(obj, f)]
    if missing:
        raise TypeError(f"{what} needs attributes measure, study_ids, estimate, ci_lower, "
                        f"ci_upper; missing: {', '.join(missing)}")
    measure = check_measure(str(obj.measure))
    ids = [str(s) for s in obj.study_ids]
    n = len(ids)
    if n == 0:
        raise ValueError(f"{what} has no rows")
    est = as_vector(obj.estimate, n, "estimate")
    lo = as_vector(obj.ci_lower, n, "ci_lower")
    hi = as_vector(obj.ci_upper, n, "ci_upper")
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
    names = study_labels(labels, ids, len(ids))
    scale = scale_for(measure, transform, getattr(cum, "harmonic_mean_n", None))
    rows = [names[0]] + [f"+ {name}" for name in names[1:]]
    foot = [f"Row i: pooled estimate of the first i studies; measure {measure}"
            + (f", method {cum.method}" if hasattr(cum, "method") else "") + "."]
    return _interval_forest(row_labels=rows, est=apply_scalar(scale.f, est),
                            lower=apply_scalar(scale.f, lo), upper=apply_scalar(scale.f, hi),
                            scale=scale, level=float(getattr(cum, "level", 0.95)),
                            header="Study added", ax=ax, title=title,
                            xlabel=xlabel, foot=foot, digits=digits, reference=None,
                            refline=refline_value(refline, scale))


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
    names = study_labels(labels, ids, len(ids))
    scale = scale_for(measure, transform, getattr(loo, "harmonic_mean_n", None))
    reference = None
    foot = [f"Row: pooled estimate without that study; measure {measure}"
            + (f", method {loo.method}" if hasattr(loo, "method") else "") + "."]
    if pooled is not None:
        if hasattr(pooled, "yi"):  # a MetaResult: measure scale
            if str(pooled.measure) != measure:
                raise ValueError(f"pooled.measure={pooled.measure!r} differs from the "
                                 f"leave-one-out measure {measure!r}")
            values = apply_scalar(scale.f, np.array([pooled.estimate, pooled.ci_lower,
                                               pooled.ci_upper], dtype=float))
        elif transform is True:  # a Pooled: natural scale
            values = np.array([pooled.estimate, pooled.ci_lower, pooled.ci_upper], float)
        else:
            raise ValueError("a Pooled (natural scale) reference needs transform=True; "
                             "pass the MetaResult instead")
        r_est, r_lo, r_hi = (float(v) for v in values)
        reference = (r_est, min(r_lo, r_hi), max(r_lo, r_hi))
        foot.append(f"Dashed line and band: all studies, {fmt(r_est, digits)} "
                    f"[{fmt(reference[1], digits)}, {fmt(reference[2], digits)}].")
    rows = [f"Omitting {name}" for name in names]
    return _interval_forest(row_labels=rows, est=apply_scalar(scale.f, est),
                            lower=apply_scalar(scale.f, lo), upper=apply_scalar(scale.f, hi),
                            scale=scale, level=float(getattr(loo, "level", 0.95)),
                            header="Study omitted", ax=ax, title=title,
                            xlabel=xlabel, foot=foot, digits=digits, reference=reference,
                            refline=refline_value(refline, scale))


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

    measure = check_measure(str(result.measure))
    k = int(result.k)
    if k < 1:
        raise ValueError("no studies to plot (k = 0)")
    f = back_transform(measure, harmonic_mean_n=result.harmonic_mean_n)
    yi = as_vector(result.yi, k, "result.yi")
    sei = np.sqrt(as_vector(result.vi, k, "result.vi"))
    z = critical_value(float(result.level))
    est = apply_scalar(f, yi)
    if study_ci is not None:
        lo = np.asarray(study_ci[0], dtype=float)
        hi = np.asarray(study_ci[1], dtype=float)
    else:
        lo, hi = apply_scalar(f, yi - z * sei), apply_scalar(f, yi + z * sei)
    order = np.argsort(est, kind="stable")
    rows = np.arange(1, k + 1, dtype=float)
    if ax is None:
        fig = new_figure(7.0, 4.8)
        ax = fig.add_axes((0.1, 0.13, 0.86, 0.77))
    else:
        fig = ax.figure
    pooled = result.pooled()
    if shows_prediction(k, str(result.method)):
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
    ax.set_ylabel(f"{k} studies, sorted by estimate", fontsize=FONT)
    ax.set_xlabel(xlabel if xlabel is not None else SCALE_LABEL[measure], fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    proportion = measure in PROPORTION_MEASURES
    if proportion:
        percent_axis(ax)

    def number(value: float) -> str:
        return fmt_pct(value) if proportion else fmt(value, 2)

    ax.set_title(title if title is not None else
                 f"{model_label(result)}: {number(pooled.estimate)} "
                 f"[{number(pooled.ci_lower)}, {number(pooled.ci_upper)}]",
                 loc="left", fontsize=FONT + 1)
    return fig
