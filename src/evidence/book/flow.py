"""The flow of patients through the HER2-CTC trials: screened, with HER2-positive CTCs,
eligible, treated, evaluable; a table and the data of the flow diagram."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLOW_NAMES",
    "FLOW_STAGES",
    "flow_display",
    "flow_for_figure",
    "flow_table",
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
