"""Harms: adverse events, cardiac safety and early stopping per trial (``harms.csv``),
tabulated with their sources, pooled only where two or more trials report the same harm
with counts, otherwise described."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown, fmt_ci, fmt_pct, join_names, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["describe_harms", "harm_pools", "harms_table"]


def _counted(row: Any) -> bool:
    """A harm reported with events and total (missing counts are empty or NaN)."""
    import math

    def present(v: Any) -> bool:
        return v not in ("", None) and not (isinstance(v, float) and math.isnan(v))

    return present(row["events"]) and present(row["total"])


def _source(row: Any) -> str:
    if str(row["source"]).endswith(".txt"):
        return f"seed text: \u201c{row['quote']}\u201d"
    where = f", {row['locator']}" if row.get("locator") else ""
    return f"{row['source']}{where}" + (f" (printed: {row['printed']})" if row.get("printed")
                                        else "")


def harms_table(harms: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """One row per reported harm: trial, arm, what, the count with its exact CI (or the
    words of the report when it gives no count), the note and the source."""
    import pandas as pd

    from evidence.stats.effects import proportion_ci

    rows = []
    for r in harms.to_dict("records"):
        if _counted(r):
            e, n = int(r["events"]), int(r["total"])
            lo, hi = proportion_ci([e], [n])
            count = f"{e} / {n} ({fmt_pct(e / n)}; 95% CI {fmt_ci(lo[0], hi[0])})"
        else:
            count = "no count reported"
        rows.append({"Trial": labels.get(r["study_id"], r["study_id"]),
                     "Arm": str(r["arm"]).replace("_", " "),
                     "Harm": r["definition"], "Patients": count, "Note": r["note"],
                     "Source": _source(r)})
    return pd.DataFrame(rows)


def harm_pools(harms: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Harms that two or more trials report with the same definition code (``harm``) and
    with counts: harm -> its rows (the experimental arms)."""
    counted = harms.apply(_counted, axis=1) if not harms.empty else harms["events"].astype(bool)
    with_counts = harms[counted & harms["arm_role"].isin(["experimental", ""])]
    out = {}
    for harm, g in with_counts.groupby("harm", sort=True):
        if g["study_id"].nunique() >= 2:
            out[str(harm)] = g.to_dict("records")
    return out


def describe_harms(harms: pd.DataFrame, labels: dict[str, str]) -> str:
    """What the trials report, trial by trial: early stopping and its reason, the harms
    with counts, and whether anything could be pooled."""
    if harms.empty:
        return "No trial in the registry reports harms."
    paras = []
    for study, g in harms.groupby("study_id", sort=False):
        name = escape_markdown(labels.get(study, study))
        stops = g[g["harm"] == "early_stopping"]
        has = g.apply(_counted, axis=1)
        counted = g[has]
        parts = []
        if not stops.empty:
            parts.append("stopped early (" + "; ".join(escape_markdown(str(n)) for n in
                                                       stops["note"] if n) + ")")
        for r in counted.to_dict("records"):
            parts.append(f"{escape_markdown(str(r['definition']))}: {int(r['events'])} of "
                         f"{int(r['total'])} "
                         f"({escape_markdown(str(r['arm']).replace('_', ' '))})")
        uncounted = g[(g["harm"] != "early_stopping") & ~has]
        if not uncounted.empty:
            parts.append("without counts: " + join_names(
                [escape_markdown(str(d)) for d in dict.fromkeys(uncounted["definition"])]))
        paras.append(f"- *{name}*: " + "; ".join(parts) + ".")
    pools = harm_pools(harms)
    trials = harms["study_id"].nunique()
    closing = (f"{plural(len(pools), 'harm is', 'harms are')} reported with the same "
               "definition by two or more trials and could be pooled."
               if pools else
               f"No harm is reported with the same definition and with counts by two of the "
               f"{plural(trials, 'trial', 'trials')}, so nothing is pooled: the definitions, "
               "denominators and follow-up differ, and a pooled rate would mix them.")
    return "\n".join(paras) + "\n\n" + closing
