"""Build the HTML book with Jupyter Book 1, atomically.

The book is built into a fresh temporary directory with notebook execution off
(papermill already executed them) and warnings as errors (``-W -n
--keep-going``).  Only a successful build replaces ``_build/html``; a failed one
leaves the previous book untouched.  A build whose inputs (configuration,
chapters, executed notebooks, results) are byte-identical to the last
successful one is skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.pipeline import timings
from evidence.pipeline.config import BookConfig, render_toc
from evidence.pipeline.layout import (
    ANALYSES_DIR,
    BOOK_ITEMS,
    BUILD_DIR,
    BUILD_STAMP,
    FAILED_BUILD_LOG,
    HTML_DIR,
    RESULTS_DIR,
    TOC_FILE,
)

__all__ = ["BuildOutcome", "book_digest", "book_sources", "build_book",
           "copy_book_sources", "parameter_strings", "sync_toc"]


@dataclass(frozen=True)
class BuildOutcome:
    """Result of :func:`build_book`."""

    status: str  # "built", "up to date", "failed"
    index: Path
    log: str = ""


def sync_toc(config: BookConfig) -> bool:
    """Write ``_toc.yml`` from ``analyses.yml`` if it differs; True when written."""
    path = config.root / TOC_FILE
    text = render_toc(config)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def book_digest(root: Path) -> str:
    """Hash of every file the HTML build reads."""
    files = [root / "_config.yml", root / TOC_FILE]
    for sub in ("book", RESULTS_DIR, "_static", "_ext"):
        base = root / sub
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.is_file()]
    h = hashlib.sha256()
    for p in sorted(files):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def parameter_strings(value: Any) -> list[str]:
    """Every string inside a parameter value (nested dicts and lists included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in parameter_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in parameter_strings(v)]
    return []


def book_sources(root: Path) -> list[str]:
    """Every path (relative to ``root``) the analyses and the HTML build read.

    :data:`evidence.pipeline.layout.BOOK_ITEMS`, the ``sphinx.local_extensions`` directories of
    ``_config.yml``, and analysis parameters of ``analyses.yml`` that name an
    existing file or directory inside the book.
    """
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    local = (config.get("sphinx") or {}).get("local_extensions") or {}
    paths = [*BOOK_ITEMS, *(str(p) for p in local.values() if p)]
    analyses = yaml.safe_load((root / "analyses.yml").read_text(encoding="utf-8")) or {}
    for analysis in analyses.get("analyses", []):
        for value in parameter_strings(analysis.get("parameters", {})):
            if (re.fullmatch(r"[\w.-]+(/[\w.-]+)*", value) and ".." not in value.split("/")
                    and (root / value).exists()):
                paths.append(value)
    return list(dict.fromkeys(paths))


def copy_book_sources(dest: Path, src: Path) -> Path:
    """Copy a book's sources (:func:`book_sources`, without executed notebooks) into a
    new directory ``dest``, e.g. to build a variant of the book in isolation."""
    dest.mkdir(parents=True, exist_ok=False)
    for name in book_sources(src):
        path = src / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, dest / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        elif path.is_file():
            shutil.copy2(path, dest / name)
    for executed in (dest / ANALYSES_DIR).glob("*.ipynb"):
        executed.unlink()
    return dest


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed in this environment "
                                "(pip install 'jupyter-book<2')")
    return [found]


def _titled_config(config: BookConfig, staging: Path) -> list[str]:
    """``--config`` of a copy of ``_config.yml`` whose title carries the version and the
    date of the last search (:func:`evidence.pipeline.release.book_title`), written into
    the staging directory (``_config.yml`` itself is never touched); none when the title
    stays as it is."""
    import yaml

    from evidence.pipeline.release import book_title

    data = yaml.safe_load((config.root / "_config.yml").read_text(encoding="utf-8")) or {}
    title = book_title(config, str(data.get("title", "")))
    if title == data.get("title"):
        return []
    data["title"] = title
    # Jupyter Book finds local extensions relative to the configuration file
    local = (data.get("sphinx") or {}).get("local_extensions") or {}
    for name, path in local.items():
        local[name] = str((config.root / path).resolve())
    path = staging / "_config.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return ["--config", str(path)]


def build_book(config: BookConfig, *, force: bool = False) -> BuildOutcome:
    """Build ``_build/html`` from the book sources; swap it in only on success."""
    root = config.root
    out_dir = root / BUILD_DIR
    html = root / HTML_DIR
    index = html / "index.html"
    sync_toc(config)
    digest = book_digest(root)
    stamp = root / BUILD_STAMP
    if (not force and index.is_file() and stamp.is_file()
            and stamp.read_text(encoding="utf-8").strip() == digest):
        return BuildOutcome("up to date", index)
    out_dir.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        cmd = [*_jupyter_book(), "build", "--all", "-W", "-n", "--keep-going",
               "--path-output", str(staging), str(root), *_titled_config(config, staging)]
        env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env,
                              check=False)
        timings.record(root, "sphinx", {"seconds": time.perf_counter() - started,
                                        "ok": proc.returncode == 0})
        log = proc.stdout + proc.stderr
        new_html = staging / HTML_DIR
        if proc.returncode != 0 or not (new_html / "index.html").is_file():
            (root / FAILED_BUILD_LOG).write_text(log, encoding="utf-8")
            return BuildOutcome("failed", index, log)
        old = None
        if html.exists():
            old = out_dir / f".old-{os.getpid()}"
            os.replace(html, old)
        os.replace(new_html, html)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        stamp.write_text(digest + "\n", encoding="utf-8")
        (root / FAILED_BUILD_LOG).unlink(missing_ok=True)
        return BuildOutcome("built", index, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
