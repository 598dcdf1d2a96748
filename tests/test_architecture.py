"""The folders are the architecture: no import cycle (module-level or inside functions), no streamlit in the library,
no torch in the UI. Imports are read with ``ast`` from the source, so a lazy import inside a function counts too.

Edges: ``import a.b`` and ``from a import b`` point at module ``a.b`` when it exists, else at ``a``. The implicit
import of a module's parent package is not an edge (every package whose ``__init__`` re-exports its submodules
would otherwise be a cycle). Imports under ``if TYPE_CHECKING:`` never run and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xai_core", "ui", "views")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")] + [ROOT / "app.py"]
    return {_module_name(p): p for p in files}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports (absolute names), anywhere in the file except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                out.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod)
    return out


def _with_packages(name: str, imported: set[str], known: set[str]) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too: those packages are edges as well, except the
    importer's own ancestors (already being initialised when it runs; an explicit ``from . import x`` of its own
    package is still an edge: that package's ``__init__`` importing the module back is a loop). So a module that
    imports a sibling package whose ``__init__`` imports the module back is a loop the check sees."""
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    implied = {".".join(m.split(".")[:i]) for m in imported for i in range(1, m.count(".") + 1)} - own
    return {m for m in imported | implied if m in known and m != name}


def graph() -> dict[str, set[str]]:
    src = _sources()
    known = set(src)
    return {name: _with_packages(name, imports_of(name, path, known), known) for name, path in src.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(g[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve(tmp_path: Path) -> None:
    known = {"xai_core.explainers.common", "xai_core.engine", "xai_core.explainers", "xai_core"}
    f = tmp_path / "gradcam.py"
    f.write_text("from ..engine import select\nfrom .common import LAYER\nfrom . import common\n"
                 "def f():\n    from ..engine import logits\n"
                 "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..workbench import Workbench\n")
    got = imports_of("xai_core.explainers.gradcam", f, known)
    assert {"xai_core.engine", "xai_core.explainers.common"} <= got
    assert "xai_core.workbench" not in got


def test_no_import_cycles() -> None:
    g = graph()
    assert len(g) > 60 and "xai_core.workbench" in g
    found = cycles(g)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_library_never_imports_streamlit() -> None:
    src = _sources()
    bad = [n for n, p in src.items() if n.startswith("xai_core")
           and any(m.split(".")[0] == "streamlit" for m in imports_of(n, p, set(src)))]
    assert not bad, f"streamlit imported in {bad}"


def test_ui_never_imports_torch() -> None:
    src = _sources()
    bad = [n for n, p in src.items() if n.split(".")[0] in ("ui", "views", "app")
           and any(m.split(".")[0] == "torch" for m in imports_of(n, p, set(src)))]
    assert not bad, f"torch imported in {bad}"


def test_ui_never_reaches_the_engine() -> None:
    """ui/ and views/ reach the library through its public face and the Workbench: device helpers from
    xai_core.device, never the engine (imported, or as an attribute of the package)."""
    src = _sources()
    pages = {n: p for n, p in src.items() if n.split(".")[0] in ("ui", "views", "app")}
    bad = [n for n, p in pages.items() if "xai_core.engine" in imports_of(n, p, set(src))
           or ".engine." in p.read_text().replace("xai_core.engine", ".engine.")]
    assert not bad, f"the engine is reached from {bad}"


def test_models_is_a_leaf() -> None:
    """models/ sits below explainers, the registry and the analyses: they register with it, it imports none of them."""
    src = _sources()
    above = ("xai_core.explainers", "xai_core.registry", "xai_core.lab", "xai_core.metrics", "xai_core.sanity",
             "xai_core.capability", "xai_core.workbench", "xai_core.batch", "xai_core.lessons", "xai_core.concepts")
    bad = {n: sorted(m for m in imports_of(n, p, set(src)) if m.startswith(above))
           for n, p in src.items() if n.startswith("xai_core.models")}
    assert not {n: m for n, m in bad.items() if m}, bad


def test_no_function_level_imports_of_the_library() -> None:
    """Inside xai_core/, every import of the library itself is at module level, where the cycle check sees it plainly.
    Function-level imports are left only for optional or heavy third-party packages (ray, transformers, timm, zennit,
    onnx, imagenet_w, ...), imported when a feature that needs them runs."""
    bad = []
    for name, path in _sources().items():
        if not name.startswith("xai_core"):
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("xai_core")):
                        bad.append(f"{name}:{node.lineno}")
                    elif isinstance(node, ast.Import) and any(a.name.startswith("xai_core") for a in node.names):
                        bad.append(f"{name}:{node.lineno}")
    assert not bad, f"function-level imports of xai_core in {bad}"
