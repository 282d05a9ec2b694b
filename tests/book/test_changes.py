"""evidence.book.changes: the comparison of the current build with a release, and the words,
tables and terminal text of the What's new page and ``evidence diff``."""

from __future__ import annotations

import copy
import json

import pytest

from evidence.book import changes
from evidence.book.changes import compare, describe_diff, diff_text

TRICKY = "<b>Bold</b> [x](http://e.org) *y*"


def study(label: str, **tables: tuple[int, str]) -> dict:
    return {"label": label, "tables": {t: {"rows": n, "sha256": d} for t, (n, d) in
                                       tables.items()}}


def entry(title: str = "Objective response", *, scale: str = "proportion", k: int = 3,
          estimate: float = 0.2, lo: float = 0.1, hi: float = 0.35, **extra: object) -> dict:
    return {"title": title, "scale": scale, "measure": "PLO" if scale == "proportion" else "HR",
            "method": "GLMM", "test": "t", "k": k, "participants": 60, "estimate": estimate,
            "ci_lower": lo, "ci_upper": hi, "pi_lower": None, "pi_upper": None,
            "certainty": None, "claims": None, "studies": ["a", "b", "c"][:k], **extra}


def state(**over: object) -> dict:
    base = {"registry_sha256": "r1", "last_search": "2026-01-31",
            "studies": {"a": study("Alpha 2010", studies=(1, "s"), outcomes=(2, "o")),
                        "b": study("Beta 2012", studies=(1, "t"), outcomes=(1, "p"))},
            "analyses": {"orr": entry(), "hr": entry("Hazard ratio", scale="ratio",
                                                     estimate=0.7, lo=0.4, hi=1.2, k=2)}}
    base.update(over)
    return base


def release(version: str = "1.0.0", **over: object) -> dict:
    return {"format": 1, "version": version, "date": "2026-02-01", "note": "first",
            **state(**over)}


def test_before_the_first_release_nothing_is_listed() -> None:
    diff = compare(None, state())
    assert diff.against is None and diff.changed
    assert diff.studies == () and diff.analyses == ()
    assert changes.version_label(diff) == "not yet released"
    assert changes.title_suffix(diff) == "not yet released, searches to 2026-01-31"
    assert describe_diff(diff).startswith("No version of this review has been released")
    assert diff_text(diff).startswith("No version has been released yet")


def test_an_unchanged_build_says_so() -> None:
    diff = compare(release(), state())
    assert not diff.changed and diff.studies == () and diff.analyses == ()
    assert changes.version_label(diff) == "1.0.0 (released 2026-02-01)"
    assert changes.title_suffix(diff) == "version 1.0.0, searches to 2026-01-31"
    assert "Nothing has changed since" in describe_diff(diff)
    assert "Nothing has changed since this release." in diff_text(diff)


def test_studies_added_removed_and_corrected_by_their_rows() -> None:
    now = state(registry_sha256="r2")
    now["studies"] = copy.deepcopy(now["studies"])
    now["studies"]["a"]["tables"]["outcomes"] = {"rows": 3, "sha256": "o2"}
    del now["studies"]["b"]
    now["studies"]["c"] = study(TRICKY, studies=(1, "u"), outcomes=(1, "q"), screening=(1, "x"))
    diff = compare(release(), now)
    kinds = {s.study_id: (s.kind, s.tables) for s in diff.studies}
    assert kinds == {"a": ("corrected", (("outcomes", 2, 3),)),
                     "b": ("removed", (("outcomes", 1, 0), ("studies", 1, 0))),
                     "c": ("added", (("outcomes", 0, 1), ("screening", 0, 1),
                                     ("studies", 0, 1)))}
    assert [diff.count(k) for k in ("added", "removed", "corrected")] == [1, 1, 1]
    summaries = [changes.study_summary(s) for s in diff.studies]
    assert summaries == ["3 counts (were 2)", "1 count removed; 1 study row removed",
                         "1 count; 1 screening record; 1 study row"]
    relabelled = state()
    relabelled["studies"] = copy.deepcopy(relabelled["studies"])
    relabelled["studies"]["a"]["label"] = "Alpha et al. 2010"
    assert changes.study_summary(compare(release(), relabelled).studies[0]) == "label changed"


def test_a_changed_estimate_that_reads_the_same_is_listed_without_flags() -> None:
    now = state(analyses={**state()["analyses"], "orr": entry(k=4, estimate=0.22, lo=0.12,
                                                               hi=0.33, studies=list("abcd"))})
    diff = compare(release(), now)
    (orr,) = diff.analyses
    assert (orr.analysis_id, orr.kind, orr.studies_added, orr.readings) == (
        "orr", "changed", ("d",), ())
    assert changes.analysis_summary(orr) == ("20.0% (10.0% to 35.0%), k = 3",
                                             "22.0% (12.0% to 33.0%), k = 4",
                                             "not assessed", "added: d")
    text = describe_diff(diff)
    assert "1 analysis changed" in text and "None of these changes alters" in text


@pytest.mark.parametrize(("before", "after", "reading"), [
    # a ratio's CI that now excludes 1
    (dict(estimate=0.7, lo=0.4, hi=1.2), dict(estimate=0.6, lo=0.4, hi=0.9),
     "The 95% CI (0.40 to 0.90) now excludes 1 (no difference), which it included in 1.0.0."),
    (dict(estimate=0.6, lo=0.4, hi=0.9), dict(estimate=0.7, lo=0.45, hi=1.1),
     "The 95% CI (0.45 to 1.10) now includes 1 (no difference), which it excluded in 1.0.0."),
    # the previous estimate outside the new interval
    (dict(estimate=0.7, lo=0.4, hi=1.2), dict(estimate=1.6, lo=1.3, hi=2.0),
     "The 95% CI (1.30 to 2.00) no longer contains the estimate of 1.0.0 (0.70)."),
    (dict(certainty="low"), dict(certainty="moderate"),
     "Certainty of the evidence: moderate (in 1.0.0: low)."),
    (dict(certainty=None), dict(certainty="very low"),
     "Certainty of the evidence: very low (in 1.0.0: not assessed)."),
    (dict(claims=["Responses are rare."]), dict(claims=["Responses are common."]),
     "Key sentence no longer made: “Responses are rare.”"),
    (dict(k=1), dict(k=2), "Now pooled from 2 studies (in 1.0.0: one study, not pooled)."),
    (dict(k=3), dict(k=1), "No longer pooled: 1 study now (in 1.0.0: 3)."),
])
def test_changes_that_alter_a_reading_are_flagged(before: dict, after: dict,
                                                  reading: str) -> None:
    def hr(**kw: object) -> dict:
        ci = {k: kw.pop(k) for k in ("estimate", "lo", "hi") if k in kw}
        return entry("Hazard ratio", scale="ratio", **{"estimate": 0.7, "lo": 0.4, "hi": 1.2,
                                                      "k": 2, **ci, **kw})

    diff = compare(release(analyses={"hr": hr(**before)}), state(analyses={"hr": hr(**after)}))
    (change,) = diff.analyses
    assert reading in change.readings
    assert diff.readings[0][0] == "Hazard ratio"
    assert "how an estimate reads:" in describe_diff(diff)
    assert f"! {reading}" in diff_text(diff)


def test_a_proportion_has_no_null_value_to_cross() -> None:
    diff = compare(release(analyses={"orr": entry(estimate=0.2, lo=0.1, hi=0.35)}),
                   state(analyses={"orr": entry(estimate=0.25, lo=0.12, hi=0.4)}))
    assert diff.analyses[0].readings == ()


def test_new_and_removed_analyses() -> None:
    diff = compare(release(analyses={"old": entry("Old")}), state(analyses={"orr": entry()}))
    assert [(a.analysis_id, a.kind, a.readings) for a in diff.analyses] == [
        ("orr", "new", ("New in this version.",)), ("old", "removed", ("No longer in the book.",))]
    table = changes.analysis_changes_table(diff)
    assert table["Change"].tolist() == ["new", "removed"]
    assert table["In 1.0.0"].tolist() == ["no estimate", "20.0% (10.0% to 35.0%), k = 3"]


def test_page_and_terminal_show_the_same_items_and_the_page_escapes_them() -> None:
    now = state(registry_sha256="r2", last_search="2026-03-01")
    now["studies"] = {**now["studies"], "c": study(TRICKY, studies=(1, "u"))}
    now["analyses"] = {**now["analyses"], "orr": entry(title=f"Response {TRICKY}", k=4,
                                                       estimate=0.5, lo=0.4, hi=0.6,
                                                       studies=list("abc"))}
    before = {**state()["analyses"], "orr": entry(studies=["a", "b"])}
    diff = compare(release(analyses=before), now)
    text, page = diff_text(diff), describe_diff(diff)
    assert TRICKY in text  # the terminal shows text as it is
    assert "<b>" not in page and "\\<b\\>Bold\\<\\/b\\>" in page  # the page escapes it
    assert "The searches were run again, last on 2026\\-03\\-01." in page
    assert "In the registry, 1 study added." in page
    studies = changes.study_changes_table(diff)
    assert studies.iloc[0].tolist() == [TRICKY, "added", "1 study row"]
    before, after, _, moved = changes.analysis_summary(diff.analyses[0], diff.labels)
    assert moved == f"added: {TRICKY}"
    for item in (before, after, moved, *diff.analyses[0].readings):
        assert item in text
    assert json.loads(json.dumps(diff.to_dict()))["changed"] is True


def test_show_tables_or_a_sentence() -> None:
    quiet = compare(release(), state())
    assert "No study was added" in changes.show_studies(quiet).data
    assert "No analysis changed" in changes.show_analyses(quiet).data
    first = compare(None, state())
    assert "No release to compare with yet" in changes.show_studies(first).data
