"""The bottom line, generated: key findings per chapter, the abstract, the plain-language
summary, the discussion's comparisons with other reviews and the authors' conclusions.

Every number comes from the summary of findings (``results/summary.json`` rows, see
:class:`evidence.book.sof.SofRow`) or another analysis's result, and every sentence that
depends on a number is chosen here by a rule that sees it (a claim of a difference only
when the interval excludes no difference; agreement with another review only when the
intervals overlap), so a rebuilt book cannot contradict itself.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_p, fmt_pct, join_names

__all__ = [
    "KeyFindings",
    "chapter_extras",
    "claims",
    "effect_claim",
    "estimate_text",
    "key_findings_html",
    "key_findings_markdown",
    "landing_html",
    "lower_first",
    "practice_conclusion",
    "review_agreement",
    "review_name",
    "rows_by_id",
    "subgroup_claim",
]

_SYMBOL = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very low": "⊕◯◯◯"}


def rows_by_id(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The summary-of-findings rows of ``results/summary.json`` by outcome id."""
    return {r["outcome_id"]: r for r in summary.get("rows", [])}


def estimate_text(row: Mapping[str, Any]) -> str:
    """``30.5% (95% CI 19.4% to 44.5%)`` or ``RR 1.20 (95% CI 0.38 to 3.83)``."""
    if row["scale"] == "proportion":
        return (f"{fmt_pct(row['estimate'])} (95% CI "
                f"{fmt_ci(row['ci_lower'], row['ci_upper'])})")
    kind = "RR" if ":" in row["outcome_id"] else "HR"
    return (f"{kind} {fmt_num(row['estimate'], 2)} (95% CI "
            f"{fmt_ci(row['ci_lower'], row['ci_upper'], pct=False, digits=2)})")


def effect_claim(row: Mapping[str, Any]) -> str:
    """What a ratio's interval allows one to say, at its certainty."""
    level = row["certainty"]
    lo, hi = row["ci_lower"], row["ci_upper"]
    if lo <= 1.0 <= hi:
        return ("The interval includes no difference: the data are compatible with a benefit, "
                "no effect and a harm.")
    side = "lower" if hi < 1.0 else "higher"
    return (f"The interval excludes no difference (the ratio is {side} than 1), but the "
            f"certainty of the evidence is {level}.")


def subgroup_claim(result: Mapping[str, Any], column: str, what: str) -> str:
    """A subgroup difference is stated only at p < 0.05 of the Q-between test, and then as
    exploratory; otherwise that none was detected; nothing when there was no test."""
    sub = (result.get("subgroups") or {}).get(column)
    if not sub:
        return ""
    p = sub["q_between_pvalue"]
    if p is None:
        return ""
    if p < 0.05:
        return (f"The share differs by {escape_markdown(what)} ({fmt_p(p)}), an exploratory "
                "finding: the subgroup variables are entangled.")
    return f"No difference by {escape_markdown(what)} was detected ({fmt_p(p)})."


def review_agreement(ours: Mapping[str, Any], review: Mapping[str, Any], what: str) -> str:
    """Our pooled proportion beside another review's (in percent): consistent when the 95%
    intervals overlap, different when they do not; without the review's interval only the
    two estimates are given."""
    est, lo, hi = (_percent(review.get(c)) for c in ("estimate", "ci_lower", "ci_upper"))
    name = escape_markdown(review_name(str(review["review_id"])))
    mine = f"{fmt_pct(ours['estimate'])} ({fmt_ci(ours['ci_lower'], ours['ci_upper'])})"
    if est is None:
        return ""
    theirs = f"{fmt_pct(est)}" + (f" ({fmt_ci(lo, hi)})" if lo is not None and hi is not None
                                  else "")
    if lo is None or hi is None:
        return (f"For {what}, {name} reports {theirs} (no interval given) against {mine} "
                "here.")
    overlap = lo <= ours["ci_upper"] and ours["ci_lower"] <= hi
    verdict = ("consistent with" if overlap else "different from")
    return (f"For {what}, this review's {mine} is {verdict} {name}'s {theirs}: the 95% "
            f"intervals {'overlap' if overlap else 'do not overlap'}.")


def _percent(value: Any) -> float | None:
    """A review's percentage as a proportion (None when missing or NaN)."""
    import math

    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number / 100


def review_name(review_id: str) -> str:
    """``schrijver2018`` reads "Schrijver 2018" (the leading name and year of the id)."""
    import re

    m = re.match(r"([a-z]+)(\d{4})", review_id)
    return f"{m.group(1).capitalize()} {m.group(2)}" if m else review_id


def lower_first(text: str) -> str:
    """The sentence with its first letter in lower case (to follow a colon), unless it
    starts with an acronym (``CTC``, ``HER2``)."""
    if len(text) > 1 and text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def practice_conclusion(rows: Sequence[Mapping[str, Any]]) -> str:
    """Implications for practice from the randomised comparisons: a benefit is stated only
    when a randomised interval excludes no difference at low certainty or better."""
    randomised = [r for r in rows if ":" in r["outcome_id"] and r.get("grade", {}).get(
        "start") == "high"]
    if not randomised:
        return ("No randomised comparison is in the registry: whether anti-HER2 therapy "
                "helps patients selected by HER2-positive CTCs is untested here.")
    telling = [r for r in randomised if not (r["ci_lower"] <= 1.0 <= r["ci_upper"])
               and r["certainty"] in ("high", "moderate", "low")]
    if not telling:
        return (f"None of the {len(randomised)} randomised comparisons shows, with at least "
                "low certainty, a difference between anti-HER2 therapy and its comparator; "
                "selecting patients for anti-HER2 therapy by HER2-positive CTCs outside a "
                "trial is not supported by this evidence.")
    names = join_names([escape_markdown(str(r["title"])) for r in telling])
    return (f"Randomised evidence of a difference at low certainty or better comes from "
            f"{names} only; it does not yet support selecting patients for anti-HER2 therapy "
            "by HER2-positive CTCs outside a trial.")


def _finding_parts(row: Mapping[str, Any]) -> tuple[str, str, str]:
    level = row["certainty"]
    participants = (f"{row['patients']:,} patients, " if row.get("patients") else "")
    studies = f"{row['k']} {'study' if row['k'] == 1 else 'studies'}"
    return (str(row["title"]), f"{estimate_text(row)}; {participants}{studies}",
            f"{_SYMBOL[level]} {level} certainty")


def key_findings_markdown(rows: Sequence[Mapping[str, Any]],
                          extra: Sequence[str] = ()) -> str:
    """A chapter's key findings as a Markdown list (for a page's own glue)."""
    items = []
    for row in rows:
        title, est, cert = _finding_parts(row)
        items.append(f"- **{escape_markdown(title)}**: {escape_markdown(est)} — {cert}. "
                     f"{escape_markdown(row['statement'])}")
    items += [f"- {e}" for e in extra if e]
    return "\n".join(items) if items else "No outcome of this chapter is in the summary."


def key_findings_html(rows: Sequence[Mapping[str, Any]], link: str,
                      extra: Sequence[str] = ()) -> str:
    """A chapter's "Key findings" box as escaped HTML (pasted across pages with
    ``{glue:any}`` and ``:doc:``): per outcome the estimate, its certainty and what it
    means, then the extra sentences (already chosen by their rules; plain text)."""
    items = []
    for row in rows:
        title, est, cert = _finding_parts(row)
        items.append(f"<li><strong>{html.escape(title)}</strong>: {html.escape(est)} — "
                     f"{html.escape(cert)}. {html.escape(str(row['statement']))}</li>")
    items += [f"<li>{html.escape(_plain(e))}</li>" for e in extra if e]
    body = "".join(items) or "<li>No outcome of this chapter is in the summary.</li>"
    return ('<div class="admonition key-findings"><p class="admonition-title">Key findings'
            f'</p><ul>{body}</ul><p>Certainty is GRADE\'s (<a href="{html.escape(link)}">'
            "summary of findings</a>).</p></div>")


def _plain(markdown: str) -> str:
    """Markdown escapes removed (the sentences above are plain words)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


class KeyFindings:
    """Escaped HTML to glue (``text/html``; its plain-text form is the words alone), for
    the ``{glue:any}`` directive that pastes it into another page."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        import re

        return html.unescape(re.sub(r"<[^>]+>", " ", self.markup)).strip()


def chapter_extras(results: Mapping[str, Mapping[str, Any]],
                   rows: Mapping[str, Mapping[str, Any]],
                   conversion_subgroups: Mapping[str, str]) -> dict[str, list[str]]:
    """The sentences beside the key findings that their rules choose: the subgroup tests
    of both conversion directions, the patients to screen per eligible patient, what each
    ratio's interval allows (randomised and prognostic chapters)."""
    out: dict[str, list[str]] = {}
    for aid in ("conv_neg_to_pos", "conv_pos_to_neg"):
        res = results.get(aid)
        if res is None or aid not in rows:
            continue
        for column, what in conversion_subgroups.items():
            claim = subgroup_claim(res, column, what)
            if claim:
                out.setdefault("conversion", []).append(
                    f"{escape_markdown(str(rows[aid]['title']))}: {lower_first(claim)}")
    feas = (results.get("feasibility") or {}).get("feasibility", {}).get("nns")
    if feas:
        out.setdefault("screening", []).append(
            f"About {feas['estimate_ceil']} patients (95% CI {feas['ci_lower_ceil']} to "
            f"{feas['ci_upper_ceil']}) must be screened to find one with HER2-positive CTCs.")
    for oid, row in rows.items():
        if row["scale"] != "ratio":
            continue
        chapter = "randomised" if ":" in oid else "prognosis"
        out.setdefault(chapter, []).append(
            f"{escape_markdown(str(row['title']))}: {lower_first(effect_claim(row))}")
    if any(":" in oid for oid in rows):
        out.setdefault("randomised", []).append(practice_conclusion(list(rows.values())))
    return out


def landing_html(rows: Mapping[str, Mapping[str, Any]], headline: Sequence[str],
                 selection: Mapping[str, Any]) -> str:
    """The landing page's bottom line: the headline estimates with their certainty and the
    implication for practice."""
    chosen = [rows[i] for i in headline if i in rows]
    box = key_findings_html(chosen, "analyses/summary.html",
                            [practice_conclusion(list(rows.values()))])
    return box.replace("Key findings", "The bottom line", 1)


def claims(rows: Mapping[str, Mapping[str, Any]],
           extra: Mapping[str, Sequence[str]]) -> list[str]:
    """Every sentence of the bottom line that depends on a number, in order (a release
    compares them to flag a changed reading)."""
    out = [f"{r['outcome_id']}: {r['statement']}" for r in rows.values()]
    for chapter in sorted(extra):
        out += [_plain(e) for e in extra[chapter]]
    return out
