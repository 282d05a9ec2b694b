"""The living review, end to end: release, add a study, see it, release again.

A copy of the session's built real book (registry texts carrying markup, see
``real_book.py``) is released as 1.0.0 (its own first release: the repository's records
were made from the registry without the markup); a new trial with one response row is
added, which changes a GRADE proposal that the certainty (judged ``as_proposed``)
follows; the rebuilt book's What's new page and ``evidence diff`` both show the study and
the changed estimate of objective response; releasing 1.1.0 adds a second record, and the
Version history then draws two points for that estimate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from html_check import reader_text
from real_book import REPO, TRICKY, RealBook, add_trial

from evidence.book.text import fmt_ci, fmt_pct
from evidence.book.versions import read_records
from evidence.pipeline.cli import main

pytestmark = pytest.mark.slow

NEW = "livingtrial2026"


def page_text(path: Path) -> str:
    """The visible text of a page's article (tags removed, entities decoded)."""
    return reader_text(path, "article")


def estimate(result: dict) -> str:
    p = result["pooled"]
    return f"{fmt_pct(p['estimate'])} ({fmt_ci(p['ci_lower'], p['ci_upper'])}), k = {result['k']}"


def build(root: Path) -> None:
    assert main(["build", "--root", str(root), "--data", str(root / "data"), "-j", "2",
                 "-q"]) == 0


def test_the_repository_holds_its_first_release() -> None:
    records = read_records(sorted((REPO / "versions").glob("*.json")))
    assert records, "versions/ holds no release"
    first = records[0]
    assert first["version"] == "1.0.0" and "first release" in first["note"].lower()
    assert first["analyses"]["orr"]["k"] >= 2 and first["last_search"]


def test_add_a_study_see_it_and_release_it(real_book: RealBook, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "book"
    shutil.copytree(real_book.root, root, symlinks=True)
    shutil.rmtree(root / "versions", ignore_errors=True)
    args = ["--root", str(root), "--data", str(root / "data")]
    assert main(["release", "1.0.0", "--note", "First release of this copy.",
                 "--date", "2026-01-15", *args]) == 0
    before = json.loads((root / "results" / "orr.json").read_text(encoding="utf-8"))

    label = f"Living trial 2026 {TRICKY}"
    add_trial(root / "data", NEW, label, events=6, total=10)
    capsys.readouterr()
    build(root)
    # the new trial makes the studies of objective response more inconsistent (I² passes
    # 75%): the domain, judged as_proposed, follows the rule to very serious
    grade = next(r["grade"] for r in json.loads(
        (root / "results" / "summary.json").read_text(encoding="utf-8"))["rows"]
        if r["outcome_id"] == "orr")
    assert grade["proposed"]["inconsistency"]["judgement"] == "very_serious"
    assert grade["final"]["inconsistency"] == "very_serious" and not grade["departures"]
    after = json.loads((root / "results" / "orr.json").read_text(encoding="utf-8"))
    assert after["k"] == before["k"] + 1
    assert NEW in {s["study_id"] for s in after["studies"]}
    assert after["pooled"]["estimate"] != before["pooled"]["estimate"]

    # the What's new page: the study, escaped, and the estimate before and after
    new_page = root / "_build" / "html" / "book" / "analyses" / "whats_new.html"
    raw = new_page.read_text(encoding="utf-8")
    assert "<script>window.__xss" not in raw and "<b>Bold</b>" not in raw  # never markup
    text = page_text(new_page)
    assert "Compared with version 1.0.0 (released 2026-01-15" in text
    assert "1 study added" in text
    assert f"{label} added" in text  # the label shown as text, markup and all
    assert f"Objective response changed {estimate(before)} {estimate(after)}" in text
    assert f"added: {label}" in text

    # the same in the terminal
    assert main(["diff", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # every result is current
    assert f"added      {label} ({NEW}):" in out
    assert f"Objective response (orr): {estimate(before)} -> {estimate(after)}" in out
    shown = json.loads((root / "results" / "whats_new.json").read_text(encoding="utf-8"))
    assert [s["study_id"] for s in shown["diff"]["studies"] if s["kind"] == "added"] == [NEW]

    # the landing page and the title bar name the version, with the change
    intro = page_text(root / "_build" / "html" / "book" / "intro.html")
    assert "Version: 1.0.0 (released 2026-01-15), with changes not yet released" in intro
    assert "(version 1.0.0+, searches to" in (root / "_build" / "html" / "book" / "intro.html"
                                              ).read_text(encoding="utf-8")

    # release it: a second record, and two points in the history of the estimate
    assert main(["release", "1.1.0", "--note", f"Adds {label}.", "--date", "2026-02-15",
                 *args]) == 0
    assert sorted(p.name for p in (root / "versions").glob("*.json")) == [
        "1.0.0.json", "1.1.0.json"]
    build(root)
    history = json.loads((root / "results" / "version_history.json").read_text("utf-8"))
    assert history["versions"] == ["1.0.0", "1.1.0"]
    orr = next(s for s in history["series"] if s["analysis_id"] == "orr")
    assert [p["version"] for p in orr["points"]] == ["1.0.0", "1.1.0"]
    assert [p["estimate"] for p in orr["points"]] == [before["pooled"]["estimate"],
                                                      after["pooled"]["estimate"]]
    assert orr["current"] is None  # this build is release 1.1.0
    page = page_text(root / "_build" / "html" / "book" / "analyses" / "version_history.html")
    assert "2 versions have been released" in page
    assert "1.1.0 2026-02-15" in page and f"Adds {label}." in page
    assert "Each pooled estimate (dot) and its 95% confidence interval" in page
    intro = page_text(root / "_build" / "html" / "book" / "intro.html")
    assert "Version: 1.1.0 (released 2026-02-15) (" in intro
    assert main(["diff", *args]) == 0
    assert "Nothing has changed since this release." in capsys.readouterr().out
