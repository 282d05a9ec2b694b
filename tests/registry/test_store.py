"""Tests for evidence.registry.store: one malformed registry per rule, exact messages.

Most registries are built in ``tmp_path`` from the small good base of
``registry_cases.py`` (which also lists the one-edit-per-rule cases); the
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
from registry_cases import (
    APPENDED_ROW_CASES,
    BASE,
    EFFECTS,
    OUTCOME_TYPES,
    OUTCOMES,
    RULE_CASES,
    STUDIES,
    drop_column,
    file_state,
    make,
)

from evidence.registry.store import (
    Registry,
    RegistryError,
    RegistryProblem,
    load,
    registry_sha256,
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
