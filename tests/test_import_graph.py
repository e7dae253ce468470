"""The package's modules import each other without circles (static: every import statement, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1]

def module_files(package_dir: Path) -> Dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package_dir`` (a package is named by its folder)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(package_dir: Path) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports. ``from a import b`` counts as importing ``a.b`` when that is a
    module, else ``a``; importing a module also runs its package, but a package's own ``__init__`` is not an
    edge from the modules inside it (Python has run it already)."""
    modules = module_files(package_dir)
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = ".".join(base[: len(base) - node.level + 1])
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def circles(graph: Dict[str, Set[str]]) -> List[Set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[Set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _write(root: Path, files: Dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "pkg"


def test_the_check_finds_a_circle_through_a_lazy_relative_import(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def f():\n    from ..high import b\n",
        "pkg/high/__init__.py": "from .b import g\n",
        "pkg/high/b.py": "from pkg.low.a import f\n",
        "pkg/other.py": "from . import low\n",
    })
    assert circles(import_graph(package)) == [{"pkg.low.a", "pkg.high", "pkg.high.b"}]


def test_the_check_passes_a_layered_package(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "from .high import b\n",
        "pkg/low/__init__.py": "from .a import f\n",
        "pkg/low/a.py": "import os\n",
        "pkg/high/__init__.py": "",
        "pkg/high/b.py": "from ..low import f\nfrom pkg.low.a import f\n",
    })
    graph = import_graph(package)
    assert graph["pkg.high.b"] == {"pkg.low", "pkg.low.a"}
    assert circles(graph) == []


def test_kernelarena_has_no_import_circle():
    found = [sorted(circle) for circle in circles(import_graph(ROOT / "kernelarena"))]
    assert not found, f"import circles (a lower floor imports a higher one; use a hook, STYLE.md): {found}"
