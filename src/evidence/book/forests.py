"""The forest plot of a pooled proportion: which plot is drawn, and the caption that says so.

:func:`proportion_forest` draws a labelled forest plot (RevMan's layout: events/total, the
weight where the model defines one, the proportion with its exact interval in percentages,
the overall risk of bias), a caterpillar plot when there are too many studies to label, or
the single study alone; :func:`forest_caption` describes what was drawn.  The caption is
chosen by the code that chose the plot, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evidence.book.names import METHOD_NAMES
from evidence.book.text import md, shows_prediction

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from evidence.book.pooled import ProportionAnalysis

__all__ = ["FOREST_KINDS", "ForestPlot", "forest_caption", "forest_kind", "proportion_forest"]

#: What a pooled proportion's figure can be: a labelled forest plot, a caterpillar plot
#: (too many studies to label), or one study alone (nothing pooled).
FOREST_KINDS: tuple[str, ...] = ("forest", "caterpillar", "single")


@dataclass(frozen=True)
class ForestPlot:
    """A drawn forest-type figure and the caption that describes it."""

    figure: Figure
    kind: str  # one of FOREST_KINDS
    caption: str  # Markdown; registry text in it is escaped


def forest_kind(k: int, max_forest_k: int) -> str:
    """Which figure shows ``k`` studies: ``"single"`` (k = 1), ``"forest"`` (up to
    ``max_forest_k``) or ``"caterpillar"`` (more).

    Raises
    ------
    ValueError
        ``k < 1`` or ``max_forest_k < 1``.
    """
    if k < 1:
        raise ValueError(f"no studies to plot (k = {k})")
    if max_forest_k < 1:
        raise ValueError(f"max_forest_k must be at least 1, got {max_forest_k}")
    if k == 1:
        return "single"
    return "forest" if k <= max_forest_k else "caterpillar"


def forest_caption(res: ProportionAnalysis, kind: str, *,
                   labels: Mapping[str, str] | None = None,
                   risk_of_bias: bool = True) -> str:
    """The caption of a pooled proportion's figure, saying what ``kind`` of plot it is.

    Parameters
    ----------
    res : ProportionAnalysis
        The analysis drawn.
    kind : {"forest", "caterpillar", "single"}
        What was drawn (:func:`forest_kind`).
    labels : mapping, optional
        ``study_id -> label``, for naming the single study (escaped).
    risk_of_bias : bool, default True
        Whether the plot has a risk-of-bias column.

    Returns
    -------
    str
        Markdown: the studies and their intervals, which columns the plot has (the
        weight only where the model defines weights), the pooled estimate's model and
        whether a prediction interval is drawn; for a caterpillar plot, that the
        studies are sorted and unlabelled; for one study, that nothing is pooled.
    """
    if kind not in FOREST_KINDS:
        raise ValueError(f"kind={kind!r} is not valid; allowed: {', '.join(FOREST_KINDS)}")
    ci_name = "exact" if res.ci_method == "clopper-pearson" else "Wilson"
    rob = " and overall risk of bias (RoB)" if risk_of_bias else ""
    if kind == "single":
        sid = str(res.studies["study_id"].iloc[0])
        name = (labels or {}).get(sid, sid)
        return (f"Observed proportion of the single study ({md(name)}) with its {ci_name} 95% "
                f"confidence interval in percentages, its events/total{rob}. With one study "
                "nothing is pooled.")
    weights = np.asarray(res.result.weights, dtype=float)
    has_weights = bool(np.all(np.isfinite(weights)))
    method = METHOD_NAMES.get(res.method, res.method)
    pi = shows_prediction(res.k, res.method)
    if kind == "caterpillar":
        return (f"Observed proportions of the {res.k} studies with {ci_name} 95% confidence "
                "intervals, drawn as a caterpillar plot because they are too many to label: "
                "one line per study, sorted by its estimate, without labels. The vertical "
                f"line is the pooled estimate, from the {method}, and the band its 95% "
                "confidence interval" + ("; the lighter band is the 95% prediction interval." if pi
                              else "."))
    columns = "events/total, " + ("the study's weight in the model (%), " if has_weights
                                  else "")
    squares = ("Squares are sized by weight." if has_weights else
               "This model defines no study weights, so every square has the same size.")
    return (f"Observed proportions of the {res.k} studies with {ci_name} 95% confidence "
            f"intervals, with {columns}the proportion and interval in percentages"
            + (", and each study's overall risk of bias (RoB)" if risk_of_bias else "")
            + f". The diamond is the pooled estimate, from the {method}, with its 95% "
            "confidence interval"
            + ("; the dashed bar under it is the 95% prediction interval. " if pi else ". ")
            + squares)


def proportion_forest(res: ProportionAnalysis, *, labels: Mapping[str, str],
                      risk_of_bias: Sequence[str | None] | None = None,
                      max_forest_k: int = 60) -> ForestPlot:
    """Draw a pooled proportion's figure and its caption (:func:`forest_kind` decides).

    Parameters
    ----------
    res : ProportionAnalysis
        From :func:`evidence.book.pooled.pool_table`.
    labels : mapping
        ``study_id -> label`` (row labels of the forest plot).
    risk_of_bias : sequence of str or None, optional
        Each study's overall judgement, in the order of ``res.studies``.
    max_forest_k : int, default 60
        Most studies drawn as a labelled forest plot; more become a caterpillar plot.

    Returns
    -------
    ForestPlot
        The Figure, its kind and its caption.
    """
    from evidence.book import figures

    kind = forest_kind(res.k, max_forest_k)
    s = res.studies
    study_ci = (s["ci_lower"], s["ci_upper"])
    if kind == "caterpillar":
        fig = figures.caterpillar(res.result, study_ci=study_ci, xlabel="Proportion")
    else:
        fig = figures.forest(res.result, labels=labels, events=s["events"], totals=s["total"],
                             study_ci=study_ci, xlabel="Proportion",
                             risk_of_bias=risk_of_bias)
    return ForestPlot(fig, kind, forest_caption(res, kind, labels=labels,
                                                risk_of_bias=risk_of_bias is not None))
