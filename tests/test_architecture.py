"""The four wings of ``src/evidence`` and their rules (``src/evidence/README.md``).

An AST scan of every module, top-level and function-level imports alike (lazy imports
and ``TYPE_CHECKING`` imports count: a type-only import still ties two rooms together):

* imports run one way: ``stats`` and ``registry`` import nothing from the other wings,
  ``book`` imports ``stats`` and ``registry``, ``pipeline`` may import everything;
* each wing's outside dependencies are fixed (the statistics are numpy and scipy only;
  only the pipeline knows papermill, Jupyter Book, nbformat and the command line);
* a name starting with ``_`` never crosses a module boundary, except into a private
  module (``_x.py``) of the same wing; nothing outside a wing imports its private modules;
* the module graph has no circle, and no module is longer than 700 lines.

The checks run on the installed sources and, to show that they can fail, on a copy with
one upward import added.
"""

from __future__ import annotations

import ast
import graphlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "evidence"
WINGS = ("stats", "registry", "book", "pipeline")
#: which wings each wing may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "stats": {"stats"},
    "registry": {"registry"},
    "book": {"book", "stats", "registry"},
    "pipeline": {"pipeline", "book", "stats", "registry"},
    "": set(),  # evidence/__init__.py imports its wings lazily, by name
}
STDLIB_ANY = {"__future__", "collections", "dataclasses", "functools", "itertools", "math",
              "importlib",
              "typing", "re", "hashlib", "json", "enum", "bisect", "heapq", "operator"}
#: outside packages (and the stdlib modules that reach the outside) per wing
THIRD_PARTY: dict[str, set[str]] = {
    "stats": {"numpy", "scipy"},
    "registry": {"numpy", "pandas", "csv", "os", "pathlib", "pickle", "sys", "tempfile",
                 "unicodedata", "datetime", "html", "urllib", "difflib"},
    "book": {"numpy", "pandas", "matplotlib", "IPython", "html", "io", "pathlib", "difflib",
             "statistics", "textwrap", "urllib", "unicodedata", "datetime", "string"},
    "pipeline": None,  # type: ignore[dict-item]  # anything
    "": {"importlib"},
}
MAX_LINES = 700


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. evidence.stats.pooling
    path: Path
    wing: str

    @property
    def private(self) -> bool:
        return self.name.rsplit(".", 1)[-1].startswith("_") and not self.name.endswith(
            "__init__")


def modules(package: Path) -> dict[str, Module]:
    out = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        wing = parts[1] if len(parts) > 1 else ""
        out[name] = Module(name, path, wing)
    return out


def _resolve(name: str, mods: dict[str, Module]) -> str | None:
    """The module a dotted import names (``evidence.stats.pooling.rma`` → its module)."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def violations(package: Path) -> list[str]:
    """Every breach of the rules above, as ``module: what``."""
    mods = modules(package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    found: list[str] = []
    for mod in mods.values():
        text = mod.path.read_text(encoding="utf-8")
        n_lines = text.count("\n")
        if n_lines > MAX_LINES:
            found.append(f"{mod.name}: {n_lines} lines (more than {MAX_LINES})")
        tree = ast.parse(text)
        aliases: dict[str, str] = {}  # local name -> evidence module it is bound to
        for node in ast.walk(tree):
            targets: list[tuple[str, list[str]]] = []
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("evidence"):
                        targets.append((a.name, []))
                        aliases[(a.asname or a.name).split(".")[0] if not a.asname
                                else a.asname] = a.name
                    else:
                        _outside(mod, a.name, found)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    found.append(f"{mod.name}: relative import (use evidence.<wing>...)")
                    continue
                base = node.module or ""
                if not base.startswith("evidence"):
                    _outside(mod, base, found)
                    continue
                for a in node.names:
                    full = f"{base}.{a.name}"
                    if full in mods:  # a submodule
                        targets.append((full, []))
                        aliases[a.asname or a.name] = full
                    else:
                        targets.append((base, [a.name]))
            for target, names in targets:
                resolved = _resolve(target, mods)
                if resolved is None:
                    found.append(f"{mod.name}: imports unknown module {target}")
                    continue
                if resolved == mod.name:
                    continue
                graph[mod.name].add(resolved)
                dest = mods[resolved]
                if dest.wing and dest.wing not in ALLOWED[mod.wing]:
                    found.append(f"{mod.name}: imports {resolved} (wing '{mod.wing}' may "
                                 f"not import wing '{dest.wing}')")
                if dest.private and not (mod.wing == dest.wing):
                    found.append(f"{mod.name}: imports private module {resolved} of "
                                 f"another wing")
                for name in names:
                    if name.startswith("_") and name != "__version__" and not (
                            mod.private and mod.wing == dest.wing):
                        found.append(f"{mod.name}: imports private name {name} from "
                                     f"{resolved}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                target = aliases[node.value.id]
                dest = mods.get(_resolve(target, mods) or "")
                if dest is not None and dest.name != mod.name and not (
                        mod.private and dest.wing == mod.wing):
                    found.append(f"{mod.name}: uses private name {node.value.id}."
                                 f"{node.attr} of {dest.name}")
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        found.append(f"import circle: {' -> '.join(exc.args[1])}")
    return sorted(set(found))


def _outside(mod: Module, name: str, found: list[str]) -> None:
    top = name.split(".")[0]
    allowed = THIRD_PARTY[mod.wing]
    if allowed is None or top in STDLIB_ANY or top in allowed:
        return
    found.append(f"{mod.name}: imports {top} (wing '{mod.wing or 'evidence'}' may use "
                 f"{', '.join(sorted(allowed))} beside the basic standard library)")


def test_the_four_wings_exist():
    for wing in WINGS:
        assert (PACKAGE / wing / "__init__.py").is_file()
    flat = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert flat == [], f"modules outside the four wings: {flat}"


def test_the_package_keeps_the_rules():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("stats/pooling.py", "from evidence.pipeline import config", "may not import wing"),
    ("stats/effects.py", "import pandas", "imports pandas"),
    ("registry/store.py", "from evidence.book import names", "may not import wing"),
    ("book/names.py", "from evidence.pipeline.layout import RESULTS_DIR",
     "may not import wing"),
    ("book/names.py", "from evidence.stats.pooling import _Fit", "private name _Fit"),
    ("book/names.py", "import papermill", "imports papermill"),
])
def test_a_breach_is_found(tmp_path, module, line, expected):
    copy = tmp_path / "evidence"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    found = violations(copy)
    assert any(expected in v and v.startswith("evidence." + module[:-3].replace("/", "."))
               for v in found), found


def test_a_circle_and_a_long_module_are_found(tmp_path):
    copy = tmp_path / "evidence"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "stats" / "a.py").write_text("from evidence.stats import b\n")
    (copy / "stats" / "b.py").write_text("from evidence.stats import a\n" + "x = 1\n" * 701)
    found = violations(copy)
    assert any(v.startswith("import circle") for v in found), found
    assert any(v.startswith("evidence.stats.b: 702 lines") for v in found), found
