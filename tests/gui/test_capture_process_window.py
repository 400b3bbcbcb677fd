"""The main window fed by a capture process: the trace fills, and a killed capture process is
reported in the status bar as a lost link and comes back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.process_session import ProcessCaptureSession
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
    qtbot.waitUntil(lambda: "in the window: 0" in window.dropped_label.toolTip(), timeout=5000)
    assert "receiving in the capture process: 0" in window.dropped_label.toolTip()
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


def test_a_log_opened_in_the_window_plays_here_and_a_new_connection_uses_a_capture_process(
    qtbot, window: MainWindow
) -> None:
    from workshop_app.core.logs.playback import PlaybackSource
    from workshop_app.core.logs.reader import read_columns

    session = window.session
    assert isinstance(session, ProcessCaptureSession)
    qtbot.waitUntil(lambda: session.store.total_frames > 100, timeout=30000)
    log = Path(__file__).resolve().parents[1] / "data" / "logs" / "savvycan_tesla_model_s_candump.log"
    window.play_columns(read_columns(log), name=log.name)  # as the Log analysis tab does
    assert not session.in_capture_process and isinstance(session.source, PlaybackSource)
    assert window.playback_bar.isVisible()
    session.source.play()
    qtbot.waitUntil(lambda: session.store.get("vcan0", 0x21A) is not None, timeout=30000)
    window.workshop.switch_source(SourceSpec(sim_bitrate=500_000))
    assert session.in_capture_process
    qtbot.waitUntil(lambda: window.trace_model.rowCount() >= 14, timeout=30000)
