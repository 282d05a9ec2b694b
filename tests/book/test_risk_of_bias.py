"""evidence.book.risk_of_bias and the robvis figures: overall judgements by each tool's
rule, the analysis's tool, the sensitivity analysis without high-risk studies, tables and
figures, and the forest plot's risk-of-bias column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from chapter_data import plain

from evidence.book import risk_of_bias as rb
from evidence.book.figures.robvis import judgement_style, summary_bars, traffic_light
from evidence.registry import load
from evidence.registry.appraisal import TOOLS

DATA = Path(__file__).resolve().parents[2] / "data"


def rob_rows(study: str, tool: str, values: list[str]) -> list[dict[str, str]]:
    return [{"study_id": study, "tool": tool, "domain": d, "judgement": v, "signalling": "",
             "reason": f"because {i}", "source": "a.txt", "quote": "q", "locator": ""}
            for i, (d, v) in enumerate(zip(TOOLS[tool].domain_codes, values, strict=True))]


@pytest.fixture
def rob() -> pd.DataFrame:
    return pd.DataFrame(rob_rows("a", "quadas2", ["low"] * 4)
                        + rob_rows("b", "quadas2", ["low", "high", "low", "unclear"])
                        + rob_rows("c", "quadas2", ["low", "unclear", "low", "low"])
                        + rob_rows("a", "quips", ["moderate"] * 3 + ["low"] * 3))


def test_overall_and_tool_of_an_analysis(rob: pd.DataFrame) -> None:
    overall = rb.overall_judgements(rob)
    assert overall.values.tolist() == [["a", "quadas2", "low"], ["a", "quips", "high"],
                                       ["b", "quadas2", "high"], ["c", "quadas2", "unclear"]]
    types = pd.DataFrame({"outcome": ["conv", "orr", "att"],
                          "appraisal": ["agreement", "single_arm", ""]})
    assert rb.analysis_tool(types, "conv") == "quadas2"
    assert rb.analysis_tool(types, "orr") == "jbi_case_series"
    assert rb.analysis_tool(types, "att") is None
    assert rb.analysis_tool(types, "orr", comparison=True, randomized="yes") == "rob2"
    assert rb.judgements_of(overall, "quadas2", ["a", "b", "z"]) == {
        "a": "low", "b": "high", "z": None}
    assert rb.judgements_of(overall, None, ["a"]) == {"a": None}


def test_sensitivity_without_high_risk_words(rob: pd.DataFrame) -> None:
    judgements = {"a": "low", "b": "high", "c": "unclear"}
    table = pd.DataFrame({"study_id": ["a", "b", "c"], "events": [1, 2, 3]})
    kept, dropped = rb.without_high_risk(table, judgements)
    assert list(kept["study_id"]) == ["a", "c"] and dropped == ["b"]
    full = {"estimate": 0.3, "ci_lower": 0.2, "ci_upper": 0.4}
    labels = {"b": "Bee 2020"}
    inside = plain(rb.describe_without_high(full, {"estimate": 0.25, "ci_lower": 0.1,
                                                   "ci_upper": 0.5}, ["b"], labels, 3,
                                            "responded", "quadas2"))
    assert ("Leaving out the 1 study at high overall risk of bias (QUADAS-2, adapted: "
            "Bee 2020) leaves 2 studies: an estimated 25.0% responded") in inside
    assert "lies inside the primary confidence interval" in inside
    outside = rb.describe_without_high(full, {"estimate": 0.1, "ci_lower": 0.05,
                                              "ci_upper": 0.2}, ["b"], labels, 3, "x",
                                       "quadas2")
    assert "lies outside the primary confidence interval" in outside
    assert "No study of this outcome is at high" in rb.describe_without_high(
        full, None, [], labels, 3, "x", "quadas2")
    assert "Every study of this outcome is at high" in rb.describe_without_high(
        full, None, ["b"], labels, 1, "x", "quadas2")
    assert "not appraised" in rb.describe_without_high(full, None, [], labels, 3, "x", None)


def test_tables_and_figures(rob: pd.DataFrame) -> None:
    overall = rb.overall_judgements(rob)
    labels = {"a": "A 2001", "b": "B 2002", "c": "C <b>2003</b>"}
    table = rb.domain_table(rob, "quadas2", labels, overall)
    assert list(table.columns) == ["Study", *[n for _, n in TOOLS["quadas2"].domains],
                                   "Overall"]
    assert table.loc[1, "Overall"] == "High"
    reasons = rb.reasons_table(rob, "quips", labels)
    assert len(reasons) == 6 and reasons.loc[0, "Judgement"] == "Moderate"
    light, bars = rb.rob_figures(rob, "quadas2", labels, overall)
    assert len([a for a in light.findobj() if a.get_gid() == "rob_overall"]) == 3
    assert len([a for a in bars.findobj() if a.get_gid() == "rob_bar"]) >= 5
    words = rb.describe_tool(rob, overall, "quadas2", labels)
    assert words.startswith("3 studies (") and "QUADAS-2" in words
    assert rb.describe_tool(rob, overall, "rob2", labels) == (
        "No study is appraised with this tool.")
    assert "43 studies" not in rb.describe_appraisal(rob, overall)
    with pytest.raises(ValueError, match="unknown judgement"):
        judgement_style("dubious")
    with pytest.raises(ValueError, match="one row per study"):
        traffic_light(["a"], ["D"], [["low", "low"]], ["low"])
    with pytest.raises(ValueError, match="weights"):
        summary_bars(["D"], [["low"]], ["low"], weights=[-1.0])


def test_forest_draws_the_rob_column() -> None:
    from evidence.book.figures import forest
    from evidence.stats.effects import escalc
    from evidence.stats.pooling import rma

    res = rma(escalc("PLO", xi=[1, 2, 3], ni=[10, 12, 14], study_ids=["a", "b", "c"]), "REML")
    fig = forest(res, risk_of_bias=["low", "high", None])
    badges = [t.get_text() for t in fig.findobj() if t.get_gid() == "badge"]
    assert badges == ["+", "×"]
    foot = " ".join(t.get_text() for t in fig.findobj() if t.get_gid() == "footnote")
    assert "RoB: overall risk of bias, + low, × high; n.a. not assessed" in foot
    with pytest.raises(ValueError, match="risk_of_bias has 2 entries for 3 studies"):
        forest(res, risk_of_bias=["low", "high"])


def test_shipped_assessments_give_every_pooled_study_a_judgement() -> None:
    reg = load(DATA)
    overall = rb.overall_judgements(reg.risk_of_bias)
    pooled = reg.query("outcomes", outcome="conversion_tissue_neg_to_ctc_pos", subgroup="")
    got = rb.judgements_of(overall, "quadas2", list(pooled["study_id"]))
    assert all(v is not None for v in got.values()), got
