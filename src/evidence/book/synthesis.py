"""Cross-analysis synthesis for the book: patient flow, feasibility, the summary of
findings, robustness across estimators, and within-study subgroup comparisons.

Pure functions over registry tables (pandas DataFrames) and result dictionaries
(the ``results/<id>.json`` objects); the chapters' templates call them in one line.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.report import escape_markdown, fmt_ci, fmt_num, fmt_p, fmt_pct

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLOW_STAGES",
    "certainty_notes",
    "compare_within_study",
    "describe_feasibility",
    "describe_within_study",
    "feasibility",
    "flow_display",
    "flow_for_figure",
    "flow_table",
    "methods_table",
    "nns_claim",
    "nns_display",
    "nns_per_trial",
    "robustness_panel",
    "robustness_summary",
    "sof_rows",
    "sof_table",
]

#: Stages of the patient flow, in order, with the registry outcome (and which count)
#: that supplies each.
FLOW_STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("screened", (("her2_ctc_screening_yield", "total"), ("ctc_detection", "total"))),
    ("with_ctcs", (("ctc_detection", "events"),)),
    ("her2_positive_ctcs", (("her2_ctc_screening_yield", "events"),)),
    ("treated", (("treated_among_eligible", "events"), ("randomized_among_eligible", "events"))),
    ("evaluable", (("objective_response", "total"),)),
)
_FLOW_OUTCOMES = ("her2_ctc_screening_yield", "treated_among_eligible",
                  "randomized_among_eligible")


def flow_table(outcomes: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Patients at each stage of every interventional trial, from the registry.

    Parameters
    ----------
    outcomes : DataFrame
        Primary whole-population rows of ``outcomes.csv`` (columns study_id, arm,
        arm_role, outcome, subgroup, events, total).
    studies : DataFrame
        ``studies.csv``.

    Returns
    -------
    DataFrame
        One row per trial (a study with a screening or treatment-allocation
        count), sorted by year: ``study_id, label, year`` and the
        :data:`FLOW_STAGES` columns (nullable integers; missing = not reported).
        ``evaluable`` counts the experimental arm's patients analysed for response.
    """
    import pandas as pd

    rows = outcomes[outcomes["subgroup"].fillna("") == ""]
    trials = sorted(set(rows.loc[rows["outcome"].isin(_FLOW_OUTCOMES), "study_id"]))
    # rows by study and outcome, in file order, indexed in one pass (a boolean mask per
    # study made this O(k^2) on a large registry)
    by_study: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rec in rows.to_dict("records"):
        by_study.setdefault(rec["study_id"], {}).setdefault(rec["outcome"], []).append(rec)
    out = []
    for sid in trials:
        mine = by_study.get(sid, {})
        record: dict[str, Any] = {"study_id": sid}
        for stage, sources in FLOW_STAGES:
            value = None
            for outcome, field in sources:
                hit = mine.get(outcome, [])
                if outcome == "objective_response":
                    hit = [r for r in hit if r.get("arm_role") != "control"]
                if hit:
                    value = int(hit[0][field])
                    break
            record[stage] = value
        out.append(record)
    frame = pd.DataFrame(out, columns=["study_id", *[s for s, _ in FLOW_STAGES]])
    frame = frame.merge(studies[["study_id", "label", "year"]], on="study_id", how="left")
    for stage, _ in FLOW_STAGES:
        frame[stage] = frame[stage].astype("Int64")
    cols = ["study_id", "label", "year", *[s for s, _ in FLOW_STAGES]]
    return frame[cols].sort_values(["year", "label"]).reset_index(drop=True)


FLOW_NAMES = {"label": "Trial", "year": "Year", "screened": "Screened",
              "with_ctcs": "With CTCs", "her2_positive_ctcs": "With HER2+ CTCs",
              "treated": "Treated or randomised", "evaluable": "Analysed for response"}


def flow_display(flow: pd.DataFrame) -> pd.DataFrame:
    """:func:`flow_table` with reader-facing column names (no study ids)."""
    return flow.drop(columns=["study_id"]).rename(columns=FLOW_NAMES)


def flow_for_figure(flow: pd.DataFrame, max_trials: int) -> tuple[pd.DataFrame, str]:
    """The trials a flow figure can show legibly, and a sentence saying which.

    With more than ``max_trials`` trials, the ``max_trials`` largest by patients
    screened are kept (in the table's order); the table still lists every trial.
    """
    if max_trials < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials}")
    n = len(flow)
    if n <= max_trials:
        return flow, f"all {n} trials"
    screened = flow["screened"].astype("Float64").fillna(-1)
    keep = screened.sort_values(ascending=False, kind="stable").index[:max_trials]
    return (flow.loc[sorted(keep)],
            f"the {max_trials} largest of the {n} trials by patients screened (the table "
            "lists all)")


def nns_per_trial(table: pd.DataFrame) -> pd.DataFrame:
    """Patients screened per patient with HER2-positive CTCs, trial by trial.

    ``table`` holds screening-yield rows (``label, events, total``); returns
    ``label, screened, her2_positive, nns`` with ``nns = total / events`` (infinite
    with no HER2-positive patient).
    """
    import pandas as pd

    events = table["events"].astype(float).to_numpy()
    total = table["total"].astype(float).to_numpy()
    with np.errstate(divide="ignore"):
        nns = np.where(events > 0, total / np.where(events > 0, events, 1.0), np.inf)
    return pd.DataFrame({"label": table["label"].to_numpy(), "screened": table["total"].to_numpy(),
                         "her2_positive": table["events"].to_numpy(), "nns": nns})


def nns_display(trials: pd.DataFrame) -> pd.DataFrame:
    """:func:`nns_per_trial` for readers: named columns, one decimal."""
    import pandas as pd

    return pd.DataFrame({
        "Trial": trials["label"].to_numpy(),
        "Screened": trials["screened"].to_numpy(),
        "With HER2+ CTCs": trials["her2_positive"].to_numpy(),
        "Screened per eligible patient": [fmt_num(v, 1) for v in trials["nns"]],
    })


def nns_claim(nns: Any, claimed_median: float, claimed_low: float, claimed_high: float,
              *, tolerance: float = 1.0) -> dict[str, Any]:
    """Check a published "median number needed to screen ≈ m (a to b)" claim.

    The claim holds when the median of the trials' numbers needed to screen is
    within ``tolerance`` patients of ``claimed_median`` and the range, rounded to
    whole patients, is ``claimed_low`` to ``claimed_high``.

    Returns
    -------
    dict
        ``median, low, high, median_holds, range_holds, holds`` and ``text`` (a
        sentence saying whether the claim holds and why).
    """
    values = np.asarray(nns, dtype=float)
    if values.size == 0:
        raise ValueError("no trials to check the claim against")
    median = float(np.median(values))
    low, high = float(values.min()), float(values.max())
    median_holds = abs(median - claimed_median) <= tolerance
    range_holds = round(low) == round(claimed_low) and round(high) == round(claimed_high)
    holds = median_holds and range_holds
    text = (f"Across the {values.size} trials the median number needed to screen is "
            f"{fmt_num(median, 1)} (range {fmt_num(low, 1)} to {fmt_num(high, 1)}); the claim "
            f"of about {fmt_num(claimed_median, 0)} ({fmt_num(claimed_low, 0)} to "
            f"{fmt_num(claimed_high, 0)}) ")
    if holds:
        text += "holds."
    elif range_holds:
        text += (f"holds for the range but not for the median, which is "
                 f"{fmt_num(abs(median - claimed_median), 1)} patients away from it.")
    elif median_holds:
        text += "holds for the median but not for the range."
    else:
        text += "does not hold: neither the median nor the range matches."
    return {"median": median, "low": low, "high": high, "median_holds": median_holds,
            "range_holds": range_holds, "holds": holds, "text": text}


def feasibility(pooled_yield: dict[str, Any], p0: float, p1: float, alpha: float,
                beta: float) -> dict[str, Any]:
    """A'Hern single-stage design and the patients to screen for it.

    Parameters
    ----------
    pooled_yield : dict
        The ``pooled`` block of the screening-yield result (proportion scale).
    p0, p1, alpha, beta : float
        Uninteresting and target response rates, type I and II error rates.

    Returns
    -------
    dict
        ``design`` (n, r, actual alpha and power), ``nns`` (number needed to
        screen for one eligible patient) and ``to_screen`` (for the design's n),
        each with the interval implied by the yield's 95% CI.
    """
    from evidence.stats.design import ahern, number_needed_to_screen, patients_to_screen

    design = ahern(p0, p1, alpha=alpha, beta=beta)
    y, lo, hi = pooled_yield["estimate"], pooled_yield["ci_lower"], pooled_yield["ci_upper"]
    return {"design": design.to_dict(),
            "nns": number_needed_to_screen(y, lo, hi).to_dict(),
            "to_screen": patients_to_screen(design.n, y, lo, hi).to_dict(),
            "p0": p0, "p1": p1, "alpha": alpha, "beta": beta}


def describe_feasibility(f: dict[str, Any]) -> str:
    """The feasibility calculation in words."""
    d, nns, scr = f["design"], f["nns"], f["to_screen"]

    def whole(x: Any) -> str:
        return "an unbounded number of" if x is None or x == math.inf else f"{int(x)}"

    return (f"An exact single-stage phase II design (A'Hern) that rejects a response rate "
            f"of {fmt_pct(f['p0'], 0)} in favour of {fmt_pct(f['p1'], 0)} with a one-sided "
            f"α of {fmt_num(f['alpha'], 2)} and power {fmt_pct(1 - f['beta'], 0)} needs "
            f"n = {d['n']} treated patients, of whom at least r = {d['r']} must respond "
            f"(actual α {fmt_num(d['alpha'], 3)}, power {fmt_pct(d['power'], 1)}). At the "
            f"pooled screening yield, one eligible patient is found per "
            f"{fmt_num(nns['estimate'], 1)} screened (95% CI {fmt_num(nns['ci_lower'], 1)} to "
            f"{fmt_num(nns['ci_upper'], 1)}), so enrolling {d['n']} patients means screening "
            f"about {whole(scr['estimate_ceil'])} patients (95% CI "
            f"{whole(scr['ci_lower_ceil'])} to {whole(scr['ci_upper_ceil'])}), before any "
            f"loss between eligibility and treatment.")


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
        if r.get("pi_lower") is None or r.get("k", 0) < 2:
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
    """The estimator panel (every measure × method) for every pooled proportion.

    Parameters
    ----------
    results : dict
        Result JSONs by analysis id; those with ``k >= 2`` and per-study counts are used.
    titles : dict
        Display title of each analysis id.
    """
    import pandas as pd

    from evidence.stats.sensitivity import estimator_panel

    frames = []
    for aid, res in results.items():
        studies = res.get("studies") or []
        if res.get("k", 0) < 2 or not studies or "events" not in studies[0]:
            continue
        panel = estimator_panel([s["events"] for s in studies], [s["total"] for s in studies],
                                study_ids=[s["study_id"] for s in studies])
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
    import pandas as pd

    from evidence.stats.distributions import chisq_test, fisher_exact
    from evidence.stats.effects import proportion_ci

    rows = table[table["subgroup"].fillna("").str.startswith(f"{key}=")]
    if len(rows) < 2:
        raise ValueError(f"subgroup key {key!r} has fewer than two levels in this table")
    if rows["study_id"].nunique() != 1:
        raise ValueError("compare_within_study needs the rows of a single study")
    events = rows["events"].astype(int).to_numpy()
    total = rows["total"].astype(int).to_numpy()
    lo, hi = proportion_ci(events, total)
    frame = pd.DataFrame({
        "level": [s.split("=", 1)[1] for s in rows["subgroup"]],
        "events": events, "total": total, "proportion": events / total,
        "ci_lower": lo, "ci_upper": hi,
    })
    counts = np.column_stack([events, total - events])
    if len(rows) == 2:
        p = fisher_exact(*(int(v) for v in counts.ravel()))
        test = "Fisher's exact test"
    else:
        p = chisq_test(counts)[1]
        test = "Pearson's χ² test"
    return frame, {"key": key, "test": test, "p_value": p}


def describe_within_study(frame: pd.DataFrame, test: dict[str, Any], what: str) -> str:
    """One sentence comparing subgroup levels within a study."""
    parts = [f"{escape_markdown(r.level.replace('_', ' '))}: {int(r.events)}/{int(r.total)} "
             f"({fmt_pct(r.proportion)}, 95% CI {fmt_ci(r.ci_lower, r.ci_upper)})"
             for r in frame.itertuples()]
    return (f"By {escape_markdown(test['key'].replace('_', ' '))}, {what}: {'; '.join(parts)} "
            f"({test['test']}, {fmt_p(test['p_value'])}).")


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

    from evidence.book.report import MEASURE_NAMES, METHOD_NAMES

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
            "Hartung–Knapp": {True: "yes", False: "no"}.get(res.get("knha"), ""),
            "Per-study CI": {"clopper-pearson": "exact (Clopper–Pearson)",
                             "wilson": "Wilson"}.get(res.get("ci_method", ""), ""),
            "k": res.get("k", ""),
            "Library": res.get("evidence_version", ""),
        })
    return pd.DataFrame(rows)
