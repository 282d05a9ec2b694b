"""Tests for evidence.stats.transforms against metafor's transf.* functions (metafor_extra.json)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_metafor_close

from evidence.stats.transforms import (
    BACK_TRANSFORM_NAMES,
    back_transform,
    back_transform_name,
    iarcsin,
    ilogit,
    ipft,
    ipft_hm,
    logit,
    pft,
)


def test_ilogit_matches_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(ilogit(np.array(t["x"])), t["ilogit"], "transf.ilogit")


def test_logit_matches_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(logit(np.array(t["logit_of"])), t["logit"], "transf.logit")


def test_iarcsin_clips_like_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(iarcsin(np.array(t["x"])), t["iarcsin"], "transf.iarcsin")


def test_ipft_hm_matches_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(ipft_hm(np.array(t["x"]), t["ni"]), t["ipft_hm"], "transf.ipft.hm")


def test_ipft_matches_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(ipft(np.array(t["x"]), 10), t["ipft_n10"], "transf.ipft")


def test_pft_matches_metafor(extra):
    t = extra["transforms"]
    assert_metafor_close(pft(np.array(t["pft_p"]), t["pft_n"]), t["pft"], "transf.pft")


def test_scalars_in_scalars_out():
    assert isinstance(ilogit(0.0), float)
    assert ilogit(0.0) == 0.5
    assert isinstance(iarcsin(0.3), float)
    assert isinstance(ipft_hm(0.7, [10, 20]), float)
    assert isinstance(logit(0.5), float)


def test_ilogit_extremes_do_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert ilogit(-1000.0) == 0.0
        assert ilogit(1000.0) == 1.0
    assert math.isclose(ilogit(-40.0), math.exp(-40.0), rel_tol=1e-12)


def test_logit_inverse_roundtrip():
    p = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 1 - 1e-9])
    np.testing.assert_allclose(ilogit(logit(p)), p, rtol=1e-9)


def test_pft_inverse_roundtrip():
    p = np.array([0.05, 0.3, 0.5, 0.8])
    np.testing.assert_allclose(ipft(pft(p, 25), 25), p, rtol=1e-12)


def test_harmonic_mean_used_for_pft():
    ni = [7, 14, 11, 20, 8]
    nhm = 1 / np.mean(1 / np.asarray(ni, dtype=float))
    assert ipft_hm(0.6, ni) == ipft(0.6, nhm)
    assert back_transform("PFT", harmonic_mean_n=nhm)(0.6) == ipft(0.6, nhm)


@pytest.mark.parametrize("measure, value, expected", [
    ("PLO", 0.0, 0.5),
    ("PR", 1.05, 1.05),      # metafor does not clip PR
    ("PR", -0.02, -0.02),
    ("RD", -0.3, -0.3),
    ("RR", math.log(2.0), 2.0),
    ("OR", 0.0, 1.0),
    ("HR", math.log(0.5), 0.5),
    ("PAS", math.pi / 4, 0.5),
])
def test_back_transform_by_measure(measure, value, expected):
    assert math.isclose(back_transform(measure)(value), expected, rel_tol=1e-12)


def test_back_transform_names_as_metafor_common():
    assert back_transform_name("PLO") == "transf.ilogit"
    assert back_transform_name("PFT") == "transf.ipft.hm(ni=harmonic mean of ni)"
    assert back_transform_name("PAS") == "transf.iarcsin"
    assert back_transform_name("PR") == "identity"
    assert back_transform_name("RR") == "exp"
    assert set(BACK_TRANSFORM_NAMES) == {"PLO", "PR", "RD", "PAS", "PFT", "RR", "OR", "HR"}


def test_unknown_measure_rejected():
    with pytest.raises(ValueError, match=r"unknown measure 'XYZ'.*PLO"):
        back_transform("XYZ")
    with pytest.raises(ValueError, match="unknown measure"):
        back_transform_name("plo")


def test_pft_needs_harmonic_mean():
    with pytest.raises(ValueError, match="harmonic_mean_n"):
        back_transform("PFT")
    with pytest.raises(ValueError, match="harmonic_mean_n"):
        back_transform("PFT", harmonic_mean_n=0.0)


def test_ipft_hm_needs_sample_sizes():
    with pytest.raises(ValueError, match="at least one"):
        ipft_hm(0.5, [])
