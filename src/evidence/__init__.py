"""evidence: effect sizes, pooling and an executable book for HER2 on circulating tumor cells.

The package has four wings (``src/evidence/README.md`` draws them); imports run one way:

- :mod:`evidence.stats`: the metafor port (effect sizes, ``rma``, the GLMM, Mantel-Haenszel,
  regression, sensitivity, design); numpy and scipy only.
- :mod:`evidence.registry`: the study registry: CSV reading with line numbers, its rules,
  the validated store and its digests, the source audit.
- :mod:`evidence.book`: words, tables and figures for readers, one module per subject;
  imports stats and registry.
- :mod:`evidence.pipeline`: analyses.yml, the notebook context, the runner, the build and
  the ``evidence`` command; the only wing that knows papermill, Jupyter Book and paths.

Wings are imported on first use so that ``import evidence`` and the ``evidence`` command
start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "book", "pipeline", "registry", "stats"]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        return importlib.import_module(f"evidence.{name}")
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")
