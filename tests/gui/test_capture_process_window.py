"""The main window fed by a capture process: the trace fills, and a killed capture process is
reported in the status bar as a lost link and comes back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.process import ProcessCaptureSession
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.trace_model import COL_NAME
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path: Path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(ProcessCaptureSession(SourceSpec(sim_bitrate=500_000), dbs), settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start()
    yield win
    win.close()


def test_the_trace_fills_from_the_capture_process(qtbot, window: MainWindow, tmp_path: Path) -> None:
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 14, timeout=30000)
    names = {model.index(r, COL_NAME).data() for r in range(model.rowCount())}
    assert {"ENGINE_DATA", "WHEEL_SPEEDS", "ESC_DYNAMICS_FD"} <= names  # CAN FD frames included
    assert window.session.stats.dropped == 0
    window.grab().save(str(tmp_path / "capture-process-window.png"))


def test_a_killed_capture_process_shows_as_a_lost_link(qtbot, window: MainWindow) -> None:
    session = window.session
    assert isinstance(session, ProcessCaptureSession)
    qtbot.waitUntil(lambda: session.store.total_frames > 500, timeout=30000)
    pid = session.capture_source.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "capture process ended" in window.statusBar().currentMessage(), timeout=30000)
    qtbot.waitUntil(
        lambda: session.source.state is SourceState.RUNNING and session.source.reconnects == 1, timeout=30000
    )
    before = session.store.total_frames
    qtbot.waitUntil(lambda: session.store.total_frames > before + 200, timeout=30000)
