"""PlotStack: the one plot canvas of the window, shared by the live Plots panel and the Log view.

Stacked time plots ("lanes") over one x-linked time axis labelled once at the bottom, a cursor
line through every lane with the value of each curve at the cursor in the legends, event lines
(fault codes, log notes) labelled once in the top lane, an optional draggable time range, a
hint where no plot is yet, colours from the Qt palette. The views decide what the curves are
(live series or a decoded log) and what clicks and drags mean; this module only draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QPalette
from PySide6.QtWidgets import QToolButton

from workshop_app.gui.plot_items import Lane, LaneCurve, StateSpan, new_plot_item
from workshop_app.gui.plot_style import muted_colour, style_plot
from workshop_app.gui.signal_browser import SIGNAL_MIME_TYPE

if TYPE_CHECKING:
    from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent

TIME_LABEL = "Time since first frame"


@dataclass(frozen=True, slots=True)
class MarkLine:
    """A labelled vertical line at canvas time ``t`` through every lane."""

    t: float
    text: str
    colour: str
    style: Qt.PenStyle = Qt.PenStyle.DashLine


class CurveItem(pg.PlotDataItem):
    """A PlotDataItem that skips re-reducing its data where the result could not differ.

    pyqtgraph clips and downsamples a curve's data again on every change of the view's
    range. Two such passes are wasted on a live plot, several times a second per curve:
    - while ``hold`` is set: the caller is about to give the curve new data (``setData``
      reduces it for the new range anyway), e.g. when following live data moves time;
    - when only y moved and the data span less than ``dynamicRangeLimit`` view heights
      in both the old and the new range: nothing was clipped then, nothing is now.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.hold = False
        self._shown_height = 0.0  # the view's height when the data were last reduced
        super().__init__(*args, **kwargs)

    def show_data(self, x: np.ndarray, y: np.ndarray, *, downsample: bool) -> None:
        """Draw ``x``/``y``, downsampled by pyqtgraph for the view or (``downsample`` False)
        as they are: an envelope (curve_envelope.py) would lose its pairs, and a few samples
        spread wider than pyqtgraph's block size would not be drawn at all."""
        self.opts["autoDownsample"] = downsample
        self.setData(x, y)

    def updateItems(self, styleUpdate: bool = True) -> None:
        super().updateItems(styleUpdate)
        view = self.getViewBox()
        self._shown_height = float(view.viewRect().height()) if view is not None else 0.0

    def viewRangeChanged(
        self, vb: object = None, ranges: object = None, changed: list[bool] | None = None
    ) -> None:
        if self.hold:
            return
        if changed is not None and not changed[0] and not self._may_clip_y():
            return
        super().viewRangeChanged(vb, ranges, changed)

    def _may_clip_y(self) -> bool:
        limit = self.opts["dynamicRangeLimit"]
        rect = self.dataRect()
        view = self.getViewBox()
        if limit is None or rect is None or view is None:
            return limit is not None
        # pyqtgraph clips only data spanning more than 2 * hysteresis * limit view heights.
        reach = 2.0 * float(self.opts["dynamicRangeHyst"]) * float(limit)
        span = abs(float(rect.height()))
        return span > reach * float(view.viewRect().height()) or span > reach * self._shown_height


def new_curve_item(colour: str, title: str, *, steps: bool) -> CurveItem:
    """A curve drawn the same way in every view; ``steps`` for values that hold until the next frame."""
    item = CurveItem(
        pen=pg.mkPen(colour, width=1),
        name=title,
        stepMode="right" if steps else None,
        skipFiniteCheck=True,
    )
    # Downsampled by peak (add_curve), one min/max pair per pixel column draws the same
    # envelope as pyqtgraph's default of five pairs; with five, 30 s of a signal on four
    # buses (12,000 samples) is drawn whole on a 1,400 px wide plot.
    item.opts["autoDownsampleFactor"] = 1.0
    return item


def tool_button(text: str, tip: str) -> QToolButton:
    """A flat button of a plot view's tool row."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


class PlotCanvas(pg.GraphicsLayoutWidget):
    """The graphics view holding the lanes; turns signal drops into calls of ``on_drop``."""

    def __init__(self, on_drop: Callable[[QPointF, str, str], bool] | None = None) -> None:
        super().__init__()
        self._on_drop = on_drop  # (scene position, message, signal) -> accepted
        self.setAcceptDrops(on_drop is not None)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._on_drop is not None and event.mimeData().hasFormat(SIGNAL_MIME_TYPE):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        # Not forwarded to the scene: no plot item handles drops itself.
        if self._on_drop is not None and event.mimeData().hasFormat(SIGNAL_MIME_TYPE):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        payload = bytes(event.mimeData().data(SIGNAL_MIME_TYPE).data()).decode("utf-8", "replace")
        message, sep, signal = payload.partition("\t")
        if self._on_drop is None or not sep or not message or not signal:
            event.ignore()
            return
        scene_pos = self.mapToScene(event.position().toPoint())
        if self._on_drop(scene_pos, message, signal.strip()):
            event.acceptProposedAction()
        else:
            event.ignore()


class PlotStack(QObject):
    """Lanes stacked in one :class:`PlotCanvas` (``canvas``), top to bottom.

    Signals carry canvas times (seconds since the view's first frame): ``cursor_dragged`` when
    the user drags a cursor line, ``clicked`` on a left single click in a lane,
    ``region_dragged`` when the user drags the time range, ``x_panned`` when the user pans or
    zooms time.
    """

    cursor_dragged = Signal(float)
    clicked = Signal(float)
    region_dragged = Signal(float, float)
    x_panned = Signal()

    def __init__(
        self,
        *,
        empty_hint: str,
        more_hint: str | None = None,
        on_drop: Callable[[QPointF, str, str], bool] | None = None,
        with_region: bool = False,
        lane_height: int | None = None,
        y_mouse: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.lanes: list[Lane] = []
        self.canvas = PlotCanvas(on_drop)
        self.canvas.ci.setSpacing(2)
        self.canvas.ci.setContentsMargins(4, 4, 8, 4)
        self.canvas.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._hint = pg.LabelItem(justify="center")
        self._empty_hint = empty_hint
        self._more_hint = more_hint  # a line under the lanes (None: the hint only while empty)
        self._with_region = with_region
        self._lane_height = lane_height
        self._y_mouse = y_mouse
        self._cursor: float | None = None
        self._region: tuple[float, float] | None = None
        self._marks: list[MarkLine] = []
        self._syncing = False  # guards the line sync against the lines' own change signals
        self._palette: QPalette | None = None
        self.relayout()

    # -- lanes ---------------------------------------------------------------------------------
    def add_lane(self) -> Lane:
        """A new empty lane at the bottom, x-linked to the top one."""
        item = new_plot_item()
        if self._lane_height is not None:
            item.setMinimumHeight(self._lane_height)
        view = item.getViewBox()
        # Wheel and drag act on time only when y follows the data (zooming never loses the curve).
        view.setMouseEnabled(x=True, y=self._y_mouse)
        view.sigRangeChangedManually.connect(self._on_range_changed_manually)
        cursor = pg.InfiniteLine(angle=90, movable=True)
        cursor.setZValue(50)
        cursor.setVisible(self._cursor is not None)
        if self._cursor is not None:
            cursor.setValue(self._cursor)
        cursor.sigPositionChanged.connect(self._on_cursor_dragged)
        item.addItem(cursor, ignoreBounds=True)
        state_span = StateSpan()
        item.addItem(state_span)
        region = None
        if self._with_region:
            region = pg.LinearRegionItem(orientation="vertical")
            region.setZValue(-10)
            region.setVisible(self._region is not None)
            if self._region is not None:
                region.setRegion(self._region)
            region.sigRegionChanged.connect(self._on_region_dragged)
            item.addItem(region, ignoreBounds=True)
        lane = Lane(item, cursor, state_span, region)
        if self.lanes:
            item.setXLink(self.lanes[0].item)
        self.lanes.append(lane)
        self.relayout()
        self._style(lane)
        self._draw_marks()
        return lane

    def remove_lane(self, index: int) -> Lane:
        lane = self.lanes.pop(index)
        for curve in lane.curves:
            lane.item.removeItem(curve.item)
        lane.curves.clear()
        self.canvas.ci.removeItem(lane.item)
        if index == 0 and self.lanes:
            # The survivors were linked to the removed lane: link them to the new top one.
            head = self.lanes[0].item
            head.setXLink(None)
            for other in self.lanes[1:]:
                other.item.setXLink(head)
        self.relayout()
        self._draw_marks()
        return lane

    def add_curve(self, lane: Lane, curve: LaneCurve) -> None:
        """Draw ``curve`` (its ``item``) in ``lane``; the lane's axis follows its curves."""
        lane.item.addItem(curve.item)
        # Long histories: draw min/max per pixel column, and only the visible span.
        curve.item.setDownsampling(auto=True, method="peak")
        curve.item.setClipToView(True)
        lane.curves.append(curve)
        lane.update_axis()

    def remove_curve(self, lane: Lane, curve: LaneCurve) -> None:
        lane.item.removeItem(curve.item)
        lane.curves.remove(curve)
        lane.update_axis()

    def clear(self) -> None:
        while self.lanes:
            self.remove_lane(len(self.lanes) - 1)

    def lane_at(self, scene_pos: QPointF) -> int | None:
        return next(
            (i for i, p in enumerate(self.lanes) if p.item.sceneBoundingRect().contains(scene_pos)), None
        )

    def set_hints(self, empty_hint: str, more_hint: str | None = None) -> None:
        self._empty_hint, self._more_hint = empty_hint, more_hint
        self.relayout()

    def relayout(self) -> None:
        ci = self.canvas.ci
        for item in list(ci.items):
            ci.removeItem(item)
        for row, lane in enumerate(self.lanes):
            ci.addItem(lane.item, row=row, col=0)
            is_bottom = row == len(self.lanes) - 1
            bottom = lane.item.getAxis("bottom")
            # One set of time labels, under the bottom lane; the others keep their grid lines.
            bottom.setStyle(showValues=is_bottom)
            bottom.setLabel(TIME_LABEL, units="s" if is_bottom else None)
            bottom.showLabel(is_bottom)
        if not self.lanes:
            self._set_hint(self._empty_hint, "11pt")
            self._hint.setMaximumHeight(16_777_215)
        elif self._more_hint is not None:
            self._set_hint(self._more_hint, "8pt")
            self._hint.setMaximumHeight(20)
        else:
            return
        ci.addItem(self._hint, row=len(self.lanes), col=0)

    @property
    def hint_text(self) -> str:
        return str(self._hint.text) if self._hint.scene() is not None else ""

    def _set_hint(self, text: str, size: str) -> None:
        colour = muted_colour(self._palette).name() if self._palette is not None else None
        if colour is not None:
            self._hint.setAttr("color", colour)
        self._hint.setText(text, size=size)

    # -- time axis -----------------------------------------------------------------------------
    def x_range(self) -> tuple[float, float] | None:
        if not self.lanes:
            return None
        lo, hi = self.lanes[0].item.getViewBox().viewRange()[0]
        return (float(lo), float(hi))

    def set_x_range(self, lo: float, hi: float, padding: float = 0.0) -> None:
        if self.lanes:
            self.lanes[0].item.getViewBox().setXRange(lo, hi, padding=padding)

    # -- cursor, readouts, range, event lines --------------------------------------------------
    @property
    def cursor(self) -> float | None:
        return self._cursor

    def set_cursor(self, t: float | None) -> None:
        """Show the cursor line at ``t`` in every lane (None hides it) and update the legends."""
        self._cursor = None if t is None else float(t)
        self._syncing = True
        try:
            for lane in self.lanes:
                lane.cursor.setVisible(t is not None)
                if t is not None:
                    lane.cursor.setValue(float(t))
        finally:
            self._syncing = False
        self.update_readouts()

    def update_readouts(self) -> None:
        """Legend lines: each curve's title, or its value at the cursor when one is shown."""
        t = self._cursor
        for lane in self.lanes:
            legend = lane.item.legend
            if legend is None:
                continue
            for curve in lane.curves:
                label = legend.getLabel(curve.item)
                if label is None:
                    continue
                text = curve.title if t is None else curve.reading(t)
                if label.text != text:
                    label.setText(text)

    @property
    def region(self) -> tuple[float, float] | None:
        return self._region

    def set_region(self, span: tuple[float, float] | None) -> None:
        self._region = None if span is None else (min(span), max(span))
        self._syncing = True
        try:
            for lane in self.lanes:
                if lane.region is None:
                    continue
                lane.region.setVisible(self._region is not None)
                if self._region is not None:
                    lane.region.setRegion(self._region)
        finally:
            self._syncing = False

    def set_marks(self, marks: Sequence[MarkLine]) -> None:
        """Replace the event lines (kept for lanes added later)."""
        self._marks = list(marks)
        self._draw_marks()

    def _draw_marks(self) -> None:
        for lane in self.lanes:
            for line in lane.markers:
                lane.item.removeItem(line)
            lane.markers.clear()
        for i, lane in enumerate(self.lanes):
            for mark in self._marks:
                line = pg.InfiniteLine(
                    mark.t,
                    angle=90,
                    movable=False,
                    pen=pg.mkPen(mark.colour, width=1, style=mark.style),
                    # The text shows once, in the top lane, rather than in every lane.
                    label=mark.text if i == 0 and mark.text else None,
                    labelOpts={"position": 0.92, "color": mark.colour, "anchors": [(0, 0), (0, 0)]},
                )
                line.setZValue(40)
                lane.item.addItem(line, ignoreBounds=True)
                lane.markers.append(line)

    # -- theme ---------------------------------------------------------------------------------
    def apply_theme(self, palette: QPalette) -> None:
        self._palette = palette
        self.canvas.setBackground(palette.color(QPalette.ColorRole.Base))
        self._hint.setAttr("color", muted_colour(palette).name())
        self._hint.setText(self._hint.text)
        for lane in self.lanes:
            self._style(lane)

    def _style(self, lane: Lane) -> None:
        if self._palette is None:
            return
        palette = self._palette
        style_plot(lane.item, lane.cursor, palette)
        if lane.region is None:
            return
        highlight = palette.color(QPalette.ColorRole.Highlight)
        fill = QColor(highlight)
        fill.setAlpha(40)
        hover = QColor(highlight)
        hover.setAlpha(70)
        lane.region.setBrush(pg.mkBrush(fill))
        lane.region.setHoverBrush(pg.mkBrush(hover))
        for line in lane.region.lines:
            line.setPen(pg.mkPen(highlight, width=1))
            line.setHoverPen(pg.mkPen(highlight, width=3))

    # -- user input ----------------------------------------------------------------------------
    def _on_cursor_dragged(self, line: pg.InfiniteLine) -> None:
        if not self._syncing:
            self.cursor_dragged.emit(float(line.value()))

    def _on_region_dragged(self, region: pg.LinearRegionItem) -> None:
        if not self._syncing:
            t0, t1 = region.getRegion()
            self.region_dragged.emit(float(t0), float(t1))

    def _on_range_changed_manually(self, mask: list[bool]) -> None:
        if mask[0]:
            self.x_panned.emit()

    def _on_scene_clicked(self, event: MouseClickEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        for lane in self.lanes:
            view = lane.item.getViewBox()
            if view.sceneBoundingRect().contains(event.scenePos()):
                self.clicked.emit(float(view.mapSceneToView(event.scenePos()).x()))
                return
