"""``analyses.yml``: the single source of what the book contains.

The file lists the book's parts and hand-written chapters (``toc``) and every
analysis (``analyses``): an id, a template from ``notebooks/``, the parameters
injected into it, a title and the chapter it belongs under.  This module loads
and validates it, reads each template's ``parameters`` cell (typed literals,
papermill style), and generates ``_toc.yml`` so that the runs and the table of
contents cannot drift apart.
"""

from __future__ import annotations

import ast
import graphlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.pipeline.layout import DATA_DIR, executed_notebook, result_json, template_file
from evidence.registry.rules import ARM_ROLES
from evidence.stats.vocabulary import METHODS, PROPORTION_MEASURES, TESTS, TWO_GROUP_MEASURES

__all__ = [
    "PARAMETER_CHOICES",
    "REGISTRY_PARAMETERS",
    "RUNNER_PARAMETERS",
    "Analysis",
    "BookConfig",
    "ConfigError",
    "TemplateParameter",
    "load_config",
    "read_template_parameters",
    "registry_vocabulary",
    "render_toc",
]

#: Parameters every template declares and the runner injects itself.
RUNNER_PARAMETERS = ("analysis_id", "data_dir", "results_dir")

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: What papermill's parameter parser accepts as an annotation (it warns otherwise).
_PAPERMILL_ANNOTATION = re.compile(r"\w[\w\[\],\s]*")
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class ConfigError(ValueError):
    """``analyses.yml`` or a template is invalid; the message names file and place."""


@dataclass(frozen=True)
class TemplateParameter:
    """One typed literal of a template's ``parameters`` cell.

    ``required`` parameters carry a comment starting with ``required:``; their
    default in the template is only a placeholder.
    """

    name: str
    annotation: str
    default: Any
    comment: str
    required: bool

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` matches the annotation (``X | None`` allows None)."""
        options = [a.strip() for a in self.annotation.split("|")]
        for opt in options:
            if opt == "None" and value is None:
                return True
            base = opt.split("[", 1)[0]
            types = _TYPES.get(base)
            if types is None:
                continue
            if isinstance(value, bool) and base != "bool":
                continue
            if isinstance(value, types):
                inner = re.match(r"list\[(\w+)\]$", opt)
                if inner and not all(
                    isinstance(v, _TYPES.get(inner.group(1), (object,))) for v in value
                ):
                    continue
                return True
        return False


@dataclass(frozen=True)
class Analysis:
    """One entry of ``analyses.yml``."""

    id: str
    template: str
    title: str
    chapter: str | None
    parameters: dict[str, Any]
    after: tuple[str, ...] = ()

    @property
    def notebook(self) -> str:
        """Path of the executed notebook, relative to the book root."""
        return executed_notebook(self.id)

    @property
    def result(self) -> str:
        """Path of the result JSON, relative to the book root."""
        return result_json(self.id)


@dataclass(frozen=True)
class Part:
    """A part of the book: a caption and its hand-written chapters."""

    caption: str
    chapters: tuple[str, ...]


@dataclass(frozen=True)
class BookConfig:
    """The validated content of ``analyses.yml``."""

    root: Path
    path: Path
    root_page: str
    parts: tuple[Part, ...]
    analyses: tuple[Analysis, ...]
    templates: dict[str, dict[str, TemplateParameter]] = field(repr=False)
    #: Parameters every analysis of a template gets unless it sets them (``defaults``).
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, analysis_id: str) -> Analysis:
        """The analysis with this id (``KeyError`` naming the known ids otherwise)."""
        for a in self.analyses:
            if a.id == analysis_id:
                return a
        known = ", ".join(a.id for a in self.analyses)
        raise KeyError(f"unknown analysis id {analysis_id!r}; known: {known}")

    def template_path(self, template: str) -> Path:
        """File of a template."""
        return self.root / template_file(template)


def read_template_parameters(path: Path) -> dict[str, TemplateParameter]:
    """Read the cell tagged ``parameters`` of a notebook template.

    Every statement must be an annotated assignment of a literal
    (``outcome: str = "objective_response"  # registry outcome``).

    Raises
    ------
    ConfigError
        No parameters cell, or a statement that is not a typed literal.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read template: {exc}") from exc
    cells = [c for c in nb.get("cells", [])
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"{path}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    source = "".join(cells[0]["source"])
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from exc
    params: dict[str, TemplateParameter] = {}
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and node.value is not None):
            raise ConfigError(
                f"{path}: parameters cell line {node.lineno}: must be 'name: type = literal'")
        try:
            default = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ConfigError(
                f"{path}: parameters cell line {node.lineno}: {node.target.id} is not a "
                "literal (values derived in the parameters cell are not recomputed when "
                "parameters are injected)") from exc
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
        annotation = ast.unparse(node.annotation)
        if "=" in comment or not _PAPERMILL_ANNOTATION.fullmatch(annotation):
            raise ConfigError(
                f"{path}: parameters cell line {node.lineno}: papermill cannot parse "
                f"{line.strip()!r} (use a plain type such as str, int, float, bool, "
                "list[str], and no '=' in the comment)")
        params[node.target.id] = TemplateParameter(
            name=node.target.id,
            annotation=annotation,
            default=default,
            comment=comment,
            required=comment.startswith("required:"),
        )
    missing = [p for p in RUNNER_PARAMETERS if p not in params]
    if missing:
        raise ConfigError(f"{path}: parameters cell must declare {', '.join(missing)}")
    return params


#: A place in the YAML document: keys and list indices from the top.
_Key = tuple[str | int, ...]


def _positions(node: Any, path: Path, key: _Key = (),
               found: dict[_Key, tuple[int, int]] | None = None) -> dict[_Key, tuple[int, int]]:
    """1-based (line, column) of every value of a composed YAML document, by key path.

    A mapping key given twice is an error (PyYAML would silently keep the last).
    """
    import yaml

    found = {} if found is None else found
    found[key] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else repr(k.value)
            line = k.start_mark.line + 1
            if name in seen:
                raise ConfigError(f"{path}:{line}:{k.start_mark.column + 1}: "
                                  f"{_where(key)}: key {name!r} given twice "
                                  f"(first on line {seen[name]})")
            seen[name] = line
            _positions(v, path, (*key, name), found)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, path, (*key, i), found)
    return found


def _where(key: _Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


class _Places:
    """Turns a key path into ``FILE:LINE:COLUMN: where: message`` errors."""

    def __init__(self, path: Path, positions: dict[_Key, tuple[int, int]]) -> None:
        self.path = path
        self.positions = positions

    def fail(self, key: _Key, message: str, where: str | None = None) -> ConfigError:
        """The error for ``key`` (or its nearest parent present in the file)."""
        at = key
        while at and at not in self.positions:
            at = at[:-1]
        line, column = self.positions.get(at, (1, 1))
        return ConfigError(f"{self.path}:{line}:{column}: {where or _where(key)}: {message}")


#: Enumerated parameters of the templates and the values each accepts.
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {
    "method": METHODS,
    "measure": PROPORTION_MEASURES,
    "arm_role": ("", *ARM_ROLES),
    "figure_measure": TWO_GROUP_MEASURES,
    "pool_adjusted": ("no", "yes"),
    "test": TESTS,
}
#: Parameters whose values come from the registry: parameter -> vocabulary (see
#: :func:`registry_vocabulary`); ``(template, parameter)`` overrides the parameter alone.
REGISTRY_PARAMETERS: dict[str | tuple[str, str], str] = {
    "outcome": "outcomes",
    "outcomes": "outcomes",
    "conversion_outcome": "outcomes",
    ("hazard_ratios", "outcome"): "effect outcomes",
    "subgroup_by": "study columns",
    "study_id": "studies",
    "keys": "subgroup keys",
}


def registry_vocabulary(data_dir: Path) -> dict[str, tuple[str, ...]]:
    """What analysis parameters may name in the registry of ``data_dir``: the outcomes of
    ``outcome_types.csv``, the outcomes of ``effects.csv``, the columns of ``studies.csv``
    (for subgroups; empty for none), the study ids, and the keys of ``subgroup`` values.
    Files that are missing or unreadable give no vocabulary (``evidence validate`` reports
    them); nothing is written."""
    from evidence.registry.csvfile import display_path, read_table
    from evidence.registry.rules import parse_subgroup

    def table(name: str):
        path = data_dir / name
        return read_table(path, display_path(data_dir, name))[0] if path.is_file() else None

    vocab: dict[str, tuple[str, ...]] = {}
    types, effects, studies, outcomes = (table(n) for n in (
        "outcome_types.csv", "effects.csv", "studies.csv", "outcomes.csv"))
    if types is not None and "outcome" in types.header:
        vocab["outcomes"] = tuple(r.cells["outcome"] for r in types.records)
    if effects is not None and "outcome" in effects.header:
        vocab["effect outcomes"] = tuple(dict.fromkeys(r.cells["outcome"]
                                                       for r in effects.records))
    if studies is not None:
        vocab["study columns"] = ("", *studies.header)
        if "study_id" in studies.header:
            vocab["studies"] = tuple(r.cells["study_id"] for r in studies.records)
    if outcomes is not None and "subgroup" in outcomes.header:
        keys: dict[str, None] = {}
        for r in outcomes.records:
            try:
                keys.update(dict.fromkeys(parse_subgroup(r.cells["subgroup"])))
            except ValueError:
                continue  # a malformed subgroup is the validator's to report
        vocab["subgroup keys"] = tuple(keys)
    return vocab


def _check_choices(analysis: Analysis, vocab: dict[str, tuple[str, ...]], fail: Any,
                   at: _Key, where: str, defaulted: frozenset[str] = frozenset()) -> None:
    """Every enumerated parameter of ``analysis`` names an allowed value (a value taken
    from the ``defaults`` section is reported there)."""
    for name, value in analysis.parameters.items():
        key = (("defaults", analysis.template, name) if name in defaulted
               else (*at, "parameters", name))
        if name in PARAMETER_CHOICES:
            allowed, what = PARAMETER_CHOICES[name], "one of"
        else:
            source = REGISTRY_PARAMETERS.get((analysis.template, name),
                                             REGISTRY_PARAMETERS.get(name))
            if source is None or source not in vocab:
                continue
            allowed, what = vocab[source], f"one of the registry's {source}:"
        for item in value if isinstance(value, list) else [value]:
            if item in allowed:
                continue
            import difflib

            close = difflib.get_close_matches(str(item), [a for a in allowed if a], n=1,
                                              cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            shown = ", ".join(repr(a) if a == "" else a for a in allowed)
            raise fail(key, f"parameter {name!r}: {item!r} is not {what} {shown}{hint}", where)


def load_config(root: str | Path = ".", path: str | Path | None = None, *,
                data_dir: str | Path | None = None) -> BookConfig:
    """Load and validate ``analyses.yml``.

    Parameters
    ----------
    root : path
        The book root (repository root).
    path : path, optional
        The config file; default ``ROOT/analyses.yml``.
    data_dir : path, optional
        The registry the parameters are checked against (outcomes, study columns, study
        ids, subgroup keys); default ``ROOT/data``.

    Raises
    ------
    ConfigError
        Invalid YAML, unknown keys, unknown template, duplicate id, a missing
        required parameter, an unknown parameter, a parameter of the wrong type or
        with a value outside its vocabulary (:data:`PARAMETER_CHOICES`,
        :data:`REGISTRY_PARAMETERS`), a chapter file that does not exist, an ``after``
        naming an unknown id or forming a cycle.
    """
    import yaml

    root = Path(root).resolve()
    path = Path(path) if path is not None else root / "analyses.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8: byte "
                          f"0x{exc.object[exc.start]:02X}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from exc
    places = _Places(path, _positions(node, path) if node is not None else {})
    fail = places.fail
    if not isinstance(raw, dict):
        raise fail((), "must be a mapping with keys 'root', 'toc', 'analyses' "
                       "(and optionally 'defaults')")
    unknown = set(raw) - {"root", "toc", "defaults", "analyses"}
    if unknown:
        raise fail((sorted(unknown)[0],), f"unknown keys {sorted(unknown)}", "top level")

    def chapter_file(name: Any, key: _Key) -> str:
        if not isinstance(name, str) or not name:
            raise fail(key, "chapter must be a file path without extension")
        if name.startswith("analysis:"):
            return name
        if not any((root / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")):
            raise fail(key, f"chapter file {name}.md not found")
        return name

    root_page = chapter_file(raw.get("root"), ("root",))
    parts: list[Part] = []
    toc = raw.get("toc")
    if not isinstance(toc, list) or not toc:
        raise fail(("toc",), "must be a non-empty list of parts")
    for i, part in enumerate(toc):
        if not isinstance(part, dict) or set(part) != {"caption", "chapters"}:
            raise fail(("toc", i), "needs exactly 'caption' and 'chapters'")
        if not isinstance(part["chapters"], list):
            raise fail(("toc", i, "chapters"), "must be a list of chapter files")
        chapters = tuple(chapter_file(c, ("toc", i, "chapters", j))
                         for j, c in enumerate(part["chapters"]))
        parts.append(Part(str(part["caption"]), chapters))
    all_chapters = {c for p in parts for c in p.chapters}

    data = Path(data_dir) if data_dir is not None else root / DATA_DIR
    vocab = registry_vocabulary(data if data.is_absolute() else root / data)
    templates: dict[str, dict[str, TemplateParameter]] = {}

    def template_spec(tname: Any, key: _Key, where: str) -> dict[str, TemplateParameter]:
        if not isinstance(tname, str) or not (root / template_file(tname)).is_file():
            known = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
            raise fail(key, f"unknown template {tname!r}; known: {known}", where)
        if tname not in templates:
            templates[tname] = read_template_parameters(root / template_file(tname))
        return templates[tname]

    def check_parameters(params: dict[str, Any], spec: dict[str, TemplateParameter],
                         tname: str, key: _Key, where: str) -> None:
        for name, value in params.items():
            if name in RUNNER_PARAMETERS:
                raise fail((*key, name), f"parameter {name!r} is set by the runner", where)
            if name not in spec:
                raise fail((*key, name),
                           f"template {tname!r} has no parameter {name!r}; "
                           f"it has {sorted(set(spec) - set(RUNNER_PARAMETERS))}", where)
            if not spec[name].accepts(value):
                raise fail((*key, name),
                           f"parameter {name!r} must be {spec[name].annotation}, "
                           f"got {type(value).__name__} {value!r}", where)

    defaults: dict[str, dict[str, Any]] = {}
    raw_defaults = raw.get("defaults") or {}
    if not isinstance(raw_defaults, dict):
        raise fail(("defaults",), "must be a mapping: template -> parameters")
    for tname, params in raw_defaults.items():
        where = f"defaults.{tname}"
        spec = template_spec(tname, ("defaults", tname), where)
        if not isinstance(params, dict):
            raise fail(("defaults", tname), "must be a mapping of parameters", where)
        check_parameters(params, spec, tname, ("defaults", tname), where)
        defaults[tname] = dict(params)
    entries = raw.get("analyses")
    if not isinstance(entries, list):
        raise fail(("analyses",), "must be a list")
    analyses: list[Analysis] = []
    seen: set[str] = set()
    allowed = {"id", "template", "title", "chapter", "parameters", "after"}
    direct = {c.split(":", 1)[1] for c in all_chapters if c.startswith("analysis:")}
    for i, entry in enumerate(entries):
        at: _Key = ("analyses", i)
        if not isinstance(entry, dict):
            raise fail(at, "must be a mapping")
        aid = entry.get("id")
        if not isinstance(aid, str) or not _ID_RE.match(aid):
            raise fail((*at, "id"), f"id {aid!r} must match {_ID_RE.pattern}", _where(at))
        where = f"{_where(at)} (id {aid})"
        extra = set(entry) - allowed
        if extra:
            raise fail((*at, sorted(extra)[0]), f"unknown keys {sorted(extra)}", where)
        if aid in seen:
            raise fail((*at, "id"), f"duplicate id {aid!r}", where)
        seen.add(aid)
        for key in ("template", "title"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise fail((*at, key), f"'{key}' is required and must be a string", where)
        chapter = entry.get("chapter")
        if (chapter is None) == (aid not in direct):
            raise fail((*at, "chapter"), "an analysis is either listed in the toc as "
                        f"'analysis:{aid}' or has a 'chapter' it belongs under (exactly one)",
                       where)
        tname = entry["template"]
        spec = template_spec(tname, (*at, "template"), where)
        own = entry.get("parameters") or {}
        if not isinstance(own, dict):
            raise fail((*at, "parameters"), "'parameters' must be a mapping", where)
        check_parameters(own, spec, tname, (*at, "parameters"), where)
        params = {**defaults.get(tname, {}), **own}
        defaulted = frozenset(set(defaults.get(tname, {})) - set(own))
        for name, p in spec.items():
            if p.required and name not in params:
                raise fail((*at, "parameters"), f"template {tname!r} requires parameter "
                           f"{name!r} ({p.comment})", where)
        if chapter is not None and (chapter not in all_chapters
                                    or chapter.startswith("analysis:")):
            raise fail((*at, "chapter"),
                       f"chapter {chapter!r} is not a hand-written chapter of the toc", where)
        after = entry.get("after") or []
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise fail((*at, "after"), "'after' must be a list of analysis ids", where)
        analysis = Analysis(aid, tname, entry["title"].strip(), chapter, dict(params),
                            tuple(after))
        _check_choices(analysis, vocab, fail, at, where, defaulted)
        analyses.append(analysis)
    ids = {a.id for a in analyses}
    missing = sorted(direct - ids)
    if missing:
        raise fail(("toc",), f"lists unknown analyses {missing}")
    for i, a in enumerate(analyses):
        bad = [x for x in a.after if x not in ids]
        if bad:
            raise fail(("analyses", i, "after"), f"'after' names unknown ids {bad}",
                       f"analyses[{i}] (id {a.id})")
    config = BookConfig(root, path, root_page, tuple(parts), tuple(analyses), templates,
                        defaults)
    _check_acyclic(config, places)
    return config


def _check_acyclic(config: BookConfig, places: _Places) -> None:
    try:
        graphlib.TopologicalSorter({a.id: a.after for a in config.analyses}).prepare()
    except graphlib.CycleError as exc:
        cycle = sorted(set(exc.args[1]))
        raise places.fail(("analyses",), f"'after' forms a cycle among {cycle}") from None


def render_toc(config: BookConfig) -> str:
    """The ``_toc.yml`` text for a config: parts, chapters, and each chapter's
    analyses as sections, in ``analyses.yml`` order."""
    out = [
        "# GENERATED from analyses.yml by `evidence toc`; do not edit by hand.",
        "format: jb-book",
        f"root: {config.root_page}",
        "parts:",
    ]
    for part in config.parts:
        out.append(f"  - caption: {json.dumps(part.caption)}")
        out.append("    chapters:")
        for chapter in part.chapters:
            if chapter.startswith("analysis:"):
                out.append(f"      - file: book/analyses/{chapter.split(':', 1)[1]}")
                continue
            out.append(f"      - file: {chapter}")
            sections = [a for a in config.analyses if a.chapter == chapter]
            if sections:
                out.append("        sections:")
                out.extend(f"          - file: book/analyses/{a.id}" for a in sections)
    return "\n".join(out) + "\n"
