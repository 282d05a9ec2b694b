"""The study registry: read, validate and select the CSV files under ``data/``.

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

import csv
import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = [
    "CACHE_ENV",
    "OPTIONAL_COLUMNS",
    "REGISTRY_FILES",
    "REQUIRED_COLUMNS",
    "Registry",
    "RegistryError",
    "RegistryProblem",
    "load",
    "registry_sha256",
    "validate",
]

#: Registry files in checking order, and whether each must exist.
REGISTRY_FILES: dict[str, bool] = {
    "studies.csv": True,
    "outcome_types.csv": True,
    "outcomes.csv": True,
    "effects.csv": False,
    "transitions.csv": False,
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
}

#: Columns that are checked when present and added (empty) by :func:`load` when absent.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies.csv": ("her2_method_group", "agent", "randomized", "source", "notes"),
    "outcome_types.csv": (),
    "outcomes.csv": ("use", "note", "arm_role", "source_error"),
    "effects.csv": ("subgroup", "derived", "use", "note"),
    "transitions.csv": (),
}

SETTINGS = ("metastatic", "early")
TISSUE_HER2 = ("negative", "positive", "any")
YES_NO = ("yes", "no")
USES = ("primary", "alternative")
ARM_ROLES = ("experimental", "control")
CATEGORIES = ("zero", "low", "positive", "any")

_SLUG = re.compile(r"[a-z0-9_]+")
_INTEGER = re.compile(r"[0-9]+")
_UTF8_BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class RegistryProblem:
    """One problem in a registry file.

    Attributes
    ----------
    file : str
        The file as displayed (``data/outcomes.csv``).
    line : int
        1-based physical line where the record starts (the header is line 1);
        0 for a missing file.
    column : str
        The column at fault, or ``""`` for a problem with a whole row or file.
    message : str
        What is wrong.
    """

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        if self.column:
            return f"{self.file}:{self.line}: {self.column}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class RegistryError(Exception):
    """The registry has at least one problem; ``problems`` lists all of them.

    Parameters
    ----------
    problems : list of RegistryProblem
        Every problem found, in file and line order.
    """

    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Record:
    """A parsed CSV record: the line where it starts and its stripped cells."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class _Table:
    """A CSV file read for validation (records with wrong field counts left out)."""

    file: str
    header: tuple[str, ...]
    records: tuple[_Record, ...]


def _display(data_dir: Path, name: str) -> str:
    """Path of ``name`` as shown in messages (see the module docstring)."""
    if data_dir.is_absolute():
        return (Path(data_dir.name) / name).as_posix()
    return (data_dir / name).as_posix()


def _physical_lines(text: str) -> Iterator[str]:
    """Split on ``\\n`` only (keeping it), so csv's ``line_num`` counts physical lines."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start:end + 1]
        start = end + 1


def _decode(raw: bytes) -> tuple[str, dict[int, str]]:
    """Decode UTF-8 (a leading BOM is dropped); undecodable bytes become U+FFFD.

    Returns the text and, per 1-based line holding invalid bytes, a description of the
    first one.
    """
    offset = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
    try:
        return raw[offset:].decode("utf-8"), {}
    except UnicodeDecodeError:
        pass
    bad: dict[int, str] = {}
    parts: list[str] = []
    for lineno, line in enumerate(raw[offset:].split(b"\n"), start=1):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            n_bad = _count_invalid(line)
            more = f" ({n_bad - 1} more on this line)" if n_bad > 1 else ""
            bad[lineno] = (f"not valid UTF-8: byte 0x{line[exc.start]:02X} at byte "
                           f"{exc.start + 1} of the line (file byte offset "
                           f"{offset + exc.start}){more}")
            parts.append(line.decode("utf-8", errors="replace"))
        offset += len(line) + 1
    return "\n".join(parts), bad


def _count_invalid(line: bytes) -> int:
    """Number of invalid UTF-8 sequences in ``line``."""
    count, pos = 0, 0
    while pos < len(line):
        try:
            line[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            count += 1
            pos += exc.end
    return count


def _read_table(path: Path, display: str) -> tuple[_Table | None, list[RegistryProblem]]:
    """Read one CSV file for validation; never writes.

    Returns ``(None, problems)`` if the file is missing, empty or has no usable header.
    """
    problems: list[RegistryProblem] = []
    if not path.is_file():
        return None, [RegistryProblem(display, 0, "", "file not found")]
    with path.open("rb") as fh:
        raw = fh.read()
    text, bad_lines = _decode(raw)
    if not text.strip():
        return None, [RegistryProblem(display, 1, "", "empty file (no header row)")]

    reader = csv.reader(_physical_lines(text), strict=True)
    header: tuple[str, ...] | None = None
    records: list[_Record] = []
    spans: list[tuple[int, int, dict[str, str] | None]] = []  # for locating bad bytes
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RegistryProblem(display, start, "", f"malformed CSV: {exc}"))
            spans.append((start, reader.line_num, None))
            continue
        if not row:  # blank line
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = tuple(c.lstrip("\ufeff") for c in cells)
            problems.extend(_check_header(header, display, start))
            spans.append((start, reader.line_num, None))
            continue
        if len(cells) != len(header):
            problems.append(RegistryProblem(
                display, start, "",
                f"malformed CSV: expected {len(header)} fields (as in the header), "
                f"found {len(cells)}"))
            spans.append((start, reader.line_num, None))
            continue
        record = _Record(start, dict(zip(header, cells, strict=True)))
        records.append(record)
        spans.append((start, reader.line_num, record.cells))

    for lineno, message in sorted(bad_lines.items()):
        problems.append(_bad_bytes_problem(display, lineno, message, spans))
    problems.sort(key=lambda p: p.line)
    if header is None:
        return None, problems
    return _Table(display, header, tuple(records)), problems


def _bad_bytes_problem(display: str, lineno: int, message: str,
                       spans: list[tuple[int, int, dict[str, str] | None]]) -> RegistryProblem:
    """Problem for invalid bytes on ``lineno``, naming the CSV column when it is known."""
    for first, last, cells in spans:
        if first <= lineno <= last and cells is not None:
            for name, value in cells.items():
                if "\ufffd" in value:
                    return RegistryProblem(display, lineno, name, message)
    return RegistryProblem(display, lineno, "", message)


def _check_header(header: tuple[str, ...], display: str, line: int) -> list[RegistryProblem]:
    """Empty or duplicated column names."""
    problems = []
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append(RegistryProblem(display, line, "",
                                            f"header field {position} is empty"))
        elif name in seen:
            problems.append(RegistryProblem(display, line, name, "duplicate column name"))
        seen.add(name)
    return problems


# --------------------------------------------------------------------------- checking


class _Checker:
    """Accumulates problems for one table; the ``check_*`` helpers skip absent columns."""

    def __init__(self, table: _Table, required: tuple[str, ...]) -> None:
        self.table = table
        self.columns = set(table.header)
        self.problems: list[RegistryProblem] = [
            RegistryProblem(table.file, 1, name, "missing required column")
            for name in required if name not in self.columns
        ]

    def add(self, record: _Record, column: str, message: str) -> None:
        self.problems.append(RegistryProblem(self.table.file, record.line, column, message))

    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)

    def nonempty(self, record: _Record, *columns: str) -> None:
        for column in columns:
            if column in self.columns and not record.cells[column]:
                self.add(record, column, "missing value")

    def unique_slug(self, record: _Record, column: str, first_line: dict[str, int]) -> None:
        """A slug key that no earlier record has; ``first_line`` maps keys to lines."""
        self.slug(record, column)
        value = record.cells.get(column, "")
        if not value:
            return
        if value in first_line:
            self.add(record, column, f"duplicate {column} {value!r} "
                                     f"(first on line {first_line[value]})")
        else:
            first_line[value] = record.line

    def slug(self, record: _Record, column: str) -> None:
        value = record.cells.get(column)
        if value is None:
            return
        if not value:
            self.add(record, column, "missing value")
        elif not _SLUG.fullmatch(value):
            self.add(record, column,
                     f"{value!r} is not a slug (lowercase letters, digits and '_' only)")

    def choice(self, record: _Record, column: str, allowed: tuple[str, ...],
               *, allow_empty: bool = False) -> None:
        value = record.cells.get(column)
        if value is None or (allow_empty and not value):
            return
        if not value:
            self.add(record, column, f"missing value (one of {', '.join(allowed)})")
        elif value not in allowed:
            self.add(record, column, f"{value!r} is not one of {', '.join(allowed)}")

    def integer(self, record: _Record, column: str) -> int | None:
        """A non-negative integer, or None after recording the problem."""
        value = record.cells.get(column)
        if value is None:
            return None
        if not value:
            self.add(record, column, "missing value (a non-negative integer)")
            return None
        if _INTEGER.fullmatch(value):
            return int(value)
        if re.fullmatch(r"-[0-9]+", value):
            self.add(record, column, f"must not be negative, got {value}")
        else:
            self.add(record, column, f"must be a non-negative integer, got {value!r}")
        return None

    def number(self, record: _Record, column: str) -> float | None:
        """A finite number, ``nan`` for an empty cell, or None after recording the problem."""
        value = record.cells.get(column)
        if value is None:
            return None
        if not value:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        else:
            if math.isfinite(number):
                return number
        self.add(record, column, f"must be a number, got {value!r}")
        return None

    def use(self, record: _Record) -> str | None:
        """The row's ``use`` (empty means ``primary``), or None if invalid."""
        value = record.cells.get("use", "") or "primary"
        if value not in USES:
            self.add(record, "use", f"{value!r} is not one of {', '.join(USES)} "
                                    "(empty means primary)")
            return None
        if value == "alternative" and not record.cells.get("note", ""):
            self.add(record, "note", "an alternative row needs a note saying what it "
                                     "contradicts and why the primary reading was chosen")
        return value

    def known(self, record: _Record, column: str, known: set[str] | None,
              where: str) -> None:
        value = record.cells.get(column)
        if value and known is not None and value not in known:
            self.add(record, column, f"unknown {column} {value!r} (not in {where})")


def _check_subgroup(check: _Checker, record: _Record) -> None:
    """``subgroup`` is empty or ``key=value`` pairs joined by ``;``."""
    value = record.cells.get("subgroup", "")
    if not value:
        return
    keys: set[str] = set()
    for part in value.split(";"):
        key, sep, val = (s.strip() for s in part.partition("="))
        if not sep or not key or not val or "=" in val:
            check.add(record, "subgroup",
                      f"{value!r} is not key=value pairs joined by ';' (bad part {part!r})")
            return
        if not _SLUG.fullmatch(key):
            check.add(record, "subgroup", f"key {key!r} in {value!r} is not a slug")
            return
        if key in keys:
            check.add(record, "subgroup", f"key {key!r} repeated in {value!r}")
            return
        keys.add(key)


def _check_primary_keys(check: _Checker, key_columns: tuple[str, ...],
                        uses: dict[int, str], *, need_primary: bool) -> None:
    """At most one primary row per key; optionally, each alternative row needs a primary."""
    if not check.has(*(c for c in key_columns if c != "subgroup")):
        return
    first_primary: dict[tuple[str, ...], int] = {}
    alternatives: list[tuple[_Record, tuple[str, ...]]] = []
    for record in check.table.records:
        use = uses.get(record.line)
        key = tuple(record.cells.get(c, "") for c in key_columns)
        if use == "primary":
            if key in first_primary:
                check.add(record, "use",
                          f"duplicate primary row for ({_describe_key(key_columns, key)}); "
                          f"first on line {first_primary[key]} (mark one use=alternative "
                          "with a note, or remove it)")
            else:
                first_primary[key] = record.line
        elif use == "alternative":
            alternatives.append((record, key))
    if need_primary:
        for record, key in alternatives:
            if key not in first_primary:
                check.add(record, "use",
                          f"alternative row without a primary row for "
                          f"({_describe_key(key_columns, key)})")


def _describe_key(columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    return ", ".join(f"{c}={v!r}" for c, v in zip(columns, key, strict=True))


def _check_studies(table: _Table) -> tuple[list[RegistryProblem], set[str] | None]:
    check = _Checker(table, REQUIRED_COLUMNS["studies.csv"])
    first_line: dict[str, int] = {}
    for record in table.records:
        check.unique_slug(record, "study_id", first_line)
        check.nonempty(record, "label", "design", "citation")
        year = check.integer(record, "year")
        if year is not None and not 1900 <= year <= 2100:
            check.add(record, "year", f"must be between 1900 and 2100, got {year}")
        check.choice(record, "setting", SETTINGS)
        check.choice(record, "tissue_her2", TISSUE_HER2)
        check.choice(record, "randomized", YES_NO, allow_empty=True)
    known = set(first_line) if check.has("study_id") else None
    return check.problems, known


def _check_outcome_types(table: _Table) -> tuple[list[RegistryProblem], set[str] | None]:
    check = _Checker(table, REQUIRED_COLUMNS["outcome_types.csv"])
    first_line: dict[str, int] = {}
    for record in table.records:
        check.unique_slug(record, "outcome", first_line)
        check.nonempty(record, "events", "total")
    known = set(first_line) if check.has("outcome") else None
    return check.problems, known


def _check_outcomes(table: _Table, studies: set[str] | None,
                    outcomes: set[str] | None) -> list[RegistryProblem]:
    check = _Checker(table, REQUIRED_COLUMNS["outcomes.csv"])
    uses: dict[int, str] = {}
    for record in table.records:
        check.nonempty(record, "study_id", "outcome")
        check.known(record, "study_id", studies, "studies.csv")
        check.known(record, "outcome", outcomes, "outcome_types.csv")
        check.slug(record, "arm")
        check.choice(record, "arm_role", ARM_ROLES, allow_empty=True)
        _check_subgroup(check, record)
        events = check.integer(record, "events")
        total = check.integer(record, "total")
        if total == 0:
            check.add(record, "total", "must be greater than 0")
        if events is not None and total is not None and events > total:
            check.add(record, "events", f"events {events} > total {total}")
        check.nonempty(record, "source", "quote")
        use = check.use(record)
        if use is not None:
            uses[record.line] = use
    _check_primary_keys(check, ("study_id", "arm", "outcome", "subgroup"), uses,
                        need_primary=True)
    return check.problems


def _check_effects(table: _Table, studies: set[str] | None) -> list[RegistryProblem]:
    check = _Checker(table, REQUIRED_COLUMNS["effects.csv"])
    for record in table.records:
        check.nonempty(record, "study_id", "outcome", "comparison", "source", "quote")
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
        if (check.has("ci_lower", "ci_upper", "p_value") and not has_ci
                and not record.cells["p_value"] and not record.cells["ci_lower"]
                and not record.cells["ci_upper"]):
            check.add(record, "", "needs a confidence interval or a p-value (both empty)")
    return check.problems


def _check_ci(check: _Checker, record: _Record, estimate: float | None,
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


def _check_transitions(table: _Table, studies: set[str] | None) -> list[RegistryProblem]:
    check = _Checker(table, REQUIRED_COLUMNS["transitions.csv"])
    uses: dict[int, str] = {}
    for record in table.records:
        check.nonempty(record, "study_id")
        check.known(record, "study_id", studies, "studies.csv")
        _check_subgroup(check, record)
        check.choice(record, "from_category", CATEGORIES)
        check.choice(record, "to_category", CATEGORIES)
        check.integer(record, "count")
        check.nonempty(record, "source", "quote")
        use = check.use(record)
        if use is not None:
            uses[record.line] = use
    _check_primary_keys(check, ("study_id", "subgroup", "from_category", "to_category"),
                        uses, need_primary=True)
    return check.problems


# --------------------------------------------------------------------------- public API


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
    problems, _ = _validate(Path(data_dir))
    return problems


def _validate(data_dir: Path) -> tuple[list[RegistryProblem], dict[str, _Table]]:
    tables: dict[str, _Table] = {}
    problems: list[RegistryProblem] = []
    for name, required in REGISTRY_FILES.items():
        path = data_dir / name
        if not required and not path.exists():
            continue
        table, read_problems = _read_table(path, _display(data_dir, name))
        problems.extend(read_problems)
        if table is not None:
            tables[name] = table

    studies: set[str] | None = None
    outcome_names: set[str] | None = None
    if "studies.csv" in tables:
        found, studies = _check_studies(tables["studies.csv"])
        problems.extend(found)
    if "outcome_types.csv" in tables:
        found, outcome_names = _check_outcome_types(tables["outcome_types.csv"])
        problems.extend(found)
    checks: list[tuple[str, Callable[[_Table], list[RegistryProblem]]]] = [
        ("outcomes.csv", lambda t: _check_outcomes(t, studies, outcome_names)),
        ("effects.csv", lambda t: _check_effects(t, studies)),
        ("transitions.csv", lambda t: _check_transitions(t, studies)),
    ]
    for name, check in checks:
        if name in tables:
            problems.extend(check(tables[name]))

    order = {_display(data_dir, name): i for i, name in enumerate(REGISTRY_FILES)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line))
    return problems, tables


def registry_sha256(data_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of every ``*.csv`` file directly in ``data_dir``.

    Files are hashed in sorted name order; for each, its name, its size and its
    bytes are fed to the hash, so renaming or moving bytes between files changes it.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("*.csv"), key=lambda p: p.name):
        with path.open("rb") as fh:
            content = fh.read()
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(str(len(content)).encode("ascii") + b"\0")
        digest.update(content)
    return digest.hexdigest()


#: Environment variable naming the directory where validated registries are cached (set
#: by the runner for the notebooks it executes; see :func:`load`).
CACHE_ENV = "EVIDENCE_CACHE_DIR"

_INT_COLUMNS = {"studies.csv": ("year",), "outcomes.csv": ("events", "total"),
                "transitions.csv": ("count",)}
_FLOAT_COLUMNS = {"effects.csv": ("estimate", "ci_lower", "ci_upper", "p_value")}
_USE_FILES = ("outcomes.csv", "effects.csv", "transitions.csv")


def _frame(name: str, table: _Table | None) -> pd.DataFrame:
    """DataFrame of a validated table: typed numbers, optional columns added."""
    import pandas as pd

    header = list(table.header) if table is not None else []
    columns = header + [c for c in (*REQUIRED_COLUMNS[name], *OPTIONAL_COLUMNS[name])
                        if c not in header]
    rows = [[r.cells.get(c, "") for c in columns]
            for r in (table.records if table is not None else ())]
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    for column in _INT_COLUMNS.get(name, ()):
        frame[column] = frame[column].astype("int64")
    for column in _FLOAT_COLUMNS.get(name, ()):
        frame[column] = pd.to_numeric(frame[column].replace("", None)).astype("float64")
    if name in _USE_FILES:
        frame["use"] = frame["use"].where(frame["use"] != "", "primary")
    return frame


def load(data_dir: str | os.PathLike[str], *,
         cache_dir: str | os.PathLike[str] | None = None) -> Registry:
    """Validate the registry and load it into DataFrames.

    Parameters
    ----------
    data_dir : str or path-like
        The registry directory.
    cache_dir : str or path-like, optional
        Where to keep the validated tables between processes (the build passes its
        ``.evidence-cache``). A registry whose files, validation code and pandas
        version are unchanged since it was last validated is then read from there
        (one pickle, written atomically; a stale or unreadable one is ignored and
        replaced). Validating 10,000 rows costs ≈ 0.35 s, once per notebook without
        the cache. Nothing is written to ``data_dir``.

    Returns
    -------
    Registry
        The tables (integers as ``int64``, numbers as ``float64``, text as strings;
        empty ``use`` read as ``"primary"``), the directory and its SHA-256 digest.

    Raises
    ------
    RegistryError
        If :func:`validate` finds any problem; ``.problems`` lists all of them.
    """
    path = Path(data_dir)
    if cache_dir is None:
        return _load(path)
    sha = registry_sha256(path)
    cached = Path(cache_dir) / f"registry-{_cache_key(sha)}.pickle"
    hit = _read_cached(cached)
    if hit is not None:
        return dataclasses.replace(hit, data_dir=path)
    registry = _load(path)
    if registry.sha256 == sha:  # unchanged while it was validated
        _write_cached(cached, registry)
    return registry


def _load(path: Path) -> Registry:
    problems, tables = _validate(path)
    if problems:
        raise RegistryError(problems)
    return Registry(
        studies=_frame("studies.csv", tables["studies.csv"]),
        outcomes=_frame("outcomes.csv", tables["outcomes.csv"]),
        effects=_frame("effects.csv", tables.get("effects.csv")),
        transitions=_frame("transitions.csv", tables.get("transitions.csv")),
        outcome_types=_frame("outcome_types.csv", tables["outcome_types.csv"]),
        data_dir=path,
        sha256=registry_sha256(path),
    )


def _cache_key(registry_digest: str) -> str:
    """The registry's digest, this module's source and the pandas/Python versions."""
    import sys

    import pandas as pd

    h = hashlib.sha256(registry_digest.encode())
    h.update(Path(__file__).read_bytes())
    h.update(f"{pd.__version__} {sys.version}".encode())
    return h.hexdigest()[:32]


def _read_cached(cached: Path) -> Registry | None:
    import pickle

    try:
        with cached.open("rb") as fh:
            hit = pickle.load(fh)
    except Exception:
        # a damaged pickle can raise almost anything; it is only a cache, so the registry
        # is validated from its files instead
        return None
    return hit if isinstance(hit, Registry) else None


def _write_cached(cached: Path, registry: Registry) -> None:
    import pickle
    import tempfile

    tmp: str | None = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".tmp", dir=cached.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(registry, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cached)
        tmp = None
        for old in cached.parent.glob("registry-*.pickle"):  # keep only the current one
            if old != cached:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs time
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True, eq=False)
class Registry:
    """A validated registry (build it with :func:`load`).

    Attributes
    ----------
    studies, outcomes, effects, transitions, outcome_types : pandas.DataFrame
        One frame per file (``effects``/``transitions`` empty when the file is absent).
    data_dir : pathlib.Path
        The directory it was read from.
    sha256 : str
        Digest of the registry files (see :func:`registry_sha256`).
    """

    studies: pd.DataFrame
    outcomes: pd.DataFrame
    effects: pd.DataFrame
    transitions: pd.DataFrame
    outcome_types: pd.DataFrame
    data_dir: Path
    sha256: str

    def _outcome_rows(self, outcome: str, arm: str | None, subgroup: str | None,
                      use: str | None, studies: Iterable[str] | None) -> pd.DataFrame:
        """Validated filters applied to ``outcomes`` (no join)."""
        known_outcomes = set(self.outcome_types["outcome"])
        if outcome not in known_outcomes:
            raise ValueError(f"unknown outcome {outcome!r}; allowed: "
                             f"{', '.join(sorted(known_outcomes))}")
        if use is not None and use not in USES:
            raise ValueError(f"use must be one of {', '.join(USES)} or None, got {use!r}")
        rows = self.outcomes
        mask = rows["outcome"] == outcome
        if arm is not None:
            arms = set(rows["arm"])
            if arm not in arms:
                raise ValueError(f"unknown arm {arm!r}; arms in outcomes.csv: "
                                 f"{', '.join(sorted(arms))}")
            mask &= rows["arm"] == arm
        if subgroup is not None:
            mask &= rows["subgroup"] == subgroup.strip()
        if use is not None:
            mask &= rows["use"] == use
        if studies is not None:
            wanted = [studies] if isinstance(studies, str) else list(studies)
            unknown = sorted(set(wanted) - set(self.studies["study_id"]))
            if unknown:
                raise ValueError(f"unknown study_id(s) {', '.join(map(repr, unknown))}")
            mask &= rows["study_id"].isin(wanted)
        return rows[mask]

    def select(self, outcome: str, *, arm: str | None = None, subgroup: str | None = "",
               use: str | None = "primary",
               studies: Iterable[str] | None = None) -> pd.DataFrame:
        """Rows of ``outcomes.csv`` for one outcome, joined with their study's columns.

        Parameters
        ----------
        outcome : str
            An outcome listed in ``outcome_types.csv``.
        arm : str or None
            Keep only this arm (``"all"`` for single-group studies); None keeps every arm.
        subgroup : str or None
            ``""`` (default) keeps whole-population rows; a ``key=value`` string keeps
            that subgroup; None keeps every subgroup.
        use : {"primary", "alternative"} or None
            Which reading of self-contradicting counts; None keeps both.
        studies : iterable of str or None
            Restrict to these study ids.

        Returns
        -------
        pandas.DataFrame
            The outcome columns, then every study column (``label``, ``year``,
            ``her2_method_group``, ``agent``, ``setting``, ...); study columns whose
            name clashes with an outcome column get the suffix ``_study``
            (``source_study``).  Sorted by year, label, study_id, arm, subgroup;
            index reset.

        Raises
        ------
        ValueError
            Unknown outcome, arm or study id, or invalid ``use``.
        """
        rows = self._outcome_rows(outcome, arm, subgroup, use, studies)
        merged = rows.merge(self.studies, on="study_id", how="left", suffixes=("", "_study"),
                            validate="many_to_one")
        merged = merged.sort_values(["year", "label", "study_id", "arm", "subgroup"],
                                    kind="stable")
        return merged.reset_index(drop=True)

    def rows_digest(self, outcome: str, *, arm: str | None = None,
                    subgroup: str | None = "", use: str | None = "primary",
                    studies: Iterable[str] | None = None) -> str:
        """SHA-256 of exactly the rows :meth:`select` reads with the same filters.

        The digest covers the selected ``outcomes.csv`` rows and the ``studies.csv``
        rows they join, by content (all columns), independent of their position in
        the files: it changes if and only if one of those rows changes, appears or
        disappears.

        Parameters
        ----------
        outcome, arm, subgroup, use, studies
            As for :meth:`select`.

        Returns
        -------
        str
            Hexadecimal SHA-256.
        """
        rows = self._outcome_rows(outcome, arm, subgroup, use, studies)
        joined = self.studies[self.studies["study_id"].isin(set(rows["study_id"]))]
        payload = {"outcomes": _canonical_rows(rows), "studies": _canonical_rows(joined)}
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_rows(frame: pd.DataFrame) -> list[str]:
    """Each row as a key-sorted JSON object of text values; the list sorted."""
    out = []
    for record in frame.to_dict(orient="records"):
        values = {str(k): _canonical_value(v) for k, v in record.items()}
        out.append(json.dumps(values, sort_keys=True, ensure_ascii=False))
    return sorted(out)


def _canonical_value(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)
