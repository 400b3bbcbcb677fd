"""PlotPanel: stacked live plots of decoded signals over one shared time axis.

Every curve reads a SignalSeries the session's LiveDecoder fills; the panel only subscribes,
copies arrays and draws. ``refresh`` (on every tick of the workshop it follows, :meth:`PlotPanel.follow`)
touches only curves whose series grew, so an idle plot costs almost nothing per tick. Saving and
restoring the plots as a layout file is ``plot_panel_layouts.py``.

Time is seconds since the first frame of the session (the earliest first-seen timestamp in
the FrameStore when the panel first finds data); the origin never moves afterwards, so a
saved cursor time or a paused view keeps pointing at the same moment.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.session import CaptureSession, CaptureStats
from workshop_app.core.workshop import Subscription, WorkshopSession
from workshop_app.gui.plot_canvas import PlotStack, new_curve_item, tool_button
from workshop_app.gui.plot_items import (
    PALETTE,
    Curve,
    Lane,
    name_is_shared,
    next_colour,
    state_span_of,
    states_of,
)
from workshop_app.gui.plot_panel_layouts import PlotLayoutsMixin
from workshop_app.gui.plot_panel_marks import PlotMarksMixin
from workshop_app.gui.redraw_turns import RedrawTurns

if TYPE_CHECKING:
    from workshop_app.gui.plot_canvas import PlotCanvas

__all__ = ["PALETTE", "SERIES_CAPACITY", "WINDOWS", "PlotPanel"]  # PALETTE: the log view's too

WINDOWS: tuple[tuple[str, float | None], ...] = (
    ("10 s", 10.0),
    ("30 s", 30.0),
    ("60 s", 60.0),
    ("5 min", 300.0),
    ("All", None),
)
SERIES_CAPACITY = 100_000  # samples kept per signal: ~17 min of a 10 ms message
# Seconds per redraw on ticks: 20 frames a second look fluid, and every redraw costs the
# window a repaint of every plot. Two redraws are at least 3/4 of it apart (see _on_stats).
REDRAW_INTERVAL = 0.05


class PlotPanel(PlotMarksMixin, PlotLayoutsMixin, QWidget):
    """Stacked plots of live signals sharing one time axis, with follow-live, cursor and layouts.

    Example::

        panel = PlotPanel(session)
        panel.add_signal("ENGINE_DATA", "EngineSpeed")     # a new plot at the bottom: returns 0
        panel.add_signal("ENGINE_DATA", "EngineLoad", 0)   # into the same plot
        subscriptions = panel.follow(workshop)             # redraws on every tick
    """

    live_changed = Signal(bool)  # following the newest data (True) or paused (False)
    cursor_moved = Signal(float)  # cursor time in seconds since the session's first frame
    plots_changed = Signal()  # plots or signals were added or removed

    def __init__(
        self,
        session: CaptureSession,
        parent: QWidget | None = None,
        redraw_interval: float = REDRAW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.redraw_interval = redraw_interval  # on ticks (follow); refresh() always redraws
        self._clock = clock
        self._redraw_due = -math.inf
        self._stale = False  # ticks went by without a redraw (hidden or too soon)
        self.redraws = 0  # refreshes that drew, for tests and benchmarks
        self._may_redraw: Callable[[], bool] = lambda: True  # asks the window's RedrawTurns (follow)
        self._t0: float | None = None
        self._live = True
        self._window: float | None = 30.0
        self._applied_x: tuple[float, float] | None = None
        self._markers: list[tuple[float, str, str]] = []
        self._source = session.source  # a different source restarts the time axis (refresh)

        self._stack = PlotStack(
            empty_hint="Drag signals here from the signal browser",
            more_hint="Drop a signal here for a new plot",
            on_drop=self._on_signal_dropped,
            parent=self,
        )
        self._plots: list[Lane] = self._stack.lanes  # the same list: the stack owns the lanes
        self.canvas: PlotCanvas = self._stack.canvas
        self._stack.cursor_dragged.connect(self.set_cursor)
        self._stack.clicked.connect(self._on_plot_clicked)
        self._stack.x_panned.connect(self._on_x_panned)

        self.add_plot_button = tool_button("+ Plot", "Add an empty plot at the bottom")
        self.add_plot_button.clicked.connect(self._on_add_plot_clicked)
        self.window_combo = QComboBox()
        self.window_combo.setToolTip("Time span shown while following live data")
        for text, seconds in WINDOWS:
            self.window_combo.addItem(text, seconds)
        self.window_combo.setCurrentIndex(1)
        self.window_combo.currentIndexChanged.connect(self._on_window_chosen)
        self.live_button = tool_button("Live", "Follow the newest data (panning or zooming pauses)")
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.toggled.connect(self._on_live_toggled)
        self.cursor_button = tool_button("Cursor", "Show a cursor that reads every curve's value")
        self.cursor_button.setCheckable(True)
        self.cursor_button.toggled.connect(self._on_cursor_toggled)
        self.clear_button = tool_button("Clear", "Remove every plot")
        self.clear_button.clicked.connect(self.clear)
        self.layout_button = tool_button("Layout", "Save or load the plot layout")
        self.layout_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        layout_menu = QMenu(self.layout_button)
        layout_menu.addAction("Save layout…", self._on_save_layout_chosen)
        layout_menu.addAction("Load layout…", self._on_load_layout_chosen)
        self.layout_button.setMenu(layout_menu)
        self.cursor_label = QLabel()

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.setSpacing(6)
        bar.addWidget(self.add_plot_button)
        bar.addWidget(QLabel("Window"))
        bar.addWidget(self.window_combo)
        bar.addWidget(self.live_button)
        bar.addWidget(self.cursor_button)
        bar.addWidget(self.cursor_label)
        bar.addStretch(1)
        bar.addWidget(self.layout_button)
        bar.addWidget(self.clear_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addLayout(bar)
        box.addWidget(self.canvas, 1)

        self._apply_theme()

    # --- structure ---------------------------------------------------------------------------

    @property
    def plot_count(self) -> int:
        return len(self._plots)

    def plot_items(self) -> list[pg.PlotItem]:
        """The pyqtgraph PlotItems, top to bottom."""
        return [plot.item for plot in self._plots]

    def signals(self) -> list[list[tuple[str, str]]]:
        """(message, signal) of every curve, per plot from top to bottom."""
        return [[(c.message, c.signal) for c in plot.curves] for plot in self._plots]

    def add_plot(self) -> int:
        """Append an empty plot at the bottom; returns its index."""
        if not self._plots:
            self._applied_x = None
        self._add_menu_actions(self._stack.add_lane())
        self._apply_x_range(force=True)
        self.plots_changed.emit()
        return len(self._plots) - 1

    def remove_plot(self, index: int) -> None:
        """Remove a plot and its curves (unsubscribing signals no other curve uses)."""
        before = self._subscribed_keys()
        self._stack.remove_lane(index)
        self._release_unused(before)
        if index == 0 and self._plots:
            self._applied_x = None  # the new top plot holds the shared range
        self._apply_x_range(force=True)
        self.plots_changed.emit()

    def clear(self) -> None:
        """Remove every plot and unsubscribe their signals."""
        while self._plots:
            self.remove_plot(len(self._plots) - 1)

    def add_signal(
        self, message: str, signal: str, plot_index: int | None = None, colour: str | None = None
    ) -> int:
        """Plot ``message.signal`` in plot ``plot_index`` (None: a new plot at the bottom).

        Returns the plot's index. Adding a signal a plot already shows changes nothing.
        Raises ``KeyError`` if no loaded database has the message or signal, ``IndexError``
        for a plot index that does not exist.
        """
        definition = self.session.decoder.find_message(message).get_signal_by_name(signal)
        if plot_index is not None and not 0 <= plot_index < len(self._plots):
            raise IndexError(f"no plot {plot_index} (there are {len(self._plots)})")
        if plot_index is not None and any(
            (c.message, c.signal) == (message, signal) for c in self._plots[plot_index].curves
        ):
            return plot_index
        if plot_index is None:
            plot_index = self.add_plot()
        plot = self._plots[plot_index]
        series = self.session.decoder.subscribe(message, signal, SERIES_CAPACITY)
        states = states_of(definition, dict(definition.choices or {}), definition.length)
        used = [c.colour for p in self._plots for c in self._curves(p)]
        colour = colour or next_colour([c.colour for c in self._curves(plot)], used)
        label = f"{message}.{signal}" if name_is_shared(self.session.databases, signal) else signal
        # Discrete signals hold their value until the next frame: draw steps, not ramps.
        item = new_curve_item(
            colour,
            f"{label} ({definition.unit})" if definition.unit else label,
            steps=bool(states) or definition.length == 1,
        )
        curve = Curve(
            message,
            signal,
            colour,
            definition.unit or "",
            series,
            item,
            states,
            state_span_of(definition),
            label,
        )
        self._stack.add_curve(plot, curve)
        self._update_curve(curve)
        self._update_readouts()
        self.plots_changed.emit()
        return plot_index

    def remove_signal(self, message: str, signal: str, plot_index: int | None = None) -> None:
        """Remove the signal's curve from one plot (None: from every plot). Empty plots stay."""
        before = self._subscribed_keys()
        targets = self._plots if plot_index is None else [self._plots[plot_index]]
        for plot in targets:
            for curve in [c for c in self._curves(plot) if (c.message, c.signal) == (message, signal)]:
                self._stack.remove_curve(plot, curve)
        self._release_unused(before)
        self._update_readouts()
        self.plots_changed.emit()

    def curve_item(self, message: str, signal: str, plot_index: int = 0) -> pg.PlotDataItem:
        """The PlotDataItem drawing ``message.signal`` in a plot (KeyError if not there)."""
        for curve in self._plots[plot_index].curves:
            if (curve.message, curve.signal) == (message, signal):
                return curve.item
        raise KeyError(f"{message}.{signal} is not in plot {plot_index}")

    def axis_labels(self, plot_index: int) -> list[tuple[float, str]]:
        """The value-table ticks on a plot's y axis (empty when it shows plain numbers)."""
        return list(self._plots[plot_index].ticks)

    # --- live data ---------------------------------------------------------------------------

    @property
    def time_origin(self) -> float | None:
        """Absolute timestamp shown as 0 s (None until the first frame arrives)."""
        return self._t0

    def follow(self, workshop: WorkshopSession, turns: RedrawTurns | None = None) -> list[Subscription]:
        """Redraw on the ticks of ``workshop`` (quiet ticks too: the live view keeps moving), at
        most once per ``redraw_interval`` and only while the panel is shown; with ``turns``,
        only in ticks where no other heavy view redraws (a refused redraw waits a tick)."""
        if turns is not None:
            self._may_redraw = lambda: turns.claim(self, workshop.ticks)
        return [workshop.subscribe("stats", self._on_stats)]

    def _on_stats(self, _stats: CaptureStats) -> None:
        if self.session.source is not self._source:
            self._restart_time_axis()  # on the tick of the switch, shown or not
        now = self._clock()
        if self.isVisible() and now >= self._redraw_due and self._may_redraw():
            # On average one redraw per interval, though ticks do not fall on its multiples
            # (on a 33 ms tick a plain "40 ms since the last one" would redraw every other tick).
            interval = self.redraw_interval
            self._redraw_due = max(self._redraw_due + interval, now + 0.75 * interval)
            self.refresh()
        else:
            self._stale = True
        for plot in self._plots:
            for curve in plot.curves:
                curve.tick_total = curve.series.total

    def showEvent(self, event: QShowEvent) -> None:
        # Hidden (a closed or tabbed-away dock), the panel skipped its redraws: catch up.
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self, _frames: int = 0) -> None:
        """Redraw curves whose series changed and follow the newest data (call once per tick)."""
        if self.session.source is not self._source:
            self._restart_time_axis()
        self._stale = False
        self.redraws += 1
        moved = [c for p in self._plots for c in p.curves if c.series.total != c.seen_total]
        if self._t0 is None:
            self._t0 = self._first_frame_time(moved)
            if self._t0 is None:
                return
            self._draw_markers()
        # Follow first: setData then reduces each curve once, for the view it will be drawn in
        # (held, the moved curves do not reduce their old data for the new range first).
        for curve in moved:
            curve.item.hold = True
        try:
            self._apply_x_range()
        finally:
            for curve in moved:
                curve.item.hold = False
        self._draw(moved)
        if moved and self._stack.cursor is not None:
            self._update_readouts()

    def _restart_time_axis(self) -> None:
        """Start over on a new source: its own time origin, none of the previous source's samples.

        A log's clock has nothing to do with the live car's (nor one car's with another's):
        keeping the old origin would draw the new samples years away from it. The decoder has
        already appended this tick's samples of the new source (the session ticks before the
        panel refreshes), and each curve saw every older sample at the previous refresh, so the
        samples beyond ``seen_total`` are the new source's and are kept.
        """
        self._source = self.session.source
        done: set[int] = set()
        for plot in self._plots:
            for curve in plot.curves:
                series = curve.series
                if id(series) not in done:
                    done.add(id(series))
                    # Samples up to the previous tick are the old source's (seen or skipped).
                    seen = max(curve.seen_total, curve.tick_total, 0)
                    fresh = min(max(series.total - seen, 0), len(series))
                    t, v = series.arrays()
                    series.clear()
                    if fresh:
                        series.extend(t[-fresh:], v[-fresh:])
                curve.seen_total = curve.tick_total = -1
                curve.envelope.reset()
                curve.item.setData(np.empty(0), np.empty(0))
        self._markers.clear()  # event times of the previous source
        self._t0 = None
        self._draw_markers()
        self._applied_x = None

    @property
    def live(self) -> bool:
        return self._live

    def set_live(self, live: bool) -> None:
        """Follow the newest data (True) or keep the current view (False)."""
        if live == self._live:
            return
        self._live = live
        self.live_button.setChecked(live)
        if live:
            self._applied_x = None  # the user may have moved the view since the last apply
            self._apply_x_range(force=True)
        self._retake_all()  # paused: the whole series; following: the window's envelope
        self.live_changed.emit(live)

    @property
    def window_seconds(self) -> float | None:
        return self._window

    def set_window(self, seconds: float | None) -> None:
        """Time span shown while following (None: everything since the first frame); resumes live."""
        if seconds is not None and seconds <= 0:
            raise ValueError("the window must be positive")
        self._window = seconds
        position = next((i for i, (_, s) in enumerate(WINDOWS) if s == seconds), -1)
        if position < 0:
            self.window_combo.addItem(f"{seconds:g} s", seconds)
            position = self.window_combo.count() - 1
        self.window_combo.blockSignals(True)
        self.window_combo.setCurrentIndex(position)
        self.window_combo.blockSignals(False)
        self._applied_x = None
        self.set_live(True)
        self._apply_x_range(force=True)
        self._retake_all()  # a wider window needs older samples

    def x_range(self) -> tuple[float, float]:
        """The visible time span (seconds since the first frame), shared by every plot."""
        return self._stack.x_range() or (0.0, 0.0)

    # --- internals: data ---------------------------------------------------------------------

    def _first_frame_time(self, curves: list[Curve]) -> float | None:
        """The session's first frame time; from the series themselves if the store has none."""
        firsts = [s.first_ts for s in self.session.store.messages.values() if s.count]
        if not firsts:  # series filled without the store (scripts, benchmarks)
            firsts = [float(c.series.arrays()[0][0]) for c in curves if len(c.series)]
        return float(min(firsts)) if firsts else None

    def _update_curve(self, curve: Curve) -> None:
        if self._t0 is not None and curve.series.total != curve.seen_total:
            self._draw([curve])

    def _retake_all(self) -> None:
        """Draw every curve anew (what a curve is drawn from depends on live and the window)."""
        if self._t0 is not None:
            self._draw([c for p in self._plots for c in self._curves(p)])

    def _left_edge(self) -> float | None:
        """The canvas time of the live window's left edge (-inf: everything; None: paused).

        Following a window, a curve needs only the samples it shows; paused, the user may pan
        or zoom anywhere, so the curves are given their whole series.
        """
        if not self._live:
            return None
        if self._window is None:
            return -math.inf
        return max(self._newest_time(), self._window) - self._window

    def _draw(self, curves: list[Curve]) -> None:
        """Hand the curves' samples to their items: while following, the window's min/max
        envelope of a few points per pixel column, kept from redraw to redraw
        (curve_envelope.py), else the whole series for pyqtgraph to reduce as the user zooms."""
        if not curves or self._t0 is None:
            return
        t0 = self._t0
        left = self._left_edge()
        wanted = {id(c) for c in curves}
        for plot in self._plots:
            width = float(plot.item.getViewBox().width())
            for curve in plot.curves:
                if id(curve) not in wanted or not isinstance(curve, Curve):
                    continue
                curve.seen_total, curve.origin = curve.series.total, t0
                if left is not None:
                    x, y, _ = curve.envelope.update(curve.series, t0, left, width)
                else:
                    curve.envelope.reset()
                    x, y = curve.series.arrays()
                    x -= t0  # a fresh copy: shifted in place
                curve.item.show_data(x, y, downsample=left is None)

    def _newest_time(self) -> float:
        if self._t0 is None:
            return 0.0
        newest = self.session.store.last_ts
        for plot in self._plots:
            for curve in plot.curves:
                last = curve.series.last() if isinstance(curve, Curve) else None
                if last is not None:
                    newest = max(newest, last[0])
        return max(newest - self._t0, 0.0)

    def _apply_x_range(self, force: bool = False) -> None:
        # Paused views stay where the user put them; a structural change may still need a
        # first range (force) when none was ever applied.
        if not self._plots or not (self._live or (force and self._applied_x is None)):
            return
        newest = self._newest_time()
        if self._window is None:
            lo, hi = 0.0, max(newest, 1.0)
        else:
            hi = max(newest, self._window)
            lo = hi - self._window
        if (lo, hi) != self._applied_x:
            self._applied_x = (lo, hi)
            self._plots[0].item.getViewBox().setXRange(lo, hi, padding=0)

    def _subscribed_keys(self) -> Counter[tuple[str, str]]:
        return Counter((c.message, c.signal) for p in self._plots for c in p.curves)

    def _release_unused(self, before: Counter[tuple[str, str]]) -> None:
        # Every curve holds one LiveDecoder subscription: release one per curve removed.
        gone = before - self._subscribed_keys()
        for (message, signal), n in gone.items():
            for _ in range(n):
                with contextlib.suppress(KeyError):  # the database was removed meanwhile
                    self.session.decoder.unsubscribe(message, signal)

    # --- internals: drawing --------------------------------------------------------------------

    def _apply_theme(self) -> None:
        self._stack.apply_theme(self.palette())

    @staticmethod
    def _curves(plot: Lane) -> list[Curve]:
        return [c for c in plot.curves if isinstance(c, Curve)]

    def _add_menu_actions(self, plot: Lane) -> None:
        menu = plot.item.getViewBox().menu
        if menu is None:
            return
        menu.addSeparator()
        remove_signal = menu.addMenu("Remove signal")
        remove_plot = QAction("Remove this plot", menu)
        remove_plot.triggered.connect(lambda: self._on_remove_plot_chosen(plot))
        menu.addAction(remove_plot)

        def fill() -> None:
            remove_signal.clear()
            for curve in plot.curves:
                action = remove_signal.addAction(f"{curve.message}.{curve.signal}")
                action.triggered.connect(lambda _=False, c=curve: self._on_remove_curve_chosen(plot, c))
            remove_signal.setEnabled(bool(plot.curves))

        menu.aboutToShow.connect(fill)

    # --- event handlers ------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)

    def _on_signal_dropped(self, scene_pos: QPointF, message: str, signal: str) -> bool:
        target = self._stack.lane_at(scene_pos)
        try:
            self.add_signal(message, signal, target)
        except KeyError:
            return False
        return True

    def _on_x_panned(self) -> None:
        self.set_live(False)

    def _on_live_toggled(self, checked: bool) -> None:
        self.set_live(checked)

    def _on_window_chosen(self, position: int) -> None:
        self.set_window(self.window_combo.itemData(position))

    def _on_add_plot_clicked(self) -> None:
        self.add_plot()

    def _on_remove_plot_chosen(self, plot: Lane) -> None:
        if plot in self._plots:
            self.remove_plot(self._plots.index(plot))

    def _on_remove_curve_chosen(self, plot: Lane, curve: Curve) -> None:
        if plot in self._plots and curve in plot.curves:
            self.remove_signal(curve.message, curve.signal, self._plots.index(plot))
