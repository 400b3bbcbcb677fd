"""How often the views redraw on ticks: the trace's rows and the plots are held to a readable
rate by the wall clock (a fake clock here, moved by the test), hidden plots are not redrawn
until shown, and a held change is always shown at the next redraw.

Real parts: WorkshopSession on a virtual bus or the simulated car, the demo DBC, real widgets
offscreen. Ticks are driven by the test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from helpers.sim_workshop import simulated_workshop
from helpers.sim_workshop import tick_until as _tick_until
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem, QTreeView

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.types import BusConfig, Frame
from workshop_app.core.workshop import WorkshopSession
from workshop_app.gui.data_delegate import PayloadDelegate
from workshop_app.gui.plot_canvas import new_curve_item
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.gui.trace_model import COL_DATA, TraceModel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _frame(ident: int, data: bytes, channel: str) -> Frame:
    return Frame(time.time(), ident, data, channel)


@pytest.fixture
def bus_session() -> Iterator[tuple[WorkshopSession, str]]:
    channel = f"redraw-{uuid.uuid4().hex[:8]}"
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)))
    yield session, channel
    session.close()


def test_a_trace_row_repaints_at_most_once_per_interval_and_then_shows_the_latest(bus_session):
    session, channel = bus_session
    clock = FakeClock()
    model = TraceModel(session, repaint_interval=0.1, clock=clock)
    model.follow(session)
    session.ring.push_many(_frame(i, b"\x00", channel) for i in (0x100, 0x200))
    session.tick()
    repainted: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda tl, br, *_: repainted.append((tl.row(), br.row())))
    model._ticks = 0  # no sweep within the next five ticks

    clock.now += 0.2
    session.ring.push_many([_frame(0x100, b"\x01", channel)])
    session.tick()
    assert repainted == [(0, 0)] and model.last_repainted == [0]

    clock.now += 0.03  # within the interval: the change waits ...
    session.ring.push_many([_frame(0x100, b"\x02", channel), _frame(0x200, b"\x02", channel)])
    session.tick()
    assert repainted == [(0, 0)] and model.last_repainted == ()
    assert model.index(0, COL_DATA).data() == "02"  # ... though a paint would show it already

    clock.now += 0.03
    session.tick()  # a quiet tick, still too soon
    assert repainted == [(0, 0)]
    clock.now += 0.05  # 0.11 s since the last repaint: both held rows are repainted now
    session.tick()
    assert repainted == [(0, 0), (0, 1)] and model.last_repainted == [0, 1]
    assert [model.index(r, COL_DATA).data() for r in (0, 1)] == ["02", "02"]
    clock.now += 0.2
    session.tick()  # nothing changed since: nothing to repaint
    assert repainted == [(0, 0), (0, 1)]


def test_siblings_are_the_indexes_of_the_same_parent(bus_session):
    session, channel = bus_session
    dbs = session.capture.databases
    dbs.add(demo_dbc_path())
    message = next(m for loaded in dbs.databases for m in loaded.db.messages if len(m.signals) > 2)
    model = TraceModel(session)
    session.ring.push_many(
        [
            _frame(0x001, b"\x00", channel),
            Frame(time.time(), message.frame_id, bytes(message.length), channel, message.is_extended_frame),
        ]
    )
    session.tick()
    model.refresh(None)
    assert model.rowCount() == 2
    top = model.index(1, 0)
    assert model.rowCount(top) == len(message.signals)
    assert model.sibling(0, COL_DATA, top) == model.index(0, COL_DATA)
    child = model.index(1, 0, top)
    assert model.sibling(2, COL_DATA, child) == model.index(2, COL_DATA, top)
    assert model.sibling(2, COL_DATA, child).parent() == top
    assert not model.sibling(len(message.signals), 0, child).isValid()
    assert not model.sibling(2, 0, model.index(0, 0)).isValid()


def test_rows_outside_the_view_are_not_painted_but_show_the_latest_when_scrolled_to(qtbot, bus_session):
    session, channel = bus_session
    model = TraceModel(session, repaint_interval=0.0)
    model.follow(session)
    session.ring.push_many(_frame(0x100 + i, b"\x00", channel) for i in range(60))
    session.tick()
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setUniformRowHeights(True)
    view.resize(600, 200)
    with qtbot.waitExposed(view):
        view.show()
    asked: list[int] = []
    original = model.data

    def counted(index, role=0):  # the view calls data() through the instance
        if index.isValid() and not index.parent().isValid():
            asked.append(index.row())
        return original(index, role)

    model.data = counted  # type: ignore[method-assign]
    last = model.rowCount() - 1
    assert view.visualRect(model.index(last, 0)).top() > view.viewport().height()  # off screen
    session.ring.push_many([_frame(0x100 + last, b"\x07", channel)])
    session.tick()
    assert model.last_repainted == [last]
    asked.clear()
    view.viewport().repaint()
    assert last not in asked  # the changed row is out of view: not painted
    view.scrollToBottom()
    view.viewport().repaint()
    assert last in asked and model.index(last, COL_DATA).data() == "07"


def test_the_payload_paints_fresh_bytes_highlighted_and_a_cut_payload_with_an_ellipsis(qtbot, bus_session):
    session, channel = bus_session
    session.ring.push_many([_frame(0x100, bytes(8), channel)])
    session.tick()
    session.ring.push_many([_frame(0x100, b"\xff" + bytes(7), channel)])  # byte 0 changes
    session.tick()
    model = TraceModel(session)
    model.refresh(None)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    delegate = PayloadDelegate(lambda: session.capture.store.last_ts, QColor(255, 0, 0))
    image = QImage(400, 24, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 400, 24)
    option.palette = view.palette()
    painter = QPainter(image)
    delegate.paint(painter, option, model.index(0, COL_DATA))
    painter.end()
    reds = [image.pixelColor(x, 12) for x in range(4, 40)]
    assert any(c.red() > 200 and c.green() < 120 for c in reds)  # byte 0 highlighted
    tail = [image.pixelColor(x, 12) for x in range(200, 400)]
    assert not any(c.red() > 200 and c.green() < 120 for c in tail)  # the other bytes are not

    # Too narrow for eight bytes: as many as fit, then an ellipsis, nothing past the cell.
    image.fill(QColor("white"))
    option.rect = QRect(0, 0, 80, 24)
    painter = QPainter(image)
    delegate.paint(painter, option, model.index(0, COL_DATA))
    painter.end()
    assert all(image.pixelColor(x, y) == QColor("white") for x in range(90, 400, 7) for y in range(0, 24, 3))


@pytest.fixture
def car() -> Iterator[WorkshopSession]:
    with simulated_workshop() as session:
        yield session


def _drawn(panel: PlotPanel) -> int:
    x, _ = panel.curve_item("ENGINE_DATA", "EngineSpeed").getData()
    return 0 if x is None else len(x)


def test_a_hidden_plot_panel_is_not_redrawn_until_it_is_shown(qtbot, car):
    panel = PlotPanel(car.capture, redraw_interval=0.0)
    qtbot.addWidget(panel)
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.follow(car)
    curve = panel._plots[0].curves[0]
    _tick_until(car, lambda: curve.series.total >= 5, "samples while hidden")
    assert panel.redraws == 0 and _drawn(panel) == 0
    with qtbot.waitExposed(panel):
        panel.show()  # catches up at once, before any further tick
    # Every sample taken; fewer may be drawn (one min/max pair per pixel column).
    assert panel.redraws == 1 and curve.seen_total == curve.series.total >= 5 and _drawn(panel) > 0
    _tick_until(car, lambda: panel.redraws >= 3, "redraws on ticks while shown")
    panel.hide()
    redraws = panel.redraws
    seen = curve.seen_total
    _tick_until(car, lambda: curve.series.total > seen + 3, "more samples while hidden")
    assert panel.redraws == redraws and curve.seen_total == seen


def test_plots_redraw_at_most_once_per_interval_on_ticks(qtbot, car):
    clock = FakeClock()
    panel = PlotPanel(car.capture, redraw_interval=0.04, clock=clock)
    qtbot.addWidget(panel)
    with qtbot.waitExposed(panel):
        panel.show()
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.follow(car)
    car.tick()
    assert panel.redraws == 1
    curve = panel._plots[0].curves[0]
    seen = curve.seen_total
    _tick_until(car, lambda: curve.series.total > seen + 3, "samples within the interval")
    assert panel.redraws == 1 and curve.seen_total == seen  # too soon: held
    clock.now += 0.05
    car.tick()
    assert panel.redraws == 2 and curve.seen_total == curve.series.total  # the held samples too
    panel.refresh()  # an explicit refresh is never held
    assert panel.redraws == 3


def test_a_curve_reduces_its_data_again_for_time_but_not_for_y_alone(qtbot):
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    item = new_curve_item("#3b82f6", "x", steps=False)
    plot.addItem(item)
    item.setClipToView(True)  # after addItem, which gives the curve the plot's setting
    t = np.linspace(0.0, 100.0, 10_001)
    item.setData(t, np.sin(t))
    view = plot.getViewBox()
    view.setXRange(10.0, 20.0, padding=0)
    shown = item.getData()[0]
    assert shown is not None and shown[0] >= 9.9 and shown[-1] <= 20.1  # clipped to the view
    view.setYRange(-5.0, 5.0, padding=0)
    assert item.getData()[0] is shown  # y alone: the reduced data stay as they were
    item.hold = True
    view.setXRange(30.0, 40.0, padding=0)
    assert item.getData()[0] is shown  # held: the caller's setData follows
    item.hold = False
    item.setData(t, np.cos(t))
    x = item.getData()[0]
    assert x is not None and x[0] >= 29.9 and x[-1] <= 40.1


def test_the_automatic_y_range_moves_only_when_the_data_need_it(qtbot):
    import pyqtgraph as pg

    from workshop_app.gui.plot_items import new_plot_item

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    item = new_plot_item()
    widget.addItem(item)
    view = item.getViewBox()
    curve = new_curve_item("#3b82f6", "x", steps=False)
    item.addItem(curve)
    view.setXRange(0.0, 10.0, padding=0)
    t = np.linspace(0.0, 10.0, 101)

    def fitted(values: np.ndarray) -> tuple[float, float]:
        curve.setData(t, values)
        view.updateAutoRange()
        lo, hi = view.viewRange()[1]
        return float(lo), float(hi)

    lo, hi = fitted(np.sin(t))
    assert lo < -1.0 and hi > 1.0
    assert fitted(0.9 * np.sin(t)) == (lo, hi)  # still fits well: the axis stays
    grown = fitted(3.0 * np.sin(t))
    assert grown[0] < -3.0 and grown[1] > 3.0  # beyond the range: refitted at once
    shrunk = fitted(0.5 * np.sin(t))
    assert -1.0 < shrunk[0] < -0.5 and 0.5 < shrunk[1] < 1.0  # fills under half: refitted
    view.setYRange(-10.0, 10.0, padding=0)  # a range set by the user is taken as it is
    assert [float(v) for v in view.viewRange()[1]] == [-10.0, 10.0]
