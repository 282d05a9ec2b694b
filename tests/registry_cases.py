"""Small registries for the registry tests, and one malformed edit per validation rule.

``make`` writes the good base registry (``BASE``) with edits into ``tmp_path/data``.
``RULE_CASES`` and ``APPENDED_ROW_CASES`` list, for every rule ``evidence validate``
enforces, an edit of that base and the exact ``FILE:LINE: column: reason`` message it
must produce (``None``: the edit is valid).  ``tests/test_registry.py`` checks them
against ``validate``; ``tests/test_bad_input.py`` runs the same edits through
``evidence build`` and checks that the last good book and the registry are untouched.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

STUDIES = """\
study_id,label,year,design,setting,tissue_her2,ctc_assay,her2_method,her2_cutoff,intervention,citation,doi,her2_method_group,agent,randomized,source,notes,reviewer
pestrin2012,Pestrin 2012,2012,single-arm phase II,metastatic,negative,CellSearch,FISH,amplified CTC,lapatinib,Citation A,,FISH,lapatinib,no,a.txt,,ab
jacot2019,Jacot 2019,2019,single-arm phase II,metastatic,negative,CellSearch,immunofluorescence,>=1 HER2+ CTC,T-DM1,Citation B,,immunofluorescence,T-DM1,no,a.txt,,cd
verschoor2024,Verschoor 2024,2024,single-arm phase II,metastatic,negative,CellSearch,immunofluorescence,>=1 HER2+ CTC,trastuzumab + taxane,Citation C,10.1000/xyz,immunofluorescence,trastuzumab,no,a.txt,"two-line
note",ab
fehm2021,Fehm 2021,2021,randomized phase III,metastatic,negative,CellSearch,immunofluorescence,>=1 HER2+ CTC,lapatinib,Citation D,,immunofluorescence,lapatinib,yes,a.txt,,cd
"""  # noqa: E501

OUTCOME_TYPES = """\
outcome,events,total,description
objective_response,complete + partial responses,treated patients,ORR
her2_ctc_screening_yield,patients with HER2-positive CTCs,patients screened,yield
pfr6,progression-free at 6 months,treated patients,PFR6
"""

OUTCOMES = """\
study_id,arm,outcome,subgroup,events,total,derived,source,quote,use,note
pestrin2012,all,objective_response,,1,7,,a.txt,one PR among 7,,
jacot2019,all,objective_response,,0,11,,a.txt,no response among 11,,
verschoor2024,trastuzumab_taxane,objective_response,,4,8,,a.txt,PR 4 of 8,,
verschoor2024,taxane_only,objective_response,,5,25,,a.txt,"PR 5
of 25",,
verschoor2024,all,her2_ctc_screening_yield,,8,64,,a.txt,8 of 64 screened,,
verschoor2024,all,her2_ctc_screening_yield,,8,63,,a.txt,8 of 63 screened,alternative,abstract: 63
jacot2019,all,objective_response,hormone_receptor=positive,0,8,,a.txt,none of 8 HR+,primary,
verschoor2024,trastuzumab_taxane,pfr6,,4,8,,a.txt,PFR6 4 of 8,,
"""

EFFECTS = """\
study_id,outcome,comparison,estimate,ci_lower,ci_upper,p_value,adjusted,source,quote
jacot2019,pfs,ctc_her2_positive_vs_negative,0.5,0.3,0.9,0.02,no,a.txt,"HR 0.5 (0.3-0.9), p=0.02"
verschoor2024,pfs,ctc_her2_positive_vs_negative,1.2,,,0.4,yes,a.txt,"HR 1.2, p=0.4"
"""

TRANSITIONS = """\
study_id,subgroup,from_category,to_category,count,derived,source,quote,use,note
fehm2021,,zero,low,20,,a.txt,20 became low,,
fehm2021,,zero,any,51,,a.txt,51 were zero,,
"""

BASE = {
    "studies.csv": STUDIES,
    "outcome_types.csv": OUTCOME_TYPES,
    "outcomes.csv": OUTCOMES,
    "effects.csv": EFFECTS,
    "transitions.csv": TRANSITIONS,
}


def make(tmp_path: Path, *, replace: dict[str, tuple[str, str]] | None = None,
         files: dict[str, str | None] | None = None) -> Path:
    """Write the base registry to ``tmp_path/data`` with edits; return the directory.

    ``replace`` maps a file to one (old, new) substitution that must match exactly
    once; ``files`` overrides whole files (None removes the file).
    """
    contents = dict(BASE)
    for name, (old, new) in (replace or {}).items():
        assert contents[name].count(old) == 1, (name, old)
        contents[name] = contents[name].replace(old, new)
    contents.update(files or {})
    data = tmp_path / "data"
    data.mkdir(parents=True)
    for name, text in contents.items():
        if text is not None:
            (data / name).write_bytes(text.encode("utf-8"))
    return data


def drop_column(text: str, column: str) -> str:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    index = rows[0].index(column)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [r[:index] + r[index + 1:] for r in rows])
    return out.getvalue()


def file_state(directory: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.iterdir())}


#: (file, old, new, expected): replace ``old`` (once) by ``new`` in ``file``.
RULE_CASES: list[tuple[str, str, str, str | None]] = [
    # outcomes.csv: counts
    ("outcomes.csv", ",1,7,", ",8,7,",
     "data/outcomes.csv:2: events: events 8 > total 7"),
    ("outcomes.csv", ",1,7,", ",-1,7,",
     "data/outcomes.csv:2: events: must not be negative, got -1"),
    ("outcomes.csv", ",1,7,", ",3.5,7,",
     "data/outcomes.csv:2: events: must be a non-negative integer, got '3.5'"),
    ("outcomes.csv", ",1,7,", ",abc,7,",
     "data/outcomes.csv:2: events: must be a non-negative integer, got 'abc'"),
    ("outcomes.csv", ",1,7,", ",,7,",
     "data/outcomes.csv:2: events: missing value (a non-negative integer)"),
    ("outcomes.csv", ",1,7,", ",1,7.0,",
     "data/outcomes.csv:2: total: must be a non-negative integer, got '7.0'"),
    ("outcomes.csv", ",0,11,", ",0,0,",
     "data/outcomes.csv:3: total: must be greater than 0"),
    # outcomes.csv: references and text
    ("outcomes.csv", "pestrin2012,all,objective_response,,1,7",
     "pestrin2013,all,objective_response,,1,7",
     "data/outcomes.csv:2: study_id: unknown study_id 'pestrin2013' (not in studies.csv)"),
    ("outcomes.csv", "pestrin2012,all,objective_response,",
     "pestrin2012,all,overall_response,",
     "data/outcomes.csv:2: outcome: unknown outcome 'overall_response' "
     "(not in outcome_types.csv)"),
    ("outcomes.csv", ",a.txt,one PR among 7,", ",a.txt,,",
     "data/outcomes.csv:2: quote: missing value: a row from a seed text carries the "
     "verbatim quote that states its numbers"),
    ("outcomes.csv", ",a.txt,one PR among 7,", ",,one PR among 7,",
     "data/outcomes.csv:2: source: missing value: a seed text's file name (*.txt) or the "
     "publication's identifier (doi:10.1093/clinchem/hvad144, pmid:38175617, "
     "pmcid:PMC2242672, nct:NCT01619111)"),
    ("outcomes.csv", "pestrin2012,all,", "pestrin2012,All Patients,",
     "data/outcomes.csv:2: arm: 'All Patients' is not a slug "
     "(lowercase letters, digits and '_' only)"),
    ("outcomes.csv", ",hormone_receptor=positive,", ",hormone receptor positive,",
     "data/outcomes.csv:9: subgroup: 'hormone receptor positive' is not key=value pairs "
     "joined by ';' (bad part 'hormone receptor positive')"),
    ("outcomes.csv", ",hormone_receptor=positive,", ",hr=positive;hr=negative,",
     "data/outcomes.csv:9: subgroup: key 'hr' repeated in 'hr=positive;hr=negative'"),
    ("outcomes.csv", "none of 8 HR+,primary,", "none of 8 HR+,main,",
     "data/outcomes.csv:9: use: 'main' is not one of primary, alternative "
     "(empty means primary)"),
    ("outcomes.csv", "8 of 63 screened,alternative,abstract: 63",
     "8 of 63 screened,alternative,",
     "data/outcomes.csv:8: note: an alternative row needs a note saying what it "
     "contradicts and why the primary reading was chosen"),
    ("outcomes.csv", "her2_ctc_screening_yield,,8,63,", "her2_ctc_screening_yield,,8,62,",
     None),  # an alternative reading may have other counts
    ("outcomes.csv", "jacot2019,all,objective_response,hormone_receptor=positive,0,8,,a.txt,"
     "none of 8 HR+,primary,",
     "jacot2019,all,objective_response,hormone_receptor=positive,0,8,,a.txt,"
     "none of 8 HR+,alternative,HR+ given twice",
     "data/outcomes.csv:9: use: alternative row without a primary row for "
     "(study_id='jacot2019', arm='all', outcome='objective_response', "
     "subgroup='hormone_receptor=positive')"),
    # studies.csv
    ("studies.csv", "jacot2019,Jacot 2019,", "jacot2019,,",
     "data/studies.csv:3: label: missing value"),
    ("studies.csv", "Citation B", "",
     "data/studies.csv:3: citation: missing value"),
    ("studies.csv", ",2019,", ",2019a,",
     "data/studies.csv:3: year: must be a non-negative integer, got '2019a'"),
    ("studies.csv", ",2019,", ",1819,",
     "data/studies.csv:3: year: must be between 1900 and 2100, got 1819"),
    ("studies.csv", "2019,single-arm phase II,metastatic,", "2019,single-arm phase II,adjuvant,",
     "data/studies.csv:3: setting: 'adjuvant' is not one of metastatic, early"),
    ("studies.csv", "2019,single-arm phase II,metastatic,negative,",
     "2019,single-arm phase II,metastatic,HER2-low,",
     "data/studies.csv:3: tissue_her2: 'HER2-low' is not one of negative, positive, any"),
    ("studies.csv", ",T-DM1,no,", ",T-DM1,maybe,",
     "data/studies.csv:3: randomized: 'maybe' is not one of yes, no"),
    # effects.csv
    ("effects.csv", ",0.5,0.3,0.9,", ",0,0.3,0.9,",
     "data/effects.csv:2: estimate: must be > 0, got 0"),
    ("effects.csv", ",0.5,0.3,0.9,", ",-0.5,0.3,0.9,",
     "data/effects.csv:2: estimate: must be > 0, got -0.5"),
    ("effects.csv", ",0.5,0.3,0.9,", ",1.5,0.3,0.9,",
     "data/effects.csv:2: estimate: estimate 1.5 outside its CI [0.3, 0.9]"),
    ("effects.csv", ",0.5,0.3,0.9,", ",0.5,0.9,0.3,",
     "data/effects.csv:2: ci_lower: ci_lower 0.9 must be below ci_upper 0.3"),
    ("effects.csv", ",0.5,0.3,0.9,", ",0.5,0,0.9,",
     "data/effects.csv:2: ci_lower: must be > 0, got 0"),
    ("effects.csv", ",0.5,0.3,0.9,", ",0.5,,0.9,",
     "data/effects.csv:2: ci_lower: ci_lower and ci_upper must both be given or both empty"),
    ("effects.csv", ",0.5,0.3,0.9,", ",HR 0.5,0.3,0.9,",
     "data/effects.csv:2: estimate: must be a number, got 'HR 0.5'"),
    ("effects.csv", ",0.9,0.02,no,", ",0.9,0,no,",
     "data/effects.csv:2: p_value: must be in (0, 1], got 0"),
    ("effects.csv", ",0.9,0.02,no,", ",0.9,1.5,no,",
     "data/effects.csv:2: p_value: must be in (0, 1], got 1.5"),
    ("effects.csv", ",0.9,0.02,no,", ",0.9,1,no,", None),  # p = 1 is allowed
    ("effects.csv", ",1.2,,,0.4,", ",1.2,,,,",
     "data/effects.csv:3: needs a confidence interval or a p-value (both empty)"),
    ("effects.csv", ",0.02,no,", ",0.02,univariate,",
     "data/effects.csv:2: adjusted: 'univariate' is not one of yes, no"),
    ("effects.csv", "a.txt,\"HR 0.5 (0.3-0.9), p=0.02\"", "a.txt,",
     "data/effects.csv:2: quote: missing value: a row from a seed text carries the "
     "verbatim quote that states its numbers"),
    ("effects.csv", "jacot2019,pfs,", "jacot2020,pfs,",
     "data/effects.csv:2: study_id: unknown study_id 'jacot2020' (not in studies.csv)"),
    # transitions.csv
    ("transitions.csv", ",zero,low,20,", ",zero,HER2-low,20,",
     "data/transitions.csv:2: to_category: 'HER2-low' is not one of zero, low, positive, any"),
    ("transitions.csv", ",zero,low,20,", ",zero,low,-20,",
     "data/transitions.csv:2: count: must not be negative, got -20"),
    ("transitions.csv", ",a.txt,20 became low,", ",a.txt,,",
     "data/transitions.csv:2: quote: missing value: a row from a seed text carries the "
     "verbatim quote that states its numbers"),
    ("transitions.csv", "fehm2021,,zero,any,", "fehm2022,,zero,any,",
     "data/transitions.csv:3: study_id: unknown study_id 'fehm2022' (not in studies.csv)"),
    ("transitions.csv", "fehm2021,,zero,any,", "fehm2021,,zero,low,",
     "data/transitions.csv:3: use: duplicate primary row for (study_id='fehm2021', "
     "subgroup='', from_category='zero', to_category='low'); first on line 2 "
     "(mark one use=alternative with a note, or remove it)"),
]

#: (file, row, expected): append ``row`` to ``file``.
APPENDED_ROW_CASES: list[tuple[str, str, str]] = [
    ("studies.csv", "pestrin2012,Pestrin 2012 bis,2012,x,early,any,,,,,C,,,,,,,\n",
     "data/studies.csv:7: study_id: duplicate study_id 'pestrin2012' (first on line 2)"),
    ("studies.csv", "Jacot-2019,Jacot 2019,2019,x,early,any,,,,,C,,,,,,,\n",
     "data/studies.csv:7: study_id: 'Jacot-2019' is not a slug "
     "(lowercase letters, digits and '_' only)"),
    ("studies.csv", ",No id,2019,x,early,any,,,,,C,,,,,,,\n",
     "data/studies.csv:7: study_id: missing value"),
    ("outcome_types.csv", "objective_response,responders,treated,again\n",
     "data/outcome_types.csv:5: outcome: duplicate outcome 'objective_response' "
     "(first on line 2)"),
    ("outcome_types.csv", "os,,patients,overall survival\n",
     "data/outcome_types.csv:5: events: missing value"),
]
