"""Tests for evidence.stats.distributions against scipy.stats and statsmodels.

The module re-implements, on :mod:`scipy.special`, what the library used to import from
:mod:`scipy.stats` and statsmodels; those packages are the independent references here.
R's values for the same functions are checked where they are used (``test_twoarm``:
``fisher.test``; ``test_effects``: ``binom.test``; ``test_pooling``: metafor).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.stats import distributions as dist

stats = pytest.importorskip("scipy.stats")
proportion = pytest.importorskip("statsmodels.stats.proportion")

counts = st.integers(min_value=0, max_value=60)


@settings(max_examples=300, deadline=None)
@given(counts, counts, counts, counts)
def test_fisher_exact_equals_scipy(a: int, b: int, c: int, d: int) -> None:
    expected = stats.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue
    assert dist.fisher_exact(a, b, c, d) == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_fisher_exact_known_values() -> None:
    # R: fisher.test(matrix(c(4, 4, 5, 20), 2, byrow = TRUE))$p.value = 0.169504577735946
    assert dist.fisher_exact(4, 4, 5, 20) == pytest.approx(0.169504577735946, rel=1e-12)
    # a zero margin leaves one possible table
    assert dist.fisher_exact(0, 0, 3, 5) == 1.0
    # large counts stay finite and match scipy
    expected = stats.fisher_exact([[900, 1100], [1000, 1000]]).pvalue
    assert dist.fisher_exact(900, 1100, 1000, 1000) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("bad", [(-1, 2, 3, 4), (1.5, 2, 3, 4)])
def test_fisher_exact_rejects_bad_counts(bad: tuple) -> None:
    with pytest.raises(ValueError, match="non-negative integers"):
        dist.fisher_exact(*bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 80), min_size=2, max_size=4), min_size=2,
                max_size=4).filter(lambda rows: len({len(r) for r in rows}) == 1))
def test_chisq_test_equals_scipy(rows: list[list[int]]) -> None:
    stat, p, df = dist.chisq_test(rows)
    ref = stats.chi2_contingency(np.asarray(rows), correction=False)
    assert stat == pytest.approx(ref[0], rel=1e-12, abs=1e-12)
    assert p == pytest.approx(ref[1], rel=1e-10, abs=1e-15)
    assert df == ref[2]


def test_chisq_test_errors_and_degenerate_tables() -> None:
    with pytest.raises(ValueError, match="sums to zero"):
        dist.chisq_test([[0, 3], [0, 5]])
    with pytest.raises(ValueError, match="negative"):
        dist.chisq_test([[-1, 3], [2, 5]])
    with pytest.raises(ValueError, match="two-dimensional"):
        dist.chisq_test([1, 2, 3])
    assert dist.chisq_test([[3, 4]]) == (0.0, 1.0, 0)


def _sizes(seed: int, k: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 3000, k)
    x = rng.integers(0, n + 1)
    x[:50], x[50:100] = 0, n[50:100]  # both edges
    return x, n


@pytest.mark.parametrize("level", [0.95, 0.90, 0.99])
def test_clopper_pearson_equals_statsmodels(level: float) -> None:
    x, n = _sizes(1)
    lo, hi = dist.clopper_pearson(x, n, level)
    ref_lo, ref_hi = proportion.proportion_confint(x, n, alpha=1 - level, method="beta")
    ref_lo = np.where(x == 0, 0.0, ref_lo)
    ref_hi = np.where(x == n, 1.0, ref_hi)
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-12, atol=1e-15)
    assert (lo[x == 0] == 0).all() and (hi[x == n] == 1).all()


@pytest.mark.parametrize("level", [0.95, 0.80])
def test_wilson_equals_statsmodels(level: float) -> None:
    x, n = _sizes(2)
    lo, hi = dist.wilson(x, n, level)
    ref_lo, ref_hi = proportion.proportion_confint(x, n, alpha=1 - level, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("level", [0.0, 1.0, 95, float("nan")])
def test_intervals_reject_bad_level(level: float) -> None:
    for fn in (dist.clopper_pearson, dist.wilson):
        with pytest.raises(ValueError, match="level"):
            fn([1], [2], level)


def test_tail_probabilities_and_quantiles_equal_scipy_stats() -> None:
    z = np.array([-3.1, -0.2, 0.0, 1.96, 8.0])
    np.testing.assert_allclose(dist.p_norm2(z), 2 * stats.norm.sf(np.abs(z)), rtol=1e-13)
    np.testing.assert_allclose(dist.p_t2(z, 7.5), 2 * stats.t.sf(np.abs(z), 7.5), rtol=1e-12)
    for q, df in [(0.3, 1), (3.84, 1), (12.0, 5), (40.0, 17)]:
        assert dist.p_chisq(q, df) == pytest.approx(stats.chi2.sf(q, df), rel=1e-12)
        assert dist.p_f(q, df, 20) == pytest.approx(stats.f.sf(q, df, 20), rel=1e-12)
    for alpha in (0.025, 0.05, 0.1):
        assert dist.norm_quantile_upper(alpha) == pytest.approx(stats.norm.isf(alpha),
                                                                rel=1e-14)
        assert dist.t_quantile_upper(alpha, 4) == pytest.approx(stats.t.isf(alpha, 4),
                                                                rel=1e-12)
        assert dist.chisq_quantile(alpha, 3, upper=True) == pytest.approx(
            stats.chi2.isf(alpha, 3), rel=1e-12)
        assert dist.chisq_quantile(alpha, 3, upper=False) == pytest.approx(
            stats.chi2.ppf(alpha, 3), rel=1e-12)


def test_importing_the_library_does_not_import_scipy_stats() -> None:
    import subprocess
    import sys

    code = ("import sys, evidence.stats.effects, evidence.stats.twoarm, "
            "evidence.book.transitions, evidence.book.two_arm, evidence.book.summary, "
            "evidence.book.within_study, evidence.stats.distributions as d; "
            "from evidence.stats.effects import proportion_ci; proportion_ci([1], [4]); "
            "d.fisher_exact(1, 2, 3, 4); d.chisq_test([[1, 2], [3, 4]]); "
            "from evidence.stats.twoarm import two_arm_effect; two_arm_effect(1, 4, 2, 5); "
            "print(sorted(m for m in ('scipy.stats', 'statsmodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
