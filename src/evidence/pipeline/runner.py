"""Execute the analyses of ``analyses.yml`` with papermill, re-running only what changed.

Each analysis runs its template with the parameters of ``analyses.yml`` plus
``analysis_id``, ``data_dir`` and ``results_dir``.  The notebook writes
``results/<id>.json`` through :mod:`evidence.pipeline.context`, which records every
registry query it made (``inputs``).  After a successful run the runner stores a
stamp in ``.evidence-cache/<id>.json`` with content hashes of the template, the
parameters, the library and each recorded query's rows.  On the next run the
queries are re-evaluated on the current registry; the analysis is skipped only
when every hash matches and its outputs are intact.  No timestamps are used.

A failed analysis leaves its previous notebook and results in place; its
executed notebook, with the traceback, goes to ``_build/failed/<id>.ipynb``.

Each analysis runs in a fresh kernel of its own, started ahead while the previous
notebook runs and stopped behind it (:mod:`evidence.pipeline.kernels`).  The time of
each run and of its cells goes to ``.evidence-cache/timings.json``
(:mod:`evidence.pipeline.timings`).
"""

from __future__ import annotations

import graphlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.pipeline.config import Analysis, BookConfig
from evidence.pipeline.layout import (
    ANALYSES_DIR,
    CACHE_DIR,
    CACHE_ENV,
    RESULTS_DIR,
    failed_notebook,
    result_csv,
    result_json,
    result_script,
    stamp_file,
)
from evidence.pipeline.trail import library_digest, read_digest
from evidence.pipeline.trail import sha256 as _sha256

__all__ = ["RunOutcome", "RunReport", "run_analyses", "stale_analyses", "stamp_key"]

#: How a kernel that failed to start reports it (nbclient's start-up wait): the port race
#: below, or a start-up that timed out on a loaded machine; no cell has run then.
_KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info",
                          "Kernel didn't respond in")


def stamp_key(config: BookConfig, analysis: Analysis, lib: str) -> dict[str, str]:
    """The hashes of everything an analysis depends on except the registry rows (the
    analyses it reads, ``after``, included: one added there is read by the next run)."""
    params = json.dumps({"title": analysis.title, "parameters": analysis.parameters,
                         "after": list(analysis.after)}, sort_keys=True, ensure_ascii=False)
    return {
        "template": _sha256(config.template_path(analysis.template).read_bytes()),
        "parameters": _sha256(params.encode()),
        "library": lib,
    }


@dataclass
class RunOutcome:
    """What happened to one analysis."""

    analysis_id: str
    status: str  # "executed", "skipped", "failed"
    seconds: float = 0.0
    reason: str = ""
    error: str = ""
    cell_seconds: float = 0.0  # the notebook's cells alone (papermill's durations)


@dataclass
class RunReport:
    """All outcomes of one ``evidence run``."""

    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no analysis failed."""
        return all(o.status != "failed" for o in self.outcomes)

    def by_status(self, status: str) -> list[str]:
        """Ids of the analyses with that status."""
        return [o.analysis_id for o in self.outcomes if o.status == status]


def _stale_reason(config: BookConfig, analysis: Analysis, key: dict[str, str],
                  data_dir: Path, registry: Any) -> str | None:
    """Why the analysis must run, or None when its stamp is current."""
    root = config.root
    stamp_path = root / stamp_file(analysis.id)
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "never run"
    for part in ("template", "parameters", "library"):
        if stamp.get(part) != key[part]:
            return f"{part} changed"
    if stamp.get("data_dir") != str(data_dir):
        return "data directory changed"
    outputs = stamp.get("outputs", {})
    for rel in (analysis.notebook, analysis.result, *outputs):
        path = root / rel
        if not path.is_file():
            return f"{rel} missing"
        if _sha256(path.read_bytes()) != outputs.get(rel):
            return f"{rel} modified"
    for read in stamp.get("reads", []):
        table = read["query"].get("table")
        try:
            current = read_digest(registry, read["query"], root)
        except (KeyError, ValueError, OSError):
            return f"inputs changed ({table} can no longer be read as before)"
        if current != read["digest"]:
            what = {"result": f"result of {read['query'].get('id')}", "files": "files",
                    "environment": "package versions"}.get(table, "registry rows")
            return f"{what} changed ({table})"
    return None


def stale_analyses(config: BookConfig, *, data_dir: str | Path = "data",
                   registry: Any = None) -> dict[str, str]:
    """Why each analysis that is not current must run again (empty: every result is
    current), by the same stamps ``evidence run`` uses to skip an analysis.

    Parameters
    ----------
    config : BookConfig
        The validated ``analyses.yml``.
    data_dir : path
        The registry directory (relative to the book root, or absolute).
    registry : Registry, optional
        The loaded registry (loaded from ``data_dir`` when not given).
    """
    from evidence.registry.store import load

    root = config.root
    data_abs = (root / data_dir).resolve()
    try:
        data_rel = data_abs.relative_to(root).as_posix()
    except ValueError:
        data_rel = str(data_abs)
    if registry is None:
        registry = load(data_abs, cache_dir=root / CACHE_DIR)
    lib = library_digest()
    reasons = {a.id: _stale_reason(config, a, stamp_key(config, a, lib), Path(data_rel),
                                   registry) for a in config.analyses}
    return {aid: reason for aid, reason in reasons.items() if reason is not None}


def _finish_notebook(path: Path, analysis: Analysis, root: Path) -> None:
    """Title, download links, hidden parameters cell, no volatile metadata."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
        elif "injected-parameters" in tags:
            cell.metadata["tags"] = [*tags, "hide-cell"]
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None or not first_md.source.lstrip().startswith("# "):
        raise RuntimeError(f"template {analysis.template} must start with a '# ' heading")
    lines = first_md.source.lstrip().splitlines()
    lines[0] = f"# {analysis.title}"
    first_md.source = "\n".join(lines)
    links = [f"{{download}}`executed notebook <{analysis.id}.ipynb>`",
             f"{{download}}`results (JSON) <../../results/{analysis.id}.json>`"]
    if (root / result_csv(analysis.id)).is_file():
        links.append(f"{{download}}`study table (CSV) <../../results/{analysis.id}.csv>`")
    if (root / result_script(analysis.id)).is_file():
        # evidence.book.reproduce: reads the CSV beside it (Rscript <id>.R in that folder)
        links.append(f"{{download}}`R script (metafor) <../../results/{analysis.id}.R>`")
    downloads = nbformat.v4.new_markdown_cell(
        "```{admonition} Downloads\n:class: tip\n" + " · ".join(links) + "\n```")
    downloads.metadata["tags"] = ["evidence-downloads"]
    nb.cells.insert(nb.cells.index(first_md) + 1, downloads)
    pm = nb.metadata.get("papermill", {})
    for volatile in ("start_time", "end_time", "duration", "input_path", "output_path"):
        pm.pop(volatile, None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, path)


def _execute(root: str, analysis: Analysis, template: str, data_dir: str,
             ahead: bool = False) -> RunOutcome:
    """Run one analysis (in a worker process); never raises.  With ``ahead`` the kernel of
    the next analysis is started while this one runs."""
    from evidence.pipeline.kernels import execute as execute_notebook

    start = time.perf_counter()
    rootp = Path(root)
    out = rootp / analysis.notebook
    results = [rootp / result_json(analysis.id), rootp / result_csv(analysis.id),
               rootp / result_script(analysis.id)]
    backup = {p: p.read_bytes() for p in results if p.is_file()}
    for p in results:
        p.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".ipynb", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    params = {**analysis.parameters, "analysis_id": analysis.id,
              "data_dir": data_dir, "results_dir": RESULTS_DIR}

    def execute() -> Any:
        # point the kernel at the registry the runner has validated
        # (evidence.pipeline.context.open_analysis reads it from there)
        return execute_notebook(template, str(tmp), params, cwd=root, ahead=ahead,
                                env={CACHE_ENV: str(rootp / CACHE_DIR)})

    try:
        try:
            nb = execute()
        except RuntimeError as exc:
            # jupyter_client picks free ports before the kernel binds them, so kernels
            # started at the same moment can collide (jupyter/jupyter_client#154); such a
            # start failure happens before any cell ran, so one retry is safe
            if not any(m in str(exc) for m in _KERNEL_START_FAILURES):
                raise
            nb = execute()
        cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0.0)
                    for c in nb.cells)
        if not results[0].is_file():
            raise RuntimeError(f"the notebook did not write results/{analysis.id}.json "
                               "(a template must end with ctx.save(...))")
        _finish_notebook(tmp, analysis, rootp)
        os.replace(tmp, out)
        return RunOutcome(analysis.id, "executed", time.perf_counter() - start,
                          cell_seconds=cells)
    except Exception as exc:
        for p in results:
            p.unlink(missing_ok=True)
        for p, data in backup.items():
            p.write_bytes(data)
        failed = rootp / failed_notebook(analysis.id)
        failed.parent.mkdir(parents=True, exist_ok=True)
        if tmp.is_file():
            shutil.move(tmp, failed)
        message = _describe_error(exc)
        return RunOutcome(analysis.id, "failed", time.perf_counter() - start,
                          error=f"{message}\n(executed notebook with the error: {failed})")
    finally:
        tmp.unlink(missing_ok=True)


def _describe_error(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename:
        return f"{ename}: {getattr(exc, 'evalue', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _write_stamp(config: BookConfig, analysis: Analysis, key: dict[str, str],
                 data_dir: Path, registry: Any) -> None:
    root = config.root
    result = json.loads((root / analysis.result).read_text(encoding="utf-8"))
    reads = [{"query": q, "digest": read_digest(registry, q, root)}
             for q in result.get("inputs", [])]
    outputs = [analysis.notebook, analysis.result]
    outputs += [rel for rel in (result_csv(analysis.id), result_script(analysis.id))
                if (root / rel).is_file()]
    stamp = {**key, "data_dir": str(data_dir), "reads": reads,
             "outputs": {rel: _sha256((root / rel).read_bytes()) for rel in outputs}}
    path = root / stamp_file(analysis.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamp, indent=1, sort_keys=True), encoding="utf-8")


def run_analyses(config: BookConfig, *, data_dir: str | Path = "data",
                 only: list[str] | None = None, jobs: int = 1, force: bool = False,
                 progress: bool = True) -> RunReport:
    """Execute the analyses whose inputs changed.

    Parameters
    ----------
    config : BookConfig
        The validated ``analyses.yml``.
    data_dir : path
        The registry directory; a relative path is taken from the book root.
        Notebooks receive it relative to the book root when it lies inside.
    only : list of str, optional
        Run just these analysis ids (they run even when current).
    jobs : int
        Notebooks executed at a time (separate processes).
    force : bool
        Re-run every selected analysis.
    progress : bool
        Show a progress bar on standard error.

    Returns
    -------
    RunReport
        One outcome per selected analysis.  The registry is validated first;
        a :class:`evidence.registry.store.RegistryError` propagates.
    """
    from tqdm import tqdm

    from evidence.pipeline import kernels, timings
    from evidence.registry.store import load

    started = time.perf_counter()
    root = config.root
    data_abs = (root / data_dir).resolve()  # an absolute data_dir stays as it is
    try:
        data_rel = data_abs.relative_to(root).as_posix()
    except ValueError:
        data_rel = str(data_abs)
    registry = load(data_abs, cache_dir=root / CACHE_DIR)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    selected = set(only) if only else None
    if selected:
        for aid in selected:
            config.get(aid)
    (root / ANALYSES_DIR).mkdir(parents=True, exist_ok=True)
    (root / RESULTS_DIR).mkdir(exist_ok=True)
    lib = library_digest()
    report = RunReport()
    failed_ids: set[str] = set()
    order = {a.id: i for i, a in enumerate(config.analyses)}
    total = sum(1 for a in config.analyses if selected is None or a.id in selected)
    bar = tqdm(total=total, desc="analyses", unit="nb", disable=not progress, file=sys.stderr)
    # each analysis starts as soon as the analyses it reads ('after') are done, not in waves
    graph = graphlib.TopologicalSorter({a.id: a.after for a in config.analyses})
    graph.prepare()
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    running: dict[Future[RunOutcome], tuple[Analysis, dict[str, str], str]] = {}

    def finish(a: Analysis, key: dict[str, str], reason: str, outcome: RunOutcome) -> None:
        outcome.reason = reason
        if outcome.status == "failed":
            failed_ids.add(a.id)
        else:
            _write_stamp(config, a, key, Path(data_rel), registry)
        report.outcomes.append(outcome)
        bar.set_postfix_str(a.id)
        bar.update()
        graph.done(a.id)

    try:
        while graph.is_active():
            for aid in sorted(graph.get_ready(), key=order.__getitem__):
                a = config.get(aid)
                if selected is not None and a.id not in selected:
                    graph.done(aid)
                    continue
                blocked = [d for d in a.after if d in failed_ids]
                if blocked:
                    failed_ids.add(a.id)
                    report.outcomes.append(RunOutcome(
                        a.id, "failed", error=f"not run: depends on failed {blocked}"))
                    bar.update()
                    graph.done(aid)
                    continue
                key = stamp_key(config, a, lib)
                reason = "forced" if force or selected else _stale_reason(
                    config, a, key, Path(data_rel), registry)
                if reason is None:
                    report.outcomes.append(RunOutcome(a.id, "skipped", reason="up to date"))
                    bar.update()
                    graph.done(aid)
                    continue
                template = str(config.template_path(a.template))
                # more analyses may follow this one: start their kernel while it runs
                ahead = total - len(report.outcomes) - len(running) > 1
                if pool is None:
                    finish(a, key, reason, _execute(str(root), a, template, data_rel, ahead))
                else:
                    running[pool.submit(_execute, str(root), a, template, data_rel,
                                        ahead)] = (a, key, reason)
            if running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: order[running[f][0].id]):
                    a, key, reason = running.pop(fut)
                    finish(a, key, reason, fut.result())
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
        kernels.close_all()
    report.outcomes.sort(key=lambda o: order[o.analysis_id])
    timings.record(root, "run", {
        "jobs": jobs, "seconds": time.perf_counter() - started,
        "analyses": {o.analysis_id: {"status": o.status, "seconds": o.seconds,
                                     "cell_seconds": o.cell_seconds} for o in report.outcomes}})
    return report
