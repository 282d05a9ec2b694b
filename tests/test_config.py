"""analyses.yml validation, template parameter parsing and _toc.yml generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_book import copy_book, replace_in

from evidence.config import ConfigError, load_config, read_template_parameters, render_toc

REPO = Path(__file__).resolve().parents[1]


def test_fixture_config_loads(tmp_path: Path) -> None:
    config = load_config(copy_book(tmp_path))
    assert [a.id for a in config.analyses] == ["orr", "yield"]
    assert config.get("yield").parameters == {"outcome": "her2_ctc_screening_yield",
                                              "label": "screening"}
    assert config.get("orr").notebook == "book/analyses/orr.ipynb"
    with pytest.raises(KeyError, match="unknown analysis id 'nope'"):
        config.get("nope")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("template: count_rows\n    title: Screening", "template: no_such\n    title: Screening",
     r"unknown template 'no_such'; known: \['count_rows'\]"),
    ("id: yield", "id: orr", "duplicate id 'orr'"),
    ("      outcome: objective_response\n", "",
     "requires parameter 'outcome'"),
    ("label: screening", "colour: blue", "has no parameter 'colour'"),
    ("label: screening", "threshold: three", "parameter 'threshold' must be int, got str"),
    ("label: screening", "label: 3", "parameter 'label' must be str, got int"),
    ("label: screening", "analysis_id: other", "parameter 'analysis_id' is set by the runner"),
    ("chapter: book/results\n    parameters:\n      outcome: her2",
     "chapter: book/missing\n    parameters:\n      outcome: her2",
     "chapter 'book/missing' is not a hand-written chapter"),
    ("- book/results", "- book/nowhere", "chapter file book/nowhere.md not found"),
    ("  - id: yield\n", "  - id: yield\n    after: [ghost]\n",
     r"'after' names unknown ids \['ghost'\]"),
    ("  - id: yield\n", "  - id: Yield\n", "must match"),
])
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
    with pytest.raises(ConfigError, match=r"analyses.yml: line \d+, column \d+: not valid YAML"):
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
    assert params["knha"].accepts(True) and not params["knha"].accepts("yes")
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
