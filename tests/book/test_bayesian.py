"""evidence.book.bayesian: the Bayesian sensitivity analysis of a pooled proportion."""

from __future__ import annotations

import pandas as pd
import pytest
from chapter_data import plain

from evidence.book import bayesian
from evidence.book.pooled import estimator_panel_table, pool_table
from evidence.stats.bayes import bayes_binomial


def table(events: list[int], totals: list[int]) -> pd.DataFrame:
    k = len(events)
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(k)],
                         "label": [f"Study {i}" for i in range(k)],
                         "year": [2000 + i for i in range(k)], "events": events,
                         "total": totals})


@pytest.fixture(scope="module")
def orr() -> tuple:
    pa = pool_table(table([0, 1, 1, 1, 4], [7, 14, 11, 20, 8]), method="GLMM", test="t")
    return pa, bayesian.bayes_sensitivity(pa, [0.5])


def test_fits_are_the_librarys_binomial_normal_model(orr: tuple) -> None:
    pa, bayes = orr
    direct = bayes_binomial([0, 1, 1, 1, 4], [7, 14, 11, 20, 8], tau_scale=0.5,
                            mu_prior=bayesian.MU_PRIOR, study_ids=list(pa.studies["study_id"]))
    assert bayes.fits[0].proportion == direct.proportion
    saved = bayes.to_json()[0]
    assert saved["tau_scale"] == 0.5 and saved["tau_prior"] == "halfnormal(0.5)"
    assert saved["proportion"]["median"] == pytest.approx(direct.proportion.median)


def test_panel_rows_and_words(orr: tuple) -> None:
    pa, bayes = orr
    p = bayes.fits[0].proportion
    rows = bayesian.bayes_panel_rows(bayes)
    assert rows.loc[0, "Method"] == "Bayes, τ ~ half-normal(0.5)"
    assert rows.loc[0, "Pooled (95% CI)"].startswith(f"{100 * p.median:.1f}%")
    full = estimator_panel_table(pa, bayes_rows=rows)
    assert full["Method"].iloc[-1] == "Bayes, τ ~ half-normal(0.5)"
    assert bayesian.bayes_panel_rows(None).empty
    words = plain(bayesian.describe_bayes(bayes, pa.pooled, "responded"))
    assert f"an estimated {100 * p.median:.1f}% responded (95% credible interval" in words
    assert "narrower than the primary confidence interval" in words  # t interval: 1.5%-42.9%
    wide = dict(pa.pooled, ci_lower=p.central_lower + 0.01, ci_upper=p.central_upper - 0.01)
    assert "wider than the primary confidence interval" in bayesian.describe_bayes(
        bayes, wide, "responded")


def test_single_study_and_figures(orr: tuple) -> None:
    pa, bayes = orr
    one = pool_table(table([3], [10]), method="GLMM", test="t")
    assert bayesian.bayes_sensitivity(one, [0.5, 1.0]) is None
    assert "single study" in bayesian.describe_bayes(None, one.pooled, "x")
    fig = bayesian.posterior_figure(bayes, pa.pooled)
    gids = {a.get_gid() for a in fig.findobj()}
    assert {"posterior_density", "primary_ci", "primary_estimate"} <= gids
    empty = bayesian.posterior_figure(None, one.pooled)
    from matplotlib.text import Text

    assert any("single study" in t.get_text() for t in empty.findobj(Text))
