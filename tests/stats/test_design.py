"""Tests for evidence.stats.design: A'Hern designs checked by exact rational binomial sums.

The tail probabilities are recomputed here with :func:`math.comb` and
:class:`fractions.Fraction` (no floating point, no SciPy), and the search for the smallest
design is redone by brute force.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

from evidence.stats.design import NNS, ahern, number_needed_to_screen, patients_to_screen


def tail(r: int, n: int, p: Fraction) -> Fraction:
    """Exact P(X >= r) for X ~ Binomial(n, p)."""
    return sum((math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(r, n + 1)),
               Fraction(0))


def tails(n: int, p: Fraction) -> list[Fraction]:
    """Exact P(X >= r) for r = 0 .. n + 1."""
    out = [Fraction(0)] * (n + 2)
    for r in range(n, -1, -1):
        out[r] = out[r + 1] + math.comb(n, r) * p**r * (1 - p) ** (n - r)
    return out


def brute_force(p0: Fraction, p1: Fraction, alpha: Fraction, beta: Fraction) -> tuple[int, int]:
    """Smallest n with a cut-off r meeting both error bounds; smallest such r."""
    for n in range(1, 200):
        size, power = tails(n, p0), tails(n, p1)
        for r in range(n + 2):
            if size[r] <= alpha and power[r] >= 1 - beta:
                return n, r
    raise AssertionError("no design below n = 200")


def test_verschoor_trial_design() -> None:
    """Verschoor 2024 Methods: A'Hern, p0 = 50%, p1 = 80%, alpha 0.05, beta 0.20 -> 18, 13."""
    d = ahern(0.5, 0.8, alpha=0.05, beta=0.20)
    assert (d.n, d.r) == (18, 13)
    assert d.alpha == pytest.approx(float(tail(13, 18, Fraction(1, 2))), rel=1e-12)
    assert d.power == pytest.approx(float(tail(13, 18, Fraction(4, 5))), rel=1e-12)
    assert d.alpha <= 0.05 and d.power >= 0.80
    # one response fewer is not enough: the cut-off 12 has size > 0.05
    assert tail(12, 18, Fraction(1, 2)) > Fraction(5, 100)


# (p0, p1) pairs as in A'Hern's (2001) tables (alpha = 0.05, beta = 0.20); the expected
# (n, r) below were computed with the exact sums of this file, not copied from the paper.
@pytest.mark.parametrize("p0, p1, expected", [
    ("0.05", "0.20", (27, 4)),
    ("0.10", "0.30", (25, 6)),
    ("0.20", "0.40", (35, 12)),
    ("0.30", "0.50", (39, 17)),
    ("0.05", "0.15", (52, 6)),
    ("0.70", "0.90", (28, 24)),
])
def test_ahern_table_values_by_exact_sums(p0: str, p1: str, expected: tuple[int, int]) -> None:
    exact = brute_force(Fraction(p0), Fraction(p1), Fraction(5, 100), Fraction(20, 100))
    assert exact == expected
    d = ahern(float(p0), float(p1))
    assert (d.n, d.r) == expected
    assert d.alpha == pytest.approx(float(tail(d.r, d.n, Fraction(p0))), rel=1e-12)
    assert d.power == pytest.approx(float(tail(d.r, d.n, Fraction(p1))), rel=1e-12)


@pytest.mark.parametrize("alpha, beta", [("0.10", "0.10"), ("0.01", "0.20"), ("0.05", "0.10")])
def test_ahern_other_error_rates(alpha: str, beta: str) -> None:
    d = ahern(0.2, 0.45, alpha=float(alpha), beta=float(beta))
    exact = brute_force(Fraction(1, 5), Fraction(45, 100), Fraction(alpha), Fraction(beta))
    assert (d.n, d.r) == exact
    assert (d.alpha_target, d.beta_target) == (float(alpha), float(beta))


def test_ahern_to_dict_and_limits() -> None:
    assert json.loads(json.dumps(ahern(0.5, 0.8).to_dict()))["n"] == 18
    with pytest.raises(ValueError, match="no single-stage design with n <= 10"):
        ahern(0.5, 0.8, n_max=10)


@pytest.mark.parametrize("kwargs, message", [
    ({"p0": 0.8, "p1": 0.5}, "p1 must exceed p0"),
    ({"p0": 0.0, "p1": 0.5}, "p0 must be strictly between 0 and 1"),
    ({"p0": 0.2, "p1": 1.0}, "p1 must be strictly between 0 and 1"),
    ({"p0": 0.2, "p1": 0.4, "alpha": 5}, "alpha must be"),
    ({"p0": 0.2, "p1": 0.4, "beta": 0}, "beta must be"),
    ({"p0": 0.2, "p1": 0.4, "n_max": 0}, "n_max must be"),
])
def test_ahern_rejects_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ahern(**kwargs)


# ------------------------------------------------------------------ screening numbers


def test_number_needed_to_screen_inverts_the_interval() -> None:
    nns = number_needed_to_screen(0.125, 0.0555, 0.2315)
    assert isinstance(nns, NNS) and nns.n_required == 1
    assert nns.estimate == pytest.approx(8.0)
    assert nns.ci_lower == pytest.approx(1 / 0.2315) and nns.ci_upper == pytest.approx(1 / 0.0555)
    assert (nns.estimate_ceil, nns.ci_lower_ceil, nns.ci_upper_ceil) == (8, 5, 19)
    assert (nns.yield_estimate, nns.yield_ci_lower, nns.yield_ci_upper) == (0.125, 0.0555, 0.2315)


def test_ceiling_ignores_floating_point_noise() -> None:
    # 21 / 0.35 is 60.00000000000001 in floating point: 60 patients, not 61
    assert 21 / 0.35 > 60
    assert patients_to_screen(21, 0.35, 0.3, 0.4).estimate_ceil == 60
    assert number_needed_to_screen(0.3, 0.2, 0.4).estimate_ceil == 4  # 3.33 -> 4


def test_patients_to_screen_for_the_ahern_design() -> None:
    """Screening for an 18-patient trial at a 12.5% yield (8 of 64 in Verschoor 2024)."""
    need = patients_to_screen(18, 8 / 64, 0.05, 0.25)
    assert need.estimate == pytest.approx(144.0) and need.estimate_ceil == 144
    assert need.ci_lower == pytest.approx(72.0) and need.ci_upper == pytest.approx(360.0)
    assert need.n_required == 18


def test_zero_lower_limit_gives_an_unbounded_interval() -> None:
    need = number_needed_to_screen(0.1, 0.0, 0.3)
    assert need.ci_upper == math.inf and need.ci_upper_ceil == math.inf
    assert json.loads(json.dumps(need.to_dict()))["ci_upper"] is None


@pytest.mark.parametrize("args, message", [
    ((0.0, 0.0, 0.1), "yield_estimate is 0"),
    ((0.2, 0.3, 0.4), "ci_lower <= yield_estimate <= ci_upper"),
    ((0.2, 0.1, 1.2), "ci_upper must be a proportion"),
    ((float("nan"), 0.1, 0.3), "yield_estimate must be a proportion"),
])
def test_screening_rejects_bad_yields(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        number_needed_to_screen(*args)


def test_patients_to_screen_rejects_bad_n() -> None:
    with pytest.raises(ValueError, match="n_required must be a positive integer"):
        patients_to_screen(0, 0.1, 0.05, 0.2)
    with pytest.raises(ValueError, match="n_required must be a positive integer"):
        patients_to_screen(2.5, 0.1, 0.05, 0.2)
