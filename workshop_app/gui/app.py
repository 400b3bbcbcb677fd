"""Start the workshop window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.location import default_history_path
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import FrameSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import resources_dir


def make_app() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Workshop")
    app.setOrganizationName("workshop_app")
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "workshop.svg")))
    return app


def run_gui(
    source: FrameSource,
    databases: DatabaseSet,
    *,
    quit_after: float | None = None,
    screenshot: Path | None = None,
) -> int:
    app = make_app()
    try:
        history: HistoryStore | None = HistoryStore(default_history_path())
    except WorkshopError as exc:  # a damaged history must not keep the window from opening
        print(f"workshop: history disabled: {exc}", file=sys.stderr)
        history = None
    window = MainWindow(CaptureSession(source, databases), history=history)
    window.show()
    window.start()
    if quit_after is not None:

        def finish() -> None:
            if screenshot is not None:
                window.grab().save(str(screenshot))
            window.close()
            app.quit()

        QTimer.singleShot(int(quit_after * 1000), finish)
    try:
        return app.exec()
    finally:
        if history is not None:
            history.close()
