"""Where a registry row's numbers come from: a seed text, or an external publication.

A row's ``source`` is one of two kinds.

* **A seed text** (a ``.txt`` file name, e.g. ``000_9b98dfee22ec06eb.txt``): one of the
  documents the book started from, available as plain text. The row carries a verbatim
  ``quote`` from it, which ``evidence audit-sources`` finds in the text.
* **An external publication**, named by a stable identifier: ``doi:10.xxxx/...``,
  ``pmid:12345678``, ``pmcid:PMC1234567`` or, for a trial registry record,
  ``nct:NCT01234567``. The repository stores no text of it: the row records the ``url``
  the figures were read at, where on that page they stand (``locator``), the figures
  exactly as printed (``printed``: figures, not sentences, at most
  :data:`MAX_PRINTED_WORDS` words), the date it was read (``retrieved``, ISO
  ``YYYY-MM-DD``) and whether the source is the study's own report (``source_level``
  ``primary``) or a review or citing paper (``secondary``); ``quote`` stays empty.

The functions here classify a source and list what is wrong with a row's provenance;
:mod:`evidence.registry.rules` reports it as ``FILE:LINE: column: reason``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

__all__ = [
    "EXTERNAL_COLUMNS",
    "IDENTIFIER_FORMS",
    "MAX_PRINTED_WORDS",
    "SOURCE_LEVELS",
    "identifier_url",
    "provenance_problems",
    "source_kind",
]

#: The accepted identifier forms, each with an example.
IDENTIFIER_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "doi": (re.compile(r"doi:10\.\d{4,9}/\S+"), "doi:10.1093/clinchem/hvad144"),
    "pmid": (re.compile(r"pmid:[1-9]\d{0,8}"), "pmid:38175617"),
    "pmcid": (re.compile(r"pmcid:PMC\d{4,9}"), "pmcid:PMC2242672"),
    "nct": (re.compile(r"nct:NCT\d{8}"), "nct:NCT01619111"),
}
_FORMS = ", ".join(example for _, example in IDENTIFIER_FORMS.values())
_SEED = re.compile(r"[A-Za-z0-9_.-]+\.txt")
#: Columns an external row must fill.
EXTERNAL_COLUMNS: tuple[str, ...] = ("url", "locator", "printed", "retrieved")
#: ``source_level`` values (empty means ``primary``).
SOURCE_LEVELS: tuple[str, ...] = ("primary", "secondary")
#: Figures as printed, not sentences: the most words ``printed`` may hold.
MAX_PRINTED_WORDS = 12
_EARLIEST = datetime.date(1990, 1, 1)


def source_kind(source: str) -> str | None:
    """``"seed"`` for a seed text's file name, the identifier's prefix (``"doi"``,
    ``"pmid"``, ``"pmcid"``, ``"nct"``) for an external source, None otherwise."""
    if _SEED.fullmatch(source):
        return "seed"
    for kind, (pattern, _) in IDENTIFIER_FORMS.items():
        if pattern.fullmatch(source):
            return kind
    return None


def identifier_url(source: str) -> str | None:
    """The resolver URL of an external identifier (None for a seed or anything else)."""
    kind = source_kind(source)
    value = source.partition(":")[2]
    return {"doi": f"https://doi.org/{value}",
            "pmid": f"https://pubmed.ncbi.nlm.nih.gov/{value}/",
            "pmcid": f"https://pmc.ncbi.nlm.nih.gov/articles/{value}/",
            "nct": f"https://clinicaltrials.gov/study/{value}"}.get(kind or "")


def _date_problem(value: str) -> str | None:
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a date YYYY-MM-DD"
    if len(value) != 10:
        return f"{value!r} is not a date YYYY-MM-DD"
    if day < _EARLIEST:
        return f"{value} is before {_EARLIEST.isoformat()}"
    return None


def provenance_problems(cells: Mapping[str, str], *, quote_column: str | None = "quote",
                        figures: bool = True) -> list[tuple[str, str]]:
    """Every problem with a row's provenance, as ``(column, reason)`` pairs.

    Parameters
    ----------
    cells : mapping
        The row's cells (stripped).
    quote_column : str or None
        The column that holds a seed quote (None: the file has none, e.g.
        ``studies.csv``).
    figures : bool
        The row states numbers, so an external source must give them as ``printed``
        (False for ``studies.csv``, whose rows describe a study).

    Returns
    -------
    list of (str, str)
        Empty when the provenance is complete.
    """
    problems: list[tuple[str, str]] = []
    source = cells.get("source", "")
    if not source:
        return [("source", f"missing value: a seed text's file name (*.txt) or the "
                           f"publication's identifier ({_FORMS})")]
    kind = source_kind(source)
    if kind is None:
        return [("source", f"{source!r} is neither a seed text's file name (*.txt) nor an "
                           f"identifier ({_FORMS})")]
    level = cells.get("source_level", "")
    if level and level not in SOURCE_LEVELS:
        problems.append(("source_level", f"{level!r} is not one of "
                                         f"{', '.join(SOURCE_LEVELS)} (empty means primary)"))
    if kind == "seed":
        if quote_column is not None and not cells.get(quote_column, ""):
            problems.append((quote_column, "missing value: a row from a seed text carries the "
                                           "verbatim quote that states its numbers"))
        return problems
    if quote_column is not None and cells.get(quote_column, ""):
        problems.append((quote_column, "must be empty for an external source: the registry "
                                       "keeps no text of it (give the figures in 'printed')"))
    needed = EXTERNAL_COLUMNS if figures else ("url", "locator", "retrieved")
    for column in needed:
        if not cells.get(column, ""):
            problems.append((column, f"missing value: required for a row from {source} "
                                     "(an external source)"))
    url = cells.get("url", "")
    if url and not url.startswith(("https://", "http://")):
        problems.append(("url", f"{url!r} is not an http(s) URL"))
    printed = cells.get("printed", "")
    if printed and len(printed.split()) > MAX_PRINTED_WORDS:
        problems.append(("printed", f"{len(printed.split())} words: give the figures as "
                                    f"printed, not a sentence (at most {MAX_PRINTED_WORDS} "
                                    "words)"))
    retrieved = cells.get("retrieved", "")
    if retrieved:
        problem = _date_problem(retrieved)
        if problem:
            problems.append(("retrieved", problem))
    return problems
