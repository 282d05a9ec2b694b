"""Releases of the living review: ``evidence release`` and ``evidence diff``.

A release records the published state of the book in ``versions/VERSION.json``
(committed: the published record, not a build artefact), made by
:func:`evidence.book.versions.snapshot` from the analyses' current results and the
registry, plus the version, the date and a note.  :func:`make_release` refuses when the
registry does not validate, when any result is stale (the runner's own stamps,
:func:`evidence.pipeline.runner.stale_analyses`), when the version exists or is not above
the latest, or when nothing changed since the latest; it never overwrites a file.

:func:`current_diff` compares the current build with a release
(:func:`evidence.book.changes.compare`), as the What's new page does; :func:`book_title`
is the title bar the build shows (the version and the date of the last search, from the
What's new analysis).
"""

from __future__ import annotations

import json
import os
import re
from datetime import date as _date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.book.changes import VersionDiff, compare
from evidence.book.text import plural
from evidence.book.versions import (
    LIVING_TEMPLATES,
    RECORD_FORMAT,
    last_search,
    latest,
    parse_version,
    read_records,
    snapshot,
)
from evidence.pipeline.config import Analysis, BookConfig
from evidence.pipeline.context import AnalysisContext
from evidence.pipeline.layout import RESULTS_DIR, VERSIONS_DIR, result_json
from evidence.pipeline.trail import result_content

if TYPE_CHECKING:
    from evidence.registry import Registry

__all__ = ["ReleaseError", "book_title", "compared_analyses", "current_diff",
           "current_snapshot", "make_release", "release_records"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Registry problems listed in a refusal before "... and N more".
_SHOWN = 10


class ReleaseError(ValueError):
    """A release (or a comparison with one) cannot be made; the message says why and
    what to do."""


def compared_analyses(config: BookConfig) -> list[Analysis]:
    """The analyses a release records: all but those describing the versions
    (:data:`evidence.book.versions.LIVING_TEMPLATES`)."""
    return [a for a in config.analyses if a.template not in LIVING_TEMPLATES]


def release_records(root: str | Path) -> list[dict[str, Any]]:
    """Every release record of the book (``versions/*.json``), oldest first.

    Raises
    ------
    ReleaseError
        A record that cannot be read (naming the file).
    """
    try:
        return read_records(sorted((Path(root) / VERSIONS_DIR).glob("*.json")))
    except ValueError as exc:
        raise ReleaseError(str(exc)) from exc


def _results(config: BookConfig) -> dict[str, dict[str, Any]]:
    out = {}
    for a in compared_analyses(config):
        path = config.root / result_json(a.id)
        if not path.is_file():
            raise ReleaseError(f"{path} does not exist: run `evidence build` first")
        out[a.id] = result_content(json.loads(path.read_text(encoding="utf-8")))
    return out


def current_snapshot(config: BookConfig, registry: Registry) -> dict[str, Any]:
    """The state of the current build (results on disk, the registry given), read as the
    What's new analysis reads it (:meth:`AnalysisContext.study_rows`, results without
    their trail)."""
    ctx = AnalysisContext("release", Path(registry.data_dir), config.root / RESULTS_DIR,
                          registry)
    return snapshot(_results(config), {a.id: a.title for a in config.analyses},
                    {a.id: a.template for a in config.analyses}, ctx.study_rows(),
                    registry_sha256=registry.sha256, last_search=last_search(ctx.query(
                        "searches")))


def _data(config: BookConfig, data_dir: str | Path) -> Path:
    return (config.root / data_dir).resolve()


def _stale(config: BookConfig, data_dir: str | Path, registry: Registry) -> dict[str, str]:
    from evidence.pipeline.runner import stale_analyses

    # the pages about the versions are no part of the record (and a release itself
    # makes them stale)
    compared = {a.id for a in compared_analyses(config)}
    return {aid: why for aid, why in stale_analyses(config, data_dir=data_dir,
                                                     registry=registry).items()
            if aid in compared}


def _registry(config: BookConfig, data_dir: str | Path) -> Registry:
    from evidence.pipeline.layout import CACHE_DIR
    from evidence.registry import RegistryError, load

    data = _data(config, data_dir)
    try:  # load validates (or reads the tables it validated before from the cache)
        return load(data, cache_dir=config.root / CACHE_DIR)
    except RegistryError as exc:
        problems = exc.problems
        shown = "\n".join(f"  {p}" for p in problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise ReleaseError(f"the registry in {data} does not validate ({len(problems)} "
                           f"problem(s)); nothing was released:\n{shown}{more}") from exc


def make_release(config: BookConfig, version: str, note: str, *,
                 data_dir: str | Path = "data", date: str | None = None) -> Path:
    """Record the published state as ``versions/VERSION.json`` and return its path.

    Parameters
    ----------
    config : BookConfig
        The validated ``analyses.yml``.
    version : str
        ``MAJOR.MINOR.PATCH``, above every version released so far.
    note : str
        What this release is (shown on the Version history page).
    data_dir : path
        The registry directory.
    date : str, optional
        The release date, ``YYYY-MM-DD`` (default: today).

    Raises
    ------
    ReleaseError
        A bad version, note or date; the version exists or is not above the latest; the
        registry does not validate; a result is stale (each named with its reason); or
        nothing changed since the latest release.  Nothing is written then.
    """
    try:
        number = parse_version(version)
    except ValueError as exc:
        raise ReleaseError(str(exc)) from exc
    if not note or not note.strip():
        raise ReleaseError("a release needs a note saying what it is (--note TEXT)")
    day = date if date is not None else _date.today().isoformat()
    if not _DATE.fullmatch(day):
        raise ReleaseError(f"date {day!r} is not YYYY-MM-DD")
    try:
        _date.fromisoformat(day)
    except ValueError as exc:
        raise ReleaseError(f"date {day!r} is not a calendar date") from exc
    path = config.root / VERSIONS_DIR / f"{version}.json"
    if path.exists():
        raise ReleaseError(f"{path} exists: a published version is never overwritten; "
                           "release a new version number")
    records = release_records(config.root)
    previous = latest(records)
    if previous is not None and number <= parse_version(previous["version"]):
        raise ReleaseError(f"version {version} is not above the latest release "
                           f"{previous['version']}")
    registry = _registry(config, data_dir)
    stale = _stale(config, data_dir, registry)
    if stale:
        listed = "\n".join(f"  {aid}: {why}" for aid, why in stale.items())
        count = plural(len(stale), "analysis", "analyses")
        raise ReleaseError(f"the results are not current ({count} would run again); run "
                           f"`evidence build` first:\n{listed}")
    state = current_snapshot(config, registry)
    if previous is not None and not compare(previous, state).changed:
        raise ReleaseError(f"nothing changed since release {previous['version']}: the "
                           "registry, the searches and every result are the same")
    from evidence import __version__

    record = {"format": RECORD_FORMAT, "version": version, "date": day,
              "note": note.strip(), "evidence_version": __version__, **state}
    text = json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as fh:  # never overwrite, even in a race
            fh.write(text)
    except FileExistsError as exc:  # pragma: no cover - created between the checks
        raise ReleaseError(f"{path} exists: a published version is never overwritten") from exc
    os.chmod(path, 0o644)
    return path


def current_diff(config: BookConfig, version: str | None = None, *,
                 data_dir: str | Path = "data") -> tuple[VersionDiff, dict[str, str]]:
    """The current build against release ``version`` (default: the latest), and the
    analyses whose results are stale (empty when the build is current).

    Raises
    ------
    ReleaseError
        No such release (naming those there are), an unreadable record, a registry
        that does not validate, or a missing result.
    """
    records = release_records(config.root)
    if version is None:
        previous = latest(records)
    else:
        found = [r for r in records if r["version"] == version]
        if not found:
            known = ", ".join(r["version"] for r in records) or "none"
            raise ReleaseError(f"no release {version} in {config.root / VERSIONS_DIR} "
                               f"(released: {known})")
        previous = found[0]
    registry = _registry(config, data_dir)
    stale = _stale(config, data_dir, registry)
    return compare(previous, current_snapshot(config, registry)), stale


def book_title(config: BookConfig, title: str) -> str:
    """The title bar: ``title`` and what the What's new analysis says it should add (the
    version and the date of the last search), when that analysis has a result."""
    for a in config.analyses:
        if a.template != "whats_new":
            continue
        path = config.root / result_json(a.id)
        try:
            suffix = json.loads(path.read_text(encoding="utf-8")).get("title_suffix")
        except (OSError, ValueError):
            continue
        if suffix:
            return f"{title} ({suffix})"
    return title
