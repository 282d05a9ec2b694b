"""Live cross-check against R's metafor (``Rscript tests/fixtures/metafor/live_check.R``).

Runs metafor on a data set generated here (seeded; with a zero-event and an all-event
study) and compares every estimator, measure and option field by field.  Skipped when
``Rscript`` or metafor is missing, unless ``EVIDENCE_REQUIRE_METAFOR=1`` (CI), in which
case a missing R/metafor is a failure.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import METAFOR_DIR, assert_metafor_close, require_rscript

from evidence.stats.effects import escalc
from evidence.stats.pooling import rma
from evidence.stats.regression import regtest, rma_mods
from evidence.stats.sensitivity import leave_one_out

pytestmark = pytest.mark.metafor

SCRIPT = METAFOR_DIR / "live_check.R"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    rscript = require_rscript("metafor", "jsonlite")
    rng = np.random.default_rng(20240611)
    k = 12
    ni = rng.integers(8, 160, k)
    xi = rng.binomial(ni, 1 / (1 + np.exp(-rng.normal(-0.8, 0.9, k))))
    xi[0] = 0
    xi[1] = ni[1]
    data = pd.DataFrame({"study": [f"S{i + 1}" for i in range(k)], "events": xi, "total": ni,
                         "mod": np.round(rng.uniform(0, 10, k), 2)})
    tmp = tmp_path_factory.mktemp("metafor_live")
    data.to_csv(tmp / "in.csv", index=False)
    proc = subprocess.run([rscript, str(SCRIPT), str(tmp / "in.csv"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"live_check.R failed:\n{proc.stderr}"
    with (tmp / "out.json").open() as fh:
        return data, json.load(fh)


FIELDS = {"estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval",
          "ci_lb": "ci_lower", "ci_ub": "ci_upper", "pi_lb": "pi_lower", "pi_ub": "pi_upper",
          "tau2": "tau2", "se_tau2": "se_tau2", "I2": "i2", "H2": "h2", "QE": "q",
          "QEp": "q_pvalue", "tau2_ci_lb": "tau2_ci_lower", "tau2_ci_ub": "tau2_ci_upper",
          "I2_ci_lb": "i2_ci_lower", "I2_ci_ub": "i2_ci_upper"}


def test_live_metafor_version(live):
    _, out = live
    assert out["meta"]["metafor"].startswith("3.")


def test_live_rma_all_measures_and_methods(live):
    data, out = live
    assert len(out["records"]) == 4 * 9
    for rec in out["records"]:
        es = escalc(rec["measure"], xi=data.events, ni=data.total, study_ids=data.study)
        res = rma(es, rec["method"], knha=rec["test"] == "knha")
        what = f"live {rec['measure']} {rec['method']} {rec['test']}"
        for key, attr in FIELDS.items():
            if key in rec:
                assert_metafor_close(getattr(res, attr), rec[key], f"{what} {key}")
        assert_metafor_close(res.weights, rec["weights_pct"], f"{what} weights")
        pb = res.pooled()
        for key, val in (("prop", pb.estimate), ("prop_ci_lb", pb.ci_lower),
                         ("prop_ci_ub", pb.ci_upper), ("prop_pi_lb", pb.pi_lower),
                         ("prop_pi_ub", pb.pi_upper)):
            assert_metafor_close(val, rec[key], f"{what} {key}")


def test_live_leave_one_out_regtest_and_regression(live):
    data, out = live
    es = escalc("PLO", xi=data.events, ni=data.total, study_ids=data.study)
    l1o = leave_one_out(es, "REML")
    for key, attr in (("estimate", "estimate"), ("se", "se"), ("ci_lb", "ci_lower"),
                      ("ci_ub", "ci_upper"), ("tau2", "tau2"), ("I2", "i2"), ("Q", "q")):
        assert_metafor_close(getattr(l1o, attr), out["leave1out"][key], f"live l1o {key}")
    for rec in out["regtest"]:
        rt = regtest(es, rec["model"], "REML")
        for key, attr in (("zval", "zval"), ("pval", "pval"), ("limit_estimate", "limit_estimate"),
                          ("limit_ci_lb", "limit_ci_lower"), ("limit_ci_ub", "limit_ci_upper")):
            assert_metafor_close(getattr(rt, attr), rec[key], f"live regtest {rec['model']} {key}")
    for rec in out["mods"]:
        mr = rma_mods(es, {"mod": data["mod"].to_numpy()}, "REML", knha=rec["test"] == "knha")
        for key, attr in (("beta", "estimates"), ("se", "se"), ("pval", "pval"), ("QM", "qm"),
                          ("QMp", "qm_pvalue"), ("tau2", "tau2"), ("R2", "r2"), ("QE", "qe")):
            assert_metafor_close(getattr(mr, attr), rec[key], f"live mods {rec['test']} {key}")


def test_live_small_sample_intervals(live, tmp_path):
    """rma(test = "t" | "adhoc") and rma.glmm(test = "t"), run now on the live data."""
    from evidence.stats.glmm import rma_glmm

    rscript = require_rscript("metafor", "lme4", "jsonlite")
    data, _ = live
    data[["study", "events", "total"]].to_csv(tmp_path / "live.csv", index=False)
    proc = subprocess.run([rscript, str(METAFOR_DIR / "small_sample_reference.R"),
                           str(tmp_path / "live.csv"), str(tmp_path / "small.json")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"small_sample_reference.R failed:\n{proc.stderr}"
    ref = json.loads((tmp_path / "small.json").read_text())
    es = escalc("PLO", xi=data["events"], ni=data["total"], study_ids=data["study"])
    for rec in ref["records"]:
        res = rma(es, rec["method"], test=rec["test"])
        for key, attr in (("estimate", "estimate"), ("se", "se"), ("ci_lb", "ci_lower"),
                          ("ci_ub", "ci_upper"), ("pi_lb", "pi_lower"), ("pi_ub", "pi_upper"),
                          ("pval", "pval")):
            assert_metafor_close(getattr(res, attr), rec[key],
                                 f"live {rec['method']} {rec['test']} {key}")
    glmm = rma_glmm(data["events"], data["total"], test="t")
    for key, attr in (("estimate", "estimate"), ("ci_lb", "ci_lower"), ("ci_ub", "ci_upper"),
                      ("pi_lb", "pi_lower"), ("pi_ub", "pi_upper")):
        want = ref["glmm"][key]
        assert abs(getattr(glmm, attr) - want) <= 1e-4 * max(abs(want), 1.0), key


def test_live_tarone_is_not_symmetric_in_metafor_either():
    """Swapping the groups of a Mantel-Haenszel odds ratio leaves Q and the CMH test
    unchanged but not Tarone's statistic, in metafor as here."""
    from evidence.stats.twoarm import rma_mh

    rscript = require_rscript("metafor")
    code = ("suppressPackageStartupMessages(library(metafor));"
            "a<-c(6,7);b<-c(1,12);c<-c(1,19);d<-c(6,14);"
            "f<-rma.mh(ai=a,bi=b,ci=c,di=d,measure='OR');"
            "r<-rma.mh(ai=c,bi=d,ci=a,di=b,measure='OR');"
            "cat(sprintf('%.15g', c(f$TA, r$TA, f$QE, r$QE)))")
    proc = subprocess.run([rscript, "-e", code], capture_output=True, text=True,
                          timeout=120, check=True)
    ta_f, ta_r, q_f, q_r = (float(x) for x in proc.stdout.split())
    fwd = rma_mh([6, 7], [1, 12], [1, 19], [6, 14], "OR")
    rev = rma_mh([1, 19], [6, 14], [6, 7], [1, 12], "OR")
    assert_metafor_close(fwd.tarone, ta_f, "Tarone forward")
    assert_metafor_close(rev.tarone, ta_r, "Tarone swapped")
    assert_metafor_close(fwd.q, q_f, "Q forward")
    assert_metafor_close(rev.q, q_r, "Q swapped")
    assert abs(ta_f - ta_r) > 1.0
