"""Subgroups within one study: a proportion compared between the levels of a subgroup.

The registry holds some outcomes by subgroup (``subgroup = key=level``) for one study only
(Zhang 2016 by time since biopsy, Shi 2023 by hormone receptor, ...).  Such levels are
compared within the study, never pooled: :func:`compare_subgroups` tabulates every key's
levels with exact CIs and one test per key (:func:`evidence.stats.subgroups.compare_levels`:
Fisher's exact test for two levels, Pearson's chi-square test for more); the display and
prose functions read that table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.names import SUBGROUP_NAMES, level_name, name
from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_p, fmt_pct
from evidence.registry import parse_subgroup
from evidence.stats.checks import check_level
from evidence.stats.subgroups import compare_levels

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "compare_subgroups",
    "compare_within_study",
    "comparisons_markdown",
    "describe_level_comparisons",
    "describe_within_study",
    "level_table",
]


def compare_subgroups(rows: pd.DataFrame, level: float = 0.95
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare a proportion between the levels of each subgroup key of one study.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``outcomes.csv`` rows of one study and one outcome (``events``, ``total``,
        ``subgroup``, ``derived``).  The whole-population row (empty subgroup) and
        subgroups with several ``key=value`` parts are left out.
    level : float
        Confidence level.

    Returns
    -------
    (levels, tests) : (pandas.DataFrame, pandas.DataFrame)
        ``levels``: ``key``, ``level``, ``events``, ``total``, ``proportion``,
        ``ci_lower``, ``ci_upper`` (exact), ``derived`` (True when the counts were
        back-calculated), in the order of ``rows``.  ``tests``: one row per key with
        two or more levels (:func:`evidence.stats.subgroups.compare_levels`): ``key``,
        ``n_levels``, ``test`` (``"fisher"`` for two levels: two-sided Fisher's exact
        test; ``"chisq"`` for more: Pearson chi-square test of independence, no
        continuity correction), ``statistic`` (the sample odds ratio for Fisher),
        ``df``, ``p_value`` and, for two levels, the risk difference first level minus
        second with its Wald CI (``rd``, ``rd_lower``, ``rd_upper``).

    Raises
    ------
    ValueError
        Rows of several studies or outcomes, or a level given twice.
    """
    import pandas as pd

    level = check_level(level)
    if rows["study_id"].nunique() > 1 or rows["outcome"].nunique() > 1:
        raise ValueError("compare_subgroups takes the rows of one study and one outcome")
    recs = []
    for rec in rows.to_dict("records"):
        sub = parse_subgroup(rec.get("subgroup", "") or "")
        if len(sub) != 1:
            continue
        key, value = next(iter(sub.items()))
        recs.append({"key": key, "level": value, "events": int(rec["events"]),
                     "total": int(rec["total"]),
                     "derived": bool(str(rec.get("derived", "") or "").strip())})
    levels = pd.DataFrame(recs, columns=["key", "level", "events", "total", "derived"])
    if levels.duplicated(["key", "level"]).any():
        raise ValueError("a subgroup level appears twice: select use='primary' rows only")
    levels["proportion"] = levels["events"] / levels["total"]
    levels["ci_lower"] = np.nan
    levels["ci_upper"] = np.nan
    tests = []
    for key, grp in levels.groupby("key", sort=False):
        if len(grp) < 2:
            from evidence.stats.effects import proportion_ci

            lo, hi = proportion_ci(grp["events"], grp["total"], level=level)
            levels.loc[grp.index, "ci_lower"] = lo
            levels.loc[grp.index, "ci_upper"] = hi
            continue
        c = compare_levels(grp["events"], grp["total"], level=level)
        levels.loc[grp.index, "ci_lower"] = c.ci_lower
        levels.loc[grp.index, "ci_upper"] = c.ci_upper
        tests.append({"key": key, "n_levels": len(grp), "test": c.test,
                      "statistic": c.statistic, "df": c.df, "p_value": c.p_value,
                      "rd": c.rd, "rd_lower": c.rd_lower, "rd_upper": c.rd_upper})
    levels = levels[["key", "level", "events", "total", "proportion", "ci_lower",
                     "ci_upper", "derived"]]
    tests_df = pd.DataFrame(tests, columns=["key", "n_levels", "test", "statistic", "df",
                                            "p_value", "rd", "rd_lower", "rd_upper"])
    return levels.reset_index(drop=True), tests_df


_TEST_NAMES = {"fisher": "Fisher's exact test (two-sided)",
               "chisq": "Pearson chi-square test of independence"}


def level_table(levels: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`compare_subgroups`: one row per level, the test on the
    first row of each key."""
    import pandas as pd

    by_key = {r["key"]: r for r in tests.to_dict("records")}
    out = []
    for key, grp in levels.groupby("key", sort=False):
        t = by_key.get(key)
        for n_level, r in enumerate(grp.to_dict("records")):
            comparison = ""
            if t is not None and n_level == 0:
                comparison = f"{_TEST_NAMES[t['test']]}: {fmt_p(t['p_value'])}"
                if t["test"] == "chisq":
                    comparison += f" (χ² = {fmt_num(t['statistic'], 2)}, df = {int(t['df'])})"
                else:
                    comparison += (f"; difference {fmt_num(100 * t['rd'], 1)} points "
                                   f"(95% CI {fmt_num(100 * t['rd_lower'], 1)} to "
                                   f"{fmt_num(100 * t['rd_upper'], 1)})")
            out.append({
                "Subgroup": name(key, SUBGROUP_NAMES) if n_level == 0 else "",
                "Level": level_name(key, r["level"]),
                "Changed / total": f"{r['events']} / {r['total']}"
                                   + (" (back-calculated)" if r["derived"] else ""),
                "Proportion (95% exact CI)":
                    f"{fmt_pct(r['proportion'])} ({fmt_ci(r['ci_lower'], r['ci_upper'])})",
                "Comparison": comparison,
            })
    return pd.DataFrame(out)


def describe_level_comparisons(levels: pd.DataFrame, tests: pd.DataFrame, what: str) -> str:
    """One sentence per compared subgroup key, with the test named and its p-value.

    Parameters
    ----------
    levels, tests : pandas.DataFrame
        From :func:`compare_subgroups`.
    what : str
        What the proportion is, e.g. ``"changed HER2 category"``.
    """
    by_key = {r["key"]: r for r in tests.to_dict("records")}
    sentences = []
    for key, grp in levels.groupby("key", sort=False):
        t = by_key.get(key)
        if t is None:
            continue
        items = [f"{fmt_pct(r['proportion'])} ({r['events']}/{r['total']}) for "
                 f"{level_name(key, r['level'])}" for r in grp.to_dict("records")]
        text = (f"By {name(key, SUBGROUP_NAMES).lower()}, the proportion that {what} was "
                + (" vs ".join(items) if len(items) == 2 else ", ".join(items)) + ". ")
        if t["test"] == "fisher":
            text += (f"The difference is {fmt_num(100 * t['rd'], 1)} percentage points "
                     f"(95% CI {fmt_num(100 * t['rd_lower'], 1)} to "
                     f"{fmt_num(100 * t['rd_upper'], 1)}); Fisher's exact test "
                     f"{fmt_p(t['p_value'])}")
        else:
            text += (f"Pearson chi-square test of independence: χ² = "
                     f"{fmt_num(t['statistic'], 2)} on {int(t['df'])} df, {fmt_p(t['p_value'])}")
        text += (" — the groups differ more than chance alone would readily explain."
                 if t["p_value"] < 0.05 else
                 " — no clear evidence of a difference, which with these numbers does not "
                 "show that there is none.")
        if grp["derived"].any():
            text += (" The counts are back-calculated from the percentages the source prints "
                     "(see the registry's derived column).")
        sentences.append(text)
    return "\n\n".join(sentences)


def compare_within_study(table: pd.DataFrame, key: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Compare the levels of one subgroup key within a single study.

    Parameters
    ----------
    table : DataFrame
        Outcome rows of one study with ``subgroup`` values like ``key=level``.
    key : str
        The subgroup key, e.g. ``biopsy_interval``.

    Returns
    -------
    (DataFrame, dict)
        Per level: events, total, proportion with exact 95% CI; and the test of
        difference: Fisher's exact test (two levels) or Pearson's χ² test without
        continuity correction (more levels), with its name and p-value.
    """
    rows = table[[len(s) == 1 and key in s for s in
                  (parse_subgroup(v or "") for v in table["subgroup"].fillna(""))]]
    if rows["study_id"].nunique() > 1:
        raise ValueError("compare_within_study needs the rows of a single study")
    levels, tests = compare_subgroups(rows)
    if len(levels) < 2:
        raise ValueError(f"subgroup key {key!r} has fewer than two levels in this table")
    t = tests.iloc[0]
    name_of = {"fisher": "Fisher's exact test", "chisq": "Pearson's χ² test"}
    frame = levels[["level", "events", "total", "proportion", "ci_lower", "ci_upper"]]
    return frame, {"key": key, "test": name_of[t["test"]], "p_value": float(t["p_value"])}


def describe_within_study(frame: pd.DataFrame, test: dict[str, Any], what: str) -> str:
    """One sentence comparing subgroup levels within a study."""
    parts = [f"{escape_markdown(level_name(test['key'], r.level))}: {int(r.events)}/"
             f"{int(r.total)} ({fmt_pct(r.proportion)}, 95% CI "
             f"{fmt_ci(r.ci_lower, r.ci_upper)})" for r in frame.itertuples()]
    by = escape_markdown(name(test["key"], SUBGROUP_NAMES).lower())
    return (f"By {by}, {what}: {'; '.join(parts)} ({test['test']}, "
            f"{fmt_p(test['p_value'])}).")


def comparisons_markdown(comparisons: list[tuple[pd.DataFrame, dict[str, Any]]],
                         what: str) -> str:
    """The comparisons of a page as a Markdown bullet list, one item per subgroup key
    (shown as a cell output: an inline glue would run the items into one paragraph)."""
    return "\n".join("- " + describe_within_study(f, t, what) for f, t in comparisons)
