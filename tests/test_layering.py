"""The core must stay usable without Qt: no module under workshop_app/core imports it."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "workshop_app" / "core"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "workshop_app.gui", "shiboken6")


def test_no_core_module_imports_qt_or_the_gui():
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN):
                    offenders.append(f"{path.relative_to(CORE.parent.parent)}:{node.lineno} imports {name}")
    assert offenders == []


def test_importing_every_core_module_loads_no_qt():
    modules = [
        ".".join(p.relative_to(CORE.parent.parent).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


ROOT = CORE.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every workshop_app module and the workshop_app modules it imports (local imports too)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name and not name.startswith(m + ".")}
    return graph


def test_commands_never_import_the_gui_except_the_gui_command():
    offenders = [
        f"{name} imports {target}"
        for name, targets in _imports().items()
        if name.startswith("workshop_app.commands.") and name != "workshop_app.commands.gui"
        for target in targets
        if target.startswith("workshop_app.gui")
    ]
    assert offenders == []


def test_no_two_modules_import_each_other_even_through_others():
    graph = _imports()
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == [], "\n".join(" <-> ".join(c) for c in cycles)


GUI = ROOT / "gui"
THREAD_MODULES = ("threading", "_thread", "concurrent", "multiprocessing")
QT_THREAD_NAMES = ("QThread", "QThreadPool", "QRunnable")


def _thread_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each import of a thread module and each use of Qt's thread classes."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            found += [(node.lineno, f"imports {a.name}") for a in node.names if a.name in QT_THREAD_NAMES]
        elif isinstance(node, ast.Name) and node.id in QT_THREAD_NAMES:
            found.append((node.lineno, f"uses {node.id}"))
        elif isinstance(node, ast.Attribute) and node.attr in QT_THREAD_NAMES:
            found.append((node.lineno, f"uses {node.attr}"))
        found += [(node.lineno, f"imports {m}") for m in modules if m.split(".")[0] in THREAD_MODULES]
    return found


def test_only_the_workers_module_moves_gui_work_off_the_gui_thread():
    # gui/workers.run_job is the one way: widgets never start threads, pools or Qt threads.
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line} {what}"
        for path in sorted(GUI.rglob("*.py"))
        if path.name != "workers.py"
        for line, what in _thread_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == [], "use gui/workers.run_job instead:\n" + "\n".join(offenders)


def test_the_thread_check_sees_every_way_of_reaching_a_thread():
    code = (
        "import threading\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from PySide6.QtCore import QThreadPool\n"
        "import PySide6.QtCore as qc\n"
        "t = qc.QThread()\n"
    )
    assert sorted(line for line, _ in _thread_uses(ast.parse(code))) == [1, 2, 3, 5]
