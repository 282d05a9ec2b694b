"""Versions of the living review: what a release records, and each estimate across releases.

A release (``evidence release VERSION``) writes ``versions/VERSION.json``, a *record* of
the published state made by :func:`snapshot` from the analyses' results and the registry:

- ``registry_sha256``: the digest of every registry file;
- ``last_search``: the date of the last identification search (``searches.csv``);
- ``studies``: per study its label and, per registry table holding rows of it
  (:data:`evidence.pipeline.context.STUDY_TABLES`), the number of its rows and a digest
  of them (:func:`study_digests`): a study is *corrected* when a digest differs;
- ``analyses``: per analysis its title, the studies it includes and, where it pools,
  ``k``, participants, the estimate with its confidence and prediction intervals, the
  certainty of the evidence (a GRADE level, when an analysis or the summary of findings
  gives one) and its key sentences (``claims``, when a result lists them).

The What's new page and ``evidence diff`` compare a record with the current build
(:mod:`evidence.book.changes`); the Version history page lists every record and draws
each pooled estimate across them (:func:`history_series`,
:func:`evidence.book.figures.history.estimate_history`).  Nothing here reads a clock:
the same inputs give the same record.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_pct, plural
from evidence.stats.vocabulary import DIFFERENCE_MEASURES, PROPORTION_MEASURES, RATIO_MEASURES

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ABSTRACT_ID",
    "GRADE_LEVELS",
    "LIVING_TEMPLATES",
    "RECORD_FORMAT",
    "SUMMARY_ID",
    "HistoryPoint",
    "HistorySeries",
    "analysis_claims",
    "analysis_entries",
    "analysis_entry",
    "certainty_of",
    "describe_history",
    "fmt_estimate",
    "history_figure",
    "history_series",
    "history_table",
    "last_search",
    "latest",
    "parse_version",
    "read_records",
    "release_table",
    "result_studies",
    "row_digest",
    "scale_of",
    "snapshot",
    "study_digests",
]

#: The four levels of GRADE certainty, from highest to lowest.
GRADE_LEVELS: tuple[str, ...] = ("high", "moderate", "low", "very low")
#: Templates whose analyses describe the versions themselves: never part of a record.
LIVING_TEMPLATES: tuple[str, ...] = ("whats_new", "version_history")
#: The analysis whose rows may give each analysis's certainty (``results/summary.json``).
SUMMARY_ID = "summary"
#: The analysis whose ``claims`` give each analysis's key sentences (``results/abstract.json``).
ABSTRACT_ID = "abstract"
#: Layout of a record (``format``); a reader refuses a record of another format.
RECORD_FORMAT = 1

_VERSION = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
#: Result lists whose rows name the studies an analysis includes, in order of preference.
_STUDY_LISTS: tuple[str, ...] = ("studies", "effects", "trials")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.10.0"`` → ``(1, 10, 0)``: a version is MAJOR.MINOR.PATCH, three numbers
    without leading zeros, and versions order by these numbers.

    Raises
    ------
    ValueError
        Anything else, with what a version looks like.
    """
    match = _VERSION.fullmatch(str(text))
    if match is None:
        raise ValueError(f"version {text!r} is not MAJOR.MINOR.PATCH (three whole numbers "
                         "without leading zeros, e.g. 1.0.0)")
    return int(match[1]), int(match[2]), int(match[3])


# --------------------------------------------------------------------------- studies


def _cell(value: Any) -> str | None:
    """A registry cell as text, the same whatever the column's dtype (``3`` and ``3.0``
    read alike; empty and missing are absent)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    text = str(value)
    return text if text != "" else None


def row_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 of one registry row: its non-empty cells by column name, so that a column
    added to a file (empty for every row), the order of the columns or a column's dtype
    leaves it unchanged, and any changed cell changes it."""
    cells = sorted((str(k), v) for k, v in ((k, _cell(v)) for k, v in row.items())
                   if v is not None)
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def study_digests(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """Per study (of ``studies``, and any other study that has rows): its label and, per
    table holding rows of it, ``{"rows": n, "sha256": ...}`` over the row digests sorted
    (the order of rows in a file is not a correction).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Registry tables by name, each with a ``study_id`` column
        (:meth:`evidence.pipeline.context.AnalysisContext.study_rows`).

    Returns
    -------
    dict
        By study id, sorted.
    """
    digests: dict[str, dict[str, list[str]]] = {}
    for name in sorted(tables):
        frame = tables[name]
        if "study_id" not in frame.columns:
            continue
        for row in frame.to_dict("records"):
            sid = _cell(row.get("study_id"))
            if sid is not None:
                digests.setdefault(sid, {}).setdefault(name, []).append(row_digest(row))
    labels: dict[str, str] = {}
    studies = tables.get("studies")
    if studies is not None and "label" in studies.columns:
        labels = {str(s): str(lab) for s, lab in zip(studies["study_id"], studies["label"],
                                                      strict=True)}
    out: dict[str, dict[str, Any]] = {}
    for sid in sorted(digests):
        per = {name: {"rows": len(rows), "sha256": hashlib.sha256(
                   "\n".join(sorted(rows)).encode()).hexdigest()}
               for name, rows in sorted(digests[sid].items())}
        out[sid] = {"label": labels.get(sid, sid), "tables": per}
    return out


def last_search(searches: pd.DataFrame) -> str | None:
    """The date of the last identification search (``YYYY-MM-DD``), or None when the
    registry logs none (:func:`evidence.book.selection.last_search_date`)."""
    from evidence.book.selection import last_search_date

    if searches is None or searches.empty:
        return None
    try:
        return last_search_date(searches)
    except ValueError:
        return None


# --------------------------------------------------------------------------- analyses


def scale_of(measure: str | None) -> str:
    """``"proportion"``, ``"ratio"``, ``"difference"`` or ``"number"``: how an estimate of
    that measure is read (a ratio's null value is 1, a difference's 0)."""
    if measure in PROPORTION_MEASURES:
        return "proportion"
    if measure in RATIO_MEASURES:
        return "ratio"
    if measure in DIFFERENCE_MEASURES:
        return "difference"
    return "number"


def fmt_estimate(value: float | None, scale: str) -> str:
    """An estimate as the book writes it on its scale: ``12.8%`` or ``0.36``."""
    return fmt_pct(value) if scale == "proportion" else fmt_num(value, 2)


def fmt_interval(lower: float | None, upper: float | None, scale: str) -> str:
    """An interval on its scale: ``4.1% to 33.5%`` or ``0.12 to 1.05``."""
    if scale == "proportion":
        return fmt_ci(lower, upper)
    return fmt_ci(lower, upper, pct=False, digits=2)


def result_studies(result: Mapping[str, Any]) -> list[str]:
    """The studies an analysis includes, sorted: the ``study_id`` of the rows of its
    ``studies`` list (the pooled studies), else of its ``effects`` or ``trials``, else
    its own ``study_id`` (a one-study analysis); none for analyses of analyses."""
    for key in _STUDY_LISTS:
        rows = result.get(key)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            ids = {str(r["study_id"]) for r in rows if r.get("study_id")}
            if ids:
                return sorted(ids)
    sid = result.get("study_id")
    return [str(sid)] if isinstance(sid, str) and sid else []


def _level(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("level")
    if isinstance(value, str) and value.strip().lower() in GRADE_LEVELS:
        return value.strip().lower()
    return None


def certainty_of(analysis_id: str, title: str, result: Mapping[str, Any],
                 summary: Mapping[str, Any] | None = None) -> str | None:
    """The GRADE certainty of an analysis: its result's ``certainty`` (a level, or a dict
    with a ``level``), else the summary's ``certainty`` for this analysis id (the summary
    of findings' final judgement), else the one level the summary gives the rows of this
    analysis (matched by ``analysis_id``, or by title when rows carry no id), else None.
    Text that is not a GRADE level (the summary's rule-based notes) is not a certainty."""
    own = _level(result.get("certainty"))
    if own is not None:
        return own
    by_id = (summary or {}).get("certainty")
    if isinstance(by_id, Mapping) and _level(by_id.get(analysis_id)) is not None:
        return _level(by_id.get(analysis_id))
    rows = (summary or {}).get("rows") or []
    mine = [r for r in rows if isinstance(r, dict)
            and (r.get("analysis_id") == analysis_id
                 or ("analysis_id" not in r and r.get("analysis") == title))]
    levels = {_level(r.get("certainty")) for r in mine} - {None}
    return levels.pop() if len(levels) == 1 else None


def analysis_claims(analysis_id: str, abstract: Mapping[str, Any] | None) -> list[str] | None:
    """The key sentences the abstract's result gives an analysis: its ``claims`` are
    ``"<analysis id>: <sentence>"``; None when the abstract lists none for it."""
    claims = (abstract or {}).get("claims")
    if not isinstance(claims, list):
        return None
    prefix = f"{analysis_id}: "
    mine = [str(c)[len(prefix):] for c in claims if str(c).startswith(prefix)]
    return mine or None


def analysis_entry(analysis_id: str, result: Mapping[str, Any], *, title: str,
                   template: str, summary: Mapping[str, Any] | None = None,
                   abstract: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a record keeps of one analysis (see the module docstring); the pooled
    fields are None for an analysis that pools nothing. Its key sentences are its
    result's ``claims``, else those the abstract gives it (:func:`analysis_claims`)."""
    pooled = result.get("pooled") if isinstance(result.get("pooled"), dict) else None
    measure = result.get("measure")
    claims = result.get("claims")
    if analysis_id != ABSTRACT_ID and not isinstance(claims, list):
        claims = analysis_claims(analysis_id, abstract)
    entry: dict[str, Any] = {
        "title": title, "template": template, "outcome": result.get("outcome"),
        "measure": measure, "scale": scale_of(measure), "method": result.get("method"),
        "test": result.get("test"),
        "k": int(result["k"]) if pooled is not None and result.get("k") is not None else None,
        "participants": (int(result["patients"]) if pooled is not None
                         and result.get("patients") is not None else None),
    }
    for name in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper"):
        value = pooled.get(name) if pooled is not None else None
        entry[name] = None if value is None or not math.isfinite(float(value)) else float(value)
    entry["certainty"] = certainty_of(analysis_id, title, result, summary)
    entry["claims"] = [str(c) for c in claims] if isinstance(claims, list) else None
    entry["studies"] = result_studies(result)
    return entry


def analysis_entries(results: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str],
                     templates: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """:func:`analysis_entry` of every result, in the order given, leaving out the
    analyses of :data:`LIVING_TEMPLATES`; certainty may come from the result of
    :data:`SUMMARY_ID`."""
    summary = results.get(SUMMARY_ID)
    abstract = results.get(ABSTRACT_ID)
    return {aid: analysis_entry(aid, res, title=titles.get(aid, aid),
                                template=templates.get(aid, ""), summary=summary,
                                abstract=abstract)
            for aid, res in results.items() if templates.get(aid) not in LIVING_TEMPLATES}


def snapshot(results: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str],
             templates: Mapping[str, str], tables: Mapping[str, pd.DataFrame], *,
             registry_sha256: str, last_search: str | None) -> dict[str, Any]:
    """The state of the book a release records (and the What's new page compares).

    Parameters
    ----------
    results : mapping
        Result JSONs by analysis id, without their trail (as
        :meth:`evidence.pipeline.context.AnalysisContext.result` returns them).
    titles, templates : mapping
        Each analysis's title and template (``analyses.yml``).
    tables : mapping
        The registry rows of every study (:func:`study_digests`).
    registry_sha256 : str
        The digest of the registry files.
    last_search : str or None
        The date of the last identification search (:func:`last_search`).
    """
    return {"registry_sha256": registry_sha256, "last_search": last_search,
            "studies": study_digests(tables),
            "analyses": analysis_entries(results, titles, templates)}


# --------------------------------------------------------------------------- records


def read_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The release records in ``paths`` (``versions/*.json``), oldest version first.

    Raises
    ------
    ValueError
        A file that is not a record of :data:`RECORD_FORMAT`, or whose ``version`` is not
        its file name, named with the problem.
    """
    records = []
    for path in map(Path, paths):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable release record ({exc})") from exc
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            raise ValueError(f"{path}: format: a release record of format {RECORD_FORMAT} "
                             "was expected")
        if record.get("version") != path.stem:
            raise ValueError(f"{path}: version: {record.get('version')!r} differs from the "
                             f"file name {path.stem!r}")
        parse_version(path.stem)
        for key in ("date", "note", "studies", "analyses"):
            if key not in record:
                raise ValueError(f"{path}: {key}: missing")
        records.append(record)
    return sorted(records, key=lambda r: parse_version(r["version"]))


def latest(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The record of the highest version, or None when nothing was released."""
    if not records:
        return None
    return dict(max(records, key=lambda r: parse_version(r["version"])))


def release_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Display table of the releases, newest first: version, date, last search, studies
    and note."""
    import pandas as pd

    rows = [{"Version": r["version"], "Released": r.get("date", ""),
             "Last search": r.get("last_search") or "not logged",
             "Studies": len(r.get("studies", {})), "Note": r.get("note", "")}
            for r in sorted(records, key=lambda r: parse_version(r["version"]), reverse=True)]
    return pd.DataFrame(rows, columns=["Version", "Released", "Last search", "Studies",
                                       "Note"])


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryPoint:
    """One estimate of one analysis: in a release (``version``) or in this build
    (``version`` None)."""

    version: str | None
    k: int | None
    estimate: float
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class HistorySeries:
    """The estimates of one pooled analysis across the releases, oldest first, and the
    current build's when it differs from the latest release's."""

    analysis_id: str
    title: str
    scale: str
    measure: str | None
    points: tuple[HistoryPoint, ...]
    current: HistoryPoint | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        from dataclasses import asdict

        return asdict(self)


def _point(version: str | None, entry: Mapping[str, Any]) -> HistoryPoint | None:
    if entry.get("estimate") is None:
        return None
    return HistoryPoint(version, entry.get("k"), float(entry["estimate"]),
                        entry.get("ci_lower"), entry.get("ci_upper"))


def _same_point(a: HistoryPoint, b: HistoryPoint) -> bool:
    def close(x: float | None, y: float | None) -> bool:
        if x is None or y is None:
            return x is y
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)

    return (a.k == b.k and close(a.estimate, b.estimate) and close(a.ci_lower, b.ci_lower)
            and close(a.ci_upper, b.ci_upper))


def history_series(records: Sequence[Mapping[str, Any]],
                   current: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> list[HistorySeries]:
    """Per pooled analysis (an estimate from two or more studies in some release or in
    this build) its estimates across the releases, oldest first.

    Parameters
    ----------
    records : sequence of dict
        Release records (:func:`read_records`).
    current : mapping, optional
        This build's analysis entries (:func:`analysis_entries`); its point is kept
        when it differs from the latest release's (or the analysis is new).

    Returns
    -------
    list of HistorySeries
        In the order of this build's analyses, then analyses no longer in the book.
    """
    ordered = sorted(records, key=lambda r: parse_version(r["version"]))
    current = current or {}
    ids = list(current) + [aid for r in ordered for aid in r.get("analyses", {})]
    out = []
    for aid in dict.fromkeys(ids):
        entries = [(r["version"], r["analyses"][aid]) for r in ordered
                   if aid in r.get("analyses", {})]
        now = current.get(aid)
        pooled = [e for _, e in entries] + ([now] if now else [])
        if not any((e.get("k") or 0) >= 2 and e.get("estimate") is not None for e in pooled):
            continue
        points = tuple(p for p in (_point(v, e) for v, e in entries) if p is not None)
        here = _point(None, now) if now else None
        last = entries[-1][0] if entries else None
        if here is not None and points and points[-1].version == last \
                and _same_point(points[-1], here):
            here = None
        ref = now or entries[-1][1]
        out.append(HistorySeries(aid, str(ref.get("title", aid)), str(ref.get("scale")),
                                 ref.get("measure"), points, here))
    return out


def history_table(series: Sequence[HistorySeries]) -> pd.DataFrame:
    """Display table: one row per pooled analysis, one column per release (and this build
    when it differs), each cell the estimate with its 95% CI and k."""
    import pandas as pd

    versions = list(dict.fromkeys(p.version for s in series for p in s.points))
    versions.sort(key=lambda v: parse_version(str(v)))
    with_current = any(s.current is not None for s in series)
    rows = []
    for s in series:
        cells = {p.version: p for p in s.points}
        row: dict[str, str] = {"Analysis": s.title}
        for v in versions:
            row[str(v)] = _cell_text(cells.get(v), s.scale)
        if with_current:
            row["This build (not released)"] = (_cell_text(s.current, s.scale)
                                                if s.current is not None else "as released")
        rows.append(row)
    columns = ["Analysis", *map(str, versions)] + (["This build (not released)"]
                                                    if with_current else [])
    return pd.DataFrame(rows, columns=columns)


def _cell_text(point: HistoryPoint | None, scale: str) -> str:
    if point is None:
        return "—"
    k = f"; k = {point.k}" if point.k is not None else ""
    return (f"{fmt_estimate(point.estimate, scale)} "
            f"({fmt_interval(point.ci_lower, point.ci_upper, scale)}{k})")


def describe_history(records: Sequence[Mapping[str, Any]],
                     series: Sequence[HistorySeries]) -> str:
    """The paragraph that opens the Version history page (Markdown), chosen by how many
    releases there are and whether this build differs from the latest."""
    if not records:
        return ("No version of this review has been released yet. A release "
                "(`evidence release VERSION --note TEXT`) records the published state in "
                "`versions/`; this page then lists every release and shows how each pooled "
                "estimate moved from one to the next.")
    ordered = sorted(records, key=lambda r: parse_version(r["version"]))
    first, last = ordered[0], ordered[-1]
    if len(ordered) == 1:
        text = (f"One version has been released: {escape_markdown(first['version'])}, on "
                f"{escape_markdown(str(first['date']))}.")
    else:
        text = (f"{plural(len(ordered), 'version', 'versions')} have been released, the "
                f"first ({escape_markdown(first['version'])}) on "
                f"{escape_markdown(str(first['date']))} and the latest "
                f"({escape_markdown(last['version'])}) on "
                f"{escape_markdown(str(last['date']))}.")
    moved = [s for s in series if s.current is not None]
    text += (f" The figure draws each pooled estimate with its 95% confidence interval in "
             f"every release ({plural(len(series), 'analysis', 'analyses')}), oldest first: "
             "a cumulative view of the evidence as the review was updated.")
    if moved:
        text += (f" This build differs from release {escape_markdown(last['version'])} in "
                 f"{plural(len(moved), 'estimate', 'estimates')}, drawn as an open circle "
                 "(not yet released).")
    else:
        text += f" This build's estimates are those of release {escape_markdown(last['version'])}."
    return text


def history_figure(series: Sequence[HistorySeries]) -> Any:
    """The figure of the Version history page
    (:func:`evidence.book.figures.history.estimate_history`), or a panel saying there is
    no pooled estimate yet."""
    from evidence.book.figures.history import estimate_history
    from evidence.book.figures.posterior import nothing_pooled

    if not series:
        return nothing_pooled("No pooled estimate to draw yet.")
    return estimate_history(series)
