"""The window on the simulated vehicle, with real widgets offscreen."""

from __future__ import annotations

import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs))
    qtbot.addWidget(win)
    win.show()
    win.start()
    yield win
    win.close()


def test_trace_fills_with_named_decoded_messages(qtbot, window):
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 12, timeout=5000)
    names = {model.index(r, 2).data() for r in range(model.rowCount())}
    assert {"ENGINE_DATA", "WHEEL_SPEEDS", "BODY_STATUS"} <= names
    row = next(r for r in range(model.rowCount()) if model.index(r, 2).data() == "ENGINE_DATA")
    assert "EngineSpeed=" in model.index(row, 8).data()
    assert float(model.index(row, 4).data()) > 0  # a rate once two frames arrived
    assert "frames/s" in window.rate_label.text()


def test_filter_hides_other_rows(qtbot, window):
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 12, timeout=5000)
    qtbot.keyClicks(window.filter_edit, "wheel")
    visible = [r for r in range(model.rowCount()) if not window.trace_view.isRowHidden(r)]
    assert [model.index(r, 2).data() for r in visible] == ["WHEEL_SPEEDS"]


def test_window_grabs_a_screenshot(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: window.trace_model.rowCount() >= 12, timeout=5000)
    path = tmp_path / "main.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 10_000
