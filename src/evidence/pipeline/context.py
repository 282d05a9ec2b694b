"""The notebook-facing layer: registry queries with a trail, pooling, result files.

A template makes a handful of one-line calls::

    ctx = open_analysis(analysis_id, data_dir, results_dir)
    table = ctx.outcome_table("objective_response", arm="treated")
    res = pool_table(table, measure="PLO", method="GLMM")
    ctx.save(res.to_json(), table=res.studies)

Every query the context answers is recorded; :meth:`AnalysisContext.save` writes
the queries into ``results/<id>.json`` (``inputs``) together with a digest of the
rows they returned (``data_sha256``).  The runner re-evaluates the same queries
with :func:`read_digest` to decide whether an analysis must run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.registry.store import CACHE_ENV
from evidence.stats.results import jsonable

if TYPE_CHECKING:
    import pandas as pd

    from evidence.stats.results import MetaResult

__all__ = [
    "MEASURES",
    "METHODS",
    "AnalysisContext",
    "ProportionAnalysis",
    "leave_one_out",
    "open_analysis",
    "pool_proportions",
    "pool_table",
    "read_digest",
    "subgroups",
]

MEASURES = ("PLO", "PFT", "PAS", "PR")
METHODS = ("FE", "DL", "REML", "PM", "ML", "HE", "SJ", "GLMM")
_TABLES = ("outcomes", "effects", "transitions", "studies", "outcome_types", "result",
           "files", "environment")


def _frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's column names, dtypes and values, column by column.

    Each cell is written as ``str(value)`` (a missing value as NUL), cells separated by
    the unit separator and columns by the record separator.  ``to_csv`` gave the same
    guarantee at three times the cost, which mattered with many thousands of rows.
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c) for c in frame.columns],
                         [str(t) for t in frame.dtypes]]).encode())
    for col in frame.columns:
        cells = ("\0" if v is None or (isinstance(v, float) and v != v) else str(v)
                 for v in frame[col].tolist())
        h.update(b"\x1e" + "\x1f".join(cells).encode())
    return h.hexdigest()


def _select(registry: Any, query: dict[str, Any]) -> pd.DataFrame:
    """Rows of a registry table matching a recorded query (equality filters)."""
    table = query["table"]
    frame = getattr(registry, table)
    for col, value in query.get("filters", {}).items():
        if value is None:
            continue
        if col not in frame.columns:
            raise KeyError(f"{table}.csv has no column {col!r}")
        frame = frame[frame[col].fillna("").astype(str) == str(value)]
    if table in ("outcomes", "effects", "transitions") and "use" in frame.columns:
        use = query.get("use", "primary")
        frame = frame[frame["use"].fillna("").replace("", "primary") == use]
    return frame


def read_digest(registry: Any, query: dict[str, Any], root: str | Path = ".") -> str:
    """sha256 of exactly the rows (or result file) a recorded query reads.

    For registry tables the rows of the joined studies count too, so that a
    changed label re-runs the analyses showing it.
    """
    table = query.get("table")
    if table not in _TABLES:
        raise ValueError(f"unknown table {table!r} in query; allowed: {_TABLES}")
    if table == "result":
        path = Path(root) / "results" / f"{query['id']}.json"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if table == "files":
        h = hashlib.sha256()
        base = Path(root) / query["path"]
        for path in sorted(base.glob(query["pattern"])):
            if path.is_file():
                h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
        return h.hexdigest()
    if table == "environment":
        from evidence.book.provenance import dependency_versions

        versions = dependency_versions(query["packages"])
        return hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()
    rows = _select(registry, query)
    digest = _frame_digest(rows)
    if table != "studies" and "study_id" in rows.columns:
        studies = registry.studies[registry.studies["study_id"].isin(rows["study_id"])]
        digest = hashlib.sha256((digest + _frame_digest(studies)).encode()).hexdigest()
    return digest


@dataclass
class AnalysisContext:
    """Registry access for one analysis, recording every query it answers."""

    analysis_id: str
    data_dir: Path
    results_dir: Path
    registry: Any
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, query: dict[str, Any]) -> None:
        if query not in self.inputs:
            self.inputs.append(query)

    def query(self, table: str, use: str = "primary", **filters: Any) -> pd.DataFrame:
        """Rows of ``table`` (``outcomes``, ``effects``, ``transitions``, ``studies``,
        ``outcome_types``) whose columns equal the given filters (``None`` = any),
        recorded."""
        query: dict[str, Any] = {"table": table,
                                 "filters": {k: v for k, v in sorted(filters.items())}}
        if table in ("outcomes", "effects", "transitions"):
            query["use"] = use
        self._record(query)
        return _select(self.registry, query).reset_index(drop=True)

    def outcome_table(self, outcome: str, *, arm: str | None = None,
                      arm_role: str | None = None, subgroup: str | None = "",
                      use: str = "primary") -> pd.DataFrame:
        """Counts of one outcome joined with study characteristics, by year then label.

        Parameters
        ----------
        outcome : str
            A name from ``outcome_types.csv``.
        arm, arm_role : str or None
            Select an arm by name, or by role (``experimental``/``control``);
            None matches any.
        subgroup : str or None
            ``""`` for the whole population, a ``key=value`` subgroup, or None for all.

        Raises
        ------
        LookupError
            When ``outcome`` is not in ``outcome_types.csv`` (with the closest name), or
            no registry row matches (the message lists what exists).
        """
        filters: dict[str, Any] = {"outcome": outcome, "arm": arm, "subgroup": subgroup}
        if arm_role is not None:
            filters["arm_role"] = arm_role
        rows = self.query("outcomes", use=use, **filters)
        if rows.empty:
            known = sorted(self.registry.outcome_types["outcome"])
            if outcome not in known:
                import difflib

                close = difflib.get_close_matches(outcome, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise LookupError(
                    f"unknown outcome {outcome!r} (not in {self.data_dir}/outcome_types.csv"
                    f"{hint}); known: {', '.join(known)}")
            avail = self.registry.outcomes
            avail = avail[avail["outcome"] == outcome][["arm", "arm_role", "subgroup"]]
            combos = sorted({tuple(r) for r in avail.fillna("").to_numpy().tolist()})
            raise LookupError(
                f"no registry rows for outcome={outcome!r}, arm={arm!r}, arm_role={arm_role!r}, "
                f"subgroup={subgroup!r} in {self.data_dir}/outcomes.csv; rows of that outcome "
                f"have (arm, arm_role, subgroup): {combos}")
        studies = self.registry.studies.drop(columns=["source", "notes"], errors="ignore")
        table = rows.merge(studies, on="study_id", how="left", validate="many_to_one")
        return table.sort_values(["year", "label", "arm", "subgroup"]).reset_index(drop=True)

    def result(self, analysis_id: str) -> dict[str, Any]:
        """Another analysis's result JSON (run it first: ``after:`` in analyses.yml)."""
        self._record({"table": "result", "id": analysis_id})
        path = self.results_dir / f"{analysis_id}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; list {analysis_id!r} under "
                                    "'after:' of this analysis in analyses.yml")
        return json.loads(path.read_text(encoding="utf-8"))

    def files(self, path: str, pattern: str = "*") -> list[Path]:
        """Files below ``path`` (relative to the book root) matching ``pattern``,
        recorded so that the analysis re-runs when any of them changes or appears."""
        self._record({"table": "files", "path": Path(path).as_posix(), "pattern": pattern})
        return sorted(p for p in Path(path).glob(pattern) if p.is_file())

    def versions(self, packages: list[str] | tuple[str, ...]) -> dict[str, str]:
        """Python and package versions, recorded so that the analysis re-runs when
        the environment changes."""
        from evidence.book.provenance import dependency_versions

        self._record({"table": "environment", "packages": list(packages)})
        return dependency_versions(packages)

    def upstream_results(self, root: str | Path = ".") -> dict[str, dict[str, Any]]:
        """Results of the analyses listed under this analysis's ``after:`` in
        ``analyses.yml``, in that order (each read is recorded)."""
        from evidence.pipeline.config import load_config

        config = load_config(root)
        return {aid: self.result(aid) for aid in config.get(self.analysis_id).after}

    def save(self, payload: dict[str, Any], table: pd.DataFrame | None = None) -> Path:
        """Write ``results/<id>.json`` (and ``<id>.csv`` for a study table).

        Adds ``analysis_id``, ``inputs``, ``data_sha256`` and
        ``evidence_version``; output is byte-identical for identical inputs.
        """
        from evidence import __version__

        digests = [read_digest(self.registry, q, self.results_dir.parent)
                   for q in self.inputs]
        out = {"analysis_id": self.analysis_id, **payload,
               "inputs": self.inputs,
               "data_sha256": hashlib.sha256("".join(digests).encode()).hexdigest(),
               "evidence_version": __version__}
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"{self.analysis_id}.json"
        path.write_text(json.dumps(jsonable(out), indent=1, sort_keys=False, ensure_ascii=False,
                                   allow_nan=False) + "\n", encoding="utf-8")
        if table is not None:
            table.to_csv(self.results_dir / f"{self.analysis_id}.csv", index=False,
                         lineterminator="\n", float_format="%.10g")
        return path


def open_analysis(analysis_id: str, data_dir: str = "data",
                  results_dir: str = "results") -> AnalysisContext:
    """Load (and validate) the registry for one analysis.

    When the runner executes the notebook it sets the environment variable
    ``EVIDENCE_CACHE_DIR`` (:data:`evidence.registry.store.CACHE_ENV`) to the build's cache,
    where it has already validated the registry; the tables are then read from there
    (see :func:`evidence.registry.store.load`).

    Raises
    ------
    evidence.registry.store.RegistryError
        The registry has problems (each as ``FILE:LINE: column: reason``).
    """
    from evidence.registry.store import load

    data = Path(data_dir)
    registry = load(data, cache_dir=os.environ.get(CACHE_ENV) or None)
    return AnalysisContext(analysis_id, data, Path(results_dir), registry)


@dataclass(frozen=True)
class ProportionAnalysis:
    """A pooled single-proportion outcome: the model and the per-study table."""

    result: MetaResult
    studies: pd.DataFrame
    measure: str
    method: str
    knha: bool
    ci_method: str
    pooled: dict[str, Any]
    note: str = ""

    @property
    def k(self) -> int:
        """Number of studies."""
        return len(self.studies)

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md result fields (``model`` on the measure scale, ``pooled``
        back-transformed)."""
        studies = [
            {"study_id": r.study_id, "label": r.label, "events": int(r.events),
             "total": int(r.total), "proportion": r.proportion, "ci_lower": r.ci_lower,
             "ci_upper": r.ci_upper, "weight": r.weight}
            for r in self.studies.itertuples()
        ]
        return {
            "measure": self.measure, "method": self.method, "knha": self.knha,
            "ci_method": self.ci_method, "k": self.k,
            "patients": int(self.studies["total"].sum()),
            "events": int(self.studies["events"].sum()),
            "studies": studies,
            "model": self.result.model_dict() if self.k > 1 else None,
            "pooled": self.pooled,
            "note": self.note,
        }


def pool_proportions(events: Any, totals: Any, study_ids: Any = None, *, measure: str = "PLO",
                     method: str = "REML", knha: bool = False,
                     level: float = 0.95) -> tuple[MetaResult | None, dict[str, Any]]:
    """Pool single proportions; the engine behind ``evidence pool`` and the templates.

    Parameters
    ----------
    events, totals : array-like of int
        Events ``xi`` and sample sizes ``ni``.
    measure : {"PLO", "PFT", "PAS", "PR"}
        Effect-size measure (metafor's codes); ignored by ``GLMM`` (always logit).
    method : {"FE", "DL", "REML", "PM", "ML", "HE", "SJ", "GLMM"}
        Common-effect, random-effects tau2 estimator, or the binomial-normal GLMM.
    knha : bool
        Hartung-Knapp(-Sidik-Jonkman) adjustment (not with ``FE``... allowed as in
        metafor; not with ``GLMM``).

    Returns
    -------
    (MetaResult, dict)
        The model and the ``pooled`` block on the proportion scale.  With k = 1
        nothing is pooled: the ``pooled`` block holds the study's own proportion
        and exact Clopper-Pearson interval (with a ``warning`` saying so), and the
        model is that single study's common-effect fit, for drawing only.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; allowed: {', '.join(MEASURES)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    xi = np.asarray(events, dtype=float)
    ni = np.asarray(totals, dtype=float)
    k = xi.shape[0]
    ids = tuple(str(s) for s in study_ids) if study_ids is not None else tuple(
        f"study {i + 1}" for i in range(k))
    if k == 0:
        raise ValueError("no studies to pool (k = 0)")
    if k == 1:
        from evidence.stats.effects import escalc, proportion_ci
        from evidence.stats.pooling import rma

        lo, hi = proportion_ci(xi, ni, method="clopper-pearson", level=level)
        p = float(xi[0] / ni[0])
        # the single study as a model object, so that plots can draw it (not pooled)
        single = rma(escalc("PLO", xi=xi, ni=ni, study_ids=ids), method="FE", level=level)
        return single, {"estimate": p, "ci_lower": float(lo[0]), "ci_upper": float(hi[0]),
                        "pi_lower": None, "pi_upper": None, "transform": "none",
                        "warning": "k = 1: the study's own proportion with its exact "
                                   "(Clopper-Pearson) interval; nothing was pooled."}
    if method == "GLMM":
        if knha:
            raise ValueError("knha applies to rma methods, not to the GLMM")
        from evidence.stats.glmm import rma_glmm

        result = rma_glmm(xi, ni, study_ids=ids, level=level)
    else:
        from evidence.stats.effects import escalc
        from evidence.stats.pooling import rma

        es = escalc(measure, xi=xi, ni=ni, study_ids=ids)
        result = rma(es, method=method, knha=knha, level=level)
    return result, result.pooled().to_dict()


def pool_table(table: pd.DataFrame, *, measure: str = "PLO", method: str = "REML",
               knha: bool = False, ci_method: str = "clopper-pearson",
               level: float = 0.95) -> ProportionAnalysis:
    """Pool the ``events``/``total`` of a registry table (one row per study).

    Per-study intervals are exact Clopper-Pearson by default (``ci_method="wilson"``
    for Wilson score intervals); weights are fractions of 1.
    """
    from evidence.stats.effects import proportion_ci

    if table["study_id"].duplicated().any():
        dup = sorted(set(table.loc[table["study_id"].duplicated(), "study_id"]))
        raise ValueError(f"more than one row per study for {dup}: select one arm/subgroup")
    result, pooled = pool_proportions(table["events"], table["total"], table["study_id"],
                                      measure=measure, method=method, knha=knha, level=level)
    lo, hi = proportion_ci(table["events"].to_numpy(), table["total"].to_numpy(),
                           method=ci_method, level=level)
    studies = table[["study_id", "label", "year", "events", "total"]].copy()
    studies["proportion"] = studies["events"] / studies["total"]
    studies["ci_lower"] = lo
    studies["ci_upper"] = hi
    weights = np.asarray(result.weights, dtype=float)
    studies["weight"] = weights / 100.0 if np.all(np.isfinite(weights)) else np.nan
    note = pooled.get("warning") or ""
    return ProportionAnalysis(result, studies, measure if method != "GLMM" else "PLO", method,
                              knha, ci_method, pooled, note)


def leave_one_out(pa: ProportionAnalysis) -> Any:
    """Leave-one-out refits of a pooled proportion with its own model.

    The GLMM is refitted with :func:`evidence.stats.glmm.glmm_leave_one_out`; rma
    models with :func:`evidence.stats.sensitivity.leave_one_out`.  Needs k >= 3.
    """
    if pa.k < 3:
        raise ValueError(f"leave-one-out needs at least 3 studies, got k = {pa.k}")
    s = pa.studies
    if pa.method == "GLMM":
        from evidence.stats.glmm import glmm_leave_one_out

        return glmm_leave_one_out(s["events"], s["total"], s["study_id"])
    from evidence.stats.effects import escalc
    from evidence.stats.sensitivity import leave_one_out as loo

    es = escalc(pa.measure, xi=s["events"], ni=s["total"], study_ids=s["study_id"])
    return loo(es, method=pa.method, knha=pa.knha)


def subgroups(pa: ProportionAnalysis, table: pd.DataFrame, by: str, *,
              method: str = "REML") -> Any:
    """Pool within each level of a study column and test the difference (Q-between).

    Uses the logit measure with an rma estimator (``REML`` by default, or the
    analysis's own method when it is not the GLMM).
    """
    from evidence.stats.effects import escalc
    from evidence.stats.regression import subgroup_analysis

    if by not in table.columns:
        raise KeyError(f"no study column {by!r} to form subgroups; columns: "
                       f"{sorted(table.columns)}")
    groups = table[by].fillna("not reported").replace("", "not reported").astype(str)
    es = escalc("PLO", xi=table["events"], ni=table["total"], study_ids=table["study_id"])
    fit_method = pa.method if pa.method != "GLMM" else method
    return subgroup_analysis(es, list(groups), method=fit_method, knha=pa.knha)
