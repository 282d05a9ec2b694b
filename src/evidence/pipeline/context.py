"""The notebook context: registry queries with a trail, other results, and the result file.

A template makes a handful of one-line calls::

    ctx = open_analysis(analysis_id, data_dir, results_dir)
    table = ctx.outcome_table("objective_response", arm_role="experimental")
    res = pooled.pool_table(table, method="GLMM")
    ctx.save(res.to_json(), table=res.studies)

Every query the context answers is recorded; :meth:`AnalysisContext.save` writes the
queries into ``results/<id>.json`` (``inputs``) together with a digest of the rows they
returned (``data_sha256``).  The runner re-evaluates the same queries with
:func:`evidence.pipeline.trail.read_digest` to decide whether an analysis must run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.pipeline.layout import CACHE_ENV
from evidence.pipeline.trail import dependency_versions, read_digest, result_content
from evidence.registry.rules import USES
from evidence.registry.store import USE_TABLES, outcome_query, query_of
from evidence.stats.results import jsonable

if TYPE_CHECKING:
    import pandas as pd

    from evidence.book.provenance import RegistryTables
    from evidence.registry import Registry

__all__ = ["STUDY_TABLES", "AnalysisContext", "open_analysis"]

#: Registry tables whose rows belong to one study (a ``study_id`` column): what
#: :meth:`AnalysisContext.study_rows` reads.
STUDY_TABLES: tuple[str, ...] = ("studies", "outcomes", "effects", "transitions", "harms",
                                 "risk_of_bias", "screening")


@dataclass
class AnalysisContext:
    """Registry access for one analysis, recording every query it answers.

    Attributes
    ----------
    analysis_id : str
        The analysis (its result is ``results/<id>.json``).
    data_dir, results_dir : pathlib.Path
        The registry directory and the results directory.
    registry : Registry
        The validated registry.
    inputs : list of dict
        Every query answered so far, in order, each once.
    """

    analysis_id: str
    data_dir: Path
    results_dir: Path
    registry: Registry
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, query: dict[str, Any]) -> None:
        if query not in self.inputs:
            self.inputs.append(query)

    def query(self, table: str, use: str = "primary", **filters: Any) -> pd.DataFrame:
        """Rows of ``table`` (``outcomes``, ``effects``, ``transitions``, ``studies``,
        ``outcome_types``) whose columns equal the given filters (``None`` = any),
        recorded (:meth:`evidence.registry.store.Registry.rows`)."""
        query = query_of(table, use, **filters)
        self._record(query)
        return self.registry.rows(query).reset_index(drop=True)

    def query_both(self, table: str, **filters: Any) -> pd.DataFrame:
        """:meth:`query` of both readings (``use`` primary, then alternative), recorded."""
        import pandas as pd

        return pd.concat([self.query(table, use=u, **filters) for u in USES],
                         ignore_index=True)

    def outcome_table(self, outcome: str, *, arm: str | None = None,
                      arm_role: str | None = None, subgroup: str | None = "",
                      use: str = "primary") -> pd.DataFrame:
        """Counts of one outcome joined with study characteristics, by year then label
        (:meth:`evidence.registry.store.Registry.outcome_table`), recorded.

        Raises
        ------
        LookupError
            When ``outcome`` is not in ``outcome_types.csv`` (with the closest name), or
            no registry row matches (the message lists what exists).
        """
        self._record(outcome_query(outcome, arm=arm, arm_role=arm_role, subgroup=subgroup,
                                   use=use))
        return self.registry.outcome_table(outcome, arm=arm, arm_role=arm_role,
                                           subgroup=subgroup, use=use)

    def studies_for(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The ``studies.csv`` rows of the studies named in ``rows`` (its ``study_id``
        column), recorded as exactly that selection: a study added or edited elsewhere in
        the registry does not re-run the analysis, a change to one of these does."""
        ids = sorted({str(s) for s in rows["study_id"]}) if "study_id" in rows else []
        return self.query("studies", study_id=ids)

    def study_rows(self) -> dict[str, pd.DataFrame]:
        """Every row of every table of :data:`STUDY_TABLES` (both readings where a table
        has them), each read recorded: what the comparison of the registry with a
        release reads (:func:`evidence.book.versions.study_digests`)."""
        return {t: self.query_both(t) if t in USE_TABLES else self.query(t)
                for t in STUDY_TABLES}

    def registry_digest(self) -> str:
        """The digest of every registry file (:attr:`Registry.sha256`), recorded as a read
        of them all: the analysis re-runs when any registry file changes."""
        self._record({"table": "files", "path": self.data_dir.as_posix(), "pattern": "*.csv"})
        return self.registry.sha256

    def registry_tables(self) -> RegistryTables:
        """Every registry table, both readings of self-contradictions, each read recorded.

        ``outcome_types`` is read like the others, so a change to ``outcome_types.csv``
        re-runs the page too.
        """
        from evidence.book.provenance import RegistryTables

        both = self.query_both
        return RegistryTables(studies=self.query("studies"), outcomes=both("outcomes"),
                              effects=both("effects"), transitions=both("transitions"),
                              outcome_types=self.query("outcome_types"),
                              sha256=self.registry.sha256)

    def result(self, analysis_id: str) -> dict[str, Any]:
        """Another analysis's result JSON (run it first: ``after:`` in analyses.yml),
        without its trail (:data:`evidence.pipeline.trail.TRAIL_FIELDS`): the read is
        digested as that content, so this analysis re-runs only when it changes."""
        self._record({"table": "result", "id": analysis_id})
        path = self.results_dir / f"{analysis_id}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; list {analysis_id!r} under "
                                    "'after:' of this analysis in analyses.yml")
        return result_content(json.loads(path.read_text(encoding="utf-8")))

    def files(self, path: str, pattern: str = "*") -> list[Path]:
        """Files below ``path`` (relative to the book root) matching ``pattern``,
        recorded so that the analysis re-runs when any of them changes or appears."""
        self._record({"table": "files", "path": Path(path).as_posix(), "pattern": pattern})
        return sorted(p for p in Path(path).glob(pattern) if p.is_file())

    def versions(self, packages: list[str] | tuple[str, ...]) -> dict[str, str]:
        """Python and package versions, recorded so that the analysis re-runs when
        the environment changes."""
        self._record({"table": "environment", "packages": list(packages)})
        return dependency_versions(packages)

    def upstream_results(self, root: str | Path = ".") -> dict[str, dict[str, Any]]:
        """Results of the analyses listed under this analysis's ``after:`` in
        ``analyses.yml``, in that order (each read is recorded)."""
        from evidence.pipeline.config import load_config

        config = load_config(root)
        return {aid: self.result(aid) for aid in config.get(self.analysis_id).after}

    def save(self, payload: dict[str, Any], table: pd.DataFrame | None = None, *,
             r_script: bool = False) -> Path:
        """Write ``results/<id>.json`` (and ``<id>.csv`` for a study table).

        Adds ``analysis_id``, ``inputs``, ``data_sha256`` and
        ``evidence_version``; output is byte-identical for identical inputs.

        With ``r_script=True`` it also writes ``results/<id>.R``, the R script that
        reproduces the result with metafor from ``<id>.csv``
        (:func:`evidence.book.reproduce.r_script`; ``evidence reproduce`` runs it).

        Raises
        ------
        ValueError
            ``r_script=True`` without a study table, or for a result that is not a
            pooled proportion or pooled hazard ratios.
        """
        if r_script and table is None:
            raise ValueError("an R script reads the study table: save(..., table=...)")
        from evidence import __version__

        digests = [read_digest(self.registry, q, self.results_dir.parent)
                   for q in self.inputs]
        out = {"analysis_id": self.analysis_id, **payload,
               "inputs": self.inputs,
               "data_sha256": hashlib.sha256("".join(digests).encode()).hexdigest(),
               "evidence_version": __version__}
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"{self.analysis_id}.json"
        text = json.dumps(jsonable(out), indent=1, sort_keys=False, ensure_ascii=False,
                          allow_nan=False) + "\n"
        script = None
        if r_script:
            from evidence.book.reproduce import r_script as write_script

            # from the result exactly as written, so that the script and the file agree
            script = write_script(json.loads(text), f"{self.analysis_id}.csv",
                                  self.analysis_id)
        path.write_text(text, encoding="utf-8")
        if table is not None:
            table.to_csv(self.results_dir / f"{self.analysis_id}.csv", index=False,
                         lineterminator="\n", float_format="%.10g")
        if script is not None:
            (self.results_dir / f"{self.analysis_id}.R").write_text(script, encoding="utf-8",
                                                                    newline="\n")
        return path


def open_analysis(analysis_id: str, data_dir: str = "data",
                  results_dir: str = "results") -> AnalysisContext:
    """Load (and validate) the registry for one analysis.

    When the runner executes the notebook it sets the environment variable
    ``EVIDENCE_CACHE_DIR`` (:data:`evidence.pipeline.layout.CACHE_ENV`) to the build's
    cache, where it has already validated the registry; the tables are then read from
    there (see :func:`evidence.registry.store.load`).

    Raises
    ------
    evidence.registry.RegistryError
        The registry has problems (each as ``FILE:LINE: column: reason``).
    """
    from evidence.registry.store import load

    data = Path(data_dir)
    registry = load(data, cache_dir=os.environ.get(CACHE_ENV) or None)
    return AnalysisContext(analysis_id, data, Path(results_dir), registry)
