"""Two-arm comparisons: an anti-HER2 arm against its control arm, study by study.

:func:`two_arm_pairs` pairs the ``arm_role=experimental`` and ``arm_role=control`` rows of
``outcomes.csv``; :func:`two_arm_effects` computes risk ratio, odds ratio and risk
difference (metafor's ``escalc`` with ``add=1/2, to="only0"``, Wald intervals) and Fisher's
exact test of each pair; the rest say in words and tables what each comparison shows, and
whether its arms were randomised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.names import ARM_NAMES, MEASURE_NAMES, name, outcome_short, outcome_verb
from evidence.book.studies import StudyIndex, most_telling
from evidence.book.text import (
    cap,
    count_text,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    join_names,
    md,
    p_cell,
    plural,
)
from evidence.stats.checks import check_level
from evidence.stats.effects import proportion_ci
from evidence.stats.vocabulary import TWO_GROUP_MEASURES, check_measure, check_to

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "context_table",
    "describe_two_arm",
    "describe_unreported",
    "direction_labels",
    "randomised_trials_sentence",
    "two_arm_effects",
    "two_arm_overview",
    "two_arm_pairs",
    "two_arm_table",
    "unreported_randomised",
]


def direction_labels(measure: str, outcomes: Sequence[str] = ()) -> tuple[str, str]:
    """What an effect left and right of "no difference" means, for the figure's axis.

    Every effect is the experimental arm against the control arm, so a risk ratio or
    odds ratio below 1 (a risk difference below 0) means the outcome was less frequent
    in the experimental arm.  Whether that favours the experimental arm depends on the
    outcome (more responses are better, more persistent CTCs worse), so with several
    outcomes the labels say "less/more frequent", not "favours".

    Parameters
    ----------
    measure : {"RR", "OR", "RD"}
        The measure drawn.
    outcomes : sequence of str, optional
        The outcomes drawn; with exactly one, its short name is used
        (``"Objective response less frequent in the experimental arm"``).

    Returns
    -------
    (str, str)
        The left and right labels.
    """
    check_measure(measure, TWO_GROUP_MEASURES)
    distinct = list(dict.fromkeys(str(o) for o in outcomes))
    what = cap(outcome_short(distinct[0])) if len(distinct) == 1 else "Outcome"
    return (f"{what} less frequent in the experimental arm",
            f"{what} more frequent in the experimental arm")


def two_arm_pairs(outcomes: pd.DataFrame, outcome_list: Sequence[str] | None = None
                  ) -> pd.DataFrame:
    """Pair the experimental and the control arm of each study and outcome.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        ``outcomes.csv`` rows (``study_id``, ``arm``, ``outcome``, ``subgroup``,
        ``events``, ``total``, ``arm_role``, ``quote``).
    outcome_list : sequence of str, optional
        Keep only these outcomes (None or empty: every outcome with both roles).

    Returns
    -------
    pandas.DataFrame
        One row per (study, outcome, subgroup) with both an ``experimental`` and a
        ``control`` row: ``study_id``, ``outcome``, ``subgroup``, ``arm_1``, ``ai``,
        ``n1i`` (experimental), ``arm_2``, ``ci``, ``n2i`` (control), ``quote_1``,
        ``quote_2``.  Sorted by study then outcome as they first appear.

    Raises
    ------
    ValueError
        Two rows of the same role for one (study, outcome, subgroup), or a
        requested outcome without any pair.
    """
    import pandas as pd

    cols = ["study_id", "outcome", "subgroup", "arm_1", "ai", "n1i", "arm_2", "ci", "n2i",
            "quote_1", "quote_2"]
    rows = outcomes[outcomes["arm_role"].isin(["experimental", "control"])]
    if outcome_list:
        rows = rows[rows["outcome"].isin(list(outcome_list))]
    # one pass over the rows (a boolean mask per key made this O(k^2) on large registries)
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in rows.to_dict("records"):
        key = (r["study_id"], r["outcome"], r["subgroup"])
        groups.setdefault(key, {"experimental": [], "control": []})[r["arm_role"]].append(r)
    out = []
    for (study, outcome, subgroup), roles in groups.items():
        exp, ctl = roles["experimental"], roles["control"]
        if len(exp) > 1 or len(ctl) > 1:
            raise ValueError(f"{study}, {outcome}, subgroup {subgroup!r}: more than one "
                             "experimental or control arm; cannot form one pair")
        if not exp or not ctl:
            continue
        e, c = exp[0], ctl[0]
        out.append({"study_id": study, "outcome": outcome, "subgroup": subgroup,
                    "arm_1": e["arm"], "ai": int(e["events"]), "n1i": int(e["total"]),
                    "arm_2": c["arm"], "ci": int(c["events"]), "n2i": int(c["total"]),
                    "quote_1": e.get("quote", ""), "quote_2": c.get("quote", "")})
    pairs = pd.DataFrame(out, columns=cols)
    if outcome_list:
        absent = sorted(set(outcome_list) - set(pairs["outcome"]))
        if absent:
            raise ValueError(f"no experimental/control pair for outcome(s) {absent}")
    return pairs


def two_arm_effects(pairs: pd.DataFrame, measures: Sequence[str] = TWO_GROUP_MEASURES,
                    *, add: float = 0.5, to: str = "only0",
                    level: float = 0.95) -> pd.DataFrame:
    """Risk ratio, odds ratio and risk difference of each pair, with Fisher's exact test.

    Parameters
    ----------
    pairs : pandas.DataFrame
        From :func:`two_arm_pairs`.
    measures : sequence of {"RR", "OR", "RD"}
        Effect measures.
    add, to : float, str
        Zero-cell handling (metafor's ``escalc`` defaults).
    level : float
        Confidence level of the Wald intervals.

    Returns
    -------
    pandas.DataFrame
        One row per pair and measure: ``study_id``, ``outcome``, ``subgroup``,
        ``measure``, ``ai``, ``n1i``, ``ci``, ``n2i``, ``yi``, ``vi``,
        ``estimate``, ``ci_lower``, ``ci_upper`` (ratios back-transformed with
        ``exp``; RD as is), ``corrected`` and ``fisher_pvalue`` (two-sided, R's
        ``fisher.test``).
    """
    import pandas as pd

    from evidence.stats.distributions import fisher_exact
    from evidence.stats.twoarm import effect_columns

    for m in measures:
        check_measure(m, TWO_GROUP_MEASURES)
    level = check_level(level)
    to = check_to(to)
    recs = pairs.to_dict("records")
    cells = {k: np.array([int(p[k]) for p in recs], dtype=int) for k in ("ai", "n1i", "ci", "n2i")}
    bad = ((cells["n1i"] <= 0) | (cells["n2i"] <= 0) | (cells["ai"] < 0) | (cells["ci"] < 0)
           | (cells["ai"] > cells["n1i"]) | (cells["ci"] > cells["n2i"]))
    if bad.any():
        p = recs[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"{p['study_id']}, {p['outcome']}: need 0 <= ai <= n1i, "
                         f"0 <= ci <= n2i and n1i, n2i > 0 (got {p['ai']}/{p['n1i']} vs "
                         f"{p['ci']}/{p['n2i']})")
    # the effects of all pairs at once, one call per measure (what two_arm_effect does for
    # one pair)
    by_measure = {m: effect_columns(cells["ai"], cells["n1i"], cells["ci"], cells["n2i"], m,
                                     add=add, to=to, level=level)
                  for m in (measures if recs else ())}
    fisher = [fisher_exact(a, n1 - a, c, n2 - c) for a, n1, c, n2 in
              zip(cells["ai"], cells["n1i"], cells["ci"], cells["n2i"], strict=True)]
    out = []
    for i, p in enumerate(recs):
        for m in measures:
            e = by_measure[m]
            out.append({"study_id": p["study_id"], "outcome": p["outcome"],
                        "subgroup": p["subgroup"], "measure": m, "ai": int(cells["ai"][i]),
                        "n1i": int(cells["n1i"][i]), "ci": int(cells["ci"][i]),
                        "n2i": int(cells["n2i"][i]), "yi": float(e["yi"][i]),
                        "vi": float(e["vi"][i]), "estimate": float(e["pred"][i]),
                        "ci_lower": float(e["pred_ci_lower"][i]),
                        "ci_upper": float(e["pred_ci_upper"][i]),
                        "corrected": bool(e["corrected"][i]),
                        "fisher_pvalue": fisher[i], "level": level})
    return pd.DataFrame(out, columns=["study_id", "outcome", "subgroup", "measure", "ai",
                                      "n1i", "ci", "n2i", "yi", "vi", "estimate", "ci_lower",
                                      "ci_upper", "corrected", "fisher_pvalue", "level"])


def _by_comparison(effects: pd.DataFrame
                   ) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Rows of :func:`two_arm_effects` grouped by (study, outcome, subgroup), in order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in effects.to_dict("records"):
        groups.setdefault((r["study_id"], r["outcome"], r["subgroup"]), []).append(r)
    return groups


def _fmt_effect(measure: str, est: float, lo: float, hi: float) -> str:
    if measure == "RD":
        return (f"{fmt_num(100 * est, 1)} points ({fmt_num(100 * lo, 1)} to "
                f"{fmt_num(100 * hi, 1)})")
    return f"{fmt_num(est, 2)} ({fmt_ci(lo, hi, pct=False, digits=2)})"


def two_arm_table(effects: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Display table: one row per comparison with both arms' counts, each measure with its
    95% CI (RD in percentage points) and Fisher's exact p."""
    import pandas as pd

    study = StudyIndex(studies)
    out = []
    for (study_id, outcome, subgroup), grp in _by_comparison(effects).items():
        first = grp[0]
        s = study(study_id)
        rec = {"Study": s["label"] + ("" if s.get("randomized") == "yes"
                                      else " (not randomised)"),
               "Outcome": outcome_short(outcome) + (f" [{subgroup}]" if subgroup else ""),
               "Experimental": f"{first['ai']}/{first['n1i']} "
                               f"({fmt_pct(first['ai'] / first['n1i'])})",
               "Control": f"{first['ci']}/{first['n2i']} "
                          f"({fmt_pct(first['ci'] / first['n2i'])})"}
        for r in grp:
            if r["measure"] == "RD":
                rec["RD, points [95% CI]"] = (
                    f"{fmt_num(100 * r['estimate'], 1)} [{fmt_num(100 * r['ci_lower'], 1)}, "
                    f"{fmt_num(100 * r['ci_upper'], 1)}]")
            else:
                rec[f"{r['measure']} [95% CI]"] = (
                    f"{fmt_num(r['estimate'], 2)} [{fmt_num(r['ci_lower'], 2)}, "
                    f"{fmt_num(r['ci_upper'], 2)}]")
        rec["Fisher p"] = p_cell(first["fisher_pvalue"])
        out.append(rec)
    return pd.DataFrame(out)


def describe_two_arm(pairs: pd.DataFrame, effects: pd.DataFrame,
                     studies: pd.DataFrame, *, max_studies: int | None = None) -> str:
    """One paragraph per study (Markdown, blank lines between studies).

    Each paragraph names the study, its design and intervention, says whether the
    arms were randomised, gives both arms' counts for each outcome with every
    measure and its 95% CI and Fisher's exact p, and reads the intervals in plain
    words.  A non-randomised comparison is said to describe the groups, not the
    effect of the treatment.

    Parameters
    ----------
    pairs, effects : pandas.DataFrame
        From :func:`two_arm_pairs` and :func:`two_arm_effects`.
    studies : pandas.DataFrame
        ``studies.csv`` rows.
    max_studies : int, optional
        Describe at most this many studies: the randomised ones first, then those
        with the most patients, kept in the table's order; a first sentence says how
        many are described and that the table lists every comparison.  None: all.
    """
    if max_studies is not None and max_studies < 1:
        raise ValueError(f"max_studies must be >= 1, got {max_studies}")
    study = StudyIndex(studies)
    paras = []
    effects_by = _by_comparison(effects)
    pairs_by: dict[str, list[dict[str, Any]]] = {}
    for p in pairs.to_dict("records"):
        pairs_by.setdefault(p["study_id"], []).append(p)
    if max_studies is not None and len(pairs_by) > max_studies:
        ids = list(pairs_by)
        keep = {ids[i] for i in most_telling(
            [study(sid).get("randomized") == "yes" for sid in ids],
            [max(p["n1i"] + p["n2i"] for p in pairs_by[sid]) for sid in ids], max_studies)}
        paras.append(f"Of the {len(pairs_by):,} studies with a two-arm comparison, "
                     f"{max_studies:,} {'is' if max_studies == 1 else 'are'} described "
                     "here (randomised first, then those with the most patients); the table "
                     "below lists every comparison.")
        pairs_by = {sid: sp for sid, sp in pairs_by.items() if sid in keep}
    for study_id, sp in pairs_by.items():
        s = study(study_id)
        first = sp[0]
        arm1, arm2 = name(first["arm_1"], ARM_NAMES), name(first["arm_2"], ARM_NAMES)
        randomised = s.get("randomized") == "yes"
        text = (f"**{md(s['label'])}** — design: {md(s.get('design', ''))}; intervention: "
                f"{md(s.get('intervention', ''))}. "
                + ("Patients were randomised between the arms." if randomised else
                   f"The {arm2} group was not formed by randomisation, so it may differ from "
                   f"the {arm1} group in prognosis as well as in treatment: the comparison "
                   "describes the two groups; it does not estimate the effect of the "
                   "treatment.")) + "\n\n"
        includes_null, excludes_null = [], []
        for p in sp:
            eff = effects_by.get((study_id, p["outcome"], p["subgroup"]), [])
            by_m = {r["measure"]: r for r in eff}
            a1, a2 = name(p["arm_1"], ARM_NAMES), name(p["arm_2"], ARM_NAMES)
            short = outcome_short(p["outcome"])
            text += (f"- *{cap(short)}*: in the {a1} arm "
                     f"{count_text(p['ai'], p['n1i'])} {outcome_verb(p['outcome'])}, in the "
                     f"{a2} arm {count_text(p['ci'], p['n2i'])}")
            effs = [f"{MEASURE_NAMES[m]} "
                    f"{_fmt_effect(m, r['estimate'], r['ci_lower'], r['ci_upper'])}"
                    for m, r in by_m.items()]
            text += (": " + ", ".join(effs)) if effs else ""
            any_r = next(iter(by_m.values()), None)
            if any_r is not None:
                text += f"; Fisher's exact test {fmt_p(any_r['fisher_pvalue'])}"
            text += ".\n"
            ratio = by_m.get("RR") or by_m.get("OR")
            if ratio is not None:
                (includes_null if ratio["ci_lower"] <= 1.0 <= ratio["ci_upper"]
                 else excludes_null).append((short, MEASURE_NAMES[ratio["measure"]]))
        closing = []
        if includes_null:
            names = ", ".join(o for o, _ in includes_null)
            closing.append(f"The 95% confidence interval of the {includes_null[0][1]} "
                           f"includes 1 (no difference) for {names}; with so few patients the "
                           "intervals are wide, compatible with a lower as well as a higher "
                           f"proportion in the {arm1} arm.")
        if excludes_null:
            names = ", ".join(o for o, _ in excludes_null)
            closing.append(f"The 95% confidence interval of the {excludes_null[0][1]} excludes "
                           f"1 (no difference) for {names}.")
        if closing:
            text += "\n" + " ".join(closing)
        paras.append(text.strip())
    return "\n\n".join(paras)


#: Up to this many studies are named in a sentence; more are only counted.
_MAX_NAMED = 10


def two_arm_overview(pairs: pd.DataFrame, studies: pd.DataFrame,
                     unreported: pd.DataFrame) -> str:
    """One or two sentences: how many two-arm comparisons, from which studies, how many
    randomised, and how many randomised trials lack arm-level counts."""
    study = StudyIndex(studies)
    ids = list(dict.fromkeys(pairs["study_id"]))
    labels = [md(study(s)["label"]) for s in ids]
    rand = [s for s in ids if study(s).get("randomized") == "yes"]
    named = f" ({', '.join(labels)})" if len(labels) <= _MAX_NAMED else ""
    randomised = (("it was randomised" if rand else "it was not randomised") if len(ids) == 1
                  else f"{len(rand):,} of them {'was' if len(rand) == 1 else 'were'} randomised")
    text = (f"The registry holds {plural(len(pairs), 'comparison', 'comparisons')} of an "
            f"experimental (anti-HER2) arm with a control arm, from "
            f"{plural(len(ids), 'study', 'studies')}{named}; {randomised}. Each comparison "
            "is shown on its own: the studies ask different questions (different settings, "
            "agents and outcomes), so nothing is pooled.")
    if not unreported.empty:
        n = len(unreported)
        names = (f" ({', '.join(md(v) for v in unreported['label'])})" if n <= _MAX_NAMED
                 else "")
        trials = plural(n, "further randomised trial reports",
                         "further randomised trials report")
        text += f" {trials} no counts per arm{names}."
    return text


def unreported_randomised(studies: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Randomised studies of the registry without any experimental/control pair.

    Returns
    -------
    pandas.DataFrame
        ``study_id``, ``label``, ``design``, ``intervention``, ``notes`` of each study
        with ``randomized == "yes"`` whose arms have no counts in ``pairs``.
    """
    rand = studies[studies["randomized"] == "yes"]
    rand = rand[~rand["study_id"].isin(set(pairs["study_id"]))]
    return rand[["study_id", "label", "design", "intervention", "notes"]].reset_index(
        drop=True)


def describe_unreported(unreported: pd.DataFrame) -> str:
    """What the registry holds, and lacks, for randomised trials without arm counts."""
    if unreported.empty:
        return "Every randomised trial in the registry has arm-level counts."
    paras = []
    for r in unreported.to_dict("records"):
        paras.append(
            f"**{md(r['label'])}** — design: {md(r['design'])}; intervention: "
            f"{md(r['intervention'])}. "
            "It is randomised, but the registry holds no counts for its arms, so no risk "
            "ratio, odds ratio or risk "
            "difference can be computed and the trial does not enter any analysis. What the "
            f"registry records about it: {md(r['notes'])}")
    return "\n\n".join(paras)


def context_table(outcomes: pd.DataFrame, study_ids: Iterable[str], studies: pd.DataFrame,
                  level: float = 0.95) -> pd.DataFrame:
    """Whole-study counts (``arm == "all"``) of the given studies: screening and attrition.

    Returns
    -------
    pandas.DataFrame
        Display table: ``Study``, ``Outcome``, ``n / N``, ``Proportion (95% exact CI)``.
    """
    import pandas as pd

    ids = list(dict.fromkeys(study_ids))
    rows = outcomes[(outcomes["arm"] == "all") & outcomes["study_id"].isin(ids)
                    & (outcomes["subgroup"] == "")]
    rows = rows.assign(_order=rows["study_id"].map({s: i for i, s in enumerate(ids)}))
    rows = rows.sort_values("_order", kind="stable")
    if rows.empty:
        return pd.DataFrame(columns=["Study", "Outcome", "n / N", "Proportion (95% exact CI)"])
    lo, hi = proportion_ci(rows["events"], rows["total"], level=level)
    study = StudyIndex(studies)
    out = []
    for (r, a, b) in zip(rows.to_dict("records"), lo, hi, strict=True):
        out.append({"Study": study(r["study_id"])["label"],
                    "Outcome": cap(outcome_short(r["outcome"])),
                    "n / N": f"{r['events']} / {r['total']}",
                    "Proportion (95% exact CI)":
                        f"{fmt_pct(r['events'] / r['total'])} ({fmt_ci(a, b)})"})
    return pd.DataFrame(out)


def randomised_trials_sentence(studies: pd.DataFrame, pairs: pd.DataFrame) -> str:
    """Which randomised trials of the registry test the HER2-CTC hypothesis (plain text).

    A trial is one ``cohort`` (a study's own id when empty; two reports of DETECT III are
    one trial), named by its latest report. It selected patients by HER2-positive CTCs
    when a report's ``her2_cutoff_group`` is a CTC criterion (not ``not_applicable``);
    whether its arms have counts comes from ``pairs``.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``studies.csv`` rows (at least every randomised study).
    pairs : pandas.DataFrame
        From :func:`two_arm_pairs` (``study_id``).

    Returns
    -------
    str
        One or two sentences, plain text (glue it with :class:`evidence.book.text.Plain`).
    """
    rand = studies[studies["randomized"] == "yes"]
    if rand.empty:
        return "No randomised trial is in the registry."
    with_counts = set(pairs["study_id"]) if "study_id" in pairs else set()
    trials: dict[str, list[dict[str, Any]]] = {}
    for r in rand.to_dict("records"):
        trials.setdefault(str(r.get("cohort") or "") or str(r["study_id"]), []).append(r)
    selected, other = [], []
    for reports in trials.values():
        latest = max(reports, key=lambda r: (int(r.get("year") or 0), str(r["label"])))
        by_her2 = any(str(r.get("her2_cutoff_group") or "") not in ("", "not_applicable")
                      for r in reports)
        counted = any(r["study_id"] in with_counts for r in reports)
        (selected if by_her2 else other).append((str(latest["label"]), counted))
    n = len(trials)
    text = f"Of the {plural(n, 'randomised trial', 'randomised trials')} in the registry, "
    if not selected:
        text += "none selected patients by HER2-positive CTCs."
    else:
        names = join_names([label for label, _ in selected])
        uncounted = [label for label, counted in selected if not counted]
        text += (f"{len(selected)} selected patients by HER2-positive CTCs ({names})")
        if len(uncounted) == len(selected):
            text += (", but the registry holds no results per arm for "
                     + ("it" if len(selected) == 1 else "them") + ".")
        elif uncounted:
            text += f"; the registry holds no results per arm for {join_names(uncounted)}."
        else:
            text += "."
    if other:
        names = join_names([label for label, _ in other])
        text += (f" {'The other' if selected else 'The'} "
                 f"{plural(len(other), 'trial', 'trials')} ({names}) "
                 f"selected patients by CTCs without HER2 on the CTCs as a criterion, so "
                 f"{'it does' if len(other) == 1 else 'they do'} not test whether "
                 "HER2-positive CTCs identify patients who benefit.")
    return text
