"""The summary of findings in GRADE's format: per outcome the participants (studies), the
estimate with its CI, absolute numbers per 1,000, the certainty with footnoted reasons for
each downgrade, and GRADE's plain-language statement, chosen by the certainty.

An outcome is an analysis id (a pooled proportion, a pooled hazard ratio) or, for one
comparison of the two-arm analysis, ``<analysis>:<study_id>:<outcome>``. Everything is
read from the analyses' result files and the registry; :mod:`evidence.book.certainty`
proposes and decides the certainty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evidence.book.certainty import DOMAIN_NAMES, Certainty, Evidence, decide, propose
from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_pct, per_n, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SofRow", "departures_table", "describe_sof", "evidence_for", "footnotes_markdown",
           "grade_table", "per_1000", "plain_statement", "sof_rows", "sof_table"]


@dataclass(frozen=True)
class SofRow:
    """One outcome of the summary of findings."""

    outcome_id: str
    title: str
    subject: str
    evidence: Evidence
    certainty: Certainty
    patients: int | None
    absolute: str
    statement: str
    #: Who the estimate comes from, where the row must say it (a pooled hazard ratio: the
    #: kind of study, the tissue HER2 status and each estimate's reference group).
    population: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``results/summary.json``)."""
        ev = self.evidence
        return {"outcome_id": self.outcome_id, "title": self.title, "k": ev.k,
                "patients": self.patients, "scale": ev.scale, "estimate": ev.estimate,
                "ci_lower": ev.ci_lower, "ci_upper": ev.ci_upper, "pi_lower": _nan(ev.pi_lower),
                "pi_upper": _nan(ev.pi_upper), "certainty": self.certainty.level,
                "grade": self.certainty.to_dict(), "absolute": self.absolute,
                "statement": self.statement, "population": self.population}


def _nan(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def _distinct(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


def evidence_for(outcome_id: str, results: Mapping[str, dict[str, Any]],
                 studies: pd.DataFrame, outcome_types: pd.DataFrame,
                 rob_overall: pd.DataFrame) -> tuple[Evidence, dict[str, Any]]:
    """The :class:`Evidence` of one outcome and the extra facts its row shows
    (``control_risk`` for a comparison; ``patients`` when known).

    Raises
    ------
    KeyError
        The outcome's analysis has no result, or the comparison is not in it.
    """
    from evidence.book.risk_of_bias import judgements_of
    from evidence.registry.appraisal import tool_for

    by_id = studies.set_index("study_id")
    analysis, _, rest = outcome_id.partition(":")
    if analysis not in results:
        raise KeyError(f"summary of findings: no result for {analysis!r} (add it to 'after')")
    res = results[analysis]
    if rest:
        study, _, outcome = rest.partition(":")
        match = [e for e in res.get("effects", []) if e["study_id"] == study
                 and e["outcome"] == outcome and e["measure"] == "RR"]
        if not match:
            raise KeyError(f"summary of findings: {analysis!r} has no risk ratio for "
                           f"{study!r}, {outcome!r}")
        e = match[0]
        randomized = str(by_id.loc[study, "randomized"]) if study in by_id.index else ""
        kind = "randomised" if randomized == "yes" else "non_randomised"
        rob = judgements_of(rob_overall, tool_for("comparison", randomized), [study])
        n = int(e["n1i"]) + int(e["n2i"])
        ev = Evidence(kind=kind, scale="ratio", k=1, patients={study: n}, risk_of_bias=rob,
                      estimate=float(e["estimate"]), ci_lower=float(e["ci_lower"]),
                      ci_upper=float(e["ci_upper"]),
                      settings=_distinct([str(by_id.loc[study, "setting"])]))
        return ev, {"control_risk": int(e["ci"]) / int(e["n2i"]), "patients": n,
                    "arms": (int(e["ai"]), int(e["n1i"]), int(e["ci"]), int(e["n2i"]))}
    p, model = res["pooled"], res.get("model") or {}
    if res.get("measure") == "HR":
        ids = [s["study_id"] for s in res.get("studies", [])]
        tool = "quips"
        ev = Evidence(kind="prognosis", scale="ratio", k=int(res["k"]), patients={},
                      risk_of_bias=judgements_of(rob_overall, tool, ids),
                      estimate=p["estimate"], ci_lower=p["ci_lower"], ci_upper=p["ci_upper"],
                      pi_lower=_num(p.get("pi_lower")), pi_upper=_num(p.get("pi_upper")),
                      i2=_num(model.get("i2")))
        from evidence.book.hazard_ratios import population_phrase

        patients = res.get("patients")
        return ev, {"patients": int(patients) if patients is not None else None,
                    "population": population_phrase(ids, res.get("reference_groups") or {},
                                                    studies)}
    rows = res.get("studies", [])
    ids = [s["study_id"] for s in rows]
    types = outcome_types.set_index("outcome")
    appraisal = str(types.loc[res["outcome"], "appraisal"]) if res["outcome"] in types.index \
        else ""
    kind = {"single_arm": "single_arm", "agreement": "agreement"}.get(appraisal, "agreement")
    rob = (res.get("risk_of_bias") or {}).get("judgements") or dict.fromkeys(ids)
    sub = by_id.loc[[i for i in ids if i in by_id.index]]
    egger = None
    if len(rows) >= 10:
        from evidence.stats.effects import escalc
        from evidence.stats.regression import regtest

        es = escalc("PLO", xi=[s["events"] for s in rows], ni=[s["total"] for s in rows])
        egger = float(regtest(es).pval)
    ev = Evidence(kind=kind, scale="proportion", k=int(res["k"]),
                  patients={s["study_id"]: int(s["total"]) for s in rows}, risk_of_bias=rob,
                  estimate=p["estimate"], ci_lower=p["ci_lower"], ci_upper=p["ci_upper"],
                  pi_lower=_num(p.get("pi_lower")), pi_upper=_num(p.get("pi_upper")),
                  i2=_num(model.get("i2")) if int(res["k"]) > 1 else math.nan,
                  settings=_distinct(list(sub["setting"].astype(str))),
                  cutoffs=_distinct([c for c in sub.get("her2_cutoff_group", []) if c]),
                  egger_p=egger)
    return ev, {"patients": int(res.get("patients") or sum(ev.patients.values()))}


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def per_1000(ev: Evidence, facts: Mapping[str, Any]) -> str:
    """Absolute numbers: a proportion per 1,000; a risk ratio applied to the comparison
    arm's risk; none for a hazard ratio (the registry holds no baseline risk)."""
    if ev.scale == "proportion":
        return (f"{per_n(ev.estimate)} per 1,000 "
                f"({per_n(ev.ci_lower)} to {per_n(ev.ci_upper)})")
    if "control_risk" in facts:
        base = facts["control_risk"]
        return (f"{per_n(base)} per 1,000 in the comparison arm; "
                f"{per_n(base * ev.estimate)} per 1,000 "
                f"({per_n(base * ev.ci_lower)} to {per_n(base * ev.ci_upper)}) "
                "with the intervention")
    return "not estimable (no baseline risk in the registry)"


def plain_statement(subject: str, ev: Evidence, level: str) -> str:
    """GRADE's plain-language statement for the certainty level (Santesso et al. 2020):
    high "is", moderate "is probably", low "may be", very low "we are very uncertain".
    Plain text: escape it (:func:`evidence.book.text.escape_markdown`) to glue it into
    prose."""
    if ev.scale == "proportion":
        value = f"about {per_n(ev.estimate)} in 1,000"
    else:
        value = f"a ratio of {fmt_num(ev.estimate, 2)}"
    return {
        "high": f"{subject} is {value}.",
        "moderate": f"{subject} is probably {value}.",
        "low": f"{subject} may be {value}.",
        "very low": f"We are very uncertain about {subject[:1].lower() + subject[1:]}.",
    }[level]


def sof_rows(outcomes: Sequence[str], subjects: Mapping[str, str],
             titles: Mapping[str, str], results: Mapping[str, dict[str, Any]],
             studies: pd.DataFrame, outcome_types: pd.DataFrame, rob_overall: pd.DataFrame,
             certainty: pd.DataFrame) -> list[SofRow]:
    """Every row of the summary of findings, in the order of ``outcomes``.

    Raises
    ------
    evidence.book.certainty.CertaintyError
        ``certainty.csv`` lacks an outcome's domain, names an outcome the summary does not
        show, or departs from a proposal without a reason.
    KeyError
        An outcome has no subject phrase or no result.
    """
    from evidence.book.certainty import check_outcomes

    check_outcomes(certainty, list(outcomes))
    rows = []
    for oid in outcomes:
        if oid not in subjects:
            raise KeyError(f"summary of findings: no subject phrase for {oid!r} "
                           "(parameter 'subjects')")
        ev, facts = evidence_for(oid, results, studies, outcome_types, rob_overall)
        cert = decide(oid, ev.kind, propose(ev), certainty)
        analysis = oid.split(":")[0]
        title = titles.get(oid, titles.get(analysis, oid))
        rows.append(SofRow(oid, title, subjects[oid], ev, cert, facts.get("patients"),
                           per_1000(ev, facts), plain_statement(subjects[oid], ev,
                                                                cert.level),
                           facts.get("population", "")))
    return rows


def sof_table(rows: Sequence[SofRow]) -> tuple[pd.DataFrame, list[str]]:
    """GRADEpro's layout and its footnotes (one letter per downgrade reason)."""
    import pandas as pd

    notes: list[str] = []
    out = []
    for row in rows:
        ev, cert = row.evidence, row.certainty
        marks = []
        for domain, judgement, reason in cert.downgrades():
            notes.append(f"{DOMAIN_NAMES[domain]} ({judgement.replace('_', ' ')}): {reason}")
            marks.append(_letter(len(notes) - 1))
        if ev.scale == "proportion":
            estimate = f"{fmt_pct(ev.estimate)} ({fmt_ci(ev.ci_lower, ev.ci_upper)})"
        else:
            kind = "HR" if ev.kind == "prognosis" else "RR"
            estimate = (f"{kind} {fmt_num(ev.estimate, 2)} "
                        f"({fmt_ci(ev.ci_lower, ev.ci_upper, pct=False, digits=2)})")
        out.append({
            "Outcome": row.title,
            "Participants (studies)": (f"{row.patients:,} ({row.population or ev.k})"
                                       if row.patients
                                       else f"not recorded ({row.population or ev.k})"),
            "Estimate (95% CI)": estimate,
            "Absolute": row.absolute,
            "Certainty": f"{cert.symbol} {cert.level.capitalize()}"
                         + (f" ({', '.join(marks)})" if marks else ""),
            "What this means": row.statement,
        })
    return pd.DataFrame(out), [f"{_letter(i)}. {n}" for i, n in enumerate(notes)]


def _letter(i: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26]


def describe_sof(rows: Sequence[SofRow]) -> str:
    """The opening sentence: how many outcomes, and how many at each certainty level."""
    from collections import Counter

    from evidence.book.certainty import LEVELS

    counts = Counter(r.certainty.level for r in rows)
    spread = ", ".join(f"{counts[lv]} {lv}" for lv in LEVELS if counts[lv])
    return (f"The main outcomes of this review ({plural(len(rows), 'outcome', 'outcomes')}), "
            "each with the number of participants and studies, the estimate, absolute numbers "
            "per 1,000 patients, the certainty of the evidence (GRADE) and what it means. "
            f"Certainty: {spread}. The letters next to a certainty lead to the reasons it was "
            "lowered, under the table.")


def footnotes_markdown(notes: Sequence[str]) -> str:
    """The footnotes under the table, escaped, one per line."""
    if not notes:
        return "No outcome was downgraded."
    return "\n".join(f"- {escape_markdown(n)}" for n in notes)


def departures_table(rows: Sequence[SofRow]) -> pd.DataFrame:
    """Only the judgements where the reviewers departed from the library's proposal."""
    table = grade_table(rows)
    return table[table["Final"].str.endswith("(departs)")].reset_index(drop=True)


def grade_table(rows: Sequence[SofRow]) -> pd.DataFrame:
    """Per outcome and domain: the proposed and the final judgement with its reason, the
    departures marked, and the resulting level."""
    import pandas as pd

    from evidence.book.certainty import DOMAINS

    out = []
    for row in rows:
        cert = row.certainty
        for domain in DOMAINS:
            proposal = cert.proposals[domain]
            final = cert.final[domain]
            out.append({
                "Outcome": row.title, "Starts at": cert.start.capitalize(),
                "Domain": DOMAIN_NAMES[domain],
                "Proposed": f"{proposal.judgement.replace('_', ' ')} ({proposal.reason})",
                "Final": final.replace("_", " ") + (" (departs)" if domain in cert.departures
                                                    else ""),
                "Reason": cert.reasons[domain],
                "Certainty": f"{cert.symbol} {cert.level}",
            })
    return pd.DataFrame(out)
