"""Bad input through ``evidence build``: a clear message, exit 1, nothing lost.

A small book (the analyses, template and chapters of ``tests/fixtures/pipeline`` on the
registry of ``registry_cases.py``) is built once.  Then, one at a time, its input is
broken in every way the registry and configuration rules name (the same edits that
``test_registry.py`` and ``test_config.py`` check against the validators), plus an
outcome row whose study was removed from ``studies.csv``, a malformed CSV quote,
non-UTF-8 bytes, a selection that matches no registry rows and a model that does not
converge; and ``evidence build`` runs again.  Each run must

- exit 1 and print the problem (``FILE:LINE: column: reason`` for the registry);
- leave ``_build/html``, ``results/`` and the executed notebooks as the last good build
  made them (except, when one analysis fails, the results of the others that ran and
  succeeded on the new input: they are correct for it, as after ``evidence run``, and
  the book is not rebuilt);
- leave every input file exactly as the user wrote it (bytes and modification time).

A study with a HER2 method never seen before is not bad input: it must build, and show
up as its own subgroup.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pipeline_book import CONFIG_CASES, book_with_template, copy_book, replace_in, tree_digest
from registry_cases import APPENDED_ROW_CASES, RULE_CASES, drop_column, make

from evidence.pipeline import runner
from evidence.pipeline.cli import main

pytestmark = pytest.mark.slow

#: What a failed build must leave as it was.
OUTPUTS = ("_build/html", "results", "book/analyses")
#: What the user wrote (no command may modify it).
INPUTS = ("data", "analyses.yml", "notebooks", "book/intro.md", "book/results.md")


@pytest.fixture(scope="module", autouse=True)
def fixed_library() -> Iterator[None]:
    """Hold the library digest still while other work edits src/."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "library_digest", lambda: "1" * 64)
        yield


def build(root: Path) -> int:
    return main(["build", "--root", str(root), "--data", str(root / "data"), "-q"])


def outputs(root: Path, reran: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every output file, but those of the analyses in ``reran``."""
    own = {f"results/{a}.{ext}" for a in reran for ext in ("json", "csv")}
    own |= {f"book/analyses/{a}.ipynb" for a in reran}
    return {f"{top}/{name}": digest for top in OUTPUTS
            for name, digest in tree_digest(root / top).items()
            if f"{top}/{name}" not in own}


def inputs(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every input file."""
    files = [p for top in INPUTS for p in
             ([root / top] if (root / top).is_file() else sorted((root / top).rglob("*")))
             if p.is_file()]
    return {p.relative_to(root).as_posix():
            (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in files}


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture book on the registry_cases base registry, built once."""
    root = copy_book(tmp_path_factory.mktemp("bad_input"))
    shutil.rmtree(root / "data")
    make(root)
    assert build(root) == 0
    assert (root / "_build" / "html" / "index.html").is_file()
    return root


@pytest.fixture
def pristine(book: Path) -> Iterator[Path]:
    """The built book; every input file is restored afterwards."""
    saved = {p: p.read_bytes() for top in INPUTS
             for p in ([book / top] if (book / top).is_file() else (book / top).rglob("*"))
             if p.is_file()}
    yield book
    for path in [p for top in ("data", "notebooks") for p in (book / top).rglob("*")]:
        if path.is_file() and path not in saved:
            path.unlink()
    for path, content in saved.items():
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)


def assert_rejected(root: Path, edit: Callable[[], None], message: str,
                    capsys: pytest.CaptureFixture[str], reran: tuple[str, ...] = ()) -> str:
    """Apply ``edit``, build, and check exit 1, ``message`` (a regex) and nothing lost.

    ``reran``: analyses that read the edited rows and succeed on them.
    """
    before = outputs(root, reran)
    edit()
    written = inputs(root)
    capsys.readouterr()
    assert build(root) == 1
    err = capsys.readouterr().err
    assert re.search(message, err), f"expected {message!r} in:\n{err}"
    assert "previous book in _build/html is unchanged" in err
    assert outputs(root, reran) == before, "a failed build changed the last good book"
    assert inputs(root) == written, "a failed build modified what the user wrote"
    return err


# --------------------------------------------------------------------------- registry rules


def _replace(root: Path, file: str, old: str, new: str) -> Callable[[], None]:
    return lambda: replace_in(root / "data" / file, old, new)


@pytest.mark.parametrize(("file", "old", "new", "expected"),
                         [case for case in RULE_CASES if case[3] is not None])
def test_every_registry_rule_stops_the_build(pristine: Path, capsys: pytest.CaptureFixture[str],
                                             file: str, old: str, new: str,
                                             expected: str) -> None:
    err = assert_rejected(pristine, _replace(pristine, file, old, new), re.escape(expected),
                          capsys)
    assert "1 problem(s) in the registry; no analysis was run" in err


@pytest.mark.parametrize(("file", "row", "expected"), APPENDED_ROW_CASES)
def test_every_appended_row_rule_stops_the_build(pristine: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 file: str, row: str, expected: str) -> None:
    def append() -> None:
        with (pristine / "data" / file).open("a", encoding="utf-8") as fh:
            fh.write(row)

    assert_rejected(pristine, append, re.escape(expected), capsys)


def _remove_study(root: Path, study_id: str) -> None:
    path = root / "data" / "studies.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f"{study_id},")]
    assert len(kept) == len(lines) - 1
    path.write_text("".join(kept), encoding="utf-8")


def _drop_quote_column(root: Path) -> None:
    path = root / "data" / "outcomes.csv"
    path.write_text(drop_column(path.read_text(encoding="utf-8"), "quote"), encoding="utf-8")


def _latin1_label(root: Path) -> None:
    path = root / "data" / "studies.csv"
    path.write_bytes(path.read_bytes().replace(b"Jacot 2019", b"J\xe4cot 2019"))


STRUCTURAL = {
    "outcome row whose study was removed from studies.csv": (
        lambda root: _remove_study(root, "pestrin2012"),
        r"data/outcomes\.csv:2: study_id: unknown study_id 'pestrin2012' \(not in studies\.csv\)"),
    "missing required column": (
        _drop_quote_column, r"data/outcomes\.csv:1: quote: missing required column"),
    "malformed CSV quote": (
        lambda root: replace_in(root / "data" / "outcomes.csv", ",a.txt,one PR among 7,",
                                ',a.txt,"one PR" among 7,'),
        r"data/outcomes\.csv:2: malformed CSV: ',' expected after '\"'"),
    "non-UTF-8 bytes": (
        _latin1_label, r"data/studies\.csv:3: label: not valid UTF-8: byte 0xE4"),
    "missing file": (
        lambda root: (root / "data" / "outcome_types.csv").unlink(),
        r"data/outcome_types\.csv:0: file not found"),
}


@pytest.mark.parametrize("case", list(STRUCTURAL))
def test_structural_registry_problems_stop_the_build(pristine: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     case: str) -> None:
    edit, message = STRUCTURAL[case]
    assert_rejected(pristine, lambda: edit(pristine), message, capsys)


def test_every_problem_is_listed_at_once(pristine: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def edit() -> None:
        replace_in(pristine / "data" / "outcomes.csv", ",1,7,", ",8,7,")
        replace_in(pristine / "data" / "studies.csv", ",2019,", ",1819,")
        replace_in(pristine / "data" / "effects.csv", ",0.5,0.3,0.9,", ",1.5,0.3,0.9,")

    err = assert_rejected(pristine, edit, "3 problem\\(s\\) in the registry", capsys)
    assert err.index("studies.csv:3: year") < err.index("outcomes.csv:2: events") \
        < err.index("effects.csv:2: estimate")


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("old", "new", "message"), CONFIG_CASES)
def test_every_config_rule_stops_the_build(pristine: Path, capsys: pytest.CaptureFixture[str],
                                           old: str, new: str, message: str) -> None:
    err = assert_rejected(pristine, lambda: replace_in(pristine / "analyses.yml", old, new),
                          message, capsys)
    assert "analyses.yml" in err and "no analysis was run" in err


def test_invalid_yaml_names_line_and_column(pristine: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert_rejected(pristine, lambda: replace_in(pristine / "analyses.yml", "toc:\n", "toc: [\n"),
                    r"analyses\.yml:\d+:\d+: .*not valid YAML", capsys)


def test_wrongly_typed_parameter(pristine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_rejected(pristine, lambda: replace_in(pristine / "analyses.yml", "label: screening",
                                                 "threshold: 2.5"),
                    "parameter 'threshold' must be int, got float", capsys)


def test_selection_matching_no_rows(pristine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit() -> None:  # the only screening rows become another outcome's
        path = pristine / "data" / "outcomes.csv"
        path.write_text(path.read_text(encoding="utf-8").replace(
            "verschoor2024,all,her2_ctc_screening_yield,", "verschoor2024,all,pfr6,"),
            encoding="utf-8")

    err = assert_rejected(pristine, edit,
                          r"FAILED  yield: .*no registry rows for "
                          r"outcome='her2_ctc_screening_yield'", capsys)
    assert "analyses failed" in err and "_build/failed/yield.ipynb" in err


def test_selection_naming_an_unknown_outcome(pristine: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Caught when analyses.yml is loaded, before any kernel starts."""
    err = assert_rejected(pristine, lambda: replace_in(pristine / "analyses.yml",
                                                       "outcome: her2_ctc_screening_yield",
                                                       "outcome: her2_ctc_yield"),
                          r"analyses\.yml:\d+:\d+: analyses\[1\] \(id yield\): parameter "
                          r"'outcome': 'her2_ctc_yield' is not one of the registry's outcomes: "
                          r".*\(did you mean 'her2_ctc_screening_yield'\?\)", capsys)
    assert "no analysis was run" in err


def test_the_command_exits_1_as_a_process(pristine: Path) -> None:
    """The same through the installed console script: exit status and stderr."""
    replace_in(pristine / "data" / "outcomes.csv", ",1,7,", ",8,7,")
    script = Path(sys.executable).with_name("evidence")
    command = [str(script)] if script.is_file() else [sys.executable, "-c",
                                                       "import sys; from evidence.pipeline.cli "
                                                       "import main; sys.exit(main())"]
    before = outputs(pristine)
    proc = subprocess.run([*command, "build", "--root", str(pristine), "--data",
                           str(pristine / "data"), "-q"], capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 1
    assert "evidence: error: data/outcomes.csv:2: events: events 8 > total 7" in proc.stderr
    assert outputs(pristine) == before


# --------------------------------------------------------------------------- the real template


@pytest.fixture(scope="module")
def pooled_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture book plus the real pool_proportions analysis (GLMM), built once."""
    root = book_with_template(tmp_path_factory.mktemp("pooled"))
    assert build(root) == 0
    return root


def test_model_that_does_not_converge_fails_with_the_reason(
        pooled_book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = pooled_book / "data" / "outcomes.csv"
    original = outcomes.read_bytes()

    def edit() -> None:  # no events at all: the GLMM's likelihood has no maximum
        replace_in(outcomes, "objective_response,,1,10", "objective_response,,0,10")
        replace_in(outcomes, "objective_response,,2,12", "objective_response,,0,12")

    try:
        err = assert_rejected(pooled_book, edit,
                              r"FAILED  pooled: .*ConvergenceError: GLMM: every study has "
                              r"0 events", capsys, reran=("orr",))
        assert "FAILED  orr" not in err  # counting works; only the model failed
    finally:
        outcomes.write_bytes(original)


def test_new_her2_method_builds_as_its_own_subgroup(pooled_book: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with (pooled_book / "data" / "studies.csv").open("a", encoding="utf-8") as fh:
        fh.write("gamma2026,Gamma 2026,2026,single-arm phase II,metastatic,negative,"
                 "CellSearch,digital droplet PCR,ERBB2 copy gain,T-DM1,Gamma G (2026),\n")
    with (pooled_book / "data" / "outcomes.csv").open("a", encoding="utf-8") as fh:
        fh.write("gamma2026,all,objective_response,,3,15,,gamma.txt,3 of 15 responded\n")
    assert build(pooled_book) == 0, capsys.readouterr().err
    result = json.loads((pooled_book / "results" / "pooled.json").read_text())
    assert result["k"] == 3
    groups = {g["group"]: g["k"] for g in result["subgroups"]["her2_method"]["levels"]}
    assert groups == {"immunofluorescence": 1, "FISH": 1, "digital droplet PCR": 1}
    page = (pooled_book / "_build" / "html" / "book" / "analyses" / "pooled.html").read_text()
    assert "digital droplet PCR" in page and "Gamma 2026" in page
