"""The one plot canvas (PlotStack) under both views: same lanes, cursor, readouts and event lines."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.log_view import LogAnalysisView
from workshop_app.gui.plot_canvas import TIME_LABEL, MarkLine, PlotStack, new_curve_item
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


class _Ramp:
    """A curve whose value is its time: readings are easy to predict."""

    unit = "s"
    states: ClassVar[dict[float, str]] = {}
    state_span = None
    title = "ramp (s)"

    def __init__(self) -> None:
        self.item = new_curve_item("#3b82f6", self.title, steps=False)
        self.item.setData(np.arange(10.0), np.arange(10.0))

    def reading(self, t: float) -> str:
        return f"ramp: {np.floor(t):g} s"


def test_lanes_share_time_cursor_marks_and_one_time_label(qtbot):
    stack = PlotStack(empty_hint="nothing yet", more_hint="drop more", with_region=True)
    qtbot.addWidget(stack.canvas)
    stack.canvas.resize(500, 400)
    assert stack.hint_text == "nothing yet" and stack.x_range() is None
    top, bottom = stack.add_lane(), stack.add_lane()
    assert stack.hint_text == "drop more"
    for lane in (top, bottom):
        stack.add_curve(lane, _Ramp())
    stack.set_x_range(2.0, 6.0)
    assert bottom.item.getViewBox().viewRange()[0] == pytest.approx([2.0, 6.0])  # x-linked
    axes = [lane.item.getAxis("bottom") for lane in (top, bottom)]
    assert [a.style["showValues"] for a in axes] == [False, True]  # one row of time labels
    assert axes[1].labelText == TIME_LABEL and axes[1].label.isVisible() and not axes[0].label.isVisible()

    moved: list[float] = []
    stack.cursor_dragged.connect(moved.append)
    stack.set_cursor(4.5)
    assert moved == []  # setting it is not a drag
    assert all(lane.cursor.isVisible() and lane.cursor.value() == 4.5 for lane in (top, bottom))
    assert [label.text for _, label in top.item.legend.items] == ["ramp: 4 s"]
    bottom.cursor.setValue(7.25)  # what a drag does
    assert moved == [7.25]
    stack.set_cursor(None)
    assert [label.text for _, label in bottom.item.legend.items] == ["ramp (s)"]

    stack.set_marks([MarkLine(3.0, "P0300", "#d1242f"), MarkLine(5.0, "", "#888888", Qt.PenStyle.DotLine)])
    assert [len(lane.markers) for lane in (top, bottom)] == [2, 2]
    labelled = [getattr(lane.markers[0], "label", None) is not None for lane in (top, bottom)]
    assert labelled == [True, False]  # the text once, in the top lane
    third = stack.add_lane()
    assert len(third.markers) == 2  # lanes added later get them too

    stack.set_region((5.0, 1.0))
    assert stack.region == (1.0, 5.0) and all(lane.region.isVisible() for lane in stack.lanes)
    stack.remove_lane(0)
    assert stack.lanes[0].item.getViewBox().linkedView(pg.ViewBox.XAxis) is None  # the new head leads
    stack.clear()
    assert stack.lanes == [] and stack.hint_text == "nothing yet"


def test_both_views_are_built_on_the_same_canvas(qtbot, tmp_path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    panel = PlotPanel(CaptureSession(SimulatorSource(FrameRing()), dbs))  # never started
    view = LogAnalysisView(dbs)
    for widget in (panel, view):
        qtbot.addWidget(widget)
    assert type(panel._stack) is type(view._stack) is PlotStack
    assert panel.canvas is panel._stack.canvas and view.canvas is view._stack.canvas
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    assert panel.plot_items()[0] is panel._stack.lanes[0].item
