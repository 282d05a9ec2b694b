"""Words and display tables for the book, generated from results.

Every number a chapter states comes from here (or from a result JSON), never
typed into prose.  The functions are pure: they take results and return strings
or pandas DataFrames ready to display.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from evidence.pipeline.context import ProportionAnalysis
    from evidence.stats.results import MetaResult

__all__ = [
    "METHOD_NAMES",
    "describe_heterogeneity",
    "describe_loo",
    "describe_pooled",
    "describe_subgroups",
    "escape_markdown",
    "fmt_ci",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "loo_table",
    "no_influence_analysis",
    "panel_table",
    "show",
    "study_table",
    "subgroup_table",
]

METHOD_NAMES = {
    "FE": "common-effect (inverse-variance) model",
    "DL": "random-effects model, DerSimonian-Laird τ²",
    "REML": "random-effects model, restricted maximum-likelihood τ²",
    "PM": "random-effects model, Paule-Mandel τ²",
    "ML": "random-effects model, maximum-likelihood τ²",
    "HE": "random-effects model, Hedges τ²",
    "SJ": "random-effects model, Sidik-Jonkman τ²",
    "GLMM": "binomial-normal random-effects model (GLMM, exact binomial likelihood)",
}
MEASURE_NAMES = {
    "PLO": "logit", "PFT": "Freeman-Tukey double arcsine", "PAS": "arcsine", "PR": "raw proportion",
}


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: str) -> str:
    """Markdown source that renders ``text`` literally.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows it for
    all of them), so no emphasis, link, role, math or HTML can form; line breaks
    become spaces.

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    str
    """
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


#: Tables shown so far in this process: part of each table's HTML id (see ``show``).
_SHOWN = itertools.count()


class _Table:
    """What ``show`` returns: the HTML table, and a short plain-text stand-in.

    (A pandas Styler's plain-text form names its memory address, which would make
    every executed notebook differ from the last.)
    """

    def __init__(self, styler: Any, rows: int, columns: list[str]) -> None:
        self.styler = styler
        self.text = f"<table of {rows} row(s): {', '.join(columns)}>"

    def to_html(self) -> str:
        """The escaped HTML table."""
        return self.styler.to_html()

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.text


def show(frame: pd.DataFrame, *, na_rep: str = "") -> Any:
    """A display table for a notebook cell: no index, and every cell and header
    HTML-escaped, so that text from the registry (labels, quotes) renders as text,
    never as markup.

    The table's HTML id is made from its content and its position among the tables
    this process showed (pandas would draw a random one), so that the same inputs give
    byte-identical notebooks and pages, and two tables never share an id.
    """
    content = hashlib.sha256(frame.to_csv(index=False).encode("utf-8")).hexdigest()[:8]
    styler = (frame.style.set_uuid(f"{content}_{next(_SHOWN)}").hide(axis="index")
              .format(escape="html", na_rep=na_rep).format_index(escape="html", axis=1))
    return _Table(styler, len(frame), [str(c) for c in frame.columns])


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_pct(p: float | None, digits: int = 1) -> str:
    """``0.1282`` → ``"12.8%"``; missing → ``"n.r."``."""
    if _missing(p):
        return "n.r."
    return f"{100 * float(p):.{digits}f}%"


def fmt_num(x: float | None, digits: int = 2) -> str:
    """Fixed-point number; missing → ``"n.r."``."""
    if _missing(x):
        return "n.r."
    return f"{float(x):.{digits}f}"


def fmt_ci(lower: float | None, upper: float | None, *, pct: bool = True,
           digits: int = 1) -> str:
    """``"4.1% to 33.5%"`` (or numbers when ``pct=False``)."""
    f = fmt_pct if pct else fmt_num
    return f"{f(lower, digits)} to {f(upper, digits)}"


def fmt_p(p: float | None) -> str:
    """p-value for prose: ``"p = 0.034"``, ``"p < 0.001"``."""
    if _missing(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def describe_pooled(res: ProportionAnalysis, what: str) -> str:
    """One paragraph, in plain words, of what a pooled proportion says.

    Parameters
    ----------
    res : ProportionAnalysis
        The pooled outcome.
    what : str
        What the proportion is, e.g. ``"of treated patients had an objective response"``.
    """
    k = res.k
    n = int(res.studies["total"].sum())
    e = int(res.studies["events"].sum())
    p = res.pooled
    if k == 1:
        row = res.studies.iloc[0]
        return (f"Only one study ({escape_markdown(str(row['label']))}) reports this outcome, "
                "so nothing is pooled: "
                f"{e} of {n} patients ({fmt_pct(p['estimate'])}, exact 95% CI "
                f"{fmt_ci(p['ci_lower'], p['ci_upper'])}) {what}.")
    text = (f"Across {k} studies with {n} patients ({e} events), an estimated "
            f"{fmt_pct(p['estimate'])} {what} (95% CI {fmt_ci(p['ci_lower'], p['ci_upper'])}; "
            f"{METHOD_NAMES[res.method]}).")
    if res.method != "FE" and not _missing(p.get("pi_lower")):
        text += (f" Allowing for the differences between studies, the proportion in a new "
                 f"study like these would be expected between {fmt_pct(p['pi_lower'])} and "
                 f"{fmt_pct(p['pi_upper'])} (95% prediction interval).")
    if k < 5:
        text += (f" With only {k} studies, the between-study variance and therefore the "
                 "interval are imprecise; read the estimate as a summary of few, small trials.")
    return text


def describe_heterogeneity(result: MetaResult | None) -> str:
    """τ², I² and the Q test in one sentence."""
    if result is None or result.k < 2:
        return "Heterogeneity cannot be assessed with a single study."
    parts = [f"τ² = {fmt_num(result.tau2, 3)}"]
    if not _missing(result.tau2_ci_lower):
        parts[0] += f" (95% CI {fmt_num(result.tau2_ci_lower, 3)} to " \
                    f"{fmt_num(result.tau2_ci_upper, 3)})"
    parts.append(f"I² = {fmt_num(result.i2, 1)}%")
    if not _missing(result.i2_ci_lower):
        parts[-1] += f" (95% CI {fmt_num(result.i2_ci_lower, 1)}% to " \
                     f"{fmt_num(result.i2_ci_upper, 1)}%)"
    q = f"Q = {fmt_num(result.q, 2)} on {result.q_df} df, {fmt_p(result.q_pvalue)}"
    if result.method == "GLMM":
        q = "Wald-type test of heterogeneity: " + q
    # 0.10, not 0.05: the usual threshold for this test, which has little power
    verdict = ("little statistical evidence of heterogeneity (p ≥ 0.10)"
               if result.q_pvalue >= 0.10 else
               "statistical evidence (p < 0.10, the usual threshold for this test) that the "
               "studies differ more than chance allows")
    return (f"Between-study heterogeneity: {', '.join(parts)}; {q} — {verdict}. With few "
            "studies these tests have little power, so absence of evidence is not evidence of "
            "homogeneity.")


def study_table(res: ProportionAnalysis) -> pd.DataFrame:
    """Display table: study, year, events/total, proportion with its CI, weight.

    The weight column is left out when the model defines no weights (the GLMM).
    """
    import pandas as pd

    s = res.studies
    ci_name = "exact" if res.ci_method == "clopper-pearson" else "Wilson"
    frame = pd.DataFrame({
        "Study": s["label"],
        "Year": s["year"].astype(int),
        "Events / total": [f"{int(e)} / {int(n)}" for e, n in zip(s["events"], s["total"],
                                                                  strict=True)],
        f"Proportion (95% {ci_name} CI)": [
            f"{fmt_pct(p)} ({fmt_ci(lo, hi)})"
            for p, lo, hi in zip(s["proportion"], s["ci_lower"], s["ci_upper"], strict=True)],
        "Weight": [fmt_pct(w) for w in s["weight"]],
    })
    if s["weight"].isna().all():  # the GLMM has no study weights (as in metafor)
        frame = frame.drop(columns="Weight")
    return frame


def panel_table(panel: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`evidence.stats.sensitivity.estimator_panel`."""
    import pandas as pd

    rows = []
    for r in panel.to_dict("records"):
        err = r.get("error")
        ok = _missing(err) or err in ("", None)
        rows.append({
            "Measure": r["measure"],
            "Method": r["method"] + (" + HK" if r.get("knha") else ""),
            "Pooled (95% CI)": (
                f"{fmt_pct(r['proportion'])} "
                f"({fmt_ci(r['prop_ci_lower'], r['prop_ci_upper'])})" if ok else "—"),
            "95% PI": (fmt_ci(r.get("prop_pi_lower"), r.get("prop_pi_upper")) if ok else "—"),
            "τ²": fmt_num(r.get("tau2"), 3) if ok else "—",
            "I²": (fmt_num(r.get("i2"), 1) + "%") if ok else "—",
            "Note": "" if ok else str(err),
        })
    return pd.DataFrame(rows)


def _loo_rows(loo: Any) -> tuple[list[str], list[float], list[float], list[float]]:
    """Omitted study ids and the back-transformed estimates and CIs of each refit."""
    ids = list(getattr(loo, "omitted", None) or loo.study_ids)
    est = getattr(loo, "back_estimate", None)
    if est is None:
        return ids, list(loo.prop), list(loo.prop_ci_lower), list(loo.prop_ci_upper)
    return ids, list(est), list(loo.back_ci_lower), list(loo.back_ci_upper)


def _loo_failures(loo: Any) -> dict[int, str]:
    """Row -> why that refit has no estimate (rma ``errors``, or the GLMM's ``notes``)."""
    ids, est, _, _ = _loo_rows(loo)
    errors = list(getattr(loo, "errors", None) or [None] * len(ids))
    notes = tuple(getattr(loo, "notes", ()) or ())
    failed = {}
    for i, (sid, e) in enumerate(zip(ids, est, strict=True)):
        if e is not None and math.isfinite(float(e)):
            continue
        prefix = f"{sid}: not fitted ("
        note = next((n[len(prefix):-1] for n in notes if n.startswith(prefix)), None)
        failed[i] = errors[i] or note or "no finite estimate"
    return failed


def loo_table(loo: Any, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Display table of a leave-one-out analysis (rma or GLMM refits).

    A refit that failed says so, with the reason, instead of showing numbers.
    """
    import pandas as pd

    ids, est, lo, hi = _loo_rows(loo)
    failed = _loo_failures(loo)
    labels = labels or {}
    return pd.DataFrame({
        "Study omitted": [labels.get(i, i) for i in ids],
        "Pooled without it (95% CI)": [
            f"not fitted: {failed[j]}" if j in failed else f"{fmt_pct(e)} ({fmt_ci(a, b)})"
            for j, (e, a, b) in enumerate(zip(est, lo, hi, strict=True))],
        "τ²": ["—" if j in failed else fmt_num(x, 3) for j, x in enumerate(loo.tau2)],
        "I²": ["—" if j in failed else fmt_num(x, 1) + "%" for j, x in enumerate(loo.i2)],
    })


def describe_loo(loo: Any, full: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """Which omitted study moves the pooled proportion most, in words.

    Refits that failed are named with the reason, never silently left out of the range.
    """
    ids, est, _, _ = _loo_rows(loo)
    failed = _loo_failures(loo)
    labels = labels or {}

    def name(i: int) -> str:
        return escape_markdown(str(labels.get(ids[i], ids[i])))

    fitted = [i for i in range(len(ids)) if i not in failed]
    not_fitted = ""
    if failed:
        reasons = escape_markdown("; ".join(sorted(set(failed.values()))))
        refits = "those refits are" if len(failed) > 1 else "that refit is"
        not_fitted = (f"Without {_join([name(i) for i in sorted(failed)])} the model could "
                      f"not be fitted ({reasons}); {refits} "
                      + ("left out of the range above." if fitted else "marked in the table."))
    if not fitted:
        return "No leave-one-out refit could be fitted. " + not_fitted
    values = [float(est[i]) for i in fitted]
    top = max(fitted, key=lambda i: abs(float(est[i]) - full["estimate"]))
    return (f"Omitting one study at a time moves the pooled proportion between "
            f"{fmt_pct(min(values))} and {fmt_pct(max(values))} (all studies: "
            f"{fmt_pct(full['estimate'])}); the most influential study is "
            f"{name(top)}: without it the estimate is {fmt_pct(est[top])}."
            + (f" {not_fitted}" if not_fitted else ""))


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def subgroup_table(sub: Any) -> pd.DataFrame:
    """Display table of a subgroup analysis."""
    import pandas as pd

    frame = sub.summary_frame()
    return pd.DataFrame({
        "Subgroup": [str(g).replace("_", " ") for g in frame.index],
        "k": frame["k"].astype(int).to_numpy(),
        "Pooled (95% CI)": [f"{fmt_pct(e)} ({fmt_ci(a, b)})" for e, a, b in zip(
            frame["back_estimate"], frame["back_ci_lower"], frame["back_ci_upper"],
            strict=True)],
        "I²": [fmt_num(i, 1) + "%" if k > 1 else "—" for i, k in zip(frame["i2"], frame["k"],
                                                                   strict=True)],
        "Note": ["single study: not pooled" if s else "" for s in frame["single_study"]],
    })


def describe_subgroups(sub: Any, by: str) -> str:
    """The test for subgroup differences in words."""
    what = escape_markdown(by.replace("_", " "))
    text = (f"Test for differences between subgroups by {what}: Q = {fmt_num(sub.q_between, 2)} "
            f"on {sub.q_between_df} df, {fmt_p(sub.q_between_pvalue)} "
            f"({METHOD_NAMES[sub.method]} within subgroups, logit scale).")
    if sub.single_study:
        text += (" Subgroups with a single study are shown but not pooled; the comparison "
                 "rests on very few trials and is exploratory.")
    return text


def no_influence_analysis(k: int, max_k: int) -> str:
    """Why no leave-one-out analysis is shown."""
    if k < 3:
        return ("With fewer than three studies, leaving one out leaves too little to pool; no "
                "influence analysis is shown.")
    return (f"With {k} studies, no single study carries much of the evidence, and refitting "
            f"the model {k} times would dominate the build; leave-one-out is computed up to "
            f"{max_k} studies (parameter `max_influence_k` of this analysis in "
            "`analyses.yml`).")
