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
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evidence.config import BookConfig, render_toc

__all__ = ["BuildOutcome", "book_digest", "build_book", "sync_toc"]

STAMP = ".book-inputs.sha256"


@dataclass(frozen=True)
class BuildOutcome:
    """Result of :func:`build_book`."""

    status: str  # "built", "up to date", "failed"
    index: Path
    log: str = ""


def sync_toc(config: BookConfig) -> bool:
    """Write ``_toc.yml`` from ``analyses.yml`` if it differs; True when written."""
    path = config.root / "_toc.yml"
    text = render_toc(config)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def book_digest(root: Path) -> str:
    """Hash of every file the HTML build reads."""
    files = [root / "_config.yml", root / "_toc.yml"]
    for sub in ("book", "results", "_static", "_ext"):
        base = root / sub
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.is_file()]
    h = hashlib.sha256()
    for p in sorted(files):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed in this environment "
                                "(pip install 'jupyter-book<2')")
    return [found]


def build_book(config: BookConfig, *, force: bool = False) -> BuildOutcome:
    """Build ``_build/html`` from the book sources; swap it in only on success."""
    root = config.root
    out_dir = root / "_build"
    html = out_dir / "html"
    index = html / "index.html"
    sync_toc(config)
    digest = book_digest(root)
    stamp = out_dir / STAMP
    if (not force and index.is_file() and stamp.is_file()
            and stamp.read_text(encoding="utf-8").strip() == digest):
        return BuildOutcome("up to date", index)
    out_dir.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        cmd = [*_jupyter_book(), "build", "--all", "-W", "-n", "--keep-going",
               "--path-output", str(staging), str(root)]
        env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env,
                              check=False)
        log = proc.stdout + proc.stderr
        new_html = staging / "_build" / "html"
        if proc.returncode != 0 or not (new_html / "index.html").is_file():
            (out_dir / "last-failed-build.log").write_text(log, encoding="utf-8")
            return BuildOutcome("failed", index, log)
        old = None
        if html.exists():
            old = out_dir / f".old-{os.getpid()}"
            os.replace(html, old)
        os.replace(new_html, html)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        stamp.write_text(digest + "\n", encoding="utf-8")
        (out_dir / "last-failed-build.log").unlink(missing_ok=True)
        return BuildOutcome("built", index, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
