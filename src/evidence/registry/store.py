"""The validated registry: pandas tables, their digests and the one way to query them.

:func:`load` validates the registry (:mod:`evidence.registry.rules`), raises
:class:`~evidence.registry.csvfile.RegistryError` on any problem, and returns a
:class:`Registry` of pandas DataFrames, optionally kept between processes in a cache.
:meth:`Registry.query` selects rows by equality filters and :meth:`Registry.digest`
hashes exactly the rows a query reads, so that an analysis re-runs when, and only when,
what it read has changed.  Nothing here ever writes a registry file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.registry.csvfile import RegistryError, Table
from evidence.registry.rules import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, USES, check_registry

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["TABLES", "USE_TABLES", "Registry", "frame_digest", "load", "outcome_query", "query_of",
           "registry_sha256"]


def registry_sha256(data_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of every ``*.csv`` file directly in ``data_dir``.

    Files are hashed in sorted name order; for each, its name, its size and its
    bytes are fed to the hash, so renaming or moving bytes between files changes it.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("*.csv"), key=lambda p: p.name):
        with path.open("rb") as fh:
            content = fh.read()
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(str(len(content)).encode("ascii") + b"\0")
        digest.update(content)
    return digest.hexdigest()


_INT_COLUMNS = {"studies.csv": ("year",), "outcomes.csv": ("events", "total"),
                "transitions.csv": ("count",), "searches.csv": ("records_returned",)}
_FLOAT_COLUMNS = {"effects.csv": ("estimate", "ci_lower", "ci_upper", "p_value"),
                  "harms.csv": ("events", "total"),
                  "reviews.csv": ("estimate", "ci_lower", "ci_upper", "k")}
_USE_FILES = ("outcomes.csv", "effects.csv", "transitions.csv")


def _frame(name: str, table: Table | None) -> pd.DataFrame:
    """DataFrame of a validated table: typed numbers, optional columns added."""
    import pandas as pd

    header = list(table.header) if table is not None else []
    columns = header + [c for c in (*REQUIRED_COLUMNS[name], *OPTIONAL_COLUMNS[name])
                        if c not in header]
    rows = [[r.cells.get(c, "") for c in columns]
            for r in (table.records if table is not None else ())]
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    for column in _INT_COLUMNS.get(name, ()):
        frame[column] = frame[column].astype("int64")
    for column in _FLOAT_COLUMNS.get(name, ()):
        frame[column] = pd.to_numeric(frame[column].replace("", None)).astype("float64")
    if name in _USE_FILES:
        frame["use"] = frame["use"].where(frame["use"] != "", "primary")
    return frame


def load(data_dir: str | os.PathLike[str], *,
         cache_dir: str | os.PathLike[str] | None = None) -> Registry:
    """Validate the registry and load it into DataFrames.

    Parameters
    ----------
    data_dir : str or path-like
        The registry directory.
    cache_dir : str or path-like, optional
        Where to keep the validated tables between processes (the build passes its
        ``.evidence-cache``). A registry whose files, validation code and pandas
        version are unchanged since it was last validated is then read from there
        (one pickle, written atomically; a stale or unreadable one is ignored and
        replaced). Validating 10,000 rows costs ≈ 0.35 s, once per notebook without
        the cache. Nothing is written to ``data_dir``.

    Returns
    -------
    Registry
        The tables (integers as ``int64``, numbers as ``float64``, text as strings;
        empty ``use`` read as ``"primary"``), the directory and its SHA-256 digest.

    Raises
    ------
    RegistryError
        If :func:`validate` finds any problem; ``.problems`` lists all of them.
    """
    path = Path(data_dir)
    if cache_dir is None:
        return _load(path)
    sha = registry_sha256(path)
    cached = Path(cache_dir) / f"registry-{_cache_key(sha)}.pickle"
    hit = _read_cached(cached)
    if hit is not None:
        return dataclasses.replace(hit, data_dir=path)
    registry = _load(path)
    if registry.sha256 == sha:  # unchanged while it was validated
        _write_cached(cached, registry)
    return registry


def _load(path: Path) -> Registry:
    problems, tables = check_registry(path)
    if problems:
        raise RegistryError(problems)
    return Registry(**{name: _frame(f"{name}.csv", tables.get(f"{name}.csv"))
                       for name in TABLES}, data_dir=path, sha256=registry_sha256(path))


def _cache_key(registry_digest: str) -> str:
    """The registry's digest, the source of this wing (reading, rules, store) and the
    pandas/Python versions."""
    import sys

    import pandas as pd

    h = hashlib.sha256(registry_digest.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.name.encode() + b"\0" + source.read_bytes())
    h.update(f"{pd.__version__} {sys.version}".encode())
    return h.hexdigest()[:32]


def _read_cached(cached: Path) -> Registry | None:
    import pickle

    try:
        with cached.open("rb") as fh:
            hit = pickle.load(fh)
    except Exception:
        # a damaged pickle can raise almost anything; it is only a cache, so the registry
        # is validated from its files instead
        return None
    return hit if isinstance(hit, Registry) else None


def _write_cached(cached: Path, registry: Registry) -> None:
    import pickle
    import tempfile

    tmp: str | None = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".tmp", dir=cached.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(registry, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cached)
        tmp = None
        for old in cached.parent.glob("registry-*.pickle"):  # keep only the current one
            if old != cached:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs time
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True, eq=False)
class Registry:
    """A validated registry (build it with :func:`load`).

    Attributes
    ----------
    studies, outcomes, effects, transitions, outcome_types : pandas.DataFrame
        One frame per file (``effects``/``transitions`` empty when the file is absent).
    harms, reviews, eligibility, searches, screening : pandas.DataFrame
        The optional files: adverse events and early stopping per trial arm, pooled
        estimates of other reviews, and the review's eligibility, search and screening
        logs (empty, with their columns, when a file is absent).
    risk_of_bias : pandas.DataFrame
        Domain judgements per study and tool (``risk_of_bias.csv``; the overall
        judgements are computed by :func:`evidence.registry.appraisal.overall`).
    certainty : pandas.DataFrame
        The reviewers' GRADE judgements per outcome and domain (``certainty.csv``).
    data_dir : pathlib.Path
        The directory it was read from.
    sha256 : str
        Digest of the registry files (see :func:`registry_sha256`).
    """

    studies: pd.DataFrame
    outcomes: pd.DataFrame
    effects: pd.DataFrame
    transitions: pd.DataFrame
    outcome_types: pd.DataFrame
    harms: pd.DataFrame
    reviews: pd.DataFrame
    eligibility: pd.DataFrame
    searches: pd.DataFrame
    screening: pd.DataFrame
    risk_of_bias: pd.DataFrame
    certainty: pd.DataFrame
    data_dir: Path
    sha256: str

    def rows(self, query: dict[str, Any]) -> pd.DataFrame:
        """Rows of a registry table matching a query made by :func:`query_of`.

        Each filter keeps the rows whose column equals the value (``None`` keeps all; a
        list keeps the rows whose column equals any of its values; values are compared
        as text); for ``outcomes``, ``effects`` and ``transitions`` only the rows of the
        query's ``use`` are kept.

        Raises
        ------
        ValueError
            An unknown table.
        KeyError
            A filter on a column the table does not have.
        """
        table = query.get("table")
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r} in query; allowed: {', '.join(TABLES)}")
        frame = getattr(self, table)
        for col, value in query.get("filters", {}).items():
            if value is None:
                continue
            if col not in frame.columns:
                raise KeyError(f"{table}.csv has no column {col!r}")
            cells = frame[col].fillna("").astype(str)
            if isinstance(value, list):
                frame = frame[cells.isin([str(v) for v in value])]
            else:
                frame = frame[cells == str(value)]
        if table in USE_TABLES and "use" in frame.columns:
            use = query.get("use", "primary")
            frame = frame[frame["use"].fillna("").replace("", "primary") == use]
        return frame

    def query(self, table: str, use: str = "primary", **filters: Any) -> pd.DataFrame:
        """Rows of ``table`` whose columns equal ``filters`` (see :meth:`rows`), index reset."""
        return self.rows(query_of(table, use, **filters)).reset_index(drop=True)

    def digest(self, query: dict[str, Any]) -> str:
        """SHA-256 of exactly the rows a query reads, and of the study rows they join.

        It changes if and only if one of those rows changes, appears or disappears (a
        changed label re-runs the analyses showing it), whatever else the files hold.
        """
        rows = self.rows(query)
        digest = frame_digest(rows)
        if query["table"] != "studies" and "study_id" in rows.columns:
            studies = self.studies[self.studies["study_id"].isin(rows["study_id"])]
            digest = hashlib.sha256((digest + frame_digest(studies)).encode()).hexdigest()
        return digest

    def outcome_table(self, outcome: str, *, arm: str | None = None,
                      arm_role: str | None = None, subgroup: str | None = "",
                      use: str = "primary") -> pd.DataFrame:
        """Counts of one outcome joined with the study columns, by year then label.

        Parameters
        ----------
        outcome : str
            A name from ``outcome_types.csv``.
        arm, arm_role : str or None
            Select an arm by name, or by role (``experimental``/``control``);
            None matches any.
        subgroup : str or None
            ``""`` for the whole population, a ``key=value`` subgroup, or None for all.
        use : {"primary", "alternative"}
            Which reading of self-contradicting counts.

        Returns
        -------
        pandas.DataFrame
            The outcome columns, then the study columns (``label``, ``year``,
            ``her2_method_group``, ...; the study's ``source`` and ``notes`` left out),
            sorted by year, label, arm and subgroup.

        Raises
        ------
        LookupError
            ``outcome`` is not in ``outcome_types.csv`` (with the closest name), or no
            row matches (the message lists what exists).
        """
        rows = self.rows(outcome_query(outcome, arm=arm, arm_role=arm_role,
                                       subgroup=subgroup, use=use))
        if rows.empty:
            known = sorted(self.outcome_types["outcome"])
            where = self.data_dir
            if outcome not in known:
                import difflib

                close = difflib.get_close_matches(outcome, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise LookupError(
                    f"unknown outcome {outcome!r} (not in {where}/outcome_types.csv"
                    f"{hint}); known: {', '.join(known)}")
            avail = self.outcomes[self.outcomes["outcome"] == outcome]
            combos = sorted({tuple(r) for r in avail[["arm", "arm_role", "subgroup"]]
                             .fillna("").to_numpy().tolist()})
            raise LookupError(
                f"no registry rows for outcome={outcome!r}, arm={arm!r}, arm_role={arm_role!r}, "
                f"subgroup={subgroup!r} in {where}/outcomes.csv; rows of that outcome "
                f"have (arm, arm_role, subgroup): {combos}")
        studies = self.studies.drop(columns=["source", "notes"], errors="ignore")
        table = rows.merge(studies, on="study_id", how="left", validate="many_to_one")
        return table.sort_values(["year", "label", "arm", "subgroup"]).reset_index(drop=True)


#: Tables a query may name.
TABLES: tuple[str, ...] = ("outcomes", "effects", "transitions", "studies", "outcome_types",
                           "harms", "reviews", "eligibility", "searches", "screening",
                           "risk_of_bias", "certainty")
#: Tables whose rows carry a ``use`` (``primary`` or ``alternative``).
USE_TABLES: tuple[str, ...] = ("outcomes", "effects", "transitions")


def query_of(table: str, use: str = "primary", **filters: Any) -> dict[str, Any]:
    """The canonical form of a registry query, as an analysis records it.

    Parameters
    ----------
    table : str
        One of :data:`TABLES`.
    use : {"primary", "alternative"}
        For the tables with a ``use`` column.
    **filters
        Column equals value (``None``: any value; a list or tuple: any of its values,
        recorded sorted and without repeats, so the same selection is the same query).

    Raises
    ------
    ValueError
        An unknown table or ``use``.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; allowed: {', '.join(TABLES)}")
    query: dict[str, Any] = {"table": table, "filters": {
        k: sorted({str(x) for x in v}) if isinstance(v, (list, tuple, set, frozenset)) else v
        for k, v in sorted(filters.items())}}
    if table in USE_TABLES:
        if use not in USES:
            raise ValueError(f"use must be one of {', '.join(USES)}, got {use!r}")
        query["use"] = use
    return query


def outcome_query(outcome: str, *, arm: str | None = None, arm_role: str | None = None,
                  subgroup: str | None = "", use: str = "primary") -> dict[str, Any]:
    """The query of :meth:`Registry.outcome_table` (``arm_role`` filters only when given)."""
    filters: dict[str, Any] = {"outcome": outcome, "arm": arm, "subgroup": subgroup}
    if arm_role is not None:
        filters["arm_role"] = arm_role
    return query_of("outcomes", use, **filters)


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's column names, dtypes and values, column by column.

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
