"""The flow of patients through the HER2-CTC trials: screened, with CTCs, with HER2-positive
CTCs, randomised, treated, in the response analysis; a table, the data of the flow diagram,
and the trials the registry gives no flow counts for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLOW_NAMES",
    "FLOW_STAGES",
    "STAGE_LABELS",
    "describe_absent",
    "flow_display",
    "flow_for_figure",
    "flow_not_applicable",
    "flow_table",
    "trials_without_flow",
]

#: Stages of the patient flow, in order, with the registry outcome (and which count)
#: that supplies each.
FLOW_STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("screened", (("her2_ctc_screening_yield", "total"), ("ctc_detection", "total"))),
    ("with_ctcs", (("ctc_detection", "events"),)),
    ("her2_positive_ctcs", (("her2_ctc_screening_yield", "events"),)),
    ("randomised", (("randomized_among_eligible", "events"),)),
    ("treated", (("treated_among_eligible", "events"),)),
    ("response_denominator", (("objective_response", "total"),)),
)
#: Box labels of the flow diagram.  The response denominator counts every treated patient,
#: evaluable or not (intention to treat, ``data/README.md``): it is not an evaluable count.
STAGE_LABELS = {"screened": "Screened", "with_ctcs": "With CTCs",
                "her2_positive_ctcs": "With HER2+ CTCs", "randomised": "Randomised",
                "treated": "Treated (anti-HER2)",
                "response_denominator": "In response analysis (all treated)"}
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
        ``randomised`` and ``treated`` are kept apart (a randomised trial's count is of
        patients randomised to either arm); ``response_denominator`` is the experimental
        arm's response denominator, every treated patient including the non-evaluable.
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
              "randomised": "Randomised", "treated": "Treated (anti-HER2)",
              "response_denominator": "In response analysis (all treated)"}


def flow_display(flow: pd.DataFrame,
                 not_applicable: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """:func:`flow_table` with reader-facing column names (no study ids).

    Parameters
    ----------
    flow : pandas.DataFrame
        From :func:`flow_table`.
    not_applicable : dict, optional
        From :func:`flow_not_applicable`: those empty cells read "n.a." (not
        applicable), every other empty cell "n.r." (not reported).
    """
    na = not_applicable or {}
    out = flow.drop(columns=["study_id"]).copy()
    for stage, _ in FLOW_STAGES:
        out[stage] = [
            f"{int(v):,}" if not _missing(v) else ("n.a." if (str(lab), stage) in na
                                                   else "n.r.")
            for lab, v in zip(flow["label"], flow[stage], strict=True)]
    return out.rename(columns=FLOW_NAMES)


def flow_for_figure(flow: pd.DataFrame, max_trials: int) -> tuple[pd.DataFrame, str]:
    """The trials a flow figure can show legibly, and a sentence saying which.

    With more than ``max_trials`` trials, the ``max_trials`` largest by patients
    screened are kept (in the table's order); the table still lists every trial.
    """
    if max_trials < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials}")
    n = len(flow)
    if n <= max_trials:
        return flow, f"all {n} studies with flow counts"
    screened = flow["screened"].astype("Float64").fillna(-1)
    keep = screened.sort_values(ascending=False, kind="stable").index[:max_trials]
    return (flow.loc[sorted(keep)],
            f"the {max_trials} largest of the {n} studies with flow counts, by patients "
            "screened (the table lists all)")


def flow_not_applicable(flow: pd.DataFrame, studies: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Boxes of the flow diagram that have no count because the stage does not apply.

    A study that was not randomised has no ``randomised`` stage; a study whose
    ``her2_cutoff_group`` is ``not_applicable`` did not select by HER2 on the CTCs, so
    its ``her2_positive_ctcs`` stage is not a criterion.  Every other empty box is
    "not reported".

    Returns
    -------
    dict
        ``(label, stage) -> text`` for the boxes of :func:`flow_table` without a count
        that do not apply.
    """
    info = studies.set_index("study_id")
    out: dict[tuple[str, str], str] = {}
    for r in flow.to_dict("records"):
        s = info.loc[r["study_id"]] if r["study_id"] in info.index else {}
        label = str(r["label"])
        if _missing(r.get("randomised")) and s.get("randomized", "") != "yes":
            out[(label, "randomised")] = "not randomised"
        if _missing(r.get("her2_positive_ctcs")) and \
                s.get("her2_cutoff_group", "") == "not_applicable":
            out[(label, "her2_positive_ctcs")] = "not a criterion"
    return out


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def trials_without_flow(outcomes: pd.DataFrame, studies: pd.DataFrame,
                        flow: pd.DataFrame) -> list[dict[str, Any]]:
    """Interventional trials of the registry that the flow does not show, and why.

    A trial is a study with an ``arm_role=experimental`` row in ``outcomes`` or
    ``randomized == "yes"``, grouped by ``cohort`` (two reports of one trial are one
    trial).  A trial is absent when none of its reports is in ``flow``.

    Returns
    -------
    list of dict
        ``labels`` (its reports), ``randomised`` and ``counted_under`` (labels of studies
        of the same cohort that are in the flow, e.g. a joint screening cohort), in
        registry order.
    """
    roles = outcomes.get("arm_role")
    treated_ids = set(outcomes.loc[roles == "experimental", "study_id"]) \
        if roles is not None else set()
    shown = set(flow["study_id"])
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in studies.to_dict("records"):
        groups.setdefault(str(r.get("cohort") or "") or str(r["study_id"]), []).append(r)
    out = []
    for reports in groups.values():
        trial = [r for r in reports if r["study_id"] in treated_ids
                 or r.get("randomized") == "yes"]
        if not trial or any(r["study_id"] in shown for r in trial):
            continue
        under = [str(r["label"]) for r in reports if r["study_id"] in shown]
        out.append({"labels": [str(r["label"]) for r in trial],
                    "randomised": any(r.get("randomized") == "yes" for r in trial),
                    "counted_under": under})
    return out


def describe_absent(absent: list[dict[str, Any]], n_shown: int) -> str:
    """Markdown: how many studies the flow shows, and each trial it cannot show, with the
    reason (the registry holds no screening, allocation or treatment count for it)."""
    from evidence.book.text import join_names, md, plural

    text = (f"The flow shows {plural(n_shown, 'study', 'studies')} with a screening, "
            "allocation or treatment count in the registry.")
    if not absent:
        return text + " Every interventional trial of the registry is among them."
    what = plural(len(absent), "interventional trial of the registry is",
                  "interventional trials of the registry are")
    text += f" {what} not shown as a trial:\n"
    for a in absent:
        kind = "randomised" if a["randomised"] else "not randomised"
        first, *also = a["labels"]
        line = f"\n- **{md(first)}** ({kind}"
        line += f"; also reported as {md(join_names(also))})" if also else ")"
        if a["counted_under"]:
            line += (f": its screening is counted with {md(join_names(a['counted_under']))}, "
                     "which the flow shows; the registry holds no count of its patients "
                     "randomised or treated (see its notes in the study registry).")
        else:
            line += ": no screening, allocation or treatment count is recorded."
        text += line
    return text
