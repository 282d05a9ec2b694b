"""Every path and environment variable of a book tree, in one place.

Paths are relative to the book root (the directory holding ``analyses.yml``).  The
analysis-specific ones are functions of the analysis id, so that file names derive from
the id and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "ANALYSES_DIR",
    "BOOK_ITEMS",
    "BUILD_DIR",
    "BUILD_STAMP",
    "CACHE_DIR",
    "CACHE_ENV",
    "CONFIG_FILE",
    "DATA_DIR",
    "FAILED_BUILD_LOG",
    "FAILED_DIR",
    "HTML_DIR",
    "LOCK_FILE",
    "NOTEBOOKS_DIR",
    "REPRODUCE_REPORT",
    "RESULTS_DIR",
    "TIMINGS_FILE",
    "TOC_FILE",
    "VERSIONS_DIR",
    "executed_notebook",
    "failed_notebook",
    "result_csv",
    "result_json",
    "result_script",
    "stamp_file",
    "template_file",
]

#: ``analyses.yml``: the single source of what the book contains.
CONFIG_FILE = "analyses.yml"
#: The table of contents Jupyter Book reads (generated from ``analyses.yml``).
TOC_FILE = "_toc.yml"
#: The embedded registry.
DATA_DIR = "data"
#: Parameterised notebook templates.
NOTEBOOKS_DIR = "notebooks"
#: Executed notebooks, as chapters of the book.
ANALYSES_DIR = "book/analyses"
#: Result JSON and CSV of each analysis.
RESULTS_DIR = "results"
#: What ``evidence reproduce`` found when it ran the R scripts (``results/<id>.R``).
REPRODUCE_REPORT = "results/reproduce.json"
#: What the build remembers: stamps of executed analyses, the validated registry.
CACHE_DIR = ".evidence-cache"
#: Environment variable through which the runner hands its cache to the notebooks.
CACHE_ENV = "EVIDENCE_CACHE_DIR"
#: Jupyter Book output, and the HTML book within it.
BUILD_DIR = "_build"
HTML_DIR = "_build/html"
#: Executed notebooks of failed analyses, with their tracebacks.
FAILED_DIR = "_build/failed"
#: Digest of the inputs of the last successful HTML build.
BUILD_STAMP = "_build/.book-inputs.sha256"
#: Log of the last failed HTML build.
FAILED_BUILD_LOG = "_build/last-failed-build.log"
#: Held by the process that is building the tree (one build at a time).
LOCK_FILE = ".evidence-cache/build.lock"
#: Published releases (committed).
VERSIONS_DIR = "versions"
#: Where the time of the last run and build went (for the benchmarks; not an output).
TIMINGS_FILE = ".evidence-cache/timings.json"

#: The book's sources (``_static``/``_templates`` when present); the build adds the Sphinx
#: local extensions and the paths that analysis parameters name.
BOOK_ITEMS = (CONFIG_FILE, "_config.yml", TOC_FILE, "book", NOTEBOOKS_DIR, DATA_DIR,
              VERSIONS_DIR, "_static", "_templates")


def template_file(template: str) -> str:
    """``notebooks/<template>.ipynb``."""
    return f"{NOTEBOOKS_DIR}/{template}.ipynb"


def executed_notebook(analysis_id: str) -> str:
    """``book/analyses/<id>.ipynb``."""
    return f"{ANALYSES_DIR}/{analysis_id}.ipynb"


def result_json(analysis_id: str) -> str:
    """``results/<id>.json``."""
    return f"{RESULTS_DIR}/{analysis_id}.json"


def result_csv(analysis_id: str) -> str:
    """``results/<id>.csv`` (the study table of an analysis, when it has one)."""
    return f"{RESULTS_DIR}/{analysis_id}.csv"


def result_script(analysis_id: str) -> str:
    """``results/<id>.R`` (the R script reproducing a pooled analysis, when it has one)."""
    return f"{RESULTS_DIR}/{analysis_id}.R"


def stamp_file(analysis_id: str) -> str:
    """``.evidence-cache/<id>.json``: what the analysis read when it last ran."""
    return f"{CACHE_DIR}/{analysis_id}.json"


def failed_notebook(analysis_id: str) -> str:
    """``_build/failed/<id>.ipynb``."""
    return f"{FAILED_DIR}/{analysis_id}.ipynb"
