"""Where the sources disagree with their own numbers, and which counts rest on an
assumption: both read from the registry alone, for the Study registry chapter.

A printed percentage is checked against the counts beside it with the rule of
``evidence audit-sources`` (:func:`evidence.registry.audit.percentage_findings`); an
assumption is a sentence of a row's ``derived`` or ``note`` that says what is assumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["printed_p_values", "registry_assumptions", "source_discrepancies"]


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)  # NaN != NaN


def _labels(studies: pd.DataFrame) -> dict[str, str]:
    return dict(zip(studies["study_id"], studies["label"], strict=True))


def _by_study(rows: pd.DataFrame, studies: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as records, by study (year, label) and then as the registry lists them."""
    order = {sid: i for i, sid in enumerate(
        studies.sort_values(["year", "label", "study_id"], kind="stable")["study_id"])}
    records = rows.to_dict("records")
    return sorted(records, key=lambda r: order.get(r["study_id"], len(order)))


_ASSUMPTION = re.compile(r"\bassum", re.IGNORECASE)
#: Sentence ends in registry notes: '. ' before a capital or '(' (not '38.3'), or '; '.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|;\s+")


def _balanced(text: str) -> str:
    """A sentence cut out of a parenthesis loses the closing parenthesis it does not open."""
    while text.endswith(")") and text.count(")") > text.count("("):
        text = text[:-1].rstrip()
    return text


def _reader_what(row: Mapping[str, Any]) -> str:
    """An outcome row in readers' words: outcome, arm and subgroup."""
    from evidence.book.names import ARM_NAMES, name, outcome_short, subgroup_phrase

    sub = _text(row.get("subgroup"))
    text = outcome_short(str(row["outcome"]))
    text = text[:1].upper() + text[1:]
    if _text(row.get("arm")) not in ("", "all"):
        text += f", {name(str(row['arm']), ARM_NAMES)} arm"
    return text + (f" ({subgroup_phrase(sub)})" if sub else "")


def source_discrepancies(outcomes: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Where a source's printed percentage disagrees with the counts it prints beside it.

    Every ``outcomes.csv`` row's ``quote`` and ``printed`` are read with the audit's
    rules (:func:`evidence.registry.audit.percentage_findings`), from the registry alone.

    Returns
    -------
    pandas.DataFrame
        Text columns ``Study``, ``What``, ``Printed``, ``The counts give``, ``Reading``
        (``used`` or ``alternative``) and ``Explanation`` (the row's ``source_error``,
        or that the registry gives none), one row per finding, by study.
    """
    import pandas as pd

    from evidence.registry.audit import percentage_findings

    labels = _labels(studies)
    out = []
    for r in _by_study(outcomes, studies):
        events, total = int(r["events"]), int(r["total"])
        seen: set[tuple[str, int, int]] = set()
        for column in ("quote", "printed"):
            for f in percentage_findings(_text(r.get(column)), events, total):
                if (f.percent, f.events, f.total) in seen:
                    continue
                seen.add((f.percent, f.events, f.total))
                digits = max(1, len(f.percent.partition(".")[2]) + 1)
                out.append({
                    "Study": labels.get(r["study_id"], r["study_id"]),
                    "What": _reader_what(r),
                    "Printed": f.span,
                    "The counts give": f"{f.events}/{f.total} = {f.exact:.{digits}f}%",
                    "Reading": "used" if r.get("use", "primary") == "primary"
                    else "alternative",
                    "Explanation": _text(r.get("source_error")) or "none given in the registry",
                })
    return pd.DataFrame(out, columns=["Study", "What", "Printed", "The counts give", "Reading",
                                      "Explanation"])


def registry_assumptions(outcomes: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """The counts that rest on an assumption the registry states (its ``derived`` or
    ``note`` says what is assumed), so that a reader sees which numbers are inferred.

    Returns
    -------
    pandas.DataFrame
        Text columns ``Study``, ``What``, ``Counts``, ``Reading`` and ``What is assumed``
        (the sentences of ``derived`` and ``note`` that state the assumption).
    """
    import pandas as pd

    labels = _labels(studies)
    out = []
    for r in _by_study(outcomes, studies):
        said = [_balanced(sentence.strip()) for column in ("derived", "note")
                for sentence in _SENTENCE_END.split(_text(r.get(column)))
                if _ASSUMPTION.search(sentence)]
        if not said:
            continue
        out.append({"Study": labels.get(r["study_id"], r["study_id"]),
                    "What": _reader_what(r), "Counts": f"{int(r['events'])} / {int(r['total'])}",
                    "Reading": "used" if r.get("use", "primary") == "primary"
                    else "alternative",
                    "What is assumed": "; ".join(dict.fromkeys(said))})
    return pd.DataFrame(out, columns=["Study", "What", "Counts", "Reading", "What is assumed"])


_P_SENTENCE = re.compile(r"\bp\s*=", re.IGNORECASE)


def printed_p_values(outcomes: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Each p-value a source prints for a two-arm comparison (``outcomes.csv``
    ``printed_p`` on the experimental arm's row) beside Fisher's exact test (two-sided)
    of the counts the registry holds for that arm and the study's control arm.

    Returns
    -------
    pandas.DataFrame
        Text columns ``Study``, ``What``, ``Counts`` (experimental vs control),
        ``Printed p``, ``Fisher's exact p (two-sided)`` and ``What the source tested``
        (the sentences of the row's ``note`` that speak of its p-value), one row per
        printed p-value whose study has exactly one control arm for that outcome.
    """
    import pandas as pd

    from evidence.book.text import fmt_p
    from evidence.stats.distributions import fisher_exact

    labels = _labels(studies)
    rows = _by_study(outcomes, studies)
    out = []
    for r in rows:
        printed = _text(r.get("printed_p")).strip()
        if not printed or r.get("use", "primary") != "primary":
            continue
        controls = [c for c in rows if c["study_id"] == r["study_id"]
                    and c["outcome"] == r["outcome"]
                    and _text(c.get("subgroup")) == _text(r.get("subgroup"))
                    and c.get("use", "primary") == "primary"
                    and c.get("arm_role") == "control"]
        if len(controls) != 1:
            continue
        c = controls[0]
        a, n1, b, n2 = int(r["events"]), int(r["total"]), int(c["events"]), int(c["total"])
        said = [s.strip() for s in _SENTENCE_END.split(_text(r.get("note")))
                if _P_SENTENCE.search(s)]
        out.append({"Study": labels.get(r["study_id"], r["study_id"]),
                    "What": _reader_what({**r, "arm": "all"}),
                    "Counts": f"{a}/{n1} vs {b}/{n2}",
                    "Printed p": printed,
                    "Fisher's exact p (two-sided)": fmt_p(fisher_exact(a, n1 - a, b, n2 - b))
                    .removeprefix("p = ").removeprefix("p "),
                    "What the source tested": " ".join(said) or "not stated in the registry"})
    return pd.DataFrame(out, columns=["Study", "What", "Counts", "Printed p",
                                      "Fisher's exact p (two-sided)", "What the source tested"])
