"""Across analyses: the summary of findings, the robustness of each pooled proportion
across every measure and estimator, and the models each analysis ran."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from evidence.book.text import fmt_ci, fmt_num, fmt_pct, shows_prediction

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "certainty_notes",
    "describe_defaults",
    "methods_table",
    "robustness_panel",
    "robustness_summary",
    "sof_rows",
    "sof_table",
]

def certainty_notes(k: int, patients: int | None, i2: float | None,
                    ci_lower: float | None, ci_upper: float | None, design: str = "") -> str:
    """Plain-language reasons to be cautious, by explicit rules.

    Single study; fewer than five studies; fewer than 100 patients (when known); I²
    above 50%; a 95% CI wider than 30 percentage points (proportions); and a design
    note passed by the caller (e.g. non-randomised comparison).
    """
    notes = []
    if k == 1:
        notes.append("single study, not pooled")
    elif k < 5:
        notes.append(f"only {k} studies")
    if patients is not None and patients < 100:
        notes.append(f"{patients} patients: imprecise")
    if i2 is not None and not math.isnan(i2) and i2 > 50:
        notes.append(f"substantial heterogeneity (I² {fmt_num(i2, 0)}%)")
    if ci_lower is not None and ci_upper is not None and ci_upper - ci_lower > 0.30:
        notes.append("wide confidence interval")
    if design:
        notes.append(design)
    return "; ".join(notes) if notes else "no major concern by these rules"


def sof_rows(result: dict[str, Any], title: str,
             studies: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Summary-of-findings rows of one result JSON.

    Recognises the book's kinds of result: a result's own ``summary_of_findings``
    list; a pooled proportion (``k``, ``patients``, ``pooled``, ``model``); a pooled
    ratio (``measure`` ``HR``/``RR``/``OR``); two-arm effects (``effects``, risk
    ratios shown); transition rates (``rates``, the identified ones).  Other
    results (figures, tables) give no row.

    Parameters
    ----------
    result : dict
        A ``results/<id>.json`` object.
    title : str
        The analysis title.
    studies : DataFrame, optional
        ``studies.csv``, for labels and designs (non-randomised comparisons are
        flagged).
    """
    labels: dict[str, str] = {}
    randomized: dict[str, str] = {}
    if studies is not None:
        labels = dict(zip(studies["study_id"], studies["label"], strict=True))
        if "randomized" in studies.columns:
            randomized = dict(zip(studies["study_id"], studies["randomized"], strict=True))
    if "summary_of_findings" in result:
        return [{"analysis": title, **row} for row in result["summary_of_findings"]]
    if "effects" in result:
        rows = []
        for e in result["effects"]:
            if e.get("measure") != "RR":
                continue
            design = ("randomised" if randomized.get(e["study_id"]) == "yes"
                      else "non-randomised comparison")
            n = int(e["n1i"]) + int(e["n2i"])
            rows.append({
                "analysis": f"{title}: {labels.get(e['study_id'], e['study_id'])}, "
                            f"{e['outcome'].replace('_', ' ')} (risk ratio)",
                "outcome": e["outcome"], "k": 1, "patients": n, "scale": "ratio",
                "estimate": e["estimate"], "ci_lower": e["ci_lower"], "ci_upper": e["ci_upper"],
                "pi_lower": None, "pi_upper": None, "i2": None, "method": "single study",
                "certainty": certainty_notes(1, n, None, None, None, design)})
        return rows
    if "rates" in result:
        rows = []
        for r in result["rates"]:
            if not r.get("identified"):
                continue
            n = int(r["total"])
            rows.append({
                "analysis": f"{title}: {r['label']}", "outcome": r.get("direction", ""),
                "k": 1, "patients": n, "scale": "proportion", "estimate": r["proportion"],
                "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"], "pi_lower": None,
                "pi_upper": None, "i2": None, "method": "single study",
                "certainty": certainty_notes(1, n, None, r["ci_lower"], r["ci_upper"])})
        return rows
    if "pooled" not in result or "k" not in result:
        return []
    p, model = result["pooled"], result.get("model") or {}
    i2 = model.get("i2")
    if result.get("measure") in ("HR", "RR", "OR"):
        return [{
            "analysis": title, "outcome": result.get("outcome", ""), "k": result["k"],
            "patients": result.get("patients"), "scale": "ratio",
            "estimate": p["estimate"], "ci_lower": p["ci_lower"], "ci_upper": p["ci_upper"],
            "pi_lower": p.get("pi_lower"), "pi_upper": p.get("pi_upper"), "i2": i2,
            "method": result.get("method"),
            "certainty": certainty_notes(result["k"], None, i2, None, None,
                                         "populations and agents differ between studies"),
        }]
    return [{
        "analysis": title, "outcome": result.get("outcome", ""), "k": result["k"],
        "patients": result.get("patients"), "scale": "proportion",
        "estimate": p["estimate"], "ci_lower": p["ci_lower"], "ci_upper": p["ci_upper"],
        "pi_lower": p.get("pi_lower"), "pi_upper": p.get("pi_upper"), "i2": i2,
        "method": result.get("method") if result["k"] > 1 else "not pooled",
        "certainty": certainty_notes(result["k"], int(result.get("patients") or 0), i2,
                                     p["ci_lower"], p["ci_upper"]),
    }]


def sof_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Display table of summary-of-findings rows."""
    import pandas as pd

    def est(r: dict[str, Any]) -> str:
        if r.get("scale") == "proportion":
            return f"{fmt_pct(r['estimate'])} ({fmt_ci(r['ci_lower'], r['ci_upper'])})"
        digits = 2
        return (f"{fmt_num(r['estimate'], digits)} "
                f"({fmt_ci(r['ci_lower'], r['ci_upper'], pct=False, digits=digits)})")

    def pi(r: dict[str, Any]) -> str:
        if r.get("pi_lower") is None or not shows_prediction(r.get("k", 0),
                                                             r.get("method", "")):
            return "—"
        return fmt_ci(r["pi_lower"], r["pi_upper"], pct=r.get("scale") == "proportion",
                      digits=1 if r.get("scale") == "proportion" else 2)

    return pd.DataFrame({
        "Analysis": [r["analysis"] for r in rows],
        "k": [r.get("k") for r in rows],
        "Patients": [r.get("patients") for r in rows],
        "Estimate (95% CI)": [est(r) for r in rows],
        "95% PI": [pi(r) for r in rows],
        "I²": [fmt_num(r.get("i2"), 0) + "%" if r.get("i2") is not None and r.get("k", 0) > 1
               else "—" for r in rows],
        "Model": [r.get("method", "") for r in rows],
        "Certainty notes": [r.get("certainty", "") for r in rows],
    })


def robustness_panel(results: dict[str, dict[str, Any]],
                     titles: dict[str, str]) -> pd.DataFrame:
    """The estimator panel (every measure × method × interval, and the GLMM with the z
    and the t interval) for every pooled proportion.

    Parameters
    ----------
    results : dict
        Result JSONs by analysis id; those with ``k >= 2`` and per-study counts are used.
    titles : dict
        Display title of each analysis id.
    """
    import pandas as pd

    from evidence.book.tables import summary_frame
    from evidence.stats.sensitivity import estimator_panel
    from evidence.stats.vocabulary import GLMM_TESTS

    frames = []
    for aid, res in results.items():
        studies = res.get("studies") or []
        if res.get("k", 0) < 2 or not studies or "events" not in studies[0]:
            continue
        panel = summary_frame(estimator_panel(
            [s["events"] for s in studies], [s["total"] for s in studies],
            study_ids=[s["study_id"] for s in studies], glmm_tests=GLMM_TESTS), index=False)
        panel.insert(0, "analysis", titles.get(aid, aid))
        panel.insert(1, "primary", res["pooled"]["estimate"])
        frames.append(panel)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def robustness_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Per analysis: the primary estimate, the range across every measure × method,
    the largest τ², and fits that failed."""
    import pandas as pd

    rows = []
    for name, g in panel.groupby("analysis", sort=False):
        ok = g[g["error"].isna()]
        spread = ok["proportion"].max() - ok["proportion"].min()
        rows.append({
            "Analysis": name,
            "Primary estimate": fmt_pct(g["primary"].iloc[0]),
            "Range across estimators": fmt_ci(ok["proportion"].min(), ok["proportion"].max()),
            "Spread (points)": fmt_num(100 * spread, 1),
            "Lowest CI bound": fmt_pct(ok["prop_ci_lower"].min()),
            "Highest CI bound": fmt_pct(ok["prop_ci_upper"].max()),
            "Failed fits": int(g["error"].notna().sum()),
        })
    return pd.DataFrame(rows)


def methods_table(config: Any, results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """What each analysis actually ran: template, outcome, model, measure, options.

    Parameters
    ----------
    config : BookConfig
        The loaded ``analyses.yml``.
    results : dict
        Result JSONs by analysis id (the model fields are read from them, not from
        the configuration, so the table shows what was run).
    """
    import pandas as pd

    from evidence.book.names import MEASURE_NAMES, METHOD_NAMES, TEST_SHORT

    rows = []
    for aid, res in results.items():
        analysis = config.get(aid)
        method = res.get("method")
        rows.append({
            "Analysis": analysis.title,
            "Template": analysis.template,
            "Outcome": res.get("outcome") or analysis.parameters.get("outcome", ""),
            "Model": (METHOD_NAMES.get(method, method) if res.get("k", 2) > 1
                      else "none (single study)") if method else "",
            "Measure": MEASURE_NAMES.get(res.get("measure", ""), res.get("measure", "")),
            "Interval": (TEST_SHORT.get(res.get("test", ""), res.get("test", ""))
                         if method and res.get("k", 2) > 1 else ""),
            "Per-study CI": {"clopper-pearson": "exact (Clopper–Pearson)",
                             "wilson": "Wilson"}.get(res.get("ci_method", ""), ""),
            "k": res.get("k", ""),
            "Library": res.get("evidence_version", ""),
        })
    return pd.DataFrame(rows)


#: What each template pools, for :func:`describe_defaults`.
_TEMPLATE_SUBJECTS: dict[str, str] = {
    "pool_proportions": "Pooled proportions",
    "hazard_ratios": "Pooled hazard ratios",
}


def describe_defaults(config: Any) -> str:
    """The review's model choices as ``analyses.yml`` sets them once for every analysis of a
    template (its ``defaults`` section), as a Markdown list; the analyses that override a
    default are named.

    Parameters
    ----------
    config : BookConfig
        The loaded ``analyses.yml``.
    """
    from evidence.book.names import METHOD_NAMES, TEST_NAMES
    from evidence.book.text import escape_markdown

    items = []
    for template, params in config.defaults.items():
        subject = _TEMPLATE_SUBJECTS.get(template, f"Analyses of template {template}")
        parts = []
        if "method" in params:
            parts.append(METHOD_NAMES.get(params["method"], str(params["method"])))
        if "test" in params:
            parts.append(TEST_NAMES.get(params["test"], str(params["test"])))
        rest = {k: v for k, v in params.items() if k not in ("method", "test")}
        parts.extend(f"{escape_markdown(k)} = {escape_markdown(str(v))}" for k, v in rest.items())
        own = [a.id for a in config.analyses if a.template == template
               and any(a.parameters.get(k) != v for k, v in params.items())]
        line = f"- {subject}: {'; '.join(parts)}"
        if own:
            line += (" — except " + ", ".join(escape_markdown(i) for i in own)
                     + ", which set their own")
        items.append(line + ".")
    if not items:
        return ("`analyses.yml` sets no defaults: every analysis uses its template's own "
                "parameter values.")
    return ("The primary models, set once in `analyses.yml` (its `defaults` section) for "
            "every analysis of a kind:\n\n" + "\n".join(items))
