"""Start the workshop window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import FrameSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import resources_dir


def run_gui(
    source: FrameSource,
    databases: DatabaseSet,
    *,
    quit_after: float | None = None,
    screenshot: Path | None = None,
) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Workshop")
    app.setOrganizationName("workshop_app")
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "workshop.svg")))
    window = MainWindow(CaptureSession(source, databases))
    window.show()
    window.start()
    if quit_after is not None:

        def finish() -> None:
            if screenshot is not None:
                window.grab().save(str(screenshot))
            window.close()
            app.quit()

        QTimer.singleShot(int(quit_after * 1000), finish)
    return app.exec()
