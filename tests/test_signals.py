"""SIGINT, SIGTERM and SIGHUP end `workshop record` and `workshop gui` the way the user's own stop does.

Real processes get real signals; the files they leave behind are read back. One in-process test
checks the window's close path (recording finished and indexed, layout saved) with real widgets.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import can
import pytest
from helpers.processes import ENV, WORKSHOP
from helpers.waiting import wait_for
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from workshop_app.core import stop_signals
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.app import StopSignalCloser
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
IDS = ["SIGINT", "SIGTERM", "SIGHUP"]


def _env(home: Path) -> dict[str, str]:
    return {
        **ENV,
        "WORKSHOP_HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "QT_QPA_PLATFORM": "offscreen",
    }


def _stop(proc: subprocess.Popen[str], signum: int, bound: float) -> tuple[int, str, str]:
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=bound)  # a bound on stopping, not a measurement
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running {bound} s after {signal.Signals(signum).name}; stderr: {err[-2000:]}")
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=IDS)
def test_record_finishes_its_file_and_summary_on_a_stop_signal(signum, tmp_path):
    out_file = tmp_path / "drive.log"
    proc = subprocess.Popen(
        [*WORKSHOP, "record", str(out_file), "--history", str(tmp_path / "history.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        wait_for(lambda: out_file.exists() and out_file.stat().st_size > 0, 30, "frames in the file")
        code, out, err = _stop(proc, signum, 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    written = int(re.search(r"(\d+) frames written", out).group(1))
    assert written > 0
    assert sum(1 for _ in can.LogReader(str(out_file))) == written  # every frame reached the file
    rid = int(re.search(r"recording id (\d+)", out).group(1))
    with HistoryStore(tmp_path / "history.db") as history:
        assert history.recording(rid).frames == written


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=IDS)
def test_the_window_closes_and_saves_its_layout_on_a_stop_signal(signum, tmp_path):
    proc = subprocess.Popen(
        [*WORKSHOP, "gui"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path)
    )
    try:
        # The history file is opened after the handlers are in place, just before the window.
        wait_for(lambda: (tmp_path / "history.db").exists(), 60, "the window to start")
        # The simulated car is received in a capture process (the default): it ends with the window.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        wait_for(lambda: children.read_text().split(), 60, "the capture process to start")
        capture = [int(pid) for pid in children.read_text().split()]
        code, _out, err = _stop(proc, signum, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    wait_for(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in capture), 10, "the capture process to end"
    )
    settings = tmp_path / "config" / "workshop_app" / "Workshop.conf"
    assert settings.exists()
    assert "state=" in settings.read_text()  # the window layout, saved by the close


@pytest.mark.gui
def test_a_stop_signal_takes_the_quit_path_with_a_recording_in_progress(qtbot, tmp_path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    history = HistoryStore(tmp_path / "history.db")
    window = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings, history=history)
    qtbot.addWidget(window)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    closer = StopSignalCloser(app, window)
    try:
        window.show()
        window.start()
        out_file = tmp_path / "bench.blf"
        window.record_panel.path_edit.setText(str(out_file))
        assert window.record_panel.start_recording()
        qtbot.waitUntil(lambda: window.session.stats.recorded > 100, timeout=10000)

        os.kill(os.getpid(), signal.SIGTERM)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    finally:
        closer.restore()
    assert closer.closing
    assert window.session.recorder is None and not window.record_panel.recording
    rows = history.recordings()
    assert len(rows) == 1 and rows[0].path == out_file.resolve()
    assert rows[0].frames == sum(1 for _ in can.LogReader(str(out_file))) > 100
    assert settings.contains("window/state")
    history.close()


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=IDS)
def test_cli_handlers_ask_a_capture_loop_to_stop_and_interrupt_anything_else(signum):
    before = signal.getsignal(signum)
    handlers = stop_signals.install_cli()
    try:
        with stop_signals.graceful_stop() as stop:
            os.kill(os.getpid(), signum)
            assert stop.wait(2.0)  # asked, not interrupted: the loop ends on its own
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signum)  # a second one does not wait for the loop
                stop.wait(2.0)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)  # outside a capture loop: stop right here
            threading.Event().wait(2.0)
    finally:
        handlers.restore()
    assert signal.getsignal(signum) == before  # the previous handler is back
