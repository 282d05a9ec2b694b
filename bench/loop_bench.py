"""The edit-to-book loop in four ratios, measured in one run.

1. **Build overhead**: the wall time of a clean ``evidence build --force -j 2`` of a copy
   of the book ÷ (the sum of the notebooks' cell times ÷ 2 + the HTML build's time),
   both read from the build's own ``.evidence-cache/timings.json`` (papermill's per-cell
   durations; the time of ``jupyter-book build``).  What is not in the denominator is
   kernel start and shutdown, scheduling gaps, the registry's validation and the
   command's own start.  Target ≤ 1.3.
2. **One-study edit**: a new single-arm trial with one objective-response row (and the
   screening record, search count and risk-of-bias judgements that make the registry
   valid) added to the built copy, then ``evidence build -j 2``: its wall time as a share
   of the clean build, naming the analyses it re-ran.  Target ≤ 40 %.
3. **GLMM** at k = 1,000 and 4. **REML** at k = 2,000: ``evidence pool`` as a whole
   process (median of 3 after a warm-up) against metafor's fit alone inside R
   (``bench/metafor_time.R``), on the statistics benchmark's seeded data.  Targets ≥ 40×
   and ≥ 100×.

A missed target is reported with its profile: per-notebook overhead and the Sphinx time
for the build; the re-run analyses and the longest chain of them for the edit; the
split of the ``evidence pool`` process (``pool_profile.py``) for the statistics.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import EVIDENCE, REPO, fmt_s, markdown_table, median, run_timed

from evidence.pipeline.build import copy_book_sources

__all__ = ["EDIT_TARGET", "OVERHEAD_TARGET", "add_one_trial", "loop_markdown", "machine",
           "register_studies", "register_study", "run_loop", "run_pool_targets"]

OVERHEAD_TARGET = 1.3
EDIT_TARGET = 0.40
JOBS = 2
_TIMEOUT = 3600.0
#: The trial the added one is cloned from (a single-arm trial with a response row).
TEMPLATE_TRIAL = "hainsworth2016"
NEW_TRIAL = "bench_new_trial"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def add_one_trial(data: Path, study_id: str = NEW_TRIAL, events: int = 3,
                  total: int = 15) -> list[str]:
    """Add a new single-arm trial with one objective-response row to a registry copy.

    The same edit as the test suite's ``tests/real_book.py::add_trial``: a clone of
    :data:`TEMPLATE_TRIAL`'s study row, its experimental objective-response row with
    new counts, its risk-of-bias judgements, and a screening record returned by the
    first identification search (whose count grows by one).  Returns the files edited.
    """
    fields, studies = _rows(data / "studies.csv")
    template = next(s for s in studies if s["study_id"] == TEMPLATE_TRIAL)
    _write(data / "studies.csv", fields, [*studies, {
        **template, "study_id": study_id, "label": "Bench new trial 2026", "year": "2026",
        "doi": "", "cohort": "", "citation": "a trial added by bench/loop_bench.py"}])
    fields, outcomes = _rows(data / "outcomes.csv")
    row = next(r for r in outcomes if r["study_id"] == TEMPLATE_TRIAL
               and r["outcome"] == "objective_response" and r.get("use") == "primary"
               and r.get("arm_role") == "experimental")
    _write(data / "outcomes.csv", fields, [*outcomes, {
        **row, "study_id": study_id, "events": str(events), "total": str(total),
        "printed": f"{events}/{total}" if row.get("printed") else "", "note": ""}])
    register_study(data, study_id, TEMPLATE_TRIAL)
    return ["studies.csv", "outcomes.csv", "risk_of_bias.csv", "searches.csv",
            "screening.csv"]


def register_study(data: Path, study_id: str, template_id: str) -> None:
    """What a new study needs besides its rows for the registry to validate
    (:func:`register_studies` of one study)."""
    register_studies(data, [(study_id, template_id)])


def register_studies(data: Path, studies: list[tuple[str, str]]) -> None:
    """What new studies need besides their rows for the registry to validate: each
    ``(study_id, template_id)`` gets the template study's risk-of-bias judgements and a
    screening record that includes it, returned by the first identification search
    (whose count grows by one per study)."""
    if not studies:
        return
    fields, judgements = _rows(data / "risk_of_bias.csv")
    by_study: dict[str, list[dict[str, str]]] = {}
    for r in judgements:
        by_study.setdefault(r["study_id"], []).append(r)
    _write(data / "risk_of_bias.csv", fields, [*judgements, *(
        {**r, "study_id": sid} for sid, tid in studies for r in by_study.get(tid, []))])
    fields, searches = _rows(data / "searches.csv")
    first = next(s for s in searches if s.get("purpose", "") in ("", "identification"))
    first["records_returned"] = str(int(first["records_returned"]) + len(studies))
    _write(data / "searches.csv", fields, searches)
    fields, records = _rows(data / "screening.csv")
    included = {r["study_id"]: r for r in records if r["study_id"]}
    _write(data / "screening.csv", fields, [*records, *(
        {**included[tid], "record_id": f"bench_{sid}", "search_ids": first["search_id"],
         "identifier": "", "url": f"https://example.org/{sid}", "first_author": "Bench",
         "year": "2026", "title": f"Bench study {sid}", "study_id": sid, "cohort": "",
         "note": ""} for sid, tid in studies)])


def _build(root: Path, *extra: str) -> Any:
    return run_timed([EVIDENCE, "build", "--root", root, "--data", root / "data", "-j",
                      str(JOBS), "-q", *extra], cwd=root, timeout=_TIMEOUT)


def _timings(root: Path) -> dict[str, Any]:
    return json.loads((root / ".evidence-cache" / "timings.json").read_text(encoding="utf-8"))


def _executed(times: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {aid: a for aid, a in times["run"]["analyses"].items() if a["status"] == "executed"}


def _chain(root: Path, ran: dict[str, dict[str, float]]) -> tuple[list[str], float]:
    """The longest chain of re-run analyses through ``after`` (by their wall times)."""
    import yaml

    config = yaml.safe_load((root / "analyses.yml").read_text(encoding="utf-8"))
    after = {a["id"]: [d for d in a.get("after", []) if d in ran]
             for a in config["analyses"] if a["id"] in ran}
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(aid: str) -> tuple[float, list[str]]:
        if aid not in best:
            prev = max((longest(d) for d in after.get(aid, [])), default=(0.0, []))
            best[aid] = (prev[0] + ran[aid]["seconds"], [*prev[1], aid])
        return best[aid]

    total, path = max((longest(a) for a in ran), default=(0.0, []))
    return path, total


def _verdict(met: bool) -> str:
    return "**met**" if met else "**MISSED**"


def run_loop(*, out_dir: Path, src: Path = REPO) -> tuple[dict[str, Any], list[str]]:
    """Measure the build overhead and the one-study edit on a copy of ``src``.

    Returns
    -------
    tuple
        The raw numbers, and Markdown sections (the profile of each ratio; each
        missed target gets its own).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {}
    sections: list[str] = []
    with tempfile.TemporaryDirectory(prefix="evidence-loop-") as tmp:
        root = copy_book_sources(Path(tmp) / "book", src)
        clean = _build(root, "--force")
        print(f"  clean build: {fmt_s(clean.seconds)} (exit {clean.returncode})", flush=True)
        if not clean.ok:
            raw["failed"] = (clean.stderr or clean.stdout).strip()[-2000:]
            return raw, [f"**The clean build failed** (exit {clean.returncode}); nothing was "
                         "measured."]
        times = _timings(root)
        ran = _executed(times)
        cells = sum(a["cell_seconds"] for a in ran.values())
        sphinx = float(times["sphinx"]["seconds"])
        ideal = cells / JOBS + sphinx
        overhead = clean.seconds / ideal
        raw["clean"] = {"seconds": clean.seconds, "cells": cells, "sphinx": sphinx,
                        "run_seconds": times["run"]["seconds"], "analyses": ran,
                        "overhead": overhead}
        rows = sorted(((aid, a["seconds"], a["cell_seconds"]) for aid, a in ran.items()),
                      key=lambda r: -(r[1] - r[2]))
        per = sum(r[1] - r[2] for r in rows) / max(len(rows), 1)
        gap = times["run"]["seconds"] - sum(a["seconds"] for a in ran.values()) / JOBS
        profile = (f"Clean build, where the time goes: {len(ran)} notebooks, cells "
                   f"{fmt_s(cells)} in all ({fmt_s(cells / JOBS)} at {JOBS} at a time), "
                   f"Sphinx {fmt_s(sphinx)}; outside the cells each notebook took "
                   f"{fmt_s(per)} on average (kernel hand-over, papermill, writing the "
                   f"notebook), and the schedule left {fmt_s(max(gap, 0.0))} unfilled "
                   f"(run {fmt_s(times['run']['seconds'])} against the notebooks' "
                   f"{fmt_s(sum(a['seconds'] for a in ran.values()) / JOBS)} at {JOBS} at "
                   f"a time); the rest of the {fmt_s(clean.seconds)} is the command itself "
                   "(start, registry validation, stamps, swapping the HTML in).")
        if overhead > OVERHEAD_TARGET:
            profile += "\n\nLargest overheads per notebook (wall − cells):\n\n" + \
                markdown_table(["analysis", "wall", "cells", "overhead"],
                               [(f"`{aid}`", fmt_s(w), fmt_s(c), fmt_s(w - c))
                                for aid, w, c in rows[:8]])
        sections.append(profile)

        edited = Path(tmp) / "edited"
        shutil.copytree(root, edited, symlinks=True)
        add_one_trial(edited / "data")
        check = run_timed([EVIDENCE, "validate", "--data", edited / "data"])
        if not check.ok:
            raw["edit_failed"] = check.stdout[-2000:]
            sections.append(f"**The added trial does not validate**: {check.stdout[-500:]}")
            return raw, sections
        incr = _build(edited)
        print(f"  one-study edit: {fmt_s(incr.seconds)} (exit {incr.returncode})", flush=True)
        if not incr.ok:
            raw["edit_failed"] = (incr.stderr or incr.stdout).strip()[-2000:]
            sections.append(f"**The build after the edit failed** (exit {incr.returncode}).")
            return raw, sections
        itimes = _timings(edited)
        reran = _executed(itimes)
        share = incr.seconds / clean.seconds
        path, chain = _chain(edited, reran)
        raw["edit"] = {"seconds": incr.seconds, "share": share, "reran": reran,
                       "sphinx": itimes["sphinx"]["seconds"], "chain": path,
                       "chain_seconds": chain, "run_seconds": itimes["run"]["seconds"]}
        text = (f"One-study edit, where the time goes: re-ran {len(reran)} of {len(ran)} "
                f"analyses ({', '.join(f'`{a}`' for a in reran)}); the longest chain of "
                f"them, {' → '.join(f'`{a}`' for a in path)}, took {fmt_s(chain)}; "
                f"Sphinx {fmt_s(itimes['sphinx']['seconds'])} (the HTML is always built "
                "whole, into a fresh directory).")
        if share > EDIT_TARGET:
            text += "\n\n" + markdown_table(
                ["re-ran", "wall", "cells"],
                [(f"`{aid}`", fmt_s(a["seconds"]), fmt_s(a["cell_seconds"]))
                 for aid, a in sorted(reran.items(), key=lambda kv: -kv[1]["seconds"])])
        sections.append(text)
    (out_dir / "loop.json").write_text(json.dumps(raw, indent=1, default=str),
                                       encoding="utf-8")
    return raw, sections


def run_pool_targets(*, out_dir: Path, metafor_limit: float = 300.0
                     ) -> tuple[dict[str, Any], list[str]]:
    """``evidence pool`` against metafor at the two target sizes (GLMM k = 1,000, REML
    k = 2,000), with the profile of the process when a target is missed."""
    from stats_bench import (
        GLMM_TARGET,
        REML_TARGET,
        _breakdown,
        _rel_diff,
        _time_evidence,
        _time_metafor,
        _write_csv,
        simulate,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {}
    sections = []
    for method, k, target in (GLMM_TARGET, REML_TARGET):
        csv_path = out_dir / f"sim_k{k}.csv"
        if not csv_path.is_file():
            _write_csv(csv_path, *simulate(k, seed=20240 + k))
        runs, result = _time_evidence(csv_path, method, 3)
        ours = median(runs)
        ref = _time_metafor(csv_path, method, metafor_limit) if shutil.which("Rscript") else {
            "note": "not run: Rscript missing"}
        entry: dict[str, Any] = {"k": k, "target": target, "evidence": ours, "runs": runs}
        if "elapsed" in ref:
            entry["metafor"] = float(ref["elapsed"])
            entry["speedup"] = entry["metafor"] / ours
            entry["max_rel_diff"] = _rel_diff(result["model"], ref)[0]
            entry["versions"] = f"R {ref['r_version']}, metafor {ref['metafor_version']}"
        else:
            entry["note"] = ref["note"]
        print(f"  {method} k={k}: evidence {fmt_s(ours)}, metafor "
              f"{fmt_s(entry.get('metafor')) if 'metafor' in entry else entry['note']}",
              flush=True)
        missed = entry.get("speedup") is not None and entry["speedup"] < target
        if missed:
            sections.append(f"`evidence pool --method {method}` at k = {k:,} missed its "
                            f"target; where its {fmt_s(ours)} go:\n\n"
                            + _breakdown(csv_path, method, ours, profile=True))
        raw[method] = entry
    return raw, sections


def loop_markdown(loop: dict[str, Any], pool: dict[str, Any], sections: list[str],
                  machine: str) -> str:
    """The README block: the four ratios of one run, each with its target."""
    rows = []
    clean, edit = loop.get("clean"), loop.get("edit")
    if clean:
        rows.append(("build overhead: clean build ÷ (cells ÷ 2 + Sphinx)",
                     f"{fmt_s(clean['seconds'])} ÷ ({fmt_s(clean['cells'])} ÷ 2 + "
                     f"{fmt_s(clean['sphinx'])}) = **{clean['overhead']:.2f}**",
                     f"≤ {OVERHEAD_TARGET}", _verdict(clean["overhead"] <= OVERHEAD_TARGET)))
    if edit and clean:
        rows.append(("one-study edit (a new trial, one response row) ÷ clean build",
                     f"{fmt_s(edit['seconds'])} ÷ {fmt_s(clean['seconds'])} = "
                     f"**{100 * edit['share']:.0f}%** (re-ran {len(edit['reran'])})",
                     f"≤ {100 * EDIT_TARGET:.0f}%", _verdict(edit["share"] <= EDIT_TARGET)))
    for method, label in (("GLMM", "GLMM"), ("REML", "REML")):
        entry = pool.get(method)
        if entry is None:
            continue
        what = f"`evidence pool --method {label}` at k = {entry['k']:,} vs metafor's fit"
        if "speedup" in entry:
            rows.append((what, f"{fmt_s(entry['metafor'])} ÷ {fmt_s(entry['evidence'])} = "
                               f"**{entry['speedup']:.0f}×** (max rel. diff "
                               f"{entry['max_rel_diff']:.1e})",
                         f"≥ {entry['target']:.0f}×",
                         _verdict(entry["speedup"] >= entry["target"])))
        else:
            rows.append((what, f"evidence {fmt_s(entry['evidence'])}; metafor "
                               f"{entry['note']}", f"≥ {entry['target']:.0f}×", "not measured"))
    versions = next((e["versions"] for e in pool.values() if "versions" in e), "")
    head = ("### The edit-to-book loop: four ratios from one run\n\n"
            f"`-j {JOBS}`; {machine}" + (f"; {versions}" if versions else "") + ".")
    parts = [head, markdown_table(["ratio", "measured", "target", ""], rows)]
    if edit:
        parts.append("Analyses the one-study edit re-ran: "
                     + ", ".join(f"`{a}`" for a in edit["reran"]) + ".")
    return "\n\n".join([*parts, *sections])


def machine() -> str:
    """CPUs and load average, for the block's header."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPU(s), load average at the end {load}"
