"""evidence.book.versions: what a release records, reading records, each estimate across
releases, and the history figure (evidence.book.figures.history)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evidence.book import versions
from evidence.book.figures.history import estimate_history
from evidence.book.versions import (
    analysis_entry,
    certainty_of,
    history_series,
    parse_version,
    read_records,
    result_studies,
    row_digest,
    study_digests,
)

#: A pooled-proportion result as the pool_proportions template saves it (trimmed).
POOLED = {"analysis_id": "orr", "outcome": "objective_response", "measure": "PLO",
          "method": "GLMM", "test": "t", "k": 2, "patients": 22,
          "studies": [{"study_id": "beta2015", "events": 2, "total": 12},
                      {"study_id": "alpha2010", "events": 1, "total": 10}],
          "pooled": {"estimate": 0.14, "ci_lower": 0.05, "ci_upper": 0.33,
                     "pi_lower": None, "pi_upper": None}}


def record(version: str, **analyses: dict) -> dict:
    return {"format": 1, "version": version, "date": "2026-01-01", "note": "n",
            "registry_sha256": "r" + version, "last_search": "2025-12-31", "studies": {},
            "analyses": analyses}


def entry(estimate: float, lo: float, hi: float, k: int = 3, **extra: object) -> dict:
    return {"title": "Response", "scale": "proportion", "measure": "PLO", "k": k,
            "estimate": estimate, "ci_lower": lo, "ci_upper": hi, **extra}


def test_versions_are_three_numbers_ordered_as_numbers() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.3") > parse_version("1.0.0")
    for bad in ("1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", "1.0.0 ", ""):
        with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
            parse_version(bad)


def test_row_digest_sees_values_not_dtypes_column_order_or_empty_columns() -> None:
    base = row_digest({"study_id": "a", "events": 3, "note": ""})
    assert row_digest({"events": 3.0, "study_id": "a"}) == base
    assert row_digest({"study_id": "a", "events": np.int64(3), "extra": None,
                       "other": float("nan")}) == base
    assert row_digest({"study_id": "a", "events": 4}) != base
    assert row_digest({"study_id": "a", "events": 3, "note": "read again"}) != base
    assert row_digest({"study_id": "a", "events": 3.5}) != row_digest(
        {"study_id": "a", "events": 3})


def test_study_digests_per_table_ignore_row_order_and_follow_each_row() -> None:
    studies = pd.DataFrame({"study_id": ["a", "b"], "label": ["A 2010", "B <i>2011</i>"]})
    outcomes = pd.DataFrame({"study_id": ["a", "a", "b"], "events": [1, 2, 3],
                             "total": [10, 10, 30]})
    screening = pd.DataFrame({"study_id": ["a", ""], "record_id": ["r1", "r2"]})
    tables = {"studies": studies, "outcomes": outcomes, "screening": screening}
    got = study_digests(tables)
    assert list(got) == ["a", "b"]
    assert got["b"]["label"] == "B <i>2011</i>"
    assert {t: v["rows"] for t, v in got["a"]["tables"].items()} == {
        "outcomes": 2, "screening": 1, "studies": 1}
    assert "screening" not in got["b"]["tables"]  # a record without a study is no study's
    reordered = {**tables, "outcomes": outcomes.iloc[[2, 1, 0]]}
    assert study_digests(reordered) == got
    edited = {**tables, "outcomes": outcomes.assign(events=[1, 2, 4])}
    after = study_digests(edited)
    assert after["a"] == got["a"]
    assert after["b"]["tables"]["outcomes"] != got["b"]["tables"]["outcomes"]
    assert after["b"]["tables"]["studies"] == got["b"]["tables"]["studies"]


def test_result_studies_reads_the_studies_an_analysis_includes() -> None:
    assert result_studies(POOLED) == ["alpha2010", "beta2015"]
    assert result_studies({"effects": [{"study_id": "x"}, {"study_id": "y"}]}) == ["x", "y"]
    assert result_studies({"trials": [{"study_id": "t"}]}) == ["t"]
    assert result_studies({"study_id": "shi2023", "rates": []}) == ["shi2023"]
    assert result_studies({"rows": [{"analysis": "x"}]}) == []


def test_certainty_comes_from_the_result_or_the_summary_and_is_a_grade_level() -> None:
    assert certainty_of("orr", "Response", {"certainty": "Moderate"}) == "moderate"
    assert certainty_of("orr", "Response", {"certainty": {"level": "very low"}}) == "very low"
    summary = {"rows": [{"analysis": "Response", "certainty": "low"},
                        {"analysis": "Other", "certainty": "high"}]}
    assert certainty_of("orr", "Response", {}, summary) == "low"
    by_id = {"rows": [{"analysis_id": "orr", "analysis": "renamed", "certainty": "high"}]}
    assert certainty_of("orr", "Response", {}, by_id) == "high"
    notes = {"rows": [{"analysis": "Response", "certainty": "only 2 studies"}]}
    assert certainty_of("orr", "Response", {}, notes) is None  # a note is not a level
    mixed = {"rows": [{"analysis": "Response", "certainty": "low"},
                      {"analysis": "Response", "certainty": "high"}]}
    assert certainty_of("orr", "Response", {}, mixed) is None
    assert certainty_of("orr", "Response", {"certainty": "high"}, mixed) == "high"


def test_analysis_entry_of_a_pooled_and_of_an_unpooled_result() -> None:
    got = analysis_entry("orr", {**POOLED, "claims": ["Few respond."]}, title="Response",
                         template="pool_proportions")
    assert got == {"title": "Response", "template": "pool_proportions",
                   "outcome": "objective_response", "measure": "PLO", "scale": "proportion",
                   "method": "GLMM", "test": "t", "k": 2, "participants": 22,
                   "estimate": 0.14, "ci_lower": 0.05, "ci_upper": 0.33, "pi_lower": None,
                   "pi_upper": None, "certainty": None, "claims": ["Few respond."],
                   "studies": ["alpha2010", "beta2015"]}
    flat = analysis_entry("flow", {"trials": [{"study_id": "t"}], "k": 4}, title="Flow",
                          template="flow")
    assert flat["k"] is None and flat["estimate"] is None and flat["studies"] == ["t"]
    ratio = analysis_entry("hr", {"measure": "HR", "k": 2, "pooled": {"estimate": 0.5}},
                           title="HR", template="hazard_ratios")
    assert ratio["scale"] == "ratio" and ratio["participants"] is None


def test_snapshot_leaves_out_the_pages_about_versions_and_is_deterministic() -> None:
    results = {"orr": POOLED, "whats_new": {"diff": {}}, "summary": {"rows": []}}
    templates = {"orr": "pool_proportions", "whats_new": "whats_new", "summary": "summary"}
    tables = {"studies": pd.DataFrame({"study_id": ["alpha2010"], "label": ["Alpha"]})}
    snap = versions.snapshot(results, {"orr": "Response"}, templates, tables,
                             registry_sha256="abc", last_search=None)
    assert list(snap["analyses"]) == ["orr", "summary"]
    assert snap["registry_sha256"] == "abc" and snap["last_search"] is None
    assert json.dumps(snap, sort_keys=True) == json.dumps(versions.snapshot(
        results, {"orr": "Response"}, templates, tables, registry_sha256="abc",
        last_search=None), sort_keys=True)


def test_last_search_is_the_latest_identification_search() -> None:
    searches = pd.DataFrame({"search_id": ["s1", "s2", "s3"],
                             "date": ["2025-01-02", "2025-03-04", "2025-05-06"],
                             "purpose": ["", "identification", "appraisal"]})
    assert versions.last_search(searches) == "2025-03-04"
    assert versions.last_search(searches.iloc[[2]]) is None
    assert versions.last_search(searches.iloc[0:0]) is None


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_read_records_orders_by_version_and_names_bad_files(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{v}.json", record(v)) for v in ("1.10.0", "1.2.0", "1.9.0")]
    assert [r["version"] for r in read_records(paths)] == ["1.2.0", "1.9.0", "1.10.0"]
    assert versions.latest(read_records(paths))["version"] == "1.10.0"
    assert versions.latest([]) is None
    wrong = write(tmp_path / "2.0.0.json", record("2.0.1"))
    with pytest.raises(ValueError, match=r"2\.0\.0\.json: version: '2\.0\.1' differs"):
        read_records([wrong])
    old = write(tmp_path / "3.0.0.json", {**record("3.0.0"), "format": 0})
    with pytest.raises(ValueError, match=r"3\.0\.0\.json: format"):
        read_records([old])
    (tmp_path / "4.0.0.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"4\.0\.0\.json: not a readable release record"):
        read_records([tmp_path / "4.0.0.json"])
    named = write(tmp_path / "latest.json", {**record("latest")})
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        read_records([named])


def test_release_table_lists_newest_first_with_notes() -> None:
    table = versions.release_table([record("1.0.0"), {**record("1.1.0"), "note": "<b>x</b>"}])
    assert table["Version"].tolist() == ["1.1.0", "1.0.0"]
    assert table["Note"].tolist() == ["<b>x</b>", "n"]


def test_history_series_one_point_per_release_and_this_build_when_it_differs() -> None:
    records = [record("1.0.0", orr=entry(0.1, 0.05, 0.2), one=entry(0.3, 0.1, 0.6, k=1)),
               record("1.1.0", orr=entry(0.12, 0.06, 0.22))]
    same = history_series(records, {"orr": entry(0.12, 0.06, 0.22)})
    assert [s.analysis_id for s in same] == ["orr"]  # never pooled: no series
    assert [p.version for p in same[0].points] == ["1.0.0", "1.1.0"]
    assert same[0].current is None
    moved = history_series(records, {"orr": entry(0.15, 0.08, 0.25, k=4)})
    assert moved[0].current is not None and moved[0].current.k == 4
    new = history_series(records, {"hr": {**entry(0.5, 0.2, 1.3), "scale": "ratio"}})
    assert [s.analysis_id for s in new] == ["hr", "orr"]
    assert new[0].points == () and new[0].current.estimate == 0.5
    table = versions.history_table(moved)
    assert list(table.columns) == ["Analysis", "1.0.0", "1.1.0", "This build (not released)"]
    assert table.iloc[0].tolist() == ["Response", "10.0% (5.0% to 20.0%; k = 3)",
                                      "12.0% (6.0% to 22.0%; k = 3)",
                                      "15.0% (8.0% to 25.0%; k = 4)"]
    assert "This build (not released)" not in versions.history_table(same).columns


def test_describe_history_follows_the_number_of_releases() -> None:
    assert versions.describe_history([], []).startswith("No version of this review has been")
    one = versions.describe_history([record("1.0.0")], [])
    assert one.startswith("One version has been released: 1\\.0\\.0, on 2026\\-01\\-01.")
    two = [record("1.0.0", orr=entry(0.1, 0.05, 0.2)), record("1.1.0", orr=entry(0.1, 0.05, 0.2))]
    series = history_series(two, {"orr": entry(0.2, 0.1, 0.3)})
    text = versions.describe_history(two, series)
    assert text.startswith("2 versions have been released, the first (1\\.0\\.0)")
    assert "differs from release 1\\.1\\.0 in 1 estimate" in text
    assert "are those of release" in versions.describe_history(two, history_series(two))


def test_history_figure_draws_one_marker_per_release_and_this_build() -> None:
    records = [record("1.0.0", orr=entry(0.1, 0.05, 0.2),
                      hr={**entry(0.5, 0.2, 1.3), "scale": "ratio", "title": "HR $x$"}),
               record("1.1.0", orr=entry(0.12, 0.06, 0.22),
                      hr={**entry(0.5, 0.2, 1.3), "scale": "ratio", "title": "HR $x$"})]
    series = history_series(records, {"orr": entry(0.2, 0.1, 0.3)})
    fig = estimate_history(series)
    gids = [line.get_gid() for ax in fig.axes for line in ax.lines]
    assert gids.count("release_estimate") == 4
    assert gids.count("current_estimate") == 1
    assert gids.count("null_line") == 1  # the ratio panel only
    titles = [ax.get_title() for ax in fig.axes]
    assert "HR $x$" in titles  # shown as text, not as mathematics
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "this build"
    with pytest.raises(ValueError, match="no pooled estimate"):
        estimate_history([])
    assert versions.history_figure([]) is not None


def test_the_books_summary_and_abstract_give_certainty_and_key_sentences() -> None:
    """The summary of findings' result keys its final GRADE judgements by analysis id, and
    the abstract's claims are '<analysis id>: <sentence>'; a record takes both."""
    summary = {"certainty": {"orr": "very low", "dcr": "low"},
               "rows": [{"outcome_id": "orr", "certainty": "very low"}]}
    abstract = {"claims": ["orr: We are very uncertain.", "dcr: Maybe.", "orr: Second."]}
    assert certainty_of("dcr", "Disease control", {}, summary) == "low"
    assert certainty_of("pfr6", "PFR", {}, summary) is None
    assert versions.analysis_claims("orr", abstract) == ["We are very uncertain.", "Second."]
    assert versions.analysis_claims("pfr6", abstract) is None
    entries = versions.analysis_entries(
        {"orr": {"pooled": None}, "summary": summary, "abstract": abstract},
        {"orr": "Objective response"}, {"orr": "pool_proportions", "summary": "summary",
                                        "abstract": "abstract"})
    assert entries["orr"]["certainty"] == "very low"
    assert entries["orr"]["claims"] == ["We are very uncertain.", "Second."]
    assert entries["abstract"]["claims"] == abstract["claims"]
