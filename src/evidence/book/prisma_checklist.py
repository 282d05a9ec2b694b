"""The PRISMA 2020 checklist: each of its 27 items (and sub-items) with where the book
addresses it, or why it does not. The places are pages of the book; :func:`checklist`
checks that every one is in the table of contents, so a page that is renamed or removed
breaks the build instead of leaving a dead link.

The items are summarised in our words (Page et al., BMJ 2021;372:n71 has the full
wording).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ITEMS", "ChecklistItem", "book_pages", "checklist", "checklist_html",
           "describe_checklist"]


@dataclass(frozen=True)
class ChecklistItem:
    """One PRISMA 2020 item: section, number, what it asks (our words), the book pages
    that address it (paths relative to the book root, without extension) and a comment
    (how, or why not)."""

    section: str
    number: str
    topic: str
    pages: tuple[str, ...]
    comment: str


_M = "book/methods"
_A = "book/analyses"
ITEMS: tuple[ChecklistItem, ...] = (
    ChecklistItem("Title", "1", "The report is identified as a systematic review.",
                  ("book/intro",), "The title and the landing page: a living systematic "
                  "review and meta-analysis."),
    ChecklistItem("Abstract", "2", "A structured abstract (PRISMA 2020 for Abstracts).",
                  (f"{_A}/abstract",), "Background, objectives, methods, results and "
                  "conclusions, generated from the results."),
    ChecklistItem("Introduction", "3", "The rationale in the context of what is known.",
                  ("book/intro",), "The clinical question and the therapeutic hypothesis."),
    ChecklistItem("Introduction", "4", "The objectives or questions.", ("book/intro",
                  f"{_A}/selection"), "Five questions; their criteria are listed per question."),
    ChecklistItem("Methods", "5", "Eligibility criteria and how studies were grouped.",
                  (f"{_A}/selection", _M), "data/eligibility.csv, shown per question."),
    ChecklistItem("Methods", "6", "Every information source and the date each was last "
                  "searched.", (f"{_A}/selection",), "Database searches and reference lists, "
                  "with dates, in the search log."),
    ChecklistItem("Methods", "7", "The full search strategies.", (f"{_A}/selection",),
                  "Every query exactly as run, in the search log."),
    ChecklistItem("Methods", "8", "How studies were selected (reviewers, automation).",
                  (_M, "book/declarations"), "One reviewer with automated consistency checks "
                  "of the logs; stated as a limitation."),
    ChecklistItem("Methods", "9", "How data were collected (reviewers, confirmation).",
                  (_M, f"{_A}/registry"), "Every number with its quote or identifier, "
                  "locator and printed figures; an automated audit against the sources."),
    ChecklistItem("Methods", "10a", "The outcomes sought and how they were defined.",
                  (f"{_A}/registry",), "data/outcome_types.csv defines each outcome's "
                  "events and denominator."),
    ChecklistItem("Methods", "10b", "Other variables sought (participants, interventions, "
                  "funding) and assumptions for missing information.", (f"{_A}/registry",),
                  "Study characteristics in data/studies.csv; missing values are left empty "
                  "and named."),
    ChecklistItem("Methods", "11", "How risk of bias was assessed (tools, reviewers).",
                  (f"{_A}/risk_of_bias", _M), "RoB 2, ROBINS-I, JBI, QUADAS-2 adapted and QUIPS; "
                  "overall judgements computed by each tool's rule."),
    ChecklistItem("Methods", "12", "The effect measures used for each outcome.", (_M,),
                  "Proportions (logit scale), risk ratios, hazard ratios."),
    ChecklistItem("Methods", "13a", "Which studies were eligible for each synthesis.",
                  (_M, f"{_A}/registry"), "Each pooled page lists the registry rows it did not "
                  "pool and why."),
    ChecklistItem("Methods", "13b", "Data preparation (conversions, missing statistics).",
                  (_M, f"{_A}/registry"), "Derived counts and back-calculated standard errors "
                  "say how they were derived."),
    ChecklistItem("Methods", "13c", "How results were tabulated or displayed.", (_M,),
                  "Study tables, forest plots with risk of bias, the summary of findings."),
    ChecklistItem("Methods", "13d", "Synthesis methods and their rationale, software.",
                  (_M, f"{_A}/methods_runs", f"{_A}/reproducibility"), "The binomial-normal "
                  "model with t intervals, the ad hoc Hartung-Knapp interval; parity with "
                  "metafor."),
    ChecklistItem("Methods", "13e", "Methods to explore heterogeneity.", (_M,),
                  "Subgroups by HER2 method, cut-off, setting and tissue compared."),
    ChecklistItem("Methods", "13f", "Sensitivity analyses.", (_M, f"{_A}/robustness"),
                  "Every estimator and interval, leave-one-out, without high-risk studies, a "
                  "Bayesian model."),
    ChecklistItem("Methods", "14", "How the risk of reporting bias was assessed.",
                  (f"{_A}/summary",), "Egger's test from ten studies on; below that, not "
                  "assessable, as the certainty table states."),
    ChecklistItem("Methods", "15", "How certainty in the evidence was assessed.",
                  (f"{_A}/summary", "book/methods"), "GRADE: rules propose, the reviewers "
                  "decide, departures are shown."),
    ChecklistItem("Results", "16a", "The search and selection, with a flow diagram.",
                  (f"{_A}/selection",), "The PRISMA 2020 diagram, counted from the logs."),
    ChecklistItem("Results", "16b", "Studies that seemed eligible but were excluded, and "
                  "why.", (f"{_A}/selection",), "Every excluded record with its reason is in "
                  "data/screening.csv; the page counts them by reason."),
    ChecklistItem("Results", "17", "Each included study with its characteristics.",
                  (f"{_A}/registry",), "The study table of the registry chapter."),
    ChecklistItem("Results", "18", "The risk of bias of each included study.",
                  (f"{_A}/risk_of_bias",), "Traffic-light plots and every judgement with its "
                  "support."),
    ChecklistItem("Results", "19", "Each study's results with a precision estimate.",
                  (f"{_A}/orr", f"{_A}/conv_neg_to_pos"), "Every pooled page's study table and "
                  "forest plot."),
    ChecklistItem("Results", "20a", "For each synthesis, its studies' characteristics and "
                  "risk of bias.", (f"{_A}/orr",), "Each pooled page (RoB column, study table)."),
    ChecklistItem("Results", "20b", "The results of each statistical synthesis.",
                  (f"{_A}/summary",), "Every pooled page and the summary of findings."),
    ChecklistItem("Results", "20c", "The results of investigations of heterogeneity.",
                  (f"{_A}/conv_neg_to_pos",), "Subgroup sections of the pooled pages."),
    ChecklistItem("Results", "20d", "The results of sensitivity analyses.",
                  (f"{_A}/robustness", f"{_A}/orr"), "The estimator panel, leave-one-out, "
                  "without high-risk studies, Bayesian."),
    ChecklistItem("Results", "21", "The risk of reporting bias for each synthesis.",
                  (f"{_A}/summary",), "The publication-bias domain of each outcome."),
    ChecklistItem("Results", "22", "The certainty of the evidence for each outcome.",
                  (f"{_A}/summary",), "GRADE certainty with footnoted reasons."),
    ChecklistItem("Discussion", "23a", "The results in the context of other evidence.",
                  (f"{_A}/discussion",), "Agreement with other reviews, from data/reviews.csv."),
    ChecklistItem("Discussion", "23b", "Limitations of the evidence.", (f"{_A}/discussion",),
                  "Quality of the evidence."),
    ChecklistItem("Discussion", "23c", "Limitations of the review processes.",
                  (f"{_A}/discussion",), "Potential biases in the review process."),
    ChecklistItem("Discussion", "23d", "Implications for practice, policy and research.",
                  (f"{_A}/discussion",), "Authors' conclusions."),
    ChecklistItem("Other information", "24a", "Registration of the review.",
                  ("book/declarations",), "Not registered (for example in PROSPERO); stated "
                  "as a deviation from good practice."),
    ChecklistItem("Other information", "24b", "Where the protocol can be accessed.",
                  ("book/declarations",), "The protocol is the eligibility criteria and the "
                  "analysis plan in the repository (data/eligibility.csv, analyses.yml)."),
    ChecklistItem("Other information", "24c", "Amendments to the protocol.",
                  ("book/declarations",), "Deviations are listed in the declarations."),
    ChecklistItem("Other information", "25", "Sources of financial or other support.",
                  ("book/declarations",), "None."),
    ChecklistItem("Other information", "26", "Competing interests.", ("book/declarations",),
                  "None declared."),
    ChecklistItem("Other information", "27", "Availability of data, code and other "
                  "materials.", (f"{_A}/registry", f"{_A}/reproducibility"),
                  "The registry, the library, the notebooks and an R script per pooled "
                  "analysis are downloadable."),
)


def checklist(pages: Iterable[str], items: tuple[ChecklistItem, ...] = ITEMS
              ) -> pd.DataFrame:
    """The checklist as a table (section, item, topic, where, comment), every place a
    page of the book.

    Raises
    ------
    ValueError
        An item names a page the table of contents does not list.
    """
    import pandas as pd

    known = set(pages)
    missing = sorted({p for item in items for p in item.pages if p not in known})
    if missing:
        raise ValueError(f"PRISMA checklist: pages {missing} are not in the table of contents")
    return pd.DataFrame([{"Section": i.section, "Item": i.number, "Topic": i.topic,
                          "Where": " · ".join(i.pages), "How": i.comment} for i in items])


def describe_checklist(items: tuple[ChecklistItem, ...] = ITEMS) -> str:
    """How many items, all addressed or explained."""
    main = {i.number.rstrip("abcdef") for i in items}
    return (f"All {len(main)} items of the PRISMA 2020 checklist ({len(items)} with their "
            "sub-items), each with the pages that address it or the reason it is not met. "
            "Follow a page in the 'Where' column to check.")


def book_pages(config: object) -> list[str]:
    """Every page of the book: the landing page, the hand-written chapters and every
    analysis (``book/analyses/<id>``), from the loaded ``analyses.yml``."""
    pages = [config.root_page]  # type: ignore[attr-defined]
    for part in config.parts:  # type: ignore[attr-defined]
        pages += [c for c in part.chapters if not c.startswith("analysis:")]
    pages += [f"book/analyses/{a.id}" for a in config.analyses]  # type: ignore[attr-defined]
    return pages


def checklist_html(table: pd.DataFrame, prefix: str = "../../") -> str:
    """The checklist as an HTML table; each place a link (``prefix`` leads from the page
    showing it to the book root). Every text is escaped."""
    import html

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.to_dict("records"):
        cells = []
        for column, value in row.items():
            if column == "Where":
                links = [f'<a href="{html.escape(prefix + p)}.html">{html.escape(p)}</a>'
                         for p in str(value).split(" · ")]
                cells.append("<td>" + "<br>".join(links) + "</td>")
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ('<table class="dataframe evidence-table"><thead><tr>' + head + "</tr></thead>"
            "<tbody>" + "".join(body) + "</tbody></table>")
