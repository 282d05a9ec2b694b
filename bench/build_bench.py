"""Build benchmark: clean, no-op and incremental builds of the real book, and scaling.

Every measurement runs ``evidence build --root T --data T/data -j 2 -q`` in a
temporary copy ``T`` of the book (``analyses.yml``, ``_config.yml``, ``_toc.yml``,
``book/`` without executed notebooks, ``notebooks/``, ``data/``), never in the
repository itself.  Scaling registries add synthetic studies (clones of the seed
studies' rows with resampled events) until every outcome the book's analyses read
has N studies.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import (
    EVIDENCE,
    PYTHON,
    REPO,
    Timed,
    fmt_mb,
    fmt_s,
    importtime_totals,
    markdown_table,
    run_timed,
)

from evidence.pipeline.build import copy_book_sources, parameter_strings

__all__ = ["add_one_study", "book_outcomes", "copy_book", "run_build",
           "synthesize_registry"]

NOOP_TARGET_S = 5.0
SCALING_TARGET = 1.5
BUILD_TIMEOUT_S = 3600.0
_RUN_LINE = re.compile(r"analyses: (\d+) executed, (\d+) up to date, (\d+) failed"
                       r"(?: \(executed: (.*)\))?")


def copy_book(dest: Path, src: Path = REPO) -> Path:
    """Copy the book's sources into ``dest`` (created) and return it."""
    return copy_book_sources(dest, src)


def _build(root: Path, *extra: str, memory: bool = False) -> Timed:
    return run_timed([EVIDENCE, "build", "--root", root, "--data", root / "data", "-j", "2",
                      "-q", *extra], cwd=root, memory=memory, timeout=BUILD_TIMEOUT_S)


#: jupyter_client picks free ports before the kernel binds them; kernels started at the
#: same moment can collide (jupyter/jupyter_client#154).  A build failing only this way
#: is retried once and the retry is noted.
_KERNEL_START_RACE = "Kernel died before replying to kernel_info"


def _build_retrying(root: Path, *extra: str, memory: bool = False) -> tuple[Timed, str]:
    res = _build(root, *extra, memory=memory)
    if not res.ok and _KERNEL_START_RACE in res.stdout + res.stderr:
        return _build(root, *extra, memory=memory), "retried once after a kernel start race"
    return res, ""


def _executed(res: Timed) -> list[str]:
    match = _RUN_LINE.search(res.stdout)
    if match is None:
        return []
    return [s.strip() for s in (match.group(4) or "").split(",") if s.strip()]


def _failure(res: Timed) -> str:
    if res.timed_out:
        return f"timed out after {BUILD_TIMEOUT_S:.0f} s"
    tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-6:]
    return f"exit {res.returncode}: " + " / ".join(line.strip() for line in tail)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _append_csv(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    text = path.read_text(encoding="utf-8")
    with path.open("a", newline="", encoding="utf-8") as fh:
        if text and not text.endswith("\n"):
            fh.write("\n")
        csv.DictWriter(fh, fieldnames=fields, lineterminator="\n").writerows(rows)


def book_outcomes(root: Path) -> list[str]:
    """Registry outcomes named in the parameters of the analyses of ``analyses.yml``.

    Falls back to every outcome of ``outcomes.csv`` when none is named.
    """
    import yaml

    config = yaml.safe_load((root / "analyses.yml").read_text(encoding="utf-8"))
    _, rows = _read_csv(root / "data" / "outcomes.csv")
    known = list(dict.fromkeys(r["outcome"] for r in rows))
    named = {s for a in config.get("analyses", [])
             for s in parameter_strings(a.get("parameters", {}))}
    used = [o for o in known if o in named]
    return used or known


def add_one_study(data: Path, outcomes: list[str]) -> tuple[str, list[str]]:
    """Append one study cloned from the seed study reporting most of ``outcomes``.

    Returns
    -------
    tuple
        The new study id and the outcomes it reports.
    """
    sfields, studies = _read_csv(data / "studies.csv")
    ofields, rows = _read_csv(data / "outcomes.csv")
    cover = Counter(r["study_id"] for r in {(r["study_id"], r["outcome"]): r for r in rows
                                            if r["outcome"] in outcomes}.values())
    template = max(studies, key=lambda s: cover.get(s["study_id"], 0))
    new_id = "bench_added_study"
    study = {**template, "study_id": new_id, "label": "Bench added study 2025",
             "year": "2025", "doi": ""}
    new_rows = []
    for r in rows:
        if r["study_id"] == template["study_id"]:
            events, total = int(r["events"]), int(r["total"])
            events = events + 1 if events < total else events - 1
            new_rows.append({**r, "study_id": new_id, "events": str(events)})
    _append_csv(data / "studies.csv", sfields, [study])
    _append_csv(data / "outcomes.csv", ofields, new_rows)
    if (data / "screening.csv").is_file():  # a study must be included by a screening record
        from loop_bench import register_study

        register_study(data, new_id, template["study_id"])
    return new_id, sorted({r["outcome"] for r in new_rows})


def synthesize_registry(data: Path, n_per_outcome: int, outcomes: list[str], *,
                        seed: int = 7) -> dict[str, int]:
    """Add synthetic studies until each outcome in ``outcomes`` has ``n_per_outcome``.

    Each synthetic study clones one seed study's rows of one outcome (all arms,
    subgroups and uses), with events resampled from a logit-normal perturbation
    of the seed proportion (totals kept).

    Returns
    -------
    dict
        Numbers of synthetic studies and outcome rows added.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    sfields, studies = _read_csv(data / "studies.csv")
    ofields, rows = _read_csv(data / "outcomes.csv")
    by_id = {s["study_id"]: s for s in studies}
    new_studies: list[dict[str, str]] = []
    new_rows: list[dict[str, str]] = []
    clones: list[tuple[str, str]] = []  # (new study, the seed study it clones)
    for outcome in outcomes:
        seed_ids = list(dict.fromkeys(r["study_id"] for r in rows if r["outcome"] == outcome))
        for i in range(max(n_per_outcome - len(seed_ids), 0)):
            source = seed_ids[i % len(seed_ids)]
            sid = f"syn{len(new_studies) + 1:06d}"
            clones.append((sid, source))
            new_studies.append({**by_id[source], "study_id": sid, "doi": "",
                                "label": f"Synthetic {len(new_studies) + 1:06d}",
                                "citation": f"synthetic clone of {source} (bench/run.py)"})
            shift = rng.normal(0.0, 0.7)
            for r in rows:
                if r["study_id"] == source and r["outcome"] == outcome:
                    total = int(r["total"])
                    p = (int(r["events"]) + 0.5) / (total + 1.0)
                    p = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift)))
                    new_rows.append({**r, "study_id": sid,
                                     "events": str(int(rng.binomial(total, p)))})
    _append_csv(data / "studies.csv", sfields, new_studies)
    _append_csv(data / "outcomes.csv", ofields, new_rows)
    if (data / "screening.csv").is_file():  # a study must be included by a screening record
        from loop_bench import register_studies

        register_studies(data, clones)
    return {"studies": len(new_studies), "outcome_rows": len(new_rows)}


def _analysis_ids(root: Path) -> list[str]:
    import yaml

    config = yaml.safe_load((root / "analyses.yml").read_text(encoding="utf-8"))
    return [a["id"] for a in config.get("analyses", [])]


def _cell_kind(cell: Any) -> str:
    tags = cell.metadata.get("tags", [])
    if "parameters" in tags or "injected-parameters" in tags:
        return "other cells"
    if any("image/" in k for o in cell.get("outputs", []) for k in o.get("data", {})):
        return "plotting cells"  # a figure shown or glued (application/papermill.record/image/*)
    return "other cells"


def _notebook_breakdown(path: Path, cwd: Path) -> dict[str, Any]:
    """Execute an executed notebook again with nbclient, timing kernel start and cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    marks: dict[str, float] = {}
    starts: dict[int, float] = {}
    cell_s: dict[int, float] = {}
    t0 = time.perf_counter()

    def on_start(**_: Any) -> None:
        marks["kernel start"] = time.perf_counter() - t0

    def on_execute(cell_index: int, **_: Any) -> None:
        starts[cell_index] = time.perf_counter()

    def on_executed(cell_index: int, **_: Any) -> None:
        cell_s[cell_index] = time.perf_counter() - starts[cell_index]

    client = NotebookClient(nb, kernel_name="python3", timeout=1800,
                            resources={"metadata": {"path": str(cwd)}},
                            on_notebook_start=on_start, on_cell_execute=on_execute,
                            on_cell_executed=on_executed)
    client.execute()
    out: dict[str, Any] = {"kernel start": marks.get("kernel start", 0.0),
                           "plotting cells": 0.0, "other cells": 0.0}
    for index, seconds in cell_s.items():
        out[_cell_kind(nb.cells[index])] += seconds
    total = time.perf_counter() - t0
    out["kernel shutdown"] = max(total - sum(out.values()), 0.0)
    out["total"] = total
    out["cells"] = [(index, seconds, _first_statement(nb.cells[index].source))
                    for index, seconds in cell_s.items() if nb.cells[index].source.strip()]
    return out


def _first_statement(source: str) -> str:
    """What a cell calls (dotted names, in order), or its first line that is not an import."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
    work = [ln for ln in lines if not ln.startswith(("import ", "from ", "#", "%"))]
    try:
        tree = ast.parse("\n".join(ln for ln in source.splitlines()
                                   if not ln.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return (work or lines)[0][:70]
    calls: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if "(" not in name and name not in calls:
                calls.append(name)
    text = ", ".join(calls) if calls else (work or lines)[0]
    return text[:90] + ("…" if len(text) > 90 else "")


def _importtime(path: Path, cwd: Path) -> dict[str, float]:
    res = run_timed([PYTHON, "-X", "importtime", "-m", "IPython", "--no-banner", str(path)],
                    cwd=cwd, timeout=1800, env={**os.environ, "MPLBACKEND": "Agg"})
    return importtime_totals(res.stderr)


def _import_profile(path: Path, cwd: Path, baseline: dict[str, float]) -> dict[str, float]:
    """Seconds per top-level package imported while running the notebook in IPython,
    minus what running an empty notebook imports (IPython itself, nbformat)."""
    totals = _importtime(path, cwd)
    return {pkg: sec - baseline.get(pkg, 0.0) for pkg, sec in totals.items()
            if sec - baseline.get(pkg, 0.0) > 0.01}


def _empty_notebook(directory: Path) -> Path:
    import nbformat

    path = directory / "empty-bench.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")]), path)
    return path


def _breakdown(root: Path, label: str, sphinx_s: float | None,
               imports_too: bool = True) -> tuple[str, dict]:
    """Per-notebook time split (sequential re-execution) plus, optionally, import costs
    (they do not depend on the registry size, so they are measured on the seed only)."""
    ids = [i for i in _analysis_ids(root) if (root / "book" / "analyses" / f"{i}.ipynb").is_file()]
    per: dict[str, dict[str, Any]] = {}
    imports: Counter[str] = Counter()
    baseline: dict[str, float] = {}
    if imports_too:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = _importtime(_empty_notebook(Path(tmp)), root)
    for aid in ids:
        nb = root / "book" / "analyses" / f"{aid}.ipynb"
        per[aid] = _notebook_breakdown(nb, root)
        if imports_too:
            imports.update(_import_profile(nb, root, baseline))
    parts = ["kernel start", "plotting cells", "other cells", "kernel shutdown"]
    total = sum(p["total"] for p in per.values())
    rows = [(part, fmt_s(sum(p[part] for p in per.values())),
             f"{100 * sum(p[part] for p in per.values()) / total:.0f}%" if total else "–")
            for part in parts]
    rows.append(("**all notebooks, one after another**", fmt_s(total), "100%"))
    if sphinx_s is not None:
        rows.append(("Sphinx (`jupyter-book build`, analyses current)", fmt_s(sphinx_s), ""))
    slowest = sorted(per.items(), key=lambda kv: -kv[1]["total"])[:5]
    text = (f"Where the time goes ({label}; {len(ids)} notebooks re-executed one after "
            "another with nbclient; the build runs two at a time):\n\n"
            + markdown_table(["part", "time", "share of notebook time"], rows)
            + "\n\nSlowest notebooks: " + ", ".join(
                f"`{aid}` {fmt_s(p['total'])} (plotting {fmt_s(p['plotting cells'])})"
                for aid, p in slowest) + ".")
    cells = sorted(((sec, aid, src) for aid, p in per.items() for _, sec, src in p["cells"]),
                   reverse=True)[:8]
    text += "\n\nSlowest cells:\n\n" + markdown_table(
        ["notebook", "what the cell calls", "time"],
        [(f"`{aid}`", f"`{src.replace('|', '¦')}`", fmt_s(sec)) for sec, aid, src in cells])
    if imports:
        text += ("\n\nImports summed over the notebooks (`python -X importtime` of each "
                 "notebook run by IPython, minus an empty notebook; top-level packages, "
                 "cumulative): " + ", ".join(
                     f"{pkg} {fmt_s(sec)}" for pkg, sec in imports.most_common(8)) + ".")
    return text, {"per_notebook": per, "imports": dict(imports)}


def _html_size(root: Path) -> int:
    html = root / "_build" / "html"
    return sum(p.stat().st_size for p in html.rglob("*") if p.is_file()) if html.is_dir() else 0


def _sphinx_only(root: Path) -> Timed:
    (root / "_build" / ".book-inputs.sha256").unlink(missing_ok=True)
    return _build(root)


def run_build(*, quick: bool, out_dir: Path, src: Path = REPO) -> tuple[str, dict[str, Any]]:
    """Run the build benchmark.

    Parameters
    ----------
    quick : bool
        Scaling only up to 100 studies per outcome, no breakdown at scale.
    out_dir : Path
        Where the raw numbers are written.
    src : Path
        The book to copy (default: the repository).

    Returns
    -------
    tuple
        The Markdown results section and the raw numbers.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {"quick": quick, "book": str(src)}
    lines = ["### Build: the real book", f"Book at the time of the run: "
             f"{len(_analysis_ids(src))} analyses in `analyses.yml`; `-j 2`; {_machine()}."]
    with tempfile.TemporaryDirectory(prefix="evidence-bench-") as tmp:
        seed = copy_book(Path(tmp) / "seed", src)
        outcomes = book_outcomes(seed)
        clean, clean_note = _build_retrying(seed, "--force", memory=True)
        print(f"  clean build: {fmt_s(clean.seconds)} (exit {clean.returncode})", flush=True)
        if not clean.ok:
            lines.append(f"**The clean build failed** ({_failure(clean)}); nothing else "
                         "was measured.")
            raw["clean"] = {"failed": _failure(clean)}
            return "\n\n".join(lines), raw
        noops = [_build(seed) for _ in range(3)]
        noop = sorted(noops, key=lambda t: t.seconds)[1]
        sphinx = _sphinx_only(seed)
        sphinx_s = max(sphinx.seconds - noop.seconds, 0.0)
        counts = _RUN_LINE.search(clean.stdout)
        n_analyses = sum(int(x) for x in counts.groups()[:3]) if counts else 0
        print(f"  no-op: {fmt_s(noop.seconds)}; Sphinx alone ≈ {fmt_s(sphinx_s)}", flush=True)

        added = copy_book(Path(tmp) / "added", src)
        shutil.copytree(seed / "_build", added / "_build")
        for keep in ("results", ".evidence-cache", "book/analyses"):
            shutil.rmtree(added / keep, ignore_errors=True)
            shutil.copytree(seed / keep, added / keep)
        new_id, new_outcomes = add_one_study(added / "data", outcomes)
        incr = _build(added)
        reran = _executed(incr)
        print(f"  one study added: {fmt_s(incr.seconds)}, re-ran {reran}", flush=True)

        steps = [
            ("clean `evidence build --force -j 2`", clean,
             f"{n_analyses} analyses; HTML {_html_size(seed) / 1e6:.1f} MB"
             + (f" ({clean_note})" if clean_note else "")),
            ("no-op rebuild (median of 3)", noop,
             f"target ≤ {NOOP_TARGET_S:.0f} s: "
             f"**{'met' if noop.ok and noop.seconds <= NOOP_TARGET_S else 'MISSED'}**"
             + ("" if "book up to date" in noop.stdout else " (the book was rebuilt!)")),
            (f"one study added (`{new_id}`, outcomes {', '.join(new_outcomes)})", incr,
             f"re-ran {len(reran)}: {', '.join(reran) or 'none'}"),
            ("Sphinx only (book stamp removed, analyses current)", sphinx,
             f"≈ {fmt_s(sphinx_s)} after subtracting the no-op time"),
        ]
        lines.append(markdown_table(
            ["step", "wall time", "peak RSS (largest process / whole tree)", "notes"],
            [(name, fmt_s(t.seconds) if t.ok else f"FAILED ({_failure(t)})",
              f"{fmt_mb(t.max_rss_kb)} / {fmt_mb(t.tree_peak_kb)}" if t.max_rss_kb else "",
              note) for name, t, note in steps]))
        raw["steps"] = {name: {"seconds": t.seconds, "ok": t.ok, "max_rss_kb": t.max_rss_kb,
                               "tree_peak_kb": t.tree_peak_kb} for name, t, _ in steps}
        raw["reran_after_adding"] = reran

        text, data = _breakdown(seed, "seed registry", sphinx_s)
        lines.append(text)
        raw["breakdown_seed"] = data

        lines.append("### Build: scaling with the registry size")
        lines.append(f"Synthetic studies added until each outcome the book reads "
                     f"({', '.join(outcomes)}) has N studies; clean `evidence build --force "
                     f"-j 2` each time. Target: ≤ {SCALING_TARGET}× the seed registry's "
                     "time at N = 1,000.")
        scale_rows = [("seed", _count_rows(seed), fmt_s(clean.seconds), "1.0×",
                       f"{fmt_mb(clean.max_rss_kb)} / {fmt_mb(clean.tree_peak_kb)}",
                       fmt_s(sphinx_s), f"{_html_size(seed) / 1e6:.1f} MB")]
        raw["scaling"] = {}
        big_root, big_label = None, ""
        for n in ((10, 100) if quick else (10, 100, 1000)):
            root = copy_book(Path(tmp) / f"n{n}", src)
            added_counts = synthesize_registry(root / "data", n, outcomes)
            res, note = _build_retrying(root, "--force", memory=True)
            print(f"  N={n}: {fmt_s(res.seconds)} (exit {res.returncode}) {note}", flush=True)
            entry: dict[str, Any] = {"added": added_counts, "seconds": res.seconds,
                                     "ok": res.ok, "max_rss_kb": res.max_rss_kb,
                                     "tree_peak_kb": res.tree_peak_kb, "note": note}
            if res.ok:
                sph = _sphinx_only(root)
                noop_n = _build(root)
                entry["sphinx"] = max(sph.seconds - noop_n.seconds, 0.0)
                entry["noop"] = noop_n.seconds
                scale_rows.append((f"N = {n:,}", _count_rows(root),
                                   fmt_s(res.seconds) + (f" ({note})" if note else ""),
                                   f"{res.seconds / clean.seconds:.1f}×",
                                   f"{fmt_mb(res.max_rss_kb)} / {fmt_mb(res.tree_peak_kb)}",
                                   fmt_s(entry["sphinx"]),
                                   f"{_html_size(root) / 1e6:.1f} MB"))
                big_root, big_label = root, f"N = {n:,}"
            else:
                entry["failure"] = _failure(res)
                scale_rows.append((f"N = {n:,}", _count_rows(root),
                                   f"FAILED ({_failure(res)})", "", "", "", ""))
            raw["scaling"][n] = entry
        lines.append(markdown_table(
            ["registry", "studies / outcome rows", "clean build", "vs seed",
             "peak RSS (largest process / whole tree)", "Sphinx alone", "HTML"], scale_rows))
        top = raw["scaling"].get(1000)
        if top is not None and top.get("ok"):
            ratio = top["seconds"] / clean.seconds
            lines.append(f"Scaling target at N = 1,000: {ratio:.1f}× the seed build "
                         f"(target ≤ {SCALING_TARGET}×): "
                         f"**{'met' if ratio <= SCALING_TARGET else 'MISSED'}**.")
        if big_root is not None and not quick:
            text, data = _breakdown(big_root, big_label, raw["scaling"][1000].get("sphinx")
                                    if 1000 in raw["scaling"] else None, imports_too=False)
            lines.append(text)
            raw["breakdown_big"] = data
    (out_dir / "build.json").write_text(json.dumps(raw, indent=1, default=str),
                                        encoding="utf-8")
    return "\n\n".join(lines), raw


def _count_rows(root: Path) -> str:
    _, studies = _read_csv(root / "data" / "studies.csv")
    _, rows = _read_csv(root / "data" / "outcomes.csv")
    return f"{len(studies):,} / {len(rows):,}"


def _machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPU(s), load average at the start {load}"
