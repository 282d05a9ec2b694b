"""The real notebook templates, executed by the runner on the small fixture registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from pipeline_book import book_with_template

from evidence.book.text import fmt_ci, fmt_pct
from evidence.pipeline import runner
from evidence.pipeline.config import load_config
from evidence.stats.proportions import pool_proportions

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fixed_library() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "library_digest", lambda: "1" * 64)
        yield


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
    assert result["subgroup_by"] == ["her2_method"]
    assert len(result["subgroups"]["her2_method"]["levels"]) == 2


def test_pooled_page_writes_and_links_its_r_script(tmp_path: Path) -> None:
    from evidence.book.reproduce import r_script

    root = book_with_template(tmp_path)
    assert run(root).ok
    result = json.loads((root / "results" / "pooled.json").read_text())
    script = root / "results" / "pooled.R"
    assert script.read_text() == r_script(result, "pooled.csv", "pooled")
    nb = nbformat.read(root / "book" / "analyses" / "pooled.ipynb", as_version=4)
    downloads = next(c for c in nb.cells if "evidence-downloads" in c.metadata.get("tags", []))
    assert ("{download}`study table (CSV) <../../results/pooled.csv>` · "
            "{download}`R script (metafor) <../../results/pooled.R>`") in downloads.source
    stamp = json.loads((root / ".evidence-cache" / "pooled.json").read_text())
    assert "results/pooled.R" in stamp["outputs"]
    script.unlink()  # an output that went missing: the analysis runs again
    again = runner.run_analyses(load_config(root), progress=False)
    assert [o.reason for o in again.outcomes if o.analysis_id == "pooled"] == [
        "results/pooled.R missing"]
    assert script.is_file()
