"""The pieces plot stacks are built from: live curves, lanes, state ticks, colours.

Kept apart from the views so plot_canvas.py holds the drawing behaviour shared by the live
Plots panel and the Log view, and this module the small value holders and Qt items they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pyqtgraph as pg
from PySide6.QtCore import QRectF

from workshop_app.core.capture.series import SignalSeries
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.gui.curve_envelope import LiveEnvelope

if TYPE_CHECKING:
    from cantools.database.can import Signal as DbcSignal

AXIS_WIDTH = 76  # fixed left-axis width so stacked plots line up (the log view's too)
MIN_PLOT_HEIGHT = 90

# Mid-luminance colours: each keeps enough contrast on white and on near-black backgrounds.
# Neighbours in the sequence differ in hue, so the first curves of a plot are easy to tell apart.
PALETTE = (
    "#3b82f6",  # blue
    "#f97316",  # orange
    "#22a355",  # green
    "#e11d48",  # crimson
    "#8b5cf6",  # violet
    "#ca8a04",  # gold
    "#0d9488",  # teal
    "#d946ef",  # magenta
    "#64748b",  # slate
)


@dataclass(eq=False)
class Curve:
    message: str
    signal: str
    colour: str
    unit: str
    series: SignalSeries
    item: pg.PlotDataItem
    states: dict[float, str]  # physical value -> value-table label; empty for plain signals
    state_span: tuple[float, float] | None  # y extent of the states worth showing at all times
    label: str  # the signal's name, "Message.Signal" when another message has one so named
    seen_total: int = -1  # series.total at the last setData
    tick_total: int = -1  # series.total after the latest tick, drawn or not
    origin: float = 0.0  # the series time of canvas time 0
    envelope: LiveEnvelope = field(default_factory=LiveEnvelope)  # what is drawn while following

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def value_at(self, t: float) -> float | None:
        """Sample-and-hold: the newest sample at or before ``t`` (a CAN value holds until the next frame)."""
        return self.series.value_at(t + self.origin)

    def describe(self, value: float) -> str:
        """A value as the legend shows it: state name and number, or number and unit."""
        return describe_value(value, self.states, self.unit)

    def reading(self, t: float) -> str:
        value = self.value_at(t)
        return f"{self.label}: " + ("—" if value is None else self.describe(value))


def describe_value(value: float, states: dict[float, str], unit: str) -> str:
    label = states.get(value)
    if label is not None:
        return f"{label} ({value:g})"
    return f"{value:.6g} {unit}".rstrip()


def states_of(definition: DbcSignal | None, choices: dict[int, object], length: int) -> dict[float, str]:
    """Physical value -> value-table name, or {} when the table marks a sentinel, not states.

    A value table on a wide signal (e.g. 0xFFFF = "Invalid") marks a sentinel, not states.
    """
    if definition is None or not choices or not (length <= 8 or len(choices) > 2):
        return {}
    return {physical_value(definition, raw): str(label) for raw, label in choices.items()}


class StateSpan(pg.GraphicsObject):
    """Draws nothing; its y bounds make auto-range include every named state of a plot."""

    def __init__(self) -> None:
        super().__init__()
        self.span: tuple[float, float] | None = None

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, *_args: object) -> None:
        pass

    def dataBounds(
        self, axis: int, frac: float = 1.0, orthoRange: tuple[float, float] | None = None
    ) -> tuple[float | None, float | None]:
        if axis == 1 and self.span is not None:
            return self.span
        return (None, None)


class LaneCurve(Protocol):
    """What a lane needs of a curve, live or from a log: its item, legend and axis facts."""

    item: pg.PlotDataItem
    unit: str
    states: dict[float, str]
    state_span: tuple[float, float] | None

    @property
    def title(self) -> str: ...

    def reading(self, t: float) -> str:
        """The legend line with the value at canvas time ``t``."""
        ...


@dataclass(eq=False)
class Lane:
    """One plot of a stack: its PlotItem, cursor line, range, curves, state ticks and event lines."""

    item: pg.PlotItem
    cursor: pg.InfiniteLine
    state_span: StateSpan
    region: pg.LinearRegionItem | None = None
    curves: list[LaneCurve] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # state labels on the y axis
    markers: list[pg.InfiniteLine] = field(default_factory=list)  # event lines

    def update_axis(self) -> None:
        """Unit label, value-table ticks and the y extent of the states, from the curves."""
        left = self.item.getAxis("left")
        curves = self.curves
        units = {c.unit for c in curves}
        left.setLabel(units.pop() if len(units) == 1 else "")
        left.showLabel(bool(left.labelText))
        # Name the states on the axis when every curve has a value table and the tables agree
        # (a gear lever's "P" and a gearbox's "Neutral" on one tick would mislead).
        merged: dict[float, str] = {}
        agree = bool(curves) and all(c.states for c in curves)
        for curve in curves if agree else ():
            for value, label in curve.states.items():
                agree = agree and merged.setdefault(value, label) == label
        ticks = sorted(merged.items()) if agree else []
        self.ticks = ticks
        left.setTicks([ticks] if ticks else None)
        # Auto-range spans the named states (plus any value the data actually takes).
        spans = [c.state_span for c in curves if c.state_span is not None]
        self.state_span.span = (
            (min(lo for lo, _ in spans) - 0.4, max(hi for _, hi in spans) + 0.4) if ticks and spans else None
        )
        self.item.getViewBox().updateAutoRange()


def physical_value(definition: DbcSignal, raw: float) -> float:
    return float(raw) * definition.scale + definition.offset


def state_span_of(definition: DbcSignal) -> tuple[float, float] | None:
    """The y extent of a signal's value table, leaving out an all-ones "invalid" marker.

    DBCs commonly name the all-ones raw value ("Invalid", "SNA") far above the real states;
    keeping it in the span would squash the states it is meant to label.
    """
    raws = sorted(int(raw) for raw in (definition.choices or {}))
    if not raws:
        return None
    if len(raws) > 2 and raws[-1] == (1 << definition.length) - 1 and raws[-1] - raws[-2] > 1:
        raws.pop()
    ends = (physical_value(definition, raws[0]), physical_value(definition, raws[-1]))
    return (min(ends), max(ends))


class SteadyViewBox(pg.ViewBox):
    """A ViewBox whose automatic y range moves only when the data need it to.

    pyqtgraph fits y to the visible data on every repaint, so on a live plot the y axis, its
    grid and every curve's bounds were redone each frame as peaks scrolled in and out. Here
    an automatic fit is taken only when the data leave the shown range or fill less than
    ``SHRINK_BELOW`` of it, and then with ``HEADROOM`` more on each side; a steady axis is
    also easier to read. Ranges set by the user or by code are taken as they are.
    """

    SHRINK_BELOW = 0.5
    HEADROOM = 0.1

    def setRange(
        self,
        rect: object = None,
        xRange: tuple[float, float] | None = None,
        yRange: tuple[float, float] | None = None,
        padding: float | None = None,
        update: bool = True,
        disableAutoRange: bool = True,
    ) -> None:
        if not disableAutoRange and rect is None and yRange is not None:
            yRange = self._steady_y(float(yRange[0]), float(yRange[1]))
            if yRange is None and xRange is None:
                return
        super().setRange(rect, xRange, yRange, padding, update, disableAutoRange)

    def _steady_y(self, lo: float, hi: float) -> tuple[float, float] | None:
        shown_lo, shown_hi = (float(v) for v in self.viewRange()[1])
        shown = shown_hi - shown_lo
        span = hi - lo
        if shown > 0 and shown_lo <= lo and hi <= shown_hi and span >= self.SHRINK_BELOW * shown:
            return None  # the data still fit well: keep the axis where it is
        margin = span * self.HEADROOM
        return (lo - margin, hi + margin)


def new_plot_item() -> pg.PlotItem:
    """One empty time plot styled like its neighbours: grid, legend, fixed axis width."""
    item = pg.PlotItem(viewBox=SteadyViewBox())
    item.setMenuEnabled(enableMenu=False, enableViewBoxMenu=True)  # no FFT/log options for a time plot
    item.hideButtons()  # the auto-range button would fight follow-live
    item.setMinimumHeight(MIN_PLOT_HEIGHT)
    item.showGrid(x=True, y=True)
    # PlotItem.addItem copies these onto every curve it receives, so set them here too.
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.addLegend(offset=(6, 4), verSpacing=-6, labelTextSize="9pt")
    for name in ("left", "bottom"):
        # Translucent grid lines take the raster engine's slow path (~4 ms per plot per
        # repaint, a fifth of the frame): draw opaque, pre-blended ones (tickAlpha 1.0,
        # colour from plot_style.style_plot), and no sub-minor level, which adds little.
        item.getAxis(name).setStyle(maxTickLevel=1, tickAlpha=1.0)
        item.getAxis(name).setZValue(-1000)  # opaque grid lines go under curves and legend
    left = item.getAxis("left")
    left.setWidth(AXIS_WIDTH)
    # No automatic SI prefixes, on the hidden top and right axes too: with one, every change of
    # the range re-typesets the axis label (a QGraphicsTextItem.setHtml), though none is shown.
    for name in ("left", "bottom", "top", "right"):
        item.getAxis(name).enableAutoSIPrefix(False)
    view = item.getViewBox()
    view.setAutoVisible(y=True)  # y fits what is in the time window, not the whole history
    view.enableAutoRange(axis=pg.ViewBox.YAxis)
    return item


def next_colour(in_plot: list[str], used: list[str]) -> str:
    """A palette colour distinct within the plot first, then across the panel."""
    return min(PALETTE, key=lambda colour: (in_plot.count(colour), used.count(colour), PALETTE.index(colour)))


def name_is_shared(databases: DatabaseSet, signal: str) -> bool:
    """Whether messages of the loaded databases have more than one signal called ``signal``.

    "Counter" or "Checksum" in several messages would read the same in a legend.
    """
    owners = {
        message.name
        for loaded in databases.databases
        for message in loaded.db.messages
        if any(s.name == signal for s in message.signals)
    }
    return len(owners) > 1
