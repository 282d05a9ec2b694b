"""The rules of the study registry: its files, columns and vocabularies, and their checks.

The registry is a directory of UTF-8 CSV files (RFC 4180 quoting, header row):

================== ========== ======================================================
file               required   one row per
================== ========== ======================================================
studies.csv        yes        study
outcome_types.csv  yes        outcome name (the vocabulary of ``outcomes.csv``)
outcomes.csv       yes        extracted count (``events`` of ``total``)
effects.csv        no         ratio estimate (hazard ratio with CI and/or p-value)
transitions.csv    no         cell or margin of a HER2 category transition table
================== ========== ======================================================

:func:`validate` reads every file with the :mod:`csv` module, so that each problem
carries the exact physical line where its record starts, and collects *every*
problem as a :class:`RegistryProblem` printed as ``FILE:LINE: column: message``.
:func:`load` validates, raises :class:`RegistryError` on any problem, and returns a
:class:`Registry` of pandas DataFrames.  Nothing here ever writes a registry file.

Conventions
-----------
* Every cell is stripped of surrounding whitespace before it is checked and stored.
* ``FILE`` is the path relative to the data directory's parent (``data/outcomes.csv``)
  when the data directory is given as an absolute path, else the path as given.
* ``LINE`` is 1-based and counts the header as line 1; a record whose quoted field
  spans several lines is reported at the line where it starts.  A missing file is
  reported at line 0.  Problems that concern a whole row or file have an empty
  ``column`` and print as ``FILE:LINE: message``.
* Columns beyond the required ones are allowed and kept (as text).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from evidence.registry._checker import SLUG, USES, Checker
from evidence.registry.appraisal import (
    APPRAISAL_KINDS,
    CERTAINTY_COLUMNS,
    RISK_OF_BIAS_COLUMNS,
    check_certainty,
    check_risk_of_bias,
)
from evidence.registry.appraisal import (
    required as assessments_required,
)
from evidence.registry.csvfile import Record, RegistryProblem, Table, display_path, read_table
from evidence.registry.logs import LOG_COLUMNS, check_logs
from evidence.registry.sources import EXTERNAL_COLUMNS, provenance_problems

#: Provenance columns of a row from an external publication (see ``sources``).
PROVENANCE_COLUMNS: tuple[str, ...] = (*EXTERNAL_COLUMNS, "source_level")

__all__ = [
    "ARM_ROLES",
    "CATEGORIES",
    "HER2_CATEGORIES",
    "MARGIN",
    "OPTIONAL_COLUMNS",
    "REGISTRY_FILES",
    "REQUIRED_COLUMNS",
    "SETTINGS",
    "TISSUE_HER2",
    "USES",
    "YES_NO",
    "check_registry",
    "parse_subgroup",
    "validate",
]

#: Registry files in checking order, and whether each must exist.
REGISTRY_FILES: dict[str, bool] = {
    "studies.csv": True,
    "outcome_types.csv": True,
    "outcomes.csv": True,
    "effects.csv": False,
    "transitions.csv": False,
    "harms.csv": False,
    "reviews.csv": False,
    "eligibility.csv": False,
    "searches.csv": False,
    "screening.csv": False,
    "risk_of_bias.csv": False,
    "certainty.csv": False,
}

#: Columns every file must have (they may be empty unless a rule says otherwise).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies.csv": ("study_id", "label", "year", "design", "setting", "tissue_her2",
                    "ctc_assay", "her2_method", "her2_cutoff", "intervention", "citation",
                    "doi"),
    "outcome_types.csv": ("outcome", "events", "total", "description"),
    "outcomes.csv": ("study_id", "arm", "outcome", "subgroup", "events", "total", "derived",
                     "source", "quote"),
    "effects.csv": ("study_id", "outcome", "comparison", "estimate", "ci_lower", "ci_upper",
                    "p_value", "adjusted", "source", "quote"),
    "transitions.csv": ("study_id", "subgroup", "from_category", "to_category", "count",
                        "derived", "source", "quote", "use", "note"),
    "harms.csv": ("study_id", "arm", "arm_role", "harm", "definition", "events", "total",
                  "source", "quote"),
    "reviews.csv": ("review_id", "citation", "quantity", "estimate", "ci_lower", "ci_upper",
                    "k", "source"),
    **LOG_COLUMNS,
    "risk_of_bias.csv": RISK_OF_BIAS_COLUMNS,
    "certainty.csv": CERTAINTY_COLUMNS,
}

#: Columns that are checked when present and added (empty) by :func:`load` when absent.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies.csv": ("her2_method_group", "her2_cutoff_group", "agent", "randomized",
                    "source", "notes", "cohort", "tissue_source", "url", "locator",
                    "retrieved"),
    "outcome_types.csv": ("arm_role_required", "appraisal"),
    "outcomes.csv": ("use", "note", "arm_role", "source_error", *PROVENANCE_COLUMNS,
                     "printed_p"),
    "effects.csv": ("subgroup", "derived", "use", "note", "source_error",
                    *PROVENANCE_COLUMNS, "reference_group", "patients"),
    "transitions.csv": ("source_error", *PROVENANCE_COLUMNS),
    "harms.csv": ("note", "source_error", *PROVENANCE_COLUMNS),
    "reviews.csv": ("note", *PROVENANCE_COLUMNS),
    "eligibility.csv": (),
    "searches.csv": ("note", "purpose"),
    "screening.csv": ("first_author", "year", "cohort", "note"),
    "risk_of_bias.csv": ("locator", "retrieved", "note"),
    "certainty.csv": ("note",),
}

SETTINGS = ("metastatic", "early")
#: Which tissue a discordance study compared with the CTCs.
TISSUE_SOURCES = ("primary", "metastatic", "primary_or_metastatic", "not_reported",
                  "not_applicable")
TISSUE_HER2 = ("negative", "positive", "any")
YES_NO = ("yes", "no")
ARM_ROLES = ("experimental", "control")
#: HER2 categories of ``transitions.csv``, in table order.
HER2_CATEGORIES = ("zero", "low", "positive")
#: A margin of a transition table (all categories).
MARGIN = "any"
CATEGORIES = (*HER2_CATEGORIES, MARGIN)

def parse_subgroup(subgroup: str) -> dict[str, str]:
    """``"hormone_receptor=positive;recurrence=distant"`` → a dict (``""`` → ``{}``).

    The one reader of the subgroup grammar: ``key=value`` pairs joined by ``;``, keys
    slugs and unique, white space around keys and values ignored.

    Raises
    ------
    ValueError
        A part that is not ``key=value``, a key that is not a slug, or a key given twice.
    """
    out: dict[str, str] = {}
    if not subgroup:
        return out
    for part in str(subgroup).split(";"):
        key, sep, val = (s.strip() for s in part.partition("="))
        if not sep or not key or not val or "=" in val:
            raise ValueError(f"{subgroup!r} is not key=value pairs joined by ';' "
                             f"(bad part {part!r})")
        if not SLUG.fullmatch(key):
            raise ValueError(f"key {key!r} in {subgroup!r} is not a slug")
        if key in out:
            raise ValueError(f"key {key!r} repeated in {subgroup!r}")
        out[key] = val
    return out


def _check_subgroup(check: Checker, record: Record) -> None:
    """``subgroup`` is empty or ``key=value`` pairs joined by ``;``."""
    try:
        parse_subgroup(record.cells.get("subgroup", ""))
    except ValueError as exc:
        check.add(record, "subgroup", str(exc))


def _check_primary_keys(check: Checker, key_columns: tuple[str, ...],
                        uses: dict[int, str], *, need_primary: bool,
                        cohorts: dict[str, str] | None = None) -> None:
    """At most one primary row per key; optionally, each alternative row needs a primary.

    With ``cohorts`` (study -> cohort) the key's ``study_id`` is the study's cohort: two
    reports of the same patients (a second assay, a later report) cannot both give a
    primary row for the same arm, outcome and subgroup, so no pool counts them twice.
    """
    if not check.has(*(c for c in key_columns if c != "subgroup")):
        return
    cohort = (cohorts or {}).get
    first_primary: dict[tuple[str, ...], Record] = {}
    alternatives: list[tuple[Record, tuple[str, ...]]] = []
    for record in check.table.records:
        use = uses.get(record.line)
        key = tuple(record.cells.get(c, "") for c in key_columns)
        study = key[0]
        key = (cohort(study, study), *key[1:])
        if use == "primary":
            if key in first_primary:
                first = first_primary[key]
                other = first.cells.get("study_id", "")
                same = (f"; both are reports of cohort {key[0]!r} ({other} and {study})"
                        if other != study else "")
                check.add(record, "use",
                          f"duplicate primary row for ({_describe_key(key_columns, key, study)})"
                          f"; first on line {first.line}{same} (mark one use=alternative "
                          "with a note, or remove it)")
            else:
                first_primary[key] = record
        elif use == "alternative":
            alternatives.append((record, key))
    if need_primary:
        for record, key in alternatives:
            if key not in first_primary:
                check.add(record, "use",
                          f"alternative row without a primary row for "
                          f"({_describe_key(key_columns, key, record.cells.get('study_id'))})")


def _describe_key(columns: tuple[str, ...], key: tuple[str, ...],
                  study: str | None = None) -> str:
    values = list(key)
    if study is not None and columns[0] == "study_id":
        values[0] = study  # the key holds the cohort; name the row's own study
    return ", ".join(f"{c}={v!r}" for c, v in zip(columns, values, strict=True))


def _check_studies(table: Table
                   ) -> tuple[list[RegistryProblem], set[str] | None, dict[str, str]]:
    """Problems, the known study ids, and each study's cohort (its own id by default)."""
    check = Checker(table, REQUIRED_COLUMNS["studies.csv"])
    first_line: dict[str, int] = {}
    cohorts: dict[str, str] = {}
    for record in table.records:
        check.unique_slug(record, "study_id", first_line)
        check.nonempty(record, "label", "design", "citation")
        year = check.integer(record, "year")
        if year is not None and not 1900 <= year <= 2100:
            check.add(record, "year", f"must be between 1900 and 2100, got {year}")
        check.choice(record, "setting", SETTINGS)
        check.choice(record, "tissue_her2", TISSUE_HER2)
        check.choice(record, "randomized", YES_NO, allow_empty=True)
        check.choice(record, "tissue_source", TISSUE_SOURCES, allow_empty=True)
        if record.cells.get("cohort"):
            check.slug(record, "cohort")
        if record.cells.get("source"):
            for column, reason in provenance_problems(record.cells, quote_column=None,
                                                      figures=False):
                check.add(record, column, reason)
        study = record.cells.get("study_id", "")
        cohorts[study] = record.cells.get("cohort", "") or study
    known = set(first_line) if check.has("study_id") else None
    return check.problems, known, cohorts


def _check_outcome_types(table: Table) -> tuple[list[RegistryProblem], set[str] | None,
                                                set[str], dict[str, str]]:
    """Problems, the known outcomes, the outcomes whose rows need an ``arm_role``, and
    each outcome's appraisal kind (``appraisal``: which risk-of-bias tool it needs)."""
    check = Checker(table, REQUIRED_COLUMNS["outcome_types.csv"])
    first_line: dict[str, int] = {}
    treatment: set[str] = set()
    kinds: dict[str, str] = {}
    for record in table.records:
        check.unique_slug(record, "outcome", first_line)
        check.nonempty(record, "events", "total")
        check.choice(record, "arm_role_required", YES_NO, allow_empty=True)
        check.choice(record, "appraisal", APPRAISAL_KINDS, allow_empty=True)
        if record.cells.get("arm_role_required") == "yes":
            treatment.add(record.cells.get("outcome", ""))
        if record.cells.get("appraisal"):
            kinds[record.cells.get("outcome", "")] = record.cells["appraisal"]
    known = set(first_line) if check.has("outcome") else None
    return check.problems, known, treatment, kinds


def _provenance(check: Checker, record: Record) -> None:
    """The row's source: a seed text with its quote, or an external publication with its
    identifier, URL, locator, printed figures and retrieval date
    (:func:`evidence.registry.sources.provenance_problems`)."""
    quote = "quote" if check.has("quote") else None  # a missing column is reported once
    for column, reason in provenance_problems(record.cells, quote_column=quote):
        check.add(record, column, reason)


def _check_outcomes(table: Table, studies: set[str] | None, outcomes: set[str] | None,
                    treatment: set[str], cohorts: dict[str, str]) -> list[RegistryProblem]:
    check = Checker(table, REQUIRED_COLUMNS["outcomes.csv"])
    uses: dict[int, str] = {}
    for record in table.records:
        check.nonempty(record, "study_id", "outcome")
        check.known(record, "study_id", studies, "studies.csv")
        check.known(record, "outcome", outcomes, "outcome_types.csv")
        check.slug(record, "arm")
        outcome = record.cells.get("outcome", "")
        if outcome in treatment and not record.cells.get("arm_role"):
            # the analyses select treatment outcomes by role: without one the row would
            # silently drop out of every analysis
            check.add(record, "arm_role",
                      f"missing value: {outcome!r} is a treatment outcome "
                      "(outcome_types.csv: arm_role_required=yes), so every row needs "
                      f"{' or '.join(ARM_ROLES)} (the arm given the anti-HER2 therapy, or "
                      "its comparator)")
        else:
            check.choice(record, "arm_role", ARM_ROLES, allow_empty=True)
        _check_subgroup(check, record)
        events = check.integer(record, "events")
        total = check.integer(record, "total")
        if total == 0:
            check.add(record, "total", "must be greater than 0")
        if events is not None and total is not None and events > total:
            check.add(record, "events", f"events {events} > total {total}")
        _provenance(check, record)
        if record.cells.get("printed_p"):
            printed_p = check.number(record, "printed_p")
            if printed_p is not None and not 0 < printed_p <= 1:
                check.add(record, "printed_p",
                          f"must be in (0, 1], got {record.cells['printed_p']}")
            elif printed_p is not None and record.cells.get("arm_role") != "experimental":
                check.add(record, "printed_p", "belongs on the experimental arm's row (the "
                          "p-value of its comparison with the control arm)")
        use = check.use(record)
        if use is not None:
            uses[record.line] = use
    _check_primary_keys(check, ("study_id", "arm", "outcome", "subgroup"), uses,
                        need_primary=True, cohorts=cohorts)
    return check.problems


def _check_effects(table: Table, studies: set[str] | None) -> list[RegistryProblem]:
    check = Checker(table, REQUIRED_COLUMNS["effects.csv"])
    for record in table.records:
        check.nonempty(record, "study_id", "outcome", "comparison")
        _provenance(check, record)
        check.known(record, "study_id", studies, "studies.csv")
        _check_subgroup(check, record)
        check.choice(record, "adjusted", YES_NO)
        check.use(record)
        estimate = check.number(record, "estimate")
        if estimate is not None:
            if math.isnan(estimate):
                check.add(record, "estimate", "missing value (a ratio > 0)")
                estimate = None
            elif estimate <= 0:
                check.add(record, "estimate", f"must be > 0, got {record.cells['estimate']}")
                estimate = None
        lower, upper = check.number(record, "ci_lower"), check.number(record, "ci_upper")
        has_ci = _check_ci(check, record, estimate, lower, upper)
        p_value = check.number(record, "p_value")
        if p_value is not None and not math.isnan(p_value) and not 0 < p_value <= 1:
            check.add(record, "p_value", f"must be in (0, 1], got {record.cells['p_value']}")
        if record.cells.get("patients"):
            n = check.integer(record, "patients")
            if n == 0:
                check.add(record, "patients", "must be at least 1 (or empty: not stated)")
        if (check.has("ci_lower", "ci_upper", "p_value") and not has_ci
                and not record.cells["p_value"] and not record.cells["ci_lower"]
                and not record.cells["ci_upper"]):
            check.add(record, "", "needs a confidence interval or a p-value (both empty)")
    return check.problems


def _check_ci(check: Checker, record: Record, estimate: float | None,
              lower: float | None, upper: float | None) -> bool:
    """Check the CI columns; True if a usable CI is present."""
    if lower is None or upper is None:
        return False
    if math.isnan(lower) != math.isnan(upper):
        missing = "ci_lower" if math.isnan(lower) else "ci_upper"
        check.add(record, missing, "ci_lower and ci_upper must both be given or both empty")
        return False
    if math.isnan(lower):
        return False
    ok = True
    for column, value in (("ci_lower", lower), ("ci_upper", upper)):
        if value <= 0:
            check.add(record, column, f"must be > 0, got {record.cells[column]}")
            ok = False
    if not ok:
        return False
    if not lower < upper:
        check.add(record, "ci_lower", f"ci_lower {record.cells['ci_lower']} must be below "
                                      f"ci_upper {record.cells['ci_upper']}")
        return False
    if estimate is not None and not lower <= estimate <= upper:
        check.add(record, "estimate",
                  f"estimate {record.cells['estimate']} outside its CI "
                  f"[{record.cells['ci_lower']}, {record.cells['ci_upper']}]")
    return True


def _check_transitions(table: Table, studies: set[str] | None,
                       cohorts: dict[str, str]) -> list[RegistryProblem]:
    check = Checker(table, REQUIRED_COLUMNS["transitions.csv"])
    uses: dict[int, str] = {}
    for record in table.records:
        check.nonempty(record, "study_id")
        check.known(record, "study_id", studies, "studies.csv")
        _check_subgroup(check, record)
        check.choice(record, "from_category", CATEGORIES)
        check.choice(record, "to_category", CATEGORIES)
        check.integer(record, "count")
        _provenance(check, record)
        use = check.use(record)
        if use is not None:
            uses[record.line] = use
    _check_primary_keys(check, ("study_id", "subgroup", "from_category", "to_category"),
                        uses, need_primary=True, cohorts=cohorts)
    return check.problems


def _check_harms(table: Table, studies: set[str] | None) -> list[RegistryProblem]:
    check = Checker(table, REQUIRED_COLUMNS["harms.csv"])
    for record in table.records:
        check.nonempty(record, "study_id", "definition")
        check.known(record, "study_id", studies, "studies.csv")
        check.slug(record, "arm")
        check.slug(record, "harm")
        check.choice(record, "arm_role", ARM_ROLES, allow_empty=True)
        counts = {}
        for column in ("events", "total"):
            if record.cells.get(column, ""):
                counts[column] = check.integer(record, column)
        if len(counts) == 1:
            check.add(record, "total" if "events" in counts else "events",
                      "missing value: give both events and total, or neither (then "
                      "'printed' says what was reported)")
        events, total = counts.get("events"), counts.get("total")
        if total == 0:
            check.add(record, "total", "must be greater than 0")
        if events is not None and total is not None and events > total:
            check.add(record, "events", f"events {events} > total {total}")
        _provenance(check, record)
    return check.problems


def _check_reviews(table: Table) -> list[RegistryProblem]:
    check = Checker(table, REQUIRED_COLUMNS["reviews.csv"])
    for record in table.records:
        check.slug(record, "review_id")
        check.nonempty(record, "citation", "quantity")
        estimate = check.number(record, "estimate")
        if estimate is not None and math.isnan(estimate):
            check.add(record, "estimate", "missing value (a number)")
        for column in ("ci_lower", "ci_upper"):
            check.number(record, column)
        if record.cells.get("k", ""):
            check.integer(record, "k")
        for column, reason in provenance_problems(record.cells, quote_column=None):
            check.add(record, column, reason)
    return check.problems


def validate(data_dir: str | os.PathLike[str]) -> list[RegistryProblem]:
    """Check every registry file and return every problem found.

    Parameters
    ----------
    data_dir : str or path-like
        The registry directory (holding ``studies.csv``, ``outcomes.csv``, ...).

    Returns
    -------
    list of RegistryProblem
        Empty when the registry is valid; otherwise in file order (studies,
        outcome_types, outcomes, effects, transitions) and line order.

    Notes
    -----
    Files are only opened for reading.  When ``studies.csv`` or ``outcome_types.csv``
    cannot be read, references to them are not checked (their own problem is reported).
    """
    problems, _ = check_registry(Path(data_dir))
    return problems


def _assessments_needed(tables: dict[str, Table], kinds: dict[str, str]
                        ) -> dict[tuple[str, str], tuple[str, int]]:
    """The (study, tool) risk-of-bias assessments the registry's rows need
    (:func:`evidence.registry.appraisal.required`)."""
    def rows(name: str) -> list[tuple[str, int, dict[str, str]]]:
        table = tables.get(name)
        return [] if table is None else [(table.file, r.line, r.cells) for r in table.records]

    randomized = {cells.get("study_id", ""): cells.get("randomized", "")
                  for _, _, cells in rows("studies.csv")}
    return assessments_required(rows("outcomes.csv"), rows("effects.csv"), kinds,
                                randomized)


def check_registry(data_dir: Path) -> tuple[list[RegistryProblem], dict[str, Table]]:
    """Every problem of the registry in ``data_dir``, and the tables that could be read
    (the engine of :func:`validate` and :func:`evidence.registry.store.load`)."""
    tables: dict[str, Table] = {}
    problems: list[RegistryProblem] = []
    for name, required in REGISTRY_FILES.items():
        path = data_dir / name
        if not required and not path.exists():
            continue
        table, read_problems = read_table(path, display_path(data_dir, name))
        problems.extend(read_problems)
        if table is not None:
            tables[name] = table

    studies: set[str] | None = None
    outcome_names: set[str] | None = None
    treatment: set[str] = set()
    kinds: dict[str, str] = {}
    cohorts: dict[str, str] = {}
    if "studies.csv" in tables:
        found, studies, cohorts = _check_studies(tables["studies.csv"])
        problems.extend(found)
    if "outcome_types.csv" in tables:
        found, outcome_names, treatment, kinds = _check_outcome_types(
            tables["outcome_types.csv"])
        problems.extend(found)
    checks: list[tuple[str, Callable[[Table], list[RegistryProblem]]]] = [
        ("outcomes.csv", lambda t: _check_outcomes(t, studies, outcome_names, treatment,
                                                   cohorts)),
        ("effects.csv", lambda t: _check_effects(t, studies)),
        ("transitions.csv", lambda t: _check_transitions(t, studies, cohorts)),
        ("harms.csv", lambda t: _check_harms(t, studies)),
        ("reviews.csv", _check_reviews),
        ("certainty.csv", check_certainty),
    ]
    for name, check in checks:
        if name in tables:
            problems.extend(check(tables[name]))
    problems.extend(check_logs(tables, studies, tables.get("studies.csv")))
    if "risk_of_bias.csv" in tables:
        problems.extend(check_risk_of_bias(tables["risk_of_bias.csv"], studies,
                                           _assessments_needed(tables, kinds)))

    order = {display_path(data_dir, name): i for i, name in enumerate(REGISTRY_FILES)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line))
    return problems, tables
