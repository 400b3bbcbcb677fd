"""The window never connects on its own thread, and follows a server that goes away and comes back.

Real pieces: a TCP listener that accepts and never speaks, the simulator in a second process
killed with SIGKILL and started again on the same port, a MainWindow offscreen.
"""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest
from helpers.processes import ENV, WORKSHOP, free_port
from helpers.waiting import wait_for
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources import opening
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.sources.reconnect import ReconnectPolicy
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui

FAST = ReconnectPolicy(retry_interval=0.2, connect_timeout=0.5)


@pytest.fixture
def opened_on(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads every bus open ran on."""
    names: list[str] = []
    construct = opening._construct

    def recording(*args: object, **kwargs: object) -> object:
        names.append(threading.current_thread().name)
        return construct(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(opening, "_construct", recording)
    return names


def _window(qtbot, tmp_path, source, history: HistoryStore | None = None) -> MainWindow:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(CaptureSession(source, dbs), settings=settings, history=history)
    qtbot.addWidget(win)
    win.show()
    return win


def _socketcand(port: int) -> SourceSpec:
    return SourceSpec(interface="socketcand", port=port, reconnect=FAST, connect_in_background=True)


def test_a_silent_server_never_blocks_the_window(qtbot, tmp_path, silent_port, opened_on):
    win = _window(qtbot, tmp_path, make_source(_socketcand(silent_port)))
    try:
        win.start()  # before the fix this call never returned
        assert win.session.source.state is SourceState.CONNECTING
        assert "connecting…" in win.source_label.text()
        qtbot.waitUntil(lambda: "did not greet within 0.5 s" in win.source_label.text(), timeout=5000)
        assert "Could not connect: socketcand server" in win.statusBar().currentMessage()
        qtbot.waitUntil(lambda: "retrying (attempt 2)" in win.source_label.text(), timeout=5000)
        assert opened_on and threading.main_thread().name not in opened_on
    finally:
        win.close()


def test_connecting_from_the_dialog_to_a_silent_server_returns_at_once(
    qtbot, tmp_path, silent_port, opened_on
):
    win = _window(qtbot, tmp_path, SimulatorSource(FrameRing()))
    try:
        win.start()
        assert win.connect_spec(SourceSpec(interface="socketcand", port=silent_port, reconnect=FAST))
        assert win.session.source.state is SourceState.CONNECTING
        qtbot.waitUntil(lambda: "did not greet" in win.source_label.text(), timeout=5000)
        assert opened_on and threading.main_thread().name not in opened_on
    finally:
        win.close()


def _simulator(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            *WORKSHOP,
            "simulate",
            "--serve",
            "socketcand",
            "--port",
            str(port),
            "-c",
            f"sim-{port}",
            "--no-ecus",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(listening, 20, "the simulator to listen")
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


# Two attempts to reopen that fail and the one that gets through, a retry interval apart each.
GAP_AT_LEAST = 3 * FAST.retry_interval


def _wait_for_failed_retries(qtbot, win: MainWindow) -> None:
    """A gap long enough to see: two attempts to reopen the link failed (nobody listens)."""
    source = win.session.source
    qtbot.waitUntil(lambda: "attempt 2:" in (source.error or ""), timeout=10000)


def test_the_window_reconnects_when_the_server_restarts(qtbot, tmp_path):
    port = free_port()
    sim = _simulator(port)
    win = _window(qtbot, tmp_path, make_source(_socketcand(port)))
    try:
        win.start()
        qtbot.waitUntil(lambda: win.session.stats.frames > 50, timeout=15000)
        _kill(sim)
        qtbot.waitUntil(lambda: "reconnecting… (gap" in win.source_label.text(), timeout=5000)
        assert win.statusBar().currentMessage().startswith("Connection lost: the server closed")
        _wait_for_failed_retries(qtbot, win)
        sim = _simulator(port)
        qtbot.waitUntil(lambda: win.session.source.state is SourceState.RUNNING, timeout=10000)
        qtbot.waitUntil(lambda: "link back after a gap of" in win.statusBar().currentMessage(), timeout=2000)
        assert "1 link gap(s), last" in win.source_label.text()
        frames = win.session.stats.frames
        qtbot.waitUntil(lambda: win.session.stats.frames > frames + 50, timeout=10000)
        assert win.session.source.gaps[0].seconds() >= GAP_AT_LEAST
    finally:
        win.close()
        _kill(sim)


def test_a_recording_from_the_window_keeps_its_link_gap_in_the_history(qtbot, tmp_path):
    # As `workshop record` does: the file stays open through the gap, the history says where.
    port = free_port()
    sim = _simulator(port)
    history = HistoryStore(tmp_path / "history.db")
    win = _window(qtbot, tmp_path, make_source(_socketcand(port)), history=history)
    try:
        win.start()
        qtbot.waitUntil(lambda: win.session.stats.frames > 50, timeout=15000)
        win.record_panel.path_edit.setText(str(tmp_path / "drive.blf"))
        assert win.record_panel.start_recording()
        recorder = win.session.recorder
        assert recorder is not None
        qtbot.waitUntil(lambda: recorder.frames_written > 50, timeout=10000)  # frames before the gap
        _kill(sim)
        qtbot.waitUntil(lambda: "reconnecting… (gap" in win.source_label.text(), timeout=5000)
        _wait_for_failed_retries(qtbot, win)
        sim = _simulator(port)
        qtbot.waitUntil(lambda: win.session.source.state is SourceState.RUNNING, timeout=10000)
        frames = win.session.stats.frames
        qtbot.waitUntil(lambda: win.session.stats.frames > frames + 50, timeout=10000)
        summary = win.record_panel.stop_recording()
        assert summary is not None and summary.frames_written > 100
        rid = win.record_panel.last_recording_id
        assert rid is not None
        gaps = history.recording_gaps(rid)
        assert len(gaps) == 1 and gaps[0].seconds() >= GAP_AT_LEAST
    finally:
        win.close()
        history.close()
        _kill(sim)
