"""What changed since a release: the What's new page and ``evidence diff``.

:func:`compare` sets a release record against the current build (both made by
:func:`evidence.book.versions.snapshot`):

- **studies** added, removed or corrected, by the digests of their registry rows (a
  corrected study names the tables whose rows changed);
- **analyses** new, removed or changed: ``k``, the estimate, its confidence and
  prediction intervals, the certainty, the studies included and the key sentences
  (``claims``);
- **readings**: the changes that alter how an estimate reads, each a sentence chosen by
  the numbers: a confidence interval that now excludes (or includes) the null value of
  its measure (1 for a ratio, 0 for a difference) or the previous estimate, a certainty
  level that changed, a key sentence added or removed, an outcome now (or no longer)
  pooled.

The page (:func:`describe_diff`, :func:`study_changes_table`,
:func:`analysis_changes_table`) and the terminal (:func:`diff_text`) show the same items,
made by the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown, plural
from evidence.book.versions import fmt_estimate, fmt_interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AnalysisChange",
    "StudyChange",
    "VersionDiff",
    "analysis_changes_table",
    "analysis_summary",
    "compare",
    "describe_diff",
    "diff_text",
    "show_analyses",
    "show_studies",
    "study_changes_table",
    "study_summary",
    "title_suffix",
    "version_label",
]

#: Null value of each scale: a confidence interval that crosses it changes the reading.
NULL_VALUES: dict[str, float] = {"ratio": 1.0, "difference": 0.0}
_NULL_WORDS: dict[str, str] = {"ratio": "1 (no difference)", "difference": "0 (no difference)"}
_TABLE_WORDS: dict[str, tuple[str, str]] = {
    "studies": ("study row", "study rows"), "outcomes": ("count", "counts"),
    "effects": ("ratio estimate", "ratio estimates"),
    "transitions": ("transition row", "transition rows"),
    "harms": ("harms row", "harms rows"),
    "risk_of_bias": ("risk-of-bias judgement", "risk-of-bias judgements"),
    "screening": ("screening record", "screening records"),
}
_REL_TOL = 1e-9


@dataclass(frozen=True)
class StudyChange:
    """One study added, removed or corrected: ``tables`` lists, per registry table whose
    rows of it changed, ``(table, rows before, rows after)``."""

    study_id: str
    label: str
    kind: str  # "added", "removed", "corrected"
    tables: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class AnalysisChange:
    """One analysis new, removed or changed since the release; ``before`` and ``after``
    are its record entries (:func:`evidence.book.versions.analysis_entry`), ``readings``
    the sentences saying how its reading changed."""

    analysis_id: str
    title: str
    kind: str  # "new", "removed", "changed"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    studies_added: tuple[str, ...]
    studies_removed: tuple[str, ...]
    readings: tuple[str, ...]


@dataclass(frozen=True)
class VersionDiff:
    """The current build against a release (``against`` None: nothing released yet)."""

    against: str | None
    against_date: str | None
    registry_before: str | None
    registry_after: str
    last_search_before: str | None
    last_search_after: str | None
    studies: tuple[StudyChange, ...]
    analyses: tuple[AnalysisChange, ...]
    #: Label of every study an analysis change names (now, or in the release).
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything differs from the release (always True before the first)."""
        return (self.against is None or bool(self.studies) or bool(self.analyses)
                or self.registry_before != self.registry_after
                or self.last_search_before != self.last_search_after)

    @property
    def readings(self) -> list[tuple[str, str]]:
        """``(analysis title, sentence)`` of every change of reading."""
        return [(a.title, r) for a in self.analyses for r in a.readings]

    def count(self, kind: str) -> int:
        """Number of studies of that kind of change."""
        return sum(1 for s in self.studies if s.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the What's new result)."""
        out = asdict(self)
        out["changed"] = self.changed
        return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-12)


def _inside(value: float, lower: float | None, upper: float | None) -> bool | None:
    if lower is None or upper is None:
        return None
    return lower <= value <= upper


def _readings(before: Mapping[str, Any], after: Mapping[str, Any], version: str) -> list[str]:
    """The sentences that say how an analysis reads differently from release ``version``."""
    out: list[str] = []
    scale = str(after.get("scale"))
    k0, k1 = before.get("k") or 0, after.get("k") or 0
    if k0 < 2 <= k1:
        out.append(f"Now pooled from {plural(k1, 'study', 'studies')} (in {version}: "
                   f"{'one study, not pooled' if k0 == 1 else 'no estimate'}).")
    elif k1 < 2 <= k0:
        out.append(f"No longer pooled: {plural(k1, 'study', 'studies')} now "
                   f"(in {version}: {k0}).")
    lo0, hi0 = before.get("ci_lower"), before.get("ci_upper")
    lo1, hi1 = after.get("ci_lower"), after.get("ci_upper")
    now = fmt_interval(lo1, hi1, scale)
    null = NULL_VALUES.get(scale)
    if null is not None:
        was_in, is_in = _inside(null, lo0, hi0), _inside(null, lo1, hi1)
        if was_in is True and is_in is False:
            out.append(f"The 95% CI ({now}) now excludes {_NULL_WORDS[scale]}, which it "
                       f"included in {version}.")
        elif was_in is False and is_in is True:
            out.append(f"The 95% CI ({now}) now includes {_NULL_WORDS[scale]}, which it "
                       f"excluded in {version}.")
    estimate = before.get("estimate")
    if estimate is not None and _inside(float(estimate), lo1, hi1) is False:
        out.append(f"The 95% CI ({now}) no longer contains the estimate of {version} "
                   f"({fmt_estimate(estimate, scale)}).")
    c0, c1 = before.get("certainty"), after.get("certainty")
    if c0 != c1 and (c0 or c1):
        out.append(f"Certainty of the evidence: {c1 or 'not assessed'} (in {version}: "
                   f"{c0 or 'not assessed'}).")
    claims0, claims1 = before.get("claims") or [], after.get("claims") or []
    out += [f"Key sentence no longer made: “{c}”" for c in claims0 if c not in claims1]
    out += [f"New key sentence: “{c}”" for c in claims1 if c not in claims0]
    return out


_COMPARED = ("k", "participants", "estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper",
             "certainty", "claims", "studies", "measure", "method", "test")


def _entry_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    for key in _COMPARED:
        a, b = before.get(key), after.get(key)
        if isinstance(a, float) or isinstance(b, float):
            if not _close(a, b):
                return True
        elif a != b:
            return True
    return False


def compare(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> VersionDiff:
    """The current build (a :func:`evidence.book.versions.snapshot`) against a release
    record (None before the first release: nothing is listed as changed).

    Returns
    -------
    VersionDiff
        Studies in id order; analyses in the current build's order, removed ones last.
    """
    if previous is None:
        return VersionDiff(None, None, None, str(current["registry_sha256"]), None,
                           current.get("last_search"), (), ())
    version = str(previous["version"])
    before_s, after_s = previous.get("studies", {}), current.get("studies", {})
    studies = []
    for sid in sorted(set(before_s) | set(after_s)):
        b, a = before_s.get(sid), after_s.get(sid)
        label = str((a or b or {}).get("label", sid))
        tb, ta = (b or {}).get("tables", {}), (a or {}).get("tables", {})
        changed = tuple((t, int(tb.get(t, {}).get("rows", 0)), int(ta.get(t, {}).get("rows", 0)))
                        for t in sorted(set(tb) | set(ta))
                        if tb.get(t, {}).get("sha256") != ta.get(t, {}).get("sha256"))
        if b is None:
            studies.append(StudyChange(sid, label, "added", changed))
        elif a is None:
            studies.append(StudyChange(sid, label, "removed", changed))
        elif changed or b.get("label") != a.get("label"):
            studies.append(StudyChange(sid, label, "corrected", changed))
    before_a, after_a = previous.get("analyses", {}), current.get("analyses", {})
    analyses = []
    for aid in list(after_a) + [a for a in before_a if a not in after_a]:
        b, a = before_a.get(aid), after_a.get(aid)
        title = str((a or b or {}).get("title", aid))
        if b is None:
            analyses.append(AnalysisChange(aid, title, "new", None, dict(a), (), (),
                                           ("New in this version.",)))
        elif a is None:
            analyses.append(AnalysisChange(aid, title, "removed", dict(b), None, (), (),
                                           ("No longer in the book.",)))
        elif _entry_changed(b, a):
            s0, s1 = set(b.get("studies") or []), set(a.get("studies") or [])
            analyses.append(AnalysisChange(aid, title, "changed", dict(b), dict(a),
                                           tuple(sorted(s1 - s0)), tuple(sorted(s0 - s1)),
                                           tuple(_readings(b, a, version))))
    named = {s for a in analyses for s in (*a.studies_added, *a.studies_removed)}
    labels = {sid: str((after_s.get(sid) or before_s.get(sid) or {}).get("label", sid))
              for sid in sorted(named)}
    return VersionDiff(version, str(previous.get("date")), previous.get("registry_sha256"),
                       str(current["registry_sha256"]), previous.get("last_search"),
                       current.get("last_search"), tuple(studies), tuple(analyses), labels)


# --------------------------------------------------------------------------- words


def version_label(diff: VersionDiff) -> str:
    """The version the book shows (landing page): ``1.0.0 (released 2026-12-02)``, with
    ``and changes not yet released`` when this build differs; ``not yet released``
    before the first release."""
    if diff.against is None:
        return "not yet released"
    text = f"{diff.against} (released {diff.against_date})"
    return text + ", with changes not yet released" if diff.changed else text


def title_suffix(diff: VersionDiff) -> str:
    """What the title bar adds to the book's title: the version and the last search."""
    version = ("not yet released" if diff.against is None
               else f"version {diff.against}" + ("+" if diff.changed else ""))
    search = (f"searches to {diff.last_search_after}" if diff.last_search_after
              else "no search logged")
    return f"{version}, {search}"


def _rows(n: int, table: str) -> str:
    one, many = _TABLE_WORDS.get(table, (f"{table} row", f"{table} rows"))
    return plural(n, one, many)


def study_summary(change: StudyChange) -> str:
    """What changed in a study's rows, in words (``2 counts (were 1), 1 screening
    record``)."""
    parts = []
    for table, before, after in change.tables:
        if change.kind == "added" or before == 0:
            parts.append(_rows(after, table) + (" added" if change.kind != "added" else ""))
        elif change.kind == "removed" or after == 0:
            parts.append(_rows(before, table) + " removed")
        elif before == after:
            parts.append(f"{_rows(after, table)}, edited")
        else:
            parts.append(f"{_rows(after, table)} (were {before})")
    if not parts:
        return "label changed"
    return "; ".join(parts)


def _estimate(entry: Mapping[str, Any] | None) -> str:
    if entry is None or entry.get("estimate") is None:
        return "no estimate"
    scale = str(entry.get("scale"))
    text = (f"{fmt_estimate(entry['estimate'], scale)} "
            f"({fmt_interval(entry.get('ci_lower'), entry.get('ci_upper'), scale)})")
    return text + (f", k = {entry['k']}" if entry.get("k") is not None else "")


def analysis_summary(change: AnalysisChange, labels: Mapping[str, str] | None = None
                     ) -> tuple[str, str, str, str]:
    """``(before, after, certainty, studies)`` of an analysis change, in words: the
    estimate with its 95% CI and k before and now, the certainty, and the studies that
    entered or left it (by their ``labels``, :attr:`VersionDiff.labels`)."""
    labels = labels or {}
    before, after = _estimate(change.before), _estimate(change.after)
    c0 = (change.before or {}).get("certainty") or "not assessed"
    c1 = (change.after or {}).get("certainty") or "not assessed"
    certainty = c1 if change.before is None else (c0 if change.after is None else
                                                  (c1 if c0 == c1 else f"{c0} → {c1}"))
    moved = []
    if change.studies_added:
        moved.append("added: " + ", ".join(labels.get(s, s) for s in change.studies_added))
    if change.studies_removed:
        moved.append("removed: " + ", ".join(labels.get(s, s) for s in change.studies_removed))
    return before, after, certainty, "; ".join(moved) or "same studies"


def describe_diff(diff: VersionDiff) -> str:
    """The What's new page's opening (Markdown): against which release, how many studies
    and estimates changed, and every change of reading as a list."""
    if diff.against is None:
        return ("No version of this review has been released yet, so there is nothing to "
                "compare with: this build would be the first release "
                "(`evidence release VERSION --note TEXT` records it in `versions/`).")
    head = (f"Compared with version {escape_markdown(diff.against)} (released "
            f"{escape_markdown(str(diff.against_date))}, searches to "
            f"{escape_markdown(str(diff.last_search_before or 'no search logged'))}).")
    if not diff.changed:
        return (head + " Nothing has changed since: the registry, the searches and every "
                "estimate are those of that release.")
    parts = []
    if diff.last_search_before != diff.last_search_after:
        parts.append(f"The searches were run again, last on "
                     f"{escape_markdown(str(diff.last_search_after or 'no date'))}.")
    counts = [plural(diff.count(k), "study", "studies") + f" {k}"
              for k in ("added", "removed", "corrected") if diff.count(k)]
    if counts:
        parts.append("In the registry, " + _join(counts) + ".")
    elif diff.registry_before != diff.registry_after:
        parts.append("The registry changed, but no study's rows did (the logs, the "
                     "eligibility criteria or the outcome definitions).")
    changed = [a for a in diff.analyses if a.kind == "changed"]
    new = [a for a in diff.analyses if a.kind == "new"]
    gone = [a for a in diff.analyses if a.kind == "removed"]
    what = []
    if changed:
        what.append(f"{plural(len(changed), 'analysis', 'analyses')} changed")
    if new:
        what.append(f"{plural(len(new), 'analysis', 'analyses')} new")
    if gone:
        what.append(f"{plural(len(gone), 'analysis', 'analyses')} removed")
    parts.append(("Of the analyses, " + _join(what) + ".") if what
                 else "No estimate changed.")
    readings = diff.readings
    if readings:
        parts.append(f"{plural(len(readings), 'change alters', 'changes alter')} how an "
                     "estimate reads:\n\n" + "\n".join(
                         f"- **{escape_markdown(t)}**: {escape_markdown(r)}"
                         for t, r in readings))
    elif changed:
        parts.append("None of these changes alters how an estimate reads: no confidence "
                     "interval crosses its null value or the previous estimate, and no "
                     "certainty level or key sentence changed.")
    return head + " " + "\n\n".join(parts)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def study_changes_table(diff: VersionDiff) -> pd.DataFrame:
    """Display table of the studies added, removed or corrected (empty when none)."""
    import pandas as pd

    return pd.DataFrame([{"Study": s.label, "Change": s.kind, "Registry rows": study_summary(s)}
                         for s in diff.studies], columns=["Study", "Change", "Registry rows"])


def analysis_changes_table(diff: VersionDiff) -> pd.DataFrame:
    """Display table of the analyses that changed: estimate (95% CI, k) in the release and
    now, certainty, studies in and out, and how many changes alter its reading."""
    import pandas as pd

    rows = []
    for a in diff.analyses:
        before, after, certainty, studies = analysis_summary(a, diff.labels)
        rows.append({"Analysis": a.title, "Change": a.kind,
                     f"In {diff.against}": before, "Now": after, "Certainty": certainty,
                     "Studies": studies, "Changes of reading": len(a.readings)
                     if a.kind == "changed" else "—"})
    return pd.DataFrame(rows, columns=["Analysis", "Change", f"In {diff.against}", "Now",
                                       "Certainty", "Studies", "Changes of reading"])


def diff_text(diff: VersionDiff) -> str:
    """The same comparison as plain text, for ``evidence diff``."""
    if diff.against is None:
        return ("No version has been released yet: nothing to compare with.\n"
                "`evidence release VERSION --note TEXT` records the first one.\n")
    lines = [f"What's new since version {diff.against} (released {diff.against_date})"]
    lines.append(f"registry: {(diff.registry_before or '')[:12]} -> {diff.registry_after[:12]}"
                 + ("" if diff.registry_before != diff.registry_after else " (unchanged)"))
    lines.append(f"last search: {diff.last_search_before or 'none'} -> "
                 f"{diff.last_search_after or 'none'}")
    if not diff.changed:
        lines.append("Nothing has changed since this release.")
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append(f"Studies: {diff.count('added')} added, {diff.count('removed')} removed, "
                 f"{diff.count('corrected')} corrected")
    for s in diff.studies:
        lines.append(f"  {s.kind:<9}  {s.label} ({s.study_id}): {study_summary(s)}")
    lines.append("")
    lines.append(f"Analyses: {len(diff.analyses)} changed, new or removed")
    for a in diff.analyses:
        before, after, certainty, studies = analysis_summary(a, diff.labels)
        lines.append(f"  {a.kind:<7}  {a.title} ({a.analysis_id}): {before} -> {after}; "
                     f"certainty {certainty}; {studies}")
        lines += [f"           ! {r}" for r in a.readings]
    return "\n".join(lines) + "\n"


def show_studies(diff: VersionDiff) -> Any:
    """What the page shows of the studies: :func:`study_changes_table` (escaped), or a
    sentence when no study changed."""
    from evidence.book.tables import as_markdown, show

    if diff.studies:
        return show(study_changes_table(diff))
    return as_markdown("No study was added, removed or corrected." if diff.against
                       else "No release to compare with yet.")


def show_analyses(diff: VersionDiff) -> Any:
    """What the page shows of the analyses: :func:`analysis_changes_table` (escaped), or
    a sentence when no estimate changed."""
    from evidence.book.tables import as_markdown, show

    if diff.analyses:
        return show(analysis_changes_table(diff))
    return as_markdown("No analysis changed." if diff.against
                       else "No release to compare with yet.")
