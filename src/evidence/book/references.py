"""The references of the registry's studies: one entry per row of ``studies.csv``.

The book's bibliography (``book/references.bib``) holds the methods literature and the
works the chapters cite; the studies themselves are listed from the registry, so that a
study added to ``studies.csv`` is in the references of the next build. Each entry is the
registry's ``citation`` (escaped: registry text never reaches a page as markup), its DOI
as a link, and the identifier its numbers were read from (``source``) when that is a
PMID, PMCID, DOI or trial-registry number other than the study's own DOI.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from evidence.book.provenance import doi_url

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StudyReference", "describe_references", "identifier_url", "references_html",
           "study_references"]

#: Resolver of each identifier scheme of a registry ``source`` (``scheme:value``).
_RESOLVERS: dict[str, tuple[str, str, re.Pattern[str]]] = {
    "doi": ("DOI", "https://doi.org/", re.compile(r"^10\.[0-9]{4,9}/\S+$")),
    "pmid": ("PMID", "https://pubmed.ncbi.nlm.nih.gov/", re.compile(r"^[0-9]{1,9}$")),
    "pmcid": ("PMCID", "https://pmc.ncbi.nlm.nih.gov/articles/", re.compile(r"^PMC[0-9]+$")),
    "nct": ("ClinicalTrials.gov", "https://clinicaltrials.gov/study/",
            re.compile(r"^NCT[0-9]{8}$")),
}


@dataclass(frozen=True)
class StudyReference:
    """One study's entry in the references.

    Attributes
    ----------
    study_id, label, year, citation : str
        As in ``studies.csv`` (``year`` as text).
    doi : str
        The study's bare DOI, or empty.
    source : str
        The identifier its numbers were read from (``pmid:29893791``), or empty when that
        is a seed text or the study's own DOI.
    """

    study_id: str
    label: str
    year: str
    citation: str
    doi: str
    source: str


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _year(value: Any) -> str:
    text = _text(value)
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def identifier_url(identifier: str) -> tuple[str, str] | None:
    """The reader's name and resolver URL of a registry identifier.

    Parameters
    ----------
    identifier : str
        ``doi:10.x/y``, ``pmid:N``, ``pmcid:PMCN`` or ``nct:NCTN`` (a ``source`` cell).

    Returns
    -------
    tuple of (str, str) or None
        (``"PMID 29893791"``, ``"https://pubmed.ncbi.nlm.nih.gov/29893791/"``); None for
        anything else (a seed file name, an empty or malformed identifier).
    """
    scheme, sep, value = identifier.strip().partition(":")
    resolver = _RESOLVERS.get(scheme.lower()) if sep else None
    if resolver is None or not resolver[2].match(value):
        return None
    name, base, _ = resolver
    suffix = "/" if scheme.lower() in ("pmid", "pmcid") else ""
    return f"{name} {value}", base + url_quote(value, safe="/:;()._-") + suffix


def study_references(studies: pd.DataFrame) -> list[StudyReference]:
    """Every study of the registry as a reference, by label, then year and id.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``studies.csv`` rows (columns ``study_id``, ``label``, ``year``, ``citation``,
        ``doi``, ``source``).

    Returns
    -------
    list of StudyReference
        One per row; ``source`` is kept only when it is an identifier
        (:func:`identifier_url`) other than ``doi:<the study's DOI>``.
    """
    refs = []
    for row in studies.to_dict("records"):
        doi = _text(row.get("doi"))
        source = _text(row.get("source"))
        if identifier_url(source) is None or source.lower() == f"doi:{doi}".lower():
            source = ""
        refs.append(StudyReference(
            study_id=_text(row["study_id"]), label=_text(row.get("label")),
            year=_year(row.get("year")), citation=_text(row.get("citation")), doi=doi,
            source=source))
    return sorted(refs, key=lambda r: (r.label.casefold(), r.year, r.study_id))


def _link(text: str, url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text, quote=True)}</a>'


def references_html(refs: list[StudyReference]) -> str:
    """The references as an HTML list, every registry text escaped.

    Parameters
    ----------
    refs : list of StudyReference
        From :func:`study_references`.

    Returns
    -------
    str
        ``<ol class="evidence-references">`` with one ``<li id="ref-<study_id>">`` per
        study: its label in bold, its citation, its DOI as a link to ``doi.org`` and the
        identifier its numbers were read from, linked to its resolver.
    """
    out = ['<ol class="evidence-references">']
    for r in refs:
        parts = [f"<strong>{html.escape(r.label, quote=True)}</strong>.",
                 html.escape(r.citation, quote=True)]
        url = doi_url(r.doi)
        if url:
            parts.append(f"DOI: {_link(r.doi, url)}.")
        elif r.doi:
            parts.append(f"DOI: {html.escape(r.doi, quote=True)}.")
        source = identifier_url(r.source) if r.source else None
        if source:
            parts.append(f"Numbers read from {_link(*source)}.")
        out.append(f'<li id="ref-{html.escape(r.study_id, quote=True)}">'
                   + " ".join(parts) + "</li>")
    out.append("</ol>")
    return "\n".join(out)


def describe_references(refs: list[StudyReference]) -> str:
    """One sentence on the list: how many studies, how many with a DOI.

    Parameters
    ----------
    refs : list of StudyReference
        From :func:`study_references`.

    Returns
    -------
    str
        Plain text (no registry text in it).
    """
    n, with_doi = len(refs), sum(bool(r.doi) for r in refs)
    if n == 0:
        return "The registry holds no study."
    studies = "study" if n == 1 else "studies"
    return (f"The {n} {studies} of the registry (data/studies.csv), by first author: "
            f"{with_doi} with a DOI. Where the numbers were read from a publication with a "
            "PMID, PMCID or DOI of its own (the study's report, or a review that tabulates "
            "it), that identifier follows the citation.")
