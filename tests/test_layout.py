"""The layout's rules that import-linter's contracts do not say: no import circles anywhere
in the project, and the size rules of scripts/check_layout.py."""

from __future__ import annotations

import subprocess
import sys

import grimp

from tests.support.paths import REPO

PACKAGES = ("ledger", "api", "wallets", "bench")


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over direct imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return circles


def test_import_circles_are_found() -> None:
    """The finder itself: a circle of two modules in a throwaway package is reported."""
    assert import_circles(_graph_of({"a": "from pkg import b\n", "b": "from pkg import a\n", "c": "from pkg import a\n"})) == [
        ["pkg.a", "pkg.b"]
    ]


def test_no_module_of_the_project_is_in_an_import_circle() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert import_circles(graph) == []


def test_no_file_or_function_breaks_the_size_rules() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_layout.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def _graph_of(modules: dict[str, str]) -> grimp.ImportGraph:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch) / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for name, source in modules.items():
            (package / f"{name}.py").write_text(source)
        sys.path.insert(0, scratch)
        try:
            return grimp.build_graph("pkg", cache_dir=None)
        finally:
            sys.path.remove(scratch)
            for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
                del sys.modules[name]
