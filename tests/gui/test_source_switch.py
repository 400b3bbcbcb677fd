"""What the window shows when its source changes: no view keeps the previous source's data.

Bits view, trace rows, plots and the payload highlight all read the session's store; after a
switch (to a log, another car, or Ctrl+L) each must follow the new store, and painting a
store whose clock jumped must not feed Qt invalid colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.playback import PlaybackSource
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.trace_model import COL_NAME
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui

DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"


@pytest.fixture
def window(qtbot, tmp_path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.trace_model.rowCount() >= 14, timeout=5000)
    yield win
    win.close()


def _select(win: MainWindow, name: str) -> None:
    model = win.trace_model
    row = next(r for r in range(model.rowCount()) if model.index(r, COL_NAME).data() == name)
    win.trace_view.setCurrentIndex(model.index(row, 0))


def _setalpha_warnings(qtlog) -> list[str]:
    return [r.message for r in qtlog.records if "setAlphaF" in r.message or "QColor" in r.message]


def _engine_log(path: Path, t0: float, n: int = 200) -> Path:
    """A candump log of ENGINE_DATA (0x0C0) frames starting at log time ``t0``, 10 ms apart."""
    lines = []
    for i in range(n):
        rpm = int((800 + 5 * i) / 0.25)
        payload = rpm.to_bytes(2, "little") + bytes(6)
        lines.append(f"({t0 + i * 0.01:.6f}) can0 0C0#{payload.hex().upper()}\n")
    path.write_text("".join(lines))
    return path


def test_bits_view_is_empty_after_switching_to_a_log(qtbot, window, tmp_path):
    _select(window, "ENGINE_DATA")
    assert window.bit_view.stats is not None
    log = tmp_path / TESLA_LOG.name
    log.write_bytes(TESLA_LOG.read_bytes())
    with qtbot.waitSignal(window.log_view.loaded, timeout=20_000):
        window.open_log(log)
    assert isinstance(window.session.source, PlaybackSource)
    qtbot.wait(100)  # a few ticks
    assert window.bit_view.stats is None
    # Playing the log shows its own frames; the bit view waits for a new selection.
    window.playback_bar.step_button.click()
    qtbot.waitUntil(lambda: window.session.store.total_frames >= 1, timeout=3000)
    assert window.bit_view.stats is None


def test_bits_view_and_trace_follow_a_new_car_and_a_cleared_trace(qtbot, window):
    _select(window, "ENGINE_DATA")
    old = window.bit_view.stats
    assert window.connect_simulator()
    qtbot.waitUntil(lambda: window.session.store.total_frames > 500, timeout=5000)
    qtbot.wait(100)
    store = window.session.store.messages
    model = window.trace_model
    # Every row shows the new store's statistics, never a frozen object of the old one.
    assert model.rowCount() == len(store)
    assert all(model.stats_at(r) is store[model.stats_at(r).key] for r in range(model.rowCount()))
    assert window.bit_view.stats is not old
    assert window.bit_view.stats is None or window.bit_view.stats is store[window.bit_view.stats.key]
    _select(window, "ENGINE_DATA")
    assert window.bit_view.stats is not None
    window.clear_trace()
    qtbot.wait(100)
    assert window.bit_view.stats is None or window.bit_view.stats is store.get(window.bit_view.stats.key)


def test_plots_restart_their_time_axis_with_a_log(qtbot, window, tmp_path):
    panel = window.plot_panel
    if ("ENGINE_DATA", "EngineSpeed") not in {k for p in panel.signals() for k in p}:
        panel.add_signal("ENGINE_DATA", "EngineSpeed")
    qtbot.waitUntil(lambda: panel.time_origin is not None, timeout=3000)
    log = _engine_log(tmp_path / "engine.log", t0=1000.0)
    assert window.connect_spec(SourceSpec(replay=log, speed=0))
    qtbot.waitUntil(lambda: window.session.source.state is SourceState.FINISHED, timeout=5000)
    qtbot.waitUntil(lambda: window.session.store.total_frames == 200, timeout=3000)
    qtbot.wait(100)
    index = next(i for i, p in enumerate(panel.signals()) if ("ENGINE_DATA", "EngineSpeed") in p)
    x, y = panel.curve_item("ENGINE_DATA", "EngineSpeed", index).getData()
    assert panel.time_origin == pytest.approx(1000.0)
    assert len(x) == 200 and x[0] == pytest.approx(0.0) and x[-1] == pytest.approx(1.99)
    np.testing.assert_allclose(y[:3], [800, 805, 810])


def test_opening_a_log_while_the_car_runs_paints_no_invalid_colour(qtbot, qtlog, window, tmp_path):
    qtbot.waitUntil(lambda: window.session.store.total_frames > 300, timeout=3000)
    log = tmp_path / TESLA_LOG.name
    log.write_bytes(TESLA_LOG.read_bytes())
    with qtbot.waitSignal(window.log_view.loaded, timeout=20_000):
        window.open_log(log)
    window.grab()  # paints the trace right after the switch, before the next tick
    qtbot.wait(100)
    window.playback_bar.step_button.click()
    qtbot.waitUntil(lambda: window.session.store.total_frames >= 1, timeout=3000)
    window.grab()
    assert _setalpha_warnings(qtlog) == []


def test_a_log_out_of_time_order_paints_no_invalid_colour(qtbot, qtlog, window, tmp_path):
    # Logs merged from two interfaces are not sorted: a frame can be newer than the batch's last.
    lines = []
    for i in range(100):
        t = 50.0 + i * 0.02
        lines.append(f"({t + 1.5:.6f}) can0 0C0#{i:02X}00000000000000\n")  # 1.5 s ahead of its line
        lines.append(f"({t:.6f}) can0 0B4#{i:02X}00000000000000\n")
    log = tmp_path / "merged.log"
    log.write_text("".join(lines))
    assert window.connect_spec(SourceSpec(replay=log, speed=0))
    qtbot.waitUntil(lambda: window.session.store.total_frames == 200, timeout=5000)
    window.trace_tabs.setCurrentIndex(0)
    qtbot.wait(100)
    window.grab()
    assert _setalpha_warnings(qtlog) == []
