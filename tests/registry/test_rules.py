"""Tests for evidence.registry.rules (and the reading of evidence.registry.csvfile): one
malformed registry per rule, with its exact message; the one parser of the subgroup grammar.

Most registries are built in ``tmp_path`` from the small good base of
``registry_cases.py`` (which also lists the one-edit-per-rule cases); the
encoding and CSV-structure cases are files on disk under
``tests/fixtures/registry/`` (see its README.md; ``make_fixtures.py`` regenerates them).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registry_cases import (
    APPENDED_ROW_CASES,
    BASE,
    EFFECTS,
    OUTCOME_TYPES,
    OUTCOMES,
    RULE_CASES,
    STUDIES,
    drop_column,
    make,
)

from evidence.registry import (
    RegistryError,
    RegistryProblem,
    load,
    parse_subgroup,
    validate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"


def messages(data: Path) -> list[str]:
    return [str(p) for p in validate(data)]


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


@pytest.mark.parametrize(("file", "old", "new", "expected"), RULE_CASES)
def test_one_problem_per_rule(tmp_path: Path, file: str, old: str, new: str,
                              expected: str | None) -> None:
    data = make(tmp_path, replace={file: (old, new)})
    assert messages(data) == ([expected] if expected else [])


@pytest.mark.parametrize(("file", "row", "expected"), APPENDED_ROW_CASES)
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
        "data/outcomes.csv:2: malformed CSV: expected 17 fields (as in the header), found 18",
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




def test_parse_subgroup() -> None:
    assert parse_subgroup("") == {}
    assert parse_subgroup("hormone_receptor=positive") == {
        "hormone_receptor": "positive"}
    assert parse_subgroup("a=1;b=2") == {"a": "1", "b": "2"}
    with pytest.raises(ValueError, match="not key=value"):
        parse_subgroup("hormone_receptor")
    with pytest.raises(ValueError, match="repeated"):
        parse_subgroup("a=1;a=2")



def test_parse_subgroup_rejects_what_the_validator_rejects() -> None:
    with pytest.raises(ValueError, match="is not a slug"):
        parse_subgroup("Hormone=positive")
    with pytest.raises(ValueError, match="bad part"):
        parse_subgroup("a=1;b")
    assert parse_subgroup(" a = 1 ; b = 2 ") == {"a": "1", "b": "2"}


def _with_arm_roles(roles: dict[tuple[str, str], str]) -> str:
    """OUTCOMES with an ``arm_role`` column: ``roles[(study_id, arm)]`` for the response and
    PFR6 rows, empty elsewhere."""
    rows = list(csv.reader(io.StringIO(OUTCOMES)))
    rows[0].append("arm_role")
    for row in rows[1:]:
        row.append(roles.get((row[0], row[1]), "") if row[2] != "her2_ctc_screening_yield"
                   else "")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_a_treatment_row_without_arm_role_is_an_error(tmp_path: Path) -> None:
    """A row the analyses could never select (they select treatment arms by role) is not
    silently accepted."""
    types = OUTCOME_TYPES.replace("outcome,events,total,description\n",
                                  "outcome,events,total,description,arm_role_required\n")
    types = types.replace(",ORR\n", ",ORR,yes\n").replace(",yield\n", ",yield,\n")
    types = types.replace(",PFR6\n", ",PFR6,yes\n")
    roles = {("pestrin2012", "all"): "experimental", ("jacot2019", "all"): "experimental",
             ("verschoor2024", "trastuzumab_taxane"): "experimental",
             ("verschoor2024", "taxane_only"): "control"}
    data = make(tmp_path / "ok", files={"outcome_types.csv": types,
                                        "outcomes.csv": _with_arm_roles(roles)})
    assert messages(data) == []
    del roles[("pestrin2012", "all")]
    data = make(tmp_path / "bad", files={"outcome_types.csv": types,
                                         "outcomes.csv": _with_arm_roles(roles)})
    assert [m for m in messages(data) if ":2:" in m] == [
        "data/outcomes.csv:2: arm_role: missing value: 'objective_response' is a treatment "
        "outcome (outcome_types.csv: arm_role_required=yes), so every row needs experimental "
        "or control (the arm given the anti-HER2 therapy, or its comparator)"]


EXTERNAL = ("pestrin2012,all,pfr6,,2,7,,doi:10.1007/s10549-012-2045-1,,,,"
            "https://pubmed.ncbi.nlm.nih.gov/22528962/,\"Abstract, Results\",2/7 (29%),"
            "2026-12-01,primary\n")


def _external(tmp_path: Path, **change: str) -> list[str]:
    """Messages for the base registry plus one external row, with cells changed."""
    extra = ["url", "locator", "printed", "retrieved", "source_level"]
    rows = list(csv.reader(io.StringIO(OUTCOMES)))
    rows[0] += extra
    for row in rows[1:]:
        row += [""] * len(extra)
    row = next(csv.DictReader(io.StringIO(",".join(rows[0]) + "\n" + EXTERNAL)))
    row.update(change)
    rows.append([row[c] for c in rows[0]])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return messages(make(tmp_path, files={"outcomes.csv": out.getvalue()}))


@pytest.mark.parametrize(("change", "message"), [
    ({}, None),
    ({"source": "doi:10.1007"}, "source: 'doi:10.1007' is neither a seed text's file name"),
    ({"source": "PMID 22528962"}, "source: 'PMID 22528962' is neither"),
    ({"source": "pmid:22528962"}, None),
    ({"source": "nct:NCT01619111"}, None),
    ({"quote": "Two of seven patients were progression-free"},
     "quote: must be empty for an external source"),
    ({"url": ""}, "url: missing value: required for a row from doi:10.1007/s10549-012-2045-1"),
    ({"url": "pubmed 22528962"}, "url: 'pubmed 22528962' is not an http(s) URL"),
    ({"locator": ""}, "locator: missing value"),
    ({"printed": ""}, "printed: missing value"),
    ({"printed": "two of the seven patients treated with lapatinib were still free of "
                 "progression at six months"},
     "printed: 16 words: give the figures as printed, not a sentence (at most 12 words)"),
    ({"retrieved": "01/12/2026"}, "retrieved: '01/12/2026' is not a date YYYY-MM-DD"),
    ({"retrieved": "1970-01-01"}, "retrieved: 1970-01-01 is before 1990-01-01"),
    ({"source_level": "tertiary"}, "source_level: 'tertiary' is not one of primary, secondary"),
])
def test_external_rows_need_complete_provenance(tmp_path: Path, change: dict[str, str],
                                                message: str | None) -> None:
    found = _external(tmp_path, **change)
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and message in found[0], found


def test_two_reports_of_one_cohort_cannot_both_be_pooled(tmp_path: Path) -> None:
    studies = STUDIES.replace(",reviewer\n", ",reviewer,cohort\n", 1)
    lines = studies.splitlines(keepends=True)
    studies = lines[0] + "".join(
        line.rstrip("\n") + (",detect\n" if line.startswith(("pestrin2012", "jacot2019"))
                             else ",\n") for line in lines[1:])
    outcomes = OUTCOMES.replace("jacot2019,all,objective_response,,0,11,",
                                "jacot2019,all,objective_response,,0,11,")
    found = messages(make(tmp_path, files={"studies.csv": studies, "outcomes.csv": outcomes}))
    assert found == [
        "data/outcomes.csv:3: use: duplicate primary row for (study_id='jacot2019', "
        "arm='all', outcome='objective_response', subgroup=''); first on line 2; both are "
        "reports of cohort 'detect' (pestrin2012 and jacot2019) (mark one use=alternative "
        "with a note, or remove it)"]


HARMS = """\
study_id,arm,arm_role,harm,definition,events,total,source,quote
verschoor2024,trastuzumab_taxane,experimental,grade4plus_ae,grade 4 or higher,0,8,a.txt,no grade 4
fehm2021,all,,early_stop,stopped early by the committee,,,a.txt,stopped early
"""
REVIEWS = """\
review_id,citation,quantity,estimate,ci_lower,ci_upper,k,source,url,locator,printed,retrieved
rev2018,"A, B (2018) A review",her2_loss_pct,21.3,14.3,30.5,,doi:10.1093/jnci/djx273,\
https://example.org/r,"Abstract, Results",21.3% (14.3% to 30.5%),2026-12-01
"""


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    ("harms.csv", ",0,8,", ",0,8,", None),
    ("harms.csv", ",0,8,", ",9,8,", "data/harms.csv:2: events: events 9 > total 8"),
    ("harms.csv", ",0,8,", ",0,,", "data/harms.csv:2: total: missing value: give both "
                                   "events and total, or neither"),
    ("harms.csv", ",0,8,", ",0,0,", "data/harms.csv:2: total: must be greater than 0"),
    ("harms.csv", "verschoor2024,", "verschor2024,",
     "data/harms.csv:2: study_id: unknown study_id 'verschor2024' (not in studies.csv)"),
    ("harms.csv", ",experimental,", ",treated,", "data/harms.csv:2: arm_role: 'treated' is "
                                                 "not one of"),
    ("harms.csv", ",grade4plus_ae,", ",Grade 4+,", "data/harms.csv:2: harm: 'Grade 4+' is "
                                                   "not a slug"),
    ("harms.csv", ",a.txt,no grade 4", ",a.txt,", "data/harms.csv:2: quote: missing value"),
    ("reviews.csv", ",21.3,", ",21.3,", None),
    ("reviews.csv", ",21.3,", ",about 21,", "data/reviews.csv:2: estimate: must be a number"),
    ("reviews.csv", ",2026-12-01", ",", "data/reviews.csv:2: retrieved: missing value"),
    ("reviews.csv", "rev2018,", "Rev 2018,", "data/reviews.csv:2: review_id: 'Rev 2018' is "
                                             "not a slug"),
])
def test_harms_and_reviews_rules(tmp_path: Path, file: str, old: str, new: str,
                                 message: str | None) -> None:
    files = {"harms.csv": HARMS, "reviews.csv": REVIEWS}
    assert files[file].count(old) == 1
    files[file] = files[file].replace(old, new)
    found = messages(make(tmp_path, files=files))
    if message is None:
        assert found == []
    else:
        assert any(m.startswith(message) for m in found), found


@pytest.mark.parametrize(("value", "expected"), [
    ("58", None),
    ("", None),
    ("0", "data/effects.csv:2: patients: must be at least 1 (or empty: not stated)"),
    ("5.5", "data/effects.csv:2: patients: must be a non-negative integer, got '5.5'"),
    ("-3", "data/effects.csv:2: patients: must not be negative, got -3"),
])
def test_effects_patients_is_an_optional_positive_count(tmp_path: Path, value: str,
                                                        expected: str | None) -> None:
    lines = EFFECTS.splitlines()
    body = [lines[0] + ",patients", lines[1] + f",{value}", lines[2] + ","]
    data = make(tmp_path, files={"effects.csv": "\n".join(body) + "\n"})
    assert messages(data) == ([expected] if expected else [])


@pytest.mark.parametrize(("value", "role", "expected"), [
    ("0.34", "experimental", None),
    ("", "control", None),
    ("0", "experimental", "data/outcomes.csv:2: printed_p: must be in (0, 1], got 0"),
    ("1.5", "experimental", "data/outcomes.csv:2: printed_p: must be in (0, 1], got 1.5"),
    ("0.34", "control", "data/outcomes.csv:2: printed_p: belongs on the experimental arm's "
                        "row (the p-value of its comparison with the control arm)"),
])
def test_outcomes_printed_p_is_a_p_value_on_the_experimental_row(
        tmp_path: Path, value: str, role: str, expected: str | None) -> None:
    rows = ("study_id,arm,outcome,subgroup,events,total,derived,source,quote,use,note,"
            "arm_role,printed_p\n"
            f"verschoor2024,trastuzumab_taxane,objective_response,,4,8,,a.txt,PR 4 of 8,,,"
            f"{role},{value}\n"
            "verschoor2024,taxane_only,objective_response,,5,25,,a.txt,PR 5 of 25,,,control,\n")
    data = make(tmp_path, files={"outcomes.csv": rows})
    assert messages(data) == ([expected] if expected else [])
