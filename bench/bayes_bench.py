"""Bayesian benchmark: ``bayes_normal`` and ``bayes_binomial`` at k = 5, 50, 500, and the
GLMM ``rma_glmm(..., test="t")`` at k = 1,000 for scale.

Every fit is timed inside this process (``time.perf_counter`` around the call alone, the
median of several calls after a warm-up of both models), so interpreter start and imports
are not counted. The data are seeded (:func:`bayes_data`): for the Bayesian fits
``vi ~ U(0.01, 0.2)``, ``yi ~ N(0.2, 0.3²) + N(0, vi)``, ``ni ~ U{10..199}``,
``xi ~ Bin(ni, expit(N(-1.5, 0.4²)))``; for the GLMM the k = 1,000 proportions of the
statistics benchmark (:func:`stats_bench.simulate`, seed 21240). Default priors
throughout (half-normal(0.5) for tau; flat mu for the normal model, N(0, 10²) for the
binomial model).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import fmt_s, markdown_table, median
from stats_bench import simulate

__all__ = ["BAYES_KS", "GLMM_K", "BayesRow", "bayes_data", "run_bayes"]

#: Study counts of the Bayesian fits, and of the GLMM.
BAYES_KS = (5, 50, 500)
GLMM_K = 1000


@dataclass
class BayesRow:
    """One timed fit."""

    fit: str
    k: int
    seconds: float
    runs: list[float]
    detail: str


def bayes_data(seed: int = 2024) -> dict[int, dict[str, Any]]:
    """Seeded data of both models for each k of :data:`BAYES_KS`.

    The draws are those of the module's own timing script before it moved into the
    library (one generator, k = 5, 50, 500 in turn), so the times compare with the ones
    it reported.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict
        k -> numpy arrays ``yi``, ``vi`` (normal model) and ``xi``, ``ni`` (binomial).
    """
    import numpy as np
    from scipy import special

    rng = np.random.default_rng(seed)
    out = {}
    for k in BAYES_KS:
        vi = rng.uniform(0.01, 0.2, k)
        yi = rng.normal(0.2, 0.3, k) + rng.normal(0.0, np.sqrt(vi))
        ni = rng.integers(10, 200, k)
        xi = rng.binomial(ni, special.expit(rng.normal(-1.5, 0.4, k)))
        out[k] = {"yi": yi, "vi": vi, "xi": xi, "ni": ni}
    return out


def _time(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    runs, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        runs.append(time.perf_counter() - start)
    return runs, result


def _bayes_detail(res: Any) -> str:
    d = res.diagnostics
    nodes = f"{d.n_tau_nodes} tau nodes"
    if d.n_mu_nodes:
        nodes += f" × {d.n_mu_nodes} mu nodes, {d.agq_nodes} AGQ nodes"
    return (f"{nodes}; mu median {res.mu.median:.4f} "
            f"[{res.mu.shortest_lower:.4f}, {res.mu.shortest_upper:.4f}], "
            f"tau median {res.tau.median:.4f}")


def run_bayes(*, quick: bool, out_dir: Path) -> tuple[str, dict[str, Any]]:
    """Run the Bayesian benchmark.

    Parameters
    ----------
    quick : bool
        One timed call per fit (instead of three) and no k = 500 binomial fit.
    out_dir : Path
        Where the raw results (``bayes.json``) are written.

    Returns
    -------
    tuple
        The Markdown results section and the raw numbers.
    """
    from evidence.stats.bayes import bayes_binomial, bayes_normal
    from evidence.stats.glmm import rma_glmm

    out_dir.mkdir(parents=True, exist_ok=True)
    repeats = 1 if quick else 3
    sets = bayes_data()
    bayes_normal(sets[5]["yi"], sets[5]["vi"])  # warm-up
    bayes_binomial(sets[5]["xi"], sets[5]["ni"])
    rows: list[BayesRow] = []
    for k in BAYES_KS:
        data = sets[k]
        runs, res = _time(lambda d=data: bayes_normal(d["yi"], d["vi"]), repeats)
        rows.append(BayesRow("bayes_normal", k, median(runs), runs, _bayes_detail(res)))
        print(f"  bayes_normal   k={k:<5} {fmt_s(median(runs))}", flush=True)
    for k in BAYES_KS:
        if quick and k > 50:
            continue
        data = sets[k]
        runs, res = _time(lambda d=data: bayes_binomial(d["xi"], d["ni"]), repeats)
        rows.append(BayesRow("bayes_binomial", k, median(runs), runs, _bayes_detail(res)))
        print(f"  bayes_binomial k={k:<5} {fmt_s(median(runs))}", flush=True)
    xi, ni = simulate(GLMM_K, seed=20240 + GLMM_K)
    rma_glmm(xi, ni, test="t")  # warm-up
    runs, fit = _time(lambda: rma_glmm(xi, ni, test="t"), max(repeats, 3))
    rows.append(BayesRow('rma_glmm(test="t")', GLMM_K, median(runs), runs,
                         f"ML; estimate {fit.estimate:.4f} [{fit.ci_lower:.4f}, "
                         f"{fit.ci_upper:.4f}] (t, {fit.df:g} df), tau2 {fit.tau2:.4f}"))
    print(f"  rma_glmm       k={GLMM_K:<5} {fmt_s(median(runs))}", flush=True)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    head = (f"Runs: median of {repeats} call(s) per fit after a warm-up, inside one process "
            f"(imports not counted); {os.cpu_count()} CPU(s), Python "
            f"{platform.python_version()}, load average at the end {load}.")
    table = markdown_table(
        ["fit", "k", "time (median)", "runs", "grid and result (default priors)"],
        [(r.fit, f"{r.k:,}", fmt_s(r.seconds), ", ".join(fmt_s(t) for t in r.runs), r.detail)
         for r in rows])
    md = f"### Bayesian models and the GLMM\n\n{head}\n\n{table}"
    raw = {"rows": [asdict(r) for r in rows], "repeats": repeats, "load": load}
    (out_dir / "bayes.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return md, raw
