"""Small-sample intervals against metafor 3.8-1: ``rma(test = "t" | "adhoc")`` and
``rma.glmm(test = "t")``, with the CI and prediction interval ``predict()`` gives.

Reference values: ``tests/fixtures/metafor/small_sample_<name>.json``, written by
``small_sample_reference.R`` (kept beside them, with its R call in each file's ``meta``)
from the CSV of the same name. Tolerance as for every metafor comparison: 1e-6 relative
for ``rma``, 1e-4 for the GLMM (lme4's optimiser; see ``tests/fixtures/glmm/README.md``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import METAFOR_DIR, assert_metafor_close

from evidence.book.parity import GLMM_TOLERANCE, glmm_scale
from evidence.stats.effects import escalc
from evidence.stats.glmm import rma_glmm
from evidence.stats.pooling import rma
from evidence.stats.results import EffectSizes

NAMES = ["orr_her2ctc", "screening_yield", "pritz1997", "edge_allevents", "li2007_treated",
         "bcg_logrr"]
FIELDS = {"estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval",
          "ci_lb": "ci_lower", "ci_ub": "ci_upper", "pi_lb": "pi_lower", "pi_ub": "pi_upper",
          "tau2": "tau2"}


def reference(name: str) -> tuple[pd.DataFrame, dict]:
    ref = json.loads((METAFOR_DIR / f"small_sample_{name}.json").read_text())
    assert ref["meta"]["metafor"].startswith("3.8")
    return pd.read_csv(METAFOR_DIR / ref["meta"]["input"]), ref


def effects(data: pd.DataFrame) -> EffectSizes:
    if "events" in data:
        return escalc("PLO", xi=data["events"], ni=data["total"], study_ids=data["study"])
    return EffectSizes("RR", data["yi"].to_numpy(float), data["vi"].to_numpy(float),
                       tuple(data["study"]))


@pytest.mark.parametrize("name", NAMES)
def test_rma_t_and_adhoc_match_metafor(name: str) -> None:
    data, ref = reference(name)
    es = effects(data)
    assert len(ref["records"]) == 14
    for rec in ref["records"]:
        res = rma(es, rec["method"], test=rec["test"])
        where = f"{name} {rec['method']} test={rec['test']}"
        assert res.test == rec["test"] and res.df == rec["dfs"], where
        for key, attr in FIELDS.items():
            assert_metafor_close(getattr(res, attr), rec[key], f"{where} {key}")


@pytest.mark.parametrize("name", [n for n in NAMES if n != "bcg_logrr"])
def test_glmm_t_matches_metafor(name: str) -> None:
    data, ref = reference(name)
    rec = ref["glmm"]
    res = rma_glmm(data["events"], data["total"], study_ids=data["study"], test="t")
    assert res.test == "t" and res.df == rec["dfs"] == len(data) - 1
    ours = {"ci_lb": "ci_lower", "ci_ub": "ci_upper", "pi_lb": "pi_lower",
            "pi_ub": "pi_upper", "estimate": "estimate", "se": "se", "tau2": "tau2"}
    for key, attr in ours.items():
        want, got = rec[key], getattr(res, attr)
        # the parity rule of the Reproducibility chapter: lme4 stops ~1e-5 short of the
        # optimum, so limits are relative to max(|limit|, 1, half-width)
        scale = max(abs(want), glmm_scale(attr, rec), 1e-300)
        assert abs(got - want) <= GLMM_TOLERANCE * scale, f"{name} GLMM t {key}"
    # the p-value follows from estimate and se; its relative error is larger
    assert res.pval == pytest.approx(rec["pval"], rel=1e-3), f"{name} GLMM t pval"


def test_adhoc_is_never_narrower_than_z_and_equals_knha_when_it_is_wider() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        k = int(rng.integers(2, 9))
        es = EffectSizes("RR", rng.normal(0, 0.6, k), rng.uniform(0.02, 0.4, k),
                         tuple(f"s{i}" for i in range(k)))
        z, kn, ad = rma(es, "REML"), rma(es, "REML", test="knha"), rma(es, "REML", test="adhoc")
        assert ad.se >= z.se - 1e-12
        assert ad.se == pytest.approx(max(z.se, kn.se), rel=1e-12)


def test_the_test_vocabulary_is_checked() -> None:
    es = escalc("PLO", xi=[1, 2, 3], ni=[10, 10, 10])
    with pytest.raises(ValueError, match="unknown test 'hk'; allowed: z, t, knha, adhoc"):
        rma(es, test="hk")
    with pytest.raises(ValueError, match="knha=True contradicts test='adhoc'"):
        rma(es, knha=True, test="adhoc")
    with pytest.raises(ValueError, match="unknown test 'adhoc'; allowed: z, t"):
        rma_glmm([1, 2, 3], [10, 10, 10], test="adhoc")
    assert rma(es, knha=True).test == "knha"
