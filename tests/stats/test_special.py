"""evidence.stats._special: the normal, chi-square, t and F functions without scipy, checked
against scipy.special over grids of arguments (and ``evidence pool`` imports no scipy)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sc

from evidence.stats import _special as sp

DFS = (1, 2, 3, 4.5, 7.5, 10, 17, 30, 99)
LARGE_DFS = (500, 999, 1999)
PROBS = (1e-12, 1e-6, 0.001, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.999)


def rel_error(got: object, want: object) -> float:
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    keep = np.isfinite(w) & (np.abs(w) > 1e-300)
    assert np.array_equal(np.isnan(g), np.isnan(w))
    return float(np.max(np.abs(g[keep] - w[keep]) / np.abs(w[keep]), initial=0.0))


def test_normal_distribution_and_quantile() -> None:
    x = np.linspace(-37, 8.5, 911)
    assert rel_error(sp.ndtr(x), sc.ndtr(x)) < 5e-13
    assert rel_error(sp.ndtr(x[x > -10]), sc.ndtr(x[x > -10])) < 5e-14
    p = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99),
                        1 - np.logspace(-15, -2, 40)])
    assert rel_error(sp.ndtri(p), sc.ndtri(p)) < 5e-15
    assert sp.ndtri(0.0) == -np.inf and sp.ndtri(1.0) == np.inf
    assert np.isnan(sp.ndtri(1.5)) and np.isnan(sp.ndtr(np.nan))
    assert isinstance(sp.ndtri(0.3), float) and sp.ndtri([0.3, 0.4]).shape == (2,)


@pytest.mark.parametrize("df", DFS)
def test_chi_square_tail_and_quantiles(df: float) -> None:
    x = np.concatenate([np.linspace(0.01, 5 * df + 50, 200), np.logspace(-5, 1, 30) * df])
    assert rel_error(sp.chi2_sf(df, x), sc.chdtrc(df, x)) < 1e-13
    for p in PROBS:
        assert rel_error(sp.chi2_quantile(p, df, upper=True), sc.chdtri(df, p)) < 1e-13
        assert rel_error(sp.chi2_quantile(p, df, upper=False),
                         2 * sc.gammaincinv(df / 2, p)) < 1e-13
    assert sp.chi2_sf(df, 0.0) == 1.0 and sp.chi2_sf(df, np.inf) == 0.0
    assert sp.chi2_quantile(0.0, df, upper=True) == np.inf
    assert sp.chi2_quantile(1.0, df, upper=True) == 0.0


@pytest.mark.parametrize("df", DFS)
def test_t_distribution_and_quantile(df: float) -> None:
    t = np.concatenate([np.linspace(-40, 40, 401), [-1e4, 1e4, 0.0]])
    assert rel_error(sp.t_cdf(df, t), sc.stdtr(df, t)) < 2e-13
    for p in PROBS:
        assert rel_error(sp.t_quantile(df, p), sc.stdtrit(df, p)) < 1e-13
    assert sp.t_quantile(df, 0.5) == 0.0 and sp.t_quantile(df, 1.0) == np.inf


@pytest.mark.parametrize("df1", DFS)
def test_f_tail(df1: float) -> None:
    f = np.concatenate([np.linspace(0.001, 30, 120), [0.0, 1e6]])
    for df2 in (1, 3, 20, 200):
        assert rel_error(sp.f_sf(df1, df2, f), sc.fdtrc(df1, df2, f)) < 1e-12


@pytest.mark.parametrize("df", LARGE_DFS)
def test_thousands_of_degrees_of_freedom(df: float) -> None:
    """Large k: the cancellation in a log x - x - lgamma(a) costs about three digits."""
    x = np.linspace(0.5 * df, 1.5 * df, 101)
    assert rel_error(sp.chi2_sf(df, x), sc.chdtrc(df, x)) < 1e-11
    t = np.linspace(-8, 8, 161)
    assert rel_error(sp.t_cdf(df, t), sc.stdtr(df, t)) < 2e-11
    for p in (0.025, 0.05, 0.975):
        assert rel_error(sp.t_quantile(df, p), sc.stdtrit(df, p)) < 1e-11
        assert rel_error(sp.chi2_quantile(p, df, upper=True), sc.chdtri(df, p)) < 1e-12


def test_log_gamma_and_x_log_y() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(0, 2000, 500).astype(float) + 1
    assert rel_error(sp.gammaln(n), sc.gammaln(n)) < 1e-15
    x = np.array([0.0, 0.0, 1.0, 3.0, 2.5])
    y = np.array([0.0, 0.5, 0.5, 1e-300, 0.9])
    np.testing.assert_allclose(sp.xlogy(x, y), sc.xlogy(x, y), rtol=1e-15)
    np.testing.assert_allclose(sp.xlog1py(x, -y), sc.xlog1py(x, -y), rtol=1e-15)
    assert sp.xlogy(0.0, 0.0) == 0.0 and sp.xlog1py(0.0, -1.0) == 0.0


@pytest.mark.parametrize("method", ["REML", "GLMM"])
def test_evidence_pool_imports_no_scipy(tmp_path, method: str) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("study,events,total\na,3,20\nb,5,31\nc,0,12\nd,9,40\n", encoding="utf-8")
    code = ("import sys, io, contextlib; from evidence.pipeline.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['pool', '--csv', {str(csv)!r}, '--method', {method!r}]) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
