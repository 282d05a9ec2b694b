"""The evidence command: exit codes, messages and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_book import copy_book, replace_in

from evidence.pipeline.cli import build_parser, main

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.mark.parametrize("command", ["validate", "audit-sources", "pool", "run", "build",
                                     "reproduce", "toc", "diff", "release"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: evidence" in capsys.readouterr().out


def test_unknown_choice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pool", "--csv", "x.csv", "--method", "reml"])
    assert info.value.code == 2
    assert "invalid choice: 'reml'" in capsys.readouterr().err


def test_validate_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy_book(tmp_path) / "data"
    assert main(["validate", "--data", str(data)]) == 0
    assert "OK" in capsys.readouterr().out
    replace_in(data / "outcomes.csv", "objective_response,,1,10", "objective_response,,12,10")
    replace_in(data / "outcomes.csv", "her2_ctc_screening_yield,,12,150",
               "her2_ctc_screening_yield,,12,0")
    assert main(["validate", "--data", str(data)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["data/outcomes.csv:2: events: events 12 > total 10",
                   "data/outcomes.csv:5: total: must be greater than 0",
                   "data/outcomes.csv:5: events: events 12 > total 0"]


def test_pool_prints_metafor_values(capsys: pytest.CaptureFixture[str]) -> None:
    ref = json.loads((FIXTURES / "metafor" / "orr_her2ctc.json").read_text())
    reml = next(r for r in ref["records"] if r["method"] == "REML" and r["measure"] == "PLO"
                and r.get("test") == "knha")
    assert main(["pool", "--csv", str(FIXTURES / "metafor" / "orr_her2ctc.csv"),
                 "--measure", "PLO", "--method", "REML", "--knha"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 5 and out["model"]["test"] == "knha"
    assert out["model"]["estimate"] == pytest.approx(reml["estimate"], rel=1e-6)
    assert out["model"]["se"] == pytest.approx(reml["se"], rel=1e-6)
    assert out["pooled"]["ci_upper"] == pytest.approx(reml["prop_ci_ub"], rel=1e-6)
    assert out["pooled"]["pi_lower"] == pytest.approx(reml["prop_pi_lb"], rel=1e-6)


@pytest.mark.parametrize(("content", "message"), [
    ("study,events\na,1\n", "missing column(s) ['total']"),
    ("study,events,total\na,1,10\nb,x,10\n", ":3: events: 'x' is not a non-negative integer"),
    ("study,events,total\na,11,10\n", ":2: events: 11 > total 10"),
    ("study,events,total\na,0,0\n", ":2: total: must be > 0"),
])
def test_pool_rejects_bad_csv(tmp_path: Path, content: str, message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content)
    assert main(["pool", "--csv", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_pool_single_study_and_glmm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.csv"
    path.write_text("study,events,total\na,1,14\n")
    assert main(["pool", "--csv", str(path), "--method", "GLMM"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] is None and "nothing was pooled" in out["pooled"]["warning"]


def test_pool_reports_numerical_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "zeros.csv"
    path.write_text("study,events,total\na,0,10\nb,0,12\n")
    assert main(["pool", "--csv", str(path), "--method", "GLMM"]) == 1
    assert "evidence: error: GLMM" in capsys.readouterr().err


def test_run_with_invalid_config_exits_1(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_book(tmp_path)
    (root / "analyses.yml").write_text("toc: [\n")
    assert main(["run", "--root", str(root), "-q"]) == 1
    assert "not valid YAML" in capsys.readouterr().err


def test_run_with_invalid_registry_exits_1(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_book(tmp_path)
    replace_in(root / "data" / "studies.csv", "alpha2010,Alpha", "beta2015,Alpha")
    assert main(["run", "--root", str(root), "--data", str(root / "data"), "-q"]) == 1
    assert "studies.csv:3: study_id: duplicate" in capsys.readouterr().err


def test_toc_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_book(tmp_path)
    assert main(["toc", "--root", str(root)]) == 0
    assert main(["toc", "--root", str(root), "--check"]) == 0
    (root / "_toc.yml").write_text("stale\n")
    assert main(["toc", "--root", str(root), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_console_script_starts_without_heavy_imports() -> None:
    code = ("import sys, evidence.pipeline.cli; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'scipy', 'statsmodels') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert build_parser().prog == "evidence"
