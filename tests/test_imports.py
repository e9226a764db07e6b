"""No import circles in ``arbitrage``: every module's imports, read with ``ast``, form a graph without cycles.

An edge is what a module names: ``import a.b`` and ``from a import b`` (``a.b`` when ``b`` is a
module, else ``a``), relative imports resolved, imports inside functions included. Imports under
``if TYPE_CHECKING:`` are left out (they never run). The parent packages Python imports on the way
to a module are not edges: ``arbitrage.x.y`` importing ``arbitrage.x.z`` is not a circle with
``arbitrage/x/__init__.py`` unless one of them names the other.
"""

from __future__ import annotations

import ast
import collections.abc as c
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "arbitrage"

Edges = dict[str, dict[str, int]]  # module -> imported module -> line of the first such import


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under ``root``."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> c.Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth; ``if TYPE_CHECKING:`` bodies skipped."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool,
             modules: c.Container[str]) -> c.Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            dotted = alias.name
            while dotted and dotted not in modules:  # ``import a.b.c`` names the deepest module found
                dotted = dotted.rpartition(".")[0]
            if dotted:
                yield dotted
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        anchor = package[:len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            yield sub
        elif base in modules:
            yield base


def import_graph(files: c.Mapping[str, Path]) -> Edges:
    """Module -> the package modules it imports (with the line of each first import)."""
    graph: Edges = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: dict[str, int] = {}
        for node in _import_nodes(tree):
            for target in _targets(node, name, path.name == "__init__.py", files):
                if target != name:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def circles(graph: Edges) -> list[list[str]]:
    """One shortest circle through each strongly connected group of modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_shortest_circle(graph, group) for group in groups)


def _shortest_circle(graph: Edges, group: set[str]) -> list[str]:
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    return [*paths[v], start]
                if w in group and w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle in strongly connected group {sorted(group)}")


def describe(circle: list[str], graph: Edges, files: c.Mapping[str, Path],
             root: Path = PACKAGE.parent) -> str:
    """``a (a.py:3) -> b (b.py:10) -> a``: where each module imports the next."""
    steps = [f"{a} ({files[a].relative_to(root)}:{graph[a][b]})" for a, b in itertools.pairwise(circle)]
    return " -> ".join([*steps, circle[-1]])


def test_the_package_has_no_import_circle() -> None:
    files = module_files()
    graph = import_graph(files)
    found = [describe(circle, graph, files) for circle in circles(graph)]
    assert not found, "import circles:\n" + "\n".join(found)


# -- the walker itself, on small packages written here ------------------------------------------


def write_package(root: Path, sources: dict[str, str]) -> dict[str, Path]:
    for rel, text in sources.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(root / "pkg")


def test_relative_function_level_and_from_imports_are_edges_and_type_checking_ones_are_not(
    tmp_path: Path,
) -> None:
    files = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "import typing as t\nif t.TYPE_CHECKING:\n    from pkg import b\nfrom . import c\n",
        "b.py": "def f():\n    from .sub.d import x\n",
        "c.py": "from pkg.sub import d, CONST\nimport pkg.sub.d\nimport os\n",
        "sub/__init__.py": "CONST = 1\n",
        "sub/d.py": "from .. import a\nfrom ..b import f\n",
    })
    graph = import_graph(files)
    assert graph == {"pkg": {}, "pkg.a": {"pkg.c": 4}, "pkg.b": {"pkg.sub.d": 2},
                     "pkg.c": {"pkg.sub.d": 1, "pkg.sub": 1}, "pkg.sub": {},
                     "pkg.sub.d": {"pkg.a": 1, "pkg.b": 2}}
    assert circles(graph) == [["pkg.a", "pkg.c", "pkg.sub.d", "pkg.a"]]
    assert describe(circles(graph)[0], graph, files, tmp_path) == (
        "pkg.a (pkg/a.py:4) -> pkg.c (pkg/c.py:1) -> pkg.sub.d (pkg/sub/d.py:1) -> pkg.a")


@pytest.mark.parametrize(("sources", "expected"), [
    ({"a.py": "from pkg import b\n", "b.py": "import pkg.a\n"}, [["pkg.a", "pkg.b", "pkg.a"]]),
    ({"a.py": "from pkg import b\n", "b.py": "if TYPE_CHECKING:\n    import pkg.a\n"}, []),
    ({"__init__.py": "from pkg.a import x\n", "a.py": "from pkg import y\n"}, [["pkg", "pkg.a", "pkg"]]),
    ({"__init__.py": "from pkg.a import x\n", "a.py": "from pkg.b import y\n", "b.py": ""}, []),
])
def test_circles_are_found_and_named(tmp_path: Path, sources: dict[str, str],
                                     expected: list[list[str]]) -> None:
    files = write_package(tmp_path, {"__init__.py": "", **sources})
    assert circles(import_graph(files)) == expected
