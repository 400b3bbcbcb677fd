"""The record panel when the disk refuses the recording: a plain message, a readable file, the
capture still running. The refusal is the kernel's own: a file size limit (RLIMIT_FSIZE) on this
process makes writes past it fail with EFBIG, as a full disk fails them with ENOSPC."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import can
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.bridge import CaptureBridge
from workshop_app.gui.record_panel import RecordPanel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui
LIMIT = 160 * 1024  # bytes any file of this process may reach during the test


@pytest.fixture(autouse=True)
def _home(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_HOME", str(tmp_path / "home"))


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_write_error_ends_the_recording_plainly_and_capture_goes_on(qtbot, tmp_path, file_size_limit):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = CaptureSession(SimulatorSource(FrameRing()), dbs)
    history = HistoryStore(tmp_path / "history.db")
    bridge = CaptureBridge(session)
    try:
        panel = RecordPanel(session, history)
        qtbot.addWidget(panel)
        bridge.ticked.connect(panel.refresh)
        session.start()
        bridge.start()
        out = tmp_path / "full.blf"
        panel.path_edit.setText(str(out))
        with qtbot.waitSignal(panel.recording_started):
            panel.start_recording()
        with qtbot.waitSignal(panel.recording_stopped, timeout=60_000):
            pass  # the simulator fills the allowed size; the panel files the recording itself

        summary = panel.last_summary
        assert summary is not None and summary.error is not None
        text = panel.message_label.text()
        assert text.startswith("Recording stopped early: ") and str(out) in text
        assert "larger than the file system allows" in text and "Traceback" not in text
        assert not panel.recording and panel.start_button.isEnabled()
        # The file is readable and holds exactly what the summary says.
        reader = can.LogReader(out)
        try:
            assert sum(1 for _ in reader) == summary.frames_written > 0
        finally:
            reader.stop()
        assert out.stat().st_size <= LIMIT
        (row,) = history.recordings()
        assert row.frames == summary.frames_written
        # The capture goes on after the recording stopped.
        seen = session.store.total_frames
        qtbot.waitUntil(lambda: session.store.total_frames > seen + 100, timeout=10_000)
    finally:
        bridge.stop()
        session.stop()
        history.close()
