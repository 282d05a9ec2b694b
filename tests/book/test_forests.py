"""evidence.book.forests: the pooled proportion's figure and the caption chosen with it.

The caption must say what was drawn: a labelled forest plot (with a weight column only
where the model defines weights), a caterpillar plot, or one study with nothing pooled.
"""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from evidence.book import forests
from evidence.book.pooled import pool_table
from evidence.book.text import md


def table(events: list[int], totals: list[int], label: str = "Study") -> pd.DataFrame:
    k = len(events)
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(k)],
                         "label": [f"{label} {i}" for i in range(k)],
                         "year": [2000 + i for i in range(k)], "events": events,
                         "total": totals})


ORR = ([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])


def labels_of(t: pd.DataFrame) -> dict[str, str]:
    return dict(zip(t["study_id"], t["label"], strict=True))


def fig_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text()
                                                                 for t in fig.texts]


@pytest.mark.parametrize(("k", "max_k", "kind"), [(1, 60, "single"), (2, 60, "forest"),
                                                  (60, 60, "forest"), (61, 60, "caterpillar")])
def test_forest_kind(k: int, max_k: int, kind: str) -> None:
    assert forests.forest_kind(k, max_k) == kind


def test_forest_kind_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="k = 0"):
        forests.forest_kind(0, 60)
    with pytest.raises(ValueError, match="max_forest_k"):
        forests.forest_kind(3, 0)


@pytest.mark.parametrize("method", ["GLMM", "REML"])
def test_a_labelled_forest_is_not_called_a_caterpillar(method: str) -> None:
    t = table(*ORR)
    res = pool_table(t, method=method)
    plot = forests.proportion_forest(res, labels=labels_of(t), risk_of_bias=[None] * 5)
    assert plot.kind == "forest"
    assert "caterpillar" not in plot.caption and "without labels" not in plot.caption
    assert "Observed proportions of the 5 studies" in plot.caption
    shown = fig_texts(plot.figure)
    assert "Study 4" in shown  # labelled
    weighted = method != "GLMM"
    assert ("Weight" in shown) is weighted
    assert ("weight in the model (%)" in plot.caption) is weighted
    assert ("defines no study weights" in plot.caption) is not weighted
    assert "prediction interval" in plot.caption  # k = 5, a random-effects model


def test_many_studies_make_a_caterpillar_and_the_caption_says_so() -> None:
    t = table([3, 5, 2, 7], [20, 30, 15, 40])
    res = pool_table(t, method="REML")
    plot = forests.proportion_forest(res, labels=labels_of(t), max_forest_k=3)
    assert plot.kind == "caterpillar"
    assert "caterpillar plot" in plot.caption and "without labels" in plot.caption
    assert "Study 0" not in fig_texts(plot.figure)


def test_a_single_study_is_named_and_nothing_is_pooled() -> None:
    t = table([3], [20], label="*Odd* <b>")
    res = pool_table(t, method="GLMM")
    plot = forests.proportion_forest(res, labels=labels_of(t), risk_of_bias=["low"])
    assert plot.kind == "single"
    assert "nothing is pooled" in plot.caption
    assert f"({md('*Odd* <b> 0')})" in plot.caption  # registry text escaped for Markdown
    assert "<b>" not in plot.caption
    assert "method" not in plot.caption
    shown = fig_texts(plot.figure)
    assert not any("method" in s for s in shown)
    assert any(s.startswith("A single study: nothing is pooled") for s in shown)
    assert "15.0% [3.2%, 37.9%]" in shown  # 3/20 with its exact interval, in percent


def test_forest_caption_rejects_an_unknown_kind() -> None:
    res = pool_table(table(*ORR), method="REML")
    with pytest.raises(ValueError, match="kind='bar'"):
        forests.forest_caption(res, "bar")
