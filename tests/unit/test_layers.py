"""The packages form layers: each imports only its own layer and those below, and no module
imports itself back (directly or through others).

Read from the source with ``ast`` (nothing is imported). Every import counts, also one inside a
function or under ``TYPE_CHECKING``: a module that needs another's types depends on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Bottom to top. A module belongs to the longest layer name it starts with.
LAYERS: tuple[str, ...] = (
    "schemas",  # the contract files (JSON Schema, AsyncAPI)
    "events",  # the event contract and the shared vocabulary (roles, statuses, modes, DLQ headers)
    "base",  # settings, logging, tracing, serving, health and metrics shared by the services
    "producers",  # the SDK and the client commands
    "auth",  # the auth service and the token verifier the services use
    "storage_workers",  # the storage elements' workers
    "consumers",  # the projector, the index and its queries
    "operations",  # dead letters, redrive, lag
    "notifications",  # accounts' webhooks, the delivery queue and the dispatcher
    "facade",  # the HTTP facade and the console
    "artstore.stack",  # the local stack's servers
    "artstore.dev",  # `artstore dev`: every service on one machine
    "artstore",  # the `artstore` command
)

PACKAGES = sorted({layer.split(".")[0] for layer in LAYERS})


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.relative_to(ROOT).parts:
                continue  # alembic's scripts are loaded by alembic, not imported
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                targets.append(submodule if submodule in known else origin)
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield Import(name, target, node.lineno)


def layer_of(module: str) -> int:
    matches = [
        index
        for index, layer in enumerate(LAYERS)
        if module == layer or module.startswith(layer + ".")
    ]
    assert matches, f"{module} is in no layer: add its package to LAYERS"
    return max(matches, key=lambda index: len(LAYERS[index]))


def all_imports() -> list[Import]:
    known = modules()
    return [found for name, path in known.items() for found in imports_of(name, path, known)]


def test_every_package_is_in_a_layer_and_none_imports_a_layer_above_it() -> None:
    upward = [
        f"{found.source}:{found.line} imports {found.target} "
        f"({LAYERS[layer_of(found.source)]} is below {LAYERS[layer_of(found.target)]})"
        for found in all_imports()
        if layer_of(found.target) > layer_of(found.source)
    ]
    assert not upward, "\n".join(upward)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for found in all_imports():
        # Importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is
        # inside them already (then they are being imported).
        parts = found.target.split(".")
        for end in range(1, len(parts) + 1):
            target = ".".join(parts[:end])
            if target not in known or target == found.source:
                continue
            if end < len(parts) and found.source.startswith(target + "."):
                continue
            graph[found.source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    found = cycles(import_graph())
    assert not found, "\n".join(" <-> ".join(cycle) for cycle in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_a_module_is_in_its_longest_layer() -> None:
    assert LAYERS[layer_of("artstore.stack.tansu")] == "artstore.stack"
    assert LAYERS[layer_of("artstore.cli")] == "artstore"
    assert LAYERS[layer_of("events.models.files")] == "events"
