"""LogAnalysisView: open a whole log, browse its messages and signals, plot, measure, mark.

Loading and decoding run off the GUI thread through ``gui/workers.run_job``
(``core.logs.analysis.load_and_decode``); this widget
only renders what that returns. Every time this view shows or takes (``set_cursor``,
``set_range``, ``add_marker``...) is seconds since the log's first frame; markers are stored
in the log's own time base so they stay valid whatever the view does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, JobProgress, ProgressFn, phase_done_total
from workshop_app.core.logs.analysis import (
    LoadedLog,
    Marker,
    MarkerSet,
    RangeStats,
    load_and_decode,
    range_statistics,
)
from workshop_app.gui.log_view_lists import LogLists
from workshop_app.gui.log_view_parts import (
    Trace,
    fill_stats_table,
    progress_text,
    readonly_table,
)
from workshop_app.gui.plot_canvas import MarkLine, PlotStack, new_curve_item
from workshop_app.gui.plot_items import PALETTE, states_of
from workshop_app.gui.plot_style import muted_colour
from workshop_app.gui.workers import JobHandle, run_job

if TYPE_CHECKING:
    from cantools.database.can import Signal as DbcSignal

_MIN_PLOT_HEIGHT = 110

Key = tuple[str, str]  # (message, signal)


def _log_load(path: Path, databases: DatabaseSet, *, progress: ProgressFn, cancel: CancelToken) -> LoadedLog:
    """The load as a job (runs on ``workshop-log-load``); a failure carries the frames read."""
    return load_and_decode(path, databases, progress=phase_done_total(progress), cancel=cancel.event)


class LogAnalysisView(QWidget):
    """A whole log: message table, signal list, stacked plots, cursor, range statistics, markers."""

    loaded = Signal(object)  # LoadedLog
    load_failed = Signal(str)  # message as shown
    playback_requested = Signal(object)  # FrameColumns of the loaded log

    def __init__(self, databases: DatabaseSet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.databases = databases
        self.log: LoadedLog | None = None
        self.markers: MarkerSet | None = None
        self.last_error: str | None = None
        self._worker: JobHandle | None = None
        self._phase_started: dict[str, tuple[float, int]] = {}  # phase -> (time, done) at its start
        self._load_started = 0.0
        self._traces: dict[Key, Trace] = {}
        self._origin = 0.0
        self._cancelled = False
        self._build()
        self._apply_theme()

    # --- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        top = QHBoxLayout()
        self.title_label = QLabel("No log loaded")
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_button = QPushButton("Fit all")
        self.fit_button.setToolTip("Show the whole log in every plot")
        self.fit_button.clicked.connect(self.fit_all)
        self.range_button = QPushButton("Select range")
        self.range_button.setCheckable(True)
        self.range_button.setToolTip(
            "Show a draggable time range and statistics of each plotted signal in it"
        )
        self.range_button.toggled.connect(self._on_range_toggled)
        self.clear_button = QPushButton("Clear plots")
        self.clear_button.clicked.connect(self.clear_plots)
        self.play_button = QPushButton("Play in trace")
        self.play_button.setToolTip("Replay this log into the live trace")
        self.play_button.clicked.connect(self._on_play_clicked)
        top.addWidget(self.title_label, 1)
        for button in (self.fit_button, self.range_button, self.clear_button, self.play_button):
            button.setEnabled(False)
            top.addWidget(button)

        progress_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        self._progress_widget = QWidget()
        self._progress_widget.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self._progress_widget.hide()

        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()

        # Left: messages, signals (searchable), markers.
        self.lists = left = LogLists()
        self.message_table = left.message_table
        self.signal_filter = left.signal_filter
        self.signal_table = left.signal_table
        self.marker_list = left.marker_list
        self.add_marker_button = left.add_marker_button
        self.remove_marker_button = left.remove_marker_button
        self.signal_table.itemActivated.connect(self._on_signal_activated)
        self.marker_list.itemActivated.connect(self._on_marker_activated)
        self.add_marker_button.clicked.connect(self._on_add_marker_clicked)
        self.remove_marker_button.clicked.connect(self._on_remove_marker_clicked)

        # Right: stacked plots with a shared time axis (the live panel's canvas), then the readouts.
        self._stack = PlotStack(
            empty_hint="Open a log to analyse it",
            with_region=True,
            lane_height=_MIN_PLOT_HEIGHT,
            y_mouse=False,
        )
        self.canvas = self._stack.canvas
        self._stack.cursor_dragged.connect(self.set_cursor)
        self._stack.clicked.connect(self.set_cursor)
        self._stack.region_dragged.connect(self.set_range)
        self.cursor_label = QLabel()
        self.stats_table = readonly_table(["Signal", "Count", "Min", "Max", "Mean"])
        self.stats_table.hide()
        for column in range(1, 5):
            self.stats_table.setColumnWidth(column, 96)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.canvas, 1)
        right_layout.addWidget(self.cursor_label)
        right_layout.addWidget(self.stats_table)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([340, 760])
        self._split = split
        # The lists' pane follows its content until the user drags the divider (setSizes
        # does not emit splitterMoved, only a drag does).
        self._fit_lists_on_resize = True
        split.splitterMoved.connect(self._on_splitter_moved)
        # Run after the layout has given the splitter its new width (resizeEvent comes first).
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit_lists)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self._progress_widget)
        layout.addWidget(self.message_label)
        layout.addWidget(split, 1)

    # --- loading ------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return self._worker is not None

    def open_log(self, path: str | Path) -> None:
        """Start loading ``path`` in the background (a load in progress is cancelled first)."""
        self._stop_worker()
        p = Path(path)
        self._reset()
        self.title_label.setText(f"Loading {p.name}…")
        self.message_label.hide()
        self.last_error = None
        worker = run_job(self, _log_load, p, self.databases)
        worker.progressed.connect(self._on_progressed)
        worker.finished.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)
        self._worker = worker
        self._phase_started = {}
        self._load_started = time.monotonic()
        self._cancelled = False
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("Opening…")
        self.cancel_button.setEnabled(True)
        self._progress_widget.show()

    def cancel(self) -> None:
        """Stop the load in progress; what was read stays available (see ``failed``)."""
        if self._worker is not None:
            self._cancelled = True
            self._worker.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_bar.setFormat("Cancelling…")

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            worker.wait(5.0)
            for sig in (worker.progressed, worker.finished, worker.failed):
                sig.disconnect()
            worker.deleteLater()

    def _on_progressed(self, progress: JobProgress) -> None:
        phase, done, total = progress.phase, progress.done, progress.total
        now = time.monotonic()
        # Rates count from the phase's start: the open for the first phase, else its first report.
        if phase not in self._phase_started:
            self._phase_started[phase] = (now, done) if self._phase_started else (self._load_started, 0)
        started, done_at_start = self._phase_started[phase]
        value, text = progress_text(phase, done, total, now - started, done_at_start)
        self.progress_bar.setValue(value)
        self.progress_bar.setFormat(text)

    def _on_loaded(self, log: LoadedLog) -> None:
        self._worker = None
        self._progress_widget.hide()
        self._show(log)
        r = log.result
        self.title_label.setText(
            f"{log.path.name} — {len(log.columns):,} frames, {r.decoded_frames:,} decoded, "
            f"{r.unknown_frames:,} unknown · read in {log.load_seconds * 1e3:,.0f} ms, "
            f"decoded in {log.decode_seconds * 1e3:,.0f} ms"
        )
        if log.warning:  # a damaged log: everything recovered is shown, with what was skipped
            self.message_label.setText(f"Parts of the log could not be read: {log.warning}")
            self.message_label.setToolTip(log.warning)
            self.message_label.show()
        self.loaded.emit(log)

    def _on_failed(self, message: str) -> None:
        worker, self._worker = self._worker, None
        partial = worker.partial if worker is not None else None  # the frames read before it stopped
        self._progress_widget.hide()
        cancelled = self._cancelled
        self.last_error = message
        kept = ""
        if isinstance(partial, LoadedLog):
            self._show(partial)
            kept = f" Showing the {len(partial.columns):,} frames read before it stopped."
        if cancelled:
            text = f"Loading was cancelled.{kept}"
        else:
            text = f"The log could not be read: {message}.{kept}"
        self.title_label.setText(partial.path.name if isinstance(partial, LoadedLog) else "No log loaded")
        self.message_label.setText(text)
        self.message_label.setToolTip(message)
        self.message_label.show()
        self.load_failed.emit(message)

    # --- showing a log -----------------------------------------------------------------------

    def _reset(self) -> None:
        self.log = None
        self.markers = None
        self.clear_plots()
        self.lists.clear()
        for button in (
            self.fit_button,
            self.range_button,
            self.clear_button,
            self.play_button,
            self.add_marker_button,
            self.remove_marker_button,
        ):
            button.setEnabled(False)

    def _show(self, log: LoadedLog) -> None:
        self.log = log
        self._origin = float(log.columns.timestamp.min()) if len(log.columns) else 0.0
        self.lists.fill_messages(log, self.databases, self._origin)
        self.lists.fill_signals(log)
        self._fit_lists()
        try:
            self.markers = MarkerSet.load(log.path)
        except WorkshopError as exc:
            # A damaged marker file must not hide the log; start empty and say why.
            self.markers = MarkerSet(log.path)
            self.message_label.setText(f"Markers not loaded: {exc}")
            self.message_label.show()
        self._refresh_markers()
        self._show_hint()
        for button in (
            self.fit_button,
            self.range_button,
            self.clear_button,
            self.play_button,
            self.add_marker_button,
            self.remove_marker_button,
        ):
            button.setEnabled(True)

    def _fit_lists(self) -> None:
        """Widen the lists' pane to show the tables' columns whole, up to half the view."""
        wanted = self.lists.wanted_width()
        sizes = self._split.sizes()
        total = sum(sizes)
        if total <= 0 or sizes[0] >= wanted:
            return
        left = min(wanted, total // 2)
        self._split.setSizes([left, total - left])

    def visible_signals(self) -> list[Key]:
        """The signals the search leaves in the list, top to bottom."""
        return self.lists.visible_signals()

    # --- plotting -----------------------------------------------------------------------------

    @property
    def time_origin(self) -> float:
        """The log timestamp of time 0 in this view (the first frame)."""
        return self._origin

    @property
    def plotted(self) -> list[Key]:
        return list(self._traces)

    def curve_item(self, message: str, signal: str) -> pg.PlotDataItem:
        return self._traces[(message, signal)].item

    def plot_items(self) -> list[pg.PlotItem]:
        return [lane.item for lane in self._stack.lanes]

    def plot_signal(self, message: str, signal: str) -> pg.PlotItem:
        """Plot a decoded signal over the whole log in its own plot, below the others."""
        if self.log is None:
            raise RuntimeError("no log loaded")
        key = (message, signal)
        if key in self._traces:
            return self._traces[key].plot
        decoded = self.log.result.signals.get(key)
        if decoded is None:
            raise KeyError(f"signal {message}.{signal} not decoded in this log")
        definition = self._definition(message, signal)
        length = definition.length if definition is not None else 64
        states = states_of(definition, dict(decoded.choices), length)
        colour = PALETTE[len(self._traces) % len(PALETTE)]
        # "Counter" or "Checksum" in two messages would read the same in legends and tables.
        shared = sum(1 for _, name in self.log.result.signals if name == signal) > 1
        label = f"{message}.{signal}" if shared else signal
        # Discrete values hold until the next frame.
        item = new_curve_item(
            colour, f"{label} ({decoded.unit})" if decoded.unit else label, steps=bool(states) or length == 1
        )
        first = not self._traces
        lane = self._stack.add_lane()
        trace = Trace(decoded, colour, states, lane, item, label, self._origin)
        self._stack.add_curve(lane, trace)
        item.setData(decoded.timestamps - self._origin, decoded.values)
        self._traces[key] = trace
        if first:
            self.fit_all()
        self._update_readouts()
        self._update_stats()
        return lane.item

    def _definition(self, message: str, signal: str) -> DbcSignal | None:
        for loaded in self.databases.databases:
            for m in loaded.db.messages:
                if m.name == message:
                    for s in m.signals:
                        if s.name == signal:
                            return s
        return None

    def clear_plots(self) -> None:
        self._stack.clear()
        self._traces.clear()
        self._show_hint()
        self._update_readouts()
        self._update_stats()

    def _show_hint(self) -> None:
        self._stack.set_hints(
            "Double-click a signal to plot it" if self.log is not None else "Open a log to analyse it"
        )

    def fit_all(self) -> None:
        """Show the whole log: x spans every frame, y each plot's data."""
        if self.log is None or not len(self.log.columns):
            return
        span = float(self.log.columns.timestamp.max()) - self._origin
        self._stack.set_x_range(0.0, max(span, 1e-3), padding=0.01)
        for item in self.plot_items():
            item.getViewBox().enableAutoRange(axis=pg.ViewBox.YAxis)

    def x_range(self) -> tuple[float, float] | None:
        return self._stack.x_range()

    # --- cursor -------------------------------------------------------------------------------

    def set_cursor(self, t: float | None) -> None:
        """Place the cursor at ``t`` seconds since the first frame (None hides it)."""
        self._stack.set_cursor(t)
        self._update_status_line()

    def cursor_time(self) -> float | None:
        return self._stack.cursor

    def cursor_values(self) -> dict[Key, float | None]:
        """Each plotted signal's value at the cursor (sample-and-hold); empty without a cursor."""
        if self._stack.cursor is None:
            return {}
        t_log = self._stack.cursor + self._origin
        return {key: trace.value_at(t_log) for key, trace in self._traces.items()}

    def _update_readouts(self) -> None:
        self._stack.update_readouts()
        self._update_status_line()

    def _update_status_line(self) -> None:
        t = self._stack.cursor
        parts = ["Click a plot to place the cursor" if t is None else f"Cursor at {t:.3f} s"]
        if self._stack.region is not None:
            t0, t1 = self._stack.region
            parts.append(f"range {t0:.3f} s – {t1:.3f} s ({t1 - t0:.3f} s)")
        self.cursor_label.setText(" · ".join(parts))

    # --- range --------------------------------------------------------------------------------

    def set_range(self, t0: float, t1: float) -> None:
        """Select ``t0``–``t1`` (seconds since the first frame) and show statistics for it."""
        self._stack.set_region((t0, t1))
        if not self.range_button.isChecked():
            self.range_button.blockSignals(True)
            self.range_button.setChecked(True)
            self.range_button.blockSignals(False)
        self._update_stats()

    def clear_range(self) -> None:
        self._stack.set_region(None)
        self.range_button.blockSignals(True)
        self.range_button.setChecked(False)
        self.range_button.blockSignals(False)
        self._update_stats()

    def selected_range(self) -> tuple[float, float] | None:
        return self._stack.region

    def range_stats(self) -> dict[Key, RangeStats]:
        """Statistics of each plotted signal in the selected range (empty without a range)."""
        if self._stack.region is None:
            return {}
        t0, t1 = (t + self._origin for t in self._stack.region)
        return {key: range_statistics(trace.signal, t0, t1) for key, trace in self._traces.items()}

    def _update_stats(self) -> None:
        stats = self.range_stats()
        fill_stats_table(self.stats_table, [(self._traces[key], s) for key, s in stats.items()])
        self._update_status_line()

    # --- markers ------------------------------------------------------------------------------

    def add_marker(self, t: float, note: str) -> Marker:
        """Add a note at ``t`` seconds since the first frame; saved beside the log at once."""
        if self.markers is None:
            raise RuntimeError("no log loaded")
        marker = self.markers.add(t + self._origin, note)
        self._save_markers()
        self._refresh_markers()
        return marker

    def remove_marker(self, marker: Marker) -> None:
        if self.markers is None:
            return
        self.markers.remove(marker)
        self._save_markers()
        self._refresh_markers()

    def jump_to(self, t: float) -> None:
        """Centre the view on ``t`` (keeping the zoom) and put the cursor there."""
        span = self.x_range()
        if span is not None:
            half = (span[1] - span[0]) / 2
            self._stack.set_x_range(t - half, t + half)
        self.set_cursor(t)

    def _save_markers(self) -> None:
        if self.markers is None:
            return
        try:
            self.markers.save()
        except WorkshopError as exc:
            self.message_label.setText(f"Markers not saved: {exc}")
            self.message_label.show()

    def _refresh_markers(self) -> None:
        self.lists.list_markers(self.markers.list() if self.markers is not None else [], self._origin)
        self._refresh_marker_lines()

    def _refresh_marker_lines(self) -> None:
        colour = self._muted_colour(0.6).name()
        marks = self.markers.list() if self.markers is not None else []
        self._stack.set_marks(
            [MarkLine(m.t - self._origin, m.note, colour, Qt.PenStyle.DotLine) for m in marks]
        )

    # --- theme --------------------------------------------------------------------------------

    def _muted_colour(self, weight: float = 0.5) -> QColor:
        return muted_colour(self.palette(), weight)

    def _apply_theme(self) -> None:
        self._stack.apply_theme(self.palette())
        self._refresh_marker_lines()

    # --- event handlers -----------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_lists_on_resize and self.log is not None:
            self._fit_timer.start()  # a dock made floating or bigger: show the names whole now

    def _on_splitter_moved(self, _pos: int, _index: int) -> None:
        self._fit_lists_on_resize = False

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_worker()  # never leave a loader thread behind a closed window
        super().closeEvent(event)

    def _on_signal_activated(self, item: QTableWidgetItem) -> None:
        self.plot_signal(*self.lists.signal_at(item))

    def _on_range_toggled(self, checked: bool) -> None:
        if not checked:
            self.clear_range()
            return
        span = self.x_range()
        if span is None:
            self.range_button.blockSignals(True)
            self.range_button.setChecked(False)
            self.range_button.blockSignals(False)
            return
        width = span[1] - span[0]
        self.set_range(span[0] + width / 3, span[0] + 2 * width / 3)  # the middle third, to drag from

    def _on_marker_activated(self, item: QListWidgetItem) -> None:
        marker: Marker = item.data(Qt.ItemDataRole.UserRole)
        self.jump_to(marker.t - self._origin)

    def _on_add_marker_clicked(self) -> None:
        t = self._stack.cursor
        if t is None:
            span = self.x_range()
            t = 0.0 if span is None else (span[0] + span[1]) / 2
        note, ok = QInputDialog.getText(self, "Add marker", f"Note at {t:.3f} s:")
        if ok:
            self.add_marker(t, note.strip())

    def _on_remove_marker_clicked(self) -> None:
        item = self.marker_list.currentItem()
        if item is not None:
            self.remove_marker(item.data(Qt.ItemDataRole.UserRole))

    def _on_play_clicked(self) -> None:
        if self.log is not None:
            self.playback_requested.emit(self.log.columns)
