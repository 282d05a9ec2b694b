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
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RUNNER_PARAMETERS",
    "Analysis",
    "BookConfig",
    "ConfigError",
    "TemplateParameter",
    "load_config",
    "read_template_parameters",
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
        return f"book/analyses/{self.id}.ipynb"

    @property
    def result(self) -> str:
        """Path of the result JSON, relative to the book root."""
        return f"results/{self.id}.json"


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

    def get(self, analysis_id: str) -> Analysis:
        """The analysis with this id (``KeyError`` naming the known ids otherwise)."""
        for a in self.analyses:
            if a.id == analysis_id:
                return a
        known = ", ".join(a.id for a in self.analyses)
        raise KeyError(f"unknown analysis id {analysis_id!r}; known: {known}")

    def template_path(self, template: str) -> Path:
        """File of a template."""
        return self.root / "notebooks" / f"{template}.ipynb"

    def ordered(self) -> list[list[Analysis]]:
        """Analyses in dependency waves: each wave only needs earlier waves."""
        done: set[str] = set()
        pending = list(self.analyses)
        waves: list[list[Analysis]] = []
        while pending:
            wave = [a for a in pending if set(a.after) <= done]
            waves.append(wave)
            done |= {a.id for a in wave}
            pending = [a for a in pending if a.id not in done]
        return waves


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


def _fail(path: Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {message}")


def load_config(root: str | Path = ".", path: str | Path | None = None) -> BookConfig:
    """Load and validate ``analyses.yml``.

    Parameters
    ----------
    root : path
        The book root (repository root).
    path : path, optional
        The config file; default ``ROOT/analyses.yml``.

    Raises
    ------
    ConfigError
        Invalid YAML, unknown keys, unknown template, duplicate id, a missing
        required parameter, an unknown parameter, a parameter of the wrong type,
        a chapter file that does not exist, an ``after`` naming an unknown id or
        forming a cycle.
    """
    import yaml

    root = Path(root).resolve()
    path = Path(path) if path is not None else root / "analyses.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}: not valid YAML: {problem}") from exc
    if not isinstance(raw, dict):
        raise _fail(path, "top level", "must be a mapping with keys 'root', 'toc', 'analyses'")
    unknown = set(raw) - {"root", "toc", "analyses"}
    if unknown:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)}")

    def chapter_file(name: Any, where: str) -> str:
        if not isinstance(name, str) or not name:
            raise _fail(path, where, "chapter must be a file path without extension")
        if name.startswith("analysis:"):
            return name
        if not any((root / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")):
            raise _fail(path, where, f"chapter file {name}.md not found")
        return name

    root_page = chapter_file(raw.get("root"), "root")
    parts: list[Part] = []
    toc = raw.get("toc")
    if not isinstance(toc, list) or not toc:
        raise _fail(path, "toc", "must be a non-empty list of parts")
    for i, part in enumerate(toc):
        if not isinstance(part, dict) or set(part) != {"caption", "chapters"}:
            raise _fail(path, f"toc[{i}]", "needs exactly 'caption' and 'chapters'")
        chapters = tuple(chapter_file(c, f"toc[{i}].chapters") for c in part["chapters"])
        parts.append(Part(str(part["caption"]), chapters))
    all_chapters = {c for p in parts for c in p.chapters}

    entries = raw.get("analyses")
    if not isinstance(entries, list):
        raise _fail(path, "analyses", "must be a list")
    templates: dict[str, dict[str, TemplateParameter]] = {}
    analyses: list[Analysis] = []
    seen: set[str] = set()
    allowed = {"id", "template", "title", "chapter", "parameters", "after"}
    direct = {c.split(":", 1)[1] for c in all_chapters if c.startswith("analysis:")}
    for i, entry in enumerate(entries):
        where = f"analyses[{i}]"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be a mapping")
        aid = entry.get("id")
        if not isinstance(aid, str) or not _ID_RE.match(aid):
            raise _fail(path, where, f"id {aid!r} must match {_ID_RE.pattern}")
        where = f"analyses[{i}] (id {aid})"
        extra = set(entry) - allowed
        if extra:
            raise _fail(path, where, f"unknown keys {sorted(extra)}")
        if aid in seen:
            raise _fail(path, where, f"duplicate id {aid!r}")
        seen.add(aid)
        for key in ("template", "title"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise _fail(path, where, f"'{key}' is required and must be a string")
        chapter = entry.get("chapter")
        if (chapter is None) == (aid not in direct):
            raise _fail(path, where, "an analysis is either listed in the toc as "
                        f"'analysis:{aid}' or has a 'chapter' it belongs under (exactly one)")
        tname = entry["template"]
        if tname not in templates:
            tpath = root / "notebooks" / f"{tname}.ipynb"
            if not tpath.is_file():
                known = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
                raise _fail(path, where, f"unknown template {tname!r}; known: {known}")
            templates[tname] = read_template_parameters(tpath)
        spec = templates[tname]
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise _fail(path, where, "'parameters' must be a mapping")
        for name, value in params.items():
            if name in RUNNER_PARAMETERS:
                raise _fail(path, where, f"parameter {name!r} is set by the runner")
            if name not in spec:
                raise _fail(path, where, f"template {tname!r} has no parameter {name!r}; "
                            f"it has {sorted(set(spec) - set(RUNNER_PARAMETERS))}")
            if not spec[name].accepts(value):
                raise _fail(path, where, f"parameter {name!r} must be {spec[name].annotation}, "
                            f"got {type(value).__name__} {value!r}")
        for name, p in spec.items():
            if p.required and name not in params:
                raise _fail(path, where, f"template {tname!r} requires parameter {name!r} "
                            f"({p.comment})")
        if chapter is not None and (chapter not in all_chapters
                                    or chapter.startswith("analysis:")):
            raise _fail(path, where,
                        f"chapter {chapter!r} is not a hand-written chapter of the toc")
        after = entry.get("after") or []
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise _fail(path, where, "'after' must be a list of analysis ids")
        analyses.append(Analysis(aid, tname, entry["title"].strip(), chapter,
                                 dict(params), tuple(after)))
    ids = {a.id for a in analyses}
    missing = sorted(direct - ids)
    if missing:
        raise _fail(path, "toc", f"lists unknown analyses {missing}")
    for a in analyses:
        bad = [x for x in a.after if x not in ids]
        if bad:
            raise _fail(path, f"analysis {a.id}", f"'after' names unknown ids {bad}")
    config = BookConfig(root, path, root_page, tuple(parts), tuple(analyses), templates)
    _check_acyclic(config)
    return config


def _check_acyclic(config: BookConfig) -> None:
    done: set[str] = set()
    pending = {a.id: set(a.after) for a in config.analyses}
    while pending:
        ready = [i for i, deps in pending.items() if deps <= done]
        if not ready:
            raise _fail(config.path, "analyses", f"'after' forms a cycle among {sorted(pending)}")
        done |= set(ready)
        for i in ready:
            del pending[i]


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
