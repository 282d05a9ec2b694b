"""evidence.pipeline.timings: the time of the last run and build, kept in the cache."""

from __future__ import annotations

from pathlib import Path

from evidence.pipeline import timings
from evidence.pipeline.layout import TIMINGS_FILE


def test_sections_are_replaced_one_by_one(tmp_path: Path) -> None:
    assert timings.read(tmp_path) == {}
    timings.record(tmp_path, "run", {"seconds": 1.5})
    timings.record(tmp_path, "sphinx", {"seconds": 2.0})
    timings.record(tmp_path, "run", {"seconds": 3.0})
    assert timings.read(tmp_path) == {"run": {"seconds": 3.0}, "sphinx": {"seconds": 2.0}}
    assert (tmp_path / TIMINGS_FILE).parent.name == ".evidence-cache"


def test_a_damaged_file_reads_as_empty_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / TIMINGS_FILE
    path.parent.mkdir()
    path.write_text("[1, 2", encoding="utf-8")
    assert timings.read(tmp_path) == {}
    timings.record(tmp_path, "run", {"seconds": 1.0})
    assert timings.read(tmp_path) == {"run": {"seconds": 1.0}}
