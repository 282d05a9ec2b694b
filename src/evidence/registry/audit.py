"""Audit the registry against its source texts: every number must have a trail.

:func:`audit_sources` checks the rows of ``outcomes.csv``, ``effects.csv``,
``transitions.csv`` and ``harms.csv``, and the support of every judgement in
``risk_of_bias.csv`` (its quote only: a judgement states no numbers), against the plain
text of their source documents:

1. a row from a seed text: the ``source`` file exists in the texts directory, and
2. the ``quote`` occurs in that file after normalisation (:func:`normalise_text`:
   Unicode NFKC, soft hyphens removed, whitespace runs collapsed to one space) and,
   for words hyphenated at a line break, also with ``"-"`` + whitespace removed
   (``"inter-\\nval"`` matches ``"interval"``) or reduced to ``"-"``
   (``"HER2-\\nnegative"`` matches ``"HER2-negative"``);
3. percentages stated next to counts in the quote agree with the counts at the
   precision stated (:func:`percentage_mismatches`); a row whose ``source_error``
   column documents the source's own error (e.g. a mis-rounded percentage) has its
   mismatch reported as a note instead of a failure;
4. in ``transitions.csv`` the cells of each primary table add up to the margins the
   source reports;
5. every ``use=alternative`` row (the other reading of a self-contradicting source)
   is listed as a note with its ``note`` text;
6. a row from an external publication (``source`` an identifier, see
   :mod:`evidence.registry.sources`): its provenance is complete and well formed, and the
   figures it records as ``printed`` show its numbers (:func:`printed_mismatches`): the
   events and the total of a count (or the events and a percentage that agrees with them),
   a transition count, the hazard ratio and its limits; with ``derived`` filled the
   numbers are the derivation's inputs and only their presence is checked.

Findings print as ``FILE:LINE: study_id: message``.  Nothing is written.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from evidence.registry.csvfile import Record, Table, display_path, read_table
from evidence.registry.sources import provenance_problems, source_kind

__all__ = [
    "AuditFinding",
    "AuditReport",
    "PercentageFinding",
    "audit_sources",
    "normalise_text",
    "percentage_findings",
    "percentage_mismatches",
    "printed_mismatches",
    "quote_in_text",
]

_AUDITED_FILES = ("outcomes.csv", "effects.csv", "transitions.csv", "harms.csv",
                  "risk_of_bias.csv")
#: Files whose rows state no numbers: a seed row's quote is checked, nothing else.
_QUOTE_ONLY = ("risk_of_bias.csv",)
_KEYS = {
    "outcomes.csv": ("study_id", "arm", "outcome", "subgroup"),
    "effects.csv": ("study_id", "outcome", "comparison", "subgroup", "adjusted"),
    "transitions.csv": ("study_id", "subgroup", "from_category", "to_category"),
}
_COUNT_COLUMNS = {"outcomes.csv": ("events", "total"), "transitions.csv": ("count",)}
_REAL_CATEGORIES = ("zero", "low", "positive")
_SOFT_HYPHEN = "\u00ad"

# Percentages next to counts.  _NUM is a percentage (decimal point or comma); a count
# must not continue a number or a fraction ("36/58" is not the count 58).
_NUM = r"(\d+(?:[.,]\d+)?)"
_START = r"(?<![\d.,/])"
_OF = r"\s*(?:/|\s(?:out\s+)?of\s)\s*"  # "e/t", "e of t", "e out of t"
_FRACTION_PATTERNS = (  # (events, total, percent) group order per pattern
    (re.compile(_START + r"(\d+)" + _OF + r"(\d+)\s*\(\s*" + _NUM + r"\s*%\s*\)"), (1, 2, 3)),
    (re.compile(_START + _NUM + r"\s*%\s*\(\s*(\d+)" + _OF + r"(\d+)\s*\)"), (2, 3, 1)),
    # "54% in the control group (14 out of 25 patients)": a few words between
    (re.compile(_START + _NUM + r"\s*%\s+(?:in|for|of|among)\s[^\d%()]{1,40}?\(\s*(\d+)" + _OF
                + r"(\d+)(?![\d.,/])"), (2, 3, 1)),
)
_COUNT_PATTERNS = (  # (count, percent) group order per pattern
    (re.compile(_START + r"(\d+)\s*\(\s*" + _NUM + r"\s*%\s*\)"), (1, 2)),
    (re.compile(_START + _NUM + r"\s*%\s*\(\s*(\d+)\s*\)"), (2, 1)),
)


@dataclass(frozen=True)
class AuditFinding:
    """One audit failure or note.

    Attributes
    ----------
    file : str
        The registry file as displayed (``data/outcomes.csv``).
    line : int
        1-based line where the row starts (0 when the file is missing).
    study_id : str
        The row's study (empty when not applicable).
    message : str
        What was found.
    """

    file: str
    line: int
    study_id: str
    message: str

    def __str__(self) -> str:
        if self.study_id:
            return f"{self.file}:{self.line}: {self.study_id}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class AuditReport:
    """Result of :func:`audit_sources`.

    Attributes
    ----------
    failures : list of AuditFinding
        Problems that must be fixed (quote not found, percentage mismatch, ...).
    notes : list of AuditFinding
        Things a reviewer should see but that are not errors (DOI sources not checked,
        alternative readings, undocumented derivations).
    """

    failures: list[AuditFinding]
    notes: list[AuditFinding]

    @property
    def ok(self) -> bool:
        """True when there is no failure (notes do not count)."""
        return not self.failures


# --------------------------------------------------------------------------- text


def normalise_text(text: str) -> str:
    """Normalise text for quote matching.

    Unicode NFKC (so a no-break space is a space and ``ﬁ`` is ``fi``), soft hyphens
    removed, every whitespace run (including tabs and line breaks) collapsed to one
    space, leading and trailing whitespace removed.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The normalised text.
    """
    text = unicodedata.normalize("NFKC", text).replace(_SOFT_HYPHEN, "")
    return " ".join(text.split())


def _variants(normalised: str) -> tuple[str, str, str]:
    """The text as is, with ``"- "`` removed (hyphenation), and with ``"- "`` -> ``"-"``."""
    return normalised, normalised.replace("- ", ""), normalised.replace("- ", "-")


def quote_in_text(quote: str, text: str) -> bool:
    """Whether ``quote`` occurs in ``text`` after normalisation.

    Both are normalised with :func:`normalise_text`; the quote matches if it occurs in
    the text as is, or, in both, with each ``"-"`` followed by whitespace joined
    (``"inter- val"`` -> ``"interval"``), or with the whitespace after such a hyphen
    removed (``"HER2- negative"`` -> ``"HER2-negative"``).

    Parameters
    ----------
    quote, text : str
        The quote and the source text (raw or already normalised).

    Returns
    -------
    bool
    """
    quote = normalise_text(quote)
    if not quote:
        return False
    return _found(_variants(quote), _variants(normalise_text(text)))


def _found(quote_variants: tuple[str, ...], text_variants: tuple[str, ...]) -> bool:
    return any(q in t for q, t in zip(quote_variants, text_variants, strict=True))


def _longest_prefix(quote: str, text_variants: tuple[str, ...]) -> int:
    """Length of the longest start of ``quote`` found in the text (binary search)."""
    low, high = 0, len(quote)
    while low < high:
        mid = (low + high + 1) // 2
        if _found(_variants(quote[:mid]), text_variants):
            low = mid
        else:
            high = mid - 1
    return low


# --------------------------------------------------------------------------- percentages


def _decimals(percent: str) -> int:
    match = re.search(r"[.,](\d+)$", percent)
    return len(match.group(1)) if match else 0


def _disagrees(percent: str, events: int, total: int) -> tuple[bool, float]:
    value = float(percent.replace(",", "."))
    exact = 100.0 * events / total
    tolerance = 0.5 * 10.0 ** -_decimals(percent) + 1e-9
    return abs(value - exact) > tolerance, exact


@dataclass(frozen=True)
class PercentageFinding:
    """A printed percentage that disagrees with the counts it accompanies.

    Attributes
    ----------
    span : str
        The text matched (``"54% in the control group (14 out of 25"``).
    percent : str
        The percentage as printed (``"54"``).
    events, total : int
        The counts it was checked against.
    exact : float
        ``100 * events / total``.
    """

    span: str
    percent: str
    events: int
    total: int
    exact: float

    def message(self) -> str:
        """The audit's wording of the mismatch."""
        return _mismatch(self.span, self.percent, self.events, self.total, self.exact)


def percentage_findings(quote: str, events: int | None = None,
                        total: int | None = None) -> list[PercentageFinding]:
    """The percentages in ``quote`` that disagree with their counts, as
    :class:`PercentageFinding` (see :func:`percentage_mismatches` for the rules)."""
    text = normalise_text(quote)
    found: list[PercentageFinding] = []
    for pattern, (i_events, i_total, i_percent) in _FRACTION_PATTERNS:
        for match in pattern.finditer(text):
            e, t, p = int(match[i_events]), int(match[i_total]), match[i_percent]
            if t > 0 and (events is None or e == events):
                bad, exact = _disagrees(p, e, t)
                if bad:
                    found.append(PercentageFinding(match[0].strip(), p, e, t, exact))
        text = pattern.sub(lambda m: " " * len(m[0]), text)  # not seen again as "N (P%)"
    if events is None or not total:
        return found
    for pattern, (i_count, i_percent) in _COUNT_PATTERNS:
        for match in pattern.finditer(text):
            if int(match[i_count]) != events:
                continue
            bad, exact = _disagrees(match[i_percent], events, total)
            if bad:
                found.append(PercentageFinding(match[0].strip(), match[i_percent], events,
                                               total, exact))
        text = pattern.sub(lambda m: " " * len(m[0]), text)
    return found


def percentage_mismatches(quote: str, events: int | None = None,
                          total: int | None = None) -> list[str]:
    """Percentages in ``quote`` that disagree with the counts they accompany.

    Forms recognised (spaces optional, decimal point or comma): ``"e/t (P%)"``,
    ``"e of t (P%)"``, ``"e out of t (P%)"``, ``"P% (e/t)"``, ``"P% (e out of t)"``,
    ``"P% in the control group (e out of t patients)"`` (up to 40 characters of words)
    (checked against ``100*e/t`` as the quote states them), and ``"N (P%)"``,
    ``"P% (N)"`` (checked against ``100*events/total`` of the row).  With row counts
    given, only percentages whose count equals ``events`` are checked (the quote may
    state other groups' numbers); without them, every ``e/t`` form is checked and
    the ``N`` forms are skipped.  ``P`` agrees when
    ``|P - 100*e/t| <= 0.5 * 10**-decimals + 1e-9``, i.e. to the precision stated.

    Parameters
    ----------
    quote : str
        The quote (normalised here).
    events, total : int or None
        The row's counts, or None for rows without counts.

    Returns
    -------
    list of str
        One message per mismatch, naming the stated and the computed percentage.
    """
    return [f.message() for f in percentage_findings(quote, events, total)]


_WORD_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}


def _numbers(text: str) -> list[float]:
    """The numbers a printed text states (digits, or a number word up to twenty)."""
    words = re.sub(r"[A-Za-z]+", lambda m: _WORD_NUMBERS.get(m[0].lower(), m[0]), text)
    return [float(n.replace(",", ".")) for n in re.findall(r"\d+(?:[.,]\d+)?", words)]


def _has(numbers: list[float], value: str) -> bool:
    try:
        target = float(value)
    except ValueError:
        return False
    return any(abs(n - target) <= 1e-9 * max(1.0, abs(target)) for n in numbers)


def printed_mismatches(name: str, cells: dict[str, str]) -> list[str]:
    """Where the figures a row records as ``printed`` do not show its numbers.

    Parameters
    ----------
    name : str
        The registry file (``outcomes.csv``, ``effects.csv``, ``transitions.csv``).
    cells : dict
        The row.

    Returns
    -------
    list of str
        Empty when ``printed`` states the row's numbers: for a count, its events and its
        total, or its events and a percentage of ``100*events/total`` to the precision
        printed; for a transition, its count; for a hazard ratio, the estimate and the
        reported limits. A percentage next to a count that disagrees with it is a
        mismatch too (:func:`percentage_mismatches`). With ``derived`` filled, the row's
        numbers were computed from the printed ones, and only a printed number is needed.
    """
    printed = cells.get("printed", "")
    numbers = _numbers(printed)
    if not printed:
        return []
    if cells.get("derived", ""):
        return [] if numbers else [f"printed {printed!r} states no number to derive from"]
    problems = []
    if name in ("outcomes.csv", "harms.csv"):
        events, total = cells.get("events", ""), cells.get("total", "")
        if name == "harms.csv" and not events and not total:
            return []  # a harm reported without counts (the printed words say what was)
        if not _has(numbers, events):
            problems.append(f"printed {printed!r} does not show the events {events} "
                            "(fill 'derived' if they were computed)")
        elif not _has(numbers, total):
            percents = [m.group(1) for m in re.finditer(r"(\d+(?:[.,]\d+)?)\s*%", printed)]
            ok = total.isdigit() and int(total) > 0 and any(
                not _disagrees(pct, int(events), int(total))[0] for pct in percents)
            if not ok:
                problems.append(f"printed {printed!r} shows neither the total {total} nor a "
                                f"percentage that agrees with {events}/{total}")
        if events.isdigit() and total.isdigit():
            problems += percentage_mismatches(printed, int(events), int(total))
    elif name == "transitions.csv":
        if not _has(numbers, cells.get("count", "")):
            problems.append(f"printed {printed!r} does not show the count {cells.get('count')}")
    else:
        for column in ("estimate", "ci_lower", "ci_upper"):
            value = cells.get(column, "")
            if value and not _has(numbers, value):
                problems.append(f"printed {printed!r} does not show the {column} {value}")
    return problems


def _mismatch(span: str, percent: str, events: int, total: int, exact: float) -> str:
    digits = _decimals(percent) + 2
    return (f"percentage mismatch in {span.strip()!r}: the quote says {percent}% but "
            f"100*{events}/{total} = {exact:.{digits}f}%")


# --------------------------------------------------------------------------- audit


class _Sources:
    """Source texts under ``texts_dir``, read once and normalised."""

    def __init__(self, texts_dir: Path) -> None:
        self.root = texts_dir.resolve()
        self.cache: dict[str, tuple[str, str, str] | None] = {}

    def get(self, source: str) -> tuple[str, str, str] | None:
        if source not in self.cache:
            path = (self.root / source).resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                self.cache[source] = None
            else:
                with path.open("rb") as fh:
                    text = fh.read().decode("utf-8-sig", errors="replace")
                self.cache[source] = _variants(normalise_text(text))
        return self.cache[source]


class _Auditor:
    def __init__(self, sources: _Sources) -> None:
        self.sources = sources
        self.failures: list[AuditFinding] = []
        self.notes: list[AuditFinding] = []

    def fail(self, table: Table, record: Record, message: str) -> None:
        self.failures.append(AuditFinding(table.file, record.line,
                                          record.cells.get("study_id", ""), message))

    def note(self, table: Table, record: Record, message: str) -> None:
        self.notes.append(AuditFinding(table.file, record.line,
                                       record.cells.get("study_id", ""), message))

    def check_external(self, table: Table, record: Record, name: str) -> None:
        """An external row: complete provenance, and printed figures that show its numbers."""
        for column, reason in provenance_problems(record.cells):
            self.fail(table, record, f"{column}: {reason}")
        for message in printed_mismatches(name, record.cells):
            if record.cells.get("source_error", ""):
                self.note(table, record, f"{message} (declared source error: "
                                         f"{record.cells['source_error']})")
            else:
                self.fail(table, record, message)

    def check_quote(self, table: Table, record: Record) -> None:
        source = record.cells.get("source", "")
        quote = normalise_text(record.cells.get("quote", ""))
        if not source:
            self.fail(table, record, "no source")
            return
        text = self.sources.get(source)
        if text is None:
            self.fail(table, record, f"source file {source!r} not found in the texts directory")
            return
        if not quote:
            self.fail(table, record, "no quote")
            return
        if not _found(_variants(quote), text):
            n = _longest_prefix(quote, text)
            self.fail(table, record,
                      f"quote not found in {source}: the first {n} of {len(quote)} "
                      f"characters match, then {quote[n:n + 40]!r} does not")

    def check_percentages(self, table: Table, record: Record) -> None:
        events = _int_or_none(record.cells.get("events"))
        total = _int_or_none(record.cells.get("total"))
        declared = record.cells.get("source_error", "")
        for message in percentage_mismatches(record.cells.get("quote", ""), events, total):
            if declared:
                # the row documents the source's own error: report it, do not fail on it
                self.note(table, record, f"{message} (declared source error: {declared})")
            else:
                self.fail(table, record, message)

    def check_derivation(self, table: Table, record: Record,
                         columns: tuple[str, ...]) -> None:
        """Note counts that the quote does not state while ``derived`` is empty."""
        if record.cells.get("derived", ""):
            return
        stated = set(re.findall(r"(?<![\d.,])\d+(?![.,]?\d)",
                                normalise_text(record.cells.get("quote", ""))))
        missing = [f"{c} {record.cells[c]}" for c in columns
                   if record.cells.get(c, "") not in stated]
        if missing:
            self.note(table, record, f"`derived` is empty but the quote does not state "
                                     f"{' and '.join(missing)} as a number")

    def alternatives(self, table: Table, name: str) -> None:
        keys = _KEYS[name]
        primary: dict[tuple[str, ...], int] = {}
        for record in table.records:
            if _use(record) == "primary":
                primary.setdefault(tuple(record.cells.get(k, "") for k in keys), record.line)
        for record in table.records:
            if _use(record) != "alternative":
                continue
            line = primary.get(tuple(record.cells.get(k, "") for k in keys))
            where = f"primary on line {line}" if line else "no primary row"
            values = _row_values(name, record)
            self.note(table, record, f"alternative reading ({values}; {where}): "
                                     f"{record.cells.get('note', '') or '(no note)'}")

    def margins(self, table: Table) -> None:
        groups: dict[tuple[str, str], dict[tuple[str, str], tuple[int, Record]]] = {}
        for record in table.records:
            count = _int_or_none(record.cells.get("count"))
            if _use(record) != "primary" or count is None:
                continue
            group = (record.cells.get("study_id", ""), record.cells.get("subgroup", ""))
            cell = (record.cells.get("from_category", ""), record.cells.get("to_category", ""))
            groups.setdefault(group, {})[cell] = (count, record)
        for cells in groups.values():
            self._check_group(table, cells)

    def _check_group(self, table: Table,
                     cells: dict[tuple[str, str], tuple[int, Record]]) -> None:
        real = _REAL_CATEGORIES
        lines = {
            **{(c, "any"): [(c, t) for t in real] for c in real},
            **{("any", c): [(f, c) for f in real] for c in real},
            ("any", "any"): [(f, t) for f in real for t in real],
        }
        for margin, parts in lines.items():
            if margin not in cells:
                continue
            value, record = cells[margin]
            present = [p for p in parts if p in cells]
            if margin == ("any", "any") and len(present) < len(parts):
                # without every cell, compare with complete sets of margins instead
                for side, margin_parts in (("row", [(c, "any") for c in real]),
                                           ("column", [("any", c) for c in real])):
                    if all(p in cells for p in margin_parts):
                        self._compare(table, record, value, margin_parts, cells,
                                      f"grand total vs the {side} margins")
                continue
            if not present:
                continue
            if len(present) < len(parts):
                missing = ", ".join(f"{f}->{t}" for f, t in parts if (f, t) not in cells)
                self.note(table, record, f"margin {margin[0]}->{margin[1]} not checked: "
                                         f"cells missing ({missing})")
                continue
            self._compare(table, record, value, parts, cells,
                          f"margin {margin[0]}->{margin[1]}")

    def _compare(self, table: Table, record: Record, value: int,
                 parts: list[tuple[str, str]],
                 cells: dict[tuple[str, str], tuple[int, Record]], what: str) -> None:
        total = sum(cells[p][0] for p in parts)
        if total != value:
            terms = " + ".join(f"{cells[p][0]} ({p[0]}->{p[1]})" for p in parts)
            self.fail(table, record,
                      f"{what}: the parts sum to {total} = {terms}, but the row says {value}")


def _use(record: Record) -> str:
    return record.cells.get("use", "") or "primary"


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _row_values(name: str, record: Record) -> str:
    cells = record.cells
    if name == "outcomes.csv":
        return (f"{cells.get('outcome', '')} {cells.get('events', '')}/"
                f"{cells.get('total', '')}, arm={cells.get('arm', '')}")
    if name == "transitions.csv":
        return (f"{cells.get('from_category', '')}->{cells.get('to_category', '')} = "
                f"{cells.get('count', '')}")
    return (f"{cells.get('outcome', '')} {cells.get('estimate', '')} "
            f"[{cells.get('ci_lower', '')}, {cells.get('ci_upper', '')}]")


def audit_sources(data_dir: str | os.PathLike[str],
                  texts_dir: str | os.PathLike[str]) -> AuditReport:
    """Check the registry's quotes, percentages and transition margins against the sources.

    Parameters
    ----------
    data_dir : str or path-like
        The registry directory (``outcomes.csv`` required; ``effects.csv`` and
        ``transitions.csv`` audited when present).
    texts_dir : str or path-like
        Directory holding the source documents as text, named as in ``source``.

    Returns
    -------
    AuditReport
        ``failures`` and ``notes`` (see the module docstring), each in file and line
        order.  Files that cannot be read as CSV are reported as failures (run
        :func:`evidence.registry.store.validate` for the details).

    Raises
    ------
    FileNotFoundError
        If ``texts_dir`` is not a directory.
    """
    data_dir, texts_dir = Path(data_dir), Path(texts_dir)
    if not texts_dir.is_dir():
        raise FileNotFoundError(f"texts directory not found: {texts_dir}")
    auditor = _Auditor(_Sources(texts_dir))
    for name in _AUDITED_FILES:
        path = data_dir / name
        if name != "outcomes.csv" and not path.exists():
            continue
        table, problems = read_table(path, display_path(data_dir, name))
        for problem in problems:
            auditor.failures.append(AuditFinding(problem.file, problem.line, "",
                                                 f"cannot read: {problem.message}"))
        if table is None:
            continue
        for record in table.records:
            kind = source_kind(record.cells.get("source", ""))
            if kind is not None and kind != "seed":
                if name not in _QUOTE_ONLY:
                    auditor.check_external(table, record, name)
                continue
            auditor.check_quote(table, record)
            if name in _QUOTE_ONLY:
                continue
            auditor.check_percentages(table, record)
            if name in _COUNT_COLUMNS:
                auditor.check_derivation(table, record, _COUNT_COLUMNS[name])
        if name in _KEYS:
            auditor.alternatives(table, name)
        if name == "transitions.csv":
            auditor.margins(table)
    order = {display_path(data_dir, name): i for i, name in enumerate(_AUDITED_FILES)}

    def key(finding: AuditFinding) -> tuple[int, int]:
        return order.get(finding.file, len(order)), finding.line

    return AuditReport(failures=sorted(auditor.failures, key=key),
                       notes=sorted(auditor.notes, key=key))
