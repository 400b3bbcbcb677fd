"""Start the workshop window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.location import default_history_path
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.stop_signals import StopSignals
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


class StopSignalCloser:
    """SIGINT, SIGTERM and SIGHUP close :attr:`window` as File→Quit does, then end the event loop.

    The Python handler only queues the close (it may run inside any Qt virtual method, where
    an exception would be swallowed); the wake-up socket's notifier makes Qt hand control to
    Python as soon as a signal arrives, even while the event loop sleeps. Install it before
    the window is built: a signal during construction is then honoured once the loop runs.
    """

    def __init__(self, app: QApplication, window: QWidget | None = None) -> None:
        self.window = window
        self._app = app
        self.closing = False
        self._signals = StopSignals(self._on_signal, wakeup=True).install()
        self._notifier = QSocketNotifier(self._signals.wakeup_fileno, QSocketNotifier.Type.Read)
        # Python runs the pending handler on its way into this slot; the bytes only wake us.
        self._notifier.activated.connect(lambda *_: self._signals.drain())

    def _on_signal(self, _signum: int) -> None:
        if self.closing:
            return  # already closing: a second Ctrl-C must not cut the close in half
        self.closing = True
        QTimer.singleShot(0, self._close)

    def _close(self) -> None:
        if self.window is not None:
            self.window.close()  # closeEvent: recordings finished, layout saved, sources stopped
        self._app.quit()  # also ends a dialog's own loop that may be open over the window

    def restore(self) -> None:
        self._notifier.setEnabled(False)
        self._signals.restore()


def run_gui(
    source: FrameSource | CaptureSession,
    databases: DatabaseSet,
    *,
    quit_after: float | None = None,
    screenshot: Path | None = None,
) -> int:
    app = make_app()
    # Before anything else Qt runs: from here on no stop signal can land inside a Qt override.
    closer = StopSignalCloser(app)
    try:
        history: HistoryStore | None = HistoryStore(default_history_path())
    except WorkshopError as exc:  # a damaged history must not keep the window from opening
        print(f"workshop: history disabled: {exc}", file=sys.stderr)
        history = None
    session = source if isinstance(source, CaptureSession) else CaptureSession(source, databases)
    window = MainWindow(session, history=history)
    closer.window = window
    window.show()
    window.start()  # returns at once: a live source connects on its own thread
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
        closer.restore()
        if history is not None:
            history.close()
