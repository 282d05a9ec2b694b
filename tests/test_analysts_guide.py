"""The analysts' guide's worked example, executed: its blocks appended to a copy of the
registry validate, and the response analysis then pools the new trial."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from evidence.book.pooled import pool_table
from evidence.pipeline.cli import main
from evidence.pipeline.context import open_analysis

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "book" / "analysts.md"
BLOCK = re.compile(r"```\{code-block\} text\n:caption: (data/[\w.]+\.csv)\n(.*?)```", re.S)


def example_blocks() -> list[tuple[str, str]]:
    """(registry file, lines to append) of every block of the worked example."""
    return BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def append_example(data: Path) -> None:
    for name, lines in example_blocks():
        path = data / Path(name).name
        text = path.read_text(encoding="utf-8")
        path.write_text(text + ("" if text.endswith("\n") else "\n") + lines,
                        encoding="utf-8")


def test_the_worked_example_names_each_log_and_table() -> None:
    assert [name for name, _ in example_blocks()] == [
        "data/searches.csv", "data/screening.csv", "data/studies.csv", "data/outcomes.csv",
        "data/risk_of_bias.csv"]


def test_the_worked_example_validates_and_is_pooled(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "data", data)
    before = open_analysis("orr", str(data), str(tmp_path / "results")).outcome_table(
        "objective_response", arm_role="experimental", subgroup="")
    append_example(data)
    capsys.readouterr()
    assert main(["validate", "--data", str(data)]) == 0, capsys.readouterr()
    ctx = open_analysis("orr", str(data), str(tmp_path / "results"))
    after = ctx.outcome_table("objective_response", arm_role="experimental", subgroup="")
    assert len(after) == len(before) + 1 and "example2027" in set(after["study_id"])
    res = pool_table(after, method="GLMM", test="t")
    assert res.k == len(before) + 1
    # one line less (the study's risk of bias missing) and the registry no longer validates
    rob = data / "risk_of_bias.csv"
    lines = rob.read_text(encoding="utf-8").splitlines(keepends=True)
    rob.write_text("".join(lines[:-1]), encoding="utf-8")
    assert main(["validate", "--data", str(data)]) == 1
    assert "example2027" in capsys.readouterr().out
