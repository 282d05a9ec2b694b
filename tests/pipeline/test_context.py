"""evidence.pipeline.context: recorded registry queries, other results and result files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from pipeline_book import copy_book

from evidence.book.pooled import pool_table
from evidence.pipeline.context import AnalysisContext, open_analysis
from evidence.registry import registry_sha256

GOOD = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "good" / "data"


def rows(name: str) -> list[dict[str, str]]:
    with (GOOD / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def ctx(tmp_path: Path) -> AnalysisContext:
    root = copy_book(tmp_path)
    return open_analysis("orr", str(root / "data"), str(root / "results"))


def test_queries_are_recorded(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    assert table["label"].tolist() == ["Alpha 2010", "Beta 2015"]
    assert ctx.inputs == [{"table": "outcomes", "use": "primary", "filters": {
        "arm": None, "outcome": "objective_response", "subgroup": ""}}]
    ctx.outcome_table("objective_response")
    assert len(ctx.inputs) == 1  # the same query is recorded once


def test_missing_selection_says_what_exists(ctx: AnalysisContext) -> None:
    with pytest.raises(LookupError, match=r"no registry rows for outcome='objective_response', "
                                          r"arm='x'.*\[\('all', '', ''\)\]"):
        ctx.outcome_table("objective_response", arm="x")


def test_unknown_outcome_names_the_closest_known_one(ctx: AnalysisContext) -> None:
    with pytest.raises(LookupError, match=r"unknown outcome 'objective_responce' \(not in "
                                          r".*outcome_types\.csv; did you mean "
                                          r"'objective_response'\?\); known: "):
        ctx.outcome_table("objective_responce")
    with pytest.raises(LookupError, match=r"unknown outcome 'overall_survival' \(not in "
                                          r"[^;]*outcome_types\.csv\); known: "):
        ctx.outcome_table("overall_survival")


def test_save_is_deterministic_json(ctx: AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    res = pool_table(table, method="REML")
    path = ctx.save({"outcome": "objective_response", "nan": float("nan"), **res.to_json()},
                    table=res.studies)
    first = path.read_bytes()
    data = json.loads(first)
    assert data["analysis_id"] == "orr" and data["nan"] is None
    assert data["k"] == 2 and data["patients"] == 22 and len(data["data_sha256"]) == 64
    assert math.isclose(sum(s["weight"] for s in data["studies"]), 1.0)
    assert ctx.save({"outcome": "objective_response", "nan": float("nan"),
                     **res.to_json()}, table=res.studies).read_bytes() == first
    assert (ctx.results_dir / "orr.csv").read_text().startswith("study_id,label,year,events")


def test_save_writes_the_r_script_beside_the_study_table(ctx: AnalysisContext) -> None:
    from evidence.book.reproduce import r_script

    table = ctx.outcome_table("objective_response")
    res = pool_table(table, method="GLMM", test="t")
    path = ctx.save({"outcome": "objective_response", **res.to_json()}, table=res.studies,
                    r_script=True)
    script = ctx.results_dir / "orr.R"
    assert script.read_text() == r_script(json.loads(path.read_text()), "orr.csv", "orr")
    first = script.read_bytes()
    ctx.save({"outcome": "objective_response", **res.to_json()}, table=res.studies,
             r_script=True)
    assert script.read_bytes() == first  # byte-identical for identical inputs
    with pytest.raises(ValueError, match="an R script reads the study table"):
        ctx.save({"outcome": "objective_response", **res.to_json()}, r_script=True)
    with pytest.raises(ValueError, match="nothing to reproduce in R"):
        ctx.save({"outcome": "objective_response"}, table=res.studies, r_script=True)


def test_registry_tables_reads_every_table_through_recorded_queries():
    ctx = open_analysis("t", str(GOOD), "unused_results")
    reg = ctx.registry_tables()
    assert ctx.inputs == [
        {"table": "studies", "filters": {}},
        {"table": "outcomes", "filters": {}, "use": "primary"},
        {"table": "outcomes", "filters": {}, "use": "alternative"},
        {"table": "effects", "filters": {}, "use": "primary"},
        {"table": "effects", "filters": {}, "use": "alternative"},
        {"table": "transitions", "filters": {}, "use": "primary"},
        {"table": "transitions", "filters": {}, "use": "alternative"},
        {"table": "outcome_types", "filters": {}},
    ]
    assert len(reg.studies) == len(rows("studies.csv")) == 4
    assert len(reg.outcomes) == len(rows("outcomes.csv")) == 11
    assert len(reg.transitions) == len(rows("transitions.csv"))
    assert sorted(reg.outcomes["use"]) == ["alternative"] + ["primary"] * 10
    assert reg.sha256 == registry_sha256(GOOD)
    assert list(reg.outcome_types["outcome"]) == [r["outcome"]
                                                  for r in rows("outcome_types.csv")]


