"""PlotPanel on the simulated vehicle: live curves, shared time axis, cursor, layouts, drops."""

from __future__ import annotations

import sys

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.plot_layout import PlotLayoutError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.gui.signal_browser import SIGNAL_MIME_TYPE, SignalBrowser
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


def _session() -> CaptureSession:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    return CaptureSession(SimulatorSource(FrameRing()), dbs)


@pytest.fixture
def session():
    session = _session()
    session.start()
    yield session
    session.stop()


@pytest.fixture
def panel(qtbot, session):
    widget = PlotPanel(session)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    with qtbot.waitExposed(widget):
        widget.show()
    return widget


def pump(qtbot, session: CaptureSession, panel: PlotPanel, condition, timeout: int = 5000) -> None:
    """Tick the session and the panel (as CaptureBridge.ticked would) until ``condition()``."""

    def ticked() -> bool:
        session.tick()
        panel.refresh()
        return bool(condition())

    qtbot.waitUntil(ticked, timeout=timeout)


def curve_data(panel: PlotPanel, message: str, signal: str, plot: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = panel.curve_item(message, signal, plot).getOriginalDataset()
    return (np.empty(0), np.empty(0)) if x is None else (x, y)


def test_plotted_signal_receives_the_series_data(qtbot, session, panel):
    assert panel.add_signal("ENGINE_DATA", "EngineSpeed") == 0
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "ENGINE_DATA", "EngineSpeed")[0]) >= 20)
    first = len(curve_data(panel, "ENGINE_DATA", "EngineSpeed")[0])
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "ENGINE_DATA", "EngineSpeed")[0]) > first)

    series = session.decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    t, v = series.arrays()
    x, y = curve_data(panel, "ENGINE_DATA", "EngineSpeed")
    assert panel.time_origin is not None and panel.time_origin <= t[0]
    np.testing.assert_array_equal(y, v)
    np.testing.assert_allclose(x, t - panel.time_origin)
    assert x[0] >= 0
    item = panel.curve_item("ENGINE_DATA", "EngineSpeed")
    # Following, the panel reduces the data itself (a few samples are drawn as they are)...
    assert not item.opts["autoDownsample"]
    panel.set_live(False)  # ... paused, pyqtgraph reduces them for whatever view is chosen
    assert item.opts["autoDownsample"] and item.opts["downsampleMethod"] == "peak"
    assert item.opts["clipToView"]
    assert panel.legend_texts(0) == ["EngineSpeed (rpm)"]


def test_refresh_skips_curves_whose_series_did_not_move(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "ENGINE_DATA", "EngineSpeed")[0]) > 0)
    item = panel.curve_item("ENGINE_DATA", "EngineSpeed")
    calls = []
    item.sigPlotChanged.connect(lambda _item: calls.append(1))
    panel.refresh()  # no tick in between: the series has not grown
    assert calls == []
    pump(qtbot, session, panel, lambda: calls)


def test_time_origin_stays_put(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    pump(qtbot, session, panel, lambda: panel.time_origin is not None)
    origin = panel.time_origin
    first_frame = min(s.first_ts for s in session.store.messages.values())
    assert origin == first_frame
    panel.add_signal("LIGHT_STATUS", "LowBeam")
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "LIGHT_STATUS", "LowBeam", 1)[0]) > 2)
    assert panel.time_origin == origin


def test_plots_share_one_time_axis(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedFL")
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedRR", 1)
    assert panel.signals() == [
        [("ENGINE_DATA", "EngineSpeed")],
        [("WHEEL_SPEEDS", "WheelSpeedFL"), ("WHEEL_SPEEDS", "WheelSpeedRR")],
    ]
    top, bottom = panel.plot_items()
    bottom.getViewBox().setXRange(2.0, 4.0, padding=0)
    assert top.getViewBox().viewRange()[0] == pytest.approx([2.0, 4.0])
    top.getViewBox().setXRange(1.0, 7.0, padding=0)
    assert bottom.getViewBox().viewRange()[0] == pytest.approx([1.0, 7.0])


def _drag(qtbot, panel: PlotPanel, plot_index: int, dx: int) -> None:
    """A real left-button drag inside a plot (pans it)."""
    view = panel.plot_items()[plot_index].getViewBox()
    start = panel.canvas.mapFromScene(view.sceneBoundingRect().center())
    viewport = panel.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        qtbot.mouseMove(viewport, start + QPoint(dx * step // 10, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(dx, 0))


def test_pan_pauses_following_and_live_resumes(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("TRANSMISSION", "TurbineSpeed")
    panel.set_window(10.0)
    pump(qtbot, session, panel, lambda: panel.x_range()[1] != 10.0 or len(session.store.messages) > 5)
    assert panel.live
    assert panel.x_range()[1] - panel.x_range()[0] == pytest.approx(10.0)

    with qtbot.waitSignal(panel.live_changed) as blocker:
        _drag(qtbot, panel, 1, 200)  # pan the lower plot: the upper one follows (x-link)
    assert blocker.args == [False]
    assert not panel.live and not panel.live_button.isChecked()
    paused = panel.x_range()
    assert paused[0] < 0  # dragged to the right: earlier times come into view
    assert panel.plot_items()[1].getViewBox().viewRange()[0] == pytest.approx(list(paused))
    newest = session.store.last_ts
    pump(qtbot, session, panel, lambda: session.store.last_ts > newest + 0.2)
    assert panel.x_range() == pytest.approx(paused)

    panel.live_button.click()
    assert panel.live
    newest_rel = session.store.last_ts - panel.time_origin
    lo, hi = panel.x_range()
    assert hi == pytest.approx(max(newest_rel, 10.0), abs=0.05)
    assert hi - lo == pytest.approx(10.0)


def test_window_choices_and_all(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    pump(qtbot, session, panel, lambda: session.store.last_ts - (panel.time_origin or 1e18) > 0.5)
    panel.window_combo.setCurrentIndex(panel.window_combo.findText("All"))
    assert panel.window_seconds is None
    panel.refresh()
    lo, hi = panel.x_range()
    assert lo == 0.0 and hi >= 0.5
    panel.window_combo.setCurrentIndex(panel.window_combo.findText("60 s"))
    assert panel.window_seconds == 60.0 and panel.x_range() == pytest.approx((0.0, 60.0))


def test_cursor_reads_each_curve_at_a_sample_time(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedFL", 0)
    panel.add_signal("TRANSMISSION", "GearSelector")
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "TRANSMISSION", "GearSelector", 1)[0]) > 30)
    assert panel.cursor_values() == {}

    x, y = curve_data(panel, "ENGINE_DATA", "EngineSpeed")
    k = len(x) // 2
    with qtbot.waitSignal(panel.cursor_moved):
        panel.set_cursor(float(x[k]))
    values = panel.cursor_values()
    assert values[("ENGINE_DATA", "EngineSpeed")] == y[k]
    for message, signal, plot in (("WHEEL_SPEEDS", "WheelSpeedFL", 0), ("TRANSMISSION", "GearSelector", 1)):
        t, v = curve_data(panel, message, signal, plot)
        held = v[np.searchsorted(t, x[k], side="right") - 1]  # the last value sent at or before
        assert values[(message, signal)] == held
    assert panel.legend_texts(0)[0] == f"EngineSpeed: {y[k]:.6g} rpm"
    gear = panel.legend_texts(1)[0]
    assert gear.startswith("GearSelector: ") and "(" in gear  # state name and number
    assert all(p.cursor.isVisible() and p.cursor.value() == pytest.approx(x[k]) for p in panel._plots)

    # Dragging one cursor line moves them all and updates the readout.
    later = float(x[k + 3])
    panel._plots[1].cursor.setValue(later)
    assert panel.cursor_time() == pytest.approx(later)
    assert panel._plots[0].cursor.value() == pytest.approx(later)
    assert panel.cursor_values()[("ENGINE_DATA", "EngineSpeed")] == y[k + 3]

    before_first = -1.0
    panel.set_cursor(before_first)
    assert panel.cursor_values()[("ENGINE_DATA", "EngineSpeed")] is None
    assert panel.legend_texts(0)[0] == "EngineSpeed: —"
    panel.set_cursor(None)
    assert panel.cursor_values() == {}
    assert panel.legend_texts(0)[0] == "EngineSpeed (rpm)"


def test_value_table_signal_draws_steps_with_state_names(qtbot, session, panel):
    panel.add_signal("TRANSMISSION", "GearSelector")
    panel.add_signal("LIGHT_STATUS", "LowBeam")
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "TRANSMISSION", "GearSelector")[0]) > 5)

    gear = panel.curve_item("TRANSMISSION", "GearSelector")
    assert gear.opts["stepMode"] == "right"  # each value holds until the next frame
    assert panel.curve_item("LIGHT_STATUS", "LowBeam", 1).opts["stepMode"] == "right"  # 1-bit
    assert panel.curve_item("ENGINE_DATA", "EngineSpeed", 2).opts["stepMode"] is None

    labels = dict(panel.axis_labels(0))
    assert {0.0: "P", 1.0: "R", 2.0: "N", 3.0: "D", 4.0: "L"}.items() <= labels.items()
    assert panel.plot_items()[0].getAxis("left")._tickLevels == [panel.axis_labels(0)]
    assert panel.axis_labels(2) == []
    # The y range shows every real gear-lever state, not only the one in the data.
    low, high = panel.plot_items()[0].getViewBox().viewRange()[1]
    assert low < 0 and high > 4

    # A plain curve in the same plot brings numbers back.
    panel.add_signal("ENGINE_DATA", "EngineLoad", 0)
    assert panel.axis_labels(0) == []
    panel.remove_signal("ENGINE_DATA", "EngineLoad", 0)
    assert dict(panel.axis_labels(0))[3.0] == "D"


def test_layout_round_trip_through_a_file(qtbot, session, panel, tmp_path):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("TRANSMISSION", "TurbineSpeed", 0)
    panel.add_signal("TRANSMISSION", "GearSelector")
    panel.add_plot()
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedFL", 2, colour="#123456")
    panel.plot_items()[2].getViewBox().setYRange(0.0, 120.0, padding=0)
    panel.set_window(60.0)
    path = tmp_path / "plots.json"
    panel.save_layout(path)

    other = PlotPanel(session)
    qtbot.addWidget(other)
    other.add_signal("LIGHT_STATUS", "LowBeam")  # replaced by the loaded layout
    assert other.load_layout(path) == []
    assert other.signals() == panel.signals()
    assert other.plot_layout_state() == panel.plot_layout_state()
    assert other.window_seconds == 60.0
    assert other.plot_layout_state().plots[2].traces[0].colour == "#123456"
    assert other.plot_layout_state().plots[2].y_range == pytest.approx((0.0, 120.0))
    assert other.plot_layout_state().plots[0].y_range is None
    # Signals the panel no longer shows are no longer decoded.
    assert ("LIGHT_STATUS", "LowBeam") not in [s for plot in other.signals() for s in plot]


def test_layout_with_unknown_signals_reports_them(qtbot, session, panel, tmp_path):
    path = tmp_path / "other_car.json"
    path.write_text(
        '{"format": "workshop-plot-layout", "version": 1, "window_seconds": 10, "plots": ['
        '{"y_range": null, "signals": [{"message": "ENGINE_DATA", "signal": "EngineSpeed", "colour": "#3b82f6"},'
        '{"message": "NOT_HERE", "signal": "Nope", "colour": "#f97316"}]}]}'
    )
    assert panel.load_layout(path) == ["NOT_HERE.Nope"]
    assert panel.signals() == [[("ENGINE_DATA", "EngineSpeed")]]


def test_bad_layout_file_raises_an_error_naming_it(qtbot, panel, tmp_path):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    path = tmp_path / "garbled layout.json"
    path.write_text("{ this is not json")
    with pytest.raises(PlotLayoutError, match=r"garbled layout\.json"):
        panel.load_layout(path)
    path.write_text('{"format": "workshop-plot-layout", "version": 1, "plots": [{"signals": 3}]}')
    with pytest.raises(PlotLayoutError, match=r"garbled layout\.json: plots\[0\]\.signals must be a list"):
        panel.load_layout(path)
    assert panel.signals() == [[("ENGINE_DATA", "EngineSpeed")]]  # a failed load changes nothing


def _drop(panel: PlotPanel, mime: QMimeData, pos: QPoint) -> QDropEvent:
    viewport = panel.canvas.viewport()
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(pos),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(viewport, drop)
    return drop


def _mime(message: str, signal: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(SIGNAL_MIME_TYPE, f"{message}\t{signal}".encode())
    return mime


def test_drops_add_signals_to_the_plot_under_the_pointer_or_below(qtbot, panel):
    canvas = panel.canvas
    # An empty panel: a drop anywhere makes the first plot.
    assert _drop(panel, _mime("ENGINE_DATA", "EngineSpeed"), QPoint(300, 200)).isAccepted()
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedFL")
    qtbot.wait(10)  # let the layout settle

    on_first = canvas.mapFromScene(panel.plot_items()[0].getViewBox().sceneBoundingRect().center())
    assert _drop(panel, _mime("TRANSMISSION", "TurbineSpeed"), on_first).isAccepted()
    below = canvas.mapFromScene(panel.plot_items()[1].sceneBoundingRect().bottomLeft()) + QPoint(200, 8)
    assert _drop(panel, _mime("LIGHT_STATUS", "LowBeam"), below).isAccepted()
    assert panel.signals() == [
        [("ENGINE_DATA", "EngineSpeed"), ("TRANSMISSION", "TurbineSpeed")],
        [("WHEEL_SPEEDS", "WheelSpeedFL")],
        [("LIGHT_STATUS", "LowBeam")],
    ]
    assert not _drop(panel, _mime("NO_SUCH", "Signal"), on_first).isAccepted()
    assert panel.plot_count == 3


def test_drag_payload_from_the_browser_drops_onto_the_panel(qtbot, panel):
    browser = SignalBrowser(panel.session.databases)
    qtbot.addWidget(browser)
    index = browser.index_of_signal("TRANSMISSION", "GearSelector")
    assert _drop(panel, browser.proxy.mimeData([index]), QPoint(300, 200)).isAccepted()
    assert panel.signals() == [[("TRANSMISSION", "GearSelector")]]


def _peek(session, message, signal):
    """The decoder's current series for a signal, without keeping a subscription of our own."""
    series = session.decoder.subscribe(message, signal)
    session.decoder.unsubscribe(message, signal)
    return series


def test_remove_clear_and_unsubscribe(qtbot, session, panel):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("ENGINE_DATA", "EngineSpeed")  # a second plot of the same signal
    panel.add_signal("ENGINE_DATA", "EngineSpeed", 0)  # already there: nothing changes
    assert panel.signals() == [[("ENGINE_DATA", "EngineSpeed")]] * 2
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "ENGINE_DATA", "EngineSpeed")[0]) > 3)

    series = _peek(session, "ENGINE_DATA", "EngineSpeed")
    panel.remove_signal("ENGINE_DATA", "EngineSpeed", 0)
    assert panel.signals() == [[], [("ENGINE_DATA", "EngineSpeed")]]
    assert _peek(session, "ENGINE_DATA", "EngineSpeed") is series  # still drawn below
    panel.remove_plot(0)
    assert panel.signals() == [[("ENGINE_DATA", "EngineSpeed")]]
    panel.plot_items()[0].getViewBox().setXRange(1.0, 2.0, padding=0)  # the survivor still works

    panel.clear()
    assert panel.plot_count == 0 and panel.signals() == []
    assert _peek(session, "ENGINE_DATA", "EngineSpeed") is not series  # was released
    with pytest.raises(KeyError):
        panel.add_signal("ENGINE_DATA", "NoSuchSignal")
    with pytest.raises(KeyError):
        panel.add_signal("NO_SUCH_MESSAGE", "EngineSpeed")
    with pytest.raises(IndexError):
        panel.add_signal("ENGINE_DATA", "EngineSpeed", 5)


def test_screenshot_of_three_live_plots(qtbot, session, panel, tmp_path):
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.add_signal("WHEEL_SPEEDS", "WheelSpeedFL")
    panel.add_signal("TRANSMISSION", "GearSelector")
    pump(qtbot, session, panel, lambda: len(curve_data(panel, "TRANSMISSION", "GearSelector", 2)[0]) > 20)
    path = tmp_path / "plots.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 10_000


class _PaintCounter(pg.GraphicsObject):
    """A tiny item in the plot that counts how often the scene really painted it."""

    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def boundingRect(self) -> QRectF:
        return QRectF(1.0, -0.5, 1.0, 1.0)

    def paint(self, painter, *_args) -> None:
        self.paints += 1
        painter.drawRect(self.boundingRect())


def test_a_plot_repaints_thousands_of_times(qtbot):
    """PySide6 6.12.0 on CPython 3.11 drops a reference to None on every QPainter.setRenderHint
    call pyqtgraph makes while painting; a live plot aborts after a few thousand repaints.
    Real, synchronous repaints here: the process would die (or None's count would fall)."""
    panel = PlotPanel(_session())  # never started: no threads
    qtbot.addWidget(panel)
    panel.resize(420, 260)
    with qtbot.waitExposed(panel):  # an unexposed window does not paint at all
        panel.show()
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    item = panel.curve_item("ENGINE_DATA", "EngineSpeed")
    x = np.linspace(0.0, 10.0, 400)
    panel.plot_items()[0].getViewBox().setXRange(0.0, 10.0, padding=0)
    counter = _PaintCounter()
    panel.plot_items()[0].addItem(counter)
    none_refs = sys.getrefcount(None)
    for i in range(5000):
        item.setData(x, np.sin(x + i * 0.01))
        panel.canvas.viewport().repaint()
    assert counter.paints >= 5000  # every repaint really painted the plot
    if sys.version_info < (3, 12):  # None is immortal from 3.12 on: its count says nothing
        assert sys.getrefcount(None) > none_refs - 1000


def test_a_long_live_history_is_drawn_from_the_window_and_kept_whole_when_paused(qtbot):
    # Series filled directly (as a decoder would over minutes), the session never started.
    session = _session()
    widget = PlotPanel(session)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    with qtbot.waitExposed(widget):
        widget.show()
    widget.add_signal("ENGINE_DATA", "EngineSpeed")
    series = session.decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    t = np.arange(0.0, 200.0, 0.0025)  # 200 s at 400 samples/s: 80,000 samples
    v = 1000.0 + 500.0 * np.sin(t)
    v[len(v) // 2] = 9000.0  # a spike 100 s ago, outside the live window
    v[-2_000] = -300.0  # a dip 5 s ago, inside it
    series.extend(t, v)
    widget.set_window(10.0)
    widget.refresh()
    item = widget.curve_item("ENGINE_DATA", "EngineSpeed")
    x, y = curve_data(widget, "ENGINE_DATA", "EngineSpeed")
    newest = float(t[-1])
    assert widget.x_range() == pytest.approx((newest - 10.0, newest))
    # Following: only what the window shows (and the value held at its left edge), as a
    # min/max envelope of a few points per pixel column, not pyqtgraph's own downsampling.
    assert newest - 10.5 < x[0] <= newest - 10.0 and x[-1] == newest  # a block before the edge
    assert len(x) < 0.6 * 4_000 and not item.opts["autoDownsample"]  # 4,000 samples shown
    assert y.min() == -300.0 and 9000.0 not in y
    # A cursor before the window still reads the value held there.
    widget.set_cursor(100.0)
    assert widget.cursor_values()[("ENGINE_DATA", "EngineSpeed")] == 9000.0
    widget.set_cursor(None)

    widget.set_live(False)  # paused: the whole history, for panning and zooming anywhere
    x, y = curve_data(widget, "ENGINE_DATA", "EngineSpeed")
    assert len(x) == len(t) and y.max() == 9000.0 and item.opts["autoDownsample"]
    widget.set_live(True)
    assert len(curve_data(widget, "ENGINE_DATA", "EngineSpeed")[0]) < 0.6 * 4_000
    widget.set_window(300.0)  # wider than the history: every sample's envelope, spike included
    x, y = curve_data(widget, "ENGINE_DATA", "EngineSpeed")
    assert x[0] < 0.2 and y.max() == 9000.0  # the first block, drawn at its middle sample
