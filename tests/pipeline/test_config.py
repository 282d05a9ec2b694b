"""analyses.yml validation, template parameter parsing and _toc.yml generation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pipeline_book import CONFIG_CASES, book_with_template, copy_book, replace_in

from evidence.pipeline.config import ConfigError, load_config, read_template_parameters, render_toc

REPO = Path(__file__).resolve().parents[2]


def test_fixture_config_loads(tmp_path: Path) -> None:
    config = load_config(copy_book(tmp_path))
    assert [a.id for a in config.analyses] == ["orr", "yield"]
    assert config.get("yield").parameters == {"outcome": "her2_ctc_screening_yield",
                                              "label": "screening"}
    assert config.get("orr").notebook == "book/analyses/orr.ipynb"
    with pytest.raises(KeyError, match="unknown analysis id 'nope'"):
        config.get("nope")


@pytest.mark.parametrize(("old", "new", "message"), CONFIG_CASES)
def test_invalid_configs(tmp_path: Path, old: str, new: str, message: str) -> None:
    root = copy_book(tmp_path)
    replace_in(root / "analyses.yml", old, new)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(root)
    assert "analyses.yml" in str(info.value)


def test_cycle_is_rejected(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    replace_in(root / "analyses.yml", "  - id: orr\n", "  - id: orr\n    after: [yield]\n")
    replace_in(root / "analyses.yml", "  - id: yield\n", "  - id: yield\n    after: [orr]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(root)


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    (root / "analyses.yml").write_text("root: book/intro\ntoc: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"analyses.yml:3:1: not valid YAML: expected ','"):
        load_config(root)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("label: screening", "label: 3",
     "analyses.yml:19:14: analyses[1] (id yield): parameter 'label' must be str, got int 3"),
    ("  - id: yield", "  - id: orr",
     "analyses.yml:13:9: analyses[1] (id orr): duplicate id 'orr'"),
    ("template: count_rows\n    title: Screening", "template: nope\n    title: Screening",
     "analyses.yml:14:15: analyses[1] (id yield): unknown template 'nope'"),
    ("      - book/results", "      - book/nowhere",
     "analyses.yml:5:9: toc[0].chapters[0]: chapter file book/nowhere.md not found"),
    ("  - id: yield\n", "  - id: Yield\n",
     "analyses.yml:13:9: analyses[1]: id 'Yield' must match"),
    ("    title: Screening yield (fixture)\n",
     "    title: Screening yield (fixture)\n    title: Again\n",
     "analyses.yml:16:5: analyses[1]: key 'title' given twice (first on line 15)"),
    ("analyses:\n", "colour: blue\nanalyses:\n",
     "analyses.yml:6:9: top level: unknown keys ['colour']"),
])
def test_config_errors_name_line_and_column(tmp_path: Path, old: str, new: str,
                                            message: str) -> None:
    root = copy_book(tmp_path)
    replace_in(root / "analyses.yml", old, new)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert str(info.value).startswith(f"{root / 'analyses.yml'}:")
    assert message in str(info.value)


def test_every_config_error_names_a_line_and_column(tmp_path: Path) -> None:
    for i, (old, new, _) in enumerate(CONFIG_CASES):
        root = copy_book(tmp_path / str(i))
        replace_in(root / "analyses.yml", old, new)
        with pytest.raises(ConfigError, match=r"^\S*analyses\.yml:\d+:\d+: "):
            load_config(root)


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    path = root / "analyses.yml"
    path.write_bytes(path.read_bytes().replace(b"(fixture)", b"(fixtur\xe9)", 1))
    with pytest.raises(ConfigError, match=r"analyses\.yml:9: not valid UTF-8: byte 0xE9"):
        load_config(root)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path)


def test_template_parameters_must_be_typed_literals(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    path = root / "notebooks" / "count_rows.ipynb"
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "analysis_id: str = 'x'\ndata_dir: str = 'data'\nresults_dir: str = 'r'\n" \
                     "outcome: str = 'a' + 'b'  # derived values are not allowed"
    path.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="outcome is not a literal"):
        read_template_parameters(path)
    cell["source"] = "analysis_id: str = 'x'\ndata_dir: str = 'data'  # a=b"
    path.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="papermill cannot parse"):
        read_template_parameters(path)
    cell["source"] = "analysis_id: str | None = 'x'"
    path.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="papermill cannot parse"):
        read_template_parameters(path)
    cell["source"] = "analysis_id = 'x'"
    path.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="must be 'name: type = literal'"):
        read_template_parameters(path)
    cell["source"] = "analysis_id: str = 'x'"
    path.write_text(json.dumps(nb))
    with pytest.raises(ConfigError, match="must declare data_dir, results_dir"):
        read_template_parameters(path)


def test_parameter_types() -> None:
    params = read_template_parameters(REPO / "notebooks" / "pool_proportions.ipynb")
    assert params["outcome"].required
    assert params["arm_role"].accepts("control") and not params["arm_role"].accepts(None)
    assert not params["arm_role"].accepts(3)
    assert params["subgroup_by"].comment.startswith("study column")
    assert params["max_forest_k"].accepts(3) and not params["max_forest_k"].accepts("3")
    assert not params["max_forest_k"].accepts(True)
    assert not params["question"].accepts(True)


def test_toc_lists_every_analysis_once(tmp_path: Path) -> None:
    toc = render_toc(load_config(copy_book(tmp_path)))
    assert toc.count("book/analyses/orr") == 1
    assert toc.count("book/analyses/yield") == 1
    assert "root: book/intro" in toc


def test_repository_toc_agrees_with_analyses_yml() -> None:
    config = load_config(REPO)
    committed = (REPO / "_toc.yml").read_text(encoding="utf-8")
    assert committed == render_toc(config), "run `evidence toc` and commit _toc.yml"
    for analysis in config.analyses:
        assert f"book/analyses/{analysis.id}\n" in committed


@pytest.mark.parametrize(("old", "new", "message"), [
    ("method: GLMM", "method: REMl",
     r"parameter 'method': 'REMl' is not one of FE, DL, REML, PM, ML, HE, SJ, GLMM "
     r"\(did you mean 'REML'\?\)"),
    ("method: GLMM", "method: GLMM\n      measure: PLX",
     r"parameter 'measure': 'PLX' is not one of PLO, PFT, PAS, PR"),
    ("method: GLMM", "method: GLMM\n      arm_role: treated",
     r"parameter 'arm_role': 'treated' is not one of '', experimental, control"),
    ("subgroup_by: [her2_method]", "subgroup_by: [her2_method, colour]",
     r"parameter 'subgroup_by': 'colour' is not one of the registry's study columns: ''"),
    ("outcome: objective_response\n      question", "outcome: objective_respons\n      question",
     r"parameter 'outcome': 'objective_respons' is not one of the registry's outcomes: "
     r".*\(did you mean 'objective_response'\?\)"),
])
def test_enumerated_parameters_are_checked_at_load(tmp_path: Path, old: str, new: str,
                                                     message: str) -> None:
    """method, measure, arm role, subgroup column and outcome: FILE:LINE:COL: parameter."""
    root = book_with_template(tmp_path)
    replace_in(root / "analyses.yml", old, new)
    with pytest.raises(ConfigError, match=r"analyses\.yml:\d+:\d+: analyses\[2\] \(id pooled\): "
                                          + message):
        load_config(root)


def test_parameters_are_checked_against_the_registry_given(tmp_path: Path) -> None:
    root = book_with_template(tmp_path)
    other = tmp_path / "other_data"
    shutil.copytree(root / "data", other)
    replace_in(other / "outcome_types.csv", "objective_response,", "response,")
    load_config(root)  # the book's own registry has the outcome
    with pytest.raises(ConfigError, match="'objective_response' is not one of the registry's"):
        load_config(root, data_dir=other)


def _with_defaults(root: Path, block: str) -> None:
    replace_in(root / "analyses.yml", "analyses:\n", f"defaults:\n{block}analyses:\n")


def test_defaults_apply_to_every_analysis_of_their_template(tmp_path: Path) -> None:
    """A template's defaults reach each of its analyses unless the analysis sets the
    parameter itself; other templates are untouched."""
    root = book_with_template(tmp_path)
    _with_defaults(root, "  pool_proportions:\n    test: t\n    method: REML\n"
                         "  count_rows:\n    label: fixture\n")
    config = load_config(root)
    pooled = config.get("pooled").parameters
    assert pooled["test"] == "t" and pooled["method"] == "GLMM"  # its own method wins
    assert config.get("orr").parameters["label"] == "fixture"
    assert config.get("yield").parameters["label"] == "screening"
    assert config.defaults == {"pool_proportions": {"test": "t", "method": "REML"},
                               "count_rows": {"label": "fixture"}}


@pytest.mark.parametrize(("block", "message"), [
    ("  pool_proportions:\n    test: tt\n",
     r"analyses\.yml:\d+:11: analyses\[2\] \(id pooled\): parameter 'test': 'tt' is not one "
     r"of z, t, knha, adhoc \(did you mean 't'\?\)"),
    ("  pool_proportion:\n    test: t\n",
     r"analyses\.yml:\d+:\d+: defaults\.pool_proportion: unknown template 'pool_proportion'"),
    ("  pool_proportions:\n    tests: t\n",
     r"analyses\.yml:\d+:12: defaults\.pool_proportions: template 'pool_proportions' has no "
     r"parameter 'tests'"),
    ("  pool_proportions:\n    max_forest_k: many\n",
     r"defaults\.pool_proportions: parameter 'max_forest_k' must be int, got str 'many'"),
    ("  pool_proportions:\n    data_dir: elsewhere\n",
     r"defaults\.pool_proportions: parameter 'data_dir' is set by the runner"),
    ("  pool_proportions: t\n", r"defaults\.pool_proportions: must be a mapping of parameters"),
])
def test_bad_defaults_name_their_place(tmp_path: Path, block: str, message: str) -> None:
    root = book_with_template(tmp_path)
    _with_defaults(root, block)
    with pytest.raises(ConfigError, match=message):
        load_config(root)


def test_repository_defaults_set_the_small_sample_intervals() -> None:
    """The review's primary intervals come from analyses.yml defaults: every pooled
    proportion is the GLMM with the t interval, every hazard-ratio pool the ad hoc
    Hartung-Knapp interval (issue: statistics for very few studies)."""
    config = load_config(REPO)
    for a in config.analyses:
        if a.template == "pool_proportions":
            assert (a.parameters["method"], a.parameters["test"]) == ("GLMM", "t"), a.id
        if a.template == "hazard_ratios":
            assert a.parameters["test"] == "adhoc", a.id


def test_the_reproducibility_page_reads_every_analysis_with_an_r_script() -> None:
    """It compares results/reproduce.json with the current results of the analyses that
    write R scripts (the pool_proportions and hazard_ratios templates), so it must run
    after each of them."""
    config = load_config(REPO)
    scripted = [a.id for a in config.analyses
                if a.template in ("pool_proportions", "hazard_ratios")]
    assert scripted and list(config.get("reproducibility").after) == scripted
