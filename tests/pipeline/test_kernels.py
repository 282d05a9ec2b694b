"""evidence.pipeline.kernels: a fresh kernel per notebook, started ahead, stopped behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from evidence.pipeline import kernels


def notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os\nprint(os.getpid(), os.getcwd(), "
                                  "os.environ.get('EVIDENCE_TEST_VAR'), x, "
                                  "len(globals().get('seen', [])))"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_each_notebook_gets_a_fresh_kernel_and_none_is_left(tmp_path: Path) -> None:
    template = notebook(tmp_path / "t.ipynb")
    pids = []
    try:
        for i in range(3):
            nb = kernels.execute(str(template), str(tmp_path / f"out{i}.ipynb"), {"x": i},
                                 cwd=str(tmp_path), env={"EVIDENCE_TEST_VAR": "set"},
                                 ahead=i < 2)
            pid, cwd, var, x, seen = nb.cells[-1].outputs[0]["text"].split()
            assert (cwd, var, x, seen) == (str(tmp_path), "set", str(i), "0")
            assert nb.cells[-1].metadata["papermill"]["duration"] > 0
            pids.append(int(pid))
        assert len(set(pids)) == 3  # never a reused kernel
        assert kernels._spare is None  # the last run asked for no kernel ahead
    finally:
        kernels.close_all()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


@pytest.mark.slow
def test_a_spare_for_another_directory_is_not_used(tmp_path: Path) -> None:
    template = notebook(tmp_path / "t.ipynb")
    other = tmp_path / "other"
    other.mkdir()
    try:
        kernels.execute(str(template), str(tmp_path / "a.ipynb"), {}, cwd=str(tmp_path),
                        env={}, ahead=True)
        assert kernels._spare is not None
        nb = kernels.execute(str(template), str(tmp_path / "b.ipynb"), {}, cwd=str(other),
                             env={}, ahead=False)
        assert nb.cells[-1].outputs[0]["text"].split()[1] == str(other)
    finally:
        kernels.close_all()
    assert kernels._spare is None


@pytest.mark.slow
def test_a_failing_cell_raises_and_the_kernel_is_stopped(tmp_path: Path) -> None:
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('no')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    try:
        with pytest.raises(papermill.PapermillExecutionError, match="no"):
            kernels.execute(str(tmp_path / "bad.ipynb"), str(tmp_path / "out.ipynb"), {},
                            cwd=str(tmp_path), env={}, ahead=False)
    finally:
        kernels.close_all()
