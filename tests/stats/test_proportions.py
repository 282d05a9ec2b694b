"""evidence.stats.proportions: pooled single proportions against metafor 3.8-1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evidence.stats.proportions import pool_proportions

FIXTURES = Path(__file__).parents[1] / "fixtures"
ORR = ([0, 1, 1, 1, 4], [7, 14, 11, 20, 8])


def metafor(name: str, method: str, measure: str = "PLO") -> dict:
    data = json.loads((FIXTURES / "metafor" / f"{name}.json").read_text())
    return next(r for r in data["records"] if r.get("method") == method
                and r.get("measure") == measure and r.get("test", "z") == "z"
                and r.get("zero_handling", "add=1/2,to=only0 (default)").endswith("(default)"))


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM", "ML", "HE", "SJ"])
def test_pool_proportions_equals_metafor(method: str) -> None:
    ref = metafor("orr_her2ctc", method)
    result, pooled = pool_proportions(*ORR, measure="PLO", method=method)
    assert result.estimate == pytest.approx(ref["estimate"], rel=1e-6)
    assert result.tau2 == pytest.approx(ref["tau2"], rel=1e-6, abs=1e-12)
    assert pooled["estimate"] == pytest.approx(ref["prop"], rel=1e-6)
    assert pooled["ci_lower"] == pytest.approx(ref["prop_ci_lb"], rel=1e-6)
    assert pooled["pi_upper"] == pytest.approx(ref["prop_pi_ub"], rel=1e-6)


def test_pool_proportions_glmm_equals_metafor() -> None:
    ref = json.loads((FIXTURES / "glmm" / "objective_response.json").read_text())["glmm"][0]
    result, pooled = pool_proportions(*ORR, method="GLMM")
    assert result.method == "GLMM"
    assert pooled["estimate"] == pytest.approx(ref["prop"], rel=1e-4)
    assert pooled["ci_upper"] == pytest.approx(ref["prop_ci_ub"], rel=1e-4)
    assert result.tau2 == pytest.approx(ref["tau2"], rel=1e-4)


def test_single_study_is_not_pooled() -> None:
    result, pooled = pool_proportions([1], [14], ["hainsworth2016"])
    assert pooled["estimate"] == pytest.approx(1 / 14)
    # R: binom.test(1, 14)$conf.int
    assert pooled["ci_lower"] == pytest.approx(0.00180678065912539, rel=1e-9)
    assert pooled["ci_upper"] == pytest.approx(0.338684489931821, rel=1e-9)
    assert pooled["pi_lower"] is None and "nothing was pooled" in pooled["warning"]
    assert result.k == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"measure": "LOGIT"}, "unknown measure 'LOGIT'; allowed: PLO, PFT, PAS, PR"),
    ({"method": "reml"}, "unknown method 'reml'; allowed: FE, DL, REML"),
    ({"method": "GLMM", "knha": True}, "test 'knha' applies to rma methods"),
    ({"method": "GLMM", "test": "adhoc"},
     "test 'adhoc' applies to rma methods; the GLMM takes z or t"),
    ({"method": "REML", "test": "hk"}, "test"),
    ({"method": "REML", "knha": True, "test": "z"}, "knha=True contradicts test='z'"),
])
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pool_proportions(*ORR, **kwargs)
    with pytest.raises(ValueError, match="no studies"):
        pool_proportions([], [])


