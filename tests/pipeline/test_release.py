"""evidence.pipeline.release: ``evidence release`` and ``evidence diff``.

Fast tests use the small fixture book with results written by hand and the runner's
staleness check replaced; the slow tests run the real templates (the fixture book) and
the whole real book (the acceptance test of the living review).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pipeline_book import REPO, copy_book, replace_in, tree_digest

from evidence.pipeline import release, runner
from evidence.pipeline.cli import main
from evidence.pipeline.config import load_config
from evidence.pipeline.release import ReleaseError, current_diff, make_release


def pooled(estimate: float, k: int = 2) -> dict:
    return {"outcome": "objective_response", "measure": "PLO", "method": "GLMM", "k": k,
            "patients": 22, "studies": [{"study_id": "alpha2010"}, {"study_id": "beta2015"}],
            "pooled": {"estimate": estimate, "ci_lower": estimate / 2,
                       "ci_upper": min(1.0, estimate * 2), "pi_lower": None, "pi_upper": None},
            "inputs": [{"table": "studies", "filters": {}}], "data_sha256": "x"}


def write_results(root: Path, orr: float = 0.14, screening: float = 0.09) -> None:
    (root / "results").mkdir(exist_ok=True)
    for aid, est in (("orr", orr), ("yield", screening)):
        (root / "results" / f"{aid}.json").write_text(json.dumps(pooled(est)), "utf-8")


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture book with results and every result current."""
    root = copy_book(tmp_path)
    write_results(root)
    monkeypatch.setattr(runner, "stale_analyses", lambda *a, **k: {})
    return root


def test_a_release_records_the_published_state(book: Path) -> None:
    config = load_config(book)
    path = make_release(config, "1.0.0", "  First release.  ", date="2026-02-01")
    assert path == book / "versions" / "1.0.0.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert list(record)[:6] == ["format", "version", "date", "note", "evidence_version",
                                "registry_sha256"]
    assert (record["version"], record["date"], record["note"]) == (
        "1.0.0", "2026-02-01", "First release.")
    from evidence.registry import registry_sha256

    assert record["registry_sha256"] == registry_sha256(book / "data")
    assert record["last_search"] is None  # the fixture registry logs no search
    assert sorted(record["studies"]) == ["alpha2010", "beta2015"]
    assert record["studies"]["alpha2010"]["tables"]["outcomes"]["rows"] == 2
    orr = record["analyses"]["orr"]
    assert (orr["k"], orr["participants"], orr["estimate"], orr["certainty"]) == (
        2, 22, 0.14, None)
    assert orr["studies"] == ["alpha2010", "beta2015"]
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_a_release_never_overwrites_and_only_goes_up(book: Path) -> None:
    config = load_config(book)
    path = make_release(config, "1.0.0", "first", date="2026-02-01")
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match=r"1\.0\.0\.json exists: a published version is "
                                           "never overwritten"):
        make_release(config, "1.0.0", "again")
    assert path.read_bytes() == before
    write_results(book, orr=0.2)
    with pytest.raises(ReleaseError, match=r"version 0\.9\.0 is not above the latest release "
                                           r"1\.0\.0"):
        make_release(config, "0.9.0", "older")
    assert make_release(config, "1.1.0", "second").name == "1.1.0.json"


@pytest.mark.parametrize(("version", "note", "date", "message"), [
    ("1.0", "n", None, r"version '1\.0' is not MAJOR\.MINOR\.PATCH"),
    ("1.0.0", " ", None, r"a release needs a note"),
    ("1.0.0", "n", "1/2/2026", r"date '1/2/2026' is not YYYY-MM-DD"),
    ("1.0.0", "n", "2026-02-30", r"date '2026-02-30' is not a calendar date"),
])
def test_bad_arguments_are_refused(book: Path, version: str, note: str, date: str | None,
                                   message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        make_release(load_config(book), version, note, date=date)
    assert not (book / "versions").exists()


def test_nothing_changed_is_not_a_release(book: Path) -> None:
    config = load_config(book)
    make_release(config, "1.0.0", "first")
    with pytest.raises(ReleaseError, match=r"nothing changed since release 1\.0\.0"):
        make_release(config, "1.0.1", "same")
    replace_in(book / "data" / "studies.csv", "Alpha 2010", "Alpha et al. 2010")
    assert make_release(config, "1.0.1", "label corrected").is_file()


def test_a_registry_that_does_not_validate_is_refused(book: Path) -> None:
    replace_in(book / "data" / "outcomes.csv", "objective_response,,1,10",
               "objective_response,,12,10")
    with pytest.raises(ReleaseError, match=r"does not validate \(1 problem\(s\)\); nothing was "
                                           r"released:\n  .*outcomes\.csv:2: events"):
        make_release(load_config(book), "1.0.0", "first")
    assert not (book / "versions").exists()


def test_stale_results_are_refused_naming_each_analysis(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    write_results(root)
    files = tree_digest(root)

    def user_files() -> dict[str, str]:  # the cache may gain the validated registry
        return {k: v for k, v in tree_digest(root).items() if not k.startswith(".evidence")}

    with pytest.raises(ReleaseError, match=r"the results are not current \(2 analyses would "
                                           r"run again\); run `evidence build` first:\n"
                                           r"  orr: never run\n  yield: never run"):
        make_release(load_config(root), "1.0.0", "first")
    assert user_files() == files


def test_a_missing_result_is_refused(book: Path) -> None:
    (book / "results" / "yield.json").unlink()
    with pytest.raises(ReleaseError, match=r"yield\.json does not exist: run `evidence build`"):
        make_release(load_config(book), "1.0.0", "first")


def test_diff_against_the_latest_or_a_named_release(book: Path) -> None:
    config = load_config(book)
    diff, stale = current_diff(config)
    assert diff.against is None and stale == {}
    make_release(config, "1.0.0", "first", date="2026-02-01")
    write_results(book, orr=0.3)
    make_release(config, "1.1.0", "second", date="2026-03-01")
    diff, _ = current_diff(config)
    assert diff.against == "1.1.0" and not diff.changed
    diff, _ = current_diff(config, "1.0.0")
    assert [a.analysis_id for a in diff.analyses] == ["orr"]
    with pytest.raises(ReleaseError, match=r"no release 2\.0\.0 .*\(released: 1\.0\.0, 1\.1\.0\)"):
        current_diff(config, "2.0.0")
    (book / "versions" / "1.2.0.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"1\.2\.0\.json: format"):
        current_diff(config)


def test_cli_release_and_diff(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--root", str(book), "--data", str(book / "data")]
    assert main(["diff", *args]) == 0
    assert "No version has been released yet" in capsys.readouterr().out
    assert main(["release", "1.0.0", "--note", "First release", "--date", "2026-02-01",
                 *args]) == 0
    assert "released 1.0.0" in capsys.readouterr().out
    assert main(["release", "1.0.0", "--note", "again", *args]) == 1
    assert "never overwritten" in capsys.readouterr().err
    write_results(book, orr=0.5)
    assert main(["diff", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("What's new since version 1.0.0 (released 2026-02-01)")
    assert "changed  Objective response (fixture) (orr): 14.0% (7.0% to 28.0%), k = 2 -> " \
           "50.0% (25.0% to 100.0%), k = 2" in out
    assert "! The 95% CI (25.0% to 100.0%) no longer contains the estimate of 1.0.0 (14.0%)." \
           in out
    assert main(["diff", "9.9.9", *args]) == 1
    assert "no release 9.9.9" in capsys.readouterr().err


def test_cli_diff_warns_about_stale_results(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_book(tmp_path)
    write_results(root)
    assert main(["diff", "--root", str(root), "--data", str(root / "data")]) == 0
    assert "2 result(s) are not current (orr, yield)" in capsys.readouterr().err


def test_book_title_comes_from_the_whats_new_result(book: Path) -> None:
    config = load_config(book)
    assert release.book_title(config, "Book") == "Book"  # no What's new analysis


# --------------------------------------------------------------------------- slow

LIVING = """
  - id: whats_new
    template: whats_new
    title: What's new
    after: [orr, yield]
  - id: version_history
    template: version_history
    title: Version history
    after: [orr, yield]
"""


@pytest.mark.slow
def test_the_living_templates_run_before_and_after_a_release(tmp_path: Path) -> None:
    """The real What's new and Version history templates on the fixture book (which logs
    no search): first without a release, then after one and an edit."""
    root = copy_book(tmp_path)
    for name in ("whats_new", "version_history"):
        shutil.copy(REPO / "notebooks" / f"{name}.ipynb", root / "notebooks")
    replace_in(root / "analyses.yml", "      - book/results\n",
               "      - book/results\n      - analysis:whats_new\n"
               "      - analysis:version_history\n")
    with (root / "analyses.yml").open("a", encoding="utf-8") as fh:
        fh.write(LIVING)
    config = load_config(root)
    assert main(["run", "--root", str(root), "--data", str(root / "data"), "-q"]) == 0
    first = json.loads((root / "results" / "whats_new.json").read_text(encoding="utf-8"))
    assert first["against"] is None and first["version_label"] == "not yet released"
    assert first["title_suffix"] == "not yet released, no search logged"
    assert release.book_title(config, "Book") == "Book (not yet released, no search logged)"
    make_release(config, "1.0.0", "first", date="2026-02-01")
    replace_in(root / "data" / "outcomes.csv", "objective_response,,1,10",
               "objective_response,,3,10")
    report = runner.run_analyses(config, progress=False)
    assert report.by_status("executed") == ["orr", "whats_new", "version_history"]
    now = json.loads((root / "results" / "whats_new.json").read_text(encoding="utf-8"))
    assert now["against"] == "1.0.0"
    assert now["version_label"] == "1.0.0 (released 2026-02-01), with changes not yet released"
    assert [s["study_id"] for s in now["diff"]["studies"]] == ["alpha2010"]
    diff, stale = current_diff(config)
    assert stale == {} and json.loads(json.dumps(diff.to_dict())) == now["diff"]
    history = json.loads((root / "results" / "version_history.json").read_text("utf-8"))
    assert history["versions"] == ["1.0.0"]
    assert history["series"] == []  # count_rows pools nothing


def test_the_books_living_pages_read_what_they_compare() -> None:
    """What's new must run after every analysis a release records (or the page and
    `evidence diff` would differ), Version history after every pooled analysis; both sit
    in the part that follows the review in brief (the abstract)."""
    config = load_config(REPO)
    compared = [a.id for a in release.compared_analyses(config)]
    living = {a.template: a for a in config.analyses
              if a.template in ("whats_new", "version_history")}
    assert sorted(living["whats_new"].after) == sorted(compared)
    pooled = [a.id for a in config.analyses
              if a.template in ("pool_proportions", "hazard_ratios")]
    assert set(pooled) <= set(living["version_history"].after)
    assert config.parts[0].chapters == ("analysis:abstract",)
    assert config.parts[1].chapters == ("analysis:whats_new", "analysis:version_history")
