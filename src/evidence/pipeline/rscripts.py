"""Run the R scripts of ``results/`` and compare what they print with the book's results.

Every pooled analysis writes ``results/<id>.R`` beside its ``<id>.json`` and ``<id>.csv``
(:func:`evidence.book.reproduce.r_script`, through ``AnalysisContext.save``).
:func:`reproduce_results` runs each with ``Rscript`` in ``results/`` (as a reader would
in the folder they downloaded it to), compares its ``EVIDENCE`` lines with the result
(:func:`evidence.book.reproduce.compare_values`) and writes ``results/reproduce.json``,
which the Reproducibility chapter reads.  ``evidence reproduce`` is the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.pipeline.layout import REPRODUCE_REPORT, RESULTS_DIR, result_json

__all__ = ["RMissing", "find_rscript", "missing_r_packages", "reproduce_results"]

#: Seconds one script may take (the GLMM fits of a large analysis take a few seconds).
TIMEOUT = 600


class RMissing(RuntimeError):
    """``Rscript``, or an R package the scripts need, is not installed."""


def find_rscript(rscript: str | None = None) -> str:
    """The ``Rscript`` to use: ``rscript`` if given, else the one on ``PATH``.

    Raises
    ------
    RMissing
        Not found.
    """
    found = shutil.which(rscript or "Rscript")
    if found is None:
        raise RMissing(f"{rscript or 'Rscript'} not found"
                       + ("" if rscript else " on PATH")
                       + "; install R (Debian: apt-get install r-base-core r-cran-metafor "
                         "r-cran-lme4)")
    return found


def missing_r_packages(rscript: str, packages: list[str]) -> list[str]:
    """The ``packages`` R cannot load (empty: all there)."""
    code = ("for (p in commandArgs(trailingOnly = TRUE)) "
            "if (!requireNamespace(p, quietly = TRUE)) cat(p, '\\n')")
    proc = subprocess.run([rscript, "-e", code, *packages], capture_output=True,
                          text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RMissing(f"{rscript} does not run: {proc.stderr.strip()[-300:]}")
    return proc.stdout.split()


@dataclass(frozen=True)
class _Run:
    analysis_id: str
    result: dict[str, Any]
    script: str


def _run_one(rscript: str, results: Path, run: _Run, timeout: float) -> dict[str, Any]:
    from evidence.book.reproduce import (
        compare_values,
        expected_values,
        parse_output,
        summarise,
        tolerances,
    )

    name = f"{run.analysis_id}.R"
    try:
        proc = subprocess.run([rscript, name], cwd=results, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return summarise(run.analysis_id, run.result, [], None, run.script,
                         error=f"Rscript {name} did not finish within {timeout:g} s")
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-5:]) or "no message"
        return summarise(run.analysis_id, run.result, [], None, run.script,
                         error=f"Rscript {name} exited with status {proc.returncode}: {tail}")
    try:
        expected = expected_values(run.result)
        diffs = compare_values(expected, proc.stdout, tolerances(run.result, expected))
        printed = parse_output(proc.stdout)
    except ValueError as exc:
        return summarise(run.analysis_id, run.result, [], None, run.script,
                         error=f"output of Rscript {name}: {exc}")
    return summarise(run.analysis_id, run.result, diffs, printed, run.script)


def reproduce_results(root: str | Path = ".", *, rscript: str | None = None, jobs: int = 1,
                      timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run every ``results/*.R``, compare, write ``results/reproduce.json``; return it.

    Parameters
    ----------
    root : path
        The book root.
    rscript : str, optional
        The ``Rscript`` executable (default: the one on ``PATH``).
    jobs : int
        Scripts run at a time.
    timeout : float
        Seconds one script may take.

    Returns
    -------
    dict
        The report: ``generator``, ``tolerance``, ``ok`` (every script ran and every
        value agreed) and ``analyses`` (one :func:`evidence.book.reproduce.summarise`
        entry per script, by analysis id).

    Raises
    ------
    RMissing
        ``Rscript`` or an R package the scripts need is missing (nothing is written).
    FileNotFoundError
        No script in ``results/``, or a script without its result JSON.
    """
    from evidence.book.parity import ABS_TOLERANCE, GLMM_TOLERANCE, RMA_TOLERANCE
    from evidence.book.reproduce import r_packages

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    rootp = Path(root)
    results = rootp / RESULTS_DIR
    scripts = sorted(results.glob("*.R"))
    if not scripts:
        raise FileNotFoundError(f"no R scripts in {results} (results/<id>.R): run "
                                "`evidence build` first")
    runs = []
    for path in scripts:
        aid = path.stem
        result_path = rootp / result_json(aid)
        if not result_path.is_file():
            raise FileNotFoundError(f"{path} has no result file {result_path}")
        runs.append(_Run(aid, json.loads(result_path.read_text(encoding="utf-8")),
                         path.read_text(encoding="utf-8")))
    exe = find_rscript(rscript)
    needed = sorted({p for run in runs for p in r_packages(run.result)})
    missing = missing_r_packages(exe, needed)
    if missing:
        raise RMissing(f"R cannot load {', '.join(missing)} (needed by the scripts); "
                       "install them (Debian: r-cran-metafor r-cran-lme4)")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        entries = list(pool.map(lambda run: _run_one(exe, results, run, timeout), runs))
    report = {"generator": "evidence reproduce",
              "tolerance": {"rma": RMA_TOLERANCE, "glmm": GLMM_TOLERANCE,
                            "abs": ABS_TOLERANCE},
              "ok": all(e["status"] == "ok" for e in entries),
              "analyses": entries}
    out = rootp / REPRODUCE_REPORT
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, out)  # the chapter never reads half a report
    return report
