"""The package's modules import downward only: no cycle between them, counting the imports
inside functions (a lazy import that dodges a cycle at run time is still a cycle of the
design). Imports under ``if TYPE_CHECKING:`` do not count. Importing ``a.b.c`` from outside
``a.b`` first runs ``a.b``'s ``__init__``, so such an import also depends on the package
``a.b`` (not on the top-level package, the façade that every module's import passes)."""

from __future__ import annotations

import ast
from pathlib import Path

import vae_audio

ROOT = Path(vae_audio.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = ("vae_audio", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.dump(block.test)
        for node in ast.walk(block)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("vae_audio"):
                found.add(target)
                found |= _packages_entered(name, target)
    return found


def _packages_entered(importer: str, target: str) -> set[str]:
    """The packages between the top level and ``target`` whose ``__init__`` an import of
    ``target`` by ``importer`` runs: those that do not contain ``importer``."""
    parts = target.split(".")
    packages = (".".join(parts[:i]) for i in range(2, len(parts)))
    return {p for p in packages if importer != p and not importer.startswith(p + ".")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_lazy_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_an_import_of_a_submodule_enters_its_package():
    assert _packages_entered("vae_audio.neural_fca.inference", "vae_audio.separation.api") == {
        "vae_audio.separation"
    }
    assert _packages_entered("vae_audio.separation.fca", "vae_audio.separation.api") == set()
    assert _packages_entered("vae_audio.separation", "vae_audio.separation.api") == set()


def test_no_import_cycles_between_modules():
    mods = _modules()
    assert len(mods) > 100
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert "vae_audio.separation.covariance" in graph["vae_audio.separation.wiener"]
    assert _cycles(graph) == []
