"""Self-contradictions of a source: the reading used next to the alternative one.

A source that gives one number two ways has both readings in the registry
(``use=primary`` and ``use=alternative``, each with a note). :func:`contradictions` pairs
them and, for transition tables, counts how many tables of counts each reading admits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.names import CATEGORY_NAMES, name
from evidence.book.text import md, plural
from evidence.stats.transitions import IncompatibleReport

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "contradictions",
    "contradictions_table",
    "describe_contradictions",
]


def _row_key(rec: Mapping[str, Any], table: str) -> tuple[Any, ...]:
    if table == "transitions":
        return (rec["study_id"], rec.get("subgroup", ""), rec["from_category"],
                rec["to_category"])
    return (rec["study_id"], rec["arm"], rec["outcome"], rec.get("subgroup", ""))


def _describe_key(rec: Mapping[str, Any], table: str) -> str:
    sub = rec.get("subgroup", "") or ""
    sub_text = f" [{sub}]" if sub else ""
    if table == "transitions":
        a, b = rec["from_category"], rec["to_category"]
        if a == "any" and b == "any":
            what = "all patients (total)"
        else:
            what = (f"{'any' if a == 'any' else name(a, CATEGORY_NAMES)} → "
                    f"{'any' if b == 'any' else name(b, CATEGORY_NAMES)}")
        return f"transitions.csv: {what}{sub_text}"
    return f"outcomes.csv: {rec['outcome']}, arm {rec['arm']}{sub_text}"


def _value(rec: Mapping[str, Any], table: str) -> str:
    if table == "transitions":
        return f"{int(rec['count'])}"
    return f"{int(rec['events'])} / {int(rec['total'])}"


def contradictions(alternatives: Mapping[str, pd.DataFrame],
                   primaries: Mapping[str, pd.DataFrame],
                   discordant: int | None = None) -> pd.DataFrame:
    """Each ``use=alternative`` row next to the ``primary`` row it competes with.

    Parameters
    ----------
    alternatives, primaries : mapping of table name to pandas.DataFrame
        ``{"transitions": ..., "outcomes": ...}``: the alternative rows and the
        primary rows (of the same study) to match them with, on the registry key
        (``study_id, subgroup, from_category, to_category`` for transitions;
        ``study_id, arm, outcome, subgroup`` for outcomes).
    discordant : int, optional
        Passed to :func:`transition_bounds` when checking a transition reading.

    Returns
    -------
    pandas.DataFrame
        ``table``, ``study_id``, ``row`` (what the number is), ``used`` (primary
        value), ``alternative``, ``tables_used`` and ``tables_alternative`` (for
        transition cells and margins of a subgroup with complete margins: how many
        transition tables are compatible with each reading; NaN otherwise) and
        ``note`` (the registry's explanation of the resolution).

    Raises
    ------
    ValueError
        An unknown table name, or an alternative row without a primary row.
    """
    import pandas as pd

    out = []
    for table, alt in alternatives.items():
        if table not in ("transitions", "outcomes"):
            raise ValueError(f"unknown table {table!r}; allowed: transitions, outcomes")
        prim = primaries.get(table)
        prim_recs = {} if prim is None else {_row_key(r, table): r
                                             for r in prim.to_dict("records")}
        for rec in alt.to_dict("records"):
            key = _row_key(rec, table)
            if key not in prim_recs:
                raise ValueError(f"alternative row {key} of {table}.csv has no primary row "
                                 "among those given")
            p = prim_recs[key]
            n_used = n_alt = np.nan
            if table == "transitions" and prim is not None:
                same = prim[(prim["study_id"] == rec["study_id"])
                            & (prim["subgroup"] == rec.get("subgroup", ""))]
                n_used = _n_tables(same, discordant)
                swapped = pd.concat([same[[_row_key(r, table) != key
                                           for r in same.to_dict("records")]],
                                     pd.DataFrame([rec])], ignore_index=True)
                n_alt = _n_tables(swapped, discordant)
            out.append({"table": table, "study_id": rec["study_id"],
                        "row": _describe_key(rec, table), "used": _value(p, table),
                        "alternative": _value(rec, table), "tables_used": n_used,
                        "tables_alternative": n_alt,
                        "note": str(rec.get("note", "") or p.get("note", "") or "")})
    return pd.DataFrame(out, columns=["table", "study_id", "row", "used", "alternative",
                                      "tables_used", "tables_alternative", "note"])


def _n_tables(rows: pd.DataFrame, discordant: int | None) -> float:
    """Compatible transition tables of a subgroup's rows (0 if contradictory, NaN if the
    rows do not define a table)."""
    from evidence.book.transitions import transition_bounds

    try:
        return float(transition_bounds(rows, discordant=discordant).n_tables)
    except IncompatibleReport:
        return 0.0
    except ValueError:
        return float("nan")


def describe_contradictions(contra: pd.DataFrame) -> str:
    """Plain-language account of the self-contradictions and their resolution."""
    if contra.empty:
        return "The source does not contradict itself in the numbers used here."
    n_notes = contra["note"].nunique()
    parts = [f"The registry keeps {plural(len(contra), 'number', 'numbers')} of this source "
             f"in two readings ({plural(n_notes, 'self-contradiction', 'self-contradictions')} "
             "of the source): the reading the analyses use and the *alternative*. The table "
             "below gives the registry's note on each: what contradicts what, and why the "
             "reading used was chosen.\n"]
    for r in contra.to_dict("records"):
        text = (f"- {md(r['row'])}: **{md(r['used'])}** is used; {md(r['alternative'])} is "
                "the alternative.")
        if not (isinstance(r["tables_alternative"], float)
                and math.isnan(r["tables_alternative"])):
            if r["tables_alternative"] == 0 and r["tables_used"] > 0:
                text += (" With the alternative, no transition table of counts can match the "
                         "other numbers the source reports; the reading used is consistent "
                         f"with {plural(int(r['tables_used']), 'table', 'tables')}.")
            else:
                text += (f" Tables consistent with the reading used: {int(r['tables_used'])}; "
                         f"with the alternative: {int(r['tables_alternative'])}.")
        parts.append(text)
    return "\n".join(parts)


def contradictions_table(contra: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`contradictions`."""
    import pandas as pd

    return pd.DataFrame({
        "Number": contra["row"],
        "Used": contra["used"],
        "Alternative": contra["alternative"],
        "How it was resolved (registry note)": contra["note"],
    })
