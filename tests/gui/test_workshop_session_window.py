"""The window as a thin client of WorkshopSession: the trace repaints only the streams a tick
changed, and every panel follows the session's events (real widgets offscreen)."""

from __future__ import annotations

import time
import uuid

import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import BusConfig, Frame
from workshop_app.core.workshop import WorkshopSession
from workshop_app.gui.chrono_model import ChronoModel
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.trace_model import COL_DATA, COL_NAME, SWEEP_TICKS, TraceModel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


def _frame(ident: int, data: bytes, channel: str) -> Frame:
    return Frame(time.time(), ident, data, channel)


def test_trace_repaints_only_the_rows_a_tick_changed(qtbot):
    channel = f"trace-{uuid.uuid4().hex[:8]}"
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)))
    model = TraceModel(session, repaint_interval=0.0)  # every tick (the wall-clock hold: test_trace_repaint)
    model.follow(session)
    chrono = ChronoModel(session)
    chrono.follow(session)
    repainted: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda tl, br, *_: repainted.append((tl.row(), br.row(), tl.column(), br.column()))
    )

    session.ring.push_many(_frame(i, bytes([i >> 8]), channel) for i in (0x100, 0x200, 0x300, 0x400))
    session.tick()
    assert model.rowCount() == 4 and chrono.rowCount() == 4
    repainted.clear()
    model._ticks = 0  # start a run of ticks: the next sweep is SWEEP_TICKS ticks away

    session.ring.push_many([_frame(0x200, b"\x09", channel), _frame(0x400, b"\x09", channel)])
    session.tick()
    assert model.last_repainted == [1, 3]
    assert repainted == [(1, 1, COL_DATA, COL_DATA), (3, 3, COL_DATA, COL_DATA)]  # counts at sweeps
    assert model.index(1, COL_DATA).data() == "09" and chrono.rowCount() == 6

    repainted.clear()
    session.ring.push_many([_frame(0x100, b"\x05", channel), _frame(0x200, b"\x05", channel)])
    session.tick()
    assert repainted == [(0, 1, COL_DATA, COL_DATA)]  # adjacent rows: one signal

    repainted.clear()
    for _ in range(SWEEP_TICKS - 3):
        session.tick()  # quiet ticks repaint nothing ...
    assert repainted == []
    session.tick()  # ... until the sweep, which repaints every row (rates fall, highlights fade)
    assert repainted == [(0, 3, COL_NAME, COL_DATA)]
    session.close()


@pytest.fixture
def window(qtbot, tmp_path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    workshop = WorkshopSession(SimulatorSource(FrameRing()), dbs)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(workshop, settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start()
    yield win
    win.close()


def test_the_window_runs_on_the_session_it_is_given(qtbot, window, tmp_path):
    workshop = window.workshop
    assert window.session is workshop.capture and window.scheduler is workshop.scheduler
    qtbot.waitUntil(lambda: window.trace_model.rowCount() >= 5, timeout=15_000)
    qtbot.waitUntil(lambda: window.chrono_model.rowCount() > 0, timeout=15_000)
    qtbot.waitUntil(lambda: "frames/s" in window.rate_label.text(), timeout=15_000)

    window.record_panel.path_edit.setText(str(tmp_path / "run.csv"))
    assert window.record_panel.start_recording()
    qtbot.waitUntil(lambda: window.record_panel.frames_value.text() not in ("", "0"), timeout=15_000)

    # A switch made on the session (as a script would) reaches every panel through its events.
    workshop.switch_source(SourceSpec(sim_time_scale=2.0))
    assert not window.record_panel.recording  # filed at once, not on a later tick
    assert window.record_panel.last_summary is not None
    assert window.record_panel.last_summary.frames_written > 0
    assert window.chrono_model.rowCount() == 0 and window.windowTitle().endswith(workshop.source.describe())
    qtbot.waitUntil(lambda: window.session.store.total_frames > 0, timeout=15_000)
    window.grab().save(str(tmp_path / "window.png"))


def test_the_session_outlives_its_window(qtbot, window):
    workshop = window.workshop
    qtbot.waitUntil(lambda: window.chrono_model.rowCount() > 0, timeout=15_000)
    window.close()
    rows = window.chrono_model.rowCount()
    workshop.start()  # a script goes on with the session the window showed
    try:
        qtbot.waitUntil(lambda: len(workshop.tick()) > 0, timeout=15_000)
    finally:
        workshop.close()
    assert window.chrono_model.rowCount() == rows  # the window no longer listens
