"""The package layout holds (docs/layout.md): one door to Elasticsearch, no cycles, no
development tools in the core, modules of a readable size, test modules that import no other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "newsmon"
MAX_LINES = 720  # "about 700"
# May import dev/: the command line, and dev itself.
DEV_USERS = {"newsmon.cli"}
ES_PACKAGES = ("elasticsearch", "elastic_transport")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, module: str) -> Iterator[tuple[str, bool]]:
    """(imported module, at top level) for every import in ``path``; relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name, id(node) in top
            for alias in node.names:  # "from . import x" names a module too
                yield f"{name}.{alias.name}", id(node) in top


def _internal(name: str, modules: dict[str, Path]) -> str | None:
    """The newsmon module ``name`` refers to (a module, or the module holding a name)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph(*, top_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, top in _imports(path, module):
            if top_level_only and not top:
                continue
            if (target := _internal(name, modules)) and target != module:
                graph[module].add(target)
    return graph


def _is_type_checking_only(path: Path, module: str) -> set[str]:
    """Modules imported only under ``if TYPE_CHECKING:`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.add(inner.module)
    return found


def test_only_the_store_imports_elasticsearch() -> None:
    offenders = [
        f"{module}: {name}"
        for module, path in _modules().items()
        if not module.startswith("newsmon.store")
        for name, _top in _imports(path, module)
        if name.split(".")[0] in ES_PACKAGES
    ]
    assert offenders == []


def test_no_module_is_longer_than_about_700_lines() -> None:
    long = {
        module: n
        for module, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    """Counting the imports made when a module loads (top level) and those inside functions,
    but not a package's own ``__init__`` re-exports of its modules."""
    graph = _graph(top_level_only=False)
    for module, path in _modules().items():
        graph[module] -= {_internal(m, _modules()) for m in _is_type_checking_only(path, module)}
        if path.name == "__init__.py":
            graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    for module in graph:
        # importing newsmon.x.y loads newsmon.x first: an edge, but never a cycle of its own
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    assert _cycle(graph) is None


def test_the_core_never_imports_dev() -> None:
    offenders = sorted(
        f"{module} -> {target}"
        for module, targets in _graph(top_level_only=False).items()
        if not module.startswith("newsmon.dev") and module not in DEV_USERS
        for target in targets
        if target.startswith("newsmon.dev")
    )
    assert offenders == []


def _repo_imports(directory: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((REPO / directory).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                yield path, ("." * node.level) + (node.module or "")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name


def test_no_test_module_imports_another_and_bench_imports_no_test() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path, name in _repo_imports("tests")
        if name.lstrip(".").split(".")[-1].startswith("test_")
        or name.lstrip(".") == "conftest"
        or name.startswith("tests.test_")
    ]
    offenders += [
        f"{path.relative_to(REPO)}: {name}"
        for path, name in _repo_imports("bench")
        if name == "tests" or name.startswith("tests.")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    source: dict[str, set[str]], expected: list[str] | None
) -> None:
    assert _cycle(source) == expected
