"""Tests for evidence.registry.store: the validated tables, their cache, the one query path
and the digest of what a query read.

Registries are built in ``tmp_path`` from the small good base of ``registry_cases.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from registry_cases import (
    BASE,
    EFFECTS,
    OUTCOMES,
    STUDIES,
    drop_column,
    file_state,
    make,
)

from evidence.registry import (
    Registry,
    RegistryError,
    frame_digest,
    load,
    query_of,
    registry_sha256,
    validate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"


def _assert_same_registry(a: Registry, b: Registry) -> None:
    from pandas.testing import assert_frame_equal

    for name in ("studies", "outcomes", "effects", "transitions", "outcome_types"):
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert (a.data_dir, a.sha256) == (b.data_dir, b.sha256)


def messages(data: Path) -> list[str]:
    return [str(p) for p in validate(data)]


# --------------------------------------------------------------------------- good input


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
    selected = registry.outcome_table("objective_response")
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


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return load(make(tmp_path))


def test_outcome_table_whole_population_primary_sorted(registry: Registry) -> None:
    rows = registry.outcome_table("objective_response")
    assert rows["study_id"].tolist() == ["pestrin2012", "jacot2019", "verschoor2024",
                                         "verschoor2024"]
    assert rows["arm"].tolist() == ["all", "all", "taxane_only", "trastuzumab_taxane"]
    assert rows["events"].tolist() == [1, 0, 5, 4]
    assert rows.index.tolist() == [0, 1, 2, 3]
    for column in ("label", "year", "her2_method_group", "agent", "setting", "reviewer"):
        assert column in rows.columns
    # the outcome's own source and note columns; the study's are left out
    assert rows["source"].tolist() == ["a.txt"] * 4
    assert "source_study" not in rows.columns and "notes" not in rows.columns
    assert rows["label"].tolist()[0] == "Pestrin 2012"


def test_outcome_table_and_query_filters(registry: Registry) -> None:
    assert registry.outcome_table("objective_response", arm="trastuzumab_taxane")[
        "events"].tolist() == [4]
    assert len(registry.outcome_table("objective_response", subgroup=None)) == 5
    sub = registry.outcome_table("objective_response", subgroup="hormone_receptor=positive")
    assert sub[["study_id", "total"]].values.tolist() == [["jacot2019", 8]]
    assert registry.outcome_table("her2_ctc_screening_yield")["total"].tolist() == [64]
    assert registry.outcome_table("her2_ctc_screening_yield", use="alternative")[
        "total"].tolist() == [63]
    both = [registry.query("outcomes", use=u, outcome="her2_ctc_screening_yield")
            for u in ("primary", "alternative")]
    assert sorted(int(f["total"].iloc[0]) for f in both) == [63, 64]
    assert registry.query("outcomes", outcome="objective_response", study_id="jacot2019",
                          subgroup="")["study_id"].tolist() == ["jacot2019"]
    assert registry.query("outcomes", outcome="pfr6", study_id="pestrin2012").empty


def test_queries_reject_unknown_values(registry: Registry) -> None:
    with pytest.raises(LookupError, match=r"unknown outcome 'orr' .*known: "
                                          r"her2_ctc_screening_yield, objective_response, pfr6"):
        registry.outcome_table("orr")
    with pytest.raises(ValueError, match=r"use must be one of primary, alternative, "
                                         r"got 'both'"):
        registry.outcome_table("pfr6", use="both")
    with pytest.raises(LookupError, match=r"no registry rows for outcome='pfr6', "
                                          r"arm='trastuzumab'"):
        registry.outcome_table("pfr6", arm="trastuzumab")
    with pytest.raises(ValueError, match=r"unknown table 'results'"):
        registry.query("results")
    with pytest.raises(KeyError, match=r"outcomes.csv has no column 'colour'"):
        registry.query("outcomes", colour="red")


# --------------------------------------------------------------------------- digest


def digest(data: Path, outcome: str = "objective_response", **filters: object) -> str:
    return load(data).digest(query_of("outcomes", outcome=outcome, **filters))


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
def test_digest_changes_iff_read_rows_change(tmp_path: Path, file: str, old: str,
                                             new: str, changes: bool) -> None:
    before = digest(make(tmp_path / "a"), subgroup="")
    after = digest(make(tmp_path / "b", replace={file: (old, new)}), subgroup="")
    assert (before != after) is changes


def test_digest_ignores_unrelated_additions_and_follows_row_order(tmp_path: Path) -> None:
    base = digest(make(tmp_path / "a"), subgroup="")
    added = OUTCOMES + ("pestrin2012,all,objective_response,,2,7,,a.txt,other reading,"
                        "alternative,abstract differs\n"
                        "pestrin2012,all,pfr6,,2,7,,a.txt,PFR6 2 of 7,,\n")
    assert digest(make(tmp_path / "c", files={"outcomes.csv": added}), subgroup="") == base
    new_row = OUTCOMES + "fehm2021,all,objective_response,,3,30,,a.txt,3 of 30,,\n"
    assert digest(make(tmp_path / "d", files={"outcomes.csv": new_row}), subgroup="") != base
    # the rows a query reads reach the analysis in file order, so their order counts
    lines = OUTCOMES.splitlines(keepends=True)
    reordered = "".join([lines[0], lines[2], lines[1], *lines[3:]])
    assert digest(make(tmp_path / "e", files={"outcomes.csv": reordered}), subgroup="") != base


def test_digest_follows_filters(tmp_path: Path) -> None:
    data = make(tmp_path / "a")
    edited = make(tmp_path / "b", replace={"outcomes.csv": (",4,8,,a.txt,PR 4 of 8",
                                                            ",3,8,,a.txt,PR 3 of 8")})
    # the edited row is in arm trastuzumab_taxane only
    assert digest(data, arm="taxane_only") == digest(edited, arm="taxane_only")
    assert digest(data, arm="trastuzumab_taxane") != digest(edited, arm="trastuzumab_taxane")
    assert digest(data, study_id="pestrin2012") == digest(edited, study_id="pestrin2012")
    assert digest(data, subgroup="hormone_receptor=positive") == digest(
        edited, subgroup="hormone_receptor=positive")
    assert digest(data, subgroup="") != digest(data)


def test_frame_digest_sees_every_cell_column_and_missing_value() -> None:
    base = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    digest = frame_digest(base)
    assert frame_digest(base.copy()) == digest
    variants = [
        pd.DataFrame({"a": ["x", "z"], "b": [1, 2]}),          # a value
        pd.DataFrame({"a": ["x", "y"], "c": [1, 2]}),          # a column name
        pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}),      # a dtype
        pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})[["b", "a"]],  # column order
        pd.DataFrame({"a": ["y", "x"], "b": [2, 1]}),          # row order
        pd.DataFrame({"a": ["x\x1fy"], "b": [1]}),             # separators in a cell
    ]
    assert len({digest, *(frame_digest(v) for v in variants)}) == len(variants) + 1
    empty = pd.DataFrame({"a": ["", "y"]})
    missing = pd.DataFrame({"a": [np.nan, "y"]}, dtype=object)
    assert frame_digest(empty) != frame_digest(missing)




def test_a_list_filter_keeps_rows_equal_to_any_value(registry: Registry) -> None:
    query = query_of("studies", study_id=("pestrin2012", "jacot2019", "pestrin2012"))
    # recorded sorted and without repeats: the same selection is the same query
    assert query["filters"] == {"study_id": ["jacot2019", "pestrin2012"]}
    assert query == query_of("studies", study_id=["pestrin2012", "jacot2019"])
    assert sorted(registry.rows(query)["study_id"]) == ["jacot2019", "pestrin2012"]
    assert registry.query("studies", study_id=[]).empty


def test_a_list_filter_digest_ignores_other_studies(tmp_path: Path) -> None:
    query = query_of("studies", study_id=["pestrin2012"])
    base = load(make(tmp_path / "a")).digest(query)
    other = load(make(tmp_path / "b", replace={"studies.csv": ("Fehm 2021", "Fehm et al. 2021")}))
    assert other.digest(query) == base
    same = load(make(tmp_path / "c", replace={"studies.csv": ("Pestrin 2012", "Pestrin et al.")}))
    assert same.digest(query) != base
