"""Tests for evidence.stats.regression against metafor 3.8-1 (metafor_extra.json, reference
JSONs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import PROPORTION_SETS, assert_metafor_close, load_metafor, proportion_csv

from evidence.stats.effects import escalc
from evidence.stats.pooling import rma
from evidence.stats.regression import (
    MetaRegression,
    RegtestResult,
    dummy_code,
    regtest,
    rma_mods,
)

MODS_FIELDS = {"beta": "estimates", "se": "se", "zval": "zval", "pval": "pval",
               "ci_lb": "ci_lower", "ci_ub": "ci_upper", "QM": "qm", "QMp": "qm_pvalue",
               "tau2": "tau2", "se_tau2": "se_tau2", "I2": "i2", "H2": "h2", "QE": "qe",
               "QEp": "qe_pvalue", "R2": "r2", "logLik": "loglik"}


def _mods_cases():
    for i, r in enumerate(load_metafor("metafor_extra")["mods"]):
        yield pytest.param(r, id=f"{r['label']}-{r['method']}-{r['test']}-{i}")


@pytest.mark.parametrize("record", list(_mods_cases()))
def test_meta_regression_matches_metafor(bcg, record):
    """dat.bcg log RR on absolute latitude (7 estimators, knha), latitude + year,
    allocation (dummy coded), and the cell-means model without intercept."""
    b, es = bcg
    label = record["label"]
    intercept = True
    if label == "ablat":
        X = {"ablat": b["ablat"]}
    elif label == "ablat+year":
        X = {"ablat": b["ablat"], "year": b["year"]}
    elif label == "alloc":
        X = dummy_code(b["alloc"], "alloc")
    else:  # "0+alloc"
        X = dummy_code(b["alloc"], "alloc", drop_reference=False)
        intercept = False
    res = rma_mods(es, X, record["method"], knha=record["test"] == "knha", intercept=intercept)
    assert isinstance(res, MetaRegression)
    what = f"{label} {record['method']} {record['test']}"
    assert res.coef_names == tuple(record["coef_names"])
    for key, attr in MODS_FIELDS.items():
        assert_metafor_close(getattr(res, attr), record[key], f"{what} {key}")
    assert_metafor_close(res.vcov.ravel(order="F"), record["vb"], f"{what} vb")
    assert res.qm_df == record["QMdf"][0]
    assert res.qm_ddf == record["QMdf"][1]
    assert res.k == record["k"] and res.p == record["p"]
    assert res.qe_df == res.k - res.p


def test_summary_and_predict(bcg):
    b, es = bcg
    res = rma_mods(es, {"ablat": b["ablat"]}, "REML")
    frame = res.summary()
    assert frame.index_name == "coefficient"
    assert list(frame.index) == ["intrcpt", "ablat"]
    assert list(frame.columns) == ["estimate", "se", "zval", "pval", "ci_lower", "ci_upper"]
    kn = rma_mods(es, {"ablat": b["ablat"]}, "REML", knha=True).summary()
    assert "tval" in kn.columns
    pred = res.predict({"ablat": [10, 30, 50]})
    expected = res.estimates[0] + res.estimates[1] * np.array([10, 30, 50])
    np.testing.assert_allclose(pred.columns["pred"], expected, rtol=1e-12)
    assert (pred.columns["pi_lower"] < pred.columns["ci_lower"]).all()
    with pytest.raises(ValueError, match="newmods must give exactly"):
        res.predict({"year": [1950]})


def test_intercept_only_mods_equals_rma(bcg):
    _, es = bcg
    res = rma_mods(es, {}, "REML")
    base = rma(es, "REML")
    assert res.estimates[0] == pytest.approx(base.estimate, rel=1e-12)
    assert res.tau2 == pytest.approx(base.tau2, rel=1e-12)
    assert math.isnan(res.r2)


def test_ones_column_becomes_intercept(bcg):
    b, es = bcg
    a = rma_mods(es, {"one": np.ones(13), "ablat": b["ablat"]}, "REML", intercept=False)
    c = rma_mods(es, {"ablat": b["ablat"]}, "REML")
    assert a.coef_names == ("intrcpt", "ablat")
    np.testing.assert_allclose(a.estimates, c.estimates, rtol=1e-12)


def test_array_and_dataframe_moderators(bcg):
    b, es = bcg
    arr = rma_mods(es, np.column_stack([b["ablat"], b["year"]]), "DL")
    assert arr.coef_names == ("intrcpt", "x1", "x2")
    df = rma_mods(es, pd.DataFrame({"ablat": b["ablat"], "year": b["year"]}), "DL")
    np.testing.assert_allclose(arr.estimates, df.estimates, rtol=1e-12)


def test_regression_errors(bcg):
    b, es = bcg
    with pytest.raises(ValueError, match="not of full rank"):
        rma_mods(es, {"a": b["ablat"], "b": 2 * np.asarray(b["ablat"], float)}, "REML")
    with pytest.raises(ValueError, match="unknown method 'OLS'"):
        rma_mods(es, {"a": b["ablat"]}, "OLS")
    with pytest.raises(ValueError, match="has shape"):
        rma_mods(es, {"a": [1, 2, 3]}, "REML")
    small = escalc("PLO", xi=[1, 2], ni=[10, 10])
    with pytest.raises(ValueError, match="larger than the number of observations"):
        rma_mods(small, {"x": [1, 2]}, "REML")


def test_dummy_code_names_like_r():
    cols = dummy_code(["random", "alternate", "systematic", "random"], "alloc")
    assert list(cols) == ["allocrandom", "allocsystematic"]
    np.testing.assert_array_equal(cols["allocrandom"], [1, 0, 0, 1])
    full = dummy_code(["b", "a"], "g", levels=["b", "a"], drop_reference=False)
    assert list(full) == ["gb", "ga"]
    with pytest.raises(ValueError, match="not among the levels"):
        dummy_code(["a", "c"], "g", levels=["a", "b"])


# --------------------------------------------------------------------------- subgroups


def _regtest_cases():
    extra = load_metafor("metafor_extra")
    for i, r in enumerate(extra["regtest"]):
        yield pytest.param(r["label"], r, id=f"{r['label']}-{r['model']}-{r['predictor']}-{i}")
    for name in PROPORTION_SETS:
        for r in load_metafor(name)["regtest"]:
            yield pytest.param(name, dict(r, fit_method="REML"),
                               id=f"{name}-{r['model']}-{r['predictor']}")


@pytest.mark.parametrize("label, record", list(_regtest_cases()))
def test_regtest_matches_metafor(extra, label, record):
    if label == "bcg":
        b = extra["data"]["bcg"]
        es = escalc("RR", ai=b["ai"], bi=b["bi"], ci=b["ci"], di=b["di"])
    else:
        d = proportion_csv(label)
        es = escalc("PLO", xi=d.events, ni=d.total)
    knha = record["model"] == "rma" and record.get("dfs") is not None
    method = record["fit_method"] if record["model"] == "rma" else "REML"
    res = regtest(es, record["model"], method, record["predictor"], knha=knha)
    assert isinstance(res, RegtestResult)
    what = f"{label} {record['model']} {record['predictor']}"
    for key, attr in (("zval", "zval"), ("pval", "pval"), ("dfs", "df"),
                      ("limit_estimate", "limit_estimate"), ("limit_ci_lb", "limit_ci_lower"),
                      ("limit_ci_ub", "limit_ci_upper"), ("slope", "slope"),
                      ("slope_se", "slope_se"), ("intercept", "intercept"),
                      ("intercept_se", "intercept_se"), ("fit_tau2", "fit_tau2")):
        if key in record:
            assert_metafor_close(getattr(res, attr), record[key], f"{what} {key}")
    assert res.low_power == (res.k < 10)


def test_regtest_errors_and_flags():
    es = escalc("RR", ai=[1, 2, 3, 4], n1i=[10, 10, 10, 10], ci=[2, 3, 4, 5], n2i=[10, 10, 10, 10])
    with pytest.raises(ValueError, match="unknown model 'egger'"):
        regtest(es, model="egger")
    with pytest.raises(ValueError, match="unknown predictor 'se'"):
        regtest(es, predictor="se")
    with pytest.raises(ValueError, match="needs sample sizes"):
        regtest(es, predictor="ni")
    with pytest.raises(ValueError, match="at least 3 studies"):
        regtest(escalc("PLO", xi=[1, 2], ni=[10, 12]))
    d = proportion_csv("anand1999_treated")
    big = regtest(escalc("PLO", xi=d.events, ni=d.total))
    assert not big.low_power and big.k == 34
    assert regtest(es, "lm").to_dict()["model"] == "lm"
