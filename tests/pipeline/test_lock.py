"""evidence.pipeline.lock: one run or build at a time per tree, stale locks recognised."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pipeline_book import copy_book

from evidence.pipeline.cli import main
from evidence.pipeline.layout import LOCK_FILE
from evidence.pipeline.lock import TreeLocked, tree_lock

HOLD = ("import sys, time; from pathlib import Path; "
        "from evidence.pipeline.lock import tree_lock; "
        "cm = tree_lock(Path(sys.argv[1])); cm.__enter__(); print('locked', flush=True); "
        "time.sleep(float(sys.argv[2]))")


def _holder(root: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_build_in_the_same_tree_stops_naming_the_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_book(tmp_path)
    proc = _holder(root, 30)
    try:
        capsys.readouterr()
        status = main(["build", "--root", str(root), "--data", str(root / "data"), "-q"])
        err = capsys.readouterr().err
        assert status == 1
        assert f"another evidence run or build (pid {proc.pid}, started " in err
        assert "wait for it to finish or stop it (or pass --wait)" in err
        assert not (root / "results").exists(), "the refused build wrote results"
        with pytest.raises(TreeLocked, match=f"pid {proc.pid}"):
            with tree_lock(root):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_wait_blocks_until_the_holder_is_done(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 1.5)
    said: list[str] = []
    start = time.perf_counter()
    with tree_lock(tmp_path, wait=True, poll=0.1, say=said.append):
        waited = time.perf_counter() - start
    proc.wait()
    assert waited > 0.5
    assert said and f"pid {proc.pid}" in said[0] and "waiting" in said[0]


def test_a_killed_build_leaves_a_stale_lock_that_is_reported_and_taken(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 60)
    proc.kill()  # SIGKILL: no clean-up ran; the file still names the dead pid
    proc.wait()
    assert (tmp_path / LOCK_FILE).read_text().startswith(f"{proc.pid} ")
    said: list[str] = []
    with tree_lock(tmp_path, say=said.append):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")
    assert said == [f"evidence: removed a stale lock left by a build that is no longer "
                    f"running (pid {proc.pid})"]
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_the_lock_is_released_after_the_block_and_after_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with tree_lock(tmp_path):
            raise RuntimeError("boom")
    done = threading.Event()

    def again() -> None:
        with tree_lock(tmp_path):
            done.set()

    worker = threading.Thread(target=again)
    worker.start()
    worker.join(5)
    assert done.is_set()
