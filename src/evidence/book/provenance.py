"""Where every number comes from: the registry rendered for readers, and the software.

The *Study registry* chapter shows the registry as it is: study characteristics,
every count with its verbatim quote and source, the hazard ratios, the HER2
transition counts, the self-contradictions of the sources, and the outcome
vocabulary.  The *Reproducibility* chapter adds the versions of the software, and what
``evidence reproduce`` found when it ran the pooled analyses' R scripts
(``results/reproduce.json``, :mod:`evidence.book.reproduce`).

Registry text is untrusted: a label or quote may contain ``<script>`` or ``<b>``.
The display tables are therefore built as plain-text DataFrames by the pure
functions here and rendered by :func:`evidence.book.tables.html_table`, which escapes
every cell and every header (and builds DOI links from escaped, percent-encoded DOIs
only). Glue registry text into prose with ``{glue:text}``, never ``{glue:md}``.

The tables are read for a chapter by
:meth:`evidence.pipeline.context.AnalysisContext.registry_tables`, which records every
query, so that the runner re-runs the page whenever a registry row changes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from evidence.book.text import plural

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "RegistryTables",
    "contradiction_table",
    "count_table",
    "describe_registry",
    "describe_reproduction",
    "doi_url",
    "effects_table",
    "outcome_groups",
    "outcome_vocabulary",
    "read_report",
    "registry_counts",
    "reproduce_table",
    "reproduction_states",
    "study_characteristics",
    "transition_table",
    "version_table",
]

_DOI_RE = re.compile(r"^10\.[0-9]{4,9}/\S+$")
_ALTERNATIVE = " (alternative reading, not used)"


@dataclass(frozen=True)
class RegistryTables:
    """Every registry table as read for one analysis.

    Attributes
    ----------
    studies, outcomes, effects, transitions, outcome_types : pandas.DataFrame
        ``outcomes``/``effects``/``transitions`` hold both ``primary`` and
        ``alternative`` rows (column ``use``).
    sha256 : str
        Digest of the registry files (:func:`evidence.registry.store.registry_sha256`).
    """

    studies: pd.DataFrame
    outcomes: pd.DataFrame
    effects: pd.DataFrame
    transitions: pd.DataFrame
    outcome_types: pd.DataFrame
    sha256: str


def doi_url(doi: Any) -> str | None:
    """The resolver URL of a DOI.

    Parameters
    ----------
    doi : Any
        A registry ``doi`` cell.

    Returns
    -------
    str or None
        ``https://doi.org/<doi>`` (percent-encoded) for a string of the form
        ``10.<registrant>/<suffix>`` without spaces; None otherwise (empty, NaN,
        ``doi:`` prefixes, anything else).
    """
    if not isinstance(doi, str):
        return None
    doi = doi.strip()
    if not _DOI_RE.match(doi):
        return None
    return "https://doi.org/" + url_quote(doi, safe="/:;()._-")


# --------------------------------------------------------------------------- tables


def _labels(studies: pd.DataFrame) -> dict[str, str]:
    return dict(zip(studies["study_id"], studies["label"], strict=True))


def _order(studies: pd.DataFrame) -> dict[str, int]:
    ordered = studies.sort_values(["year", "label", "study_id"], kind="stable")
    return {sid: i for i, sid in enumerate(ordered["study_id"])}


def _sorted(rows: pd.DataFrame, studies: pd.DataFrame, *keys: str) -> pd.DataFrame:
    order = _order(studies)
    rows = rows.copy()
    rows["_study_order"] = rows["study_id"].map(order).fillna(len(order))
    rows["_use_order"] = (rows["use"] != "primary").astype(int) if "use" in rows else 0
    rows = rows.sort_values(["_study_order", *keys, "_use_order"], kind="stable")
    return rows.drop(columns=["_study_order", "_use_order"]).reset_index(drop=True)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value: Any) -> str:
    """A registry number as written (``0.62``, ``0.0011``); empty when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.6g}"


def _subgroup(value: Any) -> str:
    text = _text(value)
    return text if text else "whole population"


def study_characteristics(studies: pd.DataFrame) -> pd.DataFrame:
    """The study characteristics table, one row per study by year then label.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``studies.csv`` rows.

    Returns
    -------
    pandas.DataFrame
        Text columns: study (label), year, design, setting, tissue HER2, CTC assay,
        HER2 method, HER2 cut-off, intervention, citation, DOI.  Render with
        ``html_table(frame, links={"DOI": doi_url})`` to link the DOIs.
    """
    import pandas as pd

    s = studies.sort_values(["year", "label", "study_id"], kind="stable")
    return pd.DataFrame({
        "Study": s["label"].map(_text),
        "Year": s["year"].map(lambda y: str(int(y))),
        "Design": s["design"].map(_text),
        "Setting": s["setting"].map(_text),
        "Tissue HER2": s["tissue_her2"].map(_text),
        "CTC assay": s["ctc_assay"].map(_text),
        "HER2 method": s["her2_method"].map(_text),
        "HER2 cut-off": s["her2_cutoff"].map(_text),
        "Intervention": s["intervention"].map(_text),
        "Citation": s["citation"].map(_text),
        "DOI": s["doi"].map(_text),
    }).reset_index(drop=True)


def outcome_groups(outcome_types: pd.DataFrame) -> dict[str, str]:
    """Group headings for :func:`count_table`.

    Parameters
    ----------
    outcome_types : pandas.DataFrame
        ``outcome_types.csv`` rows.

    Returns
    -------
    dict of str to str
        Outcome -> ``"<outcome>: <description> Events: <events>; total: <total>."``.
    """
    return {r["outcome"]: (f"{r['outcome']}: {_text(r['description'])} Events: "
                           f"{_text(r['events'])}; total: {_text(r['total'])}.")
            for r in outcome_types.to_dict("records")}


def count_table(outcomes: pd.DataFrame, studies: pd.DataFrame,
                outcome_types: pd.DataFrame) -> pd.DataFrame:
    """Every count of ``outcomes.csv``, grouped by outcome (vocabulary order).

    Parameters
    ----------
    outcomes, studies, outcome_types : pandas.DataFrame
        The registry tables (``outcomes`` with both ``use`` values).

    Returns
    -------
    pandas.DataFrame
        Text columns ``Outcome`` (the group key, for
        ``html_table(group_by="Outcome")``), study, arm, subgroup, events / total,
        derived, quote, source.  Within an outcome, rows follow the studies' year and
        label; an alternative reading is marked and follows its primary row.
    """
    import pandas as pd

    labels = _labels(studies)
    vocab = {o: i for i, o in enumerate(outcome_types["outcome"])}
    rows = _sorted(outcomes, studies, "arm", "subgroup")
    rows["_outcome_order"] = rows["outcome"].map(vocab).fillna(len(vocab))
    rows = rows.sort_values("_outcome_order", kind="stable")
    return pd.DataFrame({
        "Outcome": rows["outcome"].map(_text),
        "Study": rows["study_id"].map(lambda s: labels.get(s, s)),
        "Arm": rows["arm"].map(_text),
        "Subgroup": rows["subgroup"].map(_subgroup),
        "Events / total": _readings("outcomes.csv", rows),
        **_source_columns(rows),
    }).reset_index(drop=True)


def effects_table(effects: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Every ratio estimate of ``effects.csv``.

    Parameters
    ----------
    effects, studies : pandas.DataFrame
        The registry tables.

    Returns
    -------
    pandas.DataFrame
        Text columns: study, outcome, comparison, subgroup, hazard ratio (95% CI),
        p, adjusted, derived, quote, source, note; numbers as the registry holds
        them (up to 6 significant digits).
    """
    import pandas as pd

    labels = _labels(studies)
    rows = _sorted(effects, studies, "outcome", "comparison", "subgroup", "adjusted")
    return pd.DataFrame({
        "Study": rows["study_id"].map(lambda s: labels.get(s, s)),
        "Outcome": rows["outcome"].map(_text),
        "Comparison": rows["comparison"].map(_text),
        "Subgroup": rows["subgroup"].map(_subgroup),
        "Hazard ratio (95% CI)": _readings("effects.csv", rows),
        "p": rows["p_value"].map(_number),
        "Adjusted": rows["adjusted"].map(_text),
        **_source_columns(rows),
        "Note": rows["note"].map(_text),
    }).reset_index(drop=True)


def transition_table(transitions: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Every HER2 category transition count of ``transitions.csv``.

    Parameters
    ----------
    transitions, studies : pandas.DataFrame
        The registry tables (``transitions`` with both ``use`` values).

    Returns
    -------
    pandas.DataFrame
        Text columns: study, subgroup, from, to, count, derived, quote, source;
        categories in the order zero, low, positive, ``any`` (a reported margin).
    """
    import pandas as pd

    labels = _labels(studies)
    cat = {"zero": 0, "low": 1, "positive": 2, "any": 3}
    rows = transitions.copy()
    rows["_from"] = rows["from_category"].map(cat).fillna(len(cat))
    rows["_to"] = rows["to_category"].map(cat).fillna(len(cat))
    rows = _sorted(rows, studies, "subgroup", "_from", "_to")
    return pd.DataFrame({
        "Study": rows["study_id"].map(lambda s: labels.get(s, s)),
        "Subgroup": rows["subgroup"].map(_subgroup),
        "From (primary tumor)": rows["from_category"].map(_text),
        "To (recurrence)": rows["to_category"].map(_text),
        "Count": _readings("transitions.csv", rows),
        **_source_columns(rows),
    }).reset_index(drop=True)


_KEYS: dict[str, tuple[str, ...]] = {
    "outcomes.csv": ("study_id", "arm", "outcome", "subgroup"),
    "transitions.csv": ("study_id", "subgroup", "from_category", "to_category"),
    "effects.csv": ("study_id", "outcome", "comparison", "subgroup", "adjusted"),
}


def _reading(table: str, row: Mapping[str, Any]) -> str:
    if table == "outcomes.csv":
        return f"{int(row['events'])} / {int(row['total'])}"
    if table == "transitions.csv":
        return str(int(row["count"]))
    text = _number(row["estimate"])
    if _number(row["ci_lower"]) and _number(row["ci_upper"]):
        text += f" ({_number(row['ci_lower'])} to {_number(row['ci_upper'])})"
    return text


def _readings(table: str, rows: pd.DataFrame) -> list[str]:
    """:func:`_reading` of every row, marked when it is the alternative reading."""
    return [_reading(table, r) + (_ALTERNATIVE if r.get("use", "primary") != "primary"
                                  else "")
            for r in rows.to_dict("records")]


def _source_columns(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """The provenance columns every registry table shows: derived, quote, source."""
    return {"Derived": rows["derived"].map(_text), "Quote": rows["quote"].map(_text),
            "Source": rows["source"].map(_text)}


def _what(table: str, row: Mapping[str, Any]) -> str:
    sub = _text(row.get("subgroup"))
    sub = f", {sub}" if sub else ""
    if table == "outcomes.csv":
        return f"{row['outcome']}, arm {row['arm']}{sub}"
    if table == "transitions.csv":
        return f"HER2 {row['from_category']} to {row['to_category']}{sub}"
    return f"{row['outcome']}, {row['comparison']}{sub}"


def contradiction_table(outcomes: pd.DataFrame, effects: pd.DataFrame,
                        transitions: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Each ``use=alternative`` row beside the primary reading it contradicts.

    Parameters
    ----------
    outcomes, effects, transitions, studies : pandas.DataFrame
        The registry tables, with both ``use`` values.

    Returns
    -------
    pandas.DataFrame
        Text columns: registry file, study, what (outcome or transition), the
        primary reading, the alternative reading, the alternative's quote and
        source, and the note explaining the contradiction and the choice.  The
        primary row is found by the file's key (``outcomes.csv``: study, arm,
        outcome, subgroup; ``transitions.csv``: study, subgroup, from, to;
        ``effects.csv``: study, outcome, comparison, subgroup, adjusted).
    """
    import pandas as pd

    labels = _labels(studies)
    out = []
    for table, frame in (("outcomes.csv", outcomes), ("transitions.csv", transitions),
                         ("effects.csv", effects)):
        if frame is None or frame.empty or "use" not in frame.columns:
            continue
        keys = _KEYS[table]
        frame = _sorted(frame, studies, *[k for k in keys if k != "study_id"])
        primary = {tuple(_text(r[k]) for k in keys): r
                   for r in frame[frame["use"] == "primary"].to_dict("records")}
        for r in frame[frame["use"] == "alternative"].to_dict("records"):
            p = primary.get(tuple(_text(r[k]) for k in keys))
            out.append({
                "Registry file": table,
                "Study": labels.get(r["study_id"], r["study_id"]),
                "What": _what(table, r),
                "Primary reading (used)": _reading(table, p) if p is not None else "—",
                "Alternative reading": _reading(table, r),
                "Alternative's quote": _text(r["quote"]),
                "Source": _text(r["source"]),
                "Note": _text(r.get("note")),
            })
    columns = ["Registry file", "Study", "What", "Primary reading (used)",
               "Alternative reading", "Alternative's quote", "Source", "Note"]
    return pd.DataFrame(out, columns=columns)


def outcome_vocabulary(outcome_types: pd.DataFrame) -> pd.DataFrame:
    """``outcome_types.csv`` for readers.

    Parameters
    ----------
    outcome_types : pandas.DataFrame
        The registry table.

    Returns
    -------
    pandas.DataFrame
        Columns outcome, events, total, description.
    """
    import pandas as pd

    return pd.DataFrame({
        "Outcome": outcome_types["outcome"].map(_text),
        "Events": outcome_types["events"].map(_text),
        "Total": outcome_types["total"].map(_text),
        "Description": outcome_types["description"].map(_text),
    }).reset_index(drop=True)


def registry_counts(tables: RegistryTables) -> dict[str, int]:
    """What the registry holds, counted.

    Parameters
    ----------
    tables : RegistryTables
        From :meth:`evidence.pipeline.context.AnalysisContext.registry_tables`.

    Returns
    -------
    dict of str to int
        ``studies``, ``counts`` (primary outcome rows), ``hazard_ratios``,
        ``transitions`` (primary rows), ``alternatives`` (in all three files) and
        ``outcomes`` (defined outcome names).
    """
    def n(frame: pd.DataFrame, use: str | None = None) -> int:
        if use is None:
            return len(frame)
        return int((frame["use"] == use).sum()) if "use" in frame.columns else 0

    return {
        "studies": n(tables.studies),
        "counts": n(tables.outcomes, "primary"),
        "hazard_ratios": n(tables.effects, "primary"),
        "transitions": n(tables.transitions, "primary"),
        "alternatives": (n(tables.outcomes, "alternative") + n(tables.effects, "alternative")
                         + n(tables.transitions, "alternative")),
        "outcomes": n(tables.outcome_types),
    }


def describe_registry(tables: RegistryTables) -> str:
    """What the registry holds, in one sentence for prose.

    Parameters
    ----------
    tables : RegistryTables
        From :meth:`evidence.pipeline.context.AnalysisContext.registry_tables`.

    Returns
    -------
    str
    """
    c = registry_counts(tables)
    return (f"The registry holds {plural(c['studies'], 'study', 'studies')}, "
            f"{plural(c['counts'], 'count', 'counts')} (events of a total) in "
            f"{plural(c['outcomes'], 'defined outcome', 'defined outcomes')}, "
            f"{plural(c['hazard_ratios'], 'hazard ratio', 'hazard ratios')} and "
            f"{plural(c['transitions'], 'HER2 transition count', 'HER2 transition counts')}"
            f", plus {plural(c['alternatives'], 'alternative reading', 'alternative readings')}"
            " of numbers on which a source contradicts itself.")


# --------------------------------------------------------------------------- software


def version_table(versions: Mapping[str, str]) -> pd.DataFrame:
    """Display table of :func:`evidence.pipeline.trail.dependency_versions`.

    Parameters
    ----------
    versions : mapping of str to str
        Name -> version.

    Returns
    -------
    pandas.DataFrame
        Columns ``Software`` and ``Version``.
    """
    import pandas as pd

    return pd.DataFrame({"Software": list(versions), "Version": list(versions.values())})


# --------------------------------------------------------------------------- R scripts


def read_report(paths: Sequence[Path]) -> dict[str, Any] | None:
    """``results/reproduce.json`` parsed (from the paths ``ctx.files`` found: none
    when ``evidence reproduce`` has not run), else None."""
    import json

    found = [p for p in paths if p.name == "reproduce.json"]
    return json.loads(found[0].read_text(encoding="utf-8")) if found else None


def _entries(report: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not report:
        return {}
    return {str(e.get("analysis_id")): e for e in report.get("analyses", [])}


def reproduction_states(report: Mapping[str, Any] | None,
                        current: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Analysis id -> what ``results/reproduce.json`` says of its R script now.

    ``ok`` and ``failed`` (some value differs) or ``error`` (the script failed) only for
    a comparison of exactly the current result and script
    (:func:`evidence.book.reproduce.result_digest`, the script regenerated from the
    result); ``out of date`` when either changed since, ``not checked`` when the report
    has no entry (or there is no report).
    """
    from evidence.book.reproduce import r_script, result_digest

    entries = _entries(report)
    out = {}
    for aid, result in current.items():
        entry = entries.get(aid)
        if entry is None:
            out[aid] = "not checked"
            continue
        script = r_script(result, f"{aid}.csv", aid).encode("utf-8")
        fresh = (entry.get("result_sha256") == result_digest(result)
                 and entry.get("script_sha256") == hashlib.sha256(script).hexdigest())
        out[aid] = str(entry.get("status")) if fresh else "out of date"
    return out


def _fmt_diff(x: Any) -> str:
    if x is None:
        return "—"
    return "0" if x == 0 else f"{float(x):.1e}"


def _fmt_value(x: Any) -> str:
    return "NA" if x is None else f"{float(x):.6g}"


def _verdict(state: str, entry: Mapping[str, Any] | None) -> str:
    if state == "ok":
        return "agrees"
    if state == "not checked":
        return "not checked: evidence reproduce has not run this script"
    if state == "out of date":
        return "out of date: the result or its script changed after evidence reproduce ran"
    entry = entry or {}
    if state == "error":
        return f"the script failed: {entry.get('error')}"
    items = [f"{m['fit']} {m['quantity']} (book {_fmt_value(m['book'])}, R "
             f"{_fmt_value(m['r'])})" for m in entry.get("mismatches", [])]
    shown = "; ".join(items[:3]) + ("; …" if len(items) > 3 else "")
    return f"differs in {plural(len(items), 'value', 'values')}: {shown}"


def reproduce_table(report: Mapping[str, Any] | None,
                    current: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per analysis with an R script: what was compared and the verdict.

    Parameters
    ----------
    report : mapping or None
        ``results/reproduce.json`` (None: ``evidence reproduce`` has not run).
    current : mapping
        Analysis id -> its current result JSON, for every script of this build.

    Returns
    -------
    pandas.DataFrame
        Plain-text display table; its verdict is ``agrees`` only for a comparison of
        exactly these results and scripts that found every value within tolerance
        (:func:`reproduction_states`).
    """
    import pandas as pd

    from evidence.book.parity import GLMM_TOLERANCE, RMA_TOLERANCE

    entries = _entries(report)
    states = reproduction_states(report, current)
    rma = f"Largest relative difference, rma (tolerance {RMA_TOLERANCE:.0e})"
    glmm = f"Largest relative difference, GLMM (tolerance {GLMM_TOLERANCE:.0e})"
    rows = []
    for aid, state in states.items():
        entry = entries.get(aid) or {}
        largest = entry.get("largest") or {}
        versions = entry.get("versions") or {}
        fresh = state in ("ok", "failed")
        rows.append({
            "Analysis": aid,
            "Fits": ", ".join(entry.get("fits", [])) if fresh else "—",
            "Values compared": f"{entry.get('compared', 0):,}" if fresh else "—",
            rma: _fmt_diff((largest.get("rma") or {}).get("difference")) if fresh else "—",
            glmm: _fmt_diff((largest.get("glmm") or {}).get("difference")) if fresh else "—",
            "R / metafor": (f"{versions.get('R', '?')} / {versions.get('metafor', '?')}"
                            if versions and state != "out of date" else "—"),
            "Verdict": _verdict(state, entry),
        })
    return pd.DataFrame(rows, columns=["Analysis", "Fits", "Values compared", rma, glmm,
                                       "R / metafor", "Verdict"])


def describe_reproduction(report: Mapping[str, Any] | None,
                          current: Mapping[str, Mapping[str, Any]]) -> str:
    """The comparison with R in a few sentences (Markdown; every variable part escaped).

    Says that R has not been run when ``report`` is None, and that the scripts agree
    only when every current script was compared as it is now and agreed
    (:func:`reproduction_states`).
    """
    from evidence.book.parity import GLMM_TOLERANCE, RMA_TOLERANCE
    from evidence.book.text import escape_markdown

    how = ("To check, with R and its packages metafor and lme4 installed: run "
           "`evidence build`, then `evidence reproduce` (it runs every script with Rscript, "
           "compares its output with the book's results and writes "
           "`results/reproduce.json`), then `evidence build` again to show the comparison "
           "here.")
    n = len(current)
    if n == 0:
        return "No analysis of this build has an R script."
    if report is None:
        return ("This build did not run the R scripts, so it makes no claim that R "
                f"reproduces the {plural(n, 'analysis', 'analyses')} below. " + how)
    entries = _entries(report)
    states = reproduction_states(report, current)
    if all(s == "ok" for s in states.values()):
        total = sum(int(entries[a].get("compared", 0)) for a in current)
        worst = {kind: max((((entries[a].get("largest") or {}).get(kind) or {})
                            .get("difference") or 0.0) for a in current)
                 for kind in ("rma", "glmm")}
        versions = entries[next(iter(current))].get("versions") or {}
        subject = "The R script reproduces" if n == 1 else f"All {n:,} R scripts reproduce"
        return (f"{subject} the book's numbers with metafor "
                f"{escape_markdown(str(versions.get('metafor', '?')))} (R "
                f"{escape_markdown(str(versions.get('R', '?')))}): {total:,} values compared, "
                f"the largest relative difference {_fmt_diff(worst['rma'])} for the rma "
                f"fits, counts and exact intervals (tolerance {RMA_TOLERANCE:.0e}) and "
                f"{_fmt_diff(worst['glmm'])} for the GLMM (tolerance {GLMM_TOLERANCE:.0e}).")
    parts = []
    for label, wanted in (("do not reproduce the book's numbers", ("failed", "error")),
                          ("were compared with older results or scripts", ("out of date",)),
                          ("have not been run", ("not checked",))):
        ids = [escape_markdown(a) for a, s in states.items() if s in wanted]
        if ids:
            parts.append(f"{len(ids)} of {n} {label} ({', '.join(ids)})")
    return ("Not every R script reproduces this build's numbers: " + "; ".join(parts)
            + ". The table says why. " + how)
