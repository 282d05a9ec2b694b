"""evidence.book.sof: the GRADE summary-of-findings rows from result files and the
registry, absolute numbers, plain-language statements and the table's footnotes."""

from __future__ import annotations

import pandas as pd
import pytest

from evidence.book import sof
from evidence.book.certainty import DOMAINS, CertaintyError, Evidence

STUDIES = pd.DataFrame({"study_id": ["a", "b", "t", "q1", "q2"],
                        "label": ["A", "B", "T", "Q1", "Q2"],
                        "setting": ["metastatic", "early", "early", "metastatic", "metastatic"],
                        "her2_cutoff_group": ["x", "x", "", "x", "x"],
                        "randomized": ["no", "no", "yes", "no", "no"],
                        "design": ["cohort", "cohort", "randomized phase II",
                                   "prospective cohort", "prospective cohort (abstract)"],
                        "tissue_her2": ["negative", "negative", "negative", "positive",
                                        "positive"]})
TYPES = pd.DataFrame({"outcome": ["conv", "persist"], "appraisal": ["agreement", "comparison"]})
ROB = pd.DataFrame({"study_id": ["a", "b", "t", "q1", "q2"],
                    "tool": ["quadas2", "quadas2", "rob2", "quips", "quips"],
                    "overall": ["high", "low", "some_concerns", "low", "low"]})
RESULTS = {
    "conv": {"outcome": "conv", "k": 2, "patients": 300, "measure": "PLO",
             "pooled": {"estimate": 0.3, "ci_lower": 0.2, "ci_upper": 0.42,
                        "pi_lower": None, "pi_upper": None},
             "model": {"i2": 55.0},
             "studies": [{"study_id": "a", "events": 30, "total": 100},
                         {"study_id": "b", "events": 60, "total": 200}],
             "risk_of_bias": {"judgements": {"a": "high", "b": "low"}}},
    "hr": {"measure": "HR", "k": 2, "studies": [{"study_id": "q1"}, {"study_id": "q2"}],
           "reference_groups": {"q1": "HER2-negative CTCs", "q2": "no HER2-positive CTCs"},
           "pooled": {"estimate": 0.5, "ci_lower": 0.3, "ci_upper": 0.8}, "model": {"i2": 0.0}},
    "two": {"effects": [{"study_id": "t", "outcome": "persist", "measure": "RR",
                         "estimate": 1.2, "ci_lower": 0.4, "ci_upper": 3.6, "ai": 5,
                         "n1i": 31, "ci": 4, "n2i": 32}]},
}


def certainty(outcomes: list[str], **override: str) -> pd.DataFrame:
    from evidence.book.certainty import propose

    rows = []
    for oid in outcomes:
        ev, _ = sof.evidence_for(oid, RESULTS, STUDIES, TYPES, ROB)
        p = propose(ev)
        for d in DOMAINS:
            rows.append({"outcome_id": oid, "domain": d, "judgement": p[d].judgement,
                         "reason": ""})
    frame = pd.DataFrame(rows)
    for key, judgement in override.items():
        oid, domain = key.split("__")
        oid = oid.replace("_C_", ":")
        mask = (frame["outcome_id"] == oid) & (frame["domain"] == domain)
        frame.loc[mask, ["judgement", "reason"]] = [judgement, "the reviewers say so"]
    return frame


def test_evidence_of_each_kind() -> None:
    ev, facts = sof.evidence_for("conv", RESULTS, STUDIES, TYPES, ROB)
    assert (ev.kind, ev.k, ev.patients, ev.settings) == (
        "agreement", 2, {"a": 100, "b": 200}, ("early", "metastatic"))
    assert ev.cutoffs == ("x",) and facts["patients"] == 300
    hr, facts = sof.evidence_for("hr", RESULTS, STUDIES, TYPES, ROB)
    assert (hr.kind, hr.scale, hr.risk_of_bias, facts["patients"]) == (
        "prognosis", "ratio", {"q1": "low", "q2": "low"}, None)
    rr, facts = sof.evidence_for("two:t:persist", RESULTS, STUDIES, TYPES, ROB)
    assert (rr.kind, rr.k, rr.risk_of_bias) == ("randomised", 1, {"t": "some_concerns"})
    assert facts["control_risk"] == pytest.approx(4 / 32)
    with pytest.raises(KeyError, match="no result for 'nope'"):
        sof.evidence_for("nope", RESULTS, STUDIES, TYPES, ROB)
    with pytest.raises(KeyError, match="no risk ratio for 't', 'other'"):
        sof.evidence_for("two:t:other", RESULTS, STUDIES, TYPES, ROB)


def test_absolute_numbers_and_statements() -> None:
    ev, facts = sof.evidence_for("two:t:persist", RESULTS, STUDIES, TYPES, ROB)
    assert sof.per_1000(ev, facts) == ("125 per 1,000 in the comparison arm; 150 per 1,000 "
                                       "(50 to 450) with the intervention")
    conv, facts = sof.evidence_for("conv", RESULTS, STUDIES, TYPES, ROB)
    assert sof.per_1000(conv, facts) == "300 per 1,000 (200 to 420)"
    hr, facts = sof.evidence_for("hr", RESULTS, STUDIES, TYPES, ROB)
    assert sof.per_1000(hr, facts).startswith("not estimable")
    subject = "The share with X"
    assert sof.plain_statement(subject, conv, "high") == "The share with X is about 300 in 1,000."
    assert "is probably about 300" in sof.plain_statement(subject, conv, "moderate")
    assert "may be about 300" in sof.plain_statement(subject, conv, "low")
    assert sof.plain_statement(subject, conv, "very low") == (
        "We are very uncertain about the share with X.")
    assert "a ratio of 0.50" in sof.plain_statement("The hazard", hr, "low")


def test_rows_table_and_footnotes() -> None:
    outcomes = ["conv", "hr", "two:t:persist"]
    subjects = dict.fromkeys(outcomes, "The thing")
    titles = {"conv": "Conversion", "hr": "PFS", "two:t:persist": "Persistence (T)"}
    rows = sof.sof_rows(outcomes, subjects, titles, RESULTS, STUDIES, TYPES, ROB,
                        certainty(outcomes, hr__indirectness="serious"))
    assert [r.certainty.departures for r in rows] == [(), ("indirectness",), ()]
    table, notes = sof.sof_table(rows)
    assert list(table["Outcome"]) == ["Conversion", "PFS", "Persistence (T)"]
    letters = sum(len(r.certainty.downgrades()) for r in rows)
    assert len(notes) == letters and notes[0].startswith("a. ")
    assert table.loc[0, "Participants (studies)"] == "300 (2)"
    # issue 13 item 11: the PFS row names the population and each reference group
    assert table.loc[1, "Participants (studies)"] == (
        "not recorded (2 observational cohorts, tissue HER2-positive; reference groups "
        "differ: HER2-negative CTCs (Q1) vs no HER2-positive CTCs (Q2))")
    assert table.loc[1, "Estimate (95% CI)"] == "HR 0.50 (0.30 to 0.80)"
    # with the patients of both cohorts stated (effects.csv patients), the row counts them
    stated = {**RESULTS, "hr": {**RESULTS["hr"], "patients": 118}}
    rows = sof.sof_rows(outcomes, subjects, titles, stated, STUDIES, TYPES, ROB,
                        certainty(outcomes, hr__indirectness="serious"))
    assert sof.sof_table(rows)[0].loc[1, "Participants (studies)"].startswith(
        "118 (2 observational cohorts")
    assert table.loc[2, "Certainty"].startswith(rows[2].certainty.symbol)
    assert len(sof.departures_table(rows)) == 1
    assert "Certainty:" in sof.describe_sof(rows)
    assert sof.footnotes_markdown([]) == "No outcome was downgraded."
    with pytest.raises(KeyError, match="no subject phrase for 'hr'"):
        sof.sof_rows(outcomes, {"conv": "x"}, titles, RESULTS, STUDIES, TYPES, ROB,
                     certainty(outcomes))
    stale = pd.concat([certainty(outcomes), certainty(["conv"]).assign(outcome_id="gone")])
    with pytest.raises(CertaintyError, match="'gone'"):
        sof.sof_rows(outcomes, subjects, titles, RESULTS, STUDIES, TYPES, ROB, stale)
    assert isinstance(rows[0].evidence, Evidence) and rows[0].to_dict()["certainty"]
