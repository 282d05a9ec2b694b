"""Names shown to readers: models, measures, HER2 categories, subgroups, arms, outcomes.

One dictionary per kind of code, so that a registry slug or a metafor code reads the
same in every chapter, table and figure. A code without an entry reads as itself with
``_`` replaced by spaces (:func:`name`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "ABBREVIATION_TERMS",
    "ADJUSTMENT_NAMES",
    "ARM_NAMES",
    "CATEGORY_NAMES",
    "GROUP_NAMES",
    "LEVEL_NAMES",
    "MEASURE_LABELS",
    "MEASURE_NAMES",
    "METHOD_NAMES",
    "METHOD_SHORT",
    "OUTCOME_PHRASES",
    "STUDY_COLUMN_NAMES",
    "SUBGROUP_NAMES",
    "TEST_NAMES",
    "TEST_SHORT",
    "abbreviations_note",
    "level_name",
    "name",
    "outcome_short",
    "outcome_verb",
    "subgroup_phrase",
]

#: Models, by metafor's ``method`` code.
METHOD_NAMES: dict[str, str] = {
    "FE": "common-effect (inverse-variance) model",
    "DL": "random-effects model, DerSimonian-Laird τ²",
    "REML": "random-effects model, restricted maximum-likelihood τ²",
    "PM": "random-effects model, Paule-Mandel τ²",
    "ML": "random-effects model, maximum-likelihood τ²",
    "HE": "random-effects model, Hedges τ²",
    "SJ": "random-effects model, Sidik-Jonkman τ²",
    "GLMM": "binomial-normal random-effects model (GLMM, exact binomial likelihood)",
}
#: Models in a few words, for the abbreviation note under a table of method codes.
METHOD_SHORT: dict[str, str] = {
    "FE": "common-effect model", "DL": "DerSimonian–Laird", "REML": "restricted maximum "
    "likelihood", "PM": "Paule–Mandel", "ML": "maximum likelihood", "HE": "Hedges",
    "SJ": "Sidik–Jonkman", "GLMM": "binomial-normal generalised linear mixed model",
}
#: Intervals and tests, by metafor's ``test`` code (long form for prose, short for tables).
TEST_NAMES: dict[str, str] = {
    "z": "normal (z) interval",
    "t": "Student's t interval",
    "knha": "Hartung–Knapp interval",
    "adhoc": "Hartung–Knapp interval, never narrower than the normal one (ad hoc)",
}
TEST_SHORT: dict[str, str] = {"z": "z", "t": "t (k − 1 df)", "knha": "Hartung–Knapp",
                              "adhoc": "Hartung–Knapp ad hoc"}
#: Measures, by metafor's ``measure`` code (the scale of a proportion; a two-group effect).
MEASURE_NAMES: dict[str, str] = {
    "PLO": "logit", "PFT": "Freeman-Tukey double arcsine", "PAS": "arcsine",
    "PR": "raw proportion", "RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference",
    "HR": "hazard ratio",
}
#: Measures of a single proportion as a table cell shows them: the reader's name with
#: metafor's code, so that "PR" (the raw proportion) never reads as partial response.
MEASURE_LABELS: dict[str, str] = {
    "PLO": "Logit (PLO)", "PFT": "Freeman–Tukey (PFT)", "PAS": "Arcsine (PAS)",
    "PR": "Raw proportion (PR)",
}
#: The glossary term (``book/glossary.md``) of each code a table shows, where the term is
#: not the code itself: "PR" in the glossary is partial response first, so the raw
#: proportion links to its own entry.
ABBREVIATION_TERMS: dict[str, str] = {
    "PR": "Raw proportion", "z": "Wald-type interval", "t": "t interval",
    "knha": "Hartung–Knapp", "adhoc": "Hartung–Knapp",
}
#: HER2 categories of ``transitions.csv``.
CATEGORY_NAMES: dict[str, str] = {"zero": "HER2-zero", "low": "HER2-low",
                                  "positive": "HER2-positive"}
#: Subgroup keys (``key=value`` in ``subgroup``).
SUBGROUP_NAMES: dict[str, str] = {
    "hormone_receptor": "Hormone receptor status",
    "recurrence": "Type of first recurrence",
    "bcfi_months": "Breast cancer-free interval (months)",
    "primary_her2": "HER2 category of the primary tumour",
    "biopsy_interval": "Time since biopsy",
    "metastasis_count": "Number of metastases",
    "metastatic_site": "Metastatic site",
    "dfs_months": "Disease-free survival (months)",
    "therapy_line": "Therapy line",
    "anti_her2_regimen": "Anti-HER2 regimen",
    "timepoint": "Time point",
    "tissue_her2": "HER2 status of the tissue",
}
#: Study columns of ``studies.csv`` that form subgroups across studies.
STUDY_COLUMN_NAMES: dict[str, str] = {
    "her2_method_group": "HER2 method on CTCs",
    "her2_cutoff_group": "definition of HER2-positive CTCs",
    "setting": "disease setting",
    "tissue_source": "tissue compared with the CTCs",
    "agent": "anti-HER2 agent",
    "ctc_assay": "CTC assay",
}
#: Subgroup levels, whatever their key.
LEVEL_NAMES: dict[str, str] = {
    "at_least_one_ctc": "at least one HER2-positive CTC",
    "proportion_of_ctcs": "a share of the CTCs HER2-positive",
    "quantitative": "quantitative HER2 score",
    "immunofluorescence_or_FISH": "immunofluorescence or FISH",
    "rt_pcr": "RT-PCR",
    "primary": "primary tumour",
    "primary_or_metastatic": "primary tumour or metastasis",
    "metastasis": "metastasis",
    "not_reported": "not reported",
    "not_applicable": "not applicable",
    "lt_12": "< 12", "12_to_24": "12 to 24", "gt_24": "> 24", "le_12": "≤ 12", "gt_12": "> 12",
    "gt_1y": "> 1 year", "lt_1y": "< 1 year", "two_or_more": "two or more",
    "non_visceral": "non-visceral", "second_or_later": "second or later",
    "trastuzumab_chemo": "trastuzumab + chemotherapy",
    "lapatinib_chemo": "lapatinib + chemotherapy",
    "trastuzumab_pertuzumab": "trastuzumab + pertuzumab",
}
#: Levels whose words depend on their key.
_KEY_LEVEL_NAMES: dict[tuple[str, str], str] = {
    ("hormone_receptor", "positive"): "hormone receptor-positive",
    ("hormone_receptor", "negative"): "hormone receptor-negative",
    ("primary_her2", "zero"): "HER2-zero primary",
    ("primary_her2", "low"): "HER2-low primary",
    ("primary_her2", "positive"): "HER2-positive primary",
    ("tissue_her2", "negative"): "HER2-negative tissue",
    ("tissue_her2", "positive"): "HER2-positive tissue",
}
#: Arms (``outcomes.csv`` ``arm``).
ARM_NAMES: dict[str, str] = {
    "trastuzumab_taxane": "trastuzumab + taxane",
    "taxane_only": "taxane only",
    "trastuzumab": "trastuzumab",
    "observation": "observation",
    "all": "all patients",
}
#: How each outcome reads in a sentence "``n`` of ``N`` patients ...":
#: (short name, verb phrase).
OUTCOME_PHRASES: dict[str, tuple[str, str]] = {
    "ctc_persistence": ("CTC persistence at follow-up", "were still CTC-positive at follow-up"),
    "objective_response": ("objective response", "had an objective response"),
    "disease_control": ("disease control", "had disease control (CR, PR or SD)"),
    "pfr6": ("progression-free at 6 months", "were progression-free at 6 months"),
    "her2_ctc_screening_yield": ("HER2-positive CTCs among screened",
                                 "had HER2-positive CTCs"),
    "treated_among_eligible": ("treated among eligible", "were treated"),
    "randomized_among_eligible": ("randomised among eligible", "were randomised"),
    "ctc_detection": ("CTC detection", "had detectable CTCs"),
    "ctc_clearance": ("CTC clearance", "cleared their CTCs"),
    "relapse": ("relapse", "relapsed"),
    "her2_ctc_positive": ("HER2-positive CTCs", "had HER2-positive CTCs"),
    "conversion_tissue_pos_to_ctc_neg": ("HER2-negative CTCs with HER2-positive tissue",
                                         "had HER2-negative CTCs"),
    "conversion_tissue_neg_to_ctc_pos": ("HER2-positive CTCs with HER2-negative tissue",
                                         "had HER2-positive CTCs"),
    "tissue_conversion": ("change of HER2 category", "changed HER2 category"),
    "tissue_conversion_to_low": ("HER2-zero primary, HER2-low recurrence",
                                 "had a HER2-low recurrence"),
    "tissue_her2_gain": ("HER2 gain", "gained HER2 positivity"),
    "tissue_her2_loss": ("HER2 loss", "lost HER2 positivity"),
    "tissue_her2_binary_change": ("change of binary HER2 status",
                                  "changed binary HER2 status"),
}
#: Values of ``effects.csv`` ``adjusted``.
ADJUSTMENT_NAMES: dict[str, str] = {"no": "unadjusted (univariable)",
                                    "yes": "adjusted (multivariable)"}

#: The groups of an ``effects.csv`` comparison ``<numerator>_vs_<reference>``, by slug.
GROUP_NAMES: dict[str, str] = {
    "ctc_her2_positive": "HER2-positive CTCs",
    "ctc_her2_negative": "HER2-negative CTCs",
    "hormone_receptor_positive": "hormone receptor-positive disease",
    "hormone_receptor_negative": "hormone receptor-negative disease",
}


def name(value: str, names: Mapping[str, str]) -> str:
    """The reader's name of a code: its entry in ``names``, else the code with spaces."""
    return names.get(value, value.replace("_", " "))


def _term(code: str, text: str | None = None) -> str:
    target = ABBREVIATION_TERMS.get(code, code)
    shown = text or code
    return f"{{term}}`{shown}`" if shown == target else f"{{term}}`{shown} <{target}>`"


def abbreviations_note(methods: Sequence[str], *, measures: Sequence[str] = (),
                       tests: Sequence[str] = ()) -> str:
    """The note under a table of model codes: each code linked to its glossary entry.

    Parameters
    ----------
    methods : sequence of str
        metafor ``method`` codes the table shows (``FE``, ``DL``, ``REML``, ...).
    measures : sequence of str
        ``measure`` codes of single proportions it shows (``PLO``, ``PR``, ...).
    tests : sequence of str
        ``test`` codes of its intervals (``z``, ``t``, ``knha``, ``adhoc``).

    Returns
    -------
    str
        MyST Markdown with ``{term}`` roles (glue it as ``{glue:md}`key:myst```); only
        this module's fixed vocabulary goes into it, never registry text.

    Raises
    ------
    KeyError
        A code without an entry in :data:`METHOD_SHORT`, :data:`MEASURE_LABELS` or
        :data:`TEST_SHORT`.
    """
    parts = [f"{_term(m)}, {METHOD_SHORT[m]}" for m in dict.fromkeys(methods)]
    if measures:
        parts.append("measures " + ", ".join(_term(m, MEASURE_LABELS[m])
                                             for m in dict.fromkeys(measures)))
    if tests:
        shown = {TEST_SHORT[t]: t for t in tests}
        parts.append("intervals " + ", ".join(_term(t, text) for text, t in shown.items()))
    parts.append("{term}`PI`, prediction interval; {term}`τ²` and {term}`I²`, "
                 "heterogeneity")
    return "Abbreviations (each linked to the glossary): " + "; ".join(parts) + "."


def level_name(key: str, level: str) -> str:
    """The reader's name of a subgroup level (``hormone_receptor=positive`` reads
    "hormone receptor-positive")."""
    return _KEY_LEVEL_NAMES.get((key, level)) or name(level, LEVEL_NAMES)


def subgroup_phrase(subgroup: str) -> str:
    """The reader's words for a registry ``subgroup`` (``key=value`` pairs joined by
    ``;``): ``"hormone_receptor=positive"`` reads "hormone receptor-positive",
    ``"metastasis_count=one"`` "number of metastases: one"; empty is the whole population."""
    if not subgroup:
        return "whole population"
    parts = []
    for pair in subgroup.split(";"):
        key, _, level = pair.partition("=")
        known = _KEY_LEVEL_NAMES.get((key, level))
        parts.append(known or f"{name(key, SUBGROUP_NAMES).lower()}: {level_name(key, level)}")
    return "; ".join(parts)


def outcome_short(outcome: str) -> str:
    """Short name of an outcome (``"objective response"``)."""
    return OUTCOME_PHRASES.get(outcome, (outcome.replace("_", " "), ""))[0]


def outcome_verb(outcome: str) -> str:
    """Verb phrase of an outcome (``"had an objective response"``)."""
    phrase = OUTCOME_PHRASES.get(outcome)
    return phrase[1] if phrase else f"had the outcome {outcome.replace('_', ' ')}"
