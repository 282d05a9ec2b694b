"""The pooled analyses' R scripts, run with R's metafor (``evidence reproduce``).

The session's real book (``real_book``: every registry label carries markup) writes one
``results/<id>.R`` per pooled analysis; every one is run with ``Rscript`` and must print
the book's numbers within the parity tolerances.  A result changed by hand must make
``evidence reproduce`` fail, naming the analysis and the quantity.  A script for a table
whose labels try to break out of R strings, with another primary model (REML with the
Hartung-Knapp interval on the Freeman-Tukey scale), reproduces too.

Skipped without R, metafor and lme4, unless ``EVIDENCE_REQUIRE_METAFOR=1`` (CI), where
that is a failure.  The tests of the real book are slow (they share its build); the
scripts take about 3 s each and run two at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import require_rscript
from real_book import RealBook

from evidence.book.pooled import pool_table
from evidence.book.reproduce import (
    compare,
    expected_values,
    r_script,
    r_string,
    tolerances,
)
from evidence.pipeline.cli import main
from evidence.pipeline.config import load_config
from evidence.stats.results import jsonable

pytestmark = pytest.mark.metafor

#: Would end an R string and run a command if it were ever written into R code.
HOSTILE = 'Evil "2020" \\ back")); system("touch pwned"); x <- ("\nnext, line é 😀'


@pytest.fixture(scope="module")
def rscript() -> str:
    return require_rscript("metafor", "lme4")


def copy_results(real_book: RealBook, dest: Path, ids: list[str] | None = None) -> Path:
    """The real book's results (or just those of ``ids``) in ``dest/results``."""
    src = real_book.root / "results"
    (dest / "results").mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if ids is None or path.stem in ids:
            shutil.copy2(path, dest / "results" / path.name)
    return dest


@pytest.mark.slow  # the session's real book
def test_every_pooled_analysis_has_a_script(real_book: RealBook) -> None:
    config = load_config(real_book.root)
    pooled = {a.id for a in config.analyses
              if a.template in ("pool_proportions", "hazard_ratios")}
    scripts = {p.stem for p in (real_book.root / "results").glob("*.R")}
    assert pooled and scripts == pooled
    for aid in pooled:
        nb = (real_book.root / "book" / "analyses" / f"{aid}.ipynb").read_text()
        assert f"R script (metafor) <../../results/{aid}.R>" in nb


@pytest.mark.slow  # the session's real book
def test_every_script_reproduces_the_book(real_book: RealBook, rscript: str,
                                          tmp_path: Path, capsys) -> None:
    root = copy_results(real_book, tmp_path)
    assert main(["reproduce", "--root", str(root), "--rscript", rscript, "-j", "2"]) == 0, \
        capsys.readouterr().err
    report = json.loads((root / "results" / "reproduce.json").read_text())
    scripts = sorted(p.stem for p in (root / "results").glob("*.R"))
    assert [e["analysis_id"] for e in report["analyses"]] == scripts
    assert report["ok"] is True
    for entry in report["analyses"]:
        assert entry["status"] == "ok" and not entry["mismatches"], entry
        assert entry["versions"]["metafor"].startswith("3.")
        assert entry["compared"] >= 6 and entry["fits"]
        glmm = (entry["largest"]["glmm"] or {}).get("difference") or 0.0
        rma = (entry["largest"]["rma"] or {}).get("difference") or 0.0
        assert glmm <= 1e-4 and rma <= 1e-6
    by_id = {e["analysis_id"]: e for e in report["analyses"]}
    assert by_id["orr"]["fits"] == ["primary", "glmm_z", "reml_adhoc", "reml_knha",
                                    "reml_z", "dl_z", "fe_z"]
    assert by_id["pfs_hazard_ratios"]["fits"] == ["primary", "common_effect"]
    out = capsys.readouterr().out
    assert f"{len(scripts)} of {len(scripts)} R scripts reproduce" in out


@pytest.mark.slow  # the session's real book
def test_a_script_runs_from_anywhere_and_takes_the_table_as_argument(
        real_book: RealBook, rscript: str, tmp_path: Path) -> None:
    results = copy_results(real_book, tmp_path / "book", ["pfr6"]) / "results"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    beside = subprocess.run([rscript, str(results / "pfr6.R")], cwd=elsewhere,
                            capture_output=True, text=True, timeout=120, check=False)
    assert beside.returncode == 0, beside.stderr
    shutil.move(results / "pfr6.csv", elsewhere / "table.csv")
    missing = subprocess.run([rscript, str(results / "pfr6.R")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode != 0
    assert "download the study table (CSV) from the same page" in missing.stderr
    given = subprocess.run([rscript, str(results / "pfr6.R"), "table.csv"], cwd=elsewhere,
                           capture_output=True, text=True, timeout=120, check=False)
    assert given.returncode == 0, given.stderr
    assert given.stdout == beside.stdout
    assert "EVIDENCE single_study ci_upper " in given.stdout


@pytest.mark.slow  # the session's real book
def test_a_changed_number_fails_naming_analysis_and_quantity(
        real_book: RealBook, rscript: str, tmp_path: Path, capsys) -> None:
    root = copy_results(real_book, tmp_path, ["orr"])
    path = root / "results" / "orr.json"
    result = json.loads(path.read_text())
    result["model"]["estimate"] *= 1.001  # beyond the GLMM's 1e-4
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    assert main(["reproduce", "--root", str(root), "--rscript", rscript]) == 1
    captured = capsys.readouterr()
    assert "FAILED  orr: 1 of " in captured.err
    assert "orr primary estimate: book " in captured.err
    assert "relative difference" in captured.err
    assert "0 of 1 R scripts reproduce the book's results; failed: orr" in captured.out
    entry = json.loads((root / "results" / "reproduce.json").read_text())["analyses"][0]
    assert entry["status"] == "failed"
    assert [(m["fit"], m["quantity"]) for m in entry["mismatches"]] == [
        ("primary", "estimate")]


def test_hostile_labels_and_another_primary_model_reproduce(rscript: str,
                                                            tmp_path: Path) -> None:
    table = pd.DataFrame({"study_id": ["a", "b", "c", "d"],
                          "label": [HOSTILE, "O'Brien, 2019", "=1+1", "NA"],
                          "year": [2019, 2019, 2020, 2021],
                          "events": [3, 0, 7, 12], "total": [20, 15, 31, 40]})
    pa = pool_table(table, measure="PFT", method="REML", test="knha")
    result = json.loads(json.dumps(jsonable({"analysis_id": "odd", **pa.to_json()})))
    # written as AnalysisContext.save writes the study table
    pa.studies.to_csv(tmp_path / "odd.csv", index=False, lineterminator="\n",
                      float_format="%.10g")
    assert HOSTILE.replace('"', '""') in (tmp_path / "odd.csv").read_text(encoding="utf-8")
    (tmp_path / "odd.R").write_text(r_script(result, "odd.csv", "odd"), encoding="utf-8")
    proc = subprocess.run([rscript, "odd.R"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "pwned").exists()
    expected = expected_values(result)
    assert ("glmm_t", "estimate") in expected  # the primary is not a key row here
    assert compare(expected, proc.stdout, tolerances(result, expected)) == []


def test_r_reads_every_literal_back_as_written(rscript: str, tmp_path: Path) -> None:
    code = f"writeBin(charToRaw(enc2utf8({r_string(HOSTILE)})), 'out.txt')"
    (tmp_path / "literal.R").write_text(code, encoding="ascii")
    proc = subprocess.run([rscript, "literal.R"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == HOSTILE
    assert not (tmp_path / "pwned").exists()
