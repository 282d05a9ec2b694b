"""Tests for evidence.stats.sensitivity against metafor's leave1out and cumul (fixtures)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import PROPORTION_SETS, assert_metafor_close, load_metafor, proportion_csv

from evidence.stats.effects import escalc
from evidence.stats.pooling import ConvergenceError, rma
from evidence.stats.results import EffectSizes, MetaResult
from evidence.stats.sensitivity import (
    Refits,
    cumulative,
    estimator_panel,
    leave_one_out,
)

SERIES = {"estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval",
          "ci_lb": "ci_lower", "ci_ub": "ci_upper", "Q": "q", "Qp": "q_pvalue",
          "tau2": "tau2", "I2": "i2", "H2": "h2"}


@pytest.mark.parametrize("name", PROPORTION_SETS)
def test_leave_one_out_reml_plo_matches_metafor(name):
    d = proportion_csv(name)
    es = escalc("PLO", xi=d.events, ni=d.total, study_ids=d.study)
    res = leave_one_out(es, "REML")
    assert isinstance(res, Refits) and res.kind == "leave_one_out"
    for rec in load_metafor(name)["leave1out"]:
        assert res.omitted == tuple(rec["omitted"])
        skip = {"Qp"} if es.k == 2 else set()  # k = 1 fits: NaN here, 1 in metafor
        for key, attr in SERIES.items():
            if key not in skip:
                assert_metafor_close(getattr(res, attr), rec[key], f"{name} l1o {key}")
        assert_metafor_close(res.back_estimate, rec["prop"], f"{name} l1o prop")
        assert_metafor_close(res.back_ci_lower, rec["prop_ci_lb"], f"{name} l1o prop lb")
        assert_metafor_close(res.back_ci_upper, rec["prop_ci_ub"], f"{name} l1o prop ub")
    assert all(e is None for e in res.errors)
    assert (res.k == es.k - 1).all()


def _es(extra, label):
    if label == "bcg":
        b = extra["data"]["bcg"]
        return escalc("RR", ai=b["ai"], bi=b["bi"], ci=b["ci"], di=b["di"], study_ids=b["author"])
    d = proportion_csv("pritz1997")
    return escalc("PLO", xi=d.events, ni=d.total, study_ids=d.study)


@pytest.mark.parametrize("index", range(4))
def test_leave_one_out_other_methods_match_metafor(extra, index):
    """dat.bcg REML and DL + knha; pritz1997 PM and FE."""
    rec = extra["leave1out"][index]
    res = leave_one_out(_es(extra, rec["label"]), rec["method"], knha=rec["test"] == "knha")
    for key, attr in SERIES.items():
        if rec.get(key) is not None:
            assert_metafor_close(getattr(res, attr), rec[key], f"l1o {rec['label']} {key}")
    assert res.test == rec["test"]


@pytest.mark.parametrize("index", range(2))
def test_cumulative_matches_metafor(extra, index):
    """dat.bcg by year (REML) and pritz1997 by sample size (DL); ties keep input order."""
    rec = extra["cumul"][index]
    res = cumulative(_es(extra, rec["label"]), rec["order"], rec["method"])
    assert isinstance(res, Refits) and res.kind == "cumulative"
    for key, attr in SERIES.items():
        exp = list(rec[key])
        act = getattr(res, attr)
        if key == "Qp":  # first row has k = 1: NaN here, 1 in metafor
            assert math.isnan(act[0])
            act, exp = act[1:], exp[1:]
        assert_metafor_close(act, exp, f"cumul {rec['label']} {key}")
    assert res.k.tolist() == list(range(1, len(rec["estimate"]) + 1))
    frame = res.summary()
    assert frame.index_name == "added" and len(frame.index) == res.k.size


def test_cumulative_default_order_and_validation():
    es = escalc("PLO", xi=[1, 4, 3], ni=[10, 12, 10], study_ids=list("abc"))
    res = cumulative(es, method="DL")
    assert res.added == ("a", "b", "c")
    assert res.estimate[0] == pytest.approx(es.yi[0])
    assert res.estimate[-1] == pytest.approx(rma(es, "DL").estimate)
    with pytest.raises(ValueError, match="order has shape"):
        cumulative(es, [1, 2])


def test_leave_one_out_needs_two_studies():
    with pytest.raises(ValueError, match="k = 1"):
        leave_one_out(escalc("PLO", xi=[1], ni=[10]))


def test_custom_fitter_and_failures_are_recorded():
    """A fitter that fails on one subset: that row is NaN with the message, others fitted."""
    es = escalc("PLO", xi=[1, 4, 3, 9], ni=[10, 12, 10, 20], study_ids=list("abcd"))
    seen: list[tuple[str, ...]] = []

    def fitter(sub: EffectSizes) -> MetaResult:
        seen.append(sub.study_ids)
        assert sub.xi is not None and sub.ni is not None  # counts travel with the subset
        if "a" not in sub.study_ids:
            raise ConvergenceError("no convergence (test)")
        return rma(sub, "FE")

    res = leave_one_out(es, fitter=fitter)
    assert seen[0] == ("b", "c", "d")
    assert res.errors[0] == "ConvergenceError: no convergence (test)"
    assert math.isnan(res.estimate[0])
    assert res.errors[1:] == (None, None, None)
    assert res.method == "FE"
    summary = res.summary()
    assert summary.columns["error"][summary.index.index("a")].startswith("ConvergenceError")
    assert res.failed == {0: "no convergence (test)"}


def test_leave_one_out_summary():
    d = proportion_csv("orr_her2ctc")
    res = leave_one_out(escalc("PLO", xi=d.events, ni=d.total, study_ids=d.study))
    frame = res.summary()
    assert list(frame.index) == list(d.study)
    assert {"estimate", "back_estimate", "tau2", "i2", "error"} <= set(frame.columns)


def test_one_refit_type_knows_its_kind():
    es = escalc("PLO", xi=[1, 4, 3], ni=[10, 12, 10], study_ids=list("abc"))
    loo, cum = leave_one_out(es, "DL"), cumulative(es, method="DL")
    assert type(loo) is type(cum) is Refits
    assert loo.omitted == cum.added == ("a", "b", "c")
    with pytest.raises(AttributeError, match="omits no study"):
        cum.omitted  # noqa: B018
    with pytest.raises(AttributeError, match="adds no study"):
        loo.added  # noqa: B018
    with pytest.raises(ValueError, match="unknown kind"):
        Refits(kind="bootstrap", **{f: getattr(loo, f) for f in (
            "study_ids", "k", "estimate", "se", "zval", "pval", "ci_lower", "ci_upper", "q",
            "q_pvalue", "tau2", "i2", "h2", "back_estimate", "back_ci_lower", "back_ci_upper",
            "errors", "reasons", "measure", "method", "test")})


def test_estimator_panel_matches_metafor_records():
    """Every cell of the panel equals the corresponding metafor_reference.R record."""
    name = "pritz1997"
    d = proportion_csv(name)
    panel = pd.DataFrame(estimator_panel(d.events, d.total).columns)
    assert len(panel) == 4 * 9  # 7 estimators with z, REML with knha and adhoc
    assert panel["error"].isna().all()
    for rec in load_metafor(name)["records"]:
        if not rec["zero_handling"].startswith(("add=1/2,to=only0", "none")):
            continue
        row = panel[(panel.measure == rec["measure"]) & (panel.method == rec["method"])
                    & (panel.test == rec["test"])]
        assert len(row) == 1, rec["measure"] + rec["method"]
        row = row.iloc[0]
        what = f"panel {rec['measure']} {rec['method']} {rec['test']}"
        for key, col in (("estimate", "estimate"), ("se", "se"), ("prop", "proportion"),
                         ("prop_ci_lb", "prop_ci_lower"), ("prop_ci_ub", "prop_ci_upper"),
                         ("prop_pi_lb", "prop_pi_lower"), ("prop_pi_ub", "prop_pi_upper"),
                         ("tau2", "tau2"), ("I2", "i2"), ("QE", "q")):
            assert_metafor_close(row[col], rec[key], f"{what} {key}")


def test_estimator_panel_rows_and_validation():
    panel = pd.DataFrame(estimator_panel([1, 2], [10, 10], measures=("PLO",),
                                         methods=("REML",),
                                         tests_for={"REML": ("knha", "adhoc")},
                                         glmm_tests=("z", "t")).columns)
    assert list(panel.test) == ["z", "knha", "adhoc", "z", "t"]
    assert list(panel.method) == ["REML", "REML", "REML", "GLMM", "GLMM"]
    with pytest.raises(ValueError, match="tests_for names"):
        estimator_panel([1, 2], [10, 10], methods=("DL",), tests_for={"REML": ("knha",)})
    with pytest.raises(ValueError, match="test"):
        estimator_panel([1, 2], [10, 10], methods=("DL",), tests_for={"DL": ("hk",)})
    with pytest.raises(ValueError, match="glmm test"):
        estimator_panel([1, 2], [10, 10], methods=("DL",), glmm_tests=("knha",))
    with pytest.raises(ValueError, match="unknown method"):
        estimator_panel([1, 2], [10, 10], methods=("XX",))


def test_estimator_panel_error_column_filled_on_failure(monkeypatch):
    import evidence.stats.sensitivity as sens

    def broken(es, method, **kw):
        if method == "REML":
            raise ConvergenceError("Fisher scoring did not converge (test)")
        return rma(es, method, **kw)

    monkeypatch.setattr(sens, "rma", broken)
    panel = pd.DataFrame(sens.estimator_panel([1, 4, 3], [10, 12, 10], measures=("PLO",),
                                              methods=("DL", "REML"), tests_for={}).columns)
    reml = panel[panel.method == "REML"].iloc[0]
    assert reml["error"] == "ConvergenceError: Fisher scoring did not converge (test)"
    assert math.isnan(reml["estimate"])
    assert panel[panel.method == "DL"]["error"].isna().all()
