"""evidence.pipeline.context: recorded registry queries, pooling wrapper, result files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_book import copy_book, replace_in

from evidence.pipeline import context as ea
from evidence.registry.store import load

FIXTURES = Path(__file__).parents[1] / "fixtures"
ORR = ([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])


def metafor(name: str, method: str, measure: str = "PLO") -> dict:
    data = json.loads((FIXTURES / "metafor" / f"{name}.json").read_text())
    return next(r for r in data["records"] if r.get("method") == method
                and r.get("measure") == measure and r.get("test", "z") == "z"
                and r.get("zero_handling", "add=1/2,to=only0 (default)").endswith("(default)"))


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM", "ML", "HE", "SJ"])
def test_pool_proportions_equals_metafor(method: str) -> None:
    ref = metafor("orr_her2ctc", method)
    result, pooled = ea.pool_proportions(*ORR, measure="PLO", method=method)
    assert result.estimate == pytest.approx(ref["estimate"], rel=1e-6)
    assert result.tau2 == pytest.approx(ref["tau2"], rel=1e-6, abs=1e-12)
    assert pooled["estimate"] == pytest.approx(ref["prop"], rel=1e-6)
    assert pooled["ci_lower"] == pytest.approx(ref["prop_ci_lb"], rel=1e-6)
    assert pooled["pi_upper"] == pytest.approx(ref["prop_pi_ub"], rel=1e-6)


def test_pool_proportions_glmm_equals_metafor() -> None:
    ref = json.loads((FIXTURES / "glmm" / "objective_response.json").read_text())["glmm"][0]
    result, pooled = ea.pool_proportions(*ORR, method="GLMM")
    assert result.method == "GLMM"
    assert pooled["estimate"] == pytest.approx(ref["prop"], rel=1e-4)
    assert pooled["ci_upper"] == pytest.approx(ref["prop_ci_ub"], rel=1e-4)
    assert result.tau2 == pytest.approx(ref["tau2"], rel=1e-4)


def test_single_study_is_not_pooled() -> None:
    result, pooled = ea.pool_proportions([1], [14], ["hainsworth2016"])
    assert pooled["estimate"] == pytest.approx(1 / 14)
    # R: binom.test(1, 14)$conf.int
    assert pooled["ci_lower"] == pytest.approx(0.00180678065912539, rel=1e-9)
    assert pooled["ci_upper"] == pytest.approx(0.338684489931821, rel=1e-9)
    assert pooled["pi_lower"] is None and "nothing was pooled" in pooled["warning"]
    assert result.k == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"measure": "LOGIT"}, "unknown measure 'LOGIT'; allowed: PLO, PFT, PAS, PR"),
    ({"method": "reml"}, "unknown method 'reml'; allowed: FE, DL, REML"),
    ({"method": "GLMM", "knha": True}, "knha applies to rma methods"),
])
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ea.pool_proportions(*ORR, **kwargs)
    with pytest.raises(ValueError, match="no studies"):
        ea.pool_proportions([], [])


@pytest.fixture
def ctx(tmp_path: Path) -> ea.AnalysisContext:
    root = copy_book(tmp_path)
    return ea.open_analysis("orr", str(root / "data"), str(root / "results"))


def test_queries_are_recorded_and_digests_follow_the_rows(ctx: ea.AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    assert table["label"].tolist() == ["Alpha 2010", "Beta 2015"]
    assert ctx.inputs == [{"table": "outcomes", "use": "primary", "filters": {
        "arm": None, "outcome": "objective_response", "subgroup": ""}}]
    ctx.outcome_table("objective_response")
    assert len(ctx.inputs) == 1  # the same query is recorded once
    before = ea.read_digest(ctx.registry, ctx.inputs[0])
    path = ctx.data_dir / "outcomes.csv"
    replace_in(path, "her2_ctc_screening_yield,,10,100", "her2_ctc_screening_yield,,11,100")
    assert ea.read_digest(load(ctx.data_dir), ctx.inputs[0]) == before  # other outcome
    replace_in(path, "objective_response,,1,10", "objective_response,,2,10")
    assert ea.read_digest(load(ctx.data_dir), ctx.inputs[0]) != before
    with pytest.raises(ValueError, match="unknown table"):
        ea.read_digest(ctx.registry, {"table": "nope"})


def test_frame_digest_sees_every_cell_column_and_missing_value() -> None:
    from evidence.pipeline.context import _frame_digest

    base = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    digest = _frame_digest(base)
    assert _frame_digest(base.copy()) == digest
    variants = [
        pd.DataFrame({"a": ["x", "z"], "b": [1, 2]}),          # a value
        pd.DataFrame({"a": ["x", "y"], "c": [1, 2]}),          # a column name
        pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}),      # a dtype
        pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})[["b", "a"]],  # column order
        pd.DataFrame({"a": ["y", "x"], "b": [2, 1]}),          # row order
        pd.DataFrame({"a": ["x\x1fy"], "b": [1]}),             # separators in a cell
    ]
    assert len({digest, *(_frame_digest(v) for v in variants)}) == len(variants) + 1
    empty = pd.DataFrame({"a": ["", "y"]})
    missing = pd.DataFrame({"a": [np.nan, "y"]}, dtype=object)
    assert _frame_digest(empty) != _frame_digest(missing)


def test_missing_selection_says_what_exists(ctx: ea.AnalysisContext) -> None:
    with pytest.raises(LookupError, match=r"no registry rows for outcome='objective_response', "
                                          r"arm='x'.*\[\('all', '', ''\)\]"):
        ctx.outcome_table("objective_response", arm="x")


def test_unknown_outcome_names_the_closest_known_one(ctx: ea.AnalysisContext) -> None:
    with pytest.raises(LookupError, match=r"unknown outcome 'objective_responce' \(not in "
                                          r".*outcome_types\.csv; did you mean "
                                          r"'objective_response'\?\); known: "):
        ctx.outcome_table("objective_responce")
    with pytest.raises(LookupError, match=r"unknown outcome 'overall_survival' \(not in "
                                          r"[^;]*outcome_types\.csv\); known: "):
        ctx.outcome_table("overall_survival")


def test_save_is_deterministic_json(ctx: ea.AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    res = ea.pool_table(table, method="REML")
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


def test_pool_table_rejects_two_rows_per_study(ctx: ea.AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    with pytest.raises(ValueError, match="more than one row per study"):
        ea.pool_table(table.iloc[[0, 0]])


def test_leave_one_out_and_subgroups(ctx: ea.AnalysisContext) -> None:
    table = ctx.outcome_table("objective_response")
    res = ea.pool_table(table, method="REML")
    with pytest.raises(ValueError, match="at least 3 studies"):
        ea.leave_one_out(res)
    with pytest.raises(KeyError, match="no study column 'colour'"):
        ea.subgroups(res, table, "colour")
    sub = ea.subgroups(res, table, "her2_method")
    assert set(sub.groups) == {"immunofluorescence", "FISH"}


def test_leave_one_out_uses_the_analysis_model() -> None:
    import pandas as pd

    table = pd.DataFrame({"study_id": list("abcde"), "label": list("ABCDE"),
                          "year": [2000 + i for i in range(5)],
                          "events": ORR[0], "total": ORR[1]})
    glmm = ea.leave_one_out(ea.pool_table(table, method="GLMM"))
    reml = ea.leave_one_out(ea.pool_table(table, method="REML"))
    assert np.asarray(glmm.prop).shape == (5,)
    assert reml.method == "REML"
    # omitting Verschoor 2024 (4/8) lowers the pooled proportion most
    assert int(np.argmin(glmm.prop)) == 4 and int(np.argmin(reml.back_estimate)) == 4


def test_files_and_environment_reads_are_recorded(ctx: ea.AnalysisContext,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = ctx.data_dir.parent
    monkeypatch.chdir(root)
    (root / "refs").mkdir()
    (root / "refs" / "a.json").write_text("{}")
    assert [p.name for p in ctx.files("refs", "*.json")] == ["a.json"]
    query = ctx.inputs[-1]
    assert query == {"table": "files", "path": "refs", "pattern": "*.json"}
    first = ea.read_digest(ctx.registry, query, root)
    (root / "refs" / "b.json").write_text("{}")  # a new file counts
    second = ea.read_digest(ctx.registry, query, root)
    assert second != first
    (root / "refs" / "a.json").write_text("{ }")  # so does a changed one
    assert ea.read_digest(ctx.registry, query, root) != second
    versions = ctx.versions(["numpy"])
    assert set(versions) == {"Python", "numpy"}
    env = ctx.inputs[-1]
    assert ea.read_digest(ctx.registry, env) == ea.read_digest(ctx.registry, env)
    types = ctx.query("outcome_types")
    assert "objective_response" in set(types["outcome"])
    assert ctx.inputs[-1] == {"table": "outcome_types", "filters": {}}
