"""Risk of bias in the book: the overall judgements the registry's tools give, the tool an
analysis's studies are judged with, the tables and figures of the appraisal chapter, and
the sensitivity analysis without the studies at high risk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown, fmt_ci, fmt_pct, join_names, plural
from evidence.registry.appraisal import TOOLS, overall, tool_for

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HIGH",
    "TOOL_ORDER",
    "analysis_tool",
    "describe_appraisal",
    "describe_tool",
    "describe_without_high",
    "domain_table",
    "judgements_of",
    "overall_judgements",
    "reasons_table",
    "rob_figures",
    "without_high_risk",
]

#: Overall judgements that count as high risk (and are left out by the sensitivity
#: analysis): RoB 2 and QUADAS-2 high, ROBINS-I serious or critical, the review's rules
#: for the JBI checklist and QUIPS high.
HIGH: frozenset[str] = frozenset({"high", "serious", "critical"})


#: The tools in the order the appraisal chapter shows them.
TOOL_ORDER: tuple[str, ...] = ("rob2", "robins_i", "jbi_case_series", "quadas2", "quips")

#: Each tool's overall rule in words (the same rules as
#: :func:`evidence.registry.appraisal.overall`).
_RULES: dict[str, str] = {
    "rob2": "high if any domain is high, low if every domain is low, otherwise some "
            "concerns (the RoB 2 algorithm; several domains with some concerns are not "
            "raised to high automatically)",
    "robins_i": "the most severe domain judgement (critical, then serious); otherwise no "
                "information if a domain lacks it, moderate if any domain is moderate, low "
                "if all are low (ROBINS-I)",
    "jbi_case_series": "the JBI checklist has no summary rule; this review's: high if two or "
                       "more items are not met, or half or more of the applicable items are "
                       "not met or unclear; low if none is unmet and at most one unclear; "
                       "otherwise some concerns",
    "quadas2": "high if any domain is high, low if every domain is low, otherwise unclear "
               "(QUADAS-2)",
    "quips": "QUIPS has no summary rule; this review's: high if any domain is high or three "
             "or more are moderate, low if every domain is low or one is moderate, "
             "otherwise moderate",
}


def describe_appraisal(rob: pd.DataFrame, overall_df: pd.DataFrame) -> str:
    """The chapter's opening: how many studies were appraised with which tools, and how
    many are at high overall risk."""
    if rob.empty:
        return "No study of the registry has been appraised yet (`data/risk_of_bias.csv`)."
    n = rob["study_id"].nunique()
    high = overall_df[overall_df["overall"].isin(HIGH)]["study_id"].nunique()
    used = [TOOLS[t].label.split(" (")[0] for t in TOOL_ORDER if (rob["tool"] == t).any()]
    return (f"{plural(n, 'study was', 'studies were')} appraised with the tool that fits each "
            f"use of its numbers ({join_names(used)}); a study pooled in two ways is "
            f"appraised twice. {plural(high, 'study is', 'studies are')} at high overall risk "
            "under at least one tool. Every domain judgement gives its reason and its "
            "support (a quote from a seed paper, or where in an external report it stands); "
            "the overall judgements are computed from the domains by each tool's rule, "
            "stated below, not typed in.")


def describe_tool(rob: pd.DataFrame, overall_df: pd.DataFrame, tool: str,
                  labels: dict[str, str]) -> str:
    """One tool's section: its studies, the spread of overall judgements, its rule."""
    from evidence.book.figures.robvis import judgement_style

    sub = overall_df[overall_df["tool"] == tool]
    if sub.empty:
        return "No study is appraised with this tool."
    counts = sub["overall"].value_counts()
    spread = join_names([f"{plural(int(n), 'study', 'studies')} "
                         f"{judgement_style(j)[0].lower()}" for j, n in counts.items()])
    return (f"{plural(len(sub), 'study', 'studies')} ({spread}). Overall judgement: "
            f"{_RULES[tool]}.")


def reasons_table(rob: pd.DataFrame, tool: str, labels: dict[str, str]) -> pd.DataFrame:
    """Every judgement of one tool with its signalling answers, reason and support."""
    import pandas as pd

    from evidence.book.figures.robvis import judgement_style

    names = dict(TOOLS[tool].domains)
    sub = rob[rob["tool"] == tool]
    return pd.DataFrame({
        "Study": [labels.get(s, s) for s in sub["study_id"]],
        "Domain": [names[d] for d in sub["domain"]],
        "Signalling": list(sub["signalling"]),
        "Judgement": [judgement_style(j)[0] for j in sub["judgement"]],
        "Reason": list(sub["reason"]),
        "Support": [q if q else f"{src}, {loc}".strip(", ")
                    for q, src, loc in zip(sub["quote"], sub["source"], sub["locator"],
                                           strict=True)],
    })


def overall_judgements(rob: pd.DataFrame) -> pd.DataFrame:
    """One row per study and tool: ``study_id, tool, overall`` (each tool's own rule,
    :func:`evidence.registry.appraisal.overall`)."""
    import pandas as pd

    rows = [{"study_id": study, "tool": tool,
             "overall": overall(tool, dict(zip(g["domain"], g["judgement"], strict=True)))}
            for (study, tool), g in rob.groupby(["study_id", "tool"], sort=True)]
    return pd.DataFrame(rows, columns=["study_id", "tool", "overall"])


def analysis_tool(outcome_types: pd.DataFrame, outcome: str, *,
                  comparison: bool = False, randomized: str = "") -> str | None:
    """The tool the studies of a pooled outcome are judged with (``outcome_types.csv``
    ``appraisal``; a comparison by randomisation), or None when the outcome needs none."""
    row = outcome_types[outcome_types["outcome"] == outcome]
    kind = str(row["appraisal"].iloc[0]) if not row.empty and "appraisal" in row else ""
    if comparison:
        kind = "comparison"
    return tool_for(kind, randomized) if kind else None


def judgements_of(overall_df: pd.DataFrame, tool: str | None,
                  study_ids: list[str]) -> dict[str, str | None]:
    """Each study's overall judgement under ``tool`` (None: not assessed, or no tool)."""
    if tool is None:
        return dict.fromkeys(study_ids)
    sub = overall_df[overall_df["tool"] == tool]
    found = dict(zip(sub["study_id"], sub["overall"], strict=True))
    return {s: found.get(s) for s in study_ids}


def without_high_risk(table: pd.DataFrame, judgements: dict[str, str | None]
                      ) -> tuple[pd.DataFrame, list[str]]:
    """The rows of studies not at high overall risk, and the ids left out."""
    dropped = [s for s in table["study_id"] if judgements.get(s) in HIGH]
    return table[~table["study_id"].isin(dropped)].reset_index(drop=True), dropped


def describe_without_high(full: dict[str, Any], restricted: dict[str, Any] | None,
                          dropped: list[str], labels: dict[str, str], k: int,
                          what: str, tool: str | None) -> str:
    """The sensitivity analysis without high-risk studies, in words chosen by the numbers:
    none at high risk; all at high risk; or the estimate without them beside the primary."""
    if tool is None:
        return "The studies of this outcome are not appraised with a risk-of-bias tool."
    name = TOOLS[tool].label.split(" (")[0]
    if not dropped:
        return (f"No study of this outcome is at high overall risk of bias ({name}), so "
                "there is no sensitivity analysis to run without them.")
    names = join_names([escape_markdown(labels.get(s, s)) for s in dropped])
    if len(dropped) == k:
        return (f"Every study of this outcome is at high overall risk of bias ({name}): "
                f"{names}. There is no lower-risk evidence to compare with.")
    kept = k - len(dropped)
    base = (f"Leaving out the {plural(len(dropped), 'study', 'studies')} at high overall risk "
            f"of bias ({name}: {names}) leaves {plural(kept, 'study', 'studies')}")
    if restricted is None:
        return base + "; nothing is pooled from them."
    text = (base + f": an estimated {fmt_pct(restricted['estimate'])} {what} (95% CI "
            f"{fmt_ci(restricted['ci_lower'], restricted['ci_upper'])}), against "
            f"{fmt_pct(full['estimate'])} ({fmt_ci(full['ci_lower'], full['ci_upper'])}) "
            "with all studies.")
    inside = full["ci_lower"] <= restricted["estimate"] <= full["ci_upper"]
    text += (" The estimate without them lies inside the primary confidence interval."
             if inside else
             " The estimate without them lies outside the primary confidence interval: the "
             "high-risk studies move the answer.")
    return text


def domain_table(rob: pd.DataFrame, tool: str, labels: dict[str, str],
                 overall_df: pd.DataFrame) -> pd.DataFrame:
    """Studies x domains of one tool, each cell the judgement in words, and the overall
    judgement last."""
    import pandas as pd

    from evidence.book.figures.robvis import judgement_style

    t = TOOLS[tool]
    sub = rob[rob["tool"] == tool]
    over = overall_df[overall_df["tool"] == tool].set_index("study_id")["overall"]
    rows = []
    for study, g in sub.groupby("study_id", sort=False):
        cells = dict(zip(g["domain"], g["judgement"], strict=True))
        row = {"Study": labels.get(study, study)}
        row.update({name: judgement_style(cells[code])[0] for code, name in t.domains})
        row["Overall"] = judgement_style(over[study])[0]
        rows.append(row)
    return pd.DataFrame(rows)


def rob_figures(rob: pd.DataFrame, tool: str, labels: dict[str, str],
                overall_df: pd.DataFrame, weights: dict[str, float] | None = None
                ) -> tuple[Any, Any]:
    """The traffic-light plot and the summary bars of one tool (weights: e.g. patients per
    study; default one per study)."""
    from evidence.book.figures.robvis import summary_bars, traffic_light

    t = TOOLS[tool]
    sub = rob[rob["tool"] == tool]
    over = overall_df[overall_df["tool"] == tool].set_index("study_id")["overall"]
    studies = list(dict.fromkeys(sub["study_id"]))
    grid = []
    for study in studies:
        cells = dict(zip(sub[sub["study_id"] == study]["domain"],
                         sub[sub["study_id"] == study]["judgement"], strict=True))
        grid.append([cells[c] for c in t.domain_codes])
    names = [labels.get(s, s) for s in studies]
    domains = [name for _, name in t.domains]
    overall_list = [over[s] for s in studies]
    w = None if weights is None else [weights.get(s, 0.0) for s in studies]
    return (traffic_light(names, domains, grid, overall_list),
            summary_bars(domains, grid, overall_list, w,
                         weight_label="studies" if w is None else "patients"))
