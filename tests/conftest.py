"""Shared helpers for the test-suite: loading metafor reference fixtures and comparing to them.

The reference values live in ``tests/fixtures/metafor/`` (see the README there for the
R calls and versions).  ``assert_metafor_close`` applies the project's tolerance:
1e-6 relative, or 1e-10 absolute near zero.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from real_book import RealBook, build_real_book

METAFOR_DIR = Path(__file__).parent / "fixtures" / "metafor"

#: Single-proportion data sets made by metafor_reference.R (CSV + JSON of the same name).
PROPORTION_SETS: tuple[str, ...] = (
    "orr_her2ctc", "screening_yield", "pfr6_two", "pritz1997", "li2007_treated",
    "anand1999_treated", "edge_allevents",
)

REL_TOL = 1e-6
ABS_TOL = 1e-10

#: metafor record field -> MetaResult attribute.
RMA_FIELDS: dict[str, str] = {
    "estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval",
    "ci_lb": "ci_lower", "ci_ub": "ci_upper", "pi_lb": "pi_lower", "pi_ub": "pi_upper",
    "tau2": "tau2", "se_tau2": "se_tau2", "I2": "i2", "H2": "h2", "QE": "q", "QEp": "q_pvalue",
    "logLik": "loglik", "tau2_ci_lb": "tau2_ci_lower", "tau2_ci_ub": "tau2_ci_upper",
    "I2_ci_lb": "i2_ci_lower", "I2_ci_ub": "i2_ci_upper", "H2_ci_lb": "h2_ci_lower",
    "H2_ci_ub": "h2_ci_upper",
}


def require_rscript(*packages: str) -> str:
    """Path of ``Rscript`` with ``packages`` loadable, else skip the test.

    With ``EVIDENCE_REQUIRE_METAFOR=1`` (CI) a missing R or package fails the test
    instead, so the live comparisons with metafor cannot silently not run.
    """
    required = os.environ.get("EVIDENCE_REQUIRE_METAFOR") == "1"
    rscript = shutil.which("Rscript")
    problem = None
    if rscript is None:
        problem = "Rscript not found on PATH"
    else:
        code = ("suppressPackageStartupMessages({"
                + "; ".join(f"library({p})" for p in packages) + "})")
        probe = subprocess.run([rscript, "-e", code], capture_output=True, text=True,
                               timeout=120, check=False)
        if probe.returncode != 0:
            problem = (f"R packages {'/'.join(packages)} not available: "
                       f"{probe.stderr.strip()[-300:]}")
    if problem:
        message = (f"{problem}. Install Debian packages r-base-core r-cran-metafor "
                   "r-cran-lme4 (jsonlite comes with them).")
        if required:
            pytest.fail(f"EVIDENCE_REQUIRE_METAFOR=1 but {message}")
        pytest.skip(message)
    return rscript


@cache
def load_metafor(name: str) -> dict[str, Any]:
    """The JSON fixture ``tests/fixtures/metafor/<name>.json``."""
    with (METAFOR_DIR / f"{name}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def proportion_csv(name: str) -> pd.DataFrame:
    """The ``study,events,total`` CSV of a proportion data set."""
    return pd.read_csv(METAFOR_DIR / f"{name}.csv")


def _as_float_array(value: Any) -> np.ndarray:
    if value is None:
        return np.array([np.nan])
    arr = np.atleast_1d(np.asarray(value, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in arr], dtype=float)


def assert_metafor_close(actual: Any, expected: Any, what: str = "",
                         rel: float = REL_TOL, abs_tol: float = ABS_TOL) -> None:
    """Assert ``actual`` equals metafor's ``expected`` within the project tolerance.

    ``None`` in ``expected`` (metafor's NA, or +-Inf written as null) must match NaN
    or an infinite value in ``actual``.
    """
    a = _as_float_array(actual)
    e = _as_float_array(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != metafor {e.shape}"
    missing = np.isnan(e)
    assert np.all(~np.isfinite(a[missing])), (
        f"{what}: metafor has NA at {np.flatnonzero(missing).tolist()}, got {a[missing]}")
    ok = ~missing
    diff = np.abs(a[ok] - e[ok])
    bound = np.maximum(rel * np.abs(e[ok]), abs_tol)
    bad = ~(diff <= bound)
    assert not bad.any(), (
        f"{what}: differs from metafor at {np.flatnonzero(ok)[bad].tolist()}: "
        f"got {a[ok][bad].tolist()}, metafor {e[ok][bad].tolist()}")


def compare_fields(obj: Any, record: dict[str, Any], fields: dict[str, str], what: str,
                   skip: Iterable[str] = ()) -> None:
    """Compare each ``record[key]`` to ``getattr(obj, fields[key])`` when present."""
    skip = set(skip)
    for key, attr in fields.items():
        if key in skip or key not in record:
            continue
        assert_metafor_close(getattr(obj, attr), record[key], f"{what} {key}")


def isclose_or_nan(a: float, b: float) -> bool:
    """Both NaN, or equal within the project tolerance."""
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= max(REL_TOL * abs(b), ABS_TOL)


@pytest.fixture(scope="session")
def extra() -> dict[str, Any]:
    """``metafor_extra.json`` (two-group, HR, regression, ... references)."""
    return load_metafor("metafor_extra")


@pytest.fixture(scope="session")
def real_book(tmp_path_factory: pytest.TempPathFactory) -> RealBook:
    """The real book built once per session in a temporary copy (see real_book.py)."""
    return build_real_book(tmp_path_factory.mktemp("real_book") / "book")


@pytest.fixture(scope="module")
def bcg(extra):
    """metafor's dat.bcg (metafor_extra.json) and its log risk ratios."""
    from evidence.stats.effects import escalc

    b = extra["data"]["bcg"]
    return b, escalc("RR", ai=b["ai"], bi=b["bi"], ci=b["ci"], di=b["di"], study_ids=b["author"])
