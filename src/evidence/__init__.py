"""evidence: effect sizes, pooling and an executable book for HER2 on circulating tumor cells.

The statistics follow R's metafor (vocabulary and results): :mod:`evidence.effects`
(``escalc``), :mod:`evidence.pooling` (``rma``), :mod:`evidence.glmm` (``rma_glmm``),
:mod:`evidence.twoarm` (Mantel-Haenszel), :mod:`evidence.regression`,
:mod:`evidence.sensitivity`, :mod:`evidence.design`, :mod:`evidence.plots`.
The registry lives in :mod:`evidence.registry`; the book pipeline in
:mod:`evidence.config`, :mod:`evidence.runner` and :mod:`evidence.build`.

Submodules are imported on first use so that ``import evidence`` and the
``evidence`` command start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "analysis",
    "audit",
    "build",
    "config",
    "design",
    "effects",
    "glmm",
    "plots",
    "pooling",
    "registry",
    "regression",
    "results",
    "runner",
    "sensitivity",
    "transforms",
    "twoarm",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        return importlib.import_module(f"evidence.{name}")
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")
