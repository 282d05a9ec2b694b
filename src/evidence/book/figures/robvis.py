"""Risk-of-bias figures as robvis draws them: a traffic-light plot (studies x domains, and
the overall judgement) and a summary bar chart (per domain, the share of studies, or of
their weight, at each judgement). Every judgement is a colour and a symbol, so the figures
read without colour too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from evidence.book.figures._base import FONT, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["JUDGEMENT_STYLE", "judgement_style", "summary_bars", "traffic_light"]

#: Reader's word, symbol and colour of each judgement of the registry's tools (robvis's
#: colours; "×" high, "−" some concerns, "+" low, "?" no information).
JUDGEMENT_STYLE: dict[str, tuple[str, str, str]] = {
    "low": ("Low", "+", "#02A100"),
    "yes": ("Yes", "+", "#02A100"),
    "some_concerns": ("Some concerns", "−", "#C9A800"),
    "moderate": ("Moderate", "−", "#C9A800"),
    "unclear": ("Unclear", "?", "#4E88C7"),
    "no_information": ("No information", "?", "#4E88C7"),
    "high": ("High", "×", "#BF0000"),
    "no": ("No", "×", "#BF0000"),
    "serious": ("Serious", "×", "#BF0000"),
    "critical": ("Critical", "!", "#700000"),
    "not_applicable": ("Not applicable", "", "#B0B0B0"),
}
#: Order from best to worst, for the summary bars.
_ORDER = ("low", "yes", "some_concerns", "moderate", "unclear", "no_information",
          "not_applicable", "serious", "high", "no", "critical")


def judgement_style(judgement: str) -> tuple[str, str, str]:
    """(word, symbol, colour) of a judgement; an unknown one raises ``ValueError``."""
    if judgement not in JUDGEMENT_STYLE:
        raise ValueError(f"unknown judgement {judgement!r}; known: "
                         f"{', '.join(JUDGEMENT_STYLE)}")
    return JUDGEMENT_STYLE[judgement]


def traffic_light(studies: Sequence[str], domains: Sequence[str],
                  judgements: Sequence[Sequence[str]], overall: Sequence[str], *,
                  title: str | None = None) -> Figure:
    """Traffic-light plot: one row per study, one column per domain (labelled D1, D2, ...
    with the domain names in a key below) and a last column for the overall judgement.

    Parameters
    ----------
    studies : sequence of str
        Row labels.
    domains : sequence of str
        Domain names, in the tool's order.
    judgements : sequence of sequences of str
        ``judgements[i][j]``: study i, domain j.
    overall : sequence of str
        The overall judgement of each study.
    """
    k, d = len(studies), len(domains)
    if len(judgements) != k or len(overall) != k or any(len(r) != d for r in judgements):
        raise ValueError("judgements must have one row per study and one entry per domain")
    label_w = min(3.2, 0.25 + 0.075 * max((len(s) for s in studies), default=4))
    cell = 0.34
    width = label_w + (d + 1) * cell + 0.4
    key_lines = d // 2 + d % 2 + 2
    height = 0.55 + k * cell + 0.25 + key_lines * 0.19
    fig = new_figure(max(width, 5.4), height)
    fw, fh = fig.get_figwidth(), height
    ax = fig.add_axes((label_w / fw, (key_lines * 0.19 + 0.25) / fh, (d + 1) * cell / fw,
                       k * cell / fh))
    ax.set_xlim(-0.5, d + 0.5)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_axis_off()
    for j in range(d + 1):
        ax.text(j, -0.85, f"D{j + 1}" if j < d else "Overall", ha="center", va="bottom",
                fontsize=FONT - 1, fontweight="bold")
    for i, study in enumerate(studies):
        ax.text(-0.7, i, study, ha="right", va="center", fontsize=FONT - 1)
        for j, value in enumerate([*judgements[i], overall[i]]):
            _, symbol, colour = judgement_style(value)
            ax.scatter([j], [i], s=(cell * 72 * 0.78) ** 2, color=colour, zorder=2,
                       edgecolors="white" if j < d else "black", linewidths=0.8,
                       gid="rob_cell" if j < d else "rob_overall", clip_on=False)
            ax.text(j, i, symbol, ha="center", va="center", color="white",
                    fontsize=FONT, fontweight="bold", zorder=3)
    key = [f"D{j + 1}: {name}" for j, name in enumerate(domains)]
    used = list(dict.fromkeys(v for row in [*judgements, overall] for v in row))
    legend = "   ".join(f"{judgement_style(v)[1]} {judgement_style(v)[0]}" for v in
                       sorted(used, key=_ORDER.index))
    lines = [", ".join(key[i:i + 2]) for i in range(0, len(key), 2)] + ["Judgement: " + legend]
    for n, line in enumerate(lines):
        fig.text(0.1 / fw, (len(lines) - n) * 0.19 / fh, line, fontsize=FONT - 1.5,
                 ha="left", va="top")
    if title:
        fig.text(0.1 / fw, 1 - 0.08 / fh, title, fontsize=FONT + 1, fontweight="bold",
                 ha="left", va="top")
    return fig


def summary_bars(domains: Sequence[str], judgements: Sequence[Sequence[str]],
                 overall: Sequence[str], weights: Sequence[float] | None = None, *,
                 weight_label: str = "studies") -> Figure:
    """Weighted summary: per domain (and overall) a horizontal bar split into the shares
    of ``weights`` (default: one per study) at each judgement."""
    k = len(judgements)
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (k,) or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be one finite, non-negative number per study")
    rows = [*domains, "Overall"]
    columns = [[r[j] for r in judgements] for j in range(len(domains))] + [list(overall)]
    fig = new_figure(7.2, 1.05 + 0.3 * len(rows) + 0.35)
    fh = fig.get_figheight()
    ax = fig.add_axes((0.36, 0.9 / fh, 0.6, 0.3 * len(rows) / fh))
    used: dict[str, None] = {}
    for y, values in enumerate(columns):
        left = 0.0
        for judgement in _ORDER:
            share = float(w[[v == judgement for v in values]].sum() / w.sum())
            if share <= 0:
                continue
            word, symbol, colour = judgement_style(judgement)
            first = judgement not in used
            used[judgement] = None
            ax.barh(y, share, left=left, color=colour, edgecolor="white", height=0.7,
                    gid="rob_bar", label=f"{symbol} {word}" if first else None)
            if share >= 0.08:
                ax.text(left + share / 2, y, symbol, ha="center", va="center",
                        color="white", fontsize=FONT, fontweight="bold")
            left += share
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=FONT - 1)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0%", "25%", "50%", "75%", "100%"],
                  fontsize=FONT - 1)
    ax.set_xlabel(f"Share of {weight_label}", fontsize=FONT - 1)
    handles, names = ax.get_legend_handles_labels()
    rank = {f"{judgement_style(j)[1]} {judgement_style(j)[0]}": n for n, j in enumerate(_ORDER)}
    pairs = sorted(zip(handles, names, strict=True), key=lambda hn: rank.get(hn[1], 99))
    fig.legend([h for h, _ in pairs], [n for _, n in pairs], fontsize=FONT - 1.5,
               frameon=False, ncol=min(5, len(used)), loc="lower left",
               bbox_to_anchor=(0.02, 0.0))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig

