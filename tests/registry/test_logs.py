"""evidence.registry.logs: the eligibility, search and screening logs checked together."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_cases import STUDIES, make

from evidence.registry import validate

ELIGIBILITY = """\
question,element,criterion
therapy,population,HER2-negative tumour and HER2-positive CTCs
therapy,design,single-arm or randomised trials
discordance,index_test,HER2 on CTCs by any assay
"""

SEARCHES = """\
search_id,date,source,query,records_returned,question,note
s001,2026-12-01,PubMed,HER2 CTC trastuzumab,3,therapy,
s002,2026-12-01,reference list of Verschoor 2024,all references,2,therapy,
"""

SCREENING = """\
record_id,search_ids,identifier,url,title,record_type,stage,decision,reason,questions,study_id
r1,s001;s002,doi:10.1000/a1,,Trial A,journal_article,eligibility,included,,therapy,pestrin2012
r2,s001,pmid:1,,Trial B,journal_article,eligibility,included,,therapy,jacot2019
r3,s001;s002,,https://example.org/c,Trial C,seed_document,\
eligibility,included,,therapy,verschoor2024
r4,seed,,https://example.org/d,Trial D,journal_article,eligibility,included,,therapy,fehm2021
"""
SEEDS = "seed,2026-12-01,seed texts,all,1,therapy,\n"


def logs(**change: tuple[str, str]) -> dict[str, str]:
    files = {"eligibility.csv": ELIGIBILITY, "searches.csv": SEARCHES + SEEDS,
             "screening.csv": SCREENING}
    for name, (old, new) in change.items():
        name = name.replace("_", ".")
        assert files[name].count(old) == 1, (name, old)
        files[name] = files[name].replace(old, new)
    return files


def messages(tmp_path: Path, files: dict[str, str | None]) -> list[str]:
    return [str(p) for p in validate(make(tmp_path, files=files))]


def test_consistent_logs_are_valid(tmp_path: Path) -> None:
    assert messages(tmp_path, logs()) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"searches_csv": (",3,therapy,", ",4,therapy,")},
     "data/searches.csv:2: records_returned: search 's001' returned 4 record(s) but "
     "screening.csv names it 3 time(s): every record a search returned is screened once"),
    ({"screening_csv": ("r2,s001,", "r2,s009,")},
     "data/screening.csv:3: search_ids: unknown search id(s) s009 (not an identification "
     "search of searches.csv)"),
    ({"screening_csv": ("r2,s001,pmid:1,", "r2,s001,PMID 1,")},
     "data/screening.csv:3: identifier: 'PMID 1' is not an identifier"),
    ({"screening_csv": (",included,,therapy,jacot2019", ",excluded,wrong_population,"
                                                        "therapy,")},
     "data/studies.csv:3: study_id: 'jacot2019' is not included by any record of "
     "screening.csv"),
    ({"screening_csv": (",included,,therapy,jacot2019", ",excluded,wrong_index_test,"
                                                        "therapy,")},
     "data/screening.csv:3: reason: 'wrong_index_test' refers to the index_test criterion "
     "of 'therapy', which eligibility.csv does not define"),
    ({"screening_csv": (",included,,therapy,jacot2019", ",excluded,too_small,therapy,")},
     "data/screening.csv:3: reason: 'too_small' is not one of"),
    ({"screening_csv": (",included,,therapy,jacot2019", ",included,wrong_design,therapy,"
                                                        "jacot2019")},
     "data/screening.csv:3: reason: must be empty for an included record"),
    ({"screening_csv": ("journal_article,eligibility,included,,therapy,jacot2019",
                        "journal_article,screening,included,,therapy,jacot2019")},
     "data/screening.csv:3: stage: an included record was assessed for eligibility"),
    ({"searches_csv": ("s002,2026-12-01,", "s002,1 Dec 2026,")},
     "data/searches.csv:3: date: '1 Dec 2026' is not a date YYYY-MM-DD"),
    ({"eligibility_csv": ("therapy,design,", "therapy,designs,")},
     "data/eligibility.csv:3: element: 'designs' is not one of"),
])
def test_each_log_rule_names_file_line_and_column(tmp_path: Path,
                                                  change: dict[str, tuple[str, str]],
                                                  message: str) -> None:
    found = messages(tmp_path, logs(**change))
    assert any(message in m for m in found), found


def test_appraisal_searches_are_logged_but_identify_nothing(tmp_path: Path) -> None:
    """A search run to appraise included studies keeps its count and is not screened."""
    files = logs()
    files["searches.csv"] = (SEARCHES.replace(",question,note\n", ",question,note,purpose\n")
                             .replace(",therapy,\n", ",therapy,,\n")
                             + SEEDS.replace(",therapy,\n", ",therapy,,\n")
                             + "s003,2026-12-01,PubMed,Trial A risk of bias,8,therapy,,"
                               "appraisal\n")
    assert messages(tmp_path / "ok", files) == []
    files["searches.csv"] = files["searches.csv"].replace(",appraisal\n", ",checking\n")
    found = messages(tmp_path / "bad", files)
    assert found == ["data/searches.csv:5: purpose: 'checking' is not one of identification, "
                     "appraisal, extraction"], found


def test_screening_without_search_log_is_reported(tmp_path: Path) -> None:
    files = logs()
    files["searches.csv"] = None
    found = messages(tmp_path, files)
    assert any("searches.csv is missing" in m for m in found), found


def test_studies_fixture_has_the_four_studies_the_log_includes() -> None:
    ids = [line.split(",", 1)[0] for line in STUDIES.splitlines()[1:] if "," in line]
    assert {"pestrin2012", "jacot2019", "verschoor2024", "fehm2021"} <= set(ids)
