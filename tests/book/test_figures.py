"""Tests for :mod:`evidence.book.figures`.

The results are built by hand (plausible numbers for the five HER2-CTC trials'
objective responses) so that these tests do not depend on the pooling code; the
expected positions are computed here independently (inverse logit written out,
exact Clopper-Pearson limits from the beta distribution).
"""

from __future__ import annotations

import dataclasses
import io
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from chapter_data import outcome_rows, study_rows
from matplotlib.figure import Figure
from scipy.stats import beta

from evidence.book import figures, two_arm
from evidence.stats.results import MetaResult

Z975 = 1.959963984540054  # qnorm(0.975)
LABELS = ["Pestrin 2012", "Hainsworth 2016", "Jacot 2019", "Parsons 2021", "Verschoor 2024"]
IDS = ("pestrin2012", "hainsworth2016", "jacot2019", "parsons2021", "verschoor2024")
XI = np.array([0, 1, 1, 1, 4])
NI = np.array([7, 14, 11, 20, 8])


def expit(x: float | np.ndarray) -> float | np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def clopper_pearson(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lower = np.where(x == 0, 0.0, beta.ppf(0.025, x, n - x + 1))
    upper = np.where(x == n, 1.0, beta.ppf(0.975, x + 1, n - x))
    return lower, upper


def orr_result(method: str = "REML") -> MetaResult:
    """A plausible PLO fit of the objective responses (add 1/2 to the zero cell)."""
    x = np.where(XI == 0, XI + 0.5, XI).astype(float)
    n = np.where(XI == 0, NI + 1, NI).astype(float)
    yi = np.log(x / (n - x))
    vi = 1 / x + 1 / (n - x)
    tau2 = 0.0 if method == "FE" else 0.5
    w = 1 / (vi + tau2)
    return MetaResult(
        measure="PLO", method=method, k=5, estimate=-1.9, se=0.5, zval=-3.8, pval=1e-4,
        ci_lower=-2.88, ci_upper=-0.92,
        pi_lower=-3.6 if method != "FE" else -2.88, pi_upper=-0.2 if method != "FE" else -0.92,
        tau2=tau2, i2=45.3, h2=1.83, q=7.3, q_df=4, q_pvalue=0.12,
        weights=100 * w / w.sum(), yi=yi, vi=vi, study_ids=IDS,
        notes=("an example note the reader must see",))


def single_result() -> MetaResult:
    res = orr_result()
    return dataclasses.replace(
        res, k=1, yi=res.yi[:1], vi=res.vi[:1], weights=np.array([100.0]),
        study_ids=IDS[:1], estimate=float(res.yi[0]), ci_lower=float(res.yi[0]) - 2.9,
        ci_upper=float(res.yi[0]) + 2.9, pi_lower=float(res.yi[0]) - 2.9,
        pi_upper=float(res.yi[0]) + 2.9, tau2=0.0, i2=0.0, h2=1.0, q=0.0, q_df=0,
        q_pvalue=float("nan"), notes=("k = 1: no pooling",))


def hr_result() -> MetaResult:
    yi = np.log([0.321, 0.383, 0.5])
    return MetaResult(
        measure="HR", method="DL", k=3, estimate=math.log(0.4), se=0.2, zval=-4.0, pval=1e-4,
        ci_lower=math.log(0.27), ci_upper=math.log(0.6), pi_lower=math.log(0.2),
        pi_upper=math.log(0.8), tau2=0.01, i2=10.0, h2=1.1, q=2.2, q_df=2, q_pvalue=0.33,
        weights=np.array([30.0, 30.0, 40.0]), yi=yi, vi=np.array([0.12, 0.15, 0.05]),
        study_ids=("zhang2016a", "zhang2016b", "other2020"))


def artists(ax, gid: str) -> list:
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    return found


def one(ax, gid: str):
    found = artists(ax, gid)
    assert len(found) == 1, f"expected one artist with gid {gid!r}, found {len(found)}"
    return found[0]


def texts(fig: Figure) -> list[str]:
    out = [t.get_text() for ax in fig.axes for t in ax.texts]
    return out + [t.get_text() for t in fig.texts]


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# forest
# ---------------------------------------------------------------------------


def test_forest_new_figure_draws_one_marker_per_study() -> None:
    fig = figures.forest(orr_result(), labels=LABELS, events=XI, totals=NI)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert one(ax, "study_markers").get_offsets().shape == (5, 2)
    assert len(one(ax, "study_ci").get_segments()) == 5
    shown = texts(fig)
    for label in LABELS:
        assert label in shown
    for x, n in zip(XI, NI, strict=True):
        assert f"{x}/{n}" in shown
    assert "7/60" in shown  # pooled row: summed counts
    assert "Random-effects model (REML)" in shown
    assert "Prediction interval" in shown
    assert ax.get_xlabel() == "Proportion"


def test_forest_draws_into_given_axes() -> None:
    fig = Figure(figsize=(10, 5))
    ax = fig.add_axes((0.35, 0.3, 0.3, 0.6))
    out = figures.forest(orr_result(), ax=ax, title="ORR")
    assert out is fig
    assert fig.axes == [ax]
    assert one(ax, "study_markers").get_offsets().shape == (5, 2)
    assert ax.get_title(loc="left") == "ORR"


def test_forest_back_transforms_points_wald_ci_diamond_and_pi() -> None:
    res = orr_result()
    ax = figures.forest(res).axes[0]
    offsets = one(ax, "study_markers").get_offsets()
    np.testing.assert_allclose(offsets[:, 0], expit(res.yi), rtol=1e-12)
    np.testing.assert_allclose(offsets[:, 1], -np.arange(1, 6))
    segments = np.array(one(ax, "study_ci").get_segments())
    se = np.sqrt(res.vi)
    np.testing.assert_allclose(segments[:, 0, 0], expit(res.yi - Z975 * se), rtol=1e-9)
    np.testing.assert_allclose(segments[:, 1, 0], expit(res.yi + Z975 * se), rtol=1e-9)
    diamond = one(ax, "pooled_diamond").get_xy()[:4]
    np.testing.assert_allclose(diamond[:, 0], expit([-2.88, -1.9, -0.92, -1.9]), rtol=1e-12)
    np.testing.assert_allclose(one(ax, "prediction_interval").get_xdata(),
                               expit([-3.6, -0.2]), rtol=1e-12)
    shown = texts(ax.figure)
    # percentages, as the text gives them
    assert (f"{100 * expit(-1.9):.1f}% [{100 * expit(-2.88):.1f}%, "
            f"{100 * expit(-0.92):.1f}%]") in shown
    assert f"[{100 * expit(-3.6):.1f}%, {100 * expit(-0.2):.1f}%]" in shown
    for w in res.weights:
        assert f"{w:.1f}%" in shown
    assert "τ² = 0.5, I² = 45.3%, Q = 7.30 (df = 4, p = 0.120)" in shown
    assert "Pooled on the logit proportion scale (PLO); study CIs: Wald, yi ± 1.96·√vi on " \
        "the PLO scale" in shown
    assert "Note: an example note the reader must see" in shown


def test_forest_zero_events_with_exact_ci_start_at_zero() -> None:
    lower, upper = clopper_pearson(XI, NI)
    ax = figures.forest(orr_result(), events=XI, totals=NI, study_ci=(lower, upper)).axes[0]
    offsets = one(ax, "study_markers").get_offsets()
    np.testing.assert_allclose(offsets[:, 0], XI / NI)  # raw proportions with exact CIs
    segments = np.array(one(ax, "study_ci").get_segments())
    assert segments[0, 0, 0] == 0.0
    np.testing.assert_allclose(segments[:, 1, 0], upper)
    assert ax.get_xlim()[0] == 0.0
    shown = texts(ax.figure)
    assert f"0.0% [0.0%, {100 * upper[0]:.1f}%]" in shown
    assert any("study CIs: as given" in t for t in shown)


def test_forest_k1_draws_the_study_alone() -> None:
    lower, upper = clopper_pearson(XI[:1], NI[:1])
    fig = figures.forest(single_result(), labels=LABELS[:1], events=XI[:1], totals=NI[:1],
                       study_ci=(lower, upper))
    ax = fig.axes[0]
    assert one(ax, "study_markers").get_offsets().shape == (1, 2)
    assert artists(ax, "pooled_diamond") == []
    assert artists(ax, "prediction_interval") == []
    shown = texts(fig)
    assert any(t.startswith("A single study: nothing is pooled") for t in shown)
    assert not any("method" in t for t in shown)  # no model, so no "method: FE"
    assert "Weight" not in shown  # a lone study's 100% says nothing
    assert not any(t.startswith("τ²") for t in shown)
    assert not any("no pooling" in t for t in shown)  # the pooling note is not repeated


def test_forest_common_effect_has_no_prediction_interval() -> None:
    fig = figures.forest(orr_result("FE"))
    ax = fig.axes[0]
    assert artists(ax, "prediction_interval") == []
    assert len(artists(ax, "pooled_diamond")) == 1
    shown = texts(fig)
    assert "Common-effect model" in shown
    assert "Prediction interval" not in shown
    assert "I² = 45.3%, Q = 7.30 (df = 4, p = 0.120)" in shown


def test_forest_show_pi_false_and_no_weights() -> None:
    fig = figures.forest(orr_result(), show_pi=False, show_weights=False)
    assert artists(fig.axes[0], "prediction_interval") == []
    assert "Weight" not in texts(fig)


def test_forest_square_area_proportional_to_weight() -> None:
    res = orr_result()
    sizes = one(figures.forest(res).axes[0], "study_markers").get_sizes()
    np.testing.assert_allclose(sizes / sizes.max(), res.weights / res.weights.max())


def test_forest_undefined_weights_give_equal_squares_and_no_weight_column() -> None:
    res = dataclasses.replace(orr_result(), method="GLMM", weights=np.full(5, np.nan))
    fig = figures.forest(res)
    sizes = one(fig.axes[0], "study_markers").get_sizes()
    assert np.ptp(sizes) == 0
    shown = texts(fig)
    assert "Weight" not in shown
    assert "Random-effects model (GLMM)" in shown
    assert any("weights are not defined" in t for t in shown)


def glmm_result() -> MetaResult:
    """The objective responses as the GLMM reports them: no weights, metafor's notes."""
    return dataclasses.replace(orr_result(), method="GLMM", weights=np.full(5, np.nan), notes=(
        "binomial-normal model fitted by ML (7-point adaptive Gauss-Hermite quadrature), "
        "as metafor::rma.glmm(measure='PLO')",
        "q is the Wald-type heterogeneity test QE.Wld; likelihood-ratio test QE.LRT = "
        "6.1000 on 4 df, p = 0.1917",
        "study weights are not defined for the GLMM (as in metafor): they are NaN",
        "tau2 estimated at the boundary (0)"))


def test_forest_of_the_glmm_says_its_tests_and_weights_in_words() -> None:
    shown = texts(figures.forest(glmm_result(), events=XI, totals=NI))
    joined = "\n".join(shown)
    for raw in ("QE.Wld", "QE.LRT", "NaN", "nan", "metafor", "tau2"):
        assert raw not in joined, raw
    assert "τ² = 0.5, I² = 45.3%, Wald-type test of residual heterogeneity: Q = 7.30 " \
        "(df = 4, p = 0.120)" in shown
    assert "Squares of equal size: study weights are not defined for this model." in shown
    assert "Note: τ² estimated at the boundary (0)" in shown
    assert "Weight" not in shown


def test_reader_notes_drops_what_the_plot_says_and_keeps_the_rest() -> None:
    from evidence.book.figures.forest import reader_notes

    assert reader_notes(glmm_result().notes) == ["Note: τ² estimated at the boundary (0)"]
    assert reader_notes(["k = 1: no pooling", "", "an example"]) == ["Note: an example"]


def test_forest_weight_column_where_the_model_defines_weights() -> None:
    res = orr_result()
    ax = figures.forest(res, events=XI, totals=NI).axes[0]
    weight_x = {t.get_position()[0] for t in ax.texts if t.get_text() == "Weight"}
    assert len(weight_x) == 1
    cells = sorted(((t.get_position()[1], t.get_text()) for t in ax.texts
                    if t.get_text().endswith("%") and "[" not in t.get_text()), reverse=True)
    # the header row is y = 0, studies from y = -1 down, the pooled row says 100%
    assert [c for _, c in cells] == [f"{w:.1f}%" for w in res.weights] + ["100%"]


def test_forest_of_proportions_has_a_percentage_axis_and_decimals_on_request() -> None:
    ax = figures.forest(orr_result()).axes[0]
    assert ax.xaxis.get_major_formatter()(0.25, 0) == "25%"
    shown = texts(figures.forest(orr_result(), percent=False))
    assert f"{expit(-1.9):.2f} [{expit(-2.88):.2f}, {expit(-0.92):.2f}]" in shown
    with pytest.raises(ValueError, match="percent=True needs a proportion"):
        figures.forest(hr_result(), percent=True)


def test_forest_ratio_shows_two_decimals_and_direction_labels_either_side_of_one() -> None:
    fig = figures.forest(hr_result(), direction_labels=("Lower hazard with A",
                                                        "Lower hazard with B"))
    ax = fig.axes[0]
    shown = texts(fig)
    assert "0.40 [0.27, 0.60]" in shown  # ratios: natural units, two decimals
    assert not any(t.endswith("%]") for t in shown)
    left, right = artists(ax, "direction_label")
    assert left.get_text() == "← Lower hazard with A" and left.get_ha() == "right"
    assert right.get_text() == "Lower hazard with B →" and right.get_ha() == "left"
    # anchored at HR = 1 in data coordinates, just either side of the reference line
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ref_x = ax.transData.transform((1.0, 0.0))[0]
    assert left.get_window_extent(renderer).x1 <= ref_x <= right.get_window_extent(renderer).x0
    # under the x-axis and above the footnotes
    bottom = ax.get_window_extent(renderer).y0
    foot_top = max(t.get_window_extent(renderer).y1 for t in artists(ax, "footnote") if
                   t.get_text())
    assert foot_top <= left.get_window_extent(renderer).y0 < bottom
    with pytest.raises(ValueError, match="need a reference line"):
        figures.forest(hr_result(), refline=False, direction_labels=("a", "b"))
    assert artists(figures.forest(hr_result()).axes[0], "direction_label") == []


def test_forest_shows_registry_dollar_signs_literally() -> None:
    shown = texts(figures.forest(orr_result(), labels=["$x$ 2012", *LABELS[1:]]))
    assert r"\$x\$ 2012" in shown  # matplotlib's escape: drawn as "$x$", not as math


@pytest.mark.parametrize(("sort", "expected"), [
    # 1/20 = 0.05 < 0.5/8 = 0.0625 (corrected zero cell) < 1/14 < 1/11 < 4/8
    ("estimate", ["Parsons 2021", "Pestrin 2012", "Hainsworth 2016", "Jacot 2019",
                  "Verschoor 2024"]),
    ("weight", ["Verschoor 2024", "Parsons 2021", "Hainsworth 2016", "Jacot 2019",
                "Pestrin 2012"]),
    ("label", sorted(LABELS)),
])
def test_forest_sort_orders_rows_top_down(sort: str, expected: list[str]) -> None:
    ax = figures.forest(orr_result(), labels=LABELS, sort=sort).axes[0]
    rows = sorted(((t.get_position()[1], t.get_text()) for t in ax.texts
                   if t.get_text() in LABELS), reverse=True)
    assert [label for _, label in rows] == expected


def test_forest_labels_mapping_and_defaults() -> None:
    shown = texts(figures.forest(orr_result(), labels={"jacot2019": "Jacot 2019"}))
    assert "Jacot 2019" in shown and "pestrin2012" in shown


def test_forest_transform_false_stays_on_logit_scale() -> None:
    res = orr_result()
    ax = figures.forest(res, transform=False).axes[0]
    np.testing.assert_allclose(one(ax, "study_markers").get_offsets()[:, 0], res.yi)
    assert ax.get_xlabel() == "Logit proportion"


def test_forest_ratio_measure_uses_log_axis_and_null_line() -> None:
    res = hr_result()
    ax = figures.forest(res).axes[0]
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(one(ax, "study_markers").get_offsets()[:, 0],
                               [0.321, 0.383, 0.5])
    assert one(ax, "refline").get_xdata()[0] == 1.0
    assert ax.get_xlabel() == "Hazard ratio"
    assert artists(figures.forest(res, refline=False).axes[0], "refline") == []


def test_forest_height_grows_linearly_with_k() -> None:
    def height(k: int) -> float:
        res = orr_result()
        rep = dataclasses.replace(res, k=k, yi=np.resize(res.yi, k), vi=np.resize(res.vi, k),
                                  weights=np.full(k, 100 / k),
                                  study_ids=tuple(f"s{i}" for i in range(k)))
        return figures.forest(rep).get_figheight()

    h5, h10, h15 = height(5), height(10), height(15)
    assert h5 < h10 < h15
    assert h10 - h5 == pytest.approx(h15 - h10)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sort": "size"}, "sort='size'"),
    ({"transform": "logit"}, "transform='logit'"),
    ({"events": XI}, "both events and totals"),
    ({"events": XI, "totals": NI[:4]}, "length 5"),
    ({"events": XI + 10, "totals": NI}, "events <= totals"),
    ({"labels": LABELS[:3]}, "one entry per study"),
])
def test_forest_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        figures.forest(orr_result(), **kwargs)


def test_forest_rejects_unknown_measure_naming_allowed_ones() -> None:
    res = dataclasses.replace(orr_result(), measure="SMD")
    with pytest.raises(ValueError, match=r"unknown measure 'SMD'; allowed: PLO, PFT, PAS, PR"):
        figures.forest(res)


def test_forest_pft_needs_harmonic_mean() -> None:
    res = dataclasses.replace(orr_result(), measure="PFT", harmonic_mean_n=None)
    with pytest.raises(ValueError, match="harmonic_mean_n"):
        figures.forest(res)
    fig = figures.forest(res, transform=False)  # the measure's own scale needs none
    assert fig.axes[0].get_xlabel() == "Freeman-Tukey double-arcsine proportion"


def test_forest_is_deterministic_and_not_registered_with_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    first = png_bytes(figures.forest(orr_result(), labels=LABELS, events=XI, totals=NI))
    second = png_bytes(figures.forest(orr_result(), labels=LABELS, events=XI, totals=NI))
    assert first == second
    assert plt.get_fignums() == before


def test_new_figures_render_themselves_in_jupyter() -> None:
    data = figures.forest(orr_result())._repr_png_()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


# ---------------------------------------------------------------------------
# funnel, cumulative and leave-one-out, bubble
# ---------------------------------------------------------------------------


def test_funnel_plots_yi_against_se_with_pseudo_ci() -> None:
    res = orr_result()
    fig = figures.funnel(res)
    ax = fig.axes[0]
    offsets = one(ax, "study_markers").get_offsets()
    np.testing.assert_allclose(offsets[:, 0], res.yi)
    np.testing.assert_allclose(offsets[:, 1], np.sqrt(res.vi))
    bottom, top = ax.get_ylim()
    assert bottom > top == 0.0  # inverted: precise studies on top
    left, right = artists(ax, "pseudo_ci")
    se_max = left.get_ydata()[1]
    np.testing.assert_allclose(left.get_xdata(), [-1.9, -1.9 - Z975 * se_max])
    np.testing.assert_allclose(right.get_xdata(), [-1.9, -1.9 + Z975 * se_max])
    assert ax.get_ylabel() == "Standard error"
    assert any("k = 5 < 10" in t for t in texts(fig))


def test_funnel_uses_given_axes() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert figures.funnel(orr_result(), ax=ax) is fig
    assert len(artists(ax, "study_markers")) == 1


def sequential(kind: str) -> SimpleNamespace:
    est = np.array([-2.0, -2.2, -2.1, -2.3, -1.9])
    return SimpleNamespace(measure="PLO", study_ids=IDS, estimate=est, ci_lower=est - 1.0,
                           ci_upper=est + 0.8, method="REML", kind=kind)


def test_cumulative_forest_rows_and_back_transformation() -> None:
    cum = sequential("cumulative")
    fig = figures.cumulative_forest(cum, labels=dict(zip(IDS, LABELS, strict=True)))
    ax = fig.axes[0]
    offsets = one(ax, "study_markers").get_offsets()
    np.testing.assert_allclose(offsets[:, 0], expit(cum.estimate))
    segments = np.array(one(ax, "study_ci").get_segments())
    np.testing.assert_allclose(segments[:, 0, 0], expit(cum.ci_lower))
    shown = texts(fig)
    assert "Pestrin 2012" in shown and "+ Verschoor 2024" in shown
    assert "Cumulative meta-analysis" in shown


def test_cumulative_forest_needs_the_documented_fields() -> None:
    with pytest.raises(TypeError, match="ci_upper"):
        figures.cumulative_forest(SimpleNamespace(measure="PLO", study_ids=IDS,
                                                estimate=np.zeros(5), ci_lower=np.zeros(5)))


def test_leave_one_out_plot_with_pooled_band() -> None:
    res = orr_result()
    fig = Figure(figsize=(9, 4))
    ax = fig.add_axes((0.35, 0.35, 0.3, 0.55))
    out = figures.leave_one_out_plot(sequential("loo"), pooled=res, labels=LABELS, ax=ax)
    assert out is fig
    assert one(ax, "study_markers").get_offsets().shape == (5, 2)
    band = one(ax, "pooled_ci_band").get_paths()[0].vertices[:, 0]
    np.testing.assert_allclose([band.min(), band.max()], expit([-2.88, -0.92]))
    np.testing.assert_allclose(one(ax, "pooled_estimate").get_xdata(), expit([-1.9, -1.9]))
    assert "Omitting Jacot 2019" in texts(fig)
    with pytest.raises(ValueError, match="differs"):
        figures.leave_one_out_plot(sequential("loo"), pooled=hr_result())


def test_bubble_area_proportional_to_inverse_variance_and_fitted_line() -> None:
    x, yi, vi = [1.0, 2.0, 3.0], [0.1, 0.3, 0.2], [0.04, 0.02, 0.08]
    fig = figures.bubble(x, yi, vi, fit_intercept=0.05, fit_slope=0.1, xlabel="Year")
    ax = fig.axes[0]
    sizes = one(ax, "bubbles").get_sizes()
    np.testing.assert_allclose(sizes / sizes.max(), [0.5, 1.0, 0.25])
    line = one(ax, "fitted_line")
    np.testing.assert_allclose(line.get_ydata(), 0.05 + 0.1 * line.get_xdata())
    assert ax.get_xlabel() == "Year"
    assert artists(figures.bubble(x, yi, vi).axes[0], "fitted_line") == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vi": [0.1, 0.0, 0.1]}, "vi must be > 0"),
    ({"yi": [0.1, 0.2]}, "length 3"),
    ({"fit_slope": 0.1}, "both fit_intercept and fit_slope"),
])
def test_bubble_rejects_bad_input(kwargs: dict, message: str) -> None:
    args = {"x": [1, 2, 3], "yi": [0.1, 0.2, 0.3], "vi": [0.1, 0.1, 0.1]} | kwargs
    x, yi, vi = args.pop("x"), args.pop("yi"), args.pop("vi")
    with pytest.raises(ValueError, match=message):
        figures.bubble(x, yi, vi, **args)


# ---------------------------------------------------------------------------
# transitions and flow
# ---------------------------------------------------------------------------


def test_transition_heatmap_counts_row_percentages_and_axes() -> None:
    matrix = [[30, 12, 2], [8, 40, 5], [0, 0, 0]]
    fig = figures.transition_heatmap(matrix)
    ax = fig.axes[0]
    cells = [t.get_text() for t in artists(ax, "cell_text")]
    assert len(cells) == 9
    assert cells[:3] == ["30\n68%", "12\n27%", "2\n5%"]
    assert cells[6:] == ["0\nn.a."] * 3  # an empty row has no percentages
    assert ax.get_ylabel() == "Primary tumour"
    assert ax.get_xlabel() == "Recurrence"
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "zero\n(n = 44)", "low\n(n = 53)", "positive\n(n = 0)"]
    image = one(ax, "transition_cells")
    assert image.get_array()[0, 0] == pytest.approx(100 * 30 / 44)


def test_transition_heatmap_uses_ax_and_validates() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert figures.transition_heatmap(np.eye(3, dtype=int), ax=ax, title="T") is fig
    assert ax.get_title(loc="left") == "T"
    with pytest.raises(ValueError, match="3 x 3"):
        figures.transition_heatmap([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="non-negative whole"):
        figures.transition_heatmap([[1, 2, 3], [3, -4, 0], [0, 0, 1]])


def flow_table() -> pd.DataFrame:
    return pd.DataFrame({
        "label": ["Pestrin 2012", "Hainsworth 2016", "Verschoor 2024"],
        "screened": [139, 283, 64],
        "with_ctcs": [80, None, 40],
        "her2_positive_ctcs": [7, 24, 8],
        "treated": [7, 14, 8],
        "evaluable": [7, 14, None],
    })


def test_flow_diagram_small_multiples_with_missing_stages() -> None:
    fig = figures.flow_diagram(flow_table())
    ax = fig.axes[0]
    assert len(artists(ax, "flow_box")) == 15
    assert len(artists(ax, "flow_arrow")) == 12
    box_texts = [t.get_text() for t in artists(ax, "flow_text")]
    assert sum(t.endswith("not reported") for t in box_texts) == 2
    assert "Screened\nn = 139" in box_texts
    assert "With HER2+ CTCs\nn = 7 (9%)" in box_texts  # 7 of 80
    # the previous stage is not reported: the share refers to the last reported one
    assert "With HER2+ CTCs\nn = 24 (8%)" in box_texts  # 24 of 283 screened
    assert [t.get_text() for t in artists(ax, "flow_trial")] == list(flow_table()["label"])


def test_flow_diagram_single_chain_into_given_axes() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    stages = [("screened", 139), ("with_ctcs", 80), ("Custom stage", None)]
    assert figures.flow_diagram(stages, ax=ax) is fig
    box_texts = [t.get_text() for t in artists(ax, "flow_text")]
    assert box_texts == ["Screened\nn = 139", "With CTCs\nn = 80 (58%)",
                         "Custom stage\nnot reported"]
    with pytest.raises(ValueError, match="whole number"):
        figures.flow_diagram([("screened", 10.5)])


def test_flow_diagram_says_why_a_box_has_no_count() -> None:
    fig = figures.flow_diagram(flow_table().assign(randomised=[None, None, None]),
                               missing_text={("Pestrin 2012", "randomised"): "not randomised"})
    box_texts = [t.get_text() for t in artists(fig.axes[0], "flow_text")]
    assert "Randomised\nnot randomised" in box_texts
    assert box_texts.count("Randomised\nnot reported") == 2


def test_flow_diagram_wraps_into_grid_rows() -> None:
    table = pd.concat([flow_table()] * 3, ignore_index=True)  # 9 trials
    fig = figures.flow_diagram(table, max_columns=4)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 4.0)
    assert len(artists(ax, "flow_box")) == 45
    assert fig.get_figheight() > figures.flow_diagram(flow_table()).get_figheight()


def test_forest_proportion_axis_cuts_intervals_beyond_zero_and_says_so() -> None:
    p = XI / NI
    res = dataclasses.replace(orr_result(), measure="PR", yi=p, vi=p * (1 - p) / NI + 1e-4,
                              estimate=0.1, ci_lower=-0.02, ci_upper=0.25, pi_lower=-0.1,
                              pi_upper=0.4)
    fig = figures.forest(res)
    assert fig.axes[0].get_xlim()[0] == 0.0
    shown = texts(fig)
    assert "10.0% [-2.0%, 25.0%]" in shown  # PR is not clipped (as metafor); only the plot is
    assert any("cut at 0 and 1" in t for t in shown)
    assert not any("cut at 0 and 1" in t for t in texts(figures.forest(orr_result())))


def test_forest_of_a_real_fit_matches_metafor() -> None:
    """Integration: escalc + rma + proportion_ci on the HER2-CTC objective responses,
    drawn with ``forest``; the diamond, prediction interval and weights must show
    metafor 3.8-1's values (tests/fixtures/metafor/orr_her2ctc.json, made by
    metafor_reference.R: ``rma(yi, vi, method="REML")`` with ``predict(transf=
    transf.ilogit)``)."""
    import json
    from pathlib import Path

    from evidence.stats.effects import escalc, proportion_ci
    from evidence.stats.pooling import rma

    fixtures = Path(__file__).parents[1] / "fixtures" / "metafor"
    data = pd.read_csv(fixtures / "orr_her2ctc.csv")
    reference = json.loads((fixtures / "orr_her2ctc.json").read_text())
    (ref,) = [r for r in reference["records"]
              if (r["measure"], r["method"], r["test"]) == ("PLO", "REML", "z")
              and r["zero_handling"].startswith("add=1/2,to=only0 (default)")]
    xi, ni = data["events"].to_numpy(), data["total"].to_numpy()
    res = rma(escalc("PLO", xi=xi, ni=ni, study_ids=data["study"]), method="REML")
    lower, upper = proportion_ci(xi, ni)
    fig = figures.forest(res, events=xi, totals=ni, study_ci=(lower, upper))
    ax = fig.axes[0]
    diamond = one(ax, "pooled_diamond").get_xy()[:4, 0]
    np.testing.assert_allclose(diamond, [ref["prop_ci_lb"], ref["prop"], ref["prop_ci_ub"],
                                         ref["prop"]], rtol=1e-6)
    np.testing.assert_allclose(one(ax, "prediction_interval").get_xdata(),
                               [ref["prop_pi_lb"], ref["prop_pi_ub"]], rtol=1e-6)
    cp = [s["cp_lb"] for s in reference["studies"]]
    np.testing.assert_allclose(np.array(one(ax, "study_ci").get_segments())[:, 0, 0], cp,
                               rtol=1e-6, atol=1e-12)
    shown = texts(fig)
    for w in ref["weights_pct"]:
        assert f"{w:.1f}%" in shown
    assert any(f"τ² = {ref['tau2']:.3g}, I² = {ref['I2']:.1f}%" in t for t in shown)
    assert len(artists(figures.funnel(res).axes[0], "study_markers")) == 1


def test_caterpillar_for_many_studies_is_fast_and_fixed_size() -> None:
    import time

    from evidence.stats.proportions import pool_proportions

    rng = np.random.default_rng(3)
    ni = rng.integers(20, 300, 1500)
    xi = rng.binomial(ni, 0.2)
    result, pooled = pool_proportions(xi, ni, method="REML")
    start = time.perf_counter()
    fig = figures.caterpillar(result, xlabel="Proportion")
    assert time.perf_counter() - start < 10  # generous: a 1,500-row forest takes minutes
    ax = fig.axes[0]
    segments = artists(ax, "study_cis")[0].get_segments()
    assert len(segments) == 1500
    lows = [seg[0][0] for seg in segments]
    mids = np.sort(1 / (1 + np.exp(-np.asarray(result.yi))))
    # sorted by estimate: row i holds the i-th smallest study estimate
    shown = np.asarray(artists(ax, "study_markers")[0].get_offsets())[:, 0]
    assert shown == pytest.approx(mids, abs=1e-12)
    assert all(lo <= m + 1e-12 for lo, m in zip(lows, mids, strict=True))
    assert artists(ax, "pooled_estimate")[0].get_xdata()[0] == pytest.approx(pooled["estimate"])
    assert fig.get_figheight() == figures.caterpillar(result).get_figheight()
    assert ax.get_title(loc="left").endswith(
        f"{100 * pooled['estimate']:.1f}% [{100 * pooled['ci_lower']:.1f}%, "
        f"{100 * pooled['ci_upper']:.1f}%]")  # percentages, as the text gives them
    assert ax.xaxis.get_major_formatter()(0.2, 0) == "20%"
    with pytest.raises(ValueError, match="k = 0"):
        figures.caterpillar(dataclasses.replace(result, k=0))


# ------------------------------------------------------------------------ two-arm figure


def test_two_arm_figure() -> None:
    studies = study_rows()
    eff = two_arm.two_arm_effects(two_arm.two_arm_pairs(outcome_rows()))
    fig = figures.two_arm_figure(eff, studies, "RR", title="Two-arm")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    markers = next(c for c in ax.collections if c.get_gid() == "study_markers")
    xy = markers.get_offsets()
    assert np.allclose(xy[:, 0], eff[eff["measure"] == "RR"]["estimate"])
    faces = markers.get_facecolors()
    assert faces[0][:3].tolist() == [1.0, 1.0, 1.0]  # Verschoor: open square
    assert faces[2][:3].tolist() != [1.0, 1.0, 1.0]  # Treat CTC: filled
    texts = [t.get_text() for t in ax.texts]
    assert "Verschoor 2024 (not randomised)\nObjective response" in texts
    assert "1.29 [0.38, 4.36]" in texts
    rd = figures.two_arm_figure(eff, studies, "RD")
    assert rd.axes[0].get_xscale() == "linear"
    with pytest.raises(ValueError, match="unknown measure 'HR'"):
        figures.two_arm_figure(eff, studies, "HR")
    assert artists(ax, "direction_label") == []


def test_two_arm_figure_direction_labels_either_side_of_no_difference() -> None:
    eff = two_arm.two_arm_effects(two_arm.two_arm_pairs(outcome_rows()))
    fig = figures.two_arm_figure(eff, study_rows(), "RR",
                                 direction_labels=two_arm.direction_labels("RR"))
    ax = fig.axes[0]
    left, right = artists(ax, "direction_label")
    assert left.get_text() == "← Outcome less frequent in the experimental arm"
    assert right.get_text() == "Outcome more frequent in the experimental arm →"
    assert left.get_position()[0] == right.get_position()[0] == 1.0


def test_two_arm_figure_caps_rows_randomised_first() -> None:
    import pandas as pd


    studies = pd.DataFrame({"study_id": ["r", "a", "b"], "label": ["R", "A", "B"],
                            "randomized": ["yes", "no", "no"]})
    effects = pd.DataFrame({
        "study_id": ["a", "b", "r"], "outcome": ["objective_response"] * 3,
        "measure": ["RR"] * 3, "estimate": [1.5, 2.0, 0.8], "ci_lower": [0.5, 0.9, 0.3],
        "ci_upper": [4.0, 4.4, 2.1], "ai": [3, 9, 4], "n1i": [10, 30, 20],
        "ci": [2, 5, 5], "n2i": [10, 30, 20]})
    fig = figures.two_arm_figure(effects, studies, "RR", max_rows=2)
    shown = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "R\nObjective response" in shown  # the randomised comparison is kept
    assert "B (not randomised)" in shown and "A (not randomised)" not in shown
    assert any("2 of 3 comparisons (randomised first" in t.get_text() for t in fig.texts)


def test_forest_log_axis_over_many_decades_ticks_only_powers_of_ten() -> None:
    wide = dataclasses.replace(hr_result(), ci_lower=math.log(0.01), ci_upper=math.log(16.0))
    ax = figures.forest(wide).axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(math.log10(t) == pytest.approx(round(math.log10(t))) for t in ticks)
    narrow = figures.forest(hr_result()).axes[0]  # 0.16 to 0.82: 1-2-5 ticks
    lo, hi = narrow.get_xlim()
    assert 0.2 in [round(t, 6) for t in narrow.get_xticks() if lo <= t <= hi]
