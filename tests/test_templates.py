"""The real notebook templates, executed by the runner on the small fixture registry."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from pipeline_book import copy_book

from evidence import runner
from evidence.analysis import pool_proportions
from evidence.config import load_config
from evidence.report import fmt_ci, fmt_pct

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

POOL = """
  - id: pooled
    template: pool_proportions
    title: Pooled response (fixture)
    chapter: book/results
    parameters:
      outcome: objective_response
      question: How often do patients respond?
      what: responded
      subgroup_by: her2_method
      method: {method}
"""


@pytest.fixture(autouse=True)
def fixed_library() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "library_digest", lambda: "1" * 64)
        yield


def book_with_template(tmp_path: Path, method: str = "GLMM") -> Path:
    root = copy_book(tmp_path)
    shutil.copy(REPO / "notebooks" / "pool_proportions.ipynb", root / "notebooks")
    with (root / "analyses.yml").open("a", encoding="utf-8") as fh:
        fh.write(POOL.format(method=method))
    return root


def glued_text(notebook: Path, key: str) -> str:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == key:
                return out["data"]["application/papermill.record/text/markdown"]
    raise KeyError(key)


def run(root: Path) -> runner.RunReport:
    return runner.run_analyses(load_config(root), only=["pooled"], progress=False)


def test_pooled_page_glues_the_numbers_of_its_result(tmp_path: Path) -> None:
    root = book_with_template(tmp_path, method="REML")
    report = run(root)
    assert report.ok, report.outcomes
    result = json.loads((root / "results" / "pooled.json").read_text())
    _, direct = pool_proportions([1, 2], [10, 12], ["alpha2010", "beta2015"], method="REML")
    assert result["pooled"]["estimate"] == pytest.approx(direct["estimate"], rel=1e-12)
    summary = glued_text(root / "book" / "analyses" / "pooled.ipynb", "summary")
    p = result["pooled"]
    assert fmt_pct(p["estimate"]) in summary
    assert fmt_ci(p["ci_lower"], p["ci_upper"]) in summary
    assert result["subgroup_by"] == "her2_method" and len(result["subgroups"]) == 2


def test_new_her2_method_flows_into_the_subgroups(tmp_path: Path) -> None:
    root = book_with_template(tmp_path)
    with (root / "data" / "studies.csv").open("a", encoding="utf-8") as fh:
        fh.write("gamma2026,Gamma 2026,2026,single-arm phase II,metastatic,negative,"
                 "CellSearch,digital droplet PCR,ERBB2 copy gain,T-DM1,Gamma G (2026),\n")
    with (root / "data" / "outcomes.csv").open("a", encoding="utf-8") as fh:
        fh.write("gamma2026,all,objective_response,,3,15,,gamma.txt,3 of 15 responded\n")
    report = run(root)
    assert report.ok, report.outcomes
    result = json.loads((root / "results" / "pooled.json").read_text())
    assert result["k"] == 3
    groups = {g["group"] for g in result["subgroups"]}
    assert groups == {"immunofluorescence", "FISH", "digital droplet PCR"}


def test_non_converging_model_fails_with_the_reason(tmp_path: Path) -> None:
    root = book_with_template(tmp_path)
    outcomes = root / "data" / "outcomes.csv"
    text = outcomes.read_text().replace("objective_response,,1,10", "objective_response,,0,10")
    outcomes.write_text(text.replace("objective_response,,2,12", "objective_response,,0,12"))
    report = run(root)
    assert not report.ok
    error = report.outcomes[0].error
    assert "ConvergenceError" in error and "every study has 0 events" in error
    assert not (root / "results" / "pooled.json").exists()
