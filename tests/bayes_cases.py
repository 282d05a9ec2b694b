"""Data and helpers shared by the tests of :mod:`evidence.stats.bayes`
(``tests/stats/test_bayes.py``, ``test_bayes_normal.py``, ``test_bayes_binomial.py``).

The published bayesmeta analyses are in ``tests/fixtures/bayes/bayesmeta_published.json``
(see the README there); :data:`published` is the script beside it that regenerates its
derived columns, whose functions (``fit_example``, ``our_value``, ``tolerance``) the tests
use to recompute every printed value.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

BAYES_FIXTURES = Path(__file__).parent / "fixtures" / "bayes"

# the book's data (HER2-CTC trials): objective responses and screening yield
OBJ_X = [0, 1, 1, 1, 4]
OBJ_N = [7, 14, 11, 20, 8]
SCR_X = [7, 24, 14, 69, 8]
SCR_N = [139, 283, 154, 311, 64]


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


#: ``tests/fixtures/bayes/make_bayesmeta_published.py``
published = _load_script(BAYES_FIXTURES / "make_bayesmeta_published.py")
#: The four published analyses.
EXAMPLES: list[dict] = json.loads(published.FIXTURE.read_text(encoding="utf-8"))["examples"]


def crins_data() -> tuple[np.ndarray, np.ndarray]:
    """CrinsEtAl2014: six log odds ratios and their variances (JSS Section 3.3)."""
    d = EXAMPLES[0]["data"]
    return np.array(d["yi"]), np.array(d["vi"])


def rubin_data() -> tuple[np.ndarray, np.ndarray]:
    """Rubin1981: the eight schools' effects and variances (bayesmeta vignette)."""
    d = EXAMPLES[2]["data"]
    return np.array(d["yi"]), np.array(d["vi"])


def gl_nodes(edges: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights (independent of the module's panels)."""
    x, w = np.polynomial.legendre.leggauss(m)
    edges = np.asarray(edges, dtype=float)
    mid = 0.5 * (edges[1:] + edges[:-1])
    half = 0.5 * (edges[1:] - edges[:-1])
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()
