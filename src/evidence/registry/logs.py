"""The review's logs: eligibility criteria, the searches run, and every record screened.

Three files make the evidence base auditable (PRISMA 2020):

================== ======================================================================
file               one row per
================== ======================================================================
eligibility.csv    criterion: a question's population, index test or intervention,
                   comparator, outcomes, designs or setting, in the reviewers' words
searches.csv       search: its date, the source searched, the query exactly as run, and
                   the records it returned (a reference list read counts as a search)
screening.csv      distinct record (publication or page) considered: every search that
                   returned it, the decision and, for an exclusion, one reason from a
                   fixed vocabulary tied to the criteria
================== ======================================================================

The rules tie them together: each identification search's ``records_returned`` equals the
number of times the screening log names it (a search run to appraise or extract from
studies already found, ``purpose`` ``appraisal`` or ``extraction``, is logged with what it
returned but identifies nothing, so PRISMA does not count it); an exclusion for a
criterion names a criterion the question has; an included record names a study of
``studies.csv``, and every study of ``studies.csv`` is included by a record, so the flow
diagram counts every study once.
"""

from __future__ import annotations

import datetime
from collections import Counter

from evidence.registry._checker import Checker
from evidence.registry.csvfile import Record, RegistryProblem, Table
from evidence.registry.sources import source_kind

__all__ = [
    "DECISIONS",
    "ELEMENTS",
    "EXCLUSION_REASONS",
    "LOG_COLUMNS",
    "PURPOSES",
    "QUESTIONS",
    "REASON_CRITERIA",
    "RECORD_TYPES",
    "STAGES",
    "check_logs",
    "split_list",
]

#: The review's questions (``analyses.yml`` and the chapters refer to them).
QUESTIONS: tuple[str, ...] = ("therapy", "discordance", "recurrence", "prognosis",
                              "screening", "harms", "methods")
#: The elements of a question's eligibility criteria (PICOS).
ELEMENTS: tuple[str, ...] = ("population", "intervention", "index_test", "comparator",
                             "outcomes", "design", "setting")
#: Why a record is excluded.
EXCLUSION_REASONS: tuple[str, ...] = (
    "not_relevant", "not_a_study_report", "review_or_editorial", "wrong_population",
    "wrong_index_test", "wrong_intervention", "wrong_design", "no_extractable_counts",
    "duplicate_report", "not_retrievable")
#: The criterion element each reason applies (the others are not about a criterion).
REASON_CRITERIA: dict[str, str] = {
    "wrong_population": "population", "wrong_index_test": "index_test",
    "wrong_intervention": "intervention", "wrong_design": "design",
    "review_or_editorial": "design", "no_extractable_counts": "outcomes"}
RECORD_TYPES: tuple[str, ...] = ("journal_article", "conference_abstract", "trial_registry",
                                 "review", "seed_document", "news_or_other")
#: ``screening``: decided from the title and excerpt; ``eligibility``: the report itself
#: was read against the criteria.
STAGES: tuple[str, ...] = ("screening", "eligibility")
#: Why a search was run (``searches.csv`` ``purpose``; empty means ``identification``).
PURPOSES: tuple[str, ...] = ("identification", "appraisal", "extraction")
DECISIONS: tuple[str, ...] = ("included", "excluded")

LOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "eligibility.csv": ("question", "element", "criterion"),
    "searches.csv": ("search_id", "date", "source", "query", "records_returned", "question"),
    "screening.csv": ("record_id", "search_ids", "identifier", "url", "title", "record_type",
                      "stage", "decision", "reason", "questions", "study_id"),
}


def split_list(value: str) -> list[str]:
    """``"a; b;c"`` → ``["a", "b", "c"]`` (a ``;``-separated list; ``""`` → ``[]``)."""
    return [part.strip() for part in value.split(";") if part.strip()]


def _choices(check: Checker, record: Record, column: str, allowed: tuple[str, ...]) -> None:
    """A non-empty ``;``-list of values from ``allowed``."""
    value = record.cells.get(column)
    if value is None:
        return
    items = split_list(value)
    if not items:
        check.add(record, column, f"missing value (one or more of {', '.join(allowed)}, "
                                  "separated by ';')")
    bad = [i for i in items if i not in allowed]
    if bad:
        check.add(record, column, f"{', '.join(map(repr, bad))} not among "
                                  f"{', '.join(allowed)}")


def _date(check: Checker, record: Record, column: str) -> None:
    value = record.cells.get(column)
    if value is None:
        return
    try:
        datetime.date.fromisoformat(value)
        ok = len(value) == 10
    except ValueError:
        ok = False
    if not ok:
        check.add(record, column, f"{value!r} is not a date YYYY-MM-DD")


def _check_eligibility(table: Table) -> tuple[list[RegistryProblem], set[tuple[str, str]]]:
    check = Checker(table, LOG_COLUMNS["eligibility.csv"])
    seen: dict[tuple[str, str], int] = {}
    for record in table.records:
        check.choice(record, "question", QUESTIONS)
        check.choice(record, "element", ELEMENTS)
        check.nonempty(record, "criterion")
        key = (record.cells.get("question", ""), record.cells.get("element", ""))
        if key in seen:
            check.add(record, "element", f"{key[1]!r} of {key[0]!r} given twice (first on "
                                         f"line {seen[key]})")
        seen.setdefault(key, record.line)
    return check.problems, set(seen)


def _check_searches(table: Table) -> tuple[list[RegistryProblem], dict[str, tuple[int, int]]]:
    """Problems, and per search id its line and the records it returned."""
    check = Checker(table, LOG_COLUMNS["searches.csv"])
    first_line: dict[str, int] = {}
    returned: dict[str, tuple[int, int]] = {}
    for record in table.records:
        check.unique_slug(record, "search_id", first_line)
        _date(check, record, "date")
        check.nonempty(record, "source", "query")
        n = check.integer(record, "records_returned")
        _choices(check, record, "question", QUESTIONS)
        if record.cells.get("purpose"):
            check.choice(record, "purpose", PURPOSES)
        sid = record.cells.get("search_id", "")
        if record.cells.get("purpose", "") not in ("", "identification"):
            continue  # an appraisal or extraction search identifies no records
        if n is not None and sid:
            returned.setdefault(sid, (record.line, n))
    return check.problems, returned


def _check_screening(table: Table, searches: dict[str, tuple[int, int]] | None,
                     studies: set[str] | None,
                     criteria: set[tuple[str, str]] | None
                     ) -> tuple[list[RegistryProblem], Counter[str], set[str]]:
    """Problems, how often each search is named, and the studies included."""
    check = Checker(table, LOG_COLUMNS["screening.csv"])
    first_line: dict[str, int] = {}
    named: Counter[str] = Counter()
    included: set[str] = set()
    for record in table.records:
        cells = record.cells
        check.unique_slug(record, "record_id", first_line)
        ids = split_list(cells.get("search_ids", ""))
        if "search_ids" in cells and not ids:
            check.add(record, "search_ids", "missing value: the searches that returned the "
                                            "record, separated by ';'")
        unknown = [s for s in ids if searches is not None and s not in searches]
        if unknown:
            check.add(record, "search_ids", f"unknown search id(s) {', '.join(unknown)} "
                                            "(not an identification search of searches.csv)")
        named.update(ids)
        identifier, url = cells.get("identifier", ""), cells.get("url", "")
        kind = source_kind(identifier) if identifier else None
        if identifier and kind in (None, "seed"):
            check.add(record, "identifier", f"{identifier!r} is not an identifier (doi:, "
                                            "pmid:, pmcid:, nct:)")
        if not identifier and not url:
            check.add(record, "url", "missing value: a record without an identifier needs "
                                     "the URL it was found at")
        if url and not url.startswith(("https://", "http://")):
            check.add(record, "url", f"{url!r} is not an http(s) URL")
        year = cells.get("year", "")
        if year and not (year.isdigit() and 1900 <= int(year) <= 2100):
            check.add(record, "year", f"{year!r} is not a year")
        check.choice(record, "record_type", RECORD_TYPES)
        check.choice(record, "stage", STAGES)
        check.choice(record, "decision", DECISIONS)
        _choices(check, record, "questions", QUESTIONS)
        decision, reason = cells.get("decision", ""), cells.get("reason", "")
        study = cells.get("study_id", "")
        if decision == "included":
            if reason:
                check.add(record, "reason", "must be empty for an included record")
            if cells.get("stage") == "screening":
                check.add(record, "stage", "an included record was assessed for eligibility "
                                           "(stage eligibility)")
            if not study:
                check.add(record, "study_id", "missing value: the registry study an included "
                                              "record gives")
            included.add(study)
        elif decision == "excluded":
            check.choice(record, "reason", EXCLUSION_REASONS)
            if reason == "duplicate_report" and not study:
                check.add(record, "study_id", "missing value: a duplicate report names the "
                                              "study whose report is used")
            element = REASON_CRITERIA.get(reason)
            if element and criteria is not None:
                for question in split_list(cells.get("questions", "")):
                    if (question, element) not in criteria:
                        check.add(record, "reason",
                                  f"{reason!r} refers to the {element} criterion of "
                                  f"{question!r}, which eligibility.csv does not define")
        if study:
            check.known(record, "study_id", studies, "studies.csv")
        if cells.get("cohort"):
            check.slug(record, "cohort")
    return check.problems, named, included


def check_logs(tables: dict[str, Table], studies: set[str] | None,
               studies_table: Table | None) -> list[RegistryProblem]:
    """The problems of the eligibility, search and screening logs present in ``tables``.

    Parameters
    ----------
    tables : dict
        Registry tables by file name (the logs are optional; the screening log needs the
        search log).
    studies : set of str or None
        The study ids of ``studies.csv`` (None when it could not be read).
    studies_table : Table or None
        ``studies.csv``, to report a study no record includes at its own line.
    """
    problems: list[RegistryProblem] = []
    criteria: set[tuple[str, str]] | None = None
    if "eligibility.csv" in tables:
        found, criteria = _check_eligibility(tables["eligibility.csv"])
        problems += found
    searches: dict[str, tuple[int, int]] | None = None
    if "searches.csv" in tables:
        found, searches = _check_searches(tables["searches.csv"])
        problems += found
    if "screening.csv" not in tables:
        if searches is not None:
            problems.append(RegistryProblem(tables["searches.csv"].file, 0, "",
                                            "screening.csv is missing: every record a "
                                            "search returned must be screened"))
        return problems
    screening = tables["screening.csv"]
    if searches is None:
        problems.append(RegistryProblem(screening.file, 0, "", "searches.csv is missing: "
                                        "the screening log names the searches it came from"))
    found, named, included = _check_screening(screening, searches, studies, criteria)
    problems += found
    for sid, (line, n) in (searches or {}).items():
        if named[sid] != n:
            problems.append(RegistryProblem(
                tables["searches.csv"].file, line, "records_returned",
                f"search {sid!r} returned {n} record(s) but screening.csv names it "
                f"{named[sid]} time(s): every record a search returned is screened once"))
    if studies_table is not None:
        for record in studies_table.records:
            sid = record.cells.get("study_id", "")
            if sid and sid not in included:
                problems.append(RegistryProblem(
                    studies_table.file, record.line, "study_id",
                    f"{sid!r} is not included by any record of screening.csv (every study "
                    "of the registry comes from a screened record)"))
    return problems
