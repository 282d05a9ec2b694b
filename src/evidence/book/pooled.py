"""A pooled proportion: the analysis of one outcome's studies, and its words and tables.

:func:`pool_table` pools the ``events``/``total`` of a registry table (one row per study)
with the model chosen in ``analyses.yml``; :func:`influence` refits it without each study
and :func:`subgroup_pool` within the levels of a study column.  The functions after them
turn the results into the sentences and display tables of a pooled chapter: every number
they state is computed, and every sentence that depends on a number is chosen by the code
that sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.names import MEASURE_LABELS, METHOD_NAMES, TEST_NAMES
from evidence.book.tables import summary_frame
from evidence.book.text import (
    escape_markdown,
    fmt_ci,
    fmt_ci_clipped,
    fmt_num,
    fmt_p,
    fmt_pct,
    is_missing,
    join_names,
    prediction_reading,
    shows_prediction,
)

if TYPE_CHECKING:
    import pandas as pd

    from evidence.stats.results import MetaResult
    from evidence.stats.sensitivity import Refits

__all__ = [
    "KEY_PANEL_ROWS",
    "ProportionAnalysis",
    "describe_heterogeneity",
    "describe_interval",
    "describe_loo",
    "describe_pooled",
    "describe_unused",
    "estimator_panel_table",
    "influence",
    "key_panel",
    "loo_table",
    "no_influence_analysis",
    "panel_abbreviations",
    "panel_table",
    "pool_table",
    "study_table",
    "unused_rows",
]


@dataclass(frozen=True)
class ProportionAnalysis:
    """A pooled single-proportion outcome: the model and the per-study table."""

    result: MetaResult
    studies: pd.DataFrame
    measure: str
    method: str
    test: str
    ci_method: str
    pooled: dict[str, Any]
    note: str = ""

    @property
    def k(self) -> int:
        """Number of studies."""
        return len(self.studies)

    @property
    def knha(self) -> bool:
        """Hartung-Knapp adjustment (``test == "knha"``)."""
        return self.test == "knha"

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md result fields (``model`` on the measure scale, ``pooled``
        back-transformed)."""
        studies = [
            {"study_id": r.study_id, "label": r.label, "events": int(r.events),
             "total": int(r.total), "proportion": r.proportion, "ci_lower": r.ci_lower,
             "ci_upper": r.ci_upper, "weight": r.weight}
            for r in self.studies.itertuples()
        ]
        return {
            "measure": self.measure, "method": self.method, "test": self.test,
            "knha": self.knha,
            "ci_method": self.ci_method, "k": self.k,
            "patients": int(self.studies["total"].sum()),
            "events": int(self.studies["events"].sum()),
            "studies": studies,
            "model": self.result.model_dict() if self.k > 1 else None,
            "pooled": self.pooled,
            "note": self.note,
        }


def pool_table(table: pd.DataFrame, *, measure: str = "PLO", method: str = "REML",
               knha: bool = False, test: str | None = None,
               ci_method: str = "clopper-pearson", level: float = 0.95) -> ProportionAnalysis:
    """Pool the ``events``/``total`` of a registry table (one row per study).

    ``method`` and ``test`` are those of :func:`evidence.stats.proportions.pool_proportions`
    (e.g. the GLMM with ``test="t"``).  Per-study intervals are exact Clopper-Pearson by
    default (``ci_method="wilson"`` for Wilson score intervals); weights are fractions of 1.
    """
    from evidence.stats.vocabulary import resolve_test

    test = resolve_test(test, knha)
    from evidence.stats.effects import proportion_ci

    if table["study_id"].duplicated().any():
        dup = sorted(set(table.loc[table["study_id"].duplicated(), "study_id"]))
        raise ValueError(f"more than one row per study for {dup}: select one arm/subgroup")
    from evidence.stats.proportions import pool_proportions

    result, pooled = pool_proportions(table["events"], table["total"], table["study_id"],
                                      measure=measure, method=method, test=test,
                                      level=level)
    lo, hi = proportion_ci(table["events"].to_numpy(), table["total"].to_numpy(),
                           method=ci_method, level=level)
    studies = table[["study_id", "label", "year", "events", "total"]].copy()
    studies["proportion"] = studies["events"] / studies["total"]
    studies["ci_lower"] = lo
    studies["ci_upper"] = hi
    weights = np.asarray(result.weights, dtype=float)
    studies["weight"] = weights / 100.0 if np.all(np.isfinite(weights)) else np.nan
    note = pooled.get("warning") or ""
    return ProportionAnalysis(result, studies, measure if method != "GLMM" else "PLO", method,
                              test, ci_method, pooled, note)


def influence(pa: ProportionAnalysis) -> Refits:
    """Leave-one-out refits of a pooled proportion with its own model.

    :func:`evidence.stats.sensitivity.leave_one_out` with the analysis's model: the GLMM
    through :func:`evidence.stats.glmm.glmm_fitter`, an rma estimator directly.  Needs
    k >= 3.
    """
    from evidence.stats.effects import escalc
    from evidence.stats.glmm import glmm_fitter
    from evidence.stats.sensitivity import leave_one_out

    if pa.k < 3:
        raise ValueError(f"leave-one-out needs at least 3 studies, got k = {pa.k}")
    s = pa.studies
    es = escalc(pa.measure, xi=s["events"], ni=s["total"], study_ids=s["study_id"])
    if pa.method == "GLMM":
        return leave_one_out(es, fitter=glmm_fitter(test=pa.test))
    return leave_one_out(es, method=pa.method, test=pa.test)


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
            f"{METHOD_NAMES[res.method]}, {TEST_NAMES[res.test]}).")
    text += describe_interval(res.result)
    if not is_missing(p.get("pi_lower")) or not shows_prediction(k, res.method):
        text += prediction_reading(k, res.method, res.result.tau2, fmt_pct(p.get("pi_lower")),
                                   fmt_pct(p.get("pi_upper")),
                                   "the proportion in a new study like these")
    if k < 5:
        text += (f" With only {k} studies, the between-study variance and therefore the "
                 "interval are imprecise; read the estimate as a summary of few, small trials.")
    return text


def describe_interval(result: MetaResult) -> str:
    """What a t-based interval costs with few studies: its degrees of freedom and critical
    value beside the normal 1.96 (empty for a z interval or a single study)."""
    from evidence.stats.checks import critical_value
    from evidence.stats.distributions import t_quantile_upper

    if result.test == "z" or result.df is None or result.k < 2:
        return ""
    level = result.level
    q_t = t_quantile_upper((1.0 - level) / 2.0, result.df)
    q_z = critical_value(level)
    df = int(result.df) if float(result.df).is_integer() else result.df
    return (f" The interval uses Student's t with {df} "
            f"{'degree' if df == 1 else 'degrees'} of freedom: its critical value is "
            f"{fmt_num(q_t, 2)} instead of the normal {fmt_num(q_z, 2)}, so with "
            f"{result.k} studies it is {fmt_num(q_t / q_z, 1)} times as wide on the model "
            "scale" + (" before the Hartung–Knapp scaling of the variance"
                       if result.test in ("knha", "adhoc") else "")
            + "; the normal (z) interval, which ignores the uncertainty in τ², is in the "
            "sensitivity panel.")


def describe_heterogeneity(result: MetaResult | None) -> str:
    """τ², I² and the Q test in one sentence."""
    if result is None or result.k < 2:
        return "Heterogeneity cannot be assessed with a single study."
    parts = [f"τ² = {fmt_num(result.tau2, 3)}"]
    if not is_missing(result.tau2_ci_lower):
        parts[0] += f" (95% CI {fmt_num(result.tau2_ci_lower, 3)} to " \
                    f"{fmt_num(result.tau2_ci_upper, 3)})"
    parts.append(f"I² = {fmt_num(result.i2, 1)}%")
    if not is_missing(result.i2_ci_lower):
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


def estimator_panel_table(pa: ProportionAnalysis,
                          bayes_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The display table of every measure x estimator fitted to the analysis's studies
    (:func:`evidence.stats.sensitivity.estimator_panel`, with the GLMM under both its
    tests), the primary analysis marked, and the Bayesian rows
    (:func:`evidence.book.bayesian.bayes_panel_rows`) last."""
    import pandas as pd

    from evidence.stats.sensitivity import estimator_panel
    from evidence.stats.vocabulary import GLMM_TESTS

    s = pa.studies
    panel = estimator_panel(s["events"], s["total"], study_ids=s["study_id"],
                            glmm_tests=GLMM_TESTS)
    table = panel_table(summary_frame(panel, index=False),
                        primary=(pa.measure, pa.method, pa.test))
    if bayes_rows is not None and not bayes_rows.empty:
        table = pd.concat([table, bayes_rows[table.columns]], ignore_index=True)
    return table


#: The rows of the estimator panel shown first (logit scale): the GLMM under both
#: intervals, REML under every interval, DerSimonian-Laird, the common-effect model.
KEY_PANEL_ROWS: tuple[tuple[str, str], ...] = (
    ("GLMM", "t (k − 1 df)"), ("GLMM", "z"), ("REML", "Hartung–Knapp ad hoc"),
    ("REML", "Hartung–Knapp"), ("REML", "z"), ("DL", "z"), ("FE", "z"))


def key_panel(table: pd.DataFrame) -> pd.DataFrame:
    """The estimator panel's key rows (:data:`KEY_PANEL_ROWS`, logit scale, the primary
    row whatever it is, and every Bayesian row), for the page; the whole panel follows in
    a collapsed block."""
    method = table["Method"].str.replace(" (primary)", "", regex=False)
    is_key = np.array([(m, i) in KEY_PANEL_ROWS
                       for m, i in zip(method, table["Interval"], strict=True)], dtype=bool)
    keep = (table["Measure"] == MEASURE_LABELS["PLO"]).to_numpy() & is_key
    keep |= (table["Method"].str.endswith("(primary)")
             | table["Method"].str.startswith("Bayes")).to_numpy()
    order = {key: n for n, key in enumerate(KEY_PANEL_ROWS)}
    rank = [order.get((m, i), len(order)) for m, i in zip(method, table["Interval"],
                                                          strict=True)]
    out = table.assign(_rank=rank)[keep].sort_values("_rank", kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


def panel_abbreviations() -> str:
    """The abbreviation note under an estimator panel (:func:`panel_table`): every model,
    measure and interval code it can show, each linked to the glossary
    (:func:`evidence.book.names.abbreviations_note`; MyST Markdown)."""
    from evidence.book.names import abbreviations_note
    from evidence.stats.vocabulary import METHODS, PROPORTION_MEASURES, TESTS

    return abbreviations_note(METHODS, measures=PROPORTION_MEASURES, tests=TESTS)


def panel_table(panel: pd.DataFrame, primary: tuple[str, str, str] | None = None
                ) -> pd.DataFrame:
    """Display version of :func:`evidence.stats.sensitivity.estimator_panel`; the row
    equal to ``primary`` (measure, method, test) is marked "(primary)"; the measure reads
    as :data:`evidence.book.names.MEASURE_LABELS` gives it ("Raw proportion (PR)")."""
    import pandas as pd

    from evidence.book.names import TEST_SHORT

    rows = []
    for r in panel.to_dict("records"):
        err = r.get("error")
        ok = is_missing(err) or err in ("", None)
        is_primary = primary is not None and (r["measure"], r["method"], r["test"]) == primary
        ci, ci_cut = fmt_ci_clipped(r.get("prop_ci_lower"), r.get("prop_ci_upper"))
        pi, pi_cut = fmt_ci_clipped(r.get("prop_pi_lower"), r.get("prop_pi_upper"))
        shows_pi = ok and r["k"] >= 3
        cut = ok and (ci_cut or (shows_pi and pi_cut))
        rows.append({
            "Measure": MEASURE_LABELS.get(r["measure"], r["measure"]),
            "Method": r["method"] + (" (primary)" if is_primary else ""),
            "Interval": TEST_SHORT.get(r["test"], r["test"]),
            "Pooled (95% CI)": (f"{fmt_pct(r['proportion'])} ({ci})" if ok else "—"),
            "95% PI": pi if shows_pi else "—",
            "τ²": fmt_num(r.get("tau2"), 3) if ok else "—",
            "I²": (fmt_num(r.get("i2"), 1) + "%") if ok and not is_missing(r.get("i2"))
            else "—",
            "Note": (str(err) if not ok else
                     "interval truncated to 0%–100% for display" if cut else ""),
        })
    return pd.DataFrame(rows)


def _loo_rows(loo: Refits) -> tuple[list[str], list[float], list[float], list[float]]:
    """Omitted study ids and the back-transformed estimates and CIs of each refit."""
    return (list(loo.omitted), list(loo.back_estimate), list(loo.back_ci_lower),
            list(loo.back_ci_upper))


def _loo_failures(loo: Refits) -> dict[int, str]:
    """Row -> why that refit has no estimate (its error, or that it has none)."""
    failed = dict(loo.failed)
    for i, e in enumerate(loo.back_estimate):
        if i not in failed and not math.isfinite(float(e)):
            failed[i] = "no finite estimate"
    return dict(sorted(failed.items()))


def loo_table(loo: Refits, labels: dict[str, str] | None = None) -> pd.DataFrame:
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


def describe_loo(loo: Refits, full: dict[str, Any], labels: dict[str, str] | None = None) -> str:
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
        not_fitted = (f"Without {join_names([name(i) for i in sorted(failed)])} the model could "
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


def no_influence_analysis(k: int, max_k: int) -> str:
    """Why no leave-one-out analysis is shown."""
    if k < 3:
        return ("With fewer than three studies, leaving one out leaves too little to pool; no "
                "influence analysis is shown.")
    return (f"With {k} studies, no single study carries much of the evidence, and refitting "
            f"the model {k} times would dominate the build; leave-one-out is computed up to "
            f"{max_k} studies (parameter `max_influence_k` of this analysis in "
            "`analyses.yml`).")


def unused_rows(rows: pd.DataFrame, used: pd.DataFrame, studies: pd.DataFrame, *,
                arm_role: str = "", subgroup: str = "") -> pd.DataFrame:
    """The registry rows of an outcome that an analysis did not pool, each with the reason.

    Parameters
    ----------
    rows : pandas.DataFrame
        Every ``outcomes.csv`` row of the outcome (both readings, every arm and subgroup).
    used : pandas.DataFrame
        The rows the analysis pooled (``study_id``, ``arm``, ``subgroup``).
    studies : pandas.DataFrame
        ``studies.csv`` rows, for the labels.
    arm_role, subgroup : str
        The analysis's selection (``""``: any arm role; the whole population).

    Returns
    -------
    pandas.DataFrame
        Display table: ``Study``, ``Arm``, ``Subgroup``, ``Events / total`` and ``Why it
        is not pooled here``; empty when every row is pooled.
    """
    import pandas as pd

    from evidence.book.names import ARM_NAMES, name, subgroup_phrase
    from evidence.book.studies import StudyIndex

    study = StudyIndex(studies)
    pooled_keys = {(r["study_id"], r["arm"], r["subgroup"]) for r in used.to_dict("records")}
    out = []
    for r in rows.to_dict("records"):
        key = (r["study_id"], r["arm"], r["subgroup"])
        if r.get("use", "primary") == "primary" and key in pooled_keys:
            continue
        if r.get("use", "primary") != "primary":
            why = ("the other reading of a number the source gives two ways; the pooled "
                   "reading and the registry's note on the choice are in the Study registry")
        elif (r.get("subgroup") or "") != subgroup:
            why = (f"a subgroup ({subgroup_phrase(r['subgroup'])}); this analysis pools "
                   + (f"the subgroup {subgroup_phrase(subgroup)}" if subgroup
                      else "whole populations"))
        elif arm_role and r.get("arm_role") != arm_role:
            why = (f"the {r.get('arm_role') or 'unassigned'} arm; this analysis pools the "
                   f"{arm_role} arms")
        else:
            why = "not selected by this analysis"
        out.append({"Study": study(r["study_id"])["label"], "Arm": name(r["arm"], ARM_NAMES),
                    "Subgroup": subgroup_phrase(r.get("subgroup") or ""),
                    "Events / total": f"{int(r['events'])} / {int(r['total'])}",
                    "Why it is not pooled here": why})
    return pd.DataFrame(out, columns=["Study", "Arm", "Subgroup", "Events / total",
                                      "Why it is not pooled here"])


def describe_unused(unused: pd.DataFrame, n_rows: int) -> str:
    """One sentence: how many registry rows of the outcome are pooled, how many are not."""
    if unused.empty:
        return (f"Every registry row of this outcome ({n_rows:,}) is pooled here.")
    n = len(unused)
    return (f"{n_rows - n:,} of the {n_rows:,} registry rows of this outcome are pooled; the "
            f"{'row' if n == 1 else f'{n:,} rows'} below {'is' if n == 1 else 'are'} not, "
            "for the reason given.")
