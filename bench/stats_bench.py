"""Statistics benchmark: ``evidence pool`` (whole process) against metafor's fit alone.

Both sides pool the same simulated single proportions (seeded numpy:
``n ~ U{20..500}``, logit of the true proportion ~ N(-1.5, 0.8²), events ~
Binomial).  ``evidence pool --csv F --method M`` is timed as a whole process
(interpreter start, imports, CSV, fit, JSON), the median of several runs after a
warm-up; metafor is timed inside ``Rscript`` with ``system.time`` around
``rma(yi, vi, method="REML")`` (``escalc`` and a warm-up fit done before) or
``rma.glmm(measure="PLO", ...)``.  The comparison is therefore deliberately
unfavourable to ``evidence``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    EVIDENCE,
    PYTHON,
    fmt_s,
    importtime_totals,
    markdown_table,
    median,
    run_timed,
)

__all__ = ["GLMM_TARGET", "REML_TARGET", "StatsRow", "run_stats", "simulate"]

#: (method, k, minimum speed-up of evidence over metafor)
REML_TARGET = ("REML", 2000, 100.0)
GLMM_TARGET = ("GLMM", 1000, 40.0)
_KS = {"REML": (10, 100, 1000, 2000, 10000), "GLMM": (10, 100, 1000)}
_KS_QUICK = {"REML": (10, 100, 1000), "GLMM": (10, 100)}


@dataclass
class StatsRow:
    """One (method, k) comparison."""

    method: str
    k: int
    evidence_s: float
    evidence_runs: list[float]
    metafor_s: float | None = None
    metafor_note: str = ""
    max_rel_diff: float | None = None
    compared: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """metafor's time over evidence's time."""
        if self.metafor_s is None:
            return None
        return self.metafor_s / self.evidence_s


def simulate(k: int, seed: int) -> tuple[list[int], list[int]]:
    """Seeded single proportions: ``(xi, ni)`` with logit-normal true proportions.

    Parameters
    ----------
    k : int
        Number of studies.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    tuple of list of int
        Events ``xi`` and totals ``ni`` (``20 <= ni <= 500``).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ni = rng.integers(20, 501, size=k)
    pi = 1.0 / (1.0 + np.exp(-rng.normal(-1.5, 0.8, size=k)))
    xi = rng.binomial(ni, pi)
    return [int(x) for x in xi], [int(n) for n in ni]


def _write_csv(path: Path, xi: list[int], ni: list[int]) -> None:
    rows = [f"s{i + 1:05d},{x},{n}" for i, (x, n) in enumerate(zip(xi, ni, strict=True))]
    path.write_text("study,events,total\n" + "\n".join(rows) + "\n", encoding="utf-8")


def _time_evidence(csv_path: Path, method: str, repeats: int) -> tuple[list[float], dict]:
    cmd = [EVIDENCE, "pool", "--csv", csv_path, "--method", method]
    warm = run_timed(cmd)
    if not warm.ok:
        raise RuntimeError(f"evidence pool failed: {warm.stderr.strip()}")
    runs = [run_timed(cmd).seconds for _ in range(repeats)]
    return runs, json.loads(warm.stdout)


def _time_metafor(csv_path: Path, method: str, timeout: float) -> dict[str, Any]:
    script = BENCH / "metafor_time.R"
    res = run_timed(["Rscript", script, csv_path, method], timeout=timeout)
    if res.timed_out:
        return {"note": f"not run: > {timeout:.0f} s (timed out)"}
    if not res.ok:
        return {"note": "failed: " + res.stderr.strip().splitlines()[-1][:80]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall"] = res.seconds
    return out


def _rel_diff(model: dict[str, Any], ref: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    diffs = {}
    for name in ("estimate", "se", "tau2"):
        a, b = float(model[name]), float(ref[name])
        diffs[name] = abs(a - b) / abs(b) if b != 0 else abs(a - b)
    return max(diffs.values()), diffs


def _extrapolate(rows: list[StatsRow], k: int) -> float | None:
    """metafor's time at k from a power law through the two largest measured k."""
    done = [(r.k, r.metafor_s) for r in rows if r.metafor_s]
    if len(done) < 2:
        return None
    (k1, t1), (k2, t2) = done[-2], done[-1]
    b = math.log(t2 / t1) / math.log(k2 / k1)
    return t2 * (k / k2) ** b


def _startup_seconds() -> float:
    return median([run_timed([PYTHON, "-c", "pass"]).seconds for _ in range(5)])


def _import_summary(csv_path: Path, method: str, top: int = 6) -> list[tuple[str, float]]:
    """Top-level modules by cumulative import time during one ``evidence pool``."""
    code = ("import sys; from evidence.pipeline.cli import main; "
            f"sys.exit(main(['pool', '--csv', {str(csv_path)!r}, '--method', {method!r}]))")
    res = run_timed([PYTHON, "-X", "importtime", "-c", code])
    totals = importtime_totals(res.stderr)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def _breakdown(csv_path: Path, method: str, total: float, profile: bool) -> str:
    res = run_timed([PYTHON, BENCH / "pool_profile.py", csv_path, method, "15"])
    if not res.ok:
        return f"(profiling failed: {res.stderr.strip()[-200:]})"
    prof = json.loads(res.stdout)
    start = _startup_seconds()
    lazy = max(prof["first_call"] - prof["warm_call"], 0.0)
    other = max(total - start - prof["imports"] - prof["first_call"], 0.0)
    rows = [("interpreter start (`python -c pass`)", fmt_s(start)),
            ("`import evidence.pipeline.cli`", fmt_s(prof["imports"])),
            ("imports made by the first call (numpy, scipy, ...)", fmt_s(lazy)),
            ("the pooling itself (CSV, fit, JSON; a warm second call)",
             fmt_s(prof["warm_call"])),
            ("rest (process exit, console-script wrapper)", fmt_s(other)),
            ("**whole process (median)**", fmt_s(total))]
    text = markdown_table(["part", "time"], rows)
    imports = _import_summary(csv_path, method)
    if imports:
        text += "\n\nLargest top-level imports (`python -X importtime`): " + ", ".join(
            f"{name} {fmt_s(sec)}" for name, sec in imports) + "."
    if profile:
        text += "\n\ncProfile of a warm call (top by cumulative time):\n\n```\n"
        text += "\n".join(prof["profile"]) + "\n```"
    return text


def run_stats(*, quick: bool, out_dir: Path, metafor_limit: float = 300.0
              ) -> tuple[str, dict[str, Any]]:
    """Run the statistics benchmark.

    Parameters
    ----------
    quick : bool
        Fewer sizes (REML k <= 1,000, GLMM k <= 100) and one timed run each.
    out_dir : Path
        Where the simulated CSV files and the raw results are written.
    metafor_limit : float
        metafor is not run when its extrapolated time exceeds this many seconds,
        and is killed after it.

    Returns
    -------
    tuple
        The Markdown results section and the raw numbers.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    have_r = shutil.which("Rscript") is not None
    ks = _KS_QUICK if quick else _KS
    repeats = 1 if quick else 3
    rows: list[StatsRow] = []
    r_versions = ""
    for method in ("REML", "GLMM"):
        method_rows: list[StatsRow] = []
        for k in ks[method]:
            csv_path = out_dir / f"sim_k{k}.csv"
            if not csv_path.is_file():
                _write_csv(csv_path, *simulate(k, seed=20240 + k))
            runs, result = _time_evidence(csv_path, method, repeats)
            row = StatsRow(method, k, median(runs), runs)
            predicted = _extrapolate(method_rows, k)
            if not have_r:
                row.metafor_note = "not run: Rscript missing"
            elif predicted is not None and predicted > metafor_limit:
                row.metafor_note = (f"not run: > {metafor_limit:.0f} s "
                                    f"(extrapolated ≈ {predicted:.0f} s)")
            else:
                ref = _time_metafor(csv_path, method, metafor_limit)
                if "elapsed" in ref:
                    row.metafor_s = float(ref["elapsed"])
                    row.max_rel_diff, row.compared = _rel_diff(result["model"], ref)
                    r_versions = f"R {ref['r_version']}, metafor {ref['metafor_version']}"
                else:
                    row.metafor_note = ref["note"]
            print(f"  {method:4s} k={k:>6}: evidence {fmt_s(row.evidence_s):>8}, metafor "
                  f"{fmt_s(row.metafor_s) if row.metafor_s else row.metafor_note}", flush=True)
            method_rows.append(row)
        rows.extend(method_rows)

    table = markdown_table(
        ["method", "k", "evidence pool (whole process)", "metafor fit alone", "speed-up",
         "max rel. diff (estimate, se, tau2)"],
        [(r.method, f"{r.k:,}", fmt_s(r.evidence_s),
          fmt_s(r.metafor_s) if r.metafor_s is not None else r.metafor_note,
          _fmt_x(r.speedup),
          f"{r.max_rel_diff:.1e}" if r.max_rel_diff is not None else "–") for r in rows])
    verdicts, sections = [], []
    for method, k, target in (REML_TARGET, GLMM_TARGET):
        row = next((r for r in rows if r.method == method and r.k == k), None)
        if row is None:
            verdicts.append(f"- {method} at k = {k:,}: not measured (quick run).")
            continue
        if row.speedup is None:
            verdicts.append(f"- {method} at k = {k:,}: no metafor time ({row.metafor_note}).")
            met = True
        else:
            met = row.speedup >= target
            verdicts.append(f"- {method} at k = {k:,}: {row.speedup:.0f}× faster "
                            f"(target ≥ {target:.0f}×): **{'met' if met else 'MISSED'}**.")
        sections.append(f"Where the {fmt_s(row.evidence_s)} of `evidence pool --method "
                        f"{method}` at k = {k:,} go:\n\n"
                        + _breakdown(out_dir / f"sim_k{k}.csv", method, row.evidence_s,
                                     profile=not met))
    md = "\n\n".join([
        "### Statistics: `evidence pool` vs metafor",
        f"Runs: {'quick, 1' if quick else '3'} timed run(s) of `evidence pool` per size "
        f"(median, after a warm-up); {r_versions or 'metafor not run'}; "
        f"{_machine()}.",
        table, "Targets:\n\n" + "\n".join(verdicts), *sections])
    raw = {"rows": [r.__dict__ | {"speedup": r.speedup} for r in rows], "quick": quick}
    (out_dir / "stats.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return md, raw


def _fmt_x(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def _machine() -> str:
    import os
    import platform

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, "
            f"load average at the end {load}")
