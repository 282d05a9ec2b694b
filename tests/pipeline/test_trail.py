"""evidence.pipeline.trail: the digests of what an analysis read, and the versions."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_book import copy_book, replace_in

from evidence.book import provenance
from evidence.pipeline.context import AnalysisContext, open_analysis
from evidence.pipeline.trail import DEFAULT_PACKAGES, dependency_versions, read_digest
from evidence.registry import load


@pytest.fixture
def ctx(tmp_path: Path) -> AnalysisContext:
    root = copy_book(tmp_path)
    return open_analysis("orr", str(root / "data"), str(root / "results"))


def test_queries_are_recorded_and_digests_follow_the_rows(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    assert table["label"].tolist() == ["Alpha 2010", "Beta 2015"]
    assert ctx.inputs == [{"table": "outcomes", "use": "primary", "filters": {
        "arm": None, "outcome": "objective_response", "subgroup": ""}}]
    ctx.outcome_table("objective_response")
    assert len(ctx.inputs) == 1  # the same query is recorded once
    before = read_digest(ctx.registry, ctx.inputs[0])
    path = ctx.data_dir / "outcomes.csv"
    replace_in(path, "her2_ctc_screening_yield,,10,100", "her2_ctc_screening_yield,,11,100")
    assert read_digest(load(ctx.data_dir), ctx.inputs[0]) == before  # other outcome
    replace_in(path, "objective_response,,1,10", "objective_response,,2,10")
    assert read_digest(load(ctx.data_dir), ctx.inputs[0]) != before
    with pytest.raises(ValueError, match="unknown table"):
        read_digest(ctx.registry, {"table": "nope"})


def test_files_and_environment_reads_are_recorded(ctx: AnalysisContext,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = ctx.data_dir.parent
    monkeypatch.chdir(root)
    (root / "refs").mkdir()
    (root / "refs" / "a.json").write_text("{}")
    assert [p.name for p in ctx.files("refs", "*.json")] == ["a.json"]
    query = ctx.inputs[-1]
    assert query == {"table": "files", "path": "refs", "pattern": "*.json"}
    first = read_digest(ctx.registry, query, root)
    (root / "refs" / "b.json").write_text("{}")  # a new file counts
    second = read_digest(ctx.registry, query, root)
    assert second != first
    (root / "refs" / "a.json").write_text("{ }")  # so does a changed one
    assert read_digest(ctx.registry, query, root) != second
    versions = ctx.versions(["numpy"])
    assert set(versions) == {"Python", "numpy"}
    env = ctx.inputs[-1]
    assert read_digest(ctx.registry, env) == read_digest(ctx.registry, env)
    types = ctx.query("outcome_types")
    assert "objective_response" in set(types["outcome"])
    assert ctx.inputs[-1] == {"table": "outcome_types", "filters": {}}
def test_dependency_versions():
    versions = dependency_versions(("numpy", "pandas", "no-such-distribution-x"))
    assert list(versions) == ["Python", "numpy", "pandas", "no-such-distribution-x"]
    assert versions["Python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    assert versions["pandas"] == pd.__version__
    assert versions["no-such-distribution-x"] == "not installed"
    assert "jupyter-book" in DEFAULT_PACKAGES
    table = provenance.version_table(versions)
    assert table.iloc[1].tolist() == ["numpy", np.__version__]


def test_a_result_read_is_digested_as_its_content(ctx: AnalysisContext) -> None:
    """Another analysis's result is read without its trail, and digested as what was read:
    new inputs or a new data digest alone do not re-run the reader; a changed number does."""
    import json

    root = ctx.data_dir.parent
    path = root / "results" / "other.json"
    path.parent.mkdir(exist_ok=True)

    def write(**fields: object) -> None:
        path.write_text(json.dumps({"analysis_id": "other", "k": 2, **fields}), "utf-8")

    write(inputs=[{"table": "studies", "filters": {}}], data_sha256="a")
    assert ctx.result("other") == {"analysis_id": "other", "k": 2}
    query = ctx.inputs[-1]
    assert query == {"table": "result", "id": "other"}
    first = read_digest(ctx.registry, query, root)
    write(inputs=[{"table": "studies", "filters": {"study_id": ["x"]}}], data_sha256="b")
    assert read_digest(ctx.registry, query, root) == first  # only the trail changed
    path.write_text(json.dumps({"k": 2, "analysis_id": "other"}), "utf-8")
    assert read_digest(ctx.registry, query, root) == first  # nor key order
    write(estimate=0.5)
    assert read_digest(ctx.registry, query, root) != first
    path.unlink()
    assert read_digest(ctx.registry, query, root) == "missing"
    path.write_text("{not json", "utf-8")
    with pytest.raises(ValueError):
        read_digest(ctx.registry, query, root)


def test_studies_for_and_study_rows_record_what_they_read(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    studies = ctx.studies_for(table)
    assert sorted(studies["study_id"]) == sorted(set(table["study_id"]))
    assert ctx.inputs[-1] == {"table": "studies",
                              "filters": {"study_id": sorted(set(table["study_id"]))}}
    rows = ctx.study_rows()
    assert list(rows) == ["studies", "outcomes", "effects", "transitions", "harms",
                          "risk_of_bias", "screening"]
    assert len(rows["outcomes"]) == len(ctx.registry.outcomes)
    assert {"table": "outcomes", "use": "alternative", "filters": {}} in ctx.inputs
