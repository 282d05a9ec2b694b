"""evidence.book.harms: the harms table with sources, what is pooled and the words."""

from __future__ import annotations

import math

import pandas as pd
from chapter_data import plain

from evidence.book import harms


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"arm_role": "experimental", "note": "", "source": "a.txt", "quote": "q",
            "locator": "", "printed": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_table_counts_and_sources() -> None:
    h = frame([{"study_id": "v", "arm": "trastuzumab_taxane", "harm": "grade4", "definition":
                "grade 4 events", "events": 0.0, "total": 8.0},
               {"study_id": "t", "arm": "all", "arm_role": "", "harm": "early_stopping",
                "definition": "stopped", "events": math.nan, "total": math.nan,
                "note": "futility", "source": "pmid:1", "quote": "", "locator": "Abstract",
                "printed": "stopped for futility"}])
    table = harms.harms_table(h, {"v": "V 2024"})
    assert table.loc[0, "Patients"] == "0 / 8 (0.0%; 95% CI 0.0% to 36.9%)"
    assert table.loc[0, "Trial"] == "V 2024" and table.loc[0, "Arm"] == "trastuzumab taxane"
    assert table.loc[1, "Patients"] == "no count reported"
    assert table.loc[1, "Source"] == "pmid:1, Abstract (printed: stopped for futility)"
    assert table.loc[0, "Source"] == "seed text: \u201cq\u201d"
    words = plain(harms.describe_harms(h, {"v": "V 2024"}))
    assert "- *V 2024*: grade 4 events: 0 of 8 (trastuzumab taxane)." in words
    assert "- *t*: stopped early (futility)." in words
    assert "No harm is reported with the same definition and with counts by two of the " \
           "2 trials" in words


def test_same_harm_in_two_trials_is_poolable() -> None:
    h = frame([{"study_id": s, "arm": "a", "harm": "cardiac", "definition": "cardiac",
                "events": 1.0, "total": 10.0} for s in ("x", "y")])
    assert sorted(harms.harm_pools(h)) == ["cardiac"]
    assert "1 harm is reported with the same definition" in harms.describe_harms(h, {})
    assert harms.describe_harms(h.iloc[0:0], {}) == "No trial in the registry reports harms."
