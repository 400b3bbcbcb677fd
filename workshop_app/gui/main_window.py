"""MainWindow: trace, bit view, signals, plots, transmit and recording over one WorkshopSession.

The window is a thin client of the core's ``WorkshopSession``: a CaptureBridge ticks it ~30
times a second, and each panel subscribes to the events it shows (frames, changed streams,
stats, source, recording) instead of the window calling every panel on every tick.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QModelIndex, QPoint, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.capture.store import MessageStats
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.logs.analysis import LoadedLog
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import PlaybackSource
from workshop_app.core.session import CaptureSession, CaptureStats
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.workshop import WorkshopSession
from workshop_app.gui.bit_view import BitView
from workshop_app.gui.bridge import CaptureBridge
from workshop_app.gui.chrono_model import ChronoModel
from workshop_app.gui.cloud_window import CloudControls
from workshop_app.gui.connect_dialog import ConnectDialog
from workshop_app.gui.data_delegate import PayloadDelegate
from workshop_app.gui.dtc_panel import DtcPanel
from workshop_app.gui.link_status import LinkStatus, failure_message
from workshop_app.gui.log_view import LogAnalysisView
from workshop_app.gui.playback_bar import PlaybackBar
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.gui.record_panel import RecordPanel
from workshop_app.gui.redraw_turns import RedrawTurns
from workshop_app.gui.signal_browser import SignalBrowser
from workshop_app.gui.theme import THEMES, apply_theme
from workshop_app.gui.trace_model import COL_DATA, COL_NAME, STATS_ROLE, TraceModel
from workshop_app.gui.transmit_panel import TransmitPanel
from workshop_app.gui.window_files import WindowFilesMixin
from workshop_app.gui.window_layout import restore_plots, save_plots, size_docks


class MainWindow(WindowFilesMixin, QMainWindow):
    def __init__(
        self,
        session: WorkshopSession | CaptureSession,
        *,
        settings: QSettings | None = None,
        history: HistoryStore | None = None,
        vehicle_spec: VehicleSpec | None = None,
    ) -> None:
        super().__init__()
        if isinstance(session, CaptureSession):
            session = WorkshopSession(session, history=history, vehicle_spec=vehicle_spec)
        self.workshop = session
        if session.history is None:
            session.history = history
        if session.vehicle_spec is None:
            session.vehicle_spec = vehicle_spec if vehicle_spec is not None else demo_vehicle_spec()
        self.settings = settings if settings is not None else QSettings()
        self.history = session.history
        self.vehicle_spec = session.vehicle_spec
        self.setObjectName("MainWindow")
        self.resize(1440, 900)
        self._update_title()

        self.bridge = CaptureBridge(session, self)
        self._build_trace()
        self._build_docks()
        self._build_menus()
        self._build_status_bar()
        self.cloud = CloudControls(self)  # Cloud menu, Fleet dock, link state and latency
        self._subscribe()

        self.bridge.source_failed.connect(self._on_source_failed)
        self._restore_settings()

    @property
    def session(self) -> CaptureSession:
        """The capture (store, decoder, recorder, ring) of the workshop session."""
        return self.workshop.capture

    def _subscribe(self) -> None:
        # Each panel follows what it shows; the window keeps the status bar and the trace view's
        # expanded rows and filter. Subscribers run in this order on the GUI thread, per tick.
        # All of them end with the window (closeEvent): the session may outlive it.
        ws = self.workshop
        turns = RedrawTurns()  # the trace and the plots do not redraw in the same tick
        self._subscriptions = [
            *self.trace_model.follow(ws, turns),
            *self.chrono_model.follow(ws),
            *self.plot_panel.follow(ws, turns),
            *self.record_panel.follow(ws),
            *self.transmit_panel.follow(ws),
            *self.playback_bar.follow(ws),
            *self.signal_browser.follow(ws),
            ws.subscribe("columns", self._on_frames),
            ws.subscribe("stats", self._on_stats),
            *self.link_status.follow(ws),
            *self.cloud.follow(ws),
            ws.subscribe("source", self._on_source_switched),
        ]

    # -- construction -------------------------------------------------------------------------
    def _build_trace(self) -> None:
        self.trace_model = TraceModel(self.workshop)
        self.trace_view = QTreeView()
        self.trace_view.setObjectName("TraceView")
        self.trace_view.setModel(self.trace_model)
        self.trace_view.setUniformRowHeights(True)
        self.trace_view.setAlternatingRowColors(True)
        self.trace_view.setAllColumnsShowFocus(True)
        self.trace_view.setRootIsDecorated(True)
        self.payload_delegate = PayloadDelegate(lambda: self.session.store.last_ts)
        self.trace_view.setItemDelegateForColumn(COL_DATA, self.payload_delegate)
        header = self.trace_view.header()
        header.setStretchLastSection(True)
        for col, width in enumerate((56, 84, 230, 78, 72, 80, 40)):
            header.resizeSection(col, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.trace_view.selectionModel().currentRowChanged.connect(self._on_trace_row_changed)

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("TraceFilter")
        self.filter_edit.setPlaceholderText("Filter by id, message or signal name  (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_changed)

        self.chrono_model = ChronoModel(self.workshop)
        self.chrono_view = QTableView()
        self.chrono_view.setModel(self.chrono_model)
        self.chrono_view.verticalHeader().setVisible(False)
        self.chrono_view.verticalHeader().setDefaultSectionSize(20)
        self.chrono_view.horizontalHeader().setStretchLastSection(True)
        self.chrono_view.setAlternatingRowColors(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Freeze the chronological trace (Space); capture goes on")
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.paused_label = QLabel()

        chrono = QWidget()
        chrono_layout = QVBoxLayout(chrono)
        chrono_layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.pause_button)
        bar.addWidget(self.paused_label, 1)
        chrono_layout.addLayout(bar)
        chrono_layout.addWidget(self.chrono_view)

        self.trace_tabs = QTabWidget()
        self.trace_tabs.addTab(self.trace_view, "Messages")
        self.trace_tabs.addTab(chrono, "Chronological")

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        self.playback_bar = PlaybackBar()
        layout.addWidget(self.playback_bar)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.trace_tabs)
        self.setCentralWidget(central)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.replace(' ', '')}Dock")  # saveState() needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.bit_view = BitView(self.session.store)
        self.signal_browser = SignalBrowser(self.session.databases)
        self.signal_browser.signal_activated.connect(self._on_signal_activated)
        self.plot_panel = PlotPanel(self.session)
        self.scheduler = self.workshop.scheduler
        self.transmit_panel = TransmitPanel(self.scheduler, self.session.databases)
        self.log_view = LogAnalysisView(self.session.databases)
        self.log_view.loaded.connect(self._on_log_loaded)
        self.log_view.playback_requested.connect(self.play_columns)
        self.record_panel = RecordPanel(self.workshop, self.history)
        # On the workshop session: the dock runs its diagnostics, whose trigger the ticks feed.
        self.dtc_panel = DtcPanel(self.workshop, self.vehicle_spec, self.history)
        self.dtc_panel.dtc_event.connect(self.plot_panel.add_event_marker)
        self.record_panel.recording_activated.connect(self._on_recording_activated)

        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        # Time series want width: plots share the bottom with transmit and record, full width.
        self.signals_dock = self._dock("Signals", self.signal_browser, left)
        self.bits_dock = self._dock("Bits", self.bit_view, left)
        self.plots_dock = self._dock("Plots", self.plot_panel, bottom)
        self.transmit_dock = self._dock("Transmit", self.transmit_panel, bottom)
        self.record_dock = self._dock("Record", self.record_panel, bottom)
        self.dtc_dock = self._dock("Fault codes", self.dtc_panel, bottom)
        self.log_dock = self._dock("Log analysis", self.log_view, bottom)
        self.tabifyDockWidget(self.plots_dock, self.log_dock)
        self.tabifyDockWidget(self.log_dock, self.transmit_dock)
        self.tabifyDockWidget(self.transmit_dock, self.record_dock)
        self.tabifyDockWidget(self.record_dock, self.dtc_dock)
        self.plots_dock.raise_()
        # The left column runs the full height: the signal tree gets room for many rows
        # instead of a sliver above the plots; the plots share the width with the trace.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)

    def _action(self, menu: QMenu, text: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:  # noqa: ANN001
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Connect…", self.show_connect_dialog, "Ctrl+K")
        self._action(file_menu, "Connect to &simulated vehicle", self.connect_simulator, "Ctrl+Shift+K")
        self._action(file_menu, "&Open log…", self._on_open_log, QKeySequence.StandardKey.Open)
        self.recent_logs_menu = file_menu.addMenu("Recent &logs")
        file_menu.addSeparator()
        self._action(file_menu, "Add &database…", self._on_add_database, "Ctrl+D")
        self.recent_dbs_menu = file_menu.addMenu("Recent data&bases")
        file_menu.addSeparator()
        self._action(file_menu, "Save plot layout…", self._on_save_plot_layout)
        self._action(file_menu, "Load plot layout…", self._on_load_plot_layout)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        capture = self.menuBar().addMenu("&Capture")
        self.pause_action = self._action(
            capture, "&Pause chronological trace", self.pause_button.toggle, "Space"
        )
        self._action(capture, "C&lear trace", self.clear_trace, "Ctrl+L")
        self._action(capture, "Start/stop &recording", self.record_panel.toggle_recording, "Ctrl+R")
        self._action(capture, "&Disconnect", self.disconnect_source, "Ctrl+Shift+D")

        vehicle = self.menuBar().addMenu("V&ehicle")
        self._action(vehicle, "Software &update…", self.show_update_wizard)

        view = self.menuBar().addMenu("&View")
        find = self._action(view, "&Find", self.filter_edit.setFocus, QKeySequence.StandardKey.Find)
        find.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        for dock in (
            self.signals_dock,
            self.bits_dock,
            self.plots_dock,
            self.transmit_dock,
            self.record_dock,
            self.dtc_dock,
        ):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self._action(view, "Expand all messages", self.trace_view.expandAll, "Ctrl+E")
        self._action(view, "Collapse all messages", self.trace_view.collapseAll, "Ctrl+Shift+E")
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        for name in THEMES:
            self._action(theme_menu, name.capitalize(), lambda _=False, n=name: self.set_theme(n))
        self._action(view, "&Reset window layout", self.reset_layout)
        self._refresh_recent_menus()

    def _build_status_bar(self) -> None:
        self.link_status = LinkStatus(self.workshop, self.statusBar())  # the connection, first
        self.source_label = self.link_status.label
        self.load_label = QLabel()
        self.rate_label = QLabel()
        self.dropped_label = QLabel()
        for label in (self.load_label, self.rate_label, self.dropped_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)

    # -- settings -----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        problem = restore_plots(self.plot_panel, self.settings)  # saved plots, else the defaults
        if problem:
            self.statusBar().showMessage(problem, 15000)
        size_docks(self)
        self._default_state = self.saveState()  # View → Reset window layout comes back here
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.set_theme(str(self.settings.value("window/theme", "light")))

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        save_plots(self.plot_panel, self.settings)
        self.settings.sync()

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication) and name in THEMES:
            apply_theme(app, name)
            self.settings.setValue("window/theme", name)
            self.theme = name

    def reset_layout(self) -> None:
        self.restoreState(self._default_state)

    # -- connection ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start capturing from the session's source (shows a plain error if it can't)."""
        try:
            self.session.start()
        except WorkshopError as exc:
            self._show_error("Could not connect", str(exc))
        self.bridge.start()
        self._update_source_label()
        self.dtc_panel.refresh_source()

    def connect_spec(self, spec: SourceSpec) -> bool:
        """Switch to another source; on failure the window stays up and says why."""
        if spec.interface is not None:
            # The source connects (and reconnects under the spec's policy) on its own thread:
            # the window never waits for an adapter or a server.
            spec = replace(spec, connect_in_background=True)
        try:
            self.workshop.switch_source(spec)
        except WorkshopError as exc:
            self._show_error("Could not connect", str(exc))
            self._update_source_label()
            return False
        self.bridge.reset_failure()
        self._update_source_label()
        self.dtc_panel.refresh_source()
        return True

    def connect_simulator(self) -> bool:
        return self.connect_spec(SourceSpec())

    def disconnect_source(self) -> None:
        self.scheduler.stop_all()
        self.session.source.stop()
        self._update_source_label()

    def show_update_wizard(self) -> None:
        from workshop_app.gui.update_wizard import UpdateWizard  # the update stack loads when used

        def link():  # noqa: ANN202 - (bus, notifier) of the connection at the time of asking
            source = self.session.source
            bus, notifier = source.bus, getattr(source, "notifier", None)
            if bus is None or notifier is None:
                raise WorkshopError(f"{source.describe()}: a software update needs a live connection")
            return bus, notifier

        history = self.history.path if self.history is not None else None
        UpdateWizard(link, self.vehicle_spec, history, parent=self).exec()

    def show_connect_dialog(self, page: int | None = None) -> None:
        dialog = ConnectDialog(
            recent_dbcs=[Path(p) for p in self.recent("databases")],
            parent=self,
            cloud_vins=self.cloud.vins(),
            cloud_profile=self.cloud.profile_path,
        )
        if page is not None:
            dialog.set_page(page)
        if dialog.exec() != ConnectDialog.DialogCode.Accepted:
            return
        for path, channel in dialog.result_databases():
            self.add_database(path, channel)
        spec = dialog.result_spec()
        if spec.replay is not None:
            self._remember("logs", spec.replay)
        if spec.cloud_profile is not None:
            self.cloud.set_profile_path(spec.cloud_profile)
        self.connect_spec(spec)

    def open_log(self, path: Path) -> None:
        """Load a log in the background into the analysis view; it then plays into the trace."""
        self._remember("logs", path)
        self.log_dock.show()
        self.log_dock.raise_()
        self.log_view.open_log(path)

    def _on_log_loaded(self, loaded: LoadedLog) -> None:
        self.play_columns(loaded.columns, name=loaded.path.name)

    def play_columns(self, columns: FrameColumns, name: str = "log") -> None:
        """Feed a loaded log to the trace and plots, paused at its start (Play starts it)."""
        self.workshop.switch_source(PlaybackSource(self.session.ring, columns, name=name, paused=True))
        self.bridge.reset_failure()
        self._update_source_label()

    def _on_source_switched(self, _source: FrameSource) -> None:
        self.chrono_model.clear()
        self._update_title()

    def add_database(self, path: Path, channel: str | None = None) -> None:
        try:
            loaded = self.session.databases.add(path, channel=channel)
        except WorkshopError as exc:
            self._show_error("Could not load the database", str(exc))
            return
        self._remember("databases", path)
        self.session.decoder.databases_changed()
        self.trace_model.forget_databases()
        self.signal_browser.reload()
        if loaded.warnings:
            text = "\n".join(str(w) for w in loaded.warnings[:20])
            more = len(loaded.warnings) - 20
            if more > 0:
                text += f"\n… and {more} more (see `workshop info {path}`)"
            self.statusBar().showMessage(f"{path.name}: loaded with {len(loaded.warnings)} warning(s)", 15000)
            if self.isVisible() and QApplication.platformName() != "offscreen":
                QMessageBox.information(self, f"{path.name} loaded with warnings", text)

    # -- tick and events ----------------------------------------------------------------------
    def _on_frames(self, _batch: object) -> None:  # a tick's columns; only its arrival matters
        if self.chrono_model.paused:
            self.paused_label.setText(f"paused — {self.chrono_model.skipped_while_paused:,} frames not shown")
        elif self.chrono_view.isVisible():
            self.chrono_view.scrollToBottom()

    def _on_stats(self, stats: CaptureStats) -> None:
        # After the trace model's refresh (it subscribed first): its repainted rows are known.
        view, model = self.trace_view, self.trace_model
        # Only messages on screen are repainted on ticks (the trace model's next refresh too):
        # rows scrolled away are painted afresh when they come back, and a repaint per expanded
        # message cost ~70 µs (7 ms a tick with 96 expanded).
        first, last = model.shown_rows = self._shown_messages()
        for row in model.last_repainted:
            if first <= row <= last and view.isExpanded(model.index(row, 0)):
                model.repaint_children(row)
        if self.bit_view.isVisible():
            self.bit_view.update()  # its highlights fade between frames too
        self._apply_filter(only_new=True)
        self._update_status(stats)

    def _shown_messages(self) -> tuple[int, int]:
        """The first and last message rows of the trace with any row on screen."""
        view = self.trace_view

        def message_row(y: int, default: int) -> int:
            index = view.indexAt(QPoint(0, y))
            if not index.isValid():
                return default
            return index.parent().row() if index.parent().isValid() else index.row()

        return message_row(0, 0), message_row(view.viewport().height() - 1, self.trace_model.rowCount() - 1)

    def _update_status(self, st: CaptureStats | None = None) -> None:
        st = st if st is not None else self.session.stats
        self.load_label.setText("bus load —" if st.bus_load is None else f"bus load {st.bus_load * 100:.1f}%")
        self.rate_label.setText(f"{st.frames_per_second:,.0f} frames/s · {st.frames:,} frames")
        decode_errors = self.session.decoder.decode_errors
        text = f"backlog {st.backlog:,} · dropped {st.dropped:,}"
        if decode_errors:
            text += f" · decode errors {decode_errors:,}"
        self.dropped_label.setText(text)
        self.dropped_label.setStyleSheet("color: #d1242f" if st.dropped else "")
        drops = getattr(self.session, "drops", None)  # a capture process counts each hop
        self.dropped_label.setToolTip(
            "Frames lost: none is the aim"
            if drops is None
            else f"Frames lost — receiving in the capture process: {drops.receive:,}; on the way to "
            f"the window: {drops.link:,}; in the window: {drops.window:,}"
        )

    def _update_source_label(self) -> None:
        # After what the workshop publishes no event for: a connect, a disconnect, a failure.
        self.link_status.refresh()

    def _update_title(self) -> None:
        self.setWindowTitle(f"Workshop — {self.session.source.describe()}")

    def _on_source_failed(self, message: str) -> None:
        self.scheduler.stop_all()
        self.statusBar().showMessage(failure_message(self.session.source, message))
        self._update_source_label()

    def _on_trace_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.bit_view.set_message(None)
            return
        top = current.parent() if current.parent().isValid() else current
        stats = self.trace_model.index(top.row(), COL_DATA).data(STATS_ROLE)
        self.bit_view.set_message(stats if isinstance(stats, MessageStats) else None)

    def _on_filter_changed(self, text: str) -> None:
        self.chrono_model.name_filter = text.strip().lower()
        self._apply_filter(only_new=False)

    def _apply_filter(self, only_new: bool) -> None:
        text = self.filter_edit.text().strip().lower()
        if only_new and not text:
            return
        model, view = self.trace_model, self.trace_view
        root = QModelIndex()
        for row in range(model.rowCount()):
            hidden = bool(text) and not self._row_matches(row, text)
            if view.isRowHidden(row, root) != hidden:
                view.setRowHidden(row, root, hidden)

    def _row_matches(self, row: int, text: str) -> bool:
        model = self.trace_model
        if (
            text in str(model.index(row, 1).data()).lower()
            or text in str(model.index(row, COL_NAME).data()).lower()
        ):
            return True
        parent = model.index(row, 0)
        return any(
            text in str(model.index(r, COL_NAME, parent).data()).lower()
            for r in range(model.rowCount(parent))
        )

    def _on_pause_toggled(self, paused: bool) -> None:
        self.chrono_model.paused = paused
        self.chrono_model.skipped_while_paused = 0
        self.pause_button.setText("Resume" if paused else "Pause")
        self.paused_label.setText("")

    def _on_signal_activated(self, message: str, signal: str) -> None:
        self.plot_panel.add_signal(message, signal)
        self.plots_dock.show()

    def _on_recording_activated(self, path: str) -> None:
        self.open_log(Path(path))

    def clear_trace(self) -> None:
        self.session.store.clear()
        self.chrono_model.clear()
        self.trace_model.refresh(None)

    def _show_error(self, title: str, text: str) -> None:
        self.statusBar().showMessage(f"{title}: {text}", 15000)
        if self.isVisible() and QApplication.platformName() != "offscreen":
            QMessageBox.warning(self, title, text)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_settings()
        self.bridge.stop()
        self.transmit_panel.wait_for_sends(2.0)
        self.scheduler.stop_all()
        self.plot_panel.clear()
        self.log_view.close()  # cancels a load in progress and joins its thread
        self.dtc_panel.close_diag()  # waits for a diagnostic call in progress
        self.cloud.stop()  # the fleet watcher's network thread
        # A recording in progress is finished and indexed in the history, as its Stop button does,
        # with the frames still in the ring: quitting (or a stop signal) loses nothing captured.
        self.session.source.stop()
        self.workshop.tick(max_frames=max(self.session.ring.backlog, 1))
        self.record_panel.stop_recording()
        self.workshop.stop()
        for kind, fn in self._subscriptions:
            self.workshop.unsubscribe(kind, fn)
        self._subscriptions = []
        super().closeEvent(event)
