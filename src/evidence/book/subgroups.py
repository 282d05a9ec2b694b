"""Subgroup analyses of a pooled proportion: one per study column of ``subgroup_by``.

Within a level of two or more studies the studies are pooled (inverse-variance random
effects on the logit scale); a level of one study shows that study's proportion with its
exact interval. The Q-between test compares only the levels of two or more studies, and
runs only when at least two levels have them; every sentence that states its result is
chosen by the code that sees it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from evidence.book.names import METHOD_NAMES
from evidence.book.tables import summary_frame
from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_p, fmt_pct, join_names

if TYPE_CHECKING:
    import pandas as pd

    from evidence.book.pooled import ProportionAnalysis
    from evidence.stats.subgroups import SubgroupResult

__all__ = [
    "MIN_STUDIES_TESTED",
    "SubgroupSection",
    "describe_subgroup_sections",
    "describe_subgroup_test",
    "subgroup_pool",
    "subgroup_sections",
    "subgroup_verdict",
    "subgroups_json",
]


def subgroup_pool(pa: ProportionAnalysis, table: pd.DataFrame, by: str, *,
                  method: str = "REML") -> SubgroupResult:
    """Pool within each level of a study column and test the difference (Q-between).

    Uses the logit measure with an rma estimator (``REML`` by default, or the
    analysis's own method when it is not the GLMM).
    """
    from evidence.stats.effects import escalc
    from evidence.stats.subgroups import subgroup_analysis

    if by not in table.columns:
        raise KeyError(f"no study column {by!r} to form subgroups; columns: "
                       f"{sorted(table.columns)}")
    groups = table[by].fillna("not reported").replace("", "not reported").astype(str)
    es = escalc("PLO", xi=table["events"], ni=table["total"], study_ids=table["study_id"])
    fit_method = pa.method if pa.method != "GLMM" else method
    test = pa.test if pa.method != "GLMM" else "z"
    return subgroup_analysis(es, list(groups), method=fit_method, test=test)


class SubgroupSection(NamedTuple):
    """One subgroup analysis of a page: the study column, the words shown (a heading and
    the test or why there is none), the table of levels (None when there is nothing to
    compare), the test between subgroups (None when fewer than two subgroups have two or
    more studies) and each level's numbers for the result file."""

    column: str
    text: str
    frame: pd.DataFrame | None
    test: SubgroupResult | None
    levels: list[dict[str, Any]]


#: A subgroup enters the test between subgroups only with at least this many studies.
MIN_STUDIES_TESTED = 2


def subgroup_sections(pa: ProportionAnalysis, table: pd.DataFrame,
                      columns: list[str] | tuple[str, ...]) -> list[SubgroupSection]:
    """One subgroup analysis per study column.

    A column whose studies all share one value, or a single study, gives a sentence that
    says so and no table. Otherwise every level is shown: a level with two or more studies
    pooled (inverse-variance random effects, logit scale), a level with one study as that
    study's proportion with its exact (Clopper–Pearson) interval, as in the study table.
    The Q-between test compares only the levels with two or more studies, and is run
    only when at least two levels have them; the text names what it compares.
    """
    import pandas as pd

    from evidence.book.names import STUDY_COLUMN_NAMES, level_name
    from evidence.stats.effects import proportion_ci

    out: list[SubgroupSection] = []
    labels = dict(zip(pa.studies["study_id"], pa.studies["label"], strict=True))
    for column in columns:
        what = STUDY_COLUMN_NAMES.get(column, column.replace("_", " "))
        if column not in table.columns:
            raise KeyError(f"no study column {column!r} to form subgroups; columns: "
                           f"{sorted(table.columns)}")
        values = table[column].fillna("not reported").replace("", "not reported").astype(str)
        heading = f"**By {escape_markdown(what)}.** "
        if pa.k < 2:
            out.append(SubgroupSection(column, heading + "A single study: no subgroup "
                                       "analysis.", None, None, []))
            continue
        if values.nunique() < 2:
            level = escape_markdown(level_name("", values.iloc[0]))
            out.append(SubgroupSection(
                column, heading + f"Every study has the same {escape_markdown(what)} "
                f"({level}), so there is nothing to compare.", None, None, []))
            continue
        fits = subgroup_pool(pa, table, column)
        counts = values.value_counts()
        tested = [g for g in fits.groups if counts[g] >= MIN_STUDIES_TESTED]
        test = None
        if len(tested) >= 2:
            keep = values.isin(tested).to_numpy()
            test = subgroup_pool(pa, table[keep].reset_index(drop=True), column)
        fitted = summary_frame(fits.summary())
        levels: list[dict[str, Any]] = []
        for g in fits.groups:
            rows = table[(values == g).to_numpy()]
            studies = "; ".join(labels[s] for s in rows["study_id"])
            if counts[g] == 1:
                x, n = int(rows["events"].iloc[0]), int(rows["total"].iloc[0])
                lo, hi = proportion_ci([x], [n])
                est, lo, hi, interval = x / n, float(lo[0]), float(hi[0]), "exact"
            else:
                f = fitted.loc[g]
                est, lo, hi = (float(f["back_estimate"]), float(f["back_ci_lower"]),
                               float(f["back_ci_upper"]))
                interval = "pooled"
            levels.append({"group": g, "k": int(counts[g]), "estimate": est, "ci_lower": lo,
                           "ci_upper": hi, "interval": interval,
                           "i2": (float(fitted.loc[g, "i2"]) if counts[g] > 1 else None),
                           "in_test": test is not None and g in tested,
                           "studies": studies})
        frame = pd.DataFrame({
            "Subgroup": [level_name("", lv["group"]) for lv in levels],
            "k": [lv["k"] for lv in levels],
            "Proportion (95% CI)": [f"{fmt_pct(lv['estimate'])} "
                                    f"({fmt_ci(lv['ci_lower'], lv['ci_upper'])})"
                                    for lv in levels],
            "I²": [fmt_num(lv["i2"], 1) + "%" if lv["i2"] is not None else "—"
                   for lv in levels],
            "Note": [("single study: exact CI, not pooled" if lv["interval"] == "exact"
                      else "pooled") + ("" if lv["in_test"] or test is None
                                        else "; not in the test") for lv in levels],
            "Studies": [lv["studies"] for lv in levels],
        })
        text = heading + describe_subgroup_test(test, column, levels)
        out.append(SubgroupSection(column, text, frame, test, levels))
    return out


def describe_subgroup_test(test: SubgroupResult | None, by: str,
                           levels: list[dict[str, Any]]) -> str:
    """The test between subgroups in words: what it compares and its result, or why there
    is none (fewer than two subgroups with two or more studies)."""
    from evidence.book.names import STUDY_COLUMN_NAMES, level_name

    what = escape_markdown(STUDY_COLUMN_NAMES.get(by, by.replace("_", " ")))
    single = [escape_markdown(level_name("", lv["group"])) for lv in levels if lv["k"] == 1]
    single_text = ""
    if single:
        one = len(single) == 1
        single_text = (f" The subgroup{'' if one else 's'} {join_names(single)} "
                       f"{'has a single study' if one else 'have a single study each'}, shown "
                       "with its exact 95% CI.")
    if test is None:
        multi = [lv for lv in levels if lv["k"] >= MIN_STUDIES_TESTED]
        return (f"{'No' if not multi else 'Only one'} subgroup by {what} has two or more "
                "studies, so there is no test between subgroups." + single_text)
    compared = [f"{escape_markdown(level_name('', lv['group']))} (k = {lv['k']})"
                for lv in levels if lv["in_test"]]
    text = (f"The test for differences between subgroups by {what} compares "
            f"{join_names(compared)}: Q = {fmt_num(test.q_between, 2)} on "
            f"{test.q_between_df} df, {fmt_p(test.q_between_pvalue)} "
            f"({METHOD_NAMES[test.method]} within subgroups, logit scale). "
            + subgroup_verdict(test.q_between_pvalue))
    if single:
        text += single_text[:-1] + ", and not part of the test."
    return text


def describe_subgroup_sections(sections: list[SubgroupSection]) -> str:
    """The sentence that introduces the subgroup analyses of a page (or says there are
    none); the sections follow it."""
    from evidence.book.names import STUDY_COLUMN_NAMES

    if not sections:
        return "No subgroup analysis for this outcome."
    names = [escape_markdown(STUDY_COLUMN_NAMES.get(s.column, s.column.replace("_", " ")))
             for s in sections]
    tested = sum(1 for s in sections if s.test is not None)
    text = (f"Subgroups by {join_names(names)}: within each subgroup of two or more studies "
            "the studies are pooled with the inverse-variance random-effects model (REML, "
            "normal interval, logit scale); a subgroup of one study shows that study's "
            "proportion with its exact interval. The Q-between test asks whether the "
            "subgroups of two or more studies differ more than chance allows; it needs at "
            "least two of them.")
    if tested:
        text += (" With this few studies the tests have little power, and the subgroup "
                 "variables are entangled (studies with one assay tend to share a cut-off "
                 "and a setting), so a difference is a lead to examine, not a finding.")
    return text


def subgroups_json(sections: list[SubgroupSection]) -> dict[str, Any]:
    """Result-file form of :func:`subgroup_sections`: per column its levels (group, k,
    estimate and CI on the proportion scale, whether pooled or exact, whether in the
    test, studies) and the Q-between test (None when there was no test), or None when
    there was nothing to compare."""
    out: dict[str, Any] = {}
    for s in sections:
        if s.frame is None:
            out[s.column] = None
            continue
        out[s.column] = {
            "levels": s.levels,
            "q_between": s.test.q_between if s.test is not None else None,
            "q_between_df": s.test.q_between_df if s.test is not None else None,
            "q_between_pvalue": s.test.q_between_pvalue if s.test is not None else None,
            "compared": [lv["group"] for lv in s.levels if lv["in_test"]]}
    return out


def subgroup_verdict(p_value: float, alpha: float = 0.05) -> str:
    """What a test for subgroup differences shows, chosen from its p-value.

    Parameters
    ----------
    p_value : float
        The Q-between p-value (NaN when it cannot be computed).
    alpha : float, default 0.05
        The level below which the subgroups are said to differ.

    Returns
    -------
    str
        One sentence: the subgroups differ more than chance explains (``p < alpha``),
        the test does not show a difference, or it cannot be computed.
    """
    if p_value is None or not math.isfinite(float(p_value)):
        return "The test cannot be computed, so it says nothing about a difference."
    if float(p_value) < alpha:
        return "The subgroups differ by more than chance alone would explain."
    return ("The test does not show that the subgroups differ: the data are compatible with "
            "the same proportion in every subgroup.")
