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
