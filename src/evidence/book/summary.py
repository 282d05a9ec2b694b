"""Across analyses: the summary of findings, the robustness of each pooled proportion
across every measure and estimator, and the models each analysis ran."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evidence.book.text import fmt_ci, fmt_num, fmt_pct

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "describe_defaults",
    "methods_table",
    "robustness_panel",
    "robustness_summary",
]

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
            "Lowest CI bound": fmt_pct(max(0.0, ok["prop_ci_lower"].min())),
            "Highest CI bound": fmt_pct(min(1.0, ok["prop_ci_upper"].max())),
            "Note": ("bounds truncated to 0%–100%: some raw-proportion (PR) intervals run "
                     "past them" if ok["prop_ci_lower"].min() < 0
                     or ok["prop_ci_upper"].max() > 1 else ""),
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
