"""evidence reproduce (evidence.pipeline.rscripts) without R: a stand-in ``Rscript``.

The stand-in is a shell script: asked to probe packages (``-e``) it names those listed
in ``$FAKE_MISSING``; asked to run ``<id>.R`` it prints ``<id>.out`` and exits with
``$FAKE_STATUS``.  So the command's exit codes, messages and report are checked here
with outputs made from the expected values; ``tests/test_reproduce_live.py`` runs the
real scripts with R.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from evidence.book.pooled import pool_table
from evidence.book.reproduce import expected_values, r_script
from evidence.pipeline.cli import main
from evidence.stats.results import jsonable

FAKE_RSCRIPT = """#!/bin/sh
if [ "$1" = "-e" ]; then
  for p in $FAKE_MISSING; do echo "$p"; done
  exit 0
fi
cat "${1%.R}.out"
echo "some message" >&2
exit "${FAKE_STATUS:-0}"
"""


def write_analysis(root: Path, aid: str, counts: list[tuple[int, int]]) -> dict:
    """results/<id>.json, .csv and .R of a GLMM pooled proportion."""
    table = pd.DataFrame({"study_id": [f"s{i}" for i in range(len(counts))],
                          "label": [f"Study {i}" for i in range(len(counts))],
                          "year": [2000 + i for i in range(len(counts))],
                          "events": [e for e, _ in counts], "total": [n for _, n in counts]})
    pa = pool_table(table, method="GLMM", test="t")
    result = json.loads(json.dumps(jsonable({"analysis_id": aid, **pa.to_json()})))
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{aid}.json").write_text(json.dumps(result), encoding="utf-8")
    pa.studies.to_csv(results / f"{aid}.csv", index=False)
    (results / f"{aid}.R").write_text(r_script(result, f"{aid}.csv", aid), encoding="utf-8")
    return result


def write_output(root: Path, aid: str, result: dict, change: dict | None = None) -> None:
    """What R would print for ``result`` (the expected values), with ``change`` applied."""
    lines = ["EVIDENCE version R 4.2.2", "EVIDENCE version metafor 3.8.1",
             "EVIDENCE version lme4 1.1.31"]
    for (fit, quantity), value in expected_values(result).items():
        value = (change or {}).get((fit, quantity), value)
        lines.append(f"EVIDENCE {fit} {quantity} "
                     + ("NA" if math.isnan(value) else repr(float(value))))
    (root / "results" / f"{aid}.out").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, dict]:
    fake = tmp_path / "bin" / "Rscript"
    fake.parent.mkdir()
    fake.write_text(FAKE_RSCRIPT, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.delenv("FAKE_MISSING", raising=False)
    monkeypatch.delenv("FAKE_STATUS", raising=False)
    root = tmp_path / "book"
    results = {aid: write_analysis(root, aid, counts) for aid, counts in
               (("alpha", [(1, 10), (3, 12), (0, 9)]), ("beta", [(5, 20), (9, 30)]))}
    for aid, result in results.items():
        write_output(root, aid, result)
    return root, str(fake), results


def reproduce(root: Path, rscript: str, *extra: str) -> int:
    return main(["reproduce", "--root", str(root), "--rscript", rscript, *extra])


def test_agreement_exits_0_and_writes_the_report(book, capsys) -> None:
    root, rscript, results = book
    assert reproduce(root, rscript, "-j", "2") == 0
    out = capsys.readouterr().out
    assert "ok      alpha: " in out and "ok      beta: " in out
    assert "reproduce: 2 of 2 R scripts reproduce the book's results" in out
    report = json.loads((root / "results" / "reproduce.json").read_text())
    assert report["ok"] is True
    assert [e["analysis_id"] for e in report["analyses"]] == ["alpha", "beta"]
    alpha = report["analyses"][0]
    assert alpha["status"] == "ok" and alpha["compared"] == len(expected_values(
        results["alpha"]))
    assert alpha["versions"] == {"R": "4.2.2", "metafor": "3.8.1", "lme4": "1.1.31"}
    assert alpha["largest"]["glmm"]["difference"] == 0


def test_a_differing_value_exits_1_naming_analysis_and_quantity(book, capsys) -> None:
    root, rscript, results = book
    estimate = results["beta"]["model"]["estimate"]
    write_output(root, "beta", results["beta"], {("reml_knha", "ci_upper"): 1.5,
                                                 ("primary", "estimate"): estimate * 1.01})
    assert reproduce(root, rscript) == 1
    captured = capsys.readouterr()
    assert "FAILED  beta: 2 of " in captured.err
    assert "beta primary estimate: book" in captured.err
    assert "beta reml_knha ci_upper: book" in captured.err and "R 1.5" in captured.err
    assert "1 of 2 R scripts reproduce the book's results; failed: beta" in captured.out
    report = json.loads((root / "results" / "reproduce.json").read_text())
    assert report["ok"] is False
    assert [(m["fit"], m["quantity"]) for m in report["analyses"][1]["mismatches"]] == [
        ("primary", "estimate"), ("reml_knha", "ci_upper")]


def test_a_failing_script_exits_1_with_its_message(book, capsys, monkeypatch) -> None:
    root, rscript, _ = book
    monkeypatch.setenv("FAKE_STATUS", "1")
    assert reproduce(root, rscript) == 1
    err = capsys.readouterr().err
    assert "FAILED  alpha: Rscript alpha.R exited with status 1: some message" in err
    report = json.loads((root / "results" / "reproduce.json").read_text())
    assert [e["status"] for e in report["analyses"]] == ["error", "error"]


def test_a_missing_line_is_a_failure(book, capsys) -> None:
    root, rscript, _ = book
    out = root / "results" / "alpha.out"
    out.write_text("".join(line for line in out.read_text().splitlines(keepends=True)
                           if not line.startswith("EVIDENCE dl_z ")), encoding="utf-8")
    assert reproduce(root, rscript) == 1
    assert "alpha dl_z estimate: book" in capsys.readouterr().err


def test_without_r_or_metafor_exit_2_and_nothing_is_written(book, capsys,
                                                           monkeypatch) -> None:
    root, rscript, _ = book
    assert reproduce(root, str(root / "no-such-Rscript")) == 2
    assert "not found" in capsys.readouterr().err
    monkeypatch.setenv("FAKE_MISSING", "metafor")
    assert reproduce(root, rscript) == 2
    err = capsys.readouterr().err
    assert "R cannot load metafor (needed by the scripts)" in err
    assert "nothing was compared" in err
    assert not (root / "results" / "reproduce.json").exists()
    monkeypatch.setenv("PATH", str(root))  # no Rscript on PATH either
    assert main(["reproduce", "--root", str(root)]) == 2
    assert "Rscript not found on PATH" in capsys.readouterr().err


def test_no_scripts_exit_1(tmp_path: Path, capsys) -> None:
    (tmp_path / "results").mkdir()
    assert main(["reproduce", "--root", str(tmp_path)]) == 1
    assert "no R scripts in" in capsys.readouterr().err
    assert os.listdir(tmp_path / "results") == []
