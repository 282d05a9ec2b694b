"""The trail of an analysis: digests of what it read, and the versions it ran with.

An analysis records every query it makes (:class:`evidence.pipeline.context.AnalysisContext`);
:func:`read_digest` hashes exactly what a recorded query reads — registry rows (through
:meth:`evidence.registry.store.Registry.digest`), another analysis's result file, files
under a directory, or package versions — so that the runner re-runs an analysis when, and
only when, something it read has changed.  :func:`library_digest` hashes the library
itself, :func:`dependency_versions` the environment.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.pipeline.layout import result_json
from evidence.registry.store import TABLES

if TYPE_CHECKING:
    from evidence.registry import Registry

__all__ = ["DEFAULT_PACKAGES", "QUERY_TABLES", "TRAIL_FIELDS", "dependency_versions",
           "library_digest", "read_digest", "result_content", "sha256"]

#: Distributions whose versions the Reproducibility chapter lists (pip names).
DEFAULT_PACKAGES: tuple[str, ...] = (
    "evidence", "numpy", "scipy", "pandas", "matplotlib", "papermill",
    "jupyter-book", "myst-nb", "sphinx",
)
#: What a recorded query may read: a registry table, another result, files, versions.
QUERY_TABLES: tuple[str, ...] = (*TABLES, "result", "files", "environment")
#: Fields of a result that record how it was made (the queries it read and their digest)
#: rather than what it found: another analysis reading the result does not see them, so
#: a change in them alone (say, a study added that this analysis reads but does not
#: pool) does not re-run the analyses that read it.
TRAIL_FIELDS: tuple[str, ...] = ("inputs", "data_sha256")


def sha256(data: bytes) -> str:
    """Hexadecimal SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def result_content(result: dict[str, Any]) -> dict[str, Any]:
    """A result as other analyses read it: without its :data:`TRAIL_FIELDS`."""
    return {k: v for k, v in result.items() if k not in TRAIL_FIELDS}


def read_digest(registry: Registry, query: dict[str, Any], root: str | Path = ".") -> str:
    """SHA-256 of exactly the rows (or result, files, versions) a recorded query reads.

    For registry tables the rows of the joined studies count too, so that a changed
    label re-runs the analyses showing it.  For another analysis's result it is the
    digest of its content (:func:`result_content`: what
    :meth:`evidence.pipeline.context.AnalysisContext.result` returns), so a reader
    re-runs when, and only when, what it was given has changed.

    Raises
    ------
    ValueError
        A query of an unknown kind, or a result file that is not JSON.
    """
    table = query.get("table")
    if table not in QUERY_TABLES:
        raise ValueError(f"unknown table {table!r} in query; allowed: {QUERY_TABLES}")
    if table == "result":
        path = Path(root) / result_json(query["id"])
        if not path.is_file():
            return "missing"
        content = result_content(json.loads(path.read_text(encoding="utf-8")))
        return sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    if table == "files":
        h = hashlib.sha256()
        base = Path(root) / query["path"]
        for path in sorted(base.glob(query["pattern"])):
            if path.is_file():
                h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
        return h.hexdigest()
    if table == "environment":
        versions = dependency_versions(query["packages"])
        return sha256(json.dumps(versions, sort_keys=True).encode())
    return registry.digest(query)


def library_digest() -> str:
    """Hash of every source file of the installed ``evidence`` package."""
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        h.update(path.relative_to(pkg).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def dependency_versions(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Versions of Python and of installed distributions.

    Parameters
    ----------
    packages : sequence of str
        Distribution (pip) names.

    Returns
    -------
    dict of str to str
        ``Python`` first, then each package in order (``"not installed"`` when absent).
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"Python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
