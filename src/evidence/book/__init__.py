"""The book wing: the words, tables and figures readers see, one module per subject.

- text primitives (:mod:`~evidence.book.text`), names shown to readers
  (:mod:`~evidence.book.names`), the table renderer (:mod:`~evidence.book.tables`), study
  lookups (:mod:`~evidence.book.studies`), figures (:mod:`~evidence.book.figures`);
- one module per chapter subject: :mod:`~evidence.book.pooled` (a pooled proportion),
  :mod:`~evidence.book.transitions`, :mod:`~evidence.book.within_study`,
  :mod:`~evidence.book.contradictions`, :mod:`~evidence.book.two_arm`,
  :mod:`~evidence.book.hazard_ratios`, :mod:`~evidence.book.flow`,
  :mod:`~evidence.book.feasibility`, :mod:`~evidence.book.summary`,
  :mod:`~evidence.book.provenance`, :mod:`~evidence.book.parity`,
  :mod:`~evidence.book.reproduce` (the R script of a pooled analysis and its check).

Imports the statistics and the registry, never the pipeline.  Templates import the
modules they need (``from evidence.book import pooled, tables``); each loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["contradictions", "feasibility", "figures", "flow", "hazard_ratios", "names",
           "parity", "pooled", "provenance", "reproduce", "studies", "summary", "tables", "text",
           "transitions", "two_arm", "within_study"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"evidence.book.{name}")
    raise AttributeError(f"module 'evidence.book' has no attribute {name!r}")
