"""Tests for evidence.stats.subgroups: subgroup analyses against metafor 3.8-1
(metafor_extra.json), and comparisons of levels within one study against R."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_metafor_close

from evidence.stats.effects import escalc
from evidence.stats.subgroups import SubgroupResult, compare_levels, subgroup_analysis


@pytest.mark.parametrize("index", range(4))
def test_subgroups_match_metafor(bcg, extra, index):
    """Separate fits per allocation group and Q-between from rma(est, sei=se, method="FE")."""
    b, es = bcg
    r = extra["subgroup"][index]
    res = subgroup_analysis(es, b["alloc"], r["method"], knha=r["knha"])
    assert isinstance(res, SubgroupResult)
    assert res.groups == tuple(r["groups"])
    fits = [res.results[g] for g in res.groups]
    for key, attr in (("estimate", "estimate"), ("se", "se"), ("ci_lb", "ci_lower"),
                      ("ci_ub", "ci_upper"), ("tau2", "tau2"), ("I2", "i2"), ("QE", "q"),
                      ("QEp", "q_pvalue")):
        assert_metafor_close([getattr(f, attr) for f in fits], r[key], f"subgroup {key}")
    assert [f.k for f in fits] == r["k"]
    assert_metafor_close(res.q_between, r["Q_between"], "Q between")
    assert_metafor_close(res.q_between_pvalue, r["Q_between_p"], "Q between p")
    assert res.q_between_df == r["Q_between_df"]
    frame = res.summary()
    assert list(frame.index) == list(r["groups"])
    assert frame.index_name == "group"
    assert not frame.columns["single_study"].any()


def test_single_study_subgroup_flagged():
    es = escalc("PLO", xi=[1, 4, 3, 9], ni=[10, 12, 10, 20], study_ids=list("abcd"))
    res = subgroup_analysis(es, ["x", "x", "x", "y"], "REML")
    assert res.single_study == ("y",)
    assert res.results["y"].k == 1
    assert res.q_between_df == 1
    summary = res.summary()
    assert dict(zip(summary.index, summary.columns["single_study"], strict=True))["y"]
    assert any("single-study" in n for n in res.notes)
    with pytest.raises(ValueError, match="groups has 3 entries"):
        subgroup_analysis(es, ["x", "x", "y"])


# --------------------------------------------------------------------------- regtest




def test_compare_levels_two_levels_matches_r() -> None:
    # R: fisher.test(matrix(c(54, 81, 40, 72), 2, byrow=TRUE))$p.value = 0.512747191612
    #    summary(escalc("RD", ai=54, n1i=135, ci=40, n2i=112)): 0.0428571428571,
    #    ci -0.0784027875337 to 0.164117073248
    c = compare_levels([54, 40], [135, 112])
    assert c.test == "fisher"
    assert c.p_value == pytest.approx(0.512747191612, rel=1e-9)
    assert (c.rd, c.rd_lower, c.rd_upper) == pytest.approx(
        (0.0428571428571, -0.0784027875337, 0.164117073248), rel=1e-9)
    assert c.statistic == pytest.approx((54 * 72) / (81 * 40))
    np.testing.assert_allclose(c.proportion, [54 / 135, 40 / 112])


def test_compare_levels_more_levels_is_a_chisq_test() -> None:
    # R: chisq.test(matrix(c(24,65,28,64,42,24), ncol=2, byrow=TRUE)):
    #    X-squared = 25.2301299174, df = 2, p = 3.32159669409e-06
    c = compare_levels([24, 28, 42], [89, 92, 66])
    assert c.test == "chisq"
    assert (c.statistic, c.df, c.p_value) == pytest.approx(
        (25.2301299174, 2, 3.32159669409e-06), rel=1e-9)
    assert np.isnan(c.rd)


def test_compare_levels_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least two levels"):
        compare_levels([1], [2])
    with pytest.raises(ValueError, match="0 <= xi <= ni"):
        compare_levels([3, 1], [2, 2])
