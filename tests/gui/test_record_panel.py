"""The record panel on the simulated vehicle: real recordings, real history, offscreen widgets."""

from __future__ import annotations

import can
import pytest
from PySide6.QtCore import Qt

from workshop_app.core.capture.recorder import RecordingSummary
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.bridge import CaptureBridge
from workshop_app.gui.record_panel import RecordPanel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _home(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_HOME", str(tmp_path / "home"))


@pytest.fixture
def session():
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    s = CaptureSession(SimulatorSource(FrameRing()), dbs)
    yield s
    s.stop()


@pytest.fixture
def history(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    yield store
    store.close()


@pytest.fixture
def live(qtbot, session):
    """The simulator running and ticked by the window's own bridge."""
    bridge = CaptureBridge(session)
    session.start()
    bridge.start()
    yield bridge
    bridge.stop()


def _panel(qtbot, session, history) -> RecordPanel:
    panel = RecordPanel(session, history)
    qtbot.addWidget(panel)
    panel.resize(900, 420)
    panel.show()
    return panel


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_record_from_the_simulator_into_the_history(qtbot, tmp_path, session, history, live):
    panel = _panel(qtbot, session, history)
    live.ticked.connect(panel.refresh)
    out = tmp_path / "drive.blf"
    panel.path_edit.setText(str(out))
    assert panel.format_combo.currentText() == "BLF"
    with qtbot.waitSignal(panel.recording_started):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.recording and panel.state_label.text() == "● REC"
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert not panel.path_edit.isEnabled()

    qtbot.waitUntil(lambda: _number(panel.frames_value.text()) >= 1500, timeout=10_000)
    qtbot.waitUntil(lambda: panel.duration_value.text() != "0:00:00", timeout=5000)
    qtbot.waitUntil(lambda: panel.size_value.text() not in ("0 B", "—"), timeout=5000)
    assert panel.grab().save("/tmp/record.png")

    with qtbot.waitSignal(panel.recording_stopped) as stopped:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert stopped.args == [str(out)]
    assert not panel.recording and panel.start_button.isEnabled()
    summary = panel.last_summary
    assert summary is not None and summary.error is None
    shown = _number(panel.frames_value.text())
    assert shown == summary.frames_written >= 1500
    assert sum(1 for _ in can.LogReader(out)) == shown
    assert panel.dropped_value.text() == "0"

    (row,) = history.recordings()
    assert row.id == panel.last_recording_id and row.frames == shown and row.dropped == 0
    assert row.path == out.resolve() and row.format == "blf" and row.size_bytes == out.stat().st_size
    assert row.source.startswith("simulated vehicle")
    assert f"History entry #{row.id}" in panel.message_label.text()
    table = panel.recent_table
    assert table.rowCount() == 1 and table.item(0, 7).text() == "drive.blf"
    assert table.item(0, 2).text() == f"{shown:,}"
    assert table.selectionModel().isRowSelected(0)
    # The next recording gets a fresh name in the recordings folder, same format.
    assert panel.path_edit.text().endswith(".blf") and panel.path_edit.text() != str(out)


def test_mf4_recording_from_the_panel_reads_back(qtbot, tmp_path, session, history, live):
    panel = _panel(qtbot, session, history)
    live.ticked.connect(panel.refresh)
    panel.path_edit.setText(str(tmp_path / "drive"))
    panel.format_combo.setCurrentIndex(panel.format_combo.findText("MF4"))
    assert panel.path_edit.text() == str(tmp_path / "drive.mf4")
    assert panel.start_recording()
    qtbot.waitUntil(lambda: _number(panel.frames_value.text()) >= 500, timeout=10_000)
    summary = panel.stop_recording()
    assert summary is not None
    reader = can.LogReader(tmp_path / "drive.mf4")
    try:
        frames = list(reader)
    finally:
        reader.stop()
    assert len(frames) == summary.frames_written == history.recordings()[0].frames
    assert any(m.is_fd for m in frames)  # the demo vehicle sends CAN FD frames too


def test_format_combo_and_file_extension_follow_each_other(qtbot, tmp_path, session, history):
    panel = _panel(qtbot, session, history)
    panel.path_edit.setText(str(tmp_path / "run.2024.asc"))
    assert panel.format_combo.currentText() == "ASC"
    panel.format_combo.setCurrentIndex(panel.format_combo.findText("candump"))
    assert panel.path_edit.text() == str(tmp_path / "run.2024.log")
    panel.path_edit.setText(str(tmp_path / "x.trc.gz"))
    assert panel.format_combo.currentText() == "TRC"
    panel.format_combo.setCurrentIndex(panel.format_combo.findText("CSV"))
    assert panel.path_edit.text() == str(tmp_path / "x.csv")
    panel.path_edit.setText(str(tmp_path / "frames.db"))  # writable, just not offered in the combo
    assert panel.format_combo.currentIndex() == -1


def test_unwritable_path_is_explained_in_the_panel(qtbot, tmp_path, session, history):
    panel = _panel(qtbot, session, history)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    panel.path_edit.setText(str(blocker / "sub" / "rec.blf"))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert not panel.recording and session.recorder is None
    text = panel.message_label.text()
    assert text.startswith("Could not start recording:") and "cannot write" in text
    assert "Traceback" not in text

    panel.path_edit.setText(str(tmp_path / "rec.xyz"))
    assert not panel.start_recording()
    assert "unknown log format" in panel.message_label.text()

    panel.path_edit.setText(str(blocker))
    assert not panel.start_recording()
    assert "already exists" in panel.message_label.text() and blocker.read_text() == "x"


def test_double_click_on_a_recent_recording_emits_its_path(qtbot, tmp_path, session, history):
    older, newer = tmp_path / "older.asc", tmp_path / "newer.blf"
    for i, path in enumerate((older, newer)):
        path.write_text("data")
        history.index_recording(RecordingSummary(path, 1_700_000_000.0 + i, 2.0, 10, 0), "bench")
    panel = _panel(qtbot, session, history)
    table = panel.recent_table
    assert [table.item(r, 7).text() for r in range(table.rowCount())] == ["newer.blf", "older.asc"]
    rect = table.visualItemRect(table.item(1, 2))
    with qtbot.waitSignal(panel.recording_activated) as activated:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert activated.args == [str(older.resolve())]

    newer.unlink()
    with qtbot.assertNotEmitted(panel.recording_activated):
        table.cellDoubleClicked.emit(0, 0)
    assert "no longer exists" in panel.message_label.text()


def test_recording_stopped_by_a_source_switch_is_still_filed(qtbot, tmp_path, session, history, live):
    panel = _panel(qtbot, session, history)
    live.ticked.connect(panel.refresh)
    panel.path_edit.setText(str(tmp_path / "switch.log"))
    assert panel.start_recording()
    qtbot.waitUntil(lambda: _number(panel.frames_value.text()) > 100, timeout=10_000)
    session.stop_recording()  # what the window does before connecting another source
    qtbot.waitUntil(lambda: not panel.recording, timeout=5000)
    (row,) = history.recordings()
    assert row.path.name == "switch.log" and row.frames == panel.last_summary.frames_written > 100


def test_without_history_recording_still_works(qtbot, tmp_path, session, live):
    panel = _panel(qtbot, session, None)
    live.ticked.connect(panel.refresh)
    assert not panel.recent_table.isEnabled() and "history is off" in panel.recent_label.text()
    panel.path_edit.setText(str(tmp_path / "plain.asc"))
    panel.toggle_recording()
    qtbot.waitUntil(lambda: _number(panel.frames_value.text()) > 100, timeout=10_000)
    panel.toggle_recording()
    assert panel.last_recording_id is None and "History entry" not in panel.message_label.text()
    assert (tmp_path / "plain.asc").stat().st_size > 0
