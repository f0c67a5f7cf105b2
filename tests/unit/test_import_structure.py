"""The import graph of infra/ and policies/: no cycle, and components that do not reach into each other.

Every import counts, inside functions too (only ``if TYPE_CHECKING:`` blocks are left out): an import
hidden in a function is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("infra", "policies")
COMPONENTS = "infra.components"
#: Building blocks every component may use.
SHARED = {"infra.components.pod_security", "infra.components.labels", "infra.components"}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_lines(tree)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                found = resolve(target)
                if found and found != name and not name.startswith(found + "."):
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _component_of(module: str) -> str | None:
    """The component a module belongs to: the first name below infra.components (a module or a package)."""
    parts = module.split(".")
    return ".".join(parts[:3]) if module.startswith(COMPONENTS + ".") and len(parts) > 2 else None


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_components_import_neither_the_platform_nor_each_other() -> None:
    graph = _graph()
    wrong = []
    for module, targets in graph.items():
        own = _component_of(module)
        if own is None:
            continue
        for target in targets:
            if target == "infra.platform":
                wrong.append(f"{module} imports the composition root")
            elif target not in SHARED and (other := _component_of(target)) is not None and other != own:
                wrong.append(f"{module} imports {target}, another component")
    assert wrong == []


def test_config_does_not_import_components() -> None:
    graph = _graph()
    assert [
        (module, target)
        for module, targets in graph.items()
        if module.startswith("infra.config")
        for target in targets
        if target.startswith(COMPONENTS)
    ] == []


def test_the_checks_see_a_planted_cycle_and_a_sibling_import() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert _cycles(graph) == [["a", "b"]]
    assert _component_of("infra.components.model_server.secrets") == "infra.components.model_server"
    assert _component_of("infra.components.entry_point") == "infra.components.entry_point"
    assert _component_of("infra.platform") is None
