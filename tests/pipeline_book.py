"""Helpers for the pipeline tests: a copy of the tiny fixture book in tmp_path."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "pipeline"


def copy_book(tmp_path: Path) -> Path:
    """A fresh copy of tests/fixtures/pipeline; returns its root."""
    root = tmp_path / "book_root"
    shutil.copytree(FIXTURE, root)
    return root


def tree_digest(path: Path) -> dict[str, str]:
    """File -> sha256 for every file below path."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def replace_in(path: Path, old: str, new: str) -> None:
    """Edit a text file in place, asserting the old text is there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
