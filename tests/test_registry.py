"""Tests for evidence.registry: one malformed registry per rule, exact messages.

Most registries are built in ``tmp_path`` from the small good base below; the
encoding and CSV-structure cases are files on disk under
``tests/fixtures/registry/`` (see its README.md; ``make_fixtures.py`` regenerates them).
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.registry import (
    Registry,
    RegistryError,
    RegistryProblem,
    load,
    registry_sha256,
    validate,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registry"

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


def messages(data: Path) -> list[str]:
    return [str(p) for p in validate(data)]


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


# --------------------------------------------------------------------------- good input


def test_base_registry_is_valid(tmp_path: Path) -> None:
    assert messages(make(tmp_path)) == []


def test_good_fixture_on_disk_is_valid() -> None:
    assert validate(FIXTURES / "good" / "data") == []


def test_new_her2_method_is_accepted(tmp_path: Path) -> None:
    data = make(tmp_path, replace={"studies.csv": (
        "CellSearch,FISH,amplified CTC,lapatinib,Citation A,,FISH,",
        "CellSearch,digital droplet PCR of CTC lysates,>=5 copies,lapatinib,Citation A,,"
        "ddpcr_never_seen_before,")})
    assert messages(data) == []
    assert "ddpcr_never_seen_before" in set(load(data).studies["her2_method_group"])


def test_bom_is_tolerated_on_disk() -> None:
    registry = load(FIXTURES / "bom" / "data")
    assert list(registry.studies.columns[:2]) == ["study_id", "label"]
    assert registry.studies["study_id"].iloc[0] == "zhang2016"


def test_bom_and_crlf_tolerated(tmp_path: Path) -> None:
    data = make(tmp_path, files={
        "outcomes.csv": "\ufeff" + OUTCOMES.replace("\n", "\r\n")})
    assert messages(data) == []
    assert len(load(data).outcomes) == 8


def test_surrounding_spaces_are_stripped(tmp_path: Path) -> None:
    data = make(tmp_path, replace={"outcomes.csv": (",1,7,,", ", 1 , 7 ,,")})
    assert messages(data) == []
    row = load(data).outcomes.iloc[0]
    assert (row["events"], row["total"]) == (1, 7)


def test_optional_files_may_be_absent(tmp_path: Path) -> None:
    data = make(tmp_path, files={"effects.csv": None, "transitions.csv": None})
    assert messages(data) == []
    registry = load(data)
    assert registry.effects.empty and "estimate" in registry.effects.columns
    assert str(registry.effects["estimate"].dtype) == "float64"
    assert registry.transitions.empty and "count" in registry.transitions.columns


def test_optional_columns_may_be_absent_and_are_added(tmp_path: Path) -> None:
    data = make(tmp_path, files={
        "studies.csv": drop_column(drop_column(STUDIES, "agent"), "randomized")})
    assert messages(data) == []
    registry = load(data)
    assert set(registry.studies["agent"]) == {""}
    assert list(registry.studies.columns).count("agent") == 1
    # without `use`, every row is primary: the two screening rows now collide
    data = make(tmp_path / "b", files={
        "outcomes.csv": drop_column(drop_column(OUTCOMES, "note"), "use")})
    assert messages(data) == [
        "data/outcomes.csv:8: use: duplicate primary row for (study_id='verschoor2024', "
        "arm='all', outcome='her2_ctc_screening_yield', subgroup=''); first on line 7 "
        "(mark one use=alternative with a note, or remove it)"]


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    registry = load(make(tmp_path))
    assert list(registry.studies["reviewer"]) == ["ab", "cd", "ab", "cd"]
    selected = registry.select("objective_response", arm=None)
    assert "reviewer" in selected.columns


def test_load_types_and_values(tmp_path: Path) -> None:
    registry = load(make(tmp_path))
    assert isinstance(registry, Registry)
    assert str(registry.studies["year"].dtype) == "int64"
    assert str(registry.outcomes["events"].dtype) == "int64"
    assert str(registry.outcomes["total"].dtype) == "int64"
    assert str(registry.transitions["count"].dtype) == "int64"
    for column in ("estimate", "ci_lower", "ci_upper", "p_value"):
        assert str(registry.effects[column].dtype) == "float64"
    assert registry.effects["ci_lower"].isna().tolist() == [False, True]
    # empty `use` is read as primary; multi-line fields keep their newline
    assert registry.outcomes["use"].tolist().count("primary") == 7
    assert registry.outcomes["quote"].iloc[3] == "PR 5\nof 25"
    assert registry.studies["notes"].iloc[2] == "two-line\nnote"
    assert registry.data_dir == tmp_path / "data"


def _assert_same_registry(a: Registry, b: Registry) -> None:
    from pandas.testing import assert_frame_equal

    for name in ("studies", "outcomes", "effects", "transitions", "outcome_types"):
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert (a.data_dir, a.sha256) == (b.data_dir, b.sha256)


def test_load_with_a_cache_reads_what_it_validated(tmp_path: Path) -> None:
    data = make(tmp_path)
    cache = tmp_path / "cache"
    before = {p: p.read_bytes() for p in data.iterdir()}
    fresh = load(data)
    first = load(data, cache_dir=cache)
    pickles = list(cache.glob("registry-*.pickle"))
    assert len(pickles) == 1
    _assert_same_registry(first, fresh)
    _assert_same_registry(load(data, cache_dir=cache), fresh)  # read from the cache
    assert {p: p.read_bytes() for p in data.iterdir()} == before  # data/ untouched
    # a copy of the registry elsewhere reads the same pickle but keeps its own path
    other = tmp_path / "elsewhere"
    other.mkdir()
    for p in data.iterdir():
        (other / p.name).write_bytes(p.read_bytes())
    assert load(other, cache_dir=cache).data_dir == other


def test_load_cache_follows_edits_and_never_hides_problems(tmp_path: Path) -> None:
    data = make(tmp_path)
    cache = tmp_path / "cache"
    load(data, cache_dir=cache)
    path = data / "outcomes.csv"
    path.write_text(path.read_text().replace("one PR among 7", "one PR among seven"))
    edited = load(data, cache_dir=cache)
    assert "one PR among seven" in edited.outcomes["quote"].tolist()
    assert len(list(cache.glob("registry-*.pickle"))) == 1  # the stale one is removed
    path.write_text(path.read_text().replace(",1,7,", ",9,7,"))  # events > total
    with pytest.raises(RegistryError, match=r"outcomes\.csv"):
        load(data, cache_dir=cache)


def test_load_cache_that_is_corrupt_is_ignored_and_replaced(tmp_path: Path) -> None:
    data = make(tmp_path)
    cache = tmp_path / "cache"
    load(data, cache_dir=cache)
    (pickled,) = cache.glob("registry-*.pickle")
    pickled.write_bytes(b"not a pickle")
    _assert_same_registry(load(data, cache_dir=cache), load(data))
    assert pickled.read_bytes() != b"not a pickle"
    # a cache directory that cannot be created costs time, not the load
    blocked = tmp_path / "file"
    blocked.write_text("")
    _assert_same_registry(load(data, cache_dir=blocked / "cache"), load(data))


def test_sha256_covers_every_csv_file_with_names(tmp_path: Path) -> None:
    data = make(tmp_path)
    expected = hashlib.sha256()
    for name in sorted(BASE):
        content = BASE[name].encode("utf-8")
        expected.update(name.encode() + b"\0" + str(len(content)).encode() + b"\0" + content)
    assert load(data).sha256 == registry_sha256(data) == expected.hexdigest()
    (data / "README.md").write_text("not part of the digest\n")
    assert registry_sha256(data) == expected.hexdigest()
    (data / "effects.csv").write_text(EFFECTS.replace("0.02", "0.03"))
    assert registry_sha256(data) != expected.hexdigest()


# --------------------------------------------------------------------------- one rule each


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
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
     "data/outcomes.csv:2: quote: missing value"),
    ("outcomes.csv", ",a.txt,one PR among 7,", ",,one PR among 7,",
     "data/outcomes.csv:2: source: missing value"),
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
     "data/effects.csv:2: quote: missing value"),
    ("effects.csv", "jacot2019,pfs,", "jacot2020,pfs,",
     "data/effects.csv:2: study_id: unknown study_id 'jacot2020' (not in studies.csv)"),
    # transitions.csv
    ("transitions.csv", ",zero,low,20,", ",zero,HER2-low,20,",
     "data/transitions.csv:2: to_category: 'HER2-low' is not one of zero, low, positive, any"),
    ("transitions.csv", ",zero,low,20,", ",zero,low,-20,",
     "data/transitions.csv:2: count: must not be negative, got -20"),
    ("transitions.csv", ",a.txt,20 became low,", ",a.txt,,",
     "data/transitions.csv:2: quote: missing value"),
    ("transitions.csv", "fehm2021,,zero,any,", "fehm2022,,zero,any,",
     "data/transitions.csv:3: study_id: unknown study_id 'fehm2022' (not in studies.csv)"),
    ("transitions.csv", "fehm2021,,zero,any,", "fehm2021,,zero,low,",
     "data/transitions.csv:3: use: duplicate primary row for (study_id='fehm2021', "
     "subgroup='', from_category='zero', to_category='low'); first on line 2 "
     "(mark one use=alternative with a note, or remove it)"),
])
def test_one_problem_per_rule(tmp_path: Path, file: str, old: str, new: str,
                              expected: str | None) -> None:
    data = make(tmp_path, replace={file: (old, new)})
    assert messages(data) == ([expected] if expected else [])


@pytest.mark.parametrize(("file", "row", "expected"), [
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
])
def test_problem_in_appended_row(tmp_path: Path, file: str, row: str, expected: str) -> None:
    data = make(tmp_path, files={file: BASE[file] + row})
    assert messages(data) == [expected]


def test_duplicate_primary_outcome_row_names_first_line(tmp_path: Path) -> None:
    data = make(tmp_path, files={
        "outcomes.csv": OUTCOMES + "pestrin2012,all,objective_response,,2,7,,a.txt,again,,\n"})
    assert messages(data) == [
        "data/outcomes.csv:11: use: duplicate primary row for (study_id='pestrin2012', "
        "arm='all', outcome='objective_response', subgroup=''); first on line 2 "
        "(mark one use=alternative with a note, or remove it)"]


def test_line_numbers_count_physical_lines_of_multiline_records(tmp_path: Path) -> None:
    # the record on lines 5-6 has a quoted newline; the next record starts on line 7
    data = make(tmp_path, replace={"outcomes.csv": (",8,64,", ",80,64,")})
    assert messages(data) == ["data/outcomes.csv:7: events: events 80 > total 64"]
    # a problem inside the multi-line record is reported where the record starts
    data = make(tmp_path / "b", replace={"outcomes.csv": (",5,25,", ",26,25,")})
    assert messages(data) == ["data/outcomes.csv:5: events: events 26 > total 25"]


def test_outcome_referencing_removed_study(tmp_path: Path) -> None:
    studies = "".join(line for line in STUDIES.splitlines(keepends=True)
                      if not line.startswith("pestrin2012,"))
    data = make(tmp_path, files={"studies.csv": studies})
    assert messages(data) == [
        "data/outcomes.csv:2: study_id: unknown study_id 'pestrin2012' (not in studies.csv)"]


def test_missing_required_column(tmp_path: Path) -> None:
    data = make(tmp_path, files={"outcomes.csv": drop_column(OUTCOMES, "quote")})
    assert messages(data) == ["data/outcomes.csv:1: quote: missing required column"]
    data = make(tmp_path / "b", files={"studies.csv": drop_column(STUDIES, "doi")})
    assert messages(data) == ["data/studies.csv:1: doi: missing required column"]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    data = make(tmp_path, files={"outcomes.csv": None, "outcome_types.csv": ""})
    assert messages(data) == [
        "data/outcome_types.csv:1: empty file (no header row)",
        "data/outcomes.csv:0: file not found",
    ]


def test_missing_studies_file_does_not_flood_references(tmp_path: Path) -> None:
    data = make(tmp_path, files={"studies.csv": None})
    assert messages(data) == ["data/studies.csv:0: file not found"]


def test_header_problems(tmp_path: Path) -> None:
    data = make(tmp_path, files={"outcome_types.csv": OUTCOME_TYPES.replace(
        "outcome,events,total,description", "outcome,events,total,total")})
    assert messages(data) == [
        "data/outcome_types.csv:1: total: duplicate column name",
        "data/outcome_types.csv:1: description: missing required column",
    ]


def test_malformed_csv_on_disk() -> None:
    assert [str(p) for p in validate(FIXTURES / "bad_csv" / "data")] == [
        "data/outcomes.csv:2: malformed CSV: expected 12 fields (as in the header), found 13",
        "data/outcomes.csv:13: malformed CSV: unexpected end of data",
    ]


def test_malformed_quote_is_reported_and_reading_continues(tmp_path: Path) -> None:
    data = make(tmp_path, replace={"outcomes.csv": (",a.txt,one PR among 7,",
                                                    ',a.txt,"one PR" among 7,')})
    data_text = (data / "outcomes.csv").read_text()
    assert '"one PR" among 7' in data_text
    found = messages(data)
    assert found == ["data/outcomes.csv:2: malformed CSV: ',' expected after '\"'"]


def test_non_utf8_bytes_on_disk() -> None:
    assert [str(p) for p in validate(FIXTURES / "bad_utf8" / "data")] == [
        "data/studies.csv:2: label: not valid UTF-8: byte 0xE4 at byte 13 of the line "
        "(file byte offset 176)"]


def test_non_utf8_bytes_line_and_offset(tmp_path: Path) -> None:
    data = make(tmp_path)
    path = data / "outcome_types.csv"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"treated patients,PFR6", b"treated patients,PFR\xff\xfe6"))
    line3 = raw.split(b"\n")[3]
    offset = sum(len(x) + 1 for x in raw.split(b"\n")[:3]) + line3.index(b"PFR6") + 3
    assert messages(data) == [
        f"data/outcome_types.csv:4: description: not valid UTF-8: byte 0xFF at byte "
        f"{line3.index(b'PFR6') + 4} of the line (file byte offset {offset}) "
        "(1 more on this line)"]


def test_every_problem_is_collected(tmp_path: Path) -> None:
    data = make(tmp_path, replace={
        "outcomes.csv": (",1,7,", ",8,7,"),
        "studies.csv": (",2019,", ",1819,"),
        "effects.csv": (",0.5,0.3,0.9,", ",1.5,0.3,0.9,"),
    })
    assert messages(data) == [
        "data/studies.csv:3: year: must be between 1900 and 2100, got 1819",
        "data/outcomes.csv:2: events: events 8 > total 7",
        "data/effects.csv:2: estimate: estimate 1.5 outside its CI [0.3, 0.9]",
    ]
    with pytest.raises(RegistryError) as info:
        load(data)
    assert len(info.value.problems) == 3
    assert str(info.value) == "\n".join(messages(data))


def test_file_shown_as_given_when_relative(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path / "project" / "registry", replace={"outcomes.csv": (",1,7,", ",8,7,")})
    monkeypatch.chdir(tmp_path / "project")
    assert messages(Path("registry/data")) == [
        "registry/data/outcomes.csv:2: events: events 8 > total 7"]


def test_problem_str_without_column() -> None:
    assert str(RegistryProblem("data/x.csv", 3, "", "bad row")) == "data/x.csv:3: bad row"
    assert str(RegistryProblem("data/x.csv", 3, "total", "bad")) == "data/x.csv:3: total: bad"


def test_validate_and_load_never_modify_files(tmp_path: Path) -> None:
    good = make(tmp_path / "good")
    bad = make(tmp_path / "bad", replace={"outcomes.csv": (",1,7,", ",8,7,")})
    before = {d: file_state(d) for d in (good, bad)}
    validate(good)
    validate(bad)
    load(good)
    with pytest.raises(RegistryError):
        load(bad)
    assert {d: file_state(d) for d in (good, bad)} == before


@settings(max_examples=60, deadline=None)
@given(events=st.integers(-3, 12), total=st.integers(-3, 12))
def test_count_rules_hold_for_any_integers(tmp_path_factory: pytest.TempPathFactory,
                                           events: int, total: int) -> None:
    data = make(tmp_path_factory.mktemp("h"),
                replace={"outcomes.csv": (",1,7,", f",{events},{total},")})
    expected = []
    if events < 0:
        expected.append(f"data/outcomes.csv:2: events: must not be negative, got {events}")
    if total < 0:
        expected.append(f"data/outcomes.csv:2: total: must not be negative, got {total}")
    if total == 0:
        expected.append("data/outcomes.csv:2: total: must be greater than 0")
    if 0 <= events and 0 <= total and events > total:
        expected.append(f"data/outcomes.csv:2: events: events {events} > total {total}")
    assert sorted(messages(data)) == sorted(expected)


# --------------------------------------------------------------------------- select


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return load(make(tmp_path))


def test_select_whole_population_primary_sorted(registry: Registry) -> None:
    rows = registry.select("objective_response")
    assert rows["study_id"].tolist() == ["pestrin2012", "jacot2019", "verschoor2024",
                                         "verschoor2024"]
    assert rows["arm"].tolist() == ["all", "all", "taxane_only", "trastuzumab_taxane"]
    assert rows["events"].tolist() == [1, 0, 5, 4]
    assert rows.index.tolist() == [0, 1, 2, 3]
    for column in ("label", "year", "her2_method_group", "agent", "setting", "reviewer"):
        assert column in rows.columns
    # clashing study column names get a suffix; the outcome's own columns win
    assert rows["source"].tolist() == ["a.txt"] * 4
    assert "source_study" in rows.columns
    assert rows["label"].tolist()[0] == "Pestrin 2012"


def test_select_filters(registry: Registry) -> None:
    assert registry.select("objective_response", arm="trastuzumab_taxane")[
        "events"].tolist() == [4]
    assert len(registry.select("objective_response", subgroup=None)) == 5
    sub = registry.select("objective_response", subgroup="hormone_receptor=positive")
    assert sub[["study_id", "total"]].values.tolist() == [["jacot2019", 8]]
    assert registry.select("her2_ctc_screening_yield")["total"].tolist() == [64]
    assert registry.select("her2_ctc_screening_yield", use="alternative")[
        "total"].tolist() == [63]
    assert sorted(registry.select("her2_ctc_screening_yield", use=None)["total"]) == [63, 64]
    assert registry.select("objective_response", studies=["jacot2019"])[
        "study_id"].tolist() == ["jacot2019"]
    assert registry.select("objective_response", studies="jacot2019")[
        "study_id"].tolist() == ["jacot2019"]
    assert registry.select("pfr6", studies=["pestrin2012"]).empty


def test_select_rejects_unknown_values(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"unknown outcome 'orr'; allowed: "
                                         r"her2_ctc_screening_yield, objective_response, pfr6"):
        registry.select("orr")
    with pytest.raises(ValueError, match=r"use must be one of primary, alternative or None, "
                                         r"got 'both'"):
        registry.select("pfr6", use="both")
    with pytest.raises(ValueError, match=r"unknown arm 'trastuzumab'"):
        registry.select("pfr6", arm="trastuzumab")
    with pytest.raises(ValueError, match=r"unknown study_id\(s\) 'nobody2020'"):
        registry.select("pfr6", studies=["nobody2020"])


# --------------------------------------------------------------------------- rows_digest


def digest(data: Path, outcome: str = "objective_response", **filters: object) -> str:
    return load(data).rows_digest(outcome, **filters)  # type: ignore[arg-type]


@pytest.mark.parametrize(("file", "old", "new", "changes"), [
    # rows it reads
    ("outcomes.csv", ",1,7,", ",2,7,", True),
    ("outcomes.csv", ",a.txt,one PR among 7,", ",a.txt,one PR among seven,", True),
    ("studies.csv", "Pestrin 2012", "Pestrin et al. 2012", True),
    ("studies.csv", ",FISH,lapatinib,no,a.txt,,ab", ",FISH,lapatinib,no,a.txt,,zz", True),
    # rows it does not read
    ("outcomes.csv", "8 of 64 screened", "eight of 64 screened", False),
    ("outcomes.csv", "none of 8 HR+", "none of eight HR+", False),
    ("outcomes.csv", "PFR6 4 of 8", "PFR6 four of 8", False),
    ("studies.csv", "Fehm 2021", "Fehm et al. 2021", False),
    ("effects.csv", ",0.02,no,", ",0.03,no,", False),
    ("outcome_types.csv", "PFR6", "progression-free rate", False),
])
def test_rows_digest_changes_iff_read_rows_change(tmp_path: Path, file: str, old: str,
                                                  new: str, changes: bool) -> None:
    before = digest(make(tmp_path / "a"))
    after = digest(make(tmp_path / "b", replace={file: (old, new)}))
    assert (before != after) is changes


def test_rows_digest_ignores_row_order_and_unrelated_additions(tmp_path: Path) -> None:
    base = digest(make(tmp_path / "a"))
    lines = OUTCOMES.splitlines(keepends=True)
    reordered = "".join([lines[0], lines[2], lines[1], *lines[3:]])
    assert digest(make(tmp_path / "b", files={"outcomes.csv": reordered})) == base
    added = OUTCOMES + ("pestrin2012,all,objective_response,,2,7,,a.txt,other reading,"
                        "alternative,abstract differs\n"
                        "pestrin2012,all,pfr6,,2,7,,a.txt,PFR6 2 of 7,,\n")
    assert digest(make(tmp_path / "c", files={"outcomes.csv": added})) == base
    new_row = OUTCOMES + "fehm2021,all,objective_response,,3,30,,a.txt,3 of 30,,\n"
    assert digest(make(tmp_path / "d", files={"outcomes.csv": new_row})) != base


def test_rows_digest_follows_filters(tmp_path: Path) -> None:
    data = make(tmp_path / "a")
    edited = make(tmp_path / "b", replace={"outcomes.csv": (",4,8,,a.txt,PR 4 of 8",
                                                            ",3,8,,a.txt,PR 3 of 8")})
    # the edited row is in arm trastuzumab_taxane only
    assert digest(data, arm="taxane_only") == digest(edited, arm="taxane_only")
    assert digest(data, arm="trastuzumab_taxane") != digest(edited, arm="trastuzumab_taxane")
    assert digest(data, studies=["pestrin2012"]) == digest(edited, studies=["pestrin2012"])
    assert digest(data, subgroup="hormone_receptor=positive") == digest(
        edited, subgroup="hormone_receptor=positive")
    assert digest(data) != digest(data, subgroup=None)




def test_arm_role_must_be_experimental_or_control(tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(BASE["outcomes.csv"])))
    rows[0].append("arm_role")
    for row in rows[1:]:
        row.append("")
    rows[1][-1] = "treated"
    rows[2][-1] = "control"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    data = make(tmp_path, files={"outcomes.csv": out.getvalue()})
    assert messages(data) == [
        "data/outcomes.csv:2: arm_role: 'treated' is not one of experimental, control"]
