"""The pipeline wing: ``analyses.yml``, the notebook context, the runner, the build and the
``evidence`` command.

The only wing that knows papermill, Jupyter Book, paths (:mod:`evidence.pipeline.layout`),
environment variables and the command line.  Templates open their analysis with
:func:`open_analysis`; the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DEFAULT_PACKAGES", "AnalysisContext", "load_config", "open_analysis"]

_WHERE = {"DEFAULT_PACKAGES": "trail", "AnalysisContext": "context",
          "load_config": "config", "open_analysis": "context"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"evidence.pipeline.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'evidence.pipeline' has no attribute {name!r}")
