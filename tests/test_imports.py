"""The shape of the package: data flows one way, so no module imports one that imports it back.

Imports under `if TYPE_CHECKING:` count too: a cycle a type checker needs is still a cycle a
reader has to hold in mind.

And what importing costs: `import sessionward` loads none of its modules, each public name
being imported from its module when first used, so an app never imports what it does not use.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sessionward

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


# `import sessionward` loads none of its modules (PEP 562): what an app does not use, it never
# imports. These are the heavy ones, each several to hundreds of milliseconds to import.
HEAVY = ["cryptography", "fastapi", "jwt", "opentelemetry", "redis", "ua_parser", "user_agents"]


def fresh_interpreter(code: str) -> Any:
    """What `code` prints as JSON on its last line, run in a new interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = "import json, sys, sessionward; print(json.dumps(sorted(sys.modules)))"
    loaded = fresh_interpreter(code)
    assert [name for name in loaded if name.startswith("sessionward")] == ["sessionward"]
    assert [name for name in HEAVY if name in loaded] == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import json, sessionward\n"
        "missing = [n for n in sessionward.__all__ if n not in dir(sessionward)]\n"
        "exec('from sessionward import ' + ', '.join(sessionward.__all__))\n"
        "found = {n: getattr(sessionward, n).__module__ for n in sessionward.__all__}\n"
        "print(json.dumps([missing, found, sessionward.__version__]))"
    )
    missing, found, version = fresh_interpreter(code)
    assert missing == []
    assert set(found) == set(sessionward.__all__)
    assert all(module.startswith("sessionward.") for module in found.values())
    assert version == sessionward.__version__


def test_a_cookie_app_on_a_memory_store_never_imports_jwt_or_redis() -> None:
    """The middleware with its defaults: no bearer tokens, the embedded store, no routes."""
    code = (
        "import json, sys\n"
        "from sessionward import SessionMiddleware, get_session, login, logout\n"
        "SessionMiddleware(lambda *a: None, secret_keys=['k' * 40])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = fresh_interpreter(code)
    assert [name for name in ["cryptography", "fastapi", "jwt", "redis"] if name in loaded] == []
    assert "sessionward.bearer" not in loaded
    assert "sessionward.routes" not in loaded


def test_the_lazy_names_are_the_type_checkers_names() -> None:
    """`sessionward._HOMES` (where `__getattr__` finds each name) and the imports under
    `if TYPE_CHECKING:` (what type checkers see) name the same module for every name."""
    seen: dict[str, str] = {}
    tree = ast.parse((SRC / "sessionward" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.level == 1:
                    for alias in statement.names:
                        seen[alias.name] = statement.module or ""
    assert seen == sessionward._HOMES
    assert sorted(seen) == sorted(sessionward.__all__)


def test_a_public_name_is_the_object_its_module_holds() -> None:
    for name, home in sessionward._HOMES.items():
        module = importlib.import_module(f"sessionward.{home}")
        assert getattr(sessionward, name) is getattr(module, name), name


def test_the_modules_once_imported_eagerly_are_still_attributes() -> None:
    code = (
        "import json, sessionward\n"
        "print(json.dumps([sessionward.devices.USER_AGENT_BACKEND,"
        " sessionward.stores.redis.__name__, sessionward.stores.RedisStore.__module__]))"
    )
    backend, redis_module, store_module = fresh_interpreter(code)
    assert backend in ("ua-parser-rs", "user-agents")
    assert redis_module == store_module == "sessionward.stores.redis"


def test_an_unknown_name_is_an_attribute_error() -> None:
    for module in (sessionward, sessionward.stores):
        assert not hasattr(module, "no_such_name")
