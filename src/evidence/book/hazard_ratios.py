"""Hazard ratios: harmonised to one direction, pooled on the log scale, and read in words.

:func:`harmonise_hazard_ratios` puts every hazard ratio of ``effects.csv`` in the
direction the analysis names (inverting those reported the other way round);
:func:`hazard_ratio_effects` turns them into log hazard ratios for
:func:`evidence.stats.pooling.rma`; the rest display and describe them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from evidence.book.names import ADJUSTMENT_NAMES, GROUP_NAMES, TEST_NAMES, name
from evidence.book.pooled import describe_interval
from evidence.book.studies import StudyIndex
from evidence.book.text import fmt_ci, fmt_num, md, p_cell, plural
from evidence.stats.checks import check_level

if TYPE_CHECKING:
    import pandas as pd

    from evidence.stats.results import EffectSizes, MetaResult

__all__ = [
    "ADJUSTED",
    "ADJUSTMENT_NAMES",
    "HR_PANEL",
    "comparison_groups",
    "describe_hazard_ratios",
    "harmonise_hazard_ratios",
    "hazard_ratio_direction_labels",
    "hazard_ratio_effects",
    "hazard_ratio_notes",
    "hazard_ratio_panel",
    "hazard_ratio_panel_abbreviations",
    "hazard_ratio_study_ci",
    "hazard_ratio_table",
    "pool_hazard_ratios",
    "pooled_patients",
    "population_phrase",
    "reference_groups",
    "split_by_adjustment",
]


# ======================================================================================
# Hazard ratios
# ======================================================================================


def _split_comparison(comparison: str) -> tuple[str, str]:
    head, sep, tail = str(comparison).partition("_vs_")
    if not sep or not head or not tail:
        raise ValueError(f"comparison {comparison!r} is not '<numerator>_vs_<reference>'")
    return head, tail


def comparison_groups(comparison: str) -> tuple[str, str]:
    """The two groups of ``"<numerator>_vs_<reference>"`` as slugs, the reference
    completed from a prefix it shares with the numerator
    (``ctc_her2_positive_vs_negative`` → ``("ctc_her2_positive", "ctc_her2_negative")``).

    Raises
    ------
    ValueError
        ``comparison`` is not ``<numerator>_vs_<reference>``.
    """
    num, ref = _split_comparison(comparison)
    prefix = num.rpartition("_")[0]
    if prefix and "_" not in ref:  # the rule harmonise_hazard_ratios reads reversals by
        ref = f"{prefix}_{ref}"
    return num, ref


def hazard_ratio_direction_labels(comparison: str) -> tuple[str, str]:
    """What a hazard ratio below and above 1 means, for the forest plot's axis.

    Every hazard ratio of the analysis is the hazard of the first-named group over the
    second's (:func:`harmonise_hazard_ratios`), so HR < 1 is a lower hazard in the
    first group and HR > 1 a lower hazard in the second.  These are prognostic
    comparisons, not treatments, so the labels say "lower hazard with", not "favours".

    Parameters
    ----------
    comparison : str
        ``"<numerator>_vs_<reference>"``, e.g. ``"ctc_her2_positive_vs_negative"``.

    Returns
    -------
    (str, str)
        The left (HR < 1) and right (HR > 1) labels, e.g.
        ``("Lower hazard with HER2-positive CTCs", "Lower hazard with HER2-negative CTCs")``.
    """
    num, ref = comparison_groups(comparison)
    return (f"Lower hazard with {name(num, GROUP_NAMES)}",
            f"Lower hazard with {name(ref, GROUP_NAMES)}")


def harmonise_hazard_ratios(rows: pd.DataFrame, comparison: str) -> pd.DataFrame:
    """Hazard ratios of one comparison, all in the direction ``comparison`` names.

    ``comparison`` is ``"<numerator>_vs_<reference>"``; a row reported as
    ``"<reference>_vs_<numerator>"`` is inverted: ``HR → 1/HR`` and its CI limits
    become ``(1/upper, 1/lower)`` (the p-value does not change).  When the
    numerator and reference share a prefix (``ctc_her2_positive_vs_negative``), a
    row written ``ctc_her2_negative_vs_positive`` is recognised as the reverse too.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``effects.csv`` rows (``comparison``, ``estimate``, ``ci_lower``,
        ``ci_upper``, ``p_value``, ...).
    comparison : str
        The direction to report.

    Returns
    -------
    pandas.DataFrame
        The matching rows with ``hr``, ``hr_lower``, ``hr_upper`` (harmonised;
        NaN where no CI is reported) and ``direction`` (``"as reported"`` or
        ``"inverted"``), ``reported_comparison``.
    """
    num, ref = _split_comparison(comparison)
    reverse = {f"{ref}_vs_{num}"}
    # shared prefix, e.g. ctc_her2_positive_vs_negative <-> ctc_her2_negative_vs_positive
    prefix, _, last = num.rpartition("_")
    if prefix and "_" not in ref:
        reverse.add(f"{prefix}_{ref}_vs_{last}")
    keep = rows[rows["comparison"].isin({comparison} | reverse)].copy()
    inverted = keep["comparison"] != comparison
    est = keep["estimate"].astype(float)
    lo = keep["ci_lower"].astype(float)
    hi = keep["ci_upper"].astype(float)
    keep["hr"] = np.where(inverted, 1.0 / est, est)
    keep["hr_lower"] = np.where(inverted, 1.0 / hi, lo)
    keep["hr_upper"] = np.where(inverted, 1.0 / lo, hi)
    keep["direction"] = np.where(inverted, "inverted", "as reported")
    keep["reported_comparison"] = keep["comparison"]
    keep["comparison"] = comparison
    return keep.reset_index(drop=True)


#: Values of ``effects.csv`` ``adjusted`` (their words: :data:`ADJUSTMENT_NAMES`).
ADJUSTED: tuple[str, ...] = tuple(ADJUSTMENT_NAMES)


def split_by_adjustment(table: pd.DataFrame, pool_adjusted: str
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to pool (``adjusted == pool_adjusted``) and rows only to show (the others).

    Parameters
    ----------
    table : pandas.DataFrame
        Harmonised rows (:func:`harmonise_hazard_ratios`).
    pool_adjusted : {"no", "yes"}
        Pool the unadjusted (univariable) or the adjusted (multivariable) estimates.

    Raises
    ------
    ValueError
        ``pool_adjusted`` not in ``("no", "yes")``.
    """
    if pool_adjusted not in ADJUSTED:
        raise ValueError(f"unknown pool_adjusted {pool_adjusted!r}; allowed: "
                         f"{', '.join(ADJUSTED)}")
    pooled = table["adjusted"] == pool_adjusted
    return table[pooled].reset_index(drop=True), table[~pooled].reset_index(drop=True)


def hazard_ratio_effects(table: pd.DataFrame, level: float = 0.95) -> EffectSizes:
    """Log hazard ratios and variances of harmonised rows, one per study.

    The variance comes from the reported CI where there is one, else from the
    two-sided p-value (:func:`evidence.stats.effects.hazard_ratios`).

    Raises
    ------
    ValueError
        Two rows for one study (pool one kind: adjusted or not), or a row with
        neither a CI nor a p-value.
    """
    from evidence.stats.effects import hazard_ratios

    dup = table["study_id"][table["study_id"].duplicated()]
    if len(dup):
        raise ValueError(f"more than one hazard ratio for {sorted(set(dup))}: select "
                         "adjusted or unadjusted estimates")
    return hazard_ratios(table["hr"].to_numpy(float), table["hr_lower"].to_numpy(float),
                         table["hr_upper"].to_numpy(float), table["p_value"].to_numpy(float),
                         study_ids=table["study_id"].tolist(), level=level)


def pool_hazard_ratios(es: EffectSizes, test: str = "adhoc"
                       ) -> tuple[MetaResult, MetaResult]:
    """The random-effects (REML, with ``test``'s interval) and the common-effect fit of
    log hazard ratios."""
    from evidence.stats.pooling import rma

    return rma(es, method="REML", test=test), rma(es, method="FE")


#: The fits of the hazard-ratio sensitivity panel: (method, test).
HR_PANEL: tuple[tuple[str, str], ...] = (
    ("REML", "adhoc"), ("REML", "knha"), ("REML", "z"), ("DL", "z"), ("PM", "z"),
    ("FE", "z"))


def hazard_ratio_panel(es: EffectSizes, primary: tuple[str, str] = ("REML", "adhoc")
                       ) -> pd.DataFrame:
    """Display table of the pooled hazard ratio under each model of :data:`HR_PANEL`
    (the ``primary`` one marked); a fit that fails gives its message."""
    import pandas as pd

    from evidence.book.names import TEST_SHORT
    from evidence.book.text import shows_prediction
    from evidence.stats.checks import ConvergenceError
    from evidence.stats.pooling import rma

    rows = []
    for method, test in HR_PANEL:
        row = {"Model": method + (" (primary)" if (method, test) == primary else ""),
               "Interval": TEST_SHORT[test]}
        try:
            fit = rma(es, method=method, test=test)
        except (ValueError, ConvergenceError) as exc:
            rows.append({**row, "Hazard ratio (95% CI)": "—", "95% PI": "—", "τ²": "—",
                         "Note": f"{type(exc).__name__}: {exc}"})
            continue
        p = fit.pooled()
        rows.append({**row,
                     "Hazard ratio (95% CI)": f"{fmt_num(p.estimate, 2)} "
                     f"({fmt_ci(p.ci_lower, p.ci_upper, pct=False, digits=2)})",
                     "95% PI": (fmt_ci(p.pi_lower, p.pi_upper, pct=False, digits=2)
                                if shows_prediction(fit.k, method) else "—"),
                     "τ²": fmt_num(fit.tau2, 3), "Note": ""})
    return pd.DataFrame(rows)


def hazard_ratio_panel_abbreviations() -> str:
    """The abbreviation note under :func:`hazard_ratio_panel`: the model and interval
    codes of :data:`HR_PANEL`, each linked to the glossary (MyST Markdown)."""
    from evidence.book.names import abbreviations_note

    return abbreviations_note([m for m, _ in HR_PANEL], tests=[t for _, t in HR_PANEL])


def hazard_ratio_study_ci(table: pd.DataFrame, es: EffectSizes,
                          level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per-study CI limits for the forest plot: as reported, else Wald from ``vi``."""
    from evidence.stats.distributions import norm_quantile_upper

    z = norm_quantile_upper((1.0 - check_level(level)) / 2.0)
    lo = table["hr_lower"].to_numpy(float)
    hi = table["hr_upper"].to_numpy(float)
    se = np.sqrt(np.asarray(es.vi, dtype=float))
    yi = np.asarray(es.yi, dtype=float)
    missing = ~(np.isfinite(lo) & np.isfinite(hi))
    lo = np.where(missing, np.exp(yi - z * se), lo)
    hi = np.where(missing, np.exp(yi + z * se), hi)
    return lo, hi


def hazard_ratio_table(table: pd.DataFrame, studies: pd.DataFrame,
                       pooled_adjusted: str) -> pd.DataFrame:
    """Display table of harmonised hazard ratios, saying which were pooled and why not."""
    import pandas as pd

    study = StudyIndex(studies)
    out = []
    for r in table.to_dict("records"):
        s = study(r["study_id"])
        has_ci = math.isfinite(r["hr_lower"]) and math.isfinite(r["hr_upper"])
        pooled = r["adjusted"] == pooled_adjusted
        out.append({
            "Study": s["label"],
            "Analysis": "multivariable (adjusted)" if r["adjusted"] == "yes"
            else "univariable (unadjusted)",
            "Hazard ratio (95% CI)": f"{fmt_num(r['hr'], 2)} ("
            + (fmt_ci(r["hr_lower"], r["hr_upper"], pct=False, digits=2) if has_ci
               else "CI not reported") + ")",
            "p": p_cell(r["p_value"]),
            "SE from": "reported CI" if has_ci else "p-value",
            "Direction": r["direction"],
            "Pooled": "yes" if pooled else "no (shown only)",
        })
    return pd.DataFrame(out)


def hazard_ratio_notes(table: pd.DataFrame, studies: pd.DataFrame) -> str:
    """The registry's note on each hazard ratio, as a Markdown list."""
    study = StudyIndex(studies)
    items = []
    for r in table.to_dict("records"):
        note = str(r.get("note", "") or "").strip()
        if note:
            items.append(f"- *{md(study(r['study_id'])['label'])}, "
                         f"{ADJUSTMENT_NAMES.get(r['adjusted'], md(r['adjusted']))}*: {md(note)}")
    return "\n".join(items) if items else "The registry has no notes on these estimates."


def describe_hazard_ratios(re: MetaResult | None, fe: MetaResult | None,
                           pooled: pd.DataFrame, shown: pd.DataFrame, studies: pd.DataFrame,
                           comparison_words: str, outcome_words: str) -> str:
    """Plain-language account of the pooled hazard ratio and what limits it.

    Parameters
    ----------
    re, fe : MetaResult or None
        Random-effects (REML, with its interval's test) and common-effect fits of
        ``pooled`` (None if there is nothing to pool).
    pooled, shown : pandas.DataFrame
        Harmonised rows that were pooled, and those only shown (the other kind
        of adjustment).
    studies : pandas.DataFrame
        ``studies.csv`` rows, for the populations.
    comparison_words : str
        E.g. ``"patients with HER2-positive CTCs vs those without"``.
    outcome_words : str
        E.g. ``"progression-free survival"``.
    """
    study = StudyIndex(studies)
    paras = []
    inverted = int((pooled["direction"] == "inverted").sum()
                   + (shown["direction"] == "inverted").sum())
    paras.append(
        f"Every hazard ratio compares {comparison_words} "
        + ("(as all sources report it, so none had to be inverted)" if inverted == 0 else
           f"({plural(inverted, 'estimate', 'estimates')} reported the other way round "
           "inverted)")
        + f"; a hazard ratio below 1 means a lower hazard of an event — longer "
          f"{outcome_words} — in the first group.")
    kind = ADJUSTMENT_NAMES.get(str(pooled["adjusted"].iloc[0]), "") if not pooled.empty \
        else ""
    if re is None or fe is None or pooled.empty:
        paras.append("There are no estimates of this kind to pool.")
    elif re.k == 1:
        r = pooled.iloc[0]
        paras.append(f"Only one {kind} estimate "
                     f"({md(study(r['study_id'])['label'])}): hazard ratio "
                     f"{fmt_num(r['hr'], 2)}; nothing is pooled.")
    else:
        p_re, p_fe = re.pooled(), fe.pooled()
        ci_re = fmt_ci(p_re.ci_lower, p_re.ci_upper, pct=False, digits=2)
        ci_fe = fmt_ci(p_fe.ci_lower, p_fe.ci_upper, pct=False, digits=2)
        text = (f"Pooling the {re.k} {kind} estimates on the log scale gives a hazard ratio "
                f"of {fmt_num(p_re.estimate, 2)} (95% CI {ci_re}; random-effects model, REML, "
                f"{TEST_NAMES[re.test]}), "
                f"and {fmt_num(p_fe.estimate, 2)} ({ci_fe}) with the common-effect model. "
                + ("The pooled interval excludes 1." if p_re.ci_upper < 1 or p_re.ci_lower > 1
                   else "The pooled interval includes 1 (no association)."))
        text += describe_interval(re)
        if re.tau2 == 0:
            text += (" The between-study variance is estimated at zero, so the two models give "
                     "the same estimate; with so few studies this does not show that the "
                     "studies agree.")
        if re.k < 5:
            text += (f" With k = {re.k}, τ² and the test of heterogeneity rest on almost no "
                     "information.")
        by_p = int(pooled["hr_lower"].isna().sum())
        if by_p:
            text += (f" {plural(by_p, 'estimate comes', 'estimates come')} without a "
                     "confidence interval; the standard error is back-calculated from the "
                     "printed p-value (assuming a Wald test), so it is only as precise as that "
                     "rounded p-value.")
        paras.append(text)
    if not shown.empty:
        items = []
        for r in shown.to_dict("records"):
            lab = md(study(r["study_id"])["label"])
            ci = (f" (95% CI {fmt_ci(r['hr_lower'], r['hr_upper'], pct=False, digits=2)})"
                  if math.isfinite(r["hr_lower"]) else "")
            items.append(f"{lab} {fmt_num(r['hr'], 2)}{ci}")
        other = ADJUSTMENT_NAMES.get(str(shown["adjusted"].iloc[0]), "other")
        verb = "estimate is" if len(items) == 1 else "estimates are"
        paras.append(f"The {other} {verb} shown, not pooled: " + "; ".join(items)
                     + ". Mixing adjusted and unadjusted hazard ratios would pool different "
                       "quantities.")
    ids = list(dict.fromkeys([*pooled["study_id"], *shown["study_id"]]))
    refs = {**reference_groups(shown), **reference_groups(pooled)}
    pops = []
    for sid in ids:
        s = study(sid)
        ref = refs.get(sid, "")
        pops.append(f"- *{md(s['label'])}*: tissue HER2-{md(s.get('tissue_her2', '?'))}, "
                    f"{md(s.get('setting', ''))} disease; treatment: "
                    f"{md(s.get('intervention', ''))}; CTC HER2 criterion: "
                    f"{md(s.get('her2_cutoff', ''))}; reference group: "
                    f"{md(ref) if ref else 'not recorded'}.")
    if len(ids) > 1:
        paras.append("The populations are not alike:\n\n" + "\n".join(pops) + "\n\n"
                     "How each study forms its comparison groups is in the registry notes "
                     "below the table. The pooled value therefore summarises related but "
                     "different questions: read it as a sign of direction, not as one effect "
                     "measured twice.")
    elif pops:
        paras.append("Population:\n\n" + pops[0])
    return "\n\n".join(paras)


def population_phrase(study_ids: list[str], references: dict[str, str],
                      studies: pd.DataFrame) -> str:
    """Who the pooled hazard ratios come from, for the summary of findings (plain text).

    Names the kind of study (``observational cohorts`` when every study is a
    non-randomised cohort), the tissue HER2 status of their patients and the reference
    group of each estimate (``effects.csv`` ``reference_group``), saying whether the
    reference groups differ.

    Parameters
    ----------
    study_ids : list of str
        The studies pooled, in order.
    references : dict
        ``study_id -> reference_group`` (empty or absent: not recorded).
    studies : pandas.DataFrame
        ``studies.csv`` rows (``design``, ``randomized``, ``tissue_her2``, ``label``).

    Returns
    -------
    str
        E.g. "2 observational cohorts, tissue HER2-positive; reference groups differ:
        X (A 2016) vs Y (B 2025)".
    """
    study = StudyIndex(studies)
    rows = [study(s) for s in study_ids]
    k = len(rows)
    cohorts = k > 0 and all("cohort" in str(r.get("design", "")).lower()
                            and r.get("randomized") != "yes" for r in rows)
    noun = plural(k, "observational cohort", "observational cohorts") if cohorts \
        else plural(k, "study", "studies")
    each = [str(r.get("tissue_her2", "") or "") for r in rows]
    tissue = list(dict.fromkeys(each))
    if len(tissue) == 1:
        text = noun + (f", tissue HER2-{tissue[0]}" if tissue[0]
                       else ", tissue HER2 status not recorded")
    else:
        text = noun + ", tissue HER2 status differs: " + ", ".join(
            f"{t or 'not recorded'} ({r['label']})" for t, r in zip(each, rows, strict=True))
    refs = [str(references.get(s, "") or "") for s in study_ids]
    if k == 0:
        return text
    if all(refs) and len(set(refs)) == 1:
        return text + f"; reference group: {refs[0]}"
    parts = [f"{ref or 'not recorded'} ({r['label']})" for ref, r in
             zip(refs, rows, strict=True)]
    if k == 1:
        return text + f"; reference group: {parts[0]}"
    if not any(refs):
        return text + "; reference groups not recorded"
    lead = "reference groups differ" if all(refs) else "reference groups not all recorded"
    return text + f"; {lead}: " + " vs ".join(parts)


def pooled_patients(table: pd.DataFrame) -> int | None:
    """The patients behind the pooled hazard ratios: the sum of ``effects.csv``
    ``patients`` over the pooled rows, or None when any of them does not state it (a
    partial sum would read as the total)."""
    if table.empty or "patients" not in table.columns:
        return None
    values = [str(v).strip() for v in table["patients"].fillna("")]
    if any(v in ("", "nan") for v in values):
        return None
    return sum(int(float(v)) for v in values)


def reference_groups(table: pd.DataFrame) -> dict[str, str]:
    """``study_id -> reference group`` of harmonised rows (``effects.csv``
    ``reference_group``; empty when not recorded).  The column describes the reported
    comparison, so an inverted row says that its reference was the other group."""
    out: dict[str, str] = {}
    for r in table.to_dict("records"):
        ref = str(r.get("reference_group", "") or "").strip()
        if ref and r.get("direction") == "inverted":
            ref = f"the group compared with {ref} (reported the other way round)"
        out[str(r["study_id"])] = ref
    return out
