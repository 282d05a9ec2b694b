"""The review's front and back matter in words: the structured abstract, the
plain-language summary and the discussion, each assembled from results by
:mod:`evidence.book.bottom_line`'s rules (no number is typed in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evidence.book.bottom_line import (
    effect_claim,
    estimate_text,
    lower_first,
    practice_conclusion,
    review_agreement,
)
from evidence.book.text import escape_markdown, fmt_pct, per_n, plural

__all__ = [
    "REVIEW_COMPARISONS",
    "abstract_markdown",
    "certainty_spread",
    "discussion_markdown",
    "plain_summary_markdown",
]

#: Other reviews' estimates compared with this review's (review quantity -> outcome id and
#: the words for it).
REVIEW_COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("her2_positive_to_negative_pct", "rec_loss",
     "HER2 loss (a HER2-positive primary, a HER2-negative recurrence or metastasis)"),
    ("her2_negative_to_positive_pct", "rec_gain",
     "HER2 gain (a HER2-negative primary, a HER2-positive recurrence or metastasis)"),
    ("her2_discordance_any_direction_pct", "rec_binary_change",
     "binary HER2 discordance between primary tumour and recurrence"),
)


def certainty_spread(rows: Sequence[Mapping[str, Any]]) -> str:
    """``"Of the 15 outcomes in the summary of findings, 14 are of very low certainty and
    1 of low certainty."``"""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["certainty"]] = counts.get(r["certainty"], 0) + 1
    if not counts:
        return "The summary of findings has no outcome."
    order = ("very low", "low", "moderate", "high")
    parts = [f"{n} of {level} certainty" for level, n in sorted(
        counts.items(), key=lambda kv: order.index(kv[0]))]
    first, rest = parts[0], parts[1:]
    n_first = int(first.split(" ", 1)[0])
    verb = "is" if n_first == 1 else "are"
    joined = first.replace(" of ", f" {verb} of ", 1) + (
        (", " if len(rest) > 1 else " and ") + ", ".join(rest[:-1]) + (" and " if len(rest) > 1
                                                                      else "") + rest[-1]
        if rest else "")
    return (f"Of the {plural(len(rows), 'outcome', 'outcomes')} in the summary of findings, "
            f"{joined}.")


def _line(rows: Mapping[str, Mapping[str, Any]], oid: str) -> str:
    r = rows.get(oid)
    if r is None:
        return ""
    return (f"{escape_markdown(str(r['title']))}: {escape_markdown(estimate_text(r))}, "
            f"{r['k']} {'study' if r['k'] == 1 else 'studies'}, {r['certainty']} certainty")


def abstract_markdown(rows: Mapping[str, Mapping[str, Any]], selection: Mapping[str, Any],
                      headline: Sequence[str]) -> str:
    """The structured abstract (Background, Objectives, Methods, Results, Conclusions)."""
    d, o = selection["databases"], selection["other"]
    results = "; ".join(x for x in (_line(rows, i) for i in headline) if x)
    return "\n\n".join([
        "**Background.** Some patients whose breast cancer is HER2-negative on tissue have "
        "HER2-positive circulating tumour cells (CTCs). Whether they benefit from anti-HER2 "
        "therapy, and how often HER2 status differs between tissue and CTCs or between a "
        "primary tumour and its recurrence, has been studied in many small studies.",
        "**Objectives.** To estimate response to anti-HER2 therapy in patients selected by "
        "HER2-positive CTCs, the yield of screening for them, the discordance of HER2 status "
        "between tissue and CTCs in both directions, the change of HER2 status between primary "
        "tumour and recurrence, and the randomised and prognostic evidence.",
        f"**Methods.** We searched stored PubMed, PMC, journal and trial-registry pages "
        f"({d['searches']} searches) and reference lists ({o['searches']}) up to "
        f"{escape_markdown(selection['last_search'])}, screened "
        f"{d['screened'] + o['screened']} records against criteria fixed per question, and "
        "extracted counts with their provenance. Risk of bias was assessed with RoB 2, "
        "ROBINS-I, the JBI case-series checklist, an adapted QUADAS-2 and QUIPS; certainty "
        "with GRADE. Proportions were pooled with a binomial-normal random-effects model with "
        "t-based intervals, hazard ratios with REML and the ad hoc Hartung-Knapp interval.",
        f"**Results.** {plural(selection['studies_included'], 'study', 'studies')} "
        f"({selection['reports_included']} reports) were included. {results}.",
        f"**Conclusions.** {certainty_spread(list(rows.values()))} "
        f"{practice_conclusion(list(rows.values()))}",
    ])


def plain_summary_markdown(rows: Mapping[str, Mapping[str, Any]],
                           selection: Mapping[str, Any]) -> str:
    """The plain-language summary: what was asked, what was found, how sure we are."""
    def pct(oid: str) -> str:
        r = rows.get(oid)
        return (f"about {per_n(r['estimate'], 100)} in 100" if r and r["scale"] ==
                "proportion" else "not known")

    return "\n\n".join([
        "**What did we want to find out?** Tumour cells that circulate in the blood can be "
        "tested for HER2, the target of drugs such as trastuzumab. We wanted to know how "
        "often the blood cells and the tumour tissue disagree, and whether patients whose "
        "tissue is HER2-negative but whose blood cells are HER2-positive are helped by "
        "anti-HER2 drugs.",
        f"**What did we do?** We searched for studies up to "
        f"{escape_markdown(selection['last_search'])} and found "
        f"{plural(selection['studies_included'], 'study', 'studies')}. We combined their "
        "results and rated how much we can trust them.",
        f"**What did we find?** Among patients with HER2-negative tissue whose blood contains "
        f"tumour cells, {pct('conv_neg_to_pos')} had HER2-positive cells in the blood. Of "
        f"patients screened for trials, {pct('screening_yield')} qualified. Of those treated "
        f"with anti-HER2 drugs in trials without a comparison group, {pct('orr')} had their "
        "tumours shrink. " + practice_conclusion(list(rows.values())),
        f"**How sure are we?** Not very. {certainty_spread(list(rows.values()))} The "
        "studies were small, used different tests and definitions, and most had flaws that "
        "could bias their results.",
    ])


def discussion_markdown(rows: Mapping[str, Mapping[str, Any]],
                        reviews: Sequence[Mapping[str, Any]], secondary_rows: int,
                        total_rows: int, unread: Sequence[str]) -> dict[str, str]:
    """The discussion's sections, keyed ``main``, ``applicability``, ``quality``,
    ``biases``, ``agreement``, ``practice``, ``research``."""
    ratios = [r for r in rows.values() if r["scale"] == "ratio"]
    main = "\n".join(f"- {_line(rows, oid)}." for oid in rows)
    comparisons = [review_agreement(rows[oid], rev, what)
                   for quantity, oid, what in REVIEW_COMPARISONS if oid in rows
                   for rev in reviews if rev["quantity"] == quantity]
    comparisons = [c for c in comparisons if c]
    effects = " ".join(f"For {escape_markdown(lower_first(str(r['title'])))}, "
                       f"{lower_first(effect_claim(r))}" for r in ratios)
    return {
        "main": main,
        "applicability": (
            "The evidence comes from small studies with different CTC assays, HER2 criteria "
            "and settings, most of them metastatic; the subgroup analyses of each chapter "
            "show how far the estimates depend on these choices. "
            + (f"Reports whose per-arm results could not be read: "
               f"{escape_markdown(', '.join(unread))}." if unread else "")),
        "quality": f"{certainty_spread(list(rows.values()))} {effects}",
        "biases": (
            "The searches used a tool that returns excerpts of stored public pages rather "
            "than full bibliographic databases, so eligible studies may have been missed; "
            f"{secondary_rows} of the {total_rows} extracted rows come from a review's table "
            f"rather than the study's own report ({fmt_pct(secondary_rows / total_rows)}). "
            "Screening, extraction and appraisal were done by one reviewer, with automated "
            "checks of every number against its printed source."),
        "agreement": (" ".join(comparisons) if comparisons else
                      "No other review's estimate in the registry matches an outcome here."),
        "practice": practice_conclusion(list(rows.values())),
        "research": (
            "Randomised trials that select patients by HER2-positive CTCs and report "
            "patient-important outcomes (progression-free and overall survival) by arm are "
            "needed, with one predefined CTC HER2 criterion; discordance studies should report "
            "both directions, the tissue compared (primary or metastatic) and the interval "
            "between the tissue and the blood sample."),
    }
