"""The shape of the package: data flows one way, so no module imports one that imports it back.

Imports under `if TYPE_CHECKING:` count too: a cycle a type checker needs is still a cycle a
reader has to hold in mind.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports (from any position)."""
    files = {_module_name(path): path for path in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    graph[name].add(target if target in files else base)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
        graph[name] = {target for target in graph[name] if target in files and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            else:
                walk(target, [*path, target])

    for module in sorted(graph):
        walk(module, [module])
    return found


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    # A package's __init__ re-exports its modules; a module importing its own package's
    # __init__ (`from .stores import X` inside stores/) is not a cycle of design.
    for name in graph:
        graph[name] -= {other for other in graph[name] if name.startswith(other + ".")}
    assert cycles(graph) == []


def test_nothing_reaches_back_into_the_middleware() -> None:
    # Only what sits on top of it: the package's front door, and the test helpers, which
    # find an app's middleware to sign a test client in through it.
    graph = import_graph()
    importers = {name for name, targets in graph.items() if "sessionward.middleware" in targets}
    assert importers == {"sessionward", "sessionward.testing"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}})[0] == ["a", "b", "c", "a"]
