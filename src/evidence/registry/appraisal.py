"""Risk of bias: the tools, their domains and vocabularies, and each tool's overall rule.

``risk_of_bias.csv`` holds one row per study x tool x domain: the tool's signalling
answers where it has them, the domain judgement, the reason in the reviewers' words and
its support (a seed quote, or an external source's identifier, locator and date read).
The overall judgement of a study under a tool is never typed in; :func:`overall` computes
it by the tool's own rule:

============== ========================================================================
tool           overall judgement
============== ========================================================================
rob2           high if any domain is high; low if every domain is low; otherwise some
               concerns (RoB 2's algorithm; its optional escalation of several "some
               concerns" to high is a judgement and is not applied)
robins_i       critical if any domain is critical; serious if any is serious; otherwise
               no information if any domain lacks information; moderate if any is
               moderate; low if all are low (ROBINS-I)
quadas2        high if any domain is high; low if every domain is low; otherwise unclear
               (QUADAS-2; adapted here to the agreement of two HER2 assessments)
jbi_case_series the JBI checklist has no summary rule; this review's, fixed before the
               assessments were read: high if two or more items are "no", or if half or
               more of the applicable items are "no" or "unclear"; low if no item is
               "no" and at most one is "unclear"; otherwise some concerns
quips          QUIPS has no summary rule; this review's: high if any domain is high or
               three or more are moderate; low if every domain is low or one is
               moderate; otherwise moderate
============== ========================================================================

Which tool a study needs follows from what the registry pools from it (:func:`required`):
single-arm response counts need ``jbi_case_series``; a comparison of arms ``rob2`` when
the study is randomised, ``robins_i`` otherwise; agreement between two HER2 assessments and
screening yields ``quadas2``; prognostic hazard ratios ``quips``. The kind of each outcome
is ``outcome_types.csv``'s ``appraisal`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evidence.registry._checker import Checker
from evidence.registry.csvfile import Record, RegistryProblem, Table
from evidence.registry.sources import source_kind

__all__ = [
    "APPRAISAL_KINDS",
    "AS_PROPOSED",
    "CERTAINTY_COLUMNS",
    "CERTAINTY_DOMAINS",
    "CERTAINTY_JUDGEMENTS",
    "RISK_OF_BIAS_COLUMNS",
    "SIGNALLING_ANSWERS",
    "TOOLS",
    "Tool",
    "check_certainty",
    "check_risk_of_bias",
    "overall",
    "required",
    "tool_for",
]

#: What ``outcome_types.csv`` ``appraisal`` may say an outcome is.
APPRAISAL_KINDS: tuple[str, ...] = ("single_arm", "comparison", "agreement", "prognosis")
#: RoB 2 / ROBINS-I / QUADAS-2 signalling answers.
SIGNALLING_ANSWERS: tuple[str, ...] = ("Y", "PY", "PN", "N", "NI", "NA")
#: GRADE's five domains and their judgements (``certainty.csv``).
CERTAINTY_DOMAINS: tuple[str, ...] = ("risk_of_bias", "inconsistency", "indirectness",
                                      "imprecision", "publication_bias")
CERTAINTY_JUDGEMENTS: tuple[str, ...] = ("not_serious", "serious", "very_serious")
#: A ``certainty.csv`` judgement that accepts the library's rule: the domain then takes
#: whatever the rule proposes on the current data (and follows it when a study is added).
AS_PROPOSED = "as_proposed"
CERTAINTY_COLUMNS: tuple[str, ...] = ("outcome_id", "domain", "judgement", "reason")
_OUTCOME_ID = re.compile(r"[a-z0-9_]+(:[a-z0-9_]+)*")
RISK_OF_BIAS_COLUMNS: tuple[str, ...] = ("study_id", "tool", "domain", "signalling",
                                         "judgement", "reason", "source", "quote")


@dataclass(frozen=True)
class Tool:
    """A risk-of-bias tool: its domains (code, reader's name), the judgements a domain
    may take (best first) and whether it has signalling questions numbered by domain."""

    name: str
    label: str
    domains: tuple[tuple[str, str], ...]
    judgements: tuple[str, ...]
    overall_levels: tuple[str, ...]
    signalling: bool

    @property
    def domain_codes(self) -> tuple[str, ...]:
        """The domain codes, in the tool's order."""
        return tuple(code for code, _ in self.domains)


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("rob2", "RoB 2 (randomised comparisons)",
         (("randomisation", "Randomisation process"),
          ("deviations", "Deviations from intended interventions"),
          ("missing_data", "Missing outcome data"),
          ("measurement", "Measurement of the outcome"),
          ("reporting", "Selection of the reported result")),
         ("low", "some_concerns", "high"), ("low", "some_concerns", "high"), True),
    Tool("robins_i", "ROBINS-I (non-randomised comparisons)",
         (("confounding", "Confounding"), ("selection", "Selection of participants"),
          ("classification", "Classification of interventions"),
          ("deviations", "Deviations from intended interventions"),
          ("missing_data", "Missing data"), ("measurement", "Measurement of outcomes"),
          ("reporting", "Selection of the reported result")),
         ("low", "moderate", "serious", "critical", "no_information"),
         ("low", "moderate", "no_information", "serious", "critical"), True),
    Tool("quadas2", "QUADAS-2, adapted (agreement of two HER2 assessments, screening yield)",
         (("patient_selection", "Patient selection"),
          ("index_test", "Index test (HER2 on CTCs or on the recurrence)"),
          ("reference_standard", "Reference (HER2 on the tissue or primary tumour)"),
          ("flow_timing", "Flow and timing")),
         ("low", "unclear", "high"), ("low", "unclear", "high"), True),
    Tool("jbi_case_series", "JBI checklist for case series (single-arm trials)",
         (("inclusion_criteria", "1 Clear inclusion criteria"),
          ("condition_measurement", "2 Condition measured in a standard, reliable way"),
          ("condition_identification", "3 Valid methods to identify the condition"),
          ("consecutive_inclusion", "4 Consecutive inclusion"),
          ("complete_inclusion", "5 Complete inclusion"),
          ("demographics_reported", "6 Demographics reported"),
          ("clinical_information", "7 Clinical information reported"),
          ("outcomes_reported", "8 Outcomes or follow-up reported"),
          ("site_demographics", "9 Sites' demographics reported"),
          ("statistical_analysis", "10 Appropriate statistical analysis")),
         ("yes", "no", "unclear", "not_applicable"), ("low", "some_concerns", "high"),
         False),
    Tool("quips", "QUIPS (prognostic factor studies)",
         (("participation", "Study participation"), ("attrition", "Study attrition"),
          ("factor_measurement", "Prognostic factor measurement"),
          ("outcome_measurement", "Outcome measurement"),
          ("confounding", "Study confounding"),
          ("analysis", "Statistical analysis and reporting")),
         ("low", "moderate", "high"), ("low", "moderate", "high"), False),
)}


def overall(tool: str, judgements: Mapping[str, str]) -> str:
    """The overall judgement of one study under ``tool`` from its domain judgements.

    Raises
    ------
    ValueError
        Unknown tool, a domain missing or unknown, or a judgement outside the tool's
        vocabulary.
    """
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    t = TOOLS[tool]
    missing = [d for d in t.domain_codes if d not in judgements]
    extra = [d for d in judgements if d not in t.domain_codes]
    if missing or extra:
        raise ValueError(f"{tool}: domains missing {missing} or unknown {extra}")
    bad = [j for j in judgements.values() if j not in t.judgements]
    if bad:
        raise ValueError(f"{tool}: judgements {bad} not in {', '.join(t.judgements)}")
    values = [judgements[d] for d in t.domain_codes]
    if tool in ("rob2", "quadas2"):
        worst = "high" if "high" in values else None
        if worst:
            return worst
        return "low" if all(v == "low" for v in values) else t.judgements[1]
    if tool == "robins_i":
        for level in ("critical", "serious", "no_information", "moderate"):
            if level in values:
                return level
        return "low"
    if tool == "jbi_case_series":
        applicable = [v for v in values if v != "not_applicable"]
        no, unclear = applicable.count("no"), applicable.count("unclear")
        if no >= 2 or 2 * (no + unclear) >= len(applicable):
            return "high"
        if no == 0 and unclear <= 1:
            return "low"
        return "some_concerns"
    # quips
    moderate = values.count("moderate")
    if "high" in values or moderate >= 3:
        return "high"
    return "low" if moderate <= 1 else "moderate"


def tool_for(kind: str, randomized: str) -> str:
    """The tool an appraisal kind needs (a comparison: by randomisation)."""
    return {"single_arm": "jbi_case_series", "agreement": "quadas2", "prognosis": "quips",
            "comparison": "rob2" if randomized == "yes" else "robins_i"}[kind]


def required(outcome_rows: Iterable[tuple[str, int, Mapping[str, str]]],
             effect_rows: Iterable[tuple[str, int, Mapping[str, str]]],
             kinds: Mapping[str, str], randomized: Mapping[str, str]
             ) -> dict[tuple[str, str], tuple[str, int]]:
    """Which (study, tool) assessments the registry's primary rows need, with the first
    row (file, line) that needs each.

    Parameters
    ----------
    outcome_rows, effect_rows : iterable of (file, line, cells)
        Rows of ``outcomes.csv`` and ``effects.csv``, all uses.
    kinds : mapping
        Outcome -> appraisal kind (``outcome_types.csv`` ``appraisal``; an outcome without
        one needs no assessment, e.g. attrition counts).
    randomized : mapping
        Study -> ``studies.csv`` ``randomized``.
    """
    need: dict[tuple[str, str], tuple[str, int]] = {}
    arms: dict[tuple[str, str], set[str]] = {}

    def add(study: str, tool: str, where: tuple[str, int]) -> None:
        need.setdefault((study, tool), where)

    for file, line, row in outcome_rows:
        if (row.get("use") or "primary") != "primary":
            continue
        study, outcome = row["study_id"], row["outcome"]
        kind = kinds.get(outcome, "")
        if kind == "comparison" or (kind == "single_arm" and row.get("arm_role")):
            arms.setdefault((study, outcome), set()).add(row.get("arm_role", ""))
        if kind == "single_arm" and row.get("arm_role", "experimental") == "experimental":
            add(study, "jbi_case_series", (file, line))
        elif kind in ("agreement", "prognosis"):
            add(study, tool_for(kind, ""), (file, line))
        if {"experimental", "control"} <= arms.get((study, outcome), set()):
            add(study, tool_for("comparison", randomized.get(study, "")), (file, line))
    for file, line, row in effect_rows:
        if (row.get("use") or "primary") == "primary":
            add(row["study_id"], "quips", (file, line))
    return need


_SIGNAL = re.compile(r"(\d+)\.(\d+[a-z]?)=([A-Z]+)")


def _check_signalling(check: Checker, record: Record, tool: Tool, domain: str) -> None:
    text = record.cells.get("signalling", "")
    if not tool.signalling:
        if text:
            check.add(record, "signalling", f"{tool.name} has no signalling questions: "
                                            "leave it empty (the judgement is the answer)")
        return
    if not text:
        check.add(record, "signalling", f"missing value: {tool.name}'s signalling answers, "
                                        "e.g. '1.1=Y; 1.2=PY'")
        return
    number = tool.domain_codes.index(domain) + 1 if domain in tool.domain_codes else None
    seen: set[str] = set()
    for part in [p.strip() for p in text.split(";") if p.strip()]:
        m = _SIGNAL.fullmatch(part)
        if not m:
            check.add(record, "signalling", f"{part!r} is not 'question=answer' (e.g. 1.2=PY)")
            continue
        if number is not None and int(m.group(1)) != number:
            check.add(record, "signalling", f"{part!r}: question {m.group(1)}.{m.group(2)} is "
                                            f"not of domain {number} ({domain})")
        if m.group(3) not in SIGNALLING_ANSWERS:
            check.add(record, "signalling", f"{part!r}: answer {m.group(3)!r} is not one of "
                                            f"{', '.join(SIGNALLING_ANSWERS)}")
        key = f"{m.group(1)}.{m.group(2)}"
        if key in seen:
            check.add(record, "signalling", f"question {key} answered twice")
        seen.add(key)


def check_risk_of_bias(table: Table, studies: set[str] | None,
                       need: Mapping[tuple[str, str], tuple[str, int]] | None
                       ) -> list[RegistryProblem]:
    """The problems of ``risk_of_bias.csv``.

    Each row: a known study, tool and domain of that tool, the tool's signalling answers
    (numbered by the domain), a judgement from the tool's vocabulary, a reason, and its
    support (a seed's verbatim quote, which the source audit checks; or an identifier with
    ``locator`` and ``retrieved`` and no quote). Each study x tool has every domain exactly
    once; every assessment ``need`` names (from :func:`required`) is present.
    """
    check = Checker(table, RISK_OF_BIAS_COLUMNS)
    seen: dict[tuple[str, str, str], int] = {}
    assessed: dict[tuple[str, str], set[str]] = {}
    first: dict[tuple[str, str], Record] = {}
    for record in table.records:
        cells = record.cells
        check.nonempty(record, "study_id", "reason")
        check.known(record, "study_id", studies, "studies.csv")
        check.choice(record, "tool", tuple(TOOLS))
        tool = TOOLS.get(cells.get("tool", ""))
        study, domain = cells.get("study_id", ""), cells.get("domain", "")
        if tool is None:
            continue
        check.choice(record, "domain", tool.domain_codes)
        check.choice(record, "judgement", tool.judgements)
        _check_signalling(check, record, tool, domain)
        key = (study, tool.name, domain)
        if key in seen:
            check.add(record, "domain", f"{tool.name} domain {domain!r} of {study!r} given "
                                        f"twice (first on line {seen[key]})")
        seen.setdefault(key, record.line)
        assessed.setdefault((study, tool.name), set()).add(domain)
        first.setdefault((study, tool.name), record)
        source = cells.get("source", "")
        kind = source_kind(source) if source else None
        if not source:
            check.add(record, "source", "missing value: a seed text's file name or an "
                                        "identifier (doi:, pmid:, pmcid:, nct:)")
        elif kind is None:
            check.add(record, "source", f"{source!r} is neither a seed text's file name nor "
                                        "an identifier (doi:, pmid:, pmcid:, nct:)")
        elif kind == "seed":
            if not cells.get("quote", ""):
                check.add(record, "quote", "missing value: a judgement from a seed text "
                                           "carries the verbatim passage that supports it")
        else:
            if cells.get("quote", ""):
                check.add(record, "quote", "must be empty for an external source: the "
                                           "registry keeps no text of it")
            for column in ("locator", "retrieved"):
                if column in cells and not cells[column]:
                    check.add(record, column, f"missing value: required for a judgement "
                                              f"from {source}")
    for (study, tool_name), domains in assessed.items():
        missing = [d for d in TOOLS[tool_name].domain_codes if d not in domains]
        if missing:
            check.add(first[(study, tool_name)], "domain",
                      f"{study!r} assessed with {tool_name} lacks domain(s) "
                      f"{', '.join(missing)}: the overall judgement needs every domain")
    for (study, tool_name), (file, line) in sorted((need or {}).items(), key=lambda kv: kv[1]):
        if (study, tool_name) not in assessed:
            check.problems.append(RegistryProblem(
                file, line, "study_id",
                f"{study!r} is pooled from this row, so it needs a {tool_name} risk-of-bias "
                f"assessment, and {table.file} has none"))
    return check.problems


def check_certainty(table: Table) -> list[RegistryProblem]:
    """The problems of ``certainty.csv``: one row per outcome and GRADE domain, a known
    domain and judgement. (Whether each outcome is one the summary of findings shows, and
    whether a judgement that departs from the library's proposal gives its reason, is
    checked when the summary is built: the proposals need the results.)"""
    check = Checker(table, CERTAINTY_COLUMNS)
    seen: dict[tuple[str, str], int] = {}
    domains: dict[str, tuple[Record, set[str]]] = {}
    for record in table.records:
        cells = record.cells
        outcome, domain = cells.get("outcome_id", ""), cells.get("domain", "")
        if not outcome:
            check.add(record, "outcome_id", "missing value")
        elif not _OUTCOME_ID.fullmatch(outcome):
            check.add(record, "outcome_id", f"{outcome!r} is not an analysis id (or "
                                            "analysis:study:outcome for a two-arm row)")
        check.choice(record, "domain", CERTAINTY_DOMAINS)
        check.choice(record, "judgement", (*CERTAINTY_JUDGEMENTS, AS_PROPOSED))
        key = (outcome, domain)
        if key in seen:
            check.add(record, "domain", f"{domain!r} of {outcome!r} given twice (first on "
                                        f"line {seen[key]})")
        seen.setdefault(key, record.line)
        domains.setdefault(outcome, (record, set()))[1].add(domain)
    for outcome, (record, given) in domains.items():
        missing = [d for d in CERTAINTY_DOMAINS if d not in given]
        if outcome and missing:
            check.add(record, "domain", f"{outcome!r} lacks {', '.join(missing)}: every "
                                        "outcome is judged in all five GRADE domains")
    return check.problems
