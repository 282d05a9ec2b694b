"""evidence run: papermill execution, content-hash caching, failure isolation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest
from pipeline_book import copy_book, replace_in, tree_digest

from evidence.pipeline import runner
from evidence.pipeline.config import load_config
from evidence.registry.store import RegistryError

pytestmark = pytest.mark.slow
REAL_LIBRARY_DIGEST = runner.library_digest


def run(root: Path, **kwargs):
    return runner.run_analyses(load_config(root), progress=False, **kwargs)


@pytest.fixture(autouse=True)
def fixed_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the library digest still: these tests edit data and templates, not src/."""
    monkeypatch.setattr(runner, "library_digest", lambda: "1" * 64)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = copy_book(tmp_path)
    report = run(root, jobs=2)
    assert report.ok, report.outcomes
    assert sorted(report.by_status("executed")) == ["orr", "yield"]
    return root


def test_library_digest_is_a_stable_content_hash() -> None:
    assert REAL_LIBRARY_DIGEST() == REAL_LIBRARY_DIGEST()
    assert len(REAL_LIBRARY_DIGEST()) == 64


def test_outputs_and_noop(built: Path) -> None:
    result = json.loads((built / "results" / "orr.json").read_text())
    assert result["analysis_id"] == "orr"
    assert result["k"] == 2 and result["events"] == 3
    assert result["inputs"] == [{"table": "outcomes", "use": "primary", "filters": {
        "arm": None, "outcome": "objective_response", "subgroup": ""}}]
    assert len(result["data_sha256"]) == 64 and result["evidence_version"]
    nb = nbformat.read(built / "book" / "analyses" / "orr.ipynb", as_version=4)
    assert nb.cells[0].source.startswith("# Objective response (fixture)\n")
    assert "{download}`results (JSON) <../../results/orr.json>`" in nb.cells[1].source
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["parameters", "remove-cell"] in tags
    assert ["injected-parameters", "hide-cell"] in tags
    assert nb.metadata.papermill["parameters"]["outcome"] == "objective_response"
    assert "start_time" not in nb.metadata.papermill
    again = run(built)
    assert again.by_status("skipped") == ["orr", "yield"] and not again.by_status("executed")


def test_notebooks_read_the_registry_the_runner_validated(built: Path) -> None:
    import dataclasses
    import os
    import pickle

    from evidence.pipeline.layout import CACHE_ENV

    (cached,) = (built / runner.CACHE_DIR).glob("registry-*.pickle")
    registry = pickle.loads(cached.read_bytes())
    # doctor the cached tables (same key): only a kernel reading the cache sees this
    outcomes = registry.outcomes.copy()
    outcomes.loc[outcomes["outcome"] == "objective_response", "events"] += 1
    cached.write_bytes(pickle.dumps(dataclasses.replace(registry, outcomes=outcomes)))
    report = run(built, force=True, only=["orr"], jobs=1)
    assert report.ok, report.outcomes
    assert json.loads((built / "results" / "orr.json").read_text())["events"] == 5
    assert CACHE_ENV not in os.environ  # set for the kernel only


def test_editing_one_count_reruns_only_its_readers(built: Path) -> None:
    replace_in(built / "data" / "outcomes.csv", "objective_response,,1,10",
               "objective_response,,2,10")
    report = run(built)
    assert report.by_status("executed") == ["orr"]
    orr = next(o for o in report.outcomes if o.analysis_id == "orr")
    assert orr.reason == "registry rows changed (outcomes)"
    assert json.loads((built / "results" / "orr.json").read_text())["events"] == 4


def test_unrelated_registry_edit_reruns_nothing(built: Path) -> None:
    replace_in(built / "data" / "outcome_types.csv", "objective response rate", "ORR")
    assert run(built).by_status("executed") == []


def test_study_label_change_reruns_analyses_showing_it(built: Path) -> None:
    replace_in(built / "data" / "studies.csv", "Alpha 2010,", "Alpha et al. 2010,")
    assert sorted(run(built).by_status("executed")) == ["orr", "yield"]


def test_template_change_reruns_its_analyses(built: Path) -> None:
    replace_in(built / "notebooks" / "count_rows.ipynb", "Counts registry rows.", "Counts rows.")
    report = run(built)
    assert sorted(report.by_status("executed")) == ["orr", "yield"]
    assert {o.reason for o in report.outcomes} == {"template changed"}


def test_parameter_change_reruns_only_that_analysis(built: Path) -> None:
    replace_in(built / "analyses.yml", "label: screening", "label: yield")
    report = run(built)
    assert report.by_status("executed") == ["yield"]
    assert json.loads((built / "results" / "yield.json").read_text())["label"] == "yield"


def test_a_new_after_entry_reruns_the_reader(built: Path) -> None:
    """An analysis that now also reads another's result must run again, even though
    nothing it read before changed."""
    replace_in(built / "analyses.yml", "      label: screening\n",
               "      label: screening\n    after: [orr]\n")
    report = run(built)
    assert report.by_status("executed") == ["yield"]
    assert {o.reason for o in report.outcomes if o.analysis_id == "yield"} == {
        "parameters changed"}


def test_library_change_reruns_everything(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "library_digest", lambda: "0" * 64)
    report = run(built)
    assert sorted(report.by_status("executed")) == ["orr", "yield"]
    assert {o.reason for o in report.outcomes} == {"library changed"}


def test_missing_or_edited_output_reruns(built: Path) -> None:
    (built / "results" / "orr.json").unlink()
    (built / "book" / "analyses" / "yield.ipynb").write_text("{}")
    report = run(built)
    assert sorted(report.by_status("executed")) == ["orr", "yield"]
    (built / "results" / "yield.csv").unlink()  # the study table offered for download
    assert run(built).by_status("executed") == ["yield"]


def test_unreadable_recorded_query_reruns(built: Path) -> None:
    stamp_path = built / runner.CACHE_DIR / "orr.json"
    stamp = json.loads(stamp_path.read_text())
    stamp["reads"][0]["query"]["filters"]["no_such_column"] = "x"
    stamp_path.write_text(json.dumps(stamp))
    report = run(built)
    orr = next(o for o in report.outcomes if o.analysis_id == "orr")
    assert orr.status == "executed" and "can no longer be read" in orr.reason


def test_force_and_only(built: Path) -> None:
    assert run(built, only=["yield"]).by_status("executed") == ["yield"]
    assert len(run(built, only=["yield"]).outcomes) == 1
    assert sorted(run(built, force=True, jobs=2).by_status("executed")) == ["orr", "yield"]
    with pytest.raises(KeyError, match="unknown analysis id"):
        run(built, only=["ghost"])


def test_results_are_byte_identical_across_runs(built: Path) -> None:
    before = tree_digest(built / "results")
    nb_before = (built / "book" / "analyses" / "orr.ipynb").read_bytes()
    run(built, force=True, jobs=2)
    assert tree_digest(built / "results") == before
    assert (built / "book" / "analyses" / "orr.ipynb").read_bytes() == nb_before


def test_failing_template_keeps_previous_outputs(built: Path) -> None:
    outputs = {**tree_digest(built / "results"), **tree_digest(built / "book" / "analyses")}
    replace_in(built / "notebooks" / "count_rows.ipynb", "import evidence.pipeline.context as ea",
               "raise ValueError('template is broken')")
    report = run(built)
    assert not report.ok
    assert sorted(report.by_status("failed")) == ["orr", "yield"]
    assert "ValueError: template is broken" in report.outcomes[0].error
    assert (built / "_build" / "failed" / "orr.ipynb").is_file()
    assert {**tree_digest(built / "results"),
            **tree_digest(built / "book" / "analyses")} == outputs


def test_invalid_registry_stops_before_running(built: Path) -> None:
    path = built / "data" / "outcomes.csv"
    replace_in(path, "objective_response,,1,10", "objective_response,,11,10")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(RegistryError, match=r"outcomes.csv:2: events"):
        run(built)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_selection_matching_no_rows_fails_clearly(built: Path) -> None:
    replace_in(built / "data" / "outcomes.csv",
               "beta2015,all,her2_ctc_screening_yield", "beta2015,b,objective_response")
    replace_in(built / "data" / "outcomes.csv",
               "alpha2010,all,her2_ctc_screening_yield", "alpha2010,b,objective_response")
    report = run(built)
    failed = {o.analysis_id: o.error for o in report.outcomes if o.status == "failed"}
    assert "yield" in failed and "no registry rows for outcome='her2_ctc_screening_yield'" \
        in failed["yield"]


@pytest.mark.parametrize("message", ["Kernel died before replying to kernel_info",
                                     "Kernel didn't respond in 60 seconds"])
def test_kernel_start_race_is_retried_once(built: Path, monkeypatch: pytest.MonkeyPatch,
                                           message: str) -> None:
    import papermill

    real = papermill.execute_notebook
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(message)
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    report = run(built, only=["orr"])
    assert report.ok and len(calls) == 2


def test_timings_of_the_run_are_kept_in_the_cache(built: Path) -> None:
    from evidence.pipeline import timings

    run_times = timings.read(built)["run"]
    assert run_times["jobs"] == 2 and run_times["seconds"] > 0
    for aid in ("orr", "yield"):
        entry = run_times["analyses"][aid]
        assert entry["status"] == "executed"
        assert 0 < entry["cell_seconds"] < entry["seconds"]
    run(built)  # a no-op run records itself too
    assert timings.read(built)["run"]["analyses"]["orr"]["status"] == "skipped"


def test_a_result_read_changes_only_when_its_content_does(tmp_path: Path) -> None:
    """An analysis reading another's result (``after``) re-runs when that result's content
    changes, not when only its trail (the rows it read and their digest) does."""
    root = copy_book(tmp_path)
    reader = nbformat.read(root / "notebooks" / "count_rows.ipynb", as_version=4)
    code = reader.cells[2]
    read = "table = ctx.outcome_table(outcome)"
    code.source = code.source.replace(read, "other = ctx.result('orr')\n" + read)
    nbformat.write(reader, root / "notebooks" / "reads_result.ipynb")
    with (root / "analyses.yml").open("a", encoding="utf-8") as fh:
        fh.write("  - id: reader\n    template: reads_result\n    title: Reader\n"
                 "    chapter: book/results\n    after: [orr]\n    parameters:\n"
                 "      outcome: her2_ctc_screening_yield\n")
    assert run(root).by_status("executed") == ["orr", "yield", "reader"]
    # a quote orr reads, but does not put into its result: orr runs, its content is the same
    replace_in(root / "data" / "outcomes.csv", "1 of 10 patients responded",
               "one of 10 patients responded")
    report = run(root)
    assert report.by_status("executed") == ["orr"]
    assert report.by_status("skipped") == ["yield", "reader"]
    # a changed count: orr's result changes, so its reader runs again
    replace_in(root / "data" / "outcomes.csv", "objective_response,,1,10",
               "objective_response,,2,10")
    assert run(root).by_status("executed") == ["orr", "reader"]
