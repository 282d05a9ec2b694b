"""Study selection (PRISMA 2020): the flow of records from the search and screening logs.

Every number is a count over ``searches.csv`` and ``screening.csv``:

- a record belongs to *databases and registers* when any identification search that
  returned it searched a database (the search tool's stored PubMed, PMC, journal and
  trial-registry pages); otherwise to *other methods* (reference lists of included
  studies and of the seed papers, the seed papers themselves);
- *identified* is the sum of ``records_returned`` over a column's searches; *duplicates*
  what that sum counts more than once (records returned by several searches, or by a
  search of the other column);
- *screened* are the column's distinct records; *excluded* those excluded at the
  ``screening`` stage; *sought for retrieval* those that reached the ``eligibility``
  stage; *not retrieved* those excluded there as ``not_retrievable``; *assessed* the rest,
  of which those excluded are counted by reason;
- *studies included* are the distinct ``study_id`` of included records, and *reports of
  included studies* the included records.

Searches run to appraise or to extract from studies already found (``purpose``
``appraisal`` or ``extraction``) identify nothing and are not counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown, join_names, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "REASON_NAMES",
    "SelectionColumn",
    "SelectionCounts",
    "criteria_table",
    "describe_selection",
    "last_search_date",
    "search_summary",
    "selection_counts",
    "selection_table",
    "studies_by_question",
]

#: The two columns of the PRISMA 2020 diagram for a review with database searches and
#: other methods.
COLUMNS: tuple[str, str] = ("databases", "other")
#: What readers see for each exclusion reason of ``screening.csv``.
REASON_NAMES: dict[str, str] = {
    "not_relevant": "not about the review's questions",
    "not_a_study_report": "not a study report",
    "review_or_editorial": "review or editorial",
    "wrong_population": "wrong population",
    "wrong_index_test": "wrong index test",
    "wrong_intervention": "wrong intervention",
    "wrong_design": "wrong design",
    "no_extractable_counts": "no extractable counts",
    "duplicate_report": "duplicate report of an included cohort",
    "not_retrievable": "not retrievable",
}


@dataclass(frozen=True)
class SelectionColumn:
    """One column of the PRISMA 2020 diagram (databases, or other methods)."""

    searches: int
    identified: int
    duplicates: int
    screened: int
    excluded: int
    sought: int
    not_retrieved: int
    assessed: int
    excluded_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def excluded_at_eligibility(self) -> int:
        """Reports assessed and excluded (all reasons)."""
        return sum(self.excluded_reasons.values())


@dataclass(frozen=True)
class SelectionCounts:
    """The PRISMA 2020 flow: both columns and the included studies and reports."""

    databases: SelectionColumn
    other: SelectionColumn
    studies_included: int
    reports_included: int
    last_search: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``results/<id>.json``)."""
        from dataclasses import asdict

        return asdict(self)


def _is_database(source: str) -> bool:
    return source.strip().lower().startswith("search tool")


def _identification(searches: pd.DataFrame) -> pd.DataFrame:
    purpose = (searches["purpose"] if "purpose" in searches.columns
               else searches["search_id"].map(lambda _: ""))
    return searches[purpose.fillna("").isin(["", "identification"])]


def last_search_date(searches: pd.DataFrame) -> str:
    """The date of the most recent identification search (``YYYY-MM-DD``)."""
    found = _identification(searches)
    if found.empty:
        raise ValueError("searches.csv has no identification search")
    return str(max(found["date"]))


def selection_counts(searches: pd.DataFrame, screening: pd.DataFrame) -> SelectionCounts:
    """Count the PRISMA 2020 flow over the logs (see the module docstring).

    Raises
    ------
    ValueError
        A screening record names a search that is not an identification search of
        ``searches`` (``evidence validate`` reports this too).
    """
    found = _identification(searches)
    database = {str(r.search_id): _is_database(str(r.source)) for r in found.itertuples()}
    returned = {str(r.search_id): int(r.records_returned) for r in found.itertuples()}
    column_of: dict[str, str] = {}
    for r in screening.itertuples():
        ids = [s.strip() for s in str(r.search_ids).split(";") if s.strip()]
        unknown = [s for s in ids if s not in database]
        if unknown:
            raise ValueError(f"screening record {r.record_id!r} names {unknown}, which are not "
                             "identification searches of searches.csv")
        column_of[str(r.record_id)] = ("databases" if any(database[s] for s in ids)
                                       else "other")
    out = {}
    for column in COLUMNS:
        in_column = screening[screening["record_id"].map(column_of) == column]
        ids = [s for s, is_db in database.items() if is_db == (column == "databases")]
        identified = sum(returned[s] for s in ids)
        stage, decision, reason = (in_column["stage"], in_column["decision"],
                                   in_column["reason"].fillna(""))
        at_eligibility = in_column[stage == "eligibility"]
        not_retrieved = int(((stage == "eligibility") & (reason == "not_retrievable")).sum())
        excluded_after = at_eligibility[(at_eligibility["decision"] == "excluded")
                                        & (at_eligibility["reason"] != "not_retrievable")]
        reasons = Counter(excluded_after["reason"])
        out[column] = SelectionColumn(
            searches=len(ids), identified=identified,
            duplicates=identified - len(in_column), screened=len(in_column),
            excluded=int(((stage == "screening") & (decision == "excluded")).sum()),
            sought=len(at_eligibility), not_retrieved=not_retrieved,
            assessed=len(at_eligibility) - not_retrieved,
            excluded_reasons={k: int(reasons[k]) for k in REASON_NAMES if reasons[k]})
    included = screening[screening["decision"] == "included"]
    return SelectionCounts(out["databases"], out["other"],
                           studies_included=int(included["study_id"].nunique()),
                           reports_included=len(included),
                           last_search=last_search_date(searches))


def studies_by_question(screening: pd.DataFrame) -> pd.DataFrame:
    """Per review question: the reports included and the distinct studies they give."""
    import pandas as pd

    included = screening[screening["decision"] == "included"]
    rows: dict[str, tuple[set[str], int]] = {}
    for r in included.itertuples():
        for q in [q.strip() for q in str(r.questions).split(";") if q.strip()]:
            studies, n = rows.get(q, (set(), 0))
            rows[q] = (studies | {str(r.study_id)}, n + 1)
    return pd.DataFrame([{"Question": q, "Reports": n, "Studies": len(s)}
                         for q, (s, n) in sorted(rows.items())])


def selection_table(counts: SelectionCounts) -> pd.DataFrame:
    """The diagram's numbers as a table (one row per box, both columns)."""
    import pandas as pd

    def row(stage: str, db: int | str, other: int | str) -> dict[str, Any]:
        return {"Stage": stage, "Databases and registers": db, "Other methods": other}

    d, o = counts.databases, counts.other
    rows = [row("Searches", d.searches, o.searches),
            row("Records identified", d.identified, o.identified),
            row("Duplicates removed", d.duplicates, o.duplicates),
            row("Records screened", d.screened, o.screened),
            row("Records excluded at screening", d.excluded, o.excluded),
            row("Reports sought for retrieval", d.sought, o.sought),
            row("Reports not retrieved", d.not_retrieved, o.not_retrieved),
            row("Reports assessed for eligibility", d.assessed, o.assessed)]
    for reason, name in REASON_NAMES.items():
        a, b = d.excluded_reasons.get(reason, 0), o.excluded_reasons.get(reason, 0)
        if a or b:
            rows.append(row(f"Reports excluded: {name}", a, b))
    rows.append(row("Studies included (reports)",
                    f"{counts.studies_included} ({counts.reports_included})", ""))
    return pd.DataFrame(rows)


def describe_selection(counts: SelectionCounts) -> str:
    """The selection in a paragraph, every number from ``counts``."""
    d, o = counts.databases, counts.other
    reasons = Counter(d.excluded_reasons) + Counter(o.excluded_reasons)
    top = [f"{REASON_NAMES[r]} ({n})" for r, n in reasons.most_common(3)]
    return (f"The searches (last run on {escape_markdown(counts.last_search)}) returned "
            f"{d.identified + o.identified} records: {d.identified} from "
            f"{plural(d.searches, 'database search', 'database searches')} and "
            f"{o.identified} from other methods (reference lists and the seed papers). "
            f"After removing {d.duplicates + o.duplicates} duplicates, "
            f"{d.screened + o.screened} distinct records were screened and "
            f"{d.excluded + o.excluded} excluded on title and excerpt; of the "
            f"{d.sought + o.sought} reports sought, {d.not_retrieved + o.not_retrieved} could "
            f"not be retrieved and {d.assessed + o.assessed} were assessed against the "
            "eligibility criteria, which excluded "
            f"{d.excluded_at_eligibility + o.excluded_at_eligibility}"
            + (f" (most often: {join_names(top)})" if top else "")
            + f". {plural(counts.studies_included, 'study', 'studies')} from "
            f"{plural(counts.reports_included, 'report', 'reports')} "
            f"{'is' if counts.studies_included == 1 else 'are'} included.")


#: What readers see for the elements of a criterion (``eligibility.csv`` ``element``).
ELEMENT_NAMES: dict[str, str] = {
    "population": "Population", "intervention": "Intervention", "index_test": "Index test",
    "comparator": "Comparator", "outcomes": "Outcomes", "design": "Study designs",
    "setting": "Setting"}
#: The review's questions in words (``eligibility.csv``, ``searches.csv``).
QUESTION_NAMES: dict[str, str] = {
    "therapy": "Anti-HER2 therapy selected by HER2-positive CTCs",
    "discordance": "HER2 discordance between tissue and CTCs",
    "recurrence": "HER2 change between primary tumour and recurrence",
    "prognosis": "Prognosis by CTC HER2 status",
    "screening": "Screening yield",
    "harms": "Harms of CTC-guided anti-HER2 therapy",
    "methods": "Methods",
}


def criteria_table(eligibility: pd.DataFrame) -> pd.DataFrame:
    """``eligibility.csv`` for readers: question, element and criterion, in file order."""
    import pandas as pd

    return pd.DataFrame({
        "Question": [QUESTION_NAMES.get(q, q) for q in eligibility["question"]],
        "Element": [ELEMENT_NAMES.get(e, e) for e in eligibility["element"]],
        "Criterion": list(eligibility["criterion"]),
    })


def search_summary(searches: pd.DataFrame) -> pd.DataFrame:
    """Per question: identification searches of databases and of other sources, the
    records they returned, and the date of the last one (a search serving several
    questions counts for each)."""
    import pandas as pd

    found = _identification(searches)
    rows: dict[str, dict[str, Any]] = {}
    for r in found.itertuples():
        for q in [q.strip() for q in str(r.question).split(";") if q.strip()]:
            row = rows.setdefault(q, {"Question": QUESTION_NAMES.get(q, q),
                                      "Database searches": 0, "Other sources": 0,
                                      "Records returned": 0, "Last search": ""})
            key = "Database searches" if _is_database(str(r.source)) else "Other sources"
            row[key] += 1
            row["Records returned"] += int(r.records_returned)
            row["Last search"] = max(row["Last search"], str(r.date))
    order = list(QUESTION_NAMES)
    return pd.DataFrame([rows[q] for q in sorted(rows, key=lambda q: (
        order.index(q) if q in order else len(order), q))])
